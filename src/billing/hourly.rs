//! The energy price of a tariff for each hour of the week, as the recommender needs it.
//!
//! [`energy_price_by_hour_of_week`] answers, for each of the 168 local hours of a week (slot 0 is
//! Monday 00:00–01:00, slot 167 Sunday 23:00–24:00 — the convention of
//! `laddkoll_ml::features::hour_of_week`), what one kWh costs **including VAT**, in minor units
//! (öre), for a session that starts and charges at the top of that hour.
//!
//! # How an hour is priced
//!
//! OCPI's rule: for each dimension, the **first** element whose restrictions all hold applies.
//! Here only the ENERGY dimension matters, so the price is that of the ENERGY component of the
//! first matching element that has one (a matching element without ENERGY does not stop the
//! search, as in the engine). Restrictions are evaluated for the state of a session at its start,
//! at local time `HH:00` of the slot:
//!
//! * `start_time`/`end_time`: `start_time ≤ t < end_time`; when `end_time` is before
//!   `start_time` the range wraps midnight (`22:00`–`06:00` holds from 22:00 to 05:59); only one
//!   of them bounds one side. A boundary inside an hour (`06:30`) counts from the next slot on:
//!   the slot takes the price in force at its start.
//! * `day_of_week`: the weekday of the slot itself (a `22:00`–`06:00` element restricted to
//!   `FRIDAY` holds Friday 22–24 and Friday 00–06, not Saturday 00–06 — as in the engine, which
//!   evaluates restrictions at each period's start).
//! * Energy and duration so far are zero at session start: `min_kwh`/`min_duration` hold only when
//!   they are 0, `max_kwh`/`max_duration` when they are above 0. An element priced "after the
//!   first 10 kWh" or "after 2 hours" is therefore ignored, and one "for the first 10 kWh" applies.
//! * Power is not known before a car charges, so a power restriction holds only when it is
//!   trivially true for every car: `min_power` of 0. An element with a positive `min_power` (a
//!   fast-charging surcharge) or any `max_power` is ignored: the table shows the price that does
//!   not depend on the car.
//! * `min_current`/`max_current` never exclude (no current is metered; same as the pricing).
//! * `start_date`/`end_date`: the table is for a typical week, not a date, so an element limited
//!   to dates (a campaign) is ignored and the regular price is shown.
//!
//! A slot where no element with an ENERGY component matches is `None` (the tariff does not price
//! energy then: it may charge by time only, or nothing at all).
//!
//! Money is exact: `price × (1 + VAT / 100) × 100` in [`Decimal`], rounded half away from zero to
//! whole öre.

use chrono::{NaiveTime, Weekday};
use rust_decimal::{Decimal, RoundingStrategy};

use super::tariff::{ComponentKind, Restrictions, ValidTariff};

/// Hours in a week: the length of the table.
pub const HOURS_PER_WEEK: usize = 168;

/// Energy price per kWh including VAT, in minor units, for each local hour of the week
/// (0 = Monday 00:00, 167 = Sunday 23:00); `None` where the tariff prices no energy. See the
/// module documentation for how restrictions are evaluated.
pub fn energy_price_by_hour_of_week(tariff: &ValidTariff) -> [Option<i64>; HOURS_PER_WEEK] {
    let vat_factor = Decimal::ONE + tariff.vat_rate_percent() / Decimal::ONE_HUNDRED;
    let mut out = [None; HOURS_PER_WEEK];
    for (slot, price) in out.iter_mut().enumerate() {
        let weekday = weekday_of(slot / 24);
        let Some(time) = NaiveTime::from_hms_opt((slot % 24) as u32, 0, 0) else {
            continue;
        };
        *price = tariff
            .elements()
            .iter()
            .filter(|e| {
                e.restrictions
                    .as_ref()
                    .is_none_or(|r| holds_at_session_start(r, weekday, time))
            })
            .find_map(|e| {
                e.price_components
                    .iter()
                    .find(|c| c.kind == ComponentKind::Energy)
            })
            .and_then(|c| minor_incl_vat(c.price, vat_factor));
    }
    out
}

/// `price` (major units, excl. VAT) × `vat_factor` in whole minor units, half away from zero.
fn minor_incl_vat(price: Decimal, vat_factor: Decimal) -> Option<i64> {
    use rust_decimal::prelude::ToPrimitive;
    price
        .checked_mul(vat_factor)?
        .checked_mul(Decimal::ONE_HUNDRED)?
        .round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero)
        .to_i64()
}

fn weekday_of(day: usize) -> Weekday {
    use Weekday::*;
    [Mon, Tue, Wed, Thu, Fri, Sat, Sun][day % 7]
}

/// Whether `r` holds for a session starting at local `weekday`/`time` (see the module docs).
fn holds_at_session_start(r: &Restrictions, weekday: Weekday, time: NaiveTime) -> bool {
    let time_ok = match (r.start_time, r.end_time) {
        (None, None) => true,
        (Some(s), None) => time >= s,
        (None, Some(e)) => time < e,
        (Some(s), Some(e)) if s < e => s <= time && time < e,
        (Some(s), Some(e)) => time >= s || time < e,
    };
    let day_ok = r.day_of_week.is_empty() || r.day_of_week.contains(&weekday);
    let dates_ok = r.start_date.is_none() && r.end_date.is_none();
    let zero = Decimal::ZERO;
    let energy_ok = r.min_kwh.is_none_or(|m| m <= zero) && r.max_kwh.is_none_or(|m| m > zero);
    let duration_ok = r.min_duration.is_none_or(|m| m == 0) && r.max_duration.is_none_or(|m| m > 0);
    let power_ok = r.min_power.is_none_or(|m| m <= zero) && r.max_power.is_none();
    time_ok && day_ok && dates_ok && energy_ok && duration_ok && power_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::{price, validate_tariff, SessionUsage};
    use chrono::TimeZone;
    use serde_json::{json, Value};

    fn tariff(elements: Value, vat: i64) -> ValidTariff {
        validate_tariff(
            &json!({"currency": "SEK", "elements": elements}),
            "SEK",
            Decimal::from(vat),
        )
        .unwrap()
    }

    fn energy(price: f64) -> Value {
        json!({"type": "ENERGY", "price": price, "step_size": 1})
    }

    /// Off-peak 22:00–06:00 at 1.12 kr excl. VAT, peak 2.00 kr; 25 % VAT.
    fn peak_off_peak() -> ValidTariff {
        tariff(
            json!([
                {"price_components": [energy(1.12)],
                 "restrictions": {"start_time": "22:00", "end_time": "06:00"}},
                {"price_components": [energy(2.00)]}
            ]),
            25,
        )
    }

    #[test]
    fn off_peak_wraps_midnight_and_vat_is_included() {
        let t = energy_price_by_hour_of_week(&peak_off_peak());
        // 1.12 × 1.25 = 1.40 kr = 140 öre; 2.00 × 1.25 = 250 öre.
        for day in 0..7 {
            for hour in 0..24 {
                let want = if !(6..22).contains(&hour) { 140 } else { 250 };
                assert_eq!(t[day * 24 + hour], Some(want), "day {day} hour {hour}");
            }
        }
        assert_eq!(t[5], Some(140)); // Monday 05:00–06:00
        assert_eq!(t[6], Some(250)); // Monday 06:00: end_time is exclusive
        assert_eq!(t[21], Some(250)); // Monday 21:00
        assert_eq!(t[22], Some(140)); // Monday 22:00
        assert_eq!(t[167], Some(140)); // Sunday 23:00
    }

    #[test]
    fn a_weekday_only_element_applies_on_its_days_only() {
        // Weekdays 07:00–19:00 peak 3.00 kr; otherwise 1.50 kr; VAT 25 %.
        let t = energy_price_by_hour_of_week(&tariff(
            json!([
                {"price_components": [energy(3.00)],
                 "restrictions": {"start_time": "07:00", "end_time": "19:00",
                                  "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"]}},
                {"price_components": [energy(1.50)]}
            ]),
            25,
        ));
        assert_eq!(t[7], Some(375)); // Monday 07:00: 3.00 × 1.25
        assert_eq!(t[6], Some(188)); // Monday 06:00: 1.875 → 188 (half away from zero)
        assert_eq!(t[4 * 24 + 18], Some(375)); // Friday 18:00
        assert_eq!(t[4 * 24 + 19], Some(188)); // Friday 19:00
        assert_eq!(t[5 * 24 + 12], Some(188)); // Saturday noon
        assert_eq!(t[6 * 24 + 8], Some(188)); // Sunday 08:00
        let peak = t.iter().filter(|p| **p == Some(375)).count();
        assert_eq!(peak, 5 * 12);
    }

    #[test]
    fn day_of_week_is_that_of_the_slot_even_in_a_wrapping_range() {
        // Friday night 22–06 is cheap; the early hours of Saturday are a Saturday, not Friday.
        let t = energy_price_by_hour_of_week(&tariff(
            json!([
                {"price_components": [energy(1.00)],
                 "restrictions": {"start_time": "22:00", "end_time": "06:00", "day_of_week": ["FRIDAY"]}},
                {"price_components": [energy(2.00)]}
            ]),
            0,
        ));
        assert_eq!(t[4 * 24 + 22], Some(100)); // Friday 22:00
        assert_eq!(t[4 * 24 + 3], Some(100)); // Friday 03:00
        assert_eq!(t[5 * 24 + 3], Some(200)); // Saturday 03:00
    }

    #[test]
    fn no_energy_component_gives_none() {
        let t = energy_price_by_hour_of_week(&tariff(
            json!([{"price_components": [
                {"type": "TIME", "price": 12, "step_size": 60},
                {"type": "FLAT", "price": 5, "step_size": 1}
            ]}]),
            25,
        ));
        assert!(t.iter().all(Option::is_none));
        // Energy priced only at night: the day slots are None.
        let t = energy_price_by_hour_of_week(&tariff(
            json!([
                {"price_components": [energy(1.00)],
                 "restrictions": {"start_time": "22:00", "end_time": "06:00"}},
                {"price_components": [{"type": "TIME", "price": 12, "step_size": 60}]}
            ]),
            25,
        ));
        assert_eq!(t[23], Some(125));
        assert_eq!(t[12], None);
    }

    #[test]
    fn first_match_is_per_dimension_and_session_start_restrictions_are_respected() {
        let t = energy_price_by_hour_of_week(&tariff(
            json!([
                // matches everywhere but has no ENERGY: the search goes on
                {"price_components": [{"type": "FLAT", "price": 1, "step_size": 1}]},
                // fast-charging surcharge: depends on the car, ignored
                {"price_components": [energy(5.00)], "restrictions": {"min_power": 50}},
                // AC only: depends on the car, ignored
                {"price_components": [energy(4.00)], "restrictions": {"max_power": 22}},
                // after the first 20 kWh: not at session start
                {"price_components": [energy(3.00)], "restrictions": {"min_kwh": 20}},
                // after an hour: not at session start
                {"price_components": [energy(2.90)], "restrictions": {"min_duration": 3600}},
                // a campaign limited to dates: not a typical week
                {"price_components": [energy(0.50)], "restrictions": {"start_date": "2025-01-01"}},
                // the first 10 kWh, with trivially true minimums: applies
                {"price_components": [energy(2.00)],
                 "restrictions": {"max_kwh": 10, "min_kwh": 0, "min_power": 0, "max_duration": 7200,
                                  "max_current": 16}},
                {"price_components": [energy(2.50)]}
            ]),
            25,
        ));
        assert!(t.iter().all(|p| *p == Some(250)), "{t:?}");
    }

    #[test]
    fn rounding_is_exact_and_half_away_from_zero() {
        // 0.9996 × 1.25 = 124.95 öre → 125; 0.9992 × 1.25 = 124.9 → 125;
        // 0.9956 × 1.25 = 124.45 → 124; 0.0036 × 1.25 = 0.45 → 0.
        // Midpoints: 1.012 × 1.25 = 126.5 → 127 (not 126, to even); 1.004 × 1.25 = 125.5 → 126.
        for (p, want) in [
            (0.9996, 125),
            (0.9992, 125),
            (0.9956, 124),
            (0.0036, 0),
            (1.012, 127),
            (1.004, 126),
        ] {
            let t = energy_price_by_hour_of_week(&tariff(
                json!([{"price_components": [energy(p)]}]),
                25,
            ));
            assert_eq!(t[0], Some(want), "{p}");
        }
        // 6 % VAT on 1.025 kr = 108.65 öre → 109.
        let t = energy_price_by_hour_of_week(&tariff(
            json!([{"price_components": [energy(1.025)]}]),
            6,
        ));
        assert_eq!(t[100], Some(109));
    }

    #[test]
    fn agrees_with_the_pricing_engine_for_every_hour() {
        // A session of 1 kWh in the first ten minutes of each hour of a January week in
        // Stockholm (no DST), priced by the engine: the energy line's unit price, with VAT.
        let tariff = tariff(
            json!([
                {"price_components": [energy(1.12)],
                 "restrictions": {"start_time": "22:00", "end_time": "06:00", "day_of_week": ["SATURDAY", "SUNDAY"]}},
                {"price_components": [energy(1.4)],
                 "restrictions": {"start_time": "22:00", "end_time": "06:00"}},
                {"price_components": [energy(2.00)]}
            ]),
            25,
        );
        let table = energy_price_by_hour_of_week(&tariff);
        let tz = chrono_tz::Europe::Stockholm;
        let monday = chrono::NaiveDate::from_ymd_opt(2025, 1, 6).unwrap();
        for (slot, want) in table.iter().enumerate() {
            let local = (monday + chrono::Days::new((slot / 24) as u64))
                .and_hms_opt((slot % 24) as u32, 0, 0)
                .unwrap();
            let start = tz.from_local_datetime(&local).unwrap().to_utc();
            let usage = SessionUsage {
                start,
                stop: start + chrono::Duration::minutes(10),
                meter_start_wh: 0,
                meter_stop_wh: 1000,
                samples: Vec::new(),
                state_changes: Vec::new(),
            };
            let priced = price(&tariff, tz, &usage).unwrap();
            let lines: Vec<_> = priced
                .lines
                .iter()
                .filter(|l| l.kind == ComponentKind::Energy)
                .collect();
            assert_eq!(lines.len(), 1, "slot {slot}: {lines:?}");
            let engine = minor_incl_vat(lines[0].unit_price_excl_vat, Decimal::new(125, 2));
            assert_eq!(*want, engine, "slot {slot}");
        }
        assert_eq!(table[5 * 24 + 23], Some(140)); // Saturday 23:00
        assert_eq!(table[4 * 24 + 23], Some(175)); // Friday 23:00
        assert_eq!(table[12], Some(250));
    }
}
