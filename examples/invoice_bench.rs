//! Invoice run benchmark: 10,000 drivers × 10 priced sessions, one month, on SQLite or
//! PostgreSQL.
//!
//! Run: `cargo run --release --example invoice_bench -- [DATABASE_URL] [drivers] [sessions]`
//! (default: a fresh SQLite file, 10000 drivers, 10 sessions each). With a `postgres://` URL
//! it uses that database, which must be empty (create one first). It seeds the database with
//! batched inserts (not timed), then times one invoice run and a second, idempotent run.

use std::time::Instant;

use chrono::{TimeZone, Utc};
use diesel::connection::SimpleConnection;
use laddkoll::billing::{self, SessionUsage};
use laddkoll::config::Config;
use laddkoll::db::Db;
use rust_decimal::Decimal;
use serde_json::json;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = tempfile::tempdir().unwrap();
    let url = args
        .next()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let drivers: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let per_driver: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);

    let db = Db::connect(&url, 2).unwrap();
    db.migrate().unwrap();
    let mut conn = db.get().unwrap();

    // One real priced record, reused for every session: 10 kWh, 60 min charging.
    let tariff = billing::validate_tariff(
        &json!({"elements": [{"price_components": [{"type": "ENERGY", "price": 2.5, "step_size": 1}, {"type": "FLAT", "price": 5, "step_size": 1}]}]}),
        "SEK",
        Decimal::from(25),
    )
    .unwrap();
    let start = Utc.with_ymd_and_hms(2026, 11, 10, 9, 0, 0).unwrap();
    let usage = SessionUsage {
        start,
        stop: start + chrono::Duration::hours(1),
        meter_start_wh: 0,
        meter_stop_wh: 10_000,
        samples: vec![],
        state_changes: vec![],
    };
    let priced = billing::price(&tariff, chrono_tz::Europe::Stockholm, &usage).unwrap();
    let priced_json = serde_json::to_string(&priced).unwrap().replace('\'', "''");

    let seeded = Instant::now();
    conn.batch_execute(
        "INSERT INTO locations (name, address, city, country, lat, lon, timezone, created_at) VALUES \
         ('Bench', 'Götgatan 1', 'Stockholm', 'SE', 59.3, 18.0, 'Europe/Stockholm', '2026-11-01 00:00:00'); \
         INSERT INTO charge_points (id, location_id, key_hash, heartbeat_interval, online, created_at, key_rotated_at) VALUES \
         ('BENCH-1', 1, 'x', 300, FALSE, '2026-11-01 00:00:00', '2026-11-01 00:00:00');",
    )
    .unwrap();
    for chunk in (0..drivers).collect::<Vec<_>>().chunks(1000) {
        let values: Vec<String> = chunk
            .iter()
            .map(|i| format!("('bench{i}@example.se', 'Driver {i}', 'x', 'driver', 'active', 0, 0, '2026-11-01 00:00:00', '2026-11-01 00:00:00')"))
            .collect();
        conn.batch_execute(&format!(
            "INSERT INTO users (email, name, password_hash, role, status, token_version, failed_logins, created_at, updated_at) VALUES {}",
            values.join(",")
        ))
        .unwrap();
    }
    let sessions = drivers * per_driver;
    for chunk in (0..sessions).collect::<Vec<_>>().chunks(1000) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|s| {
                let user = s / per_driver + 1;
                let day = 1 + (s % per_driver) % 28;
                format!(
                    "({user}, 'BENCH-1', 1, 'TAG', 'rfid', 'finished', 'bench-{s}', '2026-11-{day:02} 09:00:00', '2026-11-{day:02} 10:00:00', 0, 10000, '2026-11-{day:02} 10:00:00', '2026-11-{day:02} 10:00:00')"
                )
            })
            .collect();
        conn.batch_execute(&format!(
            "INSERT INTO charging_sessions (user_id, charge_point_id, connector_id, id_tag, origin, status, start_key, started_at, stopped_at, meter_start_wh, meter_stop_wh, created_at, updated_at) VALUES {}",
            rows.join(",")
        ))
        .unwrap();
        let billing: Vec<String> = chunk
            .iter()
            .map(|s| {
                format!(
                    "({}, 'priced', 'SEK', {}, {}, {}, '{priced_json}', '2026-11-30 00:00:00')",
                    s + 1,
                    priced.excl_vat,
                    priced.vat,
                    priced.total
                )
            })
            .collect();
        conn.batch_execute(&format!(
            "INSERT INTO session_billing (session_id, status, currency, excl_vat, vat, total, priced, priced_at) VALUES {}",
            billing.join(",")
        ))
        .unwrap();
    }
    println!(
        "seeded {drivers} drivers × {per_driver} sessions in {:.1} s ({:?})",
        seeded.elapsed().as_secs_f64(),
        db.backend()
    );

    let config = Config::for_database(&url);
    let t = Instant::now();
    let report = billing::invoicing::run(
        &mut conn,
        "2026-11",
        chrono_tz::Europe::Stockholm,
        "LK",
        &config.seller(),
        laddkoll::http::time::now(),
    )
    .unwrap();
    let first = t.elapsed().as_secs_f64();
    assert_eq!(
        (report.invoices_issued, report.sessions_billed),
        (drivers, sessions)
    );
    println!(
        "invoice run: {} invoices, {} sessions in {first:.2} s ({:.0} invoices/s, {:.0} sessions/s)",
        report.invoices_issued,
        report.sessions_billed,
        drivers as f64 / first,
        sessions as f64 / first
    );
    let t = Instant::now();
    let again = billing::invoicing::run(
        &mut conn,
        "2026-11",
        chrono_tz::Europe::Stockholm,
        "LK",
        &config.seller(),
        laddkoll::http::time::now(),
    )
    .unwrap();
    assert_eq!(again.invoices_issued, 0);
    println!(
        "second run (idempotent): 0 invoices in {:.2} s",
        t.elapsed().as_secs_f64()
    );
}
