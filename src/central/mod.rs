//! The charger-event API: one function per thing a charger tells the central system, over
//! domain types and independent of the protocol version.
//!
//! `ocpp::v16` maps OCPP 1.6J messages onto these functions (an OCPP 2.0.1 mapping would be
//! its sibling), and the demo seeds its history through them too, so the chain
//! start → audit → meter values → stop → billing exists once. Each function does the work of
//! one message on the connection it is given and opens no transaction of its own: the
//! caller decides the unit of commit (the group writer in `db::group` puts many messages in
//! one transaction, each in its own savepoint; the demo puts many sessions in one).
//!
//! Dependencies point one way: this layer calls charging (the rules of sessions), locations
//! (the charger's own record), audit, and billing only through [`session_finished`], the
//! hook that runs after a stop is committed. Charging itself never calls billing.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::QueryResult;
use serde::Serialize;
use utoipa::ToSchema;

use crate::audit::{self, NewEvent};
use crate::charging::{self, queries as sessions, Authorization, MeterSample, Started, Stopped};
use crate::db::DbConn;
use crate::http::ApiError;
use crate::locations::queries as places;

/// What a charger says about itself when it boots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BootInfo {
    pub vendor: String,
    pub model: String,
    pub serial_number: Option<String>,
    pub firmware_version: Option<String>,
}

/// The state of a connector (connector 0: the whole charger), as stored and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum ConnectorStatus {
    Available,
    Preparing,
    Charging,
    SuspendedEVSE,
    SuspendedEV,
    Finishing,
    Reserved,
    Unavailable,
    Faulted,
}

impl ConnectorStatus {
    /// The stored text (the OCPP 1.6 name).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorStatus::Available => "Available",
            ConnectorStatus::Preparing => "Preparing",
            ConnectorStatus::Charging => "Charging",
            ConnectorStatus::SuspendedEVSE => "SuspendedEVSE",
            ConnectorStatus::SuspendedEV => "SuspendedEV",
            ConnectorStatus::Finishing => "Finishing",
            ConnectorStatus::Reserved => "Reserved",
            ConnectorStatus::Unavailable => "Unavailable",
            ConnectorStatus::Faulted => "Faulted",
        }
    }
}

/// A connector's new state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    pub connector_id: i64,
    pub status: ConnectorStatus,
    /// The charger's error code; `None` for no error.
    pub error_code: Option<String>,
    /// When it happened, by the charger's clock (or the time of receipt).
    pub at: NaiveDateTime,
}

/// A transaction the charger started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionStart {
    pub connector_id: u32,
    pub id_tag: String,
    /// The energy register at the start, Wh.
    pub meter_start: i32,
    pub at: DateTime<Utc>,
}

/// A transaction the charger stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionStop {
    pub transaction_id: i32,
    /// The energy register at the stop, Wh.
    pub meter_stop: i32,
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
    pub id_tag: Option<String>,
    /// Meter samples taken during the transaction, sent with the stop.
    pub data: Vec<MeterSample>,
}

/// What the central system answers to a stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopOutcome {
    /// The decision about the stop's id tag, when the charger sent one.
    pub authorization: Option<Authorization>,
    /// The session this stop finished (or whose stop it replays), for [`session_finished`]
    /// after the commit.
    pub finished: Option<i64>,
}

/// A progress report about firmware or diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    Firmware,
    Diagnostics,
}

/// An audit event whose actor is the charger.
fn charger_event(
    cp: &str,
    action: &str,
    outcome: &str,
    client: Option<String>,
    now: NaiveDateTime,
) -> NewEvent {
    let mut event = NewEvent::user(None, action, outcome, client, now);
    event.actor = format!("charger:{cp}");
    event.charge_point_id = Some(cp.to_string());
    event
}

/// The charger connected (authenticated, upgraded): online, and audited.
/// Returns the connection's epoch: this `instance` now holds the charger (DESIGN §8).
pub fn connected(
    conn: &mut DbConn,
    cp: &str,
    instance: &str,
    client: Option<String>,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    let epoch = places::claim_connection(conn, cp, instance, now)?;
    let event = charger_event(cp, "charger_connected", audit::SUCCESS, client, now);
    audit::record(conn, &event)?;
    Ok(epoch)
}

/// The charger's connection `epoch` on `instance` ended: offline, and audited — unless the
/// charger has connected again since (here or to another instance), which stays online.
pub fn disconnected(
    conn: &mut DbConn,
    cp: &str,
    instance: &str,
    epoch: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if !places::release_connection(conn, cp, instance, epoch)? {
        return Ok(());
    }
    let event = charger_event(cp, "charger_disconnected", audit::SUCCESS, None, now);
    audit::record(conn, &event)
}

/// The charger booted: its vendor, model, serial and firmware are recorded.
pub fn booted(
    conn: &mut DbConn,
    cp: &str,
    boot: &BootInfo,
    heartbeat_interval: u32,
    now: NaiveDateTime,
) -> QueryResult<()> {
    places::record_boot(
        conn,
        cp,
        &places::Boot {
            vendor: Some(&boot.vendor),
            model: Some(&boot.model),
            serial_number: boot.serial_number.as_deref(),
            firmware_version: boot.firmware_version.as_deref(),
            heartbeat_interval: i64::from(heartbeat_interval),
            last_seen_at: Some(now),
        },
    )
}

/// The charger is alive.
pub fn heartbeat(conn: &mut DbConn, cp: &str, now: NaiveDateTime) -> QueryResult<()> {
    places::touch(conn, cp, now)
}

/// Whether a status change would change nothing: the connector's latest recorded status is
/// the same status with the same error code, at or before this one. Such a report is
/// answered without a write (a read on any connection).
pub fn status_unchanged(conn: &mut DbConn, cp: &str, change: &StatusChange) -> QueryResult<bool> {
    Ok(
        sessions::latest_status_event(conn, cp, change.connector_id)?.is_some_and(
            |(at, status, error)| {
                at <= change.at && status == change.status.as_str() && error == change.error_code
            },
        ),
    )
}

/// A connector changed state: the history (for charging and idle time) and the connector's
/// current state.
pub fn status_changed(
    conn: &mut DbConn,
    cp: &str,
    change: &StatusChange,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let status = change.status.as_str();
    let error = change.error_code.as_deref();
    sessions::insert_status_event(conn, cp, change.connector_id, status, error, change.at, now)?;
    places::set_connector_status(conn, cp, change.connector_id, status, error, change.at)?;
    places::touch(conn, cp, now)
}

/// The charger asks whether an id tag may charge; the decision is audited.
pub fn authorize(
    conn: &mut DbConn,
    cp: &str,
    id_tag: &str,
    now: NaiveDateTime,
) -> QueryResult<Authorization> {
    let auth = charging::authorize_tag(conn, id_tag, now)?;
    charging::audit_decision(conn, "rfid_authorize", cp, &auth, now)?;
    Ok(auth)
}

/// The charger started a transaction: idempotent, never refused, audited once, and the
/// session keeps the tariff it started under.
pub fn transaction_started(
    conn: &mut DbConn,
    cp: &str,
    start: &TransactionStart,
    now: NaiveDateTime,
    stale_before: NaiveDateTime,
) -> QueryResult<Started> {
    let started = charging::start_transaction(
        conn,
        cp,
        start.connector_id,
        &start.id_tag,
        start.meter_start,
        start.at,
        now,
        stale_before,
    )?;
    if !started.replay {
        crate::billing::records::attach_tariff(conn, started.transaction_id, cp)?;
        charging::audit_decision(conn, "transaction_start", cp, &started.authorization, now)?;
    }
    Ok(started)
}

/// The charger sent meter samples; a transaction id of another charger is audited and the
/// data kept unlinked.
pub fn meter_values(
    conn: &mut DbConn,
    cp: &str,
    connector_id: u32,
    transaction_id: Option<i32>,
    samples: &[MeterSample],
    now: NaiveDateTime,
) -> QueryResult<()> {
    let foreign =
        charging::store_meter_values(conn, cp, connector_id, transaction_id, samples, now)?;
    audit_foreign(conn, cp, &foreign, "MeterValues", now)
}

/// The charger stopped a transaction. Never refused: an unknown transaction is accepted and
/// logged, one of another charger is refused in the audit log with its data kept unlinked.
/// Billing runs after the commit, through [`session_finished`].
pub fn transaction_stopped(
    conn: &mut DbConn,
    cp: &str,
    stop: &TransactionStop,
    now: NaiveDateTime,
) -> QueryResult<StopOutcome> {
    // A transaction of another charger is not this charger's to stop.
    if let Some(s) = sessions::find_session(conn, i64::from(stop.transaction_id))? {
        if s.charge_point_id != cp {
            audit_foreign(conn, cp, &[s.id], "StopTransaction", now)?;
            charging::store_meter_values(conn, cp, 0, None, &stop.data, now)?;
            return Ok(StopOutcome {
                authorization: None,
                finished: None,
            });
        }
    }
    let stopped = charging::stop_transaction(
        conn,
        cp,
        stop.transaction_id,
        stop.meter_stop,
        stop.at,
        stop.reason.as_deref(),
        &stop.data,
        now,
    )?;
    // A replayed stop settles again: the process may have died between the stop's commit and
    // its pricing, and the charger, unanswered, resends the stop. Settling is idempotent.
    let finished = match stopped {
        Stopped::Finished(id) | Stopped::AlreadyFinished(id) => Some(id),
        Stopped::Unknown => None,
    };
    let authorization = match &stop.id_tag {
        Some(tag) => Some(charging::authorize_tag(conn, tag, now)?),
        None => None,
    };
    Ok(StopOutcome {
        authorization,
        finished,
    })
}

/// After a stop is committed: the observers of finished sessions run (billing prices the
/// session, or holds it with the reason). Its own write: whatever it does, the stop stays
/// stored and answered; should this write fail, the next invoice run prices the session.
pub fn session_finished(
    conn: &mut DbConn,
    session_id: i64,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    crate::billing::records::price_finished(conn, session_id, now)
}

/// The charger reported firmware or diagnostics progress: audited.
pub fn notice(
    conn: &mut DbConn,
    cp: &str,
    kind: Notice,
    status: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let action = match kind {
        Notice::Firmware => "charger_firmware_status",
        Notice::Diagnostics => "charger_diagnostics_status",
    };
    let event = charger_event(cp, action, audit::SUCCESS, None, now).because(status);
    audit::record(conn, &event)
}

fn audit_foreign(
    conn: &mut DbConn,
    cp: &str,
    foreign: &[i64],
    what: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    for id in foreign {
        let event = charger_event(cp, "foreign_transaction_refused", audit::DENIED, None, now)
            .because(format!(
                "{what} for transaction {id} of another charger; data kept unlinked"
            ));
        audit::record(conn, &event)?;
    }
    Ok(())
}
