//! What crosses between the nodes of one database, beyond the rows they
//! share: each change a node publishes is announced with PostgreSQL's
//! NOTIFY; every other node reads the changed row, publishes it to its own
//! subscribers (event stream, job waiters, console) and wakes its runner,
//! which finds the job if it is for one of its containers. Nothing to do
//! on SQLite, which has one node.

pub mod peer;

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::db::notify::Heard;
use crate::db::{Backend, Db};
use crate::domain::job::JobStatus;
use crate::events::{Event, EventBus};
use crate::jobs::JobQueue;
use crate::service::Service;

/// The channel changes are announced on.
const CHANNEL: &str = "berth_changes";

/// What a notification says: which node changed what.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    node: String,
    what: Changed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Changed {
    Job(Uuid),
    Container(Uuid),
}

impl Change {
    /// `<node> job <id>` or `<node> container <id>` (node names have no spaces).
    fn payload(&self) -> String {
        match self.what {
            Changed::Job(id) => format!("{} job {id}", self.node),
            Changed::Container(id) => format!("{} container {id}", self.node),
        }
    }

    fn parse(payload: &str) -> Option<Change> {
        let mut words = payload.split(' ');
        let (node, kind, id) = (words.next()?, words.next()?, words.next()?);
        let id = Uuid::parse_str(id).ok()?;
        let what = match kind {
            "job" => Changed::Job(id),
            "container" => Changed::Container(id),
            _ => return None,
        };
        words.next().is_none().then(|| Change {
            node: node.to_owned(),
            what,
        })
    }
}

/// Starts the relay (this node's changes out) and the listener (the other
/// nodes' changes in), on PostgreSQL; they end with the process.
pub async fn start(db: &Db, service: &Service, events: &EventBus, queue: &JobQueue) {
    if db.backend() != Backend::Postgres {
        return;
    }
    let node = service.this_node().name.clone();
    if let Some(outgoing) = events.relay() {
        tokio::spawn(relay(db.clone(), node.clone(), outgoing));
    }
    tokio::spawn(listen(
        db.clone(),
        node,
        service.clone(),
        events.clone(),
        queue.clone(),
    ));
}

async fn relay(db: Db, node: String, mut outgoing: mpsc::Receiver<Event>) {
    while let Some(event) = outgoing.recv().await {
        let what = match &event {
            Event::Job(job) => Changed::Job(job.id),
            Event::Container(container) => Changed::Container(container.id),
            // Each node samples and streams its own containers' usage.
            Event::Usage(_) => continue,
        };
        let change = Change {
            node: node.clone(),
            what,
        };
        if let Err(error) = db.notify(CHANNEL, &change.payload()).await {
            log::warn!("cannot tell the other nodes of a change: {error}");
        }
    }
}

async fn listen(db: Db, node: String, service: Service, events: EventBus, queue: JobQueue) {
    loop {
        let mut listener = match db.listen(CHANNEL).await {
            Ok(Some(listener)) => listener,
            Ok(None) => return,
            Err(error) => {
                log::warn!("cannot listen for the other nodes' changes (retrying): {error}");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        // Whatever was queued while this node was not listening.
        queue.wake();
        loop {
            match listener.next().await {
                Ok(Heard::Notification(notification)) => {
                    let Some(change) = Change::parse(notification.payload()) else {
                        log::warn!(
                            "ignored a change notice berth does not know: {:?}",
                            notification.payload()
                        );
                        continue;
                    };
                    if change.node != node {
                        take_in(&service, &events, &queue, &node, change.what).await;
                    }
                }
                Ok(Heard::Reconnected) => {
                    log::warn!(
                        "listening for the other nodes' changes again after losing the connection"
                    );
                    queue.wake();
                }
                Err(error) => {
                    log::warn!("lost the connection that hears the other nodes: {error}");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
}

/// Publishes another node's change here, as the row is now, and wakes
/// the runner when the change is a job queued for one of this node's
/// containers: only then can it claim something. Every other change (a
/// job running, moving on, ending) leaves it asleep, so that each change
/// does not cost every node a claim; its own jobs' ends wake it locally,
/// and its periodic look covers anything missed.
async fn take_in(
    service: &Service,
    events: &EventBus,
    queue: &JobQueue,
    node: &str,
    what: Changed,
) {
    match what {
        Changed::Job(id) => match service.job(id).await {
            Ok(job) => {
                let (status, entity) = (job.status, job.entity_id);
                events.publish_remote(Event::Job(job));
                if status == JobStatus::Queued && claimable_here(owner(service, entity).await, node)
                {
                    queue.wake();
                }
            }
            Err(error) => log::debug!("job {id} changed on another node: {error}"),
        },
        Changed::Container(id) => match service.container_any(id).await {
            Ok(container) => events.publish_remote(Event::Container(container)),
            Err(error) => log::debug!("container {id} changed on another node: {error}"),
        },
    }
}

/// The node container `id` lives on; `None` when that cannot be read.
async fn owner(service: &Service, id: Uuid) -> Option<String> {
    service
        .container_any(id)
        .await
        .ok()
        .map(|container| container.node)
}

/// Whether a queued job of a container living on `owner` may be claimed by
/// `node`'s runner. An owner that could not be read wakes it all the
/// same: a needless claim costs less than a missed one.
fn claimable_here(owner: Option<String>, node: &str) -> bool {
    owner.map_or(true, |owner| owner == node)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_notice_reads_back_as_it_was_written() {
        let id = Uuid::new_v4();
        for what in [Changed::Job(id), Changed::Container(id)] {
            let change = Change {
                node: "host-1.lan".into(),
                what,
            };
            assert_eq!(Change::parse(&change.payload()), Some(change));
        }
        for bad in [
            "",
            "n job",
            "n job x",
            "n vm 00000000-0000-0000-0000-000000000000",
            "n job 00000000-0000-0000-0000-000000000000 more",
        ] {
            assert_eq!(Change::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_a_job_for_this_nodes_container_wakes_its_runner() {
        assert!(claimable_here(Some("a".into()), "a"));
        assert!(!claimable_here(Some("b".into()), "a"));
        assert!(claimable_here(None, "a"), "unknown owner: look anyway");
    }
}
