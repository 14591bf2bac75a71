//! The state shared by every request handler and charger connection. It lives here, not in
//! `app.rs` (which assembles the routes), so handlers do not import the file that assembles them.

use std::sync::Arc;

use actix_web::web;

use crate::auth::password::Passwords;
use crate::auth::tokens::JwtKeys;
use crate::config::Config;
use crate::db::group::{self, GroupWriter};
use crate::db::Db;
use crate::http::metrics::Metrics;
use crate::http::rate_limit::AddressLimiter;

/// Everything a request handler may need, shared by all workers.
pub struct AppState {
    pub config: Config,
    pub db: Db,
    pub jwt: JwtKeys,
    pub passwords: Passwords,
    pub auth_limiter: AddressLimiter,
    /// `POST /auth/register` per address (an answer of 409 `email_taken` tells an email exists).
    pub register_limiter: AddressLimiter,
    /// Refused OCPP upgrades per address.
    pub ocpp_refusal_limiter: AddressLimiter,
    pub metrics: Metrics,
    /// Live charger connections of this instance.
    pub registry: crate::ocpp::registry::Registry,
    /// The group writer every charger message's write goes through.
    pub charger_writes: GroupWriter,
}

impl AppState {
    /// Builds the state from a configuration and an open database.
    pub fn new(config: Config, db: Db) -> Arc<AppState> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(AppState {
            jwt: JwtKeys::new(&config),
            passwords: Passwords::new(config.argon2_memory_kib, config.argon2_iterations, cores),
            auth_limiter: AddressLimiter::per_minute(config.auth_rate_per_minute),
            register_limiter: AddressLimiter::per_hour(config.register_rate_per_hour),
            ocpp_refusal_limiter: AddressLimiter::per_minute(config.ocpp_refusals_per_minute),
            metrics: Metrics::new(),
            registry: Default::default(),
            charger_writes: GroupWriter::start(
                db.clone(),
                group::Settings {
                    window: config.charger_batch_window,
                    max_batch: config.charger_batch_max,
                    writers: config.charger_writers,
                },
            ),
            db,
            config,
        })
    }
}

impl AppState {
    /// How long an offline charger's silence makes its active sessions stale.
    pub fn stale_after(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.config.stale_session_after).unwrap_or(chrono::Duration::MAX)
    }
}

/// Shared state as handlers extract it.
pub type State = web::Data<AppState>;
