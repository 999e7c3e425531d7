//! The embedded broker (rumqttd) for a machine with no MQTT server of its own.
//!
//! It keeps sessions in memory only. While anxind runs, presses wait in it for the engine, which
//! acknowledges each only once stored. A device's own PUBACK comes from the broker, so if the
//! whole process dies, presses the broker had taken but the engine had not yet stored are gone
//! with it: a device must treat a press as delivered only when `help_coming` arrives, and
//! resend it (same `msg_id`) until then; a resent press that was stored is answered again.
//! For that reason production runs an external, persistent broker (see `deploy/mosquitto`).

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use thiserror::Error;

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

/// A running embedded broker.
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
}

impl EmbeddedBroker {
    /// Starts rumqttd on `listen`. Port 0 picks a free port (for tests and demos).
    pub fn start(listen: SocketAddr, max_payload_bytes: usize) -> Result<Self, BrokerError> {
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
                        auth: None,
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
        Ok(Self { addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
