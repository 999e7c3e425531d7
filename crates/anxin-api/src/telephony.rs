//! `POST /api/v1/telephony/calls`: the SIP server's news of each call to the hotline
//! (`deploy/sip/README.md` says what it sends), with `Authorization: Bearer <token>`. It
//! hands each event to the engine and answers once what it caused is stored, saying what
//! became of it. Counted on `anxin_telephony_events_total{event,outcome}` and
//! `anxin_telephony_refused_total{reason}`. Its own router, merged into the main one by
//! anxind only when a token is configured (else the path is not found).
//!
//! `GET /api/v1/telephony/credentials`: a signed-in dispatcher's SIP account for the
//! console's softphone, signed with the same token so that the SIP server checks it without
//! asking anxind ([`credentials_router`]).

use crate::commands::{Caller, Command, CommandSender, Reply, Request};
use anxin_core::CallEvent;
use anxin_proto::rest::{CallTaken, ErrorBody, SipCredentials};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use prometheus::{IntCounterVec, Opts};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// The path the SIP server posts to.
pub const CALLS_PATH: &str = "/api/v1/telephony/calls";

/// Largest body taken: one event is a few hundred bytes.
const MAX_BODY_BYTES: usize = 4 * 1024;

/// Longest call id taken (SIP Call-IDs are seldom over 100 characters).
pub const MAX_CALL_ID_LEN: usize = 256;

/// Longest number or SIP user taken.
pub const MAX_NUMBER_LEN: usize = 64;

/// How long a post waits for the engine to store what it caused.
const ENGINE_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone)]
struct TelephonyState {
    /// SHA-256 of the token: compared digest to digest, so the comparison's time says
    /// nothing about the token.
    token_sha256: [u8; 32],
    commands: CommandSender,
    events: IntCounterVec,
    refused: IntCounterVec,
}

/// The endpoint's router, taking posts that carry `token`; its counters go into `metrics`.
pub fn calls_router(token: &str, commands: CommandSender, metrics: &prometheus::Registry) -> Router {
    let events = IntCounterVec::new(
        Opts::new(
            "anxin_telephony_events_total",
            "Call events from the SIP server taken, by event (ringing, answered, ended, unanswered, \
             dialled, transferred) and outcome (opened, joined, recorded, duplicate, unknown_call, forwarded, exhausted, \
             no_incident)",
        ),
        &["event", "outcome"],
    )
    .expect("valid metric");
    let outcomes: [(&str, &[&str]); 6] = [
        ("ringing", &["opened", "joined", "duplicate"]),
        ("answered", &["recorded", "duplicate", "unknown_call"]),
        ("ended", &["recorded", "unknown_call"]),
        ("unanswered", &["forwarded", "exhausted", "unknown_call"]),
        ("dialled", &["recorded", "duplicate", "no_incident"]),
        ("transferred", &["recorded", "duplicate", "unknown_call"]),
    ];
    for (event, outcomes) in outcomes {
        for outcome in outcomes {
            events.with_label_values(&[event, outcome]);
        }
    }
    let refused = IntCounterVec::new(
        Opts::new(
            "anxin_telephony_refused_total",
            "Posts from the SIP server refused, by reason: unauthorized, malformed, unavailable",
        ),
        &["reason"],
    )
    .expect("valid metric");
    for reason in ["unauthorized", "malformed", "unavailable"] {
        refused.with_label_values(&[reason]);
    }
    // A second registration (a second app in one test process) is harmless.
    let _ = metrics.register(Box::new(events.clone()));
    let _ = metrics.register(Box::new(refused.clone()));
    let state = TelephonyState { token_sha256: Sha256::digest(token.as_bytes()).into(), commands, events, refused };
    Router::new()
        .route(CALLS_PATH, post(take))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn refuse(state: &TelephonyState, status: StatusCode, reason: &str, why: &str) -> Response {
    state.refused.with_label_values(&[reason]).inc();
    (status, Json(ErrorBody::new(why))).into_response()
}

async fn take(State(state): State<TelephonyState>, headers: HeaderMap, body: Bytes) -> Response {
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let authorized =
        bearer.is_some_and(|t| <[u8; 32]>::from(Sha256::digest(t.trim().as_bytes())) == state.token_sha256);
    if !authorized {
        let mut response = refuse(&state, StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong bearer token");
        response.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, "Bearer".parse().expect("a header"));
        return response;
    }
    let event = match serde_json::from_slice::<CallEvent>(&body) {
        Ok(event) => event,
        Err(e) => {
            let why = format!(
                "expected {{\"event\":\"ringing\",\"call_id\",\"from\",\"to\"}}, {{\"event\":\"answered\",\"call_id\",\
                 \"by\"}}, {{\"event\":\"ended\",\"call_id\",\"reason\"}}, {{\"event\":\"unanswered\",\"call_id\"}} or \
                 {{\"event\":\"dialled\",\"call_id\",\"by\",\"to\",\"incident_id\"}} or {{\"event\":\"transferred\",\
                 \"call_id\",\"by\",\"to\"}}: {e}"
            );
            return refuse(&state, StatusCode::UNPROCESSABLE_ENTITY, "malformed", &why);
        }
    };
    if let Err(why) = check(&event) {
        return refuse(&state, StatusCode::UNPROCESSABLE_ENTITY, "malformed", &why);
    }
    let name = event.name();
    let (reply, answer) = oneshot::channel();
    let command = Command::new(Caller::Telephony, Request::Call(event), Some(reply));
    if state.commands.send(command).await.is_err() {
        return refuse(&state, StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the engine has stopped");
    }
    match tokio::time::timeout(ENGINE_WAIT, answer).await {
        Ok(Ok(Ok(Reply::Call(outcome)))) => {
            state.events.with_label_values(&[name, outcome.as_str()]).inc();
            let taken = CallTaken {
                outcome: outcome.as_str().to_string(),
                incident_id: outcome.incident().map(|i| i.0),
                // Digits the SIP server can dial (`0871-68000001` is `087168000001`).
                forward_to: outcome
                    .forward_to()
                    .map(|n| anxin_core::telephony::number_key(n).unwrap_or_else(|| n.to_string())),
            };
            (StatusCode::OK, Json(taken)).into_response()
        }
        Ok(Ok(Ok(_))) | Ok(Ok(Err(_))) | Ok(Err(_)) => {
            refuse(&state, StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the engine could not take the call")
        }
        Err(_) => refuse(&state, StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the engine took no news within 5 s"),
    }
}

/// The path a console fetches its SIP credentials from.
pub const CREDENTIALS_PATH: &str = "/api/v1/telephony/credentials";

/// How long a console's SIP credentials are good for. A console fetches new ones before they
/// run out; a session lasts 14 idle hours, so a night shift needs one renewal at most.
pub const CREDENTIALS_TTL: Duration = Duration::from_secs(12 * 60 * 60);

/// The SIP domain of the consoles' identities, `sip:<staff id>@anxin`: the same as
/// `SIP_DOMAIN` in `deploy/sip/kamailio.cfg`, whose digest realm it also is.
pub const SIP_DOMAIN: &str = "anxin";

#[derive(Clone)]
struct CredentialsState {
    api: crate::ApiState,
    /// The telephony token: the key the SIP server checks the passwords with.
    key: Arc<[u8]>,
    softphone: Arc<Softphone>,
}

/// Where the consoles' softphones connect: the SIP server's WebSocket, and TURN servers for
/// the media where a browser cannot reach the media relay directly.
#[derive(Debug, Clone, Default)]
pub struct Softphone {
    pub ws_url: String,
    pub turn_urls: Vec<String>,
    /// The browser sends media only through the TURN servers.
    pub relay_only: bool,
}

/// `GET /api/v1/telephony/credentials` for the console's softphone: SIP credentials for the
/// dispatcher or supervisor signed in (the session cookie), signed with `token`, for the SIP
/// server and TURN servers of `softphone`. anxind merges it only when both are configured.
pub fn credentials_router(api: crate::ApiState, token: &str, softphone: Softphone) -> Router {
    let state = CredentialsState { api, key: Arc::from(token.as_bytes()), softphone: Arc::new(softphone) };
    Router::new().route(CREDENTIALS_PATH, get(credentials)).with_state(state)
}

async fn credentials(State(state): State<CredentialsState>, headers: HeaderMap) -> Response {
    let Some(user) = crate::http::signed_in(&state.api, &headers).await else {
        return (StatusCode::UNAUTHORIZED, Json(ErrorBody::new("not signed in"))).into_response();
    };
    if user.role == anxin_core::StaffRole::Admin {
        let why = "only dispatchers and supervisors answer calls";
        return (StatusCode::FORBIDDEN, Json(ErrorBody::new(why))).into_response();
    }
    if !is_sip_user(&user.id) {
        // The staff id becomes the SIP user, and the answering console's SIP user becomes the
        // incident's claimant: it must come back from the SIP server exactly as it went in.
        let why = format!("staff id {:?} cannot be a SIP user name (letters, digits, - . _ ~ only)", user.id);
        return (StatusCode::CONFLICT, Json(ErrorBody::new(why))).into_response();
    }
    // The SIP server checks the expiry against its own clock: real time, not the engine's.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let expires = now + CREDENTIALS_TTL;
    let mut body = sign_credentials(&state.key, &user.id, expires.as_secs(), &state.softphone.ws_url);
    // coturn's time-limited credentials (use-auth-secret) are the same scheme, under the same key.
    body.turn_urls.clone_from(&state.softphone.turn_urls);
    body.relay_only = state.softphone.relay_only;
    ([(axum::http::header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

/// Whether `id` may stand as a SIP user as it is: RFC 3261's unreserved characters without
/// the marks that some stacks escape.
fn is_sip_user(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The credentials for `staff` that expire at `expires_s` (Unix seconds), as Kamailio's
/// `auth_ephemeral` checks them (`username_format` 1, SHA-1): the username
/// `"<expires_s>:<staff>"` and the password base64(HMAC-SHA1(key, username)).
pub fn sign_credentials(key: &[u8], staff: &str, expires_s: u64, ws_url: &str) -> SipCredentials {
    let username = format!("{expires_s}:{staff}");
    let mut mac = Hmac::<Sha1>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(username.as_bytes());
    let password = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    SipCredentials {
        ws_url: ws_url.to_string(),
        uri: format!("sip:{staff}@{SIP_DOMAIN}"),
        username,
        password,
        expires_at: anxin_core::Timestamp(i64::try_from(expires_s).unwrap_or(i64::MAX / 1000) * 1000),
        turn_urls: Vec::new(),
        relay_only: false,
    }
}

/// What a well-formed event holds: a call id, and numbers and names of sane length.
fn check(event: &CallEvent) -> Result<(), String> {
    let call_id = event.call_id();
    if call_id.trim().is_empty() || call_id.len() > MAX_CALL_ID_LEN {
        return Err(format!("call_id must be 1 to {MAX_CALL_ID_LEN} bytes"));
    }
    let fields: Vec<(&str, &str)> = match event {
        CallEvent::Ringing { from, to, .. } => vec![("from", from), ("to", to)],
        CallEvent::Answered { by, .. } => vec![("by", by)],
        CallEvent::Ended { .. } | CallEvent::Unanswered { .. } => vec![],
        CallEvent::Dialled { by, to, .. } | CallEvent::Transferred { by, to, .. } => vec![("by", by), ("to", to)],
    };
    for (name, value) in fields {
        if value.len() > MAX_NUMBER_LEN {
            return Err(format!("{name} must be at most {MAX_NUMBER_LEN} bytes"));
        }
    }
    match event {
        CallEvent::Answered { by, .. } if by.trim().is_empty() => return Err("by must name who answered".into()),
        CallEvent::Dialled { by, .. } if by.trim().is_empty() => return Err("by must name who dialled".into()),
        CallEvent::Dialled { to, .. } if to.trim().is_empty() => return Err("to must be the number dialled".into()),
        CallEvent::Transferred { by, .. } if by.trim().is_empty() => {
            return Err("by must name who transferred the call".into())
        }
        CallEvent::Transferred { to, .. } if to.trim().is_empty() => {
            return Err("to must be the number the call was transferred to".into())
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_what_auth_ephemeral_checks() {
        // The password as `openssl dgst -sha1 -hmac <key> -binary | base64` gives it.
        let c = sign_credentials(b"telephony-token-for-tests", "wang", 1_767_225_600, "ws://127.0.0.1:5066");
        assert_eq!(c.username, "1767225600:wang");
        assert_eq!(c.password, "MHW2qsJq7PY3gXVZfyc9kVHBDBk=");
        assert_eq!(c.uri, "sip:wang@anxin");
        assert_eq!(c.expires_at, anxin_core::Timestamp(1_767_225_600_000));
        assert!(!format!("{c:?}").contains(&c.password), "the password never prints");
    }

    #[test]
    fn only_plain_staff_ids_become_sip_users() {
        for ok in ["wang", "dispatcher2", "li.na", "zhao_1", "a-b~c"] {
            assert!(is_sip_user(ok), "{ok}");
        }
        for bad in ["", "wang@x", "a:b", "王芳", "a b", "a;b", "a%40"] {
            assert!(!is_sip_user(bad), "{bad}");
        }
    }
}
