//! The Anxin daemon as a library: configuration, wiring, the demo. `main.rs` only parses
//! the command line and calls in here, so tests start the same engine on port 0.

pub mod app;
pub mod broker_files;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod day;
pub mod demo;
pub mod family;
pub mod follow;
pub mod inbox;
pub mod ingest;
pub mod ledger;
pub mod memory;
pub mod node;
pub mod notify;
pub mod ports;
pub mod provision;
pub mod sessions;
pub mod spread;
pub mod telemetry;
pub mod timeline;

pub use app::App;
pub use config::Config;

/// The runtime anxind runs on, with `worker_threads` threads ([`Config::worker_threads`]).
///
/// One by default with an external broker: a press crosses the MQTT link's task, the
/// engine's, its commit's and the consoles' sockets, and with two threads most of those
/// hand-overs woke the other thread. On the benchmarks' 2-core machine one thread cost the
/// engine about a fifth less CPU per press (docs/benchmarks.md, issue 18). Two with the
/// embedded broker, whose proxy in front of every device connection runs here too: on one
/// thread it queued presses at 10,000/s.
pub fn tokio_runtime(worker_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(worker_threads.max(1)).enable_all().build()
}
