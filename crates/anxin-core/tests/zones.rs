//! Zones: each engine runs one zone's part of the ledger, and every number it hands out
//! carries the zone (issue 25; `anxin_core::zone`).

use anxin_core::*;

const T0: Timestamp = Timestamp(1_763_000_000_000);

fn c(lat: f64, lon: f64) -> Coordinates {
    Coordinates::new(lat, lon).unwrap()
}

fn zone(n: i64) -> Zone {
    Zone::new(n).unwrap()
}

fn station(id: &str, z: i64) -> Station {
    Station {
        id: StationId::parse(id).unwrap(),
        name: id.into(),
        position: c(25.0, 102.69),
        phone: None,
        service_circle_min: None,
        zone: zone(z),
    }
}

fn elder(id: &str, station: Option<&str>) -> Elder {
    Elder {
        id: ElderId::parse(id).unwrap(),
        name: id.into(),
        address: "西山区".into(),
        home: c(25.0, 102.68),
        phone: None,
        notes: String::new(),
        profile: ElderProfile { station_id: station.map(|s| StationId::parse(s).unwrap()), ..Default::default() },
    }
}

fn device(id: &str, elder: &str) -> Device {
    Device { id: DeviceId::parse(id).unwrap(), elder_id: ElderId::parse(elder).unwrap(), model: None, sim: None }
}

fn responder(id: &str, station: &str) -> Responder {
    Responder {
        id: ResponderId::parse(id).unwrap(),
        name: id.into(),
        station_id: StationId::parse(station).unwrap(),
        phone: None,
        position: c(25.001, 102.68),
        on_duty: true,
        mode: TravelMode::Ebike,
        skills: vec!["first_aid".into()],
        position_at: None,
        token_sha256: None,
        provider_id: None,
    }
}

/// Station s-a in zone 0 and s-b in zone 3, an elder, a device and a responder with each,
/// and an elder enrolled with no station.
fn district() -> Registry {
    Registry {
        elders: vec![elder("e-a", Some("s-a")), elder("e-b", Some("s-b")), elder("e-none", None)],
        devices: vec![device("d-a", "e-a"), device("d-b", "e-b"), device("d-none", "e-none")],
        stations: vec![station("s-a", 0), station("s-b", 3)],
        responders: vec![responder("r-a", "s-a"), responder("r-b", "s-b")],
        staff: vec![Staff {
            id: "li".into(),
            name: "李".into(),
            role: StaffRole::Dispatcher,
            password_hash: String::new(),
        }],
        providers: vec![],
    }
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|x| id(x).to_string()).collect()
}

/// The engine of zone `z` alone, resumed with `counters` (the highest stored within it).
fn engine_for(z: i64, counters: Counters) -> Engine {
    let resume = Resume { counters: [(zone(z), counters)].into(), ..Resume::default() };
    Engine::new(Policy::default(), district().zone_part(zone(z)), resume)
}

/// One engine running zones 0 and 3, the whole district.
fn engine_for_both() -> Engine {
    let counters = [(zone(0), Counters::default()), (zone(3), Counters::default())].into();
    Engine::new(Policy::default(), district(), Resume { counters, ..Resume::default() })
}

fn sos(msg: &str) -> DeviceEvent {
    DeviceEvent {
        msg_id: MessageId::parse(msg).unwrap(),
        event: EventType::Sos,
        device_ts: T0,
        fix: FixReport::Absent,
        health: Default::default(),
    }
}

#[test]
fn a_zone_holds_its_stations_their_responders_the_elders_enrolled_there_and_their_devices() {
    assert_eq!(district().zones(), vec![zone(0), zone(3)]);
    let b = district().zone_part(zone(3));
    assert_eq!(ids(&b.stations, |s| s.id.as_str()), ["s-b"]);
    assert_eq!(ids(&b.responders, |r| r.id.as_str()), ["r-b"]);
    assert_eq!(ids(&b.elders, |e| e.id.as_str()), ["e-b"]);
    assert_eq!(ids(&b.devices, |d| d.id.as_str()), ["d-b"]);
    assert_eq!(b.staff.len(), 1, "staff work in every zone");
    let a = district().zone_part(zone(0));
    assert_eq!(ids(&a.elders, |e| e.id.as_str()), ["e-a", "e-none"], "an elder with no station is zone 0's");
    assert_eq!(ids(&a.devices, |d| d.id.as_str()), ["d-a", "d-none"]);
    assert!(district().zone_part(zone(5)).elders.is_empty());
    assert_eq!(a.check(), Ok(()));
    assert_eq!(b.check(), Ok(()));
}

#[test]
fn an_engine_numbers_its_incidents_and_events_within_its_zone_and_knows_only_its_devices() {
    let mut e = engine_for(3, Counters::default());
    let mut out = Outbox::default();
    let d_b = DeviceId::parse("d-b").unwrap();
    let opened = e.handle_device_event(&d_b, sos("m1"), T0, &mut out).unwrap();
    let base = 3u64 << 40;
    assert_eq!(opened, Outcome::Opened(IncidentId(base + 1)));
    assert!(!out.events.is_empty());
    assert!(out.events.iter().all(|ev| Zone::of(ev.seq) == zone(3) && ev.seq > base), "event seqs carry zone 3");
    assert_eq!(out.deltas.last().unwrap().seq, out.events.last().unwrap().seq);
    // Zone 0's device is another engine's: to this one it is unknown.
    let mut other = Outbox::default();
    let d_a = DeviceId::parse("d-a").unwrap();
    assert!(e.handle_device_event(&d_a, sos("m2"), T0, &mut other).is_err());
    assert!(other.incidents.is_empty() && other.events.is_empty());
    // Zone 0's engine numbers as a district without zones always has.
    let mut a = engine_for(0, Counters::default());
    let mut out = Outbox::default();
    assert_eq!(a.handle_device_event(&d_a, sos("m3"), T0, &mut out).unwrap(), Outcome::Opened(IncidentId(1)));
}

#[test]
fn an_engine_resumes_its_zones_numbers_and_never_another_zones() {
    let base = 3u64 << 40;
    let mut e = engine_for(3, Counters { incident: base + 41, seq: base + 900, ..Counters::default() });
    let mut out = Outbox::default();
    let opened = e.handle_device_event(&DeviceId::parse("d-b").unwrap(), sos("m1"), T0, &mut out).unwrap();
    assert_eq!(opened, Outcome::Opened(IncidentId(base + 42)));
    assert_eq!(out.events[0].seq, base + 901);
    // A store read that gave zone 0's highest numbers is not taken for zone 3's.
    let mut e = engine_for(3, Counters { incident: 77, seq: 500, ..Counters::default() });
    let mut out = Outbox::default();
    let opened = e.handle_device_event(&DeviceId::parse("d-b").unwrap(), sos("m1"), T0, &mut out).unwrap();
    assert_eq!(opened, Outcome::Opened(IncidentId(base + 1)));
}

fn refused_field(r: Result<Amended, LedgerError>) -> Vec<(String, String)> {
    match r {
        Err(LedgerError::Invalid { fields, .. }) => fields.into_iter().map(|f| (f.field, f.code)).collect(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn the_ledger_of_a_zone_takes_only_that_zones_stations_and_logs_its_changes_in_the_zones_numbers() {
    let mut e = engine_for(3, Counters::default());
    let mut out = Outbox::default();
    let create = |s: Station| Amend::new(Amendment::Create(Entry::Station(s)));
    let other = refused_field(e.amend(create(station("s-c", 5)), "admin", T0, &mut out));
    assert_eq!(other, [("zone".to_string(), "other_zone".to_string())]);
    let moved = Amend::new(Amendment::Update(Entry::Station(station("s-b", 0))));
    assert_eq!(refused_field(e.amend(moved, "admin", T0, &mut out)), [("zone".into(), "other_zone".into())]);
    let unenrolled = Amend::new(Amendment::Create(Entry::Elder(elder("e-new", None))));
    let fields = refused_field(e.amend(unenrolled, "admin", T0, &mut out));
    assert_eq!(fields, [("profile.station_id".to_string(), "other_zone".to_string())]);
    assert!(out.ledger.is_empty(), "nothing refused is logged");
    let amended = e.amend(create(station("s-d", 3)), "admin", T0, &mut out).unwrap();
    assert_eq!(amended.seq, Some((3u64 << 40) + 1), "the ledger's log is numbered within the zone");
    // Zone 0's engine still takes an elder enrolled with no station.
    let mut a = engine_for(0, Counters::default());
    let unenrolled = Amend::new(Amendment::Create(Entry::Elder(elder("e-new", None))));
    assert_eq!(a.amend(unenrolled, "admin", T0, &mut out).unwrap().seq, Some(1));
}

#[test]
fn one_engine_runs_several_zones_and_numbers_each_zones_incidents_and_events_in_that_zone() {
    let mut e = engine_for_both();
    assert_eq!(e.zones().collect::<Vec<_>>(), [zone(0), zone(3)]);
    let mut out = Outbox::default();
    let d_a = DeviceId::parse("d-a").unwrap();
    let d_b = DeviceId::parse("d-b").unwrap();
    let d_none = DeviceId::parse("d-none").unwrap();
    let b = e.handle_device_event(&d_b, sos("m1"), T0, &mut out).unwrap();
    let a = e.handle_device_event(&d_a, sos("m1"), T0, &mut out).unwrap();
    let none = e.handle_device_event(&d_none, sos("m1"), T0, &mut out).unwrap();
    let base = 3u64 << 40;
    assert_eq!(
        (a, b, none),
        (Outcome::Opened(IncidentId(1)), Outcome::Opened(IncidentId(base + 1)), Outcome::Opened(IncidentId(2)))
    );
    for ev in &out.events {
        assert_eq!(Zone::of(ev.seq), Zone::of(ev.incident_id.0), "event {} of incident {}", ev.seq, ev.incident_id.0);
    }
    for v in &out.deltas {
        assert_eq!(Zone::of(v.seq), Zone::of(v.id.0));
    }
    let seqs = e.last_seqs();
    assert_eq!(seqs.len(), 2);
    assert!(seqs[0] < base && seqs[1] > base, "{seqs:?}");
    assert_eq!(e.counters()[&zone(3)].incident, base + 1);

    // The ledger: a station in a zone it does not run, or moved between zones, is refused;
    // each change is logged in its entry's zone.
    let create = |s: Station| Amend::new(Amendment::Create(Entry::Station(s)));
    let fields = refused_field(e.amend(create(station("s-c", 5)), "admin", T0, &mut out));
    assert_eq!(fields, [("zone".to_string(), "other_zone".to_string())]);
    let moved = Amend::new(Amendment::Update(Entry::Station(station("s-b", 0))));
    assert_eq!(refused_field(e.amend(moved, "admin", T0, &mut out)), [("zone".into(), "other_zone".into())]);
    assert_eq!(e.amend(create(station("s-d", 3)), "admin", T0, &mut out).unwrap().seq, Some(base + 1));
    let device = Amend::new(Amendment::Create(Entry::Device(device("d-b2", "e-b"))));
    assert_eq!(e.amend(device, "admin", T0, &mut out).unwrap().seq, Some(base + 2), "a device is its elder's zone's");
    let unenrolled = Amend::new(Amendment::Create(Entry::Elder(elder("e-new", None))));
    assert_eq!(e.amend(unenrolled, "admin", T0, &mut out).unwrap().seq, Some(1), "an unenrolled elder: zone 0's log");
}

/// The district of the border tests: r-a, of zone 0, waits at the door of e-b, of zone 3;
/// r-b, of zone 3, is further off; e-b2 is another elder of zone 3.
fn border_district() -> Registry {
    let mut district = district();
    district.responders[0].position = c(25.0, 102.68);
    district.responders[1].position = c(25.01, 102.68);
    district.elders.push(elder("e-b2", Some("s-b")));
    district.devices.push(device("d-b2", "e-b2"));
    district
}

/// One offer at a time, so that who is offered next is plain to see.
fn one_at_a_time() -> Policy {
    let mut policy = Policy::default();
    for ladder in policy.ladders.values_mut() {
        ladder.parallel = 1;
    }
    policy
}

fn press(e: &mut Engine, device: &str, out: &mut Outbox) -> IncidentId {
    match e.handle_device_event(&DeviceId::parse(device).unwrap(), sos("m1"), T0, out).unwrap() {
        Outcome::Opened(id) => id,
        other => panic!("no incident: {other:?}"),
    }
}

fn offered(e: &Engine, id: IncidentId) -> Vec<String> {
    e.incident(id).unwrap().ladder.offers.iter().map(|o| o.responder_id.to_string()).collect()
}

fn rid(id: &str) -> ResponderId {
    ResponderId::parse(id).unwrap()
}

/// Without `border_offers`, offers stay within the incident's zone: a nearer responder of
/// zone 0 is never offered a press of zone 3, even when nobody of zone 3 is free.
#[test]
fn without_border_offers_offers_stay_within_the_incidents_zone_however_near_another_zones_responder_is() {
    let counters = [(zone(0), Counters::default()), (zone(3), Counters::default())].into();
    let policy = Policy { border_offers: false, ..one_at_a_time() };
    let mut e = Engine::new(policy, border_district(), Resume { counters, ..Resume::default() });
    let mut out = Outbox::default();
    let b = press(&mut e, "d-b", &mut out);
    assert_eq!(offered(&e, b), ["r-b"], "the zone's own responder, not the nearer one of zone 0");
    let b2 = press(&mut e, "d-b2", &mut out);
    assert!(offered(&e, b2).is_empty(), "zone 0's free responder was offered zone 3's press: {:?}", offered(&e, b2));
    // Zone 0's own press goes to r-a.
    let a = press(&mut e, "d-a", &mut out);
    assert_eq!(offered(&e, a), ["r-a"]);
    assert!(out.holds.is_empty() && out.across.is_empty());
}

/// One engine running both zones offers across the border at once, knowing exactly who is
/// free; the responder's row says which other zone's incident holds them, and is cleared
/// when it lets them go, so that whoever runs their zone next knows.
#[test]
fn one_engine_running_both_zones_offers_the_nearer_neighbour_and_their_row_says_so() {
    let counters = [(zone(0), Counters::default()), (zone(3), Counters::default())].into();
    let mut e = Engine::new(one_at_a_time(), border_district(), Resume { counters, ..Resume::default() });
    let mut out = Outbox::default();
    let b = press(&mut e, "d-b", &mut out);
    assert_eq!(offered(&e, b), ["r-a"], "the nearer responder, of zone 0");
    assert_eq!(out.holds, [Hold { responder_id: rid("r-a"), incident_id: Some(b) }]);
    assert!(out.across.is_empty(), "nothing to ask of another engine");
    assert!(e.job_view(&rid("r-a"), T0).is_some(), "their phone is told at once");
    let mut out = Outbox::default();
    let decline = ResponderAction::Decline { reason: None };
    e.responder_acts(&rid("r-a"), b, decline, T0, &mut out).unwrap();
    assert_eq!(out.holds, [Hold { responder_id: rid("r-a"), incident_id: None }]);
    assert_eq!(offered(&e, b), ["r-b"], "then zone 3's own");
    // Zone 3's own responder on zone 3's press: no hold.
    assert!(!out.holds.iter().any(|h| h.responder_id == rid("r-b")));
}

/// The engines of zones 0 and 3 apart, each knowing the other's responders as neighbours.
fn engines_apart() -> (Engine, Engine) {
    let district = border_district();
    let apart = |z: i64| {
        let resume = Resume { counters: [(zone(z), Counters::default())].into(), ..Resume::default() };
        Engine::new(one_at_a_time(), district.zones_part(&[zone(z)]), resume)
            .with_neighbours(district.neighbours_of(&[zone(z)]))
    };
    (apart(0), apart(3))
}

/// Delivers every message `out` holds for `to`'s zone, as its inbox would; what that causes
/// goes to a fresh outbox, returned.
fn deliver(out: &Outbox, to: &mut Engine, z: i64, now: Timestamp) -> (Outbox, Vec<BorderOutcome>) {
    let mut next = Outbox::default();
    let outcomes = out
        .across
        .iter()
        .filter(|a| a.to == zone(z))
        .map(|a| to.handle_border(a.message.clone(), now, &mut next))
        .collect();
    (next, outcomes)
}

#[test]
fn a_neighbour_is_asked_for_and_offered_only_once_their_zone_holds_them_then_let_go_of() {
    let (mut a, mut b) = engines_apart();
    let mut out = Outbox::default();
    let id = press(&mut b, "d-b", &mut out);
    // Asked for, not offered: their phone knows nothing and cannot take it.
    let offer = &b.incident(id).unwrap().ladder.offers[0];
    assert_eq!((offer.responder_id.as_str(), offer.asking), ("r-a", Some(zone(0))));
    assert_eq!(b.incident(id).unwrap().ladder.offers_made, 0);
    assert_eq!(
        out.across,
        [Across { to: zone(0), message: BorderMessage::Hold { incident_id: id, responder_id: rid("r-a") } }]
    );
    assert!(out.holds.is_empty(), "a neighbour's row is their zone's to write");
    assert_eq!(b.job_view(&rid("r-a"), T0), None);
    assert_eq!(b.responder_view(&rid("r-a")), None, "zone 0's engine shows r-a");
    assert_eq!(b.neighbours_engaged(), [rid("r-a")], "their phone is zone 3's engine's to show");
    let accept = b.responder_acts(&rid("r-a"), id, ResponderAction::Accept, T0, &mut Outbox::default());
    assert!(matches!(accept, Err(CommandError::NotYours { .. })), "{accept:?}");

    // Zone 0 holds them: their row says so, and zone 0 no longer offers them.
    let (held, outcomes) = deliver(&out, &mut a, 0, T0);
    assert_eq!(outcomes, [BorderOutcome::Acted]);
    assert_eq!(held.holds, [Hold { responder_id: rid("r-a"), incident_id: Some(id) }]);
    assert!(a.held_elsewhere(&rid("r-a")));
    assert!(!a.matcher().is_available(&rid("r-a")));
    let view = a.responder_view(&rid("r-a")).unwrap();
    assert_eq!((view.status, view.incident_id), (ResponderStatus::Busy, Some(id)));
    let Some(Across { to, message: BorderMessage::Held { responder_id, .. } }) = held.across.first() else {
        panic!("not held: {:?}", held.across)
    };
    assert_eq!((*to, responder_id.as_str()), (zone(3), "r-a"));
    let mut own = Outbox::default();
    let a_id = press(&mut a, "d-a", &mut own);
    assert!(!offered(&a, a_id).contains(&"r-a".to_string()), "zone 0 offered r-a, held for zone 3");

    // Held: the offer is made, with the offer's full time, and r-a may take it.
    let t1 = Timestamp(T0.0 + 50);
    let (after, outcomes) = deliver(&held, &mut b, 3, t1);
    assert_eq!(outcomes, [BorderOutcome::Acted]);
    let offer = &b.incident(id).unwrap().ladder.offers[0];
    assert_eq!(offer.asking, None);
    assert_eq!(offer.deadline, t1.plus_millis(Policy::default().offer_timeout_ms));
    assert_eq!(b.incident(id).unwrap().ladder.offers_made, 1);
    assert!(after.events.iter().any(|e| matches!(e.change, Change::HeldAcross { .. })));
    assert_eq!(b.job_view(&rid("r-a"), t1).map(|j| j.incident_id), Some(id));
    // The same answer again changes nothing.
    let (_, outcomes) = deliver(&held, &mut b, 3, t1);
    assert_eq!(outcomes, [BorderOutcome::Passed]);

    let mut out = Outbox::default();
    b.responder_acts(&rid("r-a"), id, ResponderAction::Accept, t1, &mut out).unwrap();
    assert!(out.across.is_empty(), "accepting keeps the hold");
    let resolve = ResponderAction::Resolve { outcome: "扶起".into() };
    b.responder_acts(&rid("r-a"), id, resolve, t1, &mut out).unwrap();
    assert_eq!(
        out.across,
        [Across { to: zone(0), message: BorderMessage::Release { incident_id: id, responder_id: rid("r-a") } }]
    );
    assert!(b.neighbours_engaged().is_empty());
    // Zone 0 lets them go: free again, their row cleared; a second release changes nothing.
    let (freed, outcomes) = deliver(&out, &mut a, 0, t1);
    assert_eq!(outcomes, [BorderOutcome::Acted]);
    assert_eq!(freed.holds, [Hold { responder_id: rid("r-a"), incident_id: None }]);
    assert!(a.matcher().is_available(&rid("r-a")) && !a.held_elsewhere(&rid("r-a")));
    assert_eq!(deliver(&out, &mut a, 0, t1).1, [BorderOutcome::Passed]);
}

#[test]
fn a_neighbour_their_zone_cannot_spare_is_refused_and_the_ladder_goes_on_to_its_own() {
    let (mut a, mut b) = engines_apart();
    // r-a is on zone 0's own press first.
    let a_id = press(&mut a, "d-a", &mut Outbox::default());
    assert_eq!(offered(&a, a_id), ["r-a"]);
    let mut out = Outbox::default();
    let id = press(&mut b, "d-b", &mut out);
    assert_eq!(offered(&b, id), ["r-a"], "zone 3 takes r-a for free: it cannot know");
    let (answer, _) = deliver(&out, &mut a, 0, T0);
    assert!(answer.holds.is_empty());
    assert_eq!(
        answer.across,
        [Across { to: zone(3), message: BorderMessage::Refused { incident_id: id, responder_id: rid("r-a") } }]
    );
    let (after, outcomes) = deliver(&answer, &mut b, 3, T0);
    assert_eq!(outcomes, [BorderOutcome::Acted]);
    assert!(after.events.iter().any(|e| matches!(e.change, Change::RefusedAcross { .. })));
    assert!(after.across.is_empty(), "nothing to let go of");
    assert_eq!(offered(&b, id), ["r-b"]);
    // Refused lately: not asked for by the next press either...
    let b2 = press(&mut b, "d-b2", &mut Outbox::default());
    assert!(offered(&b, b2).is_empty(), "{:?}", offered(&b, b2));
    assert_eq!(b.best_candidate(b2).ok(), None);
    // ...until the policy's while has passed (30 s, before any offer lapses).
    let later = T0.plus_millis(Policy::default().border_refused_ms);
    assert_eq!(b.next_deadline(), Some(later));
    b.tick(later, &mut Outbox::default());
    assert_eq!(b.best_candidate(b2).map(|(r, _)| r.to_string()).ok(), Some("r-a".to_string()));
}

#[test]
fn an_unanswered_ask_lapses_the_ladder_goes_on_and_a_late_hold_is_let_go_of() {
    let (mut a, mut b) = engines_apart();
    let mut asked = Outbox::default();
    let id = press(&mut b, "d-b", &mut asked);
    let deadline = T0.plus_millis(Policy::default().border_answer_ms);
    assert_eq!(b.next_deadline(), Some(deadline));
    let mut out = Outbox::default();
    b.tick(deadline, &mut out);
    assert!(out
        .events
        .iter()
        .any(|e| matches!(&e.change, Change::OfferTimedOut { responder_id } if responder_id.as_str() == "r-a")));
    assert_eq!(offered(&b, id), ["r-b"]);
    // In case the hold is on its way, zone 0 is told to let go.
    let release = BorderMessage::Release { incident_id: id, responder_id: rid("r-a") };
    assert_eq!(out.across, [Across { to: zone(0), message: release.clone() }]);

    // Zone 0's owner was away; it now reads the ask, then the release: held, then let go.
    let (held, _) = deliver(&asked, &mut a, 0, deadline);
    assert!(a.held_elsewhere(&rid("r-a")));
    let (_, outcomes) = deliver(&out, &mut a, 0, deadline);
    assert_eq!(outcomes, [BorderOutcome::Acted]);
    assert!(!a.held_elsewhere(&rid("r-a")) && a.matcher().is_available(&rid("r-a")));
    // Its late "held" reaches zone 3, which no longer asks: let go again, no offer made.
    let (late, outcomes) = deliver(&held, &mut b, 3, deadline);
    assert_eq!(outcomes, [BorderOutcome::Passed]);
    assert_eq!(late.across, [Across { to: zone(0), message: release }]);
    assert!(late.events.is_empty());
    assert_eq!(offered(&b, id), ["r-b"]);
    // Had the release come first (commits landing out of order), the late one frees them.
    assert_eq!(deliver(&late, &mut a, 0, deadline).1, [BorderOutcome::Passed]);
}

/// Two zones asking for one neighbour at once: their zone holds them for the first asked and
/// refuses the second; asked again for the first, it answers held again and takes nothing.
#[test]
fn two_zones_asking_for_one_responder_at_once_only_one_holds_them() {
    let (mut a, _) = engines_apart();
    let x = IncidentId((3u64 << 40) + 1);
    let y = IncidentId((5u64 << 40) + 1);
    let mut out = Outbox::default();
    let hold = |i: IncidentId| BorderMessage::Hold { incident_id: i, responder_id: rid("r-a") };
    a.handle_border(hold(x), T0, &mut out);
    a.handle_border(hold(y), T0, &mut out);
    a.handle_border(hold(x), T0, &mut out);
    let answers: Vec<(Zone, &str)> = out.across.iter().map(|m| (m.to, m.message.kind())).collect();
    assert_eq!(answers, [(zone(3), "held"), (zone(5), "refused"), (zone(3), "held")]);
    assert_eq!(out.holds, [Hold { responder_id: rid("r-a"), incident_id: Some(x) }], "held once");
    // Zone 5's release of a hold it never had changes nothing.
    let release = BorderMessage::Release { incident_id: y, responder_id: rid("r-a") };
    assert_eq!(a.handle_border(release, T0, &mut Outbox::default()), BorderOutcome::Passed);
    assert!(a.held_elsewhere(&rid("r-a")));
    // Nobody asks for a zone's responder for that zone's own incident by message.
    let own = BorderMessage::Hold { incident_id: IncidentId(7), responder_id: rid("r-a") };
    assert_eq!(a.handle_border(own, T0, &mut Outbox::default()), BorderOutcome::Passed);
}

/// The zone's next owner reads the holds from the rows: a responder held for another zone's
/// incident stays out of its offers until that zone lets go of them.
#[test]
fn a_hold_is_resumed_from_the_store_and_let_go_of_after() {
    let district = border_district();
    let held_for = IncidentId((3u64 << 40) + 1);
    let resume = Resume {
        counters: [(zone(0), Counters::default())].into(),
        holds: vec![(rid("r-a"), held_for)],
        ..Resume::default()
    };
    let mut a = Engine::new(one_at_a_time(), district.zones_part(&[zone(0)]), resume)
        .with_neighbours(district.neighbours_of(&[zone(0)]));
    assert!(a.held_elsewhere(&rid("r-a")));
    let mut out = Outbox::default();
    let id = press(&mut a, "d-a", &mut out);
    assert_eq!(offered(&a, id), ["r-b"], "r-a held for zone 3: r-b, asked of zone 3");
    assert_eq!(a.incident(id).unwrap().ladder.offers[0].asking, Some(zone(3)));
    // A neighbour's duty is their zone's.
    let off = a.set_duty(&rid("r-b"), false, T0, &mut Outbox::default());
    assert!(matches!(off, Err(CommandError::OtherZone { zone: 3, .. })), "{off:?}");
    let release = BorderMessage::Release { incident_id: held_for, responder_id: rid("r-a") };
    let mut out = Outbox::default();
    assert_eq!(a.handle_border(release, T0, &mut out), BorderOutcome::Acted);
    assert_eq!(out.holds, [Hold { responder_id: rid("r-a"), incident_id: None }]);
    assert!(a.matcher().is_available(&rid("r-a")));
}

/// A responder held for another zone's offer goes off duty with their own zone: as with an
/// offer of their own zone, it is declined (the other zone is told, and lets go of them),
/// and they are not offered again; one only asked for ends as refused.
#[test]
fn going_off_duty_while_held_across_declines_the_other_zones_offer() {
    let (mut a, mut b) = engines_apart();
    let mut out = Outbox::default();
    let id = press(&mut b, "d-b", &mut out);
    let (held, _) = deliver(&out, &mut a, 0, T0);
    deliver(&held, &mut b, 3, T0);
    assert_eq!(b.incident(id).unwrap().ladder.offers[0].asking, None, "offered, held");
    let mut off = Outbox::default();
    a.set_duty(&rid("r-a"), false, T0, &mut off).unwrap();
    assert!(!a.responder(&rid("r-a")).unwrap().on_duty);
    assert!(a.held_elsewhere(&rid("r-a")), "still held until zone 3 lets go");
    let told = BorderMessage::OffDuty { incident_id: id, responder_id: rid("r-a") };
    assert_eq!(off.across, [Across { to: zone(3), message: told }]);
    let (after, outcomes) = deliver(&off, &mut b, 3, T0);
    assert_eq!(outcomes, [BorderOutcome::Acted]);
    assert!(after
        .events
        .iter()
        .any(|e| matches!(&e.change, Change::OfferDeclined { reason: Some(r), .. } if r == "off_duty")));
    assert_eq!(offered(&b, id), ["r-b"], "the ladder goes on to zone 3's own");
    let (freed, _) = deliver(&after, &mut a, 0, T0);
    assert_eq!(freed.holds, [Hold { responder_id: rid("r-a"), incident_id: None }]);
    assert!(!a.held_elsewhere(&rid("r-a")) && !a.matcher().is_available(&rid("r-a")), "let go, and off duty");
    // Told again (a repeat): nothing more.
    assert_eq!(deliver(&off, &mut b, 3, T0).1, [BorderOutcome::Passed]);
}
