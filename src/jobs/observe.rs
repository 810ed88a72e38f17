//! Keeps container status true to the host between jobs: a container whose
//! init exits, or that is stopped from inside, is shown as stopped.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::Runner;
use crate::db::containers;
use crate::domain::container::ContainerStatus;
use crate::domain::time;
use crate::events::Event;

/// How often the host is asked; one `lxc-ls` covers every container.
const EVERY: Duration = Duration::from_secs(10);

pub async fn run(runner: Arc<Runner>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
        if let Err(error) = observe(&runner).await {
            log::warn!("status check: {error}");
        }
    }
}

async fn observe(runner: &Runner) -> Result<(), String> {
    let mut conn = runner
        .db
        .pool()
        .acquire()
        .await
        .map_err(|e| e.to_string())?;
    let settled = containers::settled(&mut conn, &runner.settings.node)
        .await
        .map_err(|e| e.to_string())?;
    drop(conn);
    if settled.is_empty() {
        return Ok(());
    }
    let observed_at = time::now();
    let running = runner.driver.running().await.map_err(|e| e.to_string())?;
    for (id, name, seen) in settled {
        let observed = if running.contains(&name) {
            ContainerStatus::Running
        } else {
            ContainerStatus::Stopped
        };
        if observed == seen {
            continue;
        }
        let mut tx = runner.db.begin().await.map_err(|e| e.to_string())?;
        let recorded = containers::set_observed_status(&mut tx, id, seen, observed, observed_at)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        if recorded {
            log::info!(
                "container {name} is {} on the host; status updated",
                observed.as_str()
            );
            let mut conn = runner
                .db
                .pool()
                .acquire()
                .await
                .map_err(|e| e.to_string())?;
            if let Ok(Some(container)) = containers::get_any(&mut conn, id).await {
                runner.events.publish(Event::Container(container));
            }
        }
    }
    Ok(())
}
