//! How busy each location is, per hour of the week, and how busy it is **without** a given
//! driver.
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
//!
//! The per-week figures are kept, so [`LocationOccupancy::others`] can judge a slot from the
//! sessions of **other** drivers only: a driver's own sessions are subtracted week by week
//! before a slot is called busy or free (nobody is their own competition).

use std::collections::HashMap;

use chrono::{Datelike, NaiveDateTime, TimeDelta};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{Location, LocationId, Session, HOURS_PER_WEEK};

/// Longest stretch of a single session that is counted (longer ones are cut): a car left for
/// weeks says nothing about charging demand.
const MAX_SESSION: TimeDelta = TimeDelta::days(3);

/// Tolerance of the "free" test on per-week sums (they are `f32`, and subtracting a driver's
/// own load leaves rounding residue).
const FREE_EPS: f64 = 1e-4;

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
    /// Monday 00:00 (local clock) of the first week.
    #[serde(skip)]
    origin: Option<NaiveDateTime>,
    /// Connectors in use per hour since `origin`, `weeks × 168` values.
    #[serde(skip)]
    grid: Vec<f32>,
}

/// A driver's own load at one location: connector-hours per hour since the location's origin.
pub type OwnLoad = HashMap<usize, f32>;

/// How free a set of slots was for someone, from the others' sessions.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SlotStats {
    /// Share of (week, slot) pairs with at least half a connector-hour unused.
    pub free_share: f64,
    /// Mean occupied connectors over capacity.
    pub occupancy_ratio: f64,
    /// Weeks the figures rest on.
    pub weeks: u32,
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

    /// The busiest hour of the week: the largest mean number of connectors in use in a slot.
    pub fn peak(&self) -> f64 {
        self.expected_occupied.iter().copied().fold(0.0, f64::max)
    }

    /// The busiest hour of the week in connectors actually in use: per week and hour the load
    /// capped at the connectors (more cars than connectors cannot charge at once; the rest
    /// found every connector taken), then the largest mean over the weeks of an hour-of-week
    /// slot.
    pub fn peak_in_use(&self) -> f64 {
        let weeks = self.weeks as usize;
        if weeks == 0 || self.grid.len() < weeks * HOURS_PER_WEEK {
            return 0.0;
        }
        let cap = f64::from(self.capacity);
        let mut sums = [0.0; HOURS_PER_WEEK];
        for (i, &v) in self.grid.iter().enumerate() {
            sums[i % HOURS_PER_WEEK] += f64::from(v).min(cap);
        }
        sums.iter().copied().fold(0.0, f64::max) / weeks as f64
    }

    /// The forecast the API serves: `(hour_of_week, expected occupied connectors, capacity)`.
    pub fn forecast(&self) -> Vec<(u16, f64, u32)> {
        self.expected_occupied
            .iter()
            .enumerate()
            .map(|(slot, &occ)| (slot as u16, occ, self.capacity))
            .collect()
    }

    /// The load `sessions` (e.g. one driver's, at this location) put on each hour since the
    /// origin, computed exactly as the occupancy itself.
    pub fn load_of<'a>(&self, sessions: impl IntoIterator<Item = &'a Session>) -> OwnLoad {
        let mut out = OwnLoad::new();
        let Some(origin) = self.origin else {
            return out;
        };
        let n_slots = self.grid.len();
        for s in sessions {
            for_each_hour(s, origin, |hour, amount| {
                if hour < n_slots {
                    *out.entry(hour).or_insert(0.0) += amount;
                }
            });
        }
        out
    }

    /// The mean load per hour-of-week slot of `load` (as [`LocationOccupancy::load_of`] gives
    /// it), over this location's weeks.
    pub fn mean_profile(&self, load: &OwnLoad) -> [f64; HOURS_PER_WEEK] {
        let mut out = [0.0; HOURS_PER_WEEK];
        if self.weeks == 0 {
            return out;
        }
        for (&hour, &v) in load {
            out[hour % HOURS_PER_WEEK] += f64::from(v);
        }
        for v in &mut out {
            *v /= f64::from(self.weeks);
        }
        out
    }

    /// How free the hour-of-week `slots` were for someone whose own load is `own`: every week's
    /// occupancy minus `own`, tested against `capacity − 0.5`, over all weeks and slots.
    pub fn others(&self, own: &OwnLoad, slots: &[usize]) -> SlotStats {
        let weeks = self.weeks as usize;
        if weeks == 0 || slots.is_empty() || self.grid.len() < weeks * HOURS_PER_WEEK {
            return SlotStats {
                free_share: if self.capacity > 0 { 1.0 } else { 0.0 },
                occupancy_ratio: 0.0,
                weeks: self.weeks,
            };
        }
        let room = f64::from(self.capacity) - 0.5;
        let (mut free, mut occ_sum) = (0usize, 0.0);
        for w in 0..weeks {
            for &slot in slots {
                let i = w * HOURS_PER_WEEK + slot % HOURS_PER_WEEK;
                let occ = (f64::from(self.grid[i])
                    - f64::from(own.get(&i).copied().unwrap_or(0.0)))
                .max(0.0);
                occ_sum += occ;
                if self.capacity > 0 && occ <= room + FREE_EPS {
                    free += 1;
                }
            }
        }
        let cells = (weeks * slots.len()) as f64;
        SlotStats {
            free_share: free as f64 / cells,
            occupancy_ratio: if self.capacity > 0 {
                occ_sum / cells / f64::from(self.capacity)
            } else {
                1.0
            },
            weeks: self.weeks,
        }
    }
}

/// Calls `f(hour since origin, connector-hours)` for every hour a session overlaps (local
/// clock, capped at [`MAX_SESSION`]); hours before the origin are skipped.
fn for_each_hour(s: &Session, origin: NaiveDateTime, mut f: impl FnMut(usize, f32)) {
    let start = (s.local_start - origin).num_seconds().max(0);
    let end = ((s.local_end().min(s.local_start + MAX_SESSION)) - origin).num_seconds();
    let mut t = start;
    while t < end {
        let hour = t / 3600;
        let next = (hour + 1) * 3600;
        let seg = next.min(end) - t;
        f(hour as usize, seg as f32 / 3600.0);
        t = next;
    }
}

/// Monday 00:00 of the week of `t`.
pub fn monday_of(t: NaiveDateTime) -> NaiveDateTime {
    (t.date() - TimeDelta::days(i64::from(t.weekday().num_days_from_monday())))
        .and_hms_opt(0, 0, 0)
        .unwrap_or(t)
}

/// The end of the observation: the latest (capped) local end of all sessions.
fn window_end(sessions: &[Session]) -> Option<NaiveDateTime> {
    sessions
        .iter()
        .map(|s| s.local_end().min(s.local_start + MAX_SESSION))
        .max()
}

/// Whole weeks from `origin` to `end` (at least one).
fn weeks_between(origin: NaiveDateTime, end: NaiveDateTime) -> u32 {
    let secs = (end - origin).num_seconds().max(1);
    let weeks = (secs + 7 * 86_400 - 1) / (7 * 86_400);
    u32::try_from(weeks).unwrap_or(u32::MAX).max(1)
}

/// The observation window of a set of sessions: the Monday 00:00 before the first local start,
/// and its length in whole weeks (at least one).
pub fn observation_window(sessions: &[Session]) -> Option<(NaiveDateTime, u32)> {
    let first = sessions.iter().map(|s| s.local_start).min()?;
    let origin = monday_of(first);
    Some((origin, weeks_between(origin, window_end(sessions)?)))
}

/// Occupancy of every location in `locations` (same order) from all sessions, over their
/// [`observation_window`]; sessions at unknown locations are ignored.
pub fn compute_occupancy(sessions: &[Session], locations: &[Location]) -> Vec<LocationOccupancy> {
    let per_location = group(sessions, locations);
    let window = observation_window(sessions);
    locations
        .par_iter()
        .zip(per_location.par_iter())
        .map(|(loc, sessions)| occupancy_of(loc, sessions, window))
        .collect()
}

/// Occupancy of every location over one fixed window: `weeks` weeks from `origin` (a Monday
/// 00:00, local clock). Used to compare variants of the same period (the advice replay).
pub fn compute_occupancy_in(
    sessions: &[Session],
    locations: &[Location],
    origin: NaiveDateTime,
    weeks: u32,
) -> Vec<LocationOccupancy> {
    let per_location = group(sessions, locations);
    locations
        .par_iter()
        .zip(per_location.par_iter())
        .map(|(loc, sessions)| occupancy_of(loc, sessions, Some((origin, weeks.max(1)))))
        .collect()
}

fn group<'a>(sessions: &'a [Session], locations: &[Location]) -> Vec<Vec<&'a Session>> {
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
    per_location
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
            origin: None,
            grid: Vec::new(),
        };
    };
    let n_slots = weeks as usize * HOURS_PER_WEEK;
    let mut grid = vec![0.0f32; n_slots];
    for s in sessions {
        for_each_hour(s, origin, |hour, amount| {
            if hour < n_slots {
                grid[hour] += amount;
            }
        });
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
        origin: Some(origin),
        grid,
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
    fn a_drivers_own_sessions_never_make_a_slot_busy() {
        // one connector; driver 1 alone at Wednesday 10–11 in both weeks: busy for anyone
        // else, free for driver 1
        let mut s = vec![session(1, 3, 10, 0, 60), session(1, 10, 10, 0, 60)];
        let occ = compute_occupancy(&s, &[loc(1, 1)]);
        let slot = 2 * 24 + 10;
        assert_eq!(occ[0].free_share[slot], 0.0);
        let own = occ[0].load_of(s.iter().filter(|x| x.driver == 1));
        let st = occ[0].others(&own, &[slot]);
        assert_eq!((st.free_share, st.weeks), (1.0, 2));
        assert_eq!(st.occupancy_ratio, 0.0);
        // a second driver in week 2: free for driver 1 in one week of two
        let mut other = session(1, 10, 10, 0, 60);
        other.driver = 2;
        s.push(other);
        let occ = compute_occupancy(&s, &[loc(1, 1)]);
        let own = occ[0].load_of(s.iter().filter(|x| x.driver == 1));
        let st = occ[0].others(&own, &[slot]);
        assert_eq!(st.free_share, 0.5);
        assert!((st.occupancy_ratio - 0.5).abs() < 1e-6);
        assert!((occ[0].peak() - 1.5).abs() < 1e-6);
    }

    #[test]
    fn a_fixed_window_counts_the_same_weeks_for_every_location() {
        // location 1 used in weeks 1 and 3, location 2 only in week 3
        let s = vec![
            session(1, 1, 9, 0, 60),
            session(2, 15, 9, 0, 60),
            session(1, 16, 9, 0, 60),
        ];
        let occ = compute_occupancy(&s, &[loc(1, 1), loc(2, 1)]);
        assert_eq!((occ[0].weeks, occ[1].weeks), (3, 3));
        let origin = monday_of(s[1].local_start);
        let fixed = compute_occupancy_in(&s, &[loc(1, 1), loc(2, 1)], origin, 1);
        assert_eq!((fixed[0].weeks, fixed[1].weeks), (1, 1));
        // only the week from the origin counts: location 1's Tuesday 9–10 of week 3
        assert_eq!(fixed[0].expected_occupied[24 + 9], 1.0);
        assert_eq!(fixed[0].expected_occupied[9], 0.0);
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
