//! `/containers/:id/snapshots`: take, list, restore and delete snapshots
//! of a container's root filesystem; `/containers/:id/clone`: a new
//! container copied from one. Each change answers with its job.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{Route, State};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::JsonBody;
use super::{parse_id, ApiBase, Caller, JobAnswer};
use crate::error::{ApiError, ApiResult};
use crate::service::{Accepted, CloneRequest, Service};

pub fn routes() -> Vec<Route> {
    rocket::routes![take, list, restore, delete, clone]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloneBody {
    name: String,
    #[serde(default)]
    snapshot: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
}

/// A new container copied from this one (or from its snapshot): 202 with
/// the new container's id and its clone job.
#[rocket::post("/containers/<id>/clone", data = "<body>")]
async fn clone(
    service: &State<Service>,
    caller: Caller,
    base: ApiBase,
    id: &str,
    body: Result<JsonBody<CloneBody>, ApiError>,
) -> ApiResult<JobAnswer> {
    let id = parse_id(id)?;
    let JsonBody(body) = body?;
    let request = CloneRequest {
        name: body.name,
        snapshot: body.snapshot,
        parameters: body.parameters,
    };
    let Accepted { job, container_id } = service.clone_container(id, request, &caller.0).await?;
    Ok(JobAnswer::new(
        Status::Accepted,
        base.job_url(job.id),
        json!({ "message": "success", "job_id": job.id, "container_id": container_id }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TakeBody {
    name: String,
}

fn accepted(base: &ApiBase, accepted: Accepted) -> JobAnswer {
    JobAnswer::new(
        Status::Accepted,
        base.job_url(accepted.job.id),
        json!({ "message": "success", "job_id": accepted.job.id }),
    )
}

#[rocket::post("/containers/<id>/snapshots", data = "<body>")]
async fn take(
    service: &State<Service>,
    caller: Caller,
    base: ApiBase,
    id: &str,
    body: Result<JsonBody<TakeBody>, ApiError>,
) -> ApiResult<JobAnswer> {
    let id = parse_id(id)?;
    let JsonBody(body) = body?;
    let queued = service.take_snapshot(id, &body.name, &caller.0).await?;
    Ok(accepted(&base, queued))
}

#[rocket::get("/containers/<id>/snapshots")]
async fn list(service: &State<Service>, _caller: Caller, id: &str) -> ApiResult<Json<Value>> {
    let id = parse_id(id)?;
    let snapshots = service.snapshots(id).await?;
    Ok(Json(
        json!({ "message": "success", "snapshots": snapshots }),
    ))
}

#[rocket::post("/containers/<id>/snapshots/<name>/restore")]
async fn restore(
    service: &State<Service>,
    caller: Caller,
    base: ApiBase,
    id: &str,
    name: &str,
) -> ApiResult<JobAnswer> {
    let id = parse_id(id)?;
    let queued = service.restore_snapshot(id, name, &caller.0).await?;
    Ok(accepted(&base, queued))
}

#[rocket::delete("/containers/<id>/snapshots/<name>")]
async fn delete(
    service: &State<Service>,
    caller: Caller,
    base: ApiBase,
    id: &str,
    name: &str,
) -> ApiResult<JobAnswer> {
    let id = parse_id(id)?;
    let queued = service.delete_snapshot(id, name, &caller.0).await?;
    Ok(accepted(&base, queued))
}
