//! Shared HTTP pieces: the error type, extractor configuration, client addresses, metrics,
//! rate limiting and the OpenAPI assembly.

pub mod auth;
pub mod codes;
pub mod error;
pub mod error_docs;
pub mod headers;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod rate_limit;
pub mod time;

use std::net::IpAddr;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{web, HttpRequest, HttpResponse};

pub use error::ApiError;

/// JSON bodies: size limit and errors in the shared shape (413, 415, 400 for syntax, 422 for
/// well-formed JSON with wrong fields or types).
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, _req| {
            let api = match &err {
                JsonPayloadError::Overflow { .. }
                | JsonPayloadError::OverflowKnownLength { .. } => {
                    ApiError::PayloadTooLarge { limit }
                }
                JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
                JsonPayloadError::Deserialize(e) if e.is_data() => {
                    ApiError::unprocessable("invalid_body", format!("invalid request body: {e}"))
                }
                JsonPayloadError::Deserialize(e) => {
                    ApiError::bad_request("malformed_json", format!("malformed JSON: {e}"))
                }
                other => ApiError::bad_request("invalid_body", other.to_string()),
            };
            api.into()
        })
}

/// Path parameters of the wrong type answer 400 in the shared shape.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err: PathError, _req| {
        ApiError::bad_request("invalid_path", format!("invalid path parameter: {err}")).into()
    })
}

/// Query strings of the wrong shape answer 400 in the shared shape.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::bad_request("invalid_query", format!("invalid query string: {err}")).into()
    })
}

/// Unknown routes answer a JSON 404.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    ApiError::NotFound(format!("no route for {} {}", req.method(), req.path())).error_response()
}

/// The client's address as text, for audit events.
pub fn client_addr(req: &HttpRequest, trust_proxy: bool) -> Option<String> {
    client_ip(req, trust_proxy).map(|ip| ip.to_string())
}

/// The client's address: the socket peer, or the first `X-Forwarded-For` hop behind a
/// trusted proxy.
pub fn client_ip(req: &HttpRequest, trust_proxy: bool) -> Option<IpAddr> {
    if trust_proxy {
        if let Some(ip) = req.connection_info().realip_remote_addr().and_then(|a| {
            a.parse::<std::net::SocketAddr>()
                .map(|s| s.ip())
                .ok()
                .or_else(|| a.parse().ok())
        }) {
            return Some(ip);
        }
    }
    req.peer_addr().map(|a| a.ip())
}

/// Rewrites error answers that did not come from [`ApiError`] (actix's own 404/405/413 and
/// payload errors) into the shared JSON shape.
pub fn json_errors<B: actix_web::body::MessageBody + 'static>(
) -> actix_web::middleware::ErrorHandlers<B> {
    use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
    ErrorHandlers::new().default_handler(|res: actix_web::dev::ServiceResponse<B>| {
        let is_json = res
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
        // JSON errors are already in shape; HTML ones are the web portal's own error pages.
        if is_json {
            return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
        }
        let status = res.status();
        let code = match status.as_u16() {
            400 => error::ErrorCode::BadRequest,
            404 => error::ErrorCode::NotFound,
            405 => error::ErrorCode::MethodNotAllowed,
            408 => error::ErrorCode::RequestTimeout,
            413 => error::ErrorCode::PayloadTooLarge,
            415 => error::ErrorCode::UnsupportedMediaType,
            431 => error::ErrorCode::HeadersTooLarge,
            s if s >= 500 => error::ErrorCode::InternalError,
            _ => error::ErrorCode::RequestFailed,
        };
        let message = status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string();
        let (req, _) = res.into_parts();
        let body = HttpResponse::build(status).json(error::ErrorBody {
            error: error::ErrorDetail { code, message },
        });
        Ok(ErrorHandlerResponse::Response(
            actix_web::dev::ServiceResponse::new(req, body).map_into_right_body(),
        ))
    })
}
