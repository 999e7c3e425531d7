//! Leases with fencing on a real PostgreSQL (issue 25's first piece): one holder at a time,
//! the epoch moves on with every grant, a stale holder's writes are refused inside their own
//! transaction, and a takeover waits for a commit that passed its fence. Runs when
//! `ANXIN_TEST_POSTGRES_URL` names a server (required under `CI=true`).

use anxin_store::lease::{FenceError, Lease};
use anxin_store::testkit::{fresh_postgres_database, postgres_server};
use anxin_store::PostgresStore;
use std::time::Duration;

const LONG: Duration = Duration::from_secs(60);
const SHORT: Duration = Duration::from_millis(150);

async fn store() -> Option<PostgresStore> {
    let server = postgres_server()?;
    let url = fresh_postgres_database(&server).await;
    Some(PostgresStore::open(&url).await.expect("opens and migrates"))
}

/// A write under `lease`: a row in a table of the test's own, committed only past the fence.
async fn write(store: &PostgresStore, lease: &Lease, what: &str) -> Result<(), FenceError> {
    let mut tx = store.begin_fenced(lease).await?;
    sqlx::query("INSERT INTO fenced_writes (holder, epoch, what) VALUES ($1, $2, $3)")
        .bind(&lease.holder)
        .bind(lease.epoch)
        .bind(what)
        .execute(&mut *tx)
        .await
        .map_err(|e| FenceError::Store(e.into()))?;
    tx.commit().await.map_err(|e| FenceError::Store(e.into()))?;
    Ok(())
}

/// An engine's batch for one press (an incident, its events, the message), on `store`'s
/// ledger (`one_of_each`, saved here), and the time it was pressed.
async fn one_press(store: &PostgresStore) -> (anxin_core::Outbox, anxin_core::Timestamp) {
    use anxin_core::*;
    use anxin_store::Store;
    store.save_registry(&testkit::one_of_each()).await.unwrap();
    let t0 = Timestamp(1_763_000_000_000);
    let resume = store.resume(&[Zone::FIRST], t0).await.unwrap();
    let mut engine = Engine::new(Policy::default(), store.load_registry().await.unwrap(), resume);
    let mut out = Outbox::default();
    let press = DeviceEvent {
        msg_id: MessageId::parse("m-1").unwrap(),
        event: EventType::Sos,
        device_ts: t0,
        fix: FixReport::Absent,
        health: Default::default(),
    };
    engine.handle_device_event(&testkit::d1(), press, t0, &mut out).unwrap();
    (out, t0)
}

async fn written(store: &PostgresStore) -> Vec<(String, i64, String)> {
    sqlx::query_as("SELECT holder, epoch, what FROM fenced_writes ORDER BY id").fetch_all(store.pool()).await.unwrap()
}

#[tokio::test]
async fn one_holder_at_a_time_and_a_stale_holder_is_fenced() {
    let Some(store) = store().await else { return eprintln!("skipped: no PostgreSQL") };
    sqlx::query("CREATE TABLE fenced_writes (id BIGSERIAL PRIMARY KEY, holder TEXT, epoch BIGINT, what TEXT)")
        .execute(store.pool())
        .await
        .unwrap();

    // a takes zone:1; b cannot while a's lease runs.
    let a = store.lease_acquire("zone:1", "node-a", SHORT, "10.0.0.1:8080").await.unwrap().expect("free");
    assert_eq!(a.epoch, 1);
    assert_eq!(store.lease_acquire("zone:1", "node-b", SHORT, "10.0.0.2:8080").await.unwrap(), None);
    write(&store, &a, "a's first").await.unwrap();
    let rows = store.leases().await.unwrap();
    assert_eq!((rows[0].holder.as_str(), rows[0].epoch, rows[0].addr.as_str()), ("node-a", 1, "10.0.0.1:8080"));
    assert!(rows[0].expires_in_ms > 0 && rows[0].expires_in_ms <= 150, "{rows:?}");

    // a is paused past its expiry (SIGSTOP, a long GC, a cut link); b takes over, epoch 2.
    tokio::time::sleep(SHORT * 2).await;
    let b = store.lease_acquire("zone:1", "node-b", LONG, "10.0.0.2:8080").await.unwrap().expect("expired");
    assert_eq!(b.epoch, 2);
    // a comes back: its renewal fails and its write is refused, inside its own transaction.
    assert!(!store.lease_renew(&a, SHORT).await.unwrap(), "a's lease is lost");
    match write(&store, &a, "a's stale").await {
        Err(FenceError::Fenced { key, held, now }) => assert_eq!((key.as_str(), held, now), ("zone:1", 1, Some(2))),
        other => panic!("a stale holder's write must be fenced: {other:?}"),
    }
    write(&store, &b, "b's first").await.unwrap();
    assert_eq!(
        written(&store).await,
        [("node-a".to_string(), 1, "a's first".to_string()), ("node-b".to_string(), 2, "b's first".to_string())],
        "nothing under the old epoch after the takeover"
    );

    // b renews (its lease runs on); released, the key is a's again at once, epoch 3.
    assert!(store.lease_renew(&b, LONG).await.unwrap());
    assert_eq!(store.lease_acquire("zone:1", "node-a", LONG, "").await.unwrap(), None, "b holds it");
    store.lease_release(&b).await.unwrap();
    let a2 = store.lease_acquire("zone:1", "node-a", LONG, "").await.unwrap().expect("released");
    assert_eq!(a2.epoch, 3);
    assert!(matches!(write(&store, &b, "b's stale").await, Err(FenceError::Fenced { now: Some(3), .. })));
    // A release of a lost lease changes nothing: a still holds epoch 3.
    store.lease_release(&b).await.unwrap();
    assert_eq!(store.lease_acquire("zone:1", "node-b", LONG, "").await.unwrap(), None);
    // A key never granted fences everyone.
    let ghost = Lease { key: "zone:9".into(), holder: "node-a".into(), epoch: 1 };
    assert!(matches!(write(&store, &ghost, "ghost").await, Err(FenceError::Fenced { now: None, .. })));
}

#[tokio::test]
async fn a_takeover_waits_for_a_commit_that_passed_its_fence() {
    let Some(store) = store().await else { return eprintln!("skipped: no PostgreSQL") };
    let a = store.lease_acquire("zone:2", "node-a", SHORT, "").await.unwrap().unwrap();
    // a is inside a fenced transaction when its lease expires.
    let tx = store.begin_fenced(&a).await.unwrap();
    tokio::time::sleep(SHORT * 2).await;
    let taker = store.clone();
    let takeover = tokio::spawn(async move { taker.lease_acquire("zone:2", "node-b", LONG, "").await });
    // The takeover cannot be granted while a's commit holds the row...
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!takeover.is_finished(), "a takeover must wait for the commit in flight");
    // ...and is, once it ends: a's commit landed under epoch 1, before epoch 2 began.
    tx.commit().await.unwrap();
    let b = takeover.await.unwrap().unwrap().expect("granted after the commit");
    assert_eq!(b.epoch, 2);
    assert!(matches!(store.begin_fenced(&a).await, Err(FenceError::Fenced { now: Some(2), .. })));
}

/// A standby asks for the lease several times a second. While the holder's lease runs, asking
/// takes no lock: it does not wait for the holder's commit in flight, nor (queued behind it)
/// hold up the holder's next one.
#[tokio::test]
async fn asking_for_a_running_lease_does_not_stall_the_holders_commits() {
    let Some(store) = store().await else { return eprintln!("skipped: no PostgreSQL") };
    let a = store.lease_acquire("zone:3", "node-a", LONG, "").await.unwrap().unwrap();
    // a's commit is in flight, past its fence.
    let in_flight = store.begin_fenced(&a).await.unwrap();
    let asker = store.clone();
    let ask = tokio::spawn(async move { asker.lease_acquire("zone:3", "node-b", LONG, "").await });
    // A hang detector, not a speed bound: asking under the lock waits for the commit forever.
    let asked = tokio::time::timeout(Duration::from_secs(5), ask).await;
    let answer = asked.expect("asking waited for the holder's commit").unwrap().unwrap();
    assert_eq!(answer, None, "the lease runs");
    // And a's next commit passes its fence while the first is still open.
    let next = tokio::time::timeout(Duration::from_secs(5), store.begin_fenced(&a)).await;
    next.expect("the next commit waited").unwrap().commit().await.unwrap();
    in_flight.commit().await.unwrap();
}

#[tokio::test]
async fn of_many_nodes_asking_at_once_one_is_granted() {
    let Some(store) = store().await else { return eprintln!("skipped: no PostgreSQL") };
    for round in 0..5 {
        let asks = (0..8).map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.lease_acquire("slot:1", &format!("node-{n}"), SHORT, "").await.unwrap() })
        });
        let mut granted = Vec::new();
        for ask in asks {
            granted.extend(ask.await.unwrap());
        }
        assert_eq!(granted.len(), 1, "round {round}: {granted:?}");
        assert_eq!(granted[0].epoch, round + 1, "every grant a new epoch");
        tokio::time::sleep(SHORT * 2).await;
    }
}

/// The engine's own commit, fenced: a batch under a lost lease is refused whole, the press
/// left in the inbox, and the same batch under the new holder's lease is stored and takes
/// the press out.
#[tokio::test]
async fn an_engine_batch_under_a_lost_lease_stores_nothing() {
    use anxin_store::inbox::{InboxEntry, InboxStore};
    use anxin_store::{Batch, Store};
    let Some(store) = store().await else { return eprintln!("skipped: no PostgreSQL") };
    let (out, t0) = one_press(&store).await;
    assert!(!out.incidents.is_empty() && !out.events.is_empty() && !out.messages.is_empty());
    let topic = format!("xs/v1/devices/{}/events", anxin_core::testkit::d1());
    let payload = format!(r#"{{"msg_id":"m-1","type":"sos","ts":{}}}"#, t0.millis());
    let filed = InboxEntry::new(anxin_core::testkit::d1().as_str(), &topic, payload.into_bytes(), t0);
    store.inbox_put(std::slice::from_ref(&filed)).await.unwrap();
    let taken = [filed.key()];
    let inbox = || async { store.inbox_take(&[anxin_core::Zone::FIRST], 10).await.unwrap().len() };

    let a = store.lease_acquire("zone:0", "node-a", SHORT, "").await.unwrap().expect("free");
    tokio::time::sleep(SHORT * 2).await;
    let b = store.lease_acquire("zone:0", "node-b", LONG, "").await.unwrap().expect("expired");
    match store.commit_fenced(Batch::of(&out).taking(&taken), &a).await {
        Err(FenceError::Fenced { held: 1, now: Some(2), .. }) => {}
        other => panic!("a's commit was not fenced: {other:?}"),
    }
    let resumed = store.resume(&[anxin_core::Zone::FIRST], t0).await.unwrap();
    assert!(resumed.open.is_empty() && resumed.recent_messages.is_empty(), "a stale owner stored {resumed:?}");
    assert_eq!(resumed.counters[&anxin_core::Zone::FIRST].seq, 0);
    assert_eq!(inbox().await, 1, "the press is left for the new owner");

    store.commit_fenced(Batch::of(&out).taking(&taken), &b).await.expect("the holder's commit is stored");
    let resumed = store.resume(&[anxin_core::Zone::FIRST], t0).await.unwrap();
    assert_eq!(resumed.open.len(), 1);
    assert_eq!(resumed.recent_messages.len(), 1);
    assert_eq!(inbox().await, 0, "taken out by the commit that handled it");
    // Stored again (a retry after an unclear failure), under the guards, still fenced.
    store.commit_fenced(Batch::of(&out), &b).await.expect("idempotent");
    assert!(matches!(store.commit_fenced(Batch::of(&out), &a).await, Err(FenceError::Fenced { .. })));
}

/// The fence sits inside the commit's own statement, whose snapshot is taken before the
/// fence's lock is granted. A takeover under way holds that lock; when it commits, the waiting
/// commit must read the new epoch (not its statement's older snapshot) and be refused whole.
#[tokio::test]
async fn a_commit_waiting_behind_a_takeover_reads_its_epoch_and_stores_nothing() {
    use anxin_store::{Batch, Store};
    let Some(store) = store().await else { return eprintln!("skipped: no PostgreSQL") };
    let (out, t0) = one_press(&store).await;
    let a = store.lease_acquire("zone:0", "node-a", LONG, "").await.unwrap().expect("free");
    // A takeover as far as its lock and its new epoch, not yet committed.
    let mut takeover = store.pool().begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('zone:0', 0))").execute(&mut *takeover).await.unwrap();
    sqlx::query("UPDATE leases SET holder = 'node-b', epoch = epoch + 1 WHERE key = 'zone:0'")
        .execute(&mut *takeover)
        .await
        .unwrap();
    let committer = store.clone();
    let (batch, lease) = (std::sync::Arc::new(out), a.clone());
    let commit = tokio::spawn(async move { committer.commit_fenced(Batch::of(&batch), &lease).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!commit.is_finished(), "the commit waits for the takeover's lock");
    takeover.commit().await.unwrap();
    match commit.await.unwrap() {
        Err(FenceError::Fenced { key, held: 1, now: Some(2) }) => assert_eq!(key, "zone:0"),
        other => panic!("the commit behind the takeover was not fenced: {other:?}"),
    }
    let resumed = store.resume(&[anxin_core::Zone::FIRST], t0).await.unwrap();
    assert!(resumed.open.is_empty() && resumed.recent_messages.is_empty(), "a stale owner stored {resumed:?}");
}

/// A process stopped in the middle of a commit (SIGSTOP) holds its transaction open, and with
/// it the lease's lock, held shared, that a takeover waits for. Opened for a lease, the store's
/// sessions give such a transaction up after the lease's time to live: the takeover goes
/// through, and the stopped holder's commit fails when it continues.
#[tokio::test]
async fn a_holder_stopped_mid_commit_does_not_hold_up_the_takeover() {
    let Some(server) = postgres_server() else { return eprintln!("skipped: no PostgreSQL") };
    let url = fresh_postgres_database(&server).await;
    let ttl = Duration::from_millis(300);
    let a_store = PostgresStore::open_for_lease(&url, ttl).await.unwrap();
    let b_store = PostgresStore::open_for_lease(&url, ttl).await.unwrap();
    let a = a_store.lease_acquire("zone:0", "node-a", ttl, "").await.unwrap().expect("free");
    // a passes its fence, and stops before its commit.
    let tx = a_store.begin_fenced(&a).await.unwrap();
    tokio::time::sleep(ttl * 2).await;
    let taken = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Some(b) = b_store.lease_acquire("zone:0", "node-b", LONG, "").await.unwrap() {
                return b;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the takeover waited on the stopped holder's transaction");
    assert_eq!(taken.epoch, 2);
    assert!(tx.commit().await.is_err(), "the stopped holder's transaction was ended by the server");
}

/// An engine running several zones commits under all their leases at once: the commit is
/// stored while every epoch holds, and refused, with nothing written, once any one of them
/// has moved on. Renewing them together says which are still held.
#[tokio::test]
async fn a_commit_under_several_leases_is_fenced_when_any_one_moves_on() {
    use anxin_store::{Batch, Store};
    let Some(store) = store().await else { return eprintln!("skipped: no PostgreSQL") };
    let (out, t0) = one_press(&store).await;
    let resume = || store.resume(&[anxin_core::Zone::FIRST], t0);

    let zone = |n: u16| format!("zone:{n}");
    let mut held = Vec::new();
    for n in [3, 0, 5] {
        held.push(store.lease_acquire(&zone(n), "node-a", SHORT, "").await.unwrap().expect("free"));
    }
    let mut renewed = store.lease_renew_all(&held, SHORT).await.unwrap();
    renewed.sort();
    assert_eq!(renewed, ["zone:0", "zone:3", "zone:5"], "renewed while they run");
    tokio::time::sleep(SHORT * 2).await;
    // A renewal arriving after their expiry (sent before a cut, delivered when it healed)
    // revives none of them, though nobody took them meanwhile: a has dropped them by its own
    // clock, and takes them again under the next epoch.
    assert_eq!(store.lease_renew_all(&held, LONG).await.unwrap(), Vec::<String>::new(), "run out: not renewed");
    assert!(!store.lease_renew(&held[0], LONG).await.unwrap(), "run out: not renewed");
    let rows = store.leases().await.unwrap();
    assert!(rows.iter().all(|r| r.expires_in_ms <= 0), "still run out: {rows:?}");
    held.clear();
    for n in [3, 0, 5] {
        let again = store.lease_acquire(&zone(n), "node-a", LONG, "").await.unwrap().expect("run out, so free");
        assert_eq!(again.epoch, 2);
        held.push(again);
    }
    let mut renewed = store.lease_renew_all(&held, LONG).await.unwrap();
    renewed.sort();
    assert_eq!(renewed, ["zone:0", "zone:3", "zone:5"]);
    assert_eq!(store.lease_acquire(&zone(5), "node-b", LONG, "").await.unwrap(), None, "renewed, so not free");

    // Zone 5 moves to b: a's commit under all three is refused, naming it.
    let five = held.iter().find(|l| l.key == "zone:5").unwrap().clone();
    store.lease_release(&five).await.unwrap();
    store.lease_acquire(&zone(5), "node-b", LONG, "").await.unwrap().expect("released");
    match store.commit_fenced_all(Batch::of(&out), &held).await {
        Err(FenceError::Fenced { key, held: 2, now: Some(3) }) => assert_eq!(key, "zone:5"),
        other => panic!("a's commit was not fenced: {other:?}"),
    }
    assert!(resume().await.unwrap().open.is_empty(), "nothing of a fenced commit is stored");
    let renewed = store.lease_renew_all(&held, LONG).await.unwrap();
    assert!(!renewed.contains(&"zone:5".to_string()) && renewed.len() == 2, "{renewed:?}");

    // Without zone 5, the other two hold: stored.
    held.retain(|l| l.key != "zone:5");
    store.commit_fenced_all(Batch::of(&out), &held).await.expect("stored under the leases still held");
    assert_eq!(resume().await.unwrap().open.len(), 1);
    // Released together: both free at once.
    store.lease_release_all(&held).await.unwrap();
    for lease in &held {
        assert!(store.lease_acquire(&lease.key, "node-b", LONG, "").await.unwrap().is_some(), "{} released", lease.key);
    }
}
