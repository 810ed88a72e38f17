//! Job operations: read, list, wait for, cancel, and read the log of jobs.

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use super::{ListPage, Service, ServiceError};
use crate::db::containers;
use crate::db::jobs::{self, Job, JobFilter, LogLine};
use crate::db::DbError;
use crate::domain::job::{JobAction, JobPayload, JobStatus};
use crate::domain::lifecycle;
use crate::domain::time;
use crate::events::Event;
use crate::jobs::CancelAnswer;

/// The longest a client may wait on one job in a single request.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// What a cancel request achieved.
#[derive(Debug)]
pub enum CancelOutcome {
    /// The job was queued and is now cancelled; it never ran.
    Cancelled(Job),
    /// The job is running a step that stops safely; it stops shortly.
    Stopping(Job),
}

impl Service {
    pub async fn job(&self, id: Uuid) -> Result<Job, ServiceError> {
        jobs::get(&mut *self.connection().await?, id)
            .await?
            .ok_or_else(|| ServiceError::JobNotFound(id.to_string()))
    }

    /// A page of jobs, newest first, continuing before `before`.
    pub async fn jobs(
        &self,
        filter: &JobFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<ListPage<Job>, ServiceError> {
        let rows = jobs::page(&mut *self.connection().await?, filter, before, limit + 1).await?;
        Ok(ListPage::from_rows(rows, limit, |j| j.seq))
    }

    /// The newest `limit` jobs, newest first (the console's overviews).
    pub async fn recent_jobs(&self, limit: u32) -> Result<Vec<Job>, ServiceError> {
        Ok(self.jobs(&JobFilter::default(), None, limit).await?.items)
    }

    /// The newest `limit` jobs of one container, deleted or not.
    pub async fn container_jobs(&self, id: Uuid, limit: u32) -> Result<Vec<Job>, ServiceError> {
        let filter = JobFilter {
            entity_id: Some(id),
            ..JobFilter::default()
        };
        Ok(self.jobs(&filter, None, limit).await?.items)
    }

    /// The job as soon as it has finished, or as it is when `timeout` passes.
    /// A waiter costs nothing until an event about a job arrives.
    pub async fn wait_for_job(&self, id: Uuid, timeout: Duration) -> Result<Job, ServiceError> {
        // Subscribe before reading, so a finish between the two is not missed.
        let mut events = self.events.subscribe();
        let job = self.job(id).await?;
        if job.status.is_finished() {
            return Ok(job);
        }
        let deadline = tokio::time::Instant::now() + timeout.min(MAX_WAIT);
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_elapsed) => return self.job(id).await,
                Ok(Ok(Event::Job(job))) if job.id == id && job.status.is_finished() => {
                    return Ok(job)
                }
                Ok(Ok(_)) => {}
                // Missed events might include ours: look again.
                Ok(Err(RecvError::Lagged(_))) => {
                    let job = self.job(id).await?;
                    if job.status.is_finished() {
                        return Ok(job);
                    }
                }
                Ok(Err(RecvError::Closed)) => return self.job(id).await,
            }
        }
    }

    pub async fn job_log(&self, job: &Job) -> Result<Vec<LogLine>, ServiceError> {
        Ok(jobs::log(&mut *self.connection().await?, job.seq).await?)
    }

    /// Cancels a queued job, or stops a running one where its current step
    /// can stop safely. A finished job cannot be cancelled.
    pub async fn cancel_job(&self, id: Uuid) -> Result<CancelOutcome, ServiceError> {
        let mut tx = self.db.begin().await?;
        let job = jobs::get(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::JobNotFound(id.to_string()))?;
        match job.status {
            JobStatus::Queued => {
                let before_delete = match (job.action, job.payload()?) {
                    (JobAction::Delete, Some(JobPayload::Delete(change))) => {
                        Some(change.previous_status)
                    }
                    (JobAction::Delete, _) => {
                        return Err(DbError::Corrupt(format!(
                            "delete job {id} carries no status to go back to"
                        ))
                        .into())
                    }
                    _ => None,
                };
                let settled = lifecycle::cancel_queued(job.action, before_delete);
                let now = time::now();
                jobs::finish(&mut tx, id, JobStatus::Cancelled, None, now).await?;
                if let Some(status) = settled.status {
                    containers::set_status(&mut tx, job.entity_id, status, now).await?;
                }
                if settled.cancels_the_rest {
                    jobs::cancel_queued_for(&mut tx, job.entity_id, now).await?;
                }
                crate::jobs::cancel_queued_snapshot(&mut tx, &job).await?;
                tx.commit().await.map_err(DbError::from)?;
                let job = self.job(id).await?;
                self.announce(&job).await;
                Ok(CancelOutcome::Cancelled(job))
            }
            JobStatus::Running => {
                drop(tx);
                let answer = if lifecycle::cancellable_while_running(job.action) {
                    self.queue.request_cancel(id)
                } else {
                    CancelAnswer::NotNow
                };
                match answer {
                    CancelAnswer::Requested => Ok(CancelOutcome::Stopping(job)),
                    CancelAnswer::NotNow => Err(ServiceError::JobNotCancellable {
                        id,
                        action: job.action,
                    }),
                }
            }
            status => Err(ServiceError::JobFinished { id, status }),
        }
    }
}
