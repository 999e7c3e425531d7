//! Device payloads: the JSON a device publishes, decoded into a [`DeviceEvent`], and the
//! reasons a payload is refused; and what a station's duty line is sent ([`StationMessage`]).

use anxin_core::{
    Coordinates, DeviceEvent, EventType, Fix, FixReport, HealthReport, MessageId, StationAlert, Timestamp,
};
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::fmt;
use thiserror::Error;

/// Largest payload a device may send, by default. A press needs about 150 bytes.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 4096;

/// What a station's duty line is sent on its alerts topic: the alert, with its `type`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StationMessage<'a> {
    StationAlert(Cow<'a, StationAlert>),
}

/// Why a device message was refused, in whole or in part. The names are the values of the
/// `reason` label of `anxin_mqtt_payloads_rejected_total`, so the set is small and fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum Defect {
    #[error("payload is larger than the limit")]
    Oversized,
    #[error("payload is not a JSON object")]
    NotJson,
    #[error("payload has the key `{0}` more than once")]
    DuplicateKey(&'static str),
    #[error("payload starts with a UTF-8 byte order mark; it was skipped")]
    ByteOrderMark,
    #[error("msg_id is missing")]
    MissingMsgId,
    #[error("msg_id is not a valid identifier")]
    BadMsgId,
    #[error("type is missing")]
    MissingType,
    #[error("type is not one Anxin knows")]
    UnknownType,
    #[error("ts is not a Unix time in milliseconds; the engine's clock was used")]
    BadTimestamp,
    #[error("location is malformed, out of range or not finite; the fix was ignored")]
    BadLocation,
    #[error("battery_pct, rssi, charging, interval_s or active is malformed or out of range; it was ignored")]
    BadHealth,
    #[error("topic does not name a valid device")]
    BadTopic,
    #[error("device is not in the registry")]
    UnknownDevice,
}

impl Defect {
    pub fn as_label(self) -> &'static str {
        match self {
            Defect::Oversized => "oversized",
            Defect::NotJson => "not_json",
            Defect::DuplicateKey(_) => "duplicate_key",
            Defect::ByteOrderMark => "byte_order_mark",
            Defect::MissingMsgId => "missing_msg_id",
            Defect::BadMsgId => "bad_msg_id",
            Defect::MissingType => "missing_type",
            Defect::UnknownType => "unknown_type",
            Defect::BadTimestamp => "bad_timestamp",
            Defect::BadLocation => "bad_location",
            Defect::BadHealth => "bad_health",
            Defect::BadTopic => "bad_topic",
            Defect::UnknownDevice => "unknown_device",
        }
    }

    /// One of each kind (`DuplicateKey` with one of the keys: its label does not name it).
    pub const ALL: [Defect; 13] = [
        Defect::Oversized,
        Defect::NotJson,
        Defect::DuplicateKey("msg_id"),
        Defect::ByteOrderMark,
        Defect::MissingMsgId,
        Defect::BadMsgId,
        Defect::MissingType,
        Defect::UnknownType,
        Defect::BadTimestamp,
        Defect::BadLocation,
        Defect::BadHealth,
        Defect::BadTopic,
        Defect::UnknownDevice,
    ];
}

/// The wire form. Unknown fields are ignored so newer firmware can add to it. The message id,
/// the clock and the location are taken as raw JSON and read afterwards, so that one of them
/// unreadable (a number too large for a float, `"lat": 1e400`) refuses only that part, or
/// the press with the reason that names it (`bad_msg_id`), not as "not JSON". A key of these
/// four given twice is remembered in `duplicate` (the rest is still read, so that a payload
/// that is also not JSON is refused as that).
#[derive(Default)]
struct Wire<'a> {
    msg_id: Option<&'a RawValue>,
    event: Option<String>,
    ts: Option<&'a RawValue>,
    location: Option<&'a RawValue>,
    /// `battery_pct`, `rssi`, `charging`, `interval_s`, `active`, in that order.
    health: [Option<&'a RawValue>; 5],
    duplicate: Option<&'static str>,
}

/// The keys the decoder reads, told apart without allocating; anything else is `Other`.
enum Key {
    MsgId,
    Type,
    Ts,
    Location,
    Health(usize),
    Other,
}

/// The health fields of a heartbeat (or any message), in [`Wire::health`]'s order.
const HEALTH_KEYS: [&str; 5] = ["battery_pct", "rssi", "charging", "interval_s", "active"];

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
                Ok(match key {
                    "msg_id" => Key::MsgId,
                    "type" => Key::Type,
                    "ts" => Key::Ts,
                    "location" => Key::Location,
                    _ => match HEALTH_KEYS.iter().position(|k| *k == key) {
                        Some(i) => Key::Health(i),
                        None => Key::Other,
                    },
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Wire<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct WireVisitor<'a>(std::marker::PhantomData<&'a ()>);
        /// Takes a key's value into `slot`, or notes the key as given twice.
        fn take<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
            map: &mut A,
            slot: &mut Option<T>,
            duplicate: &mut Option<&'static str>,
            name: &'static str,
        ) -> Result<(), A::Error> {
            if slot.is_some() {
                duplicate.get_or_insert(name);
                map.next_value::<IgnoredAny>()?;
            } else {
                *slot = Some(map.next_value()?);
            }
            Ok(())
        }
        impl<'de: 'a, 'a> Visitor<'de> for WireVisitor<'a> {
            type Value = Wire<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Wire<'a>, A::Error> {
                let mut w = Wire::default();
                // A null counts as given: `{"msg_id":null,"msg_id":"m"}` is as ambiguous as any.
                let (mut msg_id, mut event, mut ts, mut location) = (None, None, None, None);
                let mut health: [Option<Option<&RawValue>>; 5] = [None; 5];
                while let Some(key) = map.next_key::<Key>()? {
                    let d = &mut w.duplicate;
                    match key {
                        Key::MsgId => take::<_, Option<&RawValue>>(&mut map, &mut msg_id, d, "msg_id")?,
                        Key::Type => take::<_, Option<String>>(&mut map, &mut event, d, "type")?,
                        Key::Ts => take::<_, Option<&RawValue>>(&mut map, &mut ts, d, "ts")?,
                        Key::Location => take::<_, Option<&RawValue>>(&mut map, &mut location, d, "location")?,
                        Key::Health(i) => take::<_, Option<&RawValue>>(&mut map, &mut health[i], d, HEALTH_KEYS[i])?,
                        Key::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                (w.msg_id, w.event, w.ts, w.location) =
                    (msg_id.flatten(), event.flatten(), ts.flatten(), location.flatten());
                w.health = health.map(Option::flatten);
                Ok(w)
            }
        }
        deserializer.deserialize_map(WireVisitor(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct WireLocation {
    lat: f64,
    lon: f64,
    accuracy_m: Option<f64>,
}

/// A payload that could be read, perhaps with parts (the time, the location) refused.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub event: DeviceEvent,
    /// The parts refused while the event itself stands.
    pub partial: Vec<Defect>,
}

/// Decodes a device payload. `received_at` stands in for a missing device timestamp.
pub fn decode(payload: &[u8], max_bytes: usize, received_at: Timestamp) -> Result<Decoded, Defect> {
    if payload.len() > max_bytes {
        return Err(Defect::Oversized);
    }
    let mut partial = Vec::new();
    // A BOM is no part of JSON, and RFC 8259 (8.1) lets a reader ignore one. It says nothing
    // about the press, so the press is read and the BOM counted, rather than the press
    // becoming an `unreadable` incident.
    let payload = match payload.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => {
            partial.push(Defect::ByteOrderMark);
            rest
        }
        None => payload,
    };
    // serde would take an array's items as the fields in order (`["m-1", "sos"]`).
    if payload.trim_ascii_start().first() != Some(&b'{') {
        return Err(Defect::NotJson);
    }
    let wire: Wire = serde_json::from_slice(payload).map_err(|_| Defect::NotJson)?;
    if let Some(key) = wire.duplicate {
        return Err(Defect::DuplicateKey(key));
    }
    let msg_id = match wire.msg_id.map(|raw| serde_json::from_str::<serde_json::Value>(raw.get())) {
        None | Some(Ok(serde_json::Value::Null)) => return Err(Defect::MissingMsgId),
        Some(Ok(serde_json::Value::String(s))) => MessageId::parse(s).map_err(|_| Defect::BadMsgId)?,
        Some(Ok(serde_json::Value::Number(n))) => MessageId::parse(n.to_string()).map_err(|_| Defect::BadMsgId)?,
        // Another kind of value, or a number too large for a float (`1e400`).
        Some(_) => return Err(Defect::BadMsgId),
    };
    let event = match wire.event.as_deref() {
        None => return Err(Defect::MissingType),
        Some(name) => {
            let name = name.trim();
            EventType::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(name)).ok_or(Defect::UnknownType)?
        }
    };
    let device_ts = match wire.ts {
        None => received_at,
        Some(raw) => match serde_json::from_str::<serde_json::Value>(raw.get()).ok().and_then(|v| v.as_i64()) {
            Some(ms) if ms >= 0 => Timestamp(ms),
            _ => {
                partial.push(Defect::BadTimestamp);
                received_at
            }
        },
    };
    let fix = match wire.location {
        None => FixReport::Absent,
        Some(raw) => match decode_fix(raw) {
            Some(fix) => FixReport::Valid(fix),
            None => {
                partial.push(Defect::BadLocation);
                FixReport::Malformed
            }
        },
    };
    let (health, bad_health) = decode_health(&wire.health);
    if bad_health {
        partial.push(Defect::BadHealth);
    }
    Ok(Decoded { event: DeviceEvent { msg_id, event, device_ts, fix, health }, partial })
}

/// Reads the health fields: each one malformed or out of range is left out, and said.
fn decode_health(raw: &[Option<&RawValue>; 5]) -> (HealthReport, bool) {
    let mut bad = false;
    let mut int = |i: usize, min: i64, max: i64| -> Option<i64> {
        let raw = raw[i]?;
        match serde_json::from_str::<serde_json::Value>(raw.get()).ok().and_then(|v| v.as_i64()) {
            Some(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                bad = true;
                None
            }
        }
    };
    let (min_s, max_s) = anxin_core::HealthPolicy::INTERVAL_RANGE_S;
    let battery_pct = int(0, 0, 100).map(|n| n as u8);
    let rssi = int(1, -150, 0).map(|n| n as i16);
    let interval_s = int(3, i64::from(min_s), i64::from(max_s)).map(|n| n as u32);
    let mut flag = |i: usize| match raw[i].map(|r| r.get()) {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            bad = true;
            None
        }
    };
    let charging = flag(2);
    let active = flag(4);
    (HealthReport { battery_pct, rssi, charging, interval_s, active }, bad)
}

fn decode_fix(raw: &RawValue) -> Option<Fix> {
    let w: WireLocation = serde_json::from_str(raw.get()).ok()?;
    let at = Coordinates::new(w.lat, w.lon).ok()?;
    let accuracy_m = match w.accuracy_m {
        Some(a) if !(a.is_finite() && a >= 0.0) => return None,
        a => a,
    };
    Some(Fix { at, accuracy_m })
}

/// A stable stand-in message id for a payload that could not be read: the same bytes give
/// the same id, on every run and every machine (FNV-1a, 64 bits).
pub fn fingerprint(payload: &[u8]) -> MessageId {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in payload {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    MessageId::parse(format!("raw-{h:016x}")).expect("hex id is valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_763_000_000_000);

    fn dec(s: &str) -> Result<Decoded, Defect> {
        decode(s.as_bytes(), DEFAULT_MAX_PAYLOAD_BYTES, NOW)
    }

    #[test]
    fn a_full_press_decodes() {
        let d = dec(r#"{"msg_id":"m-1","type":"sos","ts":1763000000123,"location":{"lat":25.03,"lon":102.68,"accuracy_m":12.5}}"#).unwrap();
        assert_eq!(d.event.msg_id.as_str(), "m-1");
        assert_eq!(d.event.event, EventType::Sos);
        assert_eq!(d.event.device_ts, Timestamp(1_763_000_000_123));
        let FixReport::Valid(fix) = d.event.fix else { panic!("{:?}", d.event.fix) };
        assert_eq!((fix.at.lat(), fix.at.lon(), fix.accuracy_m), (25.03, 102.68, Some(12.5)));
        assert!(d.partial.is_empty());
    }

    #[test]
    fn a_heartbeat_carries_the_devices_health() {
        let d =
            dec(r#"{"msg_id":"h-1","type":"heartbeat","battery_pct":54,"rssi":-71,"charging":false,"interval_s":600,"active":true}"#)
                .unwrap();
        assert_eq!(d.event.event, EventType::Heartbeat);
        assert_eq!(
            d.event.health,
            HealthReport {
                battery_pct: Some(54),
                rssi: Some(-71),
                charging: Some(false),
                interval_s: Some(600),
                active: Some(true)
            }
        );
        assert!(d.partial.is_empty());
        for (name, kind) in [
            ("low_battery", EventType::LowBattery),
            ("power_off", EventType::PowerOff),
            ("worn", EventType::Worn),
            ("not_worn", EventType::NotWorn),
            ("motion", EventType::Motion),
        ] {
            let d = dec(&format!(r#"{{"msg_id":"e-1","type":"{name}"}}"#)).unwrap();
            assert_eq!((d.event.event, d.event.health), (kind, HealthReport::default()), "{name}");
        }
    }

    #[test]
    fn a_bad_health_field_is_ignored_and_said_and_the_rest_kept() {
        for bad in [
            r#""battery_pct":101"#,
            r#""battery_pct":-1"#,
            r#""battery_pct":"50""#,
            r#""battery_pct":50.5"#,
            r#""rssi":12"#,
            r#""rssi":-151"#,
            r#""charging":1"#,
            r#""charging":"yes""#,
            r#""interval_s":5"#,
            r#""interval_s":86401"#,
            r#""battery_pct":1e400"#,
            r#""active":1"#,
            r#""active":"yes""#,
        ] {
            let rssi_is_bad = bad.starts_with(r#""rssi""#);
            let good = if rssi_is_bad { r#""battery_pct":50"# } else { r#""rssi":-80"# };
            let d = dec(&format!(r#"{{"msg_id":"h-1","type":"heartbeat",{good},{bad}}}"#))
                .unwrap_or_else(|e| panic!("{bad}: {e}"));
            assert_eq!(d.partial, [Defect::BadHealth], "{bad}");
            let kept =
                if rssi_is_bad { d.event.health.battery_pct == Some(50) } else { d.event.health.rssi == Some(-80) };
            assert!(kept, "{bad}: the good field stays: {:?}", d.event.health);
        }
        // Null is as good as absent; a press may carry its battery too.
        let d = dec(r#"{"msg_id":"p-1","type":"sos","battery_pct":null,"charging":true}"#).unwrap();
        assert_eq!((d.event.event, d.event.health.charging, d.partial.len()), (EventType::Sos, Some(true), 0));
        // Given twice, like any field the decoder reads.
        assert_eq!(dec(r#"{"msg_id":"h","type":"heartbeat","rssi":-1,"rssi":-2}"#), Err(Defect::DuplicateKey("rssi")));
    }

    #[test]
    fn a_press_without_fix_or_clock_still_decodes() {
        let d = dec(r#"{"msg_id":17,"type":"fall"}"#).unwrap();
        assert_eq!(d.event.msg_id.as_str(), "17");
        assert_eq!(d.event.device_ts, NOW);
        assert_eq!(d.event.fix, FixReport::Absent);
    }

    #[test]
    fn type_names_are_matched_forgivingly() {
        assert_eq!(dec(r#"{"msg_id":"m","type":" SOS "}"#).unwrap().event.event, EventType::Sos);
    }

    #[test]
    fn a_bad_clock_keeps_the_press_on_our_clock() {
        for ts in [r#""yesterday""#, "-5", "1.5"] {
            let d = dec(&format!(r#"{{"msg_id":"m","type":"sos","ts":{ts}}}"#)).unwrap();
            assert_eq!((d.event.device_ts, d.partial.as_slice()), (NOW, [Defect::BadTimestamp].as_slice()), "{ts}");
        }
    }

    #[test]
    fn each_defect_has_its_reason() {
        assert_eq!(dec("not json"), Err(Defect::NotJson));
        assert_eq!(dec("[1,2]"), Err(Defect::NotJson));
        assert_eq!(dec(r#"{"type":"sos"}"#), Err(Defect::MissingMsgId));
        assert_eq!(dec(r#"{"msg_id":"a b","type":"sos"}"#), Err(Defect::BadMsgId));
        assert_eq!(dec(r#"{"msg_id":{},"type":"sos"}"#), Err(Defect::BadMsgId));
        assert_eq!(dec(r#"{"msg_id":"m"}"#), Err(Defect::MissingType));
        assert_eq!(dec(r#"{"msg_id":"m","type":"dance"}"#), Err(Defect::UnknownType));
        assert_eq!(dec(r#"{"msg_id":"m","type":"sos","location":{"lat":NaN,"lon":1}}"#), Err(Defect::NotJson));
        let big = format!(r#"{{"msg_id":"m","type":"sos","pad":"{}"}}"#, "x".repeat(5000));
        assert_eq!(dec(&big), Err(Defect::Oversized));
    }

    #[test]
    fn a_bad_location_drops_the_fix_but_keeps_the_press() {
        for loc in [
            r#"{"lat":91,"lon":102}"#,
            r#"{"lat":25,"lon":-181}"#,
            r#"{"lat":"x","lon":102}"#,
            r#"{"lat":25,"lon":102,"accuracy_m":-3}"#,
            r#""here""#,
        ] {
            let d = dec(&format!(r#"{{"msg_id":"m","type":"sos","location":{loc}}}"#)).unwrap();
            assert_eq!(d.event.event, EventType::Sos, "{loc}");
            assert_eq!(d.event.fix, FixReport::Malformed, "{loc}");
            assert_eq!(d.partial, vec![Defect::BadLocation], "{loc}");
        }
    }

    #[test]
    fn a_number_too_large_for_a_float_refuses_only_its_part() {
        let d = dec(r#"{"msg_id":"m","type":"sos","location":{"lat":1e400,"lon":102.68}}"#).unwrap();
        assert_eq!((d.event.event, d.event.fix), (EventType::Sos, FixReport::Malformed));
        assert_eq!(d.partial, [Defect::BadLocation]);
        let d = dec(r#"{"msg_id":"m","type":"fall","ts":1e400}"#).unwrap();
        assert_eq!((d.event.device_ts, d.partial.as_slice()), (NOW, [Defect::BadTimestamp].as_slice()));
        // Still refused whole: the press's own fields, with the reason that names the field.
        assert_eq!(dec(r#"{"msg_id":1e400,"type":"sos"}"#), Err(Defect::BadMsgId));
        assert_eq!(dec(r#"{"msg_id":-1e400,"type":"sos"}"#), Err(Defect::BadMsgId));
        // And null is still no clock and no fix, not a bad one.
        let d = dec(r#"{"msg_id":"m","type":"sos","ts":null,"location":null}"#).unwrap();
        assert_eq!((d.event.device_ts, d.event.fix, d.partial.len()), (NOW, FixReport::Absent, 0));
    }

    #[test]
    fn a_key_given_twice_is_refused_by_name() {
        for (payload, key) in [
            (r#"{"msg_id":"m","type":"service","type":"sos"}"#, "type"),
            (r#"{"msg_id":"m","msg_id":"n","type":"sos"}"#, "msg_id"),
            (r#"{"msg_id":null,"msg_id":"m","type":"sos"}"#, "msg_id"),
            (r#"{"msg_id":"m","type":"sos","ts":1,"ts":2}"#, "ts"),
            (r#"{"msg_id":"m","type":"sos","location":null,"location":{"lat":1,"lon":2}}"#, "location"),
            // The first key given twice is the one named.
            (r#"{"ts":1,"ts":2,"msg_id":"m","msg_id":"m"}"#, "ts"),
            // Escaped or not, it is the same key.
            (r#"{"msg_id":"m","type":"sos","typ\u0065":"fall"}"#, "type"),
        ] {
            let refused = dec(payload);
            assert_eq!(refused, Err(Defect::DuplicateKey(key)), "{payload}");
            assert_eq!(refused.unwrap_err().to_string(), format!("payload has the key `{key}` more than once"));
        }
        assert_eq!(Defect::DuplicateKey("ts").as_label(), "duplicate_key");
        // A key the decoder does not read may come twice; JSON that breaks later is still not JSON.
        assert!(dec(r#"{"msg_id":"m","type":"sos","fw":1,"fw":2}"#).is_ok());
        assert_eq!(dec(r#"{"msg_id":"m","msg_id":"n","type":"sos""#), Err(Defect::NotJson));
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped_and_counted() {
        let d =
            decode(b"\xEF\xBB\xBF{\"msg_id\":\"m-1\",\"type\":\"sos\",\"ts\":\"x\"}", DEFAULT_MAX_PAYLOAD_BYTES, NOW)
                .unwrap();
        assert_eq!((d.event.msg_id.as_str(), d.event.event), ("m-1", EventType::Sos));
        assert_eq!(d.partial, [Defect::ByteOrderMark, Defect::BadTimestamp]);
        assert_eq!(Defect::ByteOrderMark.as_label(), "byte_order_mark");
        // Only one, only first, and only before an object.
        for payload in [
            &b"\xEF\xBB\xBF\xEF\xBB\xBF{\"msg_id\":\"m\",\"type\":\"sos\"}"[..],
            b" \xEF\xBB\xBF{\"msg_id\":\"m\",\"type\":\"sos\"}",
            b"\xEF\xBB\xBF[\"m\",\"sos\"]",
            b"\xEF\xBB\xBF",
        ] {
            assert_eq!(decode(payload, DEFAULT_MAX_PAYLOAD_BYTES, NOW), Err(Defect::NotJson), "{payload:?}");
        }
        // The limit counts the BOM: 3 bytes and 27 of JSON.
        assert_eq!(decode(b"\xEF\xBB\xBF{\"msg_id\":\"m\",\"type\":\"sos\"}", 29, NOW), Err(Defect::Oversized));
    }

    #[test]
    fn every_label_is_distinct() {
        let labels: std::collections::HashSet<_> = Defect::ALL.iter().map(|d| d.as_label()).collect();
        assert_eq!(labels.len(), Defect::ALL.len());
    }

    #[test]
    fn fingerprints_are_stable_and_distinguish_payloads() {
        assert_eq!(fingerprint(b"abc"), fingerprint(b"abc"));
        assert_ne!(fingerprint(b"abc"), fingerprint(b"abd"));
        assert_eq!(fingerprint(b"").as_str(), "raw-cbf29ce484222325");
    }

    proptest::proptest! {
        #[test]
        fn decoding_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = decode(&bytes, DEFAULT_MAX_PAYLOAD_BYTES, NOW);
        }
    }
}
