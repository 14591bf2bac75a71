//! Named queries on charging sessions, meter values, status events, flags, RFID cards and app
//! id tags.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::schema::{
    app_id_tags, charge_points, charging_sessions, meter_values, rfid_cards, session_flags,
    status_events,
};
use crate::db::DbConn;

crate::db::text_enum! {
    /// A charging session's state.
    pub enum SessionStatus: "session status" {
        /// Asked for from the app (or by an operator); the charger has not started it yet.
        Pending = "pending",
        /// Charging (or plugged in and idle) under a transaction of the charger.
        Active = "active",
        /// Stopped by the charger, the driver or an operator.
        Finished = "finished",
        /// A remote start that the charger refused or never began.
        Failed = "failed",
    }
}

crate::db::text_enum! {
    /// How a session was started.
    pub enum SessionOrigin: "session origin" {
        /// An RFID card (or any idTag) presented at the charger.
        Rfid = "rfid",
        /// The driver's app (or an operator for the driver): RemoteStartTransaction.
        App = "app",
    }
}

/// A charging session row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = charging_sessions)]
pub struct Session {
    pub id: i64,
    pub user_id: Option<i64>,
    pub charge_point_id: String,
    pub connector_id: i64,
    pub id_tag: String,
    #[diesel(deserialize_as = String)]
    pub origin: SessionOrigin,
    #[diesel(deserialize_as = String)]
    pub status: SessionStatus,
    pub start_key: Option<String>,
    pub started_at: Option<NaiveDateTime>,
    pub stopped_at: Option<NaiveDateTime>,
    pub meter_start_wh: Option<i64>,
    pub meter_stop_wh: Option<i64>,
    pub stop_reason: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// A session to insert.
#[derive(Debug, Insertable)]
#[diesel(table_name = charging_sessions)]
pub struct NewSession<'a> {
    pub user_id: Option<i64>,
    pub charge_point_id: &'a str,
    pub connector_id: i64,
    pub id_tag: &'a str,
    #[diesel(serialize_as = String)]
    pub origin: SessionOrigin,
    #[diesel(serialize_as = String)]
    pub status: SessionStatus,
    pub start_key: Option<&'a str>,
    pub started_at: Option<NaiveDateTime>,
    pub meter_start_wh: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Inserts a session and returns its id.
pub fn insert_session(conn: &mut DbConn, new: NewSession<'_>) -> QueryResult<i64> {
    diesel::insert_into(charging_sessions::table)
        .values(new)
        .returning(charging_sessions::id)
        .get_result(conn)
}

/// Finds a session.
pub fn find_session(conn: &mut DbConn, id: i64) -> QueryResult<Option<Session>> {
    charging_sessions::table
        .find(id)
        .select(Session::as_select())
        .first(conn)
        .optional()
}

/// Finds a session by its StartTransaction idempotency key.
pub fn find_by_start_key(conn: &mut DbConn, key: &str) -> QueryResult<Option<Session>> {
    charging_sessions::table
        .filter(charging_sessions::start_key.eq(key))
        .select(Session::as_select())
        .first(conn)
        .optional()
}

/// The pending app session on a connector for an id tag, oldest first.
pub fn find_pending(
    conn: &mut DbConn,
    cp: &str,
    connector_id: i64,
    id_tag: &str,
) -> QueryResult<Option<Session>> {
    charging_sessions::table
        .filter(charging_sessions::charge_point_id.eq(cp))
        .filter(charging_sessions::connector_id.eq(connector_id))
        .filter(charging_sessions::id_tag.eq(id_tag))
        .filter(charging_sessions::status.eq(SessionStatus::Pending.as_str()))
        .order(charging_sessions::id)
        .select(Session::as_select())
        .first(conn)
        .optional()
}

/// Open (pending or active) sessions on a connector.
pub fn open_on_connector(
    conn: &mut DbConn,
    cp: &str,
    connector_id: i64,
) -> QueryResult<Vec<Session>> {
    charging_sessions::table
        .filter(charging_sessions::charge_point_id.eq(cp))
        .filter(charging_sessions::connector_id.eq(connector_id))
        .filter(charging_sessions::status.eq_any([
            SessionStatus::Pending.as_str(),
            SessionStatus::Active.as_str(),
        ]))
        .select(Session::as_select())
        .load(conn)
}

/// Open (pending or active) sessions of a user.
pub fn open_for_user(conn: &mut DbConn, user_id: i64) -> QueryResult<Vec<Session>> {
    charging_sessions::table
        .filter(charging_sessions::user_id.eq(user_id))
        .filter(charging_sessions::status.eq_any([
            SessionStatus::Pending.as_str(),
            SessionStatus::Active.as_str(),
        ]))
        .select(Session::as_select())
        .load(conn)
}

/// Open sessions of a user that still count as running: pending, or active and not stale.
pub fn running_for_user(
    conn: &mut DbConn,
    user_id: i64,
    stale_before: NaiveDateTime,
) -> QueryResult<Vec<Session>> {
    let open = open_for_user(conn, user_id)?;
    if !open.iter().any(|s| s.status == SessionStatus::Active) {
        return Ok(open);
    }
    let stale: Vec<i64> = stale_sessions_query(stale_before)
        .filter(charging_sessions::user_id.eq(user_id))
        .select(charging_sessions::id)
        .load(conn)?;
    Ok(open
        .into_iter()
        .filter(|s| !stale.contains(&s.id))
        .collect())
}

/// Active sessions whose charger is offline and has sent nothing since `stale_before`: the
/// charger may never report their stop. Oldest first.
pub fn stale_sessions(
    conn: &mut DbConn,
    stale_before: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<Session>> {
    stale_sessions_query(stale_before)
        .order(charging_sessions::id.asc())
        .limit(limit)
        .select(Session::as_select())
        .load(conn)
}

/// Whether a session is stale (see [`stale_sessions`]).
pub fn is_stale(conn: &mut DbConn, id: i64, stale_before: NaiveDateTime) -> QueryResult<bool> {
    use diesel::dsl::{exists, select};
    select(exists(
        stale_sessions_query(stale_before).filter(charging_sessions::id.eq(id)),
    ))
    .get_result(conn)
}

type StaleQuery = diesel::dsl::Filter<
    diesel::dsl::Filter<
        diesel::dsl::Filter<
            diesel::dsl::InnerJoin<charging_sessions::table, charge_points::table>,
            diesel::dsl::Eq<charging_sessions::status, &'static str>,
        >,
        diesel::dsl::Eq<charge_points::online, bool>,
    >,
    diesel::dsl::Or<
        diesel::dsl::IsNull<charge_points::last_seen_at>,
        diesel::dsl::Lt<charge_points::last_seen_at, NaiveDateTime>,
    >,
>;

fn stale_sessions_query(stale_before: NaiveDateTime) -> StaleQuery {
    charging_sessions::table
        .inner_join(charge_points::table)
        .filter(charging_sessions::status.eq(SessionStatus::Active.as_str()))
        .filter(charge_points::online.eq(false))
        .filter(
            charge_points::last_seen_at
                .is_null()
                .or(charge_points::last_seen_at.lt(stale_before)),
        )
}

/// The session of a connector that was running at `at` (for meter values without a
/// transaction id): started at or before `at` and not stopped before it.
pub fn session_at(
    conn: &mut DbConn,
    cp: &str,
    connector_id: i64,
    at: NaiveDateTime,
) -> QueryResult<Option<Session>> {
    charging_sessions::table
        .filter(charging_sessions::charge_point_id.eq(cp))
        .filter(charging_sessions::connector_id.eq(connector_id))
        .filter(charging_sessions::started_at.le(at))
        .filter(
            charging_sessions::stopped_at
                .is_null()
                .or(charging_sessions::stopped_at.ge(at)),
        )
        .order(charging_sessions::started_at.desc())
        .select(Session::as_select())
        .first(conn)
        .optional()
}

/// The highest meter stop recorded on a connector before a session (for baseline checks).
pub fn previous_meter_stop(
    conn: &mut DbConn,
    cp: &str,
    connector_id: i64,
    before_id: i64,
) -> QueryResult<Option<i64>> {
    charging_sessions::table
        .filter(charging_sessions::charge_point_id.eq(cp))
        .filter(charging_sessions::connector_id.eq(connector_id))
        .filter(charging_sessions::id.lt(before_id))
        .filter(charging_sessions::status.eq(SessionStatus::Finished.as_str()))
        .select(diesel::dsl::max(charging_sessions::meter_stop_wh))
        .first(conn)
}

/// Turns a pending app session active with the charger's start data.
pub fn activate(
    conn: &mut DbConn,
    id: i64,
    start_key: &str,
    started_at: NaiveDateTime,
    meter_start: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        charging_sessions::table
            .find(id)
            .filter(charging_sessions::status.eq(SessionStatus::Pending.as_str())),
    )
    .set((
        charging_sessions::status.eq(SessionStatus::Active.as_str()),
        charging_sessions::start_key.eq(Some(start_key)),
        charging_sessions::started_at.eq(Some(started_at)),
        charging_sessions::meter_start_wh.eq(Some(meter_start)),
        charging_sessions::updated_at.eq(now),
    ))
    .execute(conn)
}

/// Ends a pending session as failed; returns whether it was still pending.
pub fn fail_pending(
    conn: &mut DbConn,
    id: i64,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        charging_sessions::table
            .find(id)
            .filter(charging_sessions::status.eq(SessionStatus::Pending.as_str())),
    )
    .set((
        charging_sessions::status.eq(SessionStatus::Failed.as_str()),
        charging_sessions::failure_reason.eq(Some(reason)),
        charging_sessions::updated_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Ends pending app sessions created before `cutoff` as failed (their RemoteStart task died
/// with a restarted server); returns how many.
pub fn fail_stale_pending(
    conn: &mut DbConn,
    cutoff: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        charging_sessions::table
            .filter(charging_sessions::status.eq(SessionStatus::Pending.as_str()))
            .filter(charging_sessions::created_at.lt(cutoff)),
    )
    .set((
        charging_sessions::status.eq(SessionStatus::Failed.as_str()),
        charging_sessions::failure_reason.eq(Some("the charger did not start the session in time")),
        charging_sessions::updated_at.eq(now),
    ))
    .execute(conn)
}

/// Finishes an active session; returns whether it was still active.
pub fn finish(
    conn: &mut DbConn,
    id: i64,
    stopped_at: NaiveDateTime,
    meter_stop: i64,
    reason: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        charging_sessions::table
            .find(id)
            .filter(charging_sessions::status.eq(SessionStatus::Active.as_str())),
    )
    .set((
        charging_sessions::status.eq(SessionStatus::Finished.as_str()),
        charging_sessions::stopped_at.eq(Some(stopped_at)),
        charging_sessions::meter_stop_wh.eq(Some(meter_stop)),
        charging_sessions::stop_reason.eq(reason),
        charging_sessions::updated_at.eq(now),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Filters for session lists.
#[derive(Debug, Default, Clone)]
pub struct SessionFilter {
    pub user_id: Option<i64>,
    pub charge_point_id: Option<String>,
    pub status: Option<SessionStatus>,
}

/// Sessions newest first, `limit` rows with ids below `before`.
pub fn list_sessions(
    conn: &mut DbConn,
    filter: &SessionFilter,
    limit: i64,
    before: Option<i64>,
) -> QueryResult<Vec<Session>> {
    let mut q = charging_sessions::table
        .select(Session::as_select())
        .order(charging_sessions::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(u) = filter.user_id {
        q = q.filter(charging_sessions::user_id.eq(u));
    }
    if let Some(cp) = &filter.charge_point_id {
        q = q.filter(charging_sessions::charge_point_id.eq(cp.clone()));
    }
    if let Some(s) = &filter.status {
        q = q.filter(charging_sessions::status.eq(s.as_str()));
    }
    if let Some(b) = before {
        q = q.filter(charging_sessions::id.lt(b));
    }
    q.load(conn)
}

/// A stored sampled value.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = meter_values)]
pub struct MeterValueRow {
    #[diesel(skip_insertion)]
    pub id: i64,
    pub session_id: Option<i64>,
    pub charge_point_id: String,
    pub connector_id: i64,
    pub transaction_id: Option<i64>,
    pub sampled_at: NaiveDateTime,
    pub measurand: String,
    pub phase: Option<String>,
    pub unit: Option<String>,
    pub context: Option<String>,
    pub location: Option<String>,
    pub format: Option<String>,
    pub value: String,
    pub normalized: Option<i64>,
    pub received_at: NaiveDateTime,
}

/// Inserts sampled values in batches below both backends' bind-parameter limits.
pub fn insert_meter_values(conn: &mut DbConn, rows: &[MeterValueRow]) -> QueryResult<()> {
    // 14 columns per row; 1,000 rows stay under SQLite's 32,766 and PostgreSQL's 65,535.
    for chunk in rows.chunks(1000) {
        // Multi-row VALUES needs each backend's own query builder.
        match conn {
            DbConn::Sqlite(c) => diesel::insert_into(meter_values::table)
                .values(chunk)
                .execute(c)?,
            DbConn::Postgres(c) => diesel::insert_into(meter_values::table)
                .values(chunk)
                .execute(c)?,
        };
    }
    Ok(())
}

/// A session's sampled values in order, `limit` rows with ids above `after`.
pub fn meter_values_of(
    conn: &mut DbConn,
    session_id: i64,
    limit: i64,
    after: Option<i64>,
) -> QueryResult<Vec<MeterValueRow>> {
    let mut q = meter_values::table
        .filter(meter_values::session_id.eq(session_id))
        .order(meter_values::id)
        .limit(limit)
        .select(MeterValueRow::as_select())
        .into_boxed();
    if let Some(a) = after {
        q = q.filter(meter_values::id.gt(a));
    }
    q.load(conn)
}

/// The latest normalized value of a measurand in a session.
pub fn latest_value(
    conn: &mut DbConn,
    session_id: i64,
    measurand: &str,
) -> QueryResult<Option<(NaiveDateTime, i64)>> {
    meter_values::table
        .filter(meter_values::session_id.eq(session_id))
        .filter(meter_values::measurand.eq(measurand))
        // Per-phase readings are not the total.
        .filter(meter_values::phase.is_null())
        .filter(meter_values::normalized.is_not_null())
        .order((meter_values::sampled_at.desc(), meter_values::id.desc()))
        .select((
            meter_values::sampled_at,
            meter_values::normalized.assume_not_null(),
        ))
        .first(conn)
        .optional()
}

/// The energy register samples of a session in time order.
/// A stored sample's identity: (time, measurand, phase, value).
pub type StoredSample = (NaiveDateTime, String, Option<String>, String);

/// The samples already stored for a session at the given times.
pub fn stored_samples(
    conn: &mut DbConn,
    session_id: i64,
    at: &[NaiveDateTime],
) -> QueryResult<Vec<StoredSample>> {
    meter_values::table
        .filter(meter_values::session_id.eq(session_id))
        .filter(meter_values::sampled_at.eq_any(at))
        .select((
            meter_values::sampled_at,
            meter_values::measurand,
            meter_values::phase,
            meter_values::value,
        ))
        .load(conn)
}

/// The energy-register samples of a session within `[from, to]`, plus the last one before
/// `from` and the first one after `to`: what a new batch must be checked against.
pub fn energy_samples_around(
    conn: &mut DbConn,
    session_id: i64,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<(NaiveDateTime, i64)>> {
    let base = || {
        meter_values::table
            .filter(meter_values::session_id.eq(session_id))
            .filter(meter_values::measurand.eq(ENERGY_REGISTER))
            .filter(meter_values::phase.is_null())
            .filter(meter_values::normalized.is_not_null())
            .select((
                meter_values::sampled_at,
                meter_values::normalized.assume_not_null(),
            ))
    };
    let mut samples: Vec<(NaiveDateTime, i64)> = base()
        .filter(meter_values::sampled_at.between(from, to))
        .load(conn)?;
    let before: Option<(NaiveDateTime, i64)> = base()
        .filter(meter_values::sampled_at.lt(from))
        .order((meter_values::sampled_at.desc(), meter_values::id.desc()))
        .first(conn)
        .optional()?;
    let after: Option<(NaiveDateTime, i64)> = base()
        .filter(meter_values::sampled_at.gt(to))
        .order((meter_values::sampled_at, meter_values::id))
        .first(conn)
        .optional()?;
    samples.extend(before);
    samples.extend(after);
    Ok(samples)
}

pub fn energy_samples(
    conn: &mut DbConn,
    session_id: i64,
) -> QueryResult<Vec<(NaiveDateTime, i64)>> {
    meter_values::table
        .filter(meter_values::session_id.eq(session_id))
        .filter(meter_values::measurand.eq(ENERGY_REGISTER))
        .filter(meter_values::phase.is_null())
        .filter(meter_values::normalized.is_not_null())
        .order((meter_values::sampled_at, meter_values::id))
        .select((
            meter_values::sampled_at,
            meter_values::normalized.assume_not_null(),
        ))
        .load(conn)
}

/// The measurand holding the energy register.
pub const ENERGY_REGISTER: &str = "Energy.Active.Import.Register";

/// Records a connector status change.
pub fn insert_status_event(
    conn: &mut DbConn,
    cp: &str,
    connector_id: i64,
    status: &str,
    error_code: Option<&str>,
    at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(status_events::table)
        .values((
            status_events::charge_point_id.eq(cp),
            status_events::connector_id.eq(connector_id),
            status_events::status.eq(status),
            status_events::error_code.eq(error_code),
            status_events::occurred_at.eq(at),
            status_events::received_at.eq(now),
        ))
        .execute(conn)
        .map(drop)
}

/// The latest recorded status of a connector: when, which, and its error code.
pub fn latest_status_event(
    conn: &mut DbConn,
    cp: &str,
    connector_id: i64,
) -> QueryResult<Option<(NaiveDateTime, String, Option<String>)>> {
    status_events::table
        .filter(status_events::charge_point_id.eq(cp))
        .filter(status_events::connector_id.eq(connector_id))
        .order((status_events::occurred_at.desc(), status_events::id.desc()))
        .select((
            status_events::occurred_at,
            status_events::status,
            status_events::error_code,
        ))
        .first(conn)
        .optional()
}

/// Status changes of a connector relevant to `[from, to]`: the last one before `from` and all
/// inside, in time order.
pub fn status_history(
    conn: &mut DbConn,
    cp: &str,
    connector_id: i64,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<(NaiveDateTime, String)>> {
    let before: Option<(NaiveDateTime, String)> = status_events::table
        .filter(status_events::charge_point_id.eq(cp))
        .filter(status_events::connector_id.eq(connector_id))
        .filter(status_events::occurred_at.le(from))
        .order((status_events::occurred_at.desc(), status_events::id.desc()))
        .select((status_events::occurred_at, status_events::status))
        .first(conn)
        .optional()?;
    let inside: Vec<(NaiveDateTime, String)> = status_events::table
        .filter(status_events::charge_point_id.eq(cp))
        .filter(status_events::connector_id.eq(connector_id))
        .filter(status_events::occurred_at.gt(from))
        .filter(status_events::occurred_at.le(to))
        .order((status_events::occurred_at, status_events::id))
        .select((status_events::occurred_at, status_events::status))
        .load(conn)?;
    Ok(before.into_iter().chain(inside).collect())
}

/// Adds an integrity flag to a session (once per flag).
pub fn flag(
    conn: &mut DbConn,
    session_id: i64,
    flag: crate::charging::SessionFlag,
    detail: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let exists: i64 = session_flags::table
        .filter(session_flags::session_id.eq(session_id))
        .filter(session_flags::flag.eq(flag.as_str()))
        .count()
        .get_result(conn)?;
    if exists == 0 {
        diesel::insert_into(session_flags::table)
            .values((
                session_flags::session_id.eq(session_id),
                session_flags::flag.eq(flag.as_str()),
                session_flags::detail.eq(detail),
                session_flags::created_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The flags of some sessions as (session id, flag, detail).
pub fn flags_of(
    conn: &mut DbConn,
    session_ids: &[i64],
) -> QueryResult<Vec<(i64, crate::charging::SessionFlag, String)>> {
    let rows: Vec<(i64, String, String)> = session_flags::table
        .filter(session_flags::session_id.eq_any(session_ids))
        .order(session_flags::id)
        .select((
            session_flags::session_id,
            session_flags::flag,
            session_flags::detail,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(id, flag, detail)| {
            let flag = flag
                .parse()
                .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
            Ok((id, flag, detail))
        })
        .collect()
}

/// An RFID card row.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = rfid_cards)]
pub struct RfidCard {
    pub id: i64,
    pub user_id: i64,
    pub uid: String,
    pub label: String,
    #[diesel(deserialize_as = String)]
    pub status: CardStatus,
    pub expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

crate::db::text_enum! {
    /// Whether a driver's RFID card may start sessions.
    pub enum CardStatus: "card status" {
        Active = "active",
        /// Blocked by its owner (lost, stolen): refused at every charger.
        Blocked = "blocked",
    }
}

/// Finds a card by normalised uid.
pub fn find_card_by_uid(conn: &mut DbConn, uid: &str) -> QueryResult<Option<RfidCard>> {
    rfid_cards::table
        .filter(rfid_cards::uid.eq(uid))
        .select(RfidCard::as_select())
        .first(conn)
        .optional()
}

/// The user whose app id tag this is.
pub fn user_of_app_tag(conn: &mut DbConn, id_tag: &str) -> QueryResult<Option<i64>> {
    app_id_tags::table
        .filter(app_id_tags::id_tag.eq(id_tag))
        .select(app_id_tags::user_id)
        .first(conn)
        .optional()
}

/// The driver's app id tag, created on first use.
pub fn app_tag_for(conn: &mut DbConn, user_id: i64) -> QueryResult<String> {
    if let Some(tag) = app_id_tags::table
        .find(user_id)
        .select(app_id_tags::id_tag)
        .first::<String>(conn)
        .optional()?
    {
        return Ok(tag);
    }
    // 20 characters (OCPP's idTag limit), ~119 random bits, prefixed so it never looks like a
    // card uid (uids are hex).
    let tag = format!("APP{}", &crate::auth::tokens::random_token()[..17]);
    diesel::insert_into(app_id_tags::table)
        .values((
            app_id_tags::user_id.eq(user_id),
            app_id_tags::id_tag.eq(&tag),
        ))
        .execute(conn)?;
    Ok(tag)
}
