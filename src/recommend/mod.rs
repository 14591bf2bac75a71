//! Recommendations (DESIGN §7, issue 5): drivers' preferences, imported history, the nightly
//! job that turns histories into advice with `laddkoll-ml`, and the APIs that show it.
//!
//! * [`preferences`]: `GET/PUT /me/preferences`, validated, mapped to the model's preferences;
//! * [`import`]: `laddkoll import-sessions`, idempotent, creating records for unknown refs;
//! * [`history`]: what the model reads from the database;
//! * [`job`]: `laddkoll recommend`, writing each batch atomically;
//! * [`forecast`]: `GET /locations/{id}/forecast`;
//! * [`commands`]: the CLI commands (`import-sessions`, `evaluate`, `recommend`).

pub mod commands;
pub mod forecast;
pub mod handlers;
pub mod history;
pub mod import;
pub mod job;
pub mod preferences;
pub mod queries;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::DbConn;
use crate::http::ApiError;

/// The numbers behind a recommendation's sentence.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct RecommendationNumbers {
    /// Share of the time (weeks × days of the span) the other drivers left a connector free in
    /// the suggested slot (0–1). The driver's own sessions never count.
    #[schema(example = 0.92)]
    pub free_share: f64,
    /// The same in the driver's usual slot (0–1).
    #[schema(example = 0.55)]
    pub current_free_share: f64,
    /// The other drivers' mean occupied connectors over capacity in the suggested slot.
    pub expected_occupancy_ratio: f64,
    /// Energy price in the suggested slot, minor units per kWh including VAT, when the tariff is
    /// known (the cheapest of the location's charge points).
    pub price_minor_per_kwh: Option<i64>,
    /// Usual price minus suggested price, minor units per kWh (positive: cheaper).
    #[schema(example = 110)]
    pub price_delta_minor_per_kwh: Option<i64>,
    /// Distance from the usual location, km (nearby-location advice).
    pub distance_km: Option<f64>,
    /// Share of the driver's sessions in the habit this advice changes.
    pub habit_share: f64,
    /// Sessions in that habit.
    pub habit_sessions: u64,
    /// Weeks of history the free shares rest on.
    pub occupancy_weeks: u64,
}

/// The suggested time: the weekdays of the habit it is about and an arrival window in the
/// location's local time.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimeWindowView {
    /// The weekdays the advice covers, Monday first: `mon` … `sun`.
    #[schema(example = json!(["mon", "tue", "wed", "thu", "fri"]))]
    pub days: Vec<String>,
    /// The first of them, 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    /// The first of them: `mon` … `sun`.
    #[schema(example = "mon")]
    pub day: String,
    /// First hour of the arrival window, 0–23.
    pub start_hour: u8,
    /// End of the window (exclusive), 1–24.
    pub end_hour: u8,
    /// Hour of the week on the first day, 0 = Monday 00–01.
    pub hour_of_week: u16,
}

/// A location named in a recommendation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LocationRef {
    pub id: i64,
    pub name: String,
}

/// One piece of advice.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecommendationView {
    pub id: i64,
    /// `cheaper_time`, `less_busy_time` or `nearby_location`.
    #[schema(example = "less_busy_time")]
    pub kind: String,
    /// The advice in words, with its reason in numbers.
    #[schema(
        example = "Charge at Garage Söder on weekdays 9–10 instead of 8–9: other drivers left a connector free 92 % of the time then, against 55 % at 8–9."
    )]
    pub sentence: String,
    pub numbers: RecommendationNumbers,
    /// Where to charge.
    pub location: LocationRef,
    /// The usual location this advice is about.
    pub from_location_id: i64,
    /// When to charge.
    pub time_window: TimeWindowView,
    /// The usual hour of the week this advice is about (on the first day).
    pub from_hour_of_week: u16,
    pub batch_id: i64,
}

/// The batch recommendations come from.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchView {
    pub id: i64,
    /// When the nightly job finished it.
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::http::time::as_utc")]
    pub computed_at: NaiveDateTime,
    /// Days of history it learned from.
    pub window_days: i64,
}

/// A driver's recommendations: empty (and `batch` null) before the first nightly run.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RecommendationsView {
    pub batch: Option<BatchView>,
    pub items: Vec<RecommendationView>,
}

/// One hour of the week in a forecast.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ForecastSlot {
    /// 0 = Monday 00–01 local time … 167 = Sunday 23–24.
    pub hour_of_week: u16,
    /// 0 = Monday.
    pub weekday: u8,
    /// Local hour, 0–23.
    pub hour: u8,
    /// Mean number of connectors in use.
    #[schema(example = 1.4)]
    pub expected_occupied: f64,
    /// Connectors at the location.
    pub capacity: u32,
    /// Share of weeks with at least one connector free for most of the hour.
    pub free_share: f64,
}

/// Expected occupancy of a location by hour of week.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Forecast {
    pub location_id: i64,
    /// The location's time zone; hours are local to it.
    pub timezone: String,
    /// Connectors (for places known only from imported history: distinct charge points seen).
    pub capacity: u32,
    /// Days of history considered.
    pub window_days: u32,
    /// Weeks the averages are over.
    pub weeks: u32,
    /// Sessions the forecast was computed from.
    pub sessions: u64,
    /// 168 entries, Monday 00–01 first.
    pub slots: Vec<ForecastSlot>,
}

/// A driver's recommendations from the newest complete batch.
pub fn recommendations_of(
    conn: &mut DbConn,
    user_id: i64,
) -> Result<RecommendationsView, ApiError> {
    let Some(batch) = queries::latest_complete_batch(conn)? else {
        return Ok(RecommendationsView {
            batch: None,
            items: Vec::new(),
        });
    };
    let rows = queries::recommendations_for(conn, batch.id, user_id)?;
    let items = rows
        .into_iter()
        .map(|(r, location_name)| {
            let weekday = r.weekday.clamp(0, 6) as u8;
            let mask = if r.days > 0 { r.days } else { 1 << weekday };
            let days = (0..7)
                .filter(|d| mask & (1 << d) != 0)
                .map(|d| preferences::WEEKDAYS[d].to_string())
                .collect();
            RecommendationView {
                id: r.id,
                kind: r.kind,
                sentence: r.sentence,
                numbers: serde_json::from_str(&r.numbers).unwrap_or_default(),
                location: LocationRef {
                    id: r.location_id,
                    name: location_name,
                },
                from_location_id: r.from_location_id,
                time_window: TimeWindowView {
                    days,
                    weekday,
                    day: preferences::WEEKDAYS[usize::from(weekday)].to_string(),
                    start_hour: r.start_hour as u8,
                    end_hour: r.end_hour as u8,
                    hour_of_week: r.hour_of_week as u16,
                },
                from_hour_of_week: r.from_hour_of_week as u16,
                batch_id: r.batch_id,
            }
        })
        .collect();
    Ok(RecommendationsView {
        batch: Some(BatchView {
            id: batch.id,
            computed_at: batch.finished_at.unwrap_or(batch.started_at),
            window_days: batch.window_days,
        }),
        items,
    })
}
