//! The day so far against the standards alarm centres are judged by, and each dispatcher's
//! day, for the supervisors' wallboard: a tally fed the incidents' events in the engine's
//! order. Like the rest of the core it reads no clock; `now` comes in as an argument.
//!
//! The tally is a function of the day's events alone (every event whose `at` is on or after
//! the centre's local midnight), so the shell rebuilds it at start from the store's log and
//! a restart mid-day shows the same figures. What each standard counts, and when an
//! incident meets it, is written out on [`Standard`].

use crate::ids::{IncidentId, Timestamp};
use crate::incident::{Actor, Change, IncidentEvent};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

const DAY_MS: i64 = 86_400_000;

/// Most missed incidents a standard lists (the latest); the counts hold them all.
pub const MISSED_LISTED: usize = 20;

/// The standards on the wallboard. An *alarm* here is an emergency (`sos`, `fall`, `fire`,
/// `intrusion`), timed from the moment it became one: when it opened, or when a press raised
/// a service request, an unreadable message or a call to one (`kind_changed`). An alarm that
/// ended (resolved, closed, cancelled, a false alarm) before its time was up without meeting
/// a standard no longer needed it and is not counted; one whose time ran out unmet is missed
/// at once, whatever happens later. Exactly on the limit counts as met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standard {
    /// TSA code of practice: 97.5% of alarm calls answered within 60 s. For Anxin an alarm is
    /// *answered* when it reaches a person who takes it on: a responder accepts it, or a
    /// dispatcher does anything with it (claims, acknowledges, answers its call, assigns,
    /// notes, escalates, ends it). An offer made, a station alerted or a family told is not
    /// an answer: nobody has taken it on yet.
    #[serde(rename = "tsa_60")]
    Tsa60,
    /// TSA code of practice: 99% of alarm calls answered within 180 s (answered as above).
    #[serde(rename = "tsa_180")]
    Tsa180,
    /// NFPA 1225: 90% of alarms processed to dispatch within 60 s: the first offer made to a
    /// responder, or a responder assigned by a dispatcher. A station's duty line alerted is
    /// not a dispatch (no unit is named).
    #[serde(rename = "nfpa_1225")]
    Nfpa1225,
    /// NENA: 90% of calls answered within 15 s: each call to the hotline (not a call out),
    /// from its ringing to a dispatcher picking it up on a console. A call answered only on a
    /// station's duty line or the fallback number was not answered by the centre; a caller who
    /// hung up before the limit is not counted.
    Nena,
    /// Telecare closed loop: a responder's arrival confirmed within 30 minutes of the alarm
    /// (they report on scene, or resolve it from the door). An alarm ended without anybody
    /// going before the limit (cancelled, a false alarm, settled on the phone) is not counted.
    ClosedLoop,
}

impl Standard {
    pub const ALL: [Standard; 5] =
        [Standard::Tsa60, Standard::Tsa180, Standard::Nfpa1225, Standard::Nena, Standard::ClosedLoop];

    /// The share of counted alarms (or calls) that must meet it, in percent. The closed loop
    /// has no published share; ours is the care aim for arrival (issue 24): 95%.
    pub fn target_pct(self) -> f64 {
        match self {
            Standard::Tsa60 => 97.5,
            Standard::Tsa180 => 99.0,
            Standard::Nfpa1225 | Standard::Nena => 90.0,
            Standard::ClosedLoop => 95.0,
        }
    }
}

/// The time each standard allows, in seconds. The defaults are the standards' own; a centre
/// may hold itself to shorter ones (`[wallboard]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandardLimits {
    pub tsa_answer_s: u32,
    pub tsa_answer_long_s: u32,
    pub nfpa_dispatch_s: u32,
    pub nena_answer_s: u32,
    pub on_scene_s: u32,
}

impl Default for StandardLimits {
    fn default() -> Self {
        Self { tsa_answer_s: 60, tsa_answer_long_s: 180, nfpa_dispatch_s: 60, nena_answer_s: 15, on_scene_s: 1800 }
    }
}

impl StandardLimits {
    pub fn within_s(&self, standard: Standard) -> u32 {
        match standard {
            Standard::Tsa60 => self.tsa_answer_s,
            Standard::Tsa180 => self.tsa_answer_long_s,
            Standard::Nfpa1225 => self.nfpa_dispatch_s,
            Standard::Nena => self.nena_answer_s,
            Standard::ClosedLoop => self.on_scene_s,
        }
    }
}

/// How a standard stands: green while the misses are within what it allows, amber up to
/// twice that, red beyond; `none` while nothing has been counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    Green,
    Amber,
    Red,
    None,
}

impl Rating {
    /// From the counts and the target share: the standard allows `100 - target` percent
    /// missed; amber is up to twice that.
    pub fn of(met: u32, missed: u32, target_pct: f64) -> Rating {
        let counted = met + missed;
        if counted == 0 {
            return Rating::None;
        }
        let missed_pct = 100.0 * f64::from(missed) / f64::from(counted);
        let allowed = 100.0 - target_pct;
        // A hair of slack: 1 of 40 missed is 2.5% exactly, and must read as within 2.5.
        if missed_pct <= allowed + 1e-9 {
            Rating::Green
        } else if missed_pct <= 2.0 * allowed + 1e-9 {
            Rating::Amber
        } else {
            Rating::Red
        }
    }
}

/// One standard's day so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StandardFigures {
    pub standard: Standard,
    pub within_s: u32,
    pub target_pct: f64,
    pub met: u32,
    pub missed: u32,
    /// Still inside their time, neither met nor missed yet.
    pub pending: u32,
    /// `met / (met + missed)` in percent; absent while nothing is counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_pct: Option<f64>,
    pub rating: Rating,
    /// The incidents that missed it, the latest first, at most [`MISSED_LISTED`].
    pub missed_ids: Vec<IncidentId>,
}

/// One dispatcher's day so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DispatcherFigures {
    /// Their staff id.
    pub id: String,
    /// Claims they made today (a call they picked up claims its incident).
    pub claimed: u32,
    /// Incidents they ended today: closed, cancelled or marked a false alarm.
    pub handled: u32,
    /// The mean time from their first action on an incident they handled to its end, in
    /// seconds; absent while they have handled none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handling_s_avg: Option<f64>,
}

/// The day so far: what the `wallboard` frame carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayFigures {
    /// The centre's local midnight the day began at.
    pub day_start: Timestamp,
    /// As of when.
    pub as_of: Timestamp,
    pub standards: Vec<StandardFigures>,
    /// Every dispatcher who did anything today, by staff id.
    pub dispatchers: Vec<DispatcherFigures>,
    /// Devices that cannot call now (silent past their window, or switched off), as the
    /// engine last counted them.
    pub devices_offline: u32,
}

/// One alarm's or call's progress against a standard.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Clocked {
    /// When the clock started (`None`: not counted, e.g. not an emergency).
    pub(crate) start: Option<Timestamp>,
    /// When it was met.
    pub(crate) done: Option<Timestamp>,
    /// When it ended without being met.
    pub(crate) ended: Option<Timestamp>,
}

pub(crate) enum Verdict {
    Met,
    Missed(Timestamp),
    Pending(Timestamp),
    NotCounted,
}

impl Clocked {
    pub(crate) fn verdict(&self, within_ms: i64, now: Timestamp) -> Verdict {
        let Some(start) = self.start else { return Verdict::NotCounted };
        let deadline = start.plus_millis(within_ms);
        match (self.done, self.ended) {
            (Some(done), _) if done <= deadline => Verdict::Met,
            (Some(_), _) => Verdict::Missed(deadline),
            (None, Some(ended)) if ended <= deadline => Verdict::NotCounted,
            (None, _) if now > deadline => Verdict::Missed(deadline),
            (None, _) => Verdict::Pending(deadline),
        }
    }

    pub(crate) fn meet(&mut self, at: Timestamp) {
        if self.done.is_none() {
            self.done = Some(at);
        }
    }
}

/// An incident seen opening today.
#[derive(Debug, Clone, Default)]
struct Track {
    /// Answered (TSA, both limits), from becoming an emergency.
    answer: Clocked,
    /// Processed to dispatch (NFPA 1225).
    dispatch: Clocked,
    /// A responder on scene (closed loop).
    on_scene: Clocked,
}

impl Track {
    fn became_emergency(&mut self, at: Timestamp) {
        for c in [&mut self.answer, &mut self.dispatch, &mut self.on_scene] {
            if c.start.is_none() {
                c.start = Some(at);
            }
        }
    }

    fn ended(&mut self, at: Timestamp) {
        for c in [&mut self.answer, &mut self.dispatch, &mut self.on_scene] {
            if c.ended.is_none() {
                c.ended = Some(at);
            }
        }
    }
}

#[derive(Debug, Clone, Default)]
struct Desk {
    claimed: u32,
    handled: u32,
    handling_ms: i64,
}

/// The day's tally. Feed it every committed event in order ([`DayTally::observe`]); read it
/// with [`DayTally::figures`].
#[derive(Debug, Clone)]
pub struct DayTally {
    limits: StandardLimits,
    utc_offset_min: i32,
    day_start: Timestamp,
    tracks: HashMap<IncidentId, Track>,
    /// Calls in (NENA), by call id, with the incident they rang on.
    calls: HashMap<String, (IncidentId, Clocked)>,
    desks: BTreeMap<String, Desk>,
    /// Each dispatcher's first action on each incident today.
    first_touch: HashMap<(IncidentId, String), Timestamp>,
}

impl DayTally {
    /// An empty tally for the local day `now` falls in.
    pub fn new(limits: StandardLimits, utc_offset_min: i32, now: Timestamp) -> Self {
        Self {
            limits,
            utc_offset_min,
            day_start: local_midnight(now, utc_offset_min),
            tracks: HashMap::new(),
            calls: HashMap::new(),
            desks: BTreeMap::new(),
            first_touch: HashMap::new(),
        }
    }

    /// The local midnight this tally's day began at.
    pub fn day_start(&self) -> Timestamp {
        self.day_start
    }

    /// When the day ends and the tally starts afresh.
    pub fn day_end(&self) -> Timestamp {
        // A day is 24 hours here: the centre's offset is fixed (no summer time in China).
        self.day_start.plus_millis(DAY_MS)
    }

    /// Starts a new day if `now` is past this one's end. `true` if it did.
    pub fn roll(&mut self, now: Timestamp) -> bool {
        if now < self.day_end() {
            return false;
        }
        *self = DayTally::new(self.limits, self.utc_offset_min, now);
        true
    }

    /// Takes in one committed event. Events of an earlier day are passed over; one of a later
    /// day starts that day first.
    pub fn observe(&mut self, e: &IncidentEvent) {
        if e.at < self.day_start {
            return;
        }
        self.roll(e.at);
        let id = e.incident_id;
        let dispatcher = match &e.actor {
            Actor::Dispatcher(d) => Some(d.as_str()),
            _ => None,
        };
        if let Some(d) = dispatcher {
            self.first_touch.entry((id, d.to_string())).or_insert(e.at);
            self.desks.entry(d.to_string()).or_default();
        }
        match &e.change {
            Change::Opened { kind, .. } => {
                let track = self.tracks.entry(id).or_default();
                if kind.is_emergency() {
                    track.became_emergency(e.at);
                }
            }
            Change::KindChanged { to, .. } if to.is_emergency() => {
                if let Some(track) = self.tracks.get_mut(&id) {
                    track.became_emergency(e.at);
                }
            }
            Change::Claimed { by, .. } => self.desks.entry(by.clone()).or_default().claimed += 1,
            Change::CallRang { call_id, .. } => {
                let clocked = Clocked { start: Some(e.at), ..Clocked::default() };
                self.calls.entry(call_id.clone()).or_insert((id, clocked));
            }
            Change::CallAnswered { call_id, .. } if dispatcher.is_some() => {
                if let Some((_, c)) = self.calls.get_mut(call_id) {
                    c.meet(e.at);
                }
            }
            Change::CallEnded { call_id, .. } => {
                if let Some((_, c)) = self.calls.get_mut(call_id) {
                    c.ended.get_or_insert(e.at);
                }
            }
            _ => {}
        }
        if let Some(track) = self.tracks.get_mut(&id) {
            let person = dispatcher.is_some() || matches!(e.change, Change::Accepted { .. });
            if person {
                track.answer.meet(e.at);
            }
            if matches!(e.change, Change::Offered { .. } | Change::Assigned { .. }) {
                track.dispatch.meet(e.at);
            }
            let arrived = matches!(e.change, Change::OnScene)
                || (matches!(e.change, Change::Resolved { .. }) && matches!(e.actor, Actor::Responder(_)));
            if arrived {
                track.on_scene.meet(e.at);
            }
            if matches!(
                e.change,
                Change::Resolved { .. } | Change::Closed { .. } | Change::Cancelled { .. } | Change::FalseAlarm { .. }
            ) {
                track.ended(e.at);
            }
        }
        let ends = matches!(e.change, Change::Closed { .. } | Change::Cancelled { .. } | Change::FalseAlarm { .. });
        if let (true, Some(d)) = (ends, dispatcher) {
            let from = self.first_touch.get(&(id, d.to_string())).copied().unwrap_or(e.at);
            let desk = self.desks.entry(d.to_string()).or_default();
            desk.handled += 1;
            desk.handling_ms += (e.at.millis() - from.millis()).max(0);
        }
    }

    /// The figures as of `now` (alarms whose time ran out by `now` count as missed).
    pub fn figures(&self, now: Timestamp, devices_offline: u32) -> DayFigures {
        let standards = Standard::ALL.iter().map(|s| self.standard(*s, now)).collect();
        let dispatchers = self
            .desks
            .iter()
            .map(|(id, d)| DispatcherFigures {
                id: id.clone(),
                claimed: d.claimed,
                handled: d.handled,
                handling_s_avg: (d.handled > 0).then(|| d.handling_ms as f64 / 1000.0 / f64::from(d.handled)),
            })
            .collect();
        DayFigures { day_start: self.day_start, as_of: now, standards, dispatchers, devices_offline }
    }

    /// The next moment the figures change with no event: an alarm's or call's time running
    /// out, or the day ending.
    pub fn next_change(&self, now: Timestamp) -> Timestamp {
        let mut next = self.day_end();
        for s in Standard::ALL {
            self.each(s, |_, c| {
                if let Verdict::Pending(deadline) = c.verdict(self.within_ms(s), now) {
                    // Missed only once past it.
                    next = next.min(deadline.plus_millis(1));
                }
            });
        }
        next
    }

    fn within_ms(&self, s: Standard) -> i64 {
        i64::from(self.limits.within_s(s)) * 1000
    }

    fn each(&self, s: Standard, mut f: impl FnMut(IncidentId, &Clocked)) {
        match s {
            Standard::Tsa60 | Standard::Tsa180 => self.tracks.iter().for_each(|(id, t)| f(*id, &t.answer)),
            Standard::Nfpa1225 => self.tracks.iter().for_each(|(id, t)| f(*id, &t.dispatch)),
            Standard::ClosedLoop => self.tracks.iter().for_each(|(id, t)| f(*id, &t.on_scene)),
            Standard::Nena => self.calls.values().for_each(|(id, c)| f(*id, c)),
        }
    }

    fn standard(&self, s: Standard, now: Timestamp) -> StandardFigures {
        let (mut met, mut missed, mut pending) = (0, 0, 0);
        let mut missed_at: Vec<(Timestamp, IncidentId)> = Vec::new();
        self.each(s, |id, c| match c.verdict(self.within_ms(s), now) {
            Verdict::Met => met += 1,
            Verdict::Missed(deadline) => {
                missed += 1;
                missed_at.push((deadline, id));
            }
            Verdict::Pending(_) => pending += 1,
            Verdict::NotCounted => {}
        });
        missed_at.sort_unstable_by(|a, b| b.cmp(a));
        let mut missed_ids: Vec<IncidentId> = Vec::with_capacity(MISSED_LISTED);
        for (_, id) in missed_at {
            // A call missed twice on one incident is listed once.
            if !missed_ids.contains(&id) {
                missed_ids.push(id);
                if missed_ids.len() == MISSED_LISTED {
                    break;
                }
            }
        }
        let target_pct = s.target_pct();
        let counted = met + missed;
        StandardFigures {
            standard: s,
            within_s: self.limits.within_s(s),
            target_pct,
            met,
            missed,
            pending,
            share_pct: (counted > 0).then(|| 100.0 * f64::from(met) / f64::from(counted)),
            rating: Rating::of(met, missed, target_pct),
            missed_ids,
        }
    }
}

/// The centre's local midnight on or before `t`.
pub fn local_midnight(t: Timestamp, utc_offset_min: i32) -> Timestamp {
    let offset = i64::from(utc_offset_min) * 60_000;
    Timestamp((t.millis() + offset).div_euclid(DAY_MS) * DAY_MS - offset)
}
