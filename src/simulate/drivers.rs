//! Simulated drivers and their habits: each has a home and a work place and hours at which
//! they tend to plug in at each, so demand differs by time of day and by place.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use rand::rngs::StdRng;
use rand::Rng;
use tokio::sync::Mutex;

use super::fleet::FleetDriver;

/// One driver.
pub struct Driver {
    pub account: FleetDriver,
    pub home: i64,
    pub work: i64,
    /// Hour of day (local) the driver tends to arrive at work and at home.
    pub work_hour: f64,
    pub home_hour: f64,
    /// Starts sessions from the app rather than with the card.
    pub uses_app: bool,
    busy: AtomicBool,
    /// The driver's app access token, once logged in.
    pub token: Mutex<Option<String>>,
}

/// How much a driver wants to charge at `place` at local `hour` (0–24).
fn bump(hour: f64, peak: f64, spread: f64) -> f64 {
    let mut d = (hour - peak).abs();
    d = d.min(24.0 - d);
    (-(d * d) / (2.0 * spread * spread)).exp()
}

impl Driver {
    pub fn desire(&self, place: i64, hour: f64) -> f64 {
        let mut w = 0.0;
        if place == self.work {
            w += bump(hour, self.work_hour, 1.5);
        }
        if place == self.home {
            w += bump(hour, self.home_hour, 2.0);
        }
        w + 0.02
    }

    /// Claims the driver for a session; false if already charging somewhere.
    pub fn claim(&self) -> bool {
        !self.busy.swap(true, Ordering::AcqRel)
    }

    pub fn release(&self) {
        self.busy.store(false, Ordering::Release);
    }
}

/// Every driver, indexed by the places they frequent.
pub struct Drivers {
    pub all: Vec<Driver>,
    by_place: HashMap<i64, Vec<usize>>,
}

impl Drivers {
    /// Gives each driver a home and work place among `places` and habitual hours.
    pub fn new(accounts: &[FleetDriver], places: &[i64], app_share: f64, rng: &mut StdRng) -> Self {
        let mut all = Vec::with_capacity(accounts.len());
        let mut by_place: HashMap<i64, Vec<usize>> = HashMap::new();
        for (i, account) in accounts.iter().enumerate() {
            let (home, work) = if places.is_empty() {
                (0, 0)
            } else {
                (
                    places[i % places.len()],
                    places[rng.gen_range(0..places.len())],
                )
            };
            let driver = Driver {
                account: account.clone(),
                home,
                work,
                work_hour: rng.gen_range(7.0..10.0),
                home_hour: rng.gen_range(16.5..21.0),
                uses_app: rng.gen_bool(app_share.clamp(0.0, 1.0)),
                busy: AtomicBool::new(false),
                token: Mutex::new(None),
            };
            by_place.entry(home).or_default().push(i);
            if work != home {
                by_place.entry(work).or_default().push(i);
            }
            all.push(driver);
        }
        Drivers { all, by_place }
    }

    /// How busy a place is at `hour` relative to its daily mean (1.0 = average), within [0.25, 4].
    pub fn demand(&self, place: i64, hour: f64) -> f64 {
        let Some(list) = self.by_place.get(&place) else {
            return 0.25;
        };
        let at = |h: f64| {
            list.iter()
                .map(|&i| self.all[i].desire(place, h))
                .sum::<f64>()
        };
        let mean = (0..24).map(|h| at(f64::from(h) + 0.5)).sum::<f64>() / 24.0;
        if mean <= 0.0 {
            return 1.0;
        }
        (at(hour) / mean).clamp(0.25, 4.0)
    }

    /// Picks a free driver for `place` at `hour`, weighted by habit, and claims them.
    pub fn pick(&self, place: i64, hour: f64, rng: &mut StdRng) -> Option<usize> {
        let list = self.by_place.get(&place)?;
        for _ in 0..4 {
            let total: f64 = list.iter().map(|&i| self.all[i].desire(place, hour)).sum();
            let mut x = rng.gen_range(0.0..total.max(f64::MIN_POSITIVE));
            let mut chosen = list[list.len() - 1];
            for &i in list {
                x -= self.all[i].desire(place, hour);
                if x <= 0.0 {
                    chosen = i;
                    break;
                }
            }
            if self.all[chosen].claim() {
                return Some(chosen);
            }
        }
        // Habitual drivers busy: anyone free who comes here.
        list.iter().copied().find(|&i| self.all[i].claim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn accounts(n: usize) -> Vec<FleetDriver> {
        (0..n)
            .map(|i| FleetDriver {
                email: format!("d{i}@example.se"),
                password: "x".into(),
                id_tag: format!("{i:014X}"),
            })
            .collect()
    }

    #[test]
    fn demand_follows_the_drivers_habits() {
        let mut rng = StdRng::seed_from_u64(7);
        let drivers = Drivers::new(&accounts(40), &[1, 2], 0.0, &mut rng);
        // Every driver's habitual hours are in the morning (work) or evening (home).
        let night = drivers.demand(1, 3.0);
        let evening = drivers.demand(1, 18.5);
        assert!(evening > 2.0 * night, "evening {evening} night {night}");
        assert_eq!(drivers.demand(99, 12.0), 0.25, "a place nobody visits");
    }

    #[test]
    fn a_driver_charges_at_one_place_at_a_time() {
        let mut rng = StdRng::seed_from_u64(1);
        let drivers = Drivers::new(&accounts(2), &[1], 0.0, &mut rng);
        let a = drivers.pick(1, 8.0, &mut rng).expect("a free driver");
        let b = drivers.pick(1, 8.0, &mut rng).expect("the other driver");
        assert_ne!(a, b);
        assert!(drivers.pick(1, 8.0, &mut rng).is_none(), "both are busy");
        drivers.all[a].release();
        assert_eq!(drivers.pick(1, 8.0, &mut rng), Some(a));
    }
}
