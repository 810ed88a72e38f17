//! berth's own settings: the `[default.berth]` table of Rocket's figment
//! (Rocket.toml or `ROCKET_CONFIG`), overridden by `BERTH_*` variables.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rocket::data::{Limits, ToByteUnit};
use rocket::figment::providers::{Env, Format, Toml};
use rocket::figment::{Figment, Profile};
use serde::Deserialize;

use crate::cluster::peer::ClusterSecret;
use crate::driver::storage::{valid_pool_name, PoolConfig, StorageDriver};

/// How API clients prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    None,
    Token,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Holds the SQLite database (unless `database_url` says otherwise) and,
    /// unless set apart, the templates and the LXC path.
    pub data_dir: PathBuf,
    /// OS templates: `<ostemplate>.tar.gz|.tar.xz|.tar.zst|.tar`.
    pub template_dir: Option<PathBuf>,
    /// LXC's lxcpath; every container lives in `<lxc_path>/<name>/`.
    pub lxc_path: Option<PathBuf>,
    /// An sqlx SQLite URL; defaults to `sqlite://<data_dir>/berth.db`. The
    /// same as Rocket's `[databases.berth] url`, which may be used instead.
    pub database_url: Option<String>,
    pub auth: AuthMode,
    /// The bridge every container's eth0 is attached to; created if missing.
    pub bridge: String,
    /// Jobs of different containers that may run at once.
    pub max_parallel_jobs: usize,
    /// On shutdown, how long running jobs may take to finish before berth
    /// exits anyway (they are settled at the next start). A disk resize in
    /// progress is let finish, however long it takes.
    pub shutdown_timeout_secs: u64,
    /// How long a container's init gets to shut down before it is killed.
    pub stop_timeout_secs: u64,
    /// How long finished jobs (and their logs) stay readable.
    pub job_retention_days: u64,
    /// Keep each template unpacked once under `<lxc_path>/.template-cache`
    /// and copy later containers from there (costs the disk space of one
    /// unpacked copy per template).
    pub template_cache: bool,
    /// Host names (or addresses) besides the loopback ones that berth
    /// answers to while `auth = "none"`: every other `Host` is refused, so a
    /// web page cannot reach berth by rebinding its own name to 127.0.0.1.
    pub allowed_hosts: Vec<String>,
    /// Accept a disk `size` larger than the file system that holds the
    /// containers (thin provisioning); off, such a size is refused.
    pub allow_disk_overcommit: bool,
    /// This host's name among the nodes sharing the database; defaults to
    /// the host name.
    pub node_name: Option<String>,
    /// Where the other nodes reach this one's API; defaults to
    /// `http://<address>:<port>` of Rocket's settings.
    pub api_url: Option<String>,
    /// A node silent for longer than this counts as offline.
    pub node_timeout_secs: u64,
    /// Shared by every node of a cluster: signs the requests by which
    /// nodes hand containers to each other. Unset, this node neither sends
    /// nor receives containers.
    pub cluster_secret: Option<ClusterSecret>,
    /// Where this node keeps backup archives; defaults to
    /// `<data_dir>/backups`.
    pub backup_dir: Option<PathBuf>,
    /// How often each running container's usage is sampled; 0 turns the
    /// sampler off.
    pub stats_interval_secs: u64,
    /// How long usage samples are kept (in memory).
    pub stats_retention_secs: u64,
    /// Storage pools, one `[[default.berth.storage]]` table each; none
    /// means one `dir` pool named `default` under the LXC path.
    pub storage: Vec<StorageTable>,
}

/// One `[[default.berth.storage]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageTable {
    pub name: String,
    /// `dir` or `btrfs`.
    pub driver: String,
    /// Where the pool keeps its files; a `dir` pool's is the LXC path.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("data"),
            template_dir: None,
            lxc_path: None,
            database_url: None,
            auth: AuthMode::None,
            bridge: "berthbr0".into(),
            max_parallel_jobs: 4,
            shutdown_timeout_secs: 30,
            stop_timeout_secs: 30,
            job_retention_days: 30,
            template_cache: true,
            allowed_hosts: Vec::new(),
            allow_disk_overcommit: false,
            node_name: None,
            api_url: None,
            node_timeout_secs: 30,
            cluster_secret: None,
            stats_interval_secs: 10,
            stats_retention_secs: 3600,
            storage: Vec::new(),
            backup_dir: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Invalid(String),
    #[error("{what} {path}: {source}")]
    Directory {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The settings with every path made absolute and every directory created.
#[derive(Debug, Clone)]
pub struct ResolvedSettings {
    pub template_dir: PathBuf,
    pub lxc_path: PathBuf,
    pub database_url: String,
    pub auth: AuthMode,
    pub bridge: String,
    pub max_parallel_jobs: usize,
    pub shutdown_timeout_secs: u64,
    pub stop_timeout_secs: u64,
    pub job_retention_days: u64,
    pub template_cache: bool,
    /// Lower case; IPv6 addresses in brackets, as they appear in `Host`.
    pub allowed_hosts: Vec<String>,
    pub allow_disk_overcommit: bool,
    /// berth's directories (data, templates, LXC path) that other users may
    /// read or enter, for a warning at start.
    pub open_dirs: Vec<PathBuf>,
    pub node_name: String,
    /// `None`: derived from Rocket's address and port when berth starts.
    pub api_url: Option<String>,
    pub node_timeout_secs: u64,
    /// This host's identity among the nodes (a random id kept in the data
    /// directory): a restarted node takes its own name back, another host
    /// cannot take it while the node is alive.
    pub host_id: String,
    pub cluster_secret: Option<ClusterSecret>,
    pub stats_interval_secs: u64,
    pub stats_retention_secs: u64,
    /// The storage pools, the default one first.
    pub storage: Vec<PoolConfig>,
    pub backup_dir: PathBuf,
}

/// The JSON body limit when neither Rocket.toml nor `ROCKET_LIMITS` sets
/// one. Rocket's own default is 1 MiB, far more than any API body needs.
pub const DEFAULT_JSON_LIMIT_KIB: u64 = 64;

/// The backup upload limit when `limits.backup` is not set (the console's
/// upload form takes the same through `limits.data-form` and `limits.file`).
pub const DEFAULT_BACKUP_UPLOAD_GIB: u64 = 64;

/// Rocket's figment with the `BERTH_*` variables merged into the `berth` table.
///
/// Built as `rocket::Config::figment()` is, from Rocket's defaults with two
/// changes (the JSON limit, no client-address header), then Rocket.toml (or `ROCKET_CONFIG`) and
/// `ROCKET_*`, which may still set any limit.
pub fn figment() -> Figment {
    Figment::from(rocket_defaults())
        .merge(Toml::file(config_file()).nested())
        .merge(Env::prefixed("ROCKET_").ignore(&["PROFILE"]).global())
        .select(Profile::from_env_or(
            "ROCKET_PROFILE",
            rocket::Config::DEFAULT_PROFILE,
        ))
        .merge(
            Env::prefixed("BERTH_")
                .map(|key| format!("berth.{key}").into())
                .profile(Profile::Global),
        )
}

/// Rocket's defaults, as berth changes them.
fn rocket_defaults() -> rocket::Config {
    rocket::Config {
        limits: Limits::default()
            .limit("json", DEFAULT_JSON_LIMIT_KIB.kibibytes())
            // The console's backup upload is a multipart form: its file may
            // be as large as an upload through the API.
            .limit("data-form", DEFAULT_BACKUP_UPLOAD_GIB.gibibytes())
            .limit("file", DEFAULT_BACKUP_UPLOAD_GIB.gibibytes()),
        // Rocket believes `X-Real-IP` by default: anyone could then pick the
        // address their failed logins count against. Only a proxy the
        // operator names (`ip_header = "X-Real-IP"`) is believed.
        ip_header: None,
        ..rocket::Config::default()
    }
}

/// Where the package installs berth's configuration.
pub const PACKAGED_CONFIG: &str = "/etc/berth/berth.toml";

/// The configuration file: `ROCKET_CONFIG`; else `Rocket.toml` in the
/// working directory (a checkout); else the packaged one, so that commands
/// an operator runs on an installed host (`berth token create`) use the
/// service's database without being told where it is.
fn config_file() -> PathBuf {
    if let Some(path) = std::env::var_os("ROCKET_CONFIG") {
        return PathBuf::from(path);
    }
    let local = Path::new("Rocket.toml");
    if !local.exists() && Path::new(PACKAGED_CONFIG).exists() {
        return PathBuf::from(PACKAGED_CONFIG);
    }
    local.to_owned()
}

impl Settings {
    pub fn from_figment(figment: &Figment) -> Result<Settings, ConfigError> {
        let mut settings: Settings = if figment.contains("berth") {
            figment
                .extract_inner("berth")
                .map_err(|e| ConfigError::Invalid(e.to_string()))?
        } else {
            Settings::default()
        };
        settings.database_url = database_url(figment, settings.database_url.take())?;
        Ok(settings)
    }

    /// Checks the values, creates the directories berth needs and makes every
    /// path absolute (LXC configs must not depend on berth's working directory).
    pub fn resolve(self) -> Result<ResolvedSettings, ConfigError> {
        if self.max_parallel_jobs == 0 {
            return Err(ConfigError::Invalid(
                "max_parallel_jobs must be at least 1".into(),
            ));
        }
        if !is_valid_interface_name(&self.bridge) {
            return Err(ConfigError::Invalid(format!(
                "bridge '{}' is not a valid interface name (1-15 of letters, digits, '-', '_', '.')",
                self.bridge
            )));
        }
        let allowed_hosts = self
            .allowed_hosts
            .iter()
            .map(|host| allowed_host(host))
            .collect::<Result<Vec<_>, _>>()?;
        let data_dir = usable_dir("data directory", &self.data_dir)?;
        let template_dir = usable_dir(
            "template directory",
            &self.template_dir.unwrap_or(data_dir.join("templates")),
        )?;
        let lxc_path = usable_dir("LXC path", &self.lxc_path.unwrap_or(data_dir.join("lxc")))?;
        let database_url = self
            .database_url
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("berth.db").display()));
        let node_name = match self.node_name {
            Some(name) => name,
            None => host_name()?,
        };
        crate::domain::node::NodeName::parse(&node_name)
            .map_err(|e| ConfigError::Invalid(format!("node_name '{node_name}' {}", e.message)))?;
        if self.node_timeout_secs < 3 {
            return Err(ConfigError::Invalid(
                "node_timeout_secs must be at least 3 (nodes beat every few seconds)".into(),
            ));
        }
        if let Some(url) = &self.api_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "api_url '{url}' must be an http:// or https:// URL"
                )));
            }
        }
        if self.stats_interval_secs > 0 && self.stats_retention_secs < self.stats_interval_secs {
            return Err(ConfigError::Invalid(
                "stats_retention_secs must be at least stats_interval_secs".into(),
            ));
        }
        // Beyond a day of samples per container the history would weigh
        // more than berth itself.
        if self.stats_interval_secs > 0
            && self.stats_retention_secs / self.stats_interval_secs > 8640
        {
            return Err(ConfigError::Invalid(
                "stats_retention_secs / stats_interval_secs must be at most 8640 samples".into(),
            ));
        }
        let storage = storage_pools(self.storage, &lxc_path)?;
        let backup_dir = usable_dir(
            "backup directory",
            &self.backup_dir.unwrap_or(data_dir.join("backups")),
        )?;
        let host_id = host_id(&data_dir)?;
        let open_dirs = [&data_dir, &template_dir, &lxc_path, &backup_dir]
            .into_iter()
            .filter(|dir| open_to_others(dir))
            .cloned()
            .collect();
        Ok(ResolvedSettings {
            template_dir,
            lxc_path,
            database_url,
            auth: self.auth,
            bridge: self.bridge,
            max_parallel_jobs: self.max_parallel_jobs,
            shutdown_timeout_secs: self.shutdown_timeout_secs,
            stop_timeout_secs: self.stop_timeout_secs,
            job_retention_days: self.job_retention_days,
            template_cache: self.template_cache,
            allowed_hosts,
            allow_disk_overcommit: self.allow_disk_overcommit,
            open_dirs,
            node_name,
            api_url: self.api_url.map(|url| url.trim_end_matches('/').to_owned()),
            node_timeout_secs: self.node_timeout_secs,
            host_id,
            cluster_secret: self.cluster_secret,
            stats_interval_secs: self.stats_interval_secs,
            stats_retention_secs: self.stats_retention_secs,
            storage,
            backup_dir,
        })
    }
}

/// The pools of the `storage` tables, checked: unique valid names, a known
/// driver, and an absolute path. A pool whose path does not work is still
/// configured (it shows as unusable, with the reason) rather than stopping
/// berth: the containers on the other pools keep running.
fn storage_pools(
    tables: Vec<StorageTable>,
    lxc_path: &Path,
) -> Result<Vec<PoolConfig>, ConfigError> {
    if tables.is_empty() {
        return Ok(vec![PoolConfig {
            name: "default".into(),
            driver: StorageDriver::Dir,
            path: lxc_path.to_owned(),
        }]);
    }
    let invalid = |text: String| Err(ConfigError::Invalid(format!("storage: {text}")));
    let mut pools: Vec<PoolConfig> = Vec::new();
    for table in tables {
        if !valid_pool_name(&table.name) {
            return invalid(format!(
                "'{}' is not a valid pool name (1-63 of letters, digits, '-', '_', '.', \
                 starting with a letter or digit)",
                table.name
            ));
        }
        if pools.iter().any(|pool| pool.name == table.name) {
            return invalid(format!("the pool '{}' is configured twice", table.name));
        }
        let Some(driver) = StorageDriver::parse(&table.driver) else {
            return invalid(format!(
                "pool '{}': unknown driver '{}' (known: dir, btrfs)",
                table.name, table.driver
            ));
        };
        let path = match (driver, table.path) {
            (StorageDriver::Dir, None) => lxc_path.to_owned(),
            (StorageDriver::Dir, Some(path)) => {
                // The dir layout keeps root filesystems in the containers'
                // own directories: a dir pool elsewhere is not built yet.
                if path.canonicalize().ok().as_deref() != Some(lxc_path) {
                    return invalid(format!(
                        "pool '{}': a dir pool's path is the LXC path ({}); leave path out",
                        table.name,
                        lxc_path.display()
                    ));
                }
                lxc_path.to_owned()
            }
            (StorageDriver::Btrfs, None) => {
                return invalid(format!("pool '{}': a btrfs pool needs a path", table.name))
            }
            (StorageDriver::Btrfs, Some(path)) => {
                let absolute = if path.is_absolute() {
                    path
                } else {
                    std::env::current_dir()
                        .map_err(|e| ConfigError::Invalid(format!("storage: {e}")))?
                        .join(path)
                };
                absolute.canonicalize().unwrap_or(absolute)
            }
        };
        pools.push(PoolConfig {
            name: table.name,
            driver,
            path,
        });
    }
    Ok(pools)
}

/// The kernel's host name (what `hostname` prints), the default node name.
fn host_name() -> Result<String, ConfigError> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_owned();
    if name.is_empty() {
        return Err(ConfigError::Invalid(
            "the host has no name; set node_name (BERTH_NODE_NAME)".into(),
        ));
    }
    Ok(name)
}

/// This host's id, made once and kept in `<data_dir>/host-id`.
fn host_id(data_dir: &Path) -> Result<String, ConfigError> {
    let path = data_dir.join("host-id");
    let fail = |source| ConfigError::Directory {
        what: "host id file",
        path: path.clone(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(fail(e)),
    }
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(fail)?;
    file.write_all(format!("{id}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(fail)?;
    Ok(id)
}

/// Rocket's key for berth's database URL (rocket_db_pools' `Config`).
pub const DATABASE_URL_KEY: &str = "databases.berth.url";

/// The database URL, from Rocket's `[databases.berth] url` or its alias,
/// berth's `database_url` (`BERTH_DATABASE_URL`). Set both and they must
/// agree: which one wins would otherwise be a guess.
fn database_url(figment: &Figment, alias: Option<String>) -> Result<Option<String>, ConfigError> {
    let rocket_url = if figment.contains(DATABASE_URL_KEY) {
        Some(
            figment
                .extract_inner::<String>(DATABASE_URL_KEY)
                .map_err(|e| ConfigError::Invalid(e.to_string()))?,
        )
    } else {
        None
    };
    match (rocket_url, alias) {
        (Some(url), Some(alias)) if url != alias => Err(ConfigError::Invalid(format!(
            "the database URL is set twice, differently: [databases.berth] url = {url:?} \
             and database_url (BERTH_DATABASE_URL) = {alias:?}; keep one"
        ))),
        (url, alias) => Ok(url.or(alias)),
    }
}

/// An `allowed_hosts` entry as the `Host` header shows it: a DNS name or an
/// address, without port.
fn allowed_host(entry: &str) -> Result<String, ConfigError> {
    let entry = entry.trim().to_ascii_lowercase();
    let bare = entry
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(&entry);
    if let Ok(std::net::IpAddr::V6(address)) = bare.parse() {
        return Ok(format!("[{address}]"));
    }
    let is_name = !entry.is_empty()
        && entry.len() <= 253
        && entry.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        });
    if !is_name {
        return Err(ConfigError::Invalid(format!(
            "allowed_hosts: '{entry}' is not a host name or address (give names without \
             scheme or port, e.g. \"berth.example.net\" or \"192.0.2.10\")"
        )));
    }
    Ok(entry)
}

fn is_valid_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Whether other users may read or enter `path`.
fn open_to_others(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o007 != 0)
}

/// Creates `path` if missing and proves berth can write there, so that a
/// wrong path fails at start-up rather than in the first job.
fn usable_dir(what: &'static str, path: &Path) -> Result<PathBuf, ConfigError> {
    let fail = |source| ConfigError::Directory {
        what,
        path: path.to_owned(),
        source,
    };
    // Closed to other users: the LXC path holds root filesystems (setuid
    // programs, device nodes), the data directory the database and tokens.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o750)
        .create(path)
        .map_err(fail)?;
    let absolute = path.canonicalize().map_err(fail)?;
    let probe = absolute.join(".berth-write-probe");
    std::fs::write(&probe, b"").map_err(fail)?;
    std::fs::remove_file(&probe).map_err(fail)?;
    Ok(absolute)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_table_gives_the_defaults() {
        let settings = Settings::from_figment(&Figment::new()).unwrap();
        assert_eq!(settings.data_dir, PathBuf::from("data"));
        assert_eq!(settings.auth, AuthMode::None);
    }

    #[test]
    fn the_database_url_comes_from_rocket_or_its_alias() {
        let rocket = Figment::new().merge((DATABASE_URL_KEY, "sqlite:///a.db"));
        let alias = Figment::new().merge(("berth.database_url", "sqlite:///b.db"));
        let url = |figment: &Figment| Settings::from_figment(figment).unwrap().database_url;
        assert_eq!(url(&rocket).as_deref(), Some("sqlite:///a.db"));
        assert_eq!(url(&alias).as_deref(), Some("sqlite:///b.db"));
        let same = rocket
            .clone()
            .merge(("berth.database_url", "sqlite:///a.db"));
        assert_eq!(url(&same).as_deref(), Some("sqlite:///a.db"));
        let both = rocket.merge(("berth.database_url", "sqlite:///b.db"));
        let error = Settings::from_figment(&both).unwrap_err().to_string();
        assert!(error.contains("set twice"), "{error}");
    }

    #[test]
    fn resolve_creates_directories_under_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().join("d"),
            ..Settings::default()
        };
        let resolved = settings.resolve().unwrap();
        assert!(resolved.template_dir.ends_with("d/templates") && resolved.template_dir.is_dir());
        assert!(resolved.lxc_path.ends_with("d/lxc") && resolved.lxc_path.is_dir());
        assert!(resolved.database_url.ends_with("/d/berth.db"));
    }

    #[test]
    fn usage_retention_holds_at_least_one_sample_and_at_most_a_bounded_number() {
        let dir = tempfile::tempdir().unwrap();
        let with = |interval: u64, retention: u64| Settings {
            data_dir: dir.path().join("d"),
            node_name: Some("n".into()),
            stats_interval_secs: interval,
            stats_retention_secs: retention,
            ..Settings::default()
        };
        assert!(with(10, 3600).resolve().is_ok());
        assert!(
            with(0, 0).resolve().is_ok(),
            "off: retention does not matter"
        );
        let short = with(10, 5).resolve().unwrap_err().to_string();
        assert!(short.contains("stats_retention_secs"), "{short}");
        let long = with(1, 86_400).resolve().unwrap_err().to_string();
        assert!(long.contains("8640"), "{long}");
    }

    #[test]
    fn an_unusable_directory_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let settings = Settings {
            data_dir: file.join("sub"),
            ..Settings::default()
        };
        let error = settings.resolve().unwrap_err().to_string();
        assert!(error.starts_with("data directory"), "{error}");
    }

    #[test]
    fn no_client_address_header_is_believed_unless_configured() {
        let config: rocket::Config = Figment::from(rocket_defaults()).extract().unwrap();
        assert_eq!(config.ip_header, None);
        let configured: rocket::Config = Figment::from(rocket_defaults())
            .merge(("ip_header", "X-Forwarded-For"))
            .extract()
            .unwrap();
        assert_eq!(
            configured.ip_header.as_deref().map(|h| h.as_str()),
            Some("X-Forwarded-For")
        );
    }

    #[test]
    fn allowed_hosts_are_names_or_addresses_without_port() {
        assert_eq!(
            allowed_host("Berth.Example.NET").unwrap(),
            "berth.example.net"
        );
        assert_eq!(allowed_host("192.0.2.10").unwrap(), "192.0.2.10");
        assert_eq!(allowed_host("2001:db8::1").unwrap(), "[2001:db8::1]");
        assert_eq!(allowed_host("[2001:DB8::1]").unwrap(), "[2001:db8::1]");
        for bad in ["", "berth.example:5000", "http://berth", "a..b", "a b", "*"] {
            assert!(allowed_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn storage_tables_become_pools() {
        let dir = tempfile::tempdir().unwrap();
        let base = || Settings {
            data_dir: dir.path().into(),
            ..Settings::default()
        };
        let resolved = base().resolve().unwrap();
        assert_eq!(resolved.storage.len(), 1);
        assert_eq!(resolved.storage[0].name, "default");
        assert_eq!(resolved.storage[0].driver, StorageDriver::Dir);
        assert_eq!(resolved.storage[0].path, resolved.lxc_path);

        let figment = Figment::new().merge(Toml::string(
            r#"
            [[berth.storage]]
            name = "fast"
            driver = "btrfs"
            path = "/srv/pool"
            [[berth.storage]]
            name = "local"
            driver = "dir"
            "#,
        ));
        let settings = Settings {
            data_dir: dir.path().into(),
            ..Settings::from_figment(&figment).unwrap()
        };
        let pools = settings.resolve().unwrap().storage;
        assert_eq!(pools[0].name, "fast");
        assert_eq!(pools[0].path, PathBuf::from("/srv/pool"));
        assert_eq!(pools[1].driver, StorageDriver::Dir);

        for (name, driver, path) in [
            ("a b", "dir", None),
            ("x", "zfs", None),
            ("x", "btrfs", None),
            ("x", "dir", Some("/somewhere/else")),
        ] {
            let settings = Settings {
                storage: vec![StorageTable {
                    name: name.into(),
                    driver: driver.into(),
                    path: path.map(PathBuf::from),
                }],
                ..base()
            };
            let error = settings.resolve().unwrap_err().to_string();
            assert!(error.contains("storage:"), "{error}");
        }
    }

    #[test]
    fn bad_bridge_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            data_dir: dir.path().into(),
            bridge: "br0\nlxc.x".into(),
            ..Settings::default()
        };
        assert!(settings.resolve().is_err());
    }
}
