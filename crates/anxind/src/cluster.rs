//! Hot standby on a lease (issue 25, `[cluster]`): wait for the district's lease, hold it
//! while the engine runs, fence every commit by its epoch, and hand it over at shutdown.
//!
//! One lease, `zone:0`, covers the whole district: one engine runs, the others stand by. The
//! lease and the fence are `anxin_store::lease` (docs/architecture.md, "Leases and fencing").

use crate::config::ClusterConfig;
use anxin_core::Outbox;
use anxin_runtime::ports::BoxFuture;
use anxin_runtime::CommitError;
use anxin_store::lease::{FenceError, Lease, Releases};
use anxin_store::PostgresStore;
use anyhow::Context;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The lease key of the whole district (zones will have one each).
pub const DISTRICT: &str = "zone:0";

/// The lease this engine holds; the store its engine commits to (opened for a lease: see
/// [`PostgresStore::open_for_lease`]); and the lease authority's own connection, which asks
/// for, renews and releases it (a renewal never waits behind the engine's commits).
///
/// It is renewed from the moment it is granted (building the engine from a large ledger may
/// take longer than the lease), until [`Held::hand_over`] or [`Held::stop_renewing`].
#[derive(Debug, Clone)]
pub struct Held {
    pub store: Arc<PostgresStore>,
    pub authority: Arc<PostgresStore>,
    /// The leases the engine commits under: the district's (`zone:0`), or, with the zones
    /// spread over the nodes, its zone's (`crate::node`).
    pub leases: Vec<Lease>,
    renewals: Arc<Renewals>,
}

#[derive(Debug)]
struct Renewals {
    lost: CancellationToken,
    stop: CancellationToken,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Held {
    fn renewed(store: Arc<PostgresStore>, authority: Arc<PostgresStore>, lease: Lease, config: &ClusterConfig) -> Self {
        let (lost, stop) = (CancellationToken::new(), CancellationToken::new());
        let task = tokio::spawn(keep(authority.clone(), lease.clone(), config.clone(), stop.clone(), lost.clone()));
        let renewals = Arc::new(Renewals { lost, stop, task: std::sync::Mutex::new(Some(task)) });
        Held { store, authority, leases: vec![lease], renewals }
    }

    /// A zone's engine on a node with the zones spread over the nodes (`crate::node`):
    /// `lease` is renewed, and handed over, by the node's membership (`crate::spread`).
    pub fn zone(store: Arc<PostgresStore>, authority: Arc<PostgresStore>, lease: Lease) -> Self {
        let renewals = Arc::new(Renewals {
            lost: CancellationToken::new(),
            stop: CancellationToken::new(),
            task: std::sync::Mutex::new(None),
        });
        Held { store, authority, leases: vec![lease], renewals }
    }

    /// The (first) lease held: the district's, without zones spread.
    pub fn lease(&self) -> &Lease {
        &self.leases[0]
    }

    /// The highest epoch of the leases held, for `anxin_lease_epoch`.
    pub fn epoch(&self) -> i64 {
        self.leases.iter().map(|l| l.epoch).max().unwrap_or(0)
    }

    /// Fires when the lease is lost: gone to another node, or not renewed for a whole lease.
    pub fn lost(&self) -> CancellationToken {
        self.renewals.lost.clone()
    }

    /// Stops renewing, and waits for a renewal under way (which could otherwise push the
    /// expiry on after a release).
    pub async fn stop_renewing(&self) {
        self.renewals.stop.cancel();
        let task = self.renewals.task.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }

    /// Stops renewing, then releases the lease, so that another node may take it at once
    /// (after a clean shutdown).
    pub async fn hand_over(&self) {
        self.stop_renewing().await;
        match self.authority.lease_release(self.lease()).await {
            Ok(()) => tracing::info!(epoch = self.lease().epoch, "lease released"),
            Err(e) => tracing::warn!(error = %e, "cannot release the lease; it lapses by itself"),
        }
    }
}

/// Opens the store and waits, standing by, until this node is granted the district's lease;
/// `None` if `stop` fires first. `addr` is where this node will serve (kept in the lease for
/// operators). `on_standby` is called once, with who holds the lease, if it is not free.
pub async fn wait_for_lease(
    config: &ClusterConfig,
    store_url: &str,
    addr: &str,
    stop: &CancellationToken,
    mut on_standby: impl FnMut(&str),
) -> anyhow::Result<Option<Held>> {
    let ttl = Duration::from_millis(config.lease_ttl_ms);
    let authority =
        Arc::new(PostgresStore::open_lease_authority(store_url, ttl).await.context("cannot open the store")?);
    let node = config.node_name();
    // A release is heard at once; the asking every `standby_poll_ms` finds a lease that lapsed.
    let listening = tokio::time::timeout(Duration::from_millis(config.lease_ttl_ms), Releases::listen(store_url));
    let mut releases = match listening.await {
        Ok(Ok(releases)) => Some(releases),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot listen for leases released; asking every standby_poll_ms only");
            None
        }
        Err(_) => {
            tracing::warn!("listening for leases released took too long; asking every standby_poll_ms only");
            None
        }
    };
    let mut told = false;
    loop {
        match authority.lease_acquire(DISTRICT, &node, ttl, addr).await {
            Ok(Some(lease)) => {
                tracing::info!(
                    node,
                    epoch = lease.epoch,
                    key = DISTRICT,
                    "lease granted: this engine runs the district"
                );
                // The engine's pool, opened once the lease is held (a standby holds one
                // connection only).
                let store = match PostgresStore::open_for_lease(store_url, ttl).await {
                    Ok(store) => Arc::new(store),
                    Err(e) => {
                        let _ = authority.lease_release(&lease).await;
                        return Err(anyhow::Error::new(e).context("cannot open the store"));
                    }
                };
                return Ok(Some(Held::renewed(store, authority, lease, config)));
            }
            Ok(None) if !told => {
                let holder = authority
                    .leases()
                    .await
                    .ok()
                    .and_then(|rows| rows.into_iter().find(|r| r.key == DISTRICT))
                    .map(|r| format!("{} (epoch {}, at {})", r.holder, r.epoch, r.addr))
                    .unwrap_or_else(|| "another node".into());
                tracing::info!(node, %holder, "standing by: another engine holds the district's lease");
                on_standby(&holder);
                told = true;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(node, error = %e, "cannot ask for the lease; asking again"),
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(None),
            _ = tokio::time::sleep(Duration::from_millis(config.standby_poll_ms)) => {}
            released = next_release(&mut releases) => match released {
                Ok(key) if key == DISTRICT => tracing::info!(node, "the district's lease was released"),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "no longer hearing of leases released; asking every standby_poll_ms only");
                    releases = None;
                }
            },
        }
    }
}

/// The next lease released; never, without a listener.
async fn next_release(releases: &mut Option<Releases>) -> Result<String, anxin_store::StoreError> {
    match releases {
        Some(releases) => releases.next().await,
        None => std::future::pending().await,
    }
}

/// Renews `lease` every `renew_ms` until `stop` fires. Cancels `lost` when the lease has gone
/// to another node, or when it could not be renewed for a whole `lease_ttl_ms` (then another
/// node may take it at any moment): the engine must stop.
async fn keep(
    authority: Arc<PostgresStore>,
    lease: Lease,
    config: ClusterConfig,
    stop: CancellationToken,
    lost: CancellationToken,
) {
    let ttl = Duration::from_millis(config.lease_ttl_ms);
    let mut renewed = Instant::now();
    let mut every = tokio::time::interval(Duration::from_millis(config.renew_ms));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        // A renewal that takes longer than the lease is no renewal.
        match tokio::time::timeout(ttl, authority.lease_renew(&lease, ttl)).await {
            Ok(Ok(true)) => renewed = Instant::now(),
            Ok(Ok(false)) => {
                tracing::error!(epoch = lease.epoch, "the lease has gone to another engine; stopping");
                lost.cancel();
                return;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot renew the lease"),
            Err(_) => tracing::warn!("renewing the lease took longer than the lease"),
        }
        if renewed.elapsed() >= ttl {
            tracing::error!(epoch = lease.epoch, "the lease could not be renewed in time; stopping");
            lost.cancel();
            return;
        }
    }
}

/// The engine's commits, fenced by the lease.
#[derive(Debug, Clone)]
pub struct FencedStore(pub Held);

impl FencedStore {
    /// Commits `out`, taking `taken` out of the inbox with it.
    pub fn commit<'a>(
        &'a self,
        out: &'a Outbox,
        taken: &'a [anxin_store::inbox::InboxKey],
    ) -> BoxFuture<'a, Result<(), CommitError>> {
        Box::pin(async move {
            match self.0.store.commit_fenced_all(anxin_store::Batch::of(out).taking(taken), &self.0.leases).await {
                Ok(()) => Ok(()),
                Err(e @ FenceError::Fenced { .. }) => Err(CommitError::Fenced(e.to_string())),
                Err(FenceError::Store(e)) => Err(CommitError::Failed(e.to_string())),
            }
        })
    }
}
