//! Several berths as one, on PostgreSQL: real `berth serve` processes on
//! one host, each with its own port, LXC path, data directory and node
//! name, sharing a PostgreSQL server this test starts for itself. Asked
//! through any node, a container is created and run by the node that owns
//! it; a job queued on one node is picked up by the owner at once (no
//! polling: NOTIFY wakes it), its end is seen by a waiter on another node,
//! and a node killed with SIGKILL shows `offline` to the others, its jobs
//! waiting until it is back.

mod common;
mod pg;

use std::time::Duration;

use common::{assert_error, Berth, Events};
use reqwest::StatusCode;
use serde_json::json;

/// Two nodes on one fresh database, `a` and `b`, quick to call a silent
/// node offline.
fn cluster(postgres: &pg::Postgres) -> (Berth, Berth) {
    let url = postgres.create_database("berth");
    let node = |name: &str| {
        Berth::start_with_env(&[
            ("BERTH_DATABASE_URL", url.as_str()),
            ("BERTH_NODE_NAME", name),
            ("BERTH_NODE_TIMEOUT_SECS", "3"),
        ])
    };
    (node("a"), node("b"))
}

fn node_state(berth: &Berth, name: &str) -> String {
    let (status, answer) = berth.get(&format!("/v1/nodes/{name}"));
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["node"]["state"].as_str().unwrap().to_owned()
}

/// Queues a create on `via` for node `on`; the job id and container id.
fn queue_create_on(via: &Berth, name: &str, on: &str) -> (String, String) {
    let (status, answer) = via.post(
        "/v1/containers/",
        &json!({ "name": name, "ostemplate": "template1", "node": on }),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    (
        answer["job_id"].as_str().unwrap().to_owned(),
        answer["container_id"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn any_node_shows_and_changes_the_whole_cluster_and_the_owner_does_the_work() {
    let postgres = pg::Postgres::start();
    let (a, b) = cluster(&postgres);

    let (status, nodes) = a.get("/v1/nodes");
    assert_eq!(status, StatusCode::OK, "{nodes}");
    let names: Vec<&str> = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| node["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    for node in nodes["nodes"].as_array().unwrap() {
        assert_eq!(node["state"], "online", "{node}");
        assert!(node["capacity"]["cpus"].as_u64().unwrap() >= 1, "{node}");
    }

    // Asked on a, made and started by b: the job is picked up by b's runner
    // (woken by a's NOTIFY; b does not poll), and a's event stream follows
    // it to its end (b's changes reach a's subscribers through NOTIFY).
    let mut events_on_a = Events::open(&a);
    let (job, id) = queue_create_on(&a, "on-b", "b");
    let seen = events_on_a.job_until_finished(&job);
    let done = seen.last().unwrap();
    assert_eq!(done["status"], "done", "{done}\n{}", b.log());
    assert!(
        seen.iter().any(|event| event["status"] == "running"),
        "a saw b claim it: {seen:?}"
    );
    let started = a.act(&id, "start");
    assert_eq!(started["status"], "done", "{started}");
    assert_eq!(b.lxc_state("on-b").as_deref(), Some("RUNNING"));
    assert!(!a.lxc_path().join("on-b").exists());
    assert_eq!(b.container(&id)["node"], "b");
    assert_eq!(a.container(&id)["status"], "running");

    // Names are unique across the cluster.
    let taken = b.post(
        "/v1/containers/",
        &json!({ "name": "on-b", "ostemplate": "template1", "node": "a" }),
    );
    assert_error(&taken, 409, 3000);

    // Placement without a node: b is draining, so a gets it.
    let (status, drained) = a.patch("/v1/nodes/b", &json!({ "state": "draining" }));
    assert_eq!(status, StatusCode::OK, "{drained}");
    assert_eq!(drained["node"]["state"], "draining");
    assert_eq!(node_state(&b, "b"), "draining");
    let refused = a.post(
        "/v1/containers/",
        &json!({ "name": "nope", "ostemplate": "template1", "node": "b" }),
    );
    assert_error(&refused, 409, 3007);
    let placed = b.create("placed", None);
    assert_eq!(b.container(&placed)["node"], "a");
    assert!(a.lxc_path().join("placed").join("config").exists());
    let (_, listed) = b.get("/v1/containers?node=a");
    let on_a: Vec<&str> = listed["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(on_a, ["placed"]);
    assert_eq!(
        b.get("/v1/nodes/b").1["node"]["requested"]["disk_bytes"],
        0,
        "no parameters, nothing requested"
    );
    assert_eq!(b.get("/v1/nodes/b").1["node"]["containers"], 1);
}

#[test]
fn a_killed_node_goes_offline_and_its_jobs_wait_for_it() {
    let postgres = pg::Postgres::start();
    let (a, mut b) = cluster(&postgres);
    let (job, id) = queue_create_on(&a, "waits", "b");
    assert_eq!(a.wait_job(&job)["status"], "done");

    b.kill();
    a.wait_until("node b offline", Duration::from_secs(30), || {
        node_state(&a, "b") == "offline"
    });
    let refused = a.post(
        "/v1/containers/",
        &json!({ "name": "nope", "ostemplate": "template1", "node": "b" }),
    );
    assert_error(&refused, 409, 3007);
    let (status, nothing) = a.get("/v1/containers?name=nope");
    assert_eq!(
        (status, nothing["containers"].clone()),
        (StatusCode::OK, json!([]))
    );

    // A job for b's container, queued while b is away, waits for b.
    let start = a.queue(&id, "start");
    let (status, waiting) = a.get(&format!("/v1/jobs/{start}/wait?timeout=2"));
    assert_eq!(status, StatusCode::OK, "{waiting}");
    assert_eq!(waiting["status"], "queued", "{waiting}");
    let log = a.job_log(&start);
    assert!(
        log.iter().any(|line| line.contains("node b is offline")),
        "{log:?}"
    );

    b.launch();
    let done = a.wait_job(&start);
    assert_eq!(done["status"], "done", "{done}\n{}", b.log());
    assert_eq!(node_state(&a, "b"), "online");
    assert_eq!(b.lxc_state("waits").as_deref(), Some("RUNNING"));
}

#[test]
fn a_node_name_held_by_a_live_host_is_refused_at_start() {
    let postgres = pg::Postgres::start();
    let (a, _b) = cluster(&postgres);
    let url = postgres.url("berth");
    // Another data directory is another host.
    let mut impostor = std::process::Command::new(env!("CARGO_BIN_EXE_berth"));
    let dir = tempfile::tempdir().unwrap();
    let output = impostor
        .arg("serve")
        .current_dir(dir.path())
        .env("ROCKET_CONFIG", dir.path().join("no-Rocket.toml"))
        .env("ROCKET_PORT", "0")
        .env("BERTH_DATA_DIR", dir.path().join("data"))
        .env("BERTH_DATABASE_URL", &url)
        .env("BERTH_NODE_NAME", "a")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("node name 'a' is held by another host that is alive"),
        "{said}"
    );
    // The node itself is untouched.
    assert_eq!(node_state(&a, "a"), "online");
}
