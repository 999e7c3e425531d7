//! What the `geo` crate's haversine costs against the formula anxin-core wrote out before it
//! (kept here, and only here, as the reference), in one process, on the matcher bench's
//! brute-force scan: one scan of `n` responders with each, alternating which goes first,
//! round after round. The minimum over rounds is what the code costs when nothing else runs;
//! the quartile and the median show what the machine's other load did to both alike.
//! It also says how often the two agree to the bit, and by how much they differ.
//!
//! ```sh
//! cargo run --release -p anxin-benches --bin haversine_ab
//! ```
//!
//! Results: `docs/benchmarks.md`.

use anxin_benches::{KUNMING_LAT, KUNMING_LON};
use anxin_core::geo::{Coordinates, EARTH_RADIUS_M};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::hint::black_box;
use std::time::Instant;

/// The haversine anxin-core had before the `geo` crate: the reference.
#[inline(never)]
fn written_out(a: Coordinates, b: Coordinates) -> f64 {
    let (phi1, phi2) = (a.lat().to_radians(), b.lat().to_radians());
    let dphi = phi2 - phi1;
    let dlambda = (b.lon() - a.lon()).to_radians();
    let h = (dphi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (dlambda / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

#[inline(never)]
fn with_geo(a: Coordinates, b: Coordinates) -> f64 {
    a.distance_m(b)
}

/// The nearest distance from `at`, by a linear scan.
fn scan(points: &[Coordinates], at: Coordinates, distance: fn(Coordinates, Coordinates) -> f64) -> f64 {
    points.iter().map(|&p| distance(p, at)).fold(f64::INFINITY, f64::min)
}

fn kunming(rng: &mut SmallRng) -> Coordinates {
    Coordinates::new(rng.random_range(KUNMING_LAT), rng.random_range(KUNMING_LON)).expect("in range")
}

/// Nanoseconds a distance at the `q` quantile of `times` (seconds a scan of `n`).
fn ns(times: &[f64], q: f64, n: usize) -> f64 {
    times[((times.len() - 1) as f64 * q) as usize] / n as f64 * 1e9
}

fn main() {
    let mut rng = SmallRng::seed_from_u64(0x616e_7869_6e00);
    for (n, rounds) in [(1_000usize, 20_000usize), (100_000, 300), (1_000_000, 60)] {
        let points: Vec<Coordinates> = (0..n).map(|_| kunming(&mut rng)).collect();
        let (mut reference, mut geo) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
        for round in 0..rounds {
            let at = kunming(&mut rng);
            for first in [round % 2 == 0, round % 2 != 0] {
                let (f, times): (fn(Coordinates, Coordinates) -> f64, _) =
                    if first { (written_out, &mut reference) } else { (with_geo, &mut geo) };
                let start = Instant::now();
                black_box(scan(black_box(&points), black_box(at), f));
                times.push(start.elapsed().as_secs_f64());
            }
        }
        reference.sort_by(f64::total_cmp);
        geo.sort_by(f64::total_cmp);
        println!(
            "{n:>9} responders, {rounds:>5} rounds, ns a distance: written out min {:.2} / p25 {:.2} / median {:.2}; \
             geo min {:.2} / p25 {:.2} / median {:.2}",
            ns(&reference, 0.0, n),
            ns(&reference, 0.25, n),
            ns(&reference, 0.5, n),
            ns(&geo, 0.0, n),
            ns(&geo, 0.25, n),
            ns(&geo, 0.5, n),
        );
    }
    let pairs = 1_000_000;
    let (mut same, mut worst) = (0, 0.0f64);
    for _ in 0..pairs {
        let (a, b) = (kunming(&mut rng), kunming(&mut rng));
        let (r, g) = (written_out(a, b), with_geo(a, b));
        same += usize::from(r.to_bits() == g.to_bits());
        worst = worst.max((r - g).abs());
    }
    println!("{pairs} pairs in the city: {same} equal to the bit, the largest difference {worst:.3e} m");
}
