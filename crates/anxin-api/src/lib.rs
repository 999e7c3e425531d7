//! Anxin's people side: the console hub with numbered deltas and replay, the console page,
//! and the HTTP endpoints (WebSocket, health, readiness, metrics).

pub mod http;
pub mod hub;

pub use http::{router, serve, ApiState, ReadinessCheck};
pub use hub::{Frame, Hub, Subscription};
