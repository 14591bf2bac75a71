//! Session usage → charging periods → priced session.
//!
//! One function, [`price`], serves the live cost (stop = now, meter stop = latest register) and
//! the final cost, so the two can never disagree.
//!
//! # How a session is priced
//!
//! 1. **Charging periods.** The session is cut at every instant where a tariff element could
//!    start or stop applying: connector state changes (charging vs idle), local times of day of
//!    `start_time`/`end_time` restrictions and local midnights (weekday/date restrictions), all
//!    evaluated in the location's time zone — on DST days a local time in the spring gap is taken
//!    at the transition and an ambiguous autumn time splits at both instants —, the session
//!    durations of `min_duration`/`max_duration`, the instants the session energy crosses
//!    `min_kwh`/`max_kwh`, and, when the tariff restricts on power, every meter sample.
//!    Energy at a cut comes from the cumulative energy register; between registers it is
//!    interpolated linearly over *charging* time (idle time gets no energy unless the registers
//!    say so) and rounded to the Wh, so the periods add up exactly to `meter_stop - meter_start`.
//!    A period's power is the power the charger reported at the samples closing it, or else its
//!    average power from the register delta.
//! 2. **Engine.** The periods become an OCPI 2.2.1 CDR which is priced by the `ocpi-tariffs`
//!    crate (the reference implementation), with the tariff as override. The engine decides
//!    which element applies per dimension and period (first match wins, restrictions at the
//!    period start), charges FLAT once, and applies step sizes to the last period of a dimension.
//! 3. **Exact amounts.** OCPI carries CDR time volumes as hours with four decimals (0.36 s), so
//!    time amounts are recomputed here from the exact period durations, with the engine's
//!    component choice and its step-size rule; energy volumes are exact Wh already. Lines are the
//!    components that applied, grouped per (kind, tariff element).
//! 4. **Money.** Exact line amounts are summed and rounded once to the öre (half away from zero)
//!    for `excl_vat`; the lines are rounded so they sum exactly to it (see
//!    [`money::allocate`](super::money::allocate)); VAT is computed on `excl_vat`.
//!
//! # Known engine quirks (ocpi-tariffs 0.45)
//!
//! - A TIME step size is not applied when any idle period was priced by a PARKING_TIME
//!   component (the session then ends in parking time, which carries its own step).
//! - The engine applies time step sizes to totals of 4-decimal hours, so an exact total that
//!   sits on a step boundary can be billed one step higher by the engine alone (359 min of
//!   parking at a 60 s step became 360 min in a property test). laddkoll bills the exact total;
//!   `tests/pricing.rs` cross-checks every other difference against the engine.
//! - Current restrictions (`min_current`/`max_current`) never exclude an element: no current
//!   is metered, and the engine treats a missing value as matching.
//! - `min_price`/`max_price` are ignored by the engine; validation rejects them.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use super::money::{self, AmountOutOfRange};
use super::tariff::{json_number, ComponentKind, TariffRef, ValidTariff};

const MS_PER_HOUR: i64 = 3_600_000;

/// One meter reading from the charger (OCPP MeterValues).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MeterSample {
    /// When the charger sampled.
    pub at: DateTime<Utc>,
    /// Cumulative energy register (Energy.Active.Import.Register) in Wh.
    pub energy_wh: Option<i64>,
    /// Active power (Power.Active.Import) in W.
    pub power_w: Option<i64>,
}

/// Connector state as far as billing cares.
///
/// From OCPP StatusNotification: `Charging` ⇒ `Charging`; `SuspendedEV`, `SuspendedEVSE` and
/// `Finishing` ⇒ `Idle` (the car occupies the charger without charging).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorState {
    /// Energy is (or may be) flowing; priced as charging time.
    Charging,
    /// Connected but not charging; priced as parking time.
    Idle,
}

/// What a session used, as measured by the charger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUsage {
    /// StartTransaction timestamp.
    pub start: DateTime<Utc>,
    /// StopTransaction timestamp, or now for the live cost.
    pub stop: DateTime<Utc>,
    /// Energy register at start, Wh.
    pub meter_start_wh: i64,
    /// Energy register at stop (or the latest register for the live cost), Wh.
    pub meter_stop_wh: i64,
    /// Meter samples during the session, any order; samples outside the session are ignored.
    pub samples: Vec<MeterSample>,
    /// Connector state changes, any order; the last change at or before `start` gives the
    /// initial state (charging if there is none).
    pub state_changes: Vec<(DateTime<Utc>, ConnectorState)>,
}

/// Why a session could not be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    /// `stop` is before `start`.
    #[error("the session stops before it starts")]
    StopBeforeStart,
    /// The energy register at stop is below the one at start.
    #[error("the energy register went backwards: {start_wh} Wh at start, {stop_wh} Wh at stop")]
    MeterWentBackwards {
        /// Register at start.
        start_wh: i64,
        /// Register at stop.
        stop_wh: i64,
    },
    /// The OCPI engine refused the session (a bug or an unsupported tariff construct).
    #[error("the tariff engine could not price the session: {0}")]
    Engine(String),
    /// An amount does not fit the integer minor units.
    #[error("amount out of range")]
    OutOfRange,
    /// The usage is outside what any charger can measure (a register beyond
    /// [`MAX_REGISTER_WH`] or a session longer than [`MAX_SESSION_DAYS`] days).
    #[error("implausible usage: {0}")]
    Implausible(String),
}

/// The largest energy register priced, in Wh (1 TWh): larger values are corrupt readings, and
/// the bound keeps every intermediate product far inside `i64` and `Decimal`.
pub const MAX_REGISTER_WH: i64 = 1_000_000_000_000_000 / 1000;

/// The longest session priced, in days; longer ones are held for review.
pub const MAX_SESSION_DAYS: i64 = 400;

impl From<AmountOutOfRange> for PricingError {
    fn from(_: AmountOutOfRange) -> Self {
        Self::OutOfRange
    }
}

/// Unit of a price line's quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Unit {
    /// Kilowatt hours.
    #[serde(rename = "kWh")]
    Kwh,
    /// Hours.
    #[serde(rename = "h")]
    Hour,
    /// Once per session (flat fee).
    #[serde(rename = "session")]
    Session,
}

/// One priced tariff component of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PriceLine {
    /// `energy`, `time`, `parking_time` or `flat`.
    pub kind: ComponentKind,
    /// Index of the tariff element the component belongs to.
    pub element: usize,
    /// Billed quantity (after step size): kWh (exact), hours (rounded to 6 decimals for
    /// display; the amount uses the exact duration) or 1 session.
    #[schema(value_type = String, example = "12.345")]
    pub quantity: Decimal,
    /// Unit of `quantity`.
    pub unit: Unit,
    /// Unit price excluding VAT in major units (e.g. kronor per kWh), as a decimal string.
    #[schema(value_type = String, example = "2.792")]
    pub unit_price_excl_vat: Decimal,
    /// Amount excluding VAT in minor units; the lines sum exactly to `excl_vat`.
    pub amount_excl_vat: i64,
}

/// One charging period as priced: what the session did between two cuts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PricedPeriod {
    /// Period start.
    pub start: DateTime<Utc>,
    /// Period end (the next period's start, or the session stop).
    pub end: DateTime<Utc>,
    /// Charging or idle.
    pub state: ConnectorState,
    /// Energy in this period, Wh.
    pub energy_wh: i64,
    /// Highest power seen in this period, W, if known.
    pub max_power_w: Option<i64>,
}

/// A priced session: the record kept for a finished session and the live cost of a running one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PricedSession {
    /// ISO 4217 currency code.
    pub currency: String,
    /// VAT rate in percent.
    #[schema(value_type = String, example = "25")]
    pub vat_rate: Decimal,
    /// Energy register at start, Wh.
    pub meter_start_wh: i64,
    /// Energy register at stop, Wh.
    pub meter_stop_wh: i64,
    /// `meter_stop_wh - meter_start_wh`.
    pub energy_wh: i64,
    /// Seconds spent charging.
    pub charging_seconds: i64,
    /// Seconds connected but idle; `charging_seconds + idle_seconds` is the session duration.
    pub idle_seconds: i64,
    /// One line per applied price component.
    pub lines: Vec<PriceLine>,
    /// Total excluding VAT, minor units (sum of the lines).
    pub excl_vat: i64,
    /// VAT on `excl_vat`, minor units.
    pub vat: i64,
    /// `excl_vat + vat`, minor units.
    pub total: i64,
    /// The stored tariff version used, if the tariff carried one.
    pub tariff: Option<TariffRef>,
    /// The charging periods the price was computed from.
    pub periods: Vec<PricedPeriod>,
}

impl PricedSession {
    /// The cost in the API money shape `{currency, excl_vat, vat, total}`.
    pub fn money(&self) -> money::Money {
        money::Money {
            currency: self.currency.clone(),
            excl_vat: self.excl_vat,
            vat: self.vat,
            total: self.total,
        }
    }
}

/// A period as built from the usage, before pricing.
#[derive(Debug, Clone)]
struct Period {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    state: ConnectorState,
    energy_wh: i64,
    min_power_w: Option<i64>,
    max_power_w: Option<i64>,
}

impl Period {
    fn millis(&self) -> i64 {
        (self.end - self.start).num_milliseconds()
    }
}

/// Prices a session's usage with a tariff; time-of-day and weekday restrictions are evaluated
/// in `tz`, the location's time zone.
pub fn price(
    tariff: &ValidTariff,
    tz: Tz,
    usage: &SessionUsage,
) -> Result<PricedSession, PricingError> {
    let usage = &checked_usage(usage)?;
    let periods = build_periods(tariff, tz, usage)?;
    let engine = run_engine(tariff, tz, usage, &periods)?;
    assemble(tariff, usage, periods, &engine)
}

/// The usage as pricing reads it: every instant truncated to the millisecond (the unit of
/// OCPI periods and of every duration below, so two changes less than 1 ms apart become one
/// instant instead of a zero-length period), and refused when it cannot be a real session.
fn checked_usage(usage: &SessionUsage) -> Result<SessionUsage, PricingError> {
    use chrono::SubsecRound;
    let ms = |t: DateTime<Utc>| t.trunc_subsecs(3);
    let u = SessionUsage {
        start: ms(usage.start),
        stop: ms(usage.stop),
        meter_start_wh: usage.meter_start_wh,
        meter_stop_wh: usage.meter_stop_wh,
        samples: usage
            .samples
            .iter()
            .map(|s| MeterSample {
                at: ms(s.at),
                ..s.clone()
            })
            .collect(),
        state_changes: usage
            .state_changes
            .iter()
            .map(|(at, st)| (ms(*at), *st))
            .collect(),
    };
    if u.stop < u.start {
        return Err(PricingError::StopBeforeStart);
    }
    if u.meter_stop_wh < u.meter_start_wh {
        return Err(PricingError::MeterWentBackwards {
            start_wh: u.meter_start_wh,
            stop_wh: u.meter_stop_wh,
        });
    }
    for wh in [u.meter_start_wh, u.meter_stop_wh] {
        if !(-MAX_REGISTER_WH..=MAX_REGISTER_WH).contains(&wh) {
            return Err(PricingError::Implausible(format!(
                "energy register {wh} Wh is beyond {MAX_REGISTER_WH} Wh"
            )));
        }
    }
    if u.stop - u.start > Duration::days(MAX_SESSION_DAYS) {
        return Err(PricingError::Implausible(format!(
            "the session lasts more than {MAX_SESSION_DAYS} days"
        )));
    }
    Ok(u)
}

// ---------------------------------------------------------------------------------------------
// 1. Charging periods

/// The connector state over the session: initial state plus changes inside it.
struct StateTimeline {
    initial: ConnectorState,
    changes: Vec<(DateTime<Utc>, ConnectorState)>,
}

impl StateTimeline {
    fn new(usage: &SessionUsage) -> Self {
        let mut all = usage.state_changes.clone();
        // Stable sort keeps the reported order of changes with the same timestamp.
        all.sort_by_key(|(at, _)| *at);
        let initial = all
            .iter()
            .filter(|(at, _)| *at <= usage.start)
            .map(|(_, s)| *s)
            .next_back()
            .unwrap_or(ConnectorState::Charging);
        let changes = all
            .into_iter()
            .filter(|(at, _)| *at > usage.start && *at < usage.stop)
            .collect();
        Self { initial, changes }
    }

    fn state_at(&self, t: DateTime<Utc>) -> ConnectorState {
        self.changes
            .iter()
            .take_while(|(at, _)| *at <= t)
            .map(|(_, s)| *s)
            .last()
            .unwrap_or(self.initial)
    }

    /// Milliseconds of charging in `[from, to)`.
    fn charging_ms(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        let mut total = 0;
        let mut cursor = from;
        let mut state = self.state_at(from);
        for (at, s) in self.changes.iter().filter(|(at, _)| *at > from && *at < to) {
            if state == ConnectorState::Charging {
                total += (*at - cursor).num_milliseconds();
            }
            cursor = *at;
            state = *s;
        }
        if state == ConnectorState::Charging {
            total += (to - cursor).num_milliseconds();
        }
        total
    }
}

/// Cumulative energy register over the session, from the known registers.
struct EnergyCurve<'a> {
    /// Known `(time, register)` points, strictly increasing in time, non-decreasing in Wh.
    points: Vec<(DateTime<Utc>, i64)>,
    states: &'a StateTimeline,
}

impl<'a> EnergyCurve<'a> {
    fn new(usage: &SessionUsage, states: &'a StateTimeline) -> Self {
        let mut samples: Vec<_> = usage
            .samples
            .iter()
            .filter(|s| s.at > usage.start && s.at < usage.stop)
            .filter_map(|s| s.energy_wh.map(|wh| (s.at, wh)))
            .collect();
        samples.sort_by_key(|(at, _)| *at);
        let mut points = vec![(usage.start, usage.meter_start_wh)];
        for (at, wh) in samples {
            let (last_at, last_wh) = points[points.len() - 1];
            // Registers that go backwards or beyond the stop register are implausible; the
            // OCPP layer flags them, pricing never bills more than stop - start.
            if at > last_at && wh >= last_wh && wh <= usage.meter_stop_wh {
                points.push((at, wh));
            }
        }
        if usage.stop > usage.start {
            points.push((usage.stop, usage.meter_stop_wh));
        }
        Self { points, states }
    }

    /// Register at `t`, interpolated over charging time between known points, rounded to Wh.
    fn at(&self, t: DateTime<Utc>) -> i64 {
        let idx = self.points.partition_point(|(at, _)| *at <= t);
        if idx == 0 {
            return self.points[0].1;
        }
        let (t0, e0) = self.points[idx - 1];
        let Some(&(t1, e1)) = self.points.get(idx) else {
            return e0;
        };
        if t == t0 || e1 == e0 {
            return e0;
        }
        let (done, span) = match self.states.charging_ms(t0, t1) {
            0 => ((t - t0).num_milliseconds(), (t1 - t0).num_milliseconds()),
            span => (self.states.charging_ms(t0, t), span),
        };
        if span <= 0 {
            return e0;
        }
        // Registers are bounded by MAX_REGISTER_WH and durations by MAX_SESSION_DAYS, so the
        // product fits i128 with room to spare; round half away from zero.
        let num = i128::from(e1 - e0) * i128::from(done.clamp(0, span));
        let den = i128::from(span);
        let delta = (2 * num + den) / (2 * den);
        e0 + i64::try_from(delta).unwrap_or(0)
    }

    /// First millisecond at which the register reaches `wh`, if it does within the session.
    fn reaches(&self, wh: Decimal) -> Option<DateTime<Utc>> {
        let pair = self
            .points
            .windows(2)
            .find(|w| Decimal::from(w[1].1) >= wh && Decimal::from(w[0].1) < wh)?;
        let (mut lo, mut hi) = (pair[0].0, pair[1].0);
        // Binary search over milliseconds; `at` is monotone between known points.
        while (hi - lo).num_milliseconds() > 1 {
            let mid = lo + Duration::milliseconds((hi - lo).num_milliseconds() / 2);
            if Decimal::from(self.at(mid)) >= wh {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(hi)
    }
}

fn build_periods(
    tariff: &ValidTariff,
    tz: Tz,
    usage: &SessionUsage,
) -> Result<Vec<Period>, PricingError> {
    let states = StateTimeline::new(usage);
    let energy = EnergyCurve::new(usage, &states);
    let (start, stop) = (usage.start, usage.stop);

    let mut cuts = vec![start, stop];
    cuts.extend(states.changes.iter().map(|(at, _)| *at));
    if tariff.has_power_restrictions() {
        cuts.extend(usage.samples.iter().map(|s| s.at));
    }
    let mut local_times: Vec<NaiveTime> = Vec::new();
    let mut needs_midnight = false;
    for r in tariff.restrictions() {
        local_times.extend(r.start_time.iter().chain(r.end_time.iter()));
        needs_midnight |=
            !r.day_of_week.is_empty() || r.start_date.is_some() || r.end_date.is_some();
        for secs in r.min_duration.iter().chain(r.max_duration.iter()) {
            if let Some(at) = i64::try_from(*secs)
                .ok()
                .and_then(Duration::try_seconds)
                .and_then(|d| start.checked_add_signed(d))
            {
                cuts.push(at);
            }
        }
        for kwh in r.min_kwh.iter().chain(r.max_kwh.iter()) {
            let wh = Decimal::from(usage.meter_start_wh) + *kwh * Decimal::ONE_THOUSAND;
            cuts.extend(energy.reaches(wh));
        }
    }
    if needs_midnight {
        local_times.push(NaiveTime::MIN);
    }
    if !local_times.is_empty() {
        let first = start
            .with_timezone(&tz)
            .date_naive()
            .pred_opt()
            .unwrap_or(NaiveDate::MIN);
        let last = stop.with_timezone(&tz).date_naive();
        for day in first.iter_days().take_while(|d| *d <= last) {
            for t in &local_times {
                cuts.extend(local_instants(tz, day, *t));
            }
        }
    }
    cuts.retain(|t| *t >= start && *t <= stop);
    cuts.sort();
    cuts.dedup();

    let power_samples: Vec<(DateTime<Utc>, i64)> = {
        let mut p: Vec<_> = usage
            .samples
            .iter()
            .filter(|s| s.at > start && s.at <= stop)
            .filter_map(|s| s.power_w.map(|w| (s.at, w.max(0))))
            .collect();
        p.sort_by_key(|(at, _)| *at);
        p
    };

    if cuts.len() == 1 {
        // A zero-length session (live cost at the very start, or a charger that reports the
        // same instant for start and stop): one period holding all of its energy.
        return Ok(vec![Period {
            start,
            end: stop,
            state: states.state_at(start),
            energy_wh: usage.meter_stop_wh - usage.meter_start_wh,
            min_power_w: None,
            max_power_w: None,
        }]);
    }
    Ok(cuts
        .windows(2)
        .map(|w| {
            let (a, b) = (w[0], w[1]);
            let energy_wh = energy.at(b) - energy.at(a);
            let mut powers: Vec<i64> = power_samples
                .iter()
                .filter(|(at, _)| *at > a && *at <= b)
                .map(|(_, p)| *p)
                .collect();
            if powers.is_empty() {
                // Inside one sample interval: the sample closing it reports its power.
                powers.extend(
                    power_samples
                        .iter()
                        .find(|(at, _)| *at > b)
                        .map(|(_, p)| *p),
                );
            }
            // Instants are whole milliseconds (see `checked_usage`), so a period with b > a
            // lasts at least 1 ms; the guard keeps the division total all the same.
            let ms = (b - a).num_milliseconds();
            if powers.is_empty() && ms > 0 {
                let w = i128::from(energy_wh) * i128::from(MS_PER_HOUR) / i128::from(ms);
                powers.push(i64::try_from(w).unwrap_or(i64::MAX));
            }
            Period {
                start: a,
                end: b,
                state: states.state_at(a),
                energy_wh,
                min_power_w: powers.iter().copied().min(),
                max_power_w: powers.iter().copied().max(),
            }
        })
        .collect())
}

/// The instants at which local time `t` occurs on `day` in `tz`: one normally, two in an
/// autumn fold, and the transition instant when `t` falls in a spring gap.
fn local_instants(tz: Tz, day: NaiveDate, t: NaiveTime) -> Vec<DateTime<Utc>> {
    use chrono::LocalResult;
    let naive = day.and_time(t);
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(x) => vec![x.with_timezone(&Utc)],
        LocalResult::Ambiguous(a, b) => vec![a.with_timezone(&Utc), b.with_timezone(&Utc)],
        // In a spring gap the local time is passed at the transition: the first valid minute.
        LocalResult::None => (1..=24 * 60)
            .map(|m| naive + Duration::minutes(m))
            .find_map(|n| tz.from_local_datetime(&n).earliest())
            .map(|x| x.with_timezone(&Utc))
            .into_iter()
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Engine

/// What the engine decided per period, reduced to plain data.
struct EngineResult {
    periods: Vec<EnginePeriod>,
    /// The engine's own total excluding VAT (quantized time), kept for cross-checks.
    total_excl_vat: Option<Decimal>,
}

#[derive(Default, Clone)]
struct EnginePeriod {
    energy: Option<(usize, Decimal, Decimal)>, // (element, price, billed kWh)
    flat: Option<(usize, Decimal)>,
    time: Option<(usize, Decimal, u64)>, // (element, price, step)
    parking: Option<(usize, Decimal, u64)>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn hours_4dp(ms: i64) -> Decimal {
    (Decimal::from(ms) / Decimal::from(MS_PER_HOUR))
        .round_dp_with_strategy(4, RoundingStrategy::MidpointNearestEven)
}

fn cdr_json(tariff: &ValidTariff, usage: &SessionUsage, periods: &[Period]) -> Value {
    let kwh = |wh: i64| json_number(Decimal::new(wh, 3));
    let charging_periods: Vec<Value> = periods
        .iter()
        .map(|p| {
            let time_type = match p.state {
                ConnectorState::Charging => "TIME",
                ConnectorState::Idle => "PARKING_TIME",
            };
            let mut dims = vec![
                json!({"type": "ENERGY", "volume": kwh(p.energy_wh)}),
                json!({"type": time_type, "volume": json_number(hours_4dp(p.millis()))}),
            ];
            if let (Some(min), Some(max)) = (p.min_power_w, p.max_power_w) {
                dims.push(json!({"type": "MIN_POWER", "volume": kwh(min)}));
                dims.push(json!({"type": "MAX_POWER", "volume": kwh(max)}));
            }
            json!({"start_date_time": rfc3339(p.start), "dimensions": dims})
        })
        .collect();
    let total_ms = (usage.stop - usage.start).num_milliseconds();
    json!({
        "country_code": "SE",
        "party_id": "LDK",
        "id": "laddkoll-session",
        "start_date_time": rfc3339(usage.start),
        "end_date_time": rfc3339(usage.stop),
        "currency": tariff.currency(),
        "total_cost": {"excl_vat": 0},
        "total_energy": kwh(usage.meter_stop_wh - usage.meter_start_wh),
        "total_time": json_number(hours_4dp(total_ms)),
        "charging_periods": charging_periods,
        "last_updated": rfc3339(usage.stop),
    })
}

fn run_engine(
    tariff: &ValidTariff,
    tz: Tz,
    usage: &SessionUsage,
    periods: &[Period],
) -> Result<EngineResult, PricingError> {
    use ocpi_tariffs::{cdr, price as engine, tariff as engine_tariff, Version};

    let engine_err =
        |what: &str, e: &dyn std::fmt::Debug| PricingError::Engine(format!("{what}: {e:?}"));
    let cdr_text = cdr_json(tariff, usage, periods).to_string();
    let tariff_text = tariff.ocpi_json().to_string();
    let cdr =
        cdr::parse_with_version(&cdr_text, Version::V221).map_err(|e| engine_err("CDR", &e))?;
    let parsed_tariff = engine_tariff::parse_with_version(&tariff_text, Version::V221)
        .map_err(|e| engine_err("tariff", &e))?;
    let report = match cdr::price(
        &cdr.cdr,
        engine::TariffSource::single(parsed_tariff.tariff),
        tz,
    ) {
        Ok(report) => report,
        Err(set) => {
            let (error, _warnings) = set.into_parts();
            return Err(PricingError::Engine(format!(
                "{} at {}",
                error.warning(),
                error.element().path()
            )));
        }
    };
    let (report, _warnings) = report.into_parts();
    if report.periods.len() != periods.len() {
        return Err(PricingError::Engine(format!(
            "expected {} periods back, got {}",
            periods.len(),
            report.periods.len()
        )));
    }
    let periods = report
        .periods
        .iter()
        .map(|p| {
            let d = &p.dimensions;
            EnginePeriod {
                energy: d.energy.price.as_ref().map(|c| {
                    let billed = d
                        .energy
                        .billed_volume
                        .map(Decimal::from)
                        .unwrap_or_default();
                    (c.tariff_element_index, Decimal::from(c.price), billed)
                }),
                flat: d
                    .flat
                    .price
                    .as_ref()
                    .map(|c| (c.tariff_element_index, Decimal::from(c.price))),
                time: d
                    .duration_charging
                    .price
                    .as_ref()
                    .map(|c| (c.tariff_element_index, Decimal::from(c.price), c.step_size)),
                parking: d
                    .duration_parking
                    .price
                    .as_ref()
                    .map(|c| (c.tariff_element_index, Decimal::from(c.price), c.step_size)),
            }
        })
        .collect();
    Ok(EngineResult {
        periods,
        total_excl_vat: report
            .total_cost
            .calculated
            .map(|p| Decimal::from(p.excl_vat)),
    })
}

// ---------------------------------------------------------------------------------------------
// 3./4. Lines and money

#[derive(Default)]
struct LineAcc {
    price: Decimal,
    kwh: Decimal,
    ms: i64,
}

/// Extra milliseconds billed by a step size of `step` seconds on `total_ms`.
fn step_extra_ms(total_ms: i64, step: u64) -> i64 {
    if step == 0 {
        return 0;
    }
    // The engine bills whole steps of seconds (step 1 rounds milliseconds up to a second).
    let step_ms = i64::try_from(step)
        .unwrap_or(i64::MAX / 1000)
        .saturating_mul(1000);
    (step_ms - total_ms.rem_euclid(step_ms)) % step_ms
}

fn assemble(
    tariff: &ValidTariff,
    usage: &SessionUsage,
    periods: Vec<Period>,
    engine: &EngineResult,
) -> Result<PricedSession, PricingError> {
    let mut lines: BTreeMap<(ComponentKind, usize), LineAcc> = BTreeMap::new();
    let mut last_time: Option<(usize, u64)> = None; // (period index, step)
    let mut last_parking: Option<(usize, u64)> = None;
    let (mut charging_ms, mut idle_ms) = (0i64, 0i64);

    for (i, (p, e)) in periods.iter().zip(&engine.periods).enumerate() {
        match p.state {
            ConnectorState::Charging => charging_ms += p.millis(),
            ConnectorState::Idle => idle_ms += p.millis(),
        }
        if let Some((el, price, kwh)) = e.energy {
            let acc = lines.entry((ComponentKind::Energy, el)).or_default();
            acc.price = price;
            acc.kwh += kwh;
        }
        if let Some((el, price)) = e.flat {
            let acc = lines.entry((ComponentKind::Flat, el)).or_default();
            acc.price = price;
            acc.kwh = Decimal::ONE;
        }
        let timed = match p.state {
            ConnectorState::Charging => e.time.map(|t| (ComponentKind::Time, t)),
            ConnectorState::Idle => e.parking.map(|t| (ComponentKind::ParkingTime, t)),
        };
        if let Some((kind, (el, price, step))) = timed {
            let acc = lines.entry((kind, el)).or_default();
            acc.price = price;
            acc.ms += p.millis();
            match kind {
                ComponentKind::Time => last_time = Some((i, step)),
                _ => last_parking = Some((i, step)),
            }
        }
    }
    // Step sizes on time, as the engine applies them: on the total of the dimension, the extra
    // billed in the last period priced by that dimension; TIME only without parking pricing.
    let mut add_step = |last: Option<(usize, u64)>, total_ms: i64, kind: ComponentKind| {
        if let Some((i, step)) = last {
            let extra = step_extra_ms(total_ms, step);
            let el = match kind {
                ComponentKind::Time => engine.periods[i].time.map(|t| t.0),
                _ => engine.periods[i].parking.map(|t| t.0),
            };
            if let Some(acc) = el.and_then(|el| lines.get_mut(&(kind, el))) {
                acc.ms += extra;
            }
        }
    };
    if last_parking.is_none() {
        add_step(last_time, charging_ms, ComponentKind::Time);
    }
    add_step(last_parking, idle_ms, ComponentKind::ParkingTime);

    let mut out = Vec::with_capacity(lines.len());
    let mut exact = Vec::with_capacity(lines.len());
    for ((kind, element), acc) in lines {
        // Checked: a huge price times a long session must be an error, not a panic.
        let (quantity, unit, amount) = match kind {
            ComponentKind::Energy => (acc.kwh, Unit::Kwh, acc.kwh.checked_mul(acc.price)),
            ComponentKind::Flat => (Decimal::ONE, Unit::Session, Some(acc.price)),
            ComponentKind::Time | ComponentKind::ParkingTime => {
                let hours = Decimal::from(acc.ms) / Decimal::from(MS_PER_HOUR);
                let amount = Decimal::from(acc.ms)
                    .checked_mul(acc.price)
                    .map(|x| x / Decimal::from(MS_PER_HOUR));
                (hours.round_dp(6), Unit::Hour, amount)
            }
        };
        let amount = amount.ok_or(PricingError::OutOfRange)?;
        if quantity.is_zero() && amount.is_zero() {
            continue;
        }
        exact.push(amount);
        out.push(PriceLine {
            kind,
            element,
            quantity: quantity.normalize(),
            unit,
            unit_price_excl_vat: acc.price.normalize(),
            amount_excl_vat: 0,
        });
    }
    let (excl_vat, amounts) = money::allocate(&exact)?;
    for (line, amount) in out.iter_mut().zip(amounts) {
        line.amount_excl_vat = amount;
    }
    let m = money::Money::from_excl_vat(tariff.currency(), excl_vat, tariff.vat_rate_percent())?;
    tracing::trace!(engine_total = ?engine.total_excl_vat, excl_vat, "priced session");

    let total_secs = (usage.stop - usage.start).num_seconds();
    let charging_seconds = (charging_ms + 500) / 1000;
    Ok(PricedSession {
        currency: tariff.currency().to_owned(),
        vat_rate: tariff.vat_rate_percent(),
        meter_start_wh: usage.meter_start_wh,
        meter_stop_wh: usage.meter_stop_wh,
        energy_wh: usage.meter_stop_wh - usage.meter_start_wh,
        charging_seconds: charging_seconds.min(total_secs),
        idle_seconds: (total_secs - charging_seconds).max(0),
        lines: out,
        excl_vat: m.excl_vat,
        vat: m.vat,
        total: m.total,
        tariff: tariff.snapshot().cloned(),
        periods: periods
            .into_iter()
            .map(|p| PricedPeriod {
                start: p.start,
                end: p.end,
                state: p.state,
                energy_wh: p.energy_wh,
                max_power_w: p.max_power_w,
            })
            .collect(),
    })
}

/// The engine's own total excluding VAT (major units) for `usage`, computed from the OCPI CDR
/// with its four-decimal hour volumes. For cross-checking [`price`] in tests and diagnostics.
pub fn engine_total_excl_vat(
    tariff: &ValidTariff,
    tz: Tz,
    usage: &SessionUsage,
) -> Result<Option<Decimal>, PricingError> {
    let usage = &checked_usage(usage)?;
    let periods = build_periods(tariff, tz, usage)?;
    Ok(run_engine(tariff, tz, usage, &periods)?.total_excl_vat)
}
