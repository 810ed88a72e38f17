//! Limits that are limits: a disk larger than the file system that would
//! hold it is refused unless the operator allows overcommit, and a host
//! that lost CPUs still carries out every job of a container stored with
//! more (the quota is clamped to what the host has, and the job says so).

mod common;

use std::time::Duration;

use common::{
    assert_error, big_template, cgroup_v2, file_system_bytes, host_cpus, unique_name, Berth,
};
use serde_json::json;

/// The CPU quota in force in a running container, in CPUs.
fn cpu_quota(berth: &Berth, name: &str) -> u64 {
    let quota = if cgroup_v2() {
        let max = berth.cgroup(name, "cpu.max");
        let (quota, period) = max.split_once(' ').expect("cpu.max is 'quota period'");
        assert_eq!(period, "100000", "cpu.max: {max}");
        quota.to_owned()
    } else {
        berth.cgroup(name, "cpu.cfs_quota_us")
    };
    let quota: u64 = quota
        .parse()
        .unwrap_or_else(|_| panic!("no quota: {quota}"));
    quota / 100_000
}

/// Stops berth, and starts it again seeing only CPU 0: as after
/// `systemctl set-property berth AllowedCPUs=0`, or a move to a smaller VM.
fn relaunch_with_one_cpu(berth: &mut Berth) {
    assert!(
        host_cpus() >= 2,
        "this test takes CPUs away from berth: it needs a host with at least 2"
    );
    berth.kill();
    berth.launch_through(&["taskset", "-c", "0"]);
    berth.launch();
}

#[test]
fn a_disk_larger_than_its_file_system_is_refused_unless_overcommit_is_allowed() {
    let mut berth = Berth::start();
    let name = unique_name("thin");
    let id = berth.create(&name, None);
    berth.act(&id, "start");
    let path = format!("/v1/containers/{id}");
    let too_large_mib = file_system_bytes(&berth.lxc_path()) / (1 << 20) + 1024;
    let thin = json!({ "parameters": { "size": too_large_mib.to_string(), "size_units": "M" } });

    let answer = berth.patch(&path, &thin);
    assert_error(&answer, 422, 1002);
    let message = answer.1["message"].as_str().unwrap();
    for part in ["parameters.size", "file system", "allow_disk_overcommit"] {
        assert!(message.contains(part), "{part:?} not in {message}");
    }
    let answer = berth.post(
        "/v1/containers/",
        &json!({
            "name": unique_name("thin"), "ostemplate": "template1",
            "parameters": { "size": "16777215", "size_units": "T" }
        }),
    );
    assert_error(&answer, 422, 1002);
    assert_eq!(berth.containers().as_array().unwrap().len(), 1);
    assert_eq!(berth.container(&id)["parameters"], json!(null));

    // Thin provisioning is the operator's explicit choice.
    berth.kill();
    berth.set_env("BERTH_ALLOW_DISK_OVERCOMMIT", "true");
    berth.launch();
    let (status, answer) = berth.patch(&path, &thin);
    assert_eq!(status, 200, "{answer}");
    // The container runs: the disk is made at its next start, not now.
    let job = berth.job_done(answer["job_id"].as_str().unwrap());
    assert_eq!(job["action"], "configure");
    assert_eq!(
        berth.container(&id)["parameters"]["size"],
        too_large_mib.to_string()
    );
    berth.job_done(&berth.queue(&id, "delete"));
    assert_eq!(berth.lxc_entries(), Vec::<String>::new());
}

/// After berth lost a CPU, the container stored with two is deleted, and a
/// create cut off by a crash is cleaned up, as on any host.
#[test]
fn a_host_that_lost_cpus_still_deletes_and_cleans_up() {
    let mut berth = Berth::start();
    berth.install_template("big", big_template());
    let stored = unique_name("cpus");
    let stored_id = berth.create(&stored, Some(json!({ "cpus": "2" })));
    let cut = unique_name("cpucut");
    let partial = berth.lxc_path().join(&cut).join("rootfs.partial");
    let (cut_id, cut_job) = berth.queue_create(&cut, "big", Some(json!({ "cpus": 2 })));
    // The job may still be queued at the first look: the runner claims it
    // a moment after the request is answered.
    berth.wait_until(
        "the create to be unpacking",
        Duration::from_secs(60),
        || partial.exists(),
    );
    let unpacking = berth.job(&cut_job);
    assert_eq!(unpacking["status"], "running", "{unpacking}");

    relaunch_with_one_cpu(&mut berth);
    berth.job_done(&berth.queue(&stored_id, "delete"));
    assert_error(
        &berth.get(&format!("/v1/containers/{stored_id}")),
        404,
        2002,
    );

    let settled = berth.wait_job(&cut_job);
    assert_eq!(settled["status"], "failed", "{settled}");
    let error = settled["error"].as_str().unwrap();
    assert!(
        error.contains("the partial root filesystem was removed"),
        "{error}"
    );
    berth.job_done(&berth.queue(&cut_id, "delete"));
    assert_eq!(berth.lxc_entries(), Vec::<String>::new());
}

/// After berth lost a CPU, a PATCH that leaves `cpus` alone is accepted and
/// applied, and a start applies a quota of the CPUs the host has, saying so
/// in the job's log; setting `cpus` beyond them is refused.
#[test]
fn a_host_that_lost_cpus_clamps_the_quota_and_takes_other_changes() {
    let mut berth = Berth::start();
    let name = unique_name("clamp");
    let id = berth.create(&name, Some(json!({ "cpus": "2", "hostname": "before" })));

    relaunch_with_one_cpu(&mut berth);
    let path = format!("/v1/containers/{id}");
    let answer = berth.patch(&path, &json!({ "parameters": { "cpus": "2" } }));
    assert_error(&answer, 422, 1002);
    assert!(
        answer.1["message"]
            .as_str()
            .unwrap()
            .contains("from 1 to 1"),
        "{}",
        answer.1
    );
    berth.job_done(&berth.patch_parameters(&id, json!({ "hostname": "after" })));

    let start = berth.queue(&id, "start");
    berth.job_done(&start);
    let log = berth.job_log(&start);
    assert!(
        log.iter()
            .any(|line| line.contains("cpus: 2 stored") && line.contains("applying 1")),
        "{log:?}"
    );
    assert_eq!(cpu_quota(&berth, &name), 1);
    assert_eq!(berth.attach(&name, "hostname").trim(), "after");
    // The stored value is kept: it applies in full on a host with the CPUs.
    assert_eq!(berth.container(&id)["parameters"]["cpus"], "2");
    berth.act(&id, "stop");
    berth.job_done(&berth.queue(&id, "delete"));
    assert_eq!(berth.lxc_entries(), Vec::<String>::new());
}
