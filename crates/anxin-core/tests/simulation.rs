//! Deterministic simulation: a seeded generator drives the engine through random presses,
//! repeats, cancels, responders' answers, moves and duty changes, dispatchers' commands and
//! clock jumps, and checks the promises after every step:
//!
//! - at most one open incident per device;
//! - no responder holds two offers or jobs, and a responder is offered only when on duty and free;
//! - every offer, station alert, reminder and arrival deadline is acted on by its time;
//! - every open incident is offered, held by a responder, with the station, with a
//!   dispatcher, or resolved and waiting to be closed: none is forgotten;
//! - the ladder never skips a rung, never offers more than its kind allows (in all, or at once
//!   when offers go out in parallel), and nobody who could have gone is passed over, nor
//!   (where extra offers yield) anybody holding one of another incident's extra parallel
//!   offers who could have gone;
//! - the log and the state tell one story: every incident row the engine hands out to be
//!   stored equals what replaying that incident's logged changes with `Incident::apply`,
//!   from `Incident::open`, gives;
//! - the alarm: every incident opens with one; nobody going and a missed arrival always leave
//!   a critical one up; an alarm goes only by a person's hand (a dispatcher's command, a
//!   responder taking or finishing the job) or with the incident's end, never by the engine's;
//!   no resolved or ended incident alarms; a dispatcher who signed out holds no claim;
//! - the welfare programme: a call or visit that fell due is open; an unanswered call is tried
//!   again a retry later, and after the last try a visit opens at once; an answered one is done
//!   and falls due a period later; the overdue count is the open tasks `overdue_after` past their due time;
//! - carers: a check-in is taken if and only if it is within the radius of the elder's home
//!   (and the carer is on no other visit); a carer overdue on a visit has a lone-worker alarm
//!   up by the time it is due, and none before; help opens the carer's SOS, which climbs
//!   the ladder like any other and tells no family;
//! - calls to the hotline: a known number rings on its elder's device (joining what is open
//!   there), any other on its stand-in, one open incident a number; a dispatcher who answers
//!   holds the incident; an answer or an end for a call never heard ringing changes nothing;
//!   the calls, their forwarding and their alarms replay from the log like everything else;
//! - service orders: a provider never holds more orders (offered or taken on) a day than its
//!   capacity; an elder's allowance never pays more in a month than it holds; a worker's
//!   check-in is taken if and only if it is within the radius of the elder's home; no offer
//!   outlives its deadline past a tick; the ladder never offers a service worker an
//!   emergency; and every order's row is what replaying its log gives.
//!
//! Each seed draws its own ladders per kind (offers, parallel offers, station rung or not),
//! whether extra parallel offers yield to an emergency with none, and sometimes matches by the
//! elder's own station instead of the nearest responder.
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
/// Carers (`k0`...): responders with the skill `carer`, off duty for emergencies.
const CARERS: usize = 3;
/// Service providers and workers (each provider's workers are `w<provider>-<n>`).
const PROVIDERS: usize = 3;
const WORKERS_EACH: usize = 2;
const CATEGORIES: [&str; 3] = ["cleaning", "meals", "repair"];

fn coords(rng: &mut SmallRng) -> Coordinates {
    Coordinates::new(rng.random_range(24.98..25.04), rng.random_range(102.66..102.72)).unwrap()
}

/// None to three contacts, told in order: any channel, some with quiet hours, some taking no
/// service news.
fn contacts(rng: &mut SmallRng) -> Vec<Contact> {
    (0..rng.random_range(0..4))
        .map(|c| Contact {
            name: format!("k{c}"),
            relation: "家属".into(),
            phone: format!("1370000{c:04}"),
            channel: [Channel::Sms, Channel::Voice, Channel::Push][rng.random_range(0..3)],
            quiet_hours: rng.random_bool(0.5).then_some(QuietHours { from: 22 * 60, to: 7 * 60 }),
            service_news: rng.random_bool(0.7),
            ..Contact::default()
        })
        .collect()
}

fn world(rng: &mut SmallRng) -> Registry {
    let mut r = Registry::default();
    for s in 0..STATIONS {
        r.stations.push(Station {
            id: StationId::parse(format!("s{s}")).unwrap(),
            name: format!("s{s}"),
            position: coords(rng),
            // Most stations have a duty line an unanswered call can go to.
            phone: (s % 4 != 3).then(|| format!("0871-6800{s:04}")),
            service_circle_min: None,
            zone: Default::default(),
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
            // Half live alone: those whose device reports movement are watched for inactivity.
            profile: ElderProfile {
                contacts: contacts(rng),
                lives_alone: Some(rng.random_bool(0.5)),
                // A third are on the welfare programme: calls every day or two, visits now and then.
                schedule: if rng.random_bool(0.33) {
                    WelfareSchedule {
                        call_every_days: Some(rng.random_range(1..3)),
                        visit_every_days: rng.random_bool(0.5).then(|| rng.random_range(2..8)),
                    }
                } else {
                    WelfareSchedule::default()
                },
                ..Default::default()
            },
        });
        // Half the devices can dial (a SIM); a few elders have a phone of their own.
        r.devices.push(Device {
            id: DeviceId::parse(format!("d{i}")).unwrap(),
            elder_id: ElderId::parse(format!("e{i}")).unwrap(),
            model: None,
            sim: (i % 2 == 0).then(|| sim_number(i)),
        });
        if i % 5 == 1 {
            r.elders.last_mut().expect("pushed").phone = Some(elder_number(i));
        }
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
            provider_id: None,
        });
    }
    for i in 0..CARERS {
        r.responders.push(Responder {
            id: ResponderId::parse(format!("k{i}")).unwrap(),
            name: format!("k{i}"),
            station_id: StationId::parse(format!("s{}", i % STATIONS)).unwrap(),
            phone: None,
            position: coords(rng),
            on_duty: false,
            mode: TravelMode::Foot,
            skills: vec!["carer".into()],
            position_at: None,
            token_sha256: None,
            provider_id: None,
        });
    }
    // Home-care providers: some serve every station's circle, some a drawn square; each
    // offers two of three categories with a small daily capacity, some only by day.
    for p in 0..PROVIDERS {
        let centre = coords(rng);
        let (x, y, d) = (centre.lon() - 0.03, centre.lat() - 0.03, 0.06);
        let area = if p % 2 == 0 {
            anxin_core::ServiceArea::Stations { stations: r.stations.iter().map(|s| s.id.clone()).collect() }
        } else {
            anxin_core::ServiceArea::Polygon {
                coordinates: vec![vec![[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]],
            }
        };
        let offers = CATEGORIES
            .iter()
            .enumerate()
            .filter(|(c, _)| *c != p % CATEGORIES.len())
            .map(|(_, c)| anxin_core::service::ProviderOffer {
                category: (*c).to_string(),
                price_fen: rng.random_range(20..200) * 100,
                daily_capacity: rng.random_range(1..4),
            })
            .collect();
        let hours = if rng.random_bool(0.5) {
            anxin_core::service::Hours::parse("08:00-20:00").unwrap()
        } else {
            Default::default()
        };
        let id = ProviderId::parse(format!("p{p}")).unwrap();
        r.providers.push(Provider { id: id.clone(), name: format!("p{p}"), phone: None, offers, area, hours });
        for n in 0..WORKERS_EACH {
            r.responders.push(Responder {
                id: ResponderId::parse(format!("w{p}-{n}")).unwrap(),
                name: format!("w{p}-{n}"),
                station_id: StationId::parse(format!("s{}", p % STATIONS)).unwrap(),
                phone: None,
                position: coords(rng),
                on_duty: rng.random_bool(0.8),
                mode: TravelMode::Ebike,
                skills: vec!["first_aid".into()],
                position_at: None,
                token_sha256: None,
                provider_id: Some(id.clone()),
            });
        }
    }
    for e in &mut r.elders {
        e.profile.need_level = [None, Some(1), Some(2), Some(3)][rng.random_range(0..4)];
    }
    // The dispatchers, whose SIP users answer calls (a call answered by anybody else, a
    // station's duty line, takes nothing).
    for id in ["wang", "li", "zhao"] {
        r.staff.push(Staff {
            id: id.into(),
            name: id.into(),
            role: StaffRole::Dispatcher,
            password_hash: String::new(),
        });
    }
    r
}

/// `north_m` and `east_m` metres from `at`.
fn offset(at: Coordinates, north_m: f64, east_m: f64) -> Coordinates {
    let lat = at.lat() + north_m / 111_320.0;
    Coordinates::new(lat, at.lon() + east_m / (111_320.0 * lat.to_radians().cos())).unwrap()
}

/// What the checker remembers of each incident's history, from the events it has seen.
#[derive(Default)]
struct History {
    /// The state the last delta showed.
    state: Option<IncidentState>,
    kind: Option<IncidentKind>,
    /// The most parallel offers any kind it has had allows (offers made under one kind stay
    /// out when it becomes another).
    parallel_allowed: u32,
    engine_offers_since_climb: u32,
    nobody_in_range: bool,
    station_alerted: bool,
    dispatcher_touched: bool,
}

/// Device `d{i}`'s SIM number (even `i` only).
fn sim_number(i: usize) -> String {
    format!("1390000{i:04}")
}

/// Elder `e{i}`'s own phone (`i % 5 == 1` only), written as people write a landline.
fn elder_number(i: usize) -> String {
    format!("0871-6{i:07}")
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
    /// Each incident as its logged changes alone make it, replayed as they come.
    replayed: HashMap<IncidentId, Incident>,
    /// What the family's side did: notifications, escalations to a later contact, answers.
    family: FamilyStats,
    /// Calls to the hotline heard ringing and not yet heard to end, by call id.
    calls: Vec<String>,
    call_no: u64,
    /// Every service order's last row, and each as its log alone makes it.
    orders: HashMap<OrderId, ServiceOrder>,
    orders_replayed: HashMap<OrderId, ServiceOrder>,
}

#[derive(Default, Debug, Clone, Copy)]
struct FamilyStats {
    told: u64,
    later_contacts: u64,
    answers: u64,
    exhausted: u64,
    /// Welfare checks opened (for a silent, switched-off or flat device), and device news.
    welfare: u64,
    device_news: u64,
    /// Of the welfare checks, those for an elder's inactivity.
    inactive: u64,
    /// Of the welfare checks, the programme's scheduled calls and visits.
    scheduled: u64,
    /// Programme tasks ended unanswered, of them the last try (a visit sent instead).
    unanswered: u64,
    visits_instead: u64,
    /// Carers' check-ins taken and refused out of radius, lone-worker alarms, help presses.
    checked_in: u64,
    out_of_radius: u64,
    lone_worker: u64,
    carer_help: u64,
    /// Calls to the hotline: rung, answered by a dispatcher, forwarded when unanswered.
    calls: u64,
    calls_answered: u64,
    calls_forwarded: u64,
    /// Service orders: placed, taken on by a provider, worker check-ins taken and refused out
    /// of radius, confirmed, lapsed offers.
    orders: u64,
    orders_accepted: u64,
    order_checkins: u64,
    order_far: u64,
    orders_confirmed: u64,
    orders_lapsed: u64,
}

impl Sim {
    fn new(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let registry = world(&mut rng);
        let mut policy = Policy { max_offer_distance_m: 3_000.0, ..Policy::default() };
        // Some centres have a fallback number for calls nobody answers.
        if rng.random_bool(0.5) {
            policy.call_fallback_number = Some("13600000000".into());
        }
        for kind in IncidentKind::EMERGENCIES {
            let ladder = LadderPolicy {
                offers: rng.random_range(0..5),
                parallel: rng.random_range(1..4),
                station: rng.random_bool(0.7),
            };
            policy.ladders.insert(kind, ladder);
        }
        if rng.random_bool(0.25) {
            policy.matching = Matching::OwnStation;
        }
        policy.yield_extra_offers = rng.random_bool(0.5);
        // Short quiet spells and quick learning, so that checks for inactivity open, close
        // and are learned away within a run.
        policy.activity.quiet_hours = rng.random_range(1..4);
        policy.activity.learn_days = rng.random_range(1..4);
        // In some districts devices may be silent for most of a day: they seldom go offline,
        // so an elder's quiet (not a silent device) is what opens their checks.
        if rng.random_bool(0.5) {
            policy.health.default.factor = 200.0;
        }
        // Visits alarm after 30 minutes to two hours without a word.
        policy.carers.visit_max_ms = rng.random_range(30..120) * 60_000;
        // One to three unanswered calls before a visit is sent.
        policy.programme.max_tries = rng.random_range(1..=3);
        let mut engine = Engine::new(policy.clone(), registry.clone(), Resume::default());
        engine.start_presence(T0);
        engine.start_health(T0);
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
            replayed: HashMap::new(),
            family: FamilyStats::default(),
            calls: Vec::new(),
            call_no: 0,
            orders: HashMap::new(),
            orders_replayed: HashMap::new(),
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
            self.check_rounds();
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
                let event = [
                    EventType::Sos,
                    EventType::Sos,
                    EventType::Fall,
                    EventType::Service,
                    EventType::Smoke,
                    EventType::Intrusion,
                ][self.rng.random_range(0..6)];
                let fix = if self.rng.random_bool(0.5) {
                    FixReport::Valid(Fix { at: coords(&mut self.rng), accuracy_m: Some(20.0) })
                } else {
                    FixReport::Absent
                };
                let ev = DeviceEvent {
                    msg_id: MessageId::parse(msg).unwrap(),
                    event,
                    device_ts: now,
                    fix,
                    health: Default::default(),
                };
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
                        health: Default::default(),
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
                    health: Default::default(),
                };
                self.engine.handle_device_event(&device, ev, now, out).unwrap();
            }
            33..34 => {
                // What a device says of itself: a heartbeat (any battery, sometimes on its
                // charger), a low battery, or being switched off.
                let (_, device) = self.device();
                self.msg_no += 1;
                let (event, health) = match self.rng.random_range(0..12) {
                    0..7 => (
                        EventType::Heartbeat,
                        HealthReport {
                            battery_pct: Some(self.rng.random_range(0..=100)),
                            charging: self.rng.random_bool(0.2).then_some(true),
                            active: [None, Some(false), Some(true)][self.rng.random_range(0..3)],
                            ..HealthReport::default()
                        },
                    ),
                    7..9 => (EventType::LowBattery, HealthReport::default()),
                    9 => (EventType::PowerOff, HealthReport::default()),
                    _ => (EventType::Motion, HealthReport::default()),
                };
                let ev = DeviceEvent {
                    msg_id: MessageId::parse(format!("h{}", self.msg_no)).unwrap(),
                    event,
                    device_ts: now,
                    fix: FixReport::Absent,
                    health,
                };
                self.engine.handle_device_event(&device, ev, now, out).unwrap();
            }
            34..35 => {
                let (_, device) = self.device();
                self.msg_no += 1;
                let fp = MessageId::parse(format!("raw-{}", self.msg_no)).unwrap();
                self.engine.handle_unreadable(&device, "test", fp, now, out).unwrap();
            }
            35..70 => {
                let responder = self.responder();
                // Mostly act on what they hold; sometimes on something else (must be refused).
                let holds = |i: &&Incident| {
                    i.ladder.offers.iter().any(|o| o.responder_id == responder)
                        || (i.state.has_responder_on_job() && i.responder.as_ref().map(|r| &r.id) == Some(&responder))
                };
                let held = self.engine.open_incidents().find(holds).map(|i| i.id);
                let target = if self.rng.random_bool(0.9) { held.or_else(|| self.any_open()) } else { self.any_open() };
                if let Some(id) = target {
                    let action = match self.rng.random_range(0..10) {
                        0..3 => ResponderAction::Accept,
                        3..5 => ResponderAction::Decline { reason: None },
                        5..7 => ResponderAction::EnRoute,
                        7..9 => ResponderAction::OnScene,
                        9 if self.rng.random_bool(0.3) => ResponderAction::Withdraw { reason: "bike broke".into() },
                        _ => ResponderAction::Resolve { outcome: "helped".into() },
                    };
                    let mine = held == Some(id);
                    let result = self.engine.responder_acts(&responder, id, action, now, out);
                    if !mine && result.is_ok() {
                        self.fail(format!("{responder} acted on incident {id}, which is not theirs"));
                    }
                }
            }
            70..73 => {
                let responder = self.responder();
                let on = self.rng.random_bool(0.6);
                let _ = self.engine.set_duty(&responder, on, now, out);
            }
            73..75 => {
                // A dispatcher's console comes or goes, or they sign out.
                let name = ["wang", "li", "zhao"][self.rng.random_range(0..3)];
                match self.rng.random_range(0..5) {
                    0 => {
                        self.engine.staff_signed_out(name, now, out);
                        if let Some(i) = self.engine.open_incidents().find(|i| i.claimed_by.as_deref() == Some(name)) {
                            self.fail(format!("{name} signed out and still holds incident {}", i.id));
                        }
                    }
                    1 | 2 => self.engine.staff_presence(name, false, now),
                    _ => self.engine.staff_presence(name, true, now),
                }
            }
            75..80 => {
                let responder = self.responder();
                let at = coords(&mut self.rng);
                self.engine.responder_moved(&responder, at, now, out).unwrap();
            }
            80..83 => {
                // A contact answers: mostly one of the incident's own elder, sometimes another
                // elder's (which must be refused).
                if let Some(id) = self.any_open() {
                    let own = self.engine.incident(id).unwrap().elder_id.clone();
                    let (_, other) = self.device();
                    let other = self.registry.devices[other.as_str()[1..].parse::<usize>().unwrap()].elder_id.clone();
                    let elder = if self.rng.random_bool(0.9) { own.clone() } else { other };
                    let contact = format!("c{}", self.rng.random_range(1..4));
                    let answer = match self.rng.random_range(0..4) {
                        0 => FamilyAnswer::Seen,
                        1 => FamilyAnswer::Going { eta_min: self.rng.random_range(1..90) },
                        2 => FamilyAnswer::Fine,
                        _ => FamilyAnswer::CannotHelp,
                    };
                    let result = self.engine.family_answers(&elder, &contact, id, answer, now, out);
                    let has_contact = self.engine.family_contact(&elder, &contact).is_some();
                    if result.is_ok() && (elder != own || !has_contact) {
                        self.fail(format!("contact {contact} of {elder} answered for incident {id} of {own}"));
                    }
                }
            }
            83..85 => {
                // The delivery worker reports on a contact's latest notification.
                if let Some(id) = self.any_open() {
                    let told: Vec<_> = self
                        .engine
                        .incident(id)
                        .unwrap()
                        .family
                        .contacts
                        .iter()
                        .filter_map(|c| Some((c.contact_id.clone(), c.last_key.clone()?)))
                        .collect();
                    if !told.is_empty() {
                        let (contact, key) = told[self.rng.random_range(0..told.len())].clone();
                        let delivery =
                            [Delivery::Sent, Delivery::Delivered, Delivery::Dead][self.rng.random_range(0..3)];
                        self.engine.family_delivery(id, &contact, &key, delivery, now, out).unwrap();
                    }
                }
            }
            85..87 => self.carer_acts(out),
            87..90 => self.call(out),
            90..93 => self.service_acts(out),
            _ => {
                if let Some(id) = self.any_open() {
                    let before = self.task_before(id);
                    let action = match self.rng.random_range(0..13) {
                        0 => DispatcherAction::Assign { responder: self.responder() },
                        1 => DispatcherAction::TakeOffLadder,
                        2 => {
                            // What the console showed: the alarm up now, or (a slow click) one
                            // older; or none, as old consoles sent.
                            let up = self.engine.incident(id).and_then(|i| i.alarm).map(|a| a.raised_seq);
                            let alarm = match self.rng.random_range(0..4) {
                                0 => None,
                                1 => up.map(|s| s.saturating_sub(1)),
                                _ => up,
                            };
                            DispatcherAction::Acknowledge { alarm }
                        }
                        3 => DispatcherAction::Resolve {
                            outcome: ["called back", "well", "no_answer", "needs_help: fell", "needs_service"]
                                [self.rng.random_range(0..5)]
                            .into(),
                        },
                        4 | 5 => DispatcherAction::Close {
                            outcome: ["done", "no_answer", "well"][self.rng.random_range(0..3)].into(),
                        },
                        6 => DispatcherAction::Cancel { reason: "verified by phone".into() },
                        7 => DispatcherAction::FalseAlarm { reason: "pressed by mistake".into() },
                        8 | 9 => DispatcherAction::Claim,
                        10 => DispatcherAction::Release,
                        11 => DispatcherAction::Note { text: "called the daughter".into() },
                        _ => DispatcherAction::Escalate { number: "120".into(), reference: None },
                    };
                    // Two dispatchers and a supervisor share the queue.
                    let (name, supervisor) =
                        [("wang", false), ("li", false), ("zhao", true)][self.rng.random_range(0..3)];
                    let owner = self.engine.incident(id).and_then(|i| i.claimed_by.clone());
                    let is_note = matches!(action, DispatcherAction::Note { .. });
                    let is_claim = matches!(action, DispatcherAction::Claim | DispatcherAction::Release);
                    let who = DispatcherRef { id: name, supervisor };
                    let result = self.engine.dispatcher_acts_as(who, id, action, now, out);
                    if result.is_ok() {
                        self.history.entry(id).or_default().dispatcher_touched = true;
                    }
                    let someone_elses = owner.as_deref().is_some_and(|o| o != name);
                    if someone_elses && result.is_ok() && !is_note && !(supervisor && is_claim) {
                        self.fail(format!("{name} acted on incident {id}, claimed by {owner:?}"));
                    }
                    if let Some(before) = before {
                        self.check_task_done(id, before, out);
                    }
                }
            }
        }
        true
    }

    /// A carer acts: checks in at an elder's door or from a street away, says they are still
    /// there, checks out, or presses help; the engine's answer is checked against the rules.
    /// A call to the hotline: one rings (from a device's SIM, an elder's phone, a number
    /// nobody knows, or none), or one ringing is answered, not answered, or ends; now and
    /// then an answer or an end for a call never heard ringing.
    fn call(&mut self, out: &mut Outbox) {
        let now = self.now;
        let live = (!self.calls.is_empty()).then(|| self.calls[self.rng.random_range(0..self.calls.len())].clone());
        let event = match (self.rng.random_range(0..10), live) {
            (0..4, _) | (_, None) => {
                self.call_no += 1;
                let call_id = format!("call-{}@sim", self.call_no);
                let n = self.rng.random_range(0..DEVICES);
                let (from, device) = match self.rng.random_range(0..10) {
                    0..5 => {
                        let n = n - n % 2;
                        (sim_number(n), Some(format!("d{n}")))
                    }
                    5..7 => {
                        let n = n - n % 5 + 1;
                        (elder_number(n), (n < DEVICES).then(|| format!("d{n}")))
                    }
                    7..9 => (format!("1370000{n:04}"), None),
                    _ => ("anonymous".to_string(), None),
                };
                let event = CallEvent::Ringing { call_id: call_id.clone(), from: from.clone(), to: "96110".into() };
                let outcome = self.engine.handle_call(event, now, out);
                let Some(id) = outcome.incident() else {
                    self.fail(format!("a call from {from} rang on no incident: {outcome:?}"))
                };
                let on = self.engine.incident(id).expect("open").device_id.clone();
                match device {
                    // A known number rings on its own elder's device, or (an elder's phone
                    // whose elder has no device here) on its stand-in.
                    Some(d) if on.as_str() != d && !on.as_str().starts_with(telephony::CALLER_DEVICE_PREFIX) => {
                        self.fail(format!("a call from {from} rang on {on}, not {d}"))
                    }
                    None if !on.as_str().starts_with(telephony::CALLER_DEVICE_PREFIX) => {
                        self.fail(format!("a call from unknown {from} rang on device {on}"))
                    }
                    _ => {}
                }
                self.family.calls += 1;
                self.calls.push(call_id);
                return;
            }
            (4..6, Some(call_id)) => {
                let by = ["wang", "li", "zhao", "duty-s0"][self.rng.random_range(0..4)].to_string();
                CallEvent::Answered { call_id, by }
            }
            (6..7, Some(call_id)) if self.rng.random_bool(0.3) => {
                // A dispatcher hands the call on: recorded on its call, and no alarm changes.
                let on = self
                    .engine
                    .open_incidents()
                    .find(|i| i.calls.iter().any(|c| c.call_id == call_id))
                    .map(|i| (i.id, i.alarm));
                let event = CallEvent::Transferred { call_id: call_id.clone(), by: "wang".into(), to: "120".into() };
                let outcome = self.engine.handle_call(event, now, out);
                match (on, outcome) {
                    (Some((id, alarm)), CallOutcome::Recorded(got) | CallOutcome::Duplicate(got)) if got == id => {
                        let incident = self.engine.incident(id).expect("open");
                        let call = incident.calls.iter().find(|c| c.call_id == call_id);
                        if call.and_then(|c| c.transferred_to.as_deref()).is_none() {
                            self.fail(format!("call {call_id} was transferred and its record does not say so"));
                        }
                        if incident.alarm != alarm {
                            self.fail(format!("a transfer changed incident {id}'s alarm"));
                        }
                    }
                    (None, CallOutcome::UnknownCall) => {}
                    (on, outcome) => self.fail(format!("call {call_id} on {on:?} transferred: {outcome:?}")),
                }
                return;
            }
            (6..7, Some(call_id)) => CallEvent::Unanswered { call_id },
            (7..9, Some(call_id)) => {
                let reason = [CallEnd::Bye, CallEnd::Cancel, CallEnd::NoAnswer][self.rng.random_range(0..3)];
                self.calls.retain(|c| *c != call_id);
                CallEvent::Ended { call_id, reason }
            }
            (_, Some(_)) if self.rng.random_bool(0.7) => {
                // A dispatcher calls out from an open incident: on its record, and it
                // changes no alarm.
                let Some(id) = self.any_open() else { return };
                self.call_no += 1;
                let call_id = format!("out-{}@sim", self.call_no);
                let before = self.engine.incident(id).and_then(|i| i.alarm);
                let to = format!("1370000{:04}", self.rng.random_range(0..DEVICES));
                let event =
                    CallEvent::Dialled { call_id: call_id.clone(), by: "wang".into(), to, incident_id: Some(id.0) };
                if self.engine.handle_call(event, now, out) != CallOutcome::Recorded(id) {
                    self.fail(format!("a call out from open incident {id} was not recorded on it"));
                }
                if self.engine.incident(id).and_then(|i| i.alarm) != before {
                    self.fail(format!("a call out changed incident {id}'s alarm"));
                }
                self.calls.push(call_id);
                return;
            }
            (_, Some(_)) => {
                let call_id = "never-rang@sim".to_string();
                let event = CallEvent::Ended { call_id, reason: CallEnd::Bye };
                if self.engine.handle_call(event, now, out) != CallOutcome::UnknownCall {
                    self.fail("an end for a call never heard ringing was taken".into());
                }
                return;
            }
        };
        let outbound = |e: &Engine, call: &str| {
            e.open_incidents().flat_map(|i| &i.calls).any(|c| c.call_id == call && c.is_outbound())
        };
        let answered_by_staff = matches!(&event, CallEvent::Answered { by, call_id } if by != "duty-s0" && !outbound(&self.engine, call_id));
        match self.engine.handle_call(event, now, out) {
            CallOutcome::Recorded(id) if answered_by_staff => {
                self.family.calls_answered += 1;
                if self.engine.incident(id).is_some_and(|i| i.claimed_by.is_none()) {
                    self.fail(format!("a dispatcher answered a call on incident {id} and nobody holds it"));
                }
            }
            CallOutcome::Forwarded { .. } => self.family.calls_forwarded += 1,
            // Its incident ended meanwhile: the call is forgotten with it.
            CallOutcome::UnknownCall => {}
            _ => {}
        }
    }

    fn carer_acts(&mut self, out: &mut Outbox) {
        let now = self.now;
        let carer = ResponderId::parse(format!("k{}", self.rng.random_range(0..CARERS))).unwrap();
        let on = self.engine.visit_of(&carer).cloned();
        let radius = self.policy.carers.checkin_radius_m;
        let here = coords(&mut self.rng);
        match self.rng.random_range(0..10) {
            0..4 => {
                let n = self.rng.random_range(0..DEVICES);
                let elder = self.registry.elders[n].clone();
                let reach = if self.rng.random_bool(0.3) { 2.0 * radius + 1_000.0 } else { radius * 0.95 };
                let (north, east) = (self.rng.random_range(-reach..reach), self.rng.random_range(-reach..reach));
                let at = offset(elder.home, north / 2f64.sqrt(), east / 2f64.sqrt());
                let distance = at.distance_m(elder.home);
                let action = VisitAction::CheckIn { elder_id: elder.id.clone(), at };
                let result = self.engine.carer_acts(&carer, action, now, out);
                match (&result, distance > radius) {
                    (Err(VisitError::OutOfRadius { .. }), true) => self.family.out_of_radius += 1,
                    (Ok(()), false) if on.as_ref().is_none_or(|v| v.elder_id == elder.id) => {
                        let v = self.engine.visit_of(&carer).cloned();
                        if v.as_ref().map(|v| (&v.elder_id, v.last_seen_at, v.due_at))
                            != Some((&elder.id, now, now.plus_millis(self.policy.carers.visit_max_ms)))
                        {
                            self.fail(format!("{carer} checked in at {} and the visit is {v:?}", elder.id));
                        }
                        self.family.checked_in += u64::from(on.is_none());
                    }
                    (Err(VisitError::OnVisit(e)), false) if on.as_ref().is_some_and(|v| &v.elder_id == e) => {}
                    _ => self.fail(format!(
                        "{carer} checked in {distance:.0} m from {}'s home (radius {radius}), on {:?}: {result:?}",
                        elder.id,
                        on.map(|v| v.elder_id)
                    )),
                }
            }
            4..6 => {
                let result = self.engine.carer_acts(&carer, VisitAction::StillHere { at: here }, now, out);
                let v = self.engine.visit_of(&carer);
                let fresh = v
                    .is_some_and(|v| v.due_at == now.plus_millis(self.policy.carers.visit_max_ms) && v.alert.is_none());
                if result.is_ok() != on.is_some() || (result.is_ok() && !fresh) {
                    self.fail(format!("{carer} said still here on {on:?}: {result:?}, now {v:?}"));
                }
            }
            6..9 => {
                let result = self.engine.carer_acts(&carer, VisitAction::CheckOut { at: here }, now, out);
                let alert_open = on
                    .as_ref()
                    .and_then(|v| v.alert)
                    .is_some_and(|id| self.engine.incident(id).is_some_and(|i| i.state != IncidentState::Resolved));
                if result.is_ok() != on.is_some() || self.engine.visit_of(&carer).is_some() || alert_open {
                    self.fail(format!("{carer} checked out of {on:?}: {result:?}; alert still open {alert_open}"));
                }
            }
            _ if self.rng.random_bool(0.2) => {
                let result = self.engine.carer_acts(&carer, VisitAction::Help { at: here }, now, out);
                if result.is_err() || self.engine.carer_help_of(&carer).is_none() {
                    self.fail(format!("{carer} pressed help: {result:?}, and has no help incident"));
                }
                self.family.carer_help += 1;
            }
            _ => {}
        }
    }

    /// A dispatcher places a service order, a worker takes a step, or a dispatcher or family
    /// member acts on an order; each checked against what the rules say.
    fn service_acts(&mut self, out: &mut Outbox) {
        let now = self.now;
        let open: Vec<ServiceOrder> = self.engine.open_orders().cloned().collect();
        // Workers act on what is offered to or held by their provider.
        let live: Vec<ServiceOrder> = open
            .iter()
            .filter(|o| {
                matches!(o.state, OrderState::Offered | OrderState::Accepted | OrderState::EnRoute | OrderState::OnSite)
            })
            .cloned()
            .collect();
        let pick = |rng: &mut SmallRng, from: &[ServiceOrder]| {
            (!from.is_empty()).then(|| from[rng.random_range(0..from.len())].clone())
        };
        match self.rng.random_range(0..10) {
            0..3 => {
                let n = self.rng.random_range(0..DEVICES);
                let from = now.plus_millis(self.rng.random_range(0..5 * 86_400_000));
                let req = OrderRequest {
                    elder_id: ElderId::parse(format!("e{n}")).unwrap(),
                    category: CATEGORIES[self.rng.random_range(0..CATEGORIES.len())].to_string(),
                    from,
                    to: from.plus_millis(self.rng.random_range(1..12) * 3_600_000),
                    notes: String::new(),
                    source: OrderSource::Dispatcher,
                    self_paid_agreed: self.rng.random_bool(0.7),
                };
                let quote = self.engine.quote(&req).expect("a known elder and category");
                match self.engine.place_order(req.clone(), Actor::Dispatcher("wang".into()), now, out) {
                    Ok(_) if quote.self_paid_fen > 0 && !req.self_paid_agreed => {
                        self.fail(format!("placed with {} fen self-paid not agreed", quote.self_paid_fen))
                    }
                    Ok(_) => self.family.orders += 1,
                    Err(OrderError::SelfPaidNotAgreed { .. }) if !req.self_paid_agreed => {}
                    Err(e) => self.fail(format!("placing {req:?} was refused: {e}")),
                }
            }
            3..7 => {
                let Some(o) = pick(&mut self.rng, &live) else { return };
                let provider = o.offer.as_ref().map(|x| x.provider_id.clone()).or(o.provider_id.clone());
                let Some(provider) = provider else { return };
                let p = provider.as_str()[1..].parse::<usize>().expect("p<n>");
                let worker = ResponderId::parse(format!("w{p}-{}", self.rng.random_range(0..WORKERS_EACH))).unwrap();
                let worker = o.worker_id.clone().filter(|_| self.rng.random_bool(0.8)).unwrap_or(worker);
                let home = self.registry.elders.iter().find(|e| e.id == o.elder_id).expect("an elder").home;
                let radius = self.policy.services.checkin_radius_m;
                let action = match o.state {
                    OrderState::Offered if self.rng.random_bool(0.2) => WorkerAction::Refuse { reason: "busy".into() },
                    OrderState::Offered => WorkerAction::Accept { appointment_at: o.from },
                    OrderState::Accepted => WorkerAction::EnRoute,
                    OrderState::EnRoute => {
                        let reach = if self.rng.random_bool(0.3) { 2.0 * radius + 500.0 } else { radius * 0.95 };
                        let (north, east) =
                            (self.rng.random_range(-reach..reach), self.rng.random_range(-reach..reach));
                        WorkerAction::CheckIn { at: offset(home, north / 2f64.sqrt(), east / 2f64.sqrt()) }
                    }
                    OrderState::OnSite => WorkerAction::CheckOut { done: "done".into() },
                    _ => return,
                };
                let result = self.engine.worker_acts(&worker, o.id, action.clone(), now, out);
                match (&action, &result) {
                    (WorkerAction::CheckIn { at }, r) => {
                        let far = at.distance_m(home) > radius;
                        match r {
                            Err(OrderError::OutOfRadius { .. }) if far => self.family.order_far += 1,
                            Ok(()) if !far => self.family.order_checkins += 1,
                            Err(OrderError::NotYours) if o.worker_id.as_ref() != Some(&worker) => {}
                            _ => {
                                self.fail(format!("{worker} checked in {:.0} m from home: {r:?}", at.distance_m(home)))
                            }
                        }
                    }
                    (WorkerAction::Accept { .. }, Ok(())) => self.family.orders_accepted += 1,
                    (_, Ok(())) => {}
                    // A worker busy elsewhere (an emergency, another order), or off the order.
                    (_, Err(OrderError::WorkerBusy(_) | OrderError::NotYours)) => {}
                    (_, Err(e)) => self.fail(format!("{worker} did {action:?} on {o:?}: {e}")),
                }
            }
            _ => {
                let Some(o) = pick(&mut self.rng, &open) else { return };
                let family = self.rng.random_bool(0.3);
                let actor = if family { Actor::Family("c1".into()) } else { Actor::Dispatcher("li".into()) };
                let day = 86_400_000 * self.rng.random_range(-1..3);
                let action = match (o.state, self.rng.random_range(0..10)) {
                    (OrderState::Done, 0..7) => {
                        OrderAction::Confirm { rating: self.rng.random_range(1..=5), comment: String::new() }
                    }
                    (OrderState::Done, _) => OrderAction::Dispute { reason: "half done".into() },
                    (OrderState::Disputed, _) => OrderAction::Settle { outcome: "redone".into() },
                    (OrderState::Unmatched, 0..6) => OrderAction::Rematch,
                    (_, 0..2) => OrderAction::Cancel { reason: "not needed".into() },
                    (_, 2..5) => OrderAction::Reschedule { from: o.from.plus_millis(day), to: o.to.plus_millis(day) },
                    _ => OrderAction::Note { text: "phoned".into() },
                };
                let result = self.engine.order_acts(actor, o.id, action.clone(), now, out);
                match result {
                    Ok(()) if matches!(action, OrderAction::Confirm { .. }) => self.family.orders_confirmed += 1,
                    Ok(()) => {}
                    Err(OrderError::WrongState { .. } | OrderError::ProviderFull | OrderError::OtherMonth) => {}
                    Err(e) => self.fail(format!("{action:?} on {o:?}: {e}")),
                }
            }
        }
    }

    /// The service lane's promises, after every step.
    fn check_orders(&mut self, out: &Outbox) {
        for e in &out.order_events {
            self.digest = self.digest.rotate_left(7) ^ e.seq ^ (e.order_id.0 << 24);
            if let OrderChange::Placed { request } = &e.change {
                self.orders_replayed.insert(e.order_id, ServiceOrder::placed(e.order_id, request, &e.actor, e.at));
            }
            if matches!(e.change, OrderChange::Declined { reason: None, .. }) {
                self.family.orders_lapsed += 1;
            }
            match self.orders_replayed.get_mut(&e.order_id) {
                Some(o) => o.apply(e),
                None => self.fail(format!("an event for order {} before it was placed", e.order_id)),
            }
        }
        for o in &out.orders {
            if self.orders_replayed.get(&o.id) != Some(o) {
                self.fail(format!("order {}'s row {o:?} is not its log's {:?}", o.id, self.orders_replayed.get(&o.id)));
            }
            self.orders.insert(o.id, o.clone());
        }
        for o in self.engine.open_orders() {
            if let Some(x) = o.offer.as_ref().filter(|x| x.deadline <= self.now) {
                self.fail(format!(
                    "order {}'s offer to {} outlived its deadline {:?}",
                    o.id, x.provider_id, x.deadline
                ));
            }
        }
        for i in self.engine.open_incidents() {
            if let Some(w) = i.ladder.offers.iter().find(|o| o.responder_id.as_str().starts_with('w')) {
                self.fail(format!("the ladder offered service worker {} incident {}", w.responder_id, i.id));
            }
        }
        // Capacity and money change only with an order's row.
        if out.orders.is_empty() {
            return;
        }
        let offset = self.policy.utc_offset_min;
        let mut load: HashMap<(ProviderId, &str, i64), u32> = HashMap::new();
        let mut paid: HashMap<(&ElderId, i64), u32> = HashMap::new();
        for o in self.orders.values() {
            let holder = if o.state.is_held() {
                o.provider_id.clone()
            } else {
                o.offer.as_ref().filter(|_| o.state == OrderState::Offered).map(|x| x.provider_id.clone())
            };
            if let Some(p) = holder {
                *load.entry((p, o.category.as_str(), o.day(offset))).or_default() += 1;
            }
            if o.state.is_held() {
                let month = anxin_core::service::local_month(o.appointment_at.unwrap_or(o.from), offset);
                *paid.entry((&o.elder_id, month)).or_default() += o.subsidy_fen;
            }
        }
        for ((p, category, day), n) in load {
            let provider = self.registry.providers.iter().find(|x| x.id == p).expect("a provider");
            let capacity = provider.offer(category).map_or(0, |x| x.daily_capacity);
            if n > capacity {
                self.fail(format!("{p} holds {n} {category} orders on day {day}, capacity {capacity}"));
            }
        }
        for ((elder, month), fen) in paid {
            let level = self.registry.elders.iter().find(|e| &e.id == elder).and_then(|e| e.profile.need_level);
            let allowance = self.policy.services.allowance_fen(level);
            if fen > allowance {
                self.fail(format!("elder {elder}'s allowance paid {fen} fen in month {month}, of {allowance}"));
            }
        }
    }

    /// Before a dispatcher acts on a programme task: its elder, reason and programme.
    fn task_before(&self, id: IncidentId) -> Option<(ElderId, WelfareReason, ElderProgramme)> {
        let i = self.engine.incident(id)?;
        let reason = i.welfare.filter(|r| r.is_programme())?;
        Some((i.elder_id.clone(), reason, self.engine.elder_programme(&i.elder_id)?.clone()))
    }

    /// A dispatcher's command ended a task: the programme moved on as the outcome says.
    fn check_task_done(&mut self, id: IncidentId, before: (ElderId, WelfareReason, ElderProgramme), out: &Outbox) {
        let Some(row) = out.incidents.iter().rev().find(|i| i.id == id) else { return };
        if !row.state.is_terminal() {
            return;
        }
        let (elder, reason, was) = before;
        let now = self.now.millis();
        let p = self.engine.elder_programme(&elder).expect("still on the programme").clone();
        let unanswered = TaskOutcome::of(row.outcome.as_deref().unwrap_or_default()) == TaskOutcome::NoAnswer;
        let retry = now + self.policy.programme.retry_after_ms;
        let (_, visit) = self.engine.programme_tasks_of(&elder);
        let ok = match (reason, unanswered) {
            (WelfareReason::ScheduledCall, true) if was.call_tries + 1 < self.policy.programme.max_tries => {
                self.family.unanswered += 1;
                (p.call_tries, p.call_retry_at) == (was.call_tries + 1, retry)
            }
            (WelfareReason::ScheduledCall, true) => {
                self.family.unanswered += 1;
                self.family.visits_instead += 1;
                (p.call_tries, p.call_retry_at, p.call_done) == (0, 0, now) && visit.is_some()
            }
            (WelfareReason::ScheduledCall, false) => (p.call_tries, p.call_retry_at, p.call_done) == (0, 0, now),
            (_, true) => {
                self.family.unanswered += 1;
                p.visit_retry_at == retry
            }
            (_, false) => (p.visit_retry_at, p.visit_done) == (0, now),
        };
        if !ok {
            self.fail(format!(
                "task {id} ({}) ended {:?}: the programme went from {was:?} to {p:?}",
                reason.as_str(),
                row.outcome
            ));
        }
    }

    /// Follows the events, checking the ladder's order as they come, and every change of
    /// state against the table of legal moves.
    fn absorb(&mut self, out: &Outbox) {
        self.check_orders(out);
        self.replay(out);
        self.check_family(out);
        for v in &out.deltas {
            let h = self.history.entry(v.id).or_default();
            if let Some(prev) = h.state.replace(v.state) {
                if prev != v.state && !prev.can_become(v.state) {
                    let (from, to) = (prev.as_str(), v.state.as_str());
                    self.fail(format!("incident {} moved from {from} to {to}, which is not allowed", v.id));
                }
            }
        }
        for e in &out.events {
            self.digest = self.digest.rotate_left(5) ^ e.seq ^ (e.at.millis() as u64) ^ (e.incident_id.0 << 20);
            let h = self.history.entry(e.incident_id).or_default();
            let ladder = h.kind.map(|k| self.policy.ladder(k)).unwrap_or_default();
            match (&e.change, &e.actor) {
                (Change::Opened { kind, welfare, .. }, _) => {
                    if *kind == IncidentKind::Welfare {
                        self.family.welfare += 1;
                    }
                    if *welfare == Some(WelfareReason::Inactive) {
                        self.family.inactive += 1;
                    }
                    if welfare.is_some_and(WelfareReason::is_programme) {
                        self.family.scheduled += 1;
                    }
                    if *kind == IncidentKind::LoneWorker {
                        self.family.lone_worker += 1;
                    }
                    h.kind = Some(*kind);
                    h.parallel_allowed = self.policy.ladder(*kind).parallel.max(1);
                }
                // An emergency that becomes another (an SOS, then smoke) keeps its ladder.
                (Change::KindChanged { from, to }, _) if from.is_emergency() => {
                    h.kind = Some(*to);
                    h.parallel_allowed = h.parallel_allowed.max(self.policy.ladder(*to).parallel);
                }
                (Change::KindChanged { to, .. }, _) => {
                    *h = History {
                        dispatcher_touched: h.dispatcher_touched,
                        state: h.state,
                        kind: Some(*to),
                        parallel_allowed: h.parallel_allowed.max(self.policy.ladder(*to).parallel),
                        ..History::default()
                    }
                }
                (Change::Offered { .. }, Actor::Engine) => {
                    h.engine_offers_since_climb += 1;
                    let max_offers = ladder.offers;
                    if h.engine_offers_since_climb > max_offers {
                        let n = h.engine_offers_since_climb;
                        self.fail(format!("incident {} was offered {n} times, more than {max_offers}", e.incident_id));
                    }
                    if h.station_alerted && !h.dispatcher_touched {
                        self.fail(format!("incident {} went back to offers after the station", e.incident_id));
                    }
                }
                (
                    Change::NobodyInRange { .. } | Change::NobodyQualified { .. } | Change::NobodyFreeAtStation { .. },
                    _,
                ) => h.nobody_in_range = true,
                (Change::StationAlerted { .. }, _) => {
                    if !ladder.station {
                        self.fail(format!("incident {} alerted a station its ladder leaves out", e.incident_id));
                    }
                    if h.engine_offers_since_climb == 0 && !h.nobody_in_range && ladder.offers > 0 {
                        self.fail(format!("incident {} skipped the responders' rung", e.incident_id));
                    }
                    h.station_alerted = true;
                }
                (Change::NobodyGoing { .. }, Actor::Engine)
                    if !h.station_alerted && ladder.station && !h.dispatcher_touched =>
                {
                    self.fail(format!("incident {} went to a dispatcher without the station's rung", e.incident_id));
                }
                _ => {}
            }
        }
    }

    /// Applies the outbox's events to the replayed incidents, then checks each incident's last
    /// row in the outbox (what the store would keep) against its replay, field by field.
    fn replay(&mut self, out: &Outbox) {
        for e in &out.events {
            if let Change::Opened { .. } = e.change {
                // A welfare check is opened by the engine about a device: its row says which.
                let row_device = out.incidents.iter().find(|i| i.id == e.incident_id).map(|i| i.device_id.clone());
                let carers = row_device.as_ref().is_some_and(|d| d.as_str().starts_with(carer::CARER_DEVICE_PREFIX));
                // A call from nobody's device: its stand-in names the elder, or nobody.
                let stand_in =
                    row_device.as_ref().is_some_and(|d| d.as_str().starts_with(telephony::CALLER_DEVICE_PREFIX));
                let device = match (&e.actor, &e.change) {
                    (Actor::Device(device), Change::Opened { welfare: None, .. }) => device.clone(),
                    (Actor::Engine, Change::Opened { welfare: Some(_), .. }) if row_device.is_some() => {
                        row_device.clone().expect("checked")
                    }
                    // A carer's help (theirs) or lone-worker alarm (the engine's).
                    (Actor::Responder(_) | Actor::Engine, Change::Opened { welfare: None, .. }) if carers => {
                        row_device.clone().expect("checked")
                    }
                    _ => self.fail(format!("{e:?} not opened by a device, nor a welfare check by the engine")),
                };
                let device = &device;
                let elder = if carers || stand_in {
                    out.incidents.iter().find(|i| i.id == e.incident_id).expect("a row").elder_id.clone()
                } else {
                    let n: usize = device.as_str()[1..].parse().unwrap();
                    self.registry.devices[n].elder_id.clone()
                };
                // Why a dispatcher should look twice is decided at the opening, with the event.
                let problem = out.incidents.iter().find(|i| i.id == e.incident_id).and_then(|i| i.problem.clone());
                let opened = Incident::open(e, device.clone(), elder, problem, &self.policy).unwrap();
                if opened.alarm.is_none() {
                    self.fail(format!("incident {} opened without an alarm", e.incident_id));
                }
                self.replayed.insert(e.incident_id, opened);
            } else {
                let Some(incident) = self.replayed.get_mut(&e.incident_id) else {
                    self.fail(format!("{e:?} is for an incident that never opened"))
                };
                let before = incident.alarm;
                incident.apply(e, &self.policy);
                let after = incident.alarm;
                let person = matches!(e.actor, Actor::Dispatcher(_) | Actor::Responder(_) | Actor::Family(_));
                let ended = incident.state.is_terminal() || incident.state == IncidentState::Resolved;
                if before.is_some() && after.is_none() && !person && !ended {
                    self.fail(format!("{e:?} silenced {before:?}, and no person acted"));
                }
                if ended && after.is_some() {
                    let state = incident.state.as_str();
                    self.fail(format!("incident {} is {state} and still alarms", e.incident_id));
                }
                let critical = matches!(e.change, Change::NobodyGoing { .. } | Change::OnSceneOverdue { .. });
                if critical && after.map(|a| a.level) != Some(AlarmLevel::Critical) {
                    self.fail(format!("{e:?} left {after:?}, not a critical alarm"));
                }
            }
        }
        let mut last: HashMap<IncidentId, &Incident> = HashMap::new();
        for row in &out.incidents {
            last.insert(row.id, row);
        }
        for (id, row) in last {
            let Some(replayed) = self.replayed.get(&id) else { self.fail(format!("incident {id} has no events")) };
            if replayed != row {
                self.fail(format!("incident {id}: the log replays to\n{replayed:?}\nthe engine stores\n{row:?}"));
            }
            if row.state.is_terminal() {
                self.replayed.remove(&id);
            }
        }
    }

    /// The family's promises, over one outbox: every notification leaves with the event that
    /// logs it, under its key; the first contact hears of an emergency in the step it opens;
    /// emergencies ignore quiet hours and low-priority news respects them; nobody hears of an
    /// elder who is not theirs, or of a service request they turned off.
    fn check_family(&mut self, out: &Outbox) {
        self.family.told += out.notifications.len() as u64;
        self.family.later_contacts += out.notifications.iter().filter(|n| n.contact_id != "c1").count() as u64;
        for e in &out.events {
            match e.change {
                Change::FamilyAnswered { .. } => self.family.answers += 1,
                Change::FamilyExhausted => self.family.exhausted += 1,
                _ => {}
            }
        }
        let told: HashMap<String, &IncidentEvent> = out
            .events
            .iter()
            .filter(|e| matches!(e.change, Change::FamilyTold { .. }))
            .map(|e| (format!("n{}", e.seq), e))
            .collect();
        if told.len() != out.notifications.len() {
            self.fail(format!("{} family_told events but {} notifications", told.len(), out.notifications.len()));
        }
        for n in &out.notifications {
            let Some(e) = told.get(&n.key) else { self.fail(format!("notification {} has no event", n.key)) };
            let Change::FamilyTold { contact_id, channel, notice } = &e.change else { unreachable!() };
            if (contact_id, channel, notice) != (&n.contact_id, &n.channel, &n.notice) || e.incident_id != n.incident_id
            {
                self.fail(format!("notification {n:?} is not what {e:?} logs"));
            }
            let elder = self.registry.elders.iter().find(|el| el.id == n.elder_id).expect("a known elder");
            let Some(contact) = elder
                .profile
                .contacts
                .iter()
                .enumerate()
                .find(|(i, _)| Contact::default_id(*i) == n.contact_id)
                .map(|(_, c)| c)
            else {
                self.fail(format!("notification {} to {}, who is not a contact of {}", n.key, n.contact_id, n.elder_id))
            };
            let incident_elder = self.replayed.get(&n.incident_id).map(|i| &i.elder_id);
            if incident_elder.is_some_and(|el| *el != n.elder_id) {
                self.fail(format!(
                    "notification {} about incident {} went to another elder's contact",
                    n.key, n.incident_id
                ));
            }
            match n.priority {
                NoticePriority::Emergency if n.not_before != n.created_at => {
                    self.fail(format!("emergency news {} was held until {:?}", n.key, n.not_before))
                }
                NoticePriority::Low => {
                    if n.notice == Notice::ServiceRequest && !contact.service_news {
                        self.fail(format!("{} took no service news and was sent {}", n.contact_id, n.key));
                    }
                    if matches!(n.notice, Notice::DeviceNews { .. } | Notice::DeviceBack { .. }) {
                        self.family.device_news += 1;
                        if !contact.device_news {
                            self.fail(format!("device news {} went to {}, who takes none", n.key, n.contact_id));
                        }
                    }
                    let release = contact
                        .quiet_hours
                        .map_or(n.created_at, |q| q.release(n.created_at, self.policy.utc_offset_min));
                    if n.not_before != release {
                        self.fail(format!("low-priority news {} goes at {:?}, not {release:?}", n.key, n.not_before));
                    }
                }
                _ => {}
            }
        }
        // An emergency opened in this outbox told its elder's first contact in it.
        for e in &out.events {
            let Change::Opened { kind, .. } = &e.change else { continue };
            let Some(incident) = self.replayed.get(&e.incident_id) else { continue };
            let has_contacts =
                self.registry.elders.iter().any(|el| el.id == incident.elder_id && !el.profile.contacts.is_empty());
            let first_told = out.notifications.iter().any(|n| n.incident_id == e.incident_id && n.contact_id == "c1");
            if incident.carer.is_some() {
                // A carer's incident is the carer's: nobody in the visited elder's family hears of it.
                if first_told {
                    self.fail(format!("carer's incident {} told the elder's family", e.incident_id));
                }
                continue;
            }
            if kind.is_emergency() && has_contacts && !first_told {
                self.fail(format!(
                    "incident {} opened as {} and its first contact was not told",
                    e.incident_id,
                    kind.as_str()
                ));
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
            if l.remind_at.is_some() && i.dispatcher_needed.is_none() {
                self.fail(format!("incident {}: a reminder is set with no dispatcher needed", i.id));
            }
            if i.family.next_at.is_some_and(|t| t <= self.now) {
                self.fail(format!("incident {}: the next contact is overdue", i.id));
            }
            // An unresolved emergency's family is answering, used up, or has a time for the next.
            let f = &i.family;
            let has_contacts =
                self.registry.elders.iter().any(|el| el.id == i.elder_id && !el.profile.contacts.is_empty());
            if i.kind.is_emergency()
                && i.carer.is_none()
                && i.state != IncidentState::Resolved
                && has_contacts
                && !f.answered
                && !f.exhausted
                && f.next_at.is_none()
            {
                self.fail(format!("incident {}: its family is waited on by nobody: {f:?}", i.id));
            }
        }
    }

    /// The welfare rounds' deadlines, after a tick: every task that fell due is open, the
    /// overdue count is right, and every carer overdue has a lone-worker alarm.
    fn check_rounds(&self) {
        let overdue_after = self.policy.programme.overdue_after_ms;
        let (mut open, mut overdue) = (0, 0);
        for e in self.registry.elders.iter().filter(|e| !e.profile.schedule.is_empty()) {
            let p = self.engine.elder_programme(&e.id).expect("on the programme");
            let (call, visit) = self.engine.programme_tasks_of(&e.id);
            let sch = e.profile.schedule;
            for (what, due, task) in [
                ("call", p.call_due(&e.id, sch.call_every_days, T0), call),
                ("visit", p.visit_due(&e.id, sch.visit_every_days, T0), visit),
            ] {
                if task.is_none() && due.is_some_and(|t| t <= self.now) {
                    self.fail(format!(
                        "{}'s {what} fell due at {due:?} and is not open (now {:?}): {p:?}",
                        e.id, self.now
                    ));
                }
                if let Some(t) = task {
                    open += 1;
                    // Counted from when it fell due (`pressed_at`), not from when it opened.
                    overdue += usize::from(t.pressed_at.plus_millis(overdue_after) <= self.now);
                }
            }
        }
        if self.engine.programme_counts(self.now) != (open, overdue) {
            let counted = self.engine.programme_counts(self.now);
            self.fail(format!("the programme counts {counted:?} open and overdue tasks, not {:?}", (open, overdue)));
        }
        for v in self.engine.open_visits() {
            match v.alert.and_then(|id| self.engine.incident(id)) {
                None if v.due_at <= self.now => self.fail(format!(
                    "{} is overdue on the visit to {} and no lone-worker alarm is up",
                    v.carer_id, v.elder_id
                )),
                None if v.alert.is_some() => {
                    self.fail(format!("{}'s visit names an alert that is not open", v.carer_id))
                }
                Some(i) if i.kind != IncidentKind::LoneWorker || i.carer.as_ref() != Some(&v.carer_id) => {
                    self.fail(format!("{}'s visit alert is {i:?}", v.carer_id))
                }
                _ => {}
            }
        }
    }

    fn check_invariants(&self, single: Option<&Outbox>) {
        // The index of extra offers' holders is the open incidents' own: each responder
        // holding an offer on an incident with two or more, at where the roster has them.
        let mut holders: Vec<(ResponderId, IncidentId, [f64; 3])> = self
            .engine
            .open_incidents()
            .filter(|i| i.ladder.offers.len() >= 2)
            .flat_map(|i| i.ladder.offers.iter().map(move |o| (o.responder_id.clone(), i.id)))
            .filter_map(|(r, id)| self.engine.responder(&r).map(|x| (r, id, x.position.to_unit_vector())))
            .collect();
        holders.sort_by(|a, b| a.0.cmp(&b.0));
        if self.engine.extra_offers_indexed() != holders {
            self.fail(format!("extra offers indexed {:?}, held {holders:?}", self.engine.extra_offers_indexed()));
        }
        // And the ladder's search of them finds what reading every extra offer finds, for the
        // incidents the step changed (every one of them at every step doubled the run's time).
        let mut changed: Vec<IncidentId> = single.iter().flat_map(|o| o.events.iter().map(|e| e.incident_id)).collect();
        changed.sort();
        changed.dedup();
        for id in changed {
            let (found, read) = (self.engine.best_extra_offer(id), self.engine.best_extra_offer_by_reading_all(id));
            if found != read {
                self.fail(format!(
                    "for incident {id} the extra offers' index found {found:?}, reading them all {read:?}"
                ));
            }
        }
        let mut devices = HashSet::new();
        let mut checked = HashSet::new();
        let mut holders: HashMap<&ResponderId, IncidentId> = HashMap::new();
        let mut inactive = HashSet::new();
        let mut tasks = HashSet::new();
        for i in self.engine.open_incidents() {
            if let Some(reason) = i.welfare.filter(|r| r.is_programme()) {
                // One call and one visit at most an elder, each the one the programme holds.
                if !tasks.insert((&i.elder_id, reason)) {
                    self.fail(format!("elder {} has two open {} tasks", i.elder_id, reason.as_str()));
                }
                let (call, visit) = self.engine.programme_tasks_of(&i.elder_id);
                let held = if reason == WelfareReason::ScheduledCall { call } else { visit };
                if held.map(|t| t.id) != Some(i.id) {
                    self.fail(format!(
                        "task {} is not the programme's {} of elder {}",
                        i.id,
                        reason.as_str(),
                        i.elder_id
                    ));
                }
                if !i.ladder.offers.is_empty() || i.ladder.offers_made > 0 {
                    self.fail(format!("task {} was offered: {i:?}", i.id));
                }
                if let Some(r) = i.responder.as_ref().filter(|_| i.state.has_responder_on_job()) {
                    if let Some(other) = holders.insert(&r.id, i.id) {
                        self.fail(format!("responder {} holds incidents {other} and {}", r.id, i.id));
                    }
                }
                continue;
            }
            if i.welfare == Some(WelfareReason::Inactive) {
                // The elder's own: one at a time, kept by their watch, only for an elder
                // living alone, never offered.
                if !inactive.insert(&i.elder_id) {
                    self.fail(format!("elder {} has two open checks for inactivity", i.elder_id));
                }
                if self.engine.inactivity_check_of(&i.elder_id).map(|o| o.id) != Some(i.id) {
                    self.fail(format!("check {} is not the inactivity check of elder {}", i.id, i.elder_id));
                }
                let alone =
                    self.registry.elders.iter().any(|e| e.id == i.elder_id && e.profile.lives_alone == Some(true));
                if !alone || !i.ladder.offers.is_empty() || i.ladder.offers_made > 0 {
                    self.fail(format!("check {} for inactivity: alone {alone}, offered: {i:?}", i.id));
                }
                let a = self.engine.elder_activity(&i.elder_id).expect("watched");
                let quiet = self.now.millis() - a.last_active;
                if quiet < i64::from(self.policy.activity.quiet_hours) * 3_600_000 {
                    self.fail(format!("check {} open after only {quiet} ms of quiet", i.id));
                }
                // A dispatcher may send somebody round.
                if let Some(r) = i.responder.as_ref().filter(|_| i.state.has_responder_on_job()) {
                    if let Some(other) = holders.insert(&r.id, i.id) {
                        self.fail(format!("responder {} holds incidents {other} and {}", r.id, i.id));
                    }
                }
                continue;
            }
            if i.kind == IncidentKind::Welfare {
                // A lane of its own: one check a device, never offered by the ladder.
                if !checked.insert(&i.device_id) {
                    self.fail(format!("device {} has two open welfare checks", i.device_id));
                }
                if self.engine.welfare_of(&i.device_id).map(|o| o.id) != Some(i.id) {
                    self.fail(format!("welfare check {} is not the check of its device", i.id));
                }
                // The ladder never offers it (a dispatcher may still send somebody round).
                if !i.ladder.offers.is_empty() || i.ladder.offers_made > 0 || i.welfare.is_none() {
                    self.fail(format!("welfare check {} was offered or has no reason: {i:?}", i.id));
                }
                let offline = self.engine.device_health(&i.device_id).is_some_and(|h| h.offline);
                if i.welfare.is_some_and(WelfareReason::is_silence) != offline {
                    self.fail(format!(
                        "welfare check {} is for {:?} but the device is offline: {offline}",
                        i.id, i.welfare
                    ));
                }
                if let Some(r) = i.responder.as_ref().filter(|_| i.state.has_responder_on_job()) {
                    if let Some(other) = holders.insert(&r.id, i.id) {
                        self.fail(format!("responder {} holds incidents {other} and {}", r.id, i.id));
                    }
                }
                continue;
            }
            if let Some(carer) = &i.carer {
                // A carer's: their help (the one the engine holds for them), or the alarm of the
                // visit they are overdue on (until it ends); never on a device of the ledger.
                let theirs = match i.kind {
                    IncidentKind::LoneWorker => {
                        i.state == IncidentState::Resolved
                            || self.engine.visit_of(carer).is_some_and(|v| v.alert == Some(i.id))
                    }
                    _ => self.engine.carer_help_of(carer).is_some_and(|h| h.id == i.id),
                };
                if !theirs || !i.device_id.as_str().starts_with(carer::CARER_DEVICE_PREFIX) {
                    self.fail(format!("carer {carer}'s incident {} is not theirs: {i:?}", i.id));
                }
            } else if i.device_id.as_str().starts_with(telephony::CALLER_DEVICE_PREFIX) {
                // A call from nobody's device: one open incident a number (withheld numbers
                // cannot be told apart, so each of their calls has its own), never a device of
                // the ledger's.
                let withheld = i.device_id.as_str().ends_with(telephony::WITHHELD);
                if !withheld && !devices.insert(&i.device_id) {
                    self.fail(format!("caller {} has two open incidents", i.device_id));
                }
                if i.kind != IncidentKind::Call && !i.kind.is_emergency() || i.calls.is_empty() {
                    self.fail(format!("incident {} of a caller is not a call: {i:?}", i.id));
                }
            } else {
                if !devices.insert(&i.device_id) {
                    self.fail(format!("device {} has two open incidents", i.device_id));
                }
                if self.engine.open_incident_for(&i.device_id).map(|o| o.id) != Some(i.id) {
                    self.fail(format!("incident {} is not the open incident of its device", i.id));
                }
            }
            if i.state.is_terminal() {
                self.fail(format!("incident {} is {} but still open", i.id, i.state.as_str()));
            }
            let number = match i.kind {
                IncidentKind::Fire => Some(&self.policy.fire_number),
                IncidentKind::Intrusion => Some(&self.policy.police_number),
                _ => None,
            };
            if number.is_some() && i.state != IncidentState::Resolved && i.ladder.emergency_number.as_ref() != number {
                self.fail(format!("{} incident {} shows {:?}", i.kind.as_str(), i.id, i.ladder.emergency_number));
            }
            let parallel = self.history.get(&i.id).map_or(1, |h| h.parallel_allowed).max(1);
            if i.ladder.offers.len() as u32 > parallel {
                self.fail(format!("incident {} has {} offers out, more than {parallel}", i.id, i.ladder.offers.len()));
            }
            if (i.state == IncidentState::Offered) == i.ladder.offers.is_empty() {
                self.fail(format!(
                    "incident {} is {} with {} live offers",
                    i.id,
                    i.state.as_str(),
                    i.ladder.offers.len()
                ));
            }
            for o in &i.ladder.offers {
                if let Some(other) = holders.insert(&o.responder_id, i.id) {
                    self.fail(format!("responder {} holds incidents {other} and {}", o.responder_id, i.id));
                }
            }
            let holds = i.state.has_responder_on_job();
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
            // A service worker is never in the matcher: only a dispatcher sends one to an emergency.
            let should_be_available = on_duty && !holders.contains_key(&r.id) && r.provider_id.is_none();
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
        // After a single command that moved an incident past the responders' rung, the ladder
        // had nobody left to offer.
        if let Some(out) = single {
            for e in &out.events {
                if matches!(e.change, Change::StationAlerted { .. })
                    || (matches!(e.change, Change::NobodyGoing { .. }) && e.actor == Actor::Engine)
                {
                    let Some(i) = self.engine.incident(e.incident_id) else { continue };
                    if i.ladder.off_ladder || i.ladder.offers_made >= self.policy.ladder(i.kind).offers {
                        continue;
                    }
                    if i.state.is_terminal() || !i.ladder.offers.is_empty() {
                        continue;
                    }
                    if let Ok((r, _)) = self.engine.best_candidate(i.id) {
                        self.fail(format!("incident {} climbed past the responders while {r} could have gone", i.id));
                    }
                    if let Some((r, _, from)) =
                        self.engine.best_extra_offer(i.id).filter(|_| self.policy.yield_extra_offers)
                    {
                        self.fail(format!(
                            "incident {} climbed past the responders while {r} held an extra offer on {from}",
                            i.id
                        ));
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
    let (mut opened, mut family) = (0, FamilyStats::default());
    for seed in seeds {
        let mut sim = Sim::new(seed);
        sim.run(steps);
        opened += sim.history.len();
        family.told += sim.family.told;
        family.later_contacts += sim.family.later_contacts;
        family.answers += sim.family.answers;
        family.exhausted += sim.family.exhausted;
        family.welfare += sim.family.welfare;
        family.device_news += sim.family.device_news;
        family.inactive += sim.family.inactive;
        family.scheduled += sim.family.scheduled;
        family.unanswered += sim.family.unanswered;
        family.visits_instead += sim.family.visits_instead;
        family.checked_in += sim.family.checked_in;
        family.out_of_radius += sim.family.out_of_radius;
        family.lone_worker += sim.family.lone_worker;
        family.carer_help += sim.family.carer_help;
        family.calls += sim.family.calls;
        family.calls_answered += sim.family.calls_answered;
        family.calls_forwarded += sim.family.calls_forwarded;
        family.orders += sim.family.orders;
        family.orders_accepted += sim.family.orders_accepted;
        family.order_checkins += sim.family.order_checkins;
        family.order_far += sim.family.order_far;
        family.orders_confirmed += sim.family.orders_confirmed;
        family.orders_lapsed += sim.family.orders_lapsed;
    }
    assert!(opened > 1_000, "the simulation exercised only {opened} incidents");
    let enough = family.told > 1_000 && family.later_contacts > 100 && family.answers > 100 && family.exhausted > 10;
    assert!(enough || steps < 50_000, "the families' side was barely exercised: {family:?}");
    let health = family.welfare > 100 && family.device_news > 100;
    assert!(health || steps < 50_000, "devices' health was barely exercised: {family:?}");
    assert!(family.inactive > 20 || steps < 50_000, "elders' inactivity was barely exercised: {family:?}");
    assert!(family.scheduled > 100 || steps < 50_000, "the welfare programme was barely exercised: {family:?}");
    let unanswered = family.unanswered > 20 && family.visits_instead > 2;
    assert!(unanswered || steps < 50_000, "unanswered tasks were barely exercised: {family:?}");
    let carers =
        family.checked_in > 100 && family.out_of_radius > 100 && family.lone_worker > 20 && family.carer_help > 10;
    assert!(carers || steps < 50_000, "carers' visits were barely exercised: {family:?}");
    let calls = family.calls > 1_000 && family.calls_answered > 100 && family.calls_forwarded > 100;
    assert!(calls || steps < 50_000, "calls to the hotline were barely exercised: {family:?}");
    let orders = family.orders > 1_000
        && family.orders_accepted > 300
        && family.order_checkins > 50
        && family.order_far > 20
        && family.orders_confirmed > 20
        && family.orders_lapsed > 100;
    assert!(orders || steps < 50_000, "service orders were barely exercised: {family:?}");
}

#[test]
fn a_seed_replays_identically() {
    let mut a = Sim::new(42);
    a.run(20_000);
    let mut b = Sim::new(42);
    b.run(20_000);
    assert_eq!(a.digest, b.digest);
    assert_eq!(a.engine.counters(), b.engine.counters());
    let mut c = Sim::new(43);
    c.run(20_000);
    assert_ne!(a.digest, c.digest, "a different seed is a different run");
}
