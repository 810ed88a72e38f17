//! Job pages: the list of recent jobs and one job with its progress,
//! times, log and error.

use std::collections::HashMap;

use askama::Template;
use rocket::request::FlashMessage;
use rocket::{Route, State};

use super::containers::{container_names, parse_id};
use super::session::Console;
use super::views::{JobView, LogLineView};
use super::LISTED_CONTAINERS;
use super::{ConsoleResult, HtmlPage, Layout, Section};
use crate::domain::container::ContainerStatus;
use crate::service::{Service, ServiceError};

pub fn routes() -> Vec<Route> {
    rocket::routes![list, show]
}

/// The jobs list shows this many, newest first.
const LISTED_JOBS: u32 = 200;

#[derive(Template)]
#[template(path = "jobs.html")]
struct JobsPage {
    layout: Layout,
    jobs: Vec<JobView>,
    limit: u32,
}

#[rocket::get("/jobs")]
async fn list(
    console: Console<'_>,
    service: &State<Service>,
    flash: Option<FlashMessage<'_>>,
) -> ConsoleResult<HtmlPage<JobsPage>> {
    let containers = service.first_containers(LISTED_CONTAINERS).await?;
    let jobs = service.recent_jobs(LISTED_JOBS).await?;
    let names = container_names(service, &jobs, &containers).await?;
    Ok(HtmlPage::ok(JobsPage {
        layout: Layout::new("Jobs", Section::Jobs, flash).visited_by(console.0),
        jobs: JobView::list(&jobs, &names),
        limit: LISTED_JOBS,
    }))
}

#[derive(Template)]
#[template(path = "job.html")]
struct JobPage {
    layout: Layout,
    job: JobView,
    /// Whether the container still exists, so its name can be a link.
    container_exists: bool,
    log: Vec<LogLineView>,
}

#[rocket::get("/jobs/<id>")]
async fn show(
    console: Console<'_>,
    service: &State<Service>,
    id: &str,
    flash: Option<FlashMessage<'_>>,
) -> ConsoleResult<HtmlPage<JobPage>> {
    let job = service.job(parse_id(id)?).await?;
    let (name, exists) = match service.container_any(job.entity_id).await {
        Ok(container) => (
            Some(container.name),
            container.status != ContainerStatus::Deleted,
        ),
        Err(ServiceError::ContainerNotFound(_)) => (None, false),
        Err(other) => return Err(other.into()),
    };
    let log = service.job_log(&job).await?;
    let names: HashMap<_, _> = name.into_iter().map(|n| (job.entity_id, n)).collect();
    let view = JobView::list(std::slice::from_ref(&job), &names).remove(0);
    Ok(HtmlPage::ok(JobPage {
        layout: Layout::new(
            format!("{} {}", capitalise(view.action), view.container_label()),
            Section::Jobs,
            flash,
        )
        .visited_by(console.0),
        job: view,
        container_exists: exists,
        log: log.iter().map(LogLineView::of).collect(),
    }))
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
