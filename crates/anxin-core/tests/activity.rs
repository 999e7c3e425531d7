//! Abnormal inactivity, on simulated weeks: an elder living alone whose watch heartbeats
//! every five minutes, saying whether it saw her move. A normal routine never opens a check;
//! a late riser is looked for at first and learned within a week; a fall is noticed after
//! the quiet waking hours set; the night never counts; the next activity, a press or a
//! dispatcher ends the check; what was learned survives a restart.

use anxin_core::testkit::{d1 as dev, one_of_each};
use anxin_core::*;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;
/// 2025-11-02 00:00 in Kunming (UTC+8), a Sunday.
const MIDNIGHT: i64 = 1_762_012_800_000;
const BEAT: i64 = 5 * MIN;

fn at(day: i64, hour: f64) -> Timestamp {
    Timestamp(MIDNIGHT + day * DAY + (hour * HOUR as f64) as i64)
}

fn alone() -> Registry {
    let mut r = one_of_each();
    r.elders[0].profile.lives_alone = Some(true);
    r.elders[0].profile.contacts = vec![Contact {
        name: "王军".into(),
        relation: "儿子".into(),
        phone: "13700000002".into(),
        ..Contact::default()
    }];
    r
}

fn elder() -> ElderId {
    ElderId::parse("e-1").unwrap()
}

/// A day of somebody's life: when they get up and go to bed (hours past midnight, maybe past
/// 24), a nap, and a trip in the night.
#[derive(Clone, Copy)]
struct Routine {
    wake: f64,
    sleep: f64,
    nap: Option<(f64, f64)>,
    night_trip: Option<f64>,
}

impl Routine {
    /// Up at 6:30, a nap after lunch, to bed at 22:00, up in the night one night in three.
    fn early(day: i64) -> Self {
        Self { wake: 6.5, sleep: 22.0, nap: Some((13.0, 14.5)), night_trip: (day % 3 == 0).then_some(3.0) }
    }

    /// Whether she moves in the five minutes from `hour` (of the day that began at midnight).
    fn moving(&self, hour: f64, rng: &mut u64) -> bool {
        let awake = (hour >= self.wake && hour < self.sleep) || hour + 24.0 < self.sleep;
        let napping = self.nap.is_some_and(|(a, b)| hour >= a && hour < b);
        let trip = self.night_trip.is_some_and(|t| hour >= t && hour < t + 0.1);
        // Up and about: she moves in most five-minute spells, not all (reading, the radio).
        trip || (awake && !napping && next(rng) % 10 < 6)
    }
}

/// A small deterministic generator (xorshift), so that every run lives the same weeks.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

struct Life {
    e: Engine,
    rng: u64,
    now: Timestamp,
    /// Every inactivity check opened: when, and how it ended (and when).
    opened: Vec<(Timestamp, IncidentId)>,
    ended: Vec<(Timestamp, IncidentId, String)>,
    out: Outbox,
}

impl Life {
    fn new(policy: Policy) -> Self {
        let mut e = Engine::new(policy, alone(), Resume::default());
        e.start_health(at(0, 0.0));
        Self { e, rng: 0x9e37_79b9_7f4a_7c15, now: at(0, 0.0), opened: vec![], ended: vec![], out: Outbox::default() }
    }

    fn heartbeat(&mut self, active: bool) {
        let msg = MessageId::parse(format!("hb-{}", self.now.millis())).unwrap();
        let health = HealthReport { active: Some(active), interval_s: Some(300), ..HealthReport::default() };
        let event = DeviceEvent {
            msg_id: msg,
            event: EventType::Heartbeat,
            device_ts: self.now,
            fix: FixReport::Absent,
            health,
        };
        let mut out = Outbox::default();
        self.e.handle_device_event(&dev(), event, self.now, &mut out).unwrap();
        self.take(out);
    }

    fn press(&mut self, kind: EventType, msg: &str) -> Outcome {
        let event = DeviceEvent {
            msg_id: MessageId::parse(msg).unwrap(),
            event: kind,
            device_ts: self.now,
            fix: FixReport::Absent,
            health: HealthReport::default(),
        };
        let mut out = Outbox::default();
        let outcome = self.e.handle_device_event(&dev(), event, self.now, &mut out).unwrap();
        self.take(out);
        outcome
    }

    /// Runs the clock to `to`, ticking at every deadline on the way.
    fn run_to(&mut self, to: Timestamp) {
        let mut out = Outbox::default();
        while let Some(due) = self.e.next_deadline().filter(|d| *d <= to) {
            self.now = due.max(self.now);
            self.e.tick(self.now, &mut out);
        }
        self.now = to;
        self.e.tick(to, &mut out);
        self.take(out);
    }

    fn take(&mut self, out: Outbox) {
        for ev in &out.events {
            let inactive = |id| {
                self.opened.iter().any(|(_, o)| *o == id)
                    || matches!(&ev.change, Change::Opened { welfare: Some(WelfareReason::Inactive), .. })
            };
            match &ev.change {
                Change::Opened { welfare: Some(WelfareReason::Inactive), .. } => {
                    self.opened.push((ev.at, ev.incident_id))
                }
                Change::Resolved { outcome } if inactive(ev.incident_id) => {
                    self.ended.push((ev.at, ev.incident_id, outcome.clone()))
                }
                _ => {}
            }
        }
        self.out.events.extend(out.events);
        self.out.notifications.extend(out.notifications);
    }

    /// Lives `days` days of `routine` from the current day's midnight, a heartbeat every
    /// five minutes saying whether she moved.
    fn live(&mut self, days: i64, routine: impl Fn(i64) -> Routine) {
        let first = (self.now.millis() - MIDNIGHT).div_euclid(DAY);
        for day in first..first + days {
            let r = routine(day);
            let mut t = at(day, 0.0).millis();
            while t < at(day + 1, 0.0).millis() {
                self.run_to(Timestamp(t));
                let hour = (t - at(day, 0.0).millis()) as f64 / HOUR as f64;
                // The evening of the day before runs past midnight for a late sleeper.
                let moving = r.moving(hour, &mut self.rng);
                self.heartbeat(moving);
                t += BEAT;
            }
        }
        self.run_to(at(first + days, 0.0));
    }

    /// Heartbeats saying she did not move, every five minutes until `to`.
    fn quiet_until(&mut self, to: Timestamp) {
        while self.now.plus_millis(BEAT) <= to {
            let next = self.now.plus_millis(BEAT);
            self.run_to(next);
            self.heartbeat(false);
        }
        self.run_to(to);
    }

    fn opened_on(&self, days: std::ops::Range<i64>) -> usize {
        self.opened.iter().filter(|(t, _)| days.contains(&((t.millis() - MIDNIGHT).div_euclid(DAY)))).count()
    }
}

#[test]
fn weeks_of_an_ordinary_routine_open_no_check() {
    let mut life = Life::new(Policy::default());
    life.live(35, Routine::early);
    assert!(life.e.elder_activity(&elder()).is_some(), "a watch that reports movement starts the watch");
    assert_eq!(life.opened, vec![], "five weeks, naps and nights included, and nothing to check");
    // What was learned: up from before 7 to 22, a trip at 3 not a habit of the hours.
    let a = life.e.elder_activity(&elder()).unwrap();
    let hours = a.waking_hours(life.now, &life.e.policy().activity, life.e.policy().utc_offset_min);
    assert_eq!(hours.learned_from_days, 28);
    assert_eq!(hours.describe(), "06-13, 14-22", "her own hours, her nap left out");
}

#[test]
fn a_fall_in_the_morning_is_noticed_after_four_waking_hours_and_a_press_ends_the_check() {
    let mut life = Life::new(Policy::default());
    life.live(21, Routine::early);
    // Day 21: up at 6:30 as ever, then nothing from 10:00 (she fell; the watch beats on).
    life.live(1, |_| Routine { sleep: 10.0, nap: None, night_trip: None, ..Routine::early(0) });
    assert_eq!(life.opened.len(), 1, "{:?}", life.opened);
    let (opened_at, id) = life.opened[0];
    // Her last move was before 10:00; four of her waking hours later (the nap hour 13-14 is
    // not one of them, so it does not count): before 15:00.
    assert!(opened_at > at(21, 14.0) && opened_at <= at(21, 15.0), "opened at {:?}", opened_at);
    let check = life.e.inactivity_check_of(&elder()).expect("open");
    assert_eq!((check.kind, check.welfare), (IncidentKind::Welfare, Some(WelfareReason::Inactive)));
    let note = life.out.events.iter().find_map(|ev| match &ev.change {
        Change::Note { text } if ev.incident_id == id => Some(text.clone()),
        _ => None,
    });
    let note = note.expect("the check says why");
    assert!(note.contains("No activity for 4 waking hours") && note.contains("06-13, 14-22"), "{note}");
    assert!(note.contains("learned") || note.contains("last 21 days"), "{note}");
    // Her son takes device news: he is told, as low priority.
    let told: Vec<_> = life.out.notifications.iter().filter(|n| n.incident_id == id).collect();
    assert_eq!(told.len(), 1);
    assert!(told[0].text.contains("没有活动") || told[0].text.contains("up and about"), "{}", told[0].text);
    // She presses the button at last: the check ends, and the emergency opens beside it.
    life.now = at(21, 16.0);
    assert!(matches!(life.press(EventType::Sos, "sos-1"), Outcome::Opened(_)));
    assert_eq!(life.ended.len(), 1);
    assert_eq!(life.ended[0].2, "the elder was active again");
    assert!(life.e.inactivity_check_of(&elder()).is_none());
}

#[test]
fn a_late_riser_is_looked_for_in_her_first_week_and_never_once_learned() {
    let mut life = Life::new(Policy::default());
    // Up at 11:30, to bed at 1:00.
    let late = |_| Routine { wake: 11.5, sleep: 25.0, nap: None, night_trip: None };
    life.live(28, late);
    let first_week = life.opened_on(0..8);
    assert!(first_week >= 5, "the fixed hours (from 7:00) look for her at 11:00 at first: {first_week}");
    assert_eq!(life.opened_on(8..28), 0, "after a week her own hours are used");
    // Every one of those closed by itself when she got up.
    assert_eq!(life.ended.len(), life.opened.len());
    assert!(life.ended.iter().all(|(_, _, why)| why == "the elder was active again"));
    for ((opened, _), (ended, _, _)) in life.opened.iter().zip(&life.ended) {
        assert!(ended.millis() - opened.millis() < 2 * HOUR, "closed once she was up");
    }
}

#[test]
fn the_night_never_counts() {
    // Nobody is looked for at night however long it is: last move at 20:00, up at 9:30.
    let policy = Policy::default();
    let mut life = Life::new(policy);
    life.live(3, |_| Routine { wake: 6.5, sleep: 20.0, nap: None, night_trip: None });
    // With the fixed hours 07-21: from her last move (just before 20:00) to 21:00, and
    // 07:00-09:30, make under four hours.
    life.live(1, |_| Routine { wake: 9.5, sleep: 20.0, nap: None, night_trip: None });
    assert_eq!(life.opened, vec![]);
}

#[test]
fn a_check_a_dispatcher_closes_does_not_open_again_at_once() {
    let mut life = Life::new(Policy::default());
    life.live(10, Routine::early);
    // Quiet from 9:00 on day 10 (she went out without her watch, it turns out).
    life.live(1, |_| Routine { sleep: 9.0, nap: None, night_trip: None, ..Routine::early(0) });
    let (_, id) = *life.opened.first().expect("opened");
    assert_eq!(life.opened.len(), 1);
    assert!(life.e.incident(id).is_some(), "still quiet: still open");
    // The dispatcher phones at midnight and ends it, as the console does: resolved, then
    // closed.
    let done = at(11, 0.0);
    let mut out = Outbox::default();
    let outcome = "well: she was at her sister's".to_string();
    life.e.dispatcher_acts("wang", id, DispatcherAction::Resolve { outcome: outcome.clone() }, done, &mut out).unwrap();
    life.e.dispatcher_acts("wang", id, DispatcherAction::Close { outcome }, done, &mut out).unwrap();
    assert!(life.e.inactivity_check_of(&elder()).is_none());
    // Still quiet the next morning (the watch is in a drawer): not reopened at once for the
    // quiet before the call, but four of her waking hours after it: 06:00-10:00.
    life.quiet_until(at(11, 9.9));
    assert_eq!(life.opened.len(), 1, "not reopened before four waking hours have passed");
    life.quiet_until(at(11, 10.1));
    assert_eq!(life.opened.len(), 2, "still nothing: looked for again");
}

#[test]
fn an_open_emergency_holds_the_check_back() {
    let mut life = Life::new(Policy::default());
    life.live(8, Routine::early);
    life.now = at(8, 9.0);
    life.heartbeat(true);
    assert!(matches!(life.press(EventType::Fall, "fall-1"), Outcome::Opened(_)));
    // Nothing moves after the fall, but a responder is on the way: no welfare check beside it.
    life.quiet_until(at(8, 15.0));
    assert_eq!(life.opened, vec![]);
    assert!(life.e.device_health(&dev()).is_some_and(|h| !h.offline), "the watch beats on: it is the emergency");
}

#[test]
fn only_elders_living_alone_with_a_device_that_reports_movement_are_watched() {
    // Plain heartbeats (no `active`) start nothing.
    let mut e = Engine::new(Policy::default(), alone(), Resume::default());
    e.start_health(at(0, 8.0));
    let beat = |active: Option<bool>| DeviceEvent {
        msg_id: MessageId::parse(format!("hb-{}", active.map_or(0, |a| 1 + a as u8))).unwrap(),
        event: EventType::Heartbeat,
        device_ts: at(0, 8.0),
        fix: FixReport::Absent,
        health: HealthReport { active, ..HealthReport::default() },
    };
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), beat(None), at(0, 8.0), &mut out).unwrap();
    e.handle_device_event(&dev(), beat(Some(false)), at(0, 8.1), &mut out).unwrap();
    assert_eq!(e.watched_count(), 0);
    // A press is activity but not a sign the device reports movement.
    let sos = DeviceEvent { msg_id: MessageId::parse("s").unwrap(), event: EventType::Sos, ..beat(None) };
    e.handle_device_event(&dev(), sos, at(0, 8.2), &mut out).unwrap();
    assert_eq!(e.watched_count(), 0);
    let motion = DeviceEvent { msg_id: MessageId::parse("m").unwrap(), event: EventType::Motion, ..beat(None) };
    e.handle_device_event(&dev(), motion.clone(), at(0, 8.3), &mut out).unwrap();
    assert_eq!(e.watched_count(), 1);
    // An elder who does not live alone is not watched, whatever the device says.
    let mut with_family = alone();
    with_family.elders[0].profile.lives_alone = Some(false);
    let mut e = Engine::new(Policy::default(), with_family, Resume::default());
    e.start_health(at(0, 8.0));
    e.handle_device_event(&dev(), motion, at(0, 8.3), &mut out).unwrap();
    assert_eq!(e.watched_count(), 0);
}

#[test]
fn an_elder_who_no_longer_lives_alone_is_no_longer_watched_and_their_check_ends() {
    let mut life = Life::new(Policy::default());
    life.live(2, Routine::early);
    life.live(1, |_| Routine { sleep: 8.0, nap: None, night_trip: None, ..Routine::early(0) });
    let (_, id) = life.opened[0];
    assert!(life.e.incident(id).is_some());
    let mut moved_in = alone().elders.remove(0);
    moved_in.profile.lives_alone = Some(false);
    let mut out = Outbox::default();
    let amend = Amend::new(Amendment::Update(Entry::Elder(moved_in)));
    life.e.amend(amend, "admin", at(3, 1.0), &mut out).expect("amended");
    assert!(life.e.incident(id).is_none(), "the check ends");
    assert_eq!(life.e.watched_count(), 0);
}

#[test]
fn what_was_learned_survives_a_restart() {
    let mut life = Life::new(Policy::default());
    life.live(10, |_| Routine { wake: 11.5, sleep: 25.0, nap: None, night_trip: None });
    let policy = life.e.policy().clone();
    let before = life.e.elder_activity(&elder()).unwrap().clone();
    let snapshot = life.e.take_snapshot();
    assert_eq!(snapshot.elders.len(), 1);
    assert_eq!(life.e.take_snapshot().elders.len(), 0, "handed out once");
    let resume = Resume { activity: snapshot.elders, ..Resume::default() };
    let mut e = Engine::new(policy.clone(), alone(), resume);
    e.start_health(at(10, 0.0));
    let after = e.elder_activity(&elder()).expect("restored");
    assert_eq!(after.days, before.days);
    assert_eq!(after.last_active, before.last_active);
    let hours = |a: &ElderActivity| a.waking_hours(at(10, 1.0), &policy.activity, policy.utc_offset_min);
    assert_eq!(hours(after), hours(&before));
    assert_eq!(hours(after).describe(), "00-01, 11-24");
}

/// An elder quiet since 07:00 whose watch the centre heard until 09:30, and a centre down
/// from 09:30 to 10:00: the snapshot it left, and the policy it ran.
fn quiet_morning_then_down() -> (Resume, Policy) {
    let mut life = Life::new(Policy::default());
    life.live(8, Routine::early);
    life.quiet_until(at(8, 7.0));
    life.heartbeat(true);
    life.quiet_until(at(8, 9.5));
    assert!(life.opened.is_empty(), "two and a half quiet hours open nothing");
    let snapshot = life.e.take_snapshot();
    let resume = Resume { activity: snapshot.elders, health: snapshot.devices, ..Resume::default() };
    (resume, life.e.policy().clone())
}

fn restarted(resume: Resume, policy: Policy, at_: Timestamp) -> Life {
    let mut e = Engine::new(policy, alone(), resume);
    e.start_health(at_);
    Life { e, rng: 7, now: at_, opened: vec![], ended: vec![], out: Outbox::default() }
}

#[test]
fn the_quiet_heard_before_a_restart_counts_and_the_time_the_centre_was_down_does_not() {
    let (resume, policy) = quiet_morning_then_down();
    let mut life = restarted(resume.clone(), policy.clone(), at(8, 10.0));
    // 07:00-09:30 was heard quiet: an hour and a half more of her waking hours, counted from
    // 10:00 when the centre could hear again, not four fresh hours from the restart.
    life.quiet_until(at(8, 16.0));
    assert_eq!(life.opened.len(), 1, "{:?}", life.opened);
    assert_eq!(life.opened[0].0, at(8, 11.5));

    // Had the centre been told while down to look for two quiet hours, not four, she would
    // be overdue already: the check opens as the centre starts.
    let lower = Policy { activity: ActivityPolicy { quiet_hours: 2, ..policy.activity.clone() }, ..policy };
    let mut life = restarted(resume, lower, at(8, 10.0));
    life.run_to(at(8, 10.0));
    assert_eq!(life.opened.len(), 1);
    assert_eq!(life.opened[0].0, at(8, 10.0));
}
