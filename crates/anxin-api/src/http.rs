//! The HTTP surface: the console page and its assets, the console WebSocket, health,
//! readiness and metrics.

use crate::hub::{Frame, Hub};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::{SinkExt, StreamExt};
use prometheus::{Encoder, IntGauge, TextEncoder};
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

/// Largest frame a console may send; consoles only send small commands.
const MAX_CLIENT_FRAME: usize = 16 * 1024;

/// One named check behind `/readyz`.
pub type ReadinessCheck = Arc<dyn Fn() -> Vec<(&'static str, bool)> + Send + Sync>;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub hub: Arc<Hub>,
    pub metrics: prometheus::Registry,
    pub readiness: ReadinessCheck,
    pub shutdown: CancellationToken,
    consoles: IntGauge,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

impl ApiState {
    pub fn new(
        hub: Arc<Hub>,
        metrics: prometheus::Registry,
        readiness: ReadinessCheck,
        shutdown: CancellationToken,
    ) -> Self {
        let consoles =
            IntGauge::new("anxin_ws_consoles", "Console WebSocket connections open now").expect("valid metric");
        // A second registration (a second app in one test process) is harmless.
        let _ = metrics.register(Box::new(consoles.clone()));
        Self { hub, metrics, readiness, shutdown, consoles }
    }
}

/// The router for everything anxind serves over HTTP.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/console") }))
        .route("/console", get(|| async { Html(include_str!("../assets/console.html")) }))
        .route(
            "/assets/console.js",
            get(|| async { asset("text/javascript; charset=utf-8", include_str!("../assets/console.js")) }),
        )
        .route(
            "/assets/console.css",
            get(|| async { asset("text/css; charset=utf-8", include_str!("../assets/console.css")) }),
        )
        .route("/ws", get(console_socket))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

async fn readyz(State(state): State<ApiState>) -> Response {
    let checks = (state.readiness)();
    let ready = checks.iter().all(|(_, ok)| *ok);
    let body: serde_json::Map<String, serde_json::Value> =
        checks.into_iter().map(|(name, ok)| (name.to_string(), serde_json::Value::Bool(ok))).collect();
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(serde_json::json!({ "ready": ready, "checks": body }))).into_response()
}

async fn metrics(State(state): State<ApiState>) -> Response {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&state.metrics.gather(), &mut buf) {
        Ok(()) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], buf).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "cannot encode metrics");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[derive(Debug, Deserialize)]
struct SocketParams {
    /// The last sequence number the console applied, when it reconnects.
    since: Option<u64>,
    /// The history that sequence number belongs to (from the last snapshot).
    history: Option<String>,
}

async fn console_socket(
    State(state): State<ApiState>,
    Query(params): Query<SocketParams>,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| serve_console(socket, state, params))
}

async fn serve_console(socket: WebSocket, state: ApiState, params: SocketParams) {
    let SocketParams { since, history } = params;
    state.consoles.inc();
    let (mut sink, mut stream) = socket.split();
    let mut sub = state.hub.subscribe(since, history.as_deref(), now_ms());
    let mut last_sent = since.unwrap_or(0);
    let mut pending: Vec<Frame> = std::mem::take(&mut sub.initial);
    'conn: loop {
        for frame in pending.drain(..) {
            // A snapshot resets the console; a delta it already has is skipped.
            if !frame.is_snapshot && frame.seq <= last_sent {
                continue;
            }
            last_sent = frame.seq;
            if sink.send(Message::Text(frame.text.as_ref().into())).await.is_err() {
                break 'conn;
            }
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
            incoming = stream.next() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {} // consoles send nothing this version acts on
            },
            delta = sub.live.recv() => match delta {
                Ok(frame) => pending.push(frame),
                Err(RecvError::Lagged(missed)) => {
                    // Too slow to keep up: catch up from the replay buffer or a snapshot,
                    // never leave a silent gap.
                    tracing::info!(missed, "console lagged; resynchronising");
                    sub = state.hub.subscribe(Some(last_sent), None, now_ms());
                    pending = std::mem::take(&mut sub.initial);
                }
                Err(RecvError::Closed) => break,
            },
        }
    }
    state.consoles.dec();
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Serves `router` on `listener` until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Console deltas are small and urgent: no Nagle delay on the sockets.
    let listener = listener.tap_io(|socket| {
        if let Err(e) = socket.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(listener, router).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}
