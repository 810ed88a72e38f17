//! Request bodies: JSON only, within the size limit, every field known,
//! every failure an `ApiError` the handler can return as it is.

use rocket::data::{Data, FromData, Outcome, ToByteUnit};
use rocket::Request;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The limit for JSON bodies, unless Rocket's `limits.json` says otherwise.
const DEFAULT_JSON_LIMIT_KIB: u64 = 64;

/// What a JSON body must be sent as.
pub const JSON_MEDIA_TYPE: &str = "application/json";

/// A JSON body. Take it as `Result<JsonBody<T>, ApiError>` so that every
/// way a body can be wrong reaches the client in the API's error shape.
pub struct JsonBody<T>(pub T);

#[rocket::async_trait]
impl<'r, T: DeserializeOwned> FromData<'r> for JsonBody<T> {
    type Error = ApiError;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r, Self> {
        match read(req, data).await {
            Ok(value) => Outcome::Success(JsonBody(value)),
            Err(error) => Outcome::Error((error.status(), error)),
        }
    }
}

async fn read<T: DeserializeOwned>(req: &Request<'_>, data: Data<'_>) -> Result<T, ApiError> {
    let limit = req
        .limits()
        .get("json")
        .unwrap_or(DEFAULT_JSON_LIMIT_KIB.kibibytes());
    read_limited(req, data, limit).await
}

/// A JSON body read like `JsonBody`, within `limit` instead of Rocket's
/// `limits.json` (exec's stdin travels in its body).
pub async fn read_limited<T: DeserializeOwned>(
    req: &Request<'_>,
    data: Data<'_>,
    limit: rocket::data::ByteUnit,
) -> Result<T, ApiError> {
    // Required, not assumed: a page of another site can send a body
    // without a type (or as text/plain) without asking the browser's
    // permission first, but not one that says application/json.
    match req.content_type() {
        Some(content_type)
            if content_type.is_json() || content_type.sub().as_str().ends_with("+json") => {}
        other => {
            return Err(ApiError::UnsupportedMediaType {
                got: other.map_or_else(|| "none".to_owned(), ToString::to_string),
                expected: JSON_MEDIA_TYPE,
            })
        }
    }
    // Bytes, not a string: a body that is not UTF-8 is malformed JSON,
    // which serde_json reports as such.
    let body = data
        .open(limit)
        .into_bytes()
        .await
        .map_err(|e| ApiError::BadRequest(format!("cannot read the request body: {e}")))?;
    if !body.is_complete() {
        return Err(ApiError::PayloadTooLarge(limit.to_string()));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::MalformedJson("the request body is empty".into()));
    }
    serde_json::from_slice(&body).map_err(|error| match error.classify() {
        serde_json::error::Category::Data => ApiError::InvalidBody(error.to_string()),
        _ => ApiError::MalformedJson(error.to_string()),
    })
}

/// A JSON body that may be left out: no body at all is `None`; a body
/// that is there must be valid like any `JsonBody`.
pub struct OptionalJsonBody<T>(pub Option<T>);

#[rocket::async_trait]
impl<'r, T: DeserializeOwned> FromData<'r> for OptionalJsonBody<T> {
    type Error = ApiError;

    async fn from_data(req: &'r Request<'_>, mut data: Data<'r>) -> Outcome<'r, Self> {
        if req.content_type().is_none() && data.peek(1).await.is_empty() {
            return Outcome::Success(OptionalJsonBody(None));
        }
        match read(req, data).await {
            Ok(value) => Outcome::Success(OptionalJsonBody(Some(value))),
            Err(error) => Outcome::Error((error.status(), error)),
        }
    }
}
