//! The notifications' outbox and the contacts' push subscriptions, as the delivery worker
//! reads and moves them. The rows are inserted with the change that caused them
//! (`sql.rs`, `Rows::of`); this is what happens to them afterwards. One SQL text serves
//! both databases, like the rest of the store.

use crate::sql::{PostgresStore, SqliteStore};
use crate::StoreError;
use anxin_core::{Channel, Notification, OutboxCounts, OutboxEntry, OutboxStatus, OutboxTry, Timestamp};
use sqlx::Row;

const ENTRY_COLUMNS: &str = "key, body, status, attempts, next_attempt_at, last_error, sent_via, sent_at, done_at";

/// Due rows: the index `notifications_due (status, next_attempt_at)` finds them; they are
/// sorted emergencies first (`emergency` sorts before `low`), then by age. With `zones`, only
/// those of incidents numbered in them (a zone's numbers are a range: `Zone::base..end`).
fn due_sql(zones: Option<&[anxin_core::Zone]>) -> String {
    let only = match zones {
        None => String::new(),
        Some(zones) => {
            // Zone numbers, not text from outside.
            let ranges: Vec<String> =
                zones.iter().map(|z| format!("(incident_id >= {} AND incident_id < {})", z.base(), z.end())).collect();
            format!(" AND ({})", ranges.join(" OR "))
        }
    };
    format!(
        "SELECT {ENTRY_COLUMNS} FROM notifications WHERE status = 'pending' AND next_attempt_at <= $1{only} \
         ORDER BY priority, created_at, key LIMIT $2"
    )
}

fn one_sql() -> String {
    format!("SELECT {ENTRY_COLUMNS} FROM notifications WHERE key = $1")
}

// Every try is recorded only on a row still pending: a receipt that came first (or a second
// worker's record) is never undone.
const RECORD_SENT: &str = "status = 'sent', sent_via = $2, sent_at = $3";
const RECORD_FAILED: &str = "attempts = attempts + 1, last_error = $2, next_attempt_at = $3";
const RECORD_DEAD: &str = "status = 'dead', attempts = attempts + 1, last_error = $2, done_at = $3";

/// The statement recording a try (`set`, one of the above). `lazily` (PostgreSQL): without
/// waiting for the disk, in the one statement and so the one round trip: `set_config(…,
/// true)` lasts the statement's own transaction, whose commit it governs. A record a crash
/// loses only means one more try, under the same idempotency key; waiting cost a WAL flush a
/// notification, as many as the presses' own (`tests/cluster.rs` counts them).
fn record_sql(set: &str, lazily: bool) -> String {
    let (with, from) = if lazily {
        ("WITH lazily AS (SELECT set_config('synchronous_commit', 'off', true)) ", "FROM lazily ")
    } else {
        ("", "")
    };
    format!("{with}UPDATE notifications SET {set} {from}WHERE key = $1 AND status = 'pending'")
}

const RECORD_RECEIPT: &str = "UPDATE notifications SET status = $2, done_at = $3, \
     last_error = COALESCE($4, last_error) WHERE key = $1 AND status IN ('pending', 'sent')";
const EXISTS: &str = "SELECT COUNT(*) FROM notifications WHERE key = $1";
const COUNTS: &str = "SELECT status, COUNT(*) AS n FROM notifications GROUP BY status";
const OLDEST_PENDING: &str = "SELECT MIN(created_at) FROM notifications WHERE status = 'pending'";
const DELETE_SUBSCRIPTION: &str = "DELETE FROM push_subscriptions WHERE endpoint = $1";

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// `$postgres`: record tries without waiting for the disk (see `record_sql`).
macro_rules! outbox_store {
    ($store:ty, $row:ty, $postgres:expr) => {
        impl $store {
            /// A stored row back into an entry; the notification itself is its JSON `body`.
            fn outbox_entry(row: &$row) -> Result<OutboxEntry, StoreError> {
                let key: String = row.try_get("key")?;
                let body: String = row.try_get("body")?;
                let notification: Notification =
                    serde_json::from_str(&body).map_err(|e| corrupt(format!("notification {key}: {e}")))?;
                let status: String = row.try_get("status")?;
                let sent_via: Option<String> = row.try_get("sent_via")?;
                Ok(OutboxEntry {
                    notification,
                    status: OutboxStatus::parse(&status)
                        .ok_or_else(|| corrupt(format!("notification status {status:?}")))?,
                    attempts: row.try_get::<i32, _>("attempts")?.max(0) as u32,
                    next_attempt_at: Timestamp(row.try_get("next_attempt_at")?),
                    last_error: row.try_get("last_error")?,
                    sent_via: sent_via
                        .map(|c| Channel::parse(&c).ok_or_else(|| corrupt(format!("notification channel {c:?}"))))
                        .transpose()?,
                    sent_at: row.try_get::<Option<i64>, _>("sent_at")?.map(Timestamp),
                    done_at: row.try_get::<Option<i64>, _>("done_at")?.map(Timestamp),
                })
            }

            pub(crate) async fn outbox_due(
                &self,
                now: Timestamp,
                limit: u32,
                zones: Option<&[anxin_core::Zone]>,
            ) -> Result<Vec<OutboxEntry>, StoreError> {
                if zones.is_some_and(|z| z.is_empty()) {
                    return Ok(Vec::new());
                }
                sqlx::query(&due_sql(zones))
                    .bind(now.millis())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(Self::outbox_entry)
                    .collect()
            }

            pub(crate) async fn outbox_record_try(&self, key: &str, attempt: &OutboxTry) -> Result<(), StoreError> {
                static STATEMENTS: std::sync::LazyLock<[String; 3]> = std::sync::LazyLock::new(|| {
                    [RECORD_SENT, RECORD_FAILED, RECORD_DEAD].map(|set| record_sql(set, $postgres))
                });
                let [sent, failed, dead] = &*STATEMENTS;
                let q = match attempt {
                    OutboxTry::Sent { via, at } => {
                        sqlx::query(sent).bind(key).bind(via.as_str().to_string()).bind(at.millis())
                    }
                    OutboxTry::Failed { error, next_attempt_at } => {
                        sqlx::query(failed).bind(key).bind(error.clone()).bind(next_attempt_at.millis())
                    }
                    OutboxTry::Dead { error, at } => sqlx::query(dead).bind(key).bind(error.clone()).bind(at.millis()),
                };
                q.execute(&self.pool).await?;
                Ok(())
            }

            pub(crate) async fn outbox_record_receipt(
                &self,
                key: &str,
                delivered: bool,
                at: Timestamp,
            ) -> Result<bool, StoreError> {
                let status = if delivered { OutboxStatus::Delivered } else { OutboxStatus::Dead };
                let done = sqlx::query(RECORD_RECEIPT)
                    .bind(key)
                    .bind(status.as_str())
                    .bind(at.millis())
                    .bind((!delivered).then_some("the gateway reported it undelivered"))
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                if done > 0 {
                    return Ok(true);
                }
                let n: i64 = sqlx::query_scalar(EXISTS).bind(key).fetch_one(&self.pool).await?;
                Ok(n > 0)
            }

            pub(crate) async fn outbox_one(&self, key: &str) -> Result<Option<OutboxEntry>, StoreError> {
                sqlx::query(&one_sql())
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await?
                    .as_ref()
                    .map(Self::outbox_entry)
                    .transpose()
            }

            pub(crate) async fn outbox_counts(&self) -> Result<OutboxCounts, StoreError> {
                let mut counts = OutboxCounts::default();
                for row in sqlx::query(COUNTS).fetch_all(&self.pool).await? {
                    let status: String = row.try_get("status")?;
                    let n = row.try_get::<i64, _>("n")?.max(0) as u64;
                    match OutboxStatus::parse(&status) {
                        Some(OutboxStatus::Pending) => counts.pending = n,
                        Some(OutboxStatus::Sent) => counts.sent = n,
                        Some(OutboxStatus::Delivered) => counts.delivered = n,
                        Some(OutboxStatus::Dead) => counts.dead = n,
                        None => return Err(corrupt(format!("notification status {status:?}"))),
                    }
                }
                let oldest: Option<i64> = sqlx::query_scalar(OLDEST_PENDING).fetch_one(&self.pool).await?;
                counts.oldest_pending = oldest.map(Timestamp);
                Ok(counts)
            }

            pub(crate) async fn outbox_forget_subscription(&self, endpoint: &str) -> Result<(), StoreError> {
                sqlx::query(DELETE_SUBSCRIPTION).bind(endpoint).execute(&self.pool).await?;
                Ok(())
            }
        }
    };
}

outbox_store!(SqliteStore, sqlx::sqlite::SqliteRow, false);
outbox_store!(PostgresStore, sqlx::postgres::PgRow, true);
