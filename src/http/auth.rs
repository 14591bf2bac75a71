//! Authentication extractors: a bearer token (app) or the access cookie (web portal, with CSRF
//! protection on state-changing requests). Both end in the same [`AuthUser`].

use std::future::Future;
use std::pin::Pin;

use actix_web::http::{header, Method};
use actix_web::{dev::Payload, web, FromRequest, HttpRequest};

use crate::accounts::queries as users;
use crate::http::ApiError;
use crate::state::AppState;

/// Cookie that carries the access token in cookie mode.
pub const ACCESS_COOKIE: &str = "laddkoll_access";
/// Cookie that carries the refresh token in cookie mode.
pub const REFRESH_COOKIE: &str = "laddkoll_refresh";
/// Readable cookie with the CSRF token the portal echoes in [`CSRF_HEADER`].
pub const CSRF_COOKIE: &str = "laddkoll_csrf";
/// Header that must repeat the CSRF token on cookie-authenticated state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Roles.
pub const DRIVER: &str = "driver";
pub const OPERATOR: &str = "operator";

/// The signed-in user of a request.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub id: i64,
    pub role: String,
    /// Authenticated by cookie rather than by bearer token.
    pub via_cookie: bool,
}

impl AuthUser {
    /// Whether the user is an operator.
    pub fn is_operator(&self) -> bool {
        self.role == OPERATOR
    }
}

fn invalid_token() -> ApiError {
    ApiError::unauthorized("invalid_token", "missing, invalid or expired access token")
}

/// Whether a method changes state (and so needs CSRF protection in cookie mode).
pub fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

impl FromRequest for AuthUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .ok_or_else(|| ApiError::Internal("app state missing".into()))?
                .clone();
            let (token, via_cookie) = match bearer(&req) {
                Some(t) => (t, false),
                None => match req.cookie(ACCESS_COOKIE) {
                    Some(c) => (c.value().to_string(), true),
                    None => return Err(invalid_token()),
                },
            };
            let claims = state.jwt.verify(&token).ok_or_else(invalid_token)?;
            if via_cookie && is_state_changing(req.method()) {
                let sent = req
                    .headers()
                    .get(CSRF_HEADER)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let expected = claims.csrf.as_deref().unwrap_or_default();
                if expected.is_empty() || !constant_time_eq(sent, expected) {
                    return Err(ApiError::forbidden(
                        "csrf_failed",
                        "missing or wrong X-CSRF-Token header",
                    ));
                }
            }
            account_of(&state, &claims, via_cookie).await
        })
    }
}

/// The account behind verified access-token claims: it must still exist, be active and not
/// have revoked its tokens. Shared by the extractor above and the web portal.
pub async fn account_of(
    state: &AppState,
    claims: &crate::auth::tokens::AccessClaims,
    via_cookie: bool,
) -> Result<AuthUser, ApiError> {
    let id: i64 = claims.sub.parse().map_err(|_| invalid_token())?;
    let user = state
        .db
        .run(move |conn| Ok(users::find(conn, id)?))
        .await?
        .ok_or_else(invalid_token)?;
    // A blocked account says so (a block also raises the token version, so these tokens stay
    // revoked after an unblock).
    if user.status == users::BLOCKED {
        return Err(ApiError::forbidden(
            "account_blocked",
            "this account is blocked; contact the operator",
        ));
    }
    if user.token_version != claims.ver || user.status == users::DELETED {
        return Err(invalid_token());
    }
    Ok(AuthUser {
        id,
        role: user.role,
        via_cookie,
    })
}

/// A signed-in operator; drivers get 403.
#[derive(Debug, Clone)]
pub struct Operator(pub AuthUser);

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let user = AuthUser::from_request(req, payload);
        Box::pin(async move {
            let user = user.await?;
            if user.is_operator() {
                Ok(Operator(user))
            } else {
                Err(ApiError::forbidden(
                    "operator_only",
                    "this action needs the operator role",
                ))
            }
        })
    }
}
