//! The dispatch core's steps under load, in a district the size of the seeds': 50,000 elders
//! with a device each, 1,000 responders on duty and 35 stations around Kunming. How many
//! presses the `Engine` takes in per second during a surge, what a responder's accept costs,
//! a `tick` when a thousand offers lapse at once (or when nothing is due), and the search for
//! an extra offer to take when every responder holds one (through the index of their holders
//! and, side by side, by reading them all).
//!
//! Run with `cargo bench -p anxin-benches --bench engine`. The engine has state, so each
//! measurement builds its engines untimed (`iter_custom`) and times only the steps.

use anxin_core::*;
use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};

const ELDERS: usize = 50_000;
const RESPONDERS: usize = 1_000;
/// Kunming Xishan's community home-care centres (`000_e80177f87291a972.txt`).
const STATIONS: usize = 35;
/// Presses from different devices into one fresh engine, before the next engine is built.
const SURGE: usize = 5_000;
/// Open incidents whose offers lapse in one tick.
const LAPSING: usize = 1_000;
const SEED: u64 = 0x616e_7869_6e01;
const T0: Timestamp = Timestamp(1_763_000_000_000);

/// A district, drawn once; every engine in the benchmark starts from it.
struct District {
    registry: Registry,
    devices: Vec<DeviceId>,
}

impl District {
    fn new() -> Self {
        let registry = anxin_benches::district(ELDERS, RESPONDERS, STATIONS, SEED);
        let devices = registry.devices.iter().map(|d| d.id.clone()).collect();
        Self { registry, devices }
    }

    fn engine(&self) -> Engine {
        Engine::new(Policy::default(), self.registry.clone(), Resume::default())
    }

    /// A fresh engine in which the first `n` devices have pressed SOS, one millisecond apart.
    fn engine_with_presses(&self, n: usize) -> Engine {
        let mut engine = self.engine();
        for (i, device) in self.devices.iter().take(n).enumerate() {
            engine.handle_device_event(device, sos(i), at(i), &mut Outbox::default()).expect("a known device");
        }
        engine
    }

    /// The time `iters` presses take as surges of `presses` different devices into fresh
    /// engines: whole surges only, so every sample averages the same mix of presses that
    /// found a responder and presses that did not, the time scaled to `iters` presses.
    fn time_surges(&self, presses: usize, iters: u64) -> Duration {
        let mut timed = Duration::ZERO;
        let mut pressed = 0;
        while pressed < iters as usize {
            let mut engine = self.engine();
            let started = Instant::now();
            for (i, device) in self.devices.iter().take(presses).enumerate() {
                let mut out = Outbox::default();
                black_box(engine.handle_device_event(device, sos(i), at(i), &mut out).unwrap());
            }
            timed += started.elapsed();
            pressed += presses;
        }
        timed.mul_f64(iters as f64 / pressed as f64)
    }

    /// The responders holding an offer in `engine`, with the incident offered.
    fn offers(&self, engine: &Engine, now: Timestamp) -> Vec<(ResponderId, IncidentId)> {
        self.registry
            .responders
            .iter()
            .filter_map(|r| Some((r.id.clone(), engine.job_view(&r.id, now)?)))
            .filter(|(_, job)| job.state == IncidentState::Offered)
            .map(|(id, job)| (id, job.incident_id))
            .collect()
    }
}

/// The `i`th press of a surge: an SOS with no fix, so the engine places it at home.
fn sos(i: usize) -> DeviceEvent {
    DeviceEvent {
        msg_id: MessageId::parse(format!("m{i}")).unwrap(),
        event: EventType::Sos,
        device_ts: at(i),
        fix: FixReport::Absent,
        health: Default::default(),
    }
}

fn at(i: usize) -> Timestamp {
    T0.plus_millis(i as i64)
}

fn engine_steps(c: &mut Criterion) {
    let district = District::new();
    let mut group = c.benchmark_group("engine");
    group.sample_size(20).sampling_mode(SamplingMode::Flat);

    // A surge: each press from a different device opens an incident and climbs its ladder
    // (the first thousand find a free responder nearby; the rest go to their station).
    group.throughput(Throughput::Elements(1));
    group.bench_function("press_sos_surge", |b| b.iter_custom(|iters| district.time_surges(SURGE, iters)));

    // A surge's first presses: each from a different device, each finding free responders
    // nearby and offering to as many at once as the ladder allows, until the district's
    // responders all hold an offer (the first presses of `press_sos_surge` alone).
    let first = RESPONDERS / 3;
    group.bench_function(format!("press_sos_surge_first_{first}_offered"), |b| {
        b.iter_custom(|iters| district.time_surges(first, iters))
    });

    // The device did not hear its ack and sends the same press again (MQTT QoS 1).
    group.bench_function("press_duplicate", |b| {
        let mut engine = district.engine_with_presses(SURGE);
        let mut next = 0;
        b.iter(|| {
            let i = next % SURGE;
            next += 1;
            let outcome = engine.handle_device_event(&district.devices[i], sos(i), at(i), &mut Outbox::default());
            assert_eq!(outcome, Ok(Outcome::Duplicate));
        })
    });

    group.bench_function("responder_accept", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut done = 0;
            while done < iters as usize {
                let mut engine = district.engine_with_presses(LAPSING);
                let now = at(LAPSING);
                let offers = district.offers(&engine, now);
                assert!(!offers.is_empty(), "a surge of {LAPSING} offers somebody");
                let n = offers.len().min(iters as usize - done);
                let started = Instant::now();
                for (responder, incident) in &offers[..n] {
                    let mut out = Outbox::default();
                    engine.responder_acts(responder, *incident, ResponderAction::Accept, now, &mut out).unwrap();
                }
                timed += started.elapsed();
                done += n;
            }
            timed
        })
    });

    // Nobody answers: a minute later every offer lapses in the same tick, and each incident
    // climbs to its next rung.
    let lapse = at(LAPSING).plus_millis(Policy::default().offer_timeout_ms + 1);
    let open = district.engine_with_presses(LAPSING);
    let offered = district.offers(&open, at(LAPSING)).len() as u64;
    drop(open);
    group.throughput(Throughput::Elements(offered));
    group.bench_function(format!("tick_{offered}_offers_lapse"), |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let mut engine = district.engine_with_presses(LAPSING);
                let mut out = Outbox::default();
                let started = Instant::now();
                engine.tick(lapse, &mut out);
                timed += started.elapsed();
                assert!(!out.events.is_empty(), "the lapses were acted on");
            }
            timed
        })
    });

    // The shell ticks on every wake-up; most of the time nothing is due.
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("tick_nothing_due_{LAPSING}_open"), |b| {
        let mut engine = district.engine_with_presses(LAPSING);
        let now = at(LAPSING);
        b.iter(|| {
            let mut out = Outbox::default();
            engine.tick(black_box(now), &mut out);
            assert!(out.is_empty());
        })
    });
    // A press that finds nobody free, while every responder holds one of three parallel
    // offers on an earlier incident: the extra offer it may take, found through the index of
    // their holders by position, and (the reference the simulation checks it against) by
    // reading every extra offer of every incident, as before 2026-12-07.
    let policy = Policy { yield_extra_offers: false, ..Policy::default() };
    let mut engine = Engine::new(policy, district.registry.clone(), Resume::default());
    let holding = RESPONDERS / 3 + 50;
    for (i, device) in district.devices.iter().take(holding).enumerate() {
        engine.handle_device_event(device, sos(i), at(i), &mut Outbox::default()).expect("a known device");
    }
    let waiting: Vec<IncidentId> =
        engine.open_incidents().filter(|i| i.ladder.offers.is_empty()).map(|i| i.id).collect();
    let extras = engine.extra_offers_indexed().len();
    assert!(extras > RESPONDERS / 2 && !waiting.is_empty(), "{extras} extra offers, {} waiting", waiting.len());
    for id in &waiting {
        assert_eq!(engine.best_extra_offer(*id), engine.best_extra_offer_by_reading_all(*id));
    }
    group.throughput(Throughput::Elements(1));
    let mut next = waiting.iter().cycle();
    group.bench_function(format!("extra_offer_found_among_{extras}_indexed"), |b| {
        b.iter(|| black_box(engine.best_extra_offer(*next.next().unwrap())))
    });
    group.bench_function(format!("extra_offer_found_reading_all_{extras}"), |b| {
        b.iter(|| black_box(engine.best_extra_offer_by_reading_all(*next.next().unwrap())))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = engine_steps
}
criterion_main!(benches);
