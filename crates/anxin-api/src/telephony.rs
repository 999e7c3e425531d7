//! `POST /api/v1/telephony/calls`: the SIP server's news of each call to the hotline
//! (`deploy/sip/README.md` says what it sends), with `Authorization: Bearer <token>`. It
//! hands each event to the engine and answers once what it caused is stored, saying what
//! became of it. Counted on `anxin_telephony_events_total{event,outcome}` and
//! `anxin_telephony_refused_total{reason}`. Its own router, merged into the main one by
//! anxind only when a token is configured (else the path is not found).

use crate::commands::{Caller, Command, CommandSender, Reply, Request};
use anxin_core::CallEvent;
use anxin_proto::rest::{CallTaken, ErrorBody};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use prometheus::{IntCounterVec, Opts};
use sha2::{Digest, Sha256};
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
             dialled) and outcome (opened, joined, recorded, duplicate, unknown_call, forwarded, exhausted, \
             no_incident)",
        ),
        &["event", "outcome"],
    )
    .expect("valid metric");
    let outcomes: [(&str, &[&str]); 5] = [
        ("ringing", &["opened", "joined", "duplicate"]),
        ("answered", &["recorded", "duplicate", "unknown_call"]),
        ("ended", &["recorded", "unknown_call"]),
        ("unanswered", &["forwarded", "exhausted", "unknown_call"]),
        ("dialled", &["recorded", "duplicate", "no_incident"]),
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
                 {{\"event\":\"dialled\",\"call_id\",\"by\",\"to\",\"incident_id\"}}: {e}"
            );
            return refuse(&state, StatusCode::UNPROCESSABLE_ENTITY, "malformed", &why);
        }
    };
    if let Err(why) = check(&event) {
        return refuse(&state, StatusCode::UNPROCESSABLE_ENTITY, "malformed", &why);
    }
    let name = event.name();
    let (reply, answer) = oneshot::channel();
    let command = Command { caller: Caller::Telephony, request: Request::Call(event), reply: Some(reply) };
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
        CallEvent::Dialled { by, to, .. } => vec![("by", by), ("to", to)],
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
        _ => {}
    }
    Ok(())
}
