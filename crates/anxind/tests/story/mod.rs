//! The walking skeleton's story, told against whichever broker and store a suite names:
//! a real MQTT client as the device, a real WebSocket client as the console.

#![allow(dead_code)] // each suite uses the helpers it needs

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

/// Three elders near the Qianwei station, one far out in the hills, two responders.
pub fn registry() -> Registry {
    let station = |id: &str, lat, lon| Station {
        id: StationId::parse(id).unwrap(),
        name: format!("{id} 社区居家养老服务中心"),
        position: Coordinates::new(lat, lon).unwrap(),
        phone: Some("0871-68000001".into()),
        service_circle_min: None,
    };
    let elder = |n: u32, lat, lon| Elder {
        id: ElderId::parse(format!("e-{n}")).unwrap(),
        name: format!("长者{n}"),
        address: format!("西山区前卫街道 {n} 号"),
        home: Coordinates::new(lat, lon).unwrap(),
        phone: Some(format!("1380000000{n}")),
        notes: "独居".into(),
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
            })
            .collect(),
        stations: vec![station("st-qianwei", 25.0050, 102.6905), station("st-biji", 24.9600, 102.6300)],
        responders: vec![responder("r-near", 25.0060, 102.6910), responder("r-second", 25.0150, 102.7000)],
    }
}

/// A name no other test run uses: a client id and topic root on a shared broker.
pub fn unique(prefix: &str, name: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{name}-{nanos}")
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
    let mut config = Config::defaults();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.broker = backend.broker.clone();
    config.mqtt.embedded_listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.client_id = client_id.to_string();
    config.mqtt.topic_root = client_id.to_string();
    config.store.url = anxind::config::Secret::new(&backend.store_url);
    config.shutdown.deadline_s = 5;
    adjust(&mut config);
    let app = App::build_with_clock(config, Some(registry()), clock).await.expect("app builds");
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
        let (_, body) = self.get("/metrics").await;
        body.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no sample {sample} in /metrics"))
    }
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
        client.subscribe(format!("{root}/v1/devices/{id}/commands"), QoS::AtLeastOnce).await.unwrap();
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
        let mut p = json!({"msg_id": msg_id, "type": "sos", "ts": anxind::app::now().millis()});
        if let Some((lat, lon, acc)) = fix {
            p["location"] = json!({"lat": lat, "lon": lon, "accuracy_m": acc});
        }
        self.publish_raw(p.to_string()).await;
    }

    pub async fn next_command(&mut self) -> Value {
        tokio::time::timeout(WAIT, self.commands.recv()).await.expect("a command arrives").unwrap()
    }
}

/// A console on the WebSocket.
pub struct TestConsole {
    ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    /// Deltas passed over while looking for one device's; messages from different devices
    /// may arrive in any order, so none is thrown away.
    held: std::collections::VecDeque<Value>,
}

impl TestConsole {
    pub async fn connect(http: SocketAddr, since: Option<u64>) -> Self {
        Self::connect_to_history(http, since, None).await
    }

    /// A responder's phone, signed in with its token.
    pub async fn connect_with_token(http: SocketAddr, token: &str) -> Self {
        let (ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{http}/ws?token={token}")).await.expect("phone connects");
        Self { ws, held: Default::default() }
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

    /// Reconnects naming the history its sequence number belongs to.
    pub async fn connect_to_history(http: SocketAddr, since: Option<u64>, history: Option<&str>) -> Self {
        let url = match (since, history) {
            (Some(s), Some(h)) => format!("ws://{http}/ws?since={s}&history={h}"),
            (Some(s), None) => format!("ws://{http}/ws?since={s}"),
            _ => format!("ws://{http}/ws"),
        };
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("console connects");
        Self { ws, held: Default::default() }
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
            let msg =
                tokio::time::timeout(WAIT, self.ws.next()).await.expect("a console message arrives").unwrap().unwrap();
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                return serde_json::from_str(&t).unwrap();
            }
        }
    }

    /// Whether anything arrives within `d` (for checking that nothing does).
    pub async fn next_within(&mut self, d: Duration) -> Option<Value> {
        tokio::time::timeout(d, self.next()).await.ok()
    }

    /// The next delta for the given device, skipping others.
    pub async fn incident_for(&mut self, device: &str) -> Value {
        let is_for = |m: &Value| m["type"] == "incident" && m["incident"]["device_id"] == device;
        if let Some(i) = self.held.iter().position(is_for) {
            return self.held.remove(i).expect("position is in range");
        }
        loop {
            let m = self.next_from_socket().await;
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
    assert_eq!(incident["responder"]["id"], "r-near", "the nearest responder is offered the job");
    assert_eq!(incident["station"]["id"], "st-qianwei");

    let command = device.next_command().await;
    assert_eq!(command["type"], "help_coming");
    assert_eq!(command["incident_id"], incident["id"]);
    assert_eq!(command["responder_assigned"], true);

    let id = IncidentId(incident["id"].as_u64().unwrap());
    let stored = app.store.incident(id).await.unwrap().expect("the incident is stored");
    assert_eq!(stored.responder.unwrap().id.as_str(), "r-near");
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
    assert_eq!(next["incident"]["responder"]["id"], "r-second", "r-near is still on the first job");
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
        ("bad_location", 1.0),
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
    let clock = anxind::clock::ManualClock::starting_at(anxind::app::now());
    let app = spawn_app_on(&backend, &client_id, |_| {}, anxind::clock::Clock::Manual(clock.clone())).await;
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("nobody-answers", None).await;
    let first = console.incident_for("d-1").await;
    assert_eq!(first["incident"]["responder"]["id"], "r-near");
    let deadline = first["incident"]["ladder"]["offer_deadline"].as_i64().unwrap();
    assert_eq!(deadline - clock.now().millis(), 60_000, "a minute to accept");

    clock.advance(Duration::from_secs(59));
    assert!(console.next_within(Duration::from_millis(300)).await.is_none(), "nothing lapses early");
    clock.advance(Duration::from_secs(1));
    let second = console.incident_for("d-1").await;
    let (state, who) = (second["incident"]["state"].as_str(), second["incident"]["responder"]["id"].as_str());
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
    assert!(actors.contains(&Actor::Dispatcher("console".into())));
    app.stop().await;
}

/// The loop's other paths, over the real protocols on a hand-moved clock: an off-duty
/// responder is never offered; a decline goes to the next; an accepted job that does not
/// reach the scene in time re-alarms the dispatcher; a dispatcher cancels with a reason.
pub async fn declines_duty_re_alarm_and_cancel(backend: Backend, client_id: String) {
    let clock = anxind::clock::ManualClock::starting_at(anxind::app::now());
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
    assert_eq!(console.incident_for("d-1").await["incident"]["responder"]["id"], "r-second");

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
    (status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
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

    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("rest-phone", None).await;
    console.incident_for("d-1").await;
    let (_, body) = http_request(app.http, "GET", "/api/v1/responder/job", &[bearer], "").await;
    let job: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(job["job"]["state"], "offered");
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
    assert_eq!(app.metric("anxin_ws_frames_rejected_total{reason=\"bad_token\"}").await, 1.0);
    app.stop().await;
}
