//! Inputs the fuzzer found the frame and sign-in decoders wrong on (`fuzz/fuzz_targets/`),
//! kept so they stay fixed. Each names the target and what was wrong.

use anxin_api::commands::{Caller, ClientFrame};
use anxin_api::http::read_sign_in;
use anxin_core::ResponderId;

/// client_frame: serde read a JSON array as a frame, the tag first and then the fields in
/// order, so `["decline", 3, "de3,"]` declined incident 3 with request id `de3,`. A frame is
/// an object (`{"type": ...}`); anything else is `malformed`.
#[test]
fn an_array_is_not_a_frame() {
    let responder = Caller::Responder(ResponderId::parse("xs-r011").unwrap());
    for text in ["\n[\"decline\",\n3,\"de3,\"]  ", r#"["accept",7,null]"#, r#"["duty",true,"d-1"]"#] {
        let err = ClientFrame::from_json(text).expect_err(text);
        assert!(err.to_string().contains("a frame is a JSON object"), "{text}: {err}");
    }
    // The object form, with whitespace before it, still reads.
    let frame = ClientFrame::from_json(" \n{\"type\":\"decline\",\"incident_id\":3,\"request_id\":\"de3\"}").unwrap();
    assert_eq!(frame.request_id(), Some("de3"));
    assert!(frame.into_request(&responder).is_ok());
}

/// sign_in: the same for the sign-in body: `[":", ""]` was user `:` with an empty password
/// (a password check against nobody, slow on purpose). It is now the 400 any other body gets.
#[test]
fn an_array_is_not_a_sign_in() {
    assert_eq!(read_sign_in(r#"[":",""]"#), None);
    assert_eq!(read_sign_in(r#"["dispatcher","anxin-demo"]"#), None);
    assert_eq!(
        read_sign_in(r#" {"user":"dispatcher","password":"anxin-demo"}"#),
        Some(("dispatcher".into(), "anxin-demo".into()))
    );
}
