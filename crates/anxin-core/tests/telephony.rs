//! Calls to the hotline: a call from a device's SIM or an elder's phone rings on that
//! elder's device as an incident of kind `call` (or joins the incident it has); a caller
//! nobody knows still reaches a dispatcher; the dispatcher who answers takes it; a call nobody
//! answered leaves an alarm to call back; every call is on the timeline with its talk time;
//! a restart keeps what rings; the live ledger moves numbers.

use anxin_core::testkit::{d1, one_of_each};
use anxin_core::*;

/// 10:13 in Kunming (UTC+8).
const T0: Timestamp = Timestamp(1_763_000_000_000);
const S: i64 = 1_000;

const SIM: &str = "13900000001";
const ELDER_PHONE: &str = "0871-6543-2100";

fn registry() -> Registry {
    let mut r = one_of_each();
    r.devices[0].sim = Some(SIM.into());
    r.elders[0].phone = Some(ELDER_PHONE.into());
    r.staff.push(Staff {
        id: "disp-1".into(),
        name: "何调度".into(),
        role: StaffRole::Dispatcher,
        password_hash: String::new(),
    });
    r
}

fn engine() -> Engine {
    Engine::new(Policy::default(), registry(), Resume::default())
}

fn ring(e: &mut Engine, call: &str, from: &str, now: Timestamp) -> (CallOutcome, Outbox) {
    let mut out = Outbox::default();
    let event = CallEvent::Ringing { call_id: call.into(), from: from.into(), to: "96110".into() };
    (e.handle_call(event, now, &mut out), out)
}

fn answer(e: &mut Engine, call: &str, by: &str, now: Timestamp) -> (CallOutcome, Outbox) {
    let mut out = Outbox::default();
    (e.handle_call(CallEvent::Answered { call_id: call.into(), by: by.into() }, now, &mut out), out)
}

fn end(e: &mut Engine, call: &str, reason: CallEnd, now: Timestamp) -> (CallOutcome, Outbox) {
    let mut out = Outbox::default();
    (e.handle_call(CallEvent::Ended { call_id: call.into(), reason }, now, &mut out), out)
}

fn opened(outcome: CallOutcome) -> IncidentId {
    match outcome {
        CallOutcome::Opened(id) => id,
        other => panic!("expected a new incident, got {other:?}"),
    }
}

fn press(e: &mut Engine, msg: &str, event: EventType, now: Timestamp) -> Outcome {
    let mut out = Outbox::default();
    let ev = DeviceEvent {
        msg_id: MessageId::parse(msg).unwrap(),
        event,
        device_ts: now,
        fix: FixReport::Absent,
        health: Default::default(),
    };
    e.handle_device_event(&d1(), ev, now, &mut out).unwrap()
}

fn types(out: &Outbox) -> Vec<&'static str> {
    out.events
        .iter()
        .map(|e| match e.change {
            Change::Opened { .. } => "opened",
            Change::CallRang { .. } => "call_rang",
            Change::CallAnswered { .. } => "call_answered",
            Change::CallEnded { .. } => "call_ended",
            Change::CallTransferred { .. } => "call_transferred",
            Change::Claimed { .. } => "claimed",
            Change::NearestStation { .. } => "nearest_station",
            Change::Closed { .. } => "closed",
            _ => "other",
        })
        .collect()
}

#[test]
fn a_call_from_a_devices_sim_rings_on_the_device_with_the_elders_profile() {
    let mut e = engine();
    let (outcome, out) = ring(&mut e, "c-1@pbx", "+86 139-0000-0001", T0);
    let id = opened(outcome);
    let incident = e.incident(id).unwrap();
    assert_eq!(incident.kind, IncidentKind::Call);
    assert_eq!(incident.device_id, d1());
    assert_eq!(incident.elder_id.as_str(), "e-1");
    assert_eq!(incident.location.source, LocationSource::Home);
    assert_eq!(incident.state, IncidentState::AwaitingDispatcher);
    assert_eq!(incident.dispatcher_needed, Some(DispatcherNeeded::Call));
    assert_eq!(incident.alarm.map(|a| (a.need, a.level)), Some((Need::IncomingCall, AlarmLevel::Urgent)));
    // The call is on the timeline right after the opening, before the incident is shown.
    assert_eq!(types(&out), ["opened", "call_rang", "nearest_station"]);
    let Change::CallRang { from, caller, .. } = &out.events[1].change else { unreachable!() };
    assert_eq!((from.as_str(), *caller), ("+86 139-0000-0001", CallerMatch::Sim));
    // Shown with the profile and the ringing call; nobody is offered it, the device is told
    // nothing (it is on the phone to us).
    let view = out.deltas.last().unwrap();
    assert_eq!(view.elder.name, "张阿姨");
    // The device's SIM, for a dispatcher to call it back on its speaker (talk-back).
    assert_eq!(view.device_sim.as_deref(), Some(SIM));
    assert_eq!(view.calls.len(), 1);
    assert!(view.calls[0].is_ringing());
    assert!(view.offers.is_empty());
    assert!(out.commands.is_empty());
    assert_eq!(e.open_incident_for(&d1()).map(|i| i.id), Some(id));
}

#[test]
fn the_dispatcher_who_answers_takes_it_and_the_end_gives_the_talk_time() {
    let mut e = engine();
    let id = opened(ring(&mut e, "c-1", SIM, T0).0);
    let (outcome, out) = answer(&mut e, "c-1", "disp-1", T0.plus_millis(5 * S));
    assert_eq!(outcome, CallOutcome::Recorded(id));
    assert_eq!(types(&out), ["call_answered", "claimed"]);
    assert_eq!(out.events[0].actor, Actor::Dispatcher("disp-1".into()));
    let incident = e.incident(id).unwrap();
    assert_eq!(incident.claimed_by.as_deref(), Some("disp-1"));
    assert_eq!(incident.alarm, None, "a person is talking to the caller");
    assert_eq!(incident.dispatcher_needed, Some(DispatcherNeeded::HandledByDispatcher));
    assert_eq!(incident.next_deadline(), None, "nobody is reminded of a call being talked");
    // The 200 OK retransmitted: reported again, changes nothing.
    let (again, out) = answer(&mut e, "c-1", "disp-1", T0.plus_millis(6 * S));
    assert_eq!((again, out.events.len()), (CallOutcome::Duplicate(id), 0));

    let (outcome, out) = end(&mut e, "c-1", CallEnd::Bye, T0.plus_millis(95 * S));
    assert_eq!(outcome, CallOutcome::Recorded(id));
    assert!(matches!(out.events[0].change, Change::CallEnded { reason: CallEnd::Bye, talk_s: Some(90), .. }));
    let call = &e.incident(id).unwrap().calls[0];
    assert_eq!((call.answered_by.as_deref(), call.talk_s(), call.end), (Some("disp-1"), Some(90), Some(CallEnd::Bye)));
    assert_eq!(e.incident(id).unwrap().alarm, None);
    // The incident stays with the dispatcher until they resolve it.
    let mut out = Outbox::default();
    let resolve = DispatcherAction::Resolve { outcome: "she wanted to know the weather".into() };
    e.dispatcher_acts("disp-1", id, resolve, T0.plus_millis(100 * S), &mut out).unwrap();
    assert_eq!(e.incident(id).unwrap().state, IncidentState::Resolved);
}

#[test]
fn an_answer_by_no_member_of_staff_is_logged_but_takes_nothing() {
    let mut e = engine();
    let id = opened(ring(&mut e, "c-1", SIM, T0).0);
    let (_, out) = answer(&mut e, "c-1", "duty-phone", T0.plus_millis(3 * S));
    assert_eq!(types(&out), ["call_answered"]);
    assert_eq!(out.events[0].actor, Actor::Engine);
    assert_eq!(e.incident(id).unwrap().claimed_by, None);
    // Answered elsewhere: a dispatcher must still look.
    assert_eq!(e.incident(id).unwrap().alarm.map(|a| a.need), Some(Need::IncomingCall));
    assert_eq!(e.incident(id).unwrap().calls[0].answered_by.as_deref(), Some("duty-phone"));
}

#[test]
fn a_call_nobody_answered_leaves_an_alarm_to_call_back() {
    let mut e = engine();
    let id = opened(ring(&mut e, "c-1", SIM, T0).0);
    let (outcome, out) = end(&mut e, "c-1", CallEnd::Cancel, T0.plus_millis(20 * S));
    assert_eq!(outcome, CallOutcome::Recorded(id));
    assert!(matches!(out.events[0].change, Change::CallEnded { reason: CallEnd::Cancel, talk_s: None, .. }));
    let alarm = e.incident(id).unwrap().alarm.unwrap();
    assert_eq!((alarm.need, alarm.level), (Need::MissedCall, AlarmLevel::Urgent));
    assert_eq!(alarm.raised_seq, out.events[0].seq);
    // Acknowledged, it is quiet; a reminder still comes until a dispatcher acts.
    let mut out = Outbox::default();
    let ack = DispatcherAction::Acknowledge { alarm: Some(alarm.raised_seq) };
    e.dispatcher_acts("disp-1", id, ack, T0.plus_millis(21 * S), &mut out).unwrap();
    assert_eq!(e.incident(id).unwrap().alarm, None);
}

#[test]
fn repeated_calls_and_presses_join_one_incident_and_a_press_makes_it_an_emergency() {
    let mut e = engine();
    let id = opened(ring(&mut e, "c-1", SIM, T0).0);
    // The INVITE retransmitted: the same call.
    let (again, out) = ring(&mut e, "c-1", SIM, T0.plus_millis(500));
    assert_eq!((again, out.events.len()), (CallOutcome::Duplicate(id), 0));
    answer(&mut e, "c-1", "disp-1", T0.plus_millis(2 * S));
    end(&mut e, "c-1", CallEnd::Bye, T0.plus_millis(30 * S));
    // She rings again: the same incident, ringing anew.
    let (outcome, _) = ring(&mut e, "c-2", SIM, T0.plus_millis(60 * S));
    assert_eq!(outcome, CallOutcome::Joined(id));
    let incident = e.incident(id).unwrap();
    assert_eq!(incident.calls.len(), 2);
    assert_eq!(incident.alarm.map(|a| a.need), Some(Need::IncomingCall));
    // From her own phone: the same incident too.
    assert_eq!(ring(&mut e, "c-3", "+86 871 6543 2100", T0.plus_millis(61 * S)).0, CallOutcome::Joined(id));
    // Then she presses SOS: the call becomes an emergency and the ladder starts.
    assert_eq!(press(&mut e, "m-1", EventType::Sos, T0.plus_millis(70 * S)), Outcome::Joined(id));
    let incident = e.incident(id).unwrap();
    assert_eq!(incident.kind, IncidentKind::Sos);
    assert_eq!(incident.state, IncidentState::Offered);
    assert_eq!(incident.calls.len(), 3);
}

#[test]
fn a_call_during_an_emergency_joins_it() {
    let mut e = engine();
    let Outcome::Opened(id) = press(&mut e, "m-1", EventType::Fall, T0) else { panic!("a fall opens") };
    let (outcome, _) = ring(&mut e, "c-1", SIM, T0.plus_millis(10 * S));
    assert_eq!(outcome, CallOutcome::Joined(id));
    let incident = e.incident(id).unwrap();
    assert_eq!((incident.kind, incident.state), (IncidentKind::Fall, IncidentState::Offered));
    assert_eq!(incident.alarm.map(|a| a.need), Some(Need::NewEmergency), "the emergency's alarm stays up");
}

#[test]
fn an_elders_own_phone_rings_on_their_device() {
    let mut e = engine();
    let id = opened(ring(&mut e, "c-1", "+8687165432100", T0).0);
    let incident = e.incident(id).unwrap();
    assert_eq!((incident.device_id.clone(), incident.elder_id.as_str()), (d1(), "e-1"));
    assert_eq!(incident.calls[0].caller, CallerMatch::ElderPhone);
}

#[test]
fn a_caller_nobody_knows_reaches_a_dispatcher_with_no_elder_and_no_place() {
    let mut e = engine();
    let (outcome, out) = ring(&mut e, "c-1", "137 0000 0000", T0);
    let id = opened(outcome);
    let incident = e.incident(id).unwrap();
    assert_eq!(incident.device_id.as_str(), "call:13700000000");
    assert_eq!(incident.elder_id.as_str(), "call:13700000000");
    assert_eq!(incident.location.source, LocationSource::Unknown);
    assert_eq!(incident.calls[0].caller, CallerMatch::Unknown);
    assert_eq!(incident.alarm.map(|a| a.need), Some(Need::IncomingCall));
    assert_eq!(types(&out), ["opened", "call_rang"], "nowhere is near no station");
    assert_eq!(out.deltas.last().unwrap().elder.name, "");
    assert!(out.notifications.is_empty() && out.commands.is_empty());
    // The same number again joins; another opens its own.
    assert_eq!(ring(&mut e, "c-2", "13700000000", T0.plus_millis(S)).0, CallOutcome::Joined(id));
    let other = opened(ring(&mut e, "c-3", "13700000001", T0.plus_millis(2 * S)).0);
    assert_ne!(other, id);
    // Withheld numbers cannot be told apart: each call is its own incident.
    let w1 = opened(ring(&mut e, "c-4", "anonymous", T0.plus_millis(3 * S)).0);
    let w2 = opened(ring(&mut e, "c-5", "", T0.plus_millis(4 * S)).0);
    assert_ne!(w1, w2);
    assert_eq!(e.incident(w1).unwrap().device_id.as_str(), "call:withheld");
    assert_eq!(e.incident(w2).unwrap().calls[0].caller, CallerMatch::Withheld);
    // Once the dispatcher closes it, the number's next call is a new incident.
    let mut out = Outbox::default();
    let cancel = DispatcherAction::Cancel { reason: "wrong number".into() };
    e.dispatcher_acts("disp-1", id, cancel, T0.plus_millis(5 * S), &mut out).unwrap();
    assert!(e.incident(id).is_none());
    let next = opened(ring(&mut e, "c-6", "13700000000", T0.plus_millis(6 * S)).0);
    assert_ne!(next, id);
}

#[test]
fn answers_and_ends_of_calls_never_heard_ringing_change_nothing() {
    let mut e = engine();
    let (outcome, out) = answer(&mut e, "lost", "disp-1", T0);
    assert_eq!(outcome, CallOutcome::UnknownCall);
    assert!(out.is_empty());
    let (outcome, out) = end(&mut e, "lost", CallEnd::Bye, T0);
    assert_eq!(outcome, CallOutcome::UnknownCall);
    assert!(out.is_empty());
    // An end heard twice: the second changes nothing.
    opened(ring(&mut e, "c-1", SIM, T0).0);
    end(&mut e, "c-1", CallEnd::Cancel, T0.plus_millis(S));
    assert_eq!(end(&mut e, "c-1", CallEnd::Cancel, T0.plus_millis(S)).0, CallOutcome::UnknownCall);
}

#[test]
fn a_restart_keeps_what_rings_and_the_unknown_callers_incidents() {
    let mut e = engine();
    let known = opened(ring(&mut e, "c-1", SIM, T0).0);
    let stranger = opened(ring(&mut e, "c-2", "13700000000", T0).0);
    let resume = Resume { open: e.open_incidents().cloned().collect(), counters: e.counters(), ..Resume::default() };
    let mut again = Engine::new(Policy::default(), registry(), resume);
    assert_eq!(answer(&mut again, "c-1", "disp-1", T0.plus_millis(S)).0, CallOutcome::Recorded(known));
    assert_eq!(end(&mut again, "c-2", CallEnd::Cancel, T0.plus_millis(S)).0, CallOutcome::Recorded(stranger));
    assert_eq!(ring(&mut again, "c-3", "13700000000", T0.plus_millis(2 * S)).0, CallOutcome::Joined(stranger));
    assert_eq!(ring(&mut again, "c-4", SIM, T0.plus_millis(2 * S)).0, CallOutcome::Joined(known));
}

fn amend(e: &mut Engine, amendment: Amendment) -> Result<Amended, LedgerError> {
    let mut out = Outbox::default();
    e.amend(Amend { amendment, if_match: None, secret: None }, "staff:admin", T0, &mut out)
}

#[test]
fn the_live_ledger_moves_numbers_and_refuses_a_sim_twice() {
    let mut e = engine();
    let mut device = registry().devices[0].clone();
    // A new SIM: the old number is nobody's, the new one rings on the device.
    device.sim = Some("13900000002".into());
    amend(&mut e, Amendment::Update(Entry::Device(device.clone()))).unwrap();
    assert_eq!(e.entry(LedgerKind::Device, "d-1"), Some(Entry::Device(device.clone())));
    let id = opened(ring(&mut e, "c-1", "13900000002", T0).0);
    assert_eq!(e.incident(id).unwrap().calls[0].caller, CallerMatch::Sim);
    let stranger = opened(ring(&mut e, "c-2", SIM, T0).0);
    assert_eq!(e.incident(stranger).unwrap().device_id.as_str(), format!("call:{SIM}"));

    // Another device may not have it; nor may a SIM be no number.
    let mut second = Device { id: DeviceId::parse("d-2").unwrap(), ..device.clone() };
    let err = amend(&mut e, Amendment::Create(Entry::Device(second.clone()))).unwrap_err();
    assert_eq!(err.fields()[0].code, "duplicate_sim", "{err}");
    second.sim = Some("call me".into());
    let err = amend(&mut e, Amendment::Create(Entry::Device(second.clone()))).unwrap_err();
    assert_eq!(err.fields()[0].code, "bad_sim", "{err}");

    // The elder's phone changes: the old number rings as nobody, the new one as her.
    let mut elder = registry().elders[0].clone();
    elder.phone = Some("13800000008".into());
    amend(&mut e, Amendment::Update(Entry::Elder(elder))).unwrap();
    let old = opened(ring(&mut e, "c-3", ELDER_PHONE, T0).0);
    assert_eq!(e.incident(old).unwrap().calls[0].caller, CallerMatch::Unknown);
    assert_eq!(ring(&mut e, "c-4", "13800000008", T0).0, CallOutcome::Joined(id));
}

#[test]
fn a_call_after_help_was_given_is_a_new_incident() {
    let mut e = engine();
    let id = opened(ring(&mut e, "c-1", SIM, T0).0);
    let mut out = Outbox::default();
    let resolve = DispatcherAction::Resolve { outcome: "talked her through it".into() };
    e.dispatcher_acts("disp-1", id, resolve, T0.plus_millis(S), &mut out).unwrap();
    assert_eq!(e.incident(id).unwrap().state, IncidentState::Resolved);
    let (outcome, out) = ring(&mut e, "c-2", SIM, T0.plus_millis(2 * S));
    assert_ne!(opened(outcome), id);
    assert_eq!(types(&out)[0], "closed");
    assert!(e.incident(id).is_none());
}

fn unanswered(e: &mut Engine, call: &str, now: Timestamp) -> (CallOutcome, Outbox) {
    let mut out = Outbox::default();
    (e.handle_call(CallEvent::Unanswered { call_id: call.into() }, now, &mut out), out)
}

#[test]
fn a_call_nobody_answers_climbs_to_the_stations_duty_line_then_the_fallback_number() {
    let mut r = registry();
    r.stations[0].phone = Some("0871-68000001".into());
    let policy = Policy { call_fallback_number: Some("13600000000".into()), ..Policy::default() };
    let mut e = Engine::new(policy, r, Resume::default());
    let id = opened(ring(&mut e, "c-1", SIM, T0).0);

    let (outcome, out) = unanswered(&mut e, "c-1", T0.plus_millis(30 * S));
    assert_eq!(outcome, CallOutcome::Forwarded { incident: id, number: "0871-68000001".into() });
    assert_eq!(outcome.forward_to(), Some("0871-68000001"));
    assert!(matches!(&out.events[0].change, Change::CallForwarded { rung: ForwardRung::Station, .. }));
    let (outcome, _) = unanswered(&mut e, "c-1", T0.plus_millis(60 * S));
    assert_eq!(outcome, CallOutcome::Forwarded { incident: id, number: "13600000000".into() });
    let (outcome, out) = unanswered(&mut e, "c-1", T0.plus_millis(90 * S));
    assert_eq!((outcome, out.events.len()), (CallOutcome::Exhausted(id), 0), "nobody is left");
    let call = &e.incident(id).unwrap().calls[0];
    let rungs: Vec<_> = call.forwarded.iter().map(|f| (f.rung, f.number.as_str())).collect();
    assert_eq!(rungs, [(ForwardRung::Station, "0871-68000001"), (ForwardRung::Fallback, "13600000000")]);
    // Still nobody has picked up: the alarm stays until somebody does, and the end says call back.
    assert_eq!(e.incident(id).unwrap().alarm.map(|a| a.need), Some(Need::IncomingCall));
    end(&mut e, "c-1", CallEnd::NoAnswer, T0.plus_millis(91 * S));
    assert_eq!(e.incident(id).unwrap().alarm.map(|a| a.need), Some(Need::MissedCall));

    // The duty line picks up on the next call: it is logged, and no dispatcher holds it.
    ring(&mut e, "c-2", SIM, T0.plus_millis(120 * S));
    unanswered(&mut e, "c-2", T0.plus_millis(150 * S));
    let (outcome, out) = answer(&mut e, "c-2", "duty-s-1", T0.plus_millis(152 * S));
    assert_eq!(outcome, CallOutcome::Recorded(id));
    assert_eq!(types(&out), ["call_answered"]);
    assert_eq!(e.incident(id).unwrap().claimed_by, None);
}

#[test]
fn an_unknown_callers_unanswered_call_goes_to_the_fallback_number_or_nowhere() {
    let policy = Policy { call_fallback_number: Some("13600000000".into()), ..Policy::default() };
    let mut e = Engine::new(policy, registry(), Resume::default());
    let id = opened(ring(&mut e, "c-1", "13700000000", T0).0);
    assert_eq!(
        unanswered(&mut e, "c-1", T0.plus_millis(30 * S)).0,
        CallOutcome::Forwarded { incident: id, number: "13600000000".into() },
        "no station is near nowhere"
    );
    // No station phone, no fallback: nowhere to go.
    let mut e = engine();
    let id = opened(ring(&mut e, "c-1", SIM, T0).0);
    assert_eq!(unanswered(&mut e, "c-1", T0.plus_millis(30 * S)).0, CallOutcome::Exhausted(id));
    assert_eq!(unanswered(&mut e, "lost", T0).0, CallOutcome::UnknownCall);
}

fn dial(e: &mut Engine, call: &str, to: &str, incident: Option<IncidentId>, now: Timestamp) -> (CallOutcome, Outbox) {
    let mut out = Outbox::default();
    let event = CallEvent::Dialled {
        call_id: call.into(),
        by: "disp-1".into(),
        to: to.into(),
        incident_id: incident.map(|i| i.0),
    };
    (e.handle_call(event, now, &mut out), out)
}

#[test]
fn a_call_a_dispatcher_places_from_an_incident_is_on_its_timeline_and_raises_nothing() {
    let mut e = engine();
    let Outcome::Opened(id) = press(&mut e, "m-1", EventType::Fall, T0) else { panic!("a fall opens") };
    let mut out = Outbox::default();
    let ack = DispatcherAction::Acknowledge { alarm: None };
    e.dispatcher_acts("disp-1", id, ack, T0.plus_millis(S), &mut out).unwrap();
    let alarm_before = e.incident(id).unwrap().alarm;

    // The daughter, from the incident: answered, talked, hung up.
    let (outcome, out) = dial(&mut e, "out-1", "13700000001", Some(id), T0.plus_millis(10 * S));
    assert_eq!(outcome, CallOutcome::Recorded(id));
    assert!(matches!(&out.events[0].change, Change::CallDialled { to, .. } if to == "13700000001"));
    assert_eq!(out.events[0].actor, Actor::Dispatcher("disp-1".into()));
    let call = &e.incident(id).unwrap().calls[0];
    assert!(call.is_outbound() && call.is_ringing());
    assert_eq!((call.from.as_str(), call.to.as_str()), ("disp-1", "13700000001"));
    assert_eq!(answer(&mut e, "out-1", "13700000001", T0.plus_millis(15 * S)).0, CallOutcome::Recorded(id));
    assert_eq!(end(&mut e, "out-1", CallEnd::Bye, T0.plus_millis(75 * S)).0, CallOutcome::Recorded(id));
    let call = &e.incident(id).unwrap().calls[0];
    assert_eq!((call.talk_s(), call.end), (Some(60), Some(CallEnd::Bye)));
    assert_eq!(e.incident(id).unwrap().alarm, alarm_before, "a call out neither raises nor silences");
    assert_eq!(e.incident(id).unwrap().claimed_by, None, "a call out takes nothing");

    // The station, unanswered: no ladder, no missed-call alarm.
    dial(&mut e, "out-2", "0871-68000001", Some(id), T0.plus_millis(80 * S));
    assert_eq!(unanswered(&mut e, "out-2", T0.plus_millis(110 * S)).0, CallOutcome::Exhausted(id));
    end(&mut e, "out-2", CallEnd::NoAnswer, T0.plus_millis(111 * S));
    assert_eq!(e.incident(id).unwrap().alarm, alarm_before);
    assert!(e.incident(id).unwrap().calls[1].forwarded.is_empty());

    // About no open incident: it goes ahead, and nothing records it.
    let (outcome, out) = dial(&mut e, "out-3", "120", None, T0.plus_millis(120 * S));
    assert_eq!((outcome, out.events.len()), (CallOutcome::NoIncident, 0));
    assert_eq!(dial(&mut e, "out-4", "120", Some(IncidentId(999)), T0).0, CallOutcome::NoIncident);
}

fn transfer(e: &mut Engine, call: &str, to: &str, now: Timestamp) -> (CallOutcome, Outbox) {
    let mut out = Outbox::default();
    let event = CallEvent::Transferred { call_id: call.into(), by: "disp-1".into(), to: to.into() };
    (e.handle_call(event, now, &mut out), out)
}

#[test]
fn a_dispatcher_transfers_a_call_on_and_its_record_says_to_whom() {
    let mut e = engine();
    let id = opened(ring(&mut e, "c-1@pbx", SIM, T0).0);
    answer(&mut e, "c-1@pbx", "disp-1", T0.plus_millis(5 * S));
    let alarm_before = e.incident(id).unwrap().alarm;

    let (outcome, out) = transfer(&mut e, "c-1@pbx", "087168000001", T0.plus_millis(40 * S));
    assert_eq!(outcome, CallOutcome::Recorded(id));
    assert_eq!(types(&out), ["call_transferred"]);
    assert_eq!(out.events[0].actor, Actor::Dispatcher("disp-1".into()));
    assert_eq!(e.incident(id).unwrap().calls[0].transferred_to.as_deref(), Some("087168000001"));
    assert_eq!(e.incident(id).unwrap().alarm, alarm_before, "a transfer raises and silences nothing");
    // Said twice (a retransmitted REFER): once on the record.
    assert_eq!(transfer(&mut e, "c-1@pbx", "120", T0.plus_millis(41 * S)).0, CallOutcome::Duplicate(id));
    assert_eq!(e.incident(id).unwrap().calls[0].transferred_to.as_deref(), Some("087168000001"));

    // The console leaves the call: its end follows, with the talk time up to the transfer.
    assert_eq!(end(&mut e, "c-1@pbx", CallEnd::Bye, T0.plus_millis(42 * S)).0, CallOutcome::Recorded(id));
    let call = &e.incident(id).unwrap().calls[0];
    assert_eq!((call.talk_s(), call.end), (Some(37), Some(CallEnd::Bye)));
    // A call that has ended, or never rang, cannot be transferred.
    assert_eq!(transfer(&mut e, "c-1@pbx", "120", T0.plus_millis(50 * S)).0, CallOutcome::UnknownCall);
    assert_eq!(transfer(&mut e, "never@pbx", "120", T0.plus_millis(50 * S)).0, CallOutcome::UnknownCall);
}
