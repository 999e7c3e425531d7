//! Faults on real processes: anxind as a child process killed with SIGKILL in the middle of a
//! burst of presses, Mosquitto holding its session, PostgreSQL keeping what was committed.
//! After the restart every press is stored exactly once and each device has exactly one
//! incident. Also who may use the broker: the accounts `anxind broker-files` writes, on
//! Mosquitto and on the embedded broker. Needs `ANXIN_TEST_MQTT_URL` and
//! `ANXIN_TEST_POSTGRES_URL` (skips without them, fails under `CI=true`), except the embedded
//! broker's test, which needs nothing. Each trial is bounded in time and stops by itself.

#[macro_use]
#[allow(unused_macros)]
mod story;

use anxin_core::{DeviceId, MessageId};
use anxin_mqtt::rumqttc::{AsyncClient, MqttOptions, QoS};
use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;
use story::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const DEVICES: usize = 20;
const PRESSES_PER_DEVICE: usize = 10;

/// The stories' registry and 20 more devices near the Qianwei station.
fn registry() -> anxin_core::Registry {
    story::registry_with("burst", DEVICES)
}

struct Engine {
    child: Child,
    http: std::net::SocketAddr,
}

/// Starts anxind with the registry file, on the given broker, store, topic root and client id;
/// returns once it is ready (subscribed, store reachable).
async fn start(registry: &std::path::Path, broker: &str, store: &str, root: &str) -> Engine {
    start_with(registry, broker, store, root, &[]).await
}

/// `start`, with more settings in the environment (`ANXIN_INGEST__QUEUE`, say).
async fn start_with(registry: &std::path::Path, broker: &str, store: &str, root: &str, env: &[(&str, &str)]) -> Engine {
    let mut child = Command::new(env!("CARGO_BIN_EXE_anxind"))
        .envs(env.iter().copied())
        .arg("--registry")
        .arg(registry)
        .env("ANXIN_MQTT__BROKER", broker)
        .env("ANXIN_MQTT__TOPIC_ROOT", root)
        .env("ANXIN_MQTT__CLIENT_ID", root)
        .env("ANXIN_STORE__URL", store)
        .env("ANXIN_HTTP__LISTEN", "127.0.0.1:0")
        .env("ANXIN_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("anxind starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(WAIT, lines.next_line()).await.expect("anxind prints its ready line").unwrap();
    let http = ready_at(&ready.expect("a ready line")).await;
    Engine { child, http }
}

async fn external() -> Option<(String, String)> {
    let mqtt = match std::env::var("ANXIN_TEST_MQTT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!("ANXIN_TEST_MQTT_URL must be set when CI=true"),
        _ => {
            eprintln!("skipped: ANXIN_TEST_MQTT_URL is not set");
            return None;
        }
    };
    let Some(server) = anxin_store::testkit::postgres_server() else {
        eprintln!("skipped: {} is not set", anxin_store::testkit::POSTGRES_URL_VAR);
        return None;
    };
    Some((mqtt, server))
}

/// One trial: `kill_after` presses go out, anxind is killed with SIGKILL, the rest go out
/// while it is down, and it is started again.
async fn kill_9_trial(mqtt: &str, server: &str, kill_after: usize) {
    let root = unique("anxind-kill9", &kill_after.to_string());
    let store_url = anxin_store::testkit::fresh_postgres_database(server).await;
    let dir = tempfile::tempdir().unwrap();
    let registry_file = dir.path().join("registry.json");
    std::fs::write(&registry_file, serde_json::to_string(&registry()).unwrap()).unwrap();

    let mut engine = start(&registry_file, mqtt, &store_url, &root).await;
    let (host, port) = anxind::config::broker_address(mqtt).unwrap();
    let mut opts = MqttOptions::new(format!("{root}-devices"), host, port);
    opts.set_inflight(50);
    let (devices, mut eventloop) = AsyncClient::new(opts, 512);
    let pump = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });

    let total = DEVICES * PRESSES_PER_DEVICE;
    let mut sent = Vec::with_capacity(total);
    for k in 0..total {
        let (device, msg) = (format!("d-burst-{}", k % DEVICES), format!("burst-{k}"));
        let payload = serde_json::json!({"msg_id": msg, "type": "sos"}).to_string();
        devices.publish(format!("{root}/v1/devices/{device}/events"), QoS::AtLeastOnce, false, payload).await.unwrap();
        sent.push((device, msg));
        if k + 1 == kill_after {
            engine.child.start_kill().unwrap(); // SIGKILL: no shutdown, no last commit
            engine.child.wait().await.unwrap();
        }
        if k % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let again = start(&registry_file, mqtt, &store_url, &root).await;

    // Everything the devices sent reaches the store, once.
    let store = anxin_store::open(&store_url).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut missing = sent.clone();
    while !missing.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "{} presses lost, e.g. {:?}", missing.len(), missing.first());
        let mut still = Vec::new();
        for (device, msg) in missing {
            let stored = store
                .message(&DeviceId::parse(device.as_str()).unwrap(), &MessageId::parse(msg.as_str()).unwrap())
                .await
                .unwrap();
            match stored {
                Some(record) => assert!(record.incident_id.is_some(), "{device}/{msg} belongs to an incident"),
                None => still.push((device, msg)),
            }
        }
        missing = still;
        if !missing.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(store.incident_count().await.unwrap(), DEVICES as u64, "one incident per device, none doubled");
    // The restarted engine shows them all open, once each.
    let mut console = TestConsole::connect(again.http, None).await;
    let snapshot = console.next().await;
    let incidents = snapshot["incidents"].as_array().unwrap();
    let mut devices_seen: Vec<_> = incidents.iter().map(|i| i["device_id"].as_str().unwrap().to_string()).collect();
    devices_seen.sort();
    devices_seen.dedup();
    assert_eq!((incidents.len(), devices_seen.len()), (DEVICES, DEVICES));
    pump.abort();
    drop(again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_in_a_burst_loses_nothing_and_doubles_nothing() {
    let Some((mqtt, server)) = external().await else { return };
    // Early, midway and late in the burst: different presses are in flight each time.
    let mut timings = vec![7, 93, 181];
    // The long soak: ANXIN_FAULT_SOAK=N adds N more trials at kill points drawn from a seed
    // (ANXIN_FAULT_SEED, printed, so a failing run can be replayed).
    let soak: usize = std::env::var("ANXIN_FAULT_SOAK").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    if soak > 0 {
        let seed = std::env::var("ANXIN_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs());
        eprintln!("kill -9 soak: {soak} more trials, ANXIN_FAULT_SEED={seed}");
        let mut x = seed | 1;
        for _ in 0..soak {
            // xorshift: enough to spread the kill points over the burst.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            timings.push(1 + (x % (DEVICES * PRESSES_PER_DEVICE - 1) as u64) as usize);
        }
    }
    for kill_after in timings {
        kill_9_trial(&mqtt, &server, kill_after).await;
    }
}

/// A TCP relay to PostgreSQL that a test can cut: while down it drops every connection it
/// holds and refuses new ones, as a database host that went away does.
struct Relay {
    addr: std::net::SocketAddr,
    up: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

impl Relay {
    async fn to(target: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = std::sync::Arc::new(tokio::sync::watch::channel(true).0);
        let state = up.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else { return };
                if !*state.borrow() {
                    continue; // dropped at once: connection refused, in effect
                }
                let mut down = state.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = down.wait_for(|up| !*up) => {} // cut: both sockets close
                    }
                });
            }
        });
        Self { addr, up }
    }

    fn set(&self, up: bool) {
        self.up.send_replace(up);
    }
}

/// PostgreSQL goes away for `ANXIN_FAULT_OUTAGE_S` seconds (30 by default) while presses
/// arrive. anxind stops acknowledging (the broker holds them), says it is not ready, counts
/// the failed commits, shows nothing it has not stored; when the database is back it stores
/// and shows every press, in order, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_away_for_a_while_loses_nothing() {
    let Some((mqtt, server)) = external().await else { return };
    let outage =
        Duration::from_secs(std::env::var("ANXIN_FAULT_OUTAGE_S").ok().and_then(|s| s.parse().ok()).unwrap_or(30));
    let direct = anxin_store::testkit::fresh_postgres_database(&server).await;
    let (rest, database) = direct.rsplit_once('/').unwrap();
    let (credentials, host_port) = rest.rsplit_once('@').unwrap();
    let target = tokio::net::lookup_host(host_port).await.unwrap().next().unwrap();
    let relay = Relay::to(target).await;
    let store_url = format!("{credentials}@{}/{database}", relay.addr);
    let backend = Backend { broker: mqtt, store_url };
    let app = spawn_app(&backend, &unique("anxind-pg-away", "outage")).await;
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("before", None).await;
    console.incident_for("d-1").await;

    relay.set(false);
    let mut d2 = TestDevice::connect(&app, "d-2").await;
    let d3 = TestDevice::connect(&app, "d-3").await;
    for n in 0..5 {
        d2.press(&format!("during-{n}"), None).await;
        d3.press(&format!("during-{n}"), None).await;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (status, body) = app.get("/readyz").await;
        if status == 503 && body.contains("store") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "/readyz says the store is down: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(app.metric("anxin_store_commit_failures_total").await >= 1.0);
    // Nothing is shown, nor told to the device, before it is stored.
    let until = tokio::time::Instant::now() + outage;
    while tokio::time::Instant::now() < until {
        if let Some(shown) = console.next_within(Duration::from_secs(1)).await {
            panic!("shown while the store was down: {shown}");
        }
    }
    assert_eq!(app.get("/readyz").await.0, 503, "still not ready after {outage:?}");

    relay.set(true);
    let first = console.incident_for("d-2").await;
    assert_eq!(first["incident"]["press_count"], 1);
    assert_eq!(d2.next_command().await["type"], "help_coming", "told only now that it is stored");
    let opened_d3 = console.incident_for("d-3").await;
    assert!(opened_d3["seq"].as_u64() > Some(0));
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.get("/readyz").await.0 != 200 {
        assert!(tokio::time::Instant::now() < deadline, "ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for device in ["d-2", "d-3"] {
        for n in 0..5 {
            let id = DeviceId::parse(device).unwrap();
            let msg = app.store.message(&id, &MessageId::parse(format!("during-{n}")).unwrap()).await.unwrap();
            assert!(msg.is_some_and(|m| m.incident_id.is_some()), "{device} during-{n} stored");
        }
    }
    assert_eq!(app.store.incident_count().await.unwrap(), 3, "one incident per device");
    app.stop().await;
}

/// A Mosquitto of the test's own, with `deploy/mosquitto/anxin.conf` on a free port and its
/// persistence in `dir`. `accounts` is the folder `anxind broker-files` wrote; without it
/// the broker lets anyone in (for the tests whose subject is not who may connect).
async fn own_mosquitto(dir: &std::path::Path, port: u16, accounts: Option<&std::path::Path>) -> Child {
    let deploy = include_str!("../../../deploy/mosquitto/anxin.conf");
    let mut conf = deploy
        .replace("listener 18830 127.0.0.1", &format!("listener {port} 127.0.0.1"))
        .replace("persistence_location /var/lib/mosquitto/", &format!("persistence_location {}/", dir.display()));
    assert!(conf.contains(&format!("listener {port}")), "the deploy file's listener line moved");
    assert!(conf.contains("\nallow_anonymous false\n"), "the deploy file lets anyone in");
    match accounts {
        Some(folder) => {
            conf = conf.replace("/etc/mosquitto/anxin/", &format!("{}/", folder.display()));
            // The broker drops to its own user before it reads them.
            Command::new("chown").arg("-R").arg("mosquitto").arg(folder).status().await.unwrap();
        }
        None => {
            let open = ["password_file ", "acl_file ", "use_username_as_clientid "];
            conf = conf
                .lines()
                .filter(|l| !open.iter().any(|o| l.starts_with(o)))
                .map(|l| if l == "allow_anonymous false" { "allow_anonymous true" } else { l })
                .collect::<Vec<_>>()
                .join("\n");
        }
    }
    let path = dir.join("mosquitto.conf");
    std::fs::write(&path, conf).unwrap();
    // Started as root, Mosquitto drops to its own user, which must be able to save its state.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("mosquitto runs (Debian's package)");
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "mosquitto listens on {port}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

/// Stops the broker cleanly (it saves its state) and starts it again on that state.
async fn restart(broker: &mut Child, dir: &std::path::Path, port: u16) {
    Command::new("kill").args(["-TERM", &broker.id().unwrap().to_string()]).status().await.unwrap();
    broker.wait().await.unwrap();
    *broker = own_mosquitto(dir, port, None).await;
}

/// The broker is restarted (SIGTERM, then started again on its saved state) twice: in the
/// middle of a burst, where devices with a persistent session resend what the broker had
/// not taken; and while anxind is down with presses queued for it, which must survive in the
/// broker's persistence. Every press is stored once; one incident per device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_restarted_loses_nothing() {
    let Some((_, server)) = external().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut broker = own_mosquitto(dir.path(), port, None).await;
    let store_url = anxin_store::testkit::fresh_postgres_database(&server).await;
    let backend = Backend { broker: format!("mqtt://127.0.0.1:{port}"), store_url };
    let client_id = unique("anxind-broker-restart", "burst");
    let app = spawn_app(&backend, &client_id).await;
    let root = app.topic_root.clone();

    let mut opts = MqttOptions::new(format!("{root}-devices"), "127.0.0.1", port);
    opts.set_clean_session(false).set_inflight(20);
    let (devices, mut eventloop) = AsyncClient::new(opts, 512);
    let pump = tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await; // then reconnect and resend
            }
        }
    });
    let devices_n = 4; // the stories' registry: d-1 to d-4
    let press = |k: usize| {
        let topic = format!("{root}/v1/devices/d-{}/events", k % devices_n + 1);
        let payload = serde_json::json!({"msg_id": format!("b-{k}"), "type": "sos"}).to_string();
        (topic, payload)
    };
    // A restart in the middle of a burst.
    for k in 0..40 {
        let (topic, payload) = press(k);
        devices.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
        if k == 20 {
            restart(&mut broker, dir.path(), port).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let stored = |app_store: std::sync::Arc<dyn anxin_store::Store>, upto: usize| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let mut missing = vec![];
            for k in 0..upto {
                let device = DeviceId::parse(format!("d-{}", k % devices_n + 1)).unwrap();
                let msg = MessageId::parse(format!("b-{k}")).unwrap();
                if app_store.message(&device, &msg).await.unwrap().is_none() {
                    missing.push(k);
                }
            }
            if missing.is_empty() {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "lost across a broker restart: {missing:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    stored(app.store.clone(), 40).await;
    // The engine's connection dropped with the broker, and says so.
    let lost = app.metric("anxin_mqtt_connections_lost_total").await;
    assert!(lost >= 1.0, "the restart is counted as a lost connection: {lost}");

    // anxind down, presses queued for it in the broker, and the broker restarted meanwhile.
    app.stop().await;
    for k in 40..70 {
        let (topic, payload) = press(k);
        devices.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // taken by the broker
    restart(&mut broker, dir.path(), port).await;
    let again = spawn_app(&backend, &client_id).await;
    stored(again.store.clone(), 70).await;
    assert_eq!(again.store.incident_count().await.unwrap(), devices_n as u64, "one incident per device");
    pump.abort();
    again.stop().await;
    drop(broker);
}

impl Engine {
    /// One sample from `/metrics`, e.g. `anxin_ingest_backlog_messages`.
    async fn metric(&self, name: &str) -> f64 {
        metric_sample(&http_get(self.http, "/metrics").await.1, name)
    }

    /// A line of `/proc/<pid>/status` in KiB: `VmRSS` now, `VmHWM` the peak.
    fn memory_kib(&self, field: &str) -> u64 {
        let pid = self.child.id().expect("anxind is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix(" kB")?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} for pid {pid}"))
    }

    /// SIGTERM, then the exit status and how long it took to come.
    async fn terminate(&mut self, within: Duration) -> (std::process::ExitStatus, Duration) {
        let asked = tokio::time::Instant::now();
        let pid = self.child.id().expect("anxind is running").to_string();
        Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("anxind still running {within:?} after SIGTERM"))
            .unwrap();
        (status, asked.elapsed())
    }
}

/// Makes every stored device message cost `seconds` inside PostgreSQL (a row trigger that
/// sleeps): a store that keeps up with nothing, as a database on a saturated disk does.
async fn slow_store(store_url: &str, seconds: f64) -> sqlx::PgConnection {
    use sqlx::Connection;
    let mut db = sqlx::PgConnection::connect(store_url).await.unwrap();
    sqlx::query(&format!(
        "CREATE OR REPLACE FUNCTION anxin_test_slow() RETURNS trigger AS $$ \
         BEGIN PERFORM pg_sleep({seconds}); RETURN NEW; END $$ LANGUAGE plpgsql"
    ))
    .execute(&mut db)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER anxin_test_slow BEFORE INSERT ON device_messages \
         FOR EACH ROW EXECUTE FUNCTION anxin_test_slow()",
    )
    .execute(&mut db)
    .await
    .unwrap();
    db
}

/// Waits until PostgreSQL shows anxind's `INSERT INTO device_messages` in the state `condition`
/// (a `pg_stat_activity` condition).
async fn wait_for_insert(probe: &mut sqlx::PgConnection, condition: &str, what: &str) {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND query LIKE '%INSERT INTO device_messages%' AND query NOT LIKE '%pg_stat_activity%' AND {condition}"
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    while sqlx::query_scalar::<_, i64>(&sql).fetch_one(&mut *probe).await.unwrap() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "never saw {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn stored_count(db: &mut sqlx::PgConnection) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM device_messages").fetch_one(db).await.unwrap()
}

/// Devices on one MQTT client that counts the broker's PUBACKs: a press counts as taken by
/// the broker only once acknowledged.
async fn burst_devices(
    host: &str,
    port: u16,
    id: &str,
) -> (AsyncClient, std::sync::Arc<std::sync::atomic::AtomicUsize>, tokio::task::JoinHandle<()>) {
    use anxin_mqtt::rumqttc::{Event, Packet};
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_inflight(100);
    let (devices, mut eventloop) = AsyncClient::new(opts, 1024);
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = acked.clone();
    let pump = tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(Packet::PubAck(_)) = event {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    });
    (devices, acked, pump)
}

async fn press_burst(devices: &AsyncClient, root: &str, from: usize, to: usize) {
    for k in from..to {
        let (device, msg) = (format!("d-burst-{}", k % DEVICES), format!("slow-{k}"));
        let payload = serde_json::json!({"msg_id": msg, "type": "sos"}).to_string();
        devices.publish(format!("{root}/v1/devices/{device}/events"), QoS::AtLeastOnce, false, payload).await.unwrap();
    }
}

/// Waits until every press `slow-0` … `slow-{n-1}` is stored, then checks each is stored once
/// and each device has one incident.
async fn all_stored_once(db: &mut sqlx::PgConnection, n: usize, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let stored = stored_count(db).await;
        if stored as usize >= n {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{stored} of {n} presses stored after {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let distinct: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT msg_id) FROM device_messages WHERE msg_id LIKE 'slow-%' AND incident_id IS NOT NULL",
    )
    .fetch_one(&mut *db)
    .await
    .unwrap();
    assert_eq!((stored_count(db).await, distinct), (n as i64, n as i64), "each press stored once, in an incident");
    let incidents: i64 = sqlx::query_scalar("SELECT count(*) FROM incidents").fetch_one(db).await.unwrap();
    assert_eq!(incidents, DEVICES as i64, "one incident per device");
}

/// A store that falls behind: every press costs 10 ms inside PostgreSQL while 600 arrive at
/// once through the deploy Mosquitto (which lets 1,000 messages be in flight to anxind).
/// anxind holds at most `ingest.queue + 3 × ingest.batch_max` unacknowledged and stops reading;
/// the rest wait unread (at the broker, or in the kernel's socket buffers between the two),
/// and everything is stored once in the end. Memory is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_store_pushes_back_to_the_broker() {
    let Some((_, server)) = external().await else { return };
    const PRESSES: usize = 600;
    const QUEUE: usize = 64;
    const BATCH: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _broker = own_mosquitto(dir.path(), port, None).await;
    let broker = format!("mqtt://127.0.0.1:{port}");
    let store_url = anxin_store::testkit::fresh_postgres_database(&server).await;
    let registry_file = dir.path().join("registry.json");
    std::fs::write(&registry_file, serde_json::to_string(&registry()).unwrap()).unwrap();
    let root = unique("anxind-slow", "store");
    let (queue, batch) = (QUEUE.to_string(), BATCH.to_string());
    let engine = start_with(
        &registry_file,
        &broker,
        &store_url,
        &root,
        &[("ANXIN_INGEST__QUEUE", &queue), ("ANXIN_INGEST__BATCH_MAX", &batch)],
    )
    .await;
    let limit = engine.metric("anxin_ingest_backlog_limit_messages").await;
    // The queue, a batch being worked out, two being stored (PostgreSQL's default
    // store.commits_in_flight) and one being acknowledged and shown.
    assert_eq!(limit, (QUEUE + (2 + 2) * BATCH) as f64);
    let rss_before = engine.memory_kib("VmRSS");
    let mut db = slow_store(&store_url, 0.010).await;

    let (devices, acked, pump) = burst_devices("127.0.0.1", port, &format!("{root}-devices")).await;
    press_burst(&devices, &root, 0, PRESSES).await;
    // While the store crawls: how much anxind holds, and how much it leaves unread.
    let (mut most_in_hand, mut most_unread) = (0.0f64, 0i64);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let in_hand = engine.metric("anxin_ingest_backlog_messages").await;
        let stored = stored_count(&mut db).await;
        let taken = acked.load(std::sync::atomic::Ordering::Relaxed) as i64;
        most_in_hand = most_in_hand.max(in_hand);
        // Taken by the broker, neither stored nor in anxind's hands: not read by anxind.
        most_unread = most_unread.max(taken - stored - in_hand as i64);
        if stored as usize >= PRESSES {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{stored} of {PRESSES} stored in 120 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_peak = engine.memory_kib("VmHWM");
    eprintln!(
        "slow store: {PRESSES} presses, at most {most_in_hand} held by anxind (limit {limit}), \
         at most {most_unread} left unread; RSS {rss_before} KiB before, peak {rss_peak} KiB"
    );
    assert!(most_in_hand <= limit, "anxind held {most_in_hand} messages, more than its limit {limit}");
    assert!(most_in_hand >= QUEUE as f64, "the queue never filled ({most_in_hand}): the store was not slow enough");
    assert!(
        most_unread > (PRESSES / 2) as i64,
        "anxind left at most {most_unread} presses unread: it kept reading instead of pushing back"
    );
    all_stored_once(&mut db, PRESSES, Duration::from_secs(30)).await;
    pump.abort();
    drop(engine);
}

/// SIGTERM while a commit is in flight (every press costs 50 ms inside PostgreSQL): the
/// commit finishes, anxind exits cleanly within `shutdown.deadline_s`, and what it had not
/// taken stays at the broker for the next start. Then the same with a store that does not
/// answer at all (a table lock): anxind gives up at the deadline, still exits 0, and the
/// press it could not store is stored once after the restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_commit_in_flight() {
    use sqlx::Connection;
    let Some((mqtt, server)) = external().await else { return };
    const PRESSES: usize = 100;
    let store_url = anxin_store::testkit::fresh_postgres_database(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let registry_file = dir.path().join("registry.json");
    std::fs::write(&registry_file, serde_json::to_string(&registry()).unwrap()).unwrap();
    let root = unique("anxind-sigterm", "in-flight");
    let settings = [("ANXIN_INGEST__BATCH_MAX", "8"), ("ANXIN_SHUTDOWN__DEADLINE_S", "10")];
    let mut engine = start_with(&registry_file, &mqtt, &store_url, &root, &settings).await;
    let mut db = slow_store(&store_url, 0.050).await;
    let (host, port) = anxind::config::broker_address(&mqtt).unwrap();
    let (devices, _, pump) = burst_devices(&host, port, &format!("{root}-devices")).await;
    press_burst(&devices, &root, 0, PRESSES).await;

    // Wait for a commit to be inside PostgreSQL, then note what is stored and stop anxind.
    let mut probe = sqlx::PgConnection::connect(&store_url).await.unwrap();
    wait_for_insert(&mut probe, "state = 'active'", "a commit in flight").await;
    let before = stored_count(&mut db).await;
    let (status, took) = engine.terminate(Duration::from_secs(15)).await;
    let after = stored_count(&mut db).await;
    eprintln!("SIGTERM mid-commit: {before} stored before, {after} after; exit {status} in {took:?}");
    assert!(status.success(), "a clean exit: {status}");
    assert!(after > before, "the commit in flight was finished ({before} stored before SIGTERM, {after} after)");
    assert!((after as usize) < PRESSES, "the burst was still arriving; the test proves nothing");

    // The rest arrive at the next start, once each.
    sqlx::query("DROP TRIGGER anxin_test_slow ON device_messages").execute(&mut db).await.unwrap();
    let mut engine = start_with(&registry_file, &mqtt, &store_url, &root, &settings[..1]).await;
    all_stored_once(&mut db, PRESSES, Duration::from_secs(30)).await;

    // A store that does not answer: the deadline, not the store, decides when anxind exits.
    engine.terminate(Duration::from_secs(15)).await;
    let deadline_s = [("ANXIN_SHUTDOWN__DEADLINE_S", "2")];
    let mut engine = start_with(&registry_file, &mqtt, &store_url, &root, &deadline_s).await;
    let mut lock = db.begin().await.unwrap();
    sqlx::query("LOCK TABLE device_messages IN ACCESS EXCLUSIVE MODE").execute(&mut *lock).await.unwrap();
    press_burst(&devices, &root, PRESSES, PRESSES + 1).await;
    wait_for_insert(&mut probe, "wait_event_type = 'Lock'", "a commit waiting on the lock").await;
    let (status, took) = engine.terminate(Duration::from_secs(10)).await;
    eprintln!("SIGTERM with the store stuck: exit {status} in {took:?}");
    assert!(status.success(), "a clean exit even so: {status}");
    assert!(took >= Duration::from_secs(2), "it waited for the deadline before giving up ({took:?})");
    lock.rollback().await.unwrap();
    let _engine = start(&registry_file, &mqtt, &store_url, &root).await;
    all_stored_once(&mut db, PRESSES + 1, Duration::from_secs(30)).await;
    pump.abort();
}

/// One device's own MQTT session with the broker, signed in as `user`.
struct Session {
    client: AsyncClient,
    /// What the broker forwards to it: (topic, payload).
    hears: tokio::sync::mpsc::UnboundedReceiver<(String, serde_json::Value)>,
    /// Fires with the reason when the broker drops the connection.
    dropped: tokio::sync::oneshot::Receiver<String>,
}

impl Session {
    /// Connects; `Err` with the broker's reason when it refuses.
    async fn open(port: u16, user: Option<(&str, &str)>) -> Result<Self, String> {
        use anxin_mqtt::rumqttc::{Event, Packet};
        let mut opts = MqttOptions::new(unique("acl", user.map_or("anonymous", |u| u.0)), "127.0.0.1", port);
        if let Some((name, password)) = user {
            opts.set_credentials(name, password);
        }
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        loop {
            match tokio::time::timeout(WAIT, eventloop.poll()).await.expect("the broker answers") {
                Ok(Event::Incoming(Packet::ConnAck(_))) => break,
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        let (tx, hears) = tokio::sync::mpsc::unbounded_channel();
        let (drop_tx, dropped) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send((p.topic.clone(), serde_json::from_slice(&p.payload).unwrap_or_default()));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = drop_tx.send(e.to_string());
                        return;
                    }
                }
            }
        });
        Ok(Self { client, hears, dropped })
    }

    async fn press(&self, topic: String, msg: &str) {
        let payload = serde_json::json!({"msg_id": msg, "type": "sos"}).to_string();
        self.client.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
    }

    /// The next message the broker forwards within `within`.
    async fn next(&mut self, within: Duration) -> Option<(String, serde_json::Value)> {
        tokio::time::timeout(within, self.hears.recv()).await.ok().flatten()
    }
}

/// Writes the test registry in `dir` and runs `anxind broker-files` for it under `root`, into
/// `dir/accounts`. Returns the registry file and each account's password from the sheet.
async fn broker_files(dir: &std::path::Path, root: &str) -> (std::path::PathBuf, HashMap<String, String>) {
    let (registry_file, out) = (dir.join("registry.json"), dir.join("accounts"));
    std::fs::write(&registry_file, serde_json::to_string(&registry()).unwrap()).unwrap();
    let written = Command::new(env!("CARGO_BIN_EXE_anxind"))
        .arg("--registry")
        .arg(&registry_file)
        .args(["broker-files", "--out"])
        .arg(&out)
        .env("ANXIN_MQTT__TOPIC_ROOT", root)
        .output()
        .await
        .unwrap();
    assert!(written.status.success(), "broker-files: {}", String::from_utf8_lossy(&written.stderr));
    let sheet = std::fs::read_to_string(out.join("new-passwords.csv")).unwrap();
    let password: HashMap<String, String> = sheet
        .lines()
        .skip(1)
        .map(|row| {
            let cols: Vec<_> = row.split(',').collect();
            (cols[0].to_string(), cols[2].to_string())
        })
        .collect();
    assert_eq!(password.len(), 1 + registry().devices.len() + registry().stations.len(), "engine, devices, stations");
    (registry_file, password)
}

/// What a device may not do, tried on the broker at `port` (anxind is running on it): sign
/// in without an account or with a wrong password; listen to another device's commands;
/// press under another device's topic, which must never reach anxind. Its own press works.
async fn only_its_own_topics(port: u16, root: &str, password: &HashMap<String, String>, store_url: &str) {
    assert!(Session::open(port, None).await.is_err(), "anonymous is refused");
    assert!(Session::open(port, Some(("d-burst-1", "guess"))).await.is_err(), "a wrong password is refused");
    let topic = |d: &str, what: &str| format!("{root}/v1/devices/{d}/{what}");
    let account = |d: &'static str| Some((d, password[d].as_str()));

    // d-burst-1 tries to listen to d-burst-2's commands; d-burst-2 presses and is answered.
    let mut snoop = Session::open(port, account("d-burst-1")).await.unwrap();
    let mut two = Session::open(port, account("d-burst-2")).await.unwrap();
    let _ = snoop.client.subscribe(topic("d-burst-2", "commands"), QoS::AtLeastOnce).await;
    two.client.subscribe(topic("d-burst-2", "commands"), QoS::AtLeastOnce).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await; // the subscriptions are in place
    two.press(topic("d-burst-2", "events"), "own-2").await;
    let (heard_on, said) = two.next(WAIT).await.expect("d-burst-2 hears its answer");
    assert_eq!(
        (heard_on.as_str(), said["type"].as_str()),
        (topic("d-burst-2", "commands").as_str(), Some("help_coming"))
    );
    assert_eq!(snoop.next(Duration::from_millis(500)).await, None, "d-burst-1 heard d-burst-2's commands");

    // d-burst-1 presses as d-burst-2: the broker drops it.
    let mut forger = Session::open(port, account("d-burst-1")).await.unwrap();
    forger.press(topic("d-burst-2", "events"), "forged").await;
    let reason =
        tokio::time::timeout(WAIT, &mut forger.dropped).await.expect("the broker disconnects a forger").unwrap();
    eprintln!("a device pressing for another was disconnected: {reason}");

    // Its own press works.
    let mut one = Session::open(port, account("d-burst-1")).await.unwrap();
    one.client.subscribe(topic("d-burst-1", "commands"), QoS::AtLeastOnce).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    one.press(topic("d-burst-1", "events"), "own-1").await;
    let (_, said) = one.next(WAIT).await.expect("d-burst-1 hears its answer");
    assert_eq!(said["type"], "help_coming");

    // Sent before d-burst-1's own press was answered, the forged one would be stored by now.
    let store = anxin_store::open(store_url).await.unwrap();
    let stored = |d: &str, m: &str| {
        let (d, m) = (DeviceId::parse(d).unwrap(), MessageId::parse(m).unwrap());
        let store = store.clone();
        async move { store.message(&d, &m).await.unwrap().is_some() }
    };
    assert!(stored("d-burst-1", "own-1").await && stored("d-burst-2", "own-2").await);
    assert!(!stored("d-burst-2", "forged").await, "the press d-burst-1 sent as d-burst-2 reached anxind");
    assert_eq!(store.incident_count().await.unwrap(), 2, "one incident per genuine press");
}

/// The files `anxind broker-files` writes, on the deploy Mosquitto; the engine connects with
/// its own account from them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_press_for_another() {
    let Some((_, server)) = external().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = unique("anxind-acl", "devices");
    let (registry_file, password) = broker_files(dir.path(), &root).await;
    let accounts = dir.path().join("accounts");
    let port = free_port();
    let _broker = own_mosquitto(dir.path(), port, Some(&accounts)).await;
    let store_url = anxin_store::testkit::fresh_postgres_database(&server).await;
    let engine_password = password["anxin-engine"].clone();
    let settings = [("ANXIN_MQTT__USERNAME", "anxin-engine"), ("ANXIN_MQTT__PASSWORD", engine_password.as_str())];
    // Ready means subscribed: the engine's account works.
    let _engine = start_with(&registry_file, &format!("mqtt://127.0.0.1:{port}"), &store_url, &root, &settings).await;
    only_its_own_topics(port, &root, &password, &store_url).await;
}

/// The same rule on the embedded broker with `mqtt.embedded_accounts` (no servers needed),
/// and every refusal counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_broker_keeps_devices_to_their_own_topics() {
    let dir = tempfile::tempdir().unwrap();
    let root = unique("anxind-acl", "embedded");
    let (registry_file, password) = broker_files(dir.path(), &root).await;
    let accounts = dir.path().join("accounts");
    let port = free_port();
    let store_url = format!("sqlite://{}", dir.path().join("anxin.db").display());
    let (listen, passwd) = (format!("127.0.0.1:{port}"), accounts.join("passwd").display().to_string());
    let settings =
        [("ANXIN_MQTT__EMBEDDED_LISTEN", listen.as_str()), ("ANXIN_MQTT__EMBEDDED_ACCOUNTS", passwd.as_str())];
    let engine = start_with(&registry_file, "embedded", &store_url, &root, &settings).await;
    only_its_own_topics(port, &root, &password, &store_url).await;
    for (reason, at_least) in [("sign_in", 2.0), ("subscribe", 1.0), ("publish", 1.0)] {
        let counted = engine.metric(&format!("anxin_mqtt_refused_total{{reason=\"{reason}\"}}")).await;
        assert!(counted >= at_least, "{reason}: {counted} counted");
    }
}
