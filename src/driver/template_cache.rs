//! Unpacked templates kept under `<lxc_path>/.template-cache/`, so that the
//! second and later containers from a template are copied from a prepared
//! tree (by several threads, reflinked where the file system can) instead
//! of unpacked again.
//!
//! Layout, one directory per template file:
//!
//! ```text
//! .template-cache/                 0700: setuid files inside stay out of reach
//!   busybox.tar.gz/
//!     <key>/                       the unpacked tree, published by rename
//!     <key>.bytes                  bytes of file data in it (copy progress)
//!     .partial-<key>/              a fill in progress, or left by a crash
//! ```
//!
//! The key is a digest of the template file's device, inode, size and mtime,
//! so replacing or rewriting the file gives a new key; filling a new
//! key removes every other entry of that template. Within one berth (one
//! per LXC path) a lock per template lets copies share an entry while a
//! fill or removal has it alone.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{OwnedRwLockReadGuard, RwLock};

use super::files::{create_dir, remove_path, rename};
use super::{tree_copy, unpack, DriverError, StepLog, TemplateSource};

/// Part of every key: bump it when the way trees are unpacked changes, so
/// entries made the old way are not used.
const LAYOUT_VERSION: &str = "1";

/// How often a waiting or copying step looks for a cancel and reports
/// progress.
const POLL: Duration = Duration::from_millis(100);

/// Threads copying a tree out of the cache (at most one per CPU). Creating
/// files dominates a copy, and parallel creates scale on ext4.
const MAX_COPY_THREADS: usize = 4;

pub struct TemplateCache {
    root: PathBuf,
    /// Each entry is a btrfs subvolume (a btrfs pool's cache), so that a
    /// container's root filesystem can be a snapshot of it.
    subvolumes: bool,
    /// Template file name → its lock. Copies hold it shared, fills and
    /// removals exclusively. Entries are never removed: one per template.
    locks: Mutex<HashMap<String, Arc<RwLock<()>>>>,
}

/// A prepared tree, kept from removal while this value lives.
pub struct PreparedTree {
    path: PathBuf,
    /// Bytes of file data in the tree, when known.
    bytes: Option<u64>,
    filled: bool,
    _shared: OwnedRwLockReadGuard<()>,
}

impl TemplateCache {
    pub fn new(root: PathBuf) -> Self {
        TemplateCache {
            root,
            subvolumes: false,
            locks: Mutex::default(),
        }
    }

    /// A cache whose entries are btrfs subvolumes.
    pub fn of_subvolumes(root: PathBuf) -> Self {
        TemplateCache {
            subvolumes: true,
            ..TemplateCache::new(root)
        }
    }

    /// Removes the fills a crash cut off (`<template>/.partial-<key>`).
    /// Called at start, before any fill can run; returns what it removed.
    pub fn remove_partial_fills(&self) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        let Ok(templates) = std::fs::read_dir(&self.root) else {
            return removed;
        };
        for template in templates.flatten() {
            let Ok(entries) = std::fs::read_dir(template.path()) else {
                continue;
            };
            for entry in entries.flatten() {
                let is_partial = entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| name.starts_with(".partial-"));
                if !is_partial {
                    continue;
                }
                let path = entry.path();
                let gone = if path.is_dir() && !path.is_symlink() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                match gone {
                    Ok(()) => removed.push(path),
                    Err(error) => {
                        log::warn!("cannot remove {}: {error}", path.display())
                    }
                }
            }
        }
        removed
    }

    fn lock_of(&self, name: &str) -> Arc<RwLock<()>> {
        self.locks
            .lock()
            .expect("template cache locks")
            .entry(name.to_owned())
            .or_default()
            .clone()
    }

    /// The prepared tree of this version of `template`, unpacking it into
    /// the cache first when there is none. Progress is that of the unpack.
    pub async fn prepare(
        &self,
        template: &TemplateSource,
        log: &dyn StepLog,
    ) -> Result<PreparedTree, DriverError> {
        let name = template
            .path
            .file_name()
            .and_then(OsStr::to_str)
            .ok_or_else(|| {
                DriverError::io(
                    format!("template {}", template.path.display()),
                    std::io::Error::other("the file name is not UTF-8"),
                )
            })?
            .to_owned();
        // The key comes from the open file, and a fill unpacks that same
        // file, so an entry always holds what its key names.
        let file = unpack::open(template)?;
        let key = key_of(&metadata(&file, template)?);
        let dir = self.root.join(&name);
        let tree = dir.join(&key);
        let lock = self.lock_of(&name);

        let shared = wait_for(lock.clone().read_owned(), log).await?;
        if tree.is_dir() {
            log.step(format!(
                "template cache: using the prepared tree of {name} ({})",
                tree.display()
            ));
            return Ok(PreparedTree {
                bytes: read_bytes(&dir, &key),
                path: tree,
                filled: false,
                _shared: shared,
            });
        }
        drop(shared);
        let exclusive = wait_for(lock.write_owned(), log).await?;
        // Another create may have filled it while this one waited.
        let filled = if tree.is_dir() {
            log.step(format!(
                "template cache: using the prepared tree of {name} ({})",
                tree.display()
            ));
            false
        } else {
            self.fill(template, file, &name, &dir, &key, log).await?;
            true
        };
        Ok(PreparedTree {
            bytes: read_bytes(&dir, &key),
            path: tree,
            filled,
            _shared: exclusive.downgrade(),
        })
    }

    /// Unpacks `file` into a new entry. Called with the template's lock held
    /// exclusively.
    async fn fill(
        &self,
        template: &TemplateSource,
        file: std::fs::File,
        name: &str,
        dir: &Path,
        key: &str,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        if !self.root.is_dir() {
            std::fs::create_dir_all(&self.root)
                .and_then(|()| {
                    use std::os::unix::fs::PermissionsExt;
                    std::fs::set_permissions(&self.root, std::fs::Permissions::from_mode(0o700))
                })
                .map_err(|e| {
                    DriverError::io(format!("cannot create {}", self.root.display()), e)
                })?;
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| DriverError::io(format!("cannot create {}", dir.display()), e))?;
        // Older versions of this template, and fills a crash cut off.
        remove_all_but(dir, key).await?;
        self.forget_removed_templates(template, name).await;

        let partial = dir.join(format!(".partial-{key}"));
        let tree = dir.join(key);
        if self.subvolumes {
            super::storage::btrfs::create_subvolume(&partial, log).await?;
        } else {
            create_dir(&partial, 0o755)?;
        }
        log.step(format!(
            "template cache: unpacking {} once into {}; later containers from it are copied from there",
            template.path.display(),
            tree.display()
        ));
        let check = file
            .try_clone()
            .map_err(|e| DriverError::io("cannot duplicate the template's file handle", e))?;
        let published = async {
            unpack::unpack(template, file, &partial, log).await?;
            if key_of(&metadata(&check, template)?) != key {
                return Err(DriverError::TemplateChanged {
                    path: template.path.clone(),
                });
            }
            let bytes = file_bytes_blocking(partial.clone()).await?;
            let sidecar = dir.join(format!("{key}.bytes"));
            std::fs::write(&sidecar, bytes.to_string())
                .map_err(|e| DriverError::io(format!("cannot write {}", sidecar.display()), e))?;
            // Every later container is copied from this tree: it must be on
            // disk whole before it is published, or a crash could leave
            // empty files in it for good.
            sync_file_system(&partial).await?;
            rename(&partial, &tree)
        }
        .await;
        if published.is_err() {
            let _ = remove_path(&partial).await;
        }
        published
    }

    /// Removes the entries of templates whose file is gone from the template
    /// directory; an entry being copied from is left for a later fill.
    async fn forget_removed_templates(&self, template: &TemplateSource, current: &str) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for entry in entries.flatten() {
            let Some(other) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if other == current || template.path.with_file_name(&other).exists() {
                continue;
            }
            if let Ok(_exclusive) = self.lock_of(&other).try_write_owned() {
                if let Err(error) = remove_path(&entry.path()).await {
                    log::warn!("template cache: {error}");
                }
            }
        }
    }
}

impl PreparedTree {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this call unpacked the template (the first create from it).
    pub fn filled(&self) -> bool {
        self.filled
    }

    /// Copies the tree to `dest`, which must not exist, keeping everything
    /// tar restored (see `tree_copy`). A granted cancel stops the copy; the
    /// caller removes what it left.
    pub async fn copy_to(&self, dest: &Path, log: &dyn StepLog) -> Result<(), DriverError> {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, MAX_COPY_THREADS);
        log.step(format!(
            "copying the prepared tree to {} ({threads} threads)",
            dest.display()
        ));
        let progress = Arc::new(tree_copy::Progress::default());
        let copy = {
            let (source, dest, progress) = (self.path.clone(), dest.to_owned(), progress.clone());
            tokio::task::spawn_blocking(move || {
                tree_copy::copy_tree(&source, &dest, threads, &progress)
            })
        };
        tokio::pin!(copy);
        let mut reported = 0u8;
        log.enter_cancellable();
        let copied = loop {
            tokio::select! {
                copied = &mut copy => break copied,
                () = tokio::time::sleep(POLL) => {
                    if log.cancel_requested() {
                        progress.cancel.store(true, Ordering::Relaxed);
                    }
                    if let Some(total) = self.bytes {
                        let done = progress.bytes.load(Ordering::Relaxed);
                        let percent = (done.saturating_mul(100) / total.max(1)).min(99) as u8;
                        if percent > reported {
                            reported = percent;
                            log.progress(percent);
                        }
                    }
                }
            }
        };
        let cancelled = log.leave_cancellable();
        let completed = copied
            .unwrap_or_else(|e| Err(std::io::Error::other(e)))
            .map_err(|e| DriverError::io("copying the prepared tree", e))?;
        if cancelled || !completed {
            return Err(DriverError::Cancelled);
        }
        log.progress(100);
        Ok(())
    }
}

/// Waits for a lock, giving up if a cancel is granted meanwhile (nothing
/// has been built yet, so waiting can stop at any time).
async fn wait_for<G>(
    lock: impl std::future::Future<Output = G>,
    log: &dyn StepLog,
) -> Result<G, DriverError> {
    tokio::pin!(lock);
    log.enter_cancellable();
    let guard = loop {
        tokio::select! {
            guard = &mut lock => break Some(guard),
            () = tokio::time::sleep(POLL) => {
                if log.cancel_requested() {
                    break None;
                }
            }
        }
    };
    match (log.leave_cancellable(), guard) {
        (false, Some(guard)) => Ok(guard),
        _ => Err(DriverError::Cancelled),
    }
}

fn metadata(
    file: &std::fs::File,
    template: &TemplateSource,
) -> Result<std::fs::Metadata, DriverError> {
    file.metadata().map_err(|e| {
        DriverError::io(
            format!("cannot stat template {}", template.path.display()),
            e,
        )
    })
}

/// Names one version of a template file: a replaced file (new inode) or a
/// rewritten one (new size or mtime) gets a new key. Not the ctime: a new
/// hard link, chmod or chown changes it without changing a byte, and a
/// create must not fail because a backup tool touched the file's inode.
fn key_of(meta: &std::fs::Metadata) -> String {
    let facts = format!(
        "{LAYOUT_VERSION} {} {} {} {}.{:09}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
    );
    hex::encode(&Sha256::digest(facts.as_bytes())[..8])
}

fn read_bytes(dir: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(dir.join(format!("{key}.bytes")))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Removes everything in a template's cache directory but entry `key`.
async fn remove_all_but(dir: &Path, key: &str) -> Result<(), DriverError> {
    let sidecar = format!("{key}.bytes");
    let entries = std::fs::read_dir(dir)
        .map_err(|e| DriverError::io(format!("cannot read {}", dir.display()), e))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name != OsStr::new(key) && name != OsStr::new(&sidecar) {
            remove_path(&entry.path()).await?;
        }
    }
    Ok(())
}

/// Bytes of regular-file data under `root`.
async fn file_bytes_blocking(root: PathBuf) -> Result<u64, DriverError> {
    let shown = root.display().to_string();
    tokio::task::spawn_blocking(move || file_bytes(&root))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
        .map_err(|e| DriverError::io(format!("measuring {shown}"), e))
}

fn file_bytes(root: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                total += entry.metadata()?.len();
            }
        }
    }
    Ok(total)
}

/// Flushes the file system holding `path` to disk.
async fn sync_file_system(path: &Path) -> Result<(), DriverError> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let dir = std::fs::File::open(&owned)?;
        rustix::fs::syncfs(&dir).map_err(std::io::Error::from)
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    .map_err(|e| DriverError::io(format!("cannot sync {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::os_template::TemplateFormat;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[derive(Default)]
    struct TestLog {
        cancel: AtomicBool,
        /// Grants a cancel once a line starting with this is logged.
        cancel_at: Option<&'static str>,
        lines: Mutex<Vec<String>>,
    }

    impl StepLog for TestLog {
        fn step(&self, text: String) {
            if self.cancel_at.is_some_and(|start| text.starts_with(start)) {
                self.cancel.store(true, Ordering::SeqCst);
            }
            self.lines.lock().unwrap().push(text);
        }
        fn progress(&self, _: u8) {}
        fn enter_cancellable(&self) {}
        fn leave_cancellable(&self) -> bool {
            self.cancel.load(Ordering::SeqCst)
        }
        fn cancel_requested(&self) -> bool {
            self.cancel.load(Ordering::SeqCst)
        }
    }

    /// A small .tar.gz with a file, a symlink and a subdirectory.
    fn make_template(dir: &Path, marker: &str) -> TemplateSource {
        let tree = dir.join("tree");
        let _ = std::fs::remove_dir_all(&tree);
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        std::fs::write(tree.join("etc/marker"), marker).unwrap();
        std::os::unix::fs::symlink("etc/marker", tree.join("link")).unwrap();
        let staged = dir.join("t.tar.gz.new");
        let status = std::process::Command::new("tar")
            .arg("-C")
            .arg(&tree)
            .args(["--numeric-owner", "-czf"])
            .arg(&staged)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        let path = dir.join("templates/t.tar.gz");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::rename(&staged, &path).unwrap();
        TemplateSource {
            path,
            format: TemplateFormat::TarGz,
        }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn the_first_prepare_fills_and_later_ones_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let template = make_template(dir.path(), "one");
        let cache = TemplateCache::new(dir.path().join("cache"));
        let log = TestLog::default();
        let first = cache.prepare(&template, &log).await.unwrap();
        assert!(first.filled());
        let first_path = first.path().to_owned();
        drop(first);
        let second = cache.prepare(&template, &log).await.unwrap();
        assert!(!second.filled());
        assert_eq!(second.path(), first_path);
        assert_eq!(second.bytes, Some(3));
        let dest = dir.path().join("copy");
        second.copy_to(&dest, &log).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("etc/marker")).unwrap(),
            "one"
        );
        assert_eq!(
            std::fs::read_link(dest.join("link")).unwrap(),
            Path::new("etc/marker")
        );
        let lines = log.lines.lock().unwrap();
        assert!(lines
            .iter()
            .any(|l| l.starts_with("template cache: unpacking")));
        assert!(lines.iter().any(|l| l.starts_with("template cache: using")));
    }

    #[tokio::test]
    async fn a_replaced_template_gets_a_new_entry_and_the_old_one_goes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TemplateCache::new(dir.path().join("cache"));
        let log = TestLog::default();
        let template = make_template(dir.path(), "one");
        let old = cache
            .prepare(&template, &log)
            .await
            .unwrap()
            .path()
            .to_owned();
        let template = make_template(dir.path(), "two");
        let new = cache.prepare(&template, &log).await.unwrap();
        assert!(new.filled());
        assert_ne!(new.path(), old);
        assert!(!old.exists());
        assert_eq!(
            std::fs::read_to_string(new.path().join("etc/marker")).unwrap(),
            "two"
        );
        let key = new
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert_eq!(
            entries(&dir.path().join("cache/t.tar.gz")),
            vec![key.clone(), format!("{key}.bytes")]
        );
    }

    #[tokio::test]
    async fn concurrent_prepares_fill_once() {
        let dir = tempfile::tempdir().unwrap();
        let template = make_template(dir.path(), "one");
        let cache = TemplateCache::new(dir.path().join("cache"));
        let log = TestLog::default();
        let prepared =
            futures::future::join_all((0..4).map(|_| cache.prepare(&template, &log))).await;
        let filled = prepared
            .iter()
            .filter(|p| p.as_ref().unwrap().filled())
            .count();
        assert_eq!(filled, 1);
        assert_eq!(entries(&dir.path().join("cache/t.tar.gz")).len(), 2);
    }

    #[tokio::test]
    async fn a_cancelled_fill_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let template = make_template(dir.path(), "one");
        let cache = TemplateCache::new(dir.path().join("cache"));
        let log = TestLog {
            cancel_at: Some("template cache: unpacking"),
            ..TestLog::default()
        };
        assert!(matches!(
            cache.prepare(&template, &log).await,
            Err(DriverError::Cancelled)
        ));
        assert!(entries(&dir.path().join("cache/t.tar.gz")).is_empty());
        // The next create fills it.
        let log = TestLog::default();
        assert!(cache.prepare(&template, &log).await.unwrap().filled());
    }

    #[tokio::test]
    async fn entries_of_removed_templates_are_forgotten_at_the_next_fill() {
        let dir = tempfile::tempdir().unwrap();
        let cache = TemplateCache::new(dir.path().join("cache"));
        let log = TestLog::default();
        let template = make_template(dir.path(), "one");
        drop(cache.prepare(&template, &log).await.unwrap());
        let moved = template.path.with_file_name("u.tar.gz");
        std::fs::rename(&template.path, &moved).unwrap();
        let other = TemplateSource {
            path: moved,
            format: TemplateFormat::TarGz,
        };
        drop(cache.prepare(&other, &log).await.unwrap());
        assert_eq!(entries(&dir.path().join("cache")), vec!["u.tar.gz"]);
    }
}
