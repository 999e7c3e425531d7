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
//!   says which zones the node should run ([`Plan`]). The node runs an engine for each
//!   (`crate::node`); a zone to be handed over is released only once its engine has stopped
//!   ([`Membership::claim_beside`], [`Membership::zone_stopped`]).
//!
//! Safety rests on the fence, not on this: every commit is fenced by its zone's epoch, so an
//! engine that runs a zone another node has taken stores nothing.

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

/// The zone a lease key is of (`zone:N`).
fn zone_of_key(key: &str) -> Option<Zone> {
    Zone::new(key.strip_prefix("zone:")?.parse().ok()?).ok()
}

/// Which node holds each zone's lease.
pub type Owners = BTreeMap<Zone, String>;

fn slot_key(slot: u16) -> String {
    format!("slot:{slot}")
}

fn node_key(node: &str) -> String {
    format!("node:{node}")
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
        let link = LinkOptions { share_group: Some(SHARE_GROUP.into()), subscribe: true, ..link_options(config)? };
        Ok(IngestSetup { link, batch_max: config.ingest.batch_max, counts: Arc::new(IngestCounts::default()) })
    }
}

/// A link to the configured broker with the configured account, as `{mqtt.client_id}`,
/// publishing only (an ingest session's joins the share group and subscribes).
pub fn link_options(config: &Config) -> anyhow::Result<LinkOptions> {
    let (host, port) = crate::config::broker_address(&config.mqtt.broker)?;
    let topics = Topics::new(&config.mqtt.topic_root).map_err(anyhow::Error::msg)?;
    Ok(LinkOptions {
        host,
        port,
        client_id: config.mqtt.client_id.clone(),
        keep_alive: Duration::from_secs(config.mqtt.keep_alive_s),
        max_outgoing_bytes: 64 * 1024,
        quick_ack: config.mqtt.quick_ack,
        username: config.mqtt.username.clone(),
        password: config.mqtt.password.as_ref().map(|p| p.expose().to_string()),
        topics,
        share_group: None,
        subscribe: false,
    })
}

/// A node's hold on the lease table (see the module's documentation).
#[derive(Debug)]
pub struct Membership {
    plan: watch::Receiver<Plan>,
    /// The zones whose engines run on the node now (or are being built or stopped): never
    /// released.
    running: Arc<Mutex<BTreeSet<Zone>>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// Wakes the membership to look at once (an engine stopped).
    wake: Arc<tokio::sync::Notify>,
    /// The node is leaving: its zones are released as soon as its engines have stopped.
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
        owners: watch::Sender<Owners>,
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
            owners,
        };
        let task = tokio::spawn(keeper.run(stop.clone()));
        Ok(Membership { plan, running, stop, task, wake, leaving, authority })
    }

    /// The node's engines have all stopped with every batch in hand stored, acknowledged
    /// and sent, and it is leaving: its zones and its `node:` lease are released at once,
    /// together (before its consoles and notifications wind down).
    pub fn stopped_leaving(&self) {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
        self.leaving.store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// The plan, as it changes.
    pub fn plan(&self) -> watch::Receiver<Plan> {
        self.plan.clone()
    }

    /// The plan as it is now, with its zones claimed beside `running` (the zones whose
    /// engines run, or are being built or stopped). A zone is released only once it is not
    /// claimed; the plan is read under the same lock the membership checks claims under, so
    /// no zone is released between the plan's being read and its zones' being claimed.
    pub fn claim_beside(&self, running: &BTreeSet<Zone>) -> Plan {
        let mut claimed = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let plan = self.plan.borrow().clone();
        *claimed = running.iter().copied().chain(plan.run.keys().copied()).collect();
        plan
    }

    /// `zone`'s engine has stopped with every batch in hand stored, acknowledged and sent (or
    /// was never started): its lease may be released at once, if it is being handed over.
    pub fn zone_stopped(&self, zone: Zone) {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&zone);
        self.wake.notify_one();
    }

    /// Leaves: stops the ingest sessions (each files what it was given, or leaves it to the
    /// broker), then releases the node's zones, sessions and `node:` lease, so that the
    /// others take over at once. Call once its engines have stopped.
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
    /// Which node runs each zone, as the lease table last said.
    owners: watch::Sender<Owners>,
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
        // Waited for only until the leases run out: a renewal ending later renews nothing another
        // node may not have taken meanwhile, and the node gives everything up then, not a
        // whole lease later (an ingest session held on past its lease bounced the broker's
        // session with its next holder every 0.2 s while a node cut from PostgreSQL waited).
        let left = self.ttl.saturating_sub(self.renewed.elapsed());
        match tokio::time::timeout(left, self.authority.lease_renew_all(&held, self.ttl)).await {
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
            Err(_) => tracing::warn!(node = self.node, "the leases ran out while being renewed"),
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

    /// Which node runs each zone, from the lease table's `rows`.
    fn see_owners(&self, rows: &[anxin_store::lease::LeaseRow]) {
        let held: Owners = rows
            .iter()
            .filter(|r| r.expires_in_ms > 0)
            .filter_map(|r| Some((zone_of_key(&r.key)?, r.holder.clone())))
            .collect();
        self.owners.send_if_modified(|o| {
            let changed = *o != held;
            *o = held;
            changed
        });
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
                // Its last run's lease has not run out yet: it takes nothing, but learns who
                // runs what (a request it had taken up for a zone it dropped goes there).
                None => {
                    let rows = self.authority.leases().await?;
                    self.see_owners(&rows);
                    return Ok(());
                }
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
        self.see_owners(&rows);
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
        // Released once their engines have stopped.
        let running = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let handed: Vec<Lease> =
            handing.iter().filter(|z| !running.contains(z)).filter_map(|z| self.zones.get(z).cloned()).collect();
        if !handed.is_empty() {
            // Together, so the node taking them hears of them all at once.
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
