//! A console's socket with a real server on port 0 and an engine the test answers by hand:
//! each command's answer is awaited off the read path, so the live feed and later commands
//! do not wait behind it.

use anxin_api::ws::{ConsoleSettings, ServerFrame};
use anxin_api::{ApiState, Hub, Reply, ResponderHub, Sessions, Timeline, TimelineUnavailable};
use anxin_core::{
    Coordinates, IncidentEvent, IncidentId, ResponderId, ResponderStatus, ResponderView, Staff, StaffRole, StationId,
    Timestamp, TravelMode,
};
use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// A store with no incidents in it.
struct NoTimeline;

impl Timeline for NoTimeline {
    fn incident_events(&self, _: IncidentId) -> BoxFuture<'_, Result<Vec<IncidentEvent>, TimelineUnavailable>> {
        Box::pin(std::future::ready(Ok(Vec::new())))
    }
}

fn responder(on_duty: bool) -> ResponderView {
    ResponderView {
        id: ResponderId::parse("r-1").unwrap(),
        name: "r-1".into(),
        station_id: StationId::parse("st-1").unwrap(),
        phone: None,
        mode: TravelMode::Foot,
        skills: Vec::new(),
        on_duty,
        status: if on_duty { ResponderStatus::Available } else { ResponderStatus::OffDuty },
        incident_id: None,
        position: Coordinates::new(25.0, 102.7).unwrap(),
        position_at: None,
        provider_id: None,
    }
}

type Console = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_frame(console: &mut Console) -> ServerFrame<'static> {
    loop {
        match console.next().await.expect("the socket stays open").expect("a frame") {
            Message::Text(text) => return ServerFrame::from_json(&text).expect("a server frame"),
            Message::Close(close) => panic!("closed: {close:?}"),
            _ => {}
        }
    }
}

/// A server on port 0 with an engine the test plays by hand, and a console signed in to it
/// that has read its opening frames.
struct Api {
    hub: Arc<Hub>,
    engine: mpsc::Receiver<anxin_api::Command>,
    console: Console,
    shutdown: CancellationToken,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    http: std::net::SocketAddr,
    token: String,
}

async fn spawn_api() -> Api {
    let hub = Arc::new(Hub::new("h-test".into(), anxin_api::Cursor::of([0]), Vec::new(), 64));
    // The engine: takes commands and answers only when the test says.
    let (commands, engine) = mpsc::channel(8);
    let staff = Staff {
        id: "wang".into(),
        name: "王芳".into(),
        role: StaffRole::Dispatcher,
        password_hash: anxin_api::hash_password("pw"),
    };
    let sessions = Arc::new(Sessions::new([staff]));
    let wang = sessions.check("wang", "pw").expect("signed in");
    let token = sessions.open(&wang).await.expect("opened");
    let shutdown = CancellationToken::new();
    let state = ApiState::new(
        hub.clone(),
        Arc::new(ResponderHub::default()),
        commands,
        prometheus::Registry::new(),
        Arc::new(Vec::new),
        shutdown.clone(),
        sessions,
        Arc::new(NoTimeline),
        ConsoleSettings {
            language: "zh-CN".into(),
            accept_target_s: 60,
            on_scene_target_min: 15,
            programme_overdue_after_h: 24,
            map: anxin_api::ws::MapSettings::none(),
        },
        Arc::new(|| Timestamp(1_763_000_000_000)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let server = tokio::spawn(anxin_api::serve(listener, anxin_api::router(state), shutdown.clone()));

    let mut request = format!("ws://{http}/ws").into_client_request().unwrap();
    request.headers_mut().insert("Cookie", format!("{}={token}", anxin_api::auth::SESSION_COOKIE).parse().unwrap());
    let (mut console, _) = tokio_tungstenite::connect_async(request).await.expect("console connects");
    match next_frame(&mut console).await {
        ServerFrame::Welcome(w) => assert_eq!(w.server_time, Timestamp(1_763_000_000_000), "the server's clock"),
        other => panic!("not a welcome: {other:?}"),
    }
    assert!(matches!(next_frame(&mut console).await, ServerFrame::Roster { .. }));
    match next_frame(&mut console).await {
        ServerFrame::Presence { online } => assert_eq!(online, ["wang"], "the console's own dispatcher is online"),
        other => panic!("not the presence: {other:?}"),
    }
    assert!(matches!(next_frame(&mut console).await, ServerFrame::Snapshot { .. }));
    let mut engine = engine;
    let told = engine.recv().await.expect("the engine is told who came online");
    assert_eq!(told.request, anxin_api::Request::Presence { online: true });
    assert_eq!(told.caller, anxin_api::Caller::Dispatcher { id: "wang".into(), supervisor: false });
    Api { hub, engine, console, shutdown, server, http, token }
}

async fn send(console: &mut Console, frame: &str) {
    console.send(Message::Text(frame.into())).await.unwrap();
}

#[tokio::test]
async fn a_consoles_feed_keeps_arriving_while_its_command_waits_for_an_answer() {
    let Api { hub, mut engine, mut console, shutdown, server, .. } = spawn_api().await;

    send(&mut console, r#"{"type":"command","incident_id":1,"action":"acknowledge","request_id":"held"}"#).await;
    let held = engine.recv().await.expect("the command reached the engine");
    assert_eq!(
        held.request,
        anxin_api::Request::Dispatch {
            incident: IncidentId(1),
            action: anxin_core::DispatcherAction::Acknowledge { alarm: None }
        }
    );

    // The answer is held back; the feed is not.
    hub.publish_responders([responder(true)]);
    match next_frame(&mut console).await {
        ServerFrame::Responder { responder } => assert!(responder.on_duty),
        other => panic!("the live feed waited behind the command: {other:?}"),
    }
    hub.publish_responders([responder(false)]);
    match next_frame(&mut console).await {
        ServerFrame::Responder { responder } => assert!(!responder.on_duty),
        other => panic!("the live feed waited behind the command: {other:?}"),
    }
    // A responder as already shown is not sent again: the next frame is the next change.
    hub.publish_responders([responder(false), responder(true)]);
    match next_frame(&mut console).await {
        ServerFrame::Responder { responder } => assert!(responder.on_duty, "the unchanged view was sent again"),
        other => panic!("the live feed waited behind the command: {other:?}"),
    }

    // And the answer still comes, to the frame that asked.
    held.reply.expect("a reply is wanted").send(Ok(Reply::Done)).unwrap();
    match next_frame(&mut console).await {
        ServerFrame::Result(result) => {
            assert_eq!(result.request_id.as_deref(), Some("held"));
            assert!(result.ok);
        }
        other => panic!("not the answer: {other:?}"),
    }

    shutdown.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_later_command_is_answered_while_an_earlier_one_waits() {
    let Api { mut engine, mut console, shutdown, server, .. } = spawn_api().await;
    send(&mut console, r#"{"type":"command","incident_id":1,"action":"claim","request_id":"first"}"#).await;
    let first = engine.recv().await.expect("the first command reached the engine");
    send(&mut console, r#"{"type":"command","incident_id":2,"action":"claim","request_id":"second"}"#).await;
    let second = engine.recv().await.expect("the second command reached the engine, the first still unanswered");
    let refused = anxin_api::Refused::new("incident_not_open", "incident 2 is not open").with("incident", 2);
    second.reply.expect("a reply is wanted").send(Err(refused)).unwrap();
    match next_frame(&mut console).await {
        ServerFrame::Result(result) => {
            assert_eq!(result.request_id.as_deref(), Some("second"), "answered before the first");
            assert_eq!(result.error.as_deref(), Some("incident 2 is not open"));
            assert_eq!(result.code.as_deref(), Some("incident_not_open"), "a code the page translates");
            assert_eq!(result.args.get("incident").map(String::as_str), Some("2"));
        }
        other => panic!("not the second's answer: {other:?}"),
    }
    first.reply.expect("a reply is wanted").send(Ok(Reply::Done)).unwrap();
    match next_frame(&mut console).await {
        ServerFrame::Result(result) => assert_eq!((result.request_id.as_deref(), result.ok), (Some("first"), true)),
        other => panic!("not the first's answer: {other:?}"),
    }
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

/// A second console of the same dispatcher changes nothing; when the last one closes, the
/// engine is told they are gone (their claims end if they stay away), and the other consoles
/// see who is online.
#[tokio::test]
async fn the_engine_and_the_other_consoles_learn_who_is_online() {
    let Api { mut engine, mut console, shutdown, server, http, token, .. } = spawn_api().await;
    let connect = || async {
        let mut request = format!("ws://{http}/ws").into_client_request().unwrap();
        request.headers_mut().insert("Cookie", format!("{}={token}", anxin_api::auth::SESSION_COOKIE).parse().unwrap());
        tokio_tungstenite::connect_async(request).await.expect("console connects").0
    };
    let mut second = connect().await;
    for _ in 0..4 {
        next_frame(&mut second).await; // welcome, roster, presence, snapshot
    }
    second.close(None).await.unwrap();
    // The first console is still open: the dispatcher is still online, and nobody is told.
    drop(second);
    console.close(None).await.unwrap();
    let told = engine.recv().await.expect("the engine is told");
    assert_eq!(told.request, anxin_api::Request::Presence { online: false }, "only the last console going counts");
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

/// A socket on which nothing happens still hears from the server every few seconds, so a page
/// can tell a quiet night from a stalled connection.
#[tokio::test]
async fn a_quiet_socket_hears_a_heartbeat_with_the_feeds_number() {
    let Api { hub, mut console, shutdown, server, .. } = spawn_api().await;
    match next_frame(&mut console).await {
        ServerFrame::Heartbeat { seq, seqs, server_time } => {
            assert_eq!(seqs, hub.cursor().seqs());
            assert_eq!(seq, hub.cursor().highest());
            assert_eq!(server_time, Timestamp(1_763_000_000_000));
        }
        other => panic!("not a heartbeat: {other:?}"),
    }
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

/// A console reconnecting with a `since` that does not read is sent a snapshot, which puts
/// it right, and the refusal is counted; one with a zone's place is replayed as before.
#[tokio::test]
async fn a_since_that_does_not_read_gets_a_snapshot_and_is_counted() {
    let Api { hub, shutdown, server, http, token, .. } = spawn_api().await;
    let token = &token;
    let connect = |since: &'static str| async move {
        let mut request = format!("ws://{http}/ws?since={since}").into_client_request().unwrap();
        request.headers_mut().insert("Cookie", format!("{}={token}", anxin_api::auth::SESSION_COOKIE).parse().unwrap());
        let mut console = tokio_tungstenite::connect_async(request).await.expect("console connects").0;
        for _ in 0..3 {
            next_frame(&mut console).await; // welcome, roster, presence
        }
        console
    };
    let mut bad = connect("12,13").await;
    assert!(matches!(next_frame(&mut bad).await, ServerFrame::Snapshot { .. }));
    let metrics = reqwest_free_get(http, "/metrics").await;
    assert!(metrics.contains(r#"anxin_ws_frames_rejected_total{reason="bad_since"} 1"#), "{metrics}");
    // A good one, at the hub's place: nothing to replay, so the next frame is a heartbeat.
    let at = hub.cursor().to_string();
    assert_eq!(at, "0");
    let mut good = connect("0").await;
    assert!(matches!(next_frame(&mut good).await, ServerFrame::Heartbeat { .. }));
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

/// `GET path`'s body, over a plain socket.
async fn reqwest_free_get(http: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(http).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    body
}
