//! The engine's MQTT link against a real broker: the embedded one, so no servers are needed.

use anxin_core::{DeviceCommand, DeviceId, IncidentId};
use anxin_mqtt::rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use anxin_mqtt::{connect, EmbeddedBroker, LinkOptions, Topics};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Long enough for anything that is not stuck; a stuck link never finishes.
const PATIENCE: Duration = Duration::from_secs(60);

/// The engine's session, under a fixed client id so the broker keeps it, with the embedded
/// broker's internal login (devices come in through its guard, on `broker.addr()`).
fn engine(broker: &EmbeddedBroker, port: u16, topics: &Topics) -> LinkOptions {
    let (user, password) = broker.engine_login().clone();
    LinkOptions {
        host: "127.0.0.1".into(),
        port,
        client_id: "link-test-engine".into(),
        keep_alive: Duration::from_secs(30),
        max_outgoing_bytes: 64 * 1024,
        quick_ack: true,
        username: Some(user),
        password: Some(password),
        topics: topics.clone(),
        share_group: None,
        subscribe: true,
    }
}

/// During a surge the engine's queue is full, so the link's task cannot hand over the next
/// message. If the engine then waited for room to send (after a large batch: an ack and a
/// `help_coming` per press), each would wait on the other for ever: the presses would sit at
/// the broker and no elder would hear help is coming. This once stopped the engine at 10,000
/// presses/s. The link goes on writing the engine's acknowledgements and commands meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_sends_while_its_queue_is_full() {
    let broker =
        EmbeddedBroker::start("127.0.0.1:0".parse().unwrap(), 64 * 1024, None, std::sync::Arc::new(|_| {})).unwrap();
    let port = broker.engine_addr().port();
    let device_port = broker.addr().port();
    let topics = Topics::new("link-test").unwrap();
    let device = DeviceId::parse("d1").unwrap();

    // The device listens on its command topic, then presses 20 times.
    let mut opts = MqttOptions::new("d1", "127.0.0.1", device_port);
    opts.set_keep_alive(Duration::from_secs(30)).set_inflight(100);
    let (phone, mut phone_loop) = AsyncClient::new(opts, 100);
    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    let mut subscribed_tx = Some(subscribed_tx);
    tokio::spawn(async move {
        loop {
            match phone_loop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(tx) = subscribed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = heard_tx.send(p.payload);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    phone.subscribe(topics.commands(&device), QoS::AtLeastOnce).await.unwrap();
    subscribed.await.unwrap();

    // The engine's queue holds one message, and the engine does not read it yet.
    let (inbound, mut queue) = mpsc::channel(1);
    let stop = CancellationToken::new();
    let (link, task) = connect(engine(&broker, port, &topics), inbound, stop.clone());
    let first = tokio::time::timeout(PATIENCE, async {
        while !link.is_connected() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Subscribed once connected; give the subscription a moment before pressing.
        tokio::time::sleep(Duration::from_millis(300)).await;
        for n in 0..20 {
            let body = format!(r#"{{"msg_id":"m{n}","type":"sos"}}"#);
            phone.publish(topics.events(&device), QoS::AtLeastOnce, false, body).await.unwrap();
        }
        // The queue fills; the link's task now waits to hand over the second press.
        while queue.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(first.is_ok(), "the first press reached the engine's queue");

    // A batch's worth of commands, more than the link's in-flight window (1,000), asked for
    // while the link's task cannot hand over the second press.
    const COMMANDS: u32 = 6_000;
    for n in 0..COMMANDS {
        let command = DeviceCommand::HelpComing {
            incident_id: IncidentId(u64::from(n)),
            msg_id: anxin_core::MessageId::parse(format!("m-{n}")).unwrap(),
            responder_assigned: false,
            eta_min: None,
        };
        link.send(&device, &command).expect("the link takes the command");
    }

    // As many as the link's window holds reach the device while the engine's queue is still
    // full; the rest wait for the broker's acknowledgements, which come behind the presses.
    let mut commands = HashSet::new();
    let window = tokio::time::timeout(PATIENCE, async {
        while commands.len() < 1_000 {
            let payload = heard.recv().await.expect("the device's connection is up");
            let body: serde_json::Value = serde_json::from_slice(&payload).unwrap();
            commands.insert(body["incident_id"].as_u64().unwrap());
        }
    })
    .await;
    assert!(window.is_ok(), "{} commands heard while the engine's queue was full", commands.len());
    assert_eq!(queue.len(), 1, "the engine has not read yet; its queue still holds the first press");
    assert!(link.waiting() > 0, "the commands wait for the connection, not the engine");

    // Now the engine reads and acknowledges every press; every command reaches the device.
    let mut presses = HashSet::new();
    let done = tokio::time::timeout(PATIENCE, async {
        while presses.len() < 20 || commands.len() < COMMANDS as usize {
            tokio::select! {
                Some(msg) = queue.recv() => {
                    let body: serde_json::Value = serde_json::from_slice(&msg.publish.payload).unwrap();
                    presses.insert(body["msg_id"].as_str().unwrap().to_string());
                    link.ack(msg).unwrap();
                }
                Some(payload) = heard.recv() => {
                    let body: serde_json::Value = serde_json::from_slice(&payload).unwrap();
                    commands.insert(body["incident_id"].as_u64().unwrap());
                }
            }
        }
    })
    .await;
    assert!(
        done.is_ok(),
        "stuck: {} of 20 presses read, {} of {COMMANDS} commands heard, {} requests waiting",
        presses.len(),
        commands.len(),
        link.waiting()
    );
    assert_eq!(link.waiting(), 0, "everything asked for was written to the connection");

    // A clean goodbye: DISCONNECT goes out after the acknowledgements, so the broker keeps
    // nothing to redeliver (a second session with the same id hears no press again).
    tokio::time::timeout(PATIENCE, link.disconnect()).await.expect("the link says goodbye");
    stop.cancel();
    task.await.unwrap();
    let (inbound, mut again) = mpsc::channel(16);
    let stop = CancellationToken::new();
    let (link, task) = connect(engine(&broker, port, &topics), inbound, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(link.is_connected());
    assert!(again.try_recv().is_err(), "an acknowledged press came back");
    stop.cancel();
    task.await.unwrap();
}

/// A TCP relay between the engine and the broker that can turn into a black hole: bytes in
/// either direction are swallowed and the connection stays open, as when a NAT box or a
/// paused broker forgets a connection without closing it. Connections made afterwards are
/// relayed normally.
struct Relay {
    port: u16,
    holes: std::sync::Arc<std::sync::Mutex<Vec<std::sync::Arc<std::sync::atomic::AtomicBool>>>>,
}

impl Relay {
    async fn start(broker: u16) -> Relay {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let holes: Arc<Mutex<Vec<Arc<AtomicBool>>>> = Arc::default();
        let registered = holes.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", broker)).await else { continue };
                let hole = Arc::new(AtomicBool::new(false));
                registered.lock().unwrap().push(hole.clone());
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                for (mut from, mut to) in [(cr, sw), (sr, cw)] {
                    let hole = hole.clone();
                    tokio::spawn(async move {
                        use tokio::io::{AsyncReadExt, AsyncWriteExt};
                        let mut buf = vec![0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            if !hole.load(Ordering::Relaxed) && to.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        if hole.load(Ordering::Relaxed) {
                            // The broker gave up on the silent connection: the engine's side
                            // stays open and silent, for the engine to notice by itself.
                            std::future::pending::<()>().await;
                        }
                        drop(to);
                    });
                }
            }
        });
        Relay { port, holes }
    }

    /// Every connection relayed so far swallows what it gets from now on.
    fn swallow(&self) {
        for hole in self.holes.lock().unwrap().iter() {
            hole.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// The connection to the broker goes silent without closing, and commands are sent into it.
/// The broker drops its end after 1.5 keep-alives of silence, but the engine's end stays open
/// and hears nothing. The link notices within two keep-alive periods (nothing, not even a
/// PINGRESP, came back),
/// connects again, and sends again what the broker never acknowledged: the device hears
/// every command, and presses flow again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_sent_into_a_dead_connection_arrive_after_the_reconnect() {
    let broker =
        EmbeddedBroker::start("127.0.0.1:0".parse().unwrap(), 64 * 1024, None, std::sync::Arc::new(|_| {})).unwrap();
    let relay = Relay::start(broker.engine_addr().port()).await;
    let topics = Topics::new("link-silent").unwrap();
    let device = DeviceId::parse("d1").unwrap();

    let mut opts = MqttOptions::new("d1-silent", "127.0.0.1", broker.addr().port());
    opts.set_keep_alive(Duration::from_secs(30));
    let (phone, mut phone_loop) = AsyncClient::new(opts, 100);
    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match phone_loop.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = heard_tx.send(p.payload);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    phone.subscribe(topics.commands(&device), QoS::AtLeastOnce).await.unwrap();

    let (inbound, mut queue) = mpsc::channel(16);
    let stop = CancellationToken::new();
    let mut options = engine(&broker, relay.port, &topics);
    options.client_id = "link-test-silent".into();
    options.keep_alive = Duration::from_secs(1);
    let (link, task) = connect(options, inbound, stop.clone());
    let up = tokio::time::timeout(PATIENCE, async {
        while !link.is_connected() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    assert!(up.await.is_ok(), "the link connected through the relay");
    tokio::time::sleep(Duration::from_millis(300)).await;

    relay.swallow();
    const COMMANDS: u64 = 50;
    for n in 0..COMMANDS {
        let command = DeviceCommand::HelpComing {
            incident_id: IncidentId(n),
            msg_id: anxin_core::MessageId::parse(format!("m-{n}")).unwrap(),
            responder_assigned: false,
            eta_min: None,
        };
        link.send(&device, &command).unwrap();
    }
    let mut commands = HashSet::new();
    let all = tokio::time::timeout(PATIENCE, async {
        while commands.len() < COMMANDS as usize {
            let payload = heard.recv().await.expect("the device's connection is up");
            let body: serde_json::Value = serde_json::from_slice(&payload).unwrap();
            commands.insert(body["incident_id"].as_u64().unwrap());
        }
    })
    .await;
    assert!(all.is_ok(), "{} of {COMMANDS} commands heard after the connection went silent", commands.len());
    assert!(link.connections_lost() >= 1, "the silent connection is counted as lost");

    // Presses reach the engine again.
    phone.publish(topics.events(&device), QoS::AtLeastOnce, false, r#"{"msg_id":"after","type":"sos"}"#).await.unwrap();
    let press = tokio::time::timeout(PATIENCE, queue.recv()).await.expect("a press after the reconnect arrives");
    let press = press.unwrap();
    assert_eq!(&press.publish.payload[..], br#"{"msg_id":"after","type":"sos"}"#);
    link.ack(press).unwrap();
    stop.cancel();
    task.await.unwrap();
}
