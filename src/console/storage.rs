//! The storage page (pools with their space), and a container's
//! snapshots: take, restore (after a confirmation page) and delete, each
//! queued as a job (Post/Redirect/Get with a flash message).

use askama::Template;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{Route, State};

use super::containers::{container_url, parse_id};
use super::session::{ActionForm, Console, CsrfField, Posted};
use super::views::{human_bytes, ContainerView, TimeView};
use super::{ConsoleResult, HtmlPage, Layout, Section};
use crate::db::snapshots::Snapshot;
use crate::driver::storage::Pool;
use crate::service::{Service, ServiceError};

pub fn routes() -> Vec<Route> {
    rocket::routes![pools, take, confirm_restore, restore, delete]
}

/// A pool as the storage page shows it.
pub struct PoolView {
    pub name: String,
    pub driver: &'static str,
    pub path: String,
    pub reason: Option<String>,
    pub capacity: String,
    pub used: String,
    pub free: String,
    /// Used share of the capacity, 0-100, for the meter.
    pub percent: u64,
}

impl PoolView {
    pub fn of(pool: &Pool) -> Self {
        let usage = pool.usage();
        let text = |f: fn(&crate::driver::storage::PoolUsage) -> u64| {
            usage
                .as_ref()
                .map_or("unknown".to_owned(), |u| human_bytes(f(u)))
        };
        PoolView {
            name: pool.name.clone(),
            driver: pool.driver.as_str(),
            path: pool.path.display().to_string(),
            reason: pool.unusable.clone(),
            capacity: text(|u| u.capacity),
            used: text(|u| u.used),
            free: text(|u| u.free),
            percent: usage.map_or(0, |u| (u.used * 100).checked_div(u.capacity).unwrap_or(0)),
        }
    }

    /// The label of the pool in the create form's choice.
    pub fn choice_label(&self) -> String {
        match &self.reason {
            None => format!("{} ({}, {} free)", self.name, self.driver, self.free),
            Some(_) => format!("{} ({}, cannot be used here)", self.name, self.driver),
        }
    }
}

/// A snapshot as a container's page lists it.
pub struct SnapshotView {
    pub name: String,
    pub created: TimeView,
}

impl SnapshotView {
    pub fn of(snapshot: &Snapshot) -> Self {
        SnapshotView {
            name: snapshot.name.clone(),
            created: TimeView::of(&snapshot.created_at),
        }
    }
}

#[derive(Template)]
#[template(path = "storage.html")]
struct StoragePage {
    layout: Layout,
    pools: Vec<PoolView>,
}

#[rocket::get("/storage")]
async fn pools(
    console: Console<'_>,
    service: &State<Service>,
    flash: Option<FlashMessage<'_>>,
) -> HtmlPage<StoragePage> {
    HtmlPage::ok(StoragePage {
        layout: Layout::new("Storage", Section::Storage, flash).visited_by(console.0),
        pools: service.storage_pools().iter().map(PoolView::of).collect(),
    })
}

/// The snapshot form on a container's page.
#[derive(Debug, Default, rocket::FromForm)]
pub struct SnapshotForm {
    pub csrf: Option<String>,
    pub name: String,
}

impl CsrfField for SnapshotForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// Refusals the visitor can act on come back as a flash on the page.
fn refused(error: &ServiceError) -> bool {
    error.is_conflict()
        || matches!(
            error,
            ServiceError::Validation(_) | ServiceError::SnapshotNotFound { .. }
        )
}

#[rocket::post("/containers/<id>/snapshots", data = "<form>")]
async fn take(
    console: Console<'_>,
    service: &State<Service>,
    id: &str,
    form: Posted<SnapshotForm>,
) -> ConsoleResult<Flash<Redirect>> {
    let id = parse_id(id)?;
    let back = Redirect::to(format!("{}#snapshots", container_url(id)));
    match service
        .take_snapshot(id, form.name.trim(), &console.0.requester())
        .await
    {
        Ok(_) => Ok(Flash::success(
            back,
            format!("Snapshot {} queued.", form.name.trim()),
        )),
        Err(error) if refused(&error) => Ok(Flash::error(back, error.to_string())),
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "snapshot_restore.html")]
struct RestorePage {
    layout: Layout,
    container: ContainerView,
    snapshot: String,
}

/// Restoring replaces the root filesystem: a second, deliberate step on
/// its own page, which works without JavaScript.
#[rocket::get("/containers/<id>/snapshots/<name>/restore")]
async fn confirm_restore(
    console: Console<'_>,
    service: &State<Service>,
    id: &str,
    name: &str,
) -> ConsoleResult<HtmlPage<RestorePage>> {
    let id = parse_id(id)?;
    let container = service.container(id).await?;
    Ok(HtmlPage::ok(RestorePage {
        layout: Layout::new(
            format!("Restore {} to {name}", container.name),
            Section::Containers,
            None,
        )
        .visited_by(console.0),
        container: ContainerView::of(&container),
        snapshot: name.to_owned(),
    }))
}

#[rocket::post("/containers/<id>/snapshots/<name>/restore", data = "<_form>")]
async fn restore(
    console: Console<'_>,
    service: &State<Service>,
    id: &str,
    name: &str,
    _form: Posted<ActionForm>,
) -> ConsoleResult<Flash<Redirect>> {
    let id = parse_id(id)?;
    let back = Redirect::to(container_url(id));
    match service
        .restore_snapshot(id, name, &console.0.requester())
        .await
    {
        Ok(_) => Ok(Flash::success(
            back,
            format!("Restore to snapshot {name} queued."),
        )),
        Err(error) if refused(&error) => Ok(Flash::error(back, error.to_string())),
        Err(other) => Err(other.into()),
    }
}

#[rocket::post("/containers/<id>/snapshots/<name>/delete", data = "<_form>")]
async fn delete(
    console: Console<'_>,
    service: &State<Service>,
    id: &str,
    name: &str,
    _form: Posted<ActionForm>,
) -> ConsoleResult<Flash<Redirect>> {
    let id = parse_id(id)?;
    let back = Redirect::to(format!("{}#snapshots", container_url(id)));
    match service
        .delete_snapshot(id, name, &console.0.requester())
        .await
    {
        Ok(_) => Ok(Flash::success(back, format!("Snapshot {name} deleted."))),
        Err(error) if refused(&error) => Ok(Flash::error(back, error.to_string())),
        Err(other) => Err(other.into()),
    }
}
