//! Storage pools: where containers' root filesystems live and how they are
//! made. A pool is a named place with a driver: `dir` (a copy of the
//! template cache's tree, or an ext4 image on a loop device when `size` is
//! set; the layout berth always had) or `btrfs` (the template cache entry
//! is a subvolume, a container a writable snapshot of it, `size` a qgroup
//! limit). Which pools exist and whether each can work here is decided once
//! at start, so that a pool that cannot work says why before any job runs.

pub mod btrfs;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::command;

/// The drivers a pool can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageDriver {
    Dir,
    Btrfs,
}

impl StorageDriver {
    pub const ALL: [StorageDriver; 2] = [StorageDriver::Dir, StorageDriver::Btrfs];

    pub fn as_str(self) -> &'static str {
        match self {
            StorageDriver::Dir => "dir",
            StorageDriver::Btrfs => "btrfs",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == text)
    }

    /// Whether a container on such a pool can move to another node (its
    /// files are sent as one tar stream of the container's directory).
    pub fn can_move(self) -> bool {
        self == StorageDriver::Dir
    }
}

impl fmt::Display for StorageDriver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One pool as configured (checked and made absolute by the settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    pub name: String,
    pub driver: StorageDriver,
    pub path: PathBuf,
}

/// A configured pool and whether it can work on this host.
#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    pub driver: StorageDriver,
    pub path: PathBuf,
    /// Why the pool cannot be used here; `None` when it can.
    pub unusable: Option<String>,
}

/// Space of the file system holding a pool, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUsage {
    pub capacity: u64,
    pub used: u64,
    pub free: u64,
}

impl Pool {
    /// The pool's space now, read from its file system (snapshots and
    /// templates included: what is on the disk counts).
    pub fn usage(&self) -> Option<PoolUsage> {
        let stat = rustix::fs::statvfs(&self.path).ok()?;
        let capacity = stat.f_blocks.saturating_mul(stat.f_frsize);
        let free = stat.f_bavail.saturating_mul(stat.f_frsize);
        let used = stat
            .f_blocks
            .saturating_sub(stat.f_bfree)
            .saturating_mul(stat.f_frsize);
        Some(PoolUsage {
            capacity,
            used,
            free,
        })
    }
}

/// Every pool of this host, in configuration order (the first is the
/// default for a create that names none).
#[derive(Debug, Clone)]
pub struct Pools(Arc<Vec<Pool>>);

impl Pools {
    /// Looks at each configured pool once: whether its driver can work on
    /// this host, and why not.
    pub fn probe(configs: &[PoolConfig]) -> Self {
        let pools = configs
            .iter()
            .map(|config| Pool {
                name: config.name.clone(),
                driver: config.driver,
                path: config.path.clone(),
                unusable: why_unusable(config),
            })
            .collect();
        Pools(Arc::new(pools))
    }

    pub fn all(&self) -> &[Pool] {
        &self.0
    }

    pub fn get(&self, name: &str) -> Option<&Pool> {
        self.0.iter().find(|pool| pool.name == name)
    }

    /// The pool a create that names none goes to.
    pub fn default_pool(&self) -> Option<&Pool> {
        self.0.first()
    }
}

fn why_unusable(config: &PoolConfig) -> Option<String> {
    let path = &config.path;
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => return Some(format!("{} is not a directory", path.display())),
        Err(error) => return Some(format!("{}: {error}", path.display())),
    }
    match config.driver {
        StorageDriver::Dir => None,
        StorageDriver::Btrfs => {
            if !command::is_installed("btrfs") {
                return Some(
                    "the `btrfs` tool is not installed (apt-get install btrfs-progs)".into(),
                );
            }
            btrfs::check_path(path).err()
        }
    }
}

/// A pool name: what a container name allows (letters, digits, `-`, `_`
/// and `.`, starting with a letter or digit), up to 63 characters.
pub fn valid_pool_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Where a container's root filesystem lives on a btrfs pool.
pub fn btrfs_rootfs(pool: &Path, name: &str) -> PathBuf {
    pool.join("containers").join(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_directory_is_no_btrfs_pool() {
        let dir = tempfile::tempdir().unwrap();
        let pools = Pools::probe(&[
            PoolConfig {
                name: "fast".into(),
                driver: StorageDriver::Btrfs,
                path: dir.path().into(),
            },
            PoolConfig {
                name: "plain".into(),
                driver: StorageDriver::Dir,
                path: dir.path().into(),
            },
        ]);
        // tmp is not btrfs on the CI hosts (tmpfs or ext4).
        let reason = pools.get("fast").unwrap().unusable.clone().unwrap();
        assert!(
            reason.contains("not on a btrfs") || reason.contains("btrfs"),
            "{reason}"
        );
        assert!(pools.get("plain").unwrap().unusable.is_none());
        assert_eq!(pools.default_pool().unwrap().name, "fast");
    }

    #[test]
    fn pool_names_follow_container_names() {
        assert!(valid_pool_name("default"));
        assert!(valid_pool_name("ssd-1"));
        assert!(!valid_pool_name(""));
        assert!(!valid_pool_name("-x"));
        assert!(!valid_pool_name("a/b"));
    }
}
