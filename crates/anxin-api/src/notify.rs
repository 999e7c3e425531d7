//! `POST /api/v1/notify/callback`: the SMS and voice gateway's delivery receipts and the
//! contacts' replies ("1" = seen), signed like the webhook that sent them. The signature
//! check and the outbox are anxind's (through [`Receipts`]); this takes the request apart,
//! tells the engine, and counts every outcome on `anxin_notify_callbacks_total{result}`.
//! Its own router, merged into the main one by anxind, so that the main router's state and
//! its routes stay as they are.

use crate::commands::{Caller, Command, CommandSender, Request};
use anxin_core::{Delivery, ElderId, FamilyAnswer, IncidentId};
pub use anxin_proto::rest::ReceiptStatus;
use anxin_proto::rest::{ErrorBody, NotifyCallback};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures_util::future::BoxFuture;
use prometheus::{IntCounterVec, Opts};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// The path the gateway calls back on.
pub const CALLBACK_PATH: &str = "/api/v1/notify/callback";

/// Largest callback body taken: a receipt and a short reply.
const MAX_CALLBACK_BYTES: usize = 8 * 1024;

/// How long a callback waits for the engine to take what it reported.
const ENGINE_WAIT: Duration = Duration::from_secs(5);

/// A notification found by its key: whose it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub incident: IncidentId,
    pub elder: ElderId,
    pub contact: String,
}

/// The outbox could not be read or written now (the implementation logs why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptsUnavailable;

/// anxind's side of a callback.
pub trait Receipts: Send + Sync {
    /// Whether the signature headers (`X-Anxin-Timestamp`, `X-Anxin-Signature`) match the
    /// body under the callback secret, within the replay window.
    fn verify(&self, timestamp: Option<&str>, signature: Option<&str>, body: &[u8]) -> bool;

    /// Records the receipt on notification `key`; `None` when there is no such key.
    fn record<'a>(
        &'a self,
        key: &'a str,
        status: ReceiptStatus,
    ) -> BoxFuture<'a, Result<Option<Receipt>, ReceiptsUnavailable>>;
}

#[derive(Clone)]
struct CallbackState {
    receipts: Arc<dyn Receipts>,
    commands: CommandSender,
    results: IntCounterVec,
}

/// The callback's router, to merge into anxind's; its counter goes into `metrics`.
pub fn callback_router(receipts: Arc<dyn Receipts>, commands: CommandSender, metrics: &prometheus::Registry) -> Router {
    let results = IntCounterVec::new(
        Opts::new(
            "anxin_notify_callbacks_total",
            "Gateway callbacks (receipts and replies), by result: ok, bad_signature, unknown_key, malformed, unavailable",
        ),
        &["result"],
    )
    .expect("valid metric");
    for result in ["ok", "bad_signature", "unknown_key", "malformed", "unavailable"] {
        results.with_label_values(&[result]);
    }
    // A second registration (a second app in one test process) is harmless.
    let _ = metrics.register(Box::new(results.clone()));
    Router::new()
        .route(CALLBACK_PATH, post(callback))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_CALLBACK_BYTES))
        .with_state(CallbackState { receipts, commands, results })
}

fn refuse(state: &CallbackState, status: StatusCode, result: &str, why: &str) -> Response {
    state.results.with_label_values(&[result]).inc();
    (status, Json(ErrorBody::new(why))).into_response()
}

async fn callback(State(state): State<CallbackState>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if !state.receipts.verify(header("x-anxin-timestamp"), header("x-anxin-signature"), &body) {
        return refuse(&state, StatusCode::UNAUTHORIZED, "bad_signature", "bad or missing signature");
    }
    let Ok(Json(callback)) = Json::<NotifyCallback>::from_bytes(&body) else {
        return refuse(&state, StatusCode::BAD_REQUEST, "malformed", "expected {key, status, reply?}");
    };
    let receipt = match state.receipts.record(&callback.key, callback.status).await {
        Ok(Some(receipt)) => receipt,
        Ok(None) => return refuse(&state, StatusCode::NOT_FOUND, "unknown_key", "no notification has this key"),
        Err(ReceiptsUnavailable) => {
            return refuse(&state, StatusCode::SERVICE_UNAVAILABLE, "unavailable", "try again later")
        }
    };
    let delivery = match callback.status {
        ReceiptStatus::Delivered => Delivery::Delivered,
        ReceiptStatus::Failed => Delivery::Dead,
    };
    let outcome = Request::NotificationOutcome {
        incident: receipt.incident,
        contact: receipt.contact.clone(),
        key: callback.key.clone(),
        delivery,
    };
    tell_engine(&state.commands, Caller::Notifier, outcome).await;
    match callback.reply.as_deref().map(str::trim) {
        Some("1") => {
            let caller = Caller::Family { elder: receipt.elder, contact: receipt.contact };
            let seen = Request::FamilyAnswer { incident: receipt.incident, answer: FamilyAnswer::Seen };
            tell_engine(&state.commands, caller, seen).await;
        }
        Some(other) if !other.is_empty() => {
            tracing::info!(key = %callback.key, "a reply that is not \"1\" was ignored");
        }
        _ => {}
    }
    state.results.with_label_values(&["ok"]).inc();
    StatusCode::NO_CONTENT.into_response()
}

/// Sends a command and waits (a while) until the engine has stored what it caused.
async fn tell_engine(commands: &CommandSender, caller: Caller, request: Request) {
    let (reply, answer) = oneshot::channel();
    if commands.send(Command::new(caller, request, Some(reply))).await.is_err() {
        tracing::warn!("the engine has stopped: a callback's news was not passed on");
        return;
    }
    match tokio::time::timeout(ENGINE_WAIT, answer).await {
        Ok(Ok(Err(refused))) => tracing::debug!(code = %refused.code, "the engine refused a callback's news"),
        Ok(_) => {}
        Err(_) => tracing::warn!("the engine took no callback's news within 5 s"),
    }
}
