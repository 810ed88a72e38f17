//! Template operations that depend on what the jobs are doing.

use super::{Service, ServiceError};
use crate::db::jobs;
use crate::templates::TemplateInfo;

impl Service {
    /// The templates with their digests (hashing runs off the async threads).
    pub async fn templates_list(&self) -> Result<Vec<TemplateInfo>, ServiceError> {
        let store = self.templates.clone();
        let listed = tokio::task::spawn_blocking(move || store.list())
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(listed?)
    }

    /// Removes a template unless a create job waiting or running needs it.
    pub async fn delete_template(&self, name: &str) -> Result<(), ServiceError> {
        if jobs::create_pending_from(&mut *self.connection().await?, name).await? {
            return Err(ServiceError::TemplateInUse(name.to_owned()));
        }
        Ok(self.templates.remove(name)?)
    }
}
