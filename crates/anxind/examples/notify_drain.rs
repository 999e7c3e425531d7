//! The outbox's drain rate: a surge's worth of notifications (10,000 by default) queued in
//! the store at once, drained by a running anxind's delivery worker into a local receiver
//! standing in for the SMS gateway (signature checked on every request), and the rate it
//! went at.
//!
//! ```text
//! cargo run --release -p anxind --example notify_drain -- [--count 10000] [--concurrency 16]
//!     [--store postgres://postgres@127.0.0.1:5432/test] [--gateway-delay-ms 0]
//! ```
//!
//! The notifications are stored before the engine starts, as one commit, like those of
//! 10,000 presses; the clock runs from the engine's start until the store counts every one
//! `sent`. Each send is a signed HTTP POST on a pooled connection, the store's record of the
//! try, and the engine told (`Caller::Notifier`; these notifications name no open incident,
//! so the engine only looks them up). `--gateway-delay-ms` makes the receiver take that long
//! per request, as a provider's API would. `--store` names a PostgreSQL server (a fresh
//! database is made); by default SQLite in a temp dir.

use anxin_core::{Channel, ElderId, IncidentId, IncidentKind, Notice, Notification, Timestamp};
use anxin_notify::testkit::TestGateway;
use anxind::config::Secret;
use anxind::{App, Config};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const SECRET: &str = "notify-drain-bench-secret";

fn arg<T: std::str::FromStr>(name: &str, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}: cannot read {v:?}")))
        .unwrap_or(default)
}

fn notifications(count: usize, at: Timestamp) -> Vec<Notification> {
    (0..count)
        .map(|i| {
            let notice = Notice::Emergency { kind: IncidentKind::Sos };
            let elder = format!("长者{i}");
            Notification {
                key: format!("n{}", 10_000_000 + i),
                incident_id: IncidentId(10_000_000 + i as u64),
                elder_id: ElderId::parse(format!("e-{i}")).unwrap(),
                contact_id: "c1".into(),
                contact_name: "女儿（女儿）".into(),
                to: format!("137{i:08}"),
                channel: Channel::Sms,
                priority: notice.priority(),
                language: "zh-CN".into(),
                text: notice.text(&elder, "zh-CN"),
                notice,
                created_at: at,
                not_before: at,
            }
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let count: usize = arg("--count", 10_000);
    let concurrency: usize = arg("--concurrency", 16);
    let delay_ms: u64 = arg("--gateway-delay-ms", 0);
    let server: String = arg("--store", String::new());
    let runtime = anxind::tokio_runtime(2)?;
    runtime.block_on(async move {
        let dir = tempfile::tempdir()?;
        let store_url = if server.is_empty() {
            format!("sqlite://{}", dir.path().join("anxin.db").display())
        } else {
            anxin_store::testkit::fresh_postgres_database(&server).await
        };
        let store = anxin_store::open(&store_url).await?;
        let rows = notifications(count, anxin_proto::wall_clock_now());
        let batch = anxin_store::Batch { notifications: &rows, ..Default::default() };
        store.commit(batch).await?;

        let gateway = TestGateway::start(SECRET, Duration::from_millis(delay_ms)).await;
        let mut config = Config::defaults();
        config.http.listen = "127.0.0.1:0".parse()?;
        config.mqtt.embedded_listen = "127.0.0.1:0".parse()?;
        config.store.url = Secret::new(&store_url);
        config.notify.gateway_url = Some(gateway.url.clone());
        config.notify.gateway_secret = Some(Secret::new(SECRET));
        config.notify.concurrency = concurrency;
        let app = App::build(config, None).await?;
        let shutdown = CancellationToken::new();
        let started = Instant::now();
        let task = tokio::spawn(app.run(shutdown.clone()));
        loop {
            let c = store.notification_counts().await?;
            if c.sent as usize >= count {
                break;
            }
            anyhow::ensure!(started.elapsed() < Duration::from_secs(600), "not drained in 10 min: {c:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = started.elapsed();
        shutdown.cancel();
        let _ = task.await;
        let log = gateway.log();
        anyhow::ensure!(
            log.taken.len() == count && log.bad == 0,
            "the receiver saw {} keys, {} bad",
            log.taken.len(),
            log.bad
        );
        let store_kind = if server.is_empty() { "SQLite" } else { "PostgreSQL" };
        println!(
            "drained {count} notifications in {:.2} s: {:.0} notifications/s ({store_kind}, concurrency {concurrency}, \
             gateway delay {delay_ms} ms, {} cores)",
            took.as_secs_f64(),
            count as f64 / took.as_secs_f64(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
        );
        if !server.is_empty() {
            anxin_store::testkit::drop_postgres_database(&server, &store_url).await;
        }
        Ok(())
    })
}
