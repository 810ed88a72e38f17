//! The web console, end to end: a real berth with real LXC containers, and
//! a real Chromium clicking through the pages. Each test has its own berth
//! and browser, and checks that the browser console stayed free of errors.

mod browser;
mod common;

use std::path::Path;
use std::time::Duration;

use browser::{api_get, serial, Browser};
use common::{unique_name, Berth, WebClient};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The error shown beside the form field named `name`.
fn error_beside(name: &str) -> String {
    format!(
        "//*[@name='{name}']/ancestor::div[contains(concat(' ', @class, ' '), ' field ')][1]\
         //p[contains(@class, 'field-error')]"
    )
}

/// The `/static/app.*` URL the page links with `attribute` (`href`, `src`).
fn linked_asset(html: &str, attribute: &str) -> String {
    let marker = format!("{attribute}=\"/static/app.");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"));
    let rest = &html[start + attribute.len() + 2..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn value_of(b: &Browser, name: &str) -> String {
    b.find(&format!("[name=\"{name}\"]"))
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Create through the form; the create job reaches done on the open page,
/// and a change made elsewhere (an API start) shows up without a reload.
#[test]
fn create_through_the_form_and_watch_the_job_finish_live() {
    let _serial = serial();
    let berth = Berth::start();
    let name = unique_name("web");
    browser::run(async {
        let b = Browser::start().await;
        b.goto(&berth.url("/")).await;
        b.assert_accessible("the empty container list").await;
        b.click_to_navigate(".page-head a[href='/containers/new']")
            .await;
        b.find("form[action='/containers']").await;
        b.assert_accessible("the new-container form").await;
        b.fill("name", &name).await;
        b.select("ostemplate", "template1").await;
        b.fill("cpus", "1").await;
        b.fill("memsize", "256").await;
        b.select("memsize_units", "M").await;
        b.click_to_navigate("form[action='/containers'] button[type=submit]")
            .await;

        let flash = b.text(".flash-success").await;
        assert!(flash.contains(&name), "{flash}");
        b.mark_document().await;
        let job_status = "[data-jobs-of] tr[data-job] [data-job-field=status]";
        let first_seen = b.text(job_status).await;
        b.wait_text(job_status, "done").await;
        b.wait_text("h1 [data-container-field=status]", "stopped")
            .await;
        b.assert_same_document().await;
        b.assert_accessible("a stopped container's page").await;
        eprintln!("create job: first shown as {first_seen:?}, then done without a reload");

        let path = b.current_path().await;
        let id = path.strip_prefix("/containers/").unwrap().to_owned();
        let (status, answer) = api_get(&berth.url(&format!("/v1/containers/{id}"))).await;
        assert_eq!(status, 200, "{answer}");
        let container = &answer["container"];
        assert_eq!(container["name"], name.as_str());
        assert_eq!(container["ostemplate"], "template1");
        // Empty fields were not sent: only what was filled in is set.
        assert_eq!(
            container["parameters"],
            json!({ "cpus": "1", "memsize": "256", "memsize_units": "M" })
        );

        // A job queued by someone else shows on this page as it happens.
        let started = reqwest::Client::new()
            .post(berth.url(&format!("/v1/containers/{id}/start")))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status().as_u16(), 202);
        b.wait_text("h1 [data-container-field=status]", "running")
            .await;
        assert!(b.find("[data-stale]").await.is_displayed().await.unwrap());
        let stop_enabled = b
            .find("form[action$='/stop'] button")
            .await
            .is_enabled()
            .await
            .unwrap();
        assert!(stop_enabled, "Stop follows the status to enabled");
        b.assert_same_document().await;
        b.assert_accessible("a running container's page").await;
        assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));

        b.assert_no_console_errors().await;
        b.close().await;
    });
}

/// Parameters edited in the form reach the API and the container; start,
/// stop and delete (after its confirmation page) act on the real container.
#[test]
fn edit_parameters_start_stop_and_delete() {
    let _serial = serial();
    let berth = Berth::start();
    let name = unique_name("app");
    let id = berth.create(&name, Some(json!({ "cpus": "1" })));
    browser::run(async {
        let b = Browser::start().await;
        b.goto(&berth.url(&format!("/containers/{id}"))).await;
        assert_eq!(
            value_of(&b, "cpus").await,
            "1",
            "the form shows what is stored"
        );
        b.fill("hostname", "app01").await;
        b.fill("memsize", "128").await;
        b.select("memsize_units", "M").await;
        b.click_to_navigate("form[action$='/parameters'] button[type=submit]")
            .await;
        let flash = b.text(".flash-success").await;
        assert!(flash.contains("saved"), "{flash}");
        let (_, answer) = api_get(&berth.url(&format!("/v1/containers/{id}"))).await;
        assert_eq!(
            answer["container"]["parameters"],
            json!({ "hostname": "app01", "cpus": "1", "memsize": "128", "memsize_units": "M" })
        );
        let newest_job = "[data-jobs-of] tr[data-job]:first-child [data-job-field=status]";
        b.wait_text(newest_job, "done").await;
        assert_eq!(b.text("[data-container-field=hostname]").await, "app01");

        b.click_to_navigate("form[action$='/start'] button").await;
        assert!(b.text(".flash-success").await.contains("Start"));
        b.mark_document().await;
        b.wait_text("h1 [data-container-field=status]", "running")
            .await;
        b.wait_text(newest_job, "done").await;
        b.assert_same_document().await;
        assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));
        assert_eq!(berth.attach(&name, "hostname").trim(), "app01");

        b.click_to_navigate("form[action$='/stop'] button").await;
        assert!(b.text(".flash-success").await.contains("Stop"));
        b.mark_document().await;
        b.wait_text("h1 [data-container-field=status]", "stopped")
            .await;
        b.assert_same_document().await;
        assert_eq!(berth.lxc_state(&name).as_deref(), Some("STOPPED"));

        // Delete asks first, on a page of its own; nothing happens yet.
        b.click_to_navigate("a[href$='/delete']").await;
        let heading = b.text("h1").await;
        assert_eq!(heading, format!("Delete {name}?"));
        let (status, _) = api_get(&berth.url(&format!("/v1/containers/{id}"))).await;
        assert_eq!(status, 200, "the confirmation page deletes nothing");
        b.assert_accessible("the delete confirmation").await;
        b.click_to_navigate(".confirm button[type=submit]").await;
        assert!(b.current_path().await.starts_with("/jobs/"));
        b.mark_document().await;
        b.wait_text("[data-job-field=status]", "done").await;
        b.assert_same_document().await;
        b.assert_accessible("a job's page").await;
        let (status, _) = api_get(&berth.url(&format!("/v1/containers/{id}"))).await;
        assert_eq!(status, 404);
        assert_eq!(berth.lxc_state(&name), None);
        b.goto(&berth.url("/")).await;
        let rows = b
            .client
            .find_all(fantoccini::Locator::Css(&format!(
                "[data-container='{id}']"
            )))
            .await
            .unwrap();
        assert!(rows.is_empty(), "a deleted container is no longer listed");
        b.goto(&berth.url("/jobs")).await;
        b.find("[data-job]").await;
        b.assert_accessible("the jobs list").await;
        b.assert_no_console_errors().await;

        b.goto(&berth.url("/no/such/page")).await;
        assert_eq!(b.text("h1").await, "Not Found");
        b.assert_accessible("the error page (a 404)").await;
        let errors = b.console_errors().await;
        assert!(
            errors.iter().all(|line| line.contains("status of 404")),
            "only the 404 asked for is logged: {errors:#?}"
        );
        b.close().await;
    });
}

/// A refused form comes back with each reason beside its field and the
/// values as they were typed; nothing is created or changed.
#[test]
fn validation_errors_are_shown_beside_their_fields() {
    let _serial = serial();
    let berth = Berth::start();
    let name = unique_name("keep");
    let id = berth.create(&name, None);
    browser::run(async {
        let b = Browser::start().await;
        b.goto(&berth.url("/containers/new")).await;
        b.fill("name", "bad name!").await;
        b.fill("hostname", "-bad-").await;
        b.fill("cpus", "1").await;
        b.click_to_navigate("form[action='/containers'] button[type=submit]")
            .await;

        let name_error = b
            .find_xpath(&error_beside("name"))
            .await
            .text()
            .await
            .unwrap();
        assert!(name_error.contains("letters, digits"), "{name_error}");
        let hostname_error = b
            .find_xpath(&error_beside("hostname"))
            .await
            .text()
            .await
            .unwrap();
        assert!(hostname_error.contains("RFC 1123"), "{hostname_error}");
        b.assert_accessible("the new-container form with errors")
            .await;
        assert!(b
            .client
            .find(fantoccini::Locator::XPath(&error_beside("cpus")))
            .await
            .is_err());
        assert_eq!(value_of(&b, "name").await, "bad name!");
        assert_eq!(value_of(&b, "hostname").await, "-bad-");
        assert_eq!(value_of(&b, "cpus").await, "1");
        let (_, list) = api_get(&berth.url("/v1/containers")).await;
        assert_eq!(list["containers"].as_array().unwrap().len(), 1, "{list}");

        // The parameters form on a container page works the same way.
        b.goto(&berth.url(&format!("/containers/{id}"))).await;
        b.fill("cpus", "999").await;
        b.fill("nameserver", "1.1.1.1").await;
        b.click_to_navigate("form[action$='/parameters'] button[type=submit]")
            .await;
        let cpus_error = b
            .find_xpath(&error_beside("cpus"))
            .await
            .text()
            .await
            .unwrap();
        assert!(cpus_error.contains("whole number from 1"), "{cpus_error}");
        b.assert_accessible("a container's page with parameter errors")
            .await;
        assert_eq!(value_of(&b, "cpus").await, "999");
        assert_eq!(value_of(&b, "nameserver").await, "1.1.1.1");
        let (_, answer) = api_get(&berth.url(&format!("/v1/containers/{id}"))).await;
        assert_eq!(answer["container"]["parameters"], Value::Null);

        let errors: Vec<String> = b
            .console_errors()
            .await
            .into_iter()
            // The refused form answers 422 on purpose; Chromium logs that.
            .filter(|line| !line.contains("status of 422"))
            .collect();
        assert!(
            errors.is_empty(),
            "the browser console has errors: {errors:#?}"
        );
        b.close().await;
    });
}

/// The nodes page shows this berth's node online. Drained from the page,
/// the node is marked on the create form, and a container asked of it is
/// refused beside the node choice; put back online, "Let berth choose"
/// places a new container on it, the list shows it in the Node column and
/// filters by node, and the container's page names its node.
#[test]
fn nodes_page_drain_node_choice_and_node_filter() {
    let _serial = serial();
    let berth = Berth::start();
    let (_, listed) = berth.get("/v1/nodes");
    let node = listed["nodes"][0]["name"].as_str().unwrap().to_owned();
    let name = unique_name("placed");
    browser::run(async {
        let b = Browser::start().await;
        b.goto(&berth.url("/")).await;
        b.click_to_navigate("nav a[href='/nodes']").await;
        assert_eq!(b.current_path().await, "/nodes");
        let current = b.text("nav a[aria-current='page']").await;
        assert_eq!(current, "Nodes");
        let state = format!("tr[data-node='{node}'] [data-node-field=state]");
        assert_eq!(b.text(&state).await, "online");
        assert_eq!(
            b.text(&format!("tr[data-node='{node}'] th[scope=row]"))
                .await,
            node
        );
        b.assert_accessible("the nodes page").await;

        b.click_to_navigate(&format!("form[action='/nodes/{node}/drain'] button"))
            .await;
        assert_eq!(b.current_path().await, "/nodes");
        let flash = b.text(".flash-success").await;
        assert!(flash.contains("draining"), "{flash}");
        assert_eq!(b.text(&state).await, "draining");
        b.assert_accessible("the nodes page with a draining node")
            .await;
        assert_eq!(
            api_get(&berth.url(&format!("/v1/nodes/{node}"))).await.1["node"]["state"],
            "draining"
        );

        b.goto(&berth.url("/containers/new")).await;
        let choice = b
            .text(&format!("select[name=node] option[value='{node}']"))
            .await;
        assert!(choice.contains("(draining"), "{choice}");
        b.fill("name", &name).await;
        b.select("ostemplate", "template1").await;
        b.select("node", &node).await;
        b.click_to_navigate("form[action='/containers'] button[type=submit]")
            .await;
        let node_error = b
            .find_xpath(&error_beside("node"))
            .await
            .text()
            .await
            .unwrap();
        assert!(node_error.contains("is draining"), "{node_error}");
        assert_eq!(value_of(&b, "node").await, node, "the choice is kept");
        let (_, list) = api_get(&berth.url("/v1/containers")).await;
        assert_eq!(list["containers"], json!([]), "nothing was created");

        b.goto(&berth.url("/nodes")).await;
        b.click_to_navigate(&format!("form[action='/nodes/{node}/online'] button"))
            .await;
        assert_eq!(b.text(&state).await, "online");
        assert_eq!(
            api_get(&berth.url(&format!("/v1/nodes/{node}"))).await.1["node"]["state"],
            "online"
        );

        b.goto(&berth.url("/containers/new")).await;
        b.fill("name", &name).await;
        b.select("ostemplate", "template1").await;
        b.select("node", "").await;
        b.click_to_navigate("form[action='/containers'] button[type=submit]")
            .await;
        assert!(b.text(".flash-success").await.contains(&name));
        let path = b.current_path().await;
        let id = path.strip_prefix("/containers/").unwrap().to_owned();
        assert_eq!(b.text("dd[data-container-field=node]").await, node);
        let (_, answer) = api_get(&berth.url(&format!("/v1/containers/{id}"))).await;
        assert_eq!(answer["container"]["node"], node.as_str());
        b.wait_text(
            "[data-jobs-of] tr[data-job] [data-job-field=status]",
            "done",
        )
        .await;

        // The list: a Node column, and a filter by node.
        b.goto(&berth.url("/")).await;
        b.find_xpath("//table//th[@scope='col'][normalize-space()='Node']")
            .await;
        b.assert_accessible("the container list with rows").await;
        let row_node = format!("tr[data-container='{id}'] [data-container-field=node]");
        assert_eq!(b.text(&row_node).await, node);
        b.select("node", &node).await;
        b.click_to_navigate("form.filter button[type=submit]").await;
        let url = b.client.current_url().await.unwrap();
        assert_eq!(url.query(), Some(format!("node={node}").as_str()));
        assert_eq!(b.text(&row_node).await, node);
        assert_eq!(value_of(&b, "node").await, node);
        // The nodes page's count links to the list filtered by its node.
        b.goto(&berth.url("/nodes")).await;
        let count = format!("tr[data-node='{node}'] [data-node-field=containers]");
        assert_eq!(b.text(&count).await, "1");
        b.click_to_navigate(&count).await;
        assert_eq!(b.text(&row_node).await, node);
        // Another node's list holds none of this node's containers.
        b.goto(&berth.url("/containers?node=elsewhere")).await;
        assert_eq!(b.text("h2").await, "No containers on elsewhere");
        b.assert_accessible("the list filtered to no containers")
            .await;
        let rows = b
            .client
            .find_all(fantoccini::Locator::Css(&format!(
                "[data-container='{id}']"
            )))
            .await
            .unwrap();
        assert!(rows.is_empty(), "the filter filters");
        b.select("node", "").await;
        b.click_to_navigate("form.filter button[type=submit]").await;
        assert_eq!(b.text(&row_node).await, node, "all nodes again");

        let errors: Vec<String> = b
            .console_errors()
            .await
            .into_iter()
            // The refused form answers 422 on purpose; Chromium logs that.
            .filter(|line| !line.contains("status of 422"))
            .collect();
        assert!(
            errors.is_empty(),
            "the browser console has errors: {errors:#?}"
        );
        b.close().await;

        // At phone width the node's state and its button stay in view.
        let phone = Browser::start_sized(390, 844).await;
        phone.goto(&berth.url("/nodes")).await;
        let fits = phone
            .client
            .execute(
                "var b = document.querySelector('tr[data-node] button'); \
                 return b.getBoundingClientRect().right <= window.innerWidth \
                   && document.documentElement.scrollWidth <= window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(fits, json!(true), "the nodes page fits a phone");
        phone
            .assert_accessible("the nodes page at phone width")
            .await;
        phone.goto(&berth.url("/")).await;
        phone.find(&row_node).await;
        phone
            .assert_accessible("the container list at phone width")
            .await;
        phone.goto(&berth.url("/containers/new")).await;
        phone.find("form[action='/containers']").await;
        phone
            .assert_accessible("the new-container form at phone width")
            .await;
        phone.assert_no_console_errors().await;
        phone.close().await;
    });
}

/// With JavaScript off the console still works: the form creates the
/// container, and reloading shows the job done and the container stopped.
#[test]
fn works_without_javascript() {
    let _serial = serial();
    let berth = Berth::start();
    let name = unique_name("nojs");
    browser::run(async {
        let b = Browser::start_without_javascript().await;
        b.goto(&berth.url("/containers/new")).await;
        b.fill("name", &name).await;
        b.select("ostemplate", "template1").await;
        b.click_to_navigate("form[action='/containers'] button[type=submit]")
            .await;
        assert!(b.text(".flash-success").await.contains(&name));
        let page = b.client.current_url().await.unwrap();
        let deadline = std::time::Instant::now() + browser::PATIENCE;
        loop {
            b.client.goto(page.as_str()).await.unwrap();
            let job = b.text("[data-jobs-of] [data-job-field=status]").await;
            let container = b.text("h1 [data-container-field=status]").await;
            if job == "done" && container == "stopped" {
                break;
            }
            assert_ne!(job, "failed");
            assert!(std::time::Instant::now() < deadline, "{job} / {container}");
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // Had app.js run, it would have connected and shown this by now.
        let live = b.find("[data-live]").await.is_displayed().await.unwrap();
        assert!(!live, "JavaScript was off, so the live mark stays hidden");
        b.close().await;
    });
}

/// The console-error check the other tests rely on does see a script error.
#[test]
fn the_console_check_catches_script_errors() {
    let _serial = serial();
    let berth = Berth::start();
    browser::run(async {
        let b = Browser::start().await;
        b.goto(&berth.url("/")).await;
        b.assert_no_console_errors().await;
        b.client
            .execute(
                "setTimeout(function () { throw new Error('berth-probe'); }, 0); return null;",
                vec![],
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let errors = b.console_errors().await;
        assert!(
            errors.iter().any(|line| line.contains("berth-probe")),
            "{errors:?}"
        );
        b.close().await;
    });
}

/// The dark colour scheme (the CSS follows the system's) passes the same
/// accessibility check as the light one, colour contrast included: the
/// list with a running and a stopped container, the form with and without
/// errors, a container's page, the jobs, a job and the nodes.
#[test]
fn pages_are_accessible_in_the_dark_colour_scheme() {
    let _serial = serial();
    let berth = Berth::start();
    let running = berth.create(&unique_name("dark"), None);
    berth.act(&running, "start");
    let stopped = berth.create(&unique_name("dim"), None);
    let (_, jobs) = berth.get("/v1/jobs");
    let job = jobs["jobs"][0]["id"].as_str().unwrap().to_owned();
    browser::run(async {
        let b = Browser::start().await;
        b.goto(&berth.url("/")).await;
        b.prefer_dark_colour_scheme().await;
        b.find(&format!("[data-container='{stopped}']")).await;
        let mut report = Vec::new();
        let pages = [
            ("the container list", "/".to_owned()),
            ("the new-container form", "/containers/new".to_owned()),
            (
                "a running container's page",
                format!("/containers/{running}"),
            ),
            (
                "a stopped container's page",
                format!("/containers/{stopped}"),
            ),
            (
                "the delete confirmation",
                format!("/containers/{stopped}/delete"),
            ),
            ("the jobs list", "/jobs".to_owned()),
            ("a job's page", format!("/jobs/{job}")),
            ("the nodes page", "/nodes".to_owned()),
        ];
        for (page, path) in pages {
            b.goto(&berth.url(&path)).await;
            b.find("main h1").await;
            report.extend(b.accessibility_violations(&format!("{page}, dark")).await);
        }
        b.goto(&berth.url("/containers/new")).await;
        b.fill("name", "bad name!").await;
        b.click_to_navigate("form[action='/containers'] button[type=submit]")
            .await;
        b.find_xpath(&error_beside("name")).await;
        report.extend(
            b.accessibility_violations("the form with errors, dark")
                .await,
        );
        assert!(report.is_empty(), "{}", report.join("\n"));
        b.close().await;
    });
}

/// The accessibility check the other tests rely on does see a violation:
/// a select that loses its label is reported under axe's rule for it.
#[test]
fn the_accessibility_check_catches_violations() {
    let _serial = serial();
    let berth = Berth::start();
    browser::run(async {
        let b = Browser::start().await;
        b.goto(&berth.url("/")).await;
        assert_eq!(b.accessibility_violations("the list").await, None);
        b.client
            .execute(
                "document.querySelector('label[for=f-node-filter]').remove(); return null;",
                vec![],
            )
            .await
            .unwrap();
        let report = b
            .accessibility_violations("the list without a label")
            .await
            .expect("a select without a label is a violation");
        assert!(report.contains("select-name (critical)"), "{report}");
        assert!(report.contains("#f-node-filter"), "{report}");
        b.assert_no_console_errors().await;
        b.close().await;
    });
}

/// Without JavaScript, over plain HTTP: assets with types and caching,
/// HTML errors for browsers and JSON for others, forms that redirect with
/// a flash message, and pages that show the truth when reloaded.
#[test]
fn pages_assets_and_forms_work_over_plain_http() {
    let berth = Berth::start();
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let home = http.get(berth.url("/")).send().unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    assert!(home.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = home.text().unwrap();
    assert!(!html.contains("<script>"), "no inline scripts");
    assert!(!html.contains(" style="), "no inline styles");

    for (attribute, content_type) in [("href", "text/css"), ("src", "text/javascript")] {
        let url = linked_asset(&html, attribute);
        let answer = http.get(berth.url(&url)).send().unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{url}");
        let headers = answer.headers().clone();
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(content_type),
            "{url}: {headers:?}"
        );
        assert!(
            headers["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable"),
            "{url}: {headers:?}"
        );
        let etag = headers["etag"].clone();
        let again = http
            .get(berth.url(&url))
            .header("If-None-Match", etag)
            .send()
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{url}");
    }
    let unfingerprinted = http.get(berth.url("/static/app.css")).send().unwrap();
    assert_eq!(unfingerprinted.headers()["cache-control"], "no-cache");
    for escape in [
        "/static/..%2FCargo.toml",
        "/static/../Cargo.toml",
        "/static/.hidden",
    ] {
        let answer = http.get(berth.url(escape)).send().unwrap();
        assert!(answer.status().is_client_error(), "{escape}: {answer:?}");
        assert!(!answer.text().unwrap().contains("[package]"), "{escape}");
    }

    let page = http
        .get(berth.url("/no/such/page"))
        .header("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.text().unwrap().contains("<h1>Not Found</h1>"));
    let json_error: Value = http
        .get(berth.url("/no/such/page"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(json_error["code"], 2000, "{json_error}");
    let api_error = http
        .get(berth.url("/v1/nope"))
        .header("Accept", "text/html")
        .send()
        .unwrap();
    assert_eq!(api_error.status(), StatusCode::NOT_FOUND);
    let api_error: Value = api_error.json().unwrap();
    assert_eq!(api_error["code"], 2000, "API paths keep JSON errors");

    // The form's CSRF secret, bound to the `berth_csrf` cookie.
    let web = WebClient::new(&berth);
    let csrf = web.csrf("/containers/new");
    let csrf_cookie = format!("berth_csrf={}", web.cookie("berth_csrf").unwrap());
    let name = unique_name("plain");
    let created = http
        .post(berth.url("/containers"))
        .header("Cookie", &csrf_cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", name.as_str()),
            ("ostemplate", "template1"),
            ("hostname", ""),
            ("cpus", ""),
            ("memsize", ""),
            ("memsize_units", ""),
        ])
        .send()
        .unwrap();
    assert_eq!(created.status(), StatusCode::SEE_OTHER);
    let location = created.headers()["location"].to_str().unwrap().to_owned();
    let cookie = created.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("_flash="), "{cookie}");
    let id = location.strip_prefix("/containers/").unwrap().to_owned();
    assert_eq!(berth.container(&id)["parameters"], Value::Null);
    let page = http
        .get(berth.url(&location))
        .header("Cookie", cookie.split(';').next().unwrap())
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("flash-success"), "the flash is shown once");
    assert!(page.contains(&format!("Creating {name}")));

    let job = berth.get("/v1/jobs").1["jobs"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    berth.job_done(&job);
    let page = http
        .get(berth.url(&location))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("data-container-field=\"status\">stopped<"));
    assert!(
        !page.contains("flash-success"),
        "a flash is shown once only"
    );
    let job_page = http
        .get(berth.url(&format!("/jobs/{job}")))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(job_page.contains("data-job-field=\"status\">done<"));
    assert!(job_page.contains("value=\"100\""));
}

/// The new-container form, shown and shown again with the errors of a
/// refused create, needs only template names: it never reads a template
/// file (a digest of a big one takes minutes). A read shows in the file's
/// access time (relatime moves an access time older than the file's last
/// change); the API's list, which hashes, proves that the observation works.
#[test]
fn the_create_form_lists_templates_without_reading_them() {
    use std::fs::{File, FileTimes};
    use std::time::SystemTime;

    let berth = Berth::start();
    let file = berth.template_dir().join("template1.tar.gz");
    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_times(FileTimes::new().set_accessed(long_ago))
        .unwrap();
    let accessed = || std::fs::metadata(&file).unwrap().accessed().unwrap();
    assert_eq!(accessed(), long_ago);

    let web = WebClient::new(&berth);
    let form = web.get("/containers/new");
    assert_eq!(form.status(), StatusCode::OK);
    assert!(form.text().unwrap().contains("template1"));
    let csrf = web.csrf("/containers/new");
    let refused = web.post(
        "/containers",
        &[
            ("csrf", csrf.as_str()),
            ("name", "not a name"),
            ("ostemplate", "template1"),
        ],
    );
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().unwrap().contains("template1"));
    assert_eq!(accessed(), long_ago, "the form read the template file");

    let (status, listed) = berth.get("/v1/templates");
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_ne!(
        accessed(),
        long_ago,
        "reading the file moves its access time"
    );
}

/// With `auth = "token"`, in Chromium: the console sends the browser to
/// the login page, a token logs in, the live updates work on the session
/// (the event stream reads the API with the session cookie), a form posts
/// (so the browser's `Origin` passes the check), and logging out ends it.
/// The console-error check also covers the security headers' CSP.
#[test]
fn log_in_with_a_token_work_and_log_out() {
    let _serial = serial();
    let mut berth = Berth::start_with(common::Options {
        env: vec![("BERTH_AUTH".into(), "token".into())],
        templates: vec!["template1"],
    });
    let created = berth.cli(&["token", "create", "alice"]);
    let token = String::from_utf8(created.stdout)
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned();
    let name = unique_name("login");
    browser::run(async {
        let b = Browser::start().await;
        b.goto(&berth.url("/jobs")).await;
        assert_eq!(b.current_path().await, "/login");
        b.assert_accessible("the login page").await;
        b.fill("token", "berth_wrong").await;
        b.click_to_navigate("form[action='/login'] button[type=submit]")
            .await;
        assert!(b
            .text(".flash-error")
            .await
            .contains("not a valid API token"));
        b.assert_accessible("the login page with an error").await;
        b.prefer_dark_colour_scheme().await;
        b.assert_accessible("the login page with an error, dark")
            .await;
        b.fill("token", &token).await;
        b.click_to_navigate("form[action='/login'] button[type=submit]")
            .await;
        assert_eq!(b.current_path().await, "/");
        assert_eq!(b.text(".session-user").await, "alice");
        b.find("[data-live]:not([hidden])").await;

        b.goto(&berth.url("/containers/new")).await;
        b.fill("name", &name).await;
        b.select("ostemplate", "template1").await;
        b.click_to_navigate("form[action='/containers'] button[type=submit]")
            .await;
        assert!(b.text(".flash-success").await.contains(&name));
        b.wait_text(
            "[data-jobs-of] tr[data-job] [data-job-field=status]",
            "done",
        )
        .await;

        b.click_to_navigate("form[action='/logout'] button[type=submit]")
            .await;
        assert_eq!(b.current_path().await, "/login");
        b.goto(&berth.url("/")).await;
        assert_eq!(b.current_path().await, "/login");
        // The wrong token above was answered 401 on purpose; anything
        // else the browser logged is a failure.
        let errors: Vec<String> = b
            .console_errors()
            .await
            .into_iter()
            .filter(|line| !line.contains("/login - Failed to load resource"))
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        b.close().await;
    });
    berth.authorize(&token);
    let (_, jobs) = berth.get("/v1/jobs");
    assert_eq!(jobs["jobs"][0]["requested_by"], "console:alice", "{jobs}");
}

/// Writes docs/screenshots/home.png, container.png and container-phone.png
/// from a berth with a
/// few containers in different states. Run by packaging/screenshots.sh.
#[test]
#[ignore = "writes the documentation screenshots; run packaging/screenshots.sh"]
fn screenshots() {
    let _serial = serial();
    let berth = Berth::start();
    let web = berth.create(
        "web-01",
        Some(json!({
            "hostname": "web-01", "cpus": "2", "memsize": "512", "memsize_units": "M",
            "ipadd": "10.20.0.11/24", "nameserver": "10.20.0.1"
        })),
    );
    berth.act(&web, "start");
    let db = berth.create(
        "db-01",
        Some(json!({
            "hostname": "db-01", "cpus": "2", "memsize": "1", "memsize_units": "G",
            "ipadd": "10.20.0.21/24", "size": "64", "size_units": "M"
        })),
    );
    berth.act(&db, "start");
    berth.create(
        "build-runner",
        Some(json!({ "cpus": "1", "memsize": "256", "memsize_units": "M" })),
    );
    let out = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&out).unwrap();
    browser::run(async {
        let b = Browser::start_sized(1280, 860).await;
        b.goto(&berth.url("/")).await;
        b.find("[data-live]:not([hidden])").await;
        std::fs::write(out.join("home.png"), b.client.screenshot().await.unwrap()).unwrap();
        b.goto(&berth.url(&format!("/containers/{web}"))).await;
        b.find("[data-live]:not([hidden])").await;
        std::fs::write(
            out.join("container.png"),
            b.client.screenshot().await.unwrap(),
        )
        .unwrap();
        b.assert_no_console_errors().await;
        b.close().await;
        let phone = Browser::start_sized(390, 844).await;
        phone.goto(&berth.url(&format!("/containers/{web}"))).await;
        phone.find("[data-live]:not([hidden])").await;
        std::fs::write(
            out.join("container-phone.png"),
            phone.client.screenshot().await.unwrap(),
        )
        .unwrap();
        phone.assert_no_console_errors().await;
        phone.close().await;
    });
}

/// The templates page: an upload through the page (streamed to the API
/// with the session's CSRF header, a progress bar, the API's refusals
/// beside the field), a container made from the uploaded template, and a
/// delete whose confirmation names that container.
#[test]
fn templates_page_uploads_lists_and_deletes_after_naming_its_containers() {
    let _serial = serial();
    let mut berth = Berth::start_with(common::Options {
        env: vec![("BERTH_AUTH".into(), "token".into())],
        templates: vec!["template1"],
    });
    let token = berth.create_token("ops");
    let files = tempfile::tempdir().unwrap();
    let uploaded = files.path().join("uploaded.tar.gz");
    std::fs::copy(common::busybox_template(), &uploaded).unwrap();
    let not_a_template = files.path().join("notes.txt");
    std::fs::write(&not_a_template, "hello").unwrap();
    let not_gzip = files.path().join("fake.tar.gz");
    std::fs::write(&not_gzip, "this is text, not gzip").unwrap();
    let name = unique_name("fromup");
    browser::run(async {
        let b = Browser::start().await;
        b.goto(&berth.url("/login")).await;
        b.fill("token", &token).await;
        b.click_to_navigate("form[action='/login'] button[type=submit]")
            .await;
        b.goto(&berth.url("/templates")).await;
        b.find("tr[data-template='template1']").await;
        b.assert_accessible("the templates page").await;

        for (file, problem) in [
            (&not_a_template, "is not a template file name"),
            (&not_gzip, "not a tar.gz archive"),
        ] {
            b.mark_document().await;
            b.find("#f-template-file")
                .await
                .send_keys(file.to_str().unwrap())
                .await
                .unwrap();
            b.click("[data-template-upload] button[type=submit]").await;
            b.wait_text_containing(&error_beside("file"), problem).await;
            b.assert_same_document().await;
        }
        b.assert_accessible("the templates page with an upload error")
            .await;

        b.find("#f-template-file")
            .await
            .send_keys(uploaded.to_str().unwrap())
            .await
            .unwrap();
        b.click("[data-template-upload] button[type=submit]").await;
        // The page reloads with the new row once the upload is in.
        b.find("tr[data-template='uploaded']").await;
        assert_eq!(
            b.text("tr[data-template='uploaded'] td:nth-of-type(1)")
                .await,
            "tar.gz"
        );

        b.goto(&berth.url("/containers/new")).await;
        b.fill("name", &name).await;
        b.select("ostemplate", "uploaded").await;
        b.click_to_navigate("form[action='/containers'] button[type=submit]")
            .await;
        b.wait_text(
            "[data-jobs-of] tr[data-job] [data-job-field=status]",
            "done",
        )
        .await;

        b.goto(&berth.url("/templates")).await;
        assert_eq!(
            b.text("tr[data-template='uploaded'] td:nth-of-type(4)")
                .await,
            "1"
        );
        b.click_to_navigate("a[href='/templates/uploaded/delete']")
            .await;
        assert!(b.text(".made-from").await.contains(&name));
        b.assert_accessible("the template delete confirmation")
            .await;
        b.click_to_navigate("form[action='/templates/uploaded/delete'] button[type=submit]")
            .await;
        assert!(b
            .text(".flash-success")
            .await
            .contains("Template uploaded was deleted"));
        // The refused uploads were answered 422 on purpose.
        let errors: Vec<String> = b
            .console_errors()
            .await
            .into_iter()
            .filter(|line| !line.contains("/v1/templates?name=") || !line.contains("422"))
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        b.close().await;
    });
    berth.authorize(&token);
    let (_, templates) = berth.get("/v1/templates");
    let names: Vec<&str> = templates["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["template1"], "{templates}");
    let (_, containers) = berth.get(&format!("/v1/containers?name={name}"));
    assert_eq!(containers["containers"][0]["ostemplate"], "uploaded");
}

/// The tokens page in a browser: a token made there is shown once with a
/// copy button, works with curl, and stops working when revoked there.
#[test]
fn tokens_page_creates_a_token_that_works_until_revoked() {
    let _serial = serial();
    let berth = Berth::start_with(common::Options {
        env: vec![("BERTH_AUTH".into(), "token".into())],
        templates: vec!["template1"],
    });
    let token = berth.create_token("ops");
    let api = berth.url("/v1/containers");
    let curl = |token: &str| {
        let api = api.clone();
        let token = token.to_owned();
        std::thread::spawn(move || {
            reqwest::blocking::Client::new()
                .get(api)
                .header("Authorization", format!("Bearer {token}"))
                .send()
                .unwrap()
                .status()
        })
        .join()
        .unwrap()
    };
    browser::run(async {
        let b = Browser::start_sized(390, 844).await;
        b.goto(&berth.url("/login")).await;
        b.fill("token", &token).await;
        b.click_to_navigate("form[action='/login'] button[type=submit]")
            .await;
        b.goto(&berth.url("/tokens")).await;
        b.find("tr[data-token='ops']").await;
        b.assert_accessible("the tokens page at phone width").await;
        b.fill("name", "billing").await;
        b.click_to_navigate("form[action='/tokens'] button[type=submit]")
            .await;
        let created = b
            .find("#created-token")
            .await
            .prop("value")
            .await
            .unwrap()
            .unwrap_or_default();
        assert!(created.starts_with("berth_"), "{created:?}");
        b.find("[data-copy]:not([hidden])").await;
        b.assert_accessible("the tokens page showing a new token")
            .await;
        assert_eq!(curl(&created), StatusCode::OK);

        b.click_to_navigate("a[href='/tokens/billing/revoke']")
            .await;
        b.assert_accessible("the revoke confirmation").await;
        b.click_to_navigate("form[action='/tokens/billing/revoke'] button[type=submit]")
            .await;
        assert!(b
            .text(".flash-success")
            .await
            .contains("billing was revoked"));
        assert_eq!(curl(&created), StatusCode::UNAUTHORIZED);
        b.assert_no_console_errors().await;
        b.close().await;
    });
}

/// The text the terminal on the page shows now (xterm.js's rows).
async fn terminal_text(b: &Browser) -> String {
    b.client
        .execute(
            "var rows = document.querySelector('.xterm-rows'); \
             return rows ? Array.from(rows.children).map(function (r) { return r.textContent; }).join('\\n') : '';",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Waits until the terminal shows a line for which `wanted` says yes.
async fn wait_terminal(b: &Browser, what: &str, wanted: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + browser::PATIENCE;
    loop {
        let text = terminal_text(b).await;
        if text.lines().any(|line| wanted(line.trim())) {
            return text;
        }
        if std::time::Instant::now() >= deadline {
            panic!(
                "the terminal never showed {what}:\n{text}\nbrowser log: {:#?}",
                b.console_log().await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Types into the terminal (xterm.js reads its hidden textarea's keys).
async fn type_in_terminal(b: &Browser, text: &str) {
    b.find(".xterm-helper-textarea")
        .await
        .send_keys(&format!("{text}\u{E007}"))
        .await
        .unwrap();
}

/// `stty size` lines ("ROWS COLS") the terminal shows, in order.
fn sizes(text: &str) -> Vec<(u32, u32)> {
    text.lines()
        .filter_map(|line| {
            let (rows, cols) = line.trim().split_once(' ')?;
            Some((rows.parse().ok()?, cols.parse().ok()?))
        })
        .collect()
}

/// A page of another site (another port is another origin) that tries to
/// open the container's terminal and writes what happened into its title.
fn serve_other_site(berth_port: u16, id: &str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let page = format!(
        "<!DOCTYPE html><title>trying</title><script>\
         var ws = new WebSocket('ws://127.0.0.1:{berth_port}/v1/containers/{id}/console');\
         ws.onopen = function () {{ document.title = 'opened'; }};\
         ws.onclose = function (e) {{ if (document.title !== 'opened') document.title = 'refused ' + e.code; }};\
         </script>"
    );
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            use std::io::{Read, Write};
            let mut stream = stream;
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                page.len()
            );
        }
    });
    port
}

/// The terminal on a container's page: a real shell in the container
/// (its host name read back from the page), following the window's size,
/// accessible, and out of reach of other sites' pages.
#[test]
fn the_terminal_runs_a_shell_in_the_container_and_follows_the_window() {
    let _serial = serial();
    let berth = Berth::start();
    let name = unique_name("tty");
    let id = berth.create(&name, None);
    berth.act(&id, "start");
    let other_site = serve_other_site(berth.port, &id);
    browser::run(async {
        let b = Browser::start().await;
        b.goto(&berth.url(&format!("/containers/{id}"))).await;
        b.click("[data-terminal-open]").await;
        b.find(".xterm-helper-textarea").await;
        type_in_terminal(&b, "hostname").await;
        wait_terminal(&b, "the container's host name", |line| line == name).await;
        assert!(berth.attach(&name, "ps -o args").contains("sh -l"));
        b.assert_accessible("a container's page with its terminal open")
            .await;

        type_in_terminal(&b, "stty size").await;
        let text = wait_terminal(&b, "a first size", |line| !sizes(line).is_empty()).await;
        let first = sizes(&text)[0];
        b.client.set_window_size(800, 600).await.unwrap();
        let mut resized = None;
        let deadline = std::time::Instant::now() + browser::PATIENCE;
        while resized.is_none() {
            // Asked again until the new size has arrived (the resize
            // message and the window's own events race the typing).
            type_in_terminal(&b, "stty size").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            resized = sizes(&terminal_text(&b).await)
                .into_iter()
                .find(|size| *size != first);
            assert!(
                std::time::Instant::now() < deadline,
                "stty size stayed {first:?}:\n{}",
                terminal_text(&b).await
            );
        }
        let (rows, cols) = resized.unwrap();
        assert!(cols < first.1, "narrower: {first:?} then {rows} {cols}");
        b.assert_no_console_errors().await;

        // Another site's page gets no terminal: the handshake is refused.
        b.goto(&format!("http://127.0.0.1:{other_site}/")).await;
        let deadline = std::time::Instant::now() + browser::PATIENCE;
        let title = loop {
            let title = b.client.title().await.unwrap();
            if title != "trying" {
                break title;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the WebSocket never settled"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(title.starts_with("refused"), "{title}");
        let errors = b.console_errors().await;
        assert!(errors.iter().any(|e| e.contains("403")), "{errors:#?}");

        // Leaving the page ended the shell inside the container.
        let deadline = std::time::Instant::now() + browser::PATIENCE;
        while berth.attach(&name, "ps -o args").contains("sh -l") {
            assert!(
                std::time::Instant::now() < deadline,
                "the page's shell still runs"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        b.close().await;
    });
    assert!(
        berth.log().contains("from another site's page"),
        "{}",
        berth.log()
    );
}

/// Waits until the API lists exactly these snapshots of the container.
async fn wait_snapshots(berth: &Berth, id: &str, expected: &[&str]) {
    let url = berth.url(&format!("/v1/containers/{id}/snapshots"));
    for _ in 0..600 {
        let (_, answer) = api_get(&url).await;
        let names: Vec<&str> = answer["snapshots"]
            .as_array()
            .map(|list| list.iter().filter_map(|s| s["name"].as_str()).collect())
            .unwrap_or_default();
        if names == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the snapshots never became {expected:?}");
}

/// A container's page takes a snapshot, restores it after a confirmation
/// page (the running container's file is back, and it runs again), and
/// deletes it; the storage page lists the pool with its space; the create
/// form offers the pools. Every page axe-clean, at phone width too.
#[test]
fn snapshots_are_taken_restored_and_deleted_from_a_containers_page() {
    let _serial = serial();
    let berth = Berth::start();
    let name = unique_name("snap");
    let id = berth.create(&name, None);
    berth.act(&id, "start");
    berth.attach(&name, "echo before > /root/marker");
    browser::run(async {
        let b = Browser::start().await;
        let page = berth.url(&format!("/containers/{id}"));
        b.goto(&page).await;
        b.find("#snapshots").await;
        b.assert_accessible("a container's page with no snapshots")
            .await;
        b.fill("name", "before-change").await;
        b.click_to_navigate("form[action$='/snapshots'] button[type=submit]")
            .await;
        assert!(b.text(".flash-success").await.contains("before-change"));
        wait_snapshots(&berth, &id, &["before-change"]).await;
        b.goto(&page).await;
        assert_eq!(b.text("tr[data-snapshot] th").await, "before-change");
        b.assert_accessible("a container's page with a snapshot")
            .await;

        berth.attach(&name, "echo after > /root/marker");
        b.click_to_navigate("tr[data-snapshot] a[href$='/restore']")
            .await;
        assert_eq!(
            b.text("h1").await,
            format!("Restore {name} to snapshot before-change?")
        );
        b.assert_accessible("the restore confirmation").await;
        b.click_to_navigate(".confirm button[type=submit]").await;
        assert!(b.text(".flash-success").await.contains("Restore"));
        let newest_job = "[data-jobs-of] tr[data-job]:first-child [data-job-field=status]";
        b.wait_text(newest_job, "done").await;
        assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));
        assert_eq!(berth.attach(&name, "cat /root/marker").trim(), "before");

        b.click_to_navigate("tr[data-snapshot] form[action$='/delete'] button")
            .await;
        wait_snapshots(&berth, &id, &[]).await;

        b.goto(&berth.url("/storage")).await;
        assert_eq!(b.text("tr[data-pool] th").await, "default");
        b.assert_accessible("the storage page").await;
        b.goto(&berth.url("/containers/new")).await;
        b.find("select[name=storage] option[value=default]").await;
        b.assert_no_console_errors().await;
        b.close().await;

        let phone = Browser::start_sized(390, 844).await;
        phone.goto(&page).await;
        phone.find("#snapshots").await;
        phone
            .assert_accessible("a container's page at phone width")
            .await;
        phone.goto(&berth.url("/storage")).await;
        phone.find("tr[data-pool]").await;
        let fits = phone
            .client
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(fits, json!(true), "the storage page fits a phone");
        phone
            .assert_accessible("the storage page at phone width")
            .await;
        phone.assert_no_console_errors().await;
        phone.close().await;
    });
}
