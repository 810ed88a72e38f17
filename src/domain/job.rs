//! Jobs: the actions berth carries out in the background and the states a
//! job moves through.

use serde::{Deserialize, Serialize};

use super::container::ContainerStatus;
use super::parameters::Parameters;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
    Cancelled,
}

impl JobStatus {
    pub const ALL: [JobStatus; 5] = [
        JobStatus::Queued,
        JobStatus::Running,
        JobStatus::Done,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Done => "done",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == raw)
    }

    pub fn is_finished(self) -> bool {
        matches!(
            self,
            JobStatus::Done | JobStatus::Failed | JobStatus::Cancelled
        )
    }
}

/// What a job does to its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobAction {
    Create,
    /// Apply the container's stored parameters (after a PATCH).
    Configure,
    Start,
    Stop,
    Restart,
    Delete,
    /// Move the container to another node of the cluster.
    Migrate,
    /// Snapshots: take one, put the container back to one, delete one.
    Snapshot,
    SnapshotRestore,
    SnapshotDelete,
    /// Create a container as a copy of another one (or of its snapshot).
    Clone,
    /// Write a backup archive of the container.
    Backup,
}

impl JobAction {
    pub const ALL: [JobAction; 12] = [
        JobAction::Create,
        JobAction::Configure,
        JobAction::Start,
        JobAction::Stop,
        JobAction::Restart,
        JobAction::Delete,
        JobAction::Migrate,
        JobAction::Snapshot,
        JobAction::SnapshotRestore,
        JobAction::SnapshotDelete,
        JobAction::Clone,
        JobAction::Backup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::Create => "create",
            JobAction::Configure => "configure",
            JobAction::Start => "start",
            JobAction::Stop => "stop",
            JobAction::Restart => "restart",
            JobAction::Delete => "delete",
            JobAction::Migrate => "migrate",
            JobAction::Snapshot => "snapshot",
            JobAction::SnapshotRestore => "snapshot-restore",
            JobAction::SnapshotDelete => "snapshot-delete",
            JobAction::Clone => "clone",
            JobAction::Backup => "backup",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == raw)
    }

    /// Whether running the job again from the start after a crash gives the
    /// same result as running it once. Create is not: a crash leaves a
    /// half-unpacked root filesystem that must be removed, not built upon.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, JobAction::Create | JobAction::Clone)
    }

    /// Whether the job makes its container (a create or a clone).
    pub fn makes_container(self) -> bool {
        matches!(self, JobAction::Create | JobAction::Clone)
    }
}

/// Payload of a configure job: the parameters before and after the PATCH
/// that asked for it, so a refused change can be undone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigureChange {
    pub before: Option<Parameters>,
    pub after: Parameters,
}

/// Payload of a delete job: the status to go back to if it is cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteChange {
    pub previous_status: ContainerStatus,
}

/// Payload of a migrate job: where the container goes, and how far the
/// move has come. The job runs in two parts: on the node that has the
/// container (stop, send the files, hand over) and then on the target
/// (start it again), so that the job keeps its place in the container's
/// queue and a crash of either node leaves it to be resumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateChange {
    /// The target node's name.
    pub to: String,
    /// Whether the container was running when the move began; recorded
    /// before it is stopped, so a move resumed after a crash still knows
    /// to start it again.
    #[serde(default)]
    pub was_running: Option<bool>,
    /// Set when the target owns the container: what is left (starting it)
    /// runs there.
    #[serde(default)]
    pub handed_over: bool,
}

/// Payload of a snapshot or snapshot-delete job: the snapshot's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotChange {
    pub name: String,
}

/// Payload of a snapshot-restore job: the snapshot, and whether the
/// container ran when the restore began (recorded before it is stopped, so
/// a restore resumed after a crash still starts it again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreChange {
    pub name: String,
    #[serde(default)]
    pub was_running: Option<bool>,
}

/// Payload of a clone job: the container copied, and the snapshot of it
/// copied (`None`: the container as it is when the job runs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneChange {
    pub source: uuid::Uuid,
    #[serde(default)]
    pub snapshot: Option<String>,
}

/// Payload of a backup job: the backup it writes (its id names the file,
/// so a run again after a crash writes the same one) and how many of the
/// container's backups to keep once it is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupChange {
    pub backup_id: uuid::Uuid,
    #[serde(default)]
    pub keep_last: Option<u32>,
}

/// Payload of a create that restores a backup instead of unpacking a
/// template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRestoreChange {
    pub backup_id: uuid::Uuid,
}

/// What a job carries beyond its action. Stored as the JSON of the change
/// itself (no tag: rows written before this type existed hold exactly
/// that), so reading it back needs the job's action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum JobPayload {
    /// Boxed: two sets of parameters, where a delete carries one status.
    Configure(Box<ConfigureChange>),
    Delete(DeleteChange),
    Migrate(MigrateChange),
    Snapshot(SnapshotChange),
    SnapshotRestore(RestoreChange),
    SnapshotDelete(SnapshotChange),
    Clone(CloneChange),
    Backup(BackupChange),
    Restore(BackupRestoreChange),
}

impl JobPayload {
    /// The action whose jobs carry this payload.
    pub fn action(&self) -> JobAction {
        match self {
            JobPayload::Configure(_) => JobAction::Configure,
            JobPayload::Delete(_) => JobAction::Delete,
            JobPayload::Migrate(_) => JobAction::Migrate,
            JobPayload::Snapshot(_) => JobAction::Snapshot,
            JobPayload::SnapshotRestore(_) => JobAction::SnapshotRestore,
            JobPayload::SnapshotDelete(_) => JobAction::SnapshotDelete,
            JobPayload::Clone(_) => JobAction::Clone,
            JobPayload::Backup(_) => JobAction::Backup,
            JobPayload::Restore(_) => JobAction::Create,
        }
    }

    /// Reads the stored payload of a job of `action`; says why not when it
    /// cannot be read.
    pub fn parse(action: JobAction, text: &str) -> Result<Self, String> {
        let why = |e: serde_json::Error| format!("not a {} payload ({e})", action.as_str());
        match action {
            JobAction::Configure => serde_json::from_str(text)
                .map(|change| JobPayload::Configure(Box::new(change)))
                .map_err(why),
            JobAction::Delete => serde_json::from_str(text)
                .map(JobPayload::Delete)
                .map_err(why),
            JobAction::Migrate => serde_json::from_str(text)
                .map(JobPayload::Migrate)
                .map_err(why),
            JobAction::Snapshot => serde_json::from_str(text)
                .map(JobPayload::Snapshot)
                .map_err(why),
            JobAction::SnapshotRestore => serde_json::from_str(text)
                .map(JobPayload::SnapshotRestore)
                .map_err(why),
            JobAction::SnapshotDelete => serde_json::from_str(text)
                .map(JobPayload::SnapshotDelete)
                .map_err(why),
            JobAction::Clone => serde_json::from_str(text)
                .map(JobPayload::Clone)
                .map_err(why),
            JobAction::Backup => serde_json::from_str(text)
                .map(JobPayload::Backup)
                .map_err(why),
            JobAction::Create => serde_json::from_str(text)
                .map(JobPayload::Restore)
                .map_err(why),
            JobAction::Start | JobAction::Stop | JobAction::Restart => {
                Err(format!("a {} job carries no payload", action.as_str()))
            }
        }
    }

    /// The text stored in the job's row.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a job payload serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parameters::Parameter;

    #[test]
    fn names_round_trip() {
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::parse(status.as_str()), Some(status));
        }
        for action in JobAction::ALL {
            assert_eq!(JobAction::parse(action.as_str()), Some(action));
        }
    }

    #[test]
    fn only_create_is_not_resumable() {
        let resumable: Vec<_> = JobAction::ALL
            .into_iter()
            .filter(|a| !a.is_idempotent())
            .collect();
        assert_eq!(resumable, vec![JobAction::Create, JobAction::Clone]);
    }

    /// Payloads as berth stored them before `JobPayload` existed (written
    /// by `service::ConfigureChange` and `service::DeleteChange`).
    #[test]
    fn reads_payloads_stored_by_earlier_versions() {
        let configure = r#"{"before":null,"after":{"hostname":"web1","cpus":"2"}}"#;
        let JobPayload::Configure(change) =
            JobPayload::parse(JobAction::Configure, configure).expect("an old configure payload")
        else {
            panic!("not a configure payload");
        };
        assert_eq!(change.before, None);
        assert_eq!(change.after.get(Parameter::Hostname), Some("web1"));
        assert_eq!(change.after.get(Parameter::Cpus), Some("2"));
        assert_eq!(JobPayload::Configure(change).to_json(), configure);

        let delete = r#"{"previous_status":"running"}"#;
        let payload = JobPayload::parse(JobAction::Delete, delete).expect("an old delete payload");
        assert_eq!(
            payload,
            JobPayload::Delete(DeleteChange {
                previous_status: ContainerStatus::Running
            })
        );
        assert_eq!(payload.to_json(), delete);
    }

    #[test]
    fn refuses_payloads_it_cannot_read() {
        for (action, text) in [
            (JobAction::Configure, "garbage"),
            (JobAction::Configure, r#"{"previous_status":"running"}"#),
            (JobAction::Delete, r#"{"previous_status":"sleeping"}"#),
            (JobAction::Delete, "{}"),
            (JobAction::Start, r#"{"previous_status":"running"}"#),
            (JobAction::Migrate, "{}"),
            (JobAction::Migrate, r#"{"to":"b","handed_over":"yes"}"#),
        ] {
            let why = JobPayload::parse(action, text).expect_err(text);
            assert!(why.contains(action.as_str()), "{why}");
        }
    }

    #[test]
    fn a_migrate_payload_keeps_how_far_the_move_came() {
        let fresh = JobPayload::parse(JobAction::Migrate, r#"{"to":"b"}"#).unwrap();
        assert_eq!(
            fresh,
            JobPayload::Migrate(MigrateChange {
                to: "b".into(),
                was_running: None,
                handed_over: false,
            })
        );
        let later = JobPayload::Migrate(MigrateChange {
            to: "b".into(),
            was_running: Some(true),
            handed_over: true,
        });
        assert_eq!(
            JobPayload::parse(JobAction::Migrate, &later.to_json()).unwrap(),
            later
        );
    }
}
