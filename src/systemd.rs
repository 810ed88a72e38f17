//! Owns berth's conversation with systemd (sd_notify): `READY=1` once the
//! listener is bound and the job runner runs, a one-line `STATUS=`,
//! `WATCHDOG=1` only while the runner and the database prove responsive,
//! `STOPPING=1` at shutdown, and `EXTEND_TIMEOUT_USEC=` while shutdown
//! waits for a step that must not be cut off. Also berth's one definition
//! of healthy ([`Health`]), which the watchdog and `/healthz` both ask.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Orbit, Rocket};
use sd_notify::NotifyState;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::db::summary::{self, Summary};
use crate::db::{Db, DbError};
use crate::jobs::{JobQueue, HEARTBEAT_PERIOD};

/// How often `STATUS=` is refreshed when systemd runs no watchdog.
const STATUS_PERIOD: Duration = Duration::from_secs(10);

/// How often berth looks whether the runner has finished settling the jobs
/// a crash left running, before it may say `READY=1`.
const STARTUP_POLL: Duration = Duration::from_millis(50);

/// Why berth withholds its watchdog ping.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HealthError {
    #[error("the job runner is not running")]
    RunnerStopped,
    #[error("the job runner has not made progress for {} s", .0.as_secs())]
    RunnerWedged(Duration),
    #[error("the database did not answer within {} s", .0.as_secs_f32())]
    DatabaseTimeout(Duration),
    #[error("the database cannot be reached: {0}")]
    DatabaseUnreachable(String),
    #[error("the database failed: {0}")]
    Database(String),
}

impl From<DbError> for HealthError {
    fn from(error: DbError) -> Self {
        match error.is_unreachable() {
            true => HealthError::DatabaseUnreachable(error.to_string()),
            false => HealthError::Database(error.to_string()),
        }
    }
}

/// What healthy means, for the watchdog and `/healthz` alike: the runner
/// beats (it is not stopped, nor wedged) and the database answers a real
/// query in time. Paced by the watchdog interval systemd asks for, so that
/// `/healthz` fails exactly when systemd would restart berth.
#[derive(Clone)]
pub struct Health {
    db: Db,
    queue: JobQueue,
    /// systemd's watchdog interval, if it runs one.
    watchdog: Option<Duration>,
    /// How often the supervisor checks; also how long the database may take.
    period: Duration,
    max_age: Duration,
}

impl Health {
    /// `watchdog`: what `sd_notify::watchdog_enabled` says.
    pub fn new(db: Db, queue: JobQueue, watchdog: Option<Duration>) -> Self {
        let period = check_period(watchdog);
        Health {
            db,
            queue,
            watchdog,
            period,
            max_age: max_heartbeat_age(period),
        }
    }

    /// One health check; the answer doubles as the `STATUS=` line.
    pub async fn check(&self) -> Result<Summary, HealthError> {
        check(&self.db, &self.queue, self.max_age, self.period).await
    }
}

/// The fairing; it does nothing unless systemd gave berth a notify socket.
pub struct SystemdFairing {
    health: Health,
    supervisor: Mutex<Option<JoinHandle<()>>>,
}

impl SystemdFairing {
    pub fn new(health: Health) -> Self {
        SystemdFairing {
            health,
            supervisor: Mutex::new(None),
        }
    }
}

#[rocket::async_trait]
impl Fairing for SystemdFairing {
    fn info(&self) -> Info {
        Info {
            name: "systemd notify",
            kind: Kind::Liftoff | Kind::Shutdown,
        }
    }

    /// Liftoff means the listener is bound and the runner has been spawned
    /// (liftoff fairings run concurrently, so the supervisor waits for the
    /// runner's first beat rather than trusting the order of fairings).
    async fn on_liftoff(&self, _: &Rocket<Orbit>) {
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            return;
        }
        let task = tokio::spawn(supervise(self.health.clone()));
        *self.supervisor.lock().await = Some(task);
    }

    async fn on_shutdown(&self, _: &Rocket<Orbit>) {
        let Some(task) = self.supervisor.lock().await.take() else {
            return;
        };
        // The supervisor only sends datagrams (synchronously) and reads the
        // database, so cancelling it at its next await is safe; once it is
        // gone nothing can send a STATUS= or WATCHDOG=1 after STOPPING=1.
        task.abort();
        let _ = task.await;
        // Said as soon as shutdown begins (shutdown fairings run together),
        // so systemd shows "deactivating" while the runner drains; its stop
        // timeout, not the watchdog, bounds that.
        send(&[
            NotifyState::Stopping,
            NotifyState::Status("stopping: finishing running jobs"),
        ]);
    }
}

/// Asks systemd for more time to stop while `steps` run: each call grants
/// three waiting periods from now, so a missed one does not end the wait.
/// Nothing happens outside systemd.
pub fn extend_stop_timeout(steps: &[String]) {
    let usec = (crate::jobs::CRITICAL_WAIT_PERIOD * 3).as_micros();
    let status = format!("stopping: waiting for {}", steps.join(", "));
    send(&[
        NotifyState::ExtendTimeoutUsec(u32::try_from(usec).unwrap_or(u32::MAX)),
        NotifyState::Status(&status),
    ]);
}

/// Sends states to systemd; a failure is logged (once), never fatal:
/// systemd notices a missing READY or ping on its own.
fn send(states: &[NotifyState<'_>]) {
    static REPORTED: AtomicBool = AtomicBool::new(false);
    if let Err(error) = sd_notify::notify(states) {
        if !REPORTED.swap(true, Ordering::Relaxed) {
            log::warn!("systemd: cannot notify: {error}");
        }
    }
}

/// The pace of the checks: half the watchdog interval, as systemd asks.
fn check_period(watchdog: Option<Duration>) -> Duration {
    watchdog.map_or(STATUS_PERIOD, |interval| interval / 2)
}

/// The runner beats every `HEARTBEAT_PERIOD`; a few missed beats, or a whole
/// check period, make it wedged.
fn max_heartbeat_age(period: Duration) -> Duration {
    period.max(HEARTBEAT_PERIOD * 3)
}

/// Judges the runner from what its loop publishes.
fn runner_health(
    alive: bool,
    heartbeat_age: Option<Duration>,
    max_age: Duration,
) -> Result<(), HealthError> {
    match heartbeat_age {
        _ if !alive => Err(HealthError::RunnerStopped),
        None => Err(HealthError::RunnerStopped),
        Some(age) if age > max_age => Err(HealthError::RunnerWedged(age)),
        Some(_) => Ok(()),
    }
}

/// One health check: the runner is beating and the database answers a real
/// query within `timeout`. The answer doubles as the `STATUS=` line.
async fn check(
    db: &Db,
    queue: &JobQueue,
    max_age: Duration,
    timeout: Duration,
) -> Result<Summary, HealthError> {
    runner_health(queue.runner_alive(), queue.heartbeat_age(), max_age)?;
    let query = async {
        let mut conn = db.pool().acquire().await.map_err(DbError::from)?;
        summary::summary(&mut conn).await
    };
    match tokio::time::timeout(timeout, query).await {
        Ok(answer) => Ok(answer?),
        Err(_) => Err(HealthError::DatabaseTimeout(timeout)),
    }
}

fn status_line(summary: &Summary) -> String {
    let plural = |n: i64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    format!(
        "{}, {} running, {} queued",
        plural(summary.containers, "container", "containers"),
        plural(summary.running_jobs, "job", "jobs"),
        summary.queued_jobs
    )
}

/// Waits for the runner to start (it first settles jobs a crash left
/// running, which may take a while), then says READY=1 and keeps STATUS=
/// and the watchdog going until it is cancelled at shutdown.
async fn supervise(health: Health) {
    let (watchdog, period) = (health.watchdog, health.period);
    if let Some(interval) = watchdog {
        log::info!(
            "systemd: watchdog every {:.1} s; checking runner and database every {:.1} s",
            interval.as_secs_f32(),
            period.as_secs_f32()
        );
    }

    send(&[NotifyState::Status(
        "starting: settling jobs left from the last run",
    )]);
    while health.queue.heartbeat_age().is_none() {
        tokio::time::sleep(STARTUP_POLL).await;
    }

    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ready = false;
    let mut problem: Option<HealthError> = None;
    loop {
        ticks.tick().await;
        match health.check().await {
            Ok(summary) => {
                let status = status_line(&summary);
                let mut states = vec![NotifyState::Status(&status)];
                if !ready {
                    states.push(NotifyState::Ready);
                }
                if watchdog.is_some() {
                    states.push(NotifyState::Watchdog);
                }
                send(&states);
                if !ready {
                    log::info!("systemd: ready ({status})");
                    ready = true;
                }
                if let Some(past) = problem.take() {
                    log::warn!("systemd: healthy again after: {past}");
                }
            }
            Err(error) => {
                // No WATCHDOG=1: if this lasts, systemd restarts berth.
                send(&[NotifyState::Status(&format!("unhealthy: {error}"))]);
                // Logged when the kind of problem changes, not on every tick
                // (a wedged runner's age grows each time).
                let new_kind = problem.as_ref().map(std::mem::discriminant)
                    != Some(std::mem::discriminant(&error));
                if new_kind {
                    log::error!("systemd: withholding the watchdog ping: {error}");
                }
                problem = Some(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn checks_run_at_half_the_watchdog_interval() {
        assert_eq!(
            check_period(Some(Duration::from_secs(30))),
            Duration::from_secs(15)
        );
        assert_eq!(check_period(None), STATUS_PERIOD);
    }

    #[test]
    fn a_fresh_heartbeat_is_healthy() {
        assert_eq!(runner_health(true, Some(SECOND), 3 * SECOND), Ok(()));
    }

    #[test]
    fn a_stale_heartbeat_is_a_wedged_runner() {
        assert_eq!(
            runner_health(true, Some(5 * SECOND), 3 * SECOND),
            Err(HealthError::RunnerWedged(5 * SECOND))
        );
    }

    #[test]
    fn a_stopped_or_unstarted_runner_is_unhealthy() {
        assert_eq!(
            runner_health(false, Some(SECOND), 3 * SECOND),
            Err(HealthError::RunnerStopped)
        );
        assert_eq!(
            runner_health(true, None, 3 * SECOND),
            Err(HealthError::RunnerStopped)
        );
    }

    #[test]
    fn short_watchdogs_still_allow_a_few_missed_beats() {
        assert_eq!(
            max_heartbeat_age(Duration::from_millis(500)),
            3 * HEARTBEAT_PERIOD
        );
        assert_eq!(
            max_heartbeat_age(Duration::from_secs(15)),
            Duration::from_secs(15)
        );
    }

    #[test]
    fn the_status_line_is_short_and_counts() {
        let summary = Summary {
            containers: 1,
            running_jobs: 2,
            queued_jobs: 0,
        };
        assert_eq!(
            status_line(&summary),
            "1 container, 2 jobs running, 0 queued"
        );
    }

    /// The whole check against a real database and a real runner queue: a
    /// runner that has never beaten (or stopped beating) gets no ping.
    #[rocket::async_test]
    async fn a_runner_that_never_beat_gets_no_ping() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        let queue = JobQueue::new();
        let verdict = check(&db, &queue, 3 * SECOND, SECOND).await;
        assert_eq!(verdict, Err(HealthError::RunnerStopped));
    }

    /// A real runner wedged for real: another connection holds SQLite's
    /// write lock, so the runner's claim of the next job blocks (up to the
    /// 10 s busy timeout). Reads still answer (WAL), so only the heartbeat
    /// can tell; the ping comes back once the lock is gone.
    #[rocket::async_test]
    async fn a_runner_stuck_on_the_database_gets_no_ping() {
        use std::sync::Arc;

        use crate::db::jobs as job_rows;
        use crate::driver::lxc::LxcDriver;
        use crate::jobs::{Runner, RunnerHandle, RunnerSettings};
        use crate::os_templates::OsTemplateStore;

        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        let queue = JobQueue::new();
        let driver = LxcDriver::new(dir.path().join("lxc"), "berthtest0".into(), 5, false);
        let runner = Runner::new(
            db.clone(),
            Arc::new(driver),
            OsTemplateStore::new(dir.path().join("templates")),
            queue.clone(),
            crate::events::EventBus::new(),
            crate::metrics::Metrics::new(),
            RunnerSettings {
                max_parallel: 1,
                retention: Duration::from_secs(86_400),
                node: "local".into(),
                node_timeout_secs: 30,
                peers: None,
            },
        );
        let handle = RunnerHandle::spawn(runner);
        let max_age = 3 * HEARTBEAT_PERIOD;
        while queue.heartbeat_age().is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(check(&db, &queue, max_age, SECOND).await.is_ok());

        // A write statement in an open transaction takes the write lock.
        let mut lock = db.begin().await.unwrap();
        job_rows::claim_next(&mut lock, "", crate::domain::time::now())
            .await
            .unwrap();
        queue.wake();
        tokio::time::sleep(max_age + SECOND).await;
        let verdict = check(&db, &queue, max_age, SECOND).await;
        assert!(
            matches!(verdict, Err(HealthError::RunnerWedged(_))),
            "{verdict:?}"
        );

        lock.rollback().await.unwrap();
        tokio::time::sleep(2 * HEARTBEAT_PERIOD).await;
        assert!(check(&db, &queue, max_age, SECOND).await.is_ok());
        handle.shutdown(SECOND, |_| {}).await;
    }
}
