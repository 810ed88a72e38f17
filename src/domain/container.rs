//! Container identity and lifecycle status.

use serde::{Deserialize, Serialize};

use super::{has_control_chars, FieldError};

/// A container name, which is also its LXC name and directory name under the
/// LXC path: `[A-Za-z0-9][A-Za-z0-9_.-]{0,62}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ContainerName(String);

impl ContainerName {
    pub const MAX_LEN: usize = 63;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let fail = |why: &str| Err(FieldError::new("name", why));
        if raw.is_empty() {
            return fail("must not be empty");
        }
        if has_control_chars(raw) {
            return fail("must not contain control characters");
        }
        if raw.len() > Self::MAX_LEN {
            return fail("must be at most 63 characters");
        }
        let mut chars = raw.chars();
        let first = chars.next().unwrap_or_default();
        if !first.is_ascii_alphanumeric() {
            return fail("must start with a letter or digit");
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
            return fail("may contain only letters, digits, '_', '.' and '-'");
        }
        Ok(ContainerName(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ContainerName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a container is in its life. Only jobs move it between states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerStatus {
    /// Its create job has not finished yet.
    Creating,
    Stopped,
    Running,
    /// Its create job failed (see `lifecycle` for what it still admits).
    Failed,
    /// A delete job is queued or running.
    Deleting,
    /// Gone from the host; kept so that its jobs still name something.
    Deleted,
}

impl ContainerStatus {
    pub const ALL: [ContainerStatus; 6] = [
        ContainerStatus::Creating,
        ContainerStatus::Stopped,
        ContainerStatus::Running,
        ContainerStatus::Failed,
        ContainerStatus::Deleting,
        ContainerStatus::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ContainerStatus::Creating => "creating",
            ContainerStatus::Stopped => "stopped",
            ContainerStatus::Running => "running",
            ContainerStatus::Failed => "failed",
            ContainerStatus::Deleting => "deleting",
            ContainerStatus::Deleted => "deleted",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_of_the_documented_form() {
        for ok in ["ct100", "a", "A.b_c-d", &"x".repeat(63)] {
            assert!(ContainerName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "-a",
            ".a",
            "_a",
            "a/b",
            "../x",
            "a b",
            "a\nlxc.x=1",
            "é",
            &"x".repeat(64),
        ] {
            assert!(ContainerName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn status_round_trips() {
        for status in ContainerStatus::ALL {
            assert_eq!(ContainerStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(ContainerStatus::parse("nope"), None);
    }
}
