//! Each parameter's real effect inside a real container: set at create, by
//! PATCH on a stopped container, and by PATCH on a running one (live where
//! the kernel allows, otherwise at the next start, as the job's log says).

mod common;

use std::collections::BTreeSet;

use common::{cgroup_v2, host_cpus, unique_name, Berth};
use serde_json::{json, Value};

const MIB: u64 = 1 << 20;

/// Addresses no other test uses, so that IPv6 duplicate address detection
/// on the shared test bridge never marks one as failed.
struct TestNet {
    v4: String,
    v6: String,
}

impl TestNet {
    fn new() -> TestNet {
        let bytes = *uuid::Uuid::new_v4().as_bytes();
        TestNet {
            v4: format!("10.{}.{}", bytes[0], bytes[1]),
            v6: format!(
                "fd{:02x}:{:02x}{:02x}:{:02x}{:02x}:",
                bytes[2], bytes[3], bytes[4], bytes[5], bytes[6]
            ),
        }
    }

    fn v4(&self, host: u8) -> String {
        format!("{}.{host}", self.v4)
    }

    /// In the canonical form `ip` prints (no leading zeros in a group).
    fn v6(&self, host: u8) -> String {
        let address: std::net::Ipv6Addr = format!("{}:{host:x}", self.v6).parse().unwrap();
        address.to_string()
    }
}

/// The addresses of global scope on the container's eth0, as `addr/prefix`.
fn eth0_addresses(berth: &Berth, name: &str) -> BTreeSet<String> {
    let shown = berth.attach(name, "ip -o addr show dev eth0");
    shown
        .lines()
        .filter(|line| line.contains("scope global"))
        .map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6");
            words.next().expect("an address after inet").to_owned()
        })
        .collect()
}

fn set_of(items: &[String]) -> BTreeSet<String> {
    items.iter().cloned().collect()
}

/// The `nameserver` lines of the container's /etc/resolv.conf.
fn nameservers(berth: &Berth, name: &str) -> Vec<String> {
    berth
        .attach(name, "cat /etc/resolv.conf")
        .lines()
        .filter_map(|line| line.strip_prefix("nameserver "))
        .map(|server| server.trim().to_owned())
        .collect()
}

fn assert_hostname(berth: &Berth, name: &str, hostname: &str) {
    assert_eq!(berth.attach(name, "hostname").trim(), hostname, "UTS name");
    assert_eq!(
        berth.attach(name, "cat /etc/hostname").trim(),
        hostname,
        "/etc/hostname"
    );
}

/// The CPU quota in force, in CPUs (`None`: no quota).
fn cpu_quota(berth: &Berth, name: &str) -> Option<u64> {
    if cgroup_v2() {
        let max = berth.cgroup(name, "cpu.max");
        let (quota, period) = max.split_once(' ').expect("cpu.max is 'quota period'");
        assert_eq!(period, "100000", "cpu.max: {max}");
        quota.parse::<u64>().ok().map(|q| {
            assert_eq!(q % 100_000, 0, "cpu.max: {max}");
            q / 100_000
        })
    } else {
        assert_eq!(berth.cgroup(name, "cpu.cfs_period_us"), "100000");
        let quota = berth.cgroup(name, "cpu.cfs_quota_us");
        match quota.as_str() {
            "-1" => None,
            q => {
                let q: u64 = q.parse().unwrap();
                assert_eq!(q % 100_000, 0, "cpu.cfs_quota_us: {q}");
                Some(q / 100_000)
            }
        }
    }
}

/// The memory limit in force, in bytes (`None`: unlimited).
fn memory_limit(berth: &Berth, name: &str) -> Option<u64> {
    if cgroup_v2() {
        berth.cgroup(name, "memory.max").parse().ok()
    } else {
        let limit: u64 = berth.cgroup(name, "memory.limit_in_bytes").parse().unwrap();
        // cgroup v1 shows "no limit" as the largest page-aligned i64.
        (limit < 1 << 62).then_some(limit)
    }
}

/// The size of the container's root file system as `df` shows it.
fn root_fs_bytes(berth: &Berth, name: &str) -> u64 {
    let df = berth.attach(name, "df -k /");
    let line = df.lines().nth(1).expect("df prints a line for /");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Writes zeros to `path` inside the container until the disk is full and
/// returns how many bytes got written. Panics unless it stopped because the
/// disk was full.
fn fill_disk(berth: &Berth, name: &str, path: &str) -> u64 {
    let output = berth.attach(
        name,
        &format!("dd if=/dev/zero of={path} bs=1M 2>&1; sync; echo; wc -c < {path}"),
    );
    assert!(
        output.contains("No space left on device"),
        "dd did not fill the disk: {output}"
    );
    output.lines().last().unwrap().trim().parse().unwrap()
}

fn log_has(log: &[String], text: &str) -> bool {
    log.iter().any(|line| line.contains(text))
}

/// Everything set at create is in force once the container runs.
#[test]
fn parameters_given_at_create_are_in_effect_inside_the_container() {
    let berth = Berth::start();
    let name = unique_name("params");
    let net = TestNet::new();
    let id = berth.create(
        &name,
        Some(json!({
            "hostname": "web-1.example.test",
            "cpus": "1",
            "memsize": "96",
            "memsize_units": "M",
            "ipadd": format!("{}/24, {},{}/64, {}", net.v4(2), net.v4(3), net.v6(2), net.v6(3)),
            "nameserver": "192.0.2.53, 2001:db8::53",
            "size": "48",
            "size_units": "M",
        })),
    );
    assert_eq!(
        berth.container(&id)["parameters"]["ipadd"],
        format!(
            "{}/24, {},{}/64, {}",
            net.v4(2),
            net.v4(3),
            net.v6(2),
            net.v6(3)
        )
    );
    let config = berth.lxc_config(&name);
    assert!(
        config.contains("rootfs.img"),
        "a disk image backs the rootfs: {config}"
    );
    berth.act(&id, "start");

    assert_hostname(&berth, &name, "web-1.example.test");
    assert_eq!(cpu_quota(&berth, &name), Some(1));
    assert_eq!(memory_limit(&berth, &name), Some(96 * MIB));
    // A bare IPv4 address is a /32, a bare IPv6 address a /128.
    assert_eq!(
        eth0_addresses(&berth, &name),
        set_of(&[
            format!("{}/24", net.v4(2)),
            format!("{}/32", net.v4(3)),
            format!("{}/64", net.v6(2)),
            format!("{}/128", net.v6(3)),
        ])
    );
    assert_eq!(nameservers(&berth, &name), ["192.0.2.53", "2001:db8::53"]);

    let disk = root_fs_bytes(&berth, &name);
    assert!(disk <= 48 * MIB && disk > 32 * MIB, "df shows {disk} bytes");
    let written = fill_disk(&berth, &name, "/fill");
    assert!(
        written < 48 * MIB && written > 24 * MIB,
        "wrote {written} bytes on a 48 MiB disk"
    );
}

/// PATCH on a stopped container: the job says everything waits for the
/// next start, and at that start everything is in force. Numbers may come
/// as JSON numbers.
#[test]
fn parameters_patched_on_a_stopped_container_apply_at_its_next_start() {
    let berth = Berth::start();
    let name = unique_name("patch-stopped");
    let net = TestNet::new();
    let id = berth.create(&name, None);
    assert_eq!(berth.container(&id)["parameters"], Value::Null);
    assert!(berth.lxc_path().join(&name).join("rootfs").is_dir());

    let cpus = host_cpus().min(2);
    let job = berth.patch_parameters(
        &id,
        json!({
            "hostname": "patched",
            "cpus": cpus,
            "memsize": 80,
            "memsize_units": "M",
            "ipadd": format!("{}/16,{}/48", net.v4(9), net.v6(9)),
            "nameserver": "198.51.100.1",
            "size": 40,
            "size_units": "M",
        }),
    );
    berth.job_done(&job);
    let log = berth.job_log(&job);
    assert!(
        log_has(&log, "every parameter takes effect at its next start"),
        "{log:?}"
    );
    let container = berth.container(&id);
    assert_eq!(container["status"], "stopped");
    assert_eq!(container["parameters"]["cpus"], cpus.to_string());
    assert_eq!(container["parameters"]["size"], "40");
    // The directory root file system moved onto a disk of that size.
    let dir = berth.lxc_path().join(&name);
    assert!(!dir.join("rootfs").exists());
    assert_eq!(
        std::fs::metadata(dir.join("rootfs.img")).unwrap().len(),
        40 * MIB
    );
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("STOPPED"));

    berth.act(&id, "start");
    assert_hostname(&berth, &name, "patched");
    assert_eq!(cpu_quota(&berth, &name), Some(u64::from(cpus)));
    assert_eq!(memory_limit(&berth, &name), Some(80 * MIB));
    assert_eq!(
        eth0_addresses(&berth, &name),
        set_of(&[format!("{}/16", net.v4(9)), format!("{}/48", net.v6(9))])
    );
    assert_eq!(nameservers(&berth, &name), ["198.51.100.1"]);
    let written = fill_disk(&berth, &name, "/fill");
    assert!(
        written < 40 * MIB && written > 20 * MIB,
        "wrote {written} bytes on a 40 MiB disk"
    );
}

/// PATCH on a running container: cgroup limits, hostname, addresses and
/// (already set) name servers change at once; the disk waits for the next
/// start, and the job's log says which is which.
#[test]
fn parameters_patched_on_a_running_container_apply_live_where_they_can() {
    let berth = Berth::start();
    let name = unique_name("patch-live");
    let net = TestNet::new();
    let id = berth.create(
        &name,
        Some(json!({
            "hostname": "before",
            "cpus": "1",
            "memsize": "64",
            "memsize_units": "M",
            "ipadd": format!("{},{}", net.v4(2), net.v6(2)),
            "nameserver": "192.0.2.1",
            "size": "32",
            "size_units": "M",
        })),
    );
    berth.act(&id, "start");
    assert_hostname(&berth, &name, "before");
    let small_disk = root_fs_bytes(&berth, &name);

    let cpus = host_cpus().min(2);
    let job = berth.patch_parameters(
        &id,
        json!({
            "hostname": "after",
            "cpus": cpus.to_string(),
            "memsize": "128",
            "ipadd": format!("{}/24,{}/64", net.v4(7), net.v6(7)),
            "nameserver": "192.0.2.2,192.0.2.3",
            "size": "64",
        }),
    );
    berth.job_done(&job);
    let log = berth.job_log(&job);
    for line in [
        "cpus, memsize: applied live",
        "hostname: applied live",
        "ipadd: applied live to eth0",
        "nameserver: applied live to /etc/resolv.conf",
        "size: applies at the next start",
    ] {
        assert!(log_has(&log, line), "no {line:?} in {log:?}");
    }
    assert_eq!(berth.container(&id)["status"], "running");
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));

    // In force without a restart.
    assert_hostname(&berth, &name, "after");
    assert_eq!(cpu_quota(&berth, &name), Some(u64::from(cpus)));
    assert_eq!(memory_limit(&berth, &name), Some(128 * MIB));
    assert_eq!(
        eth0_addresses(&berth, &name),
        set_of(&[format!("{}/24", net.v4(7)), format!("{}/64", net.v6(7))])
    );
    assert_eq!(nameservers(&berth, &name), ["192.0.2.2", "192.0.2.3"]);
    // The disk is resized only while the container is stopped.
    assert_eq!(root_fs_bytes(&berth, &name), small_disk);

    berth.act(&id, "restart");
    assert_eq!(berth.container(&id)["status"], "running");
    assert_hostname(&berth, &name, "after");
    assert_eq!(memory_limit(&berth, &name), Some(128 * MIB));
    let big_disk = root_fs_bytes(&berth, &name);
    assert!(
        big_disk > 48 * MIB && big_disk <= 64 * MIB,
        "df shows {big_disk} bytes after growing to 64 MiB"
    );
    let written = fill_disk(&berth, &name, "/fill");
    assert!(
        written > 32 * MIB && written < 64 * MIB,
        "wrote {written} bytes on a disk grown from 32 to 64 MiB"
    );
    berth.attach(&name, "rm /fill");

    // Lifting the limits is live too.
    let job = berth.patch_parameters(
        &id,
        json!({ "cpus": null, "memsize": null, "memsize_units": null }),
    );
    berth.job_done(&job);
    assert_eq!(cpu_quota(&berth, &name), None);
    assert_eq!(memory_limit(&berth, &name), None);
    let parameters = berth.container(&id)["parameters"].clone();
    assert!(
        parameters.get("cpus").is_none() && parameters.get("memsize").is_none(),
        "{parameters}"
    );
}

/// Name servers set for the first time on a running container take a bind
/// mount that only a start makes, and a first disk size needs the container
/// stopped: the job says both wait, and the next start does them.
#[test]
fn nameserver_and_disk_first_set_on_a_running_container_wait_for_the_next_start() {
    let berth = Berth::start();
    let name = unique_name("ns-later");
    let id = berth.create(&name, None);
    berth.act(&id, "start");
    assert_eq!(nameservers(&berth, &name), Vec::<String>::new());

    // A first disk size also waits: the directory root file system moves
    // onto a disk image while the container is stopped.
    let job = berth.patch_parameters(
        &id,
        json!({ "nameserver": "203.0.113.7", "size": "40", "size_units": "M" }),
    );
    berth.job_done(&job);
    let log = berth.job_log(&job);
    for line in [
        "nameserver: applies at the next start",
        "size: applies at the next start",
    ] {
        assert!(log_has(&log, line), "no {line:?} in {log:?}");
    }
    assert_eq!(nameservers(&berth, &name), Vec::<String>::new());
    let dir = berth.lxc_path().join(&name);
    assert!(dir.join("rootfs").is_dir() && !dir.join("rootfs.img").exists());

    berth.act(&id, "restart");
    assert_eq!(nameservers(&berth, &name), ["203.0.113.7"]);
    assert!(!dir.join("rootfs").exists());
    assert_eq!(
        std::fs::metadata(dir.join("rootfs.img")).unwrap().len(),
        40 * MIB
    );
    let disk = root_fs_bytes(&berth, &name);
    assert!(disk > 24 * MIB && disk <= 40 * MIB, "df shows {disk} bytes");
    // The hostname defaults to the container's name.
    assert_hostname(&berth, &name, &name);
}

/// A disk really stops at its size; it grows on PATCH; shrinking below what
/// is stored on it is refused with a clear job error and the stored size is
/// put back, while shrinking to a size that still fits works.
#[test]
fn the_disk_stops_at_its_size_grows_and_refuses_to_shrink_below_use() {
    let berth = Berth::start();
    let name = unique_name("disk");
    let id = berth.create(&name, Some(json!({ "size": "32", "size_units": "M" })));
    berth.act(&id, "start");
    let written = fill_disk(&berth, &name, "/fill");
    assert!(
        written < 32 * MIB && written > 16 * MIB,
        "wrote {written} bytes on a 32 MiB disk"
    );
    berth.attach(
        &name,
        "rm /fill && dd if=/dev/urandom of=/keep bs=1M count=20 2>/dev/null && sync",
    );
    let keep_sum = berth.attach(&name, "md5sum /keep");

    berth.act(&id, "stop");
    let job = berth.patch_parameters(&id, json!({ "size": "64" }));
    berth.job_done(&job);
    assert!(
        log_has(&berth.job_log(&job), "growing the disk to 64 MiB"),
        "{:?}",
        berth.job_log(&job)
    );
    berth.act(&id, "start");
    let written = fill_disk(&berth, &name, "/fill");
    assert!(
        written + 20 * MIB > 32 * MIB && written + 20 * MIB < 64 * MIB,
        "wrote {written} bytes beside 20 MiB on a disk grown to 64 MiB"
    );
    berth.attach(&name, "rm /fill && sync");
    berth.act(&id, "stop");

    // 20 MiB are in use: 24 MiB cannot hold them with ext4's own needs.
    let job = berth.patch_parameters(&id, json!({ "size": "24" }));
    let failed = berth.wait_job(&job);
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("cannot shrink to 24 MiB") && error.contains("choose a larger size"),
        "{error}"
    );
    let container = berth.container(&id);
    assert_eq!(container["parameters"]["size"], "64", "{container}");
    assert_eq!(container["parameters"]["size_units"], "M");
    assert_eq!(container["status"], "stopped");
    let image = berth.lxc_path().join(&name).join("rootfs.img");
    assert_eq!(std::fs::metadata(&image).unwrap().len(), 64 * MIB);

    // A shrink that still fits is carried out.
    let job = berth.patch_parameters(&id, json!({ "size": "48" }));
    berth.job_done(&job);
    assert_eq!(std::fs::metadata(&image).unwrap().len(), 48 * MIB);
    berth.act(&id, "start");
    assert_eq!(berth.attach(&name, "md5sum /keep"), keep_sum);
    let disk = root_fs_bytes(&berth, &name);
    assert!(disk > 32 * MIB && disk <= 48 * MIB, "df shows {disk} bytes");
}

/// A template that does not fit on the disk asked for fails the create with
/// a message that says how much it needs, and leaves nothing behind.
#[test]
fn a_template_larger_than_the_disk_fails_the_create_clearly() {
    let berth = Berth::start();
    berth.install_template("big", common::big_template());
    let name = unique_name("too-small");
    let (id, job) = berth.queue_create(
        &name,
        "big",
        Some(json!({ "size": "100", "size_units": "M" })),
    );
    let failed = berth.wait_job(&job);
    assert_eq!(failed["status"], "failed", "{failed}");
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("the template needs about") && error.contains("size is 100 MiB"),
        "{error}"
    );
    assert_eq!(berth.container(&id)["status"], "failed");
    assert!(!berth.lxc_path().join(&name).exists());
}

/// Removes a network interface when dropped (after the Berth declared
/// later, whose containers use it).
struct InterfaceGuard(String);

impl Drop for InterfaceGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", "dev", &self.0])
            .output();
    }
}

fn ip(args: &[&str]) -> String {
    let output = std::process::Command::new("ip")
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// eth0 is a veth on the bridge the settings name; berth creates the bridge
/// when it is missing, up, with no address of its own (no uplink, no NAT).
#[test]
fn containers_attach_to_the_configured_bridge_which_berth_creates() {
    let bridge = format!("bt{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let _guard = InterfaceGuard(bridge.clone());
    assert!(ip(&["-o", "link", "show", "dev", &bridge]).is_empty());
    let berth = Berth::start_with(common::Options {
        env: vec![("BERTH_BRIDGE".into(), bridge.clone())],
        templates: vec!["template1"],
    });
    let name = unique_name("bridge");
    let net = TestNet::new();
    let id = berth.create(&name, Some(json!({ "ipadd": format!("{}/24", net.v4(5)) })));
    assert!(berth
        .lxc_config(&name)
        .lines()
        .any(|line| line == format!("lxc.net.0.link = {bridge}")));
    berth.act(&id, "start");

    let link = ip(&["-o", "link", "show", "dev", &bridge]);
    assert!(link.contains("UP"), "{link}");
    let ports = ip(&["-o", "link", "show", "master", &bridge]);
    assert_eq!(ports.lines().count(), 1, "one veth on {bridge}: {ports}");
    assert!(
        ip(&["-o", "addr", "show", "dev", &bridge])
            .lines()
            .all(|line| !line.contains(" inet ") && !line.contains("scope global")),
        "the bridge has an address of its own"
    );
    assert_eq!(
        eth0_addresses(&berth, &name),
        set_of(&[format!("{}/24", net.v4(5))])
    );
    let eth0 = berth.attach(&name, "cat /sys/class/net/eth0/iflink");
    let host_end = ip(&["-o", "link", "show", "master", &bridge]);
    assert!(
        host_end.starts_with(&format!("{}:", eth0.trim())),
        "eth0's peer (ifindex {eth0}) is not on {bridge}: {host_end}"
    );
}
