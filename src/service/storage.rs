//! This host's storage pools: which exist, whether each can work here, and
//! their space.

use super::{Service, ServiceError};
use crate::driver::storage::{Pool, StorageDriver};
use crate::driver::StorageRef;

impl Service {
    pub fn storage_pools(&self) -> &[Pool] {
        self.pools.all()
    }

    /// The pool a create puts its container on: the one named, or the
    /// first; refused when unknown or unusable here.
    pub(super) fn pool_for_create(&self, name: Option<&str>) -> Result<StorageRef, ServiceError> {
        let pool = match name {
            Some(name) => self
                .pools
                .get(name)
                .ok_or_else(|| ServiceError::UnknownPool(name.to_owned()))?,
            None => match self.pools.default_pool() {
                Some(pool) => pool,
                None => return Ok(StorageRef::default()),
            },
        };
        if let Some(reason) = &pool.unusable {
            return Err(ServiceError::PoolUnusable {
                name: pool.name.clone(),
                reason: reason.clone(),
            });
        }
        Ok(StorageRef {
            pool: pool.name.clone(),
            driver: pool.driver,
        })
    }

    /// Where a restored backup goes: the `dir` pool asked for, or the
    /// first usable one (the restore unpacks the archive into the
    /// container's directory).
    pub(super) fn pool_for_restore(&self, name: Option<&str>) -> Result<StorageRef, ServiceError> {
        if let Some(name) = name {
            let pool = self.pool_for_create(Some(name))?;
            if pool.driver != StorageDriver::Dir {
                let mut errors = crate::domain::ValidationErrors::default();
                errors.push(
                    "storage",
                    "a backup is restored onto a dir pool; this one is not (leave storage out \
                     for the first dir pool)",
                );
                return Err(errors.into());
            }
            return Ok(pool);
        }
        if self.pools.all().is_empty() {
            return Ok(StorageRef::default());
        }
        self.pools
            .all()
            .iter()
            .find(|pool| pool.driver == StorageDriver::Dir && pool.unusable.is_none())
            .map(|pool| StorageRef {
                pool: pool.name.clone(),
                driver: pool.driver,
            })
            .ok_or_else(|| ServiceError::PoolUnusable {
                name: "dir".into(),
                reason: "a backup is restored onto a dir pool, and this host has none that \
                         can be used; add a [[default.berth.storage]] table with driver = \"dir\""
                    .into(),
            })
    }
}

/// The pool a stored container names, as the driver needs it. A driver
/// name this berth does not know (written by a newer one) is taken as
/// `dir`, the layout every older container has.
pub fn storage_of(pool: &str, driver: &str) -> StorageRef {
    StorageRef {
        pool: pool.to_owned(),
        driver: StorageDriver::parse(driver).unwrap_or(StorageDriver::Dir),
    }
}
