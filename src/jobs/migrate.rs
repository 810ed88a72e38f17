//! A move to another node, in two parts. On the node that has the
//! container: record whether it runs, stop it, stream its files to the
//! target, check what arrived, and hand the container and the job over in
//! one transaction. On the target, once it owns the container: start it
//! again if it ran. Until the hand-over commits, the container is whole
//! where it was (and started again if it ran); its copy there is removed
//! only after.

use super::execute::{Failure, Performed};
use super::step_log::JobStepLog;
use super::Runner;
use crate::cluster::peer::{Peer, PeerError, Tally};
use crate::db::containers::{self, Container};
use crate::db::jobs::{self as job_rows, Job};
use crate::db::{nodes, DbError};
use crate::domain::job::{JobPayload, MigrateChange};
use crate::domain::lifecycle;
use crate::domain::node::NodeState;
use crate::domain::time;
use crate::driver::{ContainerSpec, DriverError, ProgressRange, RunState, StepLog};

/// Why a move failed, beyond what the driver says.
#[derive(Debug, thiserror::Error)]
pub(super) enum MoveFailure {
    #[error(
        "this node has no cluster_secret set; set the same one on every node to move containers"
    )]
    NoSecret,
    #[error("node '{0}' is no longer in the cluster")]
    TargetGone(String),
    #[error("node '{name}' is {}: it takes no containers now", state.as_str())]
    TargetUnavailable { name: String, state: NodeState },
    #[error("sending the files failed: {0}")]
    Peer(#[from] PeerError),
    #[error(
        "node '{node}' received {got_bytes} bytes (sha256 {got}), but {sent_bytes} bytes were \
         sent (sha256 {sent})"
    )]
    Corrupted {
        node: String,
        sent: String,
        sent_bytes: u64,
        got: String,
        got_bytes: String,
    },
}

impl Runner {
    pub(super) async fn migrate(
        &self,
        job: &Job,
        container: &Container,
        spec: &ContainerSpec,
        change: &MigrateChange,
        log: &JobStepLog,
    ) -> Result<Performed, Failure> {
        if change.handed_over {
            return self
                .finish_arrival(spec, change, log)
                .await
                .map(|()| Performed::Done);
        }
        if container.node == change.to {
            log.step(format!("already on node '{}': nothing to move", change.to));
            return Ok(Performed::Done);
        }
        let peers = self
            .settings
            .peers
            .as_ref()
            .ok_or(Failure::Move(MoveFailure::NoSecret))?;
        let target = self.target(&change.to).await?;
        let was_running = match change.was_running {
            Some(recorded) => recorded,
            None => {
                let running = self
                    .driver
                    .state(&spec.name)
                    .await
                    .map_err(driver_failure)?
                    == RunState::Running;
                let recorded = JobPayload::Migrate(MigrateChange {
                    was_running: Some(running),
                    ..change.clone()
                });
                let recorded: Result<(), DbError> = async {
                    let mut tx = self.db.begin().await?;
                    job_rows::set_payload(&mut tx, job.id, &recorded).await?;
                    Ok(tx.commit().await?)
                }
                .await;
                recorded.map_err(Failure::MoveDatabase)?;
                running
            }
        };
        let handed = JobPayload::Migrate(MigrateChange {
            was_running: Some(was_running),
            handed_over: true,
            ..change.clone()
        });
        let peer = Peer {
            name: &change.to,
            api_url: &target.api_url,
        };
        log.step(format!(
            "moving to node '{}' ({}){}",
            change.to,
            target.api_url,
            if was_running {
                "; it runs, so it is stopped first and started there again"
            } else {
                ""
            }
        ));
        // Asked before anything stops: a refusal costs no downtime.
        peers
            .check(&peer, container.id)
            .await
            .map_err(|e| Failure::Move(e.into()))?;
        if was_running {
            self.driver.stop(spec, log).await.map_err(driver_failure)?;
        }
        let sent = self.send(peers, &peer, spec, log).await;
        let handed_over = match sent {
            Ok(()) => self.hand_over(job, container, &handed, log).await,
            Err(failure) => Err(failure),
        };
        match handed_over {
            Ok(()) => {
                self.remove_local_copy(spec, log).await;
                Ok(Performed::HandedOver)
            }
            Err(failure) => {
                log.step(format!("the move failed: {failure}"));
                match peers.discard(&peer, container.id).await {
                    Ok(None) => {}
                    Ok(Some(why)) => log.step(format!("node '{}' says why: {why}", change.to)),
                    Err(error) => log.step(format!(
                        "could not ask node '{}' to remove what arrived ({error}); it is \
                         replaced by the next move there",
                        change.to
                    )),
                }
                if was_running {
                    log.step("starting it again here".into());
                    if let Err(error) = self.driver.start(spec, log).await {
                        log.step(format!("starting it again failed: {error}"));
                    }
                }
                Err(failure)
            }
        }
    }

    /// The target's `api_url`, if it takes containers now.
    async fn target(&self, name: &str) -> Result<nodes::NodeRecord, Failure> {
        let mut conn = self
            .db
            .pool()
            .acquire()
            .await
            .map_err(Failure::DatabaseUnavailable)?;
        let record = nodes::get(&mut conn, name)
            .await
            .map_err(Failure::MoveDatabase)?
            .ok_or_else(|| Failure::Move(MoveFailure::TargetGone(name.to_owned())))?;
        let state = NodeState::of(
            record.state,
            record.heartbeat_at,
            time::now(),
            self.settings.node_timeout_secs,
        );
        if !state.takes_containers() {
            return Err(Failure::Move(MoveFailure::TargetUnavailable {
                name: name.to_owned(),
                state,
            }));
        }
        Ok(record)
    }

    /// Streams the container's files to `peer` and checks that what
    /// arrived is what was sent.
    async fn send(
        &self,
        peers: &crate::cluster::peer::Peers,
        peer: &Peer<'_>,
        spec: &ContainerSpec,
        log: &JobStepLog,
    ) -> Result<(), Failure> {
        let mut outgoing = self.driver.send(spec).await.map_err(driver_failure)?;
        let tally = Tally::default();
        let started = std::time::Instant::now();
        let sending = peers.send_files(peer, spec.id, outgoing.take_stream(), tally.clone());
        let received = with_progress(sending, &tally, outgoing.size_hint(), log).await;
        let finished = outgoing.finish().await;
        // The target's refusal first: tar cut off by it (SIGPIPE) says
        // nothing more. Then tar's verdict: a stream it could not finish
        // is no copy, whatever arrived.
        let received = received.map_err(|e| Failure::Move(e.into()))?;
        finished.map_err(driver_failure)?;
        let (sent, sent_bytes) = tally.sum();
        if received.sha256 != sent || received.bytes != sent_bytes.to_string() {
            return Err(Failure::Move(MoveFailure::Corrupted {
                node: peer.name.to_owned(),
                sent,
                sent_bytes,
                got: received.sha256,
                got_bytes: received.bytes,
            }));
        }
        log.step(format!(
            "node '{}' has the files: {sent_bytes} bytes in {:.1} s, sha256 {sent}",
            peer.name,
            started.elapsed().as_secs_f64()
        ));
        Ok(())
    }

    /// Gives the container and the rest of the job to the target, in one
    /// transaction. When the commit's answer is lost (the database went
    /// away), what the database holds once it is back says whether it
    /// happened.
    async fn hand_over(
        &self,
        job: &Job,
        container: &Container,
        handed: &JobPayload,
        log: &JobStepLog,
    ) -> Result<(), Failure> {
        let JobPayload::Migrate(change) = handed else {
            unreachable!("a move hands over a move's payload")
        };
        let committed: Result<(), DbError> = async {
            let now = time::now();
            let mut tx = self.db.begin().await?;
            let current =
                containers::get_any(&mut tx, container.id)
                    .await?
                    .ok_or(DbError::Corrupt(format!(
                        "container {} vanished",
                        container.id
                    )))?;
            containers::set_node(&mut tx, container.id, &change.to, now).await?;
            containers::set_status(
                &mut tx,
                container.id,
                lifecycle::after_migration(current.status, false),
                now,
            )
            .await?;
            job_rows::hand_over(&mut tx, job.id, handed).await?;
            job_rows::append_log(
                &mut tx,
                job.seq,
                now,
                &format!(
                    "node '{}' owns the container now; the rest of this job runs there",
                    change.to
                ),
            )
            .await?;
            tx.commit().await?;
            Ok(())
        }
        .await;
        match committed {
            Ok(()) => Ok(()),
            Err(error) if error.is_unreachable() => {
                log.step(format!(
                    "the database went away while handing over ({error}); reading what it holds"
                ));
                match self.owner_when_reachable(container.id).await {
                    Some(owner) if owner == change.to => Ok(()),
                    _ => Err(Failure::MoveDatabase(error)),
                }
            }
            Err(error) => Err(Failure::MoveDatabase(error)),
        }
    }

    /// The container's node, read again until the database answers (a
    /// shutdown meanwhile leaves the job `running`, settled at the next
    /// start). Nothing else may be done before: both "start it again here"
    /// and "it is there now" would be wrong one way.
    async fn owner_when_reachable(&self, id: uuid::Uuid) -> Option<String> {
        let mut pause = std::time::Duration::from_millis(200);
        loop {
            let read = async {
                let mut conn = self.db.pool().acquire().await.map_err(DbError::from)?;
                containers::get_any(&mut conn, id).await
            }
            .await;
            match read {
                Ok(found) => return found.map(|c| c.node),
                Err(error) if error.is_unreachable() => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(5));
                }
                Err(_) => return None,
            }
        }
    }

    /// After the hand-over: this node's copy is no longer the container.
    async fn remove_local_copy(&self, spec: &ContainerSpec, log: &JobStepLog) {
        match self.driver.destroy(spec, log).await {
            Ok(()) => log.step("the copy on this node is removed".into()),
            Err(error) => {
                log::warn!(
                    "container {} moved away, but its copy here could not be removed: {error}",
                    spec.name
                );
                log.step(format!(
                    "removing the copy on this node failed ({error}); it is replaced if the \
                     container moves back, or remove it by hand"
                ));
            }
        }
    }

    /// On the target: start the container again if it ran before the move.
    async fn finish_arrival(
        &self,
        spec: &ContainerSpec,
        change: &MigrateChange,
        log: &JobStepLog,
    ) -> Result<(), Failure> {
        log.step(format!("node '{}' has the container", self.settings.node));
        if change.was_running == Some(true) {
            self.driver.start(spec, log).await.map_err(driver_failure)?;
        }
        Ok(())
    }
}

/// How often the job's progress follows the bytes sent.
const PROGRESS_PERIOD: std::time::Duration = std::time::Duration::from_millis(500);

/// Awaits `sending`, moving the job's progress from 5 to 95 % as the
/// bytes sent approach `size_hint` (what the files take on disk).
async fn with_progress<T>(
    sending: impl std::future::Future<Output = T>,
    tally: &Tally,
    size_hint: Option<u64>,
    log: &JobStepLog,
) -> T {
    let range = ProgressRange::new(log, 5, 95);
    let mut tick = tokio::time::interval(PROGRESS_PERIOD);
    tokio::pin!(sending);
    loop {
        tokio::select! {
            done = &mut sending => return done,
            _ = tick.tick() => {
                if let Some(total) = size_hint.filter(|total| *total > 0) {
                    let percent = (tally.bytes().saturating_mul(100) / total).min(100);
                    range.progress(percent as u8);
                }
            }
        }
    }
}

fn driver_failure(error: DriverError) -> Failure {
    Failure::Driver {
        action: crate::domain::job::JobAction::Migrate,
        error,
    }
}
