//! The SIP server's endpoint on a running anxind (embedded broker, SQLite): posts the way
//! Kamailio sends them (`deploy/sip/README.md`), a signed-in console watching. A known
//! caller's call rings on their device with their profile, an unknown caller's still reaches a
//! dispatcher, the dispatcher who answers takes the incident, and every call is on the stored
//! timeline. Bad posts are refused and counted; without a token the endpoint is not there.
//! A signed-in dispatcher gets SIP credentials for the console's softphone, signed with the
//! token as Kamailio's auth_ephemeral checks them.

#[macro_use]
#[allow(unused_macros)]
mod story;

use anxin_core::{Actor, CallEnd, Change, IncidentId};
use anxind::config::Secret;
use serde_json::{json, Value};
use story::*;

const TOKEN: &str = "telephony-token-for-tests";
const PATH: &str = "/api/v1/telephony/calls";

async fn post(app: &TestApp, token: Option<&str>, body: &str) -> (u16, Value) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b.as_str()));
    }
    let (status, body) = http_request(app.http, "POST", PATH, &headers, body).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

async fn event(app: &TestApp, body: Value) -> Value {
    let (status, answer) = post(app, Some(TOKEN), &body.to_string()).await;
    assert_eq!(status, 200, "{body} is taken: {answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_token_configured_there_is_no_telephony_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(&Backend::embedded(dir.path()), &unique("anxind", "telephony-off")).await;
    let ring = json!({"event": "ringing", "call_id": "c-1", "from": "13800000001", "to": "96110"});
    let (status, _) = post(&app, Some(TOKEN), &ring.to_string()).await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_ring_the_consoles_the_answerer_takes_them_and_the_timeline_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path());
    let app = spawn_app_with(&backend, &unique("anxind", "telephony"), |c| {
        c.telephony.token = Some(Secret::new(TOKEN));
    })
    .await;
    let mut console = TestConsole::connect(app.http, None).await;

    // Refused, counted, and nothing opens.
    let ring =
        json!({"event": "ringing", "call_id": "a84b4c76e66710@pc33", "from": "+86 138 0000 0001", "to": "96110"});
    assert_eq!(post(&app, None, &ring.to_string()).await.0, 401);
    assert_eq!(post(&app, Some("not-the-token-at-all"), &ring.to_string()).await.0, 401);
    let (status, why) = post(&app, Some(TOKEN), "{\"event\":\"ringing\"").await;
    assert_eq!(status, 422);
    assert!(why["error"].as_str().unwrap().contains("call_id"), "the error says what is expected: {why}");
    assert_eq!(post(&app, Some(TOKEN), &json!({"event": "transferred", "call_id": "x"}).to_string()).await.0, 422);
    let long = json!({"event": "ringing", "call_id": "x".repeat(300), "from": "1", "to": "2"});
    assert_eq!(post(&app, Some(TOKEN), &long.to_string()).await.0, 422);
    assert_eq!(app.metric("anxin_telephony_refused_total{reason=\"unauthorized\"}").await, 2.0);
    assert_eq!(app.metric("anxin_telephony_refused_total{reason=\"malformed\"}").await, 3.0);

    // 长者1 rings from her own phone: a call incident on her device, with her profile.
    let taken = event(&app, ring.clone()).await;
    assert_eq!(taken["outcome"], "opened");
    let id = IncidentId(taken["incident_id"].as_u64().expect("the incident's id"));
    let delta = console.incident_for("d-1").await;
    let incident = &delta["incident"];
    assert_eq!(incident["kind"], "call");
    assert_eq!(incident["elder"]["name"], "长者1");
    assert_eq!(incident["alarm"]["need"], "incoming_call");
    assert_eq!(incident["calls"][0]["caller"], "elder_phone");
    assert_eq!(incident["calls"][0]["from"], "+86 138 0000 0001");
    assert!(incident["calls"][0].get("answered_at").is_none(), "it rings: {incident}");
    // The INVITE retransmitted changes nothing.
    assert_eq!(event(&app, ring.clone()).await["outcome"], "duplicate");

    // wang picks up: the call is answered and the incident is his.
    let answered = json!({"event": "answered", "call_id": "a84b4c76e66710@pc33", "by": "wang"});
    assert_eq!(event(&app, answered).await, json!({"outcome": "recorded", "incident_id": id.0}));
    let incident = loop {
        let d = console.incident_for("d-1").await;
        if d["incident"]["claimed_by"]["id"] == "wang" {
            break d["incident"].clone();
        }
    };
    assert!(incident.get("alarm").is_none_or(Value::is_null), "nothing sounds while he talks: {incident}");
    assert_eq!(incident["calls"][0]["answered_by"], "wang");
    let ended = json!({"event": "ended", "call_id": "a84b4c76e66710@pc33", "reason": "bye"});
    assert_eq!(event(&app, ended.clone()).await["outcome"], "recorded");
    // Its end heard twice (or an end whose ringing was lost): nothing changes.
    assert_eq!(event(&app, ended).await, json!({"outcome": "unknown_call"}));

    // The stored timeline: the call rang from her number, wang answered and took it, it ended.
    let events = app.store.incident_events(id).await.unwrap();
    let rang = events.iter().find(|e| matches!(e.change, Change::CallRang { .. })).expect("call_rang is stored");
    assert!(matches!(&rang.change, Change::CallRang { from, .. } if from == "+86 138 0000 0001"));
    let answer = events.iter().find(|e| matches!(e.change, Change::CallAnswered { .. })).expect("call_answered");
    assert_eq!(answer.actor, Actor::Dispatcher("wang".into()));
    assert!(events.iter().any(|e| matches!(&e.change, Change::Claimed { by, .. } if by == "wang")));
    assert!(events.iter().any(|e| matches!(e.change, Change::CallEnded { reason: CallEnd::Bye, talk_s: Some(_), .. })));

    // A number nobody knows still reaches a dispatcher, with no elder and no place.
    let stranger = json!({"event": "ringing", "call_id": "c-2", "from": "13700009999", "to": "96110"});
    assert_eq!(event(&app, stranger).await["outcome"], "opened");
    let unknown = console.incident_for("call:13700009999").await;
    assert_eq!(unknown["incident"]["kind"], "call");
    assert_eq!(unknown["incident"]["location"]["source"], "unknown");
    assert_eq!(unknown["incident"]["calls"][0]["caller"], "unknown");
    let hung_up = json!({"event": "ended", "call_id": "c-2", "reason": "cancel"});
    event(&app, hung_up).await;
    let missed = console.incident_for("call:13700009999").await;
    assert_eq!(missed["incident"]["alarm"]["need"], "missed_call", "call back: {missed}");

    // wang calls the daughter back from 长者1's incident: on its timeline, by him.
    let dialled =
        json!({"event": "dialled", "call_id": "out-1@console", "by": "wang", "to": "13700000001", "incident_id": id.0});
    assert_eq!(event(&app, dialled).await, json!({"outcome": "recorded", "incident_id": id.0}));
    let calls = loop {
        let d = console.incident_for("d-1").await;
        if d["incident"]["calls"].as_array().is_some_and(|c| c.len() == 2) {
            break d["incident"]["calls"].clone();
        }
    };
    assert_eq!((calls[1]["caller"].as_str(), calls[1]["to"].as_str()), (Some("dispatcher"), Some("13700000001")));
    let none = json!({"event": "dialled", "call_id": "out-2@console", "by": "wang", "to": "120"});
    assert_eq!(event(&app, none).await, json!({"outcome": "no_incident"}));
    assert_eq!(
        post(&app, Some(TOKEN), &json!({"event": "dialled", "call_id": "x", "by": "", "to": "1"}).to_string()).await.0,
        422
    );
    // A transfer must say who and to where.
    for (by, to) in [("wang", ""), ("", "120")] {
        let bad = json!({"event": "transferred", "call_id": "x", "by": by, "to": to});
        let (status, why) = post(&app, Some(TOKEN), &bad.to_string()).await;
        assert_eq!(status, 422, "{why}");
        assert!(why["error"].as_str().unwrap().contains("transferred"), "{why}");
    }
    assert_eq!(app.metric("anxin_telephony_refused_total{reason=\"malformed\"}").await, 6.0);

    assert_eq!(app.metric("anxin_telephony_events_total{event=\"ringing\",outcome=\"opened\"}").await, 2.0);
    assert_eq!(app.metric("anxin_telephony_events_total{event=\"ringing\",outcome=\"duplicate\"}").await, 1.0);
    assert_eq!(app.metric("anxin_telephony_events_total{event=\"ended\",outcome=\"unknown_call\"}").await, 1.0);
    app.stop().await;
}

const CREDENTIALS: &str = "/api/v1/telephony/credentials";
const WS_URL: &str = "ws://127.0.0.1:5066";

async fn credentials(app: &TestApp, cookie: Option<&str>) -> (u16, Value) {
    let headers: Vec<(&str, &str)> = cookie.map(|c| vec![("Cookie", c)]).unwrap_or_default();
    let (status, body) = http_request(app.http, "GET", CREDENTIALS, &headers, "").await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_dispatcher_gets_sip_credentials_signed_with_the_token() {
    use base64::Engine as _;
    use hmac::Mac as _;

    // Telephony off, or on without a WebSocket for consoles: no softphone, no credentials.
    let with = |token: Option<&str>, ws_url: Option<&str>| {
        let (token, ws_url) = (token.map(Secret::new), ws_url.map(str::to_string));
        move |c: &mut anxind::config::Config| {
            c.telephony.token = token;
            c.telephony.ws_url = ws_url;
        }
    };
    for (name, token) in [("credentials-off", None), ("credentials-no-ws", Some(TOKEN))] {
        let dir = tempfile::tempdir().unwrap();
        let app = spawn_app_with(&Backend::embedded(dir.path()), &unique("anxind", name), with(token, None)).await;
        let wang = sign_in(app.http, "wang").await;
        assert_eq!(credentials(&app, Some(&wang)).await.0, 404, "{name}");
        app.stop().await;
    }

    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        &Backend::embedded(dir.path()),
        &unique("anxind", "credentials"),
        with(Some(TOKEN), Some(WS_URL)),
    )
    .await;
    assert_eq!(credentials(&app, None).await.0, 401, "not signed in");
    assert_eq!(credentials(&app, Some("anxin_session=not-a-session")).await.0, 401);
    let admin = sign_in(app.http, "kang").await;
    assert_eq!(credentials(&app, Some(&admin)).await.0, 403, "an administrator answers no calls");

    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    for staff in ["wang", "zhao"] {
        let cookie = sign_in(app.http, staff).await;
        let (status, c) = credentials(&app, Some(&cookie)).await;
        assert_eq!(status, 200, "{staff}: {c}");
        assert_eq!(c["ws_url"], WS_URL);
        assert_eq!(c["uri"], format!("sip:{staff}@anxin"));
        // "<expiry>:<staff id>", the expiry some hours ahead of now, in seconds.
        let username = c["username"].as_str().unwrap();
        let (expiry, user) = username.split_once(':').unwrap();
        assert_eq!(user, staff);
        let expiry: u64 = expiry.parse().unwrap();
        assert!(expiry >= before + 3600 && expiry <= before + 86_400, "{expiry} vs now {before}");
        assert_eq!(c["expires_at"].as_u64(), Some(expiry * 1000));
        // The password is base64(HMAC-SHA1(token, username)).
        let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(TOKEN.as_bytes()).unwrap();
        mac.update(username.as_bytes());
        let want = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(c["password"], want);
        // No TURN server configured: none named, media direct.
        assert!(c.get("turn_urls").is_none() && c.get("relay_only").is_none(), "{c}");
    }
    app.stop().await;

    // With TURN servers (coturn, same secret): named with the credentials, relay only.
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_with(&Backend::embedded(dir.path()), &unique("anxind", "credentials-turn"), |c| {
        c.telephony.token = Some(Secret::new(TOKEN));
        c.telephony.ws_url = Some(WS_URL.to_string());
        c.telephony.turn_urls = vec!["turn:127.0.0.1:3478".into()];
        c.telephony.ice_relay_only = true;
    })
    .await;
    let cookie = sign_in(app.http, "wang").await;
    let (status, c) = credentials(&app, Some(&cookie)).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["turn_urls"], serde_json::json!(["turn:127.0.0.1:3478"]));
    assert_eq!(c["relay_only"], true);
    app.stop().await;
}
