//! The runner's place in Rocket's life: started at liftoff, drained at
//! shutdown, and only then the database closed.

use std::time::Duration;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Orbit, Rocket};
use tokio::sync::Mutex;

use super::{KeepAlive, Runner, RunnerHandle};
use crate::db::Db;

pub struct RunnerFairing {
    runner: Mutex<Option<Runner>>,
    handle: Mutex<Option<RunnerHandle>>,
    db: Db,
    grace: Duration,
    keep_alive: KeepAlive,
}

impl RunnerFairing {
    pub fn new(runner: Runner, db: Db, grace: Duration, keep_alive: KeepAlive) -> Self {
        RunnerFairing {
            runner: Mutex::new(Some(runner)),
            handle: Mutex::new(None),
            db,
            grace,
            keep_alive,
        }
    }
}

#[rocket::async_trait]
impl Fairing for RunnerFairing {
    fn info(&self) -> Info {
        Info {
            name: "job runner",
            kind: Kind::Liftoff | Kind::Shutdown,
        }
    }

    async fn on_liftoff(&self, _: &Rocket<Orbit>) {
        if let Some(runner) = self.runner.lock().await.take() {
            *self.handle.lock().await = Some(RunnerHandle::spawn(runner));
        }
    }

    async fn on_shutdown(&self, _: &Rocket<Orbit>) {
        if let Some(handle) = self.handle.lock().await.take() {
            log::info!(
                "job runner: taking no new jobs; waiting up to {} s for running ones",
                self.grace.as_secs()
            );
            handle.shutdown(self.grace, self.keep_alive).await;
        }
        // Shutdown fairings run concurrently, so the pool is closed here,
        // after the runner, rather than by a fairing of its own.
        self.db.close().await;
    }
}
