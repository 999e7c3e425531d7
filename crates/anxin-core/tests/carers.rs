//! Carers' visits and their safety: a check-in is taken only within the radius of the elder's
//! home; check-out ends the visit; a carer not heard from within the visit's time raises a
//! lone-worker incident for a dispatcher, which their next word ends; the carer's help button
//! opens an SOS for the carer that climbs the ladder to somebody else; the elder's family is
//! told of none of it; a restart keeps the open visits and their timers.

use anxin_core::testkit::{one_of_each, r1};
use anxin_core::*;

/// 10:13 in Kunming (UTC+8).
const T0: Timestamp = Timestamp(1_763_000_000_000);
const MIN: i64 = 60_000;

fn carer() -> ResponderId {
    ResponderId::parse("c-1").unwrap()
}

fn elder() -> ElderId {
    ElderId::parse("e-1").unwrap()
}

fn at(lat: f64, lon: f64) -> Coordinates {
    Coordinates::new(lat, lon).unwrap()
}

/// The elder's home is at (25.0, 102.68); 0.001° of latitude is about 111 m.
fn metres_north(m: f64) -> Coordinates {
    at(25.0 + m / 111_195.0, 102.68)
}

/// The testkit's district, with a carer (`c-1`) and a family contact for the elder.
fn registry() -> Registry {
    let mut r = one_of_each();
    let mut c = r.responders[0].clone();
    c.id = carer();
    c.name = "周护理".into();
    c.phone = Some("13800000009".into());
    c.skills = vec!["carer".into()];
    c.position = at(25.02, 102.70);
    r.responders.push(c);
    r.elders[0].profile.contacts = vec![Contact {
        name: "王丽".into(),
        relation: "女儿".into(),
        phone: "13700000001".into(),
        ..Contact::default()
    }];
    r
}

fn engine() -> Engine {
    Engine::new(Policy::default(), registry(), Resume::default())
}

fn act(e: &mut Engine, who: &ResponderId, action: VisitAction, now: Timestamp) -> (Result<(), VisitError>, Outbox) {
    let mut out = Outbox::default();
    let r = e.carer_acts(who, action, now, &mut out);
    (r, out)
}

fn check_in(e: &mut Engine, now: Timestamp) -> Outbox {
    let (r, out) = act(e, &carer(), VisitAction::CheckIn { elder_id: elder(), at: metres_north(150.0) }, now);
    assert_eq!(r, Ok(()));
    out
}

/// Ticks at every deadline up to `at`, as the shell does; a deadline that a tick does not
/// move on fails the test rather than spinning.
fn run_to(e: &mut Engine, at: Timestamp) -> Outbox {
    let mut out = Outbox::default();
    let mut last = None;
    while let Some(due) = e.next_deadline().filter(|d| *d <= at) {
        assert_ne!(last, Some(due), "a tick at {due:?} left its own deadline in place");
        last = Some(due);
        e.tick(due, &mut out);
    }
    e.tick(at, &mut out);
    out
}

fn lone_worker(e: &Engine) -> Option<&Incident> {
    e.open_incidents().find(|i| i.kind == IncidentKind::LoneWorker)
}

#[test]
fn a_check_in_within_the_radius_opens_a_visit_in_the_log() {
    let mut e = engine();
    let out = check_in(&mut e, T0);
    assert_eq!(out.visits.len(), 1);
    let v = &out.visits[0];
    assert_eq!((&v.carer_id, &v.elder_id, v.checked_in_at), (&carer(), &elder(), T0));
    assert!((v.distance_m - 150.0).abs() < 2.0, "{}", v.distance_m);
    assert_eq!(v.due_at, T0.plus_millis(90 * MIN));
    assert!(v.is_open());
    assert_eq!(e.visit_of(&carer()), Some(v));
    assert_eq!(e.next_deadline(), Some(T0.plus_millis(90 * MIN)));
}

#[test]
fn a_check_in_out_of_the_radius_is_refused_and_changes_nothing() {
    let mut e = engine();
    let (r, out) = act(&mut e, &carer(), VisitAction::CheckIn { elder_id: elder(), at: metres_north(260.0) }, T0);
    assert_eq!(r, Err(VisitError::OutOfRadius { distance_m: 260, radius_m: 200 }));
    assert_eq!(r.unwrap_err().code(), "out_of_radius");
    assert!(out.is_empty() && out.visits.is_empty());
    assert_eq!(e.visit_of(&carer()), None);
    assert_eq!(e.next_deadline(), None, "no timer runs for a refused check-in");
    // The radius is the district's to set.
    let mut policy = Policy::default();
    policy.carers.checkin_radius_m = 300.0;
    let mut wide = Engine::new(policy, registry(), Resume::default());
    let (r, _) = act(&mut wide, &carer(), VisitAction::CheckIn { elder_id: elder(), at: metres_north(260.0) }, T0);
    assert_eq!(r, Ok(()));
}

#[test]
fn only_carers_visit_and_only_known_elders_are_visited() {
    let mut e = engine();
    let (r, _) = act(&mut e, &r1(), VisitAction::CheckIn { elder_id: elder(), at: metres_north(10.0) }, T0);
    assert_eq!(r, Err(VisitError::NotACarer(r1())));
    let nobody = ElderId::parse("e-9").unwrap();
    let (r, _) = act(&mut e, &carer(), VisitAction::CheckIn { elder_id: nobody.clone(), at: metres_north(10.0) }, T0);
    assert_eq!(r, Err(VisitError::UnknownElder(nobody)));
    let (r, _) = act(&mut e, &carer(), VisitAction::CheckOut { at: metres_north(10.0) }, T0);
    assert_eq!(r, Err(VisitError::NoVisit));
    let (r, _) = act(&mut e, &carer(), VisitAction::StillHere { at: metres_north(10.0) }, T0);
    assert_eq!(r, Err(VisitError::NoVisit));
}

#[test]
fn checking_out_in_time_ends_the_visit_and_no_alert_is_raised() {
    let mut e = engine();
    check_in(&mut e, T0);
    let (r, out) = act(&mut e, &carer(), VisitAction::CheckOut { at: metres_north(20.0) }, T0.plus_millis(45 * MIN));
    assert_eq!(r, Ok(()));
    let v = &out.visits[0];
    assert_eq!(v.checked_out_at, Some(T0.plus_millis(45 * MIN)));
    assert!(!v.is_open() && !v.overdue);
    assert_eq!(e.visit_of(&carer()), None);
    assert_eq!(e.next_deadline(), None);
    let out = run_to(&mut e, T0.plus_millis(300 * MIN));
    assert!(out.events.is_empty() && lone_worker(&e).is_none());
}

#[test]
fn a_carer_not_heard_from_in_time_raises_a_lone_worker_alert_that_their_next_word_ends() {
    let mut e = engine();
    check_in(&mut e, T0);
    let out = run_to(&mut e, T0.plus_millis(90 * MIN - 1));
    assert!(out.events.is_empty(), "not due yet");
    let out = run_to(&mut e, T0.plus_millis(90 * MIN));
    let alert = lone_worker(&e).expect("a lone-worker incident").clone();
    assert_eq!(alert.carer, Some(carer()));
    assert_eq!(alert.elder_id, elder(), "at the visited elder's home");
    assert_eq!(alert.location.source, LocationSource::Home);
    assert_eq!(alert.dispatcher_needed, Some(DispatcherNeeded::CarerOverdue));
    let alarm = alert.alarm.expect("an alarm");
    assert_eq!((alarm.need, alarm.level), (Need::CarerOverdue, AlarmLevel::Urgent));
    assert!(alert.ladder.offers.is_empty() && alert.responder.is_none(), "a dispatcher phones first");
    assert!(out.notifications.is_empty(), "the elder's family is not told of a carer's alert");
    let view = out.deltas.last().unwrap();
    assert_eq!(view.carer.as_ref().map(|c| c.name.as_str()), Some("周护理"));
    assert_eq!(view.carer.as_ref().and_then(|c| c.phone.as_deref()), Some("13800000009"));
    assert!(out.events.iter().any(|ev| matches!(&ev.change, Change::Note { text } if text.contains("90 minutes"))));
    assert_eq!(e.visit_of(&carer()).unwrap().alert, Some(alert.id));
    assert!(out.visits.last().unwrap().overdue);
    // It is reminded like any need, and is not raised twice.
    let out = run_to(&mut e, T0.plus_millis(92 * MIN));
    assert_eq!(e.open_incidents().filter(|i| i.kind == IncidentKind::LoneWorker).count(), 1);
    assert!(out.events.iter().any(|ev| matches!(ev.change, Change::Reminder { .. })));
    // The carer says they are still there: the alert ends and the timer starts again.
    let now = T0.plus_millis(95 * MIN);
    let (r, out) = act(&mut e, &carer(), VisitAction::StillHere { at: metres_north(5.0) }, now);
    assert_eq!(r, Ok(()));
    assert!(e.incident(alert.id).is_none(), "closed by the engine");
    assert!(out
        .events
        .iter()
        .any(|ev| matches!(&ev.change, Change::Closed { outcome } if outcome.contains("still there"))));
    assert_eq!(e.visit_of(&carer()).unwrap().due_at, now.plus_millis(90 * MIN));
    run_to(&mut e, now.plus_millis(90 * MIN));
    assert!(lone_worker(&e).is_some(), "silent again for 90 minutes: a new alert");
}

#[test]
fn saying_still_here_or_checking_in_again_in_time_keeps_the_alert_away() {
    let mut e = engine();
    check_in(&mut e, T0);
    act(&mut e, &carer(), VisitAction::StillHere { at: metres_north(5.0) }, T0.plus_millis(80 * MIN)).0.unwrap();
    assert!(run_to(&mut e, T0.plus_millis(169 * MIN)).events.is_empty());
    assert!(lone_worker(&e).is_none());
    // Checking in again at the same elder's counts the same.
    check_in(&mut e, T0.plus_millis(169 * MIN));
    assert!(run_to(&mut e, T0.plus_millis(258 * MIN)).events.is_empty());
    // But not at another elder's while this visit is open.
    let mut r = registry();
    let mut other = r.elders[0].clone();
    other.id = ElderId::parse("e-2").unwrap();
    r.elders.push(other);
    let mut e = Engine::new(Policy::default(), r, Resume::default());
    check_in(&mut e, T0);
    let (res, _) = act(
        &mut e,
        &carer(),
        VisitAction::CheckIn { elder_id: ElderId::parse("e-2").unwrap(), at: metres_north(1.0) },
        T0,
    );
    assert_eq!(res, Err(VisitError::OnVisit(elder())));
}

#[test]
fn checking_out_while_overdue_ends_the_alert() {
    let mut e = engine();
    check_in(&mut e, T0);
    run_to(&mut e, T0.plus_millis(90 * MIN));
    let id = lone_worker(&e).unwrap().id;
    let (r, out) = act(&mut e, &carer(), VisitAction::CheckOut { at: metres_north(5.0) }, T0.plus_millis(91 * MIN));
    assert_eq!(r, Ok(()));
    assert!(e.incident(id).is_none());
    let v = out.visits.iter().find(|v| !v.is_open()).unwrap();
    assert!(v.overdue, "the log keeps that the visit ran over");
    assert_eq!(e.next_deadline(), None);
}

#[test]
fn a_dispatcher_closing_the_alert_while_the_visit_goes_on_starts_the_timer_again() {
    let mut e = engine();
    check_in(&mut e, T0);
    run_to(&mut e, T0.plus_millis(90 * MIN));
    let id = lone_worker(&e).unwrap().id;
    let now = T0.plus_millis(100 * MIN);
    let mut out = Outbox::default();
    let d = || DispatcherRef { id: "dispatcher", supervisor: false };
    e.dispatcher_acts_as(d(), id, DispatcherAction::Resolve { outcome: "phoned: she is fine".into() }, now, &mut out)
        .unwrap();
    e.dispatcher_acts_as(d(), id, DispatcherAction::Close { outcome: "phoned".into() }, now, &mut out).unwrap();
    assert!(e.incident(id).is_none());
    assert_eq!(e.visit_of(&carer()).unwrap().due_at, now.plus_millis(90 * MIN));
    run_to(&mut e, now.plus_millis(90 * MIN));
    assert!(lone_worker(&e).is_some_and(|i| i.id != id));
}

#[test]
fn the_help_button_opens_an_sos_for_the_carer_that_goes_to_somebody_else() {
    let mut e = engine();
    check_in(&mut e, T0);
    let (r, out) = act(&mut e, &carer(), VisitAction::Help { at: metres_north(30.0) }, T0.plus_millis(10 * MIN));
    assert_eq!(r, Ok(()));
    let help = e.carer_help_of(&carer()).expect("an incident for the carer").clone();
    assert_eq!((help.kind, help.carer.clone()), (IncidentKind::Sos, Some(carer())));
    assert_eq!(help.device_id.as_str(), "carer:c-1");
    assert!(!e.is_known_device(&help.device_id), "nothing is added to the devices");
    assert_eq!((help.elder_id.clone(), help.location.source), (elder(), LocationSource::Home));
    assert_eq!(help.state, IncidentState::Offered);
    assert_eq!(help.ladder.offers[0].responder_id, r1(), "the nearest other responder is offered it");
    assert!(help.ladder.tried.contains(&carer()), "never the carer");
    assert!(out.notifications.is_empty(), "the elder's family is not told");
    assert_eq!(out.events[0].actor, Actor::Responder(carer()));
    // A second press joins nothing new.
    let (_, out) = act(&mut e, &carer(), VisitAction::Help { at: metres_north(30.0) }, T0.plus_millis(11 * MIN));
    assert!(out.events.is_empty());
    assert_eq!(e.open_incidents().filter(|i| i.carer.is_some()).count(), 1);
    // It goes up the ladder like any SOS: r-1 accepts.
    let mut out = Outbox::default();
    e.responder_acts(&r1(), help.id, ResponderAction::Accept, T0.plus_millis(11 * MIN), &mut out).unwrap();
    assert_eq!(e.incident(help.id).unwrap().state, IncidentState::Accepted);
}

#[test]
fn away_from_a_visit_help_goes_to_the_carers_position() {
    let mut e = engine();
    let here = at(25.004, 102.684);
    act(&mut e, &carer(), VisitAction::Help { at: here }, T0).0.unwrap();
    let help = e.carer_help_of(&carer()).unwrap();
    assert_eq!((help.location.at, help.location.source), (here, LocationSource::Device));
    assert_eq!(help.elder_id.as_str(), "carer:c-1", "no elder");
    assert!(e.view(help).elder.name.is_empty());
    assert_eq!(e.view(help).carer.unwrap().id, "c-1");
}

#[test]
fn a_restart_keeps_open_visits_and_their_timers() {
    let mut e = engine();
    let mut visits = check_in(&mut e, T0).visits;
    let mut help = Outbox::default();
    e.carer_acts(&carer(), VisitAction::Help { at: metres_north(1.0) }, T0, &mut help).unwrap();
    let resume = Resume {
        open: e.open_incidents().cloned().collect(),
        counters: e.counters(),
        visits: std::mem::take(&mut visits),
        ..Resume::default()
    };
    let mut again = Engine::new(Policy::default(), registry(), resume);
    assert_eq!(again.visit_of(&carer()).map(|v| v.id), Some(1));
    assert!(again.carer_help_of(&carer()).is_some());
    run_to(&mut again, T0.plus_millis(90 * MIN));
    assert!(lone_worker(&again).is_some(), "the timer survives the restart");
    // The next visit gets the next id.
    let mut out = Outbox::default();
    again
        .carer_acts(&carer(), VisitAction::CheckOut { at: metres_north(1.0) }, T0.plus_millis(91 * MIN), &mut out)
        .unwrap();
    let out = check_in(&mut again, T0.plus_millis(92 * MIN));
    assert_eq!(out.visits[0].id, 2);
}

#[test]
fn the_ledger_refuses_device_ids_that_look_like_a_carers() {
    let mut e = engine();
    let mut out = Outbox::default();
    let device = Device { id: DeviceId::parse("carer:c-1").unwrap(), elder_id: elder(), model: None, sim: None };
    let refused = e.amend(Amend::new(Amendment::Create(Entry::Device(device))), "admin", T0, &mut out);
    assert!(refused.is_err(), "{refused:?}");
}
