//! The walking skeleton end to end on the zero-setup defaults: the embedded broker and SQLite.

#[macro_use]
#[allow(unused_macros)]
mod story;

use serde_json::json;
use std::time::Duration;
use story::*;

macro_rules! embedded {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let dir = tempfile::tempdir().unwrap();
            story::$name(Backend::embedded(dir.path()), unique("anxind", stringify!($name))).await;
        }
    )*};
}

every_story!(embedded);

#[tokio::test]
async fn health_and_metrics_answer() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(&Backend::embedded(dir.path()), &unique("anxind", "health")).await;
    assert_eq!(app.get("/healthz").await.0, 200);
    let (status, body) = app.get("/readyz").await;
    assert_eq!(status, 200);
    let ready: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(ready, json!({"ready": true, "checks": {"mqtt": true, "store": true, "engine": true}}));
    assert_eq!(app.metric("anxin_incidents_opened_total{kind=\"sos\"}").await, 0.0);
    let (status, page) = app.get("/console").await;
    assert_eq!(status, 200);
    assert!(page.contains("/assets/console.js"), "the console page loads its script");
    app.stop().await;
}

#[tokio::test]
async fn the_engine_stops_within_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(&Backend::embedded(dir.path()), &unique("anxind", "stop")).await;
    let started = std::time::Instant::now();
    app.stop().await; // panics if not stopped within WAIT
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?}", started.elapsed());
}

/// A station alert the broker would not take (an elder's notes pasted in whole: 75 kB, over
/// the engine's 64 KiB packet limit, which Mosquitto's `max_packet_size` matches) is not
/// sent, since a broker drops a connection that sends one: it is counted, the device still
/// hears that help is coming, and the engine's connection carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_station_alert_too_large_to_send_is_counted_and_nothing_else_stops() {
    let dir = tempfile::tempdir().unwrap();
    let mut registry = registry();
    let far = registry.elders.iter_mut().find(|e| e.id.as_str() == "e-4").unwrap();
    far.notes = "长".repeat(25_000);
    let backend = Backend::embedded(dir.path());
    let app =
        spawn_app_from(&backend, &unique("anxind", "big-alert"), registry, |_| {}, anxind::clock::Clock::System).await;
    let unsent = "anxin_mqtt_commands_unsent_total{reason=\"oversized\"}";
    assert_eq!(app.metric(unsent).await, 0.0);
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    let alerts = format!("{}/v1/stations/st-biji/alerts", app.topic_root);
    let mut duty_line = TestDevice::listening_to(&app, "duty-line", &alerts).await;

    // Nobody is in range of d-4: the ladder's next rung is st-biji's duty line.
    let mut d4 = TestDevice::connect(&app, "d-4").await;
    d4.press("far-away", None).await;
    let delta = console.incident_for("d-4").await;
    assert_eq!(delta["incident"]["state"], "station_alerted");
    assert_eq!(d4.next_command().await["type"], "help_coming");
    assert_eq!(app.metric(unsent).await, 1.0, "the alert that could not go is counted");

    // The connection is still up: the next press is shown and answered.
    let mut d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("after-the-big-alert", None).await;
    assert_eq!(console.incident_for("d-1").await["incident"]["state"], "offered");
    assert_eq!(d1.next_command().await["type"], "help_coming");
    assert_eq!(duty_line.heard(), None, "the oversized alert was not sent");
    assert_eq!(app.metric("anxin_mqtt_connections_lost_total").await, 0.0);
    app.stop().await;
}

/// A device that sends what the embedded broker will not carry (a 1 MB payload, a topic that
/// is not UTF-8) is disconnected, and that used to leave no trace but rumqttd's log line:
/// now each is counted on `anxin_mqtt_refused_total` with its reason, and the next press from
/// another device still becomes an incident and hears `help_coming`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_broker_counts_the_devices_it_drops() {
    use anxin_mqtt::rumqttc::mqttbytes::v4::{Connect, Packet};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(&Backend::embedded(dir.path()), &unique("anxind", "broker-drops")).await;
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    let root = app.topic_root.clone();
    // A device speaking MQTT by hand: CONNECT, then a PUBLISH (QoS 0) with the topic's bytes
    // as given, which no client library would send.
    let drop_after = |id: &'static str, topic: Vec<u8>, payload: Vec<u8>| {
        let mqtt = app.mqtt.clone();
        async move {
            let mut s = tokio::net::TcpStream::connect((mqtt.0.as_str(), mqtt.1)).await.unwrap();
            let mut connect = bytes::BytesMut::new();
            Packet::Connect(Connect::new(id)).write(&mut connect, 1024).unwrap();
            s.write_all(&connect).await.unwrap();
            let mut connack = [0u8; 4];
            s.read_exact(&mut connack).await.unwrap();
            assert_eq!(connack, [0x20, 2, 0, 0], "{id} is let in");
            let mut body = (topic.len() as u16).to_be_bytes().to_vec();
            body.extend(topic);
            body.extend(payload);
            let (mut publish, mut len) = (vec![0x30], body.len());
            while len >= 128 {
                publish.push((len % 128) as u8 | 0x80);
                len /= 128;
            }
            publish.push(len as u8);
            publish.extend(body);
            let _ = s.write_all(&publish).await; // the broker may close before reading it all
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest).await; // returns once the broker has closed
        }
    };
    drop_after("d-huge", format!("{root}/v1/devices/d-2/events").into_bytes(), vec![b'x'; 1 << 20]).await;
    let mut garbled = format!("{root}/v1/devices/").into_bytes();
    garbled.extend(b"\xff\xfe/events");
    drop_after("d-garbled", garbled, br#"{"msg_id":"m","type":"sos"}"#.to_vec()).await;

    tokio::time::timeout(WAIT, async {
        let (oversized, not_utf8) =
            ("anxin_mqtt_refused_total{reason=\"oversized\"}", "anxin_mqtt_refused_total{reason=\"topic_not_utf8\"}");
        while (app.metric(oversized).await, app.metric(not_utf8).await) != (1.0, 1.0) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("both drops are counted");

    let mut d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("after-the-drops", None).await;
    assert_eq!(console.incident_for("d-1").await["incident"]["press_count"], 1);
    assert_eq!(d1.next_command().await["type"], "help_coming");
    assert_eq!(app.metric("anxin_mqtt_refused_total{reason=\"closed_by_broker\"}").await, 0.0);
    app.stop().await;
}

/// The alert rules in `deploy/prometheus/` watch metrics anxind exports, by their exported
/// names: a metric renamed or removed in the code fails here, not silently in production
/// (the dashboard's are held to them panel by panel in `operations.rs`). `anxin_ready`
/// answers as `/readyz` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_rules_watch_metrics_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(&Backend::embedded(dir.path()), &unique("anxind", "alerts")).await;
    let exported = app.exported_metrics().await;
    let rules =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/prometheus/anxin-alerts.yml"))
            .expect("the alert rules");
    let watched: std::collections::BTreeSet<String> =
        rules.lines().filter(|l| !l.trim_start().starts_with('#')).flat_map(metric_names).collect();
    assert!(watched.len() >= 10, "the rules name anxind's metrics: {watched:?}");
    let missing: Vec<_> = watched.iter().filter(|m| !exported.contains(*m)).collect();
    assert!(missing.is_empty(), "alert rules watch metrics anxind does not export: {missing:?}");
    let ready = app.metric("anxin_ready{check=\"store\"}").await;
    assert_eq!(ready, 1.0, "the store answers, as /readyz says");
    app.stop().await;
}
