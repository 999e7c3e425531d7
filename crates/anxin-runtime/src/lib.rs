//! The engine's task: the one owner of the dispatch [`Engine`], and the pipeline that keeps
//! Anxin's first promise, *no press lost, none doubled*.
//!
//! The runtime reads device messages and people's requests in batches, lets the engine act on
//! them, and then, for each batch and in the engine's order:
//!
//! 1. **commits** what the batch caused in one transaction ([`ports::Store`]), retrying while
//!    the store is down (an engine whose messages come from an inbox in the same database
//!    takes them out in that transaction: [`ports::Store::takes_messages`]);
//! 2. **acknowledges** the batch's messages to the broker, sends the devices' commands and the
//!    stations' alerts ([`ports::Devices`]);
//! 3. **shows** the batch: incident deltas to consoles, offers and jobs to phones, responders
//!    to the consoles' maps ([`ports::Feeds`]), and answers the requests.
//!
//! Nothing is acknowledged, shown or answered before it is stored. Batches are pipelined:
//! while batch N is acknowledged and shown, batches N+1 … N+k are being stored (up to
//! [`Options::commits_in_flight`] of them, each on a connection of its own) and the engine works
//! out the next. Commits may finish in any order, but a batch is acknowledged and shown only
//! after its own commit *and* after every batch before it has been acknowledged and shown, so
//! acknowledgements, device commands, deltas and answers keep the engine's order.
//!
//! Two batches in flight never write the same row: a batch that touches an incident or a
//! responder that an earlier batch still being committed also touches waits for that commit
//! before starting its own. So each incident's and each responder's stored history is always
//! a prefix of what the engine did, however the commits interleave; what a crash can leave is
//! a later, unrelated batch stored while an earlier one is not, and both unacknowledged. The
//! broker delivers both again to the next engine, which finds the one stored and does the
//! other afresh (the incident numbers and sequence numbers the lost one had are not reused).
//! If a batch cannot be stored before shutdown, nothing after it is acknowledged.
//!
//! Everything outside the engine is a port (a trait in [`ports`]); time comes only from the
//! [`ports::Clock`]. `anxind` wires the real ports; `tests/simulation.rs` runs the same
//! runtime over fakes that crash, fail, stall and redeliver, and checks the promise after
//! every step.

mod intake;
pub mod ports;

pub use intake::{obey, Intake};
pub use ports::{Clock, CommitError, Devices, Feeds, NoTelemetry, PhoneView, Store, Telemetry};

use anxin_core::{Actor, Change, Engine, IncidentId, JobEnded, Outbox, ResponderId, ResponderView, Timestamp};
use anxin_proto::{Answer, Command, Delivery};
use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

/// The ports a runtime works through.
pub struct Ports<M> {
    pub store: Arc<dyn Store<M>>,
    pub devices: Arc<dyn Devices<M>>,
    pub feeds: Arc<dyn Feeds>,
    pub clock: Arc<dyn Clock>,
    pub telemetry: Arc<dyn Telemetry>,
}

impl<M> Clone for Ports<M> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            devices: self.devices.clone(),
            feeds: self.feeds.clone(),
            clock: self.clock.clone(),
            telemetry: self.telemetry.clone(),
        }
    }
}

impl<M> std::fmt::Debug for Ports<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}

/// How the runtime takes its input.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most device messages, and most requests, in one batch.
    pub batch_max: usize,
    /// Most batches being committed at once (at least 1); at most one more, stored, is being
    /// made known. Their acknowledgements, sends and shows still go strictly in the engine's
    /// order. So the runtime holds at most `commits_in_flight + 2` batches: one being worked
    /// out and the rest handed over.
    pub commits_in_flight: usize,
    pub intake: Intake,
    /// How often what changed of devices' health is written out (a restart loses at most
    /// this much of it).
    pub health_snapshot: Duration,
    /// A bug put in on purpose, for the simulation to show it would catch it. Always
    /// [`Fault::None`] outside the simulation's own tests.
    #[doc(hidden)]
    pub fault: Fault,
}

/// Why [`Runtime::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Shutdown was asked for, or the messages' queue closed; the batches in hand were
    /// finished.
    Shutdown,
    /// A batch could not be stored before shutdown, or a batch's task failed: nothing after
    /// it was acknowledged.
    Unfinished,
    /// A commit was refused as fenced: another engine holds the lease. Nothing from that
    /// batch on was acknowledged, sent or shown, and devices' health was not written; what
    /// the lease covered is the other engine's now.
    Fenced,
}

/// Bugs the simulation exists to catch, to be put in on purpose by its tests.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// Acknowledge a batch's messages before committing it.
    AckBeforeCommit,
    /// Show a batch to consoles before committing it.
    ShowBeforeCommit,
    /// Acknowledge a batch's messages once it is stored, without waiting for the batches
    /// before it (which may still be committing).
    AckOutOfOrder,
    /// Commit without waiting for earlier batches that write the same rows.
    IgnoreRows,
    /// Take a commit refused as fenced for one that was stored: acknowledge and show the
    /// batch, and go on.
    IgnoreFence,
}

/// The engine's task. [`Runtime::run`] drives it until shutdown.
pub struct Runtime<M> {
    engine: Engine,
    ports: Ports<M>,
    options: Options,
    /// The incident each responder's phone was last shown an offer or job on, so that when it
    /// goes away the phone can be told why.
    held: HashMap<ResponderId, IncidentId>,
    /// Cancelled from outside when the lease is known lost (see [`Runtime::lost_on`]).
    lost: Option<CancellationToken>,
}

impl<M> std::fmt::Debug for Runtime<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").field("options", &self.options).finish_non_exhaustive()
    }
}

/// One batch, worked out by the engine: to store, then to make known, in this order.
struct Step<M> {
    messages: Vec<M>,
    /// When each message of the batch that opened or joined an incident was read, for the
    /// press → console figure.
    raised: Vec<Instant>,
    out: Outbox,
    /// Phones as of this batch.
    phones: Vec<PhoneView>,
    /// Consoles' map entries as of this batch.
    responders: Vec<ResponderView>,
    replies: Vec<(Option<oneshot::Sender<Answer>>, Answer)>,
    open_incidents: usize,
    /// Every station, when the batch changed one.
    stations: Option<Vec<anxin_core::StationView>>,
    /// Service orders the batch changed, as consoles see them (the last of each).
    orders: Vec<anxin_core::engine::OrderView>,
    /// The responders whose offer or job the batch changed (sorted): their booking is held
    /// in incidents' rows, so two batches booking the same responder on different incidents
    /// must commit in order too.
    booked: Vec<ResponderId>,
}

/// The incidents and responders whose rows a batch writes, each sorted, and whether it
/// changes the ledger. A responder counts when their row changes (duty, position) and when
/// their booking does (an offer or job made or ended, kept in the incidents' rows): else a
/// batch taking a responder off one incident and a later one offering them another could
/// land in the other order, and a crash between the two leave them booked twice in the store.
#[derive(Debug, Default)]
struct Rows {
    incidents: Vec<IncidentId>,
    responders: Vec<ResponderId>,
    ledger: bool,
}

impl Rows {
    fn of(out: &Outbox, booked: &[ResponderId]) -> Self {
        let mut incidents: Vec<IncidentId> =
            out.incidents.iter().map(|i| i.id).chain(out.events.iter().map(|e| e.incident_id)).collect();
        incidents.sort_unstable();
        incidents.dedup();
        let mut responders: Vec<ResponderId> =
            out.roster.iter().map(|r| r.id.clone()).chain(booked.iter().cloned()).collect();
        responders.sort_unstable();
        responders.dedup();
        Self { incidents, responders, ledger: !out.ledger.is_empty() }
    }

    /// Whether both write a row of the same incident or responder.
    fn meet(&self, other: &Rows) -> bool {
        fn meet<T: Ord>(a: &[T], b: &[T]) -> bool {
            let (small, large) = if a.len() <= b.len() { (a, b) } else { (b, a) };
            small.iter().any(|x| large.binary_search(x).is_ok())
        }
        // Ledger changes are rare: one batch of them commits at a time, in order (a
        // responder's row is written by both kinds, so a ledger batch waits for every batch).
        (self.ledger && other.ledger)
            || ((self.ledger || other.ledger) && !(self.responders.is_empty() && other.responders.is_empty()))
            || meet(&self.incidents, &other.incidents)
            || meet(&self.responders, &other.responders)
    }
}

/// Whether a batch was stored: unknown while it commits, then true, or false if it never will
/// be (shutdown came while the store was down, a batch it waited for was not stored, or its
/// task was dropped). Waiters are woken in an order fixed by when they began to wait (tokio's
/// `watch` picks among its queues at random, which the simulation's replays did not survive).
#[derive(Debug, Default)]
struct Stored {
    value: std::sync::Mutex<Option<bool>>,
    told: Notify,
}

impl Stored {
    fn now(&self) -> Option<bool> {
        *self.value.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Says how the commit ended; only the first word counts.
    fn tell(&self, stored: bool) {
        self.value.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(stored);
        self.told.notify_waiters();
    }

    /// Waits until the batch is stored (true) or never will be (false).
    async fn outcome(&self) -> bool {
        loop {
            let told = self.told.notified();
            if let Some(stored) = self.now() {
                return stored;
            }
            told.await;
        }
    }
}

/// Tells the batch's outcome: false if its task goes without having said.
struct Teller(Arc<Stored>);

impl Drop for Teller {
    fn drop(&mut self) {
        self.0.tell(false);
    }
}

/// Where a batch's task stands with the batches around it.
struct Stages {
    /// The earlier batches still committing that write a row this one writes: its commit
    /// waits for theirs.
    before: Vec<Arc<Stored>>,
    /// Told whether this batch was stored.
    stored: Teller,
    /// Fires when the batch before has been made known (none: there was none).
    after: Option<oneshot::Receiver<()>>,
    /// Fired when this batch has been made known.
    shown: oneshot::Sender<()>,
}

/// A batch being stored and made known, in a task of its own that goes when this handle
/// does: the engine's task, aborted at a shutdown deadline, takes its commits with it, so
/// nothing is acknowledged after the process said it stopped.
struct InFlight {
    task: tokio::task::JoinHandle<bool>,
    /// The rows it writes, to keep a later batch off them while it commits.
    rows: Rows,
    stored: Arc<Stored>,
}

impl InFlight {
    fn committing(&self) -> bool {
        self.stored.now().is_none()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A responder's phone as the engine sees it now; none for one of its responders held for
/// another zone's incident, whose engine shows their phone the offer or the job.
pub fn phone_view(engine: &Engine, responder: &ResponderId, now: Timestamp) -> Option<PhoneView> {
    if engine.held_elsewhere(responder) {
        return None;
    }
    let r = engine.responder(responder)?;
    let station_name = engine.station_name(&r.station_id).unwrap_or_default().to_string();
    let carer = engine.carer_view(responder);
    let worker = engine.worker_view(responder);
    Some(PhoneView {
        responder: r.clone(),
        station_name,
        job: engine.job_view(responder, now),
        ended: None,
        carer,
        worker,
    })
}

/// Why `responder`'s offer or job on `incident` went away in the batch `out` holds, if
/// someone else did it: nothing when the responder did it themselves (declined, withdrew,
/// resolved), since their phone knows.
fn job_ended(engine: &Engine, out: &Outbox, responder: &ResponderId, incident: IncidentId) -> Option<JobEnded> {
    let mut by = None;
    // The family hears of what happened after it happens: their changes end no job.
    for e in out.events.iter().filter(|e| e.incident_id == incident && !e.change.is_family()) {
        by = Some(match &e.actor {
            Actor::Responder(r) if r == responder => return None,
            Actor::Responder(_) => "responder",
            Actor::Dispatcher(_) => "dispatcher",
            Actor::Device(_) => "device",
            Actor::Engine => "engine",
            Actor::Family(_) => "family",
        });
    }
    let view = match out.deltas.iter().rev().find(|v| v.id == incident) {
        Some(v) => v.clone(),
        None => engine.view(engine.incident(incident)?),
    };
    let reassigned_to = view.responder.filter(|p| p.id != responder.as_str()).map(|p| p.name);
    Some(JobEnded {
        incident_id: incident,
        state: view.state,
        by: by.unwrap_or("engine").to_string(),
        reason: view.outcome.filter(|o| !o.trim().is_empty()),
        reassigned_to,
    })
}

impl<M: Delivery> Runtime<M> {
    /// A runtime owning `engine`, which was resumed from what `ports.store` holds.
    pub fn new(engine: Engine, ports: Ports<M>, options: Options) -> Self {
        let held = engine.roster_view().into_iter().filter_map(|r| Some((r.id, r.incident_id?))).collect();
        Self { engine, ports, options, held, lost: None }
    }

    /// The runtime stops as on a fenced commit when `lost` is cancelled (its node knows by its
    /// own clock that the lease ran out): nothing more is stored, acknowledged, sent or shown,
    /// and requests not stored are answered [`anxin_proto::Refused::fenced`]. A fenced commit
    /// cancels `lost` too.
    pub fn lost_on(mut self, lost: CancellationToken) -> Self {
        self.lost = Some(lost);
        self
    }

    /// The engine, for what is read before the runtime starts (views for the hubs).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Reads device messages from `messages` and requests from `commands` until `shutdown`
    /// fires or `messages` closes, then finishes the batches in hand (commit, then
    /// acknowledge and show) and returns. Returns early, having acknowledged nothing more, if
    /// a batch could not be stored before shutdown or a batch's task failed, or at once if a
    /// commit was fenced.
    pub async fn run(
        mut self,
        mut messages: mpsc::Receiver<M>,
        mut commands: mpsc::Receiver<Command>,
        shutdown: CancellationToken,
    ) -> Ended {
        // Cancelled by the first commit refused as fenced: every batch still in hand then
        // stops where it is (a commit retrying gives up, nothing more is made known). Apart
        // from shutdown, after which the batches in hand are still committed.
        let fenced = self.lost.take().unwrap_or_default();
        let mut ended = Ended::Shutdown;
        let batch_max = self.options.batch_max.max(1);
        let mut batch = Vec::with_capacity(batch_max);
        let mut asked = Vec::new();
        let mut commands_open = true;
        let commits_max = self.options.commits_in_flight.max(1);
        // The batches being stored or made known, oldest first. Each task ends true once its
        // batch is made known, false if it was not stored before shutdown or the batch before
        // it was not made known; then nothing after it may be either.
        let mut in_flight: VecDeque<InFlight> = VecDeque::new();
        // Fires when the last batch handed over has been made known.
        let mut last_shown: Option<oneshot::Receiver<()>> = None;
        let clock = self.ports.clock.clone();
        // Dispatchers' absences count from now: nobody's console is connected yet. So does
        // devices' silence: nothing was heard while the engine was down.
        self.engine.start_presence(clock.now());
        self.engine.start_health(clock.now());
        let (open, overdue) = self.engine.programme_counts(clock.now());
        self.ports.telemetry.programme_tasks(open, overdue);
        self.ports.telemetry.devices_offline(self.engine.offline_count());
        let snapshot_every = (self.options.health_snapshot.as_millis() as i64).max(1_000);
        let mut next_snapshot = clock.now().plus_millis(snapshot_every);
        let mut snapshot: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            // Sleep until a message or a request arrives or the engine's next deadline (an
            // offer lapsing, a reminder, a device overdue), or the next health snapshot,
            // whichever comes first.
            let now = clock.now();
            if now >= next_snapshot && snapshot.as_ref().is_none_or(|s| s.is_finished()) {
                snapshot = Some(self.save_health(now));
                next_snapshot = now.plus_millis(snapshot_every);
                // Overdue grows with the clock, not with batches: counted at the snapshots'
                // pace (one pass over the elders on the programme).
                let (open, overdue) = self.engine.programme_counts(now);
                self.ports.telemetry.programme_tasks(open, overdue);
                self.ports.telemetry.devices_offline(self.engine.offline_count());
            }
            let wake = self.engine.next_deadline().map_or(next_snapshot, |t| t.min(next_snapshot));
            let wake = Some(wake);
            let first = tokio::select! {
                biased;
                _ = fenced.cancelled() => break,
                _ = shutdown.cancelled() => break,
                msg = messages.recv() => match msg {
                    Some(m) => Some(m),
                    None => break,
                },
                command = commands.recv(), if commands_open => {
                    match command {
                        Some(c) => asked.push(c),
                        None => commands_open = false, // the people's side is gone
                    }
                    None
                }
                _ = ports::sleep_until(&*clock, wake) => None,
            };
            batch.extend(first);
            while batch.len() < batch_max {
                match messages.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            self.ports.telemetry.in_hand(batch.len() as isize);
            while asked.len() < batch_max {
                match commands.try_recv() {
                    Ok(c) => asked.push(c),
                    Err(_) => break,
                }
            }
            let started = clock.instant();
            let worked = !batch.is_empty() || !asked.is_empty();
            let taken = batch.len();
            let step = self.step(&mut batch, &mut asked);
            if worked {
                // A wake-up for a deadline alone is not a batch: it would only dilute the figure.
                self.ports.telemetry.stepped(taken, clock.instant().saturating_duration_since(started));
            }
            // This batch is handed over once fewer than `commits_max` are committing and at
            // most one more, stored, is being made known (stored batches wait for the oldest,
            // so they may not pile up behind a slow commit). A batch that could not be stored
            // stops the runtime.
            if !make_room(&mut in_flight, commits_max).await {
                ended = Ended::Unfinished;
                // Acted on in memory only, never committed: nothing of it is stored.
                not_acted(step.replies.into_iter().filter_map(|(reply, _)| reply), fenced.is_cancelled());
                break;
            }
            let rows = Rows::of(&step.out, &step.booked);
            let before =
                in_flight.iter().filter(|b| b.committing() && b.rows.meet(&rows)).map(|b| b.stored.clone()).collect();
            let stored = Arc::new(Stored::default());
            let (shown_tx, shown_rx) = oneshot::channel();
            let after = last_shown.replace(shown_rx);
            let stages = Stages { before, stored: Teller(stored.clone()), after, shown: shown_tx };
            let stop = Stop { shutdown: shutdown.clone(), fenced: fenced.clone() };
            let task = tokio::spawn(finish(self.ports.clone(), self.options.fault, step, stages, stop));
            in_flight.push_back(InFlight { task, rows, stored });
        }
        // The batches in hand are finished (commit, then ack), in order; nothing more is read.
        while let Some(mut oldest) = in_flight.pop_front() {
            let _ = (&mut oldest.task).await;
        }
        if let Some(running) = snapshot.take() {
            let _ = running.await;
        }
        // Requests not taken up are answered so: not acted on (for whoever asked to take to
        // the zone's owner, or to ask again).
        commands.close();
        let waiting = std::iter::from_fn(|| commands.try_recv().ok()).chain(asked.drain(..));
        not_acted(waiting.filter_map(|c| c.reply), fenced.is_cancelled());
        if fenced.is_cancelled() {
            // Another engine owns what this one held: its health is that engine's to write.
            return Ended::Fenced;
        }
        // What changed of devices' health since the last snapshot is written out.
        let _ = self.save_health(clock.now()).await;
        ended
    }

    /// Writes what changed of devices' health since the last snapshot, on a task of its own.
    /// Rows that could not be written are the engine's to write next time.
    fn save_health(&mut self, at: Timestamp) -> tokio::task::JoinHandle<()> {
        let snapshot = self.engine.take_snapshot();
        let store = self.ports.store.clone();
        tokio::spawn(async move {
            if snapshot.is_empty() {
                return;
            }
            if let Err(e) = store.save_health(&snapshot, at).await {
                tracing::warn!(
                    error = %e,
                    devices = snapshot.devices.len(),
                    elders = snapshot.elders.len(),
                    "could not write devices' health; each is written again at its next change"
                );
            }
        })
    }

    /// Lets the engine act on a batch of device messages and people's requests: what fell
    /// due first, then the messages, then the requests.
    fn step(&mut self, batch: &mut Vec<M>, asked: &mut Vec<Command>) -> Step<M> {
        let now = self.ports.clock.now();
        let telemetry = &*self.ports.telemetry;
        self.engine.expire(now);
        if !self.ports.devices.connected() {
            self.engine.devices_unheard(now);
        }
        let mut out = Outbox::with_capacity(batch.len() + asked.len());
        // What fell due first (lapsed offers free responders for the presses below).
        self.engine.tick(now, &mut out);
        let mut raised = Vec::new();
        for msg in batch.iter() {
            if self.options.intake.take_in(&mut self.engine, msg, now, &mut out, telemetry) {
                raised.push(msg.received());
            }
        }
        let mut replies = Vec::with_capacity(asked.len());
        for command in asked.drain(..) {
            // Whoever asked has given up waiting (and was told so): do not act behind their back.
            if command.reply.as_ref().is_some_and(|r| r.is_closed()) {
                tracing::info!(caller = ?command.caller, "command dropped: the caller stopped waiting");
                continue;
            }
            // A request forwarded by another node that changes something (not a query).
            let acts = command.request_id.is_some()
                && anxin_proto::cluster::Forwardable::of(&command.caller, &command.request)
                    .is_some_and(|(_, f)| f.acts());
            let result = obey(&mut self.engine, &command.caller, command.request, now, &mut out);
            if let Err(e) = &result {
                tracing::info!(caller = ?command.caller, error = %e, "command refused");
            }
            // A person's action forwarded by another node is stored with its id, in this
            // batch's commit, so that the id asked again is answered and not acted on twice.
            // (One refused changed nothing: asked again, it is judged again.)
            if let (Some(id), true, Ok(reply)) = (command.request_id, acts, &result) {
                let answer = anxin_proto::cluster::ForwardedReply::of(Ok(reply.clone()));
                let answer = serde_json::to_string(&answer).expect("an answer serialises");
                out.requests.push(anxin_core::AppliedRequest { id, answer, at: now });
            }
            replies.push((command.reply, result));
        }
        let mut touched = std::mem::take(&mut out.responders);
        touched.sort();
        touched.dedup();
        let booked = touched.clone();
        let mut phones = Vec::with_capacity(touched.len());
        for r in &touched {
            let Some(mut phone) = phone_view(&self.engine, r, now) else { continue };
            let now_on = phone.job.as_ref().map(|j| j.incident_id);
            let before = match now_on {
                Some(id) => self.held.insert(r.clone(), id),
                None => self.held.remove(r),
            };
            if let Some(before) = before.filter(|b| Some(*b) != now_on) {
                phone.ended = job_ended(&self.engine, &out, r, before);
            }
            phones.push(phone);
        }
        // Consoles' maps: whoever changed status, duty or position.
        touched.extend(out.roster.iter().map(|r| r.id.clone()));
        touched.sort();
        touched.dedup();
        let responders = touched.iter().filter_map(|r| self.engine.responder_view(r)).collect();
        let stations =
            out.ledger.iter().any(|r| r.kind == anxin_core::LedgerKind::Station).then(|| self.engine.stations_view());
        let mut orders: Vec<anxin_core::engine::OrderView> = Vec::new();
        for o in out.orders.iter().rev() {
            if !orders.iter().any(|v| v.order.id == o.id) {
                orders.push(self.engine.order_view(o));
            }
        }
        orders.reverse();
        Step {
            booked,
            orders,
            stations,
            messages: std::mem::take(batch),
            raised,
            out,
            phones,
            responders,
            replies,
            open_incidents: self.engine.open_count(),
        }
    }
}

/// Forgets the batches made known, then waits while `max` or more are committing or more
/// than `max` are in flight; false if one of them failed (a panic, or a batch not stored or
/// not made known), which stops the runtime.
async fn make_room(in_flight: &mut VecDeque<InFlight>, max: usize) -> bool {
    loop {
        while in_flight.front().is_some_and(|b| b.task.is_finished()) {
            let Some(mut done) = in_flight.pop_front() else { break };
            if !(&mut done.task).await.unwrap_or(false) {
                return false;
            }
        }
        if in_flight.iter().any(|b| b.stored.now() == Some(false)) {
            return false;
        }
        if let Some(oldest) = in_flight.iter().find(|b| b.committing()) {
            if in_flight.iter().filter(|b| b.committing()).count() >= max {
                if !oldest.stored.outcome().await {
                    return false;
                }
                continue;
            }
        }
        if in_flight.len() <= max {
            return true;
        }
        let Some(mut oldest) = in_flight.pop_front() else { return true };
        if !(&mut oldest.task).await.unwrap_or(false) {
            return false;
        }
    }
}

/// What stops a batch's commit: shutdown while the store fails (a commit under way, or one
/// that can be made, still goes through), or another batch's commit fenced (nothing more).
#[derive(Clone)]
struct Stop {
    shutdown: CancellationToken,
    fenced: CancellationToken,
}

/// Stores what a batch caused, then (once the batch before has been made known)
/// acknowledges its messages and makes it known. Returns false, having acknowledged
/// nothing, if shutdown came while the store was unreachable, if the batch before was not
/// made known, or if the commit was fenced (then `stop.fenced` is cancelled for the whole
/// runtime).
async fn finish<M: Delivery>(ports: Ports<M>, fault: Fault, step: Step<M>, stages: Stages, stop: Stop) -> bool {
    let Step { messages, raised, mut out, phones, responders, replies, open_incidents, stations, orders, booked: _ } =
        step;
    let Stages { before, stored, after, shown } = stages;
    let mut messages = Some(messages);
    // The consoles' views are not stored; they leave the batch here instead of being copied.
    let mut deltas = Some(std::mem::take(&mut out.deltas));
    match fault {
        Fault::None | Fault::AckOutOfOrder | Fault::IgnoreRows | Fault::IgnoreFence => {}
        Fault::AckBeforeCommit => acknowledge(&ports, messages.take().unwrap_or_default()),
        Fault::ShowBeforeCommit => ports.feeds.incidents(deltas.take().unwrap_or_default()),
    }
    // An earlier batch writing the same rows commits first, so that no row goes back.
    for earlier in before.iter().filter(|_| fault != Fault::IgnoreRows) {
        if !earlier.outcome().await {
            stored.0.tell(false);
            refuse_if_fenced(replies, &stop);
            return false;
        }
    }
    let to_store = !out.messages.is_empty()
        || !out.events.is_empty()
        || !out.incidents.is_empty()
        || !out.roster.is_empty()
        || !out.ledger.is_empty()
        || !out.visits.is_empty()
        || !out.orders.is_empty()
        || !out.order_events.is_empty()
        || !out.requests.is_empty();
    let messages_taken = ports.store.takes_messages() && messages.as_ref().is_some_and(|m| !m.is_empty());
    if (to_store || messages_taken)
        && !commit(&ports, &out, messages.as_deref().unwrap_or_default(), &stop, fault).await
    {
        // Not stored, so not acknowledged: the broker delivers it again after a restart.
        stored.0.tell(false);
        refuse_if_fenced(replies, &stop);
        return false;
    }
    stored.0.tell(true);
    if fault == Fault::AckOutOfOrder {
        acknowledge(&ports, messages.take().unwrap_or_default());
    }
    if let Some(before) = after {
        if before.await.is_err() {
            // The batch before was not made known: neither is this one (the broker delivers
            // both again, and they are found already stored).
            return false;
        }
    }
    // Acknowledged only now that what they caused is stored (or they caused nothing).
    acknowledge(&ports, messages.unwrap_or_default());
    for (device, command) in &out.commands {
        ports.devices.send(device, command);
    }
    for alert in &out.alerts {
        // If it cannot be sent, the incident still climbs to a dispatcher at the station's deadline.
        ports.devices.alert(alert);
    }
    ports.telemetry.open_incidents(open_incidents);
    for e in &out.events {
        let step = match e.change {
            // An offer across a border is made once the responder's zone holds them.
            Change::Offered { .. } | Change::HeldAcross { .. } => "made",
            Change::Accepted { .. } => "accepted",
            Change::OfferDeclined { .. } => "declined",
            Change::OfferTimedOut { .. } => "lapsed",
            Change::OfferWithdrawn { .. } => "withdrawn",
            _ => continue,
        };
        ports.telemetry.offer(step);
    }
    if let Some(deltas) = deltas {
        ports.feeds.incidents(deltas);
        let now = ports.clock.instant();
        for read in raised {
            ports.telemetry.shown_to_consoles(now.saturating_duration_since(read));
        }
    }
    ports.feeds.events(&out.events);
    if !orders.is_empty() {
        ports.feeds.orders(orders);
    }
    if !out.ledger.is_empty() {
        ports.feeds.ledger(&out.ledger);
    }
    if let Some(stations) = stations {
        ports.feeds.stations(stations);
    }
    ports.feeds.phones(phones);
    ports.feeds.responders(responders);
    // Answered only now that what they caused is stored and shown.
    for (reply, result) in replies {
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }
    let _ = shown.send(());
    true
}

/// A batch not stored because this runtime was fenced: its requests are answered so
/// ([`anxin_proto::Refused::fenced`]), for the asker to take to the zone's new owner; nothing
/// of them was stored. Stopped for another reason (shutdown while the store failed), they are
/// dropped, which their askers hear as the engine stopping.
fn refuse_if_fenced(replies: Vec<(Option<oneshot::Sender<Answer>>, Answer)>, stop: &Stop) {
    if stop.fenced.is_cancelled() {
        not_acted(replies.into_iter().filter_map(|(reply, _)| reply), true);
    }
}

/// Answers requests that nothing was stored of, and never will be: as fenced if the runtime
/// was, else as the engine stopping ([`anxin_proto::Refused::not_acted`]).
fn not_acted(replies: impl Iterator<Item = oneshot::Sender<Answer>>, fenced: bool) {
    for reply in replies {
        let refused = if fenced { anxin_proto::Refused::fenced() } else { anxin_proto::Refused::not_acted() };
        let _ = reply.send(Err(refused));
    }
}

fn acknowledge<M: Delivery>(ports: &Ports<M>, messages: Vec<M>) {
    let taken = messages.len();
    let now = ports.clock.instant();
    for msg in messages {
        ports.telemetry.message_stored(now.saturating_duration_since(msg.received()));
        ports.devices.ack(msg);
    }
    ports.telemetry.in_hand(-(taken as isize));
}

/// Commits, retrying with backoff while the store fails. Returns false if shutdown came
/// while it failed, if another batch was fenced, or if this commit was fenced: then
/// `stop.fenced` is cancelled, so that no batch of this runtime goes on.
async fn commit<M: Delivery>(ports: &Ports<M>, out: &Outbox, messages: &[M], stop: &Stop, fault: Fault) -> bool {
    let mut backoff = Duration::from_millis(50);
    let mut failed = false;
    loop {
        if stop.fenced.is_cancelled() {
            return false;
        }
        let started = ports.clock.instant();
        match ports.store.commit(out, messages).await {
            Ok(()) => {
                ports.telemetry.committed(ports.clock.instant().saturating_duration_since(started));
                if failed {
                    ports.telemetry.store_recovered();
                }
                return true;
            }
            Err(CommitError::Fenced(_)) if fault == Fault::IgnoreFence => return true,
            Err(CommitError::Fenced(e)) => {
                tracing::error!(error = %e, "commit fenced: another engine holds the lease; stopping");
                ports.telemetry.fenced(&e);
                stop.fenced.cancel();
                return false;
            }
            Err(e) => {
                failed = true;
                ports.telemetry.commit_failed(&e.to_string(), backoff);
                tokio::select! {
                    biased;
                    _ = stop.shutdown.cancelled() => return false,
                    _ = stop.fenced.cancelled() => return false,
                    _ = ports::sleep(&*ports.clock, backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod job_ended_tests {
    //! A phone is told why its job went away only when someone else took it away.

    use super::job_ended;
    use anxin_core::*;

    const T0: Timestamp = Timestamp(1_763_000_000_000);

    use anxin_core::testkit::{engine, r1};

    /// A press that the responder accepts: their job.
    fn accepted(e: &mut Engine) -> IncidentId {
        let mut out = Outbox::default();
        let event = DeviceEvent {
            msg_id: MessageId::parse("m-1").unwrap(),
            event: EventType::Sos,
            device_ts: T0,
            fix: FixReport::Absent,
            health: Default::default(),
        };
        let Outcome::Opened(id) = e.handle_device_event(&DeviceId::parse("d-1").unwrap(), event, T0, &mut out).unwrap()
        else {
            panic!("not opened")
        };
        e.responder_acts(&r1(), id, ResponderAction::Accept, T0, &mut out).unwrap();
        assert_eq!(e.job_view(&r1(), T0).map(|j| j.incident_id), Some(id));
        id
    }

    #[test]
    fn a_false_alarm_marked_by_a_dispatcher_is_told_with_its_reason() {
        let mut e = engine();
        let id = accepted(&mut e);
        let mut out = Outbox::default();
        let reason = "老人误按".to_string();
        e.dispatcher_acts("wang", id, DispatcherAction::FalseAlarm { reason: reason.clone() }, T0, &mut out).unwrap();
        assert_eq!(e.job_view(&r1(), T0), None);
        let ended = job_ended(&e, &out, &r1(), id).expect("told");
        assert_eq!(ended.incident_id, id);
        assert_eq!(ended.state, IncidentState::FalseAlarm);
        assert_eq!(ended.by, "dispatcher");
        assert_eq!(ended.reason.as_deref(), Some(reason.as_str()));
        assert_eq!(ended.reassigned_to, None);
    }

    #[test]
    fn the_responders_own_withdrawal_is_not_told_back_to_them() {
        let mut e = engine();
        let id = accepted(&mut e);
        let mut out = Outbox::default();
        let withdraw = ResponderAction::Withdraw { reason: "unwell".into() };
        e.responder_acts(&r1(), id, withdraw, T0, &mut out).unwrap();
        assert_eq!(e.job_view(&r1(), T0), None);
        assert_eq!(job_ended(&e, &out, &r1(), id), None);
    }

    #[test]
    fn a_phone_is_told_its_stations_name() {
        let e = engine();
        let phone = super::phone_view(&e, &r1(), T0).unwrap();
        assert_eq!(phone.station_name, "金碧街道服务中心");
        assert_eq!(phone.ended, None);
    }
}
