//! Carrying out one job: build the driver's view of the container, run the
//! action, and settle job and container in one transaction.

use std::sync::Arc;

use super::step_log::JobStepLog;
use super::Runner;
use crate::db::containers::{self, Container};
use crate::db::jobs::{self as job_rows, Job};
use crate::db::DbError;
use crate::domain::container::ContainerStatus;
use crate::domain::job::{JobAction, JobStatus};
use crate::domain::time;
use crate::driver::{host, ContainerSpec, DriverError, RunState, StepLog, TemplateSource};
use crate::events::Event;
use crate::service::ConfigureChange;

/// How a job ended.
#[derive(Debug)]
enum Outcome {
    Done,
    /// Why it failed, in words an operator can act on.
    Failed(String),
    /// Stopped on request in a step that could stop safely.
    Cancelled,
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Failed(_) => "failed",
            Outcome::Cancelled => "cancelled",
        }
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
        }
        drop(step_log);
        writer.flushed().await;
        self.metrics
            .observe_job(action, outcome.as_str(), clock.elapsed());
        let settled = self.settle(&job, outcome).await;
        self.queue.inner.running.unregister(job.id);
        if let Err(error) = settled {
            // The job stays `running` and is settled at the next start.
            log::error!("job {}: cannot record its result: {error}", job.id);
        }
    }

    async fn perform(&self, job: &Job, log: &JobStepLog) -> Outcome {
        let container = match self.container(job).await {
            Ok(container) => container,
            Err(why) => return Outcome::Failed(why),
        };
        let mut spec = match spec_of(&container) {
            Ok(spec) => spec,
            Err(why) => return Outcome::Failed(why),
        };
        fit_to_host(&mut spec, job, log);
        let driver = &self.driver;
        let result = match job.action {
            JobAction::Create => match self.template_of(&container) {
                Ok(source) => driver.create(&spec, &source, log).await,
                Err(why) => return Outcome::Failed(why),
            },
            JobAction::Configure => {
                let before = settings_before(job);
                driver.configure(&spec, before.as_ref(), log).await
            }
            JobAction::Start => driver.start(&spec, log).await,
            JobAction::Stop => driver.stop(&spec, log).await,
            JobAction::Restart => match driver.stop(&spec, log).await {
                Ok(()) => driver.start(&spec, log).await,
                Err(e) => Err(e),
            },
            JobAction::Delete => driver.destroy(&spec, log).await,
        };
        match result {
            Ok(()) => Outcome::Done,
            Err(DriverError::Cancelled) => Outcome::Cancelled,
            Err(error) => Outcome::Failed(format!("{} failed: {error}", job.action.as_str())),
        }
    }

    fn template_of(&self, container: &Container) -> Result<TemplateSource, String> {
        let template = self
            .templates
            .find(&container.ostemplate)
            .map_err(|e| format!("cannot read the template directory: {e}"))?
            .ok_or_else(|| {
                format!(
                    "template '{}' is no longer in {}; put it back or delete this container",
                    container.ostemplate,
                    self.templates.dir().display()
                )
            })?;
        Ok(TemplateSource {
            path: template.path,
            format: template.format,
        })
    }

    async fn container(&self, job: &Job) -> Result<Container, String> {
        let mut conn = self
            .db
            .pool()
            .acquire()
            .await
            .map_err(|e| format!("database unavailable: {e}"))?;
        containers::get_any(&mut conn, job.entity_id)
            .await
            .map_err(|e| format!("cannot read the container: {e}"))?
            .ok_or_else(|| format!("container {} no longer exists", job.entity_id))
    }

    /// What the host shows of a container whose job failed half-way.
    async fn observed_status(&self, job: &Job) -> ContainerStatus {
        let name = match self.container(job).await {
            Ok(container) => container.name,
            Err(_) => return ContainerStatus::Failed,
        };
        match self.driver.state(&name).await {
            Ok(RunState::Running) => ContainerStatus::Running,
            Ok(RunState::Stopped) => ContainerStatus::Stopped,
            Ok(RunState::Missing) | Err(_) => ContainerStatus::Failed,
        }
    }

    /// Records the outcome: the job's final state and the container's new
    /// status, together.
    async fn settle(&self, job: &Job, outcome: Outcome) -> Result<(), DbError> {
        // Asking the host happens before the write lock is taken.
        let observed = match (&outcome, job.action) {
            (Outcome::Failed(_), action) if action != JobAction::Create => {
                Some(self.observed_status(job).await)
            }
            _ => None,
        };
        let now = time::now();
        let mut tx = self.db.begin().await?;
        let Some(container) = containers::get_any(&mut tx, job.entity_id).await? else {
            let error = match &outcome {
                Outcome::Failed(why) => Some(why.as_str()),
                _ => None,
            };
            job_rows::finish(&mut tx, job.id, JobStatus::Failed, error, now).await?;
            tx.commit().await?;
            return self.announce(job).await;
        };
        // A delete queued behind this job keeps the container marked.
        let deleting =
            container.status == ContainerStatus::Deleting && job.action != JobAction::Delete;
        let status = match &outcome {
            Outcome::Done => {
                job_rows::finish(&mut tx, job.id, JobStatus::Done, None, now).await?;
                job.action.status_after_success(container.status)
            }
            Outcome::Cancelled => {
                job_rows::finish(&mut tx, job.id, JobStatus::Cancelled, None, now).await?;
                // Only a create stops early, and then nothing of it is left.
                job_rows::cancel_queued_for(&mut tx, job.entity_id, now).await?;
                ContainerStatus::Deleted
            }
            Outcome::Failed(why) => {
                job_rows::finish(&mut tx, job.id, JobStatus::Failed, Some(why), now).await?;
                if job.action == JobAction::Configure {
                    undo_refused_change(&mut tx, job, &container, now).await?;
                }
                observed.unwrap_or(ContainerStatus::Failed)
            }
        };
        let status = if deleting && status != ContainerStatus::Deleted {
            ContainerStatus::Deleting
        } else {
            status
        };
        containers::set_status(&mut tx, container.id, status, now).await?;
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
            Err(why) => Err(why),
        };
        let failure = match cleanup {
            Ok(()) => "berth stopped while the container was being created; the partial root \
                       filesystem was removed. Delete this container and create it again."
                .to_owned(),
            Err(why) => format!(
                "berth stopped while the container was being created, and removing the partial \
                 root filesystem failed ({why}); remove it by hand, then delete this container"
            ),
        };
        drop(step_log);
        writer.flushed().await;
        let settled = self.settle(job, Outcome::Failed(failure)).await;
        self.queue.inner.running.unregister(job.id);
        settled
    }
}

/// The driver's view of a stored container. The stored values are taken as
/// they are: the host's limits were checked when a request set them, and a
/// host that has less today must not block the container's jobs.
fn spec_of(container: &Container) -> Result<ContainerSpec, String> {
    let settings = container
        .parameters
        .clone()
        .unwrap_or_default()
        .settings()
        .map_err(|errors| format!("the stored parameters are not valid: {errors}; PATCH them"))?;
    Ok(ContainerSpec {
        id: container.id,
        name: container.name.clone(),
        settings,
    })
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
        JobAction::Create | JobAction::Configure | JobAction::Start | JobAction::Restart
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
fn settings_before(job: &Job) -> Option<crate::domain::parameters::ContainerSettings> {
    let change: ConfigureChange = serde_json::from_str(job.payload.as_deref()?).ok()?;
    change.before.unwrap_or_default().settings().ok()
}

/// When applying a PATCH failed, puts back the values it changed, unless a
/// later PATCH has changed them again since.
async fn undo_refused_change(
    tx: &mut crate::db::Tx<'_>,
    job: &Job,
    container: &Container,
    now: time::Timestamp,
) -> Result<(), DbError> {
    let change = job
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str::<ConfigureChange>(p).ok());
    let (Some(change), Some(current)) = (change, &container.parameters) else {
        return Ok(());
    };
    let restored = current.undone(&change.before.unwrap_or_default(), &change.after);
    if &restored != current {
        containers::set_parameters(tx, container.id, &restored, now).await?;
    }
    Ok(())
}
