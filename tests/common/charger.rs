//! A test charger: a real OCPP 1.6J client over a real WebSocket.

use std::collections::VecDeque;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A connected charger.
pub struct Charger {
    pub id: String,
    socket: Socket,
    next: u64,
    /// Calls from the central system not yet handled.
    inbox: VecDeque<(String, String, Value)>,
}

/// Opens a WebSocket to `/ocpp/{id}`; returns the HTTP status when the upgrade is refused.
pub async fn connect(
    base: &str,
    id: &str,
    key: Option<&str>,
    subprotocol: bool,
) -> Result<Charger, u16> {
    let url = format!("{}/ocpp/{id}", base.replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    if subprotocol {
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("ocpp1.6"),
        );
    }
    if let Some(key) = key {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{key}"));
        req.headers_mut().insert(
            "Authorization",
            HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((socket, response)) => {
            assert_eq!(
                response
                    .headers()
                    .get("sec-websocket-protocol")
                    .map(|v| v.to_str().unwrap()),
                Some("ocpp1.6")
            );
            Ok(Charger {
                id: id.to_string(),
                socket,
                next: 1,
                inbox: VecDeque::new(),
            })
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("connect failed: {e}"),
    }
}

/// What a charger call got back.
#[derive(Debug)]
pub enum Reply {
    Result(Value),
    Error { code: String, description: String },
}

impl Reply {
    pub fn ok(self) -> Value {
        match self {
            Reply::Result(v) => v,
            Reply::Error { code, description } => panic!("CALLERROR {code}: {description}"),
        }
    }
    /// Whether the call got a CALLRESULT.
    pub fn is_ok(&self) -> bool {
        matches!(self, Reply::Result(_))
    }
    pub fn error_code(&self) -> &str {
        match self {
            Reply::Error { code, .. } => code,
            Reply::Result(v) => panic!("expected a CALLERROR, got {v}"),
        }
    }
}

impl Charger {
    async fn read(&mut self) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(std::time::Duration::from_secs(10), self.socket.next())
                .await
                .expect("the server answered within 10 s")?;
            match msg.ok()? {
                Message::Text(t) => {
                    return Some(serde_json::from_str(&t).expect("server frames are JSON"))
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Sends a raw text frame.
    pub async fn send_raw(&mut self, text: &str) {
        self.socket
            .send(Message::text(text.to_string()))
            .await
            .unwrap();
    }

    /// The next text frame as JSON; None once the server closed the connection.
    pub async fn next_frame(&mut self) -> Option<Value> {
        self.read().await
    }

    /// Sends a binary frame (OCPP-J allows only text).
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.socket.send(Message::binary(bytes)).await.unwrap();
    }

    /// Waits for the server to close the connection; returns its close code (None when it
    /// dropped the connection without a close frame). Panics on a text frame.
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            let msg = tokio::time::timeout(std::time::Duration::from_secs(10), self.socket.next())
                .await
                .expect("the server closed within 10 s");
            match msg {
                None | Some(Err(_)) => return None,
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(Message::Text(t))) => panic!("unexpected frame {t} instead of a close"),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// Reads frames until the answer to `id`, queueing server calls.
    pub async fn answer_to(&mut self, id: &str) -> Reply {
        loop {
            let frame = self.read().await.expect("connection open");
            match frame[0].as_u64() {
                Some(2) => self.inbox.push_back((
                    frame[1].as_str().unwrap().to_string(),
                    frame[2].as_str().unwrap().to_string(),
                    frame[3].clone(),
                )),
                Some(3) if frame[1] == id => return Reply::Result(frame[2].clone()),
                Some(4) if frame[1] == id || frame[1] == "-1" => {
                    return Reply::Error {
                        code: frame[2].as_str().unwrap().to_string(),
                        description: frame[3].as_str().unwrap_or_default().to_string(),
                    }
                }
                _ => panic!("unexpected frame {frame}"),
            }
        }
    }

    /// Sends a CALL and waits for its answer.
    pub async fn call(&mut self, action: &str, payload: Value) -> Reply {
        let id = format!("t{}", self.next);
        self.next += 1;
        self.send_raw(&json!([2, id, action, payload]).to_string())
            .await;
        self.answer_to(&id).await
    }

    /// The next call from the central system: (message id, action, payload).
    pub async fn server_call(&mut self) -> (String, String, Value) {
        if let Some(c) = self.inbox.pop_front() {
            return c;
        }
        loop {
            let frame = self.read().await.expect("connection open");
            if frame[0] == 2 {
                return (
                    frame[1].as_str().unwrap().to_string(),
                    frame[2].as_str().unwrap().to_string(),
                    frame[3].clone(),
                );
            }
        }
    }

    /// Answers a central-system call.
    pub async fn respond(&mut self, id: &str, payload: Value) {
        self.send_raw(&json!([3, id, payload]).to_string()).await;
    }

    /// Whether the server closed the connection.
    pub async fn is_closed(&mut self) -> bool {
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(5), self.socket.next()).await,
            Ok(None) | Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_)))
        )
    }

    pub async fn boot(&mut self) -> Value {
        self.call(
            "BootNotification",
            json!({"chargePointVendor": "Laddkoll", "chargePointModel": "Test-22"}),
        )
        .await
        .ok()
    }

    pub async fn status(&mut self, connector: u32, status: &str, at: &str) -> Value {
        self.call("StatusNotification", json!({"connectorId": connector, "errorCode": "NoError", "status": status, "timestamp": at})).await.ok()
    }

    pub async fn start(
        &mut self,
        connector: u32,
        id_tag: &str,
        meter_start: i64,
        at: &str,
    ) -> Value {
        self.call("StartTransaction", json!({"connectorId": connector, "idTag": id_tag, "meterStart": meter_start, "timestamp": at})).await.ok()
    }

    pub async fn meter(
        &mut self,
        connector: u32,
        tx: Option<i64>,
        at: &str,
        wh: &str,
        w: &str,
        soc: &str,
    ) -> Value {
        let mut payload = json!({"connectorId": connector, "meterValue": [{"timestamp": at, "sampledValue": [
            {"value": wh, "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
            {"value": w, "measurand": "Power.Active.Import", "unit": "W"},
            {"value": soc, "measurand": "SoC", "unit": "Percent"}
        ]}]});
        if let Some(tx) = tx {
            payload["transactionId"] = json!(tx);
        }
        self.call("MeterValues", payload).await.ok()
    }

    pub async fn stop(&mut self, tx: i64, meter_stop: i64, at: &str) -> Value {
        self.call("StopTransaction", json!({"transactionId": tx, "meterStop": meter_stop, "timestamp": at, "reason": "EVDisconnected"})).await.ok()
    }
}
