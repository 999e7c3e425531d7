//! The report's welfare rounds: the programme's scheduled calls and visits, and the carers'
//! visits, judged against what the engine had to do (a task that fell due and never showed,
//! a retry or a visit missing after unanswered calls, a far check-in taken, a lone-worker
//! alarm not raised or raised for nobody overdue, a carer's help with no incident).

use crate::district::District;
use crate::engine::CareTimers;
use crate::report::Percentiles;
use crate::scenario::{Carers, Programme};
use crate::sim::{CarerIncident, Played, Task};
use anxin_core::TaskOutcome;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// How much later than its due time the engine may show a task or raise an alarm, in
/// wall-clock seconds: its tick, the console's frame, a busy machine.
pub const DUE_TOLERANCE_WALL_S: f64 = 3.0;

/// What the programme's calls and visits came to.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ProgrammeSummary {
    /// Elders on the programme, and of their first calls and visits those due within the run
    /// (less the tolerance), which the console had to show.
    pub enrolled: usize,
    pub first_due_in_run: usize,
    /// Tasks the console showed (fell due): calls and visits.
    pub fell_due: usize,
    pub calls: usize,
    pub visits: usize,
    /// Closed by the dispatcher before `overdue_after` (on time), after it, or still open.
    pub done_on_time: usize,
    pub done_late: usize,
    pub open_at_end: usize,
    /// Calls and visits tried again after no answer, and visits sent after `max_tries`
    /// unanswered calls.
    pub retries: usize,
    pub turned_into_visits: usize,
    /// The dispatcher's findings, by code.
    pub outcomes: BTreeMap<String, usize>,
    /// Shown to closed, scenario minutes.
    pub shown_to_closed_min: Percentiles,
    /// The engine's retry and overdue time, scenario minutes and hours.
    pub retry_after_min: f64,
    pub overdue_after_h: f64,
    pub max_tries: u8,
    /// Failures: tasks due and never shown (first rounds, retries, visits after no answer),
    /// tried again too early, or for an elder not on the programme.
    pub not_shown: usize,
    pub early: usize,
    pub failures: Vec<String>,
}

impl ProgrammeSummary {
    pub fn new(played: &Played, district: &District, p: &Programme, care: &CareTimers) -> Self {
        let speedup = played.clock.speedup;
        let tol = (DUE_TOLERANCE_WALL_S * 1000.0) as i64;
        let (retry_ms, overdue_ms) = (care.retry_ms().unwrap_or(0), care.overdue_ms().unwrap_or(i64::MAX));
        let tasks: Vec<&Task> = played.ledger.tasks.values().collect();
        let mut s = ProgrammeSummary {
            retry_after_min: retry_ms as f64 * speedup / 60_000.0,
            overdue_after_h: overdue_ms as f64 * speedup / 3_600_000.0,
            max_tries: p.max_tries,
            ..Self::default()
        };
        let fail = |s: &mut Self, what: String| {
            if s.failures.len() < 10 {
                s.failures.push(what);
            }
        };
        let due_by = played.ended_ms - tol;
        let mut by_device: HashMap<usize, Vec<&Task>> = HashMap::new();
        for t in &tasks {
            by_device.entry(t.device).or_default().push(t);
        }
        for list in by_device.values_mut() {
            list.sort_by_key(|t| (t.opened_at_ms, t.id));
        }
        // First rounds: the engine started before the scenario clock, so each falls due by
        // the clock's start plus where anxin-core puts it.
        for (i, e) in district.elders.iter().enumerate() {
            let Some(sch) = e.schedule else { continue };
            s.enrolled += 1;
            let list = by_device.get(&i).map(Vec::as_slice).unwrap_or_default();
            for (visit, first) in [(false, Some(sch.first_call_ms)), (true, sch.first_visit_ms)] {
                let Some(first) = first.filter(|f| played.start_ms + f <= due_by) else { continue };
                s.first_due_in_run += 1;
                if !list.iter().any(|t| t.visit == visit) {
                    s.not_shown += 1;
                    let what = if visit { "visit" } else { "call" };
                    let at = first as f64 / 1000.0 * speedup / 60.0;
                    fail(
                        &mut s,
                        format!("{}'s first {what}, due {at:.1} scenario min into the run, was never shown", e.id),
                    );
                }
            }
        }
        for (&device, list) in &by_device {
            if district.elders[device].schedule.is_none() {
                fail(
                    &mut s,
                    format!("task {} for {}, who is not on the programme", list[0].id, district.elders[device].id),
                );
                s.early += 1;
            }
            let mut tries = 0u8;
            for (k, t) in list.iter().enumerate() {
                let (Some(outcome), Some(sent), Some(closed)) = (&t.outcome, t.close_sent_ms, t.closed_ms) else {
                    continue;
                };
                if TaskOutcome::of(outcome) != TaskOutcome::NoAnswer {
                    if !t.visit {
                        tries = 0;
                    }
                    continue;
                }
                let what = if t.visit { "visit" } else { "call" };
                if !t.visit {
                    tries += 1;
                }
                let later = &list[k + 1..];
                if t.visit || tries < p.max_tries {
                    // Tried again a retry after the dispatcher's "no answer".
                    // (A visit may open sooner, sent after another call's last try: only a
                    // call tried again early is early.)
                    match later.iter().find(|n| n.visit == t.visit) {
                        Some(n) if !t.visit && n.opened_at_ms + 5 < sent + retry_ms => {
                            s.early += 1;
                            fail(
                                &mut s,
                                format!(
                                    "task {} tried again {} ms after no answer, before the retry",
                                    n.id,
                                    n.opened_at_ms - sent
                                ),
                            );
                        }
                        Some(_) => s.retries += 1,
                        None if closed + retry_ms <= due_by => {
                            s.not_shown += 1;
                            fail(&mut s, format!("unanswered {what} {} was never tried again", t.id));
                        }
                        None => {}
                    }
                } else {
                    tries = 0;
                    // The last unanswered call: a visit at once, unless one was open already.
                    let open_visit = list.iter().any(|v| {
                        v.visit
                            && v.opened_at_ms < sent
                            && v.closed_ms.is_none_or(|c| c > sent)
                            && !v.ended_before(sent)
                    });
                    let sent_visit =
                        later.iter().any(|v| v.visit && v.opened_at_ms >= sent - 5 && v.opened_at_ms <= closed + 5);
                    if sent_visit {
                        s.turned_into_visits += 1;
                    } else if !open_visit {
                        s.not_shown += 1;
                        fail(
                            &mut s,
                            format!("{} unanswered calls (the last, task {}) and no visit", p.max_tries, t.id),
                        );
                    }
                }
            }
        }
        let mut handled = Vec::new();
        for t in &tasks {
            s.fell_due += 1;
            if t.visit {
                s.visits += 1;
            } else {
                s.calls += 1;
            }
            match t.closed_ms {
                Some(c) if c - t.opened_at_ms <= overdue_ms => s.done_on_time += 1,
                Some(_) => s.done_late += 1,
                None => s.open_at_end += 1,
            }
            if let Some(c) = t.closed_ms {
                handled.push((c - t.seen_ms) as f64 / 1000.0 * speedup / 60.0);
            }
            if let (Some(o), Some(_)) = (&t.outcome, t.closed_ms) {
                let code = o.split([':', ' ']).next().unwrap_or_default().to_string();
                *s.outcomes.entry(code).or_default() += 1;
            }
        }
        s.shown_to_closed_min = Percentiles::of(handled);
        s
    }

    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }

    pub fn text(&self) -> String {
        let mut t = String::new();
        let outcomes: Vec<String> = self.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let f = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            t,
            "welfare programme: {} elders on it; {} first calls and visits due in the run; retry after {:.0} min, {} tries, overdue after {:.0} h (scenario)",
            self.enrolled, self.first_due_in_run, self.retry_after_min, self.max_tries, self.overdue_after_h
        );
        let _ = writeln!(
            t,
            "  fell due {} ({} calls, {} visits): done on time {}, done late {}, still open {}; retries {}, turned into visits {}",
            self.fell_due,
            self.calls,
            self.visits,
            self.done_on_time,
            self.done_late,
            self.open_at_end,
            self.retries,
            self.turned_into_visits
        );
        let _ = writeln!(
            t,
            "  outcomes: {}; shown → closed (scen. min) p50 {} max {}",
            if outcomes.is_empty() { "none".to_string() } else { outcomes.join(", ") },
            f(self.shown_to_closed_min.p50),
            f(self.shown_to_closed_min.max)
        );
        let _ = writeln!(t, "  due and never shown {}   too early {}", self.not_shown, self.early);
        for why in &self.failures {
            let _ = writeln!(t, "    {why}");
        }
        t
    }
}

impl Task {
    /// The console showed it ended before `ms` (without the dispatcher's close).
    fn ended_before(&self, ms: i64) -> bool {
        self.ended && self.closed_ms.is_some_and(|c| c < ms)
    }
}

/// What the carers' visits came to.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CarersSummary {
    pub carers: usize,
    /// Visits begun (a check-in from the door sent), checked in, said still here, checked out.
    pub visits: usize,
    pub checked_in: usize,
    pub still_here: usize,
    pub checked_out: usize,
    /// Check-ins first sent from too far, and of them refused `out_of_radius`.
    pub far_sent: usize,
    pub far_refused: usize,
    /// Visits not checked out; of them, those whose alarm was due within the run
    /// (expected), those it came for (seen), and alarms for nobody overdue.
    pub forgot: usize,
    pub lone_worker_expected: usize,
    pub lone_worker_seen: usize,
    pub lone_worker_unexpected: usize,
    /// Last word to the alarm, scenario minutes (the timer is `visit_max_min`).
    pub heard_to_alarm_min: Percentiles,
    pub visit_max_min: f64,
    /// Help pressed (taken), and the carer's SOS shown for it.
    pub help_pressed: usize,
    pub help_incidents_seen: usize,
    pub failures: Vec<String>,
    /// (scenario hours at the last word, scenario minutes to the alarm), for the plots.
    #[serde(skip)]
    pub alarm_series: Vec<(f64, f64)>,
}

impl CarersSummary {
    pub fn new(played: &Played, c: &Carers, care: &CareTimers) -> Self {
        let l = &played.ledger;
        let speedup = played.clock.speedup;
        let tol = (DUE_TOLERANCE_WALL_S * 1000.0) as i64;
        let max_ms = care.visit_max_ms().unwrap_or(0);
        let mut s = CarersSummary {
            carers: l.visits.iter().map(|v| v.carer.as_str()).collect::<std::collections::HashSet<_>>().len(),
            visit_max_min: c.visit_max_min,
            ..Self::default()
        };
        s.failures.extend(l.carer_surprises.iter().take(10).cloned());
        let incidents: Vec<&CarerIncident> = l.carer_incidents.values().collect();
        let alarms: Vec<&&CarerIncident> = incidents.iter().filter(|i| i.kind == "lone_worker").collect();
        let mut matched = vec![false; alarms.len()];
        let mut to_alarm = Vec::new();
        for v in &l.visits {
            s.visits += 1;
            s.far_sent += usize::from(v.far);
            s.far_refused += usize::from(v.far && v.far_refused);
            s.still_here += usize::from(v.still_here);
            s.checked_out += usize::from(v.checked_out_ms.is_some());
            let Some(heard) = v.last_heard_ms else { continue };
            s.checked_in += 1;
            let until = v.checked_out_ms.unwrap_or(played.ended_ms);
            let due = heard + max_ms;
            // Alarms raised for this visit: from its due time to its end.
            let mut seen = None;
            for (k, a) in alarms.iter().enumerate() {
                if a.carer == v.carer && a.opened_at_ms + 5 >= due && a.opened_at_ms <= until + tol {
                    matched[k] = true;
                    seen = seen.or(Some(a.opened_at_ms));
                }
            }
            if v.forgot {
                s.forgot += 1;
                if due + tol <= until {
                    s.lone_worker_expected += 1;
                    match seen {
                        Some(at) => {
                            s.lone_worker_seen += 1;
                            let minutes = (at - heard) as f64 / 1000.0 * speedup / 60.0;
                            to_alarm.push(minutes);
                            let hour = (heard - played.start_ms) as f64 / 1000.0 * speedup / 3600.0;
                            s.alarm_series.push((hour, minutes));
                        }
                        None => {
                            if s.failures.len() < 10 {
                                s.failures.push(format!(
                                    "{} did not check out of the visit to elder {} and no lone-worker alarm came",
                                    v.carer, v.elder
                                ));
                            }
                        }
                    }
                }
            }
            if let Some(help) = v.help_ms {
                s.help_pressed += 1;
                let shown =
                    incidents.iter().any(|i| i.carer == v.carer && i.kind == "sos" && i.opened_at_ms + 5 >= help);
                if shown {
                    s.help_incidents_seen += 1;
                } else if help + tol <= played.ended_ms && s.failures.len() < 10 {
                    s.failures.push(format!("{} pressed help and no SOS for them was shown", v.carer));
                }
            }
        }
        s.lone_worker_unexpected = matched.iter().filter(|m| !**m).count();
        for (a, _) in alarms.iter().zip(&matched).filter(|(_, m)| !**m).take(3) {
            s.failures.push(format!("a lone-worker alarm (incident {}) for {}, who was not overdue", a.id, a.carer));
        }
        if s.far_refused < s.far_sent && s.failures.is_empty() {
            s.failures.push(format!("{} far check-ins, {} refused out_of_radius", s.far_sent, s.far_refused));
        }
        s.heard_to_alarm_min = Percentiles::of(to_alarm);
        s
    }

    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }

    pub fn text(&self) -> String {
        let mut t = String::new();
        let f = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            t,
            "carers: {} carers, {} visits: checked in {}, still here {}, checked out {}; far check-ins {}, refused out of radius {}",
            self.carers, self.visits, self.checked_in, self.still_here, self.checked_out, self.far_sent, self.far_refused
        );
        let _ = writeln!(
            t,
            "  forgot to check out {}: lone-worker alarms expected {}, seen {}, for nobody overdue {}; last word → alarm (scen. min) p50 {} max {} (timer {:.0})",
            self.forgot,
            self.lone_worker_expected,
            self.lone_worker_seen,
            self.lone_worker_unexpected,
            f(self.heard_to_alarm_min.p50),
            f(self.heard_to_alarm_min.max),
            self.visit_max_min
        );
        let _ = writeln!(t, "  help pressed {}, the carer's SOS shown {}", self.help_pressed, self.help_incidents_seen);
        for why in &self.failures {
            let _ = writeln!(t, "    {why}");
        }
        t
    }
}
