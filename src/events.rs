//! The in-process feed of changes to jobs and containers: the runner and
//! the service publish after each commit; the event stream (which the
//! console's pages follow) and job waiters subscribe.

use tokio::sync::broadcast;

use crate::db::containers::Container;
use crate::db::jobs::Job;

/// One change, carrying the row as it is after the change.
#[derive(Debug, Clone)]
pub enum Event {
    Job(Job),
    Container(Container),
}

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
}

/// How many events a slow subscriber may fall behind before it misses some
/// (it is then told, and re-reads the state it shows).
const BACKLOG: usize = 1024;

impl EventBus {
    pub fn new() -> Self {
        EventBus {
            sender: broadcast::channel(BACKLOG).0,
        }
    }

    pub fn publish(&self, event: Event) {
        // No subscribers is the normal idle case, not an error.
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}
