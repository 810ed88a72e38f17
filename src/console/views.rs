//! What the templates show of containers, jobs and nodes: the stored rows
//! turned into display text once, here, so templates stay free of logic.

use std::collections::HashMap;

use uuid::Uuid;

use crate::db::containers::Container;
use crate::db::jobs::{Job, LogLine};
use crate::domain::container::ContainerStatus;
use crate::domain::job::JobStatus;
use crate::domain::lifecycle::{self, Action};
use crate::domain::node::{AdminState, NodeState};
use crate::domain::parameters::{Parameter, Parameters};
use crate::domain::time::{self, Timestamp};
use crate::service::NodeView;

/// A time as an operator reads it (UTC, to the second) and as a machine
/// reads it (`datetime`). `app.js` formats live updates the same way.
pub struct TimeView {
    pub iso: String,
    pub text: String,
}

impl TimeView {
    pub fn of(time: &Timestamp) -> Self {
        TimeView {
            iso: time::format(time),
            text: time.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        }
    }

    pub fn maybe(time: &Option<Timestamp>) -> Option<Self> {
        time.as_ref().map(TimeView::of)
    }
}

pub struct ContainerView {
    pub id: Uuid,
    pub name: String,
    pub ostemplate: String,
    pub status: ContainerStatus,
    pub created: TimeView,
    pub hostname: String,
    pub address: String,
    pub cpus: String,
    pub memory: String,
    pub disk: String,
    pub nameserver: String,
    pub node: String,
}

/// `dash` for a parameter that is not set.
const DASH: &str = "—";

fn amount(value: Option<&str>, units: Option<&str>) -> String {
    match (value, units) {
        (Some(value), Some(units)) => format!("{value} {units}iB"),
        (Some(value), None) => value.to_owned(),
        (None, _) => DASH.to_owned(),
    }
}

fn or_dash(value: Option<&str>) -> String {
    value.unwrap_or(DASH).to_owned()
}

impl ContainerView {
    pub fn of(container: &Container) -> Self {
        use Parameter::*;
        let none = Parameters::default();
        let p = container.parameters.as_ref().unwrap_or(&none);
        ContainerView {
            id: container.id,
            name: container.name.clone(),
            ostemplate: container.ostemplate.clone(),
            status: container.status,
            created: TimeView::of(&container.created_at),
            hostname: or_dash(p.get(Hostname)),
            address: or_dash(p.get(Ipadd)),
            cpus: or_dash(p.get(Cpus)),
            memory: amount(p.get(Memsize), p.get(MemsizeUnits)),
            disk: amount(p.get(Size), p.get(SizeUnits)),
            nameserver: or_dash(p.get(Nameserver)),
            node: container.node.clone(),
        }
    }

    pub fn status_text(&self) -> &'static str {
        self.status.as_str()
    }

    /// Whether the console offers `action` now (its button is enabled).
    pub fn can(&self, action: Action) -> bool {
        lifecycle::offers(self.status, action)
    }
}

/// A job as the console's pages show it: names, short id and times ready
/// for HTML (the API's JSON shape is `api::jobs::JobJson`).
pub struct JobView {
    pub id: Uuid,
    pub short_id: String,
    pub action: &'static str,
    pub status: JobStatus,
    pub progress: Option<u8>,
    pub error: Option<String>,
    pub container_id: Uuid,
    /// `None` when the container is gone from the database entirely.
    pub container_name: Option<String>,
    pub created: TimeView,
    pub started: Option<TimeView>,
    pub finished: Option<TimeView>,
    /// How long the job took, once it has finished.
    pub duration: String,
}

impl JobView {
    pub fn of(job: &Job, container_name: Option<String>) -> Self {
        JobView {
            id: job.id,
            short_id: job.id.simple().to_string()[..8].to_owned(),
            action: job.action.as_str(),
            status: job.status,
            progress: job.progress,
            error: job.error.clone(),
            container_id: job.entity_id,
            container_name,
            created: TimeView::of(&job.created_at),
            started: TimeView::maybe(&job.started_at),
            finished: TimeView::maybe(&job.finished_at),
            duration: match (job.started_at, job.finished_at) {
                (Some(start), Some(end)) => human_duration((end - start).num_seconds()),
                _ => DASH.to_owned(),
            },
        }
    }

    /// Jobs named by the containers they act on, looked up once per name.
    pub fn list(jobs: &[Job], names: &HashMap<Uuid, String>) -> Vec<JobView> {
        jobs.iter()
            .map(|job| JobView::of(job, names.get(&job.entity_id).cloned()))
            .collect()
    }

    pub fn status_text(&self) -> &'static str {
        self.status.as_str()
    }

    /// The value for `<progress>`: `None` shows an indeterminate bar (a job
    /// running a step that cannot be measured).
    pub fn progress_value(&self) -> Option<u8> {
        match self.status {
            JobStatus::Done => Some(100),
            JobStatus::Queued => Some(0),
            JobStatus::Running => self.progress,
            JobStatus::Failed | JobStatus::Cancelled => Some(self.progress.unwrap_or(0)),
        }
    }

    pub fn progress_text(&self) -> String {
        match self.progress_value() {
            Some(percent) => format!("{percent}%"),
            None => "working".to_owned(),
        }
    }

    pub fn container_label(&self) -> String {
        self.container_name.clone().unwrap_or_else(|| {
            format!("container {}", &self.container_id.simple().to_string()[..8])
        })
    }
}

pub fn human_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0 => "under a second".to_owned(),
        1..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min {} s", seconds / 60, seconds % 60),
        _ => format!("{} h {} min", seconds / 3600, (seconds % 3600) / 60),
    }
}

/// A node as the nodes page and the node choices show it.
/// A node as a choice in a list filter or the create form: its name and
/// state (read without the usage the nodes page shows).
#[derive(Debug, Clone)]
pub struct NodeChoiceView {
    pub name: String,
    pub state: NodeState,
}

impl NodeChoiceView {
    pub fn of(name: &str, state: NodeState) -> Self {
        NodeChoiceView {
            name: name.to_owned(),
            state,
        }
    }

    pub fn state_text(&self) -> &'static str {
        self.state.as_str()
    }

    /// The node as a choice on the create form: its name, and why it takes
    /// no container when it does not.
    pub fn choice_label(&self) -> String {
        if self.state.takes_containers() {
            self.name.clone()
        } else {
            format!(
                "{} ({}: takes no new containers)",
                self.name,
                self.state_text()
            )
        }
    }
}

pub struct NodeRowView {
    pub name: String,
    pub state: NodeState,
    pub api_url: String,
    pub version: String,
    pub cpus: u64,
    pub memory: String,
    pub disk: String,
    pub requested_cpus: u64,
    pub requested_memory: String,
    pub requested_disk: String,
    pub containers: u64,
    pub heartbeat: TimeView,
    /// What the operator set, which an offline node's shown state hides.
    pub admin: AdminState,
}

impl NodeRowView {
    pub fn of(node: &NodeView) -> Self {
        let record = &node.record;
        NodeRowView {
            name: record.name.clone(),
            state: node.state,
            api_url: record.api_url.clone(),
            version: record.version.clone(),
            cpus: record.cpus,
            memory: human_bytes(record.memory_bytes),
            disk: human_bytes(record.disk_bytes),
            requested_cpus: node.usage.cpus,
            requested_memory: human_bytes(node.usage.memory_bytes),
            requested_disk: human_bytes(node.usage.disk_bytes),
            containers: node.usage.containers,
            heartbeat: TimeView::of(&record.heartbeat_at),
            admin: record.state,
        }
    }

    pub fn state_text(&self) -> &'static str {
        self.state.as_str()
    }

    /// Whether the operator drained it (also while it is offline), so the
    /// page offers to put it online rather than to drain it again.
    pub fn drained(&self) -> bool {
        self.admin == AdminState::Draining
    }
}

/// Bytes in binary units, to one decimal where it matters (`1.5 GiB`).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let tenths = (value * 10.0).round() / 10.0;
    if tenths.fract() == 0.0 || value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{tenths:.1} {}", UNITS[unit])
    }
}

pub struct LogLineView {
    pub time: TimeView,
    pub text: String,
}

impl LogLineView {
    pub fn of(line: &LogLine) -> Self {
        LogLineView {
            time: TimeView::of(&line.time),
            text: line.text.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(0), "under a second");
        assert_eq!(human_duration(42), "42 s");
        assert_eq!(human_duration(125), "2 min 5 s");
        assert_eq!(human_duration(7260), "2 h 1 min");
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(16 << 20), "16 MiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
        assert_eq!(human_bytes(500 << 30), "500 GiB");
        assert_eq!(human_bytes(34_359_738_368), "32 GiB");
    }
}
