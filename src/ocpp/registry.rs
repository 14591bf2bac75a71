//! Live charger connections of this instance and the calls the central system makes to them
//! (one outstanding call per connection, with a timeout).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use super::commands::Command;
use super::frames;

/// Why a call to a charger did not get an answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallFailure {
    #[error("the charger is not connected")]
    Offline,
    #[error("the charger did not answer in time")]
    Timeout,
    #[error("the charger answered with {code}: {description}")]
    Refused { code: String, description: String },
}

type Reply = Result<Value, CallFailure>;

/// One live WebSocket connection.
pub struct Link {
    pub conn_id: u64,
    session: actix_ws::Session,
    pending: Mutex<Option<(String, oneshot::Sender<Reply>)>>,
    call_lock: tokio::sync::Mutex<()>,
    next_id: AtomicU64,
    /// Set once the connection has ended; calls then fail at once as offline.
    closed: AtomicBool,
}

impl Link {
    /// A handle for sending on this connection.
    pub fn session(&self) -> actix_ws::Session {
        self.session.clone()
    }

    /// Sends a text frame; false when the socket is gone.
    pub async fn send(&self, text: String) -> bool {
        self.session.clone().text(text).await.is_ok()
    }

    /// Closes the connection (when it ended, or a newer authenticated one replaces it). A call
    /// waiting for an answer on it fails at once as offline instead of waiting for its timeout.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        self.fail_pending();
        let _ = self.session.clone().close(None).await;
    }

    fn fail_pending(&self) {
        if let Some((_, tx)) = self.pending.lock().expect("pending lock").take() {
            let _ = tx.send(Err(CallFailure::Offline));
        }
    }

    /// Hands a charger's CALLRESULT or CALLERROR to the waiting call, if its id matches.
    pub fn resolve(&self, id: &str, reply: Reply) -> bool {
        let mut pending = self.pending.lock().expect("pending lock");
        match pending.take() {
            Some((expected, tx)) if expected == id => {
                let _ = tx.send(reply);
                true
            }
            other => {
                *pending = other;
                false
            }
        }
    }

    /// Sends a CALL and waits for its answer. Calls on one connection are serialised.
    pub async fn call(&self, action: &str, payload: &Value, timeout: Duration) -> Reply {
        let _one_at_a_time = self.call_lock.lock().await;
        let id = format!("cs-{}", self.next_id.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        *self.pending.lock().expect("pending lock") = Some((id.clone(), tx));
        // Checked after the call is pending, so a close in between either fails the pending
        // call or is seen here (see `close`).
        if self.closed.load(Ordering::SeqCst) {
            self.pending.lock().expect("pending lock").take();
            return Err(CallFailure::Offline);
        }
        if !self.send(frames::call(&id, action, payload)).await {
            self.pending.lock().expect("pending lock").take();
            return Err(CallFailure::Offline);
        }
        let outcome = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => Err(CallFailure::Offline),
            Err(_) => Err(CallFailure::Timeout),
        };
        self.pending.lock().expect("pending lock").take();
        outcome
    }
}

/// Live connections by charge point id.
#[derive(Default)]
pub struct Registry {
    links: Mutex<HashMap<String, Arc<Link>>>,
    next_conn: AtomicU64,
}

impl Registry {
    /// Registers an authenticated connection; returns it and the connection it replaces.
    pub fn register(&self, cp: &str, session: actix_ws::Session) -> (Arc<Link>, Option<Arc<Link>>) {
        let link = Arc::new(Link {
            conn_id: self.next_conn.fetch_add(1, Ordering::Relaxed),
            session,
            pending: Mutex::new(None),
            call_lock: tokio::sync::Mutex::new(()),
            next_id: AtomicU64::new(1),
            closed: AtomicBool::new(false),
        });
        let old = self
            .links
            .lock()
            .expect("registry lock")
            .insert(cp.to_string(), link.clone());
        (link, old)
    }

    /// Removes a connection if it is still the registered one; returns whether it was.
    pub fn unregister(&self, cp: &str, conn_id: u64) -> bool {
        let mut links = self.links.lock().expect("registry lock");
        if links.get(cp).is_some_and(|l| l.conn_id == conn_id) {
            links.remove(cp);
            true
        } else {
            false
        }
    }

    /// The live connection of a charger.
    pub fn get(&self, cp: &str) -> Option<Arc<Link>> {
        self.links.lock().expect("registry lock").get(cp).cloned()
    }

    /// Number of live connections.
    pub fn len(&self) -> usize {
        self.links.lock().expect("registry lock").len()
    }

    /// Whether no charger is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends a command to a charger by id and waits for its answer.
    pub async fn send(&self, cp: &str, command: &Command, timeout: Duration) -> Reply {
        let link = self.get(cp).ok_or(CallFailure::Offline)?;
        link.call(command.action(), &command.payload(), timeout)
            .await
    }
}
