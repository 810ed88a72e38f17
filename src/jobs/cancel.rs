//! Stopping a running job safely: the driver marks the steps that can stop
//! (e.g. unpacking a template), and a cancel request is granted only while
//! the job is inside one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

/// The answer to a request to cancel a running job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelAnswer {
    /// The job is in a step that stops safely; it will.
    Requested,
    /// The job is not in such a step (or not running here).
    NotNow,
}

#[derive(Debug, Default)]
struct TokenState {
    cancellable: bool,
    requested: bool,
}

/// One running job's cancellation state.
#[derive(Debug, Default)]
pub struct CancelToken(Mutex<TokenState>);

impl CancelToken {
    pub fn enter_cancellable(&self) {
        self.0.lock().expect("cancel token").cancellable = true;
    }

    /// Leaves the cancellable step; true if a cancel was granted meanwhile,
    /// which the step must still honour.
    pub fn leave_cancellable(&self) -> bool {
        let mut state = self.0.lock().expect("cancel token");
        state.cancellable = false;
        state.requested
    }

    pub fn is_requested(&self) -> bool {
        self.0.lock().expect("cancel token").requested
    }

    fn request(&self) -> CancelAnswer {
        let mut state = self.0.lock().expect("cancel token");
        if state.cancellable {
            state.requested = true;
            CancelAnswer::Requested
        } else {
            CancelAnswer::NotNow
        }
    }
}

/// The tokens of the jobs running now.
#[derive(Debug, Default)]
pub struct RunningJobs(Mutex<HashMap<Uuid, Arc<CancelToken>>>);

impl RunningJobs {
    pub fn register(&self, job: Uuid) -> Arc<CancelToken> {
        let token = Arc::new(CancelToken::default());
        self.0
            .lock()
            .expect("running jobs")
            .insert(job, token.clone());
        token
    }

    pub fn unregister(&self, job: Uuid) {
        self.0.lock().expect("running jobs").remove(&job);
    }

    pub fn request_cancel(&self, job: Uuid) -> CancelAnswer {
        match self.0.lock().expect("running jobs").get(&job) {
            Some(token) => token.request(),
            None => CancelAnswer::NotNow,
        }
    }

    pub fn count(&self) -> usize {
        self.0.lock().expect("running jobs").len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_is_granted_only_inside_a_cancellable_step() {
        let running = RunningJobs::default();
        let job = Uuid::new_v4();
        let token = running.register(job);
        assert_eq!(running.request_cancel(job), CancelAnswer::NotNow);
        token.enter_cancellable();
        assert_eq!(running.request_cancel(job), CancelAnswer::Requested);
        assert!(token.is_requested());
        assert!(
            token.leave_cancellable(),
            "a granted cancel survives leaving the step"
        );
        running.unregister(job);
        assert_eq!(running.request_cancel(job), CancelAnswer::NotNow);
    }
}
