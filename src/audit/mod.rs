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

/// The most characters each text field of an event keeps (the rest is cut and counted): parts
/// of an event can come from unauthenticated requests, so a row stays small whatever is sent.
pub const MAX_ACTOR: usize = 80;
pub const MAX_ACTION: usize = 64;
pub const MAX_REASON: usize = 500;
pub const MAX_CLIENT_ADDR: usize = 64;
pub const MAX_CHARGE_POINT_ID: usize = 48;

/// `text` cut to `max` characters; a cut text ends with `…(+N chars)`.
pub fn bounded(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max).collect();
    format!("{head}…(+{} chars)", n - max)
}

impl NewEvent {
    /// The event with every text field bounded.
    fn bounded(&self) -> NewEvent {
        let cut = |t: &Option<String>, max| t.as_deref().map(|t| bounded(t, max));
        NewEvent {
            occurred_at: self.occurred_at,
            user_id: self.user_id,
            actor: bounded(&self.actor, MAX_ACTOR),
            action: bounded(&self.action, MAX_ACTION),
            outcome: bounded(&self.outcome, 16),
            reason: cut(&self.reason, MAX_REASON),
            client_addr: cut(&self.client_addr, MAX_CLIENT_ADDR),
            // An id is a key to filter by: cut, not annotated.
            charge_point_id: self
                .charge_point_id
                .as_deref()
                .map(|id| id.chars().take(MAX_CHARGE_POINT_ID).collect()),
            request_id: cut(&self.request_id, 64),
        }
    }
}

/// Records one event, its text fields bounded (see [`MAX_REASON`] and the others).
pub fn record(conn: &mut DbConn, event: &NewEvent) -> QueryResult<()> {
    diesel::insert_into(audit_events::table)
        .values(&event.bounded())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_field_is_bounded() {
        let huge = "x".repeat(60_000);
        let event = NewEvent {
            actor: format!("charger:{huge}"),
            action: huge.clone(),
            outcome: huge.clone(),
            reason: Some(huge.clone()),
            client_addr: Some(huge.clone()),
            charge_point_id: Some(huge.clone()),
            request_id: Some(huge.clone()),
            ..Default::default()
        }
        .bounded();
        let len = |s: &str| s.chars().count();
        assert!(len(&event.actor) <= MAX_ACTOR + 20);
        assert!(len(&event.action) <= MAX_ACTION + 20);
        assert!(len(&event.outcome) <= 16 + 20);
        assert!(len(event.reason.as_deref().unwrap()) <= MAX_REASON + 20);
        assert!(event
            .reason
            .as_deref()
            .unwrap()
            .ends_with("…(+59500 chars)"));
        assert!(len(event.client_addr.as_deref().unwrap()) <= MAX_CLIENT_ADDR + 20);
        assert_eq!(
            len(event.charge_point_id.as_deref().unwrap()),
            MAX_CHARGE_POINT_ID
        );
        assert!(len(event.request_id.as_deref().unwrap()) <= 64 + 20);
        assert_eq!(bounded("short", 10), "short");
    }
}
