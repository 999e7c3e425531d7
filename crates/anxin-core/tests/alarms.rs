//! The alarm: what needs a person, derived by the engine from the incident's changes, so that
//! no console can miss it by connecting late, and no acknowledgement of one need silences the
//! next. And claims, which end when their holder signs out or stays away.

use anxin_core::*;

const T0: Timestamp = Timestamp(1_763_000_000_000);
const MIN: i64 = 60_000;

use anxin_core::testkit::{d1 as dev, engine, one_of_each as registry, r1};

fn press(e: &mut Engine, kind: EventType, at: Timestamp) -> IncidentId {
    let mut out = Outbox::default();
    let event = DeviceEvent {
        msg_id: MessageId::parse("m-1").unwrap(),
        event: kind,
        device_ts: at,
        fix: FixReport::Absent,
        health: Default::default(),
    };
    match e.handle_device_event(&dev(), event, at, &mut out).unwrap() {
        Outcome::Opened(id) => id,
        other => panic!("not opened: {other:?}"),
    }
}

fn alarm(e: &Engine, id: IncidentId) -> Option<Alarm> {
    e.incident(id).expect("open").alarm
}

fn act(
    e: &mut Engine,
    who: &str,
    id: IncidentId,
    action: DispatcherAction,
    at: Timestamp,
) -> Result<Outbox, CommandError> {
    let mut out = Outbox::default();
    e.dispatcher_acts(who, id, action, at, &mut out).map(|()| out)
}

/// Runs the clock to `at`, one deadline at a time.
fn run_to(e: &mut Engine, at: Timestamp) -> Outbox {
    let mut out = Outbox::default();
    while let Some(due) = e.next_deadline().filter(|d| *d <= at) {
        e.tick(due, &mut out);
    }
    out
}

/// The newcomer's bug 2: an incident acknowledged while still offered climbed to "nobody going"
/// in silence. Now the new need is a new alarm, louder, and the old acknowledgement cannot
/// silence it.
#[test]
fn acknowledging_a_new_emergency_does_not_silence_nobody_going_later() {
    let mut e = engine();
    let id = press(&mut e, EventType::Sos, T0);
    let first = alarm(&e, id).expect("a new emergency alarms");
    assert_eq!((first.need, first.level), (Need::NewEmergency, AlarmLevel::Urgent));
    let view = e.view(e.incident(id).unwrap());
    assert_eq!(view.alarm, Some(first), "every console's view carries it, whenever it connected");

    act(&mut e, "wang", id, DispatcherAction::Acknowledge { alarm: Some(first.raised_seq) }, T0).unwrap();
    assert_eq!(alarm(&e, id), None, "seen");

    // The one responder lets the offer lapse; the station does not send anybody.
    run_to(&mut e, T0.plus_millis(10 * MIN));
    let incident = e.incident(id).unwrap();
    assert_eq!(incident.state, IncidentState::AwaitingDispatcher);
    let now = alarm(&e, id).expect("nobody going alarms again");
    assert_eq!((now.need, now.level), (Need::NobodyGoing, AlarmLevel::Critical));
    assert!(now.raised_seq > first.raised_seq);
    assert!(now.reminders > 0, "the reminders count on it while nobody acts");

    // An acknowledgement of what was seen before is refused: it is not what is up now.
    let stale = act(&mut e, "wang", id, DispatcherAction::Acknowledge { alarm: Some(first.raised_seq) }, T0);
    assert_eq!(stale.unwrap_err(), CommandError::AlarmChanged { incident: id });
    assert_eq!(alarm(&e, id), Some(now));
    let out = act(&mut e, "wang", id, DispatcherAction::Acknowledge { alarm: Some(now.raised_seq) }, T0).unwrap();
    assert!(
        matches!(out.events[0].change, Change::Acknowledged { need: Some(Need::NobodyGoing) }),
        "the log says what was seen"
    );
    assert_eq!(alarm(&e, id), None);
    // A second console acknowledging the same alarm a moment later changes nothing.
    let again = act(&mut e, "li", id, DispatcherAction::Acknowledge { alarm: Some(now.raised_seq) }, T0).unwrap();
    assert!(again.events.is_empty());
}

/// A claim is not an action on the need: while nobody is going, the reminder raises the alarm
/// again for everyone until a person does something about it.
#[test]
fn a_reminder_due_raises_the_alarm_again_until_a_person_acts() {
    let mut e = engine();
    let id = press(&mut e, EventType::Fall, T0);
    run_to(&mut e, T0.plus_millis(4 * MIN));
    assert_eq!(alarm(&e, id).map(|a| a.need), Some(Need::NobodyGoing));
    let at = T0.plus_millis(4 * MIN);
    act(&mut e, "wang", id, DispatcherAction::Claim, at).unwrap();
    assert_eq!(alarm(&e, id), None, "claiming it is seeing it");
    run_to(&mut e, at.plus_millis(MIN + 1));
    let again = alarm(&e, id).expect("a reminder due is a need again");
    assert_eq!(again.need, Need::NobodyGoing);
    // Calling 120 is acting on it: the alarm and the reminders stop.
    let escalate = DispatcherAction::Escalate { number: "120".into(), reference: None };
    act(&mut e, "wang", id, escalate, at.plus_millis(MIN + 2)).unwrap();
    assert_eq!(alarm(&e, id), None);
    assert!(run_to(&mut e, at.plus_millis(10 * MIN)).events.is_empty(), "no reminder after the call");
}

#[test]
fn needs_have_their_own_levels_and_a_resolved_incident_stops_alarming() {
    let mut e = engine();
    let id = press(&mut e, EventType::Service, T0);
    assert_eq!(alarm(&e, id).map(|a| (a.need, a.level)), Some((Need::ServiceRequest, AlarmLevel::Routine)));
    // An SOS on top: the request became an emergency, and a louder alarm replaces the quiet one.
    let mut out = Outbox::default();
    let sos = DeviceEvent {
        msg_id: MessageId::parse("m-2").unwrap(),
        event: EventType::Sos,
        device_ts: T0,
        fix: FixReport::Absent,
        health: Default::default(),
    };
    e.handle_device_event(&dev(), sos, T0.plus_millis(5_000), &mut out).unwrap();
    assert_eq!(alarm(&e, id).map(|a| (a.need, a.level)), Some((Need::NewEmergency, AlarmLevel::Urgent)));
    // The responder accepts and gets there; the alarm is still up (nobody has seen it), and
    // it stops when the incident is resolved.
    let mut out = Outbox::default();
    e.responder_acts(&r1(), id, ResponderAction::Accept, T0.plus_millis(6_000), &mut out).unwrap();
    assert!(alarm(&e, id).is_some(), "somebody going does not mean a dispatcher has seen it");
    let resolve = ResponderAction::Resolve { outcome: "helped".into() };
    e.responder_acts(&r1(), id, resolve, T0.plus_millis(9_000), &mut out).unwrap();
    assert_eq!(e.incident(id).unwrap().state, IncidentState::Resolved);
    assert_eq!(alarm(&e, id), None, "a resolved row does not alarm");
}

#[test]
fn a_responder_who_gives_up_a_job_says_why_and_a_dispatcher_is_alarmed_at_once() {
    let mut e = engine();
    let id = press(&mut e, EventType::Sos, T0);
    let mut out = Outbox::default();
    e.responder_acts(&r1(), id, ResponderAction::Accept, T0, &mut out).unwrap();
    let empty = ResponderAction::Withdraw { reason: " ".into() };
    assert_eq!(e.responder_acts(&r1(), id, empty, T0, &mut out), Err(CommandError::MissingReason));
    let withdraw = ResponderAction::Withdraw { reason: "e-bike broke down".into() };
    e.responder_acts(&r1(), id, withdraw, T0.plus_millis(30_000), &mut out).unwrap();
    let incident = e.incident(id).unwrap();
    assert_eq!(incident.state, IncidentState::AwaitingDispatcher);
    assert_eq!(incident.responder, None);
    assert_eq!(incident.alarm.map(|a| (a.need, a.level)), Some((Need::NobodyGoing, AlarmLevel::Critical)));
    assert!(e.matcher().is_available(&r1()), "free for another job");
    assert!(out
        .events
        .iter()
        .any(|ev| matches!(&ev.change, Change::Withdrew { reason, .. } if reason == "e-bike broke down")));
}

#[test]
fn a_decline_keeps_its_reason_in_the_log() {
    let mut e = engine();
    let id = press(&mut e, EventType::Sos, T0);
    let mut out = Outbox::default();
    e.responder_acts(&r1(), id, ResponderAction::Decline { reason: Some("too_far".into()) }, T0, &mut out).unwrap();
    assert!(out
        .events
        .iter()
        .any(|ev| matches!(&ev.change, Change::OfferDeclined { reason: Some(r), .. } if r == "too_far")));
}

/// The newcomer's bug 4: dispatcher 1 claimed and signed out, and dispatcher 2 was refused
/// everything. Signing out ends the claim, and what still needs a person alarms again.
#[test]
fn signing_out_ends_a_claim_and_what_still_needs_a_person_alarms_again() {
    let mut e = engine();
    e.start_presence(T0);
    let id = press(&mut e, EventType::Sos, T0);
    run_to(&mut e, T0.plus_millis(4 * MIN));
    let at = T0.plus_millis(4 * MIN);
    e.staff_presence("wang", true, at);
    act(&mut e, "wang", id, DispatcherAction::Claim, at).unwrap();
    let refused = act(&mut e, "li", id, DispatcherAction::Acknowledge { alarm: None }, at).unwrap_err();
    assert_eq!(refused.code(), "claimed_by_other");

    let mut out = Outbox::default();
    e.staff_signed_out("wang", at.plus_millis(1_000), &mut out);
    let incident = e.incident(id).unwrap();
    assert_eq!(incident.claimed_by, None);
    assert!(out
        .events
        .iter()
        .any(|ev| ev.change == Change::Released { by: "wang".into(), why: Some(ClaimEnd::SignedOut) }));
    assert_eq!(incident.alarm.map(|a| a.need), Some(Need::ClaimantGone), "somebody else must take it");
    assert_eq!(out.deltas.last().unwrap().claimed_by, None, "every console sees it free");
    act(&mut e, "li", id, DispatcherAction::Claim, at.plus_millis(2_000)).expect("the next dispatcher may take it");
}

#[test]
fn a_claim_ends_after_its_holder_stays_offline_and_not_before() {
    let mut e = engine();
    e.start_presence(T0);
    let id = press(&mut e, EventType::Sos, T0);
    e.staff_presence("wang", true, T0);
    act(&mut e, "wang", id, DispatcherAction::Claim, T0).unwrap();
    // A reload: offline for a moment, then back. The claim stays.
    e.staff_presence("wang", false, T0.plus_millis(1_000));
    e.staff_presence("wang", true, T0.plus_millis(3_000));
    run_to(&mut e, T0.plus_millis(30 * MIN));
    assert_eq!(e.incident(id).unwrap().claimed_by.as_deref(), Some("wang"));
    // Gone: the claim ends two minutes (the default) later.
    let gone = T0.plus_millis(30 * MIN);
    e.staff_presence("wang", false, gone);
    run_to(&mut e, gone.plus_millis(2 * MIN - 1));
    assert_eq!(e.incident(id).unwrap().claimed_by.as_deref(), Some("wang"), "not before its time");
    let out = run_to(&mut e, gone.plus_millis(2 * MIN));
    assert_eq!(e.incident(id).unwrap().claimed_by, None);
    assert!(out
        .events
        .iter()
        .any(|ev| ev.change == Change::Released { by: "wang".into(), why: Some(ClaimEnd::Offline) }));
}

/// After a restart nobody's console is connected yet: claims whose holders do not come back
/// end on the same clock.
#[test]
fn after_a_restart_a_claimant_who_never_returns_loses_the_claim() {
    let mut e = engine();
    let id = press(&mut e, EventType::Sos, T0);
    act(&mut e, "wang", id, DispatcherAction::Claim, T0).unwrap();
    let kept = e.incident(id).unwrap().clone();
    let resume = Resume { open: vec![kept], counters: e.counters(), ..Resume::default() };
    let mut e = Engine::new(Policy::default(), registry(), resume);
    let start = T0.plus_millis(MIN);
    e.start_presence(start);
    run_to(&mut e, start.plus_millis(2 * MIN));
    assert_eq!(e.incident(id).unwrap().claimed_by, None);
}
