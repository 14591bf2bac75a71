//! Integrity checks that need more than one message: the connector a transaction starts on, a
//! start register of 0 judged by the readings that follow, a start below the previous stop.
//!
//! A zero `meterStart` is normal for chargers whose register counts per transaction (it starts
//! at 0 every time): such a session is billed as sent. It is only suspect when the readings that
//! follow show an absolute register — far more energy than the connector could have delivered
//! since the start (the "910 kWh session"). Then the baseline is corrected to the first reading
//! and the session is flagged `zero_start_corrected`, which annotates: it is billed from that
//! reading, so the driver pays at most what was charged (what flowed before the first reading
//! is not billed). When no reading came before the stop and the stop register is implausible,
//! there is nothing to correct from: the session is flagged `zero_start_baseline`, which holds.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::queries::{self, Session};
use super::SessionFlag;
use crate::db::schema::{charging_sessions, connectors, meter_values};
use crate::db::DbConn;

/// Energy a register may show above what the connector's power allows, Wh (clock skew between
/// the charger's timestamps, a meter's own rounding, the first seconds of a session).
pub const TOLERANCE_WH: i64 = 1_000;
/// Headroom on the connector's rated power (a 22 kW connector is allowed 27.5 kW).
const POWER_MARGIN_PERCENT: i64 = 125;
/// The power assumed when the connector is unknown: the largest DC chargers in service.
const UNKNOWN_POWER_W: i64 = 400_000;

/// The most energy, Wh, a connector of `max_power_w` can deliver in `secs` (with the margin
/// and the tolerance).
pub fn plausible_wh(max_power_w: i64, secs: i64) -> i64 {
    let secs = secs.max(0);
    let wh = i128::from(max_power_w) * i128::from(POWER_MARGIN_PERCENT) * i128::from(secs)
        / (100 * 3600);
    i64::try_from(wh)
        .unwrap_or(i64::MAX)
        .saturating_add(TOLERANCE_WH)
}

/// The rated power of a charge point's connector, W, if it is registered.
fn connector_power(conn: &mut DbConn, cp: &str, connector: i64) -> QueryResult<Option<i64>> {
    connectors::table
        .find((cp, connector))
        .select(connectors::max_power_w)
        .first(conn)
        .optional()
}

/// Checks made at StartTransaction: the connector exists, the start register is not negative
/// and, unless it is 0 (judged later by [`zero_start_reading`]), not below the previous
/// session's stop on the connector.
pub fn check_start(
    conn: &mut DbConn,
    session_id: i64,
    cp: &str,
    connector: i64,
    meter_start: i32,
    now: NaiveDateTime,
) -> QueryResult<()> {
    if connector_power(conn, cp, connector)?.is_none() {
        queries::flag(
            conn,
            session_id,
            SessionFlag::UnknownConnector,
            &format!("connector {connector} is not a registered connector of {cp}: its tariff, power and status history cannot be checked"),
            now,
        )?;
    }
    if meter_start < 0 {
        queries::flag(
            conn,
            session_id,
            SessionFlag::ImplausibleStartBaseline,
            &format!("meterStart is {meter_start} Wh"),
            now,
        )?;
    }
    if meter_start == 0 {
        // A per-transaction register starts below the previous stop every time.
        return Ok(());
    }
    if let Some(previous) = queries::previous_meter_stop(conn, cp, connector, session_id)? {
        if i64::from(meter_start) < previous {
            queries::flag(
                conn,
                session_id,
                SessionFlag::ImplausibleStartBaseline,
                &format!("meterStart {meter_start} Wh is below the previous session's stop {previous} Wh"),
                now,
            )?;
        }
    }
    Ok(())
}

fn judged(conn: &mut DbConn, session_id: i64) -> QueryResult<bool> {
    Ok(queries::flags_of(conn, &[session_id])?
        .iter()
        .any(|(_, f, _)| {
            matches!(
                f,
                SessionFlag::ZeroStartCorrected | SessionFlag::ZeroStartBaseline
            )
        }))
}

/// Judges a running zero-start session by its first energy reading, when `new` (this message's
/// readings, not yet stored) holds it: a reading above what the connector could deliver since
/// the start corrects the baseline to that reading and flags `zero_start_corrected`.
pub fn zero_start_reading(
    conn: &mut DbConn,
    s: &Session,
    new: &[(NaiveDateTime, i64)],
    now: NaiveDateTime,
) -> QueryResult<()> {
    let Some(&(at, wh)) = new.iter().min() else {
        return Ok(());
    };
    let session_id = s.id;
    let (Some(0), Some(start), queries::SessionStatus::Active) =
        (s.meter_start_wh, s.started_at, s.status)
    else {
        return Ok(());
    };
    // Only the session's first reading is judged: an earlier one was judged when it came.
    let earliest: Option<NaiveDateTime> = meter_values::table
        .filter(meter_values::session_id.eq(session_id))
        .filter(meter_values::measurand.eq(queries::ENERGY_REGISTER))
        .filter(meter_values::phase.is_null())
        .filter(meter_values::normalized.is_not_null())
        .select(diesel::dsl::min(meter_values::sampled_at))
        .first(conn)?;
    if earliest.is_some_and(|e| e <= at) || judged(conn, session_id)? {
        return Ok(());
    }
    let power = connector_power(conn, &s.charge_point_id, s.connector_id)?;
    let secs = (at - start).num_seconds();
    let limit = plausible_wh(power.unwrap_or(UNKNOWN_POWER_W), secs);
    if wh <= limit {
        return Ok(());
    }
    diesel::update(charging_sessions::table.find(session_id))
        .set((
            charging_sessions::meter_start_wh.eq(Some(wh)),
            charging_sessions::updated_at.eq(now),
        ))
        .execute(conn)?;
    queries::flag(
        conn,
        session_id,
        SessionFlag::ZeroStartCorrected,
        &format!(
            "meterStart 0 Wh as sent, but the first reading is {wh} Wh at {}Z, {secs} s after the start, when {} could deliver at most {limit} Wh: an absolute register; billed from {wh} Wh",
            at.format("%Y-%m-%dT%H:%M:%S"),
            shown_power(power),
        ),
        now,
    )
}

/// Judges a zero-start session at its stop when no energy reading came: a stop register above
/// what the connector could deliver in the session flags `zero_start_baseline` (held: there is
/// no reading to take a baseline from).
pub fn zero_start_stop(
    conn: &mut DbConn,
    s: &Session,
    meter_stop: i64,
    stopped_at: NaiveDateTime,
    has_readings: bool,
    now: NaiveDateTime,
) -> QueryResult<()> {
    let (Some(0), Some(start)) = (s.meter_start_wh, s.started_at) else {
        return Ok(());
    };
    if has_readings || judged(conn, s.id)? {
        return Ok(());
    }
    let power = connector_power(conn, &s.charge_point_id, s.connector_id)?;
    let secs = (stopped_at - start).num_seconds();
    let limit = plausible_wh(power.unwrap_or(UNKNOWN_POWER_W), secs);
    if meter_stop <= limit {
        return Ok(());
    }
    queries::flag(
        conn,
        s.id,
        SessionFlag::ZeroStartBaseline,
        &format!(
            "meterStart 0 Wh and meterStop {meter_stop} Wh after {secs} s, when {} could deliver at most {limit} Wh, and no reading in between to take a baseline from",
            shown_power(power)
        ),
        now,
    )
}

fn shown_power(power: Option<i64>) -> String {
    match power {
        Some(w) => format!("the {} kW connector", w as f64 / 1000.0),
        None => format!(
            "an unknown connector (assumed {} kW)",
            UNKNOWN_POWER_W / 1000
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plausible_energy_follows_power_and_time() {
        // 22 kW for an hour: 27.5 kWh with the margin, plus the tolerance.
        assert_eq!(plausible_wh(22_000, 3600), 27_500 + TOLERANCE_WH);
        assert_eq!(plausible_wh(22_000, 0), TOLERANCE_WH);
        assert_eq!(plausible_wh(22_000, -60), TOLERANCE_WH);
        assert!(plausible_wh(400_000, i64::MAX) > 0);
    }
}
