//! Signed requests, both ways: the webhook to the gateway and the gateway's callback carry
//! `X-Anxin-Timestamp: <unix ms>` and `X-Anxin-Signature: sha256=<hex>`, the HMAC-SHA256
//! of `"<timestamp>.<body>"` under a shared secret. The timestamp is inside the signature, so
//! a captured request cannot be replayed outside the tolerance window.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub const TIMESTAMP_HEADER: &str = "x-anxin-timestamp";
pub const SIGNATURE_HEADER: &str = "x-anxin-signature";
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// How far a callback's timestamp may be from our clock, either way, by default.
pub const DEFAULT_TOLERANCE_MS: i64 = 5 * 60 * 1000;

/// Why a signed request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the timestamp or signature header is missing")]
    Missing,
    #[error("the timestamp is not a number of milliseconds")]
    BadTimestamp,
    #[error("the timestamp is outside the tolerance window")]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp_ms: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `X-Anxin-Signature` value for `body` sent at `timestamp_ms`.
pub fn sign(secret: &[u8], timestamp_ms: i64, body: &[u8]) -> String {
    let tag = mac(secret, timestamp_ms, body).finalize().into_bytes();
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256=");
    for b in tag {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Checks a signed request's headers against its body: the signature must match (compared
/// in constant time) and the timestamp lie within `tolerance_ms` of `now_ms`.
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_ms: i64,
    tolerance_ms: i64,
) -> Result<(), SignatureError> {
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else { return Err(SignatureError::Missing) };
    let ts: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
    let hex = signature.trim().strip_prefix("sha256=").ok_or(SignatureError::Mismatch)?;
    let tag = decode_hex(hex).ok_or(SignatureError::Mismatch)?;
    mac(secret, ts, body).verify_slice(&tag).map_err(|_| SignatureError::Mismatch)?;
    // Checked after the signature, so an unsigned guess learns nothing about our clock.
    if (now_ms - ts).abs() > tolerance_ms {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_hmac_sha256_of_timestamp_dot_body_in_hex() {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let one_shot = |key: &[u8], message: &[u8]| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
            mac.update(message);
            hex(&mac.finalize().into_bytes())
        };
        // RFC 4231, test case 2: the primitive is HMAC-SHA256.
        assert_eq!(
            one_shot(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let body = r#"{"key":"n42","text":"【安心】"}"#;
        let expected = format!("sha256={}", one_shot(b"s3cret", format!("1763000000123.{body}").as_bytes()));
        assert_eq!(sign(b"s3cret", 1_763_000_000_123, body.as_bytes()), expected);
    }

    #[test]
    fn verify_takes_a_fresh_good_signature_and_refuses_the_rest() {
        let (secret, body, at) = (b"s3cret".as_slice(), br#"{"key":"n1"}"#.as_slice(), 1_763_000_000_000_i64);
        let good = sign(secret, at, body);
        let ts = at.to_string();
        let check = |ts: Option<&str>, sig: Option<&str>, body: &[u8], now: i64| {
            verify(secret, ts, sig, body, now, DEFAULT_TOLERANCE_MS)
        };
        assert_eq!(check(Some(&ts), Some(&good), body, at + 1000), Ok(()));
        assert_eq!(check(Some(&ts), Some(&good), b"{\"key\":\"n2\"}", at), Err(SignatureError::Mismatch));
        assert_eq!(check(Some(&ts), Some(&sign(b"other", at, body)), body, at), Err(SignatureError::Mismatch));
        let later = (at + 1).to_string();
        assert_eq!(check(Some(&later), Some(&good), body, at), Err(SignatureError::Mismatch), "the time is signed");
        assert_eq!(check(Some(&ts), Some(&good), body, at + DEFAULT_TOLERANCE_MS + 1), Err(SignatureError::Stale));
        assert_eq!(check(None, Some(&good), body, at), Err(SignatureError::Missing));
        assert_eq!(check(Some("soon"), Some(&good), body, at), Err(SignatureError::BadTimestamp));
        assert_eq!(check(Some(&ts), Some("sha256=zz"), body, at), Err(SignatureError::Mismatch));
    }
}
