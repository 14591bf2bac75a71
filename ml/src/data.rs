//! Plain input and output records shared by the pipeline stages.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::geo::Coord;

/// A driver's id as the service stores it (BIGINT).
pub type DriverId = i64;
/// A location's id as the service stores it (BIGINT).
pub type LocationId = i64;

/// Number of hour-of-week slots; slot 0 is Monday 00:00–01:00 local time.
pub const HOURS_PER_WEEK: usize = 168;

/// One finished charging session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Who charged.
    pub driver: DriverId,
    /// Where.
    pub location: LocationId,
    /// Plug-in time, UTC.
    pub start_utc: DateTime<Utc>,
    /// Unplug time, UTC; never before `start_utc`.
    pub end_utc: DateTime<Utc>,
    /// Plug-in time on the location's wall clock; habits and hour-of-week slots use it.
    pub local_start: NaiveDateTime,
    /// Energy delivered in kWh.
    pub energy_kwh: f64,
}

impl Session {
    /// Duration in hours (0 when the end precedes the start).
    pub fn duration_h(&self) -> f64 {
        ((self.end_utc - self.start_utc).num_seconds().max(0)) as f64 / 3600.0
    }

    /// The local end time, as the local start plus the real duration.
    ///
    /// Across a DST change this is off by the shift; occupancy slots tolerate that.
    pub fn local_end(&self) -> NaiveDateTime {
        self.local_start + (self.end_utc - self.start_utc).max(chrono::TimeDelta::zero())
    }
}

/// A charging location with its connectors and, optionally, its time-of-day prices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Id used by sessions.
    pub id: LocationId,
    /// Name used in sentences.
    pub name: String,
    /// Where it is.
    pub coord: Coord,
    /// Number of connectors that can charge at the same time: the capacity of every slot.
    pub connectors: u32,
    /// Connector standards offered, e.g. `"Type2"`, `"CCS"`.
    pub standards: Vec<String>,
    /// Whether charging here carries a fast-charging surcharge.
    pub fast_charging_surcharge: bool,
    /// Energy price per kWh in minor units (öre, cents) for each of the 168 hour-of-week slots.
    /// `None` when the tariff is unknown: no cheaper-time advice for this place.
    pub price_minor_per_kwh: Option<Vec<i64>>,
}

impl Location {
    /// The price in minor units per kWh for an hour-of-week slot, if known.
    pub fn price_at(&self, hour_of_week: usize) -> Option<i64> {
        self.price_minor_per_kwh
            .as_ref()
            .and_then(|p| p.get(hour_of_week % HOURS_PER_WEEK).copied())
    }
}

/// A window of the week a driver prefers to charge in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    /// Weekdays included, bit 0 = Monday … bit 6 = Sunday.
    pub days: u8,
    /// First hour included, 0..=23.
    pub start_hour: u8,
    /// Hour the window ends (exclusive), 1..=24; smaller than `start_hour` wraps past midnight.
    pub end_hour: u8,
}

impl TimeWindow {
    /// Whether a hour-of-week slot lies in the window.
    pub fn contains(&self, hour_of_week: usize) -> bool {
        let day = (hour_of_week / 24) % 7;
        let hour = (hour_of_week % 24) as u8;
        if self.start_hour < self.end_hour {
            self.days & (1 << day) != 0 && hour >= self.start_hour && hour < self.end_hour
        } else {
            // wraps past midnight: the early part belongs to the previous day's window
            let prev = (day + 6) % 7;
            (self.days & (1 << day) != 0 && hour >= self.start_hour)
                || (self.days & (1 << prev) != 0 && hour < self.end_hour)
        }
    }
}

/// What a driver told us about how they like to charge. Everything is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Preferences {
    /// If not empty, new times are only suggested inside these windows.
    pub preferred_windows: Vec<TimeWindow>,
    /// Locations the driver likes: preferred as alternatives and never advised against.
    pub favourite_locations: Vec<LocationId>,
    /// Never suggest a slot whose known price is above this, minor units per kWh.
    pub max_price_minor_per_kwh: Option<i64>,
    /// Never suggest a location with a fast-charging surcharge.
    pub avoid_fast_charging_surcharge: bool,
    /// Home; locations near it count as nearby too.
    pub home: Option<Coord>,
    /// Work; locations near it count as nearby too.
    pub work: Option<Coord>,
    /// Connector standards the car takes; empty means "those of the places it already uses".
    pub connector_standards: Vec<String>,
}
