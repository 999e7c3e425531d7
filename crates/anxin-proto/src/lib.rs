//! Anxin's wire formats, as typed Rust: what devices publish and on which topics, and what
//! people ask of the engine. Everything here is data and its decoding; no I/O.

pub mod command;
pub mod payload;
pub mod topic;

pub use command::{Answer, Caller, Command, CommandSender, Reply, Request};
pub use payload::{decode, fingerprint, Decoded, Defect};
pub use topic::Topics;
