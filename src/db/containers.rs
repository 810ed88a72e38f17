//! Rows of the `containers` table.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use super::{parse_time, parse_uuid, DbError};
use crate::domain::container::ContainerStatus;
use crate::domain::parameters::Parameters;
use crate::domain::time::{self, Timestamp};

/// A container as stored, and as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Container {
    #[serde(skip)]
    pub seq: i64,
    pub id: Uuid,
    pub name: String,
    pub ostemplate: String,
    /// `null` until parameters are first set, as in the seed.
    pub parameters: Option<Parameters>,
    #[serde(with = "time::serde_rfc3339")]
    pub created_at: Timestamp,
    pub status: ContainerStatus,
    #[serde(with = "time::serde_rfc3339")]
    pub updated_at: Timestamp,
    /// The node it lives on: whose runner carries out its jobs.
    pub node: String,
    /// The storage pool its root filesystem is on.
    pub storage: String,
    /// That pool's driver (`dir`, `btrfs`).
    #[serde(skip)]
    pub storage_driver: String,
}

const COLUMNS: &str =
    "seq, id, name, ostemplate, parameters, status, created_at, updated_at, node, storage, storage_driver";

fn from_row(row: &AnyRow) -> Result<Container, DbError> {
    let status: String = row.try_get("status")?;
    let parameters: Option<String> = row.try_get("parameters")?;
    Ok(Container {
        seq: row.try_get("seq")?,
        id: parse_uuid(row.try_get("id")?)?,
        name: row.try_get("name")?,
        ostemplate: row.try_get("ostemplate")?,
        parameters: parameters
            .map(|json| {
                serde_json::from_str(&json)
                    .map_err(|e| DbError::Corrupt(format!("parameters: {e}")))
            })
            .transpose()?,
        status: ContainerStatus::parse(&status)
            .ok_or_else(|| DbError::Corrupt(format!("status {status:?}")))?,
        created_at: parse_time(row.try_get("created_at")?)?,
        updated_at: parse_time(row.try_get("updated_at")?)?,
        node: row.try_get("node")?,
        storage: row.try_get("storage")?,
        storage_driver: row.try_get("storage_driver")?,
    })
}

fn parameters_json(parameters: &Option<Parameters>) -> Option<String> {
    parameters
        .as_ref()
        .map(|p| serde_json::to_string(p).expect("parameters serialise"))
}

pub async fn insert(conn: &mut AnyConnection, container: &Container) -> Result<Container, DbError> {
    let row = sqlx::query(&format!(
        "INSERT INTO containers (id, name, ostemplate, parameters, status, created_at, updated_at, node, storage, storage_driver)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
    ))
    .bind(container.id.hyphenated().to_string())
    .bind(&container.name)
    .bind(&container.ostemplate)
    .bind(parameters_json(&container.parameters))
    .bind(container.status.as_str())
    .bind(time::format(&container.created_at))
    .bind(time::format(&container.updated_at))
    .bind(&container.node)
    .bind(&container.storage)
    .bind(&container.storage_driver)
    .fetch_one(conn)
    .await?;
    from_row(&row)
}

/// The container with this id, unless it has been deleted.
pub async fn get(conn: &mut AnyConnection, id: Uuid) -> Result<Option<Container>, DbError> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM containers WHERE id = $1 AND status <> 'deleted'"
    ))
    .bind(id.hyphenated().to_string())
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// The container with this id, deleted or not (jobs still refer to it).
pub async fn get_any(conn: &mut AnyConnection, id: Uuid) -> Result<Option<Container>, DbError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM containers WHERE id = $1"))
        .bind(id.hyphenated().to_string())
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

/// Which containers a list shows.
#[derive(Debug, Clone, Default)]
pub struct ContainerFilter {
    /// `None` shows every container that exists (all but `deleted`).
    pub status: Option<ContainerStatus>,
    pub name: Option<String>,
    pub node: Option<String>,
}

/// Up to `limit` containers after `after_seq`, oldest first. Ordering by
/// the insertion sequence means new containers only ever appear at the end,
/// so paging never skips or repeats one.
pub async fn page(
    conn: &mut AnyConnection,
    filter: &ContainerFilter,
    after_seq: Option<i64>,
    limit: u32,
) -> Result<Vec<Container>, DbError> {
    let mut query =
        super::QueryBuilder::new(format!("SELECT {COLUMNS} FROM containers WHERE seq > "));
    query.push_bind(after_seq.unwrap_or(0));
    match filter.status {
        Some(status) => query.push(" AND status = ").push_bind(status.as_str()),
        None => query.push(" AND status <> 'deleted'"),
    };
    if let Some(name) = &filter.name {
        query.push(" AND name = ").push_bind(name.clone());
    }
    if let Some(node) = &filter.node {
        query.push(" AND node = ").push_bind(node.clone());
    }
    query
        .push(" ORDER BY seq LIMIT ")
        .push_bind(i64::from(limit));
    let rows = query.build().fetch_all(conn).await?;
    rows.iter().map(from_row).collect()
}

/// How many containers there are in each status (`deleted` aside).
pub async fn count_by_status(conn: &mut AnyConnection) -> Result<Vec<(String, i64)>, DbError> {
    let rows = sqlx::query(
        "SELECT status, COUNT(*) AS n FROM containers WHERE status <> 'deleted' GROUP BY status",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("status")?, row.try_get("n")?)))
        .collect()
}

/// Forgets deleted containers none of whose jobs are kept any more.
pub async fn prune_deleted(conn: &mut AnyConnection) -> Result<u64, DbError> {
    let done = sqlx::query(
        "DELETE FROM containers WHERE status = 'deleted'
           AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.entity_id = containers.id)",
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

pub async fn set_parameters(
    conn: &mut AnyConnection,
    id: Uuid,
    parameters: &Parameters,
    now: Timestamp,
) -> Result<(), DbError> {
    sqlx::query("UPDATE containers SET parameters = $1, updated_at = $2 WHERE id = $3")
        .bind(parameters_json(&Some(parameters.clone())))
        .bind(time::format(&now))
        .bind(id.hyphenated().to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// Hands the container to another node (the end of a move): from now on
/// that node's runner carries out its jobs.
pub async fn set_node(
    conn: &mut AnyConnection,
    id: Uuid,
    node: &str,
    now: Timestamp,
) -> Result<(), DbError> {
    sqlx::query("UPDATE containers SET node = $1, updated_at = $2 WHERE id = $3")
        .bind(node)
        .bind(time::format(&now))
        .bind(id.hyphenated().to_string())
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn set_status(
    conn: &mut AnyConnection,
    id: Uuid,
    status: ContainerStatus,
    now: Timestamp,
) -> Result<(), DbError> {
    sqlx::query("UPDATE containers SET status = $1, updated_at = $2 WHERE id = $3")
        .bind(status.as_str())
        .bind(time::format(&now))
        .bind(id.hyphenated().to_string())
        .execute(conn)
        .await?;
    Ok(())
}

/// `node`'s containers said to be running or stopped that no job is
/// working on: the ones whose status only the host can change (a shutdown
/// from inside).
pub async fn settled(
    conn: &mut AnyConnection,
    node: &str,
) -> Result<Vec<(Uuid, String, ContainerStatus)>, DbError> {
    let rows = sqlx::query(
        "SELECT id, name, status FROM containers c
         WHERE status IN ('running', 'stopped') AND node = $1
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.entity_id = c.id AND j.status IN ('queued', 'running'))",
    )
    .bind(node)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            let status: String = row.try_get("status")?;
            Ok((
                parse_uuid(row.try_get("id")?)?,
                row.try_get("name")?,
                ContainerStatus::parse(&status)
                    .ok_or_else(|| DbError::Corrupt(format!("status {status:?}")))?,
            ))
        })
        .collect()
}

/// Records a status the host showed at `observed_at`, unless the container
/// changed since it was looked at, or a job is pending for it or finished
/// after the host was asked (its result is newer than the observation).
/// True when it was recorded.
pub async fn set_observed_status(
    conn: &mut AnyConnection,
    id: Uuid,
    seen: ContainerStatus,
    observed: ContainerStatus,
    observed_at: Timestamp,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE containers SET status = $1, updated_at = $2
         WHERE id = $3 AND status = $4
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.entity_id = containers.id
                           AND (j.status IN ('queued', 'running') OR j.finished_at >= $5))",
    )
    .bind(observed.as_str())
    .bind(time::format(&time::now()))
    .bind(id.hyphenated().to_string())
    .bind(seen.as_str())
    // Times are kept to the second: a job finished in the same second is
    // treated as newer, which only delays the correction to the next round.
    .bind(time::format(&observed_at))
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// The containers made from template `ostemplate` (deleted ones aside),
/// oldest first, on any node.
pub async fn made_from(
    conn: &mut AnyConnection,
    ostemplate: &str,
) -> Result<Vec<Container>, DbError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM containers
          WHERE ostemplate = $1 AND status <> 'deleted' ORDER BY seq"
    ))
    .bind(ostemplate)
    .fetch_all(conn)
    .await?;
    rows.iter().map(from_row).collect()
}

/// How many containers (deleted ones aside) each template made.
pub async fn count_by_template(conn: &mut AnyConnection) -> Result<Vec<(String, i64)>, DbError> {
    let rows = sqlx::query(
        "SELECT ostemplate, COUNT(*) AS n FROM containers
          WHERE status <> 'deleted' GROUP BY ostemplate",
    )
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("ostemplate")?, row.try_get("n")?)))
        .collect()
}
