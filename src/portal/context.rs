//! What every portal request knows: its language, the signed-in user (from the access cookie
//! of cookie mode) and the CSRF token its forms must repeat; and how pages and errors answer.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use minijinja::{context, Value};
use serde::Serialize;

use super::i18n::{self, Lang, LANG_COOKIE};
use super::templates;
use crate::auth::IssuedTokens;
use crate::http::auth::{
    constant_time_eq, AuthUser, ACCESS_COOKIE, CSRF_COOKIE, OPERATOR, REFRESH_COOKIE,
};
use crate::http::ApiError;
use crate::state::AppState;

/// Cookie with the form token of forms shown before sign-in (login, register).
pub const FORM_COOKIE: &str = "laddkoll_form";
/// Where the API's refresh endpoint reads the refresh cookie.
const REFRESH_PATH: &str = "/api/v1/auth";
/// The portal keeps a copy of the refresh cookie for its sign-out form only.
const LOGOUT_PATH: &str = "/logout";

/// A portal page's answer.
pub type Page = Result<HttpResponse, PageError>;

/// The request as the portal sees it.
pub struct Cx {
    pub state: web::Data<AppState>,
    pub req: HttpRequest,
    pub lang: Lang,
    pub user: Option<AuthUser>,
    /// The signed-in session's CSRF token.
    csrf: Option<String>,
    /// The pre-sign-in form token, when the browser has one.
    form_token: Option<String>,
    /// Not signed in, but the browser still holds a cookie-mode session whose access token
    /// ran out: the page's script can renew it through `POST /api/v1/auth/refresh`.
    can_refresh: bool,
}

impl FromRequest for Cx {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| actix_web::error::ErrorInternalServerError("app state missing"))?;
            let lang = req
                .cookie(LANG_COOKIE)
                .and_then(|c| Lang::parse(c.value()))
                .unwrap_or_else(|| {
                    Lang::negotiate(
                        req.headers()
                            .get(header::ACCEPT_LANGUAGE)
                            .and_then(|v| v.to_str().ok()),
                    )
                });
            let claims = req
                .cookie(ACCESS_COOKIE)
                .and_then(|c| state.jwt.verify(c.value()));
            let (user, csrf) = match claims {
                // A blocked, deleted or signed-out account is simply not signed in here.
                Some(claims) => match crate::http::auth::account_of(&state, &claims, true).await {
                    Ok(user) => (Some(user), claims.csrf),
                    Err(_) => (None, None),
                },
                None => (None, None),
            };
            let form_token = req.cookie(FORM_COOKIE).map(|c| c.value().to_string());
            let can_refresh = user.is_none() && req.cookie(CSRF_COOKIE).is_some();
            Ok(Cx {
                state,
                req,
                lang,
                user,
                csrf,
                form_token,
                can_refresh,
            })
        })
    }
}

/// Why a page did not render: sign in first, or an error to show.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in: go to the sign-in page and come back to this path.
    SignIn(String),
    /// The access token ran out: renew it in the browser, then come back to this path.
    Refresh { lang: Lang, next: String },
    /// An error answer of the domain, shown in the visitor's language.
    Api {
        lang: Lang,
        error: ApiError,
        back: Option<String>,
    },
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::SignIn(_) | PageError::Refresh { .. } => write!(f, "sign in first"),
            PageError::Api { error, .. } => write!(f, "{error}"),
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignIn(_) => StatusCode::SEE_OTHER,
            PageError::Refresh { .. } => StatusCode::OK,
            PageError::Api { error, .. } => error.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            PageError::SignIn(next) => redirect(&format!("/login?next={}", encode(next))),
            PageError::Refresh { lang, next } => {
                let body = templates::render(
                    "refresh.html",
                    context! { lang => lang.code(), next, login => format!("/login?next={}", encode(next)) },
                )
                .unwrap_or_default();
                HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .body(body)
            }
            PageError::Api { lang, error, back } => {
                if let ApiError::Internal(detail) = error {
                    tracing::error!(error = %detail, "portal request failed");
                }
                let message = i18n::error_message(*lang, error.code().as_str(), &error.to_string());
                let body = templates::render(
                    "error.html",
                    context! { lang => lang.code(), message, code => error.code(), back },
                )
                .unwrap_or_else(|_| message.clone());
                HttpResponse::build(error.status_code())
                    .content_type("text/html; charset=utf-8")
                    .body(body)
            }
        }
    }
}

/// Turns a domain error into an error page in the visitor's language.
pub trait OrPage<T> {
    /// The error page, with a link back to the page the form was on.
    fn or_page(self, cx: &Cx) -> Result<T, PageError>;
    /// The error page with a link back to `back`.
    fn or_back(self, cx: &Cx, back: &str) -> Result<T, PageError>;
}

impl<T> OrPage<T> for Result<T, ApiError> {
    fn or_page(self, cx: &Cx) -> Result<T, PageError> {
        self.map_err(|error| cx.error(error, None))
    }

    fn or_back(self, cx: &Cx, back: &str) -> Result<T, PageError> {
        self.map_err(|error| cx.error(error, Some(back.to_string())))
    }
}

/// Percent-encodes a path for a query parameter.
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A path of this site that is safe to go back to (not another origin).
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.to_string(),
        _ => "/".to_string(),
    }
}

/// 303 See Other to a local path.
pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .finish()
}

impl Cx {
    /// An error page for a domain error.
    pub fn error(&self, error: ApiError, back: Option<String>) -> PageError {
        PageError::Api {
            lang: self.lang,
            error,
            back,
        }
    }

    /// The path and query of this request.
    pub fn here(&self) -> String {
        self.req
            .uri()
            .path_and_query()
            .map_or_else(|| self.req.path().to_string(), |p| p.as_str().to_string())
    }

    /// The signed-in user, or a redirect to sign in (or to renew an expired sign-in).
    pub fn signed_in(&self) -> Result<AuthUser, PageError> {
        self.user.clone().ok_or_else(|| {
            if self.can_refresh && self.req.method() == actix_web::http::Method::GET {
                PageError::Refresh {
                    lang: self.lang,
                    next: local_path(Some(&self.here())),
                }
            } else {
                PageError::SignIn(self.here())
            }
        })
    }

    /// The signed-in operator; a driver gets a 403 page.
    pub fn operator(&self) -> Result<AuthUser, PageError> {
        let user = self.signed_in()?;
        if user.role == OPERATOR {
            Ok(user)
        } else {
            Err(self.error(
                ApiError::forbidden("operator_only", "this page is for operators"),
                Some("/".into()),
            ))
        }
    }

    /// Checks the CSRF token a form repeated against the signed-in session's.
    pub fn check_csrf(&self, sent: &str) -> Result<AuthUser, PageError> {
        let user = self.signed_in()?;
        let expected = self.csrf.as_deref().unwrap_or_default();
        if expected.is_empty() || !constant_time_eq(sent, expected) {
            return Err(self.csrf_failed());
        }
        Ok(user)
    }

    /// Checks the form token of a form shown before sign-in.
    pub fn check_form_token(&self, sent: &str) -> Result<(), PageError> {
        match &self.form_token {
            Some(expected) if !sent.is_empty() && constant_time_eq(sent, expected) => Ok(()),
            _ => Err(self.csrf_failed()),
        }
    }

    fn csrf_failed(&self) -> PageError {
        self.error(
            ApiError::forbidden("csrf_failed", "missing or wrong CSRF token"),
            Some(self.req.path().to_string()),
        )
    }

    /// Whether cookies must be Secure: configured so, or behind a trusted proxy that says the
    /// browser came over HTTPS.
    fn secure(&self) -> bool {
        self.state.config.cookie_secure
            || (self.state.config.trust_proxy && self.req.connection_info().scheme() == "https")
    }

    fn cookie(
        &self,
        name: &'static str,
        value: String,
        path: &'static str,
        secs: i64,
        http_only: bool,
    ) -> Cookie<'static> {
        Cookie::build(name, value)
            .path(path)
            .http_only(http_only)
            .secure(self.secure())
            .same_site(SameSite::Strict)
            .max_age(CookieDuration::seconds(secs))
            .finish()
    }

    /// The pre-sign-in form token of this browser, made when it has none.
    pub fn form_token(&self) -> (String, Option<Cookie<'static>>) {
        match &self.form_token {
            Some(t) => (t.clone(), None),
            None => {
                let t = crate::auth::tokens::random_token();
                let c = self.cookie(FORM_COOKIE, t.clone(), "/", 24 * 3600, true);
                (t, Some(c))
            }
        }
    }

    /// The cookies of a cookie-mode sign-in (as `POST /auth/login?mode=cookie` sets them), plus
    /// the sign-out form's copy of the refresh cookie.
    pub fn session_cookies(&self, tokens: IssuedTokens) -> Vec<Cookie<'static>> {
        let refresh_secs = self.state.config.refresh_token_ttl.as_secs() as i64;
        let mut cookies = vec![
            self.cookie(
                ACCESS_COOKIE,
                tokens.access_token,
                "/",
                tokens.expires_in,
                true,
            ),
            self.cookie(
                REFRESH_COOKIE,
                tokens.refresh_token.clone(),
                REFRESH_PATH,
                refresh_secs,
                true,
            ),
            self.cookie(
                REFRESH_COOKIE,
                tokens.refresh_token,
                LOGOUT_PATH,
                refresh_secs,
                true,
            ),
        ];
        if let Some(csrf) = tokens.csrf_token {
            cookies.push(self.cookie(CSRF_COOKIE, csrf, "/", refresh_secs, false));
        }
        cookies
    }

    /// Cookies that remove the sign-in.
    pub fn removal_cookies(&self) -> Vec<Cookie<'static>> {
        [
            (ACCESS_COOKIE, "/"),
            (REFRESH_COOKIE, REFRESH_PATH),
            (REFRESH_COOKIE, LOGOUT_PATH),
            (CSRF_COOKIE, "/"),
        ]
        .into_iter()
        .map(|(name, path)| {
            let mut c = Cookie::build(name, "").path(path).finish();
            c.make_removal();
            c
        })
        .collect()
    }

    /// Renders a page with the common context (language, user, CSRF token, navigation).
    pub fn render(&self, name: &str, ctx: Value) -> Page {
        self.render_status(StatusCode::OK, name, ctx)
    }

    /// Renders a page with a status other than 200 (a form shown again with its error).
    pub fn render_status(&self, status: StatusCode, name: &str, ctx: Value) -> Page {
        let user = self.user.as_ref().map(|u| {
            context! { id => u.id, operator => u.role == OPERATOR }
        });
        let done = web::Query::<Done>::from_query(self.req.query_string())
            .ok()
            .and_then(|d| d.into_inner().done)
            .filter(|d| i18n::has(&format!("done.{d}")))
            .map(|d| i18n::text(self.lang, &format!("done.{d}")));
        let base = context! {
            lang => self.lang.code(),
            other_lang => match self.lang { Lang::Sv => "en", Lang::En => "sv" },
            tz => self.state.config.billing_timezone.name(),
            user,
            csrf => self.csrf,
            path => self.req.path(),
            here => encode(&self.here()),
            done,
        };
        let html = templates::render(name, context! { ..ctx, ..base })
            .map_err(|e| self.error(ApiError::Internal(format!("template {name}: {e:#}")), None))?;
        Ok(HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(html))
    }
}

#[derive(serde::Deserialize)]
struct Done {
    done: Option<String>,
}

/// A serialisable value for templates.
pub fn value<T: Serialize>(v: &T) -> Value {
    Value::from_serialize(v)
}

#[derive(serde::Deserialize)]
pub struct Back {
    back: Option<String>,
}

/// `GET /lang/{sv|en}?back=/path`: keeps the chosen language in a cookie and goes back.
pub async fn switch_language(cx: Cx, code: web::Path<String>, q: web::Query<Back>) -> HttpResponse {
    let back = local_path(q.back.as_deref());
    let mut res = redirect(&back);
    if let Some(lang) = Lang::parse(&code) {
        let c = Cookie::build(LANG_COOKIE, lang.code())
            .path("/")
            .same_site(SameSite::Lax)
            .secure(cx.secure())
            .max_age(CookieDuration::days(365))
            .finish();
        let _ = res.add_cookie(&c);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path(Some("/history?cursor=3")), "/history?cursor=3");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(None), "/");
        assert_eq!(encode("/c/CP 1/2?x=é"), "/c/CP%201/2%3Fx%3D%C3%A9");
    }
}
