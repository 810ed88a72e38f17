//! `/templates`: the OS templates containers are created from — list,
//! upload (streamed to disk, installed atomically) and delete.

use rocket::data::{Data, Limits, ToByteUnit};
use rocket::http::{ContentType, Status};
use rocket::serde::json::Json;
use rocket::{Route, State};
use serde_json::{json, Value};

use super::query::{at_most_once, Param};
use super::Caller;
use crate::domain::os_template::TemplateFormat;
use crate::error::{ApiError, ApiResult};
use crate::os_templates::TemplateError;
use crate::service::Service;

pub fn routes() -> Vec<Route> {
    rocket::routes![list, upload, delete]
}

/// The upload limit unless Rocket's `limits.template` sets another.
const DEFAULT_UPLOAD_LIMIT_GIB: u64 = 4;

#[rocket::get("/templates")]
async fn list(service: &State<Service>, _caller: Caller) -> ApiResult<Json<Value>> {
    let templates = service.templates_list().await?;
    Ok(Json(
        json!({ "message": "success", "templates": templates }),
    ))
}

/// The body is the archive itself; `name` is its file name
/// (`debian-12.tar.zst`), whose suffix gives the format.
#[rocket::post("/templates?<name>&<replace>", data = "<data>")]
async fn upload(
    service: &State<Service>,
    _caller: Caller,
    name: Param<'_>,
    replace: Param<'_>,
    limits: &Limits,
    content_type: Option<&ContentType>,
    data: Data<'_>,
) -> ApiResult<(Status, Json<Value>)> {
    let file_name = at_most_once("name", name)?.ok_or_else(|| {
        ApiError::Validation(
            "name: the template's file name is required, e.g. ?name=busybox.tar.gz".into(),
        )
    })?;
    // Taken as text: Rocket's `Option<bool>` reads a malformed value as
    // absent, which would quietly refuse to replace.
    let replace = match at_most_once("replace", replace)? {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::Validation(
                "replace: must be true or false".into(),
            ))
        }
    };
    // A page of another site may post a body typed text/plain or
    // form-urlencoded without asking first; an archive type it may not.
    if !is_archive_type(content_type) {
        return Err(ApiError::UnsupportedMediaType {
            got: content_type.map_or_else(|| "none".to_owned(), ToString::to_string),
            expected: "application/octet-stream (or an archive type such as \
                       application/gzip, application/x-xz, application/zstd, application/x-tar)",
        });
    }
    // Refuse a bad name before streaming what may be gigabytes to disk.
    if TemplateFormat::split_file_name(file_name).is_none() {
        return Err(TemplateError::BadFileName(file_name.to_owned()).into());
    }
    let store = service.os_templates().clone();
    let staging = store.staging_path();
    let limit = limits
        .get("template")
        .unwrap_or(DEFAULT_UPLOAD_LIMIT_GIB.gibibytes());
    let received = data
        .open(limit)
        .into_file(&staging)
        .await
        .map_err(|e| ApiError::Internal(format!("receiving template upload: {e}")));
    let received = match received {
        Ok(received) => received,
        Err(error) => {
            let _ = tokio::fs::remove_file(&staging).await;
            return Err(error);
        }
    };
    if !received.is_complete() {
        let _ = tokio::fs::remove_file(&staging).await;
        return Err(ApiError::PayloadTooLarge(limit.to_string()));
    }
    let installed = service
        .install_template(staging, file_name.to_owned(), replace)
        .await?;
    Ok((
        Status::Created,
        Json(json!({ "message": "success", "template": installed })),
    ))
}

/// The media types an uploaded archive may be sent as.
const ARCHIVE_MEDIA_TYPES: [(&str, &str); 9] = [
    ("application", "octet-stream"),
    ("application", "gzip"),
    ("application", "x-gzip"),
    ("application", "x-xz"),
    ("application", "zstd"),
    ("application", "x-zstd"),
    ("application", "x-tar"),
    ("application", "x-gtar"),
    ("application", "x-compressed-tar"),
];

pub(super) fn is_archive_type(content_type: Option<&ContentType>) -> bool {
    content_type.is_some_and(|content_type| {
        ARCHIVE_MEDIA_TYPES.iter().any(|(top, sub)| {
            content_type.top().as_str().eq_ignore_ascii_case(top)
                && content_type.sub().as_str().eq_ignore_ascii_case(sub)
        })
    })
}

#[rocket::delete("/templates/<name>")]
async fn delete(service: &State<Service>, _caller: Caller, name: &str) -> ApiResult<Json<Value>> {
    service.delete_template(name).await?;
    Ok(Json(json!({ "message": "success" })))
}
