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
