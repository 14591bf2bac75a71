//! Every `error.code` the API can answer, as one enum: the JSON body's `code`, the OpenAPI
//! document's per-operation lists (`x-error-codes` and the `code` enum of each error response)
//! and the README's table all come from this list.
//!
//! Handlers name a code by its snake_case text (`ApiError::conflict("email_taken", …)`); the
//! text must be one of these (a debug assertion at answer time, and a test that reads every
//! code named in the sources).

use serde::{Serialize, Serializer};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::RefOr;

macro_rules! error_codes {
    ($( $variant:ident = $name:literal, [$($status:literal),+], $doc:literal; )*) => {
        /// A stable, snake_case reason a client can switch on.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $( #[doc = $doc] $variant, )*
        }

        impl ErrorCode {
            /// Every code, in the order of the README's table.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code as it appears in `error.code`.
            pub const fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $name),* }
            }

            /// The HTTP statuses this code is answered with.
            pub const fn statuses(self) -> &'static [u16] {
                match self { $(ErrorCode::$variant => &[$($status),+]),* }
            }

            /// What the code means, for people (README, OpenAPI).
            pub const fn description(self) -> &'static str {
                match self { $(ErrorCode::$variant => $doc),* }
            }
        }
    };
}

error_codes! {
    BadRequest = "bad_request", [400], "The request could not be read (a malformed request line, header or body).";
    MalformedJson = "malformed_json", [400], "The body is not well-formed JSON.";
    InvalidBody = "invalid_body", [400, 422], "The body is well-formed JSON but has wrong or missing fields or types (422), or could not be read (400).";
    InvalidPath = "invalid_path", [400], "A path parameter has the wrong type.";
    InvalidQuery = "invalid_query", [400], "A query parameter is missing, unknown, of the wrong type or out of range.";
    InvalidCursor = "invalid_cursor", [400], "The pagination cursor is not one this API gave out.";
    MissingRefreshToken = "missing_refresh_token", [400], "No refresh token in the body nor in the refresh cookie.";
    SubprotocolRequired = "subprotocol_required", [400], "OCPP: the WebSocket upgrade does not offer the ocpp1.6 subprotocol.";
    WebsocketRequired = "websocket_required", [400], "OCPP: the request to /ocpp/{id} is not a WebSocket upgrade.";
    InvalidChargePointId = "invalid_charge_point_id", [400], "OCPP: the charge point id in the URL is longer than 48 characters or holds characters OCPP does not allow.";
    InvalidCredentials = "invalid_credentials", [401], "Wrong email or password; also for unknown and locked accounts, so the answer reveals nothing.";
    InvalidToken = "invalid_token", [401], "The access token is missing, malformed, expired or revoked.";
    InvalidRefreshToken = "invalid_refresh_token", [401], "The refresh token is unknown, expired or revoked.";
    RefreshTokenReused = "refresh_token_reused", [401], "A spent refresh token came back; its whole family is revoked. Sign in again.";
    ChargerUnauthorized = "charger_unauthorized", [401], "OCPP: unknown charge point or wrong key on the WebSocket upgrade.";
    AccountBlocked = "account_blocked", [403], "The account is blocked by an operator.";
    CsrfFailed = "csrf_failed", [403], "Cookie mode: the X-CSRF-Token header is missing or wrong.";
    OperatorOnly = "operator_only", [403], "The action needs the operator role.";
    WrongPassword = "wrong_password", [403], "The current password given to confirm the action is wrong.";
    NotFound = "not_found", [404], "No such resource, or not the caller's; also unknown routes.";
    MethodNotAllowed = "method_not_allowed", [405], "The route does not take this method; also any method other than GET, HEAD, POST, PUT, PATCH, DELETE and OPTIONS, on every path (with an Allow header).";
    RequestTimeout = "request_timeout", [408], "The request was not received in time.";
    Conflict = "conflict", [409], "The resource already exists.";
    EmailTaken = "email_taken", [409], "An account with this email exists (registration is rate limited per address; see the README's security model).";
    UidTaken = "uid_taken", [409], "The RFID card is already registered.";
    ChargePointExists = "charge_point_exists", [409], "A charge point with this id exists.";
    AlreadyCredited = "already_credited", [409], "The invoice already has a credit note.";
    NotAnInvoice = "not_an_invoice", [409], "A credit note cannot be credited.";
    ConcurrentRun = "concurrent_run", [409], "Another invoice run billed these sessions meanwhile; retry.";
    ConnectorBusy = "connector_busy", [409], "The connector is in use.";
    ConnectorUnavailable = "connector_unavailable", [409], "The connector cannot start a session now (faulted, unavailable or unknown).";
    NotHeld = "not_held", [409], "The session's price record is not held, so there is nothing to release.";
    NotPriceable = "not_priceable", [409], "The held session could not be priced; credit or correct it instead.";
    SessionInProgress = "session_in_progress", [409], "The driver already has a session starting or running.";
    SessionNotActive = "session_not_active", [409], "The session is not running.";
    ChargerRefused = "charger_refused", [409], "The charger refused the command.";
    KeyChangeRefused = "key_change_refused", [409], "The charger refused the new key; the old key stays in force.";
    PayloadTooLarge = "payload_too_large", [413], "The body is larger than the limit.";
    UnsupportedMediaType = "unsupported_media_type", [415], "The body is not JSON (Content-Type: application/json).";
    InvalidField = "invalid_field", [422], "A field has an invalid value; the message names it.";
    InvalidEmail = "invalid_email", [422], "The email is not a valid address (ASCII only; internationalised domains in their xn-- form).";
    InvalidName = "invalid_name", [422], "The name is empty, too long, or holds control, format (bidi, zero-width) or mixed-script look-alike characters.";
    WeakPassword = "weak_password", [422], "The password is too short, too long, too common or too easy to guess.";
    CurrentPasswordRequired = "current_password_required", [422], "Changing the email needs current_password.";
    InvalidUid = "invalid_uid", [422], "The RFID uid is not 4–20 hex digits.";
    InvalidTariff = "invalid_tariff", [422], "The tariff is invalid or out of bounds; the message names the field.";
    InvalidPeriod = "invalid_period", [422], "The period is not a month YYYY-MM.";
    AmountOutOfRange = "amount_out_of_range", [422], "An amount does not fit the bounds of money (see the tariff bounds); nothing was issued.";
    RateLimited = "rate_limited", [429], "Too many requests from this address; see Retry-After.";
    HeadersTooLarge = "headers_too_large", [431], "The request headers are too large.";
    InternalError = "internal_error", [500], "Something failed on the server's side (logged with the request id).";
    ChargerError = "charger_error", [502], "The charger answered the command with an error.";
    ServiceUnavailable = "service_unavailable", [503], "The database is busy or unavailable, or the charger is offline; retry.";
    ChargerTimeout = "charger_timeout", [504], "The charger did not answer in time.";
    RequestFailed = "request_failed", [400], "Any other refusal of the HTTP layer.";
}

impl ErrorCode {
    /// The code of a snake_case text, if it is one.
    pub fn parse(text: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_str() == text)
    }

    /// The code of a text handlers use. A text that is not in the list is a bug: tests (debug
    /// builds) stop on it; a release build answers it as `request_failed`.
    pub fn of(text: &str) -> ErrorCode {
        match ErrorCode::parse(text) {
            Some(code) => code,
            None => {
                debug_assert!(
                    false,
                    "error code {text:?} is not in http::codes::ErrorCode"
                );
                ErrorCode::RequestFailed
            }
        }
    }

    /// The codes answered with `status`.
    pub fn with_status(status: u16) -> impl Iterator<Item = ErrorCode> {
        ErrorCode::ALL
            .iter()
            .copied()
            .filter(move |c| c.statuses().contains(&status))
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A string schema whose values are `codes`.
pub fn schema_of(codes: impl IntoIterator<Item = ErrorCode>) -> Schema {
    let mut names: Vec<&'static str> = codes.into_iter().map(ErrorCode::as_str).collect();
    names.sort_unstable();
    names.dedup();
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(names))
            .build(),
    )
}

impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> RefOr<Schema> {
        RefOr::T(schema_of(ErrorCode::ALL.iter().copied()))
    }
}

impl utoipa::ToSchema for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "{s} twice");
            assert!(
                s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{s} is not snake_case"
            );
            assert_eq!(ErrorCode::parse(s), Some(*code));
            assert!(!code.statuses().is_empty() && !code.description().is_empty());
        }
        assert_eq!(ErrorCode::parse("no_such_code"), None);
    }
}

#[cfg(test)]
mod source_tests {
    use super::ErrorCode;

    fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The code texts handlers name: the first argument of `ApiError::bad_request(…)` and the
    /// other constructors, and `code: "…"` in `ApiError::X { … }`.
    fn named_codes(source: &str) -> Vec<String> {
        let mut codes = Vec::new();
        for ctor in [
            "bad_request(",
            "unauthorized(",
            "forbidden(",
            "conflict(",
            "unprocessable(",
        ] {
            let pattern = format!("ApiError::{ctor}");
            let mut rest = source;
            while let Some(at) = rest.find(&pattern) {
                rest = &rest[at + pattern.len()..];
                let arg = rest.trim_start();
                if let Some(quoted) = arg.strip_prefix('"') {
                    codes.push(quoted.split('"').next().unwrap().to_string());
                }
            }
        }
        let mut rest = source;
        while let Some(at) = rest.find("code: \"") {
            rest = &rest[at + 7..];
            codes.push(rest.split('"').next().unwrap().to_string());
        }
        codes
    }

    #[test]
    fn every_code_named_in_the_sources_is_in_the_enum() {
        let mut files = Vec::new();
        rust_files(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut files,
        );
        let mut unknown = Vec::new();
        let mut named = 0;
        for file in files {
            let source = std::fs::read_to_string(&file).unwrap();
            for code in named_codes(&source) {
                // Demo data has `code: "KST"` site codes: only snake_case texts are error codes.
                if !code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    continue;
                }
                named += 1;
                if ErrorCode::parse(&code).is_none() {
                    unknown.push(format!("{}: {code}", file.display()));
                }
            }
        }
        assert!(named > 40, "the scan found only {named} codes");
        assert!(
            unknown.is_empty(),
            "codes missing from http::codes::ErrorCode: {unknown:#?}"
        );
    }
}
