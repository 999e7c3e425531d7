//! The two SQL stores. The statements are shared: both dialects accept `$n` placeholders,
//! `ON CONFLICT ... DO UPDATE` and multi-row `VALUES`, so one macro writes both impls and
//! the migrations carry the differences (types, booleans).

use crate::migrate::{Migration, CREATE_TABLE, POSTGRES, SQLITE};
use crate::{Batch, Store, StoreError};
use anxin_core::{
    Actor, Change, DeviceId, ElderId, EventType, Incident, IncidentEvent, IncidentId, MessageId, MessageRecord,
    NoticePriority, Notification, OutboxCounts, OutboxEntry, OutboxTry, Registry, Responder, ResponderId, Resume,
    Timestamp, Zone,
};
use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions, Postgres};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite};
use std::collections::HashMap;
use std::ops::Range;
use std::str::FromStr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

/// Which rows of the devices' and elders' tables an engine running `zones` resumes: when
/// it runs every zone of the ledger (`every`), all of them, read whole as a district without
/// zones always has; else those of the elders enrolled with one of the zones' stations (and
/// for zone 0 those enrolled with none) and of their devices, filtered through the ledger.
/// Retired ones too: what is stored of them is their zone's. `column` is the row's elder or
/// device id; `devices`: it is a device's.
fn zone_filter(zones: &[Zone], every: bool, column: &str, devices: bool) -> String {
    if every {
        return String::new();
    }
    // Zone numbers, not text from outside.
    let list: Vec<String> = zones.iter().map(|z| z.number().to_string()).collect();
    let list = if list.is_empty() { "-1".to_string() } else { list.join(", ") };
    let elders = format!(
        "SELECT e.id FROM elders e LEFT JOIN stations s ON s.id = e.station_id WHERE COALESCE(s.zone, 0) IN ({list})"
    );
    if devices {
        format!(" AND {column} IN (SELECT d.id FROM devices d WHERE d.elder_id IN ({elders}))")
    } else {
        format!(" AND {column} IN ({elders})")
    }
}

/// Connections of a PostgreSQL store for the inbox at most ([`PostgresStore`]'s `inbox`): a
/// node's ingest sessions file one batch at a time each, and its zones' readers read briefly.
const INBOX_CONNECTIONS: u32 = 4;

/// Rows per multi-row statement: well under both databases' bind-parameter limits.
pub(crate) const CHUNK: usize = 500;
/// Rows a health snapshot writes in one transaction (9 binds a row: under both databases'
/// limits on parameters, and short enough not to hold the writer from a press for long).
pub(crate) const HEALTH_CHUNK: usize = 2_000;

/// SQLite: a single file, write-ahead log, `synchronous = FULL` so a commit survives power loss.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    /// Events the reports' fold passed over as unreadable ([`crate::milestones`]).
    pub(crate) unreadable: Arc<AtomicU64>,
}

impl SqliteStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        let store = Self { pool, unreadable: Arc::default() };
        store.migrate().await?;
        Ok(store)
    }
}

/// PostgreSQL: the production store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pub(crate) pool: PgPool,
    /// The inbox's filings and reads ([`crate::inbox`]), on connections of their own, opened
    /// when first needed, whose statements are planned once (`plan_cache_mode =
    /// force_generic_plan`). A filing of one message or a few, as a node's ingest sessions
    /// make one each as the broker hands them over, was otherwise planned again every time
    /// (PostgreSQL keeps a custom plan while it estimates one cheaper than the generic, and
    /// with the arrays' lengths known one always is): 25,132 plans for 25,059 filings in the
    /// cluster test, the planning 2.7 times the execution (pg_stat_statements, 2026-12-07).
    /// Their generic plans look rows up by key, whatever the arrays' lengths. The engine's
    /// commits stay on `pool`, planned for each batch as it comes.
    pub(crate) inbox: PgPool,
    /// Events the reports' fold passed over as unreadable ([`crate::milestones`]).
    pub(crate) unreadable: Arc<AtomicU64>,
}

impl PostgresStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url.parse()?, 8).await
    }

    /// Opens the store for an engine that holds a lease (issue 25): its sessions give up a
    /// transaction left open for longer than `lease_ttl` (a process stopped mid-commit would
    /// otherwise hold the lease's row, and so every takeover, for as long as it is stopped),
    /// and a statement waits at most `lease_ttl` for a lock.
    pub async fn open_for_lease(url: &str, lease_ttl: Duration) -> Result<Self, StoreError> {
        Self::open_with(Self::lease_options(url, lease_ttl)?, 8).await
    }

    /// The lease authority's own connection, apart from the engine's pool (which commits,
    /// reports and the notifications' worker may all be using): a renewal never waits for a
    /// pooled connection. Set up as [`PostgresStore::open_for_lease`]'s, on one connection.
    pub async fn open_lease_authority(url: &str, lease_ttl: Duration) -> Result<Self, StoreError> {
        Self::open_with(Self::lease_options(url, lease_ttl)?, 1).await
    }

    fn lease_options(url: &str, lease_ttl: Duration) -> Result<sqlx::postgres::PgConnectOptions, StoreError> {
        let ms = lease_ttl.as_millis().max(1).to_string();
        let options: sqlx::postgres::PgConnectOptions = url.parse()?;
        Ok(options.options([("idle_in_transaction_session_timeout", ms.as_str()), ("lock_timeout", ms.as_str())]))
    }

    async fn open_with(options: sqlx::postgres::PgConnectOptions, connections: u32) -> Result<Self, StoreError> {
        let inbox = PgPoolOptions::new()
            .max_connections(INBOX_CONNECTIONS)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(5))
            .test_before_acquire(false)
            .connect_lazy_with(options.clone().options([("plan_cache_mode", "force_generic_plan")]));
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(5))
            // No ping before every commit: a dead connection fails the commit, which the
            // engine retries (and sqlx replaces the connection).
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let store = Self { pool, inbox, unreadable: Arc::default() };
        store.migrate().await?;
        Ok(store)
    }
}

fn id<T>(parsed: Result<T, anxin_core::IdError>, what: &str) -> Result<T, StoreError> {
    parsed.map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn json<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("JSON body: {e}")))
}

fn event_type(name: Option<String>) -> Result<Option<EventType>, StoreError> {
    name.map(|n| {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == n)
            .ok_or_else(|| StoreError::Corrupt(format!("event type {n}")))
    })
    .transpose()
}

/// The last row per key (an incident, a responder), in the order they came.
pub(crate) fn latest_by<'a, T, K: std::hash::Hash + Eq>(rows: &'a [T], key: impl Fn(&'a T) -> K) -> Vec<&'a T> {
    let mut last: HashMap<K, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        last.insert(key(row), i);
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    keep.into_iter().map(|i| &rows[i]).collect()
}

/// One commit's rows, encoded once for either database.
struct Rows<'a> {
    /// Every text column the batch writes that is not borrowed from it (the events', the
    /// incidents' and the notifications' JSON, the events' actors and types) back to back:
    /// one buffer grown a few times a batch, where a string each took an allocation of its
    /// own and gave it back after the commit. The rows hold their ranges of it.
    text: String,
    messages: &'a [MessageRecord],
    events: Vec<EventRow>,
    /// The last row per incident.
    incidents: Vec<IncidentRow<'a>>,
    /// Duty and position, the last per responder.
    roster: Vec<&'a Responder>,
    notifications: Vec<NotificationRow<'a>>,
    ledger: &'a [anxin_core::LedgerRecord],
    visits: &'a [anxin_core::Visit],
    orders: &'a [anxin_core::ServiceOrder],
    order_events: &'a [anxin_core::OrderEvent],
    requests: &'a [anxin_core::AppliedRequest],
    holds: &'a [anxin_core::Hold],
    across: &'a [anxin_core::Across],
    /// In the order of their keys, as the inbox's writers take them.
    inbox: Vec<&'a crate::inbox::InboxKey>,
}

struct NotificationRow<'a> {
    n: &'a Notification,
    body: Range<usize>,
}

const INSERT_NOTIFICATIONS: &str = "INSERT INTO notifications (key, incident_id, elder_id, contact_id, channel, \
     priority, body, created_at, next_attempt_at) ";
const NOTIFICATIONS_CONFLICT: &str = " ON CONFLICT (key) DO NOTHING";

fn priority_column(p: NoticePriority) -> &'static str {
    match p {
        NoticePriority::Emergency => "emergency",
        NoticePriority::Low => "low",
    }
}

/// An event's columns, its text ones as ranges of [`Rows::text`].
struct EventRow {
    seq: i64,
    incident_id: i64,
    at: i64,
    actor: Range<usize>,
    change: Range<usize>,
    /// The change alone, as JSON: the other fields have columns of their own.
    body: Range<usize>,
}

/// The change's `type`, read off its JSON: serde writes an internally tagged enum's tag
/// first, so it is the first string; the whole body is read only if that ever changes.
#[cfg(test)]
fn change_type(body: &str) -> String {
    match change_type_at(body.as_bytes()) {
        Some(at) => body[at].to_owned(),
        None => change_type_read(body),
    }
}

/// Where [`change_type`] is in `body` when it comes first, as serde writes it. Bytes, so that
/// the commit reads only the head of the JSON it has just written.
fn change_type_at(body: &[u8]) -> Option<Range<usize>> {
    const HEAD: &[u8] = br#"{"type":""#;
    let rest = body.strip_prefix(HEAD)?;
    let len = rest.iter().position(|&b| b == b'"')?;
    Some(HEAD.len()..HEAD.len() + len)
}

/// [`change_type`] the slow way: the whole body read.
fn change_type_read(body: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Tag<'a> {
        #[serde(rename = "type", borrow)]
        kind: &'a str,
    }
    serde_json::from_str::<Tag>(body).map(|t| t.kind.to_owned()).unwrap_or_default()
}

pub(crate) fn actor_column(actor: &Actor) -> String {
    let (kind, id) = actor_parts(actor);
    [kind, id].concat()
}

/// [`actor_column`] in two parts: the kind with its colon, and the id.
fn actor_parts(actor: &Actor) -> (&'static str, &str) {
    match actor {
        Actor::Device(d) => ("device:", d.as_str()),
        Actor::Engine => ("engine", ""),
        Actor::Responder(r) => ("responder:", r.as_str()),
        Actor::Dispatcher(d) => ("dispatcher:", d.as_str()),
        Actor::Family(c) => ("family:", c.as_str()),
    }
}

pub(crate) fn parse_actor(column: &str) -> Result<Actor, StoreError> {
    let corrupt = || StoreError::Corrupt(format!("event actor {column:?}"));
    Ok(match column.split_once(':') {
        None if column == "engine" => Actor::Engine,
        Some(("device", d)) => Actor::Device(DeviceId::parse(d).map_err(|_| corrupt())?),
        Some(("responder", r)) => Actor::Responder(ResponderId::parse(r).map_err(|_| corrupt())?),
        Some(("dispatcher", d)) => Actor::Dispatcher(d.to_owned()),
        Some(("family", c)) => Actor::Family(c.to_owned()),
        _ => return Err(corrupt()),
    })
}

struct IncidentRow<'a> {
    incident: &'a Incident,
    body: Range<usize>,
    /// Opened in this batch, so not stored yet (unless this is a retry).
    new: bool,
}

/// `value` as JSON at the end of `text`, and where.
fn push_json<T: serde::Serialize + ?Sized>(
    text: &mut Vec<u8>,
    value: &T,
    what: &str,
) -> Result<Range<usize>, StoreError> {
    let start = text.len();
    serde_json::to_writer(&mut *text, value)
        .map_err(|err| StoreError::Corrupt(format!("cannot encode {what}: {err}")))?;
    Ok(start..text.len())
}

/// `s` at the end of `text`, and where.
fn push_str(text: &mut Vec<u8>, s: &str) -> Range<usize> {
    let start = text.len();
    text.extend_from_slice(s.as_bytes());
    start..text.len()
}

impl<'a> Rows<'a> {
    fn of(batch: Batch<'a>) -> Result<Self, StoreError> {
        // About what a press's rows take, so that the buffer is grown once or twice.
        let mut text = Vec::with_capacity(batch.events.len() * 160 + batch.incidents.len() * 1_200);
        let events: Vec<EventRow> = batch
            .events
            .iter()
            .map(|e| {
                let body = push_json(&mut text, &e.change, "an event")?;
                let change = match change_type_at(&text[body.clone()]) {
                    Some(at) => body.start + at.start..body.start + at.end,
                    None => {
                        // serde_json wrote it: UTF-8.
                        let kind = std::str::from_utf8(&text[body.clone()]).map(change_type_read).unwrap_or_default();
                        push_str(&mut text, &kind)
                    }
                };
                let (kind, id) = actor_parts(&e.actor);
                let actor = push_str(&mut text, kind).start..push_str(&mut text, id).end;
                Ok(EventRow {
                    seq: e.seq as i64,
                    incident_id: e.incident_id.0 as i64,
                    at: e.at.millis(),
                    actor,
                    change,
                    body,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        let opened: std::collections::HashSet<IncidentId> =
            batch.events.iter().filter(|e| matches!(e.change, Change::Opened { .. })).map(|e| e.incident_id).collect();
        let incidents = latest_by(batch.incidents, |i| i.id)
            .into_iter()
            .map(|incident| {
                let body = push_json(&mut text, incident, "an incident")?;
                Ok(IncidentRow { incident, body, new: opened.contains(&incident.id) })
            })
            .collect::<Result<_, StoreError>>()?;
        let roster = latest_by(batch.roster, |r| r.id.as_str());
        let notifications = batch
            .notifications
            .iter()
            .map(|n| Ok(NotificationRow { n, body: push_json(&mut text, n, "a notification")? }))
            .collect::<Result<_, StoreError>>()?;
        Ok(Self {
            text: String::from_utf8(text).expect("serde_json and the ids write UTF-8"),
            messages: batch.messages,
            events,
            incidents,
            roster,
            notifications,
            ledger: batch.ledger,
            visits: batch.visits,
            orders: batch.orders,
            order_events: batch.order_events,
            requests: batch.requests,
            holds: batch.holds,
            across: batch.across,
            inbox: crate::inbox::in_key_order(batch.inbox),
        })
    }

    /// A text column of the batch's rows.
    fn text(&self, range: &Range<usize>) -> &str {
        &self.text[range.clone()]
    }
}

const INSERT_MESSAGES: &str = "INSERT INTO device_messages (device_id, msg_id, event, received_at, incident_id) ";
const MESSAGES_CONFLICT: &str = " ON CONFLICT (device_id, msg_id) DO NOTHING";
const INSERT_EVENTS: &str = "INSERT INTO incident_events (seq, incident_id, at, actor, change, body) ";
const EVENTS_CONFLICT: &str = " ON CONFLICT (seq) DO NOTHING";
macro_rules! incident_columns {
    () => {
        "id, device_id, elder_id, kind, state, is_open, pressed_at, opened_at, updated_at, last_seq, body"
    };
}
const INCIDENT_COLUMNS: &str = incident_columns!();
const INSERT_INCIDENTS: &str = concat!("INSERT INTO incidents (", incident_columns!(), ") ");
const INCIDENTS_CONFLICT: &str =
    " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, state = excluded.state, is_open = excluded.is_open, \
     updated_at = excluded.updated_at, last_seq = excluded.last_seq, body = excluded.body \
     WHERE incidents.last_seq <= excluded.last_seq";
const UPDATE_ROSTER: &str = "UPDATE responders SET on_duty = $1, lat = $2, lon = $3, position_at = $5 WHERE id = $4";

impl SqliteStore {
    /// One transaction of multi-row `VALUES` statements, `CHUNK` rows each.
    async fn write(&self, rows: &Rows<'_>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // The ledger first: a responder's row it writes is then brought up to date by the
        // roster's duty and position below, which the engine changed after.
        Self::write_ledger(&mut tx, rows.ledger).await?;
        Self::write_visits(&mut tx, rows.visits).await?;
        Self::write_orders(&mut tx, rows.orders, rows.order_events).await?;
        Self::write_requests(&mut tx, rows.requests).await?;
        Self::write_holds(&mut tx, rows.holds).await?;
        Self::write_across(&mut tx, rows.across).await?;
        for chunk in rows.inbox.chunks(CHUNK) {
            crate::inbox::delete_keys(chunk).build().execute(&mut *tx).await?;
        }
        for chunk in rows.messages.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(INSERT_MESSAGES);
            q.push_values(chunk, |mut b, m| {
                b.push_bind(m.device_id.as_str())
                    .push_bind(m.msg_id.as_str())
                    .push_bind(m.event.map(|e| e.as_str()))
                    .push_bind(m.received_at.millis())
                    .push_bind(m.incident_id.map(|i| i.0 as i64));
            });
            q.push(MESSAGES_CONFLICT);
            q.build().execute(&mut *tx).await?;
        }
        for chunk in rows.events.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(INSERT_EVENTS);
            q.push_values(chunk, |mut b, e| {
                b.push_bind(e.seq)
                    .push_bind(e.incident_id)
                    .push_bind(e.at)
                    .push_bind(rows.text(&e.actor))
                    .push_bind(rows.text(&e.change))
                    .push_bind(rows.text(&e.body));
            });
            q.push(EVENTS_CONFLICT);
            q.build().execute(&mut *tx).await?;
        }
        for chunk in rows.incidents.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(INSERT_INCIDENTS);
            q.push_values(chunk, |mut b, row| {
                let i = row.incident;
                b.push_bind(i.id.0 as i64)
                    .push_bind(i.device_id.as_str())
                    .push_bind(i.elder_id.as_str())
                    .push_bind(i.kind.as_str())
                    .push_bind(i.state.as_str())
                    .push_bind(!i.state.is_terminal())
                    .push_bind(i.pressed_at.millis())
                    .push_bind(i.opened_at.millis())
                    .push_bind(i.updated_at.millis())
                    .push_bind(i.last_seq as i64)
                    .push_bind(rows.text(&row.body));
            });
            q.push(INCIDENTS_CONFLICT);
            q.build().execute(&mut *tx).await?;
        }
        for r in &rows.roster {
            sqlx::query(UPDATE_ROSTER)
                .bind(r.on_duty)
                .bind(r.position.lat())
                .bind(r.position.lon())
                .bind(r.id.as_str())
                .bind(r.position_at.map(|t| t.millis()))
                .execute(&mut *tx)
                .await?;
        }
        for chunk in rows.notifications.chunks(CHUNK) {
            let mut q = QueryBuilder::<Sqlite>::new(INSERT_NOTIFICATIONS);
            q.push_values(chunk, |mut b, row| {
                let n = row.n;
                b.push_bind(n.key.as_str())
                    .push_bind(n.incident_id.0 as i64)
                    .push_bind(n.elder_id.as_str())
                    .push_bind(n.contact_id.as_str())
                    .push_bind(n.channel.as_str())
                    .push_bind(priority_column(n.priority))
                    .push_bind(rows.text(&row.body))
                    .push_bind(n.created_at.millis())
                    .push_bind(n.not_before.millis());
            });
            q.push(NOTIFICATIONS_CONFLICT);
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

impl PostgresStore {
    /// One statement for the whole batch: each table's rows go as column arrays that
    /// `UNNEST` turns back into rows, in data-modifying `WITH` clauses before the upsert of
    /// the incidents (PostgreSQL runs every clause to completion). The text never changes
    /// whatever the batch's size, so it is prepared and planned once per connection
    /// (multi-row `VALUES` would be a new statement for every row count), and a commit is
    /// three round trips (`BEGIN`, the statement, `COMMIT`) rather than one a table.
    ///
    /// New rows go in as plain inserts first ([`COMMIT_POSTGRES`]): `ON CONFLICT` makes
    /// every row a speculative insertion, which costs PostgreSQL a second WAL record and more
    /// work per row, to guard against what happens only when a batch is stored again (a retry
    /// after an unclear failure) or a device reuses an old message id. Then the insert fails
    /// on a unique key, nothing of it stays, and the batch goes again with the guards
    /// ([`COMMIT_POSTGRES_AGAIN`]), which leave whatever is already stored as it is.
    async fn write(&self, rows: &Rows<'_>) -> Result<(), StoreError> {
        self.write_fenced(rows, &[]).await.map_err(|e| match e {
            crate::lease::FenceError::Store(e) => e,
            crate::lease::FenceError::Fenced { .. } => unreachable!("a write without a lease is never fenced"),
        })
    }

    /// [`PostgresStore::write`], in a transaction fenced by every lease of `fence`.
    async fn write_fenced(
        &self,
        rows: &Rows<'_>,
        fence: &[crate::lease::Lease],
    ) -> Result<(), crate::lease::FenceError> {
        use crate::lease::FenceError;
        let (first, again) = if fence.is_empty() {
            (&*COMMIT_POSTGRES, &*COMMIT_POSTGRES_AGAIN)
        } else {
            (&*COMMIT_POSTGRES_FENCED, &*COMMIT_POSTGRES_FENCED_AGAIN)
        };
        match self.write_with(rows, first, fence).await {
            Err(FenceError::Store(StoreError::Database(sqlx::Error::Database(e))))
                if e.code().as_deref() == Some(UNIQUE_VIOLATION) =>
            {
                tracing::debug!(error = %e, "part of the batch is stored already: storing it with conflict guards");
                self.write_with(rows, again, fence).await
            }
            result => result,
        }
    }

    /// Stores a batch as [`Store::commit`] does, in a transaction that first checks `lease`
    /// (see [`PostgresStore::begin_fenced`]): refused as [`crate::lease::FenceError::Fenced`],
    /// with nothing written, once the lease has moved to another epoch.
    pub async fn commit_fenced(
        &self,
        batch: Batch<'_>,
        lease: &crate::lease::Lease,
    ) -> Result<(), crate::lease::FenceError> {
        self.write_fenced(&Rows::of(batch)?, std::slice::from_ref(lease)).await
    }

    /// [`PostgresStore::commit_fenced`] under several leases at once (an engine running
    /// several zones): refused as fenced, with nothing written, when any of them has moved on.
    pub async fn commit_fenced_all(
        &self,
        batch: Batch<'_>,
        leases: &[crate::lease::Lease],
    ) -> Result<(), crate::lease::FenceError> {
        self.write_fenced(&Rows::of(batch)?, leases).await
    }

    async fn write_with(
        &self,
        rows: &Rows<'_>,
        statement: &str,
        fence: &[crate::lease::Lease],
    ) -> Result<(), crate::lease::FenceError> {
        // In an explicit transaction all the same: a commit the engine gave up on (past its
        // shutdown deadline, say) must never land later, as a lone statement still would once
        // a lock it waits on is released.
        let mut tx = self.pool.begin().await?;
        // The fence is in the batch's statement (`anxin_fence`, last in it): three round
        // trips a fenced commit, as an unfenced one, not five. Refused, the transaction is
        // rolled back as it is dropped, whatever the statement wrote before the check.
        let fence = crate::lease::Fence::of(fence);
        Self::write_rows(&mut tx, rows, statement, &fence).await.map_err(|e| fence.refused(e))?;
        Ok(tx.commit().await?)
    }

    /// The batch's statements, in `tx`.
    async fn write_rows(
        tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
        rows: &Rows<'_>,
        statement: &str,
        fence: &crate::lease::Fence<'_>,
    ) -> Result<(), StoreError> {
        let (m, e, i, r, n) = (rows.messages, &rows.events, &rows.incidents, &rows.roster, &rows.notifications);
        // Rare, so in statements of their own only when there are any (see the SQLite writer).
        Self::write_ledger(tx, rows.ledger).await?;
        Self::write_visits(tx, rows.visits).await?;
        Self::write_orders(tx, rows.orders, rows.order_events).await?;
        Self::write_requests(tx, rows.requests).await?;
        Self::write_holds(tx, rows.holds).await?;
        Self::write_across(tx, rows.across).await?;
        let query = sqlx::query(statement)
            .bind(m.iter().map(|m| m.device_id.as_str()).collect::<Vec<_>>())
            .bind(m.iter().map(|m| m.msg_id.as_str()).collect::<Vec<_>>())
            .bind(m.iter().map(|m| m.event.map(|e| e.as_str())).collect::<Vec<_>>())
            .bind(m.iter().map(|m| m.received_at.millis()).collect::<Vec<_>>())
            .bind(m.iter().map(|m| m.incident_id.map(|i| i.0 as i64)).collect::<Vec<_>>())
            .bind(e.iter().map(|e| e.seq).collect::<Vec<_>>())
            .bind(e.iter().map(|e| e.incident_id).collect::<Vec<_>>())
            .bind(e.iter().map(|e| e.at).collect::<Vec<_>>())
            .bind(e.iter().map(|e| rows.text(&e.actor)).collect::<Vec<_>>())
            .bind(e.iter().map(|e| rows.text(&e.change)).collect::<Vec<_>>())
            .bind(e.iter().map(|e| rows.text(&e.body)).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.on_duty).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.position.lat()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.position.lon()).collect::<Vec<_>>())
            .bind(r.iter().map(|r| r.position_at.map(|t| t.millis())).collect::<Vec<_>>())
            .bind(i.iter().map(|r| r.incident.id.0 as i64).collect::<Vec<_>>())
            .bind(i.iter().map(|r| r.incident.device_id.as_str()).collect::<Vec<_>>())
            .bind(i.iter().map(|r| r.incident.elder_id.as_str()).collect::<Vec<_>>())
            .bind(i.iter().map(|r| r.incident.kind.as_str()).collect::<Vec<_>>())
            .bind(i.iter().map(|r| r.incident.state.as_str()).collect::<Vec<_>>())
            .bind(i.iter().map(|r| !r.incident.state.is_terminal()).collect::<Vec<_>>())
            .bind(i.iter().map(|r| r.incident.pressed_at.millis()).collect::<Vec<_>>())
            .bind(i.iter().map(|r| r.incident.opened_at.millis()).collect::<Vec<_>>())
            .bind(i.iter().map(|r| r.incident.updated_at.millis()).collect::<Vec<_>>())
            .bind(i.iter().map(|r| r.incident.last_seq as i64).collect::<Vec<_>>())
            .bind(i.iter().map(|r| rows.text(&r.body)).collect::<Vec<_>>())
            .bind(i.iter().map(|r| r.new).collect::<Vec<_>>())
            .bind(n.iter().map(|r| r.n.key.as_str()).collect::<Vec<_>>())
            .bind(n.iter().map(|r| r.n.incident_id.0 as i64).collect::<Vec<_>>())
            .bind(n.iter().map(|r| r.n.elder_id.as_str()).collect::<Vec<_>>())
            .bind(n.iter().map(|r| r.n.contact_id.as_str()).collect::<Vec<_>>())
            .bind(n.iter().map(|r| r.n.channel.as_str()).collect::<Vec<_>>())
            .bind(n.iter().map(|r| priority_column(r.n.priority)).collect::<Vec<_>>())
            .bind(n.iter().map(|r| rows.text(&r.body)).collect::<Vec<_>>())
            .bind(n.iter().map(|r| r.n.created_at.millis()).collect::<Vec<_>>())
            .bind(n.iter().map(|r| r.n.not_before.millis()).collect::<Vec<_>>())
            .bind(rows.inbox.iter().map(|k| k.device_id.as_str()).collect::<Vec<_>>())
            .bind(rows.inbox.iter().map(|k| k.msg_key.as_str()).collect::<Vec<_>>());
        // Only the fenced statements have `$40` and `$41`.
        let query = if fence.is_empty() { query } else { query.bind(fence.keys()).bind(fence.epochs()) };
        query.execute(&mut **tx).await?;
        Ok(())
    }
}

/// PostgreSQL's SQLSTATE for a duplicate key.
const UNIQUE_VIOLATION: &str = "23505";

/// The PostgreSQL commit, new rows as plain inserts: see [`PostgresStore::write`].
static COMMIT_POSTGRES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| commit_postgres(false, false));
/// The same with every insert guarded, for a batch some of which is stored already.
static COMMIT_POSTGRES_AGAIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| commit_postgres(true, false));
/// [`COMMIT_POSTGRES`] fenced by the leases of `$40` (keys, sorted) and `$41` (their epochs).
static COMMIT_POSTGRES_FENCED: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| commit_postgres(false, true));
/// [`COMMIT_POSTGRES_AGAIN`], fenced.
static COMMIT_POSTGRES_FENCED_AGAIN: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| commit_postgres(true, true));

/// The device messages' insert comes first, within the 1,024 characters `pg_stat_activity`
/// shows (`faults.rs` watches for it). Incidents opened in the batch (`$28`) are inserted;
/// the others, stored by an earlier batch, are upserted, never going back to an older state.
/// The family's notifications (`$29`–`$37`) and the inbox's messages the batch handled
/// (`$38`, `$39`: taken out) are in the same statement, empty arrays when there are none: a
/// round trip each fewer, on the path every press waits on.
///
/// `fenced`: the incidents' upsert is a clause too, and the statement ends by calling
/// `anxin_fence($40, $41)` (migration 0026), which takes the leases' locks shared and checks
/// their epochs, each read after its lock was granted, raising `AXFEN` when one has moved on.
/// PostgreSQL runs every data-modifying clause whatever the statement selects, and the error
/// rolls back all of it, so it does not matter which part runs first.
fn commit_postgres(guarded: bool, fenced: bool) -> String {
    let guard = |conflict: &'static str| if guarded { conflict } else { "" };
    let (messages, events, opened) = (guard(MESSAGES_CONFLICT), guard(EVENTS_CONFLICT), guard(INCIDENTS_CONFLICT));
    // The incidents stored by an earlier batch: the statement's last part, or with the fence a
    // clause before it.
    let kept = format!("{INSERT_INCIDENTS}SELECT {INCIDENT_COLUMNS} FROM i WHERE NOT new{INCIDENTS_CONFLICT}");
    format!(
        "WITH messages AS (\n  {INSERT_MESSAGES}\
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[]){messages}\n\
         ), events AS (\n  {INSERT_EVENTS}\
         SELECT * FROM UNNEST($6::int8[], $7::int8[], $8::int8[], $9::text[], $10::text[], $11::text[]){events}\n\
         ), roster AS (\n  \
         UPDATE responders SET on_duty = u.on_duty, lat = u.lat, lon = u.lon, position_at = u.position_at \
         FROM UNNEST($12::text[], $13::bool[], $14::float8[], $15::float8[], $16::int8[]) \
         AS u (id, on_duty, lat, lon, position_at) WHERE responders.id = u.id\n\
         ), i AS (\n  \
         SELECT * FROM UNNEST($17::int8[], $18::text[], $19::text[], $20::text[], $21::text[], $22::bool[], \
         $23::int8[], $24::int8[], $25::int8[], $26::int8[], $27::text[], $28::bool[]) \
         AS i ({INCIDENT_COLUMNS}, new)\n\
         ), opened AS (\n  {INSERT_INCIDENTS}SELECT {INCIDENT_COLUMNS} FROM i WHERE new{opened}\n\
         ), notices AS (\n  {INSERT_NOTIFICATIONS}\
         SELECT * FROM UNNEST($29::text[], $30::int8[], $31::text[], $32::text[], $33::text[], $34::text[], \
         $35::text[], $36::int8[], $37::int8[]){NOTIFICATIONS_CONFLICT}\n\
         ), taken AS (\n  \
         DELETE FROM inbox WHERE (device_id, msg_key) IN (SELECT * FROM UNNEST($38::text[], $39::text[]))\n\
         ){}",
        if fenced {
            format!(", kept AS (\n  {kept}\n)\nSELECT anxin_fence($40::text[], $41::int8[])")
        } else {
            format!("\n{kept}")
        }
    )
}

macro_rules! sql_store {
    ($store:ty, $db:ty, $migrations:expr, $lock:expr) => {
        impl $store {
            async fn migrate(&self) -> Result<(), StoreError> {
                sqlx::query(CREATE_TABLE).execute(&self.pool).await?;
                for Migration { version, name, sql } in $migrations {
                    let mut tx = self.pool.begin().await?;
                    if let Some(lock) = $lock {
                        sqlx::query(lock).execute(&mut *tx).await?;
                    }
                    let done: Option<i64> = sqlx::query_scalar("SELECT version FROM anxin_migrations WHERE version = $1")
                        .bind(version)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if done.is_some() {
                        continue;
                    }
                    sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(|source| StoreError::Migration { version: *version, source })?;
                    sqlx::query("INSERT INTO anxin_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                        .bind(version)
                        .bind(*name)
                        .bind(anxin_proto::wall_clock_now().millis())
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    tracing::info!(version, name, "applied migration");
                }
                Ok(())
            }

            /// An event as read back (`seq, incident_id, at, actor, body`).
            fn event_of(row: &<$db as sqlx::Database>::Row) -> Result<IncidentEvent, StoreError> {
                Ok(IncidentEvent {
                    seq: row.try_get::<i64, _>("seq")? as u64,
                    incident_id: IncidentId(row.try_get::<i64, _>("incident_id")? as u64),
                    at: Timestamp(row.try_get("at")?),
                    actor: parse_actor(&row.try_get::<String, _>("actor")?)?,
                    change: json(&row.try_get::<String, _>("body")?)?,
                })
            }

            /// The responders of `zones` held for another zone's incident (`anxin_core::border`).
            async fn zone_holds(&self, zones: &[Zone]) -> Result<Vec<(ResponderId, IncidentId)>, StoreError> {
                // Zone numbers, not text from outside.
                let list: Vec<String> = zones.iter().map(|z| z.number().to_string()).collect();
                let list = if list.is_empty() { "-1".to_string() } else { list.join(", ") };
                let rows = sqlx::query(&format!(
                    "SELECT r.id, r.held_for FROM responders r JOIN stations s ON s.id = r.station_id \
                     WHERE r.held_for IS NOT NULL AND COALESCE(s.zone, 0) IN ({list})"
                ))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|row| {
                        Ok((
                            id(ResponderId::parse(row.try_get::<String, _>("id")?), "responder id")?,
                            IncidentId(row.try_get::<i64, _>("held_for")? as u64),
                        ))
                    })
                    .collect()
            }

            /// A zone's open incidents and its highest numbers.
            async fn zone_open(&self, zone: Zone) -> Result<(Vec<Incident>, anxin_core::Counters), StoreError> {
                // The zone's numbers lie strictly between these (anxin_core::zone).
                let (lo, hi) = (zone.base() as i64, zone.end() as i64);
                let mut open = Vec::new();
                for row in sqlx::query("SELECT body FROM incidents WHERE is_open = $1 AND id > $2 AND id < $3 ORDER BY id")
                    .bind(true)
                    .bind(lo)
                    .bind(hi)
                    .fetch_all(&self.pool)
                    .await?
                {
                    open.push(json::<anxin_core::Incident>(&row.try_get::<String, _>("body")?)?);
                }
                // Each the highest within the zone's range: an index range, not a scan.
                let highest =
                    |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).bind(lo).bind(hi).fetch_one(&self.pool);
                let counters = anxin_core::Counters {
                    incident: highest("SELECT COALESCE(MAX(id), 0) FROM incidents WHERE id > $1 AND id < $2").await? as u64,
                    seq: highest("SELECT COALESCE(MAX(seq), 0) FROM incident_events WHERE seq > $1 AND seq < $2").await?
                        as u64,
                    ledger: highest("SELECT COALESCE(MAX(seq), 0) FROM ledger_events WHERE seq > $1 AND seq < $2").await?
                        as u64,
                    ..Default::default()
                };
                Ok((open, counters))
            }
        }

        #[async_trait]
        impl Store for $store {
            async fn commit(&self, batch: Batch<'_>) -> Result<(), StoreError> {
                self.write(&Rows::of(batch)?).await
            }

            async fn load_registry(&self) -> Result<Registry, StoreError> {
                use anxin_core::{Entry, LedgerKind};
                let mut registry = Registry::default();
                for kind in LedgerKind::ALL {
                    let sql = format!(
                        "SELECT {} FROM {} WHERE retired_at IS NULL ORDER BY id",
                        crate::ledger::columns(kind),
                        crate::ledger::table(kind)
                    );
                    // Row by row: a million devices' rows are not all held at once.
                    let mut rows = sqlx::query(&sql).fetch(&self.pool);
                    while let Some(row) = futures_util::TryStreamExt::try_next(&mut rows).await? {
                        match Self::entry_row(kind, &row)?.0 {
                            Entry::Elder(e) => registry.elders.push(e),
                            Entry::Device(d) => registry.devices.push(d),
                            Entry::Station(x) => registry.stations.push(x),
                            Entry::Responder(r) => registry.responders.push(r),
                            Entry::Staff(x) => registry.staff.push(x),
                            Entry::Provider(p) => registry.providers.push(p),
                        }
                    }
                }
                Ok(registry)
            }

            async fn save_registry(&self, registry: &Registry) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                for chunk in registry.elders.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new("INSERT INTO elders (id, name, address, home_lat, home_lon, phone, notes, profile, station_id) ");
                    q.push_values(chunk, |mut b, e| {
                        b.push_bind(e.id.as_str())
                            .push_bind(e.name.as_str())
                            .push_bind(e.address.as_str())
                            .push_bind(e.home.lat())
                            .push_bind(e.home.lon())
                            .push_bind(e.phone.as_deref())
                            .push_bind(e.notes.as_str())
                            .push_bind(serde_json::to_string(&e.profile).expect("a profile serialises"))
                            .push_bind(e.profile.station_id.as_ref().map(|s| s.as_str()));
                    });
                    q.push(
                        " ON CONFLICT (id) DO UPDATE SET name = excluded.name, address = excluded.address, \
                         home_lat = excluded.home_lat, home_lon = excluded.home_lon, phone = excluded.phone, notes = excluded.notes, \
                         profile = excluded.profile, station_id = excluded.station_id",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in registry.stations.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new("INSERT INTO stations (id, name, lat, lon, phone, service_circle_min, zone) ");
                    q.push_values(chunk, |mut b, s| {
                        b.push_bind(s.id.as_str())
                            .push_bind(s.name.as_str())
                            .push_bind(s.position.lat())
                            .push_bind(s.position.lon())
                            .push_bind(s.phone.as_deref())
                            .push_bind(s.service_circle_min.map(|m| m.min(i32::MAX as u32) as i32))
                            .push_bind(i32::from(s.zone.number()));
                    });
                    q.push(" ON CONFLICT (id) DO UPDATE SET name = excluded.name, lat = excluded.lat, lon = excluded.lon, phone = excluded.phone, service_circle_min = excluded.service_circle_min, zone = excluded.zone");
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in registry.devices.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new("INSERT INTO devices (id, elder_id, model, sim) ");
                    q.push_values(chunk, |mut b, d| {
                        b.push_bind(d.id.as_str())
                            .push_bind(d.elder_id.as_str())
                            .push_bind(d.model.as_deref())
                            .push_bind(d.sim.as_deref());
                    });
                    q.push(" ON CONFLICT (id) DO UPDATE SET elder_id = excluded.elder_id, model = excluded.model, sim = excluded.sim");
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in registry.responders.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new("INSERT INTO responders (id, name, station_id, phone, token_sha256, mode, skills, lat, lon, on_duty, provider_id) ");
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(r.id.as_str())
                            .push_bind(r.name.as_str())
                            .push_bind(r.station_id.as_str())
                            .push_bind(r.phone.as_deref())
                            .push_bind(r.token_sha256.as_deref())
                            .push_bind(r.mode.as_str())
                            .push_bind(r.skills.join(","))
                            .push_bind(r.position.lat())
                            .push_bind(r.position.lon())
                            .push_bind(r.on_duty)
                            .push_bind(r.provider_id.as_ref().map(|p| p.as_str()));
                    });
                    q.push(
                        // Duty and position are live state (phones change them): a registry file
                        // sets them for new responders only, so a restart does not undo them.
                        " ON CONFLICT (id) DO UPDATE SET name = excluded.name, station_id = excluded.station_id, \
                         phone = excluded.phone, token_sha256 = excluded.token_sha256, mode = excluded.mode, \
                         skills = excluded.skills, provider_id = excluded.provider_id",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in registry.providers.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new("INSERT INTO providers (id, name, phone, body) ");
                    q.push_values(chunk, |mut b, p| {
                        b.push_bind(p.id.as_str())
                            .push_bind(p.name.as_str())
                            .push_bind(p.phone.as_deref())
                            .push_bind(crate::ledger::provider_body(p));
                    });
                    q.push(" ON CONFLICT (id) DO UPDATE SET name = excluded.name, phone = excluded.phone, body = excluded.body");
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in registry.staff.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new("INSERT INTO staff (id, name, role, password_hash) ");
                    q.push_values(chunk, |mut b, s| {
                        b.push_bind(s.id.as_str())
                            .push_bind(s.name.as_str())
                            .push_bind(s.role.as_str())
                            .push_bind(s.password_hash.as_str());
                    });
                    q.push(" ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role, password_hash = excluded.password_hash");
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn ledger_zones(&self) -> Result<Vec<Zone>, StoreError> {
                let mut zones = vec![Zone::FIRST];
                for n in sqlx::query_scalar::<_, i32>("SELECT DISTINCT zone FROM stations")
                    .fetch_all(&self.pool)
                    .await?
                {
                    zones.push(Zone::new(n.into()).map_err(|e| crate::ledger::corrupt("station zone", e))?);
                }
                zones.sort_unstable();
                zones.dedup();
                Ok(zones)
            }

            async fn resume(&self, zones: &[Zone], messages_since: Timestamp) -> Result<Resume, StoreError> {
                let mut resume = Resume::default();
                let every = self.ledger_zones().await?.iter().all(|z| zones.contains(z));
                // This month's and last month's orders still count against capacity and
                // allowances: read back from 62 days ago (a month before the earliest start of
                // last month), whatever the centre's time zone.
                let since = Timestamp(messages_since.millis().saturating_sub(62 * 86_400_000));
                // Each zone's reads, the zones side by side on the pool's connections: a
                // takeover of several zones does not wait for them one after another.
                let each = zones.iter().map(|&zone| async move {
                    let (open, mut counters) = self.zone_open(zone).await?;
                    let visits;
                    (visits, counters.visit) = self.open_visits(zone).await?;
                    let orders;
                    (orders, counters.order, counters.order_seq) = self.resume_orders(zone, since).await?;
                    Ok::<_, StoreError>((zone, open, counters, visits, orders))
                });
                for (zone, open, counters, visits, orders) in futures_util::future::try_join_all(each).await? {
                    resume.open.extend(open);
                    resume.visits.extend(visits);
                    resume.orders.extend(orders);
                    resume.counters.insert(zone, counters);
                }
                // Each device's and elder's rows once, whichever zones they are in.
                for row in sqlx::query(&format!(
                    "SELECT device_id, msg_id, received_at FROM device_messages WHERE received_at >= $1{} \
                     ORDER BY received_at",
                    zone_filter(zones, every, "device_id", true)
                ))
                .bind(messages_since.millis())
                .fetch_all(&self.pool)
                .await?
                {
                    resume.recent_messages.push((
                        Timestamp(row.try_get("received_at")?),
                        id(DeviceId::parse(row.try_get::<String, _>("device_id")?), "device id")?,
                        id(MessageId::parse(row.try_get::<String, _>("msg_id")?), "message id")?,
                    ));
                }
                for row in sqlx::query(&format!(
                    "SELECT device_id, last_seen, interval_s, battery_pct, rssi, charging, worn, offline FROM device_health \
                     WHERE TRUE{}",
                    zone_filter(zones, every, "device_id", true)
                ))
                .fetch_all(&self.pool)
                .await?
                {
                    resume.health.push(anxin_core::HealthRow {
                        device_id: id(DeviceId::parse(row.try_get::<String, _>("device_id")?), "device id")?,
                        last_seen: row.try_get::<Option<i64>, _>("last_seen")?.map(Timestamp),
                        interval_s: row.try_get::<Option<i32>, _>("interval_s")?.map(|s| s.max(0) as u32),
                        battery_pct: row.try_get::<Option<i16>, _>("battery_pct")?.map(|p| p.clamp(0, 100) as u8),
                        rssi: row.try_get::<Option<i16>, _>("rssi")?,
                        charging: row.try_get("charging")?,
                        worn: row.try_get("worn")?,
                        offline: row.try_get("offline")?,
                    });
                }
                for row in sqlx::query(&format!(
                    "SELECT elder_id, device_id, last_active, first_day, last_day, days FROM elder_activity WHERE TRUE{}",
                    zone_filter(zones, every, "elder_id", false)
                ))
                .fetch_all(&self.pool)
                .await?
                {
                    let days: String = row.try_get("days")?;
                    resume.activity.push(anxin_core::ActivityRow {
                        elder_id: id(ElderId::parse(row.try_get::<String, _>("elder_id")?), "elder id")?,
                        device_id: id(DeviceId::parse(row.try_get::<String, _>("device_id")?), "device id")?,
                        last_active: Timestamp(row.try_get("last_active")?),
                        first_day: row.try_get("first_day")?,
                        last_day: row.try_get("last_day")?,
                        // A mask that does not read is taken as a day with nothing.
                        days: days.split(',').map(|d| d.trim().parse().unwrap_or(0)).collect(),
                    });
                }
                for row in sqlx::query(&format!(
                    "SELECT elder_id, call_done, visit_done, call_tries, call_retry_at, visit_retry_at FROM welfare_programme \
                     WHERE TRUE{}",
                    zone_filter(zones, every, "elder_id", false)
                ))
                .fetch_all(&self.pool)
                .await?
                {
                    let at = |name: &str| -> Result<Option<Timestamp>, sqlx::Error> {
                        Ok(row.try_get::<Option<i64>, _>(name)?.map(Timestamp))
                    };
                    resume.programme.push(anxin_core::ProgrammeRow {
                        elder_id: id(ElderId::parse(row.try_get::<String, _>("elder_id")?), "elder id")?,
                        call_done: at("call_done")?,
                        visit_done: at("visit_done")?,
                        call_tries: row.try_get::<i32, _>("call_tries")?.clamp(0, 255) as u8,
                        call_retry_at: at("call_retry_at")?,
                        visit_retry_at: at("visit_retry_at")?,
                    });
                }
                resume.holds = self.zone_holds(zones).await?;
                // Oldest first, whatever their zone.
                resume.recent_messages.sort_by_key(|m| m.0);
                Ok(resume)
            }

            async fn resume_open(&self, zones: &[Zone]) -> Result<Resume, StoreError> {
                let mut resume = Resume::default();
                let each = zones.iter().map(|&zone| async move { Ok::<_, StoreError>((zone, self.zone_open(zone).await?)) });
                for (zone, (open, counters)) in futures_util::future::try_join_all(each).await? {
                    resume.open.extend(open);
                    resume.counters.insert(zone, counters);
                }
                resume.holds = self.zone_holds(zones).await?;
                Ok(resume)
            }

            async fn save_health(&self, snapshot: &anxin_core::HealthSnapshot, at: Timestamp) -> Result<(), StoreError> {
                // In transactions of a few thousand rows each, so that a snapshot of a
                // million devices never holds the writer long enough to delay a press.
                for chunk in snapshot.devices.chunks(HEALTH_CHUNK) {
                    let mut tx = self.pool.begin().await?;
                    let mut q = QueryBuilder::<$db>::new(
                        "INSERT INTO device_health (device_id, last_seen, interval_s, battery_pct, rssi, charging, worn, offline, saved_at) ",
                    );
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(r.device_id.as_str())
                            .push_bind(r.last_seen.map(Timestamp::millis))
                            .push_bind(r.interval_s.map(|s| s.min(i32::MAX as u32) as i32))
                            .push_bind(r.battery_pct.map(i16::from))
                            .push_bind(r.rssi)
                            .push_bind(r.charging)
                            .push_bind(r.worn)
                            .push_bind(r.offline)
                            .push_bind(at.millis());
                    });
                    q.push(
                        " ON CONFLICT (device_id) DO UPDATE SET last_seen = excluded.last_seen, interval_s = excluded.interval_s, \
                         battery_pct = excluded.battery_pct, rssi = excluded.rssi, charging = excluded.charging, \
                         worn = excluded.worn, offline = excluded.offline, saved_at = excluded.saved_at",
                    );
                    q.build().execute(&mut *tx).await?;
                    tx.commit().await?;
                }
                for chunk in snapshot.elders.chunks(HEALTH_CHUNK) {
                    let mut tx = self.pool.begin().await?;
                    let mut q = QueryBuilder::<$db>::new(
                        "INSERT INTO elder_activity (elder_id, device_id, last_active, first_day, last_day, days, saved_at) ",
                    );
                    q.push_values(chunk, |mut b, r| {
                        let days: Vec<String> = r.days.iter().map(u32::to_string).collect();
                        b.push_bind(r.elder_id.as_str())
                            .push_bind(r.device_id.as_str())
                            .push_bind(r.last_active.millis())
                            .push_bind(r.first_day)
                            .push_bind(r.last_day)
                            .push_bind(days.join(","))
                            .push_bind(at.millis());
                    });
                    q.push(
                        " ON CONFLICT (elder_id) DO UPDATE SET device_id = excluded.device_id, \
                         last_active = excluded.last_active, first_day = excluded.first_day, \
                         last_day = excluded.last_day, days = excluded.days, saved_at = excluded.saved_at",
                    );
                    q.build().execute(&mut *tx).await?;
                    tx.commit().await?;
                }
                for chunk in snapshot.programme.chunks(HEALTH_CHUNK) {
                    let mut tx = self.pool.begin().await?;
                    let mut q = QueryBuilder::<$db>::new(
                        "INSERT INTO welfare_programme (elder_id, call_done, visit_done, call_tries, call_retry_at, visit_retry_at, saved_at) ",
                    );
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(r.elder_id.as_str())
                            .push_bind(r.call_done.map(Timestamp::millis))
                            .push_bind(r.visit_done.map(Timestamp::millis))
                            .push_bind(i32::from(r.call_tries))
                            .push_bind(r.call_retry_at.map(Timestamp::millis))
                            .push_bind(r.visit_retry_at.map(Timestamp::millis))
                            .push_bind(at.millis());
                    });
                    q.push(
                        " ON CONFLICT (elder_id) DO UPDATE SET call_done = excluded.call_done, \
                         visit_done = excluded.visit_done, call_tries = excluded.call_tries, \
                         call_retry_at = excluded.call_retry_at, visit_retry_at = excluded.visit_retry_at, \
                         saved_at = excluded.saved_at",
                    );
                    q.build().execute(&mut *tx).await?;
                    tx.commit().await?;
                }
                Ok(())
            }

            async fn incident(&self, incident: IncidentId) -> Result<Option<Incident>, StoreError> {
                let body: Option<String> = sqlx::query_scalar("SELECT body FROM incidents WHERE id = $1")
                    .bind(incident.0 as i64)
                    .fetch_optional(&self.pool)
                    .await?;
                body.map(|b| json(&b)).transpose()
            }

            async fn incident_events(&self, incident: IncidentId) -> Result<Vec<IncidentEvent>, StoreError> {
                sqlx::query("SELECT seq, at, actor, body FROM incident_events WHERE incident_id = $1 ORDER BY seq")
                    .bind(incident.0 as i64)
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|row| {
                        Ok(IncidentEvent {
                            seq: row.try_get::<i64, _>("seq")? as u64,
                            incident_id: incident,
                            at: Timestamp(row.try_get("at")?),
                            actor: parse_actor(&row.try_get::<String, _>("actor")?)?,
                            change: json(&row.try_get::<String, _>("body")?)?,
                        })
                    })
                    .collect()
            }

            async fn events_since(&self, since: Timestamp) -> Result<Vec<IncidentEvent>, StoreError> {
                sqlx::query("SELECT seq, incident_id, at, actor, body FROM incident_events WHERE at >= $1 ORDER BY seq")
                    .bind(since.millis())
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|row| Self::event_of(&row))
                    .collect()
            }

            async fn events_after(&self, zone: Zone, after: u64, limit: u32) -> Result<Vec<IncidentEvent>, StoreError> {
                sqlx::query(
                    "SELECT seq, incident_id, at, actor, body FROM incident_events WHERE seq > $1 AND seq < $2 \
                     ORDER BY seq LIMIT $3",
                )
                .bind(after.max(zone.base()) as i64)
                .bind(zone.end() as i64)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|row| Self::event_of(&row))
                .collect()
            }

            async fn last_event_seq(&self, zone: Zone) -> Result<u64, StoreError> {
                let highest: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), $1) FROM incident_events WHERE seq > $1 AND seq < $2")
                    .bind(zone.base() as i64)
                    .bind(zone.end() as i64)
                    .fetch_one(&self.pool)
                    .await?;
                Ok(highest as u64)
            }

            async fn elder_incidents(&self, elder: &ElderId, since: Timestamp, limit: u32) -> Result<Vec<Incident>, StoreError> {
                sqlx::query(
                    "SELECT body FROM incidents WHERE elder_id = $1 AND pressed_at >= $2 \
                     ORDER BY pressed_at DESC, id DESC LIMIT $3",
                )
                .bind(elder.as_str())
                .bind(since.millis())
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?
                .into_iter()
                .map(|row| json(&row.try_get::<String, _>("body")?))
                .collect()
            }

            async fn welfare_incidents(&self, since: Timestamp) -> Result<Vec<Incident>, StoreError> {
                sqlx::query("SELECT body FROM incidents WHERE kind = 'welfare' AND opened_at >= $1 ORDER BY id")
                    .bind(since.millis())
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|row| json(&row.try_get::<String, _>("body")?))
                    .collect()
            }

            async fn message(&self, device: &DeviceId, msg: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
                let row = sqlx::query(
                    "SELECT event, received_at, incident_id FROM device_messages WHERE device_id = $1 AND msg_id = $2",
                )
                .bind(device.as_str())
                .bind(msg.as_str())
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| {
                    Ok(MessageRecord {
                        device_id: device.clone(),
                        msg_id: msg.clone(),
                        event: event_type(row.try_get("event")?)?,
                        received_at: Timestamp(row.try_get("received_at")?),
                        incident_id: row.try_get::<Option<i64>, _>("incident_id")?.map(|i| IncidentId(i as u64)),
                    })
                })
                .transpose()
            }

            async fn incident_count(&self) -> Result<u64, StoreError> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM incidents").fetch_one(&self.pool).await?;
                Ok(n as u64)
            }

            async fn history_id(&self) -> Result<String, StoreError> {
                sqlx::query("INSERT INTO anxin_meta (key, value) VALUES ('history_id', $1) ON CONFLICT (key) DO NOTHING")
                    .bind(new_history_id())
                    .execute(&self.pool)
                    .await?;
                Ok(sqlx::query_scalar("SELECT value FROM anxin_meta WHERE key = 'history_id'").fetch_one(&self.pool).await?)
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            // The notifications' outbox: in `outbox.rs`.

            async fn due_notifications(&self, now: Timestamp, limit: u32) -> Result<Vec<OutboxEntry>, StoreError> {
                self.outbox_due(now, limit, None).await
            }

            async fn due_notifications_in(
                &self,
                now: Timestamp,
                limit: u32,
                zones: &[anxin_core::Zone],
            ) -> Result<Vec<OutboxEntry>, StoreError> {
                self.outbox_due(now, limit, Some(zones)).await
            }

            async fn record_try(&self, key: &str, attempt: &OutboxTry) -> Result<(), StoreError> {
                self.outbox_record_try(key, attempt).await
            }

            async fn record_receipt(&self, key: &str, delivered: bool, at: Timestamp) -> Result<bool, StoreError> {
                self.outbox_record_receipt(key, delivered, at).await
            }

            async fn notification(&self, key: &str) -> Result<Option<OutboxEntry>, StoreError> {
                self.outbox_one(key).await
            }

            async fn notification_counts(&self) -> Result<OutboxCounts, StoreError> {
                self.outbox_counts().await
            }

            async fn forget_push_subscription(&self, endpoint: &str) -> Result<(), StoreError> {
                self.outbox_forget_subscription(endpoint).await
            }
        }
    };
}

sql_store!(SqliteStore, Sqlite, SQLITE, None::<&str>);
impl SqliteStore {
    crate::ledger::ledger_rows!(sqlx::sqlite::SqliteRow);
    crate::ledger::write_ledger!(Sqlite);
    crate::visits::visit_rows!(Sqlite);
    crate::services::order_rows!(Sqlite);
    crate::requests::write_requests!(Sqlite);
    crate::border::write_holds!(Sqlite);
    crate::border::write_across!(Sqlite, false);
}
crate::visits::visit_store!(SqliteStore);
crate::inbox::inbox_store!(SqliteStore);
crate::services::service_store!(SqliteStore);
crate::ledger::ledger_store!(SqliteStore, Sqlite);
crate::report::report_store!(SqliteStore);
crate::milestones::fold_milestones!(SqliteStore, Sqlite);
// Two engines starting at once must not both migrate: the lock lasts until the transaction ends.
sql_store!(PostgresStore, Postgres, POSTGRES, Some("SELECT pg_advisory_xact_lock(7253110)"));
impl PostgresStore {
    crate::ledger::ledger_rows!(sqlx::postgres::PgRow);
    crate::ledger::write_ledger!(Postgres);
    crate::visits::visit_rows!(Postgres);
    crate::services::order_rows!(Postgres);
    crate::requests::write_requests!(Postgres);
    crate::border::write_holds!(Postgres);
    crate::border::write_across!(Postgres, true);
}
crate::visits::visit_store!(PostgresStore);
crate::inbox::inbox_store!(PostgresStore);
crate::services::service_store!(PostgresStore);
crate::ledger::ledger_store!(PostgresStore, Postgres);
crate::report::report_store!(PostgresStore);
crate::milestones::fold_milestones!(PostgresStore, Postgres);

/// A fresh identity for a database's history of events: the time in nanoseconds mixed with
/// the process id, unique enough for telling one database from its replacement.
fn new_history_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("h{:x}", nanos ^ (u128::from(std::process::id()) << 64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_actor_reads_back_from_its_column() {
        for actor in [
            Actor::Engine,
            Actor::Device(DeviceId::parse("d-1").unwrap()),
            Actor::Responder(ResponderId::parse("r-7").unwrap()),
            Actor::Dispatcher("wang:night shift".into()),
        ] {
            assert_eq!(parse_actor(&actor_column(&actor)).unwrap(), actor);
        }
        for bad in ["", "robot:x", "device:", "engine:1"] {
            assert!(parse_actor(bad).is_err(), "{bad:?} is not an actor");
        }
    }

    #[test]
    fn the_change_type_is_the_serialised_tag() {
        let r = ResponderId::parse("r-1").unwrap();
        for change in [
            Change::EnRoute,
            Change::Accepted { responder_id: r.clone() },
            Change::Offered { responder_id: r, distance_m: 412.5, deadline: Timestamp(9) },
            Change::Resolved { outcome: "送医 \"急\"".into() },
        ] {
            let body = serde_json::to_string(&change).unwrap();
            let tag = serde_json::from_str::<serde_json::Value>(&body).unwrap()["type"].as_str().unwrap().to_owned();
            assert_eq!(change_type(&body), tag, "{body}");
        }
        // Were the tag ever not first, the body is read in full.
        assert_eq!(change_type(r#"{"outcome":"ok","type":"resolved"}"#), "resolved");
    }
}
