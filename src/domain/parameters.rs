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

    /// Checks every parameter and the ones that only make sense together,
    /// collecting all problems rather than stopping at the first.
    pub fn validate(&self, host: &HostLimits) -> Result<ContainerSettings, ValidationErrors> {
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
            match cpus.parse::<u32>() {
                // A sign is refused here as for memsize and size.
                Ok(n) if (1..=host.cpus).contains(&n) && !cpus.starts_with('+') => {
                    settings.cpus = Some(n)
                }
                _ => errors.push(
                    "parameters.cpus",
                    format!(
                        "must be a whole number from 1 to {} (this host's CPUs)",
                        host.cpus
                    ),
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
        settings.disk_bytes = sized(
            &mut errors,
            "size",
            &self.size,
            &self.size_units,
            MIN_DISK_BYTES,
        );
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

/// What the host can offer, for the checks that depend on it.
#[derive(Debug, Clone, Copy)]
pub struct HostLimits {
    pub cpus: u32,
}

impl HostLimits {
    pub fn of_this_host() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        HostLimits { cpus }
    }
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

    const HOST: HostLimits = HostLimits { cpus: 4 };

    fn patch(value: Value) -> ParameterPatch {
        ParameterPatch::from_json(&value).expect("valid patch")
    }

    fn errors_of(params: &Parameters) -> Vec<String> {
        params
            .validate(&HOST)
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
        let settings = params.validate(&HOST).unwrap();
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
        assert_eq!(ok.validate(&HOST).unwrap().memory_bytes, Some(64 << 20));
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
    fn addresses_take_v4_v6_prefixes_and_lists() {
        let params = Parameters::default().merged(&patch(
            json!({"ipadd": "10.0.0.1/24, fd00::1/64,192.168.1.2"}),
        ));
        let settings = params.validate(&HOST).unwrap();
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
        assert_eq!(ok.validate(&HOST).unwrap().nameservers.len(), 3);
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
