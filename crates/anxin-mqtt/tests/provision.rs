//! Provisioning on real brokers: a device added while the broker runs may connect and press at
//! once, a retired one is refused at CONNECT and its live connection closed. The embedded
//! broker needs nothing; the Mosquitto test starts a Mosquitto of its own with the
//! dynamic-security plugin (`deploy/mosquitto/dynsec.conf`, through `support/dynsec_mosquitto.rs`,
//! which anxind's ledger test shares), and skips when Mosquitto is not installed, except under
//! `CI=true`, where it fails.

use anxin_core::DeviceId;
use anxin_mqtt::broker::{Accounts, OnRefused, Refusal};
use anxin_mqtt::credentials::{new_hash, PasswordFile};
use anxin_mqtt::provision::{Dynsec, DynsecOptions, Files};
use anxin_mqtt::rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS};
use anxin_mqtt::{DeviceAccount, EmbeddedBroker, ProvisionError, Provisioner, ReconcileReport, Topics};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[path = "support/dynsec_mosquitto.rs"]
mod dynsec_mosquitto;
use dynsec_mosquitto::{Mosquitto, ADMIN, ENGINE};

/// Long enough for anything that is not stuck.
const PATIENCE: Duration = Duration::from_secs(30);

fn id(s: &str) -> DeviceId {
    DeviceId::parse(s).unwrap()
}

fn account(device: &str, password: Option<&str>) -> DeviceAccount {
    DeviceAccount { id: id(device), password: password.map(str::to_string), password_hash: None }
}

/// A client of the broker, as a device or the engine: what it hears, and how its connection
/// ended.
struct Client {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Packet, String>>,
    _pump: tokio::task::JoinHandle<()>,
}

/// Why a CONNECT was refused: the broker's return code, or another error.
#[derive(Debug, PartialEq, Eq)]
enum Refused {
    Code(ConnectReturnCode),
    Other(String),
}

impl Client {
    /// Connects with `login`; `Err` with the broker's answer if it refuses. The connection is
    /// not made again once it drops: that is reported as an `Err` event.
    async fn connect(port: u16, client_id: &str, login: Option<(&str, &str)>) -> Result<Self, Refused> {
        let mut opts = MqttOptions::new(client_id, "127.0.0.1", port);
        if let Some((user, password)) = login {
            opts.set_credentials(user, password);
        }
        let (client, mut eventloop) = AsyncClient::new(opts, 16);
        let (tx, mut events) = mpsc::unbounded_channel();
        let pump = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(packet)) => {
                        if tx.send(Ok(packet)).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Outgoing(_)) => {}
                    Err(e) => {
                        let _ = tx.send(Err(match e {
                            ConnectionError::ConnectionRefused(code) => format!("refused: {code:?}"),
                            other => other.to_string(),
                        }));
                        return;
                    }
                }
            }
        });
        match tokio::time::timeout(PATIENCE, events.recv()).await.expect("the broker answers a CONNECT") {
            Some(Ok(Packet::ConnAck(_))) => Ok(Self { client, events, _pump: pump }),
            Some(Err(e)) if e.starts_with("refused: ") => Err(Refused::Code(match e.as_str() {
                "refused: BadUserNamePassword" => ConnectReturnCode::BadUserNamePassword,
                "refused: NotAuthorized" => ConnectReturnCode::NotAuthorized,
                _ => return Err(Refused::Other(e)),
            })),
            Some(Err(e)) => Err(Refused::Other(e)),
            other => Err(Refused::Other(format!("{other:?}"))),
        }
    }

    /// The next packet matching `want`, skipping others; `None` if the connection ends first.
    async fn next(&mut self, mut want: impl FnMut(&Packet) -> bool) -> Option<Packet> {
        loop {
            match tokio::time::timeout(PATIENCE, self.events.recv()).await.expect("something arrives") {
                Some(Ok(packet)) if want(&packet) => return Some(packet),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Publishes at QoS 1 and waits for the broker's PUBACK.
    async fn press(&mut self, topic: &str, msg: &str) {
        let payload = format!(r#"{{"msg_id":"{msg}","type":"sos"}}"#);
        self.client.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
        self.next(|p| matches!(p, Packet::PubAck(_))).await.expect("the press is acknowledged");
    }

    async fn subscribe(&mut self, filter: &str) {
        self.client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let Some(Packet::SubAck(ack)) = self.next(|p| matches!(p, Packet::SubAck(_))).await else {
            panic!("no SUBACK")
        };
        assert!(ack.return_codes.iter().all(|c| matches!(c, anxin_mqtt::rumqttc::SubscribeReasonCode::Success(_))));
    }

    /// The payload of the next message heard, with its topic.
    async fn heard(&mut self) -> (String, String) {
        match self.next(|p| matches!(p, Packet::Publish(_))).await {
            Some(Packet::Publish(p)) => (p.topic, String::from_utf8_lossy(&p.payload).into_owned()),
            _ => panic!("the connection ended before a message arrived"),
        }
    }

    /// Whether the broker closes this connection.
    async fn dropped(&mut self) -> bool {
        self.next(|_| false).await.is_none()
    }
}

/// The embedded broker, with every refusal it reports sent to the returned channel.
fn embedded(accounts: Option<Accounts>) -> (EmbeddedBroker, mpsc::UnboundedReceiver<Refusal>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let on_refused: OnRefused = Arc::new(move |why| {
        let _ = tx.send(why);
    });
    (EmbeddedBroker::start("127.0.0.1:0".parse().unwrap(), 64 * 1024, accounts, on_refused).unwrap(), rx)
}

async fn refusal(refusals: &mut mpsc::UnboundedReceiver<Refusal>) -> Refusal {
    tokio::time::timeout(PATIENCE, refusals.recv()).await.expect("a refusal is reported").unwrap()
}

/// The engine's side of the embedded broker, subscribed to every device's events.
async fn embedded_engine(broker: &EmbeddedBroker, topics: &Topics) -> Client {
    let (user, password) = broker.engine_login().clone();
    let mut engine =
        Client::connect(broker.engine_addr().port(), "provision-engine", Some((&user, &password))).await.unwrap();
    engine.subscribe(&topics.events_filter()).await;
    engine
}

/// With accounts: a device not in the file is refused; once added it connects and presses at
/// once; once retired, its live connection is closed and its CONNECT refused, and both are
/// counted as `retired`. A password changed through the provisioner replaces the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_broker_learns_added_and_retired_devices_at_once() {
    let topics = Topics::new("prov-embedded").unwrap();
    let mut passwd = PasswordFile::default();
    passwd.set("d-old", "old horse");
    let (broker, mut refusals) = embedded(Some(Accounts { passwd, topics: topics.clone() }));
    let accounts = broker.accounts();
    let port = broker.addr().port();
    let mut engine = embedded_engine(&broker, &topics).await;

    assert_eq!(
        Client::connect(port, "d-new", Some(("d-new", "new horse"))).await.err(),
        Some(Refused::Code(ConnectReturnCode::BadUserNamePassword))
    );
    assert_eq!(refusal(&mut refusals).await, Refusal::SignIn);

    let added = Instant::now();
    accounts.upsert(&account("d-new", Some("new horse"))).await.unwrap();
    let mut device = Client::connect(port, "d-new", Some(("d-new", "new horse"))).await.expect("added: it connects");
    device.press(&topics.events(&id("d-new")), "m-1").await;
    eprintln!("embedded: added to pressed and acknowledged in {:?}", added.elapsed());
    assert_eq!(engine.heard().await.0, topics.events(&id("d-new")));

    // A new password by its hash (as the ledger keeps it): the old one no longer works.
    let hash = new_hash("newer horse");
    accounts.upsert(&DeviceAccount { id: id("d-new"), password: None, password_hash: Some(hash) }).await.unwrap();
    assert_eq!(
        Client::connect(port, "d-new-2", Some(("d-new", "new horse"))).await.err(),
        Some(Refused::Code(ConnectReturnCode::BadUserNamePassword))
    );
    assert_eq!(refusal(&mut refusals).await, Refusal::SignIn);

    Provisioner::retire(&accounts, &id("d-new")).await.unwrap();
    assert!(device.dropped().await, "the retired device's live connection is closed");
    assert_eq!(refusal(&mut refusals).await, Refusal::Retired);
    assert_eq!(
        Client::connect(port, "d-new", Some(("d-new", "newer horse"))).await.err(),
        Some(Refused::Code(ConnectReturnCode::NotAuthorized)),
        "a retired device is refused at CONNECT"
    );
    assert_eq!(refusal(&mut refusals).await, Refusal::Retired);
    assert!(!accounts.has_account("d-new"));

    // The device that was in the file all along is untouched.
    let mut old = Client::connect(port, "d-old", Some(("d-old", "old horse"))).await.expect("d-old connects");
    old.press(&topics.events(&id("d-old")), "m-2").await;

    // Without a password nor its hash, no account can be made.
    let err = accounts.upsert(&account("d-bare", None)).await.unwrap_err();
    assert!(matches!(err, ProvisionError::NoPassword { .. }), "{err}");
    let err = accounts
        .upsert(&DeviceAccount { id: id("d-bad"), password: None, password_hash: Some("plain".into()) })
        .await
        .unwrap_err();
    assert!(matches!(err, ProvisionError::BadHash { .. }), "{err}");
    assert!(refusals.try_recv().is_err(), "nothing else was refused");
}

/// Without accounts anyone may connect, but a retired device id is refused (as user name or
/// client id) and its live connection closed, until it is added again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_embedded_broker_refuses_retired_devices() {
    let (broker, mut refusals) = embedded(None);
    let accounts = broker.accounts();
    let port = broker.addr().port();
    let mut device = Client::connect(port, "d-7", None).await.expect("open: anyone connects");

    let report = accounts.reconcile(&[account("d-8", None)], &[id("d-7")]).await.unwrap();
    assert_eq!(report, ReconcileReport { admitted: 1, retired: 1, ..ReconcileReport::default() });
    assert!(device.dropped().await, "the retired device's live connection is closed");
    assert_eq!(refusal(&mut refusals).await, Refusal::Retired);
    assert_eq!(Client::connect(port, "d-7", None).await.err(), Some(Refused::Code(ConnectReturnCode::NotAuthorized)));
    assert_eq!(refusal(&mut refusals).await, Refusal::Retired);
    assert_eq!(
        Client::connect(port, "another-id", Some(("d-7", "anything"))).await.err(),
        Some(Refused::Code(ConnectReturnCode::NotAuthorized)),
        "nor as a user name"
    );
    assert_eq!(refusal(&mut refusals).await, Refusal::Retired);

    accounts.upsert(&account("d-7", None)).await.unwrap();
    Client::connect(port, "d-7", None).await.expect("added again, it connects");
    Client::connect(port, "d-8", None).await.expect("a live device connects");
    assert!(refusals.try_recv().is_err(), "nothing else was refused");
}

/// The files' set-up cannot be told: every change is accepted, and the reconcile says what
/// the operator must do.
#[tokio::test]
async fn the_files_set_up_says_to_run_broker_files_again() {
    let files = Files::default();
    files.upsert(&account("d-1", Some("pw"))).await.unwrap();
    files.retire(&id("d-1")).await.unwrap();
    let report = files.reconcile(&[], &[]).await.unwrap();
    assert!(report.notes[0].contains("anxind broker-files"), "{report:?}");
}

/// Through the `Dynsec` provisioner on a real Mosquitto: a device added connects at once and
/// may press on its own events topic but not another device's (the engine hears the one and
/// not the other); a changed password replaces the old; a retired device's live connection is
/// closed and its CONNECT refused; the reconcile deletes retired accounts and names the live
/// devices it cannot create without a password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_learns_added_and_retired_devices_through_dynamic_security() {
    let topics = Topics::new("prov-dynsec").unwrap();
    let Some(mosquitto) = Mosquitto::start(&topics).await else { return };
    let port = mosquitto.port;
    let options = |password: &str| DynsecOptions {
        host: "127.0.0.1".into(),
        port,
        client_id: "anxind-dynsec".into(),
        username: ADMIN.0.into(),
        password: password.into(),
        topics: topics.clone(),
        reply_within: Duration::from_secs(10),
    };
    let err = Dynsec::connect(options("wrong")).await.unwrap_err();
    assert!(matches!(err, ProvisionError::SignIn(_)), "{err}");
    let not_admin = DynsecOptions { username: ENGINE.0.into(), ..options(ENGINE.1) };
    let err = Dynsec::connect(not_admin).await.unwrap_err().to_string();
    assert!(err.contains("as anxin-engine") && err.contains("not the plugin's admin"), "{err}");
    let dynsec = Dynsec::connect(options(ADMIN.1)).await.unwrap();
    let mut engine = Client::connect(port, ENGINE.0, Some(ENGINE)).await.unwrap();
    engine.subscribe(&topics.events_filter()).await;

    assert_eq!(
        Client::connect(port, "d-1", Some(("d-1", "first horse"))).await.err(),
        Some(Refused::Code(ConnectReturnCode::NotAuthorized))
    );
    let added = Instant::now();
    dynsec.upsert(&account("d-1", Some("first horse"))).await.unwrap();
    let mut device = Client::connect(port, "d-1", Some(("d-1", "first horse"))).await.expect("added: it connects");
    device.press(&topics.events(&id("d-1")), "own-1").await;
    eprintln!("dynsec: added to pressed and acknowledged in {:?}", added.elapsed());
    assert_eq!(engine.heard().await, (topics.events(&id("d-1")), r#"{"msg_id":"own-1","type":"sos"}"#.into()));

    // A press for another device: Mosquitto drops it (2.0.11 acknowledges it, then closes the
    // connection). The engine hears the next own press, not the forged one before it.
    let forged = r#"{"msg_id":"forged","type":"sos"}"#;
    device.client.publish(topics.events(&id("d-2")), QoS::AtLeastOnce, false, forged).await.unwrap();
    assert!(device.dropped().await, "the device pressing for another is disconnected");
    let mut device = Client::connect(port, "d-1", Some(("d-1", "first horse"))).await.unwrap();
    device.press(&topics.events(&id("d-1")), "own-2").await;
    assert_eq!(engine.heard().await.1, r#"{"msg_id":"own-2","type":"sos"}"#);
    // Nor may it listen to another device's commands.
    device.client.subscribe(topics.commands(&id("d-2")), QoS::AtLeastOnce).await.unwrap();
    let Some(Packet::SubAck(ack)) = device.next(|p| matches!(p, Packet::SubAck(_))).await else { panic!("no SUBACK") };
    assert_eq!(ack.return_codes, [anxin_mqtt::rumqttc::SubscribeReasonCode::Failure]);
    device.subscribe(&topics.commands(&id("d-1"))).await;

    // Upserting again (the same device, a new password): the old password stops working.
    dynsec.upsert(&account("d-1", Some("second horse"))).await.unwrap();
    assert_eq!(
        Client::connect(port, "d-1-old", Some(("d-1", "first horse"))).await.err(),
        Some(Refused::Code(ConnectReturnCode::NotAuthorized))
    );
    let mut device = Client::connect(port, "d-1", Some(("d-1", "second horse"))).await.expect("the new password");
    device.press(&topics.events(&id("d-1")), "own-3").await;
    assert_eq!(engine.heard().await.1, r#"{"msg_id":"own-3","type":"sos"}"#);
    // Known to Mosquitto already, a device needs no plaintext to be upserted (its role is
    // made sure of).
    dynsec.upsert(&DeviceAccount { id: id("d-1"), password: None, password_hash: Some(new_hash("x")) }).await.unwrap();

    dynsec.retire(&id("d-1")).await.unwrap();
    assert!(device.dropped().await, "Mosquitto closes the retired device's connection");
    assert_eq!(
        Client::connect(port, "d-1", Some(("d-1", "second horse"))).await.err(),
        Some(Refused::Code(ConnectReturnCode::NotAuthorized)),
        "a retired device is refused at CONNECT"
    );
    dynsec.retire(&id("d-1")).await.expect("retiring twice is harmless");

    // Without a plaintext, Mosquitto 2.0 cannot create an account.
    let err = dynsec.upsert(&account("d-1", None)).await.unwrap_err();
    assert!(matches!(err, ProvisionError::NoPassword { .. }), "{err}");

    // At start: d-3 is created (a password is known), d-4 cannot be, d-5 was retired.
    dynsec.upsert(&account("d-5", Some("fifth horse"))).await.unwrap();
    let live = [account("d-3", Some("third horse")), account("d-4", None)];
    let report = dynsec.reconcile(&live, &[id("d-5"), id("d-1")]).await.unwrap();
    assert_eq!(report, ReconcileReport { admitted: 1, retired: 2, without_password: vec![id("d-4")], notes: vec![] });
    Client::connect(port, "d-3", Some(("d-3", "third horse"))).await.expect("d-3 was created");
    assert_eq!(
        Client::connect(port, "d-5", Some(("d-5", "fifth horse"))).await.err(),
        Some(Refused::Code(ConnectReturnCode::NotAuthorized))
    );
}
