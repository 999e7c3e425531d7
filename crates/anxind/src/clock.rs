//! The engine's clock. The core never reads a clock; the shell reads this one, so tests can
//! run the dispatch loop's deadlines on a clock they move by hand, with no waiting.

use anxin_core::Timestamp;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Where the engine task gets the time, and how it waits for a deadline.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The wall clock.
    #[default]
    System,
    /// A clock that moves only when told to (tests).
    Manual(Arc<ManualClock>),
}

/// A clock moved by hand.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: AtomicI64,
    moved: Notify,
}

impl ManualClock {
    pub fn starting_at(t: Timestamp) -> Arc<Self> {
        Arc::new(Self { now_ms: AtomicI64::new(t.millis()), moved: Notify::new() })
    }

    /// Moves the clock forward; whatever waits for a deadline now past wakes up.
    pub fn advance(&self, by: Duration) {
        self.now_ms.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        self.moved.notify_waiters();
    }

    pub fn now(&self) -> Timestamp {
        Timestamp(self.now_ms.load(Ordering::SeqCst))
    }
}

impl Clock {
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => anxin_proto::wall_clock_now(),
            Clock::Manual(m) => m.now(),
        }
    }

    /// Waits until the clock reads `t` or later; forever for `None`.
    pub async fn sleep_until(&self, t: Option<Timestamp>) {
        let Some(t) = t else { return std::future::pending().await };
        match self {
            Clock::System => {
                let wait = t.millis().saturating_sub(anxin_proto::wall_clock_now().millis()).max(0);
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            }
            Clock::Manual(m) => loop {
                let moved = m.moved.notified();
                if m.now() >= t {
                    return;
                }
                moved.await;
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_clock_wakes_sleepers_only_when_moved_past_their_deadline() {
        let m = ManualClock::starting_at(Timestamp(1_000));
        let clock = Clock::Manual(m.clone());
        let sleeper = tokio::spawn({
            let clock = clock.clone();
            async move { clock.sleep_until(Some(Timestamp(61_000))).await }
        });
        tokio::task::yield_now().await;
        m.advance(Duration::from_secs(30));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished(), "31 s is not yet 61 s");
        m.advance(Duration::from_secs(30));
        tokio::time::timeout(Duration::from_secs(5), sleeper).await.expect("woken").unwrap();
        assert_eq!(clock.now(), Timestamp(61_000));
    }
}
