//! The test harness: a real `berth serve` process on its own port, data
//! directory and LXC path, a real HTTP client, and clean-up of every
//! container it made, even when the test fails.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use reqwest::blocking::{Client, Response};
use reqwest::StatusCode;
use serde_json::Value;

/// The bridge test containers attach to; it has no uplink.
pub const TEST_BRIDGE: &str = "berthtest0";

/// The busybox template, built once per test binary from Debian's
/// busybox-static by the same script operators use.
pub fn busybox_template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("template-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("busybox.tar.gz");
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/make-busybox-template.sh");
        let status = Command::new("sh")
            .arg(script)
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "building the busybox template failed (is busybox-static installed?)"
        );
        out
    })
}

/// A template derived from the busybox one: its root filesystem unpacked,
/// changed by `change`, and packed again as an uncompressed `.tar`. Built
/// once per test binary (or reused from an earlier run) under the target dir.
pub fn derived_template(name: &str, change: impl FnOnce(&Path)) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("derived-templates");
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join(format!("{name}.tar"));
    if out.exists() {
        return out;
    }
    let work = tempfile::Builder::new()
        .prefix("berth-template-")
        .tempdir_in(&dir)
        .unwrap();
    let rootfs = work.path().join("rootfs");
    std::fs::create_dir(&rootfs).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xzf")
            .arg(busybox_template())
            .arg("-C")
            .arg(&rootfs),
    );
    change(&rootfs);
    let partial = work.path().join("template.tar");
    run_ok(
        Command::new("tar")
            .args(["--numeric-owner", "-cf"])
            .arg(&partial)
            .arg("-C")
            .arg(&rootfs)
            .arg("."),
    );
    // Another test binary may have won the race: either file is fine.
    std::fs::rename(&partial, &out).unwrap();
    out
}

/// The busybox template whose init is a shell loop. As PID 1 it ignores the
/// signal `lxc-stop` asks it to halt with, so a stop (and the delete of a
/// running container) waits the whole stop timeout, or until the test kills
/// the container with [`Berth::force_stop`]. That makes "a job is running
/// right now" a state the test holds for as long as it needs.
pub fn stubborn_template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        derived_template("stubborn-v1", |rootfs| {
            let init = rootfs.join("sbin/init");
            std::fs::remove_file(&init).unwrap();
            std::fs::write(&init, "#!/bin/sh\nwhile :; do sleep 1; done\n").unwrap();
            run_ok(Command::new("chmod").arg("0755").arg(&init));
        })
    })
}

/// The busybox template plus 300 MiB of incompressible data, so that
/// unpacking it takes long enough to be cut off in the middle.
pub fn big_template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        derived_template("big-v1", |rootfs| {
            let filler = std::fs::File::create(rootfs.join("filler")).unwrap();
            run_ok(
                Command::new("head")
                    .args(["-c", "300M", "/dev/urandom"])
                    .stdout(filler),
            );
        })
    })
}

/// Runs a host command the test needs, failing the test with its stderr.
pub fn run_ok(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub struct Berth {
    pub root: tempfile::TempDir,
    pub port: u16,
    pub client: Client,
    process: Option<Child>,
    extra_env: Vec<(String, String)>,
    /// A command berth is started through (`taskset -c 0`), empty for none.
    launch_prefix: Vec<String>,
}

/// Options for starting berth.
#[derive(Default)]
pub struct Options {
    pub env: Vec<(String, String)>,
    /// Template names to install as copies of the busybox template.
    pub templates: Vec<&'static str>,
}

impl Berth {
    /// berth with the busybox template installed as `template1` and `busybox`.
    pub fn start() -> Berth {
        Berth::start_with(Options {
            templates: vec!["template1", "busybox"],
            ..Options::default()
        })
    }

    /// berth with `template1` and these variables set.
    pub fn start_with_env(env: &[(&str, &str)]) -> Berth {
        Berth::start_with(Options {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            templates: vec!["template1"],
        })
    }

    pub fn start_with(options: Options) -> Berth {
        let root = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir_in("/tmp")
            .unwrap();
        std::fs::create_dir_all(root.path().join("data/templates")).unwrap();
        for name in &options.templates {
            std::fs::copy(
                busybox_template(),
                root.path().join(format!("data/templates/{name}.tar.gz")),
            )
            .unwrap();
        }
        let mut berth = Berth {
            root,
            port: 0,
            client: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            process: None,
            extra_env: options.env,
            launch_prefix: Vec::new(),
        };
        berth.launch();
        berth
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    pub fn lxc_path(&self) -> PathBuf {
        self.data_dir().join("lxc")
    }

    pub fn template_dir(&self) -> PathBuf {
        self.data_dir().join("templates")
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.path().join("berth.log")
    }

    /// Starts the berth process (again, after `kill`), on a new free port.
    pub fn launch(&mut self) {
        assert!(self.process.is_none(), "berth is already running");
        self.port = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let mut command = match self.launch_prefix.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(env!("CARGO_BIN_EXE_berth"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_berth")),
        };
        command
            .arg("serve")
            .current_dir(self.root.path())
            .env("ROCKET_ADDRESS", "127.0.0.1")
            .env("ROCKET_PORT", self.port.to_string())
            .env("ROCKET_CONFIG", self.root.path().join("no-Rocket.toml"))
            .env("ROCKET_LOG_LEVEL", "normal")
            .env("BERTH_DATA_DIR", self.data_dir())
            .env("BERTH_BRIDGE", TEST_BRIDGE)
            .env("BERTH_STOP_TIMEOUT_SECS", "5")
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (key, value) in &self.extra_env {
            command.env(key, value);
        }
        self.process = Some(command.spawn().expect("berth starts"));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.healthy() {
                return;
            }
            if let Some(status) = self.process.as_mut().unwrap().try_wait().unwrap() {
                panic!("berth exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "berth did not answer within 30 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether berth answers `/healthz`. Under TLS (`ROCKET_TLS` set) curl
    /// asks, as the tests' HTTP client speaks plain HTTP only.
    fn healthy(&self) -> bool {
        if self.tls() {
            let url = format!("https://127.0.0.1:{}/healthz", self.port);
            Command::new("curl")
                .args(["-skf", "-o", "/dev/null", &url])
                .status()
                .is_ok_and(|s| s.success())
        } else {
            self.client
                .get(self.url("/healthz"))
                .send()
                .is_ok_and(|r| r.status().is_success())
        }
    }

    pub fn tls(&self) -> bool {
        self.extra_env.iter().any(|(key, _)| key == "ROCKET_TLS")
    }

    /// Sends `Authorization: Bearer <token>` with every request from now on.
    pub fn authorize(&mut self, token: &str) {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        self.client = Client::builder()
            .timeout(Duration::from_secs(60))
            .default_headers(headers)
            .build()
            .unwrap();
    }

    /// Runs `berth ARGS…` against this berth's data directory (as an
    /// operator would beside the running service); returns stdout.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_berth"))
            .args(args)
            .current_dir(self.root.path())
            .env("ROCKET_CONFIG", self.root.path().join("no-Rocket.toml"))
            .env("BERTH_DATA_DIR", self.data_dir())
            .output()
            .unwrap()
    }

    /// `berth token create NAME`: the token is the last word on stdout.
    pub fn create_token(&self, name: &str) -> String {
        let output = self.cli(&["token", "create", name]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8(output.stdout).unwrap();
        stdout.split_whitespace().last().unwrap().to_owned()
    }

    /// Sets an environment variable for the next `launch` (after `kill` or
    /// `terminate`), replacing an earlier value.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.extra_env.retain(|(k, _)| k != key);
        self.extra_env.push((key.to_owned(), value.to_owned()));
    }

    /// Starts berth through `prefix` (a command that then runs berth, such as
    /// `taskset -c 0`) from the next `launch` on. The prefix must exec berth,
    /// so that `pid`, `kill` and `terminate` still reach berth itself.
    pub fn launch_through(&mut self, prefix: &[&str]) {
        self.launch_prefix = prefix.iter().map(|s| (*s).to_owned()).collect();
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, as systemd stops it; returns the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.process.take().expect("berth is running");
        unsafe_kill(child.id(), "TERM");
        child.wait().unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn get(&self, path: &str) -> (StatusCode, Value) {
        answer(self.client.get(self.url(path)).send().unwrap())
    }

    pub fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        answer(self.client.post(self.url(path)).json(body).send().unwrap())
    }

    pub fn post_empty(&self, path: &str) -> (StatusCode, Value) {
        answer(self.client.post(self.url(path)).send().unwrap())
    }

    pub fn patch(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        answer(self.client.patch(self.url(path)).json(body).send().unwrap())
    }

    pub fn delete(&self, path: &str) -> (StatusCode, Value) {
        answer(self.client.delete(self.url(path)).send().unwrap())
    }

    /// Sends raw bytes with a given content type.
    pub fn send_raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        answer(
            self.client
                .request(method, self.url(path))
                .header("Content-Type", content_type)
                .body(body)
                .send()
                .unwrap(),
        )
    }

    /// Polls the job until it has finished; panics after `timeout`.
    pub fn wait_job_for(&self, job_id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (status, job) = self.get(&format!("/v1/jobs/{job_id}"));
            assert_eq!(status, StatusCode::OK, "{job}");
            if matches!(
                job["status"].as_str(),
                Some("done" | "failed" | "cancelled")
            ) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {job_id} did not finish: {job}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn wait_job(&self, job_id: &str) -> Value {
        self.wait_job_for(job_id, Duration::from_secs(120))
    }

    /// Waits for a job and asserts it is done.
    pub fn job_done(&self, job_id: &str) -> Value {
        let job = self.wait_job(job_id);
        assert_eq!(job["status"], "done", "job failed: {job}\n{}", self.log());
        job
    }

    /// Creates a container (with optional parameters), waits for the create
    /// job and returns the container id.
    pub fn create(&self, name: &str, parameters: Option<Value>) -> String {
        let mut body = serde_json::json!({ "name": name, "ostemplate": "template1" });
        if let Some(parameters) = parameters {
            body["parameters"] = parameters;
        }
        let (status, answer) = self.post("/v1/containers/", &body);
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        self.job_done(answer["job_id"].as_str().unwrap());
        answer["container_id"].as_str().unwrap().to_owned()
    }

    /// Queues a lifecycle action and waits for it to be done.
    pub fn act(&self, id: &str, action: &str) -> Value {
        let (status, answer) = self.post_empty(&format!("/v1/containers/{id}/{action}"));
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        self.job_done(answer["job_id"].as_str().unwrap())
    }

    pub fn container(&self, id: &str) -> Value {
        let (status, answer) = self.get(&format!("/v1/containers/{id}"));
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["container"].clone()
    }

    /// The berth process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(Child::id)
    }

    /// Whether the berth process is still running.
    pub fn is_alive(&mut self) -> bool {
        match self.process.as_mut() {
            Some(child) => child.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// Makes the template file `source` available as template `name`.
    pub fn install_template(&self, name: &str, source: &Path) {
        let file_name = source.file_name().unwrap().to_str().unwrap();
        let suffix = &file_name[file_name.find(".tar").expect("a tar archive")..];
        std::os::unix::fs::symlink(source, self.template_dir().join(format!("{name}{suffix}")))
            .unwrap();
    }

    /// Queues the creation of a container from `template` and returns
    /// (container id, job id) without waiting.
    pub fn queue_create(
        &self,
        name: &str,
        template: &str,
        parameters: Option<Value>,
    ) -> (String, String) {
        let mut body = serde_json::json!({ "name": name, "ostemplate": template });
        if let Some(parameters) = parameters {
            body["parameters"] = parameters;
        }
        let (status, answer) = self.post("/v1/containers/", &body);
        assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
        (
            answer["container_id"].as_str().unwrap().to_owned(),
            answer["job_id"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a container from `template`, waits until it is done and
    /// returns its id.
    pub fn create_from(&self, name: &str, template: &str, parameters: Option<Value>) -> String {
        let (id, job) = self.queue_create(name, template, parameters);
        self.job_done(&job);
        id
    }

    /// Queues start, stop, restart (POST) or delete (DELETE); returns the job id.
    pub fn queue(&self, id: &str, action: &str) -> String {
        let (status, answer) = if action == "delete" {
            self.delete(&format!("/v1/containers/{id}"))
        } else {
            self.post_empty(&format!("/v1/containers/{id}/{action}"))
        };
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "{action}: {answer}\n{}",
            self.log()
        );
        answer["job_id"].as_str().unwrap().to_owned()
    }

    /// PATCHes parameters; returns the id of the job that applies them.
    pub fn patch_parameters(&self, id: &str, parameters: Value) -> String {
        let (status, answer) = self.patch(
            &format!("/v1/containers/{id}"),
            &serde_json::json!({ "parameters": parameters }),
        );
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["code"], 0, "{answer}");
        answer["job_id"].as_str().unwrap().to_owned()
    }

    pub fn job(&self, job_id: &str) -> Value {
        let (status, job) = self.get(&format!("/v1/jobs/{job_id}"));
        assert_eq!(status, StatusCode::OK, "{job}");
        job
    }

    /// `GET /v1/containers/`: the list.
    pub fn containers(&self) -> Value {
        let (status, answer) = self.get("/v1/containers/");
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["containers"].clone()
    }

    /// `GET /v1/jobs/`: the list.
    pub fn jobs(&self) -> Value {
        let (status, answer) = self.get("/v1/jobs/");
        assert_eq!(status, StatusCode::OK, "{answer}");
        answer["jobs"].clone()
    }

    /// The lines of a job's log (`GET /v1/jobs/:id/log`).
    pub fn job_log(&self, job_id: &str) -> Vec<String> {
        let (status, body) = self.get(&format!("/v1/jobs/{job_id}/log"));
        assert_eq!(status, StatusCode::OK, "{body}");
        body["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|line| line["text"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Polls `condition` until it holds; panics with `what` after `timeout`.
    pub fn wait_until(&self, what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !condition() {
            assert!(
                Instant::now() < deadline,
                "gave up waiting for {what}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the job is `running`.
    pub fn wait_running(&self, job_id: &str) {
        self.wait_until(
            &format!("job {job_id} to run"),
            Duration::from_secs(60),
            || {
                let job = self.job(job_id);
                assert!(
                    matches!(job["status"].as_str(), Some("queued" | "running")),
                    "job finished before it was seen running: {job}"
                );
                job["status"] == "running"
            },
        );
    }

    /// Kills a container's processes behind berth's back (`lxc-stop -k`),
    /// which also ends a stop that waits on a stubborn init.
    pub fn force_stop(&self, name: &str) {
        run_ok(
            Command::new("lxc-stop")
                .arg("-P")
                .arg(self.lxc_path())
                .args(["-n", name, "-k"]),
        );
    }

    /// The LXC config berth wrote for a container.
    pub fn lxc_config(&self, name: &str) -> String {
        std::fs::read_to_string(self.lxc_path().join(name).join("config")).unwrap()
    }

    /// The containers in the LXC path, by name, sorted.
    pub fn lxc_entries(&self) -> Vec<String> {
        // Dot entries are berth's own (the template cache), never containers.
        let mut names: Vec<String> = std::fs::read_dir(self.lxc_path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    /// Runs a command inside a running container.
    pub fn attach(&self, name: &str, command: &str) -> String {
        let output = Command::new("lxc-attach")
            .arg("-P")
            .arg(self.lxc_path())
            .args(["-n", name, "--", "/bin/sh", "-c", command])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "lxc-attach {command}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Reads a cgroup value of a running container.
    pub fn cgroup(&self, name: &str, key: &str) -> String {
        let output = Command::new("lxc-cgroup")
            .arg("-P")
            .arg(self.lxc_path())
            .args(["-n", name, key])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "lxc-cgroup {key}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// The state LXC reports: RUNNING, STOPPED, or None when it has no such container.
    pub fn lxc_state(&self, name: &str) -> Option<String> {
        if !self.lxc_path().join(name).join("config").exists() {
            return None;
        }
        let output = Command::new("lxc-info")
            .arg("-P")
            .arg(self.lxc_path())
            .args(["-n", name, "-s", "-H"])
            .output()
            .unwrap();
        Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }
}

/// The CPUs berth sees on this host (its upper bound for `cpus`).
pub fn host_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// The host's memory (MemTotal), the bound berth sets on `memsize`.
pub fn host_memory_bytes() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let line = meminfo
        .lines()
        .find(|line| line.starts_with("MemTotal:"))
        .expect("/proc/meminfo has MemTotal");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// The size of the file system holding `path`, as `stat -f` reports it
/// (total blocks times the fundamental block size).
pub fn file_system_bytes(path: &Path) -> u64 {
    let output = Command::new("stat")
        .args(["-f", "-c", "%b %S"])
        .arg(path)
        .output()
        .unwrap();
    assert!(output.status.success(), "stat -f {}", path.display());
    let text = String::from_utf8(output.stdout).unwrap();
    let (blocks, block_size) = text.trim().split_once(' ').unwrap();
    blocks.parse::<u64>().unwrap() * block_size.parse::<u64>().unwrap()
}

/// Asserts an API failure: the HTTP status, the documented code, and a body
/// of exactly `{"code", "message"}` with a non-empty message.
pub fn assert_error(answer: &(StatusCode, Value), status: u16, code: i64) {
    let (got_status, body) = answer;
    assert_eq!(got_status.as_u16(), status, "{body}");
    let object = body.as_object().expect("an object");
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["code", "message"], "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        !body["message"].as_str().unwrap().is_empty(),
        "empty message: {body}"
    );
}

/// Which cgroup files hold the limits on this host.
pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

impl Drop for Berth {
    fn drop(&mut self) {
        self.kill();
        // Remove every container this test made, whatever state it is in.
        let lxc_path = self.lxc_path();
        if let Ok(entries) = std::fs::read_dir(&lxc_path) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let _ = Command::new("lxc-stop")
                    .arg("-P")
                    .arg(&lxc_path)
                    .args(["-n", &name, "-k"])
                    .output();
                let _ = Command::new("lxc-destroy")
                    .arg("-P")
                    .arg(&lxc_path)
                    .args(["-n", &name])
                    .output();
            }
        }
    }
}

fn answer(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().unwrap();
    let value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text:?}"));
    (status, value)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn unsafe_kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// A container name unique to this test run.
pub fn unique_name(prefix: &str) -> String {
    let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    format!("{prefix}-{suffix}")
}

/// A browser-like client for the console over plain HTTP: keeps cookies,
/// sends this site's `Origin` with POSTs, follows no redirects (tests look
/// at them).
pub struct WebClient {
    http: Client,
    base: String,
    cookies: std::cell::RefCell<std::collections::BTreeMap<String, String>>,
}

impl WebClient {
    pub fn new(berth: &Berth) -> WebClient {
        WebClient {
            http: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            base: berth.url(""),
            cookies: Default::default(),
        }
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.borrow().get(name).cloned()
    }

    pub fn set_cookie(&self, name: &str, value: &str) {
        self.cookies
            .borrow_mut()
            .insert(name.to_owned(), value.to_owned());
    }

    pub fn forget_cookies(&self) {
        self.cookies.borrow_mut().clear();
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .borrow()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Remembers the response's cookies; an emptied or expired one is gone.
    fn keep_cookies(&self, response: &Response) {
        for header in response.headers().get_all("set-cookie") {
            let header = header.to_str().unwrap();
            let (pair, attributes) = header.split_once(';').unwrap_or((header, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let mut cookies = self.cookies.borrow_mut();
            if value.is_empty() || attributes.contains("Max-Age=0") {
                cookies.remove(name.trim());
            } else {
                cookies.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }

    pub fn get(&self, path: &str) -> Response {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("Accept", "text/html")
            .header("Cookie", self.cookie_header())
            .send()
            .unwrap();
        self.keep_cookies(&response);
        response
    }

    /// POSTs a form as a page of this site would (with its `Origin`).
    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.post_with(path, fields, &[("Origin", self.base.as_str())])
    }

    pub fn post_with(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Response {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Accept", "text/html")
            .header("Cookie", self.cookie_header())
            .form(fields);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().unwrap();
        self.keep_cookies(&response);
        response
    }

    /// The hidden CSRF field of the first form on the page at `path`.
    pub fn csrf(&self, path: &str) -> String {
        let response = self.get(path);
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let html = response.text().unwrap();
        let marker = "name=\"csrf\" value=\"";
        let start = html
            .find(marker)
            .unwrap_or_else(|| panic!("no CSRF field on {path}: {html}"))
            + marker.len();
        let value = html[start..][..html[start..].find('"').unwrap()].to_owned();
        assert!(value.len() >= 43, "a 256-bit secret: {value:?}");
        value
    }
}

/// Where a redirect points.
pub fn location(response: &Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The `/v1/events` stream, read line by line as curl would.
pub struct Events {
    reader: BufReader<Response>,
    /// berth sends a comment line every 30 s on an idle stream, so reads
    /// never time out: give up on the stream at this point instead.
    deadline: Instant,
}

impl Events {
    pub fn open(berth: &Berth) -> Events {
        let client = Client::builder().timeout(None).build().unwrap();
        let response = client.get(berth.url("/v1/events")).send().unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Events {
            reader: BufReader::new(response),
            deadline: Instant::now() + Duration::from_secs(120),
        }
    }

    /// The next event: its name and its data (JSON where it is JSON).
    pub fn next(&mut self) -> (String, Value) {
        let (mut name, mut data) = (String::new(), String::new());
        loop {
            let mut line = String::new();
            let read = self.reader.read_line(&mut line).expect("reading events");
            assert!(read > 0, "the event stream ended");
            assert!(
                Instant::now() < self.deadline,
                "the awaited events did not come"
            );
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if name.is_empty() && data.is_empty() {
                    continue;
                }
                let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                return (name, data);
            }
            if let Some(value) = line.strip_prefix("event:") {
                name = value.trim_start().to_owned();
            } else if let Some(value) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value.strip_prefix(' ').unwrap_or(value));
            }
            // Comments (":") and other fields carry nothing for these tests.
        }
    }

    /// Reads job events for `job_id` until it has finished; returns them all.
    pub fn job_until_finished(&mut self, job_id: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        loop {
            let (name, data) = self.next();
            assert_ne!(name, "lagged", "the test fell behind the stream");
            if name == "job" && data["id"] == job_id {
                seen.push(data.clone());
                if matches!(
                    data["status"].as_str(),
                    Some("done" | "failed" | "cancelled")
                ) {
                    return seen;
                }
            }
        }
    }
}
