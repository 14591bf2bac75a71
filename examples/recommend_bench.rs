//! Fills a database with the recommender's benchmark data set (`SynthConfig::benchmark`:
//! 1,000,000 sessions, 20,000 drivers, 500 locations, 26 weeks) so that the whole nightly job,
//! database I/O included, can be timed with `laddkoll recommend`:
//!
//! ```sh
//! cargo build --release --bin laddkoll --example recommend_bench
//! rm -f /tmp/bench.db*; ./target/release/examples/recommend_bench sqlite:///tmp/bench.db
//! DATABASE_URL=sqlite:///tmp/bench.db LADDKOLL_JWT_SECRET=$(printf 'x%.0s' {1..40}) \
//!     /usr/bin/time -v ./target/release/laddkoll recommend --window-days 200
//! ```
//!
//! Sessions are stored as imported history, moved by whole weeks so the newest week ends
//! before today (the job's window counts back from now). Each session gets one of its
//! location's connectors as `charge_point_ref`, which gives imported places their capacity.

use std::time::Instant;

use chrono::{Datelike, TimeDelta, Utc};
use laddkoll::db::{write_tx, Db};
use laddkoll::locations::queries::{insert_location, NewLocation};
use laddkoll::recommend::preferences::{LatLon, PreferencesBody};
use laddkoll::recommend::queries::{self as q, NewImportedSession};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: recommend_bench DATABASE_URL")?;
    let t0 = Instant::now();
    let input = laddkoll_ml::synthetic_input(&laddkoll_ml::SynthConfig::benchmark(1));
    eprintln!(
        "generated {} sessions in {:.1} s",
        input.sessions.len(),
        t0.elapsed().as_secs_f64()
    );
    let db = Db::connect(&url, 1)?;
    db.migrate()?;
    let mut conn = db.get()?;
    let now = laddkoll::http::time::now();

    // Move the data by whole weeks so it ends in the week before this one.
    let first = input
        .sessions
        .iter()
        .map(|s| s.start_utc)
        .min()
        .ok_or("no data")?;
    let last = input
        .sessions
        .iter()
        .map(|s| s.end_utc)
        .max()
        .ok_or("no data")?;
    let today = Utc::now();
    let this_monday = today - TimeDelta::days(i64::from(today.weekday().num_days_from_monday()));
    let weeks = ((this_monday - last).num_days() / 7).max(0);
    let shift = TimeDelta::weeks(weeks);
    eprintln!(
        "data {} .. {}, moved by {weeks} weeks",
        first + shift,
        last + shift
    );

    let t1 = Instant::now();
    let (locations, drivers) = write_tx(&mut conn, |conn| {
        let mut locations = std::collections::HashMap::new();
        for l in &input.locations {
            let row = insert_location(
                conn,
                &NewLocation {
                    name: l.name.clone(),
                    address: "bench".into(),
                    city: "Stockholm".into(),
                    country: "SE".into(),
                    lat: l.coord.lat,
                    lon: l.coord.lon,
                    timezone: "Europe/Stockholm".into(),
                    created_at: now,
                },
            )?;
            locations.insert(l.id, (row.id, l.connectors.max(1)));
        }
        let mut drivers = std::collections::HashMap::new();
        let mut ids: Vec<i64> = input.sessions.iter().map(|s| s.driver).collect();
        ids.sort_unstable();
        ids.dedup();
        for d in ids {
            drivers.insert(d, q::insert_imported_driver(conn, now)?);
        }
        for (d, p) in &input.preferences {
            let body = PreferencesBody {
                favourite_location_ids: p
                    .favourite_locations
                    .iter()
                    .filter_map(|l| locations.get(l).map(|x| x.0))
                    .collect(),
                max_price_per_kwh_minor: p.max_price_minor_per_kwh,
                avoid_fast_charging_surcharges: p.avoid_fast_charging_surcharge,
                home: p.home.map(|c| LatLon {
                    lat: c.lat,
                    lon: c.lon,
                }),
                ..Default::default()
            };
            q::save_preferences(conn, &body.to_row(drivers[d], now))?;
        }
        Ok::<_, diesel::result::Error>((locations, drivers))
    })?;
    let mut counter = vec![0u32; input.locations.len() + 1];
    for (ci, chunk) in input.sessions.chunks(20_000).enumerate() {
        let rows: Vec<NewImportedSession> = chunk
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (loc, connectors) = locations[&s.location];
                let slot = s.location as usize % counter.len();
                let k = &mut counter[slot];
                *k += 1;
                NewImportedSession {
                    import_key: format!("bench-{}", ci * 20_000 + i),
                    user_id: drivers[&s.driver],
                    location_id: loc,
                    charge_point_ref: Some(format!("CP{}", *k % connectors)),
                    started_at: (s.start_utc + shift).naive_utc(),
                    ended_at: (s.end_utc + shift).naive_utc(),
                    local_start: s.local_start + shift,
                    energy_wh: (s.energy_kwh * 1000.0).round() as i64,
                    imported_at: now,
                }
            })
            .collect();
        write_tx(&mut conn, |conn| q::insert_imported_sessions(conn, &rows))?;
    }
    eprintln!(
        "stored {} locations, {} drivers, {} sessions in {:.1} s",
        locations.len(),
        drivers.len(),
        input.sessions.len(),
        t1.elapsed().as_secs_f64()
    );
    Ok(())
}
