//! berth's sd_notify conversation, without systemd: a real `berth serve`
//! given a notify socket of the test's own (a filesystem socket, as systemd
//! uses for system services) and a watchdog interval. The same behaviour on
//! a real systemd is proven by tests/packaging.rs.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use common::{Berth, Options};

/// Every datagram that arrives within `window`.
fn collect(socket: &UnixDatagram, window: Duration) -> Vec<String> {
    let deadline = Instant::now() + window;
    let mut messages = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        socket
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match socket.recv(&mut buffer) {
            Ok(n) => messages.push(String::from_utf8_lossy(&buffer[..n]).into_owned()),
            Err(_) => break,
        }
    }
    messages
}

#[test]
fn ready_status_watchdog_then_stopping_and_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let mut berth = Berth::start_with(Options {
        env: vec![
            ("NOTIFY_SOCKET".into(), path.display().to_string()),
            // 1 s: berth checks and pings every 0.5 s.
            ("WATCHDOG_USEC".into(), "1000000".into()),
        ],
        templates: vec![],
    });

    let running = collect(&socket, Duration::from_millis(2600));
    let ready = running
        .iter()
        .position(|m| m.lines().any(|l| l == "READY=1"))
        .unwrap_or_else(|| panic!("no READY=1 in {running:?}\n{}", berth.log()));
    assert!(
        running[ready].contains("STATUS=0 containers, 0 jobs running, 0 queued"),
        "{running:?}"
    );
    let pings = running[ready..]
        .iter()
        .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
        .count();
    assert!(pings >= 4, "{pings} watchdog pings in 2.6 s: {running:?}");

    let status = berth.terminate();
    assert!(
        status.success(),
        "berth exited with {status}: {}",
        berth.log()
    );
    // Pings sent before the signal may still be queued; none may follow
    // STOPPING=1, which must be the last word.
    let last = collect(&socket, Duration::from_millis(300));
    let stopping = last
        .iter()
        .position(|m| m.lines().any(|l| l == "STOPPING=1"))
        .unwrap_or_else(|| panic!("no STOPPING=1 in {last:?}"));
    assert_eq!(stopping, last.len() - 1, "{last:?}");
}
