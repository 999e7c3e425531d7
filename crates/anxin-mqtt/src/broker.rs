//! The embedded broker (rumqttd) for a machine with no MQTT server of its own.
//!
//! It keeps sessions in memory only. While anxind runs, presses wait in it for the engine, which
//! acknowledges each only once stored. A device's own PUBACK comes from the broker, so if the
//! whole process dies, presses the broker had taken but the engine had not yet stored are gone
//! with it: a device must treat a press as delivered only when `help_coming` arrives, and
//! resend it (same `msg_id`) until then; a resent press that was stored is answered again.
//! For that reason production runs an external, persistent broker (see `deploy/mosquitto`).
//!
//! Devices never reach rumqttd directly: they connect to a guard, Anxin's own accept loop,
//! which carries each connection to rumqttd on a loopback port. rumqttd binds and accepts its
//! sockets itself and offers no setting or hook for them (its `Server::start` binds the
//! listener, and the task that takes an accepted socket, `remote`, is private), so it leaves
//! Nagle's algorithm on towards devices. A device that acknowledges as Linux does by default,
//! up to 40 ms late, then heard `help_coming` about 40 ms after the press: rumqttd held it
//! until the device acknowledged the PUBACK before it. The guard's socket to the device has
//! `TCP_NODELAY`, and it acknowledges rumqttd's side at once (`ack_at_once`), so what rumqttd
//! sends is passed on as it comes. The guard also reads every packet a device sends, so it
//! is where a device is turned away and why is counted (`OnRefused`): rumqttd itself reports
//! an oversized packet only in its log, and a topic that is not UTF-8 only as a count of
//! failed publishes, with no reason, in its meters. Who it lets in may change while it runs
//! ([`GuardAccounts`], driven by `crate::provision`): each CONNECT is checked against the
//! accounts and retired devices as they are at that moment.

use crate::credentials::PasswordFile;
use crate::Topics;
use bytes::BytesMut;
use rumqttc::mqttbytes::v4::Connect;
use rumqttc::mqttbytes::{self, v4::Packet};
use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Why the embedded broker could not start.
#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("cannot bind the embedded broker to {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("the embedded broker did not start listening on {0}")]
    NotListening(SocketAddr),
    #[error("could not start the embedded broker thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Who may use the embedded broker, and for what: the rule of the Mosquitto ACL that
/// `anxind broker-files` writes. Every client signs in with an account from the password
/// file; a user may publish only its own events (`…/devices/{user}/events`), its last will
/// included, and subscribe only to its own commands or its own station alerts.
#[derive(Debug, Clone)]
pub struct Accounts {
    pub passwd: PasswordFile,
    pub topics: Topics,
}

/// Why the embedded broker turned a client away (closed its connection); passed to the
/// broker's `on_refused`. The first three need `mqtt.embedded_accounts`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No account, or a wrong password.
    SignIn,
    /// A publish (or last will) under a topic that is not the client's own.
    Publish,
    /// A subscription to a topic that is not the client's own.
    Subscribe,
    /// A packet larger than the broker takes (`mqtt.max_payload_bytes`, at least 64 KiB).
    Oversized,
    /// A topic or topic filter that is not UTF-8, which MQTT requires it to be.
    TopicNotUtf8,
    /// Bytes that are not MQTT 3.1.1, or a first packet that is not CONNECT.
    Malformed,
    /// No whole CONNECT within `CONNECT_WITHIN` of connecting (rumqttd's own limit).
    NoConnect,
    /// rumqttd closed the connection itself, for a reason of its own (its log says which):
    /// the same client id connecting again, keep-alive silence, a packet it would not take.
    ClosedByBroker,
    /// A retired device: refused at CONNECT (its user name or client id), or its connection
    /// closed when it was retired ([`GuardAccounts::retire`]). Counted with or without accounts.
    Retired,
}

impl Refusal {
    pub const ALL: [Refusal; 9] = [
        Refusal::SignIn,
        Refusal::Publish,
        Refusal::Subscribe,
        Refusal::Oversized,
        Refusal::TopicNotUtf8,
        Refusal::Malformed,
        Refusal::NoConnect,
        Refusal::ClosedByBroker,
        Refusal::Retired,
    ];

    pub fn as_label(self) -> &'static str {
        match self {
            Refusal::SignIn => "sign_in",
            Refusal::Publish => "publish",
            Refusal::Subscribe => "subscribe",
            Refusal::Oversized => "oversized",
            Refusal::TopicNotUtf8 => "topic_not_utf8",
            Refusal::Malformed => "malformed",
            Refusal::NoConnect => "no_connect",
            Refusal::ClosedByBroker => "closed_by_broker",
            Refusal::Retired => "retired",
        }
    }

    /// What MQTT's codec says about a packet it could not frame or read.
    fn of(error: &mqttbytes::Error) -> Self {
        match error {
            mqttbytes::Error::PayloadSizeLimitExceeded(_) => Refusal::Oversized,
            mqttbytes::Error::TopicNotUtf8 => Refusal::TopicNotUtf8,
            _ => Refusal::Malformed,
        }
    }
}

/// The accounts' rule, which needs only the topic layout: a user's own topics.
#[derive(Debug, Clone)]
struct Rule {
    topics: Topics,
}

impl Rule {
    fn own(filter: &str, user: &str) -> String {
        filter.replacen('+', user, 1)
    }

    fn may_publish(&self, user: &str, topic: &str) -> bool {
        topic == Self::own(&self.topics.events_filter(), user)
    }

    fn may_subscribe(&self, user: &str, filter: &str) -> bool {
        filter == Self::own(&self.topics.commands_filter(), user)
            || filter == Self::own(&self.topics.alerts_filter(), user)
    }

    /// Whether the client may send `packet`, having signed in as `user`.
    fn allows(&self, user: &str, packet: &Packet) -> Result<(), Refusal> {
        match packet {
            Packet::Publish(p) if !self.may_publish(user, &p.topic) => Err(Refusal::Publish),
            Packet::Subscribe(s) if !s.filters.iter().all(|f| self.may_subscribe(user, &f.path)) => {
                Err(Refusal::Subscribe)
            }
            Packet::Connect(_) => Err(Refusal::Malformed), // a second CONNECT
            _ => Ok(()),
        }
    }
}

/// Who the guard lets in, changed while it runs ([`GuardAccounts`]) and read at each CONNECT;
/// and the connections it carries, so that a retired device's can be closed. Behind one
/// `std::sync::Mutex`: every use is short and never crosses an `.await`, and the guard's
/// connections all run on its one thread, so only provisioning ever waits for it.
#[derive(Default)]
struct Gate {
    /// The accounts' passwords, when they are checked (`mqtt.embedded_accounts`).
    passwd: Option<PasswordFile>,
    /// Retired device ids: refused at CONNECT as user name or client id, with or without
    /// accounts (so the open demo broker refuses them too). Re-adding a device clears it.
    retired: HashSet<String>,
    /// The connections carried now, by a number of the guard's own.
    live: HashMap<u64, Carried>,
    next: u64,
}

/// A connection the guard carries: the names it came with, and how to close it.
struct Carried {
    /// The account it signed in as, or (without accounts) its user name and client id.
    names: Vec<String>,
    close: CancellationToken,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("accounts", &self.passwd.as_ref().map(|p| p.users().count()))
            .field("retired", &self.retired.len())
            .field("live", &self.live.len())
            .finish()
    }
}

/// A connection the guard let in: its user (with accounts), and its place in the gate's
/// list of live connections, which it leaves when dropped.
struct Admitted {
    user: Option<String>,
    gate: Arc<Mutex<Gate>>,
    id: u64,
    close: CancellationToken,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        lock(&self.gate).live.remove(&self.id);
    }
}

fn lock(gate: &Mutex<Gate>) -> std::sync::MutexGuard<'_, Gate> {
    // Nothing panics while holding it; were it poisoned, the data is still whole.
    gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Gate {
    /// Checks a CONNECT and, if it may come in, lists the connection as live, in the same
    /// critical section: a device retired meanwhile is either refused here or found live by
    /// [`Gate::retire`], never missed by both.
    fn admit(gate: &Arc<Mutex<Gate>>, connect: &Connect, rule: Option<&Rule>) -> Result<Admitted, (Refusal, String)> {
        let mut g = lock(gate);
        let username = connect.login.as_ref().map(|l| l.username.as_str());
        if let Some(name) = username.into_iter().chain([connect.client_id.as_str()]).find(|n| g.retired.contains(*n)) {
            return Err((Refusal::Retired, name.to_string()));
        }
        let user = match &g.passwd {
            Some(passwd) => {
                let signed_in = connect
                    .login
                    .as_ref()
                    .filter(|login| passwd.verify(&login.username, login.password.as_bytes()))
                    .map(|login| login.username.clone());
                let Some(user) = signed_in else { return Err((Refusal::SignIn, connect.client_id.clone())) };
                if let Some(will) = connect
                    .last_will
                    .as_ref()
                    .filter(|will| rule.is_some_and(|rule| !rule.may_publish(&user, &will.topic)))
                {
                    return Err((Refusal::Publish, format!("{user}: last will on {}", will.topic)));
                }
                Some(user)
            }
            None => None,
        };
        let names = match &user {
            Some(user) => vec![user.clone()],
            None => username.into_iter().chain([connect.client_id.as_str()]).map(str::to_string).collect(),
        };
        let (id, close) = (g.next, CancellationToken::new());
        g.next += 1;
        g.live.insert(id, Carried { names, close: close.clone() });
        Ok(Admitted { user, gate: gate.clone(), id, close })
    }

    /// Refuses `device` from now on and closes its live connections; how many were closed.
    fn retire(&mut self, device: &str) -> usize {
        if let Some(passwd) = &mut self.passwd {
            passwd.remove(device);
        }
        self.retired.insert(device.to_string());
        let mut closed = 0;
        for carried in self.live.values().filter(|c| c.names.iter().any(|n| n == device)) {
            carried.close.cancel();
            closed += 1;
        }
        closed
    }
}

/// The embedded broker's accounts, changed while it runs: devices added, their passwords
/// changed, devices retired. Every CONNECT after a change sees it. Cheap to clone.
#[derive(Debug, Clone)]
pub struct GuardAccounts {
    gate: Arc<Mutex<Gate>>,
}

impl GuardAccounts {
    /// Whether the broker checks passwords (started with accounts); without, anyone who is
    /// not retired may connect.
    pub fn checks_passwords(&self) -> bool {
        lock(&self.gate).passwd.is_some()
    }

    /// Lets `device` in from now on, with the password whose `$7$` hash is `hash` when the
    /// broker checks passwords (ignored when it does not), and clears its retirement.
    pub fn admit(&self, device: &str, hash: Option<&str>) -> Result<(), crate::credentials::BadAccount> {
        let mut g = lock(&self.gate);
        if let (Some(passwd), Some(hash)) = (&mut g.passwd, hash) {
            passwd.set_hash(device, hash)?;
        }
        g.retired.remove(device);
        Ok(())
    }

    /// Refuses `device` at CONNECT from now on (its account is removed) and closes its live
    /// connections; returns how many it closed.
    pub fn retire(&self, device: &str) -> usize {
        lock(&self.gate).retire(device)
    }

    /// Whether `device` has an account (always false when passwords are not checked).
    pub fn has_account(&self, device: &str) -> bool {
        lock(&self.gate).passwd.as_ref().is_some_and(|p| p.contains(device))
    }
}

/// Called with the reason whenever the embedded broker turns a client away.
pub type OnRefused = Arc<dyn Fn(Refusal) + Send + Sync>;

/// A running embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    /// Where devices connect.
    addr: SocketAddr,
    /// Where the engine connects: rumqttd itself.
    engine_addr: SocketAddr,
    /// rumqttd takes only this login, which the guard puts in every CONNECT it lets through:
    /// a local process cannot go round the guard (and its counts) to rumqttd's own port.
    engine_login: (String, String),
    /// Who the guard lets in, shared with [`EmbeddedBroker::accounts`]' handles.
    gate: Arc<Mutex<Gate>>,
}

const INTERNAL_USER: &str = "anxin-embedded-internal";

/// How long a client has, once connected, to send its CONNECT: rumqttd's
/// `connection_timeout_ms`, which the guard enforces for it.
const CONNECT_WITHIN: Duration = Duration::from_secs(10);

impl EmbeddedBroker {
    /// Starts the guard on `listen` (port 0 picks a free port, for tests and demos) and
    /// rumqttd behind it on a free loopback port that only the engine is told of, with an
    /// internal login. With `accounts`, the guard lets in only those accounts and holds each
    /// to its own topics; without, anyone who reaches `listen` may publish as any device.
    /// Either way every client turned away is passed to `on_refused`, and logged. The guard
    /// runs on a thread of its own, as rumqttd's listeners do, so no runtime is needed.
    pub fn start(
        listen: SocketAddr,
        max_payload_bytes: usize,
        accounts: Option<Accounts>,
        on_refused: OnRefused,
    ) -> Result<Self, BrokerError> {
        let guard = TcpListener::bind(listen).map_err(|source| BrokerError::Bind { addr: listen, source })?;
        let addr = guard.local_addr()?;
        let login = (INTERNAL_USER.to_string(), crate::credentials::new_password());
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        // rumqttd refuses a packet whose remaining length is over this; the guard refuses it
        // first, so that it is counted.
        let max_packet = max_payload_bytes.max(64 * 1024);
        let engine_addr = Self::start_rumqttd(loopback, max_packet, login.clone())?;
        guard.set_nonblocking(true)?;
        let rule = accounts.as_ref().map(|a| Arc::new(Rule { topics: a.topics.clone() }));
        let gate = Arc::new(Mutex::new(Gate { passwd: accounts.map(|a| a.passwd), ..Gate::default() }));
        let shared_gate = gate.clone();
        let internal = Arc::new(login.clone());
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        std::thread::Builder::new().name("anxin-broker-guard".into()).spawn(move || {
            runtime.block_on(async move {
                let guard = match tokio::net::TcpListener::from_std(guard) {
                    Ok(guard) => guard,
                    Err(e) => return tracing::error!(error = %e, "the embedded broker's guard cannot listen"),
                };
                loop {
                    let (client, peer) = match guard.accept().await {
                        Ok(accepted) => accepted,
                        Err(e) => {
                            // Out of file descriptors, most likely: wait rather than spin.
                            tracing::warn!(error = %e, "embedded broker cannot accept a connection");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let (gate, rule, on_refused, internal) =
                        (gate.clone(), rule.clone(), on_refused.clone(), internal.clone());
                    tokio::spawn(async move {
                        let upstream = Upstream { addr: engine_addr, login: &internal, max_packet };
                        if let Some((refusal, detail)) = guard_connection(client, upstream, &gate, rule.as_deref()).await
                        {
                            tracing::warn!(reason = refusal.as_label(), %peer, detail, "embedded broker turned a client away");
                            on_refused(refusal);
                        }
                    });
                }
            })
        })?;
        Ok(Self { addr, engine_addr, engine_login: login, gate: shared_gate })
    }

    fn start_rumqttd(
        listen: SocketAddr,
        max_payload_bytes: usize,
        login: (String, String),
    ) -> Result<SocketAddr, BrokerError> {
        // rumqttd binds inside its own thread and cannot report the port it got, so a free
        // port is found here first; the window between the two binds is tiny.
        let addr = if listen.port() == 0 {
            let probe = TcpListener::bind(listen).map_err(|source| BrokerError::Bind { addr: listen, source })?;
            probe.local_addr()?
        } else {
            // Fail loudly and early if the port is taken, rather than inside rumqttd's thread.
            drop(TcpListener::bind(listen).map_err(|source| BrokerError::Bind { addr: listen, source })?);
            listen
        };
        let config = rumqttd::Config {
            id: 0,
            router: rumqttd::RouterConfig {
                max_connections: 100_010,
                max_outgoing_packet_count: 200,
                max_segment_size: 100 * 1024 * 1024,
                max_segment_count: 10,
                custom_segment: None,
                initialized_filters: None,
                shared_subscriptions_strategy: Default::default(),
            },
            v4: Some(HashMap::from([(
                "v4".to_string(),
                rumqttd::ServerSettings {
                    name: "anxin-embedded-v4".to_string(),
                    listen: addr,
                    tls: None,
                    next_connection_delay_ms: 0,
                    connections: rumqttd::ConnectionSettings {
                        connection_timeout_ms: CONNECT_WITHIN.as_millis() as u16,
                        max_payload_size: max_payload_bytes,
                        max_inflight_count: 500,
                        auth: Some(HashMap::from([login])),
                        external_auth: None,
                        dynamic_filters: true,
                    },
                },
            )])),
            ..Default::default()
        };
        std::thread::Builder::new().name("anxin-broker".into()).spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if Instant::now() > deadline {
                return Err(BrokerError::NotListening(addr));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(addr)
    }

    /// Where devices connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the engine connects.
    pub fn engine_addr(&self) -> SocketAddr {
        self.engine_addr
    }

    /// The user name and password the engine signs in with.
    pub fn engine_login(&self) -> &(String, String) {
        &self.engine_login
    }

    /// A handle on who the guard lets in, to add and retire devices while it runs
    /// (`crate::provision` drives it).
    pub fn accounts(&self) -> GuardAccounts {
        GuardAccounts { gate: self.gate.clone() }
    }
}

/// Where the guard carries a client's connection: rumqttd's port, its login, its packet limit.
struct Upstream<'a> {
    addr: SocketAddr,
    login: &'a (String, String),
    max_packet: usize,
}

/// Why a connection was closed, with a detail for the log.
type Closed = Option<(Refusal, String)>;

/// Carries one client's connection to rumqttd, reading every packet the client sends: first
/// a CONNECT (not from a retired device; with a valid account, when the gate checks them),
/// then only what MQTT allows and `rule` permits. What rumqttd sends back passes untouched, at
/// once. The connection is closed when its device is retired. Returns why the client was
/// turned away, if it was.
async fn guard_connection(
    mut client: tokio::net::TcpStream,
    broker: Upstream<'_>,
    gate: &Arc<Mutex<Gate>>,
    rule: Option<&Rule>,
) -> Closed {
    let max_packet = broker.max_packet;
    let mut buf = BytesMut::with_capacity(4096);
    let first = match tokio::time::timeout(CONNECT_WITHIN, next_frame(&mut client, &mut buf, max_packet)).await {
        Ok(Ok(Some(frame))) => frame,
        Ok(Ok(None)) => return None, // gone before saying anything
        Ok(Err(closed)) => return Some(closed),
        Err(_) => return Some((Refusal::NoConnect, format!("{} bytes in {CONNECT_WITHIN:?}", buf.len()))),
    };
    let (admitted, who, first) = match Packet::read(&mut first.clone(), max_packet) {
        Ok(Packet::Connect(mut connect)) => {
            let admitted = match Gate::admit(gate, &connect, rule) {
                Ok(admitted) => admitted,
                Err((refusal, detail)) => {
                    // CONNACK as Mosquitto answers: "bad user name or password" for a wrong
                    // login, "not authorised" for a retired device (a deleted account).
                    let code = match refusal {
                        Refusal::SignIn => Some(0x04),
                        Refusal::Retired => Some(0x05),
                        _ => None,
                    };
                    if let Some(code) = code {
                        let _ = client.write_all(&[0x20, 0x02, 0x00, code]).await;
                    }
                    return Some((refusal, detail));
                }
            };
            if let Some(user) = &admitted.user {
                // rumqttd sees the session under the account's name (one per device, as
                // with Mosquitto's use_username_as_clientid).
                connect.client_id = user.clone();
            }
            connect.login = Some(rumqttc::mqttbytes::v4::Login {
                username: broker.login.0.clone(),
                password: broker.login.1.clone(),
            });
            let who = connect.client_id.clone();
            let mut rewritten = BytesMut::new();
            if let Err(e) = Packet::Connect(connect).write(&mut rewritten, max_packet) {
                return Some((Refusal::of(&e), format!("{who}: {e}")));
            }
            (admitted, who, rewritten)
        }
        Ok(other) => return Some((Refusal::Malformed, format!("first packet {other:?}, not CONNECT"))),
        Err(e) => return Some((Refusal::of(&e), e.to_string())),
    };
    let user = admitted.user.clone();
    let retired = admitted.close.clone();
    let Ok(upstream) = tokio::net::TcpStream::connect(broker.addr).await else { return None };
    let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_broker, mut to_broker) = upstream.into_split();
    // rumqttd's side of this connection has Nagle's algorithm on: see `ack_at_once`. Ends
    // with whether rumqttd closed the connection (rather than the client going away).
    let mut down = tokio::spawn(async move {
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            buf.clear();
            match from_broker.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => crate::ack_at_once(from_broker.as_ref()),
            }
            if to_client.write_all(&buf).await.is_err() {
                return false;
            }
        }
    });
    let mut said_goodbye = false;
    // What the client may send after its CONNECT: `None` to carry it on, else why it is cut off.
    let mut inspect = |frame: &BytesMut| -> Option<Closed> {
        match Packet::read(&mut frame.clone(), max_packet) {
            Ok(packet) => {
                said_goodbye |= matches!(packet, Packet::Disconnect);
                let refused = match (rule, user.as_deref()) {
                    (Some(rule), Some(user)) => rule.allows(user, &packet).err(),
                    _ => matches!(packet, Packet::Connect(_)).then_some(Refusal::Malformed), // a second CONNECT
                };
                refused.map(|refusal| Some((refusal, who.clone())))
            }
            Err(e) => Some(Some((Refusal::of(&e), format!("{who}: {e}")))),
        }
    };
    // The frames to write next: every whole one read so far, in one write (a device
    // pipelining its presses sends several a read); then why to stop, if one was refused.
    let mut frames = first;
    let mut stop: Option<Closed> = None;
    let closed = loop {
        if to_broker.write_all(&frames).await.is_err() {
            break None;
        }
        if let Some(stop) = stop.take() {
            break stop;
        }
        let next = tokio::select! {
            next = next_frame(&mut from_client, &mut buf, max_packet) => next,
            _ = retired.cancelled() => break Some((Refusal::Retired, format!("{who}: retired while connected"))),
            by_broker = &mut down => {
                let by_broker = by_broker.unwrap_or(false) && !said_goodbye;
                break by_broker.then(|| (Refusal::ClosedByBroker, who.clone()));
            }
        };
        frames = match next {
            Ok(Some(frame)) => frame,
            Ok(None) => break None,
            Err((refusal, e)) => break Some((refusal, format!("{who}: {e}"))),
        };
        if let Some(closed) = inspect(&frames) {
            break closed;
        }
        // A frame cut short, or one that does not read, is left for `next_frame`.
        while let Ok(header) = mqttbytes::check(buf.iter(), max_packet) {
            let frame = buf.split_to(header.frame_length());
            if let Some(closed) = inspect(&frame) {
                // Those before it go first, as they would have one by one.
                stop = Some(closed);
                break;
            }
            frames.unsplit(frame);
        }
    };
    // Both sockets close: the client is dropped, as Mosquitto drops one that breaks its ACL.
    down.abort();
    drop(admitted);
    closed
}

/// The next whole MQTT packet from `stream`, as its bytes; `None` when the peer closed.
async fn next_frame<R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
    max_packet: usize,
) -> Result<Option<BytesMut>, (Refusal, String)> {
    loop {
        match mqttbytes::check(buf.iter(), max_packet) {
            Ok(header) => return Ok(Some(buf.split_to(header.frame_length()))),
            Err(mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(e) => return Err((Refusal::of(&e), e.to_string())),
        }
        match stream.read_buf(buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}
