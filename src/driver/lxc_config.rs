//! The LXC configuration file berth writes for each container, rendered
//! from validated settings only, with a last check that no value can add a
//! line of its own.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::DriverError;
use crate::domain::parameters::ContainerSettings;

/// Which cgroup hierarchy holds the resource controllers on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Legacy or hybrid: controllers in v1 hierarchies (`lxc.cgroup.*`).
    V1,
    /// Unified: everything under cgroup2 (`lxc.cgroup2.*`).
    V2,
}

impl CgroupVersion {
    /// A pure cgroup v2 host mounts cgroup2 at /sys/fs/cgroup, where
    /// `cgroup.controllers` then lives; hybrid hosts mount a tmpfs there.
    pub fn detect() -> Self {
        if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            CgroupVersion::V2
        } else {
            CgroupVersion::V1
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            CgroupVersion::V1 => "lxc.cgroup",
            CgroupVersion::V2 => "lxc.cgroup2",
        }
    }

    /// The cgroup files (name, value) that enforce the limits, or lift them.
    pub fn limits(self, settings: &ContainerSettings) -> Vec<(&'static str, String)> {
        const PERIOD_US: u64 = 100_000;
        match self {
            CgroupVersion::V1 => vec![
                (
                    "memory.limit_in_bytes",
                    settings.memory_bytes.map_or("-1".into(), |b| b.to_string()),
                ),
                ("cpu.cfs_period_us", PERIOD_US.to_string()),
                (
                    "cpu.cfs_quota_us",
                    settings
                        .cpus
                        .map_or("-1".into(), |n| (u64::from(n) * PERIOD_US).to_string()),
                ),
            ],
            CgroupVersion::V2 => vec![
                (
                    "memory.max",
                    settings
                        .memory_bytes
                        .map_or("max".into(), |b| b.to_string()),
                ),
                (
                    "cpu.max",
                    match settings.cpus {
                        Some(n) => format!("{} {PERIOD_US}", u64::from(n) * PERIOD_US),
                        None => format!("max {PERIOD_US}"),
                    },
                ),
            ],
        }
    }
}

/// Where one container's files live under the LXC path.
#[derive(Debug, Clone)]
pub struct ContainerPaths {
    pub dir: PathBuf,
}

impl ContainerPaths {
    pub fn new(lxc_path: &Path, name: &str) -> Self {
        ContainerPaths {
            dir: lxc_path.join(name),
        }
    }
    pub fn config(&self) -> PathBuf {
        self.dir.join("config")
    }
    /// Holds the id of the berth container this directory belongs to.
    pub fn owner_marker(&self) -> PathBuf {
        self.dir.join("berth-owner")
    }
    pub fn rootfs_dir(&self) -> PathBuf {
        self.dir.join("rootfs")
    }
    pub fn rootfs_image(&self) -> PathBuf {
        self.dir.join("rootfs.img")
    }
    /// Present while the disk image is being resized (its target size
    /// inside), so that a resize a crash cut off is finished at the next
    /// start.
    pub fn resize_marker(&self) -> PathBuf {
        self.dir.join("resizing")
    }
    /// The snapshots of a root filesystem kept here (`dir` pools).
    pub fn snapshots_dir(&self) -> PathBuf {
        self.dir.join("snapshots")
    }
    pub fn staging_dir(&self) -> PathBuf {
        self.dir.join("rootfs.partial")
    }
    pub fn staging_image(&self) -> PathBuf {
        self.dir.join("rootfs.img.partial")
    }
    /// Files berth manages and bind-mounts into the container.
    pub fn managed_dir(&self) -> PathBuf {
        self.dir.join("berth")
    }
    pub fn hostname_file(&self) -> PathBuf {
        self.managed_dir().join("hostname")
    }
    pub fn resolv_conf_file(&self) -> PathBuf {
        self.managed_dir().join("resolv.conf")
    }
    pub fn lxc_log(&self) -> PathBuf {
        self.dir.join("lxc.log")
    }
    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }
    /// Present while berth holds the container frozen, so that a freeze a
    /// crash left in place is thawed at the next start.
    pub fn frozen_marker(&self) -> PathBuf {
        self.dir.join("frozen-by-berth")
    }
}

/// What the config depends on besides the container's own settings.
pub struct ConfigInputs<'a> {
    pub name: &'a str,
    pub settings: &'a ContainerSettings,
    pub paths: &'a ContainerPaths,
    pub bridge: &'a str,
    pub cgroup: CgroupVersion,
    /// Whether the root filesystem is an ext4 image rather than a directory.
    pub disk_image: bool,
    /// A root filesystem outside the container's directory (a subvolume
    /// in a btrfs pool).
    pub rootfs: Option<&'a Path>,
}

pub fn render(inputs: &ConfigInputs<'_>) -> Result<String, DriverError> {
    let mut entries: Vec<(String, String)> = Vec::new();
    let paths = inputs.paths;
    let hostname = inputs.settings.hostname.as_deref().unwrap_or(inputs.name);

    entries.push((
        "lxc.include".into(),
        "/usr/share/lxc/config/common.conf".into(),
    ));
    entries.push(("lxc.arch".into(), std::env::consts::ARCH.into()));
    entries.push(("lxc.uts.name".into(), hostname.into()));
    entries.push((
        "lxc.rootfs.path".into(),
        if let Some(rootfs) = inputs.rootfs {
            format!("dir:{}", path_value(rootfs)?)
        } else if inputs.disk_image {
            format!("loop:{}", path_value(&paths.rootfs_image())?)
        } else {
            format!("dir:{}", path_value(&paths.rootfs_dir())?)
        },
    ));
    entries.push(("lxc.tty.max".into(), "0".into()));
    entries.push((
        "lxc.console.logfile".into(),
        path_value(&paths.console_log())?,
    ));
    entries.push(("lxc.net.0.type".into(), "veth".into()));
    entries.push(("lxc.net.0.link".into(), inputs.bridge.into()));
    entries.push(("lxc.net.0.flags".into(), "up".into()));
    entries.push(("lxc.net.0.name".into(), "eth0".into()));
    for address in &inputs.settings.addresses {
        let key = if address.addr.is_ipv4() {
            "lxc.net.0.ipv4.address"
        } else {
            "lxc.net.0.ipv6.address"
        };
        entries.push((key.into(), address.to_string()));
    }
    entries.push((
        "lxc.mount.entry".into(),
        format!(
            "{} etc/hostname none bind,create=file 0 0",
            path_value(&paths.hostname_file())?
        ),
    ));
    if !inputs.settings.nameservers.is_empty() {
        entries.push((
            "lxc.mount.entry".into(),
            format!(
                "{} etc/resolv.conf none bind,create=file 0 0",
                path_value(&paths.resolv_conf_file())?
            ),
        ));
    }
    let prefix = inputs.cgroup.prefix();
    for (file, value) in inputs.cgroup.limits(inputs.settings) {
        // An "unlimited" value is the default; writing it would only fail
        // on hierarchies where the file is absent.
        if value != "-1" && value != "max" && !value.starts_with("max ") {
            entries.push((format!("{prefix}.{file}"), value));
        }
    }

    let mut text = String::from(
        "# Written by berth; edits here are overwritten. Change the container through berth.\n",
    );
    for (key, value) in entries {
        if value.chars().any(char::is_control) || value.is_empty() {
            return Err(DriverError::UnsafeConfigValue { key, value });
        }
        let _ = writeln!(text, "{key} = {value}");
    }
    Ok(text)
}

/// A path as a config value: it must be valid UTF-8 without line breaks.
fn path_value(path: &Path) -> Result<String, DriverError> {
    match path.to_str() {
        Some(text) if !text.chars().any(char::is_control) && !text.contains(' ') => {
            Ok(text.to_owned())
        }
        _ => Err(DriverError::UnsafeConfigValue {
            key: "path".into(),
            value: path.to_string_lossy().into_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parameters::IpAddress;

    fn render_with(
        settings: &ContainerSettings,
        cgroup: CgroupVersion,
        disk_image: bool,
    ) -> String {
        let paths = ContainerPaths::new(Path::new("/var/lib/berth/lxc"), "ct100");
        render(&ConfigInputs {
            name: "ct100",
            settings,
            paths: &paths,
            bridge: "berthbr0",
            cgroup,
            disk_image,
            rootfs: None,
        })
        .unwrap()
    }

    #[test]
    fn a_btrfs_root_filesystem_lives_in_its_pool() {
        let paths = ContainerPaths::new(Path::new("/var/lib/berth/lxc"), "ct100");
        let rootfs = Path::new("/srv/pool/containers/ct100");
        let text = render(&ConfigInputs {
            name: "ct100",
            settings: &ContainerSettings::default(),
            paths: &paths,
            bridge: "berthbr0",
            cgroup: CgroupVersion::V2,
            disk_image: false,
            rootfs: Some(rootfs),
        })
        .unwrap();
        assert!(text.contains("lxc.rootfs.path = dir:/srv/pool/containers/ct100\n"));
    }

    #[test]
    fn defaults_name_the_host_after_the_container_and_set_no_limits() {
        let text = render_with(&ContainerSettings::default(), CgroupVersion::V1, false);
        assert!(text.contains("lxc.uts.name = ct100\n"));
        assert!(text.contains("lxc.rootfs.path = dir:/var/lib/berth/lxc/ct100/rootfs\n"));
        assert!(!text.contains("memory"));
        assert!(!text.contains("cfs_quota"));
        assert!(!text.contains("resolv.conf"));
    }

    #[test]
    fn every_setting_has_its_line() {
        let settings = ContainerSettings {
            hostname: Some("web1".into()),
            cpus: Some(2),
            memory_bytes: Some(1 << 30),
            disk_bytes: Some(10 << 30),
            addresses: vec![
                IpAddress {
                    addr: "10.0.0.1".parse().unwrap(),
                    prefix: 24,
                },
                IpAddress {
                    addr: "fd00::1".parse().unwrap(),
                    prefix: 64,
                },
            ],
            nameservers: vec!["1.1.1.1".parse().unwrap()],
        };
        let v1 = render_with(&settings, CgroupVersion::V1, true);
        for line in [
            "lxc.uts.name = web1",
            "lxc.rootfs.path = loop:/var/lib/berth/lxc/ct100/rootfs.img",
            "lxc.net.0.ipv4.address = 10.0.0.1/24",
            "lxc.net.0.ipv6.address = fd00::1/64",
            "lxc.cgroup.memory.limit_in_bytes = 1073741824",
            "lxc.cgroup.cpu.cfs_quota_us = 200000",
            "lxc.cgroup.cpu.cfs_period_us = 100000",
            "lxc.mount.entry = /var/lib/berth/lxc/ct100/berth/resolv.conf etc/resolv.conf none bind,create=file 0 0",
        ] {
            assert!(v1.lines().any(|l| l == line), "missing {line:?} in\n{v1}");
        }
        let v2 = render_with(&settings, CgroupVersion::V2, true);
        assert!(
            v2.lines()
                .any(|l| l == "lxc.cgroup2.memory.max = 1073741824"),
            "{v2}"
        );
        assert!(
            v2.lines()
                .any(|l| l == "lxc.cgroup2.cpu.max = 200000 100000"),
            "{v2}"
        );
    }

    #[test]
    fn a_value_with_a_line_break_is_refused() {
        let settings = ContainerSettings {
            hostname: Some("a\nlxc.hook.pre-start = /x".into()),
            ..Default::default()
        };
        let paths = ContainerPaths::new(Path::new("/l"), "c");
        let inputs = ConfigInputs {
            name: "c",
            settings: &settings,
            paths: &paths,
            bridge: "br0",
            cgroup: CgroupVersion::V1,
            disk_image: false,
            rootfs: None,
        };
        assert!(matches!(
            render(&inputs),
            Err(DriverError::UnsafeConfigValue { .. })
        ));
    }
}
