//! The bodies of the REST endpoints beside the sockets: signing a dispatcher in and out, the
//! errors those endpoints answer with, and readiness. A phone's REST fallback carries the same
//! frames as its socket (`ws::ServerFrame::Hello`, `::Job`, `ws::ClientFrame`, `ws::ResultFrame`).

use anxin_core::{Staff, StaffRole};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A member of staff as consoles show them (never their password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The staff id: also the sign-in name and the actor `dispatcher:ID` in the log.
    pub id: String,
    pub name: String,
    pub role: StaffRole,
}

impl From<&Staff> for User {
    fn from(s: &Staff) -> Self {
        Self { id: s.id.clone(), name: s.name.clone(), role: s.role }
    }
}

/// `POST /api/v1/session`: exactly a user name and a password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for SignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignIn").field("user", &self.user).finish_non_exhaustive()
    }
}

impl SignIn {
    /// Reads a sign-in body; `None` for anything else. Only an object is a sign-in: serde
    /// would otherwise take an array's items as the fields in order (`["wang", "pw"]`).
    pub fn from_json(body: &str) -> Option<Self> {
        if !body.trim_ascii_start().starts_with('{') {
            return None;
        }
        serde_json::from_str(body).ok()
    }
}

/// Who a session belongs to: the answer to signing in and to `GET /api/v1/session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user: User,
}

/// A refusal, for people to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: String,
    /// Whole seconds to wait before trying again (too many wrong passwords only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

impl ErrorBody {
    pub fn new(error: impl Into<String>) -> Self {
        Self { error: error.into(), retry_after_s: None }
    }
}

/// What the SIP server gets back for a call's event it posted (`POST
/// /api/v1/telephony/calls`, whose body is an [`anxin_core::CallEvent`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallTaken {
    /// `opened`, `joined`, `recorded`, `duplicate`, `unknown_call` (an answer or an end for
    /// a call never heard ringing: nothing changed), or for `unanswered`, `forwarded` (to
    /// `forward_to`) or `exhausted` (nowhere is left).
    pub outcome: String,
    /// The incident the call rings on; absent for `unknown_call`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<u64>,
    /// For `forwarded`: the number to put the unanswered call through to next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_to: Option<String>,
}

/// `GET /api/v1/telephony/credentials`: the signed-in dispatcher's SIP account for the
/// console's softphone, good until `expires_at`. The SIP server checks them without asking
/// anxind (Kamailio's `auth_ephemeral`): `username` is `"<expiry, Unix seconds>:<staff id>"`
/// and `password` is base64(HMAC-SHA1(telephony token, username)).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SipCredentials {
    /// The SIP server's WebSocket (`ws://` or `wss://`), `[telephony] ws_url`.
    pub ws_url: String,
    /// The console's SIP identity, `sip:<staff id>@anxin`.
    pub uri: String,
    pub username: String,
    pub password: String,
    /// When the SIP server stops taking them (ms since the Unix epoch): fetch new ones first.
    pub expires_at: anxin_core::Timestamp,
    /// TURN servers for the browser's media (`[telephony] turn_urls`), where it cannot reach
    /// the media relay directly; the same `username` and `password` are good there (coturn
    /// with `use-auth-secret` and the telephony token). Absent when none are configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub turn_urls: Vec<String>,
    /// Media only through the TURN servers (`[telephony] ice_relay_only`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub relay_only: bool,
}

impl std::fmt::Debug for SipCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SipCredentials")
            .field("ws_url", &self.ws_url)
            .field("uri", &self.uri)
            .field("username", &self.username)
            .field("expires_at", &self.expires_at)
            .field("turn_urls", &self.turn_urls)
            .field("relay_only", &self.relay_only)
            .finish_non_exhaustive()
    }
}

/// `GET /readyz`: whether every check passes, and each check by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    pub ready: bool,
    pub checks: BTreeMap<String, bool>,
}

impl Readiness {
    pub fn new(checks: impl IntoIterator<Item = (&'static str, bool)>) -> Self {
        let checks: BTreeMap<String, bool> = checks.into_iter().map(|(name, ok)| (name.to_string(), ok)).collect();
        Self { ready: checks.values().all(|ok| *ok), checks }
    }
}

/// `POST /api/v1/notify/callback`: a gateway's delivery receipt for notification `key`, with
/// what the contact texted back, if anything ("1" means seen). Signed like the webhook
/// (`X-Anxin-Timestamp`, `X-Anxin-Signature`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyCallback {
    /// The webhook's idempotency key.
    pub key: String,
    pub status: ReceiptStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
}

/// What the gateway says became of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// On the phone.
    Delivered,
    /// It could not be delivered (a number out of service, a call not answered).
    Failed,
}

/// A refusal from `/api/v1/services`: a stable `code` pages translate, the same in English,
/// and the values its words name (`self_paid_fen`, `distance_m`...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceError {
    pub code: String,
    pub error: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
}

/// `GET /api/v1/services/orders/{id}`: an order as it is now, open or over, with every step
/// of its life (who did what, when) and the names a page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderHistory {
    pub order: anxin_core::ServiceOrder,
    pub events: Vec<anxin_core::OrderEvent>,
    pub elder_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_name: Option<String>,
    /// The names of the workers who took a step, by id.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub worker_names: std::collections::BTreeMap<String, String>,
}

/// The answer to placing a service order: its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacedOrder {
    pub id: anxin_core::OrderId,
}
