//! HTTP handlers for `/me/activity` and `/admin/audit-events`.

use actix_web::{get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{Event, EventFilter};
use crate::http::auth::{AuthUser, Operator};
use crate::http::error::ErrorBody;
use crate::http::pagination::{Page, PageQuery};
use crate::http::ApiError;
use crate::state::State;

/// Registers the routes.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(my_activity).service(all_events);
}

/// Filters for the operator's audit log.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AuditQuery {
    pub user_id: Option<i64>,
    pub action: Option<String>,
    pub charge_point_id: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

/// One page of audit events matching a filter, newest first.
pub async fn page_of(
    state: &State,
    filter: EventFilter,
    query: PageQuery,
) -> Result<Page<Event>, ApiError> {
    let page = query.validate()?;
    let rows = state
        .db
        .run(move |conn| Ok(super::list(conn, &filter, page)?))
        .await?;
    Ok(Page::from_rows(rows, page, |e| e.id))
}

/// The signed-in user's own security events (logins, failures, lockouts, password changes…).
#[utoipa::path(
    tag = "me",
    security(("bearer" = []), ("cookie" = [])),
    params(PageQuery),
    responses(
        (status = 200, body = Page<Event>),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
#[get("/me/activity")]
pub async fn my_activity(
    state: State,
    me: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<web::Json<Page<Event>>, ApiError> {
    let filter = EventFilter {
        user_id: Some(me.id),
        ..Default::default()
    };
    Ok(web::Json(
        page_of(&state, filter, query.into_inner()).await?,
    ))
}

/// The whole audit log, newest first, filterable (operator).
#[utoipa::path(
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(AuditQuery),
    responses(
        (status = 200, body = Page<Event>),
        (status = 403, description = "Not an operator", body = ErrorBody),
    )
)]
#[get("/admin/audit-events")]
pub async fn all_events(
    state: State,
    _op: Operator,
    query: web::Query<AuditQuery>,
) -> Result<web::Json<Page<Event>>, ApiError> {
    let q = query.into_inner();
    let filter = EventFilter {
        user_id: q.user_id,
        action: q.action,
        charge_point_id: q.charge_point_id,
    };
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(web::Json(page_of(&state, filter, page).await?))
}
