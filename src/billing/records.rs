//! Stored tariffs and the price record of each session: the tariff a session starts under is
//! snapshotted; the session is priced at StopTransaction with the same function that gives the
//! live cost; flagged sessions are held for operator review.

use chrono::{NaiveDateTime, TimeZone, Utc};
use diesel::prelude::*;
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use super::{
    price, ConnectorState, MeterSample, Money, PricedSession, PricingError, SessionUsage,
    ValidTariff,
};
use crate::charging::queries::{self as sessions, Session, SessionStatus};
use crate::charging::SessionView;
use crate::db::schema::{charge_points, locations, meter_values, session_billing, tariffs};
use crate::db::DbConn;
use crate::http::ApiError;

crate::db::text_enum! {
    /// The state of a session's price record.
    pub enum BillingStatus: "price record status" {
        /// The session runs (or its stop is not priced yet) under a snapshotted tariff.
        Open = "open",
        /// The charge point had no tariff when the session started: nothing to price.
        NoTariff = "no_tariff",
        /// Priced, waiting for the next invoice run.
        Priced = "priced",
        /// Held for operator review (integrity flags, or it cannot be priced).
        Held = "held",
        /// On an invoice.
        Billed = "billed",
    }
}

crate::db::text_enum! {
    /// What the cost shown with a session is.
    pub enum CostState: "cost state" {
        /// The session runs: the cost so far.
        Live = "live",
        /// Finished, its price record being written: the final price, not yet stored.
        Pricing = "pricing",
        /// Final, waiting for the next invoice run.
        Priced = "priced",
        /// Final, held for operator review (`hold_reason` says why).
        Held = "held",
        /// Final and invoiced.
        Billed = "billed",
        /// The cost cannot be computed; `hold_reason` says why.
        Unpriced = "unpriced",
    }
}

/// A stored tariff version.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = tariffs)]
pub struct TariffRow {
    pub id: i64,
    pub tariff_group: i64,
    pub version: i64,
    pub name: String,
    pub currency: String,
    pub vat_rate: String,
    pub ocpi: String,
    pub created_at: NaiveDateTime,
    pub superseded_at: Option<NaiveDateTime>,
}

impl TariffRow {
    /// The validated tariff, carrying its version for the priced record.
    pub fn valid(&self) -> Result<ValidTariff, ApiError> {
        let rate: Decimal = self.vat_rate.parse().map_err(|_| {
            ApiError::Internal(format!(
                "stored VAT rate of tariff {} is not a decimal",
                self.id
            ))
        })?;
        let json: serde_json::Value = serde_json::from_str(&self.ocpi).map_err(|e| {
            ApiError::Internal(format!("stored tariff {} is not JSON: {e}", self.id))
        })?;
        let valid = super::validate_tariff(&json, &self.currency, rate).map_err(|e| {
            ApiError::Internal(format!(
                "stored tariff {} no longer validates: {e:?}",
                self.id
            ))
        })?;
        Ok(valid.with_snapshot(self.tariff_group.to_string(), self.version))
    }
}

/// Inserts a tariff version; a new tariff is its own group (version 1).
pub fn insert_tariff(
    conn: &mut DbConn,
    group: Option<i64>,
    name: &str,
    valid: &ValidTariff,
    now: NaiveDateTime,
) -> QueryResult<TariffRow> {
    let version = match group {
        Some(g) => {
            diesel::update(
                tariffs::table
                    .filter(tariffs::tariff_group.eq(g))
                    .filter(tariffs::superseded_at.is_null()),
            )
            .set(tariffs::superseded_at.eq(Some(now)))
            .execute(conn)?;
            tariffs::table
                .filter(tariffs::tariff_group.eq(g))
                .select(diesel::dsl::max(tariffs::version))
                .first::<Option<i64>>(conn)?
                .unwrap_or(0)
                + 1
        }
        None => 1,
    };
    let id: i64 = diesel::insert_into(tariffs::table)
        .values((
            tariffs::tariff_group.eq(group.unwrap_or(0)),
            tariffs::version.eq(version),
            tariffs::name.eq(name),
            tariffs::currency.eq(valid.currency()),
            tariffs::vat_rate.eq(valid.vat_rate_percent().normalize().to_string()),
            tariffs::ocpi.eq(valid.ocpi_json().to_string()),
            tariffs::created_at.eq(now),
        ))
        .returning(tariffs::id)
        .get_result(conn)?;
    if group.is_none() {
        diesel::update(tariffs::table.find(id))
            .set(tariffs::tariff_group.eq(id))
            .execute(conn)?;
    }
    tariffs::table
        .find(id)
        .select(TariffRow::as_select())
        .first(conn)
}

/// The current version of a tariff group.
pub fn current_tariff(conn: &mut DbConn, group: i64) -> QueryResult<Option<TariffRow>> {
    tariffs::table
        .filter(tariffs::tariff_group.eq(group))
        .filter(tariffs::superseded_at.is_null())
        .select(TariffRow::as_select())
        .first(conn)
        .optional()
}

/// A tariff version by id.
pub fn tariff(conn: &mut DbConn, id: i64) -> QueryResult<Option<TariffRow>> {
    tariffs::table
        .find(id)
        .select(TariffRow::as_select())
        .first(conn)
        .optional()
}

/// Current versions of all tariffs, newest first.
pub fn list_tariffs(
    conn: &mut DbConn,
    limit: i64,
    before: Option<i64>,
) -> QueryResult<Vec<TariffRow>> {
    let mut q = tariffs::table
        .filter(tariffs::superseded_at.is_null())
        .order(tariffs::tariff_group.desc())
        .limit(limit)
        .select(TariffRow::as_select())
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(tariffs::tariff_group.lt(b));
    }
    q.load(conn)
}

/// Points a charge point at a tariff group (or none).
pub fn set_charge_point_tariff(
    conn: &mut DbConn,
    cp: &str,
    group: Option<i64>,
) -> Result<(), ApiError> {
    if let Some(g) = group {
        current_tariff(conn, g)?.ok_or_else(|| ApiError::not_found("tariff"))?;
    }
    diesel::update(charge_points::table.find(cp))
        .set(charge_points::tariff_id.eq(group))
        .execute(conn)?;
    Ok(())
}

/// The tariff group of a charge point.
pub fn charge_point_tariff(conn: &mut DbConn, cp: &str) -> QueryResult<Option<i64>> {
    charge_points::table
        .find(cp)
        .select(charge_points::tariff_id)
        .first::<Option<i64>>(conn)
        .optional()
        .map(Option::flatten)
}

/// The time zone of a charge point's location.
pub fn charge_point_timezone(conn: &mut DbConn, cp: &str) -> QueryResult<chrono_tz::Tz> {
    let tz: String = charge_points::table
        .inner_join(locations::table)
        .filter(charge_points::id.eq(cp))
        .select(locations::timezone)
        .first(conn)?;
    Ok(tz.parse().unwrap_or(chrono_tz::Europe::Stockholm))
}

/// A session's price record.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = session_billing)]
pub struct Billing {
    pub session_id: i64,
    pub tariff_id: Option<i64>,
    #[diesel(deserialize_as = String)]
    pub status: BillingStatus,
    pub currency: Option<String>,
    pub excl_vat: Option<i64>,
    pub vat: Option<i64>,
    pub total: Option<i64>,
    pub priced: Option<String>,
    pub hold_reason: Option<String>,
    pub priced_at: Option<NaiveDateTime>,
    pub invoice_id: Option<i64>,
    pub reviewed_by: Option<i64>,
    pub reviewed_at: Option<NaiveDateTime>,
}

/// The price record of a session.
pub fn billing_of(conn: &mut DbConn, session_id: i64) -> QueryResult<Option<Billing>> {
    session_billing::table
        .find(session_id)
        .select(Billing::as_select())
        .first(conn)
        .optional()
}

/// Snapshots the tariff a session starts under (once; a replay keeps the first snapshot).
pub fn attach_tariff(conn: &mut DbConn, session_id: i64, cp: &str) -> QueryResult<()> {
    if billing_of(conn, session_id)?.is_some() {
        return Ok(());
    }
    let tariff = match charge_point_tariff(conn, cp)? {
        Some(group) => current_tariff(conn, group)?,
        None => None,
    };
    diesel::insert_into(session_billing::table)
        .values((
            session_billing::session_id.eq(session_id),
            session_billing::tariff_id.eq(tariff.as_ref().map(|t| t.id)),
            session_billing::status.eq(if tariff.is_some() {
                BillingStatus::Open.as_str()
            } else {
                BillingStatus::NoTariff.as_str()
            }),
        ))
        .execute(conn)
        .map(drop)
}

fn utc(t: NaiveDateTime) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&t)
}

/// What a session used, read from its stored meter values and the connector's status history.
pub fn usage_of(
    conn: &mut DbConn,
    s: &Session,
    stop: NaiveDateTime,
    meter_stop: Option<i64>,
) -> QueryResult<Option<SessionUsage>> {
    let (Some(start), Some(meter_start)) = (s.started_at, s.meter_start_wh) else {
        return Ok(None);
    };
    let rows: Vec<(NaiveDateTime, String, Option<i64>)> = meter_values::table
        .filter(meter_values::session_id.eq(s.id))
        .filter(meter_values::measurand.eq_any([sessions::ENERGY_REGISTER, "Power.Active.Import"]))
        // Per-phase readings are not the total.
        .filter(meter_values::phase.is_null())
        .filter(meter_values::normalized.is_not_null())
        .order((meter_values::sampled_at, meter_values::id))
        .select((
            meter_values::sampled_at,
            meter_values::measurand,
            meter_values::normalized,
        ))
        .load(conn)?;
    let mut samples: Vec<MeterSample> = Vec::new();
    for (at, measurand, value) in rows {
        if samples.last().is_none_or(|m| m.at != utc(at)) {
            samples.push(MeterSample {
                at: utc(at),
                energy_wh: None,
                power_w: None,
            });
        }
        let last = samples.last_mut().expect("pushed above");
        if measurand == sessions::ENERGY_REGISTER {
            last.energy_wh = value;
        } else {
            last.power_w = value;
        }
    }
    let latest_energy = samples.iter().rev().find_map(|m| m.energy_wh);
    let meter_stop = meter_stop
        .or(latest_energy)
        .unwrap_or(meter_start)
        .max(meter_start);
    let history = sessions::status_history(conn, &s.charge_point_id, s.connector_id, start, stop)?;
    let state_changes = history
        .into_iter()
        .filter_map(|(at, status)| {
            crate::charging::charging_state(&status).map(|charging| {
                (
                    utc(at),
                    if charging {
                        ConnectorState::Charging
                    } else {
                        ConnectorState::Idle
                    },
                )
            })
        })
        .collect();
    Ok(Some(SessionUsage {
        start: utc(start),
        stop: utc(stop.max(start)),
        meter_start_wh: meter_start,
        meter_stop_wh: meter_stop,
        samples,
        state_changes,
    }))
}

/// Prices a session with its snapshotted tariff up to `stop` (the live cost when `stop` is now).
/// The outer error is the database's; the inner one says why the session cannot be priced
/// (a stored tariff that no longer validates, implausible usage, an amount out of range).
pub fn price_session(
    conn: &mut DbConn,
    s: &Session,
    tariff_id: i64,
    stop: NaiveDateTime,
    meter_stop: Option<i64>,
) -> Result<Option<Result<PricedSession, String>>, ApiError> {
    let Some(row) = tariff(conn, tariff_id)? else {
        return Ok(None);
    };
    let Some(usage) = usage_of(conn, s, stop, meter_stop)? else {
        return Ok(None);
    };
    let tz = charge_point_timezone(conn, &s.charge_point_id)?;
    let valid = match row.valid() {
        Ok(valid) => valid,
        Err(e) => return Ok(Some(Err(e.to_string()))),
    };
    // Pricing is total (property-tested), and the tariff engine is a dependency: should it ever
    // panic, the session is held with the reason instead of losing the transaction around it.
    let priced =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| price(&valid, tz, &usage)))
            .unwrap_or_else(|_| Err(PricingError::Engine("the pricing engine panicked".into())));
    Ok(Some(priced.map_err(|e| e.to_string())))
}

/// Prices (or holds) the finished sessions whose price record is still open, those stopped in
/// `[from, to)` or all of them: a crash, or a failed write, between a stop's commit and its
/// pricing leaves the record open. Run at startup (all) and by an invoice run (its period);
/// returns how many.
pub fn price_unpriced(
    conn: &mut DbConn,
    stopped_in: Option<(NaiveDateTime, NaiveDateTime)>,
    now: NaiveDateTime,
) -> Result<usize, ApiError> {
    use crate::db::schema::charging_sessions;
    let mut q = session_billing::table
        .inner_join(charging_sessions::table)
        .filter(session_billing::status.eq(BillingStatus::Open.as_str()))
        .filter(charging_sessions::status.eq(sessions::SessionStatus::Finished.as_str()))
        .select(session_billing::session_id)
        .into_boxed();
    if let Some((from, to)) = stopped_in {
        q = q
            .filter(charging_sessions::stopped_at.ge(from))
            .filter(charging_sessions::stopped_at.lt(to));
    }
    let ids: Vec<i64> = q.load(conn)?;
    for id in &ids {
        price_finished(conn, *id, now)?;
    }
    Ok(ids.len())
}

/// Prices a finished session and stores its immutable price record; a session with integrity
/// flags, or one that cannot be priced, is held for operator review.
pub fn price_finished(
    conn: &mut DbConn,
    session_id: i64,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    let Some(billing) = billing_of(conn, session_id)? else {
        return Ok(());
    };
    let (BillingStatus::Open, Some(tariff_id)) = (billing.status, billing.tariff_id) else {
        return Ok(());
    };
    let s =
        sessions::find_session(conn, session_id)?.ok_or_else(|| ApiError::not_found("session"))?;
    let (Some(stop), Some(meter_stop)) = (s.stopped_at, s.meter_stop_wh) else {
        return Ok(());
    };
    let mut flags = sessions::flags_of(conn, &[session_id])?;
    flags.retain(|(_, f, _)| f.holds());
    // A meter that went backwards cannot be priced as sent; hold it with the reason.
    let priced = match s.meter_start_wh {
        Some(start) if meter_stop < start => Err(format!(
            "meterStop {meter_stop} Wh is below meterStart {start} Wh"
        )),
        _ => price_session(conn, &s, tariff_id, stop, Some(meter_stop))?.transpose(),
    };
    let hold = match (&priced, flags.is_empty()) {
        (Err(e), _) => Some(format!("cannot be priced: {e}")),
        (Ok(_), false) => Some(format!(
            "integrity flags: {}",
            flags
                .iter()
                .map(|(_, f, _)| f.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        (Ok(_), true) => None,
    };
    if let Err(e) = &priced {
        let mut event = crate::audit::NewEvent::user(
            s.user_id,
            "session_held",
            crate::audit::FAILURE,
            None,
            now,
        )
        .because(format!("session {session_id} cannot be priced: {e}"));
        event.actor = "system:pricing".into();
        event.charge_point_id = Some(s.charge_point_id.clone());
        crate::audit::record(conn, &event)?;
    }
    let priced = priced.ok().flatten();
    diesel::update(session_billing::table.find(session_id))
        .set((
            session_billing::status.eq(if hold.is_some() {
                BillingStatus::Held.as_str()
            } else {
                BillingStatus::Priced.as_str()
            }),
            session_billing::currency.eq(priced.as_ref().map(|p| p.currency.clone())),
            session_billing::excl_vat.eq(priced.as_ref().map(|p| p.excl_vat)),
            session_billing::vat.eq(priced.as_ref().map(|p| p.vat)),
            session_billing::total.eq(priced.as_ref().map(|p| p.total)),
            session_billing::priced.eq(priced
                .as_ref()
                .map(|p| serde_json::to_string(p).unwrap_or_default())),
            session_billing::hold_reason.eq(hold),
            session_billing::priced_at.eq(Some(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Sessions held for review, oldest first (the operator's work list).
pub fn held_session_ids(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<i64>> {
    session_billing::table
        .filter(session_billing::status.eq(BillingStatus::Held.as_str()))
        .order(session_billing::session_id)
        .limit(limit)
        .select(session_billing::session_id)
        .load(conn)
}

/// Clears a held session after operator review so it can be invoiced.
pub fn release(
    conn: &mut DbConn,
    session_id: i64,
    operator: i64,
    now: NaiveDateTime,
) -> Result<Billing, ApiError> {
    let billing =
        billing_of(conn, session_id)?.ok_or_else(|| ApiError::not_found("price record"))?;
    if billing.status != BillingStatus::Held {
        return Err(ApiError::conflict(
            "not_held",
            format!("the session's price record is {}", billing.status),
        ));
    }
    if billing.total.is_none() {
        return Err(ApiError::conflict(
            "not_priceable",
            "the session could not be priced; credit or correct it instead",
        ));
    }
    diesel::update(session_billing::table.find(session_id))
        .set((
            session_billing::status.eq(BillingStatus::Priced.as_str()),
            session_billing::reviewed_by.eq(Some(operator)),
            session_billing::reviewed_at.eq(Some(now)),
        ))
        .execute(conn)?;
    billing_of(conn, session_id)?.ok_or_else(|| ApiError::not_found("price record"))
}

/// The cost shown with a session: final from the record, live from the same pricing function.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionCost {
    /// `{currency, excl_vat, vat, total}` in minor units (öre).
    #[serde(flatten)]
    pub money: Money,
    pub state: CostState,
    /// Why the session is held for review.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_reason: Option<String>,
    /// The priced record: meter start and stop, kWh, charging and idle time, each component.
    #[schema(value_type = Option<Object>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<PricedSession>,
}

/// A session as the app shows it, with its cost: what charging recorded, and what billing
/// makes of it. Billing reads charging; charging never calls billing.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionWithCost {
    #[serde(flatten)]
    pub session: SessionView,
    /// Cost so far (live) or final, from the same pricing function as the invoice; absent
    /// when the charge point has no tariff.
    pub cost: Option<SessionCost>,
}

/// The view of a session with its cost at `now`.
pub fn with_cost(
    conn: &mut DbConn,
    s: Session,
    now: NaiveDateTime,
) -> Result<SessionWithCost, ApiError> {
    let cost = cost_of(conn, &s, now)?;
    Ok(SessionWithCost {
        session: crate::charging::view(conn, s, now)?,
        cost,
    })
}

/// The cost of a session at `now`, if it has a tariff.
pub fn cost_of(
    conn: &mut DbConn,
    s: &Session,
    now: NaiveDateTime,
) -> Result<Option<SessionCost>, ApiError> {
    let Some(billing) = billing_of(conn, s.id)? else {
        return Ok(None);
    };
    match billing.status {
        BillingStatus::Open => {
            let Some(tariff_id) = billing.tariff_id else {
                return Ok(None);
            };
            // Running: the cost so far. Finished but its price record not yet written (the
            // stop is committed first, pricing right after in a write of its own): the final
            // price, computed by the same function, as "pricing" until the record is stored.
            let (stop, meter_stop, state) = match (s.status, s.stopped_at) {
                (SessionStatus::Active, _) => (now, None, CostState::Live),
                (SessionStatus::Finished, Some(stopped)) => {
                    (stopped, s.meter_stop_wh, CostState::Pricing)
                }
                _ => return Ok(None),
            };
            // A reader never gets a 500 from pricing: a session that cannot be priced shows
            // why, and is held with that reason when it finishes.
            match price_session(conn, s, tariff_id, stop, meter_stop)? {
                None => Ok(None),
                Some(Ok(p)) => Ok(Some(SessionCost {
                    money: p.money(),
                    state,
                    hold_reason: None,
                    details: Some(p),
                })),
                Some(Err(e)) => {
                    tracing::warn!(session = s.id, error = %e, "live cost unavailable");
                    Ok(Some(SessionCost {
                        money: Money::zero("SEK"),
                        state: CostState::Unpriced,
                        hold_reason: Some(format!("cannot be priced: {e}")),
                        details: None,
                    }))
                }
            }
        }
        BillingStatus::NoTariff => Ok(None),
        BillingStatus::Priced | BillingStatus::Held | BillingStatus::Billed => {
            let state = match billing.status {
                BillingStatus::Held => CostState::Held,
                BillingStatus::Billed => CostState::Billed,
                _ => CostState::Priced,
            };
            let details: Option<PricedSession> = billing
                .priced
                .as_deref()
                .and_then(|j| serde_json::from_str(j).ok());
            let money = match &details {
                Some(d) => d.money(),
                None => {
                    return Ok(Some(SessionCost {
                        money: Money::zero("SEK"),
                        state,
                        hold_reason: billing.hold_reason,
                        details: None,
                    }))
                }
            };
            Ok(Some(SessionCost {
                money,
                state,
                hold_reason: billing.hold_reason,
                details,
            }))
        }
    }
}
