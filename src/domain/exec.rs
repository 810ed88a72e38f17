//! What a command run inside a container may be (`POST …/exec`) and what
//! a terminal may ask (its size): checked before anything reaches LXC.

use serde_json::Value;

use super::ValidationErrors;

/// Without a `timeout`, a command may run this long.
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;
/// The longest `timeout` accepted: exec answers one HTTP request, and a
/// longer job belongs in the container's own init.
pub const MAX_TIMEOUT_SECS: u64 = 3600;
/// Bytes kept of each of stdout and stderr; the rest is dropped and flagged.
pub const OUTPUT_LIMIT: usize = 1024 * 1024;
/// The most `stdin` a request may carry, in bytes (UTF-8).
pub const STDIN_LIMIT: usize = 1024 * 1024;
/// The largest exec request body; JSON escapes make it larger than stdin.
pub const BODY_LIMIT: u64 = 2 * 1024 * 1024;
pub const MAX_ARGS: usize = 1024;
pub const MAX_ENV: usize = 256;
/// Terminals open at once on one container.
pub const MAX_TERMINALS: usize = 4;
/// Terminal size bounds (columns and rows).
pub const MAX_TERMINAL_SIDE: u16 = 1000;

/// A validated command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCommand {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Vec<u8>,
    pub timeout_secs: u64,
}

/// Checks an exec request's fields as the client sent them (JSON values,
/// so that a number where a string belongs is named, not a parse error).
pub fn parse(
    command: &Value,
    stdin: Option<&Value>,
    timeout: Option<&Value>,
    env: Option<&Value>,
) -> Result<ExecCommand, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let argv = parse_argv(command, &mut errors);
    let stdin = match stdin {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if text.len() > STDIN_LIMIT => {
            errors.push(
                "stdin",
                format!(
                    "is {} bytes; at most {STDIN_LIMIT} are accepted",
                    text.len()
                ),
            );
            Vec::new()
        }
        Some(Value::String(text)) => text.as_bytes().to_vec(),
        Some(_) => {
            errors.push("stdin", "must be a string");
            Vec::new()
        }
    };
    let timeout_secs = match timeout {
        None | Some(Value::Null) => DEFAULT_TIMEOUT_SECS,
        Some(value) => match value.as_u64() {
            Some(secs) if (1..=MAX_TIMEOUT_SECS).contains(&secs) => secs,
            _ => {
                errors.push(
                    "timeout",
                    format!("must be a whole number of seconds from 1 to {MAX_TIMEOUT_SECS}"),
                );
                DEFAULT_TIMEOUT_SECS
            }
        },
    };
    let env = parse_env(env, &mut errors);
    errors.into_result(ExecCommand {
        argv,
        env,
        stdin,
        timeout_secs,
    })
}

fn parse_argv(command: &Value, errors: &mut ValidationErrors) -> Vec<String> {
    let Value::Array(items) = command else {
        errors.push(
            "command",
            "must be an array of strings, the program and its arguments (no shell is used)",
        );
        return Vec::new();
    };
    if items.is_empty() {
        errors.push("command", "must name a program to run");
    }
    if items.len() > MAX_ARGS {
        errors.push("command", format!("has more than {MAX_ARGS} arguments"));
        return Vec::new();
    }
    let mut argv = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        match item {
            Value::String(arg) if arg.contains('\0') => {
                errors.push(format!("command[{index}]"), "must not contain a NUL byte");
            }
            Value::String(arg) if index == 0 && arg.is_empty() => {
                errors.push("command[0]", "must name a program");
            }
            Value::String(arg) => argv.push(arg.clone()),
            other => errors.push(
                format!("command[{index}]"),
                format!("must be a string, not {}", kind(other)),
            ),
        }
    }
    argv
}

fn parse_env(env: Option<&Value>, errors: &mut ValidationErrors) -> Vec<(String, String)> {
    let object = match env {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Object(object)) => object,
        Some(_) => {
            errors.push("env", "must be an object of names to string values");
            return Vec::new();
        }
    };
    if object.len() > MAX_ENV {
        errors.push("env", format!("has more than {MAX_ENV} variables"));
        return Vec::new();
    }
    let mut pairs = Vec::with_capacity(object.len());
    for (key, value) in object {
        if !is_variable_name(key) {
            errors.push(
                format!("env.{}", printable(key)),
                "is not a variable name (letters, digits and _, not starting with a digit)",
            );
            continue;
        }
        match value {
            Value::String(text) if text.contains('\0') => {
                errors.push(format!("env.{key}"), "must not contain a NUL byte");
            }
            Value::String(text) => pairs.push((key.clone(), text.clone())),
            other => errors.push(
                format!("env.{key}"),
                format!("must be a string, not {}", kind(other)),
            ),
        }
    }
    pairs
}

/// A POSIX shell variable name: what every program inside can read back.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first == '_' || first.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && name.len() <= 255
}

/// A terminal size a client asked for, clamped to what a terminal can be.
pub fn terminal_size(cols: u64, rows: u64) -> (u16, u16) {
    let side = |value: u64| value.clamp(1, u64::from(MAX_TERMINAL_SIDE)) as u16;
    (side(cols), side(rows))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A name for a message: no control characters, bounded.
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(result: Result<ExecCommand, ValidationErrors>) -> Vec<String> {
        result
            .unwrap_err()
            .0
            .into_iter()
            .map(|error| error.field)
            .collect()
    }

    #[test]
    fn a_plain_command_takes_the_defaults() {
        let command = parse(&json!(["ls", "/"]), None, None, None).unwrap();
        assert_eq!(command.argv, ["ls", "/"]);
        assert_eq!(command.timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert!(command.env.is_empty() && command.stdin.is_empty());
    }

    #[test]
    fn every_bad_field_is_named() {
        assert_eq!(fields(parse(&json!([]), None, None, None)), ["command"]);
        assert_eq!(fields(parse(&json!("ls /"), None, None, None)), ["command"]);
        assert_eq!(
            fields(parse(&json!(["ls", 1, null]), None, None, None)),
            ["command[1]", "command[2]"]
        );
        for timeout in [
            json!(0),
            json!(MAX_TIMEOUT_SECS + 1),
            json!(1.5),
            json!("9"),
        ] {
            assert_eq!(
                fields(parse(&json!(["ls"]), None, Some(&timeout), None)),
                ["timeout"],
                "{timeout}"
            );
        }
        assert_eq!(
            fields(parse(
                &json!(["ls"]),
                Some(&json!(5)),
                None,
                Some(&json!({"1A": "x", "B-C": "y", "OK": 3}))
            )),
            ["stdin", "env.1A", "env.B-C", "env.OK"]
        );
    }

    #[test]
    fn variable_names_are_posix_names() {
        for good in ["A", "_", "PATH", "a_1"] {
            assert!(is_variable_name(good), "{good}");
        }
        for bad in ["", "1A", "A=B", "A B", "É"] {
            assert!(!is_variable_name(bad), "{bad}");
        }
    }
}
