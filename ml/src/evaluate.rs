//! Temporal hold-out evaluation of the habit model against simple baselines.
//!
//! Protocol, per driver with at least [`EvalConfig::min_sessions`] sessions sorted by start:
//! the first ⌊80 %⌋ are the history to learn from, the rest are predicted one by one from
//! that history alone (the model never sees a test session's outcome). Known at prediction
//! time: the test session's local date (so its weekday). Predicted: the location (a ranking,
//! scored Hit@1 and Hit@3) and the arrival clock hour (scored by the circular absolute error
//! in hours, and the share within ±1 h).
//!
//! Baselines: the driver's most frequent location (ties: the one used first; Hit@3 takes the
//! three most frequent), and the driver's median arrival hour among sessions of the same
//! weekday type (Monday–Friday or weekend), all sessions when there are none of that type.
//!
//! The model ([`predict_locations`], [`predict_arrival_h`]) is the habit profile the
//! recommender uses, without any parameter fitted to an evaluation set:
//! * location: the mean of the long-run frequency distribution and a recency-weighted one
//!   (weights halve every [`EvalConfig::half_life_days`] days before the last known session).
//!   Habits drift (a new car park, a new desk); the long-run half keeps rare but real
//!   alternatives in the top three, the recent half follows the drift.
//! * arrival hour: the recency-weighted *circular* median of arrival hours on the same weekday
//!   type (fallback: all). The median minimises absolute error; the circle makes 23:30 and
//!   00:30 neighbours; recency follows changed routines.

use std::collections::HashMap;

use serde::Serialize;

use crate::features::{circular_distance_h, hour_of_day, is_weekend, weighted_circular_median};
use crate::import::ImportRow;

/// Settings of the hold-out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EvalConfig {
    /// Share of each driver's sessions (the earliest) used to learn, rounded down.
    pub train_fraction: f64,
    /// Drivers with fewer sessions are left out.
    pub min_sessions: usize,
    /// Half-life of the recency weights, in days.
    pub half_life_days: f64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            train_fraction: 0.8,
            min_sessions: 10,
            half_life_days: 60.0,
        }
    }
}

/// Scores of one predictor over all test sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Metrics {
    /// Share of test sessions whose location was ranked first.
    pub location_hit_at_1: f64,
    /// Share of test sessions whose location was among the first three.
    pub location_hit_at_3: f64,
    /// Mean circular absolute error of the arrival hour, in hours.
    pub start_hour_mae_h: f64,
    /// Share of test sessions whose arrival was predicted within ±1 h.
    pub start_within_1h: f64,
}

/// Result of [`evaluate`]; serialises to the JSON that `laddkoll evaluate --json` prints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct EvalReport {
    /// Drivers with enough sessions to be evaluated.
    pub drivers: usize,
    /// Test sessions predicted.
    pub test_sessions: usize,
    /// The habit model.
    pub model: Metrics,
    /// The baselines.
    pub baseline: Metrics,
}

impl EvalReport {
    /// A side-by-side table for a terminal.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "Temporal hold-out: {} drivers, {} test sessions\n{:<22}{:>10}{:>10}{:>10}\n",
            self.drivers, self.test_sessions, "metric", "model", "baseline", "change"
        );
        let rows: [(&str, f64, f64, bool); 4] = [
            (
                "location Hit@1",
                self.model.location_hit_at_1,
                self.baseline.location_hit_at_1,
                true,
            ),
            (
                "location Hit@3",
                self.model.location_hit_at_3,
                self.baseline.location_hit_at_3,
                true,
            ),
            (
                "start hour MAE (h)",
                self.model.start_hour_mae_h,
                self.baseline.start_hour_mae_h,
                false,
            ),
            (
                "start within ±1 h",
                self.model.start_within_1h,
                self.baseline.start_within_1h,
                true,
            ),
        ];
        for (name, m, b, higher_is_better) in rows {
            let better = if higher_is_better { m > b } else { m < b };
            s.push_str(&format!(
                "{name:<22}{m:>10.3}{b:>10.3}{:>+10.3}{}\n",
                m - b,
                if better { "  better" } else { "" }
            ));
        }
        s
    }
}

/// Runs the temporal hold-out over all rows (any order; grouped by `driver_ref`).
pub fn evaluate(rows: &[ImportRow], cfg: &EvalConfig) -> EvalReport {
    let mut by_driver: HashMap<&str, Vec<&ImportRow>> = HashMap::new();
    for r in rows {
        by_driver.entry(&r.driver_ref).or_default().push(r);
    }
    let mut drivers: Vec<_> = by_driver.into_iter().collect();
    drivers.sort_by(|a, b| a.0.cmp(b.0));

    let mut report = EvalReport::default();
    let (mut model, mut base) = (Sums::default(), Sums::default());
    for (_, mut sessions) in drivers {
        if sessions.len() < cfg.min_sessions.max(2) {
            continue;
        }
        sessions.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.line.cmp(&b.line)));
        let n = sessions.len();
        let k = ((n as f64 * cfg.train_fraction + 1e-9).floor() as usize).clamp(1, n - 1);
        let (train, test) = sessions.split_at(k);
        let history: Vec<Visit<'_>> = train.iter().map(|r| Visit::of(r)).collect();
        report.drivers += 1;
        for t in test {
            report.test_sessions += 1;
            let actual_h = hour_of_day(t.local_start);
            let weekend = is_weekend(t.local_start);

            let ranked = predict_locations(&history, cfg.half_life_days);
            model.add_location(&ranked, &t.location_ref);
            model.add_hour(
                predict_arrival_h(&history, weekend, cfg.half_life_days),
                actual_h,
            );

            let ranked = baseline_locations(&history);
            base.add_location(&ranked, &t.location_ref);
            base.add_hour(baseline_arrival_h(&history, weekend), actual_h);
        }
    }
    report.model = model.metrics(report.test_sessions);
    report.baseline = base.metrics(report.test_sessions);
    report
}

/// One past session as the predictors see it.
#[derive(Debug, Clone, Copy)]
pub struct Visit<'a> {
    /// Location reference.
    pub location: &'a str,
    /// Arrival clock hour, 0.0..24.0.
    pub arrival_h: f64,
    /// Saturday or Sunday.
    pub weekend: bool,
    /// Start as seconds since the Unix epoch, for recency.
    pub start_s: i64,
}

impl<'a> Visit<'a> {
    /// The visit an import row describes.
    pub fn of(r: &'a ImportRow) -> Self {
        Self {
            location: &r.location_ref,
            arrival_h: hour_of_day(r.local_start),
            weekend: is_weekend(r.local_start),
            start_s: r.started_at.timestamp(),
        }
    }
}

/// Weight `2^(-age / half_life)` of each visit, age measured back from the latest visit.
fn recency_weights(history: &[Visit<'_>], half_life_days: f64) -> Vec<f64> {
    let last = history.iter().map(|v| v.start_s).max().unwrap_or(0);
    history
        .iter()
        .map(|v| {
            let age_days = (last - v.start_s) as f64 / 86_400.0;
            if half_life_days > 0.0 {
                (-age_days / half_life_days).exp2()
            } else {
                1.0
            }
        })
        .collect()
}

/// Locations ranked best first by the habit model (see the module docs).
pub fn predict_locations<'a>(history: &[Visit<'a>], half_life_days: f64) -> Vec<&'a str> {
    let w = recency_weights(history, half_life_days);
    let (n, w_sum) = (history.len() as f64, w.iter().sum::<f64>());
    let mut scores: Vec<(&str, f64, usize)> = Vec::new();
    for (i, (v, wi)) in history.iter().zip(&w).enumerate() {
        let add = 0.5 / n + 0.5 * wi / w_sum;
        match scores.iter_mut().find(|s| s.0 == v.location) {
            Some(s) => s.1 += add,
            None => scores.push((v.location, add, i)),
        }
    }
    rank(scores)
}

/// Locations ranked by frequency, ties by first use.
pub fn baseline_locations<'a>(history: &[Visit<'a>]) -> Vec<&'a str> {
    let mut scores: Vec<(&str, f64, usize)> = Vec::new();
    for (i, v) in history.iter().enumerate() {
        match scores.iter_mut().find(|s| s.0 == v.location) {
            Some(s) => s.1 += 1.0,
            None => scores.push((v.location, 1.0, i)),
        }
    }
    rank(scores)
}

fn rank(mut scores: Vec<(&str, f64, usize)>) -> Vec<&str> {
    scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    scores.into_iter().map(|s| s.0).collect()
}

/// Arrival hour predicted by the habit model for a day of the given weekday type.
pub fn predict_arrival_h(history: &[Visit<'_>], weekend: bool, half_life_days: f64) -> f64 {
    let w = recency_weights(history, half_life_days);
    let pick = |same_type_only: bool| -> (Vec<f64>, Vec<f64>) {
        history
            .iter()
            .zip(&w)
            .filter(|(v, _)| !same_type_only || v.weekend == weekend)
            .map(|(v, &wi)| (v.arrival_h, wi))
            .unzip()
    };
    let (mut h, mut wts) = pick(true);
    if h.is_empty() {
        (h, wts) = pick(false);
    }
    weighted_circular_median(&h, &wts).unwrap_or(12.0)
}

/// The baseline's arrival hour: the plain median arrival hour on the same weekday type.
pub fn baseline_arrival_h(history: &[Visit<'_>], weekend: bool) -> f64 {
    let mut h: Vec<f64> = history
        .iter()
        .filter(|v| v.weekend == weekend)
        .map(|v| v.arrival_h)
        .collect();
    if h.is_empty() {
        h = history.iter().map(|v| v.arrival_h).collect();
    }
    median(&mut h).unwrap_or(12.0)
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    })
}

#[derive(Default)]
struct Sums {
    hit1: usize,
    hit3: usize,
    abs_err: f64,
    within: usize,
}

impl Sums {
    fn add_location(&mut self, ranked: &[&str], actual: &str) {
        self.hit1 += usize::from(ranked.first() == Some(&actual));
        self.hit3 += usize::from(ranked.iter().take(3).any(|l| *l == actual));
    }

    fn add_hour(&mut self, predicted: f64, actual: f64) {
        let e = circular_distance_h(predicted, actual);
        self.abs_err += e;
        self.within += usize::from(e <= 1.0);
    }

    fn metrics(&self, n: usize) -> Metrics {
        if n == 0 {
            return Metrics::default();
        }
        let n = n as f64;
        Metrics {
            location_hit_at_1: self.hit1 as f64 / n,
            location_hit_at_3: self.hit3 as f64 / n,
            start_hour_mae_h: self.abs_err / n,
            start_within_1h: self.within as f64 / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};

    fn row(line: u64, driver: &str, loc: &str, day: u32, hour: u32) -> ImportRow {
        let local = NaiveDate::from_ymd_opt(2024, 1, day)
            .unwrap()
            .and_hms_opt(hour, 0, 0)
            .unwrap();
        let start = Utc.from_utc_datetime(&local);
        ImportRow {
            line,
            driver_ref: driver.into(),
            location_ref: loc.into(),
            charge_point_ref: None,
            started_at: start,
            ended_at: start + chrono::TimeDelta::hours(2),
            local_start: local,
            timezone: "UTC".into(),
            energy_kwh: 5.0,
        }
    }

    #[test]
    fn split_keeps_the_first_80_percent_and_skips_short_histories() {
        let mut rows: Vec<ImportRow> = (1..=15).map(|d| row(d.into(), "a", "L", d, 8)).collect();
        rows.extend((1..=9).map(|d| row(100 + u64::from(d), "b", "L", d, 8)));
        let r = evaluate(&rows, &EvalConfig::default());
        assert_eq!(r.drivers, 1);
        assert_eq!(r.test_sessions, 3); // 15 - floor(12.0)
        assert_eq!(r.model.location_hit_at_1, 1.0);
        assert_eq!(r.baseline.start_hour_mae_h, 0.0);
    }

    #[test]
    fn only_history_is_used_to_predict() {
        // learns "A at 8" for 8 sessions, then switches to "B at 20": both predictors must miss
        let rows: Vec<ImportRow> = (1..=10)
            .map(|d| {
                if d <= 8 {
                    row(d.into(), "a", "A", d, 8)
                } else {
                    row(d.into(), "a", "B", d, 20)
                }
            })
            .collect();
        let r = evaluate(&rows, &EvalConfig::default());
        assert_eq!(r.test_sessions, 2);
        assert_eq!(r.model.location_hit_at_3, 0.0);
        assert_eq!(r.baseline.location_hit_at_1, 0.0);
        assert!((r.model.start_hour_mae_h - 12.0).abs() < 1e-9);
        assert_eq!(r.model.start_within_1h, 0.0);
    }

    #[test]
    fn baseline_breaks_frequency_ties_by_first_use_and_model_follows_recency() {
        let visits: Vec<Visit<'_>> = [("B", 0), ("A", 1), ("A", 200), ("B", 201)]
            .iter()
            .map(|&(l, d)| Visit {
                location: l,
                arrival_h: 8.0,
                weekend: false,
                start_s: d * 86_400,
            })
            .collect();
        assert_eq!(baseline_locations(&visits), vec!["B", "A"]);
        let mut recent = visits.clone();
        recent.push(Visit {
            location: "A",
            arrival_h: 8.0,
            weekend: false,
            start_s: 202 * 86_400,
        });
        recent[0].start_s = 0;
        assert_eq!(predict_locations(&recent, 60.0)[0], "A");
    }

    #[test]
    fn arrival_median_is_circular_and_per_weekday_type() {
        let mk = |h: f64, weekend: bool| Visit {
            location: "A",
            arrival_h: h,
            weekend,
            start_s: 0,
        };
        let v = vec![
            mk(23.5, false),
            mk(0.5, false),
            mk(0.25, false),
            mk(14.0, true),
        ];
        let p = predict_arrival_h(&v, false, 60.0);
        assert!(circular_distance_h(p, 0.25) < 0.3, "{p}");
        assert_eq!(predict_arrival_h(&v, true, 60.0), 14.0);
        // the linear median of 0.25, 0.5, 23.5 is 0.5 too, but of 23.0, 23.5, 1.0 it is 23.0
        assert_eq!(baseline_arrival_h(&v, false), 0.5);
    }

    #[test]
    fn report_text_puts_model_and_baseline_side_by_side() {
        let r = EvalReport {
            drivers: 2,
            test_sessions: 5,
            model: Metrics {
                location_hit_at_1: 0.6,
                location_hit_at_3: 1.0,
                start_hour_mae_h: 1.0,
                start_within_1h: 0.8,
            },
            baseline: Metrics {
                location_hit_at_1: 0.4,
                location_hit_at_3: 1.0,
                start_hour_mae_h: 2.0,
                start_within_1h: 0.4,
            },
        };
        let t = r.to_text();
        assert!(t.contains("2 drivers, 5 test sessions"), "{t}");
        assert!(
            t.lines().any(|l| l.starts_with("location Hit@1")
                && l.contains("0.600")
                && l.contains("0.400")
                && l.ends_with("better")),
            "{t}"
        );
        assert!(
            t.lines()
                .any(|l| l.starts_with("start hour MAE") && l.contains("-1.000")),
            "{t}"
        );
        let json = serde_json::to_value(r).unwrap();
        for k in ["drivers", "test_sessions", "model", "baseline"] {
            assert!(json.get(k).is_some(), "{k}");
        }
        assert_eq!(json["baseline"]["start_within_1h"], 0.4);
    }
}
