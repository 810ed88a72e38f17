//! Backup pages: the backups section of a container's page (take one with
//! keep_last, download, delete), the backups page (every backup, upload an
//! archive, restore into a new container), and the confirmation pages for
//! delete and restore, which work without JavaScript.

use askama::Template;
use rocket::fs::TempFile;
use rocket::http::Status;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{Route, State};
use uuid::Uuid;

use super::containers::{container_url, parse_id};
use super::session::{Console, CsrfField, Posted};
use super::views::TimeView;
use super::{ConsoleError, ConsoleResult, HtmlPage, Layout, Section};
use crate::db::backups::Backup;
use crate::service::{RestoreRequest, Service, ServiceError};

pub fn routes() -> Vec<Route> {
    rocket::routes![
        list,
        take,
        upload,
        confirm_delete,
        delete,
        confirm_restore,
        restore
    ]
}

/// One backup as the pages show it.
pub struct BackupView {
    pub id: Uuid,
    pub container_id: Option<Uuid>,
    pub container_name: String,
    pub kind: &'static str,
    pub node: String,
    pub size: String,
    pub sha256: String,
    pub created: TimeView,
}

impl BackupView {
    pub fn of(backup: &Backup) -> Self {
        BackupView {
            id: backup.id,
            container_id: backup.container_id,
            container_name: backup.container_name.clone(),
            kind: backup.kind.as_str(),
            node: backup.node.clone(),
            size: human_size(backup.size),
            sha256: backup.sha256.chars().take(12).collect(),
            created: TimeView::of(&backup.created_at),
        }
    }

    pub fn list(backups: &[Backup]) -> Vec<Self> {
        backups.iter().map(BackupView::of).collect()
    }
}

fn human_size(bytes: i64) -> String {
    let bytes = bytes.max(0) as f64;
    match bytes {
        b if b >= (1u64 << 30) as f64 => format!("{:.1} GiB", b / (1u64 << 30) as f64),
        b if b >= (1u64 << 20) as f64 => format!("{:.1} MiB", b / (1u64 << 20) as f64),
        b if b >= 1024.0 => format!("{:.1} KiB", b / 1024.0),
        b => format!("{b} B"),
    }
}

/// The backups of one container, for its page.
pub async fn of_container(service: &Service, id: Uuid) -> ConsoleResult<Vec<BackupView>> {
    Ok(BackupView::list(&service.backups(Some(id)).await?))
}

#[derive(Template)]
#[template(path = "backups.html")]
struct BackupsPage {
    layout: Layout,
    backups: Vec<BackupView>,
}

#[rocket::get("/backups")]
async fn list(
    console: Console<'_>,
    service: &State<Service>,
    flash: Option<FlashMessage<'_>>,
) -> ConsoleResult<HtmlPage<BackupsPage>> {
    Ok(HtmlPage::ok(BackupsPage {
        layout: Layout::new("Backups", Section::Backups, flash).visited_by(console.0),
        backups: BackupView::list(&service.backups(None).await?),
    }))
}

/// The take-a-backup form on a container's page.
#[derive(Debug, Default, rocket::FromForm)]
pub struct TakeForm {
    pub csrf: Option<String>,
    /// Empty: keep every backup.
    pub keep_last: String,
}

impl CsrfField for TakeForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

#[rocket::post("/containers/<id>/backups", data = "<form>")]
async fn take(
    console: Console<'_>,
    service: &State<Service>,
    id: &str,
    form: Posted<TakeForm>,
) -> ConsoleResult<Flash<Redirect>> {
    let id = parse_id(id)?;
    let back = Redirect::to(format!("{}#backups", container_url(id)));
    let keep_last = match form.keep_last.trim() {
        "" => None,
        text => match text.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                return Ok(Flash::error(
                    back,
                    "Keep last must be a whole number of at least 1, or empty.",
                ))
            }
        },
    };
    match service
        .queue_backup(id, keep_last, &console.0.requester())
        .await
    {
        Ok(accepted) => Ok(Flash::success(
            back,
            format!("Backup queued (job {}).", accepted.job.id),
        )),
        Err(error @ ServiceError::Validation(_)) => Ok(Flash::error(back, error.to_string())),
        Err(error) if error.is_conflict() => Ok(Flash::error(back, error.to_string())),
        Err(other) => Err(other.into()),
    }
}

/// The upload form: the archive as a file field.
#[derive(rocket::FromForm)]
pub struct UploadForm<'r> {
    pub csrf: Option<String>,
    pub file: TempFile<'r>,
}

impl CsrfField for UploadForm<'_> {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

#[rocket::post("/backups", data = "<form>")]
async fn upload(
    console: Console<'_>,
    service: &State<Service>,
    form: Posted<UploadForm<'_>>,
) -> ConsoleResult<Flash<Redirect>> {
    let _ = console;
    let back = Redirect::to("/backups");
    let Posted(mut form) = form;
    if form.file.len() == 0 {
        return Ok(Flash::error(back, "Choose a backup file to upload."));
    }
    let (id, partial) = service.upload_target()?;
    if let Err(error) = form.file.move_copy_to(&partial).await {
        let _ = std::fs::remove_file(&partial);
        return Err(ConsoleError::from(ServiceError::ChangeNotPublished(
            format!("storing the upload: {error}"),
        )));
    }
    match service.accept_upload(id, &partial).await {
        Ok(backup) => Ok(Flash::success(
            back,
            format!(
                "Uploaded: a {} backup of {}.",
                backup.kind.as_str(),
                backup.container_name
            ),
        )),
        Err(error @ ServiceError::BackupUnreadable(_)) => Ok(Flash::error(back, error.to_string())),
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "backup_delete.html")]
struct DeletePage {
    layout: Layout,
    backup: BackupView,
    /// `container` to go back to its page afterwards, else the backups page.
    back: String,
    back_url: String,
}

#[rocket::get("/backups/<id>/delete?<back>")]
async fn confirm_delete(
    console: Console<'_>,
    service: &State<Service>,
    id: &str,
    back: Option<&str>,
) -> ConsoleResult<HtmlPage<DeletePage>> {
    let backup = service.backup(parse_id(id)?).await?;
    let (back, back_url) = match (back, backup.container_id) {
        (Some("container"), Some(container)) => (
            "container".to_owned(),
            format!("{}#backups", container_url(container)),
        ),
        _ => (String::new(), "/backups".to_owned()),
    };
    Ok(HtmlPage::ok(DeletePage {
        layout: Layout::new("Delete a backup", Section::Backups, None).visited_by(console.0),
        backup: BackupView::of(&backup),
        back,
        back_url,
    }))
}

#[derive(Debug, Default, rocket::FromForm)]
pub struct BackForm {
    pub csrf: Option<String>,
    /// Where to go afterwards: `container` (its page) or the backups page.
    pub back: String,
}

impl CsrfField for BackForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

#[rocket::post("/backups/<id>/delete", data = "<form>")]
async fn delete(
    _console: Console<'_>,
    service: &State<Service>,
    id: &str,
    form: Posted<BackForm>,
) -> ConsoleResult<Flash<Redirect>> {
    let backup = service.backup(parse_id(id)?).await?;
    let back = match (form.back.as_str(), backup.container_id) {
        ("container", Some(container)) => format!("{}#backups", container_url(container)),
        _ => "/backups".to_owned(),
    };
    match service.delete_backup(backup.id).await {
        Ok(()) => Ok(Flash::success(
            Redirect::to(back),
            format!("Deleted the backup of {}.", backup.container_name),
        )),
        Err(error) if error.is_conflict() => {
            Ok(Flash::error(Redirect::to(back), error.to_string()))
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "backup_restore.html")]
struct RestorePage {
    layout: Layout,
    backup: BackupView,
    name: String,
    error: Option<String>,
}

#[rocket::get("/backups/<id>/restore")]
async fn confirm_restore(
    console: Console<'_>,
    service: &State<Service>,
    id: &str,
) -> ConsoleResult<HtmlPage<RestorePage>> {
    let backup = service.backup(parse_id(id)?).await?;
    Ok(HtmlPage::ok(RestorePage {
        layout: Layout::new("Restore a backup", Section::Backups, None).visited_by(console.0),
        backup: BackupView::of(&backup),
        name: String::new(),
        error: None,
    }))
}

#[derive(Debug, Default, rocket::FromForm)]
pub struct RestoreForm {
    pub csrf: Option<String>,
    pub name: String,
}

impl CsrfField for RestoreForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

#[rocket::post("/backups/<id>/restore", data = "<form>")]
async fn restore(
    console: Console<'_>,
    service: &State<Service>,
    id: &str,
    form: Posted<RestoreForm>,
) -> ConsoleResult<Result<Flash<Redirect>, HtmlPage<RestorePage>>> {
    let id = parse_id(id)?;
    let request = RestoreRequest {
        name: form.name.trim().to_owned(),
        backup: id.to_string(),
        parameters: None,
        node: None,
        storage: None,
    };
    match service
        .restore_container(request, None, &console.0.requester())
        .await
    {
        Ok(accepted) => Ok(Ok(Flash::success(
            Redirect::to(format!("/jobs/{}", accepted.job.id)),
            format!("Restoring into {}: the job is queued.", form.name.trim()),
        ))),
        Err(
            error @ (ServiceError::Validation(_)
            | ServiceError::NameTaken(_)
            | ServiceError::BackupUnreadable(_)),
        ) => {
            let backup = service.backup(id).await?;
            Ok(Err(HtmlPage::with_status(
                Status::UnprocessableEntity,
                RestorePage {
                    layout: Layout::new("Restore a backup", Section::Backups, None)
                        .visited_by(console.0),
                    backup: BackupView::of(&backup),
                    name: form.name.clone(),
                    error: Some(error.to_string()),
                },
            )))
        }
        Err(other) => Err(other.into()),
    }
}
