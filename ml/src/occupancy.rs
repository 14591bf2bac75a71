//! How busy each location is, per hour of the week.
//!
//! Every session occupies one connector for each hour-of-week slot it overlaps, in proportion
//! to the overlap (plugged in 18:40–19:10 counts 1/3 in the 18 slot and 1/6 in the 19 slot),
//! read on the local wall clock. Sums are taken per calendar week over one observation window
//! shared by all locations (from the Monday before the first session to the end of the last),
//! so a week without sessions counts as an empty week.
//!
//! A slot of a week counts as *free* when its occupancy leaves at least half a connector-hour
//! unused (`occupied ≤ connectors − 0.5`): then someone arriving in that hour would most
//! likely have found a connector. `free_share` is the share of weeks in which the slot was free.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDateTime, TimeDelta};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{Location, LocationId, Session, HOURS_PER_WEEK};

/// Longest stretch of a single session that is counted (longer ones are cut): a car left for
/// weeks says nothing about charging demand.
const MAX_SESSION: TimeDelta = TimeDelta::days(3);

/// Expected use of one location by hour of week.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocationOccupancy {
    /// The location.
    pub location: LocationId,
    /// Connectors: the capacity of every slot.
    pub capacity: u32,
    /// Weeks in the observation window.
    pub weeks: u32,
    /// Mean connectors in use per slot (168 values, slot 0 = Monday 00–01).
    pub expected_occupied: Vec<f64>,
    /// Share of weeks in which the slot had room (168 values).
    pub free_share: Vec<f64>,
}

impl LocationOccupancy {
    /// Expected occupied connectors over capacity (1.0 when there are no connectors).
    pub fn ratio(&self, slot: usize) -> f64 {
        if self.capacity == 0 {
            return 1.0;
        }
        self.expected_occupied[slot % HOURS_PER_WEEK] / f64::from(self.capacity)
    }

    /// Whole connectors expected to be unused in the slot: `⌊capacity − expected⌋`, ≥ 0.
    pub fn spare(&self, slot: usize) -> u32 {
        let free = f64::from(self.capacity) - self.expected_occupied[slot % HOURS_PER_WEEK];
        if free <= 0.0 {
            0
        } else {
            free.floor() as u32
        }
    }

    /// The forecast the API serves: `(hour_of_week, expected occupied connectors, capacity)`.
    pub fn forecast(&self) -> Vec<(u16, f64, u32)> {
        self.expected_occupied
            .iter()
            .enumerate()
            .map(|(slot, &occ)| (slot as u16, occ, self.capacity))
            .collect()
    }
}

/// The observation window: the Monday 00:00 before the first local start, and its length in
/// whole weeks (at least one).
pub fn observation_window(sessions: &[Session]) -> Option<(NaiveDateTime, u32)> {
    let first = sessions.iter().map(|s| s.local_start).min()?;
    let last = sessions
        .iter()
        .map(|s| s.local_end().min(s.local_start + MAX_SESSION))
        .max()?;
    let monday = (first.date()
        - TimeDelta::days(i64::from(first.weekday().num_days_from_monday())))
    .and_hms_opt(0, 0, 0)?;
    let secs = (last - monday).num_seconds().max(1);
    let weeks = (secs + 7 * 86_400 - 1) / (7 * 86_400);
    Some((monday, u32::try_from(weeks).unwrap_or(u32::MAX).max(1)))
}

/// Occupancy of every location in `locations` (same order) from all sessions; sessions at
/// unknown locations are ignored.
pub fn compute_occupancy(sessions: &[Session], locations: &[Location]) -> Vec<LocationOccupancy> {
    let index: HashMap<LocationId, usize> = locations
        .iter()
        .enumerate()
        .map(|(i, l)| (l.id, i))
        .collect();
    let mut per_location: Vec<Vec<&Session>> = vec![Vec::new(); locations.len()];
    for s in sessions {
        if let Some(&i) = index.get(&s.location) {
            per_location[i].push(s);
        }
    }
    let window = observation_window(sessions);
    locations
        .par_iter()
        .zip(per_location.par_iter())
        .map(|(loc, sessions)| occupancy_of(loc, sessions, window))
        .collect()
}

fn occupancy_of(
    loc: &Location,
    sessions: &[&Session],
    window: Option<(NaiveDateTime, u32)>,
) -> LocationOccupancy {
    let capacity = loc.connectors;
    let Some((origin, weeks)) = window else {
        return LocationOccupancy {
            location: loc.id,
            capacity,
            weeks: 0,
            expected_occupied: vec![0.0; HOURS_PER_WEEK],
            free_share: vec![if capacity > 0 { 1.0 } else { 0.0 }; HOURS_PER_WEEK],
        };
    };
    let n_slots = weeks as usize * HOURS_PER_WEEK;
    let mut grid = vec![0.0f32; n_slots];
    for s in sessions {
        let start = (s.local_start - origin).num_seconds().max(0);
        let end = ((s.local_end().min(s.local_start + MAX_SESSION)) - origin).num_seconds();
        let mut t = start;
        while t < end {
            let hour = (t / 3600) as usize;
            let next = ((hour as i64) + 1) * 3600;
            let seg = next.min(end) - t;
            if hour < n_slots {
                grid[hour] += seg as f32 / 3600.0;
            }
            t = next;
        }
    }
    let mut expected = vec![0.0; HOURS_PER_WEEK];
    let mut free = vec![0u32; HOURS_PER_WEEK];
    let room = f64::from(capacity) - 0.5;
    for (i, &occ) in grid.iter().enumerate() {
        let slot = i % HOURS_PER_WEEK;
        expected[slot] += f64::from(occ);
        if capacity > 0 && f64::from(occ) <= room + 1e-6 {
            free[slot] += 1;
        }
    }
    let wf = f64::from(weeks);
    LocationOccupancy {
        location: loc.id,
        capacity,
        weeks,
        expected_occupied: expected.into_iter().map(|e| e / wf).collect(),
        free_share: free.into_iter().map(|f| f64::from(f) / wf).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::Coord;
    use chrono::{NaiveDate, TimeZone, Utc};

    fn loc(id: LocationId, connectors: u32) -> Location {
        Location {
            id,
            name: format!("L{id}"),
            coord: Coord::new(59.0, 18.0),
            connectors,
            standards: vec!["Type2".into()],
            fast_charging_surcharge: false,
            price_minor_per_kwh: None,
        }
    }

    fn session(loc: LocationId, day: u32, h: u32, m: u32, minutes: i64) -> Session {
        let local = NaiveDate::from_ymd_opt(2024, 1, day)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap();
        let start = Utc.from_utc_datetime(&local);
        Session {
            driver: 1,
            location: loc,
            start_utc: start,
            end_utc: start + TimeDelta::minutes(minutes),
            local_start: local,
            energy_kwh: 1.0,
        }
    }

    #[test]
    fn a_session_counts_in_every_slot_it_overlaps_by_fraction() {
        // Tuesday 2024-01-02 18:40–19:10 in a one-week window that ends Sunday
        let s = vec![session(1, 2, 18, 40, 30), session(2, 7, 23, 0, 60)];
        let occ = compute_occupancy(&s, &[loc(1, 2), loc(2, 1)]);
        assert_eq!(occ[0].weeks, 1);
        let (a, b) = (24 + 18, 24 + 19);
        assert!((occ[0].expected_occupied[a] - 1.0 / 3.0).abs() < 1e-6);
        assert!((occ[0].expected_occupied[b] - 1.0 / 6.0).abs() < 1e-6);
        let total: f64 = occ[0].expected_occupied.iter().sum();
        assert!((total - 0.5).abs() < 1e-6, "{total}");
        assert_eq!(occ[0].spare(a), 1);
        assert_eq!(
            occ[0].forecast()[a],
            (a as u16, occ[0].expected_occupied[a], 2)
        );
        // the one connector of location 2 is busy all of Sunday 23–24: no room
        assert_eq!(occ[1].free_share[167], 0.0);
        assert_eq!(occ[1].spare(167), 0);
        assert_eq!(occ[1].free_share[166], 1.0);
    }

    #[test]
    fn a_session_across_midnight_of_sunday_wraps_to_monday_of_the_next_week() {
        let s = vec![session(1, 7, 23, 30, 90), session(1, 15, 12, 0, 1)];
        let occ = compute_occupancy(&s, &[loc(1, 1)]);
        assert_eq!(occ[0].weeks, 3); // Jan 1 – Jan 21
        let w = f64::from(occ[0].weeks);
        assert!((occ[0].expected_occupied[167] - 0.5 / w).abs() < 1e-6);
        assert!((occ[0].expected_occupied[0] - 1.0 / w).abs() < 1e-6);
        // busy all Monday 00–01 of one week out of three
        assert!((occ[0].free_share[0] - 2.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn free_share_counts_weeks_with_room() {
        // two connectors; three weeks; Wednesday 10–11 both busy in week 1, one busy in week 2
        let s = vec![
            session(1, 3, 10, 0, 60),
            session(1, 3, 10, 0, 60),
            session(1, 10, 10, 0, 60),
            session(1, 17, 9, 0, 1),
        ];
        let occ = compute_occupancy(&s, &[loc(1, 2)]);
        let slot = 2 * 24 + 10;
        assert_eq!(occ[0].weeks, 3);
        assert!((occ[0].free_share[slot] - 2.0 / 3.0).abs() < 1e-9);
        assert!((occ[0].expected_occupied[slot] - 1.0).abs() < 1e-6);
        assert!((occ[0].ratio(slot) - 0.5).abs() < 1e-6);
    }
}
