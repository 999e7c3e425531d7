//! Families' notifications, wired: `anxin-notify`'s ports on the store and the engine's
//! command channel, its metrics, the callback's checks, and the worker's start.

use crate::clock::Clock;
use crate::config::NotifyConfig;
use anxin_api::notify::{Receipt, ReceiptStatus, Receipts, ReceiptsUnavailable};
use anxin_api::{Caller, Command, CommandSender, Request};
use anxin_core::{
    Channel, Delivery, ElderId, Notification, Outbox, OutboxCounts, OutboxEntry, OutboxTry, PushSubscription, Timestamp,
};
use anxin_notify::ports::BoxFuture;
use anxin_notify::{Gateway, HttpClient, Push, Worker, WorkerOptions};
use anxin_store::Store;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, Notify};
use tokio_util::sync::CancellationToken;

/// The notifications' metrics. Labels: the channel (`sms`, `voice`, `push`).
#[derive(Debug, Clone)]
pub struct NotifyMetrics {
    /// Stored by the engine, by the contact's channel.
    pub queued: IntCounterVec,
    /// Taken by a gateway or push service, by the channel it went by.
    pub sent: IntCounterVec,
    /// Tries refused or unanswered (each retried), by the notification's channel.
    pub failed: IntCounterVec,
    /// Given up, by channel.
    pub dead: IntCounterVec,
    /// Delivered, by the gateway's receipt.
    pub delivered: IntCounter,
    pub pending: IntGauge,
    /// How long the oldest pending notification has waited (0 with none).
    pub oldest_undelivered_seconds: Gauge,
}

impl NotifyMetrics {
    pub fn new(registry: &Registry) -> Self {
        let by_channel = |name: &str, help: &str| {
            let v = IntCounterVec::new(Opts::new(name, help), &["channel"]).expect("metric");
            for c in [Channel::Sms, Channel::Voice, Channel::Push] {
                v.with_label_values(&[c.as_str()]);
            }
            v
        };
        let m = Self {
            queued: by_channel("anxin_notifications_queued_total", "Notifications stored by the engine, by channel"),
            sent: by_channel(
                "anxin_notifications_sent_total",
                "Notifications a gateway or push service took, by the channel they went by",
            ),
            failed: by_channel(
                "anxin_notifications_failed_total",
                "Tries at a notification refused or unanswered (each is retried), by channel",
            ),
            dead: by_channel(
                "anxin_notifications_dead_total",
                "Notifications given up after notify.give_up_after_s, by channel",
            ),
            delivered: IntCounter::new(
                "anxin_notifications_delivered_total",
                "Notifications the gateway's receipt says reached the phone",
            )
            .expect("metric"),
            pending: IntGauge::new("anxin_notifications_pending", "Notifications waiting to be sent").expect("metric"),
            oldest_undelivered_seconds: Gauge::new(
                "anxin_notifications_oldest_undelivered_seconds",
                "Age of the oldest notification not yet sent (0 with none)",
            )
            .expect("metric"),
        };
        // A second registration (a second app in one test process) is harmless.
        let _ = registry.register(Box::new(m.queued.clone()));
        let _ = registry.register(Box::new(m.sent.clone()));
        let _ = registry.register(Box::new(m.failed.clone()));
        let _ = registry.register(Box::new(m.dead.clone()));
        let _ = registry.register(Box::new(m.delivered.clone()));
        let _ = registry.register(Box::new(m.pending.clone()));
        let _ = registry.register(Box::new(m.oldest_undelivered_seconds.clone()));
        m
    }
}

impl anxin_notify::Telemetry for NotifyMetrics {
    fn sent(&self, via: Channel) {
        self.sent.with_label_values(&[via.as_str()]).inc();
    }

    fn failed(&self, channel: Channel) {
        self.failed.with_label_values(&[channel.as_str()]).inc();
    }

    fn dead(&self, channel: Channel) {
        self.dead.with_label_values(&[channel.as_str()]).inc();
    }

    fn backlog(&self, counts: &OutboxCounts, now: Timestamp) {
        self.pending.set(counts.pending as i64);
        let age_ms = counts.oldest_pending.map_or(0, |t| (now.millis() - t.millis()).max(0));
        self.oldest_undelivered_seconds.set(age_ms as f64 / 1000.0);
    }
}

/// The engine's store port, which also wakes the delivery worker when a commit stored
/// notifications, and counts them queued.
#[derive(Debug)]
pub struct WakingStorePort {
    pub inner: crate::ports::StorePort,
    pub wake: Arc<Notify>,
    pub metrics: NotifyMetrics,
}

impl<M: Sync + 'static> anxin_runtime::Store<M> for WakingStorePort
where
    crate::ports::StorePort: anxin_runtime::Store<M>,
{
    fn commit<'a>(
        &'a self,
        out: &'a Outbox,
        messages: &'a [M],
    ) -> anxin_runtime::ports::BoxFuture<'a, Result<(), anxin_runtime::CommitError>> {
        Box::pin(async move {
            self.inner.commit(out, messages).await?;
            if !out.notifications.is_empty() {
                for n in &out.notifications {
                    self.metrics.queued.with_label_values(&[n.channel.as_str()]).inc();
                }
                self.wake.notify_one();
            }
            Ok(())
        })
    }

    fn takes_messages(&self) -> bool {
        anxin_runtime::Store::<M>::takes_messages(&self.inner)
    }

    fn save_health<'a>(
        &'a self,
        snapshot: &'a anxin_core::HealthSnapshot,
        at: anxin_core::Timestamp,
    ) -> anxin_runtime::ports::BoxFuture<'a, Result<(), String>> {
        anxin_runtime::Store::<M>::save_health(&self.inner, snapshot, at)
    }
}

/// The zones a node runs now, asked each time the outbox is read.
pub type RunningZones = Arc<dyn Fn() -> Vec<anxin_core::Zone> + Send + Sync>;

/// The outbox in the store: all of it, or, with zones spread over nodes, the notifications
/// of the zones this node runs, so that each is sent by one node (the zone's owner; around a
/// hand-over both may send it, under the same key).
pub struct StoreOutbox(pub Arc<dyn Store>, pub Option<RunningZones>);

impl std::fmt::Debug for StoreOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOutbox").field("by_zone", &self.1.is_some()).finish()
    }
}

impl anxin_notify::OutboxPort for StoreOutbox {
    fn due(&self, now: Timestamp, limit: u32) -> BoxFuture<'_, Result<Vec<OutboxEntry>, String>> {
        Box::pin(async move {
            let due = match &self.1 {
                None => self.0.due_notifications(now, limit).await,
                Some(running) => self.0.due_notifications_in(now, limit, &running()).await,
            };
            due.map_err(|e| e.to_string())
        })
    }

    fn record<'a>(&'a self, key: &'a str, attempt: &'a OutboxTry) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.0.record_try(key, attempt).await.map_err(|e| e.to_string()) })
    }

    fn counts(&self) -> BoxFuture<'_, Result<OutboxCounts, String>> {
        Box::pin(async move { self.0.notification_counts().await.map_err(|e| e.to_string()) })
    }

    fn subscriptions<'a>(
        &'a self,
        elder: &'a ElderId,
        contact: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PushSubscription>, String>> {
        Box::pin(async move { self.0.push_subscriptions(elder, contact).await.map_err(|e| e.to_string()) })
    }

    fn forget_subscription<'a>(&'a self, endpoint: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.0.forget_push_subscription(endpoint).await.map_err(|e| e.to_string()) })
    }
}

/// How long a report waits for the engine to store it.
const ENGINE_WAIT: Duration = Duration::from_secs(10);

/// Tells the engine, on its command channel, as `Caller::Notifier`.
#[derive(Debug, Clone)]
pub struct EngineReporter(pub CommandSender);

impl anxin_notify::Reporter for EngineReporter {
    fn report<'a>(&'a self, n: &'a Notification, delivery: Delivery) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let request = Request::NotificationOutcome {
                incident: n.incident_id,
                contact: n.contact_id.clone(),
                key: n.key.clone(),
                delivery,
            };
            let (reply, answer) = oneshot::channel();
            if self.0.send(Command::new(Caller::Notifier, request, Some(reply))).await.is_err() {
                tracing::debug!(key = %n.key, "the engine has stopped; a notification's outcome stays in the store");
                return;
            }
            match tokio::time::timeout(ENGINE_WAIT, answer).await {
                Ok(Ok(Err(refused))) => tracing::debug!(key = %n.key, code = %refused.code, "outcome refused"),
                Ok(_) => {}
                Err(_) => tracing::warn!(key = %n.key, "the engine took no notification outcome within 10 s"),
            }
        })
    }
}

/// The callback's checks, on the store and the callback secret.
#[derive(Debug)]
pub struct StoreReceipts {
    pub store: Arc<dyn Store>,
    /// No secret: every callback is refused (there is nothing to check it with).
    pub secret: Option<Vec<u8>>,
    pub tolerance_ms: i64,
    pub clock: Clock,
    pub metrics: NotifyMetrics,
}

impl Receipts for StoreReceipts {
    fn verify(&self, timestamp: Option<&str>, signature: Option<&str>, body: &[u8]) -> bool {
        let Some(secret) = &self.secret else { return false };
        let now = self.clock.now().millis();
        anxin_notify::verify(secret, timestamp, signature, body, now, self.tolerance_ms).is_ok()
    }

    fn record<'a>(
        &'a self,
        key: &'a str,
        status: ReceiptStatus,
    ) -> BoxFuture<'a, Result<Option<Receipt>, ReceiptsUnavailable>> {
        Box::pin(async move {
            let unavailable = |e: anxin_store::StoreError| {
                tracing::warn!(error = %e, "cannot record a gateway's receipt");
                ReceiptsUnavailable
            };
            let delivered = status == ReceiptStatus::Delivered;
            if !self.store.record_receipt(key, delivered, self.clock.now()).await.map_err(unavailable)? {
                return Ok(None);
            }
            if delivered {
                self.metrics.delivered.inc();
            }
            let entry = self.store.notification(key).await.map_err(unavailable)?;
            Ok(entry.map(|e| Receipt {
                incident: e.notification.incident_id,
                elder: e.notification.elder_id,
                contact: e.notification.contact_id,
            }))
        })
    }
}

/// The worker, built from the configuration, sending the notifications of `zones` (all,
/// without); it fails only on a VAPID key that `NotifyConfig::check` already accepted.
pub fn worker(
    config: &NotifyConfig,
    store: Arc<dyn Store>,
    commands: CommandSender,
    metrics: NotifyMetrics,
    clock: Clock,
    wake: Arc<Notify>,
    zones: Option<RunningZones>,
) -> anyhow::Result<Worker> {
    let client = HttpClient::new(Duration::from_millis(config.request_timeout_ms));
    let gateway = match (&config.gateway_url, &config.gateway_secret) {
        (Some(url), Some(secret)) => {
            Gateway::Webhook { url: url.clone(), secret: secret.expose().as_bytes().to_vec(), client: client.clone() }
        }
        _ => Gateway::Log,
    };
    let push = config.vapid()?.map(|vapid| Push { vapid, client });
    let options = WorkerOptions {
        concurrency: config.concurrency,
        poll_interval: Duration::from_millis(config.poll_interval_ms),
        retry_base: Duration::from_millis(config.retry_base_ms),
        retry_cap: Duration::from_secs(config.retry_cap_s),
        give_up_after: Duration::from_secs(config.give_up_after_s),
        ..WorkerOptions::default()
    };
    Ok(Worker {
        outbox: Arc::new(StoreOutbox(store, zones)),
        reporter: Arc::new(EngineReporter(commands)),
        telemetry: Arc::new(metrics),
        gateway,
        push,
        clock: Arc::new(move || clock.now()),
        options,
        wake,
    })
}

/// Starts the worker on the current runtime.
pub fn spawn(worker: Worker, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    let gateway = if matches!(worker.gateway, Gateway::Log) { "log" } else { "webhook" };
    tracing::info!(gateway, push = worker.push.is_some(), "notification worker started");
    tokio::spawn(worker.run(stop))
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn load(toml: &str, vars: &[(&str, &str)]) -> Result<Config, String> {
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Config::from_toml_str(toml, vars, &serde_json::json!({})).map_err(|e| e.to_string())
    }

    #[test]
    fn notify_defaults_log_the_texts_and_retry_for_ten_minutes() {
        let c = load("", &[]).unwrap().notify;
        assert_eq!((c.gateway_url.as_deref(), c.give_up_after_s, c.concurrency), (None, 600, 16));
        assert!(c.vapid().unwrap().is_none(), "Web Push is off until a key is set");
    }

    #[test]
    fn a_misconfigured_notify_section_says_what_to_change() {
        let err = |toml: &str| load(toml, &[]).unwrap_err();
        assert!(err("[notify]\ngateway_url = \"ftp://x\"").contains("http:// or https://"));
        let no_secret = err("[notify]\ngateway_url = \"http://127.0.0.1:9/sms\"");
        assert!(no_secret.contains("notify.gateway_secret") && no_secret.contains("signed"), "{no_secret}");
        assert!(err("[notify]\ngive_up_after_s = 0").contains("notify.give_up_after_s must lie in"));
        assert!(err("[notify]\nconcurrency = 0").contains("notify.concurrency"));
        assert!(err("[notify]\nretry_base_ms = 120000\nretry_cap_s = 60").contains("retry_cap_s"));
        let bad_key = err("[notify]\nvapid_private_key = \"nope\"\nvapid_subject = \"mailto:a@b.c\"");
        assert!(bad_key.contains("anxind vapid-keys"), "{bad_key}");
        let (private, _) = anxin_notify::Vapid::generate();
        let no_subject = err(&format!("[notify]\nvapid_private_key = \"{private}\""));
        assert!(no_subject.contains("vapid_subject"), "{no_subject}");
        assert!(err("[notify]\nvapid_private_key_file = \"/nonexistent/vapid.key\"").contains("/nonexistent/vapid.key"));
    }

    #[test]
    fn notify_settings_come_from_the_environment_too() {
        let (private, public) = anxin_notify::Vapid::generate();
        let vars = [
            ("ANXIN_NOTIFY__GATEWAY_URL", "https://relay.example.com/anxin"),
            ("ANXIN_NOTIFY__GATEWAY_SECRET", "0123456789abcdef"),
            ("ANXIN_NOTIFY__VAPID_PRIVATE_KEY", private.as_str()),
            ("ANXIN_NOTIFY__VAPID_SUBJECT", "mailto:ops@example.com"),
            ("ANXIN_NOTIFY__GIVE_UP_AFTER_S", "30"),
        ];
        let c = load("", &vars).unwrap().notify;
        assert_eq!(c.gateway_url.as_deref(), Some("https://relay.example.com/anxin"));
        assert_eq!(c.callback_key().unwrap().expose(), "0123456789abcdef", "callbacks default to the gateway's key");
        assert_eq!(c.give_up_after_s, 30);
        assert_eq!(c.vapid().unwrap().unwrap().public_key(), public);
        assert!(!format!("{c:?}").contains("0123456789abcdef"), "secrets do not print");
    }
}
