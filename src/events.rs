//! The feed of changes to jobs and containers: the runner and the service
//! publish after each commit; the event stream (which the console's pages
//! follow) and job waiters subscribe. In a cluster the changes this node
//! publishes are also handed to a relay (`cluster`), which tells the other
//! nodes; what they tell this one comes back in through `publish_remote`.

use std::sync::{Arc, OnceLock};

use tokio::sync::{broadcast, mpsc};

use crate::db::containers::Container;
use crate::db::jobs::Job;

/// One change, carrying the row as it is after the change.
#[derive(Debug, Clone)]
pub enum Event {
    Job(Job),
    Container(Container),
    /// A container's latest usage sample (this node's only: never relayed).
    Usage(crate::stats::ContainerUsage),
}

#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
    relay: Arc<OnceLock<mpsc::Sender<Event>>>,
}

/// How many events a slow subscriber may fall behind before it misses some
/// (it is then told, and re-reads the state it shows).
const BACKLOG: usize = 1024;

/// How many changes may wait for the relay before new ones are dropped
/// (other nodes then learn of them from the next change, or their waiters
/// from their own look at the database when they time out).
const RELAY_BACKLOG: usize = 4096;

impl EventBus {
    pub fn new() -> Self {
        EventBus {
            sender: broadcast::channel(BACKLOG).0,
            relay: Arc::new(OnceLock::new()),
        }
    }

    /// A change made on this node.
    pub fn publish(&self, event: Event) {
        if let Some(relay) = self.relay.get() {
            let _ = relay.try_send(event.clone());
        }
        self.publish_remote(event);
    }

    /// A change another node made (it has told the others itself).
    pub fn publish_remote(&self, event: Event) {
        // No subscribers is the normal idle case, not an error.
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// From now on, every change this node publishes is also handed to the
    /// receiver returned (once; `None` when a relay is already installed).
    pub fn relay(&self) -> Option<mpsc::Receiver<Event>> {
        let (sender, receiver) = mpsc::channel(RELAY_BACKLOG);
        self.relay.set(sender).ok().map(|()| receiver)
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new()
    }
}
