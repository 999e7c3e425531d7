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

/// The engine's session, under a fixed client id so the broker keeps it.
fn engine(port: u16, topics: &Topics) -> LinkOptions {
    LinkOptions {
        host: "127.0.0.1".into(),
        port,
        client_id: "link-test-engine".into(),
        keep_alive: Duration::from_secs(30),
        max_outgoing_bytes: 64 * 1024,
        username: None,
        password: None,
        topics: topics.clone(),
    }
}

/// During a surge the engine's queue is full, so the link's task waits to hand over the next
/// message and nothing moves the engine's acknowledgements and commands onto the wire. If the
/// engine then waited for room to send (after a large batch: an ack and a `help_coming` per
/// press), each would wait on the other for ever. The presses would sit at the broker and no
/// elder would hear help is coming. This once stopped the engine at 10,000 presses/s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_sends_while_its_queue_is_full() {
    let broker = EmbeddedBroker::start("127.0.0.1:0".parse().unwrap(), 64 * 1024, None).unwrap();
    let port = broker.engine_addr().port();
    let topics = Topics::new("link-test").unwrap();
    let device = DeviceId::parse("d1").unwrap();

    // The device listens on its command topic, then presses 20 times.
    let mut opts = MqttOptions::new("d1", "127.0.0.1", port);
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
    let (link, task) = connect(engine(port, &topics), inbound, stop.clone());
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

    // A batch's worth of commands, more than the client's own queue (4,096) and its in-flight
    // window (1,000) hold, asked for while the link's task is stuck handing over a press.
    const COMMANDS: u32 = 6_000;
    for n in 0..COMMANDS {
        let command = DeviceCommand::HelpComing {
            incident_id: IncidentId(u64::from(n)),
            responder_assigned: false,
            eta_min: None,
        };
        link.send(&device, &command).expect("the link takes the command");
    }
    assert!(link.waiting() > 0, "the commands wait for the connection, not the engine");

    // Now the engine reads and acknowledges every press; every command reaches the device.
    let mut presses = HashSet::new();
    let mut commands = HashSet::new();
    let done = tokio::time::timeout(PATIENCE, async {
        while presses.len() < 20 || commands.len() < COMMANDS as usize {
            tokio::select! {
                Some(msg) = queue.recv() => {
                    let body: serde_json::Value = serde_json::from_slice(&msg.publish.payload).unwrap();
                    presses.insert(body["msg_id"].as_str().unwrap().to_string());
                    link.ack(msg.publish).unwrap();
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
    assert_eq!(link.waiting(), 0, "everything asked for was handed to the connection");

    // A clean goodbye: DISCONNECT goes out after the acknowledgements, so the broker keeps
    // nothing to redeliver (a second session with the same id hears no press again).
    tokio::time::timeout(PATIENCE, link.disconnect()).await.expect("the link says goodbye");
    stop.cancel();
    task.await.unwrap();
    let (inbound, mut again) = mpsc::channel(16);
    let stop = CancellationToken::new();
    let (link, task) = connect(engine(port, &topics), inbound, stop.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(link.is_connected());
    assert!(again.try_recv().is_err(), "an acknowledged press came back");
    stop.cancel();
    task.await.unwrap();
}
