//! Backups: what a berth backup archive says about itself (its manifest),
//! and how a Proxmox container backup's `pct.conf` maps onto berth's
//! parameters. Pure: reading and writing the archives is the driver's.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::parameters::Parameters;

/// The first entry of every berth backup archive; the root filesystem
/// follows under `rootfs/` (or `rootfs.img`, a disk image kept sparse).
pub const MANIFEST_NAME: &str = "berth-backup.json";
/// Where a Proxmox vzdump archive of a container keeps its configuration.
pub const PROXMOX_CONFIG: &str = "./etc/vzdump/pct.conf";
/// `format` of a berth manifest.
pub const MANIFEST_FORMAT: &str = "berth-backup";
/// The manifest version this berth writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// What a berth backup archive holds beside the root filesystem: enough to
/// make the container again on a host that has never seen it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// The container's name when it was backed up.
    pub name: String,
    pub ostemplate: String,
    pub parameters: Option<Parameters>,
    pub berth_version: String,
    /// RFC 3339 UTC.
    pub created_at: String,
}

impl Manifest {
    /// Reads a manifest; says why it is not one berth can restore.
    pub fn parse(text: &[u8]) -> Result<Manifest, String> {
        let manifest: Manifest = serde_json::from_slice(text)
            .map_err(|e| format!("{MANIFEST_NAME} is not a berth backup manifest: {e}"))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(format!(
                "{MANIFEST_NAME} has format {:?}, not {MANIFEST_FORMAT:?}",
                manifest.format
            ));
        }
        if manifest.format_version > MANIFEST_VERSION {
            return Err(format!(
                "{MANIFEST_NAME} is format version {}, newer than this berth reads \
                 ({MANIFEST_VERSION}); restore it with a newer berth",
                manifest.format_version
            ));
        }
        Ok(manifest)
    }
}

/// Which kind of archive a backup is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupKind {
    /// Written by berth: `berth-backup.json`, then `rootfs/`.
    Berth,
    /// A Proxmox vzdump of a container: its root filesystem at `./`.
    Proxmox,
}

impl BackupKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupKind::Berth => "berth",
            BackupKind::Proxmox => "proxmox",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [BackupKind::Berth, BackupKind::Proxmox]
            .into_iter()
            .find(|kind| kind.as_str() == raw)
    }
}

/// A Proxmox container configuration as berth's parameters: what mapped,
/// and, in words for the job log, what did not.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxmoxMapping {
    /// The parameters, as the JSON object a create request would carry.
    pub parameters: Map<String, Value>,
    /// `ostype` as the container's template name (`proxmox-debian`).
    pub ostemplate: String,
    pub hostname: Option<String>,
    /// One line per setting berth could not carry over.
    pub unmapped: Vec<String>,
}

/// Maps `pct.conf` (the current configuration: snapshot sections after the
/// first `[name]` line are not the container's state and are ignored).
pub fn map_proxmox(config: &str) -> ProxmoxMapping {
    let mut parameters = Map::new();
    let mut unmapped = Vec::new();
    let mut ostype = None;
    let mut hostname = None;
    for line in config.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            break;
        }
        // `#` lines are the container's description.
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            unmapped.push(format!("{line:?}: not a `key: value` line"));
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "hostname" => {
                hostname = Some(value.to_owned());
                parameters.insert("hostname".into(), value.into());
            }
            "cores" => {
                parameters.insert("cpus".into(), value.into());
            }
            "memory" => {
                parameters.insert("memsize".into(), value.into());
                parameters.insert("memsize_units".into(), "M".into());
            }
            "nameserver" => {
                let servers: Vec<&str> = value.split_whitespace().collect();
                parameters.insert("nameserver".into(), servers.join(",").into());
            }
            "ostype" => ostype = Some(value.to_owned()),
            "rootfs" => map_rootfs(value, &mut parameters, &mut unmapped),
            "net0" => map_net0(value, &mut parameters, &mut unmapped),
            // Proxmox's own bookkeeping, nothing of the container's.
            "arch" | "digest" | "lock" | "parent" | "snaptime" => {}
            _ => unmapped.push(format!(
                "{key}: {value} (berth has no such setting; not carried over)"
            )),
        }
    }
    ProxmoxMapping {
        parameters,
        ostemplate: format!(
            "proxmox-{}",
            ostype
                .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric()))
                .unwrap_or_else(|| "unknown".into())
        ),
        hostname,
        unmapped,
    }
}

/// `rootfs: local-lvm:vm-100-disk-0,size=8G`: the size becomes berth's disk.
fn map_rootfs(value: &str, parameters: &mut Map<String, Value>, unmapped: &mut Vec<String>) {
    let mut options = value.split(',');
    let volume = options.next().unwrap_or_default();
    let mut sized = false;
    for option in options {
        match option.split_once('=') {
            Some(("size", size)) => {
                let (number, unit) = split_size(size);
                match (number.parse::<u64>(), unit) {
                    (Ok(n), Some(unit)) if n > 0 => {
                        parameters.insert("size".into(), number.into());
                        parameters.insert("size_units".into(), unit.into());
                        sized = true;
                    }
                    _ => unmapped.push(format!("rootfs size={size} (not a size berth reads)")),
                }
            }
            _ => unmapped.push(format!("rootfs {option} (not carried over)")),
        }
    }
    if !sized {
        unmapped.push(format!(
            "rootfs {volume} has no size: the disk is not limited"
        ));
    }
}

/// `8G` → ("8", Some("G")); a bare number is bytes in Proxmox, which
/// berth does not take (its smallest unit is K).
fn split_size(size: &str) -> (&str, Option<&'static str>) {
    let unit = match size.chars().last() {
        Some('K' | 'k') => "K",
        Some('M' | 'm') => "M",
        Some('G' | 'g') => "G",
        Some('T' | 't') => "T",
        _ => return (size, None),
    };
    (&size[..size.len() - 1], Some(unit))
}

/// `net0: name=eth0,bridge=vmbr0,hwaddr=…,ip=192.0.2.10/24,gw=192.0.2.1,
/// ip6=…,type=veth`: the static addresses become `ipadd`.
fn map_net0(value: &str, parameters: &mut Map<String, Value>, unmapped: &mut Vec<String>) {
    let mut addresses = Vec::new();
    for option in value.split(',') {
        let Some((key, value)) = option.split_once('=') else {
            unmapped.push(format!("net0 {option} (not carried over)"));
            continue;
        };
        match key {
            "ip" | "ip6" if matches!(value, "dhcp" | "auto" | "manual") => unmapped.push(format!(
                "net0 {key}={value} (berth sets static addresses only)"
            )),
            "ip" | "ip6" => addresses.push(value.to_owned()),
            // berth's containers are on its own bridge, with an address LXC
            // makes: the Proxmox host's are not this host's.
            "name" if value == "eth0" => {}
            _ => unmapped.push(format!("net0 {key}={value} (not carried over)")),
        }
    }
    if !addresses.is_empty() {
        parameters.insert("ipadd".into(), addresses.join(",").into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// As `pct config` writes it (pve-container's PVE::LXC::Config), with a
    /// description, a snapshot section and settings berth has no match for.
    const PCT_CONF: &str = "#web server\n#second line\narch: amd64\ncores: 2\n\
        features: nesting=1\nhostname: web1\nmemory: 1024\nmp0: local-lvm:vm-100-disk-1,mp=/srv,size=4G\n\
        nameserver: 192.0.2.53 192.0.2.54\n\
        net0: name=eth0,bridge=vmbr0,firewall=1,gw=192.0.2.1,hwaddr=BC:24:11:00:00:01,ip=192.0.2.10/24,ip6=2001:db8::10/64,type=veth\n\
        ostype: debian\nrootfs: local-lvm:vm-100-disk-0,size=8G\nswap: 512\nunprivileged: 1\n\
        \n[before-upgrade]\ncores: 4\nhostname: old\n";

    #[test]
    fn maps_what_berth_has_and_names_the_rest() {
        let mapping = map_proxmox(PCT_CONF);
        assert_eq!(
            Value::Object(mapping.parameters.clone()),
            json!({
                "cpus": "2", "hostname": "web1", "memsize": "1024", "memsize_units": "M",
                "nameserver": "192.0.2.53,192.0.2.54",
                "ipadd": "192.0.2.10/24,2001:db8::10/64",
                "size": "8", "size_units": "G"
            })
        );
        assert_eq!(mapping.ostemplate, "proxmox-debian");
        assert_eq!(mapping.hostname.as_deref(), Some("web1"));
        let unmapped = mapping.unmapped.join("\n");
        for key in [
            "features",
            "mp0",
            "swap",
            "unprivileged",
            "bridge=vmbr0",
            "gw=192.0.2.1",
            "hwaddr",
            "firewall",
            "type=veth",
        ] {
            assert!(unmapped.contains(key), "{key} not named in {unmapped}");
        }
        assert!(!unmapped.contains("arch"), "{unmapped}");
    }

    #[test]
    fn dynamic_addresses_and_sizes_berth_cannot_read_are_named() {
        let mapping = map_proxmox("net0: name=eth0,ip=dhcp\nrootfs: local:100/vm.raw,size=1000\n");
        assert!(!mapping.parameters.contains_key("ipadd"));
        assert!(!mapping.parameters.contains_key("size"));
        assert_eq!(mapping.unmapped.len(), 3, "{:?}", mapping.unmapped);
        assert_eq!(mapping.ostemplate, "proxmox-unknown");
    }

    #[test]
    fn a_manifest_round_trips_and_a_foreign_one_is_refused() {
        let manifest = Manifest {
            format: MANIFEST_FORMAT.into(),
            format_version: MANIFEST_VERSION,
            name: "c1".into(),
            ostemplate: "busybox".into(),
            parameters: None,
            berth_version: "0.1.0".into(),
            created_at: "2026-11-30T00:00:00Z".into(),
        };
        let text = serde_json::to_vec(&manifest).unwrap();
        assert_eq!(Manifest::parse(&text).unwrap(), manifest);
        assert!(Manifest::parse(b"{\"format\":\"other\"}").is_err());
        let newer = text_with(&manifest, |m| m.format_version = 99);
        assert!(Manifest::parse(&newer).unwrap_err().contains("newer"));
    }

    fn text_with(manifest: &Manifest, change: impl FnOnce(&mut Manifest)) -> Vec<u8> {
        let mut changed = manifest.clone();
        change(&mut changed);
        serde_json::to_vec(&changed).unwrap()
    }
}
