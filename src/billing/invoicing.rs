//! Invoices: a run consolidates each driver's priced, unbilled sessions of a month into one
//! invoice, numbered in one unbroken sequence per series inside the issuing transaction.
//! Issued invoices never change; corrections are credit notes that reference the original.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveDateTime, TimeZone};
use diesel::prelude::*;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::money::vat_on;
use super::records::BillingStatus;
use super::{Money, PricedSession};
use crate::db::schema::{
    charging_sessions, invoice_lines, invoice_series, invoices, session_billing,
};
use crate::db::{write_tx, DbConn};
use crate::http::ApiError;

/// The seller printed on every invoice (from configuration).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Seller {
    pub name: String,
    pub org_number: String,
    pub vat_number: String,
    pub address: String,
}

/// The buyer as it was when the invoice was issued.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Buyer {
    pub user_id: Option<i64>,
    pub name: String,
    pub email: Option<String>,
}

/// A stored invoice or credit note.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invoices)]
pub struct InvoiceRow {
    pub id: i64,
    pub series: String,
    pub seq: i64,
    pub number: String,
    pub kind: String,
    pub user_id: Option<i64>,
    pub period: String,
    pub issued_at: NaiveDateTime,
    pub currency: String,
    pub excl_vat: i64,
    pub vat: i64,
    pub total: i64,
    pub credits_invoice_id: Option<i64>,
    pub buyer: String,
    pub seller: String,
    pub note: Option<String>,
}

/// A stored invoice line.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = invoice_lines)]
pub struct LineRow {
    pub id: i64,
    pub invoice_id: i64,
    pub session_id: Option<i64>,
    pub description: String,
    pub energy_wh: i64,
    pub charging_seconds: i64,
    pub idle_seconds: i64,
    pub vat_rate: String,
    pub excl_vat: i64,
    pub details: String,
}

/// An invoice line to store.
#[derive(Debug, Insertable)]
#[diesel(table_name = invoice_lines)]
struct NewLine {
    invoice_id: i64,
    session_id: Option<i64>,
    description: String,
    energy_wh: i64,
    charging_seconds: i64,
    idle_seconds: i64,
    vat_rate: String,
    excl_vat: i64,
    details: String,
}

/// Stores lines in multi-row inserts (9 columns: 1,000 rows stay under both backends'
/// bind-parameter limits).
fn insert_lines(conn: &mut DbConn, lines: &[NewLine]) -> QueryResult<()> {
    for chunk in lines.chunks(1000) {
        // Multi-row VALUES needs each backend's own query builder.
        match conn {
            DbConn::Sqlite(c) => diesel::insert_into(invoice_lines::table)
                .values(chunk)
                .execute(c)?,
            DbConn::Postgres(c) => diesel::insert_into(invoice_lines::table)
                .values(chunk)
                .execute(c)?,
        };
    }
    Ok(())
}

/// Parses `YYYY-MM` into the month's first day.
pub fn parse_period(period: &str) -> Result<NaiveDate, ApiError> {
    NaiveDate::parse_from_str(&format!("{period}-01"), "%Y-%m-%d")
        .ok()
        .filter(|_| period.len() == 7)
        .ok_or_else(|| ApiError::unprocessable("invalid_period", "period must be YYYY-MM"))
}

/// The month `[from, to)` in UTC, with month boundaries at local midnight in `tz`.
pub fn month_bounds(first: NaiveDate, tz: chrono_tz::Tz) -> (NaiveDateTime, NaiveDateTime) {
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .expect("a month after a valid date");
    let at = |d: NaiveDate| {
        tz.from_local_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
            .earliest()
            .map(|t| t.naive_utc())
            .unwrap_or_else(|| d.and_hms_opt(0, 0, 0).expect("midnight"))
    };
    (at(first), at(next))
}

/// What a run did.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct RunReport {
    pub period: String,
    pub invoices_issued: usize,
    pub sessions_billed: usize,
    /// Numbers of the invoices issued by this run.
    pub numbers: Vec<String>,
    /// Sessions of the period held for review (not invoiced).
    pub sessions_held: i64,
}

/// Creates a series at 1 if it does not exist; safe to race (the insert is a no-op then).
fn ensure_series(conn: &mut DbConn, series: &str) -> QueryResult<()> {
    let row = (
        invoice_series::series.eq(series),
        invoice_series::next_number.eq(1i64),
    );
    // ON CONFLICT needs each backend's own query builder.
    match conn {
        DbConn::Sqlite(c) => diesel::insert_into(invoice_series::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
        DbConn::Postgres(c) => diesel::insert_into(invoice_series::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    Ok(())
}

/// Takes the next number of a series (which must exist, see [`ensure_series`]). On
/// PostgreSQL the row lock taken by the update is held until the issuing transaction ends, so
/// concurrent runs queue and numbers have no gaps; a rollback returns the number.
fn next_number(conn: &mut DbConn, series: &str) -> QueryResult<i64> {
    let next: i64 = diesel::update(invoice_series::table.find(series))
        .set(invoice_series::next_number.eq(invoice_series::next_number + 1))
        .returning(invoice_series::next_number)
        .get_result(conn)?;
    Ok(next - 1)
}

/// Formats an invoice number: series and a zero-padded sequence (`LK-000042`).
pub fn format_number(series: &str, seq: i64) -> String {
    format!("{series}-{seq:06}")
}

/// (user, session, excl. VAT, currency, priced record, charge point, started at)
type BillableRow = (
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<String>,
    String,
    Option<NaiveDateTime>,
);

struct Billable {
    session_id: i64,
    excl_vat: i64,
    currency: String,
    priced: Option<PricedSession>,
    charge_point_id: String,
    started_at: Option<NaiveDateTime>,
}

fn billable(
    conn: &mut DbConn,
    users: &[i64],
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<(i64, Billable)>> {
    let mut q = session_billing::table
        .inner_join(charging_sessions::table)
        .filter(session_billing::status.eq(BillingStatus::Priced.as_str()))
        .filter(session_billing::invoice_id.is_null())
        .filter(charging_sessions::stopped_at.ge(from))
        .filter(charging_sessions::stopped_at.lt(to))
        .filter(charging_sessions::user_id.is_not_null())
        .order((
            charging_sessions::user_id,
            charging_sessions::stopped_at,
            charging_sessions::id,
        ))
        .select((
            charging_sessions::user_id.assume_not_null(),
            session_billing::session_id,
            session_billing::excl_vat,
            session_billing::currency,
            session_billing::priced,
            charging_sessions::charge_point_id,
            charging_sessions::started_at,
        ))
        .into_boxed();
    q = q.filter(charging_sessions::user_id.eq_any(users));
    let rows: Vec<BillableRow> = q.load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(user, session_id, excl, currency, priced, cp, started)| {
            (
                user,
                Billable {
                    session_id,
                    excl_vat: excl.unwrap_or(0),
                    currency: currency.unwrap_or_else(|| "SEK".into()),
                    priced: priced.and_then(|p| serde_json::from_str(&p).ok()),
                    charge_point_id: cp,
                    started_at: started,
                },
            )
        })
        .collect())
}

/// The buyers of a page of drivers as they are now (the invoice keeps this snapshot).
fn buyers_of(conn: &mut DbConn, ids: &[i64]) -> QueryResult<std::collections::HashMap<i64, Buyer>> {
    use crate::db::schema::users as u;
    let rows: Vec<(i64, Option<String>, Option<String>)> = u::table
        .filter(u::id.eq_any(ids))
        .select((u::id, u::name, u::email))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, email)| {
            let buyer = Buyer {
                user_id: Some(id),
                name: name.unwrap_or_else(|| "(erased account)".into()),
                email,
            };
            (id, buyer)
        })
        .collect())
}

/// VAT per rate on the summed amounts of each rate (VAT is computed on totals, not per line).
fn vat_by_rate(lines: &[(Decimal, i64)]) -> Result<i64, ApiError> {
    let mut by_rate: BTreeMap<Decimal, i64> = BTreeMap::new();
    for (rate, excl) in lines {
        let sum = by_rate.entry(*rate).or_default();
        *sum = sum.checked_add(*excl).ok_or_else(out_of_range)?;
    }
    by_rate.into_iter().try_fold(0i64, |acc, (rate, excl)| {
        acc.checked_add(vat_on(excl, rate).map_err(|_| out_of_range())?)
            .ok_or_else(out_of_range)
    })
}

/// An invoice whose amounts do not fit: refused with the reason rather than wrapped around.
fn out_of_range() -> ApiError {
    ApiError::unprocessable(
        "amount_out_of_range",
        "the invoice's amounts are out of range; review the period's sessions",
    )
}

/// What a run issues for one driver and the context it needs.
struct Issue<'a> {
    period: &'a str,
    series: &'a str,
    seller: &'a Seller,
    now: NaiveDateTime,
}

/// A driver's invoice must be rolled back because another run billed some of its sessions.
fn lost_race(e: &ApiError) -> bool {
    matches!(
        e,
        ApiError::Conflict {
            code: "concurrent_run",
            ..
        }
    )
}

/// Issues one driver's invoice inside the caller's transaction. The number's row lock orders
/// concurrent runs; if another run billed any of these sessions meanwhile, this fails with
/// [`lost_race`] and the caller rolls back, returning the number.
fn issue_in_tx(
    conn: &mut DbConn,
    user_id: i64,
    buyer: &Buyer,
    sessions: &[(i64, Billable)],
    ctx: &Issue<'_>,
) -> Result<(String, usize), ApiError> {
    let (period, series, seller, now) = (ctx.period, ctx.series, ctx.seller, ctx.now);
    {
        let seq = next_number(conn, series)?;
        let currency = sessions[0].1.currency.clone();
        let rated: Vec<(Decimal, i64)> = sessions
            .iter()
            .map(|(_, b)| {
                (
                    b.priced.as_ref().map_or(Decimal::from(25), |p| p.vat_rate),
                    b.excl_vat,
                )
            })
            .collect();
        let excl_vat = rated
            .iter()
            .try_fold(0i64, |acc, (_, e)| acc.checked_add(*e))
            .ok_or_else(out_of_range)?;
        let vat = vat_by_rate(&rated)?;
        let total = excl_vat.checked_add(vat).ok_or_else(out_of_range)?;
        let number = format_number(series, seq);
        let invoice_id: i64 = diesel::insert_into(invoices::table)
            .values((
                invoices::series.eq(series),
                invoices::seq.eq(seq),
                invoices::number.eq(&number),
                invoices::kind.eq("invoice"),
                invoices::user_id.eq(Some(user_id)),
                invoices::period.eq(period),
                invoices::issued_at.eq(now),
                invoices::currency.eq(&currency),
                invoices::excl_vat.eq(excl_vat),
                invoices::vat.eq(vat),
                invoices::total.eq(total),
                invoices::buyer.eq(serde_json::to_string(buyer).unwrap_or_default()),
                invoices::seller.eq(serde_json::to_string(seller).unwrap_or_default()),
            ))
            .returning(invoices::id)
            .get_result(conn)?;
        let new_lines: Vec<NewLine> = sessions
            .iter()
            .zip(&rated)
            .map(|((_, b), (rate, _))| {
                let p = b.priced.as_ref();
                let started = b
                    .started_at
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default();
                NewLine {
                    invoice_id,
                    session_id: Some(b.session_id),
                    description: format!(
                        "Laddning {started} UTC, {} (session {})",
                        b.charge_point_id, b.session_id
                    ),
                    energy_wh: p.map_or(0, |p| p.energy_wh),
                    charging_seconds: p.map_or(0, |p| p.charging_seconds),
                    idle_seconds: p.map_or(0, |p| p.idle_seconds),
                    vat_rate: rate.normalize().to_string(),
                    excl_vat: b.excl_vat,
                    details: p
                        .map(|p| serde_json::to_string(&p.lines).unwrap_or_default())
                        .unwrap_or_default(),
                }
            })
            .collect();
        insert_lines(conn, &new_lines)?;
        let ids: Vec<i64> = sessions.iter().map(|(_, b)| b.session_id).collect();
        let marked = diesel::update(
            session_billing::table
                .filter(session_billing::session_id.eq_any(&ids))
                .filter(session_billing::invoice_id.is_null()),
        )
        .set((
            session_billing::status.eq(BillingStatus::Billed.as_str()),
            session_billing::invoice_id.eq(Some(invoice_id)),
        ))
        .execute(conn)?;
        if marked != ids.len() {
            return Err(ApiError::conflict(
                "concurrent_run",
                "another run billed these sessions",
            ));
        }
        Ok((number, ids.len()))
    }
}

/// One invoice to issue: the driver, the buyer snapshot and the sessions (one currency).
type DriverInvoice = (i64, Buyer, Vec<(i64, Billable)>);

/// Invoices issued per transaction: one commit (one fsync on PostgreSQL) per batch.
const INVOICES_PER_TRANSACTION: usize = 100;

/// Issues a batch of drivers' invoices in one transaction. If another run raced for any of
/// them, the batch rolls back and each driver is retried in a transaction of its own, so one
/// lost race costs no one else their invoice.
fn issue_batch(
    conn: &mut DbConn,
    batch: &[DriverInvoice],
    ctx: &Issue<'_>,
) -> Result<Vec<(String, usize)>, ApiError> {
    let all = write_tx(conn, |conn| {
        batch
            .iter()
            .map(|(user, buyer, sessions)| issue_in_tx(conn, *user, buyer, sessions, ctx))
            .collect::<Result<Vec<_>, _>>()
    });
    match all {
        Err(e) if lost_race(&e) => {
            let mut issued = Vec::new();
            for (user, buyer, sessions) in batch {
                match write_tx(conn, |conn| issue_in_tx(conn, *user, buyer, sessions, ctx)) {
                    Ok(one) => issued.push(one),
                    Err(e) if lost_race(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(issued)
        }
        other => other,
    }
}

/// Runs invoicing for a period. Idempotent: a second run bills nothing twice.
pub fn run(
    conn: &mut DbConn,
    period: &str,
    tz: chrono_tz::Tz,
    series: &str,
    seller: &Seller,
    now: NaiveDateTime,
) -> Result<RunReport, ApiError> {
    let first = parse_period(period)?;
    let bounds = month_bounds(first, tz);
    ensure_series(conn, series)?;
    // Finished sessions whose pricing did not complete at stop are priced (or held) now.
    super::records::price_unpriced(conn, Some(bounds), now)?;
    let users: Vec<i64> = session_billing::table
        .inner_join(charging_sessions::table)
        .filter(session_billing::status.eq(BillingStatus::Priced.as_str()))
        .filter(session_billing::invoice_id.is_null())
        .filter(charging_sessions::stopped_at.ge(bounds.0))
        .filter(charging_sessions::stopped_at.lt(bounds.1))
        .filter(charging_sessions::user_id.is_not_null())
        .select(charging_sessions::user_id.assume_not_null())
        .distinct()
        .order(charging_sessions::user_id.assume_not_null())
        .load(conn)?;
    let mut report = RunReport {
        period: period.to_string(),
        ..Default::default()
    };
    let ctx = Issue {
        period,
        series,
        seller,
        now,
    };
    // Read sessions a page of drivers at a time: one query per page, bounded memory.
    for page in users.chunks(INVOICES_PER_TRANSACTION) {
        let mut sessions = billable(conn, page, bounds.0, bounds.1)?;
        let buyers = buyers_of(conn, page)?;
        let mut batch = Vec::new();
        while !sessions.is_empty() {
            let user = sessions[0].0;
            let n = sessions.iter().take_while(|(u, _)| *u == user).count();
            // One invoice per currency: amounts in different currencies never add up.
            let mut by_currency: BTreeMap<String, Vec<(i64, Billable)>> = BTreeMap::new();
            for row in sessions.drain(..n) {
                by_currency
                    .entry(row.1.currency.clone())
                    .or_default()
                    .push(row);
            }
            let buyer = buyers.get(&user).cloned().unwrap_or(Buyer {
                user_id: Some(user),
                name: "(erased account)".into(),
                email: None,
            });
            batch.extend(
                by_currency
                    .into_values()
                    .map(|rows| (user, buyer.clone(), rows)),
            );
        }
        for (number, n) in issue_batch(conn, &batch, &ctx)? {
            report.invoices_issued += 1;
            report.sessions_billed += n;
            report.numbers.push(number);
        }
    }
    report.sessions_held = session_billing::table
        .inner_join(charging_sessions::table)
        .filter(session_billing::status.eq(BillingStatus::Held.as_str()))
        .filter(charging_sessions::stopped_at.ge(bounds.0))
        .filter(charging_sessions::stopped_at.lt(bounds.1))
        .count()
        .get_result(conn)?;
    Ok(report)
}

/// Issues a credit note for the whole of an invoice (one per invoice).
pub fn credit(
    conn: &mut DbConn,
    invoice_id: i64,
    reason: &str,
    series: &str,
    now: NaiveDateTime,
) -> Result<InvoiceRow, ApiError> {
    ensure_series(conn, series)?;
    write_tx(conn, |conn| {
        let original = find(conn, invoice_id)?.ok_or_else(|| ApiError::not_found("invoice"))?;
        if original.kind != "invoice" {
            return Err(ApiError::conflict(
                "not_an_invoice",
                "only invoices can be credited",
            ));
        }
        // The series lock orders concurrent credits of the same invoice, so the check below
        // sees a credit note committed meanwhile.
        let seq = next_number(conn, series)?;
        let existing: i64 = invoices::table
            .filter(invoices::credits_invoice_id.eq(invoice_id))
            .count()
            .get_result(conn)?;
        if existing > 0 {
            return Err(ApiError::conflict(
                "already_credited",
                "this invoice has a credit note already",
            ));
        }

        let id: i64 = diesel::insert_into(invoices::table)
            .values((
                invoices::series.eq(series),
                invoices::seq.eq(seq),
                invoices::number.eq(format_number(series, seq)),
                invoices::kind.eq("credit_note"),
                invoices::user_id.eq(original.user_id),
                invoices::period.eq(&original.period),
                invoices::issued_at.eq(now),
                invoices::currency.eq(&original.currency),
                invoices::excl_vat.eq(-original.excl_vat),
                invoices::vat.eq(-original.vat),
                invoices::total.eq(-original.total),
                invoices::credits_invoice_id.eq(Some(invoice_id)),
                invoices::buyer.eq(&original.buyer),
                invoices::seller.eq(&original.seller),
                invoices::note.eq(Some(reason)),
            ))
            .returning(invoices::id)
            .get_result(conn)?;
        for line in lines(conn, invoice_id)? {
            diesel::insert_into(invoice_lines::table)
                .values((
                    invoice_lines::invoice_id.eq(id),
                    invoice_lines::session_id.eq(line.session_id),
                    invoice_lines::description.eq(format!("Kreditering: {}", line.description)),
                    invoice_lines::energy_wh.eq(line.energy_wh),
                    invoice_lines::charging_seconds.eq(line.charging_seconds),
                    invoice_lines::idle_seconds.eq(line.idle_seconds),
                    invoice_lines::vat_rate.eq(&line.vat_rate),
                    invoice_lines::excl_vat.eq(-line.excl_vat),
                    invoice_lines::details.eq(&line.details),
                ))
                .execute(conn)?;
        }
        find(conn, id)?.ok_or_else(|| ApiError::not_found("invoice"))
    })
}

/// An invoice by id.
pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<InvoiceRow>> {
    invoices::table
        .find(id)
        .select(InvoiceRow::as_select())
        .first(conn)
        .optional()
}

/// The lines of an invoice in order.
pub fn lines(conn: &mut DbConn, invoice_id: i64) -> QueryResult<Vec<LineRow>> {
    invoice_lines::table
        .filter(invoice_lines::invoice_id.eq(invoice_id))
        .order(invoice_lines::id)
        .select(LineRow::as_select())
        .load(conn)
}

/// Invoices newest first, optionally of one user.
pub fn list(
    conn: &mut DbConn,
    user: Option<i64>,
    limit: i64,
    before: Option<i64>,
) -> QueryResult<Vec<InvoiceRow>> {
    let mut q = invoices::table
        .order(invoices::id.desc())
        .limit(limit)
        .select(InvoiceRow::as_select())
        .into_boxed();
    if let Some(u) = user {
        q = q.filter(invoices::user_id.eq(u));
    }
    if let Some(b) = before {
        q = q.filter(invoices::id.lt(b));
    }
    q.load(conn)
}

/// An invoice as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct InvoiceView {
    pub id: i64,
    #[schema(example = "LK-000001")]
    pub number: String,
    /// invoice or credit_note.
    pub kind: String,
    #[schema(example = "2026-11")]
    pub period: String,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::http::time::as_utc")]
    pub issued_at: NaiveDateTime,
    /// `{currency, excl_vat, vat, total}` in minor units (öre).
    pub amount: Money,
    pub lines: Vec<LineView>,
    pub seller: Seller,
    pub buyer: Buyer,
    /// For a credit note: the invoice it corrects.
    pub credits_invoice_id: Option<i64>,
    pub note: Option<String>,
}

/// One invoice line: one charging session.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LineView {
    pub session_id: Option<i64>,
    pub description: String,
    pub energy_wh: i64,
    pub charging_seconds: i64,
    pub idle_seconds: i64,
    #[schema(example = "25")]
    pub vat_rate: String,
    /// Amount excluding VAT, minor units.
    pub excl_vat: i64,
    /// The priced components of the session, as stored when the line was issued (a JSON array).
    #[schema(value_type = Vec<crate::billing::pricing::PriceLine>)]
    pub components: serde_json::Value,
}

/// Builds the API view of an invoice.
pub fn view(conn: &mut DbConn, row: InvoiceRow) -> Result<InvoiceView, ApiError> {
    let lines = lines(conn, row.id)?
        .into_iter()
        .map(|l| LineView {
            session_id: l.session_id,
            description: l.description,
            energy_wh: l.energy_wh,
            charging_seconds: l.charging_seconds,
            idle_seconds: l.idle_seconds,
            vat_rate: l.vat_rate,
            excl_vat: l.excl_vat,
            components: serde_json::from_str(&l.details)
                .unwrap_or(serde_json::Value::Array(vec![])),
        })
        .collect();
    let parse_err = |what: &str| {
        ApiError::Internal(format!(
            "stored {what} of invoice {} is not valid JSON",
            row.id
        ))
    };
    Ok(InvoiceView {
        id: row.id,
        number: row.number,
        kind: row.kind,
        period: row.period,
        issued_at: row.issued_at,
        amount: Money {
            currency: row.currency,
            excl_vat: row.excl_vat,
            vat: row.vat,
            total: row.total,
        },
        lines,
        seller: serde_json::from_str(&row.seller).map_err(|_| parse_err("seller"))?,
        buyer: serde_json::from_str(&row.buyer).map_err(|_| parse_err("buyer"))?,
        credits_invoice_id: row.credits_invoice_id,
        note: row.note,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_months_follow_local_midnight_across_dst() {
        assert!(parse_period("2026-13").is_err());
        assert!(parse_period("2026-1").is_err());
        let (from, to) = month_bounds(
            parse_period("2026-03").unwrap(),
            chrono_tz::Europe::Stockholm,
        );
        // 1 March 00:00 CET = 28 Feb 23:00 UTC; 1 April 00:00 CEST = 31 March 22:00 UTC.
        assert_eq!(from.to_string(), "2026-02-28 23:00:00");
        assert_eq!(to.to_string(), "2026-03-31 22:00:00");
    }

    #[test]
    fn vat_is_computed_per_rate_on_totals() {
        // 3 × 33,33 kr at 25 %: on the total 99,99 kr → 25,00 kr (24,9975), not 3 × 8,33 = 24,99.
        let lines = vec![
            (Decimal::from(25), 3333),
            (Decimal::from(25), 3333),
            (Decimal::from(25), 3333),
        ];
        assert_eq!(vat_by_rate(&lines).unwrap(), 2500);
        let mixed = vec![(Decimal::from(25), 10000), (Decimal::from(6), 10000)];
        assert_eq!(vat_by_rate(&mixed).unwrap(), 2500 + 600);
        assert_eq!(format_number("LK", 42), "LK-000042");
    }
}
