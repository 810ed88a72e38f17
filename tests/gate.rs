//! What a web page can make a browser send to berth: cross-site requests
//! (CSRF) and requests to a name rebound to 127.0.0.1 (DNS rebinding). With
//! `auth = "none"` nothing but these checks stands between a page and the
//! host's containers.

mod common;

use common::{assert_error, Berth};
use reqwest::blocking::RequestBuilder;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().unwrap();
    let status = response.status();
    let body = response.json().unwrap_or(Value::Null);
    (status, body)
}

/// A body sent with no type, or with one a page may send cross-site
/// without asking, is a 415 whose message names the type to use.
fn refused_unless_typed(berth: &Berth, url: &str, body: &[u8], expected: &str) {
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let mut request = berth.client.post(url).body(body.to_vec());
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        let answer = send(request);
        assert_error(&answer, 415, 1004);
        let message = answer.1["message"].as_str().unwrap();
        assert!(message.contains(expected), "{content_type:?}: {message}");
    }
}

const CREATE: &str = r#"{"name":"ct-evil","ostemplate":"template1"}"#;

/// Nothing was stored: no container, no job.
fn assert_nothing_stored(berth: &Berth) {
    assert_eq!(berth.containers(), json!([]));
    assert_eq!(berth.jobs(), json!([]));
}

#[test]
fn a_cross_site_page_cannot_create_through_the_open_api() {
    let berth = Berth::start();
    let url = berth.url("/v1/containers/");
    // A page's `fetch` with a typeless Blob body: no preflight, no type.
    let typeless = send(
        berth
            .client
            .post(&url)
            .header("Origin", "https://evil.example")
            .body(CREATE),
    );
    assert!(
        matches!(typeless.0.as_u16(), 403 | 415),
        "a cross-site create is refused: {typeless:?}"
    );
    // The same without Origin (a form or a non-browser client): the body
    // must still say what it is.
    refused_unless_typed(&berth, &url, CREATE.as_bytes(), "application/json");
    // Typed as JSON but from another site: refused before anything else.
    for origin in ["https://evil.example", "null", "http://127.0.0.1:1"] {
        let answer = send(
            berth
                .client
                .post(&url)
                .header("Origin", origin)
                .header("Content-Type", "application/json")
                .body(CREATE),
        );
        assert_error(&answer, 403, 4002);
    }
    let answer = send(
        berth
            .client
            .patch(berth.url(&format!("/v1/containers/{}", uuid_zero())))
            .header("Origin", "https://evil.example")
            .json(&json!({ "parameters": { "cpus": "1" } })),
    );
    assert_error(&answer, 403, 4002);
    assert_nothing_stored(&berth);
    // The refusal is logged with what was asked, not where it was sent.
    let log = berth.log();
    assert!(
        log.contains("POST /v1/containers/ 403"),
        "the access log names the refused request: {log}"
    );

    // berth's own pages, and clients that send no Origin, still get through.
    let own = format!("http://127.0.0.1:{}", berth.port);
    let answer = send(
        berth
            .client
            .patch(berth.url(&format!("/v1/containers/{}", uuid_zero())))
            .header("Origin", &own)
            .json(&json!({ "parameters": { "cpus": "1" } })),
    );
    assert_error(&answer, 404, 2002);
    // Reads are not refused for their Origin: a page cannot read the
    // answer without CORS, which berth does not grant.
    let (status, _) = send(
        berth
            .client
            .get(berth.url("/v1/containers"))
            .header("Origin", "https://evil.example"),
    );
    assert_eq!(status, StatusCode::OK);
}

#[test]
fn template_uploads_must_be_typed_as_archives_and_come_from_no_other_site() {
    let berth = Berth::start();
    let archive = std::fs::read(common::busybox_template()).unwrap();
    let url = berth.url("/v1/templates?name=evil.tar.gz");
    refused_unless_typed(&berth, &url, &archive, "application/octet-stream");
    let answer = send(
        berth
            .client
            .post(&url)
            .header("Origin", "https://evil.example")
            .header("Content-Type", "application/octet-stream")
            .body(archive.clone()),
    );
    assert_error(&answer, 403, 4002);
    assert!(
        !berth.template_dir().join("evil.tar.gz").exists(),
        "no refused upload was installed"
    );
    let leftovers: Vec<_> = std::fs::read_dir(berth.template_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    for content_type in ["application/octet-stream", "application/gzip"] {
        let answer = send(
            berth
                .client
                .post(berth.url("/v1/templates?name=good.tar.gz&replace=true"))
                .header("Content-Type", content_type)
                .body(archive.clone()),
        );
        assert_eq!(answer.0, StatusCode::CREATED, "{content_type}: {answer:?}");
    }
}

#[test]
fn with_auth_off_only_loopback_names_and_allowed_hosts_are_served() {
    let berth = Berth::start_with_env(&[("BERTH_ALLOWED_HOSTS", "[\"berth.lan\", \"192.0.2.7\"]")]);
    let port = berth.port;
    // What a DNS-rebinding page sends: its own name, now pointing here.
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_owned(),
        format!("localhost.evil.example:{port}"),
        format!("10.0.0.1:{port}"),
    ] {
        let answer = send(
            berth
                .client
                .post(berth.url("/v1/containers/"))
                .header("Host", &host)
                .header("Content-Type", "application/json")
                .body(CREATE),
        );
        assert_error(&answer, 403, 4003);
        for path in ["/v1/containers", "/", "/metrics"] {
            let answer = send(berth.client.get(berth.url(path)).header("Host", &host));
            assert_error(&answer, 403, 4003);
        }
    }
    assert_nothing_stored(&berth);
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_owned(),
        format!("[::1]:{port}"),
        format!("berth.lan:{port}"),
        "BERTH.LAN".to_owned(),
        "192.0.2.7".to_owned(),
    ] {
        let (status, body) = send(
            berth
                .client
                .get(berth.url("/v1/containers"))
                .header("Host", &host),
        );
        assert_eq!(status, StatusCode::OK, "{host}: {body}");
    }
    // The console too.
    let response = berth
        .client
        .get(berth.url("/"))
        .header("Host", format!("localhost:{port}"))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[test]
fn with_tokens_the_host_is_not_checked_but_the_origin_is() {
    let berth = Berth::start_with_env(&[("BERTH_AUTH", "token")]);
    let token = berth.create_token("ops");
    let (status, _) = send(
        berth
            .client
            .get(berth.url("/v1/containers"))
            .header("Host", "berth.example.net")
            .bearer_auth(&token),
    );
    assert_eq!(status, StatusCode::OK);
    let answer = send(
        berth
            .client
            .post(berth.url("/v1/containers"))
            .header("Origin", "https://evil.example")
            .bearer_auth(&token)
            .json(&serde_json::from_str::<Value>(CREATE).unwrap()),
    );
    assert_error(&answer, 403, 4002);
}

#[test]
fn a_bad_allowed_hosts_entry_stops_the_start_with_a_clear_error() {
    let root = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("serve")
        .current_dir(root.path())
        .env("ROCKET_CONFIG", root.path().join("none.toml"))
        .env("BERTH_DATA_DIR", root.path().join("data"))
        .env("BERTH_ALLOWED_HOSTS", "[\"berth.lan:5000\"]")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("allowed_hosts") && stderr.contains("berth.lan:5000"),
        "{stderr}"
    );
}

fn uuid_zero() -> &'static str {
    "00000000-0000-4000-8000-000000000000"
}
