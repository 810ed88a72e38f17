//! Container status follows the host between jobs.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{unique_name, Berth};

#[test]
fn a_container_stopped_behind_berths_back_is_shown_stopped() {
    let berth = Berth::start();
    let name = unique_name("outside");
    let id = berth.create(&name, None);
    berth.act(&id, "start");
    assert_eq!(berth.container(&id)["status"], "running");

    let stopped = Command::new("lxc-stop")
        .arg("-P")
        .arg(berth.lxc_path())
        .args(["-n", &name, "-k"])
        .status()
        .unwrap();
    assert!(stopped.success());

    let deadline = Instant::now() + Duration::from_secs(60);
    while berth.container(&id)["status"] != "stopped" {
        assert!(
            Instant::now() < deadline,
            "status never followed the host: {}",
            berth.container(&id)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    // And back: started from outside, shown running.
    let started = Command::new("lxc-start")
        .arg("-P")
        .arg(berth.lxc_path())
        .args(["-n", &name])
        .status()
        .unwrap();
    assert!(started.success());
    while berth.container(&id)["status"] != "running" {
        assert!(
            Instant::now() < deadline,
            "status never followed the host: {}",
            berth.container(&id)
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
