//! The pure model of berth: containers, their parameters and jobs, with the
//! rules that decide what is valid. No I/O happens here.

pub mod backup;
pub mod container;
pub mod exec;
pub mod job;
pub mod lifecycle;
pub mod node;
pub mod os_template;
pub mod parameters;

use std::fmt;

/// One rejected input: which field, and what is wrong with it in words a
/// client can act on. Forms show it beside the field; the API joins the two.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// All the problems found in one request, so a client can fix them at once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was found, the collected errors otherwise.
    pub fn into_result<T>(self, value: T) -> Result<T, ValidationErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for ValidationErrors {}

/// Control characters have no place in any field berth stores: they are how
/// a value would smuggle a second line into an LXC config or a log.
pub fn has_control_chars(value: &str) -> bool {
    value.chars().any(char::is_control)
}

/// Times as the API shows them: RFC 3339, UTC, whole seconds, `Z`.
pub mod time {
    use chrono::{DateTime, SecondsFormat, Utc};

    pub type Timestamp = DateTime<Utc>;

    pub fn now() -> Timestamp {
        Utc::now()
    }

    pub fn format(time: &Timestamp) -> String {
        time.to_rfc3339_opts(SecondsFormat::Secs, true)
    }

    pub fn parse(text: &str) -> Option<Timestamp> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// `#[serde(with = "time::serde_rfc3339")]` for a timestamp field.
    pub mod serde_rfc3339 {
        use super::Timestamp;

        pub fn serialize<S: serde::Serializer>(time: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_str(&super::format(time))
        }
    }

    /// The same for an optional timestamp (`null` when absent).
    pub mod serde_rfc3339_option {
        use super::Timestamp;

        pub fn serialize<S: serde::Serializer>(
            time: &Option<Timestamp>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match time {
                Some(time) => s.serialize_str(&super::format(time)),
                None => s.serialize_none(),
            }
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn formats_like_the_seed() {
            let t = super::parse("2020-10-16T15:16:16.734Z").unwrap();
            assert_eq!(super::format(&t), "2020-10-16T15:16:16Z");
        }
    }
}
