//! What clients can ask of berth, whether through the API or the console:
//! validate, store the change and its job in one transaction, wake the
//! runner. Never touches LXC; the runner does that.

use serde_json::Value;
use uuid::Uuid;

use crate::db::containers::{self, Container};
use crate::db::jobs::{self, Job, LogLine};
use crate::db::{Db, DbError};
use crate::domain::container::{ContainerName, ContainerStatus};
use crate::domain::job::JobAction;
use crate::domain::parameters::{HostLimits, ParameterPatch, Parameters};
use crate::domain::template::check_name;
use crate::domain::time;
use crate::domain::ValidationErrors;
use crate::events::{Event, EventBus};
use crate::jobs::JobQueue;
use crate::templates::TemplateStore;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Validation(ValidationErrors),
    #[error("template '{0}' not found")]
    TemplateNotFound(String),
    #[error("a container named '{0}' already exists")]
    NameTaken(String),
    #[error("container {0} not found")]
    ContainerNotFound(String),
    #[error("job {0} not found")]
    JobNotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("template directory: {0}")]
    Templates(#[from] std::io::Error),
}

impl From<ValidationErrors> for ServiceError {
    fn from(errors: ValidationErrors) -> Self {
        ServiceError::Validation(errors)
    }
}

/// A request to create a container, as read from JSON or a form.
#[derive(Debug, Clone)]
pub struct NewContainer {
    pub name: String,
    pub ostemplate: String,
    pub parameters: Option<Value>,
}

/// Payload of a configure job: the parameters before and after the PATCH
/// that asked for it, so a refused change can be undone.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct ConfigureChange {
    pub before: Option<Parameters>,
    pub after: Parameters,
}

#[derive(Clone)]
pub struct Service {
    db: Db,
    templates: TemplateStore,
    queue: JobQueue,
    events: EventBus,
    host: HostLimits,
}

/// The longest a client may wait on one job in a single request.
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

impl Service {
    pub fn new(db: Db, templates: TemplateStore, queue: JobQueue, events: EventBus) -> Self {
        Service {
            db,
            templates,
            queue,
            events,
            host: HostLimits::of_this_host(),
        }
    }

    /// After a commit: wake the runner and tell subscribers what changed.
    async fn announce(&self, job: &Job) {
        self.queue.wake();
        self.events.publish(Event::Job(job.clone()));
        if let Ok(container) = self.container_any(job.entity_id).await {
            self.events.publish(Event::Container(container));
        }
    }

    /// The container with this id, even when deleted (its jobs still name it).
    pub async fn container_any(&self, id: Uuid) -> Result<Container, ServiceError> {
        let mut conn = self.db.pool().acquire().await.map_err(DbError::from)?;
        containers::get_any(&mut conn, id)
            .await?
            .ok_or_else(|| ServiceError::ContainerNotFound(id.to_string()))
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn templates(&self) -> &TemplateStore {
        &self.templates
    }

    /// Validates everything, then stores the container and its create job.
    pub async fn create_container(
        &self,
        request: NewContainer,
    ) -> Result<(Container, Job), ServiceError> {
        let mut errors = ValidationErrors::default();
        let name = ContainerName::parse(&request.name)
            .map_err(|e| errors.0.push(e))
            .ok();
        let template_ok = match check_name(&request.ostemplate) {
            Ok(()) => true,
            Err(e) => {
                errors.0.push(e);
                false
            }
        };
        let parameters = match &request.parameters {
            None | Some(Value::Null) => None,
            Some(value) => match ParameterPatch::from_json(value) {
                Ok(patch) => {
                    let parameters = Parameters::default().merged(&patch);
                    if let Err(e) = parameters.validate(&self.host) {
                        errors.0.extend(e.0);
                    }
                    Some(parameters)
                }
                Err(e) => {
                    errors.0.extend(e.0);
                    None
                }
            },
        };
        let name = errors
            .into_result(name)?
            .expect("no errors means the name parsed");
        if template_ok && self.templates.find(&request.ostemplate)?.is_none() {
            return Err(ServiceError::TemplateNotFound(request.ostemplate));
        }

        let now = time::now();
        let container = Container {
            seq: 0,
            id: Uuid::new_v4(),
            name: name.as_str().to_owned(),
            ostemplate: request.ostemplate,
            parameters,
            status: ContainerStatus::Creating,
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.db.begin().await?;
        if containers::name_taken(&mut tx, &container.name).await? {
            return Err(ServiceError::NameTaken(container.name));
        }
        let stored = match containers::insert(&mut tx, &container).await {
            Ok(stored) => stored,
            Err(e) if e.is_unique_violation() => {
                return Err(ServiceError::NameTaken(container.name))
            }
            Err(e) => return Err(e.into()),
        };
        let job = jobs::insert(&mut tx, stored.id, JobAction::Create, None, now).await?;
        tx.commit().await.map_err(DbError::from)?;
        self.announce(&job).await;
        Ok((stored, job))
    }

    pub async fn container(&self, id: Uuid) -> Result<Container, ServiceError> {
        let mut conn = self.db.pool().acquire().await.map_err(DbError::from)?;
        containers::get(&mut conn, id)
            .await?
            .ok_or_else(|| ServiceError::ContainerNotFound(id.to_string()))
    }

    pub async fn containers(&self) -> Result<Vec<Container>, ServiceError> {
        let mut conn = self.db.pool().acquire().await.map_err(DbError::from)?;
        Ok(containers::list(&mut conn).await?)
    }

    /// Merges `parameters` into the stored ones and queues the job that
    /// applies them.
    pub async fn update_parameters(
        &self,
        id: Uuid,
        parameters: &Value,
    ) -> Result<Job, ServiceError> {
        let patch = ParameterPatch::from_json(parameters)?;
        let mut tx = self.db.begin().await?;
        let container = containers::get(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::ContainerNotFound(id.to_string()))?;
        ensure_accepts_jobs(&container)?;
        let before = container.parameters.clone();
        let current = before.clone().unwrap_or_default();
        if current.size.is_some() && patch.touches("size") && current.merged(&patch).size.is_none()
        {
            let mut errors = ValidationErrors::default();
            errors.push(
                "parameters.size",
                "cannot be removed once set; set a new size instead",
            );
            return Err(errors.into());
        }
        let after = current.merged(&patch);
        after.validate(&self.host)?;

        let now = time::now();
        containers::set_parameters(&mut tx, id, &after, now).await?;
        let payload =
            serde_json::to_string(&ConfigureChange { before, after }).expect("payload serialises");
        let job = jobs::insert(&mut tx, id, JobAction::Configure, Some(payload), now).await?;
        tx.commit().await.map_err(DbError::from)?;
        self.announce(&job).await;
        Ok(job)
    }

    /// Queues start, stop, restart or delete.
    pub async fn queue_action(&self, id: Uuid, action: JobAction) -> Result<Job, ServiceError> {
        debug_assert!(matches!(
            action,
            JobAction::Start | JobAction::Stop | JobAction::Restart | JobAction::Delete
        ));
        let mut tx = self.db.begin().await?;
        let container = containers::get(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::ContainerNotFound(id.to_string()))?;
        ensure_accepts_jobs(&container)?;
        if container.status == ContainerStatus::Failed && action != JobAction::Delete {
            return Err(ServiceError::Conflict(format!(
                "container {id} failed to be created; the only thing to do with it is delete it"
            )));
        }
        let now = time::now();
        if action == JobAction::Delete {
            containers::set_status(&mut tx, id, ContainerStatus::Deleting, now).await?;
        }
        let job = jobs::insert(&mut tx, id, action, None, now).await?;
        tx.commit().await.map_err(DbError::from)?;
        self.announce(&job).await;
        Ok(job)
    }

    pub async fn job(&self, id: Uuid) -> Result<Job, ServiceError> {
        let mut conn = self.db.pool().acquire().await.map_err(DbError::from)?;
        jobs::get(&mut conn, id)
            .await?
            .ok_or_else(|| ServiceError::JobNotFound(id.to_string()))
    }

    pub async fn jobs(&self) -> Result<Vec<Job>, ServiceError> {
        let mut conn = self.db.pool().acquire().await.map_err(DbError::from)?;
        Ok(jobs::list(&mut conn).await?)
    }

    /// The newest `limit` jobs, newest first (the console's overviews).
    pub async fn recent_jobs(&self, limit: u32) -> Result<Vec<Job>, ServiceError> {
        let mut conn = self.db.pool().acquire().await.map_err(DbError::from)?;
        Ok(jobs::recent(&mut conn, limit).await?)
    }

    /// The newest `limit` jobs of one container, deleted or not.
    pub async fn container_jobs(&self, id: Uuid, limit: u32) -> Result<Vec<Job>, ServiceError> {
        let mut conn = self.db.pool().acquire().await.map_err(DbError::from)?;
        Ok(jobs::of_entity(&mut conn, id, limit).await?)
    }

    /// The job as soon as it has finished, or as it is when `timeout` passes.
    /// Waiting costs nothing until an event about this job arrives.
    pub async fn wait_for_job(
        &self,
        id: Uuid,
        timeout: std::time::Duration,
    ) -> Result<Job, ServiceError> {
        let mut events = self.events.subscribe();
        let job = self.job(id).await?;
        if job.status.is_finished() {
            return Ok(job);
        }
        let deadline = tokio::time::Instant::now() + timeout.min(MAX_WAIT);
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_elapsed) => return self.job(id).await,
                Ok(Ok(Event::Job(job))) if job.id == id && job.status.is_finished() => {
                    return Ok(job)
                }
                Ok(Ok(_)) => {}
                // Missed events might include ours: look again.
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                    let job = self.job(id).await?;
                    if job.status.is_finished() {
                        return Ok(job);
                    }
                }
                Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => {
                    return self.job(id).await
                }
            }
        }
    }

    pub async fn job_log(&self, job: &Job) -> Result<Vec<LogLine>, ServiceError> {
        let mut conn = self.db.pool().acquire().await.map_err(DbError::from)?;
        Ok(jobs::log(&mut conn, job.seq).await?)
    }
}

fn ensure_accepts_jobs(container: &Container) -> Result<(), ServiceError> {
    if container.status.accepts_jobs() {
        Ok(())
    } else {
        Err(ServiceError::Conflict(format!(
            "container {} is being deleted",
            container.id
        )))
    }
}
