//! An ingest session (issue 25, `SCALE-OUT.md` "Ingest"): a persistent MQTT session that is
//! one member of the shared subscription `$share/GROUP/{root}/v1/devices/+/events`, files
//! every message it is given in the inbox (`anxin_store::inbox`) under its device's zone, and
//! only then acknowledges it. The broker gives each message to one member, and keeps what a
//! member was given but did not acknowledge for that member's session: a node that dies
//! leaves its sessions' messages to the broker, and whoever connects next under the same
//! client id is given them again (tested on Mosquitto in `tests/ingest.rs`).
//!
//! anxind runs them with the zones spread over nodes (`crate::spread`), each under a lease of
//! its own (`slot:K`).

use anxin_mqtt::{Inbound, LinkOptions, Topics};
use anxin_proto::Delivery;
use anxin_store::inbox::{InboxEntry, InboxStore};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What an ingest session has done, for its metrics and tests.
#[derive(Debug, Default)]
pub struct IngestCounts {
    /// Messages filed and acknowledged.
    pub filed: std::sync::atomic::AtomicU64,
    /// Times the inbox could not be written (each retried until it could).
    pub store_failures: std::sync::atomic::AtomicU64,
}

/// Runs an ingest session until `stop`: `link` names its client id, the broker and
/// `share_group`; at most `batch_max` messages are filed in one transaction. A batch the
/// store refuses is tried again (backing off up to 2 s) and never acknowledged before it is
/// filed; at `stop` a batch not yet filed is left to the broker, which gives it again to the
/// next session under this client id.
pub async fn run(
    link: LinkOptions,
    store: Arc<dyn InboxStore>,
    batch_max: usize,
    counts: Arc<IngestCounts>,
    stop: CancellationToken,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let topics: Topics = link.topics.clone();
    let (tx, mut rx) = mpsc::channel::<Inbound>(batch_max.max(1) * 4);
    let link_stop = CancellationToken::new();
    let (session, task) = anxin_mqtt::connect(link, tx, link_stop.clone());
    // The link stops with this task, even when it is aborted: a session's lease lost, its
    // link must not go on reconnecting under the client id its new holder uses.
    let _link_stops = link_stop.clone().drop_guard();
    let mut batch: Vec<Inbound> = Vec::with_capacity(batch_max);
    'run: loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            first = rx.recv() => match first {
                Some(m) => batch.push(m),
                None => break,
            },
        }
        while batch.len() < batch_max {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let now = anxin_proto::wall_clock_now();
        let entries: Vec<InboxEntry> = batch
            .iter()
            .map(|m| {
                // A topic that names no device is filed all the same, for the engine to count.
                let device = topics.device_of_events(m.topic()).map(|d| d.to_string()).unwrap_or_default();
                InboxEntry::new(&device, m.topic(), m.payload().to_vec(), now)
            })
            .collect();
        let mut backoff = Duration::from_millis(50);
        loop {
            match store.inbox_put(&entries).await {
                Ok(_) => break,
                Err(e) => {
                    counts.store_failures.fetch_add(1, Relaxed);
                    tracing::warn!(error = %e, messages = entries.len(), "cannot file messages in the inbox; trying again");
                    tokio::select! {
                        _ = stop.cancelled() => break 'run,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        counts.filed.fetch_add(batch.len() as u64, Relaxed);
        for m in batch.drain(..) {
            if session.ack(m).is_err() {
                // The link has stopped: what was not acknowledged comes again to the next
                // session under this client id, and the inbox absorbs the repeats.
                break 'run;
            }
        }
    }
    // A link that cannot say goodbye (its connection gone) is stopped all the same.
    let _ = tokio::time::timeout(Duration::from_secs(1), session.disconnect()).await;
    link_stop.cancel();
    let _ = task.await;
}
