//! The durable outbox of notifications as the delivery worker sees it: a stored
//! [`Notification`] with its delivery state, what one try did, and the Web Push
//! subscriptions a contact's phone registered. Data only; the store keeps it, `anxin-notify`
//! moves it on.

use crate::family::{Channel, Notification};
use crate::ids::{ElderId, Timestamp};
use serde::{Deserialize, Serialize};

/// Where a notification is on its way: `pending` until a gateway or push service takes it
/// (`sent`), then `delivered` on the gateway's receipt; `dead` when every try failed until
/// the give-up time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    Sent,
    Delivered,
    Dead,
}

impl OutboxStatus {
    pub const ALL: [OutboxStatus; 4] =
        [OutboxStatus::Pending, OutboxStatus::Sent, OutboxStatus::Delivered, OutboxStatus::Dead];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "pending",
            OutboxStatus::Sent => "sent",
            OutboxStatus::Delivered => "delivered",
            OutboxStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// A notification as stored, with its delivery state.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub notification: Notification,
    pub status: OutboxStatus,
    /// Tries that failed so far.
    pub attempts: u32,
    /// Not tried before this (quiet hours, then the retry backoff).
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    /// The channel it went by (a `push` with no subscription goes as `sms`).
    pub sent_via: Option<Channel>,
    pub sent_at: Option<Timestamp>,
    /// Delivered or given up.
    pub done_at: Option<Timestamp>,
}

/// What one try at a notification came to, for the store to record.
#[derive(Debug, Clone, PartialEq)]
pub enum OutboxTry {
    /// A gateway or push service took it, by `via`.
    Sent { via: Channel, at: Timestamp },
    /// Refused or unanswered: tried again at `next_attempt_at`.
    Failed { error: String, next_attempt_at: Timestamp },
    /// Refused or unanswered, and past the give-up time: nobody is told this way.
    Dead { error: String, at: Timestamp },
}

/// How many notifications are in each state, and how long the oldest pending one has waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxCounts {
    pub pending: u64,
    pub sent: u64,
    pub delivered: u64,
    pub dead: u64,
    /// `created_at` of the oldest notification still pending.
    pub oldest_pending: Option<Timestamp>,
}

/// A Web Push subscription a contact's family page registered: the push service's endpoint
/// (RFC 8030) and the browser's keys (RFC 8291), base64url without padding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushSubscription {
    pub endpoint: String,
    pub elder_id: ElderId,
    pub contact_id: String,
    /// The browser's P-256 public key, uncompressed (65 bytes).
    pub p256dh: String,
    /// The 16-byte authentication secret.
    pub auth: String,
    pub created_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_from_their_names() {
        for s in OutboxStatus::ALL {
            assert_eq!(OutboxStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OutboxStatus::parse("gone"), None);
    }
}
