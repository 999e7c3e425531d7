//! The dispatch engine: a state machine that turns device messages into incidents.
//!
//! It owns the open incidents, the ledger and the matcher. It never reads a clock and never
//! performs I/O: each call takes the current time and appends what must be stored, sent and
//! shown to an [`Outbox`]. The shell stores the outbox's records in one transaction, and only
//! then acknowledges the messages, sends the commands and publishes the deltas.

use crate::dedup::SeenMessages;
use crate::geo::Coordinates;
use crate::ids::{DeviceId, ElderId, IncidentId, MessageId, ResponderId, StationId, Timestamp};
use crate::incident::*;
use crate::matcher::Matcher;
use crate::registry::{Elder, Registry, Responder, Station, TravelMode};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use thiserror::Error;

/// The knobs of dispatch, all with defaults a district can start from.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// A responder further than this (great circle) is not offered the job.
    pub max_offer_distance_m: f64,
    /// A device fix less accurate than this is not trusted over the home address.
    pub max_fix_accuracy_m: f64,
    /// A device fix further than this from home is taken for a broken fix.
    pub max_fix_distance_from_home_m: f64,
    /// A device clock further ahead of ours than this is not trusted.
    pub max_clock_ahead_ms: i64,
    /// A device clock further behind ours than this is not trusted.
    pub max_clock_behind_ms: i64,
    /// How long a message id is remembered in memory for deduplication.
    pub dedup_window_ms: i64,
    /// A repeat press this soon after the last one counted on the same open incident is
    /// stored but changes nothing (a stuck button, a panicking thumb): no event, no delta.
    pub repeat_press_interval_ms: i64,
    /// How long a responder has to accept an offer.
    pub offer_timeout_ms: i64,
    /// The escalation ladder of each emergency kind; a kind not listed uses
    /// [`LadderPolicy::default`].
    pub ladders: BTreeMap<IncidentKind, LadderPolicy>,
    /// Whom the first rung offers: the nearest responders, or only the elder's own station's.
    pub matching: Matching,
    /// How long the station's duty line has before a dispatcher is called in.
    pub station_timeout_ms: i64,
    /// How often a dispatcher is reminded of an incident waiting for them.
    pub reminder_interval_ms: i64,
    /// How long a responder who accepted has to report on scene (telecare services use 30 min).
    pub on_scene_within_ms: i64,
    /// Speeds by travel mode, metres per second, over the road distance.
    pub foot_mps: f64,
    pub ebike_mps: f64,
    pub car_mps: f64,
    /// Road distance over great-circle distance, for travel-time estimates in a city.
    pub detour_factor: f64,
    /// The service circle of a station that does not set its own, in minutes.
    pub default_service_circle_min: u32,
    /// How long a responder's phone fix counts; then they are placed at their station.
    pub max_fix_age_ms: i64,
    /// The number for an ambulance (falls, SOS presses and unreadable messages are taken as
    /// medical until a person knows better).
    pub medical_number: String,
    /// The number for the fire service (smoke, heat or gas alarms).
    pub fire_number: String,
    /// The number for the police (break-ins).
    pub police_number: String,
}

/// How an emergency kind climbs the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LadderPolicy {
    /// Responders offered the incident in all before the next rung (0: skip the responders).
    pub offers: u32,
    /// Offers out at once: 1 offers one responder at a time; more offers the nearest few
    /// together, the first to accept wins and the others are withdrawn.
    pub parallel: u32,
    /// Whether the station's duty line is a rung between the responders and a dispatcher.
    pub station: bool,
}

impl Default for LadderPolicy {
    fn default() -> Self {
        Self { offers: 3, parallel: 1, station: true }
    }
}

/// Whom the ladder's first rung offers an incident to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Matching {
    /// Available responders of any station, soonest to arrive first, inside their station's
    /// service circle.
    #[default]
    Nearest,
    /// Only responders of the elder's own station (the one nearest their home), soonest to
    /// arrive first, however far: how many services work without a matcher. Kept to compare.
    OwnStation,
}

impl Matching {
    pub fn as_str(self) -> &'static str {
        match self {
            Matching::Nearest => "nearest",
            Matching::OwnStation => "own_station",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Matching::Nearest, Matching::OwnStation].into_iter().find(|m| m.as_str() == s)
    }
}

impl Policy {
    /// Estimated minutes to travel `distance_m` (great circle) by `mode`.
    pub fn travel_min(&self, distance_m: f64, mode: TravelMode) -> f64 {
        let speed = match mode {
            TravelMode::Foot => self.foot_mps,
            TravelMode::Ebike => self.ebike_mps,
            TravelMode::Car => self.car_mps,
        };
        distance_m * self.detour_factor / speed / 60.0
    }

    /// The skill a responder must have to be offered an incident of this kind.
    pub fn required_skill(&self, kind: IncidentKind) -> Option<&'static str> {
        match kind {
            IncidentKind::Fall => Some("first_aid"),
            _ => None,
        }
    }

    /// The emergency number that fits an incident of this kind, when one does.
    pub fn emergency_number(&self, kind: IncidentKind) -> Option<String> {
        match kind {
            IncidentKind::Fall | IncidentKind::Sos | IncidentKind::Unreadable => Some(self.medical_number.clone()),
            IncidentKind::Fire => Some(self.fire_number.clone()),
            IncidentKind::Intrusion => Some(self.police_number.clone()),
            IncidentKind::Service => None,
        }
    }

    /// The ladder incidents of this kind climb.
    pub fn ladder(&self, kind: IncidentKind) -> LadderPolicy {
        self.ladders.get(&kind).copied().unwrap_or_default()
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_offer_distance_m: 5_000.0,
            max_fix_accuracy_m: 500.0,
            max_fix_distance_from_home_m: 100_000.0,
            max_clock_ahead_ms: 5 * 60 * 1000,
            max_clock_behind_ms: 24 * 60 * 60 * 1000,
            dedup_window_ms: 7 * 24 * 60 * 60 * 1000,
            repeat_press_interval_ms: 2_000,
            offer_timeout_ms: 60_000,
            ladders: IncidentKind::EMERGENCIES.into_iter().map(|k| (k, LadderPolicy::default())).collect(),
            matching: Matching::Nearest,
            station_timeout_ms: 120_000,
            reminder_interval_ms: 60_000,
            on_scene_within_ms: 30 * 60_000,
            medical_number: "120".to_string(),
            fire_number: "119".to_string(),
            police_number: "110".to_string(),
            max_fix_age_ms: 10 * 60_000,
            foot_mps: 1.2,
            ebike_mps: 4.0,
            car_mps: 6.0,
            detour_factor: 1.3,
            default_service_circle_min: 15,
        }
    }
}

/// What the engine needs from the store to pick up where it stopped.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub open: Vec<Incident>,
    /// Messages seen inside the dedup window, oldest first.
    pub recent_messages: Vec<(Timestamp, DeviceId, MessageId)>,
    pub last_incident_id: u64,
    pub last_seq: u64,
}

/// What the engine decided about one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new incident.
    Opened(IncidentId),
    /// Joined the device's open incident.
    Joined(IncidentId),
    /// The same device sent this message id before: nothing changes.
    Duplicate,
    /// A repeat press too soon after the last one counted: stored, changes nothing.
    Throttled(IncidentId),
    /// Taken in with no effect on incidents (heartbeat, location, a cancel with nothing open).
    Noted,
}

/// Why the engine would not take a message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    #[error("device {0} is not in the registry")]
    UnknownDevice(DeviceId),
}

/// Everything one or more steps produced, in order.
#[derive(Debug, Default)]
pub struct Outbox {
    pub messages: Vec<MessageRecord>,
    pub events: Vec<IncidentEvent>,
    /// Current-state rows to upsert; a later row for the same incident supersedes an earlier.
    pub incidents: Vec<Incident>,
    pub commands: Vec<(DeviceId, DeviceCommand)>,
    pub deltas: Vec<IncidentView>,
    /// Responders whose offer, job or duty changed: their phones get a fresh view.
    pub responders: Vec<ResponderId>,
    /// Responders whose duty or position changed, as they are now: to store.
    pub roster: Vec<Responder>,
    /// Stations whose duty line must be alerted, after the commit.
    pub alerts: Vec<StationAlert>,
}

impl Outbox {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.events.is_empty()
            && self.incidents.is_empty()
            && self.commands.is_empty()
            && self.deltas.is_empty()
    }
}

/// What the engine keeps of one device in the ledger.
#[derive(Debug)]
pub(crate) struct DeviceState {
    pub(crate) elder_id: ElderId,
    /// The device's open incident, while it has one.
    pub(crate) open: Option<IncidentId>,
    /// When the open incident's last counted press was, for
    /// [`Policy::repeat_press_interval_ms`].
    pub(crate) last_press: Option<Timestamp>,
}

/// The dispatch state machine.
#[derive(Debug)]
pub struct Engine {
    pub(crate) policy: Policy,
    elders: HashMap<ElderId, Elder>,
    /// Every device in the ledger, with its open incident. Made once from the registry, so it
    /// never grows while presses come in (a table that grows moves every entry).
    pub(crate) devices: HashMap<DeviceId, DeviceState>,
    pub(crate) stations: HashMap<StationId, Station>,
    /// Staff names by sign-in id, for consoles.
    staff: HashMap<String, String>,
    /// Each station's responders, for [`Matching::OwnStation`].
    pub(crate) by_station: HashMap<StationId, Vec<ResponderId>>,
    /// The roster, with each responder's duty and last known position.
    pub(crate) responders: HashMap<ResponderId, Responder>,
    pub(crate) matcher: Matcher,
    pub(crate) open: BTreeMap<IncidentId, Incident>,
    /// Responders holding an offer or a job, and on which incident.
    pub(crate) busy: HashMap<ResponderId, IncidentId>,
    /// Every open incident's earliest deadline, in time order.
    pub(crate) timers: BTreeSet<(Timestamp, IncidentId)>,
    /// The entry each incident has in `timers`, so it can be moved.
    pub(crate) deadlines: HashMap<IncidentId, Timestamp>,
    /// Responders' phone fixes by time, so stale ones can be retired in order.
    pub(crate) fixes: BTreeSet<(Timestamp, ResponderId)>,
    pub(crate) fix_at: HashMap<ResponderId, Timestamp>,
    seen: SeenMessages,
    /// `seen` in arrival order, so old ids can be forgotten.
    seen_order: VecDeque<(Timestamp, DeviceId, MessageId)>,
    last_incident_id: u64,
    last_seq: u64,
}

impl Engine {
    pub fn new(policy: Policy, registry: Registry, resume: Resume) -> Self {
        let offered = resume.open.iter().flat_map(|i| i.ladder.offers.iter().map(|o| (o.responder_id.clone(), i.id)));
        let on_job = resume
            .open
            .iter()
            .filter(|i| i.state.has_responder_on_job())
            .filter_map(|i| i.responder.as_ref().map(|r| (r.id.clone(), i.id)));
        let busy: HashMap<ResponderId, IncidentId> = offered.chain(on_job).collect();
        let mut by_station: HashMap<StationId, Vec<ResponderId>> = HashMap::new();
        for r in &registry.responders {
            by_station.entry(r.station_id.clone()).or_default().push(r.id.clone());
        }
        let matcher = Matcher::new(
            registry
                .responders
                .iter()
                .filter(|r| r.on_duty && !busy.contains_key(&r.id))
                .map(|r| (r.id.clone(), r.position)),
            registry.stations.iter().map(|s| (s.id.clone(), s.position)),
        );
        let mut engine = Self {
            policy,
            elders: registry.elders.into_iter().map(|e| (e.id.clone(), e)).collect(),
            devices: registry
                .devices
                .into_iter()
                .map(|d| (d.id, DeviceState { elder_id: d.elder_id, open: None, last_press: None }))
                .collect(),
            stations: registry.stations.into_iter().map(|s| (s.id.clone(), s)).collect(),
            responders: registry.responders.into_iter().map(|r| (r.id.clone(), r)).collect(),
            matcher,
            staff: registry.staff.into_iter().map(|s| (s.id, s.name)).collect(),
            by_station,
            open: BTreeMap::new(),
            busy,
            timers: BTreeSet::new(),
            deadlines: HashMap::new(),
            fixes: BTreeSet::new(),
            fix_at: HashMap::new(),
            seen: SeenMessages::default(),
            seen_order: VecDeque::new(),
            last_incident_id: resume.last_incident_id,
            last_seq: resume.last_seq,
        };
        for incident in resume.open {
            let id = incident.id;
            // A device taken out of the ledger since leaves its incident to the dispatchers:
            // its presses are refused as unknown.
            if let Some(device) = engine.devices.get_mut(&incident.device_id) {
                device.open = Some(id);
            }
            engine.open.insert(id, incident);
            engine.reschedule(id);
        }
        // Phone fixes keep their age across a restart, and go stale on time.
        let phone_fixes: Vec<_> =
            engine.responders.values().filter_map(|r| r.position_at.map(|t| (t, r.id.clone()))).collect();
        for (t, id) in phone_fixes {
            engine.fix_at.insert(id.clone(), t);
            engine.fixes.insert((t, id));
        }
        for (at, device, msg) in resume.recent_messages {
            engine.remember(at, device, msg);
        }
        engine
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn open_incidents(&self) -> impl Iterator<Item = &Incident> {
        self.open.values()
    }

    /// An open incident by id.
    pub fn incident(&self, id: IncidentId) -> Option<&Incident> {
        self.open.get(&id)
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// The elder a device in the ledger belongs to.
    fn elder_of(&self, device: &DeviceId) -> Result<ElderId, Refusal> {
        self.devices.get(device).map(|d| d.elder_id.clone()).ok_or_else(|| Refusal::UnknownDevice(device.clone()))
    }

    /// The open incident of a device in the ledger.
    pub(crate) fn open_of(&self, device: &DeviceId) -> Option<IncidentId> {
        self.devices.get(device).and_then(|d| d.open)
    }

    pub fn open_incident_for(&self, device: &DeviceId) -> Option<&Incident> {
        self.open_of(device).and_then(|id| self.open.get(&id))
    }

    /// A responder as the engine knows them now (duty, position).
    pub fn responder(&self, id: &ResponderId) -> Option<&Responder> {
        self.responders.get(id)
    }

    pub fn is_known_device(&self, device: &DeviceId) -> bool {
        self.devices.contains_key(device)
    }

    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Views of every open incident, most urgent first, then oldest first.
    pub fn snapshot(&self) -> Vec<IncidentView> {
        let mut views: Vec<_> = self.open.values().map(|i| self.view(i)).collect();
        views.sort_by_key(|v| (v.priority, v.pressed_at, v.id));
        views
    }

    /// Takes in one decoded device message.
    pub fn handle_device_event(
        &mut self,
        device: &DeviceId,
        event: DeviceEvent,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Result<Outcome, Refusal> {
        let elder_id = self.elder_of(device)?;
        if matches!(event.event, EventType::Heartbeat | EventType::Location) {
            return Ok(Outcome::Noted);
        }
        if self.seen.contains(device, &event.msg_id) {
            if event.event != EventType::Cancel {
                self.reassure(device, out);
            }
            return Ok(Outcome::Duplicate);
        }
        self.remember(now, device.clone(), event.msg_id.clone());
        if event.event != EventType::Cancel {
            self.close_if_resolved(device, now, out);
        }
        // By the device's clock when it is plausible: presses a device kept while offline and
        // sends together are as far apart as they were made, not a stuck button.
        let pressed = self.plausible_press_time(event.device_ts, now);
        let outcome = match (event.event, self.open_of(device)) {
            (EventType::Cancel, Some(id)) => {
                self.request_cancel(id, device, &event.msg_id, now, out);
                Outcome::Joined(id)
            }
            (EventType::Cancel, None) => Outcome::Noted,
            (_, Some(id)) if self.is_stuck_repeat(id, device, event.event, pressed) => Outcome::Throttled(id),
            (_, Some(id)) => {
                self.set_last_press(device, pressed);
                self.join(id, device, &event.msg_id, Some(event.event), now, out);
                Outcome::Joined(id)
            }
            (kind, None) => {
                let kind = kind.incident_kind().unwrap_or(IncidentKind::Sos);
                let pressed_at = pressed;
                let elder = &self.elders[&elder_id];
                let location = locate(&self.policy, elder.home, event.fix);
                let id =
                    self.open_incident(device, elder_id, kind, &event.msg_id, location, pressed_at, None, now, out);
                Outcome::Opened(id)
            }
        };
        if let Outcome::Opened(_) = outcome {
            self.set_last_press(device, pressed);
        }
        let incident_id = match &outcome {
            Outcome::Opened(id) | Outcome::Joined(id) | Outcome::Throttled(id) => Some(*id),
            _ => None,
        };
        out.messages.push(MessageRecord {
            device_id: device.clone(),
            msg_id: event.msg_id,
            event: Some(event.event),
            received_at: now,
            incident_id,
        });
        Ok(outcome)
    }

    /// Takes in a message from a known device that could not be read. It may have been a
    /// press, so it raises (or joins) an incident for a dispatcher to call back.
    /// `fingerprint` stands in for the message id, so a redelivery is still recognised.
    pub fn handle_unreadable(
        &mut self,
        device: &DeviceId,
        reason: &str,
        fingerprint: MessageId,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Result<Outcome, Refusal> {
        let elder_id = self.elder_of(device)?;
        if self.seen.contains(device, &fingerprint) {
            self.reassure(device, out);
            return Ok(Outcome::Duplicate);
        }
        self.remember(now, device.clone(), fingerprint.clone());
        self.close_if_resolved(device, now, out);
        let outcome = match self.open_of(device) {
            Some(id) => {
                self.join(id, device, &fingerprint, None, now, out);
                Outcome::Joined(id)
            }
            None => {
                let home = self.elders[&elder_id].home;
                let location = locate(&self.policy, home, FixReport::Absent);
                let problem = format!("unreadable message from the device: {reason}");
                let id = self.open_incident(
                    device,
                    elder_id,
                    IncidentKind::Unreadable,
                    &fingerprint,
                    location,
                    now,
                    Some(problem),
                    now,
                    out,
                );
                Outcome::Opened(id)
            }
        };
        let incident_id = match &outcome {
            Outcome::Opened(id) | Outcome::Joined(id) => Some(*id),
            _ => None,
        };
        out.messages.push(MessageRecord {
            device_id: device.clone(),
            msg_id: fingerprint,
            event: None,
            received_at: now,
            incident_id,
        });
        Ok(outcome)
    }

    /// Forgets message ids older than the dedup window. A message id reused after that is a
    /// new message (the store keeps the first row for it, and records nothing for the second).
    pub fn expire(&mut self, now: Timestamp) {
        let horizon = now.plus_millis(-self.policy.dedup_window_ms);
        while let Some((at, _, _)) = self.seen_order.front() {
            if *at >= horizon {
                break;
            }
            let (_, d, m) = self.seen_order.pop_front().expect("front exists");
            self.seen.remove(&d, &m);
        }
    }

    /// Help was given and the incident only waits to be closed: a new press is a new
    /// emergency, so the old incident is closed (by the engine, saying why) to make room.
    fn close_if_resolved(&mut self, device: &DeviceId, now: Timestamp, out: &mut Outbox) {
        let Some(id) = self.open_of(device) else { return };
        if self.open[&id].state != IncidentState::Resolved {
            return;
        }
        let outcome = "closed by the engine: the device pressed again after help was given".to_string();
        let seq = self.log(id, now, Actor::Engine, Change::Closed { outcome: outcome.clone() }, out);
        let incident = self.open.get_mut(&id).expect("open");
        incident.state = IncidentState::Closed;
        incident.outcome = Some(outcome);
        incident.last_seq = seq;
        incident.updated_at = now;
        self.after_change(id, out);
    }

    /// A device that resends a message it already sent did not hear "help is coming" (a
    /// device should resend until it does): tell it again while its incident is open.
    /// Whether a press made at `pressed` on open incident `id` repeats the last counted one
    /// too soon to mean anything new. A press that would change the incident's kind always
    /// counts.
    fn is_stuck_repeat(&self, id: IncidentId, device: &DeviceId, event: EventType, pressed: Timestamp) -> bool {
        let Some(last) = self.devices.get(device).and_then(|d| d.last_press) else { return false };
        if (pressed.millis() - last.millis()).abs() >= self.policy.repeat_press_interval_ms {
            return false;
        }
        let from = self.open[&id].kind;
        !event.incident_kind().is_some_and(|to| from.is_raised_by(to))
    }

    fn reassure(&self, device: &DeviceId, out: &mut Outbox) {
        if let Some(id) = self.open_of(device) {
            self.tell_device_help_is_coming(id, out);
        }
    }

    fn remember(&mut self, at: Timestamp, device: DeviceId, msg: MessageId) {
        if self.seen.insert(device.clone(), msg.clone()) {
            self.seen_order.push_back((at, device, msg));
        }
    }

    fn set_last_press(&mut self, device: &DeviceId, pressed: Timestamp) {
        if let Some(d) = self.devices.get_mut(device) {
            d.last_press = Some(pressed);
        }
    }

    fn plausible_press_time(&self, device_ts: Timestamp, now: Timestamp) -> Timestamp {
        let delta = device_ts.millis() - now.millis();
        if delta <= self.policy.max_clock_ahead_ms && -delta <= self.policy.max_clock_behind_ms {
            device_ts
        } else {
            now
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.last_seq += 1;
        self.last_seq
    }

    pub(crate) fn log(
        &mut self,
        incident_id: IncidentId,
        at: Timestamp,
        actor: Actor,
        change: Change,
        out: &mut Outbox,
    ) -> u64 {
        let seq = self.next_seq();
        out.events.push(IncidentEvent { seq, incident_id, at, actor, change });
        seq
    }

    #[allow(clippy::too_many_arguments)]
    fn open_incident(
        &mut self,
        device: &DeviceId,
        elder_id: ElderId,
        kind: IncidentKind,
        msg_id: &MessageId,
        location: Location,
        pressed_at: Timestamp,
        problem: Option<String>,
        now: Timestamp,
        out: &mut Outbox,
    ) -> IncidentId {
        self.last_incident_id += 1;
        let id = IncidentId(self.last_incident_id);
        let by_device = Actor::Device(device.clone());
        let mut last =
            self.log(id, now, by_device, Change::Opened { kind, msg_id: msg_id.clone(), location, pressed_at }, out);
        let station = self.matcher.nearest_station(location.at);
        if let Some(s) = &station {
            let change = Change::NearestStation { station_id: s.id.clone(), distance_m: s.distance_m };
            last = self.log(id, now, Actor::Engine, change, out);
        }
        let dispatcher_needed = match kind {
            IncidentKind::Unreadable => Some(DispatcherNeeded::UnreadableMessage),
            IncidentKind::Service => Some(DispatcherNeeded::ServiceRequest),
            IncidentKind::Sos | IncidentKind::Fall | IncidentKind::Fire | IncidentKind::Intrusion => None,
        };
        let incident = Incident {
            id,
            device_id: device.clone(),
            elder_id,
            kind,
            state: IncidentState::AwaitingDispatcher,
            pressed_at,
            opened_at: now,
            updated_at: now,
            location,
            responder: None,
            station: station.map(|s| Assigned { id: s.id, distance_m: s.distance_m }),
            press_count: 1,
            cancel_requested: false,
            dispatcher_needed,
            problem,
            last_seq: last,
            ladder: Ladder::default(),
            outcome: None,
            claimed_by: None,
            acknowledged_at: None,
        };
        if let Some(d) = self.devices.get_mut(device) {
            d.open = Some(id);
        }
        self.open.insert(id, incident);
        // Only emergencies go up the ladder straight away; anything doubtful goes to a person
        // first, who is reminded until they act.
        if kind.is_emergency() {
            self.climb(id, now, out);
        } else {
            let remind_at = now.plus_millis(self.policy.reminder_interval_ms);
            let number = self.policy.emergency_number(kind);
            let incident = self.open.get_mut(&id).expect("just opened");
            incident.ladder.rung = Rung::Dispatcher;
            incident.ladder.remind_at = Some(remind_at);
            incident.ladder.emergency_number = number;
        }
        self.tell_device_help_is_coming(id, out);
        self.after_change(id, out);
        id
    }

    fn join(
        &mut self,
        id: IncidentId,
        device: &DeviceId,
        msg_id: &MessageId,
        event: Option<EventType>,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        let press_count = self.open[&id].press_count + 1;
        let change = Change::PressJoined { msg_id: msg_id.clone(), event, press_count };
        let seq = self.log(id, now, Actor::Device(device.clone()), change, out);
        let incident = self.open.get_mut(&id).expect("open incident");
        incident.press_count = press_count;
        incident.updated_at = now;
        incident.last_seq = seq;
        // An SOS or a fall during a service request or after an unreadable message makes the
        // incident an emergency: it takes the more urgent kind and is offered at once.
        let from = incident.kind;
        let upgrade = event.and_then(EventType::incident_kind).filter(|to| from.is_raised_by(*to));
        if let Some(to) = upgrade {
            let seq = self.log(id, now, Actor::Device(device.clone()), Change::KindChanged { from, to }, out);
            let number = self.standing_number(to);
            let incident = self.open.get_mut(&id).expect("open incident");
            incident.kind = to;
            incident.last_seq = seq;
            if number.is_some() && incident.state != IncidentState::Resolved {
                incident.ladder.emergency_number = number;
            }
            // Only a request that was not an emergency and still waits for a dispatcher climbs;
            // one a person already handles stays with them (the kind change alone raises its
            // priority), and an emergency keeps its place on the ladder.
            if !from.is_emergency()
                && incident.state == IncidentState::AwaitingDispatcher
                && !incident.ladder.off_ladder
            {
                incident.ladder.rung = Rung::Responders;
                incident.ladder.remind_at = None;
                self.climb(id, now, out);
            }
        }
        self.tell_device_help_is_coming(id, out);
        self.after_change(id, out);
    }

    fn request_cancel(
        &mut self,
        id: IncidentId,
        device: &DeviceId,
        msg_id: &MessageId,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        let seq =
            self.log(id, now, Actor::Device(device.clone()), Change::CancelRequested { msg_id: msg_id.clone() }, out);
        let incident = self.open.get_mut(&id).expect("open incident");
        incident.cancel_requested = true;
        incident.updated_at = now;
        incident.last_seq = seq;
        self.after_change(id, out);
    }

    fn tell_device_help_is_coming(&self, id: IncidentId, out: &mut Outbox) {
        let incident = &self.open[&id];
        let holder = incident.responder.as_ref().filter(|_| incident.state.has_responder_on_job());
        let eta_min = match holder {
            Some(r) => Some(self.eta_min(&r.id, r.distance_m)),
            None => incident.ladder.offers.iter().map(|o| self.eta_min(&o.responder_id, o.distance_m)).min(),
        };
        out.commands.push((
            incident.device_id.clone(),
            DeviceCommand::HelpComing { incident_id: id, responder_assigned: eta_min.is_some(), eta_min },
        ));
    }

    pub(crate) fn emit(&self, id: IncidentId, out: &mut Outbox) {
        let incident = &self.open[&id];
        out.incidents.push(incident.clone());
        out.deltas.push(self.view(incident));
        if let Some(r) = &incident.responder {
            out.responders.push(r.id.clone());
        }
        out.responders.extend(incident.ladder.offers.iter().map(|o| o.responder_id.clone()));
    }

    /// The station an elder belongs to: the one nearest their home.
    pub fn home_station(&self, elder: &ElderId) -> Option<StationId> {
        let home = self.elders.get(elder)?.home;
        self.matcher.nearest_station(home).map(|s| s.id)
    }

    /// What a responder's phone shows: their live offer or job, if any.
    pub fn job_view(&self, responder: &ResponderId, now: Timestamp) -> Option<JobView> {
        let id = self.busy.get(responder)?;
        let incident = self.open.get(id)?;
        let offer = incident.ladder.offers.iter().find(|o| &o.responder_id == responder);
        let (distance_m, offer_deadline) = match offer {
            Some(o) => (o.distance_m, Some(o.deadline)),
            None => (incident.responder.as_ref().map_or(0.0, |r| r.distance_m), None),
        };
        Some(JobView {
            incident_id: incident.id,
            state: if offer.is_some() { IncidentState::Offered } else { incident.state },
            offer_deadline,
            kind: incident.kind,
            elder: self.elder_view(&incident.elder_id, incident.pressed_at),
            location: incident.location,
            distance_m,
            eta_min: self.eta_min(responder, distance_m),
            pressed_at: incident.pressed_at,
            server_time: now,
        })
    }

    /// Whole minutes, at least one, for this responder to cover `distance_m`.
    fn eta_min(&self, responder: &ResponderId, distance_m: f64) -> u32 {
        let mode = self.responders.get(responder).map(|r| r.mode).unwrap_or_default();
        self.policy.travel_min(distance_m, mode).ceil().max(1.0) as u32
    }

    /// The responder whose sign-in token has this SHA-256 (lowercase hex).
    pub fn responder_by_token_sha256(&self, hash: &str) -> Option<&Responder> {
        self.responders.values().find(|r| r.token_sha256.as_deref() == Some(hash))
    }

    /// The elder as consoles and phones show them, their age as of `at`.
    pub(crate) fn elder_view(&self, id: &ElderId, at: Timestamp) -> ElderView {
        let Some(elder) = self.elders.get(id) else {
            return ElderView {
                id: id.clone(),
                name: String::new(),
                address: String::new(),
                phone: None,
                notes: String::new(),
                age: None,
                lives_alone: None,
                conditions: Vec::new(),
                medications: Vec::new(),
                mobility: String::new(),
                language: String::new(),
                door_notes: String::new(),
                contacts: Vec::new(),
            };
        };
        let p = &elder.profile;
        ElderView {
            id: id.clone(),
            name: elder.name.clone(),
            address: elder.address.clone(),
            phone: elder.phone.clone(),
            notes: elder.notes.clone(),
            age: p.birth_year.and_then(|y| u32::try_from(at.year() - i64::from(y)).ok()),
            lives_alone: p.lives_alone,
            conditions: p.conditions.clone(),
            medications: p.medications.clone(),
            mobility: p.mobility.clone(),
            language: p.language.clone(),
            door_notes: p.door_notes.clone(),
            contacts: p.contacts.clone(),
        }
    }

    /// A responder as consoles' maps show them.
    pub fn responder_view(&self, id: &ResponderId) -> Option<ResponderView> {
        let r = self.responders.get(id)?;
        let incident_id = self.busy.get(id).copied();
        let offered = incident_id
            .and_then(|i| self.open.get(&i))
            .is_some_and(|i| i.ladder.offers.iter().any(|o| &o.responder_id == id));
        let status = match (r.on_duty, incident_id, offered) {
            (_, Some(_), true) => ResponderStatus::Offered,
            (_, Some(_), false) => ResponderStatus::Busy,
            (true, None, _) => ResponderStatus::Available,
            (false, None, _) => ResponderStatus::OffDuty,
        };
        Some(ResponderView {
            id: r.id.clone(),
            name: r.name.clone(),
            station_id: r.station_id.clone(),
            phone: r.phone.clone(),
            mode: r.mode,
            skills: r.skills.clone(),
            on_duty: r.on_duty,
            status,
            incident_id,
            position: r.position,
            position_at: r.position_at,
        })
    }

    /// Every responder, by id.
    pub fn roster_view(&self) -> Vec<ResponderView> {
        let mut ids: Vec<&ResponderId> = self.responders.keys().collect();
        ids.sort();
        ids.into_iter().filter_map(|id| self.responder_view(id)).collect()
    }

    /// Every station, by id, with its service circle.
    pub fn stations_view(&self) -> Vec<StationView> {
        let mut all: Vec<StationView> = self
            .stations
            .values()
            .map(|s| StationView {
                id: s.id.clone(),
                name: s.name.clone(),
                phone: s.phone.clone(),
                position: s.position,
                service_circle_min: s.service_circle_min.unwrap_or(self.policy.default_service_circle_min),
            })
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Whom a dispatcher could put on incident `id`: available responders within the offer
    /// distance, soonest to arrive first, at most `limit`, each marked with whether they are
    /// inside their service circle and have the skill the kind needs. Ones the ladder tried
    /// are included: a dispatcher may have spoken to them.
    pub fn suggestions(&self, id: IncidentId, limit: usize) -> Option<Vec<Suggestion>> {
        let incident = self.open.get(&id)?;
        let skill = self.policy.required_skill(incident.kind);
        let mut all: Vec<(f64, Suggestion)> = self
            .matcher
            .responders_within(incident.location.at, self.policy.max_offer_distance_m)
            .take(200) // the nearest 200 hold the soonest few
            .filter_map(|n| {
                let r = self.responders.get(&n.id)?;
                let minutes = self.policy.travel_min(n.distance_m, r.mode);
                let circle = self
                    .stations
                    .get(&r.station_id)
                    .and_then(|s| s.service_circle_min)
                    .unwrap_or(self.policy.default_service_circle_min);
                let suggestion = Suggestion {
                    responder: PartyView {
                        id: r.id.to_string(),
                        name: r.name.clone(),
                        phone: r.phone.clone(),
                        distance_m: Some(n.distance_m),
                    },
                    mode: r.mode,
                    station_id: r.station_id.clone(),
                    distance_m: n.distance_m,
                    eta_min: self.eta_min(&r.id, n.distance_m),
                    within_circle: minutes <= f64::from(circle),
                    has_skill: skill.is_none_or(|s| r.skills.iter().any(|k| k == s)),
                };
                Some((minutes, suggestion))
            })
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(all.into_iter().take(limit).map(|(_, s)| s).collect())
    }

    /// A member of staff's name, by sign-in id.
    pub(crate) fn staff_name(&self, id: &str) -> Option<&str> {
        self.staff.get(id).map(String::as_str)
    }

    /// A member of staff as consoles show them.
    fn staff_view(&self, id: &str) -> PartyView {
        let name = self.staff.get(id).cloned().unwrap_or_else(|| id.to_string());
        PartyView { id: id.to_string(), name, phone: None, distance_m: None }
    }

    /// The console's view of an incident, with names looked up in the ledger.
    pub fn view(&self, incident: &Incident) -> IncidentView {
        IncidentView {
            id: incident.id,
            seq: incident.last_seq,
            kind: incident.kind,
            priority: incident.kind.priority(),
            state: incident.state,
            device_id: incident.device_id.clone(),
            elder: self.elder_view(&incident.elder_id, incident.pressed_at),
            location: incident.location,
            responder: incident.responder.as_ref().map(|a| {
                let r = self.responders.get(&a.id);
                PartyView {
                    id: a.id.to_string(),
                    name: r.map(|r| r.name.clone()).unwrap_or_default(),
                    phone: r.and_then(|r| r.phone.clone()),
                    distance_m: Some(a.distance_m),
                }
            }),
            station: incident.station.as_ref().map(|a| {
                let s = self.stations.get(&a.id);
                PartyView {
                    id: a.id.to_string(),
                    name: s.map(|s| s.name.clone()).unwrap_or_default(),
                    phone: s.and_then(|s| s.phone.clone()),
                    distance_m: Some(a.distance_m),
                }
            }),
            offers: incident
                .ladder
                .offers
                .iter()
                .map(|o| {
                    let r = self.responders.get(&o.responder_id);
                    OfferView {
                        responder: PartyView {
                            id: o.responder_id.to_string(),
                            name: r.map(|r| r.name.clone()).unwrap_or_default(),
                            phone: r.and_then(|r| r.phone.clone()),
                            distance_m: Some(o.distance_m),
                        },
                        deadline: o.deadline,
                    }
                })
                .collect(),
            press_count: incident.press_count,
            cancel_requested: incident.cancel_requested,
            dispatcher_needed: incident.dispatcher_needed,
            problem: incident.problem.clone(),
            ladder: incident.ladder.clone(),
            outcome: incident.outcome.clone(),
            pressed_at: incident.pressed_at,
            opened_at: incident.opened_at,
            updated_at: incident.updated_at,
            claimed_by: incident.claimed_by.as_deref().map(|d| self.staff_view(d)),
            acknowledged_at: incident.acknowledged_at,
        }
    }
}

/// Picks the incident's position: the device's fix when it is plausible, else home.
pub fn locate(policy: &Policy, home: Coordinates, fix: FixReport) -> Location {
    let home_location =
        |fix_rejected| Location { at: home, accuracy_m: None, source: LocationSource::Home, fix_rejected };
    let fix = match fix {
        FixReport::Absent => return home_location(None),
        FixReport::Malformed => return home_location(Some(FixRejection::Malformed)),
        FixReport::Valid(fix) => fix,
    };
    let rejection = if fix.at.is_null_island() {
        Some(FixRejection::NullIsland)
    } else if fix.accuracy_m.is_some_and(|a| !(a.is_finite() && a >= 0.0 && a <= policy.max_fix_accuracy_m)) {
        Some(FixRejection::TooInaccurate)
    } else if fix.at.distance_m(home) > policy.max_fix_distance_from_home_m {
        Some(FixRejection::TooFarFromHome)
    } else {
        None
    };
    match rejection {
        None => Location { at: fix.at, accuracy_m: fix.accuracy_m, source: LocationSource::Device, fix_rejected: None },
        Some(r) => home_location(Some(r)),
    }
}
