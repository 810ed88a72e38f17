//! The templates page: this node's OS templates with their size, digest and
//! the containers made from each, an upload through the API's streamed
//! upload (with a progress bar), and deletion after a confirmation that
//! names those containers.

use askama::Template;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{Route, State};

use super::session::{ActionForm, Console, Posted};
use super::views::{human_bytes, ContainerView};
use super::{ConsoleResult, HtmlPage, Layout, Section};
use crate::domain::os_template::TemplateFormat;
use crate::service::{Service, ServiceError};

pub fn routes() -> Vec<Route> {
    rocket::routes![list, confirm_delete, delete]
}

pub struct TemplateRowView {
    pub name: String,
    pub format: &'static str,
    pub size: String,
    pub sha256: String,
    pub containers: i64,
}

#[derive(Template)]
#[template(path = "templates.html")]
struct TemplatesPage {
    layout: Layout,
    node: String,
    templates: Vec<TemplateRowView>,
    /// Why the list could not be read (the directory's own words).
    problem: Option<String>,
    /// What the `accept` attribute of the file field offers.
    accept: String,
}

#[rocket::get("/templates")]
async fn list(
    console: Console<'_>,
    service: &State<Service>,
    flash: Option<FlashMessage<'_>>,
) -> ConsoleResult<HtmlPage<TemplatesPage>> {
    let counts = service.containers_per_template().await?;
    let (templates, problem) = match service.templates_list().await {
        Ok(templates) => (templates, None),
        Err(ServiceError::Templates(error)) => (Vec::new(), Some(error.to_string())),
        Err(other) => return Err(other.into()),
    };
    let templates = templates
        .into_iter()
        .map(|t| TemplateRowView {
            containers: counts.get(&t.name).copied().unwrap_or(0),
            format: t.format.suffix().trim_start_matches('.'),
            size: human_bytes(t.size),
            sha256: t.sha256,
            name: t.name,
        })
        .collect();
    Ok(HtmlPage::ok(TemplatesPage {
        layout: Layout::new("Templates", Section::Templates, flash).visited_by(console.0),
        node: service.this_node().name.clone(),
        templates,
        problem,
        accept: TemplateFormat::ALL
            .iter()
            .map(|format| format.suffix())
            .collect::<Vec<_>>()
            .join(","),
    }))
}

#[derive(Template)]
#[template(path = "template_delete.html")]
struct DeleteTemplatePage {
    layout: Layout,
    name: String,
    made_from: Vec<ContainerView>,
}

#[rocket::get("/templates/<name>/delete")]
async fn confirm_delete(
    console: Console<'_>,
    service: &State<Service>,
    name: &str,
) -> ConsoleResult<HtmlPage<DeleteTemplatePage>> {
    let exists = service
        .os_template_names()
        .await
        .map_err(ServiceError::from)?
        .iter()
        .any(|known| known == name);
    if !exists {
        return Err(super::ConsoleError::NotFound(format!(
            "There is no template {name} on this node."
        )));
    }
    let made_from = service.containers_made_from(name).await?;
    Ok(HtmlPage::ok(DeleteTemplatePage {
        layout: Layout::new(format!("Delete template {name}"), Section::Templates, None)
            .visited_by(console.0),
        name: name.to_owned(),
        made_from: made_from.iter().map(ContainerView::of).collect(),
    }))
}

#[rocket::post("/templates/<name>/delete", data = "<_form>")]
async fn delete(
    _console: Console<'_>,
    service: &State<Service>,
    name: &str,
    _form: Posted<ActionForm>,
) -> ConsoleResult<Flash<Redirect>> {
    match service.delete_template(name).await {
        Ok(()) => Ok(Flash::success(
            Redirect::to("/templates"),
            format!("Template {name} was deleted."),
        )),
        Err(error @ (ServiceError::Templates(_) | ServiceError::TemplateInUse(_))) => {
            Ok(Flash::error(Redirect::to("/templates"), error.to_string()))
        }
        Err(other) => Err(other.into()),
    }
}
