//! Device health over the real protocols (issue 21), on a clock the test moves by hand: a
//! device that stops heartbeating, or whose battery runs low, becomes a welfare check on the
//! consoles, apart from the emergencies; it closes by itself when the device is back; the
//! health is written in snapshots and read back after a restart, and an open welfare check
//! survives one without being opened twice. An elder living alone who goes quiet becomes a
//! welfare check too (abnormal inactivity). The programme's open and overdue calls are
//! counted on `/metrics`. Each story runs on SQLite with the embedded
//! broker, and on PostgreSQL and Mosquitto when `ANXIN_TEST_POSTGRES_URL` and
//! `ANXIN_TEST_MQTT_URL` name them (under `CI=true` it must).
//! The demo's simulated devices, heartbeating and pressing, are checked against the engine
//! here too, on the embedded broker.

#[macro_use]
#[allow(unused_macros)]
mod story;

use anxin_core::Timestamp;
use serde_json::{json, Value};
use std::time::Duration;
use story::*;

const MIN: u64 = 60;

fn heartbeat(n: u32, extra: Value) -> String {
    let mut body = json!({"msg_id": format!("hb-{n}"), "type": "heartbeat"});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body.to_string()
}

/// The welfare check of `device` in a console delta, as (reason, state, outcome).
fn welfare(delta: &Value) -> (String, String, Option<String>) {
    let i = &delta["incident"];
    assert_eq!(i["kind"], "welfare", "{delta}");
    (
        i["welfare"].as_str().unwrap_or_default().to_string(),
        i["state"].as_str().unwrap_or_default().to_string(),
        i["outcome"].as_str().map(str::to_string),
    )
}

async fn silent_devices_and_flat_batteries_become_welfare_checks(backend: Backend, client_id: String) {
    let clock = anxind::clock::ManualClock::starting_at(anxin_proto::wall_clock_now());
    let start = clock.now();
    let app = spawn_app_on(&backend, &client_id, |_| {}, anxind::clock::Clock::Manual(clock.clone())).await;
    let mut console = TestConsole::connect(app.http, None).await;
    assert_eq!(console.next().await["type"], "snapshot");
    let (d1, d2, d3) = (
        TestDevice::connect(&app, "d-1").await,
        TestDevice::connect(&app, "d-2").await,
        TestDevice::connect(&app, "d-3").await,
    );

    // d-1 is well; d-2 reports a flat battery: a welfare check at once, and no emergency.
    d1.publish_raw(heartbeat(1, json!({"battery_pct": 80, "rssi": -70}))).await;
    d2.publish_raw(heartbeat(2, json!({"battery_pct": 12, "rssi": -88}))).await;
    let low = console.welfare_for("d-2").await;
    assert_eq!(welfare(&low), ("low_battery".into(), "awaiting_dispatcher".into(), None));
    assert_eq!(low["incident"]["alarm"]["level"], "welfare", "{low}");
    assert_eq!(low["incident"]["dispatcher_needed"], "welfare_check");
    assert!(low["incident"]["offers"].as_array().is_none_or(Vec::is_empty), "never offered to a responder");
    let low_id = low["incident"]["id"].as_u64().unwrap();
    // The elder's daughter (who takes device news) is told, as low-priority news, in the same
    // commit.
    let events = app.store.incident_events(anxin_core::IncidentId(low_id)).await.unwrap();
    let told = events
        .iter()
        .find(|e| matches!(e.change, anxin_core::Change::FamilyTold { .. }))
        .expect("the family is told of the flat battery");
    let sent = app.store.notification(&format!("n{}", told.seq)).await.unwrap().expect("stored with the check");
    assert_eq!(
        (sent.notification.notice.as_str(), sent.notification.priority),
        ("device_news", anxin_core::NoticePriority::Low)
    );
    assert!(sent.notification.text.contains("电量不足"), "{}", sent.notification.text);

    // Ten minutes on, d-1 and d-3 beat; d-4 has never been heard. At 17 minutes (5 min x 3 +
    // 2 min) from the start d-4 is offline and d-2 (last heard at the start) too; d-1 and d-3
    // are not.
    clock.advance(Duration::from_secs(10 * MIN));
    d1.publish_raw(heartbeat(3, json!({"battery_pct": 79}))).await;
    d3.publish_raw(heartbeat(4, json!({}))).await;
    // The heartbeats are in before the clock moves on (a later press on the same link is
    // acknowledged after them).
    tokio::time::sleep(Duration::from_millis(200)).await;
    d3.press("after-beats", None).await;
    let sos = console.incident_for("d-3").await;
    assert_eq!(sos["incident"]["kind"], "sos");
    clock.advance(Duration::from_secs(7 * MIN));
    let offline = console.welfare_for("d-4").await;
    assert_eq!(welfare(&offline), ("device_offline".into(), "awaiting_dispatcher".into(), None));
    let flat = console.welfare_for("d-2").await;
    let (reason, _, outcome) = welfare(&flat);
    assert_eq!((reason.as_str(), outcome.as_deref()), ("low_battery", Some("superseded: the device went silent")));
    // It is shown resolved, then closed, then the offline check opens.
    let gone_silent = loop {
        let m = console.welfare_for("d-2").await;
        if welfare(&m).0 == "device_offline" {
            break m;
        }
        assert_eq!(welfare(&m).2.as_deref(), Some("superseded: the device went silent"), "{m}");
    };
    assert_eq!(welfare(&gone_silent).1, "awaiting_dispatcher");
    // Stored: one open check for each silent device, none for d-1 or d-3, which beat.
    let open = app.store.resume(&[anxin_core::Zone::FIRST], Timestamp(0)).await.unwrap().open;
    let mut checks: Vec<&str> =
        open.iter().filter(|i| i.kind == anxin_core::IncidentKind::Welfare).map(|i| i.device_id.as_str()).collect();
    checks.sort_unstable();
    assert_eq!(checks, ["d-2", "d-4"]);
    // Counted on /metrics with the next health snapshot (every minute), for the alert on
    // devices going offline in numbers (deploy/prometheus).
    clock.advance(Duration::from_secs(MIN + 1));
    let counted = tokio::time::timeout(WAIT, async {
        while app.metric("anxin_devices_offline").await != 2.0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(counted.is_ok(), "anxin_devices_offline reads {}", app.metric("anxin_devices_offline").await);

    // d-2 is heard again, on its charger: its check closes by itself.
    d2.publish_raw(heartbeat(5, json!({"battery_pct": 14, "charging": true}))).await;
    let resolved = console.welfare_for("d-2").await;
    assert_eq!(
        welfare(&resolved),
        ("device_offline".into(), "resolved".into(), Some("the device was heard again".into()))
    );
    let back = console.welfare_for("d-2").await;
    assert_eq!(welfare(&back), ("device_offline".into(), "closed".into(), Some("the device was heard again".into())));
    let changes = app.store.incident_events(anxin_core::IncidentId(low_id)).await.unwrap();
    assert!(changes.iter().any(|e| matches!(e.change, anxin_core::Change::Opened { welfare: Some(_), .. })));

    // The snapshot: a minute on, the health of every device heard is in the store.
    clock.advance(Duration::from_secs(MIN + 1));
    let stored = tokio::time::timeout(WAIT, async {
        loop {
            let health = app.store.resume(&[anxin_core::Zone::FIRST], Timestamp(0)).await.unwrap().health;
            if health.iter().any(|h| h.device_id.as_str() == "d-2" && h.charging == Some(true)) {
                break health;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the snapshot is written");
    let d1_row = stored.iter().find(|h| h.device_id.as_str() == "d-1").expect("d-1's health is stored");
    assert_eq!((d1_row.battery_pct, d1_row.rssi, d1_row.offline), (Some(79), Some(-70), false));
    let d4_row = stored.iter().find(|h| h.device_id.as_str() == "d-4").expect("going offline is stored");
    assert!(d4_row.offline && d4_row.last_seen.is_none());
    assert!(clock.now().millis() - start.millis() > 17 * 60_000);

    // A restart: d-4's check is still open, once; d-1's battery came back from the store.
    app.stop().await;
    let app = spawn_app_on(&backend, &client_id, |_| {}, anxind::clock::Clock::Manual(clock.clone())).await;
    let mut console = TestConsole::connect(app.http, None).await;
    let snapshot = console.next().await;
    let open: Vec<&Value> = snapshot["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["kind"] == "welfare" && i["device_id"] == "d-4")
        .collect();
    assert_eq!(open.len(), 1, "{snapshot}");
    let resumed = app.store.resume(&[anxin_core::Zone::FIRST], Timestamp(0)).await.unwrap().health;
    assert!(resumed.iter().any(|h| h.device_id.as_str() == "d-1" && h.battery_pct == Some(79)));
    // d-4 heard at last: its check closes.
    let d4 = TestDevice::connect(&app, "d-4").await;
    d4.publish_raw(heartbeat(6, json!({"battery_pct": 90}))).await;
    let resolved = console.welfare_for("d-4").await;
    assert_eq!(welfare(&resolved).1, "resolved");
    let closed = console.welfare_for("d-4").await;
    assert_eq!(welfare(&closed).1, "closed");
    assert!(app.metric("anxin_mqtt_payloads_rejected_total{reason=\"bad_health\"}").await == 0.0);
    d4.publish_raw(heartbeat(7, json!({"battery_pct": 140}))).await;
    tokio::time::timeout(WAIT, async {
        while app.metric("anxin_mqtt_payloads_rejected_total{reason=\"bad_health\"}").await < 1.0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a battery of 140% is counted as bad_health");
    app.stop().await;
}

/// An elder living alone whose watch reports movement goes quiet: after the quiet hours a
/// welfare check of reason `inactive` opens on the consoles, with a note saying why, and her
/// son is told; what was learned of her is in the store's snapshot; the check survives a
/// restart, once, and closes by itself when she moves again.
async fn a_quiet_elder_living_alone_becomes_a_welfare_check(backend: Backend, client_id: String) {
    let clock = anxind::clock::ManualClock::starting_at(anxin_proto::wall_clock_now());
    // Every hour a waking hour and one of them quiet enough, so that the story does not hang
    // on the time of day it runs at; devices may be silent for hours without going offline.
    let adjust = |c: &mut anxind::config::Config| {
        c.activity.quiet_hours = 1;
        c.activity.day_start = "00:00".into();
        c.activity.day_end = "24:00".into();
        c.health.factor = 100.0;
    };
    let app = spawn_app_on(&backend, &client_id, adjust, anxind::clock::Clock::Manual(clock.clone())).await;
    let mut console = TestConsole::connect(app.http, None).await;
    assert_eq!(console.next().await["type"], "snapshot");
    let (d1, d2) = (TestDevice::connect(&app, "d-1").await, TestDevice::connect(&app, "d-2").await);

    // d-1's watch saw her move: she is watched from now. d-2 beats without saying: not watched.
    d1.publish_raw(json!({"msg_id": "mv-1", "type": "motion"}).to_string()).await;
    d2.publish_raw(heartbeat(1, json!({"battery_pct": 80}))).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // 59 minutes of heartbeats that saw nothing: not yet.
    clock.advance(Duration::from_secs(59 * MIN));
    d1.publish_raw(heartbeat(2, json!({"active": false, "battery_pct": 70}))).await;
    d2.publish_raw(heartbeat(3, json!({}))).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let open = app.store.resume(&[anxin_core::Zone::FIRST], Timestamp(0)).await.unwrap().open;
    assert!(open.is_empty(), "59 quiet minutes are not an hour: {open:?}");
    // An hour and a minute since she moved: a welfare check for her, none for d-2's elder.
    clock.advance(Duration::from_secs(2 * MIN));
    let quiet = console.welfare_for("d-1").await;
    assert_eq!(welfare(&quiet), ("inactive".into(), "awaiting_dispatcher".into(), None));
    assert_eq!(quiet["incident"]["alarm"]["level"], "welfare", "{quiet}");
    let id = anxin_core::IncidentId(quiet["incident"]["id"].as_u64().unwrap());
    let events = app.store.incident_events(id).await.unwrap();
    let note = events.iter().find_map(|e| match &e.change {
        anxin_core::Change::Note { text } => Some(text.clone()),
        _ => None,
    });
    let note = note.expect("the check says why");
    assert!(note.starts_with("No activity for 1 waking hours. Waking hours 00-24"), "{note}");
    let told = events.iter().find(|e| matches!(e.change, anxin_core::Change::FamilyTold { .. })).expect("told");
    let sent = app.store.notification(&format!("n{}", told.seq)).await.unwrap().expect("stored with the check");
    assert!(sent.notification.text.contains("没有活动"), "{}", sent.notification.text);
    let open = app.store.resume(&[anxin_core::Zone::FIRST], Timestamp(0)).await.unwrap().open;
    let checks: Vec<_> = open.iter().filter(|i| i.kind == anxin_core::IncidentKind::Welfare).collect();
    assert_eq!(checks.len(), 1, "only the watched elder: {checks:?}");

    // The snapshot keeps what was learned of her.
    clock.advance(Duration::from_secs(MIN + 1));
    let watched = tokio::time::timeout(WAIT, async {
        loop {
            let activity = app.store.resume(&[anxin_core::Zone::FIRST], Timestamp(0)).await.unwrap().activity;
            if !activity.is_empty() {
                break activity;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the snapshot is written");
    assert_eq!(watched.len(), 1);
    assert_eq!((watched[0].elder_id.as_str(), watched[0].device_id.as_str()), ("e-1", "d-1"));
    assert_eq!(watched[0].days.len(), anxin_core::activity::DAYS);
    assert!(watched[0].days.iter().any(|d| *d != 0), "the hours she was active in");

    // A restart: the check is open once, and her watch is back.
    app.stop().await;
    let app = spawn_app_on(&backend, &client_id, adjust, anxind::clock::Clock::Manual(clock.clone())).await;
    let mut console = TestConsole::connect(app.http, None).await;
    let snapshot = console.next().await;
    let open: Vec<&Value> =
        snapshot["incidents"].as_array().unwrap().iter().filter(|i| i["welfare"] == "inactive").collect();
    assert_eq!(open.len(), 1, "{snapshot}");
    // She moves: the check closes by itself.
    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.publish_raw(heartbeat(4, json!({"active": true}))).await;
    let resolved = console.welfare_for("d-1").await;
    assert_eq!(welfare(&resolved), ("inactive".into(), "resolved".into(), Some("the elder was active again".into())));
    assert_eq!(welfare(&console.welfare_for("d-1").await).1, "closed");
    // An `active` that is not a boolean is refused as bad health, the rest kept.
    d1.publish_raw(heartbeat(5, json!({"active": "yes", "battery_pct": 66}))).await;
    tokio::time::timeout(WAIT, async {
        while app.metric("anxin_mqtt_payloads_rejected_total{reason=\"bad_health\"}").await < 1.0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("counted as bad_health");
    app.stop().await;
}

/// The scheduled welfare programme: e-1 is phoned daily. The call falls due and shows in the
/// welfare list; unanswered, it is tried again two hours later; answered, it is done; the
/// programme's ledger is exported as CSV; a restart keeps what was done.
async fn scheduled_calls_fall_due_are_tried_again_and_exported(backend: Backend, client_id: String) {
    let clock = anxind::clock::ManualClock::starting_at(anxin_proto::wall_clock_now());
    let mut registry = registry();
    registry.elders[0].profile.schedule =
        anxin_core::WelfareSchedule { call_every_days: Some(1), visit_every_days: None };
    // Devices' silence is not what this story is about.
    let adjust = |c: &mut anxind::config::Config| c.health.enabled = false;
    let app =
        spawn_app_from(&backend, &client_id, registry.clone(), adjust, anxind::clock::Clock::Manual(clock.clone()))
            .await;
    let mut console = TestConsole::connect(app.http, None).await;
    assert_eq!(console.next().await["type"], "snapshot");
    // The first call falls due some time in the first day (spread by the elder's id).
    clock.advance(Duration::from_secs(24 * 60 * MIN));
    let call = console.welfare_for("d-1").await;
    assert_eq!(welfare(&call), ("scheduled_call".into(), "awaiting_dispatcher".into(), None));
    let id = call["incident"]["id"].as_u64().unwrap();
    let ask = |action: &str, outcome: &str| json!({"type": "command", "incident_id": id, "action": action, "outcome": outcome});
    for action in ["resolve", "close"] {
        let answer = console.ask(ask(action, "no_answer: rang ten times")).await;
        assert_eq!(answer["ok"], true, "{answer}");
    }
    // Two hours later, again.
    clock.advance(Duration::from_secs(119 * MIN));
    tokio::time::sleep(Duration::from_millis(200)).await;
    clock.advance(Duration::from_secs(2 * MIN));
    let retry = loop {
        let m = console.welfare_for("d-1").await;
        if m["incident"]["id"].as_u64() != Some(id) {
            break m;
        }
    };
    assert_eq!(welfare(&retry).0, "scheduled_call");
    let retry_id = retry["incident"]["id"].as_u64().unwrap();
    for action in ["resolve", "close"] {
        let answer = console
            .ask(json!({"type": "command", "incident_id": retry_id, "action": action, "outcome": "well: she is fine"}))
            .await;
        assert_eq!(answer["ok"], true, "{answer}");
    }

    // The programme's ledger, for a supervisor.
    let zhao = sign_in(app.http, "zhao").await;
    let (status, head, csv) =
        http_exchange(app.http, "GET", "/api/v1/admin/exports/programme", &[("Cookie", &zhao)], "").await;
    assert_eq!(status, 200, "{csv}");
    assert!(head.to_lowercase().contains("text/csv"), "{head}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "task_id,elder_id,device_id,task,due_at,state,ended_at,outcome,overdue");
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(
        lines[1].starts_with(&format!("{id},e-1,d-1,call,")) && lines[1].contains("\"no_answer: rang ten times\",no"),
        "{csv}"
    );
    assert!(lines[2].contains(",closed,") && lines[2].contains("\"well: she is fine\""), "{csv}");
    assert_eq!(lines[3], "# open 0, of them overdue 0; done 2, of them late 0");
    let wang = sign_in(app.http, "wang").await;
    let (status, _, _) =
        http_exchange(app.http, "GET", "/api/v1/admin/exports/programme", &[("Cookie", &wang)], "").await;
    assert_eq!(status, 403, "a dispatcher does not export the ledger");
    // The programme's ledger is CSV in UTF-8 only: anything else is refused, saying so.
    for query in ["?format=xlsx", "?encoding=gbk"] {
        let path = format!("/api/v1/admin/exports/programme{query}");
        let (status, _, body) = http_exchange(app.http, "GET", &path, &[("Cookie", &zhao)], "").await;
        assert_eq!(status, 422, "{query}: {body}");
        assert!(body.contains("bad_export"), "{query}: {body}");
    }

    // The snapshot, then a restart: the next call is a day after the one answered, not sooner.
    clock.advance(Duration::from_secs(MIN + 1));
    tokio::time::timeout(WAIT, async {
        while app
            .store
            .resume(&[anxin_core::Zone::FIRST], Timestamp(0))
            .await
            .unwrap()
            .programme
            .iter()
            .all(|p| p.call_done.is_none())
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the snapshot is written");
    app.stop().await;
    let app = spawn_app_from(&backend, &client_id, registry, adjust, anxind::clock::Clock::Manual(clock.clone())).await;
    let mut console = TestConsole::connect(app.http, None).await;
    assert_eq!(console.next().await["type"], "snapshot");
    clock.advance(Duration::from_secs(23 * 60 * MIN));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let open = app.store.resume(&[anxin_core::Zone::FIRST], Timestamp(0)).await.unwrap().open;
    assert!(open.is_empty(), "not due again within the day: {open:?}");
    clock.advance(Duration::from_secs(60 * MIN));
    let next = console.welfare_for("d-1").await;
    assert_eq!(welfare(&next), ("scheduled_call".into(), "awaiting_dispatcher".into(), None));
    app.stop().await;
}

/// Waits until `/metrics` reads the programme's gauges as `(open, overdue)`.
async fn programme_gauges_read(app: &TestApp, want: (f64, f64)) {
    let read = || async {
        (app.metric("anxin_programme_tasks_open").await, app.metric("anxin_programme_tasks_overdue").await)
    };
    let waited = tokio::time::timeout(WAIT, async {
        while read().await != want {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "the programme's gauges read {:?}, not {want:?}", read().await);
}

/// Overdue programme work on `/metrics`: e-1 is phoned daily and a task is overdue an hour
/// past falling due. The gauges count the open call, then call it overdue, then drop it when
/// the dispatcher has phoned; each reading comes with a health snapshot (every minute).
async fn overdue_programme_work_is_counted_on_metrics(backend: Backend, client_id: String) {
    let clock = anxind::clock::ManualClock::starting_at(anxin_proto::wall_clock_now());
    let mut registry = registry();
    registry.elders[0].profile.schedule =
        anxin_core::WelfareSchedule { call_every_days: Some(1), visit_every_days: None };
    let adjust = |c: &mut anxind::config::Config| {
        c.health.enabled = false;
        c.programme.overdue_after_h = 1;
    };
    let app = spawn_app_from(&backend, &client_id, registry, adjust, anxind::clock::Clock::Manual(clock.clone())).await;
    let mut console = TestConsole::connect(app.http, None).await;
    assert_eq!(console.next().await["type"], "snapshot");
    programme_gauges_read(&app, (0.0, 0.0)).await;
    // The first call falls due some time in the first day; the next snapshot counts it, and
    // calls it overdue if it fell due an hour or more before.
    clock.advance(Duration::from_secs(24 * 60 * MIN));
    let call = console.welfare_for("d-1").await;
    assert_eq!(welfare(&call), ("scheduled_call".into(), "awaiting_dispatcher".into(), None));
    let due = call["incident"]["pressed_at"].as_i64().unwrap();
    clock.advance(Duration::from_secs(MIN + 1));
    let late = clock.now().millis() - due >= 3_600_000;
    programme_gauges_read(&app, (1.0, if late { 1.0 } else { 0.0 })).await;
    // An hour on, it is overdue whenever it fell due.
    clock.advance(Duration::from_secs(60 * MIN));
    programme_gauges_read(&app, (1.0, 1.0)).await;
    // Phoned: nothing open, nothing overdue.
    let id = call["incident"]["id"].as_u64().unwrap();
    for action in ["resolve", "close"] {
        let answer =
            console.ask(json!({"type": "command", "incident_id": id, "action": action, "outcome": "well"})).await;
        assert_eq!(answer["ok"], true, "{answer}");
    }
    clock.advance(Duration::from_secs(MIN + 1));
    programme_gauges_read(&app, (0.0, 0.0)).await;
    app.stop().await;
}

on_both_stores!(
    "health";
    silent_devices_and_flat_batteries_become_welfare_checks,
    a_quiet_elder_living_alone_becomes_a_welfare_check,
    scheduled_calls_fall_due_are_tried_again_and_exported,
    overdue_programme_work_is_counted_on_metrics
);

/// `anxind demo`'s simulated devices (`anxind::demo`), each crowd on its own MQTT connection,
/// reach a real engine: the heartbeats open the welfare checks the demo promises (the 8th
/// device flat, the 20th switched off), the presses open emergencies, and both stop when
/// told, within the two seconds `anxind demo` waits for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_devices_heartbeat_press_and_stop() {
    use anxind::demo;
    let dir = tempfile::tempdir().unwrap();
    let district = demo::district(7);
    let mut registry = registry();
    registry.elders.extend(district.elders.iter().cloned());
    registry.devices.extend(district.devices.iter().cloned());
    registry.stations.extend(district.stations.iter().cloned());
    registry.responders.extend(district.responders.iter().cloned());
    registry.providers.extend(district.providers.iter().cloned());
    let backend = Backend::embedded(dir.path());
    let app = spawn_app_from(&backend, &unique("health", "demo"), registry, |_| {}, anxind::clock::Clock::System).await;
    let mut console = TestConsole::connect(app.http, None).await;
    assert_eq!(console.next().await["type"], "snapshot");
    assert_eq!(demo::demo_health(7), demo::DemoHealth::Flat);
    assert_eq!(demo::demo_health(19), demo::DemoHealth::SwitchedOff);

    let topics = anxin_mqtt::Topics::new(&app.topic_root).unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    // A round of 320 heartbeats in 3.2 s: one every 10 ms.
    let heartbeats = tokio::spawn(demo::heartbeat_now_and_then(
        app.mqtt.clone(),
        topics.clone(),
        district.clone(),
        Duration::from_millis(3200),
        7,
        stop.clone(),
    ));
    let presses = tokio::spawn(demo::press_now_and_then(
        app.mqtt.clone(),
        topics,
        district,
        40,
        Duration::from_millis(100),
        7,
        stop.clone(),
    ));

    // Bounded: the console's own heartbeat frames would keep a wait for a delta going.
    let flat = tokio::time::timeout(WAIT, console.welfare_for("xs-d0008")).await.expect("the flat one's heartbeat");
    assert_eq!(welfare(&flat).0, "low_battery", "{flat}");
    let off = tokio::time::timeout(WAIT, console.welfare_for("xs-d0020")).await.expect("the switched-off one's");
    assert_eq!(welfare(&off).0, "power_off", "{off}");
    let pressed = tokio::time::timeout(WAIT, async {
        loop {
            let m = console.next().await;
            let i = &m["incident"];
            if m["type"] == "incident" && i["kind"] != "welfare" {
                break m;
            }
        }
    })
    .await
    .expect("a demo device presses");
    let i = &pressed["incident"];
    assert!(i["device_id"].as_str().unwrap().starts_with("xs-d00"), "{pressed}");
    assert!(["sos", "fall"].contains(&i["kind"].as_str().unwrap()), "{pressed}");

    stop.cancel();
    let (h, p) = tokio::time::timeout(Duration::from_secs(2), async { tokio::join!(heartbeats, presses) })
        .await
        .expect("the demo's devices stop when told");
    h.unwrap();
    p.unwrap();
    app.stop().await;
}
