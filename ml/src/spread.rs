//! Spreads advice so following it does not create new peaks.
//!
//! A slot is a (location, hour of week). Its spare capacity is the whole connectors expected
//! to be unused there ([`crate::occupancy::LocationOccupancy::spare`]). Candidates are taken
//! greedily, best score first (ties: lower driver id, then slot), and accepted only while the
//! slot still has room, the driver has fewer than `max_per_driver` accepted pieces of advice,
//! and the driver has none yet for the same habit or the same slot. Every accepted candidate
//! uses one unit of the slot's room, so no slot receives more drivers than its spare capacity.

use std::collections::{HashMap, HashSet};

use crate::data::{DriverId, LocationId};

/// What the spreading needs to know about one candidate recommendation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
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
}

/// Indices (into `candidates`) of the accepted candidates, in acceptance order.
pub fn spread(
    candidates: &[Candidate],
    spare: impl Fn(LocationId, u16) -> u32,
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
    let mut room: HashMap<(LocationId, u16), u32> = HashMap::new();
    let mut per_driver: HashMap<DriverId, usize> = HashMap::new();
    let mut taken: HashSet<(DriverId, usize)> = HashSet::new();
    let mut driver_slot: HashSet<(DriverId, LocationId, u16)> = HashSet::new();
    let mut accepted = Vec::new();
    for i in order {
        let c = &candidates[i];
        let key = (c.location, c.hour_of_week);
        let left = room
            .entry(key)
            .or_insert_with(|| spare(c.location, c.hour_of_week));
        let count = per_driver.entry(c.driver).or_insert(0);
        if *left == 0
            || *count >= max_per_driver
            || taken.contains(&(c.driver, c.habit))
            || driver_slot.contains(&(c.driver, c.location, c.hour_of_week))
        {
            continue;
        }
        *left -= 1;
        *count += 1;
        taken.insert((c.driver, c.habit));
        driver_slot.insert((c.driver, c.location, c.hour_of_week));
        accepted.push(i);
    }
    accepted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(driver: DriverId, habit: usize, location: LocationId, how: u16, score: f64) -> Candidate {
        Candidate {
            driver,
            habit,
            location,
            hour_of_week: how,
            score,
        }
    }

    #[test]
    fn the_best_candidates_get_the_room_and_the_rest_are_turned_away() {
        let cands = [
            c(1, 0, 10, 5, 0.2),
            c(2, 0, 10, 5, 0.9),
            c(3, 0, 10, 5, 0.5),
            c(3, 1, 11, 5, 0.1),
        ];
        let got = spread(&cands, |l, _| if l == 10 { 2 } else { 1 }, 3);
        assert_eq!(got, vec![1, 2, 3]);
    }

    #[test]
    fn one_advice_per_habit_and_at_most_max_per_driver() {
        let cands = [
            c(1, 0, 10, 5, 0.9),
            c(1, 0, 11, 5, 0.8),
            c(1, 1, 12, 5, 0.7),
            c(1, 2, 13, 5, 0.6),
        ];
        let got = spread(&cands, |_, _| 10, 2);
        assert_eq!(got, vec![0, 2]);
    }
}
