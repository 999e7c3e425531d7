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
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

type HashMap<K, V> = crate::engine::HashMap<K, V>;

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
    Pending,
    NotCounted,
}

impl Clocked {
    pub(crate) fn verdict(&self, within_ms: i64, now: Timestamp) -> Verdict {
        match self.standing(within_ms) {
            Standing::NotCounted => Verdict::NotCounted,
            Standing::Met => Verdict::Met,
            Standing::Late(deadline) => Verdict::Missed(deadline),
            Standing::Waiting(deadline) if now > deadline => Verdict::Missed(deadline),
            Standing::Waiting(_) => Verdict::Pending,
        }
    }

    pub(crate) fn meet(&mut self, at: Timestamp) {
        if self.done.is_none() {
            self.done = Some(at);
        }
    }

    /// Where it stands whatever the time ([`Clocked::verdict`] is this as of a moment).
    fn standing(&self, within_ms: i64) -> Standing {
        let Some(start) = self.start else { return Standing::NotCounted };
        let deadline = start.plus_millis(within_ms);
        match (self.done, self.ended) {
            (Some(done), _) if done <= deadline => Standing::Met,
            (Some(_), _) => Standing::Late(deadline),
            (None, Some(ended)) if ended <= deadline => Standing::NotCounted,
            (None, _) => Standing::Waiting(deadline),
        }
    }
}

/// A clock's verdict before the time is known: settled whatever the time, or waiting for its
/// deadline (missed once past it, pending until then).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    NotCounted,
    Met,
    /// Met after its deadline: missed.
    Late(Timestamp),
    /// Neither met nor ended inside its time.
    Waiting(Timestamp),
}

/// A clock on a standard's board: its deadline first, so the board is in deadline order;
/// then the incident, and which of the incident's clocks (0 for its alarm, a call's number
/// for each call to it).
type Entry = (Timestamp, IncidentId, u32);

/// One standard's clocks, sorted by how they stand, so that the figures are read off in
/// time that does not grow with the day's alarms: every event moves the clocks it changed,
/// and the time only decides which of the waiting ones are past their deadline (a range of
/// the sorted set).
#[derive(Debug, Clone, Default)]
struct Board {
    met: u32,
    late: BTreeSet<Entry>,
    waiting: BTreeSet<Entry>,
}

impl Board {
    fn shift(&mut self, id: IncidentId, clock: u32, before: Standing, after: Standing) {
        if before == after {
            return;
        }
        match before {
            Standing::NotCounted => {}
            Standing::Met => self.met -= 1,
            Standing::Late(d) => {
                self.late.remove(&(d, id, clock));
            }
            Standing::Waiting(d) => {
                self.waiting.remove(&(d, id, clock));
            }
        }
        match after {
            Standing::NotCounted => {}
            Standing::Met => self.met += 1,
            Standing::Late(d) => {
                self.late.insert((d, id, clock));
            }
            Standing::Waiting(d) => {
                self.waiting.insert((d, id, clock));
            }
        }
    }

    /// The waiting clocks missed by `now` (past their deadline), latest first.
    fn overdue(&self, now: Timestamp) -> impl DoubleEndedIterator<Item = &Entry> {
        self.waiting.range((Bound::Unbounded, Bound::Excluded((now, IncidentId(0), 0))))
    }
}

/// Which of a [`Track`]'s clocks a standard reads.
type TrackClock = fn(&Track) -> Clocked;

/// An incident seen opening today.
#[derive(Debug, Clone, Copy, Default)]
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
    /// Sorted, not hashed: a hash table grows all at once, and growing it past 57,344 of the
    /// day's alarms (a surge in `press_load`) held up the engine's events for tens of
    /// milliseconds; the ids come in rising order, so the tree grows at its end.
    tracks: BTreeMap<IncidentId, Track>,
    /// Calls in (NENA), by call id, with the incident they rang on and their number today.
    calls: HashMap<String, (IncidentId, u32, Clocked)>,
    desks: BTreeMap<String, Desk>,
    /// Each dispatcher's first action on each incident today.
    first_touch: HashMap<(IncidentId, String), Timestamp>,
    /// Each standard's clocks, indexed by `Standard as usize` (their order in
    /// [`Standard::ALL`]).
    boards: [Board; 5],
}

impl DayTally {
    /// An empty tally for the local day `now` falls in.
    pub fn new(limits: StandardLimits, utc_offset_min: i32, now: Timestamp) -> Self {
        Self {
            limits,
            utc_offset_min,
            day_start: local_midnight(now, utc_offset_min),
            tracks: BTreeMap::new(),
            calls: HashMap::default(),
            desks: BTreeMap::new(),
            first_touch: HashMap::default(),
            boards: Default::default(),
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
        let timed = times_an_alarm(e);
        let track_before = if timed { self.tracks.get(&id).copied() } else { None };
        let call_before = self.call_of(&e.change);
        self.apply(e, timed);
        if let Some(after) = timed.then(|| self.tracks.get(&id).copied()).flatten() {
            let before = track_before.unwrap_or_default();
            let clocks: [(Standard, TrackClock); 4] = [
                (Standard::Tsa60, |t: &Track| t.answer),
                (Standard::Tsa180, |t: &Track| t.answer),
                (Standard::Nfpa1225, |t: &Track| t.dispatch),
                (Standard::ClosedLoop, |t: &Track| t.on_scene),
            ];
            for (s, clock) in clocks {
                let within = self.within_ms(s);
                let (was, is) = (clock(&before).standing(within), clock(&after).standing(within));
                self.boards[s as usize].shift(id, 0, was, is);
            }
        }
        if let Some(after) = self.call_of(&e.change) {
            let (incident, number, clocked) = after;
            let within = self.within_ms(Standard::Nena);
            let was = call_before.map_or(Standing::NotCounted, |(_, _, c)| c.standing(within));
            self.boards[Standard::Nena as usize].shift(incident, number, was, clocked.standing(within));
        }
    }

    /// The call an event is about, as the tally has it.
    fn call_of(&self, change: &Change) -> Option<(IncidentId, u32, Clocked)> {
        match change {
            Change::CallRang { call_id, .. }
            | Change::CallAnswered { call_id, .. }
            | Change::CallEnded { call_id, .. } => self.calls.get(call_id).copied(),
            _ => None,
        }
    }

    /// What an event changes of the day's clocks and desks ([`DayTally::observe`] then moves
    /// the clocks it changed on the standards' boards).
    /// `timed`: whether it may start or stop an alarm's clocks ([`times_an_alarm`]).
    fn apply(&mut self, e: &IncidentEvent, timed: bool) {
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
                let number = self.calls.len() as u32;
                self.calls.entry(call_id.clone()).or_insert((id, number, clocked));
            }
            Change::CallAnswered { call_id, .. } if dispatcher.is_some() => {
                if let Some((_, _, c)) = self.calls.get_mut(call_id) {
                    c.meet(e.at);
                }
            }
            Change::CallEnded { call_id, .. } => {
                if let Some((_, _, c)) = self.calls.get_mut(call_id) {
                    c.ended.get_or_insert(e.at);
                }
            }
            _ => {}
        }
        if let Some(track) = timed.then(|| self.tracks.get_mut(&id)).flatten() {
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
        let first_pending = self
            .boards
            .iter()
            .filter_map(|b| b.waiting.range((now, IncidentId(0), 0)..).next())
            // Missed only once past it.
            .map(|(deadline, _, _)| deadline.plus_millis(1));
        first_pending.fold(self.day_end(), Timestamp::min)
    }

    fn within_ms(&self, s: Standard) -> i64 {
        i64::from(self.limits.within_s(s)) * 1000
    }

    fn standard(&self, s: Standard, now: Timestamp) -> StandardFigures {
        let board = &self.boards[s as usize];
        let overdue = board.overdue(now).count() as u32;
        let met = board.met;
        let missed = board.late.len() as u32 + overdue;
        let pending = board.waiting.len() as u32 - overdue;
        // The latest missed first, met late or overdue alike; an incident listed once.
        let mut late = board.late.iter().rev().peekable();
        let mut overdue = board.overdue(now).rev().peekable();
        let mut missed_ids: Vec<IncidentId> = Vec::with_capacity(MISSED_LISTED);
        while missed_ids.len() < MISSED_LISTED {
            let next = match (late.peek(), overdue.peek()) {
                (Some(a), Some(b)) if a >= b => late.next(),
                (Some(_), Some(_)) | (None, Some(_)) => overdue.next(),
                (Some(_), None) => late.next(),
                (None, None) => break,
            };
            let Some(&(_, id, _)) = next else { break };
            if !missed_ids.contains(&id) {
                missed_ids.push(id);
            }
        }
        self.figures_of(s, met, missed, pending, missed_ids)
    }

    /// A standard's figures from its counts.
    fn figures_of(
        &self,
        s: Standard,
        met: u32,
        missed: u32,
        pending: u32,
        missed_ids: Vec<IncidentId>,
    ) -> StandardFigures {
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

/// Whether `e` may start or stop an alarm's clocks (most of an incident's events do neither:
/// an alert to a station, the help coming told to the device, a family told...): the day's
/// alarms are not looked up for the others.
fn times_an_alarm(e: &IncidentEvent) -> bool {
    matches!(e.actor, Actor::Dispatcher(_))
        || matches!(
            e.change,
            Change::Opened { .. }
                | Change::KindChanged { .. }
                | Change::Accepted { .. }
                | Change::Offered { .. }
                | Change::Assigned { .. }
                | Change::OnScene
                | Change::Resolved { .. }
                | Change::Closed { .. }
                | Change::Cancelled { .. }
                | Change::FalseAlarm { .. }
        )
}

/// The centre's local midnight on or before `t`.
pub fn local_midnight(t: Timestamp, utc_offset_min: i32) -> Timestamp {
    let offset = i64::from(utc_offset_min) * 60_000;
    Timestamp((t.millis() + offset).div_euclid(DAY_MS) * DAY_MS - offset)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::Coordinates;
    use crate::ids::{MessageId, ResponderId};
    use crate::incident::{IncidentKind, Location, LocationSource};
    use crate::telephony::{CallEnd, CallerMatch};
    use rand::{Rng, SeedableRng};

    impl DayTally {
        /// The figures as the tally worked them out before the boards: every clock of the day
        /// judged afresh, as `Clocked::verdict` says. What the boards must always agree with.
        fn figures_by_scan(&self, now: Timestamp) -> (Vec<StandardFigures>, Timestamp) {
            let clocks = |s: Standard| -> Vec<(IncidentId, Clocked)> {
                match s {
                    Standard::Tsa60 | Standard::Tsa180 => self.tracks.iter().map(|(id, t)| (*id, t.answer)).collect(),
                    Standard::Nfpa1225 => self.tracks.iter().map(|(id, t)| (*id, t.dispatch)).collect(),
                    Standard::ClosedLoop => self.tracks.iter().map(|(id, t)| (*id, t.on_scene)).collect(),
                    Standard::Nena => self.calls.values().map(|(id, _, c)| (*id, *c)).collect(),
                }
            };
            let mut next = self.day_end();
            let standards = Standard::ALL
                .iter()
                .map(|&s| {
                    let (mut met, mut missed, mut pending) = (0, 0, 0);
                    let mut missed_at = Vec::new();
                    for (id, c) in clocks(s) {
                        let deadline = c.start.map(|t| t.plus_millis(self.within_ms(s)));
                        match c.verdict(self.within_ms(s), now) {
                            Verdict::Met => met += 1,
                            Verdict::Missed(deadline) => {
                                missed += 1;
                                missed_at.push((deadline, id));
                            }
                            Verdict::Pending => {
                                pending += 1;
                                next = next.min(deadline.expect("pending has a start").plus_millis(1));
                            }
                            Verdict::NotCounted => {}
                        }
                    }
                    missed_at.sort_unstable_by(|a, b| b.cmp(a));
                    let mut missed_ids = Vec::new();
                    for (_, id) in missed_at {
                        if !missed_ids.contains(&id) && missed_ids.len() < MISSED_LISTED {
                            missed_ids.push(id);
                        }
                    }
                    self.figures_of(s, met, missed, pending, missed_ids)
                })
                .collect();
            (standards, next)
        }
    }

    /// A random day's events: alarms and service requests opening, turning into alarms, offered,
    /// assigned, accepted, reached, ended, touched by dispatchers; calls ringing, answered and
    /// hung up; the clock read at random moments between them, often right on a limit.
    #[test]
    fn the_boards_agree_with_judging_every_clock_afresh() {
        let limits = StandardLimits {
            tsa_answer_s: 60,
            tsa_answer_long_s: 180,
            nfpa_dispatch_s: 60,
            nena_answer_s: 15,
            on_scene_s: 600,
        };
        let midnight = local_midnight(Timestamp(1_763_000_000_000), 480);
        let location = Location {
            at: Coordinates::new(25.0, 102.7).unwrap(),
            accuracy_m: None,
            source: LocationSource::Home,
            fix_rejected: None,
        };
        let r = ResponderId::parse("r-1").unwrap();
        for seed in 0..200u64 {
            let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
            let mut tally = DayTally::new(limits, 480, midnight);
            let mut now = midnight.plus_millis(rng.random_range(0..3_600_000));
            let (mut seq, mut calls) = (0, 0);
            for _ in 0..400 {
                now = now.plus_millis(match rng.random_range(0..4) {
                    0 => 0,
                    1 => rng.random_range(1..2_000),
                    2 => rng.random_range(1..70_000),
                    _ => 15_000 - 1 + rng.random_range(0..3),
                });
                let id = IncidentId(rng.random_range(1..30));
                let dispatcher = || Actor::Dispatcher(["d1", "d2"][(seq % 2) as usize].into());
                let (actor, change) = match rng.random_range(0..14) {
                    0 | 1 => {
                        let kind =
                            [IncidentKind::Sos, IncidentKind::Fall, IncidentKind::Service][rng.random_range(0..3)];
                        let change = Change::Opened {
                            kind,
                            msg_id: MessageId::parse(format!("m{seq}")).unwrap(),
                            location,
                            pressed_at: now,
                            welfare: None,
                        };
                        (Actor::Engine, change)
                    }
                    2 => (Actor::Engine, Change::KindChanged { from: IncidentKind::Service, to: IncidentKind::Sos }),
                    3 => (Actor::Engine, Change::Offered { responder_id: r.clone(), distance_m: 10.0, deadline: now }),
                    4 => (dispatcher(), Change::Assigned { responder_id: r.clone(), distance_m: 10.0 }),
                    5 => (Actor::Responder(r.clone()), Change::Accepted { responder_id: r.clone() }),
                    6 => (Actor::Responder(r.clone()), Change::OnScene),
                    7 => (Actor::Responder(r.clone()), Change::Resolved { outcome: "ok".into() }),
                    8 => (dispatcher(), Change::Closed { outcome: "ok".into() }),
                    9 => (Actor::Engine, Change::Cancelled { reason: "device".into() }),
                    10 => (dispatcher(), Change::Claimed { by: "d1".into(), from: None }),
                    11 => {
                        calls += 1;
                        let change = Change::CallRang {
                            call_id: format!("c{}", calls),
                            from: "138".into(),
                            to: "hotline".into(),
                            caller: CallerMatch::Sim,
                        };
                        (Actor::Engine, change)
                    }
                    12 => {
                        let call_id = format!("c{}", rng.random_range(1..calls + 2));
                        (dispatcher(), Change::CallAnswered { call_id, by: "d1".into() })
                    }
                    _ => {
                        let call_id = format!("c{}", rng.random_range(1..calls + 2));
                        (Actor::Engine, Change::CallEnded { call_id, reason: CallEnd::Cancel, talk_s: None })
                    }
                };
                seq += 1;
                tally.observe(&IncidentEvent { seq, incident_id: id, at: now, actor, change });
                // Read at the event, and a moment later (at times past a limit).
                for read in [now, now.plus_millis(rng.random_range(0..200_000))] {
                    let (standards, next) = tally.figures_by_scan(read);
                    assert_eq!(tally.figures(read, 0).standards, standards, "seed {seed}, event {seq}");
                    assert_eq!(tally.next_change(read), next, "seed {seed}, event {seq}");
                }
            }
        }
    }
}
