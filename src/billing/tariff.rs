//! Tariffs: validation of operator-submitted OCPI 2.2.1 Tariff objects into a [`ValidTariff`].
//!
//! Validation is strict on purpose: a misspelt restriction (`"min_kwhh"`) silently ignored would
//! change what drivers pay, so unknown fields are rejected with the JSON path of the field. OCPI
//! features that laddkoll does not price are rejected rather than ignored: `min_price`,
//! `max_price`, `start_date_time`/`end_date_time` (tariff validity is handled by laddkoll's tariff
//! versions) and the `reservation` restriction.
//!
//! A [`ValidTariff`] serializes as `{currency, vat_rate_percent, tariff: <OCPI JSON>, snapshot}`
//! and deserializing it validates again, so a stored snapshot can never bypass the rules.

use std::collections::HashSet;
use std::str::FromStr;

use chrono::{NaiveDate, NaiveTime};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// OCPI numbers carry at most four decimals; the pricing engine rescales to that.
const OCPI_SCALE: u32 = 4;

/// The largest price of a component, excluding VAT, in major units per kWh, hour or session.
/// Far above any real tariff in any currency, and small enough that no session a charger can
/// report (registers are 32-bit Wh in OCPP 1.6; sessions last days, not years) prices beyond
/// an `i64` of minor units: 2.1 · 10⁶ kWh × 10⁶ = 2.1 · 10¹² major units.
pub const MAX_PRICE: i64 = 1_000_000;
/// The largest step size, in Wh or seconds.
pub const MAX_STEP_SIZE: u64 = 1_000_000;
/// The largest energy restriction (`min_kwh`, `max_kwh`), kWh.
pub const MAX_KWH: i64 = 1_000_000;
/// The largest power (kW) or current (A) restriction.
pub const MAX_POWER_OR_CURRENT: i64 = 100_000;
/// The largest duration restriction, seconds (400 days).
pub const MAX_DURATION_SECS: u64 = 400 * 24 * 3600;

/// An invalid tariff: the JSON path of the offending field and what is wrong with it.
/// The HTTP layer answers 422 with both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TariffError {
    /// JSON path like `elements[0].price_components[1].step_size`, or `currency` / `vat_rate`.
    pub field: String,
    /// Human-readable reason.
    pub message: String,
}

impl TariffError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The dimension a price component charges for.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    /// A fixed fee per session (OCPI `FLAT`); charged once, in the first period it applies.
    Flat,
    /// Price per kWh (OCPI `ENERGY`), step size in Wh.
    Energy,
    /// Price per hour of charging (OCPI `TIME`), step size in seconds.
    Time,
    /// Price per hour of not charging while connected (OCPI `PARKING_TIME`), step in seconds.
    ParkingTime,
}

impl ComponentKind {
    /// The OCPI `TariffDimensionType` name.
    pub fn ocpi_name(self) -> &'static str {
        match self {
            Self::Flat => "FLAT",
            Self::Energy => "ENERGY",
            Self::Time => "TIME",
            Self::ParkingTime => "PARKING_TIME",
        }
    }

    fn from_ocpi(name: &str) -> Option<Self> {
        Some(match name {
            "FLAT" => Self::Flat,
            "ENERGY" => Self::Energy,
            "TIME" => Self::Time,
            "PARKING_TIME" => Self::ParkingTime,
            _ => return None,
        })
    }
}

/// One OCPI price component, price excluding VAT in major units per kWh / hour / session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceComponent {
    /// What is charged for.
    pub kind: ComponentKind,
    /// Price excluding VAT, per kWh, per hour or per session.
    pub price: Decimal,
    /// Billing block: Wh for energy, seconds for time; 0 or 1 means no rounding up.
    pub step_size: u64,
}

/// OCPI tariff restrictions; all present conditions must hold for the element to apply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restrictions {
    /// Local time of day from which the element applies.
    pub start_time: Option<NaiveTime>,
    /// Local time of day until which the element applies (exclusive); may wrap past midnight.
    pub end_time: Option<NaiveTime>,
    /// First local date on which the element applies.
    pub start_date: Option<NaiveDate>,
    /// Local date from which the element no longer applies.
    pub end_date: Option<NaiveDate>,
    /// Energy charged in the session so far, at least (kWh).
    pub min_kwh: Option<Decimal>,
    /// Energy charged in the session so far, less than (kWh).
    pub max_kwh: Option<Decimal>,
    /// Charging current at least (A). laddkoll does not meter current, so it never excludes.
    pub min_current: Option<Decimal>,
    /// Charging current below (A). laddkoll does not meter current, so it never excludes.
    pub max_current: Option<Decimal>,
    /// Charging power at least (kW).
    pub min_power: Option<Decimal>,
    /// Charging power below (kW).
    pub max_power: Option<Decimal>,
    /// Session duration so far at least (seconds).
    pub min_duration: Option<u64>,
    /// Session duration so far below (seconds).
    pub max_duration: Option<u64>,
    /// Local weekdays on which the element applies; empty means every day.
    pub day_of_week: Vec<chrono::Weekday>,
}

/// An OCPI tariff element: price components that apply together under restrictions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TariffElement {
    /// At most one component per kind.
    pub price_components: Vec<PriceComponent>,
    /// `None` when the element always applies.
    pub restrictions: Option<Restrictions>,
}

/// Identifies the stored tariff version a price was computed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TariffRef {
    /// Tariff id as stored by the service.
    pub id: String,
    /// Immutable version of that tariff.
    pub version: i64,
}

/// A validated tariff, ready for pricing. Construct it with [`validate_tariff`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidTariff {
    currency: String,
    vat_rate_percent: Decimal,
    tariff_type: Option<String>,
    elements: Vec<TariffElement>,
    /// The canonical OCPI JSON (what [`validate_tariff`] accepted, normalized).
    ocpi: Value,
    snapshot: Option<TariffRef>,
}

impl ValidTariff {
    /// ISO 4217 currency code.
    pub fn currency(&self) -> &str {
        &self.currency
    }

    /// VAT rate in percent, e.g. 25.
    pub fn vat_rate_percent(&self) -> Decimal {
        self.vat_rate_percent
    }

    /// The OCPI tariff `type` (e.g. `REGULAR`), if given.
    pub fn tariff_type(&self) -> Option<&str> {
        self.tariff_type.as_deref()
    }

    /// The tariff elements in OCPI order (the first matching element wins per dimension).
    pub fn elements(&self) -> &[TariffElement] {
        &self.elements
    }

    /// The tariff as canonical OCPI 2.2.1 JSON (prices excluding VAT).
    pub fn ocpi_json(&self) -> &Value {
        &self.ocpi
    }

    /// The stored id/version this tariff was loaded from, if set.
    pub fn snapshot(&self) -> Option<&TariffRef> {
        self.snapshot.as_ref()
    }

    /// Marks this tariff as the stored version `id`/`version`; priced sessions will carry it.
    #[must_use]
    pub fn with_snapshot(mut self, id: impl Into<String>, version: i64) -> Self {
        self.snapshot = Some(TariffRef {
            id: id.into(),
            version,
        });
        self
    }

    /// Whether any element restricts on power (then every meter sample starts a new period).
    pub(crate) fn has_power_restrictions(&self) -> bool {
        self.restrictions()
            .any(|r| r.min_power.is_some() || r.max_power.is_some())
    }

    pub(crate) fn restrictions(&self) -> impl Iterator<Item = &Restrictions> {
        self.elements.iter().filter_map(|e| e.restrictions.as_ref())
    }
}

/// The stored form of a [`ValidTariff`].
#[derive(Serialize, Deserialize)]
struct StoredTariff {
    currency: String,
    vat_rate_percent: Decimal,
    tariff: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    snapshot: Option<TariffRef>,
}

impl Serialize for ValidTariff {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        StoredTariff {
            currency: self.currency.clone(),
            vat_rate_percent: self.vat_rate_percent,
            tariff: self.ocpi.clone(),
            snapshot: self.snapshot.clone(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ValidTariff {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let stored = StoredTariff::deserialize(deserializer)?;
        let valid = validate_tariff(&stored.tariff, &stored.currency, stored.vat_rate_percent)
            .map_err(serde::de::Error::custom)?;
        Ok(ValidTariff {
            snapshot: stored.snapshot,
            ..valid
        })
    }
}

/// Validates an OCPI 2.2.1 Tariff object submitted with its currency and VAT rate (percent).
///
/// Prices are excluding VAT. Errors name the offending field by JSON path.
pub fn validate_tariff(
    json: &Value,
    currency: &str,
    vat_rate_percent: Decimal,
) -> Result<ValidTariff, TariffError> {
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(TariffError::new(
            "currency",
            "must be an ISO 4217 code of three uppercase letters, e.g. SEK",
        ));
    }
    if vat_rate_percent < Decimal::ZERO || vat_rate_percent > Decimal::ONE_HUNDRED {
        return Err(TariffError::new(
            "vat_rate",
            "must be between 0 and 100 (percent)",
        ));
    }
    let obj = json
        .as_object()
        .ok_or_else(|| TariffError::new("tariff", "must be an OCPI Tariff object"))?;

    let mut tariff_type = None;
    for (key, value) in obj {
        match key.as_str() {
            "id" | "country_code" | "party_id" | "tariff_alt_url" | "last_updated" => {
                if !value.is_string() {
                    return Err(TariffError::new(key.clone(), "must be a string"));
                }
            }
            "tariff_alt_text" | "energy_mix" => {}
            "currency" => {
                if value.as_str() != Some(currency) {
                    return Err(TariffError::new(
                        "currency",
                        format!("the tariff's currency differs from the given currency {currency}"),
                    ));
                }
            }
            "type" => {
                let t = value.as_str().filter(|t| {
                    matches!(
                        *t,
                        "AD_HOC_PAYMENT"
                            | "PROFILE_CHEAP"
                            | "PROFILE_FAST"
                            | "PROFILE_GREEN"
                            | "REGULAR"
                    )
                });
                let t = t.ok_or_else(|| {
                    TariffError::new(
                        "type",
                        "must be one of AD_HOC_PAYMENT, PROFILE_CHEAP, PROFILE_FAST, PROFILE_GREEN, REGULAR",
                    )
                })?;
                tariff_type = Some(t.to_owned());
            }
            "elements" => {}
            "min_price" | "max_price" => {
                return Err(TariffError::new(
                    key.clone(),
                    "minimum and maximum session prices are not supported",
                ))
            }
            "start_date_time" | "end_date_time" => {
                return Err(TariffError::new(
                    key.clone(),
                    "not supported: a tariff applies from the moment it is assigned; use a new tariff version instead",
                ))
            }
            _ => return Err(TariffError::new(key.clone(), "unknown field")),
        }
    }

    let elements_json = obj
        .get("elements")
        .ok_or_else(|| TariffError::new("elements", "is required"))?
        .as_array()
        .ok_or_else(|| TariffError::new("elements", "must be an array"))?;
    if elements_json.is_empty() {
        return Err(TariffError::new(
            "elements",
            "must contain at least one element",
        ));
    }
    let elements = elements_json
        .iter()
        .enumerate()
        .map(|(i, e)| parse_element(e, &format!("elements[{i}]"), vat_rate_percent))
        .collect::<Result<Vec<_>, _>>()?;

    let ocpi = to_ocpi_json(currency, tariff_type.as_deref(), &elements);
    // The engine must accept what we accepted; a disagreement is a bug worth a clear error.
    let text = ocpi.to_string();
    ocpi_tariffs::tariff::parse_with_version(&text, ocpi_tariffs::Version::V221).map_err(|e| {
        TariffError::new(
            "tariff",
            format!("rejected by the OCPI tariff engine: {e:?}"),
        )
    })?;

    Ok(ValidTariff {
        currency: currency.to_owned(),
        vat_rate_percent: vat_rate_percent.normalize(),
        tariff_type,
        elements,
        ocpi,
        snapshot: None,
    })
}

fn parse_element(
    json: &Value,
    path: &str,
    vat_rate: Decimal,
) -> Result<TariffElement, TariffError> {
    let obj = json
        .as_object()
        .ok_or_else(|| TariffError::new(path, "must be an object"))?;
    reject_unknown(obj, path, &["price_components", "restrictions"])?;
    let comps_path = format!("{path}.price_components");
    let comps = obj
        .get("price_components")
        .ok_or_else(|| TariffError::new(&comps_path, "is required"))?
        .as_array()
        .ok_or_else(|| TariffError::new(&comps_path, "must be an array"))?;
    if comps.is_empty() {
        return Err(TariffError::new(
            &comps_path,
            "must contain at least one price component",
        ));
    }
    let mut seen = HashSet::new();
    let mut price_components = Vec::with_capacity(comps.len());
    for (i, c) in comps.iter().enumerate() {
        let cpath = format!("{comps_path}[{i}]");
        let component = parse_component(c, &cpath, vat_rate)?;
        if !seen.insert(component.kind) {
            return Err(TariffError::new(
                format!("{cpath}.type"),
                format!(
                    "a second {} component in the same element would never apply",
                    component.kind.ocpi_name()
                ),
            ));
        }
        price_components.push(component);
    }
    let restrictions = match obj.get("restrictions") {
        None | Some(Value::Null) => None,
        Some(r) => Some(parse_restrictions(r, &format!("{path}.restrictions"))?),
    };
    Ok(TariffElement {
        price_components,
        restrictions,
    })
}

fn parse_component(
    json: &Value,
    path: &str,
    vat_rate: Decimal,
) -> Result<PriceComponent, TariffError> {
    let obj = json
        .as_object()
        .ok_or_else(|| TariffError::new(path, "must be an object"))?;
    reject_unknown(obj, path, &["type", "price", "step_size", "vat"])?;
    let type_path = format!("{path}.type");
    let kind = obj
        .get("type")
        .ok_or_else(|| TariffError::new(&type_path, "is required"))?
        .as_str()
        .and_then(ComponentKind::from_ocpi)
        .ok_or_else(|| {
            TariffError::new(
                &type_path,
                "must be one of FLAT, ENERGY, TIME, PARKING_TIME",
            )
        })?;
    let price_path = format!("{path}.price");
    let price = obj
        .get("price")
        .ok_or_else(|| TariffError::new(&price_path, "is required"))
        .and_then(|v| non_negative_number(v, &price_path))
        .and_then(|d| at_most(d, MAX_PRICE, &price_path))?;
    let step_path = format!("{path}.step_size");
    let step_size = match obj.get("step_size") {
        None | Some(Value::Null) => 1,
        Some(v) => v.as_u64().ok_or_else(|| {
            TariffError::new(&step_path, "must be a non-negative integer (Wh or seconds)")
        })?,
    };
    if step_size > MAX_STEP_SIZE {
        return Err(TariffError::new(
            &step_path,
            format!("must be at most {MAX_STEP_SIZE}"),
        ));
    }
    if let Some(vat) = obj.get("vat").filter(|v| !v.is_null()) {
        let vat_path = format!("{path}.vat");
        let vat = non_negative_number(vat, &vat_path)?;
        if vat != vat_rate {
            return Err(TariffError::new(
                vat_path,
                "per-component VAT must equal the tariff's vat_rate (VAT is computed on the total)",
            ));
        }
    }
    Ok(PriceComponent {
        kind,
        price,
        step_size,
    })
}

fn parse_restrictions(json: &Value, path: &str) -> Result<Restrictions, TariffError> {
    let obj = json
        .as_object()
        .ok_or_else(|| TariffError::new(path, "must be an object"))?;
    if obj.contains_key("reservation") {
        return Err(TariffError::new(
            format!("{path}.reservation"),
            "reservations are not supported",
        ));
    }
    reject_unknown(
        obj,
        path,
        &[
            "start_time",
            "end_time",
            "start_date",
            "end_date",
            "min_kwh",
            "max_kwh",
            "min_current",
            "max_current",
            "min_power",
            "max_power",
            "min_duration",
            "max_duration",
            "day_of_week",
        ],
    )?;
    let field = |name: &str| obj.get(name).filter(|v| !v.is_null());
    let sub = |name: &str| format!("{path}.{name}");

    let time = |name: &str| -> Result<Option<NaiveTime>, TariffError> {
        field(name)
            .map(|v| {
                v.as_str()
                    .filter(|s| s.len() == 5)
                    .and_then(|s| NaiveTime::parse_from_str(s, "%H:%M").ok())
                    .ok_or_else(|| TariffError::new(sub(name), "must be a local time \"HH:MM\""))
            })
            .transpose()
    };
    let date = |name: &str| -> Result<Option<NaiveDate>, TariffError> {
        field(name)
            .map(|v| {
                v.as_str()
                    .filter(|s| s.len() == 10)
                    .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                    .ok_or_else(|| {
                        TariffError::new(sub(name), "must be a local date \"YYYY-MM-DD\"")
                    })
            })
            .transpose()
    };
    let number = |name: &str| -> Result<Option<Decimal>, TariffError> {
        let max = if name.ends_with("_kwh") {
            MAX_KWH
        } else {
            MAX_POWER_OR_CURRENT
        };
        field(name)
            .map(|v| non_negative_number(v, &sub(name)).and_then(|d| at_most(d, max, &sub(name))))
            .transpose()
    };
    let seconds = |name: &str| -> Result<Option<u64>, TariffError> {
        field(name)
            .map(|v| {
                v.as_u64()
                    .filter(|s| *s <= MAX_DURATION_SECS)
                    .ok_or_else(|| {
                        TariffError::new(
                            sub(name),
                            format!("must be a non-negative integer number of seconds, at most {MAX_DURATION_SECS}"),
                        )
                    })
            })
            .transpose()
    };

    let r = Restrictions {
        start_time: time("start_time")?,
        end_time: time("end_time")?,
        start_date: date("start_date")?,
        end_date: date("end_date")?,
        min_kwh: number("min_kwh")?,
        max_kwh: number("max_kwh")?,
        min_current: number("min_current")?,
        max_current: number("max_current")?,
        min_power: number("min_power")?,
        max_power: number("max_power")?,
        min_duration: seconds("min_duration")?,
        max_duration: seconds("max_duration")?,
        day_of_week: match field("day_of_week") {
            None => Vec::new(),
            Some(v) => {
                let days = v.as_array().ok_or_else(|| {
                    TariffError::new(sub("day_of_week"), "must be an array of weekday names")
                })?;
                let mut out = Vec::with_capacity(days.len());
                for (i, d) in days.iter().enumerate() {
                    let day = d.as_str().and_then(weekday_from_ocpi).ok_or_else(|| {
                        TariffError::new(
                            format!("{path}.day_of_week[{i}]"),
                            "must be one of MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY, SATURDAY, SUNDAY",
                        )
                    })?;
                    if !out.contains(&day) {
                        out.push(day);
                    }
                }
                out
            }
        },
    };
    if let (Some(s), Some(e)) = (r.start_time, r.end_time) {
        if s == e {
            return Err(TariffError::new(
                sub("end_time"),
                "must differ from start_time (the element would never apply)",
            ));
        }
    }
    let ordered = |min: Option<Decimal>, max: Option<Decimal>, name: &str| match (min, max) {
        (Some(a), Some(b)) if a >= b => Err(TariffError::new(
            sub(name),
            format!(
                "must be greater than min_{}",
                name.trim_start_matches("max_")
            ),
        )),
        _ => Ok(()),
    };
    ordered(r.min_kwh, r.max_kwh, "max_kwh")?;
    ordered(r.min_current, r.max_current, "max_current")?;
    ordered(r.min_power, r.max_power, "max_power")?;
    ordered(
        r.min_duration.map(Decimal::from),
        r.max_duration.map(Decimal::from),
        "max_duration",
    )?;
    if let (Some(a), Some(b)) = (r.start_date, r.end_date) {
        if a >= b {
            return Err(TariffError::new(
                sub("end_date"),
                "must be after start_date",
            ));
        }
    }
    Ok(r)
}

fn reject_unknown(obj: &Map<String, Value>, path: &str, known: &[&str]) -> Result<(), TariffError> {
    match obj.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(TariffError::new(format!("{path}.{k}"), "unknown field")),
        None => Ok(()),
    }
}

/// Reads a JSON number exactly (no float round trip) and checks it is a valid OCPI amount.
fn non_negative_number(value: &Value, path: &str) -> Result<Decimal, TariffError> {
    let Value::Number(n) = value else {
        return Err(TariffError::new(path, "must be a number"));
    };
    let text = n.to_string();
    let d = Decimal::from_str_exact(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| TariffError::new(path, "is not a valid decimal number"))?
        .normalize();
    if d.is_sign_negative() && !d.is_zero() {
        return Err(TariffError::new(path, "must not be negative"));
    }
    if d.scale() > OCPI_SCALE {
        return Err(TariffError::new(path, "must have at most 4 decimals"));
    }
    Ok(d.abs())
}

/// Checks an upper bound on an amount.
fn at_most(d: Decimal, max: i64, path: &str) -> Result<Decimal, TariffError> {
    if d > Decimal::from(max) {
        return Err(TariffError::new(path, format!("must be at most {max}")));
    }
    Ok(d)
}

fn weekday_from_ocpi(name: &str) -> Option<chrono::Weekday> {
    use chrono::Weekday::*;
    Some(match name {
        "MONDAY" => Mon,
        "TUESDAY" => Tue,
        "WEDNESDAY" => Wed,
        "THURSDAY" => Thu,
        "FRIDAY" => Fri,
        "SATURDAY" => Sat,
        "SUNDAY" => Sun,
        _ => return None,
    })
}

fn weekday_to_ocpi(day: chrono::Weekday) -> &'static str {
    use chrono::Weekday::*;
    match day {
        Mon => "MONDAY",
        Tue => "TUESDAY",
        Wed => "WEDNESDAY",
        Thu => "THURSDAY",
        Fri => "FRIDAY",
        Sat => "SATURDAY",
        Sun => "SUNDAY",
    }
}

/// An exact JSON number for a decimal (serde_json keeps the digits: `arbitrary_precision` is on
/// in this build through `rust_decimal`'s `serde-with-arbitrary-precision`, which ocpi-tariffs uses).
pub fn json_number(d: Decimal) -> Value {
    serde_json::Number::from_str(&d.normalize().to_string())
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// The canonical OCPI 2.2.1 JSON of validated elements, with the fields the engine requires.
fn to_ocpi_json(currency: &str, tariff_type: Option<&str>, elements: &[TariffElement]) -> Value {
    let elements = elements
        .iter()
        .map(|e| {
            let comps = e
                .price_components
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "type": c.kind.ocpi_name(),
                        "price": json_number(c.price),
                        "step_size": c.step_size,
                    })
                })
                .collect::<Vec<_>>();
            let mut el = Map::new();
            el.insert("price_components".into(), Value::Array(comps));
            if let Some(r) = &e.restrictions {
                el.insert("restrictions".into(), restrictions_json(r));
            }
            Value::Object(el)
        })
        .collect::<Vec<_>>();
    let mut obj = Map::new();
    obj.insert("country_code".into(), "SE".into());
    obj.insert("party_id".into(), "LDK".into());
    obj.insert("id".into(), "laddkoll".into());
    obj.insert("currency".into(), currency.into());
    if let Some(t) = tariff_type {
        obj.insert("type".into(), t.into());
    }
    obj.insert("elements".into(), Value::Array(elements));
    obj.insert("last_updated".into(), "2000-01-01T00:00:00Z".into());
    Value::Object(obj)
}

fn restrictions_json(r: &Restrictions) -> Value {
    let mut m = Map::new();
    let hm = |t: NaiveTime| Value::String(t.format("%H:%M").to_string());
    let ymd = |d: NaiveDate| Value::String(d.format("%Y-%m-%d").to_string());
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    put("start_time", r.start_time.map(hm));
    put("end_time", r.end_time.map(hm));
    put("start_date", r.start_date.map(ymd));
    put("end_date", r.end_date.map(ymd));
    put("min_kwh", r.min_kwh.map(json_number));
    put("max_kwh", r.max_kwh.map(json_number));
    put("min_current", r.min_current.map(json_number));
    put("max_current", r.max_current.map(json_number));
    put("min_power", r.min_power.map(json_number));
    put("max_power", r.max_power.map(json_number));
    put("min_duration", r.min_duration.map(Value::from));
    put("max_duration", r.max_duration.map(Value::from));
    if !r.day_of_week.is_empty() {
        put(
            "day_of_week",
            Some(Value::Array(
                r.day_of_week
                    .iter()
                    .map(|d| Value::String(weekday_to_ocpi(*d).into()))
                    .collect(),
            )),
        );
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vat25() -> Decimal {
        Decimal::from(25)
    }

    fn err(json: Value) -> TariffError {
        validate_tariff(&json, "SEK", vat25()).unwrap_err()
    }

    #[test]
    fn accepts_a_full_tariff_and_round_trips_through_its_stored_form() {
        let t = json!({
            "currency": "SEK",
            "type": "REGULAR",
            "elements": [
                {"price_components": [{"type": "ENERGY", "price": 2.392, "step_size": 1}],
                 "restrictions": {"start_time": "22:00", "end_time": "06:00",
                                  "day_of_week": ["MONDAY", "SATURDAY"], "min_power": 50}},
                {"price_components": [{"type": "ENERGY", "price": 2.792, "step_size": 1},
                                      {"type": "FLAT", "price": 0, "step_size": 1}]},
                {"price_components": [{"type": "PARKING_TIME", "price": 24, "step_size": 60}],
                 "restrictions": {"min_duration": 3600}}
            ]
        });
        let valid = validate_tariff(&t, "SEK", vat25()).unwrap();
        assert_eq!(valid.elements().len(), 3);
        assert_eq!(
            valid.elements()[0].price_components[0].price,
            Decimal::new(2392, 3)
        );
        let r = valid.elements()[0].restrictions.as_ref().unwrap();
        assert_eq!(r.start_time, NaiveTime::from_hms_opt(22, 0, 0));
        assert_eq!(
            r.day_of_week,
            vec![chrono::Weekday::Mon, chrono::Weekday::Sat]
        );

        let stored = serde_json::to_value(valid.clone().with_snapshot("t1", 3)).unwrap();
        assert_eq!(stored["vat_rate_percent"], json!("25"));
        assert_eq!(
            stored["tariff"]["elements"][0]["price_components"][0]["price"].to_string(),
            "2.392"
        );
        let back: ValidTariff = serde_json::from_value(stored).unwrap();
        assert_eq!(
            back.snapshot(),
            Some(&TariffRef {
                id: "t1".into(),
                version: 3
            })
        );
        assert_eq!(back.elements(), valid.elements());
    }

    #[test]
    fn errors_name_the_offending_field() {
        let one = |c: Value| json!({"elements": [{"price_components": [{"type": "ENERGY", "price": 1, "step_size": 1}, c]}]});
        assert_eq!(
            err(one(json!({"type": "TIME", "price": 1, "step_size": -5}))).field,
            "elements[0].price_components[1].step_size"
        );
        assert_eq!(
            err(one(json!({"type": "TIME", "price": -0.5, "step_size": 1}))).field,
            "elements[0].price_components[1].price"
        );
        assert_eq!(
            err(one(
                json!({"type": "RESERVATION_TIME", "price": 1, "step_size": 1})
            ))
            .field,
            "elements[0].price_components[1].type"
        );
        assert_eq!(
            err(one(json!({"type": "ENERGY", "price": 1, "step_size": 1}))).field,
            "elements[0].price_components[1].type"
        );
        assert_eq!(
            err(one(
                json!({"type": "TIME", "price": 0.00001, "step_size": 1})
            ))
            .field,
            "elements[0].price_components[1].price"
        );
        let restricted = |r: Value| json!({"elements": [{"price_components": [{"type": "ENERGY", "price": 1, "step_size": 1}]}, {"price_components": [{"type": "ENERGY", "price": 1, "step_size": 1}], "restrictions": r}]});
        for (r, field) in [
            (
                json!({"start_time": "25:00"}),
                "elements[1].restrictions.start_time",
            ),
            (
                json!({"start_time": "7:00"}),
                "elements[1].restrictions.start_time",
            ),
            (
                json!({"end_date": "2025-02-30"}),
                "elements[1].restrictions.end_date",
            ),
            (
                json!({"day_of_week": ["MONDAY", "FUNDAY"]}),
                "elements[1].restrictions.day_of_week[1]",
            ),
            (
                json!({"min_kwh": 10, "max_kwh": 5}),
                "elements[1].restrictions.max_kwh",
            ),
            (
                json!({"min_duration": 1.5}),
                "elements[1].restrictions.min_duration",
            ),
            (json!({"min_kwhh": 1}), "elements[1].restrictions.min_kwhh"),
            (
                json!({"reservation": "RESERVATION"}),
                "elements[1].restrictions.reservation",
            ),
            (
                json!({"start_time": "10:00", "end_time": "10:00"}),
                "elements[1].restrictions.end_time",
            ),
        ] {
            assert_eq!(err(restricted(r.clone())).field, field, "restriction {r}");
        }
    }

    #[test]
    fn every_price_and_amount_is_bounded() {
        let price = |p: Value| json!({"elements": [{"price_components": [{"type": "ENERGY", "price": p, "step_size": 1}]}]});
        assert_eq!(
            err(price(json!(1e18))).field,
            "elements[0].price_components[0].price"
        );
        assert_eq!(
            err(price(json!(1_000_000.000_1))).field,
            "elements[0].price_components[0].price"
        );
        assert!(validate_tariff(&price(json!(MAX_PRICE)), "SEK", vat25()).is_ok());
        assert_eq!(
            err(json!({"elements": [{"price_components": [{"type": "TIME", "price": 1, "step_size": 2_000_000}]}]})).field,
            "elements[0].price_components[0].step_size"
        );
        let restricted = |r: Value| json!({"elements": [{"price_components": [{"type": "ENERGY", "price": 1, "step_size": 1}], "restrictions": r}]});
        for (r, field) in [
            (json!({"min_kwh": 1e12}), "elements[0].restrictions.min_kwh"),
            (
                json!({"max_power": 1e9}),
                "elements[0].restrictions.max_power",
            ),
            (
                json!({"min_current": 1e9}),
                "elements[0].restrictions.min_current",
            ),
            (
                json!({"max_duration": 1u64 << 62}),
                "elements[0].restrictions.max_duration",
            ),
        ] {
            assert_eq!(err(restricted(r.clone())).field, field, "restriction {r}");
        }
    }

    #[test]
    fn rejects_bad_currency_vat_and_structure() {
        let ok = json!({"elements": [{"price_components": [{"type": "FLAT", "price": 5, "step_size": 1}]}]});
        for c in ["sek", "SE", "SEKK", "S3K"] {
            assert_eq!(
                validate_tariff(&ok, c, vat25()).unwrap_err().field,
                "currency"
            );
        }
        assert_eq!(
            validate_tariff(&ok, "SEK", Decimal::from(-1))
                .unwrap_err()
                .field,
            "vat_rate"
        );
        assert_eq!(
            validate_tariff(&ok, "SEK", Decimal::from(101))
                .unwrap_err()
                .field,
            "vat_rate"
        );
        assert!(validate_tariff(&ok, "SEK", Decimal::from(100)).is_ok());
        assert!(validate_tariff(&ok, "SEK", Decimal::ZERO).is_ok());
        assert_eq!(err(json!({"elements": []})).field, "elements");
        assert_eq!(err(json!({})).field, "elements");
        assert_eq!(
            err(json!({"elements": [{"price_components": []}]})).field,
            "elements[0].price_components"
        );
        assert_eq!(
            err(json!({"currency": "EUR", "elements": ok["elements"]})).field,
            "currency"
        );
        assert_eq!(
            err(json!({"min_price": {"excl_vat": 1}, "elements": ok["elements"]})).field,
            "min_price"
        );
        assert_eq!(err(json!({"elementz": []})).field, "elementz");
    }
}
