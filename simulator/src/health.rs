//! The devices' own life: heartbeats on their interval, carrying a battery that drains and a
//! signal that wavers, and the faults a scenario asks for (a battery run flat, a device
//! switched off, a watch taken off, a battery run low, and coming back), planned from the
//! seed before the run; and the task that plays them over MQTT and writes down when each
//! device went silent, for the report to hold the engine's welfare checks against.

use crate::district::District;
use crate::engine::HealthTimers;
use crate::plan::uniform;
use crate::scenario::Scenario;
use crate::sim::{Clock, Ledger};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rumqttc::{AsyncClient, QoS};
use serde_json::json;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::watch;
use tokio::time::sleep_until;

/// The device model of the devices outside the watched sample (`[health.models.sim-quiet]`
/// in the child's configuration), heartbeating seldom.
pub const QUIET_MODEL: &str = "sim-quiet";

/// What goes wrong with a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultKind {
    /// Its battery runs flat: a `low_battery` event, then silence until charged.
    Flat,
    /// Switched off: a `power_off` event, then silence until switched on.
    Off,
    /// Taken off: `not_worn`, then `worn`; it keeps heartbeating.
    NotWorn,
    /// Its battery runs low: a heartbeat saying so, then one on its charger.
    Low,
}

impl FaultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Flat => "flat",
            FaultKind::Off => "switched_off",
            FaultKind::NotWorn => "not_worn",
            FaultKind::Low => "low_battery",
        }
    }

    /// The device sends nothing while it lasts.
    pub fn is_silent(self) -> bool {
        matches!(self, FaultKind::Flat | FaultKind::Off)
    }
}

/// A device's fault: when it starts and when (if ever) the device comes back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fault {
    pub kind: FaultKind,
    /// Scenario seconds from the start.
    pub at_s: f64,
    pub back_s: Option<f64>,
    /// The charge it reports when it runs low or flat.
    pub low_pct: u8,
}

/// One device's heartbeats and battery, and its fault if it has one.
#[derive(Debug, Clone, PartialEq)]
pub struct Life {
    /// Scenario seconds between heartbeats; the first comes at `first_s`.
    pub interval_s: f64,
    pub first_s: f64,
    /// In the watched sample (heartbeats every `health.heartbeat_s`, and may fail).
    pub watched: bool,
    /// Charge at the start, percent, and what it loses a scenario second.
    pub battery_pct: f64,
    pub drain_per_s: f64,
    pub rssi_dbm: f64,
    pub fault: Option<Fault>,
}

impl Life {
    /// Whether the device cannot be pressed at `at_s`: flat, switched off or not worn.
    pub fn cannot_call(&self, at_s: f64) -> bool {
        self.fault
            .is_some_and(|f| f.kind != FaultKind::Low && at_s >= f.at_s && f.back_s.is_none_or(|back| at_s < back))
    }

    /// The charge it reports at `at_s` while healthy: drained since the start, or since it
    /// was charged after a fault; put on its charger overnight at 30%, back to full.
    pub fn battery_at(&self, at_s: f64) -> u8 {
        let (from, since) = match self.fault {
            Some(f) if matches!(f.kind, FaultKind::Flat | FaultKind::Low) => match f.back_s {
                Some(back) if at_s >= back => (100.0, at_s - back),
                _ if at_s >= f.at_s => return f.low_pct,
                _ => (self.battery_pct, at_s),
            },
            _ => (self.battery_pct, at_s),
        };
        let mut level = from - self.drain_per_s * since;
        if level < 30.0 {
            level = 100.0 - (30.0 - level) % 70.0;
        }
        level.round().clamp(0.0, 100.0) as u8
    }
}

/// Every device's life, and the engine's windows they are held against.
#[derive(Debug, Clone)]
pub struct Lives {
    pub devices: Vec<Life>,
    pub timers: HealthTimers,
}

impl Lives {
    pub fn watched(&self) -> usize {
        self.devices.iter().filter(|l| l.watched).count()
    }

    pub fn faults(&self, kind: FaultKind) -> usize {
        self.devices.iter().filter(|l| l.fault.is_some_and(|f| f.kind == kind)).count()
    }
}

/// Plans every device's heartbeats and faults from the scenario's seed: the same scenario
/// gives the same lives. Heartbeats are spread evenly: the devices of each interval come up
/// one after another over their first interval, in a shuffled order, each then keeping its
/// own interval, so the load is the same from the first minute. A fault strikes, at its
/// drawn moment, a watched device that has come up by then (so that what it last said is
/// known), drawn from the seed.
pub fn plan(s: &Scenario, d: &District) -> Lives {
    let h = &s.health;
    let timers = HealthTimers::compressed(h, s.run.speedup);
    let mut rng = SmallRng::seed_from_u64(s.run.seed ^ 0x4ea1_7b0b);
    let n = d.elders.len();
    let shuffle = |rng: &mut SmallRng, mut v: Vec<usize>| {
        for i in (1..v.len()).rev() {
            v.swap(i, rng.random_range(0..=i));
        }
        v
    };
    let watched_n = ((n as f64) * h.watched_share).round() as usize;
    let mut watched = vec![false; n];
    for &i in shuffle(&mut rng, (0..n).collect()).iter().take(watched_n) {
        watched[i] = true;
    }
    let mut first_s = vec![0.0; n];
    for class in [true, false] {
        let members = shuffle(&mut rng, (0..n).filter(|&i| watched[i] == class).collect());
        let interval = timers.interval_s(class, s.run.speedup);
        for (slot, &i) in members.iter().enumerate() {
            first_s[i] = (slot as f64 + 0.5) / members.len() as f64 * interval;
        }
    }
    let mut devices: Vec<Life> = (0..n)
        .map(|i| Life {
            interval_s: timers.interval_s(watched[i], s.run.speedup),
            first_s: first_s[i],
            watched: watched[i],
            battery_pct: rng.random_range(50.0..=100.0),
            drain_per_s: uniform(&mut rng, h.drain_pct_per_day) / 86_400.0,
            rssi_dbm: uniform(&mut rng, h.rssi_dbm),
            fault: None,
        })
        .collect();
    let f = &h.faults;
    let plan_s = s.run.hours * 3600.0;
    let within = f.within_hours.map_or([0.0, plan_s], |w| [w[0] * 3600.0, (w[1] * 3600.0).min(plan_s)]);
    // Every fault, drawn whatever it is used for, so that one share does not move another's.
    let mut faults = Vec::new();
    for (kind, share) in [
        (FaultKind::Flat, f.flat_share),
        (FaultKind::Off, f.off_share),
        (FaultKind::NotWorn, f.not_worn_share),
        (FaultKind::Low, f.low_share),
    ] {
        for _ in 0..((watched_n as f64) * share).round() as usize {
            let at = uniform(&mut rng, within);
            let comes_back = rng.random::<f64>() < f.back_share || kind == FaultKind::NotWorn;
            let after_s = uniform(&mut rng, f.back_after_min) * 60.0;
            let low_pct = match kind {
                FaultKind::Flat => rng.random_range(1..=9),
                _ => rng.random_range(8..=19),
            };
            let pick: f64 = rng.random();
            faults.push((at, kind, comes_back, after_s, low_pct, pick));
        }
    }
    faults.sort_by(|a, b| a.0.total_cmp(&b.0));
    // The watched devices by the moment they come up.
    let mut by_first: Vec<usize> = (0..n).filter(|&i| watched[i]).collect();
    by_first.sort_by(|&a, &b| first_s[a].total_cmp(&first_s[b]));
    let mut free = vec![true; n];
    for (at, kind, comes_back, after_s, low_pct, pick) in faults {
        let up: Vec<usize> = by_first.iter().copied().filter(|&i| free[i] && first_s[i] + 1.0 <= at).collect();
        let (i, at_s) = if up.is_empty() {
            // Nobody is up yet: the next device to come up, just after it does.
            match by_first.iter().copied().find(|&i| free[i]) {
                Some(i) => (i, first_s[i] + 1.0),
                None => break,
            }
        } else {
            (up[((pick * up.len() as f64) as usize).min(up.len() - 1)], at)
        };
        free[i] = false;
        devices[i].fault = Some(Fault { kind, at_s, back_s: comes_back.then_some(at_s + after_s), low_pct });
    }
    Lives { devices, timers }
}

/// What the task sends next for a device, in order of scenario time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Heartbeat,
    Fault,
    Back,
}

/// Where the devices' messages go: each device's events topic and id, and the MQTT
/// connections they share (a device always uses the same one as its presses).
#[derive(Debug, Clone)]
pub struct Wire {
    pub topics: Arc<Vec<String>>,
    pub device_ids: Arc<Vec<String>>,
    /// Makes message ids unique on a shared broker.
    pub tag: String,
    pub publishers: Vec<AsyncClient>,
}

/// Plays the devices' lives until the run stops (live devices heartbeat through the last
/// wait for answers too, so that the end of the run is no silence): heartbeats, faults and
/// returns, each on the device's own connection (the one its presses use, so that a
/// `power_off` never overtakes the press before it), written down in the ledger as they are
/// sent.
pub async fn run(
    lives: Arc<Lives>,
    wire: Wire,
    ledger: Arc<Mutex<Ledger>>,
    clock: Clock,
    seed: u64,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xbea7);
    let ms = |s: f64| (s * 1000.0).round() as u64;
    let mut due: BinaryHeap<Reverse<(u64, usize, Due)>> = BinaryHeap::new();
    for (i, life) in lives.devices.iter().enumerate() {
        due.push(Reverse((ms(life.first_s), i, Due::Heartbeat)));
        if let Some(f) = life.fault {
            due.push(Reverse((ms(f.at_s), i, Due::Fault)));
            if let Some(back) = f.back_s {
                due.push(Reverse((ms(back), i, Due::Back)));
            }
        }
    }
    let mut sent = vec![0u64; lives.devices.len()];
    let mut silent = vec![false; lives.devices.len()];
    while let Some(&Reverse((at_ms, device, what))) = due.peek() {
        let at_s = at_ms as f64 / 1000.0;
        let when = clock.at(at_s);
        if when > Instant::now() {
            tokio::select! {
                _ = stop.changed() => break,
                _ = sleep_until(when.into()) => {}
            }
        }
        due.pop();
        let life = &lives.devices[device];
        let rssi = (life.rssi_dbm + rng.random_range(-3.0..=3.0)).round().clamp(-150.0, 0.0) as i16;
        let heartbeat = |battery: u8, charging: bool| {
            json!({"type": "heartbeat", "battery_pct": battery, "rssi": rssi, "charging": charging,
                   "interval_s": lives.timers.interval_wall_s(life.watched)})
        };
        let (note, mut payload) = match (what, life.fault) {
            (Due::Heartbeat, _) => {
                let next = at_s + life.interval_s;
                due.push(Reverse((ms(next), device, Due::Heartbeat)));
                if silent[device] {
                    continue;
                }
                (Note::Heartbeat, heartbeat(life.battery_at(at_s), false))
            }
            (Due::Fault, Some(f)) => match f.kind {
                FaultKind::Flat => {
                    (Note::Silent(f.kind), json!({"type": "low_battery", "battery_pct": f.low_pct, "charging": false}))
                }
                FaultKind::Off => (Note::Silent(f.kind), json!({"type": "power_off"})),
                FaultKind::NotWorn => (Note::NotWorn, json!({"type": "not_worn"})),
                FaultKind::Low => (Note::Low, heartbeat(f.low_pct, false)),
            },
            (Due::Back, Some(f)) => match f.kind {
                // Charged: a heartbeat from its charger. Switched on: a plain heartbeat.
                FaultKind::Flat | FaultKind::Low => (Note::Back(f.kind), heartbeat(life.battery_at(at_s), true)),
                FaultKind::Off => (Note::Back(f.kind), heartbeat(life.battery_at(at_s), false)),
                FaultKind::NotWorn => (Note::Worn, json!({"type": "worn"})),
            },
            _ => continue,
        };
        match note {
            Note::Silent(_) => silent[device] = true,
            Note::Back(k) if k.is_silent() => silent[device] = false,
            _ => {}
        }
        sent[device] += 1;
        let now_ms = anxin_proto::wall_clock_now().millis();
        payload["msg_id"] = json!(format!("{}-{}-h{}", wire.device_ids[device], wire.tag, sent[device]));
        payload["ts"] = json!(now_ms);
        let now = Instant::now();
        ledger.lock().unwrap().device_said(device, note, now, now_ms);
        if wire.publishers[device % wire.publishers.len()]
            .publish(wire.topics[device].clone(), QoS::AtLeastOnce, false, payload.to_string())
            .await
            .is_err()
        {
            break;
        }
    }
}

/// What a device's message meant, for the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    Heartbeat,
    /// Its last word before silence (a `low_battery` before going flat, a `power_off`).
    Silent(FaultKind),
    /// Heard again after a fault (charged, switched on).
    Back(FaultKind),
    NotWorn,
    Worn,
    /// A heartbeat with a low battery.
    Low,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smoke() -> Scenario {
        Scenario::parse(include_str!("../scenarios/smoke.toml"), "smoke").unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_lives_and_faults_come_after_the_first_heartbeat() {
        let s = smoke();
        let d = District::generate(&s);
        let (a, b) = (plan(&s, &d), plan(&s, &d));
        assert_eq!(a.devices, b.devices);
        let f = &s.health.faults;
        let watched = a.watched();
        for (kind, share) in [(FaultKind::Flat, f.flat_share), (FaultKind::Off, f.off_share)] {
            assert_eq!(a.faults(kind), (watched as f64 * share).round() as usize, "{kind:?}");
            assert!(a.faults(kind) > 0, "the smoke run has {kind:?} devices");
        }
        for life in &a.devices {
            if let Some(f) = life.fault {
                assert!(life.watched && f.at_s > life.first_s);
                assert!(f.back_s.is_none_or(|b| b > f.at_s));
            }
            assert!(life.first_s < life.interval_s, "every device is heard within its first interval");
        }
    }

    #[test]
    fn heartbeats_are_spread_evenly() {
        let s = smoke();
        let d = District::generate(&s);
        let lives = plan(&s, &d);
        let mut first: Vec<f64> = lives.devices.iter().map(|l| l.first_s).collect();
        first.sort_by(f64::total_cmp);
        let gaps: Vec<f64> = first.windows(2).map(|w| w[1] - w[0]).collect();
        let (lo, hi) = gaps.iter().fold((f64::MAX, 0.0f64), |(lo, hi), g| (lo.min(*g), hi.max(*g)));
        assert!(hi - lo < 1e-6, "one device after another, evenly: gaps {lo}..{hi}");
        assert!((first[first.len() - 1] - lives.devices[0].interval_s).abs() <= hi, "over the whole first interval");
        // A sample: each class over its own interval.
        let x = Scenario::parse(include_str!("../scenarios/xishan.toml"), "x").unwrap();
        let lives = plan(&x, &District::generate(&x));
        for watched in [true, false] {
            let class: Vec<&Life> = lives.devices.iter().filter(|l| l.watched == watched).collect();
            let early = class.iter().filter(|l| l.first_s < l.interval_s / 2.0).count();
            assert!(early.abs_diff(class.len() / 2) <= 1, "{early} of {} in the first half", class.len());
        }
    }

    #[test]
    fn a_dead_or_unworn_device_cannot_call_and_batteries_drain() {
        let life = Life {
            interval_s: 600.0,
            first_s: 10.0,
            watched: true,
            battery_pct: 80.0,
            drain_per_s: 10.0 / 86_400.0,
            rssi_dbm: -80.0,
            fault: Some(Fault { kind: FaultKind::Flat, at_s: 1_000.0, back_s: Some(2_000.0), low_pct: 5 }),
        };
        assert!(!life.cannot_call(999.0) && life.cannot_call(1_000.0) && !life.cannot_call(2_000.0));
        assert_eq!((life.battery_at(0.0), life.battery_at(1_500.0), life.battery_at(2_000.0)), (80, 5, 100));
        let healthy = Life { fault: None, ..life.clone() };
        assert_eq!(healthy.battery_at(86_400.0), 70, "10% a day");
        assert_eq!(healthy.battery_at(6.0 * 86_400.0), 90, "charged at 30%, drained 10% since");
        let low = Life { fault: Some(Fault { kind: FaultKind::Low, back_s: None, ..life.fault.unwrap() }), ..life };
        assert!(!low.cannot_call(1_500.0), "a low battery still calls");
    }
}
