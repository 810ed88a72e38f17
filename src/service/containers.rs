//! Container operations: create, read, list, change parameters, and queue
//! the lifecycle actions.

use serde_json::Value;
use uuid::Uuid;

use super::{fingerprint, IdempotencyKey, ListPage, Requester, Service, ServiceError};
use crate::db::containers::{self, Container, ContainerFilter};
use crate::db::idempotency::{self, KeyUse};
use crate::db::jobs::{self, Job, NewJob};
use crate::db::{DbError, Tx};
use crate::domain::container::{ContainerName, ContainerStatus};
use crate::domain::job::{ConfigureChange, DeleteChange, JobAction, JobPayload};
use crate::domain::lifecycle::{self, Action};
use crate::domain::node::NodeName;
use crate::domain::os_template::check_name;
use crate::domain::parameters::{Parameter, ParameterPatch, Parameters};
use crate::domain::time::{self, Timestamp};
use crate::domain::ValidationErrors;

/// A request to create a container, as read from JSON or a form.
#[derive(Debug, Clone)]
pub struct NewContainer {
    pub name: String,
    pub ostemplate: String,
    pub parameters: Option<Value>,
    /// The node asked for; `None` lets berth place it.
    pub node: Option<String>,
    /// The storage pool asked for; `None` is the first pool.
    pub storage: Option<String>,
}

/// A change accepted and queued (or, for a retried idempotent request, the
/// one queued the first time).
#[derive(Debug, Clone)]
pub struct Accepted {
    pub job: Job,
    pub container_id: Uuid,
}

/// How long an Idempotency-Key is remembered.
const KEY_LIFETIME_HOURS: i64 = 24;

impl Service {
    /// Validates everything, then stores the container and its create job.
    pub async fn create_container(
        &self,
        request: NewContainer,
        key: Option<&IdempotencyKey>,
        by: &Requester,
    ) -> Result<Accepted, ServiceError> {
        let (name, parameters) = self.validate_new(&request)?;
        let storage = self.pool_for_create(request.storage.as_deref())?;
        let request_print = fingerprint(&[
            "create",
            name.as_str(),
            request.node.as_deref().unwrap_or(""),
            &storage.pool,
            &request.ostemplate,
            &serde_json::to_string(&parameters).expect("parameters serialise"),
        ]);
        // File-system work before the one write lock, not while holding it;
        // its verdict counts only once the request is known not to be a replay.
        let template = self.os_templates.find(&request.ostemplate);
        let mut tx = self.db.begin().await?;
        if let Some(replay) = replayed(&mut tx, key, &request_print).await? {
            return self.replay(replay).await;
        }
        let here = template?.is_some();
        let node = self
            .choose_node(&mut tx, request.node.as_deref(), &request.ostemplate, here)
            .await?;
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
            node,
            storage: storage.pool,
            storage_driver: storage.driver.as_str().to_owned(),
        };
        // The unique index on live names answers "is the name taken" in the
        // insert itself: one statement less while the write lock is held.
        let stored = match containers::insert(&mut tx, &container).await {
            Ok(stored) => stored,
            Err(e) if e.is_unique_violation() => {
                return Err(ServiceError::NameTaken(container.name))
            }
            Err(e) => return Err(e.into()),
        };
        let new_job = NewJob {
            entity_id: stored.id,
            action: JobAction::Create,
            payload: None,
            requested_by: by.as_deref(),
        };
        let job = self
            .commit_with_job(tx, new_job, now, key.map(|key| (key, request_print)))
            .await?;
        Ok(Accepted {
            container_id: job.entity_id,
            job,
        })
    }

    /// Every rule a new container must meet, all problems at once.
    fn validate_new(
        &self,
        request: &NewContainer,
    ) -> Result<(ContainerName, Option<Parameters>), ValidationErrors> {
        let mut errors = ValidationErrors::default();
        let name = ContainerName::parse(&request.name)
            .map_err(|e| errors.0.push(e))
            .ok();
        if let Err(e) = check_name(&request.ostemplate) {
            errors.0.push(e);
        }
        if let Some(Err(e)) = request.node.as_deref().map(NodeName::parse) {
            errors.0.push(e);
        }
        let parameters = match &request.parameters {
            None | Some(Value::Null) => None,
            Some(value) => match ParameterPatch::from_json(value) {
                Ok(patch) => {
                    let parameters = Parameters::default().merged(&patch);
                    if let Err(e) = parameters.validate(&patch, &self.host.limits()) {
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
        Ok((name, parameters))
    }

    pub(super) async fn replay(&self, used: KeyUse) -> Result<Accepted, ServiceError> {
        let job = self.job(used.job_id).await?;
        Ok(Accepted {
            job,
            container_id: used.container_id,
        })
    }

    pub async fn container(&self, id: Uuid) -> Result<Container, ServiceError> {
        containers::get(&mut *self.connection().await?, id)
            .await?
            .ok_or_else(|| ServiceError::ContainerNotFound(id.to_string()))
    }

    /// A page of containers, oldest first, continuing after `after`.
    pub async fn containers(
        &self,
        filter: &ContainerFilter,
        after: Option<i64>,
        limit: u32,
    ) -> Result<ListPage<Container>, ServiceError> {
        let rows =
            containers::page(&mut *self.connection().await?, filter, after, limit + 1).await?;
        Ok(ListPage::from_rows(rows, limit, |c| c.seq))
    }

    /// The containers an overview lists: the first `limit`, oldest first.
    pub async fn first_containers(&self, limit: u32) -> Result<Vec<Container>, ServiceError> {
        Ok(self
            .containers(&ContainerFilter::default(), None, limit)
            .await?
            .items)
    }

    /// Merges `parameters` into the stored ones and queues the job that
    /// applies them.
    pub async fn update_parameters(
        &self,
        id: Uuid,
        parameters: &Value,
        by: &Requester,
    ) -> Result<Job, ServiceError> {
        let patch = ParameterPatch::from_json(parameters)?;
        // Read before the transaction: nothing else waits on the host.
        let host = self.host.limits();
        let mut tx = self.db.begin().await?;
        let container = containers::get(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::ContainerNotFound(id.to_string()))?;
        admit(&container, Action::Configure)?;
        let before = container.parameters.clone();
        let current = before.clone().unwrap_or_default();
        let after = current.merged(&patch);
        if current.get(Parameter::Size).is_some() && after.get(Parameter::Size).is_none() {
            let mut errors = ValidationErrors::default();
            errors.push(
                Parameter::Size.field(),
                "cannot be removed once set; set a new size instead",
            );
            return Err(errors.into());
        }
        // Only what this request sets meets the host's limits: a container
        // stored with more CPUs than the host has today still takes a new
        // hostname (and is still stopped or deleted: jobs fit it to the host).
        after.validate(&patch, &host)?;

        let now = time::now();
        containers::set_parameters(&mut tx, id, &after, now).await?;
        let payload = JobPayload::Configure(Box::new(ConfigureChange { before, after }));
        let new_job = NewJob {
            entity_id: id,
            action: JobAction::Configure,
            payload: Some(payload),
            requested_by: by.as_deref(),
        };
        self.commit_with_job(tx, new_job, now, None).await
    }

    /// Queues start, stop, restart or delete.
    pub async fn queue_action(
        &self,
        id: Uuid,
        action: Action,
        key: Option<&IdempotencyKey>,
        by: &Requester,
    ) -> Result<Accepted, ServiceError> {
        debug_assert!(
            action != Action::Configure,
            "configure is update_parameters"
        );
        let job_action = action.job();
        let request_print = fingerprint(&[job_action.as_str(), &id.to_string()]);
        let mut tx = self.db.begin().await?;
        if let Some(replay) = replayed(&mut tx, key, &request_print).await? {
            return self.replay(replay).await;
        }
        let container = containers::get(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::ContainerNotFound(id.to_string()))?;
        admit(&container, action)?;
        let now = time::now();
        let mut payload = None;
        if action == Action::Delete {
            payload = Some(JobPayload::Delete(DeleteChange {
                previous_status: container.status,
            }));
            containers::set_status(&mut tx, id, ContainerStatus::Deleting, now).await?;
        }
        let new_job = NewJob {
            entity_id: id,
            action: job_action,
            payload,
            requested_by: by.as_deref(),
        };
        let job = self
            .commit_with_job(tx, new_job, now, key.map(|key| (key, request_print)))
            .await?;
        Ok(Accepted {
            container_id: id,
            job,
        })
    }

    /// Ends a change: stores its job in the same transaction, with the
    /// Idempotency-Key that asked for it (so a retry finds the job or
    /// nothing), commits, and tells the runner and subscribers.
    pub(super) async fn commit_with_job(
        &self,
        mut tx: Tx<'_>,
        new_job: NewJob<'_>,
        now: Timestamp,
        key: Option<(&IdempotencyKey, String)>,
    ) -> Result<Job, ServiceError> {
        let job = jobs::insert(&mut tx, &new_job, now).await?;
        if let Some(why) = self.why_it_waits(&mut tx, job.entity_id, now).await? {
            jobs::append_log(&mut tx, job.seq, now, &why).await?;
        }
        if let Some((key, request_print)) = key {
            remember(&mut tx, key, request_print, &job).await?;
        }
        tx.commit().await.map_err(DbError::from)?;
        self.announce(&job).await;
        Ok(job)
    }
}

/// Whether the lifecycle model lets `container` take `action` now.
pub(super) fn admit(container: &Container, action: Action) -> Result<(), ServiceError> {
    lifecycle::admits(container.status, action).map_err(|refusal| ServiceError::Refused {
        container: container.id,
        refusal,
    })
}

/// The first use of `key`, when this request repeats it; an error when the
/// key was used for something else.
pub(super) async fn replayed(
    tx: &mut Tx<'_>,
    key: Option<&IdempotencyKey>,
    request_print: &str,
) -> Result<Option<KeyUse>, ServiceError> {
    let Some(key) = key else { return Ok(None) };
    let since = time::now() - chrono::Duration::hours(KEY_LIFETIME_HOURS);
    match idempotency::find(tx, key.as_str(), since).await? {
        Some(used) if used.fingerprint == request_print => Ok(Some(used)),
        Some(_) => Err(ServiceError::IdempotencyKeyReused(key.as_str().to_owned())),
        None => Ok(None),
    }
}

async fn remember(
    tx: &mut Tx<'_>,
    key: &IdempotencyKey,
    request_print: String,
    job: &Job,
) -> Result<(), DbError> {
    let used = KeyUse {
        fingerprint: request_print,
        job_id: job.id,
        container_id: job.entity_id,
    };
    idempotency::record(tx, key.as_str(), &used, time::now()).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::events::EventBus;
    use crate::jobs::JobQueue;
    use crate::os_templates::OsTemplateStore;

    async fn service(dir: &std::path::Path) -> Service {
        let db = Db::open(&format!("sqlite://{}/t.db", dir.display()))
            .await
            .unwrap();
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        let service = Service::new(
            db,
            OsTemplateStore::new(dir.join("templates")),
            JobQueue::new(),
            EventBus::new(),
            crate::driver::host::HostProbe::new(dir.into(), false),
            crate::service::ThisNode::alone("local"),
        );
        service
            .register_this_node(crate::service::Capacity {
                cpus: 4,
                memory_bytes: 8 << 30,
                disk_bytes: 100 << 30,
            })
            .await
            .unwrap();
        service
    }

    fn request(name: &str, ostemplate: &str) -> NewContainer {
        NewContainer {
            name: name.into(),
            ostemplate: ostemplate.into(),
            parameters: None,
            node: None,
            storage: None,
        }
    }

    /// The template look-up is file-system work: it happens before the one
    /// write lock is taken, not while holding it. Seen by a create that
    /// waits for the lock: the template it looked up beforehand may go away
    /// meanwhile (it used to look only once it had the lock).
    #[rocket::async_test]
    async fn the_template_is_looked_up_before_the_write_lock() {
        use std::future::Future;
        use std::task::Poll;

        let dir = tempfile::tempdir().unwrap();
        let service = service(dir.path()).await;
        let file = dir.path().join("templates/t1.tar.gz");
        std::fs::write(&file, [0x1f, 0x8b]).unwrap();
        let lock = service.db().begin().await.unwrap();
        let by = Requester::anonymous();
        let mut create = std::pin::pin!(service.create_container(request("c1", "t1"), None, &by));
        let first = std::future::poll_fn(|cx| Poll::Ready(create.as_mut().poll(cx))).await;
        assert!(first.is_pending(), "the create waits for the lock");
        std::fs::remove_file(&file).unwrap();
        lock.rollback().await.unwrap();
        let accepted = create.await;
        assert!(accepted.is_ok(), "{accepted:?}");
    }

    /// A retried request still answers with its first job even after its
    /// template is gone: the look-up's verdict counts only for new creates.
    #[rocket::async_test]
    async fn a_replay_does_not_need_the_template_any_more() {
        let dir = tempfile::tempdir().unwrap();
        let service = service(dir.path()).await;
        let file = dir.path().join("templates/t1.tar.gz");
        std::fs::write(&file, [0x1f, 0x8b]).unwrap();
        let key = IdempotencyKey::parse("retry-1").unwrap();
        let by = Requester::anonymous();
        let first = service
            .create_container(request("c1", "t1"), Some(&key), &by)
            .await
            .unwrap();
        std::fs::remove_file(&file).unwrap();
        let again = service
            .create_container(request("c1", "t1"), Some(&key), &by)
            .await
            .unwrap();
        assert_eq!(again.job.id, first.job.id);
        assert!(matches!(
            service
                .create_container(request("c2", "t1"), None, &by)
                .await,
            Err(ServiceError::TemplateNotFound(_))
        ));
    }
}
