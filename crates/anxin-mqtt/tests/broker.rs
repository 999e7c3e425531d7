//! The embedded broker over real sockets: what it does with a device that sends what it must
//! not, and that the devices after it are still served.

use anxin_mqtt::broker::{OnRefused, Refusal};
use anxin_mqtt::rumqttc::mqttbytes::v4::{Connect, Packet as RawPacket};
use anxin_mqtt::rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use anxin_mqtt::EmbeddedBroker;
use bytes::{BufMut, BytesMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Long enough for anything that is not stuck.
const PATIENCE: Duration = Duration::from_secs(30);

/// The broker, with every refusal it reports sent to the returned channel.
fn broker() -> (EmbeddedBroker, mpsc::UnboundedReceiver<Refusal>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let on_refused: OnRefused = Arc::new(move |why| {
        let _ = tx.send(why);
    });
    (EmbeddedBroker::start("127.0.0.1:0".parse().unwrap(), 64 * 1024, None, on_refused).unwrap(), rx)
}

/// A device that speaks MQTT by hand, so that it can send what no client library would.
async fn raw_device(addr: SocketAddr, client_id: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut connect = BytesMut::new();
    RawPacket::Connect(Connect::new(client_id)).write(&mut connect, 1024).unwrap();
    s.write_all(&connect).await.unwrap();
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).await.unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00], "CONNACK, accepted");
    s
}

/// A QoS 0 PUBLISH with the topic's bytes as given (MQTT says they must be UTF-8).
fn publish(topic: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_u16(topic.len() as u16);
    body.put_slice(topic);
    body.put_slice(payload);
    let mut packet = vec![0x30];
    let mut len = body.len();
    loop {
        let byte = (len % 128) as u8;
        len /= 128;
        packet.push(if len > 0 { byte | 0x80 } else { byte });
        if len == 0 {
            break;
        }
    }
    packet.extend_from_slice(&body);
    packet
}

/// Whether the broker closed `s`: reads until the end (a reset counts as closed).
async fn closed(mut s: TcpStream) -> bool {
    let mut sink = Vec::new();
    tokio::time::timeout(PATIENCE, s.read_to_end(&mut sink)).await.is_ok()
}

/// The engine's side of the broker, subscribed to every device's events under `root`: what
/// it hears, topic and payload.
async fn engine_side(broker: &EmbeddedBroker, root: &str) -> mpsc::UnboundedReceiver<(String, Vec<u8>)> {
    let (user, password) = broker.engine_login().clone();
    let mut opts = MqttOptions::new(format!("broker-test-engine-{root}"), "127.0.0.1", broker.engine_addr().port());
    opts.set_credentials(user, password);
    let (engine, mut engine_events) = AsyncClient::new(opts, 16);
    engine.subscribe(format!("{root}/v1/devices/+/events"), QoS::AtLeastOnce).await.unwrap();
    let (heard_tx, heard) = mpsc::unbounded_channel();
    let (subscribed_tx, mut subscribed) = mpsc::channel(1);
    tokio::spawn(async move {
        let _engine = engine;
        loop {
            match engine_events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let _ = heard_tx.send((p.topic, p.payload.to_vec()));
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = subscribed_tx.try_send(());
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    tokio::time::timeout(PATIENCE, subscribed.recv()).await.expect("the engine subscribed");
    heard
}

/// Packets a device sends together (one write, as a device pipelining its presses does) are
/// carried on together, in order; one among them that must be refused is, with its reason,
/// after those before it and with none after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_sent_together_go_on_in_order_up_to_one_refused() {
    let (broker, mut refusals) = broker();
    let root = "together";
    let mut heard = engine_side(&broker, root).await;
    let topic = format!("{root}/v1/devices/d-many/events");
    let mut device = raw_device(broker.addr(), "d-many").await;
    let mut burst = Vec::new();
    for i in 1..=3 {
        burst.extend(publish(topic.as_bytes(), format!("press {i}").as_bytes()));
    }
    burst.extend(publish(b"together/v1/devices/\xff/events", b"garbled"));
    burst.extend(publish(topic.as_bytes(), b"press 4"));
    device.write_all(&burst).await.unwrap();
    for i in 1..=3 {
        let (t, payload) = tokio::time::timeout(PATIENCE, heard.recv()).await.expect("a press arrives").unwrap();
        assert_eq!((t.as_str(), payload), (topic.as_str(), format!("press {i}").into_bytes()), "in the order sent");
    }
    assert!(closed(device).await, "the device is disconnected");
    assert_eq!(tokio::time::timeout(PATIENCE, refusals.recv()).await.unwrap(), Some(Refusal::TopicNotUtf8));
    // Anything after the refused packet would have come before the goodbye's effects: a new
    // device's press arriving next shows nothing else did.
    let mut next = raw_device(broker.addr(), "d-next").await;
    let next_topic = format!("{root}/v1/devices/d-next/events");
    next.write_all(&publish(next_topic.as_bytes(), b"after")).await.unwrap();
    let (t, payload) = tokio::time::timeout(PATIENCE, heard.recv()).await.expect("the next device's press").unwrap();
    assert_eq!((t.as_str(), payload.as_slice()), (next_topic.as_str(), &b"after"[..]), "press 4 was not carried on");
}

/// A 1 MB payload, a topic that is not UTF-8, and bytes that are not MQTT each get their
/// device disconnected, as rumqttd would, but now each is reported with its reason (rumqttd
/// itself only logs the first and counts the second as a failed publish); and a device
/// connecting after them is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_packets_are_refused_with_their_reason_and_the_next_device_is_served() {
    let (broker, mut refusals) = broker();
    let root = "drops";

    let mut huge = raw_device(broker.addr(), "d-huge").await;
    let packet = publish(format!("{root}/v1/devices/d-huge/events").as_bytes(), &vec![b'x'; 1 << 20]);
    let _ = huge.write_all(&packet).await; // the broker may close before it has read it all
    assert!(closed(huge).await, "the device is disconnected");
    assert_eq!(tokio::time::timeout(PATIENCE, refusals.recv()).await.unwrap(), Some(Refusal::Oversized));

    let mut garbled = raw_device(broker.addr(), "d-garbled").await;
    garbled.write_all(&publish(b"drops/v1/devices/\xff\xfe/events", b"{}")).await.unwrap();
    assert!(closed(garbled).await, "the device is disconnected");
    assert_eq!(tokio::time::timeout(PATIENCE, refusals.recv()).await.unwrap(), Some(Refusal::TopicNotUtf8));

    let mut noise = TcpStream::connect(broker.addr()).await.unwrap();
    noise.write_all(&[0x00, 0x00]).await.unwrap(); // packet type 0 is reserved
    assert!(closed(noise).await, "the client is disconnected");
    assert_eq!(tokio::time::timeout(PATIENCE, refusals.recv()).await.unwrap(), Some(Refusal::Malformed));

    // The next good press from another device reaches the engine's side.
    let mut heard = engine_side(&broker, root).await;
    let device = AsyncClient::new(MqttOptions::new("d-good", "127.0.0.1", broker.addr().port()), 16);
    let (device, mut device_events) = device;
    tokio::spawn(async move { while device_events.poll().await.is_ok() {} });
    let press = br#"{"msg_id":"m-1","type":"sos"}"#;
    device.publish(format!("{root}/v1/devices/d-good/events"), QoS::AtLeastOnce, false, &press[..]).await.unwrap();
    let (topic, payload) = tokio::time::timeout(PATIENCE, heard.recv()).await.expect("the press arrives").unwrap();
    assert_eq!((topic.as_str(), payload.as_slice()), ("drops/v1/devices/d-good/events", &press[..]));
    assert!(refusals.try_recv().is_err(), "nothing else was refused");
}

/// When rumqttd drops a connection itself (here: the same client id connecting again, the
/// newer connection wins), the guard says so; a device that says goodbye is not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_rumqttd_closes_is_reported_and_a_goodbye_is_not() {
    let (broker, mut refusals) = broker();
    let first = raw_device(broker.addr(), "d-twice").await;
    let mut second = raw_device(broker.addr(), "d-twice").await;
    assert!(closed(first).await, "the older connection is dropped");
    assert_eq!(tokio::time::timeout(PATIENCE, refusals.recv()).await.unwrap(), Some(Refusal::ClosedByBroker));

    second.write_all(&[0xe0, 0x00]).await.unwrap(); // DISCONNECT
    assert!(closed(second).await, "the broker closes after DISCONNECT");
    // A third connection, refused, to know the guard has finished with the second.
    let mut noise = TcpStream::connect(broker.addr()).await.unwrap();
    noise.write_all(&[0x00, 0x00]).await.unwrap();
    assert!(closed(noise).await);
    assert_eq!(tokio::time::timeout(PATIENCE, refusals.recv()).await.unwrap(), Some(Refusal::Malformed));
    assert!(refusals.try_recv().is_err(), "the goodbye was not counted");
}
