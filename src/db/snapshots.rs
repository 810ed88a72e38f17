//! Rows of the `snapshots` table.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::{parse_time, DbError};
use crate::domain::time::{self, Timestamp};

/// A snapshot as stored, and as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub name: String,
    #[serde(with = "time::serde_rfc3339")]
    pub created_at: Timestamp,
    #[serde(skip)]
    pub status: String,
}

pub const CREATING: &str = "creating";
pub const READY: &str = "ready";
pub const DELETING: &str = "deleting";

fn from_row(row: &AnyRow) -> Result<Snapshot, DbError> {
    Ok(Snapshot {
        name: row.try_get("name")?,
        created_at: parse_time(row.try_get("created_at")?)?,
        status: row.try_get("status")?,
    })
}

fn id_text(id: Uuid) -> String {
    id.hyphenated().to_string()
}

/// Records a snapshot being taken; a name the container has is a unique
/// violation.
pub async fn insert(
    conn: &mut AnyConnection,
    container: Uuid,
    name: &str,
    now: &Timestamp,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO snapshots (container_id, name, status, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(id_text(container))
    .bind(name)
    .bind(CREATING)
    .bind(time::format(now))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    container: Uuid,
    name: &str,
) -> Result<Option<Snapshot>, DbError> {
    let row = sqlx::query(
        "SELECT name, status, created_at FROM snapshots WHERE container_id = $1 AND name = $2",
    )
    .bind(id_text(container))
    .bind(name)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// The container's ready snapshots, oldest first.
pub async fn ready(conn: &mut AnyConnection, container: Uuid) -> Result<Vec<Snapshot>, DbError> {
    let rows = sqlx::query(
        "SELECT name, status, created_at FROM snapshots
         WHERE container_id = $1 AND status = $2 ORDER BY created_at, name",
    )
    .bind(id_text(container))
    .bind(READY)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

pub async fn set_status(
    conn: &mut AnyConnection,
    container: Uuid,
    name: &str,
    status: &str,
) -> Result<(), DbError> {
    sqlx::query("UPDATE snapshots SET status = $1 WHERE container_id = $2 AND name = $3")
        .bind(status)
        .bind(id_text(container))
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn remove(conn: &mut AnyConnection, container: Uuid, name: &str) -> Result<(), DbError> {
    sqlx::query("DELETE FROM snapshots WHERE container_id = $1 AND name = $2")
        .bind(id_text(container))
        .bind(name)
        .execute(conn)
        .await?;
    Ok(())
}

/// Forgets every snapshot of a deleted container (its files went with it).
pub async fn remove_all(conn: &mut AnyConnection, container: Uuid) -> Result<(), DbError> {
    sqlx::query("DELETE FROM snapshots WHERE container_id = $1")
        .bind(id_text(container))
        .execute(conn)
        .await?;
    Ok(())
}
