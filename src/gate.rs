//! Which requests berth answers at all: while authentication is off, only
//! those addressed to a loopback name or an allowed host (DNS rebinding);
//! and no state-changing API request sent by another site's page (CSRF).
//!
//! A fairing cannot answer a request itself, so a refused request is
//! rerouted to a path no route serves, with the refusal in its local
//! cache; the API's catchers answer it in the error shape. The original
//! method and URI stay in the local cache for the access log.

use std::net::IpAddr;

use rocket::data::Data;
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::uri::Origin;
use rocket::http::Method;
use rocket::Request;

use crate::error::ApiError;

/// Where a refused request is sent: under the API, so the API's catchers
/// (JSON) answer it, and on no route, so nothing else runs.
const REFUSED_PATH: &str = "/v1/.refused";

/// The gate's settings (from `ResolvedSettings`).
pub struct Gate {
    /// Only loopback and `allowed_hosts` names are served (auth is off).
    check_host: bool,
    /// Lower-case host names or addresses, without port.
    allowed_hosts: Vec<String>,
}

/// Why the gate refused a request, for the catchers; and what the request
/// was before it was rerouted, for the access log.
#[derive(Default)]
pub struct GateRefusal(pub Option<Refused>);

pub struct Refused {
    pub error: ApiError,
    pub method: Method,
    pub uri: String,
}

impl Gate {
    pub fn new(check_host: bool, allowed_hosts: Vec<String>) -> Self {
        Gate {
            check_host,
            allowed_hosts: allowed_hosts
                .into_iter()
                .map(|host| host.to_ascii_lowercase())
                .collect(),
        }
    }

    fn refusal(&self, req: &Request<'_>) -> Option<ApiError> {
        if self.check_host {
            if let Err(error) = self.host_allowed(req) {
                return Some(error);
            }
        }
        // A WebSocket is a GET, but the terminal it opens acts: a page of
        // another site must not open one with the browser's cookie.
        let changes_state = !matches!(req.method(), Method::Get | Method::Head | Method::Options)
            || is_websocket(req);
        if changes_state && in_api(req.uri().path().as_str()) && !same_origin(req) {
            let origin = req
                .headers()
                .get_one("Origin")
                .or_else(|| req.headers().get_one("Referer"))
                .unwrap_or_default();
            return Some(ApiError::CrossOrigin(printable(origin)));
        }
        None
    }

    fn host_allowed(&self, req: &Request<'_>) -> Result<(), ApiError> {
        let Some(host) = req.host() else {
            // A `Host` that does not parse is refused; none at all is an
            // HTTP/1.0 client, never a browser (browsers always send one).
            return match req.headers().get_one("Host") {
                Some(raw) => Err(ApiError::HostNotAllowed(printable(raw))),
                None => Ok(()),
            };
        };
        let domain = host.domain().as_str();
        if is_loopback_name(domain)
            || self
                .allowed_hosts
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(domain))
        {
            return Ok(());
        }
        Err(ApiError::HostNotAllowed(printable(domain)))
    }
}

/// Whether the request asks to become a WebSocket.
fn is_websocket(req: &Request<'_>) -> bool {
    req.headers().get("Upgrade").any(|value| {
        value
            .split(',')
            .any(|v| v.trim().eq_ignore_ascii_case("websocket"))
    })
}

/// `localhost`, an address in 127.0.0.0/8, or `[::1]`.
fn is_loopback_name(domain: &str) -> bool {
    if domain.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let address = domain
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .unwrap_or(domain);
    address
        .parse::<IpAddr>()
        .is_ok_and(|address| address.is_loopback())
}

/// Whether `path` is under one of the API's bases.
pub fn in_api(path: &str) -> bool {
    crate::api::BASES.iter().any(|base| {
        path.strip_prefix(base)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// `scheme://host[:port]` of an `Origin` or `Referer` value, without path.
fn origin_of(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    Some((scheme, authority))
}

/// Whether a request comes from a page of this very berth, as its `Origin`
/// (or, without one, its `Referer`) says. A request naming neither is not a
/// browser's cross-site request (browsers send `Origin` with every
/// cross-origin request that changes anything), so it passes.
pub fn same_origin(req: &Request<'_>) -> bool {
    let headers = req.headers();
    let Some(claimed) = headers
        .get_one("Origin")
        .or_else(|| headers.get_one("Referer"))
    else {
        return true;
    };
    // `Host`, or HTTP/2's `:authority`.
    let Some(host) = req.host().map(|host| host.to_string()) else {
        return false;
    };
    let scheme = if req.rocket().config().tls_enabled() {
        "https"
    } else {
        "http"
    };
    match origin_of(claimed) {
        Some((claimed_scheme, authority)) => {
            claimed_scheme.eq_ignore_ascii_case(scheme) && authority.eq_ignore_ascii_case(&host)
        }
        None => false, // "null" and other opaque origins
    }
}

/// A header value fit for a message: no control characters, bounded.
fn printable(value: &str) -> String {
    value
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect()
}

#[rocket::async_trait]
impl Fairing for Gate {
    fn info(&self) -> Info {
        Info {
            name: "request gate (Host and Origin checks)",
            kind: Kind::Request,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        let Some(error) = self.refusal(req) else {
            return;
        };
        log::warn!(
            "{} {}: refused: {error} (Origin {:?}, Host {:?})",
            req.method(),
            req.uri(),
            req.headers().get_one("Origin"),
            req.headers().get_one("Host"),
        );
        let refused = Refused {
            error,
            method: req.method(),
            uri: req.uri().to_string(),
        };
        req.local_cache(|| GateRefusal(Some(refused)));
        req.set_method(Method::Get);
        req.set_uri(Origin::parse(REFUSED_PATH).expect("a valid origin URI"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_are_the_loopback_ones() {
        for name in ["localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "[::1]"] {
            assert!(is_loopback_name(name), "{name}");
        }
        for name in [
            "evil.example",
            "localhost.evil.example",
            "10.0.0.1",
            "[::2]",
            "0.0.0.0",
            "127.0.0.1.evil.example",
            "",
        ] {
            assert!(!is_loopback_name(name), "{name}");
        }
    }

    #[test]
    fn origins_are_scheme_and_authority() {
        assert_eq!(
            origin_of("http://127.0.0.1:5000"),
            Some(("http", "127.0.0.1:5000"))
        );
        assert_eq!(
            origin_of("https://host.example/containers/x?y#z"),
            Some(("https", "host.example"))
        );
        assert_eq!(origin_of("null"), None);
    }

    #[test]
    fn api_paths_are_under_a_base() {
        assert!(in_api("/v1/containers"));
        assert!(in_api("/v0.1"));
        assert!(!in_api("/v10/containers"));
        assert!(!in_api("/containers/x"));
    }
}
