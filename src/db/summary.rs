//! The few counts that sum up berth's state in one line: read by the health
//! check (the query that proves the database answers, for the watchdog and
//! `/healthz`), and shown as systemd's `STATUS=`.

use sqlx::{AnyConnection, Row};

use super::DbError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// Containers that exist (not deleted).
    pub containers: i64,
    pub running_jobs: i64,
    pub queued_jobs: i64,
}

/// One read over the status indexes; cheap enough to run on every
/// watchdog tick, even with many containers and jobs.
pub async fn summary(conn: &mut AnyConnection) -> Result<Summary, DbError> {
    let row = sqlx::query(
        "SELECT
             (SELECT COUNT(*) FROM containers WHERE status <> 'deleted') AS containers,
             (SELECT COUNT(*) FROM jobs WHERE status = 'running') AS running_jobs,
             (SELECT COUNT(*) FROM jobs WHERE status = 'queued') AS queued_jobs",
    )
    .fetch_one(conn)
    .await?;
    Ok(Summary {
        containers: row.try_get("containers")?,
        running_jobs: row.try_get("running_jobs")?,
        queued_jobs: row.try_get("queued_jobs")?,
    })
}
