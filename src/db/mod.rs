//! The only module that speaks SQL: berth's database as Rocket knows it
//! (`BerthDb`, a rocket_db_pools `Database` named `berth`), its SQLite pools
//! (reads, and the one writer), migrations, and, in its submodules, every
//! query.

pub mod backups;
pub mod containers;
pub mod idempotency;
pub mod jobs;
pub mod nodes;
pub mod notify;
pub mod sessions;
pub mod snapshots;
pub mod summary;
pub mod tokens;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rocket::figment::Figment;
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use sqlx::any::{AnyArguments, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteAutoVacuum, SqliteConnectOptions};
use sqlx::{
    Any, AnyConnection, AnyPool, Arguments, ConnectOptions, Connection, Executor, Row, Transaction,
};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    #[error(
        "the database's schema is newer than this berth ({} {}) knows: it has migration {0}, \
         which this version lacks. Upgrade berth on this host before starting it against \
         this database; nothing was changed",
        env!("CARGO_PKG_NAME"),
        env!("CARGO_PKG_VERSION")
    )]
    SchemaNewer(i64),
    #[error("database holds a value berth cannot read: {0}")]
    Corrupt(String),
    #[error("cannot open the database {url}: {source}")]
    Open {
        /// Without its password.
        url: String,
        source: sqlx::Error,
    },
    #[error("database settings ([databases.berth]): {0}")]
    Config(String),
    #[error(
        "database URL {0:?}: berth keeps its data in SQLite (sqlite://<file>, the default \
         being sqlite://<data_dir>/berth.db) or PostgreSQL (postgres://user@host/database)"
    )]
    UnsupportedUrl(String),
}

impl From<sqlx::migrate::MigrateError> for DbError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        match error {
            sqlx::migrate::MigrateError::VersionMissing(version) => DbError::SchemaNewer(version),
            other => DbError::Migrate(other),
        }
    }
}

impl DbError {
    /// Whether the database could not be reached at all (a server down or
    /// restarting, no connection to be had), as against a query it refused:
    /// nothing was done, and the same request may work shortly.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            DbError::Sqlx(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::Protocol(_)
            )
        ) || matches!(self, DbError::Sqlx(sqlx::Error::Database(e))
                if e.code().is_some_and(|code| code.starts_with("57P") || code.starts_with("08")))
    }

    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DbError::Sqlx(sqlx::Error::Database(e)) if e.is_unique_violation())
    }
}

pub type Tx<'a> = Transaction<'a, Any>;

/// Where berth keeps its data: the embedded default for one host, or the
/// server a cluster shares. The queries are the same on both (sqlx's `Any`
/// driver, `$n` placeholders); where the two differ, `Db` says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a URL names by its scheme, if berth has it.
    pub fn of_url(url: &str) -> Option<Backend> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Some(Backend::Sqlite),
            "postgres" | "postgresql" => Some(Backend::Postgres),
            _ => None,
        }
    }
}

/// berth's database as Rocket sees it: configured under
/// `[default.databases.berth]` (`url`, `max_connections`, `connect_timeout`),
/// opened by the fairing `BerthDb::init()` attaches, found again with
/// `BerthDb::fetch(&rocket)`, closed at shutdown. `database_url` /
/// `BERTH_DATABASE_URL` name the same URL (see `config`).
#[derive(rocket_db_pools::Database)]
#[database("berth")]
pub struct BerthDb(Db);

/// How many connections to keep, and how long to wait for one.
#[derive(Debug, Clone, Copy)]
pub struct PoolSize {
    /// Read connections (the writer is always one).
    pub readers: u32,
    /// How long a read waits for a connection.
    pub acquire_timeout: Duration,
}

/// How long a write waits its turn for the one writer connection: writes
/// queue there in bursts by design, so this is a queueing bound (sqlx's
/// default), not a connection time-out.
const WRITE_QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

impl Default for PoolSize {
    fn default() -> Self {
        PoolSize {
            readers: 8,
            acquire_timeout: Duration::from_secs(30),
        }
    }
}

/// The database handle every layer above shares: Rocket manages it as
/// `BerthDb`, the layers above keep clones.
#[derive(Clone)]
pub struct Db {
    backend: Backend,
    /// Connections for reads: in WAL mode they never wait for a writer.
    pool: AnyPool,
    /// The one connection every write goes through. SQLite lets one writer
    /// in at a time; queueing writers here (fairly, without holding a read
    /// connection) instead of in SQLite's busy handler (sleeps of up to
    /// 100 ms between tries) keeps a burst of writes from taking every
    /// connection away from the reads. PostgreSQL takes concurrent writers:
    /// there it is the same pool as the reads.
    writer: AnyPool,
    /// The database file, for the files kept beside it (none in memory).
    file: Option<PathBuf>,
    /// The server's URL, for the connections that listen (PostgreSQL).
    url: Option<String>,
    /// Held (read) by whoever must still write after Rocket starts shutting
    /// down (the runner, while it drains); `close` takes it for writing.
    users: Arc<RwLock<()>>,
}

/// While held, `Db::close` waits: the pools stay open for its holder.
pub struct OpenHold(#[allow(dead_code)] OwnedRwLockReadGuard<()>);

impl Db {
    /// Opens (creating if needed) the database at `url` and brings its schema
    /// up to date.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        Db::open_with(url, PoolSize::default()).await
    }

    /// `open`, with the pool sizes given.
    pub async fn open_with(url: &str, size: PoolSize) -> Result<Db, DbError> {
        let Some(backend) = Backend::of_url(url) else {
            return Err(DbError::UnsupportedUrl(without_password(url)));
        };
        sqlx::any::install_default_drivers();
        let opened = match backend {
            Backend::Sqlite => Db::open_sqlite(url, size).await,
            Backend::Postgres => Db::open_postgres(url, size).await,
        };
        opened.map_err(|error| match error {
            DbError::Sqlx(source) => DbError::Open {
                url: without_password(url),
                source,
            },
            other => other,
        })
    }

    async fn open_sqlite(url: &str, size: PoolSize) -> Result<Db, DbError> {
        let base = SqliteConnectOptions::from_str(url)?;
        let file = Some(base.clone().get_filename().to_path_buf())
            .filter(|file| !file.as_os_str().is_empty() && file.as_os_str() != ":memory:");
        if !base.clone().get_filename().exists() {
            create_with_incremental_vacuum(base.create_if_missing(true)).await?;
        }
        // Per connection; WAL itself is kept in the file.
        let options = || {
            AnyPoolOptions::new().after_connect(|conn, _| {
                Box::pin(async move {
                    for pragma in [
                        "PRAGMA journal_mode = WAL",
                        "PRAGMA synchronous = NORMAL",
                        "PRAGMA foreign_keys = ON",
                        "PRAGMA busy_timeout = 10000",
                    ] {
                        conn.execute(pragma).await?;
                    }
                    Ok(())
                })
            })
        };
        let writer = options()
            .max_connections(1)
            .acquire_timeout(WRITE_QUEUE_TIMEOUT)
            .connect(url)
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let pool = options()
            .max_connections(size.readers.max(1))
            .acquire_timeout(size.acquire_timeout)
            .connect(url)
            .await?;
        Ok(Db {
            backend: Backend::Sqlite,
            pool,
            writer,
            file,
            url: None,
            users: Arc::new(RwLock::new(())),
        })
    }

    async fn open_postgres(url: &str, size: PoolSize) -> Result<Db, DbError> {
        let pool = AnyPoolOptions::new()
            .max_connections(size.readers.max(2))
            .acquire_timeout(size.acquire_timeout)
            .connect(url)
            .await?;
        // Nodes starting together take turns: sqlx holds an advisory lock
        // while it migrates.
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Db {
            backend: Backend::Postgres,
            writer: pool.clone(),
            pool,
            file: None,
            url: Some(url.to_owned()),
            users: Arc::new(RwLock::new(())),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Keeps the pools open past Rocket's shutdown until the hold is
    /// dropped. Rocket runs its shutdown fairings at the same time, so the
    /// runner, still recording the jobs it drains, holds the database open
    /// against the fairing that closes it.
    pub async fn hold_open(&self) -> OpenHold {
        OpenHold(self.users.clone().read_owned().await)
    }

    /// Begins a write transaction that holds SQLite's write lock from its
    /// first statement on, as `BEGIN IMMEDIATE` would (sqlx 0.7 only issues
    /// a deferred `BEGIN`). A deferred transaction that reads and then
    /// writes fails at once with "database is locked" (SQLITE_BUSY, no
    /// busy timeout) whenever another connection writes in between, which
    /// the job runner and concurrent requests do all the time. Taking the
    /// lock first makes it wait for the busy timeout like any other writer
    /// (within berth writers queue for `writer`; the CLI is another process).
    /// On PostgreSQL a plain transaction: row locks and constraints do
    /// what the file lock does here.
    pub async fn begin(&self) -> Result<Tx<'_>, DbError> {
        let mut tx = self.writer.begin().await?;
        if self.backend == Backend::Sqlite {
            sqlx::query("UPDATE containers SET seq = seq WHERE 0")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// A file beside the database: `<database file><suffix>`.
    pub fn beside(&self, suffix: &str) -> Option<PathBuf> {
        let file = self.file.as_ref()?;
        let mut name = file.file_name()?.to_owned();
        name.push(suffix);
        Some(file.with_file_name(name))
    }

    /// Connections for reads.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The connection for writes outside `begin`'s transactions. Never
    /// acquire it while holding it or a transaction: there is only one.
    pub async fn writer(&self) -> Result<PoolConnection<Any>, DbError> {
        Ok(self.writer.acquire().await?)
    }

    /// Closes both pools once every `OpenHold` is dropped.
    pub async fn close(&self) {
        let _no_holders = self.users.write().await;
        self.writer.close().await;
        self.pool.close().await;
    }

    /// How the file's pages are used, for deciding whether to give some
    /// back; `None` on PostgreSQL, whose autovacuum looks after its own.
    pub async fn space(&self) -> Result<Option<Space>, DbError> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        let mut conn = self.pool.acquire().await?;
        let page_size = pragma_value(&mut conn, "page_size").await?;
        let pages = pragma_value(&mut conn, "page_count").await?;
        let free_pages = pragma_value(&mut conn, "freelist_count").await?;
        let auto_vacuum = pragma_value(&mut conn, "auto_vacuum").await?;
        Ok(Some(Space {
            page_size: page_size as u64,
            pages: pages as u64,
            free_pages: free_pages as u64,
            incremental: auto_vacuum == 2,
        }))
    }

    /// Returns up to `pages` free pages to the file system (a database made
    /// with incremental auto-vacuum; a no-op on others). One short write
    /// transaction; returns how many pages were freed.
    pub async fn release_free_pages(&self, pages: u32) -> Result<u64, DbError> {
        let mut conn = self.writer().await?;
        let before = pragma_value(&mut conn, "freelist_count").await?;
        sqlx::query(&format!("PRAGMA incremental_vacuum({pages})"))
            .execute(&mut *conn)
            .await?;
        let after = pragma_value(&mut conn, "freelist_count").await?;
        Ok(before.saturating_sub(after) as u64)
    }

    /// Copies the write-ahead log into the database and truncates it, so a
    /// large prune does not leave a large `-wal` file behind. Best effort:
    /// readers in the middle of a query make it stop early.
    pub async fn checkpoint(&self) -> Result<(), DbError> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

/// Rocket's way in: `BerthDb::init()` opens the database from the
/// `[databases.berth]` settings, and `Connection<BerthDb>` is a read
/// connection.
#[rocket::async_trait]
impl rocket_db_pools::Pool for Db {
    type Connection = PoolConnection<Any>;
    type Error = DbError;

    async fn init(figment: &Figment) -> Result<Self, DbError> {
        let config: rocket_db_pools::Config = figment
            .extract()
            .map_err(|e| DbError::Config(e.to_string()))?;
        let size = PoolSize {
            readers: u32::try_from(config.max_connections).unwrap_or(u32::MAX),
            acquire_timeout: Duration::from_secs(config.connect_timeout),
        };
        Db::open_with(&config.url, size).await
    }

    async fn get(&self) -> Result<Self::Connection, DbError> {
        Ok(self.pool.acquire().await?)
    }

    async fn close(&self) {
        Db::close(self).await
    }
}

/// `url` fit for a log: any password replaced by `***`.
fn without_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

async fn pragma_value(conn: &mut AnyConnection, pragma: &str) -> Result<i64, DbError> {
    Ok(sqlx::query(&format!("PRAGMA {pragma}"))
        .fetch_one(conn)
        .await?
        .try_get(0)?)
}

/// Page use of the database file.
#[derive(Debug, Clone, Copy)]
pub struct Space {
    pub page_size: u64,
    pub pages: u64,
    pub free_pages: u64,
    /// Whether free pages can be given back without a full VACUUM.
    pub incremental: bool,
}

/// Creates a new database file with incremental auto-vacuum, so pages that
/// retention frees can be given back to the file system. The mode is fixed
/// when the file is first written, and it must be set before WAL is (which
/// sqlx's own pragma order would not do).
async fn create_with_incremental_vacuum(options: SqliteConnectOptions) -> Result<(), DbError> {
    let mut conn = options
        .auto_vacuum(SqliteAutoVacuum::Incremental)
        .connect()
        .await?;
    sqlx::query("PRAGMA journal_mode = WAL")
        .execute(&mut conn)
        .await?;
    conn.close().await?;
    Ok(())
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

/// Builds a query whose conditions depend on the request, numbering its
/// placeholders `$1`, `$2`… as both backends read them (sqlx's own
/// `QueryBuilder` writes `?` for `Any`, which PostgreSQL refuses).
pub(crate) struct QueryBuilder {
    sql: String,
    arguments: AnyArguments<'static>,
    count: usize,
}

impl QueryBuilder {
    pub(crate) fn new(sql: impl Into<String>) -> Self {
        QueryBuilder {
            sql: sql.into(),
            arguments: AnyArguments::default(),
            count: 0,
        }
    }

    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    pub(crate) fn push_bind<T>(&mut self, value: T) -> &mut Self
    where
        T: 'static + sqlx::Encode<'static, Any> + sqlx::Type<Any> + Send,
    {
        self.count += 1;
        self.sql.push('$');
        self.sql.push_str(&self.count.to_string());
        // As sqlx's own builder does: the values berth binds (text and
        // integers) always encode.
        self.arguments
            .add(value)
            .expect("a text or integer value encodes");
        self
    }

    pub(crate) fn build(&mut self) -> sqlx::query::Query<'_, Any, AnyArguments<'_>> {
        sqlx::query_with(&self.sql, std::mem::take(&mut self.arguments))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_url_never_shows_its_password() {
        assert_eq!(
            without_password("postgres://berth:s3cret@db:5432/berth"),
            "postgres://berth:***@db:5432/berth"
        );
        assert_eq!(
            without_password("postgres://berth@db/berth"),
            "postgres://berth@db/berth"
        );
        assert_eq!(
            without_password("sqlite:///var/lib/berth/berth.db"),
            "sqlite:///var/lib/berth/berth.db"
        );
    }

    #[tokio::test]
    async fn unknown_backends_are_refused_and_failures_name_the_database() {
        let error = Db::open("mysql://u:pw@localhost/x").await.err().unwrap();
        assert!(
            matches!(error, DbError::UnsupportedUrl(ref url) if url == "mysql://u:***@localhost/x")
        );
        let error = Db::open("sqlite:///nonexistent-dir/berth.db")
            .await
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("/nonexistent-dir/berth.db"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_postgresql_is_a_clear_error_without_the_password() {
        // Nothing listens on port 1 of the loopback.
        let size = PoolSize {
            readers: 2,
            acquire_timeout: Duration::from_secs(1),
        };
        let error = Db::open_with("postgres://berth:s3cret@127.0.0.1:1/berth", size)
            .await
            .err()
            .unwrap();
        let said = error.to_string();
        assert!(matches!(error, DbError::Open { .. }), "{said}");
        assert!(
            said.contains("postgres://berth:***@127.0.0.1:1/berth"),
            "{said}"
        );
        assert!(!said.contains("s3cret"), "{said}");
    }

    #[tokio::test]
    async fn a_database_from_a_newer_berth_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let db = Db::open(&url).await.unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (9999, 'from the future', TRUE, X'00', 0)",
        )
        .execute(&mut *db.writer().await.unwrap())
        .await
        .unwrap();
        db.close().await;
        let error = Db::open(&url).await.err().unwrap();
        assert!(matches!(error, DbError::SchemaNewer(9999)), "{error}");
        assert!(error.to_string().contains("Upgrade berth"), "{error}");
    }

    #[tokio::test]
    async fn close_waits_for_those_holding_the_database_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        let hold = db.hold_open().await;
        let closing = tokio::spawn({
            let db = db.clone();
            async move { db.close().await }
        });
        tokio::task::yield_now().await;
        // Still usable while held, as the draining runner needs it.
        sqlx::query("SELECT 1")
            .execute(&mut *db.writer().await.unwrap())
            .await
            .unwrap();
        assert!(!closing.is_finished());
        drop(hold);
        closing.await.unwrap();
        assert!(db.pool().is_closed());
    }
}
