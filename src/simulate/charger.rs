//! One simulated charge point: a link task that owns the WebSocket (one outstanding call at a
//! time, heartbeats, answers to the central system's calls, offline queueing, reconnect with
//! back-off) and one task per connector that plays the driver sessions.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::{SecondsFormat, Timelike, Utc};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{sleep, sleep_until, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use super::fleet::FleetCharger;
use super::stats::Phase;
use super::{Ack, Control, Ctx};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Why a call got no result.
#[derive(Debug, Clone)]
pub enum Failure {
    /// The central system answered with a CALLERROR.
    Error(String),
    /// Not connected, and the message is not one a charger queues.
    Offline,
    /// No answer in time.
    Timeout,
}

type Answer = Result<Value, Failure>;

/// A call the charger makes.
struct Call {
    action: &'static str,
    payload: Value,
    /// Transaction messages are queued while offline and resent until answered.
    durable: bool,
    reply: Option<oneshot::Sender<Answer>>,
    /// Queued while the charger was offline (counted as replayed when sent).
    backlog: bool,
    attempts: u32,
}

/// What connector tasks use to reach their charger's link.
#[derive(Clone)]
struct Handle {
    tx: mpsc::UnboundedSender<Call>,
    online: Arc<AtomicBool>,
}

impl Handle {
    fn push(
        &self,
        action: &'static str,
        payload: Value,
        durable: bool,
    ) -> oneshot::Receiver<Answer> {
        let (reply, rx) = oneshot::channel();
        let _ = self.tx.send(Call {
            action,
            payload,
            durable,
            reply: Some(reply),
            backlog: false,
            attempts: 0,
        });
        rx
    }

    async fn call(&self, action: &'static str, payload: Value, durable: bool) -> Answer {
        self.push(action, payload, durable)
            .await
            .unwrap_or(Err(Failure::Offline))
    }

    /// Sends without waiting for the answer.
    fn post(&self, action: &'static str, payload: Value, durable: bool) {
        drop(self.push(action, payload, durable));
    }

    fn online(&self) -> bool {
        self.online.load(Relaxed)
    }
}

/// A call from the central system that a connector acts on.
enum Remote {
    Start { id_tag: String },
    Stop,
}

/// Per-connector state the link needs: status for StatusNotification, the running transaction
/// for RemoteStop, and the channel to the connector task.
struct ConnectorSlot {
    status: std::sync::Mutex<&'static str>,
    transaction: AtomicI64,
    remote: mpsc::Sender<Remote>,
}

impl ConnectorSlot {
    fn set_status(&self, s: &'static str) {
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = s;
    }
    fn status(&self) -> &'static str {
        *self.status.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Closes a connection with the closing handshake (waits briefly for the server's close).
async fn hang_up(mut socket: Socket) {
    if socket.close(None).await.is_ok() {
        let drain = async { while let Some(Ok(_)) = socket.next().await {} };
        let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
    }
}

fn timestamp() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn exp_secs(rng: &mut StdRng, mean: f64) -> Duration {
    let u: f64 = rng.gen_range(0.0..1.0);
    Duration::from_secs_f64((-mean.max(0.0) * (1.0 - u).ln()).min(86_400.0))
}

fn local_hour() -> f64 {
    let now = Utc::now().with_timezone(&chrono_tz::Europe::Stockholm);
    f64::from(now.hour()) + f64::from(now.minute()) / 60.0
}

/// Runs one charger until the simulation finishes and its queue is drained.
pub async fn run(ctx: Arc<Ctx>, spec: FleetCharger, index: usize, delay: Duration) {
    sleep(delay).await;
    let mut rng =
        StdRng::seed_from_u64(ctx.cfg.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let (tx, rx) = mpsc::unbounded_channel();
    let online = Arc::new(AtomicBool::new(false));
    let handle = Handle {
        tx,
        online: online.clone(),
    };
    let mut slots = Vec::new();
    let mut tasks = Vec::new();
    for connector in 1..=spec.connectors.max(1) {
        let (remote_tx, remote_rx) = mpsc::channel(4);
        let slot = Arc::new(ConnectorSlot {
            status: std::sync::Mutex::new("Available"),
            transaction: AtomicI64::new(0),
            remote: remote_tx,
        });
        slots.push(slot.clone());
        let seed = rng.gen();
        tasks.push(tokio::spawn(connector_loop(
            ctx.clone(),
            spec.clone(),
            connector,
            handle.clone(),
            slot,
            remote_rx,
            seed,
        )));
    }
    drop(handle);
    let mut link = Link {
        ctx,
        spec,
        slots,
        rx,
        online,
        outbox: VecDeque::new(),
        urgent: VecDeque::new(),
        rng,
        next_id: 1,
    };
    link.run().await;
    for t in tasks {
        let _ = t.await;
    }
}

struct Inflight {
    id: String,
    call: Call,
    sent: Instant,
    phase: Phase,
}

struct Link {
    ctx: Arc<Ctx>,
    spec: FleetCharger,
    slots: Vec<Arc<ConnectorSlot>>,
    rx: mpsc::UnboundedReceiver<Call>,
    online: Arc<AtomicBool>,
    /// Calls from the connectors, in order.
    outbox: VecDeque<Call>,
    /// The link's own calls (boot, statuses, heartbeats, triggered messages), sent first.
    urgent: VecDeque<Call>,
    rng: StdRng,
    next_id: u64,
}

enum Event {
    Frame(Option<Result<Message, tokio_tungstenite::tungstenite::Error>>),
    Call(Option<Call>),
    Timeout,
    Heartbeat,
    Control,
    GoOffline,
}

impl Link {
    fn internal(action: &'static str, payload: Value) -> Call {
        Call {
            action,
            payload,
            durable: false,
            reply: None,
            backlog: false,
            attempts: 0,
        }
    }

    /// Takes a call from a connector: queued, or refused at once when offline and volatile.
    fn absorb(&mut self, mut call: Call, connected: bool) {
        if !connected {
            if !call.durable {
                if let Some(r) = call.reply.take() {
                    let _ = r.send(Err(Failure::Offline));
                }
                return;
            }
            call.backlog = true;
            self.ctx.stats.queued.fetch_add(1, Relaxed);
        }
        self.outbox.push_back(call);
    }

    /// Connection lost: volatile calls are dropped, durable ones wait for the next connection.
    fn went_offline(&mut self, inflight: Option<Inflight>) {
        self.online.store(false, Relaxed);
        self.ctx.stats.disconnects.fetch_add(1, Relaxed);
        self.ctx.stats.connected.fetch_sub(1, Relaxed);
        if let Some(f) = inflight {
            self.outbox.push_front(f.call);
        }
        self.urgent.clear();
        let mut kept = VecDeque::with_capacity(self.outbox.len());
        for mut call in self.outbox.drain(..) {
            if call.durable {
                if !call.backlog {
                    call.backlog = true;
                    self.ctx.stats.queued.fetch_add(1, Relaxed);
                }
                kept.push_back(call);
            } else if let Some(r) = call.reply.take() {
                let _ = r.send(Err(Failure::Offline));
            }
        }
        self.outbox = kept;
    }

    async fn connect(&self) -> Result<Socket, String> {
        let url = format!(
            "{}/ocpp/{}",
            self.ctx.cfg.ws_base.trim_end_matches('/'),
            self.spec.id
        );
        let mut req = url.into_client_request().map_err(|e| e.to_string())?;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.spec.id, self.spec.key));
        let headers = req.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("ocpp1.6"),
        );
        headers.insert(
            "Authorization",
            HeaderValue::from_str(&format!("Basic {token}")).map_err(|e| e.to_string())?,
        );
        let connecting = tokio_tungstenite::connect_async(req);
        match tokio::time::timeout(Duration::from_secs(30), connecting).await {
            Ok(Ok((socket, _))) => Ok(socket),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("connect timed out".into()),
        }
    }

    fn status_call(&self, connector: u32, status: &str) -> Call {
        Link::internal(
            "StatusNotification",
            json!({"connectorId": connector, "errorCode": "NoError", "status": status, "timestamp": timestamp()}),
        )
    }

    async fn run(&mut self) {
        let mut control = self.ctx.control.clone();
        let mut socket: Option<Socket> = None;
        let mut inflight: Option<Inflight> = None;
        let mut booted = false;
        let mut ever_connected = false;
        let mut backoff = Duration::from_secs(1);
        let mut offline_until: Option<Instant> = None;
        let mut seen_outage = control.borrow().outage.map_or(0, |o| o.id);
        let mut heartbeat = Duration::from_secs(300);
        let mut next_heartbeat = Instant::now() + heartbeat;
        let mut next_drop = self.next_random_outage();
        let mut senders_gone = false;
        loop {
            if senders_gone && self.outbox.is_empty() && inflight.is_none() {
                break;
            }
            let finishing = control.borrow().finishing;
            // Offline: wait for the outage to end, then connect with back-off.
            if socket.is_none() {
                let now = Instant::now();
                if let Some(until) = offline_until.filter(|u| *u > now) {
                    tokio::select! {
                        () = sleep_until(until) => {}
                        call = self.rx.recv(), if !senders_gone => match call {
                            Some(c) => self.absorb(c, false),
                            None => senders_gone = true,
                        },
                        _ = control.changed() => {}
                    }
                    continue;
                }
                if finishing && senders_gone && self.outbox.is_empty() {
                    break;
                }
                match self.connect().await {
                    Ok(s) => {
                        socket = Some(s);
                        offline_until = None;
                        backoff = Duration::from_secs(1);
                        let stats = &self.ctx.stats;
                        stats.connects.fetch_add(1, Relaxed);
                        stats.connected.fetch_add(1, Relaxed);
                        if ever_connected {
                            stats.reconnects.fetch_add(1, Relaxed);
                        }
                        ever_connected = true;
                        self.online.store(true, Relaxed);
                        if !booted {
                            self.urgent.push_back(Link::internal(
                                "BootNotification",
                                json!({"chargePointVendor": "laddkoll", "chargePointModel": "simulator",
                                       "chargePointSerialNumber": self.spec.id, "firmwareVersion": env!("CARGO_PKG_VERSION")}),
                            ));
                        }
                        self.urgent.push_back(self.status_call(0, "Available"));
                        for (i, slot) in self.slots.iter().enumerate() {
                            let call = self.status_call(i as u32 + 1, slot.status());
                            self.urgent.push_back(call);
                        }
                    }
                    Err(e) => {
                        self.ctx.stats.connect_failures.fetch_add(1, Relaxed);
                        tracing::debug!(charger = %self.spec.id, error = %e, "connect failed");
                        let jitter = self.rng.gen_range(0.5..1.0);
                        offline_until = Some(Instant::now() + backoff.mul_f64(jitter));
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
                continue;
            }
            // Connected: send the next call when none is outstanding.
            if inflight.is_none() {
                let next = self.urgent.pop_front().or_else(|| self.outbox.pop_front());
                if let Some(call) = next {
                    let id = format!("{}", self.next_id);
                    self.next_id += 1;
                    let frame = json!([2, id, call.action, call.payload]).to_string();
                    let sock = socket.as_mut().expect("connected");
                    if call.backlog {
                        self.ctx.stats.replayed.fetch_add(1, Relaxed);
                    }
                    self.ctx.stats.on_sent(call.action);
                    let phase = self.ctx.stats.phase();
                    let sent = Instant::now();
                    inflight = Some(Inflight {
                        id,
                        call,
                        sent,
                        phase,
                    });
                    if sock.send(Message::text(frame)).await.is_err() {
                        socket = None;
                        self.went_offline(inflight.take());
                    }
                    continue;
                }
            }
            let deadline = inflight
                .as_ref()
                .map(|f| f.sent + self.ctx.cfg.call_timeout);
            let sock = socket.as_mut().expect("connected");
            let event = tokio::select! {
                frame = sock.next() => Event::Frame(frame),
                call = self.rx.recv(), if !senders_gone => Event::Call(call),
                () = sleep_until(deadline.unwrap_or(next_heartbeat)), if deadline.is_some() => Event::Timeout,
                () = sleep_until(next_heartbeat) => Event::Heartbeat,
                () = sleep_until(next_drop.unwrap_or(next_heartbeat)), if next_drop.is_some() => Event::GoOffline,
                _ = control.changed() => Event::Control,
            };
            match event {
                Event::Frame(Some(Ok(Message::Text(text)))) => {
                    let reply =
                        self.on_frame(text.as_str(), &mut inflight, &mut booted, &mut heartbeat);
                    if let Some(reply) = reply {
                        let sock = socket.as_mut().expect("connected");
                        if sock.send(Message::text(reply)).await.is_err() {
                            socket = None;
                            self.went_offline(inflight.take());
                        }
                    }
                    if booted && next_heartbeat > Instant::now() + heartbeat {
                        next_heartbeat = Instant::now() + heartbeat;
                    }
                }
                Event::Frame(Some(Ok(Message::Close(_)) | Err(_)) | None) => {
                    socket = None;
                    self.went_offline(inflight.take());
                    let jitter = self.rng.gen_range(0.5..1.0);
                    offline_until = Some(Instant::now() + backoff.mul_f64(jitter));
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
                Event::Frame(Some(Ok(_))) => {}
                Event::Call(Some(call)) => self.absorb(call, true),
                Event::Call(None) => senders_gone = true,
                Event::Timeout => {
                    self.ctx.stats.timeouts.fetch_add(1, Relaxed);
                    let mut f = inflight.take().expect("a call was outstanding");
                    if f.call.durable {
                        // Resend on a fresh connection, as a charger does after a lost answer.
                        self.outbox.push_front(f.call);
                        if let Some(s) = socket.take() {
                            hang_up(s).await;
                        }
                        self.went_offline(None);
                    } else if let Some(r) = f.call.reply.take() {
                        let _ = r.send(Err(Failure::Timeout));
                    }
                }
                Event::Heartbeat => {
                    if inflight.is_none() && self.outbox.is_empty() && self.urgent.is_empty() {
                        self.urgent
                            .push_back(Link::internal("Heartbeat", json!({})));
                    }
                    next_heartbeat = Instant::now() + heartbeat;
                }
                Event::GoOffline => {
                    next_drop = self.next_random_outage();
                    let length = exp_secs(&mut self.rng, self.ctx.cfg.offline_secs);
                    if let Some(s) = socket.take() {
                        hang_up(s).await;
                    }
                    self.went_offline(inflight.take());
                    offline_until = Some(Instant::now() + length);
                }
                Event::Control => {
                    let outage = control.borrow().outage;
                    if let Some(o) = outage.filter(|o| o.id != seen_outage) {
                        seen_outage = o.id;
                        if let Some(s) = socket.take() {
                            hang_up(s).await;
                        }
                        self.went_offline(inflight.take());
                        let spread = o.window.mul_f64(self.rng.gen_range(0.0..1.0));
                        offline_until = Some(o.ends + spread);
                    }
                }
            }
        }
        if let Some(s) = socket {
            hang_up(s).await;
            self.online.store(false, Relaxed);
            self.ctx.stats.connected.fetch_sub(1, Relaxed);
        }
    }

    fn next_random_outage(&mut self) -> Option<Instant> {
        let rate = self.ctx.cfg.offline_per_hour;
        (rate > 0.0).then(|| Instant::now() + exp_secs(&mut self.rng, 3600.0 / rate))
    }

    /// Handles a text frame; returns the answer to send for a call from the central system.
    fn on_frame(
        &mut self,
        text: &str,
        inflight: &mut Option<Inflight>,
        booted: &mut bool,
        heartbeat: &mut Duration,
    ) -> Option<String> {
        let Ok(Value::Array(frame)) = serde_json::from_str::<Value>(text) else {
            tracing::warn!(charger = %self.spec.id, "unreadable frame from the central system");
            return None;
        };
        let id = frame.get(1).and_then(Value::as_str).unwrap_or_default();
        match frame.first().and_then(Value::as_u64) {
            Some(2) => {
                let action = frame.get(2).and_then(Value::as_str).unwrap_or_default();
                let payload = frame.get(3).cloned().unwrap_or(Value::Null);
                self.ctx.stats.server_calls.fetch_add(1, Relaxed);
                Some(match self.on_server_call(action, &payload) {
                    Ok(answer) => json!([3, id, answer]).to_string(),
                    Err((code, text)) => json!([4, id, code, text, {}]).to_string(),
                })
            }
            Some(kind @ (3 | 4)) => {
                let matches = inflight.as_ref().is_some_and(|f| f.id == id);
                if !matches {
                    tracing::warn!(charger = %self.spec.id, id, "answer to no outstanding call");
                    return None;
                }
                let mut f = inflight.take().expect("matched");
                let error = (kind == 4).then(|| {
                    frame
                        .get(2)
                        .and_then(Value::as_str)
                        .unwrap_or("GenericError")
                        .to_string()
                });
                self.ctx.stats.on_answer(
                    f.call.action,
                    f.phase,
                    f.sent.elapsed(),
                    error.as_deref(),
                );
                if f.call.backlog {
                    self.ctx.stats.queued.fetch_sub(1, Relaxed);
                }
                let answer = match error {
                    None => {
                        let payload = frame.get(2).cloned().unwrap_or(Value::Null);
                        if f.call.action == "BootNotification" {
                            *booted = true;
                            if let Some(i) = payload.get("interval").and_then(Value::as_u64) {
                                *heartbeat = Duration::from_secs(i.clamp(1, 86_400));
                            }
                        }
                        if f.call.durable {
                            if let Some(journal) = &self.ctx.journal {
                                journal.lock().unwrap_or_else(|p| p.into_inner()).push(Ack {
                                    charge_point: self.spec.id.clone(),
                                    action: f.call.action,
                                    payload: f.call.payload.clone(),
                                    answer: payload.clone(),
                                });
                            }
                        }
                        Ok(payload)
                    }
                    Some(code) => {
                        // The central system could not store it: a charger retries.
                        if f.call.durable && code == "InternalError" && f.call.attempts < 5 {
                            f.call.attempts += 1;
                            if f.call.backlog {
                                self.ctx.stats.queued.fetch_add(1, Relaxed);
                            }
                            self.outbox.push_front(f.call);
                            return None;
                        }
                        Err(Failure::Error(code))
                    }
                };
                if let Some(r) = f.call.reply.take() {
                    let _ = r.send(answer);
                }
                None
            }
            _ => None,
        }
    }

    fn slot(&self, payload: &Value) -> Option<&Arc<ConnectorSlot>> {
        let c = payload.get("connectorId").and_then(Value::as_u64)?;
        self.slots.get(usize::try_from(c).ok()?.checked_sub(1)?)
    }

    fn on_server_call(
        &mut self,
        action: &str,
        payload: &Value,
    ) -> Result<Value, (&'static str, String)> {
        let accepted = json!({"status": "Accepted"});
        let rejected = json!({"status": "Rejected"});
        match action {
            "RemoteStartTransaction" => {
                let Some(id_tag) = payload.get("idTag").and_then(Value::as_str) else {
                    return Err(("OccurenceConstraintViolation", "idTag missing".into()));
                };
                let slot = self
                    .slot(payload)
                    .or_else(|| self.slots.iter().find(|s| s.status() == "Available"));
                let sent = slot.is_some_and(|s| {
                    s.remote
                        .try_send(Remote::Start {
                            id_tag: id_tag.to_string(),
                        })
                        .is_ok()
                });
                Ok(if sent { accepted } else { rejected })
            }
            "RemoteStopTransaction" => {
                let tx = payload.get("transactionId").and_then(Value::as_i64);
                let slot = self
                    .slots
                    .iter()
                    .find(|s| tx.is_some_and(|t| s.transaction.load(Relaxed) == t));
                let sent = slot.is_some_and(|s| s.remote.try_send(Remote::Stop).is_ok());
                Ok(if sent { accepted } else { rejected })
            }
            "UnlockConnector" => Ok(json!({"status": "Unlocked"})),
            "Reset" | "ChangeAvailability" | "ClearCache" | "ChangeConfiguration" => Ok(accepted),
            "GetConfiguration" => Ok(json!({"configurationKey": [], "unknownKey": []})),
            "TriggerMessage" => {
                let requested = payload.get("requestedMessage").and_then(Value::as_str);
                let call = match requested {
                    Some("Heartbeat") => Link::internal("Heartbeat", json!({})),
                    Some("StatusNotification") => {
                        let c = payload
                            .get("connectorId")
                            .and_then(Value::as_u64)
                            .unwrap_or(0);
                        let status = self.slot(payload).map_or("Available", |s| s.status());
                        self.status_call(c as u32, status)
                    }
                    Some("BootNotification") => Link::internal(
                        "BootNotification",
                        json!({"chargePointVendor": "laddkoll", "chargePointModel": "simulator"}),
                    ),
                    _ => return Ok(json!({"status": "NotImplemented"})),
                };
                self.urgent.push_back(call);
                Ok(accepted)
            }
            other => Err((
                "NotImplemented",
                format!("the simulator does not implement {other}"),
            )),
        }
    }
}

/// Plays sessions on one connector: idle (shorter when the place is in demand), a driver
/// arrives (card or app), charging with meter values, stop; until the run finishes.
async fn connector_loop(
    ctx: Arc<Ctx>,
    spec: FleetCharger,
    connector: u32,
    handle: Handle,
    slot: Arc<ConnectorSlot>,
    mut remote: mpsc::Receiver<Remote>,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut control = ctx.control.clone();
    let mut register_wh: i64 = rng.gen_range(100_000..5_000_000);
    let rated_w = if connector == 1 { 11_000.0 } else { 50_000.0 };
    // A status change: kept for the link (it resends it after a reconnect) and reported.
    let announce = |status: &'static str| {
        slot.set_status(status);
        handle.post(
            "StatusNotification",
            status_payload(connector, status),
            false,
        );
    };
    loop {
        if control.borrow().finishing {
            break;
        }
        let hour = local_hour();
        let demand = ctx.drivers.demand(spec.location_id, hour);
        let idle = exp_secs(&mut rng, ctx.cfg.idle_secs / demand);
        let mut remote_tag = None;
        tokio::select! {
            () = sleep(idle) => {}
            r = remote.recv() => match r {
                Some(Remote::Start { id_tag }) => remote_tag = Some(id_tag),
                Some(Remote::Stop) => continue,
                None => break,
            },
            _ = finished(&mut control) => break,
        }
        if !handle.online() {
            continue;
        }
        // Who plugs in, and how they start.
        let (driver, id_tag, by_app) = match remote_tag {
            Some(tag) => (None, tag, true),
            None => {
                let Some(d) = ctx.drivers.pick(spec.location_id, hour, &mut rng) else {
                    continue;
                };
                let driver = &ctx.drivers.all[d];
                let started = if driver.uses_app {
                    app_start(&ctx, &spec, connector, d, &mut remote).await
                } else {
                    rfid_authorize(&handle, &driver.account.id_tag).await
                };
                match started {
                    Some(tag) => (Some(d), tag, driver.uses_app),
                    None => {
                        ctx.stats.refused_starts.fetch_add(1, Relaxed);
                        driver.release();
                        continue;
                    }
                }
            }
        };
        let release = || {
            if let Some(d) = driver {
                ctx.drivers.all[d].release();
            }
        };
        announce("Preparing");
        let meter_start = register_wh;
        let started = handle
            .call(
                "StartTransaction",
                json!({"connectorId": connector, "idTag": id_tag, "meterStart": meter_start, "timestamp": timestamp()}),
                true,
            )
            .await;
        let answer = match started {
            Ok(answer) => answer,
            Err(failure) => {
                let why = match &failure {
                    Failure::Error(code) => code.as_str(),
                    Failure::Offline => "offline",
                    Failure::Timeout => "no answer",
                };
                tracing::debug!(charger = %spec.id, why, "StartTransaction failed");
                ctx.stats.refused_starts.fetch_add(1, Relaxed);
                announce("Available");
                release();
                continue;
            }
        };
        let tx = answer
            .get("transactionId")
            .and_then(Value::as_i64)
            .unwrap_or(-1);
        let accepted = answer["idTagInfo"]["status"].as_str() == Some("Accepted");
        ctx.stats.sessions_started.fetch_add(1, Relaxed);
        if by_app {
            ctx.stats.app_starts.fetch_add(1, Relaxed);
        } else {
            ctx.stats.rfid_starts.fetch_add(1, Relaxed);
        }
        slot.transaction.store(tx, Relaxed);
        let mut reason = "DeAuthorized";
        if accepted {
            announce("Charging");
            let length = exp_secs(&mut rng, ctx.cfg.session_secs).max(ctx.cfg.meter_interval);
            let ends = Instant::now() + length;
            let power = rated_w * rng.gen_range(0.5..1.0);
            let mut soc: f64 = rng.gen_range(10.0..60.0);
            let mut last = Instant::now();
            let mut ticker = tokio::time::interval_at(
                Instant::now() + ctx.cfg.meter_interval,
                ctx.cfg.meter_interval,
            );
            reason = loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        let dt = last.elapsed().as_secs_f64();
                        last = Instant::now();
                        // Power tapers as the battery fills.
                        let p = if soc > 80.0 { power * 0.4 } else { power };
                        let wh = (p * dt / 3600.0).round() as i64;
                        register_wh += wh;
                        soc = (soc + wh as f64 / 600.0).min(100.0);
                        handle.post("MeterValues", json!({
                            "connectorId": connector,
                            "transactionId": tx,
                            "meterValue": [{"timestamp": timestamp(), "sampledValue": [
                                {"value": register_wh.to_string(), "context": "Sample.Periodic", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                                {"value": format!("{p:.0}"), "context": "Sample.Periodic", "measurand": "Power.Active.Import", "unit": "W"},
                                {"value": format!("{soc:.0}"), "context": "Sample.Periodic", "measurand": "SoC", "unit": "Percent"}
                            ]}]
                        }), true);
                    }
                    () = sleep_until(ends) => break "EVDisconnected",
                    r = remote.recv() => if let Some(Remote::Stop) | None = r { break "Remote" },
                    _ = finished(&mut control) => break "Local",
                }
            };
        }
        announce("Finishing");
        let stopped = handle
            .call(
                "StopTransaction",
                json!({"transactionId": tx, "idTag": id_tag, "meterStop": register_wh, "timestamp": timestamp(), "reason": reason}),
                true,
            )
            .await;
        if stopped.is_ok() {
            ctx.stats.sessions_stopped.fetch_add(1, Relaxed);
        }
        slot.transaction.store(0, Relaxed);
        announce("Available");
        release();
    }
}

async fn finished(control: &mut watch::Receiver<Control>) {
    let _ = control.wait_for(|c| c.finishing).await;
}

fn status_payload(connector: u32, status: &str) -> Value {
    json!({"connectorId": connector, "errorCode": "NoError", "status": status, "timestamp": timestamp()})
}

/// A card tap: Authorize, and the tag if accepted.
async fn rfid_authorize(handle: &Handle, id_tag: &str) -> Option<String> {
    let answer = handle
        .call("Authorize", json!({"idTag": id_tag}), false)
        .await
        .ok()?;
    (answer["idTagInfo"]["status"].as_str() == Some("Accepted")).then(|| id_tag.to_string())
}

/// An app start: the driver asks the API (`POST /sessions`), the central system sends
/// RemoteStartTransaction, and the charger starts with the tag it was given.
async fn app_start(
    ctx: &Ctx,
    spec: &FleetCharger,
    connector: u32,
    driver: usize,
    remote: &mut mpsc::Receiver<Remote>,
) -> Option<String> {
    let d = &ctx.drivers.all[driver];
    let mut token = d.token.lock().await;
    for attempt in 0..2 {
        if token.is_none() {
            *token = super::provision::login(
                &ctx.http,
                &ctx.cfg.api,
                &d.account.email,
                &d.account.password,
            )
            .await
            .map_err(|e| {
                ctx.stats.rest_errors.fetch_add(1, Relaxed);
                tracing::warn!(driver = %d.account.email, error = %e, "driver login failed");
            })
            .ok();
        }
        let bearer = token.clone()?;
        let response = ctx
            .http
            .post(format!("{}/sessions", ctx.cfg.api))
            .bearer_auth(bearer)
            .json(&json!({"charge_point_id": spec.id, "connector_id": connector}))
            .send()
            .await;
        match response.map(|r| r.status().as_u16()) {
            Ok(202) => break,
            Ok(401) if attempt == 0 => *token = None,
            Ok(status) => {
                tracing::debug!(status, charger = %spec.id, "app start refused");
                return None;
            }
            Err(e) => {
                ctx.stats.rest_errors.fetch_add(1, Relaxed);
                tracing::warn!(error = %e, "POST /sessions failed");
                return None;
            }
        }
    }
    drop(token);
    match tokio::time::timeout(Duration::from_secs(30), remote.recv()).await {
        Ok(Some(Remote::Start { id_tag })) => Some(id_tag),
        _ => None,
    }
}
