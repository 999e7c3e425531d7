//! The supervisors' wallboard: the day so far against the standards and each dispatcher's day
//! ([`anxin_core::DayTally`]), kept current from the committed events and sent to
//! supervisors' consoles as a `wallboard` frame.
//!
//! Only the latest figures matter, so they travel on a `watch` channel: a console that is
//! slow skips to the newest, and one connecting gets them at once. The figures change with
//! events and also with time alone (an alarm's minute running out makes it missed), so a
//! task wakes at the tally's next change as well as after events, and works the figures out
//! at most once per [`MIN_INTERVAL`], however many batches a surge commits.

use crate::http::WallClock;
use anxin_core::{DayFigures, DayTally, IncidentEvent};
use anxin_proto::ws::ServerFrame;
use axum::extract::ws::Utf8Bytes;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

/// The shortest time between two workings-out of the figures.
pub const MIN_INTERVAL: Duration = Duration::from_millis(500);

/// The longest the task sleeps with nothing to wake it (a manual clock in tests moves without
/// telling anyone).
const MAX_SLEEP: Duration = Duration::from_secs(30);

/// The day's tally and its latest frame.
pub struct Wallboard {
    /// Held only to take in a batch's events or to work the figures out, never across an await.
    tally: Mutex<DayTally>,
    devices_offline: AtomicU32,
    /// The latest figures, and the frame text made of them.
    latest: watch::Sender<(Option<DayFigures>, Utf8Bytes)>,
    wake: Notify,
    clock: WallClock,
}

impl std::fmt::Debug for Wallboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wallboard").finish_non_exhaustive()
    }
}

impl Wallboard {
    /// A wallboard over `tally` (rebuilt from the day's stored events), with the devices
    /// offline now.
    pub fn new(tally: DayTally, devices_offline: usize, clock: WallClock) -> Self {
        let (latest, _) = watch::channel((None, Utf8Bytes::from_static("")));
        let board = Self {
            tally: Mutex::new(tally),
            devices_offline: AtomicU32::new(devices_offline as u32),
            latest,
            wake: Notify::new(),
            clock,
        };
        board.refresh();
        board
    }

    /// Takes in a batch's events, once they are stored, in the engine's order.
    pub fn observe(&self, events: &[IncidentEvent]) {
        if events.is_empty() {
            return;
        }
        let mut tally = self.tally.lock().expect("wallboard lock");
        for e in events {
            tally.observe(e);
        }
        drop(tally);
        self.wake.notify_one();
    }

    /// How many devices cannot call now, as the engine last counted them.
    pub fn set_devices_offline(&self, offline: usize) {
        let before = self.devices_offline.swap(offline as u32, Ordering::Relaxed);
        if before != offline as u32 {
            self.wake.notify_one();
        }
    }

    /// Works the figures out as of now and sends them if anything but the time changed.
    /// Returns when they next change with no event.
    pub fn refresh(&self) -> anxin_core::Timestamp {
        let now = (self.clock)();
        let mut tally = self.tally.lock().expect("wallboard lock");
        tally.roll(now);
        let figures = tally.figures(now, self.devices_offline.load(Ordering::Relaxed));
        let next = tally.next_change(now);
        drop(tally);
        self.latest.send_if_modified(|(last, text)| {
            let same = last.as_ref().is_some_and(|l| DayFigures { as_of: figures.as_of, ..l.clone() } == figures);
            if same {
                return false;
            }
            *text = ServerFrame::Wallboard(figures.clone()).to_json().into();
            *last = Some(figures);
            true
        });
        next
    }

    /// The latest frame, then each newer one.
    pub fn subscribe(&self) -> watch::Receiver<(Option<DayFigures>, Utf8Bytes)> {
        self.latest.subscribe()
    }

    /// The latest figures (tests, and a console connecting).
    pub fn figures(&self) -> Option<DayFigures> {
        self.latest.borrow().0.clone()
    }

    /// Keeps the figures current until `shutdown`: after events (at most once per
    /// [`MIN_INTERVAL`]) and when time alone changes them.
    pub async fn run(self: std::sync::Arc<Self>, shutdown: CancellationToken) {
        loop {
            let next = self.refresh();
            let wait_ms = (next.millis() - (self.clock)().millis()).max(0) as u64;
            let sleep = Duration::from_millis(wait_ms).clamp(MIN_INTERVAL, MAX_SLEEP);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(sleep) => {}
                _ = self.wake.notified() => {
                    // Let the rest of a surge's batches land before working it out again.
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(MIN_INTERVAL) => {}
                    }
                }
            }
        }
    }
}
