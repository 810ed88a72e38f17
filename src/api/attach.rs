//! `/containers/:id/exec` (a command run to its end, its output in the
//! answer) and `/containers/:id/console` (a WebSocket joined to a login
//! shell on a pseudo-terminal).

use rocket::data::{Data, FromData, Outcome, ToByteUnit};
use rocket::futures::{SinkExt, StreamExt};
use rocket::serde::json::Json;
use rocket::{Request, Route, State};
use rocket_ws::frame::{CloseCode, CloseFrame};
use rocket_ws::{Channel, Message, WebSocket};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::body::read_limited;
use super::query::{at_most_once, Param};
use super::{parse_id, Caller};
use crate::domain::exec::{self as rules, BODY_LIMIT};
use crate::driver::Captured;
use crate::error::{ApiError, ApiResult};
use crate::service::{Attach, TerminalLease};

pub fn routes() -> Vec<Route> {
    rocket::routes![exec, console]
}

/// Fields are JSON values here so that a wrong type is a 422 naming the
/// field (domain::exec checks them), not a parse error.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecBody {
    command: Value,
    #[serde(default)]
    stdin: Option<Value>,
    #[serde(default)]
    timeout: Option<Value>,
    #[serde(default)]
    env: Option<Value>,
}

/// An exec body, read within `BODY_LIMIT` (stdin travels in it).
struct ExecJson(ExecBody);

#[rocket::async_trait]
impl<'r> FromData<'r> for ExecJson {
    type Error = ApiError;

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> Outcome<'r, Self> {
        match read_limited(req, data, BODY_LIMIT.bytes()).await {
            Ok(body) => Outcome::Success(ExecJson(body)),
            Err(error) => {
                let error = match error {
                    ApiError::PayloadTooLarge(limit) => ApiError::ExecBodyTooLarge(limit),
                    other => other,
                };
                Outcome::Error((error.status(), error))
            }
        }
    }
}

#[rocket::post("/containers/<id>/exec", data = "<body>")]
async fn exec(
    attach: &State<Attach>,
    caller: Caller,
    id: &str,
    body: Result<ExecJson, ApiError>,
) -> ApiResult<Json<Value>> {
    let id = parse_id(id)?;
    let ExecJson(body) = body?;
    let command = rules::parse(
        &body.command,
        body.stdin.as_ref(),
        body.timeout.as_ref(),
        body.env.as_ref(),
    )
    .map_err(|errors| ApiError::Validation(errors.to_string()))?;
    // Who ran which program, for the operator's log; the arguments may
    // carry secrets and are left out.
    log::info!(
        "exec on container {id} by {}: {:?} ({} argument(s))",
        caller.0.as_deref().unwrap_or("anonymous"),
        command.argv[0],
        command.argv.len() - 1
    );
    let output = attach.exec(id, command).await?;
    let mut answer = Map::new();
    answer.insert("message".into(), "success".into());
    answer.insert("exit_code".into(), output.exit_code.into());
    answer.insert("timed_out".into(), output.timed_out.into());
    put_stream(&mut answer, "stdout", output.stdout);
    put_stream(&mut answer, "stderr", output.stderr);
    Ok(Json(Value::Object(answer)))
}

/// `NAME` as text when it is UTF-8 (`NAME_encoding: "utf-8"`), base64
/// otherwise, and `NAME_truncated`. A character cut in two by the limit is
/// dropped rather than making the whole stream base64.
fn put_stream(answer: &mut Map<String, Value>, name: &str, mut captured: Captured) {
    if captured.truncated {
        if let Err(error) = std::str::from_utf8(&captured.bytes) {
            if error.error_len().is_none() {
                captured.bytes.truncate(error.valid_up_to());
            }
        }
    }
    let (text, encoding) = match String::from_utf8(captured.bytes) {
        Ok(text) => (text, "utf-8"),
        Err(error) => {
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD.encode(error.as_bytes());
            (encoded, "base64")
        }
    };
    answer.insert(name.into(), text.into());
    answer.insert(format!("{name}_encoding"), encoding.into());
    answer.insert(format!("{name}_truncated"), captured.truncated.into());
}

/// A message a client may send as a text frame.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum Control {
    Resize { cols: u64, rows: u64 },
}

/// The terminal: binary frames carry its bytes both ways; text frames
/// from the client are `{"type":"resize","cols":…,"rows":…}`. Anything
/// else is ignored (and logged once per connection). Cross-site pages are
/// refused by the request gate before this runs.
#[rocket::get("/containers/<id>/console?<cols>&<rows>")]
async fn console(
    attach: &State<Attach>,
    caller: Caller,
    id: &str,
    cols: Param<'_>,
    rows: Param<'_>,
    ws: Option<WebSocket>,
) -> ApiResult<Channel<'static>> {
    let id = parse_id(id)?;
    let side = |name: &str, values: Param<'_>, default: u64| -> Result<u64, ApiError> {
        at_most_once(name, values)?.map_or(Ok(default), |raw| {
            raw.parse::<u64>()
                .ok()
                .filter(|value| *value >= 1)
                .ok_or_else(|| {
                    ApiError::Validation(format!("{name}: must be a whole number from 1"))
                })
        })
    };
    let (cols, rows) = rules::terminal_size(side("cols", cols, 80)?, side("rows", rows, 24)?);
    let Some(ws) = ws else {
        return Err(ApiError::BadRequest(
            "this route is a WebSocket: send a GET with 'Connection: Upgrade' and \
             'Upgrade: websocket' (see \"Running commands and the terminal\" in the README)"
                .into(),
        ));
    };
    let lease = attach.open_terminal(id, cols, rows).await?;
    let who = caller.0.as_deref().unwrap_or("anonymous").to_owned();
    log::info!("terminal opened on container {id} by {who}");
    Ok(ws.channel(move |stream| {
        Box::pin(async move {
            let result = relay(lease, stream, id).await;
            log::info!("terminal closed on container {id} by {who}");
            result
        })
    }))
}

/// Keystrokes held for the shell at most; past it the client's frames wait
/// (a paste the shell has not read yet).
const PENDING_INPUT_LIMIT: usize = 64 * 1024;

async fn relay(
    lease: TerminalLease,
    mut stream: rocket_ws::stream::DuplexStream,
    id: uuid::Uuid,
) -> rocket_ws::result::Result<()> {
    let terminal = &lease.terminal;
    let mut buffer = vec![0u8; 16 * 1024];
    let mut warned = false;
    // Keystrokes go out as the shell takes them, without holding its output
    // back. They wait for the shell's first output: lxc-attach flushes its
    // terminal's input while it sets up, which would lose them.
    let mut pending: Vec<u8> = Vec::new();
    let mut started = false;
    let ended = loop {
        tokio::select! {
            read = terminal.read(&mut buffer) => match read {
                Ok(0) | Err(_) => break true,
                Ok(read) => {
                    started = true;
                    stream.send(Message::Binary(buffer[..read].to_vec())).await?;
                }
            },
            written = terminal.write_some(&pending), if started && !pending.is_empty() => {
                match written {
                    Ok(written) => drop(pending.drain(..written)),
                    Err(_) => break true,
                }
            },
            message = stream.next(), if pending.len() < PENDING_INPUT_LIMIT => match message {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break false,
                Some(Ok(Message::Binary(bytes))) => pending.extend_from_slice(&bytes),
                Some(Ok(Message::Text(text))) => match serde_json::from_str::<Control>(&text) {
                    Ok(Control::Resize { cols, rows }) => {
                        let (cols, rows) = rules::terminal_size(cols, rows);
                        if let Err(error) = terminal.resize(cols, rows) {
                            log::warn!("terminal on container {id}: {error}");
                        }
                    }
                    Err(error) if !warned => {
                        warned = true;
                        log::warn!(
                            "terminal on container {id}: ignored a text frame that is not a \
                             resize message ({error}); further ones are ignored silently"
                        );
                    }
                    Err(_) => {}
                },
                // Pings are answered by the WebSocket layer itself.
                Some(Ok(_)) => {}
            },
        }
    };
    lease.terminal.close().await;
    if ended {
        let _ = stream
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "the shell ended".into(),
            })))
            .await;
    }
    Ok(())
}
