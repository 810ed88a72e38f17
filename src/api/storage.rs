//! `/storage`: this host's storage pools, whether each can be used here,
//! and their space.

use rocket::serde::json::Json;
use rocket::{Route, State};
use serde_json::{json, Value};

use super::Caller;
use crate::driver::storage::Pool;
use crate::error::ApiResult;
use crate::service::Service;

pub fn routes() -> Vec<Route> {
    rocket::routes![list]
}

/// A pool as the API shows it. Byte counts are strings, as the seed's
/// numbers are; `null` when the pool's file system cannot be read.
pub fn pool_json(pool: &Pool) -> Value {
    let usage = pool.usage();
    json!({
        "name": pool.name,
        "driver": pool.driver.as_str(),
        "path": pool.path,
        "usable": pool.unusable.is_none(),
        "reason": pool.unusable,
        "capacity": usage.map(|u| u.capacity.to_string()),
        "used": usage.map(|u| u.used.to_string()),
        "free": usage.map(|u| u.free.to_string()),
    })
}

/// Every pool, the default (first) one first.
#[rocket::get("/storage")]
async fn list(service: &State<Service>, _caller: Caller) -> ApiResult<Json<Value>> {
    let pools: Vec<Value> = service.storage_pools().iter().map(pool_json).collect();
    Ok(Json(json!({ "message": "success", "storage": pools })))
}
