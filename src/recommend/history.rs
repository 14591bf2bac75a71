//! Reading what the recommender needs from the database: sessions (finished OCPP sessions and
//! imported history) within a window, locations with their capacity, and preferences.

use std::collections::HashMap;

use chrono::{NaiveDateTime, TimeDelta, TimeZone};
use laddkoll_ml::{Coord, Location, Session};

use super::preferences::PreferencesBody;
use super::queries::{self, HistoryRow, LocationFacts};
use crate::db::DbConn;

/// Capacity and surcharge of a location for the model.
///
/// Capacity is the number of registered connectors; a location known only from imported
/// history counts one connector per distinct `charge_point_ref` seen (at least one). Until the
/// recommender reads tariffs, a location with a DC connector counts as carrying a
/// fast-charging surcharge and prices are unknown (so no cheaper-time advice is given).
pub fn to_model_location(f: &LocationFacts) -> Location {
    let connectors = if f.connectors > 0 {
        f.connectors
    } else {
        f.imported_charge_points.max(1)
    };
    Location {
        id: f.id,
        name: f.name.clone(),
        coord: Coord::new(f.lat, f.lon),
        connectors,
        standards: f.standards.clone(),
        fast_charging_surcharge: f.has_dc,
        price_minor_per_kwh: None,
    }
}

/// Turns a history row into a model session; `tz` is the location's time zone (used when the
/// row has no stored local time).
fn to_session(row: &HistoryRow, tz: Option<chrono_tz::Tz>) -> Session {
    let start = row.started_at.and_utc();
    let end = row.ended_at.max(row.started_at).and_utc();
    let local_start = row.local_start.unwrap_or_else(|| match tz {
        Some(tz) => tz.from_utc_datetime(&row.started_at).naive_local(),
        None => row.started_at,
    });
    Session {
        driver: row.user_id,
        location: row.location_id,
        start_utc: start,
        end_utc: end,
        local_start,
        energy_kwh: row.energy_wh as f64 / 1000.0,
    }
}

/// Every session (OCPP and imported) started at or after `since`, optionally at one location,
/// read a page at a time.
pub fn load_sessions(
    conn: &mut DbConn,
    since: NaiveDateTime,
    location: Option<i64>,
    timezones: &HashMap<i64, chrono_tz::Tz>,
) -> Result<Vec<Session>, diesel::result::Error> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let (rows, last) = queries::finished_sessions_page(conn, since, location, after)?;
        out.extend(
            rows.iter()
                .map(|r| to_session(r, timezones.get(&r.location_id).copied())),
        );
        match last {
            Some(id) => after = id,
            None => break,
        }
    }
    let mut after = 0;
    loop {
        let (rows, last) = queries::imported_sessions_page(conn, since, location, after)?;
        out.extend(rows.iter().map(|r| to_session(r, None)));
        match last {
            Some(id) => after = id,
            None => break,
        }
    }
    Ok(out)
}

/// The start of a window of `days` days ending at `now`.
pub fn window_start(now: NaiveDateTime, days: u32) -> NaiveDateTime {
    now - TimeDelta::days(i64::from(days))
}

/// Locations for the model, and their time zones.
pub fn load_locations(
    conn: &mut DbConn,
    only: Option<i64>,
) -> Result<(Vec<Location>, HashMap<i64, chrono_tz::Tz>), diesel::result::Error> {
    let facts = queries::location_facts(conn, only)?;
    let tz = facts
        .iter()
        .filter_map(|f| Some((f.id, f.timezone.parse().ok()?)))
        .collect();
    Ok((facts.iter().map(to_model_location).collect(), tz))
}

/// Every driver's preferences as the model takes them.
pub fn load_preferences(
    conn: &mut DbConn,
) -> Result<HashMap<i64, laddkoll_ml::Preferences>, diesel::result::Error> {
    Ok(queries::all_preferences(conn)?
        .iter()
        .map(|row| (row.user_id, PreferencesBody::from_row(row).to_model()))
        .collect())
}
