//! The service lane over REST (see `anxin_core::service`): a dispatcher asks what an order
//! would cost, places it, acts on it, and lists the orders open. Workers act on their phone's
//! socket (`order` frames); the engine answers everything here, after what it caused is
//! stored.
//!
//! - `POST /api/v1/services/quote`: who could take an order and what the elder would pay.
//! - `POST /api/v1/services/orders`: places it (`201` with its id). An order with a self-paid
//!   part is refused (`409 self_paid_not_agreed`) unless `self_paid_agreed` is set.
//! - `GET /api/v1/services/catalogue`: the categories, providers and allowances.
//! - `GET /api/v1/services/orders`: the orders whose life is not over, with names.
//! - `POST /api/v1/services/orders/{id}`: cancel, reschedule, rematch, offer to a provider,
//!   confirm, dispute, settle, note.
//!
//! - `GET /api/v1/services/statements?month=2026-12&by=elder|provider&format=json|csv`: a
//!   month's statement for the district's supervision (supervisors and administrators).
//!
//! - `GET|POST /api/v1/family/orders`, `POST /api/v1/family/orders/{id}` and
//!   `POST /api/v1/family/quote`: the same for a family member signed in on the family page,
//!   for their own elder only; they may confirm, dispute or cancel.
//!
//! Who: a signed-in dispatcher or supervisor (administrators work no orders). Every refusal
//! is counted on `anxin_service_requests_total{result}`.

// Handlers answer early with a response (as the admin API does): the size is an axum
// response's, made once per request.
#![allow(clippy::result_large_err)]

use crate::http::ApiState;
use anxin_core::service::{Statement, StatementBy};
use anxin_core::{OrderAction, OrderId, StaffRole};
use anxin_proto::rest::ServiceError;
use anxin_proto::{Caller, Refused, Reply, Request};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The store could not be read now (the implementation logs why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatementUnavailable;

/// Where statements come from: anxind reads the store.
pub trait ServiceSide: Send + Sync + 'static {
    /// The month's statement (`2026-12`, the centre's local month); `None` for a month that
    /// is not one.
    fn statement(
        &self,
        month: String,
        by: StatementBy,
    ) -> futures_util::future::BoxFuture<'_, Result<Option<Statement>, StatementUnavailable>>;

    /// An order, open or over, with its log; `None` for a number never given.
    fn history(
        &self,
        id: OrderId,
    ) -> futures_util::future::BoxFuture<'_, Result<Option<anxin_proto::rest::OrderHistory>, StatementUnavailable>>;
}

/// The service lane's requests by result, for `/metrics`.
#[derive(Clone, Debug)]
pub struct ServiceMetrics {
    requests: prometheus::IntCounterVec,
}

impl ServiceMetrics {
    pub fn new(registry: &prometheus::Registry) -> Self {
        let requests = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "anxin_service_requests_total",
                "Requests to /api/v1/services by result: ok, bad_request, forbidden, refused",
            ),
            &["result"],
        )
        .expect("valid metric");
        for result in ["ok", "bad_request", "forbidden", "refused"] {
            requests.with_label_values(&[result]);
        }
        // A second registration (a second app in one test process) is harmless.
        let _ = registry.register(Box::new(requests.clone()));
        Self { requests }
    }

    fn count(&self, result: &str) {
        self.requests.with_label_values(&[result]).inc();
    }
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = ServiceError { code: code.to_string(), error: message.into(), args: Default::default() };
    (status, Json(body)).into_response()
}

/// The signed-in dispatcher or supervisor, as the engine's caller.
async fn dispatcher(state: &ApiState, headers: &HeaderMap) -> Result<Caller, Response> {
    let Some(user) = crate::http::signed_in(state, headers).await else {
        state.services.count("forbidden");
        return Err(error(StatusCode::UNAUTHORIZED, "no_session", "sign in first"));
    };
    match user.role {
        StaffRole::Dispatcher => Ok(Caller::Dispatcher { id: user.id, supervisor: false }),
        StaffRole::Supervisor => Ok(Caller::Dispatcher { id: user.id, supervisor: true }),
        StaffRole::Admin => {
            state.services.count("forbidden");
            Err(error(StatusCode::FORBIDDEN, "forbidden", "orders are dispatchers' work"))
        }
    }
}

/// A body read as `T`, or a 400 that says what is wrong with it.
fn body<T: serde::de::DeserializeOwned>(state: &ApiState, bytes: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(bytes).map_err(|e| {
        state.services.count("bad_request");
        error(StatusCode::BAD_REQUEST, "bad_json", format!("the body is not what this takes: {e}"))
    })
}

/// The engine's answer, or its refusal with the status that fits.
async fn ask(state: &ApiState, caller: Caller, request: Request) -> Result<Reply, Response> {
    match crate::http::submit(state, caller, request).await.await {
        Ok(reply) => {
            state.services.count("ok");
            Ok(reply)
        }
        Err(r) => {
            state.services.count("refused");
            Err(refused(r))
        }
    }
}

fn refused(r: Refused) -> Response {
    let status = match r.code.as_str() {
        "unknown_order" | "unknown_elder" => StatusCode::NOT_FOUND,
        "wrong_state" | "self_paid_not_agreed" | "worker_busy" | "provider_full" | "other_month" => {
            StatusCode::CONFLICT
        }
        "stopping" | "no_answer_in_time" | "zone_elsewhere" | "fenced" => StatusCode::SERVICE_UNAVAILABLE,
        "not_allowed" => StatusCode::FORBIDDEN,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (status, Json(anxin_proto::rest::ServiceError { code: r.code, error: r.message, args: r.args })).into_response()
}

/// Reads the body as `T` for the signed-in dispatcher, and asks the engine `request(body)`.
async fn handle<T: serde::de::DeserializeOwned>(
    state: &ApiState,
    headers: &HeaderMap,
    bytes: &[u8],
    request: impl FnOnce(T) -> Request,
) -> Result<Reply, Response> {
    let caller = dispatcher(state, headers).await?;
    let input = body(state, bytes)?;
    ask(state, caller, request(input)).await
}

fn unexpected() -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, "unexpected", "the engine answered something else")
}

pub(crate) async fn quote(State(state): State<ApiState>, headers: HeaderMap, bytes: axum::body::Bytes) -> Response {
    match handle(&state, &headers, &bytes, Request::Quote).await {
        Ok(Reply::Quote(q)) => Json(q).into_response(),
        Ok(_) => unexpected(),
        Err(r) => r,
    }
}

pub(crate) async fn place(State(state): State<ApiState>, headers: HeaderMap, bytes: axum::body::Bytes) -> Response {
    match handle(&state, &headers, &bytes, Request::PlaceOrder).await {
        Ok(Reply::Order(id)) => (StatusCode::CREATED, Json(anxin_proto::rest::PlacedOrder { id })).into_response(),
        Ok(_) => unexpected(),
        Err(r) => r,
    }
}

/// Asks the engine a question with no body for the signed-in dispatcher.
async fn read(state: &ApiState, headers: &HeaderMap, request: Request) -> Result<Reply, Response> {
    let caller = dispatcher(state, headers).await?;
    ask(state, caller, request).await
}

/// The board as the API answers it: the orders, and the zones whose orders are missing.
fn board_json(board: anxin_proto::OrderBoard) -> Response {
    Json(serde_json::json!({ "orders": board.orders, "zones_unanswered": board.zones_unanswered })).into_response()
}

pub(crate) async fn list(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    match read(&state, &headers, Request::Orders).await {
        Ok(Reply::Orders(board)) => board_json(board),
        Ok(_) => unexpected(),
        Err(r) => r,
    }
}

pub(crate) async fn catalogue(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    match read(&state, &headers, Request::Catalogue).await {
        Ok(Reply::Catalogue(c)) => Json(c).into_response(),
        Ok(_) => unexpected(),
        Err(r) => r,
    }
}

pub(crate) async fn act(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Path(id): Path<u64>,
    bytes: axum::body::Bytes,
) -> Response {
    let request = |action: OrderAction| Request::OrderAct { order: OrderId(id), action };
    match handle(&state, &headers, &bytes, request).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// `GET /api/v1/services/orders/{id}`: the order and every step of it, for a dispatcher
/// looking into a dispute or a complaint, however long ago it ended.
pub(crate) async fn history(State(state): State<ApiState>, headers: HeaderMap, Path(id): Path<u64>) -> Response {
    if let Err(r) = dispatcher(&state, &headers).await {
        return r;
    }
    let Some(side) = state.service_side.clone() else {
        return error(StatusCode::NOT_FOUND, "not_found", "no orders here");
    };
    match side.history(OrderId(id)).await {
        Ok(Some(h)) => {
            state.services.count("ok");
            Json(h).into_response()
        }
        Ok(None) => {
            state.services.count("refused");
            error(StatusCode::NOT_FOUND, "unknown_order", format!("order {id} does not exist"))
        }
        Err(StatementUnavailable) => {
            error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the store cannot be read now")
        }
    }
}

/// What a statement is asked for.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct StatementParams {
    month: Option<String>,
    by: Option<String>,
    format: Option<String>,
    lang: Option<String>,
}

pub(crate) async fn statements(
    State(state): State<ApiState>,
    headers: HeaderMap,
    axum::extract::Query(p): axum::extract::Query<StatementParams>,
) -> Response {
    let Some(side) = state.service_side.clone() else {
        return error(StatusCode::NOT_FOUND, "not_found", "no statements here");
    };
    let Some(user) = crate::http::signed_in(&state, &headers).await else {
        state.services.count("forbidden");
        return error(StatusCode::UNAUTHORIZED, "no_session", "sign in first");
    };
    if !matches!(user.role, StaffRole::Supervisor | StaffRole::Admin) {
        state.services.count("forbidden");
        return error(StatusCode::FORBIDDEN, "forbidden", "statements are for supervisors");
    }
    let bad = |why: String| {
        state.services.count("bad_request");
        error(StatusCode::BAD_REQUEST, "bad_request", why)
    };
    let by = match p.by.as_deref().unwrap_or("elder") {
        "elder" => StatementBy::Elder,
        "provider" => StatementBy::Provider,
        other => return bad(format!("by {other:?} is neither elder nor provider")),
    };
    let format = p.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv") {
        return bad(format!("format {format:?} is neither json nor csv"));
    }
    let Some(month) = p.month else { return bad("month is required, as 2026-12".into()) };
    let statement = match side.statement(month.clone(), by).await {
        Ok(Some(s)) => s,
        Ok(None) => return bad(format!("month {month:?} is not a month such as 2026-12")),
        Err(StatementUnavailable) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the store cannot be read now")
        }
    };
    state.services.count("ok");
    if format == "json" {
        return Json(statement).into_response();
    }
    let zh = p.lang.as_deref() != Some("en");
    let name = format!("anxin-statement-{month}-{}.csv", if by == StatementBy::Elder { "elder" } else { "provider" });
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (axum::http::header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        statement_csv(&statement, zh),
    )
        .into_response()
}

/// A statement as CSV for Excel: a byte-order mark, a header, each order's line, each
/// group's subtotal after its lines, and the month's total. Money in yuan.
pub fn statement_csv(s: &Statement, zh: bool) -> Vec<u8> {
    let head: [&str; 11] = if zh {
        ["分组", "名称", "工单号", "长者", "服务商", "服务类别", "服务时间", "状态", "价格(元)", "补贴(元)", "自付(元)"]
    } else {
        [
            "group",
            "name",
            "order",
            "elder",
            "provider",
            "category",
            "at",
            "state",
            "price_yuan",
            "subsidy_yuan",
            "self_paid_yuan",
        ]
    };
    let yuan = |fen: u64| format!("{}.{:02}", fen / 100, fen % 100);
    let mut out = String::from("\u{feff}");
    let row = |out: &mut String, cells: &[String]| {
        out.push_str(&cells.iter().map(|c| crate::reports::field(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    };
    row(&mut out, &head.map(String::from));
    let subtotal = if zh { "小计" } else { "subtotal" };
    for g in &s.groups {
        for l in &g.lines {
            row(
                &mut out,
                &[
                    g.id.clone(),
                    g.name.clone(),
                    l.order_id.to_string(),
                    format!("{} {}", l.elder_id, l.elder_name),
                    format!("{} {}", l.provider_id, l.provider_name),
                    l.category.clone(),
                    anxin_core::service::local_text(l.at, s.utc_offset_min),
                    l.state.as_str().to_string(),
                    yuan(u64::from(l.price_fen)),
                    yuan(u64::from(l.subsidy_fen)),
                    yuan(u64::from(l.self_paid_fen)),
                ],
            );
        }
        let sums = &g.sums;
        let count = format!("{} {}", sums.orders, if zh { "单" } else { "orders" });
        let mut cells = vec![g.id.clone(), g.name.clone(), subtotal.to_string(), count];
        cells.extend(["", "", "", ""].map(String::from));
        cells.extend([yuan(sums.price_fen), yuan(sums.subsidy_fen), yuan(sums.self_paid_fen)]);
        row(&mut out, &cells);
    }
    let t = &s.total;
    let mut cells = vec![if zh { "合计" } else { "total" }.to_string(), String::new(), String::new()];
    cells.push(format!("{} {}", t.orders, if zh { "单" } else { "orders" }));
    cells.extend(["", "", "", ""].map(String::from));
    cells.extend([yuan(t.price_fen), yuan(t.subsidy_fen), yuan(t.self_paid_fen)]);
    row(&mut out, &cells);
    out.into_bytes()
}

/// The signed-in family member (the family page's cookie), as the engine's caller: they see,
/// order for and act on their own elder's orders only.
async fn family(
    state: &ApiState,
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
) -> Result<Caller, Response> {
    match crate::family::signed(state, extensions, headers).await {
        Ok(s) => Ok(Caller::Family { elder: s.elder, contact: s.member.contact_id }),
        Err(r) => {
            state.services.count("forbidden");
            Err(r)
        }
    }
}

/// Asks the engine `request(body)` for the signed-in family member.
async fn handle_family<T: serde::de::DeserializeOwned>(
    state: &ApiState,
    extensions: &axum::http::Extensions,
    headers: &HeaderMap,
    bytes: &[u8],
    request: impl FnOnce(T) -> Request,
) -> Result<Reply, Response> {
    let caller = family(state, extensions, headers).await?;
    let input = body(state, bytes)?;
    ask(state, caller, request(input)).await
}

pub(crate) async fn family_list(
    State(state): State<ApiState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
) -> Response {
    let caller = match family(&state, &extensions, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match ask(&state, caller, Request::Orders).await {
        Ok(Reply::Orders(board)) => board_json(board),
        Ok(_) => unexpected(),
        Err(r) => r,
    }
}

pub(crate) async fn family_quote(
    State(state): State<ApiState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Response {
    match handle_family(&state, &extensions, &headers, &bytes, Request::Quote).await {
        Ok(Reply::Quote(q)) => Json(q).into_response(),
        Ok(_) => unexpected(),
        Err(r) => r,
    }
}

pub(crate) async fn family_place(
    State(state): State<ApiState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> Response {
    match handle_family(&state, &extensions, &headers, &bytes, Request::PlaceOrder).await {
        Ok(Reply::Order(id)) => (StatusCode::CREATED, Json(anxin_proto::rest::PlacedOrder { id })).into_response(),
        Ok(_) => unexpected(),
        Err(r) => r,
    }
}

pub(crate) async fn family_act(
    State(state): State<ApiState>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    Path(id): Path<u64>,
    bytes: axum::body::Bytes,
) -> Response {
    let request = |action: OrderAction| Request::OrderAct { order: OrderId(id), action };
    match handle_family(&state, &extensions, &headers, &bytes, request).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r,
    }
}

/// The routes, for [`crate::http::router`].
pub(crate) fn routes() -> axum::Router<ApiState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/api/v1/services/catalogue", get(catalogue))
        .route("/api/v1/services/quote", post(quote))
        .route("/api/v1/services/orders", get(list).post(place))
        .route("/api/v1/services/orders/{id}", get(history).post(act))
        .route("/api/v1/services/statements", get(statements))
        .route("/api/v1/family/orders", get(family_list).post(family_place))
        .route("/api/v1/family/orders/{id}", post(family_act))
        .route("/api/v1/family/quote", post(family_quote))
}
