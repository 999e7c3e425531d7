//! What storing presses costs, on its own: batches of presses, as the engine makes them in a
//! surge, committed to SQLite (a file in the temporary directory, `synchronous = FULL`) and,
//! when `ANXIN_BENCH_POSTGRES_URL` names a server (e.g. `postgres://postgres@127.0.0.1:5432/test`),
//! to PostgreSQL, in a fresh database dropped afterwards.
//!
//! Run with `cargo bench -p anxin-benches --bench store`. Each batch is what one engine step
//! stores for `n` presses from different devices (the message, the incident's events and its
//! row): the first 2,000 presses of a district find a free responder, the rest go to their
//! station, as in `press_load`. The throughput is presses per second through one connection,
//! one commit at a time, with nothing else on the machine competing.

use anxin_core::*;
use anxin_store::{Batch, PostgresStore, SqliteStore, Store};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput};
use std::time::{Duration, Instant};

/// Devices in the district: presses come from each once, then a fresh engine and store start.
const DEVICES: usize = 50_000;
const RESPONDERS: usize = 2_000;
const STATIONS: usize = 35;
const BATCHES: [usize; 4] = [1, 16, 64, 256];
const SEED: u64 = 0x616e_7869_6e02;
const T0: Timestamp = Timestamp(1_763_000_000_000);

/// Where the batches go: a store with the district's ledger, replaced when its district is
/// used up (every device has pressed once).
trait Target {
    async fn fresh(&mut self, registry: &Registry) -> Box<dyn Store>;
    async fn cleanup(&mut self);
}

struct Sqlite {
    dir: tempfile::TempDir,
    n: usize,
}

impl Target for Sqlite {
    async fn fresh(&mut self, registry: &Registry) -> Box<dyn Store> {
        self.n += 1;
        let path = self.dir.path().join(format!("bench{}.db", self.n));
        let store = SqliteStore::open(&format!("sqlite://{}", path.display())).await.expect("open SQLite");
        store.save_registry(registry).await.expect("save the district");
        Box::new(store)
    }
    async fn cleanup(&mut self) {}
}

struct Postgres {
    server: String,
    databases: Vec<String>,
}

impl Target for Postgres {
    async fn fresh(&mut self, registry: &Registry) -> Box<dyn Store> {
        let url = anxin_store::testkit::fresh_postgres_database(&self.server).await;
        self.databases.push(url.clone());
        let store = PostgresStore::open(&url).await.expect("open PostgreSQL");
        store.save_registry(registry).await.expect("save the district");
        // What the district's save wrote should not be in the first timed commits' way.
        let mut admin = postgres_admin(&self.server).await;
        sqlx::query("CHECKPOINT").execute(&mut admin).await.expect("checkpoint");
        Box::new(store)
    }
    async fn cleanup(&mut self) {
        for url in self.databases.drain(..) {
            anxin_store::testkit::drop_postgres_database(&self.server, &url).await;
        }
    }
}

async fn postgres_admin(server: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(server).await.expect("reach PostgreSQL")
}

/// Presses from devices that have not pressed yet, `n` to a batch, through a real engine.
struct Presses<'a> {
    registry: &'a Registry,
    engine: Engine,
    next: usize,
}

impl<'a> Presses<'a> {
    fn new(registry: &'a Registry) -> Self {
        Self { registry, engine: Engine::new(Policy::default(), registry.clone(), Resume::default()), next: 0 }
    }

    /// The next batch, or `None` when the district is used up.
    fn batch(&mut self, n: usize) -> Option<Outbox> {
        if self.next + n > DEVICES {
            return None;
        }
        let mut out = Outbox::default();
        for i in self.next..self.next + n {
            let event = DeviceEvent {
                msg_id: MessageId::parse(format!("m{i}")).unwrap(),
                event: EventType::Sos,
                device_ts: T0.plus_millis(i as i64),
                fix: FixReport::Absent,
                health: Default::default(),
            };
            let device = &self.registry.devices[i].id;
            self.engine.handle_device_event(device, event, T0.plus_millis(i as i64), &mut out).expect("a known device");
        }
        self.next += n;
        Some(out)
    }
}

fn commit_batches<T: Target>(c: &mut Criterion, name: &str, registry: &Registry, mut target: T) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut group = c.benchmark_group(format!("store_commit/{name}"));
    group.sample_size(10).sampling_mode(SamplingMode::Flat).measurement_time(Duration::from_secs(8));
    for n in BATCHES {
        group.throughput(Throughput::Elements(n as u64));
        let mut store = runtime.block_on(target.fresh(registry));
        let mut presses = Presses::new(registry);
        group.bench_function(BenchmarkId::new("presses_per_commit", n), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    let out = match presses.batch(n) {
                        Some(out) => out,
                        None => {
                            store = runtime.block_on(target.fresh(registry));
                            presses = Presses::new(registry);
                            presses.batch(n).expect("a fresh district has presses")
                        }
                    };
                    let batch = Batch::of(&out);
                    let started = Instant::now();
                    runtime.block_on(store.commit(batch)).expect("commit");
                    spent += started.elapsed();
                }
                spent
            })
        });
    }
    group.finish();
    runtime.block_on(target.cleanup());
}

fn store_commits(c: &mut Criterion) {
    let registry = anxin_benches::district(DEVICES, RESPONDERS, STATIONS, SEED);
    let dir = tempfile::tempdir().expect("a temporary directory");
    commit_batches(c, "sqlite", &registry, Sqlite { dir, n: 0 });
    match std::env::var("ANXIN_BENCH_POSTGRES_URL") {
        Ok(server) if !server.is_empty() => {
            commit_batches(c, "postgres", &registry, Postgres { server, databases: Vec::new() })
        }
        _ => eprintln!("ANXIN_BENCH_POSTGRES_URL is not set: PostgreSQL is not measured"),
    }
}

criterion_group!(benches, store_commits);
criterion_main!(benches);
