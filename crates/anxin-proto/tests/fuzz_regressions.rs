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
