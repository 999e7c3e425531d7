//! MQTT topic layout, version 1: one events topic and one commands topic per device.

use crate::payload::Defect;
use anxin_core::DeviceId;

/// The filter the engine subscribes to.
pub const EVENTS_FILTER: &str = "anxin/v1/devices/+/events";

const PREFIX: &str = "anxin/v1/devices/";

/// Where a device publishes its events.
pub fn events_topic(device: &DeviceId) -> String {
    format!("{PREFIX}{device}/events")
}

/// Where a device listens for commands.
pub fn commands_topic(device: &DeviceId) -> String {
    format!("{PREFIX}{device}/commands")
}

/// The device an events topic belongs to.
pub fn device_of_events_topic(topic: &str) -> Result<DeviceId, Defect> {
    let id = topic.strip_prefix(PREFIX).and_then(|rest| rest.strip_suffix("/events")).ok_or(Defect::BadTopic)?;
    DeviceId::parse(id).map_err(|_| Defect::BadTopic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_round_trip() {
        let d = DeviceId::parse("xs-d0001").unwrap();
        assert_eq!(events_topic(&d), "anxin/v1/devices/xs-d0001/events");
        assert_eq!(commands_topic(&d), "anxin/v1/devices/xs-d0001/commands");
        assert_eq!(device_of_events_topic(&events_topic(&d)), Ok(d));
    }

    #[test]
    fn foreign_topics_are_refused() {
        for t in ["anxin/v1/devices//events", "anxin/v2/devices/a/events", "anxin/v1/devices/a/b/events", "x"] {
            assert_eq!(device_of_events_topic(t), Err(Defect::BadTopic), "{t}");
        }
    }
}
