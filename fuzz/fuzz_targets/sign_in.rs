//! A console's sign-in: the body of `POST /api/v1/session` through `read_sign_in`, as
//! `session_create` reads it, and a `Cookie` header through `session_token`, as every
//! signed-in request and the console's `/ws` read it. The same bytes are tried as both.
#![no_main]

use anxin_api::auth::{session_token, SESSION_COOKIE};
use anxin_api::http::read_sign_in;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // axum hands the body over as a `String`, and a header as `&str` only when it is text.
    let Ok(text) = std::str::from_utf8(data) else { return };

    if let Some((user, password)) = read_sign_in(text) {
        // Exactly the two fields, both text, and nothing else taken from the body.
        let value: serde_json::Value = serde_json::from_str(text).expect("a sign-in body is JSON");
        let fields = value.as_object().expect("a sign-in body is an object");
        assert_eq!(fields.len(), 2, "{text}");
        assert_eq!(fields.get("user").and_then(serde_json::Value::as_str), Some(user.as_str()));
        assert_eq!(fields.get("password").and_then(serde_json::Value::as_str), Some(password.as_str()));
    }

    if let Some(token) = session_token(text) {
        // The value of our own cookie, whole: not empty, not running into the next cookie.
        assert!(!token.is_empty());
        assert!(!token.contains(';'), "{token:?}");
        let pair = format!("{SESSION_COOKIE}={token}");
        assert!(text.split(';').any(|p| p.trim() == pair), "{text:?} -> {token:?}");
    }
});
