//! Configuration: the text of a `--config` file and `ANXIN_*` environment variables, through
//! `Config::from_toml_str`, the same layering and checks as `Config::load`. The input is
//! the file's text, then optionally a NUL byte and `NAME=VALUE` lines (TOML text cannot hold a
//! NUL, so nothing is lost). A configuration that loads must be one anxind can start with:
//! what `App::start` derives from it must not panic.
#![no_main]

use anxin_core::IncidentKind;
use anxind::config::{broker_address, Config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (file, vars) = text.split_once('\0').unwrap_or((text, ""));
    let vars = vars.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string()));
    let Ok(config) = Config::from_toml_str(file, vars, &serde_json::json!({})) else { return };

    // What the checks promise, used by `App::start` without another look.
    let d = &config.dispatch;
    let _ = d.matching(); // "checked when loaded"
    let ladders = d.ladders();
    assert_eq!(ladders.len(), IncidentKind::EMERGENCIES.len());
    for ladder in ladders.values() {
        assert!(ladder.offers <= 100 && (1..=20).contains(&ladder.parallel), "{ladder:?}");
    }
    for s in [d.offer_timeout_s, d.station_timeout_s, d.reminder_interval_s] {
        assert!(s >= 1 && (s as i64).checked_mul(1000).is_some(), "{s}");
    }
    for min in [d.on_scene_within_min, d.max_fix_age_min] {
        assert!(min >= 1 && (min as i64).checked_mul(60_000).is_some(), "{min}");
    }
    assert!(i64::try_from(d.repeat_press_interval_ms).is_ok());
    for v in [d.max_offer_distance_m, d.max_fix_accuracy_m, d.max_fix_distance_from_home_m] {
        assert!(v.is_finite() && v > 0.0, "{v}");
    }
    let m = &config.mqtt;
    anxin_mqtt::Topics::new(&m.topic_root).expect("a checked topic root");
    if m.broker != "embedded" {
        broker_address(&m.broker).expect("a checked broker URL");
    }
    assert!((1..=u64::from(u16::MAX)).contains(&m.keep_alive_s));
    assert!(!m.client_id.trim().is_empty());
    assert!(m.max_payload_bytes >= 256);

    // The sizes anxind allocates and builds queues with at start, built the same way.
    let (_tx, _rx) = tokio::sync::mpsc::channel::<anxin_mqtt::Inbound>(config.ingest.queue);
    let _batch: Vec<anxin_mqtt::Inbound> = Vec::with_capacity(config.ingest.batch_max);
    let _hub = anxin_api::Hub::new(String::new(), anxin_api::Cursor::of([0]), Vec::new(), config.consoles.replay);
});
