//! Several `laddkoll serve` instances on one PostgreSQL, behaving as one central system.
//!
//! - **Ownership.** A charger's live connection is recorded on its charge point row: the owning
//!   instance and a connection epoch that grows with every connection (`claim_connection`); only
//!   the owner of the current epoch marks it offline when that connection ends, so a late
//!   disconnect on A cannot mark offline a charger that has meanwhile reconnected to B.
//! - **Leases.** Each instance heartbeats its row in `instances`; a survivor marks offline the
//!   chargers of an instance whose lease expired, and they are served again when they reconnect
//!   (through the balancer, to any instance).
//! - **Command routing.** A command for a charger connected here goes straight to its socket. One
//!   connected elsewhere becomes a `charger_commands` row for the owning instance, which is woken
//!   with `NOTIFY laddkoll_commands` (and a sweep every second catches a missed notification),
//!   sends the call, and writes the charger's answer or the failure on the row; the instance that
//!   took the API request answers from the row. The row is the audit trail of the call. Nothing
//!   on the MeterValues path notifies.
//!
//! SQLite is one instance only: [`lock_sqlite`] refuses a second `serve` on the same file, and
//! none of the above runs there (a single instance pays nothing for it).

use std::fs::File;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::app::AppState;
use crate::db::schema::{charger_commands, instances};
use crate::db::{Backend, DbConn};
use crate::http::time::now;
use crate::locations::queries as places;
use crate::ocpp::commands::Command;
use crate::ocpp::registry::CallFailure;

/// The notification channel that wakes the instance owning a charger.
pub const CHANNEL: &str = "laddkoll_commands";

/// How often the routed-command sweep and the requester's poll look at the rows.
const SWEEP: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(15);

crate::db::text_enum! {
    /// The state of a routed command's row.
    pub enum CommandState: "command state" {
        /// Written by the requesting instance; the owner has not taken it yet.
        Pending = "pending",
        /// Taken by the owner and sent to the charger.
        Sent = "sent",
        /// The charger answered; the answer is on the row.
        Answered = "answered",
        /// No answer (offline, timed out, refused); the failure is on the row.
        Failed = "failed",
    }
}

/// Why a second instance may not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "another laddkoll instance serves the SQLite database {0} (SQLite is one instance only; \
         use PostgreSQL to run several)"
    )]
    SqliteInUse(String),
    #[error("cannot open the instance lock {path}: {error}")]
    Lock { path: String, error: std::io::Error },
}

/// Takes the SQLite database's instance lock (`<file>.instance-lock`, an OS file lock released
/// when the process ends, also by SIGKILL). Keep the returned file open while serving.
pub fn lock_sqlite(db_path: &str) -> Result<File, ClusterError> {
    let path = format!("{db_path}.instance-lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|error| ClusterError::Lock {
            path: path.clone(),
            error,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(ClusterError::SqliteInUse(db_path.to_string()))
        }
        Err(std::fs::TryLockError::Error(error)) => Err(ClusterError::Lock { path, error }),
    }
}

/// Whether commands may be routed through the database to other instances.
pub fn is_shared(state: &AppState) -> bool {
    state.db.backend() == Backend::Postgres
}

/// Sends a command to a charger wherever it is connected and waits for its answer: directly
/// when this instance holds its connection, else through the owning instance (PostgreSQL).
pub async fn send(
    state: &AppState,
    cp: &str,
    command: &Command,
    timeout: Duration,
) -> Result<Value, CallFailure> {
    if state.registry.get(cp).is_some() || !is_shared(state) {
        return state.registry.send(cp, command, timeout).await;
    }
    route(state, cp, command.action(), command.payload(), timeout).await
}

/// The routed action that closes a charger's connection on its owning instance (after a key
/// rotation: the connection opened with the old key must end wherever it is).
const DISCONNECT: &str = "laddkoll.Disconnect";

/// Closes a charger's live connection wherever it is: `local` when this instance holds it,
/// else through the owning instance. Best effort: a charger that is gone needs nothing.
pub async fn disconnect(
    state: &AppState,
    cp: &str,
    local: Option<Arc<crate::ocpp::registry::Link>>,
) {
    if let Some(link) = local {
        link.close().await;
    } else if is_shared(state) {
        let _ = route(
            state,
            cp,
            DISCONNECT,
            serde_json::json!({}),
            state.config.ocpp_call_timeout,
        )
        .await;
    }
}

/// Whether a charger is connected to this or (PostgreSQL) another instance.
pub async fn is_connected(state: &AppState, cp: &str) -> bool {
    if state.registry.get(cp).is_some() {
        return true;
    }
    if !is_shared(state) {
        return false;
    }
    let id = cp.to_string();
    state
        .db
        .run(move |conn| Ok(places::owner_of(conn, &id)?))
        .await
        .is_ok_and(|o| o.is_some())
}

async fn route(
    state: &AppState,
    cp: &str,
    action: &str,
    payload: Value,
    timeout: Duration,
) -> Result<Value, CallFailure> {
    let me = state.config.instance_id.clone();
    let (cp_id, action, payload) = (cp.to_string(), action.to_string(), payload.to_string());
    let limit = chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::seconds(30));
    let row = state
        .db
        .run(move |conn| {
            let Some(owner) = places::owner_of(conn, &cp_id)? else {
                return Ok(None);
            };
            if owner == me {
                // Recorded here but not in this process's registry: a connection that just
                // ended. Offline.
                return Ok(None);
            }
            let t = now();
            let id = crate::db::write_tx(conn, |conn| {
                let id: i64 = diesel::insert_into(charger_commands::table)
                    .values((
                        charger_commands::charge_point_id.eq(&cp_id),
                        charger_commands::action.eq(&action),
                        charger_commands::payload.eq(&payload),
                        charger_commands::requested_by.eq(&me),
                        charger_commands::target_instance.eq(&owner),
                        charger_commands::status.eq(CommandState::Pending.as_str()),
                        charger_commands::created_at.eq(t),
                        charger_commands::deadline_at.eq(t + limit),
                    ))
                    .returning(charger_commands::id)
                    .get_result(conn)?;
                // Delivered at commit, so the owner always finds the row.
                diesel::sql_query("SELECT pg_notify($1, $2)")
                    .bind::<diesel::sql_types::Text, _>(CHANNEL)
                    .bind::<diesel::sql_types::Text, _>(format!("{owner}:{id}"))
                    .execute(conn)?;
                Ok::<_, crate::http::ApiError>(id)
            })?;
            Ok(Some(id))
        })
        .await;
    let id = match row {
        Ok(Some(id)) => id,
        Ok(None) => return Err(CallFailure::Offline),
        Err(e) => {
            tracing::warn!(error = %e, "routing a charger command failed");
            return Err(CallFailure::Offline);
        }
    };
    // The owner answers within the deadline; a little grace covers its write.
    let give_up = tokio::time::Instant::now() + timeout + Duration::from_secs(2);
    loop {
        tokio::time::sleep(POLL).await;
        let last = tokio::time::Instant::now() >= give_up;
        let outcome =
            state
                .db
                .run(move |conn| {
                    if last {
                        // Nobody took it (the owner died): it times out, and stays so.
                        diesel::update(charger_commands::table.find(id).filter(
                            charger_commands::status.eq_any([
                                CommandState::Pending.as_str(),
                                CommandState::Sent.as_str(),
                            ]),
                        ))
                        .set((
                            charger_commands::status.eq(CommandState::Failed.as_str()),
                            charger_commands::failure.eq(Some(failure_text(&CallFailure::Timeout))),
                            charger_commands::finished_at.eq(Some(now())),
                        ))
                        .execute(conn)?;
                    }
                    Ok(charger_commands::table
                        .find(id)
                        .select((
                            charger_commands::status,
                            charger_commands::answer,
                            charger_commands::failure,
                        ))
                        .first::<(String, Option<String>, Option<String>)>(conn)?)
                })
                .await;
        match outcome {
            Ok((status, Some(answer), _)) if CommandState::Answered == *status => {
                return serde_json::from_str(&answer).map_err(|_| CallFailure::Timeout);
            }
            Ok((status, _, failure)) if CommandState::Failed == *status => {
                return Err(failure
                    .and_then(|f| serde_json::from_str(&f).ok())
                    .unwrap_or(CallFailure::Timeout));
            }
            Ok(_) if !last => continue,
            Ok(_) => return Err(CallFailure::Timeout),
            Err(e) => {
                tracing::warn!(error = %e, command = id, "reading a routed command failed");
                if last {
                    return Err(CallFailure::Timeout);
                }
            }
        }
    }
}

fn failure_text(f: &CallFailure) -> String {
    serde_json::to_string(f).unwrap_or_default()
}

/// A routed command claimed by its owner.
#[derive(Debug, Queryable)]
struct Claimed {
    id: i64,
    charge_point_id: String,
    action: String,
    payload: String,
    deadline_at: NaiveDateTime,
}

/// Claims a pending command for this instance (once: a second claim finds it sent).
fn claim(conn: &mut DbConn, id: i64, me: &str) -> QueryResult<Option<Claimed>> {
    diesel::update(
        charger_commands::table
            .find(id)
            .filter(charger_commands::target_instance.eq(me))
            .filter(charger_commands::status.eq(CommandState::Pending.as_str())),
    )
    .set(charger_commands::status.eq(CommandState::Sent.as_str()))
    .returning((
        charger_commands::id,
        charger_commands::charge_point_id,
        charger_commands::action,
        charger_commands::payload,
        charger_commands::deadline_at,
    ))
    .get_result(conn)
    .optional()
}

fn pending_for(conn: &mut DbConn, me: &str) -> QueryResult<Vec<i64>> {
    charger_commands::table
        .filter(charger_commands::target_instance.eq(me))
        .filter(charger_commands::status.eq(CommandState::Pending.as_str()))
        .order(charger_commands::id)
        .limit(100)
        .select(charger_commands::id)
        .load(conn)
}

/// Sends a claimed command to the charger connected here and writes the outcome on its row.
async fn execute(state: Arc<AppState>, c: Claimed) {
    let remaining = (c.deadline_at - now()).to_std().unwrap_or_default();
    let outcome = match (
        state.registry.get(&c.charge_point_id),
        serde_json::from_str::<Value>(&c.payload),
    ) {
        (Some(link), Ok(_)) if c.action == DISCONNECT => {
            link.close().await;
            Ok(serde_json::json!({}))
        }
        (Some(link), Ok(payload)) if !remaining.is_zero() => {
            link.call(&c.action, &payload, remaining).await
        }
        (Some(_), Ok(_)) => Err(CallFailure::Timeout),
        (None, _) => Err(CallFailure::Offline),
        (Some(_), Err(_)) => Err(CallFailure::Refused {
            code: "FormationViolation".into(),
            description: "the stored payload is not JSON".into(),
        }),
    };
    let id = c.id;
    let written = state
        .db
        .run(move |conn| {
            let (status, answer, failure) = match &outcome {
                Ok(v) => (CommandState::Answered, Some(v.to_string()), None),
                Err(f) => (CommandState::Failed, None, Some(failure_text(f))),
            };
            diesel::update(charger_commands::table.find(id))
                .set((
                    charger_commands::status.eq(status.as_str()),
                    charger_commands::answer.eq(answer),
                    charger_commands::failure.eq(failure),
                    charger_commands::finished_at.eq(Some(now())),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await;
    if let Err(e) = written {
        tracing::warn!(error = %e, command = id, "writing a routed command's answer failed");
    }
}

/// Starts this instance's part of the cluster on PostgreSQL: the heartbeat lease (which also
/// expires dead instances' chargers), the LISTEN thread and the command dispatcher. Nothing on
/// SQLite.
pub fn spawn(state: Arc<AppState>) {
    if !is_shared(&state) {
        return;
    }
    let (tx, rx) = mpsc::channel::<i64>(1024);
    actix_web::rt::spawn(heartbeat(state.clone()));
    actix_web::rt::spawn(dispatch(state.clone(), rx));
    let url = state.config.database_url.clone();
    let me = state.config.instance_id.clone();
    std::thread::Builder::new()
        .name("laddkoll-listen".into())
        .spawn(move || listen(&url, &me, &tx))
        .map(drop)
        .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the LISTEN thread"));
}

async fn heartbeat(state: Arc<AppState>) {
    let lease = state.config.instance_lease;
    let every = (lease / 3).max(Duration::from_millis(200));
    let me = state.config.instance_id.clone();
    loop {
        let me2 = me.clone();
        let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(15));
        let beat = state
            .db
            .run(move |conn| {
                let t = now();
                let updated = diesel::update(instances::table.find(&me2))
                    .set((
                        instances::heartbeat_at.eq(t),
                        instances::expires_at.eq(t + lease),
                    ))
                    .execute(conn)?;
                if updated == 0 {
                    diesel::insert_into(instances::table)
                        .values((
                            instances::id.eq(&me2),
                            instances::started_at.eq(t),
                            instances::heartbeat_at.eq(t),
                            instances::expires_at.eq(t + lease),
                        ))
                        .execute(conn)?;
                }
                Ok(places::release_expired_owners(conn, t)?)
            })
            .await;
        match beat {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                chargers = n,
                "chargers of an instance whose lease expired are offline"
            ),
            Err(e) => tracing::warn!(error = %e, "instance heartbeat failed"),
        }
        tokio::time::sleep(every).await;
    }
}

async fn dispatch(state: Arc<AppState>, mut woken: mpsc::Receiver<i64>) {
    let me = state.config.instance_id.clone();
    let mut sweep = tokio::time::interval(SWEEP);
    loop {
        let ids: Vec<i64> = tokio::select! {
            Some(id) = woken.recv() => vec![id],
            _ = sweep.tick() => {
                let me2 = me.clone();
                state.db.run(move |conn| Ok(pending_for(conn, &me2)?)).await.unwrap_or_default()
            }
        };
        for id in ids {
            let me2 = me.clone();
            let claimed = state.db.run(move |conn| Ok(claim(conn, id, &me2)?)).await;
            match claimed {
                Ok(Some(c)) => {
                    actix_web::rt::spawn(execute(state.clone(), c));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, command = id, "claiming a command failed"),
            }
        }
    }
}

/// The LISTEN loop on a dedicated connection: hands the ids of commands for this instance to
/// the dispatcher; reconnects after an error (the sweep covers the gap).
fn listen(url: &str, me: &str, woken: &mpsc::Sender<i64>) {
    let prefix = format!("{me}:");
    loop {
        let mut conn = match diesel::PgConnection::establish(url) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN connection failed; retrying");
                std::thread::sleep(SWEEP);
                continue;
            }
        };
        if let Err(e) = diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut conn) {
            tracing::warn!(error = %e, "LISTEN failed; retrying");
            std::thread::sleep(SWEEP);
            continue;
        }
        'poll: loop {
            let mut any = false;
            for n in conn.notifications_iter() {
                match n {
                    Ok(n) => {
                        any = true;
                        if let Some(id) = n.payload.strip_prefix(&prefix) {
                            if let Ok(id) = id.parse() {
                                if woken.blocking_send(id).is_err() {
                                    return; // the server is shutting down
                                }
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                        break 'poll;
                    }
                }
            }
            if !any {
                // libpq has no blocking wait here; a short sleep keeps the added latency small.
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}
