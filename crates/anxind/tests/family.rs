//! Families over real sockets and endpoints (issue 19, point 6): a dispatcher issues a
//! contact's link, the contact signs in with it and sees their own elder's incidents and
//! nothing else, answers, and is refused everything that is not theirs; guessed and revoked
//! tokens do not sign in, and guessing is slowed.

#[allow(unused_macros)]
mod story;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use story::*;
use tokio_tungstenite::tungstenite::Message;

/// A dispatcher's console issues a link for `contact` of `elder`; the token in it.
async fn issue(console: &mut TestConsole, elder: &str, contact: &str) -> String {
    let answer =
        console.ask(json!({"type": "family_link", "elder_id": elder, "contact_id": contact, "action": "issue"})).await;
    assert_eq!(answer["ok"], true, "{answer}");
    let path = answer["link"]["path"].as_str().expect("the link is shown once").to_string();
    let token = path.strip_prefix("/family#t=").expect("a family link").to_string();
    assert_eq!(token.len(), 64, "32 random bytes in hex: {token}");
    token
}

/// `POST /api/v1/family/session` with a token: the status, the cookie it set, the body.
async fn family_sign_in(app: &TestApp, token: &str) -> (u16, Option<String>, Value) {
    let body = json!({"token": token}).to_string();
    let (status, head, answer) = http_exchange(app.http, "POST", "/api/v1/family/session", &[], &body).await;
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .map(|c| c.split(';').next().unwrap().to_string());
    (status, cookie, serde_json::from_str(&answer).unwrap_or(Value::Null))
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A family page's socket, with the frames that came while it waited for a `result`.
struct Page {
    ws: Socket,
    held: std::collections::VecDeque<(Value, String)>,
}

/// A family page's socket with its cookie.
async fn family_socket(app: &TestApp, cookie: &str) -> Page {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{}/ws?family=1", app.http).into_client_request().unwrap();
    request.headers_mut().insert("Cookie", cookie.parse().unwrap());
    let ws = tokio_tungstenite::connect_async(request).await.expect("the family socket opens").0;
    Page { ws, held: Default::default() }
}

/// The next frame but heartbeats (one held back first), as it came: the raw text too, to
/// look for leaks. Heartbeats do not extend the wait.
async fn next_frame(page: &mut Page) -> (Value, String) {
    if let Some(held) = page.held.pop_front() {
        return held;
    }
    tokio::time::timeout(WAIT, async {
        loop {
            match page.ws.next().await.expect("open").unwrap() {
                Message::Text(text) => {
                    let v: Value = serde_json::from_str(&text).unwrap();
                    if v["type"] == "heartbeat" {
                        assert_eq!(v["seq"], 0, "a family page is not told how busy the centre is");
                        continue;
                    }
                    return (v, text.to_string());
                }
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => {}
            }
        }
    })
    .await
    .expect("a frame arrives")
}

/// Waits for the socket to be closed, and returns the close code and reason.
async fn closed(page: &mut Page) -> (u16, String) {
    loop {
        match tokio::time::timeout(WAIT, page.ws.next()).await.expect("closes in time") {
            Some(Ok(Message::Close(Some(frame)))) => return (frame.code.into(), frame.reason.to_string()),
            Some(Ok(_)) => {}
            other => panic!("closed without a close frame: {other:?}"),
        }
    }
}

/// Sends a frame and returns its `result`; frames that come meanwhile are held.
async fn ask(page: &mut Page, frame: Value) -> Value {
    page.ws.send(Message::Text(frame.to_string().into())).await.unwrap();
    let mut seen = Vec::new();
    let result = loop {
        let (v, text) = next_frame(page).await;
        if v["type"] == "result" {
            break v;
        }
        seen.push((v, text));
    };
    page.held.extend(seen);
    result
}

/// What a family page must never be sent about this registry: the other elders' names,
/// ids, devices and phones, staff, responders' phones and the elder's health record.
const NEVER: [&str; 12] = [
    "长者2",
    "e-2",
    "d-2",
    "13800000002",
    "长者3",
    "wang",
    "13900000001",
    "r-near",
    "氨氯地平",
    "高血压",
    "门禁",
    "13700000001",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_family_sees_only_its_own_elder_and_its_answers_reach_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(&Backend::embedded(dir.path()), &unique("anxind", "family-sees")).await;
    let mut console = TestConsole::connect(app.http, None).await;
    assert_eq!(console.next().await["type"], "snapshot");
    let token = issue(&mut console, "e-1", "c1").await;
    let (status, cookie, body) = family_sign_in(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["member"],
        json!({"elder_id": "e-1", "elder_name": "长者1", "contact_id": "c1", "contact_name": "女儿1", "relation": "女儿"})
    );
    let cookie = cookie.expect("a cookie");
    assert!(cookie.starts_with("anxin_family="));
    let (status, _, again) = http_exchange(app.http, "GET", "/api/v1/family/session", &[("Cookie", &cookie)], "").await;
    assert_eq!(status, 200, "the cookie signs in: {again}");

    let mut page = family_socket(&app, &cookie).await;
    let (welcome, _) = next_frame(&mut page).await;
    assert_eq!(welcome["type"], "family_welcome", "{welcome}");
    assert_eq!(welcome["incidents"], json!([]), "no open incident yet");

    // Another elder presses first, and stays open; then the family's own elder.
    let d2 = TestDevice::connect(&app, "d-2").await;
    d2.press("other-elder", None).await;
    let other = console.incident_for("d-2").await["incident"]["id"].as_u64().unwrap();
    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("own-elder", None).await;
    let own = console.incident_for("d-1").await["incident"]["id"].as_u64().unwrap();

    let (frame, text) = next_frame(&mut page).await;
    assert_eq!(frame["type"], "family_incident", "{frame}");
    assert_eq!(frame["incident"]["id"], own, "the first frame is the family's own elder's: {frame}");
    assert_eq!(frame["incident"]["place"]["address"], "西山区前卫街道 1 号");
    for never in NEVER {
        assert!(!text.contains(never), "the family was sent {never:?}: {text}");
    }

    // Another elder's incident is refused as not open, like one that never was.
    for id in [other, 999_999] {
        let refused = ask(&mut page, json!({"type": "family_answer", "incident_id": id, "answer": "seen"})).await;
        assert_eq!(refused["ok"], false);
        assert_eq!(refused["code"], "incident_not_open", "{refused}");
        assert_eq!(refused["args"]["incident"], id.to_string());
    }
    // A family page may not act as a dispatcher, nor ask for another elder's history.
    let command = json!({"type": "command", "incident_id": own, "action": "claim"});
    assert_eq!(ask(&mut page, command).await["code"], "not_a_dispatcher");
    let history = json!({"type": "history", "elder_id": "e-2"});
    assert_eq!(ask(&mut page, history).await["code"], "not_a_dispatcher");
    let link = json!({"type": "family_link", "elder_id": "e-1", "contact_id": "c1", "action": "issue"});
    assert_eq!(ask(&mut page, link).await["code"], "not_a_dispatcher", "a contact cannot issue links");
    let going = json!({"type": "family_answer", "incident_id": own, "answer": "going"});
    assert_eq!(ask(&mut page, going).await["code"], "out_of_range", "going needs an ETA");

    // "I called: she is fine" reaches the console as its alarm.
    let fine = ask(&mut page, json!({"type": "family_answer", "incident_id": own, "answer": "fine"})).await;
    assert_eq!(fine["ok"], true, "{fine}");
    let delta = loop {
        let d = console.incident_for("d-1").await;
        if d["incident"]["alarm"]["need"] == "family_says_fine" {
            break d;
        }
    };
    assert_eq!(delta["incident"]["alarm"]["level"], "urgent");
    let answered = &delta["incident"]["family"]["contacts"][0];
    assert_eq!((answered["contact_id"].as_str(), answered["answer"]["type"].as_str()), (Some("c1"), Some("fine")));

    // The page hears its own answer; still nothing of the other elder.
    loop {
        let (frame, text) = next_frame(&mut page).await;
        for never in NEVER {
            assert!(!text.contains(never), "the family was sent {never:?}: {text}");
        }
        assert_eq!(frame["incident"]["id"], own, "{frame}");
        if frame["incident"]["contacts"][0]["answer"]["type"] == "fine" {
            break;
        }
    }
    // The other elder's incident changes meanwhile: a dispatcher notes it; nothing comes.
    let note = json!({"type": "command", "incident_id": other, "action": "note", "text": "邻居已到"});
    assert_eq!(console.ask(note).await["ok"], true);
    let history = ask(&mut page, json!({"type": "family_history"})).await;
    assert_eq!(history["ok"], true, "{history}");
    let past: Vec<u64> = history["past"].as_array().unwrap().iter().map(|i| i["id"].as_u64().unwrap()).collect();
    assert_eq!(past, [own], "only the family's own elder's incidents");
    assert!(page.held.iter().all(|(v, _)| v["incident"]["id"] == own), "{:?}", page.held);
    let leaked = tokio::time::timeout(std::time::Duration::from_millis(500), page.ws.next()).await;
    if let Ok(Some(Ok(Message::Text(text)))) = leaked {
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(
            v["type"] == "heartbeat" || v["incident"]["id"] == own,
            "another elder's change reached the family: {text}"
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessed_and_revoked_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(&Backend::embedded(dir.path()), &unique("anxind", "family-tokens")).await;
    let mut console = TestConsole::connect(app.http, None).await;
    assert_eq!(console.next().await["type"], "snapshot");

    // A guess (the right shape, never issued).
    let (status, cookie, body) = family_sign_in(&app, &"7".repeat(64)).await;
    assert_eq!((status, body["code"].as_str(), cookie), (401, Some("token_unknown"), None));

    // Only the hash is stored.
    let token = issue(&mut console, "e-1", "c1").await;
    let stored = app.store.family_token(&anxin_api::token_sha256(&token)).await.unwrap().expect("kept by its hash");
    assert_eq!(
        (stored.elder_id.as_str(), stored.contact_id.as_str(), stored.issued_by.as_str()),
        ("e-1", "c1", "wang")
    );
    assert!(app.store.family_token(&token).await.unwrap().is_none(), "the token itself is not kept");

    let (status, cookie, _) = family_sign_in(&app, &token).await;
    assert_eq!(status, 200);
    let cookie = cookie.unwrap();
    let mut page = family_socket(&app, &cookie).await;
    assert_eq!(next_frame(&mut page).await.0["type"], "family_welcome");

    // Push: no key configured here; a subscription is kept for the signed-in contact.
    let (status, key) = http_request(app.http, "GET", "/api/v1/family/push-key", &[], "").await;
    assert_eq!((status, key.as_str()), (200, r#"{"public_key":""}"#));
    let sub = json!({"endpoint": "https://push.example/abc", "expirationTime": null, "keys": {"p256dh": "BEl6", "auth": "tBHI"}});
    let path = "/api/v1/family/push-subscription";
    assert_eq!(http_request(app.http, "POST", path, &[], &sub.to_string()).await.0, 401, "signed in only");
    let plain = json!({"endpoint": "http://push.example/abc", "keys": {"p256dh": "BEl6", "auth": "tBHI"}});
    assert_eq!(http_request(app.http, "POST", path, &[("Cookie", &cookie)], &plain.to_string()).await.0, 400);
    assert_eq!(http_request(app.http, "POST", path, &[("Cookie", &cookie)], &sub.to_string()).await.0, 204);
    let e1 = anxin_core::ElderId::parse("e-1").unwrap();
    let kept = app.store.push_subscriptions(&e1, "c1").await.unwrap();
    assert_eq!((kept.len(), kept[0].endpoint.as_str(), kept[0].auth.as_str()), (1, "https://push.example/abc", "tBHI"));

    // Revoked from the console: the open page is closed, the token no longer signs in.
    let revoke = json!({"type": "family_link", "elder_id": "e-1", "contact_id": "c1", "action": "revoke"});
    assert_eq!(console.ask(revoke).await["ok"], true);
    assert_eq!(closed(&mut page).await, (4401, "token_revoked".to_string()));
    let (status, _, body) = family_sign_in(&app, &token).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("token_revoked")));
    let mut again = family_socket(&app, &cookie).await;
    assert_eq!(closed(&mut again).await, (4401, "signed_out".to_string()), "a revoked cookie opens no socket");

    // Re-issuing replaces: the newer link works and the one before stops.
    let first = issue(&mut console, "e-1", "c1").await;
    let second = issue(&mut console, "e-1", "c1").await;
    assert_eq!(family_sign_in(&app, &second).await.0, 200);
    let (status, _, body) = family_sign_in(&app, &first).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("token_revoked")));
    let links = console.ask(json!({"type": "family_links", "elder_id": "e-1"})).await;
    assert_eq!(links["links"].as_array().map(Vec::len), Some(1), "{links}");
    assert!(!links.to_string().contains(&second), "the token is shown only when issued");

    // A contact the elder does not have, and a responder's phone, cannot have links.
    let nobody = json!({"type": "family_link", "elder_id": "e-1", "contact_id": "c9", "action": "issue"});
    let refused = console.ask(nobody).await;
    assert_eq!(refused["code"], "no_such_contact", "{refused}");
    let mut phone = TestConsole::connect_with_token(app.http, "token-r-near").await;
    let links = json!({"type": "family_links", "elder_id": "e-1"});
    assert_eq!(phone.ask(links).await["code"], "not_a_dispatcher");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_tokens_is_slowed_like_dispatchers_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(&Backend::embedded(dir.path()), &unique("anxind", "family-limit")).await;
    let mut console = TestConsole::connect(app.http, None).await;
    assert_eq!(console.next().await["type"], "snapshot");
    let token = issue(&mut console, "e-1", "c1").await;
    for n in 0..anxin_api::auth::FREE_TRIES {
        let guess = format!("{n:064x}");
        assert_eq!(family_sign_in(&app, &guess).await.0, 401, "guess {n} is answered");
    }
    let (status, cookie, body) = family_sign_in(&app, &"e".repeat(64)).await;
    assert_eq!((status, body["code"].as_str(), cookie), (429, Some("too_many_tries"), None));
    assert!(body["retry_after_s"].as_u64().is_some_and(|s| s >= 1), "{body}");
    // While the address waits, even the right token is not looked at.
    assert_eq!(family_sign_in(&app, &token).await.0, 429);
    // Nor a cookie on the socket.
    let mut page = family_socket(&app, &format!("anxin_family={token}")).await;
    assert_eq!(closed(&mut page).await, (4401, "too_many_tries".to_string()));
    app.stop().await;
}
