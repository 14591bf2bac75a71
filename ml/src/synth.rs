//! Deterministic synthetic charging histories with planted habits, for tests and benchmarks.
//!
//! Locations are scattered over about 17 × 17 km around Stockholm with 2–8 connectors, Type 2
//! everywhere and CCS (with a fast-charging surcharge) at about a third, and a 168-slot tariff
//! with weekday peaks (07–09, 16–20) and cheap nights. Each driver has one to three planted
//! habits: a weekday morning at a workplace, often a weekday evening elsewhere, sometimes a
//! weekend midday; sessions jitter around them (arrival σ = 25 min). Popular locations are
//! chosen more often, so some slots are genuinely busy. Times are Europe/Stockholm.

use std::collections::HashMap;

use chrono::{NaiveDate, TimeDelta, Utc};
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::data::{DriverId, Location, LocationId, Preferences, Session, HOURS_PER_WEEK};
use crate::geo::Coord;
use crate::import::local_to_utc;
use crate::pipeline::RecommendInput;

/// Size and seed of a synthetic data set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SynthConfig {
    /// Total sessions (spread evenly over drivers).
    pub sessions: usize,
    /// Drivers.
    pub drivers: usize,
    /// Locations.
    pub locations: usize,
    /// Weeks of history, starting Monday 2024-01-01.
    pub weeks: u32,
    /// Seed: same seed, same data.
    pub seed: u64,
}

impl SynthConfig {
    /// The benchmark size: 1,000,000 sessions, 20,000 drivers, 500 locations, 26 weeks.
    pub fn benchmark(seed: u64) -> Self {
        Self {
            sessions: 1_000_000,
            drivers: 20_000,
            locations: 500,
            weeks: 26,
            seed,
        }
    }
}

/// A habit the generator planted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantedHabit {
    /// Where.
    pub location: LocationId,
    /// Mean arrival clock hour.
    pub arrival_h: f64,
    /// Weekend habit (else Monday–Friday).
    pub weekend: bool,
    /// Probability that a session belongs to this habit.
    pub weight: f64,
}

/// Synthetic input plus the truth behind it.
#[derive(Debug, Clone)]
pub struct Synthetic {
    /// Ready for [`crate::pipeline::recommend_all`].
    pub input: RecommendInput,
    /// Planted habits per driver.
    pub planted: HashMap<DriverId, Vec<PlantedHabit>>,
}

/// Standard normal draw (Box–Muller), to avoid a distributions dependency.
fn normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Departures from the plain generator, to test the habit model on data shaped unlike the
/// benchmark's: drifting routines, weekday-specific times, one-off sessions, several stations
/// per place. [`Scenario::default`] changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Name for reports.
    pub name: String,
    /// Each driver's main habit moves (another place, 1–2 h earlier or later) at a random week
    /// between 40 % and 80 % of the history.
    pub drift: bool,
    /// Standard deviation, hours, of a per-driver offset of the arrival on each weekday (e.g.
    /// later on Fridays).
    pub weekday_effect_h: f64,
    /// Share of sessions that are one-offs: a random place, a random hour 06–22, any day.
    pub noise_share: f64,
    /// A habit's place is one of this many neighbouring stations, chosen with probabilities
    /// ½, ¼, … (1: always the same).
    pub stations_per_habit: usize,
    /// Standard deviation of the arrival around a habit's time, hours.
    pub jitter_h: f64,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            name: "plain".into(),
            drift: false,
            weekday_effect_h: 0.0,
            noise_share: 0.0,
            stations_per_habit: 1,
            jitter_h: 0.42,
        }
    }
}

impl Scenario {
    /// The scenarios the habit model's settings are checked on (`ml/README.md`).
    pub fn all() -> Vec<Scenario> {
        let base = Scenario::default();
        vec![
            base.clone(),
            Scenario {
                name: "drift".into(),
                drift: true,
                ..base.clone()
            },
            Scenario {
                name: "weekday-specific".into(),
                weekday_effect_h: 1.0,
                ..base.clone()
            },
            Scenario {
                name: "one-offs".into(),
                noise_share: 0.25,
                jitter_h: 0.8,
                ..base.clone()
            },
            Scenario {
                name: "stations".into(),
                stations_per_habit: 4,
                jitter_h: 0.8,
                ..base.clone()
            },
            Scenario {
                name: "workplace-like".into(),
                drift: true,
                weekday_effect_h: 0.5,
                noise_share: 0.1,
                stations_per_habit: 4,
                jitter_h: 1.0,
            },
        ]
    }
}

/// Generates a data set; see the module docs.
pub fn generate(cfg: &SynthConfig) -> Synthetic {
    generate_scenario(cfg, &Scenario::default())
}

/// Generates a data set shaped by `sc` (the plain generator's draws are unchanged; the
/// scenario's come from a second generator seeded from the same seed).
pub fn generate_scenario(cfg: &SynthConfig, sc: &Scenario) -> Synthetic {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed);
    let mut xrng = Xoshiro256PlusPlus::seed_from_u64(cfg.seed ^ 0x5ce7_a210_0000_0001);
    let tz = chrono_tz::Europe::Stockholm;
    let n_loc = cfg.locations.max(1);
    let locations: Vec<Location> = (0..n_loc)
        .map(|i| {
            let ccs = rng.gen_bool(0.33);
            let base: i64 = rng.gen_range(150..=300);
            let peak: i64 = rng.gen_range(60..=150);
            let prices = (0..HOURS_PER_WEEK)
                .map(|slot| {
                    let (day, h) = (slot / 24, slot % 24);
                    if day < 5 && ((7..9).contains(&h) || (16..20).contains(&h)) {
                        base + peak
                    } else if !(6..22).contains(&h) {
                        base - 50
                    } else {
                        base
                    }
                })
                .collect();
            Location {
                id: i as LocationId + 1,
                name: format!("Site {}", i + 1),
                coord: Coord::new(
                    59.26 + rng.gen_range(0.0..0.15),
                    17.90 + rng.gen_range(0.0..0.30),
                ),
                connectors: rng.gen_range(2..=8),
                standards: if ccs {
                    vec!["Type2".into(), "CCS".into()]
                } else {
                    vec!["Type2".into()]
                },
                fast_charging_surcharge: ccs,
                price_minor_per_kwh: Some(prices),
            }
        })
        .collect();
    // popularity skew: squaring a uniform favours low indices
    let pick_location = |rng: &mut Xoshiro256PlusPlus| -> LocationId {
        let u: f64 = rng.gen();
        ((u * u * n_loc as f64) as usize).min(n_loc - 1) as LocationId + 1
    };
    let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap_or_default();
    let n_drivers = cfg.drivers.max(1);
    let mut sessions = Vec::with_capacity(cfg.sessions);
    let mut planted = HashMap::with_capacity(n_drivers);
    let mut preferences = HashMap::new();
    for d in 0..n_drivers {
        let driver = d as DriverId + 1;
        let mut habits = vec![PlantedHabit {
            location: pick_location(&mut rng),
            arrival_h: rng.gen_range(7.0..9.5),
            weekend: false,
            weight: 0.6,
        }];
        if rng.gen_bool(0.6) {
            habits.push(PlantedHabit {
                location: pick_location(&mut rng),
                arrival_h: rng.gen_range(16.5..20.0),
                weekend: false,
                weight: 0.3,
            });
        }
        if rng.gen_bool(0.3) {
            habits.push(PlantedHabit {
                location: pick_location(&mut rng),
                arrival_h: rng.gen_range(10.0..15.0),
                weekend: true,
                weight: 0.15,
            });
        }
        let total: f64 = habits.iter().map(|h| h.weight).sum();
        for h in &mut habits {
            h.weight /= total;
        }
        let durations: Vec<f64> = habits.iter().map(|_| rng.gen_range(1.0..8.0)).collect();
        let n = cfg.sessions / n_drivers + usize::from(d < cfg.sessions % n_drivers);
        let weekday_offsets: Vec<f64> = (0..7)
            .map(|_| {
                if sc.weekday_effect_h > 0.0 {
                    normal(&mut xrng) * sc.weekday_effect_h
                } else {
                    0.0
                }
            })
            .collect();
        let weeks = cfg.weeks.max(1);
        let drift = sc.drift.then(|| {
            let at = (f64::from(weeks) * xrng.gen_range(0.4..0.8)) as u32;
            let shift = xrng.gen_range(1.0..2.0) * if xrng.gen_bool(0.5) { 1.0 } else { -1.0 };
            (at, pick_location(&mut xrng), shift)
        });
        for _ in 0..n {
            let mut u: f64 = rng.gen();
            let hi = habits
                .iter()
                .position(|h| {
                    u -= h.weight;
                    u < 0.0
                })
                .unwrap_or(habits.len() - 1);
            let h = &habits[hi];
            let week = rng.gen_range(0..weeks);
            let day = if h.weekend {
                rng.gen_range(5..7)
            } else {
                rng.gen_range(0..5)
            };
            let mut arrival = (h.arrival_h + normal(&mut rng) * 0.42).rem_euclid(24.0);
            let mut location = h.location;
            let mut day = day;
            if *sc != Scenario::default() {
                arrival = h.arrival_h
                    + (arrival - h.arrival_h) / 0.42 * sc.jitter_h
                    + weekday_offsets[day as usize];
                if let Some((at, moved_to, shift)) = drift {
                    if hi == 0 && week >= at {
                        location = moved_to;
                        arrival += shift;
                    }
                }
                if sc.stations_per_habit > 1 {
                    let mut j = 0;
                    while j + 1 < sc.stations_per_habit && xrng.gen_bool(0.5) {
                        j += 1;
                    }
                    location = (location - 1 + j as LocationId).rem_euclid(n_loc as LocationId) + 1;
                }
                if sc.noise_share > 0.0 && xrng.gen_bool(sc.noise_share.min(1.0)) {
                    location = pick_location(&mut xrng);
                    arrival = xrng.gen_range(6.0..22.0);
                    day = xrng.gen_range(0..7);
                }
                arrival = arrival.rem_euclid(24.0);
            }
            let date = start + TimeDelta::days(i64::from(week) * 7 + day);
            let mut local = date.and_hms_opt(0, 0, 0).unwrap_or_default()
                + TimeDelta::seconds((arrival * 3600.0) as i64);
            let start_utc = match local_to_utc(local, tz) {
                Ok(t) => t,
                Err(_) => {
                    // spring-forward gap: the clock shows an hour later
                    local += TimeDelta::hours(1);
                    local_to_utc(local, tz).unwrap_or_else(|_| local.and_utc())
                }
            };
            let dur_h = (durations[hi] * rng.gen_range(0.7..1.3)).max(0.25);
            sessions.push(Session {
                driver,
                location,
                start_utc: start_utc.with_timezone(&Utc),
                end_utc: start_utc + TimeDelta::seconds((dur_h * 3600.0) as i64),
                local_start: local,
                energy_kwh: (dur_h * rng.gen_range(2.0..7.0) * 100.0).round() / 100.0,
            });
        }
        if rng.gen_bool(0.1) {
            preferences.insert(
                driver,
                Preferences {
                    max_price_minor_per_kwh: Some(rng.gen_range(200..=400)),
                    avoid_fast_charging_surcharge: rng.gen_bool(0.5),
                    favourite_locations: vec![habits[0].location],
                    ..Preferences::default()
                },
            );
        }
        planted.insert(driver, habits);
    }
    Synthetic {
        input: RecommendInput {
            sessions,
            locations,
            preferences,
            ..RecommendInput::default()
        },
        planted,
    }
}

/// The input of [`generate`] without the truth: what the service's benchmark job loads.
pub fn synthetic_input(cfg: &SynthConfig) -> RecommendInput {
    generate(cfg).input
}
