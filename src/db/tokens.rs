//! Rows of the `tokens` table: API tokens, by name, as digests.

use sqlx::{Row, SqliteConnection};

use super::{parse_optional_time, parse_time, DbError};
use crate::domain::time::{self, Timestamp};

#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

pub async fn insert(
    conn: &mut SqliteConnection,
    name: &str,
    digest: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO tokens (name, digest, created_at) VALUES (?, ?, ?)")
        .bind(name)
        .bind(digest)
        .bind(time::format(&now))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn list(conn: &mut SqliteConnection) -> Result<Vec<TokenRecord>, DbError> {
    let rows = sqlx::query("SELECT name, created_at, last_used_at FROM tokens ORDER BY name")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(TokenRecord {
                name: row.try_get("name")?,
                created_at: parse_time(row.try_get("created_at")?)?,
                last_used_at: parse_optional_time(row.try_get("last_used_at")?)?,
            })
        })
        .collect()
}

/// A token as verification needs it.
#[derive(Debug, Clone)]
pub struct StoredDigest {
    pub name: String,
    pub digest: String,
    pub last_used_at: Option<Timestamp>,
}

/// Every token's name, digest and last use, for verification (one query:
/// it runs on every authenticated request).
pub async fn digests(conn: &mut SqliteConnection) -> Result<Vec<StoredDigest>, DbError> {
    let rows = sqlx::query("SELECT name, digest, last_used_at FROM tokens")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(StoredDigest {
                name: row.try_get("name")?,
                digest: row.try_get("digest")?,
                last_used_at: parse_optional_time(row.try_get("last_used_at")?)?,
            })
        })
        .collect()
}

/// Removes a token; false when there was none of that name.
pub async fn delete(conn: &mut SqliteConnection, name: &str) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM tokens WHERE name = ?")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn touch(conn: &mut SqliteConnection, name: &str, now: Timestamp) -> Result<(), DbError> {
    sqlx::query("UPDATE tokens SET last_used_at = ? WHERE name = ?")
        .bind(time::format(&now))
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}
