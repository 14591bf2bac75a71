//! laddkoll: an open backend for EV-charging networks.
//!
//! Domains live in their own modules (`auth`, `accounts`, `audit`, …) with thin HTTP handlers,
//! plain functions holding the rules and named queries; `db` and `http` are shared.

pub mod accounts;
pub mod app;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod central;
pub mod charging;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod db;
pub mod demo;
pub mod health;
pub mod http;
pub mod locations;
pub mod logging;
pub mod ocpp;
pub mod portal;
pub mod recommend;
pub mod simulate;
pub mod state;

pub use app::{build_app, openapi};
pub use state::AppState;
