//! The engine's MQTT connection: a persistent session that hands incoming device messages
//! to the engine and acknowledges each one only when told to (after it is stored).
//!
//! The connection's loop is our own, on rumqttc's MQTT 3.1.1 packet codec. It writes every
//! acknowledgement and command that is waiting with one system call; rumqttc's event loop
//! writes and flushes each packet on its own, and a press is up to three packets out (its
//! acknowledgement, `help_coming`, a station alert). It keeps the session's state across
//! connections: commands the broker has not acknowledged are sent again, marked DUP, once
//! the connection is back, and acknowledgements meant for a connection that has since
//! dropped are not sent on the next one, where their packet ids may name other messages.

use crate::topic::Topics;
use anxin_core::{DeviceCommand, DeviceId, StationAlert};
use anxin_proto::payload::StationMessage;
use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4::{
    ConnAck, Connect, ConnectReturnCode, Login, Packet, PubAck, Publish, SubAck, Subscribe, SubscribeReasonCode,
};
use rumqttc::mqttbytes::{self, QoS};
use std::borrow::Cow;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc::error::{TryRecvError, TrySendError};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The largest packet MQTT 3.1.1 can express (its remaining length is at most 268,435,455).
pub const MQTT_MAX_PACKET_BYTES: usize = 268_435_455 + 5;

/// Commands to devices sent and not yet acknowledged by the broker, at most; more wait here.
const INFLIGHT: usize = 1000;
/// Requests taken off the engine's queue for one write, at most.
const WRITE_BATCH: usize = 4096;
/// How much is read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// How long connecting, the broker's CONNACK and any one write may take.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// How the engine connects to the broker.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    pub host: String,
    pub port: u16,
    /// Fixed, so the broker keeps the session (and the unacknowledged messages) for it.
    pub client_id: String,
    pub keep_alive: Duration,
    /// Largest packet the engine sends (commands are small).
    pub max_outgoing_bytes: usize,
    /// Ask the kernel to acknowledge every read at once (`anxin_mqtt::ack_at_once`): for a broker
    /// that leaves Nagle's algorithm on. With one that does not, it gains nothing.
    pub quick_ack: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    pub topics: Topics,
    /// Subscribe as a member of this shared subscription (`$share/GROUP/...`, Mosquitto 2 and
    /// EMQX): the broker gives each message to one member. `None`: every message.
    pub share_group: Option<String>,
    /// Whether to subscribe to the devices' events at all. A link that only publishes
    /// (an engine fed by the inbox, whose ingest sessions subscribe) does not.
    pub subscribe: bool,
}

/// An incoming device message, to be acknowledged once handled.
#[derive(Debug)]
pub struct Inbound {
    pub publish: Publish,
    /// When the engine read it off the connection.
    pub received: Instant,
    /// Which of the link's connections it came on (they are counted from 1).
    pub connection: u64,
}

/// Why talking to the broker failed.
#[derive(Debug, Error)]
pub enum LinkError {
    #[error("the MQTT link has stopped")]
    Stopped,
    #[error("could not encode a command: {0}")]
    Encode(#[from] serde_json::Error),
    /// Not sent: larger than `LinkOptions::max_outgoing_bytes` (anxind: 64 KiB).
    #[error("a command to {topic} is {bytes} bytes, over the {limit}-byte limit; not sent")]
    TooLarge { topic: String, bytes: usize, limit: usize },
}

impl LinkError {
    /// Every label [`LinkError::as_label`] gives.
    pub const LABELS: [&'static str; 3] = ["stopped", "encode", "oversized"];

    /// The error's kind, for a metric's label.
    pub fn as_label(&self) -> &'static str {
        match self {
            LinkError::Stopped => "stopped",
            LinkError::Encode(_) => "encode",
            LinkError::TooLarge { .. } => "oversized",
        }
    }
}

/// What the engine asks of its connection, in the order it asks.
#[derive(Debug)]
enum Request {
    Ack { qos: QoS, pkid: u16, connection: u64 },
    Publish(Publish),
    Disconnect,
}

/// The sending half: acknowledgements and commands to devices.
///
/// Nothing here waits for the connection. The connection's task hands device messages to the
/// engine and stops reading when the engine's queue is full, and only that task moves the
/// engine's requests onto the wire: an engine that waited here for room could wait on itself.
/// Requests wait in an unbounded queue instead, which the task drains in order, also while it
/// waits for room in the engine's queue. It stays short: it grows only with messages the
/// broker has delivered and not yet had acknowledged, and the broker stops delivering when its
/// in-flight window is full.
#[derive(Debug, Clone)]
pub struct DeviceLink {
    requests: mpsc::UnboundedSender<Request>,
    waiting: Arc<AtomicUsize>,
    topics: Topics,
    /// Commands larger than this are refused by `send` and `alert_station`.
    max_outgoing_bytes: usize,
    connected: Arc<AtomicBool>,
    /// Connections that failed or dropped (refused, unreachable, closed, silent, garbled).
    lost: Arc<AtomicU64>,
    /// Set when the connection's task has sent DISCONNECT, or stopped.
    closed: watch::Receiver<bool>,
}

impl DeviceLink {
    /// Acknowledges a message to the broker, which may then forget it. If the connection it
    /// came on has dropped meanwhile, nothing is sent: the broker delivers it again.
    pub fn ack(&self, msg: Inbound) -> Result<(), LinkError> {
        let Inbound { publish, connection, .. } = msg;
        self.request(Request::Ack { qos: publish.qos, pkid: publish.pkid, connection })
    }

    /// Sends a command to a device's command topic, QoS 1.
    pub fn send(&self, device: &DeviceId, command: &DeviceCommand) -> Result<(), LinkError> {
        let body = serde_json::to_vec(command)?;
        self.publish(self.topics.commands(device), body)
    }

    /// Sends a station's duty line the incident its responders did not take, QoS 1, on the
    /// station's alerts topic (a duty phone, a pager or an SMS gateway subscribes to it).
    pub fn alert_station(&self, alert: &StationAlert) -> Result<(), LinkError> {
        let body = serde_json::to_vec(&StationMessage::StationAlert(Cow::Borrowed(alert)))?;
        self.publish(self.topics.station_alerts(&alert.station_id), body)
    }

    /// Publishes what a zone's engine has just committed, for the other nodes' consoles, QoS 1,
    /// on the zone's views topic; in several frames, each naming the last sequence number
    /// before it, when one would be larger than the link sends. Refused only for a single view
    /// larger than that.
    pub fn publish_zone_views(&self, frame: &anxin_proto::cluster::ZoneViews) -> Result<(), LinkError> {
        let body = serde_json::to_vec(frame)?;
        if body.len() + 64 <= self.max_outgoing_bytes || frame.views.len() < 2 {
            return self.publish(self.topics.zone_views(frame.zone), body);
        }
        let (first, second) = frame.views.split_at(frame.views.len() / 2);
        let first = anxin_proto::cluster::ZoneViews {
            zone: frame.zone,
            prev: frame.prev,
            views: first.to_vec(),
            responders: frame.responders.clone(),
            sign_ins: frame.sign_ins.clone(),
            orders: frame.orders.clone(),
            phones: Vec::new(),
            offline: frame.offline,
        };
        // Phones after the views of the incidents they show.
        let second = anxin_proto::cluster::ZoneViews {
            zone: frame.zone,
            prev: first.last(),
            views: second.to_vec(),
            phones: frame.phones.clone(),
            offline: frame.offline,
            ..Default::default()
        };
        self.publish_zone_views(&first)?;
        self.publish_zone_views(&second)
    }

    /// A command, QoS 1, refused here if the broker would not take it (so the caller hears).
    fn publish(&self, topic: String, body: Vec<u8>) -> Result<(), LinkError> {
        let publish = Publish::from_bytes(topic, QoS::AtLeastOnce, Bytes::from(body));
        if publish.size() > self.max_outgoing_bytes {
            let (bytes, limit) = (publish.size(), self.max_outgoing_bytes);
            return Err(LinkError::TooLarge { topic: publish.topic, bytes, limit });
        }
        self.request(Request::Publish(publish))
    }

    fn request(&self, request: Request) -> Result<(), LinkError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.requests.send(request).map_err(|_| {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            LinkError::Stopped
        })
    }

    /// Acknowledgements and commands asked for and not yet written to the connection:
    /// commands wait too while 1,000 sent ones are not yet acknowledged by the broker.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Attempts to connect that failed and connections that dropped, since the start.
    pub fn connections_lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Whether the session with the broker is up right now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Sends what was asked for so far, then DISCONNECT, and returns once that is written (at
    /// once if the broker is unreachable: what was not acknowledged is redelivered later).
    pub async fn disconnect(&self) {
        if self.request(Request::Disconnect).is_err() {
            return;
        }
        let mut closed = self.closed.clone();
        while !*closed.borrow_and_update() && self.is_connected() {
            tokio::select! {
                changed = closed.changed() => if changed.is_err() { break },
                // The connection may drop meanwhile; look again.
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }
}

/// Connects and starts the connection's task. Device messages go to `inbound`; when it is
/// full the task stops reading from the broker (the broker holds the rest) and goes on
/// writing the engine's acknowledgements and commands.
pub fn connect(
    opts: LinkOptions,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) -> (DeviceLink, JoinHandle<()>) {
    let connected = Arc::new(AtomicBool::new(false));
    let (requests, pending) = mpsc::unbounded_channel();
    let (closed_tx, closed) = watch::channel(false);
    let waiting = Arc::new(AtomicUsize::new(0));
    let lost = Arc::new(AtomicU64::new(0));
    let link = DeviceLink {
        requests,
        waiting: waiting.clone(),
        topics: opts.topics.clone(),
        max_outgoing_bytes: opts.max_outgoing_bytes,
        connected: connected.clone(),
        lost: lost.clone(),
        closed,
    };
    let mut session = Session::new(opts, pending, waiting, inbound);
    let task = tokio::spawn(async move {
        session.run(&connected, &lost, &shutdown).await;
        connected.store(false, Ordering::Relaxed);
        let _ = closed_tx.send(true);
    });
    (link, task)
}

/// Why a connection ended.
#[derive(Debug, Error)]
enum Lost {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("no answer from the broker within {0:?}")]
    Timeout(Duration),
    #[error("the broker closed the connection")]
    Closed,
    #[error("the broker refused the connection: {0:?}")]
    Refused(ConnectReturnCode),
    #[error("the broker sent something that is not MQTT 3.1.1: {0}")]
    Protocol(mqttbytes::Error),
    #[error("the broker answered CONNECT with {0}")]
    NotConnAck(String),
}

/// A connection ended as the engine asked: DISCONNECT written.
struct Disconnected;

/// Commands to devices, from the engine's request to the broker's PUBACK. They outlive a
/// connection: the session's promise is at least once.
struct Commands {
    /// Sent and not yet acknowledged by the broker, in the order sent.
    inflight: VecDeque<Publish>,
    /// Waiting for room in the window.
    queued: VecDeque<Publish>,
    /// Packet ids in use (commands in flight, the subscription awaiting its SUBACK).
    used: Vec<bool>,
    last: u16,
    /// The link's count of requests not yet written: a queued command is one of them.
    waiting: Arc<AtomicUsize>,
}

impl Commands {
    fn new(waiting: Arc<AtomicUsize>) -> Self {
        Commands { inflight: VecDeque::new(), queued: VecDeque::new(), used: vec![false; 1 << 16], last: 0, waiting }
    }

    /// A packet id not in use (0 is not a packet id). There are always some: at most
    /// `INFLIGHT` commands and one subscription hold one.
    fn take_id(&mut self) -> u16 {
        loop {
            self.last = self.last.wrapping_add(1);
            if self.last != 0 && !self.used[usize::from(self.last)] {
                self.used[usize::from(self.last)] = true;
                return self.last;
            }
        }
    }

    fn release(&mut self, pkid: u16) {
        self.used[usize::from(pkid)] = false;
    }

    /// Sends a command now if the window has room, else queues it (still waiting).
    fn send(&mut self, mut publish: Publish, out: &mut BytesMut) {
        if self.inflight.len() >= INFLIGHT {
            self.queued.push_back(publish);
            return;
        }
        publish.pkid = self.take_id();
        write_publish(&publish, out);
        self.inflight.push_back(publish);
        self.waiting.fetch_sub(1, Ordering::Relaxed);
    }

    /// The broker has a command: forget it, and send the next one waiting.
    fn acked(&mut self, pkid: u16, out: &mut BytesMut) {
        // Acknowledgements come in the order sent, so this is nearly always the first.
        let Some(at) = self.inflight.iter().position(|p| p.pkid == pkid) else {
            tracing::debug!(pkid, "PUBACK for no command in flight");
            return;
        };
        self.inflight.remove(at);
        self.release(pkid);
        if let Some(next) = self.queued.pop_front() {
            self.send(next, out);
        }
    }

    /// After reconnecting: everything in flight again, marked as sent before, then what waits.
    fn resend(&mut self, out: &mut BytesMut) {
        for publish in &mut self.inflight {
            publish.dup = true;
            write_publish(publish, out);
        }
        while self.inflight.len() < INFLIGHT {
            let Some(next) = self.queued.pop_front() else { break };
            self.send(next, out);
        }
    }
}

fn write_packet(packet: &Packet, out: &mut BytesMut) {
    // Only a packet over the limit fails to encode, and sizes are checked before.
    if let Err(e) = packet.write(out, MQTT_MAX_PACKET_BYTES) {
        tracing::error!(error = %e, "could not encode an MQTT packet");
    }
}

/// A command, written where it is kept (no copy into a `Packet`).
fn write_publish(publish: &Publish, out: &mut BytesMut) {
    if let Err(e) = publish.write(out) {
        tracing::error!(error = %e, topic = %publish.topic, "could not encode a command");
    }
}

/// The connection's task: one session with the broker over as many connections as it takes.
struct Session {
    opts: LinkOptions,
    requests: mpsc::UnboundedReceiver<Request>,
    requests_open: bool,
    waiting: Arc<AtomicUsize>,
    inbound: mpsc::Sender<Inbound>,
    commands: Commands,
    /// The connection now (or the last one), counted from 1.
    connection: u64,
    /// The subscription's packet id until its SUBACK.
    subscribing: Option<u16>,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// A message read that the engine's queue had no room for: nothing more is read until
    /// it is handed over.
    held: Option<Inbound>,
}

impl Session {
    fn new(
        opts: LinkOptions,
        requests: mpsc::UnboundedReceiver<Request>,
        waiting: Arc<AtomicUsize>,
        inbound: mpsc::Sender<Inbound>,
    ) -> Self {
        Session {
            opts,
            requests,
            requests_open: true,
            commands: Commands::new(Arc::clone(&waiting)),
            waiting,
            inbound,
            connection: 0,
            subscribing: None,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::with_capacity(READ_CHUNK),
            held: None,
        }
    }

    async fn run(&mut self, connected: &AtomicBool, lost: &AtomicU64, shutdown: &CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let ended = tokio::select! {
                _ = shutdown.cancelled() => return,
                ended = self.connection(connected, &mut backoff) => ended,
            };
            connected.store(false, Ordering::Relaxed);
            if ended.is_err() {
                lost.fetch_add(1, Ordering::Relaxed);
            }
            match ended {
                Ok(Disconnected) => {
                    tracing::info!("disconnected from the MQTT broker");
                    return;
                }
                Err(Lost::Refused(code)) => {
                    tracing::error!(
                        ?code,
                        "the MQTT broker refused the engine's connection; presses wait at the broker"
                    )
                }
                Err(e) => {
                    tracing::warn!(error = %e, "MQTT connection lost; presses wait at the broker until it is back")
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// One connection, from CONNECT to its end.
    async fn connection(&mut self, connected: &AtomicBool, backoff: &mut Duration) -> Result<Disconnected, Lost> {
        let addr = (self.opts.host.as_str(), self.opts.port);
        let stream = within(IO_TIMEOUT, TcpStream::connect(addr)).await??;
        // Acknowledgements and commands are small and each one is waited for: send them at
        // once rather than let Nagle's algorithm hold them back for more data.
        stream.set_nodelay(true)?;
        let (mut rd, mut wr) = stream.into_split();
        self.connection += 1;
        self.rbuf.clear();
        self.wbuf.clear();
        if let Some(pkid) = self.subscribing.take() {
            // That SUBACK will not come: the next connection subscribes anew.
            self.commands.release(pkid);
        }

        let mut connect = Connect::new(self.opts.client_id.clone());
        connect.keep_alive = u16::try_from(self.opts.keep_alive.as_secs()).unwrap_or(u16::MAX);
        connect.clean_session = false;
        if let (Some(u), Some(p)) = (&self.opts.username, &self.opts.password) {
            connect.login = Some(Login::new(u.clone(), p.clone()));
        }
        write_packet(&Packet::Connect(connect), &mut self.wbuf);
        self.flush(&mut wr).await?;
        let ack = within(IO_TIMEOUT, self.read_packet(&mut rd)).await??;
        let ConnAck { session_present, code } = match ack {
            Packet::ConnAck(ack) => ack,
            other => return Err(Lost::NotConnAck(format!("{other:?}"))),
        };
        if code != ConnectReturnCode::Success {
            return Err(Lost::Refused(code));
        }
        tracing::info!(session_present, "connected to MQTT broker");
        connected.store(true, Ordering::Relaxed);
        *backoff = Duration::from_millis(100);

        // Subscribing again is harmless when the session was kept, and needed when not.
        if self.opts.subscribe {
            let pkid = self.commands.take_id();
            self.subscribing = Some(pkid);
            let filter = match &self.opts.share_group {
                Some(group) => format!("$share/{group}/{}", self.opts.topics.events_filter()),
                None => self.opts.topics.events_filter(),
            };
            let mut subscribe = Subscribe::new(filter, QoS::AtLeastOnce);
            subscribe.pkid = pkid;
            write_packet(&Packet::Subscribe(subscribe), &mut self.wbuf);
        }
        self.commands.resend(&mut self.wbuf);
        self.flush(&mut wr).await?;
        // Bytes that came with the CONNACK.
        self.take_packets()?;
        self.serve(&mut rd, &mut wr).await
    }

    async fn serve(&mut self, rd: &mut OwnedReadHalf, wr: &mut OwnedWriteHalf) -> Result<Disconnected, Lost> {
        let keep_alive = self.opts.keep_alive;
        let mut ping = tokio::time::interval_at(
            tokio::time::Instant::now() + keep_alive.max(Duration::from_secs(1)),
            keep_alive.max(Duration::from_secs(1)),
        );
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_read = Instant::now();
        // For waiting on room in the engine's queue while `self` is borrowed otherwise.
        let inbound = self.inbound.clone();
        loop {
            self.rbuf.reserve(READ_CHUNK);
            tokio::select! {
                read = rd.read_buf(&mut self.rbuf), if self.held.is_none() => {
                    if read? == 0 {
                        return Err(Lost::Closed);
                    }
                    last_read = Instant::now();
                    if self.opts.quick_ack {
                        crate::ack_at_once(rd.as_ref());
                    }
                    self.take_packets()?;
                }
                permit = inbound.reserve(), if self.held.is_some() => {
                    if let (Ok(permit), Some(msg)) = (permit, self.held.take()) {
                        permit.send(msg);
                    }
                    // The engine took it (or has stopped): read on, from what is here.
                    last_read = Instant::now();
                    self.take_packets()?;
                }
                request = self.requests.recv(), if self.requests_open => match request {
                    Some(request) => {
                        if self.take_requests(request) {
                            self.flush(wr).await?;
                            return Ok(Disconnected);
                        }
                    }
                    None => self.requests_open = false,
                },
                _ = ping.tick(), if !keep_alive.is_zero() => {
                    // Nothing at all from the broker since the last PINGREQ, a keep-alive ago:
                    // the connection is dead, even if the kernel has not noticed. (While a
                    // message is held nothing is read, and silence proves nothing.)
                    if self.held.is_none() && last_read.elapsed() > keep_alive * 2 {
                        return Err(Lost::Timeout(keep_alive * 2));
                    }
                    write_packet(&Packet::PingReq, &mut self.wbuf);
                }
            }
            self.flush(wr).await?;
        }
    }

    /// Takes `first` and whatever else is waiting (up to `WRITE_BATCH`) into the write buffer,
    /// for one write; true when that ends with DISCONNECT.
    fn take_requests(&mut self, first: Request) -> bool {
        let mut request = first;
        for _ in 1..WRITE_BATCH {
            if self.handle(request) {
                return true;
            }
            request = match self.requests.try_recv() {
                Ok(next) => next,
                Err(TryRecvError::Empty) => return false,
                Err(TryRecvError::Disconnected) => {
                    self.requests_open = false;
                    return false;
                }
            };
        }
        // The last of the batch: the rest wait for the next write.
        self.handle(request)
    }

    /// Takes one request into the write buffer; true for DISCONNECT, written last.
    fn handle(&mut self, request: Request) -> bool {
        if !matches!(request, Request::Publish(_)) {
            // A command stays waiting until it is written (`Commands::send`).
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        match request {
            Request::Ack { qos, pkid, connection } => {
                if qos != QoS::AtMostOnce && connection == self.connection {
                    write_packet(&Packet::PubAck(PubAck::new(pkid)), &mut self.wbuf);
                }
            }
            Request::Publish(publish) => self.commands.send(publish, &mut self.wbuf),
            Request::Disconnect => {
                write_packet(&Packet::Disconnect, &mut self.wbuf);
                return true;
            }
        }
        false
    }

    /// Handles the whole packets read so far, until one cannot be handed to the engine.
    fn take_packets(&mut self) -> Result<(), Lost> {
        while self.held.is_none() {
            let packet = match Packet::read(&mut self.rbuf, MQTT_MAX_PACKET_BYTES) {
                Ok(packet) => packet,
                Err(mqttbytes::Error::InsufficientBytes(more)) => {
                    self.rbuf.reserve(more);
                    return Ok(());
                }
                Err(e) => return Err(Lost::Protocol(e)),
            };
            match packet {
                Packet::Publish(publish) => {
                    let msg = Inbound { publish, received: Instant::now(), connection: self.connection };
                    match self.inbound.try_send(msg) {
                        Ok(()) => {}
                        Err(TrySendError::Full(msg)) => self.held = Some(msg),
                        // The engine has stopped: what arrives now is left unacknowledged (the
                        // broker redelivers it); the task goes on to write the engine's last
                        // acknowledgements and its DISCONNECT.
                        Err(TrySendError::Closed(_)) => {}
                    }
                }
                Packet::PubAck(ack) => self.commands.acked(ack.pkid, &mut self.wbuf),
                Packet::SubAck(SubAck { pkid, return_codes }) => {
                    if self.subscribing == Some(pkid) {
                        self.subscribing = None;
                        self.commands.release(pkid);
                    }
                    if return_codes.contains(&SubscribeReasonCode::Failure) {
                        tracing::error!(
                            filter = %self.opts.topics.events_filter(),
                            "the MQTT broker refused the subscription to device events: check its access list"
                        );
                    }
                }
                Packet::PingResp => {}
                other => tracing::debug!(packet = ?other, "unexpected MQTT packet ignored"),
            }
        }
        if self.rbuf.is_empty() && self.rbuf.capacity() > 1 << 20 {
            // After one very large message: give the memory back.
            self.rbuf = BytesMut::with_capacity(READ_CHUNK);
        }
        Ok(())
    }

    /// Reads one whole packet (the CONNACK).
    async fn read_packet(&mut self, rd: &mut OwnedReadHalf) -> Result<Packet, Lost> {
        loop {
            match Packet::read(&mut self.rbuf, MQTT_MAX_PACKET_BYTES) {
                Ok(packet) => return Ok(packet),
                Err(mqttbytes::Error::InsufficientBytes(more)) => self.rbuf.reserve(more.max(READ_CHUNK)),
                Err(e) => return Err(Lost::Protocol(e)),
            }
            if rd.read_buf(&mut self.rbuf).await? == 0 {
                return Err(Lost::Closed);
            }
        }
    }

    /// Writes what is in the write buffer: everything asked for since the last write.
    async fn flush(&mut self, wr: &mut OwnedWriteHalf) -> Result<(), Lost> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        within(IO_TIMEOUT, wr.write_all(&self.wbuf)).await??;
        self.wbuf.clear();
        Ok(())
    }
}

async fn within<T>(limit: Duration, f: impl std::future::Future<Output = T>) -> Result<T, Lost> {
    tokio::time::timeout(limit, f).await.map_err(|_| Lost::Timeout(limit))
}

impl anxin_proto::Delivery for Inbound {
    fn topic(&self) -> &str {
        &self.publish.topic
    }

    fn payload(&self) -> &[u8] {
        &self.publish.payload
    }

    fn received(&self) -> Instant {
        self.received
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_skip_zero_and_those_in_use_across_the_wrap() {
        let mut commands = Commands::new(Arc::new(AtomicUsize::new(0)));
        commands.last = u16::MAX - 2;
        let held = commands.take_id();
        assert_eq!(held, u16::MAX - 1);
        // Everything else once round: ids in use are skipped, and 0 is never one.
        let mut seen = vec![held];
        for _ in 0..u16::MAX - 2 {
            let id = commands.take_id();
            assert_ne!(id, 0);
            seen.push(id);
        }
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), usize::from(u16::MAX - 1), "no id was given twice");
        // One id is left (65,533); release 7 and both are given, in turn, and then 7 again.
        commands.release(7);
        assert_eq!(commands.take_id(), u16::MAX - 2);
        assert_eq!(commands.take_id(), 7, "a released id is given again");
        commands.release(7);
        assert_eq!(commands.take_id(), 7, "the only free id");
    }

    #[test]
    fn commands_past_the_window_wait_and_go_as_acknowledgements_come() {
        let waiting = Arc::new(AtomicUsize::new(INFLIGHT + 2));
        let mut commands = Commands::new(waiting.clone());
        let mut out = BytesMut::new();
        for n in 0..INFLIGHT + 2 {
            commands.send(Publish::new(format!("t/{n}"), QoS::AtLeastOnce, "x"), &mut out);
        }
        assert_eq!((commands.inflight.len(), commands.queued.len()), (INFLIGHT, 2));
        assert_eq!(waiting.load(Ordering::Relaxed), 2, "the two queued are still waiting");
        let first = commands.inflight[0].pkid;
        out.clear();
        commands.acked(first, &mut out);
        assert_eq!((commands.inflight.len(), commands.queued.len()), (INFLIGHT, 1));
        let Ok(Packet::Publish(sent)) = Packet::read(&mut out, MQTT_MAX_PACKET_BYTES) else { panic!("a PUBLISH") };
        assert_eq!(sent.topic, format!("t/{INFLIGHT}"), "the first one queued goes next");
        assert_eq!(waiting.load(Ordering::Relaxed), 1);
        // After a reconnect everything in flight goes again, marked DUP, in the order sent.
        out.clear();
        commands.resend(&mut out);
        let Ok(Packet::Publish(again)) = Packet::read(&mut out, MQTT_MAX_PACKET_BYTES) else { panic!("a PUBLISH") };
        assert!(again.dup);
        assert_eq!(again.topic, "t/1");
    }
}
