//! Leases with fencing, on PostgreSQL: the lease authority for engines on several machines
//! sharing one store (issue 25; `docs/architecture.md`, "Leases and fencing").
//!
//! A lease names what is held (`zone:3`, `slot:1`), who holds it, an **epoch** and an expiry
//! on the database's clock. Each rule is one statement, so two nodes asking at once cannot
//! both win:
//!
//! - **acquire** takes a key nobody holds, or one whose expiry has passed, and adds one to its
//!   epoch;
//! - **renew** pushes the expiry on, for the holder of the epoch it names only (a renewal after
//!   the expiry still succeeds while nobody has taken the key: the epoch is unchanged, so no
//!   one else acted under it);
//! - **release** ends a lease at once (SIGTERM hands over without waiting for the expiry);
//! - **fence**, inside the transaction that writes (in the very statement that writes, for
//!   an engine's commit: `anxin_fence`, migration 0026), takes the lease's advisory lock
//!   shared and checks that its epoch is still the one held. A node paused past its expiry, cut from
//!   the database or simply slow finds the epoch moved on and its commit refused as *fenced*,
//!   so it acknowledges, sends and shows nothing (it only ever does so after a commit). An
//!   acquire takes the same lock exclusively, so it waits for every commit that passed its
//!   fence, and a commit waits for an acquire under way and then reads its epoch.
//!
//! The lock is a transaction-scoped advisory lock on a hash of the key, not a `FOR SHARE` lock
//! on the lease's row: a row lock is written into the row (two commits at once make a
//! MultiXact), and it doubled the median press → console at 2,000 presses/s
//! (docs/benchmarks.md, "The fence's cost"); an advisory lock lives in the lock manager's
//! memory and writes nothing.
//!
//! Expiry is only liveness: it decides when another node may try. Safety rests on the epoch.
//! Clocks of the nodes never enter: every time is the database's `clock_timestamp()`.

use crate::sql::PostgresStore;
use crate::StoreError;
use std::time::Duration;

/// A lease this node holds: the key, the holder's name and the epoch it was granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub key: String,
    pub holder: String,
    pub epoch: i64,
}

/// A lease as the table has it now, for operators and for choosing whom to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub key: String,
    pub holder: String,
    pub epoch: i64,
    /// Milliseconds until it expires on the database's clock (negative: expired).
    pub expires_in_ms: i64,
    pub addr: String,
}

/// Why a fenced write was refused.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// The lease moved on: another node took it (or it was never granted). Nothing written
    /// under `held` may be acknowledged, sent or shown; the zone must be dropped.
    #[error("fenced: lease {key} is at epoch {now:?}, this node holds epoch {held}")]
    Fenced { key: String, held: i64, now: Option<i64> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for FenceError {
    fn from(e: sqlx::Error) -> Self {
        FenceError::Store(StoreError::Database(e))
    }
}

fn millis(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
}

impl PostgresStore {
    /// The connection pool, for a fenced transaction's own statements and for tests.
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.pool
    }

    /// Takes `key` for `holder` for `ttl` if nobody holds it or its lease has expired, with
    /// the next epoch; `None` while another's lease runs. `addr` says where the holder takes
    /// commands.
    pub async fn lease_acquire(
        &self,
        key: &str,
        holder: &str,
        ttl: Duration,
        addr: &str,
    ) -> Result<Option<Lease>, StoreError> {
        // A standby asks several times a second. Asking under the lock would stall the
        // holder's commits each time (they take it shared, and queue behind a waiting
        // exclusive request), so it first looks, without the lock, whether the lease runs;
        // the grant below checks again under it.
        let runs: Option<bool> =
            sqlx::query_scalar("SELECT expires_at >= clock_timestamp() FROM leases WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?;
        if runs == Some(true) {
            return Ok(None);
        }
        let mut tx = self.pool.begin().await?;
        // Every commit fenced by this key holds the lock shared: the new epoch waits for them.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(key).execute(&mut *tx).await?;
        let epoch: Option<i64> = sqlx::query_scalar(
            "INSERT INTO leases (key, holder, epoch, expires_at, addr) \
             VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 millisecond', $4) \
             ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, epoch = leases.epoch + 1, \
             expires_at = excluded.expires_at, addr = excluded.addr \
             WHERE leases.expires_at < clock_timestamp() \
             RETURNING epoch",
        )
        .bind(key)
        .bind(holder)
        .bind(millis(ttl) as f64)
        .bind(addr)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(epoch.map(|epoch| Lease { key: key.to_string(), holder: holder.to_string(), epoch }))
    }

    /// Pushes the lease's expiry to `ttl` from now; `false` when the key has moved to another
    /// epoch or the lease has run out (the lease is lost: drop what it covered).
    ///
    /// A lease that has run out is not renewed, even while nobody has taken it: the renewal
    /// may be one its holder gave up on long ago (sent as the node was cut from the database,
    /// and delivered when the link healed), and the holder has dropped what it covered by its
    /// own clock since. Renewed, the key would stay held by a node running nothing under it,
    /// and taken by nobody for another whole lease (a node's own `node:` key so revived made
    /// the others hand it zones it would not take, back and forth, for 5 s). The holder takes
    /// it again instead, under the next epoch.
    pub async fn lease_renew(&self, lease: &Lease, ttl: Duration) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE leases SET expires_at = clock_timestamp() + $4 * interval '1 millisecond' \
             WHERE key = $1 AND holder = $2 AND epoch = $3 AND expires_at >= clock_timestamp()",
        )
        .bind(&lease.key)
        .bind(&lease.holder)
        .bind(lease.epoch)
        .bind(millis(ttl) as f64)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// [`PostgresStore::lease_renew`] for several leases in one statement: the keys of those
    /// renewed (a key missing has moved on: that lease is lost).
    pub async fn lease_renew_all(&self, leases: &[Lease], ttl: Duration) -> Result<Vec<String>, StoreError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let renewed = sqlx::query_scalar(
            "UPDATE leases AS l SET expires_at = clock_timestamp() + $4 * interval '1 millisecond' \
             FROM unnest($1::text[], $2::text[], $3::bigint[]) AS h(key, holder, epoch) \
             WHERE l.key = h.key AND l.holder = h.holder AND l.epoch = h.epoch \
               AND l.expires_at >= clock_timestamp() RETURNING l.key",
        )
        .bind(leases.iter().map(|l| l.key.as_str()).collect::<Vec<_>>())
        .bind(leases.iter().map(|l| l.holder.as_str()).collect::<Vec<_>>())
        .bind(leases.iter().map(|l| l.epoch).collect::<Vec<_>>())
        .bind(millis(ttl) as f64)
        .fetch_all(&self.pool)
        .await?;
        Ok(renewed)
    }

    /// Ends the lease now, so that another node may take the key at once. A lease already
    /// lost is left as it is.
    ///
    /// The release is announced to [`Releases`] listeners, so that a standby takes the key at
    /// once rather than at its next ask.
    pub async fn lease_release(&self, lease: &Lease) -> Result<(), StoreError> {
        sqlx::query(
            "WITH released AS (\
               UPDATE leases SET expires_at = clock_timestamp() - interval '1 millisecond' \
               WHERE key = $1 AND holder = $2 AND epoch = $3 RETURNING key) \
             SELECT pg_notify('anxin_lease_released', key) FROM released",
        )
        .bind(&lease.key)
        .bind(&lease.holder)
        .bind(lease.epoch)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// [`PostgresStore::lease_release`] for several leases in one statement: their releases
    /// are announced together, when it commits, so a node taking them over hears of them all
    /// at once (and builds its engine once, not once a lease).
    pub async fn lease_release_all(&self, leases: &[Lease]) -> Result<(), StoreError> {
        if leases.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "WITH released AS (\
               UPDATE leases AS l SET expires_at = clock_timestamp() - interval '1 millisecond' \
               FROM unnest($1::text[], $2::text[], $3::bigint[]) AS h(key, holder, epoch) \
               WHERE l.key = h.key AND l.holder = h.holder AND l.epoch = h.epoch RETURNING l.key) \
             SELECT pg_notify('anxin_lease_released', key) FROM released",
        )
        .bind(leases.iter().map(|l| l.key.as_str()).collect::<Vec<_>>())
        .bind(leases.iter().map(|l| l.holder.as_str()).collect::<Vec<_>>())
        .bind(leases.iter().map(|l| l.epoch).collect::<Vec<_>>())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every lease, by key.
    pub async fn leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        use sqlx::Row;
        let rows = sqlx::query(
            "SELECT key, holder, epoch, addr, \
             (EXTRACT(EPOCH FROM (expires_at - clock_timestamp())) * 1000)::BIGINT AS expires_in_ms \
             FROM leases ORDER BY key",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LeaseRow {
                    key: r.try_get("key")?,
                    holder: r.try_get("holder")?,
                    epoch: r.try_get("epoch")?,
                    expires_in_ms: r.try_get("expires_in_ms")?,
                    addr: r.try_get("addr")?,
                })
            })
            .collect()
    }

    /// Begins a transaction fenced by `lease`: the lease's lock is taken shared (a takeover
    /// waits for this transaction to end) and its epoch checked. Refused as
    /// [`FenceError::Fenced`] when the key has moved on; the caller then writes nothing and
    /// drops what the lease covered.
    pub async fn begin_fenced(&self, lease: &Lease) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, FenceError> {
        let mut tx = self.pool.begin().await?;
        // On a refusal, dropping the transaction rolls it back.
        fence(&mut tx, std::slice::from_ref(lease)).await?;
        Ok(tx)
    }
}

/// The fence, first in a transaction: takes each lease's lock shared (waiting for an acquire
/// under way, which holds it exclusively) and refuses when any epoch has moved. One statement,
/// `anxin_fence` (migration 0026); a commit calls it from inside its own statement instead
/// ([`Fence`]).
pub(crate) async fn fence(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    leases: &[Lease],
) -> Result<(), FenceError> {
    let fence = Fence::of(leases);
    sqlx::query("SELECT anxin_fence($1::text[], $2::int8[])")
        .bind(fence.keys())
        .bind(fence.epochs())
        .execute(&mut **tx)
        .await
        .map_err(|e| fence.refused(StoreError::Database(e)))?;
    Ok(())
}

/// The leases a statement is fenced by, as `anxin_fence` takes them: keys sorted and
/// distinct (each lock is taken in that order: an acquire takes one lock only, so no order of
/// commits and acquires can deadlock), with the epochs held.
///
/// `anxin_fence` is a VOLATILE function, so each of its statements takes a snapshot of its
/// own, after the locks were granted: it sees the epoch of an acquire that committed while a
/// lock was awaited, even when called from a statement whose own snapshot is older (the
/// commit's). So the fence costs no round trip of its own.
#[derive(Debug)]
pub(crate) struct Fence<'a>(Vec<&'a Lease>);

/// The SQLSTATE `anxin_fence` raises when an epoch has moved on.
const FENCED: &str = "AXFEN";

impl<'a> Fence<'a> {
    pub(crate) fn of(leases: &'a [Lease]) -> Self {
        let mut sorted: Vec<&Lease> = leases.iter().collect();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        sorted.dedup_by(|a, b| a.key == b.key);
        Fence(sorted)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn keys(&self) -> Vec<&'a str> {
        self.0.iter().map(|l| l.key.as_str()).collect()
    }

    pub(crate) fn epochs(&self) -> Vec<i64> {
        self.0.iter().map(|l| l.epoch).collect()
    }

    /// `e` as [`FenceError::Fenced`] when `anxin_fence` refused (its detail names the key
    /// and the epoch it is at now); any other error as it is.
    pub(crate) fn refused(&self, e: StoreError) -> FenceError {
        #[derive(serde::Deserialize)]
        struct Detail {
            key: String,
            now: Option<i64>,
        }
        if let StoreError::Database(sqlx::Error::Database(db)) = &e {
            if db.code().as_deref() == Some(FENCED) {
                let detail = db
                    .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                    .and_then(|pg| pg.detail())
                    .and_then(|d| serde_json::from_str::<Detail>(d).ok());
                if let Some(Detail { key, now }) = detail {
                    if let Some(lease) = self.0.iter().find(|l| l.key == key) {
                        return FenceError::Fenced { key, held: lease.epoch, now };
                    }
                }
                // A refusal whose detail cannot be read is still a refusal: the first lease
                // stands for them all.
                if let Some(lease) = self.0.first() {
                    return FenceError::Fenced { key: lease.key.clone(), held: lease.epoch, now: None };
                }
            }
        }
        FenceError::Store(e)
    }
}

/// Leases released ([`PostgresStore::lease_release`]), as they are: a standby waits on these
/// as well as asking now and then. On a connection of its own, reconnected when lost (a
/// release announced meanwhile is missed: the asking still finds it).
#[derive(Debug)]
pub struct Releases(Channel);

impl Releases {
    pub async fn listen(url: &str) -> Result<Self, StoreError> {
        Ok(Releases(Channel::listen(url, "anxin_lease_released").await?))
    }

    /// The key of the next lease released.
    pub async fn next(&mut self) -> Result<String, StoreError> {
        self.0.next().await
    }
}

/// A PostgreSQL notification channel, listened to on a connection of its own.
#[derive(Debug)]
pub(crate) struct Channel(sqlx::postgres::PgListener);

impl Channel {
    pub(crate) async fn listen(url: &str, channel: &str) -> Result<Self, StoreError> {
        let mut listener = sqlx::postgres::PgListener::connect(url).await?;
        listener.listen(channel).await?;
        Ok(Channel(listener))
    }

    /// The next notification's payload.
    pub(crate) async fn next(&mut self) -> Result<String, StoreError> {
        Ok(self.0.recv().await?.payload().to_string())
    }
}
