//! Builds the Rocket: settings, database, driver, job runner, routes and
//! catchers. `berth serve` and the tests both start berth through here.

use std::sync::Arc;
use std::time::Duration;

use rocket::figment::Figment;
use rocket::{Build, Rocket};

use crate::config::{ConfigError, ResolvedSettings, Settings};
use crate::db::{Db, DbError};
use crate::driver::lxc::LxcDriver;
use crate::events::EventBus;
use crate::jobs::{JobQueue, Runner, RunnerFairing};
use crate::service::Service;
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
    let events = EventBus::new();
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
        events.clone(),
        settings.max_parallel_jobs,
    );
    let service = Service::new(db.clone(), templates, queue.clone(), events.clone());
    let grace = Duration::from_secs(settings.shutdown_timeout_secs);

    let mut rocket = rocket::custom(figment)
        .manage(service)
        .manage(queue)
        .manage(events)
        .manage(settings)
        .attach(RunnerFairing::new(runner, db, grace))
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
