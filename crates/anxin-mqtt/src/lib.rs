//! Anxin's device side: the MQTT topic layout, device payloads, the engine's persistent
//! session with manual acknowledgements, commands back to devices, and the embedded broker.

pub mod broker;
pub mod credentials;
pub mod link;
pub mod payload;
pub mod topic;

pub use broker::EmbeddedBroker;
pub use credentials::PasswordFile;
pub use link::{connect, DeviceLink, Inbound, LinkOptions};
pub use payload::{decode, fingerprint, Decoded, Defect};
pub use rumqttc;
pub use topic::Topics;
