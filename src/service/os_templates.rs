//! Template operations: listings read off the async threads (digests only
//! where asked for), and deletion, which depends on what the jobs are doing.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{Service, ServiceError};
use crate::db::containers::{self, Container};
use crate::db::jobs;
use crate::os_templates::TemplateInfo;

impl Service {
    /// The templates with their digests (hashing runs off the async threads).
    pub async fn templates_list(&self) -> Result<Vec<TemplateInfo>, ServiceError> {
        let store = self.os_templates.clone();
        let listed = tokio::task::spawn_blocking(move || store.list())
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(listed?)
    }

    /// The template names alone, for pages that offer a choice: the files
    /// are listed, never read (a digest of a big template takes minutes).
    /// The error is the directory's own, for the page to show as it is.
    pub async fn os_template_names(&self) -> std::io::Result<Vec<String>> {
        let store = self.os_templates.clone();
        let files = tokio::task::spawn_blocking(move || store.files())
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
        Ok(files.into_iter().map(|file| file.name).collect())
    }

    /// How many containers (on any node) each template name made.
    pub async fn containers_per_template(&self) -> Result<HashMap<String, i64>, ServiceError> {
        let counts = containers::count_by_template(&mut *self.connection().await?).await?;
        Ok(counts.into_iter().collect())
    }

    /// The containers (on any node) made from template `name`: deleting
    /// the template leaves them running, but they can no longer be made
    /// again from it.
    pub async fn containers_made_from(&self, name: &str) -> Result<Vec<Container>, ServiceError> {
        Ok(containers::made_from(&mut *self.connection().await?, name).await?)
    }

    /// Checks a received upload at `staging` and installs it as
    /// `file_name` (the staging file is gone afterwards either way), then
    /// tells the other nodes.
    pub async fn install_template(
        &self,
        staging: PathBuf,
        file_name: String,
        replace: bool,
    ) -> Result<TemplateInfo, ServiceError> {
        let store = self.os_templates.clone();
        let installed =
            tokio::task::spawn_blocking(move || store.install(&staging, &file_name, replace))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))??;
        self.templates_changed().await;
        Ok(installed)
    }

    /// Removes a template unless a create job waiting or running needs it.
    pub async fn delete_template(&self, name: &str) -> Result<(), ServiceError> {
        if jobs::create_pending_from(&mut *self.connection().await?, name, &self.node.name).await? {
            return Err(ServiceError::TemplateInUse(name.to_owned()));
        }
        self.os_templates.remove(name)?;
        self.templates_changed().await;
        Ok(())
    }

    /// After a template was added or removed here: the other nodes are
    /// told at once, or (if the database cannot be reached now) at the
    /// next heartbeat.
    pub async fn templates_changed(&self) {
        if let Err(error) = self.publish_templates().await {
            log::warn!("cannot tell the other nodes of this node's templates yet: {error}");
        }
    }
}
