//! `/containers`: create, read, list, update parameters, delete, and the
//! lifecycle actions. Each change answers with the job that carries it out.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{Route, State};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::JsonBody;
use super::paging::{decode_cursor, encode_cursor, parse_limit};
use super::query::{at_most_once, one_of, Param};
use super::{parse_id, ApiBase, Caller, Idempotency, JobAnswer};
use crate::db::containers::ContainerFilter;
use crate::domain::container::ContainerStatus;
use crate::domain::lifecycle::Action;
use crate::error::{ApiError, ApiResult};
use crate::service::{parse_node_name, Accepted, NewContainer, RestoreRequest, Service};

pub fn routes() -> Vec<Route> {
    rocket::routes![create, list, get, update, delete, start, stop, restart, migrate]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    /// Required unless `backup` is given.
    #[serde(default)]
    ostemplate: Option<String>,
    /// Restore this backup instead of unpacking a template.
    #[serde(default)]
    backup: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
    /// The node to create it on; without it berth places it.
    #[serde(default)]
    node: Option<String>,
    /// The storage pool; without it the first one (`GET /v1/storage`).
    #[serde(default)]
    storage: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MigrateBody {
    /// The node to move the container to.
    node: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    parameters: Value,
}

#[rocket::post("/containers", data = "<body>")]
async fn create(
    service: &State<Service>,
    caller: Caller,
    base: ApiBase,
    idempotency: Result<Idempotency, ApiError>,
    body: Result<JsonBody<CreateBody>, ApiError>,
) -> ApiResult<JobAnswer> {
    let Idempotency(key) = idempotency?;
    let JsonBody(body) = body?;
    let accepted = match (body.ostemplate, body.backup) {
        (Some(ostemplate), None) => {
            let request = NewContainer {
                name: body.name,
                ostemplate,
                parameters: body.parameters,
                node: body.node,
                storage: body.storage,
            };
            service.create_container(request, key.as_ref(), &caller.0)
        }
        (None, Some(backup)) => {
            let request = RestoreRequest {
                name: body.name,
                backup,
                parameters: body.parameters,
                node: body.node,
                storage: body.storage,
            };
            return restored(service, &base, request, key, caller).await;
        }
        // As serde says it when a required field is missing.
        (None, None) => return Err(ApiError::InvalidBody("missing field `ostemplate`".into())),
        (Some(_), Some(_)) => {
            return Err(ApiError::Validation(
                "ostemplate: a restore takes the backup's; give ostemplate or backup, not both"
                    .into(),
            ))
        }
    };
    let Accepted { job, container_id } = accepted.await?;
    Ok(JobAnswer::new(
        Status::Accepted,
        base.job_url(job.id),
        json!({ "message": "success", "job_id": job.id, "container_id": container_id }),
    ))
}

async fn restored(
    service: &Service,
    base: &ApiBase,
    request: RestoreRequest,
    key: Option<crate::service::IdempotencyKey>,
    caller: Caller,
) -> ApiResult<JobAnswer> {
    let Accepted { job, container_id } = service
        .restore_container(request, key.as_ref(), &caller.0)
        .await?;
    Ok(JobAnswer::new(
        Status::Accepted,
        base.job_url(job.id),
        json!({ "message": "success", "job_id": job.id, "container_id": container_id }),
    ))
}

/// Containers oldest first, `limit` (1–500, default 50) at a time; pass
/// `next_cursor` back as `cursor` for the next page. Filters: `status`
/// (`deleted` lists deleted ones), exact `name` and `node`.
#[rocket::get("/containers?<limit>&<cursor>&<status>&<name>&<node>")]
async fn list(
    service: &State<Service>,
    _caller: Caller,
    limit: Param<'_>,
    cursor: Param<'_>,
    status: Param<'_>,
    name: Param<'_>,
    node: Param<'_>,
) -> ApiResult<Json<Value>> {
    let limit = at_most_once("limit", limit)?;
    // A node filter is a node name (as documented), not any text.
    let node = at_most_once("node", node)?
        .map(|raw| {
            parse_node_name(raw)
                .map(|name| name.as_str().to_owned())
                .map_err(|errors| ApiError::Validation(errors.to_string()))
        })
        .transpose()?;
    let cursor = at_most_once("cursor", cursor)?;
    let name = at_most_once("name", name)?;
    let status = at_most_once("status", status)?
        .map(|raw| {
            one_of(
                "status",
                raw,
                &ContainerStatus::ALL,
                ContainerStatus::as_str,
            )
        })
        .transpose()?;
    let filter = ContainerFilter {
        status,
        name: name.map(str::to_owned),
        node,
    };
    let page = service
        .containers(&filter, decode_cursor(cursor)?, parse_limit(limit)?)
        .await?;
    Ok(Json(json!({
        "message": "success",
        "containers": page.items,
        "next_cursor": page.next.map(encode_cursor),
    })))
}

#[rocket::get("/containers/<id>")]
async fn get(service: &State<Service>, _caller: Caller, id: &str) -> ApiResult<Json<Value>> {
    let container = service.container(parse_id(id)?).await?;
    Ok(Json(
        json!({ "message": "success", "container": container }),
    ))
}

#[rocket::patch("/containers/<id>", data = "<body>")]
async fn update(
    service: &State<Service>,
    caller: Caller,
    base: ApiBase,
    id: &str,
    body: Result<JsonBody<UpdateBody>, ApiError>,
) -> ApiResult<JobAnswer> {
    let id = parse_id(id)?;
    let JsonBody(body) = body?;
    let job = service
        .update_parameters(id, &body.parameters, &caller.0)
        .await?;
    Ok(JobAnswer::new(
        Status::Ok,
        base.job_url(job.id),
        json!({ "message": "success", "code": 0, "job_id": job.id }),
    ))
}

async fn queue(
    service: &Service,
    caller: Caller,
    base: &ApiBase,
    id: &str,
    action: Action,
    idempotency: Result<Idempotency, ApiError>,
) -> ApiResult<JobAnswer> {
    let id = parse_id(id)?;
    let Idempotency(key) = idempotency?;
    let Accepted { job, .. } = service
        .queue_action(id, action, key.as_ref(), &caller.0)
        .await?;
    Ok(JobAnswer::new(
        Status::Accepted,
        base.job_url(job.id),
        json!({ "message": "success", "job_id": job.id }),
    ))
}

#[rocket::delete("/containers/<id>")]
async fn delete(
    service: &State<Service>,
    caller: Caller,
    base: ApiBase,
    id: &str,
    idempotency: Result<Idempotency, ApiError>,
) -> ApiResult<JobAnswer> {
    queue(service, caller, &base, id, Action::Delete, idempotency).await
}

#[rocket::post("/containers/<id>/start")]
async fn start(
    service: &State<Service>,
    caller: Caller,
    base: ApiBase,
    id: &str,
    idempotency: Result<Idempotency, ApiError>,
) -> ApiResult<JobAnswer> {
    queue(service, caller, &base, id, Action::Start, idempotency).await
}

#[rocket::post("/containers/<id>/stop")]
async fn stop(
    service: &State<Service>,
    caller: Caller,
    base: ApiBase,
    id: &str,
    idempotency: Result<Idempotency, ApiError>,
) -> ApiResult<JobAnswer> {
    queue(service, caller, &base, id, Action::Stop, idempotency).await
}

#[rocket::post("/containers/<id>/restart")]
async fn restart(
    service: &State<Service>,
    caller: Caller,
    base: ApiBase,
    id: &str,
    idempotency: Result<Idempotency, ApiError>,
) -> ApiResult<JobAnswer> {
    queue(service, caller, &base, id, Action::Restart, idempotency).await
}

/// Moves the container to another node: a job that stops it if it runs,
/// sends its files, and starts it there again if it ran.
#[rocket::post("/containers/<id>/migrate", data = "<body>")]
async fn migrate(
    service: &State<Service>,
    caller: Caller,
    base: ApiBase,
    id: &str,
    idempotency: Result<Idempotency, ApiError>,
    body: Result<JsonBody<MigrateBody>, ApiError>,
) -> ApiResult<JobAnswer> {
    let id = parse_id(id)?;
    let Idempotency(key) = idempotency?;
    let JsonBody(body) = body?;
    let Accepted { job, .. } = service
        .queue_migration(id, &body.node, key.as_ref(), &caller.0)
        .await?;
    Ok(JobAnswer::new(
        Status::Accepted,
        base.job_url(job.id),
        json!({ "message": "success", "job_id": job.id }),
    ))
}
