//! What the runtime needs from the world, as traits: a store to commit to, the devices' link,
//! the feeds to consoles and phones, a clock, and somewhere to count. `anxind` builds the real
//! ones (PostgreSQL or SQLite, the MQTT link, the hubs, the wall clock, Prometheus); the
//! runtime's simulation builds fakes that misbehave on purpose.

use anxin_core::{
    DeviceCommand, DeviceId, HealthSnapshot, IncidentKind, IncidentView, JobEnded, JobView, Outbox, Responder,
    ResponderView, StationAlert, Timestamp,
};
use anxin_proto::Defect;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

/// A future a port returns, boxed so the ports can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the engine's time comes from, and how it waits. The runtime reads no other clock.
pub trait Clock: Send + Sync + 'static {
    /// The time the engine acts at.
    fn now(&self) -> Timestamp;
    /// Waits until [`Clock::now`] reads `t` or later.
    fn sleep_until(&self, t: Timestamp) -> BoxFuture<'static, ()>;
    /// A monotonic reading, for the durations the runtime reports (never for decisions).
    fn instant(&self) -> Instant;
}

/// Waits on `clock` until `t`, or forever for `None`.
pub(crate) async fn sleep_until(clock: &dyn Clock, t: Option<Timestamp>) {
    match t {
        Some(t) => clock.sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// Waits on `clock` for `d`.
pub(crate) async fn sleep(clock: &dyn Clock, d: Duration) {
    let until = clock.now().plus_millis(d.as_millis() as i64);
    clock.sleep_until(until).await
}

/// Why a commit did not store its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitError {
    /// The store could not be reached, or refused the transaction: the runtime tries again.
    Failed(String),
    /// The store refused the commit because this engine no longer holds the lease on what it
    /// writes: another engine has taken over (issue 25, "Leases and fencing"). Nothing was
    /// written. The runtime tries nothing again, acknowledges, sends and shows nothing more,
    /// and stops, returning [`crate::Ended::Fenced`].
    Fenced(String),
}

impl std::fmt::Display for CommitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CommitError::Failed(e) => f.write_str(e),
            CommitError::Fenced(e) => write!(f, "fenced: {e}"),
        }
    }
}

impl From<String> for CommitError {
    fn from(e: String) -> Self {
        CommitError::Failed(e)
    }
}

/// Where a batch is made durable.
pub trait Store<M>: Send + Sync + 'static {
    /// Stores what one batch caused (device messages, incident events, incidents' current
    /// state, responders' duty and position) in one transaction. Idempotent: a batch stored
    /// twice, after a failure whose outcome was unclear, leaves the same state as once.
    ///
    /// `messages` are the batch's messages. A store that is also their broker (an engine
    /// reading an inbox in the database: [`Store::takes_messages`]) takes them out in the same
    /// transaction, so that a message is handled and taken out, or neither; any other store
    /// passes them over, and [`Devices::ack`] acknowledges them after the commit.
    fn commit<'a>(&'a self, batch: &'a Outbox, messages: &'a [M]) -> BoxFuture<'a, Result<(), CommitError>>;

    /// Whether [`Store::commit`] takes the messages out of where they came from: then a batch
    /// of messages that caused nothing to store (repeats, garbage) is committed all the same.
    fn takes_messages(&self) -> bool {
        false
    }

    /// Writes a snapshot of devices' health and watched elders' activity taken at `at`, apart
    /// from the commits (it holds no promise: a restart loses at most one snapshot's interval
    /// of it). No default: a port that wraps another must pass it on (one that did not lost
    /// every snapshot).
    fn save_health<'a>(&'a self, snapshot: &'a HealthSnapshot, at: Timestamp) -> BoxFuture<'a, Result<(), String>>;
}

/// The devices' side: acknowledgements, commands to devices, alerts to stations' duty lines.
///
/// None of these wait for the network: the link queues them in order and writes them out on
/// its own task (an engine that waited for the link could wait on itself in a surge). A
/// failure to queue is the port's to log and count; the incident carries on up its ladder
/// regardless.
pub trait Devices<M>: Send + Sync + 'static {
    /// Acknowledges a message to the broker: it will not be delivered again.
    fn ack(&self, message: M);
    /// Sends a command to a device ("help is coming").
    fn send(&self, device: &DeviceId, command: &DeviceCommand);
    /// Alerts a station's duty line.
    fn alert(&self, alert: &StationAlert);
    /// Whether devices can be heard now (the broker link is up). While they cannot, their
    /// silence is not taken against them.
    fn connected(&self) -> bool {
        true
    }
}

/// A responder's phone as of one batch: who they are (name, station, duty) and the offer or
/// job they hold.
#[derive(Debug, Clone, PartialEq)]
pub struct PhoneView {
    pub responder: Responder,
    /// Their station's name (empty if the registry has none).
    pub station_name: String,
    pub job: Option<JobView>,
    /// Set when the job they held went away in this batch by someone else's hand.
    pub ended: Option<JobEnded>,
    /// A carer's visit and help; `None` for a responder who is no carer.
    pub carer: Option<anxin_core::CarerView>,
    /// A service worker's orders; `None` for a responder who works for no provider.
    pub worker: Option<anxin_core::WorkerView>,
}

/// The people's side: consoles and phones, told only what is stored.
pub trait Feeds: Send + Sync + 'static {
    /// Incidents as consoles see them, each with the sequence number of its last event, in
    /// the engine's order.
    fn incidents(&self, deltas: Vec<IncidentView>);
    /// Phones whose offer, job or duty changed.
    fn phones(&self, phones: Vec<PhoneView>);
    /// Responders whose status, duty or position changed, for the consoles' maps.
    fn responders(&self, views: Vec<ResponderView>);
    /// Changes to the ledger, stored, in the engine's order: for the broker's accounts, the
    /// sign-in tables, the consoles' station list, and the responders retired (who have no
    /// view among [`Feeds::responders`], so consoles are told here to drop them). Called
    /// before `responders` for the same batch.
    fn ledger(&self, records: &[anxin_core::LedgerRecord]) {
        let _ = records;
    }
    /// The batch's incident events, stored, in the engine's order (for the supervisors'
    /// wallboard, which keeps the day's figures from them). Called after `incidents`.
    fn events(&self, events: &[anxin_core::IncidentEvent]) {
        let _ = events;
    }
    /// Service orders as they now are, after a batch that changed them (for the consoles'
    /// services board; outside the numbered incident feed).
    fn orders(&self, orders: Vec<anxin_core::engine::OrderView>) {
        let _ = orders;
    }
    /// Every station as it now is, after a batch that changed one (for the consoles' maps).
    fn stations(&self, stations: Vec<anxin_core::StationView>) {
        let _ = stations;
    }
}

/// What the runtime did, for metrics and logs. Every method has an empty default, so a port
/// counts only what it wants to.
#[allow(unused_variables)]
pub trait Telemetry: Send + Sync + 'static {
    /// A message was read: its event type's name, or `unreadable`.
    fn received(&self, event: &str) {}
    /// A message was refused, in whole or in part, for `defect` (device `?` when the topic
    /// names none); `what_happens` says what became of it.
    fn rejected(&self, defect: Defect, device: &str, what_happens: &str) {}
    /// A message opened an incident.
    fn opened(&self, kind: IncidentKind) {}
    /// A press joined an open incident.
    fn joined(&self) {}
    /// A message the engine had already taken in (a redelivery).
    fn duplicate(&self) {}
    /// A message from another zone's owner (offers across a border): its kind (`hold`,
    /// `held`, `refused`, `release`, `off_duty`, or `unreadable`) and what came of it (`acted`, `passed`:
    /// twice, late, or not this zone's to act on; `ignored`: it did not read).
    fn border(&self, kind: &str, outcome: &str) {}
    /// A repeat press too soon after the last counted.
    fn throttled(&self) {}
    /// Messages taken from the queue (positive) or acknowledged (negative).
    fn in_hand(&self, change: isize) {}
    /// A batch of this many messages was worked out in `took`.
    fn stepped(&self, messages: usize, took: Duration) {}
    /// A commit succeeded in `took`.
    fn committed(&self, took: Duration) {}
    /// A commit failed; the runtime retries after `retry_in`.
    fn commit_failed(&self, error: &str, retry_in: Duration) {}
    /// The store answers again after failures.
    fn store_recovered(&self) {}
    /// A commit was refused as fenced: another engine holds the lease now, and this runtime
    /// stops.
    fn fenced(&self, error: &str) {}
    /// A message is stored, `since` it was read.
    fn message_stored(&self, since: Duration) {}
    /// The incident a message opened or joined was handed to the consoles' feed, `since` the
    /// message was read (stored, acknowledged, then shown: the press → console figure).
    fn shown_to_consoles(&self, since: Duration) {}
    /// How many incidents are open after a batch.
    fn open_incidents(&self, open: usize) {}
    /// The welfare programme's open calls and visits, and how many of them are overdue: at
    /// start and with every health snapshot.
    fn programme_tasks(&self, open: usize, overdue: usize) {}
    /// Devices offline now (silent past their window, or switched off): at start and with
    /// every health snapshot.
    fn devices_offline(&self, offline: usize) {}
    /// An offer to a responder was made, or ended (`made`, `accepted`, `declined`, `lapsed`,
    /// `withdrawn`), once stored.
    fn offer(&self, step: &'static str) {}
}

/// Counts nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTelemetry;

impl Telemetry for NoTelemetry {}
