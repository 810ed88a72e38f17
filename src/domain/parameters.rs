//! Container parameters, spelled as the seed API (and OpenVZ's `prlctl`)
//! spells them: how they arrive, how they are merged and stored, and the
//! rules that turn them into validated values the driver can apply.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{has_control_chars, ValidationErrors};

/// The parameters as stored and shown: every value a string, as in the seed
/// (`"cpus": "2"`), whether it arrived as a string or a JSON number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Parameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memsize: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memsize_units: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipadd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_units: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nameserver: Option<String>,
}

/// The parameter names, in the order the seed lists them.
pub const PARAMETER_NAMES: [&str; 8] = [
    "hostname",
    "cpus",
    "memsize",
    "memsize_units",
    "ipadd",
    "size",
    "size_units",
    "nameserver",
];

/// Parameters that may arrive as JSON numbers as well as strings.
const NUMERIC: [&str; 3] = ["cpus", "memsize", "size"];

/// Smallest memory limit and disk berth accepts: below this a system
/// container cannot even run its init.
pub const MIN_MEMORY_BYTES: u64 = 16 << 20;
pub const MIN_DISK_BYTES: u64 = 16 << 20;
/// resolv.conf reads at most this many `nameserver` lines (glibc's MAXNS).
pub const MAX_NAMESERVERS: usize = 3;
/// The kernel's limit on a UTS host name.
pub const MAX_HOSTNAME_LEN: usize = 64;

/// A change to the stored parameters: each named key set to a value or,
/// with JSON `null`, removed (JSON merge-patch semantics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParameterPatch(Vec<(String, Option<String>)>);

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
            let field = format!("parameters.{key}");
            if !PARAMETER_NAMES.contains(&key.as_str()) {
                errors.push(
                    field,
                    format!("unknown parameter; known: {}", PARAMETER_NAMES.join(", ")),
                );
                continue;
            }
            match value {
                Value::Null => changes.push((key.clone(), None)),
                Value::String(text) => changes.push((key.clone(), Some(text.clone()))),
                Value::Number(number) if NUMERIC.contains(&key.as_str()) => {
                    changes.push((key.clone(), Some(number.to_string())))
                }
                _ if NUMERIC.contains(&key.as_str()) => {
                    errors.push(field, "must be a string or a number")
                }
                _ => errors.push(field, "must be a string"),
            }
        }
        errors.into_result(ParameterPatch(changes))
    }

    /// Whether this change gives `name` a value (rather than leaving it
    /// alone or removing it).
    pub fn sets(&self, name: &str) -> bool {
        self.0.iter().any(|(n, v)| n == name && v.is_some())
    }
}

impl Parameters {
    fn slot(&mut self, name: &str) -> &mut Option<String> {
        match name {
            "hostname" => &mut self.hostname,
            "cpus" => &mut self.cpus,
            "memsize" => &mut self.memsize,
            "memsize_units" => &mut self.memsize_units,
            "ipadd" => &mut self.ipadd,
            "size" => &mut self.size,
            "size_units" => &mut self.size_units,
            "nameserver" => &mut self.nameserver,
            other => unreachable!("ParameterPatch admits only known names, got {other}"),
        }
    }

    /// These parameters with `patch` applied on top.
    pub fn merged(&self, patch: &ParameterPatch) -> Parameters {
        let mut merged = self.clone();
        for (name, value) in &patch.0 {
            *merged.slot(name) = value.clone();
        }
        merged
    }

    /// Takes back a change from `before` to `after` where these parameters
    /// still hold what the change set; values changed since are kept.
    pub fn undone(&self, before: &Parameters, after: &Parameters) -> Parameters {
        let mut restored = self.clone();
        let (mut before, mut after) = (before.clone(), after.clone());
        for name in PARAMETER_NAMES {
            let (was, set) = (before.slot(name).clone(), after.slot(name).clone());
            let slot = restored.slot(name);
            if *slot == set && set != was {
                *slot = was;
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
        // The host's bound on each value, where the request sets it.
        let bound = |names: &[&str], limit: fn(&HostLimits) -> Option<u64>| {
            request
                .filter(|(patch, _)| names.iter().any(|name| patch.sets(name)))
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

        if let Some(hostname) = &self.hostname {
            match check_hostname(hostname) {
                Ok(()) => settings.hostname = Some(hostname.clone()),
                Err(why) => errors.push("parameters.hostname", why),
            }
        }
        if let Some(cpus) = &self.cpus {
            let most = bound(&["cpus"], |host| Some(u64::from(host.cpus)));
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
                    "parameters.cpus",
                    match most {
                        Some(most) => {
                            format!("must be a whole number from 1 to {most} (this host's CPUs)")
                        }
                        None => "must be a whole number, at least 1".into(),
                    },
                ),
            }
        }
        settings.memory_bytes = sized(
            &mut errors,
            "memsize",
            &self.memsize,
            &self.memsize_units,
            MIN_MEMORY_BYTES,
        );
        if let (Some(bytes), Some(memory)) = (
            settings.memory_bytes,
            bound(&["memsize", "memsize_units"], |host| host.memory_bytes),
        ) {
            if bytes > memory {
                errors.push(
                    "parameters.memsize",
                    format!(
                        "must be at most this host's memory ({} MiB): a limit above it limits nothing",
                        memory >> 20
                    ),
                );
            }
        }
        settings.disk_bytes = sized(
            &mut errors,
            "size",
            &self.size,
            &self.size_units,
            MIN_DISK_BYTES,
        );
        if let (Some(bytes), Some(file_system)) = (
            settings.disk_bytes,
            bound(&["size", "size_units"], |host| host.disk_bytes),
        ) {
            if bytes > file_system {
                errors.push(
                    "parameters.size",
                    format!(
                        "is larger than the file system that would hold the disk ({} MiB); \
                         choose a smaller size, or let the operator allow thin provisioning \
                         with allow_disk_overcommit = true (BERTH_ALLOW_DISK_OVERCOMMIT)",
                        file_system >> 20
                    ),
                );
            }
        }
        if let Some(ipadd) = &self.ipadd {
            match parse_addresses(ipadd) {
                Ok(addresses) => settings.addresses = addresses,
                Err(why) => errors.push("parameters.ipadd", why),
            }
        }
        if let Some(nameserver) = &self.nameserver {
            match parse_nameservers(nameserver) {
                Ok(servers) => settings.nameservers = servers,
                Err(why) => errors.push("parameters.nameserver", why),
            }
        }
        errors.into_result(settings)
    }

    /// The parameters that are set, by name, in the seed's order.
    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &String)> {
        [
            &self.hostname,
            &self.cpus,
            &self.memsize,
            &self.memsize_units,
            &self.ipadd,
            &self.size,
            &self.size_units,
            &self.nameserver,
        ]
        .into_iter()
        .zip(PARAMETER_NAMES)
        .filter_map(|(value, name)| value.as_ref().map(|v| (name, v)))
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

/// `memsize`/`size` and their `_units` companion, as a number of bytes.
fn sized(
    errors: &mut ValidationErrors,
    name: &str,
    amount: &Option<String>,
    units: &Option<String>,
    minimum: u64,
) -> Option<u64> {
    let units_name = format!("{name}_units");
    let multiplier = match units.as_deref().map(|u| (u, unit_multiplier(u))) {
        None => None,
        Some((_, Some(m))) => Some(m),
        Some((_, None)) => {
            errors.push(
                format!("parameters.{units_name}"),
                "must be one of K, M, G, T (binary multiples)",
            );
            return None;
        }
    };
    let amount = amount.as_ref()?;
    let Some(multiplier) = multiplier else {
        errors.push(
            format!("parameters.{units_name}"),
            format!("is required with {name} (K, M, G or T)"),
        );
        return None;
    };
    let field = format!("parameters.{name}");
    let number = match amount.parse::<u64>() {
        Ok(n) if n > 0 && !amount.starts_with('+') => n,
        _ => {
            errors.push(field, "must be a positive whole number");
            return None;
        }
    };
    match number.checked_mul(multiplier) {
        Some(bytes) if bytes >= minimum => Some(bytes),
        Some(_) => {
            errors.push(field, format!("must be at least {} MiB", minimum >> 20));
            None
        }
        None => {
            errors.push(field, "is too large");
            None
        }
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
            params
                .entries()
                .map(|(name, value)| (name.to_owned(), Some(value.clone())))
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
        assert_eq!(params.cpus.as_deref(), Some("2"));
        assert_eq!(params.memsize.as_deref(), Some("512"));
        assert_eq!(
            serde_json::to_value(&params).unwrap(),
            json!({"cpus": "2", "memsize": "512", "memsize_units": "M"})
        );
    }

    #[test]
    fn merge_keeps_what_the_patch_does_not_name_and_null_removes() {
        let stored = Parameters::default().merged(&patch(json!({"hostname": "a", "cpus": "1"})));
        let merged = stored.merged(&patch(json!({"cpus": "2", "hostname": null})));
        assert_eq!(merged.hostname, None);
        assert_eq!(merged.cpus.as_deref(), Some("2"));
    }

    #[test]
    fn undoing_a_change_keeps_what_changed_since() {
        let before = Parameters::default()
            .merged(&patch(json!({"size": "1", "size_units": "G", "cpus": "1"})));
        let after = before.merged(&patch(json!({"size": "2", "cpus": "2"})));
        let since = after.merged(&patch(json!({"cpus": "1", "hostname": "h"})));
        let undone = since.undone(&before, &after);
        assert_eq!(undone.size.as_deref(), Some("1"));
        assert_eq!(undone.cpus.as_deref(), Some("1"));
        assert_eq!(undone.hostname.as_deref(), Some("h"));
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
