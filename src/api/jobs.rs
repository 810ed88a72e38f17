//! `/jobs`: the state of queued, running and finished jobs.

use rocket::http::Status;
use rocket::serde::json::Json;
use rocket::{Route, State};
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use super::paging::{decode_cursor, encode_cursor, parse_limit};
use super::query::{at_most_once, one_of, Param};
use super::{parse_id, Caller};
use crate::db::jobs::Job;
use crate::db::jobs::JobFilter;
use crate::domain::job::{JobAction, JobStatus};
use crate::domain::time::{self, Timestamp};
use crate::error::{ApiError, ApiResult};
use crate::service::{CancelOutcome, Service, MAX_WAIT};

pub fn routes() -> Vec<Route> {
    rocket::routes![list, get, wait, log, cancel]
}

/// A job as the API's JSON shows it, the seed's fields first (the console's
/// HTML shows its own `console::views::JobView`).
#[derive(Serialize)]
pub struct JobJson<'a> {
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
    /// The API token or console user that asked for it (`null` without
    /// authentication).
    requested_by: Option<&'a str>,
}

impl<'a> From<&'a Job> for JobJson<'a> {
    fn from(job: &'a Job) -> Self {
        JobJson {
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
            requested_by: job.requested_by.as_deref(),
        }
    }
}

/// Jobs newest first, `limit` (1–500, default 50) at a time; pass
/// `next_cursor` back as `cursor` for older ones. Filters: `status`,
/// `entity_id`, `action`.
#[rocket::get("/jobs?<limit>&<cursor>&<status>&<entity_id>&<action>")]
async fn list(
    service: &State<Service>,
    _caller: Caller,
    limit: Param<'_>,
    cursor: Param<'_>,
    status: Param<'_>,
    entity_id: Param<'_>,
    action: Param<'_>,
) -> ApiResult<Json<Value>> {
    let limit = at_most_once("limit", limit)?;
    let cursor = at_most_once("cursor", cursor)?;
    let filter = JobFilter {
        status: at_most_once("status", status)?
            .map(|raw| one_of("status", raw, &JobStatus::ALL, JobStatus::as_str))
            .transpose()?,
        entity_id: at_most_once("entity_id", entity_id)?
            .map(|raw| {
                Uuid::try_parse(raw)
                    .map_err(|_| ApiError::Validation("entity_id: must be a UUID".into()))
            })
            .transpose()?,
        action: at_most_once("action", action)?
            .map(|raw| one_of("action", raw, &JobAction::ALL, JobAction::as_str))
            .transpose()?,
    };
    let page = service
        .jobs(&filter, decode_cursor(cursor)?, parse_limit(limit)?)
        .await?;
    let views: Vec<JobJson<'_>> = page.items.iter().map(JobJson::from).collect();
    Ok(Json(json!({
        "message": "success",
        "jobs": views,
        "next_cursor": page.next.map(encode_cursor),
    })))
}

/// A single job: the seed puts its fields beside `message`.
#[derive(Serialize)]
struct JobBody<'a> {
    message: &'static str,
    #[serde(flatten)]
    job: JobJson<'a>,
}

#[rocket::get("/jobs/<id>")]
async fn get(service: &State<Service>, _caller: Caller, id: &str) -> ApiResult<Json<Value>> {
    let job = service.job(parse_id(id)?).await?;
    Ok(Json(json!(JobBody {
        message: "success",
        job: JobJson::from(&job)
    })))
}

/// Answers as soon as the job has finished, or with its current state once
/// `timeout` seconds (default 30, at most 300) have passed.
#[rocket::get("/jobs/<id>/wait?<timeout>")]
async fn wait(
    service: &State<Service>,
    _caller: Caller,
    id: &str,
    timeout: Param<'_>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(id)?;
    let seconds = match at_most_once("timeout", timeout)? {
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
        job: JobJson::from(&job)
    })))
}

/// The job's steps and, when a tool failed, what it printed.
#[rocket::get("/jobs/<id>/log")]
async fn log(service: &State<Service>, _caller: Caller, id: &str) -> ApiResult<Json<Value>> {
    let job = service.job(parse_id(id)?).await?;
    let lines = service.job_log(&job).await?;
    Ok(Json(json!({ "message": "success", "lines": lines })))
}

/// Cancels a queued job (200, now `cancelled`), or asks a running one to
/// stop where its step can stop safely (202, still `running`); 409 when
/// neither is possible.
#[rocket::delete("/jobs/<id>")]
async fn cancel(
    service: &State<Service>,
    _caller: Caller,
    id: &str,
) -> ApiResult<(Status, Json<Value>)> {
    let (status, job) = match service.cancel_job(parse_id(id)?).await? {
        CancelOutcome::Cancelled(job) => (Status::Ok, job),
        CancelOutcome::Stopping(job) => (Status::Accepted, job),
    };
    Ok((
        status,
        Json(json!(JobBody {
            message: "success",
            job: JobJson::from(&job)
        })),
    ))
}
