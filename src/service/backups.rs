//! Backups: queue one of a container, list, read, delete, take an uploaded
//! archive in, and create a container from one (a restore).

use std::path::{Path, PathBuf};

use serde_json::Value;
use uuid::Uuid;

use super::containers::{admit, replayed, Accepted};
use super::{fingerprint, IdempotencyKey, Requester, Service, ServiceError};
use crate::db::backups::{self, Backup};
use crate::db::containers::{self, Container};
use crate::db::jobs::NewJob;
use crate::domain::backup::{map_proxmox, BackupKind, Manifest};
use crate::domain::container::{ContainerName, ContainerStatus};
use crate::domain::job::{BackupChange, BackupRestoreChange, JobAction, JobPayload};
use crate::domain::lifecycle::Action;
use crate::domain::parameters::{ParameterPatch, Parameters};
use crate::domain::time;
use crate::domain::ValidationErrors;
use crate::driver::backup as archive;

/// A request to make a container from a backup.
#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub name: String,
    /// The backup's id, as the client sent it.
    pub backup: String,
    /// Merged over the backup's own parameters: these win.
    pub parameters: Option<Value>,
    pub node: Option<String>,
    /// The pool asked for: a `dir` pool (`None`: the first usable one).
    pub storage: Option<String>,
}

impl Service {
    /// Where this node keeps its backup archives.
    pub fn backup_dir(&self) -> Result<&Path, ServiceError> {
        self.backup_dir
            .as_deref()
            .map(PathBuf::as_path)
            .ok_or_else(|| {
                ServiceError::ChangeNotPublished("this berth has no backup_dir set".into())
            })
    }

    /// Queues a backup job of the container; `keep_last` (at least 1) keeps
    /// that many of its backups once the new one is written.
    pub async fn queue_backup(
        &self,
        id: Uuid,
        keep_last: Option<u32>,
        by: &Requester,
    ) -> Result<Accepted, ServiceError> {
        if keep_last == Some(0) {
            let mut errors = ValidationErrors::default();
            errors.push("keep_last", "must be at least 1 (the backup being taken)");
            return Err(errors.into());
        }
        let mut tx = self.db.begin().await?;
        let container = containers::get(&mut tx, id)
            .await?
            .ok_or_else(|| ServiceError::ContainerNotFound(id.to_string()))?;
        admit(&container, Action::Backup)?;
        let new_job = NewJob {
            entity_id: id,
            action: JobAction::Backup,
            payload: Some(JobPayload::Backup(BackupChange {
                backup_id: Uuid::new_v4(),
                keep_last,
            })),
            requested_by: by.as_deref(),
        };
        let job = self.commit_with_job(tx, new_job, time::now(), None).await?;
        Ok(Accepted {
            container_id: id,
            job,
        })
    }

    /// Every backup, or one container's, newest first.
    pub async fn backups(&self, container: Option<Uuid>) -> Result<Vec<Backup>, ServiceError> {
        Ok(backups::list(&mut *self.connection().await?, container).await?)
    }

    pub async fn backup(&self, id: Uuid) -> Result<Backup, ServiceError> {
        backups::get(&mut *self.connection().await?, id)
            .await?
            .ok_or_else(|| ServiceError::BackupNotFound(id.to_string()))
    }

    /// The backup and its file, which must be on this node.
    pub async fn backup_file(&self, id: Uuid) -> Result<(Backup, PathBuf), ServiceError> {
        let backup = self.backup(id).await?;
        self.here(&backup)?;
        let path = archive::archive_path(self.backup_dir()?, id);
        Ok((backup, path))
    }

    fn here(&self, backup: &Backup) -> Result<(), ServiceError> {
        if backup.node == self.node.name {
            Ok(())
        } else {
            Err(ServiceError::BackupElsewhere {
                id: backup.id,
                node: backup.node.clone(),
            })
        }
    }

    /// Forgets the backup and removes its file (on the node that has it).
    pub async fn delete_backup(&self, id: Uuid) -> Result<(), ServiceError> {
        let (_, path) = self.backup_file(id).await?;
        let mut conn = self.db.writer().await?;
        if !backups::delete(&mut conn, id).await? {
            return Err(ServiceError::BackupNotFound(id.to_string()));
        }
        drop(conn);
        match tokio::fs::remove_file(&path).await {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                log::warn!("backup {id}: cannot remove {}: {error}", path.display())
            }
            _ => {}
        }
        Ok(())
    }

    /// Where an upload is written while it arrives, and the id it gets.
    pub fn upload_target(&self) -> Result<(Uuid, PathBuf), ServiceError> {
        let id = Uuid::new_v4();
        Ok((id, archive::partial_path(self.backup_dir()?, id)))
    }

    /// Checks an uploaded archive at `partial` (read whole: compression,
    /// tar, manifest or `pct.conf`) and keeps it as backup `id`; refused,
    /// nothing of it is kept.
    pub async fn accept_upload(&self, id: Uuid, partial: &Path) -> Result<Backup, ServiceError> {
        let accepted = self.accept_upload_inner(id, partial).await;
        let _ = std::fs::remove_file(partial);
        accepted
    }

    async fn accept_upload_inner(&self, id: Uuid, partial: &Path) -> Result<Backup, ServiceError> {
        let info = archive::inspect(partial)
            .await
            .map_err(|e| ServiceError::BackupUnreadable(e.to_string()))?;
        let (container_name, ostemplate, parameters) = match info.kind {
            BackupKind::Berth => {
                let manifest =
                    Manifest::parse(&info.config).map_err(ServiceError::BackupUnreadable)?;
                // Shown in pages and in a download's file name: only what
                // berth itself would have written.
                let unfit = |what: &str, why: String| {
                    ServiceError::BackupUnreadable(format!("the manifest's {what} {why}"))
                };
                ContainerName::parse(&manifest.name)
                    .map_err(|e| unfit("name", format!("{:?} {}", manifest.name, e.message)))?;
                crate::domain::os_template::check_name(&manifest.ostemplate).map_err(|e| {
                    unfit(
                        "ostemplate",
                        format!("{:?} {}", manifest.ostemplate, e.message),
                    )
                })?;
                (manifest.name, manifest.ostemplate, manifest.parameters)
            }
            BackupKind::Proxmox => {
                let mapping = map_proxmox(&String::from_utf8_lossy(&info.config));
                let patch = ParameterPatch::from_json(&Value::Object(mapping.parameters))
                    .map_err(|e| ServiceError::BackupUnreadable(e.to_string()))?;
                let name = mapping
                    .hostname
                    .filter(|name| ContainerName::parse(name).is_ok())
                    .unwrap_or_else(|| "vzdump".into());
                (
                    name,
                    mapping.ostemplate,
                    Some(Parameters::default().merged(&patch)),
                )
            }
        };
        let (size, sha256) = archive::digest(partial)
            .await
            .map_err(|e| ServiceError::BackupUnreadable(e.to_string()))?;
        let path = archive::install_upload(partial, self.backup_dir()?, id)
            .map_err(|e| ServiceError::BackupUnreadable(e.to_string()))?;
        let backup = Backup {
            seq: 0,
            id,
            container_id: None,
            container_name,
            ostemplate,
            parameters,
            kind: info.kind,
            node: self.node.name.clone(),
            size: size as i64,
            sha256,
            created_at: time::now(),
        };
        let mut conn = self.db.writer().await?;
        match backups::insert(&mut conn, &backup).await {
            Ok(stored) => Ok(stored),
            Err(error) => {
                let _ = std::fs::remove_file(&path);
                Err(error.into())
            }
        }
    }

    /// Creates a container from a backup: stored with the backup's
    /// parameters under those the request gives, and a create job that
    /// unpacks the archive instead of a template.
    pub async fn restore_container(
        &self,
        request: RestoreRequest,
        key: Option<&IdempotencyKey>,
        by: &Requester,
    ) -> Result<Accepted, ServiceError> {
        let request_storage = request.storage.clone();
        let mut errors = ValidationErrors::default();
        let name = ContainerName::parse(&request.name)
            .map_err(|e| errors.0.push(e))
            .ok();
        let backup_id = Uuid::try_parse(&request.backup)
            .map_err(|_| {
                errors.push(
                    "backup",
                    "must be a backup id (a UUID, see GET /v1/backups)",
                )
            })
            .ok();
        if let Some(node) = &request.node {
            if let Err(e) = crate::domain::node::NodeName::parse(node) {
                errors.0.push(e);
            }
        }
        let patch = match &request.parameters {
            None | Some(Value::Null) => None,
            Some(value) => match ParameterPatch::from_json(value) {
                Ok(patch) => Some(patch),
                Err(e) => {
                    errors.0.extend(e.0);
                    None
                }
            },
        };
        let (name, backup_id) = errors.into_result((name, backup_id))?;
        let (name, backup_id) = (name.expect("parsed"), backup_id.expect("parsed"));
        let backup = self.backup(backup_id).await?;
        if let Some(node) = request.node.as_deref().filter(|node| *node != backup.node) {
            let mut errors = ValidationErrors::default();
            errors.push(
                "node",
                format!(
                    "backup {backup_id} is on node '{}'; a restore happens there (name it or \
                     no node), not on '{node}'",
                    backup.node
                ),
            );
            return Err(errors.into());
        }
        // The backup's values are taken as they are (as for a container moved
        // here); only what the request sets meets this host's limits.
        let base = backup.parameters.clone().unwrap_or_default();
        let parameters = match &patch {
            Some(patch) => {
                let merged = base.merged(patch);
                merged.validate(patch, &self.host.limits())?;
                merged
            }
            None => {
                base.settings()?;
                base
            }
        };
        if backup.node == self.node.name {
            let path = archive::archive_path(self.backup_dir()?, backup_id);
            check_file(&backup, &path).await?;
        }
        let request_print = fingerprint(&[
            "restore",
            name.as_str(),
            &backup_id.to_string(),
            &serde_json::to_string(&parameters).expect("parameters serialise"),
            request_storage.as_deref().unwrap_or(""),
        ]);
        let mut tx = self.db.begin().await?;
        if let Some(replay) = replayed(&mut tx, key, &request_print).await? {
            return self.replay(replay).await;
        }
        let storage = self.pool_for_restore(request_storage.as_deref())?;
        let now = time::now();
        let container = Container {
            seq: 0,
            id: Uuid::new_v4(),
            name: name.as_str().to_owned(),
            ostemplate: backup.ostemplate.clone(),
            parameters: (parameters != Parameters::default()).then_some(parameters),
            status: ContainerStatus::Creating,
            created_at: now,
            updated_at: now,
            node: backup.node.clone(),
            storage: storage.pool,
            storage_driver: storage.driver.as_str().to_owned(),
        };
        let stored = match containers::insert(&mut tx, &container).await {
            Ok(stored) => stored,
            Err(e) if e.is_unique_violation() => {
                return Err(ServiceError::NameTaken(container.name))
            }
            Err(e) => return Err(e.into()),
        };
        let new_job = NewJob {
            entity_id: stored.id,
            action: JobAction::Create,
            payload: Some(JobPayload::Restore(BackupRestoreChange { backup_id })),
            requested_by: by.as_deref(),
        };
        let job = self
            .commit_with_job(tx, new_job, now, key.map(|key| (key, request_print)))
            .await?;
        Ok(Accepted {
            container_id: job.entity_id,
            job,
        })
    }
}

/// Whether the file is the one the backup recorded: the same size (a
/// truncated copy is not) and sha256 (a damaged one is not).
pub async fn check_file(backup: &Backup, path: &Path) -> Result<(), ServiceError> {
    let (size, sha256) = archive::digest(path)
        .await
        .map_err(|e| ServiceError::BackupUnreadable(format!("backup {}: {e}", backup.id)))?;
    if size as i64 != backup.size {
        return Err(ServiceError::BackupUnreadable(format!(
            "backup {}'s file is {size} bytes, not the {} it was written with: it was cut off \
             or changed since; restore another backup",
            backup.id, backup.size
        )));
    }
    if sha256 != backup.sha256 {
        return Err(ServiceError::BackupUnreadable(format!(
            "backup {}'s file has sha256 {sha256}, not the {} it was written with: it is \
             damaged; restore another backup",
            backup.id, backup.sha256
        )));
    }
    Ok(())
}
