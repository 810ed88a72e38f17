//! Small file-system steps the driver shares, with errors that name the
//! path they failed on.

use std::path::Path;

use super::DriverError;

pub fn create_dir(path: &Path, mode: u32) -> Result<(), DriverError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(path)
        .map_err(|e| DriverError::io(format!("cannot create {}", path.display()), e))
}

pub fn rename(from: &Path, to: &Path) -> Result<(), DriverError> {
    std::fs::rename(from, to).map_err(|e| {
        DriverError::io(
            format!("cannot move {} to {}", from.display(), to.display()),
            e,
        )
    })
}

/// Removes a file or a whole tree; a path that is already gone is fine.
pub async fn remove_path(path: &Path) -> Result<(), DriverError> {
    let owned = path.to_owned();
    let removed = tokio::task::spawn_blocking(move || match std::fs::symlink_metadata(&owned) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&owned),
        Ok(_) => std::fs::remove_file(&owned),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    removed.map_err(|e| DriverError::io(format!("cannot remove {}", path.display()), e))
}
