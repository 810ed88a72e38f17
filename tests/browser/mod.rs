//! A real Chromium (Debian's `chromium` + `chromium-driver`) driven over
//! WebDriver: chromedriver on a free port with a fresh profile, the
//! browser's console log read back so a test fails on any script error,
//! and both processes ended when the test ends, even when it fails.
//! `assert_accessible` runs axe-core (vendored, test-only) on a page.
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// How long a page may take to show what a test waits for. Container jobs
/// on a busy 2-core machine take seconds; this is generous on purpose.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// One browser at a time: each is a few hundred MB and two cores are
/// shared with the containers under test.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// axe-core, vendored from npm (see vendor/axe-core/README.md). Compiled
/// into the test binary so that no test reads it from disk or the network,
/// and berth never serves it.
const AXE_SOURCE: &str = include_str!("vendor/axe-core/axe.min.js");

/// How many elements of each violation a failure names: enough to find
/// the template, few enough that a page-wide contrast failure stays short.
const AXE_TARGETS_SHOWN: usize = 3;

/// The longest a whole browser test may take: a browser that dies can
/// leave a WebDriver call waiting forever; this turns that into a failure.
const TEST_LIMIT: Duration = Duration::from_secs(300);

/// Runs the async part of a test (the WebDriver client is async) on its
/// own runtime, within `TEST_LIMIT`. The test itself stays a plain
/// `#[test]` so that the blocking harness in `common` works as is.
pub fn run<F: std::future::Future<Output = ()>>(test: F) {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(TEST_LIMIT, test)
                .await
                .expect("the browser test did not finish in time");
        });
}

pub struct Browser {
    pub client: Client,
    driver: Child,
    driver_url: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    pub async fn start() -> Browser {
        Browser::start_sized(1280, 900).await
    }

    pub async fn start_sized(width: u32, height: u32) -> Browser {
        Browser::start_with(width, height, &[]).await
    }

    /// A browser with JavaScript switched off, as some operators run it.
    pub async fn start_without_javascript() -> Browser {
        Browser::start_with(1280, 900, &["--blink-settings=scriptEnabled=false"]).await
    }

    async fn start_with(width: u32, height: u32, extra_args: &[&str]) -> Browser {
        let port = free_port();
        let profile = tempfile::Builder::new()
            .prefix("berth-chromium-")
            .tempdir_in("/tmp")
            .unwrap();
        let log = std::fs::File::create(profile.path().join("chromedriver.log")).unwrap();
        // Its own process group, so that the browsers it starts end with it.
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver runs (apt-get install chromium chromium-driver)");
        let driver_url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ]
        .iter()
        .map(|arg| arg.to_string())
        .collect();
        args.push(format!(
            "--user-data-dir={}",
            profile.path().join("profile").display()
        ));
        args.push(format!("--window-size={width},{height}"));
        args.extend(extra_args.iter().map(|arg| arg.to_string()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), json!({ "args": args }));
        capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&driver_url)
            .await
            .expect("a Chromium session starts");
        Browser {
            client,
            driver,
            driver_url,
            http: reqwest::Client::new(),
            _profile: profile,
        }
    }

    /// Makes pages see `prefers-color-scheme: dark` (Chrome DevTools
    /// emulation through chromedriver), so the dark palette is what is
    /// drawn and checked; it lasts for the session.
    pub async fn prefer_dark_colour_scheme(&self) {
        let session = self.client.session_id().await.unwrap().unwrap();
        let answer = self
            .http
            .post(format!(
                "{}/session/{session}/goog/cdp/execute",
                self.driver_url
            ))
            .json(&json!({
                "cmd": "Emulation.setEmulatedMedia",
                "params": { "features": [{ "name": "prefers-color-scheme", "value": "dark" }] }
            }))
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{:?}", answer.text().await);
        let dark = self
            .client
            .execute(
                "return matchMedia('(prefers-color-scheme: dark)').matches;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(dark, json!(true), "the page does not see the dark scheme");
    }

    /// Everything the page wrote to the console since the last call
    /// (chromedriver hands each entry out once), as `LEVEL message`.
    pub async fn console_log(&self) -> Vec<String> {
        let session = self.client.session_id().await.unwrap().unwrap();
        let answer: Value = self
            .http
            .post(format!("{}/session/{session}/se/log", self.driver_url))
            .json(&json!({ "type": "browser" }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["value"]
            .as_array()
            .unwrap_or_else(|| panic!("no browser log: {answer}"))
            .iter()
            .map(|entry| {
                format!(
                    "{} {}",
                    entry["level"].as_str().unwrap_or("?"),
                    entry["message"].as_str().unwrap_or("?")
                )
            })
            .collect()
    }

    /// Console entries at error level: script errors, failed loads, CSP
    /// violations.
    pub async fn console_errors(&self) -> Vec<String> {
        self.console_log()
            .await
            .into_iter()
            .filter(|line| line.starts_with("SEVERE"))
            .collect()
    }

    pub async fn assert_no_console_errors(&self) {
        let errors = self.console_errors().await;
        assert!(
            errors.is_empty(),
            "the browser console has errors: {errors:#?}"
        );
    }

    /// Runs axe-core on the page as it is now and fails, naming `page`,
    /// with each violation's rule id, impact, help and first elements.
    /// Every rule axe runs by default applies; none is switched off.
    pub async fn assert_accessible(&self, page: &str) {
        if let Some(report) = self.accessibility_violations(page).await {
            panic!("{report}");
        }
    }

    /// axe-core's violations on the page as it is now, one paragraph per
    /// rule, or `None` when there are none.
    pub async fn accessibility_violations(&self, page: &str) -> Option<String> {
        // Injected once per document: a new page starts without it.
        let loaded = self
            .client
            .execute("return typeof window.axe === 'object';", vec![])
            .await
            .unwrap();
        if loaded != json!(true) {
            self.client
                .execute(&format!("{AXE_SOURCE}\n;return null;"), vec![])
                .await
                .unwrap_or_else(|e| panic!("axe-core did not load on {page}: {e}"));
        }
        let answer = self
            .client
            .execute_async(
                "var done = arguments[arguments.length - 1];\
                 axe.run(document, { resultTypes: ['violations'] }).then(\
                   function (results) {\
                     done({ passed: results.passes.length,\
                            violations: results.violations.map(function (v) {\
                       return { id: v.id, impact: v.impact, help: v.help,\
                                count: v.nodes.length,\
                                nodes: v.nodes.map(function (n) {\
                                  return { target: n.target.join(' '),\
                                           summary: n.failureSummary || '' };\
                                }) };\
                     }) });\
                   },\
                   function (error) { done({ error: String(error) }); });",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("axe-core did not run on {page}: {e}"));
        if let Some(error) = answer.get("error") {
            panic!("axe-core failed on {page}: {error}");
        }
        let violations = answer["violations"]
            .as_array()
            .unwrap_or_else(|| panic!("axe-core gave no result on {page}: {answer}"));
        // A run that checked nothing (no page, axe broken) must not pass.
        let passed = answer["passed"].as_u64().unwrap_or(0);
        assert!(passed > 0, "axe-core checked nothing on {page}: {answer}");
        if violations.is_empty() {
            return None;
        }
        let mut report = format!("{} axe-core violation(s) on {page}:\n", violations.len());
        for violation in violations {
            report.push_str(&format!(
                "- {} ({}): {} [{} element(s)]\n",
                violation["id"].as_str().unwrap_or("?"),
                violation["impact"].as_str().unwrap_or("?"),
                violation["help"].as_str().unwrap_or("?"),
                violation["count"],
            ));
            let nodes = violation["nodes"].as_array().cloned().unwrap_or_default();
            for node in nodes.iter().take(AXE_TARGETS_SHOWN) {
                let summary = node["summary"].as_str().unwrap_or("").replace('\n', " ");
                report.push_str(&format!(
                    "    {}: {}\n",
                    node["target"].as_str().unwrap_or("?"),
                    summary.trim()
                ));
            }
        }
        Some(report)
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css}: {e}"))
    }

    pub async fn find_xpath(&self, xpath: &str) -> Element {
        self.client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::XPath(xpath))
            .await
            .unwrap_or_else(|e| panic!("no element {xpath}: {e}"))
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap().trim().to_owned()
    }

    /// Types into the input labelled by `name` after clearing it.
    pub async fn fill(&self, name: &str, value: &str) {
        let field = self.find(&format!("[name=\"{name}\"]")).await;
        field.clear().await.unwrap();
        if !value.is_empty() {
            field.send_keys(value).await.unwrap();
        }
    }

    pub async fn select(&self, name: &str, value: &str) {
        let select = self.find(&format!("select[name=\"{name}\"]")).await;
        select.select_by_value(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Clicks something that loads a new page (a submit button, a link)
    /// and waits until the new page has loaded, so that what the test reads
    /// next is not still the old page.
    pub async fn click_to_navigate(&self, css: &str) {
        let element = self.find(css).await;
        self.client
            .execute("window.__berthTestNavigating = true; return null;", vec![])
            .await
            .unwrap();
        element.click().await.unwrap();
        let deadline = Instant::now() + PATIENCE;
        loop {
            let state = self
                .client
                .execute(
                    "return window.__berthTestNavigating ? 'old' : document.readyState;",
                    vec![],
                )
                .await;
            if matches!(
                state.as_ref().ok().and_then(Value::as_str),
                Some("complete")
            ) {
                return;
            }
            assert!(Instant::now() < deadline, "clicking {css} loaded no page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the text of `css` is `expected`, without reloading.
    pub async fn wait_text(&self, css: &str, expected: &str) {
        let deadline = Instant::now() + PATIENCE;
        let mut last = String::new();
        loop {
            if let Ok(element) = self.client.find(Locator::Css(css)).await {
                if let Ok(text) = element.text().await {
                    last = text.trim().to_owned();
                    if last == expected {
                        return;
                    }
                    assert!(
                        !(expected == "done" && last == "failed"),
                        "{css} became failed, not done: {}",
                        self.client.source().await.unwrap_or_default()
                    );
                }
            }
            assert!(
                Instant::now() < deadline,
                "{css} still reads {last:?}, not {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the text of `xpath` contains `expected`, without
    /// reloading.
    pub async fn wait_text_containing(&self, xpath: &str, expected: &str) {
        let deadline = Instant::now() + PATIENCE;
        let mut last = String::new();
        loop {
            if let Ok(element) = self.client.find(Locator::XPath(xpath)).await {
                if let Ok(text) = element.text().await {
                    last = text.trim().to_owned();
                    if last.contains(expected) {
                        return;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "{xpath} still reads {last:?}, without {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Marks the current document; `assert_same_document` fails if the
    /// page was reloaded or left since.
    pub async fn mark_document(&self) {
        self.client
            .execute("window.__berthTestMark = 'unchanged'; return null;", vec![])
            .await
            .unwrap();
    }

    pub async fn assert_same_document(&self) {
        let mark = self
            .client
            .execute("return window.__berthTestMark || null;", vec![])
            .await
            .unwrap();
        assert_eq!(mark, json!("unchanged"), "the page was reloaded");
    }

    pub async fn current_path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_owned()
    }

    /// Ends the session (and with it Chromium) cleanly.
    pub async fn close(mut self) {
        let client = self.client.clone();
        let _ = client.close().await;
        self.stop_driver();
    }

    fn stop_driver(&mut self) {
        // The whole group: chromedriver and the browser it started.
        // `--` matters: without it procps' kill reads "-<pgid>" as options
        // and may signal a different group, even -1 (every process).
        let group = self.driver.id();
        assert!(group > 1, "chromedriver runs in its own process group");
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--"])
            .arg(format!("-{group}"))
            .status();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.driver.try_wait().ok().flatten().is_none() {
            self.stop_driver();
        }
    }
}

/// Reads the API the way a script would, to check what the console did.
pub async fn api_get(berth_url: &str) -> (u16, Value) {
    let response = reqwest::get(berth_url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}
