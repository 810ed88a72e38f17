//! Usage of real containers: the sampler's figures through
//! `GET /v1/containers/:id/stats` and `/metrics`, with the interval at
//! 1 s so that samples come quickly. No test asserts how long anything
//! takes: each waits (boundedly) for the figure it needs.

mod common;
mod pg;

use std::time::Duration;

use common::{assert_error, unique_name, Berth};
use serde_json::{json, Value};

const PATIENCE: Duration = Duration::from_secs(60);

fn sampled_every_second() -> Berth {
    Berth::start_with_env(&[("BERTH_STATS_INTERVAL_SECS", "1")])
}

fn stats(berth: &Berth, id: &str, query: &str) -> Value {
    let (status, body) = berth.get(&format!("/v1/containers/{id}/stats{query}"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["message"], "success");
    body
}

/// A figure as the API types it: a string of digits.
fn number(value: &Value, field: &str) -> u64 {
    let text = value[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string: {value}"));
    text.parse()
        .unwrap_or_else(|_| panic!("{field} is not a number: {value}"))
}

fn current_cpu_ns(berth: &Berth, id: &str) -> Option<u64> {
    let body = stats(berth, id, "");
    let current = &body["current"];
    (current["running"] == true).then(|| number(current, "cpu_time_ns"))
}

#[test]
fn a_running_container_has_moving_figures_a_growing_history_and_metrics() {
    let berth = sampled_every_second();
    let name = unique_name("usage");
    let id = berth.create(
        &name,
        Some(json!({ "memsize": "128", "memsize_units": "M" })),
    );
    berth.act(&id, "start");

    let mut first = None;
    berth.wait_until("a first sample of the running container", PATIENCE, || {
        first = current_cpu_ns(&berth, &id);
        first.is_some()
    });
    let body = stats(&berth, &id, "");
    assert_eq!(body["name"], name.as_str());
    assert_eq!(body["status"], "running");
    assert_eq!(body["interval_seconds"], "1");
    let current = &body["current"];
    assert_eq!(number(current, "memory_limit_bytes"), 128 << 20);
    assert!(number(current, "memory_bytes") > 0, "{current}");
    // Present and typed, whatever traffic the bridge carries.
    number(current, "net_in_bytes");
    number(current, "net_out_bytes");
    assert!(number(current, "disk_used_bytes") > 0, "{current}");
    assert!(body.get("history").is_none(), "history only when asked");

    // CPU time spent inside the container is counted.
    berth.attach(&name, "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done");
    let first = first.unwrap();
    berth.wait_until("the CPU time to move", PATIENCE, || {
        current_cpu_ns(&berth, &id).is_some_and(|now| now > first + 50_000_000)
    });
    let percent = stats(&berth, &id, "")["current"]["cpu_percent"].clone();
    let percent: f64 = percent.as_str().unwrap().parse().unwrap();
    assert!(percent >= 0.0, "{percent}");

    // The direction, from the container's point of view: multicast to a
    // group nobody joined leaves the container and gets no answer, so
    // what it sends shows as out, not in (the host side of the veth counts
    // it as received).
    let body = stats(&berth, &id, "");
    let (in_before, out_before) = (
        number(&body["current"], "net_in_bytes"),
        number(&body["current"], "net_out_bytes"),
    );
    let sent = 20 * 1400;
    // Sent again until it shows: right after a start, eth0's link-local
    // address may still be tentative and the first try send nothing.
    let mut last_try: Option<std::time::Instant> = None;
    let mut after = (0, 0);
    berth.wait_until("the sent bytes to show as out", PATIENCE, || {
        let due = match last_try {
            None => true,
            Some(at) => at.elapsed() > Duration::from_secs(3),
        };
        if due {
            let output = berth.attach(
                &name,
                "ping6 -c 20 -i 0.05 -s 1400 -I eth0 ff02::1234 2>&1; true",
            );
            if last_try.is_some() {
                eprintln!("ping6 again; the last try said: {output}");
            }
            last_try = Some(std::time::Instant::now());
        }
        let current = &stats(&berth, &id, "")["current"];
        after = (
            number(current, "net_in_bytes"),
            number(current, "net_out_bytes"),
        );
        after.1 >= out_before + sent
    });
    assert!(
        after.0 < in_before + sent / 2,
        "in grew from {in_before} to {} while the container only sent",
        after.0
    );

    let history = |query: &str| {
        stats(&berth, &id, query)["history"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = history("?range=5m");
    assert!(before >= 2, "{before}");
    berth.wait_until("the history to grow", PATIENCE, || {
        history("?range=300") > before
    });
    let since = stats(&berth, &id, "?range=1h")["history"][0]["at"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(history(&format!("?since={since}")) > before);
    assert_eq!(history("?since=2999-01-01T00:00:00Z"), 0);

    let response = berth.client.get(berth.url("/metrics")).send().unwrap();
    assert_eq!(response.status(), 200);
    let metrics = response.text().unwrap();
    for line in [
        "# TYPE berth_container_cpu_seconds_total counter",
        "# TYPE berth_container_memory_bytes gauge",
        "# TYPE berth_container_network_receive_bytes_total counter",
        &format!("berth_container_memory_limit_bytes{{container=\"{name}\"}} 134217728"),
        &format!("berth_container_running{{container=\"{name}\"}} 1"),
    ] {
        assert!(metrics.contains(line), "no {line:?} in\n{metrics}");
    }
    assert!(
        metrics.contains(&format!(
            "berth_container_cpu_seconds_total{{container=\"{name}\"}} "
        )),
        "{metrics}"
    );

    // Stopped: it uses nothing, and says so; its disk is still measured.
    berth.act(&id, "stop");
    berth.wait_until("a sample of the stopped container", PATIENCE, || {
        stats(&berth, &id, "")["current"]["running"] == false
    });
    let body = stats(&berth, &id, "");
    let current = &body["current"];
    assert_eq!(body["status"], "stopped");
    assert_eq!(current["cpu_percent"], "0.00");
    assert_eq!(current["memory_bytes"], "0");
    assert_eq!(current["cpu_time_ns"], Value::Null);
    assert_eq!(current["net_in_bytes"], Value::Null);
    assert!(number(current, "disk_used_bytes") > 0, "{current}");
}

#[test]
fn bad_since_and_range_are_refused_and_sampling_can_be_off() {
    let berth = Berth::start_with_env(&[("BERTH_STATS_INTERVAL_SECS", "0")]);
    let name = unique_name("nousage");
    let id = berth.create(&name, None);
    for query in [
        "?since=yesterday",
        "?since=2026-13-01T00:00:00Z",
        "?range=0",
        "?range=5x",
        "?range=-5",
        "?range=1.5h",
        "?range=31d",
        "?range=5m&since=2026-11-30T00:00:00Z",
        "?range=5m&range=1h",
    ] {
        let answer = berth.get(&format!("/v1/containers/{id}/stats{query}"));
        assert_error(&answer, 422, 1002);
    }
    assert_error(
        &berth.get("/v1/containers/54e21881-8620-4bb0-95f1-05f143973a6e/stats"),
        404,
        2002,
    );
    assert_error(&berth.get("/v1/containers/nope/stats"), 400, 1003);
    let body = stats(&berth, &id, "?range=5m");
    assert_eq!(body["interval_seconds"], Value::Null);
    assert_eq!(body["current"], Value::Null);
    assert_eq!(body["history"], json!([]));
    assert_eq!(stats(&berth, &id, "/")["status"], "stopped");
}

/// In a cluster each node samples its own containers; asked through
/// another node, the owner's figures come back as they are, and a node
/// that cannot be reached is a 502 in the error shape.
#[test]
fn another_nodes_container_is_answered_by_that_node() {
    let postgres = pg::Postgres::start();
    let url = postgres.create_database("berth");
    let node = |name: &str| {
        Berth::start_with_env(&[
            ("BERTH_DATABASE_URL", url.as_str()),
            ("BERTH_NODE_NAME", name),
            ("BERTH_STATS_INTERVAL_SECS", "1"),
        ])
    };
    let (a, mut b) = (node("a"), node("b"));
    let name = unique_name("onb");
    let (status, answer) = a.post(
        "/v1/containers/",
        &json!({ "name": name, "ostemplate": "template1", "node": "b" }),
    );
    assert_eq!(status, 202, "{answer}");
    let id = answer["container_id"].as_str().unwrap().to_owned();
    a.wait_job(answer["job_id"].as_str().unwrap());
    b.act(&id, "start");
    b.wait_until("b's first sample", PATIENCE, || {
        stats(&b, &id, "")["current"]["running"] == true
    });
    let via_a = stats(&a, &id, "?range=5m");
    assert_eq!(via_a["node"], "b");
    assert_eq!(via_a["current"]["running"], true, "{via_a}");
    assert!(!via_a["history"].as_array().unwrap().is_empty(), "{via_a}");
    assert_error(
        &a.get(&format!("/v1/containers/{id}/stats?range=0")),
        422,
        1002,
    );

    b.kill();
    assert_error(&a.get(&format!("/v1/containers/{id}/stats")), 502, 5040);
}
