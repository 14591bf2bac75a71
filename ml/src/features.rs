//! Per-session features and circular statistics on the 24-hour clock.
//!
//! Arrival times are angles: 23:30 and 00:30 are one hour apart, not 23. Every mean, spread,
//! median and error here is taken on that circle.

use std::f64::consts::TAU;

use chrono::{Datelike, NaiveDateTime, Timelike};
use serde::{Deserialize, Serialize};

use crate::data::{LocationId, Session, HOURS_PER_WEEK};

/// Fractional hour of the day, 0.0..24.0.
pub fn hour_of_day(t: NaiveDateTime) -> f64 {
    f64::from(t.num_seconds_from_midnight()) / 3600.0
}

/// Day of the week, 0 = Monday … 6 = Sunday.
pub fn weekday_index(t: NaiveDateTime) -> usize {
    t.weekday().num_days_from_monday() as usize
}

/// Whether a local time falls on Saturday or Sunday.
pub fn is_weekend(t: NaiveDateTime) -> bool {
    weekday_index(t) >= 5
}

/// Hour-of-week slot, 0 = Monday 00:00–01:00 … 167 = Sunday 23:00–24:00.
pub fn hour_of_week(t: NaiveDateTime) -> usize {
    weekday_index(t) * 24 + t.hour() as usize
}

/// Distance in hours between two clock hours on the 24-hour circle, 0.0..=12.0.
pub fn circular_distance_h(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(24.0);
    d.min(24.0 - d)
}

/// Mean direction and dispersion of clock hours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CircularStats {
    /// Circular mean hour, 0.0..24.0.
    pub mean_h: f64,
    /// Circular standard deviation in hours, `sqrt(-2 ln R)` scaled to the clock.
    pub spread_h: f64,
    /// Mean resultant length R, 0 (spread all round) ..= 1 (all equal).
    pub resultant: f64,
}

/// Weighted circular mean and spread of clock hours; `None` without positive weight.
pub fn circular_stats(hours: &[f64], weights: &[f64]) -> Option<CircularStats> {
    let (mut s, mut c, mut w_sum) = (0.0, 0.0, 0.0);
    for (&h, &w) in hours.iter().zip(weights) {
        let a = h / 24.0 * TAU;
        s += w * a.sin();
        c += w * a.cos();
        w_sum += w;
    }
    if w_sum <= 0.0 {
        return None;
    }
    let r = ((s / w_sum).hypot(c / w_sum)).min(1.0);
    let mean_h = if r < 1e-12 {
        // no preferred direction; any answer is as good, keep it deterministic
        0.0
    } else {
        (s.atan2(c) / TAU * 24.0).rem_euclid(24.0)
    };
    let spread_h = if r <= 1e-12 {
        12.0
    } else {
        ((-2.0 * r.ln()).max(0.0).sqrt().abs() / TAU * 24.0).min(12.0)
    };
    Some(CircularStats {
        mean_h,
        spread_h,
        resultant: r,
    })
}

/// Signed circular difference `a − b` in hours, in `[-12, 12)`: how much later `a` is than `b`.
pub fn circular_offset_h(a: f64, b: f64) -> f64 {
    (a - b + 12.0).rem_euclid(24.0) - 12.0
}

/// Weighted circular median: the observed hour minimising the weighted sum of circular
/// distances to all observations (ties: the earliest such observation in input order).
/// Observations with a weight that is not positive and finite are ignored; `None` when none is
/// left. [`weighted_circular_capped_median`] with no cap.
pub fn weighted_circular_median(hours: &[f64], weights: &[f64]) -> Option<f64> {
    weighted_circular_capped_median(hours, weights, 12.0)
}

/// The observed hour minimising the weighted sum of circular distances **capped at `cap_h`
/// hours** to all observations (ties: the earliest such observation in input order). With a
/// cap of 12 h or more this is the circular median; a smaller cap stops far observations (a
/// second routine, one-offs) from pulling the answer away from where most arrivals are, moving
/// it toward the densest part of the data. `None` without positive, finite weight.
///
/// `O(n log n)`: the hours are sorted once, copied a day earlier and a day later, and the cost
/// of each candidate is read from prefix sums over the window of `cap_h` either side of it.
pub fn weighted_circular_capped_median(hours: &[f64], weights: &[f64], cap_h: f64) -> Option<f64> {
    weighted_circular_point(hours, weights, cap_h, 0.0)
}

/// The observed hour `c` minimising `Σ wᵢ · (min(d(c, hᵢ), cap_h) + miss_penalty_h · [d(c, hᵢ) > 1])`
/// over the observations (`d` the circular distance; ties: the earliest observation in input
/// order): the capped absolute error of [`weighted_circular_capped_median`] plus a penalty, in
/// hours, for every arrival missed by more than an hour. With no penalty the absolute error
/// alone decides (the median); a penalty moves the answer toward where most arrivals fall within
/// an hour, without letting far arrivals stop pulling. `None` without positive, finite weight.
pub fn weighted_circular_point(
    hours: &[f64],
    weights: &[f64],
    cap_h: f64,
    miss_penalty_h: f64,
) -> Option<f64> {
    let cap = if cap_h.is_nan() {
        12.0
    } else {
        cap_h.clamp(0.0, 12.0)
    };
    let penalty = if miss_penalty_h.is_finite() {
        miss_penalty_h.max(0.0)
    } else {
        0.0
    };
    let mut pts: Vec<(f64, f64, usize)> = hours
        .iter()
        .zip(weights)
        .enumerate()
        .filter(|(_, (h, w))| h.is_finite() && w.is_finite() && **w > 0.0)
        .map(|(i, (&h, &w))| (h.rem_euclid(24.0), w, i))
        .collect();
    if pts.is_empty() {
        return None;
    }
    pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)));
    // the circle unrolled three times: every window of at most half a day either side of a
    // candidate in 0..24 holds each observation at most once
    let xs: Vec<(f64, f64)> = [-24.0, 0.0, 24.0]
        .iter()
        .flat_map(|&off| pts.iter().map(move |&(h, w, _)| (h + off, w)))
        .collect();
    let mut cw = Vec::with_capacity(xs.len() + 1);
    let mut cwx = Vec::with_capacity(xs.len() + 1);
    cw.push(0.0);
    cwx.push(0.0);
    for &(x, w) in &xs {
        cw.push(cw[cw.len() - 1] + w);
        cwx.push(cwx[cwx.len() - 1] + w * x);
    }
    let total: f64 = pts.iter().map(|p| p.1).sum();
    let lower = |v: f64| xs.partition_point(|&(x, _)| x < v);
    let mut best: Option<(f64, usize, f64)> = None;
    for &(c, _, idx) in &pts {
        let (i0, i1, i2) = (lower(c - cap), lower(c), lower(c + cap));
        let before = c * (cw[i1] - cw[i0]) - (cwx[i1] - cwx[i0]);
        let after = (cwx[i2] - cwx[i1]) - c * (cw[i2] - cw[i1]);
        let outside = (total - (cw[i2] - cw[i0])).max(0.0);
        let mut cost = before + after + cap * outside;
        if penalty > 0.0 {
            // weight more than an hour away (the window is closed: exactly 1 h is within)
            let (j0, j1) = (lower(c - 1.0), xs.partition_point(|&(x, _)| x <= c + 1.0));
            cost += penalty * (total - (cw[j1] - cw[j0])).max(0.0);
        }
        let better = match best {
            None => true,
            Some((b, bi, _)) => cost < b - 1e-9 || (cost <= b + 1e-9 && idx < bi),
        };
        if better {
            best = Some((cost, idx, c));
        }
    }
    best.map(|(_, _, c)| c)
}

/// Weighted quantile `q` (0..=1) of values, by the lower weighted quantile rule (the smallest
/// value whose cumulative weight reaches `q` of the total). `None` without positive weight.
pub fn weighted_quantile(values: &[f64], weights: &[f64], q: f64) -> Option<f64> {
    let mut v: Vec<(f64, f64)> = values
        .iter()
        .zip(weights)
        .filter(|(x, w)| x.is_finite() && w.is_finite() && **w > 0.0)
        .map(|(&x, &w)| (x, w))
        .collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = v.iter().map(|p| p.1).sum();
    let target = q.clamp(0.0, 1.0) * total;
    let mut acc = 0.0;
    for &(x, w) in &v {
        acc += w;
        if acc >= target - 1e-12 {
            return Some(x);
        }
    }
    v.last().map(|p| p.0)
}

/// The features of one session used for clustering and ranking.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SessionFeatures {
    /// Arrival clock hour, 0.0..24.0.
    pub arrival_h: f64,
    /// `sin` of the arrival angle on the 24-hour circle.
    pub arrival_sin: f64,
    /// `cos` of the arrival angle on the 24-hour circle.
    pub arrival_cos: f64,
    /// Day of the week of the arrival, 0 = Monday.
    pub weekday: usize,
    /// Saturday or Sunday.
    pub weekend: bool,
    /// Hour-of-week slot of the arrival.
    pub hour_of_week: usize,
    /// Plugged-in time in hours.
    pub duration_h: f64,
    /// Energy delivered in kWh.
    pub energy_kwh: f64,
    /// Where.
    pub location: LocationId,
    /// Plug-in instant as seconds since the Unix epoch (recency weights count back from the
    /// newest).
    pub start_s: i64,
}

impl SessionFeatures {
    /// Features of one session, from its local start time.
    pub fn of(s: &Session) -> Self {
        let arrival_h = hour_of_day(s.local_start);
        let angle = arrival_h / 24.0 * TAU;
        let weekday = weekday_index(s.local_start);
        Self {
            arrival_h,
            arrival_sin: angle.sin(),
            arrival_cos: angle.cos(),
            weekday,
            weekend: weekday >= 5,
            hour_of_week: hour_of_week(s.local_start) % HOURS_PER_WEEK,
            duration_h: s.duration_h(),
            energy_kwh: s.energy_kwh,
            location: s.location,
            start_s: s.start_utc.timestamp(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d)
            .unwrap()
            .and_hms_opt(h, min, 0)
            .unwrap()
    }

    #[test]
    fn circular_distance_wraps_midnight() {
        assert!((circular_distance_h(23.5, 0.5) - 1.0).abs() < 1e-12);
        assert!((circular_distance_h(0.5, 23.5) - 1.0).abs() < 1e-12);
        assert!((circular_distance_h(6.0, 18.0) - 12.0).abs() < 1e-12);
        assert!((circular_distance_h(8.0, 10.5) - 2.5).abs() < 1e-12);
    }

    #[test]
    fn circular_mean_of_hours_around_midnight_is_midnight() {
        let st = circular_stats(&[23.0, 1.0], &[1.0, 1.0]).unwrap();
        assert!(circular_distance_h(st.mean_h, 0.0) < 1e-9, "{st:?}");
        assert!(st.spread_h > 0.9 && st.spread_h < 1.1, "{st:?}");
        let same = circular_stats(&[7.0, 7.0, 7.0], &[1.0; 3]).unwrap();
        assert!((same.mean_h - 7.0).abs() < 1e-9 && same.spread_h < 1e-6);
        assert!(circular_stats(&[], &[]).is_none());
    }

    #[test]
    fn circular_median_ignores_a_far_outlier_and_respects_weights() {
        let m = weighted_circular_median(&[23.5, 0.25, 0.5, 12.0], &[1.0; 4]).unwrap();
        assert!(m == 0.25 || m == 0.5, "{m}");
        let w = weighted_circular_median(&[8.0, 17.0], &[1.0, 3.0]).unwrap();
        assert_eq!(w, 17.0);
    }

    #[test]
    fn fast_circular_median_agrees_with_the_quadratic_definition() {
        let brute = |h: &[f64], w: &[f64]| -> f64 {
            let mut best: Option<(f64, f64)> = None;
            for &c in h {
                let cost: f64 = h
                    .iter()
                    .zip(w)
                    .map(|(&x, &wi)| wi * circular_distance_h(c, x))
                    .sum();
                if best.is_none_or(|(b, _)| cost < b - 1e-9) {
                    best = Some((cost, c));
                }
            }
            best.unwrap().1
        };
        let mut seed = 7u64;
        let mut next = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 11) as f64 / (1u64 << 53) as f64
        };
        for n in 1..40 {
            let h: Vec<f64> = (0..n).map(|_| (next() * 96.0).floor() / 4.0).collect();
            let w: Vec<f64> = (0..n).map(|_| 0.1 + next()).collect();
            let fast = weighted_circular_median(&h, &w).unwrap();
            let cost = |c: f64| -> f64 {
                h.iter()
                    .zip(&w)
                    .map(|(&x, &wi)| wi * circular_distance_h(c, x))
                    .sum()
            };
            assert!(cost(fast) <= cost(brute(&h, &w)) + 1e-9, "{h:?} {w:?}");
        }
        assert_eq!(weighted_circular_median(&[5.0, 6.0], &[0.0, 0.0]), None);
    }

    #[test]
    fn a_capped_median_stays_with_the_larger_routine() {
        // 6 mornings around 8, 4 evenings around 18: the median is pulled to the mornings'
        // late edge (8.25 and 8.5 tie; the earlier observation wins); with a 2 h cap the
        // answer is the mornings' own middle
        let h = [7.5, 7.75, 8.0, 8.0, 8.25, 8.5, 17.5, 18.0, 18.0, 18.5];
        let w = [1.0; 10];
        assert_eq!(weighted_circular_median(&h, &w), Some(8.25));
        assert_eq!(weighted_circular_capped_median(&h, &w, 2.0), Some(8.0));
    }

    #[test]
    fn offsets_and_quantiles() {
        assert!((circular_offset_h(0.5, 23.5) - 1.0).abs() < 1e-12);
        assert!((circular_offset_h(23.5, 0.5) + 1.0).abs() < 1e-12);
        assert_eq!(
            weighted_quantile(&[3.0, 1.0, 2.0], &[1.0; 3], 0.5),
            Some(2.0)
        );
        assert_eq!(weighted_quantile(&[1.0, 2.0], &[1.0, 9.0], 0.1), Some(1.0));
        assert_eq!(weighted_quantile(&[1.0, 2.0], &[1.0, 9.0], 0.2), Some(2.0));
        assert_eq!(weighted_quantile(&[], &[], 0.5), None);
    }

    #[test]
    fn hour_of_week_counts_from_monday_midnight() {
        assert_eq!(hour_of_week(at(2024, 1, 1, 0, 10)), 0); // a Monday
        assert_eq!(hour_of_week(at(2024, 1, 2, 18, 59)), 24 + 18);
        assert_eq!(hour_of_week(at(2024, 1, 7, 23, 0)), 167);
        assert!(is_weekend(at(2024, 1, 6, 12, 0)) && !is_weekend(at(2024, 1, 5, 12, 0)));
    }
}
