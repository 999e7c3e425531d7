//! The console hub: the open incidents as consoles see them, numbered deltas, and replay.
//!
//! Every change an engine commits arrives here as an incident view carrying the sequence
//! number of its last event. Each zone's engine numbers its own events (`zone · 2⁴⁰ + n`,
//! `anxin_core::zone`), so the feed is numbered per zone, and a number says its zone. A
//! console connects with the last sequence number it applied of each zone (a [`Cursor`]); if
//! every delta after those is still in the replay buffer it gets exactly those, otherwise a
//! fresh snapshot of every zone. Within a zone sequence numbers strictly increase but are not
//! contiguous (one engine step may log several events and show only the last).

use anxin_core::{IncidentId, IncidentView, ResponderId, ResponderView, StationView, Timestamp, Zone};
use anxin_proto::cluster::WrittenView;
use anxin_proto::ws::{FeedFrame, FeedView, ServerFrame, Views};
use axum::extract::ws::Utf8Bytes;
use std::borrow::Cow;
use std::collections::{btree_map, BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// One text frame for the consoles, encoded once for all of them (cloning it for another
/// console shares the bytes).
#[derive(Debug, Clone)]
pub struct Frame {
    pub seq: u64,
    pub text: Utf8Bytes,
    /// A snapshot replaces everything the console holds; a delta updates one incident.
    pub is_snapshot: bool,
    /// A snapshot's place in every zone's numbering (none for a delta: its `seq` says it).
    pub cursor: Option<std::sync::Arc<Cursor>>,
    /// Outside the numbered incident feed (the roster, a responder's change): always sent,
    /// never replayed; a reconnecting console gets the whole roster first instead.
    pub unsequenced: bool,
}

impl Frame {
    /// A frame outside the numbered feed (a phone's, an answer): always sent, never replayed.
    pub fn unsequenced(text: Utf8Bytes) -> Self {
        Self { seq: 0, text, is_snapshot: false, cursor: None, unsequenced: true }
    }
}

/// Where a console stands in the feed: the last sequence number it applied of each zone. A
/// sequence number says its zone, so a cursor is a list of numbers, at most one a zone; as
/// text (a socket's `since`), the numbers separated by commas, and a single number is a
/// one-zone district's cursor as it always was.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cursor(BTreeMap<Zone, u64>);

/// Why a `since` is not a cursor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("since must be sequence numbers separated by commas, at most one of each zone: {0}")]
pub struct CursorError(String);

impl Cursor {
    /// The cursor at `seqs`: of two of one zone, the higher.
    pub fn of(seqs: impl IntoIterator<Item = u64>) -> Cursor {
        let mut c = Cursor::default();
        for seq in seqs {
            c.advance(seq);
        }
        c
    }

    pub fn parse(text: &str) -> Result<Cursor, CursorError> {
        let mut c = Cursor::default();
        for part in text.split(',') {
            let seq: u64 = part.trim().parse().map_err(|_| CursorError(format!("{part:?} is not a number")))?;
            if c.0.insert(Zone::of(seq), seq).is_some() {
                return Err(CursorError(format!("two numbers of zone {}", Zone::of(seq))));
            }
        }
        Ok(c)
    }

    /// The last applied of `zone`; its base (nothing of it applied) if the cursor has none.
    pub fn position(&self, zone: Zone) -> u64 {
        self.0.get(&zone).copied().unwrap_or(zone.base())
    }

    /// Whether the delta numbered `seq` is already applied.
    pub fn covers(&self, seq: u64) -> bool {
        seq <= self.position(Zone::of(seq))
    }

    /// Takes `seq` as applied.
    pub fn advance(&mut self, seq: u64) {
        let at = self.0.entry(Zone::of(seq)).or_insert(seq);
        *at = (*at).max(seq);
    }

    pub fn zones(&self) -> impl Iterator<Item = Zone> + '_ {
        self.0.keys().copied()
    }

    /// The numbers, one a zone, in zone order.
    pub fn seqs(&self) -> Vec<u64> {
        self.0.values().copied().collect()
    }

    /// The highest number (a one-zone feed's only one; 0 when empty).
    pub fn highest(&self) -> u64 {
        self.0.values().copied().max().unwrap_or(0)
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for seq in self.0.values() {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{seq}")?;
        }
        Ok(())
    }
}

/// One zone's numbering in the hub.
#[derive(Debug, Clone, Copy)]
struct ZoneFeed {
    /// The sequence number of the zone's last delta published (or its engine's at start).
    seq: u64,
    /// The zone's deltas up to and including this number are no longer in `recent`.
    evicted_upto: u64,
}

#[derive(Debug)]
struct State {
    /// Each zone's numbering: the zones whose engines publish here.
    zones: BTreeMap<Zone, ZoneFeed>,
    /// Boxed: a view is large, and growing the map then moves pointers, not views (in a surge
    /// of 100,000 incidents, moving the views held the hub's lock for tens of milliseconds).
    /// Sorted, not hashed: a hash table still grows all at once, every entry hashed again,
    /// and the ids come in rising order, so the tree grows at its end.
    open: BTreeMap<IncidentId, Kept>,
    recent: VecDeque<Frame>,
    responders: BTreeMap<ResponderId, ResponderView>,
    /// The stations consoles draw: all of them (`None`), or each zone's whose engine runs
    /// on this node.
    stations: BTreeMap<Option<Zone>, Vec<StationView>>,
    /// Consoles connected per member of staff.
    online: BTreeMap<String, usize>,
}

/// An open incident as the hub keeps it, for snapshots.
#[derive(Debug)]
enum Kept {
    /// From an engine on this node (or read from the store): the view, shared with the
    /// families' hub.
    View(Arc<IncidentView>),
    /// Followed from the node running its zone: the view as that node wrote it, sent on as
    /// it came.
    Written(Box<WrittenView>),
}

impl Kept {
    fn order(&self) -> (u8, Timestamp, IncidentId) {
        match self {
            Kept::View(v) => v.order(),
            Kept::Written(w) => w.order(),
        }
    }

    /// Its id, its sequence number, and whether it has ended.
    fn head(&self) -> (IncidentId, u64, bool) {
        match self {
            Kept::View(v) => (v.id, v.seq, v.state.is_terminal()),
            Kept::Written(w) => (w.id, w.seq, w.state.is_terminal()),
        }
    }

    fn feed_view(&self) -> FeedView<'_> {
        match self {
            Kept::View(v) => FeedView::View(v),
            Kept::Written(w) => FeedView::Written(&w.json),
        }
    }
}

/// Where consoles subscribe. Cheap to share; the lock is held only to copy or append.
#[derive(Debug)]
pub struct Hub {
    /// The store's history id: sequence numbers from another history mean nothing here.
    history: String,
    state: Mutex<State>,
    tx: broadcast::Sender<Frame>,
    replay_capacity: usize,
}

/// What a new subscriber gets: frames to send first, then the live feed.
#[derive(Debug)]
pub struct Subscription {
    pub initial: Vec<Frame>,
    pub live: broadcast::Receiver<Frame>,
}

impl Hub {
    /// A hub holding an engine's open incidents as of `at`, the engine's last sequence number
    /// of each zone it runs.
    pub fn new(history: String, at: Cursor, open: Vec<IncidentView>, replay_capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(replay_capacity.max(16));
        Self {
            history,
            state: Mutex::new(State {
                zones: at.0.iter().map(|(z, seq)| (*z, ZoneFeed { seq: *seq, evicted_upto: *seq })).collect(),
                open: open.into_iter().map(|v| (v.id, Kept::View(Arc::new(v)))).collect(),
                recent: VecDeque::with_capacity(replay_capacity),
                responders: BTreeMap::new(),
                stations: BTreeMap::new(),
                online: BTreeMap::new(),
            }),
            tx,
            replay_capacity,
        }
    }

    /// Publishes committed changes, in the order the engine made them. The views are kept as
    /// given (shared with the families' hub, [`crate::FamilyHub::publish`]).
    pub fn publish(&self, views: impl IntoIterator<Item = impl Into<Arc<IncidentView>>>) {
        let mut state = self.state.lock().expect("hub lock");
        for view in views {
            self.append(&mut state, Kept::View(view.into()), None);
        }
    }

    /// Publishes committed changes, in the order the engine made them, each written already
    /// (for the other nodes): the consoles are sent the same text, and the views are kept.
    pub fn publish_as_written<'w>(&self, views: impl IntoIterator<Item = (Arc<IncidentView>, &'w WrittenView)>) {
        let mut state = self.state.lock().expect("hub lock");
        for (view, written) in views {
            self.append(&mut state, Kept::View(view), Some(&written.json));
        }
    }

    /// Publishes changes committed in a zone another node runs, as that node wrote them, in
    /// its order: sent on and kept as written.
    pub fn publish_written(&self, views: impl IntoIterator<Item = WrittenView>) {
        let mut state = self.state.lock().expect("hub lock");
        for view in views {
            self.append(&mut state, Kept::Written(Box::new(view)), None);
        }
    }

    /// Takes one committed change into the feed and the open incidents, and sends it, its
    /// incident written as `written` if given.
    fn append(&self, state: &mut State, view: Kept, written: Option<&serde_json::value::RawValue>) {
        let (id, seq, terminal) = view.head();
        let zone = Zone::of(seq);
        // A zone first heard of here had nothing open before (its engine would have said).
        let feed = state.zones.entry(zone).or_insert(ZoneFeed { seq: zone.base(), evicted_upto: zone.base() });
        if seq <= feed.seq {
            return; // already shown (a replayed commit after a store retry)
        }
        feed.seq = seq;
        let incident = written.map_or_else(|| view.feed_view(), FeedView::Written);
        let text: Utf8Bytes = FeedFrame::Incident { seq, incident }.to_json().into();
        let frame = Frame { seq, text, is_snapshot: false, cursor: None, unsequenced: false };
        if terminal {
            state.open.remove(&id);
        } else {
            state.open.insert(id, view);
        }
        if state.recent.len() == self.replay_capacity {
            if let Some(old) = state.recent.pop_front() {
                if let Some(feed) = state.zones.get_mut(&Zone::of(old.seq)) {
                    feed.evicted_upto = old.seq;
                }
            }
        }
        state.recent.push_back(frame.clone());
        // No receivers is fine: nobody is watching yet.
        let _ = self.tx.send(frame);
    }

    /// Sets the stations consoles draw: every one there is.
    pub fn set_stations(&self, stations: Vec<StationView>) {
        let mut state = self.state.lock().expect("hub lock");
        state.stations.clear();
        state.stations.insert(None, stations);
    }

    /// Sets the stations of one zone, whose engine runs beside others' on this node.
    pub fn set_zone_stations(&self, zone: Zone, stations: Vec<StationView>) {
        self.state.lock().expect("hub lock").stations.insert(Some(zone), stations);
    }

    /// Carries `zone` from now on, as its engine has just been built: `seq` its last
    /// sequence number, `open` its open incidents, `responders` its roster. A zone carried
    /// already is replaced. Every console is sent a fresh snapshot (and the roster), so that
    /// the zone's incidents appear on it at once.
    pub fn take_zone(
        &self,
        zone: Zone,
        seq: u64,
        open: Vec<IncidentView>,
        responders: Vec<ResponderView>,
        server_time: Timestamp,
    ) {
        let mut state = self.state.lock().expect("hub lock");
        Self::forget_zone(&mut state, zone);
        state.zones.insert(zone, ZoneFeed { seq, evicted_upto: seq });
        for view in open.into_iter().filter(|v| !v.state.is_terminal()) {
            state.open.insert(view.id, Kept::View(Arc::new(view)));
        }
        for view in responders {
            state.responders.insert(view.id.clone(), view);
        }
        self.resend_all(&state, server_time);
    }

    /// Stops carrying `zone` (its engine has stopped here: another node runs it now): its
    /// incidents, its deltas held for replay, its responders (`responders`) and stations go,
    /// and every console is sent a fresh snapshot, so that none goes on showing what this
    /// node no longer hears of.
    pub fn drop_zone(&self, zone: Zone, responders: &[ResponderId], server_time: Timestamp) {
        let mut state = self.state.lock().expect("hub lock");
        Self::forget_zone(&mut state, zone);
        state.stations.remove(&Some(zone));
        for id in responders {
            state.responders.remove(id);
        }
        self.resend_all(&state, server_time);
    }

    /// Sends every console connected the roster and a snapshot (nothing is made when none
    /// is: a snapshot of every open incident is the costliest frame there is).
    fn resend_all(&self, state: &State, server_time: Timestamp) {
        if self.tx.receiver_count() == 0 {
            return;
        }
        let _ = self.tx.send(Self::roster(state));
        let _ = self.tx.send(self.snapshot(state, server_time));
    }

    fn forget_zone(state: &mut State, zone: Zone) {
        state.zones.remove(&zone);
        state.open.retain(|id, _| Zone::of(id.0) != zone);
        state.recent.retain(|f| Zone::of(f.seq) != zone);
    }

    /// Publishes responders as they are now (duty, status, position), to every console.
    pub fn publish_responders(&self, views: impl IntoIterator<Item = ResponderView>) {
        let mut state = self.state.lock().expect("hub lock");
        for view in views {
            // One look-up by id, not one to compare and another to replace.
            let entry = match state.responders.entry(view.id.clone()) {
                btree_map::Entry::Occupied(kept) if *kept.get() == view => continue,
                entry => entry,
            };
            let text: Utf8Bytes = ServerFrame::Responder { responder: Cow::Borrowed(&view) }.to_json().into();
            match entry {
                btree_map::Entry::Occupied(mut kept) => *kept.get_mut() = view,
                btree_map::Entry::Vacant(room) => _ = room.insert(view),
            }
            let _ = self.tx.send(Frame::unsequenced(text));
        }
    }

    /// Sends every console the orders' new views (not kept: a console reads the board over
    /// REST when it connects).
    pub fn publish_orders(&self, orders: Vec<anxin_core::engine::OrderView>) {
        for order in orders {
            let text: Utf8Bytes = ServerFrame::Order { order: Box::new(order) }.to_json().into();
            let _ = self.tx.send(Frame::unsequenced(text));
        }
    }

    /// Takes responders retired from the ledger off every console's map and out of the
    /// roster new consoles are sent; one not on the roster is passed over.
    pub fn retire_responders<'i>(&self, ids: impl IntoIterator<Item = &'i ResponderId>) {
        let mut state = self.state.lock().expect("hub lock");
        for id in ids {
            if state.responders.remove(id).is_none() {
                continue;
            }
            let text: Utf8Bytes = ServerFrame::ResponderRetired { id: id.clone() }.to_json().into();
            let _ = self.tx.send(Frame::unsequenced(text));
        }
    }

    /// Subscribes a console that has applied everything up to `since` (None: nothing) of the
    /// history `history` (None: the console does not know; taken to be this one).
    ///
    /// It is replayed what it missed only if, for every zone here, the deltas after its place
    /// in that zone are all still held (a zone it has applied nothing of counts from the
    /// zone's base), and it names no zone this hub does not carry (whose incidents it would
    /// go on showing); otherwise it is sent a snapshot of every zone.
    pub fn subscribe(&self, since: Option<&Cursor>, history: Option<&str>, server_time: Timestamp) -> Subscription {
        let state = self.state.lock().expect("hub lock");
        let live = self.tx.subscribe();
        let same_history = history.is_none_or(|h| h == self.history);
        let mut initial = vec![Self::roster(&state), Self::presence(&state)];
        let replayable = |c: &Cursor| {
            c.zones().all(|z| state.zones.contains_key(&z))
                && state.zones.iter().all(|(z, f)| (f.evicted_upto..=f.seq).contains(&c.position(*z)))
        };
        match since {
            Some(c) if same_history && replayable(c) => {
                initial.extend(state.recent.iter().filter(|f| !c.covers(f.seq)).cloned());
            }
            _ => initial.push(self.snapshot(&state, server_time)),
        }
        Subscription { initial, live }
    }

    /// A console of `staff` connected: `true` if it is their first, and then every console is
    /// told who is online now.
    pub fn staff_connected(&self, staff: &str) -> bool {
        let mut state = self.state.lock().expect("hub lock");
        let count = state.online.entry(staff.to_string()).or_default();
        *count += 1;
        let first = *count == 1;
        if first {
            let _ = self.tx.send(Self::presence(&state));
        }
        first
    }

    /// A console of `staff` closed: `true` if it was their last, and then every console is
    /// told who is online now.
    pub fn staff_disconnected(&self, staff: &str) -> bool {
        let mut state = self.state.lock().expect("hub lock");
        let Some(count) = state.online.get_mut(staff) else { return false };
        *count -= 1;
        let last = *count == 0;
        if last {
            state.online.remove(staff);
            let _ = self.tx.send(Self::presence(&state));
        }
        last
    }

    /// Who has a console connected, sorted.
    pub fn online(&self) -> Vec<String> {
        self.state.lock().expect("hub lock").online.keys().cloned().collect()
    }

    fn presence(state: &State) -> Frame {
        let online = state.online.keys().cloned().collect();
        Frame::unsequenced(ServerFrame::Presence { online }.to_json().into())
    }

    fn roster(state: &State) -> Frame {
        let responders = Views::Borrowed(state.responders.values().collect());
        let stations = Views::Borrowed(state.stations.values().flatten().collect());
        let text = ServerFrame::Roster { responders, stations }.to_json().into();
        Frame::unsequenced(text)
    }

    fn snapshot(&self, state: &State, server_time: Timestamp) -> Frame {
        let mut incidents: Vec<&Kept> = state.open.values().collect();
        incidents.sort_by_key(|v| v.order());
        let cursor = Self::cursor_of(state);
        let text = FeedFrame::Snapshot {
            seq: cursor.highest(),
            seqs: cursor.seqs(),
            history: &self.history,
            server_time,
            incidents: incidents.into_iter().map(Kept::feed_view).collect(),
        }
        .to_json()
        .into();
        Frame {
            seq: cursor.highest(),
            text,
            is_snapshot: true,
            cursor: Some(std::sync::Arc::new(cursor)),
            unsequenced: false,
        }
    }

    fn cursor_of(state: &State) -> Cursor {
        Cursor(state.zones.iter().map(|(z, f)| (*z, f.seq)).collect())
    }

    /// The sequence number of each zone's last delta published.
    pub fn cursor(&self) -> Cursor {
        Self::cursor_of(&self.state.lock().expect("hub lock"))
    }

    pub fn open_count(&self) -> usize {
        self.state.lock().expect("hub lock").open.len()
    }
}
