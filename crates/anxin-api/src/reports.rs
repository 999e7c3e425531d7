//! Supervisors' reports, `GET /api/v1/reports`: a period's incidents against the standards,
//! by shift, day, week, month, station or zone, as JSON or as CSV for Excel (UTF-8 with a
//! byte-order mark, so Excel in China reads the Chinese headers right). The figures are read from the
//! store's event log through [`ReportSide`], which anxind implements; the page that prints
//! them is `/console/report`.
//!
//! - **Who:** a signed-in supervisor or admin; a dispatcher is refused (403).
//! - **The period:** `from` and `to` are the centre's local dates (`2025-11-13`, `to`
//!   included) or local times (`2025-11-13T08:00`, `to` excluded: a shift). At most
//!   [`MAX_DAYS`] days.

use crate::http::ApiState;
use anxin_core::{Grouping, Report, StaffRole, Standard, Timestamp};
use anxin_proto::admin::AdminError;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::future::BoxFuture;
use serde::Deserialize;
use std::sync::Arc;

/// The longest period one report covers: a year and a bit, so a year-on-year month fits.
pub const MAX_DAYS: i64 = 400;

/// The store could not be read now (the implementation logs why).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportUnavailable;

/// Where reports come from. anxind answers from the store, with its configured standards.
pub trait ReportSide: Send + Sync + 'static {
    /// The centre's offset from UTC (`dispatch.utc_offset_min`), for local dates.
    fn utc_offset_min(&self) -> i32;
    /// The report for incidents opened in `[from, to)`, grouped `by`, as of `now`.
    fn report(
        &self,
        from: Timestamp,
        to: Timestamp,
        by: Grouping,
        now: Timestamp,
    ) -> BoxFuture<'_, Result<Report, ReportUnavailable>>;
}

/// What reports were asked for and how each ended, for `/metrics`.
#[derive(Clone, Debug)]
pub struct ReportMetrics {
    requests: prometheus::IntCounterVec,
}

impl ReportMetrics {
    pub fn new(registry: &prometheus::Registry) -> Self {
        let requests = prometheus::IntCounterVec::new(
            prometheus::Opts::new(
                "anxin_report_requests_total",
                "Reports asked for at /api/v1/reports, by result: ok, bad_request, forbidden, unavailable",
            ),
            &["result"],
        )
        .expect("valid metric");
        for result in ["ok", "bad_request", "forbidden", "unavailable"] {
            requests.with_label_values(&[result]);
        }
        // A second registration (a second app in one test process) is harmless.
        let _ = registry.register(Box::new(requests.clone()));
        Self { requests }
    }
}

/// The reports' side and its metrics, in the API's state.
#[derive(Clone)]
pub struct Reports {
    pub side: Arc<dyn ReportSide>,
    pub metrics: ReportMetrics,
}

impl std::fmt::Debug for Reports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reports").finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ReportParams {
    from: Option<String>,
    to: Option<String>,
    by: Option<String>,
    format: Option<String>,
    lang: Option<String>,
}

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(AdminError { code: code.to_string(), error: message.into(), fields: Vec::new() })).into_response()
}

/// A local date or date and time as a moment; `end` makes a date alone mean the end of
/// that day (its next midnight).
fn moment(s: &str, utc_offset_min: i32, end: bool) -> Option<Timestamp> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (s, None),
    };
    let midnight = anxin_core::report::parse_day(date, utc_offset_min)?;
    match time {
        None if end => Some(midnight.plus_millis(86_400_000)),
        None => Some(midnight),
        Some(t) => {
            let (h, m) = t.split_once(':')?;
            let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
            if !(0..24).contains(&h) || !(0..60).contains(&m) {
                return None;
            }
            Some(midnight.plus_millis((h * 60 + m) * 60_000))
        }
    }
}

pub(crate) async fn get_report(
    State(state): State<ApiState>,
    headers: HeaderMap,
    Query(p): Query<ReportParams>,
) -> Response {
    let Some(reports) = state.reports.clone() else {
        return error(StatusCode::NOT_FOUND, "not_found", "no reports here");
    };
    let count = |result: &str| reports.metrics.requests.with_label_values(&[result]).inc();
    let Some(user) = crate::http::signed_in(&state, &headers).await else {
        count("forbidden");
        return error(StatusCode::UNAUTHORIZED, "no_session", "sign in first");
    };
    if !matches!(user.role, StaffRole::Supervisor | StaffRole::Admin) {
        count("forbidden");
        return error(StatusCode::FORBIDDEN, "forbidden", "reports are for supervisors");
    }
    let offset = reports.side.utc_offset_min();
    let bad = |why: String| {
        count("bad_request");
        error(StatusCode::BAD_REQUEST, "bad_request", why)
    };
    let (Some(from_s), Some(to_s)) = (p.from.as_deref(), p.to.as_deref()) else {
        return bad(
            "from and to are required: local dates such as 2025-11-13, or times such as 2025-11-13T08:00".into()
        );
    };
    let Some(from) = moment(from_s, offset, false) else {
        return bad(format!("from {from_s:?} is not a date (2025-11-13) or a local time (2025-11-13T08:00)"));
    };
    let Some(to) = moment(to_s, offset, true) else {
        return bad(format!("to {to_s:?} is not a date (2025-11-13) or a local time (2025-11-13T08:00)"));
    };
    if to <= from {
        return bad(format!("the period {from_s} to {to_s} is empty: to must come after from"));
    }
    if to.millis() - from.millis() > MAX_DAYS * 86_400_000 {
        return bad(format!("the period is longer than {MAX_DAYS} days: ask for less"));
    }
    let by_s = p.by.as_deref().unwrap_or("day");
    let Some(by) = Grouping::parse(by_s) else {
        return bad(format!("by {by_s:?} is none of shift, day, week, month, station, zone, none"));
    };
    let format = p.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "csv") {
        return bad(format!("format {format:?} is neither json nor csv"));
    }
    let now = (state.clock)();
    let report = match reports.side.report(from, to, by, now).await {
        Ok(r) => r,
        Err(ReportUnavailable) => {
            count("unavailable");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_unavailable",
                "the store cannot be read now: try again",
            );
        }
    };
    count("ok");
    if format == "json" {
        return Json(report).into_response();
    }
    let zh = p.lang.as_deref().is_some_and(|l| l.starts_with("zh"));
    let name = format!("anxin-report-{from_s}-{to_s}-{}.csv", by.as_str()).replace(':', "");
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        to_csv(&report, zh),
    )
        .into_response()
}

/// A field quoted as RFC 4180 asks, when it must be.
pub(crate) fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn standard_name(s: Standard, zh: bool) -> &'static str {
    match (s, zh) {
        (Standard::Tsa60, false) => "TSA 60 s",
        (Standard::Tsa60, true) => "TSA 60秒接听",
        (Standard::Tsa180, false) => "TSA 180 s",
        (Standard::Tsa180, true) => "TSA 180秒接听",
        (Standard::Nfpa1225, false) => "NFPA 1225",
        (Standard::Nfpa1225, true) => "NFPA 1225 派单",
        (Standard::Nena, false) => "NENA",
        (Standard::Nena, true) => "NENA 15秒接听",
        (Standard::ClosedLoop, false) => "closed loop",
        (Standard::ClosedLoop, true) => "闭环到场",
    }
}

/// The report as CSV: a byte-order mark, a header, one line per row and one for the whole
/// period; each standard's missed incidents are listed in one field, space-separated; then
/// the welfare programme's tasks and the service lane's orders (money in yuan, two decimals). A
/// zone's row is labelled as people say it (`zone 1`, `分区 1`): a bare number in the first
/// column would read as a count.
pub fn to_csv(report: &Report, zh: bool) -> Vec<u8> {
    let mut head: Vec<String> = if zh {
        [
            "分组",
            "事件数",
            "警情数",
            "按键→坐席 中位秒",
            "按键→坐席 P90秒",
            "按键→首次派单 中位秒",
            "按键→首次派单 P90秒",
            "按键→接单 中位秒",
            "按键→接单 P90秒",
            "按键→到场 中位秒",
            "按键→到场 P90秒",
            "无人前往",
            "转120",
            "转110",
            "转119",
            "误报",
            "取消",
            "闭环失败",
            "来电数",
        ]
        .map(String::from)
        .to_vec()
    } else {
        [
            "group",
            "incidents",
            "alarms",
            "press_to_console_median_s",
            "press_to_console_p90_s",
            "press_to_first_offer_median_s",
            "press_to_first_offer_p90_s",
            "press_to_accepted_median_s",
            "press_to_accepted_p90_s",
            "press_to_on_scene_median_s",
            "press_to_on_scene_p90_s",
            "nobody_going",
            "handed_to_120",
            "handed_to_110",
            "handed_to_119",
            "false_alarms",
            "cancelled",
            "closed_loop_failures",
            "calls_in",
        ]
        .map(String::from)
        .to_vec()
    };
    for s in Standard::ALL {
        let n = standard_name(s, zh);
        let cols: [&str; 4] = if zh {
            ["达标", "未达标", "进行中", "达标率%"]
        } else {
            ["met", "missed", "pending", "share_pct"]
        };
        head.extend(cols.iter().map(|c| format!("{n} {c}")));
        head.push(if zh { format!("{n} 未达标事件") } else { format!("{n} missed incidents") });
    }
    let lanes: [&str; 19] = if zh {
        [
            "定期电话到期",
            "定期探访到期",
            "按时完成",
            "逾期完成",
            "未完成",
            "未完成且已逾期",
            "结果：平安",
            "结果：需服务",
            "结果：需救助",
            "结果：无人接听",
            "服务工单",
            "已接单",
            "无人接单",
            "已完成",
            "准时上门",
            "争议中",
            "已取消",
            "补贴金额(元)",
            "自付金额(元)",
        ]
    } else {
        [
            "programme_calls_due",
            "programme_visits_due",
            "programme_done_on_time",
            "programme_done_late",
            "programme_open",
            "programme_open_overdue",
            "programme_well",
            "programme_needs_service",
            "programme_needs_help",
            "programme_no_answer",
            "service_orders",
            "service_accepted",
            "service_unmatched",
            "service_done",
            "service_on_time",
            "service_disputed",
            "service_cancelled",
            "service_subsidy_yuan",
            "service_self_paid_yuan",
        ]
    };
    head.extend(lanes.iter().map(|h| h.to_string()));
    let mut out = String::from("\u{feff}");
    out.push_str(&head.iter().map(|h| field(h)).collect::<Vec<_>>().join(","));
    out.push_str("\r\n");
    let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    for row in report.rows.iter().chain(std::iter::once(&report.total)) {
        let key = match (std::ptr::eq(row, &report.total), report.by, zh) {
            (true, _, true) => "合计".to_string(),
            (false, Grouping::Zone, true) => format!("分区 {}", row.key),
            (false, Grouping::Zone, false) => format!("zone {}", row.key),
            _ => row.key.clone(),
        };
        let mut cells = vec![
            key,
            row.incidents.to_string(),
            row.alarms.to_string(),
            opt(row.press_to_console.median_s),
            opt(row.press_to_console.p90_s),
            opt(row.press_to_first_offer.median_s),
            opt(row.press_to_first_offer.p90_s),
            opt(row.press_to_accepted.median_s),
            opt(row.press_to_accepted.p90_s),
            opt(row.press_to_on_scene.median_s),
            opt(row.press_to_on_scene.p90_s),
            row.nobody_going.to_string(),
            row.handed_to_120.to_string(),
            row.handed_to_110.to_string(),
            row.handed_to_119.to_string(),
            row.false_alarms.to_string(),
            row.cancelled.to_string(),
            row.closed_loop_failures.to_string(),
            row.calls_in.to_string(),
        ];
        for s in &row.standards {
            cells.push(s.met.to_string());
            cells.push(s.missed.to_string());
            cells.push(s.pending.to_string());
            cells.push(s.share_pct.map(|p| format!("{p:.1}")).unwrap_or_default());
            cells.push(s.missed_ids.iter().map(|id| id.0.to_string()).collect::<Vec<_>>().join(" "));
        }
        let (p, o) = (&row.programme, &row.services);
        let yuan = |fen: u64| format!("{}.{:02}", fen / 100, fen % 100);
        for n in [
            p.calls_due,
            p.visits_due,
            p.done_on_time,
            p.done_late,
            p.open,
            p.open_overdue,
            p.well,
            p.needs_service,
            p.needs_help,
            p.no_answer,
            o.orders,
            o.accepted,
            o.unmatched,
            o.done,
            o.on_time,
            o.disputed,
            o.cancelled,
        ] {
            cells.push(n.to_string());
        }
        cells.push(yuan(o.subsidy_fen));
        cells.push(yuan(o.self_paid_fen));
        out.push_str(&cells.iter().map(|c| field(c)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out.into_bytes()
}
