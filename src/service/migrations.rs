//! Moving containers between nodes: queueing a move (on any node), and
//! taking in the files of a container that is moving to this node.

use std::sync::Arc;

use tokio::io::AsyncRead;
use uuid::Uuid;

use super::{
    fingerprint, parse_node_name, Accepted, IdempotencyKey, Requester, Service, ServiceError,
};
use crate::db::containers;
use crate::db::jobs::{self, NewJob};
use crate::db::{Db, DbError};
use crate::domain::job::{JobAction, JobPayload, MigrateChange};
use crate::domain::lifecycle::Action;
use crate::domain::time;
use crate::driver::{ContainerSpec, Driver, DriverError, StepLog};

impl Service {
    /// Queues the move of container `id` to node `to`.
    pub async fn queue_migration(
        &self,
        id: Uuid,
        to: &str,
        key: Option<&IdempotencyKey>,
        by: &Requester,
    ) -> Result<Accepted, ServiceError> {
        let to = parse_node_name(to)?;
        if !self.node.moves_containers {
            return Err(ServiceError::MovesOff);
        }
        let request_print = fingerprint(&["migrate", &id.to_string(), to.as_str()]);
        let mut tx = self.db.begin().await?;
        if let Some(replay) = super::containers::replayed(&mut tx, key, &request_print).await? {
            return self.replay(replay).await;
        }
        let container = containers::get(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::ContainerNotFound(id.to_string()))?;
        super::containers::admit(&container, Action::Migrate)?;
        let storage = super::storage::storage_of(&container.storage, &container.storage_driver);
        if !storage.driver.can_move() {
            return Err(ServiceError::PoolCannotMove {
                container: id,
                pool: storage.pool,
                driver: storage.driver.as_str().to_owned(),
            });
        }
        // Where it is at the time of the request; a move queued behind
        // another one finds out when it runs, and then has nothing to do.
        if container.node == to.as_str() {
            return Err(ServiceError::AlreadyOnNode {
                container: id,
                node: to.as_str().to_owned(),
            });
        }
        self.check_target(&mut tx, to.as_str()).await?;
        let now = time::now();
        let new_job = NewJob {
            entity_id: id,
            action: JobAction::Migrate,
            payload: Some(JobPayload::Migrate(MigrateChange {
                to: to.as_str().to_owned(),
                was_running: None,
                handed_over: false,
            })),
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
}

/// Why a node refuses a container's files.
#[derive(Debug, thiserror::Error)]
pub enum ArrivalError {
    #[error("container {0} not found")]
    ContainerNotFound(Uuid),
    #[error(
        "no move of container {container} to node '{node}' is running; files are taken only \
         from the node that is moving it here"
    )]
    NotMovingHere { container: Uuid, node: String },
    #[error("container {container} lives on this node ('{node}'): its files stay")]
    LivesHere { container: Uuid, node: String },
    #[error("the stored parameters are not valid: {0}")]
    InvalidParameters(crate::domain::ValidationErrors),
    #[error("{0}")]
    Driver(#[from] DriverError),
    #[error(transparent)]
    Database(#[from] DbError),
}

/// What arrived, as the sender checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrived {
    pub sha256: String,
    pub bytes: u64,
}

/// This node's side of moves: builds containers from the files another
/// node sends, and removes what a failed move left.
pub struct Arrivals {
    db: Db,
    driver: Arc<dyn Driver>,
    node: String,
    /// Why the last arrival of each container failed, until the sender
    /// asks for its copy to be discarded: a receiver that fails half-way
    /// answers at once, which the sender, still writing, sees only as a
    /// broken connection.
    failures: std::sync::Mutex<std::collections::HashMap<Uuid, String>>,
}

impl Arrivals {
    pub fn new(db: Db, driver: Arc<dyn Driver>, node: String) -> Self {
        Arrivals {
            db,
            driver,
            node,
            failures: Default::default(),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<Uuid, String>> {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether `receive` would take container `id` now (asked before the
    /// sender stops the container, so that a refusal costs no downtime).
    pub async fn check(&self, id: Uuid) -> Result<(), ArrivalError> {
        let spec = self.expected(id).await?;
        self.driver.can_receive(&spec).await?;
        Ok(())
    }

    /// Builds container `id` here from `files`, if a move of it to this
    /// node is running. `tally` is what was read of `files`.
    pub async fn receive(
        &self,
        id: Uuid,
        files: &mut (dyn AsyncRead + Unpin + Send),
        tally: &crate::cluster::peer::Tally,
    ) -> Result<Arrived, ArrivalError> {
        let spec = self.expected(id).await?;
        let log = ServerLog { container: id };
        if let Err(error) = self.driver.receive(&spec, files, &log).await {
            self.failures().insert(id, error.to_string());
            return Err(error.into());
        }
        self.failures().remove(&id);
        let (sha256, bytes) = tally.sum();
        log::info!(
            "received container {} ({id}) from another node: {bytes} bytes",
            spec.name
        );
        Ok(Arrived { sha256, bytes })
    }

    /// Removes the copy of container `id` a failed move left here (never
    /// a container this node owns); says why its arrival failed, if this
    /// node knows.
    pub async fn discard(&self, id: Uuid) -> Result<Option<String>, ArrivalError> {
        let container = {
            let mut conn = self.db.pool().acquire().await.map_err(DbError::from)?;
            containers::get_any(&mut conn, id)
                .await?
                .ok_or(ArrivalError::ContainerNotFound(id))?
        };
        if container.node == self.node {
            return Err(ArrivalError::LivesHere {
                container: id,
                node: self.node.clone(),
            });
        }
        let spec = ContainerSpec::of(id, &container.name, container.parameters.as_ref())
            .map_err(ArrivalError::InvalidParameters)?;
        self.driver
            .destroy(&spec, &ServerLog { container: id })
            .await?;
        Ok(self.failures().remove(&id))
    }

    /// The container a running move is bringing here, as the driver needs
    /// it; refused unless one is.
    async fn expected(&self, id: Uuid) -> Result<ContainerSpec, ArrivalError> {
        let mut conn = self.db.pool().acquire().await.map_err(DbError::from)?;
        let container = containers::get(&mut conn, id)
            .await?
            .ok_or(ArrivalError::ContainerNotFound(id))?;
        if container.node == self.node {
            return Err(ArrivalError::LivesHere {
                container: id,
                node: self.node.clone(),
            });
        }
        let job = jobs::running_for(&mut conn, id).await?;
        let moving_here = job.as_ref().is_some_and(|job| {
            matches!(
                job.payload(),
                Ok(Some(JobPayload::Migrate(change)))
                    if change.to == self.node && !change.handed_over
            )
        });
        if !moving_here {
            return Err(ArrivalError::NotMovingHere {
                container: id,
                node: self.node.clone(),
            });
        }
        ContainerSpec::of(id, &container.name, container.parameters.as_ref())
            .map_err(ArrivalError::InvalidParameters)
    }
}

/// The receiving side has no job of its own (the job runs on the sending
/// node, which logs the outcome): its steps go to the server log.
struct ServerLog {
    container: Uuid,
}

impl StepLog for ServerLog {
    fn step(&self, text: String) {
        log::info!("arrival of container {}: {text}", self.container);
    }
    fn progress(&self, _percent: u8) {}
    fn enter_cancellable(&self) {}
    fn leave_cancellable(&self) -> bool {
        false
    }
    fn cancel_requested(&self) -> bool {
        false
    }
}
