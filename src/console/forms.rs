//! The console's forms: what a submitted form means as a service request,
//! and how the service's verdict is shown beside each field. Validation
//! itself is the service's (the same code the API uses); nothing here
//! decides whether a value is valid.

use rocket::form::{self, DataField, FromForm, Options, ValueField};
use serde_json::{Map, Value};

use crate::db::containers::Container;
use crate::domain::parameters::{Parameter, Parameters};
use crate::service::{NewContainer, ServiceError};

/// The fields of the new-container and parameters forms, named as the
/// API names them: `name`, `ostemplate`, `node`, and each parameter under its name
/// (`Parameter::ALL`). A field the browser did not send is `None`.
#[derive(Debug, Default)]
pub struct ContainerForm {
    pub name: Option<String>,
    pub ostemplate: Option<String>,
    /// The node asked for; empty lets berth choose.
    pub node: Option<String>,
    /// The storage pool asked for; empty is the first.
    pub storage: Option<String>,
    /// As the browser sent them, blank ones included (see `given`):
    /// nothing here is checked.
    pub parameters: Parameters,
    /// The visitor's CSRF secret (see `session`).
    pub csrf: Option<String>,
}

/// The fields of a `ContainerForm` that are not parameters, read by Rocket's
/// derive; `ContainerForm`'s own `FromForm` hands it every field whose name
/// is no parameter's.
#[derive(rocket::FromForm)]
#[doc(hidden)]
pub struct OtherFields {
    name: Option<String>,
    ostemplate: Option<String>,
    node: Option<String>,
    storage: Option<String>,
    csrf: Option<String>,
}

/// Each parameter field is read as the derive would read an
/// `Option<String>` field of that name (a repeated field is `None`, as
/// there), so the parameters need not be spelled out as struct fields.
#[doc(hidden)]
pub struct ContainerFormContext<'r> {
    others: <OtherFields as FromForm<'r>>::Context,
    parameters: [<Option<String> as FromForm<'r>>::Context; Parameter::ALL.len()],
}

#[rocket::async_trait]
impl<'r> FromForm<'r> for ContainerForm {
    type Context = ContainerFormContext<'r>;

    fn init(opts: Options) -> Self::Context {
        ContainerFormContext {
            others: OtherFields::init(opts),
            parameters: std::array::from_fn(|_| <Option<String> as FromForm<'r>>::init(opts)),
        }
    }

    fn push_value(ctxt: &mut Self::Context, field: ValueField<'r>) {
        match Parameter::from_name(field.name.key_lossy().as_str()) {
            Some(p) => Option::<String>::push_value(&mut ctxt.parameters[p.index()], field.shift()),
            None => OtherFields::push_value(&mut ctxt.others, field),
        }
    }

    async fn push_data(ctxt: &mut Self::Context, field: DataField<'r, '_>) {
        match Parameter::from_name(field.name.key_lossy().as_str()) {
            Some(p) => {
                Option::<String>::push_data(&mut ctxt.parameters[p.index()], field.shift()).await
            }
            None => OtherFields::push_data(&mut ctxt.others, field).await,
        }
    }

    fn push_error(ctxt: &mut Self::Context, error: form::Error<'r>) {
        OtherFields::push_error(&mut ctxt.others, error)
    }

    fn finalize(ctxt: Self::Context) -> form::Result<'r, Self> {
        let OtherFields {
            name,
            ostemplate,
            node,
            storage,
            csrf,
        } = OtherFields::finalize(ctxt.others)?;
        let mut parameters = Parameters::default();
        for (p, context) in Parameter::ALL.into_iter().zip(ctxt.parameters) {
            parameters.set(p, Option::<String>::finalize(context)?);
        }
        Ok(ContainerForm {
            name,
            ostemplate,
            node,
            storage,
            parameters,
            csrf,
        })
    }
}

impl super::session::CsrfField for ContainerForm {
    fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }
}

/// An empty or blank field means "not set".
fn given(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

impl ContainerForm {
    /// The create request: only the parameters that were filled in.
    pub fn new_container(&self) -> NewContainer {
        let mut parameters = Map::new();
        for (name, value) in self.parameters.entries() {
            if let Some(value) = given(Some(value)) {
                parameters.insert(name.to_owned(), Value::String(value.to_owned()));
            }
        }
        NewContainer {
            name: self.name.clone().unwrap_or_default(),
            ostemplate: self.ostemplate.clone().unwrap_or_default(),
            parameters: (!parameters.is_empty()).then_some(Value::Object(parameters)),
            node: given(self.node.as_deref()).map(str::to_owned),
            storage: given(self.storage.as_deref()).map(str::to_owned),
        }
    }

    /// The PATCH that makes the stored parameters what the form shows:
    /// changed values are set, emptied ones removed (`null`), untouched ones
    /// left out. Empty when nothing changed.
    pub fn parameter_patch(&self, stored: Option<&Parameters>) -> Map<String, Value> {
        let mut patch = Map::new();
        for parameter in Parameter::ALL {
            let name = parameter.name();
            let before = stored.and_then(|stored| stored.get(parameter));
            match (given(self.parameters.get(parameter)), before) {
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
            ("node".to_owned(), form.node.clone().unwrap_or_default()),
            (
                "storage".to_owned(),
                form.storage.clone().unwrap_or_default(),
            ),
        ];
        for parameter in Parameter::ALL {
            values.push((
                parameter.name().to_owned(),
                form.parameters
                    .get(parameter)
                    .unwrap_or_default()
                    .to_owned(),
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
                    .map(|(name, value)| (name.to_owned(), value.to_owned()))
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
                    || name == "node"
                    || Parameter::from_name(name).is_some())
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
            ServiceError::TemplateNotOnNode { template, node } => self.push_error(
                "node",
                format!(
                    "Node '{node}' does not have the template '{template}'. Choose another, \
                     or let berth choose."
                ),
            ),
            // The node choice is the form's too: whether the node exists and
            // takes containers is what the operator corrects there.
            ServiceError::UnknownNode(name) => {
                self.push_error("node", format!("There is no node named '{name}'."))
            }
            ServiceError::NodeUnavailable { name, state } => self.push_error(
                "node",
                format!(
                    "Node '{name}' is {}: it takes no new containers now. Choose another, \
                     or let berth choose.",
                    state.as_str()
                ),
            ),
            ServiceError::NoNodeAvailable => self.push_error(
                "node",
                "No node takes new containers now: every node is offline or draining.".to_owned(),
            ),
            ServiceError::UnknownPool(name) => self.push_error(
                "storage",
                format!("There is no storage pool named '{name}' on this host."),
            ),
            error @ ServiceError::PoolUnusable { .. } => {
                self.push_error("storage", capitalised(&error.to_string()))
            }
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
        let mut form = <ContainerForm as Default>::default();
        for (name, value) in pairs {
            let value = Some(value.to_string());
            match *name {
                "name" => form.name = value,
                "ostemplate" => form.ostemplate = value,
                "node" => form.node = value,
                other => {
                    let parameter = Parameter::from_name(other).expect("a form field");
                    form.parameters.set(parameter, value);
                }
            }
        }
        form
    }

    /// The form as it was before its parameters became one list: a field
    /// each, read by Rocket's derive.
    #[derive(Debug, rocket::FromForm)]
    struct Derived {
        name: Option<String>,
        ostemplate: Option<String>,
        node: Option<String>,
        hostname: Option<String>,
        cpus: Option<String>,
        memsize: Option<String>,
        memsize_units: Option<String>,
        ipadd: Option<String>,
        size: Option<String>,
        size_units: Option<String>,
        nameserver: Option<String>,
        csrf: Option<String>,
    }

    fn parsed<'r, T: FromForm<'r>>(body: &'r str, opts: Options) -> Result<T, String> {
        let mut context = T::init(opts);
        for field in rocket::form::Form::values(body) {
            T::push_value(&mut context, field);
        }
        T::finalize(context).map_err(|errors| errors.to_string())
    }

    #[test]
    fn a_posted_form_reads_as_the_derived_one_did() {
        for body in [
            "name=web&ostemplate=debian&node=n1&hostname=h&cpus=2&memsize=&memsize_units=M\
             &ipadd=10.0.0.1&size=1&size_units=G&nameserver=1.1.1.1&csrf=s",
            "cpus=2&cpus=3&name=a&name=b&csrf=x&csrf=y",
            "extra=1&hostname=x",
            "hostname.sub=x&cpus[0]=1&_method=patch",
            "HOSTNAME=x&Name=y&Size_Units=G",
            "hostname=a%20b+c&nameserver=%0A",
            "",
        ] {
            for opts in [Options::Lenient, Options::Strict] {
                let ours = parsed::<ContainerForm>(body, opts);
                let derived = parsed::<Derived>(body, opts);
                let (ours, derived) = match (ours, derived) {
                    (Ok(ours), Ok(derived)) => (ours, derived),
                    (Err(ours), Err(derived)) => {
                        assert_eq!(ours, derived, "{body} {opts:?}");
                        continue;
                    }
                    other => panic!("{body} {opts:?}: {other:?}"),
                };
                let expected = [
                    ("name", &derived.name),
                    ("ostemplate", &derived.ostemplate),
                    ("node", &derived.node),
                    ("hostname", &derived.hostname),
                    ("cpus", &derived.cpus),
                    ("memsize", &derived.memsize),
                    ("memsize_units", &derived.memsize_units),
                    ("ipadd", &derived.ipadd),
                    ("size", &derived.size),
                    ("size_units", &derived.size_units),
                    ("nameserver", &derived.nameserver),
                    ("csrf", &derived.csrf),
                ];
                for (field, expected) in expected {
                    let got = match field {
                        "name" => ours.name.as_deref(),
                        "ostemplate" => ours.ostemplate.as_deref(),
                        "node" => ours.node.as_deref(),
                        "csrf" => ours.csrf.as_deref(),
                        other => ours.parameters.get(Parameter::from_name(other).unwrap()),
                    };
                    assert_eq!(got, expected.as_deref(), "{body} {opts:?} {field}");
                }
            }
        }
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
    fn the_node_choice_asks_for_a_node_or_lets_berth_choose() {
        let request = form(&[("name", "web"), ("node", "host1")]).new_container();
        assert_eq!(request.node.as_deref(), Some("host1"));
        for choice in [&[("name", "web"), ("node", "")][..], &[("name", "web")][..]] {
            assert_eq!(form(choice).new_container().node, None, "{choice:?}");
        }
    }

    #[test]
    fn node_refusals_land_beside_the_node_choice() {
        use crate::domain::node::NodeState;
        let mut state = FormState::submitted(&form(&[("name", "web"), ("node", "n1")]));
        assert_eq!(state.value("node"), "n1");
        for refusal in [
            ServiceError::UnknownNode("n1".into()),
            ServiceError::NodeUnavailable {
                name: "n1".into(),
                state: NodeState::Draining,
            },
            ServiceError::NoNodeAvailable,
        ] {
            assert!(state.absorb(refusal).is_ok());
        }
        let error = state.error("node").unwrap();
        assert!(error.contains("no node named 'n1'"), "{error}");
        assert!(error.contains("'n1' is draining"), "{error}");
        assert!(
            error.contains("every node is offline or draining"),
            "{error}"
        );
        assert!(state.general_errors().is_empty());
    }

    #[test]
    fn the_patch_holds_only_what_changed() {
        let mut stored = Parameters::default();
        stored.set(Parameter::Hostname, Some("old".into()));
        stored.set(Parameter::Cpus, Some("2".into()));
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
