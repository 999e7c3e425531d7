//! Anxin's persistence: one [`Store`] trait, with SQLite (the zero-setup default) and
//! PostgreSQL (production, and more than one engine) behind it.
//!
//! Incidents are an append-only event log (`incident_events`, the audit trail) plus a
//! current-state row (`incidents`). Both implementations run the same SQL where the two
//! dialects agree, which is nearly everywhere; each has its own migrations.

mod border;
mod family;
pub mod inbox;
pub mod lease;
mod ledger;
mod migrate;
pub mod milestones;
mod outbox;
pub mod report;
mod requests;
mod services;
mod sql;
mod staff;
mod visits;

use anxin_core::{
    DeviceId, ElderId, Incident, IncidentEvent, IncidentId, MessageId, MessageRecord, OutboxCounts, OutboxEntry,
    OutboxTry, Registry, Resume, Timestamp,
};
use async_trait::async_trait;
use std::sync::Arc;
use thiserror::Error;

pub use family::{FamilyStore, FamilyToken};
pub use ledger::{DeviceAccountRow, LedgerEvent, LedgerItem, LedgerPage, LedgerQuery, LedgerStore, SavedMapping};
pub use report::ReportStore;
pub use requests::AppliedRequestStore;
pub use services::{Names, OrderQuery, ServiceStore};
pub use sql::{PostgresStore, SqliteStore};
pub use staff::{StaffSession, StaffSessionStore};
pub use visits::VisitStore;

/// Why the store could not do what was asked.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Holds the scheme only: the rest of a URL may carry a password.
    #[error("unsupported store URL scheme {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration {version} failed: {source}")]
    Migration { version: i64, source: sqlx::Error },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// What one engine step (or a group of them) must store, all or nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Batch<'a> {
    pub messages: &'a [MessageRecord],
    pub events: &'a [IncidentEvent],
    /// Current-state rows; a later row for the same incident supersedes an earlier one.
    pub incidents: &'a [Incident],
    /// Responders whose duty or position changed; the last entry for each wins.
    pub roster: &'a [anxin_core::Responder],
    /// Notifications to elders' contacts, each under its idempotency key (a key stored
    /// already is left as it is).
    pub notifications: &'a [anxin_core::Notification],
    /// Changes to the ledger: each entry's row, and a line of its log, in the same
    /// transaction.
    pub ledger: &'a [anxin_core::LedgerRecord],
    /// Carers' visits as they are now: each visit's last row is upserted in the visit log.
    pub visits: &'a [anxin_core::Visit],
    /// Service orders as they are now (each order's last row is upserted), and their log.
    pub orders: &'a [anxin_core::ServiceOrder],
    pub order_events: &'a [anxin_core::OrderEvent],
    /// Requests forwarded from other nodes that this batch acted on, by their ids (an id
    /// stored already is left as it is).
    pub requests: &'a [anxin_core::AppliedRequest],
    /// Responders held for another zone's incident or let go of: each one's `held_for` set
    /// (the last hold of each wins).
    pub holds: &'a [anxin_core::Hold],
    /// Messages for other zones' owners, filed in their zones' inboxes (under
    /// [`anxin_core::border::INBOX_TOPIC`]) in the same transaction.
    pub across: &'a [anxin_core::Across],
    /// Messages the batch handled, taken out of the inbox in the same transaction (an
    /// engine reading the inbox: to it the inbox is its broker, and this its
    /// acknowledgement). A key no longer there is passed over.
    pub inbox: &'a [inbox::InboxKey],
}

impl<'a> Batch<'a> {
    /// Everything an engine's outbox asks to store.
    pub fn of(out: &'a anxin_core::Outbox) -> Self {
        Batch {
            messages: &out.messages,
            events: &out.events,
            incidents: &out.incidents,
            roster: &out.roster,
            notifications: &out.notifications,
            ledger: &out.ledger,
            visits: &out.visits,
            orders: &out.orders,
            order_events: &out.order_events,
            requests: &out.requests,
            holds: &out.holds,
            across: &out.across,
            inbox: &[],
        }
    }

    /// The same batch, taking `keys` out of the inbox as it is stored.
    pub fn taking(self, keys: &'a [inbox::InboxKey]) -> Self {
        Batch { inbox: keys, ..self }
    }
}

/// Everything the engine keeps (and, through [`FamilyStore`], families' sign-in tokens and
/// push subscriptions; through [`StaffSessionStore`], dispatchers' sessions).
#[async_trait]
pub trait Store:
    FamilyStore
    + LedgerStore
    + VisitStore
    + ReportStore
    + ServiceStore
    + StaffSessionStore
    + AppliedRequestStore
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
{
    /// Stores a batch in one transaction. Idempotent: a batch stored twice (a retry after
    /// an unclear failure) leaves the same state as once.
    async fn commit(&self, batch: Batch<'_>) -> Result<(), StoreError>;

    /// The ledger: elders, devices, stations, responders.
    async fn load_registry(&self) -> Result<Registry, StoreError>;

    /// Adds to or updates the ledger.
    async fn save_registry(&self, registry: &Registry) -> Result<(), StoreError>;

    /// The zones the ledger's stations are in, retired ones' too (a zone whose last station
    /// was retired may still have incidents open), and zone 0 (elders enrolled with no
    /// station are in it), in order (`anxin_core::zone`).
    async fn ledger_zones(&self) -> Result<Vec<anxin_core::Zone>, StoreError>;

    /// What an engine running `zones` needs to start: their open incidents, their devices'
    /// recent message ids, the highest numbers within each zone's range, and their devices'
    /// health and elders' activity and programme as last snapshotted (`anxin_core::zone`).
    async fn resume(&self, zones: &[anxin_core::Zone], messages_since: Timestamp) -> Result<Resume, StoreError>;

    /// Only `zones`' open incidents and highest numbers: what another node's consoles show of
    /// a zone, as its engine would (views are made of incidents and the ledger alone), read
    /// for a fraction of [`Store::resume`]'s work (no messages, health, activity, programme,
    /// visits or orders).
    async fn resume_open(&self, zones: &[anxin_core::Zone]) -> Result<Resume, StoreError>;

    /// Writes a snapshot of devices' health and watched elders' activity taken at `at` (each
    /// row replaces the device's or the elder's last), in transactions of its own, apart
    /// from the engine's commits.
    async fn save_health(&self, snapshot: &anxin_core::HealthSnapshot, at: Timestamp) -> Result<(), StoreError>;

    /// One incident's current state.
    async fn incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError>;

    /// One incident's audit trail, in order.
    async fn incident_events(&self, id: IncidentId) -> Result<Vec<IncidentEvent>, StoreError>;

    /// Every incident's events logged at or after `since` (on the engine's clock), in order:
    /// the day the supervisors' wallboard rebuilds its figures from at start.
    async fn events_since(&self, since: Timestamp) -> Result<Vec<IncidentEvent>, StoreError>;

    /// `zone`'s events numbered after `after`, in order, at most `limit` of them: how a node
    /// whose zones run elsewhere keeps its wallboard's day current (an index range).
    async fn events_after(
        &self,
        zone: anxin_core::Zone,
        after: u64,
        limit: u32,
    ) -> Result<Vec<IncidentEvent>, StoreError>;

    /// The highest number `zone`'s events have (its base if none).
    async fn last_event_seq(&self, zone: anxin_core::Zone) -> Result<u64, StoreError>;

    /// One elder's incidents pressed at or after `since`, open or not, the latest first, at
    /// most `limit` of them: what a dispatcher reads as the elder's recent history.
    async fn elder_incidents(&self, elder: &ElderId, since: Timestamp, limit: u32)
        -> Result<Vec<Incident>, StoreError>;

    /// Welfare checks opened at or after `since`, open or not, in the order they opened: the
    /// welfare programme's ledger (its calls and visits) is read from these.
    async fn welfare_incidents(&self, since: Timestamp) -> Result<Vec<Incident>, StoreError>;

    /// A stored device message.
    async fn message(&self, device: &DeviceId, msg: &MessageId) -> Result<Option<MessageRecord>, StoreError>;

    /// How many incidents exist, open or not.
    async fn incident_count(&self) -> Result<u64, StoreError>;

    /// The identity of this database's history of events, made on first use. Sequence
    /// numbers from a different history mean nothing here.
    async fn history_id(&self) -> Result<String, StoreError>;

    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    // The notifications' outbox, for the delivery worker (`anxin-notify`, through anxind).

    /// Pending notifications due at `now` (`next_attempt_at <= now`), emergencies first,
    /// then the oldest, at most `limit`.
    async fn due_notifications(&self, now: Timestamp, limit: u32) -> Result<Vec<OutboxEntry>, StoreError>;

    /// [`Store::due_notifications`] of incidents in `zones` only: with zones spread over
    /// nodes, each node sends the notifications of the zones it runs (none, for none).
    async fn due_notifications_in(
        &self,
        now: Timestamp,
        limit: u32,
        zones: &[anxin_core::Zone],
    ) -> Result<Vec<OutboxEntry>, StoreError>;

    /// Records what a try at the notification `key` came to. A notification no longer
    /// pending (delivered already, say) is left as it is. On PostgreSQL without waiting for
    /// the disk: a record lost in a crash means one more try, under the same key.
    async fn record_try(&self, key: &str, attempt: &OutboxTry) -> Result<(), StoreError>;

    /// Records a gateway's receipt: `delivered` (or, with `false`, `dead`: the gateway
    /// could not deliver it) at `at`. Returns false when no notification has that key.
    async fn record_receipt(&self, key: &str, delivered: bool, at: Timestamp) -> Result<bool, StoreError>;

    /// One notification by its key.
    async fn notification(&self, key: &str) -> Result<Option<OutboxEntry>, StoreError>;

    /// How many notifications are in each state, and the oldest pending one's age.
    async fn notification_counts(&self) -> Result<OutboxCounts, StoreError>;

    /// Forgets a subscription the push service says is gone (HTTP 404 or 410), whoever's it
    /// was. (A contact's subscriptions are read and kept through [`FamilyStore`].)
    async fn forget_push_subscription(&self, endpoint: &str) -> Result<(), StoreError>;
}

/// Opens the store a URL names and brings its schema up to date.
/// `sqlite://PATH` (created if missing) or `postgres://...`.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PostgresStore::open(url).await?))
    } else {
        let scheme = url.split_once(':').map_or("(none)", |(s, _)| s);
        Err(StoreError::UnsupportedUrl(scheme.to_string()))
    }
}

/// Test support: a fresh, empty PostgreSQL database per test, named uniquely.
pub mod testkit {
    use sqlx::Connection;

    /// The environment variable naming the PostgreSQL server used by the test suites.
    pub const POSTGRES_URL_VAR: &str = "ANXIN_TEST_POSTGRES_URL";

    /// The server URL to test against, if any. Under `CI=true` a missing URL is an error,
    /// so a suite that needs PostgreSQL fails rather than skips.
    pub fn postgres_server() -> Option<String> {
        match std::env::var(POSTGRES_URL_VAR) {
            Ok(url) if !url.is_empty() => Some(url),
            _ if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("{POSTGRES_URL_VAR} must be set when CI=true: the PostgreSQL suites may not skip")
            }
            _ => None,
        }
    }

    /// The prefix of every test database's name; the rest is `{pid}_{nanos}`.
    const PREFIX: &str = "anxin_test_";

    /// Creates an empty database on the server at `server_url` and returns its URL.
    ///
    /// Test processes do not drop their databases (a test that fails leaves its database to
    /// look at), so first the databases of test processes that have ended are dropped: the
    /// name holds the process id. A database of a process still running is left alone.
    pub async fn fresh_postgres_database(server_url: &str) -> String {
        let mut admin = sqlx::PgConnection::connect(server_url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {server_url}: {e}"));
        let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
            .bind(PREFIX)
            .fetch_all(&mut admin)
            .await
            .unwrap_or_default();
        for name in names.iter().filter(|n| of_ended_process(n)) {
            // Another test process may be sweeping the same name: its failure is no failure.
            let _ = drop_database(&mut admin, name).await;
        }
        // The clock alone is not enough: two tests of one process asked in the same tick and
        // got the same name (seen in CI); a per-process counter tells them apart.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let name = format!("{PREFIX}{}_{nanos}_{n}", std::process::id());
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("create test database");
        let (base, _) = server_url.rsplit_once('/').expect("URL has a database path");
        format!("{base}/{name}")
    }

    /// Whether a test database's process has ended (on a system with `/proc`; elsewhere
    /// nothing is taken to have ended).
    fn of_ended_process(name: &str) -> bool {
        let pid = name.strip_prefix(PREFIX).and_then(|rest| rest.split_once('_')).map(|(pid, _)| pid);
        match pid.and_then(|p| p.parse::<u32>().ok()) {
            Some(pid) => {
                pid != std::process::id()
                    && std::path::Path::new("/proc/self").exists()
                    && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            }
            None => false,
        }
    }

    /// Drops a database [`fresh_postgres_database`] made, closing whatever is still connected.
    pub async fn drop_postgres_database(server_url: &str, database_url: &str) {
        let (_, name) = database_url.rsplit_once('/').expect("URL has a database path");
        let mut admin = sqlx::PgConnection::connect(server_url)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at {server_url}: {e}"));
        drop_database(&mut admin, name).await.unwrap_or_else(|e| panic!("cannot drop the test database {name}: {e}"));
    }

    async fn drop_database(admin: &mut sqlx::PgConnection, name: &str) -> Result<(), sqlx::Error> {
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(admin).await.map(drop)
    }
}
