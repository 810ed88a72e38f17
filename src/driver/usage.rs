//! What a running container uses, read straight from the kernel's files:
//! its cgroup (CPU time, memory) and the host side of its veth (network).
//! Finding them costs one `lxc-info` per container start; every reading
//! after that is a few small reads of cgroupfs and sysfs, so sampling a
//! hundred containers stays far below a percent of one CPU.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::lxc_config::CgroupVersion;

/// One reading of a running container's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// CPU time used since it started, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory charged to its cgroup now (page cache included, as the
    /// limit counts it).
    pub memory_bytes: u64,
    /// Its memory limit; `None` when it has none.
    pub memory_limit_bytes: Option<u64>,
    /// Bytes the container received, from its point of view (what the
    /// host side of the veth sent); `None` without a veth.
    pub net_in_bytes: Option<u64>,
    /// Bytes the container sent (what the host side received).
    pub net_out_bytes: Option<u64>,
}

/// Where one running container's counters are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Probe {
    /// `cpuacct.usage` (v1, nanoseconds) or `cpu.stat` (v2, `usage_usec`).
    cpu: PathBuf,
    /// The cgroup directory holding its memory files.
    memory: PathBuf,
    /// The host side of its veth.
    veth: Option<String>,
}

/// The cgroup hierarchies this host mounts, found once.
#[derive(Debug, Clone)]
pub(crate) struct CgroupRoots {
    version: CgroupVersion,
    /// v1: the hierarchies holding `cpuacct` and `memory`; v2: both the
    /// unified mount.
    cpu: PathBuf,
    memory: PathBuf,
}

impl CgroupRoots {
    /// Reads the mount table (`/proc/self/mounts` format).
    pub fn from_mounts(version: CgroupVersion, mounts: &str) -> Option<Self> {
        let mut cpu = None;
        let mut memory = None;
        let mut unified = None;
        for line in mounts.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [_, target, kind, options, ..] = fields[..] else {
                continue;
            };
            let target = PathBuf::from(unescape_mount(target));
            match kind {
                "cgroup2" => unified = Some(target),
                "cgroup" => {
                    let options: Vec<&str> = options.split(',').collect();
                    if options.contains(&"cpuacct") {
                        cpu = Some(target.clone());
                    }
                    if options.contains(&"memory") {
                        memory = Some(target);
                    }
                }
                _ => {}
            }
        }
        match version {
            CgroupVersion::V1 => Some(CgroupRoots {
                version,
                cpu: cpu?,
                memory: memory?,
            }),
            CgroupVersion::V2 => {
                let unified = unified?;
                Some(CgroupRoots {
                    version,
                    cpu: unified.clone(),
                    memory: unified,
                })
            }
        }
    }

    pub fn detect(version: CgroupVersion) -> Option<Self> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
        CgroupRoots::from_mounts(version, &mounts)
    }

    /// Where the container whose init reports `proc_cgroup` (the text of
    /// `/proc/<pid>/cgroup`) keeps its counters. Its init may have moved
    /// itself below the container's cgroup (a systemd inside does): the
    /// container's own cgroup, `lxc.payload.<name>`, is the one counted.
    pub fn probe(&self, name: &str, proc_cgroup: &str, veth: Option<String>) -> Option<Probe> {
        let path_of = |wanted: &str| {
            proc_cgroup.lines().find_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                let hit = match self.version {
                    CgroupVersion::V2 => controllers.is_empty(),
                    CgroupVersion::V1 => controllers.split(',').any(|c| c == wanted),
                };
                hit.then(|| container_cgroup(name, path))
            })
        };
        let cpu_dir = self.cpu.join(path_of("cpuacct")?);
        let memory = self.memory.join(path_of("memory")?);
        let cpu = match self.version {
            CgroupVersion::V1 => cpu_dir.join("cpuacct.usage"),
            CgroupVersion::V2 => cpu_dir.join("cpu.stat"),
        };
        Some(Probe { cpu, memory, veth })
    }

    /// Reads the counters; an error when any of them is gone (the
    /// container stopped, or restarted with a new veth).
    pub fn read(&self, probe: &Probe) -> std::io::Result<Usage> {
        let cpu_ns = match self.version {
            CgroupVersion::V1 => number(&read(&probe.cpu)?)?,
            CgroupVersion::V2 => {
                let stat = read(&probe.cpu)?;
                let usec = stat
                    .lines()
                    .find_map(|line| line.strip_prefix("usage_usec "))
                    .ok_or_else(|| invalid(&probe.cpu))?;
                number(usec)?.saturating_mul(1000)
            }
        };
        let (current, limit) = match self.version {
            CgroupVersion::V1 => ("memory.usage_in_bytes", "memory.limit_in_bytes"),
            CgroupVersion::V2 => ("memory.current", "memory.max"),
        };
        let memory_bytes = number(&read(&probe.memory.join(current))?)?;
        let limit = read(&probe.memory.join(limit))?;
        // v1 says "no limit" with a huge number (the page-rounded i64::MAX).
        let memory_limit_bytes = match limit.trim() {
            "max" => None,
            value => Some(number(value)?).filter(|&bytes| bytes < 1 << 62),
        };
        let (net_in_bytes, net_out_bytes) = match &probe.veth {
            Some(veth) => {
                let stats = Path::new("/sys/class/net").join(veth).join("statistics");
                // The host side receives what the container sends.
                let received_by_host = number(&read(&stats.join("rx_bytes"))?)?;
                let sent_by_host = number(&read(&stats.join("tx_bytes"))?)?;
                (Some(sent_by_host), Some(received_by_host))
            }
            None => (None, None),
        };
        Ok(Usage {
            cpu_ns,
            memory_bytes,
            memory_limit_bytes,
            net_in_bytes,
            net_out_bytes,
        })
    }
}

/// The path of `name`'s own cgroup within `path`: up to its
/// `lxc.payload.<name>` (LXC 4 and later) or `lxc/<name>` component.
fn container_cgroup(name: &str, path: &str) -> PathBuf {
    let payload = format!("lxc.payload.{name}");
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let end = parts
        .iter()
        .position(|p| *p == payload)
        .or_else(|| {
            parts
                .windows(2)
                .position(|w| w == ["lxc", name])
                .map(|i| i + 1)
        })
        .map_or(parts.len(), |i| i + 1);
    parts[..end].iter().collect()
}

fn unescape_mount(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

fn read(path: &Path) -> std::io::Result<String> {
    std::fs::read_to_string(path)
}

fn number(text: &str) -> std::io::Result<u64> {
    text.trim()
        .parse()
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, text.trim().to_owned()))
}

fn invalid(path: &Path) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("{} has no usage_usec", path.display()),
    )
}

/// The PID and host-side veth `lxc-info -p -S -H` reports.
pub(crate) fn parse_lxc_info(output: &str) -> (Option<u32>, Option<String>) {
    let mut pid = None;
    let mut veth = None;
    for line in output.lines() {
        if let Some(value) = line.strip_prefix("PID:") {
            pid = value.trim().parse().ok();
        } else if let Some(value) = line.strip_prefix("Link:") {
            let value = value.trim();
            if veth.is_none() && !value.is_empty() {
                veth = Some(value.to_owned());
            }
        }
    }
    (pid, veth)
}

/// The probes found so far, by container name.
#[derive(Default)]
pub(crate) struct Probes(Mutex<HashMap<String, Probe>>);

impl Probes {
    pub fn get(&self, name: &str) -> Option<Probe> {
        self.0.lock().expect("probes").get(name).cloned()
    }
    pub fn set(&self, name: &str, probe: Probe) {
        self.0
            .lock()
            .expect("probes")
            .insert(name.to_owned(), probe);
    }
    pub fn forget(&self, name: &str) {
        self.0.lock().expect("probes").remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,relatime,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
";

    #[test]
    fn v1_counters_are_found_in_the_controllers_hierarchies() {
        let roots = CgroupRoots::from_mounts(CgroupVersion::V1, HYBRID_MOUNTS).unwrap();
        let probe = roots
            .probe(
                "web",
                "4:memory:/lxc.payload.web\n2:cpu,cpuacct:/lxc.payload.web/init.scope\n0::/lxc.payload.web\n",
                Some("vethAB12".into()),
            )
            .unwrap();
        assert_eq!(
            probe.cpu,
            Path::new("/sys/fs/cgroup/cpu,cpuacct/lxc.payload.web/cpuacct.usage")
        );
        assert_eq!(
            probe.memory,
            Path::new("/sys/fs/cgroup/memory/lxc.payload.web")
        );
    }

    #[test]
    fn v2_counters_are_in_the_unified_hierarchy() {
        let mounts = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0\n";
        let roots = CgroupRoots::from_mounts(CgroupVersion::V2, mounts).unwrap();
        let probe = roots
            .probe("db", "0::/lxc.payload.db/init.scope\n", None)
            .unwrap();
        assert_eq!(
            probe.cpu,
            Path::new("/sys/fs/cgroup/lxc.payload.db/cpu.stat")
        );
        assert_eq!(probe.memory, Path::new("/sys/fs/cgroup/lxc.payload.db"));
    }

    #[test]
    fn older_lxc_cgroups_are_cut_at_the_container() {
        assert_eq!(container_cgroup("a", "/lxc/a/x"), Path::new("lxc/a"));
        assert_eq!(container_cgroup("a", "/other"), Path::new("other"));
    }

    #[test]
    fn counters_are_read_with_the_directions_of_the_container() {
        let dir = tempfile::tempdir().unwrap();
        let cg = dir.path().join("lxc.payload.c");
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::write(cg.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        std::fs::write(cg.join("memory.current"), "4096\n").unwrap();
        std::fs::write(cg.join("memory.max"), "max\n").unwrap();
        let mounts = format!("cgroup2 {} cgroup2 rw 0 0\n", dir.path().display());
        let roots = CgroupRoots::from_mounts(CgroupVersion::V2, &mounts).unwrap();
        let probe = roots.probe("c", "0::/lxc.payload.c\n", None).unwrap();
        let usage = roots.read(&probe).unwrap();
        assert_eq!(usage.cpu_ns, 1_500_000);
        assert_eq!(usage.memory_bytes, 4096);
        assert_eq!(usage.memory_limit_bytes, None);
        std::fs::write(cg.join("memory.max"), "67108864\n").unwrap();
        assert_eq!(
            roots.read(&probe).unwrap().memory_limit_bytes,
            Some(64 << 20)
        );
        std::fs::remove_file(cg.join("cpu.stat")).unwrap();
        assert!(roots.read(&probe).is_err());
    }

    #[test]
    fn lxc_info_gives_the_pid_and_the_host_side_veth() {
        let output = "PID:            4242\nCPU use:        1\nLink:           vethQ1W2E3\n TX bytes:      10\n";
        assert_eq!(
            parse_lxc_info(output),
            (Some(4242), Some("vethQ1W2E3".to_owned()))
        );
        assert_eq!(parse_lxc_info(""), (None, None));
    }
}
