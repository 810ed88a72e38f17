//! The .deb on a real systemd: builds the package from the berth binary
//! cargo just built, boots a Debian 12 rootfs with systemd as an LXC
//! container, installs the package there with apt, and checks what an
//! operator relies on: the service is enabled and active, says READY and
//! keeps the watchdog fed, answers on 127.0.0.1:5000, logs fit the
//! journal, restart/upgrade/stop end cleanly, and purge removes berth's
//! files but keeps containers and templates, wherever they are configured.
//!
//! The rootfs is made once by debootstrap (about a minute, from the Debian
//! mirror debootstrap uses, or `BERTH_TEST_DEBIAN_MIRROR`) and cached as a
//! tarball in /var/cache/berth-test. It already holds every package the
//! .deb depends on, so `apt-get install ./berth_*.deb` inside the container
//! resolves from what is installed: the container has no network at all
//! (its own network namespace with only a loopback), which also keeps its
//! port 5000 apart from the host's.
//!
//! The package is built with `cargo deb --no-build` around the debug binary
//! of this very test run (the release build would add minutes and package
//! the same code); set `BERTH_TEST_DEB` to a .deb to test that one instead.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

/// Packages debootstrap adds to minbase: systemd to boot, curl to ask the
/// API, and everything the .deb depends on.
const INCLUDE: &str = "systemd,systemd-sysv,dbus,curl,lxc,e2fsprogs,iproute2,tar,xz-utils,zstd";
const SUITE: &str = "bookworm";
/// Bump when the rootfs recipe changes, so that caches are remade.
const ROOTFS_RECIPE: u32 = 2;
const CACHE_DIR: &str = "/var/cache/berth-test";
const API: &str = "http://127.0.0.1:5000/v1/containers/";

#[test]
fn the_deb_runs_berth_under_systemd() {
    if !is_root() {
        // Written past the test harness's capture so that a skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED the_deb_runs_berth_under_systemd: needs root (debootstrap, LXC, dpkg)"
        );
        return;
    }
    require_tools();
    let clock = Clock::start();

    let deb = match std::env::var_os("BERTH_TEST_DEB") {
        Some(path) => PathBuf::from(path),
        None => build_deb(),
    };
    clock.lap("package built");
    let tarball = cached_rootfs();
    clock.lap("rootfs ready");
    let ct = Container::boot(&tarball);
    clock.lap("systemd booted");

    // Install as an operator would, with apt and nothing from the network.
    let deb_name = deb.file_name().unwrap().to_str().unwrap().to_owned();
    std::fs::copy(&deb, ct.rootfs().join("root").join(&deb_name)).unwrap();
    let install = ct.ok(&format!("cd /root && apt-get install -y ./{deb_name}"));
    assert!(install.contains("Setting up berth"), "{install}");
    clock.lap("installed");

    // Enabled, started, Type=notify: systemd only calls it active after
    // READY=1, which berth sends once the listener and the runner are up.
    assert_eq!(ct.ok("systemctl is-enabled berth").trim(), "enabled");
    assert_eq!(ct.ok("systemctl is-active berth").trim(), "active");
    let unit = ct.show(&[
        "Type",
        "NotifyAccess",
        "WatchdogUSec",
        "Restart",
        "StatusText",
        "KillMode",
    ]);
    assert_eq!(unit["Type"], "notify");
    assert_eq!(unit["NotifyAccess"], "main");
    assert_eq!(unit["WatchdogUSec"], "30s");
    assert_eq!(unit["Restart"], "on-failure");
    assert_eq!(unit["KillMode"], "mixed");
    assert_eq!(unit["StatusText"], "0 containers, 0 jobs running, 0 queued");
    let verify = ct.run("systemd-analyze verify berth.service");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // The API answers inside, on the packaged address, to a token made
    // the way an operator makes one; without it, 401.
    let refused = ct.ok(&format!("curl -sS -o /dev/null -w '%{{http_code}}' {API}"));
    assert_eq!(
        refused.trim(),
        "401",
        "the packaged config must require tokens"
    );
    let created = ct.ok("berth token create package-test");
    let token = created.split_whitespace().last().unwrap().to_owned();
    let authorized = format!("curl -fsS -H 'Authorization: Bearer {token}' {API}");
    let answer: serde_json::Value = serde_json::from_str(&ct.ok(&authorized)).unwrap();
    assert_eq!(answer["message"], "success", "{answer}");
    assert!(answer["containers"].is_array(), "{answer}");
    clock.lap("unit and API checked");

    // A short watchdog (drop-in, as an operator would) must not fire over
    // several intervals: berth's checks pass and its pings arrive.
    ct.ok("mkdir -p /etc/systemd/system/berth.service.d && \
           printf '[Service]\\nWatchdogSec=2s\\n' > /etc/systemd/system/berth.service.d/test-watchdog.conf && \
           systemctl daemon-reload && systemctl restart berth");
    let before = ct.show(&["WatchdogUSec", "MainPID", "NRestarts"]);
    assert_eq!(before["WatchdogUSec"], "2s");
    std::thread::sleep(Duration::from_secs(7));
    let after = ct.show(&["MainPID", "NRestarts", "ActiveState"]);
    assert_eq!(after["ActiveState"], "active");
    assert_eq!(
        after["MainPID"],
        before["MainPID"],
        "berth was restarted: {}",
        ct.journal()
    );
    assert_eq!(after["NRestarts"], "0");
    assert!(
        !ct.journal().contains("Watchdog timeout"),
        "{}",
        ct.journal()
    );

    // And the watchdog is armed: a berth that stops answering (frozen) is
    // killed and restarted by systemd.
    ct.ok(&format!("kill -STOP {}", after["MainPID"]));
    let restarted = wait_for(Duration::from_secs(15), || {
        let now = ct.show(&["MainPID", "NRestarts", "ActiveState"]);
        (now["NRestarts"] == "1" && now["ActiveState"] == "active").then_some(now)
    })
    .unwrap_or_else(|| {
        panic!(
            "the watchdog did not restart a frozen berth: {}",
            ct.journal()
        )
    });
    assert_ne!(restarted["MainPID"], after["MainPID"]);
    assert!(ct.journal().contains("Watchdog timeout (limit 2s)"));
    clock.lap("watchdog checked");

    // Restart ends the old process cleanly.
    ct.ok("rm -r /etc/systemd/system/berth.service.d && systemctl daemon-reload && systemctl restart berth");
    let unit = ct.show(&["Result", "ActiveState", "WatchdogUSec"]);
    assert_eq!(unit["Result"], "success");
    assert_eq!(unit["ActiveState"], "active");
    assert_eq!(unit["WatchdogUSec"], "30s");

    // Logs fit the journal: no colours, priorities that journalctl -p
    // filters on, one line per request.
    let log = ct.journal();
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escapes in the journal: {log:?}"
    );
    let warnings = ct.ok("journalctl -u berth -p warning -o cat --no-pager");
    assert!(warnings.contains("Received SIGTERM"), "{warnings}");
    assert!(
        !warnings.contains("systemd: ready"),
        "info filed as a warning: {warnings}"
    );
    assert!(log.contains("GET /v1/containers/ 200 OK"), "{log}");

    // An upgrade (here: the same package again) keeps the operator's edits
    // to the conffile and restarts a running berth.
    ct.ok("echo '# kept by the operator' >> /etc/berth/berth.toml");
    let pid = ct.show(&["MainPID"])["MainPID"].clone();
    ct.ok(&format!(
        "cd /root && apt-get install -y --reinstall ./{deb_name}"
    ));
    let unit = ct.show(&["MainPID", "ActiveState"]);
    assert_eq!(unit["ActiveState"], "active");
    assert_ne!(unit["MainPID"], pid, "the upgrade did not restart berth");
    assert!(ct
        .ok("cat /etc/berth/berth.toml")
        .contains("# kept by the operator"));
    ct.ok(&authorized);
    clock.lap("restart and upgrade checked");

    // SIGTERM is a graceful stop: berth itself exits with status 0.
    ct.ok("systemctl stop berth");
    let unit = ct.show(&["Result", "ActiveState", "ExecMainCode", "ExecMainStatus"]);
    assert_eq!(unit["Result"], "success");
    assert_eq!(unit["ActiveState"], "inactive");
    assert_eq!(
        unit["ExecMainCode"], "1",
        "berth did not exit by itself (1 = CLD_EXITED)"
    );
    assert_eq!(unit["ExecMainStatus"], "0");
    assert!(ct.journal().contains("Graceful shutdown completed"));

    // An upgrade leaves a stopped berth stopped.
    ct.ok(&format!(
        "cd /root && apt-get install -y --reinstall ./{deb_name}"
    ));
    assert_eq!(ct.show(&["ActiveState"])["ActiveState"], "inactive");

    // Purge stops a running berth, removes the unit, the configuration,
    // the database and the template cache, and keeps (and names) the
    // containers and templates wherever the operator put them: here the
    // containers live beside the database, in /var/lib/berth/containers
    // (set in berth.toml), and the templates in /srv/berth-templates (set
    // in the unit's environment).
    ct.ok(
        "sed -i 's|^lxc_path = .*|lxc_path = \"/var/lib/berth/containers\"|' /etc/berth/berth.toml && \
         mkdir -p /etc/systemd/system/berth.service.d /srv/berth-templates && \
         printf '[Service]\\nEnvironment=BERTH_TEMPLATE_DIR=/srv/berth-templates\\n' \
           > /etc/systemd/system/berth.service.d/templates.conf && \
         systemctl daemon-reload",
    );
    std::fs::copy(
        common::busybox_template(),
        ct.rootfs().join("srv/berth-templates/template1.tar.gz"),
    )
    .unwrap();
    ct.ok("systemctl start berth");
    let queued: serde_json::Value = serde_json::from_str(&ct.ok(&format!(
        "curl -fsS -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \
         -d '{{\"name\": \"web1\", \"ostemplate\": \"template1\"}}' {API}"
    )))
    .unwrap();
    let job_id = queued["job_id"].as_str().unwrap();
    let job: serde_json::Value = serde_json::from_str(&ct.ok(&format!(
        "curl -fsS -H 'Authorization: Bearer {token}' \
         'http://127.0.0.1:5000/v1/jobs/{job_id}/wait?timeout=60'"
    )))
    .unwrap();
    assert_eq!(job["status"], "done", "{job}\n{}", ct.journal());
    let web1 = "/var/lib/berth/containers/web1";
    ct.ok(&format!(
        "test -f {web1}/config && test -x {web1}/rootfs/bin/busybox && \
         test -d /var/lib/berth/containers/.template-cache && test -f /var/lib/berth/berth.db && \
         test -f /var/lib/berth/berth.db.tokens-changed"
    ));
    let purge = ct.ok("apt-get purge -y berth 2>&1");
    ct.ok("! grep -qx berth /proc/[0-9]*/comm");
    assert!(
        purge.contains("/srv/berth-templates") && purge.contains("/var/lib/berth/containers"),
        "{purge}"
    );
    assert_eq!(ct.show(&["LoadState"])["LoadState"], "not-found");
    ct.ok("test ! -e /lib/systemd/system/berth.service");
    ct.ok("test ! -e /etc/systemd/system/multi-user.target.wants/berth.service");
    ct.ok("test ! -e /etc/berth && test ! -e /usr/bin/berth");
    ct.ok(
        "test ! -e /var/lib/berth/berth.db && test ! -e /var/lib/berth/berth.db-wal && \
           test ! -e /var/lib/berth/berth.db-shm && test ! -e /var/lib/berth/berth.db.tokens-changed",
    );
    // The cache is berth's own; so are the empty default directories.
    ct.ok("test ! -e /var/lib/berth/containers/.template-cache && \
           test ! -e /var/lib/berth/lxc && test ! -e /var/lib/berth/templates");
    ct.ok(&format!(
        "test -f /srv/berth-templates/template1.tar.gz && \
         test -f {web1}/config && test -x {web1}/rootfs/bin/busybox"
    ));
    clock.lap("stop and purge checked");
}

fn is_root() -> bool {
    let id = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&id.stdout).trim() == "0"
}

/// Fails (not skips) when a tool is missing: CI must have them all.
fn require_tools() {
    for tool in ["debootstrap", "lxc-start", "lxc-attach", "zstd", "timeout"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(found, "{tool} is missing: run packaging/ci-deps.sh");
    }
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `cargo deb --no-build` around the binary cargo built for this test.
fn build_deb() -> PathBuf {
    let binary = Path::new(env!("CARGO_BIN_EXE_berth"));
    // <target>/debug/berth: cargo-deb finds it under the dev profile.
    let target_dir = binary.parent().unwrap().parent().unwrap();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deb");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "deb",
            "--no-build",
            "--profile",
            "dev",
            "--fast",
            "--quiet",
            "--output",
        ])
        .arg(&out)
        .arg("--manifest-path")
        .arg(manifest_dir().join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cargo deb failed (is cargo-deb installed? run packaging/ci-deps.sh): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let deb = std::fs::read_dir(&out)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|e| e == "deb"))
        .expect("cargo deb wrote a .deb");
    deb
}

/// The rootfs tarball, made by debootstrap on the first run.
fn cached_rootfs() -> PathBuf {
    let tarball =
        Path::new(CACHE_DIR).join(format!("{SUITE}-minbase-systemd-v{ROOTFS_RECIPE}.tar.zst"));
    if tarball.exists() {
        return tarball;
    }
    std::fs::create_dir_all(CACHE_DIR).unwrap();
    let work = Scratch(Path::new(CACHE_DIR).join(format!("build-{}", std::process::id())));
    let rootfs = work.0.join("rootfs");
    let mut debootstrap = Command::new("debootstrap");
    debootstrap
        .args(["--variant=minbase", &format!("--include={INCLUDE}"), SUITE])
        .arg(&rootfs);
    if let Some(mirror) = std::env::var_os("BERTH_TEST_DEBIAN_MIRROR") {
        debootstrap.arg(mirror);
    }
    run_host(&mut debootstrap, "debootstrap");
    // Make the image a quiet test host: LXC's own bridge service has no
    // business in it, and the downloaded .debs are not needed any more.
    std::os::unix::fs::symlink(
        "/dev/null",
        rootfs.join("etc/systemd/system/lxc-net.service"),
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/hostname"), "berth-pkgtest\n").unwrap();
    run_host(
        Command::new("chroot")
            .arg(&rootfs)
            .args(["apt-get", "clean"]),
        "apt-get clean",
    );
    let partial = work.0.join("rootfs.tar.zst");
    run_host(
        Command::new("tar")
            .args([
                "--zstd",
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                "-cf",
            ])
            .arg(&partial)
            .arg("-C")
            .arg(&rootfs)
            .arg("."),
        "tar",
    );
    std::fs::rename(&partial, &tarball).unwrap();
    // Tarballs of earlier recipes are dead weight (about 100 MB each).
    for entry in std::fs::read_dir(CACHE_DIR).unwrap().flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path != tarball && name.starts_with(SUITE) && name.ends_with(".tar.zst") {
            let _ = std::fs::remove_file(path);
        }
    }
    tarball
}

fn run_host(command: &mut Command, what: &str) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A directory removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Debian rootfs booted with systemd as a privileged LXC container, with
/// a network namespace of its own holding only a loopback. Stopped and
/// removed when dropped, also when the test fails.
struct Container {
    lxc_path: PathBuf,
    name: String,
}

impl Container {
    fn boot(tarball: &Path) -> Container {
        let lxc_path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pkgtest-lxc");
        remove_leftovers(&lxc_path);
        let ct = Container {
            lxc_path,
            name: format!("berth-pkgtest-{}", std::process::id()),
        };
        // On a tmpfs: unpacking is quick, and removing 9000 files from this
        // disk took 20 s where unmounting takes none.
        let dir = ct.dir();
        std::fs::create_dir_all(&dir).unwrap();
        run_host(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=2g,mode=0755", "berth-pkgtest"])
                .arg(&dir),
            "mounting a tmpfs",
        );
        let rootfs = ct.rootfs();
        std::fs::create_dir_all(&rootfs).unwrap();
        let unpacked = Instant::now();
        run_host(
            Command::new("tar")
                .args([
                    "--zstd",
                    "--numeric-owner",
                    "--xattrs",
                    "--xattrs-include=*",
                    "-xf",
                ])
                .arg(tarball)
                .arg("-C")
                .arg(&rootfs),
            "unpacking the rootfs",
        );
        eprintln!(
            "rootfs unpacked in {:.1} s",
            unpacked.elapsed().as_secs_f32()
        );
        // lxc.service (autostart of LXC's own containers) waits 30 s for a
        // bridge that lxc-net does not make inside a container; berth does
        // not need it.
        std::os::unix::fs::symlink("/dev/null", rootfs.join("etc/systemd/system/lxc.service"))
            .unwrap();
        let config = format!(
            "lxc.uts.name = berth-pkgtest\n\
             lxc.rootfs.path = dir:{rootfs}\n\
             lxc.init.cmd = /sbin/init\n\
             lxc.mount.auto = cgroup:mixed proc:mixed sys:mixed\n\
             lxc.autodev = 1\n\
             lxc.net.0.type = empty\n\
             lxc.tty.max = 0\n\
             lxc.pty.max = 16\n\
             lxc.log.file = {dir}/lxc.log\n\
             lxc.console.logfile = {dir}/console.log\n",
            rootfs = rootfs.display(),
            dir = dir.display(),
        );
        std::fs::write(dir.join("config"), config).unwrap();
        run_host(
            Command::new("lxc-start")
                .arg("-P")
                .arg(&ct.lxc_path)
                .args(["-n", &ct.name]),
            "lxc-start",
        );
        // systemctl cannot connect until systemd has set up its socket.
        let state = wait_for(Duration::from_secs(60), || {
            let output = ct.run("systemctl is-system-running --wait");
            let state = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            matches!(state.as_str(), "running" | "degraded").then_some(state)
        })
        .unwrap_or_else(|| {
            panic!(
                "systemd did not boot in the container: {}",
                std::fs::read_to_string(dir.join("console.log")).unwrap_or_default()
            )
        });
        if state == "degraded" {
            eprintln!(
                "container degraded: {}",
                ct.ok("systemctl --failed --no-legend")
            );
        }
        ct
    }

    fn dir(&self) -> PathBuf {
        self.lxc_path.join(&self.name)
    }

    fn rootfs(&self) -> PathBuf {
        self.dir().join("rootfs")
    }

    /// Runs a shell command inside, with a clean environment and a bound.
    fn run(&self, script: &str) -> Output {
        Command::new("timeout")
            .arg("120")
            .arg("lxc-attach")
            .arg("-P")
            .arg(&self.lxc_path)
            .args(["-n", &self.name, "--clear-env"])
            .args(["--set-var", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
            .args(["--set-var", "DEBIAN_FRONTEND=noninteractive"])
            .args(["--", "/bin/sh", "-c", script])
            .output()
            .unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, script: &str) -> String {
        let output = self.run(script);
        assert!(
            output.status.success(),
            "`{script}` failed ({}):\n{}{}\n--- journal:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.journal()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Properties of berth.service, as `systemctl show` gives them.
    fn show(&self, properties: &[&str]) -> HashMap<String, String> {
        let output = self.ok(&format!("systemctl show berth -p {}", properties.join(",")));
        output
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    }

    /// What systemd and berth logged about the unit (not via `ok`, which
    /// calls it on failure).
    fn journal(&self) -> String {
        let output = self.run("journalctl -u berth -o cat --no-pager");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let started = Instant::now();
        destroy(&self.lxc_path, &self.name);
        eprintln!(
            "container removed in {:.1} s",
            started.elapsed().as_secs_f32()
        );
    }
}

fn destroy(lxc_path: &Path, name: &str) {
    let _ = Command::new("lxc-stop")
        .arg("-P")
        .arg(lxc_path)
        .args(["-n", name, "-k"])
        .output();
    let dir = lxc_path.join(name);
    let _ = Command::new("umount").arg(&dir).output();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Containers a killed earlier run of this test left behind.
fn remove_leftovers(lxc_path: &Path) {
    if let Ok(entries) = std::fs::read_dir(lxc_path) {
        for entry in entries.flatten() {
            destroy(lxc_path, &entry.file_name().to_string_lossy());
        }
    }
    std::fs::create_dir_all(lxc_path).unwrap();
}

fn wait_for<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Prints how long each phase took (shown with --nocapture or on failure).
struct Clock {
    start: Instant,
}

impl Clock {
    fn start() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }

    fn lap(&self, what: &str) {
        eprintln!("[{:6.1} s] {what}", self.start.elapsed().as_secs_f32());
    }
}
