//! A driver's habit model: one model that `laddkoll recommend` turns into advice and
//! `laddkoll evaluate` scores.
//!
//! [`DriverModel::learn`] groups a driver's sessions into **habits** and keeps the sessions
//! behind each habit with a weight; [`DriverModel::predict`] answers "on this weekday, where
//! and when will the driver charge?" from the same habits. The recommender reads
//! [`DriverModel::habits`]; the evaluation calls [`DriverModel::predict`] on the model learned
//! from the same code with the same [`HabitConfig`].
//!
//! **Clustering.** Each session becomes a point `[cos θ, sin θ, w·weekend]` where θ is the
//! arrival time as an angle on the 24-hour clock (so 23:30 and 00:30 are neighbours) and `w` =
//! [`HabitConfig::weekend_weight`]. linfa's k-means clusters the points for every k in
//! 1..=[`HabitConfig::max_k`]; the Bayesian information criterion of a spherical Gaussian
//! mixture with hard assignments (Pelleg & Moore's X-means BIC) picks k, a k being eligible only
//! when every cluster has at least [`HabitConfig::min_sessions_per_cluster`] sessions. BIC
//! rather than the silhouette because the silhouette cannot compare against k = 1 and scores a
//! single-point cluster as a perfect 1; BIC's `p·ln n` penalty needs real evidence for each
//! extra cluster. The variance is floored at [`HabitConfig::variance_floor`] so identical
//! sessions cannot drive the likelihood to infinity, and two clusters on the same weekday type
//! must be at least [`HabitConfig::min_separation_h`] apart (a driver arriving anywhere from
//! 07:40 to 09:20 has one routine with some spread, not two). An optional Gaussian-mixture refinement
//! ([`ClusterMethod::GaussianMixture`]) keeps the k-means labels whenever linfa's GMM fails.
//!
//! **Recency.** Every session has a weight: a mix of a uniform weight and a weight halving every
//! [`HabitConfig::half_life_days`] days before the driver's newest session
//! ([`HabitConfig::recency_share`] of the total is recency-weighted). Drift (a new car park, a
//! later start) is followed while the long-run part keeps rare but real alternatives. Weights
//! are scaled to sum to the number of sessions, so every pseudo-count below is in sessions.
//!
//! **Circular statistics.** A habit's typical arrival is the weighted *circular median* of its
//! arrivals (the median minimises absolute error; the circle makes 23:30 and 00:30 neighbours);
//! its flexibility is the 10th–90th weighted percentile of the arrivals' circular offsets from
//! that median.
//!
//! **Prediction with shrinkage.** For a weekday `d` (type τ: Monday–Friday or weekend):
//! 1. each habit's weight for `d` is its weight `W_h` times its share of type-τ sessions, shrunk
//!    toward the driver's overall type-τ share with [`HabitConfig::day_type_prior_sessions`]
//!    pseudo-sessions: `(W_hτ + α·π_τ) / (W_h + α)`. A driver with no session of type τ falls back
//!    to the habits' plain weights (the driver's overall pattern);
//! 2. within a habit, the sessions on weekday `d` itself count more: the habit's distribution
//!    for `d` is its weekday-`d` sessions plus [`HabitConfig::weekday_prior_sessions`]
//!    pseudo-sessions spread like the whole habit (few sessions on that weekday: the habit's
//!    overall pattern; many: that weekday's own);
//! 3. a habit's location distribution is shrunk toward the driver's overall one with
//!    [`HabitConfig::location_prior_sessions`] pseudo-sessions (a habit of few sessions borrows
//!    the driver's places).
//!
//! The predicted arrival is the circular median of that mixture; the locations are ranked by the
//! mixture's probability (ties: the most recently used first).
//!
//! Deterministic: the only randomness is k-means++/GMM initialisation, seeded from the seed.

use std::collections::HashMap;

use linfa::prelude::*;
use linfa::DatasetBase;
use linfa_clustering::{GaussianMixtureModel, KMeans};
use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256Plus;
use serde::{Deserialize, Serialize};

use crate::data::{LocationId, Session};
use crate::features::{
    circular_offset_h, circular_stats, weighted_circular_median, weighted_circular_point,
    weighted_quantile, SessionFeatures,
};

/// How sessions are grouped into habits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClusterMethod {
    /// k-means only.
    KMeans,
    /// k-means to choose k, then a Gaussian mixture to refine memberships.
    GaussianMixture,
}

/// Settings of the habit model: what `recommend` learns habits with and `evaluate` scores.
///
/// The defaults were chosen by cross-validation over drivers and on synthetic data with planted
/// habits (`ml/README.md`, "How the settings were chosen"), not on one data set's score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
    /// Two habits on the same weekday type must have typical arrivals at least this many hours
    /// apart; closer clusters are one routine with some spread.
    pub min_separation_h: f64,
    /// Recency weights halve every this many days before the driver's newest session.
    pub half_life_days: f64,
    /// Share of each session's weight that is recency-weighted (the rest is uniform), 0..=1.
    pub recency_share: f64,
    /// Pseudo-sessions shrinking a habit's weekday/weekend split toward the driver's.
    pub day_type_prior_sessions: f64,
    /// Pseudo-sessions shrinking a habit's pattern on one weekday toward the whole habit's
    /// (`f64::INFINITY`: weekdays are not told apart within a habit).
    pub weekday_prior_sessions: f64,
    /// Pseudo-sessions shrinking a habit's locations on one weekday toward the whole habit's
    /// (`f64::INFINITY`: weekdays are not told apart for the place).
    pub location_weekday_prior_sessions: f64,
    /// Pseudo-sessions shrinking a habit's location distribution toward the driver's overall
    /// one (`f64::INFINITY`: every habit uses the driver's overall distribution).
    pub location_prior_sessions: f64,
    /// The predicted arrival minimises the absolute error capped at this many hours (12 or
    /// more: the circular median; less: the densest part of the arrivals, so a second routine
    /// or one-off sessions do not pull the prediction between routines).
    pub arrival_loss_cap_h: f64,
    /// Hours of error added, in the arrival's loss, for an arrival missed by more than an hour
    /// (0: the capped absolute error alone).
    pub arrival_miss_penalty_h: f64,
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
            min_separation_h: 2.0,
            half_life_days: 90.0,
            recency_share: 0.5,
            day_type_prior_sessions: 2.0,
            weekday_prior_sessions: 8.0,
            location_weekday_prior_sessions: f64::INFINITY,
            location_prior_sessions: 1.0,
            arrival_loss_cap_h: 12.0,
            arrival_miss_penalty_h: 3.0,
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

/// A weekday belongs to a habit's span when it holds at least this share of the habit's
/// sessions…
pub const SPAN_MIN_SHARE: f64 = 0.1;
/// …and at least this many of them.
pub const SPAN_MIN_SESSIONS: u32 = 2;
/// Percentiles of the arrivals that bound a habit's observed flexibility.
pub const FLEXIBILITY_PERCENTILES: (f64, f64) = (0.1, 0.9);

/// One habit of a driver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Habit {
    /// Location with the largest (recency-)weighted share of the habit (ties: the one used
    /// last).
    pub location: LocationId,
    /// That weighted share.
    pub location_share: f64,
    /// Typical arrival: weighted circular median clock hour, 0.0..24.0.
    pub arrival_h: f64,
    /// Weighted circular mean arrival clock hour, 0.0..24.0.
    pub arrival_mean_h: f64,
    /// Weighted circular standard deviation of the arrival, hours.
    pub arrival_spread_h: f64,
    /// Earliest usual arrival (10th weighted percentile around the median), clock hour.
    pub earliest_h: f64,
    /// Latest usual arrival (90th weighted percentile around the median), clock hour; smaller
    /// than `earliest_h` when the range crosses midnight.
    pub latest_h: f64,
    /// Sessions per weekday, index 0 = Monday.
    pub weekday_counts: [u32; 7],
    /// The habit's span: weekdays with at least [`SPAN_MIN_SHARE`] of its sessions and at least
    /// [`SPAN_MIN_SESSIONS`], bit 0 = Monday (the busiest day when none qualifies).
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

impl Habit {
    /// The observed flexibility as the largest shifts `(earlier, later)` in hours, ≥ 0.
    pub fn flexibility_h(&self) -> (f64, f64) {
        (
            (-circular_offset_h(self.earliest_h, self.arrival_h)).max(0.0),
            circular_offset_h(self.latest_h, self.arrival_h).max(0.0),
        )
    }
}

/// One session as the model keeps it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Member {
    arrival_h: f64,
    weekday: usize,
    weekend: bool,
    location: LocationId,
    start_s: i64,
    weight: f64,
    habit: usize,
}

/// A driver's learned habits and the weighted sessions behind them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DriverModel {
    /// Habits, largest first.
    pub habits: Vec<Habit>,
    members: Vec<Member>,
    /// Habit of each input session, in input order (index into `habits`).
    labels: Vec<usize>,
    cfg: HabitConfig,
}

/// What the model expects of one day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Locations with their probability, most likely first.
    pub locations: Vec<(LocationId, f64)>,
    /// Arrival clock hour, 0.0..24.0 (12.0 for a model without sessions).
    pub arrival_h: f64,
}

/// Learns a driver's habits from their sessions (any order). No session → no habit; one
/// session → one habit. Sorted by sessions, largest first. The habits of
/// [`DriverModel::learn`].
pub fn learn_habits(sessions: &[Session], cfg: &HabitConfig, seed: u64) -> Vec<Habit> {
    DriverModel::learn(sessions, cfg, seed).habits
}

/// [`learn_habits`] from precomputed features.
pub fn learn_habits_from_features(
    feats: &[SessionFeatures],
    cfg: &HabitConfig,
    seed: u64,
) -> Vec<Habit> {
    DriverModel::from_features(feats, cfg, seed).habits
}

/// Weight of each session (see the module docs), scaled to sum to the number of sessions.
pub fn session_weights(feats: &[SessionFeatures], cfg: &HabitConfig) -> Vec<f64> {
    let n = feats.len();
    if n == 0 {
        return Vec::new();
    }
    let last = feats.iter().map(|f| f.start_s).max().unwrap_or(0);
    let rec: Vec<f64> = feats
        .iter()
        .map(|f| {
            let age_days = (last - f.start_s).max(0) as f64 / 86_400.0;
            if cfg.half_life_days > 0.0 && cfg.half_life_days.is_finite() {
                (-age_days / cfg.half_life_days).exp2()
            } else {
                1.0
            }
        })
        .collect();
    let r_sum: f64 = rec.iter().sum();
    let rho = cfg.recency_share.clamp(0.0, 1.0);
    rec.iter()
        .map(|r| (1.0 - rho) + rho * n as f64 * r / r_sum.max(f64::MIN_POSITIVE))
        .collect()
}

/// The clustering points of sessions: `[cos θ, sin θ, w·weekend]`.
fn points(feats: &[SessionFeatures], cfg: &HabitConfig) -> Array2<f64> {
    Array2::from_shape_fn((feats.len(), 3), |(i, j)| match j {
        0 => feats[i].arrival_cos,
        1 => feats[i].arrival_sin,
        _ => {
            if feats[i].weekend {
                cfg.weekend_weight
            } else {
                0.0
            }
        }
    })
}

/// Cluster labels 0..k (in order of first appearance) of the sessions, as the habit model
/// clusters them; used alone by the evaluation's clustering baseline.
pub fn cluster_labels(feats: &[SessionFeatures], cfg: &HabitConfig, seed: u64) -> Vec<usize> {
    if feats.is_empty() {
        return Vec::new();
    }
    choose_clustering(&points(feats, cfg), cfg, seed)
}

impl DriverModel {
    /// Learns the model from a driver's sessions (any order).
    pub fn learn(sessions: &[Session], cfg: &HabitConfig, seed: u64) -> Self {
        let feats: Vec<SessionFeatures> = sessions.iter().map(SessionFeatures::of).collect();
        Self::from_features(&feats, cfg, seed)
    }

    /// [`DriverModel::learn`] from precomputed features.
    pub fn from_features(feats: &[SessionFeatures], cfg: &HabitConfig, seed: u64) -> Self {
        let n = feats.len();
        if n == 0 {
            return Self {
                cfg: *cfg,
                ..Self::default()
            };
        }
        let weights = session_weights(feats, cfg);
        let labels = cluster_labels(feats, cfg, seed);
        let k = labels.iter().max().map_or(0, |m| m + 1);
        let mut described: Vec<(usize, Habit)> = (0..k)
            .filter_map(|c| {
                let idx: Vec<usize> = (0..n).filter(|&i| labels[i] == c).collect();
                describe(feats, &weights, &idx, n).map(|h| (c, h))
            })
            .collect();
        described.sort_by(|a, b| {
            b.1.sessions
                .cmp(&a.1.sessions)
                .then(a.1.arrival_h.total_cmp(&b.1.arrival_h))
                .then(a.0.cmp(&b.0))
        });
        let mut new_index = vec![0; k];
        for (i, (c, _)) in described.iter().enumerate() {
            new_index[*c] = i;
        }
        let labels: Vec<usize> = labels.iter().map(|&l| new_index[l]).collect();
        let members = feats
            .iter()
            .zip(&weights)
            .zip(&labels)
            .map(|((f, &weight), &habit)| Member {
                arrival_h: f.arrival_h,
                weekday: f.weekday,
                weekend: f.weekend,
                location: f.location,
                start_s: f.start_s,
                weight,
                habit,
            })
            .collect();
        Self {
            habits: described.into_iter().map(|(_, h)| h).collect(),
            members,
            labels,
            cfg: *cfg,
        }
    }

    /// The habit (index into [`DriverModel::habits`]) of each session, in the order the
    /// sessions were given.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Where and when the driver is expected to charge on `weekday` (0 = Monday).
    pub fn predict(&self, weekday: usize) -> Prediction {
        let cfg = &self.cfg;
        let k = self.habits.len();
        if self.members.is_empty() || k == 0 {
            return Prediction {
                locations: Vec::new(),
                arrival_h: 12.0,
            };
        }
        let weekday = weekday % 7;
        let tau = weekday >= 5;
        let total: f64 = self.members.iter().map(|m| m.weight).sum();
        let mut w_h = vec![0.0; k];
        let mut w_h_tau = vec![0.0; k];
        let mut w_h_day = vec![0.0; k];
        for m in &self.members {
            w_h[m.habit] += m.weight;
            if m.weekend == tau {
                w_h_tau[m.habit] += m.weight;
            }
            if m.weekday == weekday {
                w_h_day[m.habit] += m.weight;
            }
        }
        // 1. habit weights for this weekday type, shrunk toward the driver's type share
        let pi_tau = w_h_tau.iter().sum::<f64>() / total;
        let alpha = cfg.day_type_prior_sessions.max(0.0);
        let mut mix: Vec<f64> = (0..k)
            .map(|h| {
                let denom = w_h[h] + alpha;
                if denom > 0.0 {
                    w_h[h] * (w_h_tau[h] + alpha * pi_tau) / denom
                } else {
                    0.0
                }
            })
            .collect();
        if mix.iter().sum::<f64>() <= 0.0 {
            mix.clone_from(&w_h); // no session of this type at all: the overall pattern
        }
        let mix_sum: f64 = mix.iter().sum();
        for m in &mut mix {
            *m /= mix_sum;
        }
        // 2. within a habit, this weekday's sessions shrunk toward the whole habit
        let within = |m: &Member, prior: f64| -> f64 {
            let (wh, wd) = (w_h[m.habit], w_h_day[m.habit]);
            if wh <= 0.0 {
                return 0.0;
            }
            let prior = prior.max(0.0);
            if prior.is_infinite() || wd + prior <= 0.0 {
                return m.weight / wh;
            }
            let same = if m.weekday == weekday { 1.0 } else { 0.0 };
            m.weight * (same + prior / wh) / (wd + prior)
        };
        let v: Vec<f64> = self
            .members
            .iter()
            .map(|m| within(m, cfg.weekday_prior_sessions))
            .collect();
        let v_loc: Vec<f64> = self
            .members
            .iter()
            .map(|m| within(m, cfg.location_weekday_prior_sessions))
            .collect();
        let u: Vec<f64> = self
            .members
            .iter()
            .zip(&v)
            .map(|(m, vi)| mix[m.habit] * vi)
            .collect();
        let hours: Vec<f64> = self.members.iter().map(|m| m.arrival_h).collect();
        let arrival_h = weighted_circular_point(
            &hours,
            &u,
            cfg.arrival_loss_cap_h,
            cfg.arrival_miss_penalty_h,
        )
        .unwrap_or(12.0);

        // 3. locations: each habit's distribution shrunk toward the driver's overall one
        let delta = cfg.location_prior_sessions.max(0.0);
        let mut overall: HashMap<LocationId, (f64, i64)> = HashMap::new();
        for m in &self.members {
            let e = overall.entry(m.location).or_insert((0.0, i64::MIN));
            e.0 += m.weight / total;
            e.1 = e.1.max(m.start_s);
        }
        let mut per_habit: Vec<HashMap<LocationId, f64>> = vec![HashMap::new(); k];
        for (m, vi) in self.members.iter().zip(&v_loc) {
            *per_habit[m.habit].entry(m.location).or_insert(0.0) += vi;
        }
        let mut scores: Vec<(LocationId, f64, i64)> = overall
            .iter()
            .map(|(&loc, &(p_driver, last))| {
                let s: f64 = (0..k)
                    .map(|h| {
                        let own = per_habit[h].get(&loc).copied().unwrap_or(0.0);
                        let p = if delta.is_infinite() {
                            p_driver
                        } else {
                            (w_h[h] * own + delta * p_driver) / (w_h[h] + delta).max(1e-300)
                        };
                        mix[h] * p
                    })
                    .sum();
                (loc, s, last)
            })
            .collect();
        scores.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
        Prediction {
            locations: scores.into_iter().map(|(l, s, _)| (l, s)).collect(),
            arrival_h,
        }
    }
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
        if !sizes_ok(&labels, k, min_size) || !separated(x, &labels, k, cfg) {
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
            if separated(x, &refined, k, cfg) {
                best_labels = refined;
            }
        }
    }
    relabel(best_labels)
}

/// Whether clusters that fall on the same weekday type (by majority) have typical arrivals at
/// least [`HabitConfig::min_separation_h`] apart: closer ones are one routine with some spread,
/// not two habits.
fn separated(x: &Array2<f64>, labels: &[usize], k: usize, cfg: &HabitConfig) -> bool {
    let mut sums = vec![(0.0, 0.0, 0usize, 0usize); k];
    for (row, &l) in x.rows().into_iter().zip(labels) {
        sums[l].0 += row[0];
        sums[l].1 += row[1];
        sums[l].2 += 1;
        sums[l].3 += usize::from(row[2] > 0.0);
    }
    let centre: Vec<(f64, bool)> = sums
        .iter()
        .map(|&(c, s, n, weekend)| {
            let h = (s.atan2(c) / std::f64::consts::TAU * 24.0).rem_euclid(24.0);
            (h, 2 * weekend > n)
        })
        .collect();
    for a in 0..k {
        for b in a + 1..k {
            if centre[a].1 == centre[b].1
                && crate::features::circular_distance_h(centre[a].0, centre[b].0)
                    < cfg.min_separation_h
            {
                return false;
            }
        }
    }
    true
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
    dataset: &DatasetBase<Array2<f64>, Array1<()>>,
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

/// The habit of the sessions `idx` (indices into `feats` and `weights`) of a driver with
/// `total` sessions.
fn describe(
    feats: &[SessionFeatures],
    weights: &[f64],
    idx: &[usize],
    total: usize,
) -> Option<Habit> {
    let n = idx.len();
    if n == 0 {
        return None;
    }
    let hours: Vec<f64> = idx.iter().map(|&i| feats[i].arrival_h).collect();
    let w: Vec<f64> = idx.iter().map(|&i| weights[i]).collect();
    let stats = circular_stats(&hours, &w)?;
    let arrival_h = weighted_circular_median(&hours, &w).unwrap_or(stats.mean_h);
    let offsets: Vec<f64> = hours
        .iter()
        .map(|&h| circular_offset_h(h, arrival_h))
        .collect();
    let (lo_q, hi_q) = FLEXIBILITY_PERCENTILES;
    let lo = weighted_quantile(&offsets, &w, lo_q)
        .unwrap_or(0.0)
        .min(0.0);
    let hi = weighted_quantile(&offsets, &w, hi_q)
        .unwrap_or(0.0)
        .max(0.0);
    // location: largest weighted share, ties by the latest use
    let mut locs: Vec<(LocationId, f64, i64)> = Vec::new();
    for &i in idx {
        let f = &feats[i];
        match locs.iter_mut().find(|(l, _, _)| *l == f.location) {
            Some(e) => {
                e.1 += weights[i];
                e.2 = e.2.max(f.start_s);
            }
            None => locs.push((f.location, weights[i], f.start_s)),
        }
    }
    let w_sum: f64 = w.iter().sum();
    let (location, loc_w, _) = locs.iter().copied().reduce(|a, b| {
        if b.1 > a.1 + 1e-12 || ((b.1 - a.1).abs() <= 1e-12 && b.2 > a.2) {
            b
        } else {
            a
        }
    })?;
    let mut weekday_counts = [0u32; 7];
    for &i in idx {
        weekday_counts[feats[i].weekday] += 1;
    }
    let main_weekday = (0..7)
        .reduce(|a, b| {
            if weekday_counts[b] > weekday_counts[a] {
                b
            } else {
                a
            }
        })
        .unwrap_or(0);
    let min_day = ((n as f64 * SPAN_MIN_SHARE).ceil() as u32).max(SPAN_MIN_SESSIONS);
    let mut days = (0..7).fold(0u8, |acc, d| {
        if weekday_counts[d] >= min_day {
            acc | (1 << d)
        } else {
            acc
        }
    });
    if days == 0 {
        days = 1 << main_weekday;
    }
    let weekend_share = f64::from(weekday_counts[5] + weekday_counts[6]) / n as f64;
    let day_kind = if weekend_share >= 0.8 {
        DayKind::Weekends
    } else if weekend_share <= 0.2 {
        DayKind::Weekdays
    } else {
        DayKind::AllWeek
    };
    Some(Habit {
        location,
        location_share: loc_w / w_sum,
        arrival_h,
        arrival_mean_h: stats.mean_h,
        arrival_spread_h: stats.spread_h,
        earliest_h: (arrival_h + lo).rem_euclid(24.0),
        latest_h: (arrival_h + hi).rem_euclid(24.0),
        weekday_counts,
        days,
        main_weekday,
        day_kind,
        energy_kwh: median(idx.iter().map(|&i| feats[i].energy_kwh).collect()),
        duration_h: median(idx.iter().map(|&i| feats[i].duration_h).collect()),
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
        assert!(h[0].earliest_h > 23.0 && h[0].latest_h < 1.0, "{h:?}");
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
