//! The console hub: the open incidents as consoles see them, numbered deltas, and replay.
//!
//! Every change the engine commits arrives here as an incident view carrying the sequence
//! number of its last event. A console connects with the last sequence number it applied;
//! if every delta after it is still in the replay buffer it gets exactly those, otherwise a
//! fresh snapshot. Sequence numbers strictly increase but are not contiguous (one engine
//! step may log several events and show only the last).

use anxin_core::{IncidentId, IncidentView, ResponderId, ResponderView, StationView, Timestamp};
use anxin_proto::ws::{ServerFrame, Views};
use axum::extract::ws::Utf8Bytes;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::broadcast;

/// One text frame for the consoles, encoded once for all of them (cloning it for another
/// console shares the bytes).
#[derive(Debug, Clone)]
pub struct Frame {
    pub seq: u64,
    pub text: Utf8Bytes,
    /// A snapshot replaces everything the console holds; a delta updates one incident.
    pub is_snapshot: bool,
    /// Outside the numbered incident feed (the roster, a responder's change): always sent,
    /// never replayed; a reconnecting console gets the whole roster first instead.
    pub unsequenced: bool,
}

impl Frame {
    /// A frame outside the numbered feed (a phone's, an answer): always sent, never replayed.
    pub fn unsequenced(text: Utf8Bytes) -> Self {
        Self { seq: 0, text, is_snapshot: false, unsequenced: true }
    }
}

#[derive(Debug)]
struct State {
    /// The sequence number of the last delta published (or the engine's at start).
    seq: u64,
    /// Deltas up to and including this number are no longer in `recent`.
    evicted_upto: u64,
    /// Boxed: a view is large, and growing the map then moves pointers, not views (in a surge
    /// of 100,000 incidents, moving the views held the hub's lock for tens of milliseconds).
    open: HashMap<IncidentId, Box<IncidentView>>,
    recent: VecDeque<Frame>,
    responders: BTreeMap<ResponderId, ResponderView>,
    stations: Vec<StationView>,
    /// Consoles connected per member of staff.
    online: BTreeMap<String, usize>,
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
    /// A hub holding the engine's open incidents as of sequence number `seq`.
    pub fn new(history: String, seq: u64, open: Vec<IncidentView>, replay_capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(replay_capacity.max(16));
        Self {
            history,
            state: Mutex::new(State {
                seq,
                evicted_upto: seq,
                open: open.into_iter().map(|v| (v.id, Box::new(v))).collect(),
                recent: VecDeque::with_capacity(replay_capacity),
                responders: BTreeMap::new(),
                stations: Vec::new(),
                online: BTreeMap::new(),
            }),
            tx,
            replay_capacity,
        }
    }

    /// Publishes committed changes, in the order the engine made them.
    pub fn publish(&self, views: impl IntoIterator<Item = IncidentView>) {
        let mut state = self.state.lock().expect("hub lock");
        for view in views {
            if view.seq <= state.seq {
                continue; // already shown (a replayed commit after a store retry)
            }
            let text: Utf8Bytes =
                ServerFrame::Incident { seq: view.seq, incident: Cow::Borrowed(&view) }.to_json().into();
            let frame = Frame { seq: view.seq, text, is_snapshot: false, unsequenced: false };
            state.seq = view.seq;
            if view.state.is_terminal() {
                state.open.remove(&view.id);
            } else {
                state.open.insert(view.id, Box::new(view));
            }
            if state.recent.len() == self.replay_capacity {
                if let Some(old) = state.recent.pop_front() {
                    state.evicted_upto = old.seq;
                }
            }
            state.recent.push_back(frame.clone());
            // No receivers is fine: nobody is watching yet.
            let _ = self.tx.send(frame);
        }
    }

    /// Sets the stations consoles draw (they do not change while running).
    pub fn set_stations(&self, stations: Vec<StationView>) {
        self.state.lock().expect("hub lock").stations = stations;
    }

    /// Publishes responders as they are now (duty, status, position), to every console.
    pub fn publish_responders(&self, views: impl IntoIterator<Item = ResponderView>) {
        let mut state = self.state.lock().expect("hub lock");
        for view in views {
            if state.responders.get(&view.id) == Some(&view) {
                continue;
            }
            let text: Utf8Bytes = ServerFrame::Responder { responder: Cow::Borrowed(&view) }.to_json().into();
            state.responders.insert(view.id.clone(), view);
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
    pub fn subscribe(&self, since: Option<u64>, history: Option<&str>, server_time: Timestamp) -> Subscription {
        let state = self.state.lock().expect("hub lock");
        let live = self.tx.subscribe();
        let same_history = history.is_none_or(|h| h == self.history);
        let mut initial = vec![Self::roster(&state), Self::presence(&state)];
        match since {
            Some(s) if same_history && s >= state.evicted_upto && s <= state.seq => {
                initial.extend(state.recent.iter().filter(|f| f.seq > s).cloned());
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
        let stations = Views::Borrowed(state.stations.iter().collect());
        let text = ServerFrame::Roster { responders, stations }.to_json().into();
        Frame::unsequenced(text)
    }

    fn snapshot(&self, state: &State, server_time: Timestamp) -> Frame {
        let mut incidents: Vec<&IncidentView> = state.open.values().map(|v| &**v).collect();
        incidents.sort_by_key(|v| (v.priority, v.pressed_at, v.id));
        let text = ServerFrame::Snapshot {
            seq: state.seq,
            history: Cow::Borrowed(&self.history),
            server_time,
            incidents: Views::Borrowed(incidents),
        }
        .to_json()
        .into();
        Frame { seq: state.seq, text, is_snapshot: true, unsequenced: false }
    }

    /// The sequence number of the last delta published.
    pub fn seq(&self) -> u64 {
        self.state.lock().expect("hub lock").seq
    }

    pub fn open_count(&self) -> usize {
        self.state.lock().expect("hub lock").open.len()
    }
}
