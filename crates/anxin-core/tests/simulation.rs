//! Deterministic simulation: a seeded generator drives the engine through random presses,
//! repeats, cancels, responders' answers, moves and duty changes, dispatchers' commands and
//! clock jumps, and checks the promises after every step:
//!
//! - at most one open incident per device;
//! - no responder holds two offers or jobs, and a responder is offered only when on duty and free;
//! - every offer, station alert, reminder and arrival deadline is acted on by its time;
//! - every open incident is offered, held by a responder, with the station, with a
//!   dispatcher, or resolved and waiting to be closed: none is forgotten;
//! - the ladder never skips a rung.
//!
//! `cargo test -p anxin-core --test simulation` runs a fixed budget (10 seeds × 100,000 steps).
//! `ANXIN_SIM_SEEDS=200 ANXIN_SIM_STEPS=200000` runs more; a failure prints its seed, and
//! `ANXIN_SIM_SEED=<seed>` replays exactly that run.

use anxin_core::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet};

const T0: Timestamp = Timestamp(1_763_000_000_000);
const DEVICES: usize = 40;
const RESPONDERS: usize = 12;
const STATIONS: usize = 3;

fn coords(rng: &mut SmallRng) -> Coordinates {
    Coordinates::new(rng.random_range(24.98..25.04), rng.random_range(102.66..102.72)).unwrap()
}

fn world(rng: &mut SmallRng) -> Registry {
    let mut r = Registry::default();
    for s in 0..STATIONS {
        r.stations.push(Station {
            id: StationId::parse(format!("s{s}")).unwrap(),
            name: format!("s{s}"),
            position: coords(rng),
            phone: None,
            service_circle_min: None,
        });
    }
    for i in 0..DEVICES {
        r.elders.push(Elder {
            id: ElderId::parse(format!("e{i}")).unwrap(),
            name: format!("e{i}"),
            address: String::new(),
            home: coords(rng),
            phone: None,
            notes: String::new(),
        });
        r.devices.push(Device {
            id: DeviceId::parse(format!("d{i}")).unwrap(),
            elder_id: ElderId::parse(format!("e{i}")).unwrap(),
        });
    }
    for i in 0..RESPONDERS {
        r.responders.push(Responder {
            id: ResponderId::parse(format!("r{i}")).unwrap(),
            name: format!("r{i}"),
            station_id: StationId::parse(format!("s{}", i % STATIONS)).unwrap(),
            phone: None,
            position: coords(rng),
            on_duty: rng.random_bool(0.8),
            mode: [TravelMode::Foot, TravelMode::Ebike, TravelMode::Car][rng.random_range(0..3)],
            skills: if rng.random_bool(0.7) { vec!["first_aid".into()] } else { vec![] },
            position_at: None,
            token_sha256: None,
        });
    }
    r
}

/// What the checker remembers of each incident's history, from the events it has seen.
#[derive(Default)]
struct History {
    /// The state the last delta showed.
    state: Option<IncidentState>,
    engine_offers_since_climb: u32,
    nobody_in_range: bool,
    station_alerted: bool,
    dispatcher_touched: bool,
}

struct Sim {
    seed: u64,
    rng: SmallRng,
    engine: Engine,
    policy: Policy,
    registry: Registry,
    now: Timestamp,
    step: u64,
    sent: HashMap<usize, Vec<String>>,
    msg_no: u64,
    history: HashMap<IncidentId, History>,
    /// A digest of every event, to show that a seed replays identically.
    digest: u64,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let registry = world(&mut rng);
        let policy = Policy { max_offer_distance_m: 3_000.0, ..Policy::default() };
        let engine = Engine::new(policy.clone(), registry.clone(), Resume::default());
        Sim {
            seed,
            rng,
            engine,
            policy,
            registry,
            now: T0,
            step: 0,
            sent: HashMap::new(),
            msg_no: 0,
            history: HashMap::new(),
            digest: 0,
        }
    }

    fn fail(&self, what: String) -> ! {
        panic!("seed {} step {}: {what}\nreplay with ANXIN_SIM_SEED={}", self.seed, self.step, self.seed);
    }

    fn run(&mut self, steps: u64) {
        for _ in 0..steps {
            self.step += 1;
            let mut out = Outbox::default();
            self.advance_clock(&mut out);
            self.check_deadlines();
            let ticked = std::mem::take(&mut out);
            self.absorb(&ticked);
            let single_action = self.act(&mut out);
            self.absorb(&out);
            self.check_invariants(single_action.then_some(&out));
        }
    }

    fn advance_clock(&mut self, out: &mut Outbox) {
        let ms = match self.rng.random_range(0..100) {
            0..70 => self.rng.random_range(0..5_000),
            70..95 => self.rng.random_range(5_000..90_000),
            _ => self.rng.random_range(300_000..2_400_000),
        };
        self.now = self.now.plus_millis(ms);
        self.engine.tick(self.now, out);
    }

    fn device(&mut self) -> (usize, DeviceId) {
        let n = self.rng.random_range(0..DEVICES);
        (n, DeviceId::parse(format!("d{n}")).unwrap())
    }

    fn responder(&mut self) -> ResponderId {
        ResponderId::parse(format!("r{}", self.rng.random_range(0..RESPONDERS))).unwrap()
    }

    fn any_open(&mut self) -> Option<IncidentId> {
        let ids: Vec<_> = self.engine.open_incidents().map(|i| i.id).collect();
        (!ids.is_empty()).then(|| ids[self.rng.random_range(0..ids.len())])
    }

    /// One random input. Returns whether it was a single command (not a tick).
    fn act(&mut self, out: &mut Outbox) -> bool {
        let now = self.now;
        match self.rng.random_range(0..100) {
            0..25 => {
                let (n, device) = self.device();
                self.msg_no += 1;
                let msg = format!("m{}", self.msg_no);
                self.sent.entry(n).or_default().push(msg.clone());
                let event =
                    [EventType::Sos, EventType::Sos, EventType::Fall, EventType::Service][self.rng.random_range(0..4)];
                let fix = if self.rng.random_bool(0.5) {
                    FixReport::Valid(Fix { at: coords(&mut self.rng), accuracy_m: Some(20.0) })
                } else {
                    FixReport::Absent
                };
                let ev = DeviceEvent { msg_id: MessageId::parse(msg).unwrap(), event, device_ts: now, fix };
                self.engine.handle_device_event(&device, ev, now, out).unwrap();
            }
            25..30 => {
                let (n, device) = self.device();
                if let Some(msgs) = self.sent.get(&n).filter(|m| !m.is_empty()) {
                    let msg = msgs[self.rng.random_range(0..msgs.len())].clone();
                    let ev = DeviceEvent {
                        msg_id: MessageId::parse(msg).unwrap(),
                        event: EventType::Sos,
                        device_ts: now,
                        fix: FixReport::Absent,
                    };
                    self.engine.handle_device_event(&device, ev, now, out).unwrap();
                }
            }
            30..33 => {
                let (_, device) = self.device();
                self.msg_no += 1;
                let ev = DeviceEvent {
                    msg_id: MessageId::parse(format!("c{}", self.msg_no)).unwrap(),
                    event: EventType::Cancel,
                    device_ts: now,
                    fix: FixReport::Absent,
                };
                self.engine.handle_device_event(&device, ev, now, out).unwrap();
            }
            33..35 => {
                let (_, device) = self.device();
                self.msg_no += 1;
                let fp = MessageId::parse(format!("raw-{}", self.msg_no)).unwrap();
                self.engine.handle_unreadable(&device, "test", fp, now, out).unwrap();
            }
            35..70 => {
                let responder = self.responder();
                // Mostly act on what they hold; sometimes on something else (must be refused).
                let holds = |i: &&Incident| i.state == IncidentState::Offered || i.state.has_responder_on_job();
                let held = self
                    .engine
                    .open_incidents()
                    .filter(holds)
                    .find(|i| i.responder.as_ref().map(|r| &r.id) == Some(&responder))
                    .map(|i| i.id);
                let target = if self.rng.random_bool(0.9) { held.or_else(|| self.any_open()) } else { self.any_open() };
                if let Some(id) = target {
                    let action = match self.rng.random_range(0..10) {
                        0..3 => ResponderAction::Accept,
                        3..5 => ResponderAction::Decline,
                        5..7 => ResponderAction::EnRoute,
                        7..9 => ResponderAction::OnScene,
                        _ => ResponderAction::Resolve { outcome: "helped".into() },
                    };
                    let mine = held == Some(id);
                    let result = self.engine.responder_acts(&responder, id, action, now, out);
                    if !mine && result.is_ok() {
                        self.fail(format!("{responder} acted on incident {id}, which is not theirs"));
                    }
                }
            }
            70..75 => {
                let responder = self.responder();
                let on = self.rng.random_bool(0.6);
                let _ = self.engine.set_duty(&responder, on, now, out);
            }
            75..85 => {
                let responder = self.responder();
                let at = coords(&mut self.rng);
                self.engine.responder_moved(&responder, at, now, out).unwrap();
            }
            _ => {
                if let Some(id) = self.any_open() {
                    let action = match self.rng.random_range(0..8) {
                        0 => DispatcherAction::Assign { responder: self.responder() },
                        1 => DispatcherAction::TakeOffLadder,
                        2 => DispatcherAction::Acknowledge,
                        3 => DispatcherAction::Resolve { outcome: "called back".into() },
                        4 | 5 => DispatcherAction::Close { outcome: "done".into() },
                        6 => DispatcherAction::Cancel { reason: "verified by phone".into() },
                        _ => DispatcherAction::FalseAlarm { reason: "pressed by mistake".into() },
                    };
                    if self.engine.dispatcher_acts("sim", id, action, now, out).is_ok() {
                        self.history.entry(id).or_default().dispatcher_touched = true;
                    }
                }
            }
        }
        true
    }

    /// Follows the events, checking the ladder's order as they come, and every change of
    /// state against the table of legal moves.
    fn absorb(&mut self, out: &Outbox) {
        for v in &out.deltas {
            let h = self.history.entry(v.id).or_default();
            if let Some(prev) = h.state.replace(v.state) {
                if prev != v.state && !prev.can_become(v.state) {
                    let (from, to) = (prev.as_str(), v.state.as_str());
                    self.fail(format!("incident {} moved from {from} to {to}, which is not allowed", v.id));
                }
            }
        }
        let max_offers = self.policy.max_responder_offers;
        for e in &out.events {
            self.digest = self.digest.rotate_left(5) ^ e.seq ^ (e.at.millis() as u64) ^ (e.incident_id.0 << 20);
            let h = self.history.entry(e.incident_id).or_default();
            match (&e.change, &e.actor) {
                (Change::KindChanged { .. }, _) => {
                    *h = History { dispatcher_touched: h.dispatcher_touched, state: h.state, ..History::default() }
                }
                (Change::Offered { .. }, Actor::Engine) => {
                    h.engine_offers_since_climb += 1;
                    if h.engine_offers_since_climb > max_offers {
                        let n = h.engine_offers_since_climb;
                        self.fail(format!("incident {} was offered {n} times, more than {max_offers}", e.incident_id));
                    }
                    if h.station_alerted && !h.dispatcher_touched {
                        self.fail(format!("incident {} went back to offers after the station", e.incident_id));
                    }
                }
                (Change::NobodyInRange { .. }, _) => h.nobody_in_range = true,
                (Change::StationAlerted { .. }, _) => {
                    if h.engine_offers_since_climb == 0 && !h.nobody_in_range {
                        self.fail(format!("incident {} skipped the responders' rung", e.incident_id));
                    }
                    h.station_alerted = true;
                }
                (Change::NobodyGoing { .. }, Actor::Engine) if !h.station_alerted => {
                    self.fail(format!("incident {} went to a dispatcher without the station's rung", e.incident_id));
                }
                _ => {}
            }
        }
    }

    fn check_deadlines(&self) {
        for i in self.engine.open_incidents() {
            let l = &i.ladder;
            for (what, t) in
                [("offer", l.offer_deadline), ("station alert", l.station_deadline), ("arrival", l.on_scene_by)]
            {
                if t.is_some_and(|t| t <= self.now) {
                    self.fail(format!("incident {}: the {what} deadline passed and nothing happened", i.id));
                }
            }
            if l.remind_at.is_some_and(|t| t <= self.now) {
                self.fail(format!("incident {}: a reminder is overdue", i.id));
            }
        }
    }

    fn check_invariants(&self, single: Option<&Outbox>) {
        let mut devices = HashSet::new();
        let mut holders: HashMap<&ResponderId, IncidentId> = HashMap::new();
        for i in self.engine.open_incidents() {
            if !devices.insert(&i.device_id) {
                self.fail(format!("device {} has two open incidents", i.device_id));
            }
            if self.engine.open_incident_for(&i.device_id).map(|o| o.id) != Some(i.id) {
                self.fail(format!("incident {} is not the open incident of its device", i.id));
            }
            if i.state.is_terminal() {
                self.fail(format!("incident {} is {} but still open", i.id, i.state.as_str()));
            }
            let holds = i.state == IncidentState::Offered || i.state.has_responder_on_job();
            match (&i.responder, holds) {
                (Some(r), true) => {
                    if let Some(other) = holders.insert(&r.id, i.id) {
                        self.fail(format!("responder {} holds incidents {other} and {}", r.id, i.id));
                    }
                }
                (None, true) => self.fail(format!("incident {} is {} with nobody", i.id, i.state.as_str())),
                // A resolved incident keeps the name of who helped; they are free again.
                (Some(_), false) if i.state == IncidentState::Resolved => {}
                (Some(_), false) => {
                    self.fail(format!("incident {} is {} but names a responder", i.id, i.state.as_str()))
                }
                (None, false) => {}
            }
            let held = match i.state {
                IncidentState::Offered => i.ladder.offer_deadline.is_some(),
                IncidentState::StationAlerted => i.ladder.station_deadline.is_some() || i.ladder.off_ladder,
                IncidentState::AwaitingDispatcher => i.dispatcher_needed.is_some(),
                IncidentState::Accepted | IncidentState::EnRoute | IncidentState::OnScene | IncidentState::Resolved => {
                    true
                }
                _ => false,
            };
            if !held {
                self.fail(format!("incident {} ({}) is held by nobody: {:?}", i.id, i.state.as_str(), i));
            }
        }
        for r in &self.registry.responders {
            let on_duty = self.engine.responder(&r.id).unwrap().on_duty;
            let should_be_available = on_duty && !holders.contains_key(&r.id);
            if self.engine.matcher().is_available(&r.id) != should_be_available {
                self.fail(format!(
                    "responder {} availability is wrong (on duty {on_duty}, holds {:?})",
                    r.id,
                    holders.get(&r.id)
                ));
            }
            if !on_duty
                && holders
                    .get(&r.id)
                    .is_some_and(|id| self.engine.incident(*id).unwrap().state == IncidentState::Offered)
            {
                self.fail(format!("off-duty responder {} holds an offer", r.id));
            }
        }
        // After a single command that alerted a station, the ladder had nobody left to offer.
        if let Some(out) = single {
            for e in &out.events {
                if let Change::StationAlerted { .. } = e.change {
                    let i = self.engine.incident(e.incident_id).unwrap();
                    if i.ladder.offers_made < self.policy.max_responder_offers {
                        if let Some((r, _)) = self.engine.best_candidate(i.id) {
                            self.fail(format!("incident {} went to the station while {r} could have gone", i.id));
                        }
                    }
                }
            }
        }
    }
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn the_promises_hold_for_every_seed() {
    let steps = env("ANXIN_SIM_STEPS", 100_000);
    let seeds: Vec<u64> = match std::env::var("ANXIN_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("ANXIN_SIM_SEED is a number")],
        Err(_) => (1..=env("ANXIN_SIM_SEEDS", 10)).collect(),
    };
    let mut opened = 0;
    for seed in seeds {
        let mut sim = Sim::new(seed);
        sim.run(steps);
        opened += sim.history.len();
    }
    assert!(opened > 1_000, "the simulation exercised only {opened} incidents");
}

#[test]
fn a_seed_replays_identically() {
    let mut a = Sim::new(42);
    a.run(20_000);
    let mut b = Sim::new(42);
    b.run(20_000);
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.engine.last_seq(), b.engine.last_seq());
    let mut c = Sim::new(43);
    c.run(20_000);
    assert_ne!(a.digest, c.digest, "a different seed is a different run");
}
