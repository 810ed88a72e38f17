//! Failures Rocket decides before a handler runs (no route, wrong method,
//! body limits, panics), answered in the API's error shape.

use rocket::http::{Method, Status};
use rocket::{Catcher, Request};

use super::auth::AuthRefusal;
use crate::error::ApiError;
use crate::gate::GateRefusal;

pub fn catchers() -> Vec<Catcher> {
    rocket::catchers![not_found, fallback]
}

/// No route matched: a wrong method on a known path is a 405 naming the
/// methods that exist; anything else a 404.
#[rocket::catch(404)]
pub fn not_found(req: &Request<'_>) -> ApiError {
    if let Some(refused) = &req.local_cache(GateRefusal::default).0 {
        return refused.error.clone();
    }
    let path = req.uri().path().as_str();
    let mut allowed: Vec<Method> = req
        .rocket()
        .routes()
        .filter(|route| route.method != req.method() && path_matches(route.uri.path(), path))
        .map(|route| route.method)
        .collect();
    allowed.sort_by_key(|m| m.as_str());
    allowed.dedup();
    if allowed.is_empty() {
        ApiError::RouteNotFound {
            method: req.method().to_string(),
            path: printable(path),
        }
    } else {
        ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            path: printable(path),
            allowed: allowed
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

#[rocket::catch(default)]
pub fn fallback(status: Status, req: &Request<'_>) -> ApiError {
    if let Some(refusal) = &req.local_cache(|| AuthRefusal(None)).0 {
        return refusal.clone();
    }
    match status.code {
        413 => ApiError::PayloadTooLarge(
            req.limits()
                .get("json")
                .map(|l| l.to_string())
                .unwrap_or_else(|| "limit".into()),
        ),
        415 => ApiError::UnsupportedMediaType {
            got: req
                .content_type()
                .map_or_else(|| "none".to_owned(), ToString::to_string),
            expected: super::body::JSON_MEDIA_TYPE,
        },
        // Rocket answers 400 before routing when it cannot read a request:
        // an unknown method (QUERY, PROPFIND, …), which it replaces by GET,
        // or a URI that is not a path, which keeps its own method. So a
        // routeless 400 "GET" was a method Rocket does not know, and RFC 9110
        // (9.1) answers that with 501.
        400 if req.route().is_none() && req.method() == Method::Get => {
            ApiError::MethodNotImplemented
        }
        503 => ApiError::Unavailable,
        400..=499 => ApiError::BadRequest(status.reason_lossy().to_lowercase()),
        _ => ApiError::Internal(format!(
            "{status} while serving {} {}",
            req.method(),
            req.uri()
        )),
    }
}

/// Whether a route's path (`/v1/containers/<id>`) matches a request path.
fn path_matches(route: &str, path: &str) -> bool {
    let mut route_segments = route.split('/').filter(|s| !s.is_empty());
    let mut path_segments = path.split('/').filter(|s| !s.is_empty());
    loop {
        match (route_segments.next(), path_segments.next()) {
            (Some(r), _) if r.starts_with('<') && r.ends_with("..>") => return true,
            (Some(r), Some(_)) if r.starts_with('<') && r.ends_with('>') => {}
            (Some(r), Some(p)) if r == p => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The request path as it may appear in a message.
fn printable(path: &str) -> String {
    path.chars().filter(|c| !c.is_control()).take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::path_matches;

    #[test]
    fn matches_static_and_dynamic_segments_ignoring_slashes() {
        assert!(path_matches("/v1/containers/<id>", "/v1/containers/abc/"));
        assert!(path_matches("/v1/containers", "/v1/containers/"));
        assert!(!path_matches("/v1/containers/<id>", "/v1/containers"));
        assert!(!path_matches(
            "/v1/containers/<id>/start",
            "/v1/containers/abc/stop"
        ));
        assert!(path_matches("/static/<path..>", "/static/a/b.css"));
    }
}
