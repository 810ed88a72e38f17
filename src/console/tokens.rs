//! The tokens page: with token authentication, the API tokens by name with
//! when each was created and last used, creating one (shown once, never
//! again) and revoking one (which ends its console sessions). Only a
//! logged-in session reaches it; with authentication off it explains why
//! there is nothing to manage, and changes nothing.

use askama::Template;
use rocket::http::Status;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{Either, Route, State};

use super::session::{ActionForm, Console, CsrfField, Posted, Visitor};
use super::views::TimeView;
use super::{ConsoleError, ConsoleResult, HtmlPage, Layout, Section};
use crate::api::ApiAuth;
use crate::config::AuthMode;
use crate::db::tokens::TokenRecord;
use crate::service::{Service, ServiceError};

pub fn routes() -> Vec<Route> {
    rocket::routes![list, create, confirm_revoke, revoke]
}

pub struct TokenRowView {
    pub name: String,
    pub created: TimeView,
    pub last_used: Option<TimeView>,
    /// The token the visitor logged in with.
    pub yours: bool,
}

#[derive(Template)]
#[template(path = "tokens.html")]
struct TokensPage {
    layout: Layout,
    /// False with `auth = "none"`: no token is asked for, so none is listed.
    enabled: bool,
    tokens: Vec<TokenRowView>,
    /// What was typed in the create form, shown again beside its error.
    name: String,
    name_error: Option<String>,
    /// A token just created: shown on this one page and never again.
    created: Option<CreatedToken>,
}

pub struct CreatedToken {
    pub name: String,
    pub secret: String,
}

async fn page(
    visitor: &Visitor,
    auth: &ApiAuth,
    service: &Service,
    flash: Option<FlashMessage<'_>>,
) -> ConsoleResult<TokensPage> {
    let enabled = auth.mode() == AuthMode::Token;
    let tokens = if enabled {
        service.tokens().await?
    } else {
        Vec::new()
    };
    Ok(TokensPage {
        layout: Layout::new("Tokens", Section::Tokens, flash).visited_by(visitor),
        enabled,
        tokens: tokens.iter().map(|t| row(t, visitor)).collect(),
        name: String::new(),
        name_error: None,
        created: None,
    })
}

fn row(token: &TokenRecord, visitor: &Visitor) -> TokenRowView {
    TokenRowView {
        name: token.name.clone(),
        created: TimeView::of(&token.created_at),
        last_used: TimeView::maybe(&token.last_used_at),
        yours: visitor.user() == Some(token.name.as_str()),
    }
}

/// Tokens are managed from a session only: with authentication off, a
/// token made here would open the API to whoever could reach the console
/// the day authentication is turned on.
fn require_enabled(auth: &ApiAuth) -> ConsoleResult<()> {
    if auth.mode() == AuthMode::Token {
        Ok(())
    } else {
        Err(ConsoleError::Forbidden(
            "Tokens are managed here only with auth = \"token\"; use `berth token` on the host."
                .into(),
        ))
    }
}

#[rocket::get("/tokens")]
async fn list(
    console: Console<'_>,
    auth: &State<ApiAuth>,
    service: &State<Service>,
    flash: Option<FlashMessage<'_>>,
) -> ConsoleResult<HtmlPage<TokensPage>> {
    Ok(HtmlPage::ok(page(console.0, auth, service, flash).await?))
}

#[derive(Debug, Default, rocket::FromForm)]
pub struct TokenForm {
    pub csrf: Option<String>,
    pub name: Option<String>,
}

impl CsrfField for TokenForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

#[rocket::post("/tokens", data = "<form>")]
async fn create(
    console: Console<'_>,
    auth: &State<ApiAuth>,
    service: &State<Service>,
    form: Posted<TokenForm>,
) -> ConsoleResult<HtmlPage<TokensPage>> {
    require_enabled(auth)?;
    let name = form.name.as_deref().unwrap_or_default().trim().to_owned();
    match service.create_token(&name).await {
        Ok(secret) => {
            log::info!(
                "console: {} created token {name}",
                console.0.user().unwrap_or("?")
            );
            let mut page = page(console.0, auth, service, None).await?;
            page.created = Some(CreatedToken { name, secret });
            Ok(HtmlPage::with_status(Status::Created, page))
        }
        Err(error @ (ServiceError::Validation(_) | ServiceError::TokenExists(_))) => {
            let mut page = page(console.0, auth, service, None).await?;
            page.name_error = Some(match error {
                ServiceError::Validation(errors) => errors.to_string(),
                other => other.to_string(),
            });
            page.name = name;
            Ok(HtmlPage::with_status(Status::UnprocessableEntity, page))
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "token_revoke.html")]
struct RevokePage {
    layout: Layout,
    name: String,
    yours: bool,
}

#[rocket::get("/tokens/<name>/revoke")]
async fn confirm_revoke(
    console: Console<'_>,
    auth: &State<ApiAuth>,
    service: &State<Service>,
    name: &str,
) -> ConsoleResult<HtmlPage<RevokePage>> {
    require_enabled(auth)?;
    if !service.tokens().await?.iter().any(|t| t.name == name) {
        return Err(ConsoleError::NotFound(format!("There is no token {name}.")));
    }
    Ok(HtmlPage::ok(RevokePage {
        layout: Layout::new(format!("Revoke token {name}"), Section::Tokens, None)
            .visited_by(console.0),
        yours: console.0.user() == Some(name),
        name: name.to_owned(),
    }))
}

#[rocket::post("/tokens/<name>/revoke", data = "<_form>")]
async fn revoke(
    console: Console<'_>,
    auth: &State<ApiAuth>,
    service: &State<Service>,
    name: &str,
    _form: Posted<ActionForm>,
) -> ConsoleResult<Either<Flash<Redirect>, Redirect>> {
    require_enabled(auth)?;
    match service.revoke_token(name).await {
        Ok(()) => {
            log::info!(
                "console: {} revoked token {name}",
                console.0.user().unwrap_or("?")
            );
            // Revoking one's own token ended this very session.
            if console.0.user() == Some(name) {
                return Ok(Either::Right(Redirect::to("/login")));
            }
            Ok(Either::Left(Flash::success(
                Redirect::to("/tokens"),
                format!("Token {name} was revoked: requests with it are refused and its console sessions have ended."),
            )))
        }
        Err(error @ ServiceError::TokenNotFound(_)) => Ok(Either::Left(Flash::error(
            Redirect::to("/tokens"),
            error.to_string(),
        ))),
        Err(other) => Err(other.into()),
    }
}
