//! The HTTP layer in-process: berth's Rocket built by `app` on a temporary
//! SQLite file and driven with Rocket's local client, without the job
//! runner. These tests need no root, LXC or busybox: error shapes,
//! validation, paging, auth, idempotency, the gate, the OpenAPI document
//! and the console's forms. Tests that make containers use the real thing
//! (tests/common).

pub mod local;

/// The database the in-process berths of this binary use (see tests/local).
#[allow(dead_code)]
const DATABASE: local::Database = local::Database::Sqlite;

use std::collections::BTreeSet;

use berth::config::AuthMode;
use local::{csrf_of, header, to_host, Local, TEMPLATE};
use rocket::http::{ContentType, Status};
use serde_json::{json, Value};

fn create_body(name: &str) -> Value {
    json!({ "name": name, "ostemplate": TEMPLATE })
}

/// Creates a container through the API; its create job stays queued.
async fn seed(berth: &Local, name: &str) -> (String, String) {
    let answer = berth.post_json("/v1/containers/", &create_body(name)).await;
    assert_eq!(answer.status, Status::Accepted, "{answer:?}");
    (
        answer.body["container_id"].as_str().unwrap().to_owned(),
        answer.body["job_id"].as_str().unwrap().to_owned(),
    )
}

async fn assert_nothing_stored(berth: &Local) {
    assert_eq!(berth.containers().await, json!([]));
    assert_eq!(berth.jobs().await, json!([]));
}

// ------------------------------------------------------------ error shapes

#[rocket::async_test]
async fn every_failure_is_answered_in_the_error_shape() {
    let berth = Local::start().await;
    for path in ["/v1/nope", "/v0.1/nope/", "/v1/containers/x/y/z"] {
        berth.get(path).await.assert_error(404, 2000);
    }
    // The console's paths answer non-browsers in the API's shape too.
    berth.get("/no/such/page").await.assert_error(404, 2000);

    let answer = Local::send(berth.client.delete("/v1/containers/")).await;
    answer.assert_error(405, 2001);
    let allow = answer.allow.clone().expect("405 names what is allowed");
    assert!(
        allow.contains("GET") && allow.contains("POST"),
        "{answer:?}"
    );

    let malformed = Local::send(
        berth
            .client
            .post("/v1/containers/")
            .header(ContentType::JSON)
            .body("{\"name\": "),
    )
    .await;
    malformed.assert_error(400, 1000);

    let untyped = Local::send(
        berth
            .client
            .post("/v1/containers/")
            .header(ContentType::Plain)
            .body(create_body("typed").to_string()),
    )
    .await;
    untyped.assert_error(415, 1004);

    for path in ["/v1/containers/not-a-uuid", "/v1/jobs/1234"] {
        berth.get(path).await.assert_error(400, 1003);
    }
    let unknown = uuid::Uuid::new_v4();
    berth
        .get(&format!("/v1/containers/{unknown}"))
        .await
        .assert_error(404, 2002);
    berth
        .get(&format!("/v1/jobs/{unknown}"))
        .await
        .assert_error(404, 2003);
    assert_nothing_stored(&berth).await;
}

// -------------------------------------------------------------- validation

#[rocket::async_test]
async fn bad_create_and_patch_bodies_are_refused_and_nothing_is_stored() {
    let berth = Local::start().await;
    let bad_creates = [
        json!({ "name": "bad name!", "ostemplate": TEMPLATE }),
        json!({ "name": "ok1", "ostemplate": TEMPLATE, "parameters": { "cpus": "0" } }),
        json!({ "name": "ok2", "ostemplate": TEMPLATE, "parameters": { "hostname": "-x" } }),
        json!({ "name": "ok3", "ostemplate": TEMPLATE, "parameters": { "nosuchkey": "1" } }),
        json!({ "name": "ok4", "ostemplate": TEMPLATE, "parameters": { "ipadd": "300.1.1.1" } }),
    ];
    for body in &bad_creates {
        let answer = berth.post_json("/v1/containers/", body).await;
        answer.assert_error(422, 1002);
    }
    let missing = berth
        .post_json(
            "/v1/containers/",
            &json!({ "name": "ok5", "ostemplate": "nosuch" }),
        )
        .await;
    missing.assert_error(422, 2004);
    assert_nothing_stored(&berth).await;

    let (id, _) = seed(&berth, "patched").await;
    let path = format!("/v1/containers/{id}");
    for parameters in [
        json!({ "cpus": "many" }),
        json!({ "memsize": "1", "memsize_units": "Q" }),
        json!({ "nameserver": "not-an-ip" }),
        json!({ "unknown": "x" }),
    ] {
        let answer = berth
            .patch_json(&path, &json!({ "parameters": parameters }))
            .await;
        answer.assert_error(422, 1002);
    }
    let container = berth.get(&path).await;
    assert_eq!(container.status, Status::Ok, "{container:?}");
    assert_eq!(container.body["container"]["parameters"], Value::Null);
    assert_eq!(
        berth.jobs().await.as_array().unwrap().len(),
        1,
        "only the create's job"
    );
}

// ------------------------------------------------------------------ paging

#[rocket::async_test]
async fn lists_page_with_cursors() {
    let berth = Local::start().await;
    for list in ["/v1/containers", "/v1/jobs"] {
        let empty = berth.get(list).await;
        assert_eq!(empty.status, Status::Ok, "{empty:?}");
        assert_eq!(empty.body["message"], "success");
        assert_eq!(empty.body["next_cursor"], Value::Null, "{empty:?}");
    }
    let mut made = Vec::new();
    for n in 0..5 {
        made.push(seed(&berth, &format!("paged{n}")).await.0);
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let answer = berth
            .get(&format!("/v1/containers?limit=2&cursor={cursor}"))
            .await;
        assert_eq!(answer.status, Status::Ok, "{answer:?}");
        let page = answer.body["containers"].as_array().unwrap();
        assert!(page.len() <= 2, "{answer:?}");
        seen.extend(page.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        pages += 1;
        match answer.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen, made, "every container once, oldest first");
    assert_eq!(pages, 3);
    // Without the runner nothing claims them: the lists hold still.
    let jobs = berth.jobs().await;
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .all(|job| job["status"] == "queued"),
        "{jobs}"
    );
    let jobs = berth.get("/v1/jobs?limit=4").await;
    assert_eq!(jobs.body["jobs"].as_array().unwrap().len(), 4);
    assert!(jobs.body["next_cursor"].is_string(), "{jobs:?}");
    for bad in ["limit=0", "limit=501", "limit=x", "cursor=garbage!"] {
        berth
            .get(&format!("/v1/containers?{bad}"))
            .await
            .assert_error(422, 1002);
    }
}

// -------------------------------------------------------------------- auth

#[rocket::async_test]
async fn tokens_are_required_checked_and_revocable() {
    let berth = Local::start_with(|s| s.auth = AuthMode::Token).await;
    berth.get("/v1/containers").await.assert_error(401, 4000);
    let wrong = Local::send(
        berth
            .client
            .get("/v1/containers")
            .header(header("Authorization", "Bearer not-a-token")),
    )
    .await;
    wrong.assert_error(401, 4000);

    let token = berth.service().create_token("billing").await.unwrap();
    let bearer = format!("Bearer {token}");
    let read = Local::send(
        berth
            .client
            .get("/v1/containers")
            .header(header("Authorization", bearer.clone())),
    )
    .await;
    assert_eq!(read.status, Status::Ok, "{read:?}");
    let created = Local::send(
        berth
            .client
            .post("/v1/containers/")
            .header(ContentType::JSON)
            .header(header("Authorization", bearer.clone()))
            .body(create_body("authed").to_string()),
    )
    .await;
    assert_eq!(created.status, Status::Accepted, "{created:?}");

    berth.service().revoke_token("billing").await.unwrap();
    let revoked = Local::send(
        berth
            .client
            .get("/v1/containers")
            .header(header("Authorization", bearer)),
    )
    .await;
    revoked.assert_error(401, 4000);
}

// ------------------------------------------------------------- idempotency

async fn post_with_key(berth: &Local, key: &str, body: &Value) -> local::Answer {
    Local::send(
        berth
            .client
            .post("/v1/containers/")
            .header(ContentType::JSON)
            .header(header("Idempotency-Key", key))
            .body(body.to_string()),
    )
    .await
}

#[rocket::async_test]
async fn an_idempotency_key_makes_a_retry_safe_and_a_reuse_an_error() {
    let berth = Local::start().await;
    let key = uuid::Uuid::new_v4().to_string();
    let first = post_with_key(&berth, &key, &create_body("once")).await;
    assert_eq!(first.status, Status::Accepted, "{first:?}");
    let retry = post_with_key(&berth, &key, &create_body("once")).await;
    assert_eq!(retry.status, Status::Accepted, "{retry:?}");
    assert_eq!(retry.body["job_id"], first.body["job_id"]);
    assert_eq!(retry.body["container_id"], first.body["container_id"]);
    assert_eq!(retry.location, first.location);
    assert!(first.location.is_some());
    assert_eq!(berth.containers().await.as_array().unwrap().len(), 1);
    assert_eq!(berth.jobs().await.as_array().unwrap().len(), 1);

    let other = post_with_key(&berth, &key, &create_body("other")).await;
    other.assert_error(422, 1007);
    assert_eq!(berth.containers().await.as_array().unwrap().len(), 1);
}

// -------------------------------------------------------------------- gate

#[rocket::async_test]
async fn the_gate_refuses_foreign_hosts_and_cross_site_changes() {
    let berth = Local::start_with(|s| s.allowed_hosts = vec!["berth.lan".into()]).await;
    for host in ["evil.example", "evil.example:5000", "10.0.0.1"] {
        let answer = Local::send(to_host(berth.client.get("/v1/containers"), host)).await;
        answer.assert_error(403, 4003);
        let answer = Local::send(
            to_host(berth.client.post("/v1/containers/"), host)
                .header(ContentType::JSON)
                .body(create_body("rebound").to_string()),
        )
        .await;
        answer.assert_error(403, 4003);
    }
    for host in ["localhost:5000", "127.0.0.1", "[::1]:5000", "BERTH.lan"] {
        let answer = Local::send(to_host(berth.client.get("/v1/containers"), host)).await;
        assert_eq!(answer.status, Status::Ok, "{host}: {answer:?}");
    }
    for origin in ["https://evil.example", "null"] {
        let answer = Local::send(
            to_host(berth.client.post("/v1/containers/"), "127.0.0.1:5000")
                .header(ContentType::JSON)
                .header(header("Origin", origin))
                .body(create_body("forged").to_string()),
        )
        .await;
        answer.assert_error(403, 4002);
    }
    assert_nothing_stored(&berth).await;
    // berth's own origin gets through.
    let own = Local::send(
        to_host(berth.client.post("/v1/containers/"), "127.0.0.1:5000")
            .header(ContentType::JSON)
            .header(header("Origin", "http://127.0.0.1:5000"))
            .body(create_body("own").to_string()),
    )
    .await;
    assert_eq!(own.status, Status::Accepted, "{own:?}");
}

// ----------------------------------------------------------------- OpenAPI

/// `/v1/containers/<id>?<limit>` → `/v1/containers/{id}`, as the document
/// spells it.
fn openapi_path(rocket_path: &str) -> String {
    let path = rocket_path.split('?').next().unwrap();
    let path = path.trim_end_matches('/');
    path.split('/')
        .map(|segment| match segment.strip_prefix('<') {
            Some(name) => format!("{{{}}}", name.trim_end_matches('>').trim_end_matches("..")),
            None => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn operations(routes: impl Iterator<Item = (String, String)>) -> BTreeSet<(String, String)> {
    routes
        .map(|(method, path)| (method, openapi_path(&path)))
        .collect()
}

#[rocket::async_test]
async fn the_served_document_describes_the_mounted_routes() {
    let berth = Local::start().await;
    let answer = berth.get("/v1/openapi.json").await;
    assert_eq!(answer.status, Status::Ok, "{answer:?}");
    let documented: BTreeSet<(String, String)> = answer.body["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|key| ["get", "post", "patch", "delete", "put"].contains(&key.as_str()))
                .map(move |method| (method.to_uppercase(), path.trim_end_matches('/').to_owned()))
        })
        .collect();
    // What the running app serves: the API under /v1 and the health routes
    // at the root (the console's pages are not part of the API).
    let health = operations(
        berth::api::health_routes()
            .iter()
            .map(|route| (route.method.as_str().to_owned(), route.uri.to_string())),
    );
    let mounted: BTreeSet<(String, String)> = operations(
        berth
            .client
            .rocket()
            .routes()
            .map(|route| (route.method.as_str().to_owned(), route.uri.to_string())),
    )
    .into_iter()
    .filter(|op| op.1.starts_with("/v1/") || health.contains(op))
    .collect();
    assert!(mounted.len() > 10, "{mounted:?}");
    assert_eq!(
        mounted, documented,
        "the running app and its document agree"
    );
}

// ----------------------------------------------------------------- console

#[rocket::async_test]
async fn console_pages_and_forms_work_and_refuse_forged_posts() {
    let berth = Local::start().await;
    let (id, job) = seed(&berth, "shown").await;
    for path in [
        "/".to_owned(),
        "/containers/new".to_owned(),
        "/jobs".to_owned(),
        format!("/containers/{id}"),
        format!("/jobs/{job}"),
    ] {
        let page = Local::send(
            berth
                .client
                .get(path.clone())
                .header(header("Accept", "text/html")),
        )
        .await;
        assert_eq!(page.status, Status::Ok, "{path}: {page:?}");
        assert_eq!(page.content_type, Some(ContentType::HTML), "{path}");
    }
    let missing = Local::send(
        berth
            .client
            .get("/no/such/page")
            .header(header("Accept", "text/html")),
    )
    .await;
    assert_eq!(missing.status, Status::NotFound);
    assert!(missing.text.contains("<h1>Not Found</h1>"), "{missing:?}");

    // A form without the visitor's CSRF secret is refused, and nothing made.
    let forged = Local::send(
        berth
            .client
            .post("/containers")
            .header(ContentType::Form)
            .body(format!("name=forged&ostemplate={TEMPLATE}")),
    )
    .await;
    assert_eq!(forged.status, Status::Forbidden, "{forged:?}");
    let forged = Local::send(
        berth
            .client
            .post("/containers")
            .header(ContentType::Form)
            .body(format!("name=forged&ostemplate={TEMPLATE}&csrf=guessed")),
    )
    .await;
    assert_eq!(forged.status, Status::Forbidden, "{forged:?}");
    assert_eq!(berth.containers().await.as_array().unwrap().len(), 1);

    // With the secret (the tracked client keeps the cookie it is bound to):
    // a bad value comes back with the reason beside its field.
    let form = berth.get("/containers/new").await;
    let csrf = csrf_of(&form.text);
    let refused = Local::send(
        berth
            .client
            .post("/containers")
            .header(ContentType::Form)
            .body(format!(
                "csrf={csrf}&name=bad+name%21&ostemplate={TEMPLATE}&cpus=0"
            )),
    )
    .await;
    assert_eq!(refused.status, Status::UnprocessableEntity, "{refused:?}");
    for (field, reason) in [("name", "letters, digits"), ("cpus", "whole number from 1")] {
        let marker = format!("<p class=\"field-error\" id=\"{field}-error\">");
        let at = refused
            .text
            .find(&marker)
            .unwrap_or_else(|| panic!("no error beside {field}: {}", refused.text));
        let error = &refused.text[at..][..refused.text[at..].find("</p>").unwrap()];
        assert!(error.contains(reason), "{field}: {error}");
    }
    assert_eq!(berth.containers().await.as_array().unwrap().len(), 1);

    // A good form is taken: a redirect to the new container.
    let created = Local::send(
        berth
            .client
            .post("/containers")
            .header(ContentType::Form)
            .body(format!("csrf={csrf}&name=made&ostemplate={TEMPLATE}&cpus=")),
    )
    .await;
    assert_eq!(created.status, Status::SeeOther, "{created:?}");
    assert!(created
        .location
        .as_deref()
        .is_some_and(|l| l.starts_with("/containers/")));
    assert_eq!(berth.containers().await.as_array().unwrap().len(), 2);
}

/// The nodes page lists this berth's node; its drain and online forms
/// refuse a post without the visitor's CSRF secret and change nothing;
/// with the secret they drain the node (the create form then says it takes
/// no containers, beside the node choice) and put it back online.
#[rocket::async_test]
async fn the_nodes_page_refuses_forged_drains_and_drains_with_the_secret() {
    let berth = Local::start().await;
    let listed = berth.get("/v1/nodes").await;
    let name = listed.body["nodes"][0]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("a node: {listed:?}"))
        .to_owned();
    let node_path = format!("/v1/nodes/{name}");
    let page = berth.get("/nodes").await;
    assert_eq!(page.status, Status::Ok, "{page:?}");
    assert_eq!(page.content_type, Some(ContentType::HTML));
    assert!(
        page.text.contains(&format!("<tr data-node=\"{name}\">")),
        "{}",
        page.text
    );
    assert!(
        page.text.contains("data-node-field=\"state\">online<"),
        "{}",
        page.text
    );

    for body in ["", "csrf=guessed"] {
        for action in ["drain", "online"] {
            let forged = Local::send(
                berth
                    .client
                    .post(format!("/nodes/{name}/{action}"))
                    .header(ContentType::Form)
                    .body(body),
            )
            .await;
            assert_eq!(
                forged.status,
                Status::Forbidden,
                "{action} {body:?}: {forged:?}"
            );
        }
    }
    assert_eq!(
        berth.get(&node_path).await.body["node"]["state"],
        "online",
        "a forged drain changed nothing"
    );

    let csrf = csrf_of(&page.text);
    let drained = Local::send(
        berth
            .client
            .post(format!("/nodes/{name}/drain"))
            .header(ContentType::Form)
            .body(format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(drained.status, Status::SeeOther, "{drained:?}");
    assert_eq!(drained.location.as_deref(), Some("/nodes"));
    assert_eq!(
        berth.get(&node_path).await.body["node"]["state"],
        "draining"
    );
    let page = berth.get("/nodes").await;
    assert!(
        page.text.contains("data-node-field=\"state\">draining<"),
        "{}",
        page.text
    );
    assert!(page
        .text
        .contains(&format!("action=\"/nodes/{name}/online\"")));

    let form = berth.get("/containers/new").await;
    assert!(
        form.text
            .contains(&format!("{name} (draining: takes no new containers)")),
        "{}",
        form.text
    );
    let refused = Local::send(
        berth
            .client
            .post("/containers")
            .header(ContentType::Form)
            .body(format!(
                "csrf={csrf}&name=placed&ostemplate={TEMPLATE}&node={name}"
            )),
    )
    .await;
    assert_eq!(refused.status, Status::UnprocessableEntity, "{refused:?}");
    let marker = "<p class=\"field-error\" id=\"node-error\">";
    let at = refused
        .text
        .find(marker)
        .unwrap_or_else(|| panic!("no error beside the node: {}", refused.text));
    let error = &refused.text[at..][..refused.text[at..].find("</p>").unwrap()];
    assert!(error.contains("is draining"), "{error}");
    assert_eq!(berth.containers().await, json!([]));

    let online = Local::send(
        berth
            .client
            .post(format!("/nodes/{name}/online"))
            .header(ContentType::Form)
            .body(format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(online.status, Status::SeeOther, "{online:?}");
    assert_eq!(berth.get(&node_path).await.body["node"]["state"], "online");

    let unknown = Local::send(
        berth
            .client
            .post("/nodes/no-such-node/drain")
            .header(ContentType::Form)
            .header(header("Accept", "text/html"))
            .body(format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(unknown.status, Status::NotFound, "{unknown:?}");
}

/// A container's page offers a move to the other nodes; the form needs
/// the page's CSRF secret, queues the move job, and says why when the
/// move is refused.
#[rocket::async_test]
async fn a_container_is_moved_from_its_page() {
    use berth::cluster::peer::ClusterSecret;
    use berth::db::nodes::{self, NodeRecord};
    use berth::domain::node::AdminState;

    let berth = Local::start_with(|settings| {
        settings.cluster_secret =
            Some(ClusterSecret::parse("in-process-secret-0123456789abcdef").unwrap());
    })
    .await;
    let (id, _) = seed(&berth, "mover").await;
    let page = berth.get(&format!("/containers/{id}")).await;
    assert!(
        !page.text.contains("/migrate\""),
        "one node: no move form: {}",
        page.text
    );

    let now = chrono::Utc::now();
    let other = NodeRecord {
        name: "other".into(),
        host_id: "other-host".into(),
        api_url: "http://127.0.0.1:9".into(),
        version: "test".into(),
        cpus: 1,
        memory_bytes: 1 << 30,
        disk_bytes: 1 << 30,
        state: AdminState::Online,
        started_at: now,
        heartbeat_at: now,
        templates: Vec::new(),
    };
    let mut conn = berth.service().db().pool().acquire().await.unwrap();
    nodes::register(&mut conn, &other).await.unwrap();
    drop(conn);

    let page = berth.get(&format!("/containers/{id}")).await;
    assert!(
        page.text
            .contains(&format!("action=\"/containers/{id}/migrate\"")),
        "{}",
        page.text
    );
    assert!(page.text.contains("<option value=\"other\">other</option>"));
    let move_path = format!("/containers/{id}/migrate");
    for body in ["node=other", "csrf=guessed&node=other"] {
        let forged = Local::send(
            berth
                .client
                .post(move_path.clone())
                .header(ContentType::Form)
                .body(body),
        )
        .await;
        assert_eq!(forged.status, Status::Forbidden, "{body}: {forged:?}");
    }
    let csrf = csrf_of(&page.text);
    let queued = Local::send(
        berth
            .client
            .post(move_path.clone())
            .header(ContentType::Form)
            .body(format!("csrf={csrf}&node=other")),
    )
    .await;
    assert_eq!(queued.status, Status::SeeOther, "{queued:?}");
    assert_eq!(
        queued.location.as_deref(),
        Some(&*format!("/containers/{id}"))
    );
    let jobs = berth.jobs().await;
    let actions: Vec<&str> = jobs
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["migrate", "create"], "newest first: {jobs}");

    // To the node it is on: refused, said on the page, nothing queued.
    let here = berth.container_node(&id).await;
    let refused = Local::send(
        berth
            .client
            .post(move_path)
            .header(ContentType::Form)
            .body(format!("csrf={csrf}&node={here}")),
    )
    .await;
    assert_eq!(refused.status, Status::SeeOther, "{refused:?}");
    let page = berth.get(&format!("/containers/{id}")).await;
    assert!(page.text.contains("is already on node"), "{}", page.text);
    assert_eq!(berth.jobs().await.as_array().unwrap().len(), 2);
}

// ---------------------------------------------------------------- database

/// The database is rocket_db_pools' `berth`: a URL under
/// `[databases.berth]` is where berth keeps its rows (not the default file
/// in the data directory), and `/metrics` reads them through the pool's
/// request guard.
#[rocket::async_test]
async fn the_database_is_the_one_configured_under_databases_berth() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("elsewhere.db");
    let figment = berth::config::figment()
        .merge(("log_level", "off"))
        .merge(("berth.data_dir", dir.path().join("data")))
        .merge((
            berth::config::DATABASE_URL_KEY,
            format!("sqlite://{}", file.display()),
        ));
    let settings = berth::config::Settings::from_figment(&figment)
        .unwrap()
        .resolve()
        .unwrap();
    local::put_template(&settings.template_dir, TEMPLATE);
    let rocket = berth::app::build_without_runner(figment, settings)
        .await
        .unwrap();
    let client = rocket::local::asynchronous::Client::tracked(rocket)
        .await
        .unwrap();
    let created = client
        .post("/v1/containers/")
        .header(ContentType::JSON)
        .body(create_body("c1").to_string())
        .dispatch()
        .await;
    assert_eq!(created.status(), Status::Accepted);
    assert!(file.exists());
    assert!(!dir.path().join("data/berth.db").exists());

    let metrics = client.get("/metrics").dispatch().await;
    assert_eq!(metrics.status(), Status::Ok);
    let text = metrics.into_string().await.unwrap();
    assert!(
        text.contains("berth_containers{status=\"creating\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("berth_jobs{status=\"queued\",action=\"create\"} 1"),
        "{text}"
    );
}

// ------------------------------------------------------------------- nodes

/// One berth is one node: listed, drained and put back through the API,
/// and every bad request about nodes refused in the error shape with
/// nothing stored.
#[rocket::async_test]
async fn a_berth_is_a_node_that_can_be_drained() {
    let berth = Local::start().await;
    let nodes = berth.get("/v1/nodes").await;
    assert_eq!(nodes.status, Status::Ok, "{nodes:?}");
    let listed = nodes.body["nodes"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    let name = listed[0]["name"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["state"], "online");
    assert!(listed[0]["capacity"]["memory_bytes"].as_u64().unwrap() > 0);

    berth
        .get("/v1/nodes/no-such-node")
        .await
        .assert_error(404, 2007);
    let body = json!({ "state": "asleep" });
    berth
        .patch_json(&format!("/v1/nodes/{name}"), &body)
        .await
        .assert_error(422, 1002);
    let unknown = json!({ "name": "c1", "ostemplate": TEMPLATE, "node": "elsewhere" });
    berth
        .post_json("/v1/containers/", &unknown)
        .await
        .assert_error(422, 1008);
    let malformed = json!({ "name": "c1", "ostemplate": TEMPLATE, "node": "a b" });
    berth
        .post_json("/v1/containers/", &malformed)
        .await
        .assert_error(422, 1002);

    let drained = berth
        .patch_json(
            &format!("/v1/nodes/{name}"),
            &json!({ "state": "draining" }),
        )
        .await;
    assert_eq!(drained.status, Status::Ok, "{drained:?}");
    assert_eq!(drained.body["node"]["state"], "draining");
    berth
        .post_json("/v1/containers/", &create_body("c1"))
        .await
        .assert_error(409, 3007);
    assert_nothing_stored(&berth).await;

    berth
        .patch_json(&format!("/v1/nodes/{name}"), &json!({ "state": "online" }))
        .await;
    let (id, _job) = seed(&berth, "c1").await;
    let container = berth.get(&format!("/v1/containers/{id}")).await;
    assert_eq!(container.body["container"]["node"], name.as_str());
    let node = berth.get(&format!("/v1/nodes/{name}")).await;
    assert_eq!(node.body["node"]["containers"], 1, "{node:?}");
}

/// exec and the terminal ask for a running container on this node, and
/// the terminal for a WebSocket; each refusal in the error shape.
#[rocket::async_test]
async fn exec_and_the_terminal_refuse_what_they_cannot_attach_to() {
    let berth = Local::start().await;
    let (id, _) = seed(&berth, "attach-me").await;
    let exec = format!("/v1/containers/{id}/exec");
    let console = format!("/v1/containers/{id}/console");
    let command = json!({ "command": ["true"] });

    // Still being created: not running.
    berth
        .post_json(&exec, &command)
        .await
        .assert_error(409, 3030);
    // A plain GET is not a WebSocket.
    berth.get(&console).await.assert_error(400, 1006);

    // Running, but on another node: that node attaches to it.
    sqlx::query("UPDATE containers SET status = $1, node = $2 WHERE id = $3")
        .bind("running")
        .bind("elsewhere")
        .bind(id.clone())
        .execute(berth.service().db().pool())
        .await
        .unwrap();
    let answer = berth.post_json(&exec, &command).await;
    answer.assert_error(409, 3031);
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .contains("'elsewhere'"),
        "{answer:?}"
    );
    let upgrade = berth
        .client
        .get(console)
        .header(header("Connection", "Upgrade"))
        .header(header("Upgrade", "websocket"))
        .header(header("Sec-WebSocket-Version", "13"))
        .header(header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="));
    Local::send(upgrade).await.assert_error(409, 3031);
}

// ------------------------------------------------------------ storage pools

#[rocket::async_test]
async fn without_storage_tables_there_is_one_dir_pool_and_containers_record_it() {
    let berth = Local::start().await;
    let answer = berth.get("/v1/storage").await;
    assert_eq!(answer.status, Status::Ok, "{answer:?}");
    let pools = answer.body["storage"].as_array().unwrap();
    assert_eq!(pools.len(), 1, "{answer:?}");
    let pool = &pools[0];
    assert_eq!(pool["name"], "default");
    assert_eq!(pool["driver"], "dir");
    assert_eq!(pool["usable"], true);
    assert_eq!(pool["reason"], Value::Null);
    // Numbers are strings, as everywhere in the API.
    let capacity: u64 = pool["capacity"].as_str().unwrap().parse().unwrap();
    let free: u64 = pool["free"].as_str().unwrap().parse().unwrap();
    assert!(capacity > 0 && free <= capacity, "{pool}");

    let (id, _) = seed(&berth, "ct1").await;
    let answer = berth.get(&format!("/v1/containers/{id}")).await;
    assert_eq!(answer.body["container"]["storage"], "default", "{answer:?}");
}

#[rocket::async_test]
async fn an_unknown_or_unusable_pool_is_refused_and_nothing_is_stored() {
    let plain = tempfile::tempdir().unwrap();
    let path = plain.path().to_owned();
    let berth = Local::start_with(move |settings| {
        settings.storage = vec![
            berth::config::StorageTable {
                name: "local".into(),
                driver: "dir".into(),
                path: None,
            },
            berth::config::StorageTable {
                name: "fast".into(),
                driver: "btrfs".into(),
                path: Some(path),
            },
        ];
    })
    .await;
    let answer = berth.get("/v1/storage").await;
    let pools = answer.body["storage"].as_array().unwrap();
    assert_eq!(pools[0]["name"], "local");
    let fast = &pools[1];
    assert_eq!(fast["driver"], "btrfs");
    // A temporary directory is not on btrfs here: unusable, and why.
    assert_eq!(fast["usable"], false, "{fast}");
    let reason = fast["reason"].as_str().unwrap();
    assert!(reason.contains("not on a btrfs file system"), "{reason}");

    let mut body = create_body("ct1");
    body["storage"] = json!("nowhere");
    let answer = berth.post_json("/v1/containers/", &body).await;
    answer.assert_error(422, 1010);
    assert!(answer.body["message"].as_str().unwrap().contains("nowhere"));
    body["storage"] = json!("fast");
    let answer = berth.post_json("/v1/containers/", &body).await;
    answer.assert_error(409, 3010);
    assert!(
        answer.body["message"]
            .as_str()
            .unwrap()
            .contains("not on a btrfs"),
        "{answer:?}"
    );
    assert_nothing_stored(&berth).await;

    // Without one, the first pool.
    let (id, _) = seed(&berth, "ct2").await;
    let answer = berth.get(&format!("/v1/containers/{id}")).await;
    assert_eq!(answer.body["container"]["storage"], "local", "{answer:?}");
}

#[rocket::async_test]
async fn snapshot_requests_are_checked_and_a_taken_name_is_refused() {
    let berth = Local::start().await;
    let (id, _) = seed(&berth, "ct1").await;
    let path = format!("/v1/containers/{id}/snapshots");
    for bad in ["", "-x", "a/b", "a b", &"s".repeat(64)] {
        let answer = berth.post_json(&path, &json!({ "name": bad })).await;
        answer.assert_error(422, 1002);
    }
    berth
        .post_json(&path, &json!({ "name": "s1", "x": 1 }))
        .await
        .assert_error(400, 1001);
    let answer = berth.post_json(&path, &json!({ "name": "s1" })).await;
    assert_eq!(answer.status, Status::Accepted, "{answer:?}");
    let job = answer.body["job_id"].as_str().unwrap().to_owned();
    let answer = berth.get(&format!("/v1/jobs/{job}")).await;
    assert_eq!(answer.body["action"], "snapshot", "{answer:?}");
    // Taken by the queued job: the same name again is a conflict.
    berth
        .post_json(&path, &json!({ "name": "s1" }))
        .await
        .assert_error(409, 3012);
    // Not listed until its job has made it.
    let answer = berth.get(&path).await;
    assert_eq!(answer.body["snapshots"], json!([]), "{answer:?}");
    // Neither restored nor deleted before then: no such snapshot yet.
    berth
        .post_json(&format!("{path}/s1/restore"), &json!({}))
        .await
        .assert_error(404, 2010);
    let answer = Local::send(berth.client.delete(format!("{path}/nope"))).await;
    answer.assert_error(404, 2010);
    let missing = "54e21881-8620-4bb0-95f1-05f143973a6e";
    berth
        .get(&format!("/v1/containers/{missing}/snapshots"))
        .await
        .assert_error(404, 2002);

    // Cancelling the queued snapshot forgets it: the name is free again.
    let answer = Local::send(berth.client.delete(format!("/v1/jobs/{job}"))).await;
    assert_eq!(answer.status, Status::Ok, "{answer:?}");
    let answer = berth.post_json(&path, &json!({ "name": "s1" })).await;
    assert_eq!(answer.status, Status::Accepted, "{answer:?}");
}

#[rocket::async_test]
async fn a_clone_takes_its_sources_parameters_but_not_its_address() {
    let berth = Local::start().await;
    let mut body = create_body("web1");
    body["parameters"] = json!({ "hostname": "web1.example", "ipadd": "10.0.0.5", "cpus": "1" });
    let answer = berth.post_json("/v1/containers/", &body).await;
    let id = answer.body["container_id"].as_str().unwrap().to_owned();
    let clone = format!("/v1/containers/{id}/clone");

    berth
        .post_json(&clone, &json!({ "name": "web1" }))
        .await
        .assert_error(409, 3000);
    berth
        .post_json(&clone, &json!({ "name": "-bad" }))
        .await
        .assert_error(422, 1002);
    berth
        .post_json(&clone, &json!({ "name": "web2", "snapshot": "nope" }))
        .await
        .assert_error(404, 2010);
    berth
        .post_json(
            &clone,
            &json!({ "name": "web2", "parameters": { "cpus": "x" } }),
        )
        .await
        .assert_error(422, 1002);

    let answer = berth.post_json(&clone, &json!({ "name": "web2" })).await;
    assert_eq!(answer.status, Status::Accepted, "{answer:?}");
    let copy = answer.body["container_id"].as_str().unwrap();
    let answer = berth.get(&format!("/v1/containers/{copy}")).await;
    let container = &answer.body["container"];
    assert_eq!(container["ostemplate"], TEMPLATE);
    assert_eq!(container["storage"], "default");
    assert_eq!(container["parameters"]["cpus"], "1");
    assert_eq!(container["parameters"]["ipadd"], Value::Null, "{container}");
    assert_eq!(
        container["parameters"]["hostname"],
        Value::Null,
        "{container}"
    );

    let body = json!({ "name": "web3", "parameters": { "ipadd": "10.0.0.7" } });
    let answer = berth.post_json(&clone, &body).await;
    let copy = answer.body["container_id"].as_str().unwrap();
    let answer = berth.get(&format!("/v1/containers/{copy}")).await;
    assert_eq!(answer.body["container"]["parameters"]["ipadd"], "10.0.0.7");
}

// ----------------------------------------------------------------- backups

/// A berth backup archive made by hand, as the format describes it: the
/// manifest first, then `rootfs/`.
fn berth_archive(name: &str, parameters: Value) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let manifest = json!({
        "format": "berth-backup", "format_version": 1, "name": name,
        "ostemplate": "debian-12", "parameters": parameters,
        "berth_version": "0.1.0", "created_at": "2026-11-30T04:00:00Z"
    });
    std::fs::write(dir.path().join("berth-backup.json"), manifest.to_string()).unwrap();
    std::fs::create_dir_all(dir.path().join("rootfs/sbin")).unwrap();
    let output = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "tar -c -f - -C {} berth-backup.json rootfs | zstd -q -c",
            dir.path().display()
        ))
        .output()
        .unwrap();
    assert!(output.status.success());
    output.stdout
}

async fn upload(berth: &Local, content_type: ContentType, bytes: Vec<u8>) -> local::Answer {
    Local::send(
        berth
            .client
            .post("/v1/backups")
            .header(content_type)
            .body(bytes),
    )
    .await
}

#[rocket::async_test]
async fn backups_are_uploaded_listed_restored_and_deleted_with_clear_errors() {
    let berth = Local::start().await;
    let zstd = ContentType::new("application", "zstd");
    let backup_dir = berth.dir.path().join("data/backups");
    let archive = berth_archive("orig", json!({"hostname": "orig", "cpus": "1"}));

    // Not archives, or not typed as one: refused, nothing kept.
    upload(&berth, zstd.clone(), b"garbage".to_vec())
        .await
        .assert_error(422, 1020);
    upload(&berth, zstd.clone(), archive[..archive.len() / 2].to_vec())
        .await
        .assert_error(422, 1020);
    upload(&berth, ContentType::Plain, archive.clone())
        .await
        .assert_error(415, 1004);
    // A manifest naming what berth would never write (it ends up in pages
    // and in a download's Content-Disposition) is refused.
    let forged = berth_archive("evil\"\r\nX-Injected: 1", json!(null));
    upload(&berth, zstd.clone(), forged)
        .await
        .assert_error(422, 1020);
    assert_eq!(std::fs::read_dir(&backup_dir).unwrap().count(), 0);

    let answer = upload(&berth, zstd, archive).await;
    assert_eq!(answer.status, Status::Created, "{answer:?}");
    let backup = answer.body["backup"].clone();
    assert_eq!(backup["kind"], "berth");
    assert_eq!(backup["container_name"], "orig");
    assert_eq!(backup["container_id"], Value::Null);
    let id = backup["id"].as_str().unwrap().to_owned();
    let listed = berth.get("/v1/backups").await;
    assert_eq!(listed.body["backups"], json!([backup]));
    assert_eq!(
        berth.get(&format!("/v1/backups/{id}")).await.body["backup"],
        backup
    );
    berth.get("/v1/backups/nope").await.assert_error(400, 1003);
    berth
        .get("/v1/backups?container=nope")
        .await
        .assert_error(400, 1003);
    let unknown = uuid::Uuid::new_v4();
    berth
        .get(&format!("/v1/backups/{unknown}"))
        .await
        .assert_error(404, 2020);

    // Restore: the backup's parameters, the request's over them.
    let restore = |name: &str, extra: Value| {
        let mut body = json!({ "name": name, "backup": id });
        if let Value::Object(extra) = extra {
            body.as_object_mut().unwrap().extend(extra);
        }
        body
    };
    let answer = berth
        .post_json(
            "/v1/containers/",
            &restore("r1", json!({"parameters": {"hostname": "r1"}})),
        )
        .await;
    assert_eq!(answer.status, Status::Accepted, "{answer:?}");
    let container = berth
        .get(&format!(
            "/v1/containers/{}",
            answer.body["container_id"].as_str().unwrap()
        ))
        .await
        .body["container"]
        .clone();
    assert_eq!(container["ostemplate"], "debian-12");
    assert_eq!(
        container["parameters"],
        json!({"hostname": "r1", "cpus": "1"})
    );
    berth
        .post_json("/v1/containers/", &restore("r1", json!({})))
        .await
        .assert_error(409, 3000);
    berth
        .post_json(
            "/v1/containers/",
            &restore("r2", json!({"ostemplate": TEMPLATE})),
        )
        .await
        .assert_error(422, 1002);
    berth
        .post_json("/v1/containers/", &json!({"name": "r3", "backup": unknown}))
        .await
        .assert_error(404, 2020);
    berth
        .post_json("/v1/containers/", &json!({"name": "r4"}))
        .await
        .assert_error(400, 1001);

    // A backup of a container: a job, with or without a body.
    let (container_id, _) = seed(&berth, "c1").await;
    let path = format!("/v1/containers/{container_id}/backups");
    let answer = Local::send(berth.client.post(path.clone())).await;
    assert_eq!(answer.status, Status::Accepted, "{answer:?}");
    assert!(answer.body["backup_id"].is_string(), "{answer:?}");
    let job = berth.get(answer.location.as_deref().unwrap()).await;
    assert_eq!(job.body["action"], "backup");
    berth
        .post_json(&path, &json!({"keep_last": 0}))
        .await
        .assert_error(422, 1002);
    berth
        .post_json(&path, &json!({"keep": 1}))
        .await
        .assert_error(400, 1001);
    berth
        .post_json(&format!("/v1/containers/{unknown}/backups"), &json!({}))
        .await
        .assert_error(404, 2002);

    let deleted = Local::send(berth.client.delete(format!("/v1/backups/{id}"))).await;
    assert_eq!(deleted.status, Status::Ok, "{deleted:?}");
    berth
        .get(&format!("/v1/backups/{id}"))
        .await
        .assert_error(404, 2020);
    assert_eq!(std::fs::read_dir(&backup_dir).unwrap().count(), 0);
}
