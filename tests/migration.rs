//! Moving containers between nodes: real `berth serve` nodes on one host
//! sharing a PostgreSQL server this test starts, each with its own LXC
//! path. A moved container's files (a directory or a disk image) arrive
//! on the target as they were, it runs there if it ran, and nothing of it
//! stays behind; a move that fails leaves it whole, and running, where it
//! was; nodes take files only from a node moving that container to them,
//! signed with the cluster secret.

mod browser;
mod common;
mod pg;

use berth::cluster::peer::ClusterSecret;
use common::{assert_error, Berth};
use reqwest::StatusCode;
use serde_json::json;

const SECRET: &str = "migration-test-secret-0123456789abcdef";

/// Nodes `a` and `b` on one fresh database, with the same cluster secret.
fn cluster(postgres: &pg::Postgres) -> (Berth, Berth) {
    let url = postgres.create_database("berth");
    let node = |name: &str| {
        Berth::start_with_env(&[
            ("BERTH_DATABASE_URL", url.as_str()),
            ("BERTH_NODE_NAME", name),
            ("BERTH_NODE_TIMEOUT_SECS", "5"),
            ("BERTH_CLUSTER_SECRET", SECRET),
        ])
    };
    (node("a"), node("b"))
}

fn create_on(via: &Berth, name: &str, node: &str, parameters: serde_json::Value) -> String {
    let (status, answer) = via.post(
        "/v1/containers/",
        &json!({ "name": name, "ostemplate": "template1", "node": node, "parameters": parameters }),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    via.job_done(answer["job_id"].as_str().unwrap());
    answer["container_id"].as_str().unwrap().to_owned()
}

fn queue_move(via: &Berth, id: &str, node: &str) -> String {
    let (status, answer) = via.post(
        &format!("/v1/containers/{id}/migrate"),
        &json!({ "node": node }),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer["job_id"].as_str().unwrap().to_owned()
}

#[test]
fn a_container_moves_with_its_files_and_runs_where_it_ran() {
    let postgres = pg::Postgres::start();
    let (a, b) = cluster(&postgres);

    // A running container on a, with a file written inside it.
    let web = create_on(&a, "web", "a", json!({ "hostname": "web1" }));
    a.act(&web, "start");
    a.attach(
        "web",
        "echo 'made on a' > /root/marker && chmod 640 /root/marker",
    );

    // Emptying a host for maintenance: drained, its containers still move
    // out. Asked through b; carried out by a (the owner) and then b.
    let (status, drained) = b.patch("/v1/nodes/a", &json!({ "state": "draining" }));
    assert_eq!(status, StatusCode::OK, "{drained}");
    let job = queue_move(&b, &web, "b");
    let moved = b.job_done(&job);
    assert_eq!(moved["action"], "migrate", "{moved}");
    let container = a.container(&web);
    assert_eq!(container["node"], "b", "{container}");
    assert_eq!(container["status"], "running", "{container}");
    assert_eq!(b.lxc_state("web").as_deref(), Some("RUNNING"));
    assert!(!a.lxc_path().join("web").exists(), "a's copy is removed");
    assert_eq!(b.attach("web", "cat /root/marker"), "made on a\n");
    assert_eq!(b.attach("web", "stat -c %a /root/marker"), "640\n");
    assert_eq!(b.attach("web", "hostname"), "web1\n");
    let log = b.job_log(&job).join("\n");
    assert!(log.contains("node 'b' has the files"), "{log}");
    assert!(log.contains("the rest of this job runs there"), "{log}");

    // Where it is now is where it is: moving it there again is a conflict;
    // nodes that do not exist or names that cannot be are refused.
    assert_error(
        &a.post(
            &format!("/v1/containers/{web}/migrate"),
            &json!({ "node": "b" }),
        ),
        409,
        3008,
    );
    assert_error(
        &a.post(
            &format!("/v1/containers/{web}/migrate"),
            &json!({ "node": "nowhere" }),
        ),
        422,
        1008,
    );
    assert_error(
        &a.post(
            &format!("/v1/containers/{web}/migrate"),
            &json!({ "node": "Not A Name" }),
        ),
        422,
        1002,
    );
    assert_error(
        &a.post(
            &format!("/v1/containers/{web}/migrate"),
            &json!({ "to": "a" }),
        ),
        400,
        1001,
    );

    // A drained node takes no container, moved or made.
    assert_error(
        &b.post(
            &format!("/v1/containers/{web}/migrate"),
            &json!({ "node": "a" }),
        ),
        409,
        3007,
    );
    let (status, online) = a.patch("/v1/nodes/a", &json!({ "state": "online" }));
    assert_eq!(status, StatusCode::OK, "{online}");

    // A stopped container on a disk image, moved while its create is still
    // queued behind nothing but itself: the move waits its turn, and the
    // image arrives (sparse files stay sparse) and stays stopped.
    let (status, created) = a.post(
        "/v1/containers/",
        &json!({ "name": "disk", "ostemplate": "template1", "node": "a",
                 "parameters": { "size": "64", "size_units": "M" } }),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let disk = created["container_id"].as_str().unwrap().to_owned();
    let disk_move = queue_move(&a, &disk, "b");
    a.job_done(created["job_id"].as_str().unwrap());
    a.job_done(&disk_move);
    let container = b.container(&disk);
    assert_eq!(container["node"], "b", "{container}");
    assert_eq!(container["status"], "stopped", "{container}");
    assert_eq!(b.lxc_state("disk").as_deref(), Some("STOPPED"));
    let image = b.lxc_path().join("disk/rootfs.img");
    let metadata = std::fs::metadata(&image).unwrap();
    assert_eq!(metadata.len(), 64 << 20);
    use std::os::unix::fs::MetadataExt;
    assert!(
        metadata.blocks() * 512 < metadata.len(),
        "the image stays sparse"
    );
    assert!(!a.lxc_path().join("disk").exists());
    // It works there, and moves back.
    b.act(&disk, "start");
    let megabytes: u64 = b
        .attach("disk", "df -m / | tail -1 | awk '{print $2}'")
        .trim()
        .parse()
        .unwrap();
    assert!(
        megabytes <= 64,
        "the disk is still its size: {megabytes} MiB"
    );
    b.job_done(&queue_move(&a, &disk, "a"));
    assert_eq!(a.lxc_state("disk").as_deref(), Some("RUNNING"));
    assert!(!b.lxc_path().join("disk").exists());
}

#[test]
fn a_failed_move_leaves_the_container_whole_and_running_where_it_was() {
    let postgres = pg::Postgres::start();
    let (a, b) = cluster(&postgres);
    let id = create_on(&a, "stays", "a", json!({}));
    a.act(&id, "start");
    a.attach("stays", "echo still here > /root/marker");
    let still_whole_on_a = |job: &str| {
        let failed = a.wait_job(job);
        assert_eq!(failed["status"], "failed", "{failed}");
        let container = b.container(&id);
        assert_eq!(container["node"], "a", "{container}");
        assert_eq!(container["status"], "running", "{container}");
        assert_eq!(a.lxc_state("stays").as_deref(), Some("RUNNING"));
        assert_eq!(a.attach("stays", "cat /root/marker"), "still here\n");
        failed["error"].as_str().unwrap().to_owned()
    };

    // Something that is not berth's holds the name on b: b says so before
    // a stops anything, and the container runs on.
    let squatter = b.lxc_path().join("stays");
    std::fs::create_dir_all(&squatter).unwrap();
    std::fs::write(squatter.join("precious"), "not berth's").unwrap();
    let job = queue_move(&a, &id, "b");
    let error = still_whole_on_a(&job);
    assert!(error.contains("was not created by berth"), "{error}");
    let log = a.job_log(&job);
    assert!(!log.iter().any(|line| line == "stopped"), "{log:?}");
    assert_eq!(
        std::fs::read_to_string(squatter.join("precious")).unwrap(),
        "not berth's"
    );
    std::fs::remove_dir_all(&squatter).unwrap();

    // b fails half-way, after a has stopped the container: the place the
    // files arrive in cannot be made (an immutable file holds its name).
    // a starts the container again, and b keeps nothing of it.
    let blocker = b.lxc_path().join(format!(".incoming-{id}"));
    std::fs::write(&blocker, "in the way").unwrap();
    common::run_ok(std::process::Command::new("chattr").arg("+i").arg(&blocker));
    let job = queue_move(&a, &id, "b");
    let error = still_whole_on_a(&job);
    common::run_ok(std::process::Command::new("chattr").arg("-i").arg(&blocker));
    assert!(error.contains("sending the files failed"), "{error}");
    let log = a.job_log(&job).join("\n");
    assert!(log.contains("node 'b' says why"), "{log}");
    assert!(log.contains(&format!(".incoming-{id}")), "{log}");
    assert!(log.contains("starting it again here"), "{log}");
    assert!(!b.lxc_path().join("stays").exists());

    // Once the way is clear, the same container moves.
    std::fs::remove_file(&blocker).unwrap();
    b.job_done(&queue_move(&b, &id, "b"));
    assert_eq!(b.attach("stays", "cat /root/marker"), "still here\n");
}

#[test]
fn nodes_take_files_only_when_signed_and_only_for_a_move_to_them() {
    let postgres = pg::Postgres::start();
    let (a, b) = cluster(&postgres);
    let id = create_on(&a, "guarded", "a", json!({}));
    let path = format!("/v1/cluster/migrations/{id}");
    let client = reqwest::blocking::Client::new();
    let put = |auth: Option<String>| {
        let mut request = client
            .put(b.url(&path))
            .header("Content-Type", "application/x-tar")
            .body(vec![0u8; 1024]);
        if let Some(auth) = auth {
            request = request.header("Berth-Cluster-Auth", auth);
        }
        let response = request.send().unwrap();
        let status = response.status();
        (status, response.json::<serde_json::Value>().unwrap())
    };
    let now = chrono::Utc::now().timestamp();

    // A user's request, or one signed with another secret, or an old
    // signature: refused before anything is read.
    assert_error(&put(None), 401, 4000);
    let other = ClusterSecret::parse("another-secret-0123456789abcdef012345").unwrap();
    assert_error(&put(Some(other.sign("PUT", &path, now))), 401, 4000);
    let secret = ClusterSecret::parse(SECRET).unwrap();
    assert_error(&put(Some(secret.sign("PUT", &path, now - 3600))), 401, 4000);
    // Signed, but no move of that container to b is running.
    assert_error(&put(Some(secret.sign("PUT", &path, now))), 409, 3009);
    // And a's own container is never discarded by another node's request.
    let discard = client
        .delete(a.url(&path))
        .header("Berth-Cluster-Auth", secret.sign("DELETE", &path, now))
        .send()
        .unwrap();
    assert_eq!(discard.status(), StatusCode::CONFLICT);
    assert!(a.lxc_path().join("guarded/config").exists());
    assert!(b.lxc_entries().is_empty(), "{:?}", b.lxc_entries());

    // A node without a cluster secret moves nothing.
    let url = postgres.create_database("lonely");
    let lonely = Berth::start_with_env(&[
        ("BERTH_DATABASE_URL", url.as_str()),
        ("BERTH_NODE_NAME", "c"),
    ]);
    let alone = create_on(&lonely, "alone", "c", json!({}));
    assert_error(
        &lonely.post(
            &format!("/v1/containers/{alone}/migrate"),
            &json!({ "node": "c" }),
        ),
        409,
        3009,
    );
    // Nor does it take files: it has no secret to verify a signature with.
    let lonely_path = format!("/v1/cluster/migrations/{alone}");
    let response = client
        .put(lonely.url(&lonely_path))
        .header("Content-Type", "application/x-tar")
        .header("Berth-Cluster-Auth", secret.sign("PUT", &lonely_path, now))
        .body(vec![0u8; 16])
        .send()
        .unwrap();
    let status = response.status();
    assert_error(&(status, response.json().unwrap()), 401, 4000);
}

/// kill -9 of the sending node in the middle of the stream: the target
/// drops what had arrived, and at the sender's restart the move resumes
/// from its start (it recorded that the container ran) and ends with the
/// container running on the target, its files intact.
#[test]
fn a_move_cut_off_by_a_crash_resumes_at_the_restart() {
    let postgres = pg::Postgres::start();
    let (mut a, b) = cluster(&postgres);
    let id = create_on(&a, "crashy", "a", json!({}));
    a.act(&id, "start");
    // Larger than what the sockets buffer, so that a target that stops
    // reading holds the sender in the middle of the stream.
    a.attach(
        "crashy",
        "dd if=/dev/urandom of=/root/big bs=1M count=96 2>/dev/null && md5sum /root/big > /root/big.md5",
    );
    let job = queue_move(&a, &id, "b");

    // The stream has begun when the target's arrival directory exists;
    // freezing the target then leaves the sender blocked mid-stream.
    let arriving = b.lxc_path().join(format!(".incoming-{id}"));
    a.wait_until(
        "the files to start arriving",
        std::time::Duration::from_secs(60),
        || arriving.exists(),
    );
    let target_pid = b.pid().unwrap().to_string();
    common::run_ok(std::process::Command::new("kill").args(["-STOP", &target_pid]));
    // The job's progress follows the bytes sent (5 % once sending began).
    a.wait_until(
        "the move to show progress",
        std::time::Duration::from_secs(30),
        || {
            a.job(&job)["progress"]
                .as_u64()
                .is_some_and(|p| (5..95).contains(&p))
        },
    );
    a.kill();
    common::run_ok(std::process::Command::new("kill").args(["-CONT", &target_pid]));
    b.wait_until(
        "the target to drop what arrived",
        std::time::Duration::from_secs(30),
        || !arriving.exists(),
    );
    let container = b.container(&id);
    assert_eq!(container["node"], "a", "not handed over: {container}");
    assert!(!b.lxc_path().join("crashy").exists());

    a.launch();
    let moved = b.job_done(&job);
    assert_eq!(moved["action"], "migrate");
    let container = b.container(&id);
    assert_eq!(container["node"], "b", "{container}");
    assert_eq!(container["status"], "running", "{container}");
    assert_eq!(b.lxc_state("crashy").as_deref(), Some("RUNNING"));
    assert_eq!(
        b.attach("crashy", "md5sum -c /root/big.md5"),
        "/root/big: OK\n"
    );
    assert!(!a.lxc_path().join("crashy").exists());
}

/// The console moves a container: the page of a container on a two-node
/// cluster offers the other node, the move is queued from it, its job
/// row turns done live, and the page then names the new node. The page
/// with the move form passes axe-core, at desktop and phone width.
#[test]
fn a_container_moves_from_its_page_in_a_browser() {
    let _serial = browser::serial();
    let postgres = pg::Postgres::start();
    let (a, b) = cluster(&postgres);
    let id = create_on(&a, "clicked", "a", json!({}));
    a.act(&id, "start");
    browser::run(async {
        let page = a.url(&format!("/containers/{id}"));
        let phone = browser::Browser::start_sized(390, 844).await;
        phone.goto(&page).await;
        phone
            .assert_accessible("a container's page with the move form, at phone width")
            .await;
        phone.close().await;

        let web = browser::Browser::start().await;
        web.goto(&page).await;
        web.assert_accessible("a container's page with the move form")
            .await;
        assert_eq!(web.text("select[name=node] option[value=b]").await, "b");
        web.select("node", "b").await;
        web.click_to_navigate(&format!("form[action='/containers/{id}/migrate'] button"))
            .await;
        assert!(web.text(".flash-success").await.contains("to node b"));
        web.wait_text(
            "[data-jobs-of] tr[data-job] [data-job-field=status]",
            "done",
        )
        .await;
        web.goto(&page).await;
        assert_eq!(web.text("dd[data-container-field=node]").await, "b");
        web.assert_no_console_errors().await;
        web.close().await;
    });
    assert_eq!(b.lxc_state("clicked").as_deref(), Some("RUNNING"));
    assert!(!a.lxc_path().join("clicked").exists());
}
