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

/// Makes `path`'s own entry (a file's contents, a directory's list of
/// names) durable.
fn sync_path(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

/// The directory holding `path`, whose list of names records it.
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Writes a file so that a reader sees the old or the new contents, never
/// half of them, and so that after a power cut the file holds one or the
/// other rather than nothing: the contents reach the disk before the
/// rename, and the rename before this returns.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), DriverError> {
    use std::io::Write as _;
    let partial = path.with_extension("partial");
    let written = std::fs::File::create(&partial)
        .and_then(|mut file| {
            file.write_all(contents)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&partial, path))
        .and_then(|()| sync_path(parent_of(path)));
    written.map_err(|e| DriverError::io(format!("cannot write {}", path.display()), e))
}

/// Replaces a file's contents without replacing the file, so a bind mount of
/// it inside a running container shows the new contents; synced, file and
/// directory, before this returns.
pub fn write_in_place(path: &Path, contents: &[u8]) -> Result<(), DriverError> {
    use std::io::Write as _;
    let written = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut file| {
            file.write_all(contents)?;
            file.sync_all()
        })
        .and_then(|()| sync_path(parent_of(path)));
    written.map_err(|e| DriverError::io(format!("cannot write {}", path.display()), e))
}

/// Creates a directory of berth's own (a container's), closed to other
/// users, and records it in its parent durably. An existing one is an
/// `AlreadyExists` error, left to the caller to judge.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().mode(0o700).create(path)?;
    sync_path(parent_of(path))
}

/// Whether other users may read or enter `path` (mode bits for "others").
pub fn open_to_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o007 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_and_leave_no_partial_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("berth-owner");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert!(!dir.path().join("berth-owner.partial").exists());
    }

    #[test]
    fn private_dirs_are_closed_to_others() {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("ct");
        create_private_dir(&private).unwrap();
        assert!(!open_to_others(&private));
        assert_eq!(
            create_private_dir(&private).unwrap_err().kind(),
            std::io::ErrorKind::AlreadyExists
        );
    }
}
