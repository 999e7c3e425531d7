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
//! - **fence**, inside the transaction that writes, takes the lease's advisory lock shared
//!   and checks that its epoch is still the one held. A node paused past its expiry, cut from
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
/// under way, which holds it exclusively) and refuses when any epoch has moved.
///
/// Several leases (an engine running several zones) are locked in one statement, in the order
/// of their keys: an acquire takes one lock only, so no order of commits and acquires can
/// deadlock.
pub(crate) async fn fence(
    tx: &mut sqlx::Transaction<'static, sqlx::Postgres>,
    leases: &[Lease],
) -> Result<(), FenceError> {
    if let [lease] = leases {
        sqlx::query("SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0))")
            .bind(&lease.key)
            .execute(&mut **tx)
            .await?;
        // A statement of its own: in READ COMMITTED its snapshot is taken now, after the lock
        // was granted, so it sees the epoch of an acquire that committed while the lock was
        // awaited (one statement would read with a snapshot from before the wait).
        let now: Option<i64> = sqlx::query_scalar("SELECT epoch FROM leases WHERE key = $1")
            .bind(&lease.key)
            .fetch_optional(&mut **tx)
            .await?;
        if now != Some(lease.epoch) {
            return Err(FenceError::Fenced { key: lease.key.clone(), held: lease.epoch, now });
        }
        return Ok(());
    }
    let mut keys: Vec<&str> = leases.iter().map(|l| l.key.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    sqlx::query(
        "SELECT count(pg_advisory_xact_lock_shared(hashtextextended(k, 0))) \
         FROM (SELECT k FROM unnest($1::text[]) WITH ORDINALITY AS u(k, n) ORDER BY n) AS sorted",
    )
    .bind(&keys)
    .execute(&mut **tx)
    .await?;
    // As above, read after the locks were granted.
    let now: Vec<(String, i64)> =
        sqlx::query_as("SELECT key, epoch FROM leases WHERE key = ANY($1)").bind(&keys).fetch_all(&mut **tx).await?;
    for lease in leases {
        let epoch = now.iter().find(|(k, _)| *k == lease.key).map(|(_, e)| *e);
        if epoch != Some(lease.epoch) {
            return Err(FenceError::Fenced { key: lease.key.clone(), held: lease.epoch, now: epoch });
        }
    }
    Ok(())
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
