//! The in-process harness: berth's Rocket, built by the same `app` code the
//! binary uses, on a temporary data directory and SQLite file (or a
//! PostgreSQL server of its own, when the test binary's `DATABASE` says
//! so), driven by Rocket's local client. Built without the job runner, so
//! jobs are queued and answered but never run: nothing here needs root,
//! LXC or busybox.
#![allow(dead_code)]

#[path = "../pg/mod.rs"]
pub mod pg;

use std::path::Path;
use std::process::Command;

use berth::config::Settings;
use berth::db::Backend;
use berth::service::Service;
use rocket::http::{ContentType, Header, Status};
use rocket::local::asynchronous::{Client, LocalRequest, LocalResponse};
use serde_json::Value;
use tempfile::TempDir;

/// The template name the seed's examples use.
pub const TEMPLATE: &str = "template1";

/// Where an in-process berth keeps its data. Each test binary that uses
/// this harness says which, as `const DATABASE: local::Database` in its
/// crate root (tests/in_process_postgres.rs runs tests/in_process.rs's
/// tests again with `Postgres`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    Sqlite,
    Postgres,
}

pub struct Local {
    pub client: Client,
    /// Holds the database, templates and LXC path; removed on drop.
    pub dir: TempDir,
    /// The server holding the database, when it is PostgreSQL; stopped
    /// after the client is dropped.
    pub postgres: Option<pg::Postgres>,
}

impl Local {
    /// berth as `berth serve` would be with auth off.
    pub async fn start() -> Local {
        Local::start_with(|_| {}).await
    }

    /// berth with its settings changed by `change` first.
    pub async fn start_with(change: impl FnOnce(&mut Settings)) -> Local {
        let dir = tempfile::Builder::new()
            .prefix("berth-local-")
            .tempdir()
            .unwrap();
        let mut settings = Settings {
            data_dir: dir.path().join("data"),
            ..Settings::default()
        };
        let postgres = (crate::DATABASE == Database::Postgres).then(pg::Postgres::start);
        if let Some(postgres) = &postgres {
            settings.database_url = Some(postgres.create_database("berth"));
        }
        change(&mut settings);
        let settings = settings.resolve().unwrap();
        // A template in place keeps `first_os_template::provide` from building
        // one (it runs a shell script); no job unpacks it here.
        put_template(&settings.template_dir, TEMPLATE);
        let figment = berth::config::figment()
            .merge(("log_level", "off"))
            .merge(("port", 0));
        let rocket = berth::app::build_without_runner(figment, settings)
            .await
            .unwrap();
        let client = Client::tracked(rocket).await.unwrap();
        let local = Local {
            client,
            dir,
            postgres,
        };
        let expected = match crate::DATABASE {
            Database::Sqlite => Backend::Sqlite,
            Database::Postgres => Backend::Postgres,
        };
        assert_eq!(local.service().db().backend(), expected);
        local
    }

    pub fn service(&self) -> &Service {
        self.client.rocket().state::<Service>().unwrap()
    }

    /// Sends `request` and reads its answer as JSON.
    pub async fn send(request: LocalRequest<'_>) -> Answer {
        Answer::read(request.dispatch().await).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        Local::send(self.client.get(path.to_owned())).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Answer {
        Local::send(
            self.client
                .post(path.to_owned())
                .header(ContentType::JSON)
                .body(body.to_string()),
        )
        .await
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> Answer {
        Local::send(
            self.client
                .patch(path.to_owned())
                .header(ContentType::JSON)
                .body(body.to_string()),
        )
        .await
    }

    /// Every container, through the API.
    /// The node a container lives on.
    pub async fn container_node(&self, id: &str) -> String {
        let answer = self.get(&format!("/v1/containers/{id}")).await;
        answer.body["container"]["node"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn containers(&self) -> Value {
        let answer = self.get("/v1/containers?limit=500").await;
        assert_eq!(answer.status, Status::Ok, "{answer:?}");
        answer.body["containers"].clone()
    }

    /// Every job, through the API.
    pub async fn jobs(&self) -> Value {
        let answer = self.get("/v1/jobs?limit=500").await;
        assert_eq!(answer.status, Status::Ok, "{answer:?}");
        answer.body["jobs"].clone()
    }
}

/// A template archive (a real, tiny one) named `name` in `dir`.
pub fn put_template(dir: &Path, name: &str) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("sbin")).unwrap();
    let status = Command::new("tar")
        .arg("-czf")
        .arg(dir.join(format!("{name}.tar.gz")))
        .arg("-C")
        .arg(root.path())
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
}

/// One answer: status, headers of interest, and the body (JSON if it is).
#[derive(Debug)]
pub struct Answer {
    pub status: Status,
    pub content_type: Option<ContentType>,
    pub location: Option<String>,
    pub allow: Option<String>,
    pub text: String,
    pub body: Value,
}

impl Answer {
    pub async fn read(response: LocalResponse<'_>) -> Answer {
        let status = response.status();
        let content_type = response.content_type();
        let header = |name: &str| response.headers().get_one(name).map(str::to_owned);
        let location = header("Location");
        let allow = header("Allow");
        let text = response.into_string().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            content_type,
            location,
            allow,
            text,
            body,
        }
    }

    /// Asserts the API's error shape with this status and code.
    pub fn assert_error(&self, status: u16, code: i64) {
        assert_eq!(
            (self.status.code, self.body["code"].as_i64()),
            (status, Some(code)),
            "{self:?}"
        );
        assert!(
            self.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "the error says why: {self:?}"
        );
        assert_eq!(
            self.body.as_object().map(|o| o.len()),
            Some(2),
            "exactly code and message: {self:?}"
        );
    }
}

/// A header for a request.
pub fn header(name: &'static str, value: impl Into<String>) -> Header<'static> {
    Header::new(name, value.into())
}

/// `request` addressed to `host`, as a server would read it: the `Host`
/// header, and the host Rocket parses from it (the local client sets none
/// from the header, and the gate reads the parsed one).
pub fn to_host<'c>(mut request: LocalRequest<'c>, host: &str) -> LocalRequest<'c> {
    if let Ok(parsed) = rocket::http::uri::Host::parse_owned(host.to_owned()) {
        request.inner_mut().set_host(parsed);
    }
    request.header(Header::new("Host", host.to_owned()))
}

/// The hidden CSRF field's value in a console page.
pub fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no CSRF field: {html}"))
        + marker.len();
    html[start..][..html[start..].find('"').unwrap()].to_owned()
}
