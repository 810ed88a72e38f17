//! Several berths as one, on PostgreSQL: real `berth serve` processes on
//! one host, each with its own port, LXC path, data directory and node
//! name, sharing a PostgreSQL server this test starts for itself. Asked
//! through any node, a container is created and run by the node that owns
//! it; a job queued on one node is picked up by the owner at once (no
//! polling: NOTIFY wakes it), its end is seen by a waiter on another node,
//! and a node killed with SIGKILL shows `offline` to the others, its jobs
//! waiting until it is back. PostgreSQL restarted in the middle of a burst
//! of jobs loses none and runs none twice, and neither does a claim whose
//! connection is cut (by a proxy) before or after the server commits it.
//! Each node has its own OS templates, and a create goes only to a node
//! that has its template.

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

/// How many times each job was started, over the logs of all `nodes`
/// (berth logs `job <id> (<action>) started for container <id>`).
fn runs(nodes: &[&Berth]) -> std::collections::HashMap<String, usize> {
    let mut runs = std::collections::HashMap::new();
    for node in nodes {
        for line in node.log().lines() {
            let Some((_, rest)) = line.split_once("job ") else {
                continue;
            };
            if let Some((id, _)) = rest.split_once(") started for container ") {
                let id = id.split(' ').next().unwrap().to_owned();
                *runs.entry(id).or_insert(0) += 1;
            }
        }
    }
    runs
}

#[test]
fn a_postgresql_restart_in_a_burst_loses_no_job_and_runs_none_twice() {
    let mut postgres = pg::Postgres::start();
    let (a, b) = cluster(&postgres);

    // Three containers on each node, each with a chain of jobs queued at
    // once (asked alternately through either node): create, start,
    // configure, restart, stop, and for every other one start again.
    let mut queued: Vec<(String, &Berth)> = Vec::new();
    let mut expected: Vec<(String, &Berth, &str)> = Vec::new();
    for i in 0..6 {
        let (owner, owner_name) = if i % 2 == 0 { (&a, "a") } else { (&b, "b") };
        let via = if i % 3 == 0 { &a } else { &b };
        let name = format!("burst-{i}");
        let (job, id) = queue_create_on(via, &name, owner_name);
        queued.push((job, via));
        queued.push((via.queue(&id, "start"), via));
        let configure = via.patch_parameters(&id, json!({ "hostname": format!("h{i}") }));
        queued.push((configure, via));
        queued.push((via.queue(&id, "restart"), via));
        queued.push((via.queue(&id, "stop"), via));
        let end = if i % 2 == 0 {
            queued.push((via.queue(&id, "start"), via));
            "RUNNING"
        } else {
            "STOPPED"
        };
        expected.push((name, owner, end));
    }

    // The server goes away while jobs are queued and running.
    a.wait_until(
        "a job of the burst to be running",
        Duration::from_secs(60),
        || {
            queued
                .iter()
                .any(|(job, via)| via.job(job)["status"] == "running")
        },
    );
    postgres.stop_server();
    for node in [&a, &b] {
        assert_error(&node.get("/v1/containers"), 503, 5003);
        assert_error(&node.get(&format!("/v1/jobs/{}", queued[0].0)), 503, 5003);
        assert_error(
            &node.post(
                "/v1/containers/",
                &json!({ "name": "during", "ostemplate": "template1" }),
            ),
            503,
            5003,
        );
        let health = node.get("/healthz");
        assert_error(&health, 503, 5002);
        let said = health.1["message"].as_str().unwrap();
        assert!(said.contains("the database cannot be reached"), "{said}");
    }
    std::thread::sleep(Duration::from_secs(2));
    postgres.start_server();

    for (job, via) in &queued {
        let finished = via.wait_job_for(job, Duration::from_secs(240));
        assert_eq!(
            finished["status"],
            "done",
            "{finished}\n--- a:\n{}\n--- b:\n{}",
            a.log(),
            b.log()
        );
    }
    let runs = runs(&[&a, &b]);
    for (job, _) in &queued {
        assert_eq!(
            runs.get(job.as_str()),
            Some(&1),
            "job {job} ran once\n--- a:\n{}\n--- b:\n{}",
            a.log(),
            b.log()
        );
    }
    assert_eq!(runs.len(), queued.len(), "no other job ran: {runs:?}");
    for (name, owner, end) in &expected {
        assert_eq!(owner.lxc_state(name).as_deref(), Some(*end), "{name}");
        let status =
            a.get(&format!("/v1/containers?name={name}")).1["containers"][0]["status"].clone();
        assert_eq!(status, end.to_lowercase(), "{name}");
        if *end == "RUNNING" {
            let index = &name["burst-".len()..];
            assert_eq!(owner.attach(name, "hostname").trim(), format!("h{index}"));
        }
    }
    // Nothing is left of the burst on the node that does not own it.
    for (name, owner, _) in &expected {
        let other = if std::ptr::eq(*owner, &a) { &b } else { &a };
        assert_eq!(other.lxc_state(name), None, "{name}");
    }
    // Nothing stays queued or running.
    let (_, jobs) = a.get("/v1/jobs?limit=100");
    for job in jobs["jobs"].as_array().unwrap() {
        assert_eq!(job["status"], "done", "{job}");
    }

    // Each node hears the other again (it does not poll): a job queued on
    // one for the other's container is run by its owner.
    for (via, owner, name) in [(&a, &b, "burst-1"), (&b, &a, "burst-0")] {
        let (_, found) = via.get(&format!("/v1/containers?name={name}"));
        let id = found["containers"][0]["id"].as_str().unwrap().to_owned();
        let action = if owner.lxc_state(name).as_deref() == Some("RUNNING") {
            "stop"
        } else {
            "start"
        };
        let job = via.queue(&id, action);
        assert_eq!(via.wait_job(&job)["status"], "done", "{}", owner.log());
        let end = if action == "stop" {
            "STOPPED"
        } else {
            "RUNNING"
        };
        assert_eq!(owner.lxc_state(name).as_deref(), Some(end), "{name}");
    }
}

/// A TCP proxy in front of PostgreSQL that cuts, once, the connection the
/// runner claims a job on (the claim is the statement that sets `status =
/// 'running'`, prepared once and then run by its statement's name), in one
/// of two places (`Cut`).
mod claim_cut {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Where the claim's connection is cut.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Cut {
        /// Once the server has committed the claim and before berth hears
        /// so: the server's messages are held from the claim on until it
        /// says the transaction is over (ReadyForQuery, idle) with a row
        /// claimed, and then the connection is cut instead of passing them on.
        AfterCommit,
        /// Before anything commits the claim: the client's Sync after the
        /// claim is replaced by a Flush (so the server sends the claimed row
        /// but its implicit transaction stays open), and the connection is
        /// cut right after the row reaches berth. The server rolls back.
        BeforeCommit,
    }

    pub struct Proxy {
        pub port: u16,
        armed: Arc<AtomicBool>,
        fired: Arc<AtomicBool>,
    }

    impl Proxy {
        pub fn start(upstream: u16, cut: Cut) -> Proxy {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            let armed = Arc::new(AtomicBool::new(false));
            let fired = Arc::new(AtomicBool::new(false));
            let (armed_, fired_) = (armed.clone(), fired.clone());
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    let Ok(client) = client else { return };
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                        continue;
                    };
                    let (armed, fired) = (armed_.clone(), fired_.clone());
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    std::thread::spawn(move || relay(client, server, cut, armed, fired));
                }
            });
            Proxy { port, armed, fired }
        }

        /// Cuts the next claim that gets a job.
        pub fn arm(&self) {
            self.armed.store(true, Ordering::SeqCst);
        }

        pub fn fired(&self) -> bool {
            self.fired.load(Ordering::SeqCst)
        }
    }

    fn relay(
        client: TcpStream,
        server: TcpStream,
        cut: Cut,
        armed: Arc<AtomicBool>,
        fired: Arc<AtomicBool>,
    ) {
        let claim_sent = Arc::new(AtomicBool::new(false));
        let flushed = Arc::new(AtomicBool::new(false));
        let (armed_, flushed_) = (armed.clone(), flushed.clone());
        let (mut from_client, mut to_server) =
            (client.try_clone().unwrap(), server.try_clone().unwrap());
        let sent = claim_sent.clone();
        std::thread::spawn(move || {
            // The claim is prepared once and then run by its statement's
            // name: remember which names hold it.
            let mut claims: Vec<Vec<u8>> = Vec::new();
            let mut buffer: Vec<u8> = Vec::new();
            let mut started = false;
            let mut chunk = [0u8; 65536];
            loop {
                let n = match from_client.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                buffer.extend_from_slice(&chunk[..n]);
                loop {
                    // The startup message has no type byte.
                    let at = usize::from(started);
                    if buffer.len() < at + 4 {
                        break;
                    }
                    let length =
                        u32::from_be_bytes(buffer[at..at + 4].try_into().unwrap()) as usize;
                    if buffer.len() < at + length {
                        break;
                    }
                    let message: Vec<u8> = buffer.drain(..at + length).collect();
                    if started {
                        let mut fields = message[5..].split(|b| *b == 0);
                        match message[0] {
                            b'P' => {
                                let name = fields.next().unwrap_or_default().to_vec();
                                let query =
                                    String::from_utf8_lossy(fields.next().unwrap_or_default());
                                // Only named: executing it (Bind) is the
                                // claim; preparing it (Parse, Describe,
                                // Sync) returns no row, and holding back
                                // that Sync would stall the runner.
                                if query.contains("SET status = 'running'") {
                                    claims.push(name.clone());
                                }
                            }
                            b'B' => {
                                let _portal = fields.next();
                                let name = fields.next().unwrap_or_default();
                                if claims.iter().any(|claim| claim == name) {
                                    sent.store(true, Ordering::SeqCst);
                                }
                            }
                            _ => {}
                        }
                    }
                    if started
                        && cut == Cut::BeforeCommit
                        && message[0] == b'S'
                        && sent.load(Ordering::SeqCst)
                        && armed_.load(Ordering::SeqCst)
                    {
                        flushed_.store(true, Ordering::SeqCst);
                        if to_server.write_all(b"H\0\0\0\x04").is_err() {
                            return;
                        }
                        continue;
                    }
                    if started && cut == Cut::BeforeCommit && message[0] == b'S' {
                        // The claim's batch ends with its Sync.
                        sent.store(false, Ordering::SeqCst);
                    }
                    started = true;
                    if to_server.write_all(&message).is_err() {
                        return;
                    }
                }
            }
            let _ = to_server.shutdown(Shutdown::Both);
        });
        let mut sync_to_server = server.try_clone().unwrap();
        let (mut from_server, mut to_client) = (server, client);
        let mut buffer: Vec<u8> = Vec::new();
        let mut held: Vec<u8> = Vec::new();
        let mut row_seen = false;
        let mut chunk = [0u8; 65536];
        loop {
            let n = match from_server.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            buffer.extend_from_slice(&chunk[..n]);
            // Whole messages: a type byte, then a length that counts itself.
            while buffer.len() >= 5 {
                let length = u32::from_be_bytes(buffer[1..5].try_into().unwrap()) as usize;
                if buffer.len() < 1 + length {
                    break;
                }
                let message: Vec<u8> = buffer.drain(..1 + length).collect();
                if flushed.load(Ordering::SeqCst)
                    && message[0] == b'D'
                    && armed.swap(false, Ordering::SeqCst)
                {
                    fired.store(true, Ordering::SeqCst);
                    let _ = to_client.write_all(&message);
                    let _ = to_client.shutdown(Shutdown::Both);
                    let _ = from_server.shutdown(Shutdown::Both);
                    return;
                }
                // A claim that found no job (the runner looked before the
                // job was queued): nothing to cut, so the Sync held back is
                // sent after all, or the runner would wait for its answer
                // forever.
                if flushed.load(Ordering::SeqCst) && message[0] == b'C' {
                    flushed.store(false, Ordering::SeqCst);
                    if sync_to_server.write_all(b"S\0\0\0\x04").is_err() {
                        return;
                    }
                }
                if cut == Cut::BeforeCommit || !claim_sent.load(Ordering::SeqCst) {
                    if to_client.write_all(&message).is_err() {
                        return;
                    }
                    continue;
                }
                row_seen |= message[0] == b'D';
                held.extend_from_slice(&message);
                if message[0] != b'Z' {
                    continue;
                }
                let idle = message[5] == b'I';
                if idle && row_seen && armed.swap(false, Ordering::SeqCst) {
                    fired.store(true, Ordering::SeqCst);
                    let _ = to_client.shutdown(Shutdown::Both);
                    let _ = from_server.shutdown(Shutdown::Both);
                    return;
                }
                if to_client.write_all(&held).is_err() {
                    return;
                }
                held.clear();
                if idle {
                    claim_sent.store(false, Ordering::SeqCst);
                    row_seen = false;
                }
            }
        }
        let _ = to_client.shutdown(Shutdown::Both);
    }
}

/// A node whose database connections go through a `claim_cut` proxy.
fn behind_proxy(postgres: &pg::Postgres, cut: claim_cut::Cut) -> (claim_cut::Proxy, Berth) {
    let url = postgres.create_database("berth");
    let proxy = claim_cut::Proxy::start(postgres.port(), cut);
    let through_proxy = url.replace(
        &format!(":{}/", postgres.port()),
        &format!(":{}/", proxy.port),
    ) + "?sslmode=disable";
    let a = Berth::start_with_env(&[
        ("BERTH_DATABASE_URL", through_proxy.as_str()),
        ("BERTH_NODE_NAME", "a"),
    ]);
    (proxy, a)
}

#[test]
fn a_claim_whose_answer_is_lost_is_run_once_not_left_running() {
    let postgres = pg::Postgres::start();
    let (proxy, a) = behind_proxy(&postgres, claim_cut::Cut::AfterCommit);
    proxy.arm();
    let (job, _) = queue_create_on(&a, "cut", "a");
    let done = a.wait_job_for(&job, Duration::from_secs(90));
    assert!(proxy.fired(), "the claim was cut\n{}", a.log());
    assert_eq!(done["status"], "done", "{done}\n{}", a.log());
    assert_eq!(runs(&[&a]).get(job.as_str()), Some(&1), "{}", a.log());
    let log = a.job_log(&job);
    assert!(
        log.iter()
            .any(|line| line.contains("had not run, and was queued again")),
        "{log:?}"
    );
    assert_eq!(a.lxc_state("cut").as_deref(), Some("STOPPED"));
}

#[test]
fn a_claim_the_server_rolled_back_is_not_run_until_claimed_again() {
    let postgres = pg::Postgres::start();
    let (proxy, a) = behind_proxy(&postgres, claim_cut::Cut::BeforeCommit);
    proxy.arm();
    let (job, _) = queue_create_on(&a, "uncommitted", "a");
    let done = a.wait_job_for(&job, Duration::from_secs(90));
    assert!(proxy.fired(), "the claim was cut\n{}", a.log());
    assert_eq!(done["status"], "done", "{done}\n{}", a.log());
    assert_eq!(runs(&[&a]).get(job.as_str()), Some(&1), "{}", a.log());
    assert_eq!(a.lxc_state("uncommitted").as_deref(), Some("STOPPED"));
}

#[test]
fn templates_are_per_node_and_a_create_goes_where_its_template_is() {
    let postgres = pg::Postgres::start();
    let url = postgres.create_database("berth");
    let node = |name: &str, templates: Vec<&'static str>| {
        Berth::start_with(common::Options {
            env: [
                ("BERTH_DATABASE_URL", url.as_str()),
                ("BERTH_NODE_NAME", name),
                // Beats every 5 s: an upload must be known before then.
                ("BERTH_NODE_TIMEOUT_SECS", "30"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            templates,
        })
    };
    // Each node has its own template directory; only b has `onlyb`.
    let a = node("a", vec!["template1"]);
    let b = node("b", vec!["template1", "onlyb"]);
    let templates = |via: &Berth, name: &str| {
        via.get(&format!("/v1/nodes/{name}")).1["node"]["templates"].clone()
    };
    assert_eq!(templates(&a, "b"), json!(["onlyb", "template1"]));
    assert_eq!(templates(&b, "a"), json!(["template1"]));

    let create = |via: &Berth, name: &str, node: Option<&str>| {
        let mut body = json!({ "name": name, "ostemplate": "onlyb" });
        if let Some(node) = node {
            body["node"] = json!(node);
        }
        via.post("/v1/containers/", &body)
    };
    // Named, a node that lacks it refuses: asked on b (which has it) too.
    for via in [&a, &b] {
        let refused = create(via, "on-a", Some("a"));
        assert_error(&refused, 422, 2004);
        let said = refused.1["message"].as_str().unwrap();
        assert!(said.contains("node 'a'"), "{said}");
    }
    // Unnamed, asked on a: placed on b, the only node that has it.
    let (status, placed) = create(&a, "placed", None);
    assert_eq!(status, StatusCode::ACCEPTED, "{placed}");
    assert_eq!(
        a.job_done(placed["job_id"].as_str().unwrap())["status"],
        "done"
    );
    let placed_id = placed["container_id"].as_str().unwrap();
    assert_eq!(a.container(placed_id)["node"], "b");
    assert!(b.lxc_path().join("placed").join("config").exists());
    // Named b, asked on a: made and run by b.
    let (status, named) = create(&a, "named-b", Some("b"));
    assert_eq!(status, StatusCode::ACCEPTED, "{named}");
    a.job_done(named["job_id"].as_str().unwrap());
    let named_id = named["container_id"].as_str().unwrap();
    a.act(named_id, "start");
    assert_eq!(b.lxc_state("named-b").as_deref(), Some("RUNNING"));
    assert_eq!(a.lxc_state("named-b"), None);
    // A template no node has is the same 422, named node or not.
    let none = a.post(
        "/v1/containers/",
        &json!({ "name": "nowhere", "ostemplate": "nowhere" }),
    );
    assert_error(&none, 422, 2004);
    // Those that have it are draining: no node is available.
    let (status, _) = a.patch("/v1/nodes/b", &json!({ "state": "draining" }));
    assert_eq!(status, StatusCode::OK);
    assert_error(&create(&a, "drained", None), 409, 3007);
    let (status, _) = a.patch("/v1/nodes/b", &json!({ "state": "online" }));
    assert_eq!(status, StatusCode::OK);

    // An upload through a's API is known to b at once (not a heartbeat
    // later): a create asked on b names a and is accepted.
    let archive = std::fs::read(common::busybox_template()).unwrap();
    let (status, uploaded) = a.send_raw(
        "POST",
        "/v1/templates?name=onlyb.tar.gz",
        "application/gzip",
        archive,
    );
    assert_eq!(status, StatusCode::CREATED, "{uploaded}");
    let (status, on_a) = create(&b, "now-on-a", Some("a"));
    assert_eq!(status, StatusCode::ACCEPTED, "{on_a}");
    a.job_done(on_a["job_id"].as_str().unwrap());
    assert!(a.lxc_path().join("now-on-a").join("config").exists());
    // A delete through b's API likewise.
    let (status, deleted) = b.delete("/v1/templates/onlyb");
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_error(&create(&a, "gone-from-b", Some("b")), 422, 2004);
    assert_eq!(templates(&a, "b"), json!(["template1"]));

    // One put into the directory by hand is published with a heartbeat.
    std::fs::copy(
        common::busybox_template(),
        b.template_dir().join("by-hand.tar.gz"),
    )
    .unwrap();
    a.wait_until("b to publish by-hand", Duration::from_secs(60), || {
        templates(&a, "b") == json!(["by-hand", "template1"])
    });
}
