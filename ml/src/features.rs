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

/// Weighted circular median: the observed hour minimising the weighted sum of circular
/// distances to all observations (ties: the earliest such observation). `None` when empty.
///
/// Quadratic in the number of hours, which is a single driver's history here.
pub fn weighted_circular_median(hours: &[f64], weights: &[f64]) -> Option<f64> {
    let mut best: Option<(f64, f64)> = None;
    for &c in hours {
        let cost: f64 = hours
            .iter()
            .zip(weights)
            .map(|(&h, &w)| w * circular_distance_h(c, h))
            .sum();
        if best.is_none_or(|(b, _)| cost < b - 1e-12) {
            best = Some((cost, c));
        }
    }
    best.map(|(_, c)| c)
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
    fn hour_of_week_counts_from_monday_midnight() {
        assert_eq!(hour_of_week(at(2024, 1, 1, 0, 10)), 0); // a Monday
        assert_eq!(hour_of_week(at(2024, 1, 2, 18, 59)), 24 + 18);
        assert_eq!(hour_of_week(at(2024, 1, 7, 23, 0)), 167);
        assert!(is_weekend(at(2024, 1, 6, 12, 0)) && !is_weekend(at(2024, 1, 5, 12, 0)));
    }
}
