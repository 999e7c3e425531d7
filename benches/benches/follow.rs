//! What a zone's committed views cost the nodes of a cluster with its zones spread
//! (`[cluster] spread_zones`): the owner writing them for its own consoles and for the other
//! nodes, and each other node taking them onto its consoles' hub. Each side two ways, in one
//! run: as it was before 2026-12-07 (the owner writing every view twice, a follower reading
//! every view in full and writing it out again), and as now (each view written once, a
//! follower reading its head only and sending the rest on as written,
//! `anxin_proto::cluster::WrittenView`). A frame of two views, each the 1.7 kB of the family
//! test's incident, as an engine's commit in the cluster test carries about.
//!
//! Run with `cargo bench -p anxin-benches --bench follow`.

use anxin_api::hub::Cursor;
use anxin_api::Hub;
use anxin_core::{IncidentView, Timestamp};
use anxin_proto::cluster::{WrittenView, ZoneViews};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use serde::{Deserialize, Serialize};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const T0: Timestamp = Timestamp(1_763_000_000_000);
const VIEWS: u64 = 2;
/// Incidents the hub holds open: the ids cycle through them.
const OPEN: u64 = 1_000;

/// A zone's frame as it was before: every view in full.
#[derive(Serialize, Deserialize)]
struct FullFrame {
    zone: u16,
    prev: u64,
    views: Vec<IncidentView>,
}

/// The views numbered from `seq` on, of open incidents.
fn views(seq: u64) -> Vec<IncidentView> {
    (0..VIEWS)
        .map(|i| {
            let seq = seq + i;
            let text = include_str!("../../crates/anxin-api/tests/family_view.json")
                .replace("\"ID\"", &(seq % OPEN + 1).to_string())
                .replace("\"SEQ\"", &seq.to_string())
                .replace("ELDER", "e-1")
                .replace("STATE", "offered");
            serde_json::from_str(&text).expect("a view")
        })
        .collect()
}

fn frame_bytes(seq: u64) -> Vec<u8> {
    serde_json::to_vec(&FullFrame { zone: 0, prev: seq - 1, views: views(seq) }).unwrap()
}

/// A hub with a console connected (never reading: its receiver lags, as a slow one's would).
fn hub() -> (Hub, tokio::sync::broadcast::Receiver<anxin_api::hub::Frame>) {
    let hub = Hub::new("h".into(), Cursor::of([0]), Vec::new(), 4096);
    let console = hub.subscribe(None, None, T0).live;
    (hub, console)
}

fn following(c: &mut Criterion) {
    // Both ways send the consoles the same frames: a comparison of like with like.
    let (full, written) = (hub(), hub());
    let bytes = frame_bytes(1);
    let f: FullFrame = serde_json::from_slice(&bytes).unwrap();
    full.0.publish(f.views);
    written.0.publish_written(ZoneViews::from_json(&bytes).unwrap().views);
    assert_eq!(
        full.0.subscribe(None, None, T0).initial.last().unwrap().text,
        written.0.subscribe(None, None, T0).initial.last().unwrap().text
    );

    let mut group = c.benchmark_group("follow_a_frame");
    group.throughput(Throughput::Elements(VIEWS));
    each_frame(&mut group, "read_in_full_and_written_again", frame_bytes, |hub, bytes| {
        let frame: FullFrame = serde_json::from_slice(black_box(&bytes)).unwrap();
        hub.publish(frame.views);
    });
    each_frame(&mut group, "head_read_and_sent_as_written", frame_bytes, |hub, bytes| {
        let frame = ZoneViews::from_json(black_box(&bytes)).unwrap();
        hub.publish_written(frame.views);
    });
    group.finish();

    let mut group = c.benchmark_group("own_a_frame");
    group.throughput(Throughput::Elements(VIEWS));
    each_frame(&mut group, "written_twice", views, |hub, deltas| {
        // The other nodes' copy, then the consoles' frames, then the other nodes' frame.
        let peers = deltas.clone();
        let deltas: Vec<Arc<IncidentView>> = deltas.into_iter().map(Arc::new).collect();
        hub.publish(deltas);
        black_box(serde_json::to_vec(&FullFrame { zone: 0, prev: peers[0].seq - 1, views: peers }).unwrap());
    });
    each_frame(&mut group, "written_once", views, |hub, deltas| {
        let deltas: Vec<Arc<IncidentView>> = deltas.into_iter().map(Arc::new).collect();
        let written: Vec<WrittenView> = deltas.iter().map(|v| WrittenView::of(v)).collect();
        hub.publish_as_written(deltas.into_iter().zip(&written));
        let prev = written[0].seq - 1;
        black_box(serde_json::to_vec(&ZoneViews { zone: 0, prev, views: written, ..ZoneViews::default() }).unwrap());
    });
    group.finish();
}

/// Benchmarks `take` on a hub of its own, each time with what `make` makes of the next
/// frame's first sequence number (made outside the timing).
fn each_frame<T>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    make: fn(u64) -> T,
    take: impl Fn(&Hub, T),
) {
    let (hub, _console) = hub();
    let mut seq = 1;
    group.bench_function(name, |b| {
        b.iter_batched(
            || {
                seq += VIEWS;
                make(seq)
            },
            |made| take(&hub, made),
            BatchSize::SmallInput,
        )
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = following
}
criterion_main!(benches);
