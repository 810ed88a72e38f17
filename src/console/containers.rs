//! Container pages: the overview (home, filtered by node), the
//! new-container form, a
//! container with its parameters, actions and jobs, and the delete
//! confirmation. Changes go through the service and answer with a redirect
//! and a flash message (Post/Redirect/Get); a refused form is shown again
//! with its values and the reasons beside the fields.

use std::collections::HashMap;

use askama::Template;
use rocket::http::Status;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{Either, Route, State};
use serde_json::Value;
use uuid::Uuid;

use super::forms::{ContainerForm, FormState};
use super::session::{ActionForm, Console, MoveForm, Posted, Visitor};
use super::usage::{elsewhere, HostSummaryView, UsageView};
use super::views::{ContainerView, JobView, NodeChoiceView};
use super::LISTED_CONTAINERS;
use super::{ConsoleError, ConsoleResult, HtmlPage, Layout, Section};
use crate::db::containers::ContainerFilter;
use crate::db::jobs::Job;
use crate::domain::lifecycle::{self, Action};
use crate::service::{Requester, Service, ServiceError};
use crate::stats::Stats;

pub fn routes() -> Vec<Route> {
    rocket::routes![
        home,
        containers,
        new_form,
        create,
        show,
        update,
        start,
        stop,
        restart,
        migrate,
        confirm_delete,
        delete
    ]
}

/// How many jobs the overview and a container page list.
const RECENT_JOBS: u32 = 10;
const CONTAINER_JOBS: u32 = 50;

/// The CPU field's hint names this host's limit, which the service checks.
fn cpus_hint(service: &Service) -> String {
    format!(
        "Whole number, 1 to {} on this host.",
        service.host_limits().cpus
    )
}

/// A path id that is not a UUID names no container: the page is not found.
pub(super) fn parse_id(raw: &str) -> ConsoleResult<Uuid> {
    Uuid::try_parse(raw).map_err(|_| ConsoleError::NotFound("There is no such page.".into()))
}

pub(super) fn container_url(id: Uuid) -> String {
    format!("/containers/{id}")
}

/// The names of the containers `jobs` act on, including deleted ones.
pub(super) async fn container_names(
    service: &Service,
    jobs: &[Job],
    known: &[crate::db::containers::Container],
) -> ConsoleResult<HashMap<Uuid, String>> {
    let mut names: HashMap<Uuid, String> = known.iter().map(|c| (c.id, c.name.clone())).collect();
    for job in jobs {
        if !names.contains_key(&job.entity_id) {
            match service.container_any(job.entity_id).await {
                Ok(container) => {
                    names.insert(container.id, container.name);
                }
                Err(ServiceError::ContainerNotFound(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
    }
    Ok(names)
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    containers: Vec<ContainerView>,
    jobs: Vec<JobView>,
    /// The nodes the list can be filtered by.
    nodes: Vec<NodeChoiceView>,
    /// The node the list is filtered by, if any.
    node: Option<String>,
    host: HostSummaryView,
}

impl HomePage {
    fn filtered_by(&self, name: &str) -> bool {
        self.node.as_deref() == Some(name)
    }
}

/// An empty `node` (the filter's "All nodes") is no filter.
fn node_filter(node: Option<&str>) -> Option<String> {
    node.map(str::trim)
        .filter(|node| !node.is_empty())
        .map(str::to_owned)
}

#[rocket::get("/?<node>")]
async fn home(
    console: Console<'_>,
    service: &State<Service>,
    stats: &State<Stats>,
    node: Option<&str>,
    flash: Option<FlashMessage<'_>>,
) -> ConsoleResult<HtmlPage<HomePage>> {
    let node = node_filter(node);
    let filter = ContainerFilter {
        node: node.clone(),
        ..ContainerFilter::default()
    };
    let containers = service
        .containers(&filter, None, LISTED_CONTAINERS)
        .await?
        .items;
    let jobs = service.recent_jobs(RECENT_JOBS).await?;
    let names = container_names(service, &jobs, &containers).await?;
    let nodes = service.node_states().await?;
    let title = match &node {
        Some(node) => format!("Containers on {node}"),
        None => "Containers".to_owned(),
    };
    Ok(HtmlPage::ok(HomePage {
        layout: Layout::new(title, Section::Containers, flash).visited_by(console.0),
        containers: containers.iter().map(ContainerView::of).collect(),
        jobs: JobView::list(&jobs, &names),
        nodes: nodes
            .iter()
            .map(|(name, state)| NodeChoiceView::of(name, *state))
            .collect(),
        node,
        host: HostSummaryView::of(service, stats).await,
    }))
}

/// The overview is the container list; its filter comes along.
#[rocket::get("/containers?<node>")]
fn containers(_console: Console<'_>, node: Option<&str>) -> Redirect {
    match node_filter(node) {
        Some(node) => Redirect::to(rocket::uri!(home(node = Some(node)))),
        None => Redirect::to("/"),
    }
}

#[derive(Template)]
#[template(path = "container_new.html")]
struct NewContainerPage {
    layout: Layout,
    form: FormState,
    templates: Vec<String>,
    templates_error: Option<String>,
    /// Every node, those that take no containers now marked as such.
    nodes: Vec<NodeChoiceView>,
    nodes_error: Option<String>,
    cpus_hint: String,
    pools: Vec<super::storage::PoolView>,
}

impl NewContainerPage {
    async fn build(form: FormState, service: &Service, visitor: &Visitor) -> Self {
        let (templates, templates_error) = match service.os_template_names().await {
            Ok(names) => (names, None),
            Err(error) => (
                Vec::new(),
                Some(format!(
                    "The template directory {} cannot be read: {error}.",
                    service.os_templates().dir().display()
                )),
            ),
        };
        // Like the templates: the form still works without the list (berth
        // then chooses), so a failed read is said beside the field.
        let (nodes, nodes_error) = match service.node_states().await {
            Ok(nodes) => (
                nodes
                    .iter()
                    .map(|(name, state)| NodeChoiceView::of(name, *state))
                    .collect(),
                None,
            ),
            Err(error) => (
                Vec::new(),
                Some(format!("The nodes cannot be listed: {error}.")),
            ),
        };
        NewContainerPage {
            layout: Layout::new("New container", Section::Containers, None).visited_by(visitor),
            form,
            templates,
            templates_error,
            nodes,
            nodes_error,
            cpus_hint: cpus_hint(service),
            pools: service
                .storage_pools()
                .iter()
                .map(super::storage::PoolView::of)
                .collect(),
        }
    }
}

#[rocket::get("/containers/new")]
async fn new_form(console: Console<'_>, service: &State<Service>) -> HtmlPage<NewContainerPage> {
    HtmlPage::ok(NewContainerPage::build(FormState::default(), service, console.0).await)
}

#[rocket::post("/containers", data = "<form>")]
async fn create(
    console: Console<'_>,
    service: &State<Service>,
    form: Posted<ContainerForm>,
) -> ConsoleResult<Either<Flash<Redirect>, HtmlPage<NewContainerPage>>> {
    match service
        .create_container(form.new_container(), None, &console.0.requester())
        .await
    {
        Ok(accepted) => Ok(Either::Left(Flash::success(
            Redirect::to(container_url(accepted.container_id)),
            format!(
                "Creating {}: the job is queued.",
                form.name.as_deref().unwrap_or_default()
            ),
        ))),
        Err(error) => {
            let mut state = FormState::submitted(&form);
            state.absorb(error).map_err(ConsoleError::from)?;
            Ok(Either::Right(HtmlPage::with_status(
                Status::UnprocessableEntity,
                NewContainerPage::build(state, service, console.0).await,
            )))
        }
    }
}

#[derive(Template)]
#[template(path = "container.html")]
struct ContainerPage {
    layout: Layout,
    container: ContainerView,
    form: FormState,
    jobs: Vec<JobView>,
    cpus_hint: String,
    /// The other nodes, for the move form (none: no form).
    move_targets: Vec<NodeChoiceView>,
    snapshots: Vec<super::storage::SnapshotView>,
    container_storage: String,
    backups: Vec<super::backups::BackupView>,
    // The terminal (issue 14).
    terminal: TerminalAssets,
    usage: UsageView,
}

/// What the page's terminal loads: xterm.js (vendored) and its glue.
struct TerminalAssets {
    css: String,
    xterm: String,
    fit: String,
    script: String,
}

impl TerminalAssets {
    fn new() -> Self {
        use super::assets::url;
        TerminalAssets {
            css: url("vendor/xterm/xterm.css"),
            xterm: url("vendor/xterm/xterm.js"),
            fit: url("vendor/xterm/addon-fit.js"),
            script: url("terminal.js"),
        }
    }
}

impl ContainerPage {
    async fn build(
        service: &Service,
        stats: &Stats,
        visitor: &Visitor,
        id: Uuid,
        form: Option<FormState>,
        flash: Option<FlashMessage<'_>>,
    ) -> ConsoleResult<Self> {
        let container = service.container(id).await?;
        let jobs = service.container_jobs(id, CONTAINER_JOBS).await?;
        let names = HashMap::from([(container.id, container.name.clone())]);
        // One node, or none readable: nowhere to move to, and no form.
        let move_targets = service
            .node_states()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|(name, _)| *name != container.node)
            .map(|(name, state)| NodeChoiceView::of(name, *state))
            .collect();
        Ok(ContainerPage {
            layout: Layout::new(container.name.clone(), Section::Containers, flash)
                .visited_by(visitor),
            form: form.unwrap_or_else(|| FormState::of_container(&container)),
            container: ContainerView::of(&container),
            jobs: JobView::list(&jobs, &names),
            cpus_hint: cpus_hint(service),
            move_targets,
            terminal: TerminalAssets::new(),
            usage: UsageView::of(container.id, stats, elsewhere(service, &container.node)),
            snapshots: service
                .snapshots(id)
                .await?
                .iter()
                .map(super::storage::SnapshotView::of)
                .collect(),
            container_storage: container.storage.clone(),
            backups: super::backups::of_container(service, id).await?,
        })
    }

    /// The statuses in which `action`'s control is enabled, for the live
    /// script to follow status changes (`data-enabled-when`).
    fn enabled_when(&self, action: Action) -> String {
        lifecycle::offered_in(action)
    }
}

#[rocket::get("/containers/<id>")]
async fn show(
    console: Console<'_>,
    service: &State<Service>,
    stats: &State<Stats>,
    id: &str,
    flash: Option<FlashMessage<'_>>,
) -> ConsoleResult<HtmlPage<ContainerPage>> {
    Ok(HtmlPage::ok(
        ContainerPage::build(service, stats, console.0, parse_id(id)?, None, flash).await?,
    ))
}

#[rocket::post("/containers/<id>/parameters", data = "<form>")]
async fn update(
    console: Console<'_>,
    service: &State<Service>,
    stats: &State<Stats>,
    id: &str,
    form: Posted<ContainerForm>,
) -> ConsoleResult<Either<Flash<Redirect>, HtmlPage<ContainerPage>>> {
    let id = parse_id(id)?;
    let container = service.container(id).await?;
    let back = Redirect::to(container_url(id));
    let patch = form.parameter_patch(container.parameters.as_ref());
    if patch.is_empty() {
        return Ok(Either::Left(Flash::new(
            back,
            "info",
            "No parameter changed; nothing to apply.",
        )));
    }
    match service
        .update_parameters(id, &Value::Object(patch), &console.0.requester())
        .await
    {
        Ok(_job) => Ok(Either::Left(Flash::success(
            back,
            format!("Parameters of {} saved; applying them.", container.name),
        ))),
        Err(error) if error.is_conflict() => {
            Ok(Either::Left(Flash::error(back, error.to_string())))
        }
        Err(error) => {
            let mut state = FormState::submitted(&form);
            state.absorb(error).map_err(ConsoleError::from)?;
            let page =
                ContainerPage::build(service, stats, console.0, id, Some(state), None).await?;
            Ok(Either::Right(HtmlPage::with_status(
                Status::UnprocessableEntity,
                page,
            )))
        }
    }
}

/// Queues a lifecycle job and goes back to the container's page.
async fn act(
    service: &Service,
    by: Requester,
    id: &str,
    action: Action,
) -> ConsoleResult<Flash<Redirect>> {
    let id = parse_id(id)?;
    let back = Redirect::to(container_url(id));
    let name = service.container(id).await?.name;
    match service.queue_action(id, action, None, &by).await {
        Ok(_job) => Ok(Flash::success(
            back,
            format!("{} of {name} queued.", capitalised_action(action)),
        )),
        Err(error) if error.is_conflict() => Ok(Flash::error(back, error.to_string())),
        Err(other) => Err(other.into()),
    }
}

fn capitalised_action(action: Action) -> &'static str {
    match action {
        Action::Configure => "Configure",
        Action::Start => "Start",
        Action::Stop => "Stop",
        Action::Restart => "Restart",
        Action::Delete => "Delete",
        Action::Migrate => "Move",
        Action::Snapshot => "Snapshot",
        Action::Restore => "Restore",
        Action::Backup => "Backup",
    }
}

#[rocket::post("/containers/<id>/start", data = "<_form>")]
async fn start(
    console: Console<'_>,
    service: &State<Service>,
    id: &str,
    _form: Posted<ActionForm>,
) -> ConsoleResult<Flash<Redirect>> {
    act(service, console.0.requester(), id, Action::Start).await
}

#[rocket::post("/containers/<id>/stop", data = "<_form>")]
async fn stop(
    console: Console<'_>,
    service: &State<Service>,
    id: &str,
    _form: Posted<ActionForm>,
) -> ConsoleResult<Flash<Redirect>> {
    act(service, console.0.requester(), id, Action::Stop).await
}

#[rocket::post("/containers/<id>/restart", data = "<_form>")]
async fn restart(
    console: Console<'_>,
    service: &State<Service>,
    id: &str,
    _form: Posted<ActionForm>,
) -> ConsoleResult<Flash<Redirect>> {
    act(service, console.0.requester(), id, Action::Restart).await
}

/// Moves the container to the node chosen; the job is listed on its page.
#[rocket::post("/containers/<id>/migrate", data = "<form>")]
async fn migrate(
    console: Console<'_>,
    service: &State<Service>,
    id: &str,
    form: Posted<MoveForm>,
) -> ConsoleResult<Flash<Redirect>> {
    let id = parse_id(id)?;
    let back = Redirect::to(container_url(id));
    let name = service.container(id).await?.name;
    match service
        .queue_migration(id, &form.node, None, &console.0.requester())
        .await
    {
        Ok(_job) => Ok(Flash::success(
            back,
            format!("Move of {name} to node {} queued.", form.node),
        )),
        Err(
            error @ (ServiceError::UnknownNode(_)
            | ServiceError::Validation(_)
            | ServiceError::AlreadyOnNode { .. }
            | ServiceError::MovesOff),
        ) => Ok(Flash::error(back, error.to_string())),
        Err(error) if error.is_conflict() => Ok(Flash::error(back, error.to_string())),
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "container_delete.html")]
struct DeletePage {
    layout: Layout,
    container: ContainerView,
}

/// Deleting destroys the root filesystem: it takes a second, deliberate
/// step on its own page, which works without JavaScript.
#[rocket::get("/containers/<id>/delete")]
async fn confirm_delete(
    console: Console<'_>,
    service: &State<Service>,
    id: &str,
) -> ConsoleResult<HtmlPage<DeletePage>> {
    let container = service.container(parse_id(id)?).await?;
    Ok(HtmlPage::ok(DeletePage {
        layout: Layout::new(
            format!("Delete {}", container.name),
            Section::Containers,
            None,
        )
        .visited_by(console.0),
        container: ContainerView::of(&container),
    }))
}

#[rocket::post("/containers/<id>/delete", data = "<_form>")]
async fn delete(
    console: Console<'_>,
    service: &State<Service>,
    id: &str,
    _form: Posted<ActionForm>,
) -> ConsoleResult<Flash<Redirect>> {
    let id = parse_id(id)?;
    let name = service.container(id).await?.name;
    match service
        .queue_action(id, Action::Delete, None, &console.0.requester())
        .await
    {
        Ok(job) => Ok(Flash::success(
            Redirect::to(format!("/jobs/{}", job.job.id)),
            format!("Deleting {name}: the job is queued."),
        )),
        Err(error) if error.is_conflict() => Ok(Flash::error(
            Redirect::to(container_url(id)),
            error.to_string(),
        )),
        Err(other) => Err(other.into()),
    }
}
