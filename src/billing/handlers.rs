//! HTTP handlers: tariffs, price review and invoice runs for operators; invoices and their
//! PDFs for drivers.

use actix_web::{get, post, put, web, HttpResponse};
use chrono::NaiveDateTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::invoicing::{self, InvoiceView, RunReport};
use super::records::{self, TariffRow};
use super::{summarize, validate_tariff, TariffSummary};
use crate::audit::{self, NewEvent};
use crate::db::write_tx;
use crate::http::auth::{AuthUser, Operator};
use crate::http::error::ErrorBody;
use crate::http::pagination::{Page, PageQuery};
use crate::http::time::now;
use crate::http::ApiError;
use crate::state::State;

/// Registers the routes.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(create_tariff)
        .service(list_tariffs)
        .service(new_tariff_version)
        .service(set_charge_point_tariff)
        .service(release_session)
        .service(invoice_run)
        .service(admin_invoices)
        .service(credit_note)
        .service(my_invoices)
        .service(get_invoice)
        .service(invoice_pdf);
}

/// A tariff: a name, a VAT rate in percent and an OCPI 2.2.1 Tariff object (prices excl. VAT).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TariffInput {
    #[schema(example = "Standard AC")]
    pub name: String,
    /// VAT in percent, e.g. 25.
    #[schema(value_type = f64, example = 25)]
    pub vat_rate: serde_json::Value,
    /// ISO 4217; defaults to the tariff's own `currency`, else SEK.
    pub currency: Option<String>,
    /// An OCPI 2.2.1 Tariff object.
    #[schema(value_type = Object)]
    pub tariff: serde_json::Value,
}

/// A stored tariff version.
#[derive(Debug, Serialize, ToSchema)]
pub struct TariffView {
    /// The tariff's id (stable across versions); charge points point at it.
    pub id: i64,
    pub version: i64,
    pub name: String,
    pub currency: String,
    #[schema(example = "25")]
    pub vat_rate: String,
    #[schema(value_type = Object)]
    pub tariff: serde_json::Value,
    /// Structured and human summary ("3,49 kr/kWh, …, 25 % moms ingår").
    pub summary: TariffSummary,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::http::time::as_utc")]
    pub created_at: NaiveDateTime,
}

/// Builds the API view of a stored tariff.
pub fn tariff_view(row: TariffRow) -> Result<TariffView, ApiError> {
    let valid = row.valid()?;
    Ok(TariffView {
        id: row.tariff_group,
        version: row.version,
        name: row.name,
        currency: row.currency,
        vat_rate: row.vat_rate,
        tariff: valid.ocpi_json().clone(),
        summary: summarize(&valid),
        created_at: row.created_at,
    })
}

fn validated(input: &TariffInput) -> Result<(String, super::ValidTariff), ApiError> {
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::unprocessable(
            "invalid_tariff",
            "name: must have 1 to 100 characters",
        ));
    }
    let rate: Decimal = match &input.vat_rate {
        serde_json::Value::Number(n) => n.to_string().parse().ok(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::unprocessable(
            "invalid_tariff",
            "vat_rate: must be a number in percent, e.g. 25",
        )
    })?;
    let currency = input
        .currency
        .clone()
        .or_else(|| {
            input
                .tariff
                .get("currency")
                .and_then(|c| c.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "SEK".into());
    let valid = validate_tariff(&input.tariff, &currency, rate).map_err(|e| {
        ApiError::unprocessable("invalid_tariff", format!("{}: {}", e.field, e.message))
    })?;
    Ok((name.to_string(), valid))
}

/// Creates a tariff (operator). Invalid tariffs get 422 naming the offending field.
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), request_body = TariffInput,
    responses((status = 201, body = TariffView), (status = 403, body = ErrorBody), (status = 422, description = "Invalid tariff; the message names the field", body = ErrorBody)))]
#[post("/admin/tariffs")]
pub async fn create_tariff(
    state: State,
    _op: Operator,
    body: web::Json<TariffInput>,
) -> Result<HttpResponse, ApiError> {
    let (name, valid) = validated(&body)?;
    let row = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                Ok::<_, ApiError>(records::insert_tariff(conn, None, &name, &valid, now())?)
            })
        })
        .await?;
    Ok(HttpResponse::Created().json(tariff_view(row)?))
}

/// Current versions of all tariffs (operator).
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), params(PageQuery),
    responses((status = 200, body = Page<TariffView>), (status = 403, body = ErrorBody)))]
#[get("/admin/tariffs")]
pub async fn list_tariffs(
    state: State,
    _op: Operator,
    q: web::Query<PageQuery>,
) -> Result<web::Json<Page<TariffView>>, ApiError> {
    let page = q.validate()?;
    let rows = state
        .db
        .run(move |conn| Ok(records::list_tariffs(conn, page.limit + 1, page.cursor)?))
        .await?;
    let views = rows
        .into_iter()
        .map(tariff_view)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(web::Json(Page::from_rows(views, page, |t| t.id)))
}

/// Changes a tariff by adding a new version; sessions keep the version they started under.
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), request_body = TariffInput,
    params(("id" = i64, Path, description = "Tariff id")),
    responses((status = 200, body = TariffView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
#[put("/admin/tariffs/{id}")]
pub async fn new_tariff_version(
    state: State,
    _op: Operator,
    id: web::Path<i64>,
    body: web::Json<TariffInput>,
) -> Result<web::Json<TariffView>, ApiError> {
    let (name, valid) = validated(&body)?;
    let group = id.into_inner();
    let row = state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                records::current_tariff(conn, group)?
                    .ok_or_else(|| ApiError::not_found("tariff"))?;
                Ok(records::insert_tariff(
                    conn,
                    Some(group),
                    &name,
                    &valid,
                    now(),
                )?)
            })
        })
        .await?;
    Ok(web::Json(tariff_view(row)?))
}

/// Which tariff prices a charge point.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TariffChoice {
    /// A tariff id, or null for none.
    pub tariff_id: Option<i64>,
}

/// Points a charge point at a tariff (operator). Running sessions keep theirs.
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), request_body = TariffChoice,
    params(("id" = String, Path, description = "Charge point id")),
    responses((status = 204, description = "Set"), (status = 404, body = ErrorBody)))]
#[put("/admin/charge-points/{id}/tariff")]
pub async fn set_charge_point_tariff(
    state: State,
    _op: Operator,
    id: web::Path<String>,
    body: web::Json<TariffChoice>,
) -> Result<HttpResponse, ApiError> {
    let cp = id.into_inner();
    let group = body.tariff_id;
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                crate::locations::queries::find_charge_point(conn, &cp)?
                    .ok_or_else(|| ApiError::not_found("charge point"))?;
                records::set_charge_point_tariff(conn, &cp, group)
            })
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Releases a session held for review so the next invoice run bills it (operator).
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path, description = "Session id")),
    responses((status = 204, description = "Released"), (status = 404, body = ErrorBody), (status = 409, description = "Not held, or not priceable", body = ErrorBody)))]
#[post("/admin/sessions/{id}/release")]
pub async fn release_session(
    state: State,
    op: Operator,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    release(&state, op.0.id, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Releases a held session and audits it (the rules of `POST /admin/sessions/{id}/release`,
/// shared with the web portal).
pub async fn release(state: &State, operator: i64, id: i64) -> Result<(), ApiError> {
    state
        .db
        .run(move |conn| {
            write_tx(conn, |conn| {
                let t = now();
                let billing = records::release(conn, id, operator, t)?;
                let event =
                    NewEvent::user(Some(operator), "session_released", audit::SUCCESS, None, t)
                        .because(format!(
                            "session {id} released for billing; was held: {}",
                            billing.hold_reason.unwrap_or_default()
                        ));
                audit::record(conn, &event)?;
                Ok::<_, ApiError>(())
            })
        })
        .await
}

/// The month to invoice.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    #[schema(example = "2026-11")]
    pub period: String,
}

/// Runs invoicing for a month (operator). Idempotent: a second run bills nothing twice.
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), request_body = RunRequest,
    responses((status = 200, body = RunReport), (status = 422, description = "Invalid period", body = ErrorBody)))]
#[post("/admin/invoice-runs")]
pub async fn invoice_run(
    state: State,
    _op: Operator,
    body: web::Json<RunRequest>,
) -> Result<web::Json<RunReport>, ApiError> {
    Ok(web::Json(
        run_invoices(&state, body.into_inner().period).await?,
    ))
}

/// Runs invoicing for a month `YYYY-MM` with the configured series and seller (the rules of
/// `POST /admin/invoice-runs`, shared with the web portal).
pub async fn run_invoices(state: &State, period: String) -> Result<RunReport, ApiError> {
    invoicing::parse_period(&period)?;
    let config = state.config.clone();
    let report = state
        .db
        .run(move |conn| {
            invoicing::run(
                conn,
                &period,
                config.billing_timezone,
                &config.invoice_series,
                &config.seller(),
                now(),
            )
        })
        .await?;
    Ok(report)
}

/// All invoices and credit notes (operator).
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), params(PageQuery),
    responses((status = 200, body = Page<InvoiceView>), (status = 403, body = ErrorBody)))]
#[get("/admin/invoices")]
pub async fn admin_invoices(
    state: State,
    _op: Operator,
    q: web::Query<PageQuery>,
) -> Result<web::Json<Page<InvoiceView>>, ApiError> {
    Ok(web::Json(invoice_page(&state, None, q.into_inner()).await?))
}

/// One page of invoices: a driver's (`Some(user)`) or all (operator).
pub async fn invoice_page(
    state: &State,
    user: Option<i64>,
    q: PageQuery,
) -> Result<Page<InvoiceView>, ApiError> {
    let page = q.validate()?;
    let views = state
        .db
        .run(move |conn| {
            invoicing::list(conn, user, page.limit + 1, page.cursor)?
                .into_iter()
                .map(|row| invoicing::view(conn, row))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    Ok(Page::from_rows(views, page, |i| i.id))
}

/// Why an invoice is credited.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditRequest {
    pub reason: String,
}

/// Issues a credit note for an invoice (operator). The invoice itself never changes.
#[utoipa::path(tag = "admin", security(("bearer" = []), ("cookie" = [])), request_body = CreditRequest,
    params(("id" = i64, Path, description = "Invoice id")),
    responses((status = 201, body = InvoiceView), (status = 404, body = ErrorBody), (status = 409, description = "Already credited", body = ErrorBody)))]
#[post("/admin/invoices/{id}/credit-note")]
pub async fn credit_note(
    state: State,
    op: Operator,
    id: web::Path<i64>,
    body: web::Json<CreditRequest>,
) -> Result<HttpResponse, ApiError> {
    let reason = body.into_inner().reason.trim().to_string();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(ApiError::unprocessable(
            "invalid_field",
            "reason: must have 1 to 500 characters",
        ));
    }
    let id = id.into_inner();
    let series = state.config.invoice_series.clone();
    let operator = op.0.id;
    let view = state
        .db
        .run(move |conn| {
            let t = now();
            let row = invoicing::credit(conn, id, &reason, &series, t)?;
            let event = NewEvent::user(
                Some(operator),
                "credit_note_issued",
                audit::SUCCESS,
                None,
                t,
            )
            .because(format!("{} credits invoice {id}: {reason}", row.number));
            audit::record(conn, &event)?;
            invoicing::view(conn, row)
        })
        .await?;
    Ok(HttpResponse::Created().json(view))
}

/// The signed-in driver's invoices and credit notes, newest first.
#[utoipa::path(tag = "invoices", security(("bearer" = []), ("cookie" = [])), params(PageQuery),
    responses((status = 200, body = Page<InvoiceView>), (status = 401, body = ErrorBody)))]
#[get("/invoices")]
pub async fn my_invoices(
    state: State,
    me: AuthUser,
    q: web::Query<PageQuery>,
) -> Result<web::Json<Page<InvoiceView>>, ApiError> {
    Ok(web::Json(
        invoice_page(&state, Some(me.id), q.into_inner()).await?,
    ))
}

/// An invoice the caller may see: the driver's own, or any for an operator.
pub async fn visible_invoice(
    state: &State,
    me: &AuthUser,
    id: i64,
) -> Result<InvoiceView, ApiError> {
    let (user, operator) = (me.id, me.is_operator());
    state
        .db
        .run(move |conn| {
            let row = invoicing::find(conn, id)?
                .filter(|i| operator || i.user_id == Some(user))
                .ok_or_else(|| ApiError::not_found("invoice"))?;
            invoicing::view(conn, row)
        })
        .await
}

/// One invoice with its lines (one per session). Another driver's invoice answers 404.
#[utoipa::path(tag = "invoices", security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path, description = "Invoice id")),
    responses((status = 200, body = InvoiceView), (status = 404, body = ErrorBody)))]
#[get("/invoices/{id}")]
pub async fn get_invoice(
    state: State,
    me: AuthUser,
    id: web::Path<i64>,
) -> Result<web::Json<InvoiceView>, ApiError> {
    Ok(web::Json(
        visible_invoice(&state, &me, id.into_inner()).await?,
    ))
}

/// The invoice as PDF.
#[utoipa::path(tag = "invoices", security(("bearer" = []), ("cookie" = [])),
    params(("id" = i64, Path, description = "Invoice id")),
    responses((status = 200, description = "application/pdf", content_type = "application/pdf", body = Vec<u8>), (status = 404, body = ErrorBody)))]
#[get("/invoices/{id}/pdf")]
pub async fn invoice_pdf(
    state: State,
    me: AuthUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let invoice = visible_invoice(&state, &me, id.into_inner()).await?;
    let pdf = web::block(move || {
        let bytes = super::pdf::render(&invoice);
        (invoice.number, bytes)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("application/pdf")
        .insert_header((
            "Content-Disposition",
            format!("inline; filename=\"{}.pdf\"", pdf.0),
        ))
        .body(pdf.1))
}
