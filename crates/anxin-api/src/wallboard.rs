//! The supervisors' wallboard: the day so far against the standards and each dispatcher's day
//! ([`anxin_core::DayTally`]), kept current from the committed events and sent to
//! supervisors' consoles as a `wallboard` frame.
//!
//! Only the latest figures matter, so they travel on a `watch` channel: a console that is
//! slow skips to the newest, and one connecting gets them at once. The figures change with
//! events and also with time alone (an alarm's minute running out makes it missed), so a
//! task wakes at the tally's next change as well as after events, and works the figures out
//! at most once per [`MIN_INTERVAL`], however many batches a surge commits.
//!
//! The day's stored events are read after the engine is running ([`Wallboard::loading`],
//! then [`Wallboard::load_day`]), not before it: a takeover must not wait for a read that
//! grows with the day. Events committed meanwhile wait and are taken in after the stored
//! ones, and no figures are sent until then.

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
    /// While the day's stored events are being read: the events committed since the engine
    /// started, to be taken in after them. Taken before `tally` when both are held.
    waiting: Mutex<Option<Vec<IncidentEvent>>>,
    /// The last event of each zone the engine resumed from: the day's stored events up to
    /// them are what [`Wallboard::load_day`] takes in (none for a wallboard built with its day).
    /// `None`: the day's read itself says (see [`Wallboard::loading_all`]).
    through: Option<crate::hub::Cursor>,
    /// Held only to take in a batch's events or to work the figures out, never across an await.
    tally: Mutex<DayTally>,
    devices_offline: AtomicU32,
    /// With zones spread over nodes: each zone's devices offline as its engine last counted
    /// them (here, or on the node running it); `devices_offline` is their sum.
    zones_offline: Mutex<std::collections::BTreeMap<u16, u32>>,
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
        Self::with(tally, devices_offline, clock, None, Some(Default::default()))
    }

    /// A wallboard whose day is still to be read, for an engine that resumed from the events
    /// `through` (each zone's last): `tally` holds none of the day yet, events observed wait,
    /// and no figures are sent until [`Wallboard::load_day`].
    pub fn loading(tally: DayTally, devices_offline: usize, clock: WallClock, through: crate::hub::Cursor) -> Self {
        Self::with(tally, devices_offline, clock, Some(Vec::new()), Some(through))
    }

    /// [`Wallboard::loading`] for a node whose engines come and go (zones spread over nodes):
    /// every event the day's read finds counts, and of any observed meanwhile the ones
    /// numbered after the read's last of their zone. Such a node's reader (`anxind::day`)
    /// observes nothing until the day is loaded, then each zone's events from where the read
    /// left it, and waits on a hole in a zone's numbers, so nothing stored late is missed.
    pub fn loading_all(tally: DayTally, devices_offline: usize, clock: WallClock) -> Self {
        Self::with(tally, devices_offline, clock, Some(Vec::new()), None)
    }

    fn with(
        tally: DayTally,
        devices_offline: usize,
        clock: WallClock,
        waiting: Option<Vec<IncidentEvent>>,
        through: Option<crate::hub::Cursor>,
    ) -> Self {
        let (latest, _) = watch::channel((None, Utf8Bytes::from_static("")));
        let board = Self {
            waiting: Mutex::new(waiting),
            through,
            tally: Mutex::new(tally),
            devices_offline: AtomicU32::new(devices_offline as u32),
            zones_offline: Mutex::default(),
            latest,
            wake: Notify::new(),
            clock,
        };
        board.refresh();
        board
    }

    /// Where the day being tallied began (the stored events to read for
    /// [`Wallboard::load_day`] are those since).
    pub fn day_start(&self) -> anxin_core::Timestamp {
        self.tally.lock().expect("wallboard lock").day_start()
    }

    /// Takes in the day's stored events, read once the engine was running: those up to the
    /// one the engine resumed from, then the events observed meanwhile. Does nothing if the
    /// day was already taken in.
    pub fn load_day(&self, day: &[IncidentEvent]) {
        let read = || crate::hub::Cursor::of(day.iter().map(|e| e.seq));
        let through = self.through.clone().unwrap_or_else(read);
        let mut waiting = self.waiting.lock().expect("wallboard lock");
        let Some(meanwhile) = waiting.take() else { return };
        let mut tally = self.tally.lock().expect("wallboard lock");
        for e in day.iter().filter(|e| through.covers(e.seq)) {
            tally.observe(e);
        }
        for e in meanwhile.iter().filter(|e| !through.covers(e.seq)) {
            tally.observe(e);
        }
        drop(tally);
        drop(waiting);
        self.wake.notify_one();
    }

    /// True until the day's stored events are taken in.
    pub fn is_loading(&self) -> bool {
        self.waiting.lock().expect("wallboard lock").is_some()
    }

    /// Takes in a batch's events, once they are stored, in the engine's order.
    pub fn observe(&self, events: &[IncidentEvent]) {
        if events.is_empty() {
            return;
        }
        let mut waiting = self.waiting.lock().expect("wallboard lock");
        if let Some(waiting) = waiting.as_mut() {
            waiting.extend_from_slice(events);
            return;
        }
        drop(waiting);
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

    /// How many devices of `zone` cannot call now, as its engine last counted them (on this
    /// node or on the one running it): the board shows the sum over every zone heard of.
    pub fn set_zone_devices_offline(&self, zone: u16, offline: usize) {
        let mut zones = self.zones_offline.lock().expect("wallboard lock");
        zones.insert(zone, offline as u32);
        let sum: u32 = zones.values().sum();
        drop(zones);
        self.set_devices_offline(sum as usize);
    }

    /// Works the figures out as of now and sends them if anything but the time changed.
    /// Returns when they next change with no event.
    pub fn refresh(&self) -> anxin_core::Timestamp {
        let now = (self.clock)();
        if self.is_loading() {
            // Nothing to show until the day is read; `load_day` wakes the task.
            return now.plus_millis(MAX_SLEEP.as_millis() as i64);
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use anxin_core::testkit::{d1, with_dispatcher};
    use anxin_core::*;
    use std::sync::Arc;

    /// Presses by the one elder of `one_of_each`, one every `gap_ms`, each claimed and
    /// released by a dispatcher (a claim adds to the dispatcher's count, so an event taken in
    /// twice shows): the engine's events, in order.
    fn events(presses: u32, from: Timestamp, gap_ms: i64) -> (Vec<IncidentEvent>, Timestamp) {
        let mut engine = Engine::new(Policy::default(), with_dispatcher(), Resume::default());
        let (mut log, mut now) = (Vec::new(), from);
        for n in 0..presses {
            let mut out = Outbox::default();
            engine.tick(now, &mut out);
            let event = DeviceEvent {
                msg_id: MessageId::parse(format!("m{n}")).unwrap(),
                event: EventType::Sos,
                device_ts: now,
                fix: FixReport::Absent,
                health: Default::default(),
            };
            let id = match engine.handle_device_event(&d1(), event, now, &mut out).unwrap() {
                Outcome::Opened(id) | Outcome::Joined(id) => id,
                other => panic!("the press opened nothing: {other:?}"),
            };
            for action in [DispatcherAction::Claim, DispatcherAction::Release] {
                engine.dispatcher_acts("dispatcher", id, action, now, &mut out).unwrap();
            }
            log.extend(out.events);
            now = now.plus_millis(gap_ms);
        }
        (log, now)
    }

    /// A day of twelve presses, each claimed and released, and the figures of all of it.
    struct Day {
        log: Vec<IncidentEvent>,
        clock: WallClock,
        day: fn() -> DayTally,
        expected: DayFigures,
    }

    fn day_of_events() -> Day {
        const START: Timestamp = Timestamp(1_763_000_000_000);
        let (log, now) = events(12, START, 7 * 60_000);
        let day: fn() -> DayTally = || DayTally::new(StandardLimits::default(), 480, START);
        let mut whole = day();
        for e in &log {
            whole.observe(e);
        }
        Day { log, clock: Arc::new(move || now), day, expected: whole.figures(now, 0) }
    }

    /// A wallboard whose day is read after the engine started shows what one that read it
    /// before would: the stored events up to the resume, then those committed meanwhile, each
    /// once, and nothing until then.
    #[test]
    fn a_day_read_after_the_engine_started_counts_each_event_once() {
        let Day { log, clock, day, expected } = day_of_events();
        assert_eq!(expected.dispatchers.len(), 1, "{expected:?}");

        // The engine resumed from the first two thirds; the rest were committed, and observed,
        // while the day was read, and the read saw some of them too.
        let resumed = log[log.len() * 2 / 3].seq;
        let board = Wallboard::loading(day(), 0, clock.clone(), crate::hub::Cursor::of([resumed]));
        let meanwhile: Vec<_> = log.iter().filter(|e| e.seq > resumed).cloned().collect();
        board.observe(&meanwhile[..meanwhile.len() / 2]);
        assert!(board.is_loading());
        assert_eq!(board.refresh(), clock().plus_millis(MAX_SLEEP.as_millis() as i64));
        assert_eq!(board.figures(), None, "nothing shown before the day is read");
        let read: Vec<_> = log.iter().filter(|e| e.seq <= resumed + 4).cloned().collect();
        assert_eq!(board.day_start(), day().day_start());
        board.load_day(&read);
        board.observe(&meanwhile[meanwhile.len() / 2..]);
        // Read again (a retry): nothing changes.
        board.load_day(&read);
        board.refresh();
        assert!(!board.is_loading());
        assert_eq!(board.figures(), Some(expected.clone()));

        // The same as one that read the day before the engine started.
        let mut before = day();
        for e in log.iter().filter(|e| e.seq <= resumed) {
            before.observe(e);
        }
        let board = Wallboard::new(before, 0, clock);
        board.observe(&meanwhile);
        board.refresh();
        assert_eq!(board.figures(), Some(expected));
    }

    /// A node's wallboard (zones spread over nodes) counts every event the day's read finds,
    /// and those observed meanwhile that the read did not: each once.
    #[test]
    fn a_day_read_by_a_node_counts_what_it_read_and_what_came_after_once() {
        let Day { log, clock, day, expected } = day_of_events();
        let board = Wallboard::loading_all(day(), 0, clock);
        let half = log.len() / 2;
        // Observed while the day was read: some the read found, some it did not.
        board.observe(&log[half..half + 6]);
        board.load_day(&log[..half + 3]);
        board.observe(&log[half + 6..]);
        board.refresh();
        assert_eq!(board.figures(), Some(expected));
    }
}
