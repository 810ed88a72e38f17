//! What this host offers containers, read from the kernel when asked: the
//! CPUs berth may use, the memory, and the size of the file system that
//! holds the containers. Each read is a system call or a small /proc file,
//! cheap enough for every request that needs it, so a host that changes
//! (CPUs taken away, a disk grown) is seen at once.

use std::path::{Path, PathBuf};

use crate::domain::parameters::HostLimits;

/// The CPUs berth may use: its CPU affinity and its cgroup's CPU quota
/// count, as the standard library reads them, so that `taskset` or
/// `systemctl set-property berth AllowedCPUs=… / CPUQuota=…` lower it.
pub fn cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get().try_into().unwrap_or(u32::MAX))
}

/// The host's memory (MemTotal).
pub fn memory_bytes() -> std::io::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| std::io::Error::other("/proc/meminfo has no MemTotal line in kB"))
}

/// The total size of the file system holding `path`.
pub fn file_system_bytes(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_blocks.saturating_mul(stat.f_frsize))
}

/// The host's CPU time so far as (busy, total) in clock ticks, from the
/// first line of /proc/stat: the share busy between two readings is the
/// host's CPU use.
pub fn cpu_times() -> std::io::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat
        .lines()
        .find_map(|line| line.strip_prefix("cpu "))
        .ok_or_else(|| std::io::Error::other("/proc/stat has no cpu line"))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest is in user).
    let total: u64 = ticks.iter().take(8).sum();
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    Ok((total.saturating_sub(idle), total))
}

/// Memory the host could give programs now without swapping (MemAvailable).
pub fn memory_available_bytes() -> std::io::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemAvailable:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kib| kib.trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| std::io::Error::other("/proc/meminfo has no MemAvailable line in kB"))
}

/// (used, total) bytes of the file system holding `path`.
pub fn file_system_use(path: &Path) -> std::io::Result<(u64, u64)> {
    let stat = rustix::fs::statvfs(path)?;
    let total = stat.f_blocks.saturating_mul(stat.f_frsize);
    let free = stat.f_bfree.saturating_mul(stat.f_frsize);
    Ok((total.saturating_sub(free), total))
}

/// (used, total) bytes of the host's memory and of the LXC path's file
/// system; `None` where it cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostUsage {
    pub memory: Option<(u64, u64)>,
    pub disk: Option<(u64, u64)>,
}

/// Reads the host's limits for the checks of a request.
#[derive(Debug, Clone)]
pub struct HostProbe {
    lxc_path: PathBuf,
    allow_disk_overcommit: bool,
}

impl HostProbe {
    pub fn new(lxc_path: PathBuf, allow_disk_overcommit: bool) -> Self {
        HostProbe {
            lxc_path,
            allow_disk_overcommit,
        }
    }

    /// What is used now: memory (total less MemAvailable) and the file
    /// system holding the containers, each as (used, total) bytes.
    pub fn usage(&self) -> HostUsage {
        HostUsage {
            memory: memory_bytes()
                .and_then(|total| Ok((total.saturating_sub(memory_available_bytes()?), total)))
                .ok(),
            disk: file_system_use(&self.lxc_path).ok(),
        }
    }

    /// The limits now. A disk is bounded by the *total* size of the file
    /// system under the LXC path, not by its free space: disk images are
    /// sparse and take blocks only as the container writes, so free space
    /// at request time does not say whether the disk will fit later, and
    /// counting it would refuse growing a disk because of the blocks that
    /// disk itself already holds. A disk larger than the whole file system,
    /// though, can never be filled: that is overcommit, allowed only when
    /// the operator says so. A limit that cannot be read is not enforced
    /// (and logged), rather than refusing every request.
    pub fn limits(&self) -> HostLimits {
        let memory_bytes = memory_bytes()
            .map_err(|e| {
                log::warn!("cannot read the host's memory size, memsize is not bounded: {e}")
            })
            .ok();
        let disk_bytes = if self.allow_disk_overcommit {
            None
        } else {
            file_system_bytes(&self.lxc_path)
                .map_err(|e| {
                    log::warn!(
                        "cannot read the size of the file system holding {}, size is not bounded: {e}",
                        self.lxc_path.display()
                    )
                })
                .ok()
        };
        HostLimits {
            cpus: cpus(),
            memory_bytes,
            disk_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_host_has_cpus_memory_and_a_file_system() {
        assert!(cpus() >= 1);
        assert!(memory_bytes().unwrap() > 16 << 20);
        let dir = tempfile::tempdir().unwrap();
        let limits = HostProbe::new(dir.path().into(), false).limits();
        assert!(limits.disk_bytes.unwrap() > 0);
        assert_eq!(
            limits.disk_bytes,
            Some(file_system_bytes(dir.path()).unwrap())
        );
        let thin = HostProbe::new(dir.path().into(), true).limits();
        assert_eq!(thin.disk_bytes, None);
    }
}
