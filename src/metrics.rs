//! Counters berth keeps in memory for `/metrics`: HTTP requests by route
//! and status, and how long jobs take. Counts that live in the database
//! (jobs and containers by status) are read there when scraped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds, in seconds, of the job duration histogram's buckets.
const JOB_SECONDS_BUCKETS: [f64; 11] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; JOB_SECONDS_BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Counters {
    /// route → (method, status) → requests. Keyed by route first so that
    /// counting a request allocates nothing once its route has been seen.
    http: BTreeMap<String, BTreeMap<(&'static str, u16), u64>>,
    /// (action, outcome) → durations.
    jobs: BTreeMap<(String, String), Histogram>,
}

#[derive(Clone, Default)]
pub struct Metrics(Arc<Mutex<Counters>>);

impl Metrics {
    pub fn new() -> Self {
        Metrics::default()
    }

    pub fn count_request(&self, route: &str, method: &'static str, status: u16) {
        let mut counters = self.0.lock().expect("metrics");
        let by_route = match counters.http.get_mut(route) {
            Some(by_route) => by_route,
            None => counters.http.entry(route.to_owned()).or_default(),
        };
        *by_route.entry((method, status)).or_default() += 1;
    }

    pub fn observe_job(&self, action: &str, outcome: &str, took: Duration) {
        let seconds = took.as_secs_f64();
        let mut counters = self.0.lock().expect("metrics");
        let histogram = counters
            .jobs
            .entry((action.to_owned(), outcome.to_owned()))
            .or_default();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(JOB_SECONDS_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum += seconds;
    }

    /// The in-memory metrics in Prometheus' text format.
    pub fn render(&self, out: &mut String) {
        let counters = self.0.lock().expect("metrics");
        out.push_str(
            "# HELP berth_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE berth_http_requests_total counter\n");
        for (route, by_route) in &counters.http {
            for ((method, status), count) in by_route {
                let _ = writeln!(
                    out,
                    "berth_http_requests_total{{route=\"{}\",method=\"{method}\",status=\"{status}\"}} {count}",
                    escape(route)
                );
            }
        }
        out.push_str("# HELP berth_job_duration_seconds Time from a job's start to its end, by action and outcome.\n");
        out.push_str("# TYPE berth_job_duration_seconds histogram\n");
        for ((action, outcome), histogram) in &counters.jobs {
            let labels = format!("action=\"{action}\",outcome=\"{outcome}\"");
            for (count, bound) in histogram.buckets.iter().zip(JOB_SECONDS_BUCKETS) {
                let _ = writeln!(
                    out,
                    "berth_job_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "berth_job_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                histogram.count
            );
            let _ = writeln!(
                out,
                "berth_job_duration_seconds_sum{{{labels}}} {}",
                histogram.sum
            );
            let _ = writeln!(
                out,
                "berth_job_duration_seconds_count{{{labels}}} {}",
                histogram.count
            );
        }
    }
}

/// This node's containers' latest usage samples, with a `container` label
/// (the name). Counters only grow while a container runs (they restart
/// from zero with it, which Prometheus' `rate` takes as a reset); a
/// figure a sample does not have is left out rather than shown as zero.
pub fn render_usage(latest: &[(String, crate::stats::Sample)], out: &mut String) {
    type Figure = fn(&crate::stats::Sample) -> Option<f64>;
    let families: [(&str, &str, &str, Figure); 7] = [
        (
            "berth_container_cpu_seconds_total",
            "counter",
            "CPU time the container has used since it started.",
            |s| s.usage.map(|u| u.cpu_ns as f64 / 1e9),
        ),
        (
            "berth_container_memory_bytes",
            "gauge",
            "Memory charged to the container's cgroup (page cache included).",
            |s| Some(s.usage.map_or(0.0, |u| u.memory_bytes as f64)),
        ),
        (
            "berth_container_memory_limit_bytes",
            "gauge",
            "The container's memory limit (absent: none).",
            |s| s.usage.and_then(|u| u.memory_limit_bytes).map(|b| b as f64),
        ),
        (
            "berth_container_network_receive_bytes_total",
            "counter",
            "Bytes the container received on its veth, seen from inside.",
            |s| s.usage.and_then(|u| u.net_in_bytes).map(|b| b as f64),
        ),
        (
            "berth_container_network_transmit_bytes_total",
            "counter",
            "Bytes the container sent on its veth, seen from inside.",
            |s| s.usage.and_then(|u| u.net_out_bytes).map(|b| b as f64),
        ),
        (
            "berth_container_disk_used_bytes",
            "gauge",
            "Disk blocks the container's root filesystem takes on the host.",
            |s| s.disk_bytes.map(|b| b as f64),
        ),
        (
            "berth_container_running",
            "gauge",
            "1 when the container's last sample found it running.",
            |s| Some(if s.usage.is_some() { 1.0 } else { 0.0 }),
        ),
    ];
    for (name, kind, help, figure) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (container, sample) in latest {
            if let Some(value) = figure(sample) {
                let _ = writeln!(out, "{name}{{container=\"{}\"}} {value}", escape(container));
            }
        }
    }
}

/// Escapes a label value as the text format requires.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let metrics = Metrics::new();
        metrics.observe_job("create", "done", Duration::from_millis(300));
        metrics.observe_job("create", "done", Duration::from_secs(7));
        let mut text = String::new();
        metrics.render(&mut text);
        assert!(text.contains(
            "berth_job_duration_seconds_bucket{action=\"create\",outcome=\"done\",le=\"0.25\"} 0\n"
        ));
        assert!(text.contains(
            "berth_job_duration_seconds_bucket{action=\"create\",outcome=\"done\",le=\"0.5\"} 1\n"
        ));
        assert!(text.contains(
            "berth_job_duration_seconds_bucket{action=\"create\",outcome=\"done\",le=\"10\"} 2\n"
        ));
        assert!(text
            .contains("berth_job_duration_seconds_count{action=\"create\",outcome=\"done\"} 2\n"));
    }

    #[test]
    fn usage_carries_the_container_label_and_types() {
        let sample = crate::stats::Sample {
            at: crate::domain::time::now(),
            usage: Some(crate::driver::Usage {
                cpu_ns: 1_500_000_000,
                memory_bytes: 4096,
                memory_limit_bytes: None,
                net_in_bytes: Some(10),
                net_out_bytes: Some(20),
            }),
            cpu_percent: None,
            disk_bytes: Some(8192),
        };
        let mut text = String::new();
        render_usage(&[("web\"1".into(), sample)], &mut text);
        assert!(text.contains("# TYPE berth_container_cpu_seconds_total counter\n"));
        assert!(text.contains("berth_container_cpu_seconds_total{container=\"web\\\"1\"} 1.5\n"));
        assert!(text.contains("# TYPE berth_container_memory_bytes gauge\n"));
        assert!(text
            .contains("berth_container_network_receive_bytes_total{container=\"web\\\"1\"} 10\n"));
        assert!(!text.contains("berth_container_memory_limit_bytes{"));
    }

    #[test]
    fn requests_are_counted_per_route_and_status() {
        let metrics = Metrics::new();
        metrics.count_request("/v1/jobs/<id>", "GET", 200);
        metrics.count_request("/v1/jobs/<id>", "GET", 200);
        let mut text = String::new();
        metrics.render(&mut text);
        assert!(text.contains(
            "berth_http_requests_total{route=\"/v1/jobs/<id>\",method=\"GET\",status=\"200\"} 2\n"
        ));
    }
}
