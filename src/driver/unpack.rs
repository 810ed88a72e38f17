//! Unpacking a template archive with tar. berth feeds tar itself so that
//! progress follows the bytes read and a granted cancel stops it at the
//! next chunk.

use std::ffi::OsStr;
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

use super::command::{at_background_priority, require, spawn_fed};
use super::{DriverError, StepLog, TemplateSource};
use crate::args;
use crate::domain::os_template::TemplateFormat;

/// Opens the template file for `unpack`.
pub fn open(template: &TemplateSource) -> Result<std::fs::File, DriverError> {
    std::fs::File::open(&template.path).map_err(|e| {
        DriverError::io(
            format!("cannot open template {}", template.path.display()),
            e,
        )
    })
}

/// Unpacks the template archive `file` (opened from `template.path`, which
/// names it in messages) into `dest`. Taking the open file lets the caller
/// know exactly which version of the file was unpacked.
pub async fn unpack(
    template: &TemplateSource,
    file: std::fs::File,
    dest: &Path,
    log: &dyn StepLog,
) -> Result<(), DriverError> {
    let decompressor = match template.format {
        TemplateFormat::TarGz => Some(("-z", "gzip")),
        TemplateFormat::TarXz => Some(("-J", "xz")),
        TemplateFormat::TarZst => Some(("--zstd", "zstd")),
        TemplateFormat::Tar => None,
    };
    require("tar")?;
    let mut args: Vec<&OsStr> = args![
        "-x",
        "-p",
        "--numeric-owner",
        "--xattrs",
        "--xattrs-include=*",
        "-f",
        "-",
        "-C",
        dest
    ]
    .to_vec();
    if let Some((flag, program)) = decompressor {
        require(program)?;
        args.push(OsStr::new(flag));
    }
    let mut file = tokio::fs::File::from_std(file);
    let total = file.metadata().await.map(|m| m.len()).unwrap_or(0).max(1);

    let mut command = Command::new("tar");
    let (tar, mut stdin) = spawn_fed(at_background_priority(&mut command).args(&args), "tar")?;

    let mut buffer = vec![0u8; 256 * 1024];
    let mut read = 0u64;
    let mut reported = 0u8;
    // Unpacking only writes into `dest`, which the caller removes on
    // failure: it can stop at any chunk.
    log.enter_cancellable();
    let feed: Result<bool, std::io::Error> = async {
        loop {
            if log.cancel_requested() {
                return Ok(false);
            }
            let n = file.read(&mut buffer).await?;
            if n == 0 {
                break;
            }
            stdin.write_all(&buffer[..n]).await?;
            read += n as u64;
            let percent = (read * 100 / total).min(100) as u8;
            if percent != reported {
                reported = percent;
                log.progress(percent);
            }
        }
        stdin.shutdown().await.map(|()| true)
    }
    .await;
    drop(stdin);
    if log.leave_cancellable() || matches!(feed, Ok(false)) {
        tar.kill().await;
        return Err(DriverError::Cancelled);
    }
    tar.finish("tar", &args).await?;
    feed.map(drop)
        .map_err(|e| DriverError::io(format!("reading template {}", template.path.display()), e))
}
