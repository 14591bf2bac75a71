//! Does following the advice avoid overload? A replay of the held-out period.
//!
//! 1. **Split**: all sessions are ordered by local start; the split is the Monday 00:00 (local
//!    clock) of the week holding the session at [`ReplayConfig::train_fraction`] of them. Before
//!    it is the history, from it on the held-out period.
//! 2. **Advice at the split**: the whole recommender ([`crate::pipeline::recommend_all`], with
//!    the same settings as `laddkoll recommend`) runs on the history of the
//!    [`ReplayConfig::window_days`] before the split alone, as the nightly job would have.
//! 3. **Followers**: the advised drivers are put in a fixed pseudo-random order (from the seed);
//!    for a share `p` the first `round(p × advised)` of them follow, so the followers of 25 % are
//!    among those of 50 %, and so on.
//! 4. **Following** moves each of a follower's held-out sessions that the advice is about (at the
//!    advised-from place, on a day of the advice's span, arriving in the advised-from hour) to the
//!    advised place and hour, keeping the minute, the duration and the energy.
//! 5. **Measures**, for each share: the arrivals that find every connector of their place taken
//!    (at the plug-in instant, as many earlier sessions still plugged in as the place has
//!    connectors), each place's **peak** (its busiest hour of the week: the largest mean number of
//!    connectors in use in an hour-of-week slot over the held-out weeks, each hour's use capped at
//!    the connectors, since the cars beyond them are the arrivals that found every connector
//!    taken), how many places' peak is higher than with nobody following, and the share of
//!    sessions moved.
//!
//! Spreading guarantees that following never lifts a slot above its place's peak **on the
//! history the advice was computed from**; the held-out weeks are new data, so the replay
//! measures whether that carries over rather than assuming it.
//!
//! Capacity of a place: its distinct `charge_point_ref`s (at least one), as `import-sessions`
//! counts it. Places get coordinates far apart (the file has none), so no advice sends a driver
//! to "nearby" places the data cannot place.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

use chrono::{NaiveDateTime, TimeDelta};
use serde::Serialize;

use crate::data::{DriverId, Location, LocationId, Session};
use crate::features::{circular_offset_h, hour_of_day, weekday_index};
use crate::geo::Coord;
use crate::habits::HabitConfig;
use crate::import::ImportRow;
use crate::occupancy::{compute_occupancy_in, monday_of};
use crate::pipeline::{driver_seed, recommend_all, RecommendInput};
use crate::rank::{RankConfig, Recommendation};

/// Settings of the replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayConfig {
    /// Share of all sessions (the earliest) before the split, rounded to the week's Monday.
    pub train_fraction: f64,
    /// Days of history before the split the advice is learned from (`laddkoll recommend
    /// --window-days`).
    pub window_days: u32,
    /// Shares of the advised drivers that follow their advice.
    pub shares: Vec<f64>,
    /// Seed of the recommender and of the followers' order.
    pub seed: u64,
    /// The habit model's settings (the recommender's default).
    pub habits: HabitConfig,
    /// The ranking's settings (the recommender's default).
    pub rank: RankConfig,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            train_fraction: 0.8,
            window_days: 182,
            shares: vec![0.0, 0.25, 0.5, 1.0],
            seed: 1,
            habits: HabitConfig::default(),
            rank: RankConfig::default(),
        }
    }
}

/// The held-out period with one share of drivers following.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShareResult {
    /// Share of the advised drivers following.
    pub share: f64,
    /// Drivers following.
    pub followers: usize,
    /// Held-out sessions moved to the advised place and hour.
    pub moved_sessions: usize,
    /// `moved_sessions` over all held-out sessions.
    pub moved_share: f64,
    /// Arrivals that found every connector of their place taken.
    pub full_arrivals: usize,
    /// Places whose peak is higher than with nobody following.
    pub locations_with_higher_peak: usize,
    /// The highest peak of any place, mean connectors in use.
    pub highest_peak: f64,
}

/// One place in the replay.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LocationReplay {
    /// Its name (or reference).
    pub name: String,
    /// Connectors.
    pub capacity: u32,
    /// Peak per share (in the order of [`ReplayConfig::shares`]).
    pub peaks: Vec<f64>,
    /// Arrivals finding every connector taken, per share.
    pub full_arrivals: Vec<usize>,
}

/// One piece of advice issued at the split.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssuedAdvice {
    /// The driver reference.
    pub driver: String,
    /// `less_busy_time`, `cheaper_time` or `nearby_location`.
    pub kind: String,
    /// The sentence.
    pub sentence: String,
}

/// What [`replay`] found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplayReport {
    /// The split, local clock (a Monday 00:00); `None` without enough sessions on both sides.
    pub split_at: Option<NaiveDateTime>,
    /// Sessions in the window before the split (what the advice was learned from).
    pub history_sessions: usize,
    /// Days of that window.
    pub window_days: u32,
    /// Sessions from the split on (what is replayed).
    pub held_out_sessions: usize,
    /// Weeks of the held-out period.
    pub held_out_weeks: u32,
    /// Drivers with history before the split.
    pub drivers: usize,
    /// Drivers given advice.
    pub drivers_advised: usize,
    /// Pieces of advice.
    pub recommendations: usize,
    /// Per share of followers.
    pub shares: Vec<ShareResult>,
    /// Per place with held-out sessions (or moved to), by name.
    pub locations: Vec<LocationReplay>,
    /// The advice issued at the split.
    pub advice: Vec<IssuedAdvice>,
}

impl ReplayReport {
    /// A table for a terminal.
    pub fn to_text(&self) -> String {
        let Some(split) = self.split_at else {
            return "Advice replay: not enough sessions before and after a split\n".into();
        };
        let mut s = format!(
            "Advice replay: advice issued at {} from the {} sessions of the {} days before, by \
             {} drivers; {} of them advised ({} pieces of advice); held-out period {} weeks, {} \
             sessions\n",
            split.date(),
            self.history_sessions,
            self.window_days,
            self.drivers,
            self.drivers_advised,
            self.recommendations,
            self.held_out_weeks,
            self.held_out_sessions
        );
        s.push_str(&format!(
            "{:<12}{:>10}{:>16}{:>13}{:>20}{:>14}\n",
            "following", "drivers", "sessions moved", "full on", "places with a", "highest"
        ));
        s.push_str(&format!(
            "{:<12}{:>10}{:>16}{:>13}{:>20}{:>14}\n",
            "", "", "", "arrival", "higher peak", "peak"
        ));
        for r in &self.shares {
            s.push_str(&format!(
                "{:<12}{:>10}{:>9} {:>5.1} %{:>13}{:>20}{:>14.3}\n",
                format!("{:.0} %", r.share * 100.0),
                r.followers,
                r.moved_sessions,
                r.moved_share * 100.0,
                r.full_arrivals,
                r.locations_with_higher_peak,
                r.highest_peak
            ));
        }
        let changed: Vec<&LocationReplay> = self
            .locations
            .iter()
            .filter(|l| {
                l.peaks.iter().any(|p| (p - l.peaks[0]).abs() > 1e-9)
                    || l.full_arrivals.iter().any(|f| *f != l.full_arrivals[0])
            })
            .collect();
        for a in &self.advice {
            s.push_str(&format!("  advice to {}: {}\n", a.driver, a.sentence));
        }
        if !changed.is_empty() {
            s.push_str("places whose figures change (peak per share; arrivals finding it full):\n");
            for l in changed {
                let peaks: Vec<String> = l.peaks.iter().map(|p| format!("{p:.3}")).collect();
                let full: Vec<String> = l.full_arrivals.iter().map(|f| f.to_string()).collect();
                s.push_str(&format!(
                    "  {} ({} connector(s)): peak {}; full {}\n",
                    l.name,
                    l.capacity,
                    peaks.join(" / "),
                    full.join(" / ")
                ));
            }
        }
        s
    }
}

/// The model's view of an import file: sessions with integer ids, and the places.
pub struct Interned {
    /// Sessions, in file order.
    pub sessions: Vec<Session>,
    /// Places, in order of first appearance.
    pub locations: Vec<Location>,
    /// Driver reference of each driver id (`driver_refs[id - 1]`).
    pub driver_refs: Vec<String>,
}

/// Interns references: drivers by sorted reference (ids from 1), places by first appearance
/// (ids from 1) with their name (the first `location_name` given, else the reference), capacity
/// (distinct charge points, at least one) and coordinates far apart.
pub fn intern(rows: &[ImportRow]) -> Interned {
    let mut refs: Vec<&str> = rows.iter().map(|r| r.driver_ref.as_str()).collect();
    refs.sort_unstable();
    refs.dedup();
    let driver_ids: HashMap<&str, DriverId> = refs
        .iter()
        .enumerate()
        .map(|(i, r)| (*r, i as DriverId + 1))
        .collect();
    let mut loc_ids: HashMap<&str, usize> = HashMap::new();
    let mut locations: Vec<Location> = Vec::new();
    let mut charge_points: Vec<HashSet<&str>> = Vec::new();
    let mut sessions = Vec::with_capacity(rows.len());
    for r in rows {
        let li = *loc_ids.entry(&r.location_ref).or_insert_with(|| {
            let i = locations.len();
            locations.push(Location {
                id: i as LocationId + 1,
                name: r.location_ref.clone(),
                // a grid of whole degrees: no two places within the nearby radius
                coord: Coord::new(-60.0 + (i % 120) as f64, -180.0 + ((i / 120) % 360) as f64),
                connectors: 1,
                standards: vec!["Type2".into()],
                fast_charging_surcharge: false,
                price_minor_per_kwh: None,
            });
            charge_points.push(HashSet::new());
            i
        });
        if let Some(name) = &r.location_name {
            if locations[li].name == r.location_ref {
                locations[li].name.clone_from(name);
            }
        }
        if let Some(cp) = &r.charge_point_ref {
            charge_points[li].insert(cp);
        }
        sessions.push(Session {
            driver: driver_ids[r.driver_ref.as_str()],
            location: locations[li].id,
            start_utc: r.started_at,
            end_utc: r.ended_at,
            local_start: r.local_start,
            energy_kwh: r.energy_kwh,
        });
    }
    for (l, cps) in locations.iter_mut().zip(&charge_points) {
        l.connectors = (cps.len() as u32).max(1);
    }
    Interned {
        sessions,
        locations,
        driver_refs: refs.iter().map(|r| r.to_string()).collect(),
    }
}

/// Runs the replay on the rows of a session file (see the module docs).
pub fn replay(rows: &[ImportRow], cfg: &ReplayConfig) -> ReplayReport {
    let data = intern(rows);
    replay_sessions(&data, cfg)
}

/// [`replay`] on interned data.
pub fn replay_sessions(data: &Interned, cfg: &ReplayConfig) -> ReplayReport {
    let mut starts: Vec<NaiveDateTime> = data.sessions.iter().map(|s| s.local_start).collect();
    starts.sort_unstable();
    let n = starts.len();
    if n < 2 {
        return ReplayReport::default();
    }
    let q = ((n as f64 * cfg.train_fraction).floor() as usize).min(n - 1);
    let split = monday_of(starts[q]);
    let since = split - TimeDelta::days(i64::from(cfg.window_days));
    let (history, held_out): (Vec<Session>, Vec<Session>) = data
        .sessions
        .iter()
        .filter(|s| s.local_start >= since)
        .cloned()
        .partition(|s| s.local_start < split);
    if history.is_empty() || held_out.is_empty() {
        return ReplayReport::default();
    }
    let end = held_out
        .iter()
        .map(|s| s.local_end().min(s.local_start + TimeDelta::days(3)))
        .max()
        .unwrap_or(split);
    let weeks = ((end - split).num_seconds().max(1) + 7 * 86_400 - 1) / (7 * 86_400);
    let weeks = u32::try_from(weeks).unwrap_or(u32::MAX).max(1);

    let input = RecommendInput {
        sessions: history,
        locations: data.locations.clone(),
        preferences: HashMap::new(),
        habits: cfg.habits,
        rank: cfg.rank.clone(),
    };
    let out = recommend_all(&input, cfg.seed);
    let mut advised: Vec<(DriverId, &[Recommendation])> = out
        .drivers
        .iter()
        .filter(|d| !d.recommendations.is_empty())
        .map(|d| (d.driver, d.recommendations.as_slice()))
        .collect();
    advised.sort_by_key(|(d, _)| (driver_seed(cfg.seed ^ 0x0f01_10e5, *d), *d));
    let advice: Vec<IssuedAdvice> = {
        let mut v: Vec<&Recommendation> = advised.iter().flat_map(|(_, r)| r.iter()).collect();
        v.sort_by_key(|r| (r.driver, r.habit_index));
        v.iter()
            .map(|r| IssuedAdvice {
                driver: data
                    .driver_refs
                    .get((r.driver - 1) as usize)
                    .cloned()
                    .unwrap_or_default(),
                kind: r.kind.as_str().into(),
                sentence: r.sentence.clone(),
            })
            .collect()
    };

    let mut report = ReplayReport {
        split_at: Some(split),
        history_sessions: input.sessions.len(),
        window_days: cfg.window_days,
        held_out_sessions: held_out.len(),
        held_out_weeks: weeks,
        drivers: out.drivers.len(),
        drivers_advised: advised.len(),
        recommendations: out.recommendations,
        advice,
        ..ReplayReport::default()
    };
    let mut per_share: Vec<(Vec<f64>, Vec<usize>)> = Vec::new();
    let mut base_peaks: Vec<f64> = Vec::new();
    for &share in &cfg.shares {
        let k =
            ((share.clamp(0.0, 1.0) * advised.len() as f64).round() as usize).min(advised.len());
        let followers: HashMap<DriverId, &[Recommendation]> =
            advised[..k].iter().copied().collect();
        let (sessions, moved) = follow(&held_out, &followers);
        let occ = compute_occupancy_in(&sessions, &data.locations, split, weeks);
        let peaks: Vec<f64> = occ.iter().map(|o| o.peak_in_use()).collect();
        let full = full_arrivals(&sessions, &data.locations);
        if base_peaks.is_empty() {
            base_peaks.clone_from(&peaks);
        }
        let higher = peaks
            .iter()
            .zip(&base_peaks)
            .filter(|(p, b)| **p > **b + 1e-9)
            .count();
        report.shares.push(ShareResult {
            share,
            followers: k,
            moved_sessions: moved,
            moved_share: moved as f64 / held_out.len() as f64,
            full_arrivals: full.iter().sum(),
            locations_with_higher_peak: higher,
            highest_peak: peaks.iter().copied().fold(0.0, f64::max),
        });
        per_share.push((peaks, full));
    }
    for (i, l) in data.locations.iter().enumerate() {
        let peaks: Vec<f64> = per_share.iter().map(|p| p.0[i]).collect();
        let full: Vec<usize> = per_share.iter().map(|p| p.1[i]).collect();
        if peaks.iter().any(|p| *p > 0.0) {
            report.locations.push(LocationReplay {
                name: l.name.clone(),
                capacity: l.connectors,
                peaks,
                full_arrivals: full,
            });
        }
    }
    report.locations.sort_by(|a, b| a.name.cmp(&b.name));
    report
}

/// The sessions with `followers` following their advice (see the module docs), and how many
/// moved.
pub fn follow(
    held_out: &[Session],
    followers: &HashMap<DriverId, &[Recommendation]>,
) -> (Vec<Session>, usize) {
    let mut moved = 0;
    let sessions = held_out
        .iter()
        .map(|s| {
            let Some(recs) = followers.get(&s.driver) else {
                return s.clone();
            };
            let day = weekday_index(s.local_start);
            let hour = hour_of_day(s.local_start).floor() as u8;
            let Some(r) = recs.iter().find(|r| {
                r.from_location == s.location && r.days & (1 << day) != 0 && r.from_hour == hour
            }) else {
                return s.clone();
            };
            moved += 1;
            let shift = circular_offset_h(f64::from(r.start_hour), f64::from(r.from_hour)).round();
            let dt = TimeDelta::hours(shift as i64);
            Session {
                location: r.location,
                start_utc: s.start_utc + dt,
                end_utc: s.end_utc + dt,
                local_start: s.local_start + dt,
                ..s.clone()
            }
        })
        .collect();
    (sessions, moved)
}

/// Per place (in the order of `locations`): arrivals at which as many earlier sessions were
/// still plugged in as the place has connectors.
pub fn full_arrivals(sessions: &[Session], locations: &[Location]) -> Vec<usize> {
    let index: HashMap<LocationId, usize> = locations
        .iter()
        .enumerate()
        .map(|(i, l)| (l.id, i))
        .collect();
    let mut per: Vec<Vec<&Session>> = vec![Vec::new(); locations.len()];
    for s in sessions {
        if let Some(&i) = index.get(&s.location) {
            per[i].push(s);
        }
    }
    per.iter_mut()
        .zip(locations)
        .map(|(v, loc)| {
            v.sort_by_key(|s| (s.start_utc, s.end_utc));
            let mut plugged: BinaryHeap<Reverse<chrono::DateTime<chrono::Utc>>> = BinaryHeap::new();
            let mut full = 0;
            for s in v.iter() {
                while plugged
                    .peek()
                    .is_some_and(|Reverse(end)| *end <= s.start_utc)
                {
                    plugged.pop();
                }
                if plugged.len() >= loc.connectors as usize {
                    full += 1;
                }
                plugged.push(Reverse(s.end_utc.max(s.start_utc)));
            }
            full
        })
        .collect()
}
