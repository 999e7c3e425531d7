//! The matcher under load: nearest available responder by R-tree against a haversine linear
//! scan, and the tree updates a dispatch makes (a responder moving; an offer and its release),
//! with 1k to 1M responders spread over a box around Kunming.
//!
//! Run with `cargo bench -p anxin-benches --bench matcher`. Every input is drawn from a seeded
//! generator before timing starts; the timed loops cycle through the pre-drawn inputs.

use anxin_benches::{brute_force_nearest, KUNMING_LAT, KUNMING_LON};
use anxin_core::geo::Coordinates;
use anxin_core::matcher::Matcher;
use anxin_core::ResponderId;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use std::time::Duration;

/// Responders in the city, per benchmark.
const SIZES: [usize; 4] = [1_000, 10_000, 100_000, 1_000_000];
/// The search radius the dispatch engine uses.
const MAX_DISTANCE_M: f64 = 5_000.0;
/// How many pre-drawn queries or moves each benchmark cycles through; a power of two.
const CYCLE: usize = 4_096;
/// The furthest a move takes a responder from where they started, in degrees (about 200 m).
const STEP_DEG: f64 = 0.002;
/// Seed of the generator; each size mixes in its own count.
const SEED: u64 = 0x616e_7869_6e00;

/// One city: its responders, their matcher, and the inputs to replay against it.
struct City {
    /// Every responder and where they started; all of them are available.
    responders: Vec<(ResponderId, Coordinates)>,
    matcher: Matcher,
    /// Places an SOS comes from.
    queries: Vec<Coordinates>,
    /// Which responder moves, and where to: near where they started.
    moves: Vec<(usize, Coordinates)>,
}

impl City {
    fn new(n: usize) -> Self {
        let mut rng = SmallRng::seed_from_u64(SEED ^ n as u64);
        let responders: Vec<_> =
            (0..n).map(|i| (ResponderId::parse(format!("r{i}")).unwrap(), kunming(&mut rng))).collect();
        let matcher = Matcher::new(responders.iter().cloned(), []);
        let queries = (0..CYCLE).map(|_| kunming(&mut rng)).collect();
        let moves = (0..CYCLE)
            .map(|_| {
                let who = rng.random_range(0..n);
                let from = responders[who].1;
                let lat = from.lat() + rng.random_range(-STEP_DEG..STEP_DEG);
                let lon = from.lon() + rng.random_range(-STEP_DEG..STEP_DEG);
                (who, Coordinates::new(lat, lon).unwrap())
            })
            .collect();
        let city = Self { responders, matcher, queries, moves };
        city.check_against_brute_force();
        city
    }

    /// A benchmark of a wrong answer is worthless: the tree and the scan must agree.
    fn check_against_brute_force(&self) {
        for &at in self.queries.iter().take(8) {
            let tree = self.matcher.nearest_responder(at, MAX_DISTANCE_M).map(|m| m.distance_m);
            let scan = brute_force_nearest(&self.responders, at, MAX_DISTANCE_M).map(|m| m.distance_m);
            match (tree, scan) {
                (Some(t), Some(s)) => assert!((t - s).abs() < 1e-3, "tree {t} m, scan {s} m at {at:?}"),
                (None, None) => {}
                _ => panic!("tree {tree:?}, scan {scan:?} at {at:?}"),
            }
        }
    }

    fn size(&self) -> usize {
        self.responders.len()
    }
}

fn kunming(rng: &mut SmallRng) -> Coordinates {
    Coordinates::new(rng.random_range(KUNMING_LAT), rng.random_range(KUNMING_LON)).unwrap()
}

/// Cycles through `items` one per call, so that no input is drawn while timing.
fn cycle<T: Copy>(items: &[T]) -> impl FnMut() -> T + '_ {
    debug_assert!(items.len().is_power_of_two());
    let mut i = 0;
    move || {
        let item = items[i & (items.len() - 1)];
        i = i.wrapping_add(1);
        item
    }
}

fn matcher(c: &mut Criterion) {
    // Each city is built once (a million responders take a few seconds) and serves every group.
    let mut cities: Vec<City> = SIZES.into_iter().map(City::new).collect();
    nearest_available(c, &cities);
    responder_move(c, &mut cities);
    take_and_return(c, &mut cities);
}

fn nearest_available(c: &mut Criterion, cities: &[City]) {
    let mut group = c.benchmark_group("nearest_available");
    for city in cities {
        let n = city.size();
        group.sample_size(100).sampling_mode(SamplingMode::Auto);
        group.bench_function(BenchmarkId::new("rtree", n), |b| {
            let mut next = cycle(&city.queries);
            b.iter(|| city.matcher.nearest_responder(black_box(next()), black_box(MAX_DISTANCE_M)))
        });
        // A scan of a million takes milliseconds: fewer, flat samples keep the run short.
        group.sample_size(if n >= 1_000_000 { 10 } else { 100 }).sampling_mode(SamplingMode::Flat);
        group.bench_function(BenchmarkId::new("brute_force", n), |b| {
            let mut next = cycle(&city.queries);
            b.iter(|| brute_force_nearest(&city.responders, black_box(next()), black_box(MAX_DISTANCE_M)))
        });
    }
    group.finish();
}

fn responder_move(c: &mut Criterion, cities: &mut [City]) {
    let mut group = c.benchmark_group("responder_move");
    for city in cities {
        let n = city.size();
        let City { responders, matcher, moves, .. } = city;
        group.bench_function(BenchmarkId::new("rtree", n), |b| {
            let mut next = cycle(moves);
            b.iter(|| {
                let (who, to) = next();
                matcher.move_responder(black_box(&responders[who].0), black_box(to));
            })
        });
        assert_eq!(matcher.available_count(), n, "a move must neither add nor lose a responder");
    }
    group.finish();
}

fn take_and_return(c: &mut Criterion, cities: &mut [City]) {
    let mut group = c.benchmark_group("take_and_return");
    for city in cities {
        let n = city.size();
        let City { responders, matcher, moves, .. } = city;
        group.bench_function(BenchmarkId::new("rtree", n), |b| {
            let mut next = cycle(moves);
            b.iter(|| {
                let (who, _) = next();
                let (id, home) = &responders[who];
                // The offer takes them out of the tree; the release puts them back where they started.
                assert!(matcher.set_unavailable(black_box(id)));
                matcher.set_available(id.clone(), black_box(*home));
            })
        });
        assert_eq!(matcher.available_count(), n, "every offer was released");
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = matcher
}
criterion_main!(benches);
