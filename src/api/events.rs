//! `/events`: job and container changes as Server-Sent Events, the moment
//! they are committed.

use rocket::response::stream::{Event as SseEvent, EventStream};
use rocket::tokio::select;
use rocket::tokio::sync::broadcast::error::RecvError;
use rocket::{Route, Shutdown, State};

use super::jobs::JobJson;
use super::Caller;
use crate::events::{Event, EventBus};

pub fn routes() -> Vec<Route> {
    rocket::routes![events]
}

/// `event: job` carries a job as `GET /jobs/:id` shows it (without
/// `message`); `event: container` a container as `GET /containers/:id`
/// shows it; `event: stats` a container's latest usage sample (this
/// node's containers, every `stats_interval_secs`). `event: lagged` means some events were missed: re-read.
#[rocket::get("/events")]
fn events(
    bus: &State<EventBus>,
    _caller: Caller,
    mut shutdown: Shutdown,
) -> EventStream![SseEvent + 'static] {
    let mut receiver = bus.subscribe();
    EventStream! {
        loop {
            let event = select! {
                received = receiver.recv() => match received {
                    Ok(event) => event,
                    Err(RecvError::Lagged(missed)) => {
                        yield SseEvent::data(missed.to_string()).event("lagged");
                        continue;
                    }
                    Err(RecvError::Closed) => break,
                },
                _ = &mut shutdown => break,
            };
            yield match event {
                Event::Job(job) => SseEvent::json(&JobJson::from(&job)).event("job"),
                Event::Container(container) => SseEvent::json(&container).event("container"),
                Event::Usage(usage) => {
                    SseEvent::json(&super::stats::usage_event_json(&usage)).event("stats")
                }
            };
        }
    }
}
