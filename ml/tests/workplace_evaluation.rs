//! The evaluation protocol on the real workplace-charging data set.
//!
//! This checks the **protocol** (the drivers and test sessions it selects, and that its
//! baselines reproduce the independently measured figures), not that the model wins here: the
//! model's settings are chosen by cross-validation over drivers and on synthetic data
//! (`ml/README.md`), and its behaviour is tested on planted habits
//! (`tests/planted_evaluation.rs`). The figures are printed for the README.

use std::path::PathBuf;

use laddkoll_ml::import::convert_workplace_csv;
use laddkoll_ml::{evaluate, parse_sessions_csv, EvalConfig};

fn data_file() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/workplace-charging/sessions.csv");
    p.exists().then_some(p)
}

#[test]
fn the_protocol_reproduces_the_independently_measured_baselines() {
    let Some(path) = data_file() else {
        println!("skipped: workplace-charging data set not found next to the repository");
        return;
    };
    let mut converted = Vec::new();
    let n = convert_workplace_csv(std::fs::File::open(path).unwrap(), &mut converted).unwrap();
    assert_eq!(n, 3395);
    let parsed = parse_sessions_csv(converted.as_slice(), chrono_tz::UTC);
    assert!(
        parsed.is_clean(),
        "{:?}",
        &parsed.errors[..parsed.errors.len().min(5)]
    );

    let report = evaluate(&parsed.rows, &EvalConfig::default());
    println!("{}", report.to_text());
    assert_eq!((report.drivers, report.test_sessions), (56, 680));
    assert_eq!(
        (
            report.skipped.drivers_below_min_sessions,
            report.skipped.sessions_of_drivers_below_min
        ),
        (29, 107)
    );
    // the independently measured baselines this protocol must reproduce
    let b = report.baseline;
    assert!((b.location_hit_at_1 - 0.425).abs() < 0.005, "{b:?}");
    assert!((b.location_hit_at_3 - 0.704).abs() < 0.005, "{b:?}");
    assert!((b.start_hour_mae_h - 1.95).abs() < 0.01, "{b:?}");
    // the model evaluated is the recommender's
    assert_eq!(
        report.config.unwrap().habits,
        laddkoll_ml::HabitConfig::default()
    );
}
