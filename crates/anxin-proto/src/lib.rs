//! Anxin's wire formats, as typed Rust: what devices publish and on which topics, what people
//! ask of the engine, and every frame and body on the HTTP side (`ws`, `rest`). Everything
//! here is data and its decoding, and one read of the wall clock ([`wall_clock_now`]).

pub mod admin;
pub mod cluster;
pub mod command;
pub mod family;
pub mod payload;
pub mod rest;
pub mod topic;
pub mod ws;

pub use command::{Answer, Caller, Command, CommandSender, OrderBoard, Refused, Reply, Request};
pub use payload::{decode, fingerprint, Decoded, Defect};
pub use topic::Topics;

/// A device's message as the broker delivered it to the engine: where it was published, what
/// it says, and when the engine read it. The engine's link makes these; the engine's task
/// reads them, and hands each back to the link to acknowledge once what it caused is stored.
pub trait Delivery: Send + Sync + 'static {
    /// The MQTT topic it was published on.
    fn topic(&self) -> &str;
    /// Its payload, as sent.
    fn payload(&self) -> &[u8];
    /// When the engine read it off the connection (for the press → commit figure).
    fn received(&self) -> std::time::Instant;
}

/// The wall clock, as the wire's timestamps count it (Unix milliseconds). The one place
/// Anxin reads it: the daemon's clock, its API's `server_time`, and clients stamping a
/// device's `ts` all come here. It lives with the wire formats because it defines what their
/// `Timestamp`s mean, and every program that speaks them depends on this crate; the core
/// never reads a clock (it is handed the time).
pub fn wall_clock_now() -> anxin_core::Timestamp {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    anxin_core::Timestamp(since_epoch.map(|d| d.as_millis() as i64).unwrap_or(0))
}
