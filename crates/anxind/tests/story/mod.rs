//! The walking skeleton's story, told against whichever broker and store a suite names:
//! a real MQTT client as the device, a real WebSocket client as the console.

#![allow(dead_code)] // each suite uses the helpers it needs

/// Runs each story `$name(backend, client_id)` twice: `sqlite::$name` on SQLite with the
/// embedded broker, and `postgres::$name` on PostgreSQL and Mosquitto (skipped unless
/// `ANXIN_TEST_POSTGRES_URL` and `ANXIN_TEST_MQTT_URL` are set; under `CI=true` it fails
/// instead). `$prefix` names the topic roots and client ids.
macro_rules! on_both_stores {
    ($prefix:literal; $($name:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$name(Backend::embedded(dir.path()), unique($prefix, stringify!($name))).await;
                }
            )*
        }
        mod postgres {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(backend) = external_backend().await else { return };
                    super::$name(backend, unique(concat!($prefix, "-ext"), stringify!($name))).await;
                }
            )*
        }
    };
}

/// Calls `$suite!(...)` with every story that runs on any broker and store, so a new story is
/// listed once and every suite runs it.
macro_rules! every_story {
    ($suite:ident $(, $extra:ident)* $(,)?) => {
        $suite!(
            a_press_becomes_a_live_incident,
            a_redelivered_press_changes_nothing,
            a_restart_keeps_the_incident_open,
            bad_input_is_counted_and_the_next_press_still_works,
            nobody_in_range_names_the_nearest_station,
            repeated_presses_join_the_open_incident,
            an_oversized_message_does_not_stall_intake,
            lapsed_offers_climb_the_ladder,
            a_responder_takes_the_job_from_offer_to_close,
            declines_duty_re_alarm_and_cancel,
            a_phone_without_websocket_uses_the_rest_fallback,
            parallel_offers_and_the_station_duty_line,
            dispatchers_sign_in_claim_and_keep_the_record,
            a_claim_ends_when_its_holder_signs_out,
            a_stuck_button_is_one_incident,
            $($extra,)*
        );
    };
}

use anxin_core::*;
use anxin_mqtt::rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use anxind::{App, Config};
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(10);

/// Every test account's password is `test-pass`: `wang` and `li` dispatch, `zhao` supervises,
/// `kang` keeps the ledger (admin).
pub const TEST_PASSWORD: &str = "test-pass";
const TEST_PASSWORD_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$9wC4aTO/nELG5U3m0uocng$3nQTuD6Ud2ZVNYTrmounR16Kp4kFAWbyDbxveDEEqi0";

/// Where a suite's engine keeps its data and meets its devices.
#[derive(Debug, Clone)]
pub struct Backend {
    /// "embedded" or mqtt://HOST:PORT.
    pub broker: String,
    pub store_url: String,
}

impl Backend {
    /// The embedded broker and a SQLite file in `dir`.
    pub fn embedded(dir: &std::path::Path) -> Self {
        Self { broker: "embedded".into(), store_url: format!("sqlite://{}", dir.join("anxin.db").display()) }
    }
}

/// The stories' registry and `n` more elders near the Qianwei station with a device each:
/// `e-{tag}-K` and `d-{tag}-K`, K from 0.
pub fn registry_with(tag: &str, n: usize) -> Registry {
    let mut r = registry();
    let template = r.elders[0].clone();
    for k in 0..n {
        let elder = ElderId::parse(format!("e-{tag}-{k}")).unwrap();
        r.elders.push(Elder { id: elder.clone(), name: format!("长者 {tag} {k}"), ..template.clone() });
        r.devices.push(Device {
            id: DeviceId::parse(format!("d-{tag}-{k}")).unwrap(),
            elder_id: elder,
            model: None,
            sim: None,
        });
    }
    r
}

/// Three elders near the Qianwei station, one far out in the hills, two responders.
pub fn registry() -> Registry {
    let station = |id: &str, lat, lon| Station {
        id: StationId::parse(id).unwrap(),
        name: format!("{id} 社区居家养老服务中心"),
        position: Coordinates::new(lat, lon).unwrap(),
        phone: Some("0871-68000001".into()),
        service_circle_min: None,
        zone: Default::default(),
    };
    let elder = |n: u32, lat, lon| Elder {
        id: ElderId::parse(format!("e-{n}")).unwrap(),
        name: format!("长者{n}"),
        address: format!("西山区前卫街道 {n} 号"),
        home: Coordinates::new(lat, lon).unwrap(),
        phone: Some(format!("1380000000{n}")),
        notes: "独居".into(),
        profile: ElderProfile {
            birth_year: Some(1940),
            lives_alone: Some(true),
            conditions: vec!["高血压".into()],
            medications: vec!["氨氯地平 5mg".into()],
            mobility: "需拐杖".into(),
            language: "昆明话".into(),
            door_notes: "门禁 1234#".into(),
            contacts: vec![Contact {
                name: format!("女儿{n}"),
                relation: "女儿".into(),
                phone: "13700000001".into(),
                ..Contact::default()
            }],
            ..ElderProfile::default()
        },
    };
    let responder = |id: &str, lat, lon| Responder {
        id: ResponderId::parse(id).unwrap(),
        name: format!("responder {id}"),
        station_id: StationId::parse("st-qianwei").unwrap(),
        phone: Some("13900000001".into()),
        position: Coordinates::new(lat, lon).unwrap(),
        on_duty: true,
        mode: TravelMode::Ebike,
        skills: vec!["first_aid".into()],
        position_at: None,
        token_sha256: Some(anxin_api::token_sha256(&format!("token-{id}"))),
        provider_id: None,
    };
    Registry {
        elders: vec![
            elder(1, 25.0050, 102.6905),
            elder(2, 25.0100, 102.6950),
            elder(3, 25.0000, 102.6850),
            elder(4, 24.8000, 102.4000),
        ],
        devices: (1..=4)
            .map(|n| Device {
                id: DeviceId::parse(format!("d-{n}")).unwrap(),
                elder_id: ElderId::parse(format!("e-{n}")).unwrap(),
                model: None,
                sim: None,
            })
            .collect(),
        stations: vec![station("st-qianwei", 25.0050, 102.6905), station("st-biji", 24.9600, 102.6300)],
        responders: vec![responder("r-near", 25.0060, 102.6910), responder("r-second", 25.0150, 102.7000)],
        staff: ["wang", "li", "zhao", "kang"]
            .into_iter()
            .map(|id| Staff {
                id: id.into(),
                name: format!("调度员 {id}"),
                role: match id {
                    "zhao" => StaffRole::Supervisor,
                    "kang" => StaffRole::Admin,
                    _ => StaffRole::Dispatcher,
                },
                password_hash: TEST_PASSWORD_HASH.into(),
            })
            .collect(),
        providers: vec![],
    }
}

const MQTT_URL_VAR: &str = "ANXIN_TEST_MQTT_URL";

/// Mosquitto and a fresh PostgreSQL database, named by `ANXIN_TEST_MQTT_URL` and
/// `ANXIN_TEST_POSTGRES_URL`: `None` (the suite skips) without them, except under `CI=true`,
/// where it fails: CI must run it.
pub async fn external_backend() -> Option<Backend> {
    let mqtt = match std::env::var(MQTT_URL_VAR) {
        Ok(url) if !url.is_empty() => url,
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!("{MQTT_URL_VAR} must be set when CI=true"),
        _ => {
            eprintln!("skipped: {MQTT_URL_VAR} is not set");
            return None;
        }
    };
    let Some(server) = anxin_store::testkit::postgres_server() else {
        eprintln!("skipped: {} is not set", anxin_store::testkit::POSTGRES_URL_VAR);
        return None;
    };
    let (host, port) = anxind::config::broker_address(&mqtt).expect("a valid MQTT URL");
    if tokio::net::TcpStream::connect((host.as_str(), port)).await.is_err() {
        panic!("the MQTT broker at {mqtt} is unreachable");
    }
    let store_url = anxin_store::testkit::fresh_postgres_database(&server).await;
    Some(Backend { broker: mqtt, store_url })
}

/// A name no other test run uses: a client id and topic root on a shared broker.
pub fn unique(prefix: &str, name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{name}-{nanos}")
}

/// The console's address in anxind's ready line (`anxind ready console=http://ADDR/console
/// ...`), once `/readyz` there answers 200.
pub async fn ready_at(line: &str) -> SocketAddr {
    let http = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("console=http://"))
        .and_then(|a| a.strip_suffix("/console"))
        .unwrap_or_else(|| panic!("no console address in {line:?}"))
        .parse()
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while http_get(http, "/readyz").await.0 != 200 {
        assert!(tokio::time::Instant::now() < deadline, "anxind at {http} becomes ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    http
}

/// A running engine on ephemeral ports.
pub struct TestApp {
    pub http: SocketAddr,
    pub mqtt: (String, u16),
    pub store: Arc<dyn anxin_store::Store>,
    pub shutdown: CancellationToken,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub client_id: String,
    /// Every test gets its own topic root, so suites sharing one broker never cross.
    pub topic_root: String,
}

impl TestApp {
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task).await.expect("stops within the deadline").unwrap().unwrap();
    }
}

pub async fn spawn_app(backend: &Backend, client_id: &str) -> TestApp {
    spawn_app_with(backend, client_id, |_| {}).await
}

/// Like [`spawn_app`], with the configuration adjusted first.
pub async fn spawn_app_with(backend: &Backend, client_id: &str, adjust: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_on(backend, client_id, adjust, anxind::clock::Clock::System).await
}

/// Like [`spawn_app_with`], on a given clock.
pub async fn spawn_app_on(
    backend: &Backend,
    client_id: &str,
    adjust: impl FnOnce(&mut Config),
    clock: anxind::clock::Clock,
) -> TestApp {
    spawn_app_from(backend, client_id, registry(), adjust, clock).await
}

/// Like [`spawn_app_on`], with a registry of its own rather than [`registry`].
pub async fn spawn_app_from(
    backend: &Backend,
    client_id: &str,
    registry: Registry,
    adjust: impl FnOnce(&mut Config),
    clock: anxind::clock::Clock,
) -> TestApp {
    spawn_app_leased(backend, client_id, registry, adjust, clock, None).await
}

/// Like [`spawn_app_from`], running under `lease` (`[cluster]`) when given.
pub async fn spawn_app_leased(
    backend: &Backend,
    client_id: &str,
    registry: Registry,
    adjust: impl FnOnce(&mut Config),
    clock: anxind::clock::Clock,
    lease: Option<anxind::cluster::Held>,
) -> TestApp {
    let mut config = Config::defaults();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.broker = backend.broker.clone();
    config.mqtt.embedded_listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.client_id = client_id.to_string();
    config.mqtt.topic_root = client_id.to_string();
    config.store.url = anxind::config::Secret::new(&backend.store_url);
    config.shutdown.deadline_s = 5;
    // The stories press again within milliseconds and expect each press to count; the
    // stuck-button story sets the interval back.
    config.dispatch.repeat_press_interval_ms = 0;
    // The stories follow one offer at a time (who is offered next, who is free meanwhile);
    // the default of three at once is anxin-core's to test (tests/engine.rs, the simulation)
    // and the simulator's to measure. A story may set it back.
    config.dispatch.parallel_offers = 1;
    adjust(&mut config);
    let app = App::build_with(config, Some(registry), clock, lease).await.expect("app builds");
    let http = app.http_addr();
    let url = app.mqtt_url();
    let (host, port) = url.trim_start_matches("mqtt://").rsplit_once(':').unwrap();
    let mqtt = (host.to_string(), port.parse().unwrap());
    let store = app.store();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run(shutdown.clone()));
    let app = TestApp {
        http,
        mqtt,
        store,
        shutdown,
        task,
        client_id: client_id.to_string(),
        topic_root: client_id.to_string(),
    };
    app.wait_ready().await;
    app
}

impl TestApp {
    pub async fn get(&self, path: &str) -> (u16, String) {
        http_get(self.http, path).await
    }

    /// Waits until /readyz says the engine is connected to its broker and store.
    pub async fn wait_ready(&self) {
        tokio::time::timeout(WAIT, async {
            loop {
                if self.get("/readyz").await.0 == 200 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("engine becomes ready");
    }

    /// The value of one metric sample, e.g. `anxin_mqtt_payloads_rejected_total{reason="not_json"}`.
    pub async fn metric(&self, sample: &str) -> f64 {
        metric_sample(&self.get("/metrics").await.1, sample)
    }

    /// The names of the metrics /metrics exports (each `# TYPE` line's).
    pub async fn exported_metrics(&self) -> std::collections::BTreeSet<String> {
        self.get("/metrics")
            .await
            .1
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect()
    }
}

/// The `anxin_` metric names a PromQL text reads, a histogram's series (`_bucket`, `_sum`,
/// `_count`) by the histogram's own name.
pub fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("anxin_") {
        let name: String = rest[at..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        rest = &rest[at + name.len()..];
        let base = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(&name);
        names.push(base.to_string());
    }
    names
}

/// One sample's value in a Prometheus text page, e.g. `anxin_x_total{reason="y"}`; the name
/// must be followed by its value, so `anxin_x` does not match `anxin_x_total`.
pub fn metric_sample(page: &str, sample: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(sample).filter(|rest| rest.starts_with(' ')).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no sample {sample} in /metrics"))
}

/// A minimal HTTP/1.1 GET over a plain socket: the status and the body.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// A device: publishes events on its topic and hears commands on its own.
pub struct TestDevice {
    pub id: String,
    root: String,
    client: AsyncClient,
    commands: mpsc::UnboundedReceiver<Value>,
}

impl TestDevice {
    pub async fn connect(app: &TestApp, id: &str) -> Self {
        let topic = format!("{}/v1/devices/{id}/commands", app.topic_root);
        Self::listening_to(app, id, &topic).await
    }

    /// A client named `id` that hears what is published on `topic` (a station's duty line).
    pub async fn listening_to(app: &TestApp, id: &str, topic: &str) -> Self {
        let (mqtt, root) = (&app.mqtt, app.topic_root.clone());
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let mut opts = MqttOptions::new(format!("test-{id}-{nanos}"), mqtt.0.clone(), mqtt.1);
        opts.set_max_packet_size(1 << 20, 1 << 20); // room for deliberately oversized payloads
        let (client, mut eventloop) = AsyncClient::new(opts, 64);
        let (tx, commands) = mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed) = mpsc::channel(1);
        tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send(serde_json::from_slice(&p.payload).unwrap_or(Value::Null));
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.try_send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        client.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
        tokio::time::timeout(WAIT, subscribed.recv()).await.expect("device subscribed");
        Self { id: id.to_string(), root, client, commands }
    }

    /// Publishes raw bytes on this device's events topic, QoS 1.
    pub async fn publish_raw(&self, payload: impl Into<Vec<u8>>) {
        self.publish_to(&format!("{}/v1/devices/{}/events", self.root, self.id), payload).await;
    }

    pub async fn publish_to(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload.into()).await.unwrap();
    }

    /// An SOS press, with a fix when given.
    pub async fn press(&self, msg_id: &str, fix: Option<(f64, f64, f64)>) {
        let mut p = json!({"msg_id": msg_id, "type": "sos", "ts": anxin_proto::wall_clock_now().millis()});
        if let Some((lat, lon, acc)) = fix {
            p["location"] = json!({"lat": lat, "lon": lon, "accuracy_m": acc});
        }
        self.publish_raw(p.to_string()).await;
    }

    pub async fn next_command(&mut self) -> Value {
        tokio::time::timeout(WAIT, self.commands.recv()).await.expect("a command arrives").unwrap()
    }

    /// A command already heard, if any, without waiting.
    pub fn heard(&mut self) -> Option<Value> {
        self.commands.try_recv().ok()
    }
}

/// A console on the WebSocket.
pub struct TestConsole {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    /// Deltas passed over while looking for one device's; messages from different devices
    /// may arrive in any order, so none is thrown away.
    held: std::collections::VecDeque<Value>,
    /// `responder` frames (the map's live roster), kept apart from the incident feed.
    responders: std::collections::VecDeque<Value>,
    /// The last `presence` frame: who has a console connected.
    pub presence: Option<Value>,
}

impl TestConsole {
    pub async fn connect(http: SocketAddr, since: Option<u64>) -> Self {
        Self::connect_to_history(http, since, None).await
    }

    /// A responder's phone, signed in with its token.
    pub async fn connect_with_token(http: SocketAddr, token: &str) -> Self {
        let (ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{http}/ws?token={token}")).await.expect("phone connects");
        Self { ws, held: Default::default(), responders: Default::default(), presence: None }
    }

    /// Sends a frame and returns its `result`, holding anything else that arrives meanwhile.
    pub async fn ask(&mut self, frame: Value) -> Value {
        use futures_util::SinkExt;
        self.ws.send(tokio_tungstenite::tungstenite::Message::Text(frame.to_string().into())).await.unwrap();
        loop {
            let m = self.next_from_socket().await;
            if m["type"] == "result" {
                return m;
            }
            self.held.push_back(m);
        }
    }

    /// Reconnects naming the history its sequence number belongs to (signed in as `wang`).
    pub async fn connect_to_history(http: SocketAddr, since: Option<u64>, history: Option<&str>) -> Self {
        let cookie = sign_in(http, "wang").await;
        Self::connect_signed_in(http, &cookie, since, history).await
    }

    /// A console with a session cookie. The `welcome` and `roster` frames that open every
    /// console feed are passed over (held); tests that want them use [`TestConsole::opening`].
    pub async fn connect_signed_in(http: SocketAddr, cookie: &str, since: Option<u64>, history: Option<&str>) -> Self {
        let mut console = Self::opening(http, cookie, since, history).await;
        let welcome = console.next_from_socket().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        let roster = console.next_from_socket().await;
        assert_eq!(roster["type"], "roster", "{roster}");
        console
    }

    /// A console socket as it opens, nothing read yet.
    pub async fn opening(http: SocketAddr, cookie: &str, since: Option<u64>, history: Option<&str>) -> Self {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = match (since, history) {
            (Some(s), Some(h)) => format!("ws://{http}/ws?since={s}&history={h}"),
            (Some(s), None) => format!("ws://{http}/ws?since={s}"),
            _ => format!("ws://{http}/ws"),
        };
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert("Cookie", cookie.parse().unwrap());
        let (ws, _) = tokio_tungstenite::connect_async(request).await.expect("console connects");
        Self { ws, held: Default::default(), responders: Default::default(), presence: None }
    }

    /// The next message: one held back earlier, else the next off the socket.
    pub async fn next(&mut self) -> Value {
        if let Some(m) = self.held.pop_front() {
            return m;
        }
        self.next_from_socket().await
    }

    async fn next_from_socket(&mut self) -> Value {
        loop {
            let v = self.next_raw().await;
            match v["type"].as_str() {
                Some("responder") => self.responders.push_back(v),
                Some("presence") => self.presence = Some(v),
                // Every few seconds on every socket; the feed's stories do not need it.
                Some("heartbeat") => {}
                _ => return v,
            }
        }
    }

    /// The next text frame off the socket, whatever it is.
    async fn next_raw(&mut self) -> Value {
        loop {
            let msg =
                tokio::time::timeout(WAIT, self.ws.next()).await.expect("a console message arrives").unwrap().unwrap();
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                return serde_json::from_str(&t).unwrap();
            }
        }
    }

    /// The next `responder` frame for `id` (the console map's live roster).
    pub async fn responder_frame(&mut self, id: &str) -> Value {
        loop {
            if let Some(i) = self.responders.iter().position(|v| v["responder"]["id"] == id) {
                return self.responders.remove(i).expect("position is in range");
            }
            let m = self.next_raw().await;
            if m["type"] == "responder" {
                self.responders.push_back(m);
            } else {
                self.held.push_back(m);
            }
        }
    }

    /// Every frame held or still arriving until the socket closes or is quiet for `quiet`
    /// (for checking what an engine that stopped showed last).
    pub async fn rest(&mut self, quiet: Duration) -> Vec<Value> {
        let mut frames: Vec<Value> = self.held.drain(..).chain(self.responders.drain(..)).collect();
        while let Ok(Some(Ok(msg))) = tokio::time::timeout(quiet, self.ws.next()).await {
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                frames.push(serde_json::from_str(&t).unwrap());
            }
        }
        frames
    }

    /// Whether anything arrives within `d` (for checking that nothing does).
    pub async fn next_within(&mut self, d: Duration) -> Option<Value> {
        tokio::time::timeout(d, self.next()).await.ok()
    }

    /// The next delta of an incident for the given device, skipping others and welfare
    /// checks (a lane of their own: a story whose clock passes a device's window sees them).
    pub async fn incident_for(&mut self, device: &str) -> Value {
        self.delta_for(device, false).await
    }

    /// The next delta of a welfare check for the given device, skipping others.
    pub async fn welfare_for(&mut self, device: &str) -> Value {
        self.delta_for(device, true).await
    }

    async fn delta_for(&mut self, device: &str, welfare: bool) -> Value {
        let is_for = |m: &Value| {
            m["type"] == "incident"
                && m["incident"]["device_id"] == device
                && (m["incident"]["kind"] == "welfare") == welfare
        };
        if let Some(i) = self.held.iter().position(is_for) {
            return self.held.remove(i).expect("position is in range");
        }
        // One deadline for the whole search: other messages (a console's heartbeats, other
        // devices' deltas) keep coming, so a wait per message would never end.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let m = tokio::time::timeout_at(deadline, self.next_from_socket()).await.unwrap_or_else(|_| {
                panic!("no {} delta for {device} within {WAIT:?}", if welfare { "welfare" } else { "incident" })
            });
            if is_for(&m) {
                return m;
            }
            self.held.push_back(m);
        }
    }
}

// ---- the stories ----

/// A press with a fix: the console sees the incident with the nearest responder, the device
/// hears "help is coming", and the store has the press, the incident and its log.
pub async fn a_press_becomes_a_live_incident(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let mut console = TestConsole::connect(app.http, None).await;
    let snapshot = console.next().await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["incidents"], json!([]));

    let mut device = TestDevice::connect(&app, "d-1").await;
    device.press("press-1", Some((25.0052, 102.6907, 12.0))).await;

    let delta = console.incident_for("d-1").await;
    let incident = &delta["incident"];
    assert!(delta["seq"].as_u64().unwrap() > snapshot["seq"].as_u64().unwrap());
    assert_eq!(incident["kind"], "sos");
    assert_eq!(incident["state"], "offered");
    assert_eq!(incident["elder"]["name"], "长者1");
    assert_eq!(incident["location"]["source"], "device");
    assert_eq!(incident["location"]["accuracy_m"], 12.0);
    assert_eq!(incident["offers"][0]["responder"]["id"], "r-near", "the nearest responder is offered the job");
    assert_eq!(incident["responder"], Value::Null, "an offer is not yet a job");
    assert_eq!(incident["station"]["id"], "st-qianwei");

    let command = device.next_command().await;
    assert_eq!(command["type"], "help_coming");
    assert_eq!(command["incident_id"], incident["id"]);
    assert_eq!(command["msg_id"], "press-1", "it names the press it answers");
    assert_eq!(command["responder_assigned"], true);

    let id = IncidentId(incident["id"].as_u64().unwrap());
    let stored = app.store.incident(id).await.unwrap().expect("the incident is stored");
    assert_eq!(stored.ladder.offers[0].responder_id.as_str(), "r-near", "the live offer is stored");
    let msg = app.store.message(&DeviceId::parse("d-1").unwrap(), &MessageId::parse("press-1").unwrap()).await.unwrap();
    assert_eq!(msg.expect("the press is stored").incident_id, Some(id));
    let log = app.store.incident_events(id).await.unwrap();
    assert!(matches!(log[0].change, Change::Opened { .. }), "{log:?}");
    assert!(log
        .iter()
        .any(|e| matches!(&e.change, Change::Offered { responder_id, .. } if responder_id.as_str() == "r-near")));
    assert_eq!(app.metric("anxin_incidents_opened_total{kind=\"sos\"}").await, 1.0);
    app.stop().await;
}

/// The same message id twice (as a broker redelivers it) is one incident and one press.
pub async fn a_redelivered_press_changes_nothing(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    let mut d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("same-id", None).await;
    let first = console.incident_for("d-1").await;
    let told = d1.next_command().await;
    d1.press("same-id", None).await;
    assert_eq!(d1.next_command().await, told, "a device that resends is told again");
    d1.press("same-id", Some((25.0, 102.69, 5.0))).await;
    // One client's QoS 1 messages arrive in order: the next delta is the new press, which
    // proves the duplicates were handled before it and changed nothing.
    d1.press("a-new-press", None).await;
    let next = console.next().await;
    assert_eq!(next["incident"]["id"], first["incident"]["id"]);
    assert_eq!(next["incident"]["press_count"], 2, "the duplicates did not count as presses: {next}");
    assert_eq!(next["incident"]["location"], first["incident"]["location"], "nor move the incident");
    assert_eq!(app.store.incident_count().await.unwrap(), 1);
    assert_eq!(app.metric("anxin_mqtt_duplicates_total").await, 2.0);
    app.stop().await;
}

/// Stop after a press, start on the same store: the incident is still open on the console,
/// its responder still taken, and the same message id is still recognised.
pub async fn a_restart_keeps_the_incident_open(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let mut console = TestConsole::connect(app.http, None).await;
    let history = console.next().await["history"].as_str().expect("the snapshot names its history").to_string();
    let device = TestDevice::connect(&app, "d-1").await;
    device.press("before-restart", None).await;
    let before = console.incident_for("d-1").await;
    let last_seq = before["seq"].as_u64().unwrap();
    app.stop().await;

    let app = spawn_app(&backend, &client_id).await;
    let mut fresh = TestConsole::connect(app.http, None).await;
    let snapshot = fresh.next().await;
    assert_eq!(snapshot["type"], "snapshot");
    assert_eq!(snapshot["seq"].as_u64().unwrap(), last_seq);
    let incidents = snapshot["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0], before["incident"]);
    assert_eq!(snapshot["history"], history.as_str(), "the same store, the same history");
    // A console whose numbers come from another store's history gets a fresh snapshot.
    let mut stranger = TestConsole::connect_to_history(app.http, Some(last_seq), Some("h-elsewhere")).await;
    assert_eq!(stranger.next().await["type"], "snapshot");
    // The console that saw everything reconnects with its last sequence number: it is sent
    // nothing it already has, and the next change arrives as a delta.
    let mut console = TestConsole::connect_to_history(app.http, Some(last_seq), Some(&history)).await;

    let device = TestDevice::connect(&app, "d-1").await;
    device.press("before-restart", None).await; // redelivered after the restart
    let d3 = TestDevice::connect(&app, "d-3").await;
    d3.press("after-restart", None).await;
    let next = console.next().await;
    assert_eq!(
        (next["type"].as_str(), next["incident"]["device_id"].as_str()),
        (Some("incident"), Some("d-3")),
        "{next}"
    );
    assert_eq!(next["incident"]["offers"][0]["responder"]["id"], "r-second", "r-near is still on the first job");
    assert!(next["seq"].as_u64().unwrap() > last_seq, "sequence numbers carry on across restarts");
    assert_eq!(app.store.incident_count().await.unwrap(), 2);
    app.stop().await;
}

/// Garbage of every kind is counted by reason and acknowledged; a known device's unreadable
/// message raises an incident a dispatcher sees; the next good press is unaffected.
pub async fn bad_input_is_counted_and_the_next_press_still_works(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;

    // d-2's connection first sends a press on an unregistered device's topic (one client's
    // messages arrive in order, so the delta for d-2 below proves this one was handled).
    let d2 = TestDevice::connect(&app, "d-2").await;
    let stranger = format!("{}/v1/devices/no-such-device/events", app.topic_root);
    d2.publish_to(&stranger, r#"{"msg_id":"x","type":"sos"}"#).await;
    d2.publish_raw("\u{1}\u{2} not json").await;
    let d3 = TestDevice::connect(&app, "d-3").await;
    d3.publish_raw(r#"{"type":"sos"}"#).await;
    d3.publish_raw(format!(r#"{{"msg_id":"big","type":"sos","pad":"{}"}}"#, "x".repeat(10_000))).await;
    d3.publish_raw(r#"{"msg_id":"nan","type":"sos","location":{"lat":NaN,"lon":102.6}}"#).await;

    let unreadable = console.incident_for("d-2").await;
    assert_eq!(unreadable["incident"]["kind"], "unreadable");
    assert!(unreadable["incident"]["problem"].as_str().unwrap().contains("not a JSON object"));
    assert_eq!(unreadable["incident"]["location"]["source"], "home");
    let opened = console.incident_for("d-3").await;
    assert_eq!(opened["incident"]["kind"], "unreadable");
    assert!(opened["incident"]["problem"].as_str().unwrap().contains("msg_id is missing"));
    console.incident_for("d-3").await;
    let joined = console.incident_for("d-3").await;
    assert_eq!(joined["incident"]["press_count"], 3, "the oversized and the NaN messages joined it");

    // Out-of-range coordinates: the press stands, located by the home address.
    let mut d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("good-after-garbage", Some((95.0, 102.69, 5.0))).await;
    let good = console.incident_for("d-1").await;
    assert_eq!(good["incident"]["kind"], "sos");
    assert_eq!(good["incident"]["location"]["source"], "home");
    assert_eq!(good["incident"]["location"]["fix_rejected"], "malformed", "the dispatcher sees why");
    assert_eq!(d1.next_command().await["type"], "help_coming");
    // A number too large for a float refuses the fix, not the press: it joins as a press.
    d1.publish_raw(r#"{"msg_id":"huge-lat","type":"sos","location":{"lat":1e400,"lon":102.69}}"#).await;
    let joined = console.incident_for("d-1").await;
    assert_eq!(
        (joined["incident"]["kind"].as_str(), joined["incident"]["press_count"].as_u64()),
        (Some("sos"), Some(2))
    );

    // A type the engine does not know (newer firmware) is counted, not raised.
    let d4 = TestDevice::connect(&app, "d-4").await;
    d4.publish_raw(r#"{"msg_id":"new-fw","type":"blood_pressure"}"#).await;
    d4.press("real-press", None).await;
    let d4_delta = console.incident_for("d-4").await;
    assert_eq!(
        (d4_delta["incident"]["kind"].as_str(), d4_delta["incident"]["press_count"].as_u64()),
        (Some("sos"), Some(1))
    );

    for (reason, n) in [
        ("unknown_device", 1.0),
        ("not_json", 2.0),
        ("missing_msg_id", 1.0),
        ("oversized", 1.0),
        ("bad_location", 2.0),
        ("unknown_type", 1.0),
    ] {
        assert_eq!(
            app.metric(&format!("anxin_mqtt_payloads_rejected_total{{reason=\"{reason}\"}}")).await,
            n,
            "{reason}"
        );
    }
    assert_eq!(app.store.incident_count().await.unwrap(), 4, "d-2, d-3 (unreadable), d-1 and d-4");
    app.stop().await;
}

/// An elder far from every available responder: nobody is offered, the nearest station is
/// named, and the device is still told help is coming.
pub async fn nobody_in_range_names_the_nearest_station(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    let mut far = TestDevice::connect(&app, "d-4").await;
    far.press("far-away", None).await;
    let delta = console.incident_for("d-4").await;
    assert_eq!(delta["incident"]["state"], "station_alerted", "the ladder's next rung: the station's duty line");
    assert_eq!(delta["incident"]["responder"], serde_json::Value::Null);
    assert_eq!(delta["incident"]["station"]["id"], "st-biji");
    let cmd = far.next_command().await;
    assert_eq!((cmd["type"].as_str(), cmd["responder_assigned"].as_bool()), (Some("help_coming"), Some(false)));
    app.stop().await;
}

/// Pressing again while help is on the way joins the open incident and is counted.
pub async fn repeated_presses_join_the_open_incident(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("p1", None).await;
    let first = console.incident_for("d-1").await;
    d1.press("p2", None).await;
    d1.press("p3", None).await;
    console.incident_for("d-1").await;
    let third = console.incident_for("d-1").await;
    assert_eq!(third["incident"]["id"], first["incident"]["id"]);
    assert_eq!(third["incident"]["press_count"], 3);
    assert_eq!(app.store.incident_count().await.unwrap(), 1);
    app.stop().await;
}

/// A message far over the payload limit is refused without stalling the presses behind it:
/// the embedded broker refuses it itself; an external broker forwards it and the engine
/// counts it as oversized and acknowledges it, rather than dropping its connection.
pub async fn an_oversized_message_does_not_stall_intake(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    let big = TestDevice::connect(&app, "d-2").await;
    big.publish_raw(format!(r#"{{"msg_id":"huge","type":"sos","pad":"{}"}}"#, "x".repeat(200_000))).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for n in 0..3 {
        let d1 = TestDevice::connect(&app, "d-1").await;
        d1.press(&format!("after-huge-{n}"), None).await;
        let delta = console.incident_for("d-1").await;
        assert_eq!(delta["incident"]["press_count"], n + 1);
    }
    app.wait_ready().await;
    let oversized = app.metric("anxin_mqtt_payloads_rejected_total{reason=\"oversized\"}").await;
    if backend.broker == "embedded" {
        assert_eq!(oversized, 0.0, "the embedded broker refuses it before the engine sees it");
    } else {
        assert_eq!(oversized, 1.0, "an external broker forwards it; the engine refuses it once");
    }
    app.stop().await;
}

/// Persist before ack: a press the store could not take is not acknowledged, so after the
/// engine stops the broker still holds it and gives it to the next engine. (Needs a broker
/// that outlives the engine, and PostgreSQL to hold a lock from outside.)
pub async fn a_press_that_was_not_stored_is_not_acknowledged(backend: Backend, client_id: String) {
    use sqlx::Connection;
    let app = spawn_app(&backend, &client_id).await;
    // Another session locks a table every commit writes to: commits wait.
    let mut locker = sqlx::PgConnection::connect(&backend.store_url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut locker).await.unwrap();
    sqlx::query("LOCK TABLE device_messages IN ACCESS EXCLUSIVE MODE").execute(&mut locker).await.unwrap();
    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("held-at-the-broker", None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.stop().await; // past its deadline, with the commit still waiting
    sqlx::query("ROLLBACK").execute(&mut locker).await.unwrap();
    assert_eq!(app_store_count(&backend).await, 0, "nothing was stored");

    let app = spawn_app(&backend, &client_id).await;
    let mut console = TestConsole::connect(app.http, None).await;
    let snapshot = console.next().await;
    let delta = if snapshot["incidents"].as_array().unwrap().is_empty() {
        console.incident_for("d-1").await["incident"].clone()
    } else {
        snapshot["incidents"][0].clone()
    };
    assert_eq!(delta["device_id"], "d-1", "the broker redelivered the press to the new engine");
    let (device, msg) = (DeviceId::parse("d-1").unwrap(), MessageId::parse("held-at-the-broker").unwrap());
    assert!(app.store.message(&device, &msg).await.unwrap().is_some());
    app.stop().await;
}

async fn app_store_count(backend: &Backend) -> u64 {
    anxin_store::open(&backend.store_url).await.unwrap().incident_count().await.unwrap()
}

/// Nobody answers: each offer lapses at its deadline and goes to the next responder, then the
/// station's duty line, then a dispatcher who is reminded. The engine runs on a clock the
/// test moves by hand: the default deadlines (60 s offers, 120 s station, 60 s reminders)
/// pass with no waiting.
pub async fn lapsed_offers_climb_the_ladder(backend: Backend, client_id: String) {
    let clock = anxind::clock::ManualClock::starting_at(anxin_proto::wall_clock_now());
    let app = spawn_app_on(&backend, &client_id, |_| {}, anxind::clock::Clock::Manual(clock.clone())).await;
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("nobody-answers", None).await;
    let first = console.incident_for("d-1").await;
    assert_eq!(first["incident"]["offers"][0]["responder"]["id"], "r-near");
    let deadline = first["incident"]["ladder"]["offer_deadline"].as_i64().unwrap();
    assert_eq!(deadline - clock.now().millis(), 60_000, "a minute to accept");

    clock.advance(Duration::from_secs(59));
    assert!(console.next_within(Duration::from_millis(300)).await.is_none(), "nothing lapses early");
    clock.advance(Duration::from_secs(1));
    let second = console.incident_for("d-1").await;
    let (state, who) =
        (second["incident"]["state"].as_str(), second["incident"]["offers"][0]["responder"]["id"].as_str());
    assert_eq!((state, who), (Some("offered"), Some("r-second")));
    assert_eq!(second["incident"]["ladder"]["tried"], json!(["r-near"]));

    clock.advance(Duration::from_secs(60));
    let third = console.incident_for("d-1").await;
    assert_eq!(third["incident"]["state"], "station_alerted", "two responders tried, none left: the station");
    clock.advance(Duration::from_secs(120));
    let fourth = console.incident_for("d-1").await;
    assert_eq!(fourth["incident"]["state"], "awaiting_dispatcher");
    assert_eq!(fourth["incident"]["dispatcher_needed"], "nobody_going");
    assert_eq!(fourth["incident"]["ladder"]["emergency_number"], "120");
    clock.advance(Duration::from_secs(60));
    let reminded = console.incident_for("d-1").await;
    assert_eq!(reminded["incident"]["ladder"]["reminders"], 1, "reminded until someone acts");

    let id = IncidentId(first["incident"]["id"].as_u64().unwrap());
    let changes: Vec<_> = app.store.incident_events(id).await.unwrap().into_iter().map(|e| e.change).collect();
    let timed_out = changes.iter().filter(|c| matches!(c, Change::OfferTimedOut { .. })).count();
    assert_eq!(timed_out, 2, "{changes:?}");
    assert!(changes.iter().any(|c| matches!(c, Change::StationAlerted { .. })));
    // Counted for the alert on offers lapsing (deploy/prometheus).
    assert_eq!(
        (
            app.metric("anxin_offers_total{step=\"made\"}").await,
            app.metric("anxin_offers_total{step=\"lapsed\"}").await
        ),
        (2.0, 2.0)
    );
    app.stop().await;
}

/// A responder's phone on the WebSocket: signs in with a token, gets the offer, accepts,
/// reports en route, on scene, resolved; a dispatcher closes it from a console.
pub async fn a_responder_takes_the_job_from_offer_to_close(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;

    // A wrong token is refused with close code 4401.
    let (mut wrong, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws?token=nope", app.http)).await.unwrap();
    match tokio::time::timeout(WAIT, wrong.next()).await.unwrap() {
        Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 4401),
        other => panic!("expected a close frame, got {other:?}"),
    }

    let mut phone = TestConsole::connect_with_token(app.http, "token-r-near").await;
    let hello = phone.next().await;
    assert_eq!((hello["type"].as_str(), hello["responder"]["id"].as_str()), (Some("hello"), Some("r-near")));
    assert_eq!(phone.next().await, json!({"type": "job", "job": null}));

    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("take-the-job", None).await;
    let offer = phone.next().await;
    assert_eq!(offer["job"]["state"], "offered");
    assert_eq!(offer["job"]["elder"]["name"], "长者1");
    assert!(offer["job"]["offer_deadline"].as_i64().unwrap() > offer["job"]["server_time"].as_i64().unwrap());
    let id = offer["job"]["incident_id"].as_u64().unwrap();
    console.incident_for("d-1").await;

    // A phone is not a console: a dispatcher's command from it is refused, named and counted,
    // and a console cannot act as a responder.
    let claim = json!({"type": "command", "incident_id": id, "action": "claim", "request_id": "grab"});
    let refused = phone.ask(claim).await;
    assert_eq!(
        (refused["ok"].as_bool(), refused["error"].as_str()),
        (Some(false), Some("this frame is for dispatchers"))
    );
    assert_eq!(app.metric("anxin_ws_frames_rejected_total{reason=\"not_a_dispatcher\"}").await, 1.0);
    let refused = console.ask(json!({"type": "accept", "incident_id": id, "request_id": "steal"})).await;
    assert_eq!(
        (refused["ok"].as_bool(), refused["error"].as_str()),
        (Some(false), Some("this frame is for responders"))
    );
    assert_eq!(app.metric("anxin_ws_frames_rejected_total{reason=\"not_a_responder\"}").await, 1.0);

    // Someone else's incident, or a step out of order, is refused and changes nothing.
    let refused = phone.ask(json!({"type": "on_scene", "incident_id": id, "request_id": "early"})).await;
    assert_eq!((refused["ok"].as_bool(), refused["request_id"].as_str()), (Some(false), Some("early")));
    assert!(refused["error"].as_str().unwrap().contains("offered"), "{refused}");

    for (step, state) in [("accept", "accepted"), ("en_route", "en_route"), ("on_scene", "on_scene")] {
        let answer = phone.ask(json!({"type": step, "incident_id": id, "request_id": step})).await;
        assert_eq!(answer["ok"], true, "{step}: {answer}");
        assert_eq!(phone.next().await["job"]["state"], state);
        assert_eq!(console.incident_for("d-1").await["incident"]["state"], state);
    }
    let answer = phone.ask(json!({"type": "resolve", "incident_id": id, "outcome": "helped up, no injury"})).await;
    assert_eq!(answer["ok"], true, "{answer}");
    assert_eq!(phone.next().await, json!({"type": "job", "job": null}), "the job is done");
    assert_eq!(console.incident_for("d-1").await["incident"]["state"], "resolved");

    // The dispatcher closes it; it leaves the open set.
    let answer = console.ask(json!({"type": "command", "incident_id": id, "action": "close", "outcome": "ok"})).await;
    assert_eq!(answer["ok"], true, "{answer}");
    let closed = console.incident_for("d-1").await;
    assert_eq!(closed["incident"]["state"], "closed");
    let mut fresh = TestConsole::connect(app.http, None).await;
    assert_eq!(fresh.next().await["incidents"], json!([]));
    let log = app.store.incident_events(IncidentId(id)).await.unwrap();
    let actors: Vec<_> = log.iter().map(|e| e.actor.clone()).collect();
    assert!(actors.contains(&Actor::Responder(ResponderId::parse("r-near").unwrap())));
    assert!(actors.contains(&Actor::Dispatcher("wang".into())), "the signed-in dispatcher is the actor");
    app.stop().await;
}

/// The loop's other paths, over the real protocols on a hand-moved clock: an off-duty
/// responder is never offered; a decline goes to the next; an accepted job that does not
/// reach the scene in time re-alarms the dispatcher; a dispatcher cancels with a reason.
pub async fn declines_duty_re_alarm_and_cancel(backend: Backend, client_id: String) {
    let clock = anxind::clock::ManualClock::starting_at(anxin_proto::wall_clock_now());
    let app = spawn_app_on(&backend, &client_id, |_| {}, anxind::clock::Clock::Manual(clock.clone())).await;
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    let mut near = TestConsole::connect_with_token(app.http, "token-r-near").await;
    let mut second = TestConsole::connect_with_token(app.http, "token-r-second").await;
    for phone in [&mut near, &mut second] {
        phone.next().await; // hello
        phone.next().await; // no job
    }

    // r-near goes off duty: the press goes to r-second although r-near is nearer.
    let off = near.ask(json!({"type": "duty", "on": false, "request_id": "off"})).await;
    assert_eq!(off["ok"], true, "{off}");
    assert_eq!(near.next().await["responder"]["on_duty"], false);
    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("while-off-duty", None).await;
    let offer = second.next().await;
    let id = offer["job"]["incident_id"].as_u64().unwrap();
    assert_eq!(console.incident_for("d-1").await["incident"]["offers"][0]["responder"]["id"], "r-second");

    // r-near is back; r-second declines: the offer moves to r-near.
    near.ask(json!({"type": "duty", "on": true})).await;
    let declined = second.ask(json!({"type": "decline", "incident_id": id})).await;
    assert_eq!(declined["ok"], true, "{declined}");
    let offer = loop {
        let m = near.next().await;
        if m["type"] == "job" && !m["job"].is_null() {
            break m;
        }
    };
    assert_eq!(offer["job"]["incident_id"], id);
    assert_eq!(second.next().await, json!({"type": "job", "job": null}));

    // Accepted, then nobody reports on scene for 30 minutes: the dispatcher is re-alarmed.
    assert_eq!(near.ask(json!({"type": "accept", "incident_id": id})).await["ok"], true);
    let accepted = loop {
        let m = console.incident_for("d-1").await;
        if m["incident"]["state"] == "accepted" {
            break m;
        }
    };
    assert_eq!(accepted["incident"]["responder"]["id"], "r-near");
    clock.advance(Duration::from_secs(30 * 60));
    let late = console.incident_for("d-1").await;
    assert_eq!(late["incident"]["dispatcher_needed"], "on_scene_overdue");

    // The elder long-presses cancel: the incident says so but stays open, job and all, until
    // a dispatcher has verified it.
    let cancel_press = json!({"msg_id": "long-press", "type": "cancel", "ts": clock.now().millis()});
    d1.publish_raw(cancel_press.to_string()).await;
    let asked = console.incident_for("d-1").await;
    assert_eq!(asked["incident"]["cancel_requested"], true);
    assert_eq!(asked["incident"]["state"], "accepted", "a cancel press alone closes nothing");
    assert_eq!(asked["incident"]["responder"]["id"], "r-near", "and the responder keeps going");

    // The dispatcher calls the elder, who is fine, and cancels with a reason.
    let no_reason = console.ask(json!({"type": "command", "incident_id": id, "action": "cancel"})).await;
    assert_eq!(no_reason["ok"], false, "a cancel needs a reason");
    let reason = "called back: the elder is fine";
    let cancel = console.ask(json!({"type": "command", "incident_id": id, "action": "cancel", "reason": reason})).await;
    assert_eq!(cancel["ok"], true, "{cancel}");
    let cancelled = console.incident_for("d-1").await;
    assert_eq!(
        (cancelled["incident"]["state"].as_str(), cancelled["incident"]["outcome"].as_str()),
        (Some("cancelled"), Some(reason))
    );
    // The phone saw the job accepted (and re-sent as it changed); then it is told it is gone.
    loop {
        let m = near.next().await; // fails after WAIT if the phone is never told
        if m["type"] == "job" && m["job"].is_null() {
            break;
        }
        assert_eq!(m["job"]["incident_id"], id, "only this job's frames until it is gone: {m}");
    }
    app.stop().await;
}

/// A minimal HTTP/1.1 request with a body and headers: the status and the body.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let (status, _, body) = http_exchange(addr, method, path, headers, body).await;
    (status, body)
}

/// Signs `user` in (password [`TEST_PASSWORD`]) and returns the `Cookie` header value.
pub async fn sign_in(addr: SocketAddr, user: &str) -> String {
    let body = json!({"user": user, "password": TEST_PASSWORD}).to_string();
    let (status, head, answer) = http_exchange(addr, "POST", "/api/v1/session", &[], &body).await;
    assert_eq!(status, 200, "{user} signs in: {answer}");
    let set_cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .expect("a session cookie");
    set_cookie.split(';').next().unwrap().to_string()
}

/// One HTTP/1.1 request: status, response head, body.
pub async fn http_exchange(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text[9..12].parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_string(), body.to_string())
}

/// The phone's REST fallback: the job by GET, answers by POST, with the same rules as the
/// WebSocket; a wrong token is refused.
pub async fn a_phone_without_websocket_uses_the_rest_fallback(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let bearer = ("Authorization", "Bearer token-r-near");
    let (status, _) =
        http_request(app.http, "GET", "/api/v1/responder/job", &[("Authorization", "Bearer nope")], "").await;
    assert_eq!(status, 401);
    let (status, body) = http_request(app.http, "GET", "/api/v1/responder/job", &[bearer], "").await;
    assert_eq!((status, serde_json::from_str::<Value>(&body).unwrap()), (200, json!({"type": "job", "job": null})));

    // Who am I, and am I on duty: the hello frame, read and changed over REST alone.
    let me = |body: String| serde_json::from_str::<Value>(&body).unwrap();
    let (status, body) = http_request(app.http, "GET", "/api/v1/responder/me", &[bearer], "").await;
    let hello = me(body);
    assert_eq!(
        (status, hello["type"].as_str(), hello["responder"]["id"].as_str()),
        (200, Some("hello"), Some("r-near"))
    );
    assert_eq!(hello["responder"]["on_duty"], true);
    let off = json!({"type": "duty", "on": false}).to_string();
    assert_eq!(http_request(app.http, "POST", "/api/v1/responder/actions", &[bearer], &off).await.0, 200);
    let (_, body) = http_request(app.http, "GET", "/api/v1/responder/me", &[bearer], "").await;
    assert_eq!(me(body)["responder"]["on_duty"], false, "the answer came after the change was stored and shown");
    let on = json!({"type": "duty", "on": true}).to_string();
    assert_eq!(http_request(app.http, "POST", "/api/v1/responder/actions", &[bearer], &on).await.0, 200);
    let (status, _) =
        http_request(app.http, "GET", "/api/v1/responder/me", &[("Authorization", "Bearer nope")], "").await;
    assert_eq!(status, 401);

    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("rest-phone", None).await;
    console.incident_for("d-1").await;
    // The phones' views are published just after the consoles' deltas of the same batch: a
    // phone asking the moment a console shows the incident may be a moment early (CI saw it).
    let deadline = tokio::time::Instant::now() + WAIT;
    let job = loop {
        let (_, body) = http_request(app.http, "GET", "/api/v1/responder/job", &[bearer], "").await;
        let job: Value = serde_json::from_str(&body).unwrap();
        if job["job"]["state"] == "offered" || tokio::time::Instant::now() > deadline {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(job["job"]["state"], "offered", "{job}");
    let id = job["job"]["incident_id"].as_u64().unwrap();

    let accept = json!({"type": "accept", "incident_id": id, "request_id": "r1"}).to_string();
    let (status, body) = http_request(app.http, "POST", "/api/v1/responder/actions", &[bearer], &accept).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap(),
        json!({"type": "result", "request_id": "r1", "ok": true})
    );
    assert_eq!(console.incident_for("d-1").await["incident"]["state"], "accepted");
    // A step the state does not allow, or not JSON: 422 with the reason; nothing changes.
    let again = json!({"type": "accept", "incident_id": id}).to_string();
    let (status, body) = http_request(app.http, "POST", "/api/v1/responder/actions", &[bearer], &again).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("cannot become"), "{body}");
    let (status, body) = http_request(app.http, "POST", "/api/v1/responder/actions", &[bearer], "{not json").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(app.metric("anxin_ws_frames_rejected_total{reason=\"malformed\"}").await, 1.0);
    assert_eq!(app.metric("anxin_ws_frames_rejected_total{reason=\"bad_token\"}").await, 2.0);
    app.stop().await;
}

/// Loops until a phone's next job frame that satisfies `pred`.
async fn job_frame(phone: &mut TestConsole, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let m = phone.next().await;
        if m["type"] == "job" && pred(&m["job"]) {
            return m["job"].clone();
        }
    }
}

/// SOS presses go to two responders at once (first to accept wins, the other offer is
/// withdrawn from their phone); a smoke alarm shows 119 from the start, and when its only
/// responder declines, the station's duty line is sent the incident over MQTT, then a
/// dispatcher is called in with 119.
pub async fn parallel_offers_and_the_station_duty_line(backend: Backend, client_id: String) {
    let clock = anxind::clock::ManualClock::starting_at(anxin_proto::wall_clock_now());
    let adjust = |c: &mut Config| {
        c.dispatch
            .ladders
            .insert("sos".into(), anxind::config::LadderConfig { parallel: Some(2), ..Default::default() });
    };
    let app = spawn_app_on(&backend, &client_id, adjust, anxind::clock::Clock::Manual(clock.clone())).await;
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    let mut near = TestConsole::connect_with_token(app.http, "token-r-near").await;
    let mut second = TestConsole::connect_with_token(app.http, "token-r-second").await;
    for phone in [&mut near, &mut second] {
        job_frame(phone, Value::is_null).await;
    }
    let alerts_topic = format!("{}/v1/stations/st-qianwei/alerts", app.topic_root);
    let mut duty_line = TestDevice::listening_to(&app, "duty-line", &alerts_topic).await;

    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("two-at-once", None).await;
    let offered = console.incident_for("d-1").await;
    let offers: Vec<_> = offered["incident"]["offers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["responder"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(offers, ["r-near", "r-second"], "both offered at once, nearest first");
    let id = offered["incident"]["id"].as_u64().unwrap();
    for phone in [&mut near, &mut second] {
        let job = job_frame(phone, |j| !j.is_null()).await;
        assert_eq!((job["incident_id"].as_u64(), job["state"].as_str()), (Some(id), Some("offered")));
    }
    let won = second.ask(json!({"type": "accept", "incident_id": id})).await;
    assert_eq!(won["ok"], true, "{won}");
    job_frame(&mut near, Value::is_null).await; // r-near's offer is withdrawn from the phone
    let late = near.ask(json!({"type": "accept", "incident_id": id})).await;
    assert_eq!(late["ok"], false, "the loser's accept is refused: {late}");
    let accepted = loop {
        let m = console.incident_for("d-1").await;
        if m["incident"]["state"] == "accepted" {
            break m;
        }
    };
    assert_eq!(accepted["incident"]["responder"]["id"], "r-second");
    assert_eq!(accepted["incident"]["offers"], json!([]));
    let log = app.store.incident_events(IncidentId(id)).await.unwrap();
    let r_near = ResponderId::parse("r-near").unwrap();
    assert!(log.iter().any(|e| e.change == Change::OfferWithdrawn { responder_id: r_near.clone() }), "{log:?}");

    // A smoke alarm at d-3: r-second is busy, so r-near alone is offered; 119 shows at once.
    let d3 = TestDevice::connect(&app, "d-3").await;
    let smoke = json!({"msg_id": "smoke-1", "type": "smoke", "ts": clock.now().millis()});
    d3.publish_raw(smoke.to_string()).await;
    let fire = console.incident_for("d-3").await;
    assert_eq!((fire["incident"]["kind"].as_str(), fire["incident"]["priority"].as_u64()), (Some("fire"), Some(1)));
    assert_eq!(fire["incident"]["ladder"]["emergency_number"], "119");
    let fire_id = fire["incident"]["id"].as_u64().unwrap();
    let job = job_frame(&mut near, |j| !j.is_null()).await;
    assert_eq!((job["incident_id"].as_u64(), job["kind"].as_str()), (Some(fire_id), Some("fire")));
    assert_eq!(near.ask(json!({"type": "decline", "incident_id": fire_id})).await["ok"], true);

    let alert = duty_line.next_command().await;
    assert_eq!(alert["type"], "station_alert", "{alert}");
    assert_eq!((alert["incident_id"].as_u64(), alert["kind"].as_str()), (Some(fire_id), Some("fire")));
    assert_eq!(alert["station_id"], "st-qianwei");
    assert_eq!(alert["elder"]["name"], "长者3");
    assert_eq!(alert["offers_made"], 1);
    let station = loop {
        let m = console.incident_for("d-3").await;
        if m["incident"]["state"] == "station_alerted" {
            break m;
        }
    };
    assert_eq!(alert["deadline"], station["incident"]["ladder"]["station_deadline"]);

    clock.advance(Duration::from_secs(120));
    let nobody = loop {
        let m = console.incident_for("d-3").await;
        if m["incident"]["state"] == "awaiting_dispatcher" {
            break m;
        }
    };
    assert_eq!(nobody["incident"]["dispatcher_needed"], "nobody_going");
    assert_eq!(nobody["incident"]["ladder"]["emergency_number"], "119", "the fire service, not an ambulance");
    app.stop().await;
}

/// Consoles need a signed-in dispatcher. Two dispatchers and a supervisor share the queue:
/// a claim is one dispatcher's, the other is refused and told who; the supervisor takes it
/// over. Notes, calls and an escalation land in the timeline, with who did them; the
/// suggestions rank who could go; the map's roster follows a responder's status.
pub async fn dispatchers_sign_in_claim_and_keep_the_record(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    // Without a session: refused at sign-in, and a console socket is closed with 4401.
    let wrong = json!({"user": "wang", "password": "nope"}).to_string();
    let (status, _) = http_request(app.http, "POST", "/api/v1/session", &[], &wrong).await;
    assert_eq!(status, 401);
    let (status, _) = http_request(app.http, "GET", "/api/v1/session", &[], "").await;
    assert_eq!(status, 401);
    let (mut anonymous, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", app.http)).await.unwrap();
    match tokio::time::timeout(WAIT, anonymous.next()).await.unwrap() {
        Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f)))) => assert_eq!(u16::from(f.code), 4401),
        other => panic!("expected a close frame, got {other:?}"),
    }
    assert_eq!(app.metric("anxin_console_sign_ins_total{result=\"refused\"}").await, 1.0);

    let wang_cookie = sign_in(app.http, "wang").await;
    // Behind a TLS-terminating proxy the cookie is kept to HTTPS; on plain HTTP it cannot be.
    let body = json!({"user": "wang", "password": TEST_PASSWORD}).to_string();
    for (headers, secure) in [(&[][..], false), (&[("X-Forwarded-Proto", "https")][..], true)] {
        let (status, head, _) = http_exchange(app.http, "POST", "/api/v1/session", headers, &body).await;
        let set_cookie = head.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).unwrap_or_default();
        assert_eq!((status, set_cookie.ends_with("; Secure")), (200, secure), "{headers:?}: {set_cookie}");
    }
    let (status, me) = http_request(app.http, "GET", "/api/v1/session", &[("Cookie", &wang_cookie)], "").await;
    assert_eq!(
        (status, serde_json::from_str::<Value>(&me).unwrap()["user"]["role"].clone()),
        (200, json!("dispatcher"))
    );
    let mut wang = TestConsole::opening(app.http, &wang_cookie, None, None).await;
    let welcome = wang.next().await;
    assert_eq!((welcome["type"].as_str(), welcome["user"]["id"].as_str()), (Some("welcome"), Some("wang")));
    assert_eq!(welcome["console"]["accept_target_s"], 60);
    assert_eq!(welcome["staff"].as_array().unwrap().len(), 4, "wang, li, zhao and kang (the admin)");
    let roster = wang.next().await;
    assert_eq!(roster["type"], "roster");
    assert_eq!(roster["responders"].as_array().unwrap().len(), 2);
    assert_eq!(roster["stations"][0]["service_circle_min"], 15);
    assert_eq!(wang.next().await["type"], "snapshot");
    let mut li = TestConsole::connect_signed_in(app.http, &sign_in(app.http, "li").await, None, None).await;
    li.next().await;
    let mut zhao = TestConsole::connect_signed_in(app.http, &sign_in(app.http, "zhao").await, None, None).await;
    zhao.next().await;

    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("claim-me", None).await;
    let opened = wang.incident_for("d-1").await;
    let id = opened["incident"]["id"].as_u64().unwrap();
    let elder = &opened["incident"]["elder"];
    assert_eq!((elder["lives_alone"].as_bool(), elder["door_notes"].as_str()), (Some(true), Some("门禁 1234#")));
    assert_eq!(elder["contacts"][0]["relation"], "女儿");
    assert!((84..=87).contains(&elder["age"].as_u64().unwrap()), "born 1940: {elder}");
    assert_eq!(wang.responder_frame("r-near").await["responder"]["status"], "offered");

    let suggestions = wang.ask(json!({"type": "suggest", "incident_id": id, "request_id": "s"})).await;
    assert_eq!(suggestions["ok"], true, "{suggestions}");
    let ranked: Vec<_> =
        suggestions["suggestions"].as_array().unwrap().iter().map(|s| s["responder"]["id"].clone()).collect();
    assert_eq!(ranked, [json!("r-second")], "r-near holds the offer, so only r-second is free");
    assert!(suggestions["suggestions"][0]["eta_min"].as_u64().unwrap() >= 1);

    // One claim wins; the other dispatcher is told who holds it and cannot act on it.
    let claim = json!({"type": "command", "incident_id": id, "action": "claim"});
    assert_eq!(wang.ask(claim.clone()).await["ok"], true);
    let lost = li.ask(claim.clone()).await;
    assert_eq!(lost["ok"], false);
    assert!(
        lost["error"].as_str().unwrap().contains("claimed by 调度员 wang (wang)"),
        "named as people know them: {lost}"
    );
    let seen = loop {
        let m = li.incident_for("d-1").await;
        if !m["incident"]["claimed_by"].is_null() {
            break m;
        }
    };
    assert_eq!(seen["incident"]["claimed_by"]["id"], "wang", "the others see who");
    assert!(opened["incident"]["acknowledged_at"].is_null(), "a new incident sounds until someone sees it");
    assert!(seen["incident"]["acknowledged_at"].is_i64(), "claiming it is seeing it: every console goes quiet");
    let assign = json!({"type": "command", "incident_id": id, "action": "assign", "responder_id": "r-second"});
    assert_eq!(li.ask(assign).await["ok"], false, "not li's to assign");
    let note = json!({"type": "command", "incident_id": id, "action": "note", "text": "邻居说老人在家"});
    assert_eq!(li.ask(note).await["ok"], true, "anyone may add a note");

    let call = json!({"type": "command", "incident_id": id, "action": "call", "who": "女儿1", "number": "13700000001", "outcome": "她十分钟后到"});
    assert_eq!(wang.ask(call).await["ok"], true);
    let escalate =
        json!({"type": "command", "incident_id": id, "action": "escalate", "number": "120", "reference": "YN-0042"});
    assert_eq!(wang.ask(escalate).await["ok"], true);
    let empty = json!({"type": "command", "incident_id": id, "action": "note", "text": " "});
    assert_eq!(wang.ask(empty).await["ok"], false, "an empty note is refused");

    // The supervisor takes the claim over.
    let taken = zhao.ask(claim).await;
    assert_eq!(taken["ok"], true, "{taken}");
    let timeline = li.ask(json!({"type": "timeline", "incident_id": id, "request_id": "t"})).await;
    let events = timeline["events"].as_array().unwrap();
    let find =
        |t: &str| events.iter().find(|e| e["change"]["type"] == t).unwrap_or_else(|| panic!("{t} in {timeline}"));
    assert_eq!(find("note")["actor"], json!({"type": "dispatcher", "id": "li"}));
    assert_eq!(find("call_logged")["change"]["outcome"], "她十分钟后到");
    assert_eq!(find("emergency_called")["change"]["reference"], "YN-0042");
    let takeover = events.iter().rev().find(|e| e["change"]["type"] == "claimed").unwrap();
    assert_eq!((takeover["change"]["by"].as_str(), takeover["change"]["from"].as_str()), (Some("zhao"), Some("wang")));
    assert_eq!(events[0]["change"]["type"], "opened", "the whole trail, in order");

    // A responder frame follows the job: r-near accepts, the map shows them busy.
    let mut near = TestConsole::connect_with_token(app.http, "token-r-near").await;
    assert_eq!(near.ask(json!({"type": "accept", "incident_id": id})).await["ok"], true);
    assert_eq!(wang.responder_frame("r-near").await["responder"]["status"], "busy");

    let (status, _) = http_request(app.http, "DELETE", "/api/v1/session", &[("Cookie", &wang_cookie)], "").await;
    assert_eq!(status, 204);
    let (status, _) = http_request(app.http, "GET", "/api/v1/session", &[("Cookie", &wang_cookie)], "").await;
    assert_eq!(status, 401, "signed out");
    // Guessing is slowed: after five wrong passwords for one name from one address, even the
    // right one waits (429, Retry-After); other names are not held up.
    let guess = json!({"user": "li", "password": "guess"}).to_string();
    for _ in 0..anxin_api::auth::FREE_TRIES {
        assert_eq!(http_request(app.http, "POST", "/api/v1/session", &[], &guess).await.0, 401);
    }
    let right = json!({"user": "li", "password": TEST_PASSWORD}).to_string();
    let (status, head, body) = http_exchange(app.http, "POST", "/api/v1/session", &[], &right).await;
    assert_eq!(status, 429, "{body}");
    let retry = head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("retry-after: ").map(str::to_string));
    assert_eq!(retry.as_deref(), Some("30"), "{head}");
    assert_eq!(app.metric("anxin_console_sign_ins_total{result=\"limited\"}").await, 1.0);
    app.stop().await;
}

/// The newcomer's bug 4: a dispatcher claimed an incident and signed out, and everyone else
/// was refused. Signing out ends the claim; the incident, still waiting for a dispatcher,
/// alarms on every console again, and the next dispatcher can act on it.
pub async fn a_claim_ends_when_its_holder_signs_out(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let wang_cookie = sign_in(app.http, "wang").await;
    let mut wang = TestConsole::connect_signed_in(app.http, &wang_cookie, None, None).await;
    assert_eq!(wang.next().await["type"], "snapshot");
    let mut li = TestConsole::connect_signed_in(app.http, &sign_in(app.http, "li").await, None, None).await;
    assert_eq!(li.next().await["type"], "snapshot");
    let online = li.presence.clone().expect("a console is told who is online");
    assert_eq!(online["online"], json!(["li", "wang"]));

    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.publish_raw(json!({"msg_id": "svc-1", "type": "service"}).to_string()).await;
    let opened = li.incident_for("d-1").await;
    let id = opened["incident"]["id"].as_u64().unwrap();
    assert_eq!(opened["incident"]["alarm"]["need"], "service_request", "{opened}");
    let claim = json!({"type": "command", "incident_id": id, "action": "claim"});
    assert_eq!(wang.ask(claim.clone()).await["ok"], true);
    let refused = li.ask(json!({"type": "command", "incident_id": id, "action": "acknowledge"})).await;
    assert_eq!(refused["code"], "claimed_by_other", "{refused}");
    assert_eq!(refused["args"]["by"], "调度员 wang (wang)");

    let (status, _) = http_request(app.http, "DELETE", "/api/v1/session", &[("Cookie", &wang_cookie)], "").await;
    assert_eq!(status, 204);
    let freed = loop {
        let m = li.incident_for("d-1").await;
        if m["incident"]["claimed_by"].is_null() && !m["incident"]["alarm"].is_null() {
            break m;
        }
    };
    assert_eq!(freed["incident"]["alarm"]["need"], "claimant_gone", "{freed}");
    let seen = freed["incident"]["alarm"]["raised_seq"].clone();
    let ack = json!({"type": "command", "incident_id": id, "action": "acknowledge", "alarm": seen});
    assert_eq!(li.ask(ack).await["ok"], true, "the next dispatcher may act");
    let timeline = li.ask(json!({"type": "timeline", "incident_id": id})).await;
    let released = timeline["events"].as_array().unwrap().iter().find(|e| e["change"]["type"] == "released").cloned();
    let released = released.expect("the claim's end is in the record");
    assert_eq!(
        (released["change"]["why"].as_str(), released["actor"]["type"].as_str()),
        (Some("signed_out"), Some("engine"))
    );
    app.stop().await;
}

/// A stuck button: 100 presses as fast as the device can send them are one incident; every
/// message is stored (none lost) but the repeats change nothing, and they are counted.
pub async fn a_stuck_button_is_one_incident(backend: Backend, client_id: String) {
    let app = spawn_app_with(&backend, &client_id, |c| c.dispatch.repeat_press_interval_ms = 60_000).await;
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    let d2 = TestDevice::connect(&app, "d-2").await;
    for n in 0..100 {
        d2.press(&format!("stuck-{n}"), None).await;
    }
    let opened = console.incident_for("d-2").await;
    assert_eq!(opened["incident"]["press_count"], 1);
    // The cancel goes after the flood; once it shows, everything before it is stored.
    d2.publish_raw(json!({"msg_id": "let-go", "type": "cancel"}).to_string()).await;
    assert_eq!(console.incident_for("d-2").await["incident"]["cancel_requested"], true, "a cancel always counts");
    assert_eq!(app.metric("anxin_presses_throttled_total").await, 99.0);
    let device = DeviceId::parse("d-2").unwrap();
    let id = IncidentId(opened["incident"]["id"].as_u64().unwrap());
    for n in [0, 50, 99] {
        let msg = app.store.message(&device, &MessageId::parse(format!("stuck-{n}")).unwrap()).await.unwrap();
        assert_eq!(msg.expect("stored, none lost").incident_id, Some(id));
    }
    assert_eq!(app.store.incident_count().await.unwrap(), 1);
    app.stop().await;
}

/// A port another process binds in a moment (Kamailio's SIP port, on UDP and TCP, and its
/// consoles' WebSocket; SIPp's; a Mosquitto of a test's own; an anxind restarted on the same
/// port): free on loopback for both UDP and TCP now,
/// a different one at each call in this process, and below the range the kernel takes local
/// ports of outgoing connections from (`ip_local_port_range`), so that no connection made
/// meanwhile (the nodes', PostgreSQL's, the broker's) takes it first. A port the kernel chose
/// (binding port 0) was from that range, and once a connection had taken Kamailio's TCP port
/// before it bound it: "Address already in use", and the test failed in CI.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let (low, high) = (10_000u32, ephemeral.max(12_000));
    let start = std::process::id() % (high - low);
    for _ in 0..(high - low) {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = (low + (start + n) % (high - low)) as u16;
        let udp = std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok();
        if udp && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port free below {high} on loopback")
}
