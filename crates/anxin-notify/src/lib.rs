//! Telling families: the delivery worker that drains the notifications' outbox, the
//! operator's SMS and voice gateway (a signed webhook, or the log), Web Push (RFC 8291
//! encryption, RFC 8292 VAPID), and the signature scheme gateways' callbacks are checked
//! with. The store and the engine are reached through the traits in [`ports`]; anxind
//! implements them.

pub mod gateway;
pub mod http;
pub mod ports;
pub mod signature;
#[cfg(feature = "testkit")]
#[doc(hidden)]
pub mod testkit;
pub mod webpush;
pub mod worker;

pub use gateway::{Gateway, GatewayError, WebhookBody, WebhookContact};
pub use http::HttpClient;
pub use ports::{Clock, NoTelemetry, OutboxPort, Reporter, Telemetry};
pub use signature::{sign, verify, SignatureError};
pub use webpush::Vapid;
pub use worker::{Push, Worker, WorkerOptions};
