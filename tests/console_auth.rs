//! The console's login, sessions, CSRF protection and security headers,
//! over plain HTTP (a browser's cookie handling is mimicked by `WebClient`).

mod common;

use common::{location, unique_name, Berth, Options, WebClient};
use reqwest::StatusCode;
use serde_json::Value;

fn berth_with(auth: &str) -> Berth {
    Berth::start_with(Options {
        env: vec![("BERTH_AUTH".into(), auth.into())],
        templates: vec!["template1"],
    })
}

/// The `Set-Cookie` header that sets `name`.
fn set_cookie(response: &reqwest::blocking::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|h| h.to_str().unwrap().to_owned())
        .find(|h| h.starts_with(&format!("{name}=")))
}

/// Every file under the data directory, as bytes.
fn data_files(berth: &Berth) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut dirs = vec![berth.data_dir()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                files.push((path, bytes));
            }
        }
    }
    files
}

fn container_count(berth: &Berth) -> usize {
    let (status, body) = berth.get("/v1/containers");
    assert_eq!(status, StatusCode::OK, "{body}");
    body["containers"].as_array().unwrap().len()
}

#[test]
fn token_mode_console_needs_a_login_with_a_valid_token() {
    let mut berth = berth_with("token");
    let web = WebClient::new(&berth);
    for page in ["/", "/jobs", "/containers/new", "/containers"] {
        let answer = web.get(page);
        assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(location(&answer), "/login", "{page}");
    }
    let refused = web.post("/containers", &[("name", "x")]);
    assert_eq!(refused.status().as_u16() / 100, 3, "{refused:?}");
    assert!(web.get("/static/app.css").status().is_success());

    let login = web.get("/login");
    assert_eq!(login.status(), StatusCode::OK);
    let html = login.text().unwrap();
    assert!(html.contains("type=\"password\""), "{html}");
    assert!(html.contains("name=\"token\""), "{html}");
    assert!(!html.contains("Log out"), "nobody is logged in yet");

    let token = berth.create_token("ops");
    // Login CSRF: a login form posted without the visitor's secret (or
    // from another site) opens no session, even with a valid token.
    let csrf = web.csrf("/login");
    for (fields, origin) in [
        (vec![("token", token.as_str())], "self"),
        (vec![("csrf", "forged"), ("token", token.as_str())], "self"),
        (
            vec![("csrf", csrf.as_str()), ("token", token.as_str())],
            "http://evil.example",
        ),
    ] {
        let answer = if origin == "self" {
            web.post("/login", &fields)
        } else {
            web.post_with("/login", &fields, &[("Origin", origin)])
        };
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{fields:?}");
        assert!(set_cookie(&answer, "berth_session").is_none());
    }

    let wrong = web.post("/login", &[("csrf", &csrf), ("token", "berth_not-a-token")]);
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&wrong, "berth_session").is_none());
    assert!(wrong.text().unwrap().contains("not a valid API token"));
    assert_eq!(web.get("/").status(), StatusCode::SEE_OTHER);

    let logged_in = web.post("/login", &[("csrf", &csrf), ("token", &token)]);
    assert_eq!(logged_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&logged_in), "/");
    let cookie = set_cookie(&logged_in, "berth_session").expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute}: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let session = web.cookie("berth_session").unwrap();
    assert!(session.len() >= 43 && !token.contains(&session));

    let home = web.get("/");
    assert_eq!(home.status(), StatusCode::OK);
    let html = home.text().unwrap();
    assert!(html.contains(">ops</span>"), "the name is shown: {html}");
    assert!(html.contains("action=\"/logout\""), "{html}");
    assert_eq!(web.get("/login").status(), StatusCode::SEE_OTHER);

    // The session id is stored only as its digest.
    for (path, bytes) in data_files(&berth) {
        assert!(
            !bytes
                .windows(session.len())
                .any(|w| w == session.as_bytes()),
            "{} holds the session id",
            path.display()
        );
    }

    // Jobs queued from the console say who asked.
    let csrf = web.csrf("/containers/new");
    let name = unique_name("console");
    let created = web.post(
        "/containers",
        &[
            ("csrf", &csrf),
            ("name", &name),
            ("ostemplate", "template1"),
        ],
    );
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert!(location(&created).starts_with("/containers/"));
    berth.authorize(&token);
    let (_, jobs) = berth.get("/v1/jobs");
    let job = &jobs["jobs"][0];
    assert_eq!(job["requested_by"], "console:ops", "{jobs}");
    berth.job_done(job["id"].as_str().unwrap());

    // The console's script reads the API with the session cookie, but the
    // cookie never authorises a change.
    let reader = reqwest::blocking::Client::new();
    let read = reader
        .get(berth.url("/v1/containers"))
        .header("Cookie", format!("berth_session={session}"))
        .send()
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let write = reader
        .post(berth.url("/v1/containers"))
        .header("Cookie", format!("berth_session={session}"))
        .json(&serde_json::json!({ "name": unique_name("nope"), "ostemplate": "template1" }))
        .send()
        .unwrap();
    assert_eq!(write.status(), StatusCode::UNAUTHORIZED);

    // Logging out ends the session on the server, not only in the browser.
    let csrf = web.csrf("/");
    let out = web.post("/logout", &[("csrf", &csrf)]);
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&out), "/login");
    assert!(
        web.cookie("berth_session").is_none(),
        "the cookie is removed"
    );
    web.set_cookie("berth_session", &session);
    assert_eq!(web.get("/").status(), StatusCode::SEE_OTHER);

    // A revoked token's sessions stop working.
    let csrf = web.csrf("/login");
    let again = web.post("/login", &[("csrf", &csrf), ("token", &token)]);
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(web.get("/jobs").status(), StatusCode::OK);
    let revoked = berth.cli(&["token", "revoke", "ops"]);
    assert!(revoked.status.success());
    let after = web.get("/jobs");
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&after), "/login");
}

#[test]
fn failed_logins_are_limited_per_address() {
    let berth = berth_with("token");
    let token = berth.create_token("ops");
    let web = WebClient::new(&berth);
    let csrf = web.csrf("/login");
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let answer = web.post("/login", &[("csrf", &csrf), ("token", "berth_guess")]);
        statuses.push(answer.status().as_u16());
    }
    assert_eq!(statuses[0], 401, "{statuses:?}");
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
    let wrong = web.post("/login", &[("csrf", &csrf), ("token", "berth_guess")]);
    assert_eq!(wrong.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(set_cookie(&wrong, "berth_session").is_none());
    assert!(wrong.text().unwrap().contains("Too many failed attempts"));
    // The right token still gets in: whoever shares the address cannot
    // lock its owner out.
    let right = web.post("/login", &[("csrf", &csrf), ("token", &token)]);
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&right, "berth_session").is_some());
}

/// With authentication off the console is open, but a form posted from
/// another site (or without the page's secret) still creates nothing.
#[test]
fn cross_site_form_posts_create_nothing() {
    let berth = berth_with("none");
    let web = WebClient::new(&berth);
    assert_eq!(web.get("/").status(), StatusCode::OK);
    let login = web.get("/login");
    assert_eq!(
        login.status(),
        StatusCode::SEE_OTHER,
        "no login without auth"
    );
    let csrf = web.csrf("/containers/new");
    let cookie = web.cookie("berth_csrf").expect("a CSRF cookie");
    let name = unique_name("csrf");
    let form = |secret: &str| {
        vec![
            ("csrf".to_owned(), secret.to_owned()),
            ("name".to_owned(), name.clone()),
            ("ostemplate".to_owned(), "template1".to_owned()),
        ]
    };
    let post = |fields: Vec<(String, String)>, headers: &[(&str, &str)]| {
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        web.post_with("/containers", &fields, headers)
    };
    let own = berth.url("");
    type Attempt<'a> = (&'a str, Vec<(String, String)>, Vec<(&'a str, &'a str)>);
    let attempts: Vec<Attempt> = vec![
        (
            "no CSRF field",
            form("")[1..].to_vec(),
            vec![("Origin", own.as_str())],
        ),
        (
            "a wrong CSRF secret",
            form(&"A".repeat(43)),
            vec![("Origin", own.as_str())],
        ),
        (
            "a foreign Origin",
            form(&csrf),
            vec![("Origin", "http://evil.example")],
        ),
        ("an opaque Origin", form(&csrf), vec![("Origin", "null")]),
        (
            "a foreign Referer",
            form(&csrf),
            vec![("Referer", "http://evil.example/form.html")],
        ),
    ];
    for (what, fields, headers) in attempts {
        let answer = post(fields, &headers);
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{what}");
        assert!(answer.text().unwrap().contains("was refused"), "{what}");
        assert_eq!(container_count(&berth), 0, "{what}");
    }
    // Without the cookie the form's secret proves nothing.
    web.forget_cookies();
    let answer = post(form(&csrf), &[("Origin", own.as_str())]);
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    assert_eq!(container_count(&berth), 0);

    // The same form from the console's own page works: the checks above
    // failed for the reasons they name.
    web.set_cookie("berth_csrf", &cookie);
    let created = post(
        form(&csrf),
        &[
            ("Origin", own.as_str()),
            ("Referer", &berth.url("/containers/new")),
        ],
    );
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    assert_eq!(container_count(&berth), 1);
    let (_, jobs) = berth.get("/v1/jobs");
    assert_eq!(jobs["jobs"][0]["requested_by"], Value::Null, "{jobs}");
    berth.job_done(jobs["jobs"][0]["id"].as_str().unwrap());

    // The action buttons are protected the same way.
    let id = location(&created)
        .strip_prefix("/containers/")
        .unwrap()
        .to_owned();
    let start = web.post(&format!("/containers/{id}/start"), &[]);
    assert_eq!(start.status(), StatusCode::FORBIDDEN);
    let delete = web.post_with(
        &format!("/containers/{id}/delete"),
        &[("csrf", &csrf)],
        &[("Origin", "http://evil.example")],
    );
    assert_eq!(delete.status(), StatusCode::FORBIDDEN);
    assert_eq!(berth.container(&id)["status"], "stopped");
}

#[test]
fn console_pages_carry_security_headers() {
    let berth = berth_with("none");
    let web = WebClient::new(&berth);
    let csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
               connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    for page in ["/", "/jobs", "/containers/new", "/no/such/page"] {
        let answer = web.get(page);
        let headers = answer.headers();
        assert_eq!(headers["content-security-policy"], csp, "{page}");
        assert_eq!(headers["x-frame-options"], "DENY", "{page}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{page}");
        assert_eq!(headers["referrer-policy"], "same-origin", "{page}");
        let html = answer.text().unwrap();
        assert!(
            !html.contains("<script>") && !html.contains(" style="),
            "{page}"
        );
    }
    let token_mode = berth_with("token");
    let login = WebClient::new(&token_mode).get("/login");
    assert_eq!(login.headers()["content-security-policy"], csp);
    assert_eq!(login.headers()["x-frame-options"], "DENY");
}

/// Logs `web` in with `token` and returns the session's CSRF secret.
fn log_in(web: &WebClient, token: &str) -> String {
    let csrf = web.csrf("/login");
    let answer = web.post("/login", &[("csrf", &csrf), ("token", token)]);
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&answer), "/");
    web.csrf("/")
}

#[test]
fn the_console_script_changes_things_only_with_the_sessions_csrf_header() {
    let mut berth = berth_with("token");
    let token = berth.create_token("ops");
    let web = WebClient::new(&berth);
    let csrf = log_in(&web, &token);
    let session = web.cookie("berth_session").unwrap();
    let client = reqwest::blocking::Client::new();
    let containers_url = berth.url("/v1/containers");
    let create = |headers: &[(&str, &str)]| {
        let mut request = client
            .post(&containers_url)
            .header("Cookie", format!("berth_session={session}"))
            .json(&serde_json::json!({ "name": unique_name("hdr"), "ostemplate": "template1" }));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().unwrap()
    };
    // The cookie alone, a wrong secret, or the right one from another
    // site: refused, and nothing is created.
    let origin = berth.url("");
    for (headers, status, code) in [
        (vec![], StatusCode::UNAUTHORIZED, 4000),
        (
            vec![("X-CSRF-Token", "forged")],
            StatusCode::UNAUTHORIZED,
            4000,
        ),
        (
            vec![
                ("X-CSRF-Token", csrf.as_str()),
                ("Origin", "http://evil.example"),
            ],
            StatusCode::FORBIDDEN,
            4002,
        ),
    ] {
        let refused = create(&headers);
        assert_eq!(refused.status(), status, "{headers:?}");
        let body: Value = refused.json().unwrap();
        assert_eq!(body["code"], code, "{body}");
    }
    berth.authorize(&token);
    assert_eq!(container_count(&berth), 0);

    let accepted = create(&[("X-CSRF-Token", &csrf), ("Origin", &origin)]);
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let body: Value = accepted.json().unwrap();
    let job = berth.job_done(body["job_id"].as_str().unwrap());
    assert_eq!(job["requested_by"], "console:ops", "{job}");

    // A session that ended authorises nothing, header or not.
    let out = web.post("/logout", &[("csrf", &csrf)]);
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        create(&[("X-CSRF-Token", &csrf)]).status(),
        StatusCode::UNAUTHORIZED
    );
}

/// The token shown once on the tokens page after it was created.
fn created_token(html: &str) -> String {
    let marker = "id=\"created-token\" class=\"mono\" type=\"text\" readonly value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no new token: {html}"))
        + marker.len();
    html[start..][..html[start..].find('"').unwrap()].to_owned()
}

#[test]
fn tokens_page_creates_shows_once_and_revokes_with_the_sessions() {
    let berth = berth_with("token");
    let ops = berth.create_token("ops");
    let web = WebClient::new(&berth);
    let csrf = log_in(&web, &ops);

    let page = web.get("/tokens");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().unwrap();
    assert!(
        html.contains("ops <span class=\"muted\">(this session)</span>"),
        "{html}"
    );

    // Refused names come back beside the field, nothing is made.
    for (name, problem) in [("has space", "must be 1 to 64"), ("ops", "exists")] {
        let refused = web.post("/tokens", &[("csrf", &csrf), ("name", name)]);
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        let html = refused.text().unwrap();
        assert!(html.contains("id=\"token-name-error\""), "{html}");
        assert!(html.contains(problem), "{name}: {html}");
    }
    assert_eq!(
        web.post("/tokens", &[("name", "nocsrf")]).status(),
        StatusCode::FORBIDDEN
    );

    let made = web.post("/tokens", &[("csrf", &csrf), ("name", "billing")]);
    assert_eq!(made.status(), StatusCode::CREATED);
    let billing = created_token(&made.text().unwrap());
    assert!(billing.starts_with("berth_"), "{billing}");
    // Shown once: the list never carries it again.
    let again = web.get("/tokens").text().unwrap();
    assert!(again.contains("data-token=\"billing\""), "{again}");
    assert!(!again.contains(&billing));

    let api = reqwest::blocking::Client::new();
    let with = |token: &str| {
        api.get(berth.url("/v1/containers"))
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(with(&billing), StatusCode::OK);
    let other_browser = WebClient::new(&berth);
    log_in(&other_browser, &billing);
    assert_eq!(other_browser.get("/jobs").status(), StatusCode::OK);

    let confirm = web.get("/tokens/billing/revoke");
    assert_eq!(confirm.status(), StatusCode::OK);
    assert!(confirm
        .text()
        .unwrap()
        .contains("every console session opened with it ends"));
    assert_eq!(
        web.get("/tokens/nobody/revoke").status(),
        StatusCode::NOT_FOUND
    );
    let revoked = web.post("/tokens/billing/revoke", &[("csrf", &csrf)]);
    assert_eq!(revoked.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&revoked), "/tokens");
    assert_eq!(with(&billing), StatusCode::UNAUTHORIZED);
    let ended = other_browser.get("/jobs");
    assert_eq!(ended.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&ended), "/login");
    assert_eq!(with(&ops), StatusCode::OK);

    // Revoking the token of this very session logs it out.
    let own = web.post("/tokens/ops/revoke", &[("csrf", &csrf)]);
    assert_eq!(own.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&own), "/login");
    assert_eq!(web.get("/tokens").status(), StatusCode::SEE_OTHER);
    assert_eq!(with(&ops), StatusCode::UNAUTHORIZED);
}

#[test]
fn tokens_page_changes_nothing_without_token_authentication() {
    let berth = berth_with("none");
    let web = WebClient::new(&berth);
    let page = web.get("/tokens");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().unwrap();
    assert!(html.contains("Authentication is off"), "{html}");
    assert!(!html.contains("action=\"/tokens\""), "{html}");
    let csrf = web.csrf("/containers/new");
    let refused = web.post("/tokens", &[("csrf", &csrf), ("name", "sneaky")]);
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let listed = berth.cli(&["token", "list"]);
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains("sneaky"),
        "{listed:?}"
    );
}
