//! Turns a driver's habits into reasoned recommendations.
//!
//! For each habit with enough sessions, at its main weekday and arrival hour (the *habit
//! slot*), three kinds of advice are considered, each only when its numbers say so:
//! * [`RecommendationKind::CheaperTime`]: the same location up to
//!   [`RankConfig::max_shift_h`] hours earlier or later, where the tariff is at least
//!   [`RankConfig::min_price_delta_minor`] per kWh cheaper and the slot is usually free;
//! * [`RecommendationKind::LessBusyTime`]: when the habit slot is busy (free less than
//!   [`RankConfig::busy_below_free_share`] of weeks), a nearby hour at the same location that
//!   is usually free and not more expensive;
//! * [`RecommendationKind::NearbyLocation`]: when the habit slot is busy, another location
//!   within [`RankConfig::nearby_radius_km`] (of the usual place, home or work) with a
//!   compatible connector that is usually free at the same hour.
//!
//! Preferences are hard filters (windows, maximum price, fast-charging surcharge, connector
//! standards) or tie-breaks (favourite locations are preferred as alternatives and a habit at a
//! favourite is never advised away from). Scores are `habit share × relative benefit`, comparable
//! across kinds, so the global [`crate::spread`] step can rank everyone's advice together.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::data::{DriverId, Location, LocationId, Preferences, HOURS_PER_WEEK};
use crate::geo::haversine_km;
use crate::habits::Habit;
use crate::occupancy::LocationOccupancy;

/// Settings of the ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankConfig {
    /// Habits with fewer sessions get no advice.
    pub min_habit_sessions: usize,
    /// Largest shift of the arrival, hours.
    pub max_shift_h: u8,
    /// A suggested slot must have room in at least this share of weeks.
    pub min_free_share: f64,
    /// A habit slot with room in fewer weeks than this is busy.
    pub busy_below_free_share: f64,
    /// Required improvement of the free share for busy-slot advice.
    pub min_free_share_gain: f64,
    /// Smallest price difference worth a cheaper-time advice, minor units per kWh.
    pub min_price_delta_minor: i64,
    /// Radius for nearby locations, km.
    pub nearby_radius_km: f64,
    /// Most recommendations a driver receives.
    pub max_per_driver: usize,
    /// Currency unit in sentences (prices are in its hundredths).
    pub currency: String,
}

impl Default for RankConfig {
    fn default() -> Self {
        Self {
            min_habit_sessions: 3,
            max_shift_h: 3,
            min_free_share: 0.8,
            busy_below_free_share: 0.7,
            min_free_share_gain: 0.15,
            min_price_delta_minor: 10,
            nearby_radius_km: 3.0,
            max_per_driver: 3,
            currency: "kr".into(),
        }
    }
}

/// What a recommendation suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecommendationKind {
    /// Same place, a cheaper hour.
    CheaperTime,
    /// Same place, a less busy hour.
    LessBusyTime,
    /// Same hour, a usually free place nearby.
    NearbyLocation,
}

impl RecommendationKind {
    /// The stable snake_case name used in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CheaperTime => "cheaper_time",
            Self::LessBusyTime => "less_busy_time",
            Self::NearbyLocation => "nearby_location",
        }
    }
}

/// The numbers behind a recommendation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Share of weeks the suggested slot had room.
    pub free_share: f64,
    /// Share of weeks the habit slot had room.
    pub current_free_share: f64,
    /// Expected occupied connectors over capacity in the suggested slot.
    pub expected_occupancy_ratio: f64,
    /// Price per kWh in the suggested slot, minor units, if known.
    pub price_minor_per_kwh: Option<i64>,
    /// Habit-slot price minus suggested price, minor units per kWh (positive = cheaper).
    pub price_delta_minor_per_kwh: Option<i64>,
    /// Distance from the usual location, km (nearby advice only).
    pub distance_km: Option<f64>,
    /// Share of the driver's sessions in the habit.
    pub habit_share: f64,
    /// Sessions in the habit.
    pub habit_sessions: usize,
}

/// One piece of advice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// For whom.
    pub driver: DriverId,
    /// What kind.
    pub kind: RecommendationKind,
    /// Index of the habit (in the driver's habit list) it changes.
    pub habit_index: usize,
    /// Suggested location.
    pub location: LocationId,
    /// The habit's usual location.
    pub from_location: LocationId,
    /// Suggested weekday, 0 = Monday.
    pub weekday: u8,
    /// Suggested arrival hour window start, 0..=23.
    pub start_hour: u8,
    /// Window end, 1..=24.
    pub end_hour: u8,
    /// Suggested hour-of-week slot.
    pub hour_of_week: u16,
    /// The habit's hour-of-week slot.
    pub from_hour_of_week: u16,
    /// Ranking score (higher is better).
    pub score: f64,
    /// The numbers.
    pub reason: Reason,
    /// The advice for a person.
    pub sentence: String,
}

/// Locations and their occupancy, indexed for ranking.
#[derive(Debug)]
pub struct RankContext<'a> {
    locations: &'a [Location],
    occupancy: &'a [LocationOccupancy],
    index: HashMap<LocationId, usize>,
    /// Per location: other locations within the radius, with distance, nearest first.
    neighbours: Vec<Vec<(usize, f64)>>,
}

impl<'a> RankContext<'a> {
    /// `occupancy` must be in the order of `locations` (as [`crate::occupancy::compute_occupancy`] returns it).
    pub fn new(
        locations: &'a [Location],
        occupancy: &'a [LocationOccupancy],
        radius_km: f64,
    ) -> Self {
        let index = locations
            .iter()
            .enumerate()
            .map(|(i, l)| (l.id, i))
            .collect();
        let neighbours = locations
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut v: Vec<(usize, f64)> = locations
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(j, b)| (j, haversine_km(a.coord, b.coord)))
                    .filter(|&(_, d)| d <= radius_km)
                    .collect();
                v.sort_by(|x, y| x.1.total_cmp(&y.1).then(x.0.cmp(&y.0)));
                v
            })
            .collect();
        Self {
            locations,
            occupancy,
            index,
            neighbours,
        }
    }

    /// Occupancy of a location, if known.
    pub fn occupancy_of(&self, id: LocationId) -> Option<&LocationOccupancy> {
        self.index.get(&id).map(|&i| &self.occupancy[i])
    }
}

const DAYS: [&str; 7] = [
    "Mondays",
    "Tuesdays",
    "Wednesdays",
    "Thursdays",
    "Fridays",
    "Saturdays",
    "Sundays",
];

/// `110` → `"1,10"`: minor units as a decimal with a comma.
pub fn format_minor(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let m = minor.unsigned_abs();
    format!("{sign}{},{:02}", m / 100, m % 100)
}

fn slot_label(slot: usize) -> String {
    let h = slot % 24;
    format!("{} {}–{}", DAYS[(slot / 24) % 7], h, h + 1)
}

fn pct(share: f64) -> String {
    format!("{} %", (share * 100.0).round() as i64)
}

fn km(d: f64) -> String {
    let tenths = (d * 10.0).round() as i64;
    format!("{},{}", tenths / 10, tenths % 10)
}

/// Candidate recommendations for one driver, best first, at most one per habit and kind.
pub fn rank_driver(
    driver: DriverId,
    habits: &[Habit],
    prefs: &Preferences,
    ctx: &RankContext<'_>,
    cfg: &RankConfig,
) -> Vec<Recommendation> {
    let mut out = Vec::new();
    for (hi, habit) in habits.iter().enumerate() {
        if habit.sessions < cfg.min_habit_sessions {
            continue;
        }
        let Some(&li) = ctx.index.get(&habit.location) else {
            continue;
        };
        let home = &ctx.locations[li];
        let occ = &ctx.occupancy[li];
        let slot = habit.main_weekday * 24 + (habit.arrival_mean_h.floor() as usize % 24);
        let base = Base {
            driver,
            hi,
            habit,
            home,
            slot,
            cur_free: occ.free_share[slot],
            cur_price: home.price_at(slot),
        };
        let price_ok = |p: Option<i64>| match (p, prefs.max_price_minor_per_kwh) {
            (Some(p), Some(max)) => p <= max,
            _ => true,
        };
        let in_windows = |s: usize| {
            prefs.preferred_windows.is_empty()
                || prefs.preferred_windows.iter().any(|w| w.contains(s))
        };
        // the same location, other hours
        let shifts = (1..=i64::from(cfg.max_shift_h)).flat_map(|d| [-d, d]);
        let mut best_cheap: Option<Recommendation> = None;
        let mut best_quiet: Option<Recommendation> = None;
        for shift in shifts {
            let s = (slot as i64 + shift).rem_euclid(HOURS_PER_WEEK as i64) as usize;
            let free = occ.free_share[s];
            if free < cfg.min_free_share || occ.spare(s) == 0 || !in_windows(s) {
                continue;
            }
            let price = home.price_at(s);
            if !price_ok(price) {
                continue;
            }
            let closeness =
                1.0 - shift.unsigned_abs() as f64 / (f64::from(cfg.max_shift_h) + 1.0) / 2.0;
            if let (Some(cur), Some(p)) = (base.cur_price, price) {
                let delta = cur - p;
                if delta >= cfg.min_price_delta_minor && cur > 0 {
                    let score = habit.share * (delta as f64 / cur as f64) * free * closeness;
                    if best_cheap.as_ref().is_none_or(|b| score > b.score) {
                        best_cheap = Some(base.make(
                            RecommendationKind::CheaperTime,
                            home,
                            occ,
                            s,
                            score,
                            None,
                            cfg,
                        ));
                    }
                }
            }
            let not_dearer = match (base.cur_price, price) {
                (Some(c), Some(p)) => p <= c,
                _ => true,
            };
            if base.cur_free < cfg.busy_below_free_share
                && free >= base.cur_free + cfg.min_free_share_gain
                && not_dearer
            {
                let score = habit.share * (free - base.cur_free) * closeness;
                if best_quiet.as_ref().is_none_or(|b| score > b.score) {
                    best_quiet = Some(base.make(
                        RecommendationKind::LessBusyTime,
                        home,
                        occ,
                        s,
                        score,
                        None,
                        cfg,
                    ));
                }
            }
        }
        out.extend(best_cheap);
        out.extend(best_quiet);

        // other locations, same hour
        let favourite_home = prefs.favourite_locations.contains(&home.id);
        if base.cur_free < cfg.busy_below_free_share && !favourite_home {
            let standards: &[String] = if prefs.connector_standards.is_empty() {
                &home.standards
            } else {
                &prefs.connector_standards
            };
            let mut candidates: Vec<(usize, f64)> = ctx.neighbours[li].clone();
            for anchor in [prefs.home, prefs.work].into_iter().flatten() {
                for (j, l) in ctx.locations.iter().enumerate() {
                    if j != li
                        && haversine_km(anchor, l.coord) <= cfg.nearby_radius_km
                        && !candidates.iter().any(|c| c.0 == j)
                    {
                        candidates.push((j, haversine_km(home.coord, l.coord)));
                    }
                }
            }
            let mut best: Option<Recommendation> = None;
            for (j, dist) in candidates {
                let alt = &ctx.locations[j];
                let aocc = &ctx.occupancy[j];
                let free = aocc.free_share[slot];
                let price = alt.price_at(slot);
                let compatible = alt.standards.iter().any(|s| standards.contains(s));
                if !compatible
                    || (prefs.avoid_fast_charging_surcharge && alt.fast_charging_surcharge)
                    || !price_ok(price)
                    || free < cfg.min_free_share
                    || free < base.cur_free + cfg.min_free_share_gain
                    || aocc.spare(slot) == 0
                {
                    continue;
                }
                let near = 1.0 - (dist / (2.0 * cfg.nearby_radius_km.max(1e-9))).min(0.9);
                let fav = if prefs.favourite_locations.contains(&alt.id) {
                    1.5
                } else {
                    1.0
                };
                let score = habit.share * (free - base.cur_free) * near * fav;
                if best.as_ref().is_none_or(|b| score > b.score) {
                    best = Some(base.make(
                        RecommendationKind::NearbyLocation,
                        alt,
                        aocc,
                        slot,
                        score,
                        Some(dist),
                        cfg,
                    ));
                }
            }
            out.extend(best);
        }
    }
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.habit_index.cmp(&b.habit_index))
            .then(a.kind.cmp(&b.kind))
    });
    out
}

struct Base<'a> {
    driver: DriverId,
    hi: usize,
    habit: &'a Habit,
    home: &'a Location,
    slot: usize,
    cur_free: f64,
    cur_price: Option<i64>,
}

impl Base<'_> {
    #[expect(
        clippy::too_many_arguments,
        reason = "a private constructor fed by one caller"
    )]
    fn make(
        &self,
        kind: RecommendationKind,
        loc: &Location,
        occ: &LocationOccupancy,
        slot: usize,
        score: f64,
        distance_km: Option<f64>,
        cfg: &RankConfig,
    ) -> Recommendation {
        let free = occ.free_share[slot];
        let price = loc.price_at(slot);
        let delta = match (self.cur_price, price) {
            (Some(c), Some(p)) => Some(c - p),
            _ => None,
        };
        let (to, from) = (slot_label(slot), slot_label(self.slot));
        let from_h = self.slot % 24;
        let sentence = match kind {
            RecommendationKind::CheaperTime => format!(
                "Charge at {} on {to} instead of {}–{}: {} {}/kWh cheaper, free {} of {to}.",
                loc.name,
                from_h,
                from_h + 1,
                format_minor(delta.unwrap_or(0)),
                cfg.currency,
                pct(free)
            ),
            RecommendationKind::LessBusyTime => format!(
                "Charge at {} on {to} instead of {}–{}: free {} of {to}, against {} of {from}.",
                loc.name,
                from_h,
                from_h + 1,
                pct(free),
                pct(self.cur_free)
            ),
            RecommendationKind::NearbyLocation => format!(
                "Try {}, {} km from {}: free {} of {to}, against {} at {}.",
                loc.name,
                km(distance_km.unwrap_or(0.0)),
                self.home.name,
                pct(free),
                pct(self.cur_free),
                self.home.name
            ),
        };
        Recommendation {
            driver: self.driver,
            kind,
            habit_index: self.hi,
            location: loc.id,
            from_location: self.home.id,
            weekday: (slot / 24) as u8,
            start_hour: (slot % 24) as u8,
            end_hour: (slot % 24 + 1) as u8,
            hour_of_week: slot as u16,
            from_hour_of_week: self.slot as u16,
            score,
            reason: Reason {
                free_share: free,
                current_free_share: self.cur_free,
                expected_occupancy_ratio: occ.ratio(slot),
                price_minor_per_kwh: price,
                price_delta_minor_per_kwh: delta,
                distance_km,
                habit_share: self.habit.share,
                habit_sessions: self.habit.sessions,
            },
            sentence,
        }
    }
}
