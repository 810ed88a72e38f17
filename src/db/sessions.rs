//! Rows of the `sessions` table: console logins, by the digest of their id.

use sqlx::{AnyConnection, Row};

use super::{parse_time, DbError};
use crate::domain::time::{self, Timestamp};

#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub token_name: String,
    /// The secret the session's forms must carry.
    pub csrf: String,
    pub expires_at: Timestamp,
}

pub async fn insert(
    conn: &mut AnyConnection,
    digest: &str,
    token_name: &str,
    csrf: &str,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO sessions (digest, token_name, csrf, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(digest)
    .bind(token_name)
    .bind(csrf)
    .bind(time::format(&now))
    .bind(time::format(&expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// The session with this digest, only while its token still exists.
pub async fn get(conn: &mut AnyConnection, digest: &str) -> Result<Option<SessionRecord>, DbError> {
    let row = sqlx::query(
        "SELECT s.token_name, s.csrf, s.expires_at FROM sessions s \
         JOIN tokens t ON t.name = s.token_name WHERE s.digest = $1",
    )
    .bind(digest)
    .fetch_optional(conn)
    .await?;
    row.map(|row| {
        Ok(SessionRecord {
            token_name: row.try_get("token_name")?,
            csrf: row.try_get("csrf")?,
            expires_at: parse_time(row.try_get("expires_at")?)?,
        })
    })
    .transpose()
}

pub async fn delete(conn: &mut AnyConnection, digest: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM sessions WHERE digest = $1")
        .bind(digest)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets sessions that have expired (timestamps share one format, so
/// they compare as text).
pub async fn delete_expired(conn: &mut AnyConnection, now: Timestamp) -> Result<(), DbError> {
    sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(time::format(&now))
        .execute(conn)
        .await?;
    Ok(())
}
