//! `/containers/:id/stats`: a container's usage now and over the retained
//! history, as the sampler of the node it lives on measured it (another
//! node's container is asked of that node).

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rocket::http::Status;
use rocket::request::{FromRequest, Outcome};
use rocket::serde::json::Json;
use rocket::{Request, Route, State};
use serde_json::{json, Value};

use super::query::{at_most_once, Param};
use super::{parse_id, Caller};
use crate::domain::container::ContainerStatus;
use crate::domain::time;
use crate::error::{ApiError, ApiResult};
use crate::service::Service;
use crate::stats::{ContainerUsage, Sample, Stats};

pub fn routes() -> Vec<Route> {
    rocket::routes![stats]
}

/// The longest `range` taken: longer than any retention berth accepts.
const MAX_RANGE_SECS: u64 = 30 * 86_400;

/// A sample as the API shows it. Numbers are strings, as the seed's are:
/// byte and nanosecond counters outgrow the integers a JSON number keeps
/// exactly in JavaScript (2^53).
pub fn sample_json(sample: &Sample) -> Value {
    let usage = sample.usage.as_ref();
    let text = |n: Option<u64>| n.map(|n| n.to_string());
    json!({
        "at": time::format(&sample.at),
        "running": usage.is_some(),
        "cpu_time_ns": text(usage.map(|u| u.cpu_ns)),
        // A stopped container uses no CPU; the first sample of a running
        // one has nothing to compare with yet.
        "cpu_percent": match (usage, sample.cpu_percent) {
            (None, _) => Some("0.00".to_owned()),
            (Some(_), percent) => percent.map(|p| format!("{p:.2}")),
        },
        "memory_bytes": text(Some(usage.map_or(0, |u| u.memory_bytes))),
        "memory_limit_bytes": text(usage.and_then(|u| u.memory_limit_bytes)),
        "net_in_bytes": text(usage.and_then(|u| u.net_in_bytes)),
        "net_out_bytes": text(usage.and_then(|u| u.net_out_bytes)),
        "disk_used_bytes": text(sample.disk_bytes),
    })
}

/// `event: stats` on the event stream.
pub fn usage_event_json(usage: &ContainerUsage) -> Value {
    json!({
        "container_id": usage.container_id,
        "name": usage.name,
        "sample": sample_json(&usage.sample),
    })
}

/// `since` (RFC 3339) or `range` (seconds, or a number with `s`, `m`, `h`
/// or `d`) asks for the history; neither, the current figures alone.
/// A container on another node: its node answers (it samples it), asked
/// with the caller's own credentials (tokens are shared by every node).
#[rocket::get("/containers/<id>/stats?<since>&<range>")]
async fn stats(
    service: &State<Service>,
    stats: &State<Stats>,
    _caller: Caller,
    forwarding: Forwarding,
    id: &str,
    since: Param<'_>,
    range: Param<'_>,
) -> ApiResult<(Status, Json<Value>)> {
    let since = at_most_once("since", since)?;
    let range = at_most_once("range", range)?;
    let from = match (since, range) {
        (Some(_), Some(_)) => {
            return Err(ApiError::Validation(
                "give since or range, not both".to_owned(),
            ))
        }
        (Some(since), None) => Some(parse_since(since)?),
        (None, Some(range)) => {
            let seconds = parse_range(range)?;
            Some(time::now() - chrono::Duration::seconds(seconds as i64))
        }
        (None, None) => None,
    };
    let container = service.container(parse_id(id)?).await?;
    if container.node != service.this_node().name {
        let url = service
            .node(&container.node)
            .await
            .map(|view| view.record.api_url)
            .unwrap_or_default();
        if forwarding.from.is_some() || url.is_empty() {
            // Sent on by a node that took this one for the owner: the two
            // disagree (a move in between); no request goes round twice.
            return Err(ApiError::UsageElsewhere(format!(
                "container '{}' lives on node '{}', which samples its usage; ask that \
                 node ({url}/v1/containers/{}/stats)",
                container.name, container.node, container.id
            )));
        }
        return forward(
            &forwarding,
            &url,
            &container.node,
            container.id,
            service.this_node().name.as_str(),
        )
        .await;
    }
    let current = stats.current(container.id);
    let mut body = json!({
        "message": "success",
        "container_id": container.id,
        "name": container.name,
        "node": container.node,
        "status": container.status.as_str(),
        "interval_seconds": stats.interval().map(|i| i.as_secs().to_string()),
        // Figures of a container that is not running now say so, whatever
        // its last sample was.
        "current": match current {
            Some(sample) if container.status == ContainerStatus::Running || sample.usage.is_none() => {
                sample_json(&sample)
            }
            _ => Value::Null,
        },
    });
    if let Some(from) = from {
        let history: Vec<Value> = stats
            .history(container.id, from)
            .iter()
            .map(sample_json)
            .collect();
        body["history"] = Value::Array(history);
    }
    Ok((Status::Ok, Json(body)))
}

/// Marks a request one node sends on to another.
const FORWARDED_BY: &str = "X-Berth-Forwarded-By";

/// What a request to send on to the owning node carries along.
pub struct Forwarding {
    authorization: Option<String>,
    query: Option<String>,
    /// The node that sent this request on, if one did.
    from: Option<String>,
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for Forwarding {
    type Error = std::convert::Infallible;

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, Self::Error> {
        Outcome::Success(Forwarding {
            authorization: req.headers().get_one("Authorization").map(str::to_owned),
            query: req.uri().query().map(|q| q.as_str().to_owned()),
            from: req.headers().get_one(FORWARDED_BY).map(str::to_owned),
        })
    }
}

/// How long the owning node may take to answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);

fn client() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .timeout(FORWARD_TIMEOUT)
            // Node to node: a proxy for the host's outbound traffic is not
            // on the way to a neighbour.
            .no_proxy()
            .build()
            .unwrap_or_default()
    })
}

/// Asks `node` (at `api_url`) for the figures; its answer, success or
/// error, is passed on as it is.
async fn forward(
    forwarding: &Forwarding,
    api_url: &str,
    node: &str,
    id: uuid::Uuid,
    this_node: &str,
) -> ApiResult<(Status, Json<Value>)> {
    let mut url = format!("{api_url}/v1/containers/{}/stats", id.hyphenated());
    if let Some(query) = &forwarding.query {
        url = format!("{url}?{query}");
    }
    let mut request = client().get(&url).header(FORWARDED_BY, this_node);
    if let Some(authorization) = &forwarding.authorization {
        request = request.header("Authorization", authorization);
    }
    let unreachable = |why: String| {
        ApiError::NodeUnreachable(format!(
            "node '{node}', which samples this container, did not answer ({why}); \
             try again, or ask it at {api_url}"
        ))
    };
    let response = request
        .send()
        .await
        .map_err(|e| unreachable(e.without_url().to_string()))?;
    let status = Status::from_code(response.status().as_u16()).unwrap_or(Status::BadGateway);
    let bytes = response
        .bytes()
        .await
        .map_err(|e| unreachable(e.without_url().to_string()))?;
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| unreachable(format!("its answer is not JSON: {e}")))?;
    Ok((status, Json(body)))
}

fn parse_since(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            ApiError::Validation(format!(
                "since: '{}' is not an RFC 3339 time such as 2026-11-30T05:00:00Z",
                printable(raw)
            ))
        })
}

/// Seconds in `5`, `90s`, `5m`, `1h` or `2d`, from 1 s to 30 days.
fn parse_range(raw: &str) -> Result<u64, ApiError> {
    let bad = || {
        ApiError::Validation(format!(
            "range: '{}' is not a duration from 1 s to 30 days such as 300, 5m or 1h",
            printable(raw)
        ))
    };
    let (digits, unit) = match raw.char_indices().last() {
        Some((at, c)) if c.is_ascii_alphabetic() => (&raw[..at], c),
        _ => (raw, 's'),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return Err(bad()),
    };
    match number.checked_mul(scale) {
        Some(seconds) if (1..=MAX_RANGE_SECS).contains(&seconds) => Ok(seconds),
        _ => Err(bad()),
    }
}

fn printable(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_seconds_or_a_number_with_a_unit() {
        assert_eq!(parse_range("300").unwrap(), 300);
        assert_eq!(parse_range("90s").unwrap(), 90);
        assert_eq!(parse_range("5m").unwrap(), 300);
        assert_eq!(parse_range("1h").unwrap(), 3600);
        assert_eq!(parse_range("2d").unwrap(), 172_800);
        for bad in [
            "",
            "0",
            "m",
            "-5",
            "5x",
            "1.5h",
            "31d",
            "99999999999999999999",
            "5 m",
        ] {
            let error = parse_range(bad).unwrap_err();
            assert_eq!(error.code(), 1002, "{bad}");
        }
    }

    #[test]
    fn since_is_rfc3339() {
        assert!(parse_since("2026-11-30T05:00:00Z").is_ok());
        assert!(parse_since("2026-11-30T05:00:00+02:00").is_ok());
        assert_eq!(parse_since("yesterday").unwrap_err().code(), 1002);
    }
}
