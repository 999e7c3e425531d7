//! The scheduled welfare programme: elders whose ledger entry has a schedule
//! ([`crate::registry::WelfareSchedule`]) are phoned and visited on it, whatever their devices
//! say (Wuhua: a call a week, a visit a month).
//!
//! - **Tasks.** A call or visit falls due `every_days` after the last one was done. It opens
//!   as a welfare check of reason `scheduled_call` or `scheduled_visit` in the console's
//!   welfare list, at most `max_opened_per_tick` a tick. An elder's first round is spread over
//!   its period (by a hash of the elder's id), so that enrolling 150,000 elders does not make
//!   them all due on one morning.
//! - **Outcomes.** A dispatcher ends a task with an outcome whose first word is its code:
//!   `well`, `needs_service` (a service request opens for the elder), `needs_help` (an
//!   emergency opens and goes up the ladder) or `no_answer`. Anything else counts as done.
//! - **No answer.** An unanswered call is tried again `retry_after` later; after `max_tries`
//!   unanswered calls, a visit opens at once. An unanswered visit is tried again likewise.
//! - **Overdue.** A task still open `overdue_after` after it fell due is overdue; the
//!   programme's export says which, and how many.

use crate::ids::{DeviceId, ElderId, IncidentId, Timestamp};
use serde::{Deserialize, Serialize};

const DAY_MS: i64 = 86_400_000;

/// The centre's rules for the programme.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgrammePolicy {
    /// Whether scheduled calls and visits open at all.
    pub enabled: bool,
    /// Unanswered calls before a visit is sent instead.
    pub max_tries: u8,
    /// How long after an unanswered call (or visit) it is tried again.
    pub retry_after_ms: i64,
    /// How long a task may stay open after it fell due before it counts as overdue.
    pub overdue_after_ms: i64,
    /// The most tasks opened in one tick of the engine.
    pub max_opened_per_tick: usize,
}

impl Default for ProgrammePolicy {
    /// Three tries two hours apart; overdue a day after it fell due.
    fn default() -> Self {
        Self {
            enabled: true,
            max_tries: 3,
            retry_after_ms: 2 * 3_600_000,
            overdue_after_ms: DAY_MS,
            max_opened_per_tick: 256,
        }
    }
}

/// What a dispatcher found, by the first word of the outcome they gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TaskOutcome {
    Well,
    NeedsService,
    NeedsHelp,
    NoAnswer,
    /// Any other outcome (or a task cancelled): done, nothing follows.
    #[default]
    Other,
}

impl TaskOutcome {
    pub const CODES: [&'static str; 4] = ["well", "needs_service", "needs_help", "no_answer"];

    /// The code, as [`TaskOutcome::CODES`] has it (`None` for [`TaskOutcome::Other`]).
    pub fn code(self) -> Option<&'static str> {
        match self {
            TaskOutcome::Well => Some("well"),
            TaskOutcome::NeedsService => Some("needs_service"),
            TaskOutcome::NeedsHelp => Some("needs_help"),
            TaskOutcome::NoAnswer => Some("no_answer"),
            TaskOutcome::Other => None,
        }
    }

    /// The outcome of a code; `None` (or anything else) is [`TaskOutcome::Other`].
    pub fn of_code(code: Option<&str>) -> Self {
        code.map(TaskOutcome::of).unwrap_or(TaskOutcome::Other)
    }

    /// `"no_answer: rang twice"` is `NoAnswer`.
    pub fn of(outcome: &str) -> Self {
        let code = outcome.split([':', ' ']).next().unwrap_or_default().trim();
        match code {
            "well" => TaskOutcome::Well,
            "needs_service" => TaskOutcome::NeedsService,
            "needs_help" => TaskOutcome::NeedsHelp,
            "no_answer" => TaskOutcome::NoAnswer,
            _ => TaskOutcome::Other,
        }
    }
}

/// What the engine keeps of one elder on the programme.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ElderProgramme {
    /// When the last call and visit were done (ms; 0: never).
    pub call_done: i64,
    pub visit_done: i64,
    /// Unanswered calls in a row.
    pub call_tries: u8,
    /// When an unanswered call or visit is tried again (ms; 0: none waiting).
    pub call_retry_at: i64,
    pub visit_retry_at: i64,
    /// The device tasks are raised on (the elder's first, by id).
    pub device: Option<DeviceId>,
    pub(crate) call_open: Option<IncidentId>,
    pub(crate) visit_open: Option<IncidentId>,
    /// When its live entry in the engine's queue is due (an entry at another time is stale).
    pub(crate) queued: Option<Timestamp>,
    pub(crate) dirty: bool,
}

impl ElderProgramme {
    /// When the next call falls due for an elder phoned every `every_days`, on the programme
    /// since `start`: a retry, else a period after the last, else a first round spread over
    /// the period.
    pub fn call_due(&self, elder: &ElderId, every_days: Option<u16>, start: Timestamp) -> Option<Timestamp> {
        Self::due(elder, every_days, self.call_done, self.call_retry_at, start, 0)
    }

    pub fn visit_due(&self, elder: &ElderId, every_days: Option<u16>, start: Timestamp) -> Option<Timestamp> {
        Self::due(elder, every_days, self.visit_done, self.visit_retry_at, start, 1)
    }

    fn due(
        elder: &ElderId,
        every: Option<u16>,
        done: i64,
        retry: i64,
        start: Timestamp,
        salt: u64,
    ) -> Option<Timestamp> {
        let period = i64::from(every?.max(1)) * DAY_MS;
        Some(Timestamp(match (retry, done) {
            (r, _) if r != 0 => r,
            (_, d) if d != 0 => d + period,
            _ => start.millis() + (spread(elder.as_str(), salt) % period as u64) as i64,
        }))
    }

    pub fn row(&self, elder_id: ElderId) -> ProgrammeRow {
        let at = |t: i64| (t != 0).then_some(Timestamp(t));
        ProgrammeRow {
            elder_id,
            call_done: at(self.call_done),
            visit_done: at(self.visit_done),
            call_tries: self.call_tries,
            call_retry_at: at(self.call_retry_at),
            visit_retry_at: at(self.visit_retry_at),
        }
    }

    pub fn from_row(row: &ProgrammeRow) -> Self {
        let ms = |t: Option<Timestamp>| t.map_or(0, Timestamp::millis);
        Self {
            call_done: ms(row.call_done),
            visit_done: ms(row.visit_done),
            call_tries: row.call_tries,
            call_retry_at: ms(row.call_retry_at),
            visit_retry_at: ms(row.visit_retry_at),
            ..Self::default()
        }
    }
}

/// FNV-1a of the elder's id: where in its first period an elder's first task falls.
fn spread(id: &str, salt: u64) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325 ^ salt, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// One elder's programme as stored in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgrammeRow {
    pub elder_id: ElderId,
    pub call_done: Option<Timestamp>,
    pub visit_done: Option<Timestamp>,
    pub call_tries: u8,
    pub call_retry_at: Option<Timestamp>,
    pub visit_retry_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_read_by_their_first_word() {
        assert_eq!(TaskOutcome::of("well"), TaskOutcome::Well);
        assert_eq!(TaskOutcome::of("no_answer: rang twice"), TaskOutcome::NoAnswer);
        assert_eq!(TaskOutcome::of("needs_help: she fell yesterday"), TaskOutcome::NeedsHelp);
        assert_eq!(TaskOutcome::of("needs_service"), TaskOutcome::NeedsService);
        assert_eq!(TaskOutcome::of("chatted about her garden"), TaskOutcome::Other);
    }

    #[test]
    fn a_first_round_is_spread_over_the_period_and_later_ones_follow_the_last() {
        let start = Timestamp(1_762_012_800_000);
        let mut firsts: Vec<i64> = (0..1000)
            .map(|n| {
                let e = ElderId::parse(format!("e-{n}")).unwrap();
                ElderProgramme::default().call_due(&e, Some(7), start).unwrap().millis() - start.millis()
            })
            .collect();
        firsts.sort_unstable();
        assert!(firsts[0] >= 0 && firsts[999] < 7 * DAY_MS);
        // Roughly even: each day of the week gets some.
        for day in 0..7 {
            let n = firsts.iter().filter(|t| **t / DAY_MS == day).count();
            assert!((90..200).contains(&n), "day {day}: {n}");
        }
        let e = ElderId::parse("e-1").unwrap();
        let p = ElderProgramme { call_done: start.millis(), ..ElderProgramme::default() };
        assert_eq!(p.call_due(&e, Some(7), start), Some(start.plus_millis(7 * DAY_MS)));
        let retry = ElderProgramme { call_retry_at: start.millis() + 5, ..p.clone() };
        assert_eq!(retry.call_due(&e, Some(7), start), Some(start.plus_millis(5)));
        assert_eq!(p.call_due(&e, None, start), None);
        assert_eq!(ElderProgramme::from_row(&p.row(e)), p);
    }
}
