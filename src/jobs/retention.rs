//! Forgetting finished jobs once their retention has passed, so the
//! database does not grow without bound, and giving the space back to the
//! file system after a large prune.

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
/// Free pages given back per transaction (16 MiB of 4 KiB pages): keeps
/// each write lock short.
const RELEASE_CHUNK: u32 = 4096;
/// Free pages are reused by new rows anyway; they are given back only once
/// they are more than this share of the file (1/8), so the hourly sweep
/// does not shrink and regrow the file for an hour's worth of jobs.
const RELEASE_ABOVE_EIGHTHS: u64 = 1;

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
    if removed > 0 {
        let released = give_back_space(db).await?;
        if released > 0 {
            log::info!(
                "retention: gave {} MiB of freed database pages back to the file system",
                released >> 20
            );
        }
    }
    Ok(removed)
}

/// Truncates the database file by its free pages when they are a large
/// share of it (databases made by berth use incremental auto-vacuum; older
/// ones keep reusing their free pages instead; PostgreSQL's autovacuum
/// does this on its own). Returns the bytes given back.
async fn give_back_space(db: &Db) -> Result<u64, DbError> {
    let Some(space) = db.space().await? else {
        return Ok(0);
    };
    if !space.incremental || space.free_pages * 8 <= space.pages * RELEASE_ABOVE_EIGHTHS {
        return Ok(0);
    }
    let mut released = 0;
    loop {
        let freed = db.release_free_pages(RELEASE_CHUNK).await?;
        released += freed;
        if freed < u64::from(RELEASE_CHUNK) {
            break;
        }
    }
    // The file shrinks when the log is copied back; do it now rather than
    // leave a -wal file as large as what was freed.
    db.checkpoint().await?;
    Ok(released * space.page_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::jobs::NewJob;
    use crate::domain::job::{JobAction, JobStatus};

    #[tokio::test]
    async fn a_large_prune_gives_the_freed_pages_back() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("berth.db").display());
        let db = Db::open(&url).await.unwrap();
        assert!(db.space().await.unwrap().unwrap().incremental);

        let long_ago = time::now() - chrono::Duration::days(400);
        let mut tx = db.begin().await.unwrap();
        for _ in 0..2000 {
            let job = NewJob {
                entity_id: uuid::Uuid::new_v4(),
                action: JobAction::Start,
                payload: None,
                requested_by: None,
            };
            let job = job_rows::insert(&mut tx, &job, long_ago).await.unwrap();
            job_rows::append_log(&mut tx, job.seq, long_ago, &"x".repeat(400))
                .await
                .unwrap();
            job_rows::finish(&mut tx, job.id, JobStatus::Done, None, long_ago)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
        let before = db.space().await.unwrap().unwrap();

        let removed = sweep(&db, Duration::from_secs(30 * 86_400)).await.unwrap();
        assert_eq!(removed, 2000);
        let after = db.space().await.unwrap().unwrap();
        assert_eq!(after.free_pages, 0, "{after:?}");
        assert!(after.pages * 4 < before.pages, "{before:?} -> {after:?}");
    }
}
