//! The operations API against a running berth and real LXC containers:
//! paging and filters, wait, cancel, log and progress, retention, templates
//! (API and `berth template import`), idempotency keys, health, metrics,
//! the event stream and the OpenAPI document.

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{
    busybox_template, derived_template, run_ok, stubborn_template, unique_name, Berth, Events,
    Options,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A template big enough that unpacking it takes a while: the busybox root
/// filesystem plus 150 MB of incompressible data, as an uncompressed tar so
/// progress follows the bytes read. Built once (see `derived_template`).
fn big_template() -> &'static Path {
    static BIG: OnceLock<PathBuf> = OnceLock::new();
    BIG.get_or_init(|| {
        derived_template("operations-big-v1", |rootfs| {
            std::fs::create_dir_all(rootfs.join("var")).unwrap();
            run_ok(
                Command::new("dd")
                    .arg("if=/dev/urandom")
                    .arg(format!("of={}", rootfs.join("var/filler").display()))
                    .args(["bs=1M", "count=150", "status=none"]),
            );
        })
    })
}

/// Installs the big template in this berth's template directory as
/// `<name>.tar` (a hard link: the test never changes it).
fn install_big_template(berth: &Berth, name: &str) {
    let target = berth.template_dir().join(format!("{name}.tar"));
    if std::fs::hard_link(big_template(), &target).is_err() {
        std::fs::copy(big_template(), &target).unwrap();
    }
}

/// Queues the creation of a container and returns (container id, job id).
fn queue_create(berth: &Berth, name: &str, ostemplate: &str) -> (String, String) {
    let (status, answer) = berth.post(
        "/v1/containers",
        &json!({ "name": name, "ostemplate": ostemplate }),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    (
        answer["container_id"].as_str().unwrap().to_owned(),
        answer["job_id"].as_str().unwrap().to_owned(),
    )
}

/// Queues a lifecycle action and returns its job id.
fn queue_action(berth: &Berth, id: &str, action: &str) -> String {
    let (status, answer) = berth.post_empty(&format!("/v1/containers/{id}/{action}"));
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer["job_id"].as_str().unwrap().to_owned()
}

/// Asserts `body` is exactly `{"code", "message"}` and returns the code.
fn error_code(body: &Value) -> i64 {
    let object = body.as_object().expect("an error is a JSON object");
    assert_eq!(object.len(), 2, "only code and message: {body}");
    assert!(object["message"].as_str().is_some_and(|m| !m.is_empty()));
    object["code"].as_i64().expect("code is an integer")
}

fn ids(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every page of a list, following `next_cursor`; `between` runs after
/// each page. Returns the ids in the order they were listed.
fn page_through(berth: &Berth, path: &str, field: &str, mut between: impl FnMut()) -> Vec<String> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let separator = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(cursor) => format!("{path}{separator}cursor={cursor}"),
            None => path.to_owned(),
        };
        let (status, page) = berth.get(&url);
        assert_eq!(status, StatusCode::OK, "{url}: {page}");
        assert_eq!(page["message"], "success");
        for id in ids(&page[field]) {
            assert!(!seen.contains(&id), "{id} listed again on {url}");
            seen.push(id);
        }
        between();
        match &page["next_cursor"] {
            Value::Null => return seen,
            Value::String(next) => cursor = Some(next.clone()),
            other => panic!("next_cursor is a string or null, got {other}"),
        }
    }
}

fn sha256sum(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()[..64].to_owned()
}

fn is_rfc3339_utc(value: &Value) -> bool {
    value.as_str().is_some_and(|text| {
        text.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(text).is_ok()
    })
}

/// Polls `done` until it holds; panics with `what` after a minute.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------- paging

#[test]
fn container_and_job_lists_page_and_filter() {
    let berth = Berth::start();
    let names: Vec<String> = (0..3).map(|_| unique_name("page")).collect();
    let containers: Vec<String> = names.iter().map(|n| berth.create(n, None)).collect();
    berth.act(&containers[1], "start");

    // Oldest first, two at a time, then the end.
    let (status, first) = berth.get("/v1/containers?limit=2");
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["message"], "success");
    assert_eq!(ids(&first["containers"]), containers[..2]);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a cursor: there is more");
    let (_, second) = berth.get(&format!("/v1/containers/?limit=2&cursor={cursor}"));
    assert_eq!(ids(&second["containers"]), containers[2..]);
    assert_eq!(second["next_cursor"], Value::Null);
    assert_eq!(
        page_through(&berth, "/v0.1/containers?limit=1", "containers", || {}),
        containers
    );

    // Filters.
    let (_, running) = berth.get("/v1/containers?status=running");
    assert_eq!(ids(&running["containers"]), [containers[1].clone()]);
    assert_eq!(running["containers"][0]["status"], "running");
    let (_, stopped) = berth.get("/v1/containers?status=stopped&limit=500");
    assert_eq!(
        ids(&stopped["containers"]),
        [containers[0].clone(), containers[2].clone()]
    );
    let (_, named) = berth.get(&format!("/v1/containers?name={}", names[2]));
    assert_eq!(ids(&named["containers"]), [containers[2].clone()]);
    assert_eq!(named["containers"][0]["name"], names[2].as_str());
    let (_, nobody) = berth.get("/v1/containers?name=nobody-has-this-name");
    assert_eq!(nobody["containers"], json!([]));
    assert_eq!(nobody["next_cursor"], Value::Null);

    // Jobs: newest first, the same paging, filters by status, container and action.
    let (_, all) = berth.get("/v1/jobs?limit=500");
    let all_jobs = ids(&all["jobs"]);
    assert_eq!(all_jobs.len(), 4, "{all}");
    assert_eq!(all["jobs"][0]["action"], "start", "newest first: {all}");
    assert_eq!(
        page_through(&berth, "/v1/jobs?limit=1", "jobs", || {}),
        all_jobs
    );
    let (_, of_one) = berth.get(&format!("/v1/jobs?entity_id={}", containers[1]));
    let actions: Vec<&str> = of_one["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| {
            assert_eq!(job["entity_id"], containers[1].as_str());
            job["action"].as_str().unwrap()
        })
        .collect();
    assert_eq!(actions, ["start", "create"]);
    let (_, starts) = berth.get("/v1/jobs?action=start&status=done");
    assert_eq!(starts["jobs"].as_array().unwrap().len(), 1, "{starts}");
    assert_eq!(starts["jobs"][0]["entity_id"], containers[1].as_str());
    let (_, failed) = berth.get("/v1/jobs?status=failed");
    assert_eq!(failed["jobs"], json!([]));
    let (_, creates) = berth.get("/v1/jobs?action=create&limit=2");
    assert_eq!(creates["jobs"].as_array().unwrap().len(), 2);
    assert!(creates["next_cursor"].is_string());
}

#[test]
fn invalid_list_parameters_are_refused_in_the_error_shape() {
    let berth = Berth::start();
    for query in [
        "/v1/containers?limit=0",
        "/v1/containers?limit=501",
        "/v1/containers?limit=ten",
        "/v1/containers?limit=",
        "/v1/containers?limit=2&limit=3",
        "/v1/containers?cursor=garbage",
        "/v1/containers?status=sleeping",
        "/v1/jobs?limit=-1",
        "/v1/jobs?cursor=c2VxOmFiYw",
        "/v1/jobs?status=finished",
        "/v1/jobs?action=explode",
        "/v1/jobs?entity_id=not-a-uuid",
        "/v1/jobs?status=done&status=failed",
    ] {
        let (status, body) = berth.get(query);
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(error_code(&body), 1002, "{query}: {body}");
    }
    // An empty cursor is the first page (a filled-in query template).
    for query in ["/v1/containers?cursor=", "/v1/jobs?cursor=&limit=5"] {
        let (status, body) = berth.get(query);
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        assert_eq!(body["next_cursor"], Value::Null, "{query}: {body}");
    }
}

/// Containers are listed oldest first and jobs newest first, by the order
/// they were stored: containers created while a client pages through the
/// list only ever appear after the last page it has read (containers) or
/// before the first (jobs), so nothing is skipped or repeated.
#[test]
fn paging_never_skips_or_repeats_while_containers_are_created() {
    let berth = Berth::start();
    let before: Vec<String> = (0..3)
        .map(|_| queue_create(&berth, &unique_name("before"), "template1").0)
        .collect();
    let (_, jobs_before) = berth.get("/v1/jobs?limit=500");
    let jobs_before = ids(&jobs_before["jobs"]);

    let (containers_seen, jobs_seen) = std::thread::scope(|scope| {
        // Another client creating containers all the while…
        let creator = scope.spawn(|| {
            for _ in 0..4 {
                queue_create(&berth, &unique_name("during"), "template1");
            }
        });
        // …and this one creating one after each of the first pages it reads.
        let mut more = 4;
        let mut create_between = || {
            if more > 0 {
                more -= 1;
                queue_create(&berth, &unique_name("between"), "template1");
            }
        };
        let containers = page_through(
            &berth,
            "/v1/containers?limit=1",
            "containers",
            &mut create_between,
        );
        let jobs = page_through(&berth, "/v1/jobs?limit=1", "jobs", &mut create_between);
        creator.join().unwrap();
        (containers, jobs)
    });

    let (_, all) = berth.get("/v1/containers?limit=500");
    let all = ids(&all["containers"]);
    assert_eq!(all.len(), 3 + 4 + 4);
    let unique: HashSet<&String> = containers_seen.iter().collect();
    assert_eq!(
        unique.len(),
        containers_seen.len(),
        "repeated: {containers_seen:?}"
    );
    assert_eq!(containers_seen[..3], before, "the first ones, in order");
    assert_eq!(
        containers_seen,
        all[..containers_seen.len()],
        "what paging saw is the list as it is now, up to where paging ended"
    );

    let (_, all_jobs) = berth.get("/v1/jobs?limit=500");
    let all_jobs = ids(&all_jobs["jobs"]);
    let unique: HashSet<&String> = jobs_seen.iter().collect();
    assert_eq!(unique.len(), jobs_seen.len(), "repeated: {jobs_seen:?}");
    for job in &jobs_before {
        assert!(jobs_seen.contains(job), "skipped job {job}");
    }
    assert_eq!(
        jobs_seen,
        all_jobs[all_jobs.len() - jobs_seen.len()..],
        "newer jobs only come before the first page"
    );
}

// ------------------------------------------------------------------ wait

#[test]
fn wait_answers_as_soon_as_the_job_finishes() {
    let berth = Berth::start();
    let (container, job) = queue_create(&berth, &unique_name("wait"), "template1");
    // One request, no polling: the harness's client gives up after 60 s, so
    // an answer with `done` came when the job finished, not at the timeout.
    let (status, answer) = berth.get(&format!("/v1/jobs/{job}/wait?timeout=300"));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["message"], "success");
    assert_eq!(answer["status"], "done", "{answer}");
    assert_eq!(answer["entity_id"], container.as_str());
    assert!(is_rfc3339_utc(&answer["finished_at"]), "{answer}");

    // A finished job answers at once, on both prefixes.
    let (status, again) = berth.get(&format!("/v0.1/jobs/{job}/wait/"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["status"], "done");
}

#[test]
fn wait_returns_the_current_state_when_the_timeout_passes() {
    let berth = Berth::start();
    install_big_template(&berth, "big");
    let (_, job) = queue_create(&berth, &unique_name("slow"), "big");
    let (status, answer) = berth.get(&format!("/v1/jobs/{job}/wait?timeout=0"));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(
        matches!(answer["status"].as_str(), Some("queued" | "running")),
        "{answer}"
    );
    assert_eq!(answer["finished_at"], Value::Null);
    berth.job_done(&job);

    for bad in ["301", "-1", "soon", "1.5", "", "5&timeout=6"] {
        let (status, body) = berth.get(&format!("/v1/jobs/{job}/wait?timeout={bad}"));
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}: {body}");
        assert_eq!(error_code(&body), 1002);
    }
    let (status, body) = berth.get(&format!("/v1/jobs/{}/wait?timeout=1", uuid::Uuid::new_v4()));
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), 2003);
}

// ---------------------------------------------------------------- cancel

#[test]
fn cancelling_queued_jobs_means_they_never_run() {
    // One job at a time: everything queued behind the big create waits.
    let berth = Berth::start_with(Options {
        env: vec![("BERTH_MAX_PARALLEL_JOBS".into(), "1".into())],
        templates: vec!["template1"],
    });
    install_big_template(&berth, "big");
    let slow_name = unique_name("slow");
    let (slow, slow_create) = queue_create(&berth, &slow_name, "big");
    let queued_name = unique_name("queued");
    let (queued, queued_create) = queue_create(&berth, &queued_name, "template1");
    let queued_start = queue_action(&berth, &slow, "start");

    for job in [&queued_create, &queued_start] {
        let (status, answer) = berth.delete(&format!("/v1/jobs/{job}"));
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["message"], "success");
        assert_eq!(answer["id"], job.as_str());
        assert_eq!(answer["status"], "cancelled");
        assert_eq!(answer["started_at"], Value::Null);
    }
    let (_, slow_job) = berth.get(&format!("/v1/jobs/{slow_create}"));
    assert!(
        slow_job["finished_at"].is_null(),
        "the premise: the jobs were cancelled while the big create ran: {slow_job}"
    );
    berth.job_done(&slow_create);

    for job in [&queued_create, &queued_start] {
        let (_, after) = berth.get(&format!("/v1/jobs/{job}"));
        assert_eq!(after["status"], "cancelled", "{after}");
        assert_eq!(after["started_at"], Value::Null, "it never ran: {after}");
        let (_, log) = berth.get(&format!("/v1/jobs/{job}/log"));
        assert_eq!(log["lines"], json!([]), "it never ran: {log}");
    }
    // The container whose create was cancelled never existed.
    let (status, body) = berth.get(&format!("/v1/containers/{queued}"));
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, listed) = berth.get(&format!("/v1/containers?name={queued_name}"));
    assert_eq!(listed["containers"], json!([]));
    assert!(!berth.lxc_path().join(&queued_name).exists());
    // The start never happened.
    assert_eq!(berth.container(&slow)["status"], "stopped");
    assert_eq!(berth.lxc_state(&slow_name).as_deref(), Some("STOPPED"));

    // Finished jobs cannot be cancelled, cancelled ones neither.
    for job in [&slow_create, &queued_start] {
        let (status, body) = berth.delete(&format!("/v1/jobs/{job}"));
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(error_code(&body), 3004);
    }
    let (status, body) = berth.delete(&format!("/v1/jobs/{}", uuid::Uuid::new_v4()));
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, 2003));
    let (status, body) = berth.delete("/v1/jobs/not-a-uuid");
    assert_eq!((status, error_code(&body)), (StatusCode::BAD_REQUEST, 1003));
}

#[test]
fn cancelling_a_running_unpack_stops_it_and_removes_the_partial_rootfs() {
    let berth = Berth::start();
    install_big_template(&berth, "big");
    let mut events = Events::open(&berth);
    let name = unique_name("cancel");
    let (container, job) = queue_create(&berth, &name, "big");

    // Wait, on the stream, until the unpack is under way.
    loop {
        let (event, data) = events.next();
        if event == "job" && data["id"] == job.as_str() {
            assert_ne!(
                data["status"], "done",
                "the unpack ended before it could be cancelled"
            );
            if data["status"] == "running" && data["progress"].as_u64().is_some_and(|p| p > 0) {
                break;
            }
        }
    }
    assert!(
        berth.lxc_path().join(&name).exists(),
        "the unpack has started writing"
    );
    let (status, answer) = berth.delete(&format!("/v1/jobs/{job}"));
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["status"], "running");

    let finished = berth.wait_job(&job);
    assert_eq!(finished["status"], "cancelled", "{finished}");
    assert!(
        !berth.lxc_path().join(&name).exists(),
        "partial rootfs removed"
    );
    let (status, _) = berth.get(&format!("/v1/containers/{container}"));
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, listed) = berth.get("/v1/containers");
    assert!(!ids(&listed["containers"]).contains(&container));
    let (_, log) = berth.get(&format!("/v1/jobs/{job}/log"));
    let text = log["lines"].to_string();
    assert!(text.contains("cancelled on request"), "{log}");
    // The name is free again.
    berth.create(&name, None);
}

/// Cancelling a queued delete whose stored payload (the status to go back
/// to) cannot be read does not guess a status: the cancel is refused as an
/// internal error, and the delete, once it runs, fails naming the job and
/// leaves the container as the host shows it.
#[test]
fn a_queued_delete_with_an_unreadable_payload_is_not_cancelled_into_a_guess() {
    // One job at a time: the delete waits behind the big create.
    let berth = Berth::start_with(Options {
        env: vec![("BERTH_MAX_PARALLEL_JOBS".into(), "1".into())],
        templates: vec!["template1"],
    });
    let victim = berth.create(&unique_name("victim"), None);
    install_big_template(&berth, "big");
    let (slow, slow_create) = queue_create(&berth, &unique_name("slow"), "big");

    let job = uuid::Uuid::new_v4().to_string();
    let sql = format!(
        "BEGIN IMMEDIATE; \
         UPDATE containers SET status = 'deleting' WHERE id = '{victim}'; \
         INSERT INTO jobs (id, entity_type, entity_id, action, status, payload, created_at) \
         VALUES ('{job}', 'container', '{victim}', 'delete', 'queued', '{{\"previous\": 1}}', \
         '2026-01-01T00:00:00Z'); \
         COMMIT;"
    );
    let sqlite = Command::new("sqlite3")
        .args(["-cmd", ".timeout 10000"])
        .arg(berth.data_dir().join("berth.db"))
        .arg(&sql)
        .output()
        .expect("sqlite3 runs");
    assert!(
        sqlite.status.success(),
        "{}",
        String::from_utf8_lossy(&sqlite.stderr)
    );

    let (_, slow_job) = berth.get(&format!("/v1/jobs/{slow_create}"));
    assert!(
        slow_job["finished_at"].is_null(),
        "the premise: the delete is queued behind the big create: {slow_job}"
    );
    let (status, body) = berth.delete(&format!("/v1/jobs/{job}"));
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(error_code(&body), 5000);
    assert_eq!(berth.container(&victim)["status"], "deleting");

    berth.job_done(&slow_create);
    let failed = berth.wait_job(&job);
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap_or_default();
    assert!(error.contains(&job) && error.contains("payload"), "{error}");
    assert_eq!(berth.container(&victim)["status"], "stopped");
    berth.job_done(&berth.queue(&victim, "delete"));
    berth.job_done(&berth.queue(&slow, "delete"));
}

/// A running job in a step that cannot stop safely (a stop waiting for
/// init) refuses a cancel with its own code, and carries on.
#[test]
fn a_running_stop_cannot_be_cancelled() {
    let berth = Berth::start_with_env(&[("BERTH_STOP_TIMEOUT_SECS", "600")]);
    berth.install_template("stubborn", stubborn_template());
    let name = unique_name("nocancel");
    let id = berth.create_from(&name, "stubborn", None);
    berth.act(&id, "start");
    let stop = berth.queue(&id, "stop");
    berth.wait_running(&stop);
    let (status, body) = berth.delete(&format!("/v1/jobs/{stop}"));
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), 3005, "{body}");
    assert_eq!(berth.job(&stop)["status"], "running");
    berth.force_stop(&name);
    berth.job_done(&stop);
    berth.job_done(&berth.queue(&id, "delete"));
}

// --------------------------------------------------------- log, progress

#[test]
fn job_logs_show_each_step_and_a_failed_tools_output() {
    let berth = Berth::start();
    let name = unique_name("logged");
    let (_, job) = queue_create(&berth, &name, "template1");
    berth.job_done(&job);
    let (status, log) = berth.get(&format!("/v1/jobs/{job}/log"));
    assert_eq!(status, StatusCode::OK, "{log}");
    assert_eq!(log["message"], "success");
    let lines = log["lines"].as_array().unwrap();
    assert!(!lines.is_empty());
    for line in lines {
        assert_eq!(line.as_object().unwrap().len(), 2, "{line}");
        assert!(is_rfc3339_utc(&line["time"]), "{line}");
        assert!(line["text"].as_str().is_some_and(|t| !t.is_empty()));
    }
    assert!(log.to_string().contains("unpacking"), "{log}");

    // A template that claims to be gzip but is not: tar and gzip fail, and
    // what they said is in the log and the job's error.
    let mut broken = vec![0x1f, 0x8b];
    broken.extend_from_slice(b"this is not a gzip stream at all");
    std::fs::write(berth.template_dir().join("broken.tar.gz"), broken).unwrap();
    let (container, job) = queue_create(&berth, &unique_name("broken"), "broken");
    let failed = berth.wait_job(&job);
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(error.contains("tar"), "{error}");
    let (_, log) = berth.get(&format!("/v1/jobs/{job}/log"));
    let text = log["lines"].to_string();
    assert!(text.contains("gzip"), "the tool's own words: {log}");
    assert!(text.contains("failed"), "{log}");
    assert_eq!(berth.container(&container)["status"], "failed");
}

#[test]
fn a_big_unpack_reports_progress_as_it_goes() {
    let berth = Berth::start();
    install_big_template(&berth, "big");
    let mut events = Events::open(&berth);
    let (_, job) = queue_create(&berth, &unique_name("progress"), "big");

    // A template a create job has not finished with cannot be deleted.
    let (status, body) = berth.delete("/v1/templates/big");
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), 3006);

    let seen = events.job_until_finished(&job);
    let progress: Vec<u64> = seen.iter().filter_map(|j| j["progress"].as_u64()).collect();
    assert!(
        progress.iter().any(|p| (1..100).contains(p)),
        "intermediate progress: {progress:?}"
    );
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress only grows: {progress:?}"
    );
    let last = seen.last().unwrap();
    assert_eq!(last["status"], "done", "{last}");
    assert_eq!(last["progress"], 100);
    let (_, job) = berth.get(&format!("/v1/jobs/{job}"));
    assert_eq!(job["progress"], 100);
}

// ------------------------------------------------------------- retention

#[test]
fn finished_jobs_stay_readable_until_their_retention_passes() {
    let mut berth = Berth::start();
    let id = berth.create(&unique_name("kept"), None);
    let (_, jobs) = berth.get(&format!("/v1/jobs?entity_id={id}"));
    let job = jobs["jobs"][0]["id"].as_str().unwrap().to_owned();

    // The default retention keeps it across a restart.
    berth.terminate();
    berth.launch();
    let (status, _) = berth.get(&format!("/v1/jobs/{job}"));
    assert_eq!(status, StatusCode::OK);

    // Finish times are stored to the second: let this one be in the past.
    std::thread::sleep(Duration::from_millis(1100));
    berth.terminate();
    berth.set_env("BERTH_JOB_RETENTION_DAYS", "0");
    berth.launch();
    // Pruning runs at start-up beside the first requests: look until it
    // has happened.
    eventually("pruning of the finished job", || {
        berth.get(&format!("/v1/jobs/{job}")).0 == StatusCode::NOT_FOUND
    });
    let (status, body) = berth.get(&format!("/v1/jobs/{job}/log"));
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, 2003));
    let (_, jobs) = berth.get("/v1/jobs");
    assert_eq!(jobs["jobs"], json!([]));
    // The container itself is not a job: it stays.
    assert_eq!(berth.container(&id)["status"], "stopped");
}

// ------------------------------------------------------------- templates

#[test]
fn templates_are_listed_with_size_time_and_sha256() {
    let berth = Berth::start();
    let (status, answer) = berth.get("/v1/templates/");
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["message"], "success");
    let templates = answer["templates"].as_array().unwrap();
    let names: Vec<&str> = templates
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["busybox", "template1"]);
    for template in templates {
        let file = berth
            .template_dir()
            .join(format!("{}.tar.gz", template["name"].as_str().unwrap()));
        assert_eq!(template["format"], "tar.gz");
        assert_eq!(template["size"], std::fs::metadata(&file).unwrap().len());
        assert!(is_rfc3339_utc(&template["modified_at"]), "{template}");
        assert_eq!(template["sha256"], sha256sum(&file));
    }
}

/// A small, real template archive: one file in a directory, as .tar.gz.
fn tiny_archive(dir: &Path, content: &str) -> Vec<u8> {
    let rootfs = dir.join(format!("tiny-rootfs-{content}"));
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/content"), content).unwrap();
    let out = dir.join(format!("tiny-{content}.tar.gz"));
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-czf")
            .arg(&out)
            .arg("."),
    );
    std::fs::read(out).unwrap()
}

fn upload(berth: &Berth, query: &str, body: Vec<u8>) -> (StatusCode, Value) {
    berth.send_raw(
        "POST",
        &format!("/v1/templates?{query}"),
        "application/octet-stream",
        body,
    )
}

fn template_names(berth: &Berth) -> Vec<String> {
    let (_, answer) = berth.get("/v1/templates");
    answer["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn templates_upload_replace_and_delete() {
    let berth = Berth::start();
    let busybox = std::fs::read(busybox_template()).unwrap();

    let (status, answer) = upload(&berth, "name=uploaded.tar.gz", busybox.clone());
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["message"], "success");
    let file = berth.template_dir().join("uploaded.tar.gz");
    assert_eq!(std::fs::read(&file).unwrap(), busybox, "stored as sent");
    assert_eq!(answer["template"]["name"], "uploaded");
    assert_eq!(answer["template"]["format"], "tar.gz");
    assert_eq!(answer["template"]["size"], busybox.len());
    assert_eq!(answer["template"]["sha256"], sha256sum(&file));
    assert!(template_names(&berth).contains(&"uploaded".to_owned()));
    // It is a template like any other.
    let (_, job) = queue_create(&berth, &unique_name("uploaded"), "uploaded");
    berth.job_done(&job);

    // Same name again: refused unless asked to replace.
    let other = tiny_archive(berth.root.path(), "other");
    let (status, body) = upload(&berth, "name=uploaded.tar.gz", other.clone());
    assert_eq!((status, error_code(&body)), (StatusCode::CONFLICT, 3002));
    assert_eq!(std::fs::read(&file).unwrap(), busybox, "left as it was");
    let (status, answer) = upload(&berth, "name=uploaded.tar.gz&replace=true", other.clone());
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(std::fs::read(&file).unwrap(), other);
    assert_eq!(answer["template"]["sha256"], sha256sum(&file));

    // Wrong contents, names and parameters. Each is refused from the query
    // or the first bytes, and berth may answer (and close) before reading
    // the rest: a body that fits in the socket's buffer is sent whole
    // before that, so the client reads the answer instead of a broken pipe.
    let head = busybox[..4096].to_vec();
    for (query, body) in [
        ("name=liar.tar.gz", b"this is not gzip".to_vec()),
        ("name=liar.tar", head.clone()),
        ("name=liar.tar.zst", head.clone()),
        ("name=../liar.tar.gz", head.clone()),
        ("name=liar.zip", head.clone()),
        ("name=.liar.tar.gz", head.clone()),
        ("", head.clone()),
        ("name=liar.tar.gz&replace=maybe", head.clone()),
        ("name=a.tar.gz&name=b.tar.gz", head.clone()),
    ] {
        let (status, body) = upload(&berth, query, body);
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
        assert_eq!(error_code(&body), 1002, "{query}: {body}");
    }
    let names = template_names(&berth);
    assert!(!names.iter().any(|n| n.contains("liar")), "{names:?}");
    let files: Vec<String> = std::fs::read_dir(berth.template_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !files
            .iter()
            .any(|f| f.contains("liar") || f.starts_with('.')),
        "{files:?}"
    );

    // Delete.
    let (status, answer) = berth.delete("/v1/templates/uploaded");
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({ "message": "success" }));
    assert!(!file.exists());
    assert!(!template_names(&berth).contains(&"uploaded".to_owned()));
    let (status, body) = berth.delete("/v1/templates/uploaded");
    assert_eq!((status, error_code(&body)), (StatusCode::NOT_FOUND, 2005));
    let (status, body) = berth.post(
        "/v1/containers",
        &json!({ "name": unique_name("gone"), "ostemplate": "uploaded" }),
    );
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, 2004)
    );
}

#[test]
fn template_uploads_over_the_size_limit_are_refused() {
    let berth = Berth::start_with(Options {
        env: vec![("ROCKET_LIMITS".into(), "{template=\"1 MiB\"}".into())],
        templates: vec!["template1"],
    });
    let mut big = vec![0x1f, 0x8b];
    big.resize(2 << 20, 0);
    let (status, body) = upload(&berth, "name=toobig.tar.gz", big);
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, 1005)
    );
    assert!(!template_names(&berth).contains(&"toobig".to_owned()));
    let leftovers: Vec<_> = std::fs::read_dir(berth.template_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "template1.tar.gz")
        .collect();
    assert!(leftovers.is_empty(), "nothing left behind: {leftovers:?}");

    // Within the limit is fine.
    let small = tiny_archive(berth.root.path(), "small");
    assert!(small.len() < 1 << 20);
    let (status, body) = upload(&berth, "name=small.tar.gz", small);
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[test]
fn a_half_uploaded_template_is_never_listed() {
    let berth = Berth::start();
    let hidden_files = || -> Vec<String> {
        std::fs::read_dir(berth.template_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect()
    };
    // Announce 2 MiB, send 1 MiB, and hold the connection open.
    let mut stream = TcpStream::connect(("127.0.0.1", berth.port)).unwrap();
    write!(
        stream,
        "POST /v1/templates?name=half.tar.gz HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        2 << 20
    )
    .unwrap();
    let mut half = vec![0x1f, 0x8b];
    half.resize(1 << 20, 7);
    stream.write_all(&half).unwrap();
    stream.flush().unwrap();
    eventually("the upload reaching the disk", || {
        !hidden_files().is_empty()
    });

    assert!(!template_names(&berth).contains(&"half".to_owned()));
    assert!(!berth.template_dir().join("half.tar.gz").exists());
    let (status, body) = berth.post(
        "/v1/containers",
        &json!({ "name": unique_name("half"), "ostemplate": "half" }),
    );
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, 2004)
    );

    // The client goes away: the partial file goes too.
    drop(stream);
    eventually("removal of the partial upload", || {
        hidden_files().is_empty()
    });
    assert!(!template_names(&berth).contains(&"half".to_owned()));
}

fn import(berth: &Berth, args: &[&Path]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["template", "import"])
        .args(args)
        .current_dir(berth.root.path())
        .env("ROCKET_CONFIG", berth.root.path().join("no-Rocket.toml"))
        .env("BERTH_DATA_DIR", berth.data_dir())
        .output()
        .unwrap()
}

#[test]
fn berth_template_import_copies_files_and_directories_in() {
    let berth = Berth::start();
    let outside = tempfile::tempdir().unwrap();
    let single = outside.path().join("imported.tar.gz");
    std::fs::copy(busybox_template(), &single).unwrap();

    let output = import(&berth, &[&single]);
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("imported imported"));
    let (_, answer) = berth.get("/v1/templates");
    let imported = answer["templates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "imported")
        .unwrap_or_else(|| panic!("listed: {answer}"))
        .clone();
    assert_eq!(imported["sha256"], sha256sum(&single));
    assert!(single.exists(), "copied, not moved");

    // A directory: every archive in it, nothing else.
    let dir = outside.path().join("many");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(busybox_template(), dir.join("first.tar.gz")).unwrap();
    std::fs::copy(plain_tar(outside.path()), dir.join("second.tar")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a template").unwrap();
    let output = import(&berth, &[&dir]);
    assert!(output.status.success(), "{output:?}");
    let names = template_names(&berth);
    for name in ["first", "second", "imported"] {
        assert!(names.contains(&name.to_owned()), "{names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("notes")));
    berth.job_done(&queue_create(&berth, &unique_name("imported"), "second").1);

    // An existing name is refused unless --replace; a wrong format always.
    let output = import(&berth, &[&single]);
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("already exists"),
        "{output:?}"
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_berth"));
    let output = command
        .args(["template", "import", "--replace"])
        .arg(&single)
        .current_dir(berth.root.path())
        .env("ROCKET_CONFIG", berth.root.path().join("no-Rocket.toml"))
        .env("BERTH_DATA_DIR", berth.data_dir())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let fake = outside.path().join("fake.tar.xz");
    std::fs::write(&fake, "not xz").unwrap();
    let output = import(&berth, &[&fake]);
    assert!(!output.status.success());
    assert!(!template_names(&berth).contains(&"fake".to_owned()));
}

/// The busybox root filesystem as an uncompressed tar (small).
fn plain_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("plain-rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(busybox_template())
            .arg("-C")
            .arg(&rootfs),
    );
    let out = dir.join("plain.tar");
    run_ok(
        Command::new("tar")
            .args(["--numeric-owner", "-C"])
            .arg(&rootfs)
            .arg("-cf")
            .arg(&out)
            .arg("."),
    );
    out
}

// ----------------------------------------------------------- idempotency

fn post_with_key(
    berth: &Berth,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> (StatusCode, Value, String) {
    let mut request = berth
        .client
        .post(berth.url(path))
        .header("Idempotency-Key", key);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().unwrap();
    let status = response.status();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, response.json().unwrap(), location)
}

#[test]
fn idempotency_keys_make_retries_safe() {
    let berth = Berth::start();
    let name = unique_name("once");
    let body = json!({ "name": name, "ostemplate": "template1" });
    let key = uuid::Uuid::new_v4().to_string();

    let (status, first, first_location) =
        post_with_key(&berth, "/v1/containers", &key, Some(&body));
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, retry, retry_location) =
        post_with_key(&berth, "/v1/containers/", &key, Some(&body));
    assert_eq!(status, StatusCode::ACCEPTED, "{retry}");
    assert_eq!(retry["job_id"], first["job_id"]);
    assert_eq!(retry["container_id"], first["container_id"]);
    assert_eq!(retry_location, first_location);
    let (_, listed) = berth.get(&format!("/v1/containers?name={name}"));
    assert_eq!(
        listed["containers"].as_array().unwrap().len(),
        1,
        "one container"
    );
    let id = first["container_id"].as_str().unwrap();
    let (_, jobs) = berth.get(&format!("/v1/jobs?entity_id={id}"));
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1, "one job: {jobs}");
    berth.job_done(first["job_id"].as_str().unwrap());

    // The same key for something else is a mistake, not a retry.
    let other = json!({ "name": unique_name("other"), "ostemplate": "template1" });
    let (status, body, _) = post_with_key(&berth, "/v1/containers", &key, Some(&other));
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, 1007)
    );
    let (_, listed) = berth.get(&format!(
        "/v1/containers?name={}",
        other["name"].as_str().unwrap()
    ));
    assert_eq!(listed["containers"], json!([]));

    // Lifecycle actions take keys too.
    let start_key = uuid::Uuid::new_v4().to_string();
    let path = format!("/v1/containers/{id}/start");
    let (status, started, _) = post_with_key(&berth, &path, &start_key, None);
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let (status, again, _) = post_with_key(&berth, &path, &start_key, None);
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["job_id"], started["job_id"]);
    let (_, starts) = berth.get(&format!("/v1/jobs?entity_id={id}&action=start"));
    assert_eq!(starts["jobs"].as_array().unwrap().len(), 1, "{starts}");
    berth.job_done(started["job_id"].as_str().unwrap());
    let (status, body, _) = post_with_key(
        &berth,
        &format!("/v1/containers/{id}/stop"),
        &start_key,
        None,
    );
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, 1007)
    );
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));

    // Keys are visible ASCII.
    let (status, body, _) = post_with_key(&berth, &path, "has space", None);
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, 1002)
    );
}

// ---------------------------------------------------- health and metrics

#[test]
fn healthz_reports_database_and_runner() {
    let berth = Berth::start();
    let response = berth.client.get(berth.url("/healthz")).send().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let body: Value = response.json().unwrap();
    assert_eq!(
        body,
        json!({ "message": "success", "database": "ok", "runner": "ok" })
    );
}

/// The value of the sample `name{labels}` in Prometheus text.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

#[test]
fn metrics_count_jobs_containers_durations_and_requests() {
    let berth = Berth::start();
    let id = berth.create(&unique_name("measured"), None);
    berth.act(&id, "start");
    let (status, _) = berth.get(&format!("/v1/jobs/{}", uuid::Uuid::new_v4()));
    assert_eq!(status, StatusCode::NOT_FOUND);

    let response = berth.client.get(berth.url("/metrics")).send().unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().unwrap();

    for line in text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (_, value) = line.rsplit_once(' ').expect("sample lines end in a value");
        assert!(value.parse::<f64>().is_ok(), "{line}");
    }
    assert_eq!(
        sample(&text, "berth_jobs{status=\"done\",action=\"create\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "berth_jobs{status=\"done\",action=\"start\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "berth_containers{status=\"running\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "berth_jobs_running"), Some(0.0), "{text}");
    assert!(text.contains("# TYPE berth_job_duration_seconds histogram"));
    let labels = "action=\"create\",outcome=\"done\"";
    assert_eq!(
        sample(
            &text,
            &format!("berth_job_duration_seconds_count{{{labels}}}")
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            &format!("berth_job_duration_seconds_bucket{{{labels},le=\"+Inf\"}}")
        ),
        Some(1.0)
    );
    assert!(
        sample(
            &text,
            &format!("berth_job_duration_seconds_sum{{{labels}}}")
        )
        .unwrap()
            > 0.0
    );
    assert_eq!(
        sample(
            &text,
            "berth_http_requests_total{route=\"/v1/containers\",method=\"POST\",status=\"202\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "berth_http_requests_total{route=\"/v1/jobs/<id>\",method=\"GET\",status=\"404\"}"
        ),
        Some(1.0),
        "{text}"
    );
}

// ---------------------------------------------------------------- events

#[test]
fn events_stream_job_and_container_changes() {
    let berth = Berth::start();
    let document: Value = berth
        .client
        .get(berth.url("/v1/openapi.json"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let event_schema = document["paths"]["/v1/events"]["get"]["responses"]["200"]["content"]
        ["text/event-stream"]["schema"]
        .clone();
    let mut events = Events::open(&berth);
    let name = unique_name("evented");
    let (container, job) = queue_create(&berth, &name, "template1");

    let (mut job_statuses, mut container_statuses) = (Vec::new(), Vec::new());
    while !(job_statuses.contains(&"done".to_owned())
        && container_statuses.contains(&"stopped".to_owned()))
    {
        let (event, data) = events.next();
        // Each event as OpenAPI tools read a text/event-stream schema: an
        // object of its fields, `data` as the text sent.
        let sent = json!({ "event": event, "data": data.to_string() });
        assert_matches_event_schema(&sent, &event_schema);
        match event.as_str() {
            "job" if data["id"] == job.as_str() => {
                assert_eq!(data["entity_id"], container.as_str());
                assert_eq!(data["action"], "create");
                job_statuses.push(data["status"].as_str().unwrap().to_owned());
            }
            "container" if data["id"] == container.as_str() => {
                assert_eq!(data["name"], name.as_str());
                container_statuses.push(data["status"].as_str().unwrap().to_owned());
            }
            "job" | "container" => {}
            other => panic!("unexpected event {other}: {data}"),
        }
    }
    assert_eq!(
        job_statuses.first().map(String::as_str),
        Some("queued"),
        "{job_statuses:?}"
    );
    assert!(
        job_statuses.contains(&"running".to_owned()),
        "{job_statuses:?}"
    );
    assert_eq!(
        container_statuses.first().map(String::as_str),
        Some("creating")
    );
}

/// The parts of JSON Schema the event schema uses: an object, its required
/// fields, string fields, enums, JSON text.
fn assert_matches_event_schema(event: &Value, schema: &Value) {
    assert_eq!(schema["type"], "object", "events are objects: {schema}");
    for required in schema["required"].as_array().expect("required fields") {
        let field = required.as_str().unwrap();
        assert!(event.get(field).is_some(), "{event} lacks {field}");
    }
    for (field, rule) in schema["properties"].as_object().expect("properties") {
        let Some(value) = event.get(field) else {
            continue;
        };
        assert_eq!(rule["type"], "string", "{field}");
        let text = value.as_str().expect("a string");
        if let Some(allowed) = rule["enum"].as_array() {
            assert!(
                allowed.contains(value),
                "{field} {value} not in {allowed:?}"
            );
        }
        if rule["contentMediaType"] == "application/json" {
            serde_json::from_str::<Value>(text).expect("data is JSON");
        }
    }
}

// --------------------------------------------------- OpenAPI and methods

#[test]
fn the_openapi_document_is_served_on_both_prefixes() {
    let berth = Berth::start();
    for path in ["/v1/openapi.json", "/v0.1/openapi.json"] {
        let response = berth.client.get(berth.url(path)).send().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        let document: Value = response.json().unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        for documented in [
            "/v1/containers/{id}",
            "/v1/jobs/{id}/wait",
            "/healthz",
            "/metrics",
        ] {
            assert!(document["paths"].get(documented).is_some(), "{documented}");
        }
    }
    // The methods the document does not list: 405 naming the allowed
    // ones; methods berth does not know at all: 501.
    let response = berth
        .client
        .put(berth.url("/v1/containers"))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET, POST");
    assert_eq!(error_code(&response.json().unwrap()), 2001);
    let query = reqwest::Method::from_bytes(b"QUERY").unwrap();
    let response = berth
        .client
        .request(query, berth.url("/v1/jobs"))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_IMPLEMENTED);
    assert_eq!(error_code(&response.json().unwrap()), 2006);
}
