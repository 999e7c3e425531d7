//! The embedded broker (rumqttd) for a machine with no MQTT server of its own.
//!
//! It keeps sessions in memory only. While anxind runs, presses wait in it for the engine, which
//! acknowledges each only once stored. A device's own PUBACK comes from the broker, so if the
//! whole process dies, presses the broker had taken but the engine had not yet stored are gone
//! with it: a device must treat a press as delivered only when `help_coming` arrives, and
//! resend it (same `msg_id`) until then; a resent press that was stored is answered again.
//! For that reason production runs an external, persistent broker (see `deploy/mosquitto`).

use crate::credentials::PasswordFile;
use crate::Topics;
use bytes::BytesMut;
use rumqttc::mqttbytes::{self, v4::Packet};
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// Why the embedded broker turned a client away; passed to the broker's `on_refused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No account, or a wrong password.
    SignIn,
    /// A publish (or last will) under a topic that is not the client's own.
    Publish,
    /// A subscription to a topic that is not the client's own.
    Subscribe,
    /// Bytes that are not MQTT 3.1.1, or a first packet that is not CONNECT.
    Malformed,
}

impl Refusal {
    pub const ALL: [Refusal; 4] = [Refusal::SignIn, Refusal::Publish, Refusal::Subscribe, Refusal::Malformed];

    pub fn as_label(self) -> &'static str {
        match self {
            Refusal::SignIn => "sign_in",
            Refusal::Publish => "publish",
            Refusal::Subscribe => "subscribe",
            Refusal::Malformed => "malformed",
        }
    }
}

impl Accounts {
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

/// Called with the reason whenever the embedded broker turns a client away.
pub type OnRefused = Arc<dyn Fn(Refusal) + Send + Sync>;

/// A running embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    /// Where devices connect.
    addr: SocketAddr,
    /// Where the engine connects: rumqttd itself, which is `addr` unless accounts are checked.
    engine_addr: SocketAddr,
    /// With accounts, rumqttd takes only this login, which the guard puts in every CONNECT it
    /// lets through: a local process cannot go round the guard to rumqttd's own port.
    engine_login: Option<(String, String)>,
}

const INTERNAL_USER: &str = "anxin-embedded-internal";

impl EmbeddedBroker {
    /// Starts rumqttd on `listen`. Port 0 picks a free port (for tests and demos). With
    /// `accounts`, devices connect to a guard on `listen` that enforces them, and rumqttd
    /// listens on a free loopback port that only the engine is told of. Must be called
    /// inside a Tokio runtime when `accounts` is given.
    pub fn start(
        listen: SocketAddr,
        max_payload_bytes: usize,
        accounts: Option<(Accounts, OnRefused)>,
    ) -> Result<Self, BrokerError> {
        let Some((accounts, on_refused)) = accounts else {
            let addr = Self::start_rumqttd(listen, max_payload_bytes, None)?;
            return Ok(Self { addr, engine_addr: addr, engine_login: None });
        };
        let guard = TcpListener::bind(listen).map_err(|source| BrokerError::Bind { addr: listen, source })?;
        let addr = guard.local_addr()?;
        let login = (INTERNAL_USER.to_string(), crate::credentials::new_password());
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let engine_addr = Self::start_rumqttd(loopback, max_payload_bytes, Some(login.clone()))?;
        guard.set_nonblocking(true)?;
        let guard = tokio::net::TcpListener::from_std(guard)?;
        let max_packet = max_payload_bytes.max(64 * 1024) + 1024;
        let accounts = Arc::new(accounts);
        let internal = Arc::new(login.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = guard.accept().await else { continue };
                let (accounts, on_refused, internal) = (accounts.clone(), on_refused.clone(), internal.clone());
                tokio::spawn(async move {
                    let upstream = Upstream { addr: engine_addr, login: &internal, max_packet };
                    if let Some(refusal) = guard_connection(client, upstream, &accounts).await {
                        tracing::warn!(reason = refusal.as_label(), "embedded broker turned a client away");
                        on_refused(refusal);
                    }
                });
            }
        });
        Ok(Self { addr, engine_addr, engine_login: Some(login) })
    }

    fn start_rumqttd(
        listen: SocketAddr,
        max_payload_bytes: usize,
        login: Option<(String, String)>,
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
                        connection_timeout_ms: 10_000,
                        max_payload_size: max_payload_bytes.max(64 * 1024),
                        max_inflight_count: 500,
                        auth: login.map(|(user, password)| HashMap::from([(user, password)])),
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

    /// The user name and password the engine signs in with, when accounts are checked.
    pub fn engine_login(&self) -> Option<&(String, String)> {
        self.engine_login.as_ref()
    }
}

/// Carries one client's connection to rumqttd, reading every packet the client sends:
/// first a CONNECT with a valid account, then only what `accounts` allows. What rumqttd
/// sends back passes untouched. Returns why the client was turned away, if it was.
struct Upstream<'a> {
    addr: SocketAddr,
    login: &'a (String, String),
    max_packet: usize,
}

async fn guard_connection(
    mut client: tokio::net::TcpStream,
    broker: Upstream<'_>,
    accounts: &Accounts,
) -> Option<Refusal> {
    let max_packet = broker.max_packet;
    let mut buf = BytesMut::with_capacity(4096);
    let first = match next_frame(&mut client, &mut buf, max_packet).await {
        Ok(Some(frame)) => frame,
        Ok(None) => return None, // gone before saying anything
        Err(refusal) => return Some(refusal),
    };
    let (user, first) = match Packet::read(&mut first.clone(), max_packet) {
        Ok(Packet::Connect(mut connect)) => {
            let signed_in = connect
                .login
                .as_ref()
                .filter(|login| accounts.passwd.verify(&login.username, login.password.as_bytes()))
                .map(|login| login.username.clone());
            let Some(user) = signed_in else {
                // CONNACK, "bad user name or password", as Mosquitto answers.
                let _ = client.write_all(&[0x20, 0x02, 0x00, 0x04]).await;
                return Some(Refusal::SignIn);
            };
            if connect.last_will.as_ref().is_some_and(|will| !accounts.may_publish(&user, &will.topic)) {
                return Some(Refusal::Publish);
            }
            // rumqttd sees the session under the account's name (one per device, as with
            // Mosquitto's use_username_as_clientid) and the internal login.
            connect.client_id = user.clone();
            connect.login = Some(rumqttc::mqttbytes::v4::Login {
                username: broker.login.0.clone(),
                password: broker.login.1.clone(),
            });
            let mut rewritten = BytesMut::new();
            if Packet::Connect(connect).write(&mut rewritten, max_packet).is_err() {
                return Some(Refusal::Malformed);
            }
            (user, rewritten)
        }
        _ => return Some(Refusal::Malformed),
    };
    let Ok(upstream) = tokio::net::TcpStream::connect(broker.addr).await else { return None };
    let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_broker, mut to_broker) = upstream.into_split();
    // rumqttd's side of this connection has Nagle's algorithm on: see `ack_at_once`.
    let down = tokio::spawn(async move {
        let mut buf = BytesMut::with_capacity(4096);
        loop {
            buf.clear();
            match from_broker.read_buf(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => crate::ack_at_once(from_broker.as_ref()),
            }
            if to_client.write_all(&buf).await.is_err() {
                break;
            }
        }
    });
    let mut frame = first;
    let refusal = loop {
        if to_broker.write_all(&frame).await.is_err() {
            break None;
        }
        frame = match next_frame(&mut from_client, &mut buf, max_packet).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break None,
            Err(refusal) => break Some(refusal),
        };
        match Packet::read(&mut frame.clone(), max_packet) {
            Ok(packet) => {
                if let Err(refusal) = accounts.allows(&user, &packet) {
                    break Some(refusal);
                }
            }
            Err(_) => break Some(Refusal::Malformed),
        }
    };
    // Both sockets close: the client is dropped, as Mosquitto drops one that breaks its ACL.
    down.abort();
    refusal
}

/// The next whole MQTT packet from `stream`, as its bytes; `None` when the peer closed.
async fn next_frame<R: tokio::io::AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
    max_packet: usize,
) -> Result<Option<BytesMut>, Refusal> {
    loop {
        match mqttbytes::check(buf.iter(), max_packet) {
            Ok(header) => return Ok(Some(buf.split_to(header.frame_length()))),
            Err(mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(_) => return Err(Refusal::Malformed),
        }
        match stream.read_buf(buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
    }
}
