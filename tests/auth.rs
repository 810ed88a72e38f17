//! API authentication: tokens made by the CLI, bearer checks, the limit on
//! failed attempts, and what is (not) stored.

mod common;

use common::Berth;
use reqwest::StatusCode;
use serde_json::json;

#[test]
fn token_mode_refuses_requests_without_a_valid_token() {
    let berth = Berth::start_with_env(&[("BERTH_AUTH", "token")]);
    let token = berth.create_token("ops");
    assert!(token.starts_with("berth_") && token.len() > 40, "{token}");

    let response = berth
        .client
        .get(berth.url("/v1/containers/"))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["code"], 4000);
    assert_eq!(body.as_object().unwrap().len(), 2);

    for header in [
        "Bearer berth_not-a-token",
        "Basic b3BzOm9wcw==",
        &format!("Bearer {token}x"),
    ] {
        let response = berth
            .client
            .post(berth.url("/v1/containers"))
            .header("Authorization", header)
            .json(&json!({
                "name": "ct-denied", "ostemplate": "template1"
            }))
            .send()
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{header}");
    }
    // Nothing was created by the refused requests.
    let mut berth = berth;
    berth.authorize(&token);
    let (status, list) = berth.get("/v1/containers");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["containers"], json!([]));
    // Health stays open for probes.
    assert_eq!(
        reqwest::blocking::get(berth.url("/healthz"))
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[test]
fn jobs_record_which_token_asked_and_revoked_tokens_stop_working() {
    let mut berth = Berth::start_with_env(&[("BERTH_AUTH", "token")]);
    let token = berth.create_token("billing");
    berth.authorize(&token);
    let (status, answer) = berth.post(
        "/v1/containers",
        &json!({ "name": "ct-auth", "ostemplate": "template1" }),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let job = berth.job_done(answer["job_id"].as_str().unwrap());
    assert_eq!(job["requested_by"], "token:billing");

    let listed = berth.cli(&["token", "list"]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(listed.starts_with("billing\t"), "{listed}");
    assert!(!listed.contains(&token));

    assert!(berth.cli(&["token", "revoke", "billing"]).status.success());
    let (status, body) = berth.get("/v1/containers");
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(
        !berth.cli(&["token", "revoke", "billing"]).status.success(),
        "revoking twice is an error"
    );
}

#[test]
fn failed_attempts_are_limited_per_address() {
    let berth = Berth::start_with_env(&[("BERTH_AUTH", "token")]);
    let token = berth.create_token("ops");
    let mut limited = None;
    for _ in 0..20 {
        let response = berth
            .client
            .get(berth.url("/v1/jobs"))
            .header("Authorization", "Bearer berth_guess")
            .send()
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = limited.expect("guessing is limited");
    assert!(
        limited.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
    let body: serde_json::Value = limited.json().unwrap();
    assert_eq!(body["code"], 4001);
    // The limit never keeps a valid token out: whoever shares the address
    // (every local user shares 127.0.0.1) cannot lock the others out.
    let response = berth
        .client
        .get(berth.url("/v1/jobs"))
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = berth
        .client
        .get(berth.url("/v1/jobs"))
        .header("Authorization", "Bearer berth_guess")
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[test]
fn a_client_cannot_choose_the_address_its_failures_count_against() {
    let berth = Berth::start_with_env(&[("BERTH_AUTH", "token")]);
    let token = berth.create_token("ops");
    let get = |authorization: &str, real_ip: &str| {
        berth
            .client
            .get(berth.url("/v1/containers/"))
            .header("Authorization", authorization)
            .header("X-Real-IP", real_ip)
            .header("X-Forwarded-For", real_ip)
            .send()
            .unwrap()
            .status()
    };
    // Failures sent "from" many made-up addresses all count against the
    // socket's address: the headers are not believed.
    let mut limited = false;
    for n in 0..20 {
        let status = get("Bearer nope", &format!("10.9.9.{n}"));
        if status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            break;
        }
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert!(limited, "the failures counted against one address");
    // And the valid token gets in, whatever address it claims.
    assert_eq!(get(&format!("Bearer {token}"), "10.9.9.9"), StatusCode::OK);
    // The access log shows the real peer.
    let log = berth.log();
    let access: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(" GET /v1/containers/ ") && line.ends_with(" ms"))
        .collect();
    assert!(!access.is_empty(), "{log}");
    for line in access {
        assert!(
            line.contains("127.0.0.1") && !line.contains("10.9.9."),
            "{line}"
        );
    }
}

#[test]
fn tokens_made_and_revoked_by_the_cli_count_at_once() {
    let mut berth = Berth::start_with_env(&[("BERTH_AUTH", "token")]);
    let first = berth.create_token("first");
    berth.authorize(&first);
    // berth has read the tokens it knows.
    assert_eq!(berth.get("/v1/jobs").0, StatusCode::OK);
    let second = berth.create_token("second");
    let with = |token: &str| {
        berth
            .client
            .get(berth.url("/v1/jobs"))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(with(&second), StatusCode::OK, "a new token works at once");
    let mut current = second;
    for _ in 0..3 {
        assert!(berth.cli(&["token", "revoke", "second"]).status.success());
        assert_eq!(with(&current), StatusCode::UNAUTHORIZED, "revoked at once");
        assert_eq!(with(&first), StatusCode::OK);
        // A new token under the old name is another token.
        let again = berth.create_token("second");
        assert_eq!(with(&again), StatusCode::OK);
        assert_eq!(with(&current), StatusCode::UNAUTHORIZED);
        current = again;
    }
}

#[test]
fn no_file_berth_writes_holds_a_token_in_clear() {
    let mut berth = Berth::start_with_env(&[("BERTH_AUTH", "token")]);
    let tokens: Vec<String> = ["a", "b"]
        .iter()
        .map(|name| berth.create_token(name))
        .collect();
    berth.authorize(&tokens[0]);
    let (status, _) = berth.get("/v1/containers");
    assert_eq!(status, StatusCode::OK);
    berth.terminate();
    let mut files = vec![berth.log_path()];
    let mut dirs = vec![berth.data_dir()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    assert!(files.iter().any(|f| f.ends_with("berth.db")));
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        for token in &tokens {
            let secret = &token["berth_".len()..];
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds a token",
                file.display()
            );
        }
    }
}

#[test]
fn listening_beyond_loopback_forces_token_authentication() {
    let berth = Berth::start_with_env(&[("BERTH_AUTH", "none"), ("ROCKET_ADDRESS", "0.0.0.0")]);
    let (status, body) = berth.get("/v1/containers");
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[test]
fn no_authentication_on_loopback_is_allowed_with_a_warning() {
    let berth = Berth::start_with_env(&[("BERTH_AUTH", "none")]);
    let (status, _) = berth.get("/v1/containers");
    assert_eq!(status, StatusCode::OK);
    assert!(
        berth.log().contains("API authentication is off"),
        "{}",
        berth.log()
    );
}
