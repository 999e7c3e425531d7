//! Abnormal inactivity (see [`crate::activity`]): elders living alone whose devices report
//! movement are watched; too many quiet waking hours open a welfare check of reason
//! `inactive`, which the next activity closes.
//!
//! The deadlines are a lazy queue of their own, like devices' (an entry is looked at when it
//! comes up and put back at the elder's true deadline), worked through at most
//! `max_overdue_per_tick` at a time, so welfare work never holds up an emergency.

use super::{Engine, Outbox};
use crate::activity::{local_day_hour, ActivityRow, ElderActivity};
use crate::ids::{DeviceId, ElderId, IncidentId, Timestamp};
use crate::incident::*;
use std::cmp::Reverse;

/// How long the watch waits while somebody is already dealing with the elder (an open
/// emergency) or the device that would show activity cannot (it is offline).
const BUSY_RECHECK_MS: i64 = 3_600_000;

impl Engine {
    /// An elder's watch, if they are watched.
    pub fn elder_activity(&self, elder: &ElderId) -> Option<&ElderActivity> {
        self.activity.get(elder)
    }

    /// The welfare check open for an elder's inactivity, if any.
    pub fn inactivity_check_of(&self, elder: &ElderId) -> Option<&Incident> {
        self.activity.get(elder).and_then(|a| a.open).and_then(|id| self.open.get(&id))
    }

    /// Elders watched for inactivity.
    pub fn watched_count(&self) -> usize {
        self.activity.len()
    }

    /// What changed since the last call, to be stored with the devices' health.
    pub fn take_activity_changes(&mut self) -> Vec<ActivityRow> {
        let dirty = std::mem::take(&mut self.activity_dirty);
        let mut rows = Vec::with_capacity(dirty.len());
        for id in dirty {
            let Some(a) = self.activity.get_mut(&id) else { continue };
            if a.dirty {
                a.dirty = false;
                rows.push(a.row(id));
            }
        }
        rows
    }

    /// Takes back what a snapshot stored, at start (elders no longer living alone, or gone
    /// from the ledger, are left out).
    pub fn restore_activity(&mut self, rows: &[ActivityRow]) {
        for row in rows {
            let alone = self.elders.get(&row.elder_id).is_some_and(|e| e.profile.lives_alone == Some(true));
            if alone {
                self.activity.insert(row.elder_id.clone(), ElderActivity::from_row(row));
            }
        }
    }

    /// Puts every watched elder in the queue of deadlines; with [`Engine::start_health`].
    /// The quiet heard before the start counts: up to when the centre last heard the elder's
    /// device (its health as restored), which is before `health_floor`.
    pub(super) fn start_activity(&mut self) {
        let mut due = Vec::with_capacity(self.activity.len());
        let floor = self.health_floor.millis();
        for (id, a) in self.activity.iter_mut() {
            let heard = self.devices.get(&a.device).map_or(0, |d| d.health.last_seen);
            a.heard_until = if heard < floor { heard } else { 0 };
            a.queued = true;
            // Put back at once: the true deadline is worked out when it comes up.
            due.push(Reverse((Timestamp(a.last_active), id.clone())));
        }
        self.activity_due = due.into();
    }

    /// A message from `device`: if it shows the elder up and about, their watch notes it
    /// (starting one for an elder living alone whose device reports movement) and a check
    /// open for their inactivity ends.
    pub(super) fn elder_heard(
        &mut self,
        device: &DeviceId,
        event: Option<EventType>,
        report: &HealthReport,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        if !self.policy.activity.enabled {
            return;
        }
        let movement = event == Some(EventType::Motion) || report.active == Some(true);
        if !movement && !event.is_some_and(EventType::is_activity) {
            return;
        }
        let Some(elder_id) = self.devices.get(device).map(|d| d.elder_id.clone()) else { return };
        let offset = self.policy.utc_offset_min;
        let watching = self.health_floor != Timestamp(0);
        let a = match self.activity.get_mut(&elder_id) {
            Some(a) => a,
            None => {
                let alone = self.elders.get(&elder_id).is_some_and(|e| e.profile.lives_alone == Some(true));
                if !movement || !alone {
                    return;
                }
                self.activity.entry(elder_id.clone()).or_insert(ElderActivity::new(device.clone(), now, offset))
            }
        };
        let was_dirty = a.dirty;
        a.note(device, now, offset);
        let open = a.open;
        let requeue = watching && !a.queued;
        if requeue {
            a.queued = true;
            self.activity_due.push(Reverse((now, elder_id.clone())));
        }
        if !was_dirty {
            self.activity_dirty.push(elder_id.clone());
        }
        if let Some(id) = open {
            self.end_welfare(id, "the elder was active again", true, now, out);
        }
    }

    /// Elders quiet past their deadline get a welfare check, at most `max_overdue_per_tick`
    /// a tick (and at most 16 times as many entries looked at).
    pub(super) fn expire_inactive(&mut self, now: Timestamp, out: &mut Outbox) {
        let max = self.policy.health.max_overdue_per_tick;
        let (mut opened, mut looked) = (0, 0);
        while opened < max && looked < 16 * max {
            looked += 1;
            let Some(Reverse((due, _))) = self.activity_due.peek() else { break };
            if *due > now {
                break;
            }
            let Reverse((_, elder)) = self.activity_due.pop().expect("peeked");
            let Some(a) = self.activity.get_mut(&elder) else { continue }; // no longer watched
            a.queued = false;
            if a.open.is_some() || !self.policy.activity.enabled {
                continue; // the next activity puts it back
            }
            let Some(at) = self.inactive_at(&elder, now) else { continue };
            let device = self.activity[&elder].device.clone();
            let busy = match self.devices.get(&device) {
                None => continue, // retired: the next activity from another device puts it back
                Some(d) => d.health.offline || self.incidents_of(&device).open.is_some(),
            };
            let at = if busy && at <= now { now.plus_millis(BUSY_RECHECK_MS) } else { at };
            if at > now {
                let a = self.activity.get_mut(&elder).expect("watched");
                a.queued = true;
                self.activity_due.push(Reverse((at, elder)));
                continue;
            }
            let note = self.inactivity_note(&elder, now);
            if let Some(id) = self.open_welfare(&device, WelfareReason::Inactive, now, out) {
                self.activity.get_mut(&elder).expect("watched").open = Some(id);
                self.record(id, Change::Note { text: note }, Actor::Engine, now, out);
                self.after_change(id, out);
            }
            opened += 1;
        }
    }

    /// When the elder's quiet will have lasted too long, counted from the later of their
    /// last activity and the moment the centre could last not hear devices. After a restart
    /// the quiet heard before it counts too (from the last activity until the centre last
    /// heard the elder's device), and only the time the centre was down is left out: an elder
    /// quiet all morning is not given a fresh four hours because the centre restarted at noon.
    fn inactive_at(&self, elder: &ElderId, now: Timestamp) -> Option<Timestamp> {
        let a = self.activity.get(elder)?;
        let policy = &self.policy.activity;
        let offset = self.policy.utc_offset_min;
        let hours = a.waking_hours(now, policy, offset);
        let floor = self.health_floor.millis();
        if a.last_active < a.heard_until && a.heard_until <= floor {
            let need = i64::from(policy.quiet_hours.max(1)) * 3_600_000;
            let heard =
                ElderActivity::waking_ms(Timestamp(a.last_active), Timestamp(a.heard_until), hours.mask, offset);
            if heard >= need {
                return Some(Timestamp(floor));
            }
            return ElderActivity::quiet_for(Timestamp(floor), hours.mask, need - heard, offset);
        }
        let from = Timestamp(a.last_active.max(floor));
        ElderActivity::inactive_at(from, hours.mask, policy.quiet_hours, offset)
    }

    /// What a dispatcher reads on the check: the rule that fired, and how the hours were found.
    fn inactivity_note(&self, elder: &ElderId, now: Timestamp) -> String {
        let a = &self.activity[elder];
        let policy = &self.policy.activity;
        let hours = a.waking_hours(now, policy, self.policy.utc_offset_min);
        let how = match hours.learned_from_days {
            0 => format!("the centre's fixed hours until {} days are watched", policy.learn_days),
            n => format!("the hours with activity on at least {:.0}% of the last {n} days", policy.usual_share * 100.0),
        };
        let local = a.last_active + i64::from(self.policy.utc_offset_min) * 60_000;
        let (day_now, _) = local_day_hour(now.millis(), self.policy.utc_offset_min);
        let (day_last, _) = local_day_hour(a.last_active, self.policy.utc_offset_min);
        let ago = match day_now - day_last {
            0 => String::new(),
            1 => " yesterday".to_string(),
            n => format!(" {n} days ago"),
        };
        format!(
            "No activity for {} waking hours. Waking hours {} ({how}). Last activity {:02}:{:02}{ago}, from device {}.",
            policy.quiet_hours,
            hours.describe(),
            local.rem_euclid(86_400_000) / 3_600_000,
            local.rem_euclid(3_600_000) / 60_000,
            a.device,
        )
    }

    /// An elder no longer watched (they no longer live alone, or left the ledger): their
    /// check ends.
    pub(super) fn forget_activity(&mut self, elder: &ElderId, why: &str, now: Timestamp, out: &mut Outbox) {
        if let Some(a) = self.activity.remove(elder) {
            if let Some(id) = a.open {
                self.end_welfare(id, why, false, now, out);
            }
        }
    }

    /// A device retired: a check for inactivity raised on it ends with it.
    pub(super) fn device_retired_from_activity(&mut self, device: &DeviceId, now: Timestamp, out: &mut Outbox) {
        let Some(elder) = self.devices.get(device).map(|d| d.elder_id.clone()) else { return };
        let open = self.activity.get(&elder).and_then(|a| a.open);
        let on_it = open.and_then(|id| self.open.get(&id)).is_some_and(|i| &i.device_id == device);
        if let (true, Some(id)) = (on_it, open) {
            self.end_welfare(id, "the device was retired", false, now, out);
        }
    }

    /// A check for inactivity ended (by the elder, a dispatcher, or the engine): the quiet
    /// counts again from its end, so that a check a dispatcher closed does not reopen at once.
    pub(super) fn inactivity_check_ended(&mut self, elder: &ElderId, id: IncidentId, at: Timestamp) {
        let watching = self.health_floor != Timestamp(0);
        let Some(a) = self.activity.get_mut(elder) else { return };
        if a.open != Some(id) {
            return;
        }
        a.open = None;
        a.last_active = a.last_active.max(at.millis());
        if !a.dirty {
            a.dirty = true;
            self.activity_dirty.push(elder.clone());
        }
        if watching && !a.queued {
            a.queued = true;
            self.activity_due.push(Reverse((at, elder.clone())));
        }
    }

    /// When the next watched elder is due to be looked at.
    pub(super) fn next_activity_deadline(&self) -> Option<Timestamp> {
        self.activity_due.peek().map(|Reverse((t, _))| *t)
    }
}
