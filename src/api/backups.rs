//! `/backups` and `/containers/:id/backups`: take a backup (a job), list,
//! read, download, delete, and upload an archive to restore from.

use rocket::data::{Data, Limits, ToByteUnit};
use rocket::http::{ContentType, Header, Status};
use rocket::response::{self, Responder, Response};
use rocket::serde::json::Json;
use rocket::{Request, Route, State};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::OptionalJsonBody;
use super::os_templates::is_archive_type;
use super::query::{at_most_once, Param};
use super::{parse_id, ApiBase, Caller, JobAnswer};
use crate::error::{ApiError, ApiResult};
use crate::service::{Accepted, Service};

pub fn routes() -> Vec<Route> {
    rocket::routes![take, list, get, file, delete, upload]
}

use crate::config::DEFAULT_BACKUP_UPLOAD_GIB as DEFAULT_UPLOAD_LIMIT_GIB;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupBody {
    /// Keep this many of the container's backups (the new one included).
    #[serde(default)]
    keep_last: Option<u32>,
}

#[rocket::post("/containers/<id>/backups", data = "<body>")]
async fn take(
    service: &State<Service>,
    caller: Caller,
    base: ApiBase,
    id: &str,
    body: Result<OptionalJsonBody<BackupBody>, ApiError>,
) -> ApiResult<JobAnswer> {
    let id = parse_id(id)?;
    let OptionalJsonBody(body) = body?;
    let keep_last = body.and_then(|body| body.keep_last);
    let Accepted { job, container_id } = service.queue_backup(id, keep_last, &caller.0).await?;
    let backup_id = match job.payload() {
        Ok(Some(crate::domain::job::JobPayload::Backup(change))) => Some(change.backup_id),
        _ => None,
    };
    Ok(JobAnswer::new(
        Status::Accepted,
        base.job_url(job.id),
        json!({
            "message": "success",
            "job_id": job.id,
            "container_id": container_id,
            "backup_id": backup_id,
        }),
    ))
}

/// Newest first; `container` keeps one container's.
#[rocket::get("/backups?<container>")]
async fn list(
    service: &State<Service>,
    _caller: Caller,
    container: Param<'_>,
) -> ApiResult<Json<Value>> {
    let container = at_most_once("container", container)?
        .map(parse_id)
        .transpose()?;
    let backups = service.backups(container).await?;
    Ok(Json(json!({ "message": "success", "backups": backups })))
}

#[rocket::get("/backups/<id>")]
async fn get(service: &State<Service>, _caller: Caller, id: &str) -> ApiResult<Json<Value>> {
    let backup = service.backup(parse_id(id)?).await?;
    Ok(Json(json!({ "message": "success", "backup": backup })))
}

/// The archive, streamed from disk with its length.
pub struct ArchiveFile {
    file: tokio::fs::File,
    content_type: ContentType,
    name: String,
}

impl<'r> Responder<'r, 'static> for ArchiveFile {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        Response::build()
            .header(self.content_type)
            .header(Header::new(
                "Content-Disposition",
                format!("attachment; filename=\"{}\"", self.name),
            ))
            // No size given: Rocket seeks the file for it (Content-Length).
            .sized_body(None, self.file)
            .ok()
    }
}

#[rocket::get("/backups/<id>/file")]
async fn file(service: &State<Service>, _caller: Caller, id: &str) -> ApiResult<ArchiveFile> {
    let (backup, path) = service.backup_file(parse_id(id)?).await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::Internal(format!("opening {}: {e}", path.display())))?;
    let gzip = path.extension().is_some_and(|ext| ext == "gz");
    let (content_type, suffix) = match gzip {
        true => (ContentType::new("application", "gzip"), "tar.gz"),
        false => (ContentType::new("application", "zstd"), "tar.zst"),
    };
    Ok(ArchiveFile {
        file,
        content_type,
        name: format!("{}-{}.{suffix}", backup.container_name, backup.id),
    })
}

#[rocket::delete("/backups/<id>")]
async fn delete(service: &State<Service>, _caller: Caller, id: &str) -> ApiResult<Json<Value>> {
    service.delete_backup(parse_id(id)?).await?;
    Ok(Json(json!({ "message": "success" })))
}

/// The body is the archive itself: a berth backup (`.tar.zst`) or a
/// Proxmox container backup (`vzdump-lxc-*.tar.zst` or `.tar.gz`).
#[rocket::post("/backups", data = "<data>")]
async fn upload(
    service: &State<Service>,
    _caller: Caller,
    limits: &Limits,
    content_type: Option<&ContentType>,
    data: Data<'_>,
) -> ApiResult<(Status, Json<Value>)> {
    if !is_archive_type(content_type) {
        return Err(ApiError::UnsupportedMediaType {
            got: content_type.map_or_else(|| "none".to_owned(), ToString::to_string),
            expected: "application/octet-stream (or application/zstd, application/gzip)",
        });
    }
    let (id, partial) = service.upload_target()?;
    let limit = limits
        .get("backup")
        .unwrap_or(DEFAULT_UPLOAD_LIMIT_GIB.gibibytes());
    let received = data.open(limit).into_file(&partial).await;
    let received = match received {
        Ok(received) => received,
        Err(error) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(ApiError::BackupUploadFailed(error.to_string()));
        }
    };
    if !received.is_complete() {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(ApiError::PayloadTooLarge(limit.to_string()));
    }
    let backup = service.accept_upload(id, &partial).await?;
    Ok((
        Status::Created,
        Json(json!({ "message": "success", "backup": backup })),
    ))
}
