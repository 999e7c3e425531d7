//! Ingest sessions on a shared subscription (issue 25, `SCALE-OUT.md` "Ingest"), on
//! Mosquitto and PostgreSQL: two sessions share the devices' messages, every message is
//! filed in the inbox once whoever was given it (repeats absorbed, garbage kept), and the
//! messages a session was given but never acknowledged (it died) are given again to the next
//! session under its client id. Runs when `ANXIN_TEST_MQTT_URL` and
//! `ANXIN_TEST_POSTGRES_URL` name the servers (required under `CI=true`).

#[macro_use]
#[allow(unused_macros)]
mod story;

use anxin_core::Zone;
use anxin_mqtt::rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use anxin_mqtt::{LinkOptions, Topics};
use anxin_store::inbox::InboxStore;
use anxind::ingest::IngestCounts;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use story::*;
use tokio_util::sync::CancellationToken;

fn session(broker: &str, client_id: &str, group: &str, topics: &Topics) -> LinkOptions {
    let (host, port) = anxind::config::broker_address(broker).unwrap();
    LinkOptions {
        host,
        port,
        client_id: client_id.into(),
        keep_alive: Duration::from_secs(5),
        max_outgoing_bytes: 64 * 1024,
        quick_ack: true,
        username: None,
        password: None,
        topics: topics.clone(),
        share_group: Some(group.into()),
        subscribe: true,
    }
}

/// A device client that publishes `payloads` on `device`'s events topic, QoS 1, and waits
/// for every PUBACK.
async fn publish(broker: &str, topics: &Topics, device: &str, payloads: Vec<String>) {
    let (host, port) = anxind::config::broker_address(broker).unwrap();
    let mut opts = MqttOptions::new(unique("ingest-device", device), host, port);
    opts.set_keep_alive(Duration::from_secs(5));
    let (client, mut events) = AsyncClient::new(opts, payloads.len() + 10);
    let n = payloads.len();
    let topic = topics.events(&anxin_core::DeviceId::parse(device).unwrap());
    for p in payloads {
        client.publish(topic.clone(), QoS::AtLeastOnce, false, p).await.unwrap();
    }
    let mut acked = 0;
    while acked < n {
        match tokio::time::timeout(Duration::from_secs(10), events.poll()).await.expect("the broker answers") {
            Ok(Event::Incoming(Packet::PubAck(_))) => acked += 1,
            Ok(_) => {}
            Err(e) => panic!("device connection: {e}"),
        }
    }
    client.disconnect().await.unwrap();
}

fn press(msg: &str) -> String {
    format!(r#"{{"msg_id":"{msg}","type":"sos","ts":1763000000000}}"#)
}

/// Waits until the inbox holds `n` messages of zone 0, and returns their keys.
async fn filed(store: &dyn InboxStore, n: usize) -> BTreeSet<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let all = store.inbox_take(&[Zone::FIRST], 100_000).await.unwrap();
        if all.len() >= n || tokio::time::Instant::now() > deadline {
            return all.into_iter().map(|e| e.msg_key).collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_share_the_messages_file_each_once_and_a_dead_ones_are_given_to_its_successor() {
    let Some(backend) = external_backend().await else { return };
    let store: Arc<dyn InboxStore> = Arc::new(anxin_store::PostgresStore::open(&backend.store_url).await.unwrap());
    let root = unique("ingest", "share").replace('-', "");
    let topics = Topics::new(&root).unwrap();
    let group = root.clone();
    let (a_id, b_id) = (format!("{root}-slot-a"), format!("{root}-slot-b"));
    let start = |id: &str| {
        let counts = Arc::new(IngestCounts::default());
        let stop = CancellationToken::new();
        let task = tokio::spawn(anxind::ingest::run(
            session(&backend.broker, id, &group, &topics),
            store.clone(),
            64,
            counts.clone(),
            stop.clone(),
        ));
        (counts, stop, task)
    };
    let (a_counts, a_stop, a_task) = start(&a_id);
    let (b_counts, b_stop, b_task) = start(&b_id);
    tokio::time::sleep(Duration::from_millis(500)).await; // both subscribed

    // 300 presses from three devices, 5 sent twice, and 2 that do not read.
    let mut expected = BTreeSet::new();
    for d in 0..3 {
        let mut payloads: Vec<String> = (0..100).map(|k| press(&format!("m-{d}-{k}"))).collect();
        expected.extend((0..100).map(|k| format!("m-{d}-{k}")));
        if d == 0 {
            payloads.extend((0..5).map(|k| press(&format!("m-0-{k}"))));
            payloads.push("not json at all".into());
            payloads.push("{\"msg_id\": 7}".into());
        }
        publish(&backend.broker, &topics, &format!("d-{d}"), payloads).await;
    }
    let keys = filed(&*store, 302).await;
    assert_eq!(keys.len(), 302, "300 presses and 2 that do not read, each once");
    assert!(expected.is_subset(&keys));
    assert_eq!(keys.iter().filter(|k| k.starts_with("digest:")).count(), 2);
    let (a, b) = (
        a_counts.filed.load(std::sync::atomic::Ordering::Relaxed),
        b_counts.filed.load(std::sync::atomic::Ordering::Relaxed),
    );
    assert!(a > 0 && b > 0, "both sessions were given messages: {a} and {b}");
    assert!(a + b >= 307, "every message given was filed (repeats absorbed by the inbox): {a} + {b}");

    // Session a dies without a word (its task aborted: no DISCONNECT, nothing more
    // acknowledged); what the broker gives it meanwhile waits in its session.
    a_task.abort();
    let _ = a_task.await;
    let more: Vec<String> = (0..200).map(|k| press(&format!("late-{k}"))).collect();
    publish(&backend.broker, &topics, "d-1", more).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = filed(&*store, 0).await.len();
    // Its successor connects under the same client id and is given what waited there.
    let (c_counts, c_stop, c_task) = start(&a_id);
    assert!(before < 502, "some of the late presses were given to a and waited in its session");
    let keys = filed(&*store, 502).await;
    assert_eq!(keys.len(), 502, "every late press filed once: {} before the successor came", before - 302);
    eprintln!(
        "late presses: {} filed by b, {} waited for a's successor",
        before - 302,
        c_counts.filed.load(std::sync::atomic::Ordering::Relaxed)
    );
    for (stop, task) in [(b_stop, b_task), (c_stop, c_task)] {
        stop.cancel();
        task.await.unwrap();
    }
    drop(a_stop); // its task was aborted above
}

/// Devices' side for an engine reading the inbox: an acknowledgement (after the commit that
/// took the message out) ends its flight, commands are kept for the test to read.
struct InboxDevices {
    in_flight: Arc<anxind::inbox::InFlight>,
    sent: std::sync::Mutex<Vec<(String, anxin_core::DeviceCommand)>>,
}

impl anxin_runtime::Devices<anxind::inbox::InboxMessage> for InboxDevices {
    fn ack(&self, message: anxind::inbox::InboxMessage) {
        self.in_flight.done(&message);
    }
    fn send(&self, device: &anxin_core::DeviceId, command: &anxin_core::DeviceCommand) {
        self.sent.lock().unwrap().push((device.to_string(), command.clone()));
    }
    fn alert(&self, _: &anxin_core::StationAlert) {}
}

struct NoFeeds;

impl anxin_runtime::Feeds for NoFeeds {
    fn incidents(&self, _: Vec<anxin_core::IncidentView>) {}
    fn phones(&self, _: Vec<anxin_runtime::PhoneView>) {}
    fn responders(&self, _: Vec<anxin_core::ResponderView>) {}
}

/// The whole way in, on one node: a press is filed by an ingest session, read from the inbox
/// by the engine of its zone (the real runtime), stored and taken out of the inbox in one
/// commit, and answered with `help_coming`; the same press again is told again, opens
/// nothing, and is taken out too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_filed_in_the_inbox_is_handled_by_its_zones_engine_and_taken_out() {
    let Some(backend) = external_backend().await else { return };
    let pg = Arc::new(anxin_store::PostgresStore::open(&backend.store_url).await.unwrap());
    let store: Arc<dyn anxin_store::Store> = pg.clone();
    let inbox: Arc<dyn InboxStore> = pg.clone();
    store.save_registry(&registry()).await.unwrap();
    let root = unique("inbox", "engine").replace('-', "");
    let topics = Topics::new(&root).unwrap();
    let stop = CancellationToken::new();

    // The zone's engine, reading the inbox.
    let in_flight = Arc::new(anxind::inbox::InFlight::default());
    let devices = Arc::new(InboxDevices { in_flight: in_flight.clone(), sent: Default::default() });
    let resume = store.resume(&[Zone::FIRST], anxin_proto::wall_clock_now().plus_millis(-86_400_000)).await.unwrap();
    let engine = anxin_core::Engine::new(anxin_core::Policy::default(), store.load_registry().await.unwrap(), resume);
    let ports = anxin_runtime::Ports {
        store: Arc::new(anxind::ports::StorePort(store.clone(), None)),
        devices: devices.clone(),
        feeds: Arc::new(NoFeeds),
        clock: Arc::new(anxind::clock::Clock::System),
        telemetry: Arc::new(anxin_runtime::NoTelemetry),
    };
    let options = anxin_runtime::Options {
        batch_max: 64,
        commits_in_flight: 1,
        intake: anxin_runtime::Intake { topics: topics.clone(), max_payload_bytes: 4096 },
        health_snapshot: Duration::from_secs(60),
        fault: anxin_runtime::Fault::None,
    };
    let (messages, messages_rx) = tokio::sync::mpsc::channel(256);
    let (_commands, commands_rx) = tokio::sync::mpsc::channel(8);
    let runtime =
        tokio::spawn(anxin_runtime::Runtime::new(engine, ports, options).run(messages_rx, commands_rx, stop.clone()));
    let ears = anxind::inbox::Ears::start(backend.store_url.clone(), stop.clone());
    let feed = tokio::spawn(anxind::inbox::feed(
        inbox.clone(),
        vec![Zone::FIRST],
        ears.zone(Zone::FIRST),
        Duration::from_millis(250),
        in_flight.clone(),
        messages,
        None,
        stop.clone(),
    ));
    // An ingest session.
    let ingest_stop = CancellationToken::new();
    let ingest = tokio::spawn(anxind::ingest::run(
        session(&backend.broker, &format!("{root}-slot"), &root, &topics),
        inbox.clone(),
        64,
        Arc::new(IngestCounts::default()),
        ingest_stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let told = |n: usize| {
        let devices = devices.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            loop {
                let sent = devices.sent.lock().unwrap().clone();
                if sent.len() >= n || tokio::time::Instant::now() > deadline {
                    return sent;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    publish(&backend.broker, &topics, "d-1", vec![press("p-1")]).await;
    let sent = told(1).await;
    assert_eq!(sent.len(), 1, "help is coming: {sent:?}");
    assert_eq!(sent[0].0, "d-1");
    assert!(matches!(sent[0].1, anxin_core::DeviceCommand::HelpComing { .. }), "{sent:?}");
    assert_eq!(store.incident_count().await.unwrap(), 1);
    // Taken out by the commit that stored it, so before the device was told.
    assert!(inbox.inbox_take(&[Zone::FIRST], 10).await.unwrap().is_empty(), "the handled press is still in the inbox");
    assert!(in_flight.is_empty());
    // The device did not hear and sends it again: filed again, told again, nothing new opened.
    publish(&backend.broker, &topics, "d-1", vec![press("p-1")]).await;
    let sent = told(2).await;
    assert_eq!(sent.len(), 2, "told again: {sent:?}");
    assert_eq!(sent[1], sent[0]);
    assert_eq!(store.incident_count().await.unwrap(), 1);
    // A batch that stored nothing new is committed all the same, to take its message out.
    assert!(inbox.inbox_take(&[Zone::FIRST], 10).await.unwrap().is_empty(), "the repeat is still in the inbox");

    ingest_stop.cancel();
    ingest.await.unwrap();
    stop.cancel();
    assert_eq!(runtime.await.unwrap(), anxin_runtime::Ended::Shutdown);
    feed.await.unwrap();
}

/// A node's one listener to the inbox's announcements (`anxind::inbox::Ears`) wakes the feed
/// of the zone announced, and only that one: with a poll of a minute, a message filed in
/// zone 0 reaches zone 0's feed at once, and zone 1's feed is handed nothing. Without the
/// wake it would wait for the poll, and the 20 s below would run out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nodes_one_listener_wakes_the_feed_of_the_zone_announced() {
    let Some(server) = anxin_store::testkit::postgres_server() else { return eprintln!("skipped: no PostgreSQL") };
    let url = anxin_store::testkit::fresh_postgres_database(&server).await;
    let inbox: Arc<dyn InboxStore> = Arc::new(anxin_store::PostgresStore::open(&url).await.unwrap());
    let stop = CancellationToken::new();
    let ears = anxind::inbox::Ears::start(url.clone(), stop.clone());
    let zone1 = Zone::new(1).unwrap();
    let feed = |zone: Zone| {
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(anxind::inbox::feed(
            inbox.clone(),
            vec![zone],
            ears.zone(zone),
            Duration::from_secs(60),
            Arc::new(anxind::inbox::InFlight::default()),
            tx,
            None,
            stop.clone(),
        ));
        rx
    };
    let (mut first, mut second) = (feed(Zone::FIRST), feed(zone1));
    // Each feed's first read (at its start) finds the inbox empty; the listener is up soon
    // after. Filed until one is heard, a second apart: a message filed before the listener
    // was up is announced to nobody, and waits for the poll.
    let mut heard = None;
    for n in 0..20 {
        // A device the ledger does not know is filed under zone 0.
        let entry = anxin_store::inbox::InboxEntry::new(
            "d-nobody",
            "anxin/v1/devices/d-nobody/events",
            press(&format!("m-{n}")).into_bytes(),
            anxin_proto::wall_clock_now(),
        );
        assert_eq!(inbox.inbox_put(&[entry]).await.unwrap(), vec![Zone::FIRST]);
        if let Ok(m) = tokio::time::timeout(Duration::from_secs(1), first.recv()).await {
            heard = m;
            break;
        }
    }
    let heard = heard.expect("zone 0's feed was woken within 20 s (its poll is a minute)");
    assert_eq!(heard.entry.zone, Zone::FIRST);
    assert!(second.try_recv().is_err(), "zone 1's feed was handed nothing");
    stop.cancel();
}
