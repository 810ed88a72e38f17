//! What clients can ask of berth, whether through the API or the console:
//! validate, store the change and its job in one transaction, wake the
//! runner, announce the change. Never touches LXC; the runner does that.

mod attach;
mod backups;
mod clones;
mod containers;
mod jobs;
mod migrations;
mod nodes;
mod os_templates;
mod sessions;
mod snapshots;
mod storage;
mod tokens;

use std::path::PathBuf;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::db::containers::Container;
use crate::db::jobs::Job;
use crate::db::{Db, DbError};
use crate::domain::job::{JobAction, JobStatus};
use crate::domain::lifecycle::Refusal;
use crate::domain::node::NodeState;
use crate::domain::parameters::HostLimits;
use crate::domain::ValidationErrors;
use crate::driver::host::HostProbe;
use crate::driver::storage::Pools;
use crate::events::{Event, EventBus};
use crate::jobs::JobQueue;
use crate::os_templates::{OsTemplateStore, TemplateError};

pub use attach::{Attach, TerminalLease};
pub use backups::{check_file, RestoreRequest};
pub use clones::CloneRequest;
pub use containers::{Accepted, NewContainer};
pub use jobs::{CancelOutcome, MAX_WAIT};
pub use migrations::{ArrivalError, Arrivals, Arrived};
pub use nodes::{parse_node_name, Capacity, NodeView, ThisNode, Usage};
pub use storage::storage_of;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Validation(ValidationErrors),
    #[error("template '{0}' not found")]
    TemplateNotFound(String),
    /// The node a create names does not have the template (each node has
    /// its own template directory).
    #[error(
        "template '{template}' is not in the template directory of node '{node}'; add it \
         there (POST /v1/templates/ on that node), or name another node or none"
    )]
    TemplateNotOnNode { template: String, node: String },
    #[error("a container named '{0}' already exists")]
    NameTaken(String),
    #[error("container {0} not found")]
    ContainerNotFound(String),
    #[error("job {0} not found")]
    JobNotFound(String),
    /// The lifecycle model refuses the action in the container's status.
    #[error("container {container} {refusal}")]
    Refused { container: Uuid, refusal: Refusal },
    #[error("job {id} has already finished ({}); there is nothing to cancel", status.as_str())]
    JobFinished { id: Uuid, status: JobStatus },
    #[error(
        "job {id} ({}) is in a step that cannot be stopped safely; wait for it to finish",
        action.as_str()
    )]
    JobNotCancellable { id: Uuid, action: JobAction },
    #[error("template '{0}' is needed by a create job that has not finished; try again after it")]
    TemplateInUse(String),
    #[error("a token named '{0}' exists; revoke it first")]
    TokenExists(String),
    #[error("there is no token named '{0}'")]
    TokenNotFound(String),
    #[error("Idempotency-Key '{0}' was already used with a different request")]
    IdempotencyKeyReused(String),
    #[error("{0}")]
    ChangeNotPublished(String),
    #[error("node '{0}' not found")]
    NodeNotFound(String),
    /// A request names a node berth has never heard of.
    #[error("there is no node named '{0}' (GET /v1/nodes lists them)")]
    UnknownNode(String),
    #[error("node '{name}' is {}: it takes no new containers now", state.as_str())]
    NodeUnavailable { name: String, state: NodeState },
    #[error("no node takes new containers now: every node is offline or draining")]
    NoNodeAvailable,
    #[error("container {container} is already on node '{node}'")]
    AlreadyOnNode { container: Uuid, node: String },
    #[error(
        "this node has no cluster_secret set: nodes move containers between them only with \
         one (the same on every node; see \"Many hosts as one berth\" in the README)"
    )]
    MovesOff,
    #[error(
        "node name '{name}' is held by another host that is alive (API {api_url}, last \
         heartbeat {}); stop that berth or give this one another node_name",
        crate::domain::time::format(heartbeat_at)
    )]
    NodeNameHeld {
        name: String,
        api_url: String,
        heartbeat_at: crate::domain::time::Timestamp,
    },
    // exec and terminals (issue 14).
    #[error("container {container} is {status}; commands and terminals need it running (start it first)")]
    NotRunning {
        container: Uuid,
        status: &'static str,
    },
    #[error(
        "container {container} runs on node '{node}'; run commands and open terminals \
         through that node's API"
    )]
    OnOtherNode { container: Uuid, node: String },
    #[error(
        "container {container} has {max} terminals open, the most it may have; close one first"
    )]
    TooManyTerminals { container: Uuid, max: usize },
    #[error("cannot attach to the container: {0}")]
    AttachFailed(String),
    #[error("there is no storage pool named '{0}' on this host (GET /v1/storage lists them)")]
    UnknownPool(String),
    #[error("storage pool '{name}' cannot be used on this host: {reason}")]
    PoolUnusable { name: String, reason: String },
    #[error(
        "container {container} is on the {driver} storage pool '{pool}': containers on \
         {driver} pools cannot move to another node yet"
    )]
    PoolCannotMove {
        container: Uuid,
        pool: String,
        driver: String,
    },
    #[error("container {container} has no snapshot named '{name}'")]
    SnapshotNotFound { container: String, name: String },
    #[error("container {container} has a snapshot named '{name}' already")]
    SnapshotExists { container: String, name: String },
    // Backups and restore.
    #[error("backup {0} not found")]
    BackupNotFound(String),
    #[error("{0}")]
    BackupUnreadable(String),
    #[error("backup {id} is kept on node '{node}'; ask that node's API for its file")]
    BackupElsewhere { id: Uuid, node: String },
    #[error(transparent)]
    Database(#[from] DbError),
    #[error(transparent)]
    Templates(#[from] TemplateError),
}

impl ServiceError {
    /// Whether the request conflicts with the current state of what it
    /// names (the console shows these as a notice, not an error page).
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            ServiceError::Refused { .. }
                | ServiceError::JobFinished { .. }
                | ServiceError::JobNotCancellable { .. }
                | ServiceError::TemplateInUse(_)
                | ServiceError::TokenExists(_)
                | ServiceError::TokenNotFound(_)
                | ServiceError::NodeUnavailable { .. }
                | ServiceError::NoNodeAvailable
                | ServiceError::AlreadyOnNode { .. }
                | ServiceError::MovesOff
                | ServiceError::NotRunning { .. }
                | ServiceError::OnOtherNode { .. }
                | ServiceError::TooManyTerminals { .. }
                | ServiceError::PoolUnusable { .. }
                | ServiceError::PoolCannotMove { .. }
                | ServiceError::SnapshotExists { .. }
                | ServiceError::BackupElsewhere { .. }
        )
    }
}

impl From<ValidationErrors> for ServiceError {
    fn from(errors: ValidationErrors) -> Self {
        ServiceError::Validation(errors)
    }
}

impl From<std::io::Error> for ServiceError {
    fn from(error: std::io::Error) -> Self {
        ServiceError::Templates(TemplateError::Io(error))
    }
}

/// A client's `Idempotency-Key`: the same key with the same request within
/// 24 hours answers with the first request's job instead of a second one.
#[derive(Debug, Clone)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, ValidationErrors> {
        let mut errors = ValidationErrors::default();
        if raw.is_empty() || raw.len() > 255 || !raw.chars().all(|c| c.is_ascii_graphic()) {
            errors.push(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters (a UUID is a good key)",
            );
        }
        errors.into_result(IdempotencyKey(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stable digest of what a request asks for, to tell a retry from a
/// different request under the same key.
fn fingerprint(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Who asks for a change: recorded on the jobs it queues.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requester(Option<String>);

impl Requester {
    /// Nobody in particular: authentication is off.
    pub fn anonymous() -> Self {
        Requester(None)
    }

    /// An API token, by its name.
    pub fn token(name: &str) -> Self {
        Requester(Some(format!("token:{name}")))
    }

    /// Someone logged in to the console with the API token of this name.
    pub fn console(name: &str) -> Self {
        Requester(Some(format!("console:{name}")))
    }

    pub fn as_deref(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

/// A page of a list's rows, and where the next one starts (not an HTML
/// page: that is the console's `HtmlPage`).
#[derive(Debug, Clone)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    /// The sequence number to continue after, when there is more.
    pub next: Option<i64>,
}

impl<T> ListPage<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says
    /// that there is more.
    fn from_rows(mut rows: Vec<T>, limit: u32, seq: impl Fn(&T) -> i64) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next = if more { rows.last().map(seq) } else { None };
        ListPage { items: rows, next }
    }
}

#[derive(Clone)]
pub struct Service {
    db: Db,
    os_templates: OsTemplateStore,
    queue: JobQueue,
    events: EventBus,
    host: HostProbe,
    tokens: Arc<tokens::TokenCache>,
    node: Arc<ThisNode>,
    /// This host's storage pools (none: every container on `default`).
    pools: Pools,
    /// `None` only in tests that build a service without one.
    backup_dir: Option<Arc<PathBuf>>,
}

impl Service {
    pub fn new(
        db: Db,
        os_templates: OsTemplateStore,
        queue: JobQueue,
        events: EventBus,
        host: HostProbe,
        node: ThisNode,
    ) -> Self {
        Service {
            node: Arc::new(node),
            tokens: Arc::new(tokens::TokenCache::new(&db)),
            db,
            os_templates,
            queue,
            events,
            host,
            pools: Pools::probe(&[]),
            backup_dir: None,
        }
    }

    /// What this host uses now, for the console's summary.
    pub fn host_usage(&self) -> crate::driver::host::HostUsage {
        self.host.usage()
    }

    /// Containers (deleted ones aside) by status, on every node.
    pub async fn container_counts(&self) -> Result<Vec<(String, i64)>, ServiceError> {
        Ok(crate::db::containers::count_by_status(&mut *self.connection().await?).await?)
    }

    /// The same service creating containers on these pools.
    pub fn with_pools(self, pools: Pools) -> Self {
        Service { pools, ..self }
    }

    /// This node's backup_dir, where backups are written and uploaded to.
    pub fn with_backup_dir(mut self, dir: PathBuf) -> Self {
        self.backup_dir = Some(Arc::new(dir));
        self
    }

    /// What this host offers now, for the values a request sets.
    pub fn host_limits(&self) -> HostLimits {
        self.host.limits()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn os_templates(&self) -> &OsTemplateStore {
        &self.os_templates
    }

    /// After a commit: wake the runner and tell subscribers what changed.
    async fn announce(&self, job: &Job) {
        self.queue.wake();
        self.events.publish(Event::Job(job.clone()));
        if let Ok(container) = self.container_any(job.entity_id).await {
            self.events.publish(Event::Container(container));
        }
    }

    async fn connection(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, ServiceError> {
        Ok(self.db.pool().acquire().await.map_err(DbError::from)?)
    }

    /// The container with this id, even when deleted (its jobs still name it).
    pub async fn container_any(&self, id: Uuid) -> Result<Container, ServiceError> {
        crate::db::containers::get_any(&mut *self.connection().await?, id)
            .await?
            .ok_or_else(|| ServiceError::ContainerNotFound(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_say_where_to_continue_only_when_there_is_more() {
        let page = ListPage::from_rows(vec![1, 2, 3], 2, |n| *n as i64);
        assert_eq!((page.items, page.next), (vec![1, 2], Some(2)));
        let page = ListPage::from_rows(vec![1, 2], 2, |n| *n as i64);
        assert_eq!((page.items, page.next), (vec![1, 2], None));
    }

    #[test]
    fn fingerprints_separate_their_parts() {
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
        assert_eq!(fingerprint(&["x"]), fingerprint(&["x"]));
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(IdempotencyKey::parse("3f1c-retry-1").is_ok());
        for bad in ["", "a b", "é", "a\n"] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad:?}");
        }
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
    }
}
