//! TLS through Rocket's own configuration: certificate and key paths.

mod common;

use std::process::Command;

use common::{Berth, Options};

#[test]
fn berth_serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let tls = format!("{{certs=\"{}\",key=\"{}\"}}", cert.display(), key.display());
    let berth = Berth::start_with(Options {
        env: vec![("ROCKET_TLS".into(), tls)],
        templates: vec![],
    });

    // Verified against the certificate itself: the chain really is ours.
    let url = format!("https://127.0.0.1:{}/v1/containers", berth.port);
    let output = Command::new("curl")
        .args(["-sf", "--cacert"])
        .arg(&cert)
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let body: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(body["message"], "success");

    // Plain HTTP on the TLS port gets no answer.
    let plain = format!("http://127.0.0.1:{}/v1/containers", berth.port);
    let output = Command::new("curl")
        .args(["-sf", "-m", "5", &plain])
        .output()
        .unwrap();
    assert!(!output.status.success());
}
