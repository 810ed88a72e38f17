//! Copying a root filesystem tree with everything tar restores: owners,
//! modes (setuid and sticky bits included), times, hard and symbolic links,
//! device nodes, fifos and extended attributes. Several threads create the
//! files: on ext4 creating a file costs far more than copying its data, and
//! creates in parallel take a fraction of the time `cp -a` takes alone.

use std::collections::HashMap;
use std::fs::{File, Metadata, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use rustix::fs::{AtFlags, Timespec, Timestamps, XattrFlags, CWD};

use super::command::lower_thread_priority;

/// Bytes of file data copied per call, between looks at `cancel`.
const CHUNK: usize = 8 << 20;

/// Shared with the caller while a copy runs.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes of file data copied so far.
    pub bytes: AtomicU64,
    /// Set to stop the copy at the next file or chunk.
    pub cancel: AtomicBool,
}

struct Entry {
    relative: PathBuf,
    meta: Metadata,
    /// Its place among the entries of its directory.
    place: usize,
}

/// Copies the tree at `source` to `dest`, which must not exist, with up to
/// `threads` threads. Returns false if it stopped because `progress.cancel`
/// was set; `dest` is then incomplete and the caller removes it.
pub fn copy_tree(
    source: &Path,
    dest: &Path,
    threads: usize,
    progress: &Progress,
) -> io::Result<bool> {
    let (dirs, mut others) = walk(source)?;
    // Creates in one directory take turns on its lock: ordering the work by
    // place within the directory spreads the threads over directories.
    others.sort_by_key(|entry| entry.place);
    // Directories first, writable by us only until they are finished.
    for dir in &dirs {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dest.join(&dir.relative))
            .map_err(|e| at(&dest.join(&dir.relative), e))?;
    }

    // Hard links: the first path of an inode is copied, the others linked
    // to it once every file exists.
    let mut first_of: HashMap<(u64, u64), usize> = HashMap::new();
    let mut work = Vec::new();
    let mut links = Vec::new();
    for entry in &others {
        if entry.meta.nlink() > 1 {
            let inode = (entry.meta.dev(), entry.meta.ino());
            if let Some(&first) = first_of.get(&inode) {
                links.push((first, entry));
                continue;
            }
            first_of.insert(inode, work.len());
        }
        work.push(entry);
    }

    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<io::Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                // These threads are the copy's alone: the API's threads keep
                // their priority.
                let _ = lower_thread_priority();
                copy_entries(source, dest, &work, &next, &failure, progress);
            });
        }
    });
    if let Some(error) = failure.into_inner().expect("copy failure") {
        return Err(error);
    }
    if progress.cancel.load(Ordering::Relaxed) {
        return Ok(false);
    }

    for (first, entry) in links {
        let to = dest.join(&entry.relative);
        std::fs::hard_link(dest.join(&work[first].relative), &to).map_err(|e| at(&to, e))?;
    }
    // Innermost first: a directory's time is set after its last change.
    for dir in dirs.iter().rev() {
        finish_in_place(
            &source.join(&dir.relative),
            &dest.join(&dir.relative),
            &dir.meta,
        )?;
    }
    Ok(true)
}

/// One copy thread: takes entries off `work` until there are none, or the
/// copy is cancelled or has failed.
fn copy_entries(
    source: &Path,
    dest: &Path,
    work: &[&Entry],
    next: &AtomicUsize,
    failure: &Mutex<Option<io::Error>>,
    progress: &Progress,
) {
    while !progress.cancel.load(Ordering::Relaxed) {
        let Some(entry) = work.get(next.fetch_add(1, Ordering::Relaxed)) else {
            return;
        };
        if let Err(error) = copy_entry(source, dest, entry, progress) {
            failure.lock().expect("copy failure").get_or_insert(error);
            // Stops the other threads too.
            progress.cancel.store(true, Ordering::Relaxed);
            return;
        }
    }
}

/// Every entry under `source` (itself included, as ""): directories in
/// an order that puts each after its parent, then everything else.
fn walk(source: &Path) -> io::Result<(Vec<Entry>, Vec<Entry>)> {
    let mut dirs = Vec::new();
    let mut others = Vec::new();
    let root = std::fs::symlink_metadata(source).map_err(|e| at(source, e))?;
    if !root.is_dir() {
        return Err(at(source, io::Error::other("not a directory")));
    }
    dirs.push(Entry {
        relative: PathBuf::new(),
        meta: root,
        place: 0,
    });
    let mut next = 0;
    while next < dirs.len() {
        let relative = dirs[next].relative.clone();
        next += 1;
        let path = source.join(&relative);
        for (place, item) in std::fs::read_dir(&path)
            .map_err(|e| at(&path, e))?
            .enumerate()
        {
            let item = item.map_err(|e| at(&path, e))?;
            let meta = std::fs::symlink_metadata(item.path()).map_err(|e| at(&item.path(), e))?;
            let entry = Entry {
                relative: relative.join(item.file_name()),
                meta,
                place,
            };
            if entry.meta.is_dir() {
                dirs.push(entry);
            } else {
                others.push(entry);
            }
        }
    }
    Ok((dirs, others))
}

fn copy_entry(source: &Path, dest: &Path, entry: &Entry, progress: &Progress) -> io::Result<()> {
    let from = source.join(&entry.relative);
    let to = dest.join(&entry.relative);
    let meta = &entry.meta;
    let kind = meta.file_type();
    if kind.is_file() {
        let input = OpenOptions::new()
            .read(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&from)
            .map_err(|e| at(&from, e))?;
        let output = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&to)
            .map_err(|e| at(&to, e))?;
        copy_data(&input, &output, progress).map_err(|e| at(&to, e))?;
        // chown clears setuid bits and capabilities: it comes first, then
        // the attributes, then the mode.
        std::os::unix::fs::fchown(&output, Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| at(&to, e))?;
        copy_xattrs(Xattrs::Fd(&input), Xattrs::Fd(&output)).map_err(|e| at(&to, e))?;
        output
            .set_permissions(Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| at(&to, e))?;
        rustix::fs::futimens(&output, &times_of(meta)).map_err(|e| at(&to, e.into()))?;
        Ok(())
    } else if kind.is_symlink() {
        let target = std::fs::read_link(&from).map_err(|e| at(&from, e))?;
        std::os::unix::fs::symlink(&target, &to).map_err(|e| at(&to, e))?;
        std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()))
            .map_err(|e| at(&to, e))?;
        copy_xattrs(Xattrs::Link(&from), Xattrs::Link(&to)).map_err(|e| at(&to, e))?;
        rustix::fs::utimensat(CWD, &to, &times_of(meta), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| at(&to, e.into()))
    } else {
        // Fifos, sockets, character and block devices.
        let file_type = rustix::fs::FileType::from_raw_mode(meta.mode());
        let mode = rustix::fs::Mode::from_raw_mode(meta.mode() & 0o7777);
        rustix::fs::mknodat(CWD, &to, file_type, mode, meta.rdev())
            .map_err(|e| at(&to, e.into()))?;
        finish_in_place(&from, &to, meta)
    }
}

/// Owner, attributes, mode and times of an entry created already (for a
/// directory, once everything in it exists).
fn finish_in_place(from: &Path, to: &Path, meta: &Metadata) -> io::Result<()> {
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid())).map_err(|e| at(to, e))?;
    copy_xattrs(Xattrs::Link(from), Xattrs::Link(to)).map_err(|e| at(to, e))?;
    // Modes given at creation were cut by the umask; this one is exact.
    std::fs::set_permissions(to, Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(|e| at(to, e))?;
    rustix::fs::utimensat(CWD, to, &times_of(meta), AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| at(to, e.into()))
}

/// Copies a file's data in the kernel (reflinked where the file system
/// can), falling back to reading and writing where it cannot.
fn copy_data(input: &File, output: &File, progress: &Progress) -> io::Result<()> {
    loop {
        if progress.cancel.load(Ordering::Relaxed) {
            return Ok(());
        }
        match rustix::fs::copy_file_range(input, None, output, None, CHUNK) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(rustix::io::Errno::XDEV | rustix::io::Errno::NOSYS | rustix::io::Errno::INVAL) => {
                let mut reader = input;
                let mut writer = output;
                let n = io::copy(&mut reader, &mut writer)?;
                progress.bytes.fetch_add(n, Ordering::Relaxed);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn times_of(meta: &Metadata) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec() as _,
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec() as _,
        },
    }
}

/// Where extended attributes are read or written: an open file, or a path
/// not followed if it is a symbolic link.
#[derive(Clone, Copy)]
enum Xattrs<'a> {
    Fd(&'a File),
    Link(&'a Path),
}

fn copy_xattrs(from: Xattrs<'_>, to: Xattrs<'_>) -> io::Result<()> {
    let names = with_buffer(|buf| match from {
        Xattrs::Fd(file) => rustix::fs::flistxattr(file, buf),
        Xattrs::Link(path) => rustix::fs::llistxattr(path, buf),
    })?;
    for name in names.split(|b| *b == 0).filter(|name| !name.is_empty()) {
        let name: &std::ffi::OsStr = std::os::unix::ffi::OsStrExt::from_bytes(name);
        let value = with_buffer(|buf| match from {
            Xattrs::Fd(file) => rustix::fs::fgetxattr(file, name, buf),
            Xattrs::Link(path) => rustix::fs::lgetxattr(path, name, buf),
        })?;
        let set = match to {
            Xattrs::Fd(file) => rustix::fs::fsetxattr(file, name, &value, XattrFlags::empty()),
            Xattrs::Link(path) => rustix::fs::lsetxattr(path, name, &value, XattrFlags::empty()),
        };
        match set {
            // A file system without that namespace (e.g. SELinux labels on
            // a host without SELinux): what tar would have done too.
            Ok(()) | Err(rustix::io::Errno::NOTSUP) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Calls `read` with a buffer large enough for what it returns.
fn with_buffer(read: impl Fn(&mut [u8]) -> rustix::io::Result<usize>) -> io::Result<Vec<u8>> {
    let mut buffer = vec![0u8; 1024];
    loop {
        match read(&mut buffer) {
            Ok(n) => {
                buffer.truncate(n);
                return Ok(buffer);
            }
            Err(rustix::io::Errno::RANGE) if buffer.len() < 1 << 20 => {
                buffer.resize(buffer.len() * 4, 0);
            }
            Err(rustix::io::Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        }
    }
}

fn at(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancelled_copy_stops_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        std::fs::create_dir_all(source.join("a/b")).unwrap();
        std::fs::write(source.join("a/b/file"), b"data").unwrap();
        let progress = Progress::default();
        progress.cancel.store(true, Ordering::Relaxed);
        let completed = copy_tree(&source, &dir.path().join("copy"), 2, &progress).unwrap();
        assert!(!completed);
    }

    #[test]
    fn hard_links_stay_links_and_times_keep_their_nanoseconds() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        std::fs::create_dir_all(source.join("d")).unwrap();
        std::fs::write(source.join("d/one"), b"same inode").unwrap();
        std::fs::hard_link(source.join("d/one"), source.join("two")).unwrap();
        std::os::unix::fs::symlink("d/one", source.join("link")).unwrap();
        let when = Timestamps {
            last_access: Timespec {
                tv_sec: 1_000_000_000,
                tv_nsec: 123_456_789,
            },
            last_modification: Timespec {
                tv_sec: 1_000_000_001,
                tv_nsec: 987_654_321,
            },
        };
        for path in ["d/one", "d", ""] {
            rustix::fs::utimensat(CWD, source.join(path), &when, AtFlags::empty()).unwrap();
        }
        let copy = dir.path().join("copy");
        assert!(copy_tree(&source, &copy, 3, &Progress::default()).unwrap());

        let one = std::fs::metadata(copy.join("d/one")).unwrap();
        assert_eq!(
            one.ino(),
            std::fs::metadata(copy.join("two")).unwrap().ino()
        );
        assert_eq!(one.nlink(), 2);
        assert_eq!(
            std::fs::read_link(copy.join("link")).unwrap(),
            Path::new("d/one")
        );
        for path in ["d/one", "d", ""] {
            let meta = std::fs::metadata(copy.join(path)).unwrap();
            assert_eq!(
                (meta.mtime(), meta.mtime_nsec()),
                (1_000_000_001, 987_654_321),
                "{path}"
            );
        }
    }
}
