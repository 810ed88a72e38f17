//! The OS template directory: which templates exist, their digests, and
//! adding or removing one atomically. Plain file-system work; no LXC.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

use crate::domain::os_template::{check_name, TemplateFormat};
use crate::domain::time::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("template directory: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "'{0}' is not a template file name: use <name>.tar.gz, .tar.xz, .tar.zst or .tar, \
         where <name> is letters, digits, '_', '.', '-', '+'"
    )]
    BadFileName(String),
    #[error("the uploaded file is not a {0} archive")]
    WrongFormat(&'static str),
    #[error("template '{0}' already exists; delete it first or ask to replace it")]
    Exists(String),
    #[error("template '{0}' not found")]
    NotFound(String),
}

/// One template file in the store.
#[derive(Debug, Clone)]
pub struct TemplateFile {
    pub name: String,
    pub format: TemplateFormat,
    pub path: PathBuf,
}

/// A template as listed: its file's facts and content digest.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TemplateInfo {
    pub name: String,
    pub format: TemplateFormat,
    pub size: u64,
    #[serde(with = "crate::domain::time::serde_rfc3339")]
    pub modified_at: Timestamp,
    pub sha256: String,
}

/// Digests are costly on large templates: keep each until its file changes.
type DigestCache = HashMap<PathBuf, (u64, SystemTime, String)>;

#[derive(Debug, Clone)]
pub struct OsTemplateStore {
    dir: PathBuf,
    digests: Arc<Mutex<DigestCache>>,
}

impl OsTemplateStore {
    pub fn new(dir: PathBuf) -> Self {
        OsTemplateStore {
            dir,
            digests: Arc::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file for template `name`, if one of the known formats exists.
    pub fn find(&self, name: &str) -> std::io::Result<Option<TemplateFile>> {
        if check_name(name).is_err() {
            return Ok(None);
        }
        for format in TemplateFormat::ALL {
            let path = self.dir.join(format!("{name}{}", format.suffix()));
            match std::fs::metadata(&path) {
                Ok(meta) if meta.is_file() => {
                    return Ok(Some(TemplateFile {
                        name: name.to_owned(),
                        format,
                        path,
                    }));
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Every template in the store, by name. Files being uploaded are hidden
    /// (their names start with a dot), so they are never listed.
    pub fn files(&self) -> std::io::Result<Vec<TemplateFile>> {
        let mut templates = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some((name, format)) = TemplateFormat::split_file_name(&file_name) else {
                continue;
            };
            // As `find` sees it: a link to a template is one (and is what a
            // create unpacks), a dangling link is none.
            if std::fs::metadata(entry.path()).is_ok_and(|meta| meta.is_file()) {
                templates.push(TemplateFile {
                    name: name.to_owned(),
                    format,
                    path: entry.path(),
                });
            }
        }
        // Same order as `find` prefers, so the listed file is the one used.
        templates.sort_by_key(|t| {
            (
                t.name.clone(),
                TemplateFormat::ALL.iter().position(|f| *f == t.format),
            )
        });
        templates.dedup_by(|later, first| later.name == first.name);
        Ok(templates)
    }

    /// The templates with size, time and SHA-256 (computed once per file
    /// version; blocking, so call it off the async threads).
    pub fn list(&self) -> std::io::Result<Vec<TemplateInfo>> {
        self.files()?
            .into_iter()
            .map(|file| self.info(file))
            .collect()
    }

    fn info(&self, file: TemplateFile) -> std::io::Result<TemplateInfo> {
        let meta = std::fs::metadata(&file.path)?;
        let modified = meta.modified()?;
        let cached = self
            .digests
            .lock()
            .expect("digest cache")
            .get(&file.path)
            .cloned();
        let sha256 = match cached {
            Some((size, time, digest)) if size == meta.len() && time == modified => digest,
            _ => {
                let digest = sha256_of(&file.path)?;
                self.digests
                    .lock()
                    .expect("digest cache")
                    .insert(file.path.clone(), (meta.len(), modified, digest.clone()));
                digest
            }
        };
        Ok(TemplateInfo {
            name: file.name,
            format: file.format,
            size: meta.len(),
            modified_at: Timestamp::from(modified),
            sha256,
        })
    }

    /// Removes uploads a crash cut off (`.upload-*.partial`). Called at
    /// start, before any upload can run; returns what it removed.
    pub fn remove_partial_uploads(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut removed = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let is_partial = entry
                .file_name()
                .to_str()
                .is_some_and(|name| name.starts_with(".upload-") && name.ends_with(".partial"));
            if is_partial && !entry.file_type()?.is_dir() {
                std::fs::remove_file(entry.path())?;
                removed.push(entry.path());
            }
        }
        Ok(removed)
    }

    /// A fresh hidden path in the template directory to receive an upload;
    /// being on the same file system lets `install` rename it into place.
    pub fn staging_path(&self) -> PathBuf {
        self.dir
            .join(format!(".upload-{}.partial", uuid::Uuid::new_v4().simple()))
    }

    /// Checks a received file and moves it into place as `file_name` in one
    /// rename, so a half-received template is never listed. The staging file
    /// is removed whatever the outcome.
    pub fn install(
        &self,
        staging: &Path,
        file_name: &str,
        replace: bool,
    ) -> Result<TemplateInfo, TemplateError> {
        let result = self.install_inner(staging, file_name, replace);
        if result.is_err() {
            let _ = std::fs::remove_file(staging);
        }
        result
    }

    fn install_inner(
        &self,
        staging: &Path,
        file_name: &str,
        replace: bool,
    ) -> Result<TemplateInfo, TemplateError> {
        let (name, format) = TemplateFormat::split_file_name(file_name)
            .ok_or_else(|| TemplateError::BadFileName(file_name.to_owned()))?;
        check_magic(staging, format)?;
        if let Some(existing) = self.find(name)? {
            if !replace {
                return Err(TemplateError::Exists(name.to_owned()));
            }
            if existing.format != format {
                std::fs::remove_file(&existing.path)?;
            }
        }
        let target = self.dir.join(file_name);
        std::fs::rename(staging, &target)?;
        Ok(self.info(TemplateFile {
            name: name.to_owned(),
            format,
            path: target,
        })?)
    }

    /// Removes every file of template `name`.
    pub fn remove(&self, name: &str) -> Result<(), TemplateError> {
        let mut removed = false;
        while let Some(file) = self.find(name)? {
            std::fs::remove_file(&file.path)?;
            removed = true;
        }
        if removed {
            Ok(())
        } else {
            Err(TemplateError::NotFound(name.to_owned()))
        }
    }
}

fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Refuses a file whose first bytes do not match its claimed format.
fn check_magic(path: &Path, format: TemplateFormat) -> Result<(), TemplateError> {
    let mut head = [0u8; 512];
    let mut file = std::fs::File::open(path)?;
    let mut filled = 0;
    while filled < head.len() {
        let n = file.read(&mut head[filled..])?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    let head = &head[..filled];
    let ok = match format {
        TemplateFormat::TarGz => head.starts_with(&[0x1f, 0x8b]),
        TemplateFormat::TarXz => head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]),
        TemplateFormat::TarZst => head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
        TemplateFormat::Tar => head.len() >= 262 && &head[257..262] == b"ustar",
    };
    if ok {
        Ok(())
    } else {
        Err(TemplateError::WrongFormat(
            format.suffix().trim_start_matches('.'),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, OsTemplateStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = OsTemplateStore::new(dir.path().to_owned());
        (dir, store)
    }

    #[test]
    fn finds_templates_by_name_in_any_format_and_never_by_path() {
        let (dir, store) = store();
        std::fs::write(dir.path().join("bb.tar.zst"), [0x28, 0xb5, 0x2f, 0xfd]).unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        std::fs::write(dir.path().join(".upload-x.partial"), b"x").unwrap();
        assert_eq!(
            store.find("bb").unwrap().unwrap().format,
            TemplateFormat::TarZst
        );
        assert!(store.find("missing").unwrap().is_none());
        assert!(store.find("../bb").unwrap().is_none());
        let names: Vec<_> = store.list().unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, vec!["bb"]);
    }

    #[test]
    fn a_link_to_a_template_is_listed_as_find_uses_it() {
        let (dir, store) = store();
        let elsewhere = tempfile::tempdir().unwrap();
        let target = elsewhere.path().join("real.tar");
        std::fs::write(&target, b"x").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("linked.tar")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("gone.tar"), dir.path().join("dangling.tar"))
            .unwrap();
        assert!(store.find("linked").unwrap().is_some());
        assert!(store.find("dangling").unwrap().is_none());
        let names: Vec<_> = store.files().unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, vec!["linked"]);
    }

    #[test]
    fn install_checks_name_and_contents_and_refuses_to_overwrite() {
        let (_dir, store) = store();
        let staging = store.staging_path();
        std::fs::write(&staging, b"not gzip").unwrap();
        assert!(matches!(
            store.install(&staging, "a.tar.gz", false),
            Err(TemplateError::WrongFormat(_))
        ));
        assert!(!staging.exists(), "a refused upload leaves nothing behind");

        let staging = store.staging_path();
        std::fs::write(&staging, [0x1f, 0x8b, 0, 0]).unwrap();
        assert!(matches!(
            store.install(&staging, "../a.tar.gz", false),
            Err(TemplateError::BadFileName(_))
        ));

        for replace in [false, true] {
            let staging = store.staging_path();
            std::fs::write(&staging, [0x1f, 0x8b, 1, 2]).unwrap();
            let info = store.install(&staging, "a.tar.gz", replace).unwrap();
            assert_eq!(info.size, 4);
            assert_eq!(info.sha256.len(), 64);
        }
        let staging = store.staging_path();
        std::fs::write(&staging, [0x1f, 0x8b]).unwrap();
        assert!(matches!(
            store.install(&staging, "a.tar.gz", false),
            Err(TemplateError::Exists(_))
        ));

        store.remove("a").unwrap();
        assert!(matches!(store.remove("a"), Err(TemplateError::NotFound(_))));
    }
}
