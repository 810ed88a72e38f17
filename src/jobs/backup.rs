//! Backup jobs (write a container's archive, record it, apply keep_last)
//! and restores (a create that unpacks a backup instead of a template).

use uuid::Uuid;

use super::execute::{Failure, Performed};
use super::step_log::JobStepLog;
use super::Runner;
use crate::db::backups::{self, Backup};
use crate::db::containers::Container;
use crate::db::DbError;
use crate::domain::backup::{map_proxmox, BackupKind, Manifest, MANIFEST_FORMAT, MANIFEST_VERSION};
use crate::domain::job::{BackupChange, BackupRestoreChange, JobAction};
use crate::domain::time;
use crate::driver::backup as archive;
use crate::driver::{ContainerSpec, StepLog};

#[derive(Debug, thiserror::Error)]
pub(crate) enum BackupFailure {
    #[error("this berth has no backup_dir set")]
    NoBackupDir,
    #[error("backup {0} no longer exists (it was deleted before the restore ran)")]
    Gone(Uuid),
    #[error("{0}")]
    Unusable(String),
    #[error("recording the backup failed: {0}")]
    Database(DbError),
}

impl From<DbError> for BackupFailure {
    fn from(error: DbError) -> Self {
        BackupFailure::Database(error)
    }
}

impl Runner {
    fn backup_dir(&self) -> Result<&std::path::Path, BackupFailure> {
        self.backup_dir.as_deref().ok_or(BackupFailure::NoBackupDir)
    }

    pub(super) async fn back_up(
        &self,
        container: &Container,
        spec: &ContainerSpec,
        change: &BackupChange,
        log: &JobStepLog,
    ) -> Result<Performed, Failure> {
        let dir = self.backup_dir()?;
        let id = change.backup_id;
        let now = time::now();
        let manifest = Manifest {
            format: MANIFEST_FORMAT.into(),
            format_version: MANIFEST_VERSION,
            name: container.name.clone(),
            ostemplate: container.ostemplate.clone(),
            parameters: container.parameters.clone(),
            berth_version: env!("CARGO_PKG_VERSION").into(),
            created_at: time::format(&now),
        };
        let manifest = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        let partial = archive::partial_path(dir, id);
        let target = dir.join(format!("{}.tar.zst", id.hyphenated()));
        let written = self
            .driver
            .back_up(spec, &manifest, &partial, &target, log)
            .await
            .map_err(|error| Failure::Driver {
                action: JobAction::Backup,
                error,
            })?;
        let backup = Backup {
            seq: 0,
            id,
            container_id: Some(container.id),
            container_name: container.name.clone(),
            ostemplate: container.ostemplate.clone(),
            parameters: container.parameters.clone(),
            kind: BackupKind::Berth,
            node: self.settings.node.clone(),
            size: written.size as i64,
            sha256: written.sha256.clone(),
            created_at: now,
        };
        let recorded = async {
            let mut conn = self.db.writer().await?;
            // A run again after a crash may find the row its first run wrote.
            backups::delete(&mut conn, id).await?;
            backups::insert(&mut conn, &backup).await
        }
        .await;
        if let Err(error) = recorded {
            let _ = std::fs::remove_file(&target);
            return Err(BackupFailure::Database(error).into());
        }
        log.step(format!(
            "backup {id}: {} bytes, sha256 {}",
            written.size, written.sha256
        ));
        if let Some(keep) = change.keep_last {
            self.keep_last(container.id, keep, log).await?;
        }
        log.progress(100);
        Ok(Performed::Done)
    }

    /// Deletes the container's backups beyond the newest `keep`.
    async fn keep_last(
        &self,
        container: Uuid,
        keep: u32,
        log: &JobStepLog,
    ) -> Result<(), BackupFailure> {
        let dir = self.backup_dir()?;
        let mut conn = self.db.writer().await?;
        let all = backups::list(&mut conn, Some(container)).await?;
        for old in all.into_iter().skip(keep as usize) {
            if old.node != self.settings.node {
                log.step(format!(
                    "keep_last {keep}: backup {} is on node '{}' and stays; delete it there",
                    old.id, old.node
                ));
                continue;
            }
            backups::delete(&mut conn, old.id).await?;
            let _ = std::fs::remove_file(archive::archive_path(dir, old.id));
            log.step(format!(
                "keep_last {keep}: deleted backup {} of {}",
                old.id,
                time::format(&old.created_at)
            ));
        }
        Ok(())
    }

    pub(super) async fn restore_backup(
        &self,
        spec: &ContainerSpec,
        change: &BackupRestoreChange,
        log: &JobStepLog,
    ) -> Result<Performed, Failure> {
        let dir = self.backup_dir()?;
        let id = change.backup_id;
        let backup = {
            let mut conn = self
                .db
                .pool()
                .acquire()
                .await
                .map_err(Failure::DatabaseUnavailable)?;
            backups::get(&mut conn, id)
                .await
                .map_err(BackupFailure::Database)?
                .ok_or(BackupFailure::Gone(id))?
        };
        let path = archive::archive_path(dir, id);
        log.step(format!(
            "restoring backup {id} ({} backup of {}, {} bytes)",
            backup.kind.as_str(),
            backup.container_name,
            backup.size
        ));
        let driver_failure = |error| Failure::Driver {
            action: JobAction::Create,
            error,
        };
        let (size, sha256) = archive::digest(&path).await.map_err(driver_failure)?;
        if size as i64 != backup.size || sha256 != backup.sha256 {
            return Err(BackupFailure::Unusable(format!(
                "backup {id}'s file changed since it was written ({size} bytes, sha256 \
                 {sha256}; recorded {} bytes, sha256 {}); restore another backup",
                backup.size, backup.sha256
            ))
            .into());
        }
        if backup.kind == BackupKind::Proxmox {
            let config = archive::read_config(&path, backup.kind)
                .await
                .map_err(driver_failure)?;
            let mapping = map_proxmox(&String::from_utf8_lossy(&config));
            let mapped: Vec<&str> = mapping.parameters.keys().map(String::as_str).collect();
            log.step(format!(
                "from the Proxmox configuration: {}",
                if mapped.is_empty() {
                    "nothing mapped".to_owned()
                } else {
                    format!("mapped {}", mapped.join(", "))
                }
            ));
            for line in &mapping.unmapped {
                log.step(format!("not mapped: {line}"));
            }
        }
        self.driver
            .restore(spec, &path, backup.kind, log)
            .await
            .map_err(driver_failure)?;
        Ok(Performed::Done)
    }
}
