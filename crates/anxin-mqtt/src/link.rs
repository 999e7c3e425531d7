//! The engine's MQTT connection: a persistent session that hands incoming device messages
//! to the engine and acknowledges each one only when told to (after it is stored).

use crate::topic::Topics;
use anxin_core::{DeviceCommand, DeviceId, StationAlert};
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::mpsc;
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
    #[error("the MQTT client's request queue is closed")]
    Closed(#[from] rumqttc::ClientError),
    #[error("could not encode a command: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The sending half: acknowledgements and commands to devices.
#[derive(Debug, Clone)]
pub struct DeviceLink {
    client: AsyncClient,
    topics: Topics,
    connected: Arc<AtomicBool>,
}

impl DeviceLink {
    /// Acknowledges a message to the broker, which may then forget it.
    pub async fn ack(&self, publish: &Publish) -> Result<(), LinkError> {
        Ok(self.client.ack(publish).await?)
    }

    /// Sends a command to a device's command topic, QoS 1.
    pub async fn send(&self, device: &DeviceId, command: &DeviceCommand) -> Result<(), LinkError> {
        let body = serde_json::to_vec(command)?;
        self.client.publish(self.topics.commands(device), QoS::AtLeastOnce, false, body).await?;
        Ok(())
    }

    /// Sends a station's duty line the incident its responders did not take, QoS 1, on the
    /// station's alerts topic (a duty phone, a pager or an SMS gateway subscribes to it).
    pub async fn alert_station(&self, alert: &StationAlert) -> Result<(), LinkError> {
        let mut body = serde_json::to_value(alert)?;
        body["type"] = "station_alert".into();
        let body = serde_json::to_vec(&body)?;
        self.client.publish(self.topics.station_alerts(&alert.station_id), QoS::AtLeastOnce, false, body).await?;
        Ok(())
    }

    /// Whether the session with the broker is up right now.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub async fn disconnect(&self) {
        let _ = self.client.disconnect().await;
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
    let link = DeviceLink { client: client.clone(), topics: opts.topics, connected: connected.clone() };
    let task = tokio::spawn(run(client, eventloop, filter, inbound, connected, shutdown));
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
                if inbound.send(msg).await.is_err() {
                    break; // the engine has stopped
                }
            }
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
