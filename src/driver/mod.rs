//! The container runtime behind berth: the `Driver` trait the job runner
//! calls, and its LXC implementation. Knows nothing of HTTP or SQL.

mod attach;
pub mod backup;
mod command;
mod critical;
mod files;
mod freeze;
pub mod host;
pub mod lxc;
mod lxc_config;
pub mod storage;
mod template_cache;
mod transfer;
mod tree_copy;
mod unpack;
mod usage;

use std::path::PathBuf;

use uuid::Uuid;

use crate::domain::os_template::TemplateFormat;
use crate::domain::parameters::{ContainerSettings, Parameters};
use crate::domain::ValidationErrors;

pub use attach::{Captured, ExecOutput, ExecRequest, Terminal};
pub use critical::CriticalSteps;
pub use freeze::Frozen;
pub use transfer::OutgoingFiles;
pub use usage::Usage;

/// Everything the driver needs to know about one container.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    /// berth's id for the container; marks the directories berth owns.
    pub id: Uuid,
    /// Also the LXC container name and its directory under the LXC path.
    pub name: String,
    pub settings: ContainerSettings,
    /// The pool holding its root filesystem, and that pool's driver.
    pub storage: StorageRef,
}

/// Which pool a container's root filesystem is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageRef {
    pub pool: String,
    pub driver: storage::StorageDriver,
}

impl Default for StorageRef {
    /// Where every container lived before pools: the `dir` pool `default`.
    fn default() -> Self {
        StorageRef {
            pool: "default".into(),
            driver: storage::StorageDriver::Dir,
        }
    }
}

impl ContainerSpec {
    /// The driver's view of a stored container. The stored values are
    /// taken as they are: the host's limits were checked when a request
    /// set them, and a host that has less today must not block the
    /// container's jobs.
    pub fn of(
        id: Uuid,
        name: &str,
        parameters: Option<&Parameters>,
    ) -> Result<Self, ValidationErrors> {
        Ok(ContainerSpec {
            id,
            name: name.to_owned(),
            settings: parameters.cloned().unwrap_or_default().settings()?,
            storage: StorageRef::default(),
        })
    }

    /// The same container on the pool `storage`.
    pub fn on(self, storage: StorageRef) -> Self {
        ContainerSpec { storage, ..self }
    }
}

/// A template file to build a root filesystem from.
#[derive(Debug, Clone)]
pub struct TemplateSource {
    pub path: PathBuf,
    pub format: TemplateFormat,
}

/// Whether the container's init is running, as LXC reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Running,
    Stopped,
    /// No such container on the host.
    Missing,
}

/// Where a job's steps are reported while the driver works.
pub trait StepLog: Send + Sync {
    /// One line an operator reads in the job's log.
    fn step(&self, text: String);
    /// How far the job is, 0–100, where that can be measured.
    fn progress(&self, percent: u8);
    /// Marks the start of a step that can stop safely if asked to.
    fn enter_cancellable(&self);
    /// Marks its end; true if a cancel was granted and must be honoured.
    fn leave_cancellable(&self) -> bool;
    /// Whether a cancel has been granted; checked often inside the step.
    fn cancel_requested(&self) -> bool;
}

/// One stretch of a job's progress: a step reporting 0–100 moves the job
/// from `from` to `to`, so a create made of several steps never goes back.
pub(crate) struct ProgressRange<'a> {
    inner: &'a dyn StepLog,
    from: u8,
    to: u8,
}

impl<'a> ProgressRange<'a> {
    pub fn new(inner: &'a dyn StepLog, from: u8, to: u8) -> Self {
        ProgressRange {
            inner,
            from: from.min(100),
            to: to.clamp(from.min(100), 100),
        }
    }
}

impl StepLog for ProgressRange<'_> {
    fn step(&self, text: String) {
        self.inner.step(text);
    }
    fn progress(&self, percent: u8) {
        let span = u32::from(self.to - self.from);
        let scaled = u32::from(self.from) + span * u32::from(percent.min(100)) / 100;
        self.inner.progress(scaled as u8);
    }
    fn enter_cancellable(&self) {
        self.inner.enter_cancellable();
    }
    fn leave_cancellable(&self) -> bool {
        self.inner.leave_cancellable()
    }
    fn cancel_requested(&self) -> bool {
        self.inner.cancel_requested()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("`{tool}` is not installed; install the Debian package '{package}' (apt-get install {package})")]
    ToolMissing { tool: String, package: &'static str },
    #[error("`{command}` failed ({status}): {output}")]
    ToolFailed {
        command: String,
        status: String,
        output: String,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error(
        "{path} already exists and was not created by berth for this container; \
         move it away or choose another name"
    )]
    NotOurs { path: PathBuf },
    #[error("the template needs about {needed_mib} MiB but size is {size_mib} MiB; create it with a larger size")]
    DiskTooSmall { needed_mib: u64, size_mib: u64 },
    #[error("the disk cannot shrink to {size_mib} MiB: {reason}; choose a larger size or free space first")]
    ShrinkRefused { size_mib: u64, reason: String },
    #[error("a disk size cannot be removed once set; set a new size instead")]
    DiskRemovalRefused,
    #[error("cancelled on request")]
    Cancelled,
    #[error("container {0} does not exist on this host")]
    Missing(String),
    #[error("container did not reach {state} within {seconds} s{detail}")]
    Timeout {
        state: &'static str,
        seconds: u64,
        detail: String,
    },
    #[error("template {path} changed while it was being unpacked; create the container again")]
    TemplateChanged { path: PathBuf },
    #[error("invalid LXC configuration value for {key}: {value:?}")]
    UnsafeConfigValue { key: String, value: String },
    #[error("{0} cannot move containers between hosts")]
    CannotMove(&'static str),
    #[error("container {0} is running here; a copy that runs is never replaced")]
    RunningHere(String),
    // exec and terminals (issue 14).
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("{0} cannot run commands inside containers")]
    CannotAttach(&'static str),
    #[error("storage pool '{0}' is not configured on this host")]
    PoolMissing(String),
    #[error("storage pool '{name}' cannot be used: {reason}")]
    PoolUnusable { name: String, reason: String },
    #[error("{0} takes no snapshots")]
    NoSnapshots(&'static str),

    #[error("container {container} has no snapshot '{name}' on this host")]
    SnapshotMissing { container: String, name: String },
    // Backups and restore.
    #[error("the backup archive cannot be used: {0}")]
    BadArchive(String),
    #[error("{0} cannot back up or restore containers")]
    CannotBackUp(&'static str),
}

impl DriverError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        DriverError::Io {
            context: context.into(),
            source,
        }
    }
}

/// A container runtime. Each method is safe to call again after a crash:
/// it converges on the state it describes.
#[async_trait::async_trait]
pub trait Driver: Send + Sync {
    /// Builds the container's root filesystem from the template and writes
    /// its configuration. On failure nothing of it is left behind.
    async fn create(
        &self,
        spec: &ContainerSpec,
        template: &TemplateSource,
        log: &dyn StepLog,
    ) -> Result<(), DriverError>;
    /// Applies the settings: all of them when stopped; on a running container
    /// what the kernel allows live, the rest at the next start (logged).
    /// With the settings `before` the change, a running container is
    /// touched only where they differ (what was set inside it by other means
    /// stays); without them every setting is applied.
    async fn configure(
        &self,
        spec: &ContainerSpec,
        before: Option<&ContainerSettings>,
        log: &dyn StepLog,
    ) -> Result<(), DriverError>;
    async fn start(&self, spec: &ContainerSpec, log: &dyn StepLog) -> Result<(), DriverError>;
    async fn stop(&self, spec: &ContainerSpec, log: &dyn StepLog) -> Result<(), DriverError>;
    /// Stops the container if needed and removes everything berth made for
    /// it. Removing a container that is already gone succeeds.
    async fn destroy(&self, spec: &ContainerSpec, log: &dyn StepLog) -> Result<(), DriverError>;
    async fn state(&self, name: &str) -> Result<RunState, DriverError>;
    /// The names of every running container, in one call.
    async fn running(&self) -> Result<std::collections::HashSet<String>, DriverError>;
    /// The steps running now that must not be cut off (berth's shutdown
    /// waits for them).
    fn critical_steps(&self) -> CriticalSteps;
    /// A running container's counters, read from its cgroup and veth;
    /// `None` when it does not run (or the host does not say).
    async fn usage(&self, name: &str) -> Result<Option<Usage>, DriverError> {
        let _ = name;
        Ok(None)
    }
    /// The bytes its root filesystem takes on the host's disk; `None`
    /// when it has none. A directory is walked: call it sparingly.
    async fn disk_used(&self, name: &str) -> Result<Option<u64>, DriverError> {
        let _ = name;
        Ok(None)
    }
    /// Takes the snapshot `name` of the container's root filesystem,
    /// consistent while it runs. Taking one that exists changes nothing.
    async fn snapshot(
        &self,
        spec: &ContainerSpec,
        name: &str,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        let _ = (spec, name, log);
        Err(DriverError::NoSnapshots(std::any::type_name::<Self>()))
    }
    /// Puts the stopped container's root filesystem back to the snapshot
    /// `name` (the snapshot stays).
    async fn restore_snapshot(
        &self,
        spec: &ContainerSpec,
        name: &str,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        let _ = (spec, name, log);
        Err(DriverError::NoSnapshots(std::any::type_name::<Self>()))
    }
    /// Deletes the snapshot `name`; one already gone is success.
    async fn delete_snapshot(
        &self,
        spec: &ContainerSpec,
        name: &str,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        let _ = (spec, name, log);
        Err(DriverError::NoSnapshots(std::any::type_name::<Self>()))
    }
    /// Builds the container `spec` as a copy of `source`'s root filesystem
    /// (consistent while it runs), or of its snapshot `snapshot`, with its
    /// own configuration. On failure nothing of it is left behind.
    async fn clone_container(
        &self,
        source: &ContainerSpec,
        snapshot: Option<&str>,
        spec: &ContainerSpec,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        let _ = (source, snapshot, spec, log);
        Err(DriverError::NoSnapshots(std::any::type_name::<Self>()))
    }
    /// Starts writing a stopped container's files as one stream, for
    /// `receive` on another host.
    async fn send(&self, spec: &ContainerSpec) -> Result<OutgoingFiles, DriverError> {
        let _ = spec;
        Err(DriverError::CannotMove(std::any::type_name::<Self>()))
    }
    /// Whether `receive` could build the container here now: nothing holds
    /// its name but an earlier copy of it that does not run.
    async fn can_receive(&self, spec: &ContainerSpec) -> Result<(), DriverError> {
        let _ = spec;
        Err(DriverError::CannotMove(std::any::type_name::<Self>()))
    }
    /// Builds the container from a stream `send` wrote on another host,
    /// with its configuration written for this one. A copy of the same
    /// container left here by an earlier move is replaced, unless it runs;
    /// on failure nothing of the new copy is left.
    async fn receive(
        &self,
        spec: &ContainerSpec,
        files: &mut (dyn tokio::io::AsyncRead + Unpin + Send),
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        let _ = (spec, files, log);
        Err(DriverError::CannotMove(std::any::type_name::<Self>()))
    }
    // exec and terminals (issue 14).
    /// Runs a command inside the running container and waits for it, at
    /// most its timeout; what it started is killed when it ends.
    async fn exec(&self, name: &str, request: &ExecRequest) -> Result<ExecOutput, DriverError> {
        let _ = (name, request);
        Err(DriverError::CannotAttach(std::any::type_name::<Self>()))
    }
    /// Opens a pseudo-terminal on a login shell inside the running
    /// container; dropping or closing it ends the shell.
    async fn terminal(&self, name: &str, cols: u16, rows: u16) -> Result<Terminal, DriverError> {
        let _ = (name, cols, rows);
        Err(DriverError::CannotAttach(std::any::type_name::<Self>()))
    }
    /// Writes the container's root filesystem, after `manifest`, as one
    /// compressed archive: to `partial`, then renamed to `target` once
    /// complete and synced. A running container is frozen while its files
    /// are read. On failure nothing is left at either path.
    async fn back_up(
        &self,
        spec: &ContainerSpec,
        manifest: &[u8],
        partial: &std::path::Path,
        target: &std::path::Path,
        log: &dyn StepLog,
    ) -> Result<backup::Written, DriverError> {
        let _ = (spec, manifest, partial, target, log);
        Err(DriverError::CannotBackUp(std::any::type_name::<Self>()))
    }
    /// Builds the container from a backup archive instead of a template,
    /// with its configuration written for this host. On failure nothing of
    /// it is left.
    async fn restore(
        &self,
        spec: &ContainerSpec,
        archive: &std::path::Path,
        kind: crate::domain::backup::BackupKind,
        log: &dyn StepLog,
    ) -> Result<(), DriverError> {
        let _ = (spec, archive, kind, log);
        Err(DriverError::CannotBackUp(std::any::type_name::<Self>()))
    }
}
