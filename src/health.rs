//! Liveness, readiness and metrics endpoints.

use actix_web::{get, HttpResponse};
use diesel::connection::SimpleConnection;

use crate::http::ApiError;
use crate::state::State;

/// The process is up.
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The database answers.
#[get("/readyz")]
pub async fn readyz(state: State) -> Result<HttpResponse, ApiError> {
    state
        .db
        .run(|conn| {
            conn.batch_execute("SELECT 1")
                .map_err(|_| ApiError::Unavailable("the database does not answer".into()))
        })
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready"})))
}

/// Prometheus text exposition.
#[get("/metrics")]
pub async fn metrics(state: State) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}
