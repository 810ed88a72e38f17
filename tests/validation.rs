//! Every request berth must refuse: a 4xx answer of exactly
//! `{"code", "message"}` with the documented code, and nothing stored,
//! queued or made on the host.

mod common;

use common::{
    assert_error, file_system_bytes, host_cpus, host_memory_bytes, stubborn_template, unique_name,
    Berth, Options,
};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// What a refused request must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    containers: Value,
    jobs: Value,
    lxc_entries: Vec<String>,
}

fn snapshot(berth: &Berth) -> Snapshot {
    Snapshot {
        containers: berth.containers(),
        jobs: berth.jobs(),
        lxc_entries: berth.lxc_entries(),
    }
}

/// Sends `request`, checks its failure and that nothing changed.
fn refused(
    berth: &Berth,
    status: u16,
    code: i64,
    what: &str,
    request: impl FnOnce() -> (StatusCode, Value),
) -> Value {
    let before = snapshot(berth);
    let answer = request();
    assert!(
        answer.0.as_u16() == status && answer.1["code"] == code,
        "{what}: expected {status}/{code}, got {}: {}",
        answer.0,
        answer.1
    );
    assert_error(&answer, status, code);
    assert_eq!(snapshot(berth), before, "{what} changed something");
    answer.1
}

fn create_body(name: &str, ostemplate: &str, parameters: Option<Value>) -> Value {
    let mut body = json!({ "name": name, "ostemplate": ostemplate });
    if let Some(parameters) = parameters {
        body["parameters"] = parameters;
    }
    body
}

#[test]
fn invalid_names_are_refused() {
    let berth = Berth::start();
    for name in [
        "",
        "-ct",
        ".ct",
        "_ct",
        "a/b",
        "../x",
        "..",
        "a b",
        "ct\nlxc.hook.pre-start = /bin/sh",
        "ct\r",
        "ct\t1",
        "ct\u{0}",
        "é",
        &"x".repeat(64),
    ] {
        let answer = refused(&berth, 422, 1002, &format!("name {name:?}"), || {
            berth.post("/v1/containers/", &create_body(name, "template1", None))
        });
        assert!(
            answer["message"].as_str().unwrap().starts_with("name: "),
            "{answer}"
        );
    }
    // The longest valid name is accepted.
    berth.create(&"x".repeat(63), None);
}

#[test]
fn a_taken_name_is_refused_until_its_container_is_deleted() {
    let berth = Berth::start();
    let name = unique_name("dup");
    let id = berth.create(&name, None);
    let answer = refused(&berth, 409, 3000, "duplicate name", || {
        berth.post("/v1/containers/", &create_body(&name, "busybox", None))
    });
    assert!(answer["message"].as_str().unwrap().contains(&name));
    // Also right after the first was queued (it may still be creating).
    let jobs_before = berth.jobs().as_array().unwrap().len();
    let other = unique_name("dup");
    let (_, job) = berth.queue_create(&other, "template1", None);
    let answer = berth.post("/v1/containers/", &create_body(&other, "template1", None));
    assert_error(&answer, 409, 3000);
    berth.job_done(&job);
    assert_eq!(berth.jobs().as_array().unwrap().len(), jobs_before + 1);
    let named_other = berth
        .containers()
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == other.as_str())
        .count();
    assert_eq!(named_other, 1);
    berth.job_done(&berth.queue(&id, "delete"));
    berth.create(&name, None);
}

#[test]
fn unknown_templates_and_template_paths_are_refused() {
    let berth = Berth::start();
    // A real template file just outside the template directory.
    std::fs::copy(
        common::busybox_template(),
        berth.data_dir().join("outside.tar.gz"),
    )
    .unwrap();
    std::fs::create_dir(berth.template_dir().join("sub")).unwrap();
    std::fs::copy(
        common::busybox_template(),
        berth.template_dir().join("sub/inner.tar.gz"),
    )
    .unwrap();
    let name = unique_name("tpl");
    for (ostemplate, status, code) in [
        ("nope", 422, 2004),
        ("template1.tar.gz", 422, 2004),
        ("TEMPLATE1", 422, 2004),
        ("sub", 422, 2004),
        ("../outside", 422, 1002),
        ("..", 422, 1002),
        ("../templates/template1", 422, 1002),
        ("/etc/passwd", 422, 1002),
        ("a/b", 422, 1002),
        ("sub/inner", 422, 1002),
        ("./template1", 422, 1002),
        ("", 422, 1002),
        ("template1\n", 422, 1002),
        ("template1 ", 422, 1002),
    ] {
        let answer = refused(
            &berth,
            status,
            code,
            &format!("ostemplate {ostemplate:?}"),
            || berth.post("/v1/containers/", &create_body(&name, ostemplate, None)),
        );
        assert!(
            answer["message"].as_str().unwrap().contains("template"),
            "{answer}"
        );
    }
}

/// Each bad value of each parameter, with the field the message names.
fn bad_parameters(berth: &Berth) -> Vec<(Value, &'static str)> {
    let too_many_cpus = host_cpus() + 1;
    // One KiB more than the host has: a limit above the memory limits nothing.
    let too_much_memory_kib = host_memory_bytes() / 1024 + 1;
    // One MiB more than the whole file system that would hold the disk.
    let too_large_disk_mib = file_system_bytes(&berth.lxc_path()) / (1 << 20) + 1;
    vec![
        (json!({ "hostname": "" }), "hostname"),
        (json!({ "hostname": "-web" }), "hostname"),
        (json!({ "hostname": "web-" }), "hostname"),
        (json!({ "hostname": "web_1" }), "hostname"),
        (json!({ "hostname": "a..b" }), "hostname"),
        (json!({ "hostname": "web 1" }), "hostname"),
        (json!({ "hostname": "wéb" }), "hostname"),
        (json!({ "hostname": "a".repeat(64) }), "hostname"),
        (json!({ "hostname": "a".repeat(65) }), "hostname"),
        (json!({ "hostname": 5 }), "hostname"),
        (json!({ "cpus": "0" }), "cpus"),
        (json!({ "cpus": too_many_cpus.to_string() }), "cpus"),
        (json!({ "cpus": too_many_cpus }), "cpus"),
        (json!({ "cpus": "-1" }), "cpus"),
        (json!({ "cpus": -1 }), "cpus"),
        (json!({ "cpus": "1.5" }), "cpus"),
        (json!({ "cpus": 1.5 }), "cpus"),
        (json!({ "cpus": "two" }), "cpus"),
        (json!({ "cpus": true }), "cpus"),
        (json!({ "cpus": ["1"] }), "cpus"),
        (json!({ "memsize": "0", "memsize_units": "M" }), "memsize"),
        (json!({ "memsize": "-64", "memsize_units": "M" }), "memsize"),
        (json!({ "memsize": "1.5", "memsize_units": "G" }), "memsize"),
        (json!({ "memsize": "+64", "memsize_units": "M" }), "memsize"),
        (json!({ "memsize": "1", "memsize_units": "K" }), "memsize"),
        (json!({ "memsize": "64" }), "memsize_units"),
        (
            json!({ "memsize": "64", "memsize_units": "MB" }),
            "memsize_units",
        ),
        (
            json!({ "memsize": "64", "memsize_units": "m" }),
            "memsize_units",
        ),
        (
            json!({ "memsize": "9999999999", "memsize_units": "T" }),
            "memsize",
        ),
        (
            json!({ "memsize": too_much_memory_kib.to_string(), "memsize_units": "K" }),
            "memsize",
        ),
        (json!({ "ipadd": "10.0.0.1/33" }), "ipadd"),
        (json!({ "ipadd": "10.0.0.1/0" }), "ipadd"),
        (json!({ "ipadd": "300.1.1.1" }), "ipadd"),
        (json!({ "ipadd": "10.0.0" }), "ipadd"),
        (json!({ "ipadd": "fd00::1/129" }), "ipadd"),
        (json!({ "ipadd": "10.0.0.1," }), "ipadd"),
        (json!({ "ipadd": "10.0.0.1,,10.0.0.2" }), "ipadd"),
        (json!({ "ipadd": "0.0.0.0" }), "ipadd"),
        (json!({ "ipadd": "127.0.0.1" }), "ipadd"),
        (json!({ "ipadd": "224.0.0.1" }), "ipadd"),
        (json!({ "ipadd": "10.0.0.1,10.0.0.1/24" }), "ipadd"),
        (json!({ "ipadd": "host.example" }), "ipadd"),
        (json!({ "ipadd": 10 }), "ipadd"),
        (json!({ "size": "0", "size_units": "G" }), "size"),
        (json!({ "size": "-1", "size_units": "G" }), "size"),
        (json!({ "size": "1", "size_units": "M" }), "size"),
        (json!({ "size": "ten", "size_units": "G" }), "size"),
        (json!({ "size": "10" }), "size_units"),
        (json!({ "size": "10", "size_units": "X" }), "size_units"),
        (json!({ "size": "99999999", "size_units": "T" }), "size"),
        (json!({ "size": "16777215", "size_units": "T" }), "size"),
        (
            json!({ "size": too_large_disk_mib.to_string(), "size_units": "M" }),
            "size",
        ),
        (
            json!({ "nameserver": "1.1.1.1,1.0.0.1,8.8.8.8,8.8.4.4" }),
            "nameserver",
        ),
        (json!({ "nameserver": "dns.example" }), "nameserver"),
        (json!({ "nameserver": "1.1.1.1/32" }), "nameserver"),
        (json!({ "nameserver": "1.1.1.1;8.8.8.8" }), "nameserver"),
        (json!({ "nameserver": "" }), "nameserver"),
        (json!({ "nameserver": ["1.1.1.1"] }), "nameserver"),
        // Unknown keys, alone or beside valid ones.
        (json!({ "cpu": "1" }), "cpu"),
        (json!({ "hostname": "ok", "ram": "1" }), "ram"),
        (json!({ "HOSTNAME": "ok" }), "HOSTNAME"),
        (
            json!({ "lxc.hook.pre-start": "/bin/sh" }),
            "lxc.hook.pre-start",
        ),
    ]
}

#[test]
fn each_bad_parameter_is_refused_at_create() {
    let berth = Berth::start();
    let name = unique_name("bad");
    for (parameters, field) in bad_parameters(&berth) {
        let what = format!("create with {parameters}");
        let answer = refused(&berth, 422, 1002, &what, || {
            berth.post(
                "/v1/containers/",
                &create_body(&name, "template1", Some(parameters.clone())),
            )
        });
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("parameters.{field}")),
            "{what}: {message}"
        );
    }
    for parameters in [json!("hostname=a"), json!(["hostname"]), json!(5)] {
        refused(
            &berth,
            422,
            1002,
            &format!("parameters {parameters}"),
            || {
                berth.post(
                    "/v1/containers/",
                    &create_body(&name, "template1", Some(parameters.clone())),
                )
            },
        );
    }
    // Several problems are reported at once.
    let answer = refused(&berth, 422, 1002, "several at once", || {
        berth.post(
            "/v1/containers/",
            &create_body(
                "-bad",
                "template1",
                Some(json!({ "cpus": "0", "ipadd": "x" })),
            ),
        )
    });
    let message = answer["message"].as_str().unwrap();
    for field in ["name", "parameters.cpus", "parameters.ipadd"] {
        assert!(message.contains(field), "{message}");
    }
}

#[test]
fn each_bad_parameter_is_refused_by_patch_and_the_stored_ones_stay() {
    let berth = Berth::start();
    let name = unique_name("badpatch");
    let id = berth.create(&name, Some(json!({ "hostname": "kept" })));
    let config = berth.lxc_config(&name);
    let path = format!("/v1/containers/{id}");
    for (parameters, field) in bad_parameters(&berth) {
        let what = format!("PATCH {parameters}");
        let answer = refused(&berth, 422, 1002, &what, || {
            berth.patch(&path, &json!({ "parameters": parameters }))
        });
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("parameters.{field}")),
            "{what}: {message}"
        );
    }
    assert_eq!(berth.lxc_config(&name), config);
    assert_eq!(
        berth.container(&id)["parameters"],
        json!({ "hostname": "kept" })
    );

    // A disk size, once set, cannot be removed.
    let job = berth.patch_parameters(&id, json!({ "size": "32", "size_units": "M" }));
    berth.job_done(&job);
    refused(&berth, 422, 1002, "size removal", || {
        berth.patch(&path, &json!({ "parameters": { "size": null } }))
    });
    // The units stay required while their amount is set.
    let job = berth.patch_parameters(&id, json!({ "memsize": "64", "memsize_units": "M" }));
    berth.job_done(&job);
    refused(&berth, 422, 1002, "units removed", || {
        berth.patch(&path, &json!({ "parameters": { "memsize_units": null } }))
    });
    refused(&berth, 422, 1002, "size too small for its units", || {
        berth.patch(&path, &json!({ "parameters": { "size": "10" } }))
    });
    // Changing only the units changes the amount: the host's bounds apply.
    refused(
        &berth,
        422,
        1002,
        "memory beyond the host by its units",
        || berth.patch(&path, &json!({ "parameters": { "memsize_units": "T" } })),
    );
    refused(
        &berth,
        422,
        1002,
        "disk beyond the file system by its units",
        || berth.patch(&path, &json!({ "parameters": { "size_units": "T" } })),
    );
    assert_eq!(
        berth.container(&id)["parameters"],
        json!({
            "hostname": "kept", "memsize": "64", "memsize_units": "M",
            "size": "32", "size_units": "M"
        })
    );
}

/// Control characters are refused in every field; the LXC config on disk
/// never gains a line.
#[test]
fn control_characters_never_reach_the_lxc_config() {
    let berth = Berth::start();
    let name = unique_name("inject");
    let id = berth.create(&name, None);
    let config = berth.lxc_config(&name);
    let injected = "\nlxc.hook.pre-start = /bin/sh -c 'touch /tmp/pwned'\n";
    let path = format!("/v1/containers/{id}");
    for key in [
        "hostname",
        "cpus",
        "memsize",
        "memsize_units",
        "ipadd",
        "size",
        "size_units",
        "nameserver",
    ] {
        for value in [
            format!("a{injected}"),
            "10.0.0.1\rlxc.x = 1".to_owned(),
            "1\u{0}".to_owned(),
            "1\u{85}".to_owned(),
        ] {
            let answer = refused(&berth, 422, 1002, &format!("PATCH {key}={value:?}"), || {
                berth.patch(&path, &json!({ "parameters": { key: value } }))
            });
            assert!(
                answer["message"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("parameters.{key}")),
                "{answer}"
            );
        }
    }
    // The request of the issue, at create.
    refused(&berth, 422, 1002, "hostname injection at create", || {
        berth.post(
            "/v1/containers/",
            &create_body(
                &unique_name("inject"),
                "template1",
                Some(json!({ "hostname": "a\nlxc.hook.pre-start = /bin/sh" })),
            ),
        )
    });
    refused(&berth, 422, 1002, "name injection at create", || {
        berth.post(
            "/v1/containers/",
            &create_body("ct\nlxc.hook.pre-start = /bin/sh", "template1", None),
        )
    });
    refused(&berth, 422, 1002, "ostemplate injection at create", || {
        berth.post(
            "/v1/containers/",
            &create_body(&unique_name("inject"), "template1\nlxc.x = 1", None),
        )
    });
    let after = berth.lxc_config(&name);
    assert_eq!(after, config);
    assert!(!after.contains("hook") && !after.contains("pwned"));
    // Each line of the config is a berth key, a comment, or nothing.
    for line in after.lines() {
        assert!(
            line.is_empty() || line.starts_with('#') || line.starts_with("lxc."),
            "{line:?}"
        );
    }
    // The container is still fine to use.
    berth.act(&id, "start");
    assert!(!std::path::Path::new("/tmp/pwned").exists());
}

#[test]
fn malformed_requests_are_refused_in_the_error_shape() {
    let berth = Berth::start();
    let name = unique_name("http");
    let id = berth.create(&name, None);
    let json = "application/json";
    let raw = |method: &str, path: &str, content_type: &str, body: &[u8]| {
        berth.send_raw(method, path, content_type, body.to_vec())
    };
    let containers = "/v1/containers/";
    let one = format!("/v1/containers/{id}");

    for (what, body) in [
        ("truncated JSON", &b"{\"name\": \"x\", "[..]),
        ("not JSON", b"name=x&ostemplate=template1"),
        ("empty body", b""),
        (
            "trailing garbage",
            b"{\"name\":\"x\",\"ostemplate\":\"template1\"} x",
        ),
        (
            "invalid UTF-8",
            b"{\"name\":\"\xff\",\"ostemplate\":\"template1\"}",
        ),
    ] {
        refused(&berth, 400, 1000, what, || {
            raw("POST", containers, json, body)
        });
    }
    for (what, body) in [
        (
            "name of the wrong type",
            json!({ "name": 5, "ostemplate": "template1" }),
        ),
        (
            "ostemplate of the wrong type",
            json!({ "name": "x", "ostemplate": ["template1"] }),
        ),
        ("a JSON array", json!([])),
        ("a JSON string", json!("x")),
        ("missing ostemplate", json!({ "name": "x" })),
        ("missing name", json!({ "ostemplate": "template1" })),
        (
            "unknown top-level field",
            json!({ "name": "x", "ostemplate": "template1", "cpus": "1" }),
        ),
    ] {
        refused(&berth, 400, 1001, what, || berth.post(containers, &body));
    }
    for (what, body) in [
        ("PATCH without parameters", json!({})),
        (
            "PATCH with a top-level field",
            json!({ "parameters": {}, "name": "y" }),
        ),
        ("PATCH of the name", json!({ "name": "y" })),
    ] {
        refused(&berth, 400, 1001, what, || berth.patch(&one, &body));
    }
    refused(&berth, 422, 1002, "PATCH parameters not an object", || {
        berth.patch(&one, &json!({ "parameters": "hostname=a" }))
    });

    // Over the 64 KiB JSON limit, as valid JSON.
    let padding = " ".repeat(65 * 1024);
    let big = format!("{{\"name\": \"x\",{padding}\"ostemplate\": \"template1\"}}");
    refused(&berth, 413, 1005, "body over 64 KiB", || {
        raw("POST", containers, json, big.as_bytes())
    });
    let big_patch = format!("{{\"parameters\": {{}}{padding}}}");
    refused(&berth, 413, 1005, "PATCH body over 64 KiB", || {
        raw("PATCH", &one, json, big_patch.as_bytes())
    });
    // Just under the limit is read (and then judged on its content).
    let under = format!(
        "{{\"name\": \"x\",{}\"ostemplate\": \"nope\"}}",
        " ".repeat(60 * 1024)
    );
    refused(&berth, 422, 2004, "body under 64 KiB", || {
        raw("POST", containers, json, under.as_bytes())
    });

    let valid = serde_json::to_vec(&create_body(&unique_name("ct"), "template1", None)).unwrap();
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        refused(&berth, 415, 1004, content_type, || {
            raw("POST", containers, content_type, &valid)
        });
        refused(&berth, 415, 1004, content_type, || {
            raw("PATCH", &one, content_type, b"{\"parameters\":{}}")
        });
    }

    for path in [
        "/v1/nope",
        "/v2/containers",
        "/v1/container",
        "/v1/containers/x/y/z",
        &format!("/v1/containers/{id}/frobnicate"),
        "/v1/jobs/x/y",
    ] {
        refused(&berth, 404, 2000, path, || berth.get(path));
        refused(&berth, 404, 2000, path, || berth.post_empty(path));
    }

    for (path, method, allow) in [
        (containers.to_owned(), "PUT", "GET, POST"),
        (containers.to_owned(), "DELETE", "GET, POST"),
        ("/v0.1/containers".to_owned(), "PATCH", "GET, POST"),
        (one.clone(), "POST", "DELETE, GET, PATCH"),
        (one.clone(), "PUT", "DELETE, GET, PATCH"),
        (format!("{one}/start"), "GET", "POST"),
        (format!("{one}/stop/"), "DELETE", "POST"),
        ("/v1/jobs".to_owned(), "POST", "GET"),
        (format!("/v1/jobs/{id}"), "PUT", "DELETE, GET"),
        (format!("/v1/jobs/{id}/log"), "POST", "GET"),
    ] {
        let before = snapshot(&berth);
        let response = berth
            .client
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                berth.url(&path),
            )
            .header("Content-Type", json)
            .body("{}")
            .send()
            .unwrap();
        let status = response.status();
        let allowed = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().unwrap();
        assert_error(&(status, body), 405, 2001);
        assert_eq!(allowed.as_deref(), Some(allow), "{method} {path}");
        assert_eq!(snapshot(&berth), before);
    }

    for bad in [
        "not-a-uuid",
        "54e21881-8620-4bb0-95f1",
        "54e21881-8620-4bb0-95f1-05f143973a6eX",
        "%0a",
        "54e21881%2F8620",
    ] {
        refused(&berth, 400, 1003, bad, || {
            berth.get(&format!("/v1/containers/{bad}"))
        });
        refused(&berth, 400, 1003, bad, || {
            berth.get(&format!("/v1/jobs/{bad}"))
        });
        refused(&berth, 400, 1003, bad, || {
            berth.patch(
                &format!("/v1/containers/{bad}"),
                &json!({ "parameters": {} }),
            )
        });
        refused(&berth, 400, 1003, bad, || {
            berth.delete(&format!("/v1/containers/{bad}"))
        });
        for action in ["start", "stop", "restart"] {
            refused(&berth, 400, 1003, bad, || {
                berth.post_empty(&format!("/v1/containers/{bad}/{action}"))
            });
        }
    }

    let unknown = "54e21881-8620-4bb0-95f1-05f143973a6e";
    refused(&berth, 404, 2002, "unknown container", || {
        berth.get(&format!("/v1/containers/{unknown}"))
    });
    refused(&berth, 404, 2002, "PATCH unknown container", || {
        berth.patch(
            &format!("/v1/containers/{unknown}"),
            &json!({ "parameters": {} }),
        )
    });
    refused(&berth, 404, 2002, "delete unknown container", || {
        berth.delete(&format!("/v1/containers/{unknown}"))
    });
    refused(&berth, 404, 2002, "start unknown container", || {
        berth.post_empty(&format!("/v1/containers/{unknown}/start"))
    });
    refused(&berth, 404, 2003, "unknown job", || {
        berth.get(&format!("/v1/jobs/{unknown}"))
    });
    // A container id is not a job id.
    refused(&berth, 404, 2003, "container id as a job id", || {
        berth.get(&format!("/v1/jobs/{id}"))
    });
}

/// Once a delete is queued, the container takes no other job: 409, and
/// nothing queued. A stubborn init holds the delete (it stops the running
/// container first) until the test kills the container.
#[test]
fn a_container_being_deleted_takes_no_more_jobs() {
    let berth = Berth::start_with(Options {
        env: vec![("BERTH_STOP_TIMEOUT_SECS".into(), "600".into())],
        templates: vec![],
    });
    berth.install_template("stubborn", stubborn_template());
    let name = unique_name("deleting");
    let id = berth.create_from(&name, "stubborn", None);
    berth.act(&id, "start");
    let delete = berth.queue(&id, "delete");
    berth.wait_running(&delete);
    assert_eq!(berth.container(&id)["status"], "deleting");

    let path = format!("/v1/containers/{id}");
    for answer in [
        refused(&berth, 409, 3001, "PATCH while deleting", || {
            berth.patch(&path, &json!({ "parameters": { "hostname": "late" } }))
        }),
        refused(&berth, 409, 3001, "start while deleting", || {
            berth.post_empty(&format!("{path}/start"))
        }),
        refused(&berth, 409, 3001, "stop while deleting", || {
            berth.post_empty(&format!("{path}/stop"))
        }),
        refused(&berth, 409, 3001, "restart while deleting", || {
            berth.post_empty(&format!("{path}/restart"))
        }),
        refused(&berth, 409, 3001, "delete while deleting", || {
            berth.delete(&path)
        }),
    ] {
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("being deleted"),
            "{answer}"
        );
    }
    // Its name stays taken until the delete is done.
    refused(
        &berth,
        409,
        3000,
        "name of a container being deleted",
        || berth.post("/v1/containers/", &create_body(&name, "stubborn", None)),
    );
    assert_eq!(berth.container(&id)["parameters"], Value::Null);

    berth.force_stop(&name);
    berth.job_done(&delete);
    assert_error(&berth.get(&path), 404, 2002);
    assert!(!berth.lxc_path().join(&name).exists());
    // Nothing but create, start and delete was ever queued.
    let actions: Vec<Value> = berth
        .jobs()
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["action"].clone())
        .collect();
    assert_eq!(actions, [json!("delete"), json!("start"), json!("create")]);
}
