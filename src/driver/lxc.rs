//! The LXC driver: root filesystems made from templates (a directory, or
//! an ext4 image on a loop device when a disk size is set) through the
//! template cache, configs written by berth, and the `lxc-*` tools run with
//! `-P <lxc_path>`.

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::command::{
    self, failure, require, run, run_to_end, run_unchecked, run_unchecked_to_end,
};
use super::files::{
    create_dir, create_private_dir, open_to_others, remove_path, rename, write_atomically,
    write_in_place,
};
use super::lxc_config::{self, CgroupVersion, ConfigInputs, ContainerPaths};
use super::storage::{self, btrfs, Pools, StorageDriver};
use super::template_cache::TemplateCache;
use super::usage::{parse_lxc_info, CgroupRoots, Probe, Probes, Usage};
use super::{
    backup, transfer, unpack, ContainerSpec, CriticalSteps, Driver, DriverError, Frozen,
    OutgoingFiles, ProgressRange, RunState, StepLog, TemplateSource,
};
use crate::args;
use crate::domain::backup::BackupKind;
use crate::domain::parameters::{ContainerSettings, IpAddress};

/// How long `lxc-start` may take to report the container running.
const START_TIMEOUT_SECS: u64 = 30;

/// Where the template cache lives under the LXC path. Container names
/// start with a letter or digit, so no container can take this name.
const TEMPLATE_CACHE_DIR: &str = ".template-cache";

/// Where a btrfs pool keeps its template subvolumes.
const BTRFS_TEMPLATES_DIR: &str = "templates";

/// Share of a first create's progress that unpacking into the cache takes;
/// copying out of it takes the rest.
const FILL_SHARE: u8 = 80;

pub struct LxcDriver {
    lxc_path: PathBuf,
    bridge: String,
    cgroup: CgroupVersion,
    stop_timeout_secs: u64,
    /// `None` when turned off: every create unpacks its template.
    template_cache: Option<TemplateCache>,
    critical: CriticalSteps,
    /// Where usage counters are read; `None` when the cgroup mounts could
    /// not be found (usage is then not reported).
    cgroup_roots: Option<CgroupRoots>,
    probes: Probes,
    pools: Pools,
    /// Each usable btrfs pool's template cache (of subvolumes), by pool name.
    btrfs_caches: std::collections::HashMap<String, TemplateCache>,
}

/// Where a container's root filesystem is, by the driver of its pool.
enum Placement {
    /// In its directory under the LXC path (a tree, or an ext4 image).
    Dir,
    /// A subvolume in a btrfs pool.
    Btrfs { pool: PathBuf, rootfs: PathBuf },
}

impl LxcDriver {
    /// lxc-attach's own failure on a stopped container would read as the
    /// command's exit status: ask first.
    async fn require_running(&self, name: &str) -> Result<(), DriverError> {
        match self.state(name).await? {
            RunState::Running => Ok(()),
            RunState::Stopped | RunState::Missing => Err(DriverError::NotRunning(name.to_owned())),
        }
    }

    pub fn new(
        lxc_path: PathBuf,
        bridge: String,
        stop_timeout_secs: u64,
        template_cache: bool,
    ) -> Self {
        LxcDriver {
            pools: Pools::probe(&[]),
            btrfs_caches: Default::default(),
            template_cache: template_cache
                .then(|| TemplateCache::new(lxc_path.join(TEMPLATE_CACHE_DIR))),
            lxc_path,
            bridge,
            cgroup: CgroupVersion::detect(),
            stop_timeout_secs,
            critical: CriticalSteps::default(),
            cgroup_roots: CgroupRoots::detect(CgroupVersion::detect()),
            probes: Probes::default(),
        }
    }

    /// The same driver with these storage pools (without: one `dir` pool).
    pub fn with_pools(mut self, pools: Pools) -> Self {
        self.btrfs_caches = pools
            .all()
            .iter()
            .filter(|pool| pool.driver == StorageDriver::Btrfs && pool.unusable.is_none())
            .map(|pool| {
                let cache = TemplateCache::of_subvolumes(pool.path.join(BTRFS_TEMPLATES_DIR));
                (pool.name.clone(), cache)
            })
            .collect();
        self.pools = pools;
        self
    }

    /// Removes what a crash left in the LXC path (template cache fills and
    /// containers arriving from another node, cut off); one berth per LXC
    /// path, so nothing else is filling now. Returns what it removed.
    pub fn remove_crash_leftovers(&self) -> Vec<PathBuf> {
        let mut removed = self
            .template_cache
            .as_ref()
            .map(TemplateCache::remove_partial_fills)
            .unwrap_or_default();
        for cache in self.btrfs_caches.values() {
            removed.extend(cache.remove_partial_fills());
        }
        let arrivals = std::fs::read_dir(&self.lxc_path)
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                path.file_name()
                    .and_then(OsStr::to_str)
                    .is_some_and(|name| name.starts_with(transfer::INCOMING_PREFIX))
            });
        for path in arrivals {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => removed.push(path),
                Err(error) => log::warn!("cannot remove {}: {error}", path.display()),
            }
        }
        removed
    }

    /// Thaws the containers a crash left frozen; returns their names.
    pub fn thaw_left_frozen(&self) -> Vec<String> {
        super::freeze::thaw_left_frozen(&self.lxc_path)
    }

    /// Freezes a running container while its files are read (a consistent
    /// copy of a directory root filesystem); thaw it with `Frozen::thaw`.
    pub async fn freeze(&self, name: &str, log: &dyn StepLog) -> Result<Frozen, DriverError> {
        super::freeze::freeze(&self.lxc_path, name, log).await
    }

    /// The directories of berth's containers, and the template cache, that
    /// other users may read or enter (made by an older berth, or changed by
    /// hand).
    pub fn open_container_dirs(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.lxc_path) else {
            return Vec::new();
        };
        let mut open: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|dir| {
                let paths = ContainerPaths { dir: dir.clone() };
                let ours = paths.owner_marker().is_file()
                    || dir.file_name() == Some(OsStr::new(TEMPLATE_CACHE_DIR));
                ours && open_to_others(dir)
            })
            .collect();
        open.sort();
        open
    }

    /// Where the container's root filesystem is, from its pool.
    fn placement(&self, spec: &ContainerSpec) -> Result<Placement, DriverError> {
        match spec.storage.driver {
            StorageDriver::Dir => Ok(Placement::Dir),
            StorageDriver::Btrfs => {
                let pool = self
                    .pools
                    .get(&spec.storage.pool)
                    .filter(|pool| pool.driver == StorageDriver::Btrfs)
                    .ok_or_else(|| DriverError::PoolMissing(spec.storage.pool.clone()))?;
                if let Some(reason) = &pool.unusable {
                    return Err(DriverError::PoolUnusable {
                        name: pool.name.clone(),
                        reason: reason.clone(),
                    });
                }
                Ok(Placement::Btrfs {
                    pool: pool.path.clone(),
                    rootfs: storage::btrfs_rootfs(&pool.path, &spec.name),
                })
            }
        }
    }

    /// Builds a container's root filesystem on a btrfs pool: a writable
    /// snapshot of the template's subvolume, limited to `size` by a quota.
    async fn build_btrfs_rootfs(
        &self,
        spec: &ContainerSpec,
        template: &TemplateSource,
        pool: &Path,
        rootfs: &Path,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        require("btrfs")?;
        let cache = self
            .btrfs_caches
            .get(&spec.storage.pool)
            .ok_or_else(|| DriverError::PoolMissing(spec.storage.pool.clone()))?;
        let tree = cache.prepare(template, log).await?;
        let parent = rootfs.parent().unwrap_or(pool);
        create_private_dirs(parent)?;
        if std::fs::symlink_metadata(rootfs).is_ok() {
            return Err(DriverError::NotOurs {
                path: rootfs.to_owned(),
            });
        }
        log.step(format!(
            "snapshot of the template's subvolume as {}",
            rootfs.display()
        ));
        btrfs::snapshot(tree.path(), rootfs, false, log).await?;
        // A new subvolume has no limit to lift: without a size, no quota
        // command runs (and create stays one `btrfs` call).
        if spec.settings.disk_bytes.is_some() {
            self.limit_btrfs(spec, pool, rootfs, log).await?;
        }
        log.progress(100);
        Ok(())
    }

    /// Sets the quota of a btrfs root filesystem to the container's `size`
    /// (or lifts it).
    async fn limit_btrfs(
        &self,
        spec: &ContainerSpec,
        pool: &Path,
        rootfs: &Path,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        if let Some(size) = spec.settings.disk_bytes {
            btrfs::enable_quota(pool, log).await?;
            log.step(format!(
                "size: a btrfs quota of {} MiB on {}",
                size >> 20,
                rootfs.display()
            ));
        }
        btrfs::limit(rootfs, spec.settings.disk_bytes, log).await
    }

    /// Where a btrfs pool keeps the snapshots of one container.
    /// Ends a create or a clone: on failure everything it built is removed
    /// (a subvolume only when it was made here), on success it says so.
    async fn settle_build(
        built: Result<(), DriverError>,
        placement: &Placement,
        paths: &ContainerPaths,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        if let Err(error) = built {
            log.step("removing what was built".into());
            if let Placement::Btrfs { rootfs, .. } = placement {
                // NotOurs: the subvolume was there before; it is not ours.
                if !matches!(error, DriverError::NotOurs { .. }) {
                    btrfs::delete(rootfs, Some(log)).await?;
                }
            }
            remove_path(&paths.dir).await?;
            return Err(error);
        }
        log.step(format!(
            "root filesystem and config ready in {}",
            paths.dir.display()
        ));
        Ok(())
    }

    fn btrfs_snapshots(pool: &Path, container: &str) -> PathBuf {
        pool.join("snapshots").join(container)
    }

    /// A backup of a container on a btrfs pool, read from a read-only
    /// snapshot of its subvolume: taken in one transaction, so the
    /// container runs on, unfrozen, while the archive is written. The
    /// snapshot lives in `<pool>/backups/` beside the archive's own name,
    /// so a run again after a crash finds and replaces what it left.
    async fn back_up_btrfs(
        &self,
        pool: &Path,
        rootfs: &Path,
        manifest: &[u8],
        partial: &Path,
        target: &Path,
        log: &dyn StepLog,
    ) -> Result<backup::Written, DriverError> {
        let file = target
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let holder = pool.join("backups").join(format!(".reading-{file}"));
        let snapshot = holder.join("rootfs");
        btrfs::delete(&snapshot, Some(log)).await?;
        create_private_dirs(&holder)?;
        log.step("taking a read-only snapshot to back up from".into());
        btrfs::snapshot(rootfs, &snapshot, true, log).await?;
        let written = backup::write(
            &ContainerPaths {
                dir: holder.clone(),
            },
            manifest,
            partial,
            target,
            None,
            log,
        )
        .await;
        let removed = match btrfs::delete(&snapshot, Some(log)).await {
            Ok(()) => remove_path(&holder).await,
            Err(error) => Err(error),
        };
        let written = written?;
        removed?;
        Ok(written)
    }

    /// A `dir` snapshot: a copy of the root filesystem (tree or image) made
    /// beside it and published by rename, so a crash leaves only a
    /// `.partial-` copy, removed by the next run.
    async fn snapshot_dir(
        &self,
        spec: &ContainerSpec,
        paths: &ContainerPaths,
        name: &str,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        let snapshots = paths.snapshots_dir();
        let done = snapshots.join(name);
        if done.is_dir() {
            log.step(format!("snapshot {name} was taken already"));
            return Ok(());
        }
        std::fs::create_dir_all(&snapshots)
            .map_err(|e| DriverError::io(format!("cannot create {}", snapshots.display()), e))?;
        let partial = snapshots.join(format!(".partial-{name}"));
        remove_path(&partial).await?;
        create_dir(&partial, 0o700)?;
        let running = self.state(&spec.name).await? == RunState::Running;
        // A copy of files that change while it runs is no snapshot: the
        // container holds still until it is made.
        let frozen = if running {
            Some(self.freeze(&spec.name, log).await?)
        } else {
            None
        };
        let copied = copy_rootfs(paths, &partial, running, log).await;
        if let Some(frozen) = frozen {
            frozen.thaw(log).await?;
        }
        if let Err(error) = copied {
            let _ = remove_path(&partial).await;
            return Err(error);
        }
        rename(&partial, &done)?;
        log.step(format!("snapshot {name} taken in {}", done.display()));
        Ok(())
    }

    /// Puts a stopped `dir` container back to its snapshot: the copy is
    /// made whole as `restore.ready` first, then swapped in; a run cut off
    /// in the swap finishes it when run again.
    async fn restore_dir(
        &self,
        spec: &ContainerSpec,
        paths: &ContainerPaths,
        name: &str,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        let snapshot = paths.snapshots_dir().join(name);
        if !snapshot.is_dir() {
            return Err(DriverError::SnapshotMissing {
                container: spec.name.clone(),
                name: name.to_owned(),
            });
        }
        let (kind, other) = if snapshot.join("rootfs.img").exists() {
            (paths.rootfs_image(), paths.rootfs_dir())
        } else {
            (paths.rootfs_dir(), paths.rootfs_image())
        };
        let file_name = kind.file_name().expect("a root filesystem has a name");
        let ready = paths.dir.join("restore.ready");
        if !ready.is_dir() {
            let partial = paths.dir.join("restore.partial");
            remove_path(&partial).await?;
            create_dir(&partial, 0o700)?;
            log.step(format!("copying snapshot {name} back"));
            copy_entry(&snapshot.join(file_name), &partial.join(file_name), log).await?;
            rename(&partial, &ready)?;
        }
        let restored = ready.join(file_name);
        if restored.exists() {
            remove_path(&kind).await?;
            rename(&restored, &kind)?;
        }
        remove_path(&other).await?;
        remove_path(&paths.resize_marker()).await?;
        remove_path(&ready).await?;
        log.step(format!("root filesystem restored from snapshot {name}"));
        Ok(())
    }

    /// A `dir` clone's root filesystem: a copy of the source's snapshot, or
    /// of the source itself (frozen while it is copied if it runs).
    async fn copy_for_clone(
        &self,
        source: &ContainerSpec,
        source_paths: &ContainerPaths,
        snapshot: Option<&str>,
        paths: &ContainerPaths,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        let staging = paths.dir.join("clone.partial");
        create_dir(&staging, 0o700)?;
        match snapshot {
            Some(name) => {
                let from = source_paths.snapshots_dir().join(name);
                let entry = if from.join("rootfs.img").exists() {
                    "rootfs.img"
                } else {
                    "rootfs"
                };
                if !from.join(entry).exists() {
                    return Err(DriverError::SnapshotMissing {
                        container: source.name.clone(),
                        name: name.to_owned(),
                    });
                }
                log.step(format!("copying snapshot {name} of {}", source.name));
                copy_entry(&from.join(entry), &staging.join(entry), log).await?;
            }
            None => {
                let running = self.state(&source.name).await? == RunState::Running;
                let frozen = if running {
                    Some(self.freeze(&source.name, log).await?)
                } else {
                    None
                };
                log.step(format!("copying the root filesystem of {}", source.name));
                let copied = copy_rootfs(source_paths, &staging, running, log).await;
                if let Some(frozen) = frozen {
                    frozen.thaw(log).await?;
                }
                copied?;
            }
        }
        for entry in ["rootfs", "rootfs.img"] {
            if staging.join(entry).exists() {
                rename(&staging.join(entry), &paths.dir.join(entry))?;
            }
        }
        remove_path(&staging).await
    }

    fn paths(&self, name: &str) -> ContainerPaths {
        ContainerPaths::new(&self.lxc_path, name)
    }

    /// `-P <lxc_path> -n <name>`, the start of every `lxc-*` command line.
    fn target<'a>(&'a self, name: &'a str) -> [&'a OsStr; 4] {
        [
            OsStr::new("-P"),
            self.lxc_path.as_os_str(),
            OsStr::new("-n"),
            OsStr::new(name),
        ]
    }

    async fn lxc(
        &self,
        tool: &str,
        name: &str,
        extra: &[&OsStr],
        log: Option<&dyn StepLog>,
    ) -> Result<(), DriverError> {
        let mut args: Vec<&OsStr> = self.target(name).to_vec();
        args.extend_from_slice(extra);
        run(tool, &args, log).await.map(drop)
    }

    /// Whether berth made `paths.dir` for this container. A directory that is
    /// not ours is never written to or removed.
    fn ownership(
        &self,
        spec: &ContainerSpec,
        paths: &ContainerPaths,
    ) -> Result<Ownership, DriverError> {
        match std::fs::read_to_string(paths.owner_marker()) {
            Ok(owner) if owner.trim() == spec.id.hyphenated().to_string() => Ok(Ownership::Ours),
            Ok(_) => Ok(Ownership::Foreign),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if paths.dir.exists() {
                    Ok(Ownership::Foreign)
                } else {
                    Ok(Ownership::Absent)
                }
            }
            Err(e) => Err(DriverError::io(
                format!("cannot read {}", paths.owner_marker().display()),
                e,
            )),
        }
    }

    fn require_ours(
        &self,
        spec: &ContainerSpec,
        paths: &ContainerPaths,
    ) -> Result<(), DriverError> {
        match self.ownership(spec, paths)? {
            Ownership::Ours => Ok(()),
            Ownership::Foreign => Err(DriverError::NotOurs {
                path: paths.dir.clone(),
            }),
            Ownership::Absent => Err(DriverError::Missing(spec.name.clone())),
        }
    }

    async fn build_rootfs(
        &self,
        spec: &ContainerSpec,
        template: &TemplateSource,
        paths: &ContainerPaths,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        let staging = paths.staging_dir();
        remove_path(&staging).await?;
        let Some(cache) = &self.template_cache else {
            return self.unpack_rootfs(spec, template, paths, log).await;
        };
        let tree = cache
            .prepare(template, &ProgressRange::new(log, 0, FILL_SHARE))
            .await?;
        let rest = ProgressRange::new(log, if tree.filled() { FILL_SHARE } else { 0 }, 100);
        match spec.settings.disk_bytes {
            // mkfs.ext4 -d reads the prepared tree directly: no copy at all.
            Some(size) => {
                make_disk_image(tree.path(), &paths.staging_image(), size, &rest).await?;
                rename(&paths.staging_image(), &paths.rootfs_image())
            }
            None => {
                tree.copy_to(&staging, &rest).await?;
                rename(&staging, &paths.rootfs_dir())
            }
        }
    }

    /// Builds the root filesystem straight from the archive, as every create
    /// does when the template cache is off.
    async fn unpack_rootfs(
        &self,
        spec: &ContainerSpec,
        template: &TemplateSource,
        paths: &ContainerPaths,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        let staging = paths.staging_dir();
        create_dir(&staging, 0o755)?;
        log.step(format!("unpacking {}", template.path.display()));
        let file = unpack::open(template)?;
        unpack::unpack(template, file, &staging, log).await?;
        match spec.settings.disk_bytes {
            Some(size) => {
                make_disk_image(&staging, &paths.staging_image(), size, log).await?;
                rename(&paths.staging_image(), &paths.rootfs_image())?;
                remove_path(&staging).await?;
            }
            None => rename(&staging, &paths.rootfs_dir())?,
        }
        Ok(())
    }

    /// Writes the LXC config and the files berth bind-mounts into the
    /// container. Files are rewritten in place so a running container's
    /// bind mounts see the new contents at once; only those whose setting
    /// `changed`, so that an edit made inside a running container to a
    /// file berth did not mean to change stays.
    fn write_config(
        &self,
        spec: &ContainerSpec,
        paths: &ContainerPaths,
        changed: &Changed,
    ) -> Result<(), DriverError> {
        let disk_image = paths.rootfs_image().exists();
        let rootfs = match self.placement(spec)? {
            Placement::Dir => None,
            Placement::Btrfs { rootfs, .. } => Some(rootfs),
        };
        let config = lxc_config::render(&ConfigInputs {
            name: &spec.name,
            settings: &spec.settings,
            paths,
            bridge: &self.bridge,
            cgroup: self.cgroup,
            disk_image,
            rootfs: rootfs.as_deref(),
        })?;
        std::fs::create_dir_all(paths.managed_dir()).map_err(|e| {
            DriverError::io(
                format!("cannot create {}", paths.managed_dir().display()),
                e,
            )
        })?;
        let hostname = spec.settings.hostname.as_deref().unwrap_or(&spec.name);
        if changed.hostname || !paths.hostname_file().exists() {
            write_in_place(&paths.hostname_file(), format!("{hostname}\n").as_bytes())?;
        }
        if changed.nameservers && !spec.settings.nameservers.is_empty() {
            let mut resolv =
                String::from("# Written by berth from the container's nameserver parameter.\n");
            for server in &spec.settings.nameservers {
                resolv.push_str(&format!("nameserver {server}\n"));
            }
            write_in_place(&paths.resolv_conf_file(), resolv.as_bytes())?;
        }
        write_atomically(&paths.config(), config.as_bytes())
    }

    /// Brings a stopped container's disk to the size asked for: converts a
    /// directory root filesystem into an image, grows it, or shrinks it when
    /// what is stored still fits.
    async fn reconcile_disk(
        &self,
        spec: &ContainerSpec,
        paths: &ContainerPaths,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        if let Placement::Btrfs { pool, rootfs } = self.placement(spec)? {
            return self.limit_btrfs(spec, &pool, &rootfs, log).await;
        }
        let image = paths.rootfs_image();
        let has_image = image.exists();
        match spec.settings.disk_bytes {
            None if has_image => Err(DriverError::DiskRemovalRefused),
            None => Ok(()),
            Some(size) if !has_image => {
                log.step(format!(
                    "moving the root filesystem onto a {} MiB disk",
                    size >> 20
                ));
                make_disk_image(&paths.rootfs_dir(), &paths.staging_image(), size, log).await?;
                rename(&paths.staging_image(), &image)?;
                remove_path(&paths.rootfs_dir()).await
            }
            Some(size) => {
                let file = file_size(&image)?;
                let marker = paths.resize_marker();
                // Left by a resize that a crash cut off: its file may be at
                // the new size while its file system is not.
                let interrupted = marker.exists();
                if file == size && !interrupted {
                    return Ok(());
                }
                // Cut off half-way, resize2fs leaves a file system that is
                // neither the old one nor the new one: it runs to its end
                // even if this job is aborted, and shutdown waits for it.
                self.critical
                    .run_to_end(
                        format!("resizing the disk of {}", spec.name),
                        log,
                        move |log| async move {
                            let current = if interrupted {
                                log.step(
                                    "finishing a resize that berth was stopped in the middle of"
                                        .into(),
                                );
                                file_system_size(&image).await.unwrap_or(file)
                            } else {
                                file
                            };
                            write_atomically(&marker, size.to_string().as_bytes())?;
                            let resized = resize_disk_image(&image, current, size, &log).await;
                            // A refused shrink changed nothing; any other
                            // failure is looked at again next time.
                            if matches!(resized, Ok(()) | Err(DriverError::ShrinkRefused { .. })) {
                                remove_path(&marker).await?;
                            }
                            resized
                        },
                    )
                    .await
            }
        }
    }

    async fn ensure_bridge(&self, log: &dyn StepLog) -> Result<(), DriverError> {
        // Every start asks; the kernel's list of interfaces answers without
        // starting `ip`.
        if Path::new("/sys/class/net").join(&self.bridge).exists() {
            return Ok(());
        }
        log.step(format!("creating bridge {} (no uplink)", self.bridge));
        let added = run_unchecked(
            "ip",
            args!["link", "add", "name", self.bridge, "type", "bridge"],
            Some(log),
        )
        .await?;
        // Another job may have created it in the meantime: that is fine.
        if !added.status.success()
            && !String::from_utf8_lossy(&added.stderr).contains("File exists")
        {
            return Err(failure(
                "ip",
                args!["link", "add", "name", self.bridge, "type", "bridge"],
                &added,
            ));
        }
        run(
            "ip",
            args!["link", "set", "dev", self.bridge, "up"],
            Some(log),
        )
        .await
        .map(drop)
    }

    /// Applies to a running container, where the kernel allows, the
    /// settings that `changed`; the others are left as they are inside it.
    async fn apply_live(
        &self,
        spec: &ContainerSpec,
        paths: &ContainerPaths,
        resolv_was_mounted: bool,
        before: Option<&ContainerSettings>,
        changed: &Changed,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        for (file, value) in self.cgroup.limits(&spec.settings) {
            let applies = if file.starts_with("memory.") {
                changed.memory
            } else {
                changed.cpus
            };
            if !applies {
                continue;
            }
            // `--`: "no limit" is `-1` on cgroup v1, which lxc-cgroup
            // would otherwise take for an option and refuse.
            self.lxc(
                "lxc-cgroup",
                &spec.name,
                args!["--", file, value],
                Some(log),
            )
            .await?;
        }
        let limits: Vec<&str> = [("cpus", changed.cpus), ("memsize", changed.memory)]
            .into_iter()
            .filter_map(|(name, changed)| changed.then_some(name))
            .collect();
        if !limits.is_empty() {
            log.step(format!(
                "{}: applied live to the running container's cgroup",
                limits.join(", ")
            ));
        }

        if changed.hostname {
            let hostname = spec.settings.hostname.as_deref().unwrap_or(&spec.name);
            // Only the UTS namespace is entered, so the host's `hostname` runs.
            self.lxc(
                "lxc-attach",
                &spec.name,
                args!["-s", "UTS", "--", "hostname", hostname],
                Some(log),
            )
            .await?;
            log.step("hostname: applied live (UTS name and /etc/hostname)".into());
        }

        if changed.addresses {
            self.replace_addresses(spec, before, log).await?;
            log.step("ipadd: applied live to eth0".into());
        }

        // berth's resolv.conf is bind-mounted only while name servers are set,
        // and mounts change only when the container starts.
        if changed.nameservers {
            match (spec.settings.nameservers.is_empty(), resolv_was_mounted) {
                (false, true) => log.step("nameserver: applied live to /etc/resolv.conf".into()),
                (true, false) => {}
                _ => log.step("nameserver: applies at the next start".into()),
            }
        }

        let unchanged = changed.unchanged_live();
        if !unchanged.is_empty() {
            log.step(format!(
                "{}: unchanged, left as they are inside the container",
                unchanged.join(", ")
            ));
        }

        if let Placement::Btrfs { pool, rootfs } = self.placement(spec)? {
            if before.map_or(true, |b| b.disk_bytes != spec.settings.disk_bytes) {
                self.limit_btrfs(spec, &pool, &rootfs, log).await?;
                log.step("size: applied live (btrfs quota)".into());
            }
            return Ok(());
        }
        let image = paths.rootfs_image();
        let disk_changes = match spec.settings.disk_bytes {
            Some(size) => !image.exists() || file_size(&image)? != size,
            None => false,
        };
        if disk_changes {
            log.step("size: applies at the next start (the disk is resized while the container is stopped)".into());
        }
        Ok(())
    }

    /// Puts berth's addresses on the running container's eth0: removes those
    /// `before` had that are no longer asked for and adds the new ones,
    /// leaving any other address alone. Without `before`, every global
    /// address is replaced.
    async fn replace_addresses(
        &self,
        spec: &ContainerSpec,
        before: Option<&ContainerSettings>,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        let wanted = &spec.settings.addresses;
        if before.is_none() {
            self.lxc(
                "lxc-attach",
                &spec.name,
                args![
                    "-s", "NETWORK", "--", "ip", "addr", "flush", "dev", "eth0", "scope", "global"
                ],
                Some(log),
            )
            .await?;
        }
        // New addresses first, so the container is never left without one.
        let kept = |a: &&IpAddress| before.is_some_and(|before| before.addresses.contains(a));
        for address in wanted.iter().filter(|a| !kept(a)) {
            let address = address.to_string();
            // `replace` also succeeds when the address is already there.
            self.lxc(
                "lxc-attach",
                &spec.name,
                args!["-s", "NETWORK", "--", "ip", "addr", "replace", address, "dev", "eth0"],
                Some(log),
            )
            .await?;
        }
        let Some(before) = before else {
            return Ok(());
        };
        let gone: Vec<&IpAddress> = before
            .addresses
            .iter()
            .filter(|a| !wanted.contains(a))
            .collect();
        if gone.iter().any(|a| a.addr.is_ipv4()) {
            // Removing the first IPv4 address of a subnet takes every other
            // address of that subnet with it (one set inside the container,
            // or a new one of berth's) unless the kernel promotes them, as
            // systemd's defaults have hosts do. Written from inside the
            // container's network namespace, so the host's stays as it is.
            self.lxc(
                "lxc-attach",
                &spec.name,
                args![
                    "-s",
                    "NETWORK",
                    "--",
                    "sh",
                    "-c",
                    "echo 1 > /proc/sys/net/ipv4/conf/eth0/promote_secondaries"
                ],
                Some(log),
            )
            .await?;
        }
        for address in gone {
            let address = address.to_string();
            let mut args: Vec<&OsStr> = self.target(&spec.name).to_vec();
            args.extend_from_slice(args![
                "-s", "NETWORK", "--", "ip", "addr", "del", address, "dev", "eth0"
            ]);
            let removed = run_unchecked("lxc-attach", &args, Some(log)).await?;
            // Already gone (removed inside the container, or by a run of this
            // job cut off by a crash): nothing to do.
            let absent = String::from_utf8_lossy(&removed.stderr)
                .contains("Cannot assign requested address");
            if !removed.status.success() && !absent {
                return Err(failure("lxc-attach", &args, &removed));
            }
        }
        Ok(())
    }

    /// A clean shutdown through init, killed once the stop timeout passes.
    async fn halt(&self, name: &str, log: &dyn StepLog) -> Result<(), DriverError> {
        let timeout = self.stop_timeout_secs.to_string();
        match self
            .lxc("lxc-stop", name, args!["-t", timeout], Some(log))
            .await
        {
            Ok(()) => Ok(()),
            // lxc-stop fails ("is not running") when the container stops by
            // other means while it waits: its init exiting, an operator's
            // `lxc-stop -k`, or the lxc-stop of a job cut off by a crash.
            // The container is stopped all the same, or is about to be.
            Err(error) => {
                let stopped = self.wait_for(name, "STOPPED", 5).await.is_ok()
                    || self.state(name).await? != RunState::Running;
                if !stopped {
                    return Err(error);
                }
                log.step("the container stopped by other means while lxc-stop waited".into());
                Ok(())
            }
        }
    }

    async fn wait_for(
        &self,
        name: &str,
        state: &'static str,
        seconds: u64,
    ) -> Result<(), DriverError> {
        let timeout = seconds.to_string();
        let waited = run_unchecked(
            "lxc-wait",
            args!["-P", self.lxc_path, "-n", name, "-s", state, "-t", timeout],
            None,
        )
        .await?;
        if waited.status.success() {
            Ok(())
        } else {
            Err(DriverError::Timeout {
                state,
                seconds,
                detail: String::new(),
            })
        }
    }
}

enum Ownership {
    Ours,
    Foreign,
    Absent,
}

/// Which settings a configure job changes, and so which it may touch in a
/// running container.
#[derive(Debug, PartialEq)]
struct Changed {
    hostname: bool,
    cpus: bool,
    memory: bool,
    addresses: bool,
    nameservers: bool,
}

impl Changed {
    /// Everything: a start, a create, or a change from unknown settings.
    const ALL: Changed = Changed {
        hostname: true,
        cpus: true,
        memory: true,
        addresses: true,
        nameservers: true,
    };

    fn between(before: Option<&ContainerSettings>, after: &ContainerSettings) -> Changed {
        let Some(before) = before else {
            return Changed::ALL;
        };
        Changed {
            hostname: before.hostname != after.hostname,
            cpus: before.cpus != after.cpus,
            memory: before.memory_bytes != after.memory_bytes,
            addresses: before.addresses != after.addresses,
            nameservers: before.nameservers != after.nameservers,
        }
    }

    /// The parameters that apply live and are left alone, by API name.
    fn unchanged_live(&self) -> Vec<&'static str> {
        [
            ("hostname", self.hostname),
            ("cpus", self.cpus),
            ("memsize", self.memory),
            ("ipadd", self.addresses),
            ("nameserver", self.nameservers),
        ]
        .into_iter()
        .filter_map(|(name, changed)| (!changed).then_some(name))
        .collect()
    }
}

impl LxcDriver {
    /// Finds where a running container's counters are: one `lxc-info`
    /// for its init's PID and its veth, then its init's cgroup file.
    async fn find_probe(&self, name: &str) -> Result<Option<Probe>, DriverError> {
        let Some(roots) = &self.cgroup_roots else {
            return Ok(None);
        };
        let output = run_unchecked(
            "lxc-info",
            args!["-P", self.lxc_path, "-n", name, "-p", "-S", "-H"],
            None,
        )
        .await?;
        let (pid, veth) = parse_lxc_info(&String::from_utf8_lossy(&output.stdout));
        let Some(pid) = pid else {
            return Ok(None);
        };
        let Ok(proc_cgroup) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
            return Ok(None);
        };
        Ok(roots.probe(name, &proc_cgroup, veth))
    }
}

#[async_trait::async_trait]
impl Driver for LxcDriver {
    async fn usage(&self, name: &str) -> Result<Option<Usage>, DriverError> {
        let Some(roots) = &self.cgroup_roots else {
            return Ok(None);
        };
        if let Some(probe) = self.probes.get(name) {
            if let Ok(usage) = roots.read(&probe) {
                return Ok(Some(usage));
            }
            // Stopped, or restarted with a new veth: look again.
            self.probes.forget(name);
        }
        let Some(probe) = self.find_probe(name).await? else {
            return Ok(None);
        };
        match roots.read(&probe) {
            Ok(usage) => {
                self.probes.set(name, probe);
                Ok(Some(usage))
            }
            Err(_) => Ok(None),
        }
    }

    async fn disk_used(&self, name: &str) -> Result<Option<u64>, DriverError> {
        let paths = self.paths(name);
        let image = paths.rootfs_image();
        // A disk image is sparse: its allocated blocks are what it takes
        // (blocks freed inside stay allocated until discarded).
        match std::fs::metadata(&image) {
            Ok(meta) => return Ok(Some(meta.blocks() * 512)),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(DriverError::io(
                    format!("cannot read {}", image.display()),
                    e,
                ))
            }
            Err(_) => {}
        }
        let dir = paths.rootfs_dir();
        if !dir.exists() {
            return Ok(None);
        }
        let used = tokio::task::spawn_blocking(move || disk_usage(&dir))
            .await
            .map_err(|e| DriverError::io("measuring a root filesystem", std::io::Error::other(e)))?
            .map_err(|e| DriverError::io(format!("cannot measure {name}'s root filesystem"), e))?;
        Ok(Some(used))
    }

    async fn create(
        &self,
        spec: &ContainerSpec,
        template: &TemplateSource,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        require("lxc-start")?;
        let placement = self.placement(spec)?;
        let paths = self.paths(&spec.name);
        claim_container_dir(spec, &paths)?;
        let built = async {
            match &placement {
                Placement::Dir => self.build_rootfs(spec, template, &paths, log).await?,
                Placement::Btrfs { pool, rootfs } => {
                    self.build_btrfs_rootfs(spec, template, pool, rootfs, log)
                        .await?
                }
            }
            self.write_config(spec, &paths, &Changed::ALL)
        }
        .await;
        Self::settle_build(built, &placement, &paths, log).await
    }

    async fn configure(
        &self,
        spec: &ContainerSpec,
        before: Option<&ContainerSettings>,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        let paths = self.paths(&spec.name);
        self.require_ours(spec, &paths)?;
        match self.state(&spec.name).await? {
            RunState::Running => {
                let resolv_was_mounted = mounts_resolv_conf(&paths);
                let changed = Changed::between(before, &spec.settings);
                self.write_config(spec, &paths, &changed)?;
                self.apply_live(spec, &paths, resolv_was_mounted, before, &changed, log)
                    .await
            }
            _ => {
                self.reconcile_disk(spec, &paths, log).await?;
                self.write_config(spec, &paths, &Changed::ALL)?;
                log.step(
                    "container is stopped: every parameter takes effect at its next start".into(),
                );
                Ok(())
            }
        }
    }

    async fn start(&self, spec: &ContainerSpec, log: &dyn StepLog) -> Result<(), DriverError> {
        let paths = self.paths(&spec.name);
        self.require_ours(spec, &paths)?;
        if self.state(&spec.name).await? == RunState::Running {
            log.step("already running".into());
            return Ok(());
        }
        self.reconcile_disk(spec, &paths, log).await?;
        self.write_config(spec, &paths, &Changed::ALL)?;
        self.ensure_bridge(log).await?;
        let _ = std::fs::remove_file(paths.lxc_log());
        let logfile = paths.lxc_log();
        let started = self
            .lxc(
                "lxc-start",
                &spec.name,
                args!["-o", logfile, "-l", "ERROR"],
                Some(log),
            )
            .await;
        let waited = match started {
            Ok(()) => {
                self.wait_for(&spec.name, "RUNNING", START_TIMEOUT_SECS)
                    .await
            }
            Err(e) => Err(e),
        };
        waited.map_err(|error| with_lxc_log(error, &logfile))?;
        log.step("running".into());
        Ok(())
    }

    async fn stop(&self, spec: &ContainerSpec, log: &dyn StepLog) -> Result<(), DriverError> {
        let paths = self.paths(&spec.name);
        self.require_ours(spec, &paths)?;
        if self.state(&spec.name).await? != RunState::Running {
            log.step("already stopped".into());
            return Ok(());
        }
        self.halt(&spec.name, log).await?;
        log.step("stopped".into());
        Ok(())
    }

    async fn destroy(&self, spec: &ContainerSpec, log: &dyn StepLog) -> Result<(), DriverError> {
        let paths = self.paths(&spec.name);
        match self.ownership(spec, &paths)? {
            Ownership::Absent => {
                log.step("nothing left on the host".into());
                return Ok(());
            }
            Ownership::Foreign => {
                return Err(DriverError::NotOurs {
                    path: paths.dir.clone(),
                })
            }
            Ownership::Ours => {}
        }
        if self.state(&spec.name).await? == RunState::Running {
            self.halt(&spec.name, log).await?;
        }
        if let Placement::Btrfs { pool, rootfs } = self.placement(spec)? {
            // Before the directory: its owner marker is what says the
            // subvolumes are this container's.
            let snapshots = Self::btrfs_snapshots(&pool, &spec.name);
            if let Ok(entries) = std::fs::read_dir(&snapshots) {
                for entry in entries.flatten() {
                    btrfs::delete(&entry.path(), Some(log)).await?;
                }
            }
            remove_path(&snapshots).await?;
            btrfs::delete(&rootfs, Some(log)).await?;
        }
        if paths.config().exists() && (paths.rootfs_dir().exists() || paths.rootfs_image().exists())
        {
            self.lxc("lxc-destroy", &spec.name, &[], Some(log)).await?;
        }
        // lxc-destroy leaves what it does not know of (staging, berth's files).
        remove_path(&paths.dir).await?;
        log.step(format!("removed {}", paths.dir.display()));
        Ok(())
    }

    async fn state(&self, name: &str) -> Result<RunState, DriverError> {
        if !self.paths(name).config().exists() {
            return Ok(RunState::Missing);
        }
        let output = run(
            "lxc-info",
            args!["-P", self.lxc_path, "-n", name, "-s", "-H"],
            None,
        )
        .await?;
        let state = String::from_utf8_lossy(&output.stdout);
        Ok(if state.trim() == "STOPPED" {
            RunState::Stopped
        } else {
            RunState::Running
        })
    }

    fn critical_steps(&self) -> CriticalSteps {
        self.critical.clone()
    }

    async fn snapshot(
        &self,
        spec: &ContainerSpec,
        name: &str,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        let paths = self.paths(&spec.name);
        self.require_ours(spec, &paths)?;
        match self.placement(spec)? {
            Placement::Dir => self.snapshot_dir(spec, &paths, name, log).await,
            Placement::Btrfs { pool, rootfs } => {
                let dir = Self::btrfs_snapshots(&pool, &spec.name);
                let dest = dir.join(name);
                // A subvolume snapshot is made whole in one transaction
                // or not at all: one that exists is complete.
                if btrfs::is_subvolume(&dest) {
                    log.step(format!("snapshot {name} was taken already"));
                    return Ok(());
                }
                create_private_dirs(&dir)?;
                btrfs::snapshot(&rootfs, &dest, true, log).await?;
                log.step(format!(
                    "snapshot {name} taken as read-only subvolume {}",
                    dest.display()
                ));
                Ok(())
            }
        }
    }

    async fn restore_snapshot(
        &self,
        spec: &ContainerSpec,
        name: &str,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        let paths = self.paths(&spec.name);
        self.require_ours(spec, &paths)?;
        if self.state(&spec.name).await? == RunState::Running {
            return Err(DriverError::RunningHere(spec.name.clone()));
        }
        match self.placement(spec)? {
            Placement::Dir => self.restore_dir(spec, &paths, name, log).await,
            Placement::Btrfs { pool, rootfs } => {
                let snapshot = Self::btrfs_snapshots(&pool, &spec.name).join(name);
                if !btrfs::is_subvolume(&snapshot) {
                    return Err(DriverError::SnapshotMissing {
                        container: spec.name.clone(),
                        name: name.to_owned(),
                    });
                }
                // Built beside the root filesystem before it is replaced;
                // a run cut off anywhere starts over from the snapshot.
                let fresh = rootfs.with_file_name(format!(".restore-{}", spec.name));
                btrfs::delete(&fresh, Some(log)).await?;
                btrfs::snapshot(&snapshot, &fresh, false, log).await?;
                btrfs::delete(&rootfs, Some(log)).await?;
                rename(&fresh, &rootfs)?;
                self.limit_btrfs(spec, &pool, &rootfs, log).await?;
                log.step(format!("root filesystem restored from snapshot {name}"));
                Ok(())
            }
        }
    }

    async fn delete_snapshot(
        &self,
        spec: &ContainerSpec,
        name: &str,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        let paths = self.paths(&spec.name);
        self.require_ours(spec, &paths)?;
        match self.placement(spec)? {
            Placement::Dir => remove_path(&paths.snapshots_dir().join(name)).await?,
            Placement::Btrfs { pool, .. } => {
                btrfs::delete(
                    &Self::btrfs_snapshots(&pool, &spec.name).join(name),
                    Some(log),
                )
                .await?
            }
        }
        log.step(format!("snapshot {name} deleted"));
        Ok(())
    }

    async fn clone_container(
        &self,
        source: &ContainerSpec,
        snapshot: Option<&str>,
        spec: &ContainerSpec,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        require("lxc-start")?;
        let source_paths = self.paths(&source.name);
        self.require_ours(source, &source_paths)?;
        let placement = self.placement(spec)?;
        let paths = self.paths(&spec.name);
        claim_container_dir(spec, &paths)?;
        let built = async {
            match (&placement, self.placement(source)?) {
                (
                    Placement::Btrfs { pool, rootfs },
                    Placement::Btrfs {
                        pool: source_pool,
                        rootfs: source_rootfs,
                    },
                ) if *pool == source_pool => {
                    let from = match snapshot {
                        Some(name) => Self::btrfs_snapshots(pool, &source.name).join(name),
                        None => source_rootfs,
                    };
                    if !btrfs::is_subvolume(&from) {
                        return Err(DriverError::SnapshotMissing {
                            container: source.name.clone(),
                            name: snapshot.unwrap_or_default().to_owned(),
                        });
                    }
                    if std::fs::symlink_metadata(rootfs).is_ok() {
                        return Err(DriverError::NotOurs {
                            path: rootfs.clone(),
                        });
                    }
                    // A writable snapshot: constant time, and atomic while
                    // the source runs.
                    btrfs::snapshot(&from, rootfs, false, log).await?;
                    self.limit_btrfs(spec, pool, rootfs, log).await?;
                }
                (Placement::Dir, Placement::Dir) => {
                    self.copy_for_clone(source, &source_paths, snapshot, &paths, log)
                        .await?
                }
                _ => {
                    return Err(DriverError::PoolMissing(format!(
                        "{} (a clone stays on its source's pool)",
                        spec.storage.pool
                    )))
                }
            }
            self.write_config(spec, &paths, &Changed::ALL)
        }
        .await;
        Self::settle_build(built, &placement, &paths, log).await
    }

    async fn send(&self, spec: &ContainerSpec) -> Result<OutgoingFiles, DriverError> {
        if !spec.storage.driver.can_move() {
            return Err(DriverError::CannotMove(
                "a container on a btrfs storage pool",
            ));
        }
        let paths = self.paths(&spec.name);
        self.require_ours(spec, &paths)?;
        if self.state(&spec.name).await? == RunState::Running {
            return Err(DriverError::RunningHere(spec.name.clone()));
        }
        let measured = [paths.rootfs_image(), paths.rootfs_dir()]
            .into_iter()
            .find(|path| path.exists());
        let size_hint = match measured {
            Some(path) => tokio::task::spawn_blocking(move || disk_usage(&path).ok())
                .await
                .ok()
                .flatten(),
            None => None,
        };
        transfer::send(&paths, size_hint)
    }

    async fn can_receive(&self, spec: &ContainerSpec) -> Result<(), DriverError> {
        require("lxc-start")?;
        require("tar")?;
        let paths = self.paths(&spec.name);
        match self.ownership(spec, &paths)? {
            Ownership::Absent => Ok(()),
            Ownership::Foreign => Err(DriverError::NotOurs {
                path: paths.dir.clone(),
            }),
            Ownership::Ours => match self.state(&spec.name).await? {
                RunState::Running => Err(DriverError::RunningHere(spec.name.clone())),
                RunState::Stopped | RunState::Missing => Ok(()),
            },
        }
    }

    async fn receive(
        &self,
        spec: &ContainerSpec,
        files: &mut (dyn tokio::io::AsyncRead + Unpin + Send),
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        self.can_receive(spec).await?;
        let paths = self.paths(&spec.name);
        if paths.dir.exists() {
            log.step(format!(
                "replacing the copy an earlier move left in {}",
                paths.dir.display()
            ));
        }
        let staging = transfer::incoming_dir(&self.lxc_path, spec.id);
        transfer::receive_into(&staging, files, log).await?;
        transfer::install(&staging, &paths, spec.id).await?;
        if let Err(error) = self.write_config(spec, &paths, &Changed::ALL) {
            remove_path(&paths.dir).await?;
            return Err(error);
        }
        log.step(format!(
            "root filesystem and config ready in {}",
            paths.dir.display()
        ));
        Ok(())
    }

    async fn back_up(
        &self,
        spec: &ContainerSpec,
        manifest: &[u8],
        partial: &Path,
        target: &Path,
        log: &dyn StepLog,
    ) -> Result<backup::Written, DriverError> {
        let paths = self.paths(&spec.name);
        self.require_ours(spec, &paths)?;
        if let Placement::Btrfs { pool, rootfs } = self.placement(spec)? {
            return self
                .back_up_btrfs(&pool, &rootfs, manifest, partial, target, log)
                .await;
        }
        let frozen = if self.state(&spec.name).await? == RunState::Running {
            let frozen = self.freeze(&spec.name, log).await?;
            // A disk image is read from the host's side of its loop device:
            // what the container wrote must be on it first.
            if paths.rootfs_image().exists() {
                if let Err(error) = run("sync", &[], Some(log)).await {
                    frozen.thaw(log).await?;
                    return Err(error);
                }
            }
            Some(frozen)
        } else {
            None
        };
        log.step(format!("writing {}", partial.display()));
        backup::write(&paths, manifest, partial, target, frozen, log).await
    }

    async fn restore(
        &self,
        spec: &ContainerSpec,
        archive: &Path,
        kind: BackupKind,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        require("lxc-start")?;
        let paths = self.paths(&spec.name);
        match self.ownership(spec, &paths)? {
            Ownership::Absent => {}
            Ownership::Foreign => {
                return Err(DriverError::NotOurs {
                    path: paths.dir.clone(),
                })
            }
            // What an earlier run of this restore left: built again.
            Ownership::Ours => remove_path(&paths.dir).await?,
        }
        let staging = transfer::incoming_dir(&self.lxc_path, spec.id);
        backup::unpack_into(archive, kind, &staging, log).await?;
        transfer::install(&staging, &paths, spec.id).await?;
        let configured = async {
            self.write_config(spec, &paths, &Changed::ALL)?;
            self.reconcile_disk(spec, &paths, log).await?;
            // The image, when one was made, is what the config must mount.
            self.write_config(spec, &paths, &Changed::ALL)
        }
        .await;
        if let Err(error) = configured {
            remove_path(&paths.dir).await?;
            return Err(error);
        }
        log.step(format!(
            "root filesystem and config ready in {}",
            paths.dir.display()
        ));
        Ok(())
    }

    async fn running(&self) -> Result<std::collections::HashSet<String>, DriverError> {
        let output = run(
            "lxc-ls",
            args!["-P", self.lxc_path, "--running", "-1"],
            None,
        )
        .await?;
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect())
    }

    // exec and terminals (issue 14).
    async fn exec(
        &self,
        name: &str,
        request: &super::ExecRequest,
    ) -> Result<super::ExecOutput, DriverError> {
        self.require_running(name).await?;
        super::attach::exec(&self.lxc_path, name, request).await
    }

    async fn terminal(
        &self,
        name: &str,
        cols: u16,
        rows: u16,
    ) -> Result<super::Terminal, DriverError> {
        self.require_running(name).await?;
        super::attach::open_terminal(&self.lxc_path, name, cols, rows)
    }
}

/// Whether the container's current config bind-mounts berth's resolv.conf.
fn mounts_resolv_conf(paths: &ContainerPaths) -> bool {
    std::fs::read_to_string(paths.config())
        .map(|config| config.contains(" etc/resolv.conf "))
        .unwrap_or(false)
}

/// Adds the last lines of LXC's own log to a start failure.
fn with_lxc_log(error: DriverError, logfile: &Path) -> DriverError {
    let detail = std::fs::read(logfile)
        .map(|bytes| command::tail_of(&bytes))
        .unwrap_or_default();
    if detail.is_empty() {
        return error;
    }
    match error {
        DriverError::Timeout { state, seconds, .. } => DriverError::Timeout {
            state,
            seconds,
            detail: format!("; LXC says: {detail}"),
        },
        DriverError::ToolFailed {
            command,
            status,
            output,
        } => DriverError::ToolFailed {
            command,
            status,
            output: format!("{output} | LXC says: {detail}"),
        },
        other => other,
    }
}

/// Makes a new container's directory, closed to other users (the root
/// filesystem inside holds setuid programs and device nodes), and marks it
/// as this container's. A directory already there is someone else's.
fn claim_container_dir(spec: &ContainerSpec, paths: &ContainerPaths) -> Result<(), DriverError> {
    match create_private_dir(&paths.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(DriverError::NotOurs {
                path: paths.dir.clone(),
            });
        }
        Err(e) => {
            return Err(DriverError::io(
                format!("cannot create {}", paths.dir.display()),
                e,
            ))
        }
    }
    let marked = write_atomically(
        &paths.owner_marker(),
        spec.id.hyphenated().to_string().as_bytes(),
    );
    if marked.is_err() {
        // Unmarked, it would pass for someone else's at the next try.
        let _ = std::fs::remove_dir_all(&paths.dir);
    }
    marked
}

/// Creates `path` and its missing parents closed to other users: a pool's
/// `containers/` and `snapshots/` hold root filesystems (setuid programs,
/// device nodes), as the container directories under the LXC path do.
fn create_private_dirs(path: &Path) -> Result<(), DriverError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(|e| DriverError::io(format!("cannot create {}", path.display()), e))
}

/// Copies the container's root filesystem (tree or image) into `dest`.
/// An image of a running (frozen) container is synced first: what its
/// processes wrote may still be in the page cache of its mounted ext4.
async fn copy_rootfs(
    paths: &ContainerPaths,
    dest: &Path,
    running: bool,
    log: &dyn StepLog,
) -> Result<(), DriverError> {
    let image = paths.rootfs_image();
    if image.exists() {
        if running {
            run("sync", &[], Some(log)).await?;
        }
        copy_entry(&image, &dest.join("rootfs.img"), log).await
    } else {
        copy_entry(&paths.rootfs_dir(), &dest.join("rootfs"), log).await
    }
}

/// Copies a root filesystem tree (keeping everything tar restored) or a
/// disk image (sparse, reflinked where the file system can) to `dest`.
async fn copy_entry(source: &Path, dest: &Path, log: &dyn StepLog) -> Result<(), DriverError> {
    if source.is_file() {
        return run(
            "cp",
            args!["--sparse=always", "--reflink=auto", source, dest],
            Some(log),
        )
        .await
        .map(drop);
    }
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    let (from, to) = (source.to_owned(), dest.to_owned());
    let copied = tokio::task::spawn_blocking(move || {
        super::tree_copy::copy_tree(&from, &to, threads, &Default::default())
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    .map_err(|e| DriverError::io(format!("copying {}", source.display()), e))?;
    if !copied {
        return Err(DriverError::Cancelled);
    }
    Ok(())
}

/// Space a tree takes on disk, counting allocated blocks. A file removed
/// while the walk runs (a running container's) counts as nothing.
fn disk_usage(path: &Path) -> std::io::Result<u64> {
    let gone = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    let meta = match std::fs::symlink_metadata(path) {
        Err(e) if gone(&e) => return Ok(0),
        meta => meta?,
    };
    let mut total = meta.blocks() * 512;
    if meta.is_dir() {
        let entries = match std::fs::read_dir(path) {
            Err(e) if gone(&e) => return Ok(total),
            entries => entries?,
        };
        for entry in entries {
            total += disk_usage(&entry?.path())?;
        }
    }
    Ok(total)
}

/// Creates an ext4 image of `size` bytes holding the tree at `source`.
async fn make_disk_image(
    source: &Path,
    image: &Path,
    size: u64,
    log: &dyn StepLog,
) -> Result<(), DriverError> {
    require("mkfs.ext4")?;
    // A walk of a whole root filesystem: on a blocking thread, not on one
    // of the few that serve requests.
    let tree = source.to_owned();
    let used = tokio::task::spawn_blocking(move || disk_usage(&tree))
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
        .map_err(|e| DriverError::io(format!("measuring {}", source.display()), e))?;
    // ext4 needs room for its journal, inode tables and reserved blocks.
    let needed = used + used / 8 + (8 << 20);
    if needed > size {
        return Err(DriverError::DiskTooSmall {
            needed_mib: needed.div_ceil(1 << 20),
            size_mib: size >> 20,
        });
    }
    let _ = std::fs::remove_file(image);
    let file = std::fs::File::create(image)
        .map_err(|e| DriverError::io(format!("cannot create {}", image.display()), e))?;
    file.set_len(size)
        .map_err(|e| DriverError::io(format!("cannot size {}", image.display()), e))?;
    drop(file);
    log.step(format!("making a {} MiB ext4 disk", size >> 20));
    let made = run(
        "mkfs.ext4",
        args![
            "-q",
            "-F",
            "-m",
            "0",
            "-E",
            "nodiscard",
            "-d",
            source,
            image
        ],
        Some(log),
    )
    .await;
    if made.is_err() {
        let _ = std::fs::remove_file(image);
    }
    made.map(drop)
}

async fn resize_disk_image(
    image: &Path,
    current: u64,
    size: u64,
    log: &dyn StepLog,
) -> Result<(), DriverError> {
    require("resize2fs")?;
    // resize2fs insists on a freshly checked file system. e2fsck exits 1
    // when it corrected something, which is still a usable result.
    let checked = run_unchecked_to_end("e2fsck", args!["-f", "-p", image], Some(log)).await?;
    if !matches!(checked.status.code(), Some(0 | 1)) {
        return Err(failure("e2fsck", args!["-f", "-p", image], &checked));
    }
    let kib = format!("{}K", size / 1024);
    if size > current {
        log.step(format!("growing the disk to {} MiB", size >> 20));
        set_file_size(image, size)?;
        run_to_end("resize2fs", args![image, kib], Some(log)).await?;
    } else {
        log.step(format!("shrinking the disk to {} MiB", size >> 20));
        let shrunk = run_unchecked_to_end("resize2fs", args![image, kib], Some(log)).await?;
        if !shrunk.status.success() {
            return Err(DriverError::ShrinkRefused {
                size_mib: size >> 20,
                reason: shrink_refusal(image, &shrunk.stderr).await,
            });
        }
        set_file_size(image, size)?;
    }
    Ok(())
}

/// Why resize2fs refused a shrink, in its own words without its version
/// banner, and the smallest size the disk can take as it is filled now.
async fn shrink_refusal(image: &Path, stderr: &[u8]) -> String {
    let said = String::from_utf8_lossy(stderr);
    let words: Vec<&str> = said
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !is_version_banner(line))
        .collect();
    let mut reason = match smallest_size(image).await {
        Some(bytes) => format!(
            "the smallest size possible is {} MiB for what is stored on it",
            bytes.div_ceil(1 << 20)
        ),
        None => "it holds more than fits".to_owned(),
    };
    if !words.is_empty() {
        reason.push_str(&format!(" ({})", words.join(" ")));
    }
    reason
}

/// e2fsprogs tools start with a line such as `resize2fs 1.47.0 (5-Feb-2023)`.
fn is_version_banner(line: &str) -> bool {
    let mut words = line.split_whitespace();
    matches!(
        (words.next(), words.next()),
        (Some(tool), Some(version))
            if tool.chars().all(|c| c.is_ascii_alphanumeric())
                && version.starts_with(|c: char| c.is_ascii_digit())
                && version.contains('.')
    )
}

/// `resize2fs -P`: the smallest file system the files in `image` fit in.
async fn smallest_size(image: &Path) -> Option<u64> {
    let output = run_unchecked("resize2fs", args!["-P", image], None)
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let blocks: u64 = field(&text, "Estimated minimum size of the filesystem:")?;
    Some(blocks * block_size(image).await?)
}

/// The value after `name` on its line of a tool's output.
fn field(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(name))
        .and_then(|rest| rest.trim().parse().ok())
}

async fn superblock(image: &Path) -> Option<String> {
    let output = run_unchecked("dumpe2fs", args!["-h", image], None)
        .await
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

async fn block_size(image: &Path) -> Option<u64> {
    field(&superblock(image).await?, "Block size:")
}

/// The size of the ext4 file system in `image`, from its superblock.
async fn file_system_size(image: &Path) -> Option<u64> {
    let text = superblock(image).await?;
    Some(field(&text, "Block count:")? * field(&text, "Block size:")?)
}

fn file_size(path: &Path) -> Result<u64, DriverError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| DriverError::io(format!("cannot stat {}", path.display()), e))
}

fn set_file_size(path: &Path, size: u64) -> Result<(), DriverError> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(size))
        .map_err(|e| DriverError::io(format!("cannot resize {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_differs_is_changed() {
        let before = ContainerSettings {
            hostname: Some("a".into()),
            memory_bytes: Some(64 << 20),
            ..Default::default()
        };
        let after = ContainerSettings {
            memory_bytes: Some(128 << 20),
            ..before.clone()
        };
        assert_eq!(
            Changed::between(Some(&before), &after),
            Changed {
                hostname: false,
                cpus: false,
                memory: true,
                addresses: false,
                nameservers: false,
            }
        );
        assert_eq!(
            Changed::between(Some(&before), &after).unchanged_live(),
            ["hostname", "cpus", "ipadd", "nameserver"]
        );
        // Removing the host name is a change: it goes back to the default.
        let unnamed = ContainerSettings {
            hostname: None,
            ..before.clone()
        };
        assert!(Changed::between(Some(&before), &unnamed).hostname);
        // Without the settings before, everything is applied.
        assert_eq!(Changed::between(None, &after), Changed::ALL);
    }

    #[test]
    fn the_version_banner_is_told_from_the_reason() {
        assert!(is_version_banner("resize2fs 1.47.0 (5-Feb-2023)"));
        assert!(!is_version_banner(
            "resize2fs: New size smaller than minimum (61404)"
        ));
        assert!(!is_version_banner("Please run 'e2fsck -f image' first."));
    }
}
