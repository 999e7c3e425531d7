//! The administration API, `/api/v1/admin/...`: the ledger (elders, devices, stations,
//! responders, staff) read, created, changed and retired while the engine runs.
//!
//! - **Who:** a signed-in *admin* reads and writes; a *supervisor* reads; anybody else is
//!   refused (403). Sessions are the console's cookie.
//! - **One writer:** every change is a [`Request::Amend`] to the engine, answered once it is
//!   stored, so the engine stays the only writer and each change is logged with its actor.
//! - **Concurrency:** every entry has an `ETag`; `PUT` and `DELETE` must send it back in
//!   `If-Match` (428 without it) and are refused with 412 if the entry changed since.
//! - **Reads** come from the store (pages with search, filters and paging; an entry; its
//!   history), through [`LedgerSide`], which anxind implements.

// Handlers return an early `Response` as their error: it is the answer, not a failure to
// pass up, and boxing it would only move the allocation.
#![allow(clippy::result_large_err)]

use crate::auth::User;
use crate::commands::{Caller, Refused, Reply, Request};
use crate::http::ApiState;
use anxin_core::{Amend, Amendment, DeviceSecret, Entry, LedgerKind, StaffRole};
pub use anxin_proto::admin::{AdminError, Changed};
use anxin_proto::admin::{EntryHistory, ImportChecked, ImportRequest, LedgerItem, LedgerPage, LedgerQuery};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The store could not be read now (the implementation logs why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerUnavailable;

/// What the administration API reads, and the one thing it cannot do itself (hash a device's
/// broker password the broker's way). anxind implements it over the store.
pub trait LedgerSide: Send + Sync + 'static {
    fn page(&self, query: LedgerQuery) -> BoxFuture<'_, Result<LedgerPage, LedgerUnavailable>>;
    /// One entry, live or retired.
    fn item(&self, kind: LedgerKind, id: String) -> BoxFuture<'_, Result<Option<LedgerItem>, LedgerUnavailable>>;
    /// An entry's changes and (elders, devices) incidents, the latest first.
    fn history(&self, kind: LedgerKind, id: String) -> BoxFuture<'_, Result<EntryHistory, LedgerUnavailable>>;
    /// A device's broker password hashed the broker's way.
    fn device_secret(&self, password: String) -> DeviceSecret;
    /// Reads a spreadsheet and checks every row against the live ledger (the dry run),
    /// telling `progress` (rows done, rows in all) as it goes. `Err`: why the file cannot be
    /// read at all (not the file's format, an unknown mapping...).
    fn import_check(
        &self,
        request: ImportRequest,
        file: Vec<u8>,
        progress: Progress,
    ) -> BoxFuture<'_, Result<ImportChecked, String>>;
    /// The live ledger's entries of `kind` as a file: its bytes and content type.
    fn export(
        &self,
        kind: String,
        format: String,
        encoding: String,
    ) -> BoxFuture<'_, Result<(Vec<u8>, &'static str), String>>;
    /// Saved import mappings, by name (their JSON).
    fn mappings(&self) -> BoxFuture<'_, Result<Vec<serde_json::Value>, LedgerUnavailable>>;
    /// Saves a mapping under `name`; `Err` says what is wrong with it.
    fn save_mapping(&self, name: String, mapping: serde_json::Value, by: String) -> BoxFuture<'_, Result<(), String>>;
}

/// Where a long job reports how far it got: (done, total).
pub type Progress = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// The administration routes, served with the rest of the API.
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/admin/{kind}", get(list).post(create))
        .route("/api/v1/admin/{kind}/{id}", get(read).put(update).delete(retire))
        .route("/api/v1/admin/{kind}/{id}/history", get(history))
        .route("/api/v1/admin/devices/{id}/password", post(reset_password))
        // A district's file is tens of MiB: above axum's default limit of 2 MiB a body.
        .route(
            "/api/v1/admin/imports",
            post(crate::import::start).layer(axum::extract::DefaultBodyLimit::max(crate::import::MAX_FILE_BYTES)),
        )
        .route("/api/v1/admin/imports/{job}", get(crate::import::status))
        .route("/api/v1/admin/exports/{kind}", get(crate::import::export))
        .route("/api/v1/admin/mappings", get(crate::import::mappings))
        .route("/api/v1/admin/mappings/{name}", axum::routing::put(crate::import::save_mapping))
}

/// The path's plural for each kind.
pub fn kind_of(segment: &str) -> Option<LedgerKind> {
    Some(match segment {
        "elders" => LedgerKind::Elder,
        "devices" => LedgerKind::Device,
        "stations" => LedgerKind::Station,
        "responders" => LedgerKind::Responder,
        "staff" => LedgerKind::Staff,
        "providers" => LedgerKind::Provider,
        _ => return None,
    })
}

pub(crate) fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(AdminError { code: code.to_string(), error: message.into(), fields: Vec::new() })).into_response()
}

/// The status a refusal from the engine is answered with.
fn refused(r: Refused) -> Response {
    let status = match r.code.as_str() {
        "not_found" => StatusCode::NOT_FOUND,
        "exists" | "open_incident" | "has_devices" | "on_job" | "has_responders" | "has_elders" | "has_workers"
        | "open_order" => StatusCode::CONFLICT,
        "stale" => StatusCode::PRECONDITION_FAILED,
        "invalid" => StatusCode::UNPROCESSABLE_ENTITY,
        "not_allowed" => StatusCode::FORBIDDEN,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(AdminError { code: r.code, error: r.message, fields: r.fields })).into_response()
}

pub(crate) fn unavailable() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "store_unavailable", "the store cannot be read now: try again")
}

/// The signed-in member of staff, if their role reaches this far: admins everywhere,
/// supervisors for reading.
pub(crate) async fn staff(state: &ApiState, headers: &HeaderMap, write: bool) -> Result<User, Response> {
    let Some(user) = crate::http::signed_in(state, headers).await else {
        return Err(error(StatusCode::UNAUTHORIZED, "no_session", "sign in first"));
    };
    match (user.role, write) {
        (StaffRole::Admin, _) | (StaffRole::Supervisor, false) => Ok(user),
        _ => Err(error(StatusCode::FORBIDDEN, "forbidden", format!("a {} may not do this", user.role.as_str()))),
    }
}

pub(crate) fn side(state: &ApiState) -> Result<Arc<dyn LedgerSide>, Response> {
    state.ledger.clone().ok_or_else(|| error(StatusCode::NOT_FOUND, "not_found", "no ledger here"))
}

fn kind(segment: &str) -> Result<LedgerKind, Response> {
    kind_of(segment).ok_or_else(|| {
        let why = format!("no such list {segment:?}: elders, devices, stations, responders or staff");
        error(StatusCode::NOT_FOUND, "not_found", why)
    })
}

/// An entry as the API shows it: a staff member's password hash never leaves.
fn shown(entry: Entry) -> Entry {
    match entry {
        Entry::Staff(s) => Entry::Staff(anxin_core::Staff { password_hash: String::new(), ..s }),
        other => other,
    }
}

/// The query string of a page.
#[derive(Debug, Deserialize)]
pub struct PageParams {
    pub search: Option<String>,
    pub station: Option<String>,
    pub elder: Option<String>,
    #[serde(default)]
    pub retired: bool,
    #[serde(default)]
    pub offset: u32,
    pub limit: Option<u32>,
}

/// Most entries one page holds.
pub const PAGE_MAX: u32 = 500;

async fn list(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(segment): Path<String>,
    Query(p): Query<PageParams>,
) -> Response {
    let (kind, side) = match (kind(&segment), staff(&state, &headers, false).await.and_then(|_| side(&state))) {
        (Ok(k), Ok(s)) => (k, s),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let query = LedgerQuery {
        kind,
        search: p.search,
        station: p.station,
        elder: p.elder,
        retired: p.retired,
        offset: p.offset,
        limit: p.limit.unwrap_or(50).clamp(1, PAGE_MAX),
    };
    match side.page(query).await {
        Ok(mut page) => {
            for item in &mut page.items {
                item.entry = shown(item.entry.clone());
            }
            Json(page).into_response()
        }
        Err(LedgerUnavailable) => unavailable(),
    }
}

fn with_etag(status: StatusCode, etag: Option<&str>, body: impl Serialize) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Some(tag) = etag.and_then(|t| t.parse().ok()) {
        response.headers_mut().insert(header::ETAG, tag);
    }
    response
}

async fn read(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((segment, id)): Path<(String, String)>,
) -> Response {
    let (kind, side) = match (kind(&segment), staff(&state, &headers, false).await.and_then(|_| side(&state))) {
        (Ok(k), Ok(s)) => (k, s),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match side.item(kind, id.clone()).await {
        Ok(Some(mut item)) => {
            item.entry = shown(item.entry);
            let etag = item.etag.clone();
            with_etag(StatusCode::OK, item.retired_at.is_none().then_some(etag.as_str()), item)
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "not_found", format!("no {kind} {id}")),
        Err(LedgerUnavailable) => unavailable(),
    }
}

async fn history(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((segment, id)): Path<(String, String)>,
) -> Response {
    let (kind, side) = match (kind(&segment), staff(&state, &headers, false).await.and_then(|_| side(&state))) {
        (Ok(k), Ok(s)) => (k, s),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    match side.history(kind, id).await {
        Ok(h) => Json(h).into_response(),
        Err(LedgerUnavailable) => unavailable(),
    }
}

/// A member of staff as written to the API: a password, never a hash.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StaffBody {
    id: String,
    name: String,
    role: StaffRole,
    /// Required to create; left out on an update, the password stays.
    #[serde(default)]
    password: Option<String>,
}

/// A device as written to the API, with its broker password (made up when left out on
/// creation, and then shown once in the answer).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviceBody {
    id: String,
    elder_id: String,
    /// Left out: the default model, as in the registry file.
    #[serde(default)]
    model: Option<String>,
    /// The number of its SIM card; left out: none.
    #[serde(default)]
    sim: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Shortest password a member of staff may have.
pub const MIN_PASSWORD: usize = 10;

/// Reads a body into an entry of `kind`, and a device's new password if any.
fn entry_of(kind: LedgerKind, body: &[u8], create: bool) -> Result<(Entry, Option<String>), Response> {
    let bad = |e: serde_json::Error| {
        let field = anxin_core::FieldError::new("body", "bad_json", e.to_string());
        let body =
            AdminError { code: "invalid".into(), error: format!("the body is not a {kind}: {e}"), fields: vec![field] };
        (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
    };
    match kind {
        LedgerKind::Staff => {
            let b: StaffBody = serde_json::from_slice(body).map_err(bad)?;
            let hash = match b.password {
                Some(p) if p.chars().count() < MIN_PASSWORD => {
                    let field = anxin_core::FieldError::new(
                        "password",
                        "too_short",
                        format!("a password has at least {MIN_PASSWORD} characters"),
                    );
                    let body =
                        AdminError { code: "invalid".into(), error: "password too short".into(), fields: vec![field] };
                    return Err((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
                }
                Some(p) => crate::auth::hash_password(&p),
                // An update keeps the password (the engine fills it in); a creation without
                // one is refused by the engine's check.
                None => String::new(),
            };
            let _ = create;
            Ok((Entry::Staff(anxin_core::Staff { id: b.id, name: b.name, role: b.role, password_hash: hash }), None))
        }
        LedgerKind::Device => {
            let b: DeviceBody = serde_json::from_slice(body).map_err(bad)?;
            let value = serde_json::json!({ "id": b.id, "elder_id": b.elder_id, "model": b.model, "sim": b.sim });
            let device = serde_json::from_value(value).map_err(bad)?;
            Ok((Entry::Device(device), b.password))
        }
        LedgerKind::Elder => Ok((Entry::Elder(serde_json::from_slice(body).map_err(bad)?), None)),
        LedgerKind::Station => Ok((Entry::Station(serde_json::from_slice(body).map_err(bad)?), None)),
        LedgerKind::Responder => Ok((Entry::Responder(serde_json::from_slice(body).map_err(bad)?), None)),
        LedgerKind::Provider => Ok((Entry::Provider(serde_json::from_slice(body).map_err(bad)?), None)),
    }
}

pub(crate) async fn amend(state: &ApiState, user: &User, amend: Amend) -> Result<anxin_core::Amended, Response> {
    let caller = Caller::Admin { id: user.id.clone() };
    match crate::http::submit(state, caller, Request::Amend(Box::new(amend))).await.await {
        Ok(Reply::Amended(done)) => Ok(done),
        Ok(_) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected", "the engine answered something else")),
        Err(r) => Err(refused(r)),
    }
}

fn if_match(headers: &HeaderMap) -> Result<String, Response> {
    match headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) {
        Some(tag) => Ok(tag.trim().to_string()),
        None => Err(error(
            StatusCode::PRECONDITION_REQUIRED,
            "if_match_required",
            "send the entry's ETag in If-Match, so that another's change is not overwritten",
        )),
    }
}

/// A device's secret: the given password, or a new one to show once.
fn secret(state: &ApiState, side: &dyn LedgerSide, given: Option<String>) -> (DeviceSecret, Option<String>) {
    let _ = state;
    let made = given.is_none().then(new_password);
    let password = given.or_else(|| made.clone()).expect("one of them");
    (side.device_secret(password), made)
}

/// A broker password: 24 characters from an alphabet without look-alikes.
pub fn new_password() -> String {
    const ALPHABET: &[u8] = b"23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

async fn create(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(segment): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let (kind, user, side) = match (kind(&segment), staff(&state, &headers, true).await, side(&state)) {
        (Ok(k), Ok(u), Ok(s)) => (k, u, s),
        (Err(r), _, _) | (_, Err(r), _) | (_, _, Err(r)) => return r,
    };
    let (entry, password) = match entry_of(kind, &body, true) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let (secret, made) = match kind {
        LedgerKind::Device => {
            let (s, made) = secret(&state, &*side, password);
            (Some(s), made)
        }
        _ => (None, None),
    };
    let id = entry.id().to_string();
    match amend(&state, &user, Amend { amendment: Amendment::Create(entry), if_match: None, secret }).await {
        Ok(done) => {
            let etag = done.etag.clone();
            let body = Changed { kind, id: id.clone(), action: done.action, etag: done.etag, password: made };
            let mut response = with_etag(StatusCode::CREATED, etag.as_deref(), body);
            if let Ok(location) = format!("/api/v1/admin/{segment}/{id}").parse() {
                response.headers_mut().insert(header::LOCATION, location);
            }
            response
        }
        Err(r) => r,
    }
}

async fn update(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((segment, id)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Response {
    let (kind, user) = match (kind(&segment), staff(&state, &headers, true).await) {
        (Ok(k), Ok(u)) => (k, u),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let tag = match if_match(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let (entry, password) = match entry_of(kind, &body, false) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if entry.id() != id {
        let field = anxin_core::FieldError::new("id", "id_mismatch", format!("the body's id is not {id}"));
        let body =
            AdminError { code: "invalid".into(), error: "the body names another entry".into(), fields: vec![field] };
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
    }
    let secret = match (password, side(&state)) {
        (Some(p), Ok(side)) => Some(side.device_secret(p)),
        _ => None,
    };
    match amend(&state, &user, Amend { amendment: Amendment::Update(entry), if_match: Some(tag), secret }).await {
        Ok(done) => {
            let etag = done.etag.clone();
            with_etag(
                StatusCode::OK,
                etag.as_deref(),
                Changed { kind, id, action: done.action, etag: done.etag, password: None },
            )
        }
        Err(r) => r,
    }
}

async fn retire(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path((segment, id)): Path<(String, String)>,
) -> Response {
    let (kind, user) = match (kind(&segment), staff(&state, &headers, true).await) {
        (Ok(k), Ok(u)) => (k, u),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let tag = match if_match(&headers) {
        Ok(t) => t,
        Err(r) => return r,
    };
    if kind == LedgerKind::Staff && id == user.id {
        return error(StatusCode::CONFLICT, "own_account", "you cannot retire your own account");
    }
    let amendment = Amendment::Retire(kind, id.clone());
    match amend(&state, &user, Amend { amendment, if_match: Some(tag), secret: None }).await {
        Ok(done) => Json(Changed { kind, id, action: done.action, etag: None, password: None }).into_response(),
        Err(r) => r,
    }
}

/// A device's broker password made anew (the old one stops working at once); the new one is
/// shown this once.
async fn reset_password(State(state): State<ApiState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (user, side) = match (staff(&state, &headers, true).await, side(&state)) {
        (Ok(u), Ok(s)) => (u, s),
        (Err(r), _) | (_, Err(r)) => return r,
    };
    let Ok(Some(item)) = side.item(LedgerKind::Device, id.clone()).await else {
        return error(StatusCode::NOT_FOUND, "not_found", format!("no device {id}"));
    };
    let (secret, made) = secret(&state, &*side, None);
    let amend_ = Amend { amendment: Amendment::Update(item.entry), if_match: None, secret: Some(secret) };
    match amend(&state, &user, amend_).await {
        Ok(done) => {
            Json(Changed { kind: LedgerKind::Device, id, action: done.action, etag: done.etag, password: made })
                .into_response()
        }
        Err(r) => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(body: serde_json::Value) -> Result<(Entry, Option<String>), Response> {
        entry_of(LedgerKind::Device, body.to_string().as_bytes(), true)
    }

    #[test]
    fn a_device_body_takes_its_model_and_sim_number_and_nothing_unknown() {
        let (entry, password) = device(
            serde_json::json!({"id": "d-9", "elder_id": "e-1", "model": "watch-4g", "sim": "+86 139-0000-0009"}),
        )
        .unwrap();
        let Entry::Device(d) = entry else { panic!("a device") };
        assert_eq!((d.model.as_deref(), d.sim.as_deref()), (Some("watch-4g"), Some("+86 139-0000-0009")));
        assert_eq!(password, None);
        let (entry, _) = device(serde_json::json!({"id": "d-9", "elder_id": "e-1", "password": "p"})).unwrap();
        let Entry::Device(d) = entry else { panic!("a device") };
        assert_eq!((d.model, d.sim), (None, None), "left out: none");
        let refused = device(serde_json::json!({"id": "d-9", "elder_id": "e-1", "imei": "86"})).unwrap_err();
        assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
}
