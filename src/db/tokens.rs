//! Rows of the `tokens` table: API tokens, by name, as digests; and the
//! file beside the database that tells every process they changed.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;

use sqlx::{AnyConnection, Row};

use super::{parse_optional_time, parse_time, Db, DbError};
use crate::domain::time::{self, Timestamp};

#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub name: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

pub async fn insert(
    conn: &mut AnyConnection,
    name: &str,
    digest: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO tokens (name, digest, created_at) VALUES ($1, $2, $3)")
        .bind(name)
        .bind(digest)
        .bind(time::format(&now))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn list(conn: &mut AnyConnection) -> Result<Vec<TokenRecord>, DbError> {
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
pub async fn digests(conn: &mut AnyConnection) -> Result<Vec<StoredDigest>, DbError> {
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
pub async fn delete(conn: &mut AnyConnection, name: &str) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM tokens WHERE name = $1")
        .bind(name)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn touch(conn: &mut AnyConnection, name: &str, now: Timestamp) -> Result<(), DbError> {
    sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE name = $2")
        .bind(time::format(&now))
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}

/// A file beside the database that grows by one byte whenever a token is
/// created or revoked, by whichever process does it (the `berth token`
/// commands run apart from the service). Its identity and size are a
/// version of the token table that a process can read with one `stat`,
/// instead of a query per request. Appending, rather than rewriting, makes
/// the version strictly new after every change: a replaced file could get
/// the old one's inode back, and a time stamp may not tick between two
/// changes.
#[derive(Debug, Clone)]
pub struct ChangeMarker(Option<PathBuf>);

/// What [`ChangeMarker::version`] reads: device, inode and size; `None`
/// while no token was ever changed through berth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokensVersion(Option<(u64, u64, u64)>);

impl ChangeMarker {
    pub fn of(db: &Db) -> Self {
        ChangeMarker(db.beside(".tokens-changed"))
    }

    /// Whether there is a file to read (not for a database in memory).
    pub fn is_shared(&self) -> bool {
        self.0.is_some()
    }

    pub fn version(&self) -> TokensVersion {
        TokensVersion(self.0.as_ref().and_then(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.dev(), meta.ino(), meta.len()))
        }))
    }

    /// Says "the tokens changed" to every berth process of this database.
    /// Call after the change is committed.
    pub fn mark(&self) -> std::io::Result<()> {
        let Some(path) = &self.0 else {
            return Ok(());
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(b".")
    }
}
