//! Snapshots of a container: take, list, restore, delete. Each change is a
//! job of the container's queue; the snapshot's row is written in the same
//! transaction, so a name is taken (or a snapshot marked for deletion) the
//! moment the request is answered.

use uuid::Uuid;

use super::containers::admit;
use super::{Accepted, Service, ServiceError};
use crate::db::containers;
use crate::db::jobs::NewJob;
use crate::db::snapshots::{self, Snapshot};
use crate::domain::container::ContainerName;
use crate::domain::job::{JobAction, JobPayload, RestoreChange, SnapshotChange};
use crate::domain::lifecycle::Action;
use crate::domain::time;
use crate::domain::ValidationErrors;
use crate::service::Requester;

/// A snapshot name: the rules of a container name.
fn snapshot_name(raw: &str) -> Result<String, ServiceError> {
    ContainerName::parse(raw)
        .map(|name| name.as_str().to_owned())
        .map_err(|e| ServiceError::Validation(ValidationErrors(vec![e])))
}

impl Service {
    /// Queues a snapshot `name` of container `id`.
    pub async fn take_snapshot(
        &self,
        id: Uuid,
        name: &str,
        by: &Requester,
    ) -> Result<Accepted, ServiceError> {
        let name = snapshot_name(name)?;
        let mut tx = self.db.begin().await?;
        let container = containers::get(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::ContainerNotFound(id.to_string()))?;
        admit(&container, Action::Snapshot)?;
        let now = time::now();
        match snapshots::insert(&mut tx, id, &name, &now).await {
            Ok(()) => {}
            Err(e) if e.is_unique_violation() => {
                return Err(ServiceError::SnapshotExists {
                    container: container.name,
                    name,
                })
            }
            Err(e) => return Err(e.into()),
        }
        let new_job = NewJob {
            entity_id: id,
            action: JobAction::Snapshot,
            payload: Some(JobPayload::Snapshot(SnapshotChange { name })),
            requested_by: by.as_deref(),
        };
        let job = self.commit_with_job(tx, new_job, now, None).await?;
        Ok(Accepted {
            container_id: id,
            job,
        })
    }

    /// The container's snapshots that are taken (not being taken or
    /// deleted), oldest first.
    pub async fn snapshots(&self, id: Uuid) -> Result<Vec<Snapshot>, ServiceError> {
        let mut conn = self.connection().await?;
        containers::get(&mut conn, id)
            .await?
            .ok_or_else(|| ServiceError::ContainerNotFound(id.to_string()))?;
        Ok(snapshots::ready(&mut conn, id).await?)
    }

    /// Queues putting container `id` back to its snapshot `name`.
    pub async fn restore_snapshot(
        &self,
        id: Uuid,
        name: &str,
        by: &Requester,
    ) -> Result<Accepted, ServiceError> {
        let mut tx = self.db.begin().await?;
        let container = containers::get(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::ContainerNotFound(id.to_string()))?;
        admit(&container, Action::Restore)?;
        ready_snapshot(&mut tx, id, &container.name, name).await?;
        let new_job = NewJob {
            entity_id: id,
            action: JobAction::SnapshotRestore,
            payload: Some(JobPayload::SnapshotRestore(RestoreChange {
                name: name.to_owned(),
                was_running: None,
            })),
            requested_by: by.as_deref(),
        };
        let job = self.commit_with_job(tx, new_job, time::now(), None).await?;
        Ok(Accepted {
            container_id: id,
            job,
        })
    }

    /// Queues deleting container `id`'s snapshot `name`; it is no longer
    /// listed from now on.
    pub async fn delete_snapshot(
        &self,
        id: Uuid,
        name: &str,
        by: &Requester,
    ) -> Result<Accepted, ServiceError> {
        let mut tx = self.db.begin().await?;
        let container = containers::get(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::ContainerNotFound(id.to_string()))?;
        admit(&container, Action::Snapshot)?;
        ready_snapshot(&mut tx, id, &container.name, name).await?;
        snapshots::set_status(&mut tx, id, name, snapshots::DELETING).await?;
        let new_job = NewJob {
            entity_id: id,
            action: JobAction::SnapshotDelete,
            payload: Some(JobPayload::SnapshotDelete(SnapshotChange {
                name: name.to_owned(),
            })),
            requested_by: by.as_deref(),
        };
        let job = self.commit_with_job(tx, new_job, time::now(), None).await?;
        Ok(Accepted {
            container_id: id,
            job,
        })
    }
}

/// The snapshot, when it is taken and not being deleted.
pub(super) async fn ready_snapshot(
    tx: &mut crate::db::Tx<'_>,
    id: Uuid,
    container: &str,
    name: &str,
) -> Result<Snapshot, ServiceError> {
    match snapshots::get(tx, id, name).await? {
        Some(snapshot) if snapshot.status == snapshots::READY => Ok(snapshot),
        _ => Err(ServiceError::SnapshotNotFound {
            container: container.to_owned(),
            name: name.to_owned(),
        }),
    }
}
