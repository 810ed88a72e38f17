//! Crashes, shutdowns and a host without its tools: berth settles what was
//! cut off, removes half-made work, exits cleanly on SIGTERM and answers a
//! missing tool with a failed job that names the package.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{assert_error, big_template, stubborn_template, unique_name, Berth, Options};

/// kill -9 while a create unpacks its template: at the next start the job
/// is failed with a message, the half-made root filesystem is gone, and the
/// container can be deleted and its name used again.
#[test]
fn a_create_cut_off_by_a_crash_is_failed_and_cleaned_up() {
    let mut berth = Berth::start();
    berth.install_template("big", big_template());
    let name = unique_name("crash");
    let dir = berth.lxc_path().join(&name);
    let partial = dir.join("rootfs.partial");
    let (id, job) = berth.queue_create(&name, "big", None);
    // The job may still be queued at the first look: the runner claims it
    // a moment after the request is answered.
    berth.wait_until(
        "the create to be unpacking",
        Duration::from_secs(60),
        || partial.exists(),
    );
    let unpacking = berth.job(&job);
    assert_eq!(unpacking["status"], "running", "{unpacking}");
    assert_eq!(berth.container(&id)["status"], "creating");
    berth.kill();
    assert!(
        partial.exists() && !dir.join("rootfs").exists(),
        "the crash came too late to cut the unpacking off"
    );

    berth.launch();
    let settled = berth.wait_job(&job);
    assert_eq!(settled["status"], "failed", "{settled}");
    let error = settled["error"].as_str().unwrap();
    assert!(
        error.contains("berth stopped while the container was being created")
            && error.contains("was removed")
            && error.contains("Delete this container"),
        "{error}"
    );
    assert!(settled["finished_at"].is_string());
    assert_eq!(berth.container(&id)["status"], "failed");
    assert!(!dir.exists(), "{} is left behind", dir.display());
    assert_eq!(berth.lxc_entries(), Vec::<String>::new());

    // A failed container can only be deleted.
    let answer = berth.post_empty(&format!("/v1/containers/{id}/start"));
    assert_error(&answer, 409, 3003);
    berth.job_done(&berth.queue(&id, "delete"));
    assert_error(&berth.get(&format!("/v1/containers/{id}")), 404, 2002);
    let again = berth.create(&name, None);
    berth.act(&again, "start");
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));
}

/// A stop (idempotent) cut off by kill -9 runs again at the next start and
/// reaches done; the container ends up stopped.
#[test]
fn an_idempotent_job_cut_off_by_a_crash_is_resumed() {
    let mut berth = Berth::start_with(Options {
        env: vec![("BERTH_STOP_TIMEOUT_SECS".into(), "600".into())],
        templates: vec![],
    });
    berth.install_template("stubborn", stubborn_template());
    let name = unique_name("resume");
    let id = berth.create_from(&name, "stubborn", None);
    berth.act(&id, "start");
    let stop = berth.queue(&id, "stop");
    berth.wait_running(&stop);
    berth.kill();
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));

    berth.launch();
    berth.wait_running(&stop);
    assert!(
        berth
            .job_log(&stop)
            .iter()
            .any(|line| line.contains("berth restarted while this job ran; running it again")),
        "{:?}",
        berth.job_log(&stop)
    );
    // The resumed stop is waiting on the container, as the first one did.
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));
    berth.force_stop(&name);
    let done = berth.job_done(&stop);
    assert_eq!(done["action"], "stop");
    assert_eq!(berth.container(&id)["status"], "stopped");
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("STOPPED"));
    // And the container works on.
    berth.act(&id, "start");
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));
}

/// SIGTERM: exit status 0, idle or with a job in flight; a job still
/// running when the shutdown bound passes is resumed at the next start.
#[test]
fn sigterm_exits_cleanly_and_a_job_in_flight_resumes() {
    let mut berth = Berth::start_with(Options {
        env: vec![
            ("BERTH_STOP_TIMEOUT_SECS".into(), "600".into()),
            ("BERTH_SHUTDOWN_TIMEOUT_SECS".into(), "1".into()),
        ],
        templates: vec!["template1"],
    });
    let status = berth.terminate();
    assert!(status.success(), "idle berth exited with {status}");

    berth.launch();
    berth.install_template("stubborn", stubborn_template());
    let name = unique_name("term");
    let id = berth.create_from(&name, "stubborn", None);
    berth.act(&id, "start");
    let stop = berth.queue(&id, "stop");
    berth.wait_running(&stop);
    let status = berth.terminate();
    assert!(
        status.success(),
        "berth exited with {status}: {}",
        berth.log()
    );
    assert!(berth.log().contains("they resume at the next start"));

    berth.launch();
    berth.wait_running(&stop);
    berth.force_stop(&name);
    berth.job_done(&stop);
    assert_eq!(berth.container(&id)["status"], "stopped");
}

/// A queued job whose stored payload berth cannot read fails, with an
/// error that names the job, instead of running as if it had none (a
/// configure would apply everything and could not be undone); the bad row
/// does not break the job list.
#[test]
fn a_job_with_an_unreadable_payload_fails_and_says_which() {
    let mut berth = Berth::start();
    let name = unique_name("payload");
    let id = berth.create(&name, None);
    let status = berth.terminate();
    assert!(status.success(), "berth exited with {status}");

    let job = uuid::Uuid::new_v4().to_string();
    let db = berth.data_dir().join("berth.db");
    let insert = format!(
        "INSERT INTO jobs (id, entity_type, entity_id, action, status, payload, created_at) \
         VALUES ('{job}', 'container', '{id}', 'configure', 'queued', 'not json at all', \
         '2026-01-01T00:00:00Z');"
    );
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(&insert)
        .output()
        .expect("sqlite3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    berth.launch();
    let settled = berth.wait_job(&job);
    assert_eq!(settled["status"], "failed", "{settled}");
    let error = settled["error"].as_str().unwrap_or_default();
    assert!(error.contains(&job) && error.contains("payload"), "{error}");
    let (status, jobs) = berth.get("/v1/jobs");
    assert_eq!(status.as_u16(), 200, "{jobs}");
    assert_eq!(berth.container(&id)["status"], "stopped");
    berth.job_done(&berth.queue(&id, "delete"));
}

/// A directory of symlinks to every program on PATH except `missing`.
fn path_without(root: &std::path::Path, missing: &str) -> PathBuf {
    let bin = root.join("bin-without-".to_owned() + missing);
    std::fs::create_dir(&bin).unwrap();
    let path = std::env::var_os("PATH").unwrap();
    for dir in std::env::split_paths(&path) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let link = bin.join(&file_name);
            if file_name == missing || link.exists() {
                continue;
            }
            std::os::unix::fs::symlink(entry.path(), link).unwrap();
        }
    }
    assert!(bin.join("lxc-info").exists() && !bin.join(missing).exists());
    bin
}

/// Without `lxc-start` on PATH, starting (or creating) a container is a
/// failed job naming the Debian package to install; berth keeps serving.
#[test]
fn a_missing_lxc_tool_fails_the_job_and_names_the_package() {
    let mut berth = Berth::start();
    let name = unique_name("notool");
    let id = berth.create(&name, None);
    assert!(berth.terminate().success());

    let bin = path_without(berth.root.path(), "lxc-start");
    berth.set_env("PATH", bin.to_str().unwrap());
    berth.launch();
    let job = berth.queue(&id, "start");
    let failed = berth.wait_job(&job);
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("lxc-start") && error.contains("apt-get install lxc"),
        "{error}"
    );
    assert!(berth.is_alive());
    assert_eq!(berth.container(&id)["status"], "stopped");
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("STOPPED"));

    // A create needs lxc-start too: it fails at once and leaves nothing.
    let other = unique_name("notool");
    let (other_id, job) = berth.queue_create(&other, "template1", None);
    let failed = berth.wait_job(&job);
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("apt-get install lxc"),
        "{failed}"
    );
    assert_eq!(berth.container(&other_id)["status"], "failed");
    assert!(!berth.lxc_path().join(&other).exists());

    // Still serving, and everything else still works.
    assert!(berth.is_alive());
    let job = berth.patch_parameters(&id, serde_json::json!({ "hostname": "still-fine" }));
    berth.job_done(&job);
    assert!(berth
        .lxc_config(&name)
        .contains("lxc.uts.name = still-fine"));
}
