//! Device health: a device not heard within its window goes offline and a welfare check
//! opens, which closes by itself when the device is heard again; a switched-off device and a
//! low battery open one too; the centre's own silence (a restart, the broker link down) is
//! not held against devices; a mass of silent devices is worked through a slice at a time; an
//! emergency from the same device opens beside a welfare check, never inside it; families who
//! take device news hear of it as low priority; what changed is handed out once to store.

use anxin_core::testkit::{d1 as dev, one_of_each};
use anxin_core::*;

/// 10:13 in Kunming (UTC+8), outside anybody's quiet hours.
const T0: Timestamp = Timestamp(1_763_000_000_000);
const MIN: i64 = 60_000;

fn contact(name: &str, phone: &str) -> Contact {
    Contact { name: name.into(), relation: "女儿".into(), phone: phone.into(), ..Contact::default() }
}

/// The testkit's district; the elder's first contact takes no device news, the second does.
fn registry() -> Registry {
    let mut r = one_of_each();
    r.elders[0].profile.contacts =
        vec![Contact { device_news: false, ..contact("王丽", "13700000001") }, contact("王军", "13700000002")];
    r
}

/// Default health rules: a 300 s heartbeat, factor 3, 120 s grace: 17 minutes.
const WINDOW: i64 = 17 * MIN;

fn started(registry: Registry, at: Timestamp) -> Engine {
    let mut e = Engine::new(Policy::default(), registry, Resume::default());
    e.start_health(at);
    e
}

fn message(kind: EventType, msg: &str, health: HealthReport) -> DeviceEvent {
    DeviceEvent { msg_id: MessageId::parse(msg).unwrap(), event: kind, device_ts: T0, fix: FixReport::Absent, health }
}

fn heartbeat(e: &mut Engine, at: Timestamp, health: HealthReport) -> Outbox {
    let mut out = Outbox::default();
    let msg = format!("hb-{}", at.millis());
    assert_eq!(
        e.handle_device_event(&dev(), message(EventType::Heartbeat, &msg, health), at, &mut out),
        Ok(Outcome::Noted)
    );
    out
}

fn battery(pct: u8) -> HealthReport {
    HealthReport { battery_pct: Some(pct), ..HealthReport::default() }
}

fn run_to(e: &mut Engine, at: Timestamp) -> Outbox {
    let mut out = Outbox::default();
    while let Some(due) = e.next_deadline().filter(|d| *d <= at) {
        e.tick(due, &mut out);
    }
    e.tick(at, &mut out);
    out
}

fn welfare(e: &Engine) -> Option<(WelfareReason, IncidentState)> {
    e.welfare_of(&dev()).map(|i| (i.welfare.unwrap(), i.state))
}

fn changes(out: &Outbox) -> Vec<&'static str> {
    out.events
        .iter()
        .map(|ev| match &ev.change {
            Change::Opened { .. } => "opened",
            Change::Resolved { .. } => "resolved",
            Change::Closed { .. } => "closed",
            Change::FamilyTold { .. } => "family_told",
            Change::NearestStation { .. } => "nearest_station",
            _ => "other",
        })
        .collect()
}

#[test]
fn a_silent_device_goes_offline_after_its_window_and_comes_back_by_itself() {
    let mut e = started(registry(), T0);
    heartbeat(&mut e, T0.plus_millis(MIN), HealthReport::default());
    let due = T0.plus_millis(MIN + WINDOW);

    let out = run_to(&mut e, due.plus_millis(-1));
    assert!(out.events.is_empty() && welfare(&e).is_none(), "not yet: one ms short of the window");
    assert!(!e.device_health(&dev()).unwrap().offline);

    let out = run_to(&mut e, due);
    assert_eq!(welfare(&e), Some((WelfareReason::DeviceOffline, IncidentState::AwaitingDispatcher)));
    assert!(e.device_health(&dev()).unwrap().offline);
    let check = e.welfare_of(&dev()).unwrap();
    assert_eq!(check.kind, IncidentKind::Welfare);
    assert_eq!(check.dispatcher_needed, Some(DispatcherNeeded::WelfareCheck));
    assert_eq!(check.alarm.map(|a| (a.need, a.level)), Some((Need::WelfareCheck, AlarmLevel::Welfare)));
    assert_eq!(check.ladder.remind_at, None, "never reminded over the emergencies");
    assert!(check.ladder.offers.is_empty(), "never offered to a responder");
    assert!(out.commands.is_empty(), "the device is not told help is coming");
    assert_eq!(out.deltas.len(), 1, "consoles see it");
    assert_eq!(out.incidents.len(), 1, "it is stored with the commit");
    // The second contact takes device news; the first does not.
    let told: Vec<_> =
        out.notifications.iter().map(|n| (n.contact_id.as_str(), n.priority, n.notice.clone())).collect();
    assert_eq!(told, [("c2", NoticePriority::Low, Notice::DeviceNews { reason: WelfareReason::DeviceOffline })]);
    assert!(out.notifications[0].text.contains("离线"), "{}", out.notifications[0].text);
    assert_eq!(e.offline_count(), 1);
    // Nothing more while it stays silent: one check, not one a tick.
    let out = run_to(&mut e, due.plus_millis(3 * WINDOW));
    assert!(out.events.is_empty(), "{:?}", changes(&out));

    let back = due.plus_millis(3 * WINDOW + 1);
    let out = heartbeat(&mut e, back, HealthReport::default());
    assert_eq!(welfare(&e), None, "closed by itself");
    assert!(!e.device_health(&dev()).unwrap().offline);
    let ended = out.incidents.last().unwrap();
    assert_eq!((ended.state, ended.outcome.as_deref()), (IncidentState::Closed, Some("the device was heard again")));
    assert_eq!(out.notifications.iter().map(|n| n.notice.as_str()).collect::<Vec<_>>(), ["device_back"]);
    // Watched again from now: offline once more after a full window of silence.
    run_to(&mut e, back.plus_millis(WINDOW - 1));
    assert_eq!(welfare(&e), None);
    run_to(&mut e, back.plus_millis(WINDOW));
    assert_eq!(welfare(&e), Some((WelfareReason::DeviceOffline, IncidentState::AwaitingDispatcher)));
}

#[test]
fn a_device_keeps_the_interval_it_reports_and_its_models_rules() {
    let mut policy = Policy::default();
    policy.health.models.insert("watch".into(), HealthModel { heartbeat_s: 60, factor: 2.0, grace_s: 30 });
    let mut r = registry();
    r.devices[0].model = Some("watch".into());
    let mut e = Engine::new(policy, r, Resume::default());
    e.start_health(T0);
    run_to(&mut e, T0.plus_millis(150_000 - 1));
    assert_eq!(welfare(&e), None);
    run_to(&mut e, T0.plus_millis(150_000));
    assert_eq!(welfare(&e).map(|w| w.0), Some(WelfareReason::DeviceOffline), "the model's 60 s x 2 + 30 s");

    // It says it beats every 600 s: 600 x 2 + 30 s.
    let at = T0.plus_millis(200_000);
    heartbeat(&mut e, at, HealthReport { interval_s: Some(600), ..HealthReport::default() });
    assert_eq!(welfare(&e), None);
    run_to(&mut e, at.plus_millis(1_230_000 - 1));
    assert_eq!(welfare(&e), None);
    run_to(&mut e, at.plus_millis(1_230_000));
    assert!(welfare(&e).is_some());
}

#[test]
fn the_centres_own_silence_is_not_held_against_devices() {
    // Heard long before a restart: a full window from the restart, not at once.
    let mut e = started(registry(), T0);
    heartbeat(&mut e, T0, HealthReport::default());
    let rows = e.take_health_changes();
    let restart = T0.plus_millis(5 * WINDOW);
    let mut e = Engine::new(Policy::default(), registry(), Resume { health: rows, ..Resume::default() });
    e.start_health(restart);
    assert_eq!(e.device_health(&dev()).unwrap().last_seen(), Some(T0), "the snapshot came back");
    run_to(&mut e, restart.plus_millis(WINDOW - 1));
    assert_eq!(welfare(&e), None, "a full window after the restart");
    // The broker link was down until 10 minutes before the window ran out: a full window
    // from then.
    let link_back = restart.plus_millis(WINDOW - 10 * MIN);
    e.devices_unheard(link_back);
    run_to(&mut e, restart.plus_millis(WINDOW));
    assert_eq!(welfare(&e), None, "the link was down");
    run_to(&mut e, link_back.plus_millis(WINDOW));
    assert_eq!(welfare(&e).map(|w| w.0), Some(WelfareReason::DeviceOffline));
}

#[test]
fn a_low_battery_opens_a_check_that_charging_closes() {
    let mut e = started(registry(), T0);
    let out = heartbeat(&mut e, T0, battery(45));
    assert!(out.events.is_empty());
    let out = heartbeat(&mut e, T0.plus_millis(MIN), battery(18));
    assert_eq!(welfare(&e), Some((WelfareReason::LowBattery, IncidentState::AwaitingDispatcher)));
    assert_eq!(
        out.notifications.iter().map(|n| n.notice.clone()).collect::<Vec<_>>(),
        [Notice::DeviceNews { reason: WelfareReason::LowBattery }]
    );
    // Lower still: the same check, nothing more.
    let out = heartbeat(&mut e, T0.plus_millis(2 * MIN), battery(12));
    assert!(out.events.is_empty(), "{:?}", changes(&out));
    // Charging, but not yet charged: on its charger counts.
    let out = heartbeat(
        &mut e,
        T0.plus_millis(3 * MIN),
        HealthReport { battery_pct: Some(13), charging: Some(true), ..HealthReport::default() },
    );
    assert_eq!(welfare(&e), None);
    assert_eq!(out.incidents.last().unwrap().outcome.as_deref(), Some("the device was charged"));
    let health = e.device_health(&dev()).unwrap();
    assert_eq!((health.battery_pct, health.charging), (Some(13), Some(true)));

    // Off the charger at 25%: between low and charged, nothing opens.
    let out = heartbeat(
        &mut e,
        T0.plus_millis(4 * MIN),
        HealthReport { battery_pct: Some(25), charging: Some(false), ..HealthReport::default() },
    );
    assert!(out.events.is_empty());
    // The device's own low_battery event opens one whatever it last reported.
    let mut out = Outbox::default();
    e.handle_device_event(
        &dev(),
        message(EventType::LowBattery, "lb-1", HealthReport::default()),
        T0.plus_millis(5 * MIN),
        &mut out,
    )
    .unwrap();
    assert_eq!(welfare(&e).map(|w| w.0), Some(WelfareReason::LowBattery));
    // At 30% it is charged.
    heartbeat(&mut e, T0.plus_millis(6 * MIN), battery(30));
    assert_eq!(welfare(&e), None);
}

#[test]
fn a_switched_off_device_is_offline_at_once_and_a_low_battery_gives_way_to_silence() {
    let mut e = started(registry(), T0);
    heartbeat(&mut e, T0, battery(10));
    assert_eq!(welfare(&e).map(|w| w.0), Some(WelfareReason::LowBattery));
    let low = e.welfare_of(&dev()).unwrap().id;

    // Then silence: the device went flat. The low-battery check gives way to an offline one.
    let out = run_to(&mut e, T0.plus_millis(WINDOW));
    assert_eq!(welfare(&e).map(|w| w.0), Some(WelfareReason::DeviceOffline));
    let ended: Vec<_> = out.incidents.iter().filter(|i| i.id == low).map(|i| i.outcome.clone()).collect();
    assert_eq!(ended.last().unwrap().as_deref(), Some("superseded: the device went silent"));
    assert!(
        !out.notifications.iter().any(|n| n.notice.as_str() == "device_back"),
        "a check giving way to a worse one is no good news"
    );

    // Heard again, then switched off by its owner.
    heartbeat(&mut e, T0.plus_millis(WINDOW + MIN), battery(60));
    assert_eq!(welfare(&e), None);
    let mut out = Outbox::default();
    let off = T0.plus_millis(WINDOW + 2 * MIN);
    e.handle_device_event(&dev(), message(EventType::PowerOff, "off-1", HealthReport::default()), off, &mut out)
        .unwrap();
    assert_eq!(welfare(&e).map(|w| w.0), Some(WelfareReason::PowerOff));
    assert!(e.device_health(&dev()).unwrap().offline);
    assert!(out.notifications.iter().any(|n| n.text.contains("关机")), "the family is asked to switch it on");
    // Nothing more opens while it is off.
    let out = run_to(&mut e, off.plus_millis(3 * WINDOW));
    assert!(out.events.is_empty());
    heartbeat(&mut e, off.plus_millis(3 * WINDOW + 1), battery(60));
    assert_eq!(welfare(&e), None);
}

#[test]
fn an_emergency_opens_beside_a_welfare_check_never_inside_it() {
    let mut e = started(registry(), T0);
    run_to(&mut e, T0.plus_millis(WINDOW));
    let check = e.welfare_of(&dev()).unwrap().id;
    // The device is back with a press: the check closes, and the press is an emergency of
    // its own, offered to the responder at once.
    let mut out = Outbox::default();
    let outcome = e
        .handle_device_event(
            &dev(),
            message(EventType::Sos, "sos-1", HealthReport::default()),
            T0.plus_millis(WINDOW + MIN),
            &mut out,
        )
        .unwrap();
    let Outcome::Opened(sos) = outcome else { panic!("{outcome:?}") };
    assert_ne!(sos, check);
    assert_eq!(e.incident(sos).unwrap().state, IncidentState::Offered);
    assert!(e.incident(check).is_none(), "the check closed: the device was heard");

    // A low battery during the emergency opens a check beside it; the emergency is untouched.
    heartbeat(&mut e, T0.plus_millis(WINDOW + 2 * MIN), battery(5));
    assert_eq!(welfare(&e).map(|w| w.0), Some(WelfareReason::LowBattery));
    assert_eq!(e.open_incident_for(&dev()).unwrap().id, sos);
    assert_eq!(e.open_incident_for(&dev()).unwrap().kind, IncidentKind::Sos);
}

#[test]
fn a_mass_of_silent_devices_is_worked_through_a_slice_a_tick() {
    let mut r = one_of_each();
    for i in 0..1_000 {
        r.devices.push(Device {
            id: DeviceId::parse(format!("m-{i}")).unwrap(),
            elder_id: r.elders[0].id.clone(),
            model: None,
            sim: None,
        });
    }
    let mut e = started(r, T0);
    let due = T0.plus_millis(WINDOW);
    let per_tick = e.policy().health.max_overdue_per_tick;
    let mut out = Outbox::default();
    e.tick(due, &mut out);
    let opened = |out: &Outbox| out.events.iter().filter(|ev| matches!(ev.change, Change::Opened { .. })).count();
    assert_eq!(opened(&out), per_tick, "one slice");
    assert!(e.next_deadline().is_some_and(|t| t <= due), "the rest are due at once");
    let mut ticks = 1;
    while e.next_deadline().is_some_and(|t| t <= due) {
        e.tick(due, &mut out);
        ticks += 1;
    }
    assert_eq!(opened(&out), 1_001, "every device in the end");
    assert_eq!(ticks, 1_001_usize.div_ceil(per_tick));
    assert_eq!(e.offline_count(), 1_001);
}

#[test]
fn device_news_waits_out_quiet_hours_and_can_be_turned_off() {
    // 23:30 in Kunming: the contact keeps quiet hours 22:00-07:00.
    let night = Timestamp(T0.millis() + (13 * 60 + 17) * MIN);
    let mut r = registry();
    r.elders[0].profile.contacts[1].quiet_hours = Some(QuietHours { from: 22 * 60, to: 7 * 60 });
    let mut e = started(r, night);
    let out = heartbeat(&mut e, night, battery(5));
    let n = &out.notifications[0];
    assert_eq!(n.contact_id, "c2");
    assert!(n.not_before > night, "held until 07:00");

    // Nobody takes device news: nobody is told, and the check still opens.
    let mut r = registry();
    r.elders[0].profile.contacts[1].device_news = false;
    let mut e = started(r, T0);
    let out = heartbeat(&mut e, T0, battery(5));
    assert!(out.notifications.is_empty());
    assert_eq!(welfare(&e).map(|w| w.0), Some(WelfareReason::LowBattery));
}

#[test]
fn retiring_a_device_ends_its_check_and_it_is_no_longer_watched() {
    let mut e = started(registry(), T0);
    heartbeat(&mut e, T0, battery(5));
    let check = e.welfare_of(&dev()).unwrap().id;
    let mut out = Outbox::default();
    let retire =
        Amend { amendment: Amendment::Retire(LedgerKind::Device, dev().to_string()), if_match: None, secret: None };
    e.amend(retire, "staff:kang", T0.plus_millis(MIN), &mut out).unwrap();
    assert!(e.incident(check).is_none());
    assert_eq!(out.incidents.last().unwrap().outcome.as_deref(), Some("the device was retired"));
    let out = run_to(&mut e, T0.plus_millis(10 * WINDOW));
    assert!(out.events.is_empty(), "a retired device never goes offline");
}

#[test]
fn what_changed_is_handed_out_once_for_the_snapshot() {
    let mut e = started(registry(), T0);
    assert!(e.take_health_changes().is_empty(), "nothing heard yet");
    heartbeat(&mut e, T0, HealthReport { battery_pct: Some(80), rssi: Some(-71), ..HealthReport::default() });
    heartbeat(&mut e, T0.plus_millis(MIN), HealthReport { rssi: Some(-90), ..HealthReport::default() });
    let rows = e.take_health_changes();
    assert_eq!(rows.len(), 1, "one row a device, however many heartbeats");
    let row = &rows[0];
    assert_eq!(
        (row.last_seen, row.battery_pct, row.rssi, row.offline),
        (Some(T0.plus_millis(MIN)), Some(80), Some(-90), false)
    );
    assert!(e.take_health_changes().is_empty(), "handed out once");
    run_to(&mut e, T0.plus_millis(MIN + WINDOW));
    let rows = e.take_health_changes();
    assert!(rows[0].offline, "going offline is a change too");
}
