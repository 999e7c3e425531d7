//! Device health: what the engine keeps of each device's heartbeat, battery and signal, and
//! the rules that say when a device has gone silent or is running flat.
//!
//! - **Overdue.** A device is expected again within its window: its heartbeat interval (the
//!   one it reports, else its model's, else the default) times the model's factor, plus the
//!   model's grace. Past that it is *offline* and a welfare check opens.
//! - **The centre's own silence is not the devices'.** Windows count from the later of the
//!   device's last message and the moment the engine last could not hear devices at all (its
//!   start, or the broker link coming back), so a restart or a broker outage does not open a
//!   welfare check for every device.
//! - **Low battery.** A `low_battery` event, or a reported charge at or under
//!   `low_battery_pct` while not charging, opens a welfare check; a charge at or over
//!   `charged_pct`, or the device on its charger, closes it.
//! - **Cheap.** A heartbeat updates a few bytes in memory. What changed is written out in
//!   snapshots ([`HealthRow`]), not a row a heartbeat.

use crate::ids::{DeviceId, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How long a device of one model may be silent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthModel {
    /// The heartbeat interval of this model, in seconds (a device's own report wins).
    pub heartbeat_s: u32,
    /// How many intervals may pass with nothing heard.
    pub factor: f64,
    /// Slack on top, in seconds (a network's reconnect, a slow broker).
    pub grace_s: u32,
}

impl Default for HealthModel {
    /// A five-minute heartbeat, three missed, two minutes' grace: offline after 17 minutes.
    fn default() -> Self {
        Self { heartbeat_s: 300, factor: 3.0, grace_s: 120 }
    }
}

impl HealthModel {
    /// The silence after which a device keeping `interval_s` (0: the model's) is offline.
    pub fn window_ms(&self, interval_s: u32) -> i64 {
        let interval = if interval_s == 0 { self.heartbeat_s } else { interval_s };
        (f64::from(interval) * self.factor * 1000.0) as i64 + i64::from(self.grace_s) * 1000
    }
}

/// The health rules of a centre.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthPolicy {
    /// Whether devices' silence opens welfare checks at all.
    pub enabled: bool,
    /// Devices whose model is not listed (or who have none).
    pub default: HealthModel,
    /// By model name, as the ledger names it on a device.
    pub models: BTreeMap<String, HealthModel>,
    /// At or under this charge (and not charging) the battery is low.
    pub low_battery_pct: u8,
    /// At or over this charge a low battery is taken as charged.
    pub charged_pct: u8,
    /// The most welfare checks for silent devices opened in one tick of the engine; the rest
    /// wait for the next, so that a mass of silent devices never holds up an emergency.
    pub max_overdue_per_tick: usize,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            default: HealthModel::default(),
            models: BTreeMap::new(),
            low_battery_pct: 20,
            charged_pct: 30,
            max_overdue_per_tick: 256,
        }
    }
}

impl HealthPolicy {
    /// The rules for a device of `model`.
    pub fn model(&self, model: Option<&str>) -> &HealthModel {
        model.and_then(|m| self.models.get(m)).unwrap_or(&self.default)
    }

    /// The shortest heartbeat a device may claim, and the longest (a day).
    pub const INTERVAL_RANGE_S: (u32, u32) = (10, 86_400);
}

/// What the engine keeps of one device's health: about 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceHealth {
    /// The last message heard from it (ms since the epoch; 0: never since it was enrolled).
    pub last_seen: i64,
    /// The heartbeat interval it reports, in seconds (0: its model's).
    pub interval_s: u32,
    pub rssi: Option<i16>,
    pub battery_pct: Option<u8>,
    pub charging: Option<bool>,
    pub worn: Option<bool>,
    /// Overdue or switched off: it cannot call until it is heard again.
    pub offline: bool,
    /// Changed since the last snapshot was taken.
    pub(crate) dirty: bool,
    /// Has an entry in the engine's queue of deadlines.
    pub(crate) queued: bool,
}

impl DeviceHealth {
    pub fn last_seen(&self) -> Option<Timestamp> {
        (self.last_seen != 0).then_some(Timestamp(self.last_seen))
    }

    /// As stored, to be read back at start.
    pub fn row(&self, device_id: DeviceId) -> HealthRow {
        HealthRow {
            device_id,
            last_seen: self.last_seen(),
            interval_s: (self.interval_s != 0).then_some(self.interval_s),
            battery_pct: self.battery_pct,
            rssi: self.rssi,
            charging: self.charging,
            worn: self.worn,
            offline: self.offline,
        }
    }

    pub fn from_row(row: &HealthRow) -> Self {
        Self {
            last_seen: row.last_seen.map_or(0, Timestamp::millis),
            interval_s: row.interval_s.unwrap_or(0),
            rssi: row.rssi,
            battery_pct: row.battery_pct,
            charging: row.charging,
            worn: row.worn,
            offline: row.offline,
            dirty: false,
            queued: false,
        }
    }
}

/// What one health snapshot writes: the devices heard (or gone offline) and the watched
/// elders whose activity changed since the last.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HealthSnapshot {
    pub devices: Vec<HealthRow>,
    pub elders: Vec<crate::activity::ActivityRow>,
    /// Elders on the welfare programme whose calls or visits changed.
    pub programme: Vec<crate::programme::ProgrammeRow>,
}

impl HealthSnapshot {
    pub fn is_empty(&self) -> bool {
        self.devices.is_empty() && self.elders.is_empty() && self.programme.is_empty()
    }
}

/// One device's health as stored in a snapshot (and shown to administrators).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthRow {
    pub device_id: DeviceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_pct: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rssi: Option<i16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worn: Option<bool>,
    #[serde(default)]
    pub offline: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_is_the_interval_times_the_factor_plus_grace() {
        let m = HealthModel { heartbeat_s: 300, factor: 3.0, grace_s: 120 };
        assert_eq!(m.window_ms(0), (900 + 120) * 1000, "the model's interval");
        assert_eq!(m.window_ms(60), (180 + 120) * 1000, "the device's own");
        let p = HealthPolicy {
            models: [("watch".to_string(), HealthModel { heartbeat_s: 60, factor: 2.0, grace_s: 30 })].into(),
            ..HealthPolicy::default()
        };
        assert_eq!(p.model(Some("watch")).window_ms(0), 150_000);
        assert_eq!(p.model(Some("unknown")).window_ms(0), 1_020_000);
        assert_eq!(p.model(None).window_ms(0), 1_020_000);
    }

    #[test]
    fn a_row_round_trips() {
        let h = DeviceHealth {
            last_seen: 1_700_000_000_000,
            interval_s: 60,
            rssi: Some(-71),
            battery_pct: Some(54),
            charging: Some(false),
            worn: Some(true),
            offline: false,
            dirty: false,
            queued: false,
        };
        let row = h.row(DeviceId::parse("d-1").unwrap());
        assert_eq!(DeviceHealth::from_row(&row), h);
        assert_eq!(
            DeviceHealth::from_row(&DeviceHealth::default().row(row.device_id.clone())),
            DeviceHealth::default()
        );
    }
}
