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
            profile: Default::default(),
        }],
        devices: vec![Device {
            id: DeviceId::parse("d-1").unwrap(),
            elder_id: ElderId::parse("e-1").unwrap(),
            model: None,
            sim: None,
        }],
        stations: vec![Station {
            id: StationId::parse("s-1").unwrap(),
            name: "站".into(),
            position: c(25.0, 102.69),
            phone: None,
            service_circle_min: None,
            zone: Default::default(),
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
                provider_id: None,
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
                provider_id: None,
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
                provider_id: None,
            },
        ],
        staff: vec![],
        providers: vec![],
    }
}

fn dev() -> DeviceId {
    DeviceId::parse("d-1").unwrap()
}

fn event(msg: &str, kind: EventType, fix: Option<Fix>) -> DeviceEvent {
    let fix = fix.map_or(FixReport::Absent, FixReport::Valid);
    DeviceEvent { msg_id: MessageId::parse(msg).unwrap(), event: kind, device_ts: T0, fix, health: Default::default() }
}

fn engine() -> Engine {
    Engine::new(Policy::default(), registry(), Resume::default())
}

/// The engine with every emergency offered to one responder at a time (the default offers
/// the soonest three at once), for the steps of a single offer.
fn one_at_a_time() -> Engine {
    let mut policy = Policy::default();
    for ladder in policy.ladders.values_mut() {
        ladder.parallel = 1;
    }
    Engine::new(policy, registry(), Resume::default())
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
    assert_eq!(incident.ladder.offers[0].responder_id.as_str(), "r-park");
    assert!(incident.responder.is_none(), "an offer is not a job");
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
    assert_eq!(incident.ladder.offers[0].responder_id.as_str(), "r-home", "r-off is nearer but off duty");
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
    e.handle_device_event(&dev(), event("n", EventType::Sos, None), T0, &mut again).unwrap();
    let named = |out: &Outbox| -> Vec<String> {
        out.commands
            .iter()
            .map(|(_, c)| match c {
                DeviceCommand::HelpComing { msg_id, .. } => msg_id.to_string(),
            })
            .collect()
    };
    assert_eq!(
        (named(&out), named(&again)),
        (vec!["m".to_string()], vec!["n".to_string()]),
        "each press answered by name"
    );
    let mut again = Outbox::default();
    assert_eq!(e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut again), Ok(Outcome::Duplicate));
    assert!(again.events.is_empty() && again.messages.is_empty() && again.deltas.is_empty());
    // A resend of the first, answered again, names the first: it says nothing of the second.
    assert_eq!(named(&again), ["m"]);
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
    let (mut e, d2) = with_a_neighbour(registry().responders, Policy::default());
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("s", EventType::Service, None), T0, &mut out).unwrap();
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
    assert_eq!(i.ladder.offers[0].responder_id.as_str(), "r-home");
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
    e.dispatcher_acts("王调度", id, DispatcherAction::Acknowledge { alarm: None }, t, &mut out).unwrap();
    assert_eq!(e.next_deadline(), None, "acknowledged: no more reminders");
}

fn offered_to(e: &Engine) -> Option<String> {
    let i = e.open_incident_for(&dev())?;
    (i.state == IncidentState::Offered).then(|| i.ladder.offers[0].responder_id.to_string())
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
    e.responder_acts(&rid("r-home"), id, ResponderAction::Decline { reason: None }, T0.plus_millis(5_000), &mut out)
        .unwrap();
    assert_eq!(offered_to(&e).as_deref(), Some("r-park"), "the next nearest on duty");
    assert!(e.matcher().is_available(&rid("r-home")), "who declined is free for other jobs");
    e.responder_acts(&rid("r-park"), id, ResponderAction::Decline { reason: None }, T0.plus_millis(9_000), &mut out)
        .unwrap();
    let i = e.open_incident_for(&dev()).unwrap();
    assert_eq!(i.state, IncidentState::StationAlerted, "nobody untried is left: the station");
    assert_eq!(i.ladder.tried, vec![rid("r-home"), rid("r-park")]);
}

#[test]
fn illegal_steps_are_refused_and_change_nothing() {
    let mut e = one_at_a_time();
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
    assert!(e.matcher().is_available(&rid("r-home")), "the offers were withdrawn");
    assert!(e.matcher().is_available(&rid("r-park")), "every one of them");
    let last = out.deltas.last().unwrap();
    assert_eq!((last.state, last.outcome.as_deref()), (IncidentState::Cancelled, Some(reason.as_str())));
    let actors: Vec<_> = out.events.iter().map(|e| (&e.actor, &e.change)).collect();
    let (withdrawn, cancelled) = actors.split_at(actors.len() - 1);
    assert_eq!(withdrawn.len(), 2, "the two on duty had the offer at once: {actors:?}");
    assert!(withdrawn.iter().all(|a| matches!(a, (Actor::Dispatcher(_), Change::OfferWithdrawn { .. }))), "{actors:?}");
    assert!(matches!(cancelled[0], (Actor::Dispatcher(d), Change::Cancelled { .. }) if d == "王调度"), "{actors:?}");
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
        provider_id: None,
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
    let mut e = one_at_a_time();
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
    let near = e.open_incident_for(&dev()).unwrap().ladder.offers[0].distance_m;
    assert!(near < 100.0, "a fresh fix counts: {near} m");

    let mut e = fresh();
    let later = T0.plus_millis(p.max_fix_age_ms);
    assert_eq!(e.next_deadline(), Some(later), "the engine wakes when the fix goes stale");
    let mut out = Outbox::default();
    e.tick(later, &mut out);
    assert_eq!(e.responder(&rid("phone")).unwrap().position, c(25.0, 102.69), "back at the station");
    assert_eq!(out.roster.len(), 1, "and stored so");
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), later, &mut out).unwrap();
    let d = e.open_incident_for(&dev()).unwrap().ladder.offers[0].distance_m;
    assert!((d - c(25.0, 102.69).distance_m(c(25.0, 102.68))).abs() < 1.0, "measured from the station: {d} m");
}

#[test]
fn a_phone_fix_keeps_its_age_across_a_restart() {
    let mut reg = registry();
    reg.responders[0].position_at = Some(T0);
    let e = Engine::new(Policy::default(), reg, Resume::default());
    assert_eq!(e.next_deadline(), Some(T0.plus_millis(Policy::default().max_fix_age_ms)));
}

fn with_policy(responders: Vec<Responder>, policy: Policy) -> Engine {
    let mut reg = registry();
    reg.responders = responders;
    Engine::new(policy, reg, Resume::default())
}

fn three_riders() -> Vec<Responder> {
    vec![
        responder_at("a", 25.001, 102.68, TravelMode::Ebike, &["first_aid"]),
        responder_at("b", 25.003, 102.68, TravelMode::Ebike, &["first_aid"]),
        responder_at("c", 25.005, 102.68, TravelMode::Ebike, &["first_aid"]),
    ]
}

fn parallel_sos(parallel: u32) -> Policy {
    let mut policy = Policy::default();
    policy.ladders.insert(IncidentKind::Sos, LadderPolicy { offers: 3, parallel, station: true });
    policy
}

fn live_offers(e: &Engine) -> Vec<String> {
    e.open_incident_for(&dev()).unwrap().ladder.offers.iter().map(|o| o.responder_id.to_string()).collect()
}

#[test]
fn parallel_offers_go_out_together_and_the_first_to_accept_wins() {
    let mut e = with_policy(three_riders(), parallel_sos(2));
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    assert_eq!(live_offers(&e), ["a", "b"], "the two soonest, nearest first");
    assert!(e.job_view(&rid("a"), T0).is_some() && e.job_view(&rid("b"), T0).is_some(), "both phones see it");
    let id = e.open_incident_for(&dev()).unwrap().id;

    let t = T0.plus_millis(5_000);
    let mut out = Outbox::default();
    e.responder_acts(&rid("b"), id, ResponderAction::Accept, t, &mut out).unwrap();
    let i = e.incident(id).unwrap();
    assert_eq!((i.state, i.responder.as_ref().map(|r| r.id.as_str())), (IncidentState::Accepted, Some("b")));
    assert!(i.ladder.offers.is_empty());
    assert!(
        out.events.iter().any(|ev| ev.change == Change::OfferWithdrawn { responder_id: rid("a") }),
        "the loser's offer is withdrawn, in the audit trail"
    );
    assert!(out.responders.contains(&rid("a")), "and the loser's phone is told");
    assert!(e.matcher().is_available(&rid("a")), "the loser is free again");
    assert!(e.job_view(&rid("a"), t).is_none());
    let late = e.responder_acts(&rid("a"), id, ResponderAction::Accept, t, &mut Outbox::default());
    assert!(matches!(late, Err(CommandError::NotYours { .. })), "a late accept is refused: {late:?}");
}

#[test]
fn by_default_an_emergency_goes_to_the_three_soonest_at_once() {
    for kind in [EventType::Sos, EventType::Fall] {
        let mut e = with_policy(three_riders(), Policy::default());
        let mut out = Outbox::default();
        e.handle_device_event(&dev(), event("m", kind, None), T0, &mut out).unwrap();
        assert_eq!(live_offers(&e), ["a", "b", "c"], "{kind:?}: all three at the first moment, nearest first");
        let id = e.open_incident_for(&dev()).unwrap().id;
        let mut out = Outbox::default();
        e.responder_acts(&rid("c"), id, ResponderAction::Accept, T0.plus_millis(20_000), &mut out).unwrap();
        let i = e.incident(id).unwrap();
        assert_eq!(i.responder.as_ref().map(|r| r.id.as_str()), Some("c"), "the first to accept, not the nearest");
        assert!(e.matcher().is_available(&rid("a")) && e.matcher().is_available(&rid("b")), "the others are free");
    }
}

/// A second elder (`e-2`, device `d-2`) living next to the first.
fn with_a_neighbour(responders: Vec<Responder>, policy: Policy) -> (Engine, DeviceId) {
    let mut reg = registry();
    reg.responders = responders;
    reg.elders.push(Elder { id: ElderId::parse("e-2").unwrap(), ..reg.elders[0].clone() });
    reg.devices.push(Device {
        id: DeviceId::parse("d-2").unwrap(),
        elder_id: ElderId::parse("e-2").unwrap(),
        model: None,
        sim: None,
    });
    (Engine::new(policy, reg, Resume::default()), DeviceId::parse("d-2").unwrap())
}

#[test]
fn an_emergency_with_nobody_free_takes_a_responder_from_anothers_extra_offers() {
    let (mut e, d2) = with_a_neighbour(three_riders(), Policy::default());
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    assert_eq!(live_offers(&e), ["a", "b", "c"], "all three are out on the first");
    let first = e.open_incident_for(&dev()).unwrap().id;

    let t = T0.plus_millis(2_000);
    let mut out = Outbox::default();
    e.handle_device_event(&d2, event("n", EventType::Sos, None), t, &mut out).unwrap();
    let second = e.open_incident_for(&d2).unwrap();
    let taken: Vec<_> = second.ladder.offers.iter().map(|o| o.responder_id.to_string()).collect();
    assert_eq!(taken, ["a"], "the soonest of the first's offers moves to the one with none");
    assert_eq!(second.state, IncidentState::Offered, "not up to the station");
    assert_eq!(live_offers(&e), ["b", "c"], "the first keeps two");
    let withdrawn = out.events.iter().find(|ev| ev.incident_id == first).unwrap();
    assert_eq!(withdrawn.change, Change::OfferWithdrawn { responder_id: rid("a") });
    assert_eq!(withdrawn.actor, Actor::Engine);
    assert_eq!(e.job_view(&rid("a"), t).map(|j| j.incident_id), Some(second.id), "a's phone shows the new one");
    // The batch stores the first incident as it now is, and shows it, without a's offer: else
    // the store, and so an engine resumed from it, and consoles, would have a booked twice.
    let stored = out.incidents.iter().rev().find(|i| i.id == first).expect("the first incident's row is stored");
    let offered: Vec<_> = stored.ladder.offers.iter().map(|o| o.responder_id.to_string()).collect();
    assert_eq!(offered, ["b", "c"]);
    let shown = out.deltas.iter().rev().find(|v| v.id == first).expect("and shown");
    assert_eq!(shown.seq, withdrawn.seq);

    // The responder taken over answers the new offer as any other.
    let second_id = second.id;
    e.responder_acts(&rid("a"), second_id, ResponderAction::Accept, t, &mut Outbox::default()).unwrap();
    assert_eq!(e.incident(second_id).unwrap().state, IncidentState::Accepted);
    assert!(e.best_extra_offer(first).is_none(), "no other incident holds an extra offer");
}

#[test]
fn an_incident_never_gives_up_its_last_offer_and_first_come_first_served_is_a_setting() {
    // One rider: the first incident's single offer is not extra.
    let one = vec![responder_at("a", 25.001, 102.68, TravelMode::Ebike, &["first_aid"])];
    let (mut e, d2) = with_a_neighbour(one, Policy::default());
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    e.handle_device_event(&d2, event("n", EventType::Sos, None), T0, &mut out).unwrap();
    assert_eq!(live_offers(&e), ["a"]);
    assert_eq!(e.open_incident_for(&d2).unwrap().state, IncidentState::StationAlerted, "nobody to spare");

    let policy = Policy { yield_extra_offers: false, ..Policy::default() };
    let (mut e, d2) = with_a_neighbour(three_riders(), policy);
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    e.handle_device_event(&d2, event("n", EventType::Sos, None), T0, &mut out).unwrap();
    assert_eq!(live_offers(&e), ["a", "b", "c"], "first come, first served: the first keeps all three");
    assert_eq!(e.open_incident_for(&d2).unwrap().state, IncidentState::StationAlerted);
}

#[test]
fn an_extra_offer_is_taken_only_by_one_the_responder_qualifies_for() {
    // Riders without first aid hold an SOS's extra offers; a fall next door needs first aid.
    let riders = vec![
        responder_at("a", 25.001, 102.68, TravelMode::Ebike, &[]),
        responder_at("b", 25.003, 102.68, TravelMode::Ebike, &[]),
    ];
    let (mut e, d2) = with_a_neighbour(riders, Policy::default());
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    e.handle_device_event(&d2, event("n", EventType::Fall, None), T0, &mut out).unwrap();
    assert_eq!(live_offers(&e), ["a", "b"], "neither may go to a fall");
    assert_eq!(e.open_incident_for(&d2).unwrap().state, IncidentState::StationAlerted);
}

#[test]
fn with_parallel_offers_a_decline_brings_in_the_next_and_all_lapsing_climbs_on() {
    let mut e = with_policy(three_riders(), parallel_sos(2));
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let id = e.open_incident_for(&dev()).unwrap().id;
    e.responder_acts(&rid("a"), id, ResponderAction::Decline { reason: None }, T0.plus_millis(10_000), &mut out)
        .unwrap();
    assert_eq!(live_offers(&e), ["b", "c"], "c steps in beside b");
    let mut out = Outbox::default();
    e.tick(T0.plus_millis(Policy::default().offer_timeout_ms), &mut out);
    assert_eq!(live_offers(&e), ["c"], "b's offer lapsed; three offers made in all, so nobody new");
    e.tick(e.next_deadline().unwrap(), &mut out);
    let i = e.open_incident_for(&dev()).unwrap();
    assert_eq!((i.state, i.ladder.offers_made), (IncidentState::StationAlerted, 3));
    assert_eq!(out.alerts.len(), 1, "the station's duty line is sent the incident");
    let alert = &out.alerts[0];
    assert_eq!((alert.station_id.as_str(), alert.incident_id, alert.offers_made), ("s-1", id, 3));
    assert_eq!(alert.elder.name, "长者");
}

#[test]
fn each_kind_has_its_own_ladder() {
    let mut policy = Policy::default();
    policy.ladders.insert(IncidentKind::Sos, LadderPolicy { offers: 1, parallel: 1, station: false });
    let mut e = with_policy(three_riders(), policy.clone());
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let id = e.open_incident_for(&dev()).unwrap().id;
    e.responder_acts(&rid("a"), id, ResponderAction::Decline { reason: None }, T0, &mut out).unwrap();
    let i = e.incident(id).unwrap();
    assert_eq!(i.state, IncidentState::AwaitingDispatcher, "one offer, no station: straight to a dispatcher");
    assert_eq!(i.ladder.emergency_number.as_deref(), Some("120"));
    assert!(out.alerts.is_empty());

    // The same engine sends a fall, whose ladder is the default, to three responders.
    let mut e = with_policy(three_riders(), policy);
    e.handle_device_event(&dev(), event("f", EventType::Fall, None), T0, &mut out).unwrap();
    let id = e.open_incident_for(&dev()).unwrap().id;
    for r in ["a", "b"] {
        e.responder_acts(&rid(r), id, ResponderAction::Decline { reason: None }, T0, &mut out).unwrap();
    }
    assert_eq!(live_offers(&e), ["c"]);

    let mut skip = Policy::default();
    skip.ladders.insert(IncidentKind::Sos, LadderPolicy { offers: 0, parallel: 1, station: true });
    let mut e = with_policy(three_riders(), skip);
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let i = e.open_incident_for(&dev()).unwrap();
    assert_eq!((i.state, i.ladder.offers_made), (IncidentState::StationAlerted, 0), "no responders: the station");
    assert!(!out.events.iter().any(|e| matches!(e.change, Change::NobodyInRange { .. })), "nobody was looked for");
}

#[test]
fn smoke_and_break_ins_carry_the_fire_and_police_numbers_from_the_start() {
    for (event_type, kind, number) in [
        (EventType::Smoke, IncidentKind::Fire, "119"),
        (EventType::Gas, IncidentKind::Fire, "119"),
        (EventType::Intrusion, IncidentKind::Intrusion, "110"),
    ] {
        let mut e = with_policy(three_riders(), Policy::default());
        let mut out = Outbox::default();
        e.handle_device_event(&dev(), event("m", event_type, None), T0, &mut out).unwrap();
        let i = e.open_incident_for(&dev()).unwrap().clone();
        assert_eq!((i.kind, i.state, i.kind.priority()), (kind, IncidentState::Offered, 1), "{event_type:?}");
        assert_eq!(i.ladder.emergency_number.as_deref(), Some(number), "a responder goes and {number} is called");
        e.responder_acts(&rid("a"), i.id, ResponderAction::Accept, T0, &mut out).unwrap();
        let i = e.incident(i.id).unwrap();
        assert_eq!(i.ladder.emergency_number.as_deref(), Some(number), "still shown once somebody accepted");
        // Nobody near: the dispatcher is told to call the same number.
        let mut lonely = with_policy(vec![], Policy::default());
        lonely.handle_device_event(&dev(), event("m", event_type, None), T0, &mut out).unwrap();
        let deadline = lonely.next_deadline().unwrap();
        lonely.tick(deadline, &mut out);
        let i = lonely.open_incident_for(&dev()).unwrap();
        assert_eq!((i.state, i.ladder.emergency_number.as_deref()), (IncidentState::AwaitingDispatcher, Some(number)));
    }
}

#[test]
fn when_responders_are_near_but_none_qualifies_the_audit_trail_says_why() {
    let mut e = with_responders(
        vec![
            responder_at("untrained", 25.001, 102.68, TravelMode::Ebike, &[]),
            responder_at("far-walker", 25.027, 102.68, TravelMode::Foot, &["first_aid"]),
        ],
        None,
    );
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("f", EventType::Fall, None), T0, &mut out).unwrap();
    let why = out.events.iter().find_map(|e| match e.change {
        Change::NobodyQualified { in_range, already_tried, lacking_skill, outside_circle } => {
            Some((in_range, already_tried, lacking_skill, outside_circle))
        }
        Change::NobodyInRange { .. } => panic!("two responders were in range"),
        _ => None,
    });
    assert_eq!(why, Some((2, 0, 1, 1)));
    assert_eq!(e.open_incident_for(&dev()).unwrap().state, IncidentState::StationAlerted);
}

#[test]
fn matching_by_the_elders_own_station_ignores_nearer_responders_of_other_stations() {
    let mut reg = registry();
    reg.stations.push(Station {
        id: StationId::parse("s-far").unwrap(),
        name: "far station".into(),
        position: c(25.05, 102.68),
        phone: None,
        service_circle_min: None,
        zone: Default::default(),
    });
    let mut far = responder_at("own-far", 25.04, 102.68, TravelMode::Car, &["first_aid"]);
    far.station_id = StationId::parse("s-1").unwrap();
    let mut near = responder_at("other-near", 25.001, 102.68, TravelMode::Ebike, &["first_aid"]);
    near.station_id = StationId::parse("s-far").unwrap();
    reg.responders = vec![far, near];
    let policy = Policy { matching: Matching::OwnStation, ..Policy::default() };
    let mut e = Engine::new(policy, reg.clone(), Resume::default());
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    assert_eq!(e.home_station(&ElderId::parse("e-1").unwrap()).unwrap().as_str(), "s-1");
    assert_eq!(offered_to(&e).as_deref(), Some("own-far"), "4.4 km away, but of the elder's station");

    let mut e = Engine::new(Policy::default(), reg, Resume::default());
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    assert_eq!(offered_to(&e).as_deref(), Some("other-near"), "nearest matching takes the nearer one");
}

#[test]
fn live_parallel_offers_survive_a_restart() {
    let mut e = with_policy(three_riders(), parallel_sos(2));
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let open: Vec<Incident> = e.open_incidents().cloned().collect();
    let mut reg = registry();
    reg.responders = three_riders();
    let resume = Resume { open, counters: e.counters(), ..Resume::default() };
    let mut again = Engine::new(parallel_sos(2), reg, resume);
    assert!(!again.matcher().is_available(&rid("a")) && !again.matcher().is_available(&rid("b")));
    assert!(again.matcher().is_available(&rid("c")));
    let id = again.open_incident_for(&dev()).unwrap().id;
    again.responder_acts(&rid("a"), id, ResponderAction::Accept, T0, &mut out).unwrap();
    assert!(again.matcher().is_available(&rid("b")), "the other offer was withdrawn after the restart");
}

#[test]
fn smoke_during_an_sos_makes_it_a_fire_and_keeps_the_responder() {
    let mut e = with_policy(three_riders(), Policy::default());
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let id = e.open_incident_for(&dev()).unwrap().id;
    e.responder_acts(&rid("a"), id, ResponderAction::Accept, T0, &mut out).unwrap();
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("s", EventType::Smoke, None), T0.plus_millis(1_000), &mut out).unwrap();
    let i = e.incident(id).unwrap();
    assert_eq!(
        (i.kind, i.state, i.ladder.emergency_number.as_deref()),
        (IncidentKind::Fire, IncidentState::Accepted, Some("119"))
    );
    assert_eq!(i.responder.as_ref().unwrap().id.as_str(), "a", "the responder on the way stays on it");
    assert!(out
        .events
        .iter()
        .any(|e| e.change == Change::KindChanged { from: IncidentKind::Sos, to: IncidentKind::Fire }));

    // An unreadable message, then a smoke alarm: 119, not the ambulance.
    let mut e = with_policy(vec![], Policy::default());
    e.handle_unreadable(&dev(), "garbage", MessageId::parse("raw").unwrap(), T0, &mut out).unwrap();
    assert_eq!(e.open_incident_for(&dev()).unwrap().ladder.emergency_number.as_deref(), Some("120"));
    e.handle_device_event(&dev(), event("s", EventType::Smoke, None), T0, &mut out).unwrap();
    let i = e.open_incident_for(&dev()).unwrap();
    assert_eq!((i.kind, i.ladder.emergency_number.as_deref()), (IncidentKind::Fire, Some("119")));
}

#[test]
fn a_stuck_button_is_one_incident_and_its_repeats_change_nothing() {
    let mut e = with_policy(three_riders(), Policy::default());
    let mut out = Outbox::default();
    // 100 presses a second for two seconds.
    let mut outcomes = Vec::new();
    for n in 0..200 {
        let t = T0.plus_millis(n * 10);
        let mut ev = event(&format!("stuck-{n}"), EventType::Sos, None);
        ev.device_ts = t;
        outcomes.push(e.handle_device_event(&dev(), ev, t, &mut out).unwrap());
    }
    let opened = outcomes.iter().filter(|o| matches!(o, Outcome::Opened(_))).count();
    let joined = outcomes.iter().filter(|o| matches!(o, Outcome::Joined(_))).count();
    let throttled = outcomes.iter().filter(|o| matches!(o, Outcome::Throttled(_))).count();
    assert_eq!((opened, joined, throttled), (1, 0, 199), "within 2 s of the first, nothing new");
    assert_eq!(out.messages.len(), 200, "every message is still stored, none lost");
    assert!(out.messages.iter().all(|m| m.incident_id.is_some()));
    let i = e.open_incident_for(&dev()).unwrap();
    assert_eq!(i.press_count, 1);
    // After the interval, a press counts again; a smoke alarm counts at once.
    let t = T0.plus_millis(2_500);
    assert!(matches!(
        e.handle_device_event(
            &dev(),
            DeviceEvent { device_ts: t, ..event("later", EventType::Sos, None) },
            t,
            &mut out
        ),
        Ok(Outcome::Joined(_))
    ));
    let t = t.plus_millis(10);
    assert!(matches!(
        e.handle_device_event(
            &dev(),
            DeviceEvent { device_ts: t, ..event("smoke", EventType::Smoke, None) },
            t,
            &mut out
        ),
        Ok(Outcome::Joined(_))
    ));
    assert_eq!(e.open_incident_for(&dev()).unwrap().kind, IncidentKind::Fire);
    // A cancel is never throttled.
    let t = t.plus_millis(10);
    e.handle_device_event(
        &dev(),
        DeviceEvent { device_ts: t, ..event("cancel", EventType::Cancel, None) },
        t,
        &mut out,
    )
    .unwrap();
    assert!(e.open_incident_for(&dev()).unwrap().cancel_requested);
}

#[test]
fn presses_a_device_kept_offline_count_as_far_apart_as_they_were_made() {
    let mut e = with_policy(three_riders(), Policy::default());
    let mut out = Outbox::default();
    let now = T0.plus_millis(120_000);
    let mut first = event("kept-1", EventType::Sos, None);
    first.device_ts = T0;
    let mut second = event("kept-2", EventType::Sos, None);
    second.device_ts = T0.plus_millis(55_000);
    e.handle_device_event(&dev(), first, now, &mut out).unwrap();
    let outcome = e.handle_device_event(&dev(), second, now.plus_millis(5), &mut out).unwrap();
    assert!(matches!(outcome, Outcome::Joined(_)), "55 s apart by the device's clock: {outcome:?}");
    assert_eq!(e.open_incident_for(&dev()).unwrap().press_count, 2);
}

/// The store writes an incident's whole state again on every change: its JSON leaves out
/// what is empty, and reads back the same, both as written now and as it was written before
/// (every field, the empty ones as `null`, `[]`, `0` or `false`).
#[test]
fn an_incident_is_stored_without_its_empty_fields_and_reads_back_the_same() {
    use serde_json::{json, Value};
    let mut e = engine();
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let incident = out.incidents.last().unwrap().clone();
    let body = serde_json::to_string(&incident).unwrap();
    for empty in ["responder", "dispatcher_needed", "problem", "cancel_requested", "tried", "claimed_by", "off_ladder"]
    {
        assert!(!body.contains(&format!("\"{empty}\"")), "{empty} is written though empty: {body}");
    }
    // Read back, it is the same incident, to the last bit of every float (serde_json's
    // `float_roundtrip`: without it a distance could come back one unit in the last place off).
    let same = |text: &str, want: &Incident| {
        assert_eq!(&serde_json::from_str::<Incident>(text).unwrap(), want, "{text}");
    };
    same(&body, &incident);

    let mut before = serde_json::to_value(&incident).unwrap();
    let fields = before.as_object_mut().unwrap();
    for key in ["responder", "station", "dispatcher_needed", "problem", "outcome", "claimed_by", "acknowledged_at"] {
        fields.entry(key).or_insert(Value::Null);
    }
    fields.entry("cancel_requested").or_insert(json!(false));
    let ladder = fields["ladder"].as_object_mut().unwrap();
    for key in ["offer_deadline", "station_deadline", "remind_at", "on_scene_by", "emergency_number"] {
        ladder.entry(key).or_insert(Value::Null);
    }
    for (key, empty) in
        [("tried", json!([])), ("offers", json!([])), ("offers_made", json!(0)), ("reminders", json!(0))]
    {
        ladder.entry(key).or_insert(empty);
    }
    ladder.entry("off_ladder").or_insert(json!(false));
    let old = before.to_string();
    assert!(old.len() > body.len() + 200, "{} bytes before, {} now", old.len(), body.len());
    same(&old, &incident);

    // Nothing set is left out.
    let mut full = incident.clone();
    full.responder = Some(Assigned { id: ResponderId::parse("r-home").unwrap(), distance_m: 12.5 });
    full.cancel_requested = true;
    full.problem = Some("unreadable".into());
    full.claimed_by = Some("wang".into());
    full.acknowledged_at = Some(T0);
    full.ladder.tried = vec![ResponderId::parse("r-park").unwrap()];
    full.ladder.reminders = 2;
    full.ladder.off_ladder = true;
    full.ladder.emergency_number = Some("120".into());
    full.ladder.remind_at = Some(T0.plus_millis(60_000));
    let body = serde_json::to_string(&full).unwrap();
    same(&body, &full);
    for set in [
        "responder",
        "cancel_requested",
        "problem",
        "claimed_by",
        "acknowledged_at",
        "tried",
        "reminders",
        "off_ladder",
        "emergency_number",
        "remind_at",
    ] {
        assert!(body.contains(&format!("\"{set}\"")), "{set} is left out though set: {body}");
    }
}

#[test]
fn an_incident_whose_device_left_the_ledger_stays_open_for_the_dispatchers_after_a_restart() {
    let mut e = engine();
    let mut out = Outbox::default();
    e.handle_device_event(&dev(), event("m", EventType::Sos, None), T0, &mut out).unwrap();
    let open: Vec<Incident> = e.open_incidents().cloned().collect();
    let id = open[0].id;
    let resume = Resume { open, counters: e.counters(), ..Resume::default() };
    let mut reg = registry();
    reg.devices.retain(|d| d.id != dev());
    let mut again = Engine::new(Policy::default(), reg, resume);
    assert_eq!(again.incident(id).map(|i| i.id), Some(id), "still open");
    assert!(again.open_incident_for(&dev()).is_none(), "no device in the ledger to hold it");
    let mut none = Outbox::default();
    assert!(matches!(
        again.handle_device_event(&dev(), event("m2", EventType::Sos, None), T0, &mut none),
        Err(Refusal::UnknownDevice(_))
    ));
    again.dispatcher_acts("d", id, DispatcherAction::Cancel { reason: "device retired".into() }, T0, &mut out).unwrap();
    assert!(again.incident(id).is_none(), "a dispatcher can still end it");
}

#[test]
fn a_device_opens_a_new_incident_after_its_last_one_ended() {
    let mut e = engine();
    let mut out = Outbox::default();
    let first = match e.handle_device_event(&dev(), event("m1", EventType::Sos, None), T0, &mut out).unwrap() {
        Outcome::Opened(id) => id,
        other => panic!("{other:?}"),
    };
    e.dispatcher_acts("d", first, DispatcherAction::Cancel { reason: "false alarm".into() }, T0, &mut out).unwrap();
    assert!(e.open_incident_for(&dev()).is_none());
    // Pressed at once: the device holds no incident any more, so this opens a new one rather
    // than joining (or being throttled on) the one that ended.
    let second = match e.handle_device_event(&dev(), event("m2", EventType::Sos, None), T0, &mut out).unwrap() {
        Outcome::Opened(id) => id,
        other => panic!("{other:?}"),
    };
    assert_ne!(first, second);
    assert_eq!(e.open_incident_for(&dev()).map(|i| i.id), Some(second));
    assert_eq!(
        e.handle_device_event(&dev(), event("m3", EventType::Sos, None), T0, &mut out).unwrap(),
        Outcome::Throttled(second),
        "a press at the same moment on the open incident repeats the last one"
    );
}
