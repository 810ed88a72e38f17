//! Usage drawn: a container's CPU, memory and network history as inline
//! SVG drawn here (no chart library, nothing for a script to draw), each
//! graph with a title and description and the figures as a table beside
//! it; and the host's summary for the home page. The container page's
//! graphs are also served alone (`/containers/<id>/usage`), which
//! `app.js` fetches again whenever a `stats` event for it arrives.

use askama::Template;
use rocket::{Route, State};
use uuid::Uuid;

use super::containers::parse_id;
use super::session::Console;
use super::views::{human_bytes, TimeView};
use super::{ConsoleResult, HtmlPage};
use crate::domain::time::{self, Timestamp};
use crate::service::Service;
use crate::stats::{Sample, Stats};

pub fn routes() -> Vec<Route> {
    rocket::routes![usage]
}

/// The history the graphs show.
const WINDOW_SECS: i64 = 3600;
/// The rows of the table beside the graphs.
const TABLE_ROWS: usize = 10;
/// The drawing's own coordinates (it scales to the page's width).
const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 120.0;

/// One line of a graph: its pieces (broken where there is no figure).
pub struct LineView {
    pub label: &'static str,
    /// `series-1`, `series-2`: the line's colour and dash in the CSS.
    pub class: &'static str,
    pub polylines: Vec<String>,
    /// The last point, marked so that a single sample shows.
    pub last: Option<(String, String)>,
    pub latest_text: String,
}

pub struct ChartView {
    pub key: &'static str,
    pub title: &'static str,
    pub desc: String,
    pub top_text: String,
    pub lines: Vec<LineView>,
    /// Samples drawn (for scripts and tests that follow the graph).
    pub points: usize,
}

pub struct RowView {
    pub time: TimeView,
    pub cpu: String,
    pub memory: String,
    pub net_in: String,
    pub net_out: String,
}

pub struct UsageView {
    pub id: Uuid,
    /// Sampling is on.
    pub sampled: bool,
    /// The container lives on another node, which samples it.
    pub elsewhere: Option<String>,
    pub charts: Vec<ChartView>,
    pub rows: Vec<RowView>,
    pub disk: String,
}

impl UsageView {
    pub fn of(id: Uuid, stats: &Stats, elsewhere: Option<String>) -> Self {
        let now = time::now();
        let samples = stats.history(id, now - chrono::Duration::seconds(WINDOW_SECS));
        let start = samples.first().map_or(now, |s| s.at);
        let end = samples.last().map_or(now, |s| s.at);
        let cpu: Vec<(Timestamp, Option<f64>)> = samples
            .iter()
            .map(|s| {
                (
                    s.at,
                    if s.usage.is_some() {
                        s.cpu_percent
                    } else {
                        Some(0.0)
                    },
                )
            })
            .collect();
        let memory: Vec<(Timestamp, Option<f64>)> = samples
            .iter()
            .map(|s| (s.at, Some(s.usage.map_or(0.0, |u| u.memory_bytes as f64))))
            .collect();
        let limit = samples
            .last()
            .and_then(|s| s.usage)
            .and_then(|u| u.memory_limit_bytes);
        let rates = rates(&samples);
        let net_in: Vec<(Timestamp, Option<f64>)> =
            rates.iter().map(|(at, i, _)| (*at, *i)).collect();
        let net_out: Vec<(Timestamp, Option<f64>)> =
            rates.iter().map(|(at, _, o)| (*at, *o)).collect();
        let percent = |v: f64| format!("{v:.1} %");
        let bytes = |v: f64| human_bytes(v as u64);
        let rate = |v: f64| format!("{}/s", human_bytes(v as u64));
        let charts = vec![
            chart(
                "cpu",
                "CPU",
                "Share of one CPU the container used, 100 % being one CPU busy",
                (start, end),
                100.0,
                &percent,
                vec![("CPU", "series-1", cpu)],
            ),
            chart(
                "memory",
                "Memory",
                &match limit {
                    Some(limit) => format!(
                        "Memory the container used, out of its limit of {}",
                        human_bytes(limit)
                    ),
                    None => "Memory the container used (no limit set)".to_owned(),
                },
                (start, end),
                limit.map_or(1.0, |l| l as f64),
                &bytes,
                vec![("Memory", "series-1", memory)],
            ),
            chart(
                "network",
                "Network",
                "Bytes per second the container received (in) and sent (out)",
                (start, end),
                1.0,
                &rate,
                vec![("In", "series-1", net_in), ("Out", "series-2", net_out)],
            ),
        ];
        let rows = samples
            .iter()
            .zip(rates.iter())
            .rev()
            .take(TABLE_ROWS)
            .map(|(s, (_, i, o))| RowView {
                time: TimeView::of(&s.at),
                cpu: match (s.usage, s.cpu_percent) {
                    (None, _) => "stopped".to_owned(),
                    (Some(_), Some(p)) => percent(p),
                    (Some(_), None) => "—".to_owned(),
                },
                memory: bytes(s.usage.map_or(0.0, |u| u.memory_bytes as f64)),
                net_in: i.map_or("—".to_owned(), rate),
                net_out: o.map_or("—".to_owned(), rate),
            })
            .collect();
        UsageView {
            id,
            sampled: stats.interval().is_some(),
            elsewhere,
            charts,
            rows,
            disk: samples
                .last()
                .and_then(|s| s.disk_bytes)
                .map_or("—".to_owned(), human_bytes),
        }
    }
}

/// Bytes per second in and out between each sample and the one before.
fn rates(samples: &[Sample]) -> Vec<(Timestamp, Option<f64>, Option<f64>)> {
    let mut before: Option<&Sample> = None;
    samples
        .iter()
        .map(|s| {
            let rate = |pick: fn(&crate::driver::Usage) -> Option<u64>| {
                let (then, now) = (before?.usage?, s.usage?);
                let seconds = (s.at - before?.at).num_milliseconds() as f64 / 1000.0;
                let (a, b) = (pick(&then)?, pick(&now)?);
                (seconds > 0.0 && b >= a).then(|| (b - a) as f64 / seconds)
            };
            let row = (s.at, rate(|u| u.net_in_bytes), rate(|u| u.net_out_bytes));
            before = Some(s);
            row
        })
        .collect()
}

type Series = (&'static str, &'static str, Vec<(Timestamp, Option<f64>)>);

fn chart(
    key: &'static str,
    title: &'static str,
    desc: &str,
    (start, end): (Timestamp, Timestamp),
    floor: f64,
    format: &dyn Fn(f64) -> String,
    series: Vec<Series>,
) -> ChartView {
    let top = series
        .iter()
        .flat_map(|(_, _, points)| points.iter().filter_map(|(_, v)| *v))
        .fold(floor, f64::max);
    let span = (end - start).num_milliseconds().max(1) as f64;
    let x = |at: Timestamp| (at - start).num_milliseconds() as f64 / span * WIDTH;
    let y = |v: f64| HEIGHT - (v / top).clamp(0.0, 1.0) * HEIGHT;
    let points = series.first().map_or(0, |(_, _, p)| p.len());
    let lines = series
        .into_iter()
        .map(|(label, class, points)| {
            let mut polylines = Vec::new();
            let mut current = Vec::new();
            for (at, value) in &points {
                match value {
                    Some(v) => current.push(format!("{:.1},{:.1}", x(*at), y(*v))),
                    None if !current.is_empty() => {
                        polylines.push(std::mem::take(&mut current).join(" "))
                    }
                    None => {}
                }
            }
            if !current.is_empty() {
                polylines.push(current.join(" "));
            }
            let last_value = points.iter().rev().find_map(|(at, v)| v.map(|v| (*at, v)));
            LineView {
                label,
                class,
                polylines,
                last: last_value.map(|(at, v)| (format!("{:.1}", x(at)), format!("{:.1}", y(v)))),
                latest_text: last_value.map_or("—".to_owned(), |(_, v)| format(v)),
            }
        })
        .collect::<Vec<_>>();
    let latest: Vec<String> = lines
        .iter()
        .map(|l| format!("{} {}", l.label.to_lowercase(), l.latest_text))
        .collect();
    ChartView {
        key,
        title,
        desc: format!("{desc}, over the last hour; latest: {}.", latest.join(", ")),
        top_text: format(top),
        lines,
        points,
    }
}

#[derive(Template)]
#[template(path = "usage.html")]
pub struct UsageFragment {
    pub usage: UsageView,
}

/// The container page's usage section alone, for `app.js` to swap in.
#[rocket::get("/containers/<id>/usage")]
async fn usage(
    _console: Console<'_>,
    service: &State<Service>,
    stats: &State<Stats>,
    id: &str,
) -> ConsoleResult<HtmlPage<UsageFragment>> {
    let container = service.container(parse_id(id)?).await?;
    Ok(HtmlPage::ok(UsageFragment {
        usage: UsageView::of(container.id, stats, elsewhere(service, &container.node)),
    }))
}

/// The node that samples a container living elsewhere.
pub fn elsewhere(service: &Service, node: &str) -> Option<String> {
    (node != service.this_node().name).then(|| node.to_owned())
}

/// The host at a glance, for the home page.
pub struct HostSummaryView {
    pub cpu: String,
    pub memory: String,
    pub disk: String,
    pub by_status: Vec<(String, i64)>,
}

impl HostSummaryView {
    pub async fn of(service: &Service, stats: &Stats) -> Self {
        let host = service.host_usage();
        let of = |used: Option<(u64, u64)>| match used {
            Some((used, total)) if total > 0 => format!(
                "{} of {} ({:.0} %)",
                human_bytes(used),
                human_bytes(total),
                used as f64 * 100.0 / total as f64
            ),
            _ => "—".to_owned(),
        };
        HostSummaryView {
            cpu: stats
                .host()
                .cpu_percent
                .map_or("—".to_owned(), |p| format!("{p:.1} %")),
            memory: of(host.memory),
            disk: of(host.disk),
            by_status: service.container_counts().await.unwrap_or_default(),
        }
    }
}
