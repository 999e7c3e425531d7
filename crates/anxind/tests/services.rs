//! The service lane over the real sockets and stores (issue 23): a dispatcher asks what a
//! cleaning would cost and places it over REST; it is offered to the best provider, whose
//! worker sees it on their phone and refuses; it goes to the next provider, whose worker
//! accepts with an appointment, sets off, is refused a check-in away from the door, checks in
//! at it and out with what was done; the dispatcher confirms it with the elder's rating. The
//! log and the row are in the store, an open order survives a restart with its offer, an
//! order over the allowance is refused until the self-paid part is agreed, and bad bodies are
//! refused and counted; a provider full for the day is passed over, a dispute is settled by a
//! dispatcher, and a worker at a door next to an emergency is never offered it by the ladder
//! but may be sent by a dispatcher, which takes them off their order. Runs on SQLite with the embedded broker, and on PostgreSQL and
//! Mosquitto when `ANXIN_TEST_POSTGRES_URL` and `ANXIN_TEST_MQTT_URL` name them.

#[macro_use]
#[allow(unused_macros)]
mod story;

use anxin_core::service::{Hours, ProviderOffer};
use anxin_core::{Provider, ProviderId, ResponderId, ServiceArea, StationId};
use serde_json::{json, Value};
use story::*;

/// The stories' district with two cleaning providers for elder e-1 (at 25.0050, 102.6905):
/// `p-cheap` (its station's circle, 40 yuan, worker `w-cheap`) and `p-dear` (a square drawn
/// around the home, 150 yuan, worker `w-dear`). e-1's need level is 1 (300 yuan a month).
fn district() -> anxin_core::Registry {
    let mut r = registry();
    let offer = |price_fen| ProviderOffer { category: "cleaning".into(), price_fen, daily_capacity: 5 };
    let (x, y) = (102.68, 24.99);
    r.providers = vec![
        Provider {
            id: ProviderId::parse("p-cheap").unwrap(),
            name: "好邻居家政".into(),
            phone: Some("087100000002".into()),
            offers: vec![offer(4_000)],
            area: ServiceArea::Stations { stations: vec![StationId::parse("st-qianwei").unwrap()] },
            hours: Hours::default(),
        },
        Provider {
            id: ProviderId::parse("p-dear").unwrap(),
            name: "金牌家政".into(),
            phone: None,
            offers: vec![offer(15_000)],
            area: ServiceArea::Polygon {
                coordinates: vec![vec![[x, y], [x + 0.03, y], [x + 0.03, y + 0.03], [x, y + 0.03], [x, y]]],
            },
            hours: Hours::default(),
        },
    ];
    for (id, provider) in [("w-cheap", "p-cheap"), ("w-dear", "p-dear")] {
        let mut w = r.responders[0].clone();
        w.id = ResponderId::parse(id).unwrap();
        w.name = format!("{id} 阿姨");
        w.skills = vec![];
        w.provider_id = Some(ProviderId::parse(provider).unwrap());
        // At e-1's door: nearer than anybody, were the ladder ever to offer a worker a job.
        w.position = anxin_core::Coordinates::new(25.0050, 102.6905).unwrap();
        w.token_sha256 = Some(anxin_api::token_sha256(&format!("token-{id}")));
        r.responders.push(w);
    }
    r.elders[0].profile.need_level = Some(1);
    r.elders[1].profile.need_level = Some(3);
    r
}

fn cleaning(elder: &str, from: i64) -> Value {
    json!({"elder_id": elder, "category": "cleaning", "from": from, "to": from + 4 * 3_600_000,
           "notes": "厨房和卫生间", "source": {"from": "dispatcher"}})
}

/// The next `hello` on a worker's phone whose orders satisfy `ok`.
async fn worker_hello(phone: &mut TestConsole, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let wait = async {
        loop {
            let m = phone.next().await;
            if m["type"] == "hello" && ok(&m["responder"]["worker"]) {
                return m["responder"]["worker"].clone();
            }
        }
    };
    tokio::time::timeout(WAIT, wait).await.unwrap_or_else(|_| panic!("{what}: no such hello"))
}

/// The next `order` frame on a console whose order is in `state`.
async fn order_frame(console: &mut TestConsole, state: &str) -> Value {
    let wait = async {
        loop {
            let m = console.next().await;
            if m["type"] == "order" && m["order"]["state"] == state {
                return m["order"].clone();
            }
        }
    };
    tokio::time::timeout(WAIT, wait).await.unwrap_or_else(|_| panic!("no order frame {state}"))
}

async fn post(app: &TestApp, cookie: &str, path: &str, body: &Value) -> (u16, Value) {
    let (status, text) = http_request(app.http, "POST", path, &[("Cookie", cookie)], &body.to_string()).await;
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn open_orders(app: &TestApp, cookie: &str) -> Vec<Value> {
    let (status, text) = http_request(app.http, "GET", "/api/v1/services/orders", &[("Cookie", cookie)], "").await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str::<Value>(&text).unwrap()["orders"].as_array().unwrap().clone()
}

async fn a_service_order_goes_to_the_door_and_is_confirmed(backend: Backend, client_id: String) {
    let app = spawn_app_from(&backend, &client_id, district(), |_| {}, anxind::clock::Clock::System).await;
    let cookie = sign_in(app.http, "wang").await;
    let tomorrow = anxin_proto::wall_clock_now().millis() + 24 * 3_600_000;
    let (status, text) =
        http_request(app.http, "GET", "/api/v1/services/catalogue", &[("Cookie", cookie.as_str())], "").await;
    let catalogue: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(catalogue["categories"].as_array().unwrap().len(), 16, "the default categories");
    assert_eq!(catalogue["providers"][0]["id"], "p-cheap");
    assert_eq!(catalogue["monthly_allowance_fen"], json!([30_000, 20_000, 10_000]));
    // Who could take it, and what e-1 pays: the dearer provider's price, within 300 yuan.
    let (status, quote) = post(&app, &cookie, "/api/v1/services/quote", &cleaning("e-1", tomorrow)).await;
    assert_eq!(status, 200, "{quote}");
    assert_eq!(quote["providers"], json!(["p-cheap", "p-dear"]), "{quote}");
    assert_eq!((quote["price_fen"].as_u64(), quote["self_paid_fen"].as_u64()), (Some(15_000), Some(0)));
    let mut console = TestConsole::connect(app.http, None).await;
    assert_eq!(console.next().await["type"], "snapshot");
    let mut cheap = TestConsole::connect_with_token(app.http, "token-w-cheap").await;
    let mut dear = TestConsole::connect_with_token(app.http, "token-w-dear").await;
    worker_hello(&mut cheap, "sign-in", |w| w["provider_id"] == "p-cheap").await;
    worker_hello(&mut dear, "sign-in", |w| w["provider_id"] == "p-dear").await;

    let (status, placed) = post(&app, &cookie, "/api/v1/services/orders", &cleaning("e-1", tomorrow)).await;
    assert_eq!(status, 201, "{placed}");
    let id = placed["id"].as_u64().unwrap();
    let offered =
        worker_hello(&mut cheap, "the offer", |w| w["orders"].as_array().is_some_and(|o| !o.is_empty())).await;
    assert_eq!(offered["orders"][0]["order"]["id"], id);
    assert_eq!(offered["orders"][0]["order"]["state"], "offered");
    assert_eq!(offered["orders"][0]["elder_name"], "长者1");
    // The cheaper provider refuses; the order goes to the other.
    let refused =
        cheap.ask(json!({"type": "order", "order_id": id, "action": "refuse", "reason": "今天人手不够"})).await;
    assert_eq!(refused["ok"], true, "{refused}");
    worker_hello(&mut dear, "the offer passed on", |w| w["orders"][0]["order"]["id"] == id).await;
    let appointment = tomorrow + 3_600_000;
    let accepted =
        dear.ask(json!({"type": "order", "order_id": id, "action": "accept", "appointment_at": appointment})).await;
    assert_eq!(accepted["ok"], true, "{accepted}");
    assert_eq!(dear.ask(json!({"type": "order", "order_id": id, "action": "en_route"})).await["ok"], true);
    // 0.01° north of the home is over a kilometre away: refused with its code and distance.
    let far = dear
        .ask(json!({"type": "order", "order_id": id, "action": "check_in", "at": {"lat": 25.015, "lon": 102.6905}}))
        .await;
    assert_eq!((far["ok"].as_bool(), far["code"].as_str()), (Some(false), Some("out_of_radius")), "{far}");
    assert_eq!(far["args"]["radius_m"], "200", "{far}");
    let near = dear
        .ask(json!({"type": "order", "order_id": id, "action": "check_in", "at": {"lat": 25.0051, "lon": 102.6905}}))
        .await;
    assert_eq!(near["ok"], true, "{near}");
    let out = dear.ask(json!({"type": "order", "order_id": id, "action": "check_out", "done": "打扫厨房"})).await;
    assert_eq!(out["ok"], true, "{out}");
    // A responder who works for no provider is refused.
    let mut other = TestConsole::connect_with_token(app.http, "token-r-near").await;
    let _ = other.next().await;
    let not = other.ask(json!({"type": "order", "order_id": id, "action": "en_route"})).await;
    assert_eq!(not["code"], "not_a_worker", "{not}");

    let board = open_orders(&app, &cookie).await;
    let row = board.iter().find(|o| o["id"] == id).expect("on the board until confirmed");
    assert_eq!((row["state"].as_str(), row["provider_name"].as_str()), (Some("done"), Some("金牌家政")));
    assert_eq!((row["subsidy_fen"].as_u64(), row["self_paid_fen"].as_u64()), (Some(15_000), Some(0)));
    let path = format!("/api/v1/services/orders/{id}");
    let (status, _) = post(&app, &cookie, &path, &json!({"action": "confirm", "rating": 5, "comment": "很好"})).await;
    assert_eq!(status, 204);
    assert_eq!(order_frame(&mut console, "confirmed").await["rating"], 5);
    assert!(open_orders(&app, &cookie).await.iter().all(|o| o["id"] != id), "confirmed: off the board");
    let (status, again) = post(&app, &cookie, &path, &json!({"action": "confirm", "rating": 5})).await;
    assert_eq!((status, again["code"].as_str()), (404, Some("unknown_order")), "{again}");

    // The row and the log are stored.
    let stored = app.store.orders(&anxin_store::OrderQuery { limit: 10, ..Default::default() }).await.unwrap();
    let o = stored.iter().find(|o| o.id.0 == id).unwrap();
    assert_eq!(
        (o.state, o.rating, o.worker_id.as_ref().map(|w| w.as_str())),
        (anxin_core::OrderState::Confirmed, Some(5), Some("w-dear"))
    );
    let log = app.store.order_events(o.id).await.unwrap();
    let names: Vec<&str> = log.iter().map(|e| e.change.name()).collect();
    assert_eq!(
        names,
        ["placed", "offered", "declined", "offered", "accepted", "en_route", "checked_in", "checked_out", "confirmed"]
    );
    assert_eq!(log[2].actor, anxin_core::Actor::Responder(ResponderId::parse("w-cheap").unwrap()));

    // Over and off the board, its history is still there for a dispatcher: the order, every
    // step with who took it, and the names.
    let path = format!("/api/v1/services/orders/{id}");
    let (status, text) = http_request(app.http, "GET", &path, &[("Cookie", cookie.as_str())], "").await;
    assert_eq!(status, 200, "{text}");
    let history: Value = serde_json::from_str(&text).unwrap();
    assert_eq!((history["order"]["state"].as_str(), history["order"]["rating"].as_u64()), (Some("confirmed"), Some(5)));
    assert_eq!((history["elder_name"].as_str(), history["provider_name"].as_str()), (Some("长者1"), Some("金牌家政")));
    let steps: Vec<&str> =
        history["events"].as_array().unwrap().iter().map(|e| e["change"]["type"].as_str().unwrap()).collect();
    assert_eq!(steps, names, "the same log as stored");
    assert_eq!(history["events"][2]["actor"], json!({"type": "responder", "id": "w-cheap"}));
    assert_eq!(history["worker_names"]["w-cheap"], "w-cheap 阿姨", "{history}");
    let (status, unknown) =
        http_request(app.http, "GET", "/api/v1/services/orders/999", &[("Cookie", cookie.as_str())], "").await;
    assert_eq!(status, 404, "{unknown}");
    assert!(unknown.contains("unknown_order"), "{unknown}");
    assert_eq!(http_request(app.http, "GET", &path, &[], "").await.0, 401, "signed in only");

    // The month's statement, for supervisors: by provider as JSON, by elder as CSV.
    let (y, m, _) =
        anxin_core::service::civil_from_days(anxin_core::service::local_day(anxin_core::Timestamp(appointment), 480));
    let month = format!("{y:04}-{m:02}");
    let path = format!("/api/v1/services/statements?month={month}&by=provider");
    let (status, _) = http_request(app.http, "GET", &path, &[("Cookie", cookie.as_str())], "").await;
    assert_eq!(status, 403, "statements are supervisors'");
    let zhao = sign_in(app.http, "zhao").await;
    let (status, text) = http_request(app.http, "GET", &path, &[("Cookie", zhao.as_str())], "").await;
    assert_eq!(status, 200, "{text}");
    let statement: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(statement["groups"].as_array().unwrap().len(), 1, "only the provider that did it: {statement}");
    assert_eq!(statement["groups"][0]["name"], "金牌家政");
    assert_eq!(statement["total"]["subsidy_fen"], 15_000);
    assert_eq!(statement["total"]["confirmed"], 1);
    let csv_path = format!("/api/v1/services/statements?month={month}&by=elder&format=csv");
    let (status, csv) = http_request(app.http, "GET", &csv_path, &[("Cookie", zhao.as_str())], "").await;
    assert_eq!(status, 200);
    assert!(csv.starts_with('\u{feff}'), "a byte-order mark for Excel");
    assert!(csv.contains("长者1") && csv.contains("150.00") && csv.contains("合计"), "{csv}");
    let bad = "/api/v1/services/statements?month=2026-13";
    assert_eq!(http_request(app.http, "GET", bad, &[("Cookie", zhao.as_str())], "").await.0, 400);
    app.stop().await;
}

async fn orders_survive_a_restart_and_bad_requests_are_refused_and_counted(backend: Backend, client_id: String) {
    let app = spawn_app_from(&backend, &client_id, district(), |_| {}, anxind::clock::Clock::System).await;
    let cookie = sign_in(app.http, "wang").await;
    let tomorrow = anxin_proto::wall_clock_now().millis() + 24 * 3_600_000;
    // e-2 has 100 yuan a month; the dearer provider would leave 50 to pay.
    let (status, refused) = post(&app, &cookie, "/api/v1/services/orders", &cleaning("e-2", tomorrow)).await;
    assert_eq!((status, refused["code"].as_str()), (409, Some("self_paid_not_agreed")), "{refused}");
    assert_eq!(refused["args"]["self_paid_fen"], "5000", "{refused}");
    let mut agreed = cleaning("e-2", tomorrow);
    agreed["self_paid_agreed"] = json!(true);
    let (status, placed) = post(&app, &cookie, "/api/v1/services/orders", &agreed).await;
    assert_eq!(status, 201, "{placed}");
    let id = placed["id"].as_u64().unwrap();
    // Bad bodies and unknown categories.
    let (status, _) = post(&app, &cookie, "/api/v1/services/orders", &json!({"elder_id": "e-1"})).await;
    assert_eq!(status, 400);
    let mut juggling = cleaning("e-1", tomorrow);
    juggling["category"] = json!("juggling");
    let (status, bad) = post(&app, &cookie, "/api/v1/services/orders", &juggling).await;
    assert_eq!((status, bad["code"].as_str()), (422, Some("unknown_category")), "{bad}");
    let (status, _) = http_request(app.http, "GET", "/api/v1/services/orders", &[], "").await;
    assert_eq!(status, 401, "signed-in staff only");
    assert_eq!(app.metric("anxin_service_requests_total{result=\"bad_request\"}").await, 1.0);
    assert_eq!(app.metric("anxin_service_requests_total{result=\"refused\"}").await, 2.0);
    let before = open_orders(&app, &cookie).await;
    app.stop().await;

    let app = spawn_app_from(&backend, &client_id, district(), |_| {}, anxind::clock::Clock::System).await;
    let cookie = sign_in(app.http, "wang").await;
    let after = open_orders(&app, &cookie).await;
    assert_eq!(after, before, "the open order and its offer are as they were");
    assert_eq!(after.iter().filter(|o| o["id"] == id).count(), 1);
    // The next order is numbered on from the last.
    let (_, next) = post(&app, &cookie, "/api/v1/services/orders", &cleaning("e-1", tomorrow)).await;
    assert_eq!(next["id"].as_u64(), Some(id + 1), "{next}");
    app.stop().await;
}

/// A dispatcher's console issues a family link for `contact` of `elder`; the family page's
/// cookie it signs in to.
async fn family_cookie(app: &TestApp, console: &mut TestConsole, elder: &str, contact: &str) -> String {
    let answer =
        console.ask(json!({"type": "family_link", "elder_id": elder, "contact_id": contact, "action": "issue"})).await;
    let path = answer["link"]["path"].as_str().unwrap_or_else(|| panic!("a link: {answer}")).to_string();
    let token = path.strip_prefix("/family#t=").expect("a family link");
    let body = json!({"token": token}).to_string();
    let (status, head, text) = http_exchange(app.http, "POST", "/api/v1/family/session", &[], &body).await;
    assert_eq!(status, 200, "{text}");
    head.lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .map(|c| c.split(';').next().unwrap().to_string())
        .expect("a family cookie")
}

async fn a_family_orders_for_their_elder_and_confirms_it(backend: Backend, client_id: String) {
    let app = spawn_app_from(&backend, &client_id, district(), |_| {}, anxind::clock::Clock::System).await;
    let mut console = TestConsole::connect(app.http, None).await;
    assert_eq!(console.next().await["type"], "snapshot");
    let daughter = family_cookie(&app, &mut console, "e-1", "c1").await;
    let tomorrow = anxin_proto::wall_clock_now().millis() + 24 * 3_600_000;
    let (status, quote) = post(&app, &daughter, "/api/v1/family/quote", &cleaning("e-1", tomorrow)).await;
    assert_eq!((status, quote["self_paid_fen"].as_u64()), (200, Some(0)), "{quote}");
    // Another elder's order is not theirs to place.
    let (status, other) = post(&app, &daughter, "/api/v1/family/orders", &cleaning("e-2", tomorrow)).await;
    assert_eq!((status, other["code"].as_str()), (403, Some("not_allowed")), "{other}");
    let (status, placed) = post(&app, &daughter, "/api/v1/family/orders", &cleaning("e-1", tomorrow)).await;
    assert_eq!(status, 201, "{placed}");
    let id = placed["id"].as_u64().unwrap();
    let (status, text) = http_request(app.http, "GET", "/api/v1/family/orders", &[("Cookie", &daughter)], "").await;
    let theirs: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(status, 200, "{text}");
    assert_eq!(theirs["orders"][0]["id"], id);
    assert_eq!(theirs["orders"][0]["source"], json!({"from": "family", "contact": "c1"}), "who asked");
    // The worker does it.
    let mut cheap = TestConsole::connect_with_token(app.http, "token-w-cheap").await;
    worker_hello(&mut cheap, "the offer", |w| w["orders"][0]["order"]["id"] == id).await;
    for step in [
        json!({"type": "order", "order_id": id, "action": "accept", "appointment_at": tomorrow}),
        json!({"type": "order", "order_id": id, "action": "en_route"}),
        json!({"type": "order", "order_id": id, "action": "check_in", "at": {"lat": 25.0050, "lon": 102.6905}}),
        json!({"type": "order", "order_id": id, "action": "check_out", "done": "打扫"}),
    ] {
        let answer = cheap.ask(step.clone()).await;
        assert_eq!(answer["ok"], true, "{step}: {answer}");
    }
    // A family member may confirm, dispute or cancel, and nothing else.
    let path = format!("/api/v1/family/orders/{id}");
    let (status, note) = post(&app, &daughter, &path, &json!({"action": "note", "text": "谢谢"})).await;
    assert_eq!((status, note["code"].as_str()), (409, Some("wrong_state")), "{note}");
    let (status, _) = post(&app, &daughter, &path, &json!({"action": "confirm", "rating": 4, "comment": "可以"})).await;
    assert_eq!(status, 204);
    let stored = app.store.order_events(anxin_core::OrderId(id)).await.unwrap();
    let last = stored.last().unwrap();
    assert_eq!(last.actor, anxin_core::Actor::Family("c1".into()));
    assert!(matches!(last.change, anxin_core::OrderChange::Confirmed { rating: 4, .. }), "{last:?}");
    // Without the family cookie: refused.
    let (status, _) = http_request(app.http, "GET", "/api/v1/family/orders", &[], "").await;
    assert_eq!(status, 401);
    app.stop().await;
}

async fn a_full_day_a_dispute_and_a_worker_sent_to_an_emergency(backend: Backend, client_id: String) {
    let mut district = district();
    for p in &mut district.providers {
        p.offers[0].daily_capacity = 1;
    }
    let app = spawn_app_from(&backend, &client_id, district, |_| {}, anxind::clock::Clock::System).await;
    let cookie = sign_in(app.http, "wang").await;
    let mut console = TestConsole::connect(app.http, None).await;
    assert_eq!(console.next().await["type"], "snapshot");
    let tomorrow = anxin_proto::wall_clock_now().millis() + 24 * 3_600_000;
    // One cleaning a day each: the third order of the day finds both full.
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, placed) = post(&app, &cookie, "/api/v1/services/orders", &cleaning("e-1", tomorrow)).await;
        assert_eq!(status, 201, "{placed}");
        ids.push(placed["id"].as_u64().unwrap());
    }
    let board = open_orders(&app, &cookie).await;
    let state = |id: u64| board.iter().find(|o| o["id"] == id).cloned().unwrap();
    assert_eq!(
        (state(ids[0])["offered_to"].as_str(), state(ids[1])["offered_to"].as_str()),
        (Some("好邻居家政"), Some("金牌家政"))
    );
    assert_eq!(state(ids[2])["state"], "unmatched");
    assert!(state(ids[2])["unmatched_why"].as_str().unwrap().contains("2 are full that day"), "{}", state(ids[2]));

    // The dearer provider's worker does the second; the elder disputes it; a dispatcher settles.
    let mut dear = TestConsole::connect_with_token(app.http, "token-w-dear").await;
    worker_hello(&mut dear, "the offer", |w| w["orders"][0]["order"]["id"] == ids[1]).await;
    for step in [
        json!({"type": "order", "order_id": ids[1], "action": "accept", "appointment_at": tomorrow}),
        json!({"type": "order", "order_id": ids[1], "action": "en_route"}),
        json!({"type": "order", "order_id": ids[1], "action": "check_in", "at": {"lat": 25.0050, "lon": 102.6905}}),
        json!({"type": "order", "order_id": ids[1], "action": "check_out", "done": "打扫"}),
    ] {
        assert_eq!(dear.ask(step.clone()).await["ok"], true, "{step}");
    }
    let path = format!("/api/v1/services/orders/{}", ids[1]);
    let (status, early) = post(&app, &cookie, &path, &json!({"action": "settle", "outcome": "x"})).await;
    assert_eq!((status, early["code"].as_str()), (409, Some("wrong_state")), "nothing to settle yet: {early}");
    let (status, _) = post(&app, &cookie, &path, &json!({"action": "dispute", "reason": "只扫了客厅"})).await;
    assert_eq!(status, 204);
    let disputed = open_orders(&app, &cookie).await;
    let row = disputed.iter().find(|o| o["id"] == ids[1]).unwrap();
    assert_eq!((row["state"].as_str(), row["dispute"].as_str()), (Some("disputed"), Some("只扫了客厅")));
    let (status, _) = post(&app, &cookie, &path, &json!({"action": "settle", "outcome": "服务商上门返工"})).await;
    assert_eq!(status, 204);
    assert!(open_orders(&app, &cookie).await.iter().all(|o| o["id"] != ids[1]), "settled: off the board");

    // The cheaper provider's worker sets off on the first; an SOS next door is not offered to
    // them (they stand at the door, nearer than anybody), but a dispatcher may send them.
    let mut cheap = TestConsole::connect_with_token(app.http, "token-w-cheap").await;
    worker_hello(&mut cheap, "the offer", |w| w["orders"][0]["order"]["id"] == ids[0]).await;
    let accept = json!({"type": "order", "order_id": ids[0], "action": "accept", "appointment_at": tomorrow});
    assert_eq!(cheap.ask(accept).await["ok"], true);
    assert_eq!(cheap.ask(json!({"type": "order", "order_id": ids[0], "action": "en_route"})).await["ok"], true);
    let device = TestDevice::connect(&app, "d-1").await;
    device.press("sos-next-door", Some((25.0050, 102.6905, 10.0))).await;
    let delta = console.incident_for("d-1").await;
    let offered: Vec<&str> =
        delta["incident"]["offers"].as_array().unwrap().iter().filter_map(|o| o["responder"]["id"].as_str()).collect();
    assert_eq!(offered, ["r-near"], "the ladder offers no service worker");
    let incident = delta["incident"]["id"].as_u64().unwrap();
    let assign = json!({"type": "command", "incident_id": incident, "action": "assign", "responder_id": "w-cheap"});
    let answer = console.ask(assign).await;
    assert_eq!(answer["ok"], true, "{answer}");
    let wait = async {
        loop {
            let m = console.next().await;
            if m["type"] == "order" && m["order"]["id"] == ids[0] && m["order"].get("redirected_to").is_some() {
                return m["order"].clone();
            }
        }
    };
    let redirected = tokio::time::timeout(WAIT, wait).await.expect("the order is told it lost its worker");
    assert_eq!(redirected["state"], "accepted");
    assert_eq!((redirected["id"].as_u64(), redirected["redirected_to"].as_u64()), (Some(ids[0]), Some(incident)));
    assert!(redirected.get("worker_id").is_none(), "the order waits for another worker: {redirected}");
    let log = app.store.order_events(anxin_core::OrderId(ids[0])).await.unwrap();
    assert!(
        matches!(&log.last().unwrap().change, anxin_core::OrderChange::WorkerRedirected { incident: i, .. } if i.0 == incident),
        "{log:?}"
    );
    app.stop().await;
}

on_both_stores!(
    "services";
    a_full_day_a_dispute_and_a_worker_sent_to_an_emergency,
    a_service_order_goes_to_the_door_and_is_confirmed,
    orders_survive_a_restart_and_bad_requests_are_refused_and_counted,
    a_family_orders_for_their_elder_and_confirms_it,
);
