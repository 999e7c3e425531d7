//! Anxin's people side: the console hub with numbered deltas and replay, the console page,
//! and the HTTP endpoints (WebSocket, health, readiness, metrics). The frames and bodies it
//! speaks are typed in `anxin_proto::ws` and `anxin_proto::rest`.

pub mod admin;
pub mod assets;
pub mod auth;
pub mod commands;
pub mod family;
pub mod http;
pub mod hub;
pub mod import;
pub mod notify;
pub mod reports;
pub mod responders;
pub mod services;
pub mod telephony;
pub mod wallboard;

pub use admin::{LedgerSide, LedgerUnavailable};
pub use anxin_proto::{rest, ws};
pub use auth::{hash_password, staff_key, KeptSession, NotKept, SessionBook, Sessions, User};
pub use commands::{token_sha256, Answer, Caller, Command, CommandSender, Refused, Reply, Request};
pub use family::{Families, FamilyDenied, FamilyHub, FamilySide, LinkDenied, SignedFamily};
pub use http::{router, serve, standby_router, ApiState, ReadinessCheck, Timeline, TimelineUnavailable, WallClock};
pub use hub::{Cursor, CursorError, Frame, Hub, Subscription};
pub use reports::{ReportSide, ReportUnavailable};
pub use responders::ResponderHub;
pub use wallboard::Wallboard;
