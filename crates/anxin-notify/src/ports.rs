//! What the worker needs from the rest of anxind, as traits: the outbox in the store, the
//! engine to tell what became of a notification, the metrics, the clock. anxind implements
//! them on its real parts; `anxin-notify` knows neither the store nor the engine's task.

use anxin_core::Timestamp;
use anxin_core::{Channel, Delivery, ElderId, Notification, OutboxCounts, OutboxEntry, OutboxTry, PushSubscription};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The store's side of the outbox, as the worker sees it. Errors are the store's, as text:
/// the worker logs them and tries again on its next round.
pub trait OutboxPort: Send + Sync {
    /// Pending notifications due at `now`, emergencies first, then the oldest, at most `limit`.
    fn due(&self, now: Timestamp, limit: u32) -> BoxFuture<'_, Result<Vec<OutboxEntry>, String>>;

    /// Records what a try came to.
    fn record<'a>(&'a self, key: &'a str, attempt: &'a OutboxTry) -> BoxFuture<'a, Result<(), String>>;

    /// How many notifications are in each state, and the oldest pending one.
    fn counts(&self) -> BoxFuture<'_, Result<OutboxCounts, String>>;

    /// A contact's Web Push subscriptions.
    fn subscriptions<'a>(
        &'a self,
        elder: &'a ElderId,
        contact: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PushSubscription>, String>>;

    /// Forgets a subscription its push service says is gone.
    fn forget_subscription<'a>(&'a self, endpoint: &'a str) -> BoxFuture<'a, Result<(), String>>;
}

/// Tells the engine what became of a notification (it logs a `family_delivery` event, and a
/// dead one brings in the next contact). Returns once the engine has it, or has refused it.
pub trait Reporter: Send + Sync {
    fn report<'a>(&'a self, notification: &'a Notification, delivery: Delivery) -> BoxFuture<'a, ()>;
}

/// What the worker counts. Every method has an empty default.
pub trait Telemetry: Send + Sync {
    /// A try that a gateway or push service took, by the channel it went by.
    fn sent(&self, via: Channel) {
        let _ = via;
    }
    /// A try refused or unanswered, to be tried again, by the notification's channel.
    fn failed(&self, channel: Channel) {
        let _ = channel;
    }
    /// A notification given up, by its channel.
    fn dead(&self, channel: Channel) {
        let _ = channel;
    }
    /// The outbox's counts, now and then.
    fn backlog(&self, counts: &OutboxCounts, now: Timestamp) {
        let _ = (counts, now);
    }
}

/// Counts nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTelemetry;

impl Telemetry for NoTelemetry {}

/// The time, as the engine reads it (a test's manual clock included).
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;
