//! OS template names and the archive formats berth can unpack.

use super::FieldError;

/// The archive formats of a template file, by file name suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum TemplateFormat {
    #[serde(rename = "tar.gz")]
    TarGz,
    #[serde(rename = "tar.xz")]
    TarXz,
    #[serde(rename = "tar.zst")]
    TarZst,
    #[serde(rename = "tar")]
    Tar,
}

impl TemplateFormat {
    /// In the order berth looks for them when two files share a name.
    pub const ALL: [TemplateFormat; 4] = [
        TemplateFormat::TarGz,
        TemplateFormat::TarXz,
        TemplateFormat::TarZst,
        TemplateFormat::Tar,
    ];

    pub fn suffix(self) -> &'static str {
        match self {
            TemplateFormat::TarGz => ".tar.gz",
            TemplateFormat::TarXz => ".tar.xz",
            TemplateFormat::TarZst => ".tar.zst",
            TemplateFormat::Tar => ".tar",
        }
    }

    /// Splits `busybox.tar.gz` into the template name and its format.
    pub fn split_file_name(file_name: &str) -> Option<(&str, TemplateFormat)> {
        Self::ALL
            .into_iter()
            .find_map(|format| {
                file_name
                    .strip_suffix(format.suffix())
                    .map(|name| (name, format))
            })
            .filter(|(name, _)| check_name(name).is_ok())
    }
}

/// A template is named by its file name without the archive suffix: a plain
/// name, never a path.
pub fn check_name(name: &str) -> Result<(), FieldError> {
    let fail = |why: &str| Err(FieldError::new("ostemplate", why));
    if name.is_empty() {
        return fail("must not be empty");
    }
    if name.len() > 128 {
        return fail("must be at most 128 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return fail("must start with a letter or digit");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '+'))
    {
        return fail(
            "must be a plain template name: letters, digits, '_', '.', '-', '+' (no paths)",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_names_are_plain_names() {
        for good in [
            "template1",
            "debian-12-standard_12.7-1_amd64",
            "alpine+extra",
        ] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../etc/passwd",
            "a/b",
            "/abs",
            ".hidden",
            "a\nb",
            "a b",
            "..",
            "x%2f",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_names_split_into_name_and_format() {
        assert_eq!(
            TemplateFormat::split_file_name("bb.tar.gz"),
            Some(("bb", TemplateFormat::TarGz))
        );
        assert_eq!(
            TemplateFormat::split_file_name("bb.tar.zst"),
            Some(("bb", TemplateFormat::TarZst))
        );
        assert_eq!(
            TemplateFormat::split_file_name("bb.tar"),
            Some(("bb", TemplateFormat::Tar))
        );
        assert_eq!(TemplateFormat::split_file_name("bb.zip"), None);
        assert_eq!(TemplateFormat::split_file_name(".tar.gz"), None);
    }
}
