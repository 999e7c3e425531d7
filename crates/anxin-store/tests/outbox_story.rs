//! The notifications' outbox as the delivery worker uses it, on SQLite and on PostgreSQL
//! when `ANXIN_TEST_POSTGRES_URL` names a server (required under `CI=true`).

use anxin_core::*;
use anxin_store::{testkit, Batch, Store};
use std::future::Future;
use std::sync::Arc;

const T0: Timestamp = Timestamp(1_763_000_000_000);

fn notification(key: &str, contact: &str, notice: Notice, created_after_ms: i64) -> Notification {
    let created_at = T0.plus_millis(created_after_ms);
    Notification {
        key: key.into(),
        incident_id: IncidentId(7),
        elder_id: ElderId::parse("e-1").unwrap(),
        contact_id: contact.into(),
        contact_name: "张丽（女儿）".into(),
        to: "13700000001".into(),
        channel: Channel::Push,
        priority: notice.priority(),
        language: "zh-CN".into(),
        text: notice.text("张秀英", "zh-CN"),
        notice,
        created_at,
        not_before: created_at,
    }
}

fn batch(notifications: &[Notification]) -> Batch<'_> {
    Batch { notifications, ..Batch::default() }
}

/// Runs `story` on a fresh SQLite store, then on a fresh PostgreSQL database when a server
/// is named, with the store and its URL.
async fn on_each_store<F, Fut>(story: F)
where
    F: Fn(Arc<dyn Store>, String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("anxin.db").display());
    story(anxin_store::open(&url).await.unwrap(), url).await;
    match testkit::postgres_server() {
        Some(server) => {
            let url = testkit::fresh_postgres_database(&server).await;
            story(anxin_store::open(&url).await.unwrap(), url.clone()).await;
            testkit::drop_postgres_database(&server, &url).await;
        }
        None => eprintln!("PostgreSQL skipped: {} is not set", testkit::POSTGRES_URL_VAR),
    }
}

#[tokio::test]
async fn due_notifications_come_emergencies_first_then_oldest_and_a_batch_stored_twice_is_one() {
    on_each_store(|store, _| async move {
        let emergency = Notice::Emergency { kind: IncidentKind::Fall };
        let low = notification("n3", "c-1", Notice::ServiceRequest, 0);
        let old = notification("n5", "c-1", emergency.clone(), 1_000);
        let new = notification("n9", "c-2", emergency.clone(), 2_000);
        let mut later = notification("n12", "c-1", Notice::ServiceRequest, 0);
        later.not_before = T0.plus_millis(3_600_000); // quiet hours
        let rows = [low.clone(), new.clone(), old.clone(), later.clone()];
        store.commit(batch(&rows)).await.unwrap();
        // The same batch again (a retry after an unclear failure): nothing doubles.
        store.commit(batch(&rows)).await.unwrap();
        let counts = store.notification_counts().await.unwrap();
        assert_eq!((counts.pending, counts.sent, counts.delivered, counts.dead), (4, 0, 0, 0));
        assert_eq!(counts.oldest_pending, Some(T0));

        let now = T0.plus_millis(5_000);
        let due = store.due_notifications(now, 10).await.unwrap();
        let keys: Vec<&str> = due.iter().map(|e| e.notification.key.as_str()).collect();
        assert_eq!(keys, ["n5", "n9", "n3"], "emergencies first, the oldest first; quiet hours wait");
        assert_eq!(due[0].notification, old, "the notification reads back whole");
        assert_eq!((due[0].status, due[0].attempts, due[0].sent_via), (OutboxStatus::Pending, 0, None));
        assert_eq!(store.due_notifications(now, 1).await.unwrap().len(), 1, "at most the limit");
        let after_quiet = store.due_notifications(T0.plus_millis(3_600_000), 10).await.unwrap();
        assert_eq!(after_quiet.len(), 4);
    })
    .await;
}

/// With zones spread over nodes, a node reads the notifications of its zones' incidents only.
#[tokio::test]
async fn a_node_reads_the_notifications_of_the_zones_it_runs() {
    on_each_store(|store, _| async move {
        let emergency = Notice::Emergency { kind: IncidentKind::Fall };
        let zone = |n: u16| Zone::new(n.into()).unwrap();
        let of = |key: &str, z: u16, k: u64| {
            let mut n = notification(key, "c-1", emergency.clone(), 0);
            n.incident_id = IncidentId(zone(z).base() + k);
            n
        };
        // The first and last numbers of zone 1, and numbers of zones 0 and 2 beside them.
        let rows =
            [of("n-0", 0, 1), of("n-1a", 1, 1), of("n-1b", 1, zone(1).end() - zone(1).base() - 1), of("n-2", 2, 1)];
        store.commit(batch(&rows)).await.unwrap();
        let now = T0.plus_millis(3_600_000);
        let keys = |due: Vec<OutboxEntry>| due.into_iter().map(|e| e.notification.key).collect::<Vec<_>>();
        assert_eq!(keys(store.due_notifications_in(now, 10, &[zone(1)]).await.unwrap()), ["n-1a", "n-1b"]);
        assert_eq!(keys(store.due_notifications_in(now, 10, &[zone(2), zone(0)]).await.unwrap()), ["n-0", "n-2"]);
        assert!(store.due_notifications_in(now, 10, &[]).await.unwrap().is_empty(), "no zone, no notification");
        assert_eq!(store.due_notifications(now, 10).await.unwrap().len(), 4, "every zone's");
    })
    .await;
}

#[tokio::test]
async fn tries_receipts_and_give_ups_are_recorded_and_counted() {
    on_each_store(|store, _| async move {
        let emergency = Notice::Emergency { kind: IncidentKind::Sos };
        let rows = [
            notification("n1", "c-1", emergency.clone(), 0),
            notification("n2", "c-2", emergency.clone(), 10),
            notification("n3", "c-3", emergency.clone(), 20),
        ];
        store.commit(batch(&rows)).await.unwrap();
        let now = T0.plus_millis(100);

        // n1 fails once, then goes by SMS (a push contact with no subscription).
        let retry_at = now.plus_millis(2_000);
        store
            .record_try("n1", &OutboxTry::Failed { error: "HTTP 503".into(), next_attempt_at: retry_at })
            .await
            .unwrap();
        let n1 = store.notification("n1").await.unwrap().unwrap();
        assert_eq!((n1.status, n1.attempts, n1.next_attempt_at), (OutboxStatus::Pending, 1, retry_at));
        assert_eq!(n1.last_error.as_deref(), Some("HTTP 503"));
        let due: Vec<String> =
            store.due_notifications(now, 10).await.unwrap().into_iter().map(|e| e.notification.key).collect();
        assert_eq!(due, ["n2", "n3"], "a failed try waits out its backoff");
        store.record_try("n1", &OutboxTry::Sent { via: Channel::Sms, at: retry_at }).await.unwrap();
        let n1 = store.notification("n1").await.unwrap().unwrap();
        assert_eq!((n1.status, n1.sent_via, n1.sent_at), (OutboxStatus::Sent, Some(Channel::Sms), Some(retry_at)));

        // The gateway's receipt: delivered. Unknown keys are said to be unknown.
        assert!(store.record_receipt("n1", true, retry_at.plus_millis(500)).await.unwrap());
        assert!(!store.record_receipt("n404", true, now).await.unwrap());
        let n1 = store.notification("n1").await.unwrap().unwrap();
        assert_eq!((n1.status, n1.done_at), (OutboxStatus::Delivered, Some(retry_at.plus_millis(500))));
        // A late record of a try never undoes a receipt.
        store.record_try("n1", &OutboxTry::Sent { via: Channel::Sms, at: now }).await.unwrap();
        assert_eq!(store.notification("n1").await.unwrap().unwrap().status, OutboxStatus::Delivered);
        // A receipt for a row delivered already finds it and changes nothing.
        assert!(store.record_receipt("n1", false, now).await.unwrap());
        assert_eq!(store.notification("n1").await.unwrap().unwrap().status, OutboxStatus::Delivered);

        // n2 is given up; n3 the gateway reports undeliverable.
        store.record_try("n2", &OutboxTry::Dead { error: "timed out".into(), at: now }).await.unwrap();
        let n2 = store.notification("n2").await.unwrap().unwrap();
        assert_eq!((n2.status, n2.attempts, n2.done_at), (OutboxStatus::Dead, 1, Some(now)));
        store.record_try("n3", &OutboxTry::Sent { via: Channel::Push, at: now }).await.unwrap();
        assert!(store.record_receipt("n3", false, now).await.unwrap());
        let n3 = store.notification("n3").await.unwrap().unwrap();
        assert_eq!(n3.status, OutboxStatus::Dead);
        assert!(n3.last_error.unwrap().contains("undelivered"));

        let counts = store.notification_counts().await.unwrap();
        assert_eq!((counts.pending, counts.sent, counts.delivered, counts.dead), (0, 0, 1, 2));
        assert_eq!(counts.oldest_pending, None, "nothing is waiting");
        assert!(store.notification("n404").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn a_contacts_push_subscriptions_read_back_and_a_gone_one_is_forgotten() {
    on_each_store(|store, url| async move {
        // The family page stores subscriptions; here they are put in by hand.
        let rows = [
            ("https://push.example.com/a", "c-1", 1_i64),
            ("https://push.example.com/b", "c-1", 2),
            ("https://push.example.com/c", "c-2", 3),
        ];
        macro_rules! insert {
            ($conn:ty) => {{
                use sqlx::Connection;
                let mut db = <$conn>::connect(&url).await.unwrap();
                for (endpoint, contact, at) in rows {
                    sqlx::query(
                        "INSERT INTO push_subscriptions (endpoint, elder_id, contact_id, p256dh, auth, created_at) \
                         VALUES ($1, 'e-1', $2, 'BKey', 'Auth', $3)",
                    )
                    .bind(endpoint)
                    .bind(contact)
                    .bind(at)
                    .execute(&mut db)
                    .await
                    .unwrap();
                }
                db.close().await.unwrap();
            }};
        }
        if url.starts_with("sqlite:") {
            insert!(sqlx::SqliteConnection);
        } else {
            insert!(sqlx::PgConnection);
        }
        let elder = ElderId::parse("e-1").unwrap();
        let subs = store.push_subscriptions(&elder, "c-1").await.unwrap();
        let endpoints: Vec<&str> = subs.iter().map(|s| s.endpoint.as_str()).collect();
        assert_eq!(endpoints, ["https://push.example.com/a", "https://push.example.com/b"]);
        assert_eq!(
            (subs[0].p256dh.as_str(), subs[0].auth.as_str(), subs[0].created_at),
            ("BKey", "Auth", Timestamp(1))
        );
        store.forget_push_subscription("https://push.example.com/a").await.unwrap();
        assert_eq!(store.push_subscriptions(&elder, "c-1").await.unwrap().len(), 1);
        assert!(store.push_subscriptions(&ElderId::parse("e-9").unwrap(), "c-1").await.unwrap().is_empty());
    })
    .await;
}
