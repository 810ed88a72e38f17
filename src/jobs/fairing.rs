//! The runner's place in Rocket's life: started at liftoff, drained at
//! shutdown, holding the database open until it has drained.

use std::time::Duration;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Orbit, Rocket};
use tokio::sync::Mutex;

use super::{KeepAlive, Runner, RunnerHandle};
use crate::db::{Db, OpenHold};

pub struct RunnerFairing {
    runner: Mutex<Option<Runner>>,
    handle: Mutex<Option<RunnerHandle>>,
    db: Db,
    hold: Mutex<Option<OpenHold>>,
    grace: Duration,
    keep_alive: KeepAlive,
}

impl RunnerFairing {
    pub fn new(runner: Runner, db: Db, grace: Duration, keep_alive: KeepAlive) -> Self {
        RunnerFairing {
            runner: Mutex::new(Some(runner)),
            handle: Mutex::new(None),
            db,
            hold: Mutex::new(None),
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
            *self.hold.lock().await = Some(self.db.hold_open().await);
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
        // Shutdown fairings run concurrently: the database's own (which
        // closes it) waits for this hold, so the drained jobs are recorded.
        self.hold.lock().await.take();
    }
}
