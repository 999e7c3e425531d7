//! Test support: a real HTTP receiver on a loopback port that stands in for the operator's
//! SMS gateway. It checks every request's signature and idempotency key, can refuse
//! everything for a while (HTTP 503), and keeps what it took by key, so a test can tell
//! that every notification arrived and how often.

use crate::gateway::WebhookBody;
use crate::signature::{verify, DEFAULT_TOLERANCE_MS, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// What the receiver saw.
#[derive(Debug, Clone, Default)]
pub struct GatewayLog {
    /// Taken (answered 200), by idempotency key: how many times. A gateway would send the
    /// first and drop the rest.
    pub taken: BTreeMap<String, u32>,
    /// The first body taken under each key.
    pub bodies: BTreeMap<String, WebhookBody>,
    /// Requests refused while the receiver was refusing (HTTP 503).
    pub refused: u32,
    /// Requests whose signature, timestamp or idempotency key did not check out (HTTP 401).
    pub bad: u32,
}

struct Shared {
    secret: Vec<u8>,
    refusing: AtomicBool,
    /// How long each request takes to answer when taken.
    delay: Duration,
    log: Mutex<GatewayLog>,
}

/// The receiver; it stops when dropped.
#[derive(Debug)]
pub struct TestGateway {
    /// Where to POST: `http://127.0.0.1:PORT/sms`.
    pub url: String,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TestGateway {
    /// Starts on a free loopback port, checking signatures with `secret`, answering each
    /// request it takes after `delay`.
    pub async fn start(secret: &str, delay: Duration) -> Self {
        let shared = Arc::new(Shared {
            secret: secret.as_bytes().to_vec(),
            refusing: AtomicBool::new(false),
            delay,
            log: Mutex::new(GatewayLog::default()),
        });
        let app = axum::Router::new().route("/sms", axum::routing::post(receive)).with_state(shared.clone());
        let (addr, stop) = serve(app).await;
        Self { url: format!("http://{addr}/sms"), shared, stop }
    }

    /// Refuses everything (HTTP 503) while `on`.
    pub fn refuse(&self, on: bool) {
        self.shared.refusing.store(on, Ordering::SeqCst);
    }

    pub fn log(&self) -> GatewayLog {
        self.shared.log.lock().expect("not poisoned").clone()
    }

    pub fn taken_keys(&self) -> BTreeSet<String> {
        self.shared.log.lock().expect("not poisoned").taken.keys().cloned().collect()
    }

    /// Waits until at least `n` keys were taken, or `within` passes; returns the log.
    pub async fn wait_for(&self, n: usize, within: Duration) -> GatewayLog {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let log = self.log();
            if log.taken.len() >= n || tokio::time::Instant::now() >= deadline {
                return log;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Serves `app` on a free loopback port until the returned token is cancelled.
async fn serve(app: axum::Router) -> (std::net::SocketAddr, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("bound");
    let stop = CancellationToken::new();
    let until = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(async move { until.cancelled().await }).await;
    });
    (addr, stop)
}

async fn receive(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_millis();
    let signed = verify(
        &shared.secret,
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        now as i64,
        DEFAULT_TOLERANCE_MS,
    );
    let parsed = serde_json::from_slice::<WebhookBody>(&body).ok();
    let key = header(IDEMPOTENCY_HEADER).map(str::to_string);
    let (Ok(()), Some(parsed), Some(key)) = (signed, parsed, key) else {
        shared.log.lock().expect("not poisoned").bad += 1;
        return StatusCode::UNAUTHORIZED;
    };
    if parsed.key != key {
        shared.log.lock().expect("not poisoned").bad += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if shared.refusing.load(Ordering::SeqCst) {
        shared.log.lock().expect("not poisoned").refused += 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if !shared.delay.is_zero() {
        tokio::time::sleep(shared.delay).await;
    }
    let mut log = shared.log.lock().expect("not poisoned");
    *log.taken.entry(key.clone()).or_default() += 1;
    log.bodies.entry(key).or_insert(parsed);
    StatusCode::OK
}

/// A push service on a loopback port standing in for the browsers' (RFC 8030): each
/// subscription is a browser key pair of its own; every message is checked for its VAPID
/// `Authorization` (an ES256 JWT for this origin, signed by the `k=` key) and decrypted with
/// the browser's key. A subscription can be made to answer 410 (gone).
#[derive(Debug)]
pub struct TestPushService {
    origin: String,
    shared: Arc<PushShared>,
    stop: CancellationToken,
}

/// One message a browser would have shown.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub subscription: String,
    /// The decrypted payload (JSON).
    pub payload: serde_json::Value,
    pub urgency: Option<String>,
    /// The VAPID public key (`k=`) the message was signed for.
    pub vapid_key: String,
}

struct Browser {
    key: p256::SecretKey,
    auth: [u8; 16],
    gone: bool,
}

#[derive(Default)]
struct PushShared {
    browsers: Mutex<BTreeMap<String, Browser>>,
    pushed: Mutex<Vec<Pushed>>,
    /// Messages refused: a bad JWT, a body that would not open, or a gone subscription.
    refused: Mutex<u32>,
    origin: Mutex<String>,
}

impl std::fmt::Debug for PushShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushShared").finish_non_exhaustive()
    }
}

impl Drop for TestPushService {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl TestPushService {
    pub async fn start() -> Self {
        let shared = Arc::new(PushShared::default());
        let app = axum::Router::new().route("/push/{id}", axum::routing::post(push)).with_state(shared.clone());
        let (addr, stop) = serve(app).await;
        let origin = format!("http://{addr}");
        *shared.origin.lock().expect("not poisoned") = origin.clone();
        Self { origin, shared, stop }
    }

    /// A new browser's subscription: (endpoint, p256dh, auth), as a page would send them.
    pub fn subscribe(&self, id: &str) -> (String, String, String) {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        use p256::elliptic_curve::sec1::ToEncodedPoint;
        let key = p256::SecretKey::random(&mut rand_core::OsRng);
        let mut auth = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut auth);
        let p256dh = URL_SAFE_NO_PAD.encode(key.public_key().to_encoded_point(false).as_bytes());
        self.shared.browsers.lock().expect("not poisoned").insert(id.to_string(), Browser { key, auth, gone: false });
        (format!("{}/push/{id}", self.origin), p256dh, URL_SAFE_NO_PAD.encode(auth))
    }

    /// From now on the subscription answers 410 Gone.
    pub fn unsubscribe(&self, id: &str) {
        if let Some(b) = self.shared.browsers.lock().expect("not poisoned").get_mut(id) {
            b.gone = true;
        }
    }

    pub fn pushed(&self) -> Vec<Pushed> {
        self.shared.pushed.lock().expect("not poisoned").clone()
    }

    pub fn refused(&self) -> u32 {
        *self.shared.refused.lock().expect("not poisoned")
    }
}

/// Checks `vapid t=JWT, k=KEY` for `origin`: the JWT's ES256 signature under KEY and its
/// audience. Returns KEY.
fn check_vapid(header: &str, origin: &str) -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use p256::ecdsa::signature::Verifier;
    let (t, k) = header.strip_prefix("vapid t=")?.split_once(", k=")?;
    let (signed, signature) = t.rsplit_once('.')?;
    let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&URL_SAFE_NO_PAD.decode(k).ok()?).ok()?;
    let signature = p256::ecdsa::Signature::from_slice(&URL_SAFE_NO_PAD.decode(signature).ok()?).ok()?;
    key.verify(signed.as_bytes(), &signature).ok()?;
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(signed.split_once('.')?.1).ok()?).ok()?;
    (claims["aud"] == origin && claims["sub"].is_string() && claims["exp"].is_i64()).then(|| k.to_string())
}

async fn push(
    State(shared): State<Arc<PushShared>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let origin = shared.origin.lock().expect("not poisoned").clone();
    let refuse = |status| {
        *shared.refused.lock().expect("not poisoned") += 1;
        status
    };
    let opened = {
        let browsers = shared.browsers.lock().expect("not poisoned");
        match browsers.get(&id) {
            None => return refuse(StatusCode::NOT_FOUND),
            Some(b) if b.gone => return refuse(StatusCode::GONE),
            Some(b) => crate::webpush::decrypt(&body, &b.key, &b.auth),
        }
    };
    let vapid = header("authorization").and_then(|h| check_vapid(&h, &origin));
    let encoded = header("content-encoding").as_deref() == Some("aes128gcm");
    let (Some(vapid_key), Ok(plain), true) = (vapid, opened, encoded) else {
        return refuse(StatusCode::UNAUTHORIZED);
    };
    let Ok(payload) = serde_json::from_slice(&plain) else { return refuse(StatusCode::BAD_REQUEST) };
    let urgency = header("urgency");
    shared.pushed.lock().expect("not poisoned").push(Pushed { subscription: id, payload, urgency, vapid_key });
    StatusCode::CREATED
}
