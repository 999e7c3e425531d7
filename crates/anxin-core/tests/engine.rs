//! The engine's decisions, with time handed in: locating, matching, joining, deduplicating.

use anxin_core::*;

const T0: Timestamp = Timestamp(1_763_000_000_000);

fn c(lat: f64, lon: f64) -> Coordinates {
    Coordinates::new(lat, lon).unwrap()
}

fn registry() -> Registry {
    Registry {
        elders: vec![Elder {
            id: ElderId::parse("e-1").unwrap(),
            name: "长者".into(),
            address: "西山区".into(),
            home: c(25.0, 102.68),
            phone: None,
            notes: String::new(),
        }],
        devices: vec![Device { id: DeviceId::parse("d-1").unwrap(), elder_id: ElderId::parse("e-1").unwrap() }],
        stations: vec![Station {
            id: StationId::parse("s-1").unwrap(),
            name: "站".into(),
            position: c(25.0, 102.69),
            phone: None,
            service_circle_min: None,
        }],
        responders: vec![
            Responder {
                id: ResponderId::parse("r-home").unwrap(),
                name: "near home".into(),
                station_id: StationId::parse("s-1").unwrap(),
                phone: None,
                position: c(25.001, 102.68),
                on_duty: true,
                mode: TravelMode::Ebike,
                skills: vec!["first_aid".into()],
                position_at: None,
                token_sha256: None,
            },
            Responder {
                id: ResponderId::parse("r-park").unwrap(),
                name: "near the park".into(),
                station_id: StationId::parse("s-1").unwrap(),
                phone: None,
                position: c(25.02, 102.70),
                on_duty: true,
                // About 2.9 km from home: inside the 15-minute circle by car, not by e-bike.
                mode: TravelMode::Car,
                skills: vec!["first_aid".into()],
                position_at: None,
                token_sha256: None,
            },
            Responder {
                id: ResponderId::parse("r-off").unwrap(),
                name: "off duty, next door".into(),
                station_id: StationId::parse("s-1").unwrap(),
                phone: None,
                position: c(25.0, 102.68),
                on_duty: false,
                mode: TravelMode::Ebike,
                skills: vec!["first_aid".into()],
                position_at: None,
                token_sha256: None,
            },
        ],
    }
}

fn dev() -> DeviceId {
    DeviceId::parse("d-1").unwrap()
}

fn event(msg: &str, kind: EventType, fix: Option<Fix>) -> DeviceEvent {
    let fix = fix.map_or(FixReport::Absent, FixReport::Valid);
    DeviceEvent { msg_id: MessageId::parse(msg).unwrap(), event: kind, device_ts: T0, fix }
}

fn engine() -> Engine {
    Engine::new(Policy::default(), registry(), Resume::default())
}

#[test]
fn a_plausible_fix_is_used_and_the_nearest_on_duty_responder_is_offered() {
    let mut e = engine();
    let mut out = Outbox::default();
    let fix = Fix { at: c(25.0195, 102.6995), accuracy_m: Some(10.0) }; // at the park
    let outcome = e.handle_device_event(&dev(), event("m", EventType::Sos, Some(fix)), T0, &mut out).unwrap();
    assert!(matches!(outcome, Outcome::Opened(_)));
    let incident = &out.incidents[0];
    assert_eq!(incident.location.source, LocationSource::Device);
    assert_eq!(incident.responder.as_ref().unwrap().id.as_str(), "r-park");
    assert!(!e.matcher().is_available(&ResponderId::parse("r-park").unwrap()));
    assert_eq!(out.commands.len(), 1);
    assert_eq!(out.messages.len(), 1);
    assert_eq!(out.deltas.last().unwrap().seq, out.events.last().unwrap().seq);
}

#[test]
fn without_a_fix_the_home_is_used_and_off_duty_responders_are_never_offered() {
    let mut e = engine();
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let incident = &out.incidents[0];
    assert_eq!(incident.location.source, LocationSource::Home);
    assert_eq!(incident.location.at, c(25.0, 102.68));
    assert_eq!(incident.responder.as_ref().unwrap().id.as_str(), "r-home", "r-off is nearer but off duty");
}

#[test]
fn implausible_fixes_fall_back_to_home_and_say_why() {
    let p = Policy::default();
    let home = c(25.0, 102.68);
    let cases = [
        (Fix { at: c(0.0, 0.0), accuracy_m: Some(5.0) }, FixRejection::NullIsland),
        (Fix { at: c(25.0, 102.68), accuracy_m: Some(2_000.0) }, FixRejection::TooInaccurate),
        (Fix { at: c(39.9, 116.4), accuracy_m: Some(5.0) }, FixRejection::TooFarFromHome),
    ];
    for (fix, why) in cases {
        let l = engine::locate(&p, home, FixReport::Valid(fix));
        assert_eq!((l.source, l.fix_rejected, l.at), (LocationSource::Home, Some(why), home));
    }
    let ok = engine::locate(&p, home, FixReport::Valid(Fix { at: c(25.001, 102.681), accuracy_m: None }));
    assert_eq!(engine::locate(&p, home, FixReport::Malformed).fix_rejected, Some(FixRejection::Malformed));
    assert_eq!(ok.source, LocationSource::Device);
}

#[test]
fn a_device_clock_far_off_is_not_trusted() {
    let mut e = engine();
    let mut out = Outbox::default();
    let mut ev = event("m", EventType::Sos, None);
    ev.device_ts = Timestamp(0); // 1970: a device that lost its clock
    e.handle_device_event(&dev(), ev, T0, &mut out).unwrap();
    assert_eq!(out.incidents[0].pressed_at, T0);
    let mut e = engine();
    let mut out = Outbox::default();
    let mut ev = event("m", EventType::Sos, None);
    ev.device_ts = T0.plus_millis(-30_000);
    e.handle_device_event(&dev(), ev, T0, &mut out).unwrap();
    assert_eq!(out.incidents[0].pressed_at, T0.plus_millis(-30_000), "a clock 30 s behind is believed");
}

#[test]
fn duplicates_change_nothing_until_the_window_passes() {
    let mut e = engine();
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let mut again = Outbox::default();
    assert_eq!(e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut again), Ok(Outcome::Duplicate));
    assert!(again.events.is_empty() && again.messages.is_empty() && again.deltas.is_empty());
    // After the window, memory forgets (the store's key still refuses a second row).
    let later = T0.plus_millis(Policy::default().dedup_window_ms + 1);
    e.expire(later);
    assert!(matches!(
        e.handle_device_event(&dev(), event("m", EventType::Sos, None), later, &mut again),
        Ok(Outcome::Joined(_))
    ));
}

#[test]
fn unknown_devices_are_refused_and_nothing_is_produced() {
    let mut e = engine();
    let mut out = Outbox::default();
    let stranger = DeviceId::parse("nobody").unwrap();
    assert_eq!(
        e.handle_device_event(&stranger, event("m", EventType::Sos, None), T0, &mut out),
        Err(Refusal::UnknownDevice(stranger.clone()))
    );
    assert!(e.handle_unreadable(&stranger, "x", MessageId::parse("raw-1").unwrap(), T0, &mut out).is_err());
    assert!(out.is_empty());
}

#[test]
fn heartbeats_cancels_and_service_requests() {
    let mut e = engine();
    let mut out = Outbox::default();
    assert_eq!(e.handle_device_event(&dev(), event("h", EventType::Heartbeat, None), T0, &mut out), Ok(Outcome::Noted));
    assert_eq!(e.handle_device_event(&dev(), event("c0", EventType::Cancel, None), T0, &mut out), Ok(Outcome::Noted));
    assert!(out.events.is_empty(), "nothing open, nothing to cancel");
    let Ok(Outcome::Opened(id)) = e.handle_device_event(&dev(), event("s", EventType::Service, None), T0, &mut out)
    else {
        panic!()
    };
    let service = e.open_incident_for(&dev()).unwrap();
    assert_eq!((service.kind, service.state), (IncidentKind::Service, IncidentState::AwaitingDispatcher));
    assert!(service.responder.is_none(), "a service request is not sent out as an emergency");
    assert_eq!(
        e.handle_device_event(&dev(), event("c1", EventType::Cancel, None), T0, &mut out),
        Ok(Outcome::Joined(id))
    );
    assert!(e.open_incident_for(&dev()).unwrap().cancel_requested, "cancel is a request; the incident stays open");
    let mut again = Outbox::default();
    assert_eq!(
        e.handle_device_event(&dev(), event("c1", EventType::Cancel, None), T0, &mut again),
        Ok(Outcome::Duplicate)
    );
    assert!(again.commands.is_empty(), "a resent cancel is not answered with help_coming");
}

#[test]
fn an_unreadable_message_raises_an_incident_for_a_dispatcher() {
    let mut e = engine();
    let mut out = Outbox::default();
    let fp = MessageId::parse("raw-abc").unwrap();
    let outcome = e.handle_unreadable(&dev(), "payload is not a JSON object", fp.clone(), T0, &mut out).unwrap();
    assert!(matches!(outcome, Outcome::Opened(_)));
    let i = &out.incidents[0];
    assert_eq!((i.kind, i.state), (IncidentKind::Unreadable, IncidentState::AwaitingDispatcher));
    assert!(i.problem.as_deref().unwrap().contains("not a JSON object"));
    assert_eq!(out.messages[0].event, None);
    let mut again = Outbox::default();
    assert_eq!(e.handle_unreadable(&dev(), "same bytes again", fp, T0, &mut again), Ok(Outcome::Duplicate));
}

#[test]
fn the_snapshot_lists_the_most_urgent_first() {
    let mut reg = registry();
    reg.elders.push(Elder { id: ElderId::parse("e-2").unwrap(), ..reg.elders[0].clone() });
    reg.devices.push(Device { id: DeviceId::parse("d-2").unwrap(), elder_id: ElderId::parse("e-2").unwrap() });
    let mut e = Engine::new(Policy::default(), reg, Resume::default());
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("s", EventType::Service, None), T0, &mut out).unwrap();
    let d2 = DeviceId::parse("d-2").unwrap();
    e.handle_device_event(&d2, event("f", EventType::Fall, None), T0.plus_millis(1000), &mut out).unwrap();
    let kinds: Vec<_> = e.snapshot().iter().map(|v| v.kind).collect();
    assert_eq!(kinds, vec![IncidentKind::Fall, IncidentKind::Service]);
}

#[test]
fn a_resent_press_is_told_again_that_help_is_coming() {
    let mut e = engine();
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let mut again = Outbox::default();
    assert_eq!(e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut again), Ok(Outcome::Duplicate));
    assert!(again.events.is_empty() && again.messages.is_empty() && again.deltas.is_empty(), "nothing changes");
    assert_eq!(again.commands, out.commands, "but the device hears the same answer again");
}

#[test]
fn an_sos_during_a_service_request_becomes_an_emergency_and_is_offered() {
    let mut e = engine();
    let mut out = Outbox::default();
    let Ok(Outcome::Opened(id)) = e.handle_device_event(&dev(), event("s", EventType::Service, None), T0, &mut out)
    else {
        panic!()
    };
    assert_eq!(e.open_incident_for(&dev()).unwrap().dispatcher_needed, Some(DispatcherNeeded::ServiceRequest));
    let mut out = Outbox::default();
    assert_eq!(e.handle_device_event(&dev(), event("f", EventType::Fall, None), T0, &mut out), Ok(Outcome::Joined(id)));
    let i = e.open_incident_for(&dev()).unwrap();
    assert_eq!((i.kind, i.state, i.dispatcher_needed), (IncidentKind::Fall, IncidentState::Offered, None));
    assert_eq!(i.responder.as_ref().unwrap().id.as_str(), "r-home");
    let changes: Vec<_> = out.events.iter().map(|e| &e.change).collect();
    assert!(
        matches!(changes[1], Change::KindChanged { from: IncidentKind::Service, to: IncidentKind::Fall }),
        "{changes:?}"
    );
    assert!(matches!(changes[2], Change::Offered { .. }), "{changes:?}");
}

#[test]
fn nobody_in_range_climbs_to_the_station_then_a_dispatcher_with_the_number_to_call() {
    let policy = Policy { max_offer_distance_m: 10.0, ..Policy::default() };
    let mut e = Engine::new(policy.clone(), registry(), Resume::default());
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let i = e.open_incident_for(&dev()).unwrap();
    assert_eq!((i.state, i.dispatcher_needed, i.ladder.rung), (IncidentState::StationAlerted, None, Rung::Station));
    assert_eq!(i.station.as_ref().unwrap().id.as_str(), "s-1");
    assert!(out.events.iter().any(|e| matches!(e.change, Change::NobodyInRange { .. })));
    let station_deadline = T0.plus_millis(policy.station_timeout_ms);
    assert_eq!(e.next_deadline(), Some(station_deadline));

    e.tick(station_deadline.plus_millis(-1), &mut out);
    assert_eq!(e.open_incident_for(&dev()).unwrap().state, IncidentState::StationAlerted, "not yet");
    e.tick(station_deadline, &mut out);
    let i = e.open_incident_for(&dev()).unwrap();
    assert_eq!(
        (i.state, i.dispatcher_needed),
        (IncidentState::AwaitingDispatcher, Some(DispatcherNeeded::NobodyGoing))
    );
    assert_eq!(i.ladder.emergency_number.as_deref(), Some("120"));

    // Reminders repeat until a person acts.
    let mut t = station_deadline;
    for n in 1..=3 {
        t = t.plus_millis(policy.reminder_interval_ms);
        assert_eq!(e.next_deadline(), Some(t));
        e.tick(t, &mut out);
        assert_eq!(e.open_incident_for(&dev()).unwrap().ladder.reminders, n);
    }
    let id = e.open_incident_for(&dev()).unwrap().id;
    e.dispatcher_acts("王调度", id, DispatcherAction::Acknowledge, t, &mut out).unwrap();
    assert_eq!(e.next_deadline(), None, "acknowledged: no more reminders");
}

fn offered_to(e: &Engine) -> Option<String> {
    let i = e.open_incident_for(&dev())?;
    (i.state == IncidentState::Offered).then(|| i.responder.as_ref().unwrap().id.to_string())
}

fn rid(s: &str) -> ResponderId {
    ResponderId::parse(s).unwrap()
}

#[test]
fn a_decline_goes_to_the_next_responder_and_never_back() {
    let mut e = engine();
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let id = e.open_incident_for(&dev()).unwrap().id;
    assert_eq!(offered_to(&e).as_deref(), Some("r-home"));
    e.responder_acts(&rid("r-home"), id, ResponderAction::Decline, T0.plus_millis(5_000), &mut out).unwrap();
    assert_eq!(offered_to(&e).as_deref(), Some("r-park"), "the next nearest on duty");
    assert!(e.matcher().is_available(&rid("r-home")), "who declined is free for other jobs");
    e.responder_acts(&rid("r-park"), id, ResponderAction::Decline, T0.plus_millis(9_000), &mut out).unwrap();
    let i = e.open_incident_for(&dev()).unwrap();
    assert_eq!(i.state, IncidentState::StationAlerted, "nobody untried is left: the station");
    assert_eq!(i.ladder.tried, vec![rid("r-home"), rid("r-park")]);
}

#[test]
fn illegal_steps_are_refused_and_change_nothing() {
    let mut e = engine();
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let id = e.open_incident_for(&dev()).unwrap().id;
    let before = e.open_incident_for(&dev()).unwrap().clone();
    let mut none = Outbox::default();
    assert_eq!(
        e.responder_acts(&rid("r-home"), id, ResponderAction::OnScene, T0, &mut none),
        Err(CommandError::IllegalTransition { from: "offered", to: "on_scene" })
    );
    assert_eq!(
        e.responder_acts(&rid("r-park"), id, ResponderAction::Accept, T0, &mut none),
        Err(CommandError::NotYours { incident: id, responder: rid("r-park") })
    );
    assert_eq!(
        e.dispatcher_acts("d", id, DispatcherAction::Close { outcome: "x".into() }, T0, &mut none),
        Err(CommandError::IllegalTransition { from: "offered", to: "closed" })
    );
    assert_eq!(
        e.dispatcher_acts("d", id, DispatcherAction::Cancel { reason: " ".into() }, T0, &mut none),
        Err(CommandError::MissingReason)
    );
    assert_eq!(
        e.dispatcher_acts("d", id, DispatcherAction::Assign { responder: rid("r-off") }, T0, &mut none),
        Err(CommandError::OffDuty(rid("r-off")))
    );
    assert!(none.events.is_empty() && none.incidents.is_empty());
    assert_eq!(e.open_incident_for(&dev()).unwrap(), &before);
}

#[test]
fn an_accepted_job_must_reach_the_scene_in_time_or_the_dispatcher_is_re_alarmed() {
    let p = Policy::default();
    let mut e = engine();
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Fall, None), T0, &mut out).unwrap();
    let id = e.open_incident_for(&dev()).unwrap().id;
    e.responder_acts(&rid("r-home"), id, ResponderAction::Accept, T0.plus_millis(10_000), &mut out).unwrap();
    let due = T0.plus_millis(10_000 + p.on_scene_within_ms);
    assert_eq!(e.next_deadline(), Some(due));
    e.tick(due, &mut out);
    let i = e.open_incident_for(&dev()).unwrap();
    assert_eq!((i.state, i.dispatcher_needed), (IncidentState::Accepted, Some(DispatcherNeeded::OnSceneOverdue)));
    e.tick(due.plus_millis(p.reminder_interval_ms), &mut out);
    assert_eq!(e.open_incident_for(&dev()).unwrap().ladder.reminders, 1, "reminded until someone acts");
    e.responder_acts(&rid("r-home"), id, ResponderAction::OnScene, due.plus_millis(70_000), &mut out).unwrap();
    let i = e.open_incident_for(&dev()).unwrap();
    assert_eq!((i.state, i.dispatcher_needed, i.ladder.remind_at), (IncidentState::OnScene, None, None));
}

#[test]
fn a_cancel_press_is_verified_by_a_dispatcher_who_closes_it_with_a_reason() {
    let mut e = engine();
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let id = e.open_incident_for(&dev()).unwrap().id;
    e.handle_device_event(&dev(), event("c", EventType::Cancel, None), T0.plus_millis(20_000), &mut out).unwrap();
    assert!(e.open_incident_for(&dev()).unwrap().cancel_requested, "requested, not done: a person verifies");
    let mut out = Outbox::default();
    let reason = "called back: pressed by mistake".to_string();
    e.dispatcher_acts(
        "王调度",
        id,
        DispatcherAction::Cancel { reason: reason.clone() },
        T0.plus_millis(60_000),
        &mut out,
    )
    .unwrap();
    assert!(e.open_incident_for(&dev()).is_none(), "closed incidents leave the open set");
    assert!(e.matcher().is_available(&rid("r-home")), "the offer was withdrawn");
    let last = out.deltas.last().unwrap();
    assert_eq!((last.state, last.outcome.as_deref()), (IncidentState::Cancelled, Some(reason.as_str())));
    let actors: Vec<_> = out.events.iter().map(|e| (&e.actor, &e.change)).collect();
    assert!(matches!(actors[0], (Actor::Dispatcher(_), Change::OfferWithdrawn { .. })), "{actors:?}");
    assert!(matches!(actors[1], (Actor::Dispatcher(d), Change::Cancelled { .. }) if d == "王调度"), "{actors:?}");
    // The device may press again: a new incident.
    let mut out = Outbox::default();
    let again = e.handle_device_event(&dev(), event("m2", EventType::Sos, None), T0.plus_millis(90_000), &mut out);
    assert!(matches!(again, Ok(Outcome::Opened(n)) if n != id));
}

#[test]
fn a_dispatcher_reassigns_and_the_first_responder_is_freed() {
    let mut e = engine();
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let id = e.open_incident_for(&dev()).unwrap().id;
    e.responder_acts(&rid("r-home"), id, ResponderAction::Accept, T0, &mut out).unwrap();
    e.dispatcher_acts("d", id, DispatcherAction::Assign { responder: rid("r-park") }, T0.plus_millis(1), &mut out)
        .unwrap();
    let i = e.open_incident_for(&dev()).unwrap();
    assert_eq!((i.state, i.responder.as_ref().unwrap().id.as_str()), (IncidentState::Accepted, "r-park"));
    assert!(e.matcher().is_available(&rid("r-home")));
    assert!(!e.matcher().is_available(&rid("r-park")));
    assert!(e.job_view(&rid("r-home"), T0).is_none());
    assert_eq!(e.job_view(&rid("r-park"), T0).unwrap().incident_id, id);
    // Assigning them again changes nothing (it does not set an en-route job back).
    e.responder_acts(&rid("r-park"), id, ResponderAction::EnRoute, T0.plus_millis(2), &mut out).unwrap();
    let mut again = Outbox::default();
    e.dispatcher_acts("d", id, DispatcherAction::Assign { responder: rid("r-park") }, T0.plus_millis(3), &mut again)
        .unwrap();
    assert!(again.events.is_empty());
    assert_eq!(e.open_incident_for(&dev()).unwrap().state, IncidentState::EnRoute);
    // Off duty with a job is refused; off duty with only an offer declines it.
    assert!(matches!(e.set_duty(&rid("r-park"), false, T0, &mut out), Err(CommandError::Busy { .. })));
}

fn responder_at(id: &str, lat: f64, lon: f64, mode: TravelMode, skills: &[&str]) -> Responder {
    Responder {
        id: rid(id),
        name: id.into(),
        station_id: StationId::parse("s-1").unwrap(),
        phone: None,
        position: c(lat, lon),
        on_duty: true,
        mode,
        skills: skills.iter().map(|s| s.to_string()).collect(),
        position_at: None,
        token_sha256: None,
    }
}

fn with_responders(responders: Vec<Responder>, circle: Option<u32>) -> Engine {
    let mut reg = registry();
    reg.responders = responders;
    reg.stations[0].service_circle_min = circle;
    Engine::new(Policy::default(), reg, Resume::default())
}

#[test]
fn the_soonest_arrival_is_offered_not_the_nearest() {
    // A walker 600 m away needs about 11 minutes; an e-bike 1.5 km away about 8.
    let mut e = with_responders(
        vec![
            responder_at("walker", 25.0054, 102.68, TravelMode::Foot, &["first_aid"]),
            responder_at("rider", 25.0135, 102.68, TravelMode::Ebike, &["first_aid"]),
        ],
        None,
    );
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    assert_eq!(offered_to(&e).as_deref(), Some("rider"));
    let eta = out.commands.iter().find_map(|(_, c)| match c {
        DeviceCommand::HelpComing { eta_min, .. } => *eta_min,
    });
    assert_eq!(eta, Some(9), "the elder is told the rider's time, rounded up");
}

#[test]
fn a_fall_goes_only_to_someone_with_first_aid() {
    let mut e = with_responders(
        vec![
            responder_at("untrained", 25.001, 102.68, TravelMode::Ebike, &[]),
            responder_at("trained", 25.005, 102.68, TravelMode::Ebike, &["first_aid"]),
        ],
        None,
    );
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("f", EventType::Fall, None), T0, &mut out).unwrap();
    assert_eq!(offered_to(&e).as_deref(), Some("trained"));
    let mut other = with_responders(vec![responder_at("untrained", 25.001, 102.68, TravelMode::Ebike, &[])], None);
    other.handle_device_event(&dev(), event("s", EventType::Sos, None), T0, &mut out).unwrap();
    assert_eq!(offered_to(&other).as_deref(), Some("untrained"), "an SOS needs no particular skill");
}

#[test]
fn the_service_circle_bounds_who_is_offered_and_each_station_may_set_its_own() {
    // 3 km on foot is about 54 minutes: outside the default 15-minute circle.
    let far_walker = || vec![responder_at("far", 25.027, 102.68, TravelMode::Foot, &["first_aid"])];
    let mut e = with_responders(far_walker(), None);
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    assert_eq!(e.open_incident_for(&dev()).unwrap().state, IncidentState::StationAlerted);
    let mut wide = with_responders(far_walker(), Some(60));
    wide.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    assert_eq!(offered_to(&wide).as_deref(), Some("far"), "a 60-minute circle reaches them");
}

#[test]
fn a_press_after_help_was_given_is_a_new_emergency() {
    let mut e = engine();
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let first = e.open_incident_for(&dev()).unwrap().id;
    for (step, t) in [(ResponderAction::Accept, 1), (ResponderAction::OnScene, 2)] {
        e.responder_acts(&rid("r-home"), first, step, T0.plus_millis(t), &mut out).unwrap();
    }
    e.responder_acts(
        &rid("r-home"),
        first,
        ResponderAction::Resolve { outcome: "ok".into() },
        T0.plus_millis(3),
        &mut out,
    )
    .unwrap();
    let mut out = Outbox::default();
    let again = e.handle_device_event(&dev(), event("m2", EventType::Fall, None), T0.plus_millis(600_000), &mut out);
    let Ok(Outcome::Opened(second)) = again else { panic!("{again:?}") };
    assert_ne!(first, second);
    assert_eq!(out.deltas[0].id, first);
    assert_eq!(out.deltas[0].state, IncidentState::Closed, "the resolved incident is closed, saying why");
    assert_eq!(offered_to(&e).as_deref(), Some("r-home"), "and the new one is offered at once");
}

#[test]
fn assigning_the_responder_who_holds_the_offer_makes_it_their_job() {
    let mut e = engine();
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let id = e.open_incident_for(&dev()).unwrap().id;
    e.dispatcher_acts("d", id, DispatcherAction::Assign { responder: rid("r-home") }, T0, &mut out).unwrap();
    let i = e.open_incident_for(&dev()).unwrap();
    assert_eq!((i.state, i.ladder.tried.len()), (IncidentState::Accepted, 0), "not withdrawn, not 'tried'");
    assert!(!e.matcher().is_available(&rid("r-home")));
}

#[test]
fn a_stale_phone_fix_falls_back_to_the_responders_station() {
    let p = Policy::default();
    let fresh = || {
        let mut e =
            with_responders(vec![responder_at("phone", 25.05, 102.75, TravelMode::Ebike, &["first_aid"])], None);
        let mut out = Outbox::default();
        // The phone reports a fix next door to the elder.
        e.responder_moved(&rid("phone"), c(25.0005, 102.68), T0, &mut out).unwrap();
        e
    };
    let mut e = fresh();
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0.plus_millis(60_000), &mut out).unwrap();
    let near = e.open_incident_for(&dev()).unwrap().responder.as_ref().unwrap().distance_m;
    assert!(near < 100.0, "a fresh fix counts: {near} m");

    let mut e = fresh();
    let later = T0.plus_millis(p.max_fix_age_ms);
    assert_eq!(e.next_deadline(), Some(later), "the engine wakes when the fix goes stale");
    let mut out = Outbox::default();
    e.tick(later, &mut out);
    assert_eq!(e.responder(&rid("phone")).unwrap().position, c(25.0, 102.69), "back at the station");
    assert_eq!(out.roster.len(), 1, "and stored so");
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), later, &mut out).unwrap();
    let d = e.open_incident_for(&dev()).unwrap().responder.as_ref().unwrap().distance_m;
    assert!((d - c(25.0, 102.69).distance_m(c(25.0, 102.68))).abs() < 1.0, "measured from the station: {d} m");
}

#[test]
fn a_phone_fix_keeps_its_age_across_a_restart() {
    let mut reg = registry();
    reg.responders[0].position_at = Some(T0);
    let e = Engine::new(Policy::default(), reg, Resume::default());
    assert_eq!(e.next_deadline(), Some(T0.plus_millis(Policy::default().max_fix_age_ms)));
}
