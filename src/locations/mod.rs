//! Locations and their charge points and connectors: the operator registers them, drivers
//! find them near a point with live status.

pub mod handlers;
pub mod queries;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::http::ApiError;
use queries::{ChargePoint, Connector, Location};

/// Mean Earth radius in km, for haversine distances.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Great-circle distance between two points in km.
pub fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1) = (a.0.to_radians(), a.1.to_radians());
    let (lat2, lon2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().asin()
}

/// The latitude/longitude box that holds every point within `radius_km` of `center`.
pub fn bounding_box(center: (f64, f64), radius_km: f64) -> ((f64, f64), (f64, f64)) {
    let dlat = (radius_km / EARTH_RADIUS_KM).to_degrees();
    let cos = center.0.to_radians().cos().abs().max(1e-6);
    let dlon = (radius_km / (EARTH_RADIUS_KM * cos))
        .to_degrees()
        .min(180.0);
    (
        ((center.0 - dlat).max(-90.0), (center.0 + dlat).min(90.0)),
        ((center.1 - dlon).max(-180.0), (center.1 + dlon).min(180.0)),
    )
}

/// A new location (operator).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLocation {
    #[schema(example = "Laddkoll Garage Söder")]
    pub name: String,
    #[schema(example = "Götgatan 1")]
    pub address: String,
    #[schema(example = "Stockholm")]
    pub city: String,
    /// ISO 3166-1 alpha-2 or alpha-3 country code.
    #[schema(example = "SE")]
    pub country: String,
    #[schema(example = 59.3165)]
    pub lat: f64,
    #[schema(example = 18.0717)]
    pub lon: f64,
    /// IANA time zone; time-of-day prices use it.
    #[schema(example = "Europe/Stockholm")]
    pub timezone: String,
}

fn text(field: &'static str, value: &str, max: usize) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            format!("{field} must have 1 to {max} characters"),
        ));
    }
    Ok(v.to_string())
}

impl CreateLocation {
    /// Validates every field; errors name the field.
    pub fn validate(self, now: NaiveDateTime) -> Result<queries::NewLocation, ApiError> {
        let invalid = |field: &str, msg: &str| {
            ApiError::unprocessable("invalid_field", format!("{field}: {msg}"))
        };
        if !self.lat.is_finite() || !(-90.0..=90.0).contains(&self.lat) {
            return Err(invalid("lat", "must be between -90 and 90"));
        }
        if !self.lon.is_finite() || !(-180.0..=180.0).contains(&self.lon) {
            return Err(invalid("lon", "must be between -180 and 180"));
        }
        let country = self.country.trim().to_ascii_uppercase();
        if !(2..=3).contains(&country.len()) || !country.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(invalid(
                "country",
                "must be an ISO 3166-1 code such as SE or SWE",
            ));
        }
        if self.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(invalid(
                "timezone",
                "must be an IANA time zone such as Europe/Stockholm",
            ));
        }
        Ok(queries::NewLocation {
            name: text("name", &self.name, 200)?,
            address: text("address", &self.address, 200)?,
            city: text("city", &self.city, 100)?,
            country,
            lat: self.lat,
            lon: self.lon,
            timezone: self.timezone,
            created_at: now,
        })
    }
}

/// A connector as drivers and operators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConnectorView {
    pub connector_id: i64,
    /// OCPI connector standard, e.g. IEC_62196_T2.
    pub standard: String,
    pub power_kw: f64,
    /// AC or DC.
    pub current_type: String,
    /// The charger's last OCPP status (Available, Preparing, Charging, …, Unknown).
    pub status: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    #[serde(serialize_with = "crate::http::time::as_utc_opt")]
    pub status_at: Option<NaiveDateTime>,
}

impl From<Connector> for ConnectorView {
    fn from(c: Connector) -> Self {
        ConnectorView {
            connector_id: c.connector_id,
            standard: c.standard,
            power_kw: c.max_power_w as f64 / 1000.0,
            current_type: c.current_type,
            status: c.status,
            status_at: c.status_at,
        }
    }
}

/// A charge point with its live state.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChargePointView {
    pub id: String,
    pub location_id: i64,
    /// Connected now (and heard from within two heartbeat intervals).
    pub online: bool,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub connectors: Vec<ConnectorView>,
    /// The tariff that prices sessions here: structured and as a short summary.
    pub tariff: Option<TariffBrief>,
}

/// The tariff that applies at a charge point.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TariffBrief {
    pub id: i64,
    pub version: i64,
    pub name: String,
    pub summary: crate::billing::TariffSummary,
}

/// Whether a charger counts as online at `now`.
pub fn is_online(cp: &ChargePoint, now: NaiveDateTime) -> bool {
    let grace = chrono::Duration::seconds((cp.heartbeat_interval * 2).max(120));
    cp.online && cp.last_seen_at.is_some_and(|seen| now - seen <= grace)
}

/// A location with its charge points.
#[derive(Debug, Serialize, ToSchema)]
pub struct LocationView {
    pub id: i64,
    pub name: String,
    pub address: String,
    pub city: String,
    pub country: String,
    pub lat: f64,
    pub lon: f64,
    pub timezone: String,
    /// Distance from the searched point (search results only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_km: Option<f64>,
    pub charge_points: Vec<ChargePointView>,
}

/// Assembles views of locations from their rows.
pub fn assemble(
    locations: Vec<(Location, Option<f64>)>,
    charge_points: Vec<ChargePoint>,
    connectors: Vec<Connector>,
    mut tariffs: std::collections::HashMap<String, TariffBrief>,
    now: NaiveDateTime,
) -> Vec<LocationView> {
    let mut connectors_by_cp: std::collections::HashMap<String, Vec<ConnectorView>> =
        Default::default();
    for c in connectors {
        connectors_by_cp
            .entry(c.charge_point_id.clone())
            .or_default()
            .push(c.into());
    }
    let mut cps_by_location: std::collections::HashMap<i64, Vec<ChargePointView>> =
        Default::default();
    for cp in charge_points {
        let online = is_online(&cp, now);
        cps_by_location
            .entry(cp.location_id)
            .or_default()
            .push(ChargePointView {
                connectors: connectors_by_cp.remove(&cp.id).unwrap_or_default(),
                tariff: tariffs.remove(&cp.id),
                id: cp.id,
                location_id: cp.location_id,
                online,
                vendor: cp.vendor,
                model: cp.model,
            });
    }
    locations
        .into_iter()
        .map(|(l, distance_km)| LocationView {
            charge_points: cps_by_location.remove(&l.id).unwrap_or_default(),
            id: l.id,
            name: l.name,
            address: l.address,
            city: l.city,
            country: l.country,
            lat: l.lat,
            lon: l.lon,
            timezone: l.timezone,
            distance_km: distance_km.map(|d| (d * 1000.0).round() / 1000.0),
        })
        .collect()
}

/// Loads full views of the given locations.
pub fn load_views(
    conn: &mut crate::db::DbConn,
    locations: Vec<(Location, Option<f64>)>,
    now: NaiveDateTime,
) -> Result<Vec<LocationView>, ApiError> {
    let ids: Vec<i64> = locations.iter().map(|(l, _)| l.id).collect();
    let cps = queries::charge_points_at(conn, &ids)?;
    let cp_ids: Vec<String> = cps.iter().map(|c| c.id.clone()).collect();
    let connectors = queries::connectors_of(conn, &cp_ids)?;
    // The charge points carry their tariff group: each tariff is read and summarised once.
    let mut briefs: std::collections::HashMap<i64, Option<TariffBrief>> =
        std::collections::HashMap::new();
    let mut tariffs = std::collections::HashMap::new();
    for (cp, group) in cps
        .iter()
        .filter_map(|c| Some((c.id.clone(), c.tariff_id?)))
    {
        let brief = match briefs.entry(group) {
            std::collections::hash_map::Entry::Occupied(known) => known.get().clone(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let brief = match crate::billing::records::current_tariff(conn, group)? {
                    Some(row) => {
                        let valid = row.valid()?;
                        Some(TariffBrief {
                            id: row.tariff_group,
                            version: row.version,
                            name: row.name,
                            summary: crate::billing::summarize(&valid),
                        })
                    }
                    None => None,
                };
                slot.insert(brief).clone()
            }
        };
        if let Some(brief) = brief {
            tariffs.insert(cp, brief);
        }
    }
    Ok(assemble(locations, cps, connectors, tariffs, now))
}

/// Attaches the tariff chosen at registration (an unknown tariff is a 404).
pub fn set_tariff_hook(
    _conn: &mut crate::db::DbConn,
    _charge_point_id: &str,
    tariff_id: Option<i64>,
) -> Result<(), ApiError> {
    crate::billing::records::set_charge_point_tariff(_conn, _charge_point_id, tariff_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_a_known_distance() {
        // Stockholm Central to Gothenburg Central is about 398 km as the crow flies.
        let d = haversine_km((59.3303, 18.0586), (57.7089, 11.9731));
        assert!((d - 398.0).abs() < 5.0, "{d}");
        assert!(haversine_km((59.0, 18.0), (59.0, 18.0)) < 1e-9);
    }

    #[test]
    fn the_bounding_box_contains_the_circle() {
        let center = (59.33, 18.06);
        let ((lat0, lat1), (lon0, lon1)) = bounding_box(center, 10.0);
        for (dlat, dlon) in [(0.089, 0.0), (-0.089, 0.0), (0.0, 0.175), (0.0, -0.175)] {
            let p = (center.0 + dlat, center.1 + dlon);
            if haversine_km(center, p) <= 10.0 {
                assert!(
                    p.0 >= lat0 && p.0 <= lat1 && p.1 >= lon0 && p.1 <= lon1,
                    "{p:?}"
                );
            }
        }
    }
}
