//! A node over spread zones (`[cluster] spread_zones`; docs/architecture.md, "Zones over
//! nodes"): the people's side once, and an engine for each zone the node holds.
//!
//! The node binds its HTTP port, connects its MQTT link (which only publishes, as
//! `{mqtt.client_id}-{node}`) and starts its consoles' hub, phones, families, wallboard and
//! notification worker once, for as long as it runs. Its [`Membership`] says which zones to
//! run; each runs in an engine of its own (`ZoneEngine`), built from that zone's part of
//! the ledger and store, fed from that zone's inbox, every commit fenced by that zone's lease
//! alone. So taking a zone builds one small engine beside the others, and handing one over
//! stops that one after its batch: neither pauses the node's other zones.
//!
//! People's commands go through a router ([`route`]): to the engine of the zone they concern
//! (an incident's and an order's number say it; a responder's station and an elder's say it
//! through the ledger), to every engine (a console's presence), or, for what no zone owns
//! (the ledger's edits, calls, the services' board), to zone 0's engine or else the node's
//! first. A zone the node does not run is refused as `zone_elsewhere`, naming it.

use crate::app::{people, policy_of, People, PeopleParts};
use crate::clock::Clock;
use crate::config::Config;
use crate::ports::ZoneTotals;
use crate::spread::{IngestSetup, Membership, Plan};
use crate::telemetry::Metrics;
use anxin_api::Hub;
use anxin_core::{ElderId, Engine, Registry, ResponderId, Zone};
use anxin_mqtt::LinkOptions;
use anxin_proto::{Caller, Command, Refused, Request};
use anxin_store::lease::Lease;
use anxin_store::{PostgresStore, Store};
use anyhow::Context;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Where a command goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The engine of this zone.
    Zone(Zone),
    /// Every engine on the node (a console's presence).
    Every,
    /// What no zone owns: zone 0's engine, or else the node's first.
    Home,
    /// Every zone, wherever it runs, their answers put together (a dispatcher's board of
    /// service orders).
    Board,
}

/// Which zone each responder and elder is in, from the ledger as last read.
#[derive(Debug, Default)]
pub struct Directory {
    responders: HashMap<ResponderId, Zone>,
    elders: HashMap<ElderId, Zone>,
}

impl Directory {
    /// From the whole ledger: a responder is in their station's zone, an elder in their
    /// enrolled station's (zone 0 if none).
    pub fn of(registry: &Registry) -> Self {
        let stations: HashMap<&str, Zone> = registry.stations.iter().map(|s| (s.id.as_str(), s.zone)).collect();
        let zone = |station: &str| stations.get(station).copied().unwrap_or(Zone::FIRST);
        Directory {
            responders: registry.responders.iter().map(|r| (r.id.clone(), zone(r.station_id.as_str()))).collect(),
            elders: registry
                .elders
                .iter()
                .map(|e| (e.id.clone(), e.profile.station_id.as_ref().map_or(Zone::FIRST, |s| zone(s.as_str()))))
                .collect(),
        }
    }

    fn responder(&self, id: &ResponderId) -> Route {
        self.responders.get(id).map_or(Route::Home, |z| Route::Zone(*z))
    }

    fn elder(&self, id: &ElderId) -> Route {
        self.elders.get(id).map_or(Route::Home, |z| Route::Zone(*z))
    }
}

/// Where `request` from `caller` goes.
pub fn route(caller: &Caller, request: &Request, directory: &Directory) -> Route {
    use Request as R;
    match request {
        R::Respond { incident, .. }
        | R::Dispatch { incident, .. }
        | R::Suggest { incident }
        | R::Timeline { incident }
        | R::FamilyAnswer { incident, .. }
        | R::NotificationOutcome { incident, .. } => Route::Zone(Zone::of(incident.0)),
        R::OrderAct { order, .. } | R::WorkerAct { order, .. } => Route::Zone(Zone::of(order.0)),
        R::Duty { .. } | R::Location { .. } | R::Visit(_) => match caller {
            Caller::Responder(id) => directory.responder(id),
            _ => Route::Home,
        },
        R::History { elder } | R::FamilyLink { elder, .. } | R::FamilyLinks { elder } => directory.elder(elder),
        R::PlaceOrder(order) | R::Quote(order) => directory.elder(&order.elder_id),
        R::FamilyHistory => match caller {
            Caller::Family { elder, .. } => directory.elder(elder),
            _ => Route::Home,
        },
        R::Presence { .. } | R::SignedOut => Route::Every,
        R::Orders => match caller {
            Caller::Family { elder, .. } => directory.elder(elder),
            _ => Route::Board,
        },
        R::Catalogue | R::Amend(_) | R::AmendMany(_) | R::Call(_) => Route::Home,
    }
}

/// The router's table: each running zone's engine's command queue.
pub(crate) type Engines = Arc<RwLock<BTreeMap<Zone, mpsc::Sender<Command>>>>;

/// Passes people's commands to the engines they concern, in the order they came.
async fn router(
    mut commands: mpsc::Receiver<Command>,
    engines: Engines,
    directory: Arc<RwLock<Directory>>,
    forwarder: Option<Arc<crate::follow::Forwarder>>,
    hub: Option<Arc<Hub>>,
) {
    while let Some(command) = commands.recv().await {
        let to = route(&command.caller, &command.request, &directory.read().unwrap_or_else(|e| e.into_inner()));
        if to == Route::Board {
            let local = engines.read().unwrap_or_else(|e| e.into_inner()).clone();
            // Every zone the node knows of: those it runs, those it shows, those with an owner.
            let mut zones: BTreeSet<Zone> = local.keys().copied().collect();
            zones.extend(hub.iter().flat_map(|h| h.cursor().zones().collect::<Vec<_>>()));
            zones.extend(forwarder.iter().flat_map(|f| f.owners().into_keys()));
            tokio::spawn(board(command, zones, local, forwarder.clone()));
            continue;
        }
        let senders: Vec<(Zone, mpsc::Sender<Command>)> = {
            let engines = engines.read().unwrap_or_else(|e| e.into_inner());
            match to {
                Route::Board => unreachable!("gathered above"),
                Route::Zone(zone) => engines.get(&zone).map(|tx| vec![(zone, tx.clone())]).unwrap_or_default(),
                Route::Every => engines.iter().map(|(z, tx)| (*z, tx.clone())).collect(),
                Route::Home => engines
                    .get(&Zone::FIRST)
                    .map(|tx| (Zone::FIRST, tx.clone()))
                    .or_else(|| engines.iter().next().map(|(z, tx)| (*z, tx.clone())))
                    .into_iter()
                    .collect(),
            }
        };
        // A zone run on another node: a person's request about an incident, elder or
        // responder there goes there (`Forwardable::of` says which).
        let command = match (to, senders.is_empty(), &forwarder) {
            (Route::Zone(zone), true, Some(forwarder)) => match forwarder.forward(zone, command) {
                None => continue,
                // No other node holds the zone as last read (this node just dropped it, say):
                // asked of its next owner once the lease table names one.
                Some(command) if command.reply.is_some() => {
                    tokio::spawn(onward(forwarder.clone(), engines.clone(), zone, Err(elsewhere(zone)), command));
                    continue;
                }
                Some(command) => command,
            },
            _ => command,
        };
        let Command { caller, request, reply, request_id } = command;
        if senders.is_empty() {
            if let Some(reply) = reply {
                let _ = reply.send(match to {
                    // Nothing runs here to be told: nothing to do.
                    Route::Every => Ok(anxin_proto::Reply::Done),
                    Route::Zone(zone) => Err(elsewhere(zone)),
                    Route::Home => Err(Refused::new("zone_elsewhere", "this node runs no zone now; ask another")),
                    Route::Board => unreachable!("gathered above"),
                });
            }
            continue;
        }
        // The first engine answers; the others are told as well.
        let mut reply = reply;
        // With zones spread, a request about one zone that its engine here acted on in a batch
        // that was fenced goes on to the zone's new owner.
        let onward_of = match (to, &forwarder) {
            (Route::Zone(zone), Some(forwarder)) => reply.take().map(|asker| (zone, forwarder, asker)),
            _ => None,
        };
        if let Some((zone, forwarder, asker)) = onward_of {
            let (tx, answer) = tokio::sync::oneshot::channel();
            reply = Some(tx);
            let again = Command {
                caller: caller.clone(),
                request: request.clone(),
                reply: Some(asker),
                request_id: request_id.clone(),
            };
            let (forwarder, engines) = (forwarder.clone(), engines.clone());
            tokio::spawn(async move {
                // An engine that stopped without answering is not asked again: what it did
                // may have been stored.
                if let Ok(answer) = answer.await {
                    onward(forwarder, engines, zone, answer, again).await
                }
            });
        }
        for (zone, tx) in senders {
            let command = Command {
                caller: caller.clone(),
                request: request.clone(),
                reply: reply.take(),
                request_id: request_id.clone(),
            };
            if let Err(mpsc::error::SendError(command)) = tx.send(command).await {
                // The zone's engine stopped meanwhile (handed over or lost).
                if let Some(reply) = command.reply {
                    let _ = reply.send(Err(elsewhere(zone)));
                }
            }
        }
    }
}

/// How long an engine whose lease is gone has to end on its own before it is aborted.
const LOST_ENGINE_ABORT: Duration = Duration::from_secs(10);

/// How long a request the engine here did not store waits for the lease table to name the
/// zone's new owner before its asker is told so instead.
pub const FENCED_ONWARD_WAIT: Duration = Duration::from_secs(10);

/// Passes `answer` to whoever asked (`again`'s reply), unless it says nothing of the request
/// was stored (the lease on `zone` moved to another node before it was, the engine stopped
/// before acting on it, or no engine here runs the zone): then asks whoever runs the zone now,
/// once the lease table names them: another node (forwarded under a request id of its own),
/// or this one again (its new engine for the zone). Gives up after [`FENCED_ONWARD_WAIT`].
async fn onward(
    forwarder: Arc<crate::follow::Forwarder>,
    engines: Engines,
    zone: Zone,
    mut answer: anxin_proto::Answer,
    mut again: Command,
) {
    let not_stored = |answer: &anxin_proto::Answer| matches!(answer, Err(refused) if refused.not_stored() || refused.code == "zone_elsewhere");
    let forwardable = anxin_proto::cluster::Forwardable::of(&again.caller, &again.request).is_some();
    let deadline = tokio::time::Instant::now() + FENCED_ONWARD_WAIT;
    while forwardable && not_stored(&answer) && tokio::time::Instant::now() < deadline {
        // The lease table is read again every few hundred milliseconds.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let local = engines.read().unwrap_or_else(|e| e.into_inner()).get(&zone).cloned();
        match forwarder.owners().get(&zone) {
            Some(owner) if *owner != forwarder.node() => {
                tracing::info!(
                    zone = zone.number(),
                    owner,
                    ?answer,
                    "a request not acted on here goes to the zone's owner"
                );
                match forwarder.forward(zone, again) {
                    None => return,
                    Some(back) => again = back,
                }
            }
            Some(_) => {
                let Some(engine) = local else { continue };
                let (tx, rx) = tokio::sync::oneshot::channel();
                let ask = Command {
                    caller: again.caller.clone(),
                    request: again.request.clone(),
                    reply: Some(tx),
                    request_id: again.request_id.clone(),
                };
                if engine.send(ask).await.is_err() {
                    continue;
                }
                match rx.await {
                    Ok(next) => answer = next,
                    // Stopped without answering: what it did may have been stored.
                    Err(_) => return,
                }
            }
            None => {}
        }
    }
    if let Some(reply) = again.reply {
        let _ = reply.send(answer);
    }
}

/// How long the board waits for each zone's orders before it is shown without them.
pub const BOARD_WAIT: Duration = Duration::from_secs(3);

/// Asks every zone of `zones` for its orders (the engine here, or the zone's owner) and
/// answers `command` with them all, by number, naming the zones that did not answer in
/// [`BOARD_WAIT`] (or that no node runs now).
async fn board(
    command: Command,
    zones: BTreeSet<Zone>,
    local: BTreeMap<Zone, mpsc::Sender<Command>>,
    forwarder: Option<Arc<crate::follow::Forwarder>>,
) {
    let Command { caller, request, reply, request_id: _ } = command;
    let mut asked = Vec::new();
    let mut unanswered = Vec::new();
    for zone in zones {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let ask = Command { caller: caller.clone(), request: request.clone(), reply: Some(tx), request_id: None };
        let sent = match (local.get(&zone), &forwarder) {
            (Some(engine), _) => engine.send(ask).await.is_ok(),
            (None, Some(forwarder)) => forwarder.forward(zone, ask).is_none(),
            (None, None) => false,
        };
        if sent {
            asked.push((zone, rx));
        } else {
            unanswered.push(zone.number());
        }
    }
    let deadline = tokio::time::Instant::now() + BOARD_WAIT;
    let mut orders = Vec::new();
    for (zone, rx) in asked {
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(Ok(anxin_proto::Reply::Orders(board)))) => orders.extend(board.orders),
            answer => {
                tracing::warn!(zone = zone.number(), ?answer, "a zone's orders were not had for the board");
                unanswered.push(zone.number());
            }
        }
    }
    orders.sort_by_key(|o| o.order.id);
    unanswered.sort_unstable();
    if let Some(reply) = reply {
        let _ = reply
            .send(Ok(anxin_proto::Reply::Orders(anxin_proto::OrderBoard { orders, zones_unanswered: unanswered })));
    }
}

fn elsewhere(zone: Zone) -> Refused {
    Refused::new("zone_elsewhere", format!("zone {} does not run on this node now; ask again", zone.number()))
        .with("zone", zone.number())
}

/// One zone's engine on this node, just built.
struct ZoneEngine {
    /// Stops it after its batch.
    stop: CancellationToken,
    /// Stops it as fenced: its lease is gone.
    lost: CancellationToken,
    task: tokio::task::JoinHandle<anxin_runtime::Ended>,
    /// Its command queue, for the router.
    commands: mpsc::Sender<Command>,
    /// Stops the zone's inbox reader with the engine.
    feed: tokio_util::sync::DropGuard,
}

/// What a zone's slot on this node holds.
enum Slot {
    /// Its engine is being built.
    Building(tokio::task::JoinHandle<()>),
    Running {
        stop: CancellationToken,
        lost: CancellationToken,
        abort: tokio::task::AbortHandle,
        feed: tokio_util::sync::DropGuard,
    },
    /// Its engine was told to stop (or its build was aborted) and has not yet; its inbox
    /// reader stops once it has.
    Stopping { _feed: Option<tokio_util::sync::DropGuard> },
}

/// What the node's tasks tell its loop.
enum Event {
    Built(Zone, ZoneEngine),
    /// The zone's engine has stopped, asked to or not (`Ended`, or `None` for a panic or an
    /// abort).
    Stopped(Zone, Option<anxin_runtime::Ended>),
}

/// What every zone's engine on this node shares.
struct Shared {
    config: Config,
    node: String,
    /// The node's one listener to the inbox's announcements, for every zone it runs.
    ears: Arc<crate::inbox::Ears>,
    data: Arc<PostgresStore>,
    authority: Arc<PostgresStore>,
    hub: Arc<Hub>,
    phones: Arc<anxin_api::ResponderHub>,
    family_hub: Arc<anxin_api::FamilyHub>,
    wallboard: Arc<anxin_api::Wallboard>,
    sessions: Arc<anxin_api::Sessions>,
    broker: crate::ledger::BrokerAccounts,
    link: anxin_mqtt::DeviceLink,
    metrics: Metrics,
    clock: Clock,
    store_ok: Arc<AtomicBool>,
    in_batch: Arc<AtomicUsize>,
    totals: Arc<ZoneTotals>,
    notify_wake: Arc<tokio::sync::Notify>,
    notify_metrics: crate::notify::NotifyMetrics,
    directory: Arc<RwLock<Directory>>,
    /// The ledger as last read, shared by builds asking at once, and with the follower.
    ledger: Arc<LedgerReads>,
    /// Each running zone's inbox queue, for `anxin_ingest_backlog_messages`.
    queues: Arc<Mutex<BTreeMap<Zone, mpsc::WeakSender<crate::inbox::InboxMessage>>>>,
}

impl Shared {
    /// Builds `zone`'s engine from the store and starts it, and shows its zone on the node's
    /// consoles, phones and family pages.
    async fn start(&self, zone: Zone, lease: Lease, events: mpsc::UnboundedSender<Event>) -> anyhow::Result<()> {
        let config = &self.config;
        let now = self.clock.now();
        let reading = std::time::Instant::now();
        let policy = policy_of(config);
        let since = now.plus_millis(-policy.dedup_window_ms);
        let (engine, registry) = read_zone(&self.data, &self.ledger, reading, policy, zone, Some(since)).await?;
        *self.directory.write().unwrap_or_else(|e| e.into_inner()) = Directory::of(&registry);
        drop(registry);
        let seq = last_seq(&engine, zone);
        let open = engine.snapshot();
        self.family_hub.take_zone(zone, seq, &open);
        let roster = engine.roster_view();
        // Its own responders' phones, and those of other zones its incidents hold across a border.
        for id in roster.iter().map(|r| r.id.clone()).chain(engine.neighbours_engaged()) {
            if let Some(phone) = anxin_runtime::phone_view(&engine, &id, now) {
                crate::ports::publish_phone(&self.phones, &phone);
            }
        }
        self.hub.take_zone(zone, seq, open, roster, now);
        self.hub.set_zone_stations(zone, engine.stations_view());
        let open = self.totals_set(zone, engine.open_count(), engine.offline_count());
        tracing::info!(
            node = self.node,
            zone = zone.number(),
            open,
            built_ms = reading.elapsed().as_millis() as u64,
            "zone's engine built"
        );

        let (inbox_tx, inbox_rx) = mpsc::channel::<crate::inbox::InboxMessage>(config.ingest.queue);
        self.queues.lock().unwrap_or_else(|e| e.into_inner()).insert(zone, inbox_tx.downgrade());
        let (command_tx, command_rx) = mpsc::channel(1024);
        let inbox: Arc<dyn anxin_store::inbox::InboxStore> = self.data.clone();
        let in_flight = Arc::new(crate::inbox::InFlight::default());
        let feed_stop = CancellationToken::new();
        tokio::spawn(crate::inbox::feed(
            inbox,
            vec![zone],
            self.ears.zone(zone),
            Duration::from_millis(250),
            in_flight.clone(),
            inbox_tx,
            Some(self.metrics.inbox_wait_seconds.clone()),
            feed_stop.clone(),
        ));
        let held = crate::cluster::Held::zone(self.data.clone(), self.authority.clone(), lease);
        let fenced = crate::cluster::FencedStore(held);
        let data: Arc<dyn Store> = self.data.clone();
        let store = Arc::new(crate::notify::WakingStorePort {
            inner: crate::ports::StorePort(data, Some(fenced)),
            wake: self.notify_wake.clone(),
            metrics: self.notify_metrics.clone(),
        });
        let peers = crate::ports::ZonePublisher::start(self.link.clone(), zone, seq, self.metrics.clone());
        let feeds = Arc::new(crate::ports::FeedPort {
            hub: self.hub.clone(),
            phones: self.phones.clone(),
            family: self.family_hub.clone(),
            // Every zone's day, read from the store (crate::day), not the engines' commits.
            wallboard: None,
            sessions: self.sessions.clone(),
            broker: self.broker.clone(),
            zone: Some(zone),
            peers: Some(peers.clone()),
        });
        let telemetry = Arc::new(crate::ports::MetricsPort {
            metrics: self.metrics.clone(),
            store_ok: self.store_ok.clone(),
            in_batch: self.in_batch.clone(),
            wallboard: self.wallboard.clone(),
            totals: Some((zone, self.totals.clone())),
            peers: Some(peers),
        });
        let link = crate::ports::LinkPort { link: self.link.clone(), metrics: self.metrics.clone() };
        let devices = Arc::new(crate::ports::InboxPort { link, in_flight });
        let topics = anxin_mqtt::Topics::new(&config.mqtt.topic_root).map_err(anyhow::Error::msg)?;
        let options = anxin_runtime::Options {
            batch_max: config.ingest.batch_max,
            commits_in_flight: config.store.commits_in_flight(),
            intake: anxin_runtime::Intake { topics, max_payload_bytes: config.mqtt.max_payload_bytes },
            health_snapshot: Duration::from_secs(config.health.snapshot_s),
            fault: anxin_runtime::Fault::None,
        };
        let ports = anxin_runtime::Ports { store, devices, feeds, clock: Arc::new(self.clock.clone()), telemetry };
        let lost = CancellationToken::new();
        let runtime = anxin_runtime::Runtime::new(engine, ports, options).lost_on(lost.clone());
        let stop = CancellationToken::new();
        let task = tokio::spawn(runtime.run(inbox_rx, command_rx, stop.clone()));
        let engine = ZoneEngine { stop, lost, task, commands: command_tx, feed: feed_stop.drop_guard() };
        let _ = events.send(Event::Built(zone, engine));
        Ok(())
    }

    fn totals_set(&self, zone: Zone, open: usize, offline: usize) -> usize {
        let port = crate::ports::MetricsPort {
            metrics: self.metrics.clone(),
            store_ok: self.store_ok.clone(),
            in_batch: self.in_batch.clone(),
            wallboard: self.wallboard.clone(),
            totals: Some((zone, self.totals.clone())),
            peers: None,
        };
        anxin_runtime::Telemetry::open_incidents(&port, open);
        anxin_runtime::Telemetry::devices_offline(&port, offline);
        open
    }
}

/// The ledger as read for building zones' engines: builds that ask at once share one read,
/// and each is given a read that began after it asked (so it holds every change committed
/// before). A node taking several zones at once read the whole ledger once a zone, side by
/// side, on its two cores.
#[derive(Debug, Default)]
pub struct LedgerReads(tokio::sync::Mutex<Option<(std::time::Instant, Arc<Registry>)>>);

impl LedgerReads {
    /// The ledger as read no earlier than `asked`.
    pub async fn since(&self, data: &PostgresStore, asked: std::time::Instant) -> anyhow::Result<Arc<Registry>> {
        let mut last = self.0.lock().await;
        if let Some((began, registry)) = &*last {
            if *began >= asked {
                return Ok(registry.clone());
            }
        }
        let began = std::time::Instant::now();
        let registry = Arc::new(data.load_registry().await.context("cannot load the registry")?);
        *last = Some((began, registry.clone()));
        Ok(registry)
    }

    /// The last read, and when it began.
    pub async fn last(&self) -> Option<(std::time::Instant, Arc<Registry>)> {
        self.0.lock().await.clone()
    }
}

/// Reads `zone` back from the store and builds an engine over it: the zone's part of the
/// ledger (the whole ledger, as read no earlier than `asked`, returned beside it) and its open
/// incidents, with the message ids seen since `messages_since` and all else the engine keeps;
/// with `None`, only what consoles are shown ([`anxin_store::Store::resume_open`]: another
/// node's zone, followed).
pub(crate) async fn read_zone(
    data: &PostgresStore,
    ledger: &LedgerReads,
    asked: std::time::Instant,
    policy: anxin_core::Policy,
    zone: Zone,
    messages_since: Option<anxin_core::Timestamp>,
) -> anyhow::Result<(Engine, Arc<Registry>)> {
    let zones = [zone];
    let started = std::time::Instant::now();
    let timed = async {
        let resume = match messages_since {
            Some(since) => data.resume(&zones, since).await,
            None => data.resume_open(&zones).await,
        };
        (resume, started.elapsed())
    };
    let ((resume, resumed), registry) = tokio::join!(timed, ledger.since(data, asked));
    let (registry, resume) = (registry?, resume.context("cannot read the zone")?);
    let read = started.elapsed();
    // Built off the node's runtime threads (one by default): the node's other zones' engines
    // must not wait behind it.
    let ledger = registry.clone();
    // The other zones' responders too, read-only: asked of their zones' owners across a border.
    let engine = tokio::task::spawn_blocking(move || {
        Engine::new(policy, ledger.zones_part(&zones), resume).with_neighbours(ledger.neighbours_of(&zones))
    })
    .await
    .context("building the zone's engine failed")?;
    tracing::debug!(
        zone = zone.number(),
        resume_ms = resumed.as_millis() as u64,
        ledger_ms = read.as_millis() as u64,
        engine_ms = (started.elapsed() - read).as_millis() as u64,
        "a zone read from the store"
    );
    Ok((engine, registry))
}

/// The last sequence number `engine` handed out in `zone` (its base if none).
pub(crate) fn last_seq(engine: &Engine, zone: Zone) -> u64 {
    engine.last_seqs().into_iter().filter(|s| Zone::of(*s) == zone).max().unwrap_or(zone.base())
}

/// Runs this node, with the zones spread over the nodes, until `shutdown` (see the module's
/// documentation). At `shutdown` every zone's engine finishes its batch, then the node leaves
/// (its leases released together, so the others take over at once).
///
/// `registry` (the first node's `--registry`) is added to the stored ledger first.
pub async fn serve(config: Config, registry: Option<Registry>, shutdown: CancellationToken) -> anyhow::Result<()> {
    let node = config.cluster.node_name();
    let url = config.store.url.expose().to_string();
    let ttl = Duration::from_millis(config.cluster.lease_ttl_ms);
    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.http.listen))?;
    let http = listener.local_addr()?;
    let addr = config.cluster.advertised(http);
    let data = Arc::new(PostgresStore::open_for_lease(&url, ttl).await.context("cannot open the store")?);
    if let Some(registry) = registry {
        let stored = data.load_registry().await.context("cannot load the registry")?;
        registry.check_against(&stored).context("the registry is inconsistent")?;
        data.save_registry(&registry).await.context("cannot save the registry")?;
    }
    let clock = Clock::System;
    let now = clock.now();
    let registry = data.load_registry().await.context("cannot load the registry")?;
    let history = data.history_id().await.context("cannot read the store's history id")?;
    let ledger_zones = data.ledger_zones().await.context("cannot read the ledger's zones")?;

    let metrics = Metrics::new();
    let policy = policy_of(&config);
    let tokens = registry
        .responders
        .iter()
        .filter_map(|r| r.token_sha256.as_ref().map(|h| (h.to_ascii_lowercase(), r.id.clone())))
        .collect();
    let phones = Arc::new(anxin_api::ResponderHub::new(tokens));
    let data_store: Arc<dyn Store> = data.clone();
    let sessions = crate::sessions::kept(registry.staff.clone(), data_store.clone());
    let families = Arc::new(crate::family::StoreFamilies::new(data_store.clone(), &registry));
    let modes = registry.responders.iter().map(|r| (r.id.clone(), r.mode)).collect();
    let family_hub = Arc::new(anxin_api::FamilyHub::new(policy, modes, Vec::new()));
    let hub = Arc::new(Hub::new(history, anxin_api::Cursor::default(), Vec::new(), config.consoles.replay));
    let tally = anxin_core::DayTally::new(config.wallboard.limits(), config.dispatch.utc_offset_min, now);
    let clock_fn: anxin_api::WallClock = {
        let clock = clock.clone();
        Arc::new(move || clock.now())
    };
    // The day's events as the store has them when read, then every zone's as they are stored
    // (crate::day), whichever node commits them.
    let wallboard = Arc::new(anxin_api::Wallboard::loading_all(tally, 0, clock_fn));

    // The broker learns devices' accounts as the ledger changes, and agrees with it now.
    let provisioner = crate::provision::provisioner(&config, None).await?;
    crate::ledger::reconcile_broker(&*data, &*provisioner).await?;
    // The node's link only publishes (the ingest sessions take devices' events in): nothing
    // comes in on it.
    let options =
        LinkOptions { client_id: format!("{}-{node}", config.mqtt.client_id), ..crate::spread::link_options(&config)? };
    let mqtt_url = if options.host.contains(':') {
        format!("mqtt://[{}]:{}", options.host, options.port)
    } else {
        format!("mqtt://{}:{}", options.host, options.port)
    };
    let (nothing_in, _) = mpsc::channel(1);
    let link_stop = CancellationToken::new();
    let (link, link_task) = anxin_mqtt::connect(options, nothing_in, link_stop.clone());
    crate::telemetry::LinkWaiting::register(&metrics.registry, link.clone())
        .map_err(|e| anyhow::anyhow!("cannot register the MQTT request gauge: {e}"))?;

    let store_ok = Arc::new(AtomicBool::new(true));
    let zones_running = Arc::new(AtomicUsize::new(0));
    let readiness: anxin_api::ReadinessCheck = {
        let (link, store_ok, zones_running) = (link.clone(), store_ok.clone(), zones_running.clone());
        Arc::new(move || {
            vec![
                ("mqtt", link.is_connected()),
                ("store", store_ok.load(Ordering::Relaxed)),
                ("engine", zones_running.load(Ordering::Relaxed) > 0),
            ]
        })
    };
    let (command_tx, command_rx) = mpsc::channel(1024);
    let engines: Engines = Arc::default();
    // The node sends the notifications of the zones it runs.
    let notify_zones: crate::notify::RunningZones = {
        let engines = engines.clone();
        Arc::new(move || engines.read().unwrap_or_else(|e| e.into_inner()).keys().copied().collect())
    };
    let People { routes, notify_task, notify_stop, notify_wake, notify_metrics, http_stop } = people(PeopleParts {
        config: &config,
        store: data_store.clone(),
        hub: hub.clone(),
        phones: phones.clone(),
        sessions: sessions.clone(),
        families,
        family_hub: family_hub.clone(),
        wallboard: wallboard.clone(),
        metrics: &metrics,
        clock: &clock,
        readiness,
        commands: command_tx,
        notify_zones: Some(notify_zones),
    })?;
    let wallboard_stop = CancellationToken::new();
    let wallboard_task = {
        let (store, board, stop) = (data_store, wallboard.clone(), wallboard_stop.clone());
        tokio::spawn(async move {
            let following = crate::day::spawn(store, board.clone(), stop.clone());
            board.run(stop).await;
            let _ = following.await;
        })
    };
    let http_task = tokio::spawn(anxin_api::serve(listener, routes, http_stop.clone()));

    let directory = Arc::new(RwLock::new(Directory::of(&registry)));
    drop(registry);
    let in_batch = Arc::new(AtomicUsize::new(0));
    let queues: Arc<Mutex<BTreeMap<Zone, mpsc::WeakSender<crate::inbox::InboxMessage>>>> = Arc::default();
    let queued = {
        let queues = queues.clone();
        Box::new(move || {
            let queues = queues.lock().unwrap_or_else(|e| e.into_inner());
            queues.values().filter_map(|q| q.upgrade()).map(|tx| tx.max_capacity() - tx.capacity()).sum()
        })
    };
    // Each zone's engine holds its own queue and batches: the limit is one engine's.
    let limit = config.ingest.queue + (config.store.commits_in_flight() + 2) * config.ingest.batch_max;
    crate::telemetry::IngestBacklog::register_counted(&metrics.registry, queued, in_batch.clone(), limit)
        .map_err(|e| anyhow::anyhow!("cannot register the ingest backlog gauges: {e}"))?;

    // Every zone on this node's consoles: those run elsewhere followed from their owners.
    let mine: crate::follow::Mine = Arc::default();
    let ledger: Arc<LedgerReads> = Arc::default();
    let follow_stop = CancellationToken::new();
    let (owners_tx, owners) = tokio::sync::watch::channel(crate::spread::Owners::new());
    let (follower, forwarder, follow_task) = crate::follow::start(
        crate::follow::Following {
            config: config.clone(),
            node: node.clone(),
            data: data.clone(),
            hub: hub.clone(),
            clock: clock.clone(),
            mine: mine.clone(),
            zones: ledger_zones,
            ledger: ledger.clone(),
            reading: tokio::sync::Semaphore::new(1),
            engines: engines.clone(),
            rejected: metrics.peer_frames_rejected.clone(),
            sessions: sessions.clone(),
            phones: phones.clone(),
            sign_ins_changed: Mutex::default(),
            wallboard: wallboard.clone(),
        },
        owners,
        follow_stop.clone(),
    )?;
    let router_task =
        tokio::spawn(router(command_rx, engines.clone(), directory.clone(), Some(forwarder), Some(hub.clone())));
    let membership =
        Membership::start(&config.cluster, &url, &addr, data.clone(), IngestSetup::of(&config)?, owners_tx).await?;
    let deadline = Duration::from_secs(config.shutdown.deadline_s);
    let ears = crate::inbox::Ears::start(url.clone(), follow_stop.clone());
    let shared = Arc::new(Shared {
        config,
        node: node.clone(),
        ears,
        data,
        authority: membership.authority.clone(),
        hub: hub.clone(),
        phones,
        family_hub: family_hub.clone(),
        wallboard,
        sessions,
        broker: crate::ledger::BrokerAccounts::spawn(provisioner),
        link: link.clone(),
        metrics: metrics.clone(),
        clock: clock.clone(),
        store_ok,
        in_batch,
        totals: Arc::default(),
        notify_wake,
        notify_metrics,
        directory,
        ledger: ledger.clone(),
        queues,
    });

    let (events_tx, mut events) = mpsc::unbounded_channel::<Event>();
    let mut slots: BTreeMap<Zone, Slot> = BTreeMap::new();
    // Zones whose engine stopped by itself (fenced, or a bug): built again no sooner than this.
    let mut retry_at: BTreeMap<Zone, tokio::time::Instant> = BTreeMap::new();
    let mut plan_rx = membership.plan();
    let mut losses = 0;
    let mut said: Option<Vec<Zone>> = None;
    let say = |running: Vec<Zone>, said: &mut Option<Vec<Zone>>| {
        if said.as_ref() == Some(&running) {
            return;
        }
        if running.is_empty() {
            println!("anxind standby node={node} http={http}");
        } else {
            let listed = running.iter().map(|z| z.number().to_string()).collect::<Vec<_>>().join(",");
            println!("anxind ready console=http://{http}/console mqtt={mqtt_url} node={node} zones={listed}");
        }
        *said = Some(running);
    };
    loop {
        let claimed: BTreeSet<Zone> = slots.keys().copied().collect();
        let plan: Plan = membership.claim_beside(&claimed);
        let lost = plan.losses != losses;
        losses = plan.losses;
        let now = tokio::time::Instant::now();
        for (zone, lease) in &plan.run {
            if slots.contains_key(zone) || retry_at.get(zone).is_some_and(|t| *t > now) {
                continue;
            }
            retry_at.remove(zone);
            // From now on the zone's views are this node's engine's, not another's.
            mine.lock().unwrap_or_else(|e| e.into_inner()).insert(*zone);
            let (shared, zone, lease, events) = (shared.clone(), *zone, lease.clone(), events_tx.clone());
            slots.insert(
                zone,
                Slot::Building(tokio::spawn(async move {
                    while let Err(e) = shared.start(zone, lease.clone(), events.clone()).await {
                        tracing::error!(
                            zone = zone.number(),
                            error = format!("{e:#}"),
                            "cannot build the zone's engine; trying again"
                        );
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                })),
            );
        }
        let going: Vec<Zone> = slots.keys().filter(|z| !plan.run.contains_key(z)).copied().collect();
        for zone in going {
            let Some(slot) = slots.remove(&zone) else { continue };
            engines.write().unwrap_or_else(|e| e.into_inner()).remove(&zone);
            let next = match slot {
                Slot::Building(build) => {
                    build.abort();
                    let events = events_tx.clone();
                    tokio::spawn(async move {
                        // Built after all: its engine is stopped when that is heard of.
                        if build.await.is_err() {
                            let _ = events.send(Event::Stopped(zone, None));
                        }
                    });
                    Slot::Stopping { _feed: None }
                }
                Slot::Running { stop, lost: gone, abort, feed } => {
                    if lost {
                        // Its lease went to another node: nothing more of it is stored, and
                        // what it was asked and did not store is answered so (for the
                        // router to take to the zone's next owner). One that does not end
                        // (a commit hanging on the database) is aborted.
                        gone.cancel();
                        tokio::spawn(async move {
                            tokio::time::sleep(LOST_ENGINE_ABORT).await;
                            abort.abort();
                        });
                    } else {
                        // Handed over: it finishes its batch first.
                        stop.cancel();
                    }
                    Slot::Stopping { _feed: Some(feed) }
                }
                stopping @ Slot::Stopping { .. } => stopping,
            };
            slots.insert(zone, next);
        }
        let running: Vec<Zone> =
            slots.iter().filter(|(_, s)| matches!(s, Slot::Running { .. })).map(|(z, _)| *z).collect();
        zones_running.store(running.len(), Ordering::Relaxed);
        say(running, &mut said);

        let next_retry = retry_at.values().min().copied();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = plan_rx.changed() => if changed.is_err() { break },
            _ = async { tokio::time::sleep_until(next_retry.unwrap_or(now)).await }, if next_retry.is_some() => {}
            Some(event) = events.recv() => match event {
                Event::Built(zone, engine) => {
                    let watch = watch_engine(zone, engine.task, events_tx.clone());
                    match slots.get(&zone) {
                        Some(Slot::Building(_)) => {
                            engines.write().unwrap_or_else(|e| e.into_inner()).insert(zone, engine.commands);
                            let (stop, lost, feed) = (engine.stop, engine.lost, engine.feed);
                            slots.insert(zone, Slot::Running { stop, lost, abort: watch, feed });
                        }
                        _ => {
                            // Given up while it was being built.
                            engine.stop.cancel();
                            slots.insert(zone, Slot::Stopping { _feed: Some(engine.feed) });
                        }
                    }
                }
                Event::Stopped(zone, ended) => {
                    let asked = matches!(slots.get(&zone), Some(Slot::Stopping { .. }));
                    slots.remove(&zone);
                    engines.write().unwrap_or_else(|e| e.into_inner()).remove(&zone);
                    shared.queues.lock().unwrap_or_else(|e| e.into_inner()).remove(&zone);
                    family_hub.drop_zone(zone);
                    // The consoles go on showing it, as followed from its next owner: from where
                    // this node's engine left it when it stopped cleanly, else as read back.
                    mine.lock().unwrap_or_else(|e| e.into_inner()).remove(&zone);
                    match ended {
                        Some(anxin_runtime::Ended::Shutdown) => follower.follow_from(zone, hub.cursor().position(zone)),
                        _ => follower.read_back(zone),
                    }
                    let (open, offline) = shared.totals.remove(zone);
                    metrics.open_incidents.set(open as i64);
                    // The board keeps the zone's count until its next owner counts anew.
                    metrics.devices_offline.set(offline as i64);
                    if !asked {
                        tracing::error!(node, zone = zone.number(), ?ended, "the zone's engine stopped by itself; building it again");
                        retry_at.insert(zone, tokio::time::Instant::now() + Duration::from_secs(1));
                    } else {
                        tracing::info!(node, zone = zone.number(), "the zone's engine has stopped");
                    }
                    membership.zone_stopped(zone);
                }
            },
        }
    }

    // Every engine finishes its batch (or its build is given up), then the node's zones,
    // sessions and lease are released together.
    let until = tokio::time::Instant::now() + deadline;
    slots.retain(|_, slot| match slot {
        // A build given up has changed nothing (one that was done is heard of below).
        Slot::Building(build) => {
            build.abort();
            false
        }
        Slot::Running { stop, .. } => {
            stop.cancel();
            true
        }
        Slot::Stopping { .. } => true,
    });
    let stopped = tokio::time::timeout_at(until, async {
        loop {
            let event = if slots.is_empty() {
                // Only an engine built just as its build was given up may be left to hear of.
                match events.try_recv() {
                    Ok(event) => event,
                    Err(_) => break,
                }
            } else {
                match events.recv().await {
                    Some(event) => event,
                    None => break,
                }
            };
            match event {
                Event::Stopped(zone, _) => {
                    slots.remove(&zone);
                }
                Event::Built(zone, engine) => {
                    engine.stop.cancel();
                    let abort = watch_engine(zone, engine.task, events_tx.clone());
                    let (stop, lost) = (engine.stop, engine.lost);
                    slots.insert(zone, Slot::Running { stop, lost, abort, feed: engine.feed });
                }
            }
        }
    })
    .await;
    if stopped.is_err() {
        tracing::warn!(
            node,
            "shutdown deadline passed with zones' engines still stopping; their leases lapse by themselves"
        );
        for slot in slots.values() {
            if let Slot::Running { abort, .. } = slot {
                abort.abort();
            }
        }
    } else {
        // In one statement: whoever takes them over hears of them all at once.
        membership.stopped_leaving();
    }
    zones_running.store(0, Ordering::Relaxed);
    router_task.abort();
    follow_stop.cancel();
    let _ = follow_task.await;
    link.disconnect().await;
    link_stop.cancel();
    let _ = tokio::time::timeout_at(until, link_task).await;
    membership.leave().await;
    http_stop.cancel();
    notify_stop.cancel();
    wallboard_stop.cancel();
    let _ = tokio::time::timeout_at(until + deadline, async {
        let _ = http_task.await;
        let _ = notify_task.await;
        let _ = wallboard_task.await;
    })
    .await;
    Ok(())
}

/// Tells the node's loop when `zone`'s engine stops; the handle aborts it.
fn watch_engine(
    zone: Zone,
    task: tokio::task::JoinHandle<anxin_runtime::Ended>,
    events: mpsc::UnboundedSender<Event>,
) -> tokio::task::AbortHandle {
    let abort = task.abort_handle();
    tokio::spawn(async move {
        let ended = task.await.ok();
        let _ = events.send(Event::Stopped(zone, ended));
    });
    abort
}

#[cfg(test)]
mod tests {
    use super::*;
    use anxin_core::{DispatcherAction, IncidentId, OrderId};

    /// `one_of_each` with its station in zone 3, and an elder with no station.
    fn directory() -> Directory {
        let mut registry = anxin_core::testkit::one_of_each();
        registry.stations[0].zone = Zone::new(3).unwrap();
        registry.elders[0].profile.station_id = Some(registry.stations[0].id.clone());
        let mut unenrolled = registry.elders[0].clone();
        unenrolled.id = ElderId::parse("e-2").unwrap();
        unenrolled.profile.station_id = None;
        registry.elders.push(unenrolled);
        Directory::of(&registry)
    }

    #[test]
    fn a_command_goes_to_the_zone_of_what_it_concerns() {
        let dir = directory();
        let z3 = Route::Zone(Zone::new(3).unwrap());
        let dispatcher = Caller::Dispatcher { id: "wang".into(), supervisor: false };
        let phone = Caller::Responder(anxin_core::testkit::r1());
        let incident = IncidentId((3 << 40) + 17);
        let claim = Request::Dispatch { incident, action: DispatcherAction::Claim };
        assert_eq!(route(&dispatcher, &claim, &dir), z3, "an incident's number says its zone");
        assert_eq!(route(&dispatcher, &Request::Suggest { incident: IncidentId(5) }, &dir), Route::Zone(Zone::FIRST));
        let act = Request::OrderAct {
            order: OrderId((7 << 40) + 1),
            action: anxin_core::OrderAction::Cancel { reason: "x".into() },
        };
        assert_eq!(route(&dispatcher, &act, &dir), Route::Zone(Zone::new(7).unwrap()), "so does an order's");
        assert_eq!(route(&phone, &Request::Duty { on: true }, &dir), z3, "a responder is in their station's zone");
        let elder = |id: &str| Request::History { elder: ElderId::parse(id).unwrap() };
        assert_eq!(route(&dispatcher, &elder("e-1"), &dir), z3, "an elder in their station's");
        assert_eq!(route(&dispatcher, &elder("e-2"), &dir), Route::Zone(Zone::FIRST), "an unenrolled elder in 0");
        assert_eq!(route(&dispatcher, &elder("e-9"), &dir), Route::Home, "one not in the ledger as read");
        let family = Caller::Family { elder: ElderId::parse("e-1").unwrap(), contact: "c1".into() };
        assert_eq!(route(&family, &Request::FamilyHistory, &dir), z3);
        assert_eq!(route(&dispatcher, &Request::Presence { online: true }, &dir), Route::Every);
        assert_eq!(route(&dispatcher, &Request::SignedOut, &dir), Route::Every);
        assert_eq!(route(&dispatcher, &Request::Catalogue, &dir), Route::Home);
        assert_eq!(route(&dispatcher, &Request::Orders, &dir), Route::Board, "the board: every zone's");
    }

    #[tokio::test]
    async fn the_router_answers_for_a_zone_not_here_and_tells_every_engine_of_a_presence() {
        let engines: Engines = Arc::default();
        let (tx0, mut rx0) = mpsc::channel(4);
        let (tx3, mut rx3) = mpsc::channel(4);
        engines.write().unwrap().insert(Zone::FIRST, tx0);
        engines.write().unwrap().insert(Zone::new(3).unwrap(), tx3);
        let (commands, from_people) = mpsc::channel(4);
        tokio::spawn(router(from_people, engines, Arc::new(RwLock::new(directory())), None, None));
        let dispatcher = Caller::Dispatcher { id: "wang".into(), supervisor: false };
        let ask = |request: Request| {
            let (reply, answer) = tokio::sync::oneshot::channel();
            (Command::new(dispatcher.clone(), request, Some(reply)), answer)
        };

        let (command, answer) = ask(Request::Suggest { incident: IncidentId((5 << 40) + 1) });
        commands.send(command).await.unwrap();
        let refused = answer.await.unwrap().unwrap_err();
        assert_eq!((refused.code.as_str(), refused.args["zone"].as_str()), ("zone_elsewhere", "5"));

        let (command, _answer) = ask(Request::Suggest { incident: IncidentId((3 << 40) + 1) });
        commands.send(command).await.unwrap();
        let got = rx3.recv().await.unwrap();
        assert_eq!(got.request, Request::Suggest { incident: IncidentId((3 << 40) + 1) });
        assert!(got.reply.is_some(), "zone 3's engine answers");

        let (command, _answer) = ask(Request::Presence { online: false });
        commands.send(command).await.unwrap();
        let (at0, at3) = (rx0.recv().await.unwrap(), rx3.recv().await.unwrap());
        assert_eq!(
            (at0.request.clone(), at3.request.clone()),
            (Request::Presence { online: false }, Request::Presence { online: false })
        );
        assert_eq!(u8::from(at0.reply.is_some()) + u8::from(at3.reply.is_some()), 1, "one of them answers");
        assert!(rx0.try_recv().is_err() && rx3.try_recv().is_err());
    }

    /// The board asks every zone the node knows of: those it runs answer for themselves, and
    /// one that does not answer, or that runs nowhere the node can ask, is named as missing.
    #[tokio::test]
    async fn the_board_gathers_every_zones_orders_and_names_those_missing() {
        let engines: Engines = Arc::default();
        let (tx0, mut rx0) = mpsc::channel(4);
        let (tx3, mut rx3) = mpsc::channel(4);
        engines.write().unwrap().insert(Zone::FIRST, tx0);
        engines.write().unwrap().insert(Zone::new(3).unwrap(), tx3);
        // The hub shows zone 5 too, run by a node this one cannot ask (no forwarder here).
        let five = Zone::new(5).unwrap();
        let hub = Arc::new(Hub::new("h".into(), anxin_api::Cursor::of([five.base()]), Vec::new(), 16));
        let (commands, from_people) = mpsc::channel(4);
        tokio::spawn(router(from_people, engines, Arc::new(RwLock::new(directory())), None, Some(hub)));
        let dispatcher = Caller::Dispatcher { id: "wang".into(), supervisor: false };
        let (reply, answer) = tokio::sync::oneshot::channel();
        commands.send(Command::new(dispatcher, Request::Orders, Some(reply))).await.unwrap();
        // Zone 0 answers; zone 3's engine stops before it does.
        let asked0 = rx0.recv().await.unwrap();
        assert_eq!(asked0.request, Request::Orders);
        asked0.reply.unwrap().send(Ok(anxin_proto::Reply::Orders(anxin_proto::OrderBoard::default()))).unwrap();
        drop(rx3.recv().await.unwrap());
        let Ok(anxin_proto::Reply::Orders(board)) = answer.await.unwrap() else { panic!("not a board") };
        assert_eq!(board.zones_unanswered, [3, 5]);

        // A contact's board is their elder's zone's alone.
        let family = Caller::Family { elder: ElderId::parse("e-1").unwrap(), contact: "c-1".into() };
        assert_eq!(route(&family, &Request::Orders, &directory()), Route::Zone(Zone::new(3).unwrap()));
    }
}
