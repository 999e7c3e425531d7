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
use anxin_store::{AppliedRequestStore, PostgresStore};
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
    /// This node's sign-in, kept up to date by the ledger's changes other nodes' engines
    /// commit (their frames name who changed; a zone read back reads them all).
    pub sessions: Arc<anxin_api::Sessions>,
    pub phones: Arc<anxin_api::ResponderHub>,
    /// When a frame last named a sign-in changed: a zone's read back catches sign-ins up only
    /// from a ledger read since.
    pub sign_ins_changed: Mutex<Option<std::time::Instant>>,
    /// The supervisors' wallboard: it counts every zone's devices offline, as their frames
    /// say.
    pub wallboard: Arc<anxin_api::Wallboard>,
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
    let forwarder = Arc::new(Forwarder::new(
        client.clone(),
        following.node.clone(),
        link.topics.clone(),
        owners,
        following.rejected.clone(),
        following.data.clone(),
    ));
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
                                if let Some(gap) = this.take(zone, frame, &mut zones) {
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
                        // A zone of this node's own engines is passed over unread (its frames
                        // are a third of what a node of three hears).
                        if this.is_mine(zone) {
                            continue;
                        }
                        // Read here, on the node's runtime: optimised (`ZoneViews::from_json`)
                        // a frame takes tens of microseconds, less than handing it to a
                        // blocking thread and back did (two thread wake-ups a frame, a tenth
                        // of a following node's CPU in the cluster test).
                        let frame = match ZoneViews::from_json(&payload) {
                            Ok(frame) => frame,
                            Err(e) => {
                                this.rejected.with_label_values(&["views"]).inc();
                                tracing::warn!(%topic, error = %e, "a zone's views that are not a frame; passed over");
                                continue;
                            }
                        };
                        match zones.get_mut(&zone) {
                            Some(State::Reading(waiting)) => waiting.push(frame),
                            Some(State::At(_)) => {
                                if let Some(gap) = this.take(zone, frame, &mut zones) {
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
    fn take(&self, zone: Zone, frame: ZoneViews, zones: &mut BTreeMap<Zone, State>) -> Option<ZoneViews> {
        let Some(State::At(at)) = zones.get_mut(&zone) else { return Some(frame) };
        if frame.prev > *at {
            return Some(frame);
        }
        // Shown already. A frame of no incidents (responders, sign-ins, orders) follows the last one
        // taken when it names it; one that names an earlier one is a repeat.
        let shown = if frame.views.is_empty() { frame.prev < *at } else { frame.last() <= *at };
        if shown {
            return None;
        }
        *at = frame.last();
        if let Some(offline) = frame.offline {
            self.wallboard.set_zone_devices_offline(frame.zone, offline as usize);
        }
        if !frame.sign_ins.is_empty() {
            *self.sign_ins_changed.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some(std::time::Instant::now());
            self.signs_in_anew(frame.sign_ins.clone());
        }
        // Written out for the consoles at once, as the node's own engines' views are: the
        // next frame is shown after this one.
        if !frame.views.is_empty() {
            self.hub.publish_written(frame.views);
        }
        if !frame.responders.is_empty() {
            self.hub.publish_responders(frame.responders);
        }
        if !frame.orders.is_empty() {
            self.hub.publish_orders(frame.orders);
        }
        for phone in frame.phones {
            self.phones.publish(&phone.owner.id.clone(), phone.owner, phone.job, phone.ended);
        }
        None
    }

    /// Members of staff and responders another node's engine changed in the ledger: read
    /// from the store, in order, and taken into this node's sign-in. One that cannot be read
    /// is caught up at the next read back of a zone.
    fn signs_in_anew(&self, changed: Vec<anxin_proto::cluster::SignInChanged>) {
        let (data, sessions, phones) = (self.data.clone(), self.sessions.clone(), self.phones.clone());
        tokio::spawn(async move {
            for c in changed {
                let item = match anxin_store::LedgerStore::ledger_item(&*data, c.kind, &c.id).await {
                    Ok(item) => item,
                    Err(e) => {
                        tracing::warn!(kind = ?c.kind, id = c.id, error = %e, "a changed sign-in cannot be read");
                        continue;
                    }
                };
                let live = item.as_ref().is_some_and(|i| i.retired_at.is_none());
                match (item.map(|i| i.entry), live) {
                    (Some(anxin_core::Entry::Staff(s)), true) => sessions.set_staff(s),
                    (Some(anxin_core::Entry::Responder(r)), true) => phones.set_token(&r.id, r.token_sha256.as_deref()),
                    (_, _) if c.kind == anxin_core::LedgerKind::Staff => sessions.remove_staff(&c.id),
                    _ => {
                        if let Ok(id) = anxin_core::ResponderId::parse(c.id.clone()) {
                            phones.set_token(&id, None);
                        }
                    }
                }
            }
        });
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
        let policy = crate::app::policy_of(&self.config);
        let started = std::time::Instant::now();
        let (engine, _) = crate::node::read_zone(&self.data, &self.ledger, asked, policy, zone, None).await?;
        let built = started.elapsed();
        let ledger = self.ledger.last().await;
        // The views made off the node's runtime threads, as the engine was built.
        let read = tokio::task::spawn_blocking(move || Read {
            seq: crate::node::last_seq(&engine, zone),
            open: engine.snapshot(),
            responders: engine.roster_view(),
            stations: engine.stations_view(),
            ledger,
        });
        let read = read.await?;
        tracing::info!(
            zone = zone.number(),
            open = read.open.len(),
            built_ms = built.as_millis() as u64,
            viewed_ms = (started.elapsed() - built).as_millis() as u64,
            "a zone read back for the consoles"
        );
        Ok(read)
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
        // Whoever signs in as the ledger read says, if it was read after the last change
        // another node's frame named: a change whose frame was missed is caught up here.
        let changed = *self.sign_ins_changed.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, ledger)) = read.ledger.filter(|(began, _)| changed.is_none_or(|c| *began > c)) {
            self.sessions.set_all_staff(ledger.staff.clone());
            for r in &ledger.responders {
                self.phones.set_token(&r.id, r.token_sha256.as_deref());
            }
        }
        Some(read.seq)
    }
}

/// A zone as read back from the store.
struct Read {
    seq: u64,
    open: Vec<anxin_core::IncidentView>,
    responders: Vec<anxin_core::ResponderView>,
    stations: Vec<anxin_core::StationView>,
    /// The ledger as last read, and when that read began.
    ledger: Option<(std::time::Instant, Arc<anxin_core::Registry>)>,
}

/// Forwards a person's request about another node's zone to that node (a dispatcher's, a
/// responder's phone's, a contact's, a gateway's receipt, a service order's:
/// `anxin_proto::cluster::Forwardable`),
/// and takes the answers (`anxin_proto::cluster::Forwarded`), over the follower's MQTT session.
///
/// A request goes under an id of its own (this node's name, a number for this run, a count).
/// Until it is answered it is sent again, under the same id, to whichever node holds the
/// zone's lease whenever that changes, and every [`RESEND_EVERY`] in any case; the node running
/// the zone acts on an id once: it joins a second asking to the first while that is under way,
/// and answers from the store (`applied_requests`, written in the commit that acted) once it is
/// done, there or on the node that ran the zone before.
pub struct Forwarder {
    client: AsyncClient,
    node: String,
    topics: anxin_mqtt::Topics,
    /// This run's mark in request ids: a restarted node counts from 1 again.
    run: String,
    next: std::sync::atomic::AtomicU64,
    /// Requests forwarded and not yet answered, by number.
    pending: Mutex<std::collections::HashMap<u64, tokio::sync::oneshot::Sender<anxin_proto::Answer>>>,
    owners: tokio::sync::watch::Receiver<crate::spread::Owners>,
    rejected: prometheus::IntCounterVec,
    /// Where requests acted on are looked up.
    data: Arc<dyn AppliedRequestStore>,
    /// Requests being acted on here, by id, and every (node, number) that asked for each.
    answering: Mutex<std::collections::HashMap<String, Vec<(String, u64)>>>,
    /// When requests acted on were last cleared out of the store.
    pruned: Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder").field("node", &self.node).field("run", &self.run).finish_non_exhaustive()
    }
}

/// How long a forwarded request is waited for (a console gives up on any request after 15 s).
const FORWARD_WAIT: Duration = Duration::from_secs(20);

/// How often a request not yet answered is sent again to the zone's owner.
pub const RESEND_EVERY: Duration = Duration::from_secs(2);

/// How long requests acted on are kept (nobody asks again after [`FORWARD_WAIT`]).
const APPLIED_KEPT: Duration = Duration::from_secs(24 * 60 * 60);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Forwarder {
    fn new(
        client: AsyncClient,
        node: String,
        topics: anxin_mqtt::Topics,
        owners: tokio::sync::watch::Receiver<crate::spread::Owners>,
        rejected: prometheus::IntCounterVec,
        data: Arc<dyn AppliedRequestStore>,
    ) -> Self {
        let mut bytes = [0u8; 6];
        getrandom::fill(&mut bytes).expect("the OS has randomness");
        Self {
            client,
            node,
            topics,
            run: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            next: std::sync::atomic::AtomicU64::new(1),
            pending: Mutex::default(),
            owners,
            rejected,
            data,
            answering: Mutex::default(),
            pruned: Mutex::default(),
        }
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Which node holds each zone's lease, as last read.
    pub fn owners(&self) -> crate::spread::Owners {
        self.owners.borrow().clone()
    }

    /// Forwards `command`, about `zone`, to the node whose lease it is; gives it back when it
    /// cannot be (not a request that may be forwarded, no other node holding the zone, or the
    /// broker not taking it).
    pub fn forward(self: &Arc<Self>, zone: Zone, command: anxin_proto::Command) -> Option<anxin_proto::Command> {
        let Some((caller, request)) = anxin_proto::cluster::Forwardable::of(&command.caller, &command.request) else {
            return Some(command);
        };
        let owner = self.owners.borrow().get(&zone).cloned();
        let Some(owner) = owner.filter(|o| *o != self.node) else { return Some(command) };
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let request_id = Some(format!("{}:{}:{id}", self.node, self.run));
        let frame = anxin_proto::cluster::Forwarded {
            id,
            from: self.node.clone(),
            zone: zone.number(),
            caller,
            request,
            request_id,
        };
        let Ok(body) = serde_json::to_vec(&frame) else { return Some(command) };
        let anxin_proto::Command { caller, request, reply, request_id } = command;
        let Some(reply) = reply else {
            // Nobody waits for an answer: sent once.
            let _ = self.client.try_publish(self.topics.node_commands(&owner), QoS::AtLeastOnce, false, body);
            return None;
        };
        lock(&self.pending).insert(id, reply);
        if self.client.try_publish(self.topics.node_commands(&owner), QoS::AtLeastOnce, false, body.clone()).is_err() {
            let reply = lock(&self.pending).remove(&id);
            return Some(anxin_proto::Command { caller, request, reply, request_id });
        }
        tracing::debug!(zone = zone.number(), owner, id, "a request forwarded");
        let this = self.clone();
        tokio::spawn(async move { this.until_answered(zone, id, body, owner).await });
        None
    }

    /// Sends a forwarded request again, under its id, while it is not answered: to the zone's
    /// new owner when the lease moves, and every [`RESEND_EVERY`]; gives up after
    /// [`FORWARD_WAIT`] or when whoever asked stops waiting.
    async fn until_answered(&self, zone: Zone, id: u64, body: Vec<u8>, mut sent_to: String) {
        let deadline = tokio::time::Instant::now() + FORWARD_WAIT;
        let mut sent_at = tokio::time::Instant::now();
        let mut owners = self.owners.clone();
        let mut watching = true;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = tokio::time::sleep_until(sent_at + RESEND_EVERY) => {}
                changed = owners.changed(), if watching => watching = changed.is_ok(),
            }
            match lock(&self.pending).get(&id) {
                None => return,
                Some(reply) if reply.is_closed() => break,
                Some(_) => {}
            }
            let owner = owners.borrow().get(&zone).cloned();
            // Between owners: asked again once the zone has one.
            let Some(owner) = owner else { continue };
            if owner != sent_to || sent_at.elapsed() >= RESEND_EVERY {
                tracing::debug!(zone = zone.number(), owner, id, "a forwarded request sent again");
                let _ =
                    self.client.publish(self.topics.node_commands(&owner), QoS::AtLeastOnce, false, body.clone()).await;
                (sent_to, sent_at) = (owner, tokio::time::Instant::now());
            }
        }
        if let Some(reply) = lock(&self.pending).remove(&id) {
            let _ = reply.send(Err(anxin_proto::Refused::new(
                "no_answer_in_time",
                "no answer in time: check the current state before trying again",
            )));
        }
    }

    /// An answer to a request this node forwarded. `zone_elsewhere` (the node asked no longer
    /// runs the zone) is not an answer: the request goes on to the zone's next owner.
    fn answered(&self, payload: &[u8]) {
        let answer: anxin_proto::cluster::ForwardedAnswer = match serde_json::from_slice(payload) {
            Ok(a) => a,
            Err(e) => {
                self.rejected.with_label_values(&["answer"]).inc();
                tracing::warn!(error = %e, "an answer from another node that is not one; passed over");
                return;
            }
        };
        if matches!(&answer.answer, anxin_proto::cluster::ForwardedReply::Refused { code, .. } if code == "zone_elsewhere")
        {
            return;
        }
        let reply = lock(&self.pending).remove(&answer.id);
        if let Some(reply) = reply {
            let _ = reply.send(answer.answer.into_answer());
        }
    }

    /// A request another node forwarded here: to the engine of its zone if it runs here (else
    /// refused as `zone_elsewhere`), the answer published back once it comes. A request under
    /// an id already acted on is answered as it was, and one under way here is joined.
    fn asked(self: &Arc<Self>, payload: &[u8], engines: &crate::node::Engines) {
        let asked: anxin_proto::cluster::Forwarded = match serde_json::from_slice(payload) {
            Ok(a) => a,
            Err(e) => {
                self.rejected.with_label_values(&["request"]).inc();
                tracing::warn!(error = %e, "a request from another node that is not one; passed over");
                return;
            }
        };
        let anxin_proto::cluster::Forwarded { id, from, zone, caller, request, request_id } = asked;
        // Only the requests each kind of caller may make, about the zone they name (where the
        // request's own number says its zone, as the router reads it, it must agree).
        let command = Zone::new(zone.into()).ok().and_then(|zone| {
            let (caller, request) = request.into_command(caller)?;
            match crate::node::route(&caller, &request, &crate::node::Directory::default()) {
                crate::node::Route::Zone(named) if named != zone => None,
                _ => Some((zone, (caller, request))),
            }
        });
        let Some((zone, (caller, request))) = command else {
            self.rejected.with_label_values(&["request"]).inc();
            tracing::warn!(from, id, zone, "a request from another node that may not be made; passed over");
            return;
        };
        let engine = engines.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&zone).cloned();
        let elsewhere = move || {
            Err(anxin_proto::Refused::new(
                "zone_elsewhere",
                format!("zone {} does not run on this node now; ask again", zone.number()),
            )
            .with("zone", zone.number()))
        };
        let this = self.clone();
        let Some(engine) = engine else {
            tokio::spawn(async move { this.answer(&[(from, id)], elsewhere()).await });
            return;
        };
        self.prune();
        tokio::spawn(async move {
            let Some(request_id) = request_id else {
                let answer = this.act(&engine, caller, request, None).await.unwrap_or_else(elsewhere);
                this.answer(&[(from, id)], answer).await;
                return;
            };
            {
                let mut answering = lock(&this.answering);
                if let Some(askers) = answering.get_mut(&request_id) {
                    askers.push((from, id));
                    return;
                }
                answering.insert(request_id.clone(), vec![(from, id)]);
            }
            let answer = match this.data.applied_request(&request_id).await {
                Ok(Some(stored)) => match serde_json::from_str::<anxin_proto::cluster::ForwardedReply>(&stored) {
                    Ok(reply) => Some(reply.into_answer()),
                    Err(e) => {
                        tracing::error!(error = %e, request_id, "a stored answer that cannot be read");
                        None
                    }
                },
                Ok(None) => {
                    Some(this.act(&engine, caller, request, Some(request_id.clone())).await.unwrap_or_else(elsewhere))
                }
                // Not known whether it was acted on: not answered (it is asked again).
                Err(e) => {
                    tracing::warn!(error = %e, request_id, "requests acted on cannot be read; not answered yet");
                    None
                }
            };
            let askers = lock(&this.answering).remove(&request_id).unwrap_or_default();
            if let Some(answer) = answer {
                this.answer(&askers, answer).await;
            }
        });
    }

    /// Asks this node's engine; `None` if it stopped before answering.
    async fn act(
        &self,
        engine: &mpsc::Sender<anxin_proto::Command>,
        caller: anxin_proto::Caller,
        request: anxin_proto::Request,
        request_id: Option<String>,
    ) -> Option<anxin_proto::Answer> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let command = anxin_proto::Command { caller, request, reply: Some(reply), request_id };
        engine.send(command).await.ok()?;
        tokio::time::timeout(FORWARD_WAIT, answer).await.ok().and_then(|a| a.ok())
    }

    /// Publishes `answer` to each (node, number) that asked.
    async fn answer(&self, askers: &[(String, u64)], answer: anxin_proto::Answer) {
        let reply = anxin_proto::cluster::ForwardedReply::of(answer);
        for (from, id) in askers {
            let frame = anxin_proto::cluster::ForwardedAnswer { id: *id, answer: reply.clone() };
            if let Ok(body) = serde_json::to_vec(&frame) {
                let _ = self.client.publish(self.topics.node_answers(from), QoS::AtLeastOnce, false, body).await;
            }
        }
    }

    /// Clears requests acted on more than a day ago out of the store, at most once an hour.
    fn prune(&self) {
        let mut pruned = lock(&self.pruned);
        if pruned.is_some_and(|at| at.elapsed() < Duration::from_secs(3600)) {
            return;
        }
        *pruned = Some(std::time::Instant::now());
        let data = self.data.clone();
        tokio::spawn(async move {
            let kept = i64::try_from(APPLIED_KEPT.as_millis()).unwrap_or(i64::MAX);
            let before = anxin_core::Timestamp(anxin_proto::wall_clock_now().millis().saturating_sub(kept));
            if let Err(e) = data.forget_applied_requests(before).await {
                tracing::warn!(error = %e, "old forwarded requests could not be cleared");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Node `node`'s forwarder on a store in `dir`, its link never connected (what it would
    /// publish waits in the client's queue), with its rejected-frames counter.
    struct Harness {
        forwarder: Arc<Forwarder>,
        rejected: prometheus::IntCounterVec,
        store: Arc<anxin_store::SqliteStore>,
        _link: anxin_mqtt::rumqttc::EventLoop,
        _owners: tokio::sync::watch::Sender<crate::spread::Owners>,
    }

    async fn harness(node: &str, dir: &std::path::Path) -> Harness {
        let (client, link) = AsyncClient::new(MqttOptions::new("t", "127.0.0.1", 1), 64);
        let rejected = prometheus::IntCounterVec::new(prometheus::Opts::new("r", "r"), &["kind"]).unwrap();
        let (owners, watching) = tokio::sync::watch::channel(crate::spread::Owners::new());
        let url = format!("sqlite://{}", dir.join("a.db").display());
        let store = Arc::new(anxin_store::SqliteStore::open(&url).await.unwrap());
        let forwarder = Forwarder::new(
            client,
            node.into(),
            anxin_mqtt::Topics::default(),
            watching,
            rejected.clone(),
            store.clone(),
        );
        Harness { forwarder: Arc::new(forwarder), rejected, store, _link: link, _owners: owners }
    }

    /// The node running `zone` only, its engine's queue read by the test.
    fn one_engine(zone: Zone) -> (crate::node::Engines, mpsc::Receiver<anxin_proto::Command>) {
        let (engine, reached) = mpsc::channel::<anxin_proto::Command>(8);
        let engines = crate::node::Engines::default();
        engines.write().unwrap().insert(zone, engine);
        (engines, reached)
    }

    #[tokio::test]
    async fn what_another_node_sends_that_is_no_frame_is_counted_and_passed_over() {
        let dir = tempfile::tempdir().unwrap();
        let h = harness("a", dir.path()).await;
        let (forwarder, rejected) = (&h.forwarder, &h.rejected);
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

    /// The node running a zone acts on a forwarded request's id once: asked twice while it is
    /// under way, its engine is asked once; asked again once it is stored (here, or by the
    /// node that ran the zone before), it is answered from the store.
    #[tokio::test]
    async fn a_request_asked_again_under_its_id_reaches_the_engine_once() {
        let dir = tempfile::tempdir().unwrap();
        let h = harness("b", dir.path()).await;
        let (forwarder, store) = (&h.forwarder, &h.store);
        // Zone 0's engine, as this node runs it: what reaches it is counted.
        let (engines, mut reached) = one_engine(Zone::FIRST);
        let note = |n: u64| anxin_proto::cluster::Forwarded {
            id: n,
            from: "a".into(),
            zone: 0,
            caller: anxin_proto::cluster::ForwardedCaller::Dispatcher { id: "wang".into(), supervisor: false },
            request: anxin_proto::cluster::Forwardable::Dispatch {
                incident: anxin_core::IncidentId(1),
                action: anxin_core::DispatcherAction::Note { text: "家属已到".into() },
            },
            request_id: Some("a:run:1".into()),
        };
        forwarder.asked(&serde_json::to_vec(&note(1)).unwrap(), &engines);
        forwarder.asked(&serde_json::to_vec(&note(2)).unwrap(), &engines);
        let first = tokio::time::timeout(Duration::from_secs(5), reached.recv()).await.unwrap().unwrap();
        assert_eq!(first.request_id.as_deref(), Some("a:run:1"));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(reached.try_recv().is_err(), "asked again while under way: joined, not acted on twice");

        // The engine stores it with its id, in the commit that acted, then answers.
        let mut out = anxin_core::Outbox::default();
        let answer = serde_json::to_string(&anxin_proto::cluster::ForwardedReply::Done).unwrap();
        out.requests.push(anxin_core::AppliedRequest { id: "a:run:1".into(), answer, at: anxin_core::Timestamp(1) });
        anxin_store::Store::commit(&**store, anxin_store::Batch::of(&out)).await.unwrap();
        first.reply.unwrap().send(Ok(anxin_proto::Reply::Done)).unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(lock(&forwarder.answering).is_empty(), "both askers answered");

        // Asked a third time (the asking node heard nothing, or the zone moved here since).
        forwarder.asked(&serde_json::to_vec(&note(3)).unwrap(), &engines);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(reached.try_recv().is_err(), "answered from the store, not acted on again");
        assert!(lock(&forwarder.answering).is_empty());
    }

    /// A responder's answer from a phone on another node reaches the engine of the zone as
    /// the responder's; a frame pairing a caller with what they may not ask, or naming a zone
    /// its incident is not in, is counted and passed over.
    #[tokio::test]
    async fn a_responders_answer_is_acted_on_as_theirs_and_a_forged_pairing_is_refused() {
        use anxin_proto::cluster::{Forwardable, Forwarded, ForwardedCaller};
        let dir = tempfile::tempdir().unwrap();
        let h = harness("b", dir.path()).await;
        let (forwarder, rejected) = (&h.forwarder, &h.rejected);
        let zone = Zone::new(3).unwrap();
        let (engines, mut reached) = one_engine(zone);
        let incident = anxin_core::IncidentId(zone.base() + 5);
        let responder = anxin_core::ResponderId::parse("r-7").unwrap();
        let frame = |caller: ForwardedCaller, request: Forwardable, zone: u16| Forwarded {
            id: 1,
            from: "a".into(),
            zone,
            caller,
            request,
            request_id: Some("a:run:9".into()),
        };
        let accept = Forwardable::Respond { incident, action: anxin_core::ResponderAction::Accept };
        let as_responder = ForwardedCaller::Responder { id: responder.clone() };
        forwarder.asked(&serde_json::to_vec(&frame(as_responder.clone(), accept.clone(), 3)).unwrap(), &engines);
        let got = tokio::time::timeout(Duration::from_secs(5), reached.recv()).await.unwrap().unwrap();
        assert_eq!(got.caller, anxin_proto::Caller::Responder(responder));
        assert_eq!(
            got.request,
            anxin_proto::Request::Respond { incident, action: anxin_core::ResponderAction::Accept }
        );
        assert_eq!(got.request_id.as_deref(), Some("a:run:9"));

        // A responder may not act as a dispatcher; an incident is not in zone 2.
        let dispatch = Forwardable::Dispatch { incident, action: anxin_core::DispatcherAction::Claim };
        forwarder.asked(&serde_json::to_vec(&frame(as_responder.clone(), dispatch, 3)).unwrap(), &engines);
        forwarder.asked(&serde_json::to_vec(&frame(as_responder, accept, 2)).unwrap(), &engines);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(reached.try_recv().is_err(), "neither reached the engine");
        assert_eq!(rejected.with_label_values(&["request"]).get(), 2);
    }

    /// On the asking side: a responder's answer about a zone another node holds is taken to
    /// be forwarded there; an administrator's request is not (it is given back, to be refused
    /// as `zone_elsewhere`).
    #[tokio::test]
    async fn a_responders_answer_about_another_nodes_zone_is_forwarded_an_admins_request_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let h = harness("a", dir.path()).await;
        let zone = Zone::new(3).unwrap();
        h._owners.send_replace([(zone, "b".to_string())].into_iter().collect());
        let incident = anxin_core::IncidentId(zone.base() + 5);
        let responder = anxin_core::ResponderId::parse("r-7").unwrap();
        let (reply, _answer) = tokio::sync::oneshot::channel();
        let accept = anxin_proto::Command::new(
            anxin_proto::Caller::Responder(responder),
            anxin_proto::Request::Respond { incident, action: anxin_core::ResponderAction::Accept },
            Some(reply),
        );
        assert!(h.forwarder.forward(zone, accept).is_none(), "taken, to be sent to b");
        assert_eq!(lock(&h.forwarder.pending).len(), 1, "waiting for b's answer");
        let admin = anxin_proto::Command::new(
            anxin_proto::Caller::Admin { id: "root".into() },
            anxin_proto::Request::Timeline { incident },
            None,
        );
        assert!(h.forwarder.forward(zone, admin).is_some(), "given back");
    }
}
