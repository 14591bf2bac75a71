//! The habit model against the baselines on the real workplace-charging data set.

use std::path::PathBuf;

use laddkoll_ml::import::convert_workplace_csv;
use laddkoll_ml::{evaluate, parse_sessions_csv, EvalConfig};

fn data_file() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/workplace-charging/sessions.csv");
    p.exists().then_some(p)
}

#[test]
fn model_beats_every_baseline_on_the_workplace_data_set() {
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
    // the independently measured baselines this protocol must reproduce
    let b = report.baseline;
    assert!((b.location_hit_at_1 - 0.425).abs() < 0.005, "{b:?}");
    assert!((b.location_hit_at_3 - 0.704).abs() < 0.005, "{b:?}");
    assert!((b.start_hour_mae_h - 1.95).abs() < 0.01, "{b:?}");
    // the model must beat the baselines and the published figures (0.52 within ±1 h)
    let m = report.model;
    assert!(
        m.location_hit_at_1 > b.location_hit_at_1.max(0.425),
        "{m:?}"
    );
    assert!(
        m.location_hit_at_3 > b.location_hit_at_3.max(0.704),
        "{m:?}"
    );
    assert!(m.start_hour_mae_h < b.start_hour_mae_h.min(1.95), "{m:?}");
    assert!(m.start_within_1h > b.start_within_1h.max(0.52), "{m:?}");
}

/// The same comparison with other splits and half-lives, so the result is not an accident of
/// one setting. Printed for the README.
#[test]
fn model_is_not_tuned_to_one_split() {
    let Some(path) = data_file() else {
        println!("skipped: workplace-charging data set not found next to the repository");
        return;
    };
    let mut converted = Vec::new();
    convert_workplace_csv(std::fs::File::open(path).unwrap(), &mut converted).unwrap();
    let rows = parse_sessions_csv(converted.as_slice(), chrono_tz::UTC).rows;
    for (train_fraction, half_life_days) in [(0.7, 60.0), (0.9, 60.0), (0.8, 30.0), (0.8, 90.0)] {
        let cfg = EvalConfig {
            train_fraction,
            half_life_days,
            ..EvalConfig::default()
        };
        let r = evaluate(&rows, &cfg);
        println!(
            "train {train_fraction}, half-life {half_life_days} d\n{}",
            r.to_text()
        );
        let (m, b) = (r.model, r.baseline);
        // the arrival-hour gain is robust to every setting
        assert!(m.start_hour_mae_h < b.start_hour_mae_h, "{r:?}");
        assert!(m.start_within_1h > b.start_within_1h, "{r:?}");
        // the location gain is small (a few sessions); with the default half-life it holds
        // on other splits too, with other half-lives it is printed, not promised
        if half_life_days == EvalConfig::default().half_life_days {
            assert!(m.location_hit_at_1 > b.location_hit_at_1, "{r:?}");
            assert!(m.location_hit_at_3 > b.location_hit_at_3, "{r:?}");
        }
    }
}
