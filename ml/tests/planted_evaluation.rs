//! The habit model's behaviour on synthetic histories with planted habits: it learns what
//! is there to learn (drift, weekday-specific times) and costs little where there is nothing
//! beyond what the baselines already use.

use laddkoll_ml::import::ImportRow;
use laddkoll_ml::synth::{generate_scenario, Scenario};
use laddkoll_ml::{evaluate, EvalConfig, EvalReport, SynthConfig};

fn run(name: &str) -> EvalReport {
    let sc = Scenario::all()
        .into_iter()
        .find(|s| s.name == name)
        .unwrap();
    // another seed than the one the settings were checked on
    let cfg = SynthConfig {
        sessions: 8_000,
        drivers: 200,
        locations: 40,
        weeks: 26,
        seed: 2024,
    };
    let rows: Vec<ImportRow> = generate_scenario(&cfg, &sc)
        .input
        .sessions
        .iter()
        .enumerate()
        .map(|(i, s)| ImportRow {
            line: i as u64 + 2,
            driver_ref: format!("d{}", s.driver),
            location_ref: format!("l{}", s.location),
            location_name: None,
            charge_point_ref: None,
            started_at: s.start_utc,
            ended_at: s.end_utc,
            local_start: s.local_start,
            timezone: "Europe/Stockholm".into(),
            energy_kwh: s.energy_kwh,
        })
        .collect();
    let r = evaluate(&rows, &EvalConfig::default());
    println!("{name}\n{}", r.to_text());
    r
}

#[test]
fn a_drifting_routine_is_followed() {
    // the main habit moves to another place and hour: recency finds it
    let r = run("drift");
    let (m, b) = (r.model, r.best_baseline());
    assert!(m.location_hit_at_1 > b.location_hit_at_1 + 0.03, "{r:?}");
    assert!(m.start_within_1h > b.start_within_1h + 0.02, "{r:?}");
}

#[test]
fn weekday_specific_times_are_learned() {
    // each driver arrives earlier or later on some weekdays
    let r = run("weekday-specific");
    let (m, b) = (r.model, r.best_baseline());
    assert!(m.start_within_1h > b.start_within_1h + 0.02, "{r:?}");
    assert!(m.start_hour_mae_h < r.baseline.start_hour_mae_h, "{r:?}");
}

#[test]
fn without_drift_or_weekday_effects_the_model_costs_little() {
    // the baselines are close to the best possible here; the model must stay close to them
    let r = run("plain");
    let (m, b) = (r.model, r.best_baseline());
    assert!(m.location_hit_at_1 > b.location_hit_at_1 - 0.02, "{r:?}");
    assert!(m.location_hit_at_3 > b.location_hit_at_3 - 0.02, "{r:?}");
    assert!(m.start_hour_mae_h < b.start_hour_mae_h * 1.03, "{r:?}");
    assert!(m.start_within_1h > b.start_within_1h - 0.03, "{r:?}");
}
