//! A PostgreSQL server of the test's own: `initdb` into a temporary
//! directory and `postgres` on a free loopback port, as the `postgres` user
//! when the test runs as root (the server refuses root) and as the test's
//! own user otherwise. Stopped and removed on drop. Needs Debian's
//! `postgresql` package (packaging/ci-deps.sh installs it); the package's
//! own cluster is not touched.
#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Postgres {
    port: u16,
    dir: tempfile::TempDir,
    /// `None` while stopped.
    server: Option<Child>,
    server_user: Option<(u32, u32)>,
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = server_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("berth-pg-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        let server_user = rustix::process::geteuid().is_root().then(postgres_user);
        if server_user.is_some() {
            // The server runs as `postgres`, which must reach its directory.
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        // Switched to in the child itself (not through runuser), so that the
        // child is the server and a signal to it reaches the server.
        let run = |program: PathBuf| {
            let mut command = Command::new(program);
            if let Some((uid, gid)) = server_user {
                command.uid(uid).gid(gid);
            }
            command.current_dir(dir.path());
            command
        };
        let initdb = run(bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            initdb.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let port = free_port();
        let mut postgres = Postgres {
            port,
            dir,
            server: None,
            server_user,
        };
        postgres.start_server();
        postgres
    }

    /// Starts the server (again, after `stop`) on its port and waits until
    /// it answers.
    pub fn start_server(&mut self) {
        assert!(self.server.is_none(), "PostgreSQL is running");
        let mut command = Command::new(server_bin_dir().join("postgres"));
        if let Some((uid, gid)) = self.server_user {
            command.uid(uid).gid(gid);
        }
        let dir = self.dir.path();
        let server = command
            .current_dir(dir)
            .arg("-D")
            .arg(dir.join("data"))
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(dir)
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                // A test server: durability is not what is tested.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(dir.join("server.log"))
                    .unwrap(),
            ))
            .spawn()
            .unwrap();
        self.server = Some(server);
        self.wait_until_ready();
    }

    /// Stops the server (a fast shutdown: clients are disconnected).
    pub fn stop_server(&mut self) {
        if let Some(mut server) = self.server.take() {
            // SIGINT: PostgreSQL's fast shutdown.
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_child(&server),
                rustix::process::Signal::INT,
            );
            let _ = server.wait();
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A new, empty database on this server; its URL.
    pub fn create_database(&self, name: &str) -> String {
        self.psql(&format!("CREATE DATABASE \"{name}\""));
        self.url(name)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs `sql` on database `postgres`; its output.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_on("postgres", sql)
    }

    pub fn psql_on(&self, database: &str, sql: &str) -> String {
        let output = Command::new(server_bin_dir().join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args([
                "-U",
                "postgres",
                "-d",
                database,
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "psql {sql:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = Command::new(server_bin_dir().join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .unwrap();
            if ready.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop_server();
    }
}

/// The uid and gid of the `postgres` user the package creates.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres"))
                .then(|| (fields[2].parse().unwrap(), fields[3].parse().unwrap()))
        })
        .expect("a postgres user (apt-get install postgresql)")
}

/// Debian's server binaries (`/usr/lib/postgresql/<version>/bin`), newest
/// version first.
fn server_bin_dir() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<_> = std::fs::read_dir(root)
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e}; install PostgreSQL (apt-get install postgresql)",
                root.display()
            )
        })
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .collect();
    versions.sort_unstable();
    let version = versions.last().expect("a PostgreSQL server version");
    root.join(version.to_string()).join("bin")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
