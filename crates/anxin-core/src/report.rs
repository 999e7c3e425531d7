//! Supervisors' reports: a period's incidents against the same standards as the wallboard,
//! by shift, day, week, month, station or zone. Like the rest of the core it reads no store
//! and no clock: the store selects one row of milestones per incident ([`IncidentFacts`]), one
//! per call to the hotline ([`CallFacts`]) and the period's service orders, and
//! [`ReportBuilder`] folds them into figures.
//!
//! Why the fold is here and not in SQL: whether an alarm met a standard (met on the limit,
//! not counted when it ended first, pending while inside it) is decided by the very code the
//! wallboard uses (`standards::Clocked::verdict`), so a day's report and the wallboard's day
//! cannot drift apart; and medians and 90th percentiles have no portable SQL (SQLite has no
//! `percentile_cont`). The heavy part is done once, behind the engine: the store keeps each
//! incident's [`Milestones`] (and each call's [`CallMilestones`]) in a row of its own, folded
//! from its events, so a report reads one row an incident and none of its trail.

use crate::ids::{IncidentId, Timestamp};
use crate::incident::{Actor, Change, IncidentEvent, WelfareReason};
use crate::programme::TaskOutcome;
use crate::service::{OrderState, ServiceOrder};
use crate::standards::{local_midnight, Clocked, Rating, Standard, StandardFigures, StandardLimits, Verdict};
use crate::zone::Zone;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

const DAY_MS: i64 = 86_400_000;

/// Most incidents a group lists as missing one standard (the earliest first); the counts
/// hold them all.
pub const REPORT_MISSED_LISTED: usize = 500;

/// How a report's rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// The shift the incident opened (or the call rang) in, keyed by its start's local date
    /// and time (`2025-03-04 20:00`): a night shift keeps the date it started on.
    Shift,
    /// The centre's local calendar day the incident opened (or the call rang) on.
    Day,
    /// The local week, Monday to Sunday, keyed by its Monday.
    Week,
    /// The local calendar month.
    Month,
    /// The station the elder is enrolled with (`(none)` for an elder with none).
    Station,
    /// The zone the incident is in (a district's part of a province, `crate::zone`), read
    /// from its number, keyed by the zone's number (`0`, `1`) and in the zones' order. The
    /// ledger gives zones no names: pages label the number.
    Zone,
    /// One row: the whole period.
    None,
}

impl Grouping {
    pub fn parse(s: &str) -> Option<Grouping> {
        Some(match s {
            "shift" => Grouping::Shift,
            "day" => Grouping::Day,
            "week" => Grouping::Week,
            "month" => Grouping::Month,
            "station" => Grouping::Station,
            "zone" => Grouping::Zone,
            "none" | "all" => Grouping::None,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Grouping::Shift => "shift",
            Grouping::Day => "day",
            Grouping::Week => "week",
            Grouping::Month => "month",
            Grouping::Station => "station",
            Grouping::Zone => "zone",
            Grouping::None => "none",
        }
    }
}

/// When the centre's shifts start, as local times: each shift runs from its start to the
/// next one, the last to the first of the next day (`[reports] shifts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shifts(Vec<u16>);

/// Why a list of shift starts is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShiftsError {
    #[error("no shift starts: name at least one, such as \"08:00\"")]
    Empty,
    #[error("shift start {0:?} is not a local time such as \"08:00\"")]
    NotATime(String),
    #[error("shift starts must be in order, each later than the one before: {0:?} is not")]
    OutOfOrder(String),
}

impl Shifts {
    /// Local times `HH:MM`, in order through the day.
    pub fn parse<S: AsRef<str>>(starts: &[S]) -> Result<Shifts, ShiftsError> {
        let mut minutes: Vec<u16> = Vec::with_capacity(starts.len());
        for s in starts {
            let s = s.as_ref();
            let m = s
                .split_once(':')
                .filter(|(h, m)| h.len() == 2 && m.len() == 2)
                .and_then(|(h, m)| Some((h.parse::<u16>().ok()?, m.parse::<u16>().ok()?)))
                .filter(|(h, m)| *h < 24 && *m < 60)
                .map(|(h, m)| h * 60 + m)
                .ok_or_else(|| ShiftsError::NotATime(s.to_string()))?;
            if minutes.last().is_some_and(|last| *last >= m) {
                return Err(ShiftsError::OutOfOrder(s.to_string()));
            }
            minutes.push(m);
        }
        if minutes.is_empty() {
            return Err(ShiftsError::Empty);
        }
        Ok(Shifts(minutes))
    }

    /// The key of the shift the local day `day` (days since 1970-01-01) and minute after
    /// its midnight fall in: the date and time it started.
    fn key(&self, day: i64, minute: u16) -> String {
        let (day, start) = match self.0.iter().rev().find(|s| **s <= minute) {
            Some(start) => (day, *start),
            // Before the day's first start: the previous day's last shift.
            None => (day - 1, *self.0.last().expect("never empty")),
        };
        format!("{} {:02}:{:02}", civil(day), start / 60, start % 60)
    }
}

impl Default for Shifts {
    /// Two twelve-hour shifts, day and night, changing at 08:00 and 20:00.
    fn default() -> Self {
        Shifts(vec![8 * 60, 20 * 60])
    }
}

/// What a report is asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportQuery {
    /// Incidents opened (calls rung) at or after `from` and before `to`.
    pub from: Timestamp,
    pub to: Timestamp,
    pub by: Grouping,
    /// The centre's offset from UTC, for local days (`dispatch.utc_offset_min`).
    pub utc_offset_min: i32,
    /// The times each standard allows (`[wallboard]`: the same as the wallboard's).
    pub limits: StandardLimits,
    /// When the report is made: an alarm still inside its limit now is pending.
    pub now: Timestamp,
    /// The centre's shifts, for [`Grouping::Shift`].
    pub shifts: Shifts,
    /// How long a welfare programme's task may stay open after it fell due before it is
    /// overdue (`programme.overdue_after_h`): one done later was done late.
    pub programme_overdue_ms: i64,
}

/// One incident's row in a report: its number, its elder's station, its times, and its
/// milestones.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentFacts {
    pub id: IncidentId,
    /// The elder's station, if they are enrolled with one.
    pub station: Option<String>,
    pub pressed_at: Timestamp,
    /// When it reached the store and the consoles (the `opened` event).
    pub opened_at: Timestamp,
    pub milestones: Milestones,
}

/// One incident's milestones: each the time of the first event of its sort, whenever it came
/// (an incident belongs to the period it opened in), and whether it ever had an event of the
/// others. The definitions are the wallboard's ([`crate::standards::DayTally::observe`]).
///
/// The store keeps them in a row an incident, folding the events in by [`Milestones::absorb`]
/// behind the engine's commits and merging them with what the row holds as
/// [`Milestones::merge`] does, so a report reads one row an incident instead of its trail of
/// events. Both are order-free and idempotent (the earliest time, a flag once set stays set):
/// events folded twice, or in any order, give the same row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Milestones {
    /// When it became an emergency: opened as one, or raised to one (`kind_changed`).
    pub emergency_at: Option<Timestamp>,
    /// A person took it on: any dispatcher's event, or a responder accepting (TSA).
    pub answered_at: Option<Timestamp>,
    /// The first offer or a dispatcher's assignment (NFPA 1225).
    pub dispatched_at: Option<Timestamp>,
    pub first_offer_at: Option<Timestamp>,
    pub accepted_at: Option<Timestamp>,
    /// A responder on scene, or resolving it themselves (closed loop).
    pub on_scene_at: Option<Timestamp>,
    /// Resolved, closed, cancelled or a false alarm.
    pub ended_at: Option<Timestamp>,
    pub nobody_going: bool,
    /// Handed over to the emergency services: 120 (ambulance), 110 (police), 119 (fire).
    pub called_120: bool,
    pub called_110: bool,
    pub called_119: bool,
    pub false_alarm: bool,
    pub cancelled: bool,
    /// A welfare check: the reason it opened with (a device silent, a long quiet, the
    /// programme's scheduled calls and visits: [`WelfareReason::is_programme`]). Not a press,
    /// so it is in none of a report's press-to times.
    pub welfare: Option<WelfareReason>,
    /// What its first end said, by the first word of the outcome a dispatcher gave it
    /// ([`TaskOutcome::of`]): kept for every incident, read for the programme's tasks.
    pub outcome: TaskOutcome,
}

impl Milestones {
    /// Folds in one of the incident's events.
    pub fn absorb(&mut self, e: &IncidentEvent) {
        let at = Some(e.at);
        let by_dispatcher = matches!(e.actor, Actor::Dispatcher(_));
        let m = Milestones {
            emergency_at: match &e.change {
                Change::Opened { kind, .. } if kind.is_emergency() => at,
                Change::KindChanged { to, .. } if to.is_emergency() => at,
                _ => None,
            },
            answered_at: (by_dispatcher || matches!(e.change, Change::Accepted { .. })).then_some(e.at),
            dispatched_at: matches!(e.change, Change::Offered { .. } | Change::Assigned { .. }).then_some(e.at),
            first_offer_at: matches!(e.change, Change::Offered { .. }).then_some(e.at),
            accepted_at: matches!(e.change, Change::Accepted { .. }).then_some(e.at),
            on_scene_at: (matches!(e.change, Change::OnScene)
                || (matches!(e.change, Change::Resolved { .. }) && matches!(e.actor, Actor::Responder(_))))
            .then_some(e.at),
            ended_at: matches!(
                e.change,
                Change::Resolved { .. } | Change::Closed { .. } | Change::Cancelled { .. } | Change::FalseAlarm { .. }
            )
            .then_some(e.at),
            nobody_going: matches!(e.change, Change::NobodyGoing { .. }),
            called_120: matches!(&e.change, Change::EmergencyCalled { number, .. } if number == "120"),
            called_110: matches!(&e.change, Change::EmergencyCalled { number, .. } if number == "110"),
            called_119: matches!(&e.change, Change::EmergencyCalled { number, .. } if number == "119"),
            false_alarm: matches!(e.change, Change::FalseAlarm { .. }),
            cancelled: matches!(e.change, Change::Cancelled { .. }),
            welfare: match &e.change {
                Change::Opened { welfare, .. } => *welfare,
                _ => None,
            },
            outcome: match &e.change {
                Change::Resolved { outcome } | Change::Closed { outcome } => TaskOutcome::of(outcome),
                _ => TaskOutcome::Other,
            },
        };
        self.merge(&m);
    }

    /// Takes in `other`'s: the earlier of each time, either's flags, and the outcome of the
    /// earlier end (of two at the same moment, the one taken in first).
    pub fn merge(&mut self, other: &Milestones) {
        if other.ended_at.is_some_and(|theirs| self.ended_at.is_none_or(|mine| theirs < mine)) {
            self.outcome = other.outcome;
        }
        self.welfare = self.welfare.or(other.welfare);
        earliest(&mut self.emergency_at, other.emergency_at);
        earliest(&mut self.answered_at, other.answered_at);
        earliest(&mut self.dispatched_at, other.dispatched_at);
        earliest(&mut self.first_offer_at, other.first_offer_at);
        earliest(&mut self.accepted_at, other.accepted_at);
        earliest(&mut self.on_scene_at, other.on_scene_at);
        earliest(&mut self.ended_at, other.ended_at);
        self.nobody_going |= other.nobody_going;
        self.called_120 |= other.called_120;
        self.called_110 |= other.called_110;
        self.called_119 |= other.called_119;
        self.false_alarm |= other.false_alarm;
        self.cancelled |= other.cancelled;
    }

    /// The milestones of `events` (an incident's, or some of them).
    pub fn of<'a>(events: impl IntoIterator<Item = &'a IncidentEvent>) -> Milestones {
        let mut m = Milestones::default();
        for e in events {
            m.absorb(e);
        }
        m
    }
}

/// One call to the hotline in a report: the incident it rang on, the station its elder was
/// enrolled with, and the call's milestones.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFacts {
    pub incident: IncidentId,
    pub call_id: String,
    pub station: Option<String>,
    pub milestones: CallMilestones,
}

/// A call's milestones, from its events on its incident's timeline: each the time of the first
/// event of its sort. Like [`Milestones`], the store keeps them in a row a call, folded in
/// behind the engine's commits, and [`CallMilestones::merge`] is order-free and idempotent.
/// The definitions are the wallboard's NENA clock ([`crate::standards::DayTally::observe`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallMilestones {
    /// It rang the consoles: a call in (a call a dispatcher places never rings, and is in no
    /// report).
    pub rang_at: Option<Timestamp>,
    /// A dispatcher picked it up (not a forwarded call's station, say).
    pub answered_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
}

impl CallMilestones {
    /// The call `e` is about and what it tells of it, for a call's ringing, a dispatcher's
    /// answer and its end; `None` for any other event.
    pub fn of_event(e: &IncidentEvent) -> Option<(&str, CallMilestones)> {
        let at = Some(e.at);
        let none = CallMilestones::default();
        match &e.change {
            Change::CallRang { call_id, .. } => Some((call_id, CallMilestones { rang_at: at, ..none })),
            Change::CallAnswered { call_id, .. } if matches!(e.actor, Actor::Dispatcher(_)) => {
                Some((call_id, CallMilestones { answered_at: at, ..none }))
            }
            Change::CallEnded { call_id, .. } => Some((call_id, CallMilestones { ended_at: at, ..none })),
            _ => None,
        }
    }

    /// Takes in `other`'s: the earlier of each time.
    pub fn merge(&mut self, other: &CallMilestones) {
        earliest(&mut self.rang_at, other.rang_at);
        earliest(&mut self.answered_at, other.answered_at);
        earliest(&mut self.ended_at, other.ended_at);
    }

    /// Each call's milestones from `events` (any incidents', in any order), by incident and call.
    pub fn of<'a>(
        events: impl IntoIterator<Item = &'a IncidentEvent>,
    ) -> BTreeMap<(IncidentId, String), CallMilestones> {
        let mut calls: BTreeMap<(IncidentId, String), CallMilestones> = BTreeMap::new();
        for e in events {
            if let Some((call, m)) = CallMilestones::of_event(e) {
                calls.entry((e.incident_id, call.to_string())).or_default().merge(&m);
            }
        }
        calls
    }
}

/// Keeps the earlier of two times, either of which may be missing.
fn earliest(mine: &mut Option<Timestamp>, theirs: Option<Timestamp>) {
    if let Some(t) = theirs {
        if mine.is_none_or(|m| t < m) {
            *mine = Some(t);
        }
    }
}

/// A spread of times, in seconds. Percentiles are nearest-rank over whole seconds (each
/// time is floored to the second), exact to that second; the mean is exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_s: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p90_s: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_s: Option<f64>,
}

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Count per whole second.
    seconds: BTreeMap<i64, u64>,
    count: u64,
    sum_ms: i128,
}

impl Histogram {
    fn add(&mut self, ms: i64) {
        // A press stamped after its opening (a device's clock ahead) counts as no time.
        let ms = ms.max(0);
        *self.seconds.entry(ms / 1000).or_default() += 1;
        self.count += 1;
        self.sum_ms += i128::from(ms);
    }

    fn percentile(&self, p: f64) -> Option<i64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((p * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (s, n) in &self.seconds {
            seen += n;
            if seen >= rank {
                return Some(*s);
            }
        }
        self.seconds.keys().next_back().copied()
    }

    fn spread(&self) -> Spread {
        Spread {
            count: self.count,
            median_s: self.percentile(0.5),
            p90_s: self.percentile(0.9),
            mean_s: (self.count > 0).then(|| self.sum_ms as f64 / 1000.0 / self.count as f64),
        }
    }
}

/// One row of a report: a day, a week, a month, a station, a zone, or the whole period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportRow {
    /// `2025-03-04 20:00` (shift), `2025-03-04` (day), the Monday `2025-03-03` (week),
    /// `2025-03` (month), a station id, a zone's number (`1`), or `all`.
    pub key: String,
    pub incidents: u64,
    /// Emergencies (`sos`, `fall`, `fire`, `intrusion`, or raised to one).
    pub alarms: u64,
    pub press_to_console: Spread,
    pub press_to_first_offer: Spread,
    pub press_to_accepted: Spread,
    pub press_to_on_scene: Spread,
    /// Incidents the engine said nobody was going to.
    pub nobody_going: u64,
    pub handed_to_120: u64,
    pub handed_to_110: u64,
    pub handed_to_119: u64,
    pub false_alarms: u64,
    pub cancelled: u64,
    /// Alarms with no responder confirmed on scene in time (the closed loop missed).
    pub closed_loop_failures: u64,
    /// Calls to the hotline (NENA's count).
    pub calls_in: u64,
    pub standards: Vec<StandardFigures>,
    #[serde(default)]
    pub programme: ProgrammeFigures,
    #[serde(default)]
    pub services: ServiceFigures,
}

/// The welfare programme's tasks (scheduled calls and visits, [`crate::programme`]) that fell
/// due in a group: each counted where its task opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgrammeFigures {
    pub calls_due: u64,
    pub visits_due: u64,
    /// Ended before they were overdue (`programme.overdue_after_h` after falling due).
    pub done_on_time: u64,
    pub done_late: u64,
    /// Still open as of the report, and of them those overdue.
    pub open: u64,
    pub open_overdue: u64,
    /// What the dispatcher found, by the first word of the outcome (anything else is none of
    /// these).
    pub well: u64,
    pub needs_service: u64,
    pub needs_help: u64,
    pub no_answer: u64,
}

/// The service lane's orders ([`crate::service`]) whose wanted window opened in a group, as
/// they stand when the report is made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceFigures {
    pub orders: u64,
    /// A provider accepted them.
    pub accepted: u64,
    /// No provider would take them: left to a dispatcher (and not yet given to one by hand).
    pub unmatched: u64,
    /// Done: checked out, confirmed by the elder or family, or settled after a dispute.
    pub done: u64,
    /// Of those done, the worker checked in within the wanted window.
    pub on_time: u64,
    /// Disputed and not yet settled.
    pub disputed: u64,
    pub cancelled: u64,
    /// What the orders done cost the care allowance and the elders themselves, in fen.
    pub subsidy_fen: u64,
    pub self_paid_fen: u64,
}

impl ServiceFigures {
    fn take(&mut self, o: &ServiceOrder) {
        self.orders += 1;
        self.accepted += u64::from(o.accepted_at.is_some());
        let done = matches!(o.state, OrderState::Done | OrderState::Confirmed | OrderState::Settled);
        self.done += u64::from(done);
        if done {
            self.on_time += u64::from(o.checked_in_at.is_some_and(|at| at >= o.from && at <= o.to));
            self.subsidy_fen += u64::from(o.subsidy_fen);
            self.self_paid_fen += u64::from(o.self_paid_fen);
        }
        self.unmatched += u64::from(o.state == OrderState::Unmatched);
        self.disputed += u64::from(o.state == OrderState::Disputed);
        self.cancelled += u64::from(o.state == OrderState::Cancelled);
    }
}

/// A report: its rows in key order (zones by number), and the whole period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub from: Timestamp,
    pub to: Timestamp,
    pub by: Grouping,
    pub as_of: Timestamp,
    pub utc_offset_min: i32,
    pub rows: Vec<ReportRow>,
    pub total: ReportRow,
}

/// A group's key as it sorts: zones by their number (zone 10 after zone 2), every other key
/// as text (dates and times, written most significant first, sort so too).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum GroupKey {
    Zone(Zone),
    Text(String),
}

impl std::fmt::Display for GroupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupKey::Zone(z) => write!(f, "{z}"),
            GroupKey::Text(t) => f.write_str(t),
        }
    }
}

#[derive(Debug, Default)]
struct Tally {
    incidents: u64,
    alarms: u64,
    spreads: [Histogram; 4],
    nobody_going: u64,
    handed: [u64; 3],
    false_alarms: u64,
    cancelled: u64,
    calls_in: u64,
    /// Per standard (in `Standard::ALL` order): met, missed, pending, and the missed
    /// incidents with their deadlines.
    met: [u32; 5],
    missed: [u32; 5],
    pending: [u32; 5],
    missed_at: [Vec<(Timestamp, IncidentId)>; 5],
    programme: ProgrammeFigures,
    services: ServiceFigures,
}

impl Tally {
    fn judge(&mut self, i: usize, id: IncidentId, c: &Clocked, within_ms: i64, now: Timestamp) {
        match c.verdict(within_ms, now) {
            Verdict::Met => self.met[i] += 1,
            Verdict::Missed(deadline) => {
                self.missed[i] += 1;
                self.missed_at[i].push((deadline, id));
            }
            Verdict::Pending => self.pending[i] += 1,
            Verdict::NotCounted => {}
        }
    }

    fn row(mut self, key: String, limits: &StandardLimits) -> ReportRow {
        let standards = Standard::ALL
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut missed_at = std::mem::take(&mut self.missed_at[i]);
                missed_at.sort_unstable();
                let mut missed_ids: Vec<IncidentId> = Vec::new();
                let mut listed = std::collections::HashSet::new();
                for (_, id) in missed_at {
                    // A call missed twice on one incident is listed once.
                    if listed.insert(id) {
                        missed_ids.push(id);
                        if missed_ids.len() == REPORT_MISSED_LISTED {
                            break;
                        }
                    }
                }
                let (met, missed) = (self.met[i], self.missed[i]);
                let counted = met + missed;
                StandardFigures {
                    standard: *s,
                    within_s: limits.within_s(*s),
                    target_pct: s.target_pct(),
                    met,
                    missed,
                    pending: self.pending[i],
                    share_pct: (counted > 0).then(|| 100.0 * f64::from(met) / f64::from(counted)),
                    rating: Rating::of(met, missed, s.target_pct()),
                    missed_ids,
                }
            })
            .collect();
        let closed_loop = Standard::ALL.iter().position(|s| *s == Standard::ClosedLoop).expect("listed");
        ReportRow {
            key,
            incidents: self.incidents,
            alarms: self.alarms,
            press_to_console: self.spreads[0].spread(),
            press_to_first_offer: self.spreads[1].spread(),
            press_to_accepted: self.spreads[2].spread(),
            press_to_on_scene: self.spreads[3].spread(),
            nobody_going: self.nobody_going,
            handed_to_120: self.handed[0],
            handed_to_110: self.handed[1],
            handed_to_119: self.handed[2],
            false_alarms: self.false_alarms,
            cancelled: self.cancelled,
            closed_loop_failures: u64::from(self.missed[closed_loop]),
            calls_in: self.calls_in,
            standards,
            programme: self.programme,
            services: self.services,
        }
    }
}

/// Folds a period's incidents and calls into a [`Report`].
#[derive(Debug)]
pub struct ReportBuilder {
    q: ReportQuery,
    groups: BTreeMap<GroupKey, Tally>,
    total: Tally,
}

impl ReportBuilder {
    pub fn new(q: ReportQuery) -> Self {
        Self { q, groups: BTreeMap::new(), total: Tally::default() }
    }

    fn within_ms(&self, s: Standard) -> i64 {
        i64::from(self.q.limits.within_s(s)) * 1000
    }

    /// The group of an incident (or a call on it, or an order) numbered `number`, opened (rung,
    /// wanted from) `at`, of an elder enrolled with `station`.
    fn key(&self, at: Timestamp, number: u64, station: Option<&str>) -> GroupKey {
        let local = at.millis() + i64::from(self.q.utc_offset_min) * 60_000;
        let day = local.div_euclid(DAY_MS);
        GroupKey::Text(match self.q.by {
            Grouping::Shift => self.q.shifts.key(day, (local.rem_euclid(DAY_MS) / 60_000) as u16),
            Grouping::Day => civil(day),
            // 1970-01-01 was a Thursday: Monday is 3 days before it.
            Grouping::Week => civil(day - (day + 3).rem_euclid(7)),
            Grouping::Month => civil(day)[..7].to_string(),
            Grouping::Station => station.unwrap_or("(none)").to_string(),
            // The number carries its zone: the store selects nothing more for it.
            Grouping::Zone => return GroupKey::Zone(Zone::of(number)),
            Grouping::None => "all".to_string(),
        })
    }

    /// Takes in one incident opened in the period.
    pub fn incident(&mut self, f: &IncidentFacts) {
        if f.opened_at < self.q.from || f.opened_at >= self.q.to {
            return;
        }
        let key = self.key(f.opened_at, f.id.0, f.station.as_deref());
        let m = &f.milestones;
        let clocks = m.emergency_at.map(|start| {
            let clock = |done: Option<Timestamp>| Clocked { start: Some(start), done, ended: m.ended_at };
            (clock(m.answered_at), clock(m.dispatched_at), clock(m.on_scene_at))
        });
        let within: Vec<i64> = Standard::ALL.iter().map(|s| self.within_ms(*s)).collect();
        let (now, overdue_ms) = (self.q.now, self.q.programme_overdue_ms);
        let group = self.groups.entry(key).or_default();
        for t in [group, &mut self.total] {
            t.incidents += 1;
            // A welfare check's "pressed" time is when it fell due or the device went quiet:
            // no press, so in none of the press-to times.
            let pressed = m.welfare.is_none();
            let since = |at: Option<Timestamp>| at.filter(|_| pressed).map(|a| a.millis() - f.pressed_at.millis());
            for (i, ms) in [
                pressed.then(|| f.opened_at.millis() - f.pressed_at.millis()),
                since(m.first_offer_at),
                since(m.accepted_at),
                since(m.on_scene_at),
            ]
            .into_iter()
            .enumerate()
            {
                if let Some(ms) = ms {
                    t.spreads[i].add(ms);
                }
            }
            t.nobody_going += u64::from(m.nobody_going);
            t.handed[0] += u64::from(m.called_120);
            t.handed[1] += u64::from(m.called_110);
            t.handed[2] += u64::from(m.called_119);
            t.false_alarms += u64::from(m.false_alarm);
            t.cancelled += u64::from(m.cancelled);
            if let Some(task) = m.welfare.filter(|r| r.is_programme()) {
                let p = &mut t.programme;
                match task {
                    WelfareReason::ScheduledVisit => p.visits_due += 1,
                    _ => p.calls_due += 1,
                }
                let overdue_at = f.pressed_at.plus_millis(overdue_ms);
                match m.ended_at {
                    Some(ended) if ended <= overdue_at => p.done_on_time += 1,
                    Some(_) => p.done_late += 1,
                    None => {
                        p.open += 1;
                        p.open_overdue += u64::from(now >= overdue_at);
                    }
                }
                if m.ended_at.is_some() {
                    match m.outcome {
                        TaskOutcome::Well => p.well += 1,
                        TaskOutcome::NeedsService => p.needs_service += 1,
                        TaskOutcome::NeedsHelp => p.needs_help += 1,
                        TaskOutcome::NoAnswer => p.no_answer += 1,
                        TaskOutcome::Other => {}
                    }
                }
            }
            if let Some((answer, dispatch, on_scene)) = &clocks {
                t.alarms += 1;
                for (i, s) in Standard::ALL.iter().enumerate() {
                    let c = match s {
                        Standard::Tsa60 | Standard::Tsa180 => answer,
                        Standard::Nfpa1225 => dispatch,
                        Standard::ClosedLoop => on_scene,
                        Standard::Nena => continue,
                    };
                    t.judge(i, f.id, c, within[i], now);
                }
            }
        }
    }

    /// Takes in one call, if it rang in the period: counted in the period it rang in, and
    /// answered when a dispatcher picked it up (NENA).
    pub fn call(&mut self, c: &CallFacts) {
        let Some(rang) = c.milestones.rang_at.filter(|at| *at >= self.q.from && *at < self.q.to) else { return };
        let nena = Standard::ALL.iter().position(|s| *s == Standard::Nena).expect("listed");
        let within = self.within_ms(Standard::Nena);
        let clock = Clocked { start: Some(rang), done: c.milestones.answered_at, ended: c.milestones.ended_at };
        let key = self.key(rang, c.incident.0, c.station.as_deref());
        let now = self.q.now;
        let group = self.groups.entry(key).or_default();
        for t in [group, &mut self.total] {
            t.calls_in += 1;
            t.judge(nena, c.incident, &clock, within, now);
        }
    }

    /// Takes in one service order, as it stands, if its wanted window opened in the period,
    /// with the station its elder is enrolled with.
    pub fn order(&mut self, o: &ServiceOrder, station: Option<&str>) {
        if o.from < self.q.from || o.from >= self.q.to {
            return;
        }
        let key = self.key(o.from, o.id.0, station);
        let group = self.groups.entry(key).or_default();
        for t in [group, &mut self.total] {
            t.services.take(o);
        }
    }

    /// The report.
    pub fn finish(mut self) -> Report {
        let limits = self.q.limits;
        let rows = std::mem::take(&mut self.groups).into_iter().map(|(k, t)| t.row(k.to_string(), &limits)).collect();
        Report {
            from: self.q.from,
            to: self.q.to,
            by: self.q.by,
            as_of: self.q.now,
            utc_offset_min: self.q.utc_offset_min,
            rows,
            total: self.total.row("all".to_string(), &limits),
        }
    }
}

/// The local day `day` (days since 1970-01-01) as `YYYY-MM-DD`, in the proleptic Gregorian
/// calendar (the civil-from-days algorithm: eras of 400 years, March-based years).
pub fn civil(day: i64) -> String {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The local midnight starting the day `YYYY-MM-DD`, for a query's `from` and `to`.
pub fn parse_day(s: &str, utc_offset_min: i32) -> Option<Timestamp> {
    let mut parts = s.split('-');
    let (y, m, d): (i64, i64, i64) =
        (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    if parts.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    // days-from-civil, the inverse of `civil`.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let day = era * 146_097 + doe - 719_468;
    // 2025-02-31 is no day.
    if civil(day) != format!("{y:04}-{m:02}-{d:02}") {
        return None;
    }
    Some(Timestamp(day * DAY_MS - i64::from(utc_offset_min) * 60_000))
}

/// The local midnight on or before `t` (the same as the wallboard's day start).
pub fn day_start(t: Timestamp, utc_offset_min: i32) -> Timestamp {
    local_midnight(t, utc_offset_min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips() {
        assert_eq!(civil(0), "1970-01-01");
        assert_eq!(civil(19_782), "2024-02-29");
        for day in [0, 59, 365, 11_016, 19_782, 20_000, 40_000] {
            let t = parse_day(&civil(day), 480).unwrap();
            assert_eq!(t.millis(), day * DAY_MS - 480 * 60_000);
        }
        assert_eq!(parse_day("2025-02-29", 0), None);
        assert_eq!(parse_day("2025-13-01", 0), None);
        assert_eq!(parse_day("yesterday", 0), None);
    }

    #[test]
    fn weeks_start_on_monday() {
        let q = ReportQuery {
            from: Timestamp(0),
            to: Timestamp(i64::MAX),
            by: Grouping::Week,
            utc_offset_min: 0,
            limits: StandardLimits::default(),
            now: Timestamp(0),
            shifts: Shifts::default(),
            programme_overdue_ms: crate::ProgrammePolicy::default().overdue_after_ms,
        };
        let b = ReportBuilder::new(q);
        // 2025-03-09 is a Sunday, 2025-03-10 a Monday.
        let sunday = parse_day("2025-03-09", 0).unwrap();
        assert_eq!(b.key(sunday, 1, None).to_string(), "2025-03-03");
        assert_eq!(b.key(sunday.plus_millis(DAY_MS), 1, None).to_string(), "2025-03-10");
    }

    #[test]
    fn a_night_shift_keeps_the_date_it_started_on() {
        let q = ReportQuery {
            from: Timestamp(0),
            to: Timestamp(i64::MAX),
            by: Grouping::Shift,
            utc_offset_min: 480,
            limits: StandardLimits::default(),
            now: Timestamp(0),
            shifts: Shifts::default(),
            programme_overdue_ms: crate::ProgrammePolicy::default().overdue_after_ms,
        };
        let b = ReportBuilder::new(q);
        let midnight = parse_day("2025-03-05", 480).unwrap();
        let at = |h: i64, m: i64| midnight.plus_millis((h * 60 + m) * 60_000);
        assert_eq!(b.key(at(3, 0), 1, None).to_string(), "2025-03-04 20:00");
        assert_eq!(b.key(at(7, 59), 1, None).to_string(), "2025-03-04 20:00");
        assert_eq!(b.key(at(8, 0), 1, None).to_string(), "2025-03-05 08:00");
        assert_eq!(b.key(at(19, 59), 1, None).to_string(), "2025-03-05 08:00");
        assert_eq!(b.key(at(20, 0), 1, None).to_string(), "2025-03-05 20:00");
    }

    #[test]
    fn milestones_are_the_first_of_each_sort_whatever_the_order_or_repeats() {
        let r = crate::ids::ResponderId::parse("r-1").unwrap();
        let event = |seq: u64, at: i64, actor: Actor, change: Change| IncidentEvent {
            seq,
            incident_id: IncidentId(1),
            at: Timestamp(at),
            actor,
            change,
        };
        let offered = |seq, at| {
            event(
                seq,
                at,
                Actor::Engine,
                Change::Offered { responder_id: r.clone(), distance_m: 300.0, deadline: Timestamp(at + 90_000) },
            )
        };
        let events = vec![
            event(
                2,
                2_000,
                Actor::Engine,
                Change::KindChanged { from: crate::IncidentKind::Service, to: crate::IncidentKind::Sos },
            ),
            offered(3, 3_000),
            event(4, 50_000, Actor::Dispatcher("d".into()), Change::Claimed { by: "d".into(), from: None }),
            offered(5, 93_000),
            event(6, 95_000, Actor::Responder(r.clone()), Change::Accepted { responder_id: r.clone() }),
            event(
                7,
                99_000,
                Actor::Dispatcher("d".into()),
                Change::EmergencyCalled { number: "119".into(), reference: None },
            ),
            event(8, 600_000, Actor::Responder(r.clone()), Change::Resolved { outcome: "fine".into() }),
        ];
        let m = Milestones::of(&events);
        let t = |ms| Some(Timestamp(ms));
        assert_eq!(
            m,
            Milestones {
                emergency_at: t(2_000),
                answered_at: t(50_000),
                dispatched_at: t(3_000),
                first_offer_at: t(3_000),
                accepted_at: t(95_000),
                on_scene_at: t(600_000),
                ended_at: t(600_000),
                called_119: true,
                ..Milestones::default()
            }
        );
        // Backwards, every event twice, or cut in two and merged: the same.
        assert_eq!(Milestones::of(events.iter().rev()), m);
        assert_eq!(Milestones::of(events.iter().chain(&events)), m);
        let mut cut = Milestones::of(&events[4..]);
        cut.merge(&Milestones::of(&events[..4]));
        assert_eq!(cut, m);
        // A dispatcher's resolving ends it with nobody on scene.
        let by_desk = event(9, 700_000, Actor::Dispatcher("d".into()), Change::Resolved { outcome: "ok".into() });
        assert_eq!(Milestones::of([&by_desk]).on_scene_at, None);
    }

    #[test]
    fn the_programmes_tasks_and_the_service_lanes_orders_are_counted_where_they_fell_due() {
        const H: i64 = 3_600_000;
        let day0 = Timestamp(1_763_000_000_000);
        let q = ReportQuery {
            from: day0,
            to: day0.plus_millis(48 * H),
            by: Grouping::Day,
            utc_offset_min: 0,
            limits: StandardLimits::default(),
            now: day0.plus_millis(47 * H),
            shifts: Shifts::default(),
            programme_overdue_ms: 24 * H,
        };
        let mut b = ReportBuilder::new(q);
        let task = |n: u64, reason, due_h: i64, ended_h: Option<i64>, outcome| IncidentFacts {
            id: IncidentId(n),
            station: None,
            pressed_at: day0.plus_millis(due_h * H),
            opened_at: day0.plus_millis(due_h * H),
            milestones: Milestones {
                ended_at: ended_h.map(|h| day0.plus_millis(h * H)),
                welfare: Some(reason),
                outcome,
                ..Milestones::default()
            },
        };
        let (call, visit) = (WelfareReason::ScheduledCall, WelfareReason::ScheduledVisit);
        // Day 1: a call done in an hour (well), one done 30 hours on (no answer: late), a visit
        // open 22 hours (not yet overdue at the report's hour 47) and a welfare check that is
        // no task.
        b.incident(&task(1, call, 1, Some(2), TaskOutcome::Well));
        b.incident(&task(2, call, 2, Some(32), TaskOutcome::NoAnswer));
        b.incident(&task(3, visit, 25, None, TaskOutcome::Other));
        let mut not_a_task = task(4, call, 3, None, TaskOutcome::Other);
        not_a_task.milestones.welfare = Some(WelfareReason::DeviceOffline);
        b.incident(&not_a_task);
        // Day 0 again: a visit open 46 hours (overdue), one that ended 'needs_help' on time.
        b.incident(&task(5, visit, 1, None, TaskOutcome::Other));
        b.incident(&task(6, visit, 4, Some(5), TaskOutcome::NeedsHelp));

        let request = |from_h: i64| crate::service::OrderRequest {
            elder_id: crate::ElderId::parse("e-1").unwrap(),
            category: "meals".into(),
            from: day0.plus_millis(from_h * H),
            to: day0.plus_millis((from_h + 2) * H),
            notes: String::new(),
            source: crate::service::OrderSource::Dispatcher,
            self_paid_agreed: true,
        };
        let order = |n: u64, from_h: i64, state: OrderState, checked_in_h: Option<i64>| {
            let mut o = ServiceOrder::placed(crate::OrderId(n), &request(from_h), &Actor::Engine, day0);
            o.state = state;
            if state != OrderState::Unmatched && state != OrderState::Cancelled {
                o.accepted_at = Some(day0);
                (o.subsidy_fen, o.self_paid_fen) = (3_000, 500);
            }
            o.checked_in_at = checked_in_h.map(|h| day0.plus_millis(h * H));
            o
        };
        // Day 0: done in its window, confirmed after checking in late, unmatched, cancelled,
        // and one disputed; day 1: one still on its way; and one wanted after the period.
        b.order(&order(1, 3, OrderState::Done, Some(4)), Some("s-1"));
        b.order(&order(2, 3, OrderState::Confirmed, Some(6)), Some("s-1"));
        b.order(&order(3, 3, OrderState::Unmatched, None), Some("s-1"));
        b.order(&order(4, 3, OrderState::Cancelled, None), Some("s-1"));
        b.order(&order(5, 3, OrderState::Disputed, Some(4)), Some("s-1"));
        b.order(&order(6, 30, OrderState::EnRoute, None), Some("s-1"));
        b.order(&order(7, 50, OrderState::Done, Some(51)), Some("s-1"));

        let report = b.finish();
        let day = |i: usize| (&report.rows[i].programme, &report.rows[i].services);
        assert_eq!(report.rows.len(), 2);
        let (p0, s0) = day(0);
        assert_eq!(
            p0,
            &ProgrammeFigures {
                calls_due: 1 + 1,
                visits_due: 2,
                done_on_time: 2,
                done_late: 1,
                open: 1,
                open_overdue: 1,
                well: 1,
                needs_help: 1,
                no_answer: 1,
                ..ProgrammeFigures::default()
            },
            "calls 1 and 2, visits 5 and 6 fell due on day 0"
        );
        assert_eq!(
            s0,
            &ServiceFigures {
                orders: 5,
                accepted: 3,
                unmatched: 1,
                done: 2,
                on_time: 1,
                disputed: 1,
                cancelled: 1,
                subsidy_fen: 6_000,
                self_paid_fen: 1_000,
            }
        );
        let (p1, s1) = day(1);
        assert_eq!((p1.visits_due, p1.open, p1.open_overdue), (1, 1, 0), "visit 3, not yet overdue");
        assert_eq!((s1.orders, s1.accepted, s1.done), (1, 1, 0));
        assert_eq!(report.total.programme.calls_due + report.total.programme.visits_due, 5, "4 is no task");
        assert_eq!(report.total.incidents, 6);
        assert_eq!(report.total.press_to_console.count, 0, "a welfare check is no press");
        assert_eq!(report.total.services.orders, 6, "order 7 is wanted after the period");
    }

    #[test]
    fn a_calls_milestones_are_its_ringing_a_dispatchers_answer_and_its_end_whatever_the_order() {
        let event = |seq: u64, incident: u64, at: i64, actor: Actor, change: Change| IncidentEvent {
            seq,
            incident_id: IncidentId(incident),
            at: Timestamp(at),
            actor,
            change,
        };
        let rang = |call: &str| Change::CallRang {
            call_id: call.into(),
            from: "13900000001".into(),
            to: "96110".into(),
            caller: crate::telephony::CallerMatch::Unknown,
        };
        let answered = |call: &str| Change::CallAnswered { call_id: call.into(), by: "d".into() };
        let ended = |call: &str| Change::CallEnded {
            call_id: call.into(),
            reason: crate::telephony::CallEnd::Bye,
            talk_s: None,
        };
        let events = vec![
            event(1, 1, 1_000, Actor::Engine, rang("c1")),
            // The station's duty phone picking a forwarded call up is no dispatcher's answer.
            event(2, 1, 30_000, Actor::Engine, answered("c1")),
            event(3, 1, 31_000, Actor::Engine, ended("c1")),
            event(4, 2, 2_000, Actor::Engine, rang("c1")),
            event(5, 2, 9_000, Actor::Dispatcher("d".into()), answered("c1")),
            event(6, 2, 10_000, Actor::Dispatcher("d".into()), Change::Note { text: "c1".into() }),
            event(7, 2, 70_000, Actor::Engine, ended("c1")),
        ];
        let t = |ms| Some(Timestamp(ms));
        let calls = CallMilestones::of(&events);
        assert_eq!(
            calls.into_iter().collect::<Vec<_>>(),
            vec![
                (
                    (IncidentId(1), "c1".to_string()),
                    CallMilestones { rang_at: t(1_000), answered_at: None, ended_at: t(31_000) }
                ),
                (
                    (IncidentId(2), "c1".to_string()),
                    CallMilestones { rang_at: t(2_000), answered_at: t(9_000), ended_at: t(70_000) }
                ),
            ],
            "a call id is a call on its incident; only a dispatcher answers"
        );
        let all = CallMilestones::of(&events);
        assert_eq!(CallMilestones::of(events.iter().rev()), all);
        assert_eq!(CallMilestones::of(events.iter().chain(&events)), all);
        let mut cut = CallMilestones::of(&events[..4]);
        for (key, m) in CallMilestones::of(&events[4..]) {
            cut.entry(key).or_default().merge(&m);
        }
        assert_eq!(cut, all);
    }

    #[test]
    fn zones_are_read_from_the_numbers_and_listed_by_number() {
        let q = ReportQuery {
            from: Timestamp(0),
            to: Timestamp(i64::MAX),
            by: Grouping::Zone,
            utc_offset_min: 480,
            limits: StandardLimits::default(),
            now: Timestamp(1_000_000),
            shifts: Shifts::default(),
            programme_overdue_ms: crate::ProgrammePolicy::default().overdue_after_ms,
        };
        let mut b = ReportBuilder::new(q);
        let in_zone = |z: i64, n: u64| IncidentId(Zone::new(z).unwrap().base() + n);
        let opened = |id: IncidentId| IncidentFacts {
            id,
            station: Some("s-1".into()),
            pressed_at: Timestamp(1000),
            opened_at: Timestamp(1000),
            milestones: Milestones::default(),
        };
        for id in [in_zone(10, 1), in_zone(2, 1), in_zone(0, 17), in_zone(2, 2), in_zone(10, 2), in_zone(10, 3)] {
            b.incident(&opened(id));
        }
        // A call rings on zone 2's first incident: it is zone 2's.
        b.call(&CallFacts {
            incident: in_zone(2, 1),
            call_id: "c1".into(),
            station: Some("s-1".into()),
            milestones: CallMilestones { rang_at: Some(Timestamp(2000)), ..CallMilestones::default() },
        });
        let report = b.finish();
        let rows: Vec<(&str, u64, u64)> =
            report.rows.iter().map(|r| (r.key.as_str(), r.incidents, r.calls_in)).collect();
        assert_eq!(rows, [("0", 1, 0), ("2", 2, 1), ("10", 3, 0)], "zone 10 after zone 2, not as text");
        assert_eq!((report.total.incidents, report.total.calls_in), (6, 1));
        assert_eq!(Grouping::parse("zone"), Some(Grouping::Zone));
        assert_eq!(Grouping::Zone.as_str(), "zone");
    }

    #[test]
    fn shift_starts_are_local_times_in_order() {
        assert_eq!(Shifts::parse(&["07:00", "15:00", "23:00"]).unwrap().0, [420, 900, 1380]);
        assert_eq!(Shifts::parse(&["00:00"]).unwrap().0, [0]);
        assert_eq!(Shifts::parse::<&str>(&[]), Err(ShiftsError::Empty));
        assert_eq!(Shifts::parse(&["8:00"]), Err(ShiftsError::NotATime("8:00".into())));
        assert_eq!(Shifts::parse(&["24:00"]), Err(ShiftsError::NotATime("24:00".into())));
        assert_eq!(Shifts::parse(&["20:00", "08:00"]), Err(ShiftsError::OutOfOrder("08:00".into())));
        assert_eq!(Shifts::parse(&["08:00", "08:00"]), Err(ShiftsError::OutOfOrder("08:00".into())));
    }

    #[test]
    fn percentiles_are_nearest_rank_in_seconds() {
        let mut h = Histogram::default();
        for s in 1..=10 {
            h.add(s * 1000 + 400);
        }
        let s = h.spread();
        assert_eq!((s.count, s.median_s, s.p90_s), (10, Some(5), Some(9)));
        assert!((s.mean_s.unwrap() - 5.9).abs() < 1e-9);
    }
}
