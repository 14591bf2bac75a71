//! Spreads advice so following it never creates a new peak.
//!
//! A slot is a (location, hour of week). Each location's **limit** is its busiest slot's mean
//! load (its peak, [`crate::occupancy::LocationOccupancy::peak`]), at most its connectors; a
//! slot's *room* is the limit minus the slot's mean load. Every candidate carries its load
//! footprint ([`crate::rank::Recommendation::footprint`]): the mean load that following it adds
//! to each slot (the moved sessions' load, shifted in time or carried to another place, minus
//! what they leave behind in the same slot). Candidates are taken greedily, best score first
//! (ties: lower driver id, then location, then slot), and accepted only when every slot of their
//! footprint still has room for it, the driver has fewer than `max_per_driver` accepted pieces
//! of advice, and none yet for the same habit or the same slot.
//!
//! **Guarantee**: for the history the advice was computed from, any subset of drivers following
//! their accepted advice adds to each slot at most its room, so no slot rises above its
//! location's peak (or its connectors) and no location gets a new peak. Removals are never
//! credited, so the guarantee holds whoever follows and whoever does not.

use std::collections::{HashMap, HashSet};

use crate::data::{DriverId, LocationId};
use crate::rank::LoadChange;

/// What the spreading needs to know about one candidate recommendation.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate<'a> {
    /// For whom.
    pub driver: DriverId,
    /// Which of the driver's habits it changes.
    pub habit: usize,
    /// Suggested location.
    pub location: LocationId,
    /// Suggested hour-of-week slot.
    pub hour_of_week: u16,
    /// Higher is better.
    pub score: f64,
    /// Mean load it adds per slot.
    pub footprint: &'a [LoadChange],
}

/// Slack for floating-point sums of loads.
const EPS: f64 = 1e-9;

/// Indices (into `candidates`) of the accepted candidates, in acceptance order. `room(location,
/// hour_of_week)` is the load a slot may still take (its location's limit minus its load).
pub fn spread(
    candidates: &[Candidate<'_>],
    room: impl Fn(LocationId, u16) -> f64,
    max_per_driver: usize,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&candidates[a], &candidates[b]);
        y.score
            .total_cmp(&x.score)
            .then(x.driver.cmp(&y.driver))
            .then(x.location.cmp(&y.location))
            .then(x.hour_of_week.cmp(&y.hour_of_week))
            .then(a.cmp(&b))
    });
    let mut left: HashMap<(LocationId, u16), f64> = HashMap::new();
    let mut per_driver: HashMap<DriverId, usize> = HashMap::new();
    let mut taken: HashSet<(DriverId, usize)> = HashSet::new();
    let mut driver_slot: HashSet<(DriverId, LocationId, u16)> = HashSet::new();
    let mut accepted = Vec::new();
    for i in order {
        let c = &candidates[i];
        let count = per_driver.get(&c.driver).copied().unwrap_or(0);
        if count >= max_per_driver
            || taken.contains(&(c.driver, c.habit))
            || driver_slot.contains(&(c.driver, c.location, c.hour_of_week))
        {
            continue;
        }
        // the candidate's load per slot (a slot listed twice counts twice)
        let mut need: Vec<((LocationId, u16), f64)> = Vec::with_capacity(c.footprint.len());
        for f in c.footprint {
            let key = (f.location, f.hour_of_week);
            match need.iter_mut().find(|(k, _)| *k == key) {
                Some(e) => e.1 += f.added,
                None => need.push((key, f.added)),
            }
        }
        let fits = need.iter().all(|&(key, added)| {
            let r = *left.entry(key).or_insert_with(|| room(key.0, key.1));
            added <= r + EPS
        });
        if !fits {
            continue;
        }
        for (key, added) in &need {
            if let Some(r) = left.get_mut(key) {
                *r -= added;
            }
        }
        per_driver.insert(c.driver, count + 1);
        taken.insert((c.driver, c.habit));
        driver_slot.insert((c.driver, c.location, c.hour_of_week));
        accepted.push(i);
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(location: LocationId, how: u16, added: f64) -> LoadChange {
        LoadChange {
            location,
            hour_of_week: how,
            added,
        }
    }

    fn c<'a>(
        driver: DriverId,
        habit: usize,
        location: LocationId,
        how: u16,
        score: f64,
        footprint: &'a [LoadChange],
    ) -> Candidate<'a> {
        Candidate {
            driver,
            habit,
            location,
            hour_of_week: how,
            score,
            footprint,
        }
    }

    #[test]
    fn the_best_candidates_get_the_room_and_the_rest_are_turned_away() {
        let half = [load(10, 5, 0.5)];
        let other = [load(11, 5, 0.3)];
        let cands = [
            c(1, 0, 10, 5, 0.2, &half),
            c(2, 0, 10, 5, 0.9, &half),
            c(3, 0, 10, 5, 0.5, &half),
            c(3, 1, 11, 5, 0.1, &other),
        ];
        // room 1.0 at (10, 5): two halves fit, the third does not
        let got = spread(&cands, |l, _| if l == 10 { 1.0 } else { 0.3 }, 3);
        assert_eq!(got, vec![1, 2, 3]);
    }

    #[test]
    fn a_footprint_must_fit_in_every_slot() {
        let two = [load(10, 5, 0.2), load(10, 6, 0.2)];
        let cands = [c(1, 0, 10, 5, 1.0, &two)];
        assert!(spread(&cands, |_, h| if h == 6 { 0.1 } else { 1.0 }, 3).is_empty());
        assert_eq!(spread(&cands, |_, _| 0.2, 3), vec![0]);
    }

    #[test]
    fn one_advice_per_habit_and_at_most_max_per_driver() {
        let f = [load(10, 5, 0.1)];
        let cands = [
            c(1, 0, 10, 5, 0.9, &f),
            c(1, 0, 11, 5, 0.8, &f),
            c(1, 1, 12, 5, 0.7, &f),
            c(1, 2, 13, 5, 0.6, &f),
        ];
        let got = spread(&cands, |_, _| 10.0, 2);
        assert_eq!(got, vec![0, 2]);
    }
}
