//! The only module that speaks SQL: the SQLite pool, migrations, and the
//! queries over containers and jobs.

pub mod containers;
pub mod idempotency;
pub mod jobs;
pub mod sessions;
pub mod summary;
pub mod tokens;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Sqlite, SqlitePool, Transaction};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database holds a value berth cannot read: {0}")]
    Corrupt(String),
}

impl DbError {
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Sqlx(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

pub type Tx<'a> = Transaction<'a, Sqlite>;

/// The database handle every layer above shares (Rocket-managed state).
#[derive(Clone)]
pub struct Db {
    pool: SqlitePool,
}

impl Db {
    /// Opens (creating if needed) the database at `url` and brings its schema
    /// up to date.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Db { pool })
    }

    /// Begins a write transaction that holds SQLite's write lock from its
    /// first statement on, as `BEGIN IMMEDIATE` would (sqlx 0.7 only issues
    /// a deferred `BEGIN`). A deferred transaction that reads and then
    /// writes fails at once with "database is locked" (SQLITE_BUSY, no
    /// busy timeout) whenever another connection writes in between, which
    /// the job runner and concurrent requests do all the time. Taking the
    /// lock first makes it wait for the busy timeout like any other writer.
    pub async fn begin(&self) -> Result<Tx<'_>, DbError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE containers SET seq = seq WHERE 0")
            .execute(&mut *tx)
            .await?;
        Ok(tx)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Proves the database answers (for health checks and the watchdog).
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn parse_uuid(text: &str) -> Result<uuid::Uuid, DbError> {
    uuid::Uuid::parse_str(text).map_err(|_| DbError::Corrupt(format!("id {text:?}")))
}

fn parse_time(text: &str) -> Result<crate::domain::time::Timestamp, DbError> {
    crate::domain::time::parse(text).ok_or_else(|| DbError::Corrupt(format!("time {text:?}")))
}

fn parse_optional_time(
    text: Option<String>,
) -> Result<Option<crate::domain::time::Timestamp>, DbError> {
    text.as_deref().map(parse_time).transpose()
}
