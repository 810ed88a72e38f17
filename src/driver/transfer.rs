//! Moving a container's files between hosts: its root filesystem (the
//! directory, or the disk image, kept sparse) as one tar stream out of a
//! stopped container, and the same stream built back into a container on
//! the receiving host, with the configuration written for that host.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdout, Command};

use super::command::{failure, require, spawn_error, spawn_fed};
use super::files::{create_private_dir, remove_path, rename, write_atomically};
use super::lxc_config::ContainerPaths;
use super::{DriverError, StepLog};
use crate::args;

/// Where a container's files are put while they arrive, in the LXC path
/// (the same file system, so that moving them into place is a rename).
/// The name cannot be a container's: container names have no dot.
pub const INCOMING_PREFIX: &str = ".incoming-";

/// The names a stream may hold at its top: the root filesystem as a
/// directory or as a disk image.
const ROOTFS_NAMES: [&str; 2] = ["rootfs", "rootfs.img"];

/// The archive flags both sides share: owners by number (the hosts' user
/// tables may differ), file capabilities and other extended attributes,
/// ACLs, and holes kept as holes (a disk image is mostly empty).
const ARCHIVE_FLAGS: [&str; 5] = [
    "--numeric-owner",
    "--xattrs",
    "--xattrs-include=*",
    "--acls",
    "--sparse",
];

/// A stopped container's files, being written as a tar stream.
pub struct OutgoingFiles {
    child: Child,
    stream: Option<ChildStdout>,
    command: Vec<String>,
    size_hint: Option<u64>,
}

impl OutgoingFiles {
    /// About how many bytes the stream holds (what the files take on disk),
    /// for progress; `None` when it could not be measured.
    pub fn size_hint(&self) -> Option<u64> {
        self.size_hint
    }

    /// The stream to send (taken once).
    pub fn take_stream(&mut self) -> ChildStdout {
        self.stream.take().expect("the stream is taken once")
    }

    /// Waits for tar to end; an error when it could not read everything
    /// (the stream sent is then incomplete and must not be used).
    pub async fn finish(self) -> Result<(), DriverError> {
        let OutgoingFiles {
            child,
            stream,
            command,
            ..
        } = self;
        drop(stream);
        let output = child
            .wait_with_output()
            .await
            .map_err(|e| DriverError::io("waiting for tar", e))?;
        if output.status.success() {
            return Ok(());
        }
        let args: Vec<&OsStr> = command.iter().map(OsStr::new).collect();
        Err(failure("tar", &args, &output))
    }
}

/// Starts writing the root filesystem in `paths.dir` as a tar stream;
/// `size_hint` is what it takes on disk.
pub fn send(paths: &ContainerPaths, size_hint: Option<u64>) -> Result<OutgoingFiles, DriverError> {
    send_members(paths, &[], size_hint)
}

/// As `send`, with the files named in `first` (in `paths.dir`) ahead of the
/// root filesystem: a backup's manifest is its archive's first entry.
pub fn send_members(
    paths: &ContainerPaths,
    first: &[&str],
    size_hint: Option<u64>,
) -> Result<OutgoingFiles, DriverError> {
    require("tar")?;
    let member = if paths.rootfs_image().exists() {
        ROOTFS_NAMES[1]
    } else if paths.rootfs_dir().is_dir() {
        ROOTFS_NAMES[0]
    } else {
        return Err(DriverError::Missing(
            paths
                .dir
                .file_name()
                .map_or_else(String::new, |name| name.to_string_lossy().into_owned()),
        ));
    };
    let mut command: Vec<String> = vec!["--create".into()];
    command.extend(ARCHIVE_FLAGS.iter().map(|flag| flag.to_string()));
    command.extend([
        "--one-file-system".into(),
        "--file".into(),
        "-".into(),
        "--directory".into(),
        paths.dir.display().to_string(),
    ]);
    command.extend(first.iter().map(|name| name.to_string()));
    command.push(member.into());
    let mut child = Command::new("tar")
        .args(&command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| spawn_error("tar", e))?;
    let stream = child.stdout.take().expect("stdout is piped");
    Ok(OutgoingFiles {
        child,
        stream: Some(stream),
        command,
        size_hint,
    })
}

/// The directory a container's files arrive in before they are moved into
/// place.
pub fn incoming_dir(lxc_path: &Path, id: uuid::Uuid) -> PathBuf {
    lxc_path.join(format!("{INCOMING_PREFIX}{}", id.hyphenated()))
}

/// Unpacks `files` into `staging` (made here, private) and checks that it
/// holds one root filesystem and nothing else. On failure `staging` is
/// removed.
pub async fn receive_into(
    staging: &Path,
    files: &mut (dyn AsyncRead + Unpin + Send),
    log: &dyn StepLog,
) -> Result<(), DriverError> {
    require("tar")?;
    remove_path(staging).await?;
    create_private_dir(staging)
        .map_err(|e| DriverError::io(format!("cannot create {}", staging.display()), e))?;
    let unpacked = unpack(staging, files, log).await;
    let checked = unpacked.and_then(|()| only_a_root_filesystem(staging));
    if let Err(error) = checked {
        remove_path(staging).await?;
        return Err(error);
    }
    Ok(())
}

pub(super) async fn unpack(
    staging: &Path,
    files: &mut (dyn AsyncRead + Unpin + Send),
    log: &dyn StepLog,
) -> Result<(), DriverError> {
    let mut args: Vec<&OsStr> = args!["--extract", "--same-permissions", "--same-owner"].to_vec();
    args.extend(ARCHIVE_FLAGS.iter().map(OsStr::new));
    args.extend_from_slice(args!["--file", "-", "--directory", staging]);
    let (tar, mut stdin) = spawn_fed(Command::new("tar").args(&args), "tar")?;
    let mut received = 0u64;
    let mut buffer = vec![0u8; 256 * 1024];
    let fed: std::io::Result<()> = async {
        loop {
            let n = files.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            stdin.write_all(&buffer[..n]).await?;
            received += n as u64;
        }
        stdin.shutdown().await
    }
    .await;
    drop(stdin);
    if let Err(error) = fed {
        tar.kill().await;
        return Err(DriverError::io(
            format!("the stream broke off after {received} bytes"),
            error,
        ));
    }
    tar.finish("tar", &args).await?;
    log.step(format!("received {received} bytes"));
    Ok(())
}

/// A stream must hold exactly one root filesystem, a directory or an
/// image, and nothing beside it.
pub(super) fn only_a_root_filesystem(staging: &Path) -> Result<(), DriverError> {
    let entries = std::fs::read_dir(staging)
        .map_err(|e| DriverError::io(format!("cannot read {}", staging.display()), e))?;
    let names: Vec<String> = entries
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    let fine = names.len() == 1
        && match names[0].as_str() {
            "rootfs" => staging.join("rootfs").is_dir(),
            "rootfs.img" => staging.join("rootfs.img").is_file(),
            _ => false,
        };
    if fine {
        Ok(())
    } else {
        Err(DriverError::io(
            format!(
                "the stream must hold one root filesystem ({}), not {names:?}",
                ROOTFS_NAMES.join(" or ")
            ),
            std::io::Error::from(std::io::ErrorKind::InvalidData),
        ))
    }
}

/// Moves what arrived in `staging` into the container's directory, marked
/// as the container's, replacing `paths.dir` (which the caller has checked
/// is absent or an earlier copy of the same container, not running).
pub async fn install(
    staging: &Path,
    paths: &ContainerPaths,
    owner: uuid::Uuid,
) -> Result<(), DriverError> {
    write_atomically(
        &staging.join(
            paths
                .owner_marker()
                .file_name()
                .expect("the marker has a name"),
        ),
        owner.hyphenated().to_string().as_bytes(),
    )?;
    remove_path(&paths.dir).await?;
    rename(staging, &paths.dir)
}
