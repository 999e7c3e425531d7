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
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let url = format!("http://{}/sms", listener.local_addr().expect("bound"));
        let stop = CancellationToken::new();
        let until = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(async move { until.cancelled().await }).await;
        });
        Self { url, shared, stop }
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
