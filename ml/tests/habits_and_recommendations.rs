//! The pipeline on synthetic and hand-made histories.

use std::collections::HashMap;

use chrono::{NaiveDate, TimeDelta, TimeZone, Utc};
use laddkoll_ml::features::circular_distance_h;
use laddkoll_ml::habits::{learn_habits, DayKind, HabitConfig};
use laddkoll_ml::import::local_to_utc;
use laddkoll_ml::{
    generate, parse_sessions_csv, recommend_all, recommend_all_with_progress, Coord, Location,
    Preferences, RecommendInput, RecommendationKind, Session, SynthConfig, HOURS_PER_WEEK,
};

fn small(seed: u64) -> SynthConfig {
    SynthConfig {
        sessions: 6_000,
        drivers: 100,
        locations: 10,
        weeks: 16,
        seed,
    }
}

#[test]
fn planted_habits_are_recovered() {
    let data = generate(&small(7));
    let mut by_driver: HashMap<i64, Vec<Session>> = HashMap::new();
    for s in &data.input.sessions {
        by_driver.entry(s.driver).or_default().push(s.clone());
    }
    let (mut planted, mut found) = (0, 0);
    for (driver, sessions) in &by_driver {
        let habits = learn_habits(sessions, &HabitConfig::default(), 1);
        for p in &data.planted[driver] {
            if p.weight < 0.25 {
                continue; // too few sessions to promise recovery
            }
            planted += 1;
            let kind = if p.weekend {
                DayKind::Weekends
            } else {
                DayKind::Weekdays
            };
            if habits.iter().any(|h| {
                h.location == p.location
                    && h.day_kind == kind
                    && circular_distance_h(h.arrival_mean_h, p.arrival_h) < 0.75
                    && (h.share - p.weight).abs() < 0.15
            }) {
                found += 1;
            }
        }
    }
    assert!(planted > 120, "{planted}");
    assert!(
        found as f64 >= 0.95 * planted as f64,
        "recovered {found} of {planted}"
    );
}

#[test]
fn same_seed_same_output_and_another_seed_changes_it() {
    let input = generate(&small(3)).input;
    let a = recommend_all(&input, 42);
    let b = recommend_all(&input, 42);
    assert_eq!(a, b);
    assert!(
        a.recommendations > 0,
        "the synthetic data should produce advice"
    );
    assert_eq!(generate(&small(3)).input.sessions, input.sessions);
    assert_ne!(generate(&small(4)).input.sessions, input.sessions);
}

#[test]
fn progress_counts_every_driver_once() {
    let input = generate(&small(5)).input;
    let progress = std::sync::atomic::AtomicUsize::new(0);
    let out = recommend_all_with_progress(&input, 1, &progress);
    assert_eq!(progress.into_inner(), 100);
    assert_eq!(out.drivers.len(), 100);
    assert_eq!(laddkoll_ml::count_drivers(&input.sessions), 100);
}

#[test]
fn no_slot_receives_more_drivers_than_its_spare_capacity() {
    let input = generate(&SynthConfig {
        sessions: 10_000,
        drivers: 250,
        locations: 6,
        weeks: 8,
        seed: 9,
    })
    .input;
    let out = recommend_all(&input, 1);
    let mut per_slot: HashMap<(i64, u16), usize> = HashMap::new();
    for d in &out.drivers {
        assert!(d.recommendations.len() <= input.rank.max_per_driver);
        for r in &d.recommendations {
            *per_slot.entry((r.location, r.hour_of_week)).or_default() += 1;
        }
    }
    assert!(!per_slot.is_empty());
    for ((loc, slot), n) in per_slot {
        let occ = out.occupancy.iter().find(|o| o.location == loc).unwrap();
        assert!(
            n <= occ.spare(usize::from(slot)) as usize,
            "{loc}@{slot}: {n}"
        );
    }
    assert!(out.candidates >= out.recommendations);
}

fn loc(id: i64, name: &str, coord: Coord, connectors: u32) -> Location {
    Location {
        id,
        name: name.into(),
        coord,
        connectors,
        standards: vec!["Type2".into()],
        fast_charging_surcharge: false,
        price_minor_per_kwh: None,
    }
}

/// Sessions of `driver` at `location` on each Tuesday of 8 weeks from 2024-01-02, local
/// Stockholm time.
fn tuesdays(driver: i64, location: i64, hour: u32, hours: i64) -> Vec<Session> {
    (0..8)
        .map(|w| {
            let local = NaiveDate::from_ymd_opt(2024, 1, 2)
                .unwrap()
                .and_hms_opt(hour, 0, 0)
                .unwrap()
                + TimeDelta::weeks(w);
            let start = local_to_utc(local, chrono_tz::Europe::Stockholm).unwrap();
            Session {
                driver,
                location,
                start_utc: start,
                end_utc: start + TimeDelta::hours(hours),
                local_start: local,
                energy_kwh: 10.0,
            }
        })
        .collect()
}

fn busy_site_scenario() -> RecommendInput {
    let a = loc(1, "Hamngatan", Coord::new(59.3326, 18.0649), 2);
    let b = loc(2, "Kungsträdgården", Coord::new(59.3310, 18.0720), 4); // ~450 m away
    let mut far = loc(3, "Uppsala", Coord::new(59.8586, 17.6389), 10);
    far.standards = vec!["Type2".into()];
    // drivers 10 and 11 fill both connectors at A on Tuesdays 17–20; driver 1 comes at 18
    let mut sessions = tuesdays(10, 1, 17, 3);
    sessions.extend(tuesdays(11, 1, 17, 3));
    sessions.extend(tuesdays(1, 1, 18, 2));
    RecommendInput {
        sessions,
        locations: vec![a, b, far],
        ..RecommendInput::default()
    }
}

#[test]
fn a_busy_habit_gets_a_nearby_usually_free_location_with_its_numbers() {
    let input = busy_site_scenario();
    let out = recommend_all(&input, 1);
    let d1 = out.drivers.iter().find(|d| d.driver == 1).unwrap();
    let nearby = d1
        .recommendations
        .iter()
        .find(|r| r.kind == RecommendationKind::NearbyLocation)
        .unwrap_or_else(|| panic!("{:#?}", d1.recommendations));
    assert_eq!(nearby.location, 2);
    assert_eq!((nearby.weekday, nearby.start_hour), (1, 18));
    assert_eq!(nearby.reason.free_share, 1.0);
    assert_eq!(nearby.reason.current_free_share, 0.0);
    let dist = nearby.reason.distance_km.unwrap();
    assert!(dist > 0.3 && dist < 0.6, "{dist}");
    assert!(
        nearby.sentence.contains("free 100 % of Tuesdays 18–19"),
        "{}",
        nearby.sentence
    );
    assert!(
        nearby.sentence.contains("against 0 % at Hamngatan"),
        "{}",
        nearby.sentence
    );
}

#[test]
fn preferences_filter_alternatives() {
    let mut input = busy_site_scenario();
    input.locations[1].fast_charging_surcharge = true;
    input.preferences.insert(
        1,
        Preferences {
            avoid_fast_charging_surcharge: true,
            ..Preferences::default()
        },
    );
    let out = recommend_all(&input, 1);
    let d1 = out.drivers.iter().find(|d| d.driver == 1).unwrap();
    assert!(
        d1.recommendations.iter().all(|r| r.location != 2),
        "{:#?}",
        d1.recommendations
    );

    // a favourite usual place is never advised away from
    let mut input = busy_site_scenario();
    input.preferences.insert(
        1,
        Preferences {
            favourite_locations: vec![1],
            ..Preferences::default()
        },
    );
    let out = recommend_all(&input, 1);
    let d1 = out.drivers.iter().find(|d| d.driver == 1).unwrap();
    assert!(d1
        .recommendations
        .iter()
        .all(|r| r.kind != RecommendationKind::NearbyLocation));
}

#[test]
fn a_cheaper_hour_is_advised_in_minor_units_and_respects_the_price_cap() {
    let mut input = busy_site_scenario();
    // 3,50 kr/kWh in the evening peak 17–20, 2,40 kr from 20
    let prices: Vec<i64> = (0..HOURS_PER_WEEK)
        .map(|s| {
            if (17..20).contains(&(s % 24)) {
                350
            } else {
                240
            }
        })
        .collect();
    input.locations[0].price_minor_per_kwh = Some(prices);
    input.locations[0].connectors = 4; // room for everyone: only price matters
    let out = recommend_all(&input, 1);
    let d1 = out.drivers.iter().find(|d| d.driver == 1).unwrap();
    let cheap = d1
        .recommendations
        .iter()
        .find(|r| r.kind == RecommendationKind::CheaperTime)
        .unwrap_or_else(|| panic!("{:#?}", d1.recommendations));
    assert_eq!(cheap.reason.price_delta_minor_per_kwh, Some(110));
    assert!(
        cheap.sentence.contains("1,10 kr/kWh cheaper"),
        "{}",
        cheap.sentence
    );
    assert!([15, 16, 20, 21].contains(&cheap.start_hour), "{cheap:?}");

    input.preferences.insert(
        1,
        Preferences {
            max_price_minor_per_kwh: Some(200),
            ..Preferences::default()
        },
    );
    let out = recommend_all(&input, 1);
    let d1 = out.drivers.iter().find(|d| d.driver == 1).unwrap();
    assert!(d1
        .recommendations
        .iter()
        .all(|r| r.kind != RecommendationKind::CheaperTime));
}

#[test]
fn a_driver_with_one_session_has_one_habit_and_no_advice() {
    let mut input = busy_site_scenario();
    input.sessions.push(tuesdays(99, 1, 18, 2).remove(0));
    let out = recommend_all(&input, 1);
    let d = out.drivers.iter().find(|d| d.driver == 99).unwrap();
    assert_eq!(d.sessions, 1);
    assert_eq!(d.habits.len(), 1);
    assert!(d.recommendations.is_empty());
}

#[test]
fn habits_follow_the_local_clock_across_a_dst_change() {
    // 08:00 in Stockholm every weekday from 2024-03-18 to 2024-04-12: UTC moves from 07:00 to 06:00
    let mut csv = String::from("driver_ref,location_ref,started_at,ended_at,energy_kwh\n");
    let mut day = NaiveDate::from_ymd_opt(2024, 3, 18).unwrap();
    while day < NaiveDate::from_ymd_opt(2024, 4, 13).unwrap() {
        if chrono::Datelike::weekday(&day).num_days_from_monday() < 5 {
            csv.push_str(&format!("d,L,{day} 08:00:00,{day} 10:00:00,8\n"));
        }
        day += TimeDelta::days(1);
    }
    let parsed = parse_sessions_csv(csv.as_bytes(), chrono_tz::Europe::Stockholm);
    assert!(parsed.is_clean());
    let hours: std::collections::BTreeSet<u32> = parsed
        .rows
        .iter()
        .map(|r| chrono::Timelike::hour(&r.started_at))
        .collect();
    assert_eq!(hours.into_iter().collect::<Vec<_>>(), vec![6, 7]);
    let sessions: Vec<Session> = parsed
        .rows
        .iter()
        .map(|r| Session {
            driver: 1,
            location: 1,
            start_utc: r.started_at,
            end_utc: r.ended_at,
            local_start: r.local_start,
            energy_kwh: r.energy_kwh,
        })
        .collect();
    let habits = learn_habits(&sessions, &HabitConfig::default(), 3);
    assert_eq!(habits.len(), 1, "{habits:?}");
    assert!((habits[0].arrival_mean_h - 8.0).abs() < 1e-9, "{habits:?}");
    assert!((habits[0].duration_h - 2.0).abs() < 1e-9);
}

#[test]
fn sessions_across_midnight_occupy_both_days() {
    let start_local = NaiveDate::from_ymd_opt(2024, 1, 2)
        .unwrap()
        .and_hms_opt(23, 0, 0)
        .unwrap();
    let start = Utc.from_utc_datetime(&start_local);
    let s = Session {
        driver: 1,
        location: 1,
        start_utc: start,
        end_utc: start + TimeDelta::hours(2),
        local_start: start_local,
        energy_kwh: 4.0,
    };
    let occ = laddkoll_ml::compute_occupancy(&[s], &[loc(1, "A", Coord::new(59.0, 18.0), 1)]);
    assert_eq!(occ[0].expected_occupied[24 + 23], 1.0); // Tuesday 23–24
    assert_eq!(occ[0].expected_occupied[2 * 24], 1.0); // Wednesday 00–01
    assert_eq!(occ[0].expected_occupied.iter().sum::<f64>(), 2.0);
}
