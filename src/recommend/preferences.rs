//! A driver's stated preferences: the API shape, its validation and the recommender's view.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::queries::PreferencesRow;
use crate::http::ApiError;

/// Weekday names as the API writes them, Monday first.
pub const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// Most windows and favourites a driver may state.
const MAX_WINDOWS: usize = 14;
const MAX_FAVOURITES: usize = 50;
/// Highest accepted maximum price, minor units per kWh (1,000 kr).
const MAX_PRICE_MINOR: i64 = 100_000;

/// A window of the week the driver prefers to charge in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferredWindow {
    /// Weekdays it applies to: `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`.
    #[schema(example = json!(["mon", "tue", "wed", "thu", "fri"]))]
    pub days: Vec<String>,
    /// First hour, local time, 0–23.
    #[schema(example = 18)]
    pub start_hour: u8,
    /// Hour the window ends (exclusive), 1–24; smaller than `start_hour` wraps past midnight.
    #[schema(example = 22)]
    pub end_hour: u8,
}

/// A point on Earth in decimal degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LatLon {
    #[schema(example = 59.3165)]
    pub lat: f64,
    #[schema(example = 18.0717)]
    pub lon: f64,
}

/// How the driver likes to charge. `PUT` replaces all of it; omitted fields take their
/// defaults (no windows, no favourites, no maximum price, surcharges allowed, no places).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PreferencesBody {
    /// If any, new times are suggested only inside these windows.
    pub preferred_windows: Vec<PreferredWindow>,
    /// Locations the driver likes; never advised away from.
    #[schema(example = json!([1, 2]))]
    pub favourite_location_ids: Vec<i64>,
    /// Highest acceptable energy price, minor units (öre) per kWh **including VAT**, as drivers
    /// see prices; slots dearer than this are never suggested.
    #[schema(example = 250)]
    pub max_price_per_kwh_minor: Option<i64>,
    /// Never suggest places that charge a fast-charging surcharge.
    pub avoid_fast_charging_surcharges: bool,
    /// Home; locations near it count as nearby.
    pub home: Option<LatLon>,
    /// Work; locations near it count as nearby.
    pub work: Option<LatLon>,
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::unprocessable("invalid_field", format!("{field}: {message}"))
}

fn check_coord(field: &str, c: Option<LatLon>) -> Result<(), ApiError> {
    if let Some(c) = c {
        if !c.lat.is_finite() || !(-90.0..=90.0).contains(&c.lat) {
            return Err(invalid(
                &format!("{field}.lat"),
                "must be between -90 and 90",
            ));
        }
        if !c.lon.is_finite() || !(-180.0..=180.0).contains(&c.lon) {
            return Err(invalid(
                &format!("{field}.lon"),
                "must be between -180 and 180",
            ));
        }
    }
    Ok(())
}

/// Weekday bit set (bit 0 = Monday) of a window's day names.
pub fn day_bits(days: &[String]) -> Option<u8> {
    days.iter().try_fold(0u8, |bits, d| {
        let i = WEEKDAYS.iter().position(|w| w.eq_ignore_ascii_case(d))?;
        Some(bits | (1 << i))
    })
}

impl PreferencesBody {
    /// Checks every field except whether favourite locations exist (that needs the database);
    /// errors name the field, e.g. `preferred_windows[1].end_hour`.
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.preferred_windows.len() > MAX_WINDOWS {
            return Err(invalid(
                "preferred_windows",
                &format!("at most {MAX_WINDOWS} windows"),
            ));
        }
        for (i, w) in self.preferred_windows.iter().enumerate() {
            let field = format!("preferred_windows[{i}]");
            if w.days.is_empty() {
                return Err(invalid(&format!("{field}.days"), "name at least one day"));
            }
            let Some(bits) = day_bits(&w.days) else {
                return Err(invalid(
                    &format!("{field}.days"),
                    "days are mon, tue, wed, thu, fri, sat or sun",
                ));
            };
            if bits.count_ones() as usize != w.days.len() {
                return Err(invalid(&format!("{field}.days"), "a day is named twice"));
            }
            if w.start_hour > 23 {
                return Err(invalid(
                    &format!("{field}.start_hour"),
                    "must be between 0 and 23",
                ));
            }
            if !(1..=24).contains(&w.end_hour) {
                return Err(invalid(
                    &format!("{field}.end_hour"),
                    "must be between 1 and 24",
                ));
            }
            if w.start_hour == w.end_hour {
                return Err(invalid(
                    &format!("{field}.end_hour"),
                    "must differ from start_hour (an empty window)",
                ));
            }
        }
        if self.favourite_location_ids.len() > MAX_FAVOURITES {
            return Err(invalid(
                "favourite_location_ids",
                &format!("at most {MAX_FAVOURITES} locations"),
            ));
        }
        let mut seen = self.favourite_location_ids.clone();
        seen.sort_unstable();
        seen.dedup();
        if seen.len() != self.favourite_location_ids.len() {
            return Err(invalid(
                "favourite_location_ids",
                "a location is listed twice",
            ));
        }
        if let Some(p) = self.max_price_per_kwh_minor {
            if !(1..=MAX_PRICE_MINOR).contains(&p) {
                return Err(invalid(
                    "max_price_per_kwh_minor",
                    &format!("must be between 1 and {MAX_PRICE_MINOR} (minor units per kWh)"),
                ));
            }
        }
        check_coord("home", self.home)?;
        check_coord("work", self.work)?;
        Ok(())
    }

    /// The first favourite id that is not in `existing`, as a 422.
    pub fn check_favourites_exist(&self, existing: &[i64]) -> Result<(), ApiError> {
        match self
            .favourite_location_ids
            .iter()
            .position(|id| !existing.contains(id))
        {
            None => Ok(()),
            Some(i) => Err(invalid(
                &format!("favourite_location_ids[{i}]"),
                &format!("no location {}", self.favourite_location_ids[i]),
            )),
        }
    }

    /// The row to store.
    pub fn to_row(&self, user_id: i64, now: NaiveDateTime) -> PreferencesRow {
        let days: Vec<PreferredWindow> = self
            .preferred_windows
            .iter()
            .map(|w| PreferredWindow {
                days: w.days.iter().map(|d| d.to_ascii_lowercase()).collect(),
                ..w.clone()
            })
            .collect();
        PreferencesRow {
            user_id,
            preferred_windows: serde_json::to_string(&days).unwrap_or_else(|_| "[]".into()),
            favourite_location_ids: serde_json::to_string(&self.favourite_location_ids)
                .unwrap_or_else(|_| "[]".into()),
            max_price_per_kwh_minor: self.max_price_per_kwh_minor,
            avoid_fast_charging_surcharge: self.avoid_fast_charging_surcharges,
            home_lat: self.home.map(|c| c.lat),
            home_lon: self.home.map(|c| c.lon),
            work_lat: self.work.map(|c| c.lat),
            work_lon: self.work.map(|c| c.lon),
            updated_at: now,
        }
    }

    /// The API shape of a stored row.
    pub fn from_row(row: &PreferencesRow) -> PreferencesBody {
        let coord = |lat: Option<f64>, lon: Option<f64>| {
            Some(LatLon {
                lat: lat?,
                lon: lon?,
            })
        };
        PreferencesBody {
            preferred_windows: serde_json::from_str(&row.preferred_windows).unwrap_or_default(),
            favourite_location_ids: serde_json::from_str(&row.favourite_location_ids)
                .unwrap_or_default(),
            max_price_per_kwh_minor: row.max_price_per_kwh_minor,
            avoid_fast_charging_surcharges: row.avoid_fast_charging_surcharge,
            home: coord(row.home_lat, row.home_lon),
            work: coord(row.work_lat, row.work_lon),
        }
    }

    /// What the recommender takes.
    pub fn to_model(&self) -> laddkoll_ml::Preferences {
        let coord = |c: Option<LatLon>| c.map(|c| laddkoll_ml::Coord::new(c.lat, c.lon));
        laddkoll_ml::Preferences {
            preferred_windows: self
                .preferred_windows
                .iter()
                .filter_map(|w| {
                    Some(laddkoll_ml::TimeWindow {
                        days: day_bits(&w.days)?,
                        start_hour: w.start_hour,
                        end_hour: w.end_hour,
                    })
                })
                .collect(),
            favourite_locations: self.favourite_location_ids.clone(),
            max_price_minor_per_kwh: self.max_price_per_kwh_minor,
            avoid_fast_charging_surcharge: self.avoid_fast_charging_surcharges,
            home: coord(self.home),
            work: coord(self.work),
            connector_standards: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(days: &[&str], start: u8, end: u8) -> PreferredWindow {
        PreferredWindow {
            days: days.iter().map(|d| d.to_string()).collect(),
            start_hour: start,
            end_hour: end,
        }
    }

    fn message(e: ApiError) -> String {
        e.to_string()
    }

    #[test]
    fn errors_name_the_field() {
        let mut p = PreferencesBody {
            preferred_windows: vec![window(&["mon"], 8, 9), window(&["xyz"], 8, 9)],
            ..Default::default()
        };
        assert!(message(p.validate().unwrap_err()).starts_with("preferred_windows[1].days"));
        p.preferred_windows = vec![window(&["sat"], 8, 25)];
        assert!(message(p.validate().unwrap_err()).starts_with("preferred_windows[0].end_hour"));
        p.preferred_windows = vec![window(&["sat", "sat"], 8, 9)];
        assert!(message(p.validate().unwrap_err()).contains("twice"));
        p.preferred_windows = vec![window(&["sat"], 22, 6)];
        assert!(p.validate().is_ok(), "a window may wrap past midnight");
        p.max_price_per_kwh_minor = Some(0);
        assert!(message(p.validate().unwrap_err()).starts_with("max_price_per_kwh_minor"));
        p.max_price_per_kwh_minor = Some(250);
        p.work = Some(LatLon {
            lat: 91.0,
            lon: 0.0,
        });
        assert!(message(p.validate().unwrap_err()).starts_with("work.lat"));
    }

    #[test]
    fn stored_rows_round_trip_and_map_to_the_model() {
        let p = PreferencesBody {
            preferred_windows: vec![window(&["Mon", "fri"], 18, 22)],
            favourite_location_ids: vec![3, 1],
            max_price_per_kwh_minor: Some(300),
            avoid_fast_charging_surcharges: true,
            home: Some(LatLon {
                lat: 59.3,
                lon: 18.0,
            }),
            work: None,
        };
        let back = PreferencesBody::from_row(&p.to_row(7, chrono::NaiveDateTime::default()));
        assert_eq!(back.preferred_windows[0].days, vec!["mon", "fri"]);
        assert_eq!(back.favourite_location_ids, vec![3, 1]);
        assert_eq!(back.home, p.home);
        let m = back.to_model();
        assert_eq!(m.preferred_windows[0].days, 0b1_0001);
        assert!(m.avoid_fast_charging_surcharge);
        assert_eq!(m.max_price_minor_per_kwh, Some(300));
    }
}
