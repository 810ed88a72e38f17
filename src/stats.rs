//! Usage of this node's containers over time: a sampler task reads every
//! running container's counters through the driver on a fixed interval and
//! keeps a bounded history per container in memory (a ring buffer), which
//! `GET /containers/:id/stats`, `/metrics`, the event stream and the
//! console read. Each node samples its own containers.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Orbit, Rocket};
use tokio::sync::watch;
use uuid::Uuid;

use crate::db::containers::ContainerFilter;
use crate::domain::container::ContainerStatus;
use crate::domain::time::{self, Timestamp};
use crate::driver::{Driver, Usage};
use crate::events::{Event, EventBus};
use crate::service::Service;

/// A root filesystem is measured at most this often: a directory is
/// walked, which is the one reading that grows with the container.
const DISK_EVERY: Duration = Duration::from_secs(60);

/// One point of a container's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub at: Timestamp,
    /// `None` while the container does not run.
    pub usage: Option<Usage>,
    /// Share of one CPU used since the sample before (100 = one CPU busy);
    /// `None` for the first sample after a start.
    pub cpu_percent: Option<f64>,
    pub disk_bytes: Option<u64>,
}

/// A container's samples, oldest first.
#[derive(Debug, Clone, Default)]
struct Series {
    name: String,
    samples: VecDeque<Sample>,
    disk: Option<(Timestamp, Option<u64>)>,
}

/// The host's own figures, for the console's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostSample {
    pub cpu_percent: Option<f64>,
    /// (busy, total) jiffies at the last sample.
    cpu_times: Option<(u64, u64)>,
}

#[derive(Default)]
struct Inner {
    series: HashMap<Uuid, Series>,
    host: HostSample,
}

/// The history, shared by the sampler and its readers.
#[derive(Clone)]
pub struct Stats {
    inner: Arc<Mutex<Inner>>,
    /// `None` when sampling is off.
    interval: Option<Duration>,
    capacity: usize,
}

impl Stats {
    /// `interval` zero turns sampling off; the history keeps `retention`.
    pub fn new(interval: Duration, retention: Duration) -> Self {
        let interval = (!interval.is_zero()).then_some(interval);
        let capacity = interval.map_or(1, |i| {
            (retention.as_secs_f64() / i.as_secs_f64()).ceil() as usize + 1
        });
        Stats {
            inner: Arc::default(),
            interval,
            capacity: capacity.max(2),
        }
    }

    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// Adds a sample, deriving its CPU % from the one before.
    pub fn record(
        &self,
        id: Uuid,
        name: &str,
        at: Timestamp,
        usage: Option<Usage>,
        disk_bytes: Option<u64>,
    ) -> Sample {
        let mut inner = self.inner.lock().expect("stats");
        let series = inner.series.entry(id).or_default();
        series.name = name.to_owned();
        let cpu_percent = match (series.samples.back(), usage) {
            (Some(before), Some(now)) => before.usage.and_then(|then| {
                let wall_ns = (at - before.at).num_nanoseconds()?;
                (wall_ns > 0 && now.cpu_ns >= then.cpu_ns)
                    .then(|| (now.cpu_ns - then.cpu_ns) as f64 * 100.0 / wall_ns as f64)
            }),
            _ => None,
        };
        let sample = Sample {
            at,
            usage,
            cpu_percent,
            disk_bytes,
        };
        if series.samples.len() >= self.capacity {
            series.samples.pop_front();
        }
        series.samples.push_back(sample.clone());
        sample
    }

    /// Forgets the containers not in `keep` (deleted, or moved away).
    fn retain(&self, keep: &HashMap<Uuid, ()>) {
        self.inner
            .lock()
            .expect("stats")
            .series
            .retain(|id, _| keep.contains_key(id));
    }

    /// The disk figure to use now, and whether it must be measured again.
    fn disk_due(&self, id: Uuid, now: Timestamp) -> Result<Option<u64>, ()> {
        let inner = self.inner.lock().expect("stats");
        match inner.series.get(&id).and_then(|s| s.disk) {
            Some((at, bytes)) if (now - at).to_std().unwrap_or_default() < DISK_EVERY => Ok(bytes),
            _ => Err(()),
        }
    }

    fn set_disk(&self, id: Uuid, name: &str, at: Timestamp, bytes: Option<u64>) {
        let mut inner = self.inner.lock().expect("stats");
        let series = inner.series.entry(id).or_default();
        series.name = name.to_owned();
        series.disk = Some((at, bytes));
    }

    /// The latest sample of a container.
    pub fn current(&self, id: Uuid) -> Option<Sample> {
        let inner = self.inner.lock().expect("stats");
        inner.series.get(&id)?.samples.back().cloned()
    }

    /// Its samples taken at `since` or later, oldest first.
    pub fn history(&self, id: Uuid, since: Timestamp) -> Vec<Sample> {
        let inner = self.inner.lock().expect("stats");
        inner.series.get(&id).map_or_else(Vec::new, |series| {
            series
                .samples
                .iter()
                .filter(|s| s.at >= since)
                .cloned()
                .collect()
        })
    }

    /// Every container's latest sample, by name, for `/metrics`.
    pub fn latest(&self) -> Vec<(String, Sample)> {
        let inner = self.inner.lock().expect("stats");
        let mut latest: Vec<(String, Sample)> = inner
            .series
            .values()
            .filter_map(|s| Some((s.name.clone(), s.samples.back()?.clone())))
            .collect();
        latest.sort_by(|a, b| a.0.cmp(&b.0));
        latest
    }

    pub fn host(&self) -> HostSample {
        self.inner.lock().expect("stats").host
    }

    fn record_host(&self, times: Option<(u64, u64)>) {
        let mut inner = self.inner.lock().expect("stats");
        let before = inner.host.cpu_times;
        inner.host = HostSample {
            cpu_percent: match (before, times) {
                (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => {
                    Some(busy1.saturating_sub(busy0) as f64 * 100.0 / (total1 - total0) as f64)
                }
                _ => inner.host.cpu_percent,
            },
            cpu_times: times,
        };
    }
}

/// The sampler: started at liftoff, stopped (and waited for) at shutdown.
pub struct SamplerFairing {
    stats: Stats,
    driver: Arc<dyn Driver>,
    events: EventBus,
    running: tokio::sync::Mutex<Option<(watch::Sender<bool>, tokio::task::JoinHandle<()>)>>,
}

impl SamplerFairing {
    pub fn new(stats: Stats, driver: Arc<dyn Driver>, events: EventBus) -> Self {
        SamplerFairing {
            stats,
            driver,
            events,
            running: tokio::sync::Mutex::new(None),
        }
    }
}

#[rocket::async_trait]
impl Fairing for SamplerFairing {
    fn info(&self) -> Info {
        Info {
            name: "usage sampler",
            kind: Kind::Liftoff | Kind::Shutdown,
        }
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        let (Some(interval), Some(service)) = (self.stats.interval(), rocket.state::<Service>())
        else {
            return;
        };
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(sample_until_stopped(
            self.stats.clone(),
            self.driver.clone(),
            service.clone(),
            self.events.clone(),
            interval,
            stopped,
        ));
        *self.running.lock().await = Some((stop, task));
    }

    async fn on_shutdown(&self, _: &Rocket<Orbit>) {
        if let Some((stop, task)) = self.running.lock().await.take() {
            let _ = stop.send(true);
            let _ = task.await;
        }
    }
}

async fn sample_until_stopped(
    stats: Stats,
    driver: Arc<dyn Driver>,
    service: Service,
    events: EventBus,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        // A round cut short by shutdown loses one sample, nothing else.
        tokio::select! {
            () = sample_once(&stats, driver.as_ref(), &service, &events) => {}
            _ = stop.changed() => return,
        }
    }
}

/// One round: the host, then each of this node's containers that runs or
/// is stopped (the others have nothing to read, or are being changed).
pub async fn sample_once(stats: &Stats, driver: &dyn Driver, service: &Service, events: &EventBus) {
    stats.record_host(crate::driver::host::cpu_times().ok());
    let mut present = HashMap::new();
    for status in [ContainerStatus::Running, ContainerStatus::Stopped] {
        let filter = ContainerFilter {
            status: Some(status),
            name: None,
            node: Some(service.this_node().name.clone()),
        };
        let mut after = None;
        loop {
            let page = match service.containers(&filter, after, 500).await {
                Ok(page) => page,
                Err(error) => {
                    log::warn!("usage sampler: cannot list this node's containers: {error}");
                    return;
                }
            };
            for container in &page.items {
                present.insert(container.id, ());
                let usage = if status == ContainerStatus::Running {
                    driver.usage(&container.name).await.unwrap_or_else(|error| {
                        log::warn!("usage sampler: {}: {error}", container.name);
                        None
                    })
                } else {
                    None
                };
                let now = time::now();
                let disk = match stats.disk_due(container.id, now) {
                    Ok(bytes) => bytes,
                    Err(()) => {
                        let bytes =
                            driver
                                .disk_used(&container.name)
                                .await
                                .unwrap_or_else(|error| {
                                    log::warn!("usage sampler: {}: {error}", container.name);
                                    None
                                });
                        stats.set_disk(container.id, &container.name, now, bytes);
                        bytes
                    }
                };
                let sample = stats.record(container.id, &container.name, time::now(), usage, disk);
                // Local only: each node samples, and tells, its own.
                events.publish_remote(Event::Usage(ContainerUsage {
                    container_id: container.id,
                    name: container.name.clone(),
                    sample,
                }));
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
    }
    stats.retain(&present);
}

/// A container's latest sample, as the event stream carries it.
#[derive(Debug, Clone)]
pub struct ContainerUsage {
    pub container_id: Uuid,
    pub name: String,
    pub sample: Sample,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(cpu_ns: u64) -> Option<Usage> {
        Some(Usage {
            cpu_ns,
            ..Usage::default()
        })
    }

    #[test]
    fn cpu_percent_comes_from_cpu_time_over_wall_time() {
        let stats = Stats::new(Duration::from_secs(10), Duration::from_secs(3600));
        let id = Uuid::new_v4();
        let t0 = time::now();
        let first = stats.record(id, "a", t0, usage(1_000_000_000), None);
        assert_eq!(first.cpu_percent, None);
        let second = stats.record(
            id,
            "a",
            t0 + chrono::Duration::seconds(10),
            usage(6_000_000_000),
            None,
        );
        assert_eq!(second.cpu_percent, Some(50.0));
        // Stopped: no figure; started again: none until a second sample.
        let stopped = stats.record(id, "a", t0 + chrono::Duration::seconds(20), None, None);
        assert_eq!(stopped.cpu_percent, None);
        let restarted = stats.record(id, "a", t0 + chrono::Duration::seconds(30), usage(5), None);
        assert_eq!(restarted.cpu_percent, None);
    }

    #[test]
    fn history_is_bounded_by_retention() {
        let stats = Stats::new(Duration::from_secs(10), Duration::from_secs(60));
        let id = Uuid::new_v4();
        let t0 = time::now();
        for i in 0..100 {
            stats.record(
                id,
                "a",
                t0 + chrono::Duration::seconds(10 * i),
                usage(0),
                None,
            );
        }
        let all = stats.history(id, t0);
        assert_eq!(all.len(), 7);
        assert_eq!(all[6].at, t0 + chrono::Duration::seconds(990));
        assert_eq!(
            stats.history(id, t0 + chrono::Duration::seconds(975)).len(),
            2
        );
        stats.retain(&HashMap::new());
        assert!(stats.current(id).is_none());
    }
}
