//! Helpers shared by Anxin's benchmarks: the area they play out in, and the brute-force
//! baseline that the matcher's R-tree has to beat.

use anxin_core::geo::Coordinates;
use anxin_core::matcher::Nearest;
use std::ops::Range;

/// Latitudes of the benchmark area, a box around Kunming, in degrees.
pub const KUNMING_LAT: Range<f64> = 24.8..25.2;
/// Longitudes of the benchmark area, in degrees.
pub const KUNMING_LON: Range<f64> = 102.5..102.9;

/// The nearest of `points` to `at`, if no further than `max_distance_m`, found by a linear
/// scan with the haversine distance: what matching would cost without a spatial index.
pub fn brute_force_nearest<T: Clone>(
    points: &[(T, Coordinates)],
    at: Coordinates,
    max_distance_m: f64,
) -> Option<Nearest<T>> {
    let (id, distance_m) = points.iter().map(|(id, c)| (id, c.distance_m(at))).min_by(|a, b| a.1.total_cmp(&b.1))?;
    (distance_m <= max_distance_m).then(|| Nearest { id: id.clone(), distance_m })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anxin_core::matcher::Matcher;
    use anxin_core::ResponderId;

    /// An uneven grid over the Kunming box, so that no two queries tie.
    fn grid() -> Vec<(ResponderId, Coordinates)> {
        (0..30)
            .flat_map(|i| (0..30).map(move |j| (i, j)))
            .map(|(i, j)| {
                let lat = KUNMING_LAT.start + 0.013 * f64::from(i) + 0.0007 * f64::from(j % 7);
                let lon = KUNMING_LON.start + 0.013 * f64::from(j) + 0.0005 * f64::from(i % 5);
                let id = ResponderId::parse(format!("r{i}-{j}")).unwrap();
                (id, Coordinates::new(lat, lon).unwrap())
            })
            .collect()
    }

    #[test]
    fn the_baseline_agrees_with_the_matcher() {
        let points = grid();
        let matcher = Matcher::new(points.clone(), []);
        for k in 0..50u32 {
            let at = Coordinates::new(24.81 + 0.0077 * f64::from(k), 102.89 - 0.0071 * f64::from(k)).unwrap();
            let want = brute_force_nearest(&points, at, 5_000.0).expect("a grid point within 5 km");
            let got = matcher.nearest_responder(at, 5_000.0).unwrap();
            assert!((got.distance_m - want.distance_m).abs() < 1e-3, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn the_baseline_respects_the_limit() {
        let far = Coordinates::new(25.2, 102.6).unwrap();
        let points = [(ResponderId::parse("r1").unwrap(), far)];
        let home = Coordinates::new(25.0, 102.6).unwrap();
        assert!(brute_force_nearest(&points, home, 5_000.0).is_none());
        assert!(brute_force_nearest(&points, home, 30_000.0).is_some());
        assert!(brute_force_nearest::<ResponderId>(&[], home, f64::INFINITY).is_none());
    }
}
