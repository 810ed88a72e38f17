//! Holding a running container still (`lxc-freeze`) while its files are
//! read, so that a copy taken from a directory is consistent: no process
//! inside can write half of a change while the copy runs.
//!
//! A marker in the container's directory says berth froze it; a crash
//! between freeze and thaw leaves the marker, and the next start thaws the
//! container (`thaw_left_frozen`), so no customer's container stays stopped
//! in mid-instruction because berth went away.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::command::run;
use super::files::{remove_path, write_atomically};
use super::lxc_config::ContainerPaths;
use super::{DriverError, StepLog};

/// A container berth has frozen. Thaw it with `thaw`; dropping it without
/// (a panic, a cancelled future) thaws it too, synchronously.
#[must_use = "a frozen container stays frozen until thawed"]
pub struct Frozen {
    lxc_path: PathBuf,
    name: String,
    marker: PathBuf,
    thawed: bool,
}

/// Freezes the running container `name`. The marker is written first: a
/// crash after the freeze must find it.
pub async fn freeze(lxc_path: &Path, name: &str, log: &dyn StepLog) -> Result<Frozen, DriverError> {
    let marker = ContainerPaths::new(lxc_path, name).frozen_marker();
    write_atomically(&marker, b"")?;
    let mut frozen = Frozen {
        lxc_path: lxc_path.to_owned(),
        name: name.to_owned(),
        marker,
        thawed: false,
    };
    log.step(format!("freezing {name} while its files are read"));
    if let Err(error) = run("lxc-freeze", &frozen.args(), Some(log)).await {
        // A half-done freeze may have stopped some of its processes.
        let _ = frozen.thaw_now().await;
        return Err(error);
    }
    Ok(frozen)
}

impl Frozen {
    fn args(&self) -> [&OsStr; 4] {
        [
            OsStr::new("-P"),
            self.lxc_path.as_os_str(),
            OsStr::new("-n"),
            OsStr::new(&self.name),
        ]
    }

    async fn thaw_now(&mut self) -> Result<(), DriverError> {
        run("lxc-unfreeze", &self.args(), None).await?;
        self.thawed = true;
        remove_path(&self.marker).await
    }

    /// Lets the container run again.
    pub async fn thaw(mut self, log: &dyn StepLog) -> Result<(), DriverError> {
        log.step(format!("thawing {}", self.name));
        self.thaw_now().await
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if self.thawed {
            return;
        }
        let status = std::process::Command::new("lxc-unfreeze")
            .args(self.args())
            .status();
        match status {
            Ok(status) if status.success() => {
                let _ = std::fs::remove_file(&self.marker);
            }
            // The marker stays: the next start tries again.
            other => log::error!("cannot thaw container {}: {other:?}", self.name),
        }
    }
}

/// Thaws every container a crash left frozen (its marker is there), and
/// returns their names. Called at start, before any job runs.
pub fn thaw_left_frozen(lxc_path: &Path) -> Vec<String> {
    let mut thawed = Vec::new();
    let Ok(entries) = std::fs::read_dir(lxc_path) else {
        return thawed;
    };
    for entry in entries.flatten() {
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let marker = ContainerPaths::new(lxc_path, &name).frozen_marker();
        if !marker.exists() {
            continue;
        }
        let target = [
            OsStr::new("-P"),
            lxc_path.as_os_str(),
            OsStr::new("-n"),
            OsStr::new(&name),
        ];
        let unfrozen = std::process::Command::new("lxc-unfreeze")
            .args(target)
            .output()
            .is_ok_and(|output| output.status.success());
        // A container that stopped since (the host rebooted) is not frozen
        // either; only one LXC still reports frozen keeps its marker.
        let still_frozen = !unfrozen
            && std::process::Command::new("lxc-info")
                .args(target)
                .arg("-s")
                .output()
                .map_or(true, |output| {
                    String::from_utf8_lossy(&output.stdout).contains("FROZEN")
                });
        if still_frozen {
            log::error!("cannot thaw container {name}, left frozen by a crash");
        } else {
            let _ = std::fs::remove_file(&marker);
            thawed.push(name);
        }
    }
    thawed
}
