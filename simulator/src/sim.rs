//! The live run: devices publish over MQTT, responders answer on their phones' WebSocket, a
//! console watches the feed and a dispatcher acts on a second console socket. Everything that
//! happens is written down in the [`Ledger`], from which the report is made.

use crate::district::{District, Point};
use crate::engine::Target;
use crate::family::Told;
use crate::health::{FaultKind, Lives, Note};
use crate::plan::{uniform, Action, Event};
use crate::scenario::{Dispatchers, Responders, Scenario};
use anxin_core::{Delivery, DeviceCommand, DispatcherNeeded, FamilyAnswer, IncidentView, Suggestion};
use anxin_proto::rest::SignIn;
use anxin_proto::ws::{ClientFrame, DispatcherVerb, ServerFrame};
use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rumqttc::{AsyncClient, Event as MqttEvent, MqttOptions, Packet, QoS};
use serde_json::json;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::time::sleep_until;
use tokio_tungstenite::tungstenite::Message;

/// How a run is played.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Scenario minutes played after the last planned press, so incidents can finish.
    pub drain_min: f64,
    /// Wall-clock seconds a device waits for `help_coming` before sending the press again.
    pub resend_after_s: f64,
    /// MQTT connections the devices' messages share.
    pub publishers: usize,
    /// Print a progress line on stderr.
    pub progress: bool,
    /// A label for the progress line.
    pub label: String,
}

/// The scenario clock: wall-clock time since the start, times the speed-up.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub start: Instant,
    pub speedup: f64,
}

impl Clock {
    pub fn at(&self, scenario_s: f64) -> Instant {
        self.start + Duration::from_secs_f64(scenario_s.max(0.0) / self.speedup)
    }

    pub fn wall(&self, scenario_s: f64) -> Duration {
        Duration::from_secs_f64(scenario_s.max(0.0) / self.speedup)
    }

    pub fn scenario_s(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.start).as_secs_f64() * self.speedup
    }
}

/// One emergency press (SOS or fall) as the device sent it, and what became of it.
#[derive(Debug, Clone)]
pub struct Press {
    pub device: usize,
    pub action: Action,
    pub repeat: bool,
    pub surge: bool,
    /// The wall-clock moment of the press (just before the first publish).
    pub sent: Instant,
    pub last_sent: Instant,
    pub resends: u32,
    payload: String,
    /// When the device heard `help_coming` for it.
    pub acked: Option<Instant>,
    /// When a console first showed it (the incident appearing, or its press count rising).
    pub consoled: Option<Instant>,
    pub incident: Option<u64>,
}

/// An incident as the console saw it, with the moments of its life.
#[derive(Debug, Clone, Default)]
pub struct Incident {
    pub id: u64,
    pub device: usize,
    pub kind: String,
    pub state: String,
    /// The press that opened it.
    pub opened_by: Option<usize>,
    pub press_count: u32,
    pub first_offer: Option<Instant>,
    /// When each responder was first offered this incident.
    offered_to: HashMap<String, Instant>,
    pub accepted: Option<Instant>,
    /// The offer the accepted responder had been holding, when it began.
    pub accepted_offer: Option<Instant>,
    pub on_scene: Option<Instant>,
    pub resolved: Option<Instant>,
    pub ended: Option<Instant>,
    pub cancel_requested: bool,
    pub station_alerted: bool,
    pub nobody_going: bool,
    pub offers_made: u32,
    /// The responder who took the job, and their distance when they took it.
    pub responder: Option<String>,
    pub responder_distance_m: Option<f64>,
    pub handled_by_dispatcher: bool,
    /// What the dispatcher last did about nobody going: put a responder on it, or 120.
    pub nobody_going_outcome: Option<NobodyGoingOutcome>,
    close_planned: bool,
    cancel_planned: bool,
    /// The last view showed it waiting for a dispatcher because nobody is going.
    awaiting_nobody_going: bool,
    /// The responder the dispatcher last sent an `assign` for: their job did not come from an
    /// offer, so it has no offer-to-accept time.
    assign_sent: Option<String>,
    /// The family's side, as the console last showed it.
    pub family: FamilySeen,
}

/// An incident's family as the console showed it, in the engine's timestamps (wall-clock
/// milliseconds, so differences times the speed-up are scenario time).
#[derive(Debug, Clone, Default)]
pub struct FamilySeen {
    /// When the device says the elder pressed.
    pub pressed_at_ms: i64,
    /// When the first contact was told.
    pub first_told_at_ms: Option<i64>,
    /// When a notification was first reported sent or delivered, where a delivery worker
    /// reports them.
    pub first_delivery_at_ms: Option<i64>,
    /// When a contact first answered anything but "cannot help" (the engine's `answered`).
    pub answered_at_ms: Option<i64>,
    /// When a contact first said they are going themselves (`going`, with an ETA).
    pub going_at_ms: Option<i64>,
    /// Contacts told so far, in the order they were told.
    pub told: Vec<String>,
    pub exhausted: bool,
}

/// How a dispatcher ended an episode of "nobody going".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NobodyGoingOutcome {
    /// A suggested responder agreed on the phone and the engine took the assignment.
    Assigned,
    /// Nobody close enough, or nobody agreed: handed to the ambulance (120) and resolved.
    HandedTo120,
}

#[derive(Debug, Default)]
struct DeviceQueues {
    /// Presses waiting for `help_coming`, oldest first.
    awaiting_ack: VecDeque<usize>,
    /// Presses not yet seen on the console, oldest first.
    awaiting_console: VecDeque<usize>,
    /// The device's open incident as the console shows it.
    open: Option<u64>,
    /// Its open welfare check (kept apart from its emergencies, as the engine keeps it).
    welfare: Option<u64>,
    /// Flat or switched off now: its silence in [`Ledger::silences`]. A silent device
    /// sends nothing, not even a press waiting for `help_coming`.
    silent: Option<usize>,
}

/// A device gone silent (flat or switched off), from its last word to its next.
#[derive(Debug, Clone)]
pub struct Silence {
    pub device: usize,
    pub kind: FaultKind,
    /// Its last message (the `low_battery` or `power_off`): when it was sent, on our clock
    /// and as wall-clock milliseconds (the engine's clock, for its `opened_at`).
    pub last: Instant,
    pub last_ms: i64,
    /// When it was heard again, if it was.
    pub back_ms: Option<i64>,
}

/// A welfare check as the console showed it.
#[derive(Debug, Clone)]
pub struct WelfareCheck {
    pub id: u64,
    pub device: usize,
    /// The engine's `welfare`: `device_offline`, `power_off`, `low_battery`.
    pub reason: String,
    /// When the engine opened it, wall-clock milliseconds (the engine's `opened_at`).
    pub opened_at_ms: i64,
    pub seen: Instant,
    /// When the console showed it ended, and the engine's outcome.
    pub ended: Option<Instant>,
    pub outcome: Option<String>,
}

/// What the devices said of their health.
#[derive(Debug, Clone, Default)]
pub struct HealthSent {
    pub heartbeats: u64,
    /// Faults begun, by kind, and devices heard again after one.
    pub faults: HashMap<FaultKind, u64>,
    pub backs: HashMap<FaultKind, u64>,
    /// Devices that said their battery was low (a `low_battery`, or a heartbeat at 20% or
    /// under): a low-battery check is expected for them and for nobody else.
    pub reported_low: std::collections::HashSet<usize>,
}

/// Everything the run saw.
#[derive(Debug, Default)]
pub struct Ledger {
    pub presses: Vec<Press>,
    pub incidents: HashMap<u64, Incident>,
    devices: Vec<DeviceQueues>,
    pub cancels_sent: u64,
    /// `help_coming` that matched no waiting press (answers to resends).
    pub extra_acks: u64,
    /// Presses a console showed that no device sent: one press counted twice.
    pub unexplained_presses: u64,
    /// A device with two incidents open at once.
    pub concurrent_open: u64,
    pub offers_accepted: u64,
    pub offers_declined: u64,
    pub offers_unanswered: u64,
    pub phone_refusals: u64,
    pub dispatcher_commands: u64,
    /// `suggest` questions the dispatcher asked.
    pub dispatcher_suggests: u64,
    /// Responders the dispatcher rang who declined or did not answer.
    pub assign_calls_declined: u64,
    pub dispatcher_refusals: u64,
    pub refusal_samples: Vec<String>,
    pub snapshot_open_at_start: Option<usize>,
    pub console_resyncs: u64,
    /// Family links the simulator's supervisor issued (one per contact who answered).
    pub family_links_issued: u64,
    /// Family answers the engine took.
    pub family_answers_taken: u64,
    /// Family answers refused because the incident had ended meanwhile: normal.
    pub family_answers_late: u64,
    /// Family answers refused for any other reason, or never sent (sign-in, socket).
    pub family_answers_refused: u64,
    pub family_answers_failed: u64,
    /// Wall-clock milliseconds from when each answer was due to the engine's result (taken
    /// or late): the simulator's and the engine's lag, added to the contact's delay.
    pub family_answer_lag_ms: Vec<f64>,
    /// The devices' health: what they said, when they went silent, and the welfare checks
    /// the console showed.
    pub health: HealthSent,
    pub silences: Vec<Silence>,
    pub welfare: HashMap<u64, WelfareCheck>,
    /// A device with two welfare checks open at once (the engine keeps one a device).
    pub welfare_concurrent: u64,
    /// The welfare programme's calls and visits the console showed, and what the dispatcher
    /// did with them.
    pub tasks: HashMap<u64, Task>,
    /// Incidents the engine is to open on a device with no press (a task found the elder
    /// needing help or a service): the console shows them with a press count of one.
    engine_opened: HashMap<usize, u32>,
    /// Carers' visits as the carers made them, and their incidents as the console showed them.
    pub visits: Vec<VisitLog>,
    pub carer_incidents: HashMap<u64, CarerIncident>,
    /// Carers' actions refused when they should not have been, or taken when they should not.
    pub carer_surprises: Vec<String>,
    /// The service lane: orders placed, as the console showed them, and the workers' steps.
    pub orders: crate::services::OrderLog,
}

/// A scheduled call or visit (a welfare check of reason `scheduled_call` or
/// `scheduled_visit`) as the console showed it; times are wall-clock milliseconds.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: u64,
    pub device: usize,
    pub visit: bool,
    /// The engine's `opened_at`, and when the console showed it.
    pub opened_at_ms: i64,
    pub seen_ms: i64,
    /// The dispatcher's closing: the outcome, when the frame went, and when the engine took it.
    pub outcome: Option<String>,
    pub close_sent_ms: Option<i64>,
    pub closed_ms: Option<i64>,
    /// The console showed it ended (by the dispatcher or otherwise).
    pub ended: bool,
}

/// One visit of a carer, as they made it; times are wall-clock milliseconds.
#[derive(Debug, Clone, Default)]
pub struct VisitLog {
    pub carer: String,
    pub elder: usize,
    /// The first check-in was sent from too far away, and whether it was refused
    /// `out_of_radius` (it must be).
    pub far: bool,
    pub far_refused: bool,
    /// The check-in from the door was taken.
    pub checked_in_ms: Option<i64>,
    /// The last word the engine took from the carer on the visit (check-in or still here),
    /// when it was sent: the engine heard it then or a little later.
    pub last_heard_ms: Option<i64>,
    pub still_here: bool,
    /// The carer forgot to check out: the lone-worker alarm is due at last heard + the timer.
    pub forgot: bool,
    /// Help pressed (sent; taken).
    pub help_ms: Option<i64>,
    pub checked_out_ms: Option<i64>,
}

/// A carer's incident (a lone-worker alarm, or their help) as the console showed it.
#[derive(Debug, Clone)]
pub struct CarerIncident {
    pub id: u64,
    pub carer: String,
    pub kind: String,
    pub opened_at_ms: i64,
    pub seen_ms: i64,
    pub state: String,
    pub ended: bool,
    close_planned: bool,
    handover_planned: bool,
}

/// One step of the dispatcher's work on an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Close an incident its responder resolved.
    Close,
    /// Cancel an incident whose elder asked to, after calling them back.
    Cancel,
    /// Ask the engine whom they could put on an incident nobody is going to.
    Suggest,
    /// Put this responder on the job (they agreed on the phone).
    Assign(String),
    /// Nobody to put on it: hand it to the ambulance (120) and resolve it.
    Handover,
    /// End a scheduled call or visit with what was found: resolve, then close, with it.
    TaskResolve(String),
    Task(String),
}

/// A dispatcher's step, due at a wall-clock moment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DispatcherAction {
    due: Instant,
    /// Order of planning, so steps due at the same moment keep it.
    order: u64,
    incident: u64,
    step: Step,
}

impl Ord for DispatcherAction {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: the heap gives the earliest first.
        other.due.cmp(&self.due).then(other.order.cmp(&self.order))
    }
}
impl PartialOrd for DispatcherAction {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ledger {
    fn new(devices: usize) -> Self {
        Self { devices: (0..devices).map(|_| DeviceQueues::default()).collect(), ..Self::default() }
    }

    fn help_coming(&mut self, device: usize, incident: u64, now: Instant) {
        match self.devices[device].awaiting_ack.pop_front() {
            Some(p) => {
                self.presses[p].acked = Some(now);
                self.presses[p].incident.get_or_insert(incident);
            }
            None => self.extra_acks += 1,
        }
    }

    /// Takes in one incident view from the console feed; returns dispatcher actions to plan.
    fn incident_view(&mut self, v: &IncidentView, now: Instant, device_index: &HashMap<String, usize>) -> Vec<Planned> {
        let id = v.id.0;
        if let Some(carer) = v.device_id.as_str().strip_prefix(anxin_core::carer::CARER_DEVICE_PREFIX) {
            return self.carer_incident_view(v, carer, now);
        }
        let Some(&device) = device_index.get(v.device_id.as_str()) else { return vec![] };
        if v.welfare.is_some_and(|r| r.is_programme()) {
            return self.task_view(v, device);
        }
        if v.kind == anxin_core::IncidentKind::Welfare {
            // Nobody is sent to a welfare check and the family's answers are the emergencies':
            // the simulator only watches them open and close.
            self.welfare_view(v, device, now);
            return vec![];
        }
        let state = v.state.as_str().to_string();
        let press_count = v.press_count;
        let is_new = !self.incidents.contains_key(&id);
        if is_new {
            if let Some(other) = self.devices[device].open {
                if other != id {
                    self.concurrent_open += 1;
                }
            }
            self.incidents.insert(id, Incident { id, device, ..Incident::default() });
        }
        let inc = self.incidents.get_mut(&id).expect("inserted");
        // Presses the console now shows for the first time: the oldest the device sent.
        let mut opened_by = None;
        for _ in inc.press_count..press_count {
            match self.devices[device].awaiting_console.pop_front() {
                Some(p) => {
                    self.presses[p].consoled = Some(now);
                    self.presses[p].incident = Some(id);
                    opened_by.get_or_insert(p);
                }
                None => match self.engine_opened.get_mut(&device).filter(|n| **n > 0) {
                    // Opened by the engine for a task's finding: no press to account for.
                    Some(n) => *n -= 1,
                    None => self.unexplained_presses += 1,
                },
            }
        }
        if is_new {
            inc.opened_by = opened_by;
        }
        inc.press_count = inc.press_count.max(press_count);
        inc.kind = v.kind.as_str().to_string();
        inc.cancel_requested = v.cancel_requested;
        inc.offers_made = inc.offers_made.max(v.ladder.offers_made);
        // Who holds an offer: `offers` where the engine makes several at once, else `responder`.
        let mut offered: Vec<String> = v.offers.iter().map(|o| o.responder.id.clone()).collect();
        if offered.is_empty() && state == "offered" {
            offered.extend(v.responder.as_ref().map(|r| r.id.clone()));
        }
        for r in offered {
            inc.first_offer.get_or_insert(now);
            inc.offered_to.entry(r).or_insert(now);
        }
        match state.as_str() {
            "station_alerted" => inc.station_alerted = true,
            "accepted" | "en_route" | "on_scene" => {
                if inc.accepted.is_none() {
                    inc.accepted = Some(now);
                    inc.responder = v.responder.as_ref().map(|r| r.id.clone());
                    let assigned = inc.responder.is_some() && inc.responder == inc.assign_sent;
                    inc.accepted_offer = if assigned {
                        None
                    } else {
                        inc.responder.as_ref().and_then(|r| inc.offered_to.get(r).copied())
                    };
                    inc.responder_distance_m = v.responder.as_ref().and_then(|r| r.distance_m);
                }
                if state == "on_scene" {
                    inc.on_scene.get_or_insert(now);
                }
            }
            "resolved" => {
                inc.resolved.get_or_insert(now);
            }
            _ => {}
        }
        let needed = v.dispatcher_needed;
        match needed {
            Some(DispatcherNeeded::NobodyGoing) => inc.nobody_going = true,
            Some(DispatcherNeeded::HandledByDispatcher) => inc.handled_by_dispatcher = true,
            _ => {}
        }
        let terminal = matches!(state.as_str(), "closed" | "cancelled" | "false_alarm");
        if terminal {
            inc.ended.get_or_insert(now);
            if self.devices[device].open == Some(id) {
                self.devices[device].open = None;
            }
        } else {
            self.devices[device].open = Some(id);
        }
        inc.state = state.clone();
        let mut plans = Vec::new();
        let fam = &mut inc.family;
        fam.pressed_at_ms = v.pressed_at.millis();
        fam.exhausted = v.family.exhausted;
        for c in &v.family.contacts {
            let earliest = |a: Option<i64>, b: i64| Some(a.map_or(b, |a| a.min(b)));
            if let Some(t) = c.told_at {
                fam.first_told_at_ms = earliest(fam.first_told_at_ms, t.millis());
                if !fam.told.contains(&c.contact_id) {
                    fam.told.push(c.contact_id.clone());
                    plans.push(Planned::FamilyTold(Told { incident: id, device, contact_id: c.contact_id.clone() }));
                }
            }
            if let (Some(Delivery::Sent | Delivery::Delivered), Some(t)) = (c.delivery, c.delivery_at) {
                fam.first_delivery_at_ms = earliest(fam.first_delivery_at_ms, t.millis());
            }
            if let (Some(a), Some(t)) = (&c.answer, c.answered_at) {
                if !matches!(a, FamilyAnswer::CannotHelp) {
                    fam.answered_at_ms = earliest(fam.answered_at_ms, t.millis());
                }
                if matches!(a, FamilyAnswer::Going { .. }) {
                    fam.going_at_ms = earliest(fam.going_at_ms, t.millis());
                }
            }
        }
        if !terminal {
            if state == "resolved" && !inc.close_planned {
                inc.close_planned = true;
                plans.push(Planned::Close(id));
            } else if inc.cancel_requested && !inc.cancel_planned && state != "resolved" {
                inc.cancel_planned = true;
                plans.push(Planned::Cancel(id));
            }
        }
        // Each time it comes (back) to "nobody going", the dispatcher hears of it once.
        let waiting = !terminal && state == "awaiting_dispatcher" && needed == Some(DispatcherNeeded::NobodyGoing);
        if waiting && !inc.awaiting_nobody_going {
            plans.push(Planned::NobodyGoing(id));
        }
        inc.awaiting_nobody_going = waiting;
        plans
    }

    /// Takes in a welfare check's view.
    fn welfare_view(&mut self, v: &IncidentView, device: usize, now: Instant) {
        let id = v.id.0;
        if !self.welfare.contains_key(&id) {
            if self.devices[device].welfare.is_some_and(|other| other != id) {
                self.welfare_concurrent += 1;
            }
            let reason = v.welfare.map_or("unknown", |r| r.as_str()).to_string();
            let check = WelfareCheck {
                id,
                device,
                reason,
                opened_at_ms: v.opened_at.millis(),
                seen: now,
                ended: None,
                outcome: None,
            };
            self.welfare.insert(id, check);
        }
        let check = self.welfare.get_mut(&id).expect("inserted");
        if matches!(v.state.as_str(), "resolved" | "closed" | "cancelled" | "false_alarm") {
            check.ended.get_or_insert(now);
            if check.outcome.is_none() {
                check.outcome.clone_from(&v.outcome);
            }
            if self.devices[device].welfare == Some(id) {
                self.devices[device].welfare = None;
            }
        } else {
            self.devices[device].welfare = Some(id);
        }
    }

    /// Takes in a scheduled call or visit; a new one is for the dispatcher.
    fn task_view(&mut self, v: &IncidentView, device: usize) -> Vec<Planned> {
        let id = v.id.0;
        let ended = matches!(v.state.as_str(), "closed" | "cancelled" | "false_alarm");
        let mut plans = Vec::new();
        let task = self.tasks.entry(id).or_insert_with(|| {
            plans.push(Planned::Task(id));
            Task {
                id,
                device,
                visit: v.welfare == Some(anxin_core::WelfareReason::ScheduledVisit),
                opened_at_ms: v.opened_at.millis(),
                seen_ms: anxin_proto::wall_clock_now().millis(),
                outcome: None,
                close_sent_ms: None,
                closed_ms: None,
                ended: false,
            }
        });
        task.ended |= ended;
        if ended {
            plans.clear();
        }
        plans
    }

    /// Takes in a carer's incident: a lone-worker alarm (the carer's check-out ends it) or
    /// their help (an SOS the ladder sends somebody to: closed once resolved, handed to 120
    /// when nobody is going).
    fn carer_incident_view(&mut self, v: &IncidentView, carer: &str, _now: Instant) -> Vec<Planned> {
        let id = v.id.0;
        let c = self.carer_incidents.entry(id).or_insert_with(|| CarerIncident {
            id,
            carer: carer.to_string(),
            kind: v.kind.as_str().to_string(),
            opened_at_ms: v.opened_at.millis(),
            seen_ms: anxin_proto::wall_clock_now().millis(),
            state: String::new(),
            ended: false,
            close_planned: false,
            handover_planned: false,
        });
        c.state = v.state.as_str().to_string();
        c.ended |= matches!(c.state.as_str(), "closed" | "cancelled" | "false_alarm");
        let mut plans = Vec::new();
        if !c.ended && c.state == "resolved" && !c.close_planned {
            c.close_planned = true;
            plans.push(Planned::Close(id));
        }
        let nobody = v.dispatcher_needed == Some(DispatcherNeeded::NobodyGoing);
        if !c.ended && c.state == "awaiting_dispatcher" && nobody && !c.handover_planned {
            c.handover_planned = true;
            plans.push(Planned::CarerNobodyGoing(id));
        }
        plans
    }

    /// A fresh snapshot lists every open incident: a welfare check it leaves out ended while
    /// the console was catching up (its outcome unseen).
    fn welfare_resync(&mut self, open: impl Iterator<Item = u64>, now: Instant) {
        let open: std::collections::HashSet<u64> = open.collect();
        for check in self.welfare.values_mut().filter(|c| c.ended.is_none() && !open.contains(&c.id)) {
            check.ended = Some(now);
            if self.devices[check.device].welfare == Some(check.id) {
                self.devices[check.device].welfare = None;
            }
        }
    }

    /// Writes down what a device said of its health, as it is sent.
    pub(crate) fn device_said(&mut self, device: usize, note: Note, now: Instant, now_ms: i64) {
        let h = &mut self.health;
        match note {
            Note::Heartbeat => h.heartbeats += 1,
            Note::Silent(kind) => {
                *h.faults.entry(kind).or_default() += 1;
                if kind == FaultKind::Flat {
                    h.reported_low.insert(device);
                }
                self.devices[device].silent = Some(self.silences.len());
                self.silences.push(Silence { device, kind, last: now, last_ms: now_ms, back_ms: None });
            }
            Note::Back(kind) => {
                *h.backs.entry(kind).or_default() += 1;
                h.heartbeats += 1;
                if let Some(i) = self.devices[device].silent.take() {
                    self.silences[i].back_ms = Some(now_ms);
                }
            }
            Note::NotWorn => *h.faults.entry(FaultKind::NotWorn).or_default() += 1,
            Note::Worn => *h.backs.entry(FaultKind::NotWorn).or_default() += 1,
            Note::Low => {
                *h.faults.entry(FaultKind::Low).or_default() += 1;
                h.heartbeats += 1;
                h.reported_low.insert(device);
            }
        }
    }

    /// Whether a dispatcher's planned step still applies when it is due.
    fn still_applies(&self, incident: u64, step: &Step) -> bool {
        if let Some(c) = self.carer_incidents.get(&incident) {
            return match step {
                Step::Close => c.state == "resolved",
                Step::Handover => c.state == "awaiting_dispatcher",
                _ => false,
            };
        }
        if let Some(t) = self.tasks.get(&incident) {
            return matches!(step, Step::Task(_) | Step::TaskResolve(_)) && !t.ended;
        }
        let Some(inc) = self.incidents.get(&incident) else { return false };
        match step {
            Step::Close => inc.state == "resolved",
            Step::Cancel => !matches!(inc.state.as_str(), "closed" | "cancelled" | "false_alarm"),
            // Nobody is sent to an elder who asked to cancel: the call-back settles it.
            Step::Suggest | Step::Assign(_) => inc.awaiting_nobody_going && !inc.cancel_requested,
            Step::Handover => inc.state == "awaiting_dispatcher",
            Step::Task(_) | Step::TaskResolve(_) => false,
        }
    }

    /// The dispatcher ends a task with `outcome`: a finding that opens an incident on the
    /// elder's device (an emergency, a service request) opens it with no press.
    fn task_closing(&mut self, id: u64, outcome: &str) {
        let Some(t) = self.tasks.get_mut(&id) else { return };
        t.outcome = Some(outcome.to_string());
        t.close_sent_ms = Some(anxin_proto::wall_clock_now().millis());
        let device = t.device;
        let opens = matches!(
            anxin_core::TaskOutcome::of(outcome),
            anxin_core::TaskOutcome::NeedsHelp | anxin_core::TaskOutcome::NeedsService
        );
        if opens && self.devices[device].open.is_none() {
            *self.engine_opened.entry(device).or_default() += 1;
        }
    }

    fn task_closed(&mut self, id: u64) {
        if let Some(t) = self.tasks.get_mut(&id) {
            t.closed_ms.get_or_insert(anxin_proto::wall_clock_now().millis());
        }
    }

    /// Counts what became of one family answer.
    pub(crate) fn family_answer(&mut self, outcome: crate::family::AnswerOutcome, lag_ms: f64) {
        use crate::family::AnswerOutcome;
        let sample = match outcome {
            AnswerOutcome::Taken => {
                self.family_answers_taken += 1;
                self.family_answer_lag_ms.push(lag_ms);
                None
            }
            AnswerOutcome::Ended => {
                self.family_answers_late += 1;
                self.family_answer_lag_ms.push(lag_ms);
                None
            }
            AnswerOutcome::Refused(why) => {
                self.family_answers_refused += 1;
                Some(why)
            }
            AnswerOutcome::Failed(why) => {
                self.family_answers_failed += 1;
                Some(why)
            }
        };
        if let Some(why) = sample {
            if self.refusal_samples.len() < 5 {
                self.refusal_samples.push(format!("family: {why}"));
            }
        }
    }

    /// Presses not yet answered or shown.
    pub fn pending(&self) -> usize {
        self.presses.iter().filter(|p| p.acked.is_none() || p.consoled.is_none()).count()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Planned {
    Close(u64),
    Cancel(u64),
    /// The incident waits for a dispatcher because nobody is going (again).
    NobodyGoing(u64),
    /// The console shows one of the elder's contacts told for the first time.
    FamilyTold(Told),
    /// A scheduled call or visit to make and close.
    Task(u64),
    /// A carer's help nobody is going to: the dispatcher hands it to 120.
    CarerNobodyGoing(u64),
}

/// What a run hands to the report.
#[derive(Debug)]
pub struct Played {
    pub ledger: Ledger,
    pub clock: Clock,
    /// Scenario seconds played in all (the plan plus the drain).
    pub played_s: f64,
    /// Scenario seconds of the plan (presses are made only before this).
    pub plan_s: f64,
    /// When the run ended, wall-clock milliseconds: a silence still going then lasted until it.
    pub ended_ms: i64,
    /// When the scenario clock started, wall-clock milliseconds (the engine started before).
    pub start_ms: i64,
}

/// Plays `events` against the engine at `target` and returns what happened.
pub async fn play(
    target: &Target,
    scenario: &Scenario,
    district: &District,
    events: &[Event],
    lives: &Lives,
    opts: &RunOptions,
) -> anyhow::Result<Played> {
    let device_index: Arc<HashMap<String, usize>> =
        Arc::new(district.elders.iter().enumerate().map(|(i, e)| (e.device_id.clone(), i)).collect());
    let ledger = Arc::new(Mutex::new(Ledger::new(district.elders.len())));
    let (stop_tx, stop_rx) = watch::channel(false);
    let ws_base = format!("ws://{}/ws", target.http);
    wait_ready(target.http).await?;

    // The console that measures: it only reads.
    let cookie = sign_in(target).await?;
    let (mut console, _) = connect_console(&ws_base, &cookie).await.context("console: cannot open /ws")?;
    // The run counts incidents from nothing: a store with open incidents would mix runs up.
    // The snapshot follows the welcome and the roster.
    let first = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(msg)) = console.next().await {
            if let Message::Text(text) = msg {
                if let Ok(ServerFrame::Snapshot { incidents, .. }) = ServerFrame::from_json(text.as_str()) {
                    return Some(incidents.len());
                }
            }
        }
        None
    })
    .await;
    let open = first.ok().flatten();
    match open {
        Some(0) => ledger.lock().unwrap().snapshot_open_at_start = Some(0),
        Some(n) => anyhow::bail!("the store already holds {n} open incidents: give the simulator a fresh database"),
        None => anyhow::bail!("the console did not send a snapshot first"),
    }
    let (plan_tx, plan_rx) = mpsc::channel::<Planned>(65_536);
    // Bounded like the dispatcher's: when full, the console's reader waits (the engine keeps
    // the frames or sends a fresh snapshot), and no told contact is dropped.
    let (told_tx, told_rx) = mpsc::channel::<Told>(65_536);
    // Bounded too: the console's reader waits for the service desk rather than drop news.
    let (news_tx, news_rx) = mpsc::channel::<crate::services::OrderNews>(65_536);
    let console_task = tokio::spawn(watch_console(
        console,
        ledger.clone(),
        device_index.clone(),
        Outlets { plans: plan_tx, told: told_tx, orders: news_tx },
        stop_rx.clone(),
    ));

    // Devices: publishers and the commands subscriber.
    let tag = crate::engine::run_tag();
    let (commands, mut commands_loop) = {
        let mut o = MqttOptions::new(format!("sim-{tag}-commands"), target.mqtt_host.clone(), target.mqtt_port);
        o.set_keep_alive(Duration::from_secs(30)).set_clean_session(true).set_max_packet_size(64 * 1024, 64 * 1024);
        AsyncClient::new(o, 4096)
    };
    commands
        .subscribe(format!("{}/v1/devices/+/commands", target.topic_root), QoS::AtLeastOnce)
        .await
        .context("cannot subscribe to device commands")?;
    // Wait for the subscription before the first press, so no help_coming is missed.
    let subscribed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match commands_loop.poll().await {
                Ok(MqttEvent::Incoming(Packet::SubAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    })
    .await;
    match subscribed {
        Ok(Ok(())) => {}
        Ok(Err(e)) => anyhow::bail!("cannot reach the MQTT broker at {}:{}: {e}", target.mqtt_host, target.mqtt_port),
        Err(_) => anyhow::bail!("no SUBACK from the MQTT broker within 10 s"),
    }
    let commands_task = tokio::spawn(listen_commands(
        commands_loop,
        ledger.clone(),
        device_index.clone(),
        target.topic_root.clone(),
        stop_rx.clone(),
    ));
    let mut publishers = Vec::new();
    let mut publisher_tasks = Vec::new();
    for k in 0..opts.publishers.max(1) {
        let mut o = MqttOptions::new(format!("sim-{tag}-devices-{k}"), target.mqtt_host.clone(), target.mqtt_port);
        o.set_keep_alive(Duration::from_secs(30)).set_clean_session(true).set_inflight(1000);
        let (client, mut eventloop) = AsyncClient::new(o, 20_000);
        publishers.push(client);
        let mut stop = stop_rx.clone();
        publisher_tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    r = eventloop.poll() => if r.is_err() {
                        // Back off before polling again: poll returns errors at once.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }));
    }

    // Responders and the dispatcher.
    let clock = Clock { start: Instant::now() + Duration::from_millis(300), speedup: scenario.run.speedup };
    let start_ms = anxin_proto::wall_clock_now().millis() + 300;
    let mut responder_tasks = Vec::new();
    let shared_district = Arc::new(district.clone());
    let wire = crate::services::Wire { http: target.http, cookie: cookie.clone(), clock, start_ms };
    // Each provider's roster: its workers, free from the start at their centre.
    let rosters: Vec<Arc<Mutex<crate::services::Roster>>> =
        district.providers.iter().map(|_| Arc::new(Mutex::new(crate::services::Roster::default()))).collect();
    let mut inboxes = HashMap::new();
    for r in &district.responders {
        if let Some(p) = r.provider {
            let (tx, rx) = mpsc::unbounded_channel();
            let mut roster = rosters[p].lock().unwrap();
            roster.free.insert(r.id.clone(), (0.0, district.centres[r.centre].position));
            roster.inboxes.insert(r.id.clone(), tx);
            inboxes.insert(r.id.clone(), rx);
        }
    }
    for (i, r) in district.responders.iter().enumerate() {
        let url = format!("{ws_base}?token={}", r.token);
        if let Some(p) = r.provider {
            let Some(sv) = &scenario.services else { continue };
            let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .with_context(|| format!("worker {}: cannot open /ws", r.id))?;
            let worker = crate::services::Worker {
                id: r.id.clone(),
                provider: district.providers[p].id.clone(),
                // The provider's first worker takes the offers that name nobody.
                desk: district.responders.iter().find(|w| w.provider == Some(p)).is_some_and(|w| w.id == r.id),
                position: district.centres[r.centre].position,
                sv: sv.clone(),
                wire: wire.clone(),
                ledger: ledger.clone(),
                rng: SmallRng::seed_from_u64(scenario.run.seed.wrapping_mul(6133).wrapping_add(i as u64)),
                roster: rosters[p].clone(),
                inbox: inboxes.remove(&r.id).expect("one inbox a worker"),
            };
            responder_tasks.push(tokio::spawn(worker.run(socket, stop_rx.clone())));
            continue;
        }
        if r.carer {
            let Some(c) = &scenario.carers else { continue };
            let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .with_context(|| format!("carer {}: cannot open /ws", r.id))?;
            let round = crate::carers::round(c, district, i, scenario.run.seed);
            responder_tasks.push(tokio::spawn(crate::carers::run(
                socket,
                r.id.clone(),
                round,
                shared_district.clone(),
                c.clone(),
                clock,
                scenario.run.hours * 3600.0,
                ledger.clone(),
                stop_rx.clone(),
            )));
            continue;
        }
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .with_context(|| format!("responder {}: cannot open /ws", r.id))?;
        let phone = Phone {
            rng: SmallRng::seed_from_u64(scenario.run.seed.wrapping_mul(7919).wrapping_add(i as u64)),
            speed: r.mode.speed_m_s(),
            station: district.centres[r.centre].position,
            behaviour: scenario.responders.clone(),
            clock,
            ledger: ledger.clone(),
        };
        responder_tasks.push(tokio::spawn(phone.run(socket, stop_rx.clone())));
    }
    let (dispatcher, _) = connect_console(&ws_base, &cookie).await.context("dispatcher: cannot open /ws")?;
    let dispatcher_task = tokio::spawn(dispatch(
        dispatcher,
        plan_rx,
        ledger.clone(),
        scenario.dispatchers.clone(),
        scenario.responders.clone(),
        scenario.programme.clone(),
        clock,
        SmallRng::seed_from_u64(scenario.run.seed ^ 0xd15),
        stop_rx.clone(),
    ));

    // The service desk: places the planned orders over REST and acts on them.
    let services_task = scenario.services.as_ref().map(|sv| {
        tokio::spawn(crate::services::desk(
            wire.clone(),
            Arc::new(crate::services::plan(scenario, district)),
            shared_district.clone(),
            sv.clone(),
            news_rx,
            ledger.clone(),
            scenario.run.seed,
            stop_rx.clone(),
        ))
    });

    // The families: a third console socket issues their links.
    let (family_console, _) = connect_console(&ws_base, &cookie).await.context("families: cannot open /ws")?;
    let roll = crate::family::Roll {
        elders: district
            .elders
            .iter()
            .map(|e| (e.id.clone(), e.contacts.iter().map(|c| c.id.clone()).collect()))
            .collect(),
    };
    let family_task = tokio::spawn(crate::family::run(
        family_console,
        told_rx,
        Arc::new(roll),
        scenario.families.clone(),
        scenario.run.seed,
        crate::family::Endpoints { http: target.http, ws_base: ws_base.clone() },
        ledger.clone(),
        clock,
        stop_rx.clone(),
    ));

    // Every device's events topic.
    let topics: Arc<Vec<String>> = Arc::new(
        district.elders.iter().map(|e| format!("{}/v1/devices/{}/events", target.topic_root, e.device_id)).collect(),
    );
    // The resender: a device that has not heard help_coming presses again, same msg_id.
    let resend_task = {
        let ledger = ledger.clone();
        let publishers = publishers.clone();
        let mut stop = stop_rx.clone();
        let after = Duration::from_secs_f64(opts.resend_after_s);
        let topics = topics.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                let now = Instant::now();
                let due: Vec<(usize, String)> = {
                    let mut l = ledger.lock().unwrap();
                    let Ledger { presses, devices, .. } = &mut *l;
                    presses
                        .iter_mut()
                        .filter(|p| p.acked.is_none() && now.duration_since(p.last_sent) >= after)
                        // A flat or switched-off device sends nothing; it presses again when back.
                        .filter(|p| devices[p.device].silent.is_none())
                        .map(|p| {
                            p.last_sent = now;
                            p.resends += 1;
                            (p.device, p.payload.clone())
                        })
                        .collect()
                };
                for (device, payload) in due {
                    let client = &publishers[device % publishers.len()];
                    let _ = client.publish(topics[device].clone(), QoS::AtLeastOnce, false, payload).await;
                }
            }
        })
    };

    // The presses, on the scenario clock.
    let plan_s = scenario.run.hours * 3600.0;
    let played_s = plan_s + opts.drain_min * 60.0;
    // The devices' heartbeats and faults, until the end of the drain.
    let health_task = tokio::spawn(crate::health::run(
        Arc::new(lives.clone()),
        crate::health::Wire {
            topics: topics.clone(),
            device_ids: Arc::new(district.elders.iter().map(|e| e.device_id.clone()).collect()),
            tag: tag.clone(),
            publishers: publishers.clone(),
        },
        ledger.clone(),
        clock,
        scenario.run.seed,
        stop_rx.clone(),
    ));
    let progress_task = tokio::spawn(progress(ledger.clone(), clock, played_s, opts.clone(), stop_rx.clone()));
    let mut rng = SmallRng::seed_from_u64(scenario.run.seed ^ 0xf1c5);
    let mut sequence = vec![0u32; district.elders.len()];
    for e in events {
        sleep_until(clock.at(e.at_s).into()).await;
        let elder = &district.elders[e.device];
        sequence[e.device] += 1;
        let msg_id = format!("{}-{tag}-{}", elder.device_id, sequence[e.device]);
        let ts = anxin_proto::wall_clock_now().millis();
        let mut payload = json!({"msg_id": msg_id, "type": e.action.as_str(), "ts": ts});
        if e.action != Action::Cancel && rng.random::<f64>() < scenario.devices.fix_share {
            let fix = elder
                .home
                .offset(crate::district::gaussian(&mut rng) * 10.0, crate::district::gaussian(&mut rng) * 10.0);
            payload["location"] = json!({"lat": fix.lat, "lon": fix.lon, "accuracy_m": 15.0});
        }
        let payload = payload.to_string();
        let now = Instant::now();
        {
            let mut l = ledger.lock().unwrap();
            if e.action == Action::Cancel {
                l.cancels_sent += 1;
            } else {
                let index = l.presses.len();
                l.presses.push(Press {
                    device: e.device,
                    action: e.action,
                    repeat: e.repeat,
                    surge: e.surge,
                    sent: now,
                    last_sent: now,
                    resends: 0,
                    payload: payload.clone(),
                    acked: None,
                    consoled: None,
                    incident: None,
                });
                l.devices[e.device].awaiting_ack.push_back(index);
                l.devices[e.device].awaiting_console.push_back(index);
            }
        }
        let topic = format!("{}/v1/devices/{}/events", target.topic_root, elder.device_id);
        publishers[e.device % publishers.len()]
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .context("the MQTT client stopped")?;
    }

    // Let incidents finish; then wait (a little, on the wall clock) for the last answers.
    sleep_until(clock.at(played_s).into()).await;
    let grace = Instant::now() + Duration::from_secs(15);
    while ledger.lock().unwrap().pending() > 0 && Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ended_ms = anxin_proto::wall_clock_now().millis();
    let _ = stop_tx.send(true);
    for c in &publishers {
        let _ = c.disconnect().await;
    }
    let _ = commands.disconnect().await;
    for t in responder_tasks.into_iter().chain(publisher_tasks) {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    for t in [console_task, commands_task, dispatcher_task, resend_task, progress_task, family_task, health_task]
        .into_iter()
        .chain(services_task)
    {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let ledger = Arc::try_unwrap(ledger).map(|m| m.into_inner().unwrap()).unwrap_or_else(|arc| {
        // A task that did not stop in time still holds a reference: copy what we need.
        let mut l = arc.lock().unwrap();
        std::mem::take(&mut *l)
    });
    Ok(Played { ledger, clock, played_s, plan_s, ended_ms, start_ms })
}

/// Signs the simulator's supervisor in (`POST /api/v1/session`); returns the session cookie.
async fn sign_in(target: &Target) -> anyhow::Result<String> {
    let sign_in = SignIn { user: target.console.user.clone(), password: target.console.password.clone() };
    let body = serde_json::to_string(&sign_in)?;
    match post_for_cookie(target.http, "/api/v1/session", &body, "anxin_session").await? {
        (200, Some(cookie)) => Ok(cookie),
        (status, _) => anyhow::bail!("the console's sign-in as {} was refused (HTTP {status})", target.console.user),
    }
}

/// POSTs a JSON body and returns the status and the `name=value` of the cookie `name` the
/// answer sets, if it sets one and the status is 200.
pub(crate) async fn post_for_cookie(
    http: std::net::SocketAddr,
    path: &str,
    body: &str,
    name: &str,
) -> anyhow::Result<(u16, Option<String>)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(http).await.context("cannot reach the engine's HTTP port")?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {http}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).await?;
    let status: u16 = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let prefix = format!("{name}=");
    let cookie = answer
        .lines()
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| v.trim().split(';').next())
        .find(|c| c.starts_with(&prefix) && c.len() > prefix.len())
        .filter(|_| status == 200);
    Ok((status, cookie.map(str::to_string)))
}

async fn connect_console(
    ws_base: &str,
    cookie: &str,
) -> Result<(Socket, tokio_tungstenite::tungstenite::handshake::client::Response), tokio_tungstenite::tungstenite::Error>
{
    connect_with_cookie(ws_base, cookie).await
}

/// Opens a WebSocket at `url` with a `Cookie` header (a console's or a family's session).
pub(crate) async fn connect_with_cookie(
    url: &str,
    cookie: &str,
) -> Result<(Socket, tokio_tungstenite::tungstenite::handshake::client::Response), tokio_tungstenite::tungstenite::Error>
{
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request()?;
    let value = cookie.parse().map_err(|_| {
        tokio_tungstenite::tungstenite::Error::Url(tokio_tungstenite::tungstenite::error::UrlError::UnableToConnect(
            "bad cookie".into(),
        ))
    })?;
    request.headers_mut().insert("cookie", value);
    tokio_tungstenite::connect_async(request).await
}

/// Waits until `/readyz` answers 200: the engine is subscribed to its broker and has its store.
/// A press published before the engine subscribes would reach nobody.
async fn wait_ready(http: std::net::SocketAddr) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = async {
            let mut s = tokio::net::TcpStream::connect(http).await.ok()?;
            let req = format!("GET /readyz HTTP/1.1\r\nHost: {http}\r\nConnection: close\r\n\r\n");
            s.write_all(req.as_bytes()).await.ok()?;
            let mut head = [0u8; 12];
            s.read_exact(&mut head).await.ok()?;
            Some(head.ends_with(b"200"))
        }
        .await;
        if status == Some(true) {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("the engine at {http} was not ready (/readyz) within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Where the console's reader sends what it saw: the dispatcher's work, the families' news,
/// the service desk's orders.
struct Outlets {
    plans: mpsc::Sender<Planned>,
    told: mpsc::Sender<Told>,
    orders: mpsc::Sender<crate::services::OrderNews>,
}

async fn watch_console(
    socket: Socket,
    ledger: Arc<Mutex<Ledger>>,
    devices: Arc<HashMap<String, usize>>,
    out: Outlets,
    mut stop: watch::Receiver<bool>,
) {
    let Outlets { plans, told, orders } = out;
    let (_sink, mut stream) = socket.split();
    loop {
        let msg = tokio::select! {
            _ = stop.changed() => break,
            m = stream.next() => m,
        };
        let Some(Ok(Message::Text(text))) = msg else {
            if matches!(msg, None | Some(Err(_))) {
                break;
            }
            continue;
        };
        let now = Instant::now();
        let Ok(frame) = ServerFrame::from_json(text.as_str()) else { continue };
        if let ServerFrame::Order { order } = &frame {
            let news = ledger.lock().unwrap().orders.order_view(order);
            if let Some(n) = news {
                let _ = orders.send(n).await;
            }
            continue;
        }
        let planned = {
            let mut l = ledger.lock().unwrap();
            match frame {
                ServerFrame::Snapshot { incidents, .. } => {
                    if l.snapshot_open_at_start.is_none() {
                        l.snapshot_open_at_start = Some(incidents.len());
                    } else {
                        l.console_resyncs += 1;
                    }
                    let mut all = Vec::new();
                    for inc in incidents.iter() {
                        all.extend(l.incident_view(inc, now, &devices));
                    }
                    l.welfare_resync(incidents.iter().map(|i| i.id.0), now);
                    all
                }
                ServerFrame::Incident { incident, .. } => l.incident_view(&incident, now, &devices),
                _ => vec![],
            }
        };
        for p in planned {
            let _ = match p {
                Planned::FamilyTold(t) => told.send(t).await.map_err(|_| ()),
                p => plans.send(p).await.map_err(|_| ()),
            };
        }
    }
}

async fn listen_commands(
    mut eventloop: rumqttc::EventLoop,
    ledger: Arc<Mutex<Ledger>>,
    devices: Arc<HashMap<String, usize>>,
    root: String,
    mut stop: watch::Receiver<bool>,
) {
    let prefix = format!("{root}/v1/devices/");
    loop {
        let event = tokio::select! {
            _ = stop.changed() => break,
            e = eventloop.poll() => e,
        };
        match event {
            Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                let now = Instant::now();
                let Some(device) = p
                    .topic
                    .strip_prefix(&prefix)
                    .and_then(|rest| rest.strip_suffix("/commands"))
                    .and_then(|d| devices.get(d))
                else {
                    continue;
                };
                if let Ok(DeviceCommand::HelpComing { incident_id, .. }) = serde_json::from_slice(&p.payload) {
                    ledger.lock().unwrap().help_coming(*device, incident_id.0, now);
                }
            }
            Ok(_) => {}
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// A responder's phone and the person holding it.
struct Phone {
    rng: SmallRng,
    speed: f64,
    station: Point,
    behaviour: Responders,
    clock: Clock,
    ledger: Arc<Mutex<Ledger>>,
}

impl Phone {
    async fn run(mut self, socket: Socket, mut stop: watch::Receiver<bool>) {
        let (mut sink, mut stream) = socket.split();
        // The next thing this person will do, and when; replaced as the job changes.
        let mut next: Option<(Instant, ClientFrame)> = None;
        // (incident, state) already reacted to, so a repeated job frame changes nothing.
        let mut seen: Option<(u64, String)> = None;
        let mut last_place: Option<Point> = None;
        let mut request = 0u64;
        loop {
            let wake = next.as_ref().map(|(t, _)| *t);
            let msg = tokio::select! {
                _ = stop.changed() => break,
                _ = async { match wake { Some(t) => sleep_until(t.into()).await, None => std::future::pending().await } } => {
                    if let Some((_, mut frame)) = next.take() {
                        request += 1;
                        frame.set_request_id(Some(format!("p{request}")));
                        if sink.send(Message::Text(frame.to_json().into())).await.is_err() {
                            break;
                        }
                    }
                    continue;
                }
                m = stream.next() => m,
            };
            let Some(Ok(Message::Text(text))) = msg else {
                if matches!(msg, None | Some(Err(_))) {
                    break;
                }
                continue;
            };
            let Ok(frame) = ServerFrame::from_json(text.as_str()) else { continue };
            match frame {
                ServerFrame::Result(result) if !result.ok => {
                    let mut l = self.ledger.lock().unwrap();
                    l.phone_refusals += 1;
                    if l.refusal_samples.len() < 5 {
                        l.refusal_samples.push(format!("phone: {}", result.error.as_deref().unwrap_or("?")));
                    }
                }
                ServerFrame::Job { job: None, .. } => {
                    // Lapsed, withdrawn, cancelled or resolved: free again. After a job,
                    // report where we are, then head back to the station.
                    if let Some((_, f)) = &next {
                        if !matches!(f, ClientFrame::Location { .. }) {
                            next = None;
                        }
                    }
                    if let Some(place) = last_place.take() {
                        let here = location(place);
                        let _ = sink.send(Message::Text(here.to_json().into())).await;
                        let back_s = place.distance_m(self.station) * 1.3 / self.speed;
                        next = Some((Instant::now() + self.clock.wall(back_s), location(self.station)));
                    }
                    seen = None;
                }
                ServerFrame::Job { job: Some(job), .. } => {
                    let incident_id = job.incident_id.0;
                    let state = job.state.as_str().to_string();
                    if seen.as_ref() == Some(&(incident_id, state.clone())) {
                        continue;
                    }
                    seen = Some((incident_id, state.clone()));
                    let b = &self.behaviour;
                    let now = Instant::now();
                    next = match state.as_str() {
                        "offered" => {
                            let r: f64 = self.rng.random();
                            let delay = self.clock.wall(uniform(&mut self.rng, b.answer_delay_s));
                            let mut l = self.ledger.lock().unwrap();
                            if r < b.accept_probability {
                                l.offers_accepted += 1;
                                Some((now + delay, ClientFrame::Accept { incident_id, request_id: None }))
                            } else if r < b.accept_probability + b.no_answer_probability {
                                l.offers_unanswered += 1;
                                None
                            } else {
                                l.offers_declined += 1;
                                Some((
                                    now + delay,
                                    ClientFrame::Decline { incident_id, reason: None, request_id: None },
                                ))
                            }
                        }
                        "accepted" => {
                            let prepare = uniform(&mut self.rng, b.prepare_s);
                            Some((
                                now + self.clock.wall(prepare),
                                ClientFrame::EnRoute { incident_id, request_id: None },
                            ))
                        }
                        "en_route" => {
                            let travel_s = job.distance_m * 1.3 / self.speed;
                            Some((
                                now + self.clock.wall(travel_s),
                                ClientFrame::OnScene { incident_id, request_id: None },
                            ))
                        }
                        "on_scene" => {
                            last_place = Some(Point { lat: job.location.at.lat(), lon: job.location.at.lon() });
                            let stay = uniform(&mut self.rng, b.on_scene_min) * 60.0;
                            let outcome = "helped; no further care needed (simulated)".to_string();
                            Some((
                                now + self.clock.wall(stay),
                                ClientFrame::Resolve { incident_id, outcome, request_id: None },
                            ))
                        }
                        _ => None,
                    };
                }
                _ => {}
            }
        }
    }
}

/// A phone's position report, answered only if refused.
fn location(at: Point) -> ClientFrame {
    ClientFrame::Location { lat: at.lat, lon: at.lon, accuracy_m: None, request_id: None }
}

/// What the dispatcher finds on a scheduled call or visit, as the console's outcome (its first
/// word the engine's code).
fn task_outcome(rng: &mut SmallRng, o: &crate::scenario::TaskOutcomes) -> String {
    let shares = crate::district::cumulative([o.well, o.needs_service, o.needs_help, o.no_answer].into_iter());
    let code = anxin_core::TaskOutcome::CODES[crate::district::weighted(rng, &shares)];
    format!("{code}: (simulated)")
}

/// Whom a dispatcher puts on an incident nobody is going to, given the engine's answer to
/// `suggest` (the `suggestions` array of the `result` frame, best first): the soonest to
/// arrive who has the skill the incident needs, can be there within `within_eta_min` and is
/// not in `skip` (rung for this incident already, or being rung for another). Every
/// suggestion is free already (the engine suggests only responders on duty holding no offer
/// or job); whether they are inside their station's circle does not matter to a dispatcher
/// with nobody else. The home-care workers the engine lists after the responders (`worker`
/// set) are never picked: the simulated desk does not take a worker off an elder's service.
pub fn pick_responder(suggestions: &[Suggestion], within_eta_min: f64, skip: &[String]) -> Option<String> {
    suggestions
        .iter()
        .filter(|s| s.has_skill && s.worker.is_none())
        .map(|s| (s.responder.id.as_str(), f64::from(s.eta_min)))
        .filter(|(id, eta)| *eta <= within_eta_min && !skip.iter().any(|t| t == id))
        // The first of the soonest: the engine ranks by exact travel time, eta_min is rounded.
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(id, _)| id.to_string())
}

/// The dispatcher's search for somebody to send, per incident nobody is going to.
#[derive(Debug, Default)]
struct Search {
    /// Responders rung so far, in order.
    tried: Vec<String>,
    /// A step is planned or a frame is waiting for its result: news of the incident coming
    /// back to "nobody going" meanwhile changes nothing.
    busy: bool,
}

/// The dispatcher's desk: steps due, searches under way, frames waiting for their result.
#[derive(Debug, Default)]
struct Desk {
    due: BinaryHeap<DispatcherAction>,
    planned: u64,
    searches: HashMap<u64, Search>,
    asked: HashMap<String, (u64, Step)>,
    /// Responders the dispatcher is ringing or putting on a job, until when: the engine
    /// still suggests them for other incidents meanwhile, but nobody is rung for two at once.
    engaged: HashMap<String, Instant>,
}

impl Desk {
    fn plan(&mut self, due: Instant, incident: u64, step: Step) {
        self.planned += 1;
        self.due.push(DispatcherAction { due, order: self.planned, incident, step });
    }

    /// A responder could not be put on the job (at `at`): ask again at once while tries are
    /// left, else hand the incident to 120.
    fn try_next(&mut self, incident: u64, at: Instant, d: &Dispatchers, clock: Clock, rng: &mut SmallRng) {
        let tried = self.searches.get(&incident).map_or(0, |s| s.tried.len());
        if tried < d.assign_attempts as usize {
            self.plan(at, incident, Step::Suggest);
        } else {
            self.plan(at + clock.wall(uniform(rng, d.handover_after_s)), incident, Step::Handover);
        }
    }

    /// Whom not to ring for `incident`: those already tried for it, and those engaged now.
    fn skip(&mut self, incident: u64, now: Instant) -> Vec<String> {
        self.engaged.retain(|_, until| *until > now);
        let tried = self.searches.get(&incident).map(|s| s.tried.as_slice()).unwrap_or(&[]);
        tried.iter().chain(self.engaged.keys()).cloned().collect()
    }

    /// The search ends for now: the dispatcher hears again if nobody is going again.
    fn idle(&mut self, incident: u64) {
        if let Some(s) = self.searches.get_mut(&incident) {
            s.busy = false;
        }
    }
}

/// The dispatcher: closes resolved incidents, calls back elders who asked to cancel, and for
/// an incident nobody is going to asks the engine for suggestions, rings the best responder
/// close enough and assigns them if they agree; with nobody (or after `assign_attempts`
/// tries) hands it to the ambulance (120). The simulator's only member of staff: nobody else
/// claims an incident, and the engine requires no claim of its own to act.
#[allow(clippy::too_many_arguments)]
async fn dispatch(
    socket: Socket,
    mut plans: mpsc::Receiver<Planned>,
    ledger: Arc<Mutex<Ledger>>,
    d: Dispatchers,
    responders: Responders,
    programme: Option<crate::scenario::Programme>,
    clock: Clock,
    mut rng: SmallRng,
    mut stop: watch::Receiver<bool>,
) {
    let (mut sink, mut stream) = socket.split();
    let mut desk = Desk::default();
    let mut request = 0u64;
    loop {
        let wake = desk.due.peek().map(|a| a.due);
        tokio::select! {
            _ = stop.changed() => break,
            p = plans.recv() => {
                let Some(p) = p else { break };
                let now = Instant::now();
                let mut after = |range| now + clock.wall(uniform(&mut rng, range));
                match p {
                    // Routed to the families by the console's reader; never sent here.
                    Planned::FamilyTold(_) => {}
                    Planned::Task(id) => {
                        if let Some(p) = &programme {
                            let outcome = task_outcome(&mut rng, &p.outcomes);
                            let due = now + clock.wall(uniform(&mut rng, p.handle_after_s));
                            desk.plan(due, id, Step::TaskResolve(outcome));
                        }
                    }
                    Planned::CarerNobodyGoing(id) => desk.plan(after(d.handover_after_s), id, Step::Handover),
                    Planned::Close(id) => desk.plan(after(d.close_after_s), id, Step::Close),
                    Planned::Cancel(id) => desk.plan(after(d.callback_after_s), id, Step::Cancel),
                    Planned::NobodyGoing(id) => {
                        let search = desk.searches.entry(id).or_default();
                        if !search.busy {
                            search.busy = true;
                            if search.tried.len() < d.assign_attempts as usize {
                                desk.plan(after(d.suggest_after_s), id, Step::Suggest);
                            } else {
                                desk.plan(after(d.handover_after_s), id, Step::Handover);
                            }
                        }
                    }
                }
            }
            _ = async { match wake { Some(t) => sleep_until(t.into()).await, None => std::future::pending().await } } => {
                let a = desk.due.pop().expect("peeked");
                if !ledger.lock().unwrap().still_applies(a.incident, &a.step) {
                    match &a.step {
                        Step::Close | Step::Cancel | Step::Task(_) | Step::TaskResolve(_) => {}
                        Step::Assign(r) => {
                            desk.engaged.remove(r);
                            desk.idle(a.incident);
                        }
                        Step::Suggest | Step::Handover => desk.idle(a.incident),
                    }
                    continue;
                }
                request += 1;
                let request_id = format!("d{request}");
                let (incident_id, asked) = (a.incident, Some(request_id.clone()));
                let command = |action, detail: &str| ClientFrame::command(incident_id, action, Some(detail.into()), asked.clone());
                let frame = match &a.step {
                    Step::Close => command(DispatcherVerb::Close, "closed after the responder's report"),
                    Step::Cancel => command(DispatcherVerb::Cancel, "called back: pressed by mistake"),
                    Step::Handover => command(DispatcherVerb::Resolve, "nobody free: handed to 120"),
                    Step::Assign(r) => command(DispatcherVerb::Assign, r),
                    Step::Suggest => ClientFrame::Suggest { incident_id, request_id: asked.clone() },
                    Step::TaskResolve(outcome) | Step::Task(outcome) => command(DispatcherVerb::Resolve, outcome),
                };
                {
                    let mut l = ledger.lock().unwrap();
                    match &a.step {
                        Step::Suggest => l.dispatcher_suggests += 1,
                        Step::Assign(r) => {
                            l.dispatcher_commands += 1;
                            if let Some(inc) = l.incidents.get_mut(&a.incident) {
                                inc.assign_sent = Some(r.clone());
                            }
                        }
                        _ => l.dispatcher_commands += 1,
                    }
                }
                // A task is resolved and closed with what was found, in one go.
                let close = match &a.step {
                    Step::TaskResolve(outcome) => {
                        let mut l = ledger.lock().unwrap();
                        l.task_closing(a.incident, outcome);
                        request += 1;
                        let id = format!("d{request}");
                        let frame = ClientFrame::command(incident_id, DispatcherVerb::Close, Some(outcome.clone()), Some(id.clone()));
                        Some((id, frame, Step::Task(outcome.clone())))
                    }
                    _ => None,
                };
                desk.asked.insert(request_id, (a.incident, a.step));
                if sink.send(Message::Text(frame.to_json().into())).await.is_err() {
                    break;
                }
                if let Some((id, frame, step)) = close {
                    desk.asked.insert(id, (a.incident, step));
                    if sink.send(Message::Text(frame.to_json().into())).await.is_err() {
                        break;
                    }
                }
            }
            m = stream.next() => {
                let Some(Ok(msg)) = m else { break };
                let Message::Text(text) = msg else { continue };
                let Ok(ServerFrame::Result(result)) = ServerFrame::from_json(text.as_str()) else { continue };
                let ok = result.ok;
                if !ok {
                    let mut l = ledger.lock().unwrap();
                    l.dispatcher_refusals += 1;
                    if l.refusal_samples.len() < 5 {
                        l.refusal_samples.push(format!("dispatcher: {}", result.error.as_deref().unwrap_or("?")));
                    }
                }
                let Some((incident, step)) = result.request_id.as_deref().and_then(|r| desk.asked.remove(r)) else {
                    continue;
                };
                let now = Instant::now();
                match step {
                    Step::Close | Step::Cancel | Step::TaskResolve(_) => {}
                    Step::Task(_) => {
                        if ok {
                            ledger.lock().unwrap().task_closed(incident);
                        }
                    }
                    Step::Suggest if !ok => desk.idle(incident),
                    Step::Suggest => {
                        let skip = desk.skip(incident, now);
                        let suggestions = result.suggestions.as_deref().unwrap_or_default();
                        match pick_responder(suggestions, d.assign_within_eta_min, &skip) {
                            Some(r) => {
                                desk.searches.entry(incident).or_default().tried.push(r.clone());
                                // The dispatcher rings them: they answer as they answer an offer.
                                let ring = now + clock.wall(uniform(&mut rng, responders.answer_delay_s));
                                if rng.random::<f64>() < responders.accept_probability {
                                    // Engaged until the engine answers the assignment.
                                    desk.engaged.insert(r.clone(), ring + clock.wall(60.0));
                                    desk.plan(ring, incident, Step::Assign(r));
                                } else {
                                    desk.engaged.insert(r, ring);
                                    ledger.lock().unwrap().assign_calls_declined += 1;
                                    desk.try_next(incident, ring, &d, clock, &mut rng);
                                }
                            }
                            None => desk.plan(now + clock.wall(uniform(&mut rng, d.handover_after_s)), incident, Step::Handover),
                        }
                    }
                    Step::Assign(r) if ok => {
                        desk.engaged.remove(&r);
                        if let Some(inc) = ledger.lock().unwrap().incidents.get_mut(&incident) {
                            inc.nobody_going_outcome = Some(NobodyGoingOutcome::Assigned);
                        }
                        desk.idle(incident);
                    }
                    // Taken by the ladder meanwhile, or gone off duty: the next one, or 120.
                    Step::Assign(r) => {
                        desk.engaged.remove(&r);
                        desk.try_next(incident, now, &d, clock, &mut rng);
                    }
                    Step::Handover => {
                        if ok {
                            if let Some(inc) = ledger.lock().unwrap().incidents.get_mut(&incident) {
                                inc.nobody_going_outcome = Some(NobodyGoingOutcome::HandedTo120);
                            }
                        }
                        desk.idle(incident);
                    }
                }
            }
        }
    }
}

async fn progress(
    ledger: Arc<Mutex<Ledger>>,
    clock: Clock,
    total_s: f64,
    opts: RunOptions,
    mut stop: watch::Receiver<bool>,
) {
    if !opts.progress {
        return;
    }
    let tty = std::io::stderr().is_terminal();
    let every = Duration::from_secs(if tty { 1 } else { 5 });
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tokio::time::sleep(every) => {}
        }
        let now = Instant::now();
        let s = clock.scenario_s(now).min(total_s);
        let (presses, incidents, open, waiting, welfare) = {
            let l = ledger.lock().unwrap();
            let open = l.incidents.values().filter(|i| i.ended.is_none()).count();
            let waiting = l.presses.iter().filter(|p| p.consoled.is_none()).count();
            let welfare = l.welfare.values().filter(|c| c.ended.is_none()).count();
            (l.presses.len(), l.incidents.len(), open, waiting, welfare)
        };
        let width = 24usize;
        let filled = ((s / total_s) * width as f64) as usize;
        let line = format!(
            "{} [{}{}] {:>3.0}%  scenario {:>5.2} h  presses {presses}  incidents {incidents}  open {open}  unseen {waiting}  welfare checks open {welfare}",
            opts.label,
            "#".repeat(filled.min(width)),
            "-".repeat(width - filled.min(width)),
            100.0 * s / total_s,
            s / 3600.0,
        );
        if tty {
            eprint!("\r{line}\x1b[K");
        } else {
            eprintln!("{line}");
        }
    }
    if tty {
        eprintln!();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn suggestion(id: &str, eta_min: u32, has_skill: bool) -> Value {
        json!({"responder": {"id": id, "name": id, "phone": null, "distance_m": 900.0}, "mode": "ebike",
               "station_id": "st-1", "distance_m": 900.0, "eta_min": eta_min, "within_circle": eta_min <= 15,
               "has_skill": has_skill})
    }

    /// The `suggestions` of a `result` frame, read as the dispatcher reads them.
    fn suggestions(answer: &Value) -> Vec<Suggestion> {
        match ServerFrame::from_json(&answer.to_string()) {
            Ok(ServerFrame::Result(result)) => result.suggestions.unwrap_or_default(),
            other => panic!("not a result: {other:?}"),
        }
    }

    #[test]
    fn the_dispatcher_picks_the_soonest_with_the_skill_within_the_limit() {
        let answer = json!({"type": "result", "request_id": "d1", "ok": true, "suggestions": [
            suggestion("r-untrained", 3, false),
            suggestion("r-near", 5, true),
            suggestion("r-tie", 5, true),
            suggestion("r-far", 25, true),
            suggestion("r-too-far", 40, true),
        ]});
        let s = &suggestions(&answer);
        assert_eq!(pick_responder(s, 30.0, &[]).as_deref(), Some("r-near"), "soonest with the skill, first of a tie");
        let tried = ["r-near".to_string()];
        assert_eq!(pick_responder(s, 30.0, &tried).as_deref(), Some("r-tie"), "nobody is rung twice");
        assert_eq!(pick_responder(s, 4.0, &[]), None, "the only one within 4 min lacks the skill");
        let all: Vec<String> = ["r-near", "r-tie", "r-far"].map(String::from).to_vec();
        assert_eq!(pick_responder(s, 30.0, &all), None, "r-too-far is beyond the limit");
        assert_eq!(pick_responder(s, 60.0, &all).as_deref(), Some("r-too-far"));
        // A home-care worker at a door next door is listed, but not sent.
        let mut with_worker = answer.clone();
        let mut worker = suggestion("w-next-door", 1, true);
        worker["worker"] = json!({"provider_id": "p-1", "provider_name": "家政"});
        with_worker["suggestions"].as_array_mut().unwrap().insert(0, worker);
        let s = &suggestions(&with_worker);
        assert!(s[0].worker.is_some(), "read as a worker");
        assert_eq!(pick_responder(s, 30.0, &[]).as_deref(), Some("r-near"));
    }

    #[test]
    fn no_suggestions_means_nobody_to_assign() {
        let answer =
            |suggestions: Value| json!({"type": "result", "request_id": "d1", "ok": true, "suggestions": suggestions});
        assert_eq!(pick_responder(&suggestions(&answer(json!([]))), 30.0, &[]), None);
        let without = json!({"type": "result", "request_id": "d1", "ok": true});
        assert_eq!(pick_responder(&suggestions(&without), 30.0, &[]), None, "a result without suggestions");
        // No eta_min: not a suggestion we can judge, and so not a result the dispatcher reads.
        let malformed = answer(json!([{"responder": {"id": "r-1"}, "has_skill": true}]));
        assert!(ServerFrame::from_json(&malformed.to_string()).is_err(), "no eta_min: not a suggestion we can judge");
    }

    #[test]
    fn nobody_is_rung_twice_for_one_incident_or_for_two_at_once() {
        let now = Instant::now();
        let mut desk = Desk::default();
        desk.searches.entry(1).or_default().tried.push("r-tried".into());
        desk.engaged.insert("r-on-the-phone".into(), now + Duration::from_secs(1));
        desk.engaged.insert("r-call-over".into(), now);
        let mut skip = desk.skip(1, now);
        skip.sort();
        assert_eq!(skip, ["r-on-the-phone", "r-tried"]);
        assert_eq!(desk.skip(2, now), ["r-on-the-phone"], "another incident: only who is engaged");
        let answer = json!({"type": "result", "request_id": "d1", "ok": true,
                            "suggestions": [suggestion("r-on-the-phone", 2, true), suggestion("r-call-over", 3, true)]});
        assert_eq!(pick_responder(&suggestions(&answer), 30.0, &desk.skip(2, now)).as_deref(), Some("r-call-over"));
    }

    /// Incident 7 of device dev-1 as a console's `incident` frame carries it.
    fn view(state: &str, needed: Option<&str>, responder: Option<&str>) -> IncidentView {
        let frame = json!({"type": "incident", "seq": 1, "incident": {
            "id": 7, "seq": 1, "kind": "sos", "priority": 1, "state": state, "device_id": "dev-1",
            "elder": {"id": "e-1", "name": "e-1", "address": "", "phone": null, "notes": "", "age": null,
                      "lives_alone": null, "conditions": [], "medications": [], "mobility": "", "language": "",
                      "door_notes": "", "contacts": []},
            "location": {"at": {"lat": 25.0, "lon": 102.7}, "accuracy_m": null, "source": "home", "fix_rejected": null},
            "responder": responder.map(|r| json!({"id": r, "name": r, "phone": null, "distance_m": 500.0})),
            "station": null, "press_count": 0, "cancel_requested": false, "dispatcher_needed": needed,
            "problem": null, "offers": [], "ladder": {"rung": "responders", "offers_made": 3}, "outcome": null,
            "pressed_at": 0, "opened_at": 0, "updated_at": 0, "claimed_by": null, "acknowledged_at": null}});
        match ServerFrame::from_json(&frame.to_string()) {
            Ok(ServerFrame::Incident { incident, .. }) => incident.into_owned(),
            other => panic!("not an incident frame: {other:?}"),
        }
    }

    #[test]
    fn the_dispatcher_hears_of_nobody_going_each_time_it_comes_back() {
        let devices: HashMap<String, usize> = [("dev-1".to_string(), 0)].into();
        let mut l = Ledger::new(1);
        let now = Instant::now();
        let waiting = view("awaiting_dispatcher", Some("nobody_going"), None);
        assert_eq!(l.incident_view(&waiting, now, &devices), vec![Planned::NobodyGoing(7)]);
        assert_eq!(l.incident_view(&waiting, now, &devices), vec![], "a reminder is not news");
        assert!(l.still_applies(7, &Step::Suggest) && l.still_applies(7, &Step::Handover));
        // The dispatcher assigns r-9: the job did not come from an offer.
        l.incidents.get_mut(&7).unwrap().assign_sent = Some("r-9".into());
        assert_eq!(l.incident_view(&view("accepted", None, Some("r-9")), now, &devices), vec![]);
        let inc = &l.incidents[&7];
        assert!(inc.accepted.is_some() && inc.accepted_offer.is_none() && inc.nobody_going);
        assert!(!l.still_applies(7, &Step::Suggest) && !l.still_applies(7, &Step::Handover));
        // Back to nobody going: the dispatcher hears of it again.
        assert_eq!(l.incident_view(&waiting, now, &devices), vec![Planned::NobodyGoing(7)]);
        // An elder who asked to cancel is called back, not sent anybody.
        let mut cancelling = waiting.clone();
        cancelling.cancel_requested = true;
        assert_eq!(l.incident_view(&cancelling, now, &devices), vec![Planned::Cancel(7)]);
        assert!(!l.still_applies(7, &Step::Assign("r-9".into())) && l.still_applies(7, &Step::Handover));
    }

    #[test]
    fn each_contact_told_is_heard_of_once_and_the_family_times_are_the_earliest() {
        let devices: HashMap<String, usize> = [("dev-1".to_string(), 0)].into();
        let mut l = Ledger::new(1);
        let now = Instant::now();
        let with_family = |family: Value| {
            let mut v = view("offered", None, None);
            v.pressed_at = anxin_core::Timestamp(1_000);
            v.family = serde_json::from_value(family).unwrap();
            v
        };
        let told = |c: &str| Planned::FamilyTold(Told { incident: 7, device: 0, contact_id: c.into() });
        let first =
            with_family(json!({"contacts": [{"contact_id": "c1", "channel": "sms", "told_at": 1_500, "told": 1}],
                                       "next_at": 301_500}));
        assert_eq!(l.incident_view(&first, now, &devices), vec![told("c1")]);
        assert_eq!(l.incident_view(&first, now, &devices), vec![], "told once, heard of once");
        // c1 cannot help (not an answer that stops the engine), c2 is told and says she is fine;
        // a dead notification is no delivery.
        let later = with_family(json!({"contacts": [
            {"contact_id": "c1", "channel": "sms", "told_at": 1_500, "told": 1, "delivery": "dead", "delivery_at": 2_000,
             "answer": {"type": "cannot_help"}, "answered_at": 3_000},
            {"contact_id": "c2", "channel": "push", "told_at": 3_000, "told": 1, "delivery": "delivered",
             "delivery_at": 3_200, "answer": {"type": "fine"}, "answered_at": 9_000}],
            "answered": true}));
        assert_eq!(l.incident_view(&later, now, &devices), vec![told("c2")]);
        let f = &l.incidents[&7].family;
        assert_eq!((f.pressed_at_ms, f.first_told_at_ms, f.first_delivery_at_ms), (1_000, Some(1_500), Some(3_200)));
        assert_eq!(
            (f.answered_at_ms, f.told.as_slice(), f.exhausted),
            (Some(9_000), &["c1".to_string(), "c2".into()][..], false)
        );
    }

    #[test]
    fn welfare_checks_are_kept_apart_from_the_emergencies() {
        use anxin_core::{IncidentId, IncidentKind, IncidentState, Timestamp, WelfareReason};
        let devices: HashMap<String, usize> = [("dev-1".to_string(), 0)].into();
        let mut l = Ledger::new(1);
        let now = Instant::now();
        l.incident_view(&view("offered", None, None), now, &devices);
        let check = |id: u64, state: IncidentState| {
            let mut w = view("awaiting_dispatcher", Some("welfare_check"), None);
            (w.id, w.kind, w.state, w.welfare) =
                (IncidentId(id), IncidentKind::Welfare, state, Some(WelfareReason::DeviceOffline));
            w.opened_at = Timestamp(5_000);
            w
        };
        assert_eq!(l.incident_view(&check(8, IncidentState::AwaitingDispatcher), now, &devices), vec![]);
        assert_eq!((l.concurrent_open, l.welfare_concurrent, l.incidents.len()), (0, 0, 1), "beside, not a double");
        let c = &l.welfare[&8];
        assert_eq!((c.reason.as_str(), c.opened_at_ms, c.ended), ("device_offline", 5_000, None));
        let mut closed = check(8, IncidentState::Closed);
        closed.outcome = Some("the device was heard again".into());
        l.incident_view(&closed, now, &devices);
        assert!(
            l.welfare[&8].ended.is_some() && l.welfare[&8].outcome.as_deref() == Some("the device was heard again")
        );
        // Another opens; the console falls behind and its fresh snapshot no longer lists it.
        l.incident_view(&check(9, IncidentState::AwaitingDispatcher), now, &devices);
        assert_eq!(l.welfare_concurrent, 0);
        l.welfare_resync([7].into_iter(), now);
        assert!(l.welfare[&9].ended.is_some() && l.devices[0].welfare.is_none());
    }
}
