//! The whole recommender for every driver: occupancy, habits, ranking and spreading.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::data::{DriverId, Location, Preferences, Session};
use crate::features::SessionFeatures;
use crate::habits::{DriverModel, Habit, HabitConfig};
use crate::occupancy::{compute_occupancy, LocationOccupancy};
use crate::rank::{rank_driver, RankConfig, RankContext, Recommendation};
use crate::spread::{spread, Candidate};

/// Everything the recommender needs, as plain data.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RecommendInput {
    /// All sessions of all drivers, any order.
    pub sessions: Vec<Session>,
    /// All locations; sessions elsewhere count for habits but not for occupancy.
    pub locations: Vec<Location>,
    /// Stated preferences; drivers without an entry have none.
    pub preferences: HashMap<DriverId, Preferences>,
    /// Habit learning settings.
    pub habits: HabitConfig,
    /// Ranking settings.
    pub rank: RankConfig,
}

/// One driver's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriverResult {
    /// The driver.
    pub driver: DriverId,
    /// Sessions seen.
    pub sessions: usize,
    /// Learned habits, largest share first.
    pub habits: Vec<Habit>,
    /// Advice kept after spreading, best first.
    pub recommendations: Vec<Recommendation>,
}

/// The recommender's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecommendOutput {
    /// Sessions read (all of the input's).
    pub sessions: usize,
    /// One entry per driver with sessions, by driver id.
    pub drivers: Vec<DriverResult>,
    /// Occupancy per location, in the order of the input's locations.
    pub occupancy: Vec<LocationOccupancy>,
    /// Candidate recommendations before spreading.
    pub candidates: usize,
    /// Recommendations kept.
    pub recommendations: usize,
}

/// Number of distinct drivers in `sessions`: the total the progress counter will reach.
pub fn count_drivers(sessions: &[Session]) -> usize {
    let mut ids: Vec<DriverId> = sessions.iter().map(|s| s.driver).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

/// Runs everything; same input and seed give the same output, whatever the thread count.
pub fn recommend_all(input: &RecommendInput, seed: u64) -> RecommendOutput {
    recommend_all_with_progress(input, seed, &AtomicUsize::new(0))
}

/// [`recommend_all`], adding one to `progress` per driver done (habits and ranking), so a
/// terminal can show `progress / count_drivers(..)`.
pub fn recommend_all_with_progress(
    input: &RecommendInput,
    seed: u64,
    progress: &AtomicUsize,
) -> RecommendOutput {
    let occupancy = compute_occupancy(&input.sessions, &input.locations);
    let ctx = RankContext::new(&input.locations, &occupancy, input.rank.nearby_radius_km);

    let mut order: Vec<usize> = (0..input.sessions.len()).collect();
    order.par_sort_unstable_by_key(|&i| {
        let s = &input.sessions[i];
        (s.driver, s.start_utc, i)
    });
    let mut ranges = Vec::new();
    let mut start = 0;
    for i in 1..=order.len() {
        if i == order.len()
            || input.sessions[order[i]].driver != input.sessions[order[start]].driver
        {
            ranges.push(start..i);
            start = i;
        }
    }
    let no_prefs = Preferences::default();
    let mut drivers: Vec<(DriverResult, Vec<Recommendation>)> = ranges
        .into_par_iter()
        .map(|r| {
            let idx = &order[r];
            let driver = input.sessions[idx[0]].driver;
            let own: Vec<&Session> = idx.iter().map(|&i| &input.sessions[i]).collect();
            let feats: Vec<SessionFeatures> = own.iter().map(|s| SessionFeatures::of(s)).collect();
            let habits =
                DriverModel::from_features(&feats, &input.habits, driver_seed(seed, driver)).habits;
            let prefs = input.preferences.get(&driver).unwrap_or(&no_prefs);
            let candidates = rank_driver(driver, &habits, &own, prefs, &ctx, &input.rank);
            progress.fetch_add(1, Ordering::Relaxed);
            (
                DriverResult {
                    driver,
                    sessions: idx.len(),
                    habits,
                    recommendations: Vec::new(),
                },
                candidates,
            )
        })
        .collect();

    let cands: Vec<Candidate<'_>> = drivers
        .iter()
        .flat_map(|(_, cands)| cands.iter())
        .map(|r| Candidate {
            driver: r.driver,
            habit: r.habit_index,
            location: r.location,
            hour_of_week: r.hour_of_week,
            score: r.score,
            footprint: &r.footprint,
        })
        .collect();
    let accepted = spread(
        &cands,
        |loc, slot| {
            ctx.occupancy_of(loc).map_or(0.0, |o| {
                o.peak().min(f64::from(o.capacity)) - o.expected_occupied[usize::from(slot) % 168]
            })
        },
        input.rank.max_per_driver,
    );
    let n_cands = cands.len();
    drop(cands);
    let mut keep = vec![false; n_cands];
    for &i in &accepted {
        keep[i] = true;
    }
    let mut k = 0;
    for (result, cands) in &mut drivers {
        for r in cands.drain(..) {
            if keep[k] {
                result.recommendations.push(r);
            }
            k += 1;
        }
    }
    RecommendOutput {
        sessions: input.sessions.len(),
        drivers: drivers.into_iter().map(|(d, _)| d).collect(),
        occupancy,
        candidates: n_cands,
        recommendations: accepted.len(),
    }
}

/// A per-driver seed, so a driver's habits do not depend on who else is in the batch (the
/// evaluation derives its seeds the same way).
pub fn driver_seed(seed: u64, driver: DriverId) -> u64 {
    // splitmix64 finaliser
    let mut z = seed ^ (driver as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
