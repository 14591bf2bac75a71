//! A driver's habits: clusters of their sessions by arrival time and weekday type.
//!
//! Each session becomes a point `[cos θ, sin θ, w·weekend]` where θ is the arrival time as an
//! angle on the 24-hour clock (so 23:30 and 00:30 are neighbours) and `w` =
//! [`HabitConfig::weekend_weight`]. linfa's k-means clusters the points for every k in
//! 1..=[`HabitConfig::max_k`].
//!
//! **Choosing k.** The Bayesian information criterion of a spherical Gaussian mixture with
//! hard assignments (the model k-means fits; Pelleg & Moore's X-means BIC) is computed for
//! each k and the smallest wins; a k is only eligible when every cluster has at least
//! [`HabitConfig::min_sessions_per_cluster`] sessions. BIC rather than the silhouette because
//! the silhouette cannot compare against k = 1 (a driver with one routine) and scores a
//! single-point cluster as a perfect 1, which would turn every outlier into a "habit"; BIC's
//! `p·ln n` penalty needs real evidence for each extra cluster. The variance is floored at
//! [`HabitConfig::variance_floor`] so identical sessions (zero spread) cannot drive the
//! likelihood to infinity.
//!
//! **Optional Gaussian mixture refinement** ([`ClusterMethod::GaussianMixture`]): linfa's GMM
//! is started from the chosen k. Its traps are handled: a fit error (singular covariance,
//! empty cluster, no convergence) keeps the k-means assignment; a row whose probabilities are
//! NaN/infinite or all zero (far points underflow) keeps its k-means label; a refinement that
//! leaves a cluster below the minimum size is discarded.
//!
//! Deterministic: the only randomness is k-means++/GMM initialisation, seeded from the seed.

use linfa::prelude::*;
use linfa::DatasetBase;
use linfa_clustering::{GaussianMixtureModel, KMeans};
use ndarray::Array2;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
use serde::{Deserialize, Serialize};

use crate::data::{LocationId, Session};
use crate::features::{circular_stats, SessionFeatures};

/// How sessions are grouped into habits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterMethod {
    /// k-means only.
    KMeans,
    /// k-means to choose k, then a Gaussian mixture to refine memberships.
    GaussianMixture,
}

/// Settings of habit learning.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HabitConfig {
    /// Largest number of habits per driver.
    pub max_k: usize,
    /// Fewest sessions a habit may have (for k > 1).
    pub min_sessions_per_cluster: usize,
    /// k-means restarts per k; the lowest inertia wins.
    pub kmeans_runs: usize,
    /// Distance between weekday and weekend points, in units of the clock circle's radius
    /// (1.0 ≈ 3.8 h of arrival difference).
    pub weekend_weight: f64,
    /// Smallest per-dimension variance in the BIC. 1e-2 is what arrivals jittering with a
    /// standard deviation of about 40 min give (the angle's variance shared over three
    /// dimensions): routines closer than that stay one habit, however exact the data.
    pub variance_floor: f64,
    /// Clustering method.
    pub method: ClusterMethod,
}

impl Default for HabitConfig {
    fn default() -> Self {
        Self {
            max_k: 3,
            min_sessions_per_cluster: 3,
            kmeans_runs: 3,
            weekend_weight: 1.0,
            variance_floor: 1e-2,
            method: ClusterMethod::KMeans,
        }
    }
}

/// Which days a habit falls on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    /// At least 80 % of its sessions are Monday–Friday.
    Weekdays,
    /// At least 80 % of its sessions are on Saturday or Sunday.
    Weekends,
    /// Both.
    AllWeek,
}

/// One habit of a driver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Habit {
    /// Most frequent location in the habit (ties: the one used first).
    pub location: LocationId,
    /// Share of the habit's sessions at that location.
    pub location_share: f64,
    /// Circular mean arrival clock hour, 0.0..24.0.
    pub arrival_mean_h: f64,
    /// Circular standard deviation of the arrival, hours.
    pub arrival_spread_h: f64,
    /// Typical arrival window start (mean − spread, at least ±15 min), clock hour.
    pub window_start_h: f64,
    /// Typical arrival window end (mean + spread), clock hour; may be < start across midnight.
    pub window_end_h: f64,
    /// Sessions per weekday, index 0 = Monday.
    pub weekday_counts: [u32; 7],
    /// Weekdays with at least 10 % of the habit's sessions, bit 0 = Monday.
    pub days: u8,
    /// Weekday with most sessions (0 = Monday; ties: the earlier day).
    pub main_weekday: usize,
    /// Weekday type.
    pub day_kind: DayKind,
    /// Median energy per session, kWh.
    pub energy_kwh: f64,
    /// Median plugged-in duration, hours.
    pub duration_h: f64,
    /// Share of the driver's sessions in this habit.
    pub share: f64,
    /// Number of sessions in this habit.
    pub sessions: usize,
}

/// Learns a driver's habits from their sessions (any order). No session → no habit; one
/// session → one habit. Sorted by share, largest first.
pub fn learn_habits(sessions: &[Session], cfg: &HabitConfig, seed: u64) -> Vec<Habit> {
    let feats: Vec<SessionFeatures> = sessions.iter().map(SessionFeatures::of).collect();
    learn_habits_from_features(&feats, cfg, seed)
}

/// [`learn_habits`] from precomputed features.
pub fn learn_habits_from_features(
    feats: &[SessionFeatures],
    cfg: &HabitConfig,
    seed: u64,
) -> Vec<Habit> {
    let n = feats.len();
    if n == 0 {
        return Vec::new();
    }
    let x = Array2::from_shape_fn((n, 3), |(i, j)| match j {
        0 => feats[i].arrival_cos,
        1 => feats[i].arrival_sin,
        _ => {
            if feats[i].weekend {
                cfg.weekend_weight
            } else {
                0.0
            }
        }
    });
    let labels = choose_clustering(&x, cfg, seed);
    let k = labels.iter().max().map_or(0, |m| m + 1);
    let mut habits: Vec<Habit> = (0..k)
        .filter_map(|c| {
            let members: Vec<&SessionFeatures> = feats
                .iter()
                .zip(&labels)
                .filter(|(_, &l)| l == c)
                .map(|(f, _)| f)
                .collect();
            describe(&members, n)
        })
        .collect();
    habits.sort_by(|a, b| {
        b.sessions
            .cmp(&a.sessions)
            .then(a.arrival_mean_h.total_cmp(&b.arrival_mean_h))
    });
    habits
}

/// Cluster labels 0..k of the chosen clustering.
fn choose_clustering(x: &Array2<f64>, cfg: &HabitConfig, seed: u64) -> Vec<usize> {
    let n = x.nrows();
    let min_size = cfg.min_sessions_per_cluster.max(1);
    let mut best_labels = vec![0; n];
    let mut best_bic = bic(x, &best_labels, 1, cfg.variance_floor);
    let max_k = cfg.max_k.min(n / min_size).max(1);
    let dataset = DatasetBase::from(x.clone());
    for k in 2..=max_k {
        let rng = Xoshiro256Plus::seed_from_u64(seed.wrapping_add(k as u64));
        let Ok(model) = KMeans::params_with_rng(k, rng)
            .n_runs(cfg.kmeans_runs.max(1))
            .tolerance(1e-5)
            .max_n_iterations(100)
            .fit(&dataset)
        else {
            continue;
        };
        let labels: Vec<usize> = model.predict(x).to_vec();
        if !sizes_ok(&labels, k, min_size) {
            continue;
        }
        let b = bic(x, &labels, k, cfg.variance_floor);
        if b < best_bic - 1e-9 {
            best_bic = b;
            best_labels = labels;
        }
    }
    let k = best_labels.iter().max().map_or(1, |m| m + 1);
    if cfg.method == ClusterMethod::GaussianMixture && k > 1 {
        if let Some(refined) = gmm_refine(&dataset, &best_labels, k, min_size, seed) {
            best_labels = refined;
        }
    }
    relabel(best_labels)
}

fn sizes_ok(labels: &[usize], k: usize, min_size: usize) -> bool {
    let mut sizes = vec![0usize; k];
    for &l in labels {
        sizes[l] += 1;
    }
    sizes.iter().all(|&s| s >= min_size)
}

/// Labels renumbered 0.. in order of first appearance, so equal clusterings compare equal.
fn relabel(labels: Vec<usize>) -> Vec<usize> {
    let mut map: Vec<Option<usize>> = vec![None; labels.iter().max().map_or(0, |m| m + 1)];
    let mut next = 0;
    labels
        .into_iter()
        .map(|l| {
            *map[l].get_or_insert_with(|| {
                next += 1;
                next - 1
            })
        })
        .collect()
}

/// BIC of a spherical Gaussian mixture with shared variance and hard assignments.
fn bic(x: &Array2<f64>, labels: &[usize], k: usize, var_floor: f64) -> f64 {
    let (n, d) = (x.nrows(), x.ncols());
    let mut centroids = vec![vec![0.0; d]; k];
    let mut sizes = vec![0usize; k];
    for (row, &l) in x.rows().into_iter().zip(labels) {
        sizes[l] += 1;
        for j in 0..d {
            centroids[l][j] += row[j];
        }
    }
    for (c, &s) in centroids.iter_mut().zip(&sizes) {
        for v in c.iter_mut() {
            *v /= s.max(1) as f64;
        }
    }
    let sse: f64 = x
        .rows()
        .into_iter()
        .zip(labels)
        .map(|(row, &l)| {
            (0..d)
                .map(|j| (row[j] - centroids[l][j]).powi(2))
                .sum::<f64>()
        })
        .sum();
    let (nf, df, kf) = (n as f64, d as f64, k as f64);
    let dof = (df * (nf - kf)).max(1.0);
    let var = (sse / dof).max(var_floor);
    let mut ll = -nf * df / 2.0 * (std::f64::consts::TAU * var).ln() - sse / (2.0 * var);
    for &s in &sizes {
        if s > 0 {
            ll += s as f64 * (s as f64 / nf).ln();
        }
    }
    let params = (kf - 1.0) + kf * df + 1.0;
    -2.0 * ll + params * nf.ln()
}

/// Gaussian mixture memberships started from k-means', or `None` to keep k-means'.
fn gmm_refine(
    dataset: &DatasetBase<Array2<f64>, ndarray::Array1<()>>,
    kmeans_labels: &[usize],
    k: usize,
    min_size: usize,
    seed: u64,
) -> Option<Vec<usize>> {
    let rng = Xoshiro256Plus::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    // reg_covariance keeps covariances invertible when a dimension is constant (all weekday)
    let gmm = GaussianMixtureModel::params_with_rng(k, rng)
        .n_runs(1)
        .tolerance(1e-4)
        .reg_covariance(1e-3)
        .max_n_iterations(200)
        .fit(dataset)
        .ok()?;
    let proba = gmm.predict_proba(dataset.records());
    let labels: Vec<usize> = proba
        .rows()
        .into_iter()
        .zip(kmeans_labels)
        .map(|(p, &fallback)| {
            let usable = p.iter().all(|v| v.is_finite()) && p.iter().any(|&v| v > 0.0);
            if usable {
                p.iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                    .map_or(fallback, |(i, _)| i)
            } else {
                fallback
            }
        })
        .collect();
    sizes_ok(&labels, k, min_size).then_some(labels)
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn describe(members: &[&SessionFeatures], total: usize) -> Option<Habit> {
    let n = members.len();
    if n == 0 {
        return None;
    }
    let hours: Vec<f64> = members.iter().map(|f| f.arrival_h).collect();
    let stats = circular_stats(&hours, &vec![1.0; n])?;
    // location: most frequent, ties by first use
    let mut locs: Vec<(LocationId, usize)> = Vec::new();
    for f in members {
        match locs.iter_mut().find(|(l, _)| *l == f.location) {
            Some(e) => e.1 += 1,
            None => locs.push((f.location, 1)),
        }
    }
    let (location, loc_count) = locs
        .iter()
        .copied()
        .reduce(|a, b| if b.1 > a.1 { b } else { a })?;
    let mut weekday_counts = [0u32; 7];
    for f in members {
        weekday_counts[f.weekday] += 1;
    }
    let min_day = ((n as f64 * 0.1).ceil() as u32).max(1);
    let days = (0..7).fold(0u8, |acc, d| {
        if weekday_counts[d] >= min_day {
            acc | (1 << d)
        } else {
            acc
        }
    });
    let main_weekday = (0..7)
        .reduce(|a, b| {
            if weekday_counts[b] > weekday_counts[a] {
                b
            } else {
                a
            }
        })
        .unwrap_or(0);
    let weekend_share = f64::from(weekday_counts[5] + weekday_counts[6]) / n as f64;
    let day_kind = if weekend_share >= 0.8 {
        DayKind::Weekends
    } else if weekend_share <= 0.2 {
        DayKind::Weekdays
    } else {
        DayKind::AllWeek
    };
    let half = stats.spread_h.max(0.25);
    Some(Habit {
        location,
        location_share: loc_count as f64 / n as f64,
        arrival_mean_h: stats.mean_h,
        arrival_spread_h: stats.spread_h,
        window_start_h: (stats.mean_h - half).rem_euclid(24.0),
        window_end_h: (stats.mean_h + half).rem_euclid(24.0),
        weekday_counts,
        days,
        main_weekday,
        day_kind,
        energy_kwh: median(members.iter().map(|f| f.energy_kwh).collect()),
        duration_h: median(members.iter().map(|f| f.duration_h).collect()),
        share: n as f64 / total as f64,
        sessions: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::circular_distance_h;
    use chrono::{NaiveDate, TimeZone, Utc};

    fn session(day: u32, hour: f64, loc: LocationId) -> Session {
        // January 2024: the 1st is a Monday
        let local = NaiveDate::from_ymd_opt(2024, 1, day)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            + chrono::TimeDelta::seconds((hour * 3600.0) as i64);
        let start = Utc.from_utc_datetime(&local);
        Session {
            driver: 1,
            location: loc,
            start_utc: start,
            end_utc: start + chrono::TimeDelta::hours(2),
            local_start: local,
            energy_kwh: 10.0,
        }
    }

    #[test]
    fn no_session_no_habit_and_one_session_one_habit() {
        assert!(learn_habits(&[], &HabitConfig::default(), 1).is_empty());
        let h = learn_habits(&[session(3, 18.5, 7)], &HabitConfig::default(), 1);
        assert_eq!(h.len(), 1);
        assert_eq!(h[0].location, 7);
        assert!((h[0].arrival_mean_h - 18.5).abs() < 1e-9);
        assert_eq!(h[0].share, 1.0);
        assert_eq!(h[0].days, 1 << 2);
        assert_eq!(h[0].day_kind, DayKind::Weekdays);
    }

    #[test]
    fn identical_sessions_make_one_habit() {
        let s: Vec<Session> = (0..12).map(|_| session(2, 8.0, 1)).collect();
        let h = learn_habits(&s, &HabitConfig::default(), 9);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h[0].sessions, 12);
        assert!(h[0].arrival_spread_h < 1e-6);
    }

    #[test]
    fn sessions_around_midnight_are_one_habit_at_midnight() {
        // weekdays of three weeks, alternating just before and just after midnight
        let s: Vec<Session> = (1..=19)
            .filter(|d| (d - 1) % 7 < 5)
            .map(|d| session(d, if d % 2 == 0 { 23.6 } else { 0.4 }, 3))
            .collect();
        let h = learn_habits(&s, &HabitConfig::default(), 2);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(
            circular_distance_h(h[0].arrival_mean_h, 0.0) < 0.05,
            "{h:?}"
        );
        assert!(
            h[0].window_start_h > 23.0 && h[0].window_end_h < 1.0,
            "{h:?}"
        );
    }

    #[test]
    fn a_single_outlier_does_not_become_a_habit() {
        let mut s: Vec<Session> = (1..=20)
            .map(|d| session(d, 8.0 + (d % 3) as f64 * 0.2, 1))
            .collect();
        s.push(session(21, 15.0, 2));
        for method in [ClusterMethod::KMeans, ClusterMethod::GaussianMixture] {
            let cfg = HabitConfig {
                method,
                ..HabitConfig::default()
            };
            let h = learn_habits(&s, &cfg, 4);
            assert!(h.iter().all(|h| h.sessions >= 3), "{h:?}");
            assert_eq!(h[0].location, 1);
        }
    }

    #[test]
    fn gmm_refinement_recovers_two_routines() {
        let mut s = Vec::new();
        for d in 1..=26 {
            let weekend = matches!((d - 1) % 7, 5 | 6);
            s.push(if weekend {
                session(d, 13.0 + (d % 2) as f64 * 0.5, 2)
            } else {
                session(d, 7.5 + (d % 3) as f64 * 0.25, 1)
            });
        }
        let cfg = HabitConfig {
            method: ClusterMethod::GaussianMixture,
            ..HabitConfig::default()
        };
        let h = learn_habits(&s, &cfg, 11);
        assert_eq!(h.len(), 2, "{h:?}");
        assert_eq!((h[0].location, h[0].day_kind), (1, DayKind::Weekdays));
        assert_eq!((h[1].location, h[1].day_kind), (2, DayKind::Weekends));
        assert!(
            circular_distance_h(h[1].arrival_mean_h, 13.25) < 0.3,
            "{h:?}"
        );
    }

    #[test]
    fn bic_prefers_one_cluster_for_one_blob_and_two_for_two() {
        let one = Array2::from_shape_fn((30, 3), |(i, j)| {
            if j == 0 {
                1.0 + (i % 5) as f64 * 0.01
            } else {
                0.0
            }
        });
        let split: Vec<usize> = (0..30).map(|i| i % 2).collect();
        assert!(bic(&one, &vec![0; 30], 1, 1e-3) < bic(&one, &split, 2, 1e-3));
        let two = Array2::from_shape_fn((30, 3), |(i, j)| {
            if j == 0 {
                if i % 2 == 0 {
                    1.0
                } else {
                    -1.0
                }
            } else {
                0.0
            }
        });
        assert!(bic(&two, &split, 2, 1e-3) < bic(&two, &vec![0; 30], 1, 1e-3));
    }
}
