//! Refusing a charger's WebSocket upgrade cheaply: ids outside OCPP's identity rules are refused
//! before any lookup, refusals are rate limited per client address (a flood of refused upgrades
//! gets 429 without writing anything), and what is audited or logged of an id is bounded.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

use crate::app::State;
use crate::audit::{self, NewEvent};
use crate::http::error::{ErrorBody, ErrorCode, ErrorDetail};
use crate::http::time::now;
use crate::http::{client_addr, client_ip, ApiError};

/// The longest charge point identity (OCPP's identity rules, as at registration).
pub const MAX_ID_CHARS: usize = 48;

/// An id as audit rows and log lines show it: at most [`MAX_ID_CHARS`] characters, the rest
/// counted.
pub fn shown_id(cp: &str) -> String {
    let n = cp.chars().count();
    if n <= MAX_ID_CHARS {
        return cp.to_string();
    }
    let head: String = cp.chars().take(MAX_ID_CHARS).collect();
    format!("{head}…(+{} chars)", n - MAX_ID_CHARS)
}

/// Refuses an id that no registered charge point can have (longer than 48 characters, or
/// characters other than letters, digits, `-`, `_`, `.`) with 400, before the database is
/// asked. `None` when the id is well-formed.
pub async fn check_id(
    state: &State,
    req: &HttpRequest,
    cp: &str,
) -> Result<Option<HttpResponse>, ApiError> {
    if crate::locations::handlers::valid_charge_point_id(cp) {
        return Ok(None);
    }
    let reason = if cp.chars().count() > MAX_ID_CHARS {
        "charge point id longer than 48 characters"
    } else {
        "charge point id with characters OCPP does not allow"
    };
    refused(
        state,
        req,
        cp,
        reason,
        actix_web::http::StatusCode::BAD_REQUEST,
        ErrorCode::InvalidChargePointId,
        "a charge point id has 1 to 48 letters, digits, '-', '_' or '.'",
    )
    .await
    .map(Some)
}

/// Refuses an upgrade with 401 and audits it, unless this address has been refused too often
/// lately: then 429 with `Retry-After` and nothing is written.
pub async fn refuse(
    state: &State,
    req: &HttpRequest,
    cp: &str,
    reason: &'static str,
) -> Result<HttpResponse, ApiError> {
    refused(
        state,
        req,
        cp,
        reason,
        actix_web::http::StatusCode::UNAUTHORIZED,
        ErrorCode::ChargerUnauthorized,
        "unknown charge point or wrong key",
    )
    .await
}

async fn refused(
    state: &State,
    req: &HttpRequest,
    cp: &str,
    reason: &'static str,
    status: actix_web::http::StatusCode,
    code: ErrorCode,
    message: &str,
) -> Result<HttpResponse, ApiError> {
    let shown = shown_id(cp);
    if let Err(limited) = state
        .ocpp_refusal_limiter
        .check(client_ip(req, state.config.trust_proxy))
    {
        tracing::debug!(charge_point = %shown, reason, "charger connection refused (rate limited, not audited)");
        return Err(limited);
    }
    let mut event = NewEvent::user(
        None,
        "charger_connection_refused",
        audit::DENIED,
        client_addr(req, state.config.trust_proxy),
        now(),
    )
    .because(reason);
    event.actor = format!("charger:{shown}");
    event.charge_point_id = Some(cp.chars().take(MAX_ID_CHARS).collect());
    state
        .db
        .write(move |conn| Ok(audit::record(conn, &event)?))
        .await?;
    tracing::warn!(charge_point = %shown, reason, "charger connection refused");
    let mut answer = HttpResponse::build(status);
    if status == actix_web::http::StatusCode::UNAUTHORIZED {
        answer.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"laddkoll OCPP\""));
    }
    Ok(answer.json(ErrorBody {
        error: ErrorDetail {
            code,
            message: message.into(),
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_ids_are_shown_cut_with_their_length() {
        assert_eq!(shown_id("SE-STO-0001"), "SE-STO-0001");
        let long = "A".repeat(60_000);
        let shown = shown_id(&long);
        assert!(shown.starts_with(&"A".repeat(48)));
        assert!(shown.ends_with("…(+59952 chars)"));
        assert!(shown.chars().count() < 70);
    }
}
