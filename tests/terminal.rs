//! The terminal WebSocket (`/v1/containers/:id/console`) from a Rust
//! client against real containers: token auth, the Origin check, sizes and
//! resize messages, the limit of terminals, and no shell left behind.

mod common;

use std::time::{Duration, Instant};

use common::{unique_name, Berth, WebClient};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Opens the terminal with these extra headers; the refusal's status and
/// JSON body when it is refused.
async fn open(
    berth: &Berth,
    id: &str,
    query: &str,
    headers: &[(&str, String)],
) -> Result<Socket, (u16, Value)> {
    let url = format!(
        "ws://127.0.0.1:{}/v1/containers/{id}/console{query}",
        berth.port
    );
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        let name: tokio_tungstenite::tungstenite::http::HeaderName = name.parse().unwrap();
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((socket, _)) => Ok(socket),
        Err(WsError::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            Err((
                response.status().as_u16(),
                serde_json::from_slice(&body).unwrap_or(Value::Null),
            ))
        }
        Err(other) => panic!("connecting: {other}"),
    }
}

/// Reads the terminal until its output contains `wanted`; all of it.
async fn read_until<S>(socket: &mut S, wanted: &str) -> String
where
    S: futures::Stream<Item = Result<Message, WsError>> + Unpin,
{
    let mut seen = String::new();
    let read = async {
        while !seen.contains(wanted) {
            match socket.next().await {
                Some(Ok(Message::Binary(bytes))) => seen.push_str(&String::from_utf8_lossy(&bytes)),
                Some(Ok(_)) => {}
                other => panic!("the terminal ended before {wanted:?}: {other:?}\n{seen}"),
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .is_err()
    {
        panic!("no {wanted:?} from the terminal; it wrote:\n{seen}");
    }
    seen
}

async fn type_line(socket: &mut Socket, line: &str) {
    socket
        .send(Message::Binary(format!("{line}\n").into_bytes()))
        .await
        .unwrap();
}

fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

fn running_container(berth: &Berth) -> (String, String) {
    let name = unique_name("term");
    let id = berth.create(&name, None);
    berth.act(&id, "start");
    (id, name)
}

fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_token_opens_a_terminal_that_resizes_and_ignores_unknown_frames() {
    let mut berth = Berth::start_with_env(&[("BERTH_AUTH", "token")]);
    let token = berth.create_token("ops");
    berth.authorize(&token);
    let (id, name) = running_container(&berth);
    let rt = runtime();
    rt.block_on(async {
        // No token, a wrong one: refused before anything opens.
        let (status, body) = open(&berth, &id, "", &[]).await.err().unwrap();
        assert_eq!((status, body["code"].clone()), (401, json!(4000)), "{body}");
        let (status, _) = open(&berth, &id, "", &[bearer("berth_wrong")])
            .await
            .err()
            .unwrap();
        assert_eq!(status, 401);

        let mut socket = open(&berth, &id, "?cols=100&rows=30", &[bearer(&token)])
            .await
            .unwrap();
        type_line(&mut socket, "hostname; stty size").await;
        let seen = read_until(&mut socket, "30 100").await;
        assert!(seen.contains(&name), "{seen}");

        // Frames that are not documented messages change nothing.
        for junk in [
            "hello",
            "{\"type\":\"shout\"}",
            "{\"type\":\"resize\",\"cols\":\"x\"}",
        ] {
            socket.send(Message::Text(junk.into())).await.unwrap();
        }
        let resize = json!({ "type": "resize", "cols": 132, "rows": 43 });
        socket
            .send(Message::Text(resize.to_string()))
            .await
            .unwrap();
        type_line(&mut socket, "stty size").await;
        read_until(&mut socket, "43 132").await;

        // A paste of many lines arrives whole, in order.
        let paste = format!("echo {}\n", "x".repeat(70)).repeat(200);
        socket
            .send(Message::Binary(paste.into_bytes()))
            .await
            .unwrap();
        type_line(&mut socket, "echo pasted-$((1 + 1))").await;
        read_until(&mut socket, "pasted-2").await;

        // The shell ending closes the WebSocket.
        type_line(&mut socket, "exit").await;
        let close = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match socket.next().await {
                    Some(Ok(Message::Close(frame))) => return frame,
                    Some(Ok(_)) => {}
                    other => panic!("no close frame: {other:?}"),
                }
            }
        })
        .await
        .expect("a close frame");
        assert_eq!(close.unwrap().reason, "the shell ended");
    });

    // The console's session cookie opens it from berth's own pages only.
    let web = WebClient::new(&berth);
    let csrf = web.csrf("/login");
    let login = web.post("/login", &[("csrf", &csrf), ("token", &token)]);
    assert_eq!(login.status().as_u16(), 303);
    let cookie = format!("berth_session={}", web.cookie("berth_session").unwrap());
    let this_site = format!("http://127.0.0.1:{}", berth.port);
    rt.block_on(async {
        let session = [("Cookie", cookie.clone()), ("Origin", this_site.clone())];
        let mut socket = open(&berth, &id, "", &session).await.unwrap();
        type_line(&mut socket, "echo cookie-$((20 + 22))").await;
        read_until(&mut socket, "cookie-42").await;
        let elsewhere = [
            ("Cookie", cookie.clone()),
            ("Origin", "http://evil.example".into()),
        ];
        let (status, body) = open(&berth, &id, "", &elsewhere).await.err().unwrap();
        assert_eq!((status, body["code"].clone()), (403, json!(4002)), "{body}");
    });

    let log = berth.log();
    assert_eq!(
        log.matches("ignored a text frame").count(),
        1,
        "logged once per connection:\n{log}"
    );
}

#[test]
fn cross_site_pages_get_no_terminal_and_a_closed_one_leaves_no_shell() {
    let berth = Berth::start();
    let (id, name) = running_container(&berth);
    let stopped = berth.create(&unique_name("term-off"), None);
    let rt = runtime();
    let origin = |host: &str| ("Origin", host.to_owned());
    let this_site = format!("http://127.0.0.1:{}", berth.port);

    rt.block_on(async {
        // Even without tokens (a loopback berth), another site's page
        // cannot open a shell.
        for other in ["http://evil.example", "null", "https://127.0.0.1:1"] {
            let (status, body) = open(&berth, &id, "", &[origin(other)]).await.err().unwrap();
            assert_eq!(
                (status, body["code"].clone()),
                (403, json!(4002)),
                "{other}: {body}"
            );
        }
        let (status, body) = open(&berth, &stopped, "", &[]).await.err().unwrap();
        assert_eq!((status, body["code"].clone()), (409, json!(3030)), "{body}");
        let (status, body) = open(&berth, &id, "?cols=x", &[]).await.err().unwrap();
        assert_eq!((status, body["code"].clone()), (422, json!(1002)), "{body}");
    });

    // Four at once (one from this site's own page), a fifth is refused.
    let mut sockets = rt.block_on(async {
        let mut sockets = vec![open(&berth, &id, "", &[origin(&this_site)]).await.unwrap()];
        for _ in 0..3 {
            sockets.push(open(&berth, &id, "", &[]).await.unwrap());
        }
        let (status, body) = open(&berth, &id, "", &[]).await.err().unwrap();
        assert_eq!((status, body["code"].clone()), (409, json!(3032)), "{body}");
        // Deaf to the hang-up that closing a terminal sends: only killing
        // it ends it.
        type_line(&mut sockets[0], "trap '' HUP; sleep 5555").await;
        sockets
    });
    eventually("sleep 5555 running", || {
        berth.attach(&name, "ps -o args").contains("sleep 5555")
    });

    // Closing the terminal ends its shell and what runs in it; its place
    // is free again.
    rt.block_on(async {
        let mut first = sockets.remove(0);
        first.close(None).await.unwrap();
        drop(first);
    });
    eventually("the closed terminal's shell ending", || {
        !berth.attach(&name, "ps -o args").contains("sleep 5555")
    });
    rt.block_on(async {
        // The place is given back once berth has reaped the closed
        // terminal's lxc-attach, a moment after its shell is gone.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut socket = loop {
            match open(&berth, &id, "", &[]).await {
                Ok(socket) => break socket,
                Err((409, body)) if body["code"] == 3032 => {
                    assert!(std::time::Instant::now() < deadline, "{body}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(other) => panic!("{other:?}"),
            }
        };
        type_line(&mut socket, "echo $((6 * 7))").await;
        read_until(&mut socket, "42").await;
        // Dropped without a close frame: the same.
        for socket in sockets {
            drop(socket);
        }
    });
    // Every shell (login shells: `-sh` or `/bin/sh -l`) of the dropped
    // ones ends; the last one was dropped as the runtime ended.
    drop(rt);
    eventually("every terminal's shell ending", || {
        !berth
            .attach(&name, "ps -o args")
            .lines()
            .any(|line| line.contains("sh -l"))
    });
}
