//! Rows of the `backups` table: one per archive file in a node's backup_dir.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::{parse_time, parse_uuid, DbError};
use crate::domain::backup::BackupKind;
use crate::domain::parameters::Parameters;
use crate::domain::time::{self, Timestamp};

/// A backup as stored, and as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Backup {
    #[serde(skip)]
    pub seq: i64,
    pub id: Uuid,
    /// The container it was taken of; `null` for an uploaded file.
    pub container_id: Option<Uuid>,
    /// The container's name then (for an upload, the name its archive gives).
    pub container_name: String,
    pub ostemplate: String,
    /// The parameters a restore starts from.
    pub parameters: Option<Parameters>,
    pub kind: BackupKind,
    /// The node whose backup_dir holds the file.
    pub node: String,
    /// Bytes of the archive file.
    pub size: i64,
    /// Hex sha256 of the archive file.
    pub sha256: String,
    #[serde(with = "time::serde_rfc3339")]
    pub created_at: Timestamp,
}

const COLUMNS: &str = "seq, id, container_id, container_name, ostemplate, parameters, kind, node, \
                       size, sha256, created_at";

fn from_row(row: &AnyRow) -> Result<Backup, DbError> {
    let container_id: Option<String> = row.try_get("container_id")?;
    let parameters: Option<String> = row.try_get("parameters")?;
    let kind: String = row.try_get("kind")?;
    Ok(Backup {
        seq: row.try_get("seq")?,
        id: parse_uuid(row.try_get("id")?)?,
        container_id: container_id.as_deref().map(parse_uuid).transpose()?,
        container_name: row.try_get("container_name")?,
        ostemplate: row.try_get("ostemplate")?,
        parameters: parameters
            .map(|json| {
                serde_json::from_str(&json)
                    .map_err(|e| DbError::Corrupt(format!("backup parameters: {e}")))
            })
            .transpose()?,
        kind: BackupKind::parse(&kind)
            .ok_or_else(|| DbError::Corrupt(format!("backup kind {kind:?}")))?,
        node: row.try_get("node")?,
        size: row.try_get("size")?,
        sha256: row.try_get("sha256")?,
        created_at: parse_time(row.try_get("created_at")?)?,
    })
}

pub async fn insert(conn: &mut AnyConnection, backup: &Backup) -> Result<Backup, DbError> {
    let row = sqlx::query(&format!(
        "INSERT INTO backups (id, container_id, container_name, ostemplate, parameters, kind, \
         node, size, sha256, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
    ))
    .bind(backup.id.hyphenated().to_string())
    .bind(backup.container_id.map(|id| id.hyphenated().to_string()))
    .bind(&backup.container_name)
    .bind(&backup.ostemplate)
    .bind(
        backup
            .parameters
            .as_ref()
            .map(|p| serde_json::to_string(p).expect("parameters serialise")),
    )
    .bind(backup.kind.as_str())
    .bind(&backup.node)
    .bind(backup.size)
    .bind(&backup.sha256)
    .bind(time::format(&backup.created_at))
    .fetch_one(conn)
    .await?;
    from_row(&row)
}

pub async fn get(conn: &mut AnyConnection, id: Uuid) -> Result<Option<Backup>, DbError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM backups WHERE id = $1"))
        .bind(id.hyphenated().to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Every backup (of one container, when given), newest first.
pub async fn list(
    conn: &mut AnyConnection,
    container: Option<Uuid>,
) -> Result<Vec<Backup>, DbError> {
    let rows = match container {
        Some(id) => {
            sqlx::query(&format!(
                "SELECT {COLUMNS} FROM backups WHERE container_id = $1 ORDER BY seq DESC"
            ))
            .bind(id.hyphenated().to_string())
            .fetch_all(conn)
            .await?
        }
        None => {
            sqlx::query(&format!("SELECT {COLUMNS} FROM backups ORDER BY seq DESC"))
                .fetch_all(conn)
                .await?
        }
    };
    rows.iter().map(from_row).collect()
}

/// Removes the row; whether there was one.
pub async fn delete(conn: &mut AnyConnection, id: Uuid) -> Result<bool, DbError> {
    let done = sqlx::query("DELETE FROM backups WHERE id = $1")
        .bind(id.hyphenated().to_string())
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}
