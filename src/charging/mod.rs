//! Charging sessions built from the charger's own record: id-tag authorization, transactions,
//! meter values, integrity flags, durations, and the live view the app shows.

pub mod handlers;
pub mod integrity;
pub mod queries;
pub mod remote;
pub mod rfid;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::QueryResult;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use crate::accounts::queries as users;
use crate::audit::{self, NewEvent};
use crate::db::DbConn;
use queries::{MeterValueRow, NewSession, Session, SessionOrigin, SessionStatus};

/// The answer about an id tag (the same five in OCPP 1.6 and 2.0.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum AuthStatus {
    Accepted,
    Blocked,
    Expired,
    Invalid,
    /// Only for a transaction start: the driver is already charging elsewhere.
    ConcurrentTx,
}

impl AuthStatus {
    /// The name as stored in audit reasons and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthStatus::Accepted => "Accepted",
            AuthStatus::Blocked => "Blocked",
            AuthStatus::Expired => "Expired",
            AuthStatus::Invalid => "Invalid",
            AuthStatus::ConcurrentTx => "ConcurrentTx",
        }
    }
}

/// One reading of a meter sample, as the charger sent it (OCPP 1.6 `SampledValue`, 2.0.1
/// `SampledValueType`): the value as text, and the names of its measurand, unit, context,
/// phase, location and format when given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    pub value: String,
    pub measurand: Option<String>,
    pub unit: Option<String>,
    pub context: Option<String>,
    pub phase: Option<String>,
    pub location: Option<String>,
    /// `Raw` or `SignedData`.
    pub format: Option<String>,
}

/// The readings a meter took at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeterSample {
    pub at: DateTime<Utc>,
    pub readings: Vec<Reading>,
}

/// Normalises an id tag (OCPP `CiString20`: up to 20 characters, compared case-insensitively).
///
/// A hex card UID is written many ways (`04:a1:b2:c3`, `04 A1 B2 C3`), so when the tag is 4–20
/// hex digits once spaces, colons and dashes are dropped it is stored as those digits in upper
/// case. Any other tag (`TAG-001`, a fleet card's printed number) is kept as sent, upper-cased
/// (ASCII only, so the length never changes), trimmed; control characters are refused.
pub fn normalize_uid(raw: &str) -> Option<String> {
    let hex: String = raw
        .chars()
        .filter(|c| !matches!(c, ' ' | ':' | '-'))
        .collect::<String>()
        .to_ascii_uppercase();
    if (4..=20).contains(&hex.len()) && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Some(hex);
    }
    let tag = raw.trim();
    let n = tag.chars().count();
    ((1..=20).contains(&n) && !tag.chars().any(char::is_control)).then(|| tag.to_ascii_uppercase())
}

/// A uid as logs and audit reasons show it: the first four digits only.
pub fn mask_uid(uid: &str) -> String {
    format!("{}…", uid.chars().take(4).collect::<String>())
}

/// The decision about an id tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub status: AuthStatus,
    pub user_id: Option<i64>,
    /// Why, with the uid masked.
    pub reason: String,
    /// Whether the tag is a driver's app tag (else an RFID card or unknown).
    pub app: bool,
}

/// Decides about an id tag from the card and account state (Authorize, and the tag of a
/// StopTransaction). Never ConcurrentTx: OCPP 1.6 reserves that for StartTransaction, see
/// [`authorize_start`].
pub fn authorize_tag(
    conn: &mut DbConn,
    id_tag: &str,
    now: NaiveDateTime,
) -> QueryResult<Authorization> {
    let deny = |status, user_id, reason: String, app| Authorization {
        status,
        user_id,
        reason,
        app,
    };
    let (user_id, app, shown) = if let Some(user_id) = queries::user_of_app_tag(conn, id_tag)? {
        (user_id, true, "app tag".to_string())
    } else {
        let Some(uid) = normalize_uid(id_tag) else {
            return Ok(deny(
                AuthStatus::Invalid,
                None,
                "not a known card or app tag".into(),
                false,
            ));
        };
        let Some(card) = queries::find_card_by_uid(conn, &uid)? else {
            return Ok(deny(
                AuthStatus::Invalid,
                None,
                format!("unknown card {}", mask_uid(&uid)),
                false,
            ));
        };
        let shown = format!("card {}", mask_uid(&uid));
        if card.status == rfid::CardStatus::Blocked {
            return Ok(deny(
                AuthStatus::Blocked,
                Some(card.user_id),
                format!("{shown} is blocked"),
                false,
            ));
        }
        if card.expires_at.is_some_and(|e| e <= now) {
            return Ok(deny(
                AuthStatus::Expired,
                Some(card.user_id),
                format!("{shown} has expired"),
                false,
            ));
        }
        (card.user_id, false, shown)
    };
    let user = users::find(conn, user_id)?;
    match user.as_ref().map(|u| u.status.as_str()) {
        Some(users::ACTIVE) => {}
        Some(users::BLOCKED) => {
            return Ok(deny(
                AuthStatus::Blocked,
                Some(user_id),
                format!("{shown}: account blocked"),
                app,
            ))
        }
        _ => {
            return Ok(deny(
                AuthStatus::Invalid,
                Some(user_id),
                format!("{shown}: account deleted"),
                app,
            ))
        }
    }
    Ok(Authorization {
        status: AuthStatus::Accepted,
        user_id: Some(user_id),
        reason: shown,
        app,
    })
}

/// Decides about the id tag of a StartTransaction: [`authorize_tag`], then ConcurrentTx when
/// the driver already has another active session that is not stale.
///
/// One active session per driver is the rule for drivers (cards and app alike): a card that
/// starts a second session while the first is running is the usual sign of a copied or lent
/// card, and a driver's bill must not double by mistake. A session whose charger went offline
/// and stayed silent (see [`queries::is_stale`]) no longer counts, so a charger that never
/// reports its stop cannot lock its driver out everywhere. `ignore_session` is the session
/// being started (an app start's pending session, or a replay's own).
pub fn authorize_start(
    conn: &mut DbConn,
    id_tag: &str,
    now: NaiveDateTime,
    ignore_session: Option<i64>,
    stale_before: NaiveDateTime,
) -> QueryResult<Authorization> {
    let auth = authorize_tag(conn, id_tag, now)?;
    let Some(user_id) = auth.user_id.filter(|_| auth.status == AuthStatus::Accepted) else {
        return Ok(auth);
    };
    let busy = queries::running_for_user(conn, user_id, stale_before)?
        .into_iter()
        .any(|s| Some(s.id) != ignore_session && s.status == SessionStatus::Active);
    if busy {
        return Ok(Authorization {
            status: AuthStatus::ConcurrentTx,
            reason: format!("{}: driver already charging", auth.reason),
            ..auth
        });
    }
    Ok(auth)
}

/// Records an authorization decision in the audit log.
pub fn audit_decision(
    conn: &mut DbConn,
    action: &str,
    cp: &str,
    auth: &Authorization,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let outcome = if auth.status == AuthStatus::Accepted {
        audit::SUCCESS
    } else {
        audit::DENIED
    };
    let mut event = NewEvent::user(auth.user_id, action, outcome, None, now).because(format!(
        "{}: {}",
        auth.status.as_str(),
        auth.reason
    ));
    event.actor = format!("charger:{cp}");
    event.charge_point_id = Some(cp.to_string());
    audit::record(conn, &event)
}

crate::db::text_enum! {
    /// An integrity flag on a session (README, "Integrity flags").
    pub enum SessionFlag: "session flag" {
        /// The transaction started at register 0 on a charger that reports absolute registers.
        ZeroStartBaseline = "zero_start_baseline",
        /// The start register is implausible for the connector.
        ImplausibleStartBaseline = "implausible_start_baseline",
        /// The energy register went backwards.
        RegisterBackwards = "register_backwards",
        /// The stop register is below the start register.
        MeterStopBelowStart = "meter_stop_below_start",
        /// Meter samples are further apart than the gap allowed.
        MeterGap = "meter_gap",
        /// The charger started a transaction for an idTag that was not accepted.
        UnauthorizedStart = "unauthorized_start",
        /// A transaction started after its remote start had already failed.
        LateStartAfterFailure = "late_start_after_failure",
        /// An operator ended the session because its charger never reported the stop.
        ForceClosed = "force_closed",
        /// The transaction's connector is not one of the charge point's registered connectors.
        UnknownConnector = "unknown_connector",
        /// A zero start followed by an absolute register: billed from the first reading.
        ZeroStartCorrected = "zero_start_corrected",
    }
}

impl SessionFlag {
    /// Whether the flag holds its session from invoicing until an operator releases it, or
    /// only annotates it. Annotating: `force_closed` records an operator's own reviewed
    /// decision (billed from the last meter value the charger sent), so holding it again would
    /// only ask the same person twice; `meter_gap` leaves the session's energy exact (the
    /// register difference) and only spreads it evenly over the gap between readings;
    /// `zero_start_corrected` bills from the first reading, never more than was charged.
    /// Every other flag holds: the energy, or who pays for it, is in doubt.
    pub fn holds(self) -> bool {
        match self {
            SessionFlag::ForceClosed | SessionFlag::MeterGap | SessionFlag::ZeroStartCorrected => {
                false
            }
            SessionFlag::ZeroStartBaseline
            | SessionFlag::ImplausibleStartBaseline
            | SessionFlag::RegisterBackwards
            | SessionFlag::MeterStopBelowStart
            | SessionFlag::UnauthorizedStart
            | SessionFlag::LateStartAfterFailure
            | SessionFlag::UnknownConnector => true,
        }
    }
}

/// A gap between meter samples longer than this is flagged.
const GAP: chrono::TimeDelta = chrono::TimeDelta::minutes(30);

/// The idempotency key of a StartTransaction: the same charger, connector, tag, time and
/// meter reading is the same transaction.
pub fn start_key(
    cp: &str,
    connector_id: u32,
    id_tag: &str,
    at: DateTime<Utc>,
    meter_start: i32,
) -> String {
    format!(
        "{cp}|{connector_id}|{id_tag}|{}|{meter_start}",
        at.timestamp_millis()
    )
}

/// What StartTransaction produced.
pub struct Started {
    pub transaction_id: i64,
    pub authorization: Authorization,
    pub replay: bool,
}

/// Handles StartTransaction: idempotent, correlated with a pending app session, never refused.
#[expect(
    clippy::too_many_arguments,
    reason = "the fields of StartTransaction plus the clock and the staleness bound"
)]
pub fn start_transaction(
    conn: &mut DbConn,
    cp: &str,
    connector_id: u32,
    id_tag: &str,
    meter_start: i32,
    at: DateTime<Utc>,
    now: NaiveDateTime,
    stale_before: NaiveDateTime,
) -> QueryResult<Started> {
    let key = start_key(cp, connector_id, id_tag, at, meter_start);
    if let Some(existing) = queries::find_by_start_key(conn, &key)? {
        let authorization = authorize_start(conn, id_tag, now, Some(existing.id), stale_before)?;
        return Ok(Started {
            transaction_id: existing.id,
            authorization,
            replay: true,
        });
    }
    let connector = i64::from(connector_id);
    let started_at = at.naive_utc();
    let pending = queries::find_pending(conn, cp, connector, id_tag)?;
    let authorization = authorize_start(
        conn,
        id_tag,
        now,
        pending.as_ref().map(|p| p.id),
        stale_before,
    )?;
    let id = match pending {
        Some(p) => {
            queries::activate(conn, p.id, &key, started_at, i64::from(meter_start), now)?;
            p.id
        }
        None => {
            let id = queries::insert_session(
                conn,
                NewSession {
                    user_id: authorization.user_id,
                    charge_point_id: cp,
                    connector_id: connector,
                    id_tag,
                    origin: if authorization.app {
                        SessionOrigin::App
                    } else {
                        SessionOrigin::Rfid
                    },
                    status: SessionStatus::Active,
                    start_key: Some(&key),
                    started_at: Some(started_at),
                    meter_start_wh: Some(i64::from(meter_start)),
                    created_at: now,
                    updated_at: now,
                },
            )?;
            if authorization.app {
                queries::flag(
                    conn,
                    id,
                    SessionFlag::LateStartAfterFailure,
                    "started by the charger after the app request had ended",
                    now,
                )?;
            }
            id
        }
    };
    if authorization.status != AuthStatus::Accepted {
        queries::flag(
            conn,
            id,
            SessionFlag::UnauthorizedStart,
            &format!(
                "{}: {}",
                authorization.status.as_str(),
                authorization.reason
            ),
            now,
        )?;
    }
    integrity::check_start(conn, id, cp, connector, meter_start, now)?;
    Ok(Started {
        transaction_id: id,
        authorization,
        replay: false,
    })
}

/// Converts a sampled value to the stored row, with the normalised number for energy (Wh),
/// power (W), SoC (%), current (mA) and voltage (mV).
fn row_of(
    cp: &str,
    connector_id: i64,
    transaction_id: Option<i64>,
    session_id: Option<i64>,
    at: NaiveDateTime,
    v: &Reading,
    now: NaiveDateTime,
) -> MeterValueRow {
    let measurand = v
        .measurand
        .clone()
        .unwrap_or_else(|| queries::ENERGY_REGISTER.to_string());
    let unit = v.unit.clone();
    let format = v.format.clone();
    MeterValueRow {
        id: 0,
        session_id,
        charge_point_id: cp.to_string(),
        connector_id,
        transaction_id,
        sampled_at: at,
        normalized: if format.as_deref() == Some("SignedData") {
            None
        } else {
            normalize_value(&measurand, unit.as_deref(), &v.value)
        },
        measurand,
        phase: v.phase.clone(),
        unit,
        context: v.context.clone(),
        location: v.location.clone(),
        format,
        value: v.value.clone(),
        received_at: now,
    }
}

/// Normalises a reading to an integer in the stored unit, or `None` if it cannot be read.
pub fn normalize_value(measurand: &str, unit: Option<&str>, value: &str) -> Option<i64> {
    let number: Decimal = value.trim().parse().ok()?;
    let factor = match (measurand, unit) {
        (m, None | Some("Wh")) if m.starts_with("Energy.Active") => Decimal::ONE,
        (m, Some("kWh")) if m.starts_with("Energy.Active") => Decimal::from(1000),
        (m, None | Some("W")) if m.starts_with("Power.Active") => Decimal::ONE,
        (m, Some("kW")) if m.starts_with("Power.Active") => Decimal::from(1000),
        ("SoC", None | Some("Percent")) => Decimal::ONE,
        (m, None | Some("A")) if m.starts_with("Current") => Decimal::from(1000),
        ("Voltage", None | Some("V")) => Decimal::from(1000),
        _ => return None,
    };
    (number * factor).round().to_i64()
}

/// Stores meter values as sent, each linked to its session: the given transaction if it is
/// this charger's, else the session running on the connector at the sample's time. Returns
/// the ids of foreign transactions the charger tried to touch.
pub fn store_meter_values(
    conn: &mut DbConn,
    cp: &str,
    connector_id: u32,
    transaction_id: Option<i32>,
    values: &[MeterSample],
    now: NaiveDateTime,
) -> QueryResult<Vec<i64>> {
    let connector = i64::from(connector_id);
    let mut foreign = Vec::new();
    let tx_session = match transaction_id {
        Some(tx) => match queries::find_session(conn, i64::from(tx))? {
            Some(s) if s.charge_point_id == cp => Some(s),
            Some(s) => {
                foreign.push(s.id);
                None
            }
            None => None,
        },
        None => None,
    };
    let mut rows = Vec::new();
    // The sessions these samples belong to, loaded once each.
    let mut touched: Vec<Session> = tx_session.into_iter().collect();
    for mv in values {
        let at = mv.at.naive_utc();
        let session = match (touched.first(), transaction_id) {
            (Some(s), Some(_)) => Some(s.id),
            (None, Some(_)) => None,
            (_, None) if connector > 0 => match queries::session_at(conn, cp, connector, at)? {
                Some(s) => {
                    let id = s.id;
                    if !touched.iter().any(|t| t.id == id) {
                        touched.push(s);
                    }
                    Some(id)
                }
                None => None,
            },
            (_, None) => None,
        };
        for v in &mv.readings {
            rows.push(row_of(
                cp,
                connector,
                transaction_id.map(i64::from),
                session,
                at,
                v,
                now,
            ));
        }
    }
    // A charger resends what it got no answer for (the central system may have stored it and
    // crashed before answering): samples already stored for the session are not stored twice.
    for s in touched.iter().map(|s| s.id) {
        let mut at: Vec<NaiveDateTime> = rows
            .iter()
            .filter(|r| r.session_id == Some(s))
            .map(|r| r.sampled_at)
            .collect();
        at.sort_unstable();
        at.dedup();
        let stored = queries::stored_samples(conn, s, &at)?;
        if !stored.is_empty() {
            rows.retain(|r| {
                r.session_id != Some(s)
                    || !stored.iter().any(|(t, m, p, v)| {
                        *t == r.sampled_at && *m == r.measurand && *p == r.phase && *v == r.value
                    })
            });
        }
    }
    // Integrity checks against what was stored before, then store everything as sent.
    for s in &touched {
        check_energy(
            conn,
            s,
            rows.iter().filter(|r| r.session_id == Some(s.id)),
            now,
        )?;
    }
    queries::insert_meter_values(conn, &rows)?;
    Ok(foreign)
}

fn check_energy<'a>(
    conn: &mut DbConn,
    session: &Session,
    rows: impl Iterator<Item = &'a MeterValueRow>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let session_id = session.id;
    // Only the new samples and their neighbours need checking: earlier pairs were checked when
    // they arrived (this keeps a MeterValues message O(batch), not O(session length)).
    let new: Vec<(NaiveDateTime, i64)> = rows
        .filter(|r| r.measurand == queries::ENERGY_REGISTER && r.phase.is_none())
        .filter_map(|r| r.normalized.map(|n| (r.sampled_at, n)))
        .collect();
    integrity::zero_start_reading(conn, session, &new, now)?;
    let (Some(from), Some(to)) = (new.iter().map(|s| s.0).min(), new.iter().map(|s| s.0).max())
    else {
        return Ok(());
    };
    let mut samples: Vec<((NaiveDateTime, i64), bool)> =
        queries::energy_samples_around(conn, session_id, from, to)?
            .into_iter()
            .map(|s| (s, false))
            .collect();
    samples.extend(new.into_iter().map(|s| (s, true)));
    samples.sort();
    for pair in samples.windows(2) {
        let (((t0, e0), new0), ((t1, e1), new1)) = (pair[0], pair[1]);
        if !(new0 || new1) {
            continue;
        }
        if e1 < e0 {
            queries::flag(
                conn,
                session_id,
                SessionFlag::RegisterBackwards,
                &format!(
                    "energy register went from {e0} Wh to {e1} Wh at {}Z",
                    t1.format("%Y-%m-%dT%H:%M:%S")
                ),
                now,
            )?;
        }
        if t1 - t0 > GAP {
            queries::flag(
                conn,
                session_id,
                SessionFlag::MeterGap,
                &format!(
                    "no energy reading between {}Z and {}Z",
                    t0.format("%Y-%m-%dT%H:%M:%S"),
                    t1.format("%Y-%m-%dT%H:%M:%S")
                ),
                now,
            )?;
        }
    }
    Ok(())
}

/// What StopTransaction found.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    Finished(i64),
    /// A replay of a stop already recorded.
    AlreadyFinished(i64),
    /// No such transaction of this charger: accepted and logged.
    Unknown,
}

/// Handles StopTransaction: finishes the session with the charger's own timestamp and
/// reading, stores the transaction data, flags what is suspect. Never refuses.
#[expect(
    clippy::too_many_arguments,
    reason = "mirrors the fields of StopTransaction.req"
)]
pub fn stop_transaction(
    conn: &mut DbConn,
    cp: &str,
    transaction_id: i32,
    meter_stop: i32,
    at: DateTime<Utc>,
    reason: Option<&str>,
    data: &[MeterSample],
    now: NaiveDateTime,
) -> QueryResult<Stopped> {
    let session = queries::find_session(conn, i64::from(transaction_id))?
        .filter(|s| s.charge_point_id == cp && s.status != SessionStatus::Pending);
    let Some(session) = session else {
        // Keep the data anyway, unlinked, with the transaction id as sent.
        let connector = 0;
        store_meter_values(conn, cp, connector, Some(transaction_id), data, now)?;
        let mut event = NewEvent::user(None, "unknown_transaction_stop", audit::FAILURE, None, now)
            .because(format!("StopTransaction for unknown transaction {transaction_id} (meterStop {meter_stop} Wh) accepted and logged"));
        event.actor = format!("charger:{cp}");
        event.charge_point_id = Some(cp.to_string());
        audit::record(conn, &event)?;
        return Ok(Stopped::Unknown);
    };
    if matches!(
        session.status,
        SessionStatus::Finished | SessionStatus::Failed
    ) {
        if session.stop_reason.as_deref() == Some("ForceClosed") {
            // The charger came back after an operator closed the session: keep what it says.
            let connector = u32::try_from(session.connector_id).unwrap_or(0);
            store_meter_values(conn, cp, connector, Some(transaction_id), data, now)?;
            let mut event = NewEvent::user(
                session.user_id,
                "stop_after_force_close",
                audit::FAILURE,
                None,
                now,
            )
            .because(format!(
                "StopTransaction for force-closed session {} (meterStop {meter_stop} Wh at {}) stored for review",
                session.id,
                at.naive_utc()
            ));
            event.actor = format!("charger:{cp}");
            event.charge_point_id = Some(cp.to_string());
            audit::record(conn, &event)?;
        }
        return Ok(Stopped::AlreadyFinished(session.id));
    }
    let connector = u32::try_from(session.connector_id).unwrap_or(0);
    store_meter_values(conn, cp, connector, Some(transaction_id), data, now)?;
    queries::finish(
        conn,
        session.id,
        at.naive_utc(),
        i64::from(meter_stop),
        reason,
        now,
    )?;
    if let Some(start) = session.meter_start_wh {
        if i64::from(meter_stop) < start {
            queries::flag(
                conn,
                session.id,
                SessionFlag::MeterStopBelowStart,
                &format!("meterStop {meter_stop} Wh is below meterStart {start} Wh"),
                now,
            )?;
        }
    }
    let samples = queries::energy_samples(conn, session.id)?;
    integrity::zero_start_stop(
        conn,
        &session,
        i64::from(meter_stop),
        at.naive_utc(),
        !samples.is_empty(),
        now,
    )?;
    if let Some((_, last)) = samples.last() {
        if i64::from(meter_stop) < *last {
            queries::flag(
                conn,
                session.id,
                SessionFlag::RegisterBackwards,
                &format!("meterStop {meter_stop} Wh is below the last reading {last} Wh"),
                now,
            )?;
        }
    }
    Ok(Stopped::Finished(session.id))
}

/// How a force-closed session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForceClosed {
    pub session_id: i64,
    pub stopped_at: NaiveDateTime,
    pub meter_stop_wh: i64,
}

/// Ends an active session whose charger will never report its stop (operator). It is billed
/// from the last energy reading the charger sent (or the start register when it sent none),
/// stopped at that reading's time, flagged `force_closed` with the operator's reason, and
/// audited. A StopTransaction that arrives later is still stored, and logged.
pub fn force_close(
    conn: &mut DbConn,
    session_id: i64,
    operator: i64,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<ForceClosed>> {
    let Some(s) =
        queries::find_session(conn, session_id)?.filter(|s| s.status == SessionStatus::Active)
    else {
        return Ok(None);
    };
    let start = s.started_at.unwrap_or(s.created_at);
    let last = queries::energy_samples(conn, s.id)?
        .into_iter()
        .filter(|(at, _)| *at >= start)
        .max_by_key(|(at, _)| *at);
    let meter_start = s.meter_start_wh.unwrap_or(0);
    let (stopped_at, meter_stop) = match last {
        Some((at, wh)) => (at, wh.max(meter_start)),
        None => (start, meter_start),
    };
    if !queries::finish(conn, s.id, stopped_at, meter_stop, Some("ForceClosed"), now)? {
        return Ok(None);
    }
    let detail = format!(
        "closed by operator {operator}: {reason}; billed to the last reading ({meter_stop} Wh at {stopped_at})"
    );
    queries::flag(conn, s.id, SessionFlag::ForceClosed, &detail, now)?;
    let mut event = NewEvent::user(
        Some(operator),
        "session_force_closed",
        audit::SUCCESS,
        None,
        now,
    )
    .because(format!("session {}: {detail}", s.id));
    event.charge_point_id = Some(s.charge_point_id.clone());
    audit::record(conn, &event)?;
    Ok(Some(ForceClosed {
        session_id: s.id,
        stopped_at,
        meter_stop_wh: meter_stop,
    }))
}

/// Whether an OCPP connector status means the car is drawing energy.
pub fn is_charging_status(status: &str) -> bool {
    status == "Charging"
}

/// Whether an OCPP connector status means the car occupies the connector without charging.
pub fn is_idle_status(status: &str) -> bool {
    matches!(status, "SuspendedEV" | "SuspendedEVSE" | "Finishing")
}

/// The state a connector status puts the session in, for time accounting: `Some(true)` for
/// charging, `Some(false)` for idle, `None` for statuses that do not change it.
pub fn charging_state(status: &str) -> Option<bool> {
    if is_charging_status(status) {
        Some(true)
    } else if is_idle_status(status) {
        Some(false)
    } else {
        None
    }
}

/// Splits `[start, end]` into charging and idle seconds from the connector's status history
/// (the last status before `start` and every change inside). A session starts as charging; a
/// status that is neither charging nor idle (Available, Preparing, …) keeps the state it had.
/// The two always add up to the session's duration, as in billing.
pub fn durations(
    start: NaiveDateTime,
    end: NaiveDateTime,
    history: &[(NaiveDateTime, String)],
) -> (i64, i64) {
    if end <= start {
        return (0, 0);
    }
    let (mut charging, mut idle) = (0i64, 0i64);
    let mut state = true;
    let mut since = start;
    for (at, status) in history {
        let at = (*at).clamp(start, end);
        if let Some(next) = charging_state(status) {
            let secs = (at - since).num_seconds();
            if state {
                charging += secs
            } else {
                idle += secs
            }
            since = at;
            state = next;
        }
    }
    let secs = (end - since).num_seconds();
    if state {
        charging += secs
    } else {
        idle += secs
    }
    (charging, idle)
}

/// An integrity flag as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlagView {
    pub flag: SessionFlag,
    pub detail: String,
}

/// A session as the app shows it, live or final.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionView {
    pub id: i64,
    pub status: SessionStatus,
    pub charge_point_id: String,
    pub connector_id: i64,
    pub origin: SessionOrigin,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::http::time::as_utc_opt")]
    pub started_at: Option<NaiveDateTime>,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::http::time::as_utc_opt")]
    pub stopped_at: Option<NaiveDateTime>,
    pub meter_start_wh: Option<i64>,
    pub meter_stop_wh: Option<i64>,
    /// Energy so far (live) or in total (finished), from the charger's energy register.
    pub energy_wh: i64,
    /// Latest active power while charging.
    pub power_w: Option<i64>,
    /// Latest state of charge in percent, when the charger reports it.
    pub soc: Option<i64>,
    pub charging_seconds: i64,
    pub idle_seconds: i64,
    pub stop_reason: Option<String>,
    pub failure_reason: Option<String>,
    /// Integrity flags; a flagged session is held for operator review before billing.
    pub flags: Vec<FlagView>,
}

/// Builds the view of a session from its row and stored readings (what charging recorded;
/// billing adds the cost on top, see `billing::records::with_cost`).
pub fn view(conn: &mut DbConn, s: Session, now: NaiveDateTime) -> QueryResult<SessionView> {
    let live = s.status == SessionStatus::Active;
    let latest_energy = queries::latest_value(conn, s.id, queries::ENERGY_REGISTER)?;
    let energy_wh = match (s.meter_start_wh, s.meter_stop_wh, latest_energy) {
        (Some(start), Some(stop), _) => (stop - start).max(0),
        (Some(start), None, Some((_, e))) => (e - start).max(0),
        _ => 0,
    };
    let power_w = if live {
        queries::latest_value(conn, s.id, "Power.Active.Import")?.map(|(_, p)| p)
    } else {
        None
    };
    let soc = queries::latest_value(conn, s.id, "SoC")?.map(|(_, v)| v);
    let (charging_seconds, idle_seconds) = match s.started_at {
        Some(start) => {
            let end = s.stopped_at.unwrap_or(now);
            let history =
                queries::status_history(conn, &s.charge_point_id, s.connector_id, start, end)?;
            durations(start, end, &history)
        }
        None => (0, 0),
    };
    let flags = queries::flags_of(conn, &[s.id])?
        .into_iter()
        .map(|(_, flag, detail)| FlagView { flag, detail })
        .collect();
    Ok(SessionView {
        id: s.id,
        status: s.status,
        charge_point_id: s.charge_point_id,
        connector_id: s.connector_id,
        origin: s.origin,
        started_at: s.started_at,
        stopped_at: s.stopped_at,
        meter_start_wh: s.meter_start_wh,
        meter_stop_wh: s.meter_stop_wh,
        energy_wh,
        power_w,
        soc,
        charging_seconds,
        idle_seconds,
        stop_reason: s.stop_reason,
        failure_reason: s.failure_reason,
        flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(min: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + min * 60, 0)
            .unwrap()
            .naive_utc()
    }

    #[test]
    fn uids_are_normalised_and_masked() {
        assert_eq!(normalize_uid("04:a1:b2:c3").as_deref(), Some("04A1B2C3"));
        assert_eq!(
            normalize_uid("04 A1-B2 C3 D4 E5 F6").as_deref(),
            Some("04A1B2C3D4E5F6")
        );
        // Any CiString20 is a tag: kept as sent, upper-cased, trimmed.
        assert_eq!(normalize_uid("xyz").as_deref(), Some("XYZ"));
        assert_eq!(normalize_uid(" TAG-001 ").as_deref(), Some("TAG-001"));
        assert_eq!(normalize_uid("tag-001").as_deref(), Some("TAG-001"));
        assert_eq!(normalize_uid("ÅÄÖ-ß").as_deref(), Some("ÅÄÖ-ß"));
        assert_eq!(
            normalize_uid(&"Z".repeat(20)).as_deref(),
            Some(&*"Z".repeat(20))
        );
        assert_eq!(normalize_uid(&"Z".repeat(21)), None);
        assert_eq!(normalize_uid(""), None);
        assert_eq!(normalize_uid("   "), None);
        assert_eq!(normalize_uid("A\nB"), None);
        assert_eq!(mask_uid("04A1B2C3"), "04A1…");
    }

    #[test]
    fn readings_are_normalised_to_integer_units() {
        assert_eq!(
            normalize_value("Energy.Active.Import.Register", Some("kWh"), "12.3456"),
            Some(12346)
        );
        assert_eq!(
            normalize_value("Energy.Active.Import.Register", None, "1500"),
            Some(1500)
        );
        assert_eq!(
            normalize_value("Power.Active.Import", Some("kW"), "7.4"),
            Some(7400)
        );
        assert_eq!(normalize_value("SoC", Some("Percent"), "55"), Some(55));
        assert_eq!(
            normalize_value("Current.Import", Some("A"), "16.2"),
            Some(16200)
        );
        assert_eq!(
            normalize_value("Energy.Active.Import.Register", Some("kWh"), "n/a"),
            None
        );
        assert_eq!(normalize_value("Temperature", Some("Celsius"), "20"), None);
    }

    #[test]
    fn durations_split_charging_and_idle_time() {
        let h = |v: &[(i64, &str)]| {
            v.iter()
                .map(|(m, s)| (t(*m), s.to_string()))
                .collect::<Vec<_>>()
        };
        // Preparing before start, charging 0–40, suspended 40–60.
        let history = h(&[(-1, "Preparing"), (0, "Charging"), (40, "SuspendedEV")]);
        assert_eq!(durations(t(0), t(60), &history), (40 * 60, 20 * 60));
        // Idle before the start carries into the session until charging begins.
        let history = h(&[(-5, "SuspendedEVSE"), (10, "Charging")]);
        assert_eq!(durations(t(0), t(30), &history), (20 * 60, 10 * 60));
        // No status at all: all charging.
        assert_eq!(durations(t(0), t(10), &[]), (600, 0));
        // Changes after the end are ignored; Available keeps the state it had.
        let history = h(&[
            (0, "Charging"),
            (10, "Available"),
            (20, "SuspendedEV"),
            (90, "Finishing"),
        ]);
        assert_eq!(durations(t(0), t(30), &history), (20 * 60, 10 * 60));
        assert_eq!(durations(t(10), t(5), &history), (0, 0));
    }
}
