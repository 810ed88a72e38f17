//! `/nodes`: the hosts sharing berth's database, their state, capacity and
//! what their containers ask for; and the operator's drain.

use rocket::serde::json::Json;
use rocket::{Route, State};
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::JsonBody;
use super::Caller;
use crate::domain::node::AdminState;
use crate::domain::time;
use crate::domain::ValidationErrors;
use crate::error::{ApiError, ApiResult};
use crate::service::{NodeView, Service};

pub fn routes() -> Vec<Route> {
    rocket::routes![list, get, update]
}

/// A node as the API shows it.
pub fn node_json(view: &NodeView) -> Value {
    let record = &view.record;
    json!({
        "name": record.name,
        "state": view.state.as_str(),
        "api_url": record.api_url,
        "version": record.version,
        "capacity": {
            "cpus": record.cpus,
            "memory_bytes": record.memory_bytes,
            "disk_bytes": record.disk_bytes,
        },
        "requested": {
            "cpus": view.usage.cpus,
            "memory_bytes": view.usage.memory_bytes,
            "disk_bytes": view.usage.disk_bytes,
        },
        "containers": view.usage.containers,
        "templates": record.templates,
        "started_at": time::format(&record.started_at),
        "heartbeat_at": time::format(&record.heartbeat_at),
    })
}

/// Every node, by name.
#[rocket::get("/nodes")]
async fn list(service: &State<Service>, _caller: Caller) -> ApiResult<Json<Value>> {
    let nodes: Vec<Value> = service.nodes().await?.iter().map(node_json).collect();
    Ok(Json(json!({ "message": "success", "nodes": nodes })))
}

#[rocket::get("/nodes/<name>")]
async fn get(service: &State<Service>, _caller: Caller, name: &str) -> ApiResult<Json<Value>> {
    let node = service.node(name).await?;
    Ok(Json(
        json!({ "message": "success", "node": node_json(&node) }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    state: String,
}

/// `{"state": "draining"}` stops new containers from being placed on the
/// node (its own keep running, and their jobs too); `"online"` undoes it.
#[rocket::patch("/nodes/<name>", data = "<body>")]
async fn update(
    service: &State<Service>,
    _caller: Caller,
    name: &str,
    body: Result<JsonBody<UpdateBody>, ApiError>,
) -> ApiResult<Json<Value>> {
    let JsonBody(body) = body?;
    let state = AdminState::parse(&body.state).ok_or_else(|| {
        let mut errors = ValidationErrors::default();
        errors.push("state", "must be \"online\" or \"draining\"");
        ApiError::Validation(errors.to_string())
    })?;
    let node = service.set_node_state(name, state).await?;
    Ok(Json(
        json!({ "message": "success", "node": node_json(&node) }),
    ))
}
