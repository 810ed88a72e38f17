//! Rows of the `nodes` table: the hosts sharing this database, each one's
//! capacity and heartbeat; and which node each container lives on.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::{parse_time, DbError};
use crate::domain::node::AdminState;
use crate::domain::time::{self, Timestamp};

/// A node as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRecord {
    pub name: String,
    /// Which host holds the name (see `register`).
    pub host_id: String,
    pub api_url: String,
    pub version: String,
    pub cpus: u64,
    pub memory_bytes: u64,
    pub disk_bytes: u64,
    pub state: AdminState,
    pub started_at: Timestamp,
    pub heartbeat_at: Timestamp,
    /// The OS templates in the node's own template directory, by name, as
    /// it last published them.
    pub templates: Vec<String>,
}

const COLUMNS: &str = "name, host_id, api_url, version, cpus, memory_bytes, disk_bytes, state, \
                       started_at, heartbeat_at, templates";

fn from_row(row: &AnyRow) -> Result<NodeRecord, DbError> {
    let state: String = row.try_get("state")?;
    let count = |column: &str| -> Result<u64, DbError> {
        let value: i64 = row.try_get(column)?;
        u64::try_from(value).map_err(|_| DbError::Corrupt(format!("node {column} {value}")))
    };
    Ok(NodeRecord {
        name: row.try_get("name")?,
        host_id: row.try_get("host_id")?,
        api_url: row.try_get("api_url")?,
        version: row.try_get("version")?,
        cpus: count("cpus")?,
        memory_bytes: count("memory_bytes")?,
        disk_bytes: count("disk_bytes")?,
        state: AdminState::parse(&state)
            .ok_or_else(|| DbError::Corrupt(format!("node state {state:?}")))?,
        started_at: parse_time(row.try_get("started_at")?)?,
        heartbeat_at: parse_time(row.try_get("heartbeat_at")?)?,
        templates: parse_templates(row.try_get("templates")?)?,
    })
}

fn parse_templates(json: String) -> Result<Vec<String>, DbError> {
    serde_json::from_str(&json)
        .map_err(|e| DbError::Corrupt(format!("node templates {json:?}: {e}")))
}

fn templates_json(templates: &[String]) -> String {
    serde_json::to_string(templates).expect("a list of strings is JSON")
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub async fn get(conn: &mut AnyConnection, name: &str) -> Result<Option<NodeRecord>, DbError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM nodes WHERE name = $1"))
        .bind(name)
        .fetch_optional(conn)
        .await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn list(conn: &mut AnyConnection) -> Result<Vec<NodeRecord>, DbError> {
    let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM nodes ORDER BY name"))
        .fetch_all(conn)
        .await?;
    rows.iter().map(from_row).collect()
}

/// Writes this node's row as it starts: everything but the operator's
/// `state`, which a restart keeps (a new node starts `online`). The caller
/// has checked, in the same transaction, that no other live host holds
/// the name.
pub async fn register(conn: &mut AnyConnection, node: &NodeRecord) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO nodes (name, host_id, api_url, version, cpus, memory_bytes, disk_bytes,
                            state, started_at, heartbeat_at, templates)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (name) DO UPDATE SET host_id = excluded.host_id,
             api_url = excluded.api_url, version = excluded.version, cpus = excluded.cpus,
             memory_bytes = excluded.memory_bytes, disk_bytes = excluded.disk_bytes,
             started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
             templates = excluded.templates",
    )
    .bind(&node.name)
    .bind(&node.host_id)
    .bind(&node.api_url)
    .bind(&node.version)
    .bind(as_i64(node.cpus))
    .bind(as_i64(node.memory_bytes))
    .bind(as_i64(node.disk_bytes))
    .bind(node.state.as_str())
    .bind(time::format(&node.started_at))
    .bind(time::format(&node.heartbeat_at))
    .bind(templates_json(&node.templates))
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that the node is alive, and the templates it has now (`None`:
/// they could not be listed; the last list stays). False when the row is
/// not this host's any more (another host took the name while this one was
/// silent).
pub async fn heartbeat(
    conn: &mut AnyConnection,
    name: &str,
    host_id: &str,
    now: Timestamp,
    templates: Option<&[String]>,
) -> Result<bool, DbError> {
    let done = sqlx::query(
        "UPDATE nodes SET heartbeat_at = $1, templates = COALESCE($2, templates)
         WHERE name = $3 AND host_id = $4",
    )
    .bind(time::format(&now))
    .bind(templates.map(templates_json))
    .bind(name)
    .bind(host_id)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Records the templates the node has now (after an upload or a delete).
pub async fn set_templates(
    conn: &mut AnyConnection,
    name: &str,
    host_id: &str,
    templates: &[String],
) -> Result<(), DbError> {
    sqlx::query("UPDATE nodes SET templates = $1 WHERE name = $2 AND host_id = $3")
        .bind(templates_json(templates))
        .bind(name)
        .bind(host_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Sets the operator's state; false when there is no such node.
pub async fn set_state(
    conn: &mut AnyConnection,
    name: &str,
    state: AdminState,
) -> Result<bool, DbError> {
    let done = sqlx::query("UPDATE nodes SET state = $1 WHERE name = $2")
        .bind(state.as_str())
        .bind(name)
        .execute(conn)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Gives every container that is not on `node` to it: a database of one
/// host (SQLite) holds only that host's containers, whatever it was called
/// when they were made.
pub async fn adopt_all_containers(conn: &mut AnyConnection, node: &str) -> Result<u64, DbError> {
    let done = sqlx::query("UPDATE containers SET node = $1 WHERE node <> $1")
        .bind(node)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Forgets every node but `node` (on a database of one host).
pub async fn forget_other_nodes(conn: &mut AnyConnection, node: &str) -> Result<u64, DbError> {
    let done = sqlx::query("DELETE FROM nodes WHERE name <> $1")
        .bind(node)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Gives containers that no node claimed yet (made before berth knew
/// nodes) to `node`.
pub async fn adopt_unplaced_containers(
    conn: &mut AnyConnection,
    node: &str,
) -> Result<u64, DbError> {
    let done = sqlx::query("UPDATE containers SET node = $1 WHERE node = ''")
        .bind(node)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

/// Each live container's node and stored parameters (JSON), for what the
/// nodes' containers ask for.
pub async fn container_parameters(
    conn: &mut AnyConnection,
) -> Result<Vec<(String, Option<String>)>, DbError> {
    let rows = sqlx::query("SELECT node, parameters FROM containers WHERE status <> 'deleted'")
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("node")?, row.try_get("parameters")?)))
        .collect()
}
