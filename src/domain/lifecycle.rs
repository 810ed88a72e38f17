//! The one lifecycle model: which actions a container in each status
//! admits (and which of those the console offers), and which status each
//! way a job can end leaves behind. The service, the runner, cancel and the
//! console ask this module instead of keeping rules of their own.

use std::fmt;

use super::container::ContainerStatus;
use super::job::JobAction;

/// What a client can ask of an existing container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Apply changed parameters (a PATCH).
    Configure,
    Start,
    Stop,
    Restart,
    Delete,
    /// Move it to another node.
    Migrate,
    /// Take a snapshot, or delete one.
    Snapshot,
    /// Put it back to a snapshot.
    Restore,
    /// Write a backup of it.
    Backup,
}

impl Action {
    /// The job that carries the action out.
    pub fn job(self) -> JobAction {
        match self {
            Action::Configure => JobAction::Configure,
            Action::Start => JobAction::Start,
            Action::Stop => JobAction::Stop,
            Action::Restart => JobAction::Restart,
            Action::Delete => JobAction::Delete,
            Action::Migrate => JobAction::Migrate,
            Action::Snapshot => JobAction::Snapshot,
            Action::Restore => JobAction::SnapshotRestore,
            Action::Backup => JobAction::Backup,
        }
    }
}

/// Why a container refuses an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A delete job is queued or running: nothing may be queued behind it.
    BeingDeleted,
    /// Gone from the host.
    Deleted,
    /// Its create failed: nothing was built to act on except by deleting.
    CreateFailed,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::BeingDeleted => "is being deleted; it takes no further changes",
            Refusal::Deleted => "has been deleted",
            Refusal::CreateFailed => {
                "failed to be created; the only thing to do with it is delete it"
            }
        })
    }
}

/// Whether a container in `status` admits `action`: the service queues
/// exactly what this admits. Actions that change nothing (stop on a stopped
/// container) are admitted: the API is idempotent and the job succeeds.
pub fn admits(status: ContainerStatus, action: Action) -> Result<(), Refusal> {
    match (status, action) {
        (ContainerStatus::Deleting, _) => Err(Refusal::BeingDeleted),
        (ContainerStatus::Deleted, _) => Err(Refusal::Deleted),
        (ContainerStatus::Failed, Action::Delete) => Ok(()),
        (ContainerStatus::Failed, _) => Err(Refusal::CreateFailed),
        (ContainerStatus::Creating | ContainerStatus::Stopped | ContainerStatus::Running, _) => {
            Ok(())
        }
    }
}

/// Whether the console offers `action` (enables its button) for a container
/// in `status`: admitted, and it would change something. A container being
/// created ends stopped, so start is offered and stop is not; restart is
/// offered only once the container exists on the host (start covers one
/// still being created).
pub fn offers(status: ContainerStatus, action: Action) -> bool {
    if admits(status, action).is_err() {
        return false;
    }
    match action {
        Action::Start => status != ContainerStatus::Running,
        Action::Stop => status == ContainerStatus::Running,
        Action::Restart | Action::Migrate | Action::Snapshot | Action::Restore | Action::Backup => {
            status != ContainerStatus::Creating
        }
        Action::Configure | Action::Delete => true,
    }
}

/// The statuses in which the console offers `action`, space-separated: the
/// value of the buttons' `data-enabled-when`, which `app.js` matches
/// against a container's new status.
pub fn offered_in(action: Action) -> String {
    ContainerStatus::ALL
        .into_iter()
        .filter(|status| offers(*status, action))
        .map(ContainerStatus::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the host showed of a container after its job failed half-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostState {
    Running,
    Stopped,
    /// Not on the host, or the host could not say.
    Missing,
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Done,
    /// Stopped on request in a step that could stop safely.
    Cancelled,
    /// Failed; `host` is what the host showed afterwards, when it was asked
    /// (see [`observes_host_after_failure`]).
    Failed {
        host: Option<HostState>,
    },
}

/// Whether the runner asks the host what is left after `action` failed. A
/// failed create leaves nothing usable whatever the host shows.
pub fn observes_host_after_failure(action: JobAction) -> bool {
    !action.makes_container()
}

/// Whether a running job of `action` may be cancelled at all. Only a
/// create has steps that stop safely (unpacking the template), and then
/// nothing of the container is left.
pub fn cancellable_while_running(action: JobAction) -> bool {
    action == JobAction::Create
}

/// The container's status once a job of `action` has ended, given the
/// status it has now (`before`).
pub fn after_job(action: JobAction, before: ContainerStatus, ending: Ending) -> ContainerStatus {
    let status = match ending {
        Ending::Done => match action {
            JobAction::Create | JobAction::Clone | JobAction::Stop => ContainerStatus::Stopped,
            JobAction::Start | JobAction::Restart => ContainerStatus::Running,
            JobAction::Delete => ContainerStatus::Deleted,
            // A move's end depends on whether it started the container
            // again: see `after_migration`.
            // A restore starts the container again if it ran.
            JobAction::Configure
            | JobAction::Migrate
            | JobAction::Snapshot
            | JobAction::SnapshotRestore
            | JobAction::SnapshotDelete
            | JobAction::Backup => before,
        },
        // A cancelled create leaves nothing behind. Other jobs cannot be
        // cancelled while running; should one be, its container is treated
        // as one whose job failed and that the host could not describe.
        Ending::Cancelled if cancellable_while_running(action) => ContainerStatus::Deleted,
        Ending::Cancelled => ContainerStatus::Failed,
        Ending::Failed { host } => match host {
            Some(HostState::Running) => ContainerStatus::Running,
            Some(HostState::Stopped) => ContainerStatus::Stopped,
            Some(HostState::Missing) | None => ContainerStatus::Failed,
        },
    };
    // A delete queued behind this job keeps the container marked.
    if before == ContainerStatus::Deleting
        && action != JobAction::Delete
        && status != ContainerStatus::Deleted
    {
        ContainerStatus::Deleting
    } else {
        status
    }
}

/// The container's status once a move has handed it to the target node
/// (stopped there) or ended there, started again or not.
pub fn after_migration(before: ContainerStatus, running: bool) -> ContainerStatus {
    match (before, running) {
        // A delete queued behind the move keeps the container marked.
        (ContainerStatus::Deleting, _) => ContainerStatus::Deleting,
        (_, true) => ContainerStatus::Running,
        (_, false) => ContainerStatus::Stopped,
    }
}

/// Whether the container's other queued jobs are cancelled with this one:
/// when the job's ending leaves no container for them to act on.
pub fn cancels_the_rest(action: JobAction, before: ContainerStatus, ending: Ending) -> bool {
    ending == Ending::Cancelled && after_job(action, before, ending) == ContainerStatus::Deleted
}

/// What cancelling a queued (never run) job of `action` does to its
/// container, now in `current`. `before_delete` is the status a delete
/// job recorded when it was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedCancel {
    /// The container's new status; `None` leaves it as it is.
    pub status: Option<ContainerStatus>,
    /// Whether the container's other queued jobs are cancelled too.
    pub cancels_the_rest: bool,
}

pub fn cancel_queued(action: JobAction, before_delete: Option<ContainerStatus>) -> QueuedCancel {
    match action {
        // Nothing was built: the container never existed.
        JobAction::Create | JobAction::Clone => QueuedCancel {
            status: Some(ContainerStatus::Deleted),
            cancels_the_rest: true,
        },
        // Back to where it was before the delete was asked for.
        JobAction::Delete => QueuedCancel {
            status: before_delete,
            cancels_the_rest: false,
        },
        // A move not yet begun changes nothing; one handed over leaves the
        // container stopped on its new node, as the hand-over recorded.
        JobAction::Configure
        | JobAction::Start
        | JobAction::Stop
        | JobAction::Restart
        | JobAction::Migrate
        | JobAction::Snapshot
        | JobAction::SnapshotRestore
        | JobAction::SnapshotDelete
        | JobAction::Backup => QueuedCancel {
            status: None,
            cancels_the_rest: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ContainerStatus as S;

    /// Every action, in the order of the tables' columns.
    const ACTIONS: [Action; 9] = [
        Action::Configure,
        Action::Start,
        Action::Stop,
        Action::Restart,
        Action::Delete,
        Action::Migrate,
        Action::Snapshot,
        Action::Restore,
        Action::Backup,
    ];

    #[test]
    fn every_status_admits_exactly_these_actions() {
        let ok = Ok(());
        let deleting = Err(Refusal::BeingDeleted);
        let deleted = Err(Refusal::Deleted);
        let failed = Err(Refusal::CreateFailed);
        #[rustfmt::skip]
        let table = [
            //            Configure, Start,    Stop,     Restart,  Delete,   Migrate,  Snapshot, Restore, Backup
            (S::Creating, [ok,       ok,       ok,       ok,       ok,       ok,       ok,       ok, ok]),
            (S::Stopped,  [ok,       ok,       ok,       ok,       ok,       ok,       ok,       ok, ok]),
            (S::Running,  [ok,       ok,       ok,       ok,       ok,       ok,       ok,       ok, ok]),
            (S::Failed,   [failed,   failed,   failed,   failed,   ok,       failed,   failed,   failed, failed]),
            (S::Deleting, [deleting, deleting, deleting, deleting, deleting, deleting, deleting, deleting, deleting]),
            (S::Deleted,  [deleted,  deleted,  deleted,  deleted,  deleted,  deleted,  deleted,  deleted, deleted]),
        ];
        assert_eq!(table.len(), S::ALL.len());
        for (status, row) in table {
            for (action, expected) in ACTIONS.into_iter().zip(row) {
                assert_eq!(admits(status, action), expected, "{status:?} {action:?}");
            }
        }
    }

    #[test]
    fn the_console_offers_what_is_admitted_and_changes_something() {
        use Action::*;
        #[rustfmt::skip]
        let table = [
            //            Configure, Start, Stop,  Restart, Delete, Migrate, Snapshot, Restore, Backup
            (S::Creating, [true,     true,  false, false,   true,   false,   false,    false, false]),
            (S::Stopped,  [true,     true,  false, true,    true,   true,    true,     true, true]),
            (S::Running,  [true,     false, true,  true,    true,   true,    true,     true, true]),
            (S::Failed,   [false,    false, false, false,   true,   false,   false,    false, false]),
            (S::Deleting, [false,    false, false, false,   false,  false,   false,    false, false]),
            (S::Deleted,  [false,    false, false, false,   false,  false,   false,    false, false]),
        ];
        assert_eq!(table.len(), S::ALL.len());
        for (status, row) in table {
            for (action, expected) in ACTIONS.into_iter().zip(row) {
                assert_eq!(offers(status, action), expected, "{status:?} {action:?}");
                if expected {
                    assert!(admits(status, action).is_ok(), "offered but refused");
                }
            }
        }
        // What the console's buttons carried before the model owned them.
        assert_eq!(offered_in(Start), "creating stopped");
        assert_eq!(offered_in(Stop), "running");
        assert_eq!(offered_in(Restart), "stopped running");
        assert_eq!(offered_in(Delete), "creating stopped running failed");
        assert_eq!(offered_in(Configure), "creating stopped running");
        assert_eq!(offered_in(Migrate), "stopped running");
    }

    /// The status a job's ending leaves, before the "a delete is queued
    /// behind it" rule: a fixed status, or the one it found.
    #[derive(Clone, Copy)]
    enum Left {
        Is(ContainerStatus),
        Unchanged,
    }

    const ENDINGS: [Ending; 6] = [
        Ending::Done,
        Ending::Cancelled,
        Ending::Failed {
            host: Some(HostState::Running),
        },
        Ending::Failed {
            host: Some(HostState::Stopped),
        },
        Ending::Failed {
            host: Some(HostState::Missing),
        },
        Ending::Failed { host: None },
    ];

    #[test]
    fn every_status_action_and_ending_leaves_this_status() {
        use Left::*;
        #[rustfmt::skip]
        let table = [
            //                  Done,                Cancelled,        Failed: running,   stopped,           missing,          not asked
            (JobAction::Create,    [Is(S::Stopped),  Is(S::Deleted), Is(S::Running), Is(S::Stopped), Is(S::Failed), Is(S::Failed)]),
            (JobAction::Configure, [Unchanged,       Is(S::Failed),  Is(S::Running), Is(S::Stopped), Is(S::Failed), Is(S::Failed)]),
            (JobAction::Start,     [Is(S::Running),  Is(S::Failed),  Is(S::Running), Is(S::Stopped), Is(S::Failed), Is(S::Failed)]),
            (JobAction::Stop,      [Is(S::Stopped),  Is(S::Failed),  Is(S::Running), Is(S::Stopped), Is(S::Failed), Is(S::Failed)]),
            (JobAction::Restart,   [Is(S::Running),  Is(S::Failed),  Is(S::Running), Is(S::Stopped), Is(S::Failed), Is(S::Failed)]),
            (JobAction::Delete,    [Is(S::Deleted),  Is(S::Failed),  Is(S::Running), Is(S::Stopped), Is(S::Failed), Is(S::Failed)]),
            (JobAction::Migrate,   [Unchanged,       Is(S::Failed),  Is(S::Running), Is(S::Stopped), Is(S::Failed), Is(S::Failed)]),
            (JobAction::Snapshot,  [Unchanged,       Is(S::Failed),  Is(S::Running), Is(S::Stopped), Is(S::Failed), Is(S::Failed)]),
            (JobAction::SnapshotRestore, [Unchanged, Is(S::Failed),  Is(S::Running), Is(S::Stopped), Is(S::Failed), Is(S::Failed)]),
            (JobAction::SnapshotDelete, [Unchanged,  Is(S::Failed),  Is(S::Running), Is(S::Stopped), Is(S::Failed), Is(S::Failed)]),
            (JobAction::Clone,     [Is(S::Stopped),  Is(S::Failed), Is(S::Running), Is(S::Stopped), Is(S::Failed), Is(S::Failed)]),
            (JobAction::Backup,    [Unchanged,       Is(S::Failed),  Is(S::Running), Is(S::Stopped), Is(S::Failed), Is(S::Failed)]),
        ];
        assert_eq!(table.len(), JobAction::ALL.len());
        for (action, row) in table {
            for (ending, left) in ENDINGS.into_iter().zip(row) {
                for before in S::ALL {
                    let status = match left {
                        Is(status) => status,
                        Unchanged => before,
                    };
                    let expected = if before == S::Deleting
                        && action != JobAction::Delete
                        && status != S::Deleted
                    {
                        S::Deleting
                    } else {
                        status
                    };
                    assert_eq!(
                        after_job(action, before, ending),
                        expected,
                        "{action:?} from {before:?} ending {ending:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn only_a_cancelled_create_takes_the_rest_of_the_queue_with_it() {
        for action in JobAction::ALL {
            for before in S::ALL {
                for ending in ENDINGS {
                    assert_eq!(
                        cancels_the_rest(action, before, ending),
                        action == JobAction::Create && ending == Ending::Cancelled,
                        "{action:?} from {before:?} ending {ending:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn only_a_create_can_be_cancelled_while_running_and_a_failed_create_is_not_observed() {
        for action in JobAction::ALL {
            assert_eq!(
                cancellable_while_running(action),
                action == JobAction::Create
            );
            assert_eq!(
                observes_host_after_failure(action),
                !matches!(action, JobAction::Create | JobAction::Clone)
            );
        }
    }

    #[test]
    fn cancelling_a_queued_job_leaves_this_behind() {
        let none = QueuedCancel {
            status: None,
            cancels_the_rest: false,
        };
        let table = [
            (
                JobAction::Create,
                QueuedCancel {
                    status: Some(S::Deleted),
                    cancels_the_rest: true,
                },
            ),
            (JobAction::Configure, none),
            (JobAction::Start, none),
            (JobAction::Stop, none),
            (JobAction::Restart, none),
            (JobAction::Migrate, none),
            (JobAction::Snapshot, none),
            (JobAction::SnapshotRestore, none),
            (JobAction::SnapshotDelete, none),
            (
                JobAction::Clone,
                QueuedCancel {
                    status: Some(S::Deleted),
                    cancels_the_rest: true,
                },
            ),
            (JobAction::Backup, none),
            (
                JobAction::Delete,
                QueuedCancel {
                    status: Some(S::Running),
                    cancels_the_rest: false,
                },
            ),
        ];
        assert_eq!(table.len(), JobAction::ALL.len());
        for (action, expected) in table {
            assert_eq!(
                cancel_queued(action, Some(S::Running)),
                expected,
                "{action:?}"
            );
        }
    }

    #[test]
    fn every_action_is_its_job() {
        let jobs: Vec<_> = ACTIONS.into_iter().map(Action::job).collect();
        assert_eq!(
            jobs,
            vec![
                JobAction::Configure,
                JobAction::Start,
                JobAction::Stop,
                JobAction::Restart,
                JobAction::Delete,
                JobAction::Migrate,
                JobAction::Snapshot,
                JobAction::SnapshotRestore,
                JobAction::Backup,
            ]
        );
    }

    #[test]
    fn a_move_leaves_the_container_as_it_ends_unless_a_delete_waits() {
        for before in S::ALL {
            for running in [true, false] {
                let expected = match (before, running) {
                    (S::Deleting, _) => S::Deleting,
                    (_, true) => S::Running,
                    (_, false) => S::Stopped,
                };
                assert_eq!(after_migration(before, running), expected, "{before:?}");
            }
        }
    }
}
