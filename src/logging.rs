//! Owns the shape of berth's log: one line per event, fit for journald.
//!
//! Rocket 0.5's own logger prints a debug record on three lines, splits a
//! request over four records at the default level, and sends everything to
//! stdout without a priority, so journald files errors as plain info. This
//! logger replaces it (Rocket keeps its logger only if none is set yet):
//! one record is one line (newlines escaped), each line starts with a
//! `<N>` syslog priority when stdout is the journal, each request is one
//! access line, and the level is still Rocket's `log_level`
//! (`ROCKET_LOG_LEVEL`). Colours stay Rocket's business: it paints only when
//! `cli_colors` is on and stdout and stderr are terminals.

use std::io::Write;
use std::time::Instant;

use log::{Level, LevelFilter, Metadata, Record};
use rocket::config::LogLevel;
use rocket::fairing::{Fairing, Info, Kind};
use rocket::figment::Figment;
use rocket::{Data, Request, Response};

use crate::gate::GateRefusal;

/// Installs berth's logger with the level from Rocket's settings. Call it
/// before the Rocket is built, or Rocket installs its own.
pub fn init(figment: &Figment) {
    let level = figment
        .extract_inner::<LogLevel>("log_level")
        .unwrap_or(LogLevel::Normal);
    let logger = LineLogger {
        journal: stdout_is_journal(),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level.into());
    }
}

/// systemd sets `JOURNAL_STREAM=<dev>:<inode>` for the stream it connects
/// to stdout/stderr; only if stdout is still that stream may lines carry
/// `<N>` prefixes (on a terminal or in a file they would be noise).
fn stdout_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(stat) = rustix::fs::fstat(std::io::stdout()) else {
        return false;
    };
    stream.to_str() == Some(&format!("{}:{}", stat.st_dev, stat.st_ino))
}

struct LineLogger {
    journal: bool,
}

/// Rocket marks the records that describe its configuration at launch; it
/// shows them at every level but `off`, and so does berth.
fn is_launch(metadata: &Metadata<'_>) -> bool {
    metadata.target().starts_with("rocket::launch")
}

/// The level a record is shown at. Rocket's per-request records (the
/// request line, then `>> Matched`, `>> Outcome`, `>> Response
/// succeeded`, a 404's `>> No matching routes`) become debug: the access
/// line says the same in one line. A handler panic stays an error.
///
/// This runs several times for every request, so it tells the records apart
/// without formatting them where it can: Rocket's request line is its only
/// info record at `rocket::server` built from arguments (its shutdown lines
/// are plain literals), and every info detail record is request chatter.
fn shown_level(record: &Record<'_>) -> Level {
    let target = record.target();
    if is_launch(record.metadata()) {
        return Level::Info;
    }
    if target == "rocket::server::_" {
        let panicked =
            record.level() == Level::Error && record.args().to_string().contains("panicked");
        return if panicked { Level::Error } else { Level::Debug };
    }
    let request_line = target == "rocket::server"
        && record.level() == Level::Info
        && record.args().as_str().is_none();
    if request_line {
        return Level::Debug;
    }
    record.level()
}

/// Whether a record comes from a library that only speaks at debug level
/// (as Rocket's own logger decides).
fn is_chatty_library(record: &Record<'_>) -> bool {
    let from = |prefix| record.module_path().is_some_and(|m| m.starts_with(prefix));
    from("hyper") || from("rustls") || from("r2d2")
}

/// journald's priorities (sd-daemon(3)): err, warning, info, debug.
fn priority(level: Level) -> u8 {
    match level {
        Level::Error => 3,
        Level::Warn => 4,
        Level::Info => 6,
        Level::Debug | Level::Trace => 7,
    }
}

/// Formats a record as exactly one line, ending in `\n`.
fn format_line(record: &Record<'_>, level: Level, journal: bool) -> String {
    let mut line = String::new();
    if journal {
        line.push_str(&format!("<{}>", priority(level)));
    }
    // Rocket ends a target with `_` to say "detail of the record before".
    let detail = record.target().ends_with('_');
    if detail {
        line.push_str("   >> ");
    }
    match level {
        Level::Error if !detail => line.push_str("Error: "),
        Level::Warn if !detail => line.push_str("Warning: "),
        Level::Debug | Level::Trace => line.push_str(&format!("[{}] ", record.target())),
        _ => {}
    }
    for c in record.args().to_string().chars() {
        match c {
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            c => line.push(c),
        }
    }
    line.push('\n');
    line
}

impl log::Log for LineLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        let max = log::max_level();
        max != LevelFilter::Off && (metadata.level() <= max || is_launch(metadata))
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let max = log::max_level();
        if max < LevelFilter::Debug && is_chatty_library(record) {
            return;
        }
        let level = shown_level(record);
        if level > max && !is_launch(record.metadata()) {
            return;
        }
        let line = format_line(record, level, self.journal);
        // One write of the whole line, so lines of concurrent tasks never
        // interleave; a closed stdout must not bring berth down.
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {
        let _ = std::io::stdout().flush();
    }
}

/// Logs one line per answered request: client, method, URI, status, time.
pub struct RequestLog;

/// When the request arrived (request-local state).
struct Arrived(Instant);

#[rocket::async_trait]
impl Fairing for RequestLog {
    fn info(&self) -> Info {
        Info {
            name: "request log",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, request: &mut Request<'_>, _: &mut Data<'_>) {
        request.local_cache(|| Arrived(Instant::now()));
    }

    async fn on_response<'r>(&self, request: &'r Request<'_>, response: &mut Response<'r>) {
        let elapsed = request.local_cache(|| Arrived(Instant::now())).0.elapsed();
        let client = request
            .client_ip()
            .map_or_else(|| "-".to_owned(), |ip| ip.to_string());
        let seconds = elapsed.as_secs_f64() * 1000.0;
        let status = response.status();
        // A request the gate refused was rerouted: log what was asked.
        if let Some(refused) = &request.local_cache(GateRefusal::default).0 {
            log::info!(
                target: "berth::access",
                "{client} {} {} {status} {seconds:.1} ms",
                refused.method,
                refused.uri,
            );
            return;
        }
        log::info!(
            target: "berth::access",
            "{client} {} {} {status} {seconds:.1} ms",
            request.method(),
            request.uri(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(level: Level, target: &str, text: &str, journal: bool) -> String {
        let args = format_args!("{text}");
        let record = Record::builder()
            .level(level)
            .target(target)
            .args(args)
            .build();
        format_line(&record, shown_level(&record), journal)
    }

    #[test]
    fn a_record_is_one_line_even_with_newlines() {
        let text = line(
            Level::Error,
            "berth::jobs",
            "tar failed:\nno space\n",
            false,
        );
        assert_eq!(text, "Error: tar failed:\\nno space\\n\n");
    }

    #[test]
    fn the_journal_gets_priorities() {
        assert_eq!(
            line(Level::Warn, "berth", "careful", true),
            "<4>Warning: careful\n"
        );
        assert_eq!(
            line(Level::Info, "berth", "job done", true),
            "<6>job done\n"
        );
    }

    #[test]
    fn request_chatter_is_debug_but_a_panic_is_an_error() {
        assert_eq!(
            line(Level::Info, "rocket::server", "GET /v1/containers:", true),
            "<7>[rocket::server] GET /v1/containers:\n"
        );
        assert_eq!(
            line(
                Level::Error,
                "rocket::server::_",
                "No matching routes for GET /x.",
                true
            ),
            "<7>   >> [rocket::server::_] No matching routes for GET /x.\n"
        );
        assert_eq!(
            line(
                Level::Error,
                "rocket::server::_",
                "Handler list panicked.",
                true
            ),
            "<3>   >> Handler list panicked.\n"
        );
        // Rocket's own shutdown lines (literals, as Rocket writes them) are
        // not request chatter.
        let shutdown = Record::builder()
            .level(Level::Info)
            .target("rocket::server")
            .args(format_args!("Graceful shutdown completed successfully."))
            .build();
        assert_eq!(
            format_line(&shutdown, shown_level(&shutdown), false),
            "Graceful shutdown completed successfully.\n"
        );
    }

    #[test]
    fn launch_records_are_info() {
        assert_eq!(
            line(Level::Warn, "rocket::launch::_", "port: 5000", true),
            "<6>   >> port: 5000\n"
        );
    }
}
