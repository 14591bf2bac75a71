//! The application: shared state and `build_app`, used by `serve` and by every test.

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, Error, HttpMessage};
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

use crate::http::{self, openapi::ApiDoc};
pub use crate::state::{AppState, State};

/// The API routes under `/api/v1`, registered on a utoipa-aware config so the OpenAPI
/// document is collected from the same calls.
fn api(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    crate::auth::handlers::configure(cfg);
    crate::accounts::handlers::configure(cfg);
    crate::audit::handlers::configure(cfg);
    crate::locations::handlers::configure(cfg);
    crate::charging::handlers::configure(cfg);
    crate::charging::rfid::configure(cfg);
    crate::billing::handlers::configure(cfg);
    crate::recommend::handlers::configure(cfg);
}

fn utoipa_app<T>(app: App<T>) -> utoipa_actix_web::UtoipaApp<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = Error, InitError = ()>,
{
    app.into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .service(utoipa_actix_web::scope("/api/v1").configure(api))
}

/// The OpenAPI document, generated from the registered handlers.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, mut api) = utoipa_app(App::new()).split_for_parts();
    http::error_docs::document(&mut api);
    api
}

/// The whole application: middleware, API, health, metrics, docs and the JSON 404.
pub fn build_app(
    state: Arc<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    let data = web::Data::from(state.clone());
    let limit = state.config.max_body_bytes;
    let app = App::new()
        .app_data(data)
        .app_data(http::json_config(limit))
        .app_data(http::path_config())
        .app_data(http::query_config())
        .app_data(web::PayloadConfig::new(limit));
    let (app, mut api) = utoipa_app(app).split_for_parts();
    http::error_docs::document(&mut api);
    app.route(
        "/ocpp/{charge_point_id}",
        web::get().to(crate::ocpp::connect),
    )
    .service(crate::health::healthz)
    .service(crate::health::readyz)
    .configure(|cfg| {
        // With LADDKOLL_METRICS_BIND, /metrics is served only there (see `metrics_app`).
        if state.config.metrics_bind.is_none() {
            cfg.service(crate::health::metrics);
        }
    })
    .service(SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", api))
    .service(web::redirect("/docs", "/docs/"))
    .configure(crate::portal::configure)
    .default_service(web::to(http::not_found))
    .wrap(http::json_errors())
    .wrap(actix_web::middleware::from_fn(http::metrics::known_methods))
    .wrap(actix_web::middleware::from_fn(http::headers::protect))
    .wrap(actix_web::middleware::from_fn(http::metrics::record))
    .wrap(actix_web::middleware::from_fn(request_id_header))
    .wrap(TracingLogger::default())
}

/// The application of `LADDKOLL_METRICS_BIND`: `/metrics` only (and `/healthz`), for a
/// scraper on a private address.
pub fn metrics_app(
    state: Arc<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::from(state))
        .service(crate::health::healthz)
        .service(crate::health::metrics)
        .default_service(web::to(http::not_found))
        .wrap(actix_web::middleware::from_fn(http::metrics::known_methods))
}

/// Echoes the request id of the log line in an `X-Request-Id` response header.
async fn request_id_header(
    req: ServiceRequest,
    next: actix_web::middleware::Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = req.extensions().get::<RequestId>().map(|r| r.to_string());
    let id: Option<String> = id;
    let mut res = next.call(req).await?;
    if let Some(value) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        res.headers_mut()
            .insert(HeaderName::from_static("x-request-id"), value);
    }
    Ok(res)
}
