//! A node's zones' commits, gathered (`anxind::commits`), on PostgreSQL: batches that wait
//! together go in one transaction fenced by all their leases, with the node's ingest
//! filings, and a lease that moved fails only its own zone's batches. Runs when `ANXIN_TEST_POSTGRES_URL` names a server (required
//! under `CI=true`).

use anxin_core::{DeviceId, EventType, MessageId, MessageRecord, Outbox, Timestamp, Zone};
use anxin_runtime::CommitError;
use anxin_store::inbox::{InboxEntry, InboxStore};
use anxin_store::lease::Lease;
use anxin_store::{testkit, PostgresStore, Store};
use anxind::commits::{GatheredInbox, NodeCommits};
use std::sync::Arc;
use std::time::Duration;

const T0: Timestamp = Timestamp(1_763_000_000_000);

async fn store() -> Option<Arc<PostgresStore>> {
    let Some(server) = testkit::postgres_server() else {
        eprintln!("skipped: {} is not set", testkit::POSTGRES_URL_VAR);
        return None;
    };
    let url = testkit::fresh_postgres_database(&server).await;
    Some(Arc::new(PostgresStore::open(&url).await.unwrap()))
}

/// A batch storing one message of `device`.
fn batch(device: &str, msg: &str) -> Outbox {
    let mut out = Outbox::default();
    out.messages.push(MessageRecord {
        device_id: DeviceId::parse(device).unwrap(),
        msg_id: MessageId::parse(msg).unwrap(),
        event: Some(EventType::Sos),
        received_at: T0,
        incident_id: None,
    });
    out
}

async fn stored(store: &PostgresStore, device: &str, msg: &str) -> bool {
    store.message(&DeviceId::parse(device).unwrap(), &MessageId::parse(msg).unwrap()).await.unwrap().is_some()
}

fn histogram() -> prometheus::Histogram {
    prometheus::Histogram::with_opts(prometheus::HistogramOpts::new("gathered", "batches a transaction")).unwrap()
}

/// Runs on one thread: every commit below is handed over before the committer first runs, so
/// what it gathers does not hang on timing.
#[tokio::test]
async fn batches_waiting_together_are_stored_in_one_transaction_and_a_moved_lease_fails_only_its_own() {
    let Some(store) = store().await else { return };
    let one = store.lease_acquire("zone:1", "node-a", Duration::from_secs(60), "").await.unwrap().unwrap();
    let two = store.lease_acquire("zone:2", "node-a", Duration::from_millis(300), "").await.unwrap().unwrap();
    let gathered = histogram();
    let commits = NodeCommits::start(store.clone(), 1, gathered.clone());

    // Ten batches from each of two zones' engines, handed over at once.
    let outs: Vec<(Lease, Outbox)> = (0..20)
        .map(|k| {
            let (lease, device) = if k % 2 == 0 { (&one, "d-1") } else { (&two, "d-2") };
            (lease.clone(), batch(device, &format!("m-{k}")))
        })
        .collect();
    let results = futures_util::future::join_all(outs.iter().map(|(lease, out)| commits.commit(lease, out, &[]))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    for k in 0..20 {
        let device = if k % 2 == 0 { "d-1" } else { "d-2" };
        assert!(stored(&store, device, &format!("m-{k}")).await, "m-{k}");
    }
    assert_eq!(gathered.get_sample_sum(), 20.0, "every batch stored once");
    assert!(gathered.get_sample_count() < 20, "some stored together: {} transactions", gathered.get_sample_count());

    // Zone 2's lease lapses and another node takes it: zone 2's batch is fenced, stores
    // nothing, and zone 1's batches beside it in the same transaction are stored all the same.
    tokio::time::sleep(Duration::from_millis(600)).await;
    store.lease_acquire("zone:2", "node-b", Duration::from_secs(60), "").await.unwrap().expect("lapsed");
    // An ingest session's filing in the same transaction is filed all the same.
    let (a, b, c) = (batch("d-1", "m-20"), batch("d-2", "m-21"), batch("d-1", "m-22"));
    let filed = InboxEntry::new("d-9", "xs/v1/devices/d-9/events", br#"{"msg_id":"m-30"}"#.to_vec(), T0);
    let inbox = GatheredInbox { commits: commits.clone(), store: store.clone() };
    let before = gathered.get_sample_count();
    let (ra, rb, rc, rf) = futures_util::join!(
        commits.commit(&one, &a, &[]),
        commits.commit(&two, &b, &[]),
        commits.commit(&one, &c, &[]),
        inbox.inbox_put(std::slice::from_ref(&filed)),
    );
    assert_eq!((ra, rc), (Ok(()), Ok(())));
    assert!(matches!(rb, Err(CommitError::Fenced(_))), "{rb:?}");
    assert_eq!(rf.unwrap(), [Zone::FIRST], "filed under the zone of a device the ledger does not know");
    assert_eq!(gathered.get_sample_count(), before + 1, "the four in one transaction");
    assert!(stored(&store, "d-1", "m-20").await && stored(&store, "d-1", "m-22").await);
    assert!(!stored(&store, "d-2", "m-21").await, "a stale owner's batch was stored");
    let inboxed = inbox.inbox_take(&[Zone::FIRST], 10).await.unwrap();
    assert_eq!(inboxed.iter().map(|e| e.key()).collect::<Vec<_>>(), [filed.key()]);
}
