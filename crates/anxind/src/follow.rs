//! Following the zones other nodes run (zones spread over nodes, `crate::node`): every
//! node's consoles show every zone.
//!
//! The node running a zone publishes what its engine commits there, as consoles see it, on the
//! zone's views topic (`ports::ZonePublisher`), each frame naming the zone's last sequence
//! number before it. Every node follows every zone's topic with a clean MQTT session of its
//! own (`{mqtt.client_id}-{node}-follow`) and puts the frames of the zones it does not run on
//! its consoles' hub, in order. A zone first heard of, a frame that does not follow the last
//! one taken (one missed: a connection dropped, an owner killed between its commit and its
//! publish), and every zone whenever the session connects again, is read back from the store
//! instead (an engine built over it, as its owner builds one, whose views are what the owner
//! shows), the frames arriving meanwhile held and then taken on from where the store's read
//! ends. A zone this node runs is its own engines' (`mine`): its frames are passed over, and
//! when it stops running here it is read back like any other.

use crate::clock::Clock;
use crate::config::Config;
use anxin_api::Hub;
use anxin_core::Zone;
use anxin_mqtt::rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use anxin_proto::cluster::ZoneViews;
use anxin_store::PostgresStore;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The zones this node's engines run (or are being built or stopped for). The follower takes
/// a zone onto the hub only while holding this lock and finding the zone not in it.
pub type Mine = Arc<Mutex<BTreeSet<Zone>>>;

/// Asks the follower to read a zone back from the store (it has stopped running here).
#[derive(Debug, Clone)]
pub struct Follower(mpsc::UnboundedSender<(Zone, Option<u64>)>);

impl Follower {
    pub fn read_back(&self, zone: Zone) {
        let _ = self.0.send((zone, None));
    }

    /// Follows `zone` on from `seq`: the node's own engine ran it up to there, stopped cleanly
    /// (every batch stored and shown, its views published), and the consoles show it as it
    /// was; the next owner's first frame follows on from there. (Reading it back instead, as
    /// every node handing a zone over did, slowed the cluster test's presses.)
    pub fn follow_from(&self, zone: Zone, seq: u64) {
        let _ = self.0.send((zone, Some(seq)));
    }
}

/// What the follower needs.
#[derive(Debug)]
pub struct Following {
    pub config: Config,
    pub node: String,
    pub data: Arc<PostgresStore>,
    pub hub: Arc<Hub>,
    pub clock: Clock,
    pub mine: Mine,
    /// The ledger's zones, read back at start.
    pub zones: Vec<Zone>,
    /// The ledger as last read (by this node's builds too).
    pub ledger: Arc<crate::node::LedgerReads>,
    /// Zones read back at once.
    pub reading: tokio::sync::Semaphore,
    /// The node's zones' engines: requests forwarded here go to them.
    pub engines: crate::node::Engines,
    /// `anxin_cluster_frames_rejected_total`.
    pub rejected: prometheus::IntCounterVec,
}

/// How old a ledger read may be to read a zone back with.
const LEDGER_FRESH: Duration = Duration::from_secs(5);

/// Where a zone followed stands.
enum State {
    /// Shown up to this sequence number.
    At(u64),
    /// Being read back from the store; frames heard meanwhile wait here.
    Reading(Vec<ZoneViews>),
}

/// What comes in from the broker.
enum Heard {
    Connected,
    Frame(String, Vec<u8>),
}

/// Starts following; stops at `stop`.
pub fn start(
    following: Following,
    owners: tokio::sync::watch::Receiver<crate::spread::Owners>,
    stop: CancellationToken,
) -> anyhow::Result<(Follower, Arc<Forwarder>, tokio::task::JoinHandle<()>)> {
    let link = crate::spread::link_options(&following.config)?;
    let mut options = MqttOptions::new(format!("{}-{}-follow", link.client_id, following.node), link.host, link.port);
    options.set_clean_session(true);
    options.set_keep_alive(link.keep_alive);
    // A frame is split before it is larger than the link sends (64 kB); room to spare.
    options.set_max_packet_size(1 << 20, 1 << 16);
    if let (Some(user), Some(password)) = (&link.username, &link.password) {
        options.set_credentials(user.clone(), password.clone());
    }
    let filters = [
        link.topics.zone_views_filter(),
        link.topics.node_commands(&following.node),
        link.topics.node_answers(&following.node),
    ];
    let (client, mut events) = AsyncClient::new(options, 1024);
    let forwarder = Arc::new(Forwarder {
        client: client.clone(),
        node: following.node.clone(),
        topics: link.topics.clone(),
        next: std::sync::atomic::AtomicU64::new(1),
        pending: Mutex::default(),
        owners,
        rejected: following.rejected.clone(),
    });
    let (heard_tx, heard) = mpsc::channel::<Heard>(1024);
    let pump_stop = stop.clone();
    tokio::spawn(async move {
        loop {
            let event = tokio::select! {
                _ = pump_stop.cancelled() => break,
                event = events.poll() => event,
            };
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let subscribe =
                        filters.iter().map(|f| anxin_mqtt::rumqttc::SubscribeFilter::new(f.clone(), QoS::AtLeastOnce));
                    if client.subscribe_many(subscribe).await.is_err() {
                        break;
                    }
                    if heard_tx.send(Heard::Connected).await.is_err() {
                        break;
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if heard_tx.send(Heard::Frame(p.topic, p.payload.to_vec())).await.is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the zones' views: connection to the broker lost; connecting again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        let _ = client.disconnect().await;
    });
    let (orders_tx, orders) = mpsc::unbounded_channel();
    let task = tokio::spawn(following.run(heard, orders, forwarder.clone(), stop));
    Ok((Follower(orders_tx), forwarder, task))
}

impl Following {
    async fn run(
        self,
        mut heard: mpsc::Receiver<Heard>,
        mut orders: mpsc::UnboundedReceiver<(Zone, Option<u64>)>,
        forwarder: Arc<Forwarder>,
        stop: CancellationToken,
    ) {
        let topics = match anxin_mqtt::Topics::new(&self.config.mqtt.topic_root) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = e, "the zones' views: no topics; not following");
                return;
            }
        };
        let (commands, answers) = (topics.node_commands(&self.node), topics.node_answers(&self.node));
        let this = Arc::new(self);
        let (done_tx, mut done) = mpsc::unbounded_channel::<(Zone, anyhow::Result<Read>)>();
        let mut zones: BTreeMap<Zone, State> = BTreeMap::new();
        let read_back = |zone: Zone, zones: &mut BTreeMap<Zone, State>, held: Vec<ZoneViews>| {
            if this.is_mine(zone) {
                zones.remove(&zone);
                return;
            }
            if let Some(State::Reading(waiting)) = zones.get_mut(&zone) {
                waiting.extend(held);
                return;
            }
            zones.insert(zone, State::Reading(held));
            let (this, done) = (this.clone(), done_tx.clone());
            tokio::spawn(async move {
                let read = this.read(zone).await;
                if read.is_err() {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                let _ = done.send((zone, read));
            });
        };
        for zone in this.zones.clone() {
            read_back(zone, &mut zones, Vec::new());
        }
        loop {
            tokio::select! {
                // An order before any frame: a zone this node has just stopped running is
                // followed on from where it left it before the next owner's frames are taken.
                biased;
                _ = stop.cancelled() => return,
                Some((zone, from)) = orders.recv() => match from {
                    // Whatever was kept of it from before it ran here is older.
                    Some(seq) if !this.is_mine(zone) && !matches!(zones.get(&zone), Some(State::Reading(_))) => {
                        zones.insert(zone, State::At(seq));
                    }
                    _ => read_back(zone, &mut zones, Vec::new()),
                },
                Some((zone, read)) = done.recv() => {
                    let Some(State::Reading(held)) = zones.remove(&zone) else { continue };
                    match read {
                        Ok(read) => {
                            let Some(at) = this.show(zone, read) else { continue };
                            zones.insert(zone, State::At(at));
                            // What came meanwhile, from where the store's read ends.
                            for frame in held {
                                if let Some(gap) = this.take(zone, frame, &mut zones).await {
                                    read_back(zone, &mut zones, vec![gap]);
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(zone = zone.number(), error = format!("{e:#}"), "cannot read a zone back for the consoles; trying again");
                            read_back(zone, &mut zones, held);
                        }
                    }
                }
                Some(heard) = heard.recv() => match heard {
                    // Frames may have gone by while the session was away: every zone again.
                    Heard::Connected => {
                        let known: Vec<Zone> = this.zones.iter().copied().chain(zones.keys().copied()).collect::<BTreeSet<_>>().into_iter().collect();
                        for zone in known {
                            read_back(zone, &mut zones, Vec::new());
                        }
                    }
                    Heard::Frame(topic, payload) if topic == answers => forwarder.answered(&payload),
                    Heard::Frame(topic, payload) if topic == commands => forwarder.asked(&payload, &this.engines),
                    Heard::Frame(topic, payload) => {
                        let Some(zone) = topics.zone_of_views(&topic).and_then(|n| Zone::new(i64::from(n)).ok()) else { continue };
                        // Read off the node's runtime threads: its engines must not wait behind it.
                        let read = tokio::task::spawn_blocking(move || serde_json::from_slice::<ZoneViews>(&payload));
                        let frame = match read.await {
                            Ok(Ok(frame)) => frame,
                            Ok(Err(e)) => {
                                this.rejected.with_label_values(&["views"]).inc();
                                tracing::warn!(%topic, error = %e, "a zone's views that are not a frame; passed over");
                                continue;
                            }
                            Err(_) => continue,
                        };
                        if this.is_mine(zone) {
                            continue;
                        }
                        match zones.get_mut(&zone) {
                            Some(State::Reading(waiting)) => waiting.push(frame),
                            Some(State::At(_)) => {
                                if let Some(gap) = this.take(zone, frame, &mut zones).await {
                                    read_back(zone, &mut zones, vec![gap]);
                                }
                            }
                            None => read_back(zone, &mut zones, vec![frame]),
                        }
                    }
                },
            }
        }
    }

    fn is_mine(&self, zone: Zone) -> bool {
        self.mine.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&zone)
    }

    /// Takes `frame` onto the hub if it follows what was shown of `zone`; returns it if it
    /// does not (one was missed), for the zone to be read back.
    async fn take(&self, zone: Zone, frame: ZoneViews, zones: &mut BTreeMap<Zone, State>) -> Option<ZoneViews> {
        let Some(State::At(at)) = zones.get_mut(&zone) else { return Some(frame) };
        if frame.last() <= *at && frame.prev <= *at {
            return None; // shown already
        }
        if frame.prev > *at {
            return Some(frame);
        }
        *at = frame.last();
        // Written out for the consoles off the node's runtime threads, and waited for: the
        // next frame is shown after this one.
        let hub = self.hub.clone();
        let _ = tokio::task::spawn_blocking(move || {
            if !frame.views.is_empty() {
                hub.publish(frame.views);
            }
            if !frame.responders.is_empty() {
                hub.publish_responders(frame.responders);
            }
        })
        .await;
        None
    }

    /// Reads `zone` back from the store as its owner would build it, but for the messages it
    /// has seen (a view does not show them), and with the ledger read at most a few seconds
    /// ago (a view shows what the ledger says of elders and responders; the next frame of an
    /// incident shows its owner's). One at a time, each followed by a rest as long as it took:
    /// a node starting reads every zone back, and its own zones' engines, and on a shared
    /// machine the other nodes', must not wait behind that (the cluster test's presses did,
    /// for 0.3-0.45 s, when the three nodes on its two cores had each read every zone back).
    async fn read(&self, zone: Zone) -> anyhow::Result<Read> {
        let _turn = self.reading.acquire().await?;
        let started = std::time::Instant::now();
        let read = self.read_now(zone).await;
        tokio::time::sleep(started.elapsed()).await;
        read
    }

    async fn read_now(&self, zone: Zone) -> anyhow::Result<Read> {
        let asked = std::time::Instant::now().checked_sub(LEDGER_FRESH).unwrap_or_else(std::time::Instant::now);
        let now = self.clock.now();
        let policy = crate::app::policy_of(&self.config);
        let (engine, _) = crate::node::read_zone(&self.data, &self.ledger, asked, policy, zone, now).await?;
        // The views made off the node's runtime threads, as the engine was built.
        let read = tokio::task::spawn_blocking(move || Read {
            seq: crate::node::last_seq(&engine, zone),
            open: engine.snapshot(),
            responders: engine.roster_view(),
            stations: engine.stations_view(),
        });
        Ok(read.await?)
    }

    /// Shows what was read of `zone` on the hub, unless the zone runs here now; the sequence
    /// number it is shown up to.
    fn show(&self, zone: Zone, read: Read) -> Option<u64> {
        let mine = self.mine.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if mine.contains(&zone) {
            return None;
        }
        self.hub.take_zone(zone, read.seq, read.open, read.responders, self.clock.now());
        self.hub.set_zone_stations(zone, read.stations);
        drop(mine);
        Some(read.seq)
    }
}

/// A zone as read back from the store.
struct Read {
    seq: u64,
    open: Vec<anxin_core::IncidentView>,
    responders: Vec<anxin_core::ResponderView>,
    stations: Vec<anxin_core::StationView>,
}

/// Forwards a dispatcher's request about another node's zone to that node, and takes the
/// answers (`anxin_proto::cluster::Forwarded`), over the follower's MQTT session.
#[derive(Debug)]
pub struct Forwarder {
    client: AsyncClient,
    node: String,
    topics: anxin_mqtt::Topics,
    next: std::sync::atomic::AtomicU64,
    /// Requests forwarded and not yet answered, by number.
    pending: Mutex<std::collections::HashMap<u64, tokio::sync::oneshot::Sender<anxin_proto::Answer>>>,
    owners: tokio::sync::watch::Receiver<crate::spread::Owners>,
    rejected: prometheus::IntCounterVec,
}

/// How long a forwarded request is waited for (a console gives up on any request after 15 s).
const FORWARD_WAIT: Duration = Duration::from_secs(20);

impl Forwarder {
    /// Forwards `command`, about `zone`, to the node whose lease it is; gives it back when it
    /// cannot be (not a dispatcher's request about an incident or elder, no other node
    /// holding the zone, or the broker not taking it).
    pub fn forward(self: &Arc<Self>, zone: Zone, command: anxin_proto::Command) -> Option<anxin_proto::Command> {
        let Some((dispatcher, supervisor, request)) =
            anxin_proto::cluster::Forwardable::of(&command.caller, &command.request)
        else {
            return Some(command);
        };
        let owner = self.owners.borrow().get(&zone).cloned();
        let Some(owner) = owner.filter(|o| *o != self.node) else { return Some(command) };
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let frame = anxin_proto::cluster::Forwarded { id, from: self.node.clone(), dispatcher, supervisor, request };
        let Ok(body) = serde_json::to_vec(&frame) else { return Some(command) };
        let anxin_proto::Command { caller, request, reply } = command;
        if let Some(reply) = reply {
            self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id, reply);
        }
        if self.client.try_publish(self.topics.node_commands(&owner), QoS::AtLeastOnce, false, body).is_err() {
            let reply = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
            return Some(anxin_proto::Command { caller, request, reply });
        }
        tracing::debug!(zone = zone.number(), owner, id, "a dispatcher's request forwarded");
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(FORWARD_WAIT).await;
            let left = this.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&id);
            if let Some(reply) = left {
                let _ = reply.send(Err(anxin_proto::Refused::new(
                    "no_answer_in_time",
                    "no answer in time: check the current state before trying again",
                )));
            }
        });
        None
    }

    /// An answer to a request this node forwarded.
    fn answered(&self, payload: &[u8]) {
        let answer: anxin_proto::cluster::ForwardedAnswer = match serde_json::from_slice(payload) {
            Ok(a) => a,
            Err(e) => {
                self.rejected.with_label_values(&["answer"]).inc();
                tracing::warn!(error = %e, "an answer from another node that is not one; passed over");
                return;
            }
        };
        let reply = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&answer.id);
        if let Some(reply) = reply {
            let _ = reply.send(answer.answer.into_answer());
        }
    }

    /// A request another node forwarded here: to the engine of its zone if it runs here (else
    /// refused as `zone_elsewhere`), the answer published back once it comes.
    fn asked(self: &Arc<Self>, payload: &[u8], engines: &crate::node::Engines) {
        let asked: anxin_proto::cluster::Forwarded = match serde_json::from_slice(payload) {
            Ok(a) => a,
            Err(e) => {
                self.rejected.with_label_values(&["request"]).inc();
                tracing::warn!(error = %e, "a request from another node that is not one; passed over");
                return;
            }
        };
        let anxin_proto::cluster::Forwarded { id, from, dispatcher, supervisor, request } = asked;
        let (caller, request) = request.into_command(dispatcher, supervisor);
        let zone = match &request {
            anxin_proto::Request::Dispatch { incident, .. }
            | anxin_proto::Request::Suggest { incident }
            | anxin_proto::Request::Timeline { incident } => Some(Zone::of(incident.0)),
            _ => None,
        };
        let engine = {
            let engines = engines.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            match zone {
                Some(zone) => engines.get(&zone).cloned(),
                // An elder's history: whichever engine of this node (every engine reads the store).
                None => engines.values().next().cloned(),
            }
        };
        let this = self.clone();
        tokio::spawn(async move {
            let answer = match engine {
                Some(engine) => {
                    let (reply, answer) = tokio::sync::oneshot::channel();
                    let command = anxin_proto::Command { caller, request, reply: Some(reply) };
                    match engine.send(command).await {
                        Ok(()) => tokio::time::timeout(FORWARD_WAIT, answer).await.ok().and_then(|a| a.ok()),
                        Err(_) => None,
                    }
                }
                None => None,
            };
            let answer = answer.unwrap_or_else(|| {
                let zone = zone.map_or_else(|| "?".to_string(), |z| z.number().to_string());
                Err(anxin_proto::Refused::new(
                    "zone_elsewhere",
                    format!("zone {zone} does not run on this node now; ask again"),
                )
                .with("zone", zone))
            });
            let frame =
                anxin_proto::cluster::ForwardedAnswer { id, answer: anxin_proto::cluster::ForwardedReply::of(answer) };
            if let Ok(body) = serde_json::to_vec(&frame) {
                let _ = this.client.publish(this.topics.node_answers(&from), QoS::AtLeastOnce, false, body).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_another_node_sends_that_is_no_frame_is_counted_and_passed_over() {
        let (client, _events) = AsyncClient::new(MqttOptions::new("t", "127.0.0.1", 1), 4);
        let rejected = prometheus::IntCounterVec::new(prometheus::Opts::new("r", "r"), &["kind"]).unwrap();
        let (_owners, watching) = tokio::sync::watch::channel(crate::spread::Owners::new());
        let forwarder = Arc::new(Forwarder {
            client,
            node: "a".into(),
            topics: anxin_mqtt::Topics::default(),
            next: std::sync::atomic::AtomicU64::new(1),
            pending: Mutex::default(),
            owners: watching,
            rejected: rejected.clone(),
        });
        let (waiting, answer) = tokio::sync::oneshot::channel();
        forwarder.pending.lock().unwrap().insert(7, waiting);
        forwarder.answered(b"{\"id\": 7, \"answer\": \"garbage\"}");
        forwarder.asked(b"not json", &crate::node::Engines::default());
        assert_eq!(rejected.with_label_values(&["answer"]).get(), 1);
        assert_eq!(rejected.with_label_values(&["request"]).get(), 1);
        // The request waiting on answer 7 is not answered by garbage; a good answer still is.
        let good = anxin_proto::cluster::ForwardedAnswer { id: 7, answer: anxin_proto::cluster::ForwardedReply::Done };
        forwarder.answered(&serde_json::to_vec(&good).unwrap());
        assert_eq!(answer.await.unwrap(), Ok(anxin_proto::Reply::Done));
    }
}
