//! The scheduled welfare programme: calls and visits fall due on an elder's schedule and
//! open as welfare tasks; what the dispatcher found decides what follows (done, tried again,
//! a visit after the last unanswered call, a service request, an emergency); overdue tasks
//! are counted; the schedule's changes and a restart are followed.

use anxin_core::testkit::{d1 as dev, one_of_each};
use anxin_core::*;

const HOUR: i64 = 3_600_000;
const DAY: i64 = 24 * HOUR;
const T0: Timestamp = Timestamp(1_762_012_800_000);

fn elder() -> ElderId {
    ElderId::parse("e-1").unwrap()
}

fn weekly_calls_monthly_visits() -> Registry {
    let mut r = one_of_each();
    r.elders[0].profile.schedule = WelfareSchedule { call_every_days: Some(7), visit_every_days: Some(30) };
    r
}

fn started(resume: Resume) -> Engine {
    let mut e = Engine::new(Policy::default(), weekly_calls_monthly_visits(), resume);
    e.start_health(T0);
    e
}

/// Runs to `to`, ticking at every deadline; the device beats every four hours so that it
/// never goes offline (its own welfare check is not what these tests are about).
fn run_to(e: &mut Engine, from: Timestamp, to: Timestamp) -> Outbox {
    let mut out = Outbox::default();
    let mut beat = from;
    loop {
        let next = e.next_deadline().filter(|d| *d <= to);
        let step = match next {
            Some(d) if d <= beat.plus_millis(4 * HOUR) => d,
            _ if beat.plus_millis(4 * HOUR) <= to => beat.plus_millis(4 * HOUR),
            _ => break,
        };
        if step >= beat.plus_millis(4 * HOUR) {
            beat = step;
            let ev = DeviceEvent {
                msg_id: MessageId::parse(format!("hb-{}", step.millis())).unwrap(),
                event: EventType::Heartbeat,
                device_ts: step,
                fix: FixReport::Absent,
                health: HealthReport::default(),
            };
            e.handle_device_event(&dev(), ev, step, &mut out).unwrap();
        }
        e.tick(step, &mut out);
    }
    e.tick(to, &mut out);
    out
}

fn opened(out: &Outbox, reason: WelfareReason) -> Vec<(Timestamp, IncidentId)> {
    out.events
        .iter()
        .filter(|ev| matches!(&ev.change, Change::Opened { welfare: Some(r), .. } if *r == reason))
        .map(|ev| (ev.at, ev.incident_id))
        .collect()
}

fn end(e: &mut Engine, id: IncidentId, outcome: &str, at: Timestamp) -> Outbox {
    let mut out = Outbox::default();
    e.dispatcher_acts("wang", id, DispatcherAction::Resolve { outcome: outcome.into() }, at, &mut out).unwrap();
    e.dispatcher_acts("wang", id, DispatcherAction::Close { outcome: outcome.into() }, at, &mut out).unwrap();
    out
}

#[test]
fn a_weekly_call_falls_due_in_its_first_week_then_a_week_after_it_was_done() {
    let mut e = started(Resume::default());
    let out = run_to(&mut e, T0, T0.plus_millis(7 * DAY));
    let calls = opened(&out, WelfareReason::ScheduledCall);
    assert_eq!(calls.len(), 1, "one call in the first week: {calls:?}");
    let (at, id) = calls[0];
    let task = e.incident(id).unwrap();
    assert_eq!((task.kind, task.state), (IncidentKind::Welfare, IncidentState::AwaitingDispatcher));
    assert!(task.ladder.offers.is_empty(), "never offered to a responder");
    assert!(out.notifications.is_empty(), "the family is not told of a routine call");
    // Not done: no second call opens beside it however long it waits.
    let done_at = at.plus_millis(9 * DAY);
    let later = run_to(&mut e, T0.plus_millis(7 * DAY), done_at);
    assert_eq!(opened(&later, WelfareReason::ScheduledCall), vec![]);
    let (open, overdue) = e.programme_counts(done_at);
    assert_eq!(open, 1 + usize::from(e.programme_tasks_of(&elder()).1.is_some()));
    assert!(overdue >= 1, "a call open nine days after it fell due is overdue");
    end(&mut e, id, "well: she is fine, her son visited", done_at);
    assert_eq!(e.elder_programme(&elder()).unwrap().call_done, done_at.millis());
    let next = run_to(&mut e, done_at, done_at.plus_millis(7 * DAY + HOUR));
    let calls = opened(&next, WelfareReason::ScheduledCall);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, done_at.plus_millis(7 * DAY), "a week after it was done");
}

#[test]
fn unanswered_calls_are_tried_again_and_after_the_last_a_visit_opens() {
    let mut e = started(Resume::default());
    let out = run_to(&mut e, T0, T0.plus_millis(7 * DAY));
    let (_, mut id) = opened(&out, WelfareReason::ScheduledCall)[0];
    let mut now = T0.plus_millis(7 * DAY);
    let mut retries = vec![];
    for _ in 0..2 {
        end(&mut e, id, "no_answer: rang ten times", now);
        let out = run_to(&mut e, now, now.plus_millis(3 * HOUR));
        let again = opened(&out, WelfareReason::ScheduledCall);
        assert_eq!(again.len(), 1, "tried again");
        retries.push(again[0].0.millis() - now.millis());
        (now, id) = (now.plus_millis(3 * HOUR), again[0].1);
    }
    assert_eq!(retries, [2 * HOUR, 2 * HOUR], "two hours later each time");
    assert_eq!(e.elder_programme(&elder()).unwrap().call_tries, 2);
    let visits_before = e.programme_tasks_of(&elder()).1.map(|v| v.id);
    if let Some(v) = visits_before {
        end(&mut e, v, "well: visited", now); // the monthly visit, if it fell due already
    }
    let out = end(&mut e, id, "no_answer", now);
    let visit = opened(&out, WelfareReason::ScheduledVisit);
    assert_eq!(visit.len(), 1, "the third unanswered call sends somebody round");
    let note = out.events.iter().find_map(|ev| match &ev.change {
        Change::Note { text } if ev.incident_id == visit[0].1 => Some(text.clone()),
        _ => None,
    });
    assert_eq!(note.as_deref(), Some("3 scheduled calls went unanswered: a visit instead."));
    let p = e.elder_programme(&elder()).unwrap();
    assert_eq!((p.call_tries, p.call_done), (0, now.millis()), "the round is over");
    let out = run_to(&mut e, now, now.plus_millis(6 * DAY));
    assert_eq!(opened(&out, WelfareReason::ScheduledCall), vec![], "no call until a week after the round");
}

/// The elder waits in the engine's queue for the earliest of their tasks not open: while a
/// call is open that is a visit, here a year off. An unanswered call is tried again two hours
/// later all the same, and an answered one a week later, not when the visit falls due (the
/// queue once kept the elder at the visit's time; the core's simulation found it).
#[test]
fn a_call_is_tried_again_on_time_while_the_elder_waits_for_a_visit_far_off() {
    let mut r = one_of_each();
    r.elders[0].profile.schedule = WelfareSchedule { call_every_days: Some(7), visit_every_days: Some(366) };
    let mut e = Engine::new(Policy::default(), r, Resume::default());
    e.start_health(T0);
    let out = run_to(&mut e, T0, T0.plus_millis(7 * DAY));
    let (_, id) = opened(&out, WelfareReason::ScheduledCall)[0];
    let now = T0.plus_millis(7 * DAY);
    let visit_due = e.elder_programme(&elder()).unwrap().visit_due(&elder(), Some(366), T0).unwrap();
    assert!(visit_due > now.plus_millis(8 * DAY), "the yearly visit is further off: {visit_due:?}");
    end(&mut e, id, "no_answer", now);
    let out = run_to(&mut e, now, now.plus_millis(3 * HOUR));
    let again = opened(&out, WelfareReason::ScheduledCall);
    let after: Vec<i64> = again.iter().map(|(t, _)| t.millis() - now.millis()).collect();
    assert_eq!(after, [2 * HOUR], "tried again two hours later");
    let now = now.plus_millis(3 * HOUR);
    end(&mut e, again[0].1, "well", now);
    let out = run_to(&mut e, now, now.plus_millis(8 * DAY));
    let next: Vec<i64> =
        opened(&out, WelfareReason::ScheduledCall).iter().map(|(t, _)| t.millis() - now.millis()).collect();
    assert_eq!(next, [7 * DAY], "the next a week after it was done");
}

#[test]
fn a_call_that_finds_the_elder_needs_help_opens_an_emergency_and_a_service_a_request() {
    let mut e = started(Resume::default());
    let out = run_to(&mut e, T0, T0.plus_millis(7 * DAY));
    let (_, id) = opened(&out, WelfareReason::ScheduledCall)[0];
    let now = T0.plus_millis(7 * DAY);
    let out = end(&mut e, id, "needs_help: she fell yesterday and cannot stand", now);
    let sos = e.open_incident_for(&dev()).expect("an emergency opens");
    assert_eq!(sos.kind, IncidentKind::Sos);
    assert_eq!(sos.state, IncidentState::Offered, "up the ladder at once");
    assert!(out.commands.iter().any(|(d, _)| d == &dev()), "the device says help is coming");
    // Ended; next week's call finds she needs her meals delivered.
    let sos_id = sos.id;
    end(&mut e, sos_id, "treated at home", now.plus_millis(HOUR));
    let out = run_to(&mut e, now.plus_millis(HOUR), now.plus_millis(7 * DAY + 2 * HOUR));
    let (_, id) = opened(&out, WelfareReason::ScheduledCall)[0];
    end(&mut e, id, "needs_service: meals", now.plus_millis(7 * DAY + 2 * HOUR));
    let service = e.open_incident_for(&dev()).expect("a service request opens");
    assert_eq!((service.kind, service.state), (IncidentKind::Service, IncidentState::AwaitingDispatcher));
}

#[test]
fn an_elder_taken_off_the_programme_has_their_tasks_ended() {
    let mut e = started(Resume::default());
    let out = run_to(&mut e, T0, T0.plus_millis(30 * DAY));
    assert!(!opened(&out, WelfareReason::ScheduledVisit).is_empty());
    let mut off = weekly_calls_monthly_visits().elders.remove(0);
    off.profile.schedule = WelfareSchedule::default();
    let mut out = Outbox::default();
    e.amend(Amend::new(Amendment::Update(Entry::Elder(off))), "admin", T0.plus_millis(30 * DAY), &mut out).unwrap();
    assert!(e.elder_programme(&elder()).is_none());
    assert_eq!(e.programme_tasks_of(&elder()), (None, None));
    assert!(out
        .events
        .iter()
        .any(|ev| matches!(&ev.change, Change::Closed { outcome } if outcome == "the elder left the programme")));
    let out = run_to(&mut e, T0.plus_millis(30 * DAY), T0.plus_millis(60 * DAY));
    assert_eq!(opened(&out, WelfareReason::ScheduledCall), vec![]);
}

#[test]
fn a_restart_keeps_what_was_done_and_the_open_tasks() {
    let mut e = started(Resume::default());
    let out = run_to(&mut e, T0, T0.plus_millis(7 * DAY));
    let (_, id) = opened(&out, WelfareReason::ScheduledCall)[0];
    let now = T0.plus_millis(7 * DAY);
    end(&mut e, id, "no_answer", now);
    let out = run_to(&mut e, now, now.plus_millis(3 * HOUR));
    let (_, retry) = opened(&out, WelfareReason::ScheduledCall)[0];
    let snapshot = e.take_snapshot();
    assert_eq!(snapshot.programme.len(), 1);
    assert_eq!(snapshot.programme[0].call_tries, 1);
    let open: Vec<Incident> = e.open_incidents().cloned().collect();
    let resume = Resume { open, programme: snapshot.programme, counters: e.counters(), ..Resume::default() };
    let mut e = Engine::new(Policy::default(), weekly_calls_monthly_visits(), resume);
    e.start_health(now.plus_millis(3 * HOUR));
    assert_eq!(e.programme_tasks_of(&elder()).0.map(|i| i.id), Some(retry), "the open retry is the elder's");
    let out = run_to(&mut e, now.plus_millis(3 * HOUR), now.plus_millis(DAY));
    assert_eq!(opened(&out, WelfareReason::ScheduledCall), vec![], "not opened twice");
    end(&mut e, retry, "no_answer", now.plus_millis(DAY));
    assert_eq!(e.elder_programme(&elder()).unwrap().call_tries, 2, "the tries carried over");
}

#[test]
fn a_schedule_out_of_range_is_refused_with_the_field_named() {
    let mut e = started(Resume::default());
    for (calls, visits, field) in
        [(Some(0), None, "profile.schedule.call_every_days"), (None, Some(367), "profile.schedule.visit_every_days")]
    {
        let mut elder = weekly_calls_monthly_visits().elders.remove(0);
        elder.profile.schedule = WelfareSchedule { call_every_days: calls, visit_every_days: visits };
        let mut out = Outbox::default();
        let refused = e.amend(Amend::new(Amendment::Update(Entry::Elder(elder))), "admin", T0, &mut out).unwrap_err();
        assert_eq!(refused.code(), "invalid");
        let fields: Vec<_> = refused.fields().iter().map(|f| (f.field.as_str(), f.code.as_str())).collect();
        assert_eq!(fields, [(field, "bad_schedule")]);
        assert!(out.ledger.is_empty(), "nothing changed");
    }
    assert_eq!(e.elder_programme(&elder()).map(|_| ()), Some(()), "still on the weekly schedule");
}

/// Started at T0 on a snapshot saying e-1 was phoned eight days ago and visited yesterday.
fn restarted_a_week_and_a_day_after_the_last_call() -> Engine {
    let row = ProgrammeRow {
        elder_id: elder(),
        call_done: Some(T0.plus_millis(-8 * DAY)),
        visit_done: Some(T0.plus_millis(-DAY)),
        call_tries: 0,
        call_retry_at: None,
        visit_retry_at: None,
    };
    started(Resume { programme: vec![row], ..Resume::default() })
}

#[test]
fn a_call_that_fell_due_while_the_centre_was_down_is_due_from_then_and_overdue_at_once() {
    // Last phoned eight days ago on a weekly schedule: due a day ago, while the centre was down.
    let mut e = restarted_a_week_and_a_day_after_the_last_call();
    let mut out = Outbox::default();
    e.tick(T0, &mut out);
    let calls = opened(&out, WelfareReason::ScheduledCall);
    assert_eq!(calls.len(), 1, "it opens as the centre starts");
    let task = e.incident(calls[0].1).unwrap();
    assert_eq!(task.opened_at, T0);
    assert_eq!(task.pressed_at, T0.plus_millis(-DAY), "the task says when it fell due");
    // Open a day past falling due (the default overdue_after): overdue already.
    assert_eq!(e.programme_counts(T0), (1, 1));
    assert_eq!(e.programme_counts(T0.plus_millis(-1)), (1, 0), "not before a day past due");
}

#[test]
fn an_unanswered_call_is_tried_again_on_time_while_the_visit_waits_weeks_ahead() {
    // Visited yesterday (the next visit a month off, queued for then); phoned eight days ago.
    let mut e = restarted_a_week_and_a_day_after_the_last_call();
    let out = run_to(&mut e, T0, T0.plus_millis(HOUR));
    let (_, id) = opened(&out, WelfareReason::ScheduledCall)[0];
    end(&mut e, id, "no_answer", T0.plus_millis(HOUR));
    // Tried again two hours later (retry_after), not when the visit falls due.
    let out = run_to(&mut e, T0.plus_millis(HOUR), T0.plus_millis(4 * HOUR));
    let retries = opened(&out, WelfareReason::ScheduledCall);
    assert_eq!(retries.len(), 1, "{retries:?}");
    assert_eq!(retries[0].0, T0.plus_millis(3 * HOUR));
    assert_eq!(e.incident(retries[0].1).unwrap().pressed_at, T0.plus_millis(3 * HOUR));
    assert_eq!(opened(&out, WelfareReason::ScheduledVisit), vec![]);
}

/// Joining the programme by a ledger change: an elder already in the ledger is found their
/// device; an elder who joins the ledger with a schedule has none until one is enrolled for
/// them, and their tasks are raised on it from then.
#[test]
fn elders_put_on_the_programme_by_the_ledger_get_tasks_on_their_device() {
    let mut r = one_of_each();
    let mut e = Engine::new(Policy::default(), r.clone(), Resume::default());
    e.start_health(T0);
    let mut out = Outbox::default();
    // e-1 is in the ledger with d-1: a weekly call from now.
    let mut weekly = r.elders.remove(0);
    weekly.profile.schedule = WelfareSchedule { call_every_days: Some(7), visit_every_days: None };
    e.amend(Amend::new(Amendment::Update(Entry::Elder(weekly.clone()))), "admin", T0, &mut out).unwrap();
    assert_eq!(e.elder_programme(&elder()).and_then(|p| p.device.clone()), Some(dev()));
    // e-new joins the ledger on the programme, with no device yet; then one is enrolled.
    let mut new = weekly;
    new.id = ElderId::parse("e-new").unwrap();
    e.amend(Amend::new(Amendment::Create(Entry::Elder(new.clone()))), "admin", T0, &mut out).unwrap();
    assert_eq!(e.elder_programme(&new.id).map(|p| p.device.clone()), Some(None));
    let device = Device { id: DeviceId::parse("d-new").unwrap(), elder_id: new.id.clone(), model: None, sim: None };
    e.amend(Amend::new(Amendment::Create(Entry::Device(device.clone()))), "admin", T0, &mut out).unwrap();
    assert_eq!(e.elder_programme(&new.id).and_then(|p| p.device.clone()), Some(device.id.clone()));
    // Within the week both are called, each on their own device.
    let out = run_to(&mut e, T0, T0.plus_millis(7 * DAY));
    let calls: Vec<(ElderId, DeviceId)> = opened(&out, WelfareReason::ScheduledCall)
        .into_iter()
        .map(|(_, id)| e.incident(id).map(|i| (i.elder_id.clone(), i.device_id.clone())).expect("open"))
        .collect();
    assert!(calls.contains(&(elder(), dev())), "{calls:?}");
    assert!(calls.contains(&(new.id.clone(), device.id.clone())), "{calls:?}");
}
