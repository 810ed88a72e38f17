//! Rows of the `jobs` and `job_log` tables, including the queue queries the
//! runner uses to claim work.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::{parse_optional_time, parse_time, parse_uuid, DbError};
use crate::domain::job::{JobAction, JobPayload, JobStatus};
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
    /// Read with the row; an unreadable payload keeps why, so that one bad
    /// row fails its own job (see `payload()`) instead of every list that
    /// shows it.
    payload: Result<Option<JobPayload>, String>,
    pub error: Option<String>,
    pub progress: Option<u8>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// The API token (or console user) that asked for the job.
    pub requested_by: Option<String>,
}

impl Job {
    /// What the job carries beyond its action; `DbError::Corrupt`, naming
    /// the job, when its row holds a payload berth cannot read.
    pub fn payload(&self) -> Result<Option<&JobPayload>, DbError> {
        self.payload.as_ref().map(Option::as_ref).map_err(|why| {
            DbError::Corrupt(format!(
                "the payload of job {} ({}) cannot be read: {why}",
                self.id,
                self.action.as_str()
            ))
        })
    }
}

/// One line of a job's log.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    #[serde(with = "time::serde_rfc3339")]
    pub time: Timestamp,
    pub text: String,
}

const COLUMNS: &str = "seq, id, entity_type, entity_id, action, status, payload, error, progress, \
                       created_at, started_at, finished_at, requested_by";

fn from_row(row: &AnyRow) -> Result<Job, DbError> {
    let action: String = row.try_get("action")?;
    let status: String = row.try_get("status")?;
    let progress: Option<i64> = row.try_get("progress")?;
    let action =
        JobAction::parse(&action).ok_or_else(|| DbError::Corrupt(format!("action {action:?}")))?;
    let payload: Option<String> = row.try_get("payload")?;
    let payload = payload
        .map(|text| JobPayload::parse(action, &text))
        .transpose();
    Ok(Job {
        seq: row.try_get("seq")?,
        id: parse_uuid(row.try_get("id")?)?,
        entity_type: row.try_get("entity_type")?,
        entity_id: parse_uuid(row.try_get("entity_id")?)?,
        action,
        status: JobStatus::parse(&status)
            .ok_or_else(|| DbError::Corrupt(format!("status {status:?}")))?,
        payload,
        error: row.try_get("error")?,
        progress: progress.map(|p| p.clamp(0, 100) as u8),
        created_at: parse_time(row.try_get("created_at")?)?,
        started_at: parse_optional_time(row.try_get("started_at")?)?,
        finished_at: parse_optional_time(row.try_get("finished_at")?)?,
        requested_by: row.try_get("requested_by")?,
    })
}

/// A job about to be queued.
#[derive(Debug, Clone)]
pub struct NewJob<'a> {
    pub entity_id: Uuid,
    pub action: JobAction,
    pub payload: Option<JobPayload>,
    pub requested_by: Option<&'a str>,
}

/// Queues a new job for a container.
pub async fn insert(
    conn: &mut AnyConnection,
    job: &NewJob<'_>,
    now: Timestamp,
) -> Result<Job, DbError> {
    debug_assert!(job
        .payload
        .as_ref()
        .map_or(true, |p| p.action() == job.action));
    let row = sqlx::query(&format!(
        "INSERT INTO jobs (id, entity_type, entity_id, action, status, payload, created_at, requested_by)
         VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7) RETURNING {COLUMNS}"
    ))
    .bind(Uuid::new_v4().hyphenated().to_string())
    .bind(ENTITY_CONTAINER)
    .bind(job.entity_id.hyphenated().to_string())
    .bind(job.action.as_str())
    .bind(job.payload.as_ref().map(JobPayload::to_json))
    .bind(time::format(&now))
    .bind(job.requested_by)
    .fetch_one(conn)
    .await?;
    from_row(&row)
}

pub async fn get(conn: &mut AnyConnection, id: Uuid) -> Result<Option<Job>, DbError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM jobs WHERE id = $1"))
        .bind(id.hyphenated().to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// The job running now for a container, if one is.
pub async fn running_for(
    conn: &mut AnyConnection,
    entity_id: Uuid,
) -> Result<Option<Job>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE entity_id = $1 AND status = 'running'"
    ))
    .bind(entity_id.hyphenated().to_string())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Replaces a running job's payload (a move records how far it came).
pub async fn set_payload(
    conn: &mut AnyConnection,
    id: Uuid,
    payload: &JobPayload,
) -> Result<(), DbError> {
    sqlx::query("UPDATE jobs SET payload = $1 WHERE id = $2")
        .bind(payload.to_json())
        .bind(id.hyphenated().to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Puts a running job back in the queue, in its place, with `payload`:
/// the rest of it is for the runner of the node its container now lives
/// on (a move handed over to its target).
pub async fn hand_over(
    conn: &mut AnyConnection,
    id: Uuid,
    payload: &JobPayload,
) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE jobs SET status = 'queued', payload = $1 WHERE id = $2 AND status = 'running'",
    )
    .bind(payload.to_json())
    .bind(id.hyphenated().to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// Which jobs a list shows.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub status: Option<JobStatus>,
    pub entity_id: Option<Uuid>,
    pub action: Option<JobAction>,
}

/// Up to `limit` jobs before `before_seq`, newest first. New jobs appear
/// only before the first page, so paging never skips or repeats one.
pub async fn page(
    conn: &mut AnyConnection,
    filter: &JobFilter,
    before_seq: Option<i64>,
    limit: u32,
) -> Result<Vec<Job>, DbError> {
    let mut query = super::QueryBuilder::new(format!("SELECT {COLUMNS} FROM jobs WHERE seq < "));
    query.push_bind(before_seq.unwrap_or(i64::MAX));
    if let Some(status) = filter.status {
        query.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(entity_id) = filter.entity_id {
        query
            .push(" AND entity_id = ")
            .push_bind(entity_id.hyphenated().to_string());
    }
    if let Some(action) = filter.action {
        query.push(" AND action = ").push_bind(action.as_str());
    }
    query
        .push(" ORDER BY seq DESC LIMIT ")
        .push_bind(i64::from(limit));
    let rows = query.build().fetch_all(conn).await?;
    rows.iter().map(from_row).collect()
}

/// How many jobs there are for each (status, action).
pub async fn count_by_status_and_action(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, String, i64)>, DbError> {
    let rows =
        sqlx::query("SELECT status, action, COUNT(*) AS n FROM jobs GROUP BY status, action")
            .fetch_all(conn)
            .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("status")?,
                row.try_get("action")?,
                row.try_get("n")?,
            ))
        })
        .collect()
}

/// Cancels the container's queued jobs (its create was cancelled, so
/// there is nothing for them to act on).
pub async fn cancel_queued_for(
    conn: &mut AnyConnection,
    entity_id: Uuid,
    now: Timestamp,
) -> Result<u64, DbError> {
    let done = sqlx::query(
        "UPDATE jobs SET status = 'cancelled', finished_at = $1 WHERE entity_id = $2 AND status = 'queued'",
    )
    .bind(time::format(&now))
    .bind(entity_id.hyphenated().to_string())
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// Removes up to `batch` jobs (and their logs) that finished before
/// `cutoff`; small batches keep the write lock short.
pub async fn prune_finished(
    conn: &mut AnyConnection,
    cutoff: Timestamp,
    batch: u32,
) -> Result<u64, DbError> {
    let done = sqlx::query(
        "DELETE FROM jobs WHERE seq IN (
             SELECT seq FROM jobs WHERE finished_at IS NOT NULL AND finished_at < $1 LIMIT $2)",
    )
    .bind(time::format(&cutoff))
    .bind(i64::from(batch))
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

/// The jobs of `node`'s containers in a given state, oldest first
/// (recovery looks for `running`: a node settles only its own).
pub async fn with_status_on(
    conn: &mut AnyConnection,
    status: JobStatus,
    node: &str,
) -> Result<Vec<Job>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM jobs WHERE status = $1
           AND entity_id IN (SELECT id FROM containers WHERE node = $2)
         ORDER BY seq"
    ))
    .bind(status.as_str())
    .bind(node)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// Marks the next runnable job of `node`'s containers `running` and
/// returns it: the oldest queued job of a container on that node that has
/// no earlier unfinished job. That keeps each container's jobs strictly in
/// order while containers run in parallel, and each node to its own
/// containers. On PostgreSQL the candidate row is locked with `SKIP LOCKED`,
/// so two runners that race for the same job never both get it (the one
/// that loses takes the next); SQLite has a single writer.
pub async fn claim_next(
    conn: &mut AnyConnection,
    node: &str,
    now: Timestamp,
) -> Result<Option<Job>, DbError> {
    let lock = match conn.backend_name() {
        "PostgreSQL" => "FOR UPDATE OF j SKIP LOCKED",
        _ => "",
    };
    let row = sqlx::query(&format!(
        "UPDATE jobs SET status = 'running', started_at = $1
         WHERE seq = (
             SELECT j.seq FROM jobs j JOIN containers c ON c.id = j.entity_id
             WHERE j.status = 'queued' AND c.node = $2
               AND NOT EXISTS (
                   SELECT 1 FROM jobs e
                   WHERE e.entity_id = j.entity_id AND e.seq < j.seq AND e.status IN ('queued', 'running'))
             ORDER BY j.seq LIMIT 1 {lock})
         RETURNING {COLUMNS}"
    ))
    .bind(time::format(&now))
    .bind(node)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// Settles a job: `done`, `failed` (with the reason) or `cancelled`.
pub async fn finish(
    conn: &mut AnyConnection,
    id: Uuid,
    status: JobStatus,
    error: Option<&str>,
    now: Timestamp,
) -> Result<(), DbError> {
    debug_assert!(status.is_finished());
    sqlx::query(
        "UPDATE jobs SET status = $1, error = $2, finished_at = $3,
                progress = CASE WHEN $1 = 'done' THEN 100 ELSE progress END
         WHERE id = $4",
    )
    .bind(status.as_str())
    .bind(error)
    .bind(time::format(&now))
    .bind(id.hyphenated().to_string())
    .execute(conn)
    .await?;
    Ok(())
}

/// Puts a job found `running` after a crash back in the queue, in its place.
pub async fn requeue(conn: &mut AnyConnection, id: Uuid) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE jobs SET status = 'queued', started_at = NULL, progress = NULL WHERE id = $1",
    )
    .bind(id.hyphenated().to_string())
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn set_progress(conn: &mut AnyConnection, seq: i64, progress: u8) -> Result<(), DbError> {
    sqlx::query("UPDATE jobs SET progress = $1 WHERE seq = $2")
        .bind(progress as i64)
        .bind(seq)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn append_log(
    conn: &mut AnyConnection,
    seq: i64,
    time: Timestamp,
    text: &str,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO job_log (job_seq, line, time, text)
         VALUES ($1, (SELECT COALESCE(MAX(line), 0) + 1 FROM job_log WHERE job_seq = $1), $2, $3)",
    )
    .bind(seq)
    .bind(time::format(&time))
    .bind(text)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn log(conn: &mut AnyConnection, seq: i64) -> Result<Vec<LogLine>, DbError> {
    let rows = sqlx::query("SELECT time, text FROM job_log WHERE job_seq = $1 ORDER BY line")
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

/// Whether a create job on `node` that has not finished uses template
/// `ostemplate` (each node unpacks from its own template directory).
pub async fn create_pending_from(
    conn: &mut AnyConnection,
    ostemplate: &str,
    node: &str,
) -> Result<bool, DbError> {
    let row = sqlx::query(
        "SELECT 1 FROM jobs j JOIN containers c ON c.id = j.entity_id
         WHERE j.action = 'create' AND j.status IN ('queued', 'running') AND c.ostemplate = $1
           AND c.node = $2 LIMIT 1",
    )
    .bind(ostemplate)
    .bind(node)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}
