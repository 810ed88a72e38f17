//! The console's usage graphs in a real Chromium: points appear within
//! seconds of a start, and the CPU graph rises when a process inside the
//! container burns CPU, without a reload; the graphs and the home page's
//! host summary pass axe-core at desktop and phone width.

mod browser;
mod common;

use std::process::Command;

use browser::{serial, Browser, PATIENCE};
use common::{unique_name, Berth};
use tokio::time::{sleep, Duration, Instant};

/// An attribute or text of the element `css`, read afresh (the graphs are
/// replaced as a whole at each sample).
async fn read(b: &Browser, css: &str, attribute: Option<&str>) -> Option<String> {
    let element = b.client.find(fantoccini::Locator::Css(css)).await.ok()?;
    match attribute {
        Some(name) => element.attr(name).await.ok().flatten(),
        None => element.text().await.ok(),
    }
}

async fn points(b: &Browser) -> usize {
    read(b, "[data-usage-chart=cpu]", Some("data-points"))
        .await
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

async fn cpu_percent(b: &Browser) -> Option<f64> {
    read(b, "[data-usage-latest=cpu-cpu]", None)
        .await?
        .trim()
        .strip_suffix('%')?
        .trim()
        .parse()
        .ok()
}

async fn wait_for<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + PATIENCE;
    while !condition().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn graphs_fill_and_follow_a_cpu_burner_live() {
    let _serial = serial();
    let berth = Berth::start_with_env(&[("BERTH_STATS_INTERVAL_SECS", "1")]);
    let name = unique_name("graph");
    let id = berth.create(&name, None);
    berth.act(&id, "start");
    browser::run(async {
        let b = Browser::start().await;
        b.goto(&berth.url(&format!("/containers/{id}"))).await;
        b.mark_document().await;
        wait_for("the CPU graph to show two points", || async {
            points(&b).await >= 2
        })
        .await;
        let before = points(&b).await;
        let idle = cpu_percent(&b).await;
        b.assert_accessible("a container's page with its graphs")
            .await;

        // Burns one CPU inside the container for a bounded time (busybox's
        // timeout ends it even if this test dies first). Idle, the graph
        // reads about 0 %; the bar is low because the machine is shared.
        let mut burner = Command::new("lxc-attach")
            .arg("-P")
            .arg(berth.lxc_path())
            .args([
                "-n",
                &name,
                "--",
                "timeout",
                "60",
                "sh",
                "-c",
                "while :; do :; done",
            ])
            .spawn()
            .unwrap();
        wait_for("the CPU graph to rise above 10 %", || async {
            cpu_percent(&b).await.is_some_and(|p| p > 10.0)
        })
        .await;
        let seen = cpu_percent(&b).await;
        let _ = burner.kill();
        let _ = burner.wait();
        eprintln!("CPU % shown: {idle:?} idle, then {seen:?} while burning");
        assert!(points(&b).await > before);
        b.assert_same_document().await;
        let table = read(&b, ".usage-table tbody tr", None).await;
        assert!(table.is_some(), "the figures are also a table");

        b.assert_no_console_errors().await;
        b.close().await;

        let phone = Browser::start_sized(390, 844).await;
        phone.goto(&berth.url(&format!("/containers/{id}"))).await;
        phone.find("[data-usage-chart=memory] svg").await;
        let fits = phone
            .client
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(fits, serde_json::json!(true), "the graphs fit a phone");
        phone
            .assert_accessible("a container's graphs at phone width")
            .await;
        phone.goto(&berth.url("/")).await;
        // Compared in lower case: the page's CSS capitalises labels.
        let summary = read(&phone, ".host-summary", None)
            .await
            .unwrap()
            .to_lowercase();
        assert!(summary.contains("host cpu"), "{summary}");
        assert!(summary.contains("1 running"), "{summary}");
        phone
            .assert_accessible("the home page's host summary at phone width")
            .await;
        phone.assert_no_console_errors().await;
        phone.close().await;
    });
}
