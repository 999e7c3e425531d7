//! The supervisors' wallboard of a node with the zones spread over nodes: every zone's day,
//! read from the store.
//!
//! One node alone tallies the day from the events its engine commits. A node running some
//! zones would see only theirs, and its zones come and go: a supervisor signed in on it would
//! be shown part of the district, a different part on each node. So such a node's wallboard
//! takes no event from its engines. It reads the day once ([`anxin_store::Store::events_since`]),
//! then follows each zone's events as they are stored ([`anxin_store::Store::events_after`]),
//! a zone's cursor at the last event taken in. Every node's wallboard then counts the same
//! events, each once, whichever node commits them and however the zones move meanwhile.
//!
//! A zone's events are numbered one after another, but two batches of a zone may be committed
//! out of order (`store.commits_in_flight`): an event whose number leaves a hole after the
//! cursor waits for the hole to fill, and is taken in without it only once the hole has stayed
//! [`HOLE_WAIT`] (numbers handed out in a batch that was never stored: its engine stopped).

use anxin_api::Wallboard;
use anxin_core::{IncidentEvent, Zone};
use anxin_store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often each zone's new events are read.
pub const POLL: Duration = Duration::from_secs(1);

/// How long a hole in a zone's numbers is waited on before the events after it are counted.
pub const HOLE_WAIT: Duration = Duration::from_secs(5);

/// Events read of a zone at a time.
const READ_LIMIT: u32 = 5_000;

/// Where each zone's events have been taken in up to.
#[derive(Debug, Default)]
pub struct Cursors {
    zones: BTreeMap<Zone, Cursor>,
}

#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// The last event taken in (or the zone's last before the day was read).
    last: u64,
    /// Since when the event after `last` has been missing while later ones were stored.
    hole_since: Option<Instant>,
}

impl Cursors {
    /// Cursors after the day's read: each zone's at the later of its highest number before
    /// the read (`before`) and its highest in the day read.
    pub fn after_day(before: &BTreeMap<Zone, u64>, day: &[IncidentEvent]) -> Self {
        let mut zones: BTreeMap<Zone, Cursor> =
            before.iter().map(|(z, last)| (*z, Cursor { last: *last, hole_since: None })).collect();
        for e in day {
            let zone = Zone::of(e.seq);
            let cursor = zones.entry(zone).or_insert(Cursor { last: zone.base(), hole_since: None });
            cursor.last = cursor.last.max(e.seq);
        }
        Cursors { zones }
    }

    /// Where `zone` has been taken in up to (its base for a zone not yet followed).
    pub fn last(&self, zone: Zone) -> u64 {
        self.zones.get(&zone).map_or(zone.base(), |c| c.last)
    }

    /// Of `read` (`zone`'s events after [`Cursors::last`], in order), those to take in now:
    /// the run that follows on from the cursor, and past a hole that has waited
    /// [`HOLE_WAIT`] (as of `now`). The cursor moves past them.
    pub fn take<'a>(&mut self, zone: Zone, read: &'a [IncidentEvent], now: Instant) -> &'a [IncidentEvent] {
        let cursor = self.zones.entry(zone).or_insert(Cursor { last: zone.base(), hole_since: None });
        let mut taken = 0;
        for e in read {
            if e.seq != cursor.last + 1 {
                let since = *cursor.hole_since.get_or_insert(now);
                if now.duration_since(since) < HOLE_WAIT {
                    break;
                }
            }
            cursor.last = e.seq;
            cursor.hole_since = None;
            taken += 1;
        }
        if taken == read.len() {
            cursor.hole_since = None;
        }
        &read[..taken]
    }
}

/// [`follow`] on a thread of its own, off the runtime's (one by default): the zones' events
/// are read and decoded there, a thousand a second under the cluster test's load, and the
/// engines' batches must not wait behind them.
pub fn spawn(store: Arc<dyn Store>, wallboard: Arc<Wallboard>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(follow(store, wallboard, stop)))
}

/// Reads the day into `wallboard` and keeps it current with every zone's stored events until
/// `stop`, then stops (the wallboard's own task sends the figures: [`Wallboard::run`]).
pub async fn follow(store: Arc<dyn Store>, wallboard: Arc<Wallboard>, stop: CancellationToken) {
    let mut cursors = loop {
        match read_day(&*store, &wallboard).await {
            Ok(cursors) => break cursors,
            Err(e) => tracing::warn!(error = %e, "cannot read the day's events for the wallboard; trying again"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        if let Err(e) = catch_up(&*store, &wallboard, &mut cursors).await {
            tracing::warn!(error = %e, "cannot read the zones' new events for the wallboard; trying again");
        }
    }
}

/// The day's events, taken into `wallboard`; the cursors they leave.
async fn read_day(store: &dyn Store, wallboard: &Wallboard) -> Result<Cursors, anxin_store::StoreError> {
    let started = Instant::now();
    // Each zone's highest number first: an event stored after it is numbered above it, and is
    // either in the day's read or read after it.
    let mut before = BTreeMap::new();
    for zone in store.ledger_zones().await? {
        before.insert(zone, store.last_event_seq(zone).await?);
    }
    let day = store.events_since(wallboard.day_start()).await?;
    let cursors = Cursors::after_day(&before, &day);
    wallboard.load_day(&day);
    let events_today = day.len();
    tracing::info!(events_today, day_ms = started.elapsed().as_millis() as u64, "the wallboard's day is read");
    Ok(cursors)
}

/// Takes in every zone's events stored since the last call.
async fn catch_up(
    store: &dyn Store,
    wallboard: &Wallboard,
    cursors: &mut Cursors,
) -> Result<(), anxin_store::StoreError> {
    for zone in store.ledger_zones().await? {
        loop {
            let read = store.events_after(zone, cursors.last(zone), READ_LIMIT).await?;
            let taken = cursors.take(zone, &read, Instant::now());
            wallboard.observe(taken);
            // A full read that was taken in whole may have more behind it.
            if read.len() < READ_LIMIT as usize || taken.len() < read.len() {
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use anxin_core::{Actor, Change, IncidentId, Timestamp};

    fn events(zone: Zone, ns: &[u64]) -> Vec<IncidentEvent> {
        ns.iter()
            .map(|n| IncidentEvent {
                seq: zone.base() + n,
                incident_id: IncidentId(zone.base() + 1),
                at: Timestamp(1_000),
                actor: Actor::Engine,
                change: Change::EnRoute,
            })
            .collect()
    }

    fn numbers(zone: Zone, taken: &[IncidentEvent]) -> Vec<u64> {
        taken.iter().map(|e| e.seq - zone.base()).collect()
    }

    #[test]
    fn a_zone_is_taken_in_from_its_cursor_on_each_event_once() {
        let (z3, z5) = (Zone::new(3).unwrap(), Zone::new(5).unwrap());
        // Zone 3 had events up to 4 before the day's read, which found 5 and 6 of it; zone 5
        // none today, 10 before.
        let before = BTreeMap::from([(z3, z3.base() + 4), (z5, z5.base() + 10)]);
        let mut cursors = Cursors::after_day(&before, &events(z3, &[5, 6]));
        assert_eq!(cursors.last(z3), z3.base() + 6);
        assert_eq!(cursors.last(z5), z5.base() + 10);
        let now = Instant::now();
        let read = events(z3, &[7, 8]);
        assert_eq!(numbers(z3, cursors.take(z3, &read, now)), [7, 8]);
        assert_eq!(cursors.last(z3), z3.base() + 8);
        // A zone the day's read did not know starts at its base.
        let z7 = Zone::new(7).unwrap();
        assert_eq!(cursors.last(z7), z7.base());
        assert_eq!(numbers(z7, cursors.take(z7, &events(z7, &[1, 2]), now)), [1, 2]);
    }

    #[test]
    fn a_hole_waits_for_the_batch_committed_late_then_is_passed_over() {
        let zone = Zone::new(2).unwrap();
        let mut cursors = Cursors::after_day(&BTreeMap::from([(zone, zone.base() + 10)]), &[]);
        let start = Instant::now();
        // 11 and 12 are still being committed; 13 and 14 are stored.
        assert!(cursors.take(zone, &events(zone, &[13, 14]), start).is_empty());
        assert_eq!(cursors.last(zone), zone.base() + 10);
        // Then they are: all four, in order.
        let later = start + Duration::from_millis(500);
        assert_eq!(numbers(zone, cursors.take(zone, &events(zone, &[11, 12, 13, 14]), later)), [11, 12, 13, 14]);
        // A hole that stays (a batch never stored) holds the zone back for HOLE_WAIT only,
        // counted from when it was first seen.
        let seen = later + Duration::from_secs(1);
        assert_eq!(numbers(zone, cursors.take(zone, &events(zone, &[15, 17]), seen)), [15]);
        assert!(cursors.take(zone, &events(zone, &[17]), seen + HOLE_WAIT / 2).is_empty());
        assert_eq!(numbers(zone, cursors.take(zone, &events(zone, &[17, 18]), seen + HOLE_WAIT)), [17, 18]);
        // The next hole waits afresh.
        assert!(cursors.take(zone, &events(zone, &[20]), seen + HOLE_WAIT).is_empty());
    }
}
