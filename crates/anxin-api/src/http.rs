//! The HTTP surface: the console and responder pages and their assets, the WebSocket for
//! consoles and responders' phones (with a REST fallback for phones), health, readiness and
//! metrics.

use crate::auth::{session_token, Sessions, SignInLimiter, User, SESSION_COOKIE};
use crate::commands::{Answer, Caller, ClientFrame, Command, CommandSender, FrameError, Refused, Reply, Request};
use crate::hub::{Cursor, Frame, Hub};
use crate::responders::ResponderHub;
use anxin_core::{ElderId, Incident, IncidentEvent, IncidentId, ResponderId, Timestamp};
use anxin_proto::rest::{ErrorBody, Readiness, Session, SignIn};
use anxin_proto::ws::{ConsoleSettings, ElderIncident, ResultFrame, ServerFrame, Welcome};
use axum::extract::ws::CloseFrame;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::routing::post;
use axum::{Json, Router};
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
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

/// The server's clock, for the `server_time` consoles and phones correct their own by.
pub type WallClock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// Where consoles' `timeline` questions are answered: an incident's audit trail, as stored,
/// oldest first (empty when nothing is logged for it).
pub trait Timeline: Send + Sync {
    fn incident_events(&self, incident: IncidentId) -> BoxFuture<'_, Result<Vec<IncidentEvent>, TimelineUnavailable>>;

    /// Consoles' `history` questions: an elder's incidents pressed at or after `since`, open
    /// or not, the latest first, at most `limit` (none, where nothing is stored).
    fn elder_incidents(
        &self,
        elder: ElderId,
        since: Timestamp,
        limit: u32,
    ) -> BoxFuture<'_, Result<Vec<Incident>, TimelineUnavailable>> {
        let _ = (elder, since, limit);
        Box::pin(std::future::ready(Ok(Vec::new())))
    }
}

/// How far back a console's `history` question looks.
pub const HISTORY_DAYS: i64 = 30;

/// Most incidents a `history` answer carries (the latest).
pub const HISTORY_LIMIT: u32 = 200;

/// The audit trail cannot be read now (the implementation logs why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineUnavailable;

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
    /// Incidents' audit trails for consoles (read from the store).
    pub timeline: Arc<dyn Timeline>,
    /// The console's settings, sent in the `welcome` frame (language, targets, tiles).
    pub console: ConsoleSettings,
    /// The engine's clock (a test's manual one included).
    pub clock: WallClock,
    /// Families' sign-in, feeds and push subscriptions (none until [`ApiState::with_family`]).
    pub family: crate::family::FamilySide,
    /// The ledger's reads for the administration API (none until [`ApiState::with_ledger`]).
    pub ledger: Option<Arc<dyn crate::admin::LedgerSide>>,
    /// Imports running and done.
    pub imports: Arc<crate::import::Jobs>,
    /// The supervisors' day so far (none until [`ApiState::with_wallboard`]).
    pub wallboard: Option<Arc<crate::wallboard::Wallboard>>,
    /// Supervisors' reports from the store (none until [`ApiState::with_reports`]).
    pub reports: Option<crate::reports::Reports>,
    /// Service statements from the store (none until [`ApiState::with_services`]).
    pub service_side: Option<Arc<dyn crate::services::ServiceSide>>,
    /// The service lane's requests, counted.
    pub(crate) services: crate::services::ServiceMetrics,
    consoles: IntGauge,
    sign_ins: IntCounterVec,
    sign_in_limiter: Arc<SignInLimiter>,
    phones: IntGauge,
    frames_rejected: IntCounterVec,
    /// `/readyz`'s checks as gauges, set as each scrape is answered.
    ready: prometheus::IntGaugeVec,
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
        timeline: Arc<dyn Timeline>,
        console: ConsoleSettings,
        clock: WallClock,
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
            "bad_elder_id",
            "bad_token",
            "no_session",
            "not_family",
            "bad_family_link",
        ] {
            frames_rejected.with_label_values(&[reason]);
        }
        let sign_ins =
            IntCounterVec::new(Opts::new("anxin_console_sign_ins_total", "Console sign-ins, by result"), &["result"])
                .expect("valid metric");
        for result in ["ok", "refused", "malformed", "limited", "not_kept"] {
            sign_ins.with_label_values(&[result]);
        }
        let ready = ready_gauge();
        let _ = metrics.register(Box::new(ready.clone()));
        let _ = metrics.register(Box::new(sign_ins.clone()));
        // A second registration (a second app in one test process) is harmless.
        let _ = metrics.register(Box::new(consoles.clone()));
        let _ = metrics.register(Box::new(phones.clone()));
        let _ = metrics.register(Box::new(frames_rejected.clone()));
        let services = crate::services::ServiceMetrics::new(&metrics);
        Self {
            hub,
            responders,
            commands,
            metrics,
            readiness,
            shutdown,
            sessions,
            timeline,
            console,
            clock,
            family: crate::family::FamilySide::default(),
            ledger: None,
            imports: Arc::default(),
            wallboard: None,
            reports: None,
            service_side: None,
            services,
            consoles,
            sign_ins,
            sign_in_limiter: Arc::default(),
            phones,
            frames_rejected,
            ready,
        }
    }
}

impl ApiState {
    /// The same, serving families: their tokens and subscriptions kept by `families`, their
    /// feeds from `hub`, push offered with `push_key` (none: not configured).
    pub fn with_family(mut self, family: crate::family::FamilySide) -> Self {
        self.family = family;
        self
    }

    /// The same, sending supervisors' consoles the day so far from `wallboard`.
    pub fn with_wallboard(mut self, wallboard: Arc<crate::wallboard::Wallboard>) -> Self {
        self.wallboard = Some(wallboard);
        self
    }

    /// The same, serving service statements from `side`.
    pub fn with_services(mut self, side: Arc<dyn crate::services::ServiceSide>) -> Self {
        self.service_side = Some(side);
        self
    }

    /// The same, serving supervisors' reports from `side`.
    pub fn with_reports(mut self, side: Arc<dyn crate::reports::ReportSide>) -> Self {
        let metrics = crate::reports::ReportMetrics::new(&self.metrics);
        self.reports = Some(crate::reports::Reports { side, metrics });
        self
    }

    /// The same, serving the administration API over `ledger`.
    pub fn with_ledger(mut self, ledger: Arc<dyn crate::admin::LedgerSide>) -> Self {
        self.ledger = Some(ledger);
        self
    }
}

/// The router for everything anxind serves over HTTP.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::temporary("/console") }))
        .route("/console", get(|| async { Html(include_str!("../assets/console.html")) }))
        .route("/responder", get(|| async { Html(include_str!("../assets/responder.html")) }))
        .route("/ledger", get(|| async { Html(include_str!("../assets/ledger.html")) }))
        .route("/console/wall", get(|| async { Html(include_str!("../assets/wall.html")) }))
        .route("/console/report", get(|| async { Html(include_str!("../assets/report.html")) }))
        .route("/console/statement", get(|| async { Html(include_str!("../assets/statement.html")) }))
        .route("/console/services", get(|| async { Html(include_str!("../assets/services.html")) }))
        .route("/api/v1/reports", get(crate::reports::get_report))
        .route("/family", get(crate::family::page))
        .route("/family-sw.js", get(crate::family::service_worker))
        .route(
            "/api/v1/family/session",
            get(crate::family::session_get).post(crate::family::session_create).delete(crate::family::session_delete),
        )
        .route("/api/v1/family/push-key", get(crate::family::push_key))
        .route(
            "/api/v1/family/push-subscription",
            post(crate::family::push_subscribe).delete(crate::family::push_unsubscribe),
        )
        .route("/assets/{*name}", get(crate::assets::serve))
        .route("/ws", get(socket))
        .route("/api/v1/session", get(session_get).post(session_create).delete(session_delete))
        .route("/api/v1/responder/me", get(rest_me))
        .route("/api/v1/responder/job", get(rest_job))
        .route("/api/v1/responder/actions", post(rest_action))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_CLIENT_FRAME))
        .merge(crate::admin::routes())
        .merge(crate::services::routes())
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// `anxin_ready{check}`: what `/readyz` answers, for alerts (a running engine's and a
/// standby's).
fn ready_gauge() -> prometheus::IntGaugeVec {
    prometheus::IntGaugeVec::new(
        Opts::new("anxin_ready", "1 while the check passes, 0 while it fails: the checks /readyz answers with"),
        &["check"],
    )
    .expect("valid metric")
}

/// What an engine standing by serves while another holds the district's lease (`[cluster]`):
/// `/healthz`, `/readyz` answering 503 with its one check, `lease`, false, so that a proxy or
/// an orchestrator sends people to the engine that runs, and `/metrics` saying the same
/// (`anxin_ready{check="lease"} 0`), so that a Prometheus scraping every node sees it up.
pub fn standby_router() -> Router {
    let metrics = {
        let registry = prometheus::Registry::new();
        let ready = ready_gauge();
        ready.with_label_values(&["lease"]).set(0);
        registry.register(Box::new(ready)).expect("register");
        let mut buf = Vec::new();
        TextEncoder::new().encode(&registry.gather(), &mut buf).expect("metrics encode");
        buf
    };
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|| async {
                (StatusCode::SERVICE_UNAVAILABLE, Json(Readiness::new([("lease", false)]))).into_response()
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let body = metrics.clone();
                async move { ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], body).into_response() }
            }),
        )
}

async fn readyz(State(state): State<ApiState>) -> Response {
    let readiness = Readiness::new((state.readiness)());
    let status = if readiness.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(readiness)).into_response()
}

async fn metrics(State(state): State<ApiState>) -> Response {
    // Read now, so that an alert on `anxin_ready == 0` sees what `/readyz` would say.
    for (check, ok) in (state.readiness)() {
        state.ready.with_label_values(&[check]).set(i64::from(ok));
    }
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
    /// Where the console stands when it reconnects: the last sequence number it applied of
    /// each zone, separated by commas ([`crate::hub::Cursor`]).
    since: Option<String>,
    /// The history that sequence number belongs to (from the last snapshot).
    history: Option<String>,
    /// A responder's sign-in token: the socket is then that responder's phone.
    token: Option<String>,
    /// Present on a family page's socket, which signs in by its cookie.
    family: Option<String>,
}

async fn socket(
    State(state): State<ApiState>,
    Query(params): Query<SocketParams>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let ws = ws.max_message_size(MAX_CLIENT_FRAME).max_frame_size(MAX_CLIENT_FRAME);
    let SocketParams { since, history, token, family } = params;
    // A `since` that does not read is counted and taken as none: the console is sent a
    // snapshot, which puts it right.
    let since = since.and_then(|text| match crate::hub::Cursor::parse(&text) {
        Ok(cursor) => Some(cursor),
        Err(e) => {
            state.frames_rejected.with_label_values(&["bad_since"]).inc();
            tracing::info!(error = %e, "a console's since does not read; sending it a snapshot");
            None
        }
    });
    if family.is_some() {
        let from = crate::family::peer_ip(&extensions);
        let checked = match crate::family::family_cookie(&headers) {
            Some(token) => crate::family::check_token(&state, from, token).await.map_err(|r| r.status()),
            None => Err(StatusCode::UNAUTHORIZED),
        };
        return match checked {
            Ok(signed) => ws.on_upgrade(move |socket| serve_socket(socket, state, Peer::Family(signed))),
            Err(status) => {
                state.frames_rejected.with_label_values(&["bad_token"]).inc();
                // The page asks `GET /api/v1/family/session` why (unknown, revoked, too many).
                let reason = if status == StatusCode::TOO_MANY_REQUESTS { "too_many_tries" } else { "signed_out" };
                ws.on_upgrade(move |mut socket| async move {
                    let close = CloseFrame { code: CLOSE_BAD_TOKEN, reason: reason.into() };
                    let _ = socket.send(Message::Close(Some(close))).await;
                })
            }
        };
    }
    let peer = match token {
        Some(token) => state.responders.authenticate(&token).map(Peer::Phone).ok_or(("bad_token", "unknown token")),
        None => match signed_in(&state, &headers).await {
            // An administrator keeps the ledger and is not shown incidents.
            Some(user) if user.role == anxin_core::StaffRole::Admin => {
                Err(("not_a_dispatcher", "admins see no incidents"))
            }
            Some(user) => Ok(Peer::Console { user, since, history }),
            None => Err(("no_session", "sign in first")),
        },
    };
    match peer {
        Ok(peer) => ws.on_upgrade(move |socket| serve_socket(socket, state, peer)),
        Err((label, reason)) => {
            state.frames_rejected.with_label_values(&[label]).inc();
            let code = if label == "not_a_dispatcher" { CLOSE_FORBIDDEN } else { CLOSE_BAD_TOKEN };
            ws.on_upgrade(move |mut socket| async move {
                let close = CloseFrame { code, reason: reason.into() };
                let _ = socket.send(Message::Close(Some(close))).await;
            })
        }
    }
}

/// Close code for a phone whose token is not known, or a console that has not signed in
/// (4000–4999 are the application's).
pub const CLOSE_BAD_TOKEN: u16 = 4401;

/// Close code for a signed-in member of staff whose role sees no incidents (an administrator).
pub const CLOSE_FORBIDDEN: u16 = 4403;

/// The signed-in user behind a request's session cookie.
pub(crate) async fn signed_in(state: &ApiState, headers: &HeaderMap) -> Option<User> {
    for token in headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).filter_map(session_token) {
        if let Some(user) = state.sessions.user(token).await {
            return Some(user);
        }
    }
    None
}

/// A sign-in body's user name and password; `None` for any other body. Public only for the
/// fuzzer (`fuzz/fuzz_targets/sign_in.rs`).
#[doc(hidden)]
pub fn read_sign_in(body: &str) -> Option<(String, String)> {
    SignIn::from_json(body).map(|SignIn { user, password }| (user, password))
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
        let error = ErrorBody::new("send {\"user\": ..., \"password\": ...}");
        return (StatusCode::BAD_REQUEST, Json(error)).into_response();
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
    let checked = tokio::task::spawn_blocking(move || sessions.check(&user, &password)).await.ok().flatten();
    let signed = match checked {
        Some(user) => match state.sessions.open(&user).await {
            Ok(token) => Some((token, user)),
            Err(e) => {
                state.sign_ins.with_label_values(&["not_kept"]).inc();
                tracing::error!(user = %user.id, error = %e, "console sign-in: the session could not be kept");
                let error = ErrorBody::new("signed in, but the session could not be kept: try again");
                return (StatusCode::SERVICE_UNAVAILABLE, Json(error)).into_response();
            }
        },
        None => None,
    };
    match signed {
        Some((token, user)) => {
            state.sign_in_limiter.succeeded(from, &name);
            state.sign_ins.with_label_values(&["ok"]).inc();
            tracing::info!(user = %user.id, "console sign-in");
            let cookie = format!("{SESSION_COOKIE}={token}; {}", cookie_attributes(&headers));
            ([(header::SET_COOKIE, cookie)], Json(Session { user })).into_response()
        }
        None => {
            state.sign_ins.with_label_values(&["refused"]).inc();
            if let Some(wait) = state.sign_in_limiter.failed(from, &name, std::time::Instant::now()) {
                tracing::warn!(user = %name, %from, wait_s = wait.as_secs(), "repeated wrong passwords; sign-in slowed");
            }
            let error = ErrorBody::new("wrong user name or password");
            (StatusCode::UNAUTHORIZED, Json(error)).into_response()
        }
    }
}

/// The session cookie's attributes. `Secure` when the browser reached us over HTTPS, which
/// a TLS-terminating proxy in front says with `X-Forwarded-Proto: https` or `Forwarded:
/// proto=https`: the browser then never sends the cookie over plain HTTP. Without such a
/// proxy (the demo on `http://localhost`, a console on the LAN) a `Secure` cookie would not
/// be kept at all, and nobody could sign in. A forged header can only make a cookie stricter.
pub(crate) fn cookie_attributes(headers: &HeaderMap) -> &'static str {
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
    let body = ErrorBody {
        error: format!("too many wrong passwords: try again in {seconds} s"),
        retry_after_s: Some(seconds),
    };
    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, seconds.to_string())], Json(body)).into_response()
}

/// Who is signed in on this browser.
async fn session_get(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers).await {
        Some(user) => Json(Session { user }).into_response(),
        None => (StatusCode::UNAUTHORIZED, Json(ErrorBody::new("not signed in"))).into_response(),
    }
}

/// Signs out: the session ends, the dispatcher's claims end, and the cookie is cleared. Open
/// consoles keep their socket until it closes; the next one needs a new sign-in.
async fn session_delete(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    for value in headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()) {
        if let Some(token) = session_token(value) {
            if let Some(user) = state.sessions.user(token).await {
                // Their claims end with the session: an incident that needs a person must
                // not wait behind the name of somebody gone home.
                let caller = Caller::Dispatcher { id: user.id, supervisor: false };
                let _ = submit(&state, caller, Request::SignedOut).await.await;
            }
            state.sessions.sign_out(token).await;
        }
    }
    let cookie = format!("{SESSION_COOKIE}=; {}; Max-Age=0", cookie_attributes(&headers));
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}

/// Who is on the other end of a socket.
enum Peer {
    /// A signed-in console, with the last sequence number it applied and its history.
    Console { user: User, since: Option<Cursor>, history: Option<String> },
    /// A responder's phone.
    Phone(ResponderId),
    /// An elder's contact on the family page.
    Family(crate::family::SignedFamily),
}

/// A socket's live feed: the console hub's numbered deltas, or one responder's frames.
enum Feed {
    Phone(ResponderId, broadcast::Receiver<Utf8Bytes>),
    /// A member of staff's console, and the staff whose sessions the ledger ended (a retired
    /// member of staff, a changed role or password): theirs closes the socket.
    Console {
        live: broadcast::Receiver<Frame>,
        staff: String,
        ended: broadcast::Receiver<String>,
        signed_out: bool,
        /// The wallboard's figures, for a supervisor's console.
        wall: Option<WallFeed>,
    },
    /// One elder's family frames, and revocations (theirs closes the socket).
    Family {
        who: crate::family::SignedFamily,
        live: broadcast::Receiver<Utf8Bytes>,
        revocations: broadcast::Receiver<(ElderId, String)>,
        revoked: bool,
    },
}

impl Feed {
    /// Waits for the feed's next frames and adds them to `pending`; `false` when it ended.
    async fn recv(&mut self, state: &ApiState, last_sent: &Cursor, pending: &mut Vec<Frame>) -> bool {
        match self {
            Feed::Console { live, staff, ended, signed_out, wall } => tokio::select! {
                changed = wall_changed(wall) => match changed {
                    Some(text) => {
                        pending.push(Frame::unsequenced(text));
                        true
                    }
                    // The wallboard is gone (shutting down): the console feed goes on.
                    None => {
                        *wall = None;
                        true
                    }
                },
                first = live.recv() => match gather(first, live, pending) {
                    Fed::Frames => true,
                    Fed::Lagged(missed) => {
                        // Too slow to keep up: catch up from the replay buffer or a snapshot,
                        // never leave a silent gap.
                        tracing::info!(missed, "console lagged; resynchronising");
                        let sub = state.hub.subscribe(Some(last_sent), None, (state.clock)());
                        *live = sub.live;
                        pending.extend(sub.initial);
                        true
                    }
                    Fed::Closed => false,
                },
                gone = ended.recv() => match gone {
                    Ok(id) if id == *staff => {
                        *signed_out = true;
                        false
                    }
                    Ok(_) => true,
                    // A sign-out may have been missed: close, and the console's reconnection
                    // checks its session afresh.
                    Err(_) => false,
                },
            },
            Feed::Phone(responder, live) => match live.recv().await {
                Ok(text) => {
                    pending.push(Frame::unsequenced(text));
                    true
                }
                Err(RecvError::Lagged(_)) => {
                    // Missed updates: the latest frames say everything a phone needs.
                    let (initial, rx) = state.responders.subscribe(responder, (state.clock)());
                    *live = rx;
                    pending.extend(initial.into_iter().map(Frame::unsequenced));
                    true
                }
                Err(RecvError::Closed) => false,
            },
            Feed::Family { who, live, revocations, revoked } => tokio::select! {
                frame = live.recv() => match frame {
                    Ok(text) => {
                        pending.push(Frame::unsequenced(text));
                        true
                    }
                    Err(RecvError::Lagged(_)) => {
                        // Missed changes: the elder's open incidents as they are now.
                        pending.push(family_welcome(state, who, live));
                        true
                    }
                    Err(RecvError::Closed) => false,
                },
                gone = revocations.recv() => match gone {
                    Ok((elder, contact)) if elder == who.elder && contact == who.member.contact_id => {
                        *revoked = true;
                        false
                    }
                    Ok(_) => true,
                    // A revocation may have been missed: close, and the page's reconnection
                    // checks its token afresh.
                    Err(RecvError::Lagged(_) | RecvError::Closed) => false,
                },
            },
        }
    }
}

/// The wallboard's figures as a supervisor's console is sent them.
type WallFeed = tokio::sync::watch::Receiver<(Option<anxin_core::DayFigures>, Utf8Bytes)>;

/// The wallboard's next frame; `None` when it has gone. A console with no wallboard waits
/// for ever here.
async fn wall_changed(wall: &mut Option<WallFeed>) -> Option<Utf8Bytes> {
    match wall {
        Some(w) => match w.changed().await {
            Ok(()) => Some(w.borrow_and_update().1.clone()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

/// A family page's first frame (and after it fell behind): who, and the elder's open
/// incidents; `live` becomes the feed from then on.
fn family_welcome(
    state: &ApiState,
    who: &crate::family::SignedFamily,
    live: &mut broadcast::Receiver<Utf8Bytes>,
) -> Frame {
    let (incidents, rx) = state.family.hub.subscribe(&who.elder);
    *live = rx;
    let welcome = ServerFrame::FamilyWelcome {
        member: who.member.clone(),
        server_time: (state.clock)(),
        incidents,
        map: state.console.map.clone(),
    };
    Frame::unsequenced(welcome.to_json().into())
}

/// Serves one socket, a console's or a phone's: the live feed out, frames in. Each frame in
/// is handed to the engine and its answer awaited off the read path, so a slow command holds
/// up neither the feed nor the frames after it.
async fn serve_socket(socket: WebSocket, state: ApiState, peer: Peer) {
    let gauge = match peer {
        Peer::Console { .. } => &state.consoles,
        Peer::Phone(_) | Peer::Family(_) => &state.phones,
    };
    gauge.inc();
    let mut staff = None;
    let (caller, mut feed, mut pending, mut last_sent) = match peer {
        Peer::Console { user, since, history } => {
            if state.hub.staff_connected(&user.id) {
                tell_presence(&state, &user.id, true).await;
            }
            staff = Some(user.id.clone());
            let user_id = user.id.clone();
            let supervisor = user.role == anxin_core::StaffRole::Supervisor;
            let caller = Caller::Dispatcher { id: user.id.clone(), supervisor };
            let welcome = ServerFrame::Welcome(Welcome {
                user,
                staff: state.sessions.staff(),
                server_time: (state.clock)(),
                console: state.console.clone(),
            });
            let sub = state.hub.subscribe(since.as_ref(), history.as_deref(), (state.clock)());
            let mut pending = vec![Frame::unsequenced(welcome.to_json().into())];
            pending.extend(sub.initial);
            // Supervisors alone are sent the day's figures: each dispatcher's day is theirs to see.
            let mut wall = state.wallboard.as_ref().filter(|_| supervisor).map(|w| w.subscribe());
            if let Some(text) = wall.as_mut().map(|w| w.borrow_and_update().1.clone()).filter(|t| !t.is_empty()) {
                pending.push(Frame::unsequenced(text));
            }
            let feed = Feed::Console {
                live: sub.live,
                staff: user_id,
                ended: state.sessions.ended(),
                signed_out: false,
                wall,
            };
            (caller, feed, pending, since.unwrap_or_default())
        }
        Peer::Phone(responder) => {
            let (initial, live) = state.responders.subscribe(&responder, (state.clock)());
            let pending = initial.into_iter().map(Frame::unsequenced).collect();
            (Caller::Responder(responder.clone()), Feed::Phone(responder, live), pending, Cursor::default())
        }
        Peer::Family(who) => {
            let (_, mut live) = broadcast::channel(1);
            let welcome = family_welcome(&state, &who, &mut live);
            let caller = Caller::Family { elder: who.elder.clone(), contact: who.member.contact_id.clone() };
            let revocations = state.family.hub.revocations();
            (caller, Feed::Family { who, live, revocations, revoked: false }, vec![welcome], Cursor::default())
        }
    };
    let family = matches!(feed, Feed::Family { .. });
    let (mut sink, mut stream) = socket.split();
    let mut answers = FuturesUnordered::new();
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    heartbeat.reset(); // the first one a heartbeat from now
    let mut last_heard = tokio::time::Instant::now();
    'conn: loop {
        // Everything pending goes out in one write: in a surge a console is sent thousands of
        // frames a second, and a flush (a system call) per frame costs more than the frames.
        let mut fed = false;
        for frame in pending.drain(..) {
            // A snapshot resets the console; a delta it already has is skipped; the roster,
            // responders' changes, answers and phones' frames are outside the numbering.
            if !frame.unsequenced {
                if frame.is_snapshot {
                    last_sent = frame.cursor.as_deref().cloned().unwrap_or_default();
                } else if last_sent.covers(frame.seq) {
                    continue;
                } else {
                    last_sent.advance(frame.seq);
                }
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
            // With too many answers outstanding, reading stops until some come back.
            incoming = stream.next(), if answers.len() < MAX_ANSWERS_AWAITED => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Text(text))) => {
                    last_heard = tokio::time::Instant::now();
                    let due = read_frame(&state, &caller, text.as_str()).await;
                    answers.push(due);
                }
                Some(Ok(_)) => last_heard = tokio::time::Instant::now(), // a pong, most likely
            },
            _ = heartbeat.tick() => {
                // A peer that has answered nothing (not even the pings browsers answer by
                // themselves) for this long is gone without closing: a stalled network.
                if last_heard.elapsed() > PEER_SILENT_LIMIT {
                    tracing::info!("socket silent too long; closing it");
                    break;
                }
                // A family page is not told how busy the centre is.
                let cursor = if family { Cursor::default() } else { state.hub.cursor() };
                let (seq, seqs) = (cursor.highest(), cursor.seqs());
                let beat = ServerFrame::Heartbeat { seq, seqs, server_time: (state.clock)() };
                pending.push(Frame::unsequenced(beat.to_json().into()));
                if sink.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            Some(answer) = answers.next(), if !answers.is_empty() => {
                if let Some(answer) = answer {
                    pending.push(Frame::unsequenced(answer.into_frame().to_json().into()));
                }
            }
            alive = feed.recv(&state, &last_sent, &mut pending) => if !alive {
                break;
            },
        }
    }
    if let Feed::Console { signed_out: true, .. } = feed {
        let close = CloseFrame { code: CLOSE_BAD_TOKEN, reason: "signed_out".into() };
        let _ = sink.send(Message::Close(Some(close))).await;
    }
    if let Feed::Family { revoked: true, .. } = feed {
        let close = CloseFrame { code: CLOSE_BAD_TOKEN, reason: "token_revoked".into() };
        let _ = sink.send(Message::Close(Some(close))).await;
    }
    gauge.dec();
    if let Some(staff) = staff {
        if state.hub.staff_disconnected(&staff) {
            tell_presence(&state, &staff, false).await;
        }
    }
}

/// Tells the engine a dispatcher's first console connected or their last one closed (their
/// claims end if they stay away).
async fn tell_presence(state: &ApiState, staff: &str, online: bool) {
    let caller = Caller::Dispatcher { id: staff.to_string(), supervisor: false };
    let command = Command::new(caller, Request::Presence { online }, None);
    let _ = state.commands.send(command).await;
}

/// How often every socket is sent a `heartbeat` frame (and a ping).
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(5);

/// A socket whose peer has sent nothing, not even a pong, for this long is closed.
const PEER_SILENT_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Most answers one socket may be waiting for at once; past it, its frames wait unread.
const MAX_ANSWERS_AWAITED: usize = 64;

/// How long a frame's answer is awaited from the engine.
const ANSWER_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// The `result` due for one frame, when it comes (`None`: none is due).
type AnswerDue = BoxFuture<'static, Option<ResultFrame>>;

/// Reads one frame and hands what it asks to the engine (or the timeline). Waits only while
/// the engine's queue is full; the answer comes from the future returned.
async fn read_frame(state: &ApiState, caller: &Caller, text: &str) -> AnswerDue {
    let frame = match ClientFrame::from_json(text) {
        Ok(f) => f,
        Err(e) => {
            state.frames_rejected.with_label_values(&[FrameError::Malformed.as_label()]).inc();
            let error = Refused::new(FrameError::Malformed.as_label(), format!("{}: {e}", FrameError::Malformed));
            return Box::pin(std::future::ready(Some(ResultFrame::new(None, Err(error)))));
        }
    };
    let request_id = frame.request_id().map(str::to_owned);
    let silent = matches!(frame, ClientFrame::Location { .. }) && request_id.is_none();
    let answer: BoxFuture<'static, Answer> = match frame.into_request(caller) {
        Ok(Request::Timeline { incident }) => Box::pin(timeline(state.timeline.clone(), incident)),
        Ok(Request::History { elder }) => {
            let since = Timestamp((state.clock)().millis() - HISTORY_DAYS * 24 * 3600 * 1000);
            Box::pin(history(state.timeline.clone(), elder, since))
        }
        Ok(Request::FamilyHistory) => {
            let since = Timestamp((state.clock)().millis() - HISTORY_DAYS * 24 * 3600 * 1000);
            let Caller::Family { elder, .. } = caller else { unreachable!("only a family frame asks this") };
            Box::pin(family_history(state.timeline.clone(), elder.clone(), since))
        }
        Ok(Request::FamilyLink { elder, contact, action }) => {
            let Caller::Dispatcher { id, .. } = caller else { unreachable!("only a dispatcher's frame asks this") };
            Box::pin(family_link(state.clone(), id.clone(), elder, contact, action))
        }
        Ok(Request::FamilyLinks { elder }) => {
            let families = state.family.families.clone();
            Box::pin(
                async move { families.links(elder).await.map(Reply::FamilyLinks).map_err(|_| store_unavailable()) },
            )
        }
        Ok(request) => submit(state, caller.clone(), request).await,
        Err(e) => {
            state.frames_rejected.with_label_values(&[e.as_label()]).inc();
            Box::pin(std::future::ready(Err(Refused::new(e.as_label(), e.to_string()))))
        }
    };
    Box::pin(async move {
        let answer = answer.await;
        (!silent || answer.is_err()).then(|| ResultFrame::new(request_id, answer))
    })
}

/// An incident's audit trail, from the store (everything shown has been stored).
async fn timeline(timeline: Arc<dyn Timeline>, incident: IncidentId) -> Answer {
    match timeline.incident_events(incident).await {
        Ok(events) if events.is_empty() => {
            Err(Refused::new("no_such_incident", format!("incident {incident} does not exist"))
                .with("incident", incident))
        }
        Ok(events) => Ok(Reply::Events(events)),
        Err(TimelineUnavailable) => Err(Refused::new("store_unavailable", "the store cannot be read right now")),
    }
}

/// An elder's incidents of the last [`HISTORY_DAYS`], from the store (an elder with none
/// gets an empty list).
async fn history(timeline: Arc<dyn Timeline>, elder: ElderId, since: Timestamp) -> Answer {
    match timeline.elder_incidents(elder, since, HISTORY_LIMIT).await {
        Ok(incidents) => Ok(Reply::Incidents(incidents.iter().map(ElderIncident::from).collect())),
        Err(TimelineUnavailable) => Err(Refused::new("store_unavailable", "the store cannot be read right now")),
    }
}

/// The family's elder's incidents of the last [`HISTORY_DAYS`], as the family sees them.
async fn family_history(timeline: Arc<dyn Timeline>, elder: ElderId, since: Timestamp) -> Answer {
    match timeline.elder_incidents(elder, since, HISTORY_LIMIT).await {
        Ok(incidents) => Ok(Reply::FamilyHistory(incidents.iter().map(Into::into).collect())),
        Err(TimelineUnavailable) => Err(store_unavailable()),
    }
}

fn store_unavailable() -> Refused {
    Refused::new("store_unavailable", "the store cannot be read right now")
}

/// A dispatcher issues or revokes a contact's family link; either way the contact's open
/// pages signed in by an earlier link are closed.
async fn family_link(
    state: ApiState,
    staff: String,
    elder: ElderId,
    contact: String,
    action: anxin_proto::family::LinkAction,
) -> Answer {
    use anxin_proto::family::{IssuedLink, LinkAction};
    let families = state.family.families.clone();
    let now = (state.clock)();
    let done = match action {
        LinkAction::Issue => {
            let token = crate::family::new_token();
            let hash = crate::commands::token_sha256(&token);
            families.issue(elder.clone(), contact.clone(), hash, staff.clone(), now).await.map(|()| {
                Reply::IssuedLink(IssuedLink {
                    contact_id: contact.clone(),
                    path: format!("/family#t={token}"),
                    issued_at: now,
                })
            })
        }
        LinkAction::Revoke => families.revoke(elder.clone(), contact.clone(), now).await.map(|()| Reply::Done),
    };
    match done {
        Ok(reply) => {
            tracing::info!(%elder, %contact, staff, ?action, "family link");
            state.family.hub.revoked(&elder, &contact);
            Ok(reply)
        }
        Err(crate::family::LinkDenied::NoSuchContact) => {
            state.frames_rejected.with_label_values(&["bad_family_link"]).inc();
            Err(Refused::new("no_such_contact", format!("elder {elder} has no contact {contact}"))
                .with("elder", &elder)
                .with("contact", &contact))
        }
        Err(crate::family::LinkDenied::Unavailable) => Err(store_unavailable()),
    }
}

/// Hands a request to the engine; the answer comes once what it caused is stored, or an
/// error after [`ANSWER_WAIT`].
pub(crate) async fn submit(state: &ApiState, caller: Caller, request: Request) -> BoxFuture<'static, Answer> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let command = Command::new(caller, request, Some(tx));
    if state.commands.send(command).await.is_err() {
        return Box::pin(std::future::ready(Err(Refused::new("stopping", "the engine is stopping"))));
    }
    // The wait starts now, not when the answer is first looked for.
    let reply = tokio::time::timeout(ANSWER_WAIT, rx);
    Box::pin(async move {
        match reply.await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Refused::new("stopping", "the engine stopped before answering")),
            // Not applied if it was still queued; if it was being stored, it may yet take
            // effect, and the phone's or console's next frames will show it.
            Err(_) => {
                Err(Refused::new("no_answer_in_time", "no answer in time: check the current state before trying again"))
            }
        }
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Bearer ")
}

fn unauthorized(state: &ApiState) -> Response {
    state.frames_rejected.with_label_values(&["bad_token"]).inc();
    (StatusCode::UNAUTHORIZED, Json(ErrorBody::new("unknown token"))).into_response()
}

/// REST fallback for phones: who the token belongs to and whether they are on duty, as the
/// `hello` frame.
async fn rest_me(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let Some(responder) = bearer(&headers).and_then(|t| state.responders.authenticate(t)) else {
        return unauthorized(&state);
    };
    match state.responders.hello(&responder) {
        Some(responder) => Json(ServerFrame::Hello { responder }).into_response(),
        // Signed in by a token the registry knows, but the engine has not described them yet.
        None => (StatusCode::SERVICE_UNAVAILABLE, Json(ErrorBody::new("starting"))).into_response(),
    }
}

/// REST fallback for phones: the current job, as the `job` frame.
async fn rest_job(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    let Some(responder) = bearer(&headers).and_then(|t| state.responders.authenticate(t)) else {
        return unauthorized(&state);
    };
    Json(ServerFrame::Job { job: state.responders.job(&responder, (state.clock)()), ended: None }).into_response()
}

/// REST fallback for phones: the same frames as the WebSocket takes, one per request.
async fn rest_action(State(state): State<ApiState>, headers: HeaderMap, body: String) -> Response {
    let Some(responder) = bearer(&headers).and_then(|t| state.responders.authenticate(t)) else {
        return unauthorized(&state);
    };
    let answer = read_frame(&state, &Caller::Responder(responder), &body)
        .await
        .await
        .unwrap_or_else(|| ResultFrame::new(None, Ok(Reply::Done)));
    let status = if answer.ok { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    (status, Json(answer.into_frame())).into_response()
}

/// Most console frames written with one flush.
const MAX_FRAMES_PER_WRITE: usize = 256;

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
        Frame { seq, text: format!("{{\"seq\":{seq}}}").into(), is_snapshot: false, cursor: None, unsequenced: false }
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
