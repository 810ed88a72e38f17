//! Commands and terminals inside a running container (exec and the
//! console's terminal): the container must be running on this node, and a
//! container has at most `MAX_TERMINALS` terminals open at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use uuid::Uuid;

use super::{Service, ServiceError};
use crate::db::containers::Container;
use crate::domain::container::ContainerStatus;
use crate::domain::exec::{ExecCommand, MAX_TERMINALS, OUTPUT_LIMIT};
use crate::driver::{Driver, DriverError, ExecOutput, ExecRequest, Terminal};

/// Runs commands and opens terminals (managed state beside `Service`).
pub struct Attach {
    service: Service,
    driver: Arc<dyn Driver>,
    node: String,
    open: Arc<Mutex<HashMap<Uuid, usize>>>,
}

/// An open terminal, counted against its container's limit until dropped.
pub struct TerminalLease {
    pub terminal: Terminal,
    _slot: Slot,
}

struct Slot {
    container: Uuid,
    open: Arc<Mutex<HashMap<Uuid, usize>>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.container) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.container);
            }
        }
    }
}

impl Attach {
    pub fn new(service: Service, driver: Arc<dyn Driver>, node: String) -> Self {
        Attach {
            service,
            driver,
            node,
            open: Default::default(),
        }
    }

    /// The container, when commands can run in it here and now.
    async fn runnable(&self, id: Uuid) -> Result<Container, ServiceError> {
        let container = self.service.container(id).await?;
        if container.status != ContainerStatus::Running {
            return Err(ServiceError::NotRunning {
                container: id,
                status: container.status.as_str(),
            });
        }
        if container.node != self.node {
            return Err(ServiceError::OnOtherNode {
                container: id,
                node: container.node,
            });
        }
        Ok(container)
    }

    pub async fn exec(&self, id: Uuid, command: ExecCommand) -> Result<ExecOutput, ServiceError> {
        let container = self.runnable(id).await?;
        let request = ExecRequest {
            argv: command.argv,
            env: command.env,
            stdin: command.stdin,
            timeout: Duration::from_secs(command.timeout_secs),
            output_limit: OUTPUT_LIMIT,
        };
        self.driver
            .exec(&container.name, &request)
            .await
            .map_err(|error| attach_error(id, error))
    }

    pub async fn open_terminal(
        &self,
        id: Uuid,
        cols: u16,
        rows: u16,
    ) -> Result<TerminalLease, ServiceError> {
        let container = self.runnable(id).await?;
        let slot = self.take_slot(id)?;
        let terminal = self
            .driver
            .terminal(&container.name, cols, rows)
            .await
            .map_err(|error| attach_error(id, error))?;
        Ok(TerminalLease {
            terminal,
            _slot: slot,
        })
    }

    fn take_slot(&self, container: Uuid) -> Result<Slot, ServiceError> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(container).or_default();
        if *count >= MAX_TERMINALS {
            return Err(ServiceError::TooManyTerminals {
                container,
                max: MAX_TERMINALS,
            });
        }
        *count += 1;
        Ok(Slot {
            container,
            open: self.open.clone(),
        })
    }
}

fn attach_error(container: Uuid, error: DriverError) -> ServiceError {
    match error {
        // Stopped behind berth's back, or between the check and the attach.
        DriverError::NotRunning(_) => ServiceError::NotRunning {
            container,
            status: "stopped",
        },
        other => ServiceError::AttachFailed(other.to_string()),
    }
}
