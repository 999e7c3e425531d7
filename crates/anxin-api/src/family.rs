//! The family page's side of the API: signing a contact in with the token from their link,
//! the feed of their one elder's incidents (the family's view, filtered from the engine's
//! deltas), their push subscriptions, and dispatchers' link controls. The store is reached
//! through [`Families`], which `anxind` implements; the API never sees it.
//!
//! Privacy, in one place: a family socket is fed only the frames of its own elder, each
//! built by [`FamilyIncident::from_view`] (no staff, notes, phone numbers, other
//! responders); an answer names an incident and the engine refuses one that is not the
//! contact's elder's as not open; a token is checked against the store (by its SHA-256) on
//! every request and socket, so a revoked one stops at once, and the contact's open sockets
//! are closed when a dispatcher revokes or re-issues.

use crate::auth::SignInLimiter;
use crate::http::{cookie_attributes, ApiState};
use anxin_core::{ElderId, IncidentView, Policy, ResponderId, Timestamp, TravelMode};
use anxin_proto::family::{
    FamilyError, FamilyIncident, FamilyLinkInfo, FamilyMember, FamilySession, FamilySignIn, PushKey,
    PushSubscriptionBody, PushUnsubscribe,
};
use anxin_proto::ws::ServerFrame;
use axum::extract::ws::Utf8Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use futures_util::future::BoxFuture;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// The cookie a family page's sign-in travels in: the link's token itself, HttpOnly, so
/// that the page (a home-screen shortcut to `/family`) stays signed in across restarts; it
/// is checked against the store on every use.
pub const FAMILY_COOKIE: &str = "anxin_family";

/// How long the family cookie is kept: a year, or until the link is revoked.
const FAMILY_COOKIE_MAX_AGE_S: u64 = 365 * 24 * 3600;

/// Longest token looked up (ours are 64 hex digits); anything longer is refused unread.
const MAX_TOKEN_LEN: usize = 128;

/// Who a valid family token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedFamily {
    pub elder: ElderId,
    pub member: FamilyMember,
}

/// Why a family token does not sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyDenied {
    /// No such token (a guess, a typo).
    Unknown,
    /// It was revoked, or replaced by a newer link.
    Revoked,
    /// The store cannot be read now (the implementation logs why).
    Unavailable,
}

/// Why a dispatcher's link request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkDenied {
    /// The elder has no contact with that id.
    NoSuchContact,
    Unavailable,
}

/// Where family tokens and push subscriptions are kept (`anxind` answers from the store and
/// the registry).
pub trait Families: Send + Sync {
    /// The contact a token (by its SHA-256, lowercase hex) signs in.
    fn sign_in(&self, token_sha256: String) -> BoxFuture<'_, Result<SignedFamily, FamilyDenied>>;

    /// Keeps a new token for a contact and revokes their earlier ones.
    fn issue(
        &self,
        elder: ElderId,
        contact: String,
        token_sha256: String,
        issued_by: String,
        at: Timestamp,
    ) -> BoxFuture<'_, Result<(), LinkDenied>>;

    /// Revokes a contact's live tokens.
    fn revoke(&self, elder: ElderId, contact: String, at: Timestamp) -> BoxFuture<'_, Result<(), LinkDenied>>;

    /// The live links of an elder's contacts.
    fn links(&self, elder: ElderId) -> BoxFuture<'_, Result<Vec<FamilyLinkInfo>, LinkDenied>>;

    /// Keeps (or, with `keys` `None`, forgets) a contact's push subscription.
    fn push_subscription(
        &self,
        who: SignedFamily,
        endpoint: String,
        keys: Option<(String, String)>,
        at: Timestamp,
    ) -> BoxFuture<'_, Result<(), LinkDenied>>;
}

/// No families: every token is unknown (an API built without a store, in tests).
#[derive(Debug, Default)]
pub struct NoFamilies;

impl Families for NoFamilies {
    fn sign_in(&self, _: String) -> BoxFuture<'_, Result<SignedFamily, FamilyDenied>> {
        Box::pin(std::future::ready(Err(FamilyDenied::Unknown)))
    }
    fn issue(
        &self,
        _: ElderId,
        _: String,
        _: String,
        _: String,
        _: Timestamp,
    ) -> BoxFuture<'_, Result<(), LinkDenied>> {
        Box::pin(std::future::ready(Err(LinkDenied::Unavailable)))
    }
    fn revoke(&self, _: ElderId, _: String, _: Timestamp) -> BoxFuture<'_, Result<(), LinkDenied>> {
        Box::pin(std::future::ready(Err(LinkDenied::Unavailable)))
    }
    fn links(&self, _: ElderId) -> BoxFuture<'_, Result<Vec<FamilyLinkInfo>, LinkDenied>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }
    fn push_subscription(
        &self,
        _: SignedFamily,
        _: String,
        _: Option<(String, String)>,
        _: Timestamp,
    ) -> BoxFuture<'_, Result<(), LinkDenied>> {
        Box::pin(std::future::ready(Err(LinkDenied::Unavailable)))
    }
}

/// The family side of the API's state.
#[derive(Clone)]
pub struct FamilySide {
    pub families: Arc<dyn Families>,
    pub hub: Arc<FamilyHub>,
    /// The VAPID public key pages subscribe with; `None`: push is not configured.
    pub push_key: Option<String>,
    /// Slows token guessing: per address, as dispatchers' passwords are per address and name.
    pub limiter: Arc<SignInLimiter>,
}

impl std::fmt::Debug for FamilySide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FamilySide").field("push", &self.push_key.is_some()).finish_non_exhaustive()
    }
}

impl FamilySide {
    pub fn new(families: Arc<dyn Families>, hub: Arc<FamilyHub>, push_key: Option<String>) -> Self {
        let push_key = push_key.filter(|k| !k.trim().is_empty());
        Self { families, hub, push_key, limiter: Arc::default() }
    }
}

impl Default for FamilySide {
    fn default() -> Self {
        Self::new(Arc::new(NoFamilies), Arc::new(FamilyHub::new(Policy::default(), HashMap::new(), Vec::new())), None)
    }
}

/// Family pages' feeds: every open incident in the family's view, by elder, and a channel
/// per elder whose family is watching. Fed by `anxind` with the same committed views as the
/// console hub; the lock is held only to convert, copy or send.
#[derive(Debug)]
pub struct FamilyHub {
    policy: Policy,
    /// Responders' travel modes, for ETAs (they do not change while running).
    modes: HashMap<ResponderId, TravelMode>,
    state: Mutex<FamilyState>,
    /// `(elder, contact)` whose links were revoked or replaced: their sockets close.
    revoked: broadcast::Sender<(ElderId, String)>,
}

#[derive(Debug, Default)]
struct FamilyState {
    /// The sequence number of the last view taken of each zone (numbered on its own,
    /// `anxin_core::zone`): an older one is a commit replayed after a store retry, already
    /// shown.
    seqs: BTreeMap<anxin_core::Zone, u64>,
    /// The committed views themselves, shared with the consoles' hub: a family's view is made
    /// only when a family page subscribes or listens (making one for every delta, listened to
    /// or not, and keeping it, was a tenth of what the engine's process spent on showing a
    /// press in `press_load`, and a third of its memory per open incident). Sorted, not
    /// hashed: a hash table grows all at once, and at 57,344 elders with an incident open
    /// (a surge in `press_load`) growing it held the lock every delta waits on for tens of
    /// milliseconds.
    open: BTreeMap<ElderId, BTreeMap<anxin_core::IncidentId, Arc<IncidentView>>>,
    feeds: HashMap<ElderId, broadcast::Sender<Utf8Bytes>>,
}

impl FamilyHub {
    /// A hub holding the engine's open incidents.
    pub fn new(policy: Policy, modes: HashMap<ResponderId, TravelMode>, open: Vec<IncidentView>) -> Self {
        let hub = Self { policy, modes, state: Mutex::default(), revoked: broadcast::channel(64).0 };
        {
            let mut state = hub.state.lock().expect("family hub lock");
            for view in open.into_iter().filter(|v| !v.state.is_terminal()) {
                let seq = state.seqs.entry(anxin_core::Zone::of(view.seq)).or_default();
                *seq = (*seq).max(view.seq);
                state.open.entry(view.elder.id.clone()).or_default().insert(view.id, Arc::new(view));
            }
        }
        hub
    }

    fn view(&self, view: &IncidentView) -> FamilyIncident {
        FamilyIncident::from_view(view, &self.policy, |id| self.modes.get(id).copied())
    }

    /// Takes committed views, in the engine's order, and sends each to its elder's family.
    pub fn publish<'v>(&self, views: impl IntoIterator<Item = &'v Arc<IncidentView>>) {
        let mut state = self.state.lock().expect("family hub lock");
        for view in views {
            let seq = state.seqs.entry(anxin_core::Zone::of(view.seq)).or_default();
            if view.seq <= *seq {
                continue; // already shown (a commit replayed after a store retry)
            }
            *seq = view.seq;
            let elder = &view.elder.id;
            if let Some(tx) = state.feeds.get(elder) {
                if tx.receiver_count() == 0 {
                    state.feeds.remove(elder);
                } else {
                    let incident = self.view(view);
                    let _ = tx.send(ServerFrame::FamilyIncident { incident }.to_json().into());
                }
            }
            if view.state.is_terminal() {
                if let Some(open) = state.open.get_mut(elder) {
                    open.remove(&view.id);
                    if open.is_empty() {
                        state.open.remove(elder);
                    }
                }
            } else {
                state.open.entry(elder.clone()).or_default().insert(view.id, view.clone());
            }
        }
    }

    /// The elder's open incidents now, and their feed from now on.
    pub fn subscribe(&self, elder: &ElderId) -> (Vec<FamilyIncident>, broadcast::Receiver<Utf8Bytes>) {
        let mut state = self.state.lock().expect("family hub lock");
        let open = state.open.get(elder).map(|o| o.values().map(|v| self.view(v)).collect()).unwrap_or_default();
        let rx = state.feeds.entry(elder.clone()).or_insert_with(|| broadcast::channel(64).0).subscribe();
        (open, rx)
    }

    /// Carries `zone`'s open incidents `open`, as its engine has just been built on this
    /// node (what was held of the zone before is replaced).
    pub fn take_zone(&self, zone: anxin_core::Zone, seq: u64, open: &[IncidentView]) {
        let mut state = self.state.lock().expect("family hub lock");
        Self::forget_zone(&mut state, zone);
        state.seqs.insert(zone, seq);
        for view in open.iter().filter(|v| !v.state.is_terminal()) {
            state.open.entry(view.elder.id.clone()).or_default().insert(view.id, Arc::new(view.clone()));
        }
    }

    /// Stops carrying `zone` (another node runs it now).
    pub fn drop_zone(&self, zone: anxin_core::Zone) {
        Self::forget_zone(&mut self.state.lock().expect("family hub lock"), zone);
    }

    fn forget_zone(state: &mut FamilyState, zone: anxin_core::Zone) {
        state.seqs.remove(&zone);
        for open in state.open.values_mut() {
            open.retain(|id, _| anxin_core::Zone::of(id.0) != zone);
        }
        state.open.retain(|_, open| !open.is_empty());
    }

    /// Whether an incident is one of the elder's open ones.
    pub fn is_open_for(&self, elder: &ElderId, id: anxin_core::IncidentId) -> bool {
        self.state.lock().expect("family hub lock").open.get(elder).is_some_and(|o| o.contains_key(&id))
    }

    /// A contact's link was revoked or replaced: their open sockets close.
    pub fn revoked(&self, elder: &ElderId, contact: &str) {
        let _ = self.revoked.send((elder.clone(), contact.to_string()));
    }

    pub fn revocations(&self) -> broadcast::Receiver<(ElderId, String)> {
        self.revoked.subscribe()
    }
}

/// A new link token: 32 random bytes, as 64 lowercase hex digits.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The family token a request's cookie carries.
pub fn family_cookie(headers: &HeaderMap) -> Option<&str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        v.split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find_map(|(k, t)| (k == FAMILY_COOKIE && !t.is_empty()).then_some(t))
    })
}

/// The address a request came from (the limiter counts per address).
pub(crate) fn peer_ip(extensions: &axum::http::Extensions) -> IpAddr {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip())
}

/// The name the limiter files family tokens under: one count per address.
const LIMITER_NAME: &str = "\u{0}family";

/// Checks a token, slowing an address that keeps presenting bad ones.
pub(crate) async fn check_token(state: &ApiState, from: IpAddr, token: &str) -> Result<SignedFamily, Response> {
    let family = &state.family;
    let now = std::time::Instant::now();
    if let Err(wait) = family.limiter.check(from, LIMITER_NAME, now) {
        return Err(too_many_tries(wait));
    }
    let denied = if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        FamilyDenied::Unknown
    } else {
        match family.families.sign_in(crate::commands::token_sha256(token)).await {
            Ok(signed) => {
                family.limiter.succeeded(from, LIMITER_NAME);
                return Ok(signed);
            }
            Err(denied) => denied,
        }
    };
    let (status, body) = match denied {
        FamilyDenied::Unknown => {
            (StatusCode::UNAUTHORIZED, FamilyError::new("token_unknown", "this link is not known"))
        }
        FamilyDenied::Revoked => {
            (StatusCode::UNAUTHORIZED, FamilyError::new("token_revoked", "this link was withdrawn"))
        }
        FamilyDenied::Unavailable => {
            return Err(refuse(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "try again shortly"))
        }
    };
    if let Some(wait) = family.limiter.failed(from, LIMITER_NAME, std::time::Instant::now()) {
        tracing::warn!(%from, wait_s = wait.as_secs(), "repeated unknown family links; slowed");
    }
    Err((status, Json(body)).into_response())
}

fn refuse(status: StatusCode, code: &str, error: &str) -> Response {
    (status, Json(FamilyError::new(code, error))).into_response()
}

fn too_many_tries(wait: std::time::Duration) -> Response {
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let body = FamilyError {
        code: "too_many_tries".into(),
        error: format!("too many unknown links: try again in {seconds} s"),
        retry_after_s: Some(seconds),
    };
    (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, seconds.to_string())], Json(body)).into_response()
}

/// The signed-in family member behind a request's cookie.
pub(crate) async fn signed(
    state: &ApiState,
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
) -> Result<SignedFamily, Response> {
    match family_cookie(headers) {
        Some(token) => check_token(state, peer_ip(extensions), token).await,
        None => Err(refuse(StatusCode::UNAUTHORIZED, "signed_out", "open the link you were sent")),
    }
}

fn session_cookie(token: &str, headers: &HeaderMap) -> String {
    format!("{FAMILY_COOKIE}={token}; {}; Max-Age={FAMILY_COOKIE_MAX_AGE_S}", cookie_attributes(headers))
}

/// `GET /family`: the family page.
pub(crate) async fn page() -> Html<&'static str> {
    Html(include_str!("../assets/family.html"))
}

/// `GET /family-sw.js`: the page's service worker, served from the root so that its scope
/// covers `/family`.
pub(crate) async fn service_worker() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")],
        include_str!("../assets/family-sw.js"),
    )
        .into_response()
}

/// `POST /api/v1/family/session`: the link's token, exchanged for the cookie.
pub(crate) async fn session_create(
    State(state): State<ApiState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: String,
) -> Response {
    let Some(FamilySignIn { token }) = Json::<FamilySignIn>::from_bytes(body.as_bytes()).ok().map(|j| j.0) else {
        return refuse(StatusCode::BAD_REQUEST, "bad_request", "send {\"token\": ...}");
    };
    match check_token(&state, peer_ip(&extensions), token.trim()).await {
        Ok(signed) => {
            tracing::info!(elder = %signed.elder, contact = %signed.member.contact_id, "family sign-in");
            let cookie = session_cookie(token.trim(), &headers);
            ([(header::SET_COOKIE, cookie)], Json(FamilySession { member: signed.member })).into_response()
        }
        Err(refused) => refused,
    }
}

/// `GET /api/v1/family/session`: who is signed in on this browser.
pub(crate) async fn session_get(
    State(state): State<ApiState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
) -> Response {
    match signed(&state, &extensions, &headers).await {
        Ok(signed) => Json(FamilySession { member: signed.member }).into_response(),
        Err(refused) => refused,
    }
}

/// `DELETE /api/v1/family/session`: forgets the cookie on this browser (the link still works).
pub(crate) async fn session_delete(headers: HeaderMap) -> Response {
    let cookie = format!("{FAMILY_COOKIE}=; {}; Max-Age=0", cookie_attributes(&headers));
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}

/// `GET /api/v1/family/push-key`: the VAPID public key; an empty one when push is not
/// configured (an answer, not an error: every page load asks).
pub(crate) async fn push_key(State(state): State<ApiState>) -> Response {
    Json(PushKey { public_key: state.family.push_key.clone().unwrap_or_default() }).into_response()
}

/// Longest endpoint URL or key kept from a browser.
const MAX_PUSH_FIELD: usize = 2048;

/// `POST /api/v1/family/push-subscription`: keeps this browser's subscription for the contact.
pub(crate) async fn push_subscribe(
    State(state): State<ApiState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: String,
) -> Response {
    push_change(&state, &extensions, &headers, || {
        let Ok(Json(sub)) = Json::<PushSubscriptionBody>::from_bytes(body.as_bytes()) else {
            return Err("send a PushSubscription as JSON");
        };
        let fields = [&sub.endpoint, &sub.keys.p256dh, &sub.keys.auth];
        if !sub.endpoint.starts_with("https://") || fields.iter().any(|f| f.is_empty() || f.len() > MAX_PUSH_FIELD) {
            return Err("the endpoint must be https and the keys present");
        }
        Ok((sub.endpoint, Some((sub.keys.p256dh, sub.keys.auth))))
    })
    .await
}

/// `DELETE /api/v1/family/push-subscription`: forgets one of the contact's subscriptions.
pub(crate) async fn push_unsubscribe(
    State(state): State<ApiState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: String,
) -> Response {
    push_change(&state, &extensions, &headers, || match Json::<PushUnsubscribe>::from_bytes(body.as_bytes()) {
        Ok(Json(PushUnsubscribe { endpoint })) => Ok((endpoint, None)),
        Err(_) => Err("send {\"endpoint\": ...}"),
    })
    .await
}

/// Keeps or forgets a subscription of the signed-in contact: the endpoint and keys (none:
/// forget) that `read` takes from the body, or why it could not (a 400).
async fn push_change(
    state: &ApiState,
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    read: impl FnOnce() -> Result<(String, Option<(String, String)>), &'static str>,
) -> Response {
    let who = match signed(state, extensions, headers).await {
        Ok(who) => who,
        Err(refused) => return refused,
    };
    let (endpoint, keys) = match read() {
        Ok(change) => change,
        Err(why) => return refuse(StatusCode::BAD_REQUEST, "bad_request", why),
    };
    match state.family.families.push_subscription(who, endpoint, keys, (state.clock)()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(_) => refuse(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "try again shortly"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_family_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "anxin_session=s; anxin_family=abc; x=1".parse().unwrap());
        assert_eq!(family_cookie(&headers), Some("abc"));
        headers.insert(header::COOKIE, "anxin_family=".parse().unwrap());
        assert_eq!(family_cookie(&headers), None);
    }

    #[test]
    fn a_family_hub_feeds_each_elder_its_own_incidents_and_skips_replays() {
        let view = |id: u64, seq: u64, elder: &str, state: anxin_core::IncidentState| {
            let text = include_str!("../tests/family_view.json")
                .replace("\"ID\"", &id.to_string())
                .replace("\"SEQ\"", &seq.to_string())
                .replace("ELDER", elder)
                .replace("STATE", state.as_str());
            serde_json::from_str::<IncidentView>(&text).expect("a view")
        };
        use anxin_core::IncidentState::{Closed, Offered};
        let hub = FamilyHub::new(Policy::default(), HashMap::new(), vec![view(1, 5, "e-1", Offered)]);
        let (e1, mut rx1) = hub.subscribe(&ElderId::parse("e-1").unwrap());
        let (e2, mut rx2) = hub.subscribe(&ElderId::parse("e-2").unwrap());
        assert_eq!((e1.len(), e2.len()), (1, 0));
        hub.publish(&[view(2, 6, "e-2", Offered), view(1, 4, "e-1", Closed), view(1, 7, "e-1", Closed)].map(Arc::new));
        let frame: serde_json::Value = serde_json::from_str(rx1.try_recv().unwrap().as_str()).unwrap();
        assert_eq!((frame["incident"]["id"].as_u64(), frame["incident"]["seq"].as_u64()), (Some(1), Some(7)));
        assert!(rx1.try_recv().is_err(), "the replayed seq 4 was skipped, e-2's never came");
        let frame: serde_json::Value = serde_json::from_str(rx2.try_recv().unwrap().as_str()).unwrap();
        assert_eq!(frame["incident"]["id"], 2);
        assert!(!hub.is_open_for(&ElderId::parse("e-1").unwrap(), anxin_core::IncidentId(1)), "closed");
        assert!(hub.is_open_for(&ElderId::parse("e-2").unwrap(), anxin_core::IncidentId(2)));
        // A family that opens the page after the delta (nobody was listening then) is given
        // the incident as its view, made from the delta kept.
        hub.publish(&[Arc::new(view(3, 8, "e-3", Offered))]);
        let (e3, _rx3) = hub.subscribe(&ElderId::parse("e-3").unwrap());
        assert_eq!(e3.iter().map(|i| i.id).collect::<Vec<_>>(), [anxin_core::IncidentId(3)]);
        assert_eq!(serde_json::to_value(&e3[0]).unwrap()["state"], "offered");
    }

    #[test]
    fn tokens_are_32_random_bytes_in_hex() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
