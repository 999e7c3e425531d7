//! What a run shows: latencies as percentiles, care outcomes as shares, presses lost or
//! doubled; as a text table and as JSON.

use crate::district::District;
use crate::health::{FaultKind, Lives};
use crate::plan::Action;
use crate::sim::{NobodyGoingOutcome, Played, Silence, WelfareCheck};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write;

pub use crate::rounds::{CarersSummary, ProgrammeSummary};

/// Percentiles of one measure; all `None` when nothing was measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Percentiles {
    pub n: usize,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
}

impl Percentiles {
    pub fn of(mut values: Vec<f64>) -> Self {
        values.retain(|v| v.is_finite());
        values.sort_by(f64::total_cmp);
        let n = values.len();
        // Nearest rank.
        let at = |q: f64| (n > 0).then(|| values[((q * n as f64).ceil() as usize).clamp(1, n) - 1]);
        Percentiles { n, p50: at(0.50), p90: at(0.90), p95: at(0.95), p99: at(0.99), max: values.last().copied() }
    }
}

/// How the people fared: the figures two matching policies are compared on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Care {
    /// Emergency incidents (SOS, fall) opened by a press and not cancelled by the elder.
    pub emergencies: usize,
    pub accepted_within_60s_pct: Option<f64>,
    pub on_scene_within_15min_pct: Option<f64>,
    /// The counts behind the two shares, so that runs can be pooled: emergencies pressed at
    /// least 60 s (15 min) before the end, and of them those a responder accepted within
    /// 60 s (was on scene within 15 min).
    pub decided_60s: usize,
    pub accepted_within_60s: usize,
    pub decided_15min: usize,
    pub on_scene_within_15min: usize,
    /// Press to a responder accepting, scenario seconds.
    pub press_to_accept_s: Percentiles,
    /// Press to a responder on scene, scenario minutes.
    pub press_to_on_scene_min: Percentiles,
    /// Emergencies that reached the station's duty line / that nobody went to.
    pub station_alerted: usize,
    pub nobody_going: usize,
    /// Of those nobody was going to: the dispatcher put a suggested responder on the job
    /// (and of them, how many were then on scene), or handed it to 120. The rest ended
    /// otherwise (cancelled by the elder) or were still open when the run ended.
    pub nobody_going_assigned: usize,
    pub nobody_going_assigned_on_scene: usize,
    pub nobody_going_handed_to_120: usize,
    /// Emergencies where a family contact answered "going" themselves, and of those nobody
    /// (no responder) was going to, how many had a family member on the way: what families
    /// as first responders already give.
    pub family_going: usize,
    pub nobody_going_family_going: usize,
    /// The first few emergencies no responder accepted within 60 s, to see why: what no
    /// policy could change (nobody with the skill inside a service circle) apart from what
    /// a policy could.
    pub missed_60s: Vec<Missed>,
    /// Emergencies where the responder who went belongs to the elder's own centre (the one
    /// nearest their home).
    pub own_centre_pct: Option<f64>,
    /// Distance of the responder who took the job, metres.
    pub responder_distance_m: Percentiles,
    /// Emergencies whose elder has contacts: the family figures below are shares of these.
    pub with_family: usize,
    /// A contact told within 60 scenario seconds of the press (`pressed_at` to the first
    /// contact's `told_at`, or to the first sent or delivered notification's `delivery_at`
    /// where the engine reports deliveries); of those pressed at least 60 s before the end.
    pub family_told_within_60s_pct: Option<f64>,
    /// How many of those were measured to `delivery_at` (the rest to `told_at`).
    pub family_told_by_delivery: usize,
    /// A contact answered anything but "cannot help" (the engine's `answered`).
    pub family_answered_pct: Option<f64>,
    /// Press to that first answer, scenario seconds.
    pub press_to_family_answer_s: Percentiles,
    /// A second contact was told (the first did not answer in time, or could not help).
    pub family_second_contact_pct: Option<f64>,
    /// Every contact was told and none answered.
    pub family_exhausted_pct: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub scenario: String,
    pub matching: String,
    pub devices: usize,
    pub centres: usize,
    /// Responders (carers, who make visits and are off duty for emergencies, apart).
    pub responders: usize,
    pub speedup: f64,
    pub scenario_hours: f64,
    pub drain_min: f64,
    pub engine_timers: String,
    pub presses_sent: usize,
    pub repeat_presses: usize,
    pub fall_presses: usize,
    pub surge_presses: usize,
    pub cancels_sent: u64,
    pub resends: u64,
    pub incidents_seen: usize,
    /// Presses that got neither `help_coming` nor a place on the console.
    pub lost: usize,
    /// Presses counted twice by the engine (more on the console than devices sent), plus
    /// devices with two incidents open at once.
    pub duplicated: u64,
    pub not_acknowledged: usize,
    pub not_on_console: usize,
    /// Engine latencies, real milliseconds.
    pub press_to_console_ms: Percentiles,
    /// The same for the presses outside the surge and in it (when there was a surge): the
    /// engine's latency with and without a backlog.
    pub press_to_console_ms_outside_surge: Option<Percentiles>,
    pub press_to_console_ms_surge: Option<Percentiles>,
    pub press_to_help_coming_ms: Percentiles,
    pub press_to_offer_ms: Percentiles,
    /// A responder's offer to their accept (the offer that was accepted), scenario seconds.
    pub offer_to_accept_s: Percentiles,
    pub press_to_on_scene_min: Percentiles,
    pub accepted_within_60s_pct: Option<f64>,
    pub on_scene_within_15min_pct: Option<f64>,
    pub care: Care,
    /// The same for presses in the surge only, and for the others (when there was a surge).
    pub surge: Option<Care>,
    pub outside_surge: Option<Care>,
    pub offers_accepted: u64,
    pub offers_declined: u64,
    pub offers_unanswered: u64,
    pub phone_refusals: u64,
    pub dispatcher_commands: u64,
    /// `suggest` questions the dispatcher asked (incidents nobody was going to).
    pub dispatcher_suggests: u64,
    /// Responders the dispatcher rang to assign who declined or did not answer.
    pub assign_calls_declined: u64,
    /// Refused dispatcher frames, commands and questions alike.
    pub dispatcher_refusals: u64,
    pub refusal_samples: Vec<String>,
    pub console_resyncs: u64,
    /// Elders with at least one contact, and contacts in all.
    pub elders_with_contacts: usize,
    pub contacts: usize,
    /// The family figures of `care`, here too for a quick look.
    pub family_told_within_60s_pct: Option<f64>,
    pub family_answered_pct: Option<f64>,
    /// What "told" was measured to: `told_at`, or `delivery_at` where the engine reported
    /// deliveries.
    pub family_told_measured_to: String,
    /// Links the simulator's supervisor issued to contacts who answered (once per contact).
    pub family_links_issued: u64,
    /// Family answers the engine took; refused because the incident had ended meanwhile
    /// (normal); refused otherwise; never sent (sign-in or socket failed).
    pub family_answers_taken: u64,
    pub family_answers_late: u64,
    pub family_answers_refused: u64,
    pub family_answers_failed: u64,
    /// Wall-clock milliseconds from an answer's due moment to the engine's result: how much
    /// the simulator and the engine added to the drawn delay (times the speed-up in
    /// scenario time).
    pub family_answer_lag_ms: Percentiles,
    /// The devices' heartbeats and faults, and the welfare checks the engine opened for them.
    pub health: HealthSummary,
    /// The welfare programme's calls and visits, and the carers' visits, when the scenario
    /// has them.
    pub programme: Option<ProgrammeSummary>,
    pub carers: Option<CarersSummary>,
    /// The service lane's orders, when the scenario has them.
    pub services: Option<crate::services::ServicesSummary>,
    /// (scenario hours at the press, press to console in ms), for the plots.
    #[serde(skip)]
    pub console_series: Vec<(f64, f64)>,
}

/// How much later than its window the engine may notice a silent device, in wall-clock
/// seconds: the last message's way to the engine, a batch of its work, its tick (it wakes at
/// the deadline) and the console's frame, with room for a busy machine.
pub const NOTICE_TOLERANCE_WALL_S: f64 = 2.0;

/// The devices' health over the run, and what the engine noticed of it.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct HealthSummary {
    /// Devices heartbeating every `heartbeat_min` (the watched sample, which alone fails),
    /// and the others, every `quiet_heartbeat_min`; scenario minutes.
    pub watched_devices: usize,
    pub quiet_devices: usize,
    pub heartbeat_min: f64,
    pub quiet_heartbeat_min: f64,
    pub heartbeats_sent: u64,
    /// Heartbeats a wall-clock second, over the run: the load they put on the engine.
    pub heartbeats_per_wall_s: f64,
    /// The silence after which the engine takes a watched device for offline, and how much
    /// later it may notice one; scenario minutes.
    pub window_min: f64,
    pub tolerance_min: f64,
    pub window: String,
    /// Devices that went silent: flat (after a `low_battery`) or switched off (`power_off`).
    pub went_silent: usize,
    pub flat: usize,
    pub switched_off: usize,
    /// Silences that lasted long enough that the engine had to notice them: a switched-off
    /// device at once, a flat one within the window (plus the tolerance either way).
    pub due: usize,
    /// Of all silences, those a welfare check was opened for (`device_offline` or
    /// `power_off`), and of them within the window and tolerance.
    pub noticed: usize,
    pub noticed_in_time: usize,
    /// Silences over before they were due (the device came back, or the run ended).
    pub over_before_due: usize,
    /// Last message of a flat device to its `device_offline` check, and of a switched-off
    /// one to its `power_off` check; scenario minutes (the engine's `opened_at`).
    pub flat_to_check_min: Percentiles,
    pub switched_off_to_check_min: Percentiles,
    /// Failures: silences due and not noticed in time; welfare checks for a device that
    /// was not silent (a `device_offline` or `power_off` for a live device, or before its
    /// window) or that never said its battery was low (`low_battery`); and devices with two
    /// welfare checks open at once.
    pub not_noticed: usize,
    pub false_alarms: usize,
    pub concurrent: u64,
    /// A few of them, described.
    pub failures: Vec<String>,
    /// Welfare checks the console showed, by reason; ended by the engine because the device
    /// was heard again or charged, ended otherwise (a low battery superseded by silence),
    /// and still open at the end.
    pub welfare_opened: usize,
    pub welfare_by_reason: BTreeMap<String, usize>,
    pub welfare_closed: usize,
    pub welfare_closed_device_back: usize,
    pub welfare_closed_otherwise: usize,
    pub welfare_open_at_end: usize,
    /// Faults begun and devices back from them, by kind (`flat`, `switched_off`,
    /// `not_worn`, `low_battery`).
    pub faults: BTreeMap<String, u64>,
    pub back: BTreeMap<String, u64>,
    /// Presses and cancels planned while the device was flat, switched off or not worn:
    /// calls it could not make.
    pub calls_unmade: usize,
    /// (scenario hours at the last message, scenario minutes to the welfare check, switched
    /// off) for each silence noticed, for the plots.
    #[serde(skip)]
    pub notice_series: Vec<(f64, f64, bool)>,
}

/// What the engine's welfare checks say about the devices' silences.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Judgement {
    pub due: usize,
    pub noticed: usize,
    pub noticed_in_time: usize,
    pub over_before_due: usize,
    /// Last message to the check, wall-clock milliseconds, flat and switched off.
    pub flat_to_check_ms: Vec<f64>,
    pub off_to_check_ms: Vec<f64>,
    pub not_noticed: usize,
    pub false_alarms: usize,
    pub failures: Vec<String>,
    /// For each silence, in order, how long after its last message its check opened.
    pub noticed_after_ms: Vec<Option<f64>>,
}

/// Holds the welfare checks against the silences. A check for silence belongs to the
/// device's silence whose last message came before it opened and that had not ended
/// (`tolerance_ms` either side); one opened for no silence, or for a flat device sooner than
/// its window, is a false alarm; so is a low-battery check for a device that never said its
/// battery was low. A silence that lasted its due time (a switched-off device: the
/// tolerance; a flat one: the window and the tolerance) and has no check by then is not
/// noticed. `ended_ms` is when the run stopped watching. All times wall-clock milliseconds.
pub fn judge(
    silences: &[Silence],
    checks: &[&WelfareCheck],
    reported_low: &HashSet<usize>,
    window_ms: f64,
    tolerance_ms: f64,
    ended_ms: i64,
    name: &dyn Fn(usize) -> String,
) -> Judgement {
    let mut j = Judgement::default();
    // The first check for each silence: how long after its last message it opened.
    let mut seen_after: Vec<Option<f64>> = vec![None; silences.len()];
    let mut checks: Vec<&&WelfareCheck> = checks.iter().collect();
    checks.sort_by_key(|c| (c.opened_at_ms, c.id));
    let fail = |j: &mut Judgement, what: String| {
        if j.failures.len() < 5 {
            j.failures.push(what);
        }
    };
    for c in checks {
        let opened = c.opened_at_ms as f64;
        match c.reason.as_str() {
            "device_offline" | "power_off" => {
                let silence = silences
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.device == c.device)
                    .filter(|(_, s)| c.reason == "device_offline" || s.kind == FaultKind::Off)
                    .filter(|(_, s)| {
                        s.last_ms as f64 <= opened + tolerance_ms
                            && s.back_ms.is_none_or(|b| opened <= b as f64 + tolerance_ms)
                    })
                    .max_by_key(|(_, s)| s.last_ms);
                let Some((i, s)) = silence else {
                    j.false_alarms += 1;
                    fail(
                        &mut j,
                        format!(
                            "device {} was not silent but welfare check {} says {}",
                            name(c.device),
                            c.id,
                            c.reason
                        ),
                    );
                    continue;
                };
                let after = (opened - s.last_ms as f64).max(0.0);
                if c.reason == "device_offline" && after < window_ms - tolerance_ms {
                    j.false_alarms += 1;
                    fail(
                        &mut j,
                        format!(
                            "device {} taken for offline {:.1} s after its last message, before its window of {:.1} s",
                            name(c.device),
                            after / 1000.0,
                            window_ms / 1000.0
                        ),
                    );
                    continue;
                }
                seen_after[i].get_or_insert(after);
            }
            "low_battery" if !reported_low.contains(&c.device) => {
                j.false_alarms += 1;
                fail(&mut j, format!("device {} never said its battery was low (check {})", name(c.device), c.id));
            }
            _ => {}
        }
    }
    j.noticed_after_ms.clone_from(&seen_after);
    for (s, after) in silences.iter().zip(seen_after) {
        let lasted = (s.back_ms.unwrap_or(ended_ms) - s.last_ms) as f64;
        let due_after = match s.kind {
            FaultKind::Off => tolerance_ms,
            _ => window_ms + tolerance_ms,
        };
        let due = lasted >= due_after;
        j.due += usize::from(due);
        match after {
            Some(after) => {
                j.noticed += 1;
                match s.kind {
                    FaultKind::Off => j.off_to_check_ms.push(after),
                    _ => j.flat_to_check_ms.push(after),
                }
                if after <= due_after {
                    j.noticed_in_time += 1;
                } else {
                    j.not_noticed += 1;
                    fail(
                        &mut j,
                        format!(
                            "{} device {} noticed {:.1} s after its last message (due within {:.1} s)",
                            s.kind.as_str(),
                            name(s.device),
                            after / 1000.0,
                            due_after / 1000.0
                        ),
                    );
                }
            }
            None if due => {
                j.not_noticed += 1;
                fail(
                    &mut j,
                    format!(
                        "{} device {} silent {:.1} s and never noticed (due within {:.1} s)",
                        s.kind.as_str(),
                        name(s.device),
                        lasted / 1000.0,
                        due_after / 1000.0
                    ),
                );
            }
            None => j.over_before_due += 1,
        }
    }
    j
}

impl HealthSummary {
    pub fn new(played: &Played, district: &District, lives: &Lives, calls_unmade: usize) -> Self {
        let l = &played.ledger;
        let speedup = played.clock.speedup;
        let t = &lives.timers;
        let window_ms = t.window_wall_s() * 1000.0;
        let tolerance_ms = NOTICE_TOLERANCE_WALL_S * 1000.0;
        let checks: Vec<&WelfareCheck> = l.welfare.values().collect();
        let name = |i: usize| district.elders[i].device_id.clone();
        let j = judge(&l.silences, &checks, &l.health.reported_low, window_ms, tolerance_ms, played.ended_ms, &name);
        let scen_min = |ms: f64| ms / 1000.0 * speedup / 60.0;
        let minutes = |v: &[f64]| Percentiles::of(v.iter().map(|ms| scen_min(*ms)).collect());
        let mut by_reason = BTreeMap::new();
        for c in &checks {
            *by_reason.entry(c.reason.clone()).or_insert(0) += 1;
        }
        let closed: Vec<&&WelfareCheck> = checks.iter().filter(|c| c.ended.is_some()).collect();
        let back = closed
            .iter()
            .filter(|c| {
                matches!(c.outcome.as_deref(), Some("the device was heard again") | Some("the device was charged"))
            })
            .count();
        let kinds = |m: &HashMap<FaultKind, u64>| m.iter().map(|(k, v)| (k.as_str().to_string(), *v)).collect();
        let wall_s = played.played_s / speedup;
        let watched = lives.watched();
        let notice_series = l
            .silences
            .iter()
            .zip(&j.noticed_after_ms)
            .filter_map(|(s, after)| {
                after.map(|ms| (played.clock.scenario_s(s.last) / 3600.0, scen_min(ms), s.kind == FaultKind::Off))
            })
            .collect();
        HealthSummary {
            watched_devices: watched,
            quiet_devices: lives.devices.len() - watched,
            heartbeat_min: t.interval_s(true, speedup) / 60.0,
            quiet_heartbeat_min: t.interval_s(false, speedup) / 60.0,
            heartbeats_sent: l.health.heartbeats,
            heartbeats_per_wall_s: if wall_s > 0.0 { l.health.heartbeats as f64 / wall_s } else { 0.0 },
            window_min: scen_min(window_ms),
            tolerance_min: scen_min(tolerance_ms),
            window: t.describe(speedup),
            went_silent: l.silences.len(),
            flat: l.silences.iter().filter(|s| s.kind == FaultKind::Flat).count(),
            switched_off: l.silences.iter().filter(|s| s.kind == FaultKind::Off).count(),
            due: j.due,
            noticed: j.noticed,
            noticed_in_time: j.noticed_in_time,
            over_before_due: j.over_before_due,
            flat_to_check_min: minutes(&j.flat_to_check_ms),
            switched_off_to_check_min: minutes(&j.off_to_check_ms),
            not_noticed: j.not_noticed,
            false_alarms: j.false_alarms,
            concurrent: l.welfare_concurrent,
            failures: j.failures,
            welfare_opened: checks.len(),
            welfare_by_reason: by_reason,
            welfare_closed: closed.len(),
            welfare_closed_device_back: back,
            welfare_closed_otherwise: closed.len() - back,
            welfare_open_at_end: checks.len() - closed.len(),
            faults: kinds(&l.health.faults),
            back: kinds(&l.health.backs),
            calls_unmade,
            notice_series,
        }
    }

    /// Whether the engine failed a device: one not noticed in time, a false alarm, two
    /// checks at once.
    pub fn failed(&self) -> bool {
        self.not_noticed > 0 || self.false_alarms > 0 || self.concurrent > 0
    }

    fn text(&self) -> String {
        let mut t = String::new();
        let n = |m: &BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        let f = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            t,
            "device health: {} devices heartbeat every {:.0} min, {} every {:.0} min ({}); {} heartbeats ({:.1} a wall-clock second)",
            self.watched_devices,
            self.heartbeat_min,
            self.quiet_devices,
            self.quiet_heartbeat_min,
            crate::health::QUIET_MODEL,
            self.heartbeats_sent,
            self.heartbeats_per_wall_s
        );
        let _ = writeln!(t, "  offline after {}; tolerance {:.1} min", self.window, self.tolerance_min);
        let _ = writeln!(
            t,
            "  went silent {} (flat {}, switched off {}): due to be noticed {}, noticed {} ({} in time), over before due {}",
            self.went_silent,
            self.flat,
            self.switched_off,
            self.due,
            self.noticed,
            self.noticed_in_time,
            self.over_before_due
        );
        for (name, p) in [("flat", &self.flat_to_check_min), ("switched off", &self.switched_off_to_check_min)] {
            let _ = writeln!(
                t,
                "  {name}: last message → welfare check (scen. min) n {} p50 {} p95 {} max {} (window {:.1})",
                p.n,
                f(p.p50),
                f(p.p95),
                f(p.max),
                self.window_min
            );
        }
        let _ = writeln!(
            t,
            "  not noticed in time {}   false alarms {}   two checks at once {}",
            self.not_noticed, self.false_alarms, self.concurrent
        );
        for why in &self.failures {
            let _ = writeln!(t, "    {why}");
        }
        let reasons: Vec<String> = self.welfare_by_reason.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(
            t,
            "  welfare checks opened {} ({}), closed {} (the device back {}, otherwise {}), open at the end {}",
            self.welfare_opened,
            if reasons.is_empty() { "none".to_string() } else { reasons.join(", ") },
            self.welfare_closed,
            self.welfare_closed_device_back,
            self.welfare_closed_otherwise,
            self.welfare_open_at_end
        );
        let _ = writeln!(
            t,
            "  flat {} (charged again {}), switched off {} (on again {}), not worn {} (worn again {}), low battery {} (charged {}); presses and cancels a dead or unworn device could not make {}",
            n(&self.faults, "flat"),
            n(&self.back, "flat"),
            n(&self.faults, "switched_off"),
            n(&self.back, "switched_off"),
            n(&self.faults, "not_worn"),
            n(&self.back, "not_worn"),
            n(&self.faults, "low_battery"),
            n(&self.back, "low_battery"),
            self.calls_unmade
        );
        t
    }
}

impl Summary {
    pub fn new(
        played: &Played,
        district: &District,
        lives: &Lives,
        calls_unmade: usize,
        scenario_name: &str,
        matching: &str,
        timers: String,
    ) -> Self {
        let l = &played.ledger;
        let clock = played.clock;
        let ms = |a: std::time::Instant, b: std::time::Instant| b.saturating_duration_since(a).as_secs_f64() * 1000.0;
        let scen_s =
            |a: std::time::Instant, b: std::time::Instant| b.saturating_duration_since(a).as_secs_f64() * clock.speedup;
        let presses = &l.presses;
        let lost = presses.iter().filter(|p| p.acked.is_none() && p.consoled.is_none()).count();
        let console: Vec<f64> = presses.iter().filter_map(|p| p.consoled.map(|c| ms(p.sent, c))).collect();
        let series = presses
            .iter()
            .filter_map(|p| p.consoled.map(|c| (clock.scenario_s(p.sent) / 3600.0, ms(p.sent, c))))
            .collect();
        let ack: Vec<f64> = presses.iter().filter_map(|p| p.acked.map(|c| ms(p.sent, c))).collect();
        let mut to_offer = Vec::new();
        let mut offer_to_accept = Vec::new();
        for inc in l.incidents.values() {
            let Some(p) = inc.opened_by.map(|i| &presses[i]) else { continue };
            if let Some(o) = inc.first_offer {
                to_offer.push(ms(p.sent, o));
            }
            if let (Some(o), Some(a)) = (inc.accepted_offer, inc.accepted) {
                offer_to_accept.push(scen_s(o, a));
            }
        }
        let care = care_outcomes(played, district, None);
        let family_told_measured_to = match care.family_told_by_delivery {
            0 => "told_at".to_string(),
            n => format!("delivery_at for {n} emergencies, told_at for the rest"),
        };
        let any_surge = presses.iter().any(|p| p.surge);
        let console_of = |surge: bool| {
            Percentiles::of(
                presses.iter().filter(|p| p.surge == surge).filter_map(|p| p.consoled.map(|c| ms(p.sent, c))).collect(),
            )
        };
        let surge = any_surge.then(|| care_outcomes(played, district, Some(true)));
        let outside_surge = any_surge.then(|| care_outcomes(played, district, Some(false)));
        Summary {
            scenario: scenario_name.to_string(),
            matching: matching.to_string(),
            devices: district.elders.len(),
            centres: district.centres.len(),
            responders: district.responders.iter().filter(|r| r.emergency_duty()).count(),
            speedup: clock.speedup,
            scenario_hours: played.plan_s / 3600.0,
            drain_min: (played.played_s - played.plan_s) / 60.0,
            engine_timers: timers,
            presses_sent: presses.len(),
            repeat_presses: presses.iter().filter(|p| p.repeat).count(),
            fall_presses: presses.iter().filter(|p| p.action == Action::Fall).count(),
            surge_presses: presses.iter().filter(|p| p.surge).count(),
            cancels_sent: l.cancels_sent,
            resends: presses.iter().map(|p| u64::from(p.resends)).sum(),
            incidents_seen: l.incidents.len(),
            lost,
            duplicated: l.unexplained_presses + l.concurrent_open,
            not_acknowledged: presses.iter().filter(|p| p.acked.is_none()).count(),
            not_on_console: presses.iter().filter(|p| p.consoled.is_none()).count(),
            press_to_console_ms: Percentiles::of(console),
            press_to_console_ms_outside_surge: any_surge.then(|| console_of(false)),
            press_to_console_ms_surge: any_surge.then(|| console_of(true)),
            press_to_help_coming_ms: Percentiles::of(ack),
            press_to_offer_ms: Percentiles::of(to_offer),
            offer_to_accept_s: Percentiles::of(offer_to_accept),
            press_to_on_scene_min: care.press_to_on_scene_min.clone(),
            accepted_within_60s_pct: care.accepted_within_60s_pct,
            on_scene_within_15min_pct: care.on_scene_within_15min_pct,
            family_told_within_60s_pct: care.family_told_within_60s_pct,
            family_answered_pct: care.family_answered_pct,
            care,
            surge,
            outside_surge,
            offers_accepted: l.offers_accepted,
            offers_declined: l.offers_declined,
            offers_unanswered: l.offers_unanswered,
            phone_refusals: l.phone_refusals,
            dispatcher_commands: l.dispatcher_commands,
            dispatcher_suggests: l.dispatcher_suggests,
            assign_calls_declined: l.assign_calls_declined,
            dispatcher_refusals: l.dispatcher_refusals,
            refusal_samples: l.refusal_samples.clone(),
            console_resyncs: l.console_resyncs,
            elders_with_contacts: district.elders.iter().filter(|e| !e.contacts.is_empty()).count(),
            contacts: district.elders.iter().map(|e| e.contacts.len()).sum(),
            family_told_measured_to,
            family_links_issued: l.family_links_issued,
            family_answers_taken: l.family_answers_taken,
            family_answers_late: l.family_answers_late,
            family_answers_refused: l.family_answers_refused,
            family_answers_failed: l.family_answers_failed,
            family_answer_lag_ms: Percentiles::of(l.family_answer_lag_ms.clone()),
            health: HealthSummary::new(played, district, lives, calls_unmade),
            programme: None,
            carers: None,
            services: None,
            console_series: series,
        }
    }

    /// The JSON printed by `--json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("plain data")
    }

    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "{} — matching: {}\n{} devices, {} centres, {} responders; {:.1} scenario hours (+{:.0} min drain) at {}x\nengine timers (scenario time): {}",
            self.scenario,
            self.matching,
            self.devices,
            self.centres,
            self.responders,
            self.scenario_hours,
            self.drain_min,
            self.speedup,
            self.engine_timers
        );
        let _ = writeln!(
            t,
            "presses {} ({} repeats, {} falls, {} in the surge), cancels {}, resends {}; incidents {}",
            self.presses_sent,
            self.repeat_presses,
            self.fall_presses,
            self.surge_presses,
            self.cancels_sent,
            self.resends,
            self.incidents_seen
        );
        let _ = writeln!(t, "lost {}   duplicated {}", self.lost, self.duplicated);
        let _ = writeln!(t);
        let _ = writeln!(t, "{:<34} {:>7} {:>9} {:>9} {:>9} {:>9}", "measure", "n", "p50", "p90", "p99", "max");
        let row = |t: &mut String, name: &str, p: &Percentiles, unit: &str| {
            let f = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                t,
                "{:<34} {:>7} {:>9} {:>9} {:>9} {:>9}",
                format!("{name} ({unit})"),
                p.n,
                f(p.p50),
                f(p.p90),
                f(p.p99),
                f(p.max)
            );
        };
        row(&mut t, "press → console", &self.press_to_console_ms, "ms");
        if let (Some(o), Some(s)) = (&self.press_to_console_ms_outside_surge, &self.press_to_console_ms_surge) {
            row(&mut t, "  outside the surge", o, "ms");
            row(&mut t, "  in the surge", s, "ms");
        }
        row(&mut t, "press → help_coming", &self.press_to_help_coming_ms, "ms");
        row(&mut t, "press → first offer", &self.press_to_offer_ms, "ms");
        row(&mut t, "offer → accept", &self.offer_to_accept_s, "scen. s");
        row(&mut t, "press → accept", &self.care.press_to_accept_s, "scen. s");
        row(&mut t, "press → on scene", &self.press_to_on_scene_min, "scen. min");
        row(&mut t, "responder's distance", &self.care.responder_distance_m, "m");
        row(&mut t, "press → family answer", &self.care.press_to_family_answer_s, "scen. s");
        row(&mut t, "family answer due → result", &self.family_answer_lag_ms, "ms");
        let _ = writeln!(t);
        let pct = |v: Option<f64>| v.map(|v| format!("{v:.1}%")).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            t,
            "emergencies {}: accepted within 60 s {}, on scene within 15 min {}; station alerted {}, {}; responder from the elder's own centre {}",
            self.care.emergencies,
            pct(self.care.accepted_within_60s_pct),
            pct(self.care.on_scene_within_15min_pct),
            self.care.station_alerted,
            self.care.nobody_going_text(),
            pct(self.care.own_centre_pct),
        );
        for (name, part) in [("outside the surge", &self.outside_surge), ("in the surge", &self.surge)] {
            if let Some(s) = part {
                let _ = writeln!(
                    t,
                    "  {name} {}: accepted within 60 s {}, on scene within 15 min {}; {}",
                    s.emergencies,
                    pct(s.accepted_within_60s_pct),
                    pct(s.on_scene_within_15min_pct),
                    s.nobody_going_text()
                );
            }
        }
        let _ = writeln!(
            t,
            "families ({} of {} elders have contacts, {} contacts; told measured to {}):",
            self.elders_with_contacts, self.devices, self.contacts, self.family_told_measured_to
        );
        let _ = writeln!(t, "  all {}", self.care.family_text());
        for (name, part) in [("outside the surge", &self.outside_surge), ("in the surge", &self.surge)] {
            if let Some(s) = part {
                let _ = writeln!(t, "  {name} {}", s.family_text());
            }
        }
        let _ = writeln!(
            t,
            "  family answers sent {}: taken {}, incident already ended {}, refused {}, failed {}; links issued {}",
            self.family_answers_taken
                + self.family_answers_late
                + self.family_answers_refused
                + self.family_answers_failed,
            self.family_answers_taken,
            self.family_answers_late,
            self.family_answers_refused,
            self.family_answers_failed,
            self.family_links_issued
        );
        let _ = writeln!(
            t,
            "offers: {} accepted, {} declined, {} left to lapse; dispatcher: {} suggestions asked, {} rung declined; refused frames: phones {}, dispatcher {} of {}",
            self.offers_accepted,
            self.offers_declined,
            self.offers_unanswered,
            self.dispatcher_suggests,
            self.assign_calls_declined,
            self.phone_refusals,
            self.dispatcher_refusals,
            self.dispatcher_commands + self.dispatcher_suggests
        );
        t.push_str(&self.health.text());
        if let Some(p) = &self.programme {
            t.push_str(&p.text());
        }
        if let Some(c) = &self.carers {
            t.push_str(&c.text());
        }
        if let Some(v) = &self.services {
            t.push_str(&v.text());
        }
        t
    }
}

impl Care {
    /// "N emergencies with contacts: family told within 60 s …, family answered …, …".
    fn family_text(&self) -> String {
        let pct = |v: Option<f64>| v.map(|v| format!("{v:.1}%")).unwrap_or_else(|| "-".into());
        format!(
            "{} emergencies with contacts: family told within 60 s {}, family answered {}, a second contact told {}, \
             every contact told and none answered {}",
            self.with_family,
            pct(self.family_told_within_60s_pct),
            pct(self.family_answered_pct),
            pct(self.family_second_contact_pct),
            pct(self.family_exhausted_pct),
        )
    }

    /// "nobody going N (the dispatcher assigned A, B of them on scene; handed to 120 H)".
    fn nobody_going_text(&self) -> String {
        format!(
            "nobody going {} (the dispatcher assigned {}, {} of them on scene; handed to 120 {})",
            self.nobody_going,
            self.nobody_going_assigned,
            self.nobody_going_assigned_on_scene,
            self.nobody_going_handed_to_120
        )
    }
}

/// An emergency no responder accepted within 60 s.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Missed {
    pub kind: String,
    /// The centre nearest the elder's home.
    pub own_centre: String,
    /// Responders with the skill the kind needs whose centre is inside their own
    /// 15-minute circle of the home by their travel mode (where they wait between jobs):
    /// 0 means no ladder could have offered it to anyone in time.
    pub could_reach: usize,
    /// Press to accept, scenario seconds, when somebody accepted later.
    pub accepted_after_s: Option<f64>,
    pub nobody_going: bool,
}

/// One run's policy and care outcomes, a line of a `--record` file: what `plot-care` draws
/// and the comparison tables are pooled from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CareRecord {
    /// The policy's name in tables and plots (`--label`, else made from the knobs).
    pub label: String,
    pub scenario: String,
    pub seed: u64,
    pub hours: f64,
    pub speedup: f64,
    pub responders_per_centre: u32,
    /// Responders on emergency duty (carers apart).
    pub responders: usize,
    pub matching: String,
    /// The ladder's knobs as the run set them; `None`: anxind's default.
    pub parallel_offers: Option<u32>,
    pub max_offers: Option<u32>,
    #[serde(default)]
    pub yield_extra_offers: Option<bool>,
    /// The offer deadline, scenario seconds.
    pub offer_timeout_s: f64,
    /// Emergencies outside the surge (all of them when the run had none).
    pub normal: Care,
    /// Emergencies pressed in the surge, when there was one.
    pub surge: Option<Care>,
    pub offers_accepted: u64,
    pub offers_declined: u64,
    pub offers_unanswered: u64,
    pub lost: usize,
    pub duplicated: u64,
    /// Wall-clock seconds the run took.
    pub wall_s: f64,
}

impl CareRecord {
    /// Reads a `--record` file: one JSON object a line, blank lines skipped.
    pub fn read_all(text: &str) -> Result<Vec<CareRecord>, String> {
        text.lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("line {}: {e}", i + 1)))
            .collect()
    }
}

/// Runs pooled: the shares of all their emergencies together, and each run's share.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pooled {
    pub runs: usize,
    pub emergencies: usize,
    pub accepted_within_60s_pct: Option<f64>,
    pub on_scene_within_15min_pct: Option<f64>,
    /// Per run, in the order given.
    pub accepted_each: Vec<f64>,
    pub on_scene_each: Vec<f64>,
    /// Of emergencies, the share nobody was going to (pooled, and per run).
    pub nobody_going_pct: Option<f64>,
    pub nobody_going_each: Vec<f64>,
}

impl Pooled {
    pub fn of<'a>(cares: impl IntoIterator<Item = &'a Care>) -> Self {
        let mut p = Pooled::default();
        let (mut a, mut da, mut o, mut d15, mut ng) = (0usize, 0usize, 0usize, 0usize, 0usize);
        let pct = |x: usize, of: usize| (of > 0).then(|| 100.0 * x as f64 / of as f64);
        for c in cares {
            p.runs += 1;
            p.emergencies += c.emergencies;
            (a, da, o, d15, ng) = (
                a + c.accepted_within_60s,
                da + c.decided_60s,
                o + c.on_scene_within_15min,
                d15 + c.decided_15min,
                ng + c.nobody_going,
            );
            p.accepted_each.extend(pct(c.accepted_within_60s, c.decided_60s));
            p.on_scene_each.extend(pct(c.on_scene_within_15min, c.decided_15min));
            p.nobody_going_each.extend(pct(c.nobody_going, c.emergencies));
        }
        p.accepted_within_60s_pct = pct(a, da);
        p.on_scene_within_15min_pct = pct(o, d15);
        p.nobody_going_pct = pct(ng, p.emergencies);
        p
    }
}

/// How many missed emergencies a run keeps for a look.
const MISSED_KEPT: usize = 40;

/// Care outcomes of all emergencies, or only of those in (or out of) the surge.
fn care_outcomes(played: &Played, district: &District, surge: Option<bool>) -> Care {
    let l = &played.ledger;
    let clock = played.clock;
    let end_s = played.played_s;
    let responder_centre: HashMap<&str, usize> =
        district.responders.iter().map(|r| (r.id.as_str(), r.centre)).collect();
    let scen =
        |a: std::time::Instant, b: std::time::Instant| b.saturating_duration_since(a).as_secs_f64() * clock.speedup;
    let mut c = Care::default();
    let (mut within60, mut decided60, mut within15, mut decided15) = (0usize, 0usize, 0usize, 0usize);
    let (mut own, mut went) = (0usize, 0usize);
    let mut to_accept = Vec::new();
    let mut to_scene = Vec::new();
    let mut distance = Vec::new();
    let (mut told60, mut decided_told, mut answered, mut second, mut exhausted) = (0usize, 0usize, 0, 0, 0);
    let mut to_answer = Vec::new();
    // Engine milliseconds to scenario seconds.
    let ms_scen = |from: i64, to: i64| (to - from).max(0) as f64 / 1000.0 * clock.speedup;
    for inc in l.incidents.values() {
        let Some(p) = inc.opened_by.map(|i| &l.presses[i]) else { continue };
        if !matches!(inc.kind.as_str(), "sos" | "fall") || inc.cancel_requested {
            continue;
        }
        if surge.is_some_and(|s| s != p.surge) {
            continue;
        }
        c.emergencies += 1;
        let pressed_s = clock.scenario_s(p.sent);
        if let Some(a) = inc.accepted {
            to_accept.push(scen(p.sent, a));
        }
        if let Some(o) = inc.on_scene {
            to_scene.push(scen(p.sent, o) / 60.0);
        }
        // Count an incident only where the run lasted long enough to tell.
        if pressed_s + 60.0 <= end_s {
            decided60 += 1;
            let in_time = inc.accepted.is_some_and(|a| scen(p.sent, a) <= 60.0);
            within60 += usize::from(in_time);
            if !in_time && c.missed_60s.len() < MISSED_KEPT {
                let elder = &district.elders[inc.device];
                let home = elder.home;
                let could_reach = district
                    .responders
                    .iter()
                    .filter(|r| r.emergency_duty() && (inc.kind != "fall" || r.first_aid))
                    .filter(|r| {
                        let d = district.centres[r.centre].position.distance_m(home);
                        d * 1.3 / r.mode.speed_m_s() / 60.0 <= 15.0
                    })
                    .count();
                c.missed_60s.push(Missed {
                    kind: inc.kind.clone(),
                    own_centre: district.centres[elder.own_centre].name.clone(),
                    could_reach,
                    accepted_after_s: inc.accepted.map(|a| scen(p.sent, a)),
                    nobody_going: inc.nobody_going,
                });
            }
        }
        if pressed_s + 900.0 <= end_s {
            decided15 += 1;
            within15 += usize::from(inc.on_scene.is_some_and(|o| scen(p.sent, o) <= 900.0));
        }
        c.station_alerted += usize::from(inc.station_alerted);
        let family_going = inc.family.going_at_ms.is_some();
        c.family_going += usize::from(family_going);
        if inc.nobody_going {
            c.nobody_going += 1;
            c.nobody_going_family_going += usize::from(family_going);
            match inc.nobody_going_outcome {
                Some(NobodyGoingOutcome::Assigned) => {
                    c.nobody_going_assigned += 1;
                    c.nobody_going_assigned_on_scene += usize::from(inc.on_scene.is_some());
                }
                Some(NobodyGoingOutcome::HandedTo120) => c.nobody_going_handed_to_120 += 1,
                None => {}
            }
        }
        if let Some(r) = inc.responder.as_deref().and_then(|r| responder_centre.get(r)) {
            went += 1;
            own += usize::from(*r == district.elders[inc.device].own_centre);
        }
        if let Some(d) = inc.responder_distance_m {
            distance.push(d);
        }
        if !district.elders[inc.device].contacts.is_empty() {
            let f = &inc.family;
            c.with_family += 1;
            if pressed_s + 60.0 <= end_s {
                decided_told += 1;
                c.family_told_by_delivery += usize::from(f.first_delivery_at_ms.is_some());
                let told = f.first_delivery_at_ms.or(f.first_told_at_ms);
                told60 += usize::from(told.is_some_and(|t| ms_scen(f.pressed_at_ms, t) <= 60.0));
            }
            if let Some(a) = f.answered_at_ms {
                answered += 1;
                to_answer.push(ms_scen(f.pressed_at_ms, a));
            }
            second += usize::from(f.told.len() >= 2);
            exhausted += usize::from(f.exhausted);
        }
    }
    let pct = |a: usize, b: usize| (b > 0).then(|| 100.0 * a as f64 / b as f64);
    c.accepted_within_60s_pct = pct(within60, decided60);
    c.on_scene_within_15min_pct = pct(within15, decided15);
    (c.decided_60s, c.accepted_within_60s, c.decided_15min, c.on_scene_within_15min) =
        (decided60, within60, decided15, within15);
    c.own_centre_pct = pct(own, went);
    c.press_to_accept_s = Percentiles::of(to_accept);
    c.press_to_on_scene_min = Percentiles::of(to_scene);
    c.responder_distance_m = Percentiles::of(distance);
    c.family_told_within_60s_pct = pct(told60, decided_told);
    c.family_answered_pct = pct(answered, c.with_family);
    c.press_to_family_answer_s = Percentiles::of(to_answer);
    c.family_second_contact_pct = pct(second, c.with_family);
    c.family_exhausted_pct = pct(exhausted, c.with_family);
    c
}

/// Two runs' care outcomes side by side.
pub fn comparison(a: &Summary, b: &Summary) -> String {
    let mut t = String::new();
    let pct = |v: Option<f64>| v.map(|v| format!("{v:.1}%")).unwrap_or_else(|| "-".into());
    let num = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
    let _ = writeln!(t, "{} — the same presses, two matching policies\n", a.scenario);
    let _ = writeln!(t, "{:<44} {:>16} {:>16}", "", a.matching, b.matching);
    type Column = Box<dyn Fn(&Summary) -> String>;
    let rows: Vec<(&str, Column)> = vec![
        ("emergencies", Box::new(|s: &Summary| s.care.emergencies.to_string())),
        ("accepted within 60 s", Box::new(move |s: &Summary| pct(s.care.accepted_within_60s_pct))),
        ("on scene within 15 min", Box::new(move |s: &Summary| pct(s.care.on_scene_within_15min_pct))),
        ("press → accept p50 (scen. s)", Box::new(move |s: &Summary| num(s.care.press_to_accept_s.p50))),
        ("press → accept p90 (scen. s)", Box::new(move |s: &Summary| num(s.care.press_to_accept_s.p90))),
        ("press → on scene p50 (scen. min)", Box::new(move |s: &Summary| num(s.care.press_to_on_scene_min.p50))),
        ("press → on scene p90 (scen. min)", Box::new(move |s: &Summary| num(s.care.press_to_on_scene_min.p90))),
        ("responder's distance p50 (m)", Box::new(move |s: &Summary| num(s.care.responder_distance_m.p50))),
        ("station's duty line alerted", Box::new(|s: &Summary| s.care.station_alerted.to_string())),
        ("nobody going (to a dispatcher)", Box::new(|s: &Summary| s.care.nobody_going.to_string())),
        (
            "  then assigned by the dispatcher / to 120",
            Box::new(|s: &Summary| format!("{} / {}", s.care.nobody_going_assigned, s.care.nobody_going_handed_to_120)),
        ),
        ("responder from the elder's own centre", Box::new(move |s: &Summary| pct(s.care.own_centre_pct))),
        (
            "outside the surge: accepted within 60 s",
            Box::new(move |s: &Summary| pct(s.outside_surge.as_ref().and_then(|c| c.accepted_within_60s_pct))),
        ),
        (
            "outside the surge: on scene within 15 min",
            Box::new(move |s: &Summary| pct(s.outside_surge.as_ref().and_then(|c| c.on_scene_within_15min_pct))),
        ),
        (
            "surge: on scene within 15 min",
            Box::new(move |s: &Summary| pct(s.surge.as_ref().and_then(|c| c.on_scene_within_15min_pct))),
        ),
        ("family told within 60 s", Box::new(move |s: &Summary| pct(s.care.family_told_within_60s_pct))),
        ("family answered", Box::new(move |s: &Summary| pct(s.care.family_answered_pct))),
        ("press → family answer p50 (scen. s)", Box::new(move |s: &Summary| num(s.care.press_to_family_answer_s.p50))),
        ("a second contact told", Box::new(move |s: &Summary| pct(s.care.family_second_contact_pct))),
        ("every contact told, none answered", Box::new(move |s: &Summary| pct(s.care.family_exhausted_pct))),
        ("presses lost / duplicated", Box::new(|s: &Summary| format!("{} / {}", s.lost, s.duplicated))),
    ];
    for (name, f) in rows {
        let _ = writeln!(t, "{:<44} {:>16} {:>16}", name, f(a), f(b));
    }
    t
}

/// Records grouped by `key`, groups in the order first met.
fn groups<K: PartialEq + Clone>(records: &[CareRecord], key: impl Fn(&CareRecord) -> K) -> Vec<(K, Vec<&CareRecord>)> {
    let mut out: Vec<(K, Vec<&CareRecord>)> = Vec::new();
    for r in records {
        let k = key(r);
        match out.iter_mut().find(|(g, _)| *g == k) {
            Some((_, v)) => v.push(r),
            None => out.push((k, vec![r])),
        }
    }
    out
}

fn pct1(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}%")).unwrap_or_else(|| "-".into())
}

fn each(values: &[f64]) -> String {
    values.iter().map(|v| format!("{v:.1}")).collect::<Vec<_>>().join(", ")
}

fn seeds(runs: &[&CareRecord]) -> String {
    runs.iter().map(|r| r.seed.to_string()).collect::<Vec<_>>().join(", ")
}

/// The normal day's care outcomes per policy as a Markdown table: pooled over the policy's
/// runs, each run's share in brackets.
pub fn policy_table(records: &[CareRecord]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| policy | seeds | emergencies | accepted within 60 s: pooled (each run) | on scene within 15 min: pooled (each run) | press → accept p50 / p90 (s, each run) | offers per emergency | nobody going | lost / duplicated |"
    );
    let _ = writeln!(t, "|---|---|---:|---|---|---|---:|---:|---:|");
    for (label, runs) in groups(records, |r| r.label.clone()) {
        let p = Pooled::of(runs.iter().map(|r| &r.normal));
        let accept: Vec<String> = runs
            .iter()
            .map(|r| {
                let q = &r.normal.press_to_accept_s;
                format!("{:.0} / {:.0}", q.p50.unwrap_or(f64::NAN), q.p90.unwrap_or(f64::NAN))
            })
            .collect();
        let offers: u64 = runs.iter().map(|r| r.offers_accepted + r.offers_declined + r.offers_unanswered).sum();
        let nobody: usize = runs.iter().map(|r| r.normal.nobody_going).sum();
        let (lost, dup): (usize, u64) = (runs.iter().map(|r| r.lost).sum(), runs.iter().map(|r| r.duplicated).sum());
        let _ = writeln!(
            t,
            "| {label} | {} | {} | **{}** ({}) | **{}** ({}) | {} | {:.2} | {nobody} | {lost} / {dup} |",
            seeds(&runs),
            p.emergencies,
            pct1(p.accepted_within_60s_pct),
            each(&p.accepted_each),
            pct1(p.on_scene_within_15min_pct),
            each(&p.on_scene_each),
            accept.join("; "),
            offers as f64 / p.emergencies.max(1) as f64,
        );
    }
    t
}

/// The surge's outcome per policy and responder count as a Markdown table.
pub fn sweep_table(records: &[CareRecord]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| responders (per centre) | policy | seeds | surge emergencies | nobody going: pooled (each run) | of those, family going | accepted within 60 s | on scene within 15 min |"
    );
    let _ = writeln!(t, "|---|---|---|---:|---|---:|---:|---:|");
    let mut groups = groups(records, |r| (r.responders, r.responders_per_centre, r.label.clone()));
    groups.sort_by(|a, b| (a.0 .0, &a.0 .2).cmp(&(b.0 .0, &b.0 .2)));
    for ((responders, per_centre, label), runs) in groups {
        let surges: Vec<&Care> = runs.iter().filter_map(|r| r.surge.as_ref()).collect();
        if surges.is_empty() {
            continue;
        }
        let p = Pooled::of(surges.iter().copied());
        let family: usize = surges.iter().map(|c| c.nobody_going_family_going).sum();
        let nobody: usize = surges.iter().map(|c| c.nobody_going).sum();
        let _ = writeln!(
            t,
            "| {responders} ({per_centre}) | {label} | {} | {} | **{}** ({}) | {family} of {nobody} | {} | {} |",
            seeds(&runs),
            p.emergencies,
            pct1(p.nobody_going_pct),
            each(&p.nobody_going_each),
            pct1(p.accepted_within_60s_pct),
            pct1(p.on_scene_within_15min_pct),
        );
    }
    t
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let p = Percentiles::of((1..=100).map(f64::from).collect());
        assert_eq!((p.n, p.p50, p.p90, p.p99, p.max), (100, Some(50.0), Some(90.0), Some(99.0), Some(100.0)));
        assert_eq!(Percentiles::of(vec![]).p50, None);
        assert_eq!(Percentiles::of(vec![3.0]).p99, Some(3.0));
    }

    /// A recorded run with `accepted` of `decided` emergencies accepted within 60 s.
    pub(crate) fn record(label: &str, seed: u64, accepted: usize, decided: usize) -> CareRecord {
        let normal = Care {
            emergencies: decided,
            decided_60s: decided,
            accepted_within_60s: accepted,
            decided_15min: decided,
            on_scene_within_15min: decided,
            nobody_going: decided - accepted,
            ..Care::default()
        };
        CareRecord {
            label: label.into(),
            scenario: "xishan".into(),
            seed,
            hours: 4.0,
            speedup: 60.0,
            responders_per_centre: 4,
            responders: 140,
            matching: "nearest".into(),
            parallel_offers: Some(1),
            max_offers: Some(3),
            yield_extra_offers: None,
            offer_timeout_s: 60.0,
            surge: Some(normal.clone()),
            normal,
            offers_accepted: 10,
            offers_declined: 1,
            offers_unanswered: 1,
            lost: 0,
            duplicated: 0,
            wall_s: 1.0,
        }
    }

    #[test]
    fn runs_pool_by_their_counts_not_by_averaging_their_shares() {
        let a = record("old", 1, 9, 10);
        let b = record("old", 2, 99, 100);
        let p = Pooled::of([&a.normal, &b.normal]);
        assert_eq!((p.runs, p.emergencies), (2, 110));
        assert_eq!(p.accepted_within_60s_pct, Some(100.0 * 108.0 / 110.0), "not the mean of 90% and 99%");
        assert_eq!(p.accepted_each, [90.0, 99.0]);
        assert_eq!(p.nobody_going_pct, Some(100.0 * 2.0 / 110.0));
        assert_eq!(Pooled::of([]).accepted_within_60s_pct, None);
    }

    #[test]
    fn a_record_file_reads_back_and_a_bad_line_is_named() {
        let runs = [record("old", 1, 9, 10), record("new", 1, 10, 10)];
        let text: String = runs.iter().map(|r| serde_json::to_string(r).unwrap() + "\n\n").collect();
        assert_eq!(CareRecord::read_all(&text).unwrap(), runs);
        let err = CareRecord::read_all(&format!("{text}{{\"label\": 1}}\n")).unwrap_err();
        assert!(err.starts_with("line 5:"), "{err}");
    }

    #[test]
    fn the_tables_pool_each_policy_and_list_each_run() {
        let runs = [record("old", 1, 9, 10), record("new", 1, 10, 10), record("old", 2, 99, 100)];
        let t = policy_table(&runs);
        let old = t.lines().find(|l| l.starts_with("| old |")).unwrap();
        assert!(old.contains("| 1, 2 | 110 | **98.2%** (90.0, 99.0) |"), "{old}");
        assert_eq!(t.lines().filter(|l| l.starts_with("| new |")).count(), 1, "{t}");
        let sweep = sweep_table(&runs);
        assert!(sweep.contains("| 140 (4) | old | 1, 2 | 110 | **1.8%** (10.0, 1.0) | 0 of 2 |"), "{sweep}");
    }

    fn silence(device: usize, kind: FaultKind, last_ms: i64, back_ms: Option<i64>) -> Silence {
        Silence { device, kind, last: std::time::Instant::now(), last_ms, back_ms }
    }

    fn check(id: u64, device: usize, reason: &str, opened_at_ms: i64) -> WelfareCheck {
        WelfareCheck {
            id,
            device,
            reason: reason.into(),
            opened_at_ms,
            seen: std::time::Instant::now(),
            ended: None,
            outcome: None,
        }
    }

    /// A window of 15 s and a tolerance of 2 s; the run stopped watching at 100 s.
    fn judged(silences: &[Silence], checks: &[WelfareCheck], low: &[usize]) -> Judgement {
        let checks: Vec<&WelfareCheck> = checks.iter().collect();
        judge(silences, &checks, &low.iter().copied().collect(), 15_000.0, 2_000.0, 100_000, &|i| format!("d-{i}"))
    }

    #[test]
    fn silent_devices_noticed_within_their_window_pass() {
        let silences = [
            silence(1, FaultKind::Flat, 10_000, None),
            silence(2, FaultKind::Off, 20_000, Some(60_000)),
            // Back after 5 s: never due, and nobody noticed it.
            silence(3, FaultKind::Flat, 30_000, Some(35_000)),
        ];
        let checks = [
            check(1, 1, "low_battery", 10_010),
            check(2, 1, "device_offline", 25_040),
            check(3, 2, "power_off", 20_005),
        ];
        let j = judged(&silences, &checks, &[1]);
        assert_eq!((j.due, j.noticed, j.noticed_in_time, j.over_before_due), (2, 2, 2, 1), "{j:?}");
        assert_eq!((j.not_noticed, j.false_alarms), (0, 0), "{:?}", j.failures);
        assert_eq!((j.flat_to_check_ms.as_slice(), j.off_to_check_ms.as_slice()), (&[15_040.0][..], &[5.0][..]));
    }

    #[test]
    fn a_dead_device_not_noticed_or_noticed_late_fails() {
        let silences = [silence(1, FaultKind::Flat, 10_000, None), silence(2, FaultKind::Flat, 10_000, Some(80_000))];
        // Device 1 is never noticed; device 2 only 20 s after its last message.
        let j = judged(&silences, &[check(1, 2, "device_offline", 30_000)], &[]);
        assert_eq!((j.due, j.noticed, j.noticed_in_time, j.not_noticed, j.false_alarms), (2, 1, 0, 2, 0), "{j:?}");
        assert!(j.failures.iter().any(|f| f.contains("never noticed")), "{:?}", j.failures);
        // Switched off and noticed only at its window: a power_off is due at once.
        let j = judged(&[silence(3, FaultKind::Off, 10_000, None)], &[check(1, 3, "device_offline", 25_000)], &[]);
        assert_eq!((j.noticed, j.not_noticed), (1, 1), "{j:?}");
    }

    #[test]
    fn a_live_device_taken_for_dead_is_a_false_alarm() {
        let checks = [
            // Device 4 never went silent.
            check(1, 4, "device_offline", 50_000),
            // Device 5 went flat at 10 s, taken for offline after 5 s only.
            check(2, 5, "device_offline", 15_000),
            // Device 6 came back at 40 s and is taken for offline at 50 s.
            check(3, 6, "device_offline", 50_000),
            // Device 7 never switched off, nor said its battery was low.
            check(4, 7, "power_off", 50_000),
            check(5, 7, "low_battery", 50_000),
        ];
        let silences =
            [silence(5, FaultKind::Flat, 10_000, Some(90_000)), silence(6, FaultKind::Flat, 10_000, Some(40_000))];
        let j = judged(&silences, &checks, &[5, 6]);
        assert_eq!(j.false_alarms, 5, "{:?}", j.failures);
        assert!(j.failures.iter().any(|f| f.contains("before its window")), "{:?}", j.failures);
        assert!(j.failures.iter().any(|f| f.contains("was not silent")), "{:?}", j.failures);
        // The two silences were due (75 s and 30 s long) and had no good check.
        assert_eq!(j.not_noticed, 2, "{j:?}");
    }
}
