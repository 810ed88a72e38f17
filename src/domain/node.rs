//! Nodes: the hosts that share one berth database. Their names, the state
//! an operator sets and the state the API shows, and the placement rule
//! that picks the node a new container lives on. Pure: the rows come from
//! `db::nodes`, the clock from the caller.

use super::container::ContainerName;
use super::time::Timestamp;
use super::FieldError;

/// A node's name: the rules of a container name (letters, digits, `_`, `.`
/// and `-`, starting with a letter or digit, at most 63 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NodeName(String);

impl NodeName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        ContainerName::parse(raw)
            .map(|name| NodeName(name.as_str().to_owned()))
            .map_err(|error| FieldError::new("node", error.message))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for NodeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the operator set: whether new containers may be placed on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    Online,
    /// Keeps its containers and runs their jobs; takes no new ones.
    Draining,
}

impl AdminState {
    pub fn as_str(self) -> &'static str {
        match self {
            AdminState::Online => "online",
            AdminState::Draining => "draining",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [AdminState::Online, AdminState::Draining]
            .into_iter()
            .find(|state| state.as_str() == raw)
    }
}

/// What the API shows: the operator's state, unless the node has gone
/// silent, which overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Online,
    Offline,
    Draining,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Online => "online",
            NodeState::Offline => "offline",
            NodeState::Draining => "draining",
        }
    }

    /// A node whose last heartbeat is older than `timeout_secs` is offline,
    /// whatever its operator set.
    pub fn of(
        admin: AdminState,
        heartbeat_at: Timestamp,
        now: Timestamp,
        timeout_secs: u64,
    ) -> Self {
        let silent_for = now.signed_duration_since(heartbeat_at).num_seconds();
        if silent_for > i64::try_from(timeout_secs).unwrap_or(i64::MAX) {
            return NodeState::Offline;
        }
        match admin {
            AdminState::Online => NodeState::Online,
            AdminState::Draining => NodeState::Draining,
        }
    }

    /// Whether new containers may be placed on (or moved to) the node.
    pub fn takes_containers(self) -> bool {
        self == NodeState::Online
    }
}

/// A node as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    pub state: NodeState,
    pub memory_bytes: u64,
    /// The memory its containers are promised (their `memsize`).
    pub promised_memory_bytes: u64,
    pub containers: u64,
    /// Whether the node has the container's OS template (templates live in
    /// each node's own template directory).
    pub has_template: bool,
}

impl Candidate {
    fn free_memory(&self) -> u64 {
        self.memory_bytes.saturating_sub(self.promised_memory_bytes)
    }
}

/// Why no node was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unplaced {
    /// No node has the template.
    NoTemplate,
    /// Some node has it, but none of those is online.
    NoneAvailable,
}

/// The node a new container goes to when the request names none: among
/// the nodes that have its template, the online ones (not offline, not
/// draining); of those, the one with the most memory left after what its
/// containers are promised, then the one with the fewest containers, then
/// the first by name (so the choice is the same on every node that makes
/// it).
pub fn place(candidates: &[Candidate]) -> Result<&Candidate, Unplaced> {
    let mut with_template = candidates
        .iter()
        .filter(|node| node.has_template)
        .peekable();
    if with_template.peek().is_none() {
        return Err(Unplaced::NoTemplate);
    }
    with_template
        .filter(|node| node.state.takes_containers())
        .max_by(|a, b| {
            a.free_memory()
                .cmp(&b.free_memory())
                .then(b.containers.cmp(&a.containers))
                .then(b.name.cmp(&a.name))
        })
        .ok_or(Unplaced::NoneAvailable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::time;

    fn node(name: &str, state: NodeState, memory: u64, promised: u64, count: u64) -> Candidate {
        Candidate {
            name: name.into(),
            state,
            memory_bytes: memory,
            promised_memory_bytes: promised,
            containers: count,
            has_template: true,
        }
    }

    #[test]
    fn node_names_follow_the_container_name_rules() {
        assert!(NodeName::parse("host-1.lan").is_ok());
        for bad in ["", "-a", "a b", "a/b", &"x".repeat(64)] {
            let error = NodeName::parse(bad).unwrap_err();
            assert_eq!(error.field, "node", "{bad:?}");
        }
    }

    #[test]
    fn a_silent_node_is_offline_whatever_its_operator_set() {
        let now = time::now();
        let recent = now - chrono::Duration::seconds(5);
        let old = now - chrono::Duration::seconds(31);
        assert_eq!(
            NodeState::of(AdminState::Online, recent, now, 30),
            NodeState::Online
        );
        assert_eq!(
            NodeState::of(AdminState::Draining, recent, now, 30),
            NodeState::Draining
        );
        for admin in [AdminState::Online, AdminState::Draining] {
            assert_eq!(NodeState::of(admin, old, now, 30), NodeState::Offline);
        }
    }

    #[test]
    fn placement_prefers_free_memory_then_fewer_containers_then_the_name() {
        use NodeState::*;
        let gib = 1 << 30;
        let nodes = [
            node("a", Online, 8 * gib, 6 * gib, 1),
            node("b", Online, 4 * gib, 0, 9),
            node("c", Online, 16 * gib, 15 * gib, 0),
        ];
        assert_eq!(place(&nodes).unwrap().name, "b");
        let tied = [
            node("b", Online, 4 * gib, 0, 3),
            node("a", Online, 4 * gib, 0, 2),
        ];
        assert_eq!(place(&tied).unwrap().name, "a");
        let same = [
            node("b", Online, 4 * gib, 0, 2),
            node("a", Online, 4 * gib, 0, 2),
        ];
        assert_eq!(place(&same).unwrap().name, "a");
    }

    #[test]
    fn placement_skips_offline_and_draining_nodes() {
        use NodeState::*;
        let nodes = [
            node("big", Offline, 64 << 30, 0, 0),
            node("drained", Draining, 64 << 30, 0, 0),
            node("small", Online, 1 << 30, 0, 5),
        ];
        assert_eq!(place(&nodes).unwrap().name, "small");
        assert_eq!(place(&nodes[..2]), Err(Unplaced::NoneAvailable));
    }

    #[test]
    fn placement_takes_only_nodes_that_have_the_template() {
        use NodeState::*;
        let without = |mut candidate: Candidate| {
            candidate.has_template = false;
            candidate
        };
        let nodes = [
            without(node("roomy", Online, 64 << 30, 0, 0)),
            node("small", Online, 1 << 30, 0, 5),
        ];
        assert_eq!(place(&nodes).unwrap().name, "small");
        // Nobody has it: that, not the nodes' states, is the reason.
        let nobody = [
            without(node("roomy", Online, 64 << 30, 0, 0)),
            without(node("gone", Offline, 64 << 30, 0, 0)),
        ];
        assert_eq!(place(&nobody), Err(Unplaced::NoTemplate));
        assert_eq!(place(&[]), Err(Unplaced::NoTemplate));
        // Those that have it are away: no node is available.
        let away = [
            without(node("roomy", Online, 64 << 30, 0, 0)),
            node("drained", Draining, 64 << 30, 0, 0),
            node("gone", Offline, 64 << 30, 0, 0),
        ];
        assert_eq!(place(&away), Err(Unplaced::NoneAvailable));
    }
}
