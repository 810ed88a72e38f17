//! Rows of the `jobs` and `job_log` tables, including the queue queries the
//! runner uses to claim work.

use serde::Serialize;
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};
use uuid::Uuid;

use super::{parse_optional_time, parse_time, parse_uuid, DbError};
use crate::domain::job::{JobAction, JobStatus};
use crate::domain::time::{self, Timestamp};

/// The only kind of entity jobs act on so far.
pub const ENTITY_CONTAINER: &str = "container";

#[derive(Debug, Clone)]
pub struct Job {
    pub seq: i64,
    pub id: Uuid,
    pub entity_type: String,
    pub entity_id: Uuid,
    pub action: JobAction,
    pub status: JobStatus,
    pub payload: Option<String>,
    pub error: Option<String>,
    pub progress: Option<u8>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
}

/// One line of a job's log.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    #[serde(with = "time::serde_rfc3339")]
    pub time: Timestamp,
    pub text: String,
}

const COLUMNS: &str =
    "seq, id, entity_type, entity_id, action, status, payload, error, progress, created_at, started_at, finished_at";

fn from_row(row: &SqliteRow) -> Result<Job, DbError> {
    let action: String = row.try_get("action")?;
    let status: String = row.try_get("status")?;
    let progress: Option<i64> = row.try_get("progress")?;
    Ok(Job {
        seq: row.try_get("seq")?,
        id: parse_uuid(row.try_get("id")?)?,
        entity_type: row.try_get("entity_type")?,
        entity_id: parse_uuid(row.try_get("entity_id")?)?,
        action: JobAction::parse(&action)
            .ok_or_else(|| DbError::Corrupt(format!("action {action:?}")))?,
        status: JobStatus::parse(&status)
            .ok_or_else(|| DbError::Corrupt(format!("status {status:?}")))?,
        payload: row.try_get("payload")?,
        error: row.try_get("error")?,
        progress: progress.map(|p| p.clamp(0, 100) as u8),
        created_at: parse_time(row.try_get("created_at")?)?,
        started_at: parse_optional_time(row.try_get("started_at")?)?,
        finished_at: parse_optional_time(row.try_get("finished_at")?)?,
    })
}

/// Queues a new job for a container.
pub async fn insert(
    conn: &mut SqliteConnection,
    entity_id: Uuid,
    action: JobAction,
    payload: Option<String>,
    now: Timestamp,
) -> Result<Job, DbError> {
    let row = sqlx::query(&format!(
        "INSERT INTO jobs (id, entity_type, entity_id, action, status, payload, created_at)
         VALUES (?, ?, ?, ?, 'queued', ?, ?) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::new_v4().hyphenated().to_string())
    .bind(ENTITY_CONTAINER)
    .bind(entity_id.hyphenated().to_string())
    .bind(action.as_str())
    .bind(payload)
    .bind(time::format(&now))
    .fetch_one(conn)
    .await?;
    from_row(&row)
}

pub async fn get(conn: &mut SqliteConnection, id: Uuid) -> Result<Option<Job>, DbError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE id = ?"))
        .bind(id.hyphenated().to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// All jobs, newest first.
pub async fn list(conn: &mut SqliteConnection) -> Result<Vec<Job>, DbError> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs ORDER BY seq DESC"))
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// The newest `limit` jobs, newest first.
pub async fn recent(conn: &mut SqliteConnection, limit: u32) -> Result<Vec<Job>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM jobs ORDER BY seq DESC LIMIT ?"
    ))
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// The newest `limit` jobs of one container, newest first.
pub async fn of_entity(
    conn: &mut SqliteConnection,
    entity_id: Uuid,
    limit: u32,
) -> Result<Vec<Job>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE entity_id = ? ORDER BY seq DESC LIMIT ?"
    ))
    .bind(entity_id.hyphenated().to_string())
    .bind(limit)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Jobs in a given state, oldest first (recovery looks for `running`).
pub async fn with_status(
    conn: &mut SqliteConnection,
    status: JobStatus,
) -> Result<Vec<Job>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE status = ? ORDER BY seq"
    ))
    .bind(status.as_str())
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Whether the container has a job that is queued or running.
pub async fn has_unfinished(conn: &mut SqliteConnection, entity_id: Uuid) -> Result<bool, DbError> {
    let row = sqlx::query(
        "SELECT 1 FROM jobs WHERE entity_id = ? AND status IN ('queued', 'running') LIMIT 1",
    )
    .bind(entity_id.hyphenated().to_string())
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}

/// Marks the next runnable job `running` and returns it: the oldest queued
/// job whose container has no earlier unfinished job. That keeps each
/// container's jobs strictly in order while containers run in parallel.
pub async fn claim_next(
    conn: &mut SqliteConnection,
    now: Timestamp,
) -> Result<Option<Job>, DbError> {
    let row = sqlx::query(&format!(
        "UPDATE jobs SET status = 'running', started_at = ?
         WHERE seq = (
             SELECT j.seq FROM jobs j
             WHERE j.status = 'queued'
               AND NOT EXISTS (
                   SELECT 1 FROM jobs e
                   WHERE e.entity_id = j.entity_id AND e.seq < j.seq AND e.status IN ('queued', 'running'))
             ORDER BY j.seq LIMIT 1)
         RETURNING {COLUMNS}"
    ))
    .bind(time::format(&now))
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Settles a job: `done`, `failed` (with the reason) or `cancelled`.
pub async fn finish(
    conn: &mut SqliteConnection,
    id: Uuid,
    status: JobStatus,
    error: Option<&str>,
    now: Timestamp,
) -> Result<(), DbError> {
    debug_assert!(status.is_finished());
    sqlx::query(
        "UPDATE jobs SET status = ?, error = ?, finished_at = ?,
                progress = CASE WHEN ? = 'done' THEN 100 ELSE progress END
         WHERE id = ?",
    )
    .bind(status.as_str())
    .bind(error)
    .bind(time::format(&now))
    .bind(status.as_str())
    .bind(id.hyphenated().to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts a job found `running` after a crash back in the queue, in its place.
pub async fn requeue(conn: &mut SqliteConnection, id: Uuid) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE jobs SET status = 'queued', started_at = NULL, progress = NULL WHERE id = ?",
    )
    .bind(id.hyphenated().to_string())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_progress(
    conn: &mut SqliteConnection,
    seq: i64,
    progress: u8,
) -> Result<(), DbError> {
    sqlx::query("UPDATE jobs SET progress = ? WHERE seq = ?")
        .bind(progress as i64)
        .bind(seq)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn append_log(
    conn: &mut SqliteConnection,
    seq: i64,
    time: Timestamp,
    text: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO job_log (job_seq, line, time, text)
         VALUES (?, (SELECT COALESCE(MAX(line), 0) + 1 FROM job_log WHERE job_seq = ?), ?, ?)",
    )
    .bind(seq)
    .bind(seq)
    .bind(time::format(&time))
    .bind(text)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn log(conn: &mut SqliteConnection, seq: i64) -> Result<Vec<LogLine>, DbError> {
    let rows = sqlx::query("SELECT time, text FROM job_log WHERE job_seq = ? ORDER BY line")
        .bind(seq)
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(LogLine {
                time: parse_time(row.try_get("time")?)?,
                text: row.try_get("text")?,
            })
        })
        .collect()
}
