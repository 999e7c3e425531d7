//! The wallboard's day so far: each standard met, missed and exactly at its limit, driven
//! through the real engine (its events feed the tally, as the runtime's commits do).

use anxin_core::testkit::{d1, r1, with_dispatcher};
use anxin_core::*;

/// 09:00 at the centre (UTC+8) on 2025-11-13.
const UTC8: i32 = 480;

fn nine_am() -> Timestamp {
    standards::local_midnight(Timestamp(1_763_000_000_000), UTC8).plus_millis(9 * 3_600_000)
}

const S: i64 = 1000;

/// An engine and the tally its events feed, with the time moved by hand.
struct Centre {
    e: Engine,
    tally: DayTally,
    now: Timestamp,
    /// Every event so far, to rebuild a tally from as a restart does.
    log: Vec<IncidentEvent>,
    presses: u32,
}

impl Centre {
    fn new() -> Self {
        let registry = with_dispatcher();
        // Offers last 90 s here, so that an accept at 60 s is one the engine takes.
        let policy = Policy { utc_offset_min: UTC8, offer_timeout_ms: 90_000, ..Policy::default() };
        let now = nine_am();
        Centre {
            e: Engine::new(policy, registry, Resume::default()),
            tally: DayTally::new(StandardLimits::default(), UTC8, now),
            now,
            log: Vec::new(),
            presses: 0,
        }
    }

    fn at(&mut self, t: Timestamp) -> &mut Self {
        assert!(t >= self.now, "time only moves on");
        self.now = t;
        let mut out = Outbox::default();
        self.e.tick(t, &mut out);
        self.take(out);
        self
    }

    fn take(&mut self, out: Outbox) {
        for e in &out.events {
            self.tally.observe(e);
        }
        self.log.extend(out.events);
    }

    fn press(&mut self, kind: EventType) -> IncidentId {
        self.presses += 1;
        let msg = MessageId::parse(format!("m{}", self.presses)).unwrap();
        let event = DeviceEvent {
            msg_id: msg,
            event: kind,
            device_ts: self.now,
            fix: FixReport::Absent,
            health: Default::default(),
        };
        let mut out = Outbox::default();
        let outcome = self.e.handle_device_event(&d1(), event, self.now, &mut out).unwrap();
        self.take(out);
        match outcome {
            Outcome::Opened(id) | Outcome::Joined(id) => id,
            other => panic!("a press opened nothing: {other:?}"),
        }
    }

    fn responder(&mut self, id: IncidentId, action: ResponderAction) {
        let mut out = Outbox::default();
        self.e.responder_acts(&r1(), id, action, self.now, &mut out).unwrap();
        self.take(out);
    }

    fn dispatcher(&mut self, id: IncidentId, action: DispatcherAction) {
        let mut out = Outbox::default();
        self.e.dispatcher_acts("dispatcher", id, action, self.now, &mut out).unwrap();
        self.take(out);
    }

    fn duty(&mut self, on: bool) {
        let mut out = Outbox::default();
        self.e.set_duty(&r1(), on, self.now, &mut out).unwrap();
        self.take(out);
    }

    fn call(&mut self, event: CallEvent) -> CallOutcome {
        let mut out = Outbox::default();
        let outcome = self.e.handle_call(event, self.now, &mut out);
        self.take(out);
        outcome
    }

    fn figures(&self) -> DayFigures {
        self.tally.figures(self.now, 0)
    }

    fn standard(&self, s: Standard) -> StandardFigures {
        self.figures().standards.into_iter().find(|f| f.standard == s).unwrap()
    }

    /// (met, missed, pending) of one standard now.
    fn counts(&self, s: Standard) -> (u32, u32, u32) {
        let f = self.standard(s);
        (f.met, f.missed, f.pending)
    }
}

fn after(t: Timestamp, ms: i64) -> Timestamp {
    t.plus_millis(ms)
}

#[test]
fn tsa_an_alarm_accepted_exactly_at_60_s_is_answered_in_time() {
    let mut c = Centre::new();
    let t0 = c.now;
    let id = c.press(EventType::Sos);
    assert_eq!(c.counts(Standard::Tsa60), (0, 0, 1), "an offer made is not an answer");
    c.at(after(t0, 60 * S)).responder(id, ResponderAction::Accept);
    assert_eq!(c.counts(Standard::Tsa60), (1, 0, 0));
    assert_eq!(c.counts(Standard::Tsa180), (1, 0, 0));
    assert_eq!(c.standard(Standard::Tsa60).rating, Rating::Green);
    assert_eq!(c.standard(Standard::Tsa60).share_pct, Some(100.0));
}

#[test]
fn tsa_an_alarm_answered_a_millisecond_late_misses_60_s_but_meets_180_s() {
    let mut c = Centre::new();
    let t0 = c.now;
    // Nobody free: the alarm goes to the station, then a dispatcher.
    c.duty(false);
    let id = c.press(EventType::Fall);
    c.at(after(t0, 60 * S));
    assert_eq!(c.counts(Standard::Tsa60), (0, 0, 1), "still within its minute");
    assert_eq!(c.tally.next_change(c.now), after(t0, 60 * S + 1), "the board changes when the minute is out");
    c.at(after(t0, 60 * S + 1));
    assert_eq!(c.counts(Standard::Tsa60), (0, 1, 0), "missed the moment its minute is out, unanswered");
    c.dispatcher(id, DispatcherAction::Claim);
    assert_eq!(c.counts(Standard::Tsa60), (0, 1, 0), "a late answer is still a miss");
    assert_eq!(c.counts(Standard::Tsa180), (1, 0, 0), "a dispatcher's claim answers it within 180 s");
    let tsa = c.standard(Standard::Tsa60);
    assert_eq!(tsa.missed_ids, vec![id]);
    assert_eq!(tsa.rating, Rating::Red);
    assert_eq!(tsa.share_pct, Some(0.0));
}

#[test]
fn tsa_180_s_is_missed_when_nobody_takes_it_on_for_three_minutes() {
    let mut c = Centre::new();
    let t0 = c.now;
    c.duty(false);
    let id = c.press(EventType::Sos);
    c.at(after(t0, 180 * S));
    assert_eq!(c.counts(Standard::Tsa180), (0, 0, 1), "exactly 180 s: not yet missed");
    c.at(after(t0, 180 * S + 1));
    assert_eq!(c.counts(Standard::Tsa180), (0, 1, 0));
    assert_eq!(c.standard(Standard::Tsa180).missed_ids, vec![id]);
}

#[test]
fn an_alarm_cancelled_before_its_limit_counts_only_where_it_was_met() {
    let mut c = Centre::new();
    let t0 = c.now;
    c.duty(false);
    let id = c.press(EventType::Sos);
    c.at(after(t0, 20 * S));
    c.dispatcher(id, DispatcherAction::Cancel { reason: "the elder pressed by mistake".into() });
    c.at(after(t0, 40 * 60 * S));
    assert_eq!(c.counts(Standard::Tsa60), (1, 0, 0), "the dispatcher who cancelled it answered it");
    for s in [Standard::Nfpa1225, Standard::ClosedLoop] {
        assert_eq!(c.counts(s), (0, 0, 0), "{s:?}: no longer needed when it ended");
        assert_eq!(c.standard(s).rating, Rating::None);
    }
}

#[test]
fn a_service_request_is_no_alarm_until_an_sos_joins_it() {
    let mut c = Centre::new();
    let t0 = c.now;
    let id = c.press(EventType::Service);
    c.at(after(t0, 5 * 60 * S));
    assert_eq!(c.counts(Standard::Tsa60), (0, 0, 0), "a service request is timed by no alarm standard");
    // The SOS joins five minutes later: the clock starts then, and the offer is at once.
    assert_eq!(c.press(EventType::Sos), id);
    assert_eq!(c.counts(Standard::Nfpa1225), (1, 0, 0));
    assert_eq!(c.counts(Standard::Tsa60), (0, 0, 1));
}

#[test]
fn nfpa_1225_the_first_offer_at_once_is_met() {
    let mut c = Centre::new();
    c.press(EventType::Sos);
    assert_eq!(c.counts(Standard::Nfpa1225), (1, 0, 0));
}

#[test]
fn nfpa_1225_a_dispatcher_assigning_at_60_s_meets_it_and_at_61_s_misses_it() {
    for (late_ms, expected) in [(0, (1, 0, 0)), (1, (0, 1, 0))] {
        let mut c = Centre::new();
        let t0 = c.now;
        c.duty(false);
        let id = c.press(EventType::Sos);
        assert_eq!(c.counts(Standard::Nfpa1225), (0, 0, 1), "the station alerted is no dispatch");
        c.at(after(t0, 60 * S + late_ms));
        c.duty(true);
        c.dispatcher(id, DispatcherAction::Assign { responder: r1() });
        assert_eq!(c.counts(Standard::Nfpa1225), expected, "assigned {late_ms} ms after the minute");
    }
}

#[test]
fn nena_a_call_picked_up_on_a_console_at_15_s_is_met_and_later_missed() {
    let mut c = Centre::new();
    let t0 = c.now;
    let ring = |id: &str| CallEvent::Ringing { call_id: id.into(), from: "13900000001".into(), to: "96110".into() };
    c.call(ring("c1"));
    c.at(after(t0, 15 * S));
    assert_eq!(c.counts(Standard::Nena), (0, 0, 1));
    c.call(CallEvent::Answered { call_id: "c1".into(), by: "dispatcher".into() });
    assert_eq!(c.counts(Standard::Nena), (1, 0, 0), "exactly 15 s is in time");
    c.call(CallEvent::Ended { call_id: "c1".into(), reason: telephony::CallEnd::Bye });

    let t1 = c.now;
    let second = c.call(ring("c2")).incident().expect("the second call rings on an incident");
    c.at(after(t1, 15 * S + 1));
    assert_eq!(c.counts(Standard::Nena), (1, 1, 0), "unanswered past 15 s: missed");
    c.call(CallEvent::Answered { call_id: "c2".into(), by: "dispatcher".into() });
    assert_eq!(c.counts(Standard::Nena), (1, 1, 0));
    assert_eq!(c.standard(Standard::Nena).missed_ids, vec![second]);
    // 1 of 2 missed: the standard allows 10%, amber up to 20%.
    assert_eq!(c.standard(Standard::Nena).rating, Rating::Red);
}

#[test]
fn nena_a_caller_who_hangs_up_within_15_s_is_not_counted() {
    let mut c = Centre::new();
    let t0 = c.now;
    c.call(CallEvent::Ringing { call_id: "c1".into(), from: "13900000001".into(), to: "96110".into() });
    c.at(after(t0, 8 * S));
    c.call(CallEvent::Ended { call_id: "c1".into(), reason: telephony::CallEnd::Cancel });
    c.at(after(t0, 60 * S));
    assert_eq!(c.counts(Standard::Nena), (0, 0, 0));
}

#[test]
fn closed_loop_on_scene_at_30_minutes_is_met_and_a_millisecond_later_missed() {
    for (late_ms, expected) in [(0, (1, 0, 0)), (1, (0, 1, 0))] {
        let mut c = Centre::new();
        let t0 = c.now;
        let id = c.press(EventType::Fall);
        c.at(after(t0, 20 * S)).responder(id, ResponderAction::Accept);
        c.responder(id, ResponderAction::EnRoute);
        assert_eq!(c.counts(Standard::ClosedLoop), (0, 0, 1));
        c.at(after(t0, 30 * 60 * S + late_ms)).responder(id, ResponderAction::OnScene);
        assert_eq!(c.counts(Standard::ClosedLoop), expected, "on scene {late_ms} ms after 30 minutes");
    }
}

#[test]
fn closed_loop_is_missed_when_nobody_arrives_and_uncounted_when_settled_on_the_phone_first() {
    let mut c = Centre::new();
    let t0 = c.now;
    c.duty(false);
    let id = c.press(EventType::Sos);
    c.at(after(t0, 30 * 60 * S + 1));
    assert_eq!(c.counts(Standard::ClosedLoop), (0, 1, 0));
    assert_eq!(c.standard(Standard::ClosedLoop).missed_ids, vec![id]);

    let mut c = Centre::new();
    let t0 = c.now;
    c.duty(false);
    let id = c.press(EventType::Sos);
    c.at(after(t0, 5 * 60 * S));
    c.dispatcher(id, DispatcherAction::Resolve { outcome: "called her: a false press".into() });
    c.at(after(t0, 40 * 60 * S));
    assert_eq!(c.counts(Standard::ClosedLoop), (0, 0, 0));
}

#[test]
fn a_dispatchers_day_counts_claims_handled_and_the_handling_time() {
    let mut c = Centre::new();
    let t0 = c.now;
    c.duty(false);
    let id = c.press(EventType::Sos);
    c.at(after(t0, 30 * S)).dispatcher(id, DispatcherAction::Claim);
    c.at(after(t0, 60 * S)).dispatcher(id, DispatcherAction::Resolve { outcome: "ambulance".into() });
    c.at(after(t0, 120 * S)).dispatcher(id, DispatcherAction::Close { outcome: "ambulance".into() });
    let day = c.figures();
    assert_eq!(
        day.dispatchers,
        vec![DispatcherFigures { id: "dispatcher".into(), claimed: 1, handled: 1, handling_s_avg: Some(90.0) }]
    );
}

#[test]
fn a_tally_rebuilt_from_the_days_log_shows_the_same_figures() {
    let mut c = Centre::new();
    let t0 = c.now;
    let first = c.press(EventType::Sos);
    c.at(after(t0, 30 * S)).responder(first, ResponderAction::Accept);
    c.at(after(t0, 90 * S)).responder(first, ResponderAction::OnScene);
    c.responder(first, ResponderAction::Resolve { outcome: "helped her up".into() });
    c.dispatcher(first, DispatcherAction::Close { outcome: "helped".into() });
    c.duty(false);
    c.at(after(t0, 10 * 60 * S));
    c.press(EventType::Fall);
    c.at(after(t0, 20 * 60 * S));
    // Yesterday's events (before midnight) are in the log too, and count for nothing today.
    let mut log = vec![IncidentEvent {
        seq: 0,
        incident_id: IncidentId(99),
        at: standards::local_midnight(t0, UTC8).plus_millis(-1),
        actor: Actor::Engine,
        change: Change::Opened {
            kind: IncidentKind::Sos,
            msg_id: MessageId::parse("old").unwrap(),
            location: c
                .log
                .iter()
                .find_map(|e| match &e.change {
                    Change::Opened { location, .. } => Some(*location),
                    _ => None,
                })
                .unwrap(),
            pressed_at: t0,
            welfare: None,
        },
    }];
    log.extend(c.log.iter().cloned());
    let mut rebuilt = DayTally::new(StandardLimits::default(), UTC8, c.now);
    for e in &log {
        rebuilt.observe(e);
    }
    assert_eq!(rebuilt.figures(c.now, 3), c.tally.figures(c.now, 3));
    let tsa = c.standard(Standard::Tsa60);
    assert_eq!((tsa.met, tsa.missed), (1, 1), "one accepted at 30 s, one nobody took");
}

#[test]
fn the_tally_starts_afresh_at_local_midnight() {
    let mut c = Centre::new();
    let t0 = c.now;
    c.duty(false);
    c.press(EventType::Sos);
    c.at(after(t0, 5 * 60 * S));
    assert_eq!(c.counts(Standard::Tsa60), (0, 1, 0));
    let midnight = c.tally.day_end();
    assert_eq!(midnight, standards::local_midnight(t0, UTC8).plus_millis(86_400_000));
    assert!(!c.tally.roll(midnight.plus_millis(-1)));
    assert!(c.tally.roll(midnight));
    assert_eq!(c.tally.day_start(), midnight);
    assert_eq!(c.tally.figures(midnight, 0).standards.iter().map(|s| s.met + s.missed + s.pending).sum::<u32>(), 0);
}

#[test]
fn ratings_are_green_within_what_the_standard_allows_amber_to_twice_that_red_beyond() {
    // TSA 60 s allows 2.5% missed.
    assert_eq!(Rating::of(39, 1, 97.5), Rating::Green, "1 of 40 is 2.5%");
    assert_eq!(Rating::of(38, 2, 97.5), Rating::Amber, "2 of 40 is 5%");
    assert_eq!(Rating::of(37, 3, 97.5), Rating::Red, "3 of 40 is 7.5%");
    assert_eq!(Rating::of(9, 1, 90.0), Rating::Green);
    assert_eq!(Rating::of(0, 0, 90.0), Rating::None);
}

#[test]
fn the_standards_are_named_on_the_wire_as_documented() {
    let names: Vec<String> = Standard::ALL.iter().map(|s| serde_json::to_value(s).unwrap().to_string()).collect();
    assert_eq!(names, ["\"tsa_60\"", "\"tsa_180\"", "\"nfpa_1225\"", "\"nena\"", "\"closed_loop\""]);
}
