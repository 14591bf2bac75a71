//! The operator's pages under `/operator`: chargers and connectors, sessions held for review
//! with release, invoice runs and invoices, the audit log with filters, and tariffs.

use actix_web::web;
use minijinja::context;
use serde::Deserialize;

use super::context::{redirect, value, Cx, OrPage, Page};
use super::driver::{CsrfForm, SessionRow};
use crate::billing::handlers as billing;
use crate::http::pagination::PageQuery;
use crate::http::time::now;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/operator", web::get().to(chargers))
        .route("/operator/held", web::get().to(held))
        .route("/operator/held/{id}/release", web::post().to(release))
        .route("/operator/invoices", web::get().to(invoices))
        .route("/operator/invoices", web::post().to(run))
        .route("/operator/audit", web::get().to(audit))
        .route("/operator/tariffs", web::get().to(tariffs));
}

async fn chargers(cx: Cx) -> Page {
    cx.operator()?;
    let views = cx
        .state
        .db
        .run(|conn| {
            let found = crate::locations::queries::list_locations(conn, 100, None)?
                .into_iter()
                .map(|l| (l, None))
                .collect();
            crate::locations::load_views(conn, found, now())
        })
        .await
        .or_page(&cx)?;
    cx.render("op_chargers.html", context! { locations => value(&views) })
}

/// The most held sessions one page lists.
const HELD_PAGE: i64 = 100;

async fn held(cx: Cx) -> Page {
    cx.operator()?;
    let views = cx
        .state
        .db
        .run(|conn| {
            let t = now();
            let mut views = Vec::new();
            for id in crate::billing::records::held_session_ids(conn, HELD_PAGE)? {
                if let Some(s) = crate::charging::queries::find_session(conn, id)? {
                    views.push(crate::billing::records::with_cost(conn, s, t)?);
                }
            }
            Ok(views)
        })
        .await
        .or_page(&cx)?;
    let rows: Vec<SessionRow> = views.iter().map(SessionRow::from).collect();
    let flags: Vec<_> = views.iter().map(|s| &s.session.flags).collect();
    cx.render(
        "op_held.html",
        context! { rows => value(&rows), flags => value(&flags) },
    )
}

async fn release(cx: Cx, id: web::Path<i64>, form: web::Form<CsrfForm>) -> Page {
    cx.operator()?;
    let me = cx.check_csrf(&form.csrf)?;
    billing::release(&cx.state, me.id, id.into_inner())
        .await
        .or_back(&cx, "/operator/held")?;
    Ok(redirect("/operator/held?done=released"))
}

fn current_month(cx: &Cx) -> String {
    chrono::Utc::now()
        .with_timezone(&cx.state.config.billing_timezone)
        .format("%Y-%m")
        .to_string()
}

async fn invoice_list(
    cx: &Cx,
    report: Option<crate::billing::invoicing::RunReport>,
    period: String,
) -> Page {
    let found = billing::invoice_page(
        &cx.state,
        None,
        PageQuery {
            limit: Some(50),
            cursor: None,
        },
    )
    .await
    .or_page(cx)?;
    cx.render(
        "op_invoices.html",
        context! { invoices => value(&found.items), report => report.as_ref().map(value), period },
    )
}

async fn invoices(cx: Cx) -> Page {
    cx.operator()?;
    let period = current_month(&cx);
    invoice_list(&cx, None, period).await
}

#[derive(Deserialize)]
struct RunForm {
    csrf: String,
    period: String,
}

async fn run(cx: Cx, form: web::Form<RunForm>) -> Page {
    cx.operator()?;
    let form = form.into_inner();
    cx.check_csrf(&form.csrf)?;
    let period = form.period.trim().to_string();
    let report = billing::run_invoices(&cx.state, period.clone())
        .await
        .or_back(&cx, "/operator/invoices")?;
    invoice_list(&cx, Some(report), period).await
}

#[derive(Deserialize)]
struct AuditForm {
    user_id: Option<String>,
    action: Option<String>,
    charge_point_id: Option<String>,
    cursor: Option<String>,
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

async fn audit(cx: Cx, q: web::Query<AuditForm>) -> Page {
    cx.operator()?;
    let q = q.into_inner();
    let user_text = non_empty(q.user_id);
    let user_id = match &user_text {
        None => None,
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| {
                    crate::http::ApiError::bad_request("invalid_query", "user id must be a number")
                })
                .or_back(&cx, "/operator/audit")?,
        ),
    };
    let action = non_empty(q.action);
    let charge_point_id = non_empty(q.charge_point_id);
    let found = crate::audit::handlers::page_of(
        &cx.state,
        crate::audit::EventFilter {
            user_id,
            action: action.clone(),
            charge_point_id: charge_point_id.clone(),
        },
        PageQuery {
            limit: Some(50),
            cursor: non_empty(q.cursor),
        },
    )
    .await
    .or_page(&cx)?;
    let next = found.next_cursor.map(|c| {
        let mut url = format!("/operator/audit?cursor={c}");
        for (k, v) in [
            ("user_id", &user_text),
            ("action", &action),
            ("charge_point_id", &charge_point_id),
        ] {
            if let Some(v) = v {
                url.push_str(&format!("&{k}={}", super::context::encode(v)));
            }
        }
        url
    });
    cx.render(
        "op_audit.html",
        context! {
            events => value(&found.items),
            next,
            user_id => user_text,
            action,
            charge_point_id,
        },
    )
}

async fn tariffs(cx: Cx) -> Page {
    cx.operator()?;
    let views = cx
        .state
        .db
        .run(|conn| {
            crate::billing::records::list_tariffs(conn, 100, None)?
                .into_iter()
                .map(billing::tariff_view)
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .or_page(&cx)?;
    cx.render("op_tariffs.html", context! { tariffs => value(&views) })
}
