//! Reading what the recommender needs from the database: sessions (finished OCPP sessions and
//! imported history) within a window, locations with their capacity and energy prices by hour
//! of week, and preferences.

use std::collections::HashMap;

use chrono::{NaiveDateTime, TimeDelta, TimeZone};
use laddkoll_ml::{Coord, Location, Session};

use super::preferences::PreferencesBody;
use super::queries::{self, HistoryRow, LocationFacts};
use crate::billing::hourly::{energy_price_by_hour_of_week, HOURS_PER_WEEK};
use crate::billing::records::current_tariff;
use crate::db::DbConn;

/// Capacity and surcharge of a location for the model.
///
/// Capacity is the number of registered connectors; a location known only from imported
/// history counts one connector per distinct `charge_point_ref` seen (at least one). A location
/// with a DC connector counts as carrying a fast-charging surcharge. Prices are left unknown
/// here; [`attach_prices`] fills them from the tariffs.
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

/// Currency of the prices given to the recommender: its sentences say "kr". A tariff in another
/// currency leaves its charge points out of the price tables.
pub const PRICE_CURRENCY: &str = "SEK";

/// An hour-of-week energy price table, incl. VAT, minor units; `None` where energy is not priced.
pub type HourlyPrices = [Option<i64>; HOURS_PER_WEEK];

/// The table the recommender takes for a location served by charge points with `tables`: the
/// **cheapest** price per slot over the charge points (a driver who wants the cheaper time can
/// choose the cheaper charge point at the same place), known only when every slot has a price
/// from at least one charge point; otherwise `None` (unknown: no cheaper-time advice there,
/// rather than advice on a partly known tariff, e.g. one that charges by time at night).
pub fn cheapest_per_slot<'a>(
    tables: impl IntoIterator<Item = &'a HourlyPrices>,
) -> Option<Vec<i64>> {
    let mut best: HourlyPrices = [None; HOURS_PER_WEEK];
    for table in tables {
        for (b, p) in best.iter_mut().zip(table) {
            *b = match (*b, *p) {
                (Some(x), Some(y)) => Some(x.min(y)),
                (x, y) => x.or(y),
            };
        }
    }
    best.into_iter().collect()
}

/// Fills each location's hour-of-week energy prices (per kWh incl. VAT, öre) from the current
/// version of the tariff group of each of its charge points, via
/// [`energy_price_by_hour_of_week`] and [`cheapest_per_slot`]. Charge points without a tariff
/// are left out (their sessions are not priced, which says nothing about what charging costs
/// there); a location none of whose charge points has a usable tariff keeps `None`. A stored
/// tariff that no longer validates is skipped with a warning rather than failing the nightly job.
///
/// The driver's "maximum price per kWh" preference is compared by the recommender with these
/// numbers, so it is a price per kWh including VAT in öre, as drivers see prices.
pub fn attach_prices(
    conn: &mut DbConn,
    locations: &mut [Location],
) -> Result<(), diesel::result::Error> {
    let pairs = queries::charge_point_tariff_groups(conn)?;
    let mut by_group: HashMap<i64, Option<HourlyPrices>> = HashMap::new();
    for &(_, group) in &pairs {
        if by_group.contains_key(&group) {
            continue;
        }
        let table = match current_tariff(conn, group)? {
            None => None,
            Some(row) => match row.valid() {
                Ok(t) if t.currency() == PRICE_CURRENCY => Some(energy_price_by_hour_of_week(&t)),
                Ok(t) => {
                    tracing::warn!(
                        group,
                        currency = t.currency(),
                        "tariff not in {PRICE_CURRENCY}: no prices for the recommender"
                    );
                    None
                }
                Err(e) => {
                    tracing::warn!(group, error = ?e, "stored tariff unusable for the recommender");
                    None
                }
            },
        };
        by_group.insert(group, table);
    }
    let mut per_location: HashMap<i64, Vec<&HourlyPrices>> = HashMap::new();
    for (location, group) in &pairs {
        if let Some(Some(table)) = by_group.get(group) {
            per_location.entry(*location).or_default().push(table);
        }
    }
    for location in locations.iter_mut() {
        location.price_minor_per_kwh = per_location
            .get(&location.id)
            .and_then(|tables| cheapest_per_slot(tables.iter().copied()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cheapest_charge_point_sets_each_slot() {
        let mut a: HourlyPrices = [Some(250); HOURS_PER_WEEK];
        let mut b: HourlyPrices = [Some(200); HOURS_PER_WEEK];
        a[22] = Some(140);
        b[5] = None; // b prices no energy then: a's price stands
        let t = cheapest_per_slot([&a, &b]).unwrap();
        assert_eq!(t.len(), HOURS_PER_WEEK);
        assert_eq!((t[0], t[5], t[22]), (200, 250, 140));
        assert_eq!(cheapest_per_slot([&a]).unwrap()[22], 140);
    }

    #[test]
    fn a_slot_without_any_price_makes_the_table_unknown() {
        let mut a: HourlyPrices = [Some(250); HOURS_PER_WEEK];
        let mut b = a;
        a[3] = None;
        b[3] = None;
        assert_eq!(cheapest_per_slot([&a, &b]), None);
        assert_eq!(cheapest_per_slot(std::iter::empty()), None);
    }
}
