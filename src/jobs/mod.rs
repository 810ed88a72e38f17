//! The persistent job runner: wakes when a job is queued, runs jobs of
//! different containers in parallel (bounded) and each container's jobs in
//! order, settles jobs a crash left running, and drains on shutdown.

mod backup;
mod cancel;
mod execute;
mod fairing;
mod heartbeat;
mod migrate;
mod observe;
mod retention;
mod snapshots;
mod step_log;

pub use snapshots::cancel_queued_snapshot;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinSet;

use crate::db::jobs::{self as job_rows, Job};
use crate::db::{Db, DbError};
use crate::domain::time;
use crate::driver::{CriticalSteps, Driver};
use crate::events::{Event, EventBus};
use crate::metrics::Metrics;
use crate::os_templates::OsTemplateStore;

pub use cancel::CancelAnswer;
pub use fairing::RunnerFairing;
pub use heartbeat::HEARTBEAT_PERIOD;

/// The handle the service uses to tell the runner there is new work.
#[derive(Clone, Default)]
pub struct JobQueue {
    inner: Arc<QueueInner>,
}

#[derive(Default)]
struct QueueInner {
    wake: Notify,
    alive: AtomicBool,
    running: cancel::RunningJobs,
    heartbeat: heartbeat::Heartbeat,
}

impl JobQueue {
    pub fn new() -> Self {
        JobQueue::default()
    }

    /// Called after a transaction that queued a job has committed. A wake-up
    /// sent while the runner is busy is kept for its next wait.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Asks a running job to stop, granted only inside a step that can.
    pub fn request_cancel(&self, job: uuid::Uuid) -> CancelAnswer {
        self.inner.running.request_cancel(job)
    }

    /// How many jobs are running now.
    pub fn running_count(&self) -> usize {
        self.inner.running.count()
    }

    /// Whether the runner's loop is running (for health checks).
    pub fn runner_alive(&self) -> bool {
        self.inner.alive.load(Ordering::Relaxed)
    }

    /// How long ago the runner's loop last showed progress; `None` before
    /// it started (for systemd's watchdog).
    pub fn heartbeat_age(&self) -> Option<Duration> {
        self.inner.heartbeat.age()
    }
}

/// How the runner behaves, from berth's settings.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Jobs of different containers that may run at once.
    pub max_parallel: usize,
    /// How long finished jobs stay readable.
    pub retention: Duration,
    /// This host's node name: the runner carries out only the jobs of the
    /// containers that live on it.
    pub node: String,
    /// A node silent for longer than this counts as offline (a move's
    /// target must not be).
    pub node_timeout_secs: u64,
    /// How this node reaches the others to move containers; `None` without
    /// a cluster secret.
    pub peers: Option<crate::cluster::peer::Peers>,
}

/// Everything a job needs to run.
pub struct Runner {
    db: Db,
    driver: Arc<dyn Driver>,
    os_templates: OsTemplateStore,
    queue: JobQueue,
    events: EventBus,
    metrics: Metrics,
    settings: RunnerSettings,
    /// The jobs this runner claimed whose end is not recorded yet: a job of
    /// this node found `running` and not here was claimed by a claim whose
    /// answer was lost (see `requeue_lost_claims`).
    claimed: Mutex<HashSet<uuid::Uuid>>,
    /// Where this node writes backups; `None` in tests built without one.
    backup_dir: Option<std::path::PathBuf>,
}

impl Runner {
    pub fn new(
        db: Db,
        driver: Arc<dyn Driver>,
        os_templates: OsTemplateStore,
        queue: JobQueue,
        events: EventBus,
        metrics: Metrics,
        settings: RunnerSettings,
    ) -> Self {
        Runner {
            db,
            driver,
            os_templates,
            queue,
            events,
            metrics,
            settings,
            claimed: Mutex::default(),
            backup_dir: None,
        }
    }

    /// Where this node writes backups and finds those it restores.
    pub fn with_backup_dir(mut self, dir: std::path::PathBuf) -> Self {
        self.backup_dir = Some(dir);
        self
    }

    /// Settles jobs left `running` by a crash, then runs the queue until
    /// `stop` turns true; then waits for the jobs in flight.
    async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        // Until they are settled, a job left `running` would look like a
        // lost claim (see `requeue_lost_claims`), and a create must not be
        // run again: wait for the database rather than go on without it.
        while let Err(error) = self.recover().await {
            log::error!("job runner: settling jobs left running failed (retrying): {error}");
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        self.queue.inner.alive.store(true, Ordering::Relaxed);
        let permits = Arc::new(Semaphore::new(self.settings.max_parallel));
        let mut in_flight = JoinSet::new();
        // Ticks while the runner waits, so that an idle runner still beats.
        let mut heartbeat = tokio::time::interval(HEARTBEAT_PERIOD);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // A claim failed: it may have been committed all the same.
        let mut unsure = false;
        while !*stop.borrow() {
            self.queue.inner.heartbeat.beat();
            if unsure {
                match self.requeue_lost_claims().await {
                    Ok(()) => unsure = false,
                    Err(error) => {
                        log::error!("job runner: cannot look for lost claims: {error}");
                        tokio::select! {
                            _ = stop.changed() => {}
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                        continue;
                    }
                }
            }
            while let Ok(permit) = permits.clone().try_acquire_owned() {
                match self.claim().await {
                    Ok(Some(job)) => {
                        self.events.publish(Event::Job(job.clone()));
                        let runner = self.clone();
                        in_flight.spawn(async move {
                            runner.execute(job).await;
                            drop(permit);
                        });
                    }
                    Ok(None) => break,
                    Err(error) => {
                        log::error!("job runner: cannot claim a job: {error}");
                        unsure = true;
                        tokio::select! {
                            _ = stop.changed() => {}
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                        break;
                    }
                }
            }
            // After a failed claim nothing may come to wake the runner (the
            // job that failed to be claimed was announced already): look
            // again at once.
            if unsure {
                continue;
            }
            // A heartbeat tick only beats: it must not turn the wait into
            // polling the database for jobs.
            loop {
                tokio::select! {
                    _ = self.queue.inner.wake.notified() => break,
                    Some(_) = in_flight.join_next(), if !in_flight.is_empty() => break,
                    _ = stop.changed() => break,
                    _ = heartbeat.tick() => self.queue.inner.heartbeat.beat(),
                }
            }
        }
        self.queue.inner.alive.store(false, Ordering::Relaxed);
        while in_flight.join_next().await.is_some() {}
    }

    /// Claims the next job, in a transaction that has committed before the
    /// job is handed over. Outside one, PostgreSQL sends the claimed row
    /// before the statement's implicit commit, and sqlx's `Any` driver
    /// returns on that row: a server that went down just then would leave
    /// the job `queued` while it ran, to be claimed and run again.
    async fn claim(&self) -> Result<Option<Job>, DbError> {
        let mut tx = self.db.begin().await?;
        let job = job_rows::claim_next(&mut tx, &self.settings.node, time::now()).await?;
        tx.commit().await?;
        if let Some(job) = &job {
            self.claimed.lock().expect("claimed jobs").insert(job.id);
        }
        Ok(job)
    }

    /// A claim that failed may still have been committed (the server
    /// committed, and the connection was lost before it said so): such a
    /// job is `running` with nobody running it. Nothing of it has run, so
    /// it goes back to the queue in its place. Only this runner claims this
    /// node's jobs, and the ones left by a crash were settled at start-up:
    /// a `running` job of this node that it does not know is such a claim.
    async fn requeue_lost_claims(&self) -> Result<(), DbError> {
        let mut conn = self.db.writer().await?;
        let running = job_rows::with_status_on(
            &mut conn,
            crate::domain::job::JobStatus::Running,
            &self.settings.node,
        )
        .await?;
        for job in running {
            if self.claimed.lock().expect("claimed jobs").contains(&job.id) {
                continue;
            }
            log::warn!(
                "job {} ({}) was claimed as the database connection was lost, before berth \
                 knew; it has not run, and is queued again",
                job.id,
                job.action.as_str()
            );
            job_rows::append_log(
                &mut conn,
                job.seq,
                time::now(),
                "the database connection was lost as this job was claimed; it had not run, \
                 and was queued again",
            )
            .await?;
            job_rows::requeue(&mut conn, job.id).await?;
        }
        Ok(())
    }

    /// The job's end is recorded: it is no longer this runner's.
    fn release(&self, job: uuid::Uuid) {
        self.claimed.lock().expect("claimed jobs").remove(&job);
    }

    /// Jobs found `running` at start-up were cut off by a crash. Idempotent
    /// ones go back to the queue in their place; a create is failed and
    /// its partial root filesystem removed.
    async fn recover(&self) -> Result<(), DbError> {
        let mut conn = self.db.pool().acquire().await?;
        let cut_off = job_rows::with_status_on(
            &mut conn,
            crate::domain::job::JobStatus::Running,
            &self.settings.node,
        )
        .await?;
        drop(conn);
        for job in cut_off {
            if job.action.is_idempotent() {
                log::warn!(
                    "job {} ({}) was running when berth stopped; resuming it",
                    job.id,
                    job.action.as_str()
                );
                let mut conn = self.db.writer().await?;
                job_rows::append_log(
                    &mut conn,
                    job.seq,
                    time::now(),
                    "berth restarted while this job ran; running it again",
                )
                .await?;
                job_rows::requeue(&mut conn, job.id).await?;
            } else {
                log::warn!(
                    "job {} ({}) was running when berth stopped; failing it",
                    job.id,
                    job.action.as_str()
                );
                self.abandon_create(&job).await?;
            }
        }
        Ok(())
    }
}

/// How often berth, waiting at shutdown for a step that must not be cut
/// off, tells its supervisor it is still at work.
pub const CRITICAL_WAIT_PERIOD: Duration = Duration::from_secs(10);

/// Called at shutdown every `CRITICAL_WAIT_PERIOD` while berth waits for
/// critical steps (named in words), so the supervisor grants more time.
pub type KeepAlive = fn(&[String]);

/// Starts the runner; the returned handle stops it.
pub struct RunnerHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    critical: CriticalSteps,
}

impl RunnerHandle {
    pub fn spawn(runner: Runner) -> Self {
        let (stop, receiver) = watch::channel(false);
        tokio::spawn(retention::run(
            runner.db.clone(),
            runner.settings.retention,
            receiver.clone(),
        ));
        let critical = runner.driver.critical_steps();
        let runner = Arc::new(runner);
        tokio::spawn(observe::run(runner.clone(), receiver.clone()));
        let task = tokio::spawn(runner.run(receiver));
        RunnerHandle {
            stop,
            task,
            critical,
        }
    }

    /// Stops taking jobs and waits up to `grace` for running ones. Jobs still
    /// running then are cut off and settled at the next start, except that
    /// a step which would leave a disk half-changed (a resize) is first let
    /// finish, however long it takes, with `keep_alive` called meanwhile.
    pub async fn shutdown(self, grace: Duration, keep_alive: KeepAlive) {
        let _ = self.stop.send(true);
        // No resize starts from now on; those running are waited for.
        self.critical.close();
        let abort = self.task.abort_handle();
        let mut task = self.task;
        if tokio::time::timeout(grace, &mut task).await.is_ok() {
            return;
        }
        let mut announced = false;
        loop {
            let steps = self.critical.in_progress();
            if steps.is_empty() {
                break;
            }
            if !announced {
                log::warn!(
                    "job runner: waiting for {} to finish before stopping: cut off, it \
                     would leave the disk neither old nor new",
                    steps.join(", ")
                );
                announced = true;
            }
            keep_alive(&steps);
            tokio::select! {
                _ = self.critical.finished() => break,
                _ = &mut task => return,
                _ = tokio::time::sleep(CRITICAL_WAIT_PERIOD) => {}
            }
        }
        log::warn!(
            "job runner: jobs still running after {} s; they resume at the next start",
            grace.as_secs()
        );
        abort.abort();
    }
}
