//! Anxin's device side: the MQTT topic layout, device payloads, the engine's persistent
//! session with manual acknowledgements, commands back to devices, the embedded broker, and
//! telling the broker of devices added and retired (`provision`).

pub mod broker;
pub mod credentials;
pub mod link;
pub mod provision;

pub use anxin_proto::payload::{decode, fingerprint, Decoded, Defect};
/// The device protocol lives in `anxin-proto`; these paths stay for the link and its users.
pub use anxin_proto::{payload, topic};
pub use broker::EmbeddedBroker;
pub use credentials::PasswordFile;
pub use link::{connect, DeviceLink, Inbound, LinkOptions};
pub use provision::{DeviceAccount, ProvisionError, Provisioner, ReconcileReport};
pub use rumqttc;
pub use topic::Topics;

/// Has the kernel acknowledge what was just read from `stream` at once, not up to 40 ms later.
///
/// A broker that leaves Nagle's algorithm on (rumqttd has no setting for it; Mosquitto's
/// `set_tcp_nodelay` is off by default) holds back each small packet until the one before it
/// is acknowledged, and Linux delays an acknowledgement, by up to 40 ms, hoping to send it with
/// data: presses then reach the engine in clumps, one every 40 ms. Linux leaves quick-ack mode
/// again by itself, so it is asked for after every read. Elsewhere this does nothing.
pub(crate) fn ack_at_once(stream: &tokio::net::TcpStream) {
    #[cfg(target_os = "linux")]
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_quickack(true) {
        tracing::debug!(error = %e, "cannot set TCP_QUICKACK");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = stream;
}
