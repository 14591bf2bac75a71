//! HTTP handlers for `/auth`: register, login, refresh, logout.

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::{post, web, HttpRequest, HttpResponse};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{IssuedTokens, TokenMode};
use crate::accounts::handlers::UserResponse;
use crate::http::auth::{ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER, DRIVER, REFRESH_COOKIE};
use crate::http::error::ErrorBody;
use crate::http::{client_addr, client_ip, ApiError};
use crate::state::{AppState, State};

/// Registers the routes.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(register)
        .service(login)
        .service(refresh)
        .service(logout);
}

/// A new driver account.
#[derive(Deserialize, ToSchema)]
pub struct RegisterRequest {
    #[schema(example = "anna@example.se")]
    pub email: String,
    /// 8–128 characters, not one of the most common passwords.
    #[schema(value_type = String, example = "correct horse battery staple")]
    pub password: SecretString,
    #[schema(example = "Anna Andersson")]
    pub name: String,
}

/// Email and password.
#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    #[schema(value_type = String)]
    pub password: SecretString,
}

/// `mode=cookie` puts the tokens in HttpOnly cookies (web portal) instead of the body.
#[derive(Deserialize, IntoParams)]
pub struct ModeQuery {
    pub mode: Option<String>,
}

/// A refresh token; may be left out in cookie mode.
#[derive(Deserialize, ToSchema)]
pub struct RefreshRequest {
    pub refresh_token: Option<String>,
}

/// Tokens for the app.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Lifetime of the access token in seconds.
    pub expires_in: i64,
    pub refresh_token: String,
}

/// Cookie mode: the tokens are in cookies; the CSRF token must be sent as `X-CSRF-Token`.
#[derive(Serialize, ToSchema)]
pub struct CookieLoginResponse {
    #[schema(example = "Cookie")]
    pub token_type: &'static str,
    pub expires_in: i64,
    pub csrf_token: String,
}

fn rate_limit(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    state
        .auth_limiter
        .check(client_ip(req, state.config.trust_proxy))
}

fn parse_mode(q: &ModeQuery) -> Result<TokenMode, ApiError> {
    match q.mode.as_deref() {
        None | Some("bearer") => Ok(TokenMode::Bearer),
        Some("cookie") => Ok(TokenMode::Cookie),
        Some(_) => Err(ApiError::bad_request(
            "invalid_query",
            "mode must be bearer or cookie",
        )),
    }
}

/// An optional JSON body: empty is `None`, malformed is an error in the shared shape.
fn optional_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body).map(Some).map_err(|e| {
        if e.is_data() {
            ApiError::unprocessable("invalid_body", format!("invalid request body: {e}"))
        } else {
            ApiError::bad_request("malformed_json", format!("malformed JSON: {e}"))
        }
    })
}

fn cookie<'a>(
    state: &AppState,
    name: &'a str,
    value: String,
    path: &'a str,
    secs: i64,
    http_only: bool,
) -> Cookie<'a> {
    Cookie::build(name, value)
        .path(path)
        .http_only(http_only)
        .secure(state.config.cookie_secure)
        .same_site(SameSite::Strict)
        .max_age(CookieDuration::seconds(secs))
        .finish()
}

const REFRESH_PATH: &str = "/api/v1/auth";

fn token_answer(state: &AppState, tokens: IssuedTokens, mode: TokenMode) -> HttpResponse {
    match (mode, tokens.csrf_token) {
        (TokenMode::Cookie, Some(csrf)) => {
            let refresh_secs = state.config.refresh_token_ttl.as_secs() as i64;
            HttpResponse::Ok()
                .cookie(cookie(
                    state,
                    ACCESS_COOKIE,
                    tokens.access_token,
                    "/",
                    tokens.expires_in,
                    true,
                ))
                .cookie(cookie(
                    state,
                    REFRESH_COOKIE,
                    tokens.refresh_token,
                    REFRESH_PATH,
                    refresh_secs,
                    true,
                ))
                .cookie(cookie(
                    state,
                    CSRF_COOKIE,
                    csrf.clone(),
                    "/",
                    refresh_secs,
                    false,
                ))
                .json(CookieLoginResponse {
                    token_type: "Cookie",
                    expires_in: tokens.expires_in,
                    csrf_token: csrf,
                })
        }
        _ => HttpResponse::Ok().json(TokenResponse {
            access_token: tokens.access_token,
            token_type: "Bearer",
            expires_in: tokens.expires_in,
            refresh_token: tokens.refresh_token,
        }),
    }
}

/// Creates a driver account.
#[utoipa::path(
    tag = "auth",
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Account created", body = UserResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 409, description = "Email already registered", body = ErrorBody),
        (status = 422, description = "Invalid email, name or weak password", body = ErrorBody),
        (status = 429, description = "Too many requests or registrations from this address", body = ErrorBody),
    )
)]
#[post("/auth/register")]
pub async fn register(
    state: State,
    req: HttpRequest,
    body: web::Json<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    rate_limit(&req, &state)?;
    // Every registration counts, whatever its answer: 409 `email_taken` tells that an email
    // has an account, so it is rationed per address (README, security model).
    state
        .register_limiter
        .check(client_ip(&req, state.config.trust_proxy))?;
    let body = body.into_inner();
    let user = super::register(
        &state,
        &body.email,
        body.password,
        &body.name,
        DRIVER,
        client_addr(&req, state.config.trust_proxy),
    )
    .await?;
    Ok(HttpResponse::Created().json(UserResponse::from(user)))
}

/// Logs in. With `?mode=cookie` the tokens are set as HttpOnly cookies.
#[utoipa::path(
    tag = "auth",
    params(ModeQuery),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Tokens (bearer mode) or cookies set (cookie mode)", body = TokenResponse),
        (status = 401, description = "Wrong email or password (the same answer for unknown accounts and locked ones)", body = ErrorBody),
        (status = 403, description = "Account blocked", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
    )
)]
#[post("/auth/login")]
pub async fn login(
    state: State,
    req: HttpRequest,
    query: web::Query<ModeQuery>,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    rate_limit(&req, &state)?;
    let mode = parse_mode(&query)?;
    let body = body.into_inner();
    let tokens = super::login(
        &state,
        &body.email,
        body.password,
        mode,
        client_addr(&req, state.config.trust_proxy),
    )
    .await?;
    Ok(token_answer(&state, tokens, mode))
}

/// Exchanges a refresh token for a new pair; the old one is spent. In cookie mode send no
/// body (the cookie is used) and the `X-CSRF-Token` header.
#[utoipa::path(
    tag = "auth",
    request_body(content = RefreshRequest, description = "Omit in cookie mode"),
    responses(
        (status = 200, description = "New tokens", body = TokenResponse),
        (status = 401, description = "Invalid, expired, revoked or reused refresh token", body = ErrorBody),
        (status = 403, description = "CSRF check failed (cookie mode)", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
    )
)]
#[post("/auth/refresh")]
pub async fn refresh(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    rate_limit(&req, &state)?;
    let (token, mode) = refresh_token_of(&req, &body)?;
    let csrf = header_value(&req, CSRF_HEADER);
    let tokens = super::refresh(
        &state,
        &token,
        csrf,
        client_addr(&req, state.config.trust_proxy),
    )
    .await?;
    Ok(token_answer(&state, tokens, mode))
}

/// Revokes the refresh token's family and clears the cookies. In cookie mode send no body and
/// the `X-CSRF-Token` header.
#[utoipa::path(
    tag = "auth",
    request_body(content = RefreshRequest, description = "Omit in cookie mode"),
    responses(
        (status = 204, description = "Logged out"),
        (status = 400, description = "No refresh token given", body = ErrorBody),
        (status = 403, description = "CSRF check failed (cookie mode)", body = ErrorBody),
        (status = 429, description = "Too many requests from this address", body = ErrorBody),
    )
)]
#[post("/auth/logout")]
pub async fn logout(
    state: State,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    rate_limit(&req, &state)?;
    let (token, mode) = refresh_token_of(&req, &body)?;
    // A cookie is sent by the browser on its own: the portal must prove it is the caller.
    let csrf =
        (mode == TokenMode::Cookie).then(|| header_value(&req, CSRF_HEADER).unwrap_or_default());
    super::logout(
        &state,
        &token,
        csrf,
        client_addr(&req, state.config.trust_proxy),
    )
    .await?;
    let mut res = HttpResponse::NoContent();
    for (name, path) in [
        (ACCESS_COOKIE, "/"),
        (REFRESH_COOKIE, REFRESH_PATH),
        (CSRF_COOKIE, "/"),
    ] {
        let mut c = Cookie::build(name, "").path(path).finish();
        c.make_removal();
        res.cookie(c);
    }
    Ok(res.finish())
}

fn header_value(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The refresh token from the body (bearer mode) or the cookie (cookie mode).
fn refresh_token_of(req: &HttpRequest, body: &[u8]) -> Result<(String, TokenMode), ApiError> {
    let from_body = optional_json::<RefreshRequest>(body)?.and_then(|r| r.refresh_token);
    if let Some(token) = from_body {
        return Ok((token, TokenMode::Bearer));
    }
    match req.cookie(REFRESH_COOKIE) {
        Some(c) => Ok((c.value().to_string(), TokenMode::Cookie)),
        None => Err(ApiError::bad_request(
            "missing_refresh_token",
            "send refresh_token in the body or the refresh cookie",
        )),
    }
}
