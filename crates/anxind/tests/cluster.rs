//! Hot standby on real processes (issue 25, `[cluster]`): two anxind on one PostgreSQL and
//! one Mosquitto, one running the district under its lease and the other standing by, while
//! devices press and resend as real ones do (the same press again every 2 s until they hear
//! `help_coming`). The running engine is killed with SIGKILL, stopped with SIGSTOP for longer
//! than its lease and continued, and stopped with SIGTERM; each time the other takes over.
//! In the end every press is stored once, each device has one incident, the stopped engine
//! was fenced (it exits, having stored, acknowledged and shown nothing more), and the
//! takeovers and the presses' waits for `help_coming` are printed.
//!
//! Needs `ANXIN_TEST_MQTT_URL` and `ANXIN_TEST_POSTGRES_URL` (skips without them, fails under
//! `CI=true`). About a minute; bounded, and stops by itself.

#[macro_use]
#[allow(unused_macros)]
mod story;

use anxin_core::DeviceId;
use anxin_mqtt::rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use story::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

const DEVICES: usize = 20;
const LEASE_TTL_MS: u64 = 3_000;
/// A device sends its press again after this long without `help_coming`.
const RESEND: Duration = Duration::from_secs(2);

/// The stories' registry and 20 devices near the Qianwei station.
fn registry() -> anxin_core::Registry {
    story::registry_with("ha", DEVICES)
}

/// One anxind process, and the lines it prints on stdout.
struct Node {
    name: &'static str,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    stderr: std::path::PathBuf,
}

impl Node {
    async fn start(
        name: &'static str,
        registry: &std::path::Path,
        mqtt: &str,
        store: &str,
        root: &str,
        dir: &std::path::Path,
    ) -> Node {
        let stderr = dir.join(format!(
            "{name}-{}.log",
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
        let mut child = Command::new(env!("CARGO_BIN_EXE_anxind"))
            .arg("--registry")
            .arg(registry)
            .env("ANXIN_MQTT__BROKER", mqtt)
            .env("ANXIN_MQTT__TOPIC_ROOT", root)
            .env("ANXIN_MQTT__CLIENT_ID", root)
            .env("ANXIN_STORE__URL", store)
            .env("ANXIN_HTTP__LISTEN", "127.0.0.1:0")
            .env("ANXIN_CLUSTER__ENABLED", "true")
            .env("ANXIN_CLUSTER__NODE", name)
            .env("ANXIN_CLUSTER__LEASE_TTL_MS", LEASE_TTL_MS.to_string())
            .env("ANXIN_CLUSTER__RENEW_MS", "500")
            .env("ANXIN_CLUSTER__STANDBY_POLL_MS", "100")
            .env("ANXIN_LOG", "info,sqlx=warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("anxind starts");
        let (tx, lines) = mpsc::unbounded_channel();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = out.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Node { name, child, lines, stderr }
    }

    /// Waits for the line starting `anxind <what>`.
    async fn wait_for(&mut self, what: &str, within: Duration) -> String {
        let prefix = format!("anxind {what}");
        let deadline = Instant::now() + within;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!("{} did not print `{prefix}` within {within:?}; its log:\n{}", self.name, self.log())
                })
                .unwrap_or_else(|| panic!("{} exited before `{prefix}`; its log:\n{}", self.name, self.log()));
            if line.starts_with(&prefix) {
                return line;
            }
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("running").to_string();
        let ok = std::process::Command::new("kill").args([&format!("-{signal}"), &pid]).status().unwrap().success();
        assert!(ok, "kill -{signal} {pid}");
    }
}

/// The devices: each presses, sends the press again every [`RESEND`] until it hears
/// `help_coming`, waits 2.5 to 3.5 s and presses anew (a press sooner than
/// `dispatch.repeat_press_interval_ms` after the last would be throttled, and answered only
/// when sent again).
#[derive(Default)]
struct Presses {
    /// Each press: (device, msg id) → when first sent, when `help_coming` was heard.
    log: BTreeMap<(usize, u64), (Instant, Option<Instant>)>,
    /// Each device's press waiting for `help_coming`.
    waiting: BTreeMap<usize, u64>,
    resent: u64,
}

async fn devices(
    mqtt: &str,
    root: &str,
    stop: tokio_util::sync::CancellationToken,
) -> (Arc<Mutex<Presses>>, tokio::task::JoinHandle<()>) {
    let (host, port) = anxind::config::broker_address(mqtt).unwrap();
    let mut opts = MqttOptions::new(format!("{root}-devices"), host, port);
    opts.set_inflight(100);
    let (client, mut eventloop) = AsyncClient::new(opts, 1024);
    client.subscribe(format!("{root}/v1/devices/+/commands"), QoS::AtLeastOnce).await.unwrap();
    let presses = Arc::new(Mutex::new(Presses::default()));
    let heard = presses.clone();
    let pump = tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            let Event::Incoming(Packet::Publish(p)) = event else { continue };
            let Some(device) =
                p.topic.split('/').rev().nth(1).and_then(|d| d.strip_prefix("d-ha-")).and_then(|n| n.parse().ok())
            else {
                continue;
            };
            let command: serde_json::Value = serde_json::from_slice(&p.payload).unwrap_or_default();
            if command["type"] != "help_coming" {
                continue;
            }
            let mut w = heard.lock().unwrap();
            if let Some(msg) = w.waiting.remove(&device) {
                if let Some(entry) = w.log.get_mut(&(device, msg)) {
                    entry.1 = Some(Instant::now());
                }
            }
        }
    });
    let sending = presses.clone();
    let root = root.to_string();
    let task = tokio::spawn(async move {
        let mut next = [0u64; DEVICES];
        let mut last_sent = [Instant::now(); DEVICES];
        let mut idle_until = [Instant::now(); DEVICES];
        let mut k = 0usize;
        while !stop.is_cancelled() {
            tokio::time::sleep(Duration::from_millis(20)).await;
            k = (k + 7) % DEVICES;
            let now = Instant::now();
            let send = {
                let mut w = sending.lock().unwrap();
                match w.waiting.get(&k).copied() {
                    Some(msg) if now - last_sent[k] >= RESEND => {
                        w.resent += 1;
                        Some(msg)
                    }
                    Some(_) => None,
                    None if now >= idle_until[k] => {
                        next[k] += 1;
                        w.waiting.insert(k, next[k]);
                        w.log.insert((k, next[k]), (now, None));
                        idle_until[k] = now + Duration::from_millis(2_500 + (k as u64 * 37) % 1_000);
                        Some(next[k])
                    }
                    None => None,
                }
            };
            if let Some(msg) = send {
                last_sent[k] = now;
                let payload = serde_json::json!({"msg_id": format!("ha-{k}-{msg}"), "type": "sos"}).to_string();
                let topic = format!("{root}/v1/devices/d-ha-{k}/events");
                client.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
            }
        }
        // The last presses still waiting go on being sent until heard, as a device does.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let waiting: Vec<(usize, u64)> = sending.lock().unwrap().waiting.iter().map(|(d, m)| (*d, *m)).collect();
            if waiting.is_empty() {
                break;
            }
            for (k, msg) in waiting {
                let payload = serde_json::json!({"msg_id": format!("ha-{k}-{msg}"), "type": "sos"}).to_string();
                client
                    .publish(format!("{root}/v1/devices/d-ha-{k}/events"), QoS::AtLeastOnce, false, payload)
                    .await
                    .unwrap();
            }
            tokio::time::sleep(RESEND).await;
        }
        pump.abort();
    });
    (presses, task)
}

/// Waits until the engine on `node` is ready (its `/readyz` answers 200) after its ready line.
async fn ready(node: &mut Node, within: Duration) -> std::net::SocketAddr {
    ready_at(&node.wait_for("ready", within).await).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_from_a_killed_a_paused_and_a_terminated_engine_and_nothing_is_lost_or_doubled() {
    let Some(backend) = external_backend().await else { return };
    let (mqtt, store_url) = (backend.broker.clone(), backend.store_url.clone());
    let root = unique("anxind-ha", "standby");
    let dir = tempfile::tempdir().unwrap();
    let registry_file = dir.path().join("registry.json");
    std::fs::write(&registry_file, serde_json::to_string(&registry()).unwrap()).unwrap();
    let start = |name| Node::start(name, &registry_file, &mqtt, &store_url, &root, dir.path());

    // a runs the district; b stands by.
    let mut a = start("a").await;
    ready(&mut a, WAIT).await;
    let mut b = start("b").await;
    let standby = b.wait_for("standby", WAIT).await;
    assert!(standby.contains("holder=a (epoch 1"), "{standby}");
    // Standing by, b is alive and not ready: a proxy sends nobody to it.
    let b_http: std::net::SocketAddr =
        standby.split_whitespace().find_map(|w| w.strip_prefix("http=")).expect("its address").parse().unwrap();
    assert_eq!(http_get(b_http, "/healthz").await.0, 200);
    let (status, body) = http_get(b_http, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body, serde_json::json!({"ready": false, "checks": {"lease": false}}));
    // And a Prometheus scraping every node sees it up, standing by.
    let (status, metrics) = http_get(b_http, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(metric_sample(&metrics, "anxin_ready{check=\"lease\"}"), 0.0, "{metrics}");

    let stop = tokio_util::sync::CancellationToken::new();
    let (presses, pressing) = devices(&mqtt, &root, stop.clone()).await;
    let mut takeovers = Vec::new();
    tokio::time::sleep(Duration::from_secs(4)).await;

    // kill -9 a: b takes over once a's lease lapses.
    let killed = Instant::now();
    a.signal("KILL");
    a.child.wait().await.unwrap();
    ready(&mut b, Duration::from_secs(20)).await;
    takeovers.push(("kill -9", killed.elapsed()));
    let mut a = start("a").await;
    a.wait_for("standby", WAIT).await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    // SIGSTOP b past its lease: a takes over; b, continued, is fenced and stops.
    let stopped = Instant::now();
    b.signal("STOP");
    let a_http = ready(&mut a, Duration::from_secs(20)).await;
    takeovers.push(("SIGSTOP", stopped.elapsed()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    b.signal("CONT");
    let status = tokio::time::timeout(Duration::from_secs(20), b.child.wait())
        .await
        .unwrap_or_else(|_| panic!("b still runs after losing its lease; its log:\n{}", b.log()))
        .unwrap();
    assert!(!status.success(), "b, having lost the lease, exits with an error");
    let log = b.log();
    // Continued, b finds out by whichever comes first: its next commit refused, or its next
    // renewal finding the lease gone.
    let found_out = if log.contains("commit fenced") {
        "its commit was fenced"
    } else if log.contains("lease has gone to another engine") {
        "its renewal found the lease gone"
    } else {
        panic!("b stopped for another reason:\n{log}")
    };
    let mut b = start("b").await;
    b.wait_for("standby", WAIT).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // SIGTERM a: it finishes what it has in hand and hands the lease over at once.
    let termed = Instant::now();
    a.signal("TERM");
    let b_http = ready(&mut b, Duration::from_secs(20)).await;
    takeovers.push(("SIGTERM", termed.elapsed()));
    assert!(a.child.wait().await.unwrap().success(), "a stops cleanly on SIGTERM");
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.cancel();
    pressing.await.unwrap();

    // Every press was heard, is stored once, and each device has one incident.
    let p = std::mem::take(&mut *presses.lock().unwrap());
    assert!(p.waiting.is_empty(), "presses never answered: {:?}", p.waiting);
    let sent = p.log.len();
    let mut db = {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&store_url).await.unwrap()
    };
    let stored: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT msg_id, incident_id FROM device_messages WHERE msg_id LIKE 'ha-%'")
            .fetch_all(&mut db)
            .await
            .unwrap();
    let mut ids: Vec<&str> = stored.iter().map(|(m, _)| m.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((stored.len(), ids.len()), (sent, sent), "each of {sent} presses stored once");
    assert!(stored.iter().all(|(_, i)| i.is_some()), "every press belongs to an incident");
    let incidents: i64 = sqlx::query_scalar("SELECT count(*) FROM incidents").fetch_one(&mut db).await.unwrap();
    assert_eq!(incidents, DEVICES as i64, "one incident per device, none doubled");
    // What the engine now running shows: every device's incident, once.
    let mut console = TestConsole::connect(b_http, None).await;
    let snapshot = console.next().await;
    let shown = snapshot["incidents"].as_array().unwrap();
    assert_eq!(shown.len(), DEVICES, "{snapshot}");
    let _ = a_http;

    let waits: Vec<Duration> =
        p.log.values().filter_map(|(sent, heard)| Some(heard.as_ref()?.duration_since(*sent))).collect();
    let worst = waits.iter().max().copied().unwrap_or_default();
    let mut sorted = waits.clone();
    sorted.sort();
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
    eprintln!(
        "presses {sent}, sent again {}; press -> help_coming median {median:?}, worst {worst:?}; takeovers (lease {LEASE_TTL_MS} ms): {takeovers:?}; the paused engine, continued: {found_out}",
        p.resent
    );
    // A lease of 3 s: a dead or stopped engine is replaced after it lapses and the standby
    // resumes; a SIGTERM hands over at once.
    for (how, took) in &takeovers {
        let bound = if *how == "SIGTERM" { Duration::from_secs(3) } else { Duration::from_secs(10) };
        assert!(*took <= bound, "takeover after {how} took {took:?}");
    }
    assert!(worst <= Duration::from_secs(12), "a press waited {worst:?} for help_coming");
}

/// Node `a`'s `[cluster]` with this lease and renewal, and the district's lease, granted to it
/// on a fresh store (epoch 1).
async fn granted(
    backend: &Backend,
    ttl_ms: u64,
    renew_ms: u64,
) -> (anxind::config::ClusterConfig, anxind::cluster::Held) {
    let mut cluster = anxind::Config::defaults().cluster;
    cluster.enabled = true;
    cluster.node = Some("a".into());
    cluster.lease_ttl_ms = ttl_ms;
    cluster.renew_ms = renew_ms;
    let never = tokio_util::sync::CancellationToken::new();
    let held = anxind::cluster::wait_for_lease(&cluster, &backend.store_url, "a:8080", &never, |_| {})
        .await
        .unwrap()
        .expect("the lease is free");
    assert_eq!(held.lease.epoch, 1);
    (cluster, held)
}

/// Another engine takes the lease while this one has not yet noticed (its next renewal is
/// far off): the next commit is fenced, and the engine stops, having stored, acknowledged,
/// sent and shown nothing of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_under_a_lease_gone_elsewhere_is_fenced_and_nothing_of_it_is_stored_sent_or_shown() {
    let Some(backend) = external_backend().await else { return };
    let client_id = unique("anxind-ha", "fenced");
    let (cluster, held) = granted(&backend, 60_000, 30_000).await;
    let app = spawn_app_leased(
        &backend,
        &client_id,
        story::registry(),
        |c| c.cluster = cluster.clone(),
        anxind::clock::Clock::System,
        Some(held.clone()),
    )
    .await;
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await; // the snapshot
    let mut d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("m-1", None).await;
    assert_eq!(d1.next_command().await["type"], "help_coming");
    console.incident_for("d-1").await;

    // Another engine takes the district's lease.
    let taken: i64 = sqlx::query_scalar(
        "UPDATE leases SET holder = 'b', epoch = epoch + 1, expires_at = clock_timestamp() + interval '1 minute' \
         WHERE key = 'zone:0' RETURNING epoch",
    )
    .fetch_one(held.store.pool())
    .await
    .unwrap();
    assert_eq!(taken, 2);
    let mut d2 = TestDevice::connect(&app, "d-2").await;
    d2.press("m-2", None).await;
    let ended = tokio::time::timeout(WAIT, app.task).await.expect("the engine stops").unwrap();
    let why = format!("{:#}", ended.expect_err("stopping on a fence is an error"));
    assert!(why.contains("fenced"), "{why}");
    // Nothing of the press under the lost lease: not stored, the device not told, no console shown.
    let stored =
        app.store.message(&DeviceId::parse("d-2").unwrap(), &anxin_core::MessageId::parse("m-2").unwrap()).await;
    assert_eq!(stored.unwrap(), None, "stored under a lease gone elsewhere");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(d2.heard(), None, "the device was told");
    for frame in console.rest(Duration::from_millis(500)).await {
        assert!(!frame.to_string().contains("d-2"), "a console was shown {frame}");
    }
    let incidents = app.store.incident_count().await.unwrap();
    assert_eq!(incidents, 1, "only d-1's");
}

/// The lease is renewed from the moment it is granted: building the engine from a large
/// ledger may take longer than the lease, and a standby must not take it meanwhile. Handed
/// over, it is free at once, and no renewal pushes it on again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_is_renewed_while_the_engine_is_built_and_free_once_handed_over() {
    let Some(backend) = external_backend().await else { return };
    let (_, held) = granted(&backend, 1_000, 200).await;
    // Three leases' time, as a slow start might take.
    tokio::time::sleep(Duration::from_millis(3_000)).await;
    let other = anxin_store::PostgresStore::open(&backend.store_url).await.unwrap();
    let ttl = Duration::from_millis(1_000);
    assert_eq!(other.lease_acquire("zone:0", "b", ttl, "b:8080").await.unwrap(), None, "taken while a was starting");
    assert!(!held.lost().is_cancelled());
    held.hand_over().await;
    let b = other.lease_acquire("zone:0", "b", ttl, "b:8080").await.unwrap().expect("free once handed over");
    assert_eq!(b.epoch, 2);
}
