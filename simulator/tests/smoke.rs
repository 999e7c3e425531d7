//! The smoke scenario end to end against a real engine: built in-process through anxind's
//! public builder with the configuration the child process would get, and driven only over
//! MQTT (devices) and WebSocket (phones, consoles), as `anxin-sim run` drives a child anxind.

use anxin_sim::engine::{config_toml, Credentials, LadderKnobs, Matching, Target};
use anxin_sim::scenario::Scenario;
use anxin_sim::sim::RunOptions;
use anxin_sim::Prepared;
use anxind::{App, Config};
use std::path::Path;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_scenario_loses_nothing_and_doubles_nothing() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/smoke.toml");
    let prepared = Prepared::new("smoke", Scenario::load(&path).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let topic_root = format!("sim-test-{}/anxin", std::process::id());
    let config_path = dir.path().join("anxind.toml");
    let toml = config_toml(
        &prepared.timers(),
        &prepared.health_timers(),
        &prepared.care_timers(),
        Matching::Nearest,
        LadderKnobs::default(),
        &topic_root,
        "anxind-sim-test",
    );
    std::fs::write(&config_path, toml).unwrap();
    let store = format!("sqlite://{}", dir.path().join("anxin.db").display());
    let flags = serde_json::json!({
        "http": {"listen": "127.0.0.1:0"},
        "mqtt": {"embedded_listen": "127.0.0.1:0"},
        "store": {"url": store},
    });
    let config = Config::load(Some(&config_path), &flags).expect("the simulator's configuration is anxind's");
    let console = Credentials::for_run();
    let mut registry = prepared.registry.clone();
    registry["staff"] = serde_json::json!([console.staff_entry(&anxin_api::hash_password(&console.password))]);
    let registry: anxin_core::Registry =
        serde_json::from_value(registry).expect("the simulator's registry is anxind's");
    let app = App::build(config, Some(registry)).await.unwrap();
    let url = app.mqtt_url();
    let (host, port) = url.trim_start_matches("mqtt://").rsplit_once(':').unwrap();
    let target =
        Target { http: app.http_addr(), mqtt_host: host.into(), mqtt_port: port.parse().unwrap(), topic_root, console };
    let shutdown = CancellationToken::new();
    let engine = tokio::spawn(app.run(shutdown.clone()));

    let opts = RunOptions { drain_min: 3.0, resend_after_s: 5.0, publishers: 2, progress: false, label: "test".into() };
    let summary = tokio::time::timeout(Duration::from_secs(90), prepared.play(&target, &opts, "nearest"))
        .await
        .expect("the run ends by itself")
        .unwrap();
    eprintln!("{}", summary.table());
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(15), engine).await.unwrap().unwrap().unwrap();

    assert!(summary.presses_sent > 10, "{} presses", summary.presses_sent);
    assert!(summary.incidents_seen > 0);
    assert_eq!(summary.lost, 0, "presses lost");
    assert_eq!(summary.duplicated, 0, "presses doubled");
    assert_eq!(summary.not_on_console, 0);
    assert!(summary.care.press_to_accept_s.n > 0, "somebody accepted something");
    let json = summary.to_json();
    for key in
        ["presses_sent", "incidents_seen", "lost", "duplicated", "accepted_within_60s_pct", "on_scene_within_15min_pct"]
    {
        assert!(json.get(key).is_some(), "no {key} in {json}");
    }
    for key in ["nobody_going", "nobody_going_assigned", "nobody_going_handed_to_120"] {
        assert!(json["care"][key].is_u64(), "care.{key} in {json}");
    }
    for key in ["p50", "p99", "max"] {
        assert!(json["press_to_console_ms"][key].is_number(), "press_to_console_ms.{key} in {json}");
    }
    // Families are told and answer: the shares are reported and above zero (never timings).
    let table = summary.table();
    for line in ["family told within 60 s", "family answered"] {
        assert!(table.contains(line), "no {line:?} in\n{table}");
    }
    assert!(summary.care.with_family > 0, "no emergency of an elder with contacts");
    assert!(summary.family_told_within_60s_pct.is_some_and(|p| p > 0.0), "family told within 60 s: {json}");
    assert!(summary.family_answered_pct.is_some_and(|p| p > 0.0), "family answered: {json}");
    assert!(summary.family_answers_taken > 0 && summary.family_links_issued > 0);
    assert_eq!(summary.family_answers_refused + summary.family_answers_failed, 0, "{:?}", summary.refusal_samples);
    for key in ["family_told_within_60s_pct", "family_answered_pct"] {
        assert!(json[key].is_number() && json["care"][key].is_number(), "{key} in {json}");
    }

    // Devices heartbeat; those that went flat or were switched off were noticed within their
    // window, no live device was taken for dead, and checks closed when devices came back.
    let h = &summary.health;
    let devices = summary.devices as u64;
    assert!(
        h.heartbeats_sent >= devices,
        "every device heartbeats: {} heartbeats, {devices} devices",
        h.heartbeats_sent
    );
    assert!(h.flat > 0 && h.switched_off > 0, "{h:?}");
    assert!(h.due >= 3, "some silences lasted their window: {h:?}");
    assert_eq!((h.not_noticed, h.false_alarms, h.concurrent), (0, 0, 0), "{:?}", h.failures);
    assert_eq!(h.noticed_in_time, h.noticed);
    assert!(h.noticed >= h.due, "{h:?}");
    let flat = &h.flat_to_check_min;
    assert!(flat.n > 0, "a flat device was noticed: {h:?}");
    let (fastest, slowest) = (flat.p50.unwrap(), flat.max.unwrap());
    assert!(fastest >= h.window_min - h.tolerance_min && slowest <= h.window_min + h.tolerance_min, "{flat:?} {h:?}");
    assert!(h.switched_off_to_check_min.max.is_some_and(|m| m <= h.tolerance_min), "{h:?}");
    for reason in ["device_offline", "power_off", "low_battery"] {
        assert!(h.welfare_by_reason.get(reason).is_some_and(|n| *n > 0), "no {reason} check: {h:?}");
    }
    assert!(h.welfare_closed_device_back > 0, "a check closed by its device coming back: {h:?}");
    assert!(h.welfare_open_at_end > 0, "a device that never came back keeps its check: {h:?}");
    for key in ["went_silent", "noticed", "not_noticed", "false_alarms", "welfare_opened", "welfare_closed"] {
        assert!(json["health"][key].is_u64(), "health.{key} in {json}");
    }
    assert!(json["health"]["flat_to_check_min"]["p95"].is_number(), "{json}");
    assert!(table.contains("device health:") && table.contains("welfare checks opened"), "{table}");

    // The welfare programme: the calls and visits that fell due in the run were shown and the
    // dispatcher closed them on time; what followed an unanswered call came.
    let p = summary.programme.as_ref().expect("the smoke scenario has a programme");
    assert!(p.first_due_in_run >= 5, "{}", p.text());
    assert!(p.fell_due >= p.first_due_in_run && p.calls > 0 && p.visits > 0, "{}", p.text());
    assert_eq!((p.not_shown, p.early), (0, 0), "{:?}", p.failures);
    assert!(p.done_on_time >= 5 && p.done_late == 0, "{}", p.text());
    assert_eq!(p.outcomes.values().sum::<usize>(), p.done_on_time + p.done_late);
    for key in ["fell_due", "done_on_time", "done_late", "open_at_end", "retries", "turned_into_visits"] {
        assert!(json["programme"][key].is_u64(), "programme.{key} in {json}");
    }
    // Carers: every far check-in refused, every forgotten check-out alarmed, help shown.
    let c = summary.carers.as_ref().expect("the smoke scenario has carers");
    assert!(c.far_sent > 0 && c.far_refused == c.far_sent, "{}", c.text());
    assert!(c.lone_worker_expected > 0 && c.lone_worker_seen == c.lone_worker_expected, "{}", c.text());
    assert_eq!(c.lone_worker_unexpected, 0, "{}", c.text());
    assert_eq!(c.help_incidents_seen, c.help_pressed, "{}", c.text());
    assert!(c.failures.is_empty(), "{:?}", c.failures);
    let timer = c.heard_to_alarm_min.max.expect("alarms timed");
    assert!(timer >= c.visit_max_min, "an alarm before the timer ran out: {}", c.text());
    for key in ["far_refused", "lone_worker_expected", "lone_worker_seen", "help_incidents_seen"] {
        assert!(json["carers"][key].is_u64(), "carers.{key} in {json}");
    }
    assert!(table.contains("welfare programme:") && table.contains("carers:"), "{table}");

    // The service lane: orders placed over REST, taken by workers on their phones, done and
    // confirmed; no order lost, no far check-in taken, no worker offered an emergency, the
    // allowance never overdrawn.
    let v = summary.services.as_ref().expect("the smoke scenario has services");
    assert!(v.providers == 3 && v.workers == 9, "{}", v.text());
    assert!(v.placed > 5 && v.accepted > 0 && v.done > 0, "{}", v.text());
    assert!(v.self_paid_shown > 0 && v.subsidy_yuan > 0.0, "{}", v.text());
    assert_eq!(v.placed + v.declined_self_paid + v.refused, v.calls, "every call placed, declined or refused");
    assert_eq!((v.lost, v.far_taken, v.emergency_offers_to_workers, v.over_allowance), (0, 0, 0, 0), "{}", v.text());
    assert_eq!(v.far_refused, v.far_sent, "{}", v.text());
    assert_eq!(v.surprises, 0, "{:?}", v.samples);
    assert!(v.accepted_within_target <= v.accepted && v.done_on_time <= v.done, "{}", v.text());
    for key in
        ["placed", "accepted", "accepted_within_target", "done_on_time", "confirmed", "disputed", "unmatched", "lost"]
    {
        assert!(json["services"][key].is_u64(), "services.{key} in {json}");
    }
    assert!(json["services"]["subsidy_yuan"].is_number() && table.contains("services:"), "{table}");
}
