//! berth on PostgreSQL while the server goes away and comes back: every
//! request answers 503 in the error shape (code 5003) and stores nothing,
//! and once the server is back berth answers again on the connections it
//! makes anew. In-process, on a server of the test's own (tests/pg); no
//! root needed.

pub mod local;

/// The database the in-process berths of this binary use (see tests/local).
const DATABASE: local::Database = local::Database::Postgres;

use local::{Local, TEMPLATE};
use rocket::http::Status;
use serde_json::json;

#[rocket::async_test]
async fn while_the_database_is_away_berth_answers_503_and_recovers_after() {
    let mut berth = Local::start().await;
    let body = |name: &str| json!({ "name": name, "ostemplate": TEMPLATE });
    let created = berth.post_json("/v1/containers/", &body("before")).await;
    assert_eq!(created.status, Status::Accepted, "{created:?}");

    berth.postgres.as_mut().unwrap().stop_server();
    berth.get("/v1/containers").await.assert_error(503, 5003);
    berth
        .post_json("/v1/containers/", &body("during"))
        .await
        .assert_error(503, 5003);

    berth.postgres.as_mut().unwrap().start_server();
    let names: Vec<String> = berth
        .containers()
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["before"]);
    let created = berth.post_json("/v1/containers/", &body("after")).await;
    assert_eq!(created.status, Status::Accepted, "{created:?}");
}
