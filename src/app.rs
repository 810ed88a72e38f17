//! Builds the Rocket: settings, database, driver, job runner, routes and
//! catchers. `berth serve` starts berth through here, and so do the
//! in-process tests (tests/local, without the runner); the tests that need
//! LXC run `berth serve` itself as a child process (tests/common).

use std::sync::Arc;
use std::time::Duration;

use rocket::fairing::AdHoc;
use rocket::figment::providers::Serialized;
use rocket::figment::Figment;
use rocket::{Build, Orbit, Rocket};
use rocket_db_pools::Database;

use crate::api::ApiAuth;
use crate::cluster::peer::Peers;
use crate::config::{AuthMode, ConfigError, ResolvedSettings, Settings, DATABASE_URL_KEY};
use crate::db::{BerthDb, Db, DbError};
use crate::driver::host::HostProbe;
use crate::driver::lxc::LxcDriver;
use crate::events::EventBus;
use crate::gate::Gate;
use crate::jobs::{JobQueue, Runner, RunnerFairing, RunnerSettings};
use crate::logging::RequestLog;
use crate::metrics::Metrics;
use crate::os_templates::OsTemplateStore;
use crate::service::{Arrivals, Attach, Capacity, Service, ThisNode};
use crate::systemd::{Health, SystemdFairing};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Opening it for a command (`berth token`); `serve` opens it in
    /// rocket_db_pools' fairing, which reports its own failure.
    #[error("cannot open the database: {0}")]
    Database(#[from] DbError),
}

/// Reads berth's settings from `figment` and builds the Rocket to launch.
pub async fn build(figment: Figment) -> Result<Rocket<Build>, StartupError> {
    let settings = Settings::from_figment(&figment)?.resolve()?;
    build_with(figment, settings).await
}

/// Builds the Rocket from settings already resolved (the tests' way in).
pub async fn build_with(
    figment: Figment,
    settings: ResolvedSettings,
) -> Result<Rocket<Build>, StartupError> {
    assemble(figment, settings, Jobs::Run).await
}

/// Builds the Rocket without the job runner: jobs are queued, answered and
/// listed as usual but never run, so nothing reaches LXC. For tests of
/// the HTTP layer, which then need neither root nor LXC; the runner is left
/// out rather than given a stand-in driver so that every queued job keeps
/// the state the API gave it while the test reads it.
pub async fn build_without_runner(
    figment: Figment,
    settings: ResolvedSettings,
) -> Result<Rocket<Build>, StartupError> {
    assemble(figment, settings, Jobs::Queue).await
}

/// Whether the built Rocket runs the jobs it queues.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Jobs {
    Run,
    Queue,
}

async fn assemble(
    figment: Figment,
    mut settings: ResolvedSettings,
    jobs: Jobs,
) -> Result<Rocket<Build>, StartupError> {
    settings.auth = effective_auth(&figment, settings.auth)?;
    // rocket_db_pools reads `[databases.berth]`; the URL there is the one
    // the settings resolved (from it, its alias or the default).
    let figment = figment.merge(Serialized::global(DATABASE_URL_KEY, &settings.database_url));
    let os_templates = OsTemplateStore::new(settings.template_dir.clone());
    crate::first_os_template::provide(&os_templates).await;
    let queue = JobQueue::new();
    let events = EventBus::new();
    let metrics = Metrics::new();
    let pools = crate::driver::storage::Pools::probe(&settings.storage);
    for pool in pools.all() {
        if let Some(reason) = &pool.unusable {
            log::warn!("storage pool '{}' cannot be used: {reason}", pool.name);
        }
    }
    let driver = Arc::new(
        LxcDriver::new(
            settings.lxc_path.clone(),
            settings.bridge.clone(),
            settings.stop_timeout_secs,
            settings.template_cache,
        )
        .with_pools(pools.clone()),
    );
    tidy_up(&settings, &os_templates, &driver);
    let host = HostProbe::new(settings.lxc_path.clone(), settings.allow_disk_overcommit);
    let runner_settings = RunnerSettings {
        max_parallel: settings.max_parallel_jobs,
        retention: Duration::from_secs(settings.job_retention_days.saturating_mul(86_400)),
        node: settings.node_name.clone(),
        node_timeout_secs: settings.node_timeout_secs,
        peers: settings
            .cluster_secret
            .clone()
            .map(Peers::new)
            .transpose()
            .map_err(ConfigError::Invalid)?,
    };
    let this_node = ThisNode {
        name: settings.node_name.clone(),
        host_id: settings.host_id.clone(),
        api_url: api_url(&figment, settings.api_url.as_deref())?,
        timeout_secs: settings.node_timeout_secs,
        moves_containers: settings.cluster_secret.is_some(),
    };
    let capacity = Capacity {
        cpus: u64::from(crate::driver::host::cpus()),
        memory_bytes: crate::driver::host::memory_bytes().unwrap_or(0),
        disk_bytes: crate::driver::host::file_system_bytes(&settings.lxc_path).unwrap_or(0),
    };
    let grace = Duration::from_secs(settings.shutdown_timeout_secs);
    let gate = Gate::new(
        settings.auth == AuthMode::None,
        settings.allowed_hosts.clone(),
    );

    let stats = crate::stats::Stats::new(
        Duration::from_secs(settings.stats_interval_secs),
        Duration::from_secs(settings.stats_retention_secs),
    );
    let node_name = settings.node_name.clone();
    let backup_dir = settings.backup_dir.clone();
    // What needs the database is built once rocket_db_pools has opened it.
    let with_database = {
        let (queue, events, metrics) = (queue.clone(), events.clone(), metrics.clone());
        let stats = stats.clone();
        move |rocket: Rocket<Build>| async move {
            // Not `BerthDb::fetch`: when opening failed, rocket_db_pools has
            // said why, and its "unattached database" would only mislead.
            let Some(db) = rocket.state::<BerthDb>().map(|db| Db::clone(db)) else {
                return Err(rocket);
            };
            let service = Service::new(
                db.clone(),
                os_templates.clone(),
                queue.clone(),
                events.clone(),
                host,
                this_node,
            )
            .with_pools(pools)
            .with_backup_dir(backup_dir.clone());
            // Before anything is served: a name another live host holds
            // must stop this one here, with the reason.
            if let Err(error) = service.register_this_node(capacity).await {
                log::error!("cannot join the database's nodes: {error}");
                return Err(rocket);
            }
            crate::cluster::start(&db, &service, &events, &queue).await;
            let health = Health::new(db.clone(), queue.clone(), sd_notify::watchdog_enabled());
            let arrivals = Arrivals::new(db.clone(), driver.clone(), node_name.clone());
            // exec and terminals (issue 14).
            let attach = Attach::new(service.clone(), driver.clone(), node_name);
            let mut rocket = rocket
                .manage(service)
                .manage(arrivals)
                .manage(attach)
                .manage(health.clone())
                .attach(SystemdFairing::new(health));
            if jobs == Jobs::Run {
                rocket = rocket.attach(crate::stats::SamplerFairing::new(
                    stats,
                    driver.clone(),
                    events.clone(),
                ));
                let runner = Runner::new(
                    db.clone(),
                    driver,
                    os_templates,
                    queue,
                    events,
                    metrics,
                    runner_settings,
                )
                .with_backup_dir(backup_dir);
                rocket = rocket.attach(RunnerFairing::new(
                    runner,
                    db,
                    grace,
                    crate::systemd::extend_stop_timeout,
                ));
            }
            Ok(rocket)
        }
    };

    let mut rocket = rocket::custom(figment)
        .attach(BerthDb::init())
        .attach(AdHoc::try_on_ignite("berth services", with_database))
        .manage(queue)
        .manage(events)
        .manage(metrics)
        .manage(stats)
        .manage(ApiAuth::new(settings.auth))
        .manage(settings)
        .attach(gate)
        .attach(crate::api::RequestCounter)
        .attach(AdHoc::on_liftoff("start-up notes", |rocket| {
            Box::pin(start_up_notes(rocket))
        }))
        .attach(AdHoc::on_liftoff("node heartbeat", |rocket| {
            Box::pin(start_heartbeat(rocket))
        }))
        .attach(RequestLog)
        .attach(crate::console::SecurityHeaders)
        .mount("/", crate::api::health_routes())
        // The most specific base wins: API paths keep JSON errors, the
        // rest of the site gets the console's (HTML for browsers).
        .register("/", crate::console::catchers())
        .mount("/", crate::console::routes());
    for base in crate::api::BASES {
        rocket = rocket
            .mount(base, crate::api::routes())
            .register(base, crate::api::catchers());
    }
    Ok(rocket)
}

/// Before anything runs: removes what a crash left half-made, and warns
/// about directories open to other users.
fn tidy_up(settings: &ResolvedSettings, templates: &OsTemplateStore, driver: &LxcDriver) {
    match templates.remove_partial_uploads() {
        Ok(removed) => {
            for path in removed {
                log::info!("removed {}, an upload cut off by a crash", path.display());
            }
        }
        Err(error) => log::warn!(
            "cannot remove uploads cut off by a crash from {}: {error}",
            templates.dir().display()
        ),
    }
    for path in driver.remove_crash_leftovers() {
        log::info!(
            "removed {}, a template cache fill or a container's arrival from another \
             node cut off by a crash",
            path.display()
        );
    }
    for path in crate::driver::backup::remove_partials(&settings.backup_dir) {
        log::info!(
            "removed {}, a backup or upload cut off by a crash",
            path.display()
        );
    }
    for name in driver.thaw_left_frozen() {
        log::warn!("thawed container {name}, left frozen by a crash while its files were read");
    }
    for dir in settings
        .open_dirs
        .iter()
        .chain(&driver.open_container_dirs())
    {
        log::warn!(
            "{} is open to other users: it holds root filesystems (setuid programs, \
             device nodes), templates or berth's database; close it with `chmod o-rwx {}`",
            dir.display(),
            dir.display()
        );
    }
}

/// Token authentication is forced whenever berth listens beyond loopback:
/// whoever reaches its API controls the host.
fn effective_auth(figment: &Figment, configured: AuthMode) -> Result<AuthMode, ConfigError> {
    let config: rocket::Config = figment
        .extract()
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    if configured == AuthMode::None && !config.address.is_loopback() {
        return Ok(AuthMode::Token);
    }
    Ok(configured)
}

/// Where the other nodes reach this one: `api_url`, or Rocket's address
/// and port (https when TLS is on).
fn api_url(figment: &Figment, configured: Option<&str>) -> Result<String, ConfigError> {
    if let Some(url) = configured {
        return Ok(url.to_owned());
    }
    let config: rocket::Config = figment
        .extract()
        .map_err(|e| ConfigError::Invalid(e.to_string()))?;
    let scheme = if config.tls_enabled() {
        "https"
    } else {
        "http"
    };
    let socket = std::net::SocketAddr::new(config.address, config.port);
    Ok(format!("{scheme}://{socket}"))
}

/// Beats for this node until Rocket shuts down.
async fn start_heartbeat(rocket: &Rocket<Orbit>) {
    let Some(service) = rocket.state::<Service>().cloned() else {
        return;
    };
    let shutdown = rocket.shutdown();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(service.this_node().heartbeat_period());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let beating = async {
            loop {
                tick.tick().await;
                match service.beat().await {
                    Ok(true) => {}
                    Ok(false) => {
                        log::error!(
                            "node '{}' is now held by another host (this one was silent \
                             past node_timeout_secs): this berth beats no more and should \
                             be stopped",
                            service.this_node().name
                        );
                        return;
                    }
                    Err(error) => log::warn!("node heartbeat failed: {error}"),
                }
            }
        };
        tokio::select! {
            _ = shutdown => {}
            _ = beating => {}
        }
    });
}

/// Warnings an operator should see once berth is up.
async fn start_up_notes(rocket: &Rocket<Orbit>) {
    let Some(settings) = rocket.state::<ResolvedSettings>() else {
        return;
    };
    let address = rocket.config().address;
    match settings.auth {
        AuthMode::None => log::warn!(
            "API authentication is off (auth = \"none\"): anyone who can reach {address} \
             on this host controls its containers"
        ),
        AuthMode::Token => log::info!(
            "API authentication: bearer tokens (create one with `berth token create NAME`)"
        ),
    }
    let Some(service) = rocket.state::<Service>() else {
        return;
    };
    if service
        .os_templates()
        .files()
        .map_or(true, |files| files.is_empty())
    {
        log::warn!(
            "no OS templates in {}: creates will fail until one is there \
             (packaging/make-busybox-template.sh builds a small one)",
            service.os_templates().dir().display()
        );
    }
}
