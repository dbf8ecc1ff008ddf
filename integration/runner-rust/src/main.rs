//! Rust runner of the cross-language scenario suite.
//!
//! Reads one JSON command per line on stdin and answers one JSON line on stdout (see
//! `integration/README.md`, "Runner protocol"). The scenarios themselves live in
//! `integration/run.py`; this program only maps commands onto the public API of `stan-client`.

#![warn(missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use futures::StreamExt;
use serde_json::{json, Map, Value};
use stan_client::{
    Client, ConnectOptions, Event, Message, StartPosition, SubscribeOptions, Subscription,
};
use std::io::{BufRead, Write};

use tokio::sync::{mpsc, oneshot, Notify};

/// A failed command: a stable code (the core's error code, or `RUNNER`) and a text.
struct Failure {
    code: String,
    message: String,
}

impl From<stan_client::Error> for Failure {
    fn from(e: stan_client::Error) -> Self {
        Failure {
            code: e.code().to_string(),
            message: e.to_string(),
        }
    }
}

fn runner_error(message: impl Into<String>) -> Failure {
    Failure {
        code: "RUNNER".into(),
        message: message.into(),
    }
}

type Reply = Result<Map<String, Value>, Failure>;

/// What the pump task of a subscription hands over.
enum Item {
    Msg(Value),
    End(Option<String>),
}

/// Requests to the task that owns a subscription.
enum Control {
    Close(oneshot::Sender<stan_client::Result<()>>),
    Unsubscribe(oneshot::Sender<stan_client::Result<()>>),
}

struct Conn {
    client: Client,
    events: Arc<Mutex<Vec<String>>>,
    changed: Arc<Notify>,
}

struct Sub {
    items: mpsc::UnboundedReceiver<Item>,
    control: mpsc::UnboundedSender<Control>,
    unacked: Arc<Mutex<HashMap<u64, Message>>>,
}

#[derive(Default)]
struct State {
    conns: HashMap<String, Conn>,
    subs: HashMap<String, Sub>,
}

fn event_name(ev: &Event) -> &'static str {
    match ev {
        Event::NatsDisconnected => "NatsDisconnected",
        Event::NatsReconnected => "NatsReconnected",
        Event::ConnectionLost { .. } => "ConnectionLost",
        Event::Resumed { .. } => "Resumed",
        Event::ResumeFailed { .. } => "ResumeFailed",
        Event::Closed => "Closed",
        _ => "Other",
    }
}

fn message_json(m: &Message) -> Value {
    json!({
        "seq": m.sequence(),
        "subject": m.subject(),
        "data": B64.encode(m.data()),
        "redelivered": m.redelivered(),
        "ts_ns": m.timestamp_nanos(),
    })
}

/// Pulls messages of `sub` into `items` until the stream ends; serves close/unsubscribe.
async fn pump(
    mut sub: Subscription,
    items: mpsc::UnboundedSender<Item>,
    mut control: mpsc::UnboundedReceiver<Control>,
    unacked: Arc<Mutex<HashMap<u64, Message>>>,
) {
    let manual = sub.manual_acks();
    loop {
        tokio::select! {
            Some(c) = control.recv() => match c {
                Control::Close(tx) => { let _ = tx.send(sub.close().await); }
                Control::Unsubscribe(tx) => { let _ = tx.send(sub.unsubscribe().await); }
            },
            next = sub.next() => match next {
                Some(Ok(m)) => {
                    let v = message_json(&m);
                    if manual {
                        unacked.lock().expect("unacked lock").insert(m.sequence(), m);
                    }
                    let _ = items.send(Item::Msg(v));
                }
                Some(Err(e)) => {
                    let _ = items.send(Item::End(Some(e.code().to_string())));
                    break;
                }
                None => {
                    let _ = items.send(Item::End(None));
                    break;
                }
            },
        }
    }
    // Answer late close/unsubscribe requests from the ended stream.
    while let Some(c) = control.recv().await {
        match c {
            Control::Close(tx) => {
                let _ = tx.send(sub.close().await);
            }
            Control::Unsubscribe(tx) => {
                let _ = tx.send(sub.unsubscribe().await);
            }
        }
    }
}

fn str_arg<'a>(cmd: &'a Value, key: &str) -> Result<&'a str, Failure> {
    cmd.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| runner_error(format!("missing string field {key}")))
}

fn u64_arg(cmd: &Value, key: &str) -> Result<u64, Failure> {
    cmd.get(key)
        .and_then(Value::as_u64)
        .ok_or_else(|| runner_error(format!("missing integer field {key}")))
}

fn opt_u64(cmd: &Value, key: &str) -> Option<u64> {
    cmd.get(key).and_then(Value::as_u64)
}

fn start_position(spec: &Value) -> Result<StartPosition, Failure> {
    let value = || u64_arg(spec, "value");
    Ok(match str_arg(spec, "kind")? {
        "new_only" => StartPosition::NewOnly,
        "last_received" => StartPosition::LastReceived,
        "first" => StartPosition::First,
        "sequence" => StartPosition::Sequence(value()?),
        "time_ms" => StartPosition::Time(UNIX_EPOCH + Duration::from_millis(value()?)),
        "time_delta_ms" => StartPosition::TimeDelta(Duration::from_millis(value()?)),
        other => return Err(runner_error(format!("unknown start kind {other}"))),
    })
}

async fn next_item(sub: &mut Sub, timeout_ms: u64) -> Option<Item> {
    tokio::time::timeout(Duration::from_millis(timeout_ms), sub.items.recv())
        .await
        .ok()
        .map(|item| item.unwrap_or(Item::End(None)))
}

fn conn<'a>(state: &'a State, cmd: &Value) -> Result<&'a Conn, Failure> {
    let name = str_arg(cmd, "conn")?;
    state
        .conns
        .get(name)
        .ok_or_else(|| runner_error(format!("no connection {name}")))
}

fn sub<'a>(state: &'a mut State, cmd: &Value) -> Result<&'a mut Sub, Failure> {
    let name = str_arg(cmd, "sub")?;
    state
        .subs
        .get_mut(name)
        .ok_or_else(|| runner_error(format!("no subscription {name}")))
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

async fn control(state: &mut State, cmd: &Value, unsubscribe: bool) -> Reply {
    let s = sub(state, cmd)?;
    let (tx, rx) = oneshot::channel();
    let req = if unsubscribe {
        Control::Unsubscribe(tx)
    } else {
        Control::Close(tx)
    };
    s.control
        .send(req)
        .map_err(|_| runner_error("subscription task is gone"))?;
    rx.await
        .map_err(|_| runner_error("subscription task is gone"))??;
    Ok(Map::new())
}

async fn handle(state: &mut State, cmd: &Value) -> Reply {
    match str_arg(cmd, "op")? {
        "hello" => Ok(obj(json!({"language": "rust"}))),
        "connect" => {
            let mut opts =
                ConnectOptions::new(str_arg(cmd, "cluster")?, str_arg(cmd, "client_id")?)
                    .nats_url(str_arg(cmd, "url")?);
            if let Some(on) = cmd.get("auto_resume").and_then(Value::as_bool) {
                opts = opts.auto_resume(on);
            }
            if let Some(ms) = opt_u64(cmd, "connect_wait_ms") {
                opts = opts.connect_wait(Duration::from_millis(ms));
            }
            let client = opts.connect().await?;
            let events = Arc::new(Mutex::new(Vec::new()));
            let changed = Arc::new(Notify::new());
            let mut stream = client.events();
            let (ev, ch) = (events.clone(), changed.clone());
            tokio::spawn(async move {
                while let Some(e) = stream.next().await {
                    ev.lock()
                        .expect("events lock")
                        .push(event_name(&e).to_string());
                    ch.notify_waiters();
                }
            });
            state.conns.insert(
                str_arg(cmd, "conn")?.to_string(),
                Conn {
                    client,
                    events,
                    changed,
                },
            );
            Ok(Map::new())
        }
        "publish" => {
            let data = B64
                .decode(str_arg(cmd, "data")?)
                .map_err(|e| runner_error(format!("bad base64: {e}")))?;
            let guid = conn(state, cmd)?
                .client
                .publish(str_arg(cmd, "subject")?, data)
                .await?;
            Ok(obj(json!({ "guid": guid })))
        }
        "subscribe" => {
            let mut opts = SubscribeOptions::new();
            if let Some(q) = cmd.get("queue").and_then(Value::as_str) {
                opts = opts.queue_group(q);
            }
            if let Some(d) = cmd.get("durable").and_then(Value::as_str) {
                opts = opts.durable_name(d);
            }
            if let Some(spec) = cmd.get("start") {
                opts = opts.start_at(start_position(spec)?);
            }
            if let Some(n) = opt_u64(cmd, "max_in_flight") {
                opts = opts.max_in_flight(
                    u32::try_from(n).map_err(|_| runner_error("max_in_flight too large"))?,
                );
            }
            if let Some(ms) = opt_u64(cmd, "ack_wait_ms") {
                opts = opts.ack_wait(Duration::from_millis(ms));
            }
            let manual = cmd
                .get("manual_acks")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            opts = opts.manual_acks(manual);
            let subscription = conn(state, cmd)?
                .client
                .subscribe(str_arg(cmd, "subject")?, opts)
                .await?;
            let (items_tx, items) = mpsc::unbounded_channel();
            let (control_tx, control_rx) = mpsc::unbounded_channel();
            let unacked = Arc::new(Mutex::new(HashMap::new()));
            tokio::spawn(pump(subscription, items_tx, control_rx, unacked.clone()));
            state.subs.insert(
                str_arg(cmd, "sub")?.to_string(),
                Sub {
                    items,
                    control: control_tx,
                    unacked,
                },
            );
            Ok(Map::new())
        }
        "next" => {
            let timeout = u64_arg(cmd, "timeout_ms")?;
            Ok(match next_item(sub(state, cmd)?, timeout).await {
                None => obj(json!({ "msg": null })),
                Some(Item::Msg(v)) => obj(json!({ "msg": v })),
                Some(Item::End(code)) => obj(json!({ "msg": null, "end": true, "end_code": code })),
            })
        }
        "drain" => {
            let idle = u64_arg(cmd, "idle_ms")?;
            let max = opt_u64(cmd, "max");
            let s = sub(state, cmd)?;
            let mut msgs = Vec::new();
            let mut end = false;
            while max.is_none_or(|m| (msgs.len() as u64) < m) {
                match next_item(s, idle).await {
                    None => break,
                    Some(Item::Msg(v)) => msgs.push(v),
                    Some(Item::End(_)) => {
                        end = true;
                        break;
                    }
                }
            }
            Ok(obj(json!({ "msgs": msgs, "end": end })))
        }
        "ack" => {
            let seq = u64_arg(cmd, "seq")?;
            let m = sub(state, cmd)?
                .unacked
                .lock()
                .expect("unacked lock")
                .remove(&seq)
                .ok_or_else(|| runner_error(format!("no unacked message {seq}")))?;
            m.ack().await?;
            Ok(Map::new())
        }
        "close_sub" => control(state, cmd, false).await,
        "unsubscribe" => control(state, cmd, true).await,
        "close" => {
            conn(state, cmd)?.client.close().await?;
            Ok(Map::new())
        }
        "wait_event" => {
            let c = conn(state, cmd)?;
            let kind = str_arg(cmd, "kind")?;
            let deadline =
                tokio::time::Instant::now() + Duration::from_millis(u64_arg(cmd, "timeout_ms")?);
            loop {
                let notified = c.changed.notified();
                let events = c.events.lock().expect("events lock").clone();
                if events.iter().any(|e| e == kind)
                    || tokio::time::timeout_at(deadline, notified).await.is_err()
                {
                    let found = c
                        .events
                        .lock()
                        .expect("events lock")
                        .iter()
                        .any(|e| e == kind);
                    let events = c.events.lock().expect("events lock").clone();
                    return Ok(obj(json!({ "found": found, "events": events })));
                }
            }
        }
        other => Err(runner_error(format!("unknown op {other}"))),
    }
}

#[tokio::main]
async fn main() {
    // Commands arrive on a plain thread (stdin is blocking) and are handled one at a time.
    let (tx, mut lines) = mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut state = State::default();
    while let Some(line) = lines.recv().await {
        if line.trim().is_empty() {
            continue;
        }
        let (id, reply, exit) = match serde_json::from_str::<Value>(&line) {
            Ok(cmd) => {
                let id = cmd.get("id").cloned().unwrap_or(Value::Null);
                if cmd.get("op").and_then(Value::as_str) == Some("exit") {
                    (id, Ok(Map::new()), true)
                } else {
                    (id, handle(&mut state, &cmd).await, false)
                }
            }
            Err(e) => (
                Value::Null,
                Err(runner_error(format!("bad JSON: {e}"))),
                false,
            ),
        };
        let mut answer = match reply {
            Ok(m) => m,
            Err(f) => obj(json!({ "code": f.code, "error": f.message })),
        };
        answer.insert("ok".into(), Value::Bool(!answer.contains_key("code")));
        answer.insert("id".into(), id);
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{}", Value::Object(answer)).is_err() || out.flush().is_err() {
            break;
        }
        if exit {
            break;
        }
    }
}
