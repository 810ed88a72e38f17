//! The JSON API, mounted at `/v1` and `/v0.1`: handlers that read the
//! request, call the service and shape the answer.

mod attach;
mod auth;
mod backups;
mod body;
mod catchers;
mod cluster;
mod containers;
mod events;
mod health;
mod jobs;
mod nodes;
mod openapi;
mod os_templates;
mod paging;
mod query;
mod snapshots;
pub mod stats;
mod storage;

use rocket::http::{Header, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::Json;
use rocket::Route;
use serde_json::Value;
use uuid::Uuid;

use crate::error::ApiError;
use crate::service::IdempotencyKey;

pub use auth::{ApiAuth, Caller};
pub use catchers::catchers;
pub use health::{routes as health_routes, RequestCounter};

/// Where the API is mounted: the seed uses both prefixes.
pub const BASES: [&str; 2] = ["/v1", "/v0.1"];

pub fn routes() -> Vec<Route> {
    let mut routes = containers::routes();
    routes.extend(jobs::routes());
    routes.extend(nodes::routes());
    routes.extend(cluster::routes());
    routes.extend(os_templates::routes());
    routes.extend(events::routes());
    routes.extend(openapi::routes());
    routes.extend(attach::routes());
    routes.extend(stats::routes());
    routes.extend(storage::routes());
    routes.extend(snapshots::routes());
    routes.extend(backups::routes());
    routes
}

/// The API's answers for failures, for the console's catchers to give
/// clients that do not ask for HTML.
pub use catchers::{fallback as json_fallback, not_found as json_not_found};

/// The version prefix the request came in on, for links in answers.
pub struct ApiBase(&'static str);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ApiBase {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        let first = req.uri().path().segments().next().unwrap_or_default();
        let base = BASES
            .into_iter()
            .find(|base| base[1..] == *first)
            .unwrap_or(BASES[0]);
        Outcome::Success(ApiBase(base))
    }
}

impl ApiBase {
    pub fn job_url(&self, job: Uuid) -> String {
        format!("{}/jobs/{job}", self.0)
    }
}

/// The optional `Idempotency-Key` header. Take it as
/// `Result<Idempotency, ApiError>` so a malformed key is answered in the
/// API's error shape.
pub struct Idempotency(pub Option<IdempotencyKey>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Idempotency {
    type Error = ApiError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        match req.headers().get_one("Idempotency-Key") {
            None => Outcome::Success(Idempotency(None)),
            Some(raw) => match IdempotencyKey::parse(raw) {
                Ok(key) => Outcome::Success(Idempotency(Some(key))),
                Err(errors) => {
                    let error = ApiError::Validation(errors.to_string());
                    Outcome::Error((error.status(), error))
                }
            },
        }
    }
}

/// An answer that names a job: its JSON, and the job's URL in `Location`.
#[derive(rocket::Responder)]
#[response(content_type = "json")]
pub struct JobAnswer {
    inner: (Status, Json<Value>),
    location: Header<'static>,
}

impl JobAnswer {
    pub fn new(status: Status, location: String, body: Value) -> Self {
        JobAnswer {
            inner: (status, Json(body)),
            location: Header::new("Location", location),
        }
    }
}

/// Ids arrive as path text so that a malformed one is answered in the API's
/// error shape rather than by Rocket's guard.
pub fn parse_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(raw).map_err(|_| {
        ApiError::InvalidId(raw.chars().filter(|c| !c.is_control()).take(64).collect())
    })
}
