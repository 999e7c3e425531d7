//! What the runtime's simulations share: the district, the devices and what they publish,
//! the durable state a store keeps (with the promises a commit must keep checked as it
//! lands), a clock moved by hand.

#![allow(dead_code)]

use anxin_core::*;
use anxin_proto::{Caller, Delivery, Request, Topics};
use anxin_runtime::ports::BoxFuture;
use rand::rngs::SmallRng;
use rand::Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

pub const T0: Timestamp = Timestamp(1_763_000_000_000);
pub const DEVICES: usize = 10;
pub const RESPONDERS: usize = 4;

/// A device message as the fake broker delivers it.
#[derive(Debug, Clone)]
pub struct SimMsg {
    /// The broker's own number for this publish (redeliveries keep it).
    pub id: u64,
    pub topic: String,
    pub payload: Vec<u8>,
    pub received: Instant,
    /// What the store must hold once this message is acknowledged: its device and message
    /// id (a fingerprint for an unreadable payload); `None` when it stores nothing (a
    /// heartbeat, an unknown type, an unknown device, a bad topic).
    pub stores: Option<(DeviceId, MessageId)>,
}

impl Delivery for SimMsg {
    fn topic(&self) -> &str {
        &self.topic
    }
    fn payload(&self) -> &[u8] {
        &self.payload
    }
    fn received(&self) -> Instant {
        self.received
    }
}

/// What the store has committed: what a restart resumes from.
#[derive(Debug, Default)]
pub struct Durable {
    pub messages: BTreeMap<(DeviceId, MessageId), MessageRecord>,
    pub events: BTreeMap<u64, IncidentEvent>,
    pub incidents: BTreeMap<IncidentId, Incident>,
    pub roster: BTreeMap<ResponderId, Responder>,
    /// Each device's open incident.
    pub open_by_device: BTreeMap<DeviceId, IncidentId>,
}

impl Durable {
    /// What a store gives an engine starting at `now`: the open incidents, the messages
    /// received inside the dedup window, the counters.
    pub fn resume(&self, now: Timestamp) -> Resume {
        let since = now.plus_millis(-policy().dedup_window_ms);
        let mut recent: Vec<_> = self
            .messages
            .values()
            .filter(|m| m.received_at >= since)
            .map(|m| (m.received_at, m.device_id.clone(), m.msg_id.clone()))
            .collect();
        recent.sort();
        Resume {
            open: self.open_by_device.values().map(|id| self.incidents[id].clone()).collect(),
            recent_messages: recent,
            counters: [(
                anxin_core::Zone::FIRST,
                anxin_core::Counters {
                    incident: self.incidents.keys().next_back().map_or(0, |i| i.0),
                    seq: self.last_seq(),
                    ..Default::default()
                },
            )]
            .into(),
            health: vec![],
            activity: vec![],
            programme: vec![],
            ..Resume::default()
        }
    }

    pub fn last_seq(&self) -> u64 {
        self.events.keys().next_back().copied().unwrap_or(0)
    }

    pub fn open(&self) -> BTreeMap<IncidentId, u64> {
        self.open_by_device.values().map(|id| (*id, self.incidents[id].last_seq)).collect()
    }
}

impl Durable {
    /// Puts a committed batch into the durable state; the first broken promise it would
    /// store, if any (then the rest of the batch is not landed, and the run fails).
    pub fn land(&mut self, out: &Outbox) -> Result<(), String> {
        for m in &out.messages {
            let key = (m.device_id.clone(), m.msg_id.clone());
            match self.messages.get(&key) {
                Some(stored) if stored != m => {
                    return Err(format!("message {key:?} stored twice, differently: {stored:?} then {m:?}"));
                }
                _ => {
                    self.messages.insert(key, m.clone());
                }
            }
        }
        for e in &out.events {
            match self.events.get(&e.seq) {
                Some(stored) if stored != e => {
                    return Err(format!("sequence number {} used for two events: {stored:?} then {e:?}", e.seq));
                }
                _ => {
                    self.events.insert(e.seq, e.clone());
                }
            }
        }
        for i in &out.incidents {
            // The stores' upsert would refuse this; the runtime must never ask for it.
            if let Some(stored) = self.incidents.get(&i.id).filter(|s| s.last_seq > i.last_seq) {
                return Err(format!(
                    "incident {}'s row would go back from seq {} to {}: two batches writing it committed out of order",
                    i.id, stored.last_seq, i.last_seq
                ));
            }
            self.incidents.insert(i.id, i.clone());
            let open = &mut self.open_by_device;
            if !i.state.is_terminal() {
                match open.insert(i.device_id.clone(), i.id) {
                    Some(other) if other != i.id => {
                        return Err(format!("device {} has two open incidents, {other} and {}", i.device_id, i.id));
                    }
                    _ => {}
                }
            } else if open.get(&i.device_id) == Some(&i.id) {
                open.remove(&i.device_id);
            }
        }
        for r in &out.roster {
            self.roster.insert(r.id.clone(), r.clone());
        }
        Ok(())
    }

    /// The incidents on which each responder holds a live offer or the job, as stored.
    pub fn holds(&self) -> BTreeMap<ResponderId, Vec<IncidentId>> {
        let mut holds: BTreeMap<ResponderId, Vec<IncidentId>> = BTreeMap::new();
        for id in self.open_by_device.values() {
            let i = &self.incidents[id];
            for o in &i.ladder.offers {
                holds.entry(o.responder_id.clone()).or_default().push(i.id);
            }
            if let Some(a) = &i.responder {
                if !i.ladder.offers.iter().any(|o| o.responder_id == a.id) {
                    holds.entry(a.id.clone()).or_default().push(i.id);
                }
            }
        }
        holds
    }
}

/// A clock moved by hand.
#[derive(Debug, Clone)]
pub struct FakeClock(pub Arc<ClockHand>);

#[derive(Debug)]
pub struct ClockHand {
    pub now: AtomicI64,
    pub moved: Notify,
    pub base: Instant,
}

impl std::ops::Deref for FakeClock {
    type Target = ClockHand;
    fn deref(&self) -> &ClockHand {
        &self.0
    }
}

impl FakeClock {
    /// A clock reading [`T0`].
    pub fn new() -> Self {
        FakeClock(Arc::new(ClockHand { now: AtomicI64::new(T0.millis()), moved: Notify::new(), base: Instant::now() }))
    }

    pub fn advance(&self, ms: i64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
        self.moved.notify_waiters();
    }
}

impl anxin_runtime::Clock for FakeClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.now.load(Ordering::SeqCst))
    }

    fn sleep_until(&self, t: Timestamp) -> BoxFuture<'static, ()> {
        let clock = self.clone();
        Box::pin(async move {
            loop {
                let moved = clock.moved.notified();
                if clock.now.load(Ordering::SeqCst) >= t.millis() {
                    return;
                }
                moved.await;
            }
        })
    }

    fn instant(&self) -> Instant {
        self.base + Duration::from_millis((self.now.load(Ordering::SeqCst) - T0.millis()).max(0) as u64)
    }
}

pub fn coords(rng: &mut SmallRng) -> Coordinates {
    Coordinates::new(rng.random_range(24.99..25.03), rng.random_range(102.67..102.71)).unwrap()
}

pub fn district(rng: &mut SmallRng) -> Registry {
    let mut r = Registry::default();
    for s in 0..2 {
        r.stations.push(Station {
            id: StationId::parse(format!("s{s}")).unwrap(),
            name: format!("s{s}"),
            position: coords(rng),
            phone: None,
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
            profile: Default::default(),
        });
        r.devices.push(Device {
            id: DeviceId::parse(format!("d{i}")).unwrap(),
            elder_id: ElderId::parse(format!("e{i}")).unwrap(),
            model: None,
            sim: None,
        });
    }
    for i in 0..RESPONDERS {
        r.responders.push(Responder {
            id: ResponderId::parse(format!("r{i}")).unwrap(),
            name: format!("r{i}"),
            station_id: StationId::parse(format!("s{}", i % 2)).unwrap(),
            phone: None,
            position: coords(rng),
            on_duty: true,
            mode: TravelMode::Ebike,
            skills: vec!["first_aid".into()],
            position_at: None,
            token_sha256: None,
            provider_id: None,
        });
    }
    r
}

/// Short timers, so that offers lapse and ladders climb within a run; a dedup window of an
/// hour (a device sends a message again within seconds, the broker after a restart).
pub fn policy() -> Policy {
    Policy {
        offer_timeout_ms: 20_000,
        station_timeout_ms: 40_000,
        reminder_interval_ms: 30_000,
        dedup_window_ms: 3_600_000,
        ..Policy::default()
    }
}

/// A responder answers their offer, or a dispatcher acts, on one of the open incidents the
/// store holds; `None` when none is open.
pub fn request(rng: &mut SmallRng, durable: &Durable) -> Option<(Caller, Request)> {
    let open: Vec<_> = durable.open_by_device.values().map(|id| durable.incidents[id].clone()).collect();
    if open.is_empty() {
        return None;
    }
    let incident = &open[rng.random_range(0..open.len())];
    let offered = incident.ladder.offers.first().map(|o| o.responder_id.clone());
    let pick = rng.random_range(0..10);
    Some(match (pick, offered, &incident.responder) {
        (0..=3, Some(r), _) => {
            let action = if pick < 3 { ResponderAction::Accept } else { ResponderAction::Decline { reason: None } };
            (Caller::Responder(r), Request::Respond { incident: incident.id, action })
        }
        (4..=5, _, Some(a)) => {
            let action = if pick == 4 { ResponderAction::OnScene } else { ResponderAction::EnRoute };
            (Caller::Responder(a.id.clone()), Request::Respond { incident: incident.id, action })
        }
        (9, _, _) => {
            // A dispatcher claims, or signs out (their claims end, and what still
            // needs a person alarms again), or their console comes or goes.
            let caller = Caller::Dispatcher { id: "li".into(), supervisor: false };
            let request = match rng.random_range(0..4) {
                0 => Request::SignedOut,
                1 => Request::Presence { online: rng.random_bool(0.5) },
                _ => Request::Dispatch { incident: incident.id, action: DispatcherAction::Claim },
            };
            (caller, request)
        }
        _ => {
            let action = match pick {
                // The alarm the console showed.
                6 => DispatcherAction::Acknowledge { alarm: incident.alarm.map(|a| a.raised_seq) },
                7 => DispatcherAction::Note { text: "called the daughter".into() },
                _ => DispatcherAction::Close { outcome: "handled".into() },
            };
            let caller = Caller::Dispatcher { id: "wang".into(), supervisor: true };
            (caller, Request::Dispatch { incident: incident.id, action })
        }
    })
}

/// The devices: what they publish next, and what they sent, to send again as a device does
/// when it missed the PUBACK.
#[derive(Debug)]
pub struct Devices {
    pub topics: Topics,
    /// Each device's next message number.
    next_msg: Vec<u64>,
    sent: Vec<Vec<SimMsg>>,
}

impl Default for Devices {
    fn default() -> Self {
        Self { topics: Topics::default(), next_msg: vec![0; DEVICES], sent: vec![Vec::new(); DEVICES] }
    }
}

impl Devices {
    /// A device publishes something at `now` (the broker numbers it): a press, a fall, a
    /// service call, a cancel, a heartbeat, an unknown type, garbage, a message again, or
    /// something from a device not in the ledger or on no device's topic.
    pub fn publish(&mut self, rng: &mut SmallRng, now: i64, received: Instant) -> SimMsg {
        let (device, what, retry) =
            (rng.random_range(0..DEVICES + 1), rng.random_range(0..100u32), rng.random_bool(0.08));
        if device < DEVICES && retry && !self.sent[device].is_empty() {
            let sent = self.sent[device].len();
            let i = rng.random_range(sent.saturating_sub(3)..sent);
            return self.sent[device][i].clone();
        }
        let (topic, payload, stores) = if device == DEVICES {
            // Not in the ledger, or not a device topic at all.
            let topic = if what < 50 { "anxin/v1/devices/ghost/events".to_string() } else { "anxin/v1/oops".into() };
            (topic, br#"{"msg_id":"x","type":"sos"}"#.to_vec(), None)
        } else {
            let id = DeviceId::parse(format!("d{device}")).unwrap();
            self.next_msg[device] += 1;
            let msg_id = format!("m{}", self.next_msg[device]);
            let topic = self.topics.events(&id);
            let typed = |t: &str| format!(r#"{{"msg_id":"{msg_id}","type":"{t}","ts":{now}}}"#).into_bytes();
            let stores = |m: &str| Some((id.clone(), MessageId::parse(m).unwrap()));
            match what {
                0..=39 => (topic, typed("sos"), stores(&msg_id)),
                40..=49 => (topic, typed("fall"), stores(&msg_id)),
                50..=54 => (topic, typed("service"), stores(&msg_id)),
                55..=69 => (topic, typed("cancel"), stores(&msg_id)),
                70..=84 => (topic, typed("heartbeat"), None),
                85..=89 => (topic, typed("teleport"), None),
                _ => {
                    let garbage = format!("{{\"msg_id\": {msg_id} oops").into_bytes();
                    let print = anxin_proto::fingerprint(&garbage);
                    (topic, garbage, Some((id.clone(), print)))
                }
            }
        };
        let msg = SimMsg { id: 0, topic, payload, received, stores };
        if device < DEVICES {
            self.sent[device].push(msg.clone());
        }
        msg
    }
}

/// Lets every task run until all of them wait (the tokio clock is paused, so a sleep on it
/// returns only when nothing else can run).
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

pub fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")))
}

/// Runs `f` on a runtime of one thread whose clock is paused (it moves only when every task
/// waits), as the simulations do.
pub fn paused<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(f)
}

/// The seeds and steps a run asks for through `{PREFIX}_SEED` (one seed, to replay it),
/// `{PREFIX}_SEEDS` (1 to N) and `{PREFIX}_STEPS`.
pub fn budget(prefix: &str, seeds: u64, steps: u64) -> (Vec<u64>, u64) {
    let steps = env(&format!("{prefix}_STEPS")).unwrap_or(steps);
    let seeds = match env(&format!("{prefix}_SEED")) {
        Some(seed) => vec![seed],
        None => (1..=env(&format!("{prefix}_SEEDS")).unwrap_or(seeds)).collect(),
    };
    (seeds, steps)
}
