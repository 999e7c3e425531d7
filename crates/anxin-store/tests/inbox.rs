//! The inbox (issue 25, `SCALE-OUT.md` "Ingest"), on both databases: messages filed under
//! their device's zone, a repeat absorbed, each zone's read oldest first, and taken out by the
//! commit that handled them (on PostgreSQL: announced per zone). PostgreSQL runs when
//! `ANXIN_TEST_POSTGRES_URL` names a server (required under `CI=true`).

use anxin_core::*;
use anxin_store::inbox::{message_key, InboxEntry, InboxStore};
use anxin_store::{testkit, Batch, Store};

const T0: Timestamp = Timestamp(1_763_000_000_000);

/// A station in zone 3 with an elder and her device `d-3`; nothing else.
fn zone_three() -> Registry {
    Registry {
        elders: vec![Elder {
            id: ElderId::parse("e-3").unwrap(),
            name: "长者".into(),
            address: "西山区".into(),
            home: Coordinates::new(25.0, 102.68).unwrap(),
            phone: None,
            notes: String::new(),
            profile: ElderProfile { station_id: Some(StationId::parse("st-3").unwrap()), ..Default::default() },
        }],
        devices: vec![Device {
            id: DeviceId::parse("d-3").unwrap(),
            elder_id: ElderId::parse("e-3").unwrap(),
            model: None,
            sim: None,
        }],
        stations: vec![Station {
            id: StationId::parse("st-3").unwrap(),
            name: "三站".into(),
            position: Coordinates::new(25.0, 102.69).unwrap(),
            phone: None,
            service_circle_min: None,
            zone: Zone::new(3).unwrap(),
        }],
        ..Registry::default()
    }
}

fn press(device: &str, msg: &str, after_ms: i64) -> InboxEntry {
    let topic = format!("xs/v1/devices/{device}/events");
    let payload = format!(r#"{{"msg_id":"{msg}","type":"sos","ts":{}}}"#, T0.millis());
    InboxEntry::new(device, &topic, payload.into_bytes(), T0.plus_millis(after_ms))
}

fn keys(entries: &[InboxEntry]) -> Vec<(String, String)> {
    entries.iter().map(|e| (e.device_id.clone(), e.msg_key.clone())).collect()
}

async fn messages_are_filed_by_zone_and_taken_out_when_acknowledged<S: Store + InboxStore>(store: S) {
    store.save_registry(&zone_three()).await.unwrap();
    let (z0, z3) = (Zone::FIRST, Zone::new(3).unwrap());
    let garbage = InboxEntry::new("d-3", "xs/v1/devices/d-3/events", b"\xff not json".to_vec(), T0.plus_millis(5));
    let batch = [press("d-3", "m-1", 0), press("d-x", "m-1", 1), garbage.clone(), press("d-3", "m-2", 10)];
    assert_eq!(store.inbox_put(&batch).await.unwrap(), [z0, z3], "a device the ledger does not know: zone 0");
    // The broker delivers again: nothing new, even twice in one batch (a resend and its
    // original given to one session).
    assert_eq!(store.inbox_put(&[batch[1].clone(), batch[0].clone(), batch[0].clone()]).await.unwrap(), []);
    let three = store.inbox_take(&[z3], 10).await.unwrap();
    assert_eq!(
        keys(&three),
        [
            ("d-3".into(), "m-1".into()),
            (garbage.device_id.clone(), garbage.msg_key.clone()),
            ("d-3".into(), "m-2".into())
        ]
    );
    assert_eq!(three[0], InboxEntry { zone: z3, ..batch[0].clone() }, "read back as filed");
    assert_eq!(three[1].payload, b"\xff not json", "what could not be read is kept as it came");
    assert_eq!(keys(&store.inbox_take(&[z0], 10).await.unwrap()), [("d-x".into(), "m-1".into())]);
    assert_eq!(store.inbox_take(&[z0, z3], 2).await.unwrap().len(), 2, "at most the limit, oldest first");
    assert!(store.inbox_take(&[], 10).await.unwrap().is_empty());

    // Zone 3's first two handled: taken out by the commit that stored what they caused, and
    // nothing else.
    let handled = [three[0].key(), three[1].key()];
    let message = MessageRecord {
        device_id: DeviceId::parse("d-3").unwrap(),
        msg_id: MessageId::parse("m-1").unwrap(),
        event: Some(EventType::Sos),
        received_at: T0,
        incident_id: None,
    };
    let stored = [message];
    store.commit(Batch { messages: &stored, ..Batch::default() }.taking(&handled)).await.unwrap();
    assert_eq!(
        store.message(&stored[0].device_id, &stored[0].msg_id).await.unwrap(),
        Some(stored[0].clone()),
        "stored with it"
    );
    store.commit(Batch::default().taking(&handled)).await.unwrap(); // twice is harmless
    assert_eq!(
        keys(&store.inbox_take(&[z0, z3], 10).await.unwrap()),
        [("d-x".into(), "m-1".into()), ("d-3".into(), "m-2".into())]
    );
    // One message twice in one batch is filed once.
    let twice = [press("d-3", "m-9", 20), press("d-3", "m-9", 21)];
    assert_eq!(store.inbox_put(&twice).await.unwrap(), [z3]);
    assert_eq!(store.inbox_take(&[z3], 10).await.unwrap().len(), 2, "m-2 and m-9");
}

/// A message for another zone's owner (offers across a border, `anxin_core::border`) is filed
/// in that zone's inbox by the commit that caused it, under the border topic, and taken out
/// by the commit that handles it; its twin filed while it waits is left out.
async fn a_message_between_zones_is_filed_by_the_commit_that_caused_it<S: Store + InboxStore>(store: S) {
    store.save_registry(&zone_three()).await.unwrap();
    let (z0, z3) = (Zone::FIRST, Zone::new(3).unwrap());
    let ask = BorderMessage::Hold { incident_id: IncidentId(7), responder_id: ResponderId::parse("r-3").unwrap() };
    let across = [Across { to: z3, message: ask.clone() }];
    store.commit(Batch { across: &across, ..Batch::default() }).await.unwrap();
    store.commit(Batch { across: &across, ..Batch::default() }).await.unwrap();
    let border = |entries: Vec<InboxEntry>| -> Vec<InboxEntry> {
        entries.into_iter().filter(|e| e.topic == anxin_core::border::INBOX_TOPIC).collect()
    };
    let filed = border(store.inbox_take(&[z3], 10).await.unwrap());
    assert_eq!(filed.len(), 1, "{filed:?}");
    assert_eq!((filed[0].topic.as_str(), filed[0].zone), (anxin_core::border::INBOX_TOPIC, z3));
    assert_eq!(filed[0].msg_key, ask.inbox_key());
    assert_eq!(serde_json::from_slice::<BorderMessage>(&filed[0].payload).unwrap(), ask);
    assert!(border(store.inbox_take(&[z0], 10).await.unwrap()).is_empty(), "another zone's inbox");
    let handled = [filed[0].key()];
    store.commit(Batch::default().taking(&handled)).await.unwrap();
    assert!(border(store.inbox_take(&[z3], 10).await.unwrap()).is_empty());
}

#[test]
fn a_message_is_keyed_by_its_id_or_else_by_a_digest_of_its_bytes() {
    assert_eq!(message_key(br#"{"type":"sos","msg_id":"abc-1"}"#), "abc-1");
    let garbage = message_key(b"\x00\x01garbage");
    assert!(garbage.starts_with("digest:") && garbage.len() == "digest:".len() + 32, "{garbage}");
    assert_eq!(message_key(b"\x00\x01garbage"), garbage, "the same bytes, the same key");
    assert_ne!(message_key(b"\x00\x01garbagf"), garbage);
    assert!(message_key(br#"{"msg_id":42}"#).starts_with("digest:"), "an id that is not a string");
    assert!(message_key(br#"{"msg_id":""}"#).starts_with("digest:"));
}

#[tokio::test]
async fn on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("anxin.db").display());
    let store = anxin_store::SqliteStore::open(&url).await.unwrap();
    messages_are_filed_by_zone_and_taken_out_when_acknowledged(store.clone()).await;
    a_message_between_zones_is_filed_by_the_commit_that_caused_it(store).await;
}

#[tokio::test]
async fn on_postgres() {
    let Some(server) = testkit::postgres_server() else {
        eprintln!("skipped: {} is not set", testkit::POSTGRES_URL_VAR);
        return;
    };
    let url = testkit::fresh_postgres_database(&server).await;
    let store = anxin_store::PostgresStore::open(&url).await.unwrap();
    messages_are_filed_by_zone_and_taken_out_when_acknowledged(store.clone()).await;
    a_message_between_zones_is_filed_by_the_commit_that_caused_it(store).await;
}

/// A zone's owner hears of new messages at once, and of nothing that was in already.
#[tokio::test]
async fn on_postgres_a_new_message_is_announced_by_its_zone() {
    let Some(server) = testkit::postgres_server() else {
        eprintln!("skipped: {} is not set", testkit::POSTGRES_URL_VAR);
        return;
    };
    let url = testkit::fresh_postgres_database(&server).await;
    let store = anxin_store::PostgresStore::open(&url).await.unwrap();
    store.save_registry(&zone_three()).await.unwrap();
    let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
    listener.listen("anxin_inbox").await.unwrap();
    store.inbox_put(&[press("d-3", "m-1", 0)]).await.unwrap();
    let heard = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv()).await.unwrap().unwrap();
    assert_eq!(heard.payload(), "3");

    store.inbox_put(&[press("d-3", "m-1", 0)]).await.unwrap(); // in already: not announced
    store.inbox_put(&[press("d-9", "m-1", 0)]).await.unwrap(); // unknown: zone 0
    let heard = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv()).await.unwrap().unwrap();
    assert_eq!(heard.payload(), "0");

    // A message between zones' owners is announced by its zone when its commit lands.
    let release =
        BorderMessage::Release { incident_id: IncidentId(7), responder_id: ResponderId::parse("r-3").unwrap() };
    let across = [Across { to: Zone::new(3).unwrap(), message: release }];
    store.commit(Batch { across: &across, ..Batch::default() }).await.unwrap();
    let heard = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv()).await.unwrap().unwrap();
    assert_eq!(heard.payload(), "3");
}
