//! `laddkoll import-sessions`: charging history from a previous system.
//!
//! The CSV is parsed by [`laddkoll_ml::parse_sessions_csv`]. A driver reference that is the
//! email of an existing driver account maps to it; other unknown driver references become
//! driver accounts without email or password (they cannot sign in); unknown location
//! references become locations named by the row's `location_name` (else after the reference),
//! in the row's time zone, with the
//! address `imported: <ref>`, the country code `ZZ` (ISO 3166 "unknown") and **synthetic
//! coordinates** derived from the reference (see [`synthetic_coord`]): stable, spread over the
//! globe so that two imported places are practically never "nearby" each other, and to be
//! corrected by the operator when the real place is known. Each session gets an import key, a
//! hash of its content, so importing the same rows again adds nothing.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use laddkoll_ml::ImportRow;
use sha2::{Digest, Sha256};

use super::queries::{self, NewImportedSession, RefKind};
use crate::db::{write_tx, DbConn};
use crate::locations::queries::{insert_location, NewLocation};

/// Sessions per write transaction: short enough that the server's writers never wait long
/// (SQLite has one writer at a time).
const SESSIONS_PER_TX: usize = 20_000;

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportCounts {
    /// Rows read from the file (valid ones).
    pub rows: usize,
    /// Sessions stored now.
    pub inserted: usize,
    /// Sessions already stored by an earlier import.
    pub already_present: usize,
    /// Driver accounts created.
    pub new_drivers: usize,
    /// Locations created.
    pub new_locations: usize,
}

/// Stable synthetic coordinates for an imported location reference: SHA-256 of the reference
/// mapped to latitude −60…70 and longitude −180…180. Two references land within 3 km of each
/// other with a probability of about 10⁻⁷, so imported places do not become each other's
/// "nearby" alternatives by accident.
pub fn synthetic_coord(location_ref: &str) -> (f64, f64) {
    let digest = Sha256::digest(location_ref.as_bytes());
    let a = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    let b = u32::from_be_bytes([digest[4], digest[5], digest[6], digest[7]]);
    let unit = |x: u32| f64::from(x) / f64::from(u32::MAX);
    let lat = -60.0 + 130.0 * unit(a);
    let lon = -180.0 + 360.0 * unit(b);
    ((lat * 1e6).round() / 1e6, (lon * 1e6).round() / 1e6)
}

/// The import key of a row: its content, hashed.
pub fn import_key(row: &ImportRow) -> String {
    let mut h = Sha256::new();
    for part in [
        row.driver_ref.as_str(),
        row.location_ref.as_str(),
        row.charge_point_ref.as_deref().unwrap_or(""),
        &row.started_at.to_rfc3339(),
        &row.ended_at.to_rfc3339(),
        &format!("{:.6}", row.energy_kwh),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    h.finalize()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The account a driver reference names when it is the email of an existing driver, so an
/// operator can attach old history to drivers who already use the app.
fn existing_account(
    conn: &mut DbConn,
    driver_ref: &str,
) -> Result<Option<i64>, diesel::result::Error> {
    if !driver_ref.contains('@') {
        return Ok(None);
    }
    let email = driver_ref.trim().to_lowercase();
    Ok(crate::accounts::queries::find_by_email(conn, &email)?
        .filter(|u| u.role == crate::http::auth::DRIVER)
        .map(|u| u.id))
}

/// Stores `rows` (already validated): creates missing drivers and locations, then inserts the
/// sessions in batches, each in its own write transaction. A run that stops half-way can simply
/// be repeated: keys make the second run add only what is missing.
pub fn import_rows(
    conn: &mut DbConn,
    rows: &[ImportRow],
    now: NaiveDateTime,
) -> Result<ImportCounts, diesel::result::Error> {
    let mut counts = ImportCounts {
        rows: rows.len(),
        ..Default::default()
    };
    let (drivers, locations) = write_tx(conn, |conn| {
        let mut drivers = queries::refs_of_kind(conn, RefKind::Driver)?;
        let mut locations = queries::refs_of_kind(conn, RefKind::Location)?;
        for row in rows {
            if !drivers.contains_key(&row.driver_ref) {
                let id = match existing_account(conn, &row.driver_ref)? {
                    Some(id) => id,
                    None => {
                        counts.new_drivers += 1;
                        queries::insert_imported_driver(conn, now)?
                    }
                };
                queries::insert_ref(conn, RefKind::Driver, &row.driver_ref, id, now)?;
                drivers.insert(row.driver_ref.clone(), id);
            }
            if !locations.contains_key(&row.location_ref) {
                let (lat, lon) = synthetic_coord(&row.location_ref);
                let loc = insert_location(
                    conn,
                    &NewLocation {
                        name: row
                            .location_name
                            .clone()
                            .unwrap_or_else(|| row.location_ref.clone()),
                        address: format!("imported: {}", row.location_ref),
                        city: String::new(),
                        country: "ZZ".into(),
                        lat,
                        lon,
                        timezone: row.timezone.clone(),
                        created_at: now,
                    },
                )?;
                queries::insert_ref(conn, RefKind::Location, &row.location_ref, loc.id, now)?;
                locations.insert(row.location_ref.clone(), loc.id);
                counts.new_locations += 1;
            }
        }
        Ok::<_, diesel::result::Error>((drivers, locations))
    })?;
    let lookup = |map: &HashMap<String, i64>, key: &str| map.get(key).copied().unwrap_or(0);
    for chunk in rows.chunks(SESSIONS_PER_TX) {
        let new: Vec<NewImportedSession> = chunk
            .iter()
            .map(|row| NewImportedSession {
                import_key: import_key(row),
                user_id: lookup(&drivers, &row.driver_ref),
                location_id: lookup(&locations, &row.location_ref),
                charge_point_ref: row.charge_point_ref.clone(),
                started_at: row.started_at.naive_utc(),
                ended_at: row.ended_at.naive_utc(),
                local_start: row.local_start,
                energy_wh: (row.energy_kwh * 1000.0).round() as i64,
                imported_at: now,
            })
            .collect();
        counts.inserted += write_tx(conn, |conn| queries::insert_imported_sessions(conn, &new))?;
    }
    counts.already_present = counts.rows - counts.inserted;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_coordinates_are_stable_and_valid() {
        let a = synthetic_coord("SITE-1");
        assert_eq!(a, synthetic_coord("SITE-1"));
        assert_ne!(a, synthetic_coord("SITE-2"));
        for r in ["", "x", "a much longer reference 123"] {
            let (lat, lon) = synthetic_coord(r);
            assert!((-60.0..=70.0).contains(&lat) && (-180.0..=180.0).contains(&lon));
        }
    }
}
