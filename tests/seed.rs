//! Every example of the seed's "API v1 documentation", as written there.

mod common;

use common::{assert_error, unique_name, Berth, Options};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// The seed's create example, then GET on both prefixes, with and without
/// a trailing slash.
#[test]
fn create_then_get_container_as_the_seed_shows() {
    let berth = Berth::start();
    let name = unique_name("ct100");
    let response = berth
        .client
        .post(berth.url("/v1/containers/"))
        .header("Content-Type", "application/json")
        .body(format!(
            "{{\n    \"name\": \"{name}\",\n    \"ostemplate\": \"template1\"\n}}"
        ))
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let body: Value = response.json().unwrap();
    assert_eq!(body["message"], "success");
    let job_id = body["job_id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(job_id).is_ok());
    assert_eq!(location, format!("/v1/jobs/{job_id}"));

    let job = berth.job_done(job_id);
    let container_id = job["entity_id"].as_str().unwrap();
    assert_eq!(job["message"], "success");
    assert_eq!(job["entity_type"], "container");
    assert_eq!(container_id, body["container_id"]);

    for path in [
        format!("/v0.1/containers/{container_id}"),
        format!("/v1/containers/{container_id}"),
        format!("/v1/containers/{container_id}/"),
    ] {
        let (status, answer) = berth.get(&path);
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(answer["message"], "success");
        let container = &answer["container"];
        assert_eq!(container["id"], container_id);
        assert_eq!(container["name"], name.as_str());
        assert_eq!(container["ostemplate"], "template1");
        assert_eq!(container["parameters"], Value::Null);
        let created_at = container["created_at"].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(created_at).is_ok() && created_at.ends_with('Z'),
            "{created_at}"
        );
        assert_eq!(created_at.len(), "2020-10-16T15:16:16Z".len());
        assert_eq!(container["status"], "stopped");
    }
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("STOPPED"));
}

/// The seed's update example with its exact body (tabs and all), then the
/// job it names reaches done and GET shows the merged parameters.
#[test]
fn update_container_as_the_seed_shows() {
    let berth = Berth::start();
    let name = unique_name("ct");
    let id = berth.create(&name, None);
    let seed_body = "{\n    \"parameters\":\n \t{\n                \"hostname\": \"hostname1\",\n\t\t\"cpus\": \"2\",\n\t\t\"memsize\": \"1\",\n\t\t\"memsize_units\": \"G\",\n\t\t\"ipadd\": \"10.0.0.1\",\n\t\t\"size\": \"10\",\n\t\t\"size_units\": \"G\",\n\t\t\"nameserver\": \"1.1.1.1,8.8.8.8\"\n\t}\n}";
    let (status, answer) = berth.send_raw(
        "PATCH",
        &format!("/v0.1/containers/{id}"),
        "application/json",
        seed_body.as_bytes().to_vec(),
    );
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["message"], "success");
    assert_eq!(answer["code"], 0);
    berth.job_done(answer["job_id"].as_str().unwrap());

    let container = berth.container(&id);
    assert_eq!(
        container["parameters"],
        json!({
            "hostname": "hostname1", "cpus": "2", "memsize": "1", "memsize_units": "G",
            "ipadd": "10.0.0.1", "size": "10", "size_units": "G", "nameserver": "1.1.1.1,8.8.8.8"
        })
    );
    assert!(berth.lxc_path().join(&name).join("rootfs.img").exists());
}

#[test]
fn get_job_as_the_seed_shows() {
    let berth = Berth::start();
    let (status, answer) = berth.post(
        "/v0.1/containers",
        &json!({ "name": unique_name("ct"), "ostemplate": "template1" }),
    );
    assert_eq!(status, StatusCode::ACCEPTED);
    let job_id = answer["job_id"].as_str().unwrap();
    berth.job_done(job_id);
    let (status, job) = berth.get(&format!("/v0.1/jobs/{job_id}/"));
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["message"], "success");
    assert_eq!(job["status"], "done");
    assert_eq!(job["entity_type"], "container");
    assert_eq!(job["entity_id"], answer["container_id"]);
    assert_eq!(job["action"], "create");
    assert_eq!(job["id"], job_id);
    for field in ["created_at", "started_at", "finished_at"] {
        assert!(
            job[field].as_str().unwrap().ends_with('Z'),
            "{field}: {job}"
        );
    }
}

/// The seed's failure shape: `{"code", "message"}`.
#[test]
fn failures_have_the_seed_shape() {
    let berth = Berth::start();
    let (status, body) = berth.get("/v1/containers/54e21881-8620-4bb0-95f1-05f143973a6e");
    assert_eq!(status, StatusCode::NOT_FOUND);
    let object = body.as_object().unwrap();
    assert_eq!(object.len(), 2, "{body}");
    assert!(object["code"].is_i64() && object["message"].is_string());
}

/// A newcomer's first run: berth started on an empty template directory,
/// as `cargo run -- serve` is in a fresh checkout, makes `template1` from
/// busybox-static itself, and every seed example then works as written,
/// up to a running container.
#[test]
fn a_fresh_berth_makes_template1_and_the_seed_examples_work() {
    let berth = Berth::start_with(Options {
        templates: vec![],
        ..Options::default()
    });
    assert!(
        berth.template_dir().join("template1.tar.gz").is_file(),
        "no template1 in the empty template directory: {}",
        berth.log()
    );
    assert!(
        berth
            .log()
            .contains("built template 'template1' from busybox-static"),
        "{}",
        berth.log()
    );

    let name = unique_name("ct100");
    let (status, created) = berth.send_raw(
        "POST",
        "/v1/containers/",
        "application/json",
        format!("{{\n    \"name\": \"{name}\",\n    \"ostemplate\": \"template1\"\n}}")
            .into_bytes(),
    );
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    let job = berth.job_done(created["job_id"].as_str().unwrap());
    let id = job["entity_id"].as_str().unwrap().to_owned();
    let (status, answer) = berth.get(&format!("/v0.1/containers/{id}"));
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["container"]["ostemplate"], "template1");

    let seed_body = "{\n    \"parameters\":\n \t{\n                \"hostname\": \"hostname1\",\n\t\t\"cpus\": \"2\",\n\t\t\"memsize\": \"1\",\n\t\t\"memsize_units\": \"G\",\n\t\t\"ipadd\": \"10.0.0.1\",\n\t\t\"size\": \"10\",\n\t\t\"size_units\": \"G\",\n\t\t\"nameserver\": \"1.1.1.1,8.8.8.8\"\n\t}\n}";
    let (status, patched) = berth.send_raw(
        "PATCH",
        &format!("/v0.1/containers/{id}"),
        "application/json",
        seed_body.as_bytes().to_vec(),
    );
    assert_eq!(status, StatusCode::OK, "{patched}");
    let job_id = patched["job_id"].as_str().unwrap();
    berth.job_done(job_id);
    let (status, job) = berth.get(&format!("/v0.1/jobs/{job_id}"));
    assert_eq!(status, StatusCode::OK, "{job}");
    assert_eq!(job["status"], "done");

    berth.act(&id, "start");
    assert_eq!(berth.lxc_state(&name).as_deref(), Some("RUNNING"));
    assert_eq!(berth.attach(&name, "hostname").trim(), "hostname1");
}

/// An `ostemplate` berth does not have: 2004, and the message says where
/// templates come from.
#[test]
fn an_unknown_template_says_where_templates_come_from() {
    let berth = Berth::start();
    let answer = berth.post(
        "/v1/containers/",
        &json!({ "name": unique_name("ct"), "ostemplate": "debian-12" }),
    );
    assert_error(&answer, 422, 2004);
    let message = answer.1["message"].as_str().unwrap();
    for needed in [
        "template 'debian-12' not found",
        "berth template import",
        "Getting an OS template",
    ] {
        assert!(
            message.contains(needed),
            "{needed:?} missing from: {message}"
        );
    }
}
