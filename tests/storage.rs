//! Storage pools on real file systems: a btrfs file system made for each
//! test (a sparse file, `mkfs.btrfs`, `mount -o loop`), unmounted and its
//! loop device detached at the end even when the test fails; and the `dir`
//! pool every berth has without configuration.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_error, run_ok, unique_name, Berth, Options};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// A btrfs file system on a loop device, mounted in a temporary directory.
/// Dropping it unmounts it (the loop device goes with it: `mount -o loop`
/// sets it to detach itself) and removes the directory.
pub struct LoopBtrfs {
    dir: tempfile::TempDir,
}

impl LoopBtrfs {
    pub fn new(size_mib: u64) -> LoopBtrfs {
        let dir = tempfile::Builder::new()
            .prefix("berth-btrfs-")
            .tempdir_in("/tmp")
            .unwrap();
        let image = dir.path().join("disk.img");
        let file = std::fs::File::create(&image).unwrap();
        file.set_len(size_mib << 20).unwrap();
        drop(file);
        run_ok(Command::new("mkfs.btrfs").arg("-q").arg(&image));
        let mount = dir.path().join("mnt");
        std::fs::create_dir(&mount).unwrap();
        let fs = LoopBtrfs { dir };
        run_ok(
            Command::new("mount")
                .args(["-o", "loop"])
                .arg(&image)
                .arg(&mount),
        );
        fs
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("mnt")
    }
}

impl Drop for LoopBtrfs {
    fn drop(&mut self) {
        let mount = self.path();
        let unmounted = Command::new("umount")
            .arg(&mount)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a container's process not yet gone): detach now,
            // the kernel lets go of it when the last user does.
            let _ = Command::new("umount").arg("-l").arg(&mount).status();
        }
    }
}

/// `BERTH_STORAGE` naming a btrfs pool `fast` at `path` first, then the
/// `dir` pool `local`.
fn pools_env(path: &Path) -> (String, String) {
    (
        "BERTH_STORAGE".into(),
        format!(
            r#"[{{name="fast",driver="btrfs",path="{}"}},{{name="local",driver="dir"}}]"#,
            path.display()
        ),
    )
}

fn start_with_pools(fs: &LoopBtrfs, extra: &[(&str, &str)]) -> Berth {
    let mut env = vec![pools_env(&fs.path())];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Berth::start_with(Options {
        env,
        templates: vec!["template1"],
    })
}

fn create_on(berth: &Berth, name: &str, storage: &str, parameters: Option<Value>) -> String {
    let mut body = json!({ "name": name, "ostemplate": "template1", "storage": storage });
    if let Some(parameters) = parameters {
        body["parameters"] = parameters;
    }
    let (status, answer) = berth.post("/v1/containers/", &body);
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    berth.job_done(answer["job_id"].as_str().unwrap());
    answer["container_id"].as_str().unwrap().to_owned()
}

fn is_subvolume(path: &Path) -> bool {
    Command::new("btrfs")
        .args(["subvolume", "show"])
        .arg(path)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_btrfs_pool_makes_containers_as_snapshots_and_lists_its_space() {
    let fs = LoopBtrfs::new(1024);
    let berth = start_with_pools(&fs, &[]);

    let (status, answer) = berth.get("/v1/storage");
    assert_eq!(status, StatusCode::OK, "{answer}");
    let pools = answer["storage"].as_array().unwrap();
    assert_eq!(pools[0]["name"], "fast");
    assert_eq!(pools[0]["driver"], "btrfs");
    assert_eq!(pools[0]["usable"], true, "{answer}");
    assert_eq!(pools[1]["name"], "local");
    let capacity: u64 = pools[0]["capacity"].as_str().unwrap().parse().unwrap();
    assert!(capacity > 512 << 20, "{answer}");

    // No storage named: the first pool.
    let name = unique_name("bt");
    let id = berth.create(&name, None);
    assert_eq!(berth.container(&id)["storage"], "fast");
    let rootfs = fs.path().join("containers").join(&name);
    assert!(is_subvolume(&rootfs), "the root filesystem is a subvolume");
    assert!(
        berth
            .lxc_config(&name)
            .contains(&format!("lxc.rootfs.path = dir:{}\n", rootfs.display())),
        "{}",
        berth.lxc_config(&name)
    );
    // A snapshot of the template's subvolume: the busybox tree is there.
    assert!(rootfs.join("bin/busybox").exists());
    // Closed to other users, like the container directories.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(fs.path().join("containers"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "containers/ is {mode:o}");
    berth.act(&id, "start");
    assert_eq!(berth.attach(&name, "cat /etc/hostname").trim(), name);

    // And on the dir pool when asked.
    let plain = unique_name("dr");
    let plain_id = create_on(&berth, &plain, "local", None);
    assert_eq!(berth.container(&plain_id)["storage"], "local");
    assert!(berth
        .lxc_path()
        .join(&plain)
        .join("rootfs/bin/busybox")
        .exists());

    // Deleting removes the subvolume.
    let (status, answer) = berth.delete(&format!("/v1/containers/{id}"));
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    berth.job_done(answer["job_id"].as_str().unwrap());
    assert!(!rootfs.exists(), "the subvolume is gone");
    drop(berth);
}

#[test]
fn a_btrfs_quota_stops_writes_at_size() {
    let fs = LoopBtrfs::new(1024);
    let berth = start_with_pools(&fs, &[]);
    let name = unique_name("bq");
    let id = create_on(
        &berth,
        &name,
        "fast",
        Some(json!({ "size": "64", "size_units": "M" })),
    );
    berth.act(&id, "start");
    let rootfs = fs.path().join("containers").join(&name);
    let out = berth.attach(
        &name,
        "dd if=/dev/urandom of=/fill bs=1M count=200 conv=fsync 2>&1; echo rc=$?; sync",
    );
    assert!(!out.contains("rc=0"), "dd wrote past the quota: {out}");
    assert!(
        out.contains("quota") || out.contains("No space"),
        "dd stopped by the quota: {out}"
    );
    let written = std::fs::metadata(rootfs.join("fill")).map_or(0, |m| m.len());
    assert!(
        written < 64 << 20,
        "{written} bytes written under a 64 MiB size"
    );

    // A larger size applies live.
    let job = berth.patch_parameters(&id, json!({ "size": "256", "size_units": "M" }));
    berth.job_done(&job);
    let out = berth.attach(
        &name,
        "rm -f /fill; dd if=/dev/urandom of=/fill bs=1M count=100 conv=fsync 2>&1; echo rc=$?",
    );
    assert!(out.contains("rc=0"), "100 MiB fit in 256 MiB: {out}");
    drop(berth);
}

#[test]
fn a_container_on_a_btrfs_pool_is_not_moved() {
    let fs = LoopBtrfs::new(1024);
    let berth = start_with_pools(
        &fs,
        &[("BERTH_CLUSTER_SECRET", "0123456789abcdef0123456789abcdef")],
    );
    let name = unique_name("bm");
    let id = berth.create(&name, None);
    let answer = berth.post(
        &format!("/v1/containers/{id}/migrate"),
        &json!({ "node": "elsewhere" }),
    );
    assert_error(&answer, 409, 3011);
    assert!(
        answer.1["message"].as_str().unwrap().contains("btrfs"),
        "{answer:?}"
    );
    drop(berth);
}

fn snapshots_of(berth: &Berth, id: &str) -> Vec<String> {
    let (status, answer) = berth.get(&format!("/v1/containers/{id}/snapshots"));
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

fn queue_job(answer: (StatusCode, Value)) -> String {
    assert_eq!(answer.0, StatusCode::ACCEPTED, "{}", answer.1);
    answer.1["job_id"].as_str().unwrap().to_owned()
}

fn take(berth: &Berth, id: &str, name: &str) -> String {
    queue_job(berth.post(
        &format!("/v1/containers/{id}/snapshots"),
        &json!({ "name": name }),
    ))
}

fn restore(berth: &Berth, id: &str, name: &str) -> String {
    queue_job(berth.post_empty(&format!("/v1/containers/{id}/snapshots/{name}/restore")))
}

/// On a running container: snapshot, change a file, restore (the container
/// is stopped, put back and started again), the file is back; delete the
/// snapshot.
fn round_trip(berth: &Berth, id: &str, name: &str) {
    berth.act(id, "start");
    berth.attach(name, "echo before > /root/marker");
    berth.job_done(&take(berth, id, "s1"));
    assert_eq!(snapshots_of(berth, id), ["s1"]);
    berth.attach(name, "echo after > /root/marker; touch /root/new");

    let job = berth.job_done(&restore(berth, id, "s1"));
    assert_eq!(berth.lxc_state(name).as_deref(), Some("RUNNING"), "{job}");
    assert_eq!(berth.container(id)["status"], "running");
    assert_eq!(berth.attach(name, "cat /root/marker").trim(), "before");
    assert_eq!(
        berth
            .attach(name, "test -e /root/new && echo yes || echo no")
            .trim(),
        "no"
    );

    let job = queue_job(berth.delete(&format!("/v1/containers/{id}/snapshots/s1")));
    berth.job_done(&job);
    assert!(snapshots_of(berth, id).is_empty());
}

fn delete_container(berth: &Berth, id: &str) {
    let (status, answer) = berth.delete(&format!("/v1/containers/{id}"));
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    berth.job_done(answer["job_id"].as_str().unwrap());
}

#[test]
fn snapshots_on_a_dir_pool_restore_files_tree_and_image() {
    let berth = Berth::start();
    let name = unique_name("sd");
    let id = berth.create(&name, None);
    round_trip(&berth, &id, &name);
    // On a disk image (`size`): synced after the freeze, copied sparse.
    let image = unique_name("si");
    let image_id = berth.create(&image, Some(json!({ "size": "64", "size_units": "M" })));
    round_trip(&berth, &image_id, &image);

    // A snapshot goes with its container.
    berth.job_done(&take(&berth, &id, "s2"));
    let snapshot = berth.lxc_path().join(&name).join("snapshots/s2/rootfs");
    assert!(snapshot.join("root/marker").exists());
    delete_container(&berth, &id);
    assert!(!snapshot.exists());
}

#[test]
fn snapshots_on_a_btrfs_pool_are_read_only_subvolumes() {
    let fs = LoopBtrfs::new(1024);
    let berth = start_with_pools(&fs, &[]);
    let name = unique_name("sb");
    let id = berth.create(&name, None);
    round_trip(&berth, &id, &name);

    berth.job_done(&take(&berth, &id, "s2"));
    let snapshot = fs.path().join("snapshots").join(&name).join("s2");
    assert!(is_subvolume(&snapshot));
    let show = Command::new("btrfs")
        .args(["property", "get", "-ts"])
        .arg(&snapshot)
        .arg("ro")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&show.stdout).trim(), "ro=true");
    delete_container(&berth, &id);
    assert!(!snapshot.exists());
    drop(berth);
}

/// kill -9 while a running container is frozen for its snapshot, and while
/// a restore copies it back: the next start thaws it, runs both jobs again
/// to their end, and lists the snapshot once, with nothing half-made left.
#[test]
fn a_crash_mid_snapshot_or_mid_restore_settles_at_restart() {
    let mut berth = Berth::start();
    let name = unique_name("sk");
    let id = berth.create(&name, None);
    let dir = berth.lxc_path().join(&name);
    // Enough to copy that the job is seen in the middle of it.
    run_ok(
        Command::new("dd")
            .arg("if=/dev/zero")
            .arg(format!("of={}", dir.join("rootfs/big").display()))
            .args(["bs=1M", "count=800", "status=none"]),
    );
    berth.act(&id, "start");
    berth.attach(&name, "echo before > /root/marker");

    let job = take(&berth, &id, "s1");
    let partial = dir.join("snapshots/.partial-s1");
    berth.wait_until(
        "the copy under a freeze",
        std::time::Duration::from_secs(60),
        || partial.exists() && berth.lxc_state(&name).as_deref() == Some("FROZEN"),
    );
    berth.kill();
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("FROZEN"));
    berth.launch();
    let done = berth.job_done(&job);
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"), "{done}");
    assert_eq!(snapshots_of(&berth, &id), ["s1"]);
    assert!(!partial.exists());
    assert!(dir.join("snapshots/s1/rootfs/root/marker").exists());

    berth.attach(&name, "echo after > /root/marker");
    let job = restore(&berth, &id, "s1");
    let copying = dir.join("restore.partial");
    berth.wait_until("the copy back", std::time::Duration::from_secs(60), || {
        copying.exists()
    });
    berth.kill();
    berth.launch();
    berth.job_done(&job);
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));
    assert_eq!(berth.attach(&name, "cat /root/marker").trim(), "before");
    assert!(!copying.exists() && !dir.join("restore.ready").exists());
    assert_eq!(snapshots_of(&berth, &id), ["s1"]);
}

fn clone(berth: &Berth, id: &str, body: Value) -> String {
    let (status, answer) = berth.post(&format!("/v1/containers/{id}/clone"), &body);
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    berth.job_done(answer["job_id"].as_str().unwrap());
    answer["container_id"].as_str().unwrap().to_owned()
}

/// A running container cloned as it is, and from its snapshot: the clone
/// has the source's files, its own name, and starts beside the source.
fn clone_running(berth: &Berth, id: &str, name: &str) -> (String, String) {
    berth.act(id, "start");
    berth.attach(name, "echo one > /root/marker");
    berth.job_done(&take(berth, id, "s1"));
    berth.attach(name, "echo two > /root/marker");

    let live = unique_name("cl");
    let live_id = clone(berth, id, json!({ "name": live }));
    assert_eq!(berth.lxc_state(name).as_deref(), Some("RUNNING"));
    assert_eq!(berth.container(&live_id)["status"], "stopped");
    berth.act(&live_id, "start");
    assert_eq!(berth.attach(&live, "cat /root/marker").trim(), "two");
    assert_eq!(berth.attach(&live, "hostname").trim(), live);

    let old = unique_name("cs");
    let old_id = clone(berth, id, json!({ "name": old, "snapshot": "s1" }));
    berth.act(&old_id, "start");
    assert_eq!(berth.attach(&old, "cat /root/marker").trim(), "one");
    (live, old)
}

#[test]
fn a_running_container_is_cloned_on_a_dir_pool() {
    let berth = Berth::start();
    let name = unique_name("cd");
    let id = berth.create(&name, None);
    let (live, _) = clone_running(&berth, &id, &name);
    assert!(berth
        .lxc_path()
        .join(&live)
        .join("rootfs/root/marker")
        .exists());
}

#[test]
fn a_running_container_is_cloned_on_a_btrfs_pool_as_a_snapshot() {
    let fs = LoopBtrfs::new(1024);
    let berth = start_with_pools(&fs, &[]);
    let name = unique_name("cb");
    let id = berth.create(&name, Some(json!({ "size": "128", "size_units": "M" })));
    let (live, old) = clone_running(&berth, &id, &name);
    for clone in [&live, &old] {
        assert!(is_subvolume(&fs.path().join("containers").join(clone)));
    }
    drop(berth);
}

/// A running container on a btrfs pool is backed up from a read-only
/// snapshot (it is never frozen), restored onto the dir pool with its
/// files, and the snapshot read from is gone afterwards.
#[test]
fn a_running_container_on_a_btrfs_pool_is_backed_up_from_a_snapshot() {
    let fs = LoopBtrfs::new(1024);
    let berth = start_with_pools(&fs, &[]);
    let name = unique_name("bb");
    let id = create_on(&berth, &name, "fast", None);
    berth.act(&id, "start");
    berth.attach(&name, "echo kept > /root/marker; sync");

    let (status, answer) = berth.post_empty(&format!("/v1/containers/{id}/backups"));
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let job = berth.job_done(answer["job_id"].as_str().unwrap());
    let log = berth
        .get(&format!("/v1/jobs/{}/log", job["id"].as_str().unwrap()))
        .1;
    assert!(log.to_string().contains("read-only snapshot"), "{log}");
    assert!(!log.to_string().contains("freezing"), "{log}");
    let staging: Vec<_> = std::fs::read_dir(fs.path().join("backups"))
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(staging.is_empty(), "left in the pool: {staging:?}");
    assert_eq!(
        berth.get(&format!("/v1/containers/{id}")).1["container"]["status"],
        "running"
    );

    let restored = unique_name("br");
    let backup_id = answer["backup_id"].clone();
    // A restore unpacks into a dir pool: another pool is refused, as is
    // one that does not exist, and nothing is made.
    for (storage, code) in [("fast", 1002), ("nope", 1010)] {
        let (status, refused) = berth.post(
            "/v1/containers/",
            &json!({ "name": restored, "backup": backup_id, "storage": storage }),
        );
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
        assert_eq!(refused["code"], code, "{refused}");
    }
    let (_, listed) = berth.get(&format!("/v1/containers?name={restored}"));
    assert_eq!(listed["containers"], json!([]), "{listed}");
    let (status, answer) = berth.post(
        "/v1/containers/",
        &json!({ "name": restored, "backup": backup_id, "storage": "local" }),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    berth.job_done(answer["job_id"].as_str().unwrap());
    let new_id = answer["container_id"].as_str().unwrap().to_owned();
    let container = berth.get(&format!("/v1/containers/{new_id}")).1;
    assert_eq!(container["container"]["storage"], "local", "{container}");
    berth.act(&new_id, "start");
    assert_eq!(berth.attach(&restored, "cat /root/marker").trim(), "kept");
    drop(berth);
}
