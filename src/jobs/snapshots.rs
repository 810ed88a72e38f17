//! Snapshot jobs: take, restore (stop, put back, start again if it ran),
//! delete; and what their endings leave in the `snapshots` table.

use super::execute::{Failure, Performed};
use super::step_log::JobStepLog;
use super::Runner;
use crate::db::jobs::{self as job_rows, Job};
use crate::db::snapshots;
use crate::db::{DbError, Tx};
use crate::domain::job::{JobAction, JobPayload, RestoreChange};
use crate::driver::{ContainerSpec, DriverError, RunState, StepLog};

fn driver_failure(action: JobAction) -> impl Fn(DriverError) -> Failure {
    move |error| Failure::Driver { action, error }
}

impl Runner {
    pub(super) async fn run_snapshot_job(
        &self,
        job: &Job,
        spec: &ContainerSpec,
        payload: Option<&JobPayload>,
        log: &JobStepLog,
    ) -> Result<Performed, Failure> {
        let failed = driver_failure(job.action);
        match payload {
            Some(JobPayload::Snapshot(change)) => {
                self.driver
                    .snapshot(spec, &change.name, log)
                    .await
                    .map_err(failed)?;
            }
            Some(JobPayload::SnapshotDelete(change)) => {
                self.driver
                    .delete_snapshot(spec, &change.name, log)
                    .await
                    .map_err(failed)?;
            }
            Some(JobPayload::SnapshotRestore(change)) => {
                self.restore(job, spec, change, log).await?;
            }
            _ => {
                return Err(Failure::Payload(DbError::Corrupt(format!(
                    "{} job {} names no snapshot",
                    job.action.as_str(),
                    job.id
                ))))
            }
        }
        Ok(Performed::Done)
    }

    async fn restore(
        &self,
        job: &Job,
        spec: &ContainerSpec,
        change: &RestoreChange,
        log: &JobStepLog,
    ) -> Result<(), Failure> {
        let failed = driver_failure(job.action);
        let was_running = match change.was_running {
            Some(recorded) => recorded,
            None => {
                let running =
                    self.driver.state(&spec.name).await.map_err(&failed)? == RunState::Running;
                // Recorded before it stops: a restore a crash cut off starts
                // the container again when it is resumed.
                let recorded = JobPayload::SnapshotRestore(RestoreChange {
                    was_running: Some(running),
                    ..change.clone()
                });
                let stored: Result<(), DbError> = async {
                    let mut tx = self.db.begin().await?;
                    job_rows::set_payload(&mut tx, job.id, &recorded).await?;
                    Ok(tx.commit().await?)
                }
                .await;
                stored.map_err(Failure::Payload)?;
                running
            }
        };
        if was_running {
            log.step("the container runs: it is stopped, restored and started again".into());
            self.driver.stop(spec, log).await.map_err(&failed)?;
        }
        let restored = self.driver.restore_snapshot(spec, &change.name, log).await;
        // Started again even when the restore failed: a failed restore
        // changed nothing, and the container should not stay down for it.
        if was_running {
            self.driver.start(spec, log).await.map_err(&failed)?;
        }
        restored.map_err(failed)
    }
}

/// What a snapshot job's ending leaves of its snapshot's row: taken, it is
/// listed; not taken, forgotten; deleted, forgotten; not deleted, listed
/// again. A deleted container's snapshots are forgotten with it.
pub(super) async fn settle_snapshot(tx: &mut Tx<'_>, job: &Job, done: bool) -> Result<(), DbError> {
    let container = job.entity_id;
    if job.action == JobAction::Delete && done {
        return snapshots::remove_all(tx, container).await;
    }
    // Only a snapshot job's own payload names a row; an unreadable one has
    // failed the job already and names none.
    match job.payload() {
        Ok(Some(JobPayload::Snapshot(change))) if done => {
            snapshots::set_status(tx, container, &change.name, snapshots::READY).await
        }
        Ok(Some(JobPayload::Snapshot(change))) => {
            snapshots::remove(tx, container, &change.name).await
        }
        Ok(Some(JobPayload::SnapshotDelete(change))) if done => {
            snapshots::remove(tx, container, &change.name).await
        }
        Ok(Some(JobPayload::SnapshotDelete(change))) => {
            snapshots::set_status(tx, container, &change.name, snapshots::READY).await
        }
        _ => Ok(()),
    }
}

/// A queued snapshot job cancelled: its snapshot is forgotten (take) or
/// listed again (delete).
pub async fn cancel_queued_snapshot(tx: &mut Tx<'_>, job: &Job) -> Result<(), DbError> {
    settle_snapshot(tx, job, false).await
}
