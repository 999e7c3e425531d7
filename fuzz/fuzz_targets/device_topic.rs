//! MQTT topics: a topic root from the configuration (`mqtt.topic_root`) and the topic a
//! message arrived on, through `Topics::new` and `Topics::device_of_events` as the engine
//! calls them. The input is `ROOT\nTOPIC`, or just `TOPIC` under the default root.
#![no_main]

use anxin_core::{DeviceId, StationId};
use anxin_proto::{Defect, Topics};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // rumqttc hands the engine a topic as a `String`: only UTF-8 reaches the decoder.
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (root, topic) = text.split_once('\n').unwrap_or((anxin_proto::topic::DEFAULT_ROOT, text));
    let Ok(topics) = Topics::new(root) else {
        return;
    };
    // A root is a plain topic path: subscribing under it must not widen into wildcards.
    assert!(!root.is_empty() && !root.starts_with('$') && !root.contains(['+', '#', '\0']) && !root.ends_with('/'));
    let filter = topics.events_filter();
    assert_eq!(filter.matches('+').count(), 1, "{filter}");
    assert!(!filter.contains('#'), "{filter}");

    match topics.device_of_events(topic) {
        Ok(device) => {
            // A topic names a device only if it is exactly that device's events topic, and
            // the engine's subscription is what delivers it.
            assert_eq!(topics.events(&device), topic);
            assert!(filter_matches(&filter, topic), "{filter} {topic}");
        }
        Err(defect) => assert_eq!(defect, Defect::BadTopic),
    }

    // Any valid id in the input round-trips; no other topic of the device's or a station's
    // reads as its events.
    for word in topic.split('/') {
        if let Ok(device) = DeviceId::parse(word) {
            let events = topics.events(&device);
            assert_eq!(topics.device_of_events(&events), Ok(device.clone()));
            assert!(filter_matches(&filter, &events), "{filter} {events}");
            assert_eq!(topics.device_of_events(&topics.commands(&device)), Err(Defect::BadTopic));
        }
        if let Ok(station) = StationId::parse(word) {
            assert_eq!(topics.device_of_events(&topics.station_alerts(&station)), Err(Defect::BadTopic));
        }
    }
});

/// MQTT's matching of a topic against a filter with `+` (one level) and `#` (the rest).
fn filter_matches(filter: &str, topic: &str) -> bool {
    let mut levels = topic.split('/');
    for f in filter.split('/') {
        match (f, levels.next()) {
            ("#", _) => return true,
            (_, None) => return false,
            ("+", Some(_)) => {}
            (f, Some(level)) if f == level => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}
