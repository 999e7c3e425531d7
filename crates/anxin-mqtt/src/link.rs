//! The engine's MQTT connection: a persistent session that hands incoming device messages
//! to the engine and acknowledges each one only when told to (after it is stored).

use crate::topic::Topics;
use anxin_core::{DeviceCommand, DeviceId, StationAlert};
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The largest packet MQTT 3.1.1 can express (its remaining length is at most 268,435,455).
pub const MQTT_MAX_PACKET_BYTES: usize = 268_435_455 + 5;

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
    pub username: Option<String>,
    pub password: Option<String>,
    pub topics: Topics,
}

/// An incoming device message, to be acknowledged once handled.
#[derive(Debug)]
pub struct Inbound {
    pub publish: Publish,
    /// When the engine read it off the connection.
    pub received: std::time::Instant,
}

/// Why talking to the broker failed.
#[derive(Debug, Error)]
pub enum LinkError {
    #[error("the MQTT link has stopped")]
    Stopped,
    #[error("could not encode a command: {0}")]
    Encode(#[from] serde_json::Error),
}

/// What the engine asks of its connection, in the order it asks.
#[derive(Debug)]
enum Request {
    Ack(Publish),
    Publish { topic: String, body: Vec<u8> },
    Disconnect,
}

/// The sending half: acknowledgements and commands to devices.
///
/// Nothing here waits for the connection. The connection's task hands device messages to the
/// engine and waits when the engine's queue is full, and only that task moves the engine's
/// requests onto the wire: an engine that waited here for room could wait on itself. Requests
/// wait in an unbounded queue instead, drained in order by a task of their own. It stays
/// short: it grows only with messages the broker has delivered and not yet had acknowledged,
/// and the broker stops delivering when its in-flight window is full.
#[derive(Debug, Clone)]
pub struct DeviceLink {
    requests: mpsc::UnboundedSender<Request>,
    waiting: Arc<AtomicUsize>,
    topics: Topics,
    connected: Arc<AtomicBool>,
    /// Set when the connection's task has sent DISCONNECT, or stopped.
    closed: watch::Receiver<bool>,
}

impl DeviceLink {
    /// Acknowledges a message to the broker, which may then forget it.
    pub fn ack(&self, publish: Publish) -> Result<(), LinkError> {
        self.request(Request::Ack(publish))
    }

    /// Sends a command to a device's command topic, QoS 1.
    pub fn send(&self, device: &DeviceId, command: &DeviceCommand) -> Result<(), LinkError> {
        let body = serde_json::to_vec(command)?;
        self.request(Request::Publish { topic: self.topics.commands(device), body })
    }

    /// Sends a station's duty line the incident its responders did not take, QoS 1, on the
    /// station's alerts topic (a duty phone, a pager or an SMS gateway subscribes to it).
    pub fn alert_station(&self, alert: &StationAlert) -> Result<(), LinkError> {
        /// The alert with its `type`, written straight out (no JSON tree in between).
        #[derive(serde::Serialize)]
        struct Typed<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            #[serde(flatten)]
            alert: &'a StationAlert,
        }
        let body = serde_json::to_vec(&Typed { kind: "station_alert", alert })?;
        self.request(Request::Publish { topic: self.topics.station_alerts(&alert.station_id), body })
    }

    fn request(&self, request: Request) -> Result<(), LinkError> {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.requests.send(request).map_err(|_| {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            LinkError::Stopped
        })
    }

    /// Acknowledgements and commands asked for and not yet handed to the connection.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
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

/// Moves the engine's requests onto the client's queue, in order. The client's queue is
/// bounded and drained by the connection's task: waiting for room here holds up nobody else.
async fn forward(client: AsyncClient, mut requests: mpsc::UnboundedReceiver<Request>, waiting: Arc<AtomicUsize>) {
    while let Some(request) = requests.recv().await {
        let result = match request {
            Request::Ack(publish) => client.ack(&publish).await,
            Request::Publish { topic, body } => client.publish(topic, QoS::AtLeastOnce, false, body).await,
            Request::Disconnect => client.disconnect().await,
        };
        waiting.fetch_sub(1, Ordering::Relaxed);
        if let Err(e) = result {
            // The connection's task is gone (shutting down): the broker redelivers what was
            // not acknowledged; a command not sent is lost with the connection, as on any drop.
            tracing::debug!(error = %e, "MQTT request not sent: the connection has stopped");
        }
    }
}

/// Connects and starts the event loop task. Device messages go to `inbound`; when it is full
/// the loop waits, which stops reading from the broker: the broker holds the rest.
pub fn connect(
    opts: LinkOptions,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) -> (DeviceLink, JoinHandle<()>) {
    let mut mqtt = MqttOptions::new(opts.client_id.clone(), opts.host.clone(), opts.port);
    mqtt.set_keep_alive(opts.keep_alive)
        .set_clean_session(false)
        .set_manual_acks(true)
        // Incoming: anything the broker forwards is read, however large, so that the payload
        // decoder can refuse it as oversized (counted, acknowledged). A smaller limit here
        // would drop the connection instead, and the broker would redeliver the same message
        // on every reconnect: one oversized message would stop all presses behind it.
        .set_max_packet_size(MQTT_MAX_PACKET_BYTES, opts.max_outgoing_bytes)
        .set_request_channel_capacity(4096)
        // Commands to devices are QoS 1 too; a wide window keeps them from holding up acks.
        .set_inflight(1000);
    if let (Some(u), Some(p)) = (opts.username.clone(), opts.password.clone()) {
        mqtt.set_credentials(u, p);
    }
    let (client, mut eventloop) = AsyncClient::new(mqtt, 4096);
    // Acknowledgements and commands are small and each one is waited for: send them at once
    // rather than let Nagle's algorithm hold them back for more data.
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    let connected = Arc::new(AtomicBool::new(false));
    let filter = opts.topics.events_filter();
    let (requests, pending) = mpsc::unbounded_channel();
    let (closed_tx, closed) = watch::channel(false);
    let waiting = Arc::new(AtomicUsize::new(0));
    let link =
        DeviceLink { requests, waiting: waiting.clone(), topics: opts.topics, connected: connected.clone(), closed };
    tokio::spawn(forward(client.clone(), pending, waiting));
    let task = tokio::spawn(async move {
        run(client, eventloop, filter, inbound, connected, shutdown).await;
        let _ = closed_tx.send(true);
    });
    (link, task)
}

async fn run(
    client: AsyncClient,
    mut eventloop: EventLoop,
    filter: String,
    inbound: mpsc::Sender<Inbound>,
    connected: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            event = eventloop.poll() => event,
        };
        match event {
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                let msg = Inbound { publish, received: std::time::Instant::now() };
                // When the engine has stopped, what arrives now is left unacknowledged (the
                // broker redelivers it); the loop goes on to write the engine's last
                // acknowledgements and its DISCONNECT.
                let _ = inbound.send(msg).await;
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                tracing::info!(session_present = ack.session_present, "connected to MQTT broker");
                connected.store(true, Ordering::Relaxed);
                backoff = Duration::from_millis(100);
                // Subscribing again is harmless when the session was kept, and needed when not.
                if let Err(e) = client.try_subscribe(filter.as_str(), QoS::AtLeastOnce) {
                    tracing::error!(error = %e, "could not queue the subscription to device events");
                }
            }
            Ok(_) => {}
            Err(e) => {
                connected.store(false, Ordering::Relaxed);
                log_connection_error(&e);
                // poll() returns at once on errors: back off before reconnecting.
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    connected.store(false, Ordering::Relaxed);
}

fn log_connection_error(e: &ConnectionError) {
    tracing::warn!(error = %e, "MQTT connection lost; presses wait at the broker until it is back");
}
