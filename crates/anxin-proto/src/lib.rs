//! Anxin's wire formats, as typed Rust: what devices publish and on which topics, and what
//! people ask of the engine. Everything here is data and its decoding; no I/O.

pub mod command;
pub mod payload;
pub mod topic;

pub use command::{Answer, Caller, Command, CommandSender, Reply, Request};
pub use payload::{decode, fingerprint, Decoded, Defect};
pub use topic::Topics;

/// A device's message as the broker delivered it to the engine: where it was published, what
/// it says, and when the engine read it. The engine's link makes these; the engine's task
/// reads them, and hands each back to the link to acknowledge once what it caused is stored.
pub trait Delivery: Send + 'static {
    /// The MQTT topic it was published on.
    fn topic(&self) -> &str;
    /// Its payload, as sent.
    fn payload(&self) -> &[u8];
    /// When the engine read it off the connection (for the press → commit figure).
    fn received(&self) -> std::time::Instant;
}
