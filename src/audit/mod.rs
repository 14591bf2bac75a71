//! The audit log: every authentication decision, with time, actor, client address, outcome
//! and reason. Drivers read their own events, operators all.

pub mod handlers;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::schema::audit_events;
use crate::db::DbConn;
use crate::http::pagination::PageRequest;

/// Outcomes of an audited decision.
pub const SUCCESS: &str = "success";
pub const FAILURE: &str = "failure";
pub const DENIED: &str = "denied";

/// An event to record.
#[derive(Debug, Clone, Default, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewEvent {
    pub occurred_at: NaiveDateTime,
    pub user_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub client_addr: Option<String>,
    pub charge_point_id: Option<String>,
    pub request_id: Option<String>,
}

impl NewEvent {
    /// An event about a user (or an unknown account when `user_id` is `None`).
    pub fn user(
        user_id: Option<i64>,
        action: &str,
        outcome: &str,
        client_addr: Option<String>,
        now: NaiveDateTime,
    ) -> Self {
        NewEvent {
            occurred_at: now,
            user_id,
            actor: user_id.map_or_else(|| "anonymous".to_string(), |id| format!("user:{id}")),
            action: action.to_string(),
            outcome: outcome.to_string(),
            client_addr,
            ..Default::default()
        }
    }

    /// Adds the reason for the outcome.
    pub fn because(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

/// A recorded event as the API shows it.
#[derive(Debug, Clone, Queryable, Selectable, Serialize, ToSchema)]
#[diesel(table_name = audit_events)]
pub struct Event {
    pub id: i64,
    #[schema(value_type = String, format = DateTime)]
    #[serde(serialize_with = "crate::http::time::as_utc")]
    pub occurred_at: NaiveDateTime,
    pub user_id: Option<i64>,
    pub actor: String,
    pub action: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub client_addr: Option<String>,
    pub charge_point_id: Option<String>,
    pub request_id: Option<String>,
}

/// Records one event.
pub fn record(conn: &mut DbConn, event: &NewEvent) -> QueryResult<()> {
    diesel::insert_into(audit_events::table)
        .values(event)
        .execute(conn)
        .map(drop)
}

/// Filters for listing events.
#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    pub user_id: Option<i64>,
    pub action: Option<String>,
    pub charge_point_id: Option<String>,
}

/// Lists events newest first, one more than the page size so the caller knows if more follow.
pub fn list(conn: &mut DbConn, filter: &EventFilter, page: PageRequest) -> QueryResult<Vec<Event>> {
    let mut query = audit_events::table
        .select(Event::as_select())
        .order(audit_events::id.desc())
        .limit(page.limit + 1)
        .into_boxed();
    if let Some(user_id) = filter.user_id {
        query = query.filter(audit_events::user_id.eq(user_id));
    }
    if let Some(action) = &filter.action {
        query = query.filter(audit_events::action.eq(action.clone()));
    }
    if let Some(cp) = &filter.charge_point_id {
        query = query.filter(audit_events::charge_point_id.eq(cp.clone()));
    }
    if let Some(before) = page.cursor {
        query = query.filter(audit_events::id.lt(before));
    }
    query.load(conn)
}
