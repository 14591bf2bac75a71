//! The web portal: drivers and operators use laddkoll in a browser at `/`.
//!
//! Server-rendered HTML from minijinja templates that are compiled into the binary (as are the
//! stylesheet, the small script for live updates and the icon), so the portal works offline and
//! needs no build step outside cargo. The portal is transport only, like `http/` and `ocpp/`: every
//! page reads through the same domain functions as the API handlers and every form calls the
//! same rule functions (`charging::remote::app_unlock`, `rfid::add`, `auth::login`, …); it
//! holds no rules of its own.
//!
//! Security: sign-in goes through [`crate::auth::login`] in cookie mode, so the portal carries
//! the same HttpOnly, SameSite=Strict cookies as `POST /auth/login?mode=cookie`, and every form
//! repeats the session's CSRF token (the one in the access token's claims) in a hidden field;
//! forms before sign-in use a per-browser form token. Responses carry a Content-Security-Policy
//! without inline script or style, and pages are `Cache-Control: no-store`.

mod context;
mod driver;
mod format;
mod i18n;
mod operator;
mod templates;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, Error, HttpResponse};

pub use context::{Cx, Page, PageError};
pub use i18n::Lang;

/// The Content-Security-Policy of every portal answer: scripts, styles and images only from
/// the portal itself, no inline script or style, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

const CSS: &str = include_str!("assets/portal.css");
const JS: &str = include_str!("assets/portal.js");
const ICON: &str = include_str!("assets/icon.svg");

/// Registers the portal's routes. Mount it last: its empty scope sees every path the other
/// services did not take, and unknown paths still get the app's JSON 404.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            .wrap(actix_web::middleware::from_fn(security_headers))
            .app_data(web::FormConfig::default().limit(16 * 1024))
            .route(
                "/assets/portal.css",
                web::get().to(|| asset(CSS, "text/css; charset=utf-8")),
            )
            .route(
                "/assets/portal.js",
                web::get().to(|| asset(JS, "text/javascript; charset=utf-8")),
            )
            .route(
                "/assets/icon.svg",
                web::get().to(|| asset(ICON, "image/svg+xml")),
            )
            .route(
                "/favicon.ico",
                web::get().to(|| asset(ICON, "image/svg+xml")),
            )
            .route("/lang/{code}", web::get().to(context::switch_language))
            .configure(driver::configure)
            .configure(operator::configure),
    );
}

async fn asset(body: &'static str, content_type: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(body)
}

/// Adds the security headers; pages that did not choose a cache policy are `no-store`.
async fn security_headers(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}
