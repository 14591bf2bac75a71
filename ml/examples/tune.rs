//! Chooses the habit model's settings by cross-validation over drivers and on synthetic data
//! with planted habits, never by one data set's score.
//!
//! ```sh
//! cargo run --release -p laddkoll-ml --example tune -- [SESSIONS.csv ...]
//! ```
//!
//! Each CSV is a session history in the import format (e.g. the converted workplace set). For
//! every setting of a small grid the temporal hold-out of `laddkoll evaluate` is run on each CSV
//! and on every synthetic scenario ([`Scenario::all`]). A setting's **objective** on a set of
//! drivers is its worst relative margin over the best baseline across the four metrics (Hit@1,
//! Hit@3, MAE, ±1 h): a setting is only as good as its weakest figure. On a collection of data
//! sets it is the smallest objective over them.
//!
//! **Nested cross-validation over drivers**: each CSV's drivers are split into 5 folds; for each
//! fold the setting with the best objective on the other 4 folds and on every synthetic
//! scenario is chosen, then scored on the held-out fold. The pooled held-out figures estimate
//! what the *selection procedure* achieves on drivers it has not seen. The default is the
//! setting chosen most often over the folds (ties: the better objective on the synthetic
//! scenarios).

use std::collections::HashMap;

use laddkoll_ml::evaluate::{evaluate_drivers, report_of, DriverScores, EvalReport};
use laddkoll_ml::habits::HabitConfig;
use laddkoll_ml::import::ImportRow;
use laddkoll_ml::synth::{generate_scenario, Scenario};
use laddkoll_ml::{parse_sessions_csv, EvalConfig, SynthConfig};

const FOLDS: u64 = 5;

/// Per data set, the per-driver sums.
type PerDataSet = Vec<Vec<DriverScores>>;

fn rows_of_scenario(sc: &Scenario, seed: u64) -> Vec<ImportRow> {
    let cfg = SynthConfig {
        sessions: 12_000,
        drivers: 300,
        locations: 40,
        weeks: 26,
        seed,
    };
    let data = generate_scenario(&cfg, sc);
    data.input
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
        .collect()
}

fn grid() -> Vec<HabitConfig> {
    let mut out = Vec::new();
    for half_life_days in [30.0, 90.0, 240.0] {
        for recency_share in [0.25, 0.5, 0.75] {
            for weekday_prior_sessions in [3.0, 8.0, f64::INFINITY] {
                for (arrival_loss_cap_h, arrival_miss_penalty_h) in [
                    (12.0, 0.0),
                    (12.0, 1.0),
                    (12.0, 2.0),
                    (12.0, 3.0),
                    (12.0, 4.0),
                    (4.0, 0.0),
                ] {
                    for location_prior_sessions in [1.0, 3.0] {
                        out.push(HabitConfig {
                            half_life_days,
                            recency_share,
                            weekday_prior_sessions,
                            arrival_loss_cap_h,
                            arrival_miss_penalty_h,
                            location_prior_sessions,
                            ..HabitConfig::default()
                        });
                    }
                }
            }
        }
    }
    out
}

fn label(c: &HabitConfig) -> String {
    format!(
        "half-life {:>3} d, recency {:.2}, weekday prior {:>3}, loss cap {:>2} h, miss penalty {:.1} h, location prior {}",
        c.half_life_days,
        c.recency_share,
        c.weekday_prior_sessions,
        c.arrival_loss_cap_h,
        c.arrival_miss_penalty_h,
        c.location_prior_sessions
    )
}

fn objective(r: &EvalReport) -> f64 {
    r.model.worst_margin_over(&r.best_baseline())
}

/// Folds of a data set's drivers: sorted by a stable hash of the reference, dealt round-robin
/// (balanced, and independent of the order of the file).
fn folds(scores: &[DriverScores]) -> HashMap<String, u64> {
    let hash = |s: &str| {
        // FNV-1a
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in s.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h
    };
    let mut refs: Vec<&str> = scores.iter().map(|d| d.driver_ref.as_str()).collect();
    refs.sort_by_key(|r| (hash(r), r.to_string()));
    refs.iter()
        .enumerate()
        .map(|(i, r)| (r.to_string(), i as u64 % FOLDS))
        .collect()
}

fn subset(
    scores: &[DriverScores],
    fold: &HashMap<String, u64>,
    keep: impl Fn(u64) -> bool,
) -> Vec<DriverScores> {
    scores
        .iter()
        .filter(|d| keep(fold[&d.driver_ref]))
        .cloned()
        .collect()
}

fn line(name: &str, r: &EvalReport) -> String {
    let (b, c) = (r.baseline, r.clustering_baseline);
    format!(
        "{name:<28} {:>4} drv {:>5} tests | Hit@1 {:.3} ({:.3} {:.3}) Hit@3 {:.3} ({:.3} {:.3}) MAE {:.3} ({:.3} {:.3}) ±1h {:.3} ({:.3} {:.3}) | worst margin {:+.3}",
        r.drivers,
        r.test_sessions,
        r.model.location_hit_at_1,
        b.location_hit_at_1,
        c.location_hit_at_1,
        r.model.location_hit_at_3,
        b.location_hit_at_3,
        c.location_hit_at_3,
        r.model.start_hour_mae_h,
        b.start_hour_mae_h,
        c.start_hour_mae_h,
        r.model.start_within_1h,
        b.start_within_1h,
        c.start_within_1h,
        objective(r)
    )
}

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    let real: Vec<(String, Vec<ImportRow>)> = files
        .iter()
        .map(|f| {
            let parsed = parse_sessions_csv(
                std::fs::File::open(f).unwrap_or_else(|e| panic!("{f}: {e}")),
                chrono_tz::UTC,
            );
            eprintln!(
                "{f}: {} rows, {} invalid",
                parsed.rows.len(),
                parsed.errors.len()
            );
            (f.clone(), parsed.rows)
        })
        .collect();
    let synthetic: Vec<(String, Vec<ImportRow>)> = Scenario::all()
        .iter()
        .map(|sc| (format!("synthetic {}", sc.name), rows_of_scenario(sc, 11)))
        .collect();
    let grid = grid();
    eprintln!("{} settings", grid.len());
    // per setting: per-driver sums on each real data set and each synthetic scenario
    let scores: Vec<(PerDataSet, PerDataSet)> = grid
        .iter()
        .map(|h| {
            let cfg = EvalConfig {
                habits: *h,
                ..EvalConfig::default()
            };
            let r = real
                .iter()
                .map(|(_, rows)| evaluate_drivers(rows, &cfg).0)
                .collect();
            let s = synthetic
                .iter()
                .map(|(_, rows)| evaluate_drivers(rows, &cfg).0)
                .collect();
            (r, s)
        })
        .collect();
    let fold_maps: Vec<HashMap<String, u64>> = scores
        .first()
        .map(|s| s.0.iter().map(|d| folds(d)).collect())
        .unwrap_or_default();
    let synth_objective = |ci: usize| -> f64 {
        let v: Vec<f64> = scores[ci]
            .1
            .iter()
            .map(|s| objective(&report_of(s)))
            .collect();
        v.iter().sum::<f64>() / v.len().max(1) as f64
    };
    // half the weight on the real data sets (their drivers outside the held-out fold), half
    // on the synthetic scenarios
    let combined = |ci: usize, held_out: Option<(usize, u64)>| -> f64 {
        if real.is_empty() {
            return synth_objective(ci);
        }
        let real_obj: f64 = (0..real.len())
            .map(|fi| {
                let keep = |f: u64| held_out.is_none_or(|(hf, fold)| hf != fi || f != fold);
                objective(&report_of(&subset(&scores[ci].0[fi], &fold_maps[fi], keep)))
            })
            .sum::<f64>()
            / real.len() as f64;
        0.5 * real_obj + 0.5 * synth_objective(ci)
    };

    let mut votes: HashMap<usize, usize> = HashMap::new();
    for (fi, (name, _)) in real.iter().enumerate() {
        println!("\n== nested cross-validation over the drivers of {name} ({FOLDS} folds)");
        let mut held_out: Vec<DriverScores> = Vec::new();
        for fold in 0..FOLDS {
            let best = (0..grid.len())
                .max_by(|&a, &b| {
                    combined(a, Some((fi, fold)))
                        .total_cmp(&combined(b, Some((fi, fold))))
                        .then(b.cmp(&a))
                })
                .unwrap_or(0);
            *votes.entry(best).or_default() += 1;
            let test = subset(&scores[best].0[fi], &fold_maps[fi], |f| f == fold);
            println!("fold {fold}: chose {}", label(&grid[best]));
            println!(
                "{}",
                line(&format!("  held-out fold {fold}"), &report_of(&test))
            );
            held_out.extend(test);
        }
        println!("{}", line("pooled held-out folds", &report_of(&held_out)));
    }

    let chosen = votes
        .iter()
        .max_by(|a, b| {
            a.1.cmp(b.1)
                .then(combined(*a.0, None).total_cmp(&combined(*b.0, None)))
                .then(b.0.cmp(a.0))
        })
        .map(|(&ci, _)| ci)
        .unwrap_or_else(|| {
            (0..grid.len())
                .max_by(|&a, &b| synth_objective(a).total_cmp(&synth_objective(b)))
                .unwrap_or(0)
        });
    println!(
        "\n== chosen ({} of {} folds): {}",
        votes.get(&chosen).copied().unwrap_or(0),
        FOLDS as usize * real.len(),
        label(&grid[chosen])
    );
    println!("figures: model (frequent/median, clustering)");
    for (i, (name, _)) in real.iter().enumerate() {
        println!("{}", line(name, &report_of(&scores[chosen].0[i])));
    }
    for (i, (name, _)) in synthetic.iter().enumerate() {
        println!("{}", line(name, &report_of(&scores[chosen].1[i])));
    }
    match grid.iter().position(|c| *c == HabitConfig::default()) {
        Some(i) if i == chosen => println!("this is the current default"),
        Some(i) => println!("current default differs: {}", label(&grid[i])),
        None => println!("current default is not in the grid"),
    }

    println!("\n== best ten settings by the combined objective (all drivers)");
    let mut order: Vec<usize> = (0..grid.len()).collect();
    order.sort_by(|&a, &b| combined(b, None).total_cmp(&combined(a, None)));
    for &ci in order.iter().take(10) {
        let real_obj: Vec<String> = scores[ci]
            .0
            .iter()
            .map(|s| format!("{:+.3}", objective(&report_of(s))))
            .collect();
        println!(
            "{}  combined {:+.4}  synthetic {:+.4}  real {}",
            label(&grid[ci]),
            combined(ci, None),
            synth_objective(ci),
            real_obj.join(" ")
        );
    }
}
