//! Exact money: decimals in computation, integer minor units (öre) in storage and in the API.
//!
//! Every currency is treated as having two decimals (öre, cent). Rounding to the minor unit is
//! always half away from zero, the commercial rounding Skatteverket uses for VAT.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Minor units per major unit (öre per krona).
const MINOR_PER_MAJOR: i64 = 100;

/// An amount of money in minor units with its VAT split: the API contract
/// `{currency, excl_vat, vat, total}` used for session costs and invoices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Money {
    /// ISO 4217 code, e.g. `SEK`.
    pub currency: String,
    /// Amount excluding VAT, in minor units (öre).
    pub excl_vat: i64,
    /// VAT, in minor units, computed on `excl_vat` and rounded to the minor unit.
    pub vat: i64,
    /// `excl_vat + vat`, in minor units.
    pub total: i64,
}

/// Amounts that do not fit an `i64` of minor units.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("amount out of range")]
pub struct AmountOutOfRange;

impl Money {
    /// Money from an amount excluding VAT: VAT is computed on the whole amount at
    /// `vat_rate_percent` (e.g. 25) and rounded to the öre, half away from zero.
    ///
    /// Use this on the *sum* of lines or sessions, never sum per-line VAT.
    pub fn from_excl_vat(
        currency: impl Into<String>,
        excl_vat: i64,
        vat_rate_percent: Decimal,
    ) -> Result<Self, AmountOutOfRange> {
        let vat = vat_on(excl_vat, vat_rate_percent)?;
        let total = excl_vat.checked_add(vat).ok_or(AmountOutOfRange)?;
        Ok(Self {
            currency: currency.into(),
            excl_vat,
            vat,
            total,
        })
    }

    /// Zero in `currency`.
    pub fn zero(currency: impl Into<String>) -> Self {
        Self {
            currency: currency.into(),
            excl_vat: 0,
            vat: 0,
            total: 0,
        }
    }
}

/// VAT in minor units on `excl_vat` minor units at `rate_percent`, rounded half away from zero.
pub fn vat_on(excl_vat: i64, rate_percent: Decimal) -> Result<i64, AmountOutOfRange> {
    let exact = Decimal::from(excl_vat)
        .checked_mul(rate_percent)
        .and_then(|v| v.checked_div(Decimal::ONE_HUNDRED))
        .ok_or(AmountOutOfRange)?;
    round_minor_units(exact)
}

/// Rounds an exact amount of *minor* units to a whole minor unit, half away from zero.
fn round_minor_units(minor: Decimal) -> Result<i64, AmountOutOfRange> {
    i64::try_from(minor.round_dp_with_strategy(0, RoundingStrategy::MidpointAwayFromZero))
        .map_err(|_| AmountOutOfRange)
}

/// Converts an exact amount in *major* units (kronor) to minor units, half away from zero.
pub fn to_minor(major: Decimal) -> Result<i64, AmountOutOfRange> {
    let minor = major
        .checked_mul(Decimal::from(MINOR_PER_MAJOR))
        .ok_or(AmountOutOfRange)?;
    round_minor_units(minor)
}

/// Converts minor units to an exact major-unit decimal (`12345` → `123.45`).
pub fn to_major(minor: i64) -> Decimal {
    Decimal::new(minor, 2)
}

/// Rounds exact line amounts (major units) to minor units so that the lines sum exactly to the
/// rounded total of the exact amounts. Returns `(total, lines)`.
///
/// Each line is first rounded half away from zero; if the rounded lines then miss the rounded
/// total (at most half an öre per line can accumulate), the difference is moved one öre at a
/// time to the lines whose rounding moved them furthest in the other direction (largest
/// remainder method; ties go to the earlier line). Every line thus stays within one öre of its
/// exact value, and a line with a non-negative exact amount never becomes negative.
pub fn allocate(exact_major: &[Decimal]) -> Result<(i64, Vec<i64>), AmountOutOfRange> {
    let hundred = Decimal::from(MINOR_PER_MAJOR);
    let mut exact_minor = Vec::with_capacity(exact_major.len());
    let mut sum = Decimal::ZERO;
    for amount in exact_major {
        let minor = amount.checked_mul(hundred).ok_or(AmountOutOfRange)?;
        sum = sum.checked_add(minor).ok_or(AmountOutOfRange)?;
        exact_minor.push(minor);
    }
    let total = round_minor_units(sum)?;
    let mut lines = exact_minor
        .iter()
        .map(|m| round_minor_units(*m))
        .collect::<Result<Vec<_>, _>>()?;
    let rounded_sum = lines
        .iter()
        .try_fold(0i64, |acc, l| acc.checked_add(*l))
        .ok_or(AmountOutOfRange)?;
    let mut diff = total.checked_sub(rounded_sum).ok_or(AmountOutOfRange)?;
    // The remainder of each line: how much its rounding took away (positive) or added.
    // Each line is within half a minor unit of its exact amount, so this cannot overflow.
    let remainder = |i: usize, lines: &[i64]| exact_minor[i] - Decimal::from(lines[i]);
    while diff != 0 {
        let pick = (0..lines.len()).reduce(|best, i| {
            let (r_best, r_i) = (remainder(best, &lines), remainder(i, &lines));
            let better = if diff > 0 { r_i > r_best } else { r_i < r_best };
            if better {
                i
            } else {
                best
            }
        });
        let Some(i) = pick else { break };
        let step = diff.signum();
        lines[i] = lines[i].checked_add(step).ok_or(AmountOutOfRange)?;
        diff -= step;
    }
    Ok((total, lines))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn skatteverket_example_4467_75_at_25_percent_is_1116_94() {
        // 4 467,75 kr × 25 % = 1 116,9375 kr → rounded to the öre: 1 116,94 kr.
        let money = Money::from_excl_vat("SEK", 446_775, d("25")).unwrap();
        assert_eq!(money.vat, 111_694);
        assert_eq!(money.total, 446_775 + 111_694);
    }

    #[test]
    fn vat_rounds_half_away_from_zero() {
        // 0,02 kr × 25 % = 0,005 kr → 0,01 kr (half away from zero, not to even).
        assert_eq!(vat_on(2, d("25")).unwrap(), 1);
        // 0,06 kr × 25 % = 0,015 kr → 0,02 kr.
        assert_eq!(vat_on(6, d("25")).unwrap(), 2);
        // 0,01 kr × 12 % = 0,0012 kr → 0,00 kr.
        assert_eq!(vat_on(1, d("12")).unwrap(), 0);
        assert_eq!(vat_on(-2, d("25")).unwrap(), -1);
    }

    #[test]
    fn to_minor_rounds_half_away_from_zero() {
        assert_eq!(to_minor(d("1.005")).unwrap(), 101);
        assert_eq!(to_minor(d("1.0049999")).unwrap(), 100);
        assert_eq!(to_major(12_345), d("123.45"));
    }

    #[test]
    fn allocate_moves_the_rounding_difference_to_the_lines_that_lost_most() {
        // Three lines of 0,005 kr: each rounds up to 0,01 (sum 0,03) but the total 0,015 rounds
        // to 0,02, so one line gives back its öre; the first of the tied lines is chosen.
        let (total, lines) = allocate(&[d("0.005"), d("0.005"), d("0.005")]).unwrap();
        assert_eq!(total, 2);
        assert_eq!(lines, vec![0, 1, 1]);

        // 0,004 × 3 = 0,012 → total 0,01; each line rounds to 0 → one line gets the öre.
        let (total, lines) = allocate(&[d("0.004"), d("0.0041"), d("0.004")]).unwrap();
        assert_eq!(total, 1);
        assert_eq!(lines, vec![0, 1, 0]);
    }

    #[test]
    fn allocate_of_nothing_is_zero() {
        assert_eq!(allocate(&[]).unwrap(), (0, vec![]));
    }
}
