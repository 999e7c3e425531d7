//! The end-to-end load bench: presses at a fixed rate over a real broker into a real store,
//! measured from the device's publish to the console's delta.
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
//! (no backlog building up). The engine, the devices and the console share this process and
//! the machine's cores, so the figures are conservative.
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
}

const USAGE: &str = "\
usage: press_load [--broker embedded|mqtt://HOST:PORT] [--store postgres://...] [--rates 1000,2000,...]
                  [--seconds 10] [--publishers 4] [--responders 2000] [--quick-ack]
                  [--record FILE.jsonl] [--label NAME] [--timeline FILE.csv]
       press_load --plot OUT.svg --from FILE.jsonl

  --broker      the broker the engine and the devices use (default: the embedded one)
  --store       PostgreSQL server URL; a fresh database per rate (default: SQLite in a temp dir)
  --rates       presses a second, one run of --seconds each, in order (default 1000)
  --seconds     how long each rate runs (default 10)
  --publishers  device connections that share the presses (default 4)
  --responders  responders in the district, free at the start; 0 gives one per press (default 2000)
  --quick-ack   mqtt.quick_ack for an external broker (always on with the embedded one)
  --record      append one JSON line per rate to FILE, named by --label
  --timeline    append every press to FILE as CSV: rate, ms from the run's first send to its
                send, ms from its send to the console; to see when in a run presses waited
  --plot        draw p50 and p99 against the rate for every label in --from, and run nothing
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
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => usage_error(&format!("unknown flag {other}")),
        }
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

fn district(devices: usize, responders: usize, rng: &mut SmallRng) -> Registry {
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

/// One publisher's share of the presses: the `k`th is due `k × interval` after `started`.
struct Plan {
    mine: Vec<usize>,
    interval: Duration,
    started: Instant,
    tag: String,
}

/// One MQTT connection pressing for many devices, QoS 1. The presses that are due when it
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

    let Plan { mine, interval, started, tag } = plan;
    let mut pkid: u16 = 0;
    let mut k = 0;
    while k < mine.len() {
        tokio::time::sleep_until((started + interval.mul_f64(k as f64)).into()).await;
        let now = Instant::now();
        {
            let mut sent_at = sent_at.lock().unwrap();
            while k < mine.len() && started + interval.mul_f64(k as f64) <= now {
                let n = mine[k];
                let payload =
                    format!(r#"{{"msg_id":"m{n}","type":"sos","ts":{}}}"#, anxin_proto::wall_clock_now().millis());
                let mut press = Publish::new(format!("{tag}/v1/devices/lb-d{n}/events"), QoS::AtLeastOnce, payload);
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

async fn run_once(args: &Args, rate: u32, dir: &std::path::Path) -> RunResult {
    let presses = (rate * args.seconds) as usize;
    let mut rng = SmallRng::seed_from_u64(u64::from(rate));
    let responders = if args.responders == 0 { presses } else { args.responders };
    let registry = district(presses, responders, &mut rng);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let tag = format!("load-{rate}-{nanos}");

    let mut config = Config::defaults();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.broker = args.broker.clone();
    config.mqtt.quick_ack = args.quick_ack;
    config.mqtt.embedded_listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.client_id = tag.clone();
    config.mqtt.topic_root = tag.clone();
    config.consoles.replay = presses.max(16);
    config.ingest.queue = 16_384;
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
    config.store.url = anxind::config::Secret::new(store.clone());
    let app = App::build(config, Some(registry)).await.expect("engine builds");
    let http = app.http_addr();
    let mqtt = app.mqtt_url();
    let shutdown = CancellationToken::new();
    let engine = tokio::spawn(app.run(shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;

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

    // The devices: `publishers` connections sharing the rate, each press from its own device.
    let (host, port) = mqtt.trim_start_matches("mqtt://").rsplit_once(':').unwrap();
    let port: u16 = port.parse().unwrap();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..args.publishers {
        let (sent_at, tag, publishers, host) = (sent_at.clone(), tag.clone(), args.publishers, host.to_owned());
        let mine: Vec<usize> = (p..presses).step_by(publishers).collect();
        let interval = Duration::from_secs_f64(publishers as f64 / f64::from(rate));
        let client_id = format!("{tag}-pub{p}");
        tasks.push(tokio::spawn(async move {
            let plan = Plan { mine, interval, started, tag };
            publish(&host, port, &client_id, plan, &sent_at).await
        }));
    }
    let mut last_send = started;
    for t in tasks {
        last_send = last_send.max(t.await.unwrap());
    }
    let send_secs = last_send.duration_since(started).as_secs_f64();
    // Wait for the console to see everything, up to 60 s.
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.lock().unwrap().len() < presses && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (batches, batch_mean, commit_ms, read_to_stored_ms, step_ms) = batch_stats(http).await;
    shutdown.cancel();
    let _ = engine.await;
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
    }
}

/// One CSV line per press seen: the rate, when it was sent (ms from the run's first send) and
/// how long it took to reach the console (ms). A header is written to a new file.
fn write_timeline(
    path: &std::path::Path,
    rate: u32,
    sent_at: &[Option<Instant>],
    by_order: &[(usize, f64)],
) -> std::io::Result<()> {
    use std::io::Write;
    let new = !path.exists();
    let mut out = std::io::BufWriter::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?);
    if new {
        writeln!(out, "rate,sent_ms,latency_ms")?;
    }
    let Some(first) = sent_at.iter().flatten().min().copied() else { return Ok(()) };
    for (n, ms) in by_order {
        if let Some(sent) = sent_at[*n] {
            writeln!(out, "{rate},{:.3},{ms:.3}", sent.duration_since(first).as_secs_f64() * 1000.0)?;
        }
    }
    out.flush()
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().with_env_filter("warn,rumqttd=off").with_writer(std::io::stderr).init();
    let args = parse_args();
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
    println!(
        "broker={} store={} seconds={} publishers={} responders={}",
        args.broker,
        if args.store.is_empty() { "sqlite (temp file)" } else { args.store.as_str() },
        args.seconds,
        args.publishers,
        if args.responders == 0 { "one per press".to_string() } else { args.responders.to_string() },
    );
    println!(
        "{:>7} {:>7} {:>7} {:>5} {:>5} {:>9} {:>9} {:>9} {:>9} {:>11} {:>8} {:>7} {:>7} {:>9} {:>9} {:>10}",
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
        "sustained"
    );
    for &rate in &args.rates {
        let r = run_once(&args, rate, dir.path()).await;
        let lost = r.sent - r.seen;
        // A backlog shows as the last presses waiting much longer than the first.
        let backlog = r.last_tenth_p50 > (r.first_tenth_p50 * 3.0).max(r.first_tenth_p50 + 50.0);
        let sustained = lost == 0 && r.doubled == 0 && r.achieved_rate >= 0.95 * f64::from(r.rate) && !backlog;
        println!(
            "{:>7} {:>7} {:>7} {:>5} {:>5} {:>9.0} {:>9.1} {:>9.1} {:>9.1} {:>11} {:>8} {:>7.1} {:>7.2} {:>9.2} {:>9.2} {:>10}",
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
            if sustained { "yes" } else { "NO" }
        );
        if let Some(path) = &args.record {
            let record = Record {
                label: label.clone(),
                rate: r.rate,
                p50_ms: r.p50,
                p99_ms: r.p99,
                max_ms: r.max,
                lost,
                doubled: r.doubled,
                sustained,
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
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
