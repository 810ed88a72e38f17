//! The OS template directory: which templates exist and where their files
//! are. Plain file-system access; no LXC.

use std::path::PathBuf;

use crate::domain::template::{check_name, TemplateFormat};

#[derive(Debug, Clone)]
pub struct TemplateStore {
    dir: PathBuf,
}

/// One template file in the store.
#[derive(Debug, Clone)]
pub struct TemplateFile {
    pub name: String,
    pub format: TemplateFormat,
    pub path: PathBuf,
}

impl TemplateStore {
    pub fn new(dir: PathBuf) -> Self {
        TemplateStore { dir }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The file for template `name`, if one of the known formats exists.
    /// `name` must already be a valid template name (never a path).
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

    /// Every template in the store, by name.
    pub fn list(&self) -> std::io::Result<Vec<TemplateFile>> {
        let mut templates = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            let Some((name, format)) = TemplateFormat::split_file_name(&file_name) else {
                continue;
            };
            if entry.file_type()?.is_file() {
                templates.push(TemplateFile {
                    name: name.to_owned(),
                    format,
                    path: entry.path(),
                });
            }
        }
        templates.sort_by(|a, b| a.name.cmp(&b.name));
        templates.dedup_by(|later, first| later.name == first.name);
        Ok(templates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_templates_by_name_in_any_format_and_never_by_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bb.tar.zst"), b"x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let store = TemplateStore::new(dir.path().to_owned());
        assert_eq!(
            store.find("bb").unwrap().unwrap().format,
            TemplateFormat::TarZst
        );
        assert!(store.find("missing").unwrap().is_none());
        assert!(store.find("../bb").unwrap().is_none());
        let names: Vec<_> = store.list().unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, vec!["bb"]);
    }
}
