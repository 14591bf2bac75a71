//! The error codes of each operation in the OpenAPI document: every operation gets
//! `x-error-codes` (all the codes it can answer), and each of its error responses
//! `x-error-codes` for that status and the codes in its description; a status an operation can
//! answer but did not document is added. The codes come from what every operation shares
//! (authentication, a JSON body, path and query parameters, the operator role) and from
//! [`specific`], the codes of each operation's own rules.

use std::collections::{BTreeMap, BTreeSet};

use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response};

use super::codes::ErrorCode;
use ErrorCode::*;

/// The codes of an operation's own rules, by operation id. Every operation of the document must
/// be here (a test checks it), so a new endpoint states its codes.
pub fn specific(operation_id: &str) -> Option<&'static [ErrorCode]> {
    const COMMAND: &[ErrorCode] = &[
        NotFound,
        InvalidField,
        ChargerError,
        ChargerTimeout,
        ServiceUnavailable,
    ];
    const START: &[ErrorCode] = &[
        NotFound,
        InvalidField,
        ConnectorBusy,
        ConnectorUnavailable,
        SessionInProgress,
        ServiceUnavailable,
    ];
    const STOP: &[ErrorCode] = &[
        NotFound,
        SessionNotActive,
        ChargerRefused,
        ChargerError,
        ChargerTimeout,
        ServiceUnavailable,
    ];
    Some(match operation_id {
        // auth
        "register" => &[
            EmailTaken,
            InvalidEmail,
            InvalidName,
            WeakPassword,
            RateLimited,
        ],
        "login" => &[InvalidCredentials, AccountBlocked, RateLimited],
        "refresh" => &[
            InvalidRefreshToken,
            RefreshTokenReused,
            CsrfFailed,
            MissingRefreshToken,
            RateLimited,
        ],
        "logout" => &[MissingRefreshToken, CsrfFailed, RateLimited],
        // me
        "get_me" | "get_preferences" | "get_recommendations" | "list_cards" | "my_activity" => &[],
        "patch_me" => &[
            InvalidName,
            InvalidEmail,
            CurrentPasswordRequired,
            WrongPassword,
            EmailTaken,
            RateLimited,
        ],
        "delete_me" => &[WrongPassword, RateLimited],
        "change_password" => &[WeakPassword, WrongPassword, RateLimited],
        "put_preferences" => &[InvalidField],
        "add_card" => &[InvalidUid, UidTaken, InvalidField],
        "update_card" => &[InvalidField],
        "delete_card" => &[],
        // find, charge, bill
        "find_locations" | "get_location" | "get_forecast" => &[],
        "list_sessions" | "get_session" | "session_meter_values" => &[],
        "start_session" | "operator_remote_start" => START,
        "stop_session" | "operator_stop" => STOP,
        "my_invoices" | "get_invoice" | "invoice_pdf" => &[],
        // operator
        "list_users" | "all_events" | "admin_invoices" | "list_locations" | "list_tariffs"
        | "admin_sessions" | "stale_sessions" | "list_charge_points" | "get_charge_point" => &[],
        "block_user" | "unblock_user" | "set_charge_point_tariff" => &[],
        "create_location" => &[InvalidField],
        "create_charge_point" => &[ChargePointExists, InvalidField],
        "change_availability"
        | "change_configuration"
        | "clear_cache"
        | "data_transfer"
        | "get_configuration"
        | "reset"
        | "trigger_message"
        | "unlock_connector" => COMMAND,
        "rotate_key" => &[
            KeyChangeRefused,
            ChargerError,
            ChargerTimeout,
            ServiceUnavailable,
        ],
        "force_close" => &[SessionNotActive, InvalidField],
        "release_session" => &[NotHeld, NotPriceable],
        "create_tariff" | "new_tariff_version" => &[InvalidTariff],
        "invoice_run" => &[InvalidPeriod, AmountOutOfRange, ConcurrentRun],
        "credit_note" => &[AlreadyCredited, NotAnInvoice, InvalidField],
        _ => return None,
    })
}

/// The codes every operation with these traits can answer.
fn shared(op: &Operation, method: &str) -> BTreeSet<ErrorCode> {
    let mut codes: BTreeSet<ErrorCode> = [InternalError, ServiceUnavailable].into();
    let state_changing = !matches!(method, "get" | "head" | "options");
    if op.request_body.is_some() {
        codes.extend([
            MalformedJson,
            InvalidBody,
            PayloadTooLarge,
            UnsupportedMediaType,
        ]);
    }
    let params = op.parameters.as_deref().unwrap_or_default();
    if params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Path))
    {
        codes.extend([InvalidPath, NotFound]);
    }
    if params
        .iter()
        .any(|p| matches!(p.parameter_in, ParameterIn::Query))
    {
        codes.insert(InvalidQuery);
    }
    if params.iter().any(|p| p.name == "cursor") {
        codes.insert(InvalidCursor);
    }
    if op.security.as_ref().is_some_and(|s| !s.is_empty()) {
        codes.extend([InvalidToken, AccountBlocked, NotFound]);
        if state_changing {
            codes.insert(CsrfFailed);
        }
    }
    if op
        .tags
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|t| t == "admin")
    {
        codes.insert(OperatorOnly);
    }
    if state_changing {
        codes.insert(Conflict);
    }
    codes
}

fn list(codes: &BTreeSet<ErrorCode>) -> serde_json::Value {
    codes.iter().map(|c| c.as_str()).collect::<Vec<_>>().into()
}

/// Every error code an operation can answer, by status.
pub fn codes_of(op: &Operation, method: &str) -> BTreeMap<u16, BTreeSet<ErrorCode>> {
    let mut codes = shared(op, method);
    if let Some(own) = op.operation_id.as_deref().and_then(specific) {
        codes.extend(own.iter().copied());
    }
    let mut by_status: BTreeMap<u16, BTreeSet<ErrorCode>> = BTreeMap::new();
    for code in codes {
        for status in code.statuses() {
            by_status.entry(*status).or_default().insert(code);
        }
    }
    by_status
}

fn document_operation(op: &mut Operation, method: &str) {
    let by_status = codes_of(op, method);
    let all: BTreeSet<ErrorCode> = by_status.values().flatten().copied().collect();
    op.extensions
        .get_or_insert_with(Extensions::default)
        .insert("x-error-codes".into(), list(&all));
    for (status, codes) in by_status {
        let key = status.to_string();
        let described = codes
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let entry = op.responses.responses.entry(key).or_insert_with(|| {
            let mut response = Response::new(
                codes
                    .iter()
                    .map(|c| c.description())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            response.content.insert(
                "application/json".into(),
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            );
            RefOr::T(response)
        });
        if let RefOr::T(response) = entry {
            let text = response.description.trim_end().trim_end_matches('.');
            response.description = format!("{text}. Codes: {described}.");
            response
                .extensions
                .get_or_insert_with(Extensions::default)
                .insert("x-error-codes".into(), list(&codes));
        }
    }
}

/// Adds the error codes to every operation of `api`.
pub fn document(api: &mut OpenApi) {
    for item in api.paths.paths.values_mut() {
        for (method, op) in [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("patch", &mut item.patch),
        ] {
            if let Some(op) = op {
                document_operation(op, method);
            }
        }
    }
}
