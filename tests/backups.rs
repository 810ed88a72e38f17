//! Backups and restore against real LXC and real files: a running
//! container backed up, deleted and restored with the same files, owners
//! and modes; damaged archives refused; keep_last; the disk filling up;
//! berth killed mid-backup; a Proxmox vzdump archive restored.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{assert_error, run_ok, unique_name, Berth};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Every entry of a root filesystem, numerically: path, type, mode, owner,
/// group, size, link target, and the md5 of a regular file's contents.
fn tree(rootfs: &Path) -> Vec<String> {
    let output = Command::new("find")
        .arg(".")
        .args(["-printf", "%p %y %m %U %G %s %l\\n"])
        .current_dir(rootfs)
        .output()
        .unwrap();
    assert!(output.status.success());
    let mut lines: Vec<String> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let path = line.split(' ').next().unwrap();
            let file = rootfs.join(path);
            let meta = std::fs::symlink_metadata(&file).unwrap();
            if meta.file_type().is_file() {
                let sum = Command::new("md5sum").arg(&file).output().unwrap();
                let sum = String::from_utf8(sum.stdout).unwrap();
                format!("{line} {}", sum.split(' ').next().unwrap())
            } else {
                line.to_owned()
            }
        })
        .collect();
    lines.sort();
    lines
}

fn rootfs(berth: &Berth, name: &str) -> PathBuf {
    berth.lxc_path().join(name).join("rootfs")
}

/// Files of every kind a root filesystem holds, with owners and modes the
/// copy must keep, put into the container's root filesystem.
fn add_special_files(root: &Path) {
    let dir = root.join("data");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("owned"), b"owned by 1234:5678\n").unwrap();
    std::os::unix::fs::chown(dir.join("owned"), Some(1234), Some(5678)).unwrap();
    std::fs::set_permissions(dir.join("owned"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(dir.join("setuid"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(dir.join("setuid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::os::unix::fs::symlink("owned", dir.join("link")).unwrap();
    std::os::unix::fs::lchown(dir.join("link"), Some(42), Some(43)).unwrap();
    run_ok(Command::new("mkfifo").arg(dir.join("fifo")));
    // Sparse: 64 MiB long, one block written at its end.
    let sparse = std::fs::File::create(dir.join("sparse")).unwrap();
    sparse.set_len(64 << 20).unwrap();
    std::os::unix::fs::FileExt::write_at(&sparse, b"end", (64 << 20) - 3).unwrap();
}

fn take_backup(berth: &Berth, id: &str, body: Option<Value>) -> (Value, String) {
    let answer = match body {
        Some(body) => berth.post(&format!("/v1/containers/{id}/backups"), &body),
        None => berth.post_empty(&format!("/v1/containers/{id}/backups")),
    };
    assert_eq!(answer.0, StatusCode::ACCEPTED, "{}", answer.1);
    let job = berth.wait_job(answer.1["job_id"].as_str().unwrap());
    (job, answer.1["backup_id"].as_str().unwrap().to_owned())
}

fn backup_files(berth: &Berth) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(berth.data_dir().join("backups"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn sha256_of(path: &Path) -> String {
    let output = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned()
}

fn names(berth: &Berth) -> Vec<String> {
    berth
        .containers()
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_running_container_is_backed_up_deleted_and_restored_with_its_files() {
    let berth = Berth::start();
    let name = unique_name("bk");
    let parameters = json!({
        "hostname": "restored-host", "cpus": "1", "memsize": "96", "memsize_units": "M",
        "nameserver": "192.0.2.53"
    });
    let id = berth.create(&name, Some(parameters.clone()));
    berth.act(&id, "start");
    add_special_files(&rootfs(&berth, &name));
    let before = tree(&rootfs(&berth, &name));
    assert!(before
        .iter()
        .any(|line| line.starts_with("./data/setuid f 4755 0 0")));

    let (job, backup_id) = take_backup(&berth, &id, None);
    assert_eq!(job["status"], "done", "{job}\n{}", berth.log());
    let log = berth.job_log(job["id"].as_str().unwrap()).join("\n");
    assert!(log.contains("freezing"), "{log}");
    assert!(log.contains("thawing"), "{log}");
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));

    let (status, answer) = berth.get(&format!("/v1/backups/{backup_id}"));
    assert_eq!(status, StatusCode::OK, "{answer}");
    let backup = &answer["backup"];
    assert_eq!(backup["container_id"], id.as_str());
    assert_eq!(backup["kind"], "berth");
    let file = berth
        .data_dir()
        .join("backups")
        .join(format!("{backup_id}.tar.zst"));
    assert_eq!(backup["sha256"], sha256_of(&file).as_str());
    assert_eq!(backup["size"], std::fs::metadata(&file).unwrap().len());
    assert_eq!(backup_files(&berth), vec![format!("{backup_id}.tar.zst")]);
    // It holds the container's secrets: root's alone.
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    // Self-describing: the manifest is the first entry.
    let listing = Command::new("sh")
        .arg("-c")
        .arg(format!("zstd -dc {} | tar -t | head -2", file.display()))
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    assert!(
        listing.starts_with("berth-backup.json\nrootfs/"),
        "{listing}"
    );

    // The download is the file.
    let download = berth
        .client
        .get(berth.url(&format!("/v1/backups/{backup_id}/file")))
        .send()
        .unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(
        download.headers()["content-type"].to_str().unwrap(),
        "application/zstd"
    );
    assert_eq!(
        download.headers()["content-length"].to_str().unwrap(),
        std::fs::metadata(&file).unwrap().len().to_string()
    );
    assert_eq!(download.bytes().unwrap(), std::fs::read(&file).unwrap());

    let (status, answer) = berth.delete(&format!("/v1/containers/{id}"));
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    berth.job_done(answer["job_id"].as_str().unwrap());
    assert!(!berth.lxc_path().join(&name).exists());

    let (status, answer) = berth.post(
        "/v1/containers/",
        &json!({ "name": name, "backup": backup_id }),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let job = berth.job_done(answer["job_id"].as_str().unwrap());
    assert_eq!(job["action"], "create");
    let restored = answer["container_id"].as_str().unwrap();
    let container = berth.container(restored);
    assert_eq!(container["parameters"], parameters);
    assert_eq!(container["ostemplate"], "template1");
    assert_eq!(tree(&rootfs(&berth, &name)), before);
    let sparse = std::fs::metadata(rootfs(&berth, &name).join("data/sparse")).unwrap();
    assert!(
        sparse.blocks() * 512 < 1 << 20,
        "{} blocks",
        sparse.blocks()
    );

    berth.act(restored, "start");
    assert_eq!(berth.attach(&name, "hostname").trim(), "restored-host");
    assert_eq!(
        berth
            .attach(&name, "stat -c '%a %u %g' /data/setuid /data/owned")
            .trim(),
        "4755 0 0\n640 1234 5678"
    );

    // Restoring to a name that exists is refused, and makes nothing.
    let taken = berth.post(
        "/v1/containers/",
        &json!({ "name": name, "backup": backup_id }),
    );
    assert_error(&taken, 409, 3000);
    // A backup id that is not one.
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_error(&berth.get(&format!("/v1/backups/{unknown}")), 404, 2020);
    assert_error(&berth.get("/v1/backups/not-an-id"), 400, 1003);
    assert_error(
        &berth.post(
            "/v1/containers/",
            &json!({ "name": unique_name("bk"), "backup": unknown }),
        ),
        404,
        2020,
    );
    assert_error(
        &berth.post(
            "/v1/containers/",
            &json!({ "name": unique_name("bk"), "backup": "nope" }),
        ),
        422,
        1002,
    );
    assert_eq!(names(&berth), vec![name.clone()]);

    let (status, _) = berth.delete(&format!("/v1/backups/{backup_id}"));
    assert_eq!(status, StatusCode::OK);
    assert!(backup_files(&berth).is_empty());
    assert_error(&berth.get(&format!("/v1/backups/{backup_id}")), 404, 2020);
}

#[test]
fn damaged_and_cut_off_backups_are_refused_and_make_nothing() {
    let berth = Berth::start();
    let name = unique_name("bk");
    let id = berth.create(&name, None);
    let (job, backup_id) = take_backup(&berth, &id, None);
    assert_eq!(job["status"], "done", "{job}");
    let file = berth
        .data_dir()
        .join("backups")
        .join(format!("{backup_id}.tar.zst"));
    let good = std::fs::read(&file).unwrap();
    let restore = |berth: &Berth| {
        berth.post(
            "/v1/containers/",
            &json!({ "name": unique_name("rs"), "backup": backup_id }),
        )
    };

    let mut damaged = good.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x55;
    std::fs::write(&file, &damaged).unwrap();
    let refused = restore(&berth);
    assert_error(&refused, 422, 1020);
    assert!(refused.1["message"].as_str().unwrap().contains("damaged"));

    std::fs::write(&file, &good[..good.len() - 100]).unwrap();
    let refused = restore(&berth);
    assert_error(&refused, 422, 1020);
    assert!(refused.1["message"].as_str().unwrap().contains("cut off"));
    assert_eq!(names(&berth), vec![name.clone()]);

    // The same bytes uploaded are read whole and refused; nothing kept.
    let before = berth.get("/v1/backups").1;
    for bytes in [
        damaged,
        good[..good.len() - 100].to_vec(),
        b"not an archive".to_vec(),
    ] {
        let answer = berth.send_raw("POST", "/v1/backups", "application/zstd", bytes);
        assert_error(&answer, 422, 1020);
    }
    assert_eq!(berth.get("/v1/backups").1, before);
    assert_eq!(backup_files(&berth), vec![format!("{backup_id}.tar.zst")]);

    // The good bytes uploaded make a second backup that restores.
    let (status, answer) = berth.send_raw("POST", "/v1/backups", "application/zstd", good);
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    assert_eq!(answer["backup"]["container_name"], name.as_str());
    assert_eq!(answer["backup"]["container_id"], Value::Null);
    let uploaded = answer["backup"]["id"].as_str().unwrap();
    let other = unique_name("rs");
    let (status, answer) = berth.post(
        "/v1/containers/",
        &json!({ "name": other, "backup": uploaded, "parameters": {"hostname": "up"} }),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    berth.job_done(answer["job_id"].as_str().unwrap());
    let container = berth.container(answer["container_id"].as_str().unwrap());
    assert_eq!(container["parameters"], json!({"hostname": "up"}));
}

#[test]
fn keep_last_keeps_the_newest_backups_of_the_container() {
    let berth = Berth::start();
    let id = berth.create(&unique_name("bk"), None);
    let mut taken = Vec::new();
    for _ in 0..3 {
        let (job, backup) = take_backup(&berth, &id, Some(json!({ "keep_last": 2 })));
        assert_eq!(job["status"], "done", "{job}");
        taken.push(backup);
    }
    let (_, answer) = berth.get(&format!("/v1/backups?container={id}"));
    let listed: Vec<&str> = answer["backups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![taken[2].as_str(), taken[1].as_str()]);
    let mut files = vec![
        format!("{}.tar.zst", taken[1]),
        format!("{}.tar.zst", taken[2]),
    ];
    files.sort();
    assert_eq!(backup_files(&berth), files);
    assert_error(
        &berth.post(
            &format!("/v1/containers/{id}/backups"),
            &json!({ "keep_last": 0 }),
        ),
        422,
        1002,
    );
    assert_error(
        &berth.post(
            &format!("/v1/containers/{id}/backups"),
            &json!({ "keep": 1 }),
        ),
        400,
        1001,
    );
    let _ = Duration::from_secs(1);
}

/// A file system of `size` made for the test (tmpfs), unmounted when the
/// test ends, however it ends.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(size: &str) -> SmallDisk {
        let dir = tempfile::Builder::new()
            .prefix("berth-small-disk-")
            .tempdir_in("/tmp")
            .unwrap();
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0750")])
                .arg("berth-test")
                .arg(dir.path()),
        );
        SmallDisk { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Incompressible bytes in the container's root filesystem.
fn add_filler(root: &Path, size: &str) {
    let filler = std::fs::File::create(root.join("filler")).unwrap();
    run_ok(
        Command::new("head")
            .args(["-c", size, "/dev/urandom"])
            .stdout(filler),
    );
}

#[test]
fn the_disk_filling_up_fails_the_backup_and_leaves_no_file() {
    let disk = SmallDisk::new("4m");
    let berth = Berth::start_with(common::Options {
        env: vec![("BERTH_BACKUP_DIR".into(), disk.path().display().to_string())],
        templates: vec!["template1"],
    });
    let name = unique_name("bk");
    let id = berth.create(&name, None);
    berth.act(&id, "start");
    add_filler(&rootfs(&berth, &name), "16M");

    let (job, _) = take_backup(&berth, &id, None);
    assert_eq!(job["status"], "failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("No space left on device"), "{error}");
    assert!(
        entries(disk.path()).is_empty(),
        "{:?}",
        entries(disk.path())
    );
    assert_eq!(berth.get("/v1/backups").1["backups"], json!([]));
    // Thawed, running, and its status as before.
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));
    assert_eq!(berth.container(&id)["status"], "running");
    assert!(!berth
        .lxc_path()
        .join(&name)
        .join("berth-backup.json")
        .exists());
    drop(berth);
}

#[test]
fn killed_mid_backup_berth_thaws_the_container_and_removes_the_partial_file_at_restart() {
    // zstd held until the test lets it go: the backup is certainly in the
    // middle (container frozen, partial file open) when berth is killed.
    let tools = tempfile::tempdir().unwrap();
    let hold = tools.path().join("hold");
    std::fs::write(&hold, b"").unwrap();
    let wrapper = tools.path().join("zstd");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nwhile [ -e {} ]; do sleep 0.1; done\nexec /usr/bin/zstd \"$@\"\n",
            hold.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        tools.path().display(),
        std::env::var("PATH").unwrap()
    );
    let mut berth = Berth::start_with(common::Options {
        env: vec![("PATH".into(), path)],
        templates: vec!["template1"],
    });
    let name = unique_name("bk");
    let id = berth.create(&name, None);
    berth.act(&id, "start");
    let (status, answer) = berth.post_empty(&format!("/v1/containers/{id}/backups"));
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let job = answer["job_id"].as_str().unwrap().to_owned();
    let backups = berth.data_dir().join("backups");
    let partial = |dir: &Path| entries(dir).into_iter().any(|n| n.starts_with(".partial-"));
    berth.wait_until("the backup to be writing", Duration::from_secs(60), || {
        partial(&backups)
    });
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("FROZEN"));
    berth.kill();
    std::fs::remove_file(&hold).unwrap();
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("FROZEN"));

    berth.launch();
    let log = berth.log();
    assert!(
        log.contains(".partial-"),
        "the partial file's removal is logged"
    );
    assert!(log.contains(&format!("thawed container {name}")), "{log}");
    // The job runs again from the start and writes the whole backup.
    let done = berth.job_done(&job);
    let lines = berth.job_log(&job).join("\n");
    assert!(
        lines.contains("berth restarted while this job ran"),
        "{lines}"
    );
    assert!(!partial(&backups));
    let listed = berth.get("/v1/backups").1;
    let listed = listed["backups"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let file = backups.join(format!("{}.tar.zst", listed[0]["id"].as_str().unwrap()));
    assert_eq!(listed[0]["sha256"], sha256_of(&file).as_str());
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));
    assert_eq!(berth.container(&id)["status"], "running");
    assert_eq!(done["status"], "done");
}

/// A Proxmox container backup as vzdump writes one (pve-container's
/// PVE::VZDump::LXC::archive): `tar cpf - … --directory=<tmpdir>
/// ./etc/vzdump/pct.conf ./etc/vzdump/pct.fw --directory=<rootfs> .`,
/// compressed; here with gzip and a busybox root filesystem.
fn vzdump_archive(dir: &Path, pct_conf: &str) -> PathBuf {
    let root = dir.join("root");
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(tmp.join("etc/vzdump")).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(common::busybox_template())
            .arg("-C")
            .arg(&root),
    );
    std::fs::write(tmp.join("etc/vzdump/pct.conf"), pct_conf).unwrap();
    std::fs::write(tmp.join("etc/vzdump/pct.fw"), "").unwrap();
    let archive = dir.join("vzdump-lxc-100-2026_11_30-04_00_00.tar.gz");
    let script = format!(
        "tar cpf - --totals --sparse --numeric-owner --acls --xattrs --one-file-system \
         --directory={} ./etc/vzdump/pct.conf ./etc/vzdump/pct.fw --directory={} --anchored \
         --exclude=./tmp/?* . | gzip > {}",
        tmp.display(),
        root.display(),
        archive.display()
    );
    run_ok(Command::new("sh").arg("-c").arg(script));
    archive
}

#[test]
fn a_proxmox_backup_restores_with_its_settings_mapped_and_the_rest_named() {
    let berth = Berth::start();
    let work = tempfile::tempdir().unwrap();
    let archive = vzdump_archive(
        work.path(),
        "#web server from Proxmox\narch: amd64\ncores: 1\nfeatures: nesting=1\n\
         hostname: pve-web\nmemory: 128\nmp0: local-lvm:vm-100-disk-1,mp=/srv,size=1G\n\
         nameserver: 192.0.2.53\n\
         net0: name=eth0,bridge=vmbr0,firewall=1,gw=10.0.3.1,hwaddr=BC:24:11:00:00:01,ip=10.0.3.15/24,type=veth\n\
         ostype: debian\nrootfs: local-lvm:vm-100-disk-0,size=256M\nswap: 512\nunprivileged: 1\n",
    );
    let (status, answer) = berth.send_raw(
        "POST",
        "/v1/backups",
        "application/gzip",
        std::fs::read(&archive).unwrap(),
    );
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let backup = &answer["backup"];
    assert_eq!(backup["kind"], "proxmox");
    assert_eq!(backup["container_name"], "pve-web");
    assert_eq!(backup["ostemplate"], "proxmox-debian");
    let expected = json!({
        "hostname": "pve-web", "cpus": "1", "memsize": "128", "memsize_units": "M",
        "ipadd": "10.0.3.15/24", "size": "256", "size_units": "M", "nameserver": "192.0.2.53"
    });
    assert_eq!(backup["parameters"], expected);
    let backup_id = backup["id"].as_str().unwrap();
    assert_eq!(
        entries(&berth.data_dir().join("backups")),
        vec![format!("{backup_id}.tar.gz")]
    );

    let name = unique_name("pve");
    let (status, answer) = berth.post(
        "/v1/containers/",
        &json!({ "name": name, "backup": backup_id }),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let job = answer["job_id"].as_str().unwrap();
    berth.job_done(job);
    let log = berth.job_log(job).join("\n");
    for unmapped in [
        "not mapped: swap",
        "not mapped: mp0",
        "not mapped: unprivileged",
        "not mapped: features",
        "gw=10.0.3.1",
        "bridge=vmbr0",
        "hwaddr=BC:24:11:00:00:01",
    ] {
        assert!(log.contains(unmapped), "{unmapped} missing from:\n{log}");
    }
    let id = answer["container_id"].as_str().unwrap();
    let container = berth.container(id);
    assert_eq!(container["parameters"], expected);
    assert_eq!(container["ostemplate"], "proxmox-debian");
    let image = berth.lxc_path().join(&name).join("rootfs.img");
    assert_eq!(std::fs::metadata(&image).unwrap().len(), 256 << 20);

    berth.act(id, "start");
    assert_eq!(berth.attach(&name, "hostname").trim(), "pve-web");
    assert_eq!(
        berth
            .attach(&name, "test -e /etc/vzdump && echo kept || echo left out")
            .trim(),
        "left out"
    );
    assert!(berth
        .attach(&name, "ip -4 addr show eth0")
        .contains("10.0.3.15/24"));
    assert!(berth
        .attach(&name, "cat /etc/resolv.conf")
        .contains("nameserver 192.0.2.53"));
}

#[test]
fn a_running_container_on_a_disk_image_is_backed_up_with_what_it_just_wrote() {
    let berth = Berth::start();
    let name = unique_name("bk");
    let parameters = json!({ "size": "64", "size_units": "M" });
    let id = berth.create(&name, Some(parameters.clone()));
    berth.act(&id, "start");
    // Written inside, just before the backup: still in the container's
    // page cache unless berth syncs before reading the image.
    berth.attach(&name, "echo written-inside > /root/fresh");
    let (job, backup_id) = take_backup(&berth, &id, None);
    assert_eq!(job["status"], "done", "{job}");
    let listing = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -dc {} | tar -t",
            berth
                .data_dir()
                .join(format!("backups/{backup_id}.tar.zst"))
                .display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(listing.stdout).unwrap(),
        "berth-backup.json\nrootfs.img\n"
    );
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));
    let (status, answer) = berth.delete(&format!("/v1/containers/{id}"));
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    berth.job_done(answer["job_id"].as_str().unwrap());

    let (status, answer) = berth.post(
        "/v1/containers/",
        &json!({ "name": name, "backup": backup_id }),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    berth.job_done(answer["job_id"].as_str().unwrap());
    let restored = answer["container_id"].as_str().unwrap();
    assert_eq!(berth.container(restored)["parameters"], parameters);
    let image = berth.lxc_path().join(&name).join("rootfs.img");
    assert_eq!(std::fs::metadata(&image).unwrap().len(), 64 << 20);
    berth.act(restored, "start");
    assert_eq!(
        berth.attach(&name, "cat /root/fresh").trim(),
        "written-inside"
    );
}
