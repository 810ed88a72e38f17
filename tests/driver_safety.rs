//! What berth must never do to a host's disks and containers: cut a resize
//! off half-way at shutdown, undo changes made inside a running container
//! that a PATCH did not touch, leave root filesystems readable by every
//! user, lose the files that say which container is whose, or keep the
//! leftovers of a crash.

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{unique_name, Berth, Options};
use serde_json::json;

const MIB: u64 = 1 << 20;

/// Where a host tool lives on PATH.
fn host_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed"))
}

/// A directory holding a `resize2fs` that, until `release` exists, holds
/// the step open (after saying so in `started`) and then runs the real one
/// on the real disk. It makes "berth is stopped while resize2fs runs" a
/// state the test reaches every time instead of a race against a fast tool.
struct HeldResize {
    bin: tempfile::TempDir,
}

impl HeldResize {
    fn new() -> HeldResize {
        let bin = tempfile::Builder::new()
            .prefix("berth-held-")
            .tempdir_in("/tmp")
            .unwrap();
        let script = format!(
            "#!/bin/sh\necho $$ > '{dir}/started'\nwhile [ ! -e '{dir}/release' ]; do sleep 0.05; done\nexec '{real}' \"$@\"\n",
            dir = bin.path().display(),
            real = host_tool("resize2fs").display()
        );
        let wrapper = bin.path().join("resize2fs");
        std::fs::write(&wrapper, script).unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        HeldResize { bin }
    }

    fn path_env(&self) -> String {
        format!(
            "{}:{}",
            self.bin.path().display(),
            std::env::var("PATH").unwrap()
        )
    }

    fn started(&self) -> bool {
        self.bin.path().join("started").exists()
    }

    /// The process id of the held resize2fs.
    fn pid(&self) -> String {
        std::fs::read_to_string(self.bin.path().join("started"))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn release(&self) {
        std::fs::write(self.bin.path().join("release"), b"").unwrap();
    }
}

/// (size in bytes, whether `e2fsck -fn` finds it clean, its output) of the
/// ext4 file system in `image`.
fn file_system(image: &Path) -> (u64, bool, String) {
    let output = Command::new("dumpe2fs")
        .arg("-h")
        .arg(image)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let field = |name: &str| -> u64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in dumpe2fs output: {text}"))
    };
    let size = field("Block count:") * field("Block size:");
    let check = Command::new("e2fsck")
        .arg("-fn")
        .arg(image)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    (size, check.status.success(), said)
}

/// SIGTERM (as systemd stops berth, and as a package upgrade restarts it)
/// while resize2fs grows a disk holding data: berth lets the resize finish,
/// asking systemd for more time while it waits, and after the restart the
/// file system checks clean, is as large as the stored size, and the data
/// is intact.
#[test]
fn a_shutdown_lets_a_running_resize_finish() {
    let held = HeldResize::new();
    let sockets = tempfile::tempdir().unwrap();
    let notify_path = sockets.path().join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut berth = Berth::start_with(Options {
        env: vec![
            ("PATH".into(), held.path_env()),
            ("BERTH_SHUTDOWN_TIMEOUT_SECS".into(), "1".into()),
            ("NOTIFY_SOCKET".into(), notify_path.display().to_string()),
        ],
        templates: vec!["template1"],
    });
    let growing = grow_a_disk_with_data(&berth, &held, "held-resize");
    let pid = berth.pid().unwrap();
    let term = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(term.success());

    // Either berth asks systemd for more time, or it exits without waiting.
    let mut extended = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !extended && berth.is_alive() && Instant::now() < deadline {
        let mut buffer = [0u8; 4096];
        if let Ok(n) = notify.recv(&mut buffer) {
            extended |= String::from_utf8_lossy(&buffer[..n]).contains("EXTEND_TIMEOUT_USEC=");
        }
    }
    held.release();
    let deadline = Instant::now() + Duration::from_secs(120);
    while berth.is_alive() {
        assert!(
            Instant::now() < deadline,
            "berth did not exit: {}",
            berth.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    berth.kill();

    berth.launch();
    grown_with_data_intact(&berth, &growing);
    assert!(
        extended,
        "berth did not ask systemd for more time while resize2fs ran: {}",
        berth.log()
    );
}

/// kill -9 while resize2fs grows a disk (a crash, or systemd's SIGKILL at
/// the end of its stop timeout, ends resize2fs too): at the next start the
/// resumed job finishes the resize, rather than taking the file, already at
/// its new size, for a finished one.
#[test]
fn a_resize_cut_off_by_a_crash_is_finished_at_the_next_start() {
    let held = HeldResize::new();
    let mut berth = Berth::start_with(Options {
        env: vec![("PATH".into(), held.path_env())],
        templates: vec!["template1"],
    });
    let growing = grow_a_disk_with_data(&berth, &held, "crash-resize");
    berth.kill();
    let killed = Command::new("kill")
        .args(["-KILL", &held.pid()])
        .status()
        .unwrap();
    assert!(killed.success());
    held.release();

    berth.launch();
    grown_with_data_intact(&berth, &growing);
}

/// A stopped container whose 48 MiB disk holds 16 MiB of data, and whose
/// grow to 96 MiB has started (held in `held`'s resize2fs).
struct Growing {
    name: String,
    id: String,
    job: String,
    /// The data's md5sum, as `md5sum /keep` prints it inside.
    keep_sum: String,
}

fn grow_a_disk_with_data(berth: &Berth, held: &HeldResize, prefix: &str) -> Growing {
    let name = unique_name(prefix);
    let id = berth.create(&name, Some(json!({ "size": "48", "size_units": "M" })));
    berth.act(&id, "start");
    berth.attach(
        &name,
        "dd if=/dev/urandom of=/keep bs=1M count=16 2>/dev/null && sync",
    );
    let keep_sum = berth.attach(&name, "md5sum /keep");
    berth.act(&id, "stop");
    let job = berth.patch_parameters(&id, json!({ "size": "96" }));
    berth.wait_until("resize2fs to start", Duration::from_secs(60), || {
        held.started()
    });
    Growing {
        name,
        id,
        job,
        keep_sum,
    }
}

/// After berth is back: the grow's job finished, the file system is
/// clean and 96 MiB in a 96 MiB image, the stored size says so, and the
/// data inside is what it was.
fn grown_with_data_intact(berth: &Berth, growing: &Growing) {
    berth.job_done(&growing.job);
    let image = berth.lxc_path().join(&growing.name).join("rootfs.img");
    let (size, clean, said) = file_system(&image);
    assert!(clean, "e2fsck -fn after the restart: {said}");
    assert_eq!(size, 96 * MIB, "the file system's size");
    assert_eq!(std::fs::metadata(&image).unwrap().len(), 96 * MIB);
    assert_eq!(berth.container(&growing.id)["parameters"]["size"], "96");
    berth.act(&growing.id, "start");
    assert_eq!(
        berth.attach(&growing.name, "md5sum /keep"),
        growing.keep_sum
    );
}

/// A shrink below what the files need is refused with resize2fs's reason
/// and the smallest size the disk can take, not resize2fs's version banner.
#[test]
fn a_refused_shrink_says_why_and_the_smallest_size() {
    let berth = Berth::start();
    let name = unique_name("shrink-words");
    let id = berth.create(&name, Some(json!({ "size": "64", "size_units": "M" })));
    berth.act(&id, "start");
    berth.attach(
        &name,
        "dd if=/dev/urandom of=/keep bs=1M count=24 2>/dev/null && sync",
    );
    berth.act(&id, "stop");

    let job = berth.patch_parameters(&id, json!({ "size": "24" }));
    let failed = berth.wait_job(&job);
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();

    // What resize2fs itself says the smallest size is, in whole MiB.
    let image = berth.lxc_path().join(&name).join("rootfs.img");
    let estimate = Command::new(host_tool("resize2fs"))
        .arg("-P")
        .arg(&image)
        .output()
        .unwrap();
    let estimate = String::from_utf8_lossy(&estimate.stdout);
    let blocks: u64 = estimate
        .lines()
        .find_map(|line| line.strip_prefix("Estimated minimum size of the filesystem:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let dumped = Command::new("dumpe2fs")
        .arg("-h")
        .arg(&image)
        .output()
        .unwrap();
    let block_size: u64 = String::from_utf8_lossy(&dumped.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("Block size:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let smallest_mib = (blocks * block_size).div_ceil(MIB);

    assert!(error.contains("cannot shrink to 24 MiB"), "{error}");
    assert!(
        error.contains(&format!("the smallest size possible is {smallest_mib} MiB")),
        "{error}"
    );
    assert!(error.contains("New size smaller than minimum"), "{error}");
    assert!(
        !error.contains("1.47") && !error.contains("resize2fs 1."),
        "{error}"
    );
    assert_eq!(berth.container(&id)["parameters"]["size"], "64");
}

/// The addresses of global scope on the container's eth0, as `addr/prefix`.
fn eth0_addresses(berth: &Berth, name: &str) -> Vec<String> {
    let mut addresses: Vec<String> = berth
        .attach(name, "ip -o addr show dev eth0")
        .lines()
        .filter(|line| line.contains("scope global"))
        .map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6");
            words.next().expect("an address after inet").to_owned()
        })
        .collect();
    addresses.sort();
    addresses
}

fn sorted(items: &[&str]) -> Vec<String> {
    let mut items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
    items.sort();
    items
}

/// A PATCH of a running container changes only what it names: an address
/// and a host name set inside the container survive a memory change, a
/// new `ipadd` replaces only the addresses berth set, and `null` removes
/// only the effect of the parameter it names.
#[test]
fn a_patch_touches_only_what_it_changes() {
    let berth = Berth::start();
    let name = unique_name("untouched");
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    let net = |host: u8| format!("10.{}.{}.{host}/24", bytes[0], bytes[1]);
    let id = berth.create(
        &name,
        Some(json!({ "hostname": "set-by-berth", "ipadd": net(2), "memsize": "64", "memsize_units": "M" })),
    );
    berth.act(&id, "start");
    berth.attach(
        &name,
        &format!("ip addr add {} dev eth0 && hostname custom", net(9)),
    );
    assert_eq!(eth0_addresses(&berth, &name), sorted(&[&net(2), &net(9)]));

    let job = berth.patch_parameters(&id, json!({ "memsize": "128" }));
    berth.job_done(&job);
    assert_eq!(
        eth0_addresses(&berth, &name),
        sorted(&[&net(2), &net(9)]),
        "a memory change touched the addresses: {:?}",
        berth.job_log(&job)
    );
    assert_eq!(berth.attach(&name, "hostname").trim(), "custom");

    // A new ipadd replaces the address berth set, and only that one.
    let job = berth.patch_parameters(&id, json!({ "ipadd": net(3) }));
    berth.job_done(&job);
    assert_eq!(eth0_addresses(&berth, &name), sorted(&[&net(3), &net(9)]));
    assert_eq!(berth.attach(&name, "hostname").trim(), "custom");

    // Lifting the memory limit leaves addresses and host name alone.
    let job = berth.patch_parameters(&id, json!({ "memsize": null, "memsize_units": null }));
    berth.job_done(&job);
    assert_eq!(eth0_addresses(&berth, &name), sorted(&[&net(3), &net(9)]));
    assert_eq!(berth.attach(&name, "hostname").trim(), "custom");

    // Removing ipadd removes berth's address, not the one set inside.
    let job = berth.patch_parameters(&id, json!({ "ipadd": null }));
    berth.job_done(&job);
    assert_eq!(eth0_addresses(&berth, &name), sorted(&[&net(9)]));
    assert_eq!(berth.attach(&name, "hostname").trim(), "custom");

    // A new host name is applied, and the address set inside stays.
    let job = berth.patch_parameters(&id, json!({ "hostname": "renamed" }));
    berth.job_done(&job);
    assert_eq!(berth.attach(&name, "hostname").trim(), "renamed");
    assert_eq!(eth0_addresses(&berth, &name), sorted(&[&net(9)]));
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The directories berth creates keep other users out (a root filesystem
/// holds setuid programs and device nodes), and berth warns at start about
/// one it finds open to them.
#[test]
fn berths_directories_are_closed_to_other_users() {
    let root = tempfile::Builder::new()
        .prefix("berth-modes-")
        .tempdir_in("/tmp")
        .unwrap();
    // An operator's existing template directory, open to everyone.
    let templates = root.path().join("open-templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::set_permissions(&templates, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(
        common::busybox_template(),
        templates.join("template1.tar.gz"),
    )
    .unwrap();
    let lxc_path = root.path().join("new/lxc");
    let mut berth = Berth::start_with(Options {
        env: vec![
            ("BERTH_TEMPLATE_DIR".into(), templates.display().to_string()),
            ("BERTH_LXC_PATH".into(), lxc_path.display().to_string()),
        ],
        templates: vec![],
    });
    assert_eq!(mode_of(&lxc_path) & 0o007, 0, "{}", lxc_path.display());
    let name = unique_name("modes");
    berth.create(&name, None);
    let dir = lxc_path.join(&name);
    assert_eq!(mode_of(&dir) & 0o007, 0, "{}", dir.display());

    let log = berth.log();
    assert!(
        log.lines()
            .any(|line| line.contains(&templates.display().to_string())
                && line.contains("other users")),
        "no warning about {}: {log}",
        templates.display()
    );
    assert!(
        !log.lines()
            .any(|line| line.contains(&lxc_path.display().to_string())
                && line.contains("other users")),
        "{log}"
    );

    // A container directory opened by hand is named at the next start.
    berth.kill();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    berth.launch();
    let log = berth.log();
    let warning = format!("{} is open to other users", dir.display());
    assert!(
        log.lines().any(|line| line.contains(&warning)),
        "no warning about {}: {log}",
        dir.display()
    );
}

/// What a crash leaves (a half-received upload, a half-filled template
/// cache entry) is gone once berth has started again.
#[test]
fn crash_leftovers_are_removed_at_start() {
    let mut berth = Berth::start();
    let name = unique_name("leftovers");
    berth.create(&name, None);
    berth.kill();

    let upload = berth.template_dir().join(".upload-0123abcd.partial");
    std::fs::write(&upload, vec![7u8; 4096]).unwrap();
    let cache = berth.lxc_path().join(".template-cache");
    let entry = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a template cache entry");
    let fill = entry.join(".partial-deadbeef");
    std::fs::create_dir_all(fill.join("usr/bin")).unwrap();
    std::fs::write(fill.join("usr/bin/half"), b"half").unwrap();

    berth.launch();
    assert!(!upload.exists(), "{} is still there", upload.display());
    assert!(!fill.exists(), "{} is still there", fill.display());
    // What is not a leftover stays.
    assert!(berth.template_dir().join("template1.tar.gz").exists());
    assert!(berth.lxc_path().join(&name).join("config").exists());
}

/// The files that decide whose a container is and how it starts reach the
/// disk (the file and the directory holding it) before the create is done,
/// so a power cut cannot leave an empty owner file behind. Seen through
/// strace attached to the running berth.
#[test]
fn ownership_and_configuration_files_are_synced() {
    let berth = Berth::start();
    let name = unique_name("synced");
    let trace = berth.root.path().join("strace.out");
    let mut strace = Command::new("strace")
        .args([
            "-f",
            "-y",
            "-qq",
            "-e",
            "trace=fsync,fdatasync",
            "-e",
            "signal=none",
            "-o",
        ])
        .arg(&trace)
        .args(["-p", &berth.pid().unwrap().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("strace is installed");
    // strace says nothing with -qq; wait until it traces by seeing the
    // fsync of a file the test makes berth write.
    let stderr = strace.stderr.take().unwrap();
    std::thread::spawn(move || for _ in BufReader::new(stderr).lines() {});
    berth.wait_until("strace to attach", Duration::from_secs(30), || {
        std::fs::read_to_string(format!("/proc/{}/status", berth.pid().unwrap()))
            .unwrap()
            .lines()
            .any(|line| line.starts_with("TracerPid:") && line.trim() != "TracerPid:\t0")
    });

    let id = berth.create(
        &name,
        Some(json!({ "hostname": "synced", "nameserver": "192.0.2.53" })),
    );
    let _ = id;
    let _ = Command::new("kill")
        .args(["-INT", &strace.id().to_string()])
        .status();
    let _ = strace.wait();
    let traced = std::fs::read_to_string(&trace).unwrap();
    let dir = berth.lxc_path().join(&name);
    let synced = |path: &Path| {
        let needle = format!("<{}", path.display());
        traced.lines().any(|line| {
            (line.contains("fsync(") || line.contains("fdatasync("))
                && line.contains(&needle)
                && line.contains(") = 0")
        })
    };
    for file in [
        "berth-owner",
        "config",
        "berth/hostname",
        "berth/resolv.conf",
    ] {
        let path = dir.join(file);
        // Written under a temporary name and renamed, or in place.
        let temporary = PathBuf::from(format!("{}.partial", path.display()));
        assert!(
            synced(&path) || synced(&temporary),
            "{} was not synced:\n{traced}",
            path.display()
        );
    }
    let directory_synced = traced
        .lines()
        .any(|line| line.contains(&format!("<{}>", dir.display())) && line.contains(") = 0"));
    assert!(
        directory_synced,
        "{} was not synced:\n{traced}",
        dir.display()
    );
}
