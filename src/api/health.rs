//! `/healthz` and `/metrics` (outside the versioned API, where probes and
//! Prometheus expect them), and the fairing that counts requests.

use std::fmt::Write as _;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::ContentType;
use rocket::serde::json::Json;
use rocket::{Request, Response, Route, State};
use rocket_db_pools::Connection;
use serde_json::{json, Value};

use super::Caller;
use crate::db::{containers, jobs, BerthDb};
use crate::error::{ApiError, ApiResult};
use crate::jobs::JobQueue;
use crate::metrics::{escape, Metrics};
use crate::systemd::Health;

pub fn routes() -> Vec<Route> {
    rocket::routes![healthz, metrics]
}

/// 200 when berth is healthy as the watchdog judges it (the runner beats,
/// the database answers in time); 503 (in the error shape) saying why
/// otherwise, when systemd's watchdog would be going without its ping.
#[rocket::get("/healthz")]
async fn healthz(health: &State<Health>) -> ApiResult<Json<Value>> {
    if let Err(error) = health.check().await {
        return Err(ApiError::Unhealthy(error.to_string()));
    }
    Ok(Json(
        json!({ "message": "success", "database": "ok", "runner": "ok" }),
    ))
}

/// Counts straight from a read connection (rocket_db_pools' request guard):
/// the service has nothing to add to them.
#[rocket::get("/metrics")]
async fn metrics(
    _caller: Caller,
    mut conn: Connection<BerthDb>,
    queue: &State<JobQueue>,
    metrics: &State<Metrics>,
    stats: &State<crate::stats::Stats>,
) -> ApiResult<(ContentType, String)> {
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
    crate::metrics::render_usage(&stats.latest(), &mut out);
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use rocket::http::Status;
    use rocket::local::asynchronous::Client;

    use super::*;
    use crate::db::Db;
    use crate::driver::lxc::LxcDriver;
    use crate::events::EventBus;
    use crate::jobs::{Runner, RunnerHandle, RunnerSettings, HEARTBEAT_PERIOD};
    use crate::os_templates::OsTemplateStore;

    /// A real runner wedged for real (another holder of the one write
    /// connection blocks its claim of the next job, as in the watchdog's
    /// own test): `/healthz` says 503, as the watchdog withholds its ping,
    /// and 200 again once the runner moves.
    #[rocket::async_test]
    async fn healthz_is_unhealthy_while_the_runner_is_wedged() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        let queue = JobQueue::new();
        let templates = OsTemplateStore::new(dir.path().join("templates"));
        let runner = Runner::new(
            db.clone(),
            Arc::new(LxcDriver::new(
                dir.path().join("lxc"),
                "berthtest0".into(),
                5,
                false,
            )),
            templates,
            queue.clone(),
            EventBus::new(),
            Metrics::new(),
            RunnerSettings {
                max_parallel: 1,
                retention: Duration::from_secs(86_400),
                node: "local".into(),
                node_timeout_secs: 30,
                peers: None,
            },
        );
        let handle = RunnerHandle::spawn(runner);
        while queue.heartbeat_age().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let rocket = rocket::custom(rocket::Config::debug_default())
            .mount("/", rocket::routes![healthz])
            .manage(Health::new(
                db.clone(),
                queue.clone(),
                Some(2 * HEARTBEAT_PERIOD),
            ));
        let client = Client::untracked(rocket).await.unwrap();
        let healthz = || async { client.get("/healthz").dispatch().await.status() };
        assert_eq!(healthz().await, Status::Ok);

        let mut lock = db.begin().await.unwrap();
        jobs::claim_next(&mut lock, "", crate::domain::time::now())
            .await
            .unwrap();
        queue.wake();
        tokio::time::sleep(4 * HEARTBEAT_PERIOD).await;
        assert_eq!(healthz().await, Status::ServiceUnavailable);

        lock.rollback().await.unwrap();
        tokio::time::sleep(2 * HEARTBEAT_PERIOD).await;
        assert_eq!(healthz().await, Status::Ok);
        handle.shutdown(Duration::from_secs(1), |_| {}).await;
    }
}
