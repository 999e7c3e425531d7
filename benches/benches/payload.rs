//! Device payload decoding (`anxin_mqtt::payload::decode`), the first thing every press costs
//! the engine: a bare press, a press with a GPS fix, and the payloads it refuses (garbage,
//! a press with a broken fix it keeps, and an oversized one refused before parsing).
//!
//! Run with `cargo bench -p anxin-benches --bench payload`.

use anxin_core::Timestamp;
use anxin_mqtt::payload::{decode, fingerprint, DEFAULT_MAX_PAYLOAD_BYTES};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

const NOW: Timestamp = Timestamp(1_763_000_000_000);

/// Payloads as devices send them, by name; each decodes the way its name says.
fn payloads() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("press", br#"{"msg_id":"m-000123","type":"sos","ts":1763000000123}"#.to_vec()),
        (
            "press_with_fix",
            concat!(
                r#"{"msg_id":"m-000123","type":"sos","ts":1763000000123,"#,
                r#""location":{"lat":25.0412,"lon":102.7089,"accuracy_m":12.5}}"#
            )
            .as_bytes()
            .to_vec(),
        ),
        (
            "press_with_bad_fix",
            br#"{"msg_id":"m-000123","type":"fall","ts":1763000000123,"location":{"lat":91.5,"lon":102.7}}"#.to_vec(),
        ),
        ("garbage", b"\x00\x13AT+CSQ\r\nERROR\r\n\xff\xfe{{{".to_vec()),
        ("oversized", format!(r#"{{"msg_id":"m","type":"sos","pad":"{}"}}"#, "x".repeat(5_000)).into_bytes()),
    ]
}

fn decoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("payload_decode");
    group.throughput(Throughput::Elements(1));
    for (name, bytes) in payloads() {
        // A benchmark of the wrong path is worthless: check each payload takes the one it is named for.
        let decoded = decode(&bytes, DEFAULT_MAX_PAYLOAD_BYTES, NOW);
        match name {
            "press" | "press_with_fix" => assert!(decoded.as_ref().is_ok_and(|d| d.partial.is_empty()), "{name}"),
            "press_with_bad_fix" => assert!(decoded.as_ref().is_ok_and(|d| !d.partial.is_empty()), "{name}"),
            _ => assert!(decoded.is_err(), "{name}"),
        }
        group.bench_function(name, |b| b.iter(|| decode(black_box(&bytes), DEFAULT_MAX_PAYLOAD_BYTES, NOW)));
    }
    // An unreadable payload is stored under a stand-in id made from its bytes.
    let garbage = b"\x00\x13AT+CSQ\r\nERROR\r\n\xff\xfe{{{";
    group.bench_function("garbage_fingerprint", |b| b.iter(|| fingerprint(black_box(garbage))));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = decoding
}
criterion_main!(benches);
