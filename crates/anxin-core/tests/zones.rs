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

/// Offers stay within the incident's zone: another zone's responder may be booked by that
/// zone's engine on another node at the same moment. A nearer responder of zone 0 is never
/// offered a press of zone 3, even when nobody of zone 3 is free.
#[test]
fn offers_stay_within_the_incidents_zone_however_near_another_zones_responder_is() {
    let mut district = district();
    // r-a, of zone 0, waits at the door of e-b, of zone 3; r-b, of zone 3, is further off.
    district.responders[0].position = c(25.0, 102.68);
    district.responders[1].position = c(25.01, 102.68);
    district.elders.push(elder("e-b2", Some("s-b")));
    district.devices.push(device("d-b2", "e-b2"));
    let counters = [(zone(0), Counters::default()), (zone(3), Counters::default())].into();
    let mut e = Engine::new(Policy::default(), district, Resume { counters, ..Resume::default() });
    let mut out = Outbox::default();
    let offered = |e: &Engine, id: IncidentId| -> Vec<String> {
        e.incident(id).unwrap().ladder.offers.iter().map(|o| o.responder_id.to_string()).collect()
    };
    let Outcome::Opened(b) = e.handle_device_event(&DeviceId::parse("d-b").unwrap(), sos("m1"), T0, &mut out).unwrap()
    else {
        panic!("no incident")
    };
    assert_eq!(offered(&e, b), ["r-b"], "the zone's own responder, not the nearer one of zone 0");
    let Outcome::Opened(b2) =
        e.handle_device_event(&DeviceId::parse("d-b2").unwrap(), sos("m1"), T0, &mut out).unwrap()
    else {
        panic!("no incident")
    };
    assert!(offered(&e, b2).is_empty(), "zone 0's free responder was offered zone 3's press: {:?}", offered(&e, b2));
    // Zone 0's own press goes to r-a.
    let Outcome::Opened(a) = e.handle_device_event(&DeviceId::parse("d-a").unwrap(), sos("m1"), T0, &mut out).unwrap()
    else {
        panic!("no incident")
    };
    assert_eq!(offered(&e, a), ["r-a"]);
}
