//! Temporal hold-out evaluation of the habit model against simple baselines.
//!
//! Protocol, per driver with at least [`EvalConfig::min_sessions`] sessions sorted by start:
//! the first ⌊80 %⌋ are the history to learn from, the rest are predicted one by one from
//! that history alone (the model never sees a test session's outcome). Known at prediction
//! time: the test session's local date (so its weekday). Predicted: the location (a ranking,
//! scored Hit@1 and Hit@3) and the arrival clock hour (scored by the circular absolute error
//! in hours, and the share within ±1 h).
//!
//! **The model** is [`DriverModel`], learned by the same function with the same
//! [`HabitConfig`] as `laddkoll recommend` uses ([`EvalConfig::habits`] defaults to
//! [`HabitConfig::default`], the recommender's default), and asked [`DriverModel::predict`]
//! for the test session's weekday. Driver seeds are derived as in the recommender
//! ([`crate::pipeline::driver_seed`]).
//!
//! **Baselines**, side by side:
//! * *most frequent place*: the driver's most frequent location (ties: the one used first;
//!   Hit@3 takes the three most frequent);
//! * *median arrival per weekday type*: the driver's median arrival hour among sessions of the
//!   same weekday type (Monday–Friday or weekend), all sessions when there are none of that type;
//! * *clustering*: the driver's sessions clustered as the habit model clusters them, without
//!   recency or shrinkage; the cluster with most sessions of the test day's weekday type (else
//!   the largest) predicts its circular mean arrival and its locations by frequency (then the
//!   driver's, then first use). This is what the recommender advised from before the model
//!   learned to predict.

use std::collections::HashMap;

use serde::Serialize;

use crate::features::{circular_distance_h, circular_stats, SessionFeatures};
use crate::habits::{cluster_labels, DriverModel, HabitConfig};
use crate::import::{ImportRow, RowError};
use crate::pipeline::driver_seed;

/// Settings of the hold-out.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EvalConfig {
    /// Share of each driver's sessions (the earliest) used to learn, rounded down.
    pub train_fraction: f64,
    /// Drivers with fewer sessions are left out.
    pub min_sessions: usize,
    /// The habit model's settings: the recommender's by default.
    pub habits: HabitConfig,
    /// Seed, as `laddkoll recommend --seed`.
    pub seed: u64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            train_fraction: 0.8,
            min_sessions: 10,
            habits: HabitConfig::default(),
            seed: 1,
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

impl Metrics {
    /// The best of several predictors on each metric separately (highest hits, lowest error).
    pub fn best_of(all: &[Metrics]) -> Metrics {
        let mut b = all.first().copied().unwrap_or_default();
        for m in all.iter().skip(1) {
            b.location_hit_at_1 = b.location_hit_at_1.max(m.location_hit_at_1);
            b.location_hit_at_3 = b.location_hit_at_3.max(m.location_hit_at_3);
            b.start_hour_mae_h = b.start_hour_mae_h.min(m.start_hour_mae_h);
            b.start_within_1h = b.start_within_1h.max(m.start_within_1h);
        }
        b
    }

    /// The smallest relative margin of `self` over `other` across the four metrics (positive:
    /// better on every one). Hits compare as ratios, the error as `other / self`.
    pub fn worst_margin_over(&self, other: &Metrics) -> f64 {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b - 1.0 } else { a - b };
        [
            ratio(self.location_hit_at_1, other.location_hit_at_1),
            ratio(self.location_hit_at_3, other.location_hit_at_3),
            ratio(other.start_hour_mae_h, self.start_hour_mae_h),
            ratio(self.start_within_1h, other.start_within_1h),
        ]
        .into_iter()
        .fold(f64::INFINITY, f64::min)
    }
}

/// Rows and drivers the evaluation did not use, and why.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Skipped {
    /// Rows of the file that could not be read (filled in by the caller that parsed the file).
    pub invalid_rows: usize,
    /// The first of them with line and reason.
    pub invalid: Vec<RowError>,
    /// Drivers with fewer than [`EvalConfig::min_sessions`] sessions.
    pub drivers_below_min_sessions: usize,
    /// Their sessions.
    pub sessions_of_drivers_below_min: usize,
}

/// Most invalid rows listed one by one in [`Skipped::invalid`].
pub const LISTED_INVALID_ROWS: usize = 100;

impl Skipped {
    /// Records rows the parser refused.
    pub fn add_invalid_rows(&mut self, errors: &[RowError]) {
        self.invalid_rows += errors.len();
        let room = LISTED_INVALID_ROWS.saturating_sub(self.invalid.len());
        self.invalid.extend(errors.iter().take(room).cloned());
    }
}

/// Result of [`evaluate`]; serialises to the JSON that `laddkoll evaluate --json` prints.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EvalReport {
    /// Drivers with enough sessions to be evaluated.
    pub drivers: usize,
    /// Test sessions predicted.
    pub test_sessions: usize,
    /// The habit model (the recommender's).
    pub model: Metrics,
    /// Most frequent place and median arrival per weekday type.
    pub baseline: Metrics,
    /// The per-driver clustering baseline.
    pub clustering_baseline: Metrics,
    /// What was left out.
    pub skipped: Skipped,
    /// The settings evaluated.
    pub config: Option<EvalConfig>,
}

impl EvalReport {
    /// The best baseline on each metric.
    pub fn best_baseline(&self) -> Metrics {
        Metrics::best_of(&[self.baseline, self.clustering_baseline])
    }

    /// A side-by-side table for a terminal.
    pub fn to_text(&self) -> String {
        let (train, min) = self
            .config
            .map_or((0.8, 10), |c| (c.train_fraction, c.min_sessions));
        let mut s = format!(
            "Temporal hold-out: {} drivers, {} test sessions (drivers with ≥ {min} sessions; \
             the first {:.0} % of each driver's sessions to learn, the rest to test)\n\
             {:<22}{:>8}{:>17}{:>12}{:>10}\n",
            self.drivers,
            self.test_sessions,
            train * 100.0,
            "metric",
            "model",
            "frequent/median",
            "clustering",
            "vs best"
        );
        let best = self.best_baseline();
        let rows: [(&str, f64, f64, f64, f64, bool); 4] = [
            (
                "location Hit@1",
                self.model.location_hit_at_1,
                self.baseline.location_hit_at_1,
                self.clustering_baseline.location_hit_at_1,
                best.location_hit_at_1,
                true,
            ),
            (
                "location Hit@3",
                self.model.location_hit_at_3,
                self.baseline.location_hit_at_3,
                self.clustering_baseline.location_hit_at_3,
                best.location_hit_at_3,
                true,
            ),
            (
                "start hour MAE (h)",
                self.model.start_hour_mae_h,
                self.baseline.start_hour_mae_h,
                self.clustering_baseline.start_hour_mae_h,
                best.start_hour_mae_h,
                false,
            ),
            (
                "start within ±1 h",
                self.model.start_within_1h,
                self.baseline.start_within_1h,
                self.clustering_baseline.start_within_1h,
                best.start_within_1h,
                true,
            ),
        ];
        for (name, m, b, c, best, higher_is_better) in rows {
            let better = if higher_is_better { m > best } else { m < best };
            s.push_str(&format!(
                "{name:<22}{m:>8.3}{b:>17.3}{c:>12.3}{:>+10.3}{}\n",
                m - best,
                if better { "  better" } else { "" }
            ));
        }
        let sk = &self.skipped;
        if sk.drivers_below_min_sessions > 0 || sk.invalid_rows > 0 {
            s.push_str(&format!(
                "skipped: {} driver(s) with fewer than {min} sessions ({} sessions), {} invalid row(s)\n",
                sk.drivers_below_min_sessions, sk.sessions_of_drivers_below_min, sk.invalid_rows
            ));
        }
        s
    }
}

/// Hit and error sums of one predictor; add them up over any set of drivers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sums {
    /// Test sessions.
    pub n: usize,
    /// Location ranked first.
    pub hit1: usize,
    /// Location among the first three.
    pub hit3: usize,
    /// Sum of circular absolute arrival errors, hours.
    pub abs_err: f64,
    /// Arrivals within ±1 h.
    pub within: usize,
}

impl Sums {
    fn add(&mut self, ranked: &[i64], actual_loc: i64, predicted_h: f64, actual_h: f64) {
        self.n += 1;
        self.hit1 += usize::from(ranked.first() == Some(&actual_loc));
        self.hit3 += usize::from(ranked.iter().take(3).any(|l| *l == actual_loc));
        let e = circular_distance_h(predicted_h, actual_h);
        self.abs_err += e;
        self.within += usize::from(e <= 1.0);
    }

    /// Adds another set of sums.
    pub fn merge(&mut self, o: &Sums) {
        self.n += o.n;
        self.hit1 += o.hit1;
        self.hit3 += o.hit3;
        self.abs_err += o.abs_err;
        self.within += o.within;
    }

    /// The metrics these sums give.
    pub fn metrics(&self) -> Metrics {
        if self.n == 0 {
            return Metrics::default();
        }
        let n = self.n as f64;
        Metrics {
            location_hit_at_1: self.hit1 as f64 / n,
            location_hit_at_3: self.hit3 as f64 / n,
            start_hour_mae_h: self.abs_err / n,
            start_within_1h: self.within as f64 / n,
        }
    }
}

/// One evaluated driver's sums.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverScores {
    /// The driver reference.
    pub driver_ref: String,
    /// The habit model.
    pub model: Sums,
    /// Most frequent place + median arrival per weekday type.
    pub baseline: Sums,
    /// Clustering baseline.
    pub clustering: Sums,
}

/// Runs the temporal hold-out over all rows (any order; grouped by `driver_ref`).
pub fn evaluate(rows: &[ImportRow], cfg: &EvalConfig) -> EvalReport {
    let (scores, skipped) = evaluate_drivers(rows, cfg);
    let mut report = report_of(&scores);
    report.skipped = skipped;
    report.config = Some(*cfg);
    report
}

/// The report over a set of drivers' scores (e.g. one cross-validation fold).
pub fn report_of(scores: &[DriverScores]) -> EvalReport {
    let (mut m, mut b, mut c) = (Sums::default(), Sums::default(), Sums::default());
    for d in scores {
        m.merge(&d.model);
        b.merge(&d.baseline);
        c.merge(&d.clustering);
    }
    EvalReport {
        drivers: scores.len(),
        test_sessions: m.n,
        model: m.metrics(),
        baseline: b.metrics(),
        clustering_baseline: c.metrics(),
        ..EvalReport::default()
    }
}

/// Per-driver sums of the hold-out (drivers sorted by reference), and what was skipped.
/// Drivers are evaluated in parallel; the result does not depend on the thread count.
pub fn evaluate_drivers(rows: &[ImportRow], cfg: &EvalConfig) -> (Vec<DriverScores>, Skipped) {
    use rayon::prelude::*;
    let mut by_driver: HashMap<&str, Vec<&ImportRow>> = HashMap::new();
    for r in rows {
        by_driver.entry(&r.driver_ref).or_default().push(r);
    }
    let mut drivers: Vec<_> = by_driver.into_iter().collect();
    drivers.sort_by(|a, b| a.0.cmp(b.0));
    // one integer id per location reference, in order of first appearance in the file
    let mut loc_ids: HashMap<&str, i64> = HashMap::new();
    for r in rows {
        let next = loc_ids.len() as i64 + 1;
        loc_ids.entry(&r.location_ref).or_insert(next);
    }
    let mut skipped = Skipped::default();
    let mut work = Vec::new();
    for (i, (driver_ref, sessions)) in drivers.into_iter().enumerate() {
        if sessions.len() < cfg.min_sessions.max(2) {
            skipped.drivers_below_min_sessions += 1;
            skipped.sessions_of_drivers_below_min += sessions.len();
            continue;
        }
        work.push((i as i64 + 1, driver_ref, sessions));
    }
    let scores = work
        .into_par_iter()
        .map(|(driver_id, driver_ref, mut sessions)| {
            sessions.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.line.cmp(&b.line)));
            let feats: Vec<SessionFeatures> = sessions
                .iter()
                .map(|r| features_of(r, loc_ids[r.location_ref.as_str()]))
                .collect();
            score_driver(driver_ref, driver_id, &feats, cfg)
        })
        .collect();
    (scores, skipped)
}

/// The features of an import row at location id `location`.
pub fn features_of(r: &ImportRow, location: i64) -> SessionFeatures {
    SessionFeatures::of(&crate::data::Session {
        driver: 0,
        location,
        start_utc: r.started_at,
        end_utc: r.ended_at,
        local_start: r.local_start,
        energy_kwh: r.energy_kwh,
    })
}

/// Scores one driver's sessions (sorted by start).
fn score_driver(
    driver_ref: &str,
    driver_id: i64,
    feats: &[SessionFeatures],
    cfg: &EvalConfig,
) -> DriverScores {
    let n = feats.len();
    let k = ((n as f64 * cfg.train_fraction + 1e-9).floor() as usize).clamp(1, n - 1);
    let (train, test) = feats.split_at(k);
    let seed = driver_seed(cfg.seed, driver_id);
    let model = DriverModel::from_features(train, &cfg.habits, seed);
    let predictions: Vec<_> = (0..7).map(|d| model.predict(d)).collect();
    let frequent = frequent_locations(train);
    let clusters = ClusterBaseline::new(train, &cfg.habits, seed);
    let mut out = DriverScores {
        driver_ref: driver_ref.to_owned(),
        model: Sums::default(),
        baseline: Sums::default(),
        clustering: Sums::default(),
    };
    for t in test {
        let p = &predictions[t.weekday];
        let ranked: Vec<i64> = p.locations.iter().map(|l| l.0).collect();
        out.model.add(&ranked, t.location, p.arrival_h, t.arrival_h);
        out.baseline.add(
            &frequent,
            t.location,
            median_arrival_h(train, t.weekend),
            t.arrival_h,
        );
        let (ranked, h) = clusters.predict(t.weekend);
        out.clustering.add(&ranked, t.location, h, t.arrival_h);
    }
    out
}

/// Locations ranked by frequency, ties by first use.
pub fn frequent_locations(history: &[SessionFeatures]) -> Vec<i64> {
    let mut scores: Vec<(i64, f64, usize)> = Vec::new();
    for (i, v) in history.iter().enumerate() {
        match scores.iter_mut().find(|s| s.0 == v.location) {
            Some(s) => s.1 += 1.0,
            None => scores.push((v.location, 1.0, i)),
        }
    }
    scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    scores.into_iter().map(|s| s.0).collect()
}

/// The baseline's arrival hour: the plain median arrival hour on the same weekday type.
pub fn median_arrival_h(history: &[SessionFeatures], weekend: bool) -> f64 {
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

/// The per-driver clustering baseline (see the module docs).
struct ClusterBaseline {
    /// Per cluster: sessions on weekdays, on weekends, circular mean, ranked locations.
    clusters: Vec<(usize, usize, f64, Vec<i64>)>,
}

impl ClusterBaseline {
    fn new(history: &[SessionFeatures], cfg: &HabitConfig, seed: u64) -> Self {
        let labels = cluster_labels(history, cfg, seed);
        let k = labels.iter().max().map_or(0, |m| m + 1);
        let overall = frequent_locations(history);
        let clusters = (0..k)
            .map(|c| {
                let members: Vec<SessionFeatures> = history
                    .iter()
                    .zip(&labels)
                    .filter(|(_, &l)| l == c)
                    .map(|(f, _)| *f)
                    .collect();
                let weekend = members.iter().filter(|f| f.weekend).count();
                let hours: Vec<f64> = members.iter().map(|f| f.arrival_h).collect();
                let mean =
                    circular_stats(&hours, &vec![1.0; hours.len()]).map_or(12.0, |s| s.mean_h);
                let mut ranked = frequent_locations(&members);
                for l in &overall {
                    if !ranked.contains(l) {
                        ranked.push(*l);
                    }
                }
                (members.len() - weekend, weekend, mean, ranked)
            })
            .collect();
        Self { clusters }
    }

    fn predict(&self, weekend: bool) -> (Vec<i64>, f64) {
        let count = |c: &(usize, usize, f64, Vec<i64>)| if weekend { c.1 } else { c.0 };
        let best = self
            .clusters
            .iter()
            .enumerate()
            .max_by(|(ia, a), (ib, b)| {
                count(a)
                    .cmp(&count(b))
                    .then((a.0 + a.1).cmp(&(b.0 + b.1)))
                    .then(ib.cmp(ia))
            })
            .map(|(_, c)| c);
        best.map_or((Vec::new(), 12.0), |c| (c.3.clone(), c.2))
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
            location_name: None,
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
        assert_eq!(r.skipped.drivers_below_min_sessions, 1);
        assert_eq!(r.skipped.sessions_of_drivers_below_min, 9);
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
        assert_eq!(r.clustering_baseline.location_hit_at_1, 0.0);
        assert!((r.model.start_hour_mae_h - 12.0).abs() < 1e-9);
        assert_eq!(r.model.start_within_1h, 0.0);
    }

    fn feat(loc: i64, day: u32, hour: f64) -> SessionFeatures {
        features_of(&row(0, "x", "L", day, 0), loc).with_arrival(hour)
    }

    impl SessionFeatures {
        fn with_arrival(mut self, hour: f64) -> Self {
            self.arrival_h = hour;
            self
        }
    }

    #[test]
    fn baseline_breaks_frequency_ties_by_first_use_and_model_follows_recency() {
        // B, A early; A, B two hundred days later; then A again
        let visits: Vec<SessionFeatures> = [(2, 1), (1, 2), (1, 20), (2, 21)]
            .iter()
            .map(|&(l, d)| feat(l, d, 8.0))
            .collect();
        assert_eq!(frequent_locations(&visits), vec![2, 1]);
        let mut recent = visits.clone();
        recent.push(feat(1, 22, 8.0));
        let cfg = HabitConfig::default();
        let model = DriverModel::from_features(&recent, &cfg, 1);
        assert_eq!(model.predict(0).locations[0].0, 1);
    }

    #[test]
    fn arrival_is_a_circular_median_per_weekday_type() {
        // Monday..Wednesday around midnight, a Saturday at 14
        let v = vec![
            feat(1, 1, 23.5),
            feat(1, 2, 0.5),
            feat(1, 3, 0.25),
            feat(1, 8, 23.75),
            feat(1, 9, 0.25),
            feat(1, 6, 14.0),
            feat(1, 13, 14.5),
            feat(1, 20, 14.25),
        ];
        let model = DriverModel::from_features(&v, &HabitConfig::default(), 3);
        let p = model.predict(0).arrival_h;
        assert!(circular_distance_h(p, 0.0) < 0.5, "{p}");
        let sat = model.predict(5).arrival_h;
        assert!((sat - 14.25).abs() < 0.3, "{sat}");
        // the linear median of weekday arrivals would be far from midnight
        assert_eq!(median_arrival_h(&v, true), 14.25);
    }

    #[test]
    fn report_text_puts_model_and_baselines_side_by_side() {
        let m = |h1, mae, w| Metrics {
            location_hit_at_1: h1,
            location_hit_at_3: 1.0,
            start_hour_mae_h: mae,
            start_within_1h: w,
        };
        let r = EvalReport {
            drivers: 2,
            test_sessions: 5,
            model: m(0.6, 1.0, 0.8),
            baseline: m(0.4, 2.0, 0.4),
            clustering_baseline: m(0.2, 1.5, 0.6),
            skipped: Skipped {
                drivers_below_min_sessions: 3,
                sessions_of_drivers_below_min: 7,
                ..Skipped::default()
            },
            config: Some(EvalConfig::default()),
        };
        let t = r.to_text();
        assert!(t.contains("2 drivers, 5 test sessions"), "{t}");
        assert!(
            t.lines().any(|l| l.starts_with("location Hit@1")
                && l.contains("0.600")
                && l.contains("0.400")
                && l.contains("0.200")
                && l.ends_with("better")),
            "{t}"
        );
        // the margin is against the best baseline: 1.5 h
        assert!(
            t.lines()
                .any(|l| l.starts_with("start hour MAE") && l.contains("-0.500")),
            "{t}"
        );
        assert!(
            t.contains("3 driver(s) with fewer than 10 sessions (7 sessions)"),
            "{t}"
        );
        let json = serde_json::to_value(&r).unwrap();
        for k in [
            "drivers",
            "test_sessions",
            "model",
            "baseline",
            "clustering_baseline",
            "skipped",
            "config",
        ] {
            assert!(json.get(k).is_some(), "{k}");
        }
        assert_eq!(json["baseline"]["start_within_1h"], 0.4);
        assert_eq!(json["skipped"]["drivers_below_min_sessions"], 3);
        assert_eq!(
            r.best_baseline().start_within_1h,
            0.6,
            "best of the two baselines"
        );
    }
}
