//! Who is calling the API: with `auth = "token"`, a valid
//! `Authorization: Bearer <token>`; failed attempts are limited per client
//! address, and never keep a valid token out.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use rocket::http::{Method, Status};
use rocket::request::{FromRequest, Outcome, Request};

use crate::auth::FailureLimiter;
use crate::config::AuthMode;
use crate::error::ApiError;
use crate::service::{Requester, Service};

/// Failed attempts an address may make per window before it must wait.
const MAX_FAILURES: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// The API's authentication settings and failure counts (managed state).
pub struct ApiAuth {
    mode: AuthMode,
    failures: FailureLimiter,
}

impl ApiAuth {
    pub fn new(mode: AuthMode) -> Self {
        ApiAuth {
            mode,
            failures: FailureLimiter::new(MAX_FAILURES, FAILURE_WINDOW),
        }
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// The failure counts, shared with the console's login so that guessing
    /// tokens there is limited exactly as it is here.
    pub fn failures(&self) -> &FailureLimiter {
        &self.failures
    }
}

/// The authenticated caller of an API route. Every API handler takes one;
/// a request that fails here never reaches the handler.
pub struct Caller(pub Requester);

/// Why a request was refused, for the 401/429 catchers (a failing guard
/// cannot hand its error to the catcher any other way).
#[derive(Default)]
pub struct AuthRefusal(pub Option<ApiError>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Caller {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let (Some(auth), Some(service)) = (
            req.rocket().state::<ApiAuth>(),
            req.rocket().state::<Service>(),
        ) else {
            return Outcome::Error((Status::InternalServerError, ()));
        };
        if auth.mode == AuthMode::None {
            return Outcome::Success(Caller(Requester::anonymous()));
        }
        let presented = req
            .headers()
            .get_one("Authorization")
            .and_then(|value| value.strip_prefix("Bearer ").map(str::trim));
        let Some(presented) = presented else {
            // The console's script calls the API with the browser's session
            // cookie (see `console_caller`).
            if let Some(name) = console_caller(req, service).await {
                return Outcome::Success(Caller(Requester::console(&name)));
            }
            return refuse(
                req,
                ApiError::Unauthorized(
                    "send an API token as 'Authorization: Bearer <token>'".into(),
                ),
            );
        };
        match service.token_owner(presented).await {
            Ok(Some(name)) => Outcome::Success(Caller(Requester::token(&name))),
            Ok(None) => {
                // Counted after the check, so that a valid token is never
                // refused because of what others sent from the same address.
                // The address is the socket's, unless the operator named a
                // trusted proxy's header (Rocket's `ip_header`).
                let client = req.client_ip().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                if let Err(wait) = auth.failures.check(client) {
                    return refuse(req, ApiError::TooManyAttempts(wait.as_secs().max(1)));
                }
                auth.failures.record_failure(client);
                refuse(
                    req,
                    ApiError::Unauthorized(
                        "the API token is not valid (revoked or mistyped?)".into(),
                    ),
                )
            }
            Err(error) => refuse(req, ApiError::Internal(error.to_string())),
        }
    }
}

/// The header in which the console's script shows the session's CSRF
/// secret when it changes something through the API.
pub const CSRF_HEADER: &str = "X-CSRF-Token";

/// The token name of a live console session whose cookie came with the
/// request. A cookie is sent on cross-site requests too (SameSite aside),
/// so on its own it authorises only reads; a change also needs the
/// session's CSRF secret in `X-CSRF-Token`, which another site can neither
/// read nor send (a custom header makes the browser ask first, and berth
/// grants no cross-origin request), and an `Origin` of this site.
async fn console_caller(req: &Request<'_>, service: &Service) -> Option<String> {
    let reads = matches!(req.method(), Method::Get | Method::Head);
    let presented_csrf = req.headers().get_one(CSRF_HEADER);
    if !reads && (presented_csrf.is_none() || !crate::gate::same_origin(req)) {
        return None;
    }
    let id = req
        .cookies()
        .get(crate::console::SESSION_COOKIE)?
        .value()
        .to_owned();
    match service.session(&id).await {
        Ok(Some(session)) if reads => Some(session.token_name),
        Ok(Some(session)) => presented_csrf
            .is_some_and(|csrf| crate::auth::same_secret(csrf, &session.csrf))
            .then_some(session.token_name),
        Ok(None) => None,
        Err(error) => {
            log::error!("{} {}: {error}", req.method(), req.uri());
            None
        }
    }
}

fn refuse(req: &Request<'_>, error: ApiError) -> Outcome<Caller, ()> {
    let status = error.status();
    req.local_cache(|| AuthRefusal(Some(error)));
    Outcome::Error((status, ()))
}
