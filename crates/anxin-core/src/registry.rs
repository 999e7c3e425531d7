//! The ledger the engine dispatches against: elders, their devices, stations, responders.

use crate::family::{Channel, QuietHours};
use crate::geo::Coordinates;
use crate::ids::{DeviceId, ElderId, ResponderId, StationId, Timestamp};
use serde::{Deserialize, Serialize};

/// An elder in the ledger, with what a dispatcher needs to know before calling back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Elder {
    pub id: ElderId,
    pub name: String,
    pub address: String,
    /// Registered home position: where we go when a press carries no usable fix.
    pub home: Coordinates,
    pub phone: Option<String>,
    /// Free text for the dispatcher: anything the fields below do not hold.
    pub notes: String,
    /// What a dispatcher needs to know before calling back or sending somebody.
    #[serde(default)]
    pub profile: ElderProfile,
}

/// An elder's profile from the ledger: health, living situation, how to get in, whom to call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ElderProfile {
    pub birth_year: Option<u16>,
    pub lives_alone: Option<bool>,
    /// e.g. 高血压, 糖尿病, dementia.
    pub conditions: Vec<String>,
    pub medications: Vec<String>,
    /// e.g. "walks with a stick", "bedridden".
    pub mobility: String,
    /// Language or dialect to speak on the phone, e.g. 昆明话.
    pub language: String,
    /// How to get in: door code, key with a neighbour.
    pub door_notes: String,
    pub contacts: Vec<Contact>,
    /// The community care station the elder is enrolled with (the ledger's 所属站点), if the
    /// ledger says; matching does not depend on it (it uses distance).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub station_id: Option<StationId>,
    /// The resident ID number (身份证号) from the civil-affairs ledger, if given: checked
    /// (GB 11643 check digit) when imported, shown to staff, never sent to devices or phones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_number: Option<String>,
    /// The elder's scheduled welfare programme (Wuhua: a call a week, a visit a month).
    #[serde(skip_serializing_if = "WelfareSchedule::is_empty")]
    pub schedule: WelfareSchedule,
    /// The elder's assessed level of need for home-care services (1 = most), which sets their
    /// monthly allowance (`[services] monthly_allowance_yuan`); `None`: no allowance.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub need_level: Option<u8>,
}

/// How often the centre phones and visits an elder, whatever their devices say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct WelfareSchedule {
    /// A welfare call every this many days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_every_days: Option<u16>,
    /// A home visit every this many days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visit_every_days: Option<u16>,
}

impl WelfareSchedule {
    /// The days a call or visit may be apart, at least and at most.
    pub const DAYS: (u16, u16) = (1, 366);

    pub fn is_empty(&self) -> bool {
        self.call_every_days.is_none() && self.visit_every_days.is_none()
    }
}

impl ElderProfile {
    /// The contacts' ids, in order, with the positional default for those the ledger left out.
    pub fn contact_ids(&self) -> impl Iterator<Item = String> + '_ {
        self.contacts
            .iter()
            .enumerate()
            .map(|(i, c)| if c.id.is_empty() { Contact::default_id(i) } else { c.id.clone() })
    }

    /// Gives every contact without an id its positional one.
    pub fn name_contacts(&mut self) {
        for (i, c) in self.contacts.iter_mut().enumerate() {
            if c.id.is_empty() {
                c.id = Contact::default_id(i);
            }
        }
    }
}

/// Somebody to call about an elder: family, a neighbour, the family doctor. The list's
/// order is the order they are told in: the first at once, the next when nobody has answered
/// within the policy's `family_escalate_after` (see `docs/architecture.md`, "Families").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Unique among the elder's contacts; empty in the ledger file: `c1`, `c2`... by position
    /// (give ids when a list may be reordered, since family sign-in tokens name them).
    #[serde(default)]
    pub id: String,
    pub name: String,
    /// e.g. 女儿 (daughter), neighbour.
    pub relation: String,
    pub phone: String,
    /// How they prefer to be told: `sms` (the default), `voice` or `push`.
    #[serde(default)]
    pub channel: Channel,
    /// When they take no low-priority news (local time); never applied to emergencies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quiet_hours: Option<QuietHours>,
    /// Whether they are told of service requests (low priority).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub service_news: bool,
    /// Whether they are told of the device going offline or its battery running low (low
    /// priority).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub device_news: bool,
    /// The language they are written to in: `zh-CN` (empty means this) or `en`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub language: String,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Default for Contact {
    /// Nobody: no name or phone, told by SMS, every kind of news, in Chinese.
    fn default() -> Self {
        Contact {
            id: String::new(),
            name: String::new(),
            relation: String::new(),
            phone: String::new(),
            channel: Channel::Sms,
            quiet_hours: None,
            service_news: true,
            device_news: true,
            language: String::new(),
        }
    }
}

impl Contact {
    /// The id a contact at `index` (0-based) of the list has when the ledger gives none.
    pub fn default_id(index: usize) -> String {
        format!("c{}", index + 1)
    }
}

/// What a member of the call centre's staff may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StaffRole {
    /// Works the queue: claims, assigns, calls, closes.
    Dispatcher,
    /// Everything a dispatcher does, and may take over another dispatcher's claim.
    Supervisor,
    /// Manages the ledger (elders, devices, stations, responders) and the staff; works no
    /// incidents.
    Admin,
}

impl StaffRole {
    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Dispatcher => "dispatcher",
            StaffRole::Supervisor => "supervisor",
            StaffRole::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [StaffRole::Dispatcher, StaffRole::Supervisor, StaffRole::Admin].into_iter().find(|r| r.as_str() == s)
    }
}

/// A dispatcher or supervisor who signs in to the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staff {
    /// The sign-in name, also the actor in the audit trail.
    pub id: String,
    pub name: String,
    pub role: StaffRole,
    /// Argon2id PHC string (`anxind hash-password` makes one); the password is never stored.
    pub password_hash: String,
}

/// A device and the elder who wears or keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub elder_id: ElderId,
    /// Its model, which sets how long it may be silent (`[health.models]`); none: the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The number of its SIM card, for a device that can dial: a call from it is the
    /// device's (see [`crate::telephony`]). Digits, as the ledger wrote them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim: Option<String>,
}

/// A community care station: where responders are based and where a duty line answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Station {
    pub id: StationId,
    pub name: String,
    pub position: Coordinates,
    pub phone: Option<String>,
    /// The station's service circle in minutes: its responders are offered only incidents
    /// they can reach within it (the seeds' 15-minute circle). `None`: the policy's default.
    #[serde(default)]
    pub service_circle_min: Option<u32>,
    /// The zone the station, its responders and the elders enrolled with it are run in
    /// ([`crate::zone`]); 0 unless the ledger says.
    #[serde(default, deserialize_with = "crate::zone::or_first")]
    pub zone: crate::zone::Zone,
}

/// How a responder gets about, which sets their speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TravelMode {
    #[default]
    Foot,
    Ebike,
    Car,
}

impl TravelMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TravelMode::Foot => "foot",
            TravelMode::Ebike => "ebike",
            TravelMode::Car => "car",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [TravelMode::Foot, TravelMode::Ebike, TravelMode::Car].into_iter().find(|m| m.as_str() == s)
    }
}

/// A responder and their last known position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Responder {
    pub id: ResponderId,
    pub name: String,
    pub station_id: StationId,
    pub phone: Option<String>,
    pub position: Coordinates,
    pub on_duty: bool,
    #[serde(default)]
    pub mode: TravelMode,
    /// What the responder is trained for, e.g. `first_aid` (a fall needs it).
    #[serde(default)]
    pub skills: Vec<String>,
    /// When `position` came from the responder's phone; `None`: a registered base position,
    /// which never goes stale.
    #[serde(default)]
    pub position_at: Option<Timestamp>,
    /// SHA-256 (lowercase hex) of the token the responder signs in with on their phone;
    /// `None`: cannot sign in. The token itself is never stored.
    #[serde(default)]
    pub token_sha256: Option<String>,
    /// The home-care provider this person works for: a service worker, offered that
    /// provider's orders (see [`crate::service`]) and never an emergency by the ladder (a
    /// dispatcher may still send them to one next door).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<crate::ids::ProviderId>,
}

/// A reference in the ledger to something that is not in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("device {device} belongs to elder {elder}, who is not in the registry")]
    UnknownElder { device: String, elder: String },
    #[error("{responder} belongs to station {station}, which is not in the registry")]
    UnknownStation { responder: String, station: String },
    #[error("{0} appears twice")]
    Duplicate(String),
    #[error("staff id {0:?} must be 1 to 64 characters")]
    BadStaffId(String),
    #[error("responder {responder} works for provider {provider}, which is not in the registry")]
    UnknownProvider { responder: String, provider: String },
    #[error("provider {provider}: {why}")]
    BadProvider { provider: String, why: String },
}

/// Everything the engine loads at start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    pub elders: Vec<Elder>,
    pub devices: Vec<Device>,
    pub stations: Vec<Station>,
    pub responders: Vec<Responder>,
    #[serde(default)]
    pub staff: Vec<Staff>,
    /// Contracted home-care providers (see [`crate::service`]).
    #[serde(default)]
    pub providers: Vec<crate::service::Provider>,
}

impl Registry {
    /// The zones the ledger's stations are in, each once, in order (zone 0 always: elders
    /// enrolled with no station are in it).
    pub fn zones(&self) -> Vec<crate::zone::Zone> {
        let mut zones: Vec<_> = self.stations.iter().map(|s| s.zone).chain([crate::zone::Zone::FIRST]).collect();
        zones.sort_unstable();
        zones.dedup();
        zones
    }

    /// The part of the ledger `zone`'s engine runs: the zone's stations and their
    /// responders, the elders enrolled with them (for zone 0 also those enrolled with none)
    /// and their devices; and all of the staff and the providers, who work in every zone.
    pub fn zone_part(self, zone: crate::zone::Zone) -> Registry {
        self.zones_part(&[zone])
    }

    /// The part of the ledger an engine running `zones` runs: each zone's part
    /// ([`Registry::zone_part`]), together, copied out of the whole (which stays as it is).
    pub fn zones_part(&self, zones: &[crate::zone::Zone]) -> Registry {
        use std::collections::HashSet;
        let stations: Vec<Station> = self.stations.iter().filter(|s| zones.contains(&s.zone)).cloned().collect();
        let ids: HashSet<&str> = stations.iter().map(|s| s.id.as_str()).collect();
        let responders = self.responders.iter().filter(|r| ids.contains(r.station_id.as_str())).cloned().collect();
        let unenrolled = zones.contains(&crate::zone::Zone::FIRST);
        let elders: Vec<Elder> = self
            .elders
            .iter()
            .filter(|e| match &e.profile.station_id {
                Some(s) => ids.contains(s.as_str()),
                None => unenrolled,
            })
            .cloned()
            .collect();
        let elder_ids: HashSet<&str> = elders.iter().map(|e| e.id.as_str()).collect();
        let devices = self.devices.iter().filter(|d| elder_ids.contains(d.elder_id.as_str())).cloned().collect();
        Registry { elders, devices, stations, responders, staff: self.staff.clone(), providers: self.providers.clone() }
    }

    /// The responders of the zones other than `zones` whom an engine running `zones` may ask
    /// for across a border ([`crate::border`]): every one the ladder could offer an emergency
    /// (not a home-care provider's worker), with their station's zone and service circle.
    pub fn neighbours_of(&self, zones: &[crate::zone::Zone]) -> Vec<crate::border::Neighbour> {
        let stations: std::collections::HashMap<&str, &Station> =
            self.stations.iter().filter(|s| !zones.contains(&s.zone)).map(|s| (s.id.as_str(), s)).collect();
        self.responders
            .iter()
            .filter(|r| r.provider_id.is_none())
            .filter_map(|r| {
                let s = stations.get(r.station_id.as_str())?;
                Some(crate::border::Neighbour {
                    responder: r.clone(),
                    zone: s.zone,
                    service_circle_min: s.service_circle_min,
                })
            })
            .collect()
    }

    /// Checks that no id repeats and every reference points at something in this registry.
    pub fn check(&self) -> Result<(), RegistryError> {
        self.check_against(&Registry::default())
    }

    /// Like [`Registry::check`], but references may also point at entries of `known` (the
    /// ledger already stored), so a file can add devices to elders registered before.
    pub fn check_against(&self, known: &Registry) -> Result<(), RegistryError> {
        use std::collections::HashSet;
        fn unique<'a>(what: &str, ids: impl Iterator<Item = &'a str>) -> Result<HashSet<&'a str>, RegistryError> {
            let mut seen = HashSet::new();
            for id in ids {
                if !seen.insert(id) {
                    return Err(RegistryError::Duplicate(format!("{what} {id}")));
                }
            }
            Ok(seen)
        }
        let mut elders = unique("elder", self.elders.iter().map(|e| e.id.as_str()))?;
        let mut stations = unique("station", self.stations.iter().map(|s| s.id.as_str()))?;
        elders.extend(known.elders.iter().map(|e| e.id.as_str()));
        stations.extend(known.stations.iter().map(|s| s.id.as_str()));
        unique("device", self.devices.iter().map(|d| d.id.as_str()))?;
        unique("responder", self.responders.iter().map(|r| r.id.as_str()))?;
        unique("staff member", self.staff.iter().map(|s| s.id.as_str()))?;
        for elder in &self.elders {
            let ids: Vec<String> = elder.profile.contact_ids().collect();
            unique(&format!("elder {}'s contact", elder.id), ids.iter().map(String::as_str))?;
        }
        if let Some(s) = self.staff.iter().find(|s| s.id.trim().is_empty() || s.id.len() > 64) {
            return Err(RegistryError::BadStaffId(s.id.clone()));
        }
        if let Some(d) = self.devices.iter().find(|d| !elders.contains(d.elder_id.as_str())) {
            return Err(RegistryError::UnknownElder { device: d.id.to_string(), elder: d.elder_id.to_string() });
        }
        if let Some(r) = self.responders.iter().find(|r| !stations.contains(r.station_id.as_str())) {
            return Err(RegistryError::UnknownStation {
                responder: format!("responder {}", r.id),
                station: r.station_id.to_string(),
            });
        }
        let mut providers = unique("provider", self.providers.iter().map(|p| p.id.as_str()))?;
        providers.extend(known.providers.iter().map(|p| p.id.as_str()));
        if let Some((r, p)) = self
            .responders
            .iter()
            .filter_map(|r| Some((r, r.provider_id.as_ref()?)))
            .find(|(_, p)| !providers.contains(p.as_str()))
        {
            return Err(RegistryError::UnknownProvider { responder: r.id.to_string(), provider: p.to_string() });
        }
        for p in &self.providers {
            p.check(|s| stations.contains(s.as_str()))
                .map_err(|why| RegistryError::BadProvider { provider: p.id.to_string(), why })?;
        }
        let mut enrolled = self.elders.iter().filter_map(|e| e.profile.station_id.as_ref().map(|s| (e, s)));
        if let Some((e, s)) = enrolled.find(|(_, s)| !stations.contains(s.as_str())) {
            return Err(RegistryError::UnknownStation { responder: format!("elder {}", e.id), station: s.to_string() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dangling_references_and_repeats_are_refused() {
        let json = r#"{"elders":[{"id":"e1","name":"n","address":"a","home":{"lat":25,"lon":102},"phone":null,"notes":""}],
            "devices":[{"id":"d1","elder_id":"e1"}],"stations":[],"responders":[]}"#;
        let mut r: Registry = serde_json::from_str(json).unwrap();
        assert_eq!(r.check(), Ok(()));
        r.devices.push(Device {
            id: DeviceId::parse("d2").unwrap(),
            elder_id: ElderId::parse("e9").unwrap(),
            model: None,
            sim: None,
        });
        assert!(matches!(r.check(), Err(RegistryError::UnknownElder { .. })));
        r.devices.pop();
        r.devices.push(r.devices[0].clone());
        assert_eq!(r.check(), Err(RegistryError::Duplicate("device d1".into())));
        let bad = json.replace(r#""lat":25"#, r#""lat":95"#);
        assert!(serde_json::from_str::<Registry>(&bad).is_err(), "positions are validated on the way in");
        let more = Registry {
            devices: vec![Device {
                id: DeviceId::parse("d9").unwrap(),
                elder_id: ElderId::parse("e1").unwrap(),
                model: None,
                sim: None,
            }],
            ..Registry::default()
        };
        assert!(more.check().is_err(), "alone, e1 is unknown");
        assert_eq!(more.check_against(&r), Ok(()), "e1 is already registered");
    }
}
