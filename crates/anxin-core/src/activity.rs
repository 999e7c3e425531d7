//! Abnormal inactivity: an elder who lives alone and has gone quiet at a time of day when
//! they are usually up and about.
//!
//! **What counts as activity.** Only devices that report movement start the watch: a
//! `motion` event (a room sensor, a wearable's accelerometer) or a heartbeat that says
//! `"active": true`. Once an elder is watched, anything they do with any of their devices
//! counts as well: a press of any kind, a cancel, putting a wearable on. A heartbeat alone
//! does not (a button on the wall beats whether anybody is home or not), nor do smoke, gas
//! or break-in alarms.
//!
//! **The rule.** A welfare check of reason `inactive` opens when `quiet_hours` of the
//! elder's *waking hours* pass with no activity. Only waking hours count, so a night's
//! sleep never opens one: an elder last seen at 20:30 who is up by 07:00 is fine, and the
//! same elder still quiet at 10:30 the next morning (half an hour that evening and three and
//! a half that morning, with `quiet_hours = 4`) is not. The check closes by itself at the
//! next activity.
//!
//! **Waking hours, learned.** At first they are the centre's fixed hours (`day_start_h` to
//! `day_end_h`, local time). Each elder's own are learned from the days watched: the engine
//! keeps, for each of the last 28 days, the hours in which there was any activity (a bitmask
//! a day, 112 bytes an elder). Once `learn_days` whole days are watched, an hour is one of the
//! elder's waking hours when there was activity in it on at least `usual_share` of those days.
//! A late riser who is up at 10 every day stops being looked for at 7 within a week; a
//! pattern with no usual hours (a sensor that rarely reports) never opens a check, and the
//! note on a check says which hours counted and how they were found.

use crate::ids::{DeviceId, ElderId, IncidentId, Timestamp};
use serde::{Deserialize, Serialize};

/// Days of activity kept per elder.
pub const DAYS: usize = 28;
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// How far ahead the deadline is looked for: past this with no waking hour, none is set.
const HORIZON_HOURS: u32 = 8 * 24;

/// The centre's inactivity rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityPolicy {
    /// Whether elders living alone are watched for inactivity at all.
    pub enabled: bool,
    /// Waking hours with no activity that open a welfare check.
    pub quiet_hours: u32,
    /// The fixed waking hours, local time, used until an elder's own are learned:
    /// from `day_start_h` (inclusive) to `day_end_h` (exclusive), 0-24.
    pub day_start_h: u8,
    pub day_end_h: u8,
    /// Whole days watched before the elder's own pattern replaces the fixed hours (1-28).
    pub learn_days: u32,
    /// An hour is a waking hour of the elder when there was activity in it on at least this
    /// share of the days watched (0-1).
    pub usual_share: f64,
}

impl Default for ActivityPolicy {
    /// Four quiet waking hours; 07:00-21:00 until a week has been watched; then the hours
    /// active on at least half the days.
    fn default() -> Self {
        Self { enabled: true, quiet_hours: 4, day_start_h: 7, day_end_h: 21, learn_days: 7, usual_share: 0.5 }
    }
}

impl ActivityPolicy {
    /// The fixed waking hours as a mask (bit `h`: the hour from `h`:00).
    pub fn fixed_hours(&self) -> u32 {
        (0..24u8).filter(|h| *h >= self.day_start_h && *h < self.day_end_h).fold(0, |m, h| m | 1 << h)
    }
}

/// The local day (days since 1970-01-01 at the centre) and hour of `t`.
pub fn local_day_hour(t: i64, utc_offset_min: i32) -> (i32, u32) {
    let local = t + i64::from(utc_offset_min) * 60_000;
    (local.div_euclid(DAY_MS) as i32, (local.rem_euclid(DAY_MS) / HOUR_MS) as u32)
}

/// The waking hours an elder's pattern gives, and how they were found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakingHours {
    /// Bit `h`: the hour from `h`:00, local time.
    pub mask: u32,
    /// Whole days watched that the mask was learned from; 0 while the fixed hours apply.
    pub learned_from_days: u32,
}

impl WakingHours {
    /// "07-12, 14-21": the mask as runs of hours.
    pub fn describe(&self) -> String {
        let mut runs = Vec::new();
        let mut h = 0;
        while h < 24 {
            if self.mask & (1 << h) == 0 {
                h += 1;
                continue;
            }
            let start = h;
            while h < 24 && self.mask & (1 << h) != 0 {
                h += 1;
            }
            runs.push(format!("{start:02}-{h:02}"));
        }
        if runs.is_empty() {
            "none".to_string()
        } else {
            runs.join(", ")
        }
    }
}

/// What the engine keeps of one watched elder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElderActivity {
    /// The last activity heard (ms since the epoch).
    pub last_active: i64,
    /// The device it was heard from: the welfare check is raised on it.
    pub device: DeviceId,
    /// The first local day watched.
    pub first_day: i32,
    /// The local day `days` was last written for.
    pub last_day: i32,
    /// For each of the last [`DAYS`] local days (slot `day % DAYS`), the hours with activity.
    pub days: [u32; DAYS],
    /// The open welfare check for inactivity.
    pub(crate) open: Option<IncidentId>,
    /// Has an entry in the engine's queue of deadlines.
    pub(crate) queued: bool,
    /// Changed since the last snapshot was taken.
    pub(crate) dirty: bool,
    /// When the centre last heard the elder's device before the engine started (ms; 0:
    /// unknown): the quiet from `last_active` up to then was heard, and counts after a
    /// restart; the time the centre was down does not.
    pub(crate) heard_until: i64,
}

impl ElderActivity {
    /// An elder watched from `at`, when `device` first reported movement.
    pub fn new(device: DeviceId, at: Timestamp, utc_offset_min: i32) -> Self {
        let (day, _) = local_day_hour(at.millis(), utc_offset_min);
        Self {
            last_active: at.millis(),
            device,
            first_day: day,
            last_day: day,
            days: [0; DAYS],
            open: None,
            queued: false,
            dirty: false,
            heard_until: 0,
        }
    }

    /// Activity at `at` from `device`.
    pub fn note(&mut self, device: &DeviceId, at: Timestamp, utc_offset_min: i32) {
        let (day, hour) = local_day_hour(at.millis(), utc_offset_min);
        if day > self.last_day {
            // The days in between had nothing.
            for d in (self.last_day + 1).max(day - DAYS as i32 + 1)..=day {
                self.days[d.rem_euclid(DAYS as i32) as usize] = 0;
            }
            self.last_day = day;
        }
        if day > self.last_day - DAYS as i32 && day >= self.first_day {
            self.days[day.rem_euclid(DAYS as i32) as usize] |= 1 << hour;
        }
        if at.millis() >= self.last_active {
            self.last_active = at.millis();
            if &self.device != device {
                self.device = device.clone();
            }
        }
        self.dirty = true;
    }

    /// The hours with activity on local day `day` (0 for a day not kept).
    fn hours_on(&self, day: i32) -> u32 {
        if day > self.last_day || day <= self.last_day - DAYS as i32 || day < self.first_day {
            0
        } else {
            self.days[day.rem_euclid(DAYS as i32) as usize]
        }
    }

    /// The elder's waking hours as of `now`: learned from the whole days watched in the last
    /// [`DAYS`] once there are `learn_days` of them, else the policy's fixed hours.
    pub fn waking_hours(&self, now: Timestamp, policy: &ActivityPolicy, utc_offset_min: i32) -> WakingHours {
        let (today, _) = local_day_hour(now.millis(), utc_offset_min);
        let from = (today - DAYS as i32).max(self.first_day);
        let watched = (today - from).max(0) as u32;
        if watched < policy.learn_days.max(1) {
            return WakingHours { mask: policy.fixed_hours(), learned_from_days: 0 };
        }
        let mut counts = [0u32; 24];
        for day in from..today {
            let bits = self.hours_on(day);
            for (h, c) in counts.iter_mut().enumerate() {
                *c += bits >> h & 1;
            }
        }
        let need = (policy.usual_share * f64::from(watched)).ceil().max(1.0) as u32;
        let mask = counts.iter().enumerate().filter(|(_, c)| **c >= need).fold(0, |m, (h, _)| m | 1 << h);
        WakingHours { mask, learned_from_days: watched }
    }

    /// When `quiet_hours` of waking hours will have passed since `from` with no activity;
    /// `None` when the hours give none within eight days.
    pub fn inactive_at(from: Timestamp, hours: u32, quiet_hours: u32, utc_offset_min: i32) -> Option<Timestamp> {
        Self::quiet_for(from, hours, i64::from(quiet_hours.max(1)) * HOUR_MS, utc_offset_min)
    }

    /// When `need` ms of waking hours will have passed since `from`; `None` when the hours
    /// give none within eight days.
    pub fn quiet_for(from: Timestamp, hours: u32, need: i64, utc_offset_min: i32) -> Option<Timestamp> {
        let offset = i64::from(utc_offset_min) * 60_000;
        let mut need = need.max(1);
        let mut t = from.millis();
        for _ in 0..HORIZON_HOURS {
            let local = t + offset;
            let hour = (local.rem_euclid(DAY_MS) / HOUR_MS) as u32;
            let end = t + (HOUR_MS - local.rem_euclid(HOUR_MS));
            if hours & (1 << hour) != 0 {
                if need <= end - t {
                    return Some(Timestamp(t + need));
                }
                need -= end - t;
            }
            t = end;
        }
        None
    }

    /// The ms of waking hours between `from` and `to` (looked at for eight days at most).
    pub fn waking_ms(from: Timestamp, to: Timestamp, hours: u32, utc_offset_min: i32) -> i64 {
        let offset = i64::from(utc_offset_min) * 60_000;
        let (mut t, mut sum) = (from.millis(), 0);
        for _ in 0..HORIZON_HOURS {
            if t >= to.millis() {
                break;
            }
            let local = t + offset;
            let hour = (local.rem_euclid(DAY_MS) / HOUR_MS) as u32;
            let end = (t + (HOUR_MS - local.rem_euclid(HOUR_MS))).min(to.millis());
            if hours & (1 << hour) != 0 {
                sum += end - t;
            }
            t = end;
        }
        sum
    }

    /// As stored, to be read back at start.
    pub fn row(&self, elder_id: ElderId) -> ActivityRow {
        ActivityRow {
            elder_id,
            device_id: self.device.clone(),
            last_active: Timestamp(self.last_active),
            first_day: self.first_day,
            last_day: self.last_day,
            days: self.days.to_vec(),
        }
    }

    pub fn from_row(row: &ActivityRow) -> Self {
        let mut days = [0; DAYS];
        for (slot, bits) in days.iter_mut().zip(&row.days) {
            *slot = *bits & 0x00ff_ffff;
        }
        Self {
            last_active: row.last_active.millis(),
            device: row.device_id.clone(),
            first_day: row.first_day,
            last_day: row.last_day,
            days,
            open: None,
            queued: false,
            dirty: false,
            heard_until: 0,
        }
    }
}

/// One watched elder's activity as stored in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivityRow {
    pub elder_id: ElderId,
    pub device_id: DeviceId,
    pub last_active: Timestamp,
    pub first_day: i32,
    pub last_day: i32,
    /// [`DAYS`] bitmasks of hours, slot `day % DAYS`.
    pub days: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const CST: i32 = 480;

    /// 2025-11-02 00:00 in China, plus `h` hours.
    fn at(day: i64, h: f64) -> Timestamp {
        Timestamp(1_762_012_800_000 + day * DAY_MS + (h * HOUR_MS as f64) as i64)
    }

    fn dev() -> DeviceId {
        DeviceId::parse("d-1").unwrap()
    }

    #[test]
    fn days_and_hours_are_local() {
        assert_eq!(local_day_hour(at(0, 0.0).millis(), CST).1, 0);
        assert_eq!(local_day_hour(at(0, 23.5).millis(), CST).1, 23);
        let (d0, _) = local_day_hour(at(0, 1.0).millis(), CST);
        let (d1, h) = local_day_hour(at(1, 6.99).millis(), CST);
        assert_eq!((d1 - d0, h), (1, 6));
        assert_eq!(local_day_hour(at(0, 1.0).millis(), 0).1, 17, "17:00 UTC the day before");
    }

    #[test]
    fn only_waking_hours_count_towards_the_quiet_hours() {
        let fixed = ActivityPolicy::default().fixed_hours();
        assert_eq!(WakingHours { mask: fixed, learned_from_days: 0 }.describe(), "07-21");
        // Last seen 20:30: half an hour that evening, then 07:00-10:30 the next morning.
        assert_eq!(ElderActivity::inactive_at(at(0, 20.5), fixed, 4, CST), Some(at(1, 10.5)));
        // Within the day it is four hours on the clock.
        assert_eq!(ElderActivity::inactive_at(at(0, 9.25), fixed, 4, CST), Some(at(0, 13.25)));
        // Last seen at 02:00 (up in the night): counted from 07:00.
        assert_eq!(ElderActivity::inactive_at(at(0, 2.0), fixed, 4, CST), Some(at(0, 11.0)));
        assert_eq!(ElderActivity::inactive_at(at(0, 2.0), 0, 4, CST), None, "no waking hours: never");
    }

    #[test]
    fn a_late_riser_is_learned_within_the_days_set() {
        let policy = ActivityPolicy::default();
        let mut a = ElderActivity::new(dev(), at(0, 11.0), CST);
        // Up from 11 to 23 every day for a week.
        for day in 0..7 {
            for h in 11..23 {
                a.note(&dev(), at(day, f64::from(h) + 0.25), CST);
            }
        }
        let six = a.waking_hours(at(6, 12.0), &policy, CST);
        assert_eq!(six.learned_from_days, 0, "six whole days: still the fixed hours");
        let seven = a.waking_hours(at(7, 0.5), &policy, CST);
        assert_eq!(seven, WakingHours { mask: (11..23).fold(0, |m, h| m | 1 << h), learned_from_days: 7 });
        assert_eq!(seven.describe(), "11-23");
        // Last seen 22:50: 10 minutes, then 11:00-14:50 the next day.
        let last = at(6, 22.0 + 50.0 / 60.0);
        let due = ElderActivity::inactive_at(last, seven.mask, 4, CST).unwrap();
        assert_eq!(due, at(7, 14.0 + 50.0 / 60.0));
    }

    #[test]
    fn an_hour_is_usual_when_active_on_at_least_the_share_of_days() {
        let policy = ActivityPolicy { learn_days: 4, ..ActivityPolicy::default() };
        let mut a = ElderActivity::new(dev(), at(0, 8.0), CST);
        for day in 0..4 {
            a.note(&dev(), at(day, 8.5), CST);
            if day % 2 == 0 {
                a.note(&dev(), at(day, 15.5), CST); // two days of four: half
            }
            if day == 0 {
                a.note(&dev(), at(day, 3.5), CST); // one night of four
            }
        }
        let w = a.waking_hours(at(4, 1.0), &policy, CST);
        assert_eq!(w.mask, 1 << 8 | 1 << 15);
        assert_eq!(w.learned_from_days, 4);
    }

    #[test]
    fn days_with_nothing_are_counted_and_old_days_fall_out() {
        let policy = ActivityPolicy { learn_days: 2, ..ActivityPolicy::default() };
        let mut a = ElderActivity::new(dev(), at(0, 9.0), CST);
        a.note(&dev(), at(0, 9.5), CST);
        // Nothing for 40 days, then one morning: the first day is gone from the window.
        a.note(&dev(), at(40, 9.5), CST);
        let w = a.waking_hours(at(41, 1.0), &policy, CST);
        assert_eq!(w.learned_from_days, DAYS as u32);
        assert_eq!(w.mask, 0, "one active morning in 28 days is not a habit");
        assert_eq!(a.hours_on(a.first_day), 0);
    }

    #[test]
    fn a_row_round_trips() {
        let mut a = ElderActivity::new(dev(), at(0, 9.0), CST);
        a.note(&dev(), at(3, 9.5), CST);
        a.dirty = false;
        let row = a.row(ElderId::parse("e-1").unwrap());
        assert_eq!(ElderActivity::from_row(&row), a);
    }
}
