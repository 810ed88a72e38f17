//! `/cluster`: what nodes ask of each other, signed with the cluster
//! secret (never a user's token): taking in the files of a container that
//! moves here, and removing what a failed move left.

use std::net::{IpAddr, Ipv4Addr};

use rocket::data::{Data, ToByteUnit};
use rocket::http::ContentType;
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::Json;
use rocket::{Route, State};
use serde_json::{json, Value};

use super::parse_id;
use super::ApiAuth;
use crate::cluster::peer::{TalliedReader, Tally, AUTH_HEADER};
use crate::config::ResolvedSettings;
use crate::error::{ApiError, ApiResult};
use crate::service::Arrivals;

pub fn routes() -> Vec<Route> {
    rocket::routes![check, receive, discard]
}

/// Another node of the cluster, proven by a request signed with the
/// cluster secret.
pub struct ClusterPeer;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for ClusterPeer {
    type Error = ApiError;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ApiError> {
        let (Some(settings), Some(auth)) = (
            req.rocket().state::<ResolvedSettings>(),
            req.rocket().state::<ApiAuth>(),
        ) else {
            let error = ApiError::Internal("settings are not managed".into());
            return Outcome::Error((error.status(), error));
        };
        let refuse = |error: ApiError| Outcome::Error((error.status(), error));
        let client = req.client_ip().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let Some(header) = req.headers().get_one(AUTH_HEADER) else {
            return refuse(ApiError::Unauthorized(format!(
                "a node-to-node request is signed in the {AUTH_HEADER} header"
            )));
        };
        // Without a secret of its own, this node can verify no signature.
        let Some(secret) = &settings.cluster_secret else {
            return refuse(ApiError::Unauthorized(
                "this node has no cluster_secret set: it verifies no request from another node \
                 (set the same one on every node)"
                    .into(),
            ));
        };
        let now = chrono::Utc::now().timestamp();
        match secret.verify(
            req.method().as_str(),
            req.uri().path().as_str(),
            header,
            now,
        ) {
            Ok(()) => Outcome::Success(ClusterPeer),
            Err(why) => {
                // Guessing the secret is limited as guessing a token is.
                if let Err(wait) = auth.failures().check(client) {
                    return refuse(ApiError::TooManyAttempts(wait.as_secs().max(1)));
                }
                auth.failures().record_failure(client);
                refuse(ApiError::Unauthorized(why.to_string()))
            }
        }
    }
}

/// Whether this node would take in container `id`'s files now: a move
/// asks before it stops the container.
#[rocket::get("/cluster/migrations/<id>")]
async fn check(
    peer: Result<ClusterPeer, ApiError>,
    arrivals: &State<Arrivals>,
    id: &str,
) -> ApiResult<Json<Value>> {
    peer?;
    arrivals.check(parse_id(id)?).await?;
    Ok(Json(json!({ "message": "success" })))
}

/// Takes in the files of container `id`, which a running move is bringing
/// to this node (a tar stream, `application/x-tar`). Answers with what
/// arrived, for the sender to compare with what it sent.
#[rocket::put("/cluster/migrations/<id>", data = "<files>")]
async fn receive(
    peer: Result<ClusterPeer, ApiError>,
    arrivals: &State<Arrivals>,
    content_type: Option<&ContentType>,
    id: &str,
    files: Data<'_>,
) -> ApiResult<Json<Value>> {
    peer?;
    let id = parse_id(id)?;
    if content_type.map(ToString::to_string).as_deref() != Some("application/x-tar") {
        return Err(ApiError::UnsupportedMediaType {
            got: content_type.map_or_else(|| "none".to_owned(), ToString::to_string),
            expected: "application/x-tar",
        });
    }
    let tally = Tally::default();
    // A container's files have no size limit but the file system's.
    let mut reader = TalliedReader::new(files.open(u64::MAX.bytes()), tally.clone());
    let arrived = arrivals.receive(id, &mut reader, &tally).await?;
    Ok(Json(json!({
        "message": "success",
        "sha256": arrived.sha256,
        "bytes": arrived.bytes.to_string(),
    })))
}

/// Removes the copy of container `id` that a failed move left here; says
/// why its arrival failed (`failure`), if this node knows.
#[rocket::delete("/cluster/migrations/<id>")]
async fn discard(
    peer: Result<ClusterPeer, ApiError>,
    arrivals: &State<Arrivals>,
    id: &str,
) -> ApiResult<Json<Value>> {
    peer?;
    let failure = arrivals.discard(parse_id(id)?).await?;
    Ok(Json(json!({ "message": "success", "failure": failure })))
}
