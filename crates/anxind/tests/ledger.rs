//! The live ledger over real endpoints and sockets (issue 20): an administrator enrols an
//! elder and a device that can press at once, edits are caught when two people edit the same
//! entry, what is live cannot be retired from under it, every change is logged with its
//! actor and survives a restart, and each role reaches only as far as it may; an import takes
//! a file over axum's default 2 MiB and refuses one over its own 128 MiB in JSON. Each story runs
//! on SQLite with the embedded broker, and on PostgreSQL and Mosquitto when
//! `ANXIN_TEST_POSTGRES_URL` and `ANXIN_TEST_MQTT_URL` name them (under `CI=true` it must).
//! A device enrolled through the API signs in and presses at once, and is refused once
//! retired, on the embedded broker and on a Mosquitto of the test's own with its
//! dynamic-security plugin (`../../anxin-mqtt/tests/support/dynsec_mosquitto.rs`, shared with
//! the provisioning test).

#[path = "../../anxin-mqtt/tests/support/dynsec_mosquitto.rs"]
mod dynsec_mosquitto;
#[macro_use]
#[allow(unused_macros)]
mod story;

use dynsec_mosquitto::{Mosquitto, ADMIN, ENGINE};

use serde_json::{json, Value};
use story::*;

/// A request as `cookie`'s holder: status, head, JSON body.
async fn call(
    app: &TestApp,
    cookie: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> (u16, String, Value) {
    let mut all = vec![("Cookie", cookie), ("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    let body = if body.is_null() { String::new() } else { body.to_string() };
    let (status, head, text) = http_exchange(app.http, method, path, &all, &body).await;
    (status, head, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn etag_of(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("etag: ").or_else(|| l.strip_prefix("ETag: ")))
        .expect("an ETag header")
        .trim()
        .to_string()
}

fn new_elder(id: &str) -> Value {
    json!({
        "id": id, "name": "新长者", "address": "西山区福海街道 9 号",
        "home": {"lat": 25.0060, "lon": 102.6920}, "phone": "13811112222", "notes": "",
        "profile": {"contacts": [{"name": "儿子", "relation": "儿子", "phone": "13711112222"}],
                    "station_id": "st-qianwei", "id_number": "11010519491231002X"}
    })
}

async fn enrolled_elder_and_device_press_at_once(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let admin = sign_in(app.http, "kang").await;
    let (status, head, body) = call(&app, &admin, "POST", "/api/v1/admin/elders", &[], new_elder("e-new")).await;
    assert_eq!(status, 201, "{body}");
    assert!(head.to_lowercase().contains("location: /api/v1/admin/elders/e-new"), "{head}");
    let (status, _, body) =
        call(&app, &admin, "POST", "/api/v1/admin/devices", &[], json!({"id": "d-new", "elder_id": "e-new"})).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["password"].as_str().map(str::len), Some(24), "a made-up password is shown once: {body}");

    // The new device presses: an incident, no restart.
    let mut console = TestConsole::connect(app.http, None).await;
    assert_eq!(console.next().await["type"], "snapshot");
    let device = TestDevice::connect(&app, "d-new").await;
    device.press("first-press", None).await;
    let delta = console.incident_for("d-new").await;
    assert_eq!(delta["incident"]["elder"]["name"], "新长者");
    assert_eq!(delta["incident"]["offers"][0]["responder"]["id"], "r-near");

    // Its log names who enrolled it.
    let (status, _, history) = call(&app, &admin, "GET", "/api/v1/admin/devices/d-new/history", &[], Value::Null).await;
    assert_eq!(status, 200, "{history}");
    assert_eq!(history["changes"][0]["action"], "created");
    assert_eq!(history["changes"][0]["actor"], "staff:kang");
    assert_eq!(history["incidents"][0]["device_id"], "d-new");

    // Not retired with its incident open; retired once it ends.
    let (_, head, _) = call(&app, &admin, "GET", "/api/v1/admin/devices/d-new", &[], Value::Null).await;
    let tag = etag_of(&head);
    let (status, _, body) =
        call(&app, &admin, "DELETE", "/api/v1/admin/devices/d-new", &[("If-Match", &tag)], Value::Null).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("open_incident")), "{body}");
    let id = delta["incident"]["id"].clone();
    let reason = "called back: pressed by mistake";
    let cancel = console.ask(json!({"type": "command", "incident_id": id, "action": "cancel", "reason": reason})).await;
    assert_eq!(cancel["ok"], true, "{cancel}");
    let ended = console.incident_for("d-new").await;
    assert_eq!(ended["incident"]["state"], "cancelled", "{ended}");
    let (status, _, body) =
        call(&app, &admin, "DELETE", "/api/v1/admin/devices/d-new", &[("If-Match", &tag)], Value::Null).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["action"], "retired");

    // The elder can be retired now that their only device is; the rest stays.
    let (_, head, _) = call(&app, &admin, "GET", "/api/v1/admin/elders/e-new", &[], Value::Null).await;
    let (status, _, body) =
        call(&app, &admin, "DELETE", "/api/v1/admin/elders/e-new", &[("If-Match", &etag_of(&head))], Value::Null).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, page) = call(&app, &admin, "GET", "/api/v1/admin/devices?retired=true", &[], Value::Null).await;
    assert_eq!(status, 200);
    assert!(
        page["items"].as_array().unwrap().iter().any(|i| i["entry"]["id"] == "d-new" && i["retired_at"].is_number()),
        "{page}"
    );
    let store = app.store.clone();
    app.stop().await;

    // After a restart the ledger is as it was left: the device still retired, its history kept.
    let app = spawn_app(&backend, &client_id).await;
    let admin = sign_in(app.http, "kang").await;
    let (_, _, page) = call(&app, &admin, "GET", "/api/v1/admin/devices", &[], Value::Null).await;
    assert!(!page["items"].as_array().unwrap().iter().any(|i| i["entry"]["id"] == "d-new"), "{page}");
    let (_, _, history) = call(&app, &admin, "GET", "/api/v1/admin/elders/e-new/history", &[], Value::Null).await;
    let actions: Vec<&str> =
        history["changes"].as_array().unwrap().iter().map(|c| c["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["retired", "created"]);
    drop(store);
    app.stop().await;
}

async fn concurrent_edits_are_caught(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let admin = sign_in(app.http, "kang").await;
    let (status, head, item) = call(&app, &admin, "GET", "/api/v1/admin/elders/e-2", &[], Value::Null).await;
    assert_eq!(status, 200, "{item}");
    let tag = etag_of(&head);
    assert_eq!(item["etag"], tag);

    // Without If-Match: refused, so nobody overwrites blind.
    let mut edited = item["entry"].clone();
    edited["phone"] = json!("13899990000");
    let (status, _, body) = call(&app, &admin, "PUT", "/api/v1/admin/elders/e-2", &[], edited.clone()).await;
    assert_eq!((status, body["code"].as_str()), (428, Some("if_match_required")));

    // Two people send the same tag at once: one wins, the other is told to read again.
    let mut other = item["entry"].clone();
    other["address"] = json!("西山区前卫街道 200 号");
    let matching = [("If-Match", tag.as_str())];
    let (a, b) = tokio::join!(
        call(&app, &admin, "PUT", "/api/v1/admin/elders/e-2", &matching, edited),
        call(&app, &admin, "PUT", "/api/v1/admin/elders/e-2", &matching, other),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 412], "{:?} {:?}", a.2, b.2);
    let loser = if a.0 == 412 { &a.2 } else { &b.2 };
    assert_eq!(loser["code"], "stale");
    let (_, head, now) = call(&app, &admin, "GET", "/api/v1/admin/elders/e-2", &[], Value::Null).await;
    let winner = if a.0 == 200 { &a.2 } else { &b.2 };
    assert_eq!(etag_of(&head), winner["etag"].as_str().unwrap(), "the winner's tag is the entry's now");
    assert_ne!(etag_of(&head), tag);
    let changed = now["entry"]["phone"] == "13899990000" || now["entry"]["address"] == "西山区前卫街道 200 号";
    assert!(changed, "{now}");

    // A bad entry is refused field by field, and changes nothing.
    let mut bad = now["entry"].clone();
    bad["name"] = json!("");
    bad["home"] = json!({"lat": 0.0, "lon": 0.0});
    bad["profile"]["contacts"] = json!([{"name": "", "relation": "女儿", "phone": "n/a"}]);
    let (status, _, body) =
        call(&app, &admin, "PUT", "/api/v1/admin/elders/e-2", &[("If-Match", &etag_of(&head))], bad).await;
    assert_eq!(status, 422, "{body}");
    let fields: Vec<&str> = body["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    for field in ["name", "home", "profile.contacts[0].name", "profile.contacts[0].phone"] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    let (status, _, body) =
        call(&app, &admin, "POST", "/api/v1/admin/devices", &[], json!({"id": "d-x", "elder_id": "e-nobody"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["fields"][0]["code"], "unknown_elder");
    let (status, _, body) = call(&app, &admin, "POST", "/api/v1/admin/elders", &[], new_elder("e-1")).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("exists")));
    app.stop().await;
}

async fn a_responder_on_a_job_is_not_retired(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let admin = sign_in(app.http, "kang").await;
    let mut console = TestConsole::connect(app.http, None).await;
    assert_eq!(console.next().await["type"], "snapshot");
    let device = TestDevice::connect(&app, "d-1").await;
    device.press("p-1", None).await;
    let delta = console.incident_for("d-1").await;
    assert_eq!(delta["incident"]["offers"][0]["responder"]["id"], "r-near");
    let (_, head, _) = call(&app, &admin, "GET", "/api/v1/admin/responders/r-near", &[], Value::Null).await;
    let (status, _, body) =
        call(&app, &admin, "DELETE", "/api/v1/admin/responders/r-near", &[("If-Match", &etag_of(&head))], Value::Null)
            .await;
    assert_eq!((status, body["code"].as_str()), (409, Some("on_job")), "{body}");
    // Nor the station they belong to.
    let (_, head, _) = call(&app, &admin, "GET", "/api/v1/admin/stations/st-qianwei", &[], Value::Null).await;
    let (status, _, body) = call(
        &app,
        &admin,
        "DELETE",
        "/api/v1/admin/stations/st-qianwei",
        &[("If-Match", &etag_of(&head))],
        Value::Null,
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (409, Some("has_responders")), "{body}");
    // The responder who is free can go, and their phone's token stops working at once.
    let (status, _) =
        http_request(app.http, "GET", "/api/v1/responder/me", &[("Authorization", "Bearer token-r-second")], "").await;
    assert_eq!(status, 200);
    let (_, head, _) = call(&app, &admin, "GET", "/api/v1/admin/responders/r-second", &[], Value::Null).await;
    let (status, _, body) = call(
        &app,
        &admin,
        "DELETE",
        "/api/v1/admin/responders/r-second",
        &[("If-Match", &etag_of(&head))],
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) =
        http_request(app.http, "GET", "/api/v1/responder/me", &[("Authorization", "Bearer token-r-second")], "").await;
    assert_eq!(status, 401, "a retired responder's token signs nobody in");
    // Consoles take them off the map at once, and a console opened now never sees them.
    let gone = tokio::time::timeout(WAIT, async {
        loop {
            let m = console.next().await;
            if m["type"] == "responder_retired" {
                return m;
            }
        }
    })
    .await
    .expect("the consoles are told the responder is retired");
    assert_eq!(gone["id"], "r-second", "{gone}");
    let dispatcher = sign_in(app.http, "li").await;
    let mut fresh = TestConsole::opening(app.http, &dispatcher, None, None).await;
    assert_eq!(fresh.next().await["type"], "welcome");
    let roster = fresh.next().await;
    assert_eq!(roster["type"], "roster", "{roster}");
    let ids: Vec<&str> = roster["responders"].as_array().unwrap().iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, ["r-near"], "{roster}");
    app.stop().await;
}

async fn each_role_reaches_only_its_own(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let (admin, supervisor, dispatcher) =
        (sign_in(app.http, "kang").await, sign_in(app.http, "zhao").await, sign_in(app.http, "wang").await);
    let list = "/api/v1/admin/elders?search=长者&limit=2";
    let (status, _, page) = call(&app, &admin, "GET", list, &[], Value::Null).await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 4, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "a page holds its limit");
    let (status, _, _) = call(&app, &supervisor, "GET", list, &[], Value::Null).await;
    assert_eq!(status, 200, "a supervisor sees the ledger");
    let (status, _, body) = call(&app, &supervisor, "POST", "/api/v1/admin/elders", &[], new_elder("e-sup")).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "but does not change it");
    let (status, _, _) = call(&app, &dispatcher, "GET", list, &[], Value::Null).await;
    assert_eq!(status, 403, "a dispatcher works incidents, not the ledger");
    let (status, _, _) = call(&app, "", "GET", list, &[], Value::Null).await;
    assert_eq!(status, 401);
    let (status, _) = http_request(app.http, "GET", list, &[("Authorization", "Bearer token-r-near")], "").await;
    assert_eq!(status, 401, "a responder's phone token is no session");
    // Staff passwords never leave.
    let (_, _, staff) = call(&app, &admin, "GET", "/api/v1/admin/staff", &[], Value::Null).await;
    assert!(staff["items"].as_array().unwrap().iter().all(|s| s["entry"]["password_hash"] == ""), "{staff}");

    // An admin's console socket is closed: admins see no incidents.
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/ws", app.http).into_client_request().unwrap();
    request.headers_mut().insert("Cookie", admin.parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let closed = tokio::time::timeout(WAIT, ws.next()).await.expect("closed at once");
    match closed {
        Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(frame)))) => {
            assert_eq!(u16::from(frame.code), 4403)
        }
        other => panic!("expected a close, got {other:?}"),
    }

    // A member of staff the admin enrols signs in at once; retired, their session ends.
    let body = json!({"id": "sun", "name": "孙调度", "role": "dispatcher", "password": "a-long-password"});
    let (status, _, created) = call(&app, &admin, "POST", "/api/v1/admin/staff", &[], body).await;
    assert_eq!(status, 201, "{created}");
    let sign_in_body = json!({"user": "sun", "password": "a-long-password"}).to_string();
    let (status, head, _) = http_exchange(app.http, "POST", "/api/v1/session", &[], &sign_in_body).await;
    assert_eq!(status, 200);
    let sun = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let (status, _) = http_request(app.http, "GET", "/api/v1/session", &[("Cookie", &sun)], "").await;
    assert_eq!(status, 200);
    let mut request = format!("ws://{}/ws", app.http).into_client_request().unwrap();
    request.headers_mut().insert("Cookie", sun.parse().unwrap());
    let (mut sun_console, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let first = tokio::time::timeout(WAIT, sun_console.next()).await.unwrap().unwrap().unwrap();
    assert!(first.to_text().unwrap().contains("welcome"), "{first:?}");
    let tag = created["etag"].as_str().unwrap().to_string();
    let (status, _, body) =
        call(&app, &admin, "DELETE", "/api/v1/admin/staff/sun", &[("If-Match", &tag)], Value::Null).await;
    assert_eq!(status, 200, "{body}");
    // Their open console closes at once: a retired member of staff sees and does nothing more.
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match sun_console.next().await {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => return frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close, got {other:?}"),
            }
        }
    })
    .await
    .expect("the console closes");
    assert_eq!(closed.map(|f| (u16::from(f.code), f.reason.to_string())), Some((4401, "signed_out".to_string())));
    let (status, _) = http_request(app.http, "GET", "/api/v1/session", &[("Cookie", &sun)], "").await;
    assert_eq!(status, 401, "a retired member of staff is signed out");
    let (status, _, _) = http_exchange(app.http, "POST", "/api/v1/session", &[], &sign_in_body).await;
    assert_eq!(status, 401, "and cannot sign in again");
    app.stop().await;
}

/// A district's spreadsheet, as a civil-affairs office hands it over: GBK CSV, Chinese
/// headers, one bad row of each kind the dry run must name.
fn district_csv() -> Vec<u8> {
    let text = "编号,姓名,地址,纬度,经度,联系电话,身份证号,所属站点\r\n\
                e-101,王秀英,西山区前卫街道 101 号,25.0051,102.6901,13800000101,11010519491231002X,st-qianwei\r\n\
                e-102,李桂兰,西山区前卫街道 102 号,25.0052,102.6902,13800000102,,st-qianwei\r\n\
                e-103,张淑珍,西山区前卫街道 103 号,,,13800000103,,st-qianwei\r\n\
                e-104,刘玉兰,西山区前卫街道 104 号,25.0054,102.6904,13800000104,110105194912310021,st-qianwei\r\n\
                e-105,陈凤英,西山区前卫街道 105 号,25.0055,102.6905,13800000101,,st-qianwei\r\n\
                e-106,杨秀珍,西山区前卫街道 106 号,25.0056,102.6906,13800000106,,st-nowhere\r\n";
    let (bytes, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable);
    bytes.into_owned()
}

async fn a_district_enrols_from_a_spreadsheet(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let admin = sign_in(app.http, "kang").await;
    let mapping = json!({"kind": "elders", "columns": {
        "id": "编号", "name": "姓名", "address": "地址", "home_lat": "纬度", "home_lon": "经度",
        "phone": "联系电话", "id_number": "身份证号", "station_id": "所属站点"}});
    let (status, _, body) = call(&app, &admin, "PUT", "/api/v1/admin/mappings/district", &[], mapping).await;
    assert_eq!(status, 204, "{body}");
    let file = district_csv();
    let upload = |apply: bool| {
        let path = format!("/api/v1/admin/imports?kind=elders&format=csv&mapping=district&wait=true&apply={apply}");
        let file = file.clone();
        let cookie = admin.clone();
        let http = app.http;
        async move {
            let (status, _, body) = http_exchange_bytes(http, "POST", &path, &[("Cookie", &cookie)], &file).await;
            let text = String::from_utf8_lossy(&body).to_string();
            assert_eq!(status, 200, "{text}");
            serde_json::from_str::<Value>(&text).unwrap()
        }
    };
    // The dry run names every bad row and why, and changes nothing.
    let dry = upload(false).await;
    assert_eq!(dry["state"], "done", "{dry}");
    let report = &dry["report"];
    assert_eq!(report["encoding"], "gbk", "detected: {report}");
    let problems: Vec<(u64, &str)> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["row"].as_u64().unwrap(), p["code"].as_str().unwrap()))
        .collect();
    for expected in [(4, "missing_home"), (5, "bad_id_number"), (6, "duplicate_phone"), (7, "unknown_station")] {
        assert!(problems.contains(&expected), "{expected:?} in {problems:?}");
    }
    assert_eq!(report["new"], 2, "{report}");
    let (_, _, page) = call(&app, &admin, "GET", "/api/v1/admin/elders?search=e-10", &[], Value::Null).await;
    assert_eq!(page["total"], 0, "a dry run changes nothing");

    // Applied: the good rows are in the ledger, logged as the admin's; again: nothing changes.
    let applied = upload(true).await;
    assert_eq!((applied["state"].as_str(), applied["applied"].as_u64()), (Some("done"), Some(2)), "{applied}");
    let (_, _, page) = call(&app, &admin, "GET", "/api/v1/admin/elders?search=e-10", &[], Value::Null).await;
    assert_eq!(page["total"], 2, "{page}");
    let again = upload(true).await;
    assert_eq!(again["report"]["unchanged"], 2, "{again}");
    assert_eq!(again["applied"], 0, "re-importing the same file changes nothing: {again}");
    let (_, _, history) = call(&app, &admin, "GET", "/api/v1/admin/elders/e-101/history", &[], Value::Null).await;
    assert_eq!(history["changes"].as_array().unwrap().len(), 1, "{history}");
    assert_eq!(history["changes"][0]["actor"], "staff:kang");

    // Exported in the same format, it reads back as the ledger.
    let (status, head, bytes) = http_exchange_bytes(
        app.http,
        "GET",
        "/api/v1/admin/exports/elders?format=csv&encoding=gbk",
        &[("Cookie", &admin)],
        &[],
    )
    .await;
    assert_eq!(status, 200);
    assert!(head.to_lowercase().contains("charset=gbk"), "{head}");
    let (text, _, bad) = encoding_rs::GBK.decode(&bytes);
    assert!(!bad);
    assert!(text.contains("王秀英") && text.contains("e-101"), "{text}");

    // As XLSX too: the ledger exported reads back through the import as all unchanged.
    let (status, _, xlsx) =
        http_exchange_bytes(app.http, "GET", "/api/v1/admin/exports/elders?format=xlsx", &[("Cookie", &admin)], &[])
            .await;
    assert_eq!(status, 200);
    assert_eq!(&xlsx[..2], b"PK", "an XLSX file is a zip");
    let path = "/api/v1/admin/imports?kind=elders&format=xlsx&wait=true";
    let (status, _, body) = http_exchange_bytes(app.http, "POST", path, &[("Cookie", &admin)], &xlsx).await;
    let job: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status, 200, "{job}");
    let report = &job["report"];
    assert_eq!((report["new"].as_u64(), report["changed"].as_u64()), (Some(0), Some(0)), "{report}");
    assert_eq!(report["unchanged"], 6, "the test registry's 4 elders and the 2 imported: {report}");
    assert_eq!(report["problems"], json!([]), "{report}");
    app.stop().await;
}

/// A line of an elder's notes; [`long_notes_csv`] gives each elder 40 of them.
const NOTE: &str = "独居，行动不便，使用助行器；备用钥匙在 3 楼邻居家。";

/// A district's elders in the default columns, each with long notes: `rows` of about 3 KiB.
fn long_notes_csv(rows: usize) -> Vec<u8> {
    let notes = NOTE.repeat(40);
    let mut csv = String::from("id,name,address,home_lat,home_lon,notes\r\n");
    for n in 0..rows {
        let (lat, lon) = (25.0 + (n % 100) as f64 * 0.0002, 102.69 + (n / 100) as f64 * 0.0002);
        csv.push_str(&format!("e-big-{n:04},长者{n},西山区前卫街道 {n} 号,{lat:.4},{lon:.4},{notes}\r\n"));
    }
    csv.into_bytes()
}

/// The head of an import as `cookie`'s holder (or nobody's), sent with the given framing
/// header, and whatever the server answers once it has it: status and JSON body. `body` is
/// what to send after the head, while the answer is read (the server may answer and close
/// before taking it all).
async fn import_head(app: &TestApp, cookie: Option<&str>, framing: String, body: Vec<Vec<u8>>) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let path = "/api/v1/admin/imports?kind=elders&format=csv&wait=true&apply=true";
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{framing}\r\n");
    if let Some(cookie) = cookie {
        head.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    head.push_str("\r\n");
    let (mut read, mut write) = tokio::net::TcpStream::connect(app.http).await.unwrap().into_split();
    write.write_all(head.as_bytes()).await.unwrap();
    // The rest is sent beside the reading; once the server has answered it may fail.
    let sending = tokio::spawn(async move {
        for part in body {
            if write.write_all(&part).await.is_err() {
                return;
            }
        }
        // Open until the answer is read: a closed side could end the exchange early.
        std::future::pending::<()>().await;
    });
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, read.read_to_end(&mut answer))
        .await
        .expect("an answer, without the server waiting for the whole body")
        .unwrap();
    sending.abort();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("a whole answer");
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    assert!(head.to_lowercase().contains("content-type: application/json"), "{head}");
    let status = head[9..12].parse().unwrap();
    (status, serde_json::from_slice(&answer[split + 4..]).unwrap())
}

/// A district's file may be far bigger than axum's default body limit of 2 MiB: the import
/// takes up to 128 MiB. A valid file over 2 MiB is imported and applied; one over 128 MiB is
/// refused with a JSON `413` naming the limit, by its `Content-Length` before a byte of it is
/// read, and, sent chunked with no length, once it passes the limit; nobody signed in is
/// refused before any of it is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_takes_files_up_to_128_mib_and_refuses_larger_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(&Backend::embedded(dir.path()), &unique("ledger", "import-limit")).await;
    let admin = sign_in(app.http, "kang").await;

    let rows = 800;
    let file = long_notes_csv(rows);
    assert!(file.len() > 2 << 20, "over axum's default limit: {} bytes", file.len());
    let columns = ["id", "name", "address", "home_lat", "home_lon", "notes"].map(|c| (c, json!(c)));
    let mapping = json!({"kind": "elders", "columns": serde_json::Map::from_iter(columns.map(|(k, v)| (k.into(), v)))});
    let (status, _, body) = call(&app, &admin, "PUT", "/api/v1/admin/mappings/notes", &[], mapping).await;
    assert_eq!(status, 204, "{body}");
    let path = "/api/v1/admin/imports?kind=elders&format=csv&mapping=notes&wait=true&apply=true";
    let (status, _, body) = http_exchange_bytes(app.http, "POST", path, &[("Cookie", &admin)], &file).await;
    let text = String::from_utf8_lossy(&body).to_string();
    assert_eq!(status, 200, "{text}");
    let job: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((job["state"].as_str(), job["applied"].as_u64()), (Some("done"), Some(rows as u64)), "{job}");
    assert_eq!(job["report"]["problems"], json!([]), "{job}");
    let (_, _, page) = call(&app, &admin, "GET", "/api/v1/admin/elders?search=e-big", &[], Value::Null).await;
    assert_eq!(page["total"], rows, "{page}");
    let (_, _, last) = call(&app, &admin, "GET", "/api/v1/admin/elders/e-big-0799", &[], Value::Null).await;
    assert_eq!(last["entry"]["notes"].as_str().map(|n| n.chars().count()), Some(NOTE.chars().count() * 40), "{last}");

    let limit = anxin_api::import::MAX_FILE_BYTES;
    assert_eq!(limit, 128 << 20);
    let too_large = json!({"code": "too_large", "error": "a file is at most 134217728 bytes (128 MiB)"});
    // Declared too large: refused at once, though no byte of the body is ever sent.
    let (status, answer) = import_head(&app, Some(&admin), format!("Content-Length: {}", limit + 1), vec![]).await;
    assert_eq!((status, &answer), (413, &too_large));
    // Nobody signed in: refused before the body is read, whatever its size.
    let (status, answer) = import_head(&app, None, format!("Content-Length: {limit}"), vec![]).await;
    assert_eq!((status, answer["code"].as_str()), (401, Some("no_session")), "{answer}");
    // Chunked, no length declared: refused once past the limit (129 chunks of 1 MiB).
    let mut chunk = format!("{:x}\r\n", 1 << 20).into_bytes();
    chunk.extend(std::iter::repeat_n(b'x', 1 << 20));
    chunk.extend_from_slice(b"\r\n");
    let chunks = vec![chunk; (limit >> 20) + 1];
    let (status, answer) = import_head(&app, Some(&admin), "Transfer-Encoding: chunked".into(), chunks).await;
    assert_eq!((status, &answer), (413, &too_large));
    let (_, _, page) = call(&app, &admin, "GET", "/api/v1/admin/elders?search=e-big", &[], Value::Null).await;
    assert_eq!(page["total"], rows, "nothing more imported: {page}");
    app.stop().await;
}

/// [`http_exchange`] with a body of bytes, and the answer's body as bytes.
async fn http_exchange_bytes(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let status = head[9..12].parse().unwrap();
    (status, head, buf[split + 4..].to_vec())
}

/// A device's own MQTT session, signed in with its password: `Err` with the broker's refusal.
/// The session's task ends when the broker closes the connection.
async fn device_session(app: &TestApp, id: &str, password: &str) -> Result<DeviceSession, String> {
    use anxin_mqtt::rumqttc::{AsyncClient, ConnectReturnCode, Event, MqttOptions, Packet};
    let mut opts = MqttOptions::new(id, app.mqtt.0.clone(), app.mqtt.1);
    opts.set_credentials(id, password);
    let (client, mut eventloop) = AsyncClient::new(opts, 16);
    let connected = tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => return Ok(()),
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return Err(format!("{:?}", ack.code)),
                Ok(_) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    })
    .await
    .map_err(|_| "no CONNACK".to_string())?;
    connected?;
    let open = tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    Ok(DeviceSession { client, open })
}

/// A device signed in: its client, and its connection's task (ends when the connection does).
struct DeviceSession {
    client: anxin_mqtt::rumqttc::AsyncClient,
    open: tokio::task::JoinHandle<()>,
}

/// The "done when" on whichever broker `app` runs with, provisioning its accounts: a
/// device an admin enrols through the API is refused before, signs in with the password the
/// API gave once it is enrolled (no restart) and presses, and a console sees the incident.
/// Once the incident is cancelled and the device retired (DELETE with If-Match), its live
/// connection is closed and its CONNECT refused.
async fn enrolled_signs_in_and_presses_and_retired_is_refused(app: &TestApp, broker: &str) {
    use anxin_mqtt::rumqttc::QoS;
    let admin = sign_in(app.http, "kang").await;
    assert!(device_session(app, "d-new", "whatever").await.is_err(), "not enrolled: refused");
    let mut console = TestConsole::connect(app.http, None).await;
    assert_eq!(console.next().await["type"], "snapshot");

    let enrolled = std::time::Instant::now();
    let (status, _, body) =
        call(app, &admin, "POST", "/api/v1/admin/devices", &[], json!({"id": "d-new", "elder_id": "e-3"})).await;
    assert_eq!(status, 201, "{body}");
    let password = body["password"].as_str().unwrap().to_string();
    // The broker is told right after the commit, off the engine's path: try until it knows.
    let session = loop {
        match device_session(app, "d-new", &password).await {
            Ok(s) => break s,
            Err(why) if enrolled.elapsed() < WAIT => {
                eprintln!("{broker}: not yet: {why}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(why) => panic!("{broker}: the enrolled device is refused: {why}"),
        }
    };
    eprintln!("{broker}: enrolled to signed in: {} ms", enrolled.elapsed().as_millis());
    let topic = format!("{}/v1/devices/d-new/events", app.topic_root);
    let press = json!({"msg_id": "p1", "type": "sos", "ts": anxin_proto::wall_clock_now().millis()});
    session.client.publish(topic, QoS::AtLeastOnce, false, press.to_string()).await.unwrap();
    let delta = console.incident_for("d-new").await;
    eprintln!("{broker}: enrolled to incident on the console: {} ms", enrolled.elapsed().as_millis());
    assert_eq!(delta["incident"]["elder"]["id"], "e-3");
    assert!(device_session(app, "d-new", "not-its-password").await.is_err(), "a wrong password is refused");

    // End the incident, retire the device: its connection closed, refused at CONNECT.
    let reason = "called back: a test";
    let answer = console
        .ask(json!({"type": "command", "incident_id": delta["incident"]["id"], "action": "cancel", "reason": reason}))
        .await;
    assert_eq!(answer["ok"], true, "{answer}");
    let (_, head, _) = call(app, &admin, "GET", "/api/v1/admin/devices/d-new", &[], Value::Null).await;
    let (status, _, body) =
        call(app, &admin, "DELETE", "/api/v1/admin/devices/d-new", &[("If-Match", &etag_of(&head))], Value::Null).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["action"], "retired");
    let retired = std::time::Instant::now();
    tokio::time::timeout(WAIT, session.open).await.expect("the retired device's live connection is closed").unwrap();
    loop {
        match device_session(app, "d-new", &password).await {
            Err(why) => {
                eprintln!("{broker}: retired to refused: {} ms ({why})", retired.elapsed().as_millis());
                break;
            }
            Ok(_) if retired.elapsed() < WAIT => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            Ok(_) => panic!("{broker}: a retired device still signs in"),
        }
    }
}

/// With accounts on the embedded broker, a device enrolled through the API signs in with the
/// password it was given and presses at once; retired, it is refused at CONNECT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_added_through_the_api_signs_in_at_once_and_retired_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let passwd = dir.path().join("passwd");
    let mut accounts = anxin_mqtt::PasswordFile::default();
    accounts.set("d-1", "d-1-password");
    std::fs::write(&passwd, accounts.to_text()).unwrap();
    let backend = Backend::embedded(dir.path());
    let app =
        spawn_app_with(&backend, &unique("ledger", "accounts"), |c| c.mqtt.embedded_accounts = Some(passwd.clone()))
            .await;
    enrolled_signs_in_and_presses_and_retired_is_refused(&app, "embedded").await;
    assert!(app.metric("anxin_mqtt_refused_total{reason=\"retired\"}").await >= 1.0);
    app.stop().await;
}

/// The same on Mosquitto with its dynamic-security plugin (a Mosquitto of the test's own,
/// `mqtt.provisioning = "dynsec"`): the engine signs in with its own account, anxind tells
/// the plugin of the device as the plugin's admin. Skips without Mosquitto, except under
/// `CI=true`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_mosquitto_a_device_added_through_the_api_signs_in_at_once_and_retired_is_refused() {
    use anxind::config::{Provisioning, Secret};
    let client_id = unique("ledger", "dynsec");
    let topics = anxin_mqtt::Topics::new(&client_id).unwrap();
    let Some(mosquitto) = Mosquitto::start(&topics).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend { broker: format!("mqtt://127.0.0.1:{}", mosquitto.port), ..Backend::embedded(dir.path()) };
    let app = spawn_app_with(&backend, &client_id, |c| {
        c.mqtt.username = Some(ENGINE.0.into());
        c.mqtt.password = Some(Secret::new(ENGINE.1));
        c.mqtt.provisioning = Some(Provisioning::Dynsec);
        c.mqtt.dynsec_username = Some(ADMIN.0.into());
        c.mqtt.dynsec_password = Some(Secret::new(ADMIN.1));
    })
    .await;
    enrolled_signs_in_and_presses_and_retired_is_refused(&app, "mosquitto (dynsec)").await;
    app.stop().await;
}

/// Zones (issue 25): one anxind runs every zone its ledger has stations in, numbering each
/// zone's incidents and events in that zone's range, and goes on with each zone's numbers
/// after a restart; the ledger takes a station only in a zone it runs.
async fn a_district_in_two_zones_runs_in_one_anxind(backend: Backend, client_id: String) {
    let z3 = anxin_core::Zone::new(3).unwrap();
    let mut zoned = registry();
    zoned.stations[1].zone = z3; // st-biji
    zoned.elders[3].profile.station_id = Some(zoned.stations[1].id.clone()); // e-4, in the hills
    let app = spawn_app_from(&backend, &client_id, zoned.clone(), |_| {}, anxind::clock::Clock::System).await;
    let mut console = TestConsole::connect(app.http, None).await;
    let snapshot = console.next().await;
    assert_eq!(snapshot["seqs"], json!([0, z3.base()]), "the feed stands at the start of both zones");
    let d4 = TestDevice::connect(&app, "d-4").await;
    d4.press("hills-1", None).await;
    let hills = console.incident_for("d-4").await;
    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("town-1", None).await;
    let town = console.incident_for("d-1").await;
    assert_eq!(hills["incident"]["id"], z3.base() + 1, "{hills}");
    assert_eq!(town["incident"]["id"], 1);
    let (hills_seq, town_seq) = (hills["seq"].as_u64().unwrap(), town["seq"].as_u64().unwrap());
    assert_eq!(anxin_core::Zone::of(hills_seq), z3);
    assert!(town_seq < z3.base(), "a zone-0 delta shown after zone 3's: {town_seq}");

    let admin = sign_in(app.http, "kang").await;
    let station = |id: &str, zone: u32| json!({"id": id, "name": id, "position": {"lat": 24.9, "lon": 102.6}, "phone": null, "service_circle_min": null, "zone": zone});
    let (status, _, body) = call(&app, &admin, "POST", "/api/v1/admin/stations", &[], station("st-z5", 5)).await;
    assert_eq!((status, body["fields"][0]["code"].as_str()), (422, Some("other_zone")), "{body}");
    let (status, _, body) = call(&app, &admin, "POST", "/api/v1/admin/stations", &[], station("st-z3", 3)).await;
    assert_eq!(status, 201, "{body}");
    app.stop().await;

    // A restart resumes both zones: each incident, each zone's place, each zone's numbers.
    let app = spawn_app_from(&backend, &client_id, zoned, |_| {}, anxind::clock::Clock::System).await;
    let mut console = TestConsole::connect(app.http, None).await;
    let snapshot = console.next().await;
    let seqs: Vec<u64> = snapshot["seqs"].as_array().unwrap().iter().map(|s| s.as_u64().unwrap()).collect();
    assert_eq!(seqs.len(), 2, "{snapshot}");
    assert!(seqs[0] >= town_seq && seqs[1] >= hills_seq && anxin_core::Zone::of(seqs[1]) == z3, "{seqs:?}");
    assert_eq!(snapshot["incidents"].as_array().unwrap().len(), 2);
    let d3 = TestDevice::connect(&app, "d-3").await;
    d3.press("town-2", None).await;
    assert_eq!(console.incident_for("d-3").await["incident"]["id"], 2);
    app.stop().await;
}

/// Sessions are kept in the store: a console signed in before a restart is still signed in
/// after it (a proxy sending a console to another node finds the same), a sign-out ends it in
/// the store too, and a new password ends every session opened under the old one, whichever
/// node reads it next.
async fn a_session_outlives_a_restart_and_ends_with_a_new_password(backend: Backend, client_id: String) {
    let app = spawn_app(&backend, &client_id).await;
    let (wang, li, admin) =
        (sign_in(app.http, "wang").await, sign_in(app.http, "li").await, sign_in(app.http, "kang").await);
    let me = |app: &TestApp, cookie: &str| {
        let (http, cookie) = (app.http, cookie.to_string());
        async move { http_request(http, "GET", "/api/v1/session", &[("Cookie", &cookie)], "").await }
    };
    assert_eq!(me(&app, &wang).await.0, 200);
    app.stop().await;

    let app = spawn_app(&backend, &client_id).await;
    let (status, body) = me(&app, &wang).await;
    assert_eq!(status, 200, "signed in across the restart: {body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["user"]["id"], "wang");
    let token = wang.split_once('=').unwrap().1;
    let stored = app.store.staff_session(&anxin_api::token_sha256(token)).await.unwrap();
    assert_eq!(stored.map(|s| s.staff_id), Some("wang".to_string()), "kept by its hash, never the token");

    // Signing out ends it in the store: after another restart it is still ended.
    let (status, _) = http_request(app.http, "DELETE", "/api/v1/session", &[("Cookie", &wang)], "").await;
    assert_eq!(status, 204);
    assert_eq!(app.store.staff_session(&anxin_api::token_sha256(token)).await.unwrap(), None);

    // Li's password is changed by the admin: her session opened under the old one ends.
    let (status, head, item) = call(&app, &admin, "GET", "/api/v1/admin/staff/li", &[], Value::Null).await;
    assert_eq!(status, 200, "{item}");
    let entry = &item["entry"];
    let edited = json!({"id": "li", "name": entry["name"], "role": entry["role"], "password": "a-new-long-password"});
    let (status, _, body) =
        call(&app, &admin, "PUT", "/api/v1/admin/staff/li", &[("If-Match", &etag_of(&head))], edited).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(me(&app, &li).await.0, 401, "a new password signs the old session out");
    // Started again on the ledger as stored (the stories' own would put the old password back).
    let ledger = app.store.load_registry().await.unwrap();
    app.stop().await;

    let app = spawn_app_from(&backend, &client_id, ledger, |_| {}, anxind::clock::Clock::System).await;
    assert_eq!(me(&app, &wang).await.0, 401, "signed out stays signed out");
    assert_eq!(me(&app, &li).await.0, 401, "and so does a session under an old password");
    assert_eq!(me(&app, &admin).await.0, 200, "the admin's session is untouched");
    app.stop().await;
}

on_both_stores!("ledger";
    enrolled_elder_and_device_press_at_once,
    concurrent_edits_are_caught,
    a_responder_on_a_job_is_not_retired,
    each_role_reaches_only_its_own,
    a_district_enrols_from_a_spreadsheet,
    a_district_in_two_zones_runs_in_one_anxind,
    a_session_outlives_a_restart_and_ends_with_a_new_password,
);
