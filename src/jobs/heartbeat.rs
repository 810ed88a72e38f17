//! The runner's heartbeat: its loop beats on every round and on a periodic
//! tick while it waits, so that a fresh beat proves the loop is alive and
//! not stuck (on the database, or on a blocked executor). systemd's
//! watchdog is fed, and `/healthz` answers 200, only while the beat is fresh.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often an idle runner proves it is alive; the watchdog allows a few
/// of these to pass before it calls the runner wedged.
pub const HEARTBEAT_PERIOD: Duration = Duration::from_secs(1);

pub(super) struct Heartbeat {
    epoch: Instant,
    /// Milliseconds since `epoch` at the last beat, plus one (0: never).
    last_ms: AtomicU64,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }
}

impl Heartbeat {
    pub(super) fn beat(&self) {
        let now = self.epoch.elapsed().as_millis() as u64 + 1;
        self.last_ms.store(now, Ordering::Relaxed);
    }

    /// How long ago the last beat was; `None` before the first.
    pub(super) fn age(&self) -> Option<Duration> {
        let last = self.last_ms.load(Ordering::Relaxed);
        (last != 0).then(|| {
            self.epoch
                .elapsed()
                .saturating_sub(Duration::from_millis(last - 1))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_age_before_the_first_beat_then_a_fresh_one() {
        let heartbeat = Heartbeat::default();
        assert_eq!(heartbeat.age(), None);
        heartbeat.beat();
        assert!(heartbeat.age().unwrap() < Duration::from_secs(1));
    }
}
