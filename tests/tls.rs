//! TLS through Rocket's own configuration: certificate and key paths.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Berth, Options};

/// A self-signed certificate for 127.0.0.1 and berth's `ROCKET_TLS` value.
fn certificate(dir: &Path) -> (PathBuf, String) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
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
    (cert, tls)
}

#[test]
fn berth_serves_https_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, tls) = certificate(dir.path());
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

/// Under TLS the console's cookies are `Secure`: the browser never sends
/// them over plain HTTP.
#[test]
fn console_cookies_are_secure_under_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, tls) = certificate(dir.path());
    let berth = Berth::start_with(Options {
        env: vec![
            ("ROCKET_TLS".into(), tls),
            ("BERTH_AUTH".into(), "token".into()),
        ],
        templates: vec![],
    });
    let created = berth.cli(&["token", "create", "ops"]);
    let stdout = String::from_utf8(created.stdout).unwrap();
    let token = stdout.split_whitespace().last().unwrap().to_owned();
    let origin = format!("https://127.0.0.1:{}", berth.port);
    let jar = dir.path().join("cookies.txt");
    let curl = |args: &[&str]| {
        let output = Command::new("curl")
            .args(["-s", "-D", "-", "--cacert"])
            .arg(&cert)
            .arg("-c")
            .arg(&jar)
            .arg("-b")
            .arg(&jar)
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let page = curl(&[&format!("{origin}/login")]);
    let cookie_line = |answer: &str, name: &str| {
        answer
            .lines()
            .find(|line| {
                line.to_ascii_lowercase()
                    .starts_with(&format!("set-cookie: {name}="))
            })
            .unwrap_or_else(|| panic!("no {name} cookie in {answer}"))
            .to_owned()
    };
    assert!(
        cookie_line(&page, "berth_csrf").contains("; Secure"),
        "{page}"
    );
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    let csrf = &page[start..][..page[start..].find('"').unwrap()];
    let answer = curl(&[
        "-H",
        &format!("Origin: {origin}"),
        "--data-urlencode",
        &format!("csrf={csrf}"),
        "--data-urlencode",
        &format!("token={token}"),
        &format!("{origin}/login"),
    ]);
    let session = cookie_line(&answer, "berth_session");
    for attribute in ["; Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(session.contains(attribute), "{attribute}: {session}");
    }
}
