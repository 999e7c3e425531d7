//! The ladder and the dispatcher's suggestions agree on who qualifies: over random districts
//! (stations with and without their own service circle, responders of every travel mode, with
//! and without first aid, on and off duty), whom the ladder would offer next is always the
//! first suggestion that is untried, within its circle and has the skill, at the same
//! distance to the bit; and when the ladder finds nobody, no suggestion qualifies. Declines
//! make the tried list grow between checks.

use anxin_core::*;
use proptest::prelude::*;

const T0: Timestamp = Timestamp(1_763_000_000_000);

#[derive(Debug, Clone)]
struct Person {
    lat: f64,
    lon: f64,
    station: usize,
    mode: TravelMode,
    first_aid: bool,
    on_duty: bool,
}

fn place() -> impl Strategy<Value = (f64, f64)> {
    // About 7 km by 6 km: some responders are out of range, some outside their circle.
    (24.97f64..25.03, 102.65f64..102.72)
}

fn person() -> impl Strategy<Value = Person> {
    (place(), 0usize..3, 0usize..3, any::<bool>(), prop::bool::weighted(0.85)).prop_map(
        |((lat, lon), station, mode, first_aid, on_duty)| Person {
            lat,
            lon,
            station,
            mode: [TravelMode::Foot, TravelMode::Ebike, TravelMode::Car][mode],
            first_aid,
            on_duty,
        },
    )
}

fn district(circles: &[Option<u32>], people: &[Person], home: (f64, f64)) -> Registry {
    let c = |(lat, lon): (f64, f64)| Coordinates::new(lat, lon).unwrap();
    Registry {
        elders: vec![Elder {
            id: ElderId::parse("e").unwrap(),
            name: "e".into(),
            address: String::new(),
            home: c(home),
            phone: None,
            notes: String::new(),
            profile: Default::default(),
        }],
        devices: vec![Device {
            id: DeviceId::parse("d").unwrap(),
            elder_id: ElderId::parse("e").unwrap(),
            model: None,
            sim: None,
        }],
        // Stations a kilometre apart up the meridian, each with its circle or the default.
        stations: (0..circles.len())
            .map(|i| Station {
                service_circle_min: circles[i],
                zone: Default::default(),
                position: c((25.0 + 0.01 * i as f64, 102.68)),
                name: format!("s{i}"),
                id: StationId::parse(format!("s{i}")).unwrap(),
                phone: None,
            })
            .collect(),
        responders: people
            .iter()
            .enumerate()
            .map(|(i, p)| Responder {
                id: ResponderId::parse(format!("r{i}")).unwrap(),
                name: format!("r{i}"),
                station_id: StationId::parse(format!("s{}", p.station % circles.len())).unwrap(),
                phone: None,
                position: c((p.lat, p.lon)),
                on_duty: p.on_duty,
                mode: p.mode,
                skills: if p.first_aid { vec!["first_aid".into()] } else { vec![] },
                position_at: None,
                token_sha256: None,
                provider_id: None,
            })
            .collect(),
        staff: vec![],
        providers: vec![],
    }
}

/// The ladder's next pick against the suggestions, for incident `id` as it stands.
fn agree(e: &Engine, id: IncidentId) -> Result<(), TestCaseError> {
    let incident = e.incident(id).expect("open");
    let tried: Vec<&str> = incident.ladder.tried.iter().map(|r| r.as_str()).collect();
    let suggestions = e.suggestions(id, usize::MAX).expect("open");
    let first =
        suggestions.iter().find(|s| s.has_skill && s.within_circle && !tried.contains(&s.responder.id.as_str()));
    match (e.best_candidate(id), first) {
        (Ok((r, d)), Some(s)) => {
            prop_assert_eq!(r.as_str(), s.responder.id.as_str(), "suggestions: {:?}", suggestions);
            prop_assert_eq!(d.to_bits(), s.distance_m.to_bits());
        }
        (Err(_), None) => {}
        (ladder, first) => {
            prop_assert!(false, "the ladder picks {ladder:?}, the first qualifying suggestion is {first:?}")
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_ladders_next_offer_is_the_first_qualifying_suggestion(
        circles in prop::collection::vec(prop::option::of(prop::sample::select(vec![5u32, 10, 15, 30])), 1..4),
        people in prop::collection::vec(person(), 0..40),
        home in place(),
        fall in any::<bool>(),
        max_offer_distance_m in 1_500.0f64..6_000.0,
        declines in 0usize..6,
    ) {
        let ladder = LadderPolicy { offers: 8, parallel: 1, station: true };
        let mut policy = Policy { max_offer_distance_m, ..Policy::default() };
        for kind in IncidentKind::EMERGENCIES {
            policy.ladders.insert(kind, ladder);
        }
        let mut e = Engine::new(policy, district(&circles, &people, home), Resume::default());
        let mut out = Outbox::default();
        let event = DeviceEvent {
            msg_id: MessageId::parse("m").unwrap(),
            event: if fall { EventType::Fall } else { EventType::Sos },
            device_ts: T0,
            fix: FixReport::Absent, health: Default::default(),
        };
        let Outcome::Opened(id) = e.handle_device_event(&DeviceId::parse("d").unwrap(), event, T0, &mut out).unwrap()
        else {
            panic!("a first press opens an incident");
        };
        agree(&e, id)?;
        for _ in 0..declines {
            let Some(offer) = e.incident(id).and_then(|i| i.ladder.offers.first().cloned()) else { break };
            e.responder_acts(&offer.responder_id, id, ResponderAction::Decline { reason: None }, T0, &mut out).unwrap();
            agree(&e, id)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Offers made at once (a kind offered to several in parallel) are the ladder's choices
    /// one after another: the same responders, in the same order, at the same distances, as
    /// one offer at a time followed by the first qualifying suggestions left.
    #[test]
    fn parallel_offers_are_the_ladders_choices_one_after_another(
        circles in prop::collection::vec(prop::option::of(prop::sample::select(vec![5u32, 10, 15, 30])), 1..4),
        people in prop::collection::vec(person(), 0..40),
        home in place(),
        fall in any::<bool>(),
        max_offer_distance_m in 1_500.0f64..6_000.0,
        parallel in 2u32..5,
    ) {
        let press = |parallel: u32| {
            let ladder = LadderPolicy { offers: 8, parallel, station: true };
            let mut policy = Policy { max_offer_distance_m, ..Policy::default() };
            for kind in IncidentKind::EMERGENCIES {
                policy.ladders.insert(kind, ladder);
            }
            let mut e = Engine::new(policy, district(&circles, &people, home), Resume::default());
            let event = DeviceEvent {
                msg_id: MessageId::parse("m").unwrap(),
                event: if fall { EventType::Fall } else { EventType::Sos },
                device_ts: T0,
                fix: FixReport::Absent, health: Default::default(),
            };
            let outcome = e.handle_device_event(&DeviceId::parse("d").unwrap(), event, T0, &mut Outbox::default());
            let Ok(Outcome::Opened(id)) = outcome else { panic!("a first press opens an incident") };
            (e, id)
        };
        let offers = |e: &Engine, id| -> Vec<(String, u64)> {
            let incident = e.incident(id).expect("open");
            incident.ladder.offers.iter().map(|o| (o.responder_id.to_string(), o.distance_m.to_bits())).collect()
        };
        let (at_once, id) = press(parallel);
        let (one, one_id) = press(1);
        let mut expected = offers(&one, one_id);
        let suggestions = one.suggestions(one_id, usize::MAX).expect("open");
        expected.extend(
            suggestions
                .iter()
                .filter(|s| s.has_skill && s.within_circle && s.worker.is_none())
                .map(|s| (s.responder.id.to_string(), s.distance_m.to_bits()))
                .take(parallel as usize - 1),
        );
        expected.truncate(parallel as usize);
        prop_assert_eq!(offers(&at_once, id), expected);
    }
}
