//! Jobs: the actions berth carries out in the background and the states a
//! job moves through.

use serde::Serialize;

use super::container::ContainerStatus;

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
}

impl JobAction {
    pub const ALL: [JobAction; 6] = [
        JobAction::Create,
        JobAction::Configure,
        JobAction::Start,
        JobAction::Stop,
        JobAction::Restart,
        JobAction::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::Create => "create",
            JobAction::Configure => "configure",
            JobAction::Start => "start",
            JobAction::Stop => "stop",
            JobAction::Restart => "restart",
            JobAction::Delete => "delete",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.as_str() == raw)
    }

    /// Whether running the job again from the start after a crash gives the
    /// same result as running it once. Create is not: a crash leaves a
    /// half-unpacked root filesystem that must be removed, not built upon.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, JobAction::Create)
    }

    /// The container's status once this job has succeeded.
    pub fn status_after_success(self, before: ContainerStatus) -> ContainerStatus {
        match self {
            JobAction::Create | JobAction::Stop => ContainerStatus::Stopped,
            JobAction::Start | JobAction::Restart => ContainerStatus::Running,
            JobAction::Delete => ContainerStatus::Deleted,
            JobAction::Configure => before,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(resumable, vec![JobAction::Create]);
    }

    #[test]
    fn configure_keeps_the_status_it_found() {
        assert_eq!(
            JobAction::Configure.status_after_success(ContainerStatus::Running),
            ContainerStatus::Running
        );
        assert_eq!(
            JobAction::Restart.status_after_success(ContainerStatus::Stopped),
            ContainerStatus::Running
        );
    }
}
