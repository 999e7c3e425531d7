//! What the devices will do, decided before the run from the seed: Poisson presses shaped by
//! the hour of the day, panic repeats, cancels and the surge. The same scenario gives the
//! same plan, so two matching policies face exactly the same presses.

use crate::district::District;
use crate::scenario::Scenario;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Sos,
    Fall,
    Cancel,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Sos => "sos",
            Action::Fall => "fall",
            Action::Cancel => "cancel",
        }
    }
}

/// One device event, at a scenario time.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Scenario seconds from the start of the run.
    pub at_s: f64,
    /// Index into [`District::elders`].
    pub device: usize,
    pub action: Action,
    /// A panic press repeating an earlier one.
    pub repeat: bool,
    /// Part of the surge.
    pub surge: bool,
}

pub fn uniform(rng: &mut SmallRng, r: [f64; 2]) -> f64 {
    if r[1] > r[0] {
        rng.random_range(r[0]..r[1])
    } else {
        r[0]
    }
}

/// The run's device events, in time order.
pub fn plan(s: &Scenario, d: &District) -> Vec<Event> {
    let mut rng = SmallRng::seed_from_u64(s.run.seed ^ 0x5eed_9e55);
    let duration_s = s.run.hours * 3600.0;
    let weights = &s.presses.hourly_weights;
    let mean_w = weights.iter().sum::<f64>() / 24.0;
    let max_w = weights.iter().copied().fold(0.0, f64::max);
    let n = d.elders.len();
    // Rate across all devices at weight 1, per scenario second; thinned by the hour's weight.
    let base = n as f64 * s.presses.per_device_per_day / 86_400.0 / mean_w;
    let peak = base * max_w;
    let mut events = Vec::new();
    let mut t = 0.0;
    loop {
        t += -rng.random_range(f64::EPSILON..1.0f64).ln() / peak;
        if t >= duration_s {
            break;
        }
        let hour = ((s.run.start_hour + t / 3600.0) % 24.0) as usize;
        if rng.random::<f64>() * max_w > weights[hour.min(23)] {
            continue;
        }
        let device = rng.random_range(0..n);
        press(s, &mut rng, &mut events, t, device, false);
    }
    if let Some(surge) = &s.surge {
        let count = ((n as f64) * surge.share).round() as usize;
        // The first `count` of a shuffled list: distinct devices.
        let mut order: Vec<usize> = (0..n).collect();
        for i in 0..count.min(n) {
            let j = rng.random_range(i..n);
            order.swap(i, j);
            let at = surge.at_hour * 3600.0 + rng.random_range(0.0..surge.within_min * 60.0);
            press(s, &mut rng, &mut events, at, order[i], true);
        }
    }
    events.retain(|e| e.at_s < duration_s);
    events.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    events
}

fn press(s: &Scenario, rng: &mut SmallRng, events: &mut Vec<Event>, at: f64, device: usize, surge: bool) {
    let p = &s.presses;
    let action = if rng.random::<f64>() < p.fall_share { Action::Fall } else { Action::Sos };
    events.push(Event { at_s: at, device, action, repeat: false, surge });
    if rng.random::<f64>() < p.repeat_probability && p.repeat_max > 0 {
        let k = rng.random_range(1..=p.repeat_max);
        let mut when = at;
        for _ in 0..k {
            when += uniform(rng, p.repeat_gap_s);
            events.push(Event { at_s: when, device, action: Action::Sos, repeat: true, surge });
        }
    }
    if rng.random::<f64>() < p.cancel_probability {
        let when = at + uniform(rng, p.cancel_after_s);
        events.push(Event { at_s: when, device, action: Action::Cancel, repeat: false, surge });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_repeat_and_follow_the_hours() {
        let s = Scenario::parse(include_str!("../scenarios/xishan.toml"), "x").unwrap();
        let d = District::generate(&s);
        let a = plan(&s, &d);
        assert_eq!(a, plan(&s, &d), "same seed, same plan");
        assert!(a.windows(2).all(|w| w[0].at_s <= w[1].at_s));
        let surge = a.iter().filter(|e| e.surge && !e.repeat && e.action != Action::Cancel).count();
        assert_eq!(surge, (d.elders.len() as f64 * 0.05).round() as usize);
        let normal = a.iter().filter(|e| !e.surge && !e.repeat && e.action != Action::Cancel).count() as f64;
        // 12 hours from 08:00 at weights averaging about 1.3 against a daily mean of 1.0.
        let expected = d.elders.len() as f64 * 0.02 / 2.0 * 1.3;
        assert!((normal - expected).abs() < 0.25 * expected, "{normal} presses, expected about {expected}");
        assert!(a.iter().any(|e| e.repeat) && a.iter().any(|e| e.action == Action::Cancel));
    }
}
