//! Web Push, the sending side: a message encrypted for one browser (RFC 8291, the
//! `aes128gcm` content coding of RFC 8188 in a single record) and the application server's
//! VAPID identity (RFC 8292: an ES256 JWT and our public key in `Authorization`). The
//! push service learns neither the text nor who the contact is.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::{PublicKey, SecretKey};
use sha2::Sha256;

/// The record size written in the header: one record carries any push message (the push
/// services take at most 4,096 bytes of body).
const RECORD_SIZE: u32 = 4096;

/// Why a message could not be encrypted or signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    #[error("the subscription's p256dh is not a P-256 public key")]
    BadBrowserKey,
    #[error("the subscription's auth secret is not 16 bytes")]
    BadAuthSecret,
    #[error("the message is too long for one push ({0} bytes)")]
    TooLong(usize),
    #[error("the VAPID private key is not a base64url P-256 scalar")]
    BadVapidKey,
    #[error("the endpoint {0:?} is not an https:// or http:// URL")]
    BadEndpoint(String),
}

/// The browser's side of a subscription, decoded.
#[derive(Debug, Clone)]
pub struct BrowserKeys {
    /// `p256dh`: uncompressed point, 65 bytes.
    pub public: PublicKey,
    /// `auth`: 16 bytes.
    pub auth: [u8; 16],
}

impl BrowserKeys {
    /// From a subscription's `p256dh` and `auth`, base64url (padding tolerated).
    pub fn parse(p256dh: &str, auth: &str) -> Result<Self, PushError> {
        let public = b64(p256dh).ok_or(PushError::BadBrowserKey)?;
        let public = PublicKey::from_sec1_bytes(&public).map_err(|_| PushError::BadBrowserKey)?;
        let auth: [u8; 16] = b64(auth).and_then(|a| a.try_into().ok()).ok_or(PushError::BadAuthSecret)?;
        Ok(Self { public, auth })
    }
}

fn b64(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim().trim_end_matches('=')).ok()
}

/// The values one encryption derives, kept apart so the tests can hold them against RFC 8291.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub ecdh_secret: [u8; 32],
    pub ikm: [u8; 32],
    pub cek: [u8; 16],
    pub nonce: [u8; 12],
}

/// Derives the content key and nonce (RFC 8291 section 3.4) from our ephemeral key, the
/// browser's keys and the salt.
pub fn derive(ours: &SecretKey, browser: &BrowserKeys, salt: &[u8; 16]) -> Derived {
    let shared = p256::ecdh::diffie_hellman(ours.to_nonzero_scalar(), browser.public.as_affine());
    let mut ecdh_secret = [0u8; 32];
    ecdh_secret.copy_from_slice(shared.raw_secret_bytes());
    // key_info = "WebPush: info" 0x00 ua_public as_public
    let mut key_info = Vec::with_capacity(14 + 65 + 65);
    key_info.extend_from_slice(b"WebPush: info\0");
    key_info.extend_from_slice(browser.public.to_encoded_point(false).as_bytes());
    key_info.extend_from_slice(ours.public_key().to_encoded_point(false).as_bytes());
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(&browser.auth), &ecdh_secret).expand(&key_info, &mut ikm).expect("32 bytes");
    let prk = Hkdf::<Sha256>::new(Some(salt), &ikm);
    let mut cek = [0u8; 16];
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek).expect("16 bytes");
    let mut nonce = [0u8; 12];
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce).expect("12 bytes");
    Derived { ecdh_secret, ikm, cek, nonce }
}

/// Encrypts `plaintext` for `browser` with our ephemeral key `ours` and `salt`: the whole
/// request body, header (salt, record size, our public key) then the one record.
pub fn encrypt_with(
    plaintext: &[u8],
    browser: &BrowserKeys,
    ours: &SecretKey,
    salt: &[u8; 16],
) -> Result<Vec<u8>, PushError> {
    // 4,096 less the header (86), the delimiter (1) and the tag (16).
    if plaintext.len() > 3993 {
        return Err(PushError::TooLong(plaintext.len()));
    }
    let keys = derive(ours, browser, salt);
    let mut record = Vec::with_capacity(plaintext.len() + 1);
    record.extend_from_slice(plaintext);
    record.push(0x02); // the last (and only) record's delimiter, no padding
    let cipher = Aes128Gcm::new_from_slice(&keys.cek).expect("16-byte key");
    let sealed = cipher
        .encrypt(Nonce::from_slice(&keys.nonce), Payload { msg: &record, aad: b"" })
        .expect("AES-GCM encrypts any length here");
    let public = ours.public_key().to_encoded_point(false);
    let mut body = Vec::with_capacity(16 + 4 + 1 + 65 + sealed.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(public.as_bytes().len() as u8);
    body.extend_from_slice(public.as_bytes());
    body.extend_from_slice(&sealed);
    Ok(body)
}

/// Encrypts `plaintext` for `browser` with a fresh ephemeral key and salt.
pub fn encrypt(plaintext: &[u8], browser: &BrowserKeys) -> Result<Vec<u8>, PushError> {
    let ours = SecretKey::random(&mut rand_core::OsRng);
    let mut salt = [0u8; 16];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut salt);
    encrypt_with(plaintext, browser, &ours, &salt)
}

/// The browser's side, for tests and tools: opens a body [`encrypt`] made, with the
/// browser's private key and auth secret (RFC 8291 section 3.4, a single record).
pub fn decrypt(body: &[u8], browser_private: &SecretKey, auth: &[u8; 16]) -> Result<Vec<u8>, PushError> {
    let bad = || PushError::BadBrowserKey;
    let salt: [u8; 16] = body.get(..16).and_then(|s| s.try_into().ok()).ok_or_else(bad)?;
    let id_len = *body.get(20).ok_or_else(bad)? as usize;
    let server_public = PublicKey::from_sec1_bytes(body.get(21..21 + id_len).ok_or_else(bad)?).map_err(|_| bad())?;
    let ours = browser_private.public_key();
    let shared = p256::ecdh::diffie_hellman(browser_private.to_nonzero_scalar(), server_public.as_affine());
    let mut key_info = b"WebPush: info\0".to_vec();
    key_info.extend_from_slice(ours.to_encoded_point(false).as_bytes());
    key_info.extend_from_slice(server_public.to_encoded_point(false).as_bytes());
    let mut ikm = [0u8; 32];
    Hkdf::<Sha256>::new(Some(auth), shared.raw_secret_bytes()).expand(&key_info, &mut ikm).expect("32 bytes");
    let prk = Hkdf::<Sha256>::new(Some(&salt), &ikm);
    let (mut cek, mut nonce) = ([0u8; 16], [0u8; 12]);
    prk.expand(b"Content-Encoding: aes128gcm\0", &mut cek).expect("16 bytes");
    prk.expand(b"Content-Encoding: nonce\0", &mut nonce).expect("12 bytes");
    let mut plain = Aes128Gcm::new_from_slice(&cek)
        .expect("16-byte key")
        .decrypt(Nonce::from_slice(&nonce), &body[21 + id_len..])
        .map_err(|_| bad())?;
    // The last record's delimiter, after any padding.
    while plain.last() == Some(&0) {
        plain.pop();
    }
    if plain.pop() != Some(0x02) {
        return Err(bad());
    }
    Ok(plain)
}

/// The application server's VAPID key pair (RFC 8292).
#[derive(Clone)]
pub struct Vapid {
    key: SigningKey,
    /// A `mailto:` or `https:` URL the push service can reach the operator by.
    subject: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid").field("public_key", &self.public_key()).field("subject", &self.subject).finish()
    }
}

impl Vapid {
    /// From the private key as base64url (32 bytes) and the subject.
    pub fn new(private_key: &str, subject: &str) -> Result<Self, PushError> {
        let bytes = b64(private_key).ok_or(PushError::BadVapidKey)?;
        let key = SigningKey::from_slice(&bytes).map_err(|_| PushError::BadVapidKey)?;
        Ok(Self { key, subject: subject.to_string() })
    }

    /// A fresh key pair: (private, public), base64url, for `anxind vapid-keys`.
    pub fn generate() -> (String, String) {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let public = key.verifying_key().to_encoded_point(false);
        (URL_SAFE_NO_PAD.encode(key.to_bytes()), URL_SAFE_NO_PAD.encode(public.as_bytes()))
    }

    /// The public key as the page subscribes with it (`applicationServerKey`): base64url of
    /// the uncompressed point.
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.verifying_key().to_encoded_point(false).as_bytes())
    }

    /// The `Authorization` header for a push to `endpoint`, valid until `expires_s` (Unix
    /// seconds; at most 24 hours ahead, RFC 8292 section 2).
    pub fn authorization(&self, endpoint: &str, expires_s: i64) -> Result<String, PushError> {
        let audience = origin(endpoint).ok_or_else(|| PushError::BadEndpoint(endpoint.to_string()))?;
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({ "aud": audience, "exp": expires_s, "sub": self.subject });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string().as_bytes());
        let signing_input = format!("{header}.{claims}");
        let signature: Signature = self.key.sign(signing_input.as_bytes());
        let jwt = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()));
        Ok(format!("vapid t={jwt}, k={}", self.public_key()))
    }
}

/// `scheme://host[:port]` of a URL: the JWT's audience.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next().filter(|h| !h.is_empty())?;
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::Verifier;
    use p256::ecdsa::VerifyingKey;

    fn bytes(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    /// RFC 8291, Appendix A: the worked example, every published value.
    #[test]
    fn encryption_matches_rfc_8291_appendix_a() {
        let plaintext = b"When I grow up, I want to be a watermelon";
        let as_private = SecretKey::from_slice(&bytes("yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw")).unwrap();
        let as_public = "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8";
        assert_eq!(as_private.public_key().to_encoded_point(false).as_bytes(), bytes(as_public));
        let ua_private = SecretKey::from_slice(&bytes("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94")).unwrap();
        let ua_public = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        assert_eq!(ua_private.public_key().to_encoded_point(false).as_bytes(), bytes(ua_public));
        let browser = BrowserKeys::parse(ua_public, "BTBZMqHH6r4Tts7J_aSIgg").unwrap();
        let salt: [u8; 16] = bytes("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap();

        let derived = derive(&as_private, &browser, &salt);
        assert_eq!(derived.ecdh_secret.to_vec(), bytes("kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs"));
        assert_eq!(derived.ikm.to_vec(), bytes("S4lYMb_L0FxCeq0WhDx813KgSYqU26kOyzWUdsXYyrg"));
        assert_eq!(derived.cek.to_vec(), bytes("oIhVW04MRdy2XN9CiKLxTg"));
        assert_eq!(derived.nonce.to_vec(), bytes("4h_95klXJ5E_qnoN"));

        let body = encrypt_with(plaintext, &browser, &as_private, &salt).unwrap();
        let expected = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN";
        assert_eq!(URL_SAFE_NO_PAD.encode(&body), expected);
        assert_eq!(decrypt(&body, &ua_private, &browser.auth).unwrap(), plaintext);
    }

    #[test]
    fn a_fresh_encryption_opens_with_the_browsers_key() {
        let ua_private = SecretKey::random(&mut rand_core::OsRng);
        let ua_public = URL_SAFE_NO_PAD.encode(ua_private.public_key().to_encoded_point(false).as_bytes());
        let browser = BrowserKeys::parse(&ua_public, "AAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let text = "【安心】张秀英发出一键呼救，呼叫中心正在安排人员上门。";
        let body = encrypt(text.as_bytes(), &browser).unwrap();
        assert_eq!(decrypt(&body, &ua_private, &[0; 16]).unwrap(), text.as_bytes());
        assert!(encrypt(&[b'x'; 4000], &browser).is_err(), "too long for one record");
        assert_eq!(BrowserKeys::parse("AAAA", "AAAAAAAAAAAAAAAAAAAAAA").unwrap_err(), PushError::BadBrowserKey);
    }

    #[test]
    fn vapid_authorization_is_an_es256_jwt_for_the_endpoints_origin() {
        let (private, public) = Vapid::generate();
        let vapid = Vapid::new(&private, "mailto:ops@example.com").unwrap();
        assert_eq!(vapid.public_key(), public);
        let header = vapid.authorization("https://push.example.net:8443/wpush/v2/abc?x=1", 1_763_043_200).unwrap();
        let (t, k) = header.strip_prefix("vapid t=").unwrap().split_once(", k=").unwrap();
        assert_eq!(k, public);
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let head: serde_json::Value = serde_json::from_slice(&bytes(parts[0])).unwrap();
        assert_eq!(head, serde_json::json!({"typ": "JWT", "alg": "ES256"}));
        let claims: serde_json::Value = serde_json::from_slice(&bytes(parts[1])).unwrap();
        assert_eq!(
            claims,
            serde_json::json!({"aud": "https://push.example.net:8443", "exp": 1_763_043_200, "sub": "mailto:ops@example.com"})
        );
        let key = VerifyingKey::from_sec1_bytes(&bytes(k)).unwrap();
        let signature = Signature::from_slice(&bytes(parts[2])).expect("64 bytes, r then s");
        key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature).expect("the JWT verifies");
        assert!(vapid.authorization("ftp://x/y", 0).is_err());
        assert!(Vapid::new("not a key", "mailto:x").is_err());
    }
}
