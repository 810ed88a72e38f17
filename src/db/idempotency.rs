//! Rows of the `idempotency_keys` table.

use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::{parse_uuid, DbError};
use crate::domain::time::{self, Timestamp};

/// What a key was first used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUse {
    pub fingerprint: String,
    pub job_id: Uuid,
    pub container_id: Uuid,
}

/// The use of `key` recorded since `since`, if any.
pub async fn find(
    conn: &mut AnyConnection,
    key: &str,
    since: Timestamp,
) -> Result<Option<KeyUse>, DbError> {
    let row = sqlx::query(
        "SELECT fingerprint, job_id, container_id FROM idempotency_keys WHERE key = $1 AND created_at >= $2",
    )
    .bind(key)
    .bind(time::format(&since))
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(KeyUse {
            fingerprint: row.try_get("fingerprint")?,
            job_id: parse_uuid(row.try_get("job_id")?)?,
            container_id: parse_uuid(row.try_get("container_id")?)?,
        })
    })
    .transpose()
}

/// Records a key's first use, replacing an expired record of the same key.
pub async fn record(
    conn: &mut AnyConnection,
    key: &str,
    used: &KeyUse,
    now: Timestamp,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO idempotency_keys (key, fingerprint, job_id, container_id, created_at)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (key) DO UPDATE SET fingerprint = excluded.fingerprint,
             job_id = excluded.job_id, container_id = excluded.container_id,
             created_at = excluded.created_at",
    )
    .bind(key)
    .bind(&used.fingerprint)
    .bind(used.job_id.hyphenated().to_string())
    .bind(used.container_id.hyphenated().to_string())
    .bind(time::format(&now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets keys recorded before `cutoff`.
pub async fn prune(conn: &mut AnyConnection, cutoff: Timestamp) -> Result<u64, DbError> {
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(time::format(&cutoff))
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
