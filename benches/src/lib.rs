//! Helpers shared by Anxin's benchmarks: the area they play out in, a district in it, the
//! brute-force baseline that the matcher's R-tree has to beat, and the latency summary the
//! nearest-responder comparison (`src/bin/knn_compare.rs`) prints.

use anxin_core::geo::Coordinates;
use anxin_core::matcher::Nearest;
use std::ops::Range;
use std::time::Duration;

/// Latitudes of the benchmark area, a box around Kunming, in degrees.
pub const KUNMING_LAT: Range<f64> = 24.8..25.2;
/// Longitudes of the benchmark area, in degrees.
pub const KUNMING_LON: Range<f64> = 102.5..102.9;

/// A district in the benchmark area, drawn from `seed`: `elders` elders with a device each
/// (`e{i}`, `d{i}`), `responders` on duty and free (`r{i}`, e-bike, first aid) belonging to
/// `stations` stations (`s{i}`) in turn. Built as the registry file would give it (JSON,
/// fields left out take their defaults), so the benchmarks keep compiling as the ledger
/// gains fields.
pub fn district(elders: usize, responders: usize, stations: usize, seed: u64) -> anxin_core::Registry {
    use rand::{Rng, SeedableRng};
    use serde_json::json;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut place = || json!({ "lat": rng.random_range(KUNMING_LAT), "lon": rng.random_range(KUNMING_LON) });
    let stations_json: Vec<_> = (0..stations)
        .map(|s| json!({ "id": format!("s{s}"), "name": format!("station {s}"), "position": place() }))
        .collect();
    let elders_json: Vec<_> = (0..elders)
        .map(|i| json!({ "id": format!("e{i}"), "name": format!("elder {i}"), "address": "", "home": place(), "notes": "" }))
        .collect();
    let devices: Vec<_> = (0..elders).map(|i| json!({ "id": format!("d{i}"), "elder_id": format!("e{i}") })).collect();
    let responders_json: Vec<_> = (0..responders)
        .map(|i| {
            json!({ "id": format!("r{i}"), "name": format!("responder {i}"), "station_id": format!("s{}", i % stations),
                    "position": place(), "on_duty": true, "mode": "ebike", "skills": ["first_aid"] })
        })
        .collect();
    let registry: anxin_core::Registry = serde_json::from_value(
        json!({ "elders": elders_json, "devices": devices, "stations": stations_json, "responders": responders_json }),
    )
    .expect("a valid registry");
    registry.check().expect("a consistent registry");
    registry
}

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

/// Per-query latencies of one run, summarised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub queries: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
    /// Queries per second over the whole run, one query at a time (so it includes the
    /// client's own work between queries, not only the time inside the calls).
    pub per_second: f64,
}

impl Summary {
    /// Summarises `latencies` (one per query, in any order) from a run that took `wall` in all.
    /// `None` for an empty run.
    pub fn new(mut latencies: Vec<Duration>, wall: Duration) -> Option<Self> {
        if latencies.is_empty() {
            return None;
        }
        latencies.sort_unstable();
        let n = latencies.len();
        // Nearest rank: the smallest latency at or above the given share of queries.
        let rank = |q: f64| latencies[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        let total: Duration = latencies.iter().sum();
        Some(Self {
            queries: n,
            p50: rank(0.50),
            p99: rank(0.99),
            max: latencies[n - 1],
            mean: total / n as u32,
            per_second: n as f64 / wall.as_secs_f64(),
        })
    }
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
    fn summaries_use_nearest_rank() {
        let us = |n: u64| Duration::from_micros(n);
        let s = Summary::new((1..=100).rev().map(us).collect(), Duration::from_millis(10)).unwrap();
        assert_eq!((s.queries, s.p50, s.p99, s.max), (100, us(50), us(99), us(100)));
        assert_eq!(s.mean, Duration::from_nanos(50_500));
        assert!((s.per_second - 10_000.0).abs() < 1e-6);
        let one = Summary::new(vec![us(7)], Duration::from_micros(7)).unwrap();
        assert_eq!((one.p50, one.p99), (us(7), us(7)));
        assert!(Summary::new(Vec::new(), Duration::ZERO).is_none());
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
