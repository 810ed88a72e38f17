//! The nodes page: every host sharing the database, its state, capacity
//! and what its containers ask for, and the operator's drain and undrain
//! (Post/Redirect/Get with a flash message, like the container actions).

use askama::Template;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{Route, State};

use super::session::{ActionForm, Console, Posted};
use super::views::NodeRowView;
use super::{ConsoleResult, HtmlPage, Layout, Section};
use crate::domain::node::AdminState;
use crate::service::Service;

pub fn routes() -> Vec<Route> {
    rocket::routes![list, drain, online]
}

#[derive(Template)]
#[template(path = "nodes.html")]
struct NodesPage {
    layout: Layout,
    nodes: Vec<NodeRowView>,
}

#[rocket::get("/nodes")]
async fn list(
    console: Console<'_>,
    service: &State<Service>,
    flash: Option<FlashMessage<'_>>,
) -> ConsoleResult<HtmlPage<NodesPage>> {
    let nodes = service.nodes().await?;
    Ok(HtmlPage::ok(NodesPage {
        layout: Layout::new("Nodes", Section::Nodes, flash).visited_by(console.0),
        nodes: nodes.iter().map(NodeRowView::of).collect(),
    }))
}

/// Sets what the operator wants of the node and goes back to the list.
async fn set_state(
    service: &Service,
    name: &str,
    state: AdminState,
) -> ConsoleResult<Flash<Redirect>> {
    let view = service.set_node_state(name, state).await?;
    let message = match state {
        AdminState::Draining => format!("{name} is draining: it takes no new containers."),
        AdminState::Online => format!("{name} is online: it takes new containers."),
    };
    // A silent node stays offline whatever was set: say so, rather than
    // let the flash claim a state the page does not show.
    let message = if view.state.as_str() == state.as_str() {
        message
    } else {
        format!(
            "{message} It shows as {} until it beats again.",
            view.state.as_str()
        )
    };
    Ok(Flash::success(Redirect::to("/nodes"), message))
}

#[rocket::post("/nodes/<name>/drain", data = "<_form>")]
async fn drain(
    _console: Console<'_>,
    service: &State<Service>,
    name: &str,
    _form: Posted<ActionForm>,
) -> ConsoleResult<Flash<Redirect>> {
    set_state(service, name, AdminState::Draining).await
}

#[rocket::post("/nodes/<name>/online", data = "<_form>")]
async fn online(
    _console: Console<'_>,
    service: &State<Service>,
    name: &str,
    _form: Posted<ActionForm>,
) -> ConsoleResult<Flash<Redirect>> {
    set_state(service, name, AdminState::Online).await
}
