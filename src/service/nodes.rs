//! Nodes: this host joining the database's nodes (registration and
//! heartbeat), what the API and console show of each node, the operator's
//! drain, and the choice of the node a new container lives on.

use std::time::Duration;

use serde::Serialize;

use super::{Service, ServiceError};
use crate::db::nodes::{self, NodeRecord};
use crate::db::{Backend, DbError, Tx};
use crate::domain::node::{self, AdminState, Candidate, NodeName, NodeState, Unplaced};
use crate::domain::parameters::Parameters;
use crate::domain::time::{self, Timestamp};
use crate::domain::ValidationErrors;

/// This host as a node: who it is and how long a silent node is trusted.
#[derive(Debug, Clone)]
pub struct ThisNode {
    pub name: String,
    pub host_id: String,
    pub api_url: String,
    pub timeout_secs: u64,
    /// Whether this node has a cluster secret, without which no container
    /// moves between nodes.
    pub moves_containers: bool,
}

impl ThisNode {
    /// A node of its own, for a berth whose database no other host shares
    /// (tests and tools that build a `Service` by hand).
    pub fn alone(name: &str) -> ThisNode {
        ThisNode {
            name: name.to_owned(),
            host_id: format!("{name}-host"),
            api_url: "http://127.0.0.1:5000".to_owned(),
            timeout_secs: 30,
            moves_containers: false,
        }
    }

    /// How often this node beats: several times within the time-out, so
    /// that one late beat does not make it look offline.
    pub fn heartbeat_period(&self) -> Duration {
        Duration::from_secs((self.timeout_secs / 3).clamp(1, 5))
    }
}

/// What this host offers, read when it registers.
#[derive(Debug, Clone, Copy)]
pub struct Capacity {
    pub cpus: u64,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
}

/// What a node's containers ask for, from their parameters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub containers: u64,
    pub cpus: u64,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
}

/// A node as the API and the console show it.
#[derive(Debug, Clone)]
pub struct NodeView {
    pub record: NodeRecord,
    pub state: NodeState,
    pub usage: Usage,
}

impl Service {
    pub fn this_node(&self) -> &ThisNode {
        &self.node
    }

    /// Registers this host under its node name, or refuses when another
    /// host that is still alive holds the name. On SQLite the database is
    /// this host's alone: its containers are all this node's, and other
    /// nodes' rows (an old host name) are forgotten.
    pub async fn register_this_node(&self, capacity: Capacity) -> Result<(), ServiceError> {
        let node = &self.node;
        let templates = self.templates_to_publish().await.unwrap_or_default();
        let now = time::now();
        let mut tx = self.db.begin().await?;
        let held = nodes::get(&mut tx, &node.name).await?;
        if let Some(other) = held.as_ref().filter(|row| row.host_id != node.host_id) {
            let state = NodeState::of(other.state, other.heartbeat_at, now, node.timeout_secs);
            if state != NodeState::Offline {
                return Err(ServiceError::NodeNameHeld {
                    name: node.name.clone(),
                    api_url: other.api_url.clone(),
                    heartbeat_at: other.heartbeat_at,
                });
            }
        }
        let record = NodeRecord {
            name: node.name.clone(),
            host_id: node.host_id.clone(),
            api_url: node.api_url.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            cpus: capacity.cpus,
            memory_bytes: capacity.memory_bytes,
            disk_bytes: capacity.disk_bytes,
            state: held.map_or(AdminState::Online, |row| row.state),
            started_at: now,
            heartbeat_at: now,
            templates,
        };
        nodes::register(&mut tx, &record).await?;
        match self.db.backend() {
            Backend::Sqlite => {
                nodes::forget_other_nodes(&mut tx, &node.name).await?;
                nodes::adopt_all_containers(&mut tx, &node.name).await?;
            }
            Backend::Postgres => {
                nodes::adopt_unplaced_containers(&mut tx, &node.name).await?;
            }
        }
        tx.commit().await.map_err(DbError::from)?;
        Ok(())
    }

    /// One heartbeat. False when another host has taken this node's name
    /// (this one was silent past the time-out and a new host registered).
    /// The node's templates are published with it, so that a template put
    /// into the directory by hand is known to the other nodes within a beat.
    pub async fn beat(&self) -> Result<bool, ServiceError> {
        let templates = self.templates_to_publish().await;
        let mut conn = self.db.writer().await?;
        Ok(nodes::heartbeat(
            &mut conn,
            &self.node.name,
            &self.node.host_id,
            time::now(),
            templates.as_deref(),
        )
        .await?)
    }

    /// Tells the other nodes which templates this one has, at once (after
    /// an upload or a delete here).
    pub async fn publish_templates(&self) -> Result<(), ServiceError> {
        let Some(templates) = self.templates_to_publish().await else {
            return Ok(());
        };
        let mut conn = self.db.writer().await?;
        nodes::set_templates(&mut conn, &self.node.name, &self.node.host_id, &templates).await?;
        Ok(())
    }

    /// The names in this node's template directory (a listing, off the
    /// async threads); `None`, said in the log, when it cannot be read.
    async fn templates_to_publish(&self) -> Option<Vec<String>> {
        match self.os_template_names().await {
            Ok(names) => Some(names),
            Err(error) => {
                log::warn!(
                    "cannot list the template directory {} to tell the other nodes: {error}",
                    self.os_templates.dir().display()
                );
                None
            }
        }
    }

    /// Every node, by name.
    pub async fn nodes(&self) -> Result<Vec<NodeView>, ServiceError> {
        let mut conn = self.connection().await?;
        let records = nodes::list(&mut conn).await?;
        let usage = usage_by_node(nodes::container_parameters(&mut conn).await?);
        drop(conn);
        let now = time::now();
        Ok(records
            .into_iter()
            .map(|record| self.view(record, &usage, now))
            .collect())
    }

    /// Every node's name and state, by name: what a choice of nodes needs,
    /// without reading every container for the usage `nodes` adds.
    pub async fn node_states(&self) -> Result<Vec<(String, NodeState)>, ServiceError> {
        let records = nodes::list(&mut *self.connection().await?).await?;
        let now = time::now();
        Ok(records
            .into_iter()
            .map(|record| {
                let state = NodeState::of(
                    record.state,
                    record.heartbeat_at,
                    now,
                    self.node.timeout_secs,
                );
                (record.name, state)
            })
            .collect())
    }

    pub async fn node(&self, name: &str) -> Result<NodeView, ServiceError> {
        self.nodes()
            .await?
            .into_iter()
            .find(|view| view.record.name == name)
            .ok_or_else(|| ServiceError::NodeNotFound(name.to_owned()))
    }

    /// `online` or `draining`, as the operator says.
    pub async fn set_node_state(
        &self,
        name: &str,
        state: AdminState,
    ) -> Result<NodeView, ServiceError> {
        let mut tx = self.db.begin().await?;
        if !nodes::set_state(&mut tx, name, state).await? {
            return Err(ServiceError::NodeNotFound(name.to_owned()));
        }
        tx.commit().await.map_err(DbError::from)?;
        self.node(name).await
    }

    /// The node a new container from `ostemplate` goes to: the one asked
    /// for, if it has the template and takes containers now, else the
    /// placement rule's choice (`domain::node`). Whether this node has the
    /// template is `here` (its own directory, looked at just now); the
    /// other nodes' is what they last published. Read inside the create's
    /// transaction.
    pub(super) async fn choose_node(
        &self,
        tx: &mut Tx<'_>,
        asked: Option<&str>,
        ostemplate: &str,
        here: bool,
    ) -> Result<String, ServiceError> {
        let records = nodes::list(tx).await?;
        let now = time::now();
        let has_template = |record: &NodeRecord| match record.name == self.node.name {
            true => here,
            false => record.templates.iter().any(|name| name == ostemplate),
        };
        if let Some(asked) = asked {
            let record = records
                .iter()
                .find(|record| record.name == asked)
                .ok_or_else(|| ServiceError::UnknownNode(asked.to_owned()))?;
            if !has_template(record) {
                return Err(ServiceError::TemplateNotOnNode {
                    template: ostemplate.to_owned(),
                    node: asked.to_owned(),
                });
            }
            self.takes_containers(record, now)?;
            return Ok(asked.to_owned());
        }
        let usage = usage_by_node(nodes::container_parameters(tx).await?);
        let candidates: Vec<Candidate> = records
            .iter()
            .map(|record| {
                let used = usage.get(&record.name).copied().unwrap_or_default();
                Candidate {
                    name: record.name.clone(),
                    state: NodeState::of(
                        record.state,
                        record.heartbeat_at,
                        now,
                        self.node.timeout_secs,
                    ),
                    memory_bytes: record.memory_bytes,
                    promised_memory_bytes: used.memory_bytes,
                    containers: used.containers,
                    has_template: has_template(record),
                }
            })
            .collect();
        match node::place(&candidates) {
            Ok(chosen) => Ok(chosen.name.clone()),
            Err(Unplaced::NoTemplate) => Err(ServiceError::TemplateNotFound(ostemplate.to_owned())),
            Err(Unplaced::NoneAvailable) => Err(ServiceError::NoNodeAvailable),
        }
    }

    /// Checks that node `name` exists and takes containers now (a move's
    /// target). Read inside the move's transaction.
    pub(super) async fn check_target(
        &self,
        tx: &mut Tx<'_>,
        name: &str,
    ) -> Result<(), ServiceError> {
        let record = nodes::get(tx, name)
            .await?
            .ok_or_else(|| ServiceError::UnknownNode(name.to_owned()))?;
        self.takes_containers(&record, time::now())
    }

    fn takes_containers(&self, record: &NodeRecord, now: Timestamp) -> Result<(), ServiceError> {
        let state = NodeState::of(
            record.state,
            record.heartbeat_at,
            now,
            self.node.timeout_secs,
        );
        if !state.takes_containers() {
            return Err(ServiceError::NodeUnavailable {
                name: record.name.clone(),
                state,
            });
        }
        Ok(())
    }

    /// Why a job just queued for `container` will not start soon: its node
    /// is offline (a node of its own, on SQLite, never is).
    pub(super) async fn why_it_waits(
        &self,
        tx: &mut Tx<'_>,
        container: uuid::Uuid,
        now: Timestamp,
    ) -> Result<Option<String>, ServiceError> {
        if self.db.backend() == Backend::Sqlite {
            return Ok(None);
        }
        let Some(node) = crate::db::containers::get_any(tx, container)
            .await?
            .map(|container| container.node)
        else {
            return Ok(None);
        };
        let Some(record) = nodes::get(tx, &node).await? else {
            return Ok(Some(format!(
                "node {node} is not registered: the job waits until a berth of that name starts"
            )));
        };
        let state = NodeState::of(
            record.state,
            record.heartbeat_at,
            now,
            self.node.timeout_secs,
        );
        Ok((state == NodeState::Offline).then(|| {
            format!(
                "node {node} is offline (last heartbeat {}): the job waits until it is back, \
                 or until it is cancelled",
                time::format(&record.heartbeat_at)
            )
        }))
    }

    fn view(
        &self,
        record: NodeRecord,
        usage: &std::collections::HashMap<String, Usage>,
        now: Timestamp,
    ) -> NodeView {
        NodeView {
            state: NodeState::of(
                record.state,
                record.heartbeat_at,
                now,
                self.node.timeout_secs,
            ),
            usage: usage.get(&record.name).copied().unwrap_or_default(),
            record,
        }
    }
}

/// Checks a node name from a request.
pub fn parse_node_name(raw: &str) -> Result<NodeName, ValidationErrors> {
    NodeName::parse(raw).map_err(|e| ValidationErrors(vec![e]))
}

/// What each node's containers ask for: their count, and the sums of the
/// CPUs, memory and disk their parameters set.
fn usage_by_node(rows: Vec<(String, Option<String>)>) -> std::collections::HashMap<String, Usage> {
    let mut usage = std::collections::HashMap::<String, Usage>::new();
    for (node, parameters) in rows {
        let entry = usage.entry(node).or_default();
        entry.containers += 1;
        let settings = parameters
            .and_then(|json| serde_json::from_str::<Parameters>(&json).ok())
            .and_then(|parameters| parameters.settings().ok());
        if let Some(settings) = settings {
            entry.cpus += u64::from(settings.cpus.unwrap_or(0));
            entry.memory_bytes += settings.memory_bytes.unwrap_or(0);
            entry.disk_bytes += settings.disk_bytes.unwrap_or(0);
        }
    }
    usage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_sums_what_each_nodes_containers_ask_for() {
        let rows = vec![
            (
                "a".to_owned(),
                Some(r#"{"cpus":"2","memsize":"1","memsize_units":"G","size":"10","size_units":"G"}"#.to_owned()),
            ),
            ("a".to_owned(), Some(r#"{"memsize":"512","memsize_units":"M"}"#.to_owned())),
            ("a".to_owned(), None),
            ("b".to_owned(), None),
        ];
        let usage = usage_by_node(rows);
        assert_eq!(
            usage["a"],
            Usage {
                containers: 3,
                cpus: 2,
                memory_bytes: (1 << 30) + (512 << 20),
                disk_bytes: 10 << 30,
            }
        );
        assert_eq!(usage["b"].containers, 1);
    }

    #[test]
    fn a_node_beats_several_times_within_its_time_out() {
        let node = |timeout_secs| ThisNode {
            name: "n".into(),
            host_id: "h".into(),
            api_url: "http://127.0.0.1:5000".into(),
            timeout_secs,
            moves_containers: false,
        };
        assert_eq!(node(30).heartbeat_period(), Duration::from_secs(5));
        assert_eq!(node(6).heartbeat_period(), Duration::from_secs(2));
        assert_eq!(node(3).heartbeat_period(), Duration::from_secs(1));
    }
}
