//! The `btrfs` tool as the btrfs pool uses it: subvolumes, snapshots and
//! quota group limits.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::args;
use crate::driver::command::{run, run_unchecked};
use crate::driver::{DriverError, StepLog};

const BTRFS_SUPER_MAGIC: u64 = 0x9123_683E;

/// The root directory of every btrfs subvolume has this inode number.
const SUBVOLUME_ROOT_INODE: u64 = 256;

/// Whether `path` is on a btrfs file system, or why not.
pub fn check_path(path: &Path) -> Result<(), String> {
    let stat = rustix::fs::statfs(path).map_err(|e| format!("{}: {e}", path.display()))?;
    #[allow(clippy::unnecessary_cast)]
    if stat.f_type as u64 != BTRFS_SUPER_MAGIC {
        return Err(format!(
            "{} is not on a btrfs file system (a btrfs pool needs one: mkfs.btrfs, then mount it there)",
            path.display()
        ));
    }
    Ok(())
}

/// Whether `path` is the root of a btrfs subvolume.
pub fn is_subvolume(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .is_ok_and(|meta| meta.is_dir() && meta.ino() == SUBVOLUME_ROOT_INODE)
}

pub async fn create_subvolume(path: &Path, log: &dyn StepLog) -> Result<(), DriverError> {
    run("btrfs", args!["subvolume", "create", path], Some(log))
        .await
        .map(drop)
}

/// A snapshot of the subvolume `source` at `dest`: read-only or writable.
/// One metadata operation, whatever the size of the tree.
pub async fn snapshot(
    source: &Path,
    dest: &Path,
    read_only: bool,
    log: &dyn StepLog,
) -> Result<(), DriverError> {
    if read_only {
        run(
            "btrfs",
            args!["subvolume", "snapshot", "-r", source, dest],
            Some(log),
        )
        .await
    } else {
        run(
            "btrfs",
            args!["subvolume", "snapshot", source, dest],
            Some(log),
        )
        .await
    }
    .map(drop)
}

/// Deletes the subvolume at `path` (and anything not a subvolume that a
/// crash left there); nothing there is success.
pub async fn delete(path: &Path, log: Option<&dyn StepLog>) -> Result<(), DriverError> {
    if std::fs::symlink_metadata(path).is_err() {
        return Ok(());
    }
    if !is_subvolume(path) {
        return crate::driver::files::remove_path(path).await;
    }
    // `--commit-after`: the space is given back before the job ends, so the
    // pool's usage shows it.
    run(
        "btrfs",
        args!["subvolume", "delete", "--commit-after", path],
        log,
    )
    .await
    .map(drop)
}

/// Turns quotas on for the file system of `pool` (nothing if they are on).
pub async fn enable_quota(pool: &Path, log: &dyn StepLog) -> Result<(), DriverError> {
    run("btrfs", args!["quota", "enable", pool], Some(log))
        .await
        .map(drop)
}

/// Limits what the subvolume at `path` refers to (its own data and what it
/// shares with the template it was made from) to `bytes`, or lifts the
/// limit. Takes effect at once, on a running container too.
pub async fn limit(path: &Path, bytes: Option<u64>, log: &dyn StepLog) -> Result<(), DriverError> {
    let value = bytes.map_or_else(|| "none".to_owned(), |b| b.to_string());
    let limited = run_unchecked("btrfs", args!["qgroup", "limit", value, path], Some(log)).await?;
    if limited.status.success() {
        return Ok(());
    }
    // Lifting a limit where quotas were never on has nothing to lift.
    if bytes.is_none() {
        return Ok(());
    }
    Err(crate::driver::command::failure(
        "btrfs",
        args!["qgroup", "limit", value, path],
        &limited,
    ))
}
