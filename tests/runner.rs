//! The job runner against a scripted stand-in driver: how a job's outcome
//! is settled (job and container together), how jobs cut off by a crash
//! are recovered at the next start, and every cancel path. The real runner
//! and service on a temporary SQLite file; no root, no LXC. That each
//! outcome also holds with real containers is proven in tests/lifecycle.rs,
//! tests/recovery.rs and tests/operations.rs.

pub mod local;

/// The database the in-process berths of this binary use (see tests/local).
#[allow(dead_code)]
const DATABASE: local::Database = local::Database::Sqlite;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use berth::db::Db;
use berth::domain::container::ContainerStatus;
use berth::domain::job::JobStatus;
use berth::domain::lifecycle::Action;
use berth::domain::parameters::ContainerSettings;
use berth::driver::host::HostProbe;
use berth::driver::{
    ContainerSpec, CriticalSteps, Driver, DriverError, RunState, StepLog, TemplateSource,
};
use berth::events::EventBus;
use berth::jobs::{JobQueue, Runner, RunnerHandle, RunnerSettings};
use berth::metrics::Metrics;
use berth::os_templates::OsTemplateStore;
use berth::service::{CancelOutcome, NewContainer, Requester, Service, ServiceError};
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

/// What the stand-in does when one of its methods is called.
#[derive(Clone, Copy, Debug)]
enum Step {
    Succeed,
    Fail,
    /// Enters a step that can stop, and stays there until a cancel is
    /// granted; then stops as a real step does.
    UntilCancelled,
    /// Stays in a step that cannot stop until the test releases it.
    Hold,
}

/// A driver that does what it is told and records what it was asked.
#[derive(Default)]
struct Scripted {
    steps: Mutex<HashMap<&'static str, Step>>,
    calls: Mutex<Vec<(&'static str, String)>>,
    running: Mutex<HashSet<String>>,
    /// Notified when a method enters its `UntilCancelled` or `Hold` step.
    entered: Notify,
    release: Notify,
}

impl Scripted {
    fn script(&self, method: &'static str, step: Step) {
        self.steps.lock().unwrap().insert(method, step);
    }

    fn calls(&self) -> Vec<(&'static str, String)> {
        self.calls.lock().unwrap().clone()
    }

    /// How many times `method` was called, whatever the container.
    fn times_called(&self, method: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(called, _)| *called == method)
            .count()
    }

    async fn act(
        &self,
        method: &'static str,
        name: &str,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        self.calls.lock().unwrap().push((method, name.to_owned()));
        let step = self
            .steps
            .lock()
            .unwrap()
            .get(method)
            .copied()
            .unwrap_or(Step::Succeed);
        match step {
            Step::Succeed => Ok(()),
            Step::Fail => Err(DriverError::ToolFailed {
                command: format!("scripted {method}"),
                status: "exit status: 1".into(),
                output: "scripted failure".into(),
            }),
            Step::UntilCancelled => {
                log.enter_cancellable();
                self.entered.notify_one();
                while !log.cancel_requested() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                assert!(log.leave_cancellable());
                Err(DriverError::Cancelled)
            }
            Step::Hold => {
                self.entered.notify_one();
                self.release.notified().await;
                Ok(())
            }
        }
    }
}

#[async_trait::async_trait]
impl Driver for Scripted {
    async fn create(
        &self,
        spec: &ContainerSpec,
        _: &TemplateSource,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        self.act("create", &spec.name, log).await
    }
    async fn configure(
        &self,
        spec: &ContainerSpec,
        _: Option<&ContainerSettings>,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        self.act("configure", &spec.name, log).await
    }
    async fn start(&self, spec: &ContainerSpec, log: &dyn StepLog) -> Result<(), DriverError> {
        self.act("start", &spec.name, log).await?;
        self.running.lock().unwrap().insert(spec.name.clone());
        Ok(())
    }
    async fn stop(&self, spec: &ContainerSpec, log: &dyn StepLog) -> Result<(), DriverError> {
        self.act("stop", &spec.name, log).await?;
        self.running.lock().unwrap().remove(&spec.name);
        Ok(())
    }
    async fn destroy(&self, spec: &ContainerSpec, log: &dyn StepLog) -> Result<(), DriverError> {
        self.act("destroy", &spec.name, log).await?;
        self.running.lock().unwrap().remove(&spec.name);
        Ok(())
    }
    async fn state(&self, name: &str) -> Result<RunState, DriverError> {
        Ok(if self.running.lock().unwrap().contains(name) {
            RunState::Running
        } else {
            RunState::Stopped
        })
    }
    async fn running(&self) -> Result<HashSet<String>, DriverError> {
        Ok(self.running.lock().unwrap().clone())
    }
    fn critical_steps(&self) -> CriticalSteps {
        CriticalSteps::default()
    }
}

/// The service and the parts a runner is made of, on a temporary database.
struct Bench {
    service: Service,
    db: Db,
    os_templates: OsTemplateStore,
    queue: JobQueue,
    events: EventBus,
    driver: Arc<Scripted>,
    _dir: tempfile::TempDir,
    /// The server, when the database is PostgreSQL; stopped last.
    postgres: Option<local::pg::Postgres>,
}

const WAIT: Duration = Duration::from_secs(60);

impl Bench {
    async fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let templates_dir = dir.path().join("templates");
        std::fs::create_dir(&templates_dir).unwrap();
        local::put_template(&templates_dir, local::TEMPLATE);
        let postgres =
            (crate::DATABASE == local::Database::Postgres).then(local::pg::Postgres::start);
        let url = match &postgres {
            Some(postgres) => postgres.create_database("berth"),
            None => format!("sqlite://{}", dir.path().join("berth.db").display()),
        };
        // Connections are waited for briefly, as berth's own pool does
        // (rocket_db_pools' connect_timeout): an outage outlasts the wait.
        let size = berth::db::PoolSize {
            readers: 8,
            acquire_timeout: Duration::from_secs(1),
        };
        let db = Db::open_with(&url, size).await.unwrap();
        let templates = OsTemplateStore::new(templates_dir);
        let queue = JobQueue::new();
        let events = EventBus::new();
        let service = Service::new(
            db.clone(),
            templates.clone(),
            queue.clone(),
            events.clone(),
            HostProbe::new(dir.path().to_owned(), false),
            berth::service::ThisNode::alone("local"),
        );
        service
            .register_this_node(berth::service::Capacity {
                cpus: 4,
                memory_bytes: 8 << 30,
                disk_bytes: 100 << 30,
            })
            .await
            .unwrap();
        Bench {
            service,
            db,
            os_templates: templates,
            queue,
            events,
            driver: Arc::new(Scripted::default()),
            _dir: dir,
            postgres,
        }
    }

    /// Starts a runner over this database, as berth's start-up does: it
    /// first settles what a previous runner left running.
    fn spawn_runner(&self) -> RunnerHandle {
        RunnerHandle::spawn(Runner::new(
            self.db.clone(),
            self.driver.clone(),
            self.os_templates.clone(),
            self.queue.clone(),
            self.events.clone(),
            Metrics::new(),
            RunnerSettings {
                max_parallel: 4,
                retention: Duration::from_secs(86_400),
                node: "local".into(),
                node_timeout_secs: 30,
                peers: None,
            },
        ))
    }

    async fn create(&self, name: &str) -> (Uuid, Uuid) {
        let accepted = self
            .service
            .create_container(
                NewContainer {
                    name: name.into(),
                    ostemplate: local::TEMPLATE.into(),
                    parameters: None,
                    node: None,
                    storage: None,
                },
                None,
                &Requester::anonymous(),
            )
            .await
            .unwrap();
        (accepted.container_id, accepted.job.id)
    }

    async fn queue(&self, container: Uuid, action: Action) -> Uuid {
        self.service
            .queue_action(container, action, None, &Requester::anonymous())
            .await
            .unwrap()
            .job
            .id
    }

    /// The job once it has finished.
    async fn finished(&self, job: Uuid) -> berth::db::jobs::Job {
        let job = self.service.wait_for_job(job, WAIT).await.unwrap();
        assert!(
            !matches!(job.status, JobStatus::Queued | JobStatus::Running),
            "{job:?}"
        );
        job
    }

    async fn status_of(&self, container: Uuid) -> ContainerStatus {
        self.service.container_any(container).await.unwrap().status
    }
}

async fn stop(runner: RunnerHandle) {
    runner.shutdown(WAIT, |_| {}).await;
}

// ------------------------------------------------------------------ settle

#[tokio::test]
async fn a_successful_job_settles_job_and_container_together() {
    let bench = Bench::new().await;
    let runner = bench.spawn_runner();
    let (id, create) = bench.create("made").await;
    let job = bench.finished(create).await;
    assert_eq!((job.status, job.error), (JobStatus::Done, None));
    assert_eq!(bench.status_of(id).await, ContainerStatus::Stopped);
    let start = bench.queue(id, Action::Start).await;
    assert_eq!(bench.finished(start).await.status, JobStatus::Done);
    assert_eq!(bench.status_of(id).await, ContainerStatus::Running);
    let delete = bench.queue(id, Action::Delete).await;
    assert_eq!(bench.finished(delete).await.status, JobStatus::Done);
    assert_eq!(bench.status_of(id).await, ContainerStatus::Deleted);
    let calls: Vec<_> = bench.driver.calls().into_iter().map(|c| c.0).collect();
    assert_eq!(calls, ["create", "start", "destroy"]);
    stop(runner).await;
}

#[tokio::test]
async fn a_failed_create_fails_the_container_and_says_why() {
    let bench = Bench::new().await;
    bench.driver.script("create", Step::Fail);
    let runner = bench.spawn_runner();
    let (id, create) = bench.create("broken").await;
    let job = bench.finished(create).await;
    assert_eq!(job.status, JobStatus::Failed);
    let error = job.error.unwrap();
    assert!(
        error.contains("create failed") && error.contains("scripted failure"),
        "{error}"
    );
    assert_eq!(bench.status_of(id).await, ContainerStatus::Failed);
    stop(runner).await;
}

#[tokio::test]
async fn a_failed_start_leaves_the_status_the_host_reports() {
    let bench = Bench::new().await;
    bench.driver.script("start", Step::Fail);
    let runner = bench.spawn_runner();
    let (id, create) = bench.create("unstarted").await;
    bench.finished(create).await;
    let start = bench.queue(id, Action::Start).await;
    assert_eq!(bench.finished(start).await.status, JobStatus::Failed);
    // Not `failed`: the container is there and stopped, as the host says.
    assert_eq!(bench.status_of(id).await, ContainerStatus::Stopped);
    stop(runner).await;
}

#[tokio::test]
async fn a_refused_configure_puts_the_parameters_back() {
    let bench = Bench::new().await;
    bench.driver.script("configure", Step::Fail);
    let runner = bench.spawn_runner();
    let (id, create) = bench.create("unchanged").await;
    bench.finished(create).await;
    let job = bench
        .service
        .update_parameters(id, &json!({ "hostname": "app01" }), &Requester::anonymous())
        .await
        .unwrap();
    assert_eq!(bench.finished(job.id).await.status, JobStatus::Failed);
    let container = bench.service.container_any(id).await.unwrap();
    let hostname = container
        .parameters
        .as_ref()
        .map(|p| serde_json::to_value(p).unwrap()["hostname"].clone());
    assert!(
        hostname.is_none() || hostname == Some(serde_json::Value::Null),
        "the refused value is gone: {container:?}"
    );
    assert_eq!(container.status, ContainerStatus::Stopped);
    stop(runner).await;
}

// ---------------------------------------------------------------- recovery

/// Stops the runner the way a crash does: whatever runs is cut off and
/// nothing is recorded.
async fn crash(runner: RunnerHandle) {
    runner.shutdown(Duration::ZERO, |_| {}).await;
}

#[tokio::test]
async fn a_create_cut_off_by_a_crash_is_failed_and_its_remains_removed() {
    let bench = Bench::new().await;
    bench.driver.script("create", Step::Hold);
    let runner = bench.spawn_runner();
    let (id, create) = bench.create("cutoff").await;
    bench.driver.entered.notified().await;
    crash(runner).await;
    assert_eq!(
        bench.service.job(create).await.unwrap().status,
        JobStatus::Running
    );

    bench.driver.script("create", Step::Succeed);
    let runner = bench.spawn_runner();
    let job = bench.finished(create).await;
    assert_eq!(job.status, JobStatus::Failed);
    let error = job.error.unwrap();
    assert!(
        error.contains("berth stopped while the container was being created")
            && error.contains("partial root filesystem was removed"),
        "{error}"
    );
    assert_eq!(bench.status_of(id).await, ContainerStatus::Failed);
    assert_eq!(
        bench.driver.calls(),
        [("create", "cutoff".into()), ("destroy", "cutoff".into())],
        "the create is not run again; what it left is removed"
    );
    stop(runner).await;
}

#[tokio::test]
async fn an_idempotent_job_cut_off_by_a_crash_runs_again() {
    let bench = Bench::new().await;
    let runner = bench.spawn_runner();
    let (id, create) = bench.create("resumed").await;
    bench.finished(create).await;
    bench.driver.script("start", Step::Hold);
    let start = bench.queue(id, Action::Start).await;
    bench.driver.entered.notified().await;
    crash(runner).await;
    assert_eq!(
        bench.service.job(start).await.unwrap().status,
        JobStatus::Running
    );

    bench.driver.script("start", Step::Succeed);
    let runner = bench.spawn_runner();
    let job = bench.finished(start).await;
    assert_eq!(job.status, JobStatus::Done);
    assert_eq!(bench.status_of(id).await, ContainerStatus::Running);
    let log = bench.service.job_log(&job).await.unwrap();
    assert!(
        log.iter()
            .any(|line| line.text.contains("berth restarted while this job ran")),
        "{log:?}"
    );
    let starts = bench.driver.times_called("start");
    assert_eq!(starts, 2, "run again from the start");
    stop(runner).await;
}

// --------------------------------------------------------- database outage

/// A job whose work ends while PostgreSQL is away is recorded once the
/// server is back, and never run again; the runner then takes new jobs on
/// new connections. (In the SQLite run of this suite there is no server to
/// stop, and the test walks the same path without the outage.)
#[tokio::test]
async fn a_job_that_ends_while_the_database_is_away_is_recorded_once_it_is_back() {
    let mut bench = Bench::new().await;
    let runner = bench.spawn_runner();
    let (id, create) = bench.create("outage").await;
    bench.finished(create).await;
    bench.driver.script("start", Step::Hold);
    let start = bench.queue(id, Action::Start).await;
    bench.driver.entered.notified().await;
    if let Some(postgres) = bench.postgres.as_mut() {
        postgres.stop_server();
    }
    bench.driver.release.notify_one();
    // Longer than a connection is waited for: the runner's first tries to
    // record the result fail.
    tokio::time::sleep(Duration::from_secs(3)).await;
    if let Some(postgres) = bench.postgres.as_mut() {
        postgres.start_server();
    }
    let job = bench.finished(start).await;
    assert_eq!((job.status, job.error), (JobStatus::Done, None));
    assert_eq!(bench.status_of(id).await, ContainerStatus::Running);
    let starts = bench.driver.times_called("start");
    assert_eq!(starts, 1, "the work was done once");
    let stop_job = bench.queue(id, Action::Stop).await;
    assert_eq!(bench.finished(stop_job).await.status, JobStatus::Done);
    stop(runner).await;
}

// ------------------------------------------------------------------ cancel

#[tokio::test]
async fn a_queued_create_cancelled_never_runs_and_leaves_nothing() {
    let bench = Bench::new().await;
    let (id, create) = bench.create("never").await;
    match bench.service.cancel_job(create).await.unwrap() {
        CancelOutcome::Cancelled(job) => assert_eq!(job.status, JobStatus::Cancelled),
        other => panic!("{other:?}"),
    }
    assert_eq!(bench.status_of(id).await, ContainerStatus::Deleted);
    // A runner started now finds nothing to do for it.
    let runner = bench.spawn_runner();
    let (_, other) = bench.create("after").await;
    bench.finished(other).await;
    assert_eq!(bench.driver.calls(), [("create", "after".into())]);
    stop(runner).await;
}

#[tokio::test]
async fn a_running_create_stops_where_it_can_and_takes_its_queued_jobs_along() {
    let bench = Bench::new().await;
    bench.driver.script("create", Step::UntilCancelled);
    let runner = bench.spawn_runner();
    let (id, create) = bench.create("stopped-early").await;
    let start = bench.queue(id, Action::Start).await;
    bench.driver.entered.notified().await;
    match bench.service.cancel_job(create).await.unwrap() {
        CancelOutcome::Stopping(job) => assert_eq!(job.status, JobStatus::Running),
        other => panic!("{other:?}"),
    }
    assert_eq!(bench.finished(create).await.status, JobStatus::Cancelled);
    assert_eq!(bench.status_of(id).await, ContainerStatus::Deleted);
    let start = bench.service.job(start).await.unwrap();
    assert_eq!(start.status, JobStatus::Cancelled, "{start:?}");
    assert!(bench.driver.calls().iter().all(|c| c.0 != "start"));
    stop(runner).await;
}

#[tokio::test]
async fn a_step_that_cannot_stop_is_not_cancelled_and_a_finished_job_neither() {
    let bench = Bench::new().await;
    bench.driver.script("create", Step::Hold);
    let runner = bench.spawn_runner();
    let (id, create) = bench.create("unstoppable").await;
    bench.driver.entered.notified().await;
    match bench.service.cancel_job(create).await {
        Err(ServiceError::JobNotCancellable { id, .. }) => assert_eq!(id, create),
        other => panic!("{other:?}"),
    }
    bench.driver.release.notify_one();
    assert_eq!(bench.finished(create).await.status, JobStatus::Done);
    assert_eq!(bench.status_of(id).await, ContainerStatus::Stopped);
    match bench.service.cancel_job(create).await {
        Err(ServiceError::JobFinished { id, status }) => {
            assert_eq!((id, status), (create, JobStatus::Done))
        }
        other => panic!("{other:?}"),
    }
    match bench.service.cancel_job(Uuid::new_v4()).await {
        Err(ServiceError::JobNotFound(_)) => {}
        other => panic!("{other:?}"),
    }
    stop(runner).await;
}

#[tokio::test]
async fn a_queued_delete_cancelled_gives_the_container_back_its_status() {
    let bench = Bench::new().await;
    let runner = bench.spawn_runner();
    let (id, create) = bench.create("kept").await;
    bench.finished(create).await;
    stop(runner).await;
    let delete = bench.queue(id, Action::Delete).await;
    assert_eq!(bench.status_of(id).await, ContainerStatus::Deleting);
    match bench.service.cancel_job(delete).await.unwrap() {
        CancelOutcome::Cancelled(job) => assert_eq!(job.status, JobStatus::Cancelled),
        other => panic!("{other:?}"),
    }
    assert_eq!(bench.status_of(id).await, ContainerStatus::Stopped);
}
