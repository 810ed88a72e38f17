//! Every test of tests/in_process.rs once more, with berth's data in
//! PostgreSQL (a server each test starts for itself, see tests/pg) instead
//! of SQLite: one code path, two backends.

/// The database the in-process berths of this binary use (see tests/local).
const DATABASE: suite::local::Database = suite::local::Database::Postgres;

#[path = "in_process.rs"]
mod suite;
