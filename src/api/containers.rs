//! `/containers`: create, read, list, update parameters, delete, and the
//! lifecycle actions. Each change answers with the job that carries it out.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{Route, State};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::JsonBody;
use super::{parse_id, ApiBase, JobAnswer};
use crate::domain::job::JobAction;
use crate::error::{ApiError, ApiResult};
use crate::service::{NewContainer, Service};

pub fn routes() -> Vec<Route> {
    rocket::routes![create, list, get, update, delete, start, stop, restart]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    ostemplate: String,
    #[serde(default)]
    parameters: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    parameters: Value,
}

#[rocket::post("/containers", data = "<body>")]
async fn create(
    service: &State<Service>,
    base: ApiBase,
    body: Result<JsonBody<CreateBody>, ApiError>,
) -> ApiResult<JobAnswer> {
    let JsonBody(body) = body?;
    let request = NewContainer {
        name: body.name,
        ostemplate: body.ostemplate,
        parameters: body.parameters,
    };
    let (container, job) = service.create_container(request).await?;
    Ok(JobAnswer::new(
        Status::Accepted,
        base.job_url(job.id),
        json!({ "message": "success", "job_id": job.id, "container_id": container.id }),
    ))
}

#[rocket::get("/containers")]
async fn list(service: &State<Service>) -> ApiResult<Json<Value>> {
    let containers = service.containers().await?;
    Ok(Json(
        json!({ "message": "success", "containers": containers }),
    ))
}

#[rocket::get("/containers/<id>")]
async fn get(service: &State<Service>, id: &str) -> ApiResult<Json<Value>> {
    let container = service.container(parse_id(id)?).await?;
    Ok(Json(
        json!({ "message": "success", "container": container }),
    ))
}

#[rocket::patch("/containers/<id>", data = "<body>")]
async fn update(
    service: &State<Service>,
    base: ApiBase,
    id: &str,
    body: Result<JsonBody<UpdateBody>, ApiError>,
) -> ApiResult<JobAnswer> {
    let id = parse_id(id)?;
    let JsonBody(body) = body?;
    let job = service.update_parameters(id, &body.parameters).await?;
    Ok(JobAnswer::new(
        Status::Ok,
        base.job_url(job.id),
        json!({ "message": "success", "code": 0, "job_id": job.id }),
    ))
}

async fn queue(
    service: &Service,
    base: &ApiBase,
    id: &str,
    action: JobAction,
) -> ApiResult<JobAnswer> {
    let job = service.queue_action(parse_id(id)?, action).await?;
    Ok(JobAnswer::new(
        Status::Accepted,
        base.job_url(job.id),
        json!({ "message": "success", "job_id": job.id }),
    ))
}

#[rocket::delete("/containers/<id>")]
async fn delete(service: &State<Service>, base: ApiBase, id: &str) -> ApiResult<JobAnswer> {
    queue(service, &base, id, JobAction::Delete).await
}

#[rocket::post("/containers/<id>/start")]
async fn start(service: &State<Service>, base: ApiBase, id: &str) -> ApiResult<JobAnswer> {
    queue(service, &base, id, JobAction::Start).await
}

#[rocket::post("/containers/<id>/stop")]
async fn stop(service: &State<Service>, base: ApiBase, id: &str) -> ApiResult<JobAnswer> {
    queue(service, &base, id, JobAction::Stop).await
}

#[rocket::post("/containers/<id>/restart")]
async fn restart(service: &State<Service>, base: ApiBase, id: &str) -> ApiResult<JobAnswer> {
    queue(service, &base, id, JobAction::Restart).await
}
