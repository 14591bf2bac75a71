//! Short Swedish summaries of tariffs for the app, prices shown including VAT.
//!
//! Example: `"3,49 kr/kWh, 2,99 kr/kWh 22–06, 0,50 kr/min vid inaktivitet efter 60 min från
//! start, 25 % moms ingår"`. Components appear in tariff order; a component with conditions shows
//! them right after its price, and an unconditional component that follows a conditional one of
//! the same kind is marked "i övrigt" (OCPI: the first matching element wins).

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::tariff::{ComponentKind, Restrictions, ValidTariff};

/// One priced component as the app shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SummaryItem {
    /// What is charged for.
    pub kind: ComponentKind,
    /// Price including VAT in major units, rounded to the öre, per `unit`.
    #[schema(value_type = String, example = "3.49")]
    pub price_incl_vat: Decimal,
    /// `kWh`, `min`, `h` or `session`.
    pub unit: String,
    /// When it applies, in Swedish (empty: always).
    pub conditions: String,
    /// The item as Swedish text, e.g. `2,99 kr/kWh 22–06`.
    pub text: String,
}

/// A tariff as the app shows it: the one-line text and its items.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TariffSummary {
    /// The one-line Swedish summary.
    pub text: String,
    /// VAT rate in percent.
    #[schema(value_type = String, example = "25")]
    pub vat_rate: Decimal,
    /// ISO 4217 currency code.
    pub currency: String,
    /// The priced components (zero prices are left out).
    pub items: Vec<SummaryItem>,
}

/// The one-line Swedish summary of a tariff.
pub fn summary_text(tariff: &ValidTariff) -> String {
    summarize(tariff).text
}

/// The structured Swedish summary of a tariff.
pub fn summarize(tariff: &ValidTariff) -> TariffSummary {
    let vat_factor = Decimal::ONE + tariff.vat_rate_percent() / Decimal::ONE_HUNDRED;
    let symbol = currency_symbol(tariff.currency());
    let mut items = Vec::new();
    let mut restricted_seen: Vec<ComponentKind> = Vec::new();
    for element in tariff.elements() {
        let conditions = element
            .restrictions
            .as_ref()
            .map(describe_restrictions)
            .unwrap_or_default();
        for c in &element.price_components {
            let incl = c.price * vat_factor;
            let (price, unit) = match c.kind {
                ComponentKind::Energy => (incl, "kWh"),
                ComponentKind::Flat => (incl, "session"),
                ComponentKind::Time | ComponentKind::ParkingTime => {
                    let per_min = incl / Decimal::from(60);
                    if per_min.normalize().scale() <= 2 {
                        (per_min, "min")
                    } else {
                        (incl, "h")
                    }
                }
            };
            let price = price.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
            let conditions = if conditions.is_empty() && restricted_seen.contains(&c.kind) {
                "i övrigt".to_owned()
            } else {
                conditions.clone()
            };
            if !conditions.is_empty() && element.restrictions.is_some() {
                restricted_seen.push(c.kind);
            }
            if price.is_zero() {
                continue;
            }
            let amount = format!("{} {symbol}", sv_decimal(price, 2));
            let mut text = match c.kind {
                ComponentKind::Energy => format!("{amount}/kWh"),
                ComponentKind::Flat => format!("startavgift {amount}"),
                ComponentKind::Time => format!("{amount}/{unit} laddtid"),
                ComponentKind::ParkingTime => format!("{amount}/{unit} vid inaktivitet"),
            };
            if !conditions.is_empty() {
                text.push(' ');
                text.push_str(&conditions);
            }
            items.push(SummaryItem {
                kind: c.kind,
                price_incl_vat: price,
                unit: unit.to_owned(),
                conditions,
                text,
            });
        }
    }
    let mut parts: Vec<String> = items.iter().map(|i| i.text.clone()).collect();
    if parts.is_empty() {
        parts.push("gratis".to_owned());
    }
    parts.push(format!(
        "{} % moms ingår",
        sv_decimal(tariff.vat_rate_percent().normalize(), 0)
    ));
    TariffSummary {
        text: parts.join(", "),
        vat_rate: tariff.vat_rate_percent(),
        currency: tariff.currency().to_owned(),
        items,
    }
}

fn currency_symbol(code: &str) -> &str {
    match code {
        "SEK" | "NOK" | "DKK" => "kr",
        "EUR" => "€",
        other => other,
    }
}

/// Swedish number formatting: decimal comma, at least `min_dp` decimals, space-grouped thousands.
fn sv_decimal(d: Decimal, min_dp: u32) -> String {
    let mut d = d.normalize();
    if d.scale() < min_dp {
        d.rescale(min_dp);
    }
    let text = d.abs().to_string();
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push('\u{a0}');
        }
        grouped.push(ch);
    }
    let sign = if d.is_sign_negative() && !d.is_zero() {
        "-"
    } else {
        ""
    };
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped},{frac}")
    }
}

fn hour_label(t: chrono::NaiveTime) -> String {
    use chrono::Timelike;
    if t.minute() == 0 {
        format!("{:02}", t.hour())
    } else {
        t.format("%H:%M").to_string()
    }
}

fn weekday_sv(d: chrono::Weekday) -> &'static str {
    use chrono::Weekday::*;
    match d {
        Mon => "mån",
        Tue => "tis",
        Wed => "ons",
        Thu => "tor",
        Fri => "fre",
        Sat => "lör",
        Sun => "sön",
    }
}

fn describe_restrictions(r: &Restrictions) -> String {
    let mut parts = Vec::new();
    match (r.start_time, r.end_time) {
        (Some(s), Some(e)) => parts.push(format!("{}–{}", hour_label(s), hour_label(e))),
        (Some(s), None) => parts.push(format!("från {}", hour_label(s))),
        (None, Some(e)) => parts.push(format!("före {}", hour_label(e))),
        (None, None) => {}
    }
    if !r.day_of_week.is_empty() {
        let mut days = r.day_of_week.clone();
        days.sort_by_key(chrono::Weekday::num_days_from_monday);
        let idx: Vec<u32> = days.iter().map(|d| d.num_days_from_monday()).collect();
        let contiguous = idx.windows(2).all(|w| w[1] == w[0] + 1);
        if days.len() > 2 && contiguous {
            parts.push(format!(
                "{}–{}",
                weekday_sv(days[0]),
                weekday_sv(days[days.len() - 1])
            ));
        } else {
            parts.push(
                days.iter()
                    .map(|d| weekday_sv(*d))
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        }
    }
    if let Some(d) = r.start_date {
        parts.push(format!("från {d}"));
    }
    if let Some(d) = r.end_date {
        parts.push(format!("till {d}"));
    }
    if let Some(p) = r.min_power {
        parts.push(format!("vid minst {} kW", sv_decimal(p, 0)));
    }
    if let Some(p) = r.max_power {
        parts.push(format!("under {} kW", sv_decimal(p, 0)));
    }
    if let Some(a) = r.min_current {
        parts.push(format!("vid minst {} A", sv_decimal(a, 0)));
    }
    if let Some(a) = r.max_current {
        parts.push(format!("under {} A", sv_decimal(a, 0)));
    }
    if let Some(k) = r.min_kwh {
        parts.push(format!("efter {} kWh", sv_decimal(k, 0)));
    }
    if let Some(k) = r.max_kwh {
        parts.push(format!("de första {} kWh", sv_decimal(k, 0)));
    }
    if let Some(s) = r.min_duration {
        parts.push(format!("efter {} från start", duration_sv(s)));
    }
    if let Some(s) = r.max_duration {
        parts.push(format!("de första {}", duration_sv(s)));
    }
    parts.join(" ")
}

fn duration_sv(secs: u64) -> String {
    if secs.is_multiple_of(3600) && secs >= 3 * 3600 {
        format!("{} h", secs / 3600)
    } else if secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::billing::tariff::validate_tariff;
    use serde_json::json;

    #[test]
    fn summary_shows_prices_including_vat_with_decimal_comma() {
        // 2,792 × 1,25 = 3,49 kr/kWh; 2,392 × 1,25 = 2,99; parking 24 kr/h × 1,25 = 30 kr/h
        // = 0,50 kr/min.
        let t = validate_tariff(
            &json!({"elements": [
                {"price_components": [{"type": "ENERGY", "price": 2.392, "step_size": 1}],
                 "restrictions": {"start_time": "22:00", "end_time": "06:00"}},
                {"price_components": [{"type": "ENERGY", "price": 2.792, "step_size": 1}]},
                {"price_components": [{"type": "PARKING_TIME", "price": 24, "step_size": 60}],
                 "restrictions": {"min_duration": 3600}}
            ]}),
            "SEK",
            Decimal::from(25),
        )
        .unwrap();
        assert_eq!(
            summary_text(&t),
            "2,99 kr/kWh 22–06, 3,49 kr/kWh i övrigt, \
             0,50 kr/min vid inaktivitet efter 60 min från start, 25 % moms ingår"
        );
        let s = summarize(&t);
        assert_eq!(s.items[2].unit, "min");
        assert_eq!(s.items[2].price_incl_vat, Decimal::new(50, 2));
    }

    #[test]
    fn summary_uses_hours_when_a_minute_price_is_not_whole_ore_and_formats_flat_fees() {
        // At 12,5 % VAT: TIME 10 kr/h excl. → 11,25 kr/h incl. = 0,1875 kr/min, not whole öre,
        // so it is shown per hour.
        let t = validate_tariff(
            &json!({"elements": [{"price_components": [
                {"type": "FLAT", "price": 4, "step_size": 1},
                {"type": "TIME", "price": 10, "step_size": 1}
            ], "restrictions": {"min_power": 50, "day_of_week": ["SATURDAY", "SUNDAY"]}}]}),
            "SEK",
            Decimal::new(125, 1),
        )
        .unwrap();
        // 4 × 1,125 = 4,50; 10 × 1,125 = 11,25 kr/h.
        assert_eq!(
            summary_text(&t),
            "startavgift 4,50 kr lör, sön vid minst 50 kW, 11,25 kr/h laddtid lör, sön vid minst 50 kW, \
             12,5 % moms ingår"
        );
    }

    #[test]
    fn swedish_number_formatting() {
        assert_eq!(sv_decimal(Decimal::new(111_694, 2), 2), "1\u{a0}116,94");
        assert_eq!(sv_decimal(Decimal::from(25), 0), "25");
        assert_eq!(sv_decimal(Decimal::new(5, 1), 2), "0,50");
    }
}
