//! Failures outside the API's prefixes. A browser (which asks for HTML)
//! gets an error page in the console's frame; any other client gets the
//! API's JSON error shape, so `curl` never has to parse HTML.

use askama::Template;
use rocket::http::Status;
use rocket::response::{self, Redirect, Responder};
use rocket::{Catcher, Request};

use super::{HtmlPage, Layout, Section};

pub fn catchers() -> Vec<Catcher> {
    let mut catchers = rocket::catchers![not_found, fallback];
    catchers.push(Catcher::new(401, to_login));
    catchers
}

/// A console page asked for without logging in: off to the login page
/// (303). A hand-written handler, because `#[catch]` would force the
/// response's status to 401.
fn to_login<'r>(_: Status, req: &'r Request<'_>) -> rocket::catcher::BoxFuture<'r> {
    Box::pin(async move { Redirect::to("/login").respond_to(req) })
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    layout: Layout,
    code: u16,
    reason: String,
    message: String,
}

pub fn error_page(status: Status, message: String) -> HtmlPage<ErrorPage> {
    let reason = status.reason_lossy().to_owned();
    HtmlPage::with_status(
        status,
        ErrorPage {
            layout: Layout::new(reason.clone(), Section::None, None).without_live_updates(),
            code: status.code,
            reason,
            message,
        },
    )
}

/// Whether the client named HTML among what it accepts (browsers do;
/// `curl` and API clients send `*/*` or JSON).
fn wants_html(req: &Request<'_>) -> bool {
    req.accept()
        .is_some_and(|accept| accept.media_types().any(|media| media.is_html()))
}

/// Either an HTML page or the API's JSON error.
enum Failure {
    // Boxed: a page is much larger than an API error.
    Html(Box<HtmlPage<ErrorPage>>),
    Json(crate::error::ApiError),
}

impl<'r> Responder<'r, 'static> for Failure {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        match self {
            Failure::Html(page) => page.respond_to(request),
            Failure::Json(error) => error.respond_to(request),
        }
    }
}

#[rocket::catch(404)]
fn not_found(req: &Request<'_>) -> Failure {
    if wants_html(req) {
        Failure::Html(Box::new(error_page(
            Status::NotFound,
            "There is no such page. It may have been deleted, or the address is mistyped.".into(),
        )))
    } else {
        Failure::Json(crate::api::json_not_found(req))
    }
}

#[rocket::catch(default)]
fn fallback(status: Status, req: &Request<'_>) -> Failure {
    // A refused console form is answered as the console's page whatever
    // the client accepts: only the console's forms are refused with 403.
    if !wants_html(req) && status != Status::Forbidden {
        return Failure::Json(crate::api::json_fallback(status, req));
    }
    let message = match status.code {
        403 => "The form was refused: it was not sent from a page of this console, or the page was too old. Reload the page and try again.",
        413 => "The form was larger than berth accepts.",
        422 | 400 => "The request could not be understood. Go back and submit the form again.",
        503 => "berth is shutting down; try again shortly.",
        500..=599 => "Something went wrong on the server; its log has the details.",
        _ => "The request could not be answered.",
    };
    Failure::Html(Box::new(error_page(status, message.into())))
}
