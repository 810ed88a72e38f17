//! The console's forms: what a submitted form means as a service request,
//! and how the service's verdict is shown beside each field. Validation
//! itself is the service's (the same code the API uses); nothing here
//! decides whether a value is valid.

use serde_json::{Map, Value};

use crate::db::containers::Container;
use crate::domain::parameters::{Parameters, PARAMETER_NAMES};
use crate::service::{NewContainer, ServiceError};

/// The fields of the new-container and parameters forms, named as the
/// API names them. A field the browser did not send is `None`.
#[derive(Debug, Default, rocket::FromForm)]
pub struct ContainerForm {
    pub name: Option<String>,
    pub ostemplate: Option<String>,
    pub hostname: Option<String>,
    pub cpus: Option<String>,
    pub memsize: Option<String>,
    pub memsize_units: Option<String>,
    pub ipadd: Option<String>,
    pub size: Option<String>,
    pub size_units: Option<String>,
    pub nameserver: Option<String>,
    /// The visitor's CSRF secret (see `session`).
    pub csrf: Option<String>,
}

impl super::session::CsrfField for ContainerForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// An empty or blank field means "not set".
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.trim().is_empty())
}

impl ContainerForm {
    fn parameter(&self, name: &str) -> &Option<String> {
        match name {
            "hostname" => &self.hostname,
            "cpus" => &self.cpus,
            "memsize" => &self.memsize,
            "memsize_units" => &self.memsize_units,
            "ipadd" => &self.ipadd,
            "size" => &self.size,
            "size_units" => &self.size_units,
            "nameserver" => &self.nameserver,
            other => unreachable!("not a parameter: {other}"),
        }
    }

    /// The create request: only the parameters that were filled in.
    pub fn new_container(&self) -> NewContainer {
        let mut parameters = Map::new();
        for name in PARAMETER_NAMES {
            if let Some(value) = given(self.parameter(name)) {
                parameters.insert(name.to_owned(), Value::String(value.to_owned()));
            }
        }
        NewContainer {
            name: self.name.clone().unwrap_or_default(),
            ostemplate: self.ostemplate.clone().unwrap_or_default(),
            parameters: (!parameters.is_empty()).then_some(Value::Object(parameters)),
        }
    }

    /// The PATCH that makes the stored parameters what the form shows:
    /// changed values are set, emptied ones removed (`null`), untouched ones
    /// left out. Empty when nothing changed.
    pub fn parameter_patch(&self, stored: Option<&Parameters>) -> Map<String, Value> {
        let stored = stored.cloned().unwrap_or_default();
        let stored: Map<String, Value> = match serde_json::to_value(&stored) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let mut patch = Map::new();
        for name in PARAMETER_NAMES {
            let before = stored.get(name).and_then(Value::as_str);
            match (given(self.parameter(name)), before) {
                (Some(now), Some(before)) if now == before => {}
                (Some(now), _) => {
                    patch.insert(name.to_owned(), Value::String(now.to_owned()));
                }
                (None, Some(_)) => {
                    patch.insert(name.to_owned(), Value::Null);
                }
                (None, None) => {}
            }
        }
        patch
    }
}

/// A form as the page shows it: the values to put in the fields and the
/// errors to put beside them.
#[derive(Debug, Default)]
pub struct FormState {
    values: Vec<(String, String)>,
    errors: Vec<(String, String)>,
}

impl FormState {
    /// A form filled with what the operator submitted.
    pub fn submitted(form: &ContainerForm) -> Self {
        let mut values = vec![
            ("name".to_owned(), form.name.clone().unwrap_or_default()),
            (
                "ostemplate".to_owned(),
                form.ostemplate.clone().unwrap_or_default(),
            ),
        ];
        for name in PARAMETER_NAMES {
            values.push((
                name.to_owned(),
                form.parameter(name).clone().unwrap_or_default(),
            ));
        }
        FormState {
            values,
            errors: Vec::new(),
        }
    }

    /// A parameters form showing the container's stored parameters.
    pub fn of_container(container: &Container) -> Self {
        let values = container
            .parameters
            .as_ref()
            .map(|p| {
                p.entries()
                    .map(|(name, value)| (name.to_owned(), value.clone()))
                    .collect()
            })
            .unwrap_or_default();
        FormState {
            values,
            errors: Vec::new(),
        }
    }

    pub fn value(&self, field: &str) -> &str {
        self.values
            .iter()
            .find(|(name, _)| name == field)
            .map_or("", |(_, value)| value.as_str())
    }

    pub fn is(&self, field: &str, option: &str) -> bool {
        self.value(field) == option
    }

    /// The problems with `field`, joined, if there are any.
    pub fn error(&self, field: &str) -> Option<String> {
        let messages: Vec<&str> = self
            .errors
            .iter()
            .filter(|(name, _)| name == field)
            .map(|(_, message)| message.as_str())
            .collect();
        (!messages.is_empty()).then(|| messages.join("; "))
    }

    /// Problems that belong to no field of the form.
    pub fn general_errors(&self) -> Vec<&str> {
        self.errors
            .iter()
            .filter(|(name, _)| {
                !(name == "name"
                    || name == "ostemplate"
                    || PARAMETER_NAMES.contains(&name.as_str()))
            })
            .map(|(_, message)| message.as_str())
            .collect()
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    fn push_error(&mut self, field: &str, message: String) {
        // The service names parameters as the API's JSON nests them.
        let field = field.strip_prefix("parameters.").unwrap_or(field);
        self.errors.push((field.to_owned(), message));
    }

    /// Files a service refusal beside the field it is about. Returns the
    /// error back when it is not about the form's input at all.
    pub fn absorb(&mut self, error: ServiceError) -> Result<(), ServiceError> {
        match error {
            ServiceError::Validation(errors) => {
                for error in errors.0 {
                    self.push_error(&error.field, capitalised(&error.message));
                }
            }
            ServiceError::NameTaken(name) => self.push_error(
                "name",
                format!("A container named '{name}' already exists."),
            ),
            ServiceError::TemplateNotFound(name) => self.push_error(
                "ostemplate",
                format!("There is no template '{name}' in the template directory."),
            ),
            other => return Err(other),
        }
        Ok(())
    }
}

/// The service's messages continue a field name ("name: must not be
/// empty"); beside a labelled field they read as a sentence.
fn capitalised(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => {
            let mut text: String = first.to_uppercase().chain(chars).collect();
            if !text.ends_with(['.', '!', '?']) {
                text.push('.');
            }
            text
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FieldError, ValidationErrors};
    use serde_json::json;

    fn form(pairs: &[(&str, &str)]) -> ContainerForm {
        let mut form = ContainerForm::default();
        for (name, value) in pairs {
            let slot = match *name {
                "name" => &mut form.name,
                "ostemplate" => &mut form.ostemplate,
                "hostname" => &mut form.hostname,
                "cpus" => &mut form.cpus,
                "memsize" => &mut form.memsize,
                "memsize_units" => &mut form.memsize_units,
                "ipadd" => &mut form.ipadd,
                "size" => &mut form.size,
                "size_units" => &mut form.size_units,
                "nameserver" => &mut form.nameserver,
                _ => unreachable!(),
            };
            *slot = Some(value.to_string());
        }
        form
    }

    #[test]
    fn empty_fields_are_not_sent_as_parameters() {
        let request = form(&[
            ("name", "web"),
            ("ostemplate", "debian"),
            ("hostname", ""),
            ("cpus", "2"),
            ("memsize", "  "),
            ("memsize_units", ""),
        ])
        .new_container();
        assert_eq!(request.name, "web");
        assert_eq!(request.parameters, Some(json!({ "cpus": "2" })));
        let request = form(&[("name", "web"), ("hostname", "")]).new_container();
        assert_eq!(request.parameters, None);
    }

    #[test]
    fn the_patch_holds_only_what_changed() {
        let stored = Parameters {
            hostname: Some("old".into()),
            cpus: Some("2".into()),
            ..Parameters::default()
        };
        let patch = form(&[("hostname", "new"), ("cpus", "2"), ("ipadd", "")])
            .parameter_patch(Some(&stored));
        assert_eq!(Value::Object(patch), json!({ "hostname": "new" }));
        let patch = form(&[("hostname", ""), ("cpus", "2")]).parameter_patch(Some(&stored));
        assert_eq!(Value::Object(patch), json!({ "hostname": null }));
        assert!(form(&[("hostname", "old"), ("cpus", "2")])
            .parameter_patch(Some(&stored))
            .is_empty());
    }

    #[test]
    fn service_errors_land_beside_their_fields() {
        let mut state = FormState::submitted(&form(&[("name", "a b"), ("cpus", "x")]));
        let errors = ValidationErrors(vec![
            FieldError::new("name", "may contain only letters"),
            FieldError::new("parameters.cpus", "must be a whole number"),
            FieldError::new("parameters", "must be a JSON object"),
        ]);
        assert!(state.absorb(ServiceError::Validation(errors)).is_ok());
        assert_eq!(
            state.error("name").as_deref(),
            Some("May contain only letters.")
        );
        assert_eq!(
            state.error("cpus").as_deref(),
            Some("Must be a whole number.")
        );
        assert_eq!(state.error("hostname"), None);
        assert_eq!(state.general_errors(), vec!["Must be a JSON object."]);
        assert_eq!(state.value("name"), "a b");
        assert!(state
            .absorb(ServiceError::TemplateInUse("busy".into()))
            .is_err());
    }
}
