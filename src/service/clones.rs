//! Clones: a new container made from another one (or from its snapshot),
//! with the same parameters except the ones asked for. Like Incus' copy,
//! a clone does not keep what makes the source reachable as itself: its
//! addresses (`ipadd`) and its host name are left out unless the request
//! sets them, so two containers never answer on one address.

use serde_json::{json, Value};
use uuid::Uuid;

use super::containers::admit;
use super::snapshots::ready_snapshot;
use super::{Accepted, Service, ServiceError};
use crate::db::containers::{self, Container};
use crate::db::jobs::NewJob;
use crate::domain::container::{ContainerName, ContainerStatus};
use crate::domain::job::{CloneChange, JobAction, JobPayload};
use crate::domain::lifecycle::Action;
use crate::domain::parameters::{Parameter, ParameterPatch, Parameters};
use crate::domain::time;
use crate::domain::ValidationErrors;
use crate::service::Requester;

/// A request to clone a container.
#[derive(Debug, Clone)]
pub struct CloneRequest {
    pub name: String,
    /// Copy this snapshot of the source rather than the source as it is.
    pub snapshot: Option<String>,
    /// Parameters to set on the clone (a PATCH of the source's).
    pub parameters: Option<Value>,
}

impl Service {
    /// Stores the clone and its job.
    pub async fn clone_container(
        &self,
        source_id: Uuid,
        request: CloneRequest,
        by: &Requester,
    ) -> Result<Accepted, ServiceError> {
        let mut errors = ValidationErrors::default();
        let name = ContainerName::parse(&request.name)
            .map_err(|e| errors.0.push(e))
            .ok();
        let overrides = match &request.parameters {
            None | Some(Value::Null) => None,
            Some(value) => ParameterPatch::from_json(value)
                .map_err(|e| errors.0.extend(e.0))
                .ok(),
        };
        let name = errors.into_result(name)?.expect("the name parsed");
        let host = self.host.limits();
        let mut tx = self.db.begin().await?;
        let source = containers::get(&mut tx, source_id)
            .await?
            .ok_or_else(|| ServiceError::ContainerNotFound(source_id.to_string()))?;
        admit(&source, Action::Snapshot)?;
        if let Some(snapshot) = &request.snapshot {
            ready_snapshot(&mut tx, source_id, &source.name, snapshot).await?;
        }
        let parameters = clone_parameters(source.parameters.as_ref(), overrides.as_ref(), &host)?;
        let now = time::now();
        let container = Container {
            seq: 0,
            id: Uuid::new_v4(),
            name: name.as_str().to_owned(),
            ostemplate: source.ostemplate.clone(),
            parameters,
            status: ContainerStatus::Creating,
            created_at: now,
            updated_at: now,
            // Its files are made from the source's, on the source's host
            // and pool.
            node: source.node.clone(),
            storage: source.storage.clone(),
            storage_driver: source.storage_driver.clone(),
        };
        let stored = match containers::insert(&mut tx, &container).await {
            Ok(stored) => stored,
            Err(e) if e.is_unique_violation() => {
                return Err(ServiceError::NameTaken(container.name))
            }
            Err(e) => return Err(e.into()),
        };
        let new_job = NewJob {
            entity_id: stored.id,
            action: JobAction::Clone,
            payload: Some(JobPayload::Clone(CloneChange {
                source: source_id,
                snapshot: request.snapshot,
            })),
            requested_by: by.as_deref(),
        };
        let job = self.commit_with_job(tx, new_job, now, None).await?;
        Ok(Accepted {
            container_id: stored.id,
            job,
        })
    }
}

/// The source's parameters without its addresses and host name, with the
/// request's on top; checked as a PATCH of them would be.
fn clone_parameters(
    source: Option<&Parameters>,
    overrides: Option<&ParameterPatch>,
    host: &crate::domain::parameters::HostLimits,
) -> Result<Option<Parameters>, ServiceError> {
    let forget = ParameterPatch::from_json(&json!({ "ipadd": null, "hostname": null }))
        .expect("a valid patch");
    let base = source.cloned().unwrap_or_default();
    let kept = base.merged(&forget);
    let Some(patch) = overrides else {
        return Ok(source.map(|_| kept));
    };
    let merged = kept.merged(patch);
    if base.get(Parameter::Size).is_some() && merged.get(Parameter::Size).is_none() {
        let mut errors = ValidationErrors::default();
        errors.push(
            Parameter::Size.field(),
            "a clone's disk is a copy of its source's: it cannot be removed; set a size instead",
        );
        return Err(errors.into());
    }
    merged.validate(patch, host)?;
    Ok(Some(merged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_keeps_no_address_or_host_name_unless_asked() {
        let host = crate::domain::parameters::HostLimits {
            cpus: 4,
            memory_bytes: None,
            disk_bytes: None,
        };
        let source = Parameters::default().merged(
            &ParameterPatch::from_json(&json!({
                "hostname": "web1", "ipadd": "10.0.0.5", "cpus": "1"
            }))
            .unwrap(),
        );
        let clone = clone_parameters(Some(&source), None, &host)
            .unwrap()
            .unwrap();
        assert_eq!(clone.get(Parameter::Ipadd), None);
        assert_eq!(clone.get(Parameter::Hostname), None);
        assert_eq!(clone.get(Parameter::Cpus), Some("1"));

        let asked = ParameterPatch::from_json(&json!({ "ipadd": "10.0.0.6" })).unwrap();
        let clone = clone_parameters(Some(&source), Some(&asked), &host)
            .unwrap()
            .unwrap();
        assert_eq!(clone.get(Parameter::Ipadd), Some("10.0.0.6"));
        assert_eq!(clone_parameters(None, None, &host).unwrap(), None);
    }
}
