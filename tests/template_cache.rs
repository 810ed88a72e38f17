//! The template cache, end to end: a real berth creating real LXC containers.
//! The first create from a template unpacks it into the cache, later ones
//! are copied from there with the very same contents, and replacing the
//! template file makes the next create unpack it again.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{run_ok, unique_name, Berth, Options};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The busybox root filesystem plus what real templates carry and a copy
/// must keep: hard links, owners other than root, setuid and sticky modes,
/// device nodes, a fifo, extended attributes, old mtimes, a file of zeros,
/// odd names, dangling and directory links.
fn rich_template(dir: &Path, marker: &str) -> PathBuf {
    let tree = dir.join(format!("tree-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&tree).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&tree)
            .args(["--numeric-owner", "-xpzf"])
            .arg(common::busybox_template()),
    );
    let at = |p: &str| tree.join(p);
    std::fs::create_dir_all(at("opt/app/data")).unwrap();
    std::fs::write(at("opt/app/config file.txt"), format!("marker={marker}\n")).unwrap();
    std::fs::write(at("etc/berth-marker"), marker).unwrap();
    std::fs::write(at("opt/app/tool"), b"#!/bin/sh\necho tool\n").unwrap();
    std::fs::set_permissions(at("opt/app/tool"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::fs::hard_link(at("opt/app/tool"), at("opt/app/tool-hardlink")).unwrap();
    std::fs::write(at("opt/app/data/owned"), b"user data").unwrap();
    std::os::unix::fs::lchown(at("opt/app/data/owned"), Some(1000), Some(1001)).unwrap();
    std::os::unix::fs::lchown(at("opt/app/data"), Some(1000), Some(1001)).unwrap();
    std::fs::set_permissions(at("opt/app/data"), std::fs::Permissions::from_mode(0o2770)).unwrap();
    std::os::unix::fs::symlink("../nowhere", at("opt/app/dangling")).unwrap();
    std::os::unix::fs::symlink("/opt/app/data", at("opt/data-link")).unwrap();
    run_ok(
        Command::new("mknod")
            .arg(at("opt/app/null"))
            .args(["c", "1", "3"]),
    );
    run_ok(Command::new("mknod").arg(at("opt/app/fifo")).arg("p"));
    run_ok(
        Command::new("truncate")
            .args(["-s", "3M"])
            .arg(at("opt/app/zeros")),
    );
    std::fs::write(at("opt/app/random"), random_bytes(300_000)).unwrap();
    rustix::fs::lsetxattr(
        at("opt/app/tool"),
        "user.berth.test",
        b"kept",
        rustix::fs::XattrFlags::empty(),
    )
    .unwrap();
    run_ok(
        Command::new("touch")
            .args(["-h", "-d", "2001-02-03 04:05:06"])
            .arg(at("opt/app/config file.txt"))
            .arg(at("opt/app/dangling")),
    );

    let archive = dir.join(format!("rich-{}.tar.gz", uuid::Uuid::new_v4().simple()));
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&tree)
            .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-czf"])
            .arg(&archive)
            .arg("."),
    );
    std::fs::remove_dir_all(&tree).unwrap();
    archive
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(len);
    let mut block = Sha256::digest(b"seed");
    while bytes.len() < len {
        bytes.extend_from_slice(&block);
        block = Sha256::digest(block);
    }
    bytes.truncate(len);
    bytes
}

/// Puts `archive` in place as template `name`, atomically, as an operator
/// replacing it would.
fn install_template(berth: &Berth, archive: &Path, name: &str) {
    let staged = berth.template_dir().join(format!(".{name}.new"));
    std::fs::copy(archive, &staged).unwrap();
    std::fs::rename(&staged, berth.template_dir().join(format!("{name}.tar.gz"))).unwrap();
}

/// Everything about a tree that a copy must keep, path by path.
fn snapshot(root: &Path) -> BTreeMap<String, String> {
    let mut entries = BTreeMap::new();
    let mut pending = vec![root.to_owned()];
    while let Some(path) = pending.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let kind = meta.file_type();
        let detail = if kind.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
            format!("dir mtime={}", meta.mtime())
        } else if kind.is_symlink() {
            format!(
                "symlink -> {}",
                std::fs::read_link(&path).unwrap().display()
            )
        } else if kind.is_file() {
            let digest = hex::encode(Sha256::digest(std::fs::read(&path).unwrap()));
            format!(
                "file size={} sha256={digest} nlink={} mtime={}",
                meta.len(),
                meta.nlink(),
                meta.mtime()
            )
        } else {
            format!("special rdev={} mtime={}", meta.rdev(), meta.mtime())
        };
        let relative = path.strip_prefix(root).unwrap().display().to_string();
        entries.insert(
            format!("/{relative}"),
            format!(
                "{detail} mode={:o} owner={}:{} xattrs={}",
                meta.mode(),
                meta.uid(),
                meta.gid(),
                xattrs(&path)
            ),
        );
    }
    entries
}

fn xattrs(path: &Path) -> String {
    let mut names = vec![0u8; 4096];
    let len = rustix::fs::llistxattr(path, &mut names[..]).unwrap();
    let mut pairs: Vec<String> = names[..len]
        .split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| {
            let name = String::from_utf8_lossy(name).into_owned();
            let mut value = vec![0u8; 4096];
            let n = rustix::fs::lgetxattr(path, name.as_str(), &mut value[..]).unwrap();
            format!("{name}={}", hex::encode(&value[..n]))
        })
        .collect();
    pairs.sort();
    pairs.join(",")
}

/// What `tar` itself unpacks from the archive, with berth's flags.
fn fresh_unpack(archive: &Path, dest: &Path) -> BTreeMap<String, String> {
    std::fs::create_dir_all(dest).unwrap();
    run_ok(
        Command::new("tar")
            .args([
                "-x",
                "-p",
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "-z",
                "-f",
            ])
            .arg(archive)
            .arg("-C")
            .arg(dest),
    );
    snapshot(dest)
}

fn assert_same(expected: &BTreeMap<String, String>, actual: &BTreeMap<String, String>, what: &str) {
    let differences: Vec<String> = expected
        .keys()
        .chain(actual.keys())
        .filter(|path| expected.get(*path) != actual.get(*path))
        .map(|path| {
            format!(
                "{path}: expected {:?}, found {:?}",
                expected.get(path),
                actual.get(path)
            )
        })
        .collect();
    assert!(
        differences.is_empty(),
        "{what} differs from a fresh unpack:\n{}",
        differences.join("\n")
    );
    assert!(expected.len() > 200, "the tree is too small to prove much");
}

/// Queues a create of `name` from `template`; returns the job id.
fn submit_create(berth: &Berth, name: &str, template: &str, parameters: Option<Value>) -> String {
    let mut body = json!({ "name": name, "ostemplate": template });
    if let Some(parameters) = parameters {
        body["parameters"] = parameters;
    }
    let (status, answer) = berth.post("/v1/containers/", &body);
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer["job_id"].as_str().unwrap().to_owned()
}

fn job_log(berth: &Berth, job_id: &str) -> Vec<String> {
    let (status, answer) = berth.get(&format!("/v1/jobs/{job_id}/log"));
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| line["text"].as_str().unwrap().to_owned())
        .collect()
}

fn logged(lines: &[String], start: &str) -> bool {
    lines.iter().any(|line| line.starts_with(start))
}

/// Creates `name` from `template`, waits for it to be done, and returns the
/// job's log.
fn create(berth: &Berth, name: &str, template: &str) -> Vec<String> {
    let job = submit_create(berth, name, template, None);
    berth.job_done(&job);
    job_log(berth, &job)
}

fn cache_dir(berth: &Berth, template: &str) -> PathBuf {
    berth
        .lxc_path()
        .join(".template-cache")
        .join(format!("{template}.tar.gz"))
}

fn cache_entries(berth: &Berth, template: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cache_dir(berth, template))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn rootfs(berth: &Berth, name: &str) -> PathBuf {
    berth.lxc_path().join(name).join("rootfs")
}

#[test]
fn later_creates_are_copied_from_the_cache_with_identical_contents() {
    let berth = Berth::start_with(Options::default());
    let work = berth.root.path().join("work");
    let archive = rich_template(&work.join("src"), "one");
    install_template(&berth, &archive, "rich");
    let expected = fresh_unpack(&archive, &work.join("fresh"));

    let first = unique_name("cache-a");
    let log = create(&berth, &first, "rich");
    assert!(logged(&log, "template cache: unpacking"), "{log:#?}");
    let second = unique_name("cache-b");
    let log = create(&berth, &second, "rich");
    assert!(logged(&log, "template cache: using"), "{log:#?}");
    assert!(!logged(&log, "template cache: unpacking"), "{log:#?}");

    assert_same(
        &expected,
        &snapshot(&rootfs(&berth, &first)),
        "the first container",
    );
    assert_same(
        &expected,
        &snapshot(&rootfs(&berth, &second)),
        "a container from the cache",
    );
    // The cache itself holds exactly what tar unpacks.
    let entries = cache_entries(&berth, "rich");
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_same(
        &expected,
        &snapshot(&cache_dir(&berth, "rich").join(&entries[0])),
        "the cached tree",
    );
    let cache_mode = std::fs::metadata(berth.lxc_path().join(".template-cache"))
        .unwrap()
        .mode();
    assert_eq!(cache_mode & 0o777, 0o700);

    // Both run.
    for name in [&first, &second] {
        let id = container_id(&berth, name);
        berth.act(&id, "start");
        assert_eq!(berth.attach(name, "cat /etc/berth-marker"), "one");
    }
}

#[test]
fn a_disk_sized_container_is_made_from_the_cached_tree() {
    let berth = Berth::start_with(Options::default());
    let work = berth.root.path().join("work");
    let archive = rich_template(&work.join("src"), "disk");
    install_template(&berth, &archive, "rich");
    let expected = fresh_unpack(&archive, &work.join("fresh"));
    create(&berth, &unique_name("warm"), "rich");

    let name = unique_name("cache-disk");
    let job = submit_create(
        &berth,
        &name,
        "rich",
        Some(json!({ "size": "64", "size_units": "M" })),
    );
    berth.job_done(&job);
    let log = job_log(&berth, &job);
    assert!(logged(&log, "template cache: using"), "{log:#?}");
    let image = berth.lxc_path().join(&name).join("rootfs.img");
    assert_eq!(std::fs::metadata(&image).unwrap().len(), 64 << 20);

    let mount = LoopMount::new(&image, &work.join("mnt"));
    let mut found = snapshot(&mount.0);
    // mkfs adds lost+found and makes the root directory its own.
    found.retain(|path, _| path != "/" && !path.starts_with("/lost+found"));
    let mut expected = expected;
    expected.remove("/");
    assert_same(&expected, &found, "the disk image");
}

/// A read-only loop mount, undone even when the test fails.
struct LoopMount(PathBuf);

impl LoopMount {
    fn new(image: &Path, at: &Path) -> Self {
        std::fs::create_dir_all(at).unwrap();
        run_ok(
            Command::new("mount")
                .args(["-o", "loop,ro"])
                .arg(image)
                .arg(at),
        );
        LoopMount(at.to_owned())
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn replacing_the_template_file_invalidates_its_cache() {
    let berth = Berth::start_with(Options::default());
    let work = berth.root.path().join("work");
    install_template(&berth, &rich_template(&work.join("v1"), "one"), "rich");
    let first = unique_name("inv-a");
    assert!(logged(
        &create(&berth, &first, "rich"),
        "template cache: unpacking"
    ));
    let old_entries = cache_entries(&berth, "rich");

    let replacement = rich_template(&work.join("v2"), "two");
    install_template(&berth, &replacement, "rich");
    let second = unique_name("inv-b");
    let log = create(&berth, &second, "rich");
    assert!(logged(&log, "template cache: unpacking"), "{log:#?}");
    let new_entries = cache_entries(&berth, "rich");
    assert_eq!(new_entries.len(), 2, "{new_entries:?}");
    assert!(
        new_entries.iter().all(|e| !old_entries.contains(e)),
        "the old entry is gone: {old_entries:?} -> {new_entries:?}"
    );
    let marker = |name: &str| {
        std::fs::read_to_string(rootfs(&berth, name).join("etc/berth-marker")).unwrap()
    };
    assert_eq!(marker(&first), "one");
    assert_eq!(marker(&second), "two");
    assert_same(
        &fresh_unpack(&replacement, &work.join("fresh")),
        &snapshot(&rootfs(&berth, &second)),
        "a container from the replaced template",
    );

    let third = unique_name("inv-c");
    assert!(logged(
        &create(&berth, &third, "rich"),
        "template cache: using"
    ));
    assert_eq!(marker(&third), "two");
}

#[test]
fn a_new_link_or_mode_on_the_template_keeps_its_cache() {
    // Both change the file's ctime and not one byte of it: backup tools and
    // test harnesses hard-link templates, operators chmod them.
    let berth = Berth::start_with(Options {
        templates: vec!["template1"],
        ..Options::default()
    });
    let template = berth.template_dir().join("template1.tar.gz");
    let first = unique_name("keep-a");
    assert!(logged(
        &create(&berth, &first, "template1"),
        "template cache: unpacking"
    ));
    let entries = cache_entries(&berth, "template1");

    std::fs::hard_link(&template, berth.root.path().join("a-second-name.tar.gz")).unwrap();
    std::fs::set_permissions(&template, std::fs::Permissions::from_mode(0o600)).unwrap();
    let second = unique_name("keep-b");
    let log = create(&berth, &second, "template1");
    assert!(logged(&log, "template cache: using"), "{log:#?}");
    assert_eq!(cache_entries(&berth, "template1"), entries);
}

#[test]
fn concurrent_creates_fill_the_cache_once() {
    let berth = Berth::start_with(Options {
        templates: vec!["template1"],
        ..Options::default()
    });
    let names: Vec<String> = (0..4).map(|i| unique_name(&format!("conc{i}"))).collect();
    let jobs: Vec<String> = names
        .iter()
        .map(|name| submit_create(&berth, name, "template1", None))
        .collect();
    let mut unpacked = 0;
    for job in &jobs {
        berth.job_done(job);
        if logged(&job_log(&berth, job), "template cache: unpacking") {
            unpacked += 1;
        }
    }
    assert_eq!(unpacked, 1, "exactly one create unpacks the template");
    let entries = cache_entries(&berth, "template1");
    assert_eq!(entries.len(), 2, "no partial fills are left: {entries:?}");
    let expected = fresh_unpack(
        &berth.template_dir().join("template1.tar.gz"),
        &berth.root.path().join("fresh"),
    );
    for name in &names {
        assert_same(&expected, &snapshot(&rootfs(&berth, name)), name);
    }
}

#[test]
fn with_the_cache_off_every_create_unpacks() {
    let berth = Berth::start_with(Options {
        templates: vec!["template1"],
        env: vec![("BERTH_TEMPLATE_CACHE".into(), "false".into())],
    });
    for prefix in ["off-a", "off-b"] {
        let log = create(&berth, &unique_name(prefix), "template1");
        assert!(logged(&log, "unpacking "), "{log:#?}");
        assert!(
            !log.iter().any(|l| l.contains("template cache")),
            "{log:#?}"
        );
    }
    assert!(!berth.lxc_path().join(".template-cache").exists());
}

fn container_id(berth: &Berth, name: &str) -> String {
    let (status, answer) = berth.get(&format!("/v1/containers?name={name}"));
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["containers"][0]["id"].as_str().unwrap().to_owned()
}
