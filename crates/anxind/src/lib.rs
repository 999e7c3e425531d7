//! The Anxin daemon as a library: configuration, wiring, the demo. `main.rs` only parses
//! the command line and calls in here, so tests start the same engine on port 0.

pub mod app;
pub mod broker_files;
pub mod clock;
pub mod config;
pub mod demo;
pub mod ports;
pub mod telemetry;
pub mod timeline;

pub use app::App;
pub use config::Config;
