//! `GET /locations/{id}/forecast`: expected occupancy by hour of week.
//!
//! Computed on request from the location's history (finished OCPP sessions and imported
//! sessions started within the window) with the recommender's own occupancy model
//! ([`laddkoll_ml::compute_occupancy`]): each session adds the fraction of every local
//! hour-of-week slot it overlaps, averaged over the calendar weeks between the first and the
//! last session. It reads one location's sessions only, so it stays cheap and always reflects
//! the latest history, independent of when the nightly job last ran.

use chrono::NaiveDateTime;

use super::{history, Forecast, ForecastSlot};
use crate::db::DbConn;
use crate::http::ApiError;

/// Days of history averaged by default: about half a year.
pub const DEFAULT_WINDOW_DAYS: u32 = 182;

/// The forecast of location `id` from the last `days` days before `now`.
pub fn of_location(
    conn: &mut DbConn,
    id: i64,
    days: u32,
    now: NaiveDateTime,
) -> Result<Forecast, ApiError> {
    let (locations, timezones) = history::load_locations(conn, Some(id))?;
    let Some(location) = locations.first() else {
        return Err(ApiError::not_found("location"));
    };
    let since = history::window_start(now, days);
    let sessions = history::load_sessions(conn, since, Some(id), &timezones)?;
    let occupancy = laddkoll_ml::compute_occupancy(&sessions, std::slice::from_ref(location));
    let occ = &occupancy[0];
    let slots = occ
        .forecast()
        .into_iter()
        .map(|(slot, expected, capacity)| ForecastSlot {
            hour_of_week: slot,
            weekday: (slot / 24) as u8,
            hour: (slot % 24) as u8,
            expected_occupied: (expected * 1000.0).round() / 1000.0,
            capacity,
            free_share: (occ.free_share[usize::from(slot)] * 1000.0).round() / 1000.0,
        })
        .collect();
    Ok(Forecast {
        location_id: id,
        timezone: timezones
            .get(&id)
            .map_or_else(|| "UTC".to_string(), |tz| tz.name().to_string()),
        capacity: occ.capacity,
        window_days: days,
        weeks: occ.weeks,
        sessions: sessions.len() as u64,
        slots,
    })
}
