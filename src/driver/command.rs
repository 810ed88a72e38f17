//! Running the host tools the driver relies on, with errors that name the
//! package to install and keep the tool's own words.

use std::ffi::OsStr;
use std::process::{Output, Stdio};

use tokio::process::Command;

use super::{DriverError, StepLog};

/// The Debian package that ships a tool, for the "install it" message.
pub fn package_of(tool: &str) -> &'static str {
    match tool {
        t if t.starts_with("lxc-") => "lxc",
        "mkfs.ext4" | "e2fsck" | "resize2fs" | "dumpe2fs" => "e2fsprogs",
        "ip" => "iproute2",
        "tar" => "tar",
        "gzip" => "gzip",
        "xz" => "xz-utils",
        "zstd" => "zstd",
        "hostname" => "hostname",
        "btrfs" => "btrfs-progs",
        _ => "the one that provides it",
    }
}

/// Whether `tool` can be found on PATH.
pub fn is_installed(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false)
}

pub fn require(tool: &str) -> Result<(), DriverError> {
    if is_installed(tool) {
        Ok(())
    } else {
        Err(DriverError::ToolMissing {
            tool: tool.to_owned(),
            package: package_of(tool),
        })
    }
}

fn render(tool: &str, args: &[&OsStr]) -> String {
    let mut line = tool.to_owned();
    for arg in args {
        line.push(' ');
        line.push_str(&arg.to_string_lossy());
    }
    line
}

/// What a tool printed, trimmed to what fits in a job's error.
pub fn tail_of(output: &[u8]) -> String {
    let text = String::from_utf8_lossy(output);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let start = lines.len().saturating_sub(8);
    lines[start..].join(" | ")
}

/// The nice value of the work that builds root filesystems (unpacking,
/// copying from the template cache). On a small host a burst of creates
/// would otherwise take the CPUs from the API and the console: at nice 10 a
/// busy core gives the server's threads about nine tenths of its time, and
/// an idle host runs the work at full speed all the same.
const BACKGROUND_NICE: i32 = 10;

/// Lowers the calling thread to `BACKGROUND_NICE` (on Linux the nice value
/// belongs to a thread, and children inherit it). Best effort: running at
/// normal priority is no failure.
pub fn lower_thread_priority() -> std::io::Result<()> {
    rustix::process::setpriority_process(None, BACKGROUND_NICE).map_err(Into::into)
}

/// Makes `command` start at background priority: for tools that only turn
/// a template into files, never for `lxc-start`, whose container would
/// inherit it.
pub fn at_background_priority(command: &mut Command) -> &mut Command {
    // SAFETY: the hook runs in the child between fork and exec, and only
    // makes one system call (setpriority), which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            let _ = lower_thread_priority();
            Ok(())
        })
    }
}

/// Runs `tool args…` to completion, logging the command line. A non-zero
/// exit is an error carrying the tool's output.
pub async fn run(
    tool: &str,
    args: &[&OsStr],
    log: Option<&dyn StepLog>,
) -> Result<Output, DriverError> {
    let output = run_unchecked(tool, args, log).await?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(failure(tool, args, &output))
    }
}

/// Runs the tool and returns its output whatever its exit status.
pub async fn run_unchecked(
    tool: &str,
    args: &[&OsStr],
    log: Option<&dyn StepLog>,
) -> Result<Output, DriverError> {
    spawn_and_wait(tool, args, log, true).await
}

/// Like `run`, for a tool that must never be killed half-way (resize2fs,
/// e2fsck): dropping the future leaves the tool running to its end.
pub async fn run_to_end(
    tool: &str,
    args: &[&OsStr],
    log: Option<&dyn StepLog>,
) -> Result<Output, DriverError> {
    let output = run_unchecked_to_end(tool, args, log).await?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(failure(tool, args, &output))
    }
}

/// Like `run_unchecked`, for a tool that must never be killed half-way.
pub async fn run_unchecked_to_end(
    tool: &str,
    args: &[&OsStr],
    log: Option<&dyn StepLog>,
) -> Result<Output, DriverError> {
    spawn_and_wait(tool, args, log, false).await
}

async fn spawn_and_wait(
    tool: &str,
    args: &[&OsStr],
    log: Option<&dyn StepLog>,
    kill_on_drop: bool,
) -> Result<Output, DriverError> {
    if let Some(log) = log {
        log.step(format!("$ {}", render(tool, args)));
    }
    Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(kill_on_drop)
        .output()
        .await
        .map_err(|e| spawn_error(tool, e))
}

/// A tool fed through its standard input (tar unpacking a stream), its
/// error output kept for the failure message.
pub struct Fed {
    child: tokio::process::Child,
    stderr: tokio::task::JoinHandle<Vec<u8>>,
}

/// Starts `command` (of `tool`) with its input piped to the caller, its
/// output discarded and its errors kept; killed if dropped.
pub fn spawn_fed(
    command: &mut Command,
    tool: &str,
) -> Result<(Fed, tokio::process::ChildStdin), DriverError> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| spawn_error(tool, e))?;
    let stdin = child.stdin.take().expect("stdin is piped");
    let mut errors = child.stderr.take().expect("stderr is piped");
    let stderr = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = tokio::io::AsyncReadExt::read_to_end(&mut errors, &mut text).await;
        text
    });
    Ok((Fed { child, stderr }, stdin))
}

impl Fed {
    /// Stops the tool half-way (what it wrote is the caller's to remove).
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    /// Waits for the tool (its input closed); a failure carries its words.
    pub async fn finish(mut self, tool: &str, args: &[&OsStr]) -> Result<(), DriverError> {
        let status = self
            .child
            .wait()
            .await
            .map_err(|e| DriverError::io(format!("waiting for {tool}"), e))?;
        let stderr = self.stderr.await.unwrap_or_default();
        if status.success() {
            return Ok(());
        }
        let output = Output {
            status,
            stdout: Vec::new(),
            stderr,
        };
        Err(failure(tool, args, &output))
    }
}

pub fn spawn_error(tool: &str, error: std::io::Error) -> DriverError {
    if error.kind() == std::io::ErrorKind::NotFound {
        DriverError::ToolMissing {
            tool: tool.to_owned(),
            package: package_of(tool),
        }
    } else {
        DriverError::io(format!("cannot run {tool}"), error)
    }
}

pub fn failure(tool: &str, args: &[&OsStr], output: &Output) -> DriverError {
    let mut text = tail_of(&output.stderr);
    if text.is_empty() {
        text = tail_of(&output.stdout);
    }
    if text.is_empty() {
        text = "no output".into();
    }
    DriverError::ToolFailed {
        command: render(tool, args),
        status: output.status.to_string(),
        output: text,
    }
}

/// Shorthand for building argument lists of mixed strings and paths.
#[macro_export]
macro_rules! args {
    ($($arg:expr),* $(,)?) => {
        &[$(::std::convert::AsRef::<::std::ffi::OsStr>::as_ref(&$arg)),*]
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn background_priority_is_the_calling_threads_alone() {
        let before = rustix::process::getpriority_process(None).unwrap();
        let lowered = std::thread::spawn(|| {
            lower_thread_priority().unwrap();
            rustix::process::getpriority_process(None).unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(lowered, BACKGROUND_NICE);
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), before);
    }

    #[tokio::test]
    async fn tools_started_in_the_background_inherit_it() {
        let mut command = Command::new("nice");
        let output = at_background_priority(&mut command).output().await.unwrap();
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "10");
    }
}
