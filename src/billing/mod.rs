//! Billing: OCPI tariffs, exact pricing of charging sessions, money and tariff summaries.
//!
//! The pricing core is pure — plain data in, plain data out. `records` (tariff storage and
//! the price record of each session), `invoicing`, `pdf` and `handlers` connect it to the
//! database, the sessions and the API.
//!
//! - [`tariff`]: validate an operator's OCPI 2.2.1 Tariff into a [`ValidTariff`].
//! - [`pricing`]: turn a session's meter samples and connector states into charging periods and
//!   price them with the `ocpi-tariffs` reference engine: [`price`] → [`PricedSession`]. The
//!   same function gives the live cost and the final cost.
//! - [`money`]: integer minor units, VAT on the total, exact rounding ([`Money`]).
//! - [`summary`]: the short Swedish summary shown in the app.

pub mod handlers;
pub mod hourly;
pub mod invoicing;
pub mod money;
pub mod pdf;
pub mod pricing;
pub mod records;
pub mod summary;
pub mod tariff;

pub use money::Money;
pub use pricing::{
    price, ConnectorState, MeterSample, PriceLine, PricedPeriod, PricedSession, PricingError,
    SessionUsage, Unit,
};
pub use summary::{summarize, summary_text, SummaryItem, TariffSummary};
pub use tariff::{validate_tariff, ComponentKind, TariffError, TariffRef, ValidTariff};
