//! Commands and terminals inside a running container through `lxc-attach`:
//! the argument vector is passed as it is (no shell, no joining), and
//! whatever the attached command started is killed once berth stops
//! waiting for it, so nothing is left running inside the container.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustix::process::{Pid, Signal};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::command::{require, spawn_error};
use super::DriverError;

/// One command to run inside a container.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub argv: Vec<String>,
    /// The whole environment the command gets (`--clear-env`).
    pub env: Vec<(String, String)>,
    pub stdin: Vec<u8>,
    pub timeout: Duration,
    /// Bytes kept of each output stream; the rest is read and dropped.
    pub output_limit: usize,
}

/// One output stream, cut at the request's limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Captured {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// `lxc-attach`'s exit status, which is the command's (or 128 + the
    /// signal that ended it); `None` when the timeout killed it.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub stdout: Captured,
    pub stderr: Captured,
}

/// The `lxc-attach` command line for `argv` in container `name`.
fn attach_command(
    lxc_path: &Path,
    name: &str,
    env: &[(String, String)],
    argv: &[String],
) -> Command {
    let mut command = Command::new("lxc-attach");
    command
        .arg("-P")
        .arg(lxc_path)
        .arg("-n")
        .arg(name)
        .arg("--clear-env");
    for (key, value) in env {
        let mut pair = OsString::from(key);
        pair.push("=");
        pair.push(value);
        command.arg("--set-var").arg(pair);
    }
    command.arg("--").args(argv);
    command
}

/// Runs `request` in container `name` and waits for it, at most its
/// timeout. The command's process group (and, while `lxc-attach` runs,
/// every process below it) is killed when it ends or times out.
pub async fn exec(
    lxc_path: &Path,
    name: &str,
    request: &ExecRequest,
) -> Result<ExecOutput, DriverError> {
    require("lxc-attach")?;
    let mut command = attach_command(lxc_path, name, &request.env, &request.argv);
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: the attached command inherits it, which is how it
        // is found inside the container's PID namespace to be killed.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| spawn_error("lxc-attach", e))?;
    let reaper = Reaper::new(&child);
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = request.stdin.clone();
    let feeding = tokio::spawn(async move {
        // A command that does not read its input closes the pipe: that is
        // its business, not a failure.
        let _ = stdin.write_all(&input).await;
    });
    let stdout = Arc::new(Mutex::new(Captured::default()));
    let stderr = Arc::new(Mutex::new(Captured::default()));
    let mut readers = tokio::task::JoinSet::new();
    readers.spawn(capture(
        child.stdout.take().expect("stdout is piped"),
        request.output_limit,
        stdout.clone(),
    ));
    readers.spawn(capture(
        child.stderr.take().expect("stderr is piped"),
        request.output_limit,
        stderr.clone(),
    ));
    let waited = tokio::time::timeout(request.timeout, child.wait()).await;
    let exit_code = match waited {
        Ok(status) => {
            let status =
                status.map_err(|e| DriverError::io("waiting for lxc-attach".to_owned(), e))?;
            reaper.reaped();
            Some(exit_code(status))
        }
        Err(_) => None,
    };
    // Also after a normal end: what the command left in the background
    // would hold the output pipes open and this answer back for ever.
    reaper.kill();
    let _ = child.kill().await;
    reaper.reaped();
    feeding.abort();
    // A process that left the command's group (setsid) may still hold the
    // pipes: the answer then comes with what was read by then.
    let drained = tokio::time::timeout(OUTPUT_GRACE, async {
        while readers.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        readers.abort_all();
    }
    let taken = |captured: &Mutex<Captured>| {
        std::mem::take(&mut *captured.lock().unwrap_or_else(|e| e.into_inner()))
    };
    Ok(ExecOutput {
        exit_code,
        timed_out: exit_code.is_none(),
        stdout: taken(&stdout),
        stderr: taken(&stderr),
    })
}

/// How long the output may still flow once the command has ended.
const OUTPUT_GRACE: Duration = Duration::from_secs(5);

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(-1)
}

/// Reads `stream` to its end into `into`, keeping the first `limit` bytes.
async fn capture(mut stream: impl AsyncRead + Unpin, limit: usize, into: Arc<Mutex<Captured>>) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => {
                let mut captured = into.lock().unwrap_or_else(|e| e.into_inner());
                let room = limit.saturating_sub(captured.bytes.len());
                if read > room {
                    captured.truncated = true;
                }
                captured.bytes.extend_from_slice(&buffer[..read.min(room)]);
            }
        }
    }
}

/// Kills what an `lxc-attach` started: its process group, and while it
/// is not reaped yet (its PID cannot be someone else's), every process
/// below it. Armed until dropped, so a handler cut off midway kills too.
struct Reaper {
    leader: Option<u32>,
    reaped: std::sync::atomic::AtomicBool,
}

impl Reaper {
    fn new(child: &Child) -> Self {
        Reaper {
            leader: child.id(),
            reaped: Default::default(),
        }
    }

    fn reaped(&self) {
        self.reaped.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn kill(&self) {
        if let Some(leader) = self.leader {
            let reaped = self.reaped.load(std::sync::atomic::Ordering::SeqCst);
            kill_tree(leader, !reaped);
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One process as `/proc/PID/stat` tells it.
struct Process {
    pid: u32,
    /// 'Z' for a zombie, dead and only waiting to be reaped.
    state: char,
    parent: u32,
    group: u32,
    session: u32,
}

fn processes() -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command name may hold spaces and parentheses: the fields
            // start after the last ')'.
            let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
            Some(Process {
                pid,
                state: fields.next()?.chars().next()?,
                parent: fields.next()?.parse().ok()?,
                group: fields.next()?.parse().ok()?,
                session: fields.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// SIGKILLs every process in `leader`'s process group or session and, with
/// `descendants`, every process below `leader`. The kernel never hands out
/// a PID still used as a group or session id, so those are always ours.
fn kill_tree(leader: u32, descendants: bool) {
    // Again while something was found: a process may fork between the
    // scan and the kill.
    for _ in 0..5 {
        let all = processes();
        let mut targets: HashSet<u32> = all
            .iter()
            .filter(|p| p.state != 'Z' && (p.group == leader || p.session == leader))
            .map(|p| p.pid)
            .collect();
        if descendants {
            targets.insert(leader);
            loop {
                let before = targets.len();
                for process in &all {
                    if targets.contains(&process.parent) {
                        targets.insert(process.pid);
                    }
                }
                if targets.len() == before {
                    break;
                }
            }
            // The leader itself is only killed; the caller reaps it.
            if targets.len() == 1 && all.iter().all(|p| p.pid != leader) {
                return;
            }
        }
        let mut killed = false;
        for pid in targets {
            if let Some(pid) = Pid::from_raw(pid as i32) {
                killed |= rustix::process::kill_process(pid, Signal::KILL).is_ok();
            }
        }
        if !killed {
            return;
        }
    }
}

/// A login shell inside a container on a pseudo-terminal berth holds the
/// other end of. Dropping it kills the shell and everything below it.
pub struct Terminal {
    // Dropped first (fields drop in order): the tree is killed while
    // lxc-attach is not reaped yet, so its PID is still its own.
    reaper: Reaper,
    pty: AsyncFd<OwnedFd>,
    child: Child,
}

/// The environment of a terminal's shell.
const TERMINAL_ENV: [(&str, &str); 4] = [
    ("TERM", "xterm-256color"),
    ("HOME", "/root"),
    (
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ),
    ("LANG", "C.UTF-8"),
];

/// Opens a terminal of `cols`×`rows` running a login shell in `name`.
pub fn open_terminal(
    lxc_path: &Path,
    name: &str,
    cols: u16,
    rows: u16,
) -> Result<Terminal, DriverError> {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    require("lxc-attach")?;
    let pty_error = |e: rustix::io::Errno| DriverError::io("opening a pseudo-terminal", e.into());
    let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)
        .map_err(pty_error)?;
    grantpt(&master).map_err(pty_error)?;
    unlockpt(&master).map_err(pty_error)?;
    let path = ptsname(&master, Vec::new()).map_err(pty_error)?;
    let slave: OwnedFd = rustix::fs::open(
        path.as_c_str(),
        rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(pty_error)?;
    set_size(&master, cols, rows)?;
    // Raw from the start: lxc-attach makes it raw too, but only once it
    // runs, and what this end echoed before would read as the shell's.
    let mut modes = rustix::termios::tcgetattr(&slave).map_err(pty_error)?;
    modes.make_raw();
    rustix::termios::tcsetattr(&slave, rustix::termios::OptionalActions::Now, &modes)
        .map_err(pty_error)?;
    let env: Vec<(String, String)> = TERMINAL_ENV
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let argv = ["/bin/sh".to_owned(), "-l".to_owned()];
    let mut command = attach_command(lxc_path, name, &env, &argv);
    let copy = |fd: &OwnedFd| {
        fd.try_clone()
            .map_err(|e| DriverError::io("opening a pseudo-terminal", e))
    };
    command
        .stdin(Stdio::from(copy(&slave)?))
        .stdout(Stdio::from(copy(&slave)?))
        .stderr(Stdio::from(slave))
        .kill_on_drop(true);
    // SAFETY: only async-signal-safe system calls between fork and exec.
    unsafe {
        command.pre_exec(|| {
            // A session of its own with the terminal as its controlling
            // one: lxc-attach then opens a terminal inside the container
            // and passes window size changes (SIGWINCH) on to it.
            rustix::process::setsid()?;
            rustix::process::ioctl_tiocsctty(std::io::stdin())?;
            Ok(())
        });
    }
    let child = command.spawn().map_err(|e| spawn_error("lxc-attach", e))?;
    let reaper = Reaper::new(&child);
    rustix::fs::fcntl_setfl(&master, rustix::fs::OFlags::NONBLOCK).map_err(pty_error)?;
    // SAFETY: the AsyncFd owns `master`, an open descriptor, for its life.
    let pty = unsafe { AsyncFd::register(master) }
        .map_err(|e| DriverError::io("watching a pseudo-terminal", e.into()))?;
    Ok(Terminal { reaper, pty, child })
}

fn set_size(pty: impl AsFd, cols: u16, rows: u16) -> Result<(), DriverError> {
    let size = rustix::termios::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    rustix::termios::tcsetwinsize(pty, size)
        .map_err(|e| DriverError::io("resizing a pseudo-terminal", e.into()))
}

impl Terminal {
    /// What the shell wrote; 0 once it has ended.
    pub async fn read(&self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.pty.readable().await?;
            match ready.try_io(|fd| rustix::io::read(fd, &mut *buffer).map_err(io::Error::from)) {
                Ok(Ok(read)) => return Ok(read),
                // The other end closed: Linux says EIO where a pipe says EOF.
                Ok(Err(e)) if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => {
                    return Ok(0)
                }
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends keystrokes to the shell: as many of `data` as it takes now,
    /// once it takes any. Nothing is written when the future is dropped.
    pub async fn write_some(&self, data: &[u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.pty.writable().await?;
            match ready.try_io(|fd| rustix::io::write(fd, data).map_err(io::Error::from)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }

    pub fn resize(&self, cols: u16, rows: u16) -> Result<(), DriverError> {
        set_size(self.pty.get_ref(), cols, rows)
    }

    /// Ends the shell and everything it started, and reaps `lxc-attach`.
    pub async fn close(mut self) {
        self.reaper.kill();
        let _ = self.child.kill().await;
        self.reaper.reaped();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_past_the_limit_is_dropped_and_flagged() {
        let data: &[u8] = b"0123456789";
        let kept = Arc::new(Mutex::new(Captured::default()));
        capture(data, 4, kept.clone()).await;
        assert_eq!(
            *kept.lock().unwrap(),
            Captured {
                bytes: b"0123".to_vec(),
                truncated: true
            }
        );
        let all = Arc::new(Mutex::new(Captured::default()));
        capture(&b"0123"[..], 4, all.clone()).await;
        assert!(!all.lock().unwrap().truncated);
    }

    #[test]
    fn the_argument_vector_is_passed_as_it_is() {
        let command = attach_command(
            Path::new("/lxc"),
            "c1",
            &[("A".to_owned(), "x y".to_owned())],
            &["echo".to_owned(), "a b; rm -rf /".to_owned()],
        );
        let args: Vec<_> = command.as_std().get_args().collect();
        assert_eq!(
            args,
            [
                "-P",
                "/lxc",
                "-n",
                "c1",
                "--clear-env",
                "--set-var",
                "A=x y",
                "--",
                "echo",
                "a b; rm -rf /"
            ]
        );
    }

    #[tokio::test]
    async fn a_killed_tree_takes_its_background_children_along() {
        let mut child = Command::new("/bin/sh")
            .args(["-c", "sleep 1000 & sleep 1000; wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let leader = child.id().unwrap();
        // The children exist once the shell has forked them.
        while processes().iter().filter(|p| p.parent == leader).count() < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        kill_tree(leader, true);
        child.wait().await.unwrap();
        assert!(processes()
            .iter()
            .all(|p| p.group != leader || p.state == 'Z'));
    }
}
