//! Device payloads: the bytes a device publishes on its events topic, through
//! `anxin_proto::decode` as the engine calls it, and the fingerprint an unreadable one is
//! stored under.
#![no_main]

use anxin_core::{EventType, FixReport, MessageId, Timestamp, MAX_ID_LEN};
use anxin_proto::payload::DEFAULT_MAX_PAYLOAD_BYTES;
use anxin_proto::{decode, fingerprint, Decoded, Defect};
use libfuzzer_sys::fuzz_target;

/// The engine's clock when the message arrived: stands in for a missing or refused `ts`.
const RECEIVED_AT: Timestamp = Timestamp(1_763_000_000_000);

fuzz_target!(|payload: &[u8]| {
    let unlimited = decode(payload, usize::MAX, RECEIVED_AT);
    assert_ne!(unlimited, Err(Defect::Oversized));

    // The limit refuses exactly what is longer than it, and changes nothing else.
    assert_eq!(decode(payload, payload.len(), RECEIVED_AT), unlimited);
    if let Some(below) = payload.len().checked_sub(1) {
        assert_eq!(decode(payload, below, RECEIVED_AT), Err(Defect::Oversized));
    }
    let at_default = decode(payload, DEFAULT_MAX_PAYLOAD_BYTES, RECEIVED_AT);
    if payload.len() > DEFAULT_MAX_PAYLOAD_BYTES {
        assert_eq!(at_default, Err(Defect::Oversized));
    } else {
        assert_eq!(at_default, unlimited);
    }

    match unlimited {
        Ok(decoded) => check_decoded(payload, &decoded),
        // A payload is refused as a whole only for these; a bad clock or fix is partial, and
        // the topic and registry are not the decoder's to judge.
        Err(defect) => assert!(
            matches!(
                defect,
                Defect::NotJson
                    | Defect::DuplicateKey(_)
                    | Defect::MissingMsgId
                    | Defect::BadMsgId
                    | Defect::MissingType
                    | Defect::UnknownType
            ),
            "{defect:?}"
        ),
    }

    // An unreadable payload is stored under its fingerprint: a valid, stable message id.
    let id = fingerprint(payload);
    assert_eq!(id, fingerprint(payload));
    assert_eq!(MessageId::parse(id.as_str()), Ok(id.clone()));
    assert!(id.as_str().starts_with("raw-") && id.as_str().len() == 20, "{id}");
});

fn check_decoded(payload: &[u8], d: &Decoded) {
    // Anything but an object is `NotJson`, "payload is not a JSON object"; one leading UTF-8
    // byte order mark is skipped, and counted. (Not a full JSON check: fields the decoder
    // skips are skipped unread, invalid UTF-8 and all, so that a press with a garbled field
    // newer firmware added still goes through.)
    let bom = payload.starts_with(b"\xEF\xBB\xBF");
    assert_eq!(d.partial.first() == Some(&Defect::ByteOrderMark), bom, "{:?}", d.partial);
    let json = if bom { &payload[3..] } else { payload };
    let object = json.trim_ascii_start().first() == Some(&b'{');
    assert!(object, "not an object: {}", String::from_utf8_lossy(payload));
    let e = &d.event;
    // The message id is what makes a redelivery change nothing: a valid identifier.
    assert!(!e.msg_id.as_str().is_empty() && e.msg_id.as_str().len() <= MAX_ID_LEN);
    assert_eq!(MessageId::parse(e.msg_id.as_str()), Ok(e.msg_id.clone()));
    assert!(EventType::ALL.contains(&e.event));
    // A device clock is a Unix time in milliseconds, never negative; a refused one is ours.
    assert!(e.device_ts.0 >= 0, "{:?}", e.device_ts);
    if d.partial.contains(&Defect::BadTimestamp) {
        assert_eq!(e.device_ts, RECEIVED_AT);
    }
    // Partial defects are only the BOM, the clock, the fix and the health fields, each at
    // most once.
    for defect in &d.partial {
        assert!(
            matches!(defect, Defect::ByteOrderMark | Defect::BadTimestamp | Defect::BadLocation | Defect::BadHealth),
            "{defect:?}"
        );
        assert_eq!(d.partial.iter().filter(|x| *x == defect).count(), 1, "{:?}", d.partial);
    }
    assert_eq!(matches!(e.fix, FixReport::Malformed), d.partial.contains(&Defect::BadLocation));
    // What a device says of its health is in range, or left out.
    let h = &e.health;
    assert!(h.battery_pct.is_none_or(|p| p <= 100), "{h:?}");
    assert!(h.rssi.is_none_or(|r| (-150..=0).contains(&r)), "{h:?}");
    assert!(h.interval_s.is_none_or(|s| (10..=86_400).contains(&s)), "{h:?}");
    if let FixReport::Valid(fix) = &e.fix {
        let (lat, lon) = (fix.at.lat(), fix.at.lon());
        assert!(lat.is_finite() && (-90.0..=90.0).contains(&lat), "{lat}");
        assert!(lon.is_finite() && (-180.0..=180.0).contains(&lon), "{lon}");
        if let Some(a) = fix.accuracy_m {
            assert!(a.is_finite() && a >= 0.0, "{a}");
        }
    }
}
