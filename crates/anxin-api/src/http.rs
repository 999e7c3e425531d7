//! The HTTP surface: the console and responder pages and their assets, the WebSocket for
//! consoles and responders' phones (with a REST fallback for phones), health, readiness and
//! metrics.

use crate::auth::{session_token, Sessions, SignInLimiter, User, SESSION_COOKIE};
use crate::commands::{Answer, Caller, ClientFrame, Command, CommandSender, FrameError, Reply, Request};
use crate::hub::{Frame, Hub};
use crate::responders::ResponderHub;
use anxin_store::Store;
use axum::extract::ws::CloseFrame;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::routing::post;
use axum::{Json, Router};
use futures_util::{SinkExt, StreamExt};
use prometheus::{Encoder, IntGauge, TextEncoder};
use prometheus::{IntCounterVec, Opts};
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio_util::sync::CancellationToken;

/// Largest frame a console may send; consoles only send small commands.
const MAX_CLIENT_FRAME: usize = 16 * 1024;

/// One named check behind `/readyz`.
pub type ReadinessCheck = Arc<dyn Fn() -> Vec<(&'static str, bool)> + Send + Sync>;

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub hub: Arc<Hub>,
    pub responders: Arc<ResponderHub>,
    pub commands: CommandSender,
    pub metrics: prometheus::Registry,
    pub readiness: ReadinessCheck,
    pub shutdown: CancellationToken,
    /// Who may sign in to the console, and who has.
    pub sessions: Arc<Sessions>,
    /// Read-only uses: incidents' audit trails for consoles.
    pub store: Arc<dyn Store>,
    /// The console's settings, sent in the `welcome` frame (language, targets, tiles).
    pub console: serde_json::Value,
    consoles: IntGauge,
    sign_ins: IntCounterVec,
    sign_in_limiter: Arc<SignInLimiter>,
    phones: IntGauge,
    frames_rejected: IntCounterVec,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

impl ApiState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        hub: Arc<Hub>,
        responders: Arc<ResponderHub>,
        commands: CommandSender,
        metrics: prometheus::Registry,
        readiness: ReadinessCheck,
        shutdown: CancellationToken,
        sessions: Arc<Sessions>,
        store: Arc<dyn Store>,
        console: serde_json::Value,
    ) -> Self {
        let consoles =
            IntGauge::new("anxin_ws_consoles", "Console WebSocket connections open now").expect("valid metric");
        let phones = IntGauge::new("anxin_ws_responders", "Responder phone WebSocket connections open now")
            .expect("valid metric");
        let frames_rejected = IntCounterVec::new(
            Opts::new("anxin_ws_frames_rejected_total", "Frames from consoles and phones refused, by reason"),
            &["reason"],
        )
        .expect("valid metric");
        for reason in [
            "malformed",
            "not_a_responder",
            "not_a_dispatcher",
            "bad_location",
            "missing_responder",
            "bad_token",
            "no_session",
        ] {
            frames_rejected.with_label_values(&[reason]);
        }
        let sign_ins =
            IntCounterVec::new(Opts::new("anxin_console_sign_ins_total", "Console sign-ins, by result"), &["result"])
                .expect("valid metric");
        for result in ["ok", "refused", "malformed", "limited"] {
            sign_ins.with_label_values(&[result]);
        }
        let _ = metrics.register(Box::new(sign_ins.clone()));
        // A second registration (a second app in one test process) is harmless.
        let _ = metrics.register(Box::new(consoles.clone()));
        let _ = metrics.register(Box::new(phones.clone()));
        let _ = metrics.register(Box::new(frames_rejected.clone()));
        Self {
            hub,
            responders,
            commands,
            metrics,
            readiness,
            shutdown,
            sessions,
            store,
            console,
            consoles,
            sign_ins,
            sign_in_limiter: Arc::default(),
            phones,
            frames_rejected,
        }
    }
}

/// The router for everything anxind serves over HTTP.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/console") }))
        .route("/console", get(|| async { Html(include_str!("../assets/console.html")) }))
        .route("/responder", get(|| async { Html(include_str!("../assets/responder.html")) }))
        .route("/assets/{*name}", get(crate::assets::serve))
        .route("/ws", get(socket))
        .route("/api/v1/session", get(session_get).post(session_create).delete(session_delete))
        .route("/api/v1/responder/me", get(rest_me))
        .route("/api/v1/responder/job", get(rest_job))
        .route("/api/v1/responder/actions", post(rest_action))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_CLIENT_FRAME))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
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
    /// A responder's sign-in token: the socket is then that responder's phone.
    token: Option<String>,
}

async fn socket(
    State(state): State<ApiState>,
    Query(params): Query<SocketParams>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let ws = ws.max_message_size(MAX_CLIENT_FRAME).max_frame_size(MAX_CLIENT_FRAME);
    if let Some(token) = params.token.clone() {
        return ws.on_upgrade(move |socket| serve_phone(socket, state, token));
    }
    match signed_in(&state, &headers) {
        Some(user) => ws.on_upgrade(move |socket| serve_console(socket, state, params, user)),
        None => {
            state.frames_rejected.with_label_values(&["no_session"]).inc();
            ws.on_upgrade(|mut socket| async move {
                let close = CloseFrame { code: CLOSE_BAD_TOKEN, reason: "sign in first".into() };
                let _ = socket.send(Message::Close(Some(close))).await;
            })
        }
    }
}

/// Close code for a phone whose token is not known, or a console that has not signed in
/// (4000–4999 are the application's).
pub const CLOSE_BAD_TOKEN: u16 = 4401;

/// The signed-in user behind a request's session cookie.
fn signed_in(state: &ApiState, headers: &HeaderMap) -> Option<User> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| session_token(v).and_then(|t| state.sessions.user(t)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    user: String,
    password: String,
}

/// A sign-in body's user name and password; `None` for any other body. Public only for the
/// fuzzer (`fuzz/fuzz_targets/sign_in.rs`).
#[doc(hidden)]
pub fn read_sign_in(body: &str) -> Option<(String, String)> {
    // serde would take an array's items as the fields in order (`["wang", "pw"]`).
    if !body.trim_ascii_start().starts_with('{') {
        return None;
    }
    serde_json::from_str::<SignIn>(body).ok().map(|SignIn { user, password }| (user, password))
}

/// Signs a dispatcher or supervisor in: a session cookie for the console. Wrong passwords
/// from one address for one user name are slowed down ([`SignInLimiter`]): past the free
/// tries the answer is 429 with `Retry-After`, whatever the password.
async fn session_create(
    State(state): State<ApiState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some((user, password)) = read_sign_in(&body) else {
        state.sign_ins.with_label_values(&["malformed"]).inc();
        let error = "send {\"user\": ..., \"password\": ...}";
        return (StatusCode::BAD_REQUEST, Json(serde_json::json!({ "error": error }))).into_response();
    };
    // Behind a reverse proxy every request comes from the proxy's address: the limit then
    // applies per user name only, which still slows guessing.
    let from = extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    if let Err(wait) = state.sign_in_limiter.check(from, &user, std::time::Instant::now()) {
        state.sign_ins.with_label_values(&["limited"]).inc();
        return too_many_tries(wait);
    }
    let sessions = state.sessions.clone();
    let name = user.clone();
    // Password checks are slow on purpose: keep them off the threads that serve sockets.
    let signed = tokio::task::spawn_blocking(move || sessions.sign_in(&user, &password)).await.ok().flatten();
    match signed {
        Some((token, user)) => {
            state.sign_in_limiter.succeeded(from, &name);
            state.sign_ins.with_label_values(&["ok"]).inc();
            tracing::info!(user = %user.id, "console sign-in");
            let cookie = format!("{SESSION_COOKIE}={token}; {}", cookie_attributes(&headers));
            ([(header::SET_COOKIE, cookie)], Json(serde_json::json!({ "user": user }))).into_response()
        }
        None => {
            state.sign_ins.with_label_values(&["refused"]).inc();
            if let Some(wait) = state.sign_in_limiter.failed(from, &name, std::time::Instant::now()) {
                tracing::warn!(user = %name, %from, wait_s = wait.as_secs(), "repeated wrong passwords; sign-in slowed");
            }
            let error = "wrong user name or password";
            (StatusCode::UNAUTHORIZED, Json(serde_json::json!({ "error": error }))).into_response()
        }
    }
}

/// The session cookie's attributes. `Secure` when the browser reached us over HTTPS, which
/// a TLS-terminating proxy in front says with `X-Forwarded-Proto: https` or `Forwarded:
/// proto=https`: the browser then never sends the cookie over plain HTTP. Without such a
/// proxy (the demo on `http://localhost`, a console on the LAN) a `Secure` cookie would not
/// be kept at all, and nobody could sign in. A forged header can only make a cookie stricter.
fn cookie_attributes(headers: &HeaderMap) -> &'static str {
    // Each header may list several hops; the first is the browser's.
    let first_hop = |name: &str| headers.get(name)?.to_str().ok()?.split(',').next().map(str::trim);
    let x_forwarded = first_hop("x-forwarded-proto").is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let forwarded = first_hop("forwarded").is_some_and(|hop| {
        hop.split(';').filter_map(|pair| pair.split_once('=')).any(|(k, v)| {
            k.trim().eq_ignore_ascii_case("proto") && v.trim().trim_matches('"').eq_ignore_ascii_case("https")
        })
    });
    if x_forwarded || forwarded {
        "Path=/; HttpOnly; SameSite=Strict; Secure"
    } else {
        "Path=/; HttpOnly; SameSite=Strict"
    }
}

/// 429 with how long to wait, in `Retry-After` and in the body.
fn too_many_tries(wait: std::time::Duration) -> Response {
    // Rounded up: a client that waits this long is let in.
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let body = serde_json::json!({
        "error": format!("too many wrong passwords: try again in {seconds} s"),
        "retry_after_s": seconds,
    });
    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, seconds.to_string())], Json(body)).into_response()
}

/// Who is signed in on this browser.
async fn session_get(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers) {
        Some(user) => Json(serde_json::json!({ "user": user })).into_response(),
        None => (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": "not signed in"}))).into_response(),
    }
}

/// Signs out: the session ends and the cookie is cleared. Open consoles keep their socket
/// until it closes; the next one needs a new sign-in.
async fn session_delete(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    for value in headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()) {
        if let Some(token) = session_token(value) {
            state.sessions.sign_out(token);
        }
    }
    let cookie = format!("{SESSION_COOKIE}=; {}; Max-Age=0", cookie_attributes(&headers));
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}

async fn serve_phone(mut socket: WebSocket, state: ApiState, token: String) {
    let Some(responder) = state.responders.authenticate(&token) else {
        state.frames_rejected.with_label_values(&["bad_token"]).inc();
        let close = CloseFrame { code: CLOSE_BAD_TOKEN, reason: "unknown token".into() };
        let _ = socket.send(Message::Close(Some(close))).await;
        return;
    };
    state.phones.inc();
    let caller = Caller::Responder(responder.clone());
    let (mut sink, mut stream) = socket.split();
    let (initial, mut live) = state.responders.subscribe(&responder);
    let mut pending: Vec<Arc<str>> = initial.into_iter().map(restamp).collect();
    'conn: loop {
        for frame in pending.drain(..) {
            if sink.send(Message::Text(frame.as_ref().into())).await.is_err() {
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
                Some(Ok(Message::Text(text))) => {
                    if let Some(answer) = handle_frame(&state, &caller, text.as_str()).await {
                        pending.push(answer.into());
                    }
                }
                Some(Ok(_)) => {}
            },
            frame = live.recv() => match frame {
                Ok(frame) => pending.push(frame),
                Err(RecvError::Lagged(_)) => {
                    // Missed updates: the latest frames say everything a phone needs.
                    let (initial, rx) = state.responders.subscribe(&responder);
                    live = rx;
                    pending = initial.into_iter().map(restamp).collect();
                }
                Err(RecvError::Closed) => break,
            },
        }
    }
    state.phones.dec();
}

/// A stored `job` frame may be old by the time a phone connects: give it the server's time
/// now, so the phone's countdown to the offer's deadline is right.
fn restamp(frame: Arc<str>) -> Arc<str> {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&frame) else { return frame };
    match v.get_mut("job").and_then(|j| j.get_mut("server_time")) {
        Some(t) => {
            *t = now_ms().into();
            v.to_string().into()
        }
        None => frame,
    }
}

/// Turns a frame into a command for the engine and waits for its answer. Returns the
/// `result` (or `error`) frame to send back, if one is due.
async fn handle_frame(state: &ApiState, caller: &Caller, text: &str) -> Option<String> {
    let frame = match ClientFrame::from_json(text) {
        Ok(f) => f,
        Err(e) => {
            state.frames_rejected.with_label_values(&[FrameError::Malformed.as_label()]).inc();
            let error = format!("{}: {e}", FrameError::Malformed);
            return Some(
                serde_json::json!({"type": "result", "request_id": null, "ok": false, "error": error}).to_string(),
            );
        }
    };
    let request_id = frame.request_id().map(str::to_owned);
    let silent = matches!(frame, ClientFrame::Location { .. }) && request_id.is_none();
    let result = match frame.into_request(caller) {
        Ok(Request::Timeline { incident }) => timeline(state, incident).await,
        Ok(request) => submit(state, caller.clone(), request).await,
        Err(e) => {
            state.frames_rejected.with_label_values(&[e.as_label()]).inc();
            Err(e.to_string())
        }
    };
    if silent && result.is_ok() {
        return None;
    }
    let mut answer = serde_json::json!({"type": "result", "request_id": request_id, "ok": result.is_ok()});
    match result {
        // A query's data goes beside `ok`.
        Ok(Reply::Done) => {}
        Ok(Reply::Suggestions(suggestions)) => answer["suggestions"] = serde_json::json!(suggestions),
        Ok(Reply::Events(events)) => answer["events"] = serde_json::json!(events),
        Err(e) => answer["error"] = e.into(),
    }
    Some(answer.to_string())
}

/// An incident's audit trail, from the store (everything shown has been stored).
async fn timeline(state: &ApiState, incident: anxin_core::IncidentId) -> Answer {
    match state.store.incident_events(incident).await {
        Ok(events) if events.is_empty() => Err(format!("incident {incident} does not exist")),
        Ok(events) => Ok(Reply::Events(events)),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read an incident's events");
            Err("the store cannot be read right now".into())
        }
    }
}

/// Hands a request to the engine and waits until what it caused is stored.
async fn submit(state: &ApiState, caller: Caller, request: crate::commands::Request) -> Answer {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let command = Command { caller, request, reply: Some(tx) };
    if state.commands.send(command).await.is_err() {
        return Err("the engine is stopping".into());
    }
    match tokio::time::timeout(std::time::Duration::from_secs(15), rx).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err("the engine stopped before answering".into()),
        // Not applied if it was still queued; if it was being stored, it may yet take
        // effect, and the phone's or console's next frames will show it.
        Err(_) => Err("no answer in time: check the current state before trying again".into()),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

fn unauthorized(state: &ApiState) -> Response {
    state.frames_rejected.with_label_values(&["bad_token"]).inc();
    (StatusCode::UNAUTHORIZED, Json(serde_json::json!({"error": "unknown token"}))).into_response()
}

/// REST fallback for phones: who the token belongs to and whether they are on duty, as the
/// `hello` frame.
async fn rest_me(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let Some(responder) = bearer(&headers).and_then(|t| state.responders.authenticate(t)) else {
        return unauthorized(&state);
    };
    match state.responders.hello_frame(&responder) {
        Some(hello) => ([(header::CONTENT_TYPE, "application/json")], hello.to_string()).into_response(),
        // Signed in by a token the registry knows, but the engine has not described them yet.
        None => (StatusCode::SERVICE_UNAVAILABLE, Json(serde_json::json!({"error": "starting"}))).into_response(),
    }
}

/// REST fallback for phones: the current job, as the `job` frame.
async fn rest_job(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let Some(responder) = bearer(&headers).and_then(|t| state.responders.authenticate(t)) else {
        return unauthorized(&state);
    };
    let job = state
        .responders
        .job_frame(&responder)
        .map_or_else(|| r#"{"type":"job","job":null}"#.to_string(), |f| restamp(f).to_string());
    ([(header::CONTENT_TYPE, "application/json")], job).into_response()
}

/// REST fallback for phones: the same frames as the WebSocket takes, one per request.
async fn rest_action(State(state): State<ApiState>, headers: HeaderMap, body: String) -> Response {
    let Some(responder) = bearer(&headers).and_then(|t| state.responders.authenticate(t)) else {
        return unauthorized(&state);
    };
    let answer = handle_frame(&state, &Caller::Responder(responder), &body)
        .await
        .unwrap_or_else(|| serde_json::json!({"type": "result", "request_id": null, "ok": true}).to_string());
    let ok = serde_json::from_str::<serde_json::Value>(&answer).is_ok_and(|v| v["ok"] == true);
    let status = if ok { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    (status, [(header::CONTENT_TYPE, "application/json")], answer).into_response()
}

/// Most console frames written with one flush.
const MAX_FRAMES_PER_WRITE: usize = 256;

async fn serve_console(socket: WebSocket, state: ApiState, params: SocketParams, user: User) {
    let SocketParams { since, history, .. } = params;
    let supervisor = user.role == anxin_core::StaffRole::Supervisor;
    let caller = Caller::Dispatcher { id: user.id.clone(), supervisor };
    state.consoles.inc();
    let (mut sink, mut stream) = socket.split();
    let welcome = serde_json::json!({
        "type": "welcome",
        "user": user,
        "staff": state.sessions.staff(),
        "server_time": now_ms(),
        "console": state.console,
    });
    if sink.send(Message::Text(welcome.to_string().into())).await.is_err() {
        state.consoles.dec();
        return;
    }
    let mut sub = state.hub.subscribe(since, history.as_deref(), now_ms());
    let mut last_sent = since.unwrap_or(0);
    let mut pending: Vec<Frame> = std::mem::take(&mut sub.initial);
    'conn: loop {
        // Everything pending goes out in one write: in a surge a console is sent thousands of
        // frames a second, and a flush (a system call) per frame costs more than the frames.
        let mut fed = false;
        for frame in pending.drain(..) {
            // A snapshot resets the console; a delta it already has is skipped; the roster
            // and responders' changes are outside the numbering and always go.
            if !frame.unsequenced {
                if !frame.is_snapshot && frame.seq <= last_sent {
                    continue;
                }
                last_sent = frame.seq;
            }
            if sink.feed(Message::Text(frame.text)).await.is_err() {
                break 'conn;
            }
            fed = true;
        }
        if fed && sink.flush().await.is_err() {
            break 'conn;
        }
        tokio::select! {
            _ = state.shutdown.cancelled() => {
                let _ = sink.send(Message::Close(None)).await;
                break;
            }
            incoming = stream.next() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Text(text))) => {
                    if let Some(answer) = handle_frame(&state, &caller, text.as_str()).await {
                        if sink.send(Message::Text(answer.into())).await.is_err() {
                            break;
                        }
                    }
                }
                Some(Ok(_)) => {}
            },
            delta = sub.live.recv() => match gather(delta, &mut sub.live, &mut pending) {
                Fed::Frames => {}
                Fed::Lagged(missed) => {
                    // Too slow to keep up: catch up from the replay buffer or a snapshot,
                    // never leave a silent gap.
                    tracing::info!(missed, "console lagged; resynchronising");
                    sub = state.hub.subscribe(Some(last_sent), None, now_ms());
                    pending = std::mem::take(&mut sub.initial);
                }
                Fed::Closed => break,
            },
        }
    }
    state.consoles.dec();
}

/// What a console's live feed gave.
#[derive(Debug, PartialEq)]
enum Fed {
    /// Frames, added to those pending.
    Frames,
    /// The console fell this many frames behind: what is pending is no longer enough.
    Lagged(u64),
    Closed,
}

/// Adds what `first` brought, and whatever else is already waiting, to `pending` (up to
/// [`MAX_FRAMES_PER_WRITE`]), so that it goes out in one write. A lag seen while taking the
/// rest is reported like one seen first: the receiver has already skipped past the frames
/// it lost, so the next `recv` would not say so.
fn gather(first: Result<Frame, RecvError>, live: &mut broadcast::Receiver<Frame>, pending: &mut Vec<Frame>) -> Fed {
    let mut next = first;
    loop {
        match next {
            Ok(frame) => pending.push(frame),
            Err(RecvError::Lagged(missed)) => return Fed::Lagged(missed),
            Err(RecvError::Closed) => return Fed::Closed,
        }
        if pending.len() >= MAX_FRAMES_PER_WRITE {
            return Fed::Frames;
        }
        next = match live.try_recv() {
            Ok(frame) => Ok(frame),
            Err(TryRecvError::Lagged(missed)) => Err(RecvError::Lagged(missed)),
            Err(TryRecvError::Closed) => Err(RecvError::Closed),
            Err(TryRecvError::Empty) => return Fed::Frames,
        };
    }
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
    // The peer's address reaches handlers (the sign-in limit counts per address).
    let app = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_secure_when_a_proxy_says_https() {
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (k, v) in pairs {
                headers.insert(*k, v.parse().unwrap());
            }
            cookie_attributes(&headers).ends_with("; Secure")
        };
        assert!(!with(&[]), "plain HTTP, no proxy: the demo on localhost must still sign in");
        assert!(with(&[("x-forwarded-proto", "https")]));
        assert!(with(&[("x-forwarded-proto", "HTTPS, http")]), "the first hop is the browser's");
        assert!(!with(&[("x-forwarded-proto", "http")]));
        assert!(with(&[("forwarded", "for=192.0.2.60;proto=https;by=203.0.113.43")]));
        assert!(with(&[("forwarded", "proto=\"https\"")]));
        assert!(!with(&[("forwarded", "for=192.0.2.60;proto=http, for=10.0.0.1;proto=https")]));
        let attributes = cookie_attributes(&HeaderMap::new());
        assert!(attributes.contains("HttpOnly") && attributes.contains("SameSite=Strict"), "{attributes}");
    }

    fn frame(seq: u64) -> Frame {
        Frame { seq, text: format!("{{\"seq\":{seq}}}").into(), is_snapshot: false, unsequenced: false }
    }

    #[tokio::test]
    async fn a_console_takes_every_waiting_frame_in_order() {
        let (tx, mut live) = broadcast::channel(16);
        for seq in 1..=3 {
            tx.send(frame(seq)).unwrap();
        }
        let mut pending = Vec::new();
        let first = live.recv().await;
        assert_eq!(gather(first, &mut live, &mut pending), Fed::Frames);
        assert_eq!(pending.iter().map(|f| f.seq).collect::<Vec<_>>(), [1, 2, 3]);
    }

    #[tokio::test]
    async fn a_lag_noticed_while_taking_the_rest_is_reported() {
        let (tx, mut live) = broadcast::channel(4);
        tx.send(frame(1)).unwrap();
        let first = live.recv().await;
        // Meanwhile the feed runs past what the console's receiver holds.
        for seq in 2..=10 {
            tx.send(frame(seq)).unwrap();
        }
        let mut pending = Vec::new();
        assert_eq!(gather(first, &mut live, &mut pending), Fed::Lagged(5));
        // The receiver has skipped the lost frames: only a resynchronisation closes the gap.
        assert_eq!(live.recv().await.unwrap().seq, 7);
    }

    #[tokio::test]
    async fn a_write_holds_at_most_its_share_of_frames() {
        let (tx, mut live) = broadcast::channel(1024);
        for seq in 1..=600 {
            tx.send(frame(seq)).unwrap();
        }
        let mut pending = Vec::new();
        let first = live.recv().await;
        assert_eq!(gather(first, &mut live, &mut pending), Fed::Frames);
        assert_eq!(pending.len(), MAX_FRAMES_PER_WRITE);
        assert_eq!(live.recv().await.unwrap().seq, MAX_FRAMES_PER_WRITE as u64 + 1);
    }
}
