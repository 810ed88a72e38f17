//! Container parameters, spelled as the seed API (and OpenVZ's `prlctl`)
//! spells them: how they arrive, how they are merged and stored, and the
//! rules that turn them into validated values the driver can apply.

use std::fmt;
use std::net::IpAddr;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{has_control_chars, ValidationErrors};

/// Declares [`Parameter`] from the one list of parameters, so that its
/// variants, [`Parameter::ALL`] and [`Parameter::name`] cannot disagree.
macro_rules! parameters {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// One parameter of a container, as the seed API names it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Parameter {
            $($(#[$doc])* $variant,)*
        }

        impl Parameter {
            /// Every parameter, in the order the seed lists them: the order
            /// of the stored JSON, of the API's answers and of the forms.
            pub const ALL: [Parameter; [$($name),*].len()] = [$(Parameter::$variant),*];

            /// The name the API, the stored JSON and the console's form
            /// fields use.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Parameter::$variant => $name,)*
                }
            }
        }
    };
}

parameters! {
    /// RFC 1123 host name, set inside the container.
    Hostname = "hostname",
    /// CPU quota, a whole number of CPUs.
    Cpus = "cpus",
    /// Memory limit, in `memsize_units`.
    Memsize = "memsize",
    MemsizeUnits = "memsize_units",
    /// Interface addresses, a comma list with optional /prefix.
    Ipadd = "ipadd",
    /// Disk size, in `size_units`.
    Size = "size",
    SizeUnits = "size_units",
    /// Resolvers for `/etc/resolv.conf`, a comma list.
    Nameserver = "nameserver",
}

/// The parameter names, in the seed's order, for messages that list them.
pub const PARAMETER_NAMES: [&str; Parameter::ALL.len()] = {
    let mut names = [""; Parameter::ALL.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = Parameter::ALL[i].name();
        i += 1;
    }
    names
};

impl Parameter {
    /// The parameter the API calls `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Parameter> {
        Parameter::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The field a validation error about it names, nested as in the API's
    /// JSON.
    pub fn field(self) -> String {
        format!("parameters.{}", self.name())
    }

    /// Whether it may arrive as a JSON number as well as a string.
    fn numeric(self) -> bool {
        matches!(self, Parameter::Cpus | Parameter::Memsize | Parameter::Size)
    }

    /// Its place in `ALL`, and in `Parameters`: the macro declares the
    /// variants in `ALL`'s order.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The parameters as stored and shown: every value a string, as in the seed
/// (`"cpus": "2"`), whether it arrived as a string or a JSON number. As JSON,
/// an object of the ones that are set, in the seed's order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parameters([Option<String>; Parameter::ALL.len()]);

/// Smallest memory limit and disk berth accepts: below this a system
/// container cannot even run its init.
pub const MIN_MEMORY_BYTES: u64 = 16 << 20;
pub const MIN_DISK_BYTES: u64 = 16 << 20;
/// resolv.conf reads at most this many `nameserver` lines (glibc's MAXNS).
pub const MAX_NAMESERVERS: usize = 3;
/// The kernel's limit on a UTS host name.
pub const MAX_HOSTNAME_LEN: usize = 64;

/// A change to the stored parameters: each named one set to a value or,
/// with JSON `null`, removed (JSON merge-patch semantics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParameterPatch(Vec<(Parameter, Option<String>)>);

impl ParameterPatch {
    /// Reads a JSON object of parameters. Unknown names and values of the
    /// wrong JSON type are errors, never ignored.
    pub fn from_json(value: &Value) -> Result<Self, ValidationErrors> {
        let Value::Object(map) = value else {
            let mut errors = ValidationErrors::default();
            errors.push("parameters", "must be a JSON object");
            return Err(errors);
        };
        let mut errors = ValidationErrors::default();
        let mut changes = Vec::with_capacity(map.len());
        for (key, value) in map {
            let Some(parameter) = Parameter::from_name(key) else {
                errors.push(
                    format!("parameters.{key}"),
                    format!("unknown parameter; known: {}", PARAMETER_NAMES.join(", ")),
                );
                continue;
            };
            match value {
                Value::Null => changes.push((parameter, None)),
                Value::String(text) => changes.push((parameter, Some(text.clone()))),
                Value::Number(number) if parameter.numeric() => {
                    changes.push((parameter, Some(number.to_string())))
                }
                _ if parameter.numeric() => {
                    errors.push(parameter.field(), "must be a string or a number")
                }
                _ => errors.push(parameter.field(), "must be a string"),
            }
        }
        errors.into_result(ParameterPatch(changes))
    }

    /// Whether this change gives `parameter` a value (rather than leaving it
    /// alone or removing it).
    pub fn sets(&self, parameter: Parameter) -> bool {
        self.0.iter().any(|(p, v)| *p == parameter && v.is_some())
    }
}

impl Parameters {
    /// The value of `parameter`, if it is set.
    pub fn get(&self, parameter: Parameter) -> Option<&str> {
        self.0[parameter.index()].as_deref()
    }

    /// Sets `parameter` to `value`, or unsets it with `None`.
    pub fn set(&mut self, parameter: Parameter, value: Option<String>) {
        self.0[parameter.index()] = value;
    }

    /// These parameters with `patch` applied on top.
    pub fn merged(&self, patch: &ParameterPatch) -> Parameters {
        let mut merged = self.clone();
        for (parameter, value) in &patch.0 {
            merged.set(*parameter, value.clone());
        }
        merged
    }

    /// Takes back a change from `before` to `after` where these parameters
    /// still hold what the change set; values changed since are kept.
    pub fn undone(&self, before: &Parameters, after: &Parameters) -> Parameters {
        let mut restored = self.clone();
        for parameter in Parameter::ALL {
            let (was, set) = (before.get(parameter), after.get(parameter));
            if restored.get(parameter) == set && set != was {
                restored.set(parameter, was.map(str::to_owned));
            }
        }
        restored
    }

    /// The rules every stored value meets on any host, as settings the
    /// driver applies. A job reads the stored parameters through this: what
    /// the host offers today is checked only when a request sets a value.
    pub fn settings(&self) -> Result<ContainerSettings, ValidationErrors> {
        self.check(None)
    }

    /// Checks a request: every parameter and the ones that only make sense
    /// together, and the values `request` sets against what `host` offers
    /// (values it leaves alone were checked when they were set; a host that
    /// since shrank must not block changes to the others). Collects all
    /// problems rather than stopping at the first.
    pub fn validate(
        &self,
        request: &ParameterPatch,
        host: &HostLimits,
    ) -> Result<ContainerSettings, ValidationErrors> {
        self.check(Some((request, host)))
    }

    fn check(
        &self,
        request: Option<(&ParameterPatch, &HostLimits)>,
    ) -> Result<ContainerSettings, ValidationErrors> {
        use Parameter::*;
        // The host's bound on each value, where the request sets it.
        let bound = |parameters: &[Parameter], limit: fn(&HostLimits) -> Option<u64>| {
            request
                .filter(|(patch, _)| parameters.iter().any(|p| patch.sets(*p)))
                .and_then(|(_, host)| limit(host))
        };
        let mut errors = ValidationErrors::default();
        let mut settings = ContainerSettings::default();

        for (name, value) in self.entries() {
            if has_control_chars(value) {
                errors.push(
                    format!("parameters.{name}"),
                    "must not contain control characters",
                );
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }

        if let Some(hostname) = self.get(Hostname) {
            match check_hostname(hostname) {
                Ok(()) => settings.hostname = Some(hostname.to_owned()),
                Err(why) => errors.push(Hostname.field(), why),
            }
        }
        if let Some(cpus) = self.get(Cpus) {
            let most = bound(&[Cpus], |host| Some(u64::from(host.cpus)));
            match cpus.parse::<u32>() {
                // A sign is refused here as for memsize and size.
                Ok(n)
                    if n >= 1
                        && most.map_or(true, |most| u64::from(n) <= most)
                        && !cpus.starts_with('+') =>
                {
                    settings.cpus = Some(n)
                }
                _ => errors.push(
                    Cpus.field(),
                    match most {
                        Some(most) => {
                            format!("must be a whole number from 1 to {most} (this host's CPUs)")
                        }
                        None => "must be a whole number, at least 1".into(),
                    },
                ),
            }
        }
        settings.memory_bytes = self.sized(&mut errors, Memsize, MemsizeUnits, MIN_MEMORY_BYTES);
        if let (Some(bytes), Some(memory)) = (
            settings.memory_bytes,
            bound(&[Memsize, MemsizeUnits], |host| host.memory_bytes),
        ) {
            if bytes > memory {
                errors.push(
                    Memsize.field(),
                    format!(
                        "must be at most this host's memory ({} MiB): a limit above it limits nothing",
                        memory >> 20
                    ),
                );
            }
        }
        settings.disk_bytes = self.sized(&mut errors, Size, SizeUnits, MIN_DISK_BYTES);
        if let (Some(bytes), Some(file_system)) = (
            settings.disk_bytes,
            bound(&[Size, SizeUnits], |host| host.disk_bytes),
        ) {
            if bytes > file_system {
                errors.push(
                    Size.field(),
                    format!(
                        "is larger than the file system that would hold the disk ({} MiB); \
                         choose a smaller size, or let the operator allow thin provisioning \
                         with allow_disk_overcommit = true (BERTH_ALLOW_DISK_OVERCOMMIT)",
                        file_system >> 20
                    ),
                );
            }
        }
        if let Some(ipadd) = self.get(Ipadd) {
            match parse_addresses(ipadd) {
                Ok(addresses) => settings.addresses = addresses,
                Err(why) => errors.push(Ipadd.field(), why),
            }
        }
        if let Some(nameserver) = self.get(Nameserver) {
            match parse_nameservers(nameserver) {
                Ok(servers) => settings.nameservers = servers,
                Err(why) => errors.push(Nameserver.field(), why),
            }
        }
        errors.into_result(settings)
    }

    /// An amount (`memsize`, `size`) and its `units` companion, as a number
    /// of bytes.
    fn sized(
        &self,
        errors: &mut ValidationErrors,
        amount: Parameter,
        units: Parameter,
        minimum: u64,
    ) -> Option<u64> {
        let multiplier = match self.get(units).map(|u| (u, unit_multiplier(u))) {
            None => None,
            Some((_, Some(m))) => Some(m),
            Some((_, None)) => {
                errors.push(
                    units.field(),
                    "must be one of K, M, G, T (binary multiples)",
                );
                return None;
            }
        };
        let value = self.get(amount)?;
        let Some(multiplier) = multiplier else {
            errors.push(
                units.field(),
                format!("is required with {amount} (K, M, G or T)"),
            );
            return None;
        };
        let number = match value.parse::<u64>() {
            Ok(n) if n > 0 && !value.starts_with('+') => n,
            _ => {
                errors.push(amount.field(), "must be a positive whole number");
                return None;
            }
        };
        match number.checked_mul(multiplier) {
            Some(bytes) if bytes >= minimum => Some(bytes),
            Some(_) => {
                errors.push(
                    amount.field(),
                    format!("must be at least {} MiB", minimum >> 20),
                );
                None
            }
            None => {
                errors.push(amount.field(), "is too large");
                None
            }
        }
    }

    /// The parameters that are set, by name, in the seed's order.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &str)> {
        Parameter::ALL
            .into_iter()
            .filter_map(|p| self.get(p).map(|value| (p.name(), value)))
    }
}

/// As the derived form of a struct with one optional field per parameter
/// would: an object of the parameters that are set, in the seed's order.
impl Serialize for Parameters {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries().count()))?;
        for (name, value) in self.entries() {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// Reads what `serialize` wrote: missing and `null` ones are unset; an
/// unknown or repeated name is an error, as with serde's
/// `deny_unknown_fields`.
impl<'de> Deserialize<'de> for Parameters {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ParametersVisitor;

        impl<'de> Visitor<'de> for ParametersVisitor {
            type Value = Parameters;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("struct Parameters")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parameters, A::Error> {
                let mut parameters = Parameters::default();
                let mut seen = [false; Parameter::ALL.len()];
                while let Some(key) = map.next_key::<String>()? {
                    let Some(parameter) = Parameter::from_name(&key) else {
                        return Err(de::Error::unknown_field(&key, &PARAMETER_NAMES));
                    };
                    if std::mem::replace(&mut seen[parameter.index()], true) {
                        return Err(de::Error::duplicate_field(parameter.name()));
                    }
                    parameters.set(parameter, map.next_value()?);
                }
                Ok(parameters)
            }

            /// Values in the seed's order, as serde reads a struct from an
            /// array; missing ones are unset.
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Parameters, A::Error> {
                let mut parameters = Parameters::default();
                for parameter in Parameter::ALL {
                    match seq.next_element()? {
                        Some(value) => parameters.set(parameter, value),
                        None => break,
                    }
                }
                Ok(parameters)
            }
        }

        deserializer.deserialize_struct("Parameters", &PARAMETER_NAMES, ParametersVisitor)
    }
}

/// What the host offers, for the checks of the values a request sets.
/// Gathered outside the domain (see `driver::host`), passed in as a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    /// The CPUs berth may use: the bound on `cpus`.
    pub cpus: u32,
    /// The host's memory (MemTotal), the bound on `memsize`; `None` when
    /// unknown.
    pub memory_bytes: Option<u64>,
    /// The size of the file system that holds the containers' disks, the
    /// bound on `size`; `None` when the operator allows disk overcommit
    /// (thin provisioning) or it is unknown.
    pub disk_bytes: Option<u64>,
}

/// Validated parameters in the units the driver applies them in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerSettings {
    pub hostname: Option<String>,
    pub cpus: Option<u32>,
    pub memory_bytes: Option<u64>,
    pub disk_bytes: Option<u64>,
    pub addresses: Vec<IpAddress>,
    pub nameservers: Vec<IpAddr>,
}

impl ContainerSettings {
    /// Lowers the CPU quota to the `available` CPUs of a host that has fewer
    /// than the container was given (it lost CPUs since, or berth's share of
    /// them shrank): a quota of more CPUs than exist limits nothing, and
    /// refusing it would block every job of the container, its delete
    /// included. Returns the value asked for when it was lowered.
    pub fn fit_cpus_to(&mut self, available: u32) -> Option<u32> {
        let asked = self.cpus.filter(|&asked| asked > available)?;
        self.cpus = Some(available.max(1));
        Some(asked)
    }
}

/// An interface address with its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpAddress {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl std::fmt::Display for IpAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// RFC 1123 host name (letters, digits and inner hyphens in dot-separated
/// labels of 1–63 characters), no longer than the kernel allows.
fn check_hostname(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.len() > MAX_HOSTNAME_LEN {
        return Err(format!("must be at most {MAX_HOSTNAME_LEN} characters"));
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated label must be 1 to 63 characters".into());
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("may contain only letters, digits, '-' and '.' (RFC 1123)".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("labels must not start or end with '-' (RFC 1123)".into());
        }
    }
    Ok(())
}

fn unit_multiplier(unit: &str) -> Option<u64> {
    match unit {
        "K" => Some(1 << 10),
        "M" => Some(1 << 20),
        "G" => Some(1 << 30),
        "T" => Some(1 << 40),
        _ => None,
    }
}

/// Splits a comma list, allowing spaces around the commas.
fn comma_list(raw: &str) -> Result<Vec<&str>, String> {
    let items: Vec<&str> = raw.split(',').map(str::trim).collect();
    if items.iter().any(|item| item.is_empty()) {
        return Err("must be a comma-separated list without empty items".into());
    }
    Ok(items)
}

fn parse_addresses(raw: &str) -> Result<Vec<IpAddress>, String> {
    let mut addresses = Vec::new();
    for item in comma_list(raw)? {
        let (addr, prefix) = match item.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (item, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            format!("'{item}' is not an IPv4 or IPv6 address with an optional /prefix")
        })?;
        if addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
            return Err(format!("'{item}' cannot be an interface address"));
        }
        let max = if addr.is_ipv4() { 32 } else { 128 };
        // A bare address is a host address, as OpenVZ's venet treats it.
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if (1..=max).contains(&n) && !p.starts_with('+') => n,
                _ => return Err(format!("'{item}': prefix must be 1 to {max}")),
            },
        };
        if addresses.iter().any(|a: &IpAddress| a.addr == addr) {
            return Err(format!("'{addr}' is listed twice"));
        }
        addresses.push(IpAddress { addr, prefix });
    }
    Ok(addresses)
}

fn parse_nameservers(raw: &str) -> Result<Vec<IpAddr>, String> {
    let items = comma_list(raw)?;
    if items.len() > MAX_NAMESERVERS {
        return Err(format!(
            "at most {MAX_NAMESERVERS} name servers (resolv.conf reads no more)"
        ));
    }
    items
        .into_iter()
        .map(|item| {
            item.parse::<IpAddr>()
                .map_err(|_| format!("'{item}' is not an IPv4 or IPv6 address"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HOST: HostLimits = HostLimits {
        cpus: 4,
        memory_bytes: Some(8 << 30),
        disk_bytes: Some(100 << 30),
    };

    /// Checks `params` as a create does: the request sets every value.
    fn as_created(params: &Parameters) -> Result<ContainerSettings, ValidationErrors> {
        let request = ParameterPatch(
            Parameter::ALL
                .into_iter()
                .filter_map(|p| params.get(p).map(|v| (p, Some(v.to_owned()))))
                .collect(),
        );
        params.validate(&request, &HOST)
    }

    fn patch(value: Value) -> ParameterPatch {
        ParameterPatch::from_json(&value).expect("valid patch")
    }

    fn errors_of(params: &Parameters) -> Vec<String> {
        as_created(params)
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn every_parameter_is_found_by_its_name_and_nothing_else_is() {
        for (i, parameter) in Parameter::ALL.into_iter().enumerate() {
            assert_eq!(Parameter::from_name(parameter.name()), Some(parameter));
            assert_eq!(parameter.index(), i, "{parameter}");
            assert_eq!(PARAMETER_NAMES[i], parameter.name());
            assert_eq!(parameter.field(), format!("parameters.{parameter}"));
        }
        for other in ["", "cpu", "CPUS", "Hostname", "parameters.cpus", "name"] {
            assert_eq!(Parameter::from_name(other), None, "{other}");
        }
    }

    /// The body of the seed's PATCH example, byte for byte.
    const SEED_PATCH: &str = "{\n    \"parameters\":\n \t{\n                \"hostname\": \"hostname1\",\n\t\t\"cpus\": \"2\",\n\t\t\"memsize\": \"1\",\n\t\t\"memsize_units\": \"G\",\n\t\t\"ipadd\": \"10.0.0.1\",\n\t\t\"size\": \"10\",\n\t\t\"size_units\": \"G\",\n\t\t\"nameserver\": \"1.1.1.1,8.8.8.8\"\n\t}\n}";

    #[test]
    fn the_list_is_the_seeds_in_its_order() {
        let body: Value = serde_json::from_str(SEED_PATCH).unwrap();
        let seed = &body["parameters"];
        let names: Vec<&str> = seed
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names, PARAMETER_NAMES);
        // Stored and shown again with the seed's names, order and strings.
        let stored = Parameters::default().merged(&patch(seed.clone()));
        assert_eq!(
            serde_json::to_string(&stored).unwrap(),
            r#"{"hostname":"hostname1","cpus":"2","memsize":"1","memsize_units":"G","ipadd":"10.0.0.1","size":"10","size_units":"G","nameserver":"1.1.1.1,8.8.8.8"}"#
        );
    }

    /// The struct `Parameters` was before it became one list, with serde's
    /// derive: what rows and job payloads already stored were written by.
    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Derived {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hostname: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cpus: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        memsize: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        memsize_units: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ipadd: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size_units: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nameserver: Option<String>,
    }

    #[test]
    fn json_is_as_the_derived_struct_wrote_and_read_it() {
        // Every combination of set and unset parameters.
        for set in 0..1u32 << Parameter::ALL.len() {
            let mut parameters = Parameters::default();
            let mut object = serde_json::Map::new();
            for (i, parameter) in Parameter::ALL.into_iter().enumerate() {
                if set & (1 << i) != 0 {
                    let value = format!("v{i}");
                    parameters.set(parameter, Some(value.clone()));
                    object.insert(parameter.name().to_owned(), Value::String(value));
                }
            }
            let derived: Derived = serde_json::from_value(Value::Object(object)).unwrap();
            let json = serde_json::to_string(&derived).unwrap();
            assert_eq!(serde_json::to_string(&parameters).unwrap(), json);
            assert_eq!(
                serde_json::from_str::<Parameters>(&json).unwrap(),
                parameters
            );
        }
        for json in [
            r#"{}"#,
            r#"{"cpus":null,"hostname":"h"}"#,
            r#"{"cpus":"1","cpu":"2"}"#,
            r#"{"cpus":"1","cpus":"2"}"#,
            r#"{"cpus":2}"#,
            r#"[]"#,
            r#"["h",null,"1"]"#,
            r#"["1","2","3","4","5","6","7","8","9"]"#,
            r#"[1]"#,
            r#"null"#,
        ] {
            let ours = serde_json::from_str::<Parameters>(json).map_err(|e| e.to_string());
            let derived = serde_json::from_str::<Derived>(json)
                .map_err(|e| e.to_string().replace("struct Derived", "struct Parameters"));
            match (&ours, &derived) {
                (Ok(ours), Ok(derived)) => assert_eq!(
                    serde_json::to_string(ours).unwrap(),
                    serde_json::to_string(derived).unwrap(),
                    "{json}"
                ),
                (Err(ours), Err(derived)) => assert_eq!(ours, derived, "{json}"),
                _ => panic!("{json}: {ours:?} but the derive gave {derived:?}"),
            }
        }
    }

    #[test]
    fn the_seed_example_is_valid() {
        let params = Parameters::default().merged(&patch(json!({
            "hostname": "hostname1", "cpus": "2", "memsize": "1", "memsize_units": "G",
            "ipadd": "10.0.0.1", "size": "10", "size_units": "G", "nameserver": "1.1.1.1,8.8.8.8"
        })));
        let settings = as_created(&params).unwrap();
        assert_eq!(settings.hostname.as_deref(), Some("hostname1"));
        assert_eq!(settings.cpus, Some(2));
        assert_eq!(settings.memory_bytes, Some(1 << 30));
        assert_eq!(settings.disk_bytes, Some(10 << 30));
        assert_eq!(
            settings.addresses,
            vec![IpAddress {
                addr: "10.0.0.1".parse().unwrap(),
                prefix: 32
            }]
        );
        assert_eq!(settings.nameservers.len(), 2);
    }

    #[test]
    fn numbers_are_stored_as_strings() {
        let params = Parameters::default().merged(&patch(
            json!({"cpus": 2, "memsize": 512, "memsize_units": "M"}),
        ));
        assert_eq!(params.get(Parameter::Cpus), Some("2"));
        assert_eq!(params.get(Parameter::Memsize), Some("512"));
        assert_eq!(
            serde_json::to_value(&params).unwrap(),
            json!({"cpus": "2", "memsize": "512", "memsize_units": "M"})
        );
    }

    #[test]
    fn merge_keeps_what_the_patch_does_not_name_and_null_removes() {
        let stored = Parameters::default().merged(&patch(json!({"hostname": "a", "cpus": "1"})));
        let merged = stored.merged(&patch(json!({"cpus": "2", "hostname": null})));
        assert_eq!(merged.get(Parameter::Hostname), None);
        assert_eq!(merged.get(Parameter::Cpus), Some("2"));
    }

    #[test]
    fn undoing_a_change_keeps_what_changed_since() {
        let before = Parameters::default()
            .merged(&patch(json!({"size": "1", "size_units": "G", "cpus": "1"})));
        let after = before.merged(&patch(json!({"size": "2", "cpus": "2"})));
        let since = after.merged(&patch(json!({"cpus": "1", "hostname": "h"})));
        let undone = since.undone(&before, &after);
        assert_eq!(undone.get(Parameter::Size), Some("1"));
        assert_eq!(undone.get(Parameter::Cpus), Some("1"));
        assert_eq!(undone.get(Parameter::Hostname), Some("h"));
        let added = before.merged(&patch(json!({"memsize": "64", "memsize_units": "M"})));
        assert_eq!(added.undone(&before, &added), before);
    }

    #[test]
    fn unknown_names_and_wrong_types_are_rejected() {
        let err = ParameterPatch::from_json(&json!({"cpu": "2", "hostname": 5, "cpus": true}))
            .unwrap_err();
        // Errors follow the order of the request's keys (serde_json keeps
        // it with `preserve_order`).
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec!["parameters.cpu", "parameters.hostname", "parameters.cpus"]
        );
        assert!(ParameterPatch::from_json(&json!(["cpus"])).is_err());
    }

    #[test]
    fn hostnames_follow_rfc_1123() {
        for good in ["a", "web-1", "a.example.com", "1host"] {
            assert!(check_hostname(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "a..b",
            "a_b",
            "a b",
            "é",
            &"a".repeat(65),
            "a.",
            ".a",
        ] {
            assert!(check_hostname(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn control_characters_are_rejected_in_every_field() {
        for name in PARAMETER_NAMES {
            let params = Parameters::default()
                .merged(&patch(json!({ name: "1\nlxc.hook.pre-start = /bin/evil" })));
            assert_eq!(
                errors_of(&params),
                vec![format!("parameters.{name}")],
                "{name}"
            );
        }
    }

    #[test]
    fn cpus_is_bounded_by_the_host() {
        for bad in ["0", "5", "-1", "+2", "1.5", "two", ""] {
            let params = Parameters::default().merged(&patch(json!({ "cpus": bad })));
            assert_eq!(errors_of(&params), vec!["parameters.cpus"], "{bad}");
        }
    }

    #[test]
    fn sizes_need_units_and_are_binary_multiples() {
        let ok =
            Parameters::default().merged(&patch(json!({"memsize": "64", "memsize_units": "M"})));
        assert_eq!(as_created(&ok).unwrap().memory_bytes, Some(64 << 20));
        let no_units = Parameters::default().merged(&patch(json!({"size": "1"})));
        assert_eq!(errors_of(&no_units), vec!["parameters.size_units"]);
        let bad_units =
            Parameters::default().merged(&patch(json!({"size": "1", "size_units": "g"})));
        assert_eq!(errors_of(&bad_units), vec!["parameters.size_units"]);
        for bad in ["0", "-1", "1.5", "+1", "99999999999999999999"] {
            let params =
                Parameters::default().merged(&patch(json!({"memsize": bad, "memsize_units": "G"})));
            assert_eq!(errors_of(&params), vec!["parameters.memsize"], "{bad}");
        }
        let tiny =
            Parameters::default().merged(&patch(json!({"memsize": "1", "memsize_units": "K"})));
        assert_eq!(errors_of(&tiny), vec!["parameters.memsize"]);
        let overflow =
            Parameters::default().merged(&patch(json!({"size": "99999999", "size_units": "T"})));
        assert_eq!(errors_of(&overflow), vec!["parameters.size"]);
    }

    #[test]
    fn memory_and_disk_are_bounded_by_the_host() {
        let at_most = Parameters::default().merged(&patch(
            json!({"memsize": "8", "memsize_units": "G", "size": "100", "size_units": "G"}),
        ));
        assert!(as_created(&at_most).is_ok());
        let beyond = Parameters::default().merged(&patch(
            json!({"memsize": "9", "memsize_units": "G", "size": "16777215", "size_units": "T"}),
        ));
        assert_eq!(
            errors_of(&beyond),
            vec!["parameters.memsize", "parameters.size"]
        );
        // Thin provisioning: no bound on the disk.
        let thin = HostLimits {
            disk_bytes: None,
            ..HOST
        };
        let big = Parameters::default().merged(&patch(json!({"size": "1", "size_units": "T"})));
        let request = patch(json!({"size": "1", "size_units": "T"}));
        assert!(big.validate(&request, &HOST).is_err());
        assert_eq!(
            big.validate(&request, &thin).unwrap().disk_bytes,
            Some(1 << 40)
        );
    }

    #[test]
    fn only_the_values_a_request_sets_are_checked_against_the_host() {
        // Stored when the host had more CPUs, memory and disk.
        let stored = Parameters::default().merged(&patch(json!({
            "cpus": "8", "memsize": "16", "memsize_units": "G", "size": "1", "size_units": "T"
        })));
        let rename = patch(json!({"hostname": "web"}));
        let settings = stored.merged(&rename).validate(&rename, &HOST).unwrap();
        assert_eq!(settings.cpus, Some(8));
        // Units change the amount: they count as setting it.
        for (request, field) in [
            (json!({"cpus": "8"}), "parameters.cpus"),
            (json!({"memsize_units": "G"}), "parameters.memsize"),
            (json!({"size": "2"}), "parameters.size"),
        ] {
            let request = patch(request);
            let errors = stored
                .merged(&request)
                .validate(&request, &HOST)
                .unwrap_err();
            let fields: Vec<_> = errors.0.iter().map(|e| e.field.as_str()).collect();
            assert_eq!(fields, vec![field]);
        }
        // What a job applies: any host, the stored values as they are.
        assert_eq!(stored.settings().unwrap().cpus, Some(8));
        let zero = Parameters::default().merged(&patch(json!({"cpus": "0"})));
        assert!(zero.settings().is_err());
    }

    #[test]
    fn cpus_beyond_the_host_are_lowered_to_what_it_has() {
        let mut settings = ContainerSettings {
            cpus: Some(8),
            ..Default::default()
        };
        assert_eq!(settings.fit_cpus_to(2), Some(8));
        assert_eq!(settings.cpus, Some(2));
        assert_eq!(settings.fit_cpus_to(2), None);
        assert_eq!(settings.fit_cpus_to(4), None);
        assert_eq!(settings.cpus, Some(2));
        let mut unlimited = ContainerSettings::default();
        assert_eq!(unlimited.fit_cpus_to(1), None);
        assert_eq!(unlimited.cpus, None);
    }

    #[test]
    fn addresses_take_v4_v6_prefixes_and_lists() {
        let params = Parameters::default().merged(&patch(
            json!({"ipadd": "10.0.0.1/24, fd00::1/64,192.168.1.2"}),
        ));
        let settings = as_created(&params).unwrap();
        let shown: Vec<String> = settings.addresses.iter().map(ToString::to_string).collect();
        assert_eq!(shown, vec!["10.0.0.1/24", "fd00::1/64", "192.168.1.2/32"]);
        for bad in [
            "10.0.0.1/33",
            "10.0.0.1/0",
            "fd00::1/129",
            "10.0.0",
            "10.0.0.1,",
            "0.0.0.0",
            "10.0.0.1,10.0.0.1",
            "x",
        ] {
            let params = Parameters::default().merged(&patch(json!({ "ipadd": bad })));
            assert_eq!(errors_of(&params), vec!["parameters.ipadd"], "{bad}");
        }
    }

    #[test]
    fn at_most_three_nameservers() {
        let ok = Parameters::default().merged(&patch(
            json!({"nameserver": "1.1.1.1,2606:4700::1111,8.8.8.8"}),
        ));
        assert_eq!(as_created(&ok).unwrap().nameservers.len(), 3);
        for bad in [
            "1.1.1.1,1.0.0.1,8.8.8.8,8.8.4.4",
            "dns.example",
            "1.1.1.1/32",
        ] {
            let params = Parameters::default().merged(&patch(json!({ "nameserver": bad })));
            assert_eq!(errors_of(&params), vec!["parameters.nameserver"], "{bad}");
        }
    }
}
