//! Response headers that keep answers out of caches and content sniffing.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;

/// Middleware (for `from_fn`): every answer gets `X-Content-Type-Options: nosniff`, and every
/// answer under `/api/v1` — tokens, account data, sessions, invoice PDFs — `Cache-Control:
/// no-store`, so neither a shared cache nor the browser's keeps a copy. A handler that sets its
/// own `Cache-Control` keeps it.
pub async fn protect(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let api = req.path().starts_with("/api/");
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if api && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Ok(res)
}
