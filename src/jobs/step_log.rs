//! A job's log and progress, written to the database in order while the
//! driver works, without making the driver wait on SQL.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::cancel::CancelToken;

use crate::db::{jobs as job_rows, Db};
use crate::domain::time::{self, Timestamp};
use crate::driver::StepLog;
use crate::events::{Event as Change, EventBus};

enum Event {
    Line(Timestamp, String),
    Progress(u8),
}

pub struct JobStepLog {
    job: uuid::Uuid,
    sender: mpsc::UnboundedSender<Event>,
    cancel: Arc<CancelToken>,
}

/// Finishes when every line sent before the log was dropped is stored.
pub struct LogWriter(tokio::task::JoinHandle<()>);

impl LogWriter {
    pub async fn flushed(self) {
        let _ = self.0.await;
    }
}

impl JobStepLog {
    pub fn start(
        db: Db,
        events: EventBus,
        cancel: Arc<CancelToken>,
        job: uuid::Uuid,
        seq: i64,
    ) -> (JobStepLog, LogWriter) {
        let (sender, mut receiver) = mpsc::unbounded_channel();
        let writer = tokio::spawn(async move {
            while let Some(event) = receiver.recv().await {
                let stored = async {
                    let mut conn = db.writer().await?;
                    match event {
                        Event::Line(time, text) => {
                            job_rows::append_log(&mut conn, seq, time, &text).await
                        }
                        Event::Progress(percent) => {
                            job_rows::set_progress(&mut conn, seq, percent).await?;
                            if let Some(row) = job_rows::get(&mut conn, job).await? {
                                events.publish(Change::Job(row));
                            }
                            Ok(())
                        }
                    }
                }
                .await;
                if let Err(error) = stored {
                    log::error!("job {job}: cannot store its log: {error}");
                }
            }
        });
        (
            JobStepLog {
                job,
                sender,
                cancel,
            },
            LogWriter(writer),
        )
    }
}

impl StepLog for JobStepLog {
    fn step(&self, text: String) {
        log::debug!("job {}: {text}", self.job);
        let _ = self.sender.send(Event::Line(time::now(), text));
    }

    fn progress(&self, percent: u8) {
        let _ = self.sender.send(Event::Progress(percent.min(100)));
    }

    fn enter_cancellable(&self) {
        self.cancel.enter_cancellable();
    }

    fn leave_cancellable(&self) -> bool {
        self.cancel.leave_cancellable()
    }

    fn cancel_requested(&self) -> bool {
        self.cancel.is_requested()
    }
}
