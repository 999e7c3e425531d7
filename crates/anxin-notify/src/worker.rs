//! The delivery worker: takes due notifications from the outbox, sends a bounded number at
//! once, records each try, and tells the engine what became of each. A failed try waits an
//! exponential backoff with full jitter (a random wait between zero and
//! `min(cap, base × 2^attempts)`) so that a gateway coming back is not met by every retry at
//! once; past `give_up_after` a notification is `dead`.
//!
//! A notification is sent at least once and usually exactly once: a crash between a send and
//! its record sends it again on the next start, under the same idempotency key, which the
//! gateway drops. The engine is told before the store records, so a crash between the two
//! tells it again (the engine takes each outcome once).

use crate::gateway::Gateway;
use crate::http::HttpClient;
use crate::ports::{Clock, OutboxPort, Reporter, Telemetry};
use crate::webpush::{self, BrowserKeys, Vapid};
use anxin_core::{Channel, Delivery, NoticePriority, Notification, OutboxEntry, OutboxTry, Timestamp};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How many rounds of `concurrency` sends one read of the outbox takes in.
const READ_ROUNDS: usize = 4;

/// The outbox is read again on a wake-up at most once this long: the engine rings the worker
/// at every commit that stored notifications, which in a wave of them (2,000 incidents turning
/// nobody-going within 10 s, each with a notice) is every commit. A notification stored meanwhile
/// waits at most this long more; a backlog (a read that came back full) is read on at once.
/// 50 ms read a fifth as often again, but each read then started some twenty sends at once,
/// which held up a node's presses behind them (its p99 in a wave 8–11 ms against 5–6).
pub const WOKEN_READ_EVERY: Duration = Duration::from_millis(10);

/// How long until a wake-up may read the outbox again, the last read made at `read_at`.
fn woken_wait(read_at: Option<Instant>) -> Duration {
    read_at.map_or(Duration::ZERO, |at| WOKEN_READ_EVERY.saturating_sub(at.elapsed()))
}

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Notifications being sent at once.
    pub concurrency: usize,
    /// How often the outbox is read when nothing wakes the worker.
    pub poll_interval: Duration,
    /// The first retry's longest wait; each later one doubles, up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// A notification still not sent this long after it was due is given up (`dead`).
    pub give_up_after: Duration,
    /// How often the outbox's counts are read for the metrics.
    pub counts_interval: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        Self {
            concurrency: 16,
            poll_interval: Duration::from_millis(1000),
            retry_base: Duration::from_millis(1000),
            retry_cap: Duration::from_secs(60),
            give_up_after: Duration::from_secs(600),
            counts_interval: Duration::from_secs(5),
        }
    }
}

/// Web Push: our VAPID identity and the client to reach push services with.
#[derive(Debug, Clone)]
pub struct Push {
    pub vapid: Vapid,
    pub client: HttpClient,
}

/// The worker and what it works with.
pub struct Worker {
    pub outbox: Arc<dyn OutboxPort>,
    pub reporter: Arc<dyn Reporter>,
    pub telemetry: Arc<dyn Telemetry>,
    pub gateway: Gateway,
    /// Without it, `push` contacts get the gateway's text.
    pub push: Option<Push>,
    pub clock: Clock,
    pub options: WorkerOptions,
    /// Rung when the engine has stored new notifications, so they go at once rather than at
    /// the next poll.
    pub wake: Arc<Notify>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("gateway", &self.gateway).field("options", &self.options).finish_non_exhaustive()
    }
}

/// The longest wait before try `attempts + 1`: `base × 2^attempts`, at most `cap`.
pub fn backoff_ceiling(base: Duration, cap: Duration, attempts: u32) -> Duration {
    base.saturating_mul(1u32.checked_shl(attempts.min(31)).unwrap_or(u32::MAX)).min(cap)
}

/// Full jitter: a wait drawn evenly between zero and the ceiling.
fn jitter(ceiling: Duration) -> Duration {
    let ms = ceiling.as_millis().min(u128::from(u64::MAX)) as u64;
    Duration::from_millis(rand_core::RngCore::next_u64(&mut rand_core::OsRng) % (ms + 1))
}

impl Worker {
    /// Delivers until `shutdown`, then lets the sends in flight finish (each ends within the
    /// HTTP timeout).
    ///
    /// Each send is a task of its own: a send holds a store connection while it records, and
    /// sends polled only from this loop would sit on their connections while the loop waits
    /// for one to read the outbox (with more sends than the pool has connections, for ever).
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let concurrency = this.options.concurrency.max(1);
        // The keys being sent, by task, so a task that panicked frees its key too.
        let mut in_flight: HashMap<tokio::task::Id, String> = HashMap::new();
        let mut running: JoinSet<()> = JoinSet::new();
        let mut counted_at: Option<Instant> = None;
        // Rows read and not yet being sent: the outbox is read a few rounds of sends at a
        // time, not once a send (each read sorts the pending rows).
        let mut queue: VecDeque<OutboxEntry> = VecDeque::new();
        // Whether more may be due than were read: then read again as soon as the queue empties.
        let mut more = false;
        // Whether rows may have come due that were not read (new ones stored, the poll's time
        // come, the queue cleared): then read again, at most once a `WOKEN_READ_EVERY`. A send
        // done with neither is no reason to read: the rows left are those being sent.
        let mut stale = true;
        let mut read_at: Option<Instant> = None;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            if queue.is_empty() && running.len() < concurrency && (more || (stale && woken_wait(read_at).is_zero())) {
                (stale, read_at) = (false, Some(Instant::now()));
                // Rows being sent are still pending, so they come back too: ask for enough.
                let limit = (READ_ROUNDS * concurrency + in_flight.len()) as u32;
                match this.outbox.due((this.clock)(), limit).await {
                    Ok(rows) => {
                        more = rows.len() as u32 == limit;
                        queue
                            .extend(rows.into_iter().filter(|e| !in_flight.values().any(|k| *k == e.notification.key)));
                    }
                    Err(e) => {
                        // Tried again at the poll's time, not at once.
                        more = false;
                        tracing::warn!(error = %e, "cannot read the notifications outbox; trying again");
                    }
                }
            }
            while running.len() < concurrency {
                let Some(entry) = queue.pop_front() else { break };
                let key = entry.notification.key.clone();
                let worker = this.clone();
                let task = running.spawn(async move { worker.deliver(entry).await });
                in_flight.insert(task.id(), key);
            }
            if counted_at.is_none_or(|at| at.elapsed() >= this.options.counts_interval) {
                counted_at = Some(Instant::now());
                match this.outbox.counts().await {
                    Ok(counts) => this.telemetry.backlog(&counts, (this.clock)()),
                    Err(e) => tracing::debug!(error = %e, "cannot count the outbox"),
                }
            }
            let room = running.len() < concurrency;
            let pause = if more || !queue.is_empty() {
                Duration::ZERO
            } else if stale {
                woken_wait(read_at)
            } else {
                this.options.poll_interval
            };
            tokio::select! {
                Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                    let id = match done {
                        Ok((id, ())) => id,
                        Err(e) => {
                            tracing::error!(error = %e, "a notification's send panicked; it stays pending");
                            e.id()
                        }
                    };
                    in_flight.remove(&id);
                }
                // New notifications (an emergency, perhaps): read again, in priority order.
                _ = this.wake.notified() => {
                    queue.clear();
                    stale = true;
                }
                // The poll's time (retries come due unrung), or a wake-up's read's.
                _ = tokio::time::sleep(pause), if room => stale = true,
                _ = shutdown.cancelled() => break,
            }
        }
        while running.join_next().await.is_some() {}
    }

    /// One try at one notification, recorded and reported.
    async fn deliver(&self, entry: OutboxEntry) {
        let n = &entry.notification;
        let sent = self.send(n).await;
        let now = (self.clock)();
        let attempt = match sent {
            Ok(via) => {
                self.telemetry.sent(via);
                // A text only written to the log reached nobody: the console must not show
                // the contact as sent to.
                let logged_only = matches!(self.gateway, Gateway::Log) && via != Channel::Push;
                if !logged_only {
                    self.reporter.report(n, Delivery::Sent).await;
                }
                OutboxTry::Sent { via, at: now }
            }
            Err(error) => {
                // Counted from when it could first go (quiet hours end), not from its making.
                let due = n.not_before.max(n.created_at);
                let give_up_at = due.plus_millis(self.options.give_up_after.as_millis() as i64);
                if now >= give_up_at {
                    self.telemetry.dead(n.channel);
                    tracing::warn!(key = %n.key, incident = n.incident_id.0, contact = %n.contact_id, attempts = entry.attempts + 1, %error, "notification given up");
                    self.reporter.report(n, Delivery::Dead).await;
                    OutboxTry::Dead { error, at: now }
                } else {
                    self.telemetry.failed(n.channel);
                    let ceiling = backoff_ceiling(self.options.retry_base, self.options.retry_cap, entry.attempts);
                    let next = now.plus_millis(jitter(ceiling).as_millis() as i64).min(give_up_at);
                    tracing::debug!(key = %n.key, attempts = entry.attempts + 1, %error, retry_at = next.millis(), "notification not sent; will retry");
                    OutboxTry::Failed { error, next_attempt_at: next }
                }
            }
        };
        if let Err(e) = self.outbox.record(&n.key, &attempt).await {
            // The row stays pending and is tried again, under the same key.
            tracing::warn!(key = %n.key, error = %e, "cannot record a notification's try");
        }
    }

    /// Sends by the contact's channel; returns the channel it went by.
    async fn send(&self, n: &Notification) -> Result<Channel, String> {
        let now = (self.clock)();
        let text = |channel| async move {
            self.gateway.send(n, channel, now).await.map(|()| channel).map_err(|e| e.to_string())
        };
        match (n.channel, &self.push) {
            (Channel::Push, Some(push)) => {
                let subscriptions = self.outbox.subscriptions(&n.elder_id, &n.contact_id).await?;
                let mut errors = Vec::new();
                let mut delivered = false;
                for s in &subscriptions {
                    match self.push_one(push, n, &s.endpoint, &s.p256dh, &s.auth, now).await {
                        Ok(()) => delivered = true,
                        Err(PushFailure::Gone) => {
                            tracing::info!(contact = %n.contact_id, "a push subscription is gone; forgetting it");
                            if let Err(e) = self.outbox.forget_subscription(&s.endpoint).await {
                                tracing::warn!(error = %e, "cannot forget a gone push subscription");
                            }
                        }
                        Err(PushFailure::Other(e)) => errors.push(e),
                    }
                }
                match (delivered, errors.is_empty()) {
                    (true, _) => Ok(Channel::Push),
                    // None subscribed, or all gone: by text instead.
                    (false, true) => text(Channel::Sms).await,
                    (false, false) => Err(errors.join("; ")),
                }
            }
            (Channel::Push, None) => text(Channel::Sms).await,
            (channel, _) => text(channel).await,
        }
    }

    async fn push_one(
        &self,
        push: &Push,
        n: &Notification,
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        now: Timestamp,
    ) -> Result<(), PushFailure> {
        let keys = BrowserKeys::parse(p256dh, auth).map_err(|_| PushFailure::Gone)?;
        let payload = serde_json::json!({
            "key": n.key,
            "incident_id": n.incident_id,
            "elder_id": n.elder_id,
            "notice": n.notice,
            "priority": n.priority,
            "text": n.text,
        });
        let body =
            webpush::encrypt(payload.to_string().as_bytes(), &keys).map_err(|e| PushFailure::Other(e.to_string()))?;
        // A JWT good for 12 hours (RFC 8292 allows 24).
        let expires = now.millis() / 1000 + 12 * 3600;
        let authorization =
            push.vapid.authorization(endpoint, expires).map_err(|e| PushFailure::Other(e.to_string()))?;
        let urgency = if n.priority == NoticePriority::Emergency { "high" } else { "normal" };
        let headers = [
            ("content-encoding", "aes128gcm".to_string()),
            ("content-type", "application/octet-stream".to_string()),
            ("ttl", "3600".to_string()),
            ("urgency", urgency.to_string()),
            ("authorization", authorization),
        ];
        let answer = push.client.post(endpoint, &headers, body).await.map_err(|e| PushFailure::Other(e.to_string()))?;
        match answer.status {
            200..=299 => Ok(()),
            404 | 410 => Err(PushFailure::Gone),
            status => Err(PushFailure::Other(format!("the push service answered HTTP {status}"))),
        }
    }
}

enum PushFailure {
    /// The subscription is no more (HTTP 404 or 410, or keys that never worked).
    Gone,
    Other(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_jitter_stays_under_it() {
        let (base, cap) = (Duration::from_millis(500), Duration::from_secs(30));
        let ceilings: Vec<u128> = (0..9).map(|a| backoff_ceiling(base, cap, a).as_millis()).collect();
        assert_eq!(ceilings, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
        assert_eq!(backoff_ceiling(base, cap, u32::MAX), cap, "no overflow after many tries");
        for _ in 0..1000 {
            assert!(jitter(Duration::from_millis(700)) <= Duration::from_millis(700));
        }
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
    }
}
