//! Backup archives: a container's files written as one `.tar.zst` (the
//! manifest first, then the root filesystem, through the same tar stream a
//! move sends), read back to check an archive, and unpacked into a new
//! container. Also reads Proxmox vzdump archives of containers.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

use super::command::{require, spawn_error};
use super::files::{create_dir, create_private_dir, remove_path};
use super::lxc_config::ContainerPaths;
use super::{transfer, DriverError, Frozen, StepLog};
use crate::domain::backup::{BackupKind, MANIFEST_NAME, PROXMOX_CONFIG};

/// What a backup's files start with while they are written or uploaded;
/// what a crash leaves with it is removed at the next start.
pub const PARTIAL_PREFIX: &str = ".partial-";

/// The largest manifest or `pct.conf` read out of an archive.
const MAX_CONFIG_BYTES: usize = 1 << 20;

/// An archive written: what the database keeps to check it later.
#[derive(Debug, Clone)]
pub struct Written {
    pub size: u64,
    pub sha256: String,
}

/// What an archive says about itself, read from the archive alone.
#[derive(Debug, Clone)]
pub struct ArchiveInfo {
    pub kind: BackupKind,
    /// The manifest (berth) or `pct.conf` (Proxmox).
    pub config: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
enum Compression {
    Zstd,
    Gzip,
}

impl Compression {
    fn tool(self) -> &'static str {
        match self {
            Compression::Zstd => "zstd",
            Compression::Gzip => "gzip",
        }
    }

    /// The file name suffix berth keeps such an archive under.
    fn suffix(self) -> &'static str {
        match self {
            Compression::Zstd => "tar.zst",
            Compression::Gzip => "tar.gz",
        }
    }

    /// From the file's first bytes (a zstd frame or a gzip member).
    fn of(path: &Path) -> Result<Compression, DriverError> {
        let mut magic = [0u8; 4];
        let read = std::fs::File::open(path)
            .and_then(|mut file| std::io::Read::read(&mut file, &mut magic))
            .map_err(|e| DriverError::io(format!("cannot read {}", path.display()), e))?;
        match &magic[..read] {
            [0x28, 0xb5, 0x2f, 0xfd] => Ok(Compression::Zstd),
            [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
            _ => Err(DriverError::BadArchive(
                "the file is neither zstd- nor gzip-compressed (a backup is a .tar.zst, \
                 a Proxmox backup a .tar.zst or .tar.gz)"
                    .into(),
            )),
        }
    }
}

/// Where the archive with this id lives in `dir`, whatever its compression.
pub fn archive_path(dir: &Path, id: uuid::Uuid) -> PathBuf {
    let zst = dir.join(format!(
        "{}.{}",
        id.hyphenated(),
        Compression::Zstd.suffix()
    ));
    let gz = dir.join(format!(
        "{}.{}",
        id.hyphenated(),
        Compression::Gzip.suffix()
    ));
    if !zst.exists() && gz.exists() {
        gz
    } else {
        zst
    }
}

/// The file a backup or an upload is written to before it is complete.
pub fn partial_path(dir: &Path, id: uuid::Uuid) -> PathBuf {
    dir.join(format!("{PARTIAL_PREFIX}{}", id.hyphenated()))
}

/// Removes what a crash left half-written in `dir`; returns what it removed.
pub fn remove_partials(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let partial = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with(PARTIAL_PREFIX));
        if partial && std::fs::remove_file(&path).is_ok() {
            removed.push(path);
        }
    }
    removed
}

/// Moves a complete upload at `partial` into place as backup `id`, named
/// for its compression; returns the final path.
pub fn install_upload(partial: &Path, dir: &Path, id: uuid::Uuid) -> Result<PathBuf, DriverError> {
    let compression = Compression::of(partial)?;
    let target = dir.join(format!("{}.{}", id.hyphenated(), compression.suffix()));
    publish(partial, &target)?;
    Ok(target)
}

/// fsync, rename, fsync the directory: the file is whole under its name
/// or not there at all, even across a power cut.
fn publish(partial: &Path, target: &Path) -> Result<(), DriverError> {
    let synced = std::fs::File::open(partial).and_then(|file| file.sync_all());
    synced.map_err(|e| DriverError::io(format!("cannot sync {}", partial.display()), e))?;
    super::files::rename(partial, target)?;
    if let Some(dir) = target.parent() {
        let _ = std::fs::File::open(dir).and_then(|dir| dir.sync_all());
    }
    Ok(())
}

/// Writes the container's root filesystem, after `manifest`, as one
/// zstd-compressed tar to `partial` and then, complete, to `target`.
/// `frozen` (a running container) is thawed as soon as tar has read every
/// file, before compression ends. On failure nothing is left at `partial`.
pub async fn write(
    paths: &ContainerPaths,
    manifest: &[u8],
    partial: &Path,
    target: &Path,
    frozen: Option<Frozen>,
    log: &dyn StepLog,
) -> Result<Written, DriverError> {
    require("zstd")?;
    let manifest_file = paths.dir.join(MANIFEST_NAME);
    super::files::write_atomically(&manifest_file, manifest)?;
    let written = write_archive(paths, partial, frozen, log).await;
    let _ = std::fs::remove_file(&manifest_file);
    let written = match written {
        Ok(written) => publish(partial, target).map(|()| written),
        Err(error) => Err(error),
    };
    if written.is_err() {
        let _ = std::fs::remove_file(partial);
    }
    written
}

async fn write_archive(
    paths: &ContainerPaths,
    partial: &Path,
    frozen: Option<Frozen>,
    log: &dyn StepLog,
) -> Result<Written, DriverError> {
    let mut tar = transfer::send_members(paths, &[MANIFEST_NAME], None)?;
    let tar_out: Stdio = tar
        .take_stream()
        .try_into()
        .map_err(|e| DriverError::io("piping tar into zstd", e))?;
    // zstd's defaults (level 3, a checksum in the frame): a flipped bit is
    // found when the archive is read back.
    let mut zstd = Command::new("zstd")
        .args(["-q", "-c"])
        .stdin(tar_out)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| spawn_error("zstd", e))?;
    let mut compressed = zstd.stdout.take().expect("stdout is piped");
    // Only root reads it: it holds the container's /etc/shadow and keys.
    let file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(partial)
        .await
        .map_err(|e| DriverError::io(format!("cannot create {}", partial.display()), e))?;
    let copier = tokio::spawn(async move {
        let mut file = file;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = compressed.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            file.write_all(&buffer[..n]).await?;
            size += n as u64;
        }
        file.flush().await?;
        file.sync_all().await?;
        Ok::<_, std::io::Error>(Written {
            size,
            sha256: hex::encode(hasher.finalize()),
        })
    });
    let read = tar.finish().await;
    if let Some(frozen) = frozen {
        frozen.thaw(log).await?;
    }
    let copied = copier
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    let compressed = finish(zstd, "zstd").await;
    // The disk filling up is the cause when writing failed: tar and zstd
    // then only saw their output closed.
    let written = copied
        .map_err(|e| DriverError::io(format!("writing the backup to {}", partial.display()), e))?;
    read?;
    compressed?;
    log.step(format!("wrote {} bytes", written.size));
    Ok(written)
}

/// Waits for a tool whose stdout was read elsewhere; its stderr says why
/// it failed.
async fn finish(child: Child, tool: &str) -> Result<(), DriverError> {
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| DriverError::io(format!("waiting for {tool}"), e))?;
    if output.status.success() {
        return Ok(());
    }
    Err(DriverError::BadArchive(format!(
        "{tool} failed ({}): {}",
        output.status,
        super::command::tail_of(&output.stderr)
    )))
}

/// Starts decompressing `archive` onto a pipe.
fn decompress(archive: &Path) -> Result<Child, DriverError> {
    let compression = Compression::of(archive)?;
    require(compression.tool())?;
    Command::new(compression.tool())
        .args(["-d", "-c"])
        .arg(archive)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| spawn_error(compression.tool(), e))
}

/// Runs `tar args` on the decompressed archive; its stdout, or why the
/// archive could not be read to its end.
async fn tar_over(archive: &Path, args: &[&str]) -> Result<Vec<u8>, DriverError> {
    require("tar")?;
    let mut decompressor = decompress(archive)?;
    let stream: Stdio = decompressor
        .stdout
        .take()
        .expect("stdout is piped")
        .try_into()
        .map_err(|e| DriverError::io("piping into tar", e))?;
    let tar = Command::new("tar")
        .args(args)
        .stdin(stream)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| spawn_error("tar", e))?;
    let listed = tar
        .wait_with_output()
        .await
        .map_err(|e| DriverError::io("waiting for tar", e))?;
    // tar may stop early (`--occurrence`): then the decompressor only saw
    // its output closed, which is no fault of the archive.
    let early = args.contains(&"--occurrence=1") && listed.status.success();
    if early {
        let _ = decompressor.kill().await;
    } else {
        finish(decompressor, "decompressing").await?;
    }
    if !listed.status.success() {
        return Err(DriverError::BadArchive(format!(
            "not a readable tar archive: {}",
            super::command::tail_of(&listed.stderr)
        )));
    }
    Ok(listed.stdout)
}

/// Size and hex sha256 of a file, read on a blocking thread.
pub async fn digest(path: &Path) -> Result<(u64, String), DriverError> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut file = std::fs::File::open(&owned)?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buffer = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
            size += n as u64;
        }
        Ok::<_, std::io::Error>((size, hex::encode(hasher.finalize())))
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
    .map_err(|e| DriverError::io(format!("cannot read {}", path.display()), e))
}

/// The manifest or `pct.conf` of an archive already checked, read from
/// its start only.
pub async fn read_config(archive: &Path, kind: BackupKind) -> Result<Vec<u8>, DriverError> {
    let member = match kind {
        BackupKind::Berth => MANIFEST_NAME,
        BackupKind::Proxmox => PROXMOX_CONFIG,
    };
    tar_over(
        archive,
        &[
            "--extract",
            "--to-stdout",
            "--occurrence=1",
            "--file",
            "-",
            member,
        ],
    )
    .await
}

/// Reads the whole archive (a damaged or cut-off one fails: zstd checks
/// its frame checksum, gzip its CRC, tar its headers and length) and takes
/// out what it says about itself.
pub async fn inspect(archive: &Path) -> Result<ArchiveInfo, DriverError> {
    let listing = tar_over(archive, &["--list", "--file", "-"]).await?;
    let listing = String::from_utf8_lossy(&listing);
    let mut names = listing.lines();
    let (kind, member) = if names.next() == Some(MANIFEST_NAME) {
        (BackupKind::Berth, MANIFEST_NAME)
    } else if listing
        .lines()
        .any(|name| name == PROXMOX_CONFIG || Some(name) == PROXMOX_CONFIG.strip_prefix("./"))
    {
        let member = listing
            .lines()
            .find(|name| name.ends_with("etc/vzdump/pct.conf"))
            .expect("found above");
        (BackupKind::Proxmox, member)
    } else {
        return Err(DriverError::BadArchive(format!(
            "the archive is neither a berth backup (its first entry {MANIFEST_NAME}) nor a \
             Proxmox container backup (with {PROXMOX_CONFIG})"
        )));
    };
    let member = member.to_owned();
    let config = tar_over(
        archive,
        &[
            "--extract",
            "--to-stdout",
            "--occurrence=1",
            "--file",
            "-",
            &member,
        ],
    )
    .await?;
    if config.len() > MAX_CONFIG_BYTES {
        return Err(DriverError::BadArchive(format!(
            "{member} is larger than {MAX_CONFIG_BYTES} bytes"
        )));
    }
    Ok(ArchiveInfo { kind, config })
}

/// Unpacks `archive` into `staging` (made here) as a container's
/// directory holds it: the root filesystem as `rootfs` or `rootfs.img`,
/// nothing else. A Proxmox archive's `./etc/vzdump/` is left out of it.
/// On failure `staging` is removed.
pub async fn unpack_into(
    archive: &Path,
    kind: BackupKind,
    staging: &Path,
    log: &dyn StepLog,
) -> Result<(), DriverError> {
    remove_path(staging).await?;
    create_private_dir(staging)
        .map_err(|e| DriverError::io(format!("cannot create {}", staging.display()), e))?;
    let unpacked = unpack_archive(archive, kind, staging, log).await;
    if let Err(error) = unpacked {
        remove_path(staging).await?;
        return Err(error);
    }
    Ok(())
}

async fn unpack_archive(
    archive: &Path,
    kind: BackupKind,
    staging: &Path,
    log: &dyn StepLog,
) -> Result<(), DriverError> {
    let target = match kind {
        BackupKind::Berth => staging.to_owned(),
        BackupKind::Proxmox => {
            let rootfs = staging.join("rootfs");
            create_dir(&rootfs, 0o755)?;
            rootfs
        }
    };
    log.step(format!("unpacking {}", archive.display()));
    let mut decompressor = decompress(archive)?;
    let mut stream = decompressor.stdout.take().expect("stdout is piped");
    let unpacked = transfer::unpack(&target, &mut stream, log).await;
    drop(stream);
    let decompressed = finish(decompressor, "decompressing").await;
    unpacked?;
    decompressed?;
    match kind {
        BackupKind::Berth => {
            remove_path(&staging.join(MANIFEST_NAME)).await?;
        }
        BackupKind::Proxmox => {
            log.step("leaving out ./etc/vzdump/ (Proxmox's record of the backup)".into());
            remove_path(&target.join("etc/vzdump")).await?;
        }
    }
    transfer::only_a_root_filesystem(staging)
        .map_err(|_| DriverError::BadArchive("the archive holds no root filesystem".into()))
}
