//! `/jobs`: the state of queued, running and finished jobs.

use rocket::serde::json::Json;
use rocket::{Route, State};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::parse_id;
use crate::db::jobs::Job;
use crate::domain::job::{JobAction, JobStatus};
use crate::domain::time::{self, Timestamp};
use crate::error::{ApiError, ApiResult};
use crate::service::{Service, MAX_WAIT};

pub fn routes() -> Vec<Route> {
    rocket::routes![list, get, wait, log]
}

/// A job as the API shows it; the seed's fields first.
#[derive(Serialize)]
pub struct JobView<'a> {
    status: JobStatus,
    entity_type: &'a str,
    entity_id: Uuid,
    id: Uuid,
    action: JobAction,
    /// 0–100 where it can be measured, else `null`.
    progress: Option<u8>,
    /// Why it failed, when it did.
    error: Option<&'a str>,
    #[serde(with = "time::serde_rfc3339")]
    created_at: Timestamp,
    #[serde(with = "time::serde_rfc3339_option")]
    started_at: Option<Timestamp>,
    #[serde(with = "time::serde_rfc3339_option")]
    finished_at: Option<Timestamp>,
}

impl<'a> From<&'a Job> for JobView<'a> {
    fn from(job: &'a Job) -> Self {
        JobView {
            status: job.status,
            entity_type: &job.entity_type,
            entity_id: job.entity_id,
            id: job.id,
            action: job.action,
            progress: job.progress,
            error: job.error.as_deref(),
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
        }
    }
}

#[rocket::get("/jobs")]
async fn list(service: &State<Service>) -> ApiResult<Json<Value>> {
    let jobs = service.jobs().await?;
    let views: Vec<JobView<'_>> = jobs.iter().map(JobView::from).collect();
    Ok(Json(json!({ "message": "success", "jobs": views })))
}

/// A single job: the seed puts its fields beside `message`.
#[derive(Serialize)]
struct JobBody<'a> {
    message: &'static str,
    #[serde(flatten)]
    job: JobView<'a>,
}

#[rocket::get("/jobs/<id>")]
async fn get(service: &State<Service>, id: &str) -> ApiResult<Json<Value>> {
    let job = service.job(parse_id(id)?).await?;
    Ok(Json(json!(JobBody {
        message: "success",
        job: JobView::from(&job)
    })))
}

/// Answers as soon as the job has finished, or with its current state once
/// `timeout` seconds (default 30, at most 300) have passed.
#[rocket::get("/jobs/<id>/wait?<timeout>")]
async fn wait(service: &State<Service>, id: &str, timeout: Option<&str>) -> ApiResult<Json<Value>> {
    let id = parse_id(id)?;
    let seconds = match timeout {
        None => 30,
        Some(raw) => match raw.parse::<u64>() {
            Ok(seconds) if seconds <= MAX_WAIT.as_secs() => seconds,
            _ => {
                return Err(ApiError::Validation(format!(
                    "timeout: must be a whole number of seconds from 0 to {}",
                    MAX_WAIT.as_secs()
                )))
            }
        },
    };
    let job = service
        .wait_for_job(id, std::time::Duration::from_secs(seconds))
        .await?;
    Ok(Json(json!(JobBody {
        message: "success",
        job: JobView::from(&job)
    })))
}

/// The job's steps and, when a tool failed, what it printed.
#[rocket::get("/jobs/<id>/log")]
async fn log(service: &State<Service>, id: &str) -> ApiResult<Json<Value>> {
    let job = service.job(parse_id(id)?).await?;
    let lines = service.job_log(&job).await?;
    Ok(Json(json!({ "message": "success", "lines": lines })))
}
