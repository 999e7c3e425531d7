//! Families: the first contact hears of an emergency at once and of every change after; the
//! next contact is brought in when nobody answers in time, says they cannot help, or cannot
//! be reached; low-priority news waits out quiet hours and can be turned off; a contact
//! answers for their own elder only; every notification leaves with the change that caused it.

use anxin_core::testkit::{d1 as dev, one_of_each, r1};
use anxin_core::*;

/// 2025-11-13 02:13:20 UTC: 10:13 in Kunming (UTC+8), outside anybody's quiet hours.
const T0: Timestamp = Timestamp(1_763_000_000_000);
const MIN: i64 = 60_000;

fn contact(name: &str, relation: &str, phone: &str) -> Contact {
    Contact { name: name.into(), relation: relation.into(), phone: phone.into(), ..Contact::default() }
}

/// The testkit's district, with three contacts for the elder: a daughter by text, a son by
/// voice who reads English and keeps quiet hours, and a neighbour who takes no service news.
fn registry() -> Registry {
    let mut r = one_of_each();
    r.elders[0].profile.contacts = vec![
        contact("王丽", "女儿", "13700000001"),
        Contact {
            channel: Channel::Voice,
            language: "en".into(),
            quiet_hours: Some(QuietHours { from: 22 * 60, to: 7 * 60 }),
            ..contact("王军", "儿子", "13700000002")
        },
        Contact { service_news: false, ..contact("李阿姨", "邻居", "13600000003") },
    ];
    r
}

fn engine() -> Engine {
    Engine::new(Policy::default(), registry(), Resume::default())
}

fn elder() -> ElderId {
    ElderId::parse("e-1").unwrap()
}

fn press(e: &mut Engine, kind: EventType, msg: &str, at: Timestamp) -> (IncidentId, Outbox) {
    let mut out = Outbox::default();
    let event = DeviceEvent {
        msg_id: MessageId::parse(msg).unwrap(),
        event: kind,
        device_ts: at,
        fix: FixReport::Absent,
        health: Default::default(),
    };
    match e.handle_device_event(&dev(), event, at, &mut out).unwrap() {
        Outcome::Opened(id) | Outcome::Joined(id) => (id, out),
        other => panic!("not opened: {other:?}"),
    }
}

fn run_to(e: &mut Engine, at: Timestamp) -> Outbox {
    let mut out = Outbox::default();
    while let Some(due) = e.next_deadline().filter(|d| *d <= at) {
        e.tick(due, &mut out);
    }
    out
}

fn answer(
    e: &mut Engine,
    contact: &str,
    id: IncidentId,
    a: FamilyAnswer,
    at: Timestamp,
) -> Result<Outbox, CommandError> {
    let mut out = Outbox::default();
    e.family_answers(&elder(), contact, id, a, at, &mut out).map(|()| out)
}

/// Who was sent what in `out`, as (contact, notice type).
fn told(out: &Outbox) -> Vec<(String, &'static str)> {
    out.notifications.iter().map(|n| (n.contact_id.clone(), n.notice.as_str())).collect()
}

#[test]
fn an_emergency_tells_the_first_contact_at_once_and_every_change_after() {
    let mut e = engine();
    let (id, out) = press(&mut e, EventType::Sos, "m-1", T0);
    assert_eq!(told(&out), [("c1".to_string(), "emergency")], "the daughter, and only her, at once");
    let n = &out.notifications[0];
    assert_eq!((n.channel, n.priority, n.not_before), (Channel::Sms, NoticePriority::Emergency, T0));
    assert_eq!(n.to, "13700000001");
    assert!(n.text.contains("张阿姨") && n.text.contains("一键呼救"), "{}", n.text);

    // The notification leaves with the event that logs it, under that event's number.
    let logged: Vec<_> = out.events.iter().filter(|ev| matches!(ev.change, Change::FamilyTold { .. })).collect();
    assert_eq!(logged.len(), 1);
    assert_eq!(n.key, format!("n{}", logged[0].seq));

    // The responder accepts: the daughter hears who is coming and how soon.
    let mut out = Outbox::default();
    e.responder_acts(&r1(), id, ResponderAction::Accept, T0.plus_millis(MIN), &mut out).unwrap();
    assert_eq!(told(&out), [("c1".to_string(), "responder_coming")]);
    let Notice::ResponderComing { responder, eta_min } = &out.notifications[0].notice else { unreachable!() };
    assert_eq!(responder, "李师傅");
    assert!((1..=5).contains(eta_min), "110 m on an e-bike: {eta_min} min");

    let mut out = Outbox::default();
    e.responder_acts(&r1(), id, ResponderAction::OnScene, T0.plus_millis(3 * MIN), &mut out).unwrap();
    assert_eq!(told(&out), [("c1".to_string(), "on_scene")]);
    let mut out = Outbox::default();
    e.responder_acts(
        &r1(),
        id,
        ResponderAction::Resolve { outcome: "扶起，无外伤".into() },
        T0.plus_millis(9 * MIN),
        &mut out,
    )
    .unwrap();
    assert_eq!(told(&out), [("c1".to_string(), "ended")]);
    assert!(out.notifications[0].text.contains("扶起，无外伤"));
    assert_eq!(e.incident(id).unwrap().family.contacts[0].told, 4);
}

#[test]
fn nobody_answering_brings_in_the_next_contact_with_where_things_stand() {
    let mut e = engine();
    let (id, _) = press(&mut e, EventType::Fall, "m-1", T0);
    let mut out = Outbox::default();
    e.responder_acts(&r1(), id, ResponderAction::Accept, T0.plus_millis(MIN), &mut out).unwrap();
    let seen = e.incident(id).unwrap().alarm.unwrap().raised_seq;
    e.dispatcher_acts("wang", id, DispatcherAction::Acknowledge { alarm: Some(seen) }, T0, &mut out).unwrap();

    // Nothing more before the five minutes are up...
    assert!(told(&run_to(&mut e, T0.plus_millis(5 * MIN - 1))).is_empty());
    // ...then the son, by voice and in English, hears that a responder is coming.
    let out = run_to(&mut e, T0.plus_millis(5 * MIN));
    assert_eq!(told(&out), [("c2".to_string(), "responder_coming")]);
    let n = &out.notifications[0];
    assert_eq!(n.channel, Channel::Voice);
    assert_eq!(n.not_before, T0.plus_millis(5 * MIN), "quiet hours never hold an emergency");
    assert!(n.text.starts_with("[Anxin]"), "{}", n.text);

    // Then the neighbour; then, with nobody left, a dispatcher is asked to phone them.
    assert_eq!(told(&run_to(&mut e, T0.plus_millis(10 * MIN))), [("c3".to_string(), "responder_coming")]);
    let out = run_to(&mut e, T0.plus_millis(15 * MIN));
    assert!(out.events.iter().any(|ev| matches!(ev.change, Change::FamilyExhausted)));
    let incident = e.incident(id).unwrap();
    assert_eq!(incident.alarm.map(|a| a.need), Some(Need::FamilyUnreached));
    assert_eq!(incident.family.next_at, None, "and no more timers");
    assert_eq!(e.next_deadline(), incident.ladder.on_scene_by, "only the ladder's own timer remains");
}

#[test]
fn an_answer_stops_the_search_and_later_news_goes_to_everybody_told() {
    let mut e = engine();
    let (id, _) = press(&mut e, EventType::Sos, "m-1", T0);
    run_to(&mut e, T0.plus_millis(5 * MIN)); // the son is brought in
    let out = answer(&mut e, "c2", id, FamilyAnswer::Going { eta_min: 20 }, T0.plus_millis(6 * MIN)).unwrap();
    assert!(matches!(&out.events[0].actor, Actor::Family(c) if c == "c2"));
    let family = &e.incident(id).unwrap().family;
    assert!(family.answered);
    assert_eq!(family.next_at, None, "nobody else is brought in");
    assert_eq!(family.contact("c2").unwrap().answer, Some(FamilyAnswer::Going { eta_min: 20 }));
    assert!(told(&run_to(&mut e, T0.plus_millis(30 * MIN))).iter().all(|(c, _)| c != "c3"), "the neighbour is left be");

    let mut out = Outbox::default();
    e.dispatcher_acts(
        "wang",
        id,
        DispatcherAction::FalseAlarm { reason: "老人误按".into() },
        T0.plus_millis(31 * MIN),
        &mut out,
    )
    .unwrap();
    let mut heard = told(&out);
    heard.sort();
    assert_eq!(heard, [("c1".to_string(), "ended"), ("c2".to_string(), "ended")]);
}

#[test]
fn cannot_help_brings_in_the_next_contact_at_once() {
    let mut e = engine();
    let (id, _) = press(&mut e, EventType::Sos, "m-1", T0);
    answer(&mut e, "c1", id, FamilyAnswer::CannotHelp, T0.plus_millis(MIN)).unwrap();
    let out = run_to(&mut e, T0.plus_millis(MIN));
    assert_eq!(told(&out), [("c2".to_string(), "emergency")], "not five minutes later");
    assert!(!e.incident(id).unwrap().family.answered);
}

#[test]
fn she_is_fine_alarms_for_a_dispatcher_to_check() {
    let mut e = engine();
    let (id, _) = press(&mut e, EventType::Sos, "m-1", T0);
    let mut out = Outbox::default();
    let seen = e.incident(id).unwrap().alarm.unwrap().raised_seq;
    e.dispatcher_acts("wang", id, DispatcherAction::Acknowledge { alarm: Some(seen) }, T0, &mut out).unwrap();
    assert_eq!(e.incident(id).unwrap().alarm, None);

    let out = answer(&mut e, "c1", id, FamilyAnswer::Fine, T0.plus_millis(2 * MIN)).unwrap();
    let alarm = e.incident(id).unwrap().alarm.expect("a person must look");
    assert_eq!((alarm.need, alarm.level), (Need::FamilySaysFine, AlarmLevel::Urgent));
    assert_eq!(out.deltas.last().unwrap().alarm, Some(alarm), "consoles are shown it at once");
    assert_eq!(out.deltas.last().unwrap().family.contact("c1").unwrap().answer, Some(FamilyAnswer::Fine));

    // Saying it twice changes nothing; a dispatcher's acknowledgement silences it.
    assert!(answer(&mut e, "c1", id, FamilyAnswer::Fine, T0.plus_millis(3 * MIN)).unwrap().events.is_empty());
    let mut out = Outbox::default();
    e.dispatcher_acts("wang", id, DispatcherAction::Acknowledge { alarm: Some(alarm.raised_seq) }, T0, &mut out)
        .unwrap();
    assert_eq!(e.incident(id).unwrap().alarm, None);
}

#[test]
fn a_dead_notification_brings_in_the_next_contact_and_alarms() {
    let mut e = engine();
    let (id, out) = press(&mut e, EventType::Sos, "m-1", T0);
    let key = out.notifications[0].key.clone();
    let mut out = Outbox::default();
    e.family_delivery(id, "c1", &key, Delivery::Sent, T0.plus_millis(1_000), &mut out).unwrap();
    assert_eq!(e.incident(id).unwrap().family.contact("c1").unwrap().delivery, Some(Delivery::Sent));
    // A report about a notification that is not the contact's latest changes nothing.
    let mut out = Outbox::default();
    e.family_delivery(id, "c1", "n999999", Delivery::Dead, T0.plus_millis(2_000), &mut out).unwrap();
    assert!(out.events.is_empty());

    let mut out = Outbox::default();
    e.family_delivery(id, "c1", &key, Delivery::Dead, T0.plus_millis(MIN), &mut out).unwrap();
    let incident = e.incident(id).unwrap();
    assert_eq!(incident.family.contact("c1").unwrap().delivery, Some(Delivery::Dead));
    assert_eq!(incident.alarm.map(|a| a.need), Some(Need::NewEmergency), "the more urgent alarm stays up");
    assert_eq!(told(&run_to(&mut e, T0.plus_millis(MIN))), [("c2".to_string(), "emergency")], "the son, now");
    // Going backwards is refused quietly: a late "sent" for a dead one changes nothing.
    let mut out = Outbox::default();
    e.family_delivery(id, "c1", &key, Delivery::Sent, T0.plus_millis(2 * MIN), &mut out).unwrap();
    assert!(out.events.is_empty());
}

#[test]
fn a_service_request_is_low_priority_news_that_waits_out_quiet_hours() {
    // The son alone takes service news here, and it is 23:30 in Kunming.
    let mut r = registry();
    r.elders[0].profile.contacts[0].service_news = false;
    let mut e = Engine::new(Policy::default(), r, Resume::default());
    let night = Timestamp(1_763_047_800_000); // 2025-11-13 15:30 UTC = 23:30 UTC+8
    let (id, out) = press(&mut e, EventType::Service, "m-1", night);
    assert_eq!(told(&out), [("c2".to_string(), "service_request")], "the first contact who takes it");
    let n = &out.notifications[0];
    assert_eq!(n.priority, NoticePriority::Low);
    assert_eq!(n.not_before, Timestamp(1_763_074_800_000), "07:00 the next morning, local");
    assert_eq!(e.incident(id).unwrap().family.next_at, None, "low-priority news brings in nobody else");

    // It becomes an emergency: that goes at once, to the contact told, and the search starts.
    let (same, out) = press(&mut e, EventType::Sos, "m-2", night.plus_millis(10_000));
    assert_eq!(same, id);
    assert_eq!(told(&out), [("c2".to_string(), "emergency")]);
    assert_eq!(out.notifications[0].not_before, night.plus_millis(10_000));
    assert_eq!(e.incident(id).unwrap().family.next_at, Some(night.plus_millis(10_000 + 5 * MIN)));
}

#[test]
fn nobody_who_takes_service_news_hears_none() {
    let mut r = registry();
    for c in &mut r.elders[0].profile.contacts {
        c.service_news = false;
    }
    let mut e = Engine::new(Policy::default(), r, Resume::default());
    let (_, out) = press(&mut e, EventType::Service, "m-1", T0);
    assert!(out.notifications.is_empty());
}

#[test]
fn a_contact_answers_for_their_own_elder_only() {
    let mut r = registry();
    r.elders.push(Elder { id: ElderId::parse("e-2").unwrap(), name: "赵伯".into(), ..r.elders[0].clone() });
    let mut e = Engine::new(Policy::default(), r, Resume::default());
    let (id, _) = press(&mut e, EventType::Sos, "m-1", T0);
    let other = ElderId::parse("e-2").unwrap();
    let mut out = Outbox::default();
    let refused = e.family_answers(&other, "c1", id, FamilyAnswer::Fine, T0, &mut out);
    assert_eq!(refused, Err(CommandError::UnknownIncident(id)), "told no more than that it is not open");
    assert_eq!(
        e.family_answers(&elder(), "c9", id, FamilyAnswer::Seen, T0, &mut out),
        Err(CommandError::UnknownIncident(id)),
        "a contact the elder does not have"
    );
    assert_eq!(
        e.family_answers(&elder(), "c1", id, FamilyAnswer::Going { eta_min: 0 }, T0, &mut out).map_err(|e| e.code()),
        Err("out_of_range")
    );
    assert!(out.events.is_empty(), "nothing changes on a refusal");
}

#[test]
fn contacts_without_ids_are_named_by_position_and_repeats_are_refused() {
    let e = engine();
    let ids: Vec<_> =
        ["c1", "c2", "c3"].iter().map(|c| e.family_contact(&elder(), c).map(|c| c.name.clone())).collect();
    assert_eq!(ids, [Some("王丽".into()), Some("王军".into()), Some("李阿姨".into())]);
    let mut r = registry();
    r.elders[0].profile.contacts[1].id = "c1".into();
    assert!(matches!(r.check(), Err(RegistryError::Duplicate(what)) if what.contains("contact")));
}

#[test]
fn replaying_the_log_gives_the_familys_side_of_the_row() {
    let mut e = engine();
    let (id, first) = press(&mut e, EventType::Sos, "m-1", T0);
    let mut events = first.events.clone();
    events.extend(run_to(&mut e, T0.plus_millis(5 * MIN)).events);
    events.extend(answer(&mut e, "c2", id, FamilyAnswer::Seen, T0.plus_millis(6 * MIN)).unwrap().events);
    let opened = &events[0];
    let mut replay =
        Incident::open(opened, dev(), elder(), None, &Policy::default()).expect("the first event opens it");
    for ev in &events[1..] {
        replay.apply(ev, &Policy::default());
    }
    assert_eq!(replay, *e.incident(id).unwrap());
    assert_eq!(replay.family.contacts.len(), 2);
}
