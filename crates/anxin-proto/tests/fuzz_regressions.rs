//! Inputs the fuzzer (`fuzz/fuzz_targets/device_payload.rs`) found the decoder wrong on, kept
//! so they stay fixed. Each names the target and what was wrong.

use anxin_core::Timestamp;
use anxin_proto::payload::DEFAULT_MAX_PAYLOAD_BYTES;
use anxin_proto::{decode, Defect};

const NOW: Timestamp = Timestamp(1_763_000_000_000);

/// device_payload: serde read a JSON array's items as the fields in order, so
/// `["m-1","sos",...]` was a press although a payload is an object (`NotJson` says "payload is
/// not a JSON object"). A known device's array now raises an `unreadable` incident like any
/// other payload that cannot be read.
#[test]
fn an_array_is_not_a_payload() {
    for payload in [
        r#"["m-1","sos",1763000000123,{"lat":25.0,"lon":102.7}]"#,
        r#"["m-1","sos"]"#,
        " \n\t[\"m-1\",\"fall\",null,null]",
    ] {
        assert_eq!(decode(payload.as_bytes(), DEFAULT_MAX_PAYLOAD_BYTES, NOW), Err(Defect::NotJson), "{payload}");
    }
    // Whitespace before an object is still JSON.
    let press = decode(b" \r\n{\"msg_id\":\"m-1\",\"type\":\"sos\"}", DEFAULT_MAX_PAYLOAD_BYTES, NOW).unwrap();
    assert_eq!(press.event.msg_id.as_str(), "m-1");
}

/// device_payload (and a field report): three payloads refused with a reason that misled.
/// `"msg_id": 1e400` is a message id no float holds, which the docs call `bad_msg_id`, but the
/// whole payload was `not_json`; a key given twice, and a UTF-8 byte order mark in front, were
/// both "payload is not a JSON object", which they are. A key given twice is now
/// `duplicate_key`, naming it; a leading BOM is skipped (RFC 8259 allows it) and counted as
/// `byte_order_mark`, and the press is read.
#[test]
fn refusals_say_what_is_wrong() {
    let decode = |payload: &[u8]| decode(payload, DEFAULT_MAX_PAYLOAD_BYTES, NOW);
    assert_eq!(decode(br#"{"msg_id":1e400,"type":"sos"}"#), Err(Defect::BadMsgId));
    assert_eq!(decode(br#"{"msg_id":"m-1","type":"sos","type":"service"}"#), Err(Defect::DuplicateKey("type")));
    let press = decode(b"\xEF\xBB\xBF{\"msg_id\":\"m-1\",\"type\":\"sos\"}").unwrap();
    assert_eq!((press.event.msg_id.as_str(), press.partial.as_slice()), ("m-1", [Defect::ByteOrderMark].as_slice()));
}
