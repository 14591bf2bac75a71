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
    let writes = state.charger_writes.stats();
    // The group writer's counters: messages / batches is the mean batch size.
    let charger = format!(
        "# HELP laddkoll_charger_write_batches_total Transactions the charger writer committed.\n\
         # TYPE laddkoll_charger_write_batches_total counter\n\
         laddkoll_charger_write_batches_total {}\n\
         # HELP laddkoll_charger_write_messages_total Charger messages in committed transactions.\n\
         # TYPE laddkoll_charger_write_messages_total counter\n\
         laddkoll_charger_write_messages_total {}\n\
         # HELP laddkoll_charger_write_failed_batches_total Charger write batches that did not commit.\n\
         # TYPE laddkoll_charger_write_failed_batches_total counter\n\
         laddkoll_charger_write_failed_batches_total {}\n\
         # HELP laddkoll_charger_write_queued Charger messages waiting for the writer.\n\
         # TYPE laddkoll_charger_write_queued gauge\n\
         laddkoll_charger_write_queued {}\n",
        writes.batches(),
        writes.messages(),
        writes.failed_batches(),
        writes.queued(),
    );
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render() + &charger)
}
