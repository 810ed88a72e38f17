//! Steps that leave a disk inconsistent when cut off half-way (resize2fs
//! moving blocks, e2fsck repairing): they run in a task of their own that a
//! cancelled or aborted job cannot drop, and berth's shutdown waits for them.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, Notify};

use super::StepLog;

/// The critical steps running now, shared by the driver (which runs them)
/// and the job runner (which must not end berth while one runs).
#[derive(Clone, Default)]
pub struct CriticalSteps {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    running: Mutex<Running>,
    next: AtomicU64,
    finished: Notify,
}

#[derive(Default)]
struct Running {
    steps: Vec<(u64, String)>,
    /// Set at shutdown: no step starts any more.
    closed: bool,
}

/// Removes its step from the list when the step's task ends, however.
struct Entry {
    inner: Arc<Inner>,
    id: u64,
}

impl Drop for Entry {
    fn drop(&mut self) {
        let mut running = self.inner.running.lock().expect("critical steps lock");
        running.steps.retain(|(id, _)| *id != self.id);
        drop(running);
        self.inner.finished.notify_waiters();
    }
}

impl CriticalSteps {
    /// What is running now, in words ("resizing the disk of web1").
    pub fn in_progress(&self) -> Vec<String> {
        let running = self.inner.running.lock().expect("critical steps lock");
        running.steps.iter().map(|(_, what)| what.clone()).collect()
    }

    /// From now on no critical step starts: a job that reaches one waits
    /// there until shutdown cuts it off (it runs again at the next start),
    /// so that what shutdown waits for can only shrink.
    pub fn close(&self) {
        self.inner
            .running
            .lock()
            .expect("critical steps lock")
            .closed = true;
    }

    /// Returns once no critical step is running.
    pub async fn finished(&self) {
        loop {
            let notified = self.inner.finished.notified();
            tokio::pin!(notified);
            // Registered before looking, so an end in between is not missed.
            notified.as_mut().enable();
            if self.in_progress().is_empty() {
                return;
            }
            notified.await;
        }
    }

    /// `None` once closed.
    fn enter(&self, what: String) -> Option<Entry> {
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let mut running = self.inner.running.lock().expect("critical steps lock");
        if running.closed {
            return None;
        }
        running.steps.push((id, what));
        Some(Entry {
            inner: self.inner.clone(),
            id,
        })
    }

    /// Runs `work` to its end in a task of its own, even if the caller is
    /// dropped (a job aborted at shutdown) in the meantime. Its steps reach
    /// `log` while the caller waits. Once shutdown has begun, `work` is not
    /// started and this never returns: the job is about to be cut off.
    pub async fn run_to_end<T, F, W>(&self, what: String, log: &dyn StepLog, work: W) -> T
    where
        T: Send + 'static,
        F: Future<Output = T> + Send + 'static,
        W: FnOnce(ForwardedLog) -> F,
    {
        let Some(entry) = self.enter(what) else {
            log.step("berth is stopping: this step runs at the next start".into());
            return std::future::pending().await;
        };
        let (sender, mut lines) = mpsc::unbounded_channel();
        let future = work(ForwardedLog { lines: sender });
        let mut task = tokio::spawn(async move {
            let _entry = entry;
            future.await
        });
        loop {
            tokio::select! {
                Some(line) = lines.recv() => log.step(line),
                ended = &mut task => {
                    while let Ok(line) = lines.try_recv() {
                        log.step(line);
                    }
                    match ended {
                        Ok(value) => return value,
                        Err(error) => std::panic::resume_unwind(error.into_panic()),
                    }
                }
            }
        }
    }
}

/// The step log a critical step writes to: lines go back to the job's log
/// while the job waits for it, and are dropped once it no longer does.
pub struct ForwardedLog {
    lines: mpsc::UnboundedSender<String>,
}

impl StepLog for ForwardedLog {
    fn step(&self, text: String) {
        let _ = self.lines.send(text);
    }
    fn progress(&self, _: u8) {}
    // A critical step never stops early.
    fn enter_cancellable(&self) {}
    fn leave_cancellable(&self) -> bool {
        false
    }
    fn cancel_requested(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    struct Lines(Mutex<Vec<String>>);

    impl StepLog for Lines {
        fn step(&self, text: String) {
            self.0.lock().unwrap().push(text);
        }
        fn progress(&self, _: u8) {}
        fn enter_cancellable(&self) {}
        fn leave_cancellable(&self) -> bool {
            false
        }
        fn cancel_requested(&self) -> bool {
            false
        }
    }

    #[tokio::test]
    async fn a_step_outlives_its_dropped_caller_and_is_waited_for() {
        let steps = CriticalSteps::default();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let (done, mut finished) = tokio::sync::oneshot::channel::<()>();
        let caller = {
            let steps = steps.clone();
            tokio::spawn(async move {
                let lines = Lines(Mutex::new(Vec::new()));
                steps
                    .run_to_end("resizing".into(), &lines, |log| async move {
                        log.step("started".into());
                        let _ = released.await;
                        let _ = done.send(());
                    })
                    .await
            })
        };
        while steps.in_progress().is_empty() {
            tokio::task::yield_now().await;
        }
        caller.abort();
        let _ = caller.await;
        assert_eq!(steps.in_progress(), ["resizing"]);
        assert!(finished.try_recv().is_err());
        release.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), steps.finished())
            .await
            .expect("finished once the step ended");
        assert!(finished.try_recv().is_ok(), "the step ran to its end");
        assert!(steps.in_progress().is_empty());
    }

    #[tokio::test]
    async fn nothing_starts_once_closed() {
        let steps = CriticalSteps::default();
        steps.close();
        let lines = Lines(Mutex::new(Vec::new()));
        let started = tokio::time::timeout(
            Duration::from_millis(200),
            steps.run_to_end("x".into(), &lines, |_| async { 1 }),
        )
        .await;
        assert!(started.is_err(), "a closed step ran");
        assert!(steps.in_progress().is_empty());
    }

    #[tokio::test]
    async fn lines_reach_the_job_log() {
        let steps = CriticalSteps::default();
        let lines = Lines(Mutex::new(Vec::new()));
        let answer = steps
            .run_to_end("x".into(), &lines, |log| async move {
                log.step("one".into());
                log.step("two".into());
                42
            })
            .await;
        assert_eq!(answer, 42);
        assert_eq!(*lines.0.lock().unwrap(), ["one", "two"]);
    }
}
