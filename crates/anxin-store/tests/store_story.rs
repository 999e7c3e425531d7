//! One story, two databases: every test here runs against SQLite, and against PostgreSQL
//! when `ANXIN_TEST_POSTGRES_URL` names a server (required under `CI=true`).

#[macro_use]
mod both;

use anxin_core::*;
use anxin_store::{testkit, Batch, LedgerQuery, Store};
use std::sync::Arc;

const T0: Timestamp = Timestamp(1_763_000_000_000);

fn registry() -> Registry {
    let station = Station {
        id: StationId::parse("st-1").unwrap(),
        name: "前卫社区居家养老服务中心".into(),
        position: Coordinates::new(25.005, 102.69).unwrap(),
        phone: Some("0871-0000001".into()),
        service_circle_min: None,
        zone: Default::default(),
    };
    Registry {
        elders: vec![Elder {
            id: ElderId::parse("e-1").unwrap(),
            name: "张秀英".into(),
            address: "西山区前卫街道 12号".into(),
            home: Coordinates::new(25.0, 102.68).unwrap(),
            phone: None,
            notes: "独居".into(),
            profile: ElderProfile {
                birth_year: Some(1941),
                lives_alone: Some(true),
                conditions: vec!["高血压".into()],
                medications: vec!["氨氯地平".into()],
                mobility: "需拐杖".into(),
                language: "昆明话".into(),
                door_notes: "门禁 1234#".into(),
                contacts: vec![Contact {
                    name: "张丽".into(),
                    relation: "女儿".into(),
                    phone: "13700000001".into(),
                    ..Contact::default()
                }],
                ..ElderProfile::default()
            },
        }],
        devices: vec![Device {
            id: DeviceId::parse("d-1").unwrap(),
            elder_id: ElderId::parse("e-1").unwrap(),
            model: None,
            sim: None,
        }],
        responders: vec![Responder {
            id: ResponderId::parse("r-1").unwrap(),
            name: "李伟".into(),
            station_id: station.id.clone(),
            phone: None,
            position: Coordinates::new(25.001, 102.681).unwrap(),
            on_duty: true,
            mode: TravelMode::Ebike,
            skills: vec!["first_aid".into()],
            position_at: None,
            token_sha256: None,
            provider_id: None,
        }],
        stations: vec![station],
        staff: vec![Staff {
            id: "wang".into(),
            name: "王芳".into(),
            role: StaffRole::Supervisor,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        }],
        providers: vec![],
    }
}

/// A press made `after_ms` after T0 (by the device's clock too).
fn press_at(msg: &str, after_ms: i64) -> DeviceEvent {
    let device_ts = T0.plus_millis(after_ms);
    DeviceEvent {
        msg_id: MessageId::parse(msg).unwrap(),
        event: EventType::Sos,
        device_ts,
        fix: FixReport::Absent,
        health: Default::default(),
    }
}

fn press(msg: &str) -> DeviceEvent {
    press_at(msg, 0)
}

async fn commit(store: &dyn Store, out: &Outbox) {
    store.commit(Batch::of(out)).await.unwrap();
}

async fn registry_round_trips(store: Arc<dyn Store>) {
    assert_eq!(store.load_registry().await.unwrap(), Registry::default());
    let history = store.history_id().await.unwrap();
    assert_eq!(store.history_id().await.unwrap(), history, "made once, then kept");
    let mut r = registry();
    store.save_registry(&r).await.unwrap();
    assert_eq!(store.load_registry().await.unwrap(), r);
    r.elders[0].notes = "独居；门禁 1234".into();
    store.save_registry(&r).await.unwrap();
    assert_eq!(store.load_registry().await.unwrap(), r, "saving again updates in place");
}

async fn an_incident_and_its_log_survive_and_resume(store: Arc<dyn Store>) {
    store.save_registry(&registry()).await.unwrap();
    let mut engine = Engine::new(
        Policy::default(),
        store.load_registry().await.unwrap(),
        store.resume(&[anxin_core::Zone::FIRST], T0).await.unwrap(),
    );
    let device = DeviceId::parse("d-1").unwrap();
    let mut out = Outbox::default();
    let opened = engine.handle_device_event(&device, press("m-1"), T0, &mut out).unwrap();
    let Outcome::Opened(id) = opened else { panic!("{opened:?}") };
    engine.handle_device_event(&device, press_at("m-2", 5_000), T0.plus_millis(5_000), &mut out).unwrap();
    commit(&*store, &out).await;

    let stored = store.incident(id).await.unwrap().expect("incident stored");
    assert_eq!(stored.press_count, 2, "the later row in a batch wins");
    assert_eq!(stored.ladder.offers[0].responder_id.as_str(), "r-1", "the live offer survives");
    let log = store.incident_events(id).await.unwrap();
    assert_eq!(log, out.events, "the log reads back exactly, in order");
    let msg = store.message(&device, &MessageId::parse("m-1").unwrap()).await.unwrap().unwrap();
    assert_eq!(msg.incident_id, Some(id));
    assert_eq!(msg.event, Some(EventType::Sos));

    // The same batch again (a retry after an unclear failure) changes nothing.
    commit(&*store, &out).await;
    assert_eq!(store.incident_events(id).await.unwrap().len(), out.events.len());
    assert_eq!(store.incident_count().await.unwrap(), 1);

    // A new engine on the same store picks up the open incident and remembers the ids.
    let resume = store.resume(&[anxin_core::Zone::FIRST], T0.plus_millis(-1)).await.unwrap();
    assert_eq!(resume.open, vec![stored]);
    assert_eq!(resume.counters[&Zone::FIRST].incident, id.0);
    assert_eq!(resume.counters[&Zone::FIRST].seq, out.events.last().unwrap().seq);
    assert_eq!(resume.recent_messages.len(), 2);
    // What another node's consoles need of the zone: the same open incidents and numbers,
    // nothing else read.
    let shown = store.resume_open(&[anxin_core::Zone::FIRST]).await.unwrap();
    assert_eq!((&shown.open, &shown.counters), (&resume.open, &resume.counters));
    assert!(shown.recent_messages.is_empty() && shown.health.is_empty());
    let mut engine = Engine::new(Policy::default(), store.load_registry().await.unwrap(), resume);
    let mut again = Outbox::default();
    assert_eq!(
        engine.handle_device_event(&device, press("m-1"), T0.plus_millis(9_000), &mut again),
        Ok(Outcome::Duplicate)
    );
    assert!(again.events.is_empty() && again.messages.is_empty(), "nothing to store after a restart either");
    assert!(!engine.matcher().is_available(&ResponderId::parse("r-1").unwrap()), "the offered responder stays taken");
}

/// The wallboard's day is rebuilt from `events_since`: every event from the moment named, in
/// order, and none before it.
async fn the_days_events_read_back_from_a_moment(store: Arc<dyn Store>) {
    store.save_registry(&registry()).await.unwrap();
    let mut engine = Engine::new(
        Policy::default(),
        store.load_registry().await.unwrap(),
        store.resume(&[anxin_core::Zone::FIRST], T0).await.unwrap(),
    );
    let device = DeviceId::parse("d-1").unwrap();
    let mut out = Outbox::default();
    let Ok(Outcome::Opened(id)) = engine.handle_device_event(&device, press("m-1"), T0, &mut out) else {
        panic!("the press opened nothing")
    };
    commit(&*store, &out).await;
    let before = out.events.clone();
    let later = T0.plus_millis(30_000);
    let mut out = Outbox::default();
    engine.responder_acts(&ResponderId::parse("r-1").unwrap(), id, ResponderAction::Accept, later, &mut out).unwrap();
    commit(&*store, &out).await;
    assert_eq!(store.events_since(later).await.unwrap(), out.events, "from the moment named, nothing earlier");
    let all: Vec<_> = before.iter().chain(&out.events).cloned().collect();
    assert_eq!(store.events_since(T0).await.unwrap(), all, "every event from the press on, in order");
    assert!(store.events_since(later.plus_millis(1)).await.unwrap().is_empty());
}

async fn an_older_row_never_overwrites_a_newer_one(store: Arc<dyn Store>) {
    store.save_registry(&registry()).await.unwrap();
    let mut engine = Engine::new(Policy::default(), registry(), Default::default());
    let device = DeviceId::parse("d-1").unwrap();
    let mut first = Outbox::default();
    let Ok(Outcome::Opened(id)) = engine.handle_device_event(&device, press("m-1"), T0, &mut first) else { panic!() };
    let mut second = Outbox::default();
    engine.handle_device_event(&device, press_at("m-2", 5_000), T0.plus_millis(5_000), &mut second).unwrap();
    commit(&*store, &first).await;
    commit(&*store, &second).await;
    commit(&*store, &first).await; // a late retry of the first batch
    assert_eq!(store.incident(id).await.unwrap().unwrap().press_count, 2);
}

async fn duty_and_position_changes_are_kept(store: Arc<dyn Store>) {
    store.save_registry(&registry()).await.unwrap();
    let mut engine = Engine::new(Policy::default(), registry(), Default::default());
    let r = ResponderId::parse("r-1").unwrap();
    let mut out = Outbox::default();
    engine.responder_moved(&r, Coordinates::new(25.01, 102.69).unwrap(), T0, &mut out).unwrap();
    engine.set_duty(&r, false, T0, &mut out).unwrap();
    commit(&*store, &out).await;
    let stored = store.load_registry().await.unwrap();
    let got = stored.responders.iter().find(|x| x.id == r).unwrap();
    assert_eq!((got.on_duty, got.position), (false, Coordinates::new(25.01, 102.69).unwrap()));
    assert_eq!(got.position_at, Some(T0), "the fix keeps its age");
    assert_eq!(got.name, "李伟", "the rest of the ledger is untouched");
    // The registry file again at the next start does not undo live duty and position.
    store.save_registry(&registry()).await.unwrap();
    let again = store.load_registry().await.unwrap();
    let got = again.responders.iter().find(|x| x.id == r).unwrap();
    assert_eq!((got.on_duty, got.position), (false, Coordinates::new(25.01, 102.69).unwrap()));
}

async fn an_elders_recent_incidents_read_back_latest_first(store: Arc<dyn Store>) {
    store.save_registry(&registry()).await.unwrap();
    let mut engine = Engine::new(Policy::default(), registry(), Default::default());
    let device = DeviceId::parse("d-1").unwrap();
    let elder = ElderId::parse("e-1").unwrap();
    let mut out = Outbox::default();
    let Ok(Outcome::Opened(first)) = engine.handle_device_event(&device, press("m-1"), T0, &mut out) else { panic!() };
    let call = DispatcherAction::Escalate { number: "120".into(), reference: Some("KM-0012".into()) };
    engine.dispatcher_acts("wang", first, call, T0.plus_millis(1_000), &mut out).unwrap();
    let ended = DispatcherAction::FalseAlarm { reason: "pressed by mistake".into() };
    engine.dispatcher_acts("wang", first, ended, T0.plus_millis(2_000), &mut out).unwrap();
    let later = T0.plus_millis(60_000);
    let Ok(Outcome::Opened(second)) = engine.handle_device_event(&device, press_at("m-2", 60_000), later, &mut out)
    else {
        panic!()
    };
    commit(&*store, &out).await;

    let all = store.elder_incidents(&elder, T0, 10).await.unwrap();
    assert_eq!(all.iter().map(|i| i.id).collect::<Vec<_>>(), vec![second, first], "the latest first, ended ones too");
    assert_eq!(all[1].state, IncidentState::FalseAlarm);
    assert_eq!(all[1].outcome.as_deref(), Some("pressed by mistake"));
    let called = all[1].emergency_call.as_ref().expect("the call to 120 is kept");
    assert_eq!((called.number.as_str(), called.reference.as_deref()), ("120", Some("KM-0012")));
    assert!(!all[0].state.is_terminal(), "the open one is there as well");

    let recent = store.elder_incidents(&elder, T0.plus_millis(1), 10).await.unwrap();
    assert_eq!(recent.iter().map(|i| i.id).collect::<Vec<_>>(), vec![second], "nothing pressed before `since`");
    assert_eq!(store.elder_incidents(&elder, T0, 1).await.unwrap()[0].id, second, "at most `limit`, the latest");
    let nobody = ElderId::parse("e-2").unwrap();
    assert!(store.elder_incidents(&nobody, T0, 10).await.unwrap().is_empty());
}

/// A contact's family-page tokens: only the hash is kept, a new one revokes the earlier,
/// revoking stops every live one; push subscriptions are per contact, replaced by endpoint.
async fn family_tokens_and_push_subscriptions(store: Arc<dyn Store>) {
    let e1 = ElderId::parse("e-1").unwrap();
    let first = "a".repeat(64);
    let second = "b".repeat(64);
    assert_eq!(store.family_token(&first).await.unwrap(), None, "nothing issued yet");
    store.issue_family_token(&first, &e1, "c1", "wang", T0).await.unwrap();
    let token = store.family_token(&first).await.unwrap().expect("stored by its hash");
    assert_eq!((token.elder_id.as_str(), token.contact_id.as_str(), token.issued_by.as_str()), ("e-1", "c1", "wang"));
    assert_eq!((token.issued_at, token.revoked_at), (T0, None));
    store.issue_family_token(&"c".repeat(64), &e1, "c2", "wang", T0).await.unwrap();

    // Re-issuing for c1 revokes c1's first token, not c2's.
    store.issue_family_token(&second, &e1, "c1", "li", T0.plus_millis(1000)).await.unwrap();
    assert_eq!(store.family_token(&first).await.unwrap().unwrap().revoked_at, Some(T0.plus_millis(1000)));
    assert_eq!(store.family_token(&second).await.unwrap().unwrap().revoked_at, None);
    let live = store.live_family_tokens(&e1).await.unwrap();
    let live: Vec<(&str, &str)> = live.iter().map(|t| (t.contact_id.as_str(), t.token_sha256.as_str())).collect();
    assert_eq!(live, [("c1", second.as_str()), ("c2", "c".repeat(64).as_str())]);

    assert_eq!(store.revoke_family_tokens(&e1, "c1", T0.plus_millis(2000)).await.unwrap(), 1);
    assert_eq!(store.revoke_family_tokens(&e1, "c1", T0.plus_millis(3000)).await.unwrap(), 0, "nothing left");
    assert_eq!(store.family_token(&second).await.unwrap().unwrap().revoked_at, Some(T0.plus_millis(2000)));
    assert_eq!(store.live_family_tokens(&e1).await.unwrap().len(), 1, "c2's stays");

    let sub = |endpoint: &str, contact: &str, key: &str| anxin_core::PushSubscription {
        endpoint: endpoint.into(),
        elder_id: e1.clone(),
        contact_id: contact.into(),
        p256dh: key.into(),
        auth: "auth-1".into(),
        created_at: T0,
    };
    store.save_push_subscription(&sub("https://push.example/1", "c1", "k1")).await.unwrap();
    store.save_push_subscription(&sub("https://push.example/2", "c2", "k2")).await.unwrap();
    store.save_push_subscription(&sub("https://push.example/1", "c1", "k1-new")).await.unwrap();
    let c1 = store.push_subscriptions(&e1, "c1").await.unwrap();
    assert_eq!(c1, [sub("https://push.example/1", "c1", "k1-new")], "the same endpoint replaces its keys");
    assert!(!store.delete_push_subscription(&e1, "c1", "https://push.example/2").await.unwrap(), "not c1's");
    assert!(store.delete_push_subscription(&e1, "c1", "https://push.example/1").await.unwrap());
    assert!(store.push_subscriptions(&e1, "c1").await.unwrap().is_empty());
    assert_eq!(store.push_subscriptions(&e1, "c2").await.unwrap().len(), 1);
}

/// A carer's visit log: a check-in, an overdue visit with its lone-worker incident, a
/// check-out; read back latest first, the open visits resumed, an older row never winning.
async fn carer_visits_are_logged_and_resumed(store: Arc<dyn Store>) {
    let mut r = registry();
    let mut carer = r.responders[0].clone();
    carer.id = ResponderId::parse("c-1").unwrap();
    carer.skills = vec!["carer".into()];
    r.responders.push(carer);
    store.save_registry(&r).await.unwrap();
    let c = ResponderId::parse("c-1").unwrap();
    let home = r.elders[0].home;
    let mut engine = Engine::new(Policy::default(), r.clone(), Default::default());
    let mut first = Outbox::default();
    let check_in = VisitAction::CheckIn { elder_id: r.elders[0].id.clone(), at: home };
    engine.carer_acts(&c, check_in, T0, &mut first).unwrap();
    commit(&*store, &first).await;
    let resume = store.resume(&[anxin_core::Zone::FIRST], T0).await.unwrap();
    assert_eq!(resume.visits, first.visits);
    assert_eq!(resume.counters[&Zone::FIRST].visit, 1);
    // Overdue: the lone-worker incident and the visit's row go in one commit.
    let late = T0.plus_millis(90 * 60_000);
    let mut second = Outbox::default();
    engine.tick(late, &mut second);
    commit(&*store, &second).await;
    let alert = engine.visit_of(&c).unwrap().alert.expect("an alert");
    let stored = store.incident(alert).await.unwrap().unwrap();
    assert_eq!((stored.kind, stored.carer.clone()), (IncidentKind::LoneWorker, Some(c.clone())));
    assert_eq!(stored.device_id.as_str(), "carer:c-1");
    commit(&*store, &first).await; // a late retry of the first batch changes nothing
    let resumed = store.resume(&[anxin_core::Zone::FIRST], T0).await.unwrap();
    assert_eq!(resumed.visits[0].alert, Some(alert));
    assert!(resumed.visits[0].overdue);
    // Resumed, the engine knows the visit and its alert.
    let again = Engine::new(Policy::default(), r.clone(), resumed);
    assert_eq!(again.visit_of(&c).unwrap().alert, Some(alert));
    let mut third = Outbox::default();
    engine.carer_acts(&c, VisitAction::CheckOut { at: home }, late.plus_millis(60_000), &mut third).unwrap();
    commit(&*store, &third).await;
    assert!(store.resume(&[anxin_core::Zone::FIRST], T0).await.unwrap().visits.is_empty(), "checked out: not resumed");
    let log = store.carer_visits(Some(&c), T0, 10).await.unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].checked_out_at, Some(late.plus_millis(60_000)));
    assert_eq!(log[0].checkout_at, Some(home));
    assert!(log[0].overdue && log[0].alert.is_none());
    assert_eq!(store.carer_visits(None, T0, 10).await.unwrap(), log);
    assert!(store.carer_visits(Some(&ResponderId::parse("r-1").unwrap()), T0, 10).await.unwrap().is_empty());
    assert!(store.incident(alert).await.unwrap().unwrap().state.is_terminal(), "the alert ended with the check-out");
}

/// A device's SIM number (issue 22) is kept wherever the ledger is written: by the registry
/// file at start and by the engine's commit of a change, and read back at start, on the
/// ledger page, and by a search for the number.
async fn a_devices_sim_number_is_stored_and_read_back(store: Arc<dyn Store>) {
    let mut r = registry();
    r.devices[0].model = Some("watch-4g".into());
    r.devices[0].sim = Some("+86 138-0000-0001".into());
    store.save_registry(&r).await.unwrap();
    assert_eq!(store.load_registry().await.unwrap(), r, "the file's SIM number, as written");
    r.devices[0].sim = Some("13800000011".into());
    store.save_registry(&r).await.unwrap();
    assert_eq!(store.load_registry().await.unwrap().devices, r.devices, "the file again changes it in place");

    let mut engine = Engine::new(Policy::default(), r.clone(), Default::default());
    let d2 = Device {
        id: DeviceId::parse("d-2").unwrap(),
        elder_id: ElderId::parse("e-1").unwrap(),
        model: None,
        sim: Some("13900000002".into()),
    };
    let mut out = Outbox::default();
    engine.amend(Amend::new(Amendment::Create(Entry::Device(d2.clone()))), "admin", T0, &mut out).unwrap();
    commit(&*store, &out).await;
    let loaded = store.load_registry().await.unwrap();
    assert_eq!(loaded.devices, vec![r.devices[0].clone(), d2.clone()], "a live change writes it too");
    let item = store.ledger_item(LedgerKind::Device, "d-2").await.unwrap().unwrap();
    assert_eq!(item.entry, Entry::Device(d2.clone()));

    let mut query = LedgerQuery::new(LedgerKind::Device);
    query.search = Some("1390000".into());
    let page = store.ledger_page(&query).await.unwrap();
    assert_eq!(page.items.iter().map(|i| i.entry.clone()).collect::<Vec<_>>(), vec![Entry::Device(d2.clone())]);
    query.search = Some("138-0000".into());
    assert_eq!(store.ledger_page(&query).await.unwrap().total, 0, "d-1's number is now 13800000011");

    // A later change without a SIM number takes it away. Written as the record the engine
    // would commit, so that this checks the store alone.
    let d2_without = Device { sim: None, ..d2 };
    let mut later = out.ledger[0].clone();
    later.seq += 1;
    later.action = LedgerAction::Updated;
    later.entry = Entry::Device(d2_without.clone());
    later.secret = None;
    let out = Outbox { ledger: vec![later], ..Outbox::default() };
    commit(&*store, &out).await;
    let loaded = store.load_registry().await.unwrap();
    assert_eq!(loaded.devices[1], d2_without);
    assert_eq!(loaded.devices[0].sim.as_deref(), Some("13800000011"), "the other device keeps its number");
}

/// [`registry`] with a second station in zone 3, and an elder, a device and a responder there.
fn two_zones() -> Registry {
    let mut r = registry();
    let mut station = r.stations[0].clone();
    station.id = StationId::parse("st-3").unwrap();
    station.zone = Zone::new(3).unwrap();
    let mut elder = r.elders[0].clone();
    elder.id = ElderId::parse("e-3").unwrap();
    elder.profile.station_id = Some(station.id.clone());
    let mut responder = r.responders[0].clone();
    responder.id = ResponderId::parse("r-3").unwrap();
    responder.station_id = station.id.clone();
    r.devices.push(Device { id: DeviceId::parse("d-3").unwrap(), elder_id: elder.id.clone(), model: None, sim: None });
    r.elders.push(elder);
    r.responders.push(responder);
    r.stations.push(station);
    r
}

async fn zones_engines_share_a_store_and_each_resumes_its_own(store: Arc<dyn Store>) {
    store.save_registry(&two_zones()).await.unwrap();
    let loaded = store.load_registry().await.unwrap();
    assert_eq!(loaded.zones(), [Zone::FIRST, Zone::new(3).unwrap()], "the stations' zones read back");
    let engine = |zone: Zone, resume: Resume| Engine::new(Policy::default(), loaded.clone().zone_part(zone), resume);
    let (z0, z3) = (Zone::FIRST, Zone::new(3).unwrap());
    let mut zero = engine(z0, store.resume(&[z0], T0).await.unwrap());
    let mut three = engine(z3, store.resume(&[z3], T0).await.unwrap());
    let (d1, d3) = (DeviceId::parse("d-1").unwrap(), DeviceId::parse("d-3").unwrap());
    let (mut out0, mut out3) = (Outbox::default(), Outbox::default());
    let Outcome::Opened(i0) = zero.handle_device_event(&d1, press("m-1"), T0, &mut out0).unwrap() else { panic!() };
    let Outcome::Opened(i3) = three.handle_device_event(&d3, press("m-1"), T0, &mut out3).unwrap() else { panic!() };
    // The two engines commit side by side; nothing either writes is the other's number.
    commit(&*store, &out3).await;
    commit(&*store, &out0).await;
    assert_eq!((i0.0, i3.0), (1, z3.base() + 1));
    assert_eq!(store.incident_count().await.unwrap(), 2);

    let r0 = store.resume(&[z0], T0.plus_millis(-1)).await.unwrap();
    let r3 = store.resume(&[z3], T0.plus_millis(-1)).await.unwrap();
    assert_eq!(r0.open.iter().map(|i| i.id).collect::<Vec<_>>(), [i0]);
    assert_eq!(r3.open.iter().map(|i| i.id).collect::<Vec<_>>(), [i3]);
    assert_eq!(
        (r0.counters[&z0].incident, r3.counters[&z3].incident),
        (i0.0, i3.0),
        "each zone's highest, within its range"
    );
    assert_eq!(r0.counters[&z0].seq, out0.events.last().unwrap().seq);
    assert_eq!(r3.counters[&z3].seq, out3.events.last().unwrap().seq);
    // A wallboard following each zone's events from a cursor (anxind::day): the zone's own,
    // after the cursor, in order, at most as many as asked.
    assert_eq!(store.last_event_seq(z3).await.unwrap(), out3.events.last().unwrap().seq);
    assert_eq!(
        store.last_event_seq(Zone::new(5).unwrap()).await.unwrap(),
        Zone::new(5).unwrap().base(),
        "none: its base"
    );
    assert_eq!(store.events_after(z3, z3.base(), 100).await.unwrap(), out3.events);
    assert_eq!(store.events_after(z0, 0, 100).await.unwrap(), out0.events, "zone 0's alone");
    assert_eq!(store.events_after(z3, out3.events[0].seq, 100).await.unwrap(), out3.events[1..]);
    assert_eq!(store.events_after(z3, z3.base(), 1).await.unwrap(), out3.events[..1]);
    assert!(store.events_after(z3, out3.events.last().unwrap().seq, 100).await.unwrap().is_empty());
    assert_eq!(r0.recent_messages.iter().map(|m| m.1.as_str()).collect::<Vec<_>>(), ["d-1"]);
    assert_eq!(r3.recent_messages.iter().map(|m| m.1.as_str()).collect::<Vec<_>>(), ["d-3"]);
    assert!(store.resume(&[Zone::new(5).unwrap()], T0).await.unwrap().open.is_empty(), "a zone with nothing stored");

    // Zone 3's engine, resumed, goes on with its own numbers and its own ledger log.
    let mut three = engine(z3, r3);
    let mut out = Outbox::default();
    let mut station = loaded.stations[1].clone();
    station.name = "西山三站".into();
    let amended =
        three.amend(Amend::new(Amendment::Update(Entry::Station(station))), "staff:wang", T0, &mut out).unwrap();
    three.handle_device_event(&d3, press_at("m-2", 1_000), T0.plus_millis(1_000), &mut out).unwrap();
    commit(&*store, &out).await;
    let again = store.resume(&[z3], T0).await.unwrap();
    assert_eq!(again.counters[&z3].ledger, amended.seq.unwrap());
    assert!(z3.holds(again.counters[&z3].ledger));
    assert_eq!(store.resume(&[z0], T0).await.unwrap().counters[&z0].ledger, 0, "zone 0 has logged no change");

    // One engine may run both: it resumes each zone's part and numbers.
    let both = store.resume(&[z0, z3], T0.plus_millis(-1)).await.unwrap();
    assert_eq!(both.open.iter().map(|i| i.id).collect::<Vec<_>>(), [i0, i3]);
    assert_eq!(both.counters.keys().copied().collect::<Vec<_>>(), [z0, z3]);
    assert_eq!(both.recent_messages.len(), 3);
    assert_eq!(store.ledger_zones().await.unwrap(), [z0, z3]);

    // A responder of zone 3 held for zone 0's incident (offers across a border): their row
    // says so, zone 3's next owner reads it (and zone 0's does not), and letting go clears it.
    let r3 = ResponderId::parse("r-3").unwrap();
    let hold =
        |incident_id| Outbox { holds: vec![Hold { responder_id: r3.clone(), incident_id }], ..Outbox::default() };
    commit(&*store, &hold(Some(i0))).await;
    assert_eq!(store.resume(&[z3], T0).await.unwrap().holds, [(r3.clone(), i0)]);
    assert_eq!(store.resume(&[z0, z3], T0).await.unwrap().holds, [(r3.clone(), i0)]);
    assert!(store.resume(&[z0], T0).await.unwrap().holds.is_empty(), "zone 0's responders are held for nothing");
    let next = engine(z3, store.resume(&[z3], T0).await.unwrap());
    assert!(next.held_elsewhere(&r3) && !next.matcher().is_available(&r3));
    commit(&*store, &hold(None)).await;
    assert!(store.resume(&[z3], T0).await.unwrap().holds.is_empty());
}

/// Forwarded requests acted on are stored with the batch that acted, once per id, read back
/// by id, and cleared when old; staff sessions are kept by token hash, touched, closed and
/// forgotten when idle.
async fn applied_requests_and_staff_sessions(store: Arc<dyn Store>) {
    let mut out = Outbox::default();
    let applied = |id: &str, at: i64| anxin_core::AppliedRequest {
        id: id.into(),
        answer: r#"{"type":"done"}"#.into(),
        at: Timestamp(at),
    };
    out.requests.push(applied("a:r:1", 1_000));
    commit(&*store, &out).await;
    commit(&*store, &out).await; // a retry of the same batch
    assert_eq!(store.applied_request("a:r:1").await.unwrap().as_deref(), Some(r#"{"type":"done"}"#));
    assert_eq!(store.applied_request("a:r:2").await.unwrap(), None);
    assert_eq!(store.forget_applied_requests(Timestamp(1_000)).await.unwrap(), 0, "not older than that");
    assert_eq!(store.forget_applied_requests(Timestamp(1_001)).await.unwrap(), 1);
    assert_eq!(store.applied_request("a:r:1").await.unwrap(), None);

    let session = anxin_store::StaffSession {
        token_sha256: "ab".repeat(32),
        staff_id: "wang".into(),
        staff_key: "cd".repeat(32),
        opened_at: Timestamp(10),
        used_at: Timestamp(10),
    };
    store.open_staff_session(&session).await.unwrap();
    assert_eq!(store.staff_session(&session.token_sha256).await.unwrap(), Some(session.clone()));
    store.touch_staff_session(&session.token_sha256, Timestamp(50)).await.unwrap();
    store.touch_staff_session(&session.token_sha256, Timestamp(20)).await.unwrap();
    let touched = store.staff_session(&session.token_sha256).await.unwrap().unwrap();
    assert_eq!(touched.used_at, Timestamp(50), "never moved back");
    assert_eq!(store.forget_idle_staff_sessions(Timestamp(50)).await.unwrap(), 0);
    assert!(store.close_staff_session(&session.token_sha256).await.unwrap());
    assert!(!store.close_staff_session(&session.token_sha256).await.unwrap());
    store.open_staff_session(&session).await.unwrap();
    assert_eq!(store.forget_idle_staff_sessions(Timestamp(11)).await.unwrap(), 1);
    assert_eq!(store.staff_session(&session.token_sha256).await.unwrap(), None);
}

both!(
    registry_round_trips,
    an_incident_and_its_log_survive_and_resume,
    the_days_events_read_back_from_a_moment,
    an_older_row_never_overwrites_a_newer_one,
    duty_and_position_changes_are_kept,
    an_elders_recent_incidents_read_back_latest_first,
    family_tokens_and_push_subscriptions,
    carer_visits_are_logged_and_resumed,
    a_devices_sim_number_is_stored_and_read_back,
    zones_engines_share_a_store_and_each_resumes_its_own,
    applied_requests_and_staff_sessions,
);

/// Events stored before migration 3 carry their whole event in the body; after the upgrade
/// they read back the same as events stored since.
mod upgrade {
    use super::*;
    use sqlx::Connection;

    /// An incident's events as the engine makes them, and the rows version 2 stored for them.
    fn old_rows() -> (IncidentId, Vec<IncidentEvent>, Vec<String>) {
        let mut engine = Engine::new(Policy::default(), registry(), Default::default());
        let mut out = Outbox::default();
        let Ok(Outcome::Opened(id)) =
            engine.handle_device_event(&DeviceId::parse("d-1").unwrap(), press("m-1"), T0, &mut out)
        else {
            panic!("the press opens an incident")
        };
        assert!(out.events.len() >= 2, "an opening and an offer: {:?}", out.events);
        let rows = out
            .events
            .iter()
            .map(|e| {
                let actor = match &e.actor {
                    Actor::Device(d) => format!("device:{d}"),
                    Actor::Engine => "engine".to_string(),
                    other => panic!("not in this story: {other:?}"),
                };
                let body = serde_json::to_string(e).unwrap().replace('\'', "''");
                let change = serde_json::to_value(&e.change).unwrap()["type"].as_str().unwrap().to_string();
                format!(
                    "INSERT INTO incident_events (seq, incident_id, at, actor, change, body) \
                     VALUES ({}, {}, {}, '{actor}', '{change}', '{body}')",
                    e.seq,
                    e.incident_id.0,
                    e.at.millis()
                )
            })
            .collect();
        (id, out.events, rows)
    }

    /// A database as version 2 left it, with `rows` in it.
    fn at_version_2(init: &str, staff: &str, rows: &[String]) -> String {
        let migrations = "CREATE TABLE anxin_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL);\n\
             INSERT INTO anxin_migrations (version, name, applied_at) VALUES (1, 'init', 0), (2, 'staff_and_profiles', 0);";
        format!("{migrations}\n{init}\n{staff}\n{};", rows.join(";\n"))
    }

    async fn reads_back(url: &str, id: IncidentId, events: &[IncidentEvent]) {
        let store = anxin_store::open(url).await.expect("the upgrade applies");
        assert_eq!(store.incident_events(id).await.unwrap(), events, "old events read back exactly");
    }

    #[tokio::test]
    async fn sqlite_old_event_bodies_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("anxin.db").display());
        let (id, events, rows) = old_rows();
        let mut db = sqlx::SqliteConnection::connect(&url).await.unwrap();
        let script = at_version_2(
            include_str!("../../../migrations/sqlite/0001_init.sql"),
            include_str!("../../../migrations/sqlite/0002_staff_and_profiles.sql"),
            &rows,
        );
        sqlx::raw_sql(&script).execute(&mut db).await.unwrap();
        db.close().await.unwrap();
        reads_back(&url, id, &events).await;
    }

    #[tokio::test]
    async fn postgres_old_event_bodies_read_back() {
        let Some(server) = testkit::postgres_server() else {
            eprintln!("skipped: {} is not set", testkit::POSTGRES_URL_VAR);
            return;
        };
        let url = testkit::fresh_postgres_database(&server).await;
        let (id, events, rows) = old_rows();
        let mut db = sqlx::PgConnection::connect(&url).await.unwrap();
        let script = at_version_2(
            include_str!("../../../migrations/postgres/0001_init.sql"),
            include_str!("../../../migrations/postgres/0002_staff_and_profiles.sql"),
            &rows,
        );
        sqlx::raw_sql(&script).execute(&mut db).await.unwrap();
        db.close().await.unwrap();
        reads_back(&url, id, &events).await;
        testkit::drop_postgres_database(&server, &url).await;
    }
}

/// Test databases of test processes that have ended are swept when the next one is made;
/// those of a process still running stay.
#[tokio::test]
async fn test_databases_of_ended_processes_are_swept() {
    use sqlx::Connection;
    let Some(server) = testkit::postgres_server() else {
        eprintln!("skipped: {} is not set", testkit::POSTGRES_URL_VAR);
        return;
    };
    let mut child = std::process::Command::new("true").spawn().expect("run true");
    let ended = child.id();
    child.wait().unwrap();
    let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
    let (gone, kept) = (format!("anxin_test_{ended}_1"), format!("anxin_test_{}_1", std::process::id()));
    for name in [&gone, &kept] {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name}")).execute(&mut admin).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
    }
    let fresh = testkit::fresh_postgres_database(&server).await;
    let exists = |name: String| {
        sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)").bind(name)
    };
    assert!(!exists(gone.clone()).fetch_one(&mut admin).await.unwrap(), "{gone} was swept");
    assert!(exists(kept.clone()).fetch_one(&mut admin).await.unwrap(), "{kept} belongs to this process");
    let base = server.rsplit_once('/').unwrap().0;
    testkit::drop_postgres_database(&server, &format!("{base}/{kept}")).await;
    testkit::drop_postgres_database(&server, &fresh).await;
}
