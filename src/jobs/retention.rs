//! Forgetting finished jobs once their retention has passed, so the
//! database does not grow without bound.

use std::time::Duration;

use tokio::sync::watch;

use crate::db::{containers, idempotency, jobs as job_rows, Db, DbError};
use crate::domain::time;

/// How often expired jobs are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);
/// Jobs removed per transaction: short write locks for the API meanwhile.
const BATCH: u32 = 5000;
/// How long an Idempotency-Key is remembered.
const KEY_LIFETIME: chrono::Duration = chrono::Duration::hours(24);

/// Sweeps at start and then hourly, until `stop` turns true.
pub async fn run(db: Db, retention: Duration, mut stop: watch::Receiver<bool>) {
    loop {
        match sweep(&db, retention).await {
            Ok(0) => {}
            Ok(removed) => log::info!(
                "retention: removed {removed} jobs finished over {} days ago",
                retention.as_secs() / 86400
            ),
            Err(error) => log::error!("retention: {error}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Removes jobs finished before the retention period, their logs, deleted
/// containers no job refers to any more, and expired idempotency keys.
pub async fn sweep(db: &Db, retention: Duration) -> Result<u64, DbError> {
    let retention = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let cutoff = time::now()
        .checked_sub_signed(retention)
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    let mut removed = 0;
    loop {
        let mut tx = db.begin().await?;
        let batch = job_rows::prune_finished(&mut tx, cutoff, BATCH).await?;
        tx.commit().await?;
        removed += batch;
        if batch < u64::from(BATCH) {
            break;
        }
    }
    let mut tx = db.begin().await?;
    containers::prune_deleted(&mut tx).await?;
    idempotency::prune(&mut tx, time::now() - KEY_LIFETIME).await?;
    tx.commit().await?;
    Ok(removed)
}
