//! Offers across zone borders under a seeded simulation (issue 25; `anxin_core::border`,
//! `SCALE-OUT.md` "Zone borders"): one engine a zone, each built from its zone's part of the
//! ledger with the other zones' responders as neighbours, and the messages between them
//! carried as a zone's inbox carries them: stored with the commit that caused them, taken out
//! by the commit that handled them, read late, out of order (commits in flight land in any
//! order), or twice (a batch stored again). Engines lose what they decided but did not commit
//! and resume from what was stored; elders press, responders accept, decline and finish,
//! dispatchers cancel and close, and the clock runs on so that asks and offers lapse.
//!
//! Checked after every commit, on what is stored: no responder is engaged (an offer made to
//! them, or a job) by two incidents; none is offered a job while off duty (but for the moment
//! their zone's word that they went off duty is on its way to the offer's zone); one engaged by another zone's incident is held for it in
//! their own zone's rows; one held for another zone's incident is engaged by none of their own
//! zone's. Once quiet (every incident ended, every message read): nobody is held for anything.
//!
//! `cargo test -p anxin-core --test borders` runs 20 seeds × 5,000 steps (10⁵ steps);
//! `ANXIN_BORDER_SIM_SEEDS`, `ANXIN_BORDER_SIM_STEPS` change the budget and
//! `ANXIN_BORDER_SIM_SEED=<seed>` replays one run.

use anxin_core::*;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

const ZONES: u16 = 3;
const RESPONDERS: usize = 3;
const ELDERS: usize = 4;
const T0: Timestamp = Timestamp(1_763_000_000_000);

fn zone(n: u16) -> Zone {
    Zone::new(i64::from(n)).unwrap()
}

/// Three zones side by side about 2 km apart, each with a station, its responders and its
/// elders, every one within the offer distance of every other: borders everywhere.
fn district(rng: &mut SmallRng) -> Registry {
    let mut r = Registry::default();
    for z in 0..ZONES {
        let lon = 102.68 + 0.02 * f64::from(z);
        let station = StationId::parse(format!("s-{z}")).unwrap();
        r.stations.push(Station {
            id: station.clone(),
            name: format!("站{z}"),
            position: Coordinates::new(25.0, lon).unwrap(),
            phone: None,
            service_circle_min: Some(60),
            zone: zone(z),
        });
        for k in 0..RESPONDERS {
            r.responders.push(Responder {
                id: ResponderId::parse(format!("r-{z}-{k}")).unwrap(),
                name: format!("响应人{z}{k}"),
                station_id: station.clone(),
                phone: None,
                position: Coordinates::new(25.0 + rng.random_range(-0.005..0.005), lon + rng.random_range(-0.01..0.01))
                    .unwrap(),
                on_duty: true,
                mode: TravelMode::Ebike,
                skills: vec!["first_aid".into()],
                position_at: None,
                token_sha256: None,
                provider_id: None,
            });
        }
        for k in 0..ELDERS {
            let elder = ElderId::parse(format!("e-{z}-{k}")).unwrap();
            r.elders.push(Elder {
                id: elder.clone(),
                name: format!("老人{z}{k}"),
                address: "西山区".into(),
                home: Coordinates::new(25.0 + rng.random_range(-0.005..0.005), lon + rng.random_range(-0.01..0.01))
                    .unwrap(),
                phone: None,
                notes: String::new(),
                profile: ElderProfile { station_id: Some(station.clone()), ..Default::default() },
            });
            r.devices.push(Device {
                id: DeviceId::parse(format!("d-{z}-{k}")).unwrap(),
                elder_id: elder,
                model: None,
                sim: None,
            });
        }
    }
    r.staff.push(Staff {
        id: "li".into(),
        name: "李".into(),
        role: StaffRole::Dispatcher,
        password_hash: String::new(),
    });
    r
}

/// What a zone's store holds.
#[derive(Default)]
struct Stored {
    /// Open incidents, as their last row.
    open: BTreeMap<IncidentId, Incident>,
    /// The zone's responders held for another zone's incident.
    holds: BTreeMap<ResponderId, IncidentId>,
    /// The zone's responders' duty, where it changed.
    duty: BTreeMap<ResponderId, bool>,
    counters: Counters,
    /// Messages from other zones' owners, in the order stored.
    inbox: Vec<BorderMessage>,
}

#[derive(Default, Debug)]
struct Stats {
    commits: u64,
    lost: u64,
    kinds: BTreeMap<&'static str, u64>,
    reordered: u64,
    twice: u64,
    held_offers: u64,
    duty: u64,
}

struct World {
    rng: SmallRng,
    now: Timestamp,
    district: Registry,
    policy: Policy,
    engines: Vec<Engine>,
    stored: Vec<Stored>,
    pressed: u64,
    stats: Stats,
}

impl World {
    fn new(seed: u64) -> Self {
        let mut rng = SmallRng::seed_from_u64(seed);
        let district = district(&mut rng);
        let mut policy = Policy::default();
        let parallel = rng.random_range(1..=3);
        for ladder in policy.ladders.values_mut() {
            ladder.parallel = parallel;
        }
        policy.yield_extra_offers = rng.random_bool(0.5);
        let stored: Vec<Stored> = (0..ZONES).map(|_| Stored::default()).collect();
        let mut w =
            World { rng, now: T0, district, policy, engines: Vec::new(), stored, pressed: 0, stats: Stats::default() };
        w.engines = (0..ZONES).map(|z| w.resume(z)).collect();
        w
    }

    /// Zone `z`'s engine as its next owner builds it from the store.
    fn resume(&self, z: u16) -> Engine {
        let s = &self.stored[usize::from(z)];
        let resume = Resume {
            open: s.open.values().cloned().collect(),
            counters: [(zone(z), s.counters)].into(),
            holds: s.holds.iter().map(|(r, i)| (r.clone(), *i)).collect(),
            ..Resume::default()
        };
        // The ledger as the store has it: responders' rows carry their duty.
        let mut ledger = self.district.clone();
        for r in &mut ledger.responders {
            if let Some(on) = self.stored.iter().find_map(|s| s.duty.get(&r.id)) {
                r.on_duty = *on;
            }
        }
        Engine::new(self.policy.clone(), ledger.zones_part(&[zone(z)]), resume)
            .with_neighbours(ledger.neighbours_of(&[zone(z)]))
    }

    /// Stores zone `z`'s outbox, all or nothing, or (now and then) loses it: the engine
    /// stopped before its commit, and its zone's next owner resumes from the store, the
    /// message it was handling (`taken`) still in the inbox.
    fn commit(&mut self, z: u16, out: Outbox, taken: Option<(usize, BorderMessage)>) -> Result<(), String> {
        let zi = usize::from(z);
        if trace() {
            for e in &out.events {
                eprintln!("  zone {z} event {} {:?}", e.incident_id, e.change);
            }
            for h in &out.holds {
                eprintln!("  zone {z} hold {h:?}");
            }
            for a in &out.across {
                eprintln!("  zone {z} → {}: {:?}", a.to, a.message);
            }
        }
        if self.rng.random_bool(0.04) {
            if trace() {
                eprintln!("  zone {z}: commit lost");
            }
            self.stats.lost += 1;
            if let Some((at, m)) = taken {
                self.stored[zi].inbox.insert(at, m);
            }
            self.engines[zi] = self.resume(z);
            return Ok(());
        }
        self.stats.commits += 1;
        for a in &out.across {
            *self.stats.kinds.entry(a.message.kind()).or_default() += 1;
        }
        self.stats.held_offers +=
            out.events.iter().filter(|e| matches!(e.change, Change::HeldAcross { .. })).count() as u64;
        self.store(z, &out)
    }

    /// The promises, on what is stored.
    fn check(&self) -> Result<(), String> {
        let mut engaged: BTreeMap<&ResponderId, Vec<IncidentId>> = BTreeMap::new();
        for s in &self.stored {
            for i in s.open.values() {
                for o in i.ladder.offers.iter().filter(|o| o.asking.is_none()) {
                    engaged.entry(&o.responder_id).or_default().push(i.id);
                }
                if let Some(r) = i.responder.as_ref().filter(|_| i.state.has_responder_on_job()) {
                    engaged.entry(&r.id).or_default().push(i.id);
                }
            }
        }
        for s in &self.stored {
            for i in s.open.values() {
                for o in i.ladder.offers.iter().filter(|o| o.asking.is_none()) {
                    let own = &self.stored[usize::from(self.zone_of(&o.responder_id).number())];
                    // Off duty with their own zone while another's offer is out: allowed only
                    // while that zone is being told (its message waits in its inbox).
                    let told = BorderMessage::OffDuty { incident_id: i.id, responder_id: o.responder_id.clone() };
                    if own.duty.get(&o.responder_id) == Some(&false) && !s.inbox.contains(&told) {
                        return Err(format!("{} offered {} while off duty", o.responder_id, i.id));
                    }
                }
            }
        }
        for (r, incidents) in &engaged {
            if incidents.len() > 1 {
                return Err(format!("{r} is engaged by {incidents:?}"));
            }
            let own = self.zone_of(r);
            let i = incidents[0];
            if Zone::of(i.0) != own && self.stored[usize::from(own.number())].holds.get(*r) != Some(&i) {
                return Err(format!(
                    "{r} of zone {own} engaged by {i} of zone {} without their zone holding them (holds {:?})",
                    Zone::of(i.0),
                    self.stored[usize::from(own.number())].holds.get(*r)
                ));
            }
        }
        for (z, s) in self.stored.iter().enumerate() {
            for (r, held_for) in &s.holds {
                if let Some(mine) =
                    engaged.get(r).and_then(|is| is.iter().find(|i| Zone::of(i.0).number() as usize == z))
                {
                    return Err(format!("{r} held for {held_for} and engaged by {mine} of their own zone"));
                }
            }
        }
        Ok(())
    }

    fn zone_of(&self, r: &ResponderId) -> Zone {
        let station = &self.district.responders.iter().find(|x| &x.id == r).unwrap().station_id;
        self.district.stations.iter().find(|s| &s.id == station).unwrap().zone
    }

    fn press(&mut self) -> Result<(), String> {
        let z = self.rng.random_range(0..ZONES);
        let k = self.rng.random_range(0..ELDERS);
        self.pressed += 1;
        let event = DeviceEvent {
            msg_id: MessageId::parse(format!("m{}", self.pressed)).unwrap(),
            event: EventType::Sos,
            device_ts: self.now,
            fix: FixReport::Absent,
            health: Default::default(),
        };
        let device = DeviceId::parse(format!("d-{z}-{k}")).unwrap();
        let mut out = Outbox::default();
        if trace() {
            eprintln!("press {device}");
        }
        self.engines[usize::from(z)]
            .handle_device_event(&device, event, self.now, &mut out)
            .map_err(|e| e.to_string())?;
        self.commit(z, out, None)
    }

    /// A zone's owner reads one message of its inbox: usually the oldest, now and then a later
    /// one first, or one that stays to be read again.
    fn deliver(&mut self) -> Result<(), String> {
        let waiting: Vec<u16> = (0..ZONES).filter(|z| !self.stored[usize::from(*z)].inbox.is_empty()).collect();
        if waiting.is_empty() {
            return Ok(());
        }
        let z = waiting[self.rng.random_range(0..waiting.len())];
        let zi = usize::from(z);
        let len = self.stored[zi].inbox.len();
        let at = if self.rng.random_bool(0.2) { self.rng.random_range(0..len) } else { 0 };
        if at > 0 {
            self.stats.reordered += 1;
        }
        let (message, taken) = if self.rng.random_bool(0.05) {
            self.stats.twice += 1;
            (self.stored[zi].inbox[at].clone(), None)
        } else {
            let m = self.stored[zi].inbox.remove(at);
            (m.clone(), Some((at, m)))
        };
        let mut out = Outbox::default();
        if trace() {
            eprintln!("zone {z} reads {message:?} (at {at}, {})", if taken.is_some() { "taken" } else { "left" });
        }
        self.engines[zi].handle_border(message, self.now, &mut out);
        self.commit(z, out, taken)
    }

    /// A responder answers the offer made to them, or finishes their job.
    fn respond(&mut self) -> Result<(), String> {
        let z = self.rng.random_range(0..ZONES);
        let k = self.rng.random_range(0..RESPONDERS);
        let r = ResponderId::parse(format!("r-{z}-{k}")).unwrap();
        let mut found = None;
        for (zi, s) in self.stored.iter().enumerate() {
            for i in s.open.values() {
                if i.ladder.offers.iter().any(|o| o.responder_id == r && o.asking.is_none()) {
                    found = Some((zi, i.id, true));
                } else if i.state.has_responder_on_job() && i.responder.as_ref().is_some_and(|x| x.id == r) {
                    found = Some((zi, i.id, false));
                }
            }
        }
        let Some((zi, id, offered)) = found else {
            // Nothing to answer: now and then they go off duty or back on, with their own zone
            // (refused while held for another zone's incident).
            if self.rng.random_bool(0.3) {
                let zi = usize::from(z);
                let on = !self.engines[zi].responder(&r).is_some_and(|x| x.on_duty);
                let mut out = Outbox::default();
                if self.engines[zi].set_duty(&r, on, self.now, &mut out).is_ok() {
                    self.stats.duty += 1;
                    return self.commit(z, out, None);
                }
            }
            return Ok(());
        };
        let action = match (offered, self.rng.random_bool(0.6)) {
            (true, true) => ResponderAction::Accept,
            (true, false) => ResponderAction::Decline { reason: None },
            (false, _) => ResponderAction::Resolve { outcome: "扶起".into() },
        };
        let mut out = Outbox::default();
        if trace() {
            eprintln!("{r} on {id}: {action:?}");
        }
        self.engines[zi].responder_acts(&r, id, action, self.now, &mut out).map_err(|e| format!("{r} on {id}: {e}"))?;
        self.commit(zi as u16, out, None)
    }

    /// A dispatcher closes a resolved incident or cancels an open one.
    fn dispatch(&mut self) -> Result<(), String> {
        let z = self.rng.random_range(0..ZONES);
        let zi = usize::from(z);
        let open: Vec<&Incident> = self.stored[zi].open.values().collect();
        if open.is_empty() {
            return Ok(());
        }
        let i = open[self.rng.random_range(0..open.len())];
        let (id, action) = match i.state {
            IncidentState::Resolved => (i.id, DispatcherAction::Close { outcome: "好了".into() }),
            _ => (i.id, DispatcherAction::Cancel { reason: "误按".into() }),
        };
        let mut out = Outbox::default();
        if trace() {
            eprintln!("dispatcher on {id}: {action:?}");
        }
        self.engines[zi].dispatcher_acts("li", id, action, self.now, &mut out).map_err(|e| format!("{id}: {e}"))?;
        self.commit(z, out, None)
    }

    /// The clock runs on (now and then past offers' deadlines); every engine does what is due.
    fn tick(&mut self) -> Result<(), String> {
        // Mostly short (an answer across the border takes milliseconds), now and then past
        // an ask's 3 s, and now and then past an offer's 60 s.
        let ms = match self.rng.random_range(0..10) {
            0 => self.rng.random_range(30_000..70_000),
            1 | 2 => self.rng.random_range(1_000..4_000),
            _ => self.rng.random_range(0..300),
        };
        self.now = self.now.plus_millis(ms);
        if trace() {
            eprintln!("tick +{ms} ms");
        }
        for z in 0..ZONES {
            let mut out = Outbox::default();
            self.engines[usize::from(z)].tick(self.now, &mut out);
            self.commit(z, out, None)?;
        }
        Ok(())
    }

    fn step(&mut self) -> Result<(), String> {
        match self.rng.random_range(0..100) {
            0..25 => self.press(),
            25..60 => (0..self.rng.random_range(1..=4)).try_for_each(|_| self.deliver()),
            60..78 => self.respond(),
            78..85 => self.dispatch(),
            85..97 => self.tick(),
            _ => {
                // A zone's owner stops after its commit and the next resumes from the store.
                let z = self.rng.random_range(0..ZONES);
                if trace() {
                    eprintln!("zone {z} resumed");
                }
                self.engines[usize::from(z)] = self.resume(z);
                Ok(())
            }
        }
    }

    /// Every incident ended and every message read, losing nothing more: nobody stays held.
    fn quiet(&mut self) -> Result<(), String> {
        for round in 0..50 {
            let mut busy = false;
            for z in 0..ZONES {
                let zi = usize::from(z);
                while !self.stored[zi].inbox.is_empty() {
                    busy = true;
                    let m = self.stored[zi].inbox.remove(0);
                    let mut out = Outbox::default();
                    self.engines[zi].handle_border(m, self.now, &mut out);
                    self.store(z, &out)?;
                }
                let open: Vec<IncidentId> = self.stored[zi].open.keys().copied().collect();
                for id in open {
                    busy = true;
                    let mut out = Outbox::default();
                    let action = DispatcherAction::Cancel { reason: "收尾".into() };
                    if self.engines[zi].dispatcher_acts("li", id, action, self.now, &mut out).is_err() {
                        let close = DispatcherAction::Close { outcome: "收尾".into() };
                        self.engines[zi]
                            .dispatcher_acts("li", id, close, self.now, &mut out)
                            .map_err(|e| e.to_string())?;
                    }
                    self.store(z, &out)?;
                }
            }
            if !busy {
                let held: Vec<_> = self.stored.iter().flat_map(|s| s.holds.iter()).collect();
                return if held.is_empty() { Ok(()) } else { Err(format!("held after all ended: {held:?}")) };
            }
            if round == 49 {
                return Err("not quiet after 50 rounds".into());
            }
        }
        Ok(())
    }

    /// Stores zone `z`'s outbox, all of it, and checks the promises on what is stored.
    fn store(&mut self, z: u16, out: &Outbox) -> Result<(), String> {
        let zi = usize::from(z);
        let s = &mut self.stored[zi];
        for i in &out.incidents {
            if i.state.is_terminal() {
                s.open.remove(&i.id);
            } else {
                s.open.insert(i.id, i.clone());
            }
        }
        for h in &out.holds {
            match h.incident_id {
                Some(i) => s.holds.insert(h.responder_id.clone(), i),
                None => s.holds.remove(&h.responder_id),
            };
        }
        for r in &out.roster {
            s.duty.insert(r.id.clone(), r.on_duty);
        }
        s.counters = self.engines[zi].counters()[&zone(z)];
        for a in &out.across {
            self.stored[usize::from(a.to.number())].inbox.push(a.message.clone());
        }
        self.check()
    }
}

fn simulate(seed: u64, steps: u64) -> Result<Stats, String> {
    let mut w = World::new(seed);
    for step in 0..steps {
        w.step().map_err(|e| format!("seed {seed}, step {step}: {e}"))?;
    }
    w.quiet().map_err(|e| format!("seed {seed}, at the end: {e}"))?;
    Ok(w.stats)
}

fn trace() -> bool {
    std::env::var("ANXIN_BORDER_SIM_TRACE").is_ok()
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn no_responder_is_booked_twice_across_borders_through_late_reordered_repeated_and_lost_messages() {
    let steps = env("ANXIN_BORDER_SIM_STEPS", 5_000);
    let seeds: Vec<u64> = match std::env::var("ANXIN_BORDER_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("a seed")],
        Err(_) => (0..env("ANXIN_BORDER_SIM_SEEDS", 20)).collect(),
    };
    let mut total = Stats::default();
    for seed in seeds {
        let s = simulate(seed, steps).unwrap_or_else(|e| panic!("{e}"));
        total.commits += s.commits;
        total.lost += s.lost;
        total.reordered += s.reordered;
        total.twice += s.twice;
        total.held_offers += s.held_offers;
        total.duty += s.duty;
        for (k, n) in s.kinds {
            *total.kinds.entry(k).or_default() += n;
        }
    }
    eprintln!("{total:?}");
    // The run went where it should: every message, offers made once held, commits lost,
    // messages read out of order and twice.
    for kind in ["hold", "held", "refused", "release", "off_duty"] {
        assert!(total.kinds.get(kind).copied().unwrap_or(0) > 0, "no {kind} message in the run: {total:?}");
    }
    assert!(total.held_offers > 0 && total.lost > 0 && total.reordered > 0 && total.twice > 0, "{total:?}");
    assert!(total.duty > 0, "{total:?}");
}

#[test]
fn a_seed_replays_identically() {
    let a = simulate(7, 1_000).unwrap();
    let b = simulate(7, 1_000).unwrap();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}
