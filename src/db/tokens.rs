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

/// (name, digest) of every token, for verification.
pub async fn digests(conn: &mut SqliteConnection) -> Result<Vec<(String, String)>, DbError> {
    let rows = sqlx::query("SELECT name, digest FROM tokens")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("name")?, row.try_get("digest")?)))
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
