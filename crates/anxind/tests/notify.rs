//! Families' notifications end to end, on real parts: a running anxind (embedded broker,
//! SQLite), devices pressing over MQTT, and a real HTTP receiver on a loopback port standing
//! in for the operator's SMS gateway (`anxin_notify::testkit::TestGateway`), which checks
//! every request's signature and keeps what it took by idempotency key. Nothing here
//! asserts a timing.

#[macro_use]
#[allow(unused_macros)]
mod story;

use anxin_core::{Change, Channel, Delivery, FamilyAnswer, IncidentEvent, IncidentId, OutboxStatus};
use anxin_notify::testkit::TestGateway;
use anxind::config::Secret;
use anxind::Config;
use serde_json::json;
use std::time::Duration;
use story::*;

const GATEWAY_SECRET: &str = "gateway-secret-for-tests-0123";
const CALLBACK_SECRET: &str = "callback-secret-for-tests-4567";

/// The configuration that sends to `gateway`, retrying quickly.
fn to_gateway(gateway: &TestGateway, config: &mut Config) {
    let n = &mut config.notify;
    n.gateway_url = Some(gateway.url.clone());
    n.gateway_secret = Some(Secret::new(GATEWAY_SECRET));
    n.callback_secret = Some(Secret::new(CALLBACK_SECRET));
    n.retry_base_ms = 100;
    n.retry_cap_s = 1;
    n.poll_interval_ms = 50;
    n.request_timeout_ms = 2000;
}

/// Waits until `check` holds, polling; panics with `what` after `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn events(app: &TestApp, id: IncidentId) -> Vec<IncidentEvent> {
    app.store.incident_events(id).await.unwrap()
}

fn has_delivery(events: &[IncidentEvent], want: Delivery) -> bool {
    events.iter().any(|e| matches!(&e.change, Change::FamilyDelivery { delivery, .. } if *delivery == want))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_emergency_press_reaches_the_gateway_signed_with_its_key_in_chinese_naming_the_elder() {
    let gateway = TestGateway::start(GATEWAY_SECRET, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path());
    let app = spawn_app_with(&backend, &unique("anxind", "notify-press"), |c| to_gateway(&gateway, c)).await;
    let d1 = TestDevice::connect(&app, "d-1").await;
    d1.press("press-1", None).await;

    let log = gateway.wait_for(1, WAIT).await;
    assert_eq!(log.bad, 0, "every request was signed with the gateway's secret and carried its key");
    let (key, body) = log.bodies.iter().next().expect("the daughter's text reached the gateway");
    assert!(key.starts_with('n'), "the key is the family_told event's: {key}");
    assert_eq!(body.key, *key, "the Idempotency-Key header is the body's key");
    assert_eq!((body.elder_id.as_str(), body.contact.id.as_str(), body.to.as_str()), ("e-1", "c1", "13700000001"));
    assert_eq!((body.channel, body.language.as_str()), (Channel::Sms, "zh-CN"));
    assert!(body.text.contains("长者1") && body.text.contains("一键呼救"), "{}", body.text);
    assert!(body.contact.name.contains("女儿1"), "{:?}", body.contact);

    // The outbox and the incident both say it was sent.
    let id = body.incident_id;
    eventually(WAIT, "the notification is recorded sent", || async {
        app.store.notification(key).await.unwrap().is_some_and(|e| e.status == OutboxStatus::Sent)
    })
    .await;
    let sent = app.store.notification(key).await.unwrap().unwrap();
    assert_eq!((sent.sent_via, sent.attempts), (Some(Channel::Sms), 0));
    eventually(WAIT, "the incident logs the delivery as sent", || async {
        has_delivery(&events(&app, id).await, Delivery::Sent)
    })
    .await;
    assert_eq!(app.metric("anxin_notifications_queued_total{channel=\"sms\"}").await, 1.0);
    assert_eq!(app.metric("anxin_notifications_sent_total{channel=\"sms\"}").await, 1.0);
    assert_eq!(log.taken[key], 1, "sent once");
    app.stop().await;
}

/// The gateway refuses everything (HTTP 503) for a while, then recovers: every notification
/// arrives, once by its key. The 60 s outage runs with `ANXIN_NOTIFY_OUTAGE_S=60`;
/// by default the outage is 3 s, with the same checks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_refuses_everything_for_a_while_then_recovers_gets_every_notification_once() {
    let outage: u64 = std::env::var("ANXIN_NOTIFY_OUTAGE_S").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let gateway = TestGateway::start(GATEWAY_SECRET, Duration::ZERO).await;
    gateway.refuse(true);
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path());
    let app = spawn_app_with(&backend, &unique("anxind", "notify-outage"), |c| {
        to_gateway(&gateway, c);
        c.notify.retry_cap_s = 2;
        c.notify.give_up_after_s = outage + 600;
    })
    .await;
    for n in 1..=4 {
        TestDevice::connect(&app, &format!("d-{n}")).await.press(&format!("outage-{n}"), None).await;
    }
    eventually(WAIT, "the four notifications are stored", || async {
        app.store.notification_counts().await.unwrap().pending == 4
    })
    .await;
    // The outage itself: the scenario, not a wait for something to happen.
    tokio::time::sleep(Duration::from_secs(outage)).await;
    let during = gateway.log();
    assert!(during.refused >= 4, "every notification was tried during the outage: {during:?}");
    assert!(during.taken.is_empty());
    assert!(app.metric("anxin_notifications_failed_total{channel=\"sms\"}").await >= 4.0);
    assert!(app.metric("anxin_notifications_oldest_undelivered_seconds").await >= 0.0);

    gateway.refuse(false);
    eventually(WAIT, "every notification is sent after the gateway recovers", || async {
        let c = app.store.notification_counts().await.unwrap();
        c.pending == 0 && c.sent == 4
    })
    .await;
    let log = gateway.log();
    assert_eq!(log.taken.len(), 4, "none missing: {:?}", log.taken);
    assert!(log.taken.values().all(|n| *n == 1), "each taken once by its key: {:?}", log.taken);
    for key in log.taken.keys() {
        let stored = app.store.notification(key).await.unwrap().expect("the gateway's key is a stored notification");
        assert_eq!(stored.status, OutboxStatus::Sent);
        assert!(stored.attempts >= 1, "{key} was refused at least once first");
    }
    assert_eq!(log.bad, 0);
    app.stop().await;
}

/// A gateway down for longer than `give_up_after_s`: the notification is dead, the incident
/// logs it, and its alarm becomes `family_unreached` on the consoles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_down_past_the_give_up_time_leaves_the_notification_dead_and_the_family_unreached() {
    let gateway = TestGateway::start(GATEWAY_SECRET, Duration::ZERO).await;
    gateway.refuse(true);
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path());
    let app = spawn_app_with(&backend, &unique("anxind", "notify-dead"), |c| {
        to_gateway(&gateway, c);
        c.notify.give_up_after_s = 3;
    })
    .await;
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    TestDevice::connect(&app, "d-1").await.press("unreached", None).await;
    let opened = console.incident_for("d-1").await;
    let id = opened["incident"]["id"].clone();
    // The new emergency's alarm is seen, so that a quieter one can show.
    let ack = json!({"type": "command", "incident_id": id, "action": "acknowledge",
                     "alarm": opened["incident"]["alarm"]["raised_seq"]});
    assert_eq!(console.ask(ack).await["ok"], true);
    let unreached = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let delta = console.incident_for("d-1").await;
            if delta["incident"]["alarm"]["need"] == "family_unreached" {
                return delta;
            }
        }
    })
    .await
    .expect("the consoles are told nobody in the family was reached");
    assert_eq!(unreached["incident"]["alarm"]["level"], "routine");
    let id = IncidentId(id.as_u64().unwrap());
    assert!(has_delivery(&events(&app, id).await, Delivery::Dead), "the incident logs the dead notification");
    // The engine is told before the outbox records it.
    eventually(WAIT, "the outbox records the notification dead", || async {
        let counts = app.store.notification_counts().await.unwrap();
        (counts.dead, counts.pending, counts.sent) == (1, 0, 0)
    })
    .await;
    assert_eq!(app.metric("anxin_notifications_dead_total{channel=\"sms\"}").await, 1.0);
    assert!(gateway.log().refused >= 1);
    app.stop().await;
}

/// The signed callback: a good signature marks the notification delivered on the incident,
/// and a reply "1" is the contact's "seen"; a bad or missing signature, a replayed one, an
/// unknown key and a malformed body are refused and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_callback_marks_the_notification_delivered_and_a_bad_signature_is_refused() {
    let gateway = TestGateway::start(GATEWAY_SECRET, Duration::ZERO).await;
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path());
    let app = spawn_app_with(&backend, &unique("anxind", "notify-callback"), |c| to_gateway(&gateway, c)).await;
    TestDevice::connect(&app, "d-2").await.press("callback", None).await;
    let log = gateway.wait_for(1, WAIT).await;
    let (key, body) = log.bodies.iter().next().expect("a text to the gateway");
    let id = body.incident_id;

    let post = |body: String, secret: &'static str, at_ms: i64| {
        let http = app.http;
        async move {
            let signature = anxin_notify::sign(secret.as_bytes(), at_ms, body.as_bytes());
            let ts = at_ms.to_string();
            let headers = [
                ("content-type", "application/json"),
                ("x-anxin-timestamp", ts.as_str()),
                ("x-anxin-signature", signature.as_str()),
            ];
            http_request(http, "POST", "/api/v1/notify/callback", &headers, &body).await
        }
    };
    let now = || anxin_proto::wall_clock_now().millis();
    let receipt = json!({"key": key, "status": "delivered", "reply": "1"}).to_string();

    assert_eq!(post(receipt.clone(), GATEWAY_SECRET, now()).await.0, 401, "signed with the wrong secret");
    assert_eq!(post(receipt.clone(), CALLBACK_SECRET, now() - 10 * 60_000).await.0, 401, "a replay from 10 min ago");
    let unsigned = http_request(app.http, "POST", "/api/v1/notify/callback", &[], &receipt).await;
    assert_eq!(unsigned.0, 401, "no signature");
    let unknown = json!({"key": "n999999", "status": "delivered"}).to_string();
    assert_eq!(post(unknown, CALLBACK_SECRET, now()).await.0, 404);
    assert_eq!(post("{\"key\": 7}".into(), CALLBACK_SECRET, now()).await.0, 400);
    assert_ne!(app.store.notification(key).await.unwrap().unwrap().status, OutboxStatus::Delivered);

    let (status, answer) = post(receipt, CALLBACK_SECRET, now()).await;
    assert_eq!(status, 204, "{answer}");
    assert_eq!(app.store.notification(key).await.unwrap().unwrap().status, OutboxStatus::Delivered);
    eventually(WAIT, "the incident shows it delivered and seen", || async {
        let events = events(&app, id).await;
        let seen =
            events.iter().any(|e| matches!(&e.change, Change::FamilyAnswered { answer: FamilyAnswer::Seen, .. }));
        has_delivery(&events, Delivery::Delivered) && seen
    })
    .await;
    let metric = |result: &str| format!("anxin_notify_callbacks_total{{result=\"{result}\"}}");
    assert_eq!(app.metric(&metric("ok")).await, 1.0);
    assert_eq!(app.metric(&metric("bad_signature")).await, 3.0);
    assert_eq!(app.metric(&metric("unknown_key")).await, 1.0);
    assert_eq!(app.metric(&metric("malformed")).await, 1.0);
    assert_eq!(app.metric("anxin_notifications_delivered_total").await, 1.0);
    app.stop().await;
}

/// Notifications stored as an engine's commit would store them, for incidents of their own.
fn queued(count: usize, created_at: anxin_core::Timestamp) -> Vec<anxin_core::Notification> {
    queued_from(0, count, created_at)
}

/// `queued`, numbered from `from`.
fn queued_from(from: usize, count: usize, created_at: anxin_core::Timestamp) -> Vec<anxin_core::Notification> {
    use anxin_core::{ElderId, IncidentKind, Notice};
    (from..from + count)
        .map(|i| {
            let notice = Notice::Emergency { kind: IncidentKind::Sos };
            anxin_core::Notification {
                key: format!("n{}", 1_000_000 + i),
                incident_id: IncidentId(1_000_000 + i as u64),
                elder_id: ElderId::parse("e-1").unwrap(),
                contact_id: "c1".into(),
                contact_name: "女儿1（女儿）".into(),
                to: "13700000001".into(),
                channel: Channel::Sms,
                priority: notice.priority(),
                language: "zh-CN".into(),
                text: notice.text("长者1", "zh-CN"),
                notice,
                created_at,
                not_before: created_at,
            }
        })
        .collect()
}

/// A child anxind on `store`, sending to `gateway` four at a time.
async fn start_child(store: &str, gateway: &TestGateway, root: &str) -> tokio::process::Child {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_anxind"))
        .arg("run")
        .env("ANXIN_STORE__URL", store)
        .env("ANXIN_HTTP__LISTEN", "127.0.0.1:0")
        .env("ANXIN_MQTT__EMBEDDED_LISTEN", "127.0.0.1:0")
        .env("ANXIN_MQTT__CLIENT_ID", root)
        .env("ANXIN_MQTT__TOPIC_ROOT", root)
        .env("ANXIN_NOTIFY__GATEWAY_URL", &gateway.url)
        .env("ANXIN_NOTIFY__GATEWAY_SECRET", GATEWAY_SECRET)
        .env("ANXIN_NOTIFY__CONCURRENCY", "4")
        .env("ANXIN_NOTIFY__RETRY_BASE_MS", "100")
        .env("ANXIN_NOTIFY__RETRY_CAP_S", "1")
        .env("ANXIN_NOTIFY__POLL_INTERVAL_MS", "50")
        .env("ANXIN_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("anxind starts");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(WAIT, lines.next_line()).await.expect("a ready line").unwrap();
    assert!(ready.is_some_and(|l| l.starts_with("anxind ready")), "anxind is ready");
    child
}

/// kill -9 of anxind while it delivers: after the restart every notification reaches the
/// gateway; the only repeats (same key, which a gateway drops) are of those in flight when
/// it died, at most `notify.concurrency` of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_deliveries_loses_no_notification() {
    const COUNT: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}", dir.path().join("anxin.db").display());
    let store = anxin_store::open(&store_url).await.unwrap();
    let rows = queued(COUNT, anxin_proto::wall_clock_now());
    let batch = anxin_store::Batch { notifications: &rows, ..Default::default() };
    store.commit(batch).await.unwrap();
    // Each text takes the gateway 100 ms, so the kill finds some sent, some in flight, most not.
    let gateway = TestGateway::start(GATEWAY_SECRET, Duration::from_millis(100)).await;
    let root = unique("anxind", "notify-kill9");

    let mut first = start_child(&store_url, &gateway, &root).await;
    let before = gateway.wait_for(8, WAIT).await;
    first.start_kill().unwrap(); // SIGKILL: no drain, no last record
    first.wait().await.unwrap();
    assert!(before.taken.len() < COUNT, "killed during the deliveries, not after");

    let mut again = start_child(&store_url, &gateway, &root).await;
    eventually(Duration::from_secs(30), "every notification is sent after the restart", || async {
        let c = store.notification_counts().await.unwrap();
        c.pending == 0 && c.sent == COUNT as u64
    })
    .await;
    let log = gateway.log();
    let wanted: std::collections::BTreeSet<String> = rows.iter().map(|n| n.key.clone()).collect();
    assert_eq!(gateway.taken_keys(), wanted, "none lost");
    let repeated = log.taken.values().filter(|n| **n > 1).count();
    assert!(repeated <= 4, "only the sends in flight at the kill went twice (same key): {repeated}");
    assert_eq!(log.bad, 0);
    again.start_kill().unwrap();
    again.wait().await.unwrap();
}

/// Puts a subscription in the store as the family page would.
async fn subscribe(store_url: &str, elder: &str, contact: &str, (endpoint, p256dh, auth): (String, String, String)) {
    use sqlx::Connection;
    let mut db = sqlx::SqliteConnection::connect(store_url).await.unwrap();
    sqlx::query(
        "INSERT INTO push_subscriptions (endpoint, elder_id, contact_id, p256dh, auth, created_at) \
         VALUES ($1, $2, $3, $4, $5, 0)",
    )
    .bind(endpoint)
    .bind(elder)
    .bind(contact)
    .bind(p256dh)
    .bind(auth)
    .execute(&mut db)
    .await
    .unwrap();
    db.close().await.unwrap();
}

/// A contact who chose push gets the text by Web Push, encrypted for their browser and signed
/// with the VAPID key; one whose subscription the push service calls gone gets a text through
/// the gateway instead, and the subscription is forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_contact_gets_an_encrypted_web_push_and_a_text_once_their_subscription_is_gone() {
    use anxin_notify::testkit::TestPushService;
    let gateway = TestGateway::start(GATEWAY_SECRET, Duration::ZERO).await;
    let push = TestPushService::start().await;
    let (private, public) = anxin_notify::Vapid::generate();
    let mut registry = registry();
    for elder in registry.elders.iter_mut().take(2) {
        elder.profile.contacts[0].channel = Channel::Push;
    }
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::embedded(dir.path());
    let app = spawn_app_from(
        &backend,
        &unique("anxind", "notify-push"),
        registry,
        |c| {
            to_gateway(&gateway, c);
            c.notify.vapid_private_key = Some(Secret::new(&private));
            c.notify.vapid_subject = Some("mailto:ops@example.com".into());
        },
        anxind::clock::Clock::System,
    )
    .await;
    // e-1's daughter has her phone subscribed; e-2's had one, gone since.
    subscribe(&backend.store_url, "e-1", "c1", push.subscribe("phone-1")).await;
    subscribe(&backend.store_url, "e-2", "c1", push.subscribe("phone-2")).await;
    push.unsubscribe("phone-2");
    TestDevice::connect(&app, "d-1").await.press("push-1", None).await;
    TestDevice::connect(&app, "d-2").await.press("push-2", None).await;

    eventually(WAIT, "the push reaches the phone", || async { !push.pushed().is_empty() }).await;
    let pushed = push.pushed().remove(0);
    assert_eq!(pushed.subscription, "phone-1");
    assert_eq!(pushed.vapid_key, public, "signed with anxind's VAPID key");
    assert_eq!(pushed.urgency.as_deref(), Some("high"), "an emergency");
    assert!(pushed.payload["text"].as_str().unwrap().contains("长者1"), "{}", pushed.payload);
    let key = pushed.payload["key"].as_str().unwrap().to_string();
    eventually(WAIT, "recorded sent by push", || async {
        app.store.notification(&key).await.unwrap().is_some_and(|e| e.sent_via == Some(Channel::Push))
    })
    .await;

    let log = gateway.wait_for(1, WAIT).await;
    let texted: Vec<&str> = log.bodies.values().map(|b| b.elder_id.as_str()).collect();
    assert_eq!(texted, ["e-2"], "only the contact without a working subscription gets a text");
    let (key2, body2) = log.bodies.iter().next().unwrap();
    assert_eq!(body2.channel, Channel::Sms);
    eventually(WAIT, "recorded sent by text", || async {
        app.store.notification(key2).await.unwrap().is_some_and(|e| e.sent_via == Some(Channel::Sms))
    })
    .await;
    let e2 = anxin_core::ElderId::parse("e-2").unwrap();
    assert!(app.store.push_subscriptions(&e2, "c1").await.unwrap().is_empty(), "the gone subscription is forgotten");
    assert_eq!(app.metric("anxin_notifications_sent_total{channel=\"push\"}").await, 1.0);
    assert_eq!(app.metric("anxin_notifications_queued_total{channel=\"push\"}").await, 2.0);
    assert_eq!(push.refused(), 1, "only the gone subscription was refused: {:?}", push.pushed());
    app.stop().await;
}

/// `anxind vapid-keys` prints a key pair whose private half `[notify]` takes.
#[test]
fn vapid_keys_prints_a_pair_that_the_configuration_takes() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_anxind"))
        .arg("vapid-keys")
        .env("ANXIN_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let private = text.lines().find_map(|l| l.strip_prefix("vapid_private_key = \"")?.strip_suffix('"')).unwrap();
    let public = text.lines().find_map(|l| l.strip_prefix("# public key (applicationServerKey): ")).unwrap();
    let toml = format!("[notify]\nvapid_private_key = \"{private}\"\nvapid_subject = \"mailto:ops@example.com\"");
    let config = Config::from_toml_str(&toml, std::iter::empty(), &json!({})).unwrap();
    assert_eq!(config.notify.vapid().unwrap().unwrap().public_key(), public);
}

/// The outbox in the store, counting its reads.
struct CountedOutbox(anxind::notify::StoreOutbox, std::sync::atomic::AtomicUsize);

impl anxin_notify::OutboxPort for CountedOutbox {
    fn due(
        &self,
        now: anxin_core::Timestamp,
        limit: u32,
    ) -> anxin_notify::ports::BoxFuture<'_, Result<Vec<anxin_core::OutboxEntry>, String>> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.0.due(now, limit)
    }
    fn record<'a>(
        &'a self,
        key: &'a str,
        attempt: &'a anxin_core::OutboxTry,
    ) -> anxin_notify::ports::BoxFuture<'a, Result<(), String>> {
        self.0.record(key, attempt)
    }
    fn counts(&self) -> anxin_notify::ports::BoxFuture<'_, Result<anxin_core::OutboxCounts, String>> {
        self.0.counts()
    }
    fn subscriptions<'a>(
        &'a self,
        elder: &'a anxin_core::ElderId,
        contact: &'a str,
    ) -> anxin_notify::ports::BoxFuture<'a, Result<Vec<anxin_core::PushSubscription>, String>> {
        self.0.subscriptions(elder, contact)
    }
    fn forget_subscription<'a>(&'a self, endpoint: &'a str) -> anxin_notify::ports::BoxFuture<'a, Result<(), String>> {
        self.0.forget_subscription(endpoint)
    }
}

/// Takes what became of each notification, as the engine would, and keeps nothing.
struct Heard;

impl anxin_notify::Reporter for Heard {
    fn report<'a>(&'a self, _: &'a anxin_core::Notification, _: Delivery) -> anxin_notify::ports::BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

/// A wave of notices (the engine storing a few at every commit and ringing the worker each
/// time, as when 2,000 incidents turn nobody-going within 10 s): every one is sent once, and
/// the outbox is read at most once a `WOKEN_READ_EVERY` for the rings, not again for every
/// send or every ring. Each read sorts the pending rows and decodes up to `4 × concurrency`
/// of them: read so, one node's wave in the cluster test read the outbox over 400 times a
/// second (`docs/reliability.md`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wave_of_notices_is_sent_with_a_few_reads_of_the_outbox_not_one_a_send() {
    const ROUNDS: usize = 50;
    const EACH: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let store_url = format!("sqlite://{}", dir.path().join("anxin.db").display());
    let store: std::sync::Arc<dyn anxin_store::Store> = anxin_store::open(&store_url).await.unwrap();
    let gateway = TestGateway::start(GATEWAY_SECRET, Duration::ZERO).await;
    let outbox = std::sync::Arc::new(CountedOutbox(
        anxind::notify::StoreOutbox(store.clone(), None),
        std::sync::atomic::AtomicUsize::new(0),
    ));
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let worker = anxin_notify::Worker {
        outbox: outbox.clone(),
        reporter: std::sync::Arc::new(Heard),
        telemetry: std::sync::Arc::new(anxin_notify::NoTelemetry),
        gateway: anxin_notify::Gateway::Webhook {
            url: gateway.url.clone(),
            secret: GATEWAY_SECRET.as_bytes().to_vec(),
            client: anxin_notify::HttpClient::new(Duration::from_secs(2)),
        },
        push: None,
        clock: std::sync::Arc::new(anxin_proto::wall_clock_now),
        options: anxin_notify::WorkerOptions::default(),
        wake: wake.clone(),
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    let began = std::time::Instant::now();
    let mut wanted = std::collections::BTreeSet::new();
    for round in 0..ROUNDS {
        let rows = queued_from(round * EACH, EACH, anxin_proto::wall_clock_now());
        wanted.extend(rows.iter().map(|n| n.key.clone()));
        store.commit(anxin_store::Batch { notifications: &rows, ..Default::default() }).await.unwrap();
        wake.notify_one();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gateway.wait_for(ROUNDS * EACH, WAIT).await;
    let took = began.elapsed();
    let reads = outbox.1.load(std::sync::atomic::Ordering::Relaxed);
    stop.cancel();
    running.await.unwrap();
    assert_eq!(gateway.taken_keys(), wanted, "every notice sent");
    assert!(gateway.log().taken.values().all(|n| *n == 1), "each once");
    // At most one read a `WOKEN_READ_EVERY` for the rings, and a few more: the first, and any
    // read that came back full. Once a send (or a ring) it was over 200.
    let every = anxin_notify::worker::WOKEN_READ_EVERY;
    let bound = (took.as_millis() / every.as_millis()) as usize + 5;
    eprintln!("{} notices over {took:?}: {reads} reads of the outbox (bound {bound})", ROUNDS * EACH);
    assert!(reads <= bound, "{reads} reads of the outbox for {} notices over {took:?}", ROUNDS * EACH);
}
