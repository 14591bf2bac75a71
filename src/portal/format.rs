//! Numbers, money, energy and durations as people read them: Swedish (`2,50 kr`, `1 234,5 kWh`)
//! or English (`SEK 2.50`). Presentation only: every amount comes from the domain in öre.

use super::i18n::Lang;

/// Groups the digits of a non-negative integer in threes with `sep`.
fn group(mut n: u64, sep: &str) -> String {
    let mut parts = Vec::new();
    loop {
        let rest = n / 1000;
        if rest == 0 {
            parts.push(format!("{}", n % 1000));
            break;
        }
        parts.push(format!("{:03}", n % 1000));
        n = rest;
    }
    parts.reverse();
    parts.join(sep)
}

/// A fixed-point number with `decimals` digits from an integer in `10^-decimals` units.
fn fixed(lang: Lang, scaled: i64, decimals: u32) -> String {
    let sign = if scaled < 0 { "−" } else { "" };
    let abs = scaled.unsigned_abs();
    let unit = 10u64.pow(decimals);
    let (thousands, point) = match lang {
        Lang::Sv => ("\u{a0}", ","),
        Lang::En => (",", "."),
    };
    let whole = group(abs / unit, thousands);
    if decimals == 0 {
        return format!("{sign}{whole}");
    }
    let frac = format!("{:0width$}", abs % unit, width = decimals as usize);
    format!("{sign}{whole}{point}{frac}")
}

/// Money from minor units (öre): `2,50 kr` in Swedish, `SEK 2.50` in English.
pub fn money(lang: Lang, minor: i64) -> String {
    match lang {
        Lang::Sv => format!("{}\u{a0}kr", fixed(lang, minor, 2)),
        Lang::En => format!("SEK\u{a0}{}", fixed(lang, minor, 2)),
    }
}

/// Energy from Wh as kWh with two decimals.
pub fn kwh(lang: Lang, wh: i64) -> String {
    // Round to 10 Wh, half away from zero.
    let tens = (wh + wh.signum() * 5) / 10;
    format!("{}\u{a0}kWh", fixed(lang, tens, 2))
}

/// Power from W as kW with one decimal.
pub fn kw(lang: Lang, w: i64) -> String {
    let hundreds = (w + w.signum() * 50) / 100;
    format!("{}\u{a0}kW", fixed(lang, hundreds, 1))
}

/// A share 0–1 as a whole percentage.
pub fn percent(share: f64) -> String {
    format!("{}\u{a0}%", (share * 100.0).round() as i64)
}

/// A duration as `h:mm:ss`.
pub fn clock(secs: i64) -> String {
    let s = secs.max(0);
    format!("{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

/// A duration in hours and minutes: `1 h 05 min`.
pub fn duration(secs: i64) -> String {
    let m = secs.max(0) / 60;
    if m < 60 {
        format!("{m}\u{a0}min")
    } else {
        format!("{}\u{a0}h {:02}\u{a0}min", m / 60, m % 60)
    }
}

/// An RFC 3339 UTC timestamp (as the API views serialise them) in local time,
/// `2026-12-01 07:30`. Text that is not a timestamp is shown as it is.
pub fn local_time(text: &str, tz: chrono_tz::Tz) -> String {
    match chrono::DateTime::parse_from_rfc3339(text) {
        Ok(t) => t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_reads_as_swedish_or_english() {
        assert_eq!(money(Lang::Sv, 250), "2,50\u{a0}kr");
        assert_eq!(money(Lang::Sv, 123_456), "1\u{a0}234,56\u{a0}kr");
        assert_eq!(money(Lang::Sv, 5), "0,05\u{a0}kr");
        assert_eq!(money(Lang::Sv, -1999), "−19,99\u{a0}kr");
        assert_eq!(money(Lang::En, 123_456_789), "SEK\u{a0}1,234,567.89");
    }

    #[test]
    fn energy_power_and_time_are_rounded_for_reading() {
        assert_eq!(kwh(Lang::Sv, 12_345), "12,35\u{a0}kWh");
        assert_eq!(kwh(Lang::En, 4), "0.00\u{a0}kWh");
        assert_eq!(kw(Lang::Sv, 7_360), "7,4\u{a0}kW");
        assert_eq!(percent(0.915), "92\u{a0}%");
        assert_eq!(clock(3_725), "1:02:05");
        assert_eq!(duration(59 * 60), "59\u{a0}min");
        assert_eq!(duration(65 * 60), "1\u{a0}h 05\u{a0}min");
        assert_eq!(
            local_time("2026-07-01T10:00:00Z", chrono_tz::Europe::Stockholm),
            "2026-07-01 12:00"
        );
    }
}
