//! `/healthz` and `/metrics` (outside the versioned API, where probes and
//! Prometheus expect them), and the fairing that counts requests.

use std::fmt::Write as _;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::ContentType;
use rocket::serde::json::Json;
use rocket::{Request, Response, Route, State};
use serde_json::{json, Value};

use crate::db::{containers, jobs};
use crate::error::{ApiError, ApiResult};
use crate::jobs::JobQueue;
use crate::metrics::{escape, Metrics};
use crate::service::Service;

pub fn routes() -> Vec<Route> {
    rocket::routes![healthz, metrics]
}

/// 200 when the database answers and the job runner is running; 503 (in
/// the error shape) otherwise.
#[rocket::get("/healthz")]
async fn healthz(service: &State<Service>, queue: &State<JobQueue>) -> ApiResult<Json<Value>> {
    if let Err(error) = service.db().ping().await {
        return Err(ApiError::Unhealthy(format!(
            "database does not answer: {error}"
        )));
    }
    if !queue.runner_alive() {
        return Err(ApiError::Unhealthy("job runner is not running".into()));
    }
    Ok(Json(
        json!({ "message": "success", "database": "ok", "runner": "ok" }),
    ))
}

#[rocket::get("/metrics")]
async fn metrics(
    service: &State<Service>,
    queue: &State<JobQueue>,
    metrics: &State<Metrics>,
) -> ApiResult<(ContentType, String)> {
    let mut conn = service
        .db()
        .pool()
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let internal = |e: crate::db::DbError| ApiError::Internal(e.to_string());
    let job_counts = jobs::count_by_status_and_action(&mut conn)
        .await
        .map_err(internal)?;
    let container_counts = containers::count_by_status(&mut conn)
        .await
        .map_err(internal)?;
    drop(conn);

    let mut out = String::new();
    out.push_str("# HELP berth_jobs Jobs kept in the database, by status and action.\n# TYPE berth_jobs gauge\n");
    for (status, action, count) in job_counts {
        let _ = writeln!(
            out,
            "berth_jobs{{status=\"{}\",action=\"{}\"}} {count}",
            escape(&status),
            escape(&action)
        );
    }
    out.push_str("# HELP berth_containers Containers, by status.\n# TYPE berth_containers gauge\n");
    for (status, count) in container_counts {
        let _ = writeln!(
            out,
            "berth_containers{{status=\"{}\"}} {count}",
            escape(&status)
        );
    }
    out.push_str("# HELP berth_jobs_running Jobs the runner is carrying out now.\n# TYPE berth_jobs_running gauge\n");
    let _ = writeln!(out, "berth_jobs_running {}", queue.running_count());
    metrics.render(&mut out);
    Ok((
        ContentType::new("text", "plain").with_params([("version", "0.0.4"), ("charset", "utf-8")]),
        out,
    ))
}

/// Counts every answer by route template (not raw path, to keep the label
/// set small) and status.
pub struct RequestCounter;

#[rocket::async_trait]
impl Fairing for RequestCounter {
    fn info(&self) -> Info {
        Info {
            name: "request counter",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        if let Some(metrics) = req.rocket().state::<Metrics>() {
            let route = req.route().map_or("unmatched", |r| r.uri.path());
            metrics.count_request(route, req.method().as_str(), res.status().code);
        }
    }
}
