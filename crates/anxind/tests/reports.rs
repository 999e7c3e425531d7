//! Supervisors' reports over a running anxind (issue 24, point 2): a press accepted from the
//! responder's phone shows in today's report as JSON and as CSV for Excel; a dispatcher is
//! refused, and a bad period gets a clear error that is counted; a district in two zones is
//! reported zone by zone. On SQLite with the embedded broker, and on PostgreSQL and Mosquitto
//! when the environment names them.

#[macro_use]
#[allow(unused_macros)]
mod story;

use serde_json::{json, Value};
use story::*;

/// Today at the centre (UTC+8, the default `dispatch.utc_offset_min`).
fn today() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    anxin_core::report::civil((now + 480 * 60_000).div_euclid(86_400_000))
}

/// Today's report as JSON, grouped `by`, asked for with the session `cookie`.
async fn todays_report(app: &TestApp, cookie: &str, by: &str) -> Value {
    let day = today();
    let path = format!("/api/v1/reports?from={day}&to={day}&by={by}");
    let (status, body) = http_request(app.http, "GET", &path, &[("Cookie", cookie)], "").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

async fn a_supervisor_reads_todays_report(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let bearer = ("Authorization", "Bearer token-r-near");
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("report-1", None).await;
    console.incident_for("d-1").await;
    let (_, body) = http_request(app.http, "GET", "/api/v1/responder/job", &[bearer], "").await;
    let id = serde_json::from_str::<Value>(&body).unwrap()["job"]["incident_id"].as_u64().unwrap();
    let accept = json!({"type": "accept", "incident_id": id, "request_id": "a1"}).to_string();
    let (status, body) = http_request(app.http, "POST", "/api/v1/responder/actions", &[bearer], &accept).await;
    assert_eq!(status, 200, "{body}");

    let day = today();
    let supervisor = sign_in(app.http, "zhao").await;
    let report = todays_report(&app, &supervisor, "day").await;
    assert_eq!(report["rows"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["rows"][0]["key"], day.as_str());
    let total = &report["total"];
    assert_eq!((total["incidents"].as_u64(), total["alarms"].as_u64()), (Some(1), Some(1)), "{total}");
    assert_eq!(total["press_to_accepted"]["count"], 1);
    let tsa = total["standards"].as_array().unwrap().iter().find(|s| s["standard"] == "tsa_60").unwrap();
    assert_eq!((tsa["met"].as_u64(), tsa["missed"].as_u64()), (Some(1), Some(0)), "accepted at once: {tsa}");
    let closed = total["standards"].as_array().unwrap().iter().find(|s| s["standard"] == "closed_loop").unwrap();
    assert_eq!(closed["pending"], 1, "nobody on scene yet, inside 30 minutes: {closed}");

    // The same as CSV for Excel: a byte-order mark, Chinese headers, the day and the total.
    let path = format!("/api/v1/reports?from={day}&to={day}&by=day&format=csv&lang=zh-CN");
    let (status, head, csv) = http_exchange(app.http, "GET", &path, &[("Cookie", &supervisor)], "").await;
    assert_eq!(status, 200);
    assert!(head.to_lowercase().contains("content-type: text/csv; charset=utf-8"), "{head}");
    assert!(head.contains("attachment; filename="), "{head}");
    assert!(csv.starts_with('\u{feff}'), "a BOM first, for Excel");
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("分组,事件数,警情数,"), "{}", lines[0]);
    assert!(
        lines[0].ends_with(",服务工单,已接单,无人接单,已完成,准时上门,争议中,已取消,补贴金额(元),自付金额(元)"),
        "{}",
        lines[0]
    );
    assert!(lines[2].ends_with(",0,0,0,0,0,0,0,0.00,0.00"), "no orders today: {}", lines[2]);
    assert!(lines[1].starts_with(&format!("{day},1,1,")), "{}", lines[1]);
    assert!(lines[2].starts_with("合计,1,1,"), "{}", lines[2]);

    // A dispatcher may not; nobody signed in may not; a bad period is refused and counted.
    let dispatcher = sign_in(app.http, "wang").await;
    let path = format!("/api/v1/reports?from={day}&to={day}");
    assert_eq!(http_request(app.http, "GET", &path, &[("Cookie", &dispatcher)], "").await.0, 403);
    assert_eq!(http_request(app.http, "GET", &path, &[], "").await.0, 401);
    let (status, body) =
        http_request(app.http, "GET", "/api/v1/reports?from=2025-02-30&to=2025-03-01", &[("Cookie", &supervisor)], "")
            .await;
    assert_eq!(status, 400);
    assert!(body.contains("2025-02-30"), "the error names what was wrong: {body}");
    let (status, body) =
        http_request(app.http, "GET", "/api/v1/reports?from=2025-03-02&to=2025-03-01", &[("Cookie", &supervisor)], "")
            .await;
    assert_eq!(status, 400);
    assert!(body.contains("to must come after from"), "{body}");
    let path = format!("/api/v1/reports?from={day}&to={day}&by=fortnight");
    let (status, body) = http_request(app.http, "GET", &path, &[("Cookie", &supervisor)], "").await;
    assert_eq!(status, 400);
    assert!(body.contains("shift, day, week, month, station, zone, none"), "the error lists what may be asked: {body}");
    assert_eq!(app.metric("anxin_report_requests_total{result=\"bad_request\"}").await, 3.0);
    assert_eq!(app.metric("anxin_report_requests_total{result=\"ok\"}").await, 2.0);
    assert_eq!(app.metric("anxin_report_requests_total{result=\"forbidden\"}").await, 2.0);

    // An event this build cannot read (a newer engine's, in a rolling upgrade) is passed over by
    // the fold before the next report, which still counts today's press, and it is counted.
    assert_eq!(app.metric("anxin_reports_unreadable_events_total").await, 0.0);
    let elsewhere = anxin_core::Zone::new(5).unwrap().base() + 1;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    run_sql(
        &backend.store_url,
        &format!(
            "INSERT INTO incident_events (seq, incident_id, at, actor, change, body) VALUES \
             ({elsewhere}, {elsewhere}, {now}, 'engine', 'from_a_newer_engine', '{{\"type\":\"from_a_newer_engine\"}}')"
        ),
    )
    .await;
    let again = todays_report(&app, &supervisor, "day").await;
    assert_eq!(again["total"]["incidents"], 1, "{again}");
    assert_eq!(app.metric("anxin_reports_unreadable_events_total").await, 1.0);
    app.stop().await;
}

/// Runs `sql` on the store at `url` beside the running anxind.
async fn run_sql(url: &str, sql: &str) {
    use sqlx::Connection;
    if url.starts_with("sqlite:") {
        let mut db = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut db).await.unwrap();
    } else {
        let mut db = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut db).await.unwrap();
    }
}

/// A district in two zones (st-biji and e-4, in the hills, in zone 1): today's report by zone
/// has a row for each, counting the incidents whose numbers carry it, and the CSV labels each
/// zone as people say it.
async fn a_supervisor_reads_todays_report_by_zone(backend: Backend, client_id: String) {
    let z1 = anxin_core::Zone::new(1).unwrap();
    let mut zoned = registry();
    zoned.stations[1].zone = z1; // st-biji
    zoned.elders[3].profile.station_id = Some(zoned.stations[1].id.clone()); // e-4
    let app = spawn_app_from(&backend, &client_id, zoned, |_| {}, anxind::clock::Clock::System).await;
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    for (device, msg) in [("d-1", "zone-0-a"), ("d-2", "zone-0-b"), ("d-4", "zone-1-a")] {
        TestDevice::connect(&app, device).await.press(msg, None).await;
        let shown = console.incident_for(device).await;
        let zone = if device == "d-4" { z1 } else { anxin_core::Zone::FIRST };
        assert_eq!(anxin_core::Zone::of(shown["incident"]["id"].as_u64().unwrap()), zone, "{shown}");
    }

    let day = today();
    let supervisor = sign_in(app.http, "zhao").await;
    let report = todays_report(&app, &supervisor, "zone").await;
    assert_eq!(report["by"], "zone");
    let rows: Vec<(&str, u64, u64)> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["key"].as_str().unwrap(), r["incidents"].as_u64().unwrap(), r["alarms"].as_u64().unwrap()))
        .collect();
    assert_eq!(rows, [("0", 2, 2), ("1", 1, 1)], "{report}");
    assert_eq!(report["total"]["incidents"], 3);

    for (lang, zone0, zone1, total) in
        [("en", "zone 0,2,2,", "zone 1,1,1,", "all,3,3,"), ("zh-CN", "分区 0,2,2,", "分区 1,1,1,", "合计,3,3,")]
    {
        let path = format!("/api/v1/reports?from={day}&to={day}&by=zone&format=csv&lang={lang}");
        let (status, head, csv) = http_exchange(app.http, "GET", &path, &[("Cookie", &supervisor)], "").await;
        assert_eq!(status, 200, "{csv}");
        assert!(head.contains(&format!("anxin-report-{day}-{day}-zone.csv")), "{head}");
        let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').lines().collect();
        assert_eq!(lines.len(), 4, "{csv}");
        assert!(lines[1].starts_with(zone0), "{lang}: {}", lines[1]);
        assert!(lines[2].starts_with(zone1), "{lang}: {}", lines[2]);
        assert!(lines[3].starts_with(total), "{lang}: {}", lines[3]);
    }
    app.stop().await;
}

on_both_stores!("rep"; a_supervisor_reads_todays_report, a_supervisor_reads_todays_report_by_zone);
