//! MQTT topic layout, version 1: one events topic and one commands topic per device, and one
//! alerts topic per station's duty line, under a configurable root (default `anxin`), so
//! several deployments or test runs can share a broker.

use crate::payload::Defect;
use anxin_core::{DeviceId, StationId};

/// The default topic root.
pub const DEFAULT_ROOT: &str = "anxin";

/// The topics of one deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    /// `{root}/v1/devices/`
    prefix: String,
    /// `{root}/v1/stations/`
    stations: String,
    /// `{root}/v1/zones/`: what nodes tell each other of the zones they run.
    zones: String,
    /// `{root}/v1/nodes/`: what nodes ask and answer each other.
    nodes: String,
}

impl Default for Topics {
    fn default() -> Self {
        Self::new(DEFAULT_ROOT).expect("default root is valid")
    }
}

impl Topics {
    /// Topics under `root`, which must be a plain topic level path (no wildcards, no `$`).
    pub fn new(root: &str) -> Result<Self, String> {
        if root.is_empty() || root.starts_with('$') || root.contains(['+', '#', '\0']) || root.ends_with('/') {
            return Err(format!("invalid MQTT topic root {root:?}"));
        }
        Ok(Self {
            prefix: format!("{root}/v1/devices/"),
            stations: format!("{root}/v1/stations/"),
            zones: format!("{root}/v1/zones/"),
            nodes: format!("{root}/v1/nodes/"),
        })
    }

    /// The filter the engine subscribes to.
    pub fn events_filter(&self) -> String {
        format!("{}+/events", self.prefix)
    }

    /// Every device's commands topic (for an ACL).
    pub fn commands_filter(&self) -> String {
        format!("{}+/commands", self.prefix)
    }

    /// Every station's alerts topic (for an ACL).
    pub fn alerts_filter(&self) -> String {
        format!("{}+/alerts", self.stations)
    }

    /// Where a device publishes its events.
    pub fn events(&self, device: &DeviceId) -> String {
        format!("{}{device}/events", self.prefix)
    }

    /// Where a device listens for commands.
    pub fn commands(&self, device: &DeviceId) -> String {
        format!("{}{device}/commands", self.prefix)
    }

    /// Where a station's duty line hears of incidents its responders did not take.
    pub fn station_alerts(&self, station: &StationId) -> String {
        format!("{}{station}/alerts", self.stations)
    }

    /// Where the node running zone `zone` publishes the incidents and responders it has
    /// committed, for the other nodes' consoles ([`crate::cluster::ZoneViews`]).
    pub fn zone_views(&self, zone: u16) -> String {
        format!("{}{zone}/views", self.zones)
    }

    /// Every zone's views, as every node follows them.
    pub fn zone_views_filter(&self) -> String {
        format!("{}+/views", self.zones)
    }

    /// Everything nodes tell each other of their zones (for an ACL).
    pub fn zones_filter(&self) -> String {
        format!("{}#", self.zones)
    }

    /// Where requests forwarded to node `node` go ([`crate::cluster::Forwarded`]).
    pub fn node_commands(&self, node: &str) -> String {
        format!("{}{node}/commands", self.nodes)
    }

    /// Where the answers to node `node`'s forwarded requests come.
    pub fn node_answers(&self, node: &str) -> String {
        format!("{}{node}/answers", self.nodes)
    }

    /// Everything nodes ask and answer each other (for an ACL).
    pub fn nodes_filter(&self) -> String {
        format!("{}#", self.nodes)
    }

    /// The zone a views topic is of.
    pub fn zone_of_views(&self, topic: &str) -> Option<u16> {
        topic.strip_prefix(&self.zones)?.strip_suffix("/views")?.parse().ok()
    }

    /// The device an events topic belongs to.
    pub fn device_of_events(&self, topic: &str) -> Result<DeviceId, Defect> {
        let id =
            topic.strip_prefix(&self.prefix).and_then(|rest| rest.strip_suffix("/events")).ok_or(Defect::BadTopic)?;
        DeviceId::parse(id).map_err(|_| Defect::BadTopic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_views_topic_names_its_zone() {
        let t = Topics::new("xs").unwrap();
        assert_eq!(t.zone_views(7), "xs/v1/zones/7/views");
        assert_eq!(t.zone_of_views(&t.zone_views(7)), Some(7));
        assert_eq!(t.zone_of_views("xs/v1/zones/x/views"), None);
        assert_eq!(t.zone_of_views("xs/v1/devices/d-1/events"), None);
        assert_eq!(t.zone_views_filter(), "xs/v1/zones/+/views");
    }

    #[test]
    fn topics_round_trip() {
        let t = Topics::default();
        let d = DeviceId::parse("xs-d0001").unwrap();
        assert_eq!(t.events(&d), "anxin/v1/devices/xs-d0001/events");
        assert_eq!(t.commands(&d), "anxin/v1/devices/xs-d0001/commands");
        assert_eq!(t.events_filter(), "anxin/v1/devices/+/events");
        let s = anxin_core::StationId::parse("xs-s01").unwrap();
        assert_eq!(t.station_alerts(&s), "anxin/v1/stations/xs-s01/alerts");
        assert_eq!(t.device_of_events(&t.events(&d)), Ok(d.clone()));
        let other = Topics::new("district-7/anxin").unwrap();
        assert_eq!(other.events(&d), "district-7/anxin/v1/devices/xs-d0001/events");
        assert_eq!(t.device_of_events(&other.events(&d)), Err(Defect::BadTopic));
    }

    #[test]
    fn foreign_topics_are_refused() {
        let t = Topics::default();
        for topic in [
            "anxin/v1/devices//events",
            "anxin/v2/devices/a/events",
            "anxin/v1/devices/a/b/events",
            "x",
            "anxin/v1/devices/a+/events",
        ] {
            assert_eq!(t.device_of_events(topic), Err(Defect::BadTopic), "{topic}");
        }
    }

    #[test]
    fn roots_with_wildcards_are_refused() {
        for root in ["", "a/+", "#", "$SYS", "a/"] {
            assert!(Topics::new(root).is_err(), "{root}");
        }
    }
}
