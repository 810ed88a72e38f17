//! Baseline for `bench/api-read.sh`: one Rocket route doing one indexed
//! SELECT on a table shaped like berth's `containers`, answered as JSON.
//! Settings: `BASELINE_DB` (SQLite file, created with one row),
//! `BASELINE_ID` (that row's id), and Rocket's own `ROCKET_*`.

use std::str::FromStr;

use rocket::serde::json::Json;
use rocket::State;
use serde_json::{json, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

#[rocket::get("/v1/containers/<id>")]
async fn get(pool: &State<SqlitePool>, id: &str) -> Option<Json<Value>> {
    let row = sqlx::query(
        "SELECT id, name, ostemplate, parameters, status, created_at, updated_at
         FROM containers WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(pool.inner())
    .await
    .ok()??;
    let parameters: Option<String> = row.get("parameters");
    Some(Json(json!({
        "message": "success",
        "container": {
            "id": row.get::<String, _>("id"),
            "name": row.get::<String, _>("name"),
            "ostemplate": row.get::<String, _>("ostemplate"),
            "parameters": parameters.and_then(|p| serde_json::from_str::<Value>(&p).ok()),
            "created_at": row.get::<String, _>("created_at"),
            "status": row.get::<String, _>("status"),
            "updated_at": row.get::<String, _>("updated_at"),
        }
    })))
}

#[rocket::launch]
async fn rocket() -> _ {
    let path = std::env::var("BASELINE_DB").expect("BASELINE_DB names the SQLite file");
    let id = std::env::var("BASELINE_ID").expect("BASELINE_ID names the row to serve");
    let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
        .expect("a valid path")
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
        .expect("the database opens");
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS containers (
             seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
             name TEXT NOT NULL, ostemplate TEXT NOT NULL, parameters TEXT,
             status TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
    )
    .execute(&pool)
    .await
    .expect("the table exists");
    sqlx::query(
        "INSERT OR IGNORE INTO containers (id, name, ostemplate, parameters, status, created_at, updated_at)
         VALUES (?, 'ct100', 'busybox', NULL, 'stopped', '2026-11-28T05:00:00Z', '2026-11-28T05:00:00Z')",
    )
    .bind(&id)
    .execute(&pool)
    .await
    .expect("the row is stored");
    rocket::build()
        .manage(pool)
        .mount("/", rocket::routes![get])
}
