//! Builds the Rocket: settings, database, driver, job runner, routes and
//! catchers. `berth serve` and the tests both start berth through here.

use std::sync::Arc;
use std::time::Duration;

use rocket::figment::Figment;
use rocket::{Build, Rocket};

use crate::config::{ConfigError, ResolvedSettings, Settings};
use crate::db::{Db, DbError};
use crate::driver::lxc::LxcDriver;
use crate::jobs::{JobQueue, Runner, RunnerFairing};
use crate::logging::RequestLog;
use crate::service::Service;
use crate::systemd::SystemdFairing;
use crate::templates::TemplateStore;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot open the database: {0}")]
    Database(#[from] DbError),
}

/// Reads berth's settings from `figment` and builds the Rocket to launch.
pub async fn build(figment: Figment) -> Result<Rocket<Build>, StartupError> {
    let settings = Settings::from_figment(&figment)?.resolve()?;
    build_with(figment, settings).await
}

pub async fn build_with(
    figment: Figment,
    settings: ResolvedSettings,
) -> Result<Rocket<Build>, StartupError> {
    let db = Db::open(&settings.database_url).await?;
    let templates = TemplateStore::new(settings.template_dir.clone());
    let queue = JobQueue::new();
    let driver = Arc::new(LxcDriver::new(
        settings.lxc_path.clone(),
        settings.bridge.clone(),
        settings.stop_timeout_secs,
    ));
    let runner = Runner::new(
        db.clone(),
        driver,
        templates.clone(),
        queue.clone(),
        settings.max_parallel_jobs,
    );
    let service = Service::new(db.clone(), templates, queue.clone());
    let grace = Duration::from_secs(settings.shutdown_timeout_secs);
    let systemd = SystemdFairing::new(db.clone(), queue.clone());

    let mut rocket = rocket::custom(figment)
        .manage(service)
        .manage(queue)
        .manage(settings)
        .attach(RunnerFairing::new(runner, db, grace))
        .attach(systemd)
        .attach(RequestLog)
        .register("/", crate::api::catchers());
    for base in crate::api::BASES {
        rocket = rocket.mount(base, crate::api::routes());
    }
    Ok(rocket)
}
