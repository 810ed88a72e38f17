//! Carrying out one job: build the driver's view of the container, run the
//! action, and settle job and container in one transaction.

use std::sync::Arc;

use super::migrate::MoveFailure;
use super::step_log::JobStepLog;
use super::Runner;
use crate::db::containers::{self, Container};
use crate::db::jobs::{self as job_rows, Job};
use crate::db::DbError;
use crate::domain::job::{ConfigureChange, JobAction, JobPayload, JobStatus};
use crate::domain::lifecycle::{self, Ending, HostState};
use crate::domain::parameters::ContainerSettings;
use crate::domain::time;
use crate::domain::ValidationErrors;
use crate::driver::{host, ContainerSpec, DriverError, RunState, StepLog, TemplateSource};
use crate::events::Event;

/// How a job ended (or, for a move, the part of it this node ran).
#[derive(Debug)]
enum Outcome {
    Done,
    Failed(Failure),
    /// Stopped on request in a step that could stop safely.
    Cancelled,
    /// A move's container and the rest of its job now belong to the
    /// target node, whose runner finishes it: nothing to settle here.
    HandedOver,
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Failed(_) => "failed",
            Outcome::Cancelled => "cancelled",
            Outcome::HandedOver => "handed_over",
        }
    }
}

/// How long a job waits for an unreachable database before reading its
/// container fails it.
const READ_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(60);

/// How the work this node ran for a job ended, when it did not fail.
pub(super) enum Performed {
    Done,
    /// A move's part here is done: the target owns the container, and the
    /// rest of the job waits for its runner.
    HandedOver,
}

/// Why a job failed; its text, stored as the job's error, is in words an
/// operator can act on.
#[derive(Debug, thiserror::Error)]
pub(super) enum Failure {
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(sqlx::Error),
    #[error("cannot read the container: {0}")]
    ContainerUnreadable(DbError),
    #[error("the database failed during the move: {0}")]
    MoveDatabase(DbError),
    #[error("container {0} no longer exists")]
    ContainerGone(uuid::Uuid),
    /// The job's row holds a payload berth cannot read: it fails rather
    /// than run without it (a configure could not be undone).
    #[error("{0}")]
    Payload(DbError),
    #[error("the stored parameters are not valid: {0}; PATCH them")]
    InvalidParameters(ValidationErrors),
    #[error("cannot read the template directory: {0}")]
    TemplateDirectory(std::io::Error),
    #[error("template '{name}' is no longer in {dir}; put it back or delete this container")]
    TemplateGone { name: String, dir: String },
    #[error("{} failed: {error}", action.as_str())]
    Driver {
        action: JobAction,
        error: DriverError,
    },
    #[error("{0}")]
    Move(#[from] MoveFailure),
    #[error("{0}")]
    Backup(#[from] super::backup::BackupFailure),
    /// A create cut off by a crash; `cleanup_failed` says why removing what
    /// it built failed, if it did.
    #[error("{}", abandoned_text(.cleanup_failed))]
    Abandoned { cleanup_failed: Option<String> },
}

fn abandoned_text(cleanup_failed: &Option<String>) -> String {
    match cleanup_failed {
        None => "berth stopped while the container was being created; the partial root \
                 filesystem was removed. Delete this container and create it again."
            .to_owned(),
        Some(why) => format!(
            "berth stopped while the container was being created, and removing the partial \
             root filesystem failed ({why}); remove it by hand, then delete this container"
        ),
    }
}

impl Runner {
    pub(super) async fn execute(self: Arc<Self>, job: Job) {
        let action = job.action.as_str();
        log::info!(
            "job {} ({action}) started for container {}",
            job.id,
            job.entity_id
        );
        let clock = std::time::Instant::now();
        let token = self.queue.inner.running.register(job.id);
        let (step_log, writer) =
            JobStepLog::start(self.db.clone(), self.events.clone(), token, job.id, job.seq);
        let outcome = self.perform(&job, &step_log).await;
        match &outcome {
            Outcome::Done => log::info!("job {} ({action}) done", job.id),
            Outcome::Failed(why) => {
                step_log.step(format!("failed: {why}"));
                log::warn!("job {} ({action}) failed: {why}", job.id);
            }
            Outcome::Cancelled => {
                step_log.step("cancelled on request; what the step had built was removed".into());
                log::info!("job {} ({action}) cancelled", job.id);
            }
            Outcome::HandedOver => log::info!("job {} ({action}) handed over", job.id),
        }
        drop(step_log);
        writer.flushed().await;
        self.metrics
            .observe_job(action, outcome.as_str(), clock.elapsed());
        if let Outcome::HandedOver = outcome {
            // Recorded with the hand-over: the job is the target's now.
            self.queue.inner.running.unregister(job.id);
            self.release(job.id);
            if let Err(error) = self.announce(&job).await {
                log::warn!("job {}: cannot announce the hand-over: {error}", job.id);
            }
            return;
        }
        let settled = self.settle_when_reachable(&job, &outcome).await;
        self.queue.inner.running.unregister(job.id);
        if settled.is_ok() {
            self.release(job.id);
        }
        if let Err(error) = settled {
            // The job stays `running` and is settled at the next start.
            log::error!("job {}: cannot record its result: {error}", job.id);
        }
    }

    /// `settle`, tried again while the database cannot be reached (a
    /// PostgreSQL restart): the work is done and must be recorded, not run
    /// again. A shutdown meanwhile leaves the job `running`, settled at the
    /// next start like any job cut off.
    async fn settle_when_reachable(&self, job: &Job, outcome: &Outcome) -> Result<(), DbError> {
        let mut pause = std::time::Duration::from_millis(200);
        loop {
            match self.settle(job, outcome).await {
                Err(error) if error.is_unreachable() => {
                    log::warn!(
                        "job {}: the database cannot be reached to record its result \
                         ({error}); trying again in {} ms",
                        job.id,
                        pause.as_millis()
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(5));
                }
                settled => return settled,
            }
        }
    }

    async fn perform(&self, job: &Job, log: &JobStepLog) -> Outcome {
        match self.try_perform(job, log).await {
            Ok(Performed::Done) => Outcome::Done,
            Ok(Performed::HandedOver) => Outcome::HandedOver,
            Err(Failure::Driver {
                error: DriverError::Cancelled,
                ..
            }) => Outcome::Cancelled,
            Err(failure) => Outcome::Failed(failure),
        }
    }

    async fn try_perform(&self, job: &Job, log: &JobStepLog) -> Result<Performed, Failure> {
        let payload = job.payload().map_err(Failure::Payload)?;
        let container = self.container(job).await?;
        let mut spec = spec_of(&container)?;
        fit_to_host(&mut spec, job, log);
        let driver = &self.driver;
        let result = match job.action {
            JobAction::Create => match payload {
                Some(JobPayload::Restore(change)) => {
                    return self.restore_backup(&spec, change, log).await;
                }
                _ => {
                    let source = self.template_of(&container)?;
                    driver.create(&spec, &source, log).await
                }
            },
            JobAction::Backup => {
                let Some(JobPayload::Backup(change)) = payload else {
                    return Err(Failure::Payload(DbError::Corrupt(format!(
                        "backup job {} carries no backup id",
                        job.id
                    ))));
                };
                return self.back_up(&container, &spec, change, log).await;
            }
            JobAction::Configure => {
                let before = settings_before(payload);
                driver.configure(&spec, before.as_ref(), log).await
            }
            JobAction::Start => driver.start(&spec, log).await,
            JobAction::Stop => driver.stop(&spec, log).await,
            JobAction::Restart => match driver.stop(&spec, log).await {
                Ok(()) => driver.start(&spec, log).await,
                Err(e) => Err(e),
            },
            JobAction::Delete => driver.destroy(&spec, log).await,
            JobAction::Migrate => {
                let Some(JobPayload::Migrate(change)) = payload else {
                    return Err(Failure::Payload(DbError::Corrupt(format!(
                        "migrate job {} carries no target node",
                        job.id
                    ))));
                };
                return self.migrate(job, &container, &spec, change, log).await;
            }
            JobAction::Clone => {
                let Some(JobPayload::Clone(change)) = payload else {
                    return Err(Failure::Payload(DbError::Corrupt(format!(
                        "clone job {} names no source",
                        job.id
                    ))));
                };
                let source = self.source_of_clone(change.source).await?;
                let source = spec_of(&source)?;
                driver
                    .clone_container(&source, change.snapshot.as_deref(), &spec, log)
                    .await
            }
            JobAction::Snapshot | JobAction::SnapshotRestore | JobAction::SnapshotDelete => {
                return self.run_snapshot_job(job, &spec, payload, log).await;
            }
        };
        result
            .map(|()| Performed::Done)
            .map_err(|error| Failure::Driver {
                action: job.action,
                error,
            })
    }

    fn template_of(&self, container: &Container) -> Result<TemplateSource, Failure> {
        let template = self
            .os_templates
            .find(&container.ostemplate)
            .map_err(Failure::TemplateDirectory)?
            .ok_or_else(|| Failure::TemplateGone {
                name: container.ostemplate.clone(),
                dir: self.os_templates.dir().display().to_string(),
            })?;
        Ok(TemplateSource {
            path: template.path,
            format: template.format,
        })
    }

    /// The container a clone copies; one deleted since cannot be copied.
    async fn source_of_clone(&self, id: uuid::Uuid) -> Result<Container, Failure> {
        self.read_container(id, false)
            .await?
            .ok_or(Failure::ContainerGone(id))
    }

    async fn container(&self, job: &Job) -> Result<Container, Failure> {
        self.read_container(job.entity_id, true)
            .await?
            .ok_or(Failure::ContainerGone(job.entity_id))
    }

    /// Reads a container's row (deleted ones too with `any`), tried again
    /// for up to a minute while the database cannot be reached: a job that
    /// starts as PostgreSQL restarts waits for it instead of failing.
    async fn read_container(
        &self,
        id: uuid::Uuid,
        any: bool,
    ) -> Result<Option<Container>, Failure> {
        let deadline = std::time::Instant::now() + READ_RETRY_FOR;
        let mut pause = std::time::Duration::from_millis(200);
        loop {
            let read = async {
                let mut conn = self.db.pool().acquire().await.map_err(DbError::from)?;
                if any {
                    containers::get_any(&mut conn, id).await
                } else {
                    containers::get(&mut conn, id).await
                }
            };
            match read.await {
                Err(error) if error.is_unreachable() && std::time::Instant::now() < deadline => {
                    log::warn!(
                        "container {id}: the database cannot be reached ({error}); trying \
                         again in {} ms",
                        pause.as_millis()
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(5));
                }
                Err(error) => return Err(Failure::ContainerUnreadable(error)),
                Ok(found) => return Ok(found),
            }
        }
    }

    /// What the host shows of a container whose job failed half-way.
    async fn observed_state(&self, job: &Job) -> HostState {
        let name = match self.container(job).await {
            Ok(container) => container.name,
            Err(_) => return HostState::Missing,
        };
        match self.driver.state(&name).await {
            Ok(RunState::Running) => HostState::Running,
            Ok(RunState::Stopped) => HostState::Stopped,
            Ok(RunState::Missing) | Err(_) => HostState::Missing,
        }
    }

    /// Records the outcome: the job's final state and the container's new
    /// status (as the lifecycle model has it), together.
    async fn settle(&self, job: &Job, outcome: &Outcome) -> Result<(), DbError> {
        // Asking the host happens before the write lock is taken.
        let ending = match outcome {
            Outcome::Done | Outcome::HandedOver => Ending::Done,
            Outcome::Cancelled => Ending::Cancelled,
            Outcome::Failed(_) => Ending::Failed {
                host: match lifecycle::observes_host_after_failure(job.action) {
                    true => Some(self.observed_state(job).await),
                    false => None,
                },
            },
        };
        let error = match outcome {
            Outcome::Failed(failure) => Some(failure.to_string()),
            Outcome::Done | Outcome::Cancelled | Outcome::HandedOver => None,
        };
        let now = time::now();
        let mut tx = self.db.begin().await?;
        let Some(container) = containers::get_any(&mut tx, job.entity_id).await? else {
            job_rows::finish(&mut tx, job.id, JobStatus::Failed, error.as_deref(), now).await?;
            tx.commit().await?;
            return self.announce(job).await;
        };
        let job_status = match ending {
            Ending::Done => JobStatus::Done,
            Ending::Cancelled => JobStatus::Cancelled,
            Ending::Failed { .. } => JobStatus::Failed,
        };
        job_rows::finish(&mut tx, job.id, job_status, error.as_deref(), now).await?;
        if lifecycle::cancels_the_rest(job.action, container.status, ending) {
            job_rows::cancel_queued_for(&mut tx, job.entity_id, now).await?;
        }
        if let (Outcome::Failed(_), Ok(Some(JobPayload::Configure(change)))) =
            (outcome, job.payload())
        {
            undo_refused_change(&mut tx, change, &container, now).await?;
        }
        let status = match (ending, job.payload()) {
            (Ending::Done, Ok(Some(JobPayload::Migrate(change)))) if change.handed_over => {
                lifecycle::after_migration(container.status, change.was_running == Some(true))
            }
            _ => lifecycle::after_job(job.action, container.status, ending),
        };
        containers::set_status(&mut tx, container.id, status, now).await?;
        super::snapshots::settle_snapshot(&mut tx, job, ending == Ending::Done).await?;
        tx.commit().await?;
        self.announce(job).await
    }

    /// Tells subscribers the job's and its container's state after a change.
    pub(super) async fn announce(&self, job: &Job) -> Result<(), DbError> {
        let mut conn = self.db.pool().acquire().await?;
        if let Some(job) = job_rows::get(&mut conn, job.id).await? {
            self.events.publish(Event::Job(job));
        }
        if let Some(container) = containers::get_any(&mut conn, job.entity_id).await? {
            self.events.publish(Event::Container(container));
        }
        Ok(())
    }

    /// A create cut off by a crash: remove what it built and fail it.
    pub(super) async fn abandon_create(&self, job: &Job) -> Result<(), DbError> {
        let token = self.queue.inner.running.register(job.id);
        let (step_log, writer) =
            JobStepLog::start(self.db.clone(), self.events.clone(), token, job.id, job.seq);
        step_log.step("berth stopped while this job ran".into());
        let cleanup = match self.container(job).await.and_then(|c| spec_of(&c)) {
            Ok(spec) => self
                .driver
                .destroy(&spec, &step_log)
                .await
                .map_err(|e| e.to_string()),
            Err(why) => Err(why.to_string()),
        };
        let failure = Failure::Abandoned {
            cleanup_failed: cleanup.err(),
        };
        drop(step_log);
        writer.flushed().await;
        let settled = self.settle(job, &Outcome::Failed(failure)).await;
        self.queue.inner.running.unregister(job.id);
        settled
    }
}

fn spec_of(container: &Container) -> Result<ContainerSpec, Failure> {
    ContainerSpec::of(container.id, &container.name, container.parameters.as_ref())
        .map(|spec| {
            spec.on(crate::service::storage_of(
                &container.storage,
                &container.storage_driver,
            ))
        })
        .map_err(Failure::InvalidParameters)
}

/// Lowers a CPU quota above the CPUs berth may use now (the host lost some
/// since it was set) to what there is, and says so where it is applied.
/// The stored value stays: it applies in full once the CPUs are back.
fn fit_to_host(spec: &mut ContainerSpec, job: &Job, log: &JobStepLog) {
    let available = host::cpus();
    let Some(asked) = spec.settings.fit_cpus_to(available) else {
        return;
    };
    // Stop and delete apply no limits: nothing to tell.
    if matches!(
        job.action,
        JobAction::Create
            | JobAction::Clone
            | JobAction::Configure
            | JobAction::Start
            | JobAction::Restart
    ) {
        log::warn!(
            "job {}: container {} has cpus {asked}, but berth may use {available} CPUs now; \
             applying {available}",
            job.id,
            spec.name
        );
        log.step(format!(
            "cpus: {asked} stored, but berth may use only {available} CPUs on this host now; \
             applying {available} (the stored value applies once the host has the CPUs)"
        ));
    }
}

/// The settings a configure job started from, from the parameters before
/// the PATCH that it carries; `None` when they are not known (then every
/// setting is applied).
fn settings_before(payload: Option<&JobPayload>) -> Option<ContainerSettings> {
    match payload? {
        JobPayload::Configure(change) => change.before.clone().unwrap_or_default().settings().ok(),
        JobPayload::Delete(_)
        | JobPayload::Migrate(_)
        | JobPayload::Snapshot(_)
        | JobPayload::SnapshotRestore(_)
        | JobPayload::SnapshotDelete(_)
        | JobPayload::Clone(_)
        | JobPayload::Backup(_)
        | JobPayload::Restore(_) => None,
    }
}

/// When applying a PATCH failed, puts back the values it changed, unless a
/// later PATCH has changed them again since.
async fn undo_refused_change(
    tx: &mut crate::db::Tx<'_>,
    change: &ConfigureChange,
    container: &Container,
    now: time::Timestamp,
) -> Result<(), DbError> {
    let Some(current) = &container.parameters else {
        return Ok(());
    };
    let restored = current.undone(&change.before.clone().unwrap_or_default(), &change.after);
    if &restored != current {
        containers::set_parameters(tx, container.id, &restored, now).await?;
    }
    Ok(())
}
