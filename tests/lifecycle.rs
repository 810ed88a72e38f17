//! Start, stop, restart and delete of real containers: the status berth
//! shows, the state LXC reports, what is left on disk, and the order in
//! which the runner carries out jobs.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{assert_error, stubborn_template, unique_name, Berth, Options};
use serde_json::{json, Value};

/// The PID of the container's init on the host, as LXC reports it.
fn init_pid(berth: &Berth, name: &str) -> String {
    let output = Command::new("lxc-info")
        .arg("-P")
        .arg(berth.lxc_path())
        .args(["-n", name, "-p", "-H"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn status_of(berth: &Berth, id: &str) -> String {
    berth.container(id)["status"].as_str().unwrap().to_owned()
}

#[test]
fn start_stop_restart_move_the_status_and_lxc_agrees() {
    let berth = Berth::start();
    let name = unique_name("life");
    let id = berth.create(&name, None);
    assert_eq!(status_of(&berth, &id), "stopped");
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("STOPPED"));

    let job = berth.act(&id, "start");
    assert_eq!(job["action"], "start");
    assert_eq!(status_of(&berth, &id), "running");
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));
    assert_eq!(berth.attach(&name, "echo alive").trim(), "alive");
    let first_init = init_pid(&berth, &name);

    // Starting a running container is done without touching it.
    let job = berth.act(&id, "start");
    assert!(
        berth
            .job_log(job["id"].as_str().unwrap())
            .iter()
            .any(|l| l == "already running"),
        "{job}"
    );
    assert_eq!(init_pid(&berth, &name), first_init);

    // A restart is a new init.
    let job = berth.act(&id, "restart");
    assert_eq!(job["action"], "restart");
    assert_eq!(status_of(&berth, &id), "running");
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));
    let second_init = init_pid(&berth, &name);
    assert!(!second_init.is_empty() && second_init != first_init);

    berth.act(&id, "stop");
    assert_eq!(status_of(&berth, &id), "stopped");
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("STOPPED"));
    let job = berth.act(&id, "stop");
    assert!(berth
        .job_log(job["id"].as_str().unwrap())
        .iter()
        .any(|l| l == "already stopped"));

    // A restart of a stopped container starts it.
    berth.act(&id, "restart");
    assert_eq!(status_of(&berth, &id), "running");
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));

    let container = berth.container(&id);
    assert!(container["updated_at"].as_str().unwrap() >= container["created_at"].as_str().unwrap());
    // Every job stays readable, newest first, each done.
    let jobs = berth.jobs();
    let actions: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            assert_eq!(j["status"], "done", "{j}");
            j["action"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        actions,
        ["restart", "stop", "stop", "restart", "start", "start", "create"]
    );
}

/// Loop devices the kernel still has attached to `image`.
fn loop_devices_of(image: &std::path::Path) -> String {
    let output = Command::new("losetup")
        .args(["-j"])
        .arg(image)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[test]
fn deleting_a_running_container_stops_it_and_removes_everything() {
    let berth = Berth::start();
    let name = unique_name("del");
    let id = berth.create(
        &name,
        Some(json!({ "size": "32", "size_units": "M", "nameserver": "192.0.2.1" })),
    );
    berth.act(&id, "start");
    let dir = berth.lxc_path().join(&name);
    let image = dir.join("rootfs.img");
    for file in [
        "config",
        "rootfs.img",
        "berth/hostname",
        "berth/resolv.conf",
    ] {
        assert!(dir.join(file).exists(), "{file} missing before delete");
    }
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));

    let job = berth.queue(&id, "delete");
    let done = berth.job_done(&job);
    assert_eq!(done["action"], "delete");
    assert_eq!(done["entity_id"], id.as_str());
    assert!(!dir.exists(), "{} is still there", dir.display());
    assert_eq!(berth.lxc_entries(), Vec::<String>::new());
    assert_eq!(berth.lxc_state(&name), None);
    assert_eq!(loop_devices_of(&image), "");
    let answer = berth.get(&format!("/v1/containers/{id}"));
    assert_error(&answer, 404, 2002);
    assert_eq!(berth.containers(), json!([]));
    // Its jobs stay readable.
    assert_eq!(berth.job(&job)["status"], "done");
    // It takes no jobs any more.
    assert_error(
        &berth.post_empty(&format!("/v1/containers/{id}/start")),
        404,
        2002,
    );

    // The name is free again, for a container that works.
    let again = berth.create(&name, None);
    assert_ne!(again, id);
    berth.act(&again, "start");
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));
    berth.act(&again, "stop");
    // Deleting a stopped container works as well.
    berth.job_done(&berth.queue(&again, "delete"));
    assert!(!dir.exists());
    assert_error(&berth.get(&format!("/v1/containers/{again}")), 404, 2002);
}

/// Berth whose stops wait (nearly) forever on a stubborn init, so a stop
/// job stays `running` until the test kills the container.
fn berth_with_stubborn_stops(extra: &[(&str, &str)]) -> Berth {
    let mut env = vec![("BERTH_STOP_TIMEOUT_SECS".to_owned(), "600".to_owned())];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let berth = Berth::start_with(Options {
        env,
        templates: vec![],
    });
    berth.install_template("stubborn", stubborn_template());
    berth
}

/// The jobs with these ids, as one consistent read of `GET /v1/jobs/`.
fn snapshot(berth: &Berth, ids: &[String]) -> Vec<Value> {
    let all = berth.jobs();
    ids.iter()
        .map(|id| {
            all.as_array()
                .unwrap()
                .iter()
                .find(|j| j["id"] == id.as_str())
                .unwrap_or_else(|| panic!("job {id} is not listed"))
                .clone()
        })
        .collect()
}

fn finished(job: &Value) -> bool {
    matches!(
        job["status"].as_str(),
        Some("done" | "failed" | "cancelled")
    )
}

/// One container's jobs: none starts before the one queued before it has
/// finished.
fn assert_in_order(jobs: &[Value]) {
    for (i, later) in jobs.iter().enumerate() {
        if later["status"] != "queued" {
            for earlier in &jobs[..i] {
                assert!(
                    finished(earlier),
                    "{} ran while {} had not finished: {jobs:?}",
                    later["action"],
                    earlier["action"]
                );
            }
        }
    }
}

#[test]
fn one_containers_jobs_run_strictly_in_the_order_queued() {
    let berth = berth_with_stubborn_stops(&[]);
    let name = unique_name("order");
    let id = berth.create_from(&name, "stubborn", None);
    berth.act(&id, "start");

    let ids: Vec<String> = ["stop", "start", "stop", "start"]
        .iter()
        .map(|action| berth.queue(&id, action))
        .collect();
    berth.wait_until("the first stop to run", Duration::from_secs(60), || {
        let jobs = snapshot(&berth, &ids);
        assert_in_order(&jobs);
        jobs[0]["status"] == "running"
    });
    // The first stop waits on the container; everything behind it waits too.
    for _ in 0..10 {
        let jobs = snapshot(&berth, &ids);
        assert_eq!(jobs[0]["status"], "running");
        for job in &jobs[1..] {
            assert_eq!(job["status"], "queued", "{jobs:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    berth.force_stop(&name);
    berth.wait_until("the second stop to run", Duration::from_secs(60), || {
        let jobs = snapshot(&berth, &ids);
        assert_in_order(&jobs);
        jobs[2]["status"] == "running"
    });
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));
    berth.force_stop(&name);
    berth.wait_until("every job to finish", Duration::from_secs(60), || {
        let jobs = snapshot(&berth, &ids);
        assert_in_order(&jobs);
        jobs.iter().all(finished)
    });

    let jobs = snapshot(&berth, &ids);
    for pair in jobs.windows(2) {
        assert_eq!(pair[0]["status"], "done", "{jobs:?}");
        assert!(
            pair[0]["finished_at"].as_str() <= pair[1]["started_at"].as_str(),
            "{jobs:?}"
        );
    }
    assert_eq!(jobs[3]["status"], "done");
    assert_eq!(status_of(&berth, &id), "running");
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));
}

#[test]
fn jobs_of_different_containers_run_in_parallel_up_to_the_setting() {
    let mut berth = berth_with_stubborn_stops(&[]);
    let names = [unique_name("par-a"), unique_name("par-b")];
    let ids: Vec<String> = names
        .iter()
        .map(|name| berth.create_from(name, "stubborn", None))
        .collect();
    for id in &ids {
        berth.act(id, "start");
    }

    // Both stops run at once: each waits on its own container.
    let stops: Vec<String> = ids.iter().map(|id| berth.queue(id, "stop")).collect();
    berth.wait_until("both stops to run at once", Duration::from_secs(60), || {
        snapshot(&berth, &stops)
            .iter()
            .all(|job| job["status"] == "running")
    });
    for name in &names {
        berth.force_stop(name);
    }
    for job in &stops {
        berth.job_done(job);
    }

    // With one job at a time, the second waits for the first.
    assert!(berth.terminate().success());
    berth.set_env("BERTH_MAX_PARALLEL_JOBS", "1");
    berth.launch();
    for id in &ids {
        berth.act(id, "start");
    }
    let stops: Vec<String> = ids.iter().map(|id| berth.queue(id, "stop")).collect();
    berth.wait_running(&stops[0]);
    for _ in 0..10 {
        let jobs = snapshot(&berth, &stops);
        assert_eq!(jobs[0]["status"], "running");
        assert_eq!(jobs[1]["status"], "queued", "{jobs:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    berth.force_stop(&names[0]);
    berth.wait_running(&stops[1]);
    berth.force_stop(&names[1]);
    for job in &stops {
        berth.job_done(job);
    }
}

/// Requests that change containers, sent all at once while the runner
/// writes job results and logs, are all accepted (no "database is locked"),
/// every job finishes, and the last change queued for each container wins.
#[test]
fn concurrent_changes_while_jobs_run_are_all_accepted_and_applied_in_order() {
    let berth = Berth::start();
    let names: Vec<String> = (0..3).map(|_| unique_name("busy")).collect();
    let ids: Vec<String> = names.iter().map(|n| berth.create(n, None)).collect();

    let mut hostname_of_job = std::collections::HashMap::new();
    for round in 0..8 {
        let answers: Vec<(String, (reqwest::StatusCode, Value))> = std::thread::scope(|scope| {
            let handles: Vec<_> = ids
                .iter()
                .enumerate()
                .flat_map(|(c, id)| {
                    let berth = &berth;
                    (0..2).map(move |t| {
                        scope.spawn(move || {
                            let hostname = format!("h{round}-{c}-{t}");
                            let answer = berth.patch(
                                &format!("/v1/containers/{id}"),
                                &json!({ "parameters": { "hostname": hostname } }),
                            );
                            (hostname, answer)
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (hostname, (status, answer)) in answers {
            assert_eq!(status, 200, "{answer}\n{}", berth.log());
            hostname_of_job.insert(answer["job_id"].as_str().unwrap().to_owned(), hostname);
        }
    }

    berth.wait_until("every job to finish", Duration::from_secs(120), || {
        berth.jobs().as_array().unwrap().iter().all(finished)
    });
    let jobs = berth.jobs();
    for (id, name) in ids.iter().zip(&names) {
        // The list is newest first: the first configure job of this
        // container is the last change queued for it.
        let newest = jobs
            .as_array()
            .unwrap()
            .iter()
            .filter(|j| j["entity_id"] == id.as_str())
            .inspect(|j| assert_eq!(j["status"], "done", "{j}"))
            .find(|j| j["action"] == "configure")
            .unwrap();
        let hostname = &hostname_of_job[newest["id"].as_str().unwrap()];
        assert_eq!(
            berth.container(id)["parameters"]["hostname"],
            hostname.as_str()
        );
        let uts = format!("lxc.uts.name = {hostname}");
        assert!(
            berth.lxc_config(name).lines().any(|line| line == uts),
            "{uts} not in the config of {name}"
        );
    }
}
