//! The inbox (issue 25; `SCALE-OUT.md`, "Ingest"): device messages an ingest session stores
//! before acknowledging them to the broker, each under the zone of its device's elder, for the
//! engine running that zone to read and take out in the same transaction that stores what
//! they caused ([`crate::Batch::taking`]): to the engine the inbox is its broker, and that
//! commit its acknowledgement. So a message acknowledged by any node is never lost, whichever
//! node owns its zone; a repeat of a message already in (the broker's, or a device's) is
//! absorbed by the key; and a message is handled and taken out, or neither (on PostgreSQL
//! under the zone's fence: an owner fenced takes nothing out). A message filed again after it
//! was taken out (a device that did not hear, and sends it again) is read again, and the engine
//! finds its id stored and tells the device again.

use crate::StoreError;
use anxin_core::{Timestamp, Zone};
use async_trait::async_trait;

/// One message in the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxEntry {
    /// As the topic named it: not checked here (a bad one is the engine's to count).
    pub device_id: String,
    /// See [`message_key`].
    pub msg_key: String,
    /// The zone it was filed under (set by the store from the ledger; ignored when putting).
    pub zone: Zone,
    pub topic: String,
    pub payload: Vec<u8>,
    pub received_at: Timestamp,
}

impl InboxEntry {
    /// A message from `topic`'s device, keyed by [`message_key`].
    pub fn new(device_id: &str, topic: &str, payload: Vec<u8>, received_at: Timestamp) -> Self {
        InboxEntry {
            device_id: device_id.to_string(),
            msg_key: message_key(&payload),
            zone: Zone::FIRST,
            topic: topic.to_string(),
            payload,
            received_at,
        }
    }

    pub fn key(&self) -> InboxKey {
        InboxKey { device_id: self.device_id.clone(), msg_key: self.msg_key.clone() }
    }
}

/// Which message of the inbox: its device and its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InboxKey {
    pub device_id: String,
    pub msg_key: String,
}

/// A message's key in the inbox: its `msg_id` when the payload is JSON with one that is a
/// string, else `digest:` and the first 16 bytes of the payload's SHA-256 in hex (a message
/// that cannot be read is still kept, once, for the engine to count).
pub fn message_key(payload: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        msg_id: Option<std::borrow::Cow<'a, str>>,
    }
    match serde_json::from_slice::<Id<'_>>(payload) {
        Ok(Id { msg_id: Some(id) }) if !id.is_empty() && id.len() <= 128 => id.into_owned(),
        _ => {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(payload);
            let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
            format!("digest:{hex}")
        }
    }
}

/// The inbox, on either database.
#[async_trait]
pub trait InboxStore: Send + Sync {
    /// Files `entries` in one transaction, each under its device's zone as the ledger has it
    /// now (zone 0 for a device it does not know); a message already in is left as it is.
    /// Returns the zones that got a new message. On PostgreSQL each such zone is announced
    /// (`pg_notify('anxin_inbox', zone)`) when the transaction commits.
    async fn inbox_put(&self, entries: &[InboxEntry]) -> Result<Vec<Zone>, StoreError>;

    /// Up to `limit` messages of `zones`, oldest first.
    async fn inbox_take(&self, zones: &[Zone], limit: u32) -> Result<Vec<InboxEntry>, StoreError>;
}

/// The zones PostgreSQL announces new messages in (`NOTIFY anxin_inbox`, sent by
/// [`InboxStore::inbox_put`]), on a connection of its own, reconnected when lost (one
/// announced meanwhile is missed: a zone's owner reads its inbox every poll as well).
#[derive(Debug)]
pub struct Announcements(crate::lease::Channel);

impl Announcements {
    pub async fn listen(url: &str) -> Result<Self, StoreError> {
        Ok(Announcements(crate::lease::Channel::listen(url, "anxin_inbox").await?))
    }

    /// The zone of the next message announced (its number, as sent).
    pub async fn next(&mut self) -> Result<String, StoreError> {
        self.0.next().await
    }
}

/// Files one message under its device's zone, answering the zone if it is new.
pub(crate) const INBOX_PUT: &str = "INSERT INTO inbox (device_id, msg_key, zone, topic, payload, received_at) \
     VALUES ($1, $2, COALESCE((SELECT s.zone FROM devices d JOIN elders e ON e.id = d.elder_id \
     JOIN stations s ON s.id = e.station_id WHERE d.id = $1), 0), $3, $4, $5) \
     ON CONFLICT (device_id, msg_key) DO NOTHING RETURNING zone";

macro_rules! inbox_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::inbox::InboxStore for $store {
            async fn inbox_put(
                &self,
                entries: &[crate::inbox::InboxEntry],
            ) -> Result<Vec<anxin_core::Zone>, crate::StoreError> {
                // In the order of their keys, as every writer and the acknowledgements take
                // them: two sessions filing the same messages (a resend given to each) then
                // wait for each other rather than deadlock.
                let mut sorted: Vec<&crate::inbox::InboxEntry> = entries.iter().collect();
                sorted.sort_unstable_by(|a, b| (&a.device_id, &a.msg_key).cmp(&(&b.device_id, &b.msg_key)));
                let mut zones = self.inbox_file(&sorted).await?;
                zones.sort_unstable();
                zones.dedup();
                Ok(zones)
            }

            async fn inbox_take(
                &self,
                zones: &[anxin_core::Zone],
                limit: u32,
            ) -> Result<Vec<crate::inbox::InboxEntry>, crate::StoreError> {
                use sqlx::Row;
                if zones.is_empty() {
                    return Ok(Vec::new());
                }
                // Zone numbers, not text from outside.
                let list: Vec<String> = zones.iter().map(|z| z.number().to_string()).collect();
                let sql = format!(
                    "SELECT device_id, msg_key, zone, topic, payload, received_at FROM inbox WHERE zone IN ({}) \
                     ORDER BY received_at, device_id, msg_key LIMIT $1",
                    list.join(", ")
                );
                let rows = sqlx::query(&sql).bind(i64::from(limit)).fetch_all(self.inbox_pool()).await?;
                rows.iter()
                    .map(|row| {
                        Ok(crate::inbox::InboxEntry {
                            device_id: row.try_get("device_id")?,
                            msg_key: row.try_get("msg_key")?,
                            zone: anxin_core::Zone::new(row.try_get::<i32, _>("zone")?.into())
                                .map_err(|e| crate::ledger::corrupt("inbox zone", e))?,
                            topic: row.try_get("topic")?,
                            payload: row.try_get("payload")?,
                            received_at: anxin_core::Timestamp(row.try_get("received_at")?),
                        })
                    })
                    .collect()
            }
        }
    };
}
pub(crate) use inbox_store;

/// `keys` in the order every writer of the inbox takes them (two transactions touching the
/// same messages then wait for each other rather than deadlock).
pub(crate) fn in_key_order(keys: &[InboxKey]) -> Vec<&InboxKey> {
    let mut sorted: Vec<&InboxKey> = keys.iter().collect();
    sorted.sort_unstable_by(|a, b| (&a.device_id, &a.msg_key).cmp(&(&b.device_id, &b.msg_key)));
    sorted
}

/// SQLite's deletion of `keys` from the inbox, in one statement.
pub(crate) fn delete_keys<'a>(keys: &[&'a InboxKey]) -> sqlx::QueryBuilder<'a, sqlx::Sqlite> {
    let mut q = sqlx::QueryBuilder::new("DELETE FROM inbox WHERE (device_id, msg_key) IN (VALUES ");
    let mut rows = q.separated(", ");
    for k in keys {
        rows.push("(").push_bind_unseparated(k.device_id.as_str()).push_unseparated(", ");
        rows.push_bind_unseparated(k.msg_key.as_str()).push_unseparated(")");
    }
    q.push(")");
    q
}

/// A zone number as stored, checked.
fn stored_zone(z: i32) -> Result<Zone, StoreError> {
    Zone::new(z.into()).map_err(|e| crate::ledger::corrupt("station zone", e))
}

impl crate::sql::SqliteStore {
    pub(crate) fn inbox_pool(&self) -> &sqlx::SqlitePool {
        &self.pool
    }

    /// Files `entries` (sorted by key), one statement each, in one transaction: the zones of
    /// those new.
    pub(crate) async fn inbox_file(&self, entries: &[&InboxEntry]) -> Result<Vec<Zone>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut zones = Vec::new();
        for e in entries {
            let zone: Option<i32> = sqlx::query_scalar(INBOX_PUT)
                .bind(e.device_id.as_str())
                .bind(e.msg_key.as_str())
                .bind(e.topic.as_str())
                .bind(e.payload.as_slice())
                .bind(e.received_at.millis())
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(z) = zone {
                zones.push(stored_zone(z)?);
            }
        }
        tx.commit().await?;
        Ok(zones)
    }
}

impl crate::sql::PostgresStore {
    /// The inbox's own connections, planned once (see [`crate::PostgresStore`]).
    pub(crate) fn inbox_pool(&self) -> &sqlx::PgPool {
        &self.inbox
    }

    /// Files `entries` (sorted by key) in one statement, and so one round trip and one
    /// transaction: the zones of those new, each announced (`pg_notify('anxin_inbox', zone)`,
    /// heard when the statement commits).
    pub(crate) async fn inbox_file(&self, entries: &[&InboxEntry]) -> Result<Vec<Zone>, StoreError> {
        let zones: Vec<i32> = sqlx::query_scalar(
            "WITH filed AS ( \
               INSERT INTO inbox (device_id, msg_key, zone, topic, payload, received_at) \
               SELECT m.device_id, m.msg_key, COALESCE(( \
                 SELECT s.zone FROM devices d JOIN elders e ON e.id = d.elder_id \
                 JOIN stations s ON s.id = e.station_id WHERE d.id = m.device_id), 0), \
                 m.topic, m.payload, m.received_at \
               FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bigint[]) \
                 WITH ORDINALITY AS m(device_id, msg_key, topic, payload, received_at, n) \
               ORDER BY m.n \
               ON CONFLICT (device_id, msg_key) DO NOTHING RETURNING zone \
             ), zones AS (SELECT DISTINCT zone FROM filed) \
             SELECT zone FROM zones, LATERAL (SELECT pg_notify('anxin_inbox', zone::text)) AS told",
        )
        .bind(entries.iter().map(|e| e.device_id.as_str()).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.msg_key.as_str()).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.topic.as_str()).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.payload.as_slice()).collect::<Vec<_>>())
        .bind(entries.iter().map(|e| e.received_at.millis()).collect::<Vec<_>>())
        .fetch_all(&self.inbox)
        .await?;
        zones.into_iter().map(stored_zone).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inbox's filings are planned once, on the store's inbox connections: PostgreSQL's
    /// default kept a custom plan for every one-message filing (`PostgresStore`'s `inbox`).
    #[tokio::test]
    async fn filings_on_postgres_are_planned_once() {
        let Some(server) = crate::testkit::postgres_server() else { return eprintln!("skipped: no PostgreSQL") };
        let store = crate::PostgresStore::open(&crate::testkit::fresh_postgres_database(&server).await).await.unwrap();
        // One at a time, over the one or two connections the pool makes.
        for i in 0..12 {
            let entry = InboxEntry::new("d-1", "t", format!(r#"{{"msg_id":"m{i}"}}"#).into_bytes(), Timestamp(i));
            store.inbox_put(&[entry]).await.unwrap();
        }
        let mut conn = store.inbox_pool().acquire().await.unwrap();
        let (generic, custom): (i64, i64) = sqlx::query_as(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement LIKE '%INSERT INTO inbox%'",
        )
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        // PostgreSQL's default plans the first five executions on a connection each time.
        assert!(
            generic > 0 && custom == 0,
            "filings' plans on an inbox connection: {generic} generic, {custom} custom"
        );
    }
}
