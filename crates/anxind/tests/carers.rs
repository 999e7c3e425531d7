//! Carers' visits over the real sockets (issue 21), on a clock the test moves by hand: a carer
//! signs in on the phone page's socket with their token; a check-in from too far is refused
//! with its code and leaves no row; one within the radius is logged and shown on their phone;
//! a carer silent past the visit's time raises a lone-worker incident on the consoles, which
//! "still here" closes; check-out ends the visit; the help button opens an SOS for the carer
//! that goes to another responder, and the elder's family is told of none of it. Each story
//! runs on SQLite with the embedded broker, and on PostgreSQL and Mosquitto when
//! `ANXIN_TEST_POSTGRES_URL` and `ANXIN_TEST_MQTT_URL` name them (under `CI=true` it must).

#[macro_use]
#[allow(unused_macros)]
mod story;

use anxin_core::{Change, IncidentId, ResponderId};
use serde_json::{json, Value};
use std::time::Duration;
use story::*;

const MIN: u64 = 60;

/// The stories' district with a carer, 周护理 (`c-zhou`, token `token-c-zhou`), 2 km away.
fn district() -> anxin_core::Registry {
    let mut r = registry();
    let mut carer = r.responders[0].clone();
    carer.id = ResponderId::parse("c-zhou").unwrap();
    carer.name = "周护理".into();
    carer.phone = Some("13800000009".into());
    carer.skills = vec!["carer".into()];
    carer.position = anxin_core::Coordinates::new(25.02, 102.70).unwrap();
    carer.token_sha256 = Some(anxin_api::token_sha256("token-c-zhou"));
    r.responders.push(carer);
    r
}

/// The next `hello` on a phone whose `carer` matches (within [`WAIT`]: the socket's
/// heartbeats would keep a plain wait going for ever).
async fn hello_where(phone: &mut TestConsole, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    let wait = async {
        loop {
            let m = phone.next().await;
            if m["type"] == "hello" && ok(&m["responder"]["carer"]) {
                return m["responder"]["carer"].clone();
            }
            assert!(m["type"] == "hello" || m["type"] == "job", "{what}: {m}");
        }
    };
    tokio::time::timeout(WAIT, wait).await.unwrap_or_else(|_| panic!("{what}: no such hello"))
}

/// The next delta of the carer's incidents whose state is `state`.
async fn carer_delta(console: &mut TestConsole, state: &str) -> Value {
    let wait = async {
        loop {
            let m = console.incident_for("carer:c-zhou").await;
            if m["incident"]["state"] == state {
                return m;
            }
        }
    };
    tokio::time::timeout(WAIT, wait).await.unwrap_or_else(|_| panic!("no carer's incident {state}"))
}

async fn a_carers_visit_is_checked_logged_and_watched(backend: Backend, client_id: String) {
    let clock = anxind::clock::ManualClock::starting_at(anxin_proto::wall_clock_now());
    let app =
        spawn_app_from(&backend, &client_id, district(), |_| {}, anxind::clock::Clock::Manual(clock.clone())).await;
    let mut console = TestConsole::connect(app.http, None).await;
    assert_eq!(console.next().await["type"], "snapshot");
    let mut phone = TestConsole::connect_with_token(app.http, "token-c-zhou").await;
    let carer = hello_where(&mut phone, "sign-in", |c| c.is_object()).await;
    assert_eq!(carer, json!({"checkin_radius_m": 200}), "a carer, on no visit");
    // A responder who is no carer gets no carer part, and is refused a visit.
    let mut other = TestConsole::connect_with_token(app.http, "token-r-near").await;
    let hello = other.next().await;
    assert!(hello["responder"].get("carer").is_none(), "{hello}");
    let refused = other
        .ask(json!({"type": "visit", "action": "check_in", "elder_id": "e-1", "lat": 25.005, "lon": 102.6905}))
        .await;
    assert_eq!((refused["ok"].as_bool(), refused["code"].as_str()), (Some(false), Some("not_a_carer")), "{refused}");

    // e-1 lives at (25.0050, 102.6905). From 0.003° north (about 334 m) the check-in is refused.
    let far = json!({"type": "visit", "action": "check_in", "elder_id": "e-1", "lat": 25.0080, "lon": 102.6905, "request_id": "far"});
    let refused = phone.ask(far).await;
    assert_eq!((refused["ok"].as_bool(), refused["code"].as_str()), (Some(false), Some("out_of_radius")), "{refused}");
    assert_eq!(
        (refused["args"]["distance_m"].as_str(), refused["args"]["radius_m"].as_str()),
        (Some("334"), Some("200"))
    );
    let c = ResponderId::parse("c-zhou").unwrap();
    let since = anxin_core::Timestamp(0);
    assert!(app.store.carer_visits(Some(&c), since, 10).await.unwrap().is_empty(), "nothing logged");

    // From the door it is taken: logged, and shown on the phone.
    let near = json!({"type": "visit", "action": "check_in", "elder_id": "e-1", "lat": 25.0051, "lon": 102.6905});
    let answer = phone.ask(near).await;
    assert_eq!(answer["ok"], true, "{answer}");
    let on_visit = hello_where(&mut phone, "checked in", |c| c["visit"].is_object()).await;
    assert_eq!(
        (on_visit["visit"]["elder_name"].as_str(), on_visit["visit"]["overdue"].as_bool()),
        (Some("长者1"), Some(false))
    );
    let logged = app.store.carer_visits(Some(&c), since, 10).await.unwrap();
    assert_eq!(logged.len(), 1);
    assert!(logged[0].is_open() && logged[0].distance_m < 20.0, "{logged:?}");

    // 90 minutes without a word: a lone-worker incident on the consoles, for a dispatcher.
    clock.advance(Duration::from_secs(90 * MIN));
    let alert = tokio::time::timeout(WAIT, console.incident_for("carer:c-zhou")).await.expect("a lone-worker alert");
    let i = &alert["incident"];
    assert_eq!(
        (i["kind"].as_str(), i["state"].as_str()),
        (Some("lone_worker"), Some("awaiting_dispatcher")),
        "{alert}"
    );
    assert_eq!((i["alarm"]["need"].as_str(), i["alarm"]["level"].as_str()), (Some("carer_overdue"), Some("urgent")));
    assert_eq!((i["carer"]["name"].as_str(), i["carer"]["phone"].as_str()), (Some("周护理"), Some("13800000009")));
    assert_eq!(i["elder"]["name"], "长者1", "at the visited elder's home");
    let alert_id = i["id"].as_u64().unwrap();
    // A console that connects now sees it too: the engine keeps the alarm, not the page.
    let mut late = TestConsole::connect(app.http, None).await;
    let snapshot = late.next().await;
    let shown = snapshot["incidents"].as_array().unwrap().iter().find(|i| i["id"] == alert_id).cloned();
    assert_eq!(shown.map(|i| i["alarm"]["need"].clone()), Some(json!("carer_overdue")), "{snapshot}");
    assert!(hello_where(&mut phone, "overdue", |c| c["visit"]["overdue"] == true).await.is_object());
    let stored = app.store.carer_visits(Some(&c), since, 10).await.unwrap();
    assert_eq!(stored[0].alert, Some(IncidentId(alert_id)));

    // The carer says they are still there: the alert ends by itself.
    let here = phone.ask(json!({"type": "visit", "action": "still_here", "lat": 25.0051, "lon": 102.6905})).await;
    assert_eq!(here["ok"], true, "{here}");
    let closed = carer_delta(&mut console, "closed").await;
    assert_eq!(closed["incident"]["outcome"], "the carer said they are still there");

    // Help: an SOS for the carer at the elder's home, offered to the nearest other responder.
    let help = phone.ask(json!({"type": "visit", "action": "help", "lat": 25.0051, "lon": 102.6905})).await;
    assert_eq!(help["ok"], true, "{help}");
    let sos = tokio::time::timeout(WAIT, console.incident_for("carer:c-zhou")).await.expect("the help");
    let i = &sos["incident"];
    assert_eq!((i["kind"].as_str(), i["carer"]["id"].as_str()), (Some("sos"), Some("c-zhou")), "{sos}");
    assert_eq!(i["state"], "offered", "the ladder starts at once");
    let offered = sos.clone();
    assert_eq!(offered["incident"]["offers"][0]["responder"]["id"], "r-near");
    let help_id = IncidentId(offered["incident"]["id"].as_u64().unwrap());
    let help_carer = hello_where(&mut phone, "help", |c| c["help"].is_u64()).await;
    assert_eq!(help_carer["help"].as_u64(), Some(help_id.0));
    // The elder's family is told of neither the alert nor the help.
    for id in [IncidentId(alert_id), help_id] {
        let events = app.store.incident_events(id).await.unwrap();
        assert!(!events.iter().any(|e| matches!(e.change, Change::FamilyTold { .. })), "{events:?}");
    }

    // Checking out ends the visit in the log.
    let out = phone.ask(json!({"type": "visit", "action": "check_out", "lat": 25.0052, "lon": 102.6906})).await;
    assert_eq!(out["ok"], true, "{out}");
    let log = app.store.carer_visits(Some(&c), since, 10).await.unwrap();
    assert!(!log[0].is_open() && log[0].overdue, "{log:?}");
    let again = phone.ask(json!({"type": "visit", "action": "check_out", "lat": 25.0052, "lon": 102.6906})).await;
    assert_eq!(again["code"], "no_visit", "{again}");
    app.stop().await;
}

on_both_stores!(
    "carers";
    a_carers_visit_is_checked_logged_and_watched,
);
