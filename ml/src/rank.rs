//! Turns a driver's habits into reasoned recommendations about **other drivers'** load.
//!
//! For each habit, advice is about its *span* (the weekdays it falls on, e.g. Monday–Friday)
//! at its typical arrival hour (the *habit slot*, e.g. "weekdays 8–9"): one piece of advice per
//! habit and kind covers the whole span. Whether a slot is busy or free is judged from the
//! occupancy **without the advised driver's own sessions**
//! ([`crate::occupancy::LocationOccupancy::others`]): over every week and every day of the span,
//! did the other drivers leave at least half a connector-hour unused?
//!
//! Evidence first: a habit with fewer than [`RankConfig::min_habit_sessions`] sessions, or a
//! place observed for fewer than [`RankConfig::min_occupancy_weeks`] weeks, gets no advice.
//!
//! Kinds, each only when its numbers say so:
//! * [`RecommendationKind::CheaperTime`]: the same place at another hour where the tariff is at
//!   least [`RankConfig::min_price_delta_minor`] per kWh cheaper on every day of the span and the
//!   others usually leave room;
//! * [`RecommendationKind::LessBusyTime`]: when the others leave room in the habit slot less than
//!   [`RankConfig::busy_below_free_share`] of the time, another hour at the same place where they
//!   leave room at least [`RankConfig::min_free_share`] of the time (and
//!   [`RankConfig::min_free_share_gain`] more), not dearer;
//! * [`RecommendationKind::NearbyLocation`]: when the habit slot is busy, another location
//!   within [`RankConfig::nearby_radius_km`] (of the usual place, home or work) with a
//!   compatible connector, usually free at the same hours.
//!
//! **Shifts stay within the driver's observed flexibility**: another hour is only suggested if
//! the driver has arrived in it before on this habit (it meets the 10th–90th percentile range
//! of their arrivals, [`crate::habits::Habit::earliest_h`]..[`crate::habits::Habit::latest_h`]).
//! A driver who stated preferred windows gets hours inside them instead (also beyond that
//! range), and never hours outside them; no shift exceeds [`RankConfig::max_shift_h`].
//!
//! Preferences are hard filters (windows, maximum price, fast-charging surcharge, connector
//! standards) or tie-breaks (favourite locations are preferred as alternatives and a habit at a
//! favourite is never advised away from). Scores are `habit share × relative benefit`, comparable
//! across kinds, so the global [`crate::spread`] step can rank everyone's advice together.
//! Every recommendation carries its **load footprint**: how much mean load following it adds to
//! each (place, hour-of-week) slot, so spreading can keep every slot under its place's peak.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::data::{DriverId, Location, LocationId, Preferences, Session, HOURS_PER_WEEK};
use crate::features::{circular_offset_h, hour_of_day, weekday_index};
use crate::geo::haversine_km;
use crate::habits::Habit;
use crate::occupancy::{LocationOccupancy, OwnLoad, SlotStats};

/// Settings of the ranking.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RankConfig {
    /// Habits with fewer sessions get no advice.
    pub min_habit_sessions: usize,
    /// Places observed for fewer weeks get no advice (at them or toward them).
    pub min_occupancy_weeks: u32,
    /// Largest shift of the arrival, hours, even inside a preferred window.
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
            min_habit_sessions: 8,
            min_occupancy_weeks: 8,
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

/// The numbers behind a recommendation. Shares are over every week and every day of the span,
/// counting the **other** drivers' sessions only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// Share of the time the suggested slot had room.
    pub free_share: f64,
    /// Share of the time the habit slot had room.
    pub current_free_share: f64,
    /// The others' mean occupied connectors over capacity in the suggested slot.
    pub expected_occupancy_ratio: f64,
    /// Price per kWh in the suggested slot, minor units, if known (the dearest day of the span).
    pub price_minor_per_kwh: Option<i64>,
    /// Habit-slot price minus suggested price, minor units per kWh (positive = cheaper; the
    /// smallest difference over the span's days).
    pub price_delta_minor_per_kwh: Option<i64>,
    /// Distance from the usual location, km (nearby advice only).
    pub distance_km: Option<f64>,
    /// Share of the driver's sessions in the habit.
    pub habit_share: f64,
    /// Sessions in the habit.
    pub habit_sessions: usize,
    /// Weeks the occupancy figures rest on (the fewer of the two places for nearby advice).
    #[serde(default)]
    pub occupancy_weeks: u32,
}

/// How much mean load (connectors) following a recommendation adds to one slot.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoadChange {
    /// Where.
    pub location: LocationId,
    /// Hour of week.
    pub hour_of_week: u16,
    /// Mean connectors added, > 0.
    pub added: f64,
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
    /// The weekdays it is about (the habit's span), bit 0 = Monday.
    pub days: u8,
    /// First weekday of the span, 0 = Monday.
    pub weekday: u8,
    /// Suggested arrival hour window start, 0..=23.
    pub start_hour: u8,
    /// Window end, 1..=24.
    pub end_hour: u8,
    /// The habit's arrival hour (the window it advises away from starts then).
    pub from_hour: u8,
    /// Suggested hour-of-week slot on the span's first day.
    pub hour_of_week: u16,
    /// The habit's hour-of-week slot on the span's first day.
    pub from_hour_of_week: u16,
    /// Ranking score (higher is better).
    pub score: f64,
    /// The numbers.
    pub reason: Reason,
    /// The advice for a person.
    pub sentence: String,
    /// Mean load added per slot by following it (what spreading budgets).
    pub footprint: Vec<LoadChange>,
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

    /// A location, if known.
    pub fn location(&self, id: LocationId) -> Option<&Location> {
        self.index.get(&id).map(|&i| &self.locations[i])
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

/// The words for a set of weekdays (bit 0 = Monday): "weekdays", "weekends", "every day",
/// "Tuesdays", "Mondays–Wednesdays", "Tuesdays and Thursdays", "Mondays–Wednesdays, Fridays and
/// Saturdays" (runs of three or more days joined by a dash).
pub fn span_label(days: u8) -> String {
    let days = days & 0x7f;
    match days {
        0x1f => return "weekdays".into(),
        0x60 => return "weekends".into(),
        0x7f => return "every day".into(),
        _ => {}
    }
    let mut parts: Vec<String> = Vec::new();
    let mut d = 0;
    while d < 7 {
        if days & (1 << d) == 0 {
            d += 1;
            continue;
        }
        let start = d;
        while d + 1 < 7 && days & (1 << (d + 1)) != 0 {
            d += 1;
        }
        if d - start >= 2 {
            parts.push(format!("{}–{}", DAYS[start], DAYS[d]));
        } else {
            parts.extend((start..=d).map(|x| DAYS[x].to_string()));
        }
        d += 1;
    }
    match parts.len() {
        0 => String::new(),
        1 => parts.remove(0),
        n => format!("{} and {}", parts[..n - 1].join(", "), parts[n - 1]),
    }
}

fn hours(h: usize) -> String {
    format!("{}–{}", h, h + 1)
}

fn pct(share: f64) -> String {
    format!("{} %", (share * 100.0).round() as i64)
}

fn km(d: f64) -> String {
    let tenths = (d * 10.0).round() as i64;
    format!("{},{}", tenths / 10, tenths % 10)
}

/// The hour-of-week slots of `hour` on the days of `days`.
pub fn span_slots(days: u8, hour: usize) -> Vec<usize> {
    (0..7)
        .filter(|d| days & (1 << d) != 0)
        .map(|d| d * 24 + hour % 24)
        .collect()
}

/// Whether arriving in `[hour, hour + 1)` lies within the habit's observed arrivals.
fn within_flexibility(habit: &Habit, hour: usize) -> bool {
    let (earlier, later) = habit.flexibility_h();
    let d = circular_offset_h(hour as f64, habit.arrival_h);
    d <= later + 1e-9 && d + 1.0 > -earlier + 1e-9
}

/// Candidate recommendations for one driver, best first, at most one per habit and kind.
/// `own` are the driver's sessions (any order): they are removed from every occupancy figure
/// the advice is judged by.
pub fn rank_driver(
    driver: DriverId,
    habits: &[Habit],
    own: &[&Session],
    prefs: &Preferences,
    ctx: &RankContext<'_>,
    cfg: &RankConfig,
) -> Vec<Recommendation> {
    let mut out = Vec::new();
    let mut own_loads: HashMap<usize, OwnLoad> = HashMap::new();
    let mut own_load = |li: usize| -> OwnLoad {
        own_loads
            .entry(li)
            .or_insert_with(|| {
                let id = ctx.locations[li].id;
                ctx.occupancy[li].load_of(own.iter().copied().filter(|s| s.location == id))
            })
            .clone()
    };
    for (hi, habit) in habits.iter().enumerate() {
        if habit.sessions < cfg.min_habit_sessions {
            continue;
        }
        let Some(&li) = ctx.index.get(&habit.location) else {
            continue;
        };
        let home = &ctx.locations[li];
        let occ = &ctx.occupancy[li];
        if occ.weeks < cfg.min_occupancy_weeks {
            continue;
        }
        let from_hour = habit.arrival_h.floor() as usize % 24;
        let days = habit.days & 0x7f;
        let home_own = own_load(li);
        let from_slots = span_slots(days, from_hour);
        let cur = occ.others(&home_own, &from_slots);
        // the sessions this advice would move: at the usual place, on a day of the span,
        // arriving in the habit's hour
        let moved: Vec<&Session> = own
            .iter()
            .copied()
            .filter(|s| {
                s.location == home.id
                    && days & (1 << weekday_index(s.local_start)) != 0
                    && hour_of_day(s.local_start).floor() as usize == from_hour
            })
            .collect();
        let moved_profile = occ.mean_profile(&occ.load_of(moved.iter().copied()));
        let base = Base {
            driver,
            hi,
            habit,
            home,
            days,
            from_hour,
            cur,
            moved_profile,
            cfg,
        };
        let price_ok = |p: Option<i64>| match (p, prefs.max_price_minor_per_kwh) {
            (Some(p), Some(max)) => p <= max,
            _ => true,
        };
        let windows_allow = |hour: usize| {
            span_slots(days, hour)
                .iter()
                .all(|&s| prefs.preferred_windows.iter().any(|w| w.contains(s)))
        };
        // the same location, other hours
        let mut best_cheap: Option<Recommendation> = None;
        let mut best_quiet: Option<Recommendation> = None;
        for shift in (1..=i64::from(cfg.max_shift_h)).flat_map(|d| [-d, d]) {
            let hour = (from_hour as i64 + shift).rem_euclid(24) as usize;
            let allowed = if prefs.preferred_windows.is_empty() {
                within_flexibility(habit, hour)
            } else {
                windows_allow(hour)
            };
            if !allowed {
                continue;
            }
            let to_slots = span_slots(days, hour);
            let to = occ.others(&home_own, &to_slots);
            if to.free_share < cfg.min_free_share {
                continue;
            }
            let prices: Vec<(Option<i64>, Option<i64>)> = from_slots
                .iter()
                .zip(&to_slots)
                .map(|(&f, &t)| (home.price_at(f), home.price_at(t)))
                .collect();
            if !prices.iter().all(|p| price_ok(p.1)) {
                continue;
            }
            let closeness =
                1.0 - shift.unsigned_abs() as f64 / (f64::from(cfg.max_shift_h) + 1.0) / 2.0;
            let deltas: Option<Vec<(i64, i64)>> =
                prices.iter().map(|&(c, p)| Some((c?, c? - p?))).collect();
            if let Some(deltas) = &deltas {
                let min_delta = deltas.iter().map(|d| d.1).min().unwrap_or(0);
                let cur_price = deltas.iter().map(|d| d.0).max().unwrap_or(0);
                if min_delta >= cfg.min_price_delta_minor && cur_price > 0 {
                    let score = habit.share
                        * (min_delta as f64 / cur_price as f64)
                        * to.free_share
                        * closeness;
                    if best_cheap.as_ref().is_none_or(|b| score > b.score) {
                        best_cheap = Some(base.make(
                            RecommendationKind::CheaperTime,
                            home,
                            occ,
                            hour,
                            to,
                            score,
                            None,
                        ));
                    }
                }
            }
            let not_dearer = prices.iter().all(|&(c, p)| match (c, p) {
                (Some(c), Some(p)) => p <= c,
                _ => true,
            });
            if cur.free_share < cfg.busy_below_free_share
                && to.free_share >= cur.free_share + cfg.min_free_share_gain
                && not_dearer
            {
                let score = habit.share * (to.free_share - cur.free_share) * closeness;
                if best_quiet.as_ref().is_none_or(|b| score > b.score) {
                    best_quiet = Some(base.make(
                        RecommendationKind::LessBusyTime,
                        home,
                        occ,
                        hour,
                        to,
                        score,
                        None,
                    ));
                }
            }
        }
        out.extend(best_cheap);
        out.extend(best_quiet);

        // other locations, same hours
        let favourite_home = prefs.favourite_locations.contains(&home.id);
        if cur.free_share < cfg.busy_below_free_share && !favourite_home {
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
                let compatible = alt.standards.iter().any(|s| standards.contains(s));
                if !compatible
                    || (prefs.avoid_fast_charging_surcharge && alt.fast_charging_surcharge)
                    || aocc.weeks < cfg.min_occupancy_weeks
                    || !from_slots.iter().all(|&s| price_ok(alt.price_at(s)))
                {
                    continue;
                }
                let to = aocc.others(&own_load(j), &from_slots);
                if to.free_share < cfg.min_free_share
                    || to.free_share < cur.free_share + cfg.min_free_share_gain
                {
                    continue;
                }
                let near = 1.0 - (dist / (2.0 * cfg.nearby_radius_km.max(1e-9))).min(0.9);
                let fav = if prefs.favourite_locations.contains(&alt.id) {
                    1.5
                } else {
                    1.0
                };
                let score = habit.share * (to.free_share - cur.free_share) * near * fav;
                if best.as_ref().is_none_or(|b| score > b.score) {
                    best = Some(base.make(
                        RecommendationKind::NearbyLocation,
                        alt,
                        aocc,
                        from_hour,
                        to,
                        score,
                        Some(dist),
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
    days: u8,
    from_hour: usize,
    cur: SlotStats,
    /// Mean load per hour-of-week slot of the sessions the advice moves, at `home`.
    moved_profile: [f64; HOURS_PER_WEEK],
    cfg: &'a RankConfig,
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
        hour: usize,
        to: SlotStats,
        score: f64,
        distance_km: Option<f64>,
    ) -> Recommendation {
        let from_slots = span_slots(self.days, self.from_hour);
        let to_slots = span_slots(self.days, hour);
        let prices: Vec<(Option<i64>, Option<i64>)> = from_slots
            .iter()
            .zip(&to_slots)
            .map(|(&f, &t)| (self.home.price_at(f), loc.price_at(t)))
            .collect();
        let price = prices
            .iter()
            .map(|p| p.1)
            .try_fold(i64::MIN, |acc, p| p.map(|p| acc.max(p)));
        let delta = prices
            .iter()
            .map(|&(c, p)| Some(c? - p?))
            .try_fold(i64::MAX, |acc, d| d.map(|d| acc.min(d)));
        let span = span_label(self.days);
        let (to_h, from_h) = (hours(hour), hours(self.from_hour));
        let sentence = match kind {
            RecommendationKind::CheaperTime => format!(
                "Charge at {} on {span} {to_h} instead of {from_h}: {} {}/kWh cheaper, and other \
                 drivers left a connector free {} of the time then.",
                loc.name,
                format_minor(delta.unwrap_or(0)),
                self.cfg.currency,
                pct(to.free_share)
            ),
            RecommendationKind::LessBusyTime => format!(
                "Charge at {} on {span} {to_h} instead of {from_h}: other drivers left a \
                 connector free {} of the time then, against {} at {from_h}.",
                loc.name,
                pct(to.free_share),
                pct(self.cur.free_share)
            ),
            RecommendationKind::NearbyLocation => format!(
                "On {span} {from_h}, try {}, {} km from {}: other drivers left a connector free \
                 there {} of the time, against {} at {}.",
                loc.name,
                km(distance_km.unwrap_or(0.0)),
                self.home.name,
                pct(to.free_share),
                pct(self.cur.free_share),
                self.home.name
            ),
        };
        // load footprint: the moved sessions' profile, shifted in time or carried to `loc`
        let mut footprint = Vec::new();
        if loc.id == self.home.id {
            let shift = circular_offset_h(hour as f64, self.from_hour as f64).round() as i64;
            for t in 0..HOURS_PER_WEEK {
                let src = (t as i64 - shift).rem_euclid(HOURS_PER_WEEK as i64) as usize;
                let added = self.moved_profile[src] - self.moved_profile[t];
                if added > 1e-9 {
                    footprint.push(LoadChange {
                        location: loc.id,
                        hour_of_week: t as u16,
                        added,
                    });
                }
            }
        } else {
            // the moved load, a mean over the usual place's weeks, as a mean over this place's
            let scale = f64::from(self.cur.weeks) / f64::from(to.weeks.max(1));
            for (t, &m) in self.moved_profile.iter().enumerate() {
                if m > 1e-9 {
                    footprint.push(LoadChange {
                        location: loc.id,
                        hour_of_week: t as u16,
                        added: m * scale,
                    });
                }
            }
        }
        let first_day = (0..7).find(|d| self.days & (1 << d) != 0).unwrap_or(0);
        Recommendation {
            driver: self.driver,
            kind,
            habit_index: self.hi,
            location: loc.id,
            from_location: self.home.id,
            days: self.days,
            weekday: first_day as u8,
            start_hour: hour as u8,
            end_hour: (hour + 1) as u8,
            from_hour: self.from_hour as u8,
            hour_of_week: (first_day * 24 + hour) as u16,
            from_hour_of_week: (first_day * 24 + self.from_hour) as u16,
            score,
            reason: Reason {
                free_share: to.free_share,
                current_free_share: self.cur.free_share,
                expected_occupancy_ratio: to.occupancy_ratio,
                price_minor_per_kwh: price,
                price_delta_minor_per_kwh: delta,
                distance_km,
                habit_share: self.habit.share,
                habit_sessions: self.habit.sessions,
                occupancy_weeks: self.cur.weeks.min(occ.weeks),
            },
            sentence,
            footprint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_named_in_words() {
        assert_eq!(span_label(0x1f), "weekdays");
        assert_eq!(span_label(0x60), "weekends");
        assert_eq!(span_label(0x7f), "every day");
        assert_eq!(span_label(0b10), "Tuesdays");
        assert_eq!(span_label(0b111), "Mondays–Wednesdays");
        assert_eq!(span_label(0b1010), "Tuesdays and Thursdays");
        assert_eq!(span_label(0b10101), "Mondays, Wednesdays and Fridays");
        assert_eq!(
            span_label(0b0110111),
            "Mondays–Wednesdays, Fridays and Saturdays"
        );
        assert_eq!(span_label(0b0011110), "Tuesdays–Fridays");
        assert_eq!(span_slots(0b1010, 8), vec![32, 80]);
    }
}
