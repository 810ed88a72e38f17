//! `POST /v1/containers/:id/exec` against real containers: the argument
//! vector as it is, exit codes, stdin, environment, output limits, the
//! timeout that kills everything the command started, and bad input.

mod common;

use std::time::{Duration, Instant};

use common::{assert_error, unique_name, Berth};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn exec(berth: &Berth, id: &str, body: Value) -> Value {
    let (status, answer) = berth.post(&format!("/v1/containers/{id}/exec"), &body);
    assert_eq!(status, StatusCode::OK, "{body}: {answer}");
    assert_eq!(answer["message"], "success", "{answer}");
    answer
}

/// Waits until `done` holds, failing after a generous deadline.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn running_container(berth: &Berth, prefix: &str) -> (String, String) {
    let name = unique_name(prefix);
    let id = berth.create(&name, None);
    berth.act(&id, "start");
    (id, name)
}

#[test]
fn exec_runs_the_argument_vector_and_answers_exit_code_and_output() {
    let berth = Berth::start();
    let (id, _name) = running_container(&berth, "exec");

    let answer = exec(&berth, &id, json!({ "command": ["ls", "/"] }));
    assert_eq!(answer["exit_code"], 0, "{answer}");
    assert_eq!(answer["timed_out"], false);
    assert!(
        answer["stdout"]
            .as_str()
            .unwrap()
            .lines()
            .any(|l| l == "bin"),
        "{answer}"
    );
    assert_eq!(answer["stdout_encoding"], "utf-8");
    assert_eq!(answer["stdout_truncated"], false);
    assert_eq!(answer["stderr"], "");

    let answer = exec(
        &berth,
        &id,
        json!({ "command": ["sh", "-c", "echo oops >&2; exit 3"] }),
    );
    assert_eq!(answer["exit_code"], 3, "{answer}");
    assert_eq!(answer["stderr"], "oops\n");

    // No shell in between: the arguments arrive as they were sent.
    let answer = exec(
        &berth,
        &id,
        json!({ "command": ["echo", "a  b; echo $HOME", "*"] }),
    );
    assert_eq!(answer["stdout"], "a  b; echo $HOME *\n", "{answer}");

    let answer = exec(
        &berth,
        &id,
        json!({ "command": ["cat"], "stdin": "line 1\nline 2\n" }),
    );
    assert_eq!(answer["stdout"], "line 1\nline 2\n", "{answer}");

    // The environment is exactly what the request gives (berth's own never
    // leaks in).
    let answer = exec(
        &berth,
        &id,
        json!({ "command": ["env"], "env": { "GREETING": "hello world", "_X1": "" } }),
    );
    let env = answer["stdout"].as_str().unwrap();
    assert!(env.lines().any(|l| l == "GREETING=hello world"), "{env}");
    assert!(env.lines().any(|l| l == "_X1="), "{env}");
    assert!(!env.contains("BERTH_") && !env.contains("ROCKET_"), "{env}");

    // Bytes that are not UTF-8 come back base64-encoded, and say so.
    let answer = exec(&berth, &id, json!({ "command": ["printf", "\\377\\376"] }));
    assert_eq!(answer["stdout_encoding"], "base64", "{answer}");
    assert_eq!(answer["stdout"], "//4=");

    // Output past the limit is dropped and flagged, the command still ends.
    let answer = exec(
        &berth,
        &id,
        json!({ "command": ["sh", "-c", "yes | head -c 3000000; echo done >&2"] }),
    );
    assert_eq!(answer["exit_code"], 0, "{}", answer["stderr"]);
    assert_eq!(answer["stdout_truncated"], true);
    assert_eq!(answer["stdout"].as_str().unwrap().len(), 1024 * 1024);
    assert_eq!(answer["stderr"], "done\n");
    assert_eq!(answer["stderr_truncated"], false);
}

/// Whether a process whose command line contains `marker` runs in the
/// container (busybox `ps` inside it; zombies do not count).
fn runs_inside(berth: &Berth, name: &str, marker: &str) -> bool {
    berth
        .attach(name, "ps -o stat,args")
        .lines()
        .any(|line| line.contains(marker) && !line.trim_start().starts_with('Z'))
}

#[test]
fn a_command_past_its_timeout_is_killed_with_everything_it_started() {
    let berth = Berth::start();
    let (id, name) = running_container(&berth, "exec-kill");

    // A child in the background and one in the foreground.
    let answer = exec(
        &berth,
        &id,
        json!({ "command": ["sh", "-c", "sleep 4321 & sleep 4322"], "timeout": 1 }),
    );
    assert_eq!(answer["timed_out"], true, "{answer}");
    assert_eq!(answer["exit_code"], Value::Null);
    eventually("the timed-out command's processes ending", || {
        !runs_inside(&berth, &name, "sleep 432")
    });

    // What a command leaves in the background when it exits is ended too
    // (it would hold the answer back for ever).
    let answer = exec(
        &berth,
        &id,
        json!({ "command": ["sh", "-c", "sleep 4323 & echo started"] }),
    );
    assert_eq!(answer["exit_code"], 0, "{answer}");
    assert_eq!(answer["stdout"], "started\n");
    eventually("the left-behind process ending", || {
        !runs_inside(&berth, &name, "sleep 4323")
    });

    // One that left the command's process group (a daemon) keeps running
    // and, though it holds the output open, does not hold the answer back.
    let answer = exec(
        &berth,
        &id,
        json!({ "command": ["sh", "-c", "setsid sleep 4324 & echo started"] }),
    );
    assert_eq!(answer["exit_code"], 0, "{answer}");
    assert_eq!(answer["stdout"], "started\n");
    assert!(runs_inside(&berth, &name, "sleep 4324"));
}

#[test]
fn exec_refuses_bad_input_and_containers_that_do_not_run() {
    let berth = Berth::start();
    let name = unique_name("exec-bad");
    let id = berth.create(&name, None);
    let path = format!("/v1/containers/{id}/exec");

    // Stopped: a conflict, nothing runs.
    let answer = berth.post(&path, &json!({ "command": ["true"] }));
    assert_error(&answer, 409, 3030);
    assert!(
        answer.1["message"].as_str().unwrap().contains("running"),
        "{}",
        answer.1
    );

    let unknown = format!("/v1/containers/{}/exec", uuid::Uuid::new_v4());
    assert_error(
        &berth.post(&unknown, &json!({ "command": ["true"] })),
        404,
        2002,
    );

    for (body, field) in [
        (json!({ "command": [] }), "command"),
        (json!({ "command": "ls /" }), "command"),
        (json!({ "command": ["echo", 1] }), "command[1]"),
        (json!({ "command": ["echo"], "timeout": 3601 }), "timeout"),
        (json!({ "command": ["echo"], "timeout": 0 }), "timeout"),
        (
            json!({ "command": ["echo"], "env": { "A-B": "x" } }),
            "env.A-B",
        ),
        (json!({ "command": ["echo"], "env": { "A": 1 } }), "env.A"),
        (json!({ "command": ["echo"], "stdin": ["x"] }), "stdin"),
        (
            json!({ "command": ["echo"], "stdin": "x".repeat(1024 * 1024 + 1) }),
            "stdin",
        ),
    ] {
        let answer = berth.post(&path, &body);
        assert_error(&answer, 422, 1002);
        let message = answer.1["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}:")),
            "{field}: {message}"
        );
    }
    // A body over the exec limit (2 MiB).
    let huge = json!({ "command": ["cat"], "stdin": "x".repeat(2 * 1024 * 1024 + 1) });
    assert_error(&berth.post(&path, &huge), 422, 1030);
    // Unknown fields are refused as in every other body.
    assert_error(
        &berth.post(&path, &json!({ "command": ["true"], "shell": true })),
        400,
        1001,
    );
}
