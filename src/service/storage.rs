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
