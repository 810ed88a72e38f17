//! berth as a library: the service's layers (API, console, job runner,
//! driver, database) and `app::build`, which assembles them into the Rocket
//! that `berth serve` launches and the in-process tests drive.

pub mod api;
pub mod app;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod console;
pub mod db;
pub mod domain;
pub mod driver;
pub mod error;
pub mod events;
pub mod first_os_template;
pub mod gate;
pub mod jobs;
pub mod logging;
pub mod metrics;
pub mod os_templates;
pub mod service;
pub mod stats;
pub mod systemd;
