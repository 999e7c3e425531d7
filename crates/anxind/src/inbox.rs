//! A zone owner's side of the inbox (issue 25, `SCALE-OUT.md` "Ingest"): the messages the
//! ingest sessions filed under the zones this engine runs are read into the engine's queue
//! ([`feed`]), as a broker's would be, and taken out of the inbox by the commit that stores
//! what they caused (`crate::ports::StorePort`, `anxin_store::Batch::taking`): to the engine
//! the inbox is its broker, and that commit its acknowledgement, fenced by the zone's lease
//! like everything else it writes. A message read again before its batch is committed is not
//! handed over twice ([`InFlight`]); one whose batch was not committed (the engine stopped, or
//! was fenced) stays in the inbox for the zone's next owner.
//!
//! Tested with the real runtime (`tests/ingest.rs`); anxind's engine reads the inbox with the
//! zones spread over nodes (`crate::spread`, `App::run`).

use anxin_core::Zone;
use anxin_store::inbox::{InboxEntry, InboxKey, InboxStore};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

/// A message read from the inbox, for the engine.
#[derive(Debug)]
pub struct InboxMessage {
    pub entry: InboxEntry,
    pub received: Instant,
}

impl anxin_proto::Delivery for InboxMessage {
    fn topic(&self) -> &str {
        &self.entry.topic
    }

    fn payload(&self) -> &[u8] {
        &self.entry.payload
    }

    fn received(&self) -> Instant {
        self.received
    }
}

/// Messages handed to the engine whose batch is not yet committed.
#[derive(Debug, Default)]
pub struct InFlight(Mutex<HashSet<InboxKey>>);

impl InFlight {
    fn hand_over(&self, key: InboxKey) -> bool {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key)
    }

    /// `message`'s batch is committed, and the commit took it out of the inbox: should it be
    /// filed again (a device that did not hear, and sends it again), it is handed over again.
    pub fn done(&self, message: &InboxMessage) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&message.entry.key());
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A node's one listener to the inbox's announcements (PostgreSQL's `NOTIFY anxin_inbox`), for
/// every zone it runs: each zone's feed is woken when its zone is announced. With a listener
/// a zone, every node's PostgreSQL connections heard every announcement once for each zone
/// the node ran, and each listener woke to pass over those of the others' zones.
#[derive(Debug, Default)]
pub struct Ears {
    zones: Mutex<HashMap<String, Arc<Notify>>>,
}

impl Ears {
    /// Listens at `url` until `stop`. A listener lost is made again a second later; each zone's
    /// feed is woken then (an announcement may have gone by), and reads every poll meanwhile.
    pub fn start(url: String, stop: CancellationToken) -> Arc<Ears> {
        let ears = Arc::new(Ears::default());
        let this = ears.clone();
        tokio::spawn(async move {
            loop {
                match anxin_store::inbox::Announcements::listen(&url).await {
                    Ok(mut listener) => {
                        this.wake_all();
                        loop {
                            tokio::select! {
                                _ = stop.cancelled() => return,
                                heard = listener.next() => match heard {
                                    Ok(zone) => this.wake(&zone),
                                    Err(e) => {
                                        tracing::warn!(error = %e, "no longer hearing the inbox's announcements; listening again");
                                        break;
                                    }
                                },
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen to the inbox; its zones are read every poll meanwhile")
                    }
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        ears
    }

    /// What wakes `zone`'s feed.
    pub fn zone(&self, zone: Zone) -> Arc<Notify> {
        let mut zones = self.zones.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        zones.entry(zone.to_string()).or_default().clone()
    }

    /// Wakes the feed of the zone announced (as sent: its number), if this node has one.
    fn wake(&self, zone: &str) {
        if let Some(n) = self.zones.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(zone) {
            // Kept until the feed waits, if it is reading now: it reads once more.
            n.notify_one();
        }
    }

    fn wake_all(&self) {
        for n in self.zones.lock().unwrap_or_else(std::sync::PoisonError::into_inner).values() {
            n.notify_one();
        }
    }
}

/// Reads `zones`' messages into `out` until `stop`, oldest first, each once until it is
/// acknowledged: when `woken` (by the node's [`Ears`], when PostgreSQL announces one of them)
/// and every `poll` (a listener that fails leaves the poll). `waited`, if given, is told each message's wait from its filing to its
/// hand-over (on the store's millisecond clock).
#[allow(clippy::too_many_arguments)]
pub async fn feed(
    store: Arc<dyn InboxStore>,
    zones: Vec<Zone>,
    woken: Arc<Notify>,
    poll: Duration,
    in_flight: Arc<InFlight>,
    out: mpsc::Sender<InboxMessage>,
    waited: Option<prometheus::Histogram>,
    stop: CancellationToken,
) {
    loop {
        match store.inbox_take(&zones, 4096).await {
            Ok(entries) => {
                for entry in entries {
                    if !in_flight.hand_over(entry.key()) {
                        continue;
                    }
                    if let Some(w) = &waited {
                        let ms = anxin_proto::wall_clock_now().millis() - entry.received_at.millis();
                        w.observe(ms.max(0) as f64 / 1000.0);
                    }
                    let m = InboxMessage { entry, received: Instant::now() };
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        sent = out.send(m) => if sent.is_err() { return },
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the inbox; trying again"),
        }
        // Until one of our zones is announced, or the poll.
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = woken.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}
