//! Positions on the Earth: validated WGS-84 coordinates and great-circle distance.
//!
//! Distance is the `geo` crate's haversine on a sphere of [`EARTH_RADIUS_M`]; it costs what
//! the formula written out here did (23 ns a distance, `docs/benchmarks.md`).
//!
//! The matcher keeps points as unit vectors in three dimensions. The straight-line (chord)
//! distance between two unit vectors grows strictly with the great-circle distance between
//! them, so the R-tree's Euclidean nearest neighbour is also the great-circle nearest
//! neighbour, with no distortion near the poles or the antimeridian.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Mean Earth radius in metres (IUGG), the radius used for every distance in Anxin.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A WGS-84 latitude/longitude pair in degrees, known to be finite and in range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawCoordinates", into = "RawCoordinates")]
pub struct Coordinates {
    lat: f64,
    lon: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct RawCoordinates {
    lat: f64,
    lon: f64,
}

/// Why a pair of numbers is not a position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CoordinatesError {
    #[error("latitude or longitude is not a finite number")]
    NotFinite,
    #[error("latitude must lie in [-90, 90]")]
    LatitudeOutOfRange,
    #[error("longitude must lie in [-180, 180]")]
    LongitudeOutOfRange,
}

impl Coordinates {
    pub fn new(lat: f64, lon: f64) -> Result<Self, CoordinatesError> {
        if !lat.is_finite() || !lon.is_finite() {
            return Err(CoordinatesError::NotFinite);
        }
        if !(-90.0..=90.0).contains(&lat) {
            return Err(CoordinatesError::LatitudeOutOfRange);
        }
        if !(-180.0..=180.0).contains(&lon) {
            return Err(CoordinatesError::LongitudeOutOfRange);
        }
        Ok(Self { lat, lon })
    }

    pub fn lat(self) -> f64 {
        self.lat
    }

    pub fn lon(self) -> f64 {
        self.lon
    }

    /// Great-circle distance in metres (haversine on a sphere of [`EARTH_RADIUS_M`]). Inline
    /// across crates, as the generic formula it wraps would be, for scans that call it often.
    #[inline]
    pub fn distance_m(self, other: Coordinates) -> f64 {
        use ::geo::{Distance, HaversineMeasure, Point};
        HaversineMeasure::new(EARTH_RADIUS_M).distance(Point::new(self.lon, self.lat), Point::new(other.lon, other.lat))
    }

    /// A lower bound of [`Coordinates::distance_m`] that needs no trigonometry: the difference
    /// in latitude alone, along a meridian (a great circle's arc changes latitude no faster
    /// than it runs). For scans that can pass over whoever is further than a limit without
    /// working out how far.
    #[inline]
    pub fn distance_at_least_m(self, other: Coordinates) -> f64 {
        (self.lat - other.lat).abs().to_radians() * EARTH_RADIUS_M
    }

    /// The point as a unit vector (x towards 0°N 0°E, z towards the north pole).
    pub fn to_unit_vector(self) -> [f64; 3] {
        let (phi, lambda) = (self.lat.to_radians(), self.lon.to_radians());
        [phi.cos() * lambda.cos(), phi.cos() * lambda.sin(), phi.sin()]
    }

    /// Whether this is the (0, 0) "null island" fix that broken GPS modules report.
    pub fn is_null_island(self) -> bool {
        self.lat.abs() < 0.01 && self.lon.abs() < 0.01
    }
}

impl TryFrom<RawCoordinates> for Coordinates {
    type Error = CoordinatesError;
    fn try_from(raw: RawCoordinates) -> Result<Self, Self::Error> {
        Coordinates::new(raw.lat, raw.lon)
    }
}

impl From<Coordinates> for RawCoordinates {
    fn from(c: Coordinates) -> Self {
        RawCoordinates { lat: c.lat, lon: c.lon }
    }
}

/// Squared chord length between two unit vectors, as the R-tree measures it.
pub(crate) fn chord2(a: [f64; 3], b: [f64; 3]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)
}

/// Squared chord length on the unit sphere for a great-circle distance in metres.
pub(crate) fn chord2_for_distance_m(distance_m: f64) -> f64 {
    let theta = (distance_m / EARTH_RADIUS_M).min(std::f64::consts::PI);
    let chord = 2.0 * (theta / 2.0).sin();
    chord * chord
}

/// Great-circle distance in metres for a squared chord length on the unit sphere.
pub(crate) fn distance_m_for_chord2(chord2: f64) -> f64 {
    let half = (chord2.sqrt() / 2.0).min(1.0);
    2.0 * half.asin() * EARTH_RADIUS_M
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_without_trigonometry_is_never_above_the_distance() {
        // A grid over the globe, poles and the antimeridian included, against Kunming and
        // points around it: the bound is at most the distance, and equal along a meridian.
        let kunming = Coordinates::new(25.04, 102.71).unwrap();
        let mut others = vec![kunming];
        for lat in (-90..=90).step_by(5) {
            for lon in (-180..=180).step_by(7) {
                others.push(Coordinates::new(f64::from(lat), f64::from(lon)).unwrap());
            }
        }
        for (i, a) in others.iter().enumerate() {
            for b in others.iter().skip(i).step_by(13).chain([&kunming]) {
                assert!(a.distance_at_least_m(*b) <= a.distance_m(*b) + 1e-6, "{a:?} {b:?}");
            }
        }
        let north = Coordinates::new(25.14, 102.71).unwrap();
        assert!((kunming.distance_at_least_m(north) - kunming.distance_m(north)).abs() < 1e-6);
    }

    #[test]
    fn refuses_nan_and_out_of_range() {
        assert_eq!(Coordinates::new(f64::NAN, 0.0), Err(CoordinatesError::NotFinite));
        assert_eq!(Coordinates::new(0.0, f64::INFINITY), Err(CoordinatesError::NotFinite));
        assert_eq!(Coordinates::new(90.5, 0.0), Err(CoordinatesError::LatitudeOutOfRange));
        assert_eq!(Coordinates::new(0.0, -180.1), Err(CoordinatesError::LongitudeOutOfRange));
        assert!(Coordinates::new(-90.0, 180.0).is_ok());
    }

    #[test]
    fn deserialising_validates() {
        let bad: Result<Coordinates, _> = serde_json::from_str(r#"{"lat": 91, "lon": 0}"#);
        assert!(bad.is_err());
    }

    #[test]
    fn kunming_to_beijing_is_about_2090_km() {
        let kunming = Coordinates::new(25.0389, 102.7183).unwrap();
        let beijing = Coordinates::new(39.9042, 116.4074).unwrap();
        let d = kunming.distance_m(beijing);
        assert!((2_070_000.0..2_110_000.0).contains(&d), "{d}");
    }

    /// geo's haversine does not clamp before its arcsine: antipodes must still measure half
    /// the circumference, not NaN.
    #[test]
    fn antipodes_are_half_way_round() {
        let half = std::f64::consts::PI * EARTH_RADIUS_M;
        for (lat, lon) in [(0.0, 0.0), (25.0389, 102.7183), (-33.9, 18.4), (89.9, -179.9), (45.0, 90.0)] {
            let a = Coordinates::new(lat, lon).unwrap();
            let b = Coordinates::new(-lat, if lon > 0.0 { lon - 180.0 } else { lon + 180.0 }).unwrap();
            let d = a.distance_m(b);
            assert!((d - half).abs() < 1.0, "{a:?} to {b:?}: {d} m");
        }
    }

    #[test]
    fn chord_round_trips_distance() {
        let a = Coordinates::new(25.0, 102.6).unwrap();
        let b = Coordinates::new(25.01, 102.61).unwrap();
        let d = a.distance_m(b);
        let via_chord = distance_m_for_chord2(chord2(a.to_unit_vector(), b.to_unit_vector()));
        assert!((d - via_chord).abs() < 0.01, "{d} vs {via_chord}");
        assert!((chord2_for_distance_m(d) - chord2(a.to_unit_vector(), b.to_unit_vector())).abs() < 1e-15);
    }
}
