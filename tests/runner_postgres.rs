//! Every test of tests/runner.rs once more, with the runner's queue in
//! PostgreSQL (a server each test starts for itself, see tests/pg): the
//! claim, recovery and cancel paths on the second backend.

/// The database this binary's tests use (see tests/local).
const DATABASE: suite::local::Database = suite::local::Database::Postgres;

#[path = "runner.rs"]
mod suite;
