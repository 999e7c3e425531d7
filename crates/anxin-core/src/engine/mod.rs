//! The dispatch engine: a state machine that turns device messages into incidents.
//!
//! It owns the open incidents, the ledger and the matcher. It never reads a clock and never
//! performs I/O: each call takes the current time and appends what must be stored, sent and
//! shown to an [`Outbox`]. The shell stores the outbox's records in one transaction, and only
//! then acknowledges the messages, sends the commands and publishes the deltas.
//!
//! An incident changes in one way only: the engine builds a [`Change`], and
//! `Engine::record` applies it ([`Incident::apply`]) and logs it in the same step, so the
//! audit trail and the state cannot tell different stories.
//!
//! The engine's `impl` is split by concern, one module each: `intake` (device messages),
//! `ladder` (offers and escalation), `candidates` (who qualifies, for the ladder and for
//! dispatchers alike), `commands` (responders' and dispatchers' actions), `timers` (the
//! clock) and `views` (what consoles and phones are shown).

mod activity;
mod border;
mod calls;
mod candidates;
mod carers;
mod commands;
mod family;
mod health;
mod intake;
mod ladder;
mod ledger;
mod presence;
mod programme;
mod services;
mod timers;
mod views;

pub use crate::policy::{LadderPolicy, Matching, Policy};
pub use family::MAX_FAMILY_ETA_MIN;
pub use intake::locate;
pub use services::OrderView;

use crate::dedup::SeenMessages;
use crate::ids::{DeviceId, ElderId, IncidentId, MessageId, ResponderId, StationId, Timestamp};
use crate::incident::*;
use crate::matcher::Matcher;
use crate::registry::{Elder, Registry, Responder, Station};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use thiserror::Error;

/// The engine's tables by id: looked up several times for every message, they were hashed
/// with the standard library's SipHash, a few per cent of the engine's CPU a press in
/// `press_load`. foldhash is quicker on short keys and still seeded at random per table. The
/// keys are the ledger's ids, put in by the ledger, not by what a device sends.
pub(crate) type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// What the engine needs from the store to pick up where it stopped.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub open: Vec<Incident>,
    /// Messages seen inside the dedup window, oldest first.
    pub recent_messages: Vec<(Timestamp, DeviceId, MessageId)>,
    /// The zones this engine runs, each with the highest numbers stored within it; none:
    /// zone 0 alone, with nothing stored.
    pub counters: BTreeMap<crate::zone::Zone, Counters>,
    /// Devices' health as the last snapshot stored it.
    pub health: Vec<crate::health::HealthRow>,
    /// Watched elders' activity as the last snapshot stored it.
    pub activity: Vec<crate::activity::ActivityRow>,
    /// The welfare programme's calls and visits as the last snapshot stored them.
    pub programme: Vec<crate::programme::ProgrammeRow>,
    /// Carers' visits not yet checked out.
    pub visits: Vec<crate::carer::Visit>,
    /// Service orders still open, and those of this and last month (their capacity and
    /// money still count).
    pub orders: Vec<crate::service::ServiceOrder>,
    /// Responders of these zones held for another zone's incident, as their rows say
    /// ([`crate::border`]): not offered until that zone releases them.
    pub holds: Vec<(ResponderId, IncidentId)>,
}

/// The last number of each kind an engine handed out within one zone (`anxin_core::zone`):
/// as resumed, the highest stored within the zone's range, or 0 for none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub incident: u64,
    /// Incidents' events: the consoles' feed is numbered by them.
    pub seq: u64,
    /// The ledger's log.
    pub ledger: u64,
    pub visit: u64,
    pub order: u64,
    /// Orders' log.
    pub order_seq: u64,
}

impl Counters {
    /// Each counter within `zone`'s range: one not in it (none stored, or another zone's
    /// number) starts at the zone's base.
    pub fn within(self, zone: crate::zone::Zone) -> Counters {
        Counters {
            incident: zone.counter(self.incident),
            seq: zone.counter(self.seq),
            ledger: zone.counter(self.ledger),
            visit: zone.counter(self.visit),
            order: zone.counter(self.order),
            order_seq: zone.counter(self.order_seq),
        }
    }
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

/// A request another node forwarded under its own id, acted on in this batch: stored in the
/// same commit as what it did, so that the id asked again (after a takeover) is answered
/// from the store and not acted on twice (issue 25).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedRequest {
    pub id: String,
    /// The answer given, as the forwarding frame carries it (JSON).
    pub answer: String,
    pub at: Timestamp,
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
    /// Messages to elders' contacts: stored in the same commit, sent by the delivery worker.
    pub notifications: Vec<crate::family::Notification>,
    /// Changes to the ledger: stored in the same commit, then passed to the broker's
    /// accounts and the sign-in tables.
    pub ledger: Vec<crate::ledger::LedgerRecord>,
    /// Carers' visits as they are now, to upsert in the visit log.
    pub visits: Vec<crate::carer::Visit>,
    /// Service orders as they are now: rows to upsert, and what consoles are shown.
    pub orders: Vec<crate::service::ServiceOrder>,
    /// The orders' log.
    pub order_events: Vec<crate::service::OrderEvent>,
    /// Forwarded requests acted on, to store with what they did.
    pub requests: Vec<AppliedRequest>,
    /// Responders held for another zone's incident, or let go of: each one's row is set in
    /// the same commit ([`crate::border`]).
    pub holds: Vec<crate::border::Hold>,
    /// Messages for other zones' owners, stored in their inboxes in the same commit.
    pub across: Vec<crate::border::Across>,
}

impl Outbox {
    /// An outbox with room for what `n` messages or requests usually cause (a press: its
    /// record, three or four events, the incident's row and view, a command, an alert), so
    /// that a batch's work does not keep moving its vectors as they grow.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            messages: Vec::with_capacity(n),
            events: Vec::with_capacity(4 * n),
            incidents: Vec::with_capacity(n),
            commands: Vec::with_capacity(n),
            deltas: Vec::with_capacity(n),
            responders: Vec::with_capacity(2 * n),
            roster: Vec::new(),
            alerts: Vec::with_capacity(n),
            notifications: Vec::new(),
            ledger: Vec::new(),
            visits: Vec::new(),
            orders: Vec::new(),
            order_events: Vec::new(),
            requests: Vec::new(),
            holds: Vec::new(),
            across: Vec::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
            && self.events.is_empty()
            && self.incidents.is_empty()
            && self.commands.is_empty()
            && self.deltas.is_empty()
            && self.notifications.is_empty()
            && self.ledger.is_empty()
            && self.visits.is_empty()
            && self.orders.is_empty()
            && self.order_events.is_empty()
            && self.holds.is_empty()
            && self.across.is_empty()
    }
}

/// What the engine keeps of one device in the ledger: 48 bytes, for every device a centre
/// has (a million in a province), so what only a device with an incident needs is kept
/// apart, in [`DeviceIncidents`].
#[derive(Debug)]
pub(crate) struct DeviceState {
    /// Shared with the elder's own entry where the elder is in the ledger.
    pub(crate) elder_id: ElderId,
    pub(crate) health: crate::health::DeviceHealth,
    /// Its model: 1 + its index in [`Engine::model_names`]; 0: none (the default model).
    pub(crate) model: u16,
}

/// A device's incidents, held only while it has one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct DeviceIncidents {
    /// The device's open incident.
    pub(crate) open: Option<IncidentId>,
    /// Its open welfare check (silent, switched off, low battery), kept apart so that an
    /// emergency never joins one.
    pub(crate) welfare: Option<IncidentId>,
    /// When the open incident's last counted press was, for
    /// [`Policy::repeat_press_interval_ms`].
    pub(crate) last_press: Option<Timestamp>,
}

/// The dispatch state machine.
///
/// Built once with [`Engine::new`] from the policy, the ledger and what the store kept. Its
/// methods fall into three groups:
///
/// - **Take input**, and append what must be stored, sent and shown to an [`Outbox`]:
///   - from devices (`intake`): [`handle_device_event`](Engine::handle_device_event),
///     [`handle_unreadable`](Engine::handle_unreadable);
///   - from responders (`commands`): [`responder_acts`](Engine::responder_acts),
///     [`set_duty`](Engine::set_duty), [`responder_moved`](Engine::responder_moved);
///   - from dispatchers (`commands`): [`dispatcher_acts`](Engine::dispatcher_acts),
///     [`dispatcher_acts_as`](Engine::dispatcher_acts_as).
/// - **Advance time** (`timers`): [`tick`](Engine::tick) does whatever is due (lapsed
///   offers and station alerts, reminders, overdue arrivals, stale phone fixes); call it
///   when [`next_deadline`](Engine::next_deadline) comes. [`expire`](Engine::expire)
///   forgets message ids older than the dedup window.
/// - **Only read state** (`views`, `ladder` and accessors), changing nothing:
///   [`snapshot`](Engine::snapshot), [`view`](Engine::view), [`job_view`](Engine::job_view),
///   [`responder_view`](Engine::responder_view), [`roster_view`](Engine::roster_view),
///   [`stations_view`](Engine::stations_view), [`suggestions`](Engine::suggestions),
///   [`best_candidate`](Engine::best_candidate), [`home_station`](Engine::home_station),
///   [`next_deadline`](Engine::next_deadline), [`incident`](Engine::incident),
///   [`open_incidents`](Engine::open_incidents), [`open_incident_for`](Engine::open_incident_for),
///   [`open_count`](Engine::open_count), [`responder`](Engine::responder),
///   [`responder_by_token_sha256`](Engine::responder_by_token_sha256),
///   [`is_known_device`](Engine::is_known_device), [`matcher`](Engine::matcher),
///   [`policy`](Engine::policy), [`last_seqs`](Engine::last_seqs).
///
/// Every input that changes an incident does so through `Engine::record`, so its
/// [`IncidentEvent`]s in the outbox, replayed with [`Incident::apply`], give its row.
#[derive(Debug)]
pub struct Engine {
    pub(crate) policy: Policy,
    pub(crate) elders: HashMap<ElderId, Elder>,
    /// Every device in the ledger, with its open incident. Made once from the registry, so it
    /// never grows while presses come in (a table that grows moves every entry).
    pub(crate) devices: HashMap<DeviceId, DeviceState>,
    /// The devices with an open incident or welfare check, and which. Sorted, not hashed, as
    /// are the timers' `deadlines`: a hash table grows all at once, and in a surge growing
    /// these past 28,672 and 57,344 open incidents held up every press queued behind it.
    pub(crate) device_incidents: BTreeMap<DeviceId, DeviceIncidents>,
    pub(crate) stations: HashMap<StationId, Station>,
    /// Staff by sign-in id: their names for consoles, and the whole entry for the ledger.
    pub(crate) staff: HashMap<String, crate::registry::Staff>,
    /// Each station's responders, for [`Matching::OwnStation`].
    pub(crate) by_station: HashMap<StationId, Vec<ResponderId>>,
    /// The roster, with each responder's duty and last known position.
    pub(crate) responders: HashMap<ResponderId, Responder>,
    pub(crate) matcher: Matcher,
    pub(crate) open: BTreeMap<IncidentId, Incident>,
    /// The responders holding a live offer on an open incident that holds two or more
    /// (parallel offers), by where they are: where an emergency with no one free may take an
    /// extra offer from (`Candidates::best_extra_offer`), found without reading every open
    /// incident. Kept by [`Engine::record`], the one way an open incident changes, on insert
    /// and removal, and wherever a responder's position changes.
    pub(crate) extras: crate::matcher::ExtraOffers,
    /// Responders holding an offer or a job, and on which incident.
    pub(crate) busy: HashMap<ResponderId, IncidentId>,
    /// Every open incident's earliest deadline, in time order.
    pub(crate) timers: BTreeSet<(Timestamp, IncidentId)>,
    /// The entry each incident has in `timers`, so it can be moved.
    pub(crate) deadlines: BTreeMap<IncidentId, Timestamp>,
    /// Responders' phone fixes by time, so stale ones can be retired in order.
    pub(crate) fixes: BTreeSet<(Timestamp, ResponderId)>,
    pub(crate) fix_at: HashMap<ResponderId, Timestamp>,
    /// Dispatchers with a console connected, and when the others' claims end.
    pub(crate) presence: presence::Presence,
    seen: SeenMessages,
    /// `seen` in arrival order, so old ids can be forgotten.
    seen_order: VecDeque<(Timestamp, DeviceId, MessageId)>,
    /// The zones this engine runs, each with the last numbers it handed out there.
    pub(crate) counters: BTreeMap<crate::zone::Zone, Counters>,
    /// Devices by when they next need looking at (a lazy queue: an entry is checked when it
    /// comes up, and put back at the device's true deadline).
    pub(crate) health_due: std::collections::BinaryHeap<std::cmp::Reverse<(Timestamp, DeviceId)>>,
    /// Silence before this is the centre's (a restart, the broker link down), not a device's.
    pub(crate) health_floor: Timestamp,
    /// Devices whose health changed since the last snapshot.
    pub(crate) health_dirty: Vec<DeviceId>,
    /// The device models' names, each once; a device holds an index into it.
    pub(crate) model_names: Vec<std::sync::Arc<str>>,
    /// Elders living alone watched for inactivity, with their learned hours.
    pub(crate) activity: HashMap<ElderId, crate::activity::ElderActivity>,
    /// Watched elders by when they next need looking at (lazy, like `health_due`).
    pub(crate) activity_due: std::collections::BinaryHeap<std::cmp::Reverse<(Timestamp, ElderId)>>,
    /// Watched elders whose activity changed since the last snapshot.
    pub(crate) activity_dirty: Vec<ElderId>,
    /// Elders with a welfare schedule: their calls and visits (see [`crate::programme`]).
    pub(crate) programme: HashMap<ElderId, crate::programme::ElderProgramme>,
    /// Elders on the programme by when they next need looking at (lazy).
    pub(crate) programme_due: std::collections::BinaryHeap<std::cmp::Reverse<(Timestamp, ElderId)>>,
    pub(crate) programme_dirty: Vec<ElderId>,
    /// Carers' visits and help, and when each visit is next due.
    pub(crate) carers: carers::Carers,
    /// The ledger's telephone numbers and the calls ringing (see [`crate::telephony`]).
    pub(crate) telephony: calls::Telephony,
    /// Home-care providers and their orders (see [`crate::service`]).
    pub(crate) services: services::Services,
    /// Neighbouring zones' responders, read-only (their records are in `responders` too):
    /// asked for across the border, never offered before their zone holds them.
    pub(crate) neighbours: border::Neighbours,
}

impl Engine {
    pub fn new(policy: Policy, registry: Registry, resume: Resume) -> Self {
        let mut counters: BTreeMap<_, _> = resume.counters.iter().map(|(z, c)| (*z, c.within(*z))).collect();
        if counters.is_empty() {
            counters.insert(crate::zone::Zone::FIRST, Counters::default());
        }
        let offered = resume.open.iter().flat_map(|i| i.ladder.offers.iter().map(|o| (o.responder_id.clone(), i.id)));
        let on_job = resume
            .open
            .iter()
            .filter(|i| i.state.has_responder_on_job())
            .filter_map(|i| i.responder.as_ref().map(|r| (r.id.clone(), i.id)));
        // Held for another zone's incident: theirs until that zone lets them go. A hold for an
        // incident of a zone run here is what that incident's own offer or job says already.
        let held = resume
            .holds
            .iter()
            .filter(|(_, i)| !counters.contains_key(&crate::zone::Zone::of(i.0)))
            .map(|(r, i)| (r.clone(), *i));
        let busy: HashMap<ResponderId, IncidentId> = offered.chain(on_job).chain(held).collect();
        let mut by_station: HashMap<StationId, Vec<ResponderId>> = HashMap::default();
        for r in &registry.responders {
            by_station.entry(r.station_id.clone()).or_default().push(r.id.clone());
        }
        let matcher = Matcher::new(
            registry
                .responders
                .iter()
                .filter(|r| r.on_duty && r.provider_id.is_none() && !busy.contains_key(&r.id))
                .map(|r| (r.id.clone(), r.position)),
            registry.stations.iter().map(|s| (s.id.clone(), s.position)),
        );
        let mut engine = Self {
            policy,
            elders: registry
                .elders
                .into_iter()
                .map(|mut e| {
                    e.profile.name_contacts();
                    (e.id.clone(), e)
                })
                .collect(),
            devices: HashMap::with_capacity_and_hasher(registry.devices.len(), Default::default()),
            device_incidents: BTreeMap::new(),
            stations: registry.stations.into_iter().map(|s| (s.id.clone(), s)).collect(),
            responders: registry.responders.into_iter().map(|r| (r.id.clone(), r)).collect(),
            matcher,
            staff: registry.staff.into_iter().map(|s| (s.id.clone(), s)).collect(),
            by_station,
            open: BTreeMap::new(),
            extras: Default::default(),
            busy,
            timers: BTreeSet::new(),
            deadlines: BTreeMap::new(),
            fixes: BTreeSet::new(),
            fix_at: HashMap::default(),
            presence: presence::Presence::default(),
            seen: SeenMessages::default(),
            seen_order: VecDeque::new(),
            // Each counter goes on from its zone's highest stored number (its base if none).
            counters,
            health_due: Default::default(),
            health_floor: Timestamp(0),
            health_dirty: Vec::new(),
            model_names: Vec::new(),
            activity: HashMap::default(),
            activity_due: Default::default(),
            activity_dirty: Vec::new(),
            programme: HashMap::default(),
            programme_due: Default::default(),
            programme_dirty: Vec::new(),
            carers: carers::Carers::default(),
            telephony: calls::Telephony::default(),
            services: services::Services::default(),
            neighbours: border::Neighbours::default(),
        };
        let mut sims = Vec::new();
        for d in registry.devices {
            let state = engine.device_state(d.elder_id, d.model);
            if let Some(sim) = d.sim {
                sims.push((d.id.clone(), sim));
            }
            engine.devices.insert(d.id, state);
        }
        engine.index_numbers(sims);
        engine.restore_health(&resume.health);
        engine.restore_activity(&resume.activity);
        engine.enrol_programme();
        engine.restore_programme(&resume.programme);
        for incident in resume.open {
            let id = incident.id;
            // A device taken out of the ledger since leaves its incident to the dispatchers:
            // its presses are refused as unknown.
            if engine.devices.contains_key(&incident.device_id) {
                if incident.welfare == Some(WelfareReason::Inactive) {
                    if let Some(a) = engine.activity.get_mut(&incident.elder_id) {
                        a.open = Some(id);
                    }
                } else if let Some(reason) = incident.welfare.filter(|r| r.is_programme()) {
                    if let Some(p) = engine.programme.get_mut(&incident.elder_id) {
                        match reason {
                            WelfareReason::ScheduledVisit => p.visit_open = Some(id),
                            _ => p.call_open = Some(id),
                        }
                    }
                } else if incident.kind == IncidentKind::Welfare {
                    engine.device_incidents.entry(incident.device_id.clone()).or_default().welfare = Some(id);
                } else {
                    engine.device_incidents.entry(incident.device_id.clone()).or_default().open = Some(id);
                }
            }
            engine.open.insert(id, incident);
            engine.index_offers(id);
            engine.reschedule(id);
        }
        // Phone fixes keep their age across a restart, and go stale on time.
        let phone_fixes: Vec<_> =
            engine.responders.values().filter_map(|r| r.position_at.map(|t| (t, r.id.clone()))).collect();
        for (t, id) in phone_fixes {
            engine.fix_at.insert(id.clone(), t);
            engine.fixes.insert((t, id));
        }
        engine.restore_carers(resume.visits);
        engine.restore_calls();
        engine.restore_services(registry.providers, resume.orders);
        for (at, device, msg) in resume.recent_messages {
            engine.remember(at, device, msg);
        }
        engine
    }

    /// A device's state as enrolled: its elder's id shared with the elder's entry, its
    /// model's name with every other device of the model.
    pub(crate) fn device_state(&mut self, elder_id: ElderId, model: Option<String>) -> DeviceState {
        let elder_id = match self.elders.get_key_value(&elder_id) {
            Some((shared, _)) => shared.clone(),
            None => elder_id,
        };
        let model = match model {
            None => 0,
            Some(m) => match self.model_names.iter().position(|n| **n == *m) {
                Some(i) => i + 1,
                None if self.model_names.len() < usize::from(u16::MAX) => {
                    self.model_names.push(m.into());
                    self.model_names.len()
                }
                // Beyond 65,534 distinct models (no ledger has so many) a device is timed by
                // the default model's window.
                None => 0,
            },
        };
        DeviceState { elder_id, health: Default::default(), model: model as u16 }
    }

    /// A device's model's name, as the ledger gave it.
    pub(crate) fn model_name(names: &[std::sync::Arc<str>], model: u16) -> Option<&str> {
        usize::from(model).checked_sub(1).and_then(|i| names.get(i)).map(|n| &**n)
    }

    /// A device's incidents (none for a device with none, or not in the ledger).
    pub(crate) fn incidents_of(&self, device: &DeviceId) -> DeviceIncidents {
        self.device_incidents.get(device).copied().unwrap_or_default()
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

    /// The open incident of a device in the ledger.
    pub(crate) fn open_of(&self, device: &DeviceId) -> Option<IncidentId> {
        self.incidents_of(device).open
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

    /// The zones this engine runs and the last numbers it handed out in each: what a store
    /// would resume it with.
    pub fn counters(&self) -> BTreeMap<crate::zone::Zone, Counters> {
        self.counters.clone()
    }

    /// The zones this engine runs.
    pub fn zones(&self) -> impl Iterator<Item = crate::zone::Zone> + '_ {
        self.counters.keys().copied()
    }

    /// The last event's sequence number of each zone: where the consoles' feed stands.
    pub fn last_seqs(&self) -> Vec<u64> {
        self.counters.values().map(|c| c.seq).collect()
    }

    /// `zone`'s counters. Every zone the engine's ledger holds is one it runs (its registry is
    /// those zones' part); one it does not starts at the zone's base.
    pub(crate) fn counters_of(&mut self, zone: crate::zone::Zone) -> &mut Counters {
        self.counters.entry(zone).or_insert_with(|| Counters::default().within(zone))
    }

    /// The zone a station is in (zone 0 for one not in the ledger).
    pub(crate) fn zone_of_station(&self, station: &StationId) -> crate::zone::Zone {
        self.stations.get(station).map_or(crate::zone::Zone::FIRST, |s| s.zone)
    }

    /// The zone an elder is in: their station's; zone 0 for one enrolled with none.
    pub(crate) fn zone_of_elder(&self, elder: &ElderId) -> crate::zone::Zone {
        self.zone_of_enrolment(self.elders.get(elder).and_then(|e| e.profile.station_id.as_ref()))
    }

    /// The zone of an elder enrolled with `station` (zone 0 for none).
    pub(crate) fn zone_of_enrolment(&self, station: Option<&StationId>) -> crate::zone::Zone {
        station.map_or(crate::zone::Zone::FIRST, |s| self.zone_of_station(s))
    }

    /// A new incident's number, in `zone`.
    pub(crate) fn next_incident_id(&mut self, zone: crate::zone::Zone) -> IncidentId {
        let c = self.counters_of(zone);
        c.incident += 1;
        IncidentId(c.incident)
    }

    /// The next event's sequence number in `zone`.
    pub(super) fn next_seq(&mut self, zone: crate::zone::Zone) -> u64 {
        let c = self.counters_of(zone);
        c.seq += 1;
        c.seq
    }

    /// Changes incident `id` the only way an incident changes: applies `change` and logs
    /// it, under the next sequence number of the incident's zone.
    pub(crate) fn record(&mut self, id: IncidentId, change: Change, actor: Actor, now: Timestamp, out: &mut Outbox) {
        let seq = self.next_seq(crate::zone::Zone::of(id.0));
        let event = IncidentEvent { seq, incident_id: id, at: now, actor, change };
        self.open.get_mut(&id).expect("an open incident").apply(&event, &self.policy);
        self.index_offers(id);
        let notice = self.notice_for(id, &event.change);
        out.events.push(event);
        if let Some(notice) = notice {
            self.tell_family(id, notice, now, out);
        }
    }

    /// The responders indexed as holding extra offers, each with the incident and the point
    /// they are indexed at, by id (for the simulation's checks).
    #[doc(hidden)]
    pub fn extra_offers_indexed(&self) -> Vec<(ResponderId, IncidentId, [f64; 3])> {
        self.extras.entries()
    }

    /// Keeps [`Engine::extras`] true to incident `id`'s live offers.
    pub(crate) fn index_offers(&mut self, id: IncidentId) {
        let offers = match self.open.get(&id) {
            Some(incident) if incident.ladder.offers.len() >= 2 => incident.ladder.offers.as_slice(),
            _ => &[],
        };
        let responders = &self.responders;
        self.extras.set(
            id,
            offers.iter().filter_map(|o| responders.get(&o.responder_id).map(|r| (&o.responder_id, r.position))),
        );
    }

    /// A responder's position changed: the indexes that hold them by it follow.
    pub(crate) fn responder_placed(&mut self, id: &ResponderId, at: crate::geo::Coordinates) {
        self.matcher.move_responder(id, at);
        self.extras.moved(id, at);
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

    /// Emits the incident, reschedules its timers, and forgets it once its life is over.
    pub(crate) fn after_change(&mut self, id: IncidentId, out: &mut Outbox) {
        self.emit(id, out);
        self.reschedule(id);
        if self.open[&id].state.is_terminal() {
            let incident = self.open.remove(&id).expect("open");
            self.index_offers(id);
            if let Some(device) = self.device_incidents.get_mut(&incident.device_id) {
                if device.open == Some(id) {
                    device.open = None;
                    device.last_press = None;
                }
                if device.welfare == Some(id) {
                    device.welfare = None;
                }
                if *device == DeviceIncidents::default() {
                    self.device_incidents.remove(&incident.device_id);
                }
            }
            if incident.welfare == Some(WelfareReason::Inactive) {
                self.inactivity_check_ended(&incident.elder_id, id, incident.updated_at);
            }
            if incident.welfare.is_some_and(WelfareReason::is_programme) {
                self.programme_task_closed(&incident.elder_id, id);
            }
            if incident.carer.is_some() {
                self.carer_incident_ended(&incident, out);
            }
            self.calls_ended_with(&incident);
            self.unschedule(id);
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every device in the ledger has one of these, a million in a province: what only a
    /// device with an incident needs is kept apart, so that the table stays small.
    #[test]
    fn a_device_costs_the_engine_48_bytes_of_state() {
        assert_eq!(std::mem::size_of::<super::DeviceState>(), 48);
        assert_eq!(std::mem::size_of::<crate::health::DeviceHealth>(), 24);
    }
}
