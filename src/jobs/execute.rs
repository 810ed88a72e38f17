//! Carrying out one job: build the driver's view of the container, run the
//! action, and settle job and container in one transaction.

use std::sync::Arc;

use super::step_log::JobStepLog;
use super::Runner;
use crate::db::containers::{self, Container};
use crate::db::jobs::{self as job_rows, Job};
use crate::db::{DbError, Tx};
use crate::domain::container::ContainerStatus;
use crate::domain::job::{JobAction, JobStatus};
use crate::domain::parameters::HostLimits;
use crate::domain::time;
use crate::driver::{ContainerSpec, DriverError, RunState, StepLog, TemplateSource};
use crate::events::Event;
use crate::service::ConfigureChange;

/// Why a job failed, in words an operator can act on.
type Failure = String;

impl Runner {
    pub(super) async fn execute(self: Arc<Self>, job: Job) {
        log::info!(
            "job {} ({}) started for container {}",
            job.id,
            job.action.as_str(),
            job.entity_id
        );
        let (step_log, writer) =
            JobStepLog::start(self.db.clone(), self.events.clone(), job.id, job.seq);
        let outcome = self.perform(&job, &step_log).await;
        if let Err(failure) = &outcome {
            step_log.step(format!("failed: {failure}"));
        }
        drop(step_log);
        writer.flushed().await;
        match &outcome {
            Ok(()) => log::info!("job {} ({}) done", job.id, job.action.as_str()),
            Err(failure) => {
                log::warn!("job {} ({}) failed: {failure}", job.id, job.action.as_str())
            }
        }
        if let Err(error) = self.settle(&job, outcome).await {
            // The job stays `running` and is settled at the next start.
            log::error!("job {}: cannot record its result: {error}", job.id);
        }
    }

    async fn perform(&self, job: &Job, log: &JobStepLog) -> Result<(), Failure> {
        let container = self.container(job).await?;
        let spec = spec_of(&container)?;
        let driver = &self.driver;
        let result = match job.action {
            JobAction::Create => {
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
                let source = TemplateSource {
                    path: template.path,
                    format: template.format,
                };
                driver.create(&spec, &source, log).await
            }
            JobAction::Configure => driver.configure(&spec, log).await,
            JobAction::Start => driver.start(&spec, log).await,
            JobAction::Stop => driver.stop(&spec, log).await,
            JobAction::Restart => match driver.stop(&spec, log).await {
                Ok(()) => driver.start(&spec, log).await,
                Err(e) => Err(e),
            },
            JobAction::Delete => driver.destroy(&spec, log).await,
        };
        result.map_err(|error| describe(job.action, &error))
    }

    async fn container(&self, job: &Job) -> Result<Container, Failure> {
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

    /// Records the outcome: the job's final state and the container's new
    /// status, together.
    async fn settle(&self, job: &Job, outcome: Result<(), Failure>) -> Result<(), DbError> {
        let now = time::now();
        let mut tx = self.db.begin().await?;
        let container = containers::get_any(&mut tx, job.entity_id).await?;
        match &outcome {
            Ok(()) => {
                job_rows::finish(&mut tx, job.id, JobStatus::Done, None, now).await?;
                if let Some(container) = &container {
                    let status = match container.status {
                        // A delete queued behind this job keeps the container marked.
                        ContainerStatus::Deleting if job.action != JobAction::Delete => {
                            ContainerStatus::Deleting
                        }
                        current => job.action.status_after_success(current),
                    };
                    containers::set_status(&mut tx, container.id, status, now).await?;
                }
            }
            Err(failure) => {
                job_rows::finish(&mut tx, job.id, JobStatus::Failed, Some(failure), now).await?;
                if let Some(container) = &container {
                    self.settle_failed_container(&mut tx, job, container, now)
                        .await?;
                }
            }
        }
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

    async fn settle_failed_container(
        &self,
        tx: &mut Tx<'_>,
        job: &Job,
        container: &Container,
        now: time::Timestamp,
    ) -> Result<(), DbError> {
        let status = match (job.action, container.status) {
            (JobAction::Create, _) => ContainerStatus::Failed,
            (_, ContainerStatus::Deleting) if job.action != JobAction::Delete => {
                ContainerStatus::Deleting
            }
            // Otherwise the container is in whatever state the host shows.
            _ => match self.driver.state(&container.name).await {
                Ok(RunState::Running) => ContainerStatus::Running,
                Ok(RunState::Stopped) => ContainerStatus::Stopped,
                Ok(RunState::Missing) | Err(_) => ContainerStatus::Failed,
            },
        };
        containers::set_status(tx, container.id, status, now).await?;
        if job.action == JobAction::Configure {
            undo_refused_change(tx, job, container, now).await?;
        }
        Ok(())
    }

    /// A create cut off by a crash: remove what it built and fail it.
    pub(super) async fn abandon_create(&self, job: &Job) -> Result<(), DbError> {
        let (step_log, writer) =
            JobStepLog::start(self.db.clone(), self.events.clone(), job.id, job.seq);
        step_log.step("berth stopped while this job ran".into());
        let cleanup = match self.container(job).await.and_then(|c| spec_of(&c)) {
            Ok(spec) => self
                .driver
                .destroy(&spec, &step_log)
                .await
                .map_err(|e| e.to_string()),
            Err(failure) => Err(failure),
        };
        let failure = match cleanup {
            Ok(()) => "berth stopped while the container was being created; the partial root filesystem \
                       was removed. Delete this container and create it again."
                .to_owned(),
            Err(why) => format!(
                "berth stopped while the container was being created, and removing the partial root \
                 filesystem failed ({why}); remove it by hand, then delete this container"
            ),
        };
        step_log.step(failure.clone());
        drop(step_log);
        writer.flushed().await;
        self.settle(job, Err(failure)).await
    }
}

/// The driver's view of a stored container.
fn spec_of(container: &Container) -> Result<ContainerSpec, Failure> {
    let settings = container
        .parameters
        .clone()
        .unwrap_or_default()
        .validate(&HostLimits::of_this_host())
        .map_err(|errors| {
            format!("the stored parameters are no longer valid on this host: {errors}; PATCH them")
        })?;
    Ok(ContainerSpec {
        id: container.id,
        name: container.name.clone(),
        settings,
    })
}

fn describe(action: JobAction, error: &DriverError) -> Failure {
    format!("{} failed: {error}", action.as_str())
}

/// When applying a PATCH failed, puts back the values it changed, unless a
/// later PATCH has changed them again since.
async fn undo_refused_change(
    tx: &mut Tx<'_>,
    job: &Job,
    container: &Container,
    now: time::Timestamp,
) -> Result<(), DbError> {
    let Some(change) = job
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str::<ConfigureChange>(p).ok())
    else {
        return Ok(());
    };
    let Some(current) = &container.parameters else {
        return Ok(());
    };
    let before = change.before.unwrap_or_default();
    let current_json = serde_json::to_value(current).expect("parameters serialise");
    let after_json = serde_json::to_value(&change.after).expect("parameters serialise");
    let before_json = serde_json::to_value(&before).expect("parameters serialise");
    let mut restored = current_json.clone();
    for name in crate::domain::parameters::PARAMETER_NAMES {
        if current_json.get(name) == after_json.get(name)
            && after_json.get(name) != before_json.get(name)
        {
            match before_json.get(name) {
                Some(value) => restored[name] = value.clone(),
                None => {
                    restored.as_object_mut().map(|m| m.remove(name));
                }
            }
        }
    }
    if restored != current_json {
        let restored =
            serde_json::from_value(restored).map_err(|e| DbError::Corrupt(e.to_string()))?;
        containers::set_parameters(tx, container.id, &restored, now).await?;
    }
    Ok(())
}
