//! The web console: server-rendered HTML pages over the same service layer
//! as the JSON API. Every page is complete without JavaScript; `app.js`
//! only keeps open pages current from the event stream.

mod assets;
mod backups;
mod catchers;
mod containers;
mod forms;
mod headers;
mod jobs;
mod nodes;
mod os_templates;
mod session;
mod storage;
mod tokens;
mod usage;
mod views;

use askama::Template;
use rocket::http::{ContentType, Header, Status};
use rocket::request::FlashMessage;
use rocket::response::{self, Responder, Response};
use rocket::{Catcher, Request, Route};

use crate::service::ServiceError;

pub use headers::SecurityHeaders;
use session::Visitor;
pub use session::SESSION_COOKIE;

pub fn routes() -> Vec<Route> {
    let mut routes = containers::routes();
    routes.extend(jobs::routes());
    routes.extend(nodes::routes());
    routes.extend(os_templates::routes());
    routes.extend(tokens::routes());
    routes.extend(assets::routes());
    routes.extend(session::routes());
    routes.extend(usage::routes());
    routes.extend(storage::routes());
    routes.extend(backups::routes());
    routes
}

/// HTML error pages for browsers; other clients get the API's JSON shape.
pub fn catchers() -> Vec<Catcher> {
    catchers::catchers()
}

/// Where the JSON API the pages' script talks to lives.
const API_BASE: &str = "/v1";
/// How many containers an overview lists (the API pages through the rest).
const LISTED_CONTAINERS: u32 = 500;

/// The sections of the console, for the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Containers,
    Jobs,
    Nodes,
    Templates,
    Tokens,
    Storage,
    Backups,
    /// Error pages and anything else outside the sections.
    None,
}

/// A flash message carried across a redirect (Post/Redirect/Get).
pub struct Notice {
    /// `success`, `error` or `info`: also the CSS modifier.
    pub kind: String,
    pub message: String,
}

/// What every page's frame needs: title, navigation, flash, asset URLs.
pub struct Layout {
    pub title: String,
    pub section: Section,
    pub notice: Option<Notice>,
    pub css: String,
    pub js: String,
    /// The forms' script (uploads with progress, copy buttons).
    pub forms_js: String,
    pub icon: String,
    pub api: &'static str,
    /// The name of the token the visitor logged in with.
    pub user: Option<String>,
    /// The secret every form on the page must carry back.
    pub csrf: String,
}

impl Layout {
    pub fn new(
        title: impl Into<String>,
        section: Section,
        flash: Option<FlashMessage<'_>>,
    ) -> Self {
        Layout {
            title: title.into(),
            section,
            notice: flash.map(|flash| Notice {
                kind: match flash.kind() {
                    "success" | "error" => flash.kind().to_owned(),
                    _ => "info".to_owned(),
                },
                message: flash.message().to_owned(),
            }),
            css: assets::url("app.css"),
            js: assets::url("app.js"),
            forms_js: assets::url("forms.js"),
            icon: assets::url("favicon.svg"),
            api: API_BASE,
            user: None,
            csrf: String::new(),
        }
    }

    /// A page without live updates: the login page (whose visitor may not
    /// read the API) and error pages (which may be shown to anyone).
    /// `app.js` does nothing on a page that names no API.
    pub fn without_live_updates(mut self) -> Self {
        self.api = "";
        self
    }

    /// The frame as this visitor sees it: their name, and their CSRF secret
    /// for the page's forms.
    pub fn visited_by(mut self, visitor: &Visitor) -> Self {
        self.user = visitor.user().map(str::to_owned);
        self.csrf = visitor.csrf().to_owned();
        self
    }

    pub fn in_containers(&self) -> bool {
        self.section == Section::Containers
    }

    pub fn in_jobs(&self) -> bool {
        self.section == Section::Jobs
    }

    pub fn in_nodes(&self) -> bool {
        self.section == Section::Nodes
    }

    pub fn in_templates(&self) -> bool {
        self.section == Section::Templates
    }

    pub fn in_tokens(&self) -> bool {
        self.section == Section::Tokens
    }

    pub fn in_storage(&self) -> bool {
        self.section == Section::Storage
    }

    pub fn in_backups(&self) -> bool {
        self.section == Section::Backups
    }
}

/// A rendered HTML page with its status. Pages are never cached: they show the
/// state of the host at the moment they were asked for.
pub struct HtmlPage<T: Template> {
    status: Status,
    template: T,
}

impl<T: Template> HtmlPage<T> {
    pub fn ok(template: T) -> Self {
        HtmlPage {
            status: Status::Ok,
            template,
        }
    }

    pub fn with_status(status: Status, template: T) -> Self {
        HtmlPage { status, template }
    }
}

impl<'r, T: Template> Responder<'r, 'static> for HtmlPage<T> {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let html = self.template.render().map_err(|error| {
            log::error!(
                "{} {}: rendering failed: {error}",
                request.method(),
                request.uri()
            );
            Status::InternalServerError
        })?;
        Response::build()
            .status(self.status)
            .header(ContentType::HTML)
            .header(Header::new("Cache-Control", "no-store"))
            .sized_body(html.len(), std::io::Cursor::new(html))
            .ok()
    }
}

/// Why a console request could not be answered with its page.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}")]
    NotFound(String),
    /// Not for this visitor, or not with these settings.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Internal(String),
}

impl From<ServiceError> for ConsoleError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::ContainerNotFound(id) => {
                ConsoleError::NotFound(format!("There is no container {id}."))
            }
            ServiceError::JobNotFound(id) => {
                ConsoleError::NotFound(format!("There is no job {id}."))
            }
            ServiceError::NodeNotFound(name) => {
                ConsoleError::NotFound(format!("There is no node {name}."))
            }
            ServiceError::BackupNotFound(id) => {
                ConsoleError::NotFound(format!("There is no backup {id}."))
            }
            other => ConsoleError::Internal(other.to_string()),
        }
    }
}

impl<'r> Responder<'r, 'static> for ConsoleError {
    fn respond_to(self, request: &'r Request<'_>) -> response::Result<'static> {
        let (status, message) = match self {
            ConsoleError::NotFound(message) => (Status::NotFound, message),
            ConsoleError::Forbidden(message) => (Status::Forbidden, message),
            ConsoleError::Internal(detail) => {
                // The edge: the one place a console failure is logged.
                log::error!("{} {}: {detail}", request.method(), request.uri());
                (
                    Status::InternalServerError,
                    "Something went wrong on the server; its log has the details.".to_owned(),
                )
            }
        };
        catchers::error_page(status, message).respond_to(request)
    }
}

pub type ConsoleResult<T> = Result<T, ConsoleError>;
