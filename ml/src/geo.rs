//! Great-circle distances between charging locations.

/// Mean Earth radius in kilometres (IUGG), good to about 0.5 % for haversine distances.
const EARTH_RADIUS_KM: f64 = 6371.0088;

/// A point on Earth in decimal degrees (WGS 84).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Coord {
    /// Latitude in degrees, -90..=90.
    pub lat: f64,
    /// Longitude in degrees, -180..=180.
    pub lon: f64,
}

impl Coord {
    /// A coordinate from latitude and longitude in degrees.
    pub fn new(lat: f64, lon: f64) -> Self {
        Self { lat, lon }
    }
}

/// Haversine distance in kilometres between two points.
pub fn haversine_km(a: Coord, b: Coord) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    // clamp: rounding can push h a hair above 1 for antipodal points
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stockholm_to_gothenburg_is_about_398_km() {
        let sthlm = Coord::new(59.3293, 18.0686);
        let gbg = Coord::new(57.7089, 11.9746);
        let d = haversine_km(sthlm, gbg);
        assert!((d - 398.0).abs() < 3.0, "{d}");
        assert!((haversine_km(gbg, sthlm) - d).abs() < 1e-9);
    }

    #[test]
    fn same_point_is_zero_and_antipodes_are_half_the_circumference() {
        let p = Coord::new(10.0, 20.0);
        assert_eq!(haversine_km(p, p), 0.0);
        let d = haversine_km(Coord::new(0.0, 0.0), Coord::new(0.0, 180.0));
        assert!((d - std::f64::consts::PI * EARTH_RADIUS_KM).abs() < 1e-6);
    }
}
