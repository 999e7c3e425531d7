//! The end-to-end load bench: presses at a fixed rate over a real broker into a real store,
//! measured from the device's publish to the console's delta, and what each press cost in CPU.
//!
//! ```text
//! cargo run --release -p anxind --example press_load -- \
//!     --broker mqtt://127.0.0.1:1883 --store postgres://postgres@127.0.0.1:5432/test \
//!     --rates 1000,2000,5000 --seconds 10
//! ```
//!
//! Each press comes from a different device, so each must become exactly one incident. A
//! rate counts as sustained when every press reached the console, none was doubled, the
//! publishers kept up with the rate, and the last presses waited no longer than the first
//! (no backlog building up).
//!
//! The engine (anxind's `App`) runs in a process of its own: for each rate the bench starts
//! itself again with the hidden flag `--serve-engine` and the run's parameters, the child
//! builds the district and the engine, prints `READY http=ADDR mqtt=URL` and serves until its
//! stdin closes or says `stop`. The devices (publishers) and the console stay in the bench's
//! process. So the engine's CPU is measured alone: `utime + stime` from `/proc/PID/stat` just
//! before the first press and once the console has seen the last, for the engine's process,
//! for the broker (an external one: the process listening on its port; the embedded one is
//! inside the engine), for PostgreSQL (the postmaster listening on the store's port, its own
//! processes and the run's database's backends, not other databases'; SQLite is inside the
//! engine) and for the bench itself, each divided by the presses sent. A server whose
//! listener cannot be found (another user's process, without root) is counted by name: every
//! `mosquitto` or `postgres` process. The machine's busy time over the same window
//! (`/proc/stat`) says what else ran. They still share the machine's cores.
//!
//! On PostgreSQL the bench also looks at `pg_stat_activity` every 10 ms while the presses
//! run, on a connection of its own, and says how often a commit of the run's database waited
//! on the WAL (its write or its `fsync`) and the longest one transaction was seen waiting: a
//! slow disk flush stalls every commit behind it, whatever the engine does.
//!
//! Each run also says what it ran on: the CPU model and `nproc`, the load average before each
//! rate, the median time of an 8 kB write and `fdatasync` in the run's temp dir, and a raw
//! MQTT hop before each rate's presses: QoS 1 publishes at the run's rate through the same
//! broker to a subscriber on another connection, on `{tag}-hop/x`, which the engine does not
//! subscribe to. Latencies are also given as a ratio to that hop (`p99/hop99`), which says
//! more across machines than milliseconds do.
//!
//! `--record FILE` appends one JSON line per rate (with `--label`, e.g. "PostgreSQL +
//! Mosquitto"); `--plot OUT.svg --from FILE` runs nothing and draws p50 and p99 against the
//! rate for every label in FILE, with the aims beside them.
//!
//! The district has `--responders` responders (default 2,000, on duty and free, 35
//! stations): the first presses are offered to one, the rest go to their station's duty line,
//! as in a surge. `--responders 0` gives one responder per press, so every press is offered.
//!
//! `--quick-ack` sets `mqtt.quick_ack` for an external broker (with the embedded broker it is
//! always on): for a broker that leaves Nagle's algorithm on, such as Debian's Mosquitto.
//! `--in-flight N` sets `store.commits_in_flight` in the engine's configuration, `--workers N`
//! its `runtime.worker_threads` (the engine's process builds its runtime as anxind does).
//! `--cluster` runs the engine under the district's lease, every commit fenced by it, as
//! `cluster.enabled` does (issue 25).

use anxin_core::{
    Coordinates, Device, DeviceId, Elder, ElderId, Registry, Responder, ResponderId, Station, StationId, TravelMode,
};
use anxind::{App, Config};
use futures_util::StreamExt;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

struct Args {
    broker: String,
    store: String,
    rates: Vec<u32>,
    seconds: u32,
    publishers: usize,
    /// Responders in the district (each on duty, free, with first aid); 0 gives one per press.
    responders: usize,
    /// Appends each rate's result to this file, a JSON object a line.
    record: Option<std::path::PathBuf>,
    /// The name of this setup in the record.
    label: Option<String>,
    /// Draws the records in `from` to this SVG file instead of running.
    plot: Option<std::path::PathBuf>,
    from: Option<std::path::PathBuf>,
    /// `mqtt.quick_ack` for an external broker (on by itself with the embedded one).
    quick_ack: bool,
    /// Appends every press's send time and latency to this CSV file, to find stalls.
    timeline: Option<std::path::PathBuf>,
    /// `store.commits_in_flight` in the engine's configuration (unset: the engine's default).
    in_flight: Option<usize>,
    /// `runtime.worker_threads` in the engine's configuration (unset: the engine's default).
    workers: Option<usize>,
    /// Registered devices that never press (`lb-h0`...), shared among the pressing elders.
    idle_devices: usize,
    /// Heartbeats a second from the idle devices, round robin, while the presses run.
    heartbeats: u32,
    /// The engine runs under the district's lease, every commit fenced (`[cluster]`).
    cluster: bool,
}

const USAGE: &str = "\
usage: press_load [--broker embedded|mqtt://HOST:PORT] [--store postgres://...] [--rates 1000,2000,...]
                  [--seconds 10] [--publishers 4] [--responders 2000] [--quick-ack] [--in-flight N]
                  [--workers N] [--idle-devices N] [--heartbeats N] [--cluster]
                  [--record FILE.jsonl] [--label NAME] [--timeline FILE.csv]
       press_load --plot OUT.svg --from FILE.jsonl

  --broker      the broker the engine and the devices use (default: the embedded one)
  --store       PostgreSQL server URL; a fresh database per rate (default: SQLite in a temp dir)
  --rates       presses a second, one run of --seconds each, in order (default 1000)
  --seconds     how long each rate runs (default 10)
  --publishers  device connections that share the presses (default 4)
  --responders  responders in the district, free at the start; 0 gives one per press (default 2000)
  --quick-ack   mqtt.quick_ack for an external broker (always on with the embedded one)
  --in-flight   store.commits_in_flight in the engine's configuration, 1 to 16 (default: unset,
                the engine's own default)
  --workers     runtime.worker_threads in the engine's configuration, 1 to 64 (default: unset,
                the engine's own default: 1 with an external broker, 2 with the
                embedded one)
  --idle-devices  registered devices that never press, shared among the elders (default 0): to
                hold a province's ledger while the presses run
  --heartbeats  heartbeats a second from the idle devices, round robin over them, QoS 1 on a
                connection of their own, for as long as the presses run (default 0); needs
                --idle-devices. Each rate's line is followed by the heartbeats sent, the engine's
                resident memory when ready and at the end, and the cores it used
  --cluster     the engine runs under the district's lease, as with cluster.enabled: every
                commit fenced by it (needs --store and an external --broker)
  --record      append one JSON line per rate to FILE, named by --label (with the machine,
                the MQTT hop and the CPU per press)
  --timeline    append every press to FILE as CSV: rate, ms from the run's first send to its
                send, ms from its send to the console, and its send by the wall clock (ms since
                1970); to see when in a run presses waited, and what else ran then
  --plot        draw p50 and p99 against the rate for every label in --from, and run nothing

The engine runs in a child process (this program again, with --serve-engine). Besides the
latencies and the engine's /metrics, each rate's line gives the load average before it, a raw
MQTT hop through the same broker (hop50, hop99: QoS 1 publish to another connection's
subscriber, ms), the press latencies as a ratio to it (p50/h50, p99/h99), and CPU time per
press in µs from /proc: the engine's process (eng), the broker's (mqtt: the process listening
on its port; \"in eng\" with the embedded broker), PostgreSQL's (db: the postmaster on the
store's port, its own processes and the run's database's backends; \"in eng\" with SQLite),
this process (bench) and their sum. Under it: the heartbeats and the engine's memory; every
core's busy time per press over the same window, what of it the parts do not account for,
and the idle and stolen shares; and on PostgreSQL, in how many of the bench's looks at
pg_stat_activity (every 10 ms, on a connection of its own) a commit waited on the WAL, and
the longest one transaction was seen waiting on it (a slow fsync stalls every commit).
Other clients' work on the same broker counts in mqtt; other databases' backends on the
same PostgreSQL (the bench's looks among them) do not count in db.
";

/// Says what is wrong with the command line, then the usage, and exits with 2.
fn usage_error(what: &str) -> ! {
    eprint!("press_load: {what}\n\n{USAGE}");
    std::process::exit(2)
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> T {
    text.parse().unwrap_or_else(|_| usage_error(&format!("{flag} takes a whole number, not {text:?}")))
}

fn parse_args() -> Args {
    let mut a = Args {
        broker: "embedded".into(),
        store: String::new(),
        rates: vec![1000],
        seconds: 10,
        publishers: 4,
        responders: 2000,
        record: None,
        label: None,
        plot: None,
        from: None,
        quick_ack: false,
        timeline: None,
        in_flight: None,
        workers: None,
        idle_devices: 0,
        heartbeats: 0,
        cluster: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage_error(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--broker" => a.broker = value(),
            "--store" => a.store = value(),
            "--rates" => a.rates = value().split(',').map(|r| number(&flag, r.trim())).collect(),
            "--seconds" => a.seconds = number(&flag, &value()),
            "--publishers" => a.publishers = number(&flag, &value()),
            "--responders" => a.responders = number(&flag, &value()),
            "--record" => a.record = Some(value().into()),
            "--label" => a.label = Some(value()),
            "--plot" => a.plot = Some(value().into()),
            "--from" => a.from = Some(value().into()),
            "--quick-ack" => a.quick_ack = true,
            "--timeline" => a.timeline = Some(value().into()),
            "--in-flight" => {
                let n: usize = number(&flag, &value());
                if !(1..=16).contains(&n) {
                    usage_error("--in-flight takes 1 to 16");
                }
                a.in_flight = Some(n);
            }
            "--workers" => {
                let n: usize = number(&flag, &value());
                if !(1..=64).contains(&n) {
                    usage_error("--workers takes 1 to 64");
                }
                a.workers = Some(n);
            }
            "--idle-devices" => a.idle_devices = number(&flag, &value()),
            "--heartbeats" => a.heartbeats = number(&flag, &value()),
            "--cluster" => a.cluster = true,
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => usage_error(&format!("unknown flag {other}")),
        }
    }
    if a.cluster && (a.store.is_empty() || a.broker == "embedded") {
        usage_error("--cluster needs --store (PostgreSQL, where the lease is) and an external --broker");
    }
    if a.heartbeats > 0 && a.idle_devices == 0 {
        usage_error("--heartbeats needs --idle-devices: the heartbeats come from them");
    }
    a
}

/// The console's account (a dispatcher), added to the bench's registry.
const CONSOLE_USER: &str = "load";
const CONSOLE_PASSWORD: &str = "press-load";

/// Signs the console in over HTTP and returns its `Cookie` header value.
async fn sign_in(http: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sign_in = anxin_proto::rest::SignIn { user: CONSOLE_USER.into(), password: CONSOLE_PASSWORD.into() };
    let body = serde_json::to_string(&sign_in).unwrap();
    let mut socket = tokio::net::TcpStream::connect(http).await.expect("the console reaches anxind");
    let head = format!(
        "POST /api/v1/session HTTP/1.1\r\nHost: load\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(format!("{head}{body}").as_bytes()).await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    answer
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie").then(|| value.trim().split(';').next().unwrap_or("").to_string())
        })
        .unwrap_or_else(|| panic!("the console signs in: {answer}"))
}

fn district(devices: usize, idle_devices: usize, responders: usize, rng: &mut SmallRng) -> Registry {
    let mut point = || Coordinates::new(rng.random_range(24.95..25.10), rng.random_range(102.60..102.75)).unwrap();
    let mut r = Registry::default();
    r.staff.push(anxin_core::Staff {
        id: CONSOLE_USER.into(),
        name: "press_load console".into(),
        role: anxin_core::StaffRole::Dispatcher,
        password_hash: anxin_api::hash_password(CONSOLE_PASSWORD),
    });
    for s in 0..35 {
        r.stations.push(Station {
            id: StationId::parse(format!("lb-s{s}")).unwrap(),
            name: format!("station {s}"),
            position: point(),
            phone: None,
            service_circle_min: None,
            zone: Default::default(),
        });
    }
    for i in 0..devices {
        r.elders.push(Elder {
            id: ElderId::parse(format!("lb-e{i}")).unwrap(),
            name: format!("elder {i}"),
            address: format!("address {i}"),
            home: point(),
            phone: None,
            notes: String::new(),
            profile: Default::default(),
        });
        r.devices.push(Device {
            id: DeviceId::parse(format!("lb-d{i}")).unwrap(),
            elder_id: ElderId::parse(format!("lb-e{i}")).unwrap(),
            model: None,
            sim: None,
        });
    }
    for i in 0..idle_devices {
        r.devices.push(Device {
            id: DeviceId::parse(format!("lb-h{i}")).unwrap(),
            elder_id: ElderId::parse(format!("lb-e{}", i % devices.max(1))).unwrap(),
            model: None,
            sim: None,
        });
    }
    for i in 0..responders {
        r.responders.push(Responder {
            id: ResponderId::parse(format!("lb-r{i}")).unwrap(),
            name: format!("responder {i}"),
            station_id: StationId::parse(format!("lb-s{}", i % 35)).unwrap(),
            phone: None,
            position: point(),
            on_duty: true,
            mode: TravelMode::Ebike,
            skills: vec!["first_aid".into()],
            position_at: None,
            token_sha256: None,
            provider_id: None,
        });
    }
    r
}

/// Runs one statement on the PostgreSQL server the bench was pointed at.
async fn postgres_admin(server: &str, sql: &str) {
    use sqlx::Connection;
    let mut admin = sqlx::PgConnection::connect(server).await.unwrap_or_else(|e| panic!("cannot reach {server}: {e}"));
    sqlx::query(sql).execute(&mut admin).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// How long the run's commits waited on PostgreSQL's WAL reaching the disk: a slow `fsync`
/// stalls every commit behind it, whatever the engine does, and at 2,000/s it is what makes
/// the p99 on a machine whose disk now and then takes 20–180 ms to sync (2026-12-07).
#[derive(Debug, Clone, Default)]
struct WalWaits {
    /// Looks at `pg_stat_activity`, one every [`WAL_LOOK_EVERY`].
    looks: usize,
    /// Looks that found a backend of the run's database waiting on the WAL (its write or its
    /// sync, `IO/WALSync`, `IO/WALWrite` or `LWLock/WALWrite`).
    waiting: usize,
    /// The longest that one transaction was seen waiting on it: from the first look to the
    /// last that found it waiting, a lower bound good to [`WAL_LOOK_EVERY`]. 0 when no
    /// transaction was seen waiting in two looks in a row.
    longest_ms: f64,
    /// When that wait began, in seconds from the run's first press.
    longest_at_s: f64,
    /// Why the looking stopped before the run ended, if it did (figures up to then only).
    failed: Option<&'static str>,
}

const WAL_LOOK_EVERY: Duration = Duration::from_millis(10);

/// Looks at what the backends of `database` wait on every [`WAL_LOOK_EVERY`] from now until
/// `stop`, on a connection of its own to the database `server` names (its backend counts
/// among PostgreSQL's work for other databases, not the run's). Connects before it returns;
/// the task gives the figures and when the longest wait was first seen.
async fn watch_wal_waits(
    server: &str,
    database: String,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<(WalWaits, Option<Instant>)> {
    use sqlx::Connection;
    let conn = sqlx::PgConnection::connect(server).await;
    tokio::spawn(async move {
        let mut waits = WalWaits::default();
        let Ok(mut conn) = conn else {
            waits.failed = Some("could not connect to look at pg_stat_activity");
            return (waits, None);
        };
        // A transaction waiting, by backend and the transaction's start: first and last seen.
        let mut seen: HashMap<(i32, u64), (Instant, Instant)> = HashMap::new();
        let mut tick = tokio::time::interval(WAL_LOOK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => break,
            }
            let rows: Vec<(i32, f64)> = match sqlx::query_as(
                "SELECT pid, extract(epoch FROM xact_start)::float8 FROM pg_stat_activity \
                 WHERE datname = $1 AND xact_start IS NOT NULL AND wait_event IN ('WALSync', 'WALWrite')",
            )
            .bind(&database)
            .fetch_all(&mut conn)
            .await
            {
                Ok(rows) => rows,
                Err(_) => {
                    waits.failed = Some("a look at pg_stat_activity failed; the figures stop there");
                    break;
                }
            };
            let now = Instant::now();
            waits.looks += 1;
            if !rows.is_empty() {
                waits.waiting += 1;
            }
            for (pid, xact_start) in rows {
                seen.entry((pid, xact_start.to_bits())).and_modify(|(_, last)| *last = now).or_insert((now, now));
            }
        }
        let longest = seen.values().max_by_key(|(first, last)| last.duration_since(*first)).copied();
        if let Some((first, last)) = longest {
            waits.longest_ms = last.duration_since(first).as_secs_f64() * 1000.0;
        }
        (waits, longest.map(|(first, _)| first))
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct RunResult {
    rate: u32,
    sent: usize,
    seen: usize,
    doubled: usize,
    achieved_rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
    first_tenth_p50: f64,
    last_tenth_p50: f64,
    /// Commits made, and the mean number of device messages per commit.
    batches: f64,
    batch_mean: f64,
    /// Mean time of one store commit, in milliseconds.
    commit_ms: f64,
    /// Mean time from the engine reading a press off its connection to its commit, in ms.
    read_to_stored_ms: f64,
    /// Mean time of the engine's work on one batch, in ms.
    step_ms: f64,
    /// The load average before the run.
    load: Vec<f64>,
    /// The raw MQTT hop before the presses.
    hop: Hop,
    /// CPU µs per press of the engine, the broker, the database and the bench.
    cpu: CpuPerPress,
    /// Heartbeats sent by the idle devices, and at what rate.
    heartbeats: usize,
    heartbeat_rate: f64,
    /// The engine's resident memory once ready (the district loaded) and at the end, MiB.
    rss_ready_mib: Option<f64>,
    rss_end_mib: Option<f64>,
    /// The engine's CPU over the run, in cores (1.0: one core busy all the time).
    engine_cores: Option<f64>,
    /// Where the broker's and the database's CPU was read (`Server::describe`).
    broker_at: String,
    db_at: String,
    /// PostgreSQL's waits on the WAL during the run (none with SQLite).
    wal_waits: Option<WalWaits>,
}

/// Reads the engine's group-commit figures from its /metrics: commits, messages per commit,
/// the mean commit, and the mean wait from reading a press to its commit, in milliseconds.
async fn batch_stats(http: std::net::SocketAddr) -> (f64, f64, f64, f64, f64) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(http).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    let sample = |name: &str| {
        body.lines().find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse::<f64>().ok())).unwrap_or(f64::NAN)
    };
    let (sum, count) = (sample("anxin_ingest_batch_messages_sum"), sample("anxin_ingest_batch_messages_count"));
    let commit_ms = 1000.0 * sample("anxin_store_commit_seconds_sum") / sample("anxin_store_commit_seconds_count");
    let read_to_stored_ms =
        1000.0 * sample("anxin_press_commit_seconds_sum") / sample("anxin_press_commit_seconds_count");
    let step_ms = 1000.0 * sample("anxin_engine_step_seconds_sum") / sample("anxin_engine_step_seconds_count");
    (count, sum / count, commit_ms, read_to_stored_ms, step_ms)
}

/// A console frame, as far as the bench reads it: the `incident` frame's (`ServerFrame::Incident`)
/// type, id and device, borrowed from the text. Reading the whole typed frame would build
/// every incident view the bench never looks at.
#[derive(serde::Deserialize)]
struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    incident: Option<Seen<'a>>,
}

#[derive(serde::Deserialize)]
struct Seen<'a> {
    id: u64,
    #[serde(borrow)]
    device_id: std::borrow::Cow<'a, str>,
}

/// One publisher's share of the messages: the `k`th is due `k × interval` after `started`.
struct Plan {
    mine: Vec<usize>,
    interval: Duration,
    started: Instant,
    /// The topic and payload of message `n` (a press from device `n`, or the hop's `n`th).
    message: Box<dyn Fn(usize) -> (String, String) + Send>,
}

/// One MQTT connection pressing for many devices (or sending the hop's messages), QoS 1. The presses that are due when it
/// wakes go out with one write (the timer wakes it about once a millisecond), so that the
/// bench's devices, which in a district are thousands of connections on other machines,
/// take as little as they can of the cores they share here with the engine, the broker and
/// the store. Returns when the last press was written; the broker's PUBACKs are awaited.
async fn publish(host: &str, port: u16, client_id: &str, plan: Plan, sent_at: &Mutex<Vec<Option<Instant>>>) -> Instant {
    use anxin_mqtt::rumqttc::mqttbytes::v4::{Connect, Packet, Publish};
    use anxin_mqtt::rumqttc::mqttbytes::{Error, QoS};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const MAX: usize = 1 << 20;
    let stream = tokio::net::TcpStream::connect((host, port)).await.expect("the broker takes the publisher");
    stream.set_nodelay(true).unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let mut out = bytes::BytesMut::with_capacity(64 * 1024);
    let mut connect = Connect::new(client_id);
    connect.keep_alive = 30;
    Packet::Connect(connect).write(&mut out, MAX).unwrap();
    wr.write_all(&out).await.unwrap();
    out.clear();
    // The CONNACK, then PUBACKs, counted.
    let acked = Arc::new(AtomicUsize::new(0));
    let (connected_tx, connected) = tokio::sync::oneshot::channel();
    let reader = tokio::spawn({
        let acked = acked.clone();
        async move {
            let mut connected_tx = Some(connected_tx);
            let mut buf = bytes::BytesMut::with_capacity(64 * 1024);
            loop {
                match Packet::read(&mut buf, MAX) {
                    Ok(Packet::ConnAck(ack)) => {
                        let _ = connected_tx.take().map(|tx| tx.send(ack.code));
                    }
                    Ok(Packet::PubAck(_)) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(Error::InsufficientBytes(_)) => {
                        buf.reserve(16 * 1024);
                        if !matches!(rd.read_buf(&mut buf).await, Ok(n) if n > 0) {
                            break;
                        }
                    }
                    Err(e) => panic!("the broker sent the publisher something that is not MQTT: {e}"),
                }
            }
        }
    });
    let code = connected.await.expect("a CONNACK");
    assert_eq!(
        code,
        anxin_mqtt::rumqttc::mqttbytes::v4::ConnectReturnCode::Success,
        "the broker refused the publisher"
    );

    let Plan { mine, interval, started, message } = plan;
    let mut pkid: u16 = 0;
    let mut k = 0;
    while k < mine.len() {
        tokio::time::sleep_until((started + interval.mul_f64(k as f64)).into()).await;
        let now = Instant::now();
        {
            let mut sent_at = sent_at.lock().unwrap();
            while k < mine.len() && started + interval.mul_f64(k as f64) <= now {
                let n = mine[k];
                let (topic, payload) = message(n);
                let mut press = Publish::new(topic, QoS::AtLeastOnce, payload);
                pkid = pkid.checked_add(1).unwrap_or(1);
                press.pkid = pkid;
                Packet::Publish(press).write(&mut out, MAX).unwrap();
                sent_at[n] = Some(Instant::now());
                k += 1;
            }
        }
        wr.write_all(&out).await.expect("the broker takes the presses");
        out.clear();
    }
    let last = Instant::now();
    // Every press taken by the broker before the connection goes.
    let deadline = Instant::now() + Duration::from_secs(10);
    while acked.load(Ordering::Relaxed) < mine.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Packet::Disconnect.write(&mut out, MAX).unwrap();
    let _ = wr.write_all(&out).await;
    reader.abort();
    last
}

/// What the engine's process is told: enough to build the same district and engine.
struct EngineArgs {
    /// The district's random seed (the rate).
    seed: u64,
    /// Devices (and elders) in the district: one per press.
    presses: usize,
    /// Responders in the district (already one per press when `--responders 0`).
    responders: usize,
    broker: String,
    /// The store's URL: the fresh PostgreSQL database or the SQLite file.
    store: String,
    /// The run's MQTT client id and topic root.
    tag: String,
    quick_ack: bool,
    in_flight: Option<usize>,
    workers: Option<usize>,
    idle_devices: usize,
    cluster: bool,
}

impl EngineArgs {
    fn to_args(&self) -> Vec<String> {
        let mut v = vec![
            "--serve-engine".to_string(),
            "--seed".into(),
            self.seed.to_string(),
            "--presses".into(),
            self.presses.to_string(),
            "--responders".into(),
            self.responders.to_string(),
            "--broker".into(),
            self.broker.clone(),
            "--store".into(),
            self.store.clone(),
            "--tag".into(),
            self.tag.clone(),
            "--idle-devices".into(),
            self.idle_devices.to_string(),
        ];
        if self.quick_ack {
            v.push("--quick-ack".into());
        }
        if let Some(n) = self.in_flight {
            v.extend(["--in-flight".into(), n.to_string()]);
        }
        if let Some(n) = self.workers {
            v.extend(["--workers".into(), n.to_string()]);
        }
        if self.cluster {
            v.push("--cluster".into());
        }
        v
    }

    /// Reads what `to_args` wrote (after `--serve-engine`).
    fn parse(args: &[String]) -> Self {
        let mut e = EngineArgs {
            seed: 0,
            presses: 0,
            responders: 0,
            broker: "embedded".into(),
            store: String::new(),
            tag: String::new(),
            quick_ack: false,
            in_flight: None,
            workers: None,
            idle_devices: 0,
            cluster: false,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().cloned().unwrap_or_else(|| usage_error(&format!("{flag} needs a value")));
            match flag.as_str() {
                "--seed" => e.seed = number(flag, &value()),
                "--presses" => e.presses = number(flag, &value()),
                "--responders" => e.responders = number(flag, &value()),
                "--broker" => e.broker = value(),
                "--store" => e.store = value(),
                "--tag" => e.tag = value(),
                "--quick-ack" => e.quick_ack = true,
                "--in-flight" => e.in_flight = Some(number(flag, &value())),
                "--workers" => e.workers = Some(number(flag, &value())),
                "--idle-devices" => e.idle_devices = number(flag, &value()),
                "--cluster" => e.cluster = true,
                other => usage_error(&format!("--serve-engine: unknown flag {other}")),
            }
        }
        e
    }
}

/// The engine's process (`--serve-engine`): builds the district and the engine, says
/// `READY http=ADDR mqtt=URL` on stdout, and serves until stdin says `stop` or closes (the
/// bench ended, or died), then shuts the engine down as anxind does.
fn serve_engine(e: EngineArgs) {
    let mut config = Config::defaults();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.broker = e.broker.clone();
    config.mqtt.quick_ack = e.quick_ack;
    config.mqtt.embedded_listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.client_id = e.tag.clone();
    config.mqtt.topic_root = e.tag.clone();
    config.consoles.replay = e.presses.max(16);
    config.ingest.queue = 16_384;
    config.store.url = anxind::config::Secret::new(e.store.clone());
    config.store.commits_in_flight = e.in_flight;
    config.runtime.worker_threads = e.workers;
    anxind::tokio_runtime(config.worker_threads()).expect("the engine's runtime").block_on(serve(e, config));
}

async fn serve(e: EngineArgs, config: Config) {
    let mut rng = SmallRng::seed_from_u64(e.seed);
    let registry = district(e.presses, e.idle_devices, e.responders, &mut rng);
    let lease = if e.cluster {
        let mut cluster = config.cluster.clone();
        cluster.enabled = true;
        cluster.node = Some(e.tag.clone());
        let never = CancellationToken::new();
        let held = anxind::cluster::wait_for_lease(&cluster, &e.store, "press_load", &never, |_| {})
            .await
            .expect("the store opens")
            .expect("a fresh database's lease is free");
        Some(held)
    } else {
        None
    };
    let app =
        App::build_with(config, Some(registry), anxind::clock::Clock::System, lease).await.expect("engine builds");
    let (http, mqtt) = (app.http_addr(), app.mqtt_url());
    let shutdown = CancellationToken::new();
    let engine = tokio::spawn(app.run(shutdown.clone()));
    // The engine's link connects and subscribes meanwhile.
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!("READY http={http} mqtt={mqtt}");
    let stop = shutdown.clone();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            match line {
                Ok(line) if line.trim() == "stop" => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        stop.cancel();
    });
    match engine.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            eprintln!("press_load engine: {e:#}");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("press_load engine: the engine's task failed: {e}");
            std::process::exit(1);
        }
    }
}

/// The engine's process, seen from the bench.
struct EngineProcess {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    /// Kept open so that the child never writes to a closed pipe.
    _stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    pid: u32,
    http: std::net::SocketAddr,
    mqtt: String,
}

impl EngineProcess {
    /// Starts this program again as the engine and waits for its `READY` line.
    async fn start(e: &EngineArgs) -> Self {
        use tokio::io::AsyncBufReadExt;
        let exe = std::env::current_exe().expect("the bench knows its own executable");
        let mut child = tokio::process::Command::new(exe)
            .args(e.to_args())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the engine's process starts");
        let pid = child.id().expect("the engine's process has an id");
        let stdin = child.stdin.take();
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        // A district of 100,000 devices takes a while to build and store.
        let line = tokio::time::timeout(Duration::from_secs(300), stdout.next_line()).await;
        let line = match line {
            Ok(Ok(Some(line))) => line,
            Ok(_) => panic!("the engine's process ended before it was ready: {:?}", child.wait().await),
            Err(_) => panic!("the engine's process was not ready within 300 s"),
        };
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .unwrap_or_else(|| panic!("the engine's process said {line:?}, not READY http=… mqtt=…"))
                .to_string()
        };
        assert!(line.starts_with("READY "), "the engine's process said {line:?}, not READY");
        let http = field("http=").parse().expect("READY gives the HTTP address");
        let mqtt = field("mqtt=");
        EngineProcess { child, stdin, _stdout: stdout, pid, http, mqtt }
    }

    /// Tells the engine to stop and waits for it to shut down (killing it after 60 s).
    async fn stop(mut self) {
        use tokio::io::AsyncWriteExt;
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"stop\n").await;
        }
        match tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => eprintln!("press_load: the engine's process ended with {status}"),
            Ok(Err(e)) => eprintln!("press_load: cannot wait for the engine's process: {e}"),
            Err(_) => {
                eprintln!("press_load: the engine's process did not stop within 60 s; killing it");
                let _ = self.child.kill().await;
            }
        }
    }
}

/// Clock ticks a second, the unit of `/proc/PID/stat`'s CPU times: the kernel's `AT_CLKTCK`
/// from `/proc/self/auxv`, which is what `sysconf(_SC_CLK_TCK)` returns (the `libc` crate is
/// not a dependency here). If that cannot be read, 100: Linux's value on every common
/// architecture.
fn clock_ticks() -> f64 {
    const AT_CLKTCK: u64 = 17;
    let auxv = std::fs::read("/proc/self/auxv").unwrap_or_default();
    auxv.chunks_exact(16)
        .map(|pair| {
            let word = |b: &[u8]| u64::from_ne_bytes(b.try_into().unwrap());
            (word(&pair[..8]), word(&pair[8..]))
        })
        .find(|&(key, _)| key == AT_CLKTCK)
        .map_or(100.0, |(_, ticks)| ticks as f64)
}

/// A process's CPU time in clock ticks from `/proc/{pid}/stat`: utime + stime (fields 14 and
/// 15), all its threads; with `children`, also cutime + cstime (16 and 17), its children that
/// ended and were waited for. `None` if it is gone.
fn cpu_ticks(pid: &str, children: bool) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let own = field(14)? + field(15)?;
    Some(if children { own + field(16)? + field(17)? } else { own })
}

/// The CPU ticks of every process whose command name (`/proc/PID/comm`) passes `name`, each
/// with its ended children (a PostgreSQL backend that ends during the run is counted in its
/// postmaster's), by process id.
fn cpu_ticks_named(name: impl Fn(&str) -> bool) -> HashMap<u32, u64> {
    let mut ticks = HashMap::new();
    for pid in process_ids() {
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else { continue };
        if name(comm.trim_end()) {
            if let Some(t) = cpu_ticks(&pid.to_string(), true) {
                ticks.insert(pid, t);
            }
        }
    }
    ticks
}

/// The ids of the processes running now, from `/proc`.
fn process_ids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.flatten().filter_map(|entry| entry.file_name().to_str()?.parse().ok()).collect()
}

/// A process's parent, field 4 of `/proc/PID/stat`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
}

/// The inodes of the sockets listening on `port` in a `/proc/net/tcp` or `/proc/net/tcp6`
/// table: the local address's port (hex, after the last colon), state `0A` (listen), and the
/// inode (the tenth field).
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = u16::from_str_radix(fields.get(1)?.rsplit_once(':')?.1, 16).ok()?;
            if local_port != port || *fields.get(3)? != "0A" {
                return None;
            }
            fields.get(9)?.parse().ok()
        })
        .collect()
}

/// The process listening on TCP `port` on this machine: of the processes holding the
/// listening socket, the one whose parent does not (a server's workers may inherit it).
/// `None` if nobody listens there, or if another user's `/proc/PID/fd` cannot be read (the
/// bench run without root).
fn listener_pid(port: u16) -> Option<u32> {
    let sockets: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .flat_map(|table| listening_inodes(&std::fs::read_to_string(table).unwrap_or_default(), port))
        .map(|inode| format!("socket:[{inode}]"))
        .collect();
    if sockets.is_empty() {
        return None;
    }
    let holders: Vec<u32> = process_ids()
        .into_iter()
        .filter(|pid| {
            let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|target| sockets.iter().any(|s| target.as_os_str() == s.as_str()))
            })
        })
        .collect();
    holders.iter().copied().find(|&pid| parent_of(pid).is_none_or(|parent| !holders.contains(&parent)))
}

/// The port of a server URL such as `mqtt://HOST:PORT` or `postgres://USER@HOST:PORT/DB`,
/// `default` when it names none.
fn url_port(url: &str, default: u16) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(':') && !port.contains(']') => port.parse().ok(),
        _ => Some(default),
    }
}

/// The database a PostgreSQL backend serves, read from its process title (its
/// `/proc/PID/cmdline`, which PostgreSQL rewrites): `postgres: [CLUSTER: ]USER DATABASE
/// HOST(PORT) ACTIVITY`, with `[local]` for a Unix socket. `None` for the server's own
/// processes (checkpointer, walwriter, autovacuum…), whose titles name no client.
fn postgres_backend_database(title: &str) -> Option<&str> {
    let words: Vec<&str> = title.trim().strip_prefix("postgres: ")?.split_whitespace().collect();
    let client = |word: &str| {
        word == "[local]"
            || word.strip_suffix(')').and_then(|w| w.rsplit_once('(')).is_some_and(|(host, port)| {
                !host.is_empty() && !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())
            })
    };
    // The user comes first, so the database is never the first word.
    (1..words.len().saturating_sub(1)).find(|&i| client(words[i + 1])).map(|i| words[i])
}

/// Where a server's CPU is read from.
#[derive(Clone, Copy)]
enum Server {
    /// Inside the engine's process (the embedded broker, SQLite): no figure of its own.
    InEngine,
    /// The process listening on the server's port. For PostgreSQL, that is the postmaster:
    /// the figure is its own CPU, its server processes' and the run's database's backends'.
    Listener(u32),
    /// Every process with this command name, with their ended children: when nothing
    /// listening on the port could be found.
    Named(&'static str),
}

impl Server {
    /// The external server at `url`: the process listening on its port, or else every
    /// process called `name`.
    fn find(url: &str, default_port: u16, name: &'static str) -> Self {
        url_port(url, default_port).and_then(listener_pid).map_or(Server::Named(name), Server::Listener)
    }

    fn describe(&self) -> String {
        match self {
            Server::InEngine => "inside the engine".into(),
            Server::Listener(pid) => format!("pid {pid} (listening on the port)"),
            Server::Named(name) => format!("every process named {name} (no listener found)"),
        }
    }
}

/// The processes whose CPU a run counts.
struct Parts {
    engine: u32,
    broker: Server,
    db: Server,
    /// The run's PostgreSQL database: its backends count, other databases' do not.
    database: String,
}

/// The machine's CPU time in clock ticks, all cores, from the `cpu` line of `/proc/stat`.
#[derive(Clone, Copy)]
struct MachineTicks {
    /// user, nice, system, irq and softirq.
    busy: u64,
    /// idle and iowait.
    idle: u64,
    /// Time the hypervisor gave this machine's virtual CPUs to someone else.
    steal: u64,
}

impl MachineTicks {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let line = stat.lines().find(|l| l.starts_with("cpu "))?;
        let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        Some(MachineTicks { busy: at(0) + at(1) + at(2) + at(5) + at(6), idle: at(3) + at(4), steal: at(7) })
    }
}

/// The CPU ticks used so far by each part of the run; `None` where a part is inside the
/// engine (the embedded broker, SQLite) or was not found.
#[derive(Clone)]
struct CpuSample {
    engine: Option<u64>,
    broker: Option<u64>,
    /// Every process of the database server by id: its ticks, and whether the run's figure
    /// counts it (id 0: the postmaster's ended children, which cannot be told apart).
    db: Option<HashMap<u32, (u64, bool)>>,
    bench: Option<u64>,
    machine: Option<MachineTicks>,
}

impl CpuSample {
    fn take(parts: &Parts) -> Self {
        let broker = match parts.broker {
            Server::InEngine => None,
            Server::Listener(pid) => cpu_ticks(&pid.to_string(), true),
            Server::Named(name) => {
                let ticks = cpu_ticks_named(|comm| comm == name);
                (!ticks.is_empty()).then(|| ticks.values().sum())
            }
        };
        let db = match parts.db {
            Server::InEngine => None,
            Server::Listener(postmaster) => Some(postgres_ticks(postmaster, &parts.database)),
            Server::Named(name) => {
                let ticks = cpu_ticks_named(|comm| comm.starts_with(name));
                (!ticks.is_empty()).then(|| ticks.into_iter().map(|(pid, t)| (pid, (t, true))).collect())
            }
        };
        CpuSample {
            engine: cpu_ticks(&parts.engine.to_string(), false),
            broker,
            db,
            bench: cpu_ticks("self", false),
            machine: MachineTicks::read(),
        }
    }
}

/// The postmaster's processes and their CPU ticks: itself (counted), its children that are
/// the server's own (counted) or backends of `database` (counted) or of another database
/// (not), and under id 0 what its ended children used (not counted: a backend of another
/// database or of this one, which the engine's do not do while it runs).
fn postgres_ticks(postmaster: u32, database: &str) -> HashMap<u32, (u64, bool)> {
    let mut ticks = HashMap::new();
    if let (Some(own), Some(with_ended)) =
        (cpu_ticks(&postmaster.to_string(), false), cpu_ticks(&postmaster.to_string(), true))
    {
        ticks.insert(postmaster, (own, true));
        ticks.insert(0, (with_ended - own, false));
    }
    for pid in process_ids() {
        if parent_of(pid) != Some(postmaster) {
            continue;
        }
        let Ok(title) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let title = String::from_utf8_lossy(&title).replace('\0', " ");
        let counted = postgres_backend_database(&title).is_none_or(|db| db == database);
        if let Some(t) = cpu_ticks(&pid.to_string(), true) {
            ticks.insert(pid, (t, counted));
        }
    }
    ticks
}

/// CPU µs per press of each part between two samples, and of the machine.
#[derive(Clone, Copy)]
struct CpuPerPress {
    engine: Option<f64>,
    broker: Option<f64>,
    db: Option<f64>,
    /// The database server's work for others: other databases' backends and backends that
    /// ended in the window. `None` when the server was found by name or is inside the engine.
    db_others: Option<f64>,
    bench: Option<f64>,
    /// Every core of the machine, busy (not idle, not stolen).
    machine: Option<f64>,
    /// The shares of the machine's CPU time idle and stolen by the hypervisor, per cent.
    idle_pct: Option<f64>,
    steal_pct: Option<f64>,
}

impl CpuPerPress {
    fn between(before: &CpuSample, after: &CpuSample, presses: usize, ticks_per_second: f64) -> Self {
        let us = |ticks: u64| ticks as f64 / ticks_per_second * 1e6 / presses.max(1) as f64;
        let diff = |b: Option<u64>, a: Option<u64>| Some(us(a?.saturating_sub(b?)));
        // The database server's CPU in the window, all of it: a process that ended took all it
        // had used, before the window too, into its parent's ended children, and is missing
        // from `after`, so the sums' difference is what the window saw.
        let db = before.db.as_ref().zip(after.db.as_ref()).map(|(b, a)| {
            let sum = |m: &HashMap<u32, (u64, bool)>| m.values().map(|&(t, _)| t).sum::<u64>();
            let all = sum(a).saturating_sub(sum(b));
            if !a.contains_key(&0) {
                // Found by name: every process counts.
                return (us(all), None);
            }
            // Of that, the processes still there that count (one that started in the window
            // from zero); the rest is others' work, and whatever ended in the window.
            let counted: u64 = a
                .iter()
                .filter(|(_, &(_, counts))| counts)
                .map(|(pid, &(t, _))| t.saturating_sub(b.get(pid).map_or(0, |&(t, _)| t)))
                .sum();
            (us(counted), Some(us(all.saturating_sub(counted))))
        });
        let machine = before.machine.zip(after.machine);
        let share = |pick: fn(&MachineTicks) -> u64| {
            let (b, a) = machine?;
            let all = (a.busy + a.idle + a.steal).saturating_sub(b.busy + b.idle + b.steal);
            (all > 0).then(|| 100.0 * pick(&a).saturating_sub(pick(&b)) as f64 / all as f64)
        };
        CpuPerPress {
            engine: diff(before.engine, after.engine),
            broker: diff(before.broker, after.broker),
            db: db.map(|(counted, _)| counted),
            db_others: db.and_then(|(_, others)| others),
            bench: diff(before.bench, after.bench),
            machine: machine.map(|(b, a)| us(a.busy.saturating_sub(b.busy))),
            idle_pct: share(|m| m.idle),
            steal_pct: share(|m| m.steal),
        }
    }

    /// The parts measured (engine, broker, database, bench), summed.
    fn total(&self) -> f64 {
        [self.engine, self.broker, self.db, self.bench].iter().flatten().sum()
    }

    /// What the machine spent besides the parts: other work on it, the kernel's own threads,
    /// and the database server's work for others.
    fn others(&self) -> Option<f64> {
        self.machine.map(|m| m - self.total())
    }
}

/// What the bench ran on, measured once at its start.
struct Machine {
    cpu_model: String,
    nproc: usize,
    /// The median of 200 8 kB writes each followed by `fdatasync`, in the temp dir, µs.
    fsync_us: f64,
    /// The temp dir's file system type (`tmpfs` would make the figure meaningless).
    fsync_fs: String,
}

impl Machine {
    fn probe(dir: &std::path::Path) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, v)| v.trim().to_string()))
            .unwrap_or_else(|| "unknown".into());
        let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
        let fsync_us = fsync_probe(dir).unwrap_or_else(|e| {
            eprintln!("press_load: the fsync probe failed: {e}");
            f64::NAN
        });
        Machine { cpu_model, nproc, fsync_us, fsync_fs: file_system_of(dir) }
    }
}

/// The median time of an 8 kB write followed by `fdatasync`, 200 times over a file written
/// and synced first (as a write-ahead log's segment is), in µs.
fn fsync_probe(dir: &std::path::Path) -> std::io::Result<f64> {
    use std::io::{Seek, Write};
    const WRITES: usize = 200;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path)?;
    let block = [0x5au8; 8192];
    for _ in 0..WRITES {
        file.write_all(&block)?;
    }
    file.sync_all()?;
    file.seek(std::io::SeekFrom::Start(0))?;
    let mut took = Vec::with_capacity(WRITES);
    for _ in 0..WRITES {
        let t = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        took.push(t.elapsed().as_secs_f64() * 1e6);
    }
    drop(file);
    std::fs::remove_file(&path)?;
    took.sort_by(f64::total_cmp);
    Ok(percentile(&took, 0.5))
}

/// The type of the file system `dir` is on, from `/proc/self/mountinfo` (the longest mount
/// point above it).
fn file_system_of(dir: &std::path::Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .filter_map(|l| {
            let mut fields = l.split(' ');
            let mount_point = fields.nth(4)?;
            let fs_type = fields.skip_while(|f| *f != "-").nth(1)?;
            dir.starts_with(mount_point).then_some((mount_point.len(), fs_type))
        })
        .max_by_key(|&(len, _)| len)
        .map_or_else(|| "unknown".into(), |(_, fs)| fs.to_string())
}

/// The load average (1, 5 and 15 minutes) from `/proc/loadavg`.
fn load_average() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .filter_map(|v| v.parse().ok())
        .collect()
}

/// The raw MQTT hop of one run, through its broker, before its presses.
struct Hop {
    p50: f64,
    p99: f64,
    sent: usize,
    lost: usize,
}

/// QoS 1 publishes from one connection to a subscriber (QoS 1) on another, through the broker
/// at `host:port`, at `rate` a second for about 2 s (at most 20,000), on `{tag}-hop/x`: a topic
/// the engine does not subscribe to (it takes `{tag}/v1/devices/+/events`), which the embedded
/// broker's guard lets any client use when it has no accounts (the bench gives it none), as
/// the bench's Mosquitto does (anonymous, no ACL). Timed from writing the publish to reading it
/// off the subscriber's connection: what a press's two MQTT legs cost without the engine.
async fn hop_probe(host: &str, port: u16, tag: &str, rate: u32) -> Hop {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = (rate as usize * 2).clamp(100, 20_000);
    let topic = format!("{tag}-hop/x");
    let arrived_count = Arc::new(AtomicUsize::new(0));
    let done = CancellationToken::new();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    let subscriber = tokio::spawn(subscribe_hop(
        (host.to_owned(), port),
        format!("{tag}-hop-sub"),
        topic.clone(),
        count,
        (arrived_count.clone(), done.clone(), subscribed_tx),
    ));
    match tokio::time::timeout(Duration::from_secs(10), subscribed).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => {
            panic!("the hop's subscriber ended before its SUBACK (the broker closed it, or it could not connect)")
        }
        Err(_) => panic!("no SUBACK for the hop's subscriber within 10 s"),
    }
    let sent_at = Mutex::new(vec![None; count]);
    let plan = Plan {
        mine: (0..count).collect(),
        interval: Duration::from_secs_f64(1.0 / f64::from(rate.max(1))),
        started: Instant::now(),
        message: Box::new(move |n: usize| (topic.clone(), n.to_string())),
    };
    publish(host, port, &format!("{tag}-hop-pub"), plan, &sent_at).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while arrived_count.load(Ordering::Relaxed) < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done.cancel();
    let arrived = subscriber.await.expect("the hop's subscriber ends");
    let sent_at = sent_at.into_inner().unwrap();
    let mut ms: Vec<f64> = sent_at
        .iter()
        .zip(&arrived)
        .filter_map(|(sent, at)| Some(at.as_ref()?.saturating_duration_since((*sent)?).as_secs_f64() * 1000.0))
        .collect();
    ms.sort_by(f64::total_cmp);
    Hop { p50: percentile(&ms, 0.5), p99: percentile(&ms, 0.99), sent: count, lost: count - ms.len() }
}

/// The hop's subscriber: connects, subscribes to `topic` (QoS 1), then notes when each
/// message `n` (its payload) arrives and acknowledges it, until all `count` came or `done`.
async fn subscribe_hop(
    (host, port): (String, u16),
    client_id: String,
    topic: String,
    count: usize,
    (arrived_count, done, subscribed): (
        Arc<std::sync::atomic::AtomicUsize>,
        CancellationToken,
        tokio::sync::oneshot::Sender<()>,
    ),
) -> Vec<Option<Instant>> {
    use anxin_mqtt::rumqttc::mqttbytes::v4::{Connect, Packet, PubAck, Subscribe};
    use anxin_mqtt::rumqttc::mqttbytes::{Error, QoS};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const MAX: usize = 1 << 20;
    let mut arrived = vec![None; count];
    let mut stream = tokio::net::TcpStream::connect((host.as_str(), port)).await.expect("the broker takes the hop");
    stream.set_nodelay(true).unwrap();
    let mut out = bytes::BytesMut::with_capacity(16 * 1024);
    let mut connect = Connect::new(client_id);
    connect.keep_alive = 30;
    Packet::Connect(connect).write(&mut out, MAX).unwrap();
    let mut subscribe = Subscribe::new(topic, QoS::AtLeastOnce);
    subscribe.pkid = 1;
    Packet::Subscribe(subscribe).write(&mut out, MAX).unwrap();
    stream.write_all(&out).await.unwrap();
    out.clear();
    let mut subscribed = Some(subscribed);
    let mut got = 0;
    let mut buf = bytes::BytesMut::with_capacity(64 * 1024);
    let mut at = Instant::now();
    while got < count {
        match Packet::read(&mut buf, MAX) {
            Ok(Packet::SubAck(_)) => {
                let _ = subscribed.take().map(|tx| tx.send(()));
            }
            Ok(Packet::Publish(p)) => {
                if p.qos == QoS::AtLeastOnce {
                    Packet::PubAck(PubAck::new(p.pkid)).write(&mut out, MAX).unwrap();
                }
                let n = std::str::from_utf8(&p.payload).ok().and_then(|s| s.parse::<usize>().ok());
                if let Some(slot) = n.and_then(|n| arrived.get_mut(n)).filter(|slot| slot.is_none()) {
                    *slot = Some(at);
                    got += 1;
                    arrived_count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Ok(_) => {}
            Err(Error::InsufficientBytes(_)) => {
                // Everything read so far is handled: acknowledge it with one write.
                if !out.is_empty() {
                    if stream.write_all(&out).await.is_err() {
                        break;
                    }
                    out.clear();
                }
                buf.reserve(16 * 1024);
                tokio::select! {
                    read = stream.read_buf(&mut buf) => if !matches!(read, Ok(n) if n > 0) { break },
                    () = done.cancelled() => break,
                }
                at = Instant::now();
            }
            Err(e) => panic!("the broker sent the hop's subscriber something that is not MQTT: {e}"),
        }
    }
    let _ = stream.write_all(&out).await;
    out.clear();
    Packet::Disconnect.write(&mut out, MAX).unwrap();
    let _ = stream.write_all(&out).await;
    arrived
}

async fn run_once(args: &Args, rate: u32, dir: &std::path::Path) -> RunResult {
    let load = load_average();
    let presses = (rate * args.seconds) as usize;
    let responders = if args.responders == 0 { presses } else { args.responders };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let tag = format!("load-{rate}-{nanos}");
    let fresh_postgres = args.store.starts_with("postgres");
    let store = if args.store.is_empty() {
        format!("sqlite://{}", dir.join(format!("{tag}.db")).display())
    } else if fresh_postgres {
        // Every rate starts alike: a checkpoint first, so that none lands in the middle of a
        // run because of the one before it, and a database of its own, dropped afterwards.
        postgres_admin(&args.store, "CHECKPOINT").await;
        anxin_store::testkit::fresh_postgres_database(&args.store).await
    } else {
        args.store.clone()
    };
    // The engine, in a process of its own, with the district the seed gives.
    let engine = EngineProcess::start(&EngineArgs {
        seed: u64::from(rate),
        presses,
        responders,
        broker: args.broker.clone(),
        store: store.clone(),
        tag: tag.clone(),
        quick_ack: args.quick_ack,
        in_flight: args.in_flight,
        workers: args.workers,
        idle_devices: args.idle_devices,
        cluster: args.cluster,
    })
    .await;
    let rss_ready_mib = rss_mib(engine.pid);
    let (http, mqtt) = (engine.http, engine.mqtt.clone());

    // The console: records when each device's first delta arrives, and counts incidents.
    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; presses]));
    let ws = {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{http}/ws").into_client_request().unwrap();
        request.headers_mut().insert("Cookie", sign_in(http).await.parse().unwrap());
        // The first frames carry the whole roster (about 250 bytes a responder): more than
        // tungstenite's 16 MiB default for 100,000 responders.
        let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        tokio_tungstenite::connect_async_with_config(request, Some(config), true).await.expect("console connects").0
    };
    let seen: Arc<Mutex<HashMap<usize, (Instant, u64)>>> = Arc::default();
    let doubled = Arc::new(Mutex::new(0usize));
    let console = tokio::spawn({
        let (seen, doubled) = (seen.clone(), doubled.clone());
        async move {
            let mut ws = ws;
            loop {
                let msg = match ws.next().await {
                    Some(Ok(msg)) => msg,
                    Some(Err(e)) => {
                        eprintln!("the console's connection failed: {e}");
                        break;
                    }
                    None => break,
                };
                let at = Instant::now();
                let tokio_tungstenite::tungstenite::Message::Text(text) = msg else { continue };
                // Only the frame's type and the incident's id and device are read: a JSON
                // tree of every frame cost the bench a tenth of its process at 10,000/s.
                let Ok(frame) = serde_json::from_str::<Frame>(&text) else { continue };
                let (true, Some(incident)) = (frame.kind == "incident", frame.incident) else { continue };
                let Some(n) = incident.device_id.strip_prefix("lb-d").and_then(|n| n.parse::<usize>().ok()) else {
                    continue;
                };
                let id = incident.id;
                let mut seen = seen.lock().unwrap();
                match seen.get(&n) {
                    Some((_, first_id)) if *first_id != id => *doubled.lock().unwrap() += 1,
                    Some(_) => {}
                    None => {
                        seen.insert(n, (at, id));
                    }
                }
            }
        }
    });

    let (host, port) = mqtt.trim_start_matches("mqtt://").rsplit_once(':').unwrap();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().unwrap();
    // The raw MQTT hop through the same broker, at the same rate, just before the presses.
    let hop = hop_probe(host, port, &tag, rate).await;

    // Whose CPU counts: the engine, the broker and the database server (each found by the
    // port it listens on, unless inside the engine), and this process.
    let parts = Parts {
        engine: engine.pid,
        broker: if args.broker == "embedded" {
            Server::InEngine
        } else {
            Server::find(&args.broker, 1883, "mosquitto")
        },
        db: if fresh_postgres { Server::find(&args.store, 5432, "postgres") } else { Server::InEngine },
        database: store.rsplit('/').next().unwrap_or_default().split('?').next().unwrap_or_default().to_string(),
    };
    // PostgreSQL's waits on the WAL, looked at while the presses run.
    let wal_stop = CancellationToken::new();
    let wal_watch = match fresh_postgres {
        true => Some(watch_wal_waits(&args.store, parts.database.clone(), wal_stop.clone()).await),
        false => None,
    };
    // The devices: `publishers` connections sharing the rate, each press from its own device.
    let cpu_before = CpuSample::take(&parts);
    let started = Instant::now();
    let mut tasks = Vec::new();
    // The idle devices' heartbeats, on a connection of their own, for as long as the presses.
    let beats = (args.heartbeats * args.seconds) as usize;
    let heartbeats = (beats > 0).then(|| {
        let (tag, host, idle) = (tag.clone(), host.to_owned(), args.idle_devices);
        let client_id = format!("{tag}-beats");
        let interval = Duration::from_secs_f64(1.0 / f64::from(args.heartbeats));
        tokio::spawn(async move {
            let message = Box::new(move |n: usize| {
                let payload = format!(
                    r#"{{"msg_id":"h{n}","type":"heartbeat","ts":{},"battery_pct":{},"rssi":-{}}}"#,
                    anxin_proto::wall_clock_now().millis(),
                    40 + n % 60,
                    50 + n % 40
                );
                (format!("{tag}/v1/devices/lb-h{}/events", n % idle), payload)
            });
            let sent = Mutex::new(vec![None; beats]);
            let plan = Plan { mine: (0..beats).collect(), interval, started, message };
            publish(&host, port, &client_id, plan, &sent).await
        })
    });
    for p in 0..args.publishers {
        let (sent_at, tag, publishers, host) = (sent_at.clone(), tag.clone(), args.publishers, host.to_owned());
        let mine: Vec<usize> = (p..presses).step_by(publishers).collect();
        let interval = Duration::from_secs_f64(publishers as f64 / f64::from(rate));
        let client_id = format!("{tag}-pub{p}");
        tasks.push(tokio::spawn(async move {
            let message = Box::new(move |n: usize| {
                let payload =
                    format!(r#"{{"msg_id":"m{n}","type":"sos","ts":{}}}"#, anxin_proto::wall_clock_now().millis());
                (format!("{tag}/v1/devices/lb-d{n}/events"), payload)
            });
            let plan = Plan { mine, interval, started, message };
            publish(&host, port, &client_id, plan, &sent_at).await
        }));
    }
    let mut last_send = started;
    for t in tasks {
        last_send = last_send.max(t.await.unwrap());
    }
    let send_secs = last_send.duration_since(started).as_secs_f64();
    let heartbeat_rate = match heartbeats {
        Some(task) => beats as f64 / task.await.unwrap().duration_since(started).as_secs_f64().max(0.001),
        None => 0.0,
    };
    // Wait for the console to see everything, up to 60 s. The CPU is read again whenever it
    // has seen more, so the figures end with the last press it saw: a run that lost presses
    // is not charged for the machine's other work while the bench waited for them.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut cpu_after, mut window_end, mut counted) = (cpu_before.clone(), started, None);
    loop {
        let now_seen = seen.lock().unwrap().len();
        if counted != Some(now_seen) {
            (cpu_after, window_end, counted) = (CpuSample::take(&parts), Instant::now(), Some(now_seen));
        }
        if now_seen >= presses || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let window_secs = window_end.duration_since(started).as_secs_f64();
    let cpu = CpuPerPress::between(&cpu_before, &cpu_after, presses, clock_ticks());
    let engine_cores = cpu.engine.map(|us| us * presses as f64 / 1e6 / window_secs);
    let rss_end_mib = rss_mib(engine.pid);
    wal_stop.cancel();
    let wal_waits = match wal_watch {
        Some(task) => task.await.ok().map(|(mut waits, first)| {
            waits.longest_at_s = first.map_or(0.0, |at| at.saturating_duration_since(started).as_secs_f64());
            waits
        }),
        None => None,
    };
    let (batches, batch_mean, commit_ms, read_to_stored_ms, step_ms) = batch_stats(http).await;
    engine.stop().await;
    console.abort();
    if fresh_postgres {
        anxin_store::testkit::drop_postgres_database(&args.store, &store).await;
    }

    let sent_at = sent_at.lock().unwrap();
    let seen = seen.lock().unwrap();
    let mut latencies = Vec::new();
    let mut by_order = Vec::new();
    for (n, (at, _)) in seen.iter() {
        if let Some(sent) = sent_at[*n] {
            let ms = at.duration_since(sent).as_secs_f64() * 1000.0;
            latencies.push(ms);
            by_order.push((*n, ms));
        }
    }
    latencies.sort_by(f64::total_cmp);
    by_order.sort_by_key(|(n, _)| *n);
    if let Some(path) = &args.timeline {
        write_timeline(path, rate, &sent_at, &by_order)
            .unwrap_or_else(|e| panic!("cannot write the timeline {}: {e}", path.display()));
    }
    let tenth = (by_order.len() / 10).max(1);
    let mut first: Vec<f64> = by_order.iter().take(tenth).map(|(_, ms)| *ms).collect();
    let mut last: Vec<f64> = by_order.iter().rev().take(tenth).map(|(_, ms)| *ms).collect();
    first.sort_by(f64::total_cmp);
    last.sort_by(f64::total_cmp);
    let doubled = *doubled.lock().unwrap();
    RunResult {
        rate,
        sent: presses,
        seen: seen.len(),
        doubled,
        achieved_rate: presses as f64 / send_secs.max(0.001),
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        max: latencies.last().copied().unwrap_or(f64::NAN),
        first_tenth_p50: percentile(&first, 0.5),
        last_tenth_p50: percentile(&last, 0.5),
        batches,
        batch_mean,
        commit_ms,
        read_to_stored_ms,
        step_ms,
        load,
        hop,
        cpu,
        heartbeats: beats,
        heartbeat_rate,
        rss_ready_mib,
        rss_end_mib,
        engine_cores,
        broker_at: parts.broker.describe(),
        db_at: parts.db.describe(),
        wal_waits,
    }
}

/// A process's resident memory (`VmRSS` in `/proc/PID/status`), MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib / 1024.0)
}

const TIMELINE_HEADER: &str = "rate,sent_ms,latency_ms,sent_unix_ms";

/// A timeline file given may be appended to: new, or written with this header (rows of four
/// columns under an older file's three would be read wrongly).
fn check_timeline(path: &std::path::Path) -> std::io::Result<()> {
    use std::io::BufRead;
    if !path.exists() {
        return Ok(());
    }
    let mut first = String::new();
    std::io::BufReader::new(std::fs::File::open(path)?).read_line(&mut first)?;
    if first.trim_end() != TIMELINE_HEADER {
        return Err(std::io::Error::other(format!(
            "its first line is {:?}, not {TIMELINE_HEADER:?} (another version of press_load wrote it): \
             give a new file",
            first.trim_end()
        )));
    }
    Ok(())
}

/// One CSV line per press seen: the rate, when it was sent (ms from the run's first send), how
/// long it took to reach the console (ms), and when it was sent by the wall clock (ms since
/// 1970, to line a stall up with what else ran then: `perf record -k realtime`, PostgreSQL's
/// log, `strace -ttt`). A header is written to a new file.
fn write_timeline(
    path: &std::path::Path,
    rate: u32,
    sent_at: &[Option<Instant>],
    by_order: &[(usize, f64)],
) -> std::io::Result<()> {
    use std::io::Write;
    let new = !path.exists();
    check_timeline(path)?;
    let mut out = std::io::BufWriter::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?);
    if new {
        writeln!(out, "{TIMELINE_HEADER}")?;
    }
    let Some(first) = sent_at.iter().flatten().min().copied() else { return Ok(()) };
    // The wall clock at `first`, from a reading of both clocks now.
    let (now, wall) = (Instant::now(), std::time::SystemTime::now());
    let since_1970 = wall.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let first_unix_ms = (since_1970.as_secs_f64() - now.duration_since(first).as_secs_f64()) * 1000.0;
    for (n, ms) in by_order {
        if let Some(sent) = sent_at[*n] {
            let sent_ms = sent.duration_since(first).as_secs_f64() * 1000.0;
            writeln!(out, "{rate},{sent_ms:.3},{ms:.3},{:.3}", first_unix_ms + sent_ms)?;
        }
    }
    out.flush()
}

fn main() {
    tracing_subscriber::fmt().with_env_filter("warn,rumqttd=off").with_writer(std::io::stderr).init();
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--serve-engine") {
        return serve_engine(EngineArgs::parse(&argv[2..]));
    }
    // The bench's own side: the devices and the console, on tokio's default threads.
    tokio::runtime::Runtime::new().expect("the bench's runtime").block_on(bench());
}

async fn bench() {
    let args = parse_args();
    if let Some(path) = &args.timeline {
        if let Err(e) = check_timeline(path) {
            usage_error(&format!("--timeline {}: {e}", path.display()));
        }
    }
    if let Some(out) = &args.plot {
        let from = args.from.as_ref().expect("--plot needs --from FILE (written by --record)");
        let text = std::fs::read_to_string(from).unwrap_or_else(|e| panic!("cannot read {}: {e}", from.display()));
        let records: Vec<Record> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: {e}: {l}", from.display())))
            .collect();
        plot(&records, out).unwrap_or_else(|e| panic!("cannot draw {}: {e}", out.display()));
        println!("wrote {}", out.display());
        return;
    }
    let label = args
        .label
        .clone()
        .unwrap_or_else(|| format!("{} + {}", args.broker, if args.store.is_empty() { "sqlite" } else { "postgres" }));
    let dir = tempfile::tempdir().expect("temp dir");
    let machine = Machine::probe(dir.path());
    println!(
        "broker={} store={} seconds={} publishers={} responders={} commits_in_flight={} worker_threads={}",
        args.broker,
        if args.store.is_empty() { "sqlite (temp file)" } else { args.store.as_str() },
        args.seconds,
        args.publishers,
        if args.responders == 0 { "one per press".to_string() } else { args.responders.to_string() },
        args.in_flight.map_or_else(|| "unset".to_string(), |n| n.to_string()),
        args.workers.map_or_else(|| "unset".to_string(), |n| n.to_string()),
    );
    println!(
        "machine: cpu={:?} nproc={} fsync 8 kB median {:.0} µs ({}, {}); the engine runs in its own process",
        machine.cpu_model,
        machine.nproc,
        machine.fsync_us,
        machine.fsync_fs,
        dir.path().display(),
    );
    println!(
        "{:>7} {:>7} {:>7} {:>5} {:>5} {:>9} {:>9} {:>9} {:>9} {:>11} {:>8} {:>7} {:>7} {:>9} {:>9} {:>10} \
         {:>5} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>8}",
        "rate/s",
        "sent",
        "seen",
        "lost",
        "dup",
        "achieved",
        "p50 ms",
        "p99 ms",
        "max ms",
        "backlog?",
        "commits",
        "msg/c",
        "step ms",
        "commit ms",
        "stored ms",
        "sustained",
        "load",
        "hop50",
        "hop99",
        "p50/h50",
        "p99/h99",
        "eng µs",
        "mqtt µs",
        "db µs",
        "bench µs",
        "total µs",
    );
    // A part inside the engine's process (the embedded broker, SQLite) has no figure of its own.
    let us = |v: Option<f64>| v.map_or_else(|| "in eng".to_string(), |v| format!("{v:.1}"));
    for &rate in &args.rates {
        let r = run_once(&args, rate, dir.path()).await;
        let lost = r.sent - r.seen;
        // A backlog shows as the last presses waiting much longer than the first.
        let backlog = r.last_tenth_p50 > (r.first_tenth_p50 * 3.0).max(r.first_tenth_p50 + 50.0);
        let sustained = lost == 0 && r.doubled == 0 && r.achieved_rate >= 0.95 * f64::from(r.rate) && !backlog;
        if r.hop.lost > 0 {
            eprintln!("press_load: the MQTT hop lost {} of {} messages", r.hop.lost, r.hop.sent);
        }
        let (over_hop50, over_hop99) = (r.p50 / r.hop.p50, r.p99 / r.hop.p99);
        println!(
            "{:>7} {:>7} {:>7} {:>5} {:>5} {:>9.0} {:>9.1} {:>9.1} {:>9.1} {:>11} {:>8} {:>7.1} {:>7.2} {:>9.2} {:>9.2} {:>10} \
             {:>5.1} {:>6.2} {:>6.2} {:>7.1} {:>7.1} {:>7} {:>7} {:>7} {:>8} {:>8.1}",
            r.rate,
            r.sent,
            r.seen,
            lost,
            r.doubled,
            r.achieved_rate,
            r.p50,
            r.p99,
            r.max,
            if backlog { format!("{:.0}->{:.0}", r.first_tenth_p50, r.last_tenth_p50) } else { "no".into() },
            r.batches,
            r.batch_mean,
            r.step_ms,
            r.commit_ms,
            r.read_to_stored_ms,
            if sustained { "yes" } else { "NO" },
            r.load.first().copied().unwrap_or(f64::NAN),
            r.hop.p50,
            r.hop.p99,
            over_hop50,
            over_hop99,
            us(r.cpu.engine),
            us(r.cpu.broker),
            us(r.cpu.db),
            us(r.cpu.bench),
            r.cpu.total(),
        );
        let mib = |v: Option<f64>| v.map_or_else(|| "?".to_string(), |v| format!("{v:.0} MiB"));
        println!(
            "        idle devices {}, heartbeats {} at {:.0}/s; engine resident {} when ready, {} at the end; \
             engine busy {} of a core",
            args.idle_devices,
            r.heartbeats,
            r.heartbeat_rate,
            mib(r.rss_ready_mib),
            mib(r.rss_end_mib),
            r.engine_cores.map_or_else(|| "?".to_string(), |c| format!("{:.1}%", c * 100.0)),
        );
        let pct = |v: Option<f64>| v.map_or_else(|| "?".to_string(), |v| format!("{v:.0}%"));
        let num = |v: Option<f64>| v.map_or_else(|| "?".to_string(), |v| format!("{v:.1}"));
        println!(
            "        the machine: {} µs a press on all cores ({} idle, {} stolen), of which {} µs not the parts \
             above{}; broker {}, database {}",
            num(r.cpu.machine),
            pct(r.cpu.idle_pct),
            pct(r.cpu.steal_pct),
            num(r.cpu.others()),
            r.cpu.db_others.map_or_else(String::new, |v| format!(" (PostgreSQL's for other databases {v:.1} µs)")),
            r.broker_at,
            r.db_at,
        );
        if let Some(w) = &r.wal_waits {
            let longest = match w.longest_ms > 0.0 {
                true => {
                    format!("the longest wait seen {:.0} ms, from {:.2} s into the run", w.longest_ms, w.longest_at_s)
                }
                false => "no commit seen waiting in two looks in a row".to_string(),
            };
            println!(
                "        PostgreSQL's WAL: a commit waited on it in {} of {} looks (every {} ms); {longest}{}",
                w.waiting,
                w.looks,
                WAL_LOOK_EVERY.as_millis(),
                w.failed.map_or_else(String::new, |why| format!(" ({why})")),
            );
        }
        if let Some(path) = &args.record {
            let finite = |v: f64| v.is_finite().then_some(v);
            let record = Record {
                label: label.clone(),
                rate: r.rate,
                p50_ms: r.p50,
                p99_ms: r.p99,
                max_ms: r.max,
                lost,
                doubled: r.doubled,
                sustained,
                sent: Some(r.sent),
                cpu_model: Some(machine.cpu_model.clone()),
                nproc: Some(machine.nproc),
                load_avg: Some(r.load.clone()),
                fsync_us: finite(machine.fsync_us),
                hop_p50_ms: finite(r.hop.p50),
                hop_p99_ms: finite(r.hop.p99),
                p50_over_hop50: finite(over_hop50),
                p99_over_hop99: finite(over_hop99),
                cpu_us_engine: r.cpu.engine,
                cpu_us_broker: r.cpu.broker,
                cpu_us_db: r.cpu.db,
                cpu_us_bench: r.cpu.bench,
                cpu_us_total: finite(r.cpu.total()),
                commits_in_flight: args.in_flight,
                worker_threads: args.workers,
                idle_devices: Some(args.idle_devices),
                heartbeats_per_s: Some(r.heartbeat_rate),
                engine_rss_ready_mib: r.rss_ready_mib,
                engine_rss_end_mib: r.rss_end_mib,
                engine_cores: r.engine_cores,
                cpu_us_db_others: r.cpu.db_others,
                cpu_us_machine: r.cpu.machine,
                cpu_us_others: r.cpu.others(),
                idle_pct: r.cpu.idle_pct,
                steal_pct: r.cpu.steal_pct,
                wal_looks: r.wal_waits.as_ref().map(|w| w.looks),
                wal_waiting_looks: r.wal_waits.as_ref().map(|w| w.waiting),
                wal_longest_wait_ms: r.wal_waits.as_ref().map(|w| w.longest_ms),
                wal_longest_wait_at_s: r.wal_waits.as_ref().map(|w| w.longest_at_s),
            };
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
            writeln!(file, "{}", serde_json::to_string(&record).unwrap()).unwrap();
        }
    }
}

/// One rate's result, as `--record` keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    label: String,
    rate: u32,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    lost: usize,
    doubled: usize,
    sustained: bool,
    // Added with the engine in its own process; absent from older records, and null where a
    // part is inside the engine (the embedded broker, SQLite) or was not measured.
    /// Presses sent.
    #[serde(default)]
    sent: Option<usize>,
    /// The machine: `model name` from /proc/cpuinfo, the cores the bench may use, the load
    /// average (1, 5, 15 min) before the rate, and the median 8 kB write + fdatasync in the
    /// run's temp dir, µs.
    #[serde(default)]
    cpu_model: Option<String>,
    #[serde(default)]
    nproc: Option<usize>,
    #[serde(default)]
    load_avg: Option<Vec<f64>>,
    #[serde(default)]
    fsync_us: Option<f64>,
    /// The raw MQTT hop (QoS 1 publish to another connection's subscriber, same broker, same
    /// rate) before the presses, and the presses' p50 and p99 as ratios to it.
    #[serde(default)]
    hop_p50_ms: Option<f64>,
    #[serde(default)]
    hop_p99_ms: Option<f64>,
    #[serde(default)]
    p50_over_hop50: Option<f64>,
    #[serde(default)]
    p99_over_hop99: Option<f64>,
    /// CPU µs per press sent (utime + stime from /proc) of the engine's process, the
    /// Mosquitto processes, the PostgreSQL processes, the bench, and their sum.
    #[serde(default)]
    cpu_us_engine: Option<f64>,
    #[serde(default)]
    cpu_us_broker: Option<f64>,
    #[serde(default)]
    cpu_us_db: Option<f64>,
    #[serde(default)]
    cpu_us_bench: Option<f64>,
    #[serde(default)]
    cpu_us_total: Option<f64>,
    /// `store.commits_in_flight` given to the engine (`--in-flight`); null when unset.
    #[serde(default)]
    commits_in_flight: Option<usize>,
    /// `runtime.worker_threads` given to the engine (`--workers`); null when unset.
    #[serde(default)]
    worker_threads: Option<usize>,
    /// Registered devices that never pressed (`--idle-devices`), the heartbeats a second they
    /// sent, the engine's resident memory once ready and at the end (MiB), and its CPU over
    /// the run in cores. Absent from older records.
    #[serde(default)]
    idle_devices: Option<usize>,
    #[serde(default)]
    heartbeats_per_s: Option<f64>,
    #[serde(default)]
    engine_rss_ready_mib: Option<f64>,
    #[serde(default)]
    engine_rss_end_mib: Option<f64>,
    #[serde(default)]
    engine_cores: Option<f64>,
    /// Added with the broker and the database found by the port they listen on: the
    /// database server's CPU for others (other databases' backends, backends that ended)
    /// per press, not in `cpu_us_db` (null when the server was found by name, or is SQLite);
    /// every core's busy time per press (from /proc/stat); what of it the parts do not
    /// account for; and the shares of the machine's time idle and stolen, per cent. Absent
    /// from older records, whose `cpu_us_db` counted every `postgres` process and whose
    /// `cpu_us_broker` every `mosquitto` process.
    #[serde(default)]
    cpu_us_db_others: Option<f64>,
    #[serde(default)]
    cpu_us_machine: Option<f64>,
    #[serde(default)]
    cpu_us_others: Option<f64>,
    #[serde(default)]
    idle_pct: Option<f64>,
    #[serde(default)]
    steal_pct: Option<f64>,
    /// PostgreSQL only: looks at `pg_stat_activity` during the run (every 10 ms), those that
    /// found a commit waiting on the WAL, and the longest one transaction was seen waiting
    /// on it (ms, a lower bound) and when that began (s from the first press). Absent from
    /// records before 2026-12-07 and from SQLite's.
    #[serde(default)]
    wal_looks: Option<usize>,
    #[serde(default)]
    wal_waiting_looks: Option<usize>,
    #[serde(default)]
    wal_longest_wait_ms: Option<f64>,
    #[serde(default)]
    wal_longest_wait_at_s: Option<f64>,
}

/// p50 (thick) and p99 (thin) against the rate, one colour per label, on a log scale: lines
/// through the median of the runs at each rate, a dot for every run (hollow when it was not
/// sustained), and the aims as crosses.
fn plot(records: &[Record], out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    type Pick = fn(&Record) -> f64;
    let mut labels: Vec<&str> = Vec::new();
    for r in records {
        if !labels.contains(&r.label.as_str()) {
            labels.push(&r.label);
        }
    }
    let top_rate = records.iter().map(|r| r.rate).max().unwrap_or(1000) as f64 * 1.05;
    let top_ms = records.iter().map(|r| r.p99_ms).filter(|v| v.is_finite()).fold(100.0f64, f64::max) * 1.5;
    let root = SVGBackend::new(out, (900, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("press → console against the press rate (persist before ack)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..top_rate, (0.5f64..top_ms).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("presses per second (a hollow dot: a run that was not sustained)")
        .y_desc("milliseconds (log scale)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y}"))
        .draw()?;
    let colours = [RGBColor(30, 100, 200), RGBColor(220, 90, 40), RGBColor(60, 150, 60), RGBColor(130, 60, 160)];
    for (i, label) in labels.iter().enumerate() {
        let colour = colours[i % colours.len()];
        let mine: Vec<&Record> = records.iter().filter(|r| r.label == *label).collect();
        let mut rates: Vec<u32> = mine.iter().map(|r| r.rate).collect();
        rates.sort_unstable();
        rates.dedup();
        let lines: [(&str, Pick, u32); 2] = [("p50", |r| r.p50_ms, 3), ("p99", |r| r.p99_ms, 1)];
        for (what, pick, width) in lines {
            // The line joins the medians of the runs at each rate; every run is a dot.
            let medians: Vec<(f64, f64)> = rates
                .iter()
                .map(|&rate| {
                    let mut v: Vec<f64> = mine.iter().filter(|r| r.rate == rate).map(|r| pick(r)).collect();
                    v.sort_by(f64::total_cmp);
                    let median =
                        if v.len() % 2 == 0 { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 } else { v[v.len() / 2] };
                    (f64::from(rate), median.max(0.5))
                })
                .collect();
            chart
                .draw_series(LineSeries::new(medians, colour.stroke_width(width)))?
                .label(format!("{label}: {what}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(width)));
            chart.draw_series(mine.iter().map(|r| {
                let style = if r.sustained { colour.filled() } else { colour.stroke_width(1) };
                Circle::new((f64::from(r.rate), pick(r).max(0.5)), 3, style)
            }))?;
        }
    }
    let aims = [(2000.0, 5.0), (10000.0, 20.0)];
    chart
        .draw_series(aims.iter().map(|&p| Cross::new(p, 6, BLACK.stroke_width(2))))?
        .label("aim for p99 (5 ms at 2,000/s, 20 ms at 10,000/s)")
        .legend(|(x, y)| Cross::new((x + 10, y), 5, BLACK.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backend_title_names_its_database() {
        let backend = "postgres: 15/main: postgres anxin_test_12_34_0 127.0.0.1(54321) idle   ";
        assert_eq!(postgres_backend_database(backend), Some("anxin_test_12_34_0"));
        // No cluster name, a Unix socket, and an activity with brackets of its own.
        assert_eq!(postgres_backend_database("postgres: app test [local] idle"), Some("test"));
        let aborted = "postgres: 15/main: u other ::1(5000) idle in transaction (aborted)";
        assert_eq!(postgres_backend_database(aborted), Some("other"));
        for own in [
            "postgres: 15/main: checkpointer",
            "postgres: 15/main: walwriter",
            "postgres: 15/main: autovacuum worker",
            "postgres: parallel worker for PID 77",
            "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main",
        ] {
            assert_eq!(postgres_backend_database(own), None, "{own}");
        }
    }

    #[test]
    fn the_listening_socket_is_found_by_its_port() {
        let table = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:075B 00000000:0000 0A 00000000:00000000 00:00000000 00000000   105        0 7314 1 0 100 0 0 10 0
   1: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   107        0 9101 1 0 100 0 0 10 0
   2: 0100007F:075B 0100007F:C350 01 00000000:00000000 00:00000000 00000000   105        0 8800 1 0 20 4 30 10 -1
";
        // 0x075B is 1883, 0x1538 is 5432; the third line is a connection, not a listener.
        assert_eq!(listening_inodes(table, 1883), vec![7314]);
        assert_eq!(listening_inodes(table, 5432), vec![9101]);
        assert_eq!(listening_inodes(table, 18830), Vec::<u64>::new());
    }

    #[test]
    fn a_server_urls_port() {
        assert_eq!(url_port("mqtt://127.0.0.1:1883", 1), Some(1883));
        assert_eq!(url_port("postgres://postgres@127.0.0.1:5432/test", 1), Some(5432));
        assert_eq!(url_port("postgres://u:secret@db/test?sslmode=disable", 5432), Some(5432));
        assert_eq!(url_port("mqtt://[::1]:18830", 1), Some(18830));
        assert_eq!(url_port("mqtt://[::1]", 1883), Some(1883));
    }

    #[test]
    fn cpu_per_press_counts_each_part_and_leaves_others_out() {
        let sample = |db: &[(u32, u64, bool)], busy: u64, idle: u64| CpuSample {
            engine: Some(100),
            broker: Some(10),
            db: Some(db.iter().map(|&(pid, t, c)| (pid, (t, c))).collect()),
            bench: Some(5),
            machine: Some(MachineTicks { busy, idle, steal: 0 }),
        };
        // The postmaster (1), a server process (2), the run's backend (3, new in the window),
        // another database's backends (4, and 5, which ended in the window after 3 ticks in
        // it) and the ended children (0: 10 ticks, then pid 5's 33).
        let before = sample(&[(0, 50, false), (1, 1, true), (2, 4, true), (4, 20, false), (5, 30, false)], 1000, 1000);
        let mut after = sample(&[(0, 93, false), (1, 2, true), (2, 6, true), (3, 7, true), (4, 25, false)], 1100, 1100);
        after.engine = Some(130);
        // 100 ticks a second and 1,000 presses: a tick is 10 µs a press.
        let cpu = CpuPerPress::between(&before, &after, 1000, 100.0);
        assert_eq!(cpu.engine, Some(300.0));
        assert_eq!(cpu.broker, Some(0.0));
        assert_eq!(cpu.db, Some(100.0), "1 + 2 + 7 ticks: the postmaster, its server process, the run's backend");
        assert_eq!(cpu.db_others, Some(180.0), "10 ended before, 3 of pid 5 in the window, 5 of pid 4");
        assert_eq!(cpu.machine, Some(1000.0));
        assert_eq!(cpu.idle_pct, Some(50.0));
        assert_eq!(cpu.others(), Some(1000.0 - 300.0 - 100.0));
        // Found by name, every process counts, each with its ended children (the postmaster,
        // 1, with what 0 held above), and nothing is told apart: 133 - 105 ticks.
        let before = sample(&[(1, 51, true), (2, 4, true), (4, 20, true), (5, 30, true)], 1000, 1000);
        let after = sample(&[(1, 95, true), (2, 6, true), (3, 7, true), (4, 25, true)], 1100, 1100);
        let cpu = CpuPerPress::between(&before, &after, 1000, 100.0);
        assert_eq!(cpu.db, Some(280.0));
        assert_eq!(cpu.db_others, None);
    }
}
