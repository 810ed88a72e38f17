//! Who is using the console, and proof that a form was posted from it.
//!
//! Logging in takes an API token: berth keeps no second kind of credential
//! (no passwords to hash, reset or leak), and whoever holds a token can do
//! the same through the API anyway. A login opens a server-side session
//! whose random id is the `berth_session` cookie; the database keeps only
//! its digest.
//!
//! Every console POST must carry the CSRF secret of the visitor in a hidden
//! `csrf` field: the session's secret when logged in, otherwise (the login
//! form, or a console without authentication) the value of the
//! `berth_csrf` cookie (double submit: another site can make a browser send
//! the cookie but cannot read it to put it in the form). POSTs whose
//! `Origin` (or `Referer`) names another site are refused before that.

use std::net::{IpAddr, Ipv4Addr};

use askama::Template;
use rocket::data::{self, Data, FromData};
use rocket::form::{Form, FromForm};
use rocket::http::{Cookie, CookieJar, Method, SameSite, Status};
use rocket::outcome::Outcome;
use rocket::request::{self, FromRequest, Request};
use rocket::response::Redirect;
use rocket::{Either, Route, State};

use super::{ConsoleError, ConsoleResult, HtmlPage, Layout, Section};
use crate::api::ApiAuth;
use crate::auth;
use crate::config::AuthMode;
use crate::service::{Requester, Service};

pub const SESSION_COOKIE: &str = "berth_session";
pub const CSRF_COOKIE: &str = "berth_csrf";

pub fn routes() -> Vec<Route> {
    rocket::routes![login_page, login, logout]
}

/// The requester as far as the console knows it (worked out once per
/// request).
pub struct Visitor {
    /// Authentication is off: the console is open to whoever reaches it.
    open: bool,
    /// The name of the token logged in with, while the session lives.
    user: Option<String>,
    /// The session cookie's value, to close the session at logout.
    session_id: Option<String>,
    /// What the hidden `csrf` field of a form must hold.
    csrf: String,
}

impl Visitor {
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    pub fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Who the jobs this visitor queues are recorded as.
    pub fn requester(&self) -> Requester {
        match &self.user {
            Some(name) => Requester::console(name),
            None => Requester::anonymous(),
        }
    }

    fn may_enter(&self) -> bool {
        self.open || self.user.is_some()
    }
}

/// A cookie only berth's own pages send back, and scripts cannot read.
fn private_cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .secure(secure)
        .build()
}

async fn visit(req: &Request<'_>) -> Result<Visitor, Status> {
    let (Some(auth), Some(service)) = (
        req.rocket().state::<ApiAuth>(),
        req.rocket().state::<Service>(),
    ) else {
        return Err(Status::InternalServerError);
    };
    if !matches!(req.method(), Method::Get | Method::Head) && !crate::gate::same_origin(req) {
        log::warn!(
            "{} {}: refused a cross-site request (Origin {:?}, Referer {:?})",
            req.method(),
            req.uri(),
            req.headers().get_one("Origin"),
            req.headers().get_one("Referer")
        );
        return Err(Status::Forbidden);
    }
    let cookies = req.cookies();
    if auth.mode() == AuthMode::Token {
        if let Some(id) = cookies.get(SESSION_COOKIE).map(|c| c.value().to_owned()) {
            match service.session(&id).await {
                Ok(Some(session)) => {
                    return Ok(Visitor {
                        open: false,
                        user: Some(session.token_name),
                        session_id: Some(id),
                        csrf: session.csrf,
                    })
                }
                Ok(None) => {}
                Err(error) => {
                    log::error!("{} {}: {error}", req.method(), req.uri());
                    return Err(Status::InternalServerError);
                }
            }
        }
    }
    let csrf = match cookies.get(CSRF_COOKIE) {
        Some(cookie) if !cookie.value().is_empty() => cookie.value().to_owned(),
        _ => {
            let secret = auth::random_secret().map_err(|error| {
                log::error!("no randomness from the OS: {error}");
                Status::InternalServerError
            })?;
            let secure = req.rocket().config().tls_enabled();
            cookies.add(private_cookie(CSRF_COOKIE, secret.clone(), secure));
            secret
        }
    };
    Ok(Visitor {
        open: auth.mode() == AuthMode::None,
        user: None,
        session_id: None,
        csrf,
    })
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for &'r Visitor {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        match req.local_cache_async(visit(req)).await {
            Ok(visitor) => Outcome::Success(visitor),
            Err(status) => Outcome::Error((*status, ())),
        }
    }
}

/// A visitor allowed into the console: logged in, or authentication is
/// off. Anyone else gets 401, which the console's catcher turns into a
/// redirect to the login page.
pub struct Console<'r>(pub &'r Visitor);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Console<'r> {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> request::Outcome<Self, ()> {
        match req.guard::<&Visitor>().await {
            Outcome::Success(visitor) if visitor.may_enter() => Outcome::Success(Console(visitor)),
            Outcome::Success(_) => Outcome::Error((Status::Unauthorized, ())),
            Outcome::Error(error) => Outcome::Error(error),
            Outcome::Forward(status) => Outcome::Forward(status),
        }
    }
}

/// A form that holds the hidden CSRF field.
pub trait CsrfField {
    fn csrf(&self) -> Option<&str>;
}

/// A posted form whose CSRF secret matched: the only way a console handler
/// gets at submitted data, so none can forget the check.
pub struct Posted<T>(pub T);

impl<T> std::ops::Deref for Posted<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

#[rocket::async_trait]
impl<'r, T: FromForm<'r> + CsrfField + Send + 'r> FromData<'r> for Posted<T> {
    type Error = ();

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let visitor = match req.guard::<&Visitor>().await {
            Outcome::Success(visitor) => visitor,
            Outcome::Error((status, ())) => return Outcome::Error((status, ())),
            Outcome::Forward(status) => return Outcome::Error((status, ())),
        };
        let form = match Form::<T>::from_data(req, data).await {
            Outcome::Success(form) => form.into_inner(),
            Outcome::Error((status, _)) => return Outcome::Error((status, ())),
            Outcome::Forward(forward) => return Outcome::Forward(forward),
        };
        match form.csrf() {
            Some(presented) if auth::same_secret(presented, visitor.csrf()) => {
                Outcome::Success(Posted(form))
            }
            _ => {
                log::warn!(
                    "{} {}: refused a form without this visitor's CSRF secret",
                    req.method(),
                    req.uri()
                );
                Outcome::Error((Status::Forbidden, ()))
            }
        }
    }
}

/// A form that carries nothing but its CSRF secret (the action buttons).
#[derive(Debug, Default, rocket::FromForm)]
pub struct ActionForm {
    pub csrf: Option<String>,
}

impl CsrfField for ActionForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// The move form on a container's page: the node to move it to.
#[derive(Debug, Default, rocket::FromForm)]
pub struct MoveForm {
    pub csrf: Option<String>,
    pub node: String,
}

impl CsrfField for MoveForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

#[derive(Debug, Default, rocket::FromForm)]
pub struct LoginForm {
    pub csrf: Option<String>,
    pub token: Option<String>,
}

impl CsrfField for LoginForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    layout: Layout,
    problem: Option<String>,
}

fn login_form(visitor: &Visitor, status: Status, problem: Option<String>) -> HtmlPage<LoginPage> {
    HtmlPage::with_status(
        status,
        LoginPage {
            layout: Layout::new("Log in", Section::None, None)
                .visited_by(visitor)
                .without_live_updates(),
            problem,
        },
    )
}

#[rocket::get("/login")]
fn login_page(visitor: &Visitor) -> Either<Redirect, HtmlPage<LoginPage>> {
    if visitor.may_enter() {
        return Either::Left(Redirect::to("/"));
    }
    Either::Right(login_form(visitor, Status::Ok, None))
}

#[rocket::post("/login", data = "<form>")]
async fn login(
    visitor: &Visitor,
    auth: &State<ApiAuth>,
    service: &State<Service>,
    cookies: &CookieJar<'_>,
    client: Option<IpAddr>,
    config: &rocket::Config,
    form: Posted<LoginForm>,
) -> ConsoleResult<Either<Redirect, HtmlPage<LoginPage>>> {
    if visitor.open {
        return Ok(Either::Left(Redirect::to("/")));
    }
    let presented = form.token.as_deref().unwrap_or_default().trim();
    let Some(name) = service.token_owner(presented).await? else {
        // As in the API: a valid token always gets in; only failures count.
        let client = client.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if let Err(wait) = auth.failures().check(client) {
            return Ok(Either::Right(login_form(
                visitor,
                Status::TooManyRequests,
                Some(format!(
                    "Too many failed attempts from this address; try again in {} s.",
                    wait.as_secs().max(1)
                )),
            )));
        }
        auth.failures().record_failure(client);
        return Ok(Either::Right(login_form(
            visitor,
            Status::Unauthorized,
            Some("That is not a valid API token (revoked or mistyped?).".into()),
        )));
    };
    // Logging in again replaces the session rather than leaving it open.
    if let Some(old) = &visitor.session_id {
        service.close_session(old).await?;
    }
    let session = service.open_session(&name).await?;
    cookies.add(private_cookie(
        SESSION_COOKIE,
        session,
        config.tls_enabled(),
    ));
    log::info!("console: {name} logged in");
    Ok(Either::Left(Redirect::to("/")))
}

#[rocket::post("/logout", data = "<form>")]
async fn logout(
    visitor: &Visitor,
    service: &State<Service>,
    cookies: &CookieJar<'_>,
    form: Posted<ActionForm>,
) -> ConsoleResult<Redirect> {
    let _checked = form;
    if let Some(id) = &visitor.session_id {
        service
            .close_session(id)
            .await
            .map_err(ConsoleError::from)?;
    }
    cookies.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok(Redirect::to(if visitor.open { "/" } else { "/login" }))
}
