//! Advice about other drivers' load, on a hand-computed fixture.
//!
//! "Garage" has one connector. Weeks 0–9 run from Monday 2024-01-01 (Stockholm time, before
//! the spring DST change).
//!
//! * Alice (driver 1) charges every weekday for 30 minutes, arriving at 08:30 shifted by a
//!   per-week offset: weeks 0–7 `−50, +50, 0, −20, +20, −50, +50, 0` minutes (so her arrivals
//!   range from 07:40 to 09:20: the 10th and 90th percentiles, her observed flexibility), weeks
//!   8 and 9 `−20` and `0` (both in the 8–9 hour).
//! * Bob (driver 2) charges every weekday of weeks 0–5 from 08:00 to 10:00, and of weeks 8–9
//!   from 08:20 to 09:20.
//!
//! Hand-computed, for the history (weeks 0–7) and Alice:
//! * her habit: 40 sessions, Monday–Friday, typical arrival 08:30 (from-hour 8);
//! * weekdays 8–9 without her own sessions: Bob fills the connector in weeks 0–5, nobody in
//!   weeks 6–7: free in 10 of 40 (week, day) pairs = **25 %**;
//! * weekdays 7–8 without her: nobody: **100 %**; 9–10: Bob in weeks 0–5: 25 %;
//! * so one piece of advice for the span: weekdays 7–8 instead of 8–9, 100 % against 25 %.

use chrono::{NaiveDate, NaiveDateTime, TimeDelta};
use laddkoll_ml::import::{local_to_utc, ImportRow};
use laddkoll_ml::occupancy::compute_occupancy;
use laddkoll_ml::rank::RankConfig;
use laddkoll_ml::replay::{replay, ReplayConfig};
use laddkoll_ml::{recommend_all, Coord, Location, RecommendInput, RecommendationKind, Session};

const ALICE_OFFSETS: [i64; 10] = [-50, 50, 0, -20, 20, -50, 50, 0, -20, 0];

fn local(week: i64, day: i64, h: u32, m: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2024, 1, 1)
        .unwrap()
        .and_hms_opt(h, m, 0)
        .unwrap()
        + TimeDelta::days(week * 7 + day)
}

fn session(driver: i64, start: NaiveDateTime, minutes: i64) -> Session {
    let utc = local_to_utc(start, chrono_tz::Europe::Stockholm).unwrap();
    Session {
        driver,
        location: 1,
        start_utc: utc,
        end_utc: utc + TimeDelta::minutes(minutes),
        local_start: start,
        energy_kwh: 5.0,
    }
}

/// Alice's and Bob's sessions of `weeks`, Alice's lasting `alice_minutes`.
fn fixture(weeks: std::ops::Range<i64>, alice_minutes: i64, with_bob: bool) -> Vec<Session> {
    let mut out = Vec::new();
    for w in weeks {
        for d in 0..5 {
            let at = local(w, d, 8, 30) + TimeDelta::minutes(ALICE_OFFSETS[w as usize]);
            out.push(session(1, at, alice_minutes));
            if with_bob && w <= 5 {
                out.push(session(2, local(w, d, 8, 0), 120));
            }
            if with_bob && w >= 8 {
                out.push(session(2, local(w, d, 8, 20), 60));
            }
        }
    }
    out
}

fn garage() -> Location {
    Location {
        id: 1,
        name: "Garage".into(),
        coord: Coord::new(59.31, 18.07),
        connectors: 1,
        standards: vec!["Type2".into()],
        fast_charging_surcharge: false,
        price_minor_per_kwh: None,
    }
}

fn input(sessions: Vec<Session>) -> RecommendInput {
    RecommendInput {
        sessions,
        locations: vec![garage()],
        ..RecommendInput::default()
    }
}

#[test]
fn a_monday_to_friday_habit_gets_one_advice_with_hand_computed_numbers() {
    let out = recommend_all(&input(fixture(0..8, 30, true)), 1);
    let alice = out.drivers.iter().find(|d| d.driver == 1).unwrap();
    assert_eq!(alice.habits.len(), 1, "{:#?}", alice.habits);
    let h = &alice.habits[0];
    assert_eq!((h.sessions, h.days), (40, 0x1f));
    assert!((h.arrival_h - 8.5).abs() < 1e-9, "{h:?}");
    assert!((h.earliest_h - (7.0 + 40.0 / 60.0)).abs() < 1e-9, "{h:?}");
    assert!((h.latest_h - (9.0 + 20.0 / 60.0)).abs() < 1e-9, "{h:?}");

    assert_eq!(
        alice.recommendations.len(),
        1,
        "{:#?}",
        alice.recommendations
    );
    let r = &alice.recommendations[0];
    assert_eq!(r.kind, RecommendationKind::LessBusyTime);
    assert_eq!(
        (r.days, r.from_hour, r.start_hour, r.end_hour),
        (0x1f, 8, 7, 8)
    );
    assert_eq!(r.reason.free_share, 1.0);
    assert_eq!(r.reason.current_free_share, 0.25);
    assert_eq!(r.reason.expected_occupancy_ratio, 0.0);
    assert_eq!((r.reason.habit_sessions, r.reason.occupancy_weeks), (40, 8));
    assert_eq!(
        r.sentence,
        "Charge at Garage on weekdays 7–8 instead of 8–9: other drivers left a connector free \
         100 % of the time then, against 25 % at 8–9."
    );
    // Bob always arrives at 08:00 sharp: no flexibility, so no advice to move
    let bob = out.drivers.iter().find(|d| d.driver == 2).unwrap();
    assert!(bob.recommendations.is_empty(), "{:#?}", bob.recommendations);
}

#[test]
fn own_sessions_never_make_a_slot_busy() {
    // Alice alone, hour-long sessions: by the raw occupancy her weekday 8–9 slot looks busy
    // (free only in the 5 weeks where her own session leaves half an hour unused)
    let sessions = fixture(0..8, 60, false);
    let occ = compute_occupancy(&sessions, &[garage()]);
    assert_eq!(occ[0].free_share[8], 5.0 / 8.0);
    assert!(occ[0].free_share[8] < RankConfig::default().busy_below_free_share);
    // but nobody else is there, so nothing is busy for her: no advice
    let out = recommend_all(&input(sessions), 1);
    assert!(
        out.drivers[0].recommendations.is_empty(),
        "{:#?}",
        out.drivers[0]
    );
    assert_eq!(out.candidates, 0);
}

#[test]
fn advice_with_too_little_evidence_is_not_given() {
    let with = |rank: RankConfig, weeks: std::ops::Range<i64>| {
        let mut i = input(fixture(weeks, 30, true));
        i.rank = rank;
        recommend_all(&i, 1).recommendations
    };
    assert_eq!(with(RankConfig::default(), 0..8), 1);
    // more sessions behind the habit required than Alice's 40
    let strict_habit = RankConfig {
        min_habit_sessions: 41,
        ..RankConfig::default()
    };
    assert_eq!(with(strict_habit, 0..8), 0);
    // more weeks behind the occupancy required than the 8 observed
    let strict_weeks = RankConfig {
        min_occupancy_weeks: 9,
        ..RankConfig::default()
    };
    assert_eq!(with(strict_weeks, 0..8), 0);
    // with the defaults, seven weeks of history are too few
    assert_eq!(with(RankConfig::default(), 0..7), 0);
}

#[test]
fn a_preferred_window_allows_a_shift_beyond_the_observed_flexibility() {
    // Carol fills 7–8 in weeks 0–5: the only free hour within Alice's arrivals is gone
    let mut sessions = fixture(0..8, 30, true);
    for w in 0..=5 {
        for d in 0..5 {
            sessions.push(session(3, local(w, d, 7, 0), 60));
        }
    }
    let out = recommend_all(&input(sessions.clone()), 1);
    assert_eq!(
        out.drivers[0].recommendations.len(),
        0,
        "{:#?}",
        out.drivers[0]
    );
    // she says weekdays 10–12 suit her: 10–11 is two hours later than she ever came
    let mut i = input(sessions);
    i.preferences.insert(
        1,
        laddkoll_ml::Preferences {
            preferred_windows: vec![laddkoll_ml::TimeWindow {
                days: 0x1f,
                start_hour: 10,
                end_hour: 12,
            }],
            ..Default::default()
        },
    );
    let out = recommend_all(&i, 1);
    let r = &out.drivers[0].recommendations;
    assert_eq!(r.len(), 1, "{r:#?}");
    assert_eq!((r[0].start_hour, r[0].reason.free_share), (10, 1.0));
}

fn rows(sessions: &[Session]) -> Vec<ImportRow> {
    sessions
        .iter()
        .enumerate()
        .map(|(i, s)| ImportRow {
            line: i as u64 + 2,
            driver_ref: if s.driver == 1 { "alice" } else { "bob" }.into(),
            location_ref: "G".into(),
            location_name: Some("Garage".into()),
            charge_point_ref: None,
            started_at: s.start_utc,
            ended_at: s.end_utc,
            local_start: s.local_start,
            timezone: "Europe/Stockholm".into(),
            energy_kwh: s.energy_kwh,
        })
        .collect()
}

/// Hand-checked: 90 sessions; the 72nd in order is Alice's on Tuesday of week 8, so the split
/// is Monday 2024-02-26. Held out: weeks 8–9, 20 sessions over 2 weeks. Each weekday Alice
/// (08:10–08:40, then 08:30–09:00) and Bob (08:20–09:20) overlap on the one connector: Bob finds
/// it taken in week 8, Alice in week 9: 10 full arrivals. Alice is the only driver advised;
/// following (50 % rounds to her, 25 % to nobody) moves her 10 sessions an hour earlier, and
/// nobody finds the connector taken. The peak (mean connectors in use in the busiest hour of the
/// week) is each weekday's 8–9: their ½ + ⅔ connector-hours do not fit on one connector, so it
/// is in use the whole hour (1.0) without advice, and Bob's ⅔ alone when she follows.
#[test]
fn the_advice_replay_on_the_fixture_gives_the_hand_checked_numbers() {
    let report = replay(&rows(&fixture(0..10, 30, true)), &ReplayConfig::default());
    assert_eq!(report.split_at.unwrap().to_string(), "2024-02-26 00:00:00");
    assert_eq!(
        (
            report.history_sessions,
            report.held_out_sessions,
            report.held_out_weeks
        ),
        (70, 20, 2)
    );
    assert_eq!((report.drivers_advised, report.recommendations), (1, 1));
    assert_eq!(report.advice[0].driver, "alice");
    let got: Vec<(f64, usize, usize, usize, usize)> = report
        .shares
        .iter()
        .map(|s| {
            (
                s.share,
                s.followers,
                s.moved_sessions,
                s.full_arrivals,
                s.locations_with_higher_peak,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0.0, 0, 0, 10, 0),
            (0.25, 0, 0, 10, 0),
            (0.5, 1, 10, 0, 0),
            (1.0, 1, 10, 0, 0)
        ]
    );
    assert_eq!(report.shares[3].moved_share, 0.5);
    let peaks = &report.locations[0].peaks;
    assert!((peaks[0] - 1.0).abs() < 1e-6, "{peaks:?}");
    assert!((peaks[1] - 1.0).abs() < 1e-6, "{peaks:?}");
    assert!((peaks[2] - 2.0 / 3.0).abs() < 1e-6, "{peaks:?}");
    assert!((peaks[3] - 2.0 / 3.0).abs() < 1e-6, "{peaks:?}");
    assert_eq!(report.locations[0].name, "Garage");
    assert_eq!(report.locations[0].full_arrivals, vec![10, 10, 0, 0]);
    let text = report.to_text();
    assert!(text.contains("advice issued at 2024-02-26"), "{text}");
}
