//! Zones over nodes (issue 25, `[cluster] spread_zones`; docs/architecture.md, "Zones over
//! nodes"): each zone of the ledger has a lease of its own (`zone:N`), and so has each ingest
//! session (`slot:K`) and each node (`node:NAME`, which says it is alive). A node's
//! [`Membership`] keeps them:
//!
//! - it renews everything it holds in one statement every `renew_ms`; what was not renewed is
//!   lost, and what could not be renewed for a whole lease is given up;
//! - every `standby_poll_ms`, and whenever a lease is released, it reads the lease table. The
//!   nodes alive are those whose `node:` lease runs; rendezvous hashing over them
//!   (`anxin_core::zone::preferred`) names each zone's and each session's preferred node. A
//!   free zone or session is taken by its preferred node, or by anyone once it has been free
//!   for `GRACE`; one held by a node that is not its preferred one is handed over, once the
//!   preferred node is alive (a node that starts again gets its share back);
//! - it starts and stops the ingest sessions it holds ([`crate::ingest::run`]) at once, and
//!   says which zones the node should run ([`Plan`]). The node runs one engine over them,
//!   built again whenever they change; a zone to be handed over is released only once the
//!   engine that ran it has stopped ([`Membership::claim`]).
//!
//! Safety rests on the fence, not on this: every commit is fenced by the epochs of every zone
//! its engine runs, so an engine that runs a zone another node has taken stores nothing.

use crate::config::{ClusterConfig, Config};
use crate::ingest::IngestCounts;
use anxin_core::Zone;
use anxin_mqtt::{LinkOptions, Topics};
use anxin_store::inbox::InboxStore;
use anxin_store::lease::{Lease, Releases};
use anxin_store::{PostgresStore, Store};
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long a zone or a session may lie free before any node takes it, whichever node it
/// prefers (that one may be starting, or gone without its `node:` lease having run out yet).
pub const GRACE: Duration = Duration::from_millis(1_000);
/// The shared subscription's group the ingest sessions join.
pub const SHARE_GROUP: &str = "anxin";

/// The lease key of `zone`.
pub fn zone_key(zone: Zone) -> String {
    format!("zone:{}", zone.number())
}

fn slot_key(slot: u16) -> String {
    format!("slot:{slot}")
}

fn node_key(node: &str) -> String {
    format!("node:{node}")
}

/// How an engine over spread zones runs: which zones, fed from the inbox, publishing as its
/// node.
#[derive(Debug, Clone)]
pub struct Run {
    pub zones: Vec<Zone>,
    /// This node's name: the engine's MQTT link, which only publishes, is
    /// `{mqtt.client_id}-{node}`.
    pub node: String,
    /// Where the inbox's announcements are heard (the store's URL).
    pub listen_url: String,
    /// Called once the engine has stopped with every batch in hand stored, acknowledged and
    /// sent (`cluster::Held::hand_over`): its zones may go to other nodes at once.
    pub stopped: Option<Stopped>,
    /// The node's wallboard, read by its first engine and kept by the next ones.
    pub wallboard: Option<Arc<anxin_api::Wallboard>>,
}

/// [`Run::stopped`].
#[derive(Clone)]
pub struct Stopped(Arc<dyn Fn() + Send + Sync>);

impl Stopped {
    pub fn call(&self) {
        (self.0)()
    }
}

impl std::fmt::Debug for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Stopped")
    }
}

/// What the node should run now: the zones it holds and is not handing over, with their
/// leases; `losses` counts the times leases were lost (not handed over), so that an engine
/// running one stops at once rather than finishing its batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub run: BTreeMap<Zone, Lease>,
    pub losses: u64,
}

impl Plan {
    pub fn zones(&self) -> Vec<Zone> {
        self.run.keys().copied().collect()
    }

    pub fn leases(&self) -> Vec<Lease> {
        self.run.values().cloned().collect()
    }
}

/// What an ingest session needs, the same for every slot.
#[derive(Debug, Clone)]
pub struct IngestSetup {
    /// The link's options but for the client id (`{client_id}-ingest-K` per slot).
    pub link: LinkOptions,
    pub batch_max: usize,
    pub counts: Arc<IngestCounts>,
}

impl IngestSetup {
    /// From anxind's configuration: the configured broker and account, the share group.
    pub fn of(config: &Config) -> anyhow::Result<Self> {
        let (host, port) = crate::config::broker_address(&config.mqtt.broker)?;
        let topics = Topics::new(&config.mqtt.topic_root).map_err(anyhow::Error::msg)?;
        Ok(IngestSetup {
            link: LinkOptions {
                host,
                port,
                client_id: config.mqtt.client_id.clone(),
                keep_alive: Duration::from_secs(config.mqtt.keep_alive_s),
                max_outgoing_bytes: 64 * 1024,
                quick_ack: config.mqtt.quick_ack,
                username: config.mqtt.username.clone(),
                password: config.mqtt.password.as_ref().map(|p| p.expose().to_string()),
                topics,
                share_group: Some(SHARE_GROUP.into()),
                subscribe: true,
            },
            batch_max: config.ingest.batch_max,
            counts: Arc::new(IngestCounts::default()),
        })
    }
}

/// A node's hold on the lease table (see the module's documentation).
#[derive(Debug)]
pub struct Membership {
    plan: watch::Receiver<Plan>,
    /// The zones the node's engine runs now (or is being built for): never released.
    running: Arc<Mutex<BTreeSet<Zone>>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// Wakes the membership to look at once (an engine stopped).
    wake: Arc<tokio::sync::Notify>,
    /// The node is leaving: its zones are released as soon as its engine has stopped.
    leaving: Arc<std::sync::atomic::AtomicBool>,
    /// The store the leases are asked of, renewed and released on.
    pub authority: Arc<PostgresStore>,
}

impl Membership {
    /// Opens the lease authority and starts keeping this node's leases; the node's `node:`
    /// lease is asked for at once, and the rest follows.
    pub async fn start(
        config: &ClusterConfig,
        store_url: &str,
        addr: &str,
        data: Arc<PostgresStore>,
        ingest: IngestSetup,
    ) -> anyhow::Result<Self> {
        let ttl = Duration::from_millis(config.lease_ttl_ms);
        let authority =
            Arc::new(PostgresStore::open_lease_authority(store_url, ttl).await.context("cannot open the store")?);
        let releases = match tokio::time::timeout(ttl, Releases::listen(store_url)).await {
            Ok(Ok(r)) => Some(r),
            _ => {
                tracing::warn!("cannot listen for leases released; reading the lease table every standby_poll_ms only");
                None
            }
        };
        let (tx, plan) = watch::channel(Plan::default());
        let running = Arc::new(Mutex::new(BTreeSet::new()));
        let stop = CancellationToken::new();
        let wake = Arc::new(tokio::sync::Notify::new());
        let leaving = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let keeper = Keeper {
            authority: authority.clone(),
            data,
            node: config.node_name(),
            addr: addr.to_string(),
            ttl,
            renew: Duration::from_millis(config.renew_ms),
            poll: Duration::from_millis(config.standby_poll_ms),
            slots: config.ingest_sessions,
            ingest,
            running: running.clone(),
            plan: tx,
            node_lease: None,
            zones: BTreeMap::new(),
            sessions: BTreeMap::new(),
            ledger: Vec::new(),
            ledger_read: None,
            renewed: Instant::now(),
            releases,
            wake: wake.clone(),
            leaving: leaving.clone(),
        };
        let task = tokio::spawn(keeper.run(stop.clone()));
        Ok(Membership { plan, running, stop, task, wake, leaving, authority })
    }

    /// What an engine calls once it has stopped cleanly: it runs no zone, and, when
    /// `leaving` says the node is leaving, its zones and its `node:` lease are released at
    /// once (before its consoles and notifications wind down); otherwise zones to be handed
    /// over are.
    pub fn on_stopped(&self, leaving: impl Fn() -> bool + Send + Sync + 'static) -> Stopped {
        let (running, wake, left) = (self.running.clone(), self.wake.clone(), self.leaving.clone());
        Stopped(Arc::new(move || {
            running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
            if leaving() {
                left.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            wake.notify_one();
        }))
    }

    /// The plan, as it changes.
    pub fn plan(&self) -> watch::Receiver<Plan> {
        self.plan.clone()
    }

    /// The plan as it is now, whose zones the node's engine runs from now on. A zone to be
    /// handed over is released only once it is not among the zones claimed, and the plan is
    /// read under the same lock the membership checks them under: a zone is never released
    /// between the plan's being read and its zones' being claimed.
    pub fn claim(&self) -> Plan {
        let mut running = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let plan = self.plan.borrow().clone();
        *running = plan.run.keys().copied().collect();
        plan
    }

    /// Says the node's engine has stopped and runs no zone.
    pub fn claim_none(&self) {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// Leaves: stops the ingest sessions (each files what it was given, or leaves it to the
    /// broker), then releases the node's zones, sessions and `node:` lease, so that the
    /// others take over at once. Call once the engine has stopped.
    pub async fn leave(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// An ingest session this node runs.
#[derive(Debug)]
struct Session {
    lease: Lease,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// The membership's task and everything it holds.
struct Keeper {
    authority: Arc<PostgresStore>,
    data: Arc<PostgresStore>,
    node: String,
    addr: String,
    ttl: Duration,
    renew: Duration,
    poll: Duration,
    slots: u16,
    ingest: IngestSetup,
    running: Arc<Mutex<BTreeSet<Zone>>>,
    plan: watch::Sender<Plan>,
    node_lease: Option<Lease>,
    zones: BTreeMap<Zone, Lease>,
    sessions: BTreeMap<u16, Session>,
    /// The ledger's zones, read now and then (they change when a station is added).
    ledger: Vec<Zone>,
    ledger_read: Option<Instant>,
    /// When everything held was last renewed.
    renewed: Instant,
    releases: Option<Releases>,
    wake: Arc<tokio::sync::Notify>,
    leaving: Arc<std::sync::atomic::AtomicBool>,
}

impl Keeper {
    async fn run(mut self, stop: CancellationToken) {
        let mut renew_due = Instant::now();
        loop {
            if Instant::now() >= renew_due {
                self.renew_all().await;
                renew_due = Instant::now() + self.renew;
            }
            // A look that hangs (the database unreachable) must not hold up the next renewal,
            // which gives everything up once nothing could be renewed for a whole lease.
            match tokio::time::timeout(self.ttl / 2, self.look()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(node = self.node, error = %e, "cannot read the lease table; asking again"),
                Err(_) => tracing::warn!(node = self.node, "reading the lease table took too long; asking again"),
            }
            let wait = tokio::time::sleep(self.poll.min(renew_due.saturating_duration_since(Instant::now())));
            let wake = self.wake.clone();
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = wake.notified() => {}
                _ = wait => {}
                released = next_release(&mut self.releases) => if let Err(e) = released {
                    tracing::warn!(error = %e, "no longer hearing of leases released; reading the table every standby_poll_ms only");
                    self.releases = None;
                },
            }
        }
        self.leave().await;
    }

    /// Renews everything held in one statement; drops what was lost.
    async fn renew_all(&mut self) {
        let held: Vec<Lease> = self
            .node_lease
            .iter()
            .cloned()
            .chain(self.zones.values().cloned())
            .chain(self.sessions.values().map(|s| s.lease.clone()))
            .collect();
        if held.is_empty() {
            self.renewed = Instant::now();
            return;
        }
        match tokio::time::timeout(self.ttl, self.authority.lease_renew_all(&held, self.ttl)).await {
            Ok(Ok(renewed)) => {
                self.renewed = Instant::now();
                let lost: Vec<&Lease> = held.iter().filter(|l| !renewed.contains(&l.key)).collect();
                if !lost.is_empty() {
                    let keys: Vec<&str> = lost.iter().map(|l| l.key.as_str()).collect();
                    tracing::error!(node = self.node, ?keys, "leases gone to another node; dropping what they covered");
                    let lost: BTreeSet<String> = keys.iter().map(|k| k.to_string()).collect();
                    self.drop_lost(|key| lost.contains(key));
                }
            }
            Ok(Err(e)) => tracing::warn!(node = self.node, error = %e, "cannot renew the leases"),
            Err(_) => tracing::warn!(node = self.node, "renewing the leases took longer than a lease"),
        }
        if self.renewed.elapsed() >= self.ttl {
            tracing::error!(node = self.node, "the leases could not be renewed in time; dropping them all");
            self.drop_lost(|_| true);
        }
    }

    /// Drops the leases `lost` says are: their zones stop at once, their sessions too.
    fn drop_lost(&mut self, lost: impl Fn(&str) -> bool) {
        if self.node_lease.as_ref().is_some_and(|l| lost(&l.key)) {
            self.node_lease = None;
        }
        let before = self.zones.len();
        self.zones.retain(|_, l| !lost(&l.key));
        let zones_lost = self.zones.len() != before;
        let gone: Vec<u16> = self.sessions.iter().filter(|(_, s)| lost(&s.lease.key)).map(|(k, _)| *k).collect();
        for k in gone {
            if let Some(s) = self.sessions.remove(&k) {
                // It stops at once (what it has not filed stays with the broker, for the
                // session's next holder), and is not waited for here; one that hangs is
                // aborted, which stops its link too.
                s.stop.cancel();
                let abort = s.task.abort_handle();
                tokio::spawn(async move {
                    if tokio::time::timeout(Duration::from_secs(2), s.task).await.is_err() {
                        abort.abort();
                    }
                });
            }
        }
        if zones_lost {
            self.plan.send_modify(|p| {
                p.losses += 1;
                p.run.retain(|z, _| self.zones.contains_key(z));
            });
        }
    }

    /// Reads the lease table and acts on it.
    async fn look(&mut self) -> anyhow::Result<()> {
        if self.leaving.load(std::sync::atomic::Ordering::SeqCst) {
            self.release_zones().await;
            return Ok(());
        }
        if self.ledger_read.is_none_or(|at| at.elapsed() >= Duration::from_secs(10)) {
            let zones = self.data.ledger_zones().await.context("cannot read the ledger's zones")?;
            self.ledger = zones;
            self.ledger_read = Some(Instant::now());
        }
        if self.node_lease.is_none() {
            match self.authority.lease_acquire(&node_key(&self.node), &self.node, self.ttl, &self.addr).await? {
                Some(lease) => {
                    tracing::info!(node = self.node, epoch = lease.epoch, "this node has joined");
                    self.node_lease = Some(lease);
                    self.renewed = Instant::now();
                }
                // Its last run's lease has not run out yet.
                None => return Ok(()),
            }
        }
        let rows = self.authority.leases().await?;
        let live: Vec<&str> = rows
            .iter()
            .filter(|r| r.expires_in_ms > 0)
            .filter_map(|r| r.key.strip_prefix("node:"))
            .chain(std::iter::once(self.node.as_str()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let row = |key: &str| rows.iter().find(|r| r.key == key);
        let me = self.node.as_str();
        // Take what is free and ours, or free for too long.
        let takes = |key: &str, preferred: Option<&str>| -> bool {
            match row(key) {
                None => preferred == Some(me),
                Some(r) if r.expires_in_ms > 0 => false,
                Some(r) => preferred == Some(me) || r.expires_in_ms < -(GRACE.as_millis() as i64),
            }
        };
        // Hand over what another node alive prefers.
        let hands_over = |preferred: Option<&str>| preferred.is_some_and(|p| p != me);

        let mut handing: BTreeSet<Zone> = BTreeSet::new();
        for &zone in &self.ledger {
            let preferred = anxin_core::zone::preferred(zone, &live);
            let key = zone_key(zone);
            if self.zones.contains_key(&zone) {
                if hands_over(preferred) {
                    handing.insert(zone);
                }
            } else if takes(&key, preferred) {
                if let Some(lease) = self.authority.lease_acquire(&key, me, self.ttl, &self.addr).await? {
                    tracing::info!(node = me, zone = zone.number(), epoch = lease.epoch, "zone taken");
                    self.zones.insert(zone, lease);
                }
            }
        }
        // A zone no longer in the ledger is kept until its engine stops (its incidents may be
        // open): nothing to do.
        let run: BTreeMap<Zone, Lease> =
            self.zones.iter().filter(|(z, _)| !handing.contains(z)).map(|(z, l)| (*z, l.clone())).collect();
        self.plan.send_if_modified(|p| {
            let changed = p.run != run;
            p.run = run;
            changed
        });
        // Released once the engine no longer runs them.
        let running = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let handed: Vec<Lease> =
            handing.iter().filter(|z| !running.contains(z)).filter_map(|z| self.zones.get(z).cloned()).collect();
        if !handed.is_empty() {
            // Together, so the node taking them builds its engine once.
            self.authority.lease_release_all(&handed).await?;
            for lease in &handed {
                self.zones.retain(|_, l| l.key != lease.key);
                tracing::info!(node = me, key = lease.key, "zone handed over");
            }
        }

        for slot in 0..self.slots {
            let key = slot_key(slot);
            let preferred = anxin_core::zone::preferred_for_slot(slot, &live);
            if self.sessions.contains_key(&slot) {
                if hands_over(preferred) {
                    if let Some(session) = self.sessions.remove(&slot) {
                        // It files what it was given and disconnects; what it was not yet
                        // given stays with the broker for the session's next holder.
                        session.stop.cancel();
                        let _ = session.task.await;
                        self.authority.lease_release(&session.lease).await?;
                        tracing::info!(node = me, slot, "ingest session handed over");
                    }
                }
            } else if takes(&key, preferred) {
                if let Some(lease) = self.authority.lease_acquire(&key, me, self.ttl, &self.addr).await? {
                    tracing::info!(node = me, slot, epoch = lease.epoch, "ingest session taken");
                    self.sessions.insert(slot, self.start_session(slot, lease));
                }
            }
        }
        Ok(())
    }

    fn start_session(&self, slot: u16, lease: Lease) -> Session {
        let mut link = self.ingest.link.clone();
        link.client_id = format!("{}-ingest-{slot}", link.client_id);
        let stop = CancellationToken::new();
        let store: Arc<dyn InboxStore> = self.data.clone();
        let task = tokio::spawn(crate::ingest::run(
            link,
            store,
            self.ingest.batch_max,
            self.ingest.counts.clone(),
            stop.clone(),
        ));
        Session { lease, stop, task }
    }

    /// Releases the node's lease first (the others then leave it out of their hashing), then
    /// its zones, whose engine has stopped; its sessions go on filing until [`Keeper::leave`].
    async fn release_zones(&mut self) {
        let leases: Vec<Lease> =
            self.node_lease.take().into_iter().chain(std::mem::take(&mut self.zones).into_values()).collect();
        if leases.is_empty() {
            return;
        }
        self.plan.send_if_modified(|p| {
            let changed = !p.run.is_empty();
            p.run.clear();
            changed
        });
        // In one statement: whoever takes them over hears of them all at once.
        if let Err(e) = self.authority.lease_release_all(&leases).await {
            tracing::warn!(error = %e, "cannot release the node's zones; they lapse by themselves");
        }
        tracing::info!(node = self.node, "this node's zones are released");
    }

    /// Stops the sessions (each finishes filing its batch and disconnects), then releases
    /// the node's lease first (the others then leave it out of their hashing), its zones and
    /// its sessions.
    async fn leave(&mut self) {
        let sessions = std::mem::take(&mut self.sessions);
        for s in sessions.values() {
            s.stop.cancel();
        }
        let mut leases: Vec<Lease> = self.node_lease.take().into_iter().collect();
        for (_, s) in sessions {
            let _ = tokio::time::timeout(Duration::from_secs(5), s.task).await;
            leases.push(s.lease);
        }
        leases.extend(std::mem::take(&mut self.zones).into_values());
        if let Err(e) = self.authority.lease_release_all(&leases).await {
            tracing::warn!(error = %e, "cannot release the node's leases; they lapse by themselves");
        }
        tracing::info!(node = self.node, "this node has left: its leases are released");
    }
}

/// The next lease released; never, without a listener.
async fn next_release(releases: &mut Option<Releases>) -> Result<String, anxin_store::StoreError> {
    match releases {
        Some(releases) => releases.next().await,
        None => std::future::pending().await,
    }
}

/// Runs this node, with the zones spread over the nodes, until `shutdown`: stands by while it
/// runs no zone (answering on `http.listen` as a standby does), and otherwise runs one engine
/// over the zones its plan says, built again whenever they change. At `shutdown` the engine
/// finishes its batch, then the node leaves (its leases released, so the others take over at
/// once).
///
/// `registry` (the first node's `--registry`) is added to the stored ledger first.
pub async fn serve(
    mut config: Config,
    registry: Option<anxin_core::Registry>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let node = config.cluster.node_name();
    let url = config.store.url.expose().to_string();
    let ttl = Duration::from_millis(config.cluster.lease_ttl_ms);
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.http.listen))?;
    let http = listener.local_addr()?;
    // Every engine this node runs serves on the port it stood by on.
    config.http.listen = http;
    let addr = config.cluster.advertised(http);
    let data = Arc::new(PostgresStore::open_for_lease(&url, ttl).await.context("cannot open the store")?);
    if let Some(registry) = registry {
        let stored = data.load_registry().await.context("cannot load the registry")?;
        registry.check_against(&stored).context("the registry is inconsistent")?;
        data.save_registry(&registry).await.context("cannot save the registry")?;
    }
    let membership = Membership::start(&config.cluster, &url, &addr, data.clone(), IngestSetup::of(&config)?).await?;
    let mut plan = membership.plan();
    let mut listener = Some(listener);
    let mut wallboard = None;
    loop {
        if plan.borrow().run.is_empty() {
            println!("anxind standby node={node} http={http}");
            let bound = match listener.take() {
                Some(l) => l,
                None => {
                    tokio::net::TcpListener::bind(http).await.with_context(|| format!("cannot listen on {http}"))?
                }
            };
            let stop = CancellationToken::new();
            let standby = tokio::spawn(anxin_api::serve(bound, anxin_api::standby_router(), stop.clone()));
            let stopping = tokio::select! {
                _ = shutdown.cancelled() => true,
                zones = plan.wait_for(|p| !p.run.is_empty()) => zones.is_err(),
            };
            stop.cancel();
            let abort = standby.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), standby).await.is_err() {
                // A client that keeps its connection open does not keep the port.
                abort.abort();
            }
            if stopping {
                break;
            }
        }
        // The engine binds the port itself.
        drop(listener.take());
        let now = membership.claim();
        if now.run.is_empty() {
            continue;
        }
        let zones = now.zones();
        let listed = zones.iter().map(|z| z.number().to_string()).collect::<Vec<_>>().join(",");
        let lost = CancellationToken::new();
        let regroup = shutdown.child_token();
        // The engine stops at once when a lease is lost, and finishes its batch first when the
        // plan changes otherwise (a zone taken or handed over).
        let watching = tokio::spawn({
            let (mut plan, lost, regroup, now) = (membership.plan(), lost.clone(), regroup.clone(), now.clone());
            async move {
                while plan.changed().await.is_ok() {
                    let next = plan.borrow_and_update().clone();
                    if next.losses != now.losses {
                        lost.cancel();
                        return;
                    }
                    if next.run != now.run {
                        regroup.cancel();
                        return;
                    }
                }
            }
        });
        let leaving = shutdown.clone();
        let stopped = Some(membership.on_stopped(move || leaving.is_cancelled()));
        let run = Run { zones, node: node.clone(), listen_url: url.clone(), stopped, wallboard: wallboard.clone() };
        let held = crate::cluster::Held::spread(data.clone(), membership.authority.clone(), now.leases(), run, lost);
        let built = crate::app::App::build_with(config.clone(), None, crate::clock::Clock::System, Some(held)).await;
        let app = match built {
            Ok(app) => app,
            Err(e) => {
                watching.abort();
                tracing::error!(node, error = format!("{e:#}"), "cannot build the engine; trying again");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        wallboard = Some(app.wallboard());
        println!(
            "anxind ready console=http://{}/console mqtt={} node={node} zones={listed}",
            app.http_addr(),
            app.mqtt_url()
        );
        let ran = app.run(regroup).await;
        watching.abort();
        if let Err(e) = ran {
            tracing::error!(
                node,
                error = format!("{e:#}"),
                "the engine stopped; building it again over the zones still held"
            );
        }
        if shutdown.is_cancelled() {
            break;
        }
    }
    membership.claim_none();
    membership.leave().await;
    Ok(())
}
