//! The scheduled welfare programme (see [`crate::programme`]): calls and visits fall due on
//! each elder's schedule and open as welfare checks; a dispatcher's outcome says what follows.
//!
//! Deadlines are a lazy queue of their own, like devices' and watched elders': an entry is
//! looked at when it comes up and put back at the elder's true next due time, at most
//! `max_opened_per_tick` tasks opened a tick.

use super::{Engine, Outbox};
use crate::ids::{DeviceId, ElderId, IncidentId, MessageId, Timestamp};
use crate::incident::*;
use crate::programme::{ElderProgramme, ProgrammeRow, TaskOutcome};
use std::cmp::Reverse;

impl Engine {
    /// An elder's programme, if they have a schedule.
    pub fn elder_programme(&self, elder: &ElderId) -> Option<&ElderProgramme> {
        self.programme.get(elder)
    }

    /// The open call and visit tasks of an elder.
    pub fn programme_tasks_of(&self, elder: &ElderId) -> (Option<&Incident>, Option<&Incident>) {
        let p = self.programme.get(elder);
        let get = |id: Option<IncidentId>| id.and_then(|id| self.open.get(&id));
        (get(p.and_then(|p| p.call_open)), get(p.and_then(|p| p.visit_open)))
    }

    /// Open tasks, and of them those overdue at `now` (open `overdue_after` past falling due:
    /// a task's `pressed_at` is when it fell due, which is earlier than when it opened if it
    /// fell due while the centre was down).
    pub fn programme_counts(&self, now: Timestamp) -> (usize, usize) {
        let overdue_after = self.policy.programme.overdue_after_ms;
        let (mut open, mut overdue) = (0, 0);
        for p in self.programme.values() {
            for id in [p.call_open, p.visit_open].into_iter().flatten() {
                open += 1;
                if self.open.get(&id).is_some_and(|i| i.pressed_at.plus_millis(overdue_after) <= now) {
                    overdue += 1;
                }
            }
        }
        (open, overdue)
    }

    /// The elders with a schedule, each with the device tasks are raised on (the first by
    /// id): one pass over the devices, at start.
    pub(super) fn enrol_programme(&mut self) {
        for e in self.elders.values().filter(|e| !e.profile.schedule.is_empty()) {
            self.programme.entry(e.id.clone()).or_default();
        }
        for (id, d) in &self.devices {
            if let Some(p) = self.programme.get_mut(&d.elder_id) {
                if p.device.as_ref().is_none_or(|first| id < first) {
                    p.device = Some(id.clone());
                }
            }
        }
    }

    /// Takes back what a snapshot stored, at start (elders with no schedule now are left out).
    pub fn restore_programme(&mut self, rows: &[ProgrammeRow]) {
        for row in rows {
            if let Some(p) = self.programme.get_mut(&row.elder_id) {
                let device = p.device.take();
                *p = ElderProgramme { device, ..ElderProgramme::from_row(row) };
            }
        }
    }

    /// What changed since the last call, to be stored with the devices' health.
    pub fn take_programme_changes(&mut self) -> Vec<ProgrammeRow> {
        let dirty = std::mem::take(&mut self.programme_dirty);
        let mut rows = Vec::with_capacity(dirty.len());
        for id in dirty {
            let Some(p) = self.programme.get_mut(&id) else { continue };
            if p.dirty {
                p.dirty = false;
                rows.push(p.row(id));
            }
        }
        rows
    }

    /// Queues every elder on the programme; with [`Engine::start_health`].
    /// Every elder at their true next due time, heaped in one go (linear), so that the first
    /// ticks do not work through every elder on the programme.
    pub(super) fn start_programme(&mut self) {
        let due: Vec<_> = self
            .programme
            .keys()
            .filter_map(|id| self.programme_next(id).map(|at| Reverse((at, id.clone()))))
            .collect();
        for Reverse((at, id)) in &due {
            self.programme.get_mut(id).expect("enrolled").queued = Some(*at);
        }
        self.programme_due = due.into();
    }

    /// When the elder's next task falls due (the earlier of call and visit, of those not open).
    fn programme_next(&self, elder: &ElderId) -> Option<Timestamp> {
        let p = self.programme.get(elder)?;
        let schedule = self.elders.get(elder)?.profile.schedule;
        let start = self.health_floor;
        let call = p.call_due(elder, schedule.call_every_days, start).filter(|_| p.call_open.is_none());
        let visit = p.visit_due(elder, schedule.visit_every_days, start).filter(|_| p.visit_open.is_none());
        call.into_iter().chain(visit).min()
    }

    fn queue_programme(&mut self, elder: &ElderId) {
        if self.health_floor == Timestamp(0) {
            return; // not started: `start_programme` queues everybody
        }
        let Some(at) = self.programme_next(elder) else { return };
        let p = self.programme.get_mut(elder).expect("enrolled");
        // Queued for now or sooner already: that entry will do. Queued for later (a retry
        // sooner than the next visit): queued again for now, and the later entry is stale.
        if p.queued.is_some_and(|q| q <= at) {
            return;
        }
        p.queued = Some(at);
        self.programme_due.push(Reverse((at, elder.clone())));
    }

    fn programme_changed(&mut self, elder: &ElderId) {
        if let Some(p) = self.programme.get_mut(elder) {
            if !p.dirty {
                p.dirty = true;
                self.programme_dirty.push(elder.clone());
            }
        }
    }

    /// Opens the tasks that fell due, at most `max_opened_per_tick`.
    pub(super) fn expire_programme(&mut self, now: Timestamp, out: &mut Outbox) {
        let max = self.policy.programme.max_opened_per_tick;
        let (mut opened, mut looked) = (0, 0);
        while opened < max && looked < 16 * max {
            looked += 1;
            let Some(Reverse((due, _))) = self.programme_due.peek() else { break };
            if *due > now {
                break;
            }
            let Reverse((due, elder)) = self.programme_due.pop().expect("peeked");
            let Some(p) = self.programme.get_mut(&elder) else { continue };
            if p.queued != Some(due) {
                continue; // stale: queued again for another time since
            }
            p.queued = None;
            if !self.policy.programme.enabled {
                continue;
            }
            let Some(next) = self.programme_next(&elder) else { continue }; // both open, or no schedule
            if next > now {
                let p = self.programme.get_mut(&elder).expect("enrolled");
                p.queued = Some(next);
                self.programme_due.push(Reverse((next, elder)));
                continue;
            }
            let p = &self.programme[&elder];
            let Some(device) = p.device.clone() else { continue }; // queued again when a device comes
            let schedule = self.elders[&elder].profile.schedule;
            let start = self.health_floor;
            let due = |t: Option<Timestamp>| t.filter(|t| *t <= now);
            let call_due = due(p.call_due(&elder, schedule.call_every_days, start)).filter(|_| p.call_open.is_none());
            let visit_due =
                due(p.visit_due(&elder, schedule.visit_every_days, start)).filter(|_| p.visit_open.is_none());
            if let Some(since) = call_due {
                self.open_task(&elder, &device, WelfareReason::ScheduledCall, None, since, now, out);
                opened += 1;
            }
            if let Some(since) = visit_due {
                self.open_task(&elder, &device, WelfareReason::ScheduledVisit, None, since, now, out);
                opened += 1;
            }
            self.queue_programme(&elder);
        }
    }

    /// Opens a task that fell due at `since` (its `pressed_at`, from which it is overdue).
    #[allow(clippy::too_many_arguments)]
    fn open_task(
        &mut self,
        elder: &ElderId,
        device: &DeviceId,
        reason: WelfareReason,
        note: Option<String>,
        since: Timestamp,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        let Some(id) = self.open_welfare_since(device, reason, since, now, out) else { return };
        let p = self.programme.get_mut(elder).expect("enrolled");
        match reason {
            WelfareReason::ScheduledVisit => p.visit_open = Some(id),
            _ => p.call_open = Some(id),
        }
        if let Some(text) = note {
            self.record(id, Change::Note { text }, Actor::Engine, now, out);
            self.after_change(id, out);
        }
    }

    /// A task ended (however: a dispatcher, a device retired): its slot is free again.
    pub(super) fn programme_task_closed(&mut self, elder: &ElderId, id: IncidentId) {
        let Some(p) = self.programme.get_mut(elder) else { return };
        if p.call_open == Some(id) {
            p.call_open = None;
        }
        if p.visit_open == Some(id) {
            p.visit_open = None;
        }
        self.queue_programme(elder);
    }

    /// A dispatcher ended a task with `outcome`: done, tried again, a visit after the last
    /// unanswered call, and a service request or an emergency where the elder needs one.
    pub(super) fn programme_task_done(
        &mut self,
        elder: &ElderId,
        device: &DeviceId,
        reason: WelfareReason,
        outcome: &str,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        let policy = self.policy.programme.clone();
        let Some(p) = self.programme.get_mut(elder) else { return };
        let found = TaskOutcome::of(outcome);
        let mut visit_now = None;
        match (reason, found) {
            (WelfareReason::ScheduledCall, TaskOutcome::NoAnswer) => {
                p.call_tries = p.call_tries.saturating_add(1);
                if p.call_tries >= policy.max_tries {
                    // The round is over: somebody goes round instead.
                    p.call_tries = 0;
                    p.call_retry_at = 0;
                    p.call_done = now.millis();
                    if p.visit_open.is_none() {
                        visit_now =
                            Some(format!("{} scheduled calls went unanswered: a visit instead.", policy.max_tries));
                    }
                } else {
                    p.call_retry_at = now.millis() + policy.retry_after_ms;
                }
            }
            (WelfareReason::ScheduledCall, _) => {
                p.call_tries = 0;
                p.call_retry_at = 0;
                p.call_done = now.millis();
            }
            (_, TaskOutcome::NoAnswer) => p.visit_retry_at = now.millis() + policy.retry_after_ms,
            _ => {
                p.visit_retry_at = 0;
                p.visit_done = now.millis();
            }
        }
        let task_device = p.device.clone();
        self.programme_changed(elder);
        if let (Some(note), Some(d)) = (visit_now, task_device) {
            self.open_task(elder, &d, WelfareReason::ScheduledVisit, Some(note), now, now, out);
        }
        let kind = match found {
            TaskOutcome::NeedsHelp => IncidentKind::Sos,
            TaskOutcome::NeedsService => IncidentKind::Service,
            _ => {
                self.queue_programme(elder);
                return;
            }
        };
        // What the call found opens as if the elder had pressed (an emergency goes up the
        // ladder); a device with an incident open already has somebody on it.
        if self.devices.contains_key(device) && self.incidents_of(device).open.is_none() {
            let home = self.elders[elder].home;
            let location = Location { at: home, source: LocationSource::Home, accuracy_m: None, fix_rejected: None };
            let next = self.counters_of(self.zone_of_elder(elder)).seq + 1;
            let msg = MessageId::parse(format!("programme-{next}")).expect("a valid id");
            let problem = Some(format!("found on a {}: {outcome}", reason.as_str()));
            self.open_incident(device, elder.clone(), kind, &msg, location, now, problem, None, now, out);
        }
        self.queue_programme(elder);
    }

    /// The ledger changed an elder: on the programme (or off it) as their schedule says.
    /// `new`: the elder has just joined the ledger, so no device is theirs yet (a device
    /// must name a live elder), and the devices are not searched: an import of 150,000
    /// scheduled elders would otherwise go through every device once for each. An elder
    /// already in the ledger who joins the programme is looked for among all devices, once.
    pub(super) fn elder_schedule_changed(&mut self, elder: &ElderId, new: bool, now: Timestamp, out: &mut Outbox) {
        let on = self.elders.get(elder).is_some_and(|e| !e.profile.schedule.is_empty());
        if !on {
            if let Some(p) = self.programme.remove(elder) {
                for id in [p.call_open, p.visit_open].into_iter().flatten() {
                    self.end_welfare(id, "the elder left the programme", false, now, out);
                }
            }
            return;
        }
        if !self.programme.contains_key(elder) {
            let first = if new {
                None
            } else {
                self.devices.iter().filter(|(_, d)| &d.elder_id == elder).map(|(id, _)| id).min().cloned()
            };
            self.programme.insert(elder.clone(), ElderProgramme { device: first, ..ElderProgramme::default() });
        }
        self.queue_programme(elder);
    }

    /// A device joined the ledger: an elder on the programme with no device has one now.
    pub(super) fn programme_device_added(&mut self, device: &DeviceId) {
        let Some(elder) = self.devices.get(device).map(|d| d.elder_id.clone()) else { return };
        let Some(p) = self.programme.get_mut(&elder) else { return };
        if p.device.is_none() {
            p.device = Some(device.clone());
            self.queue_programme(&elder);
        }
    }

    /// A device left: tasks raised on it end (they open again on the elder's next device).
    pub(super) fn programme_device_retired(&mut self, device: &DeviceId, now: Timestamp, out: &mut Outbox) {
        let Some(elder) = self.devices.get(device).map(|d| d.elder_id.clone()) else { return };
        let Some(p) = self.programme.get(&elder) else { return };
        if p.device.as_ref() != Some(device) {
            return;
        }
        let open: Vec<IncidentId> = [p.call_open, p.visit_open].into_iter().flatten().collect();
        for id in open {
            self.end_welfare(id, "the device was retired", false, now, out);
        }
        let next =
            self.devices.iter().filter(|(id, d)| d.elder_id == elder && *id != device).map(|(id, _)| id).min().cloned();
        if let Some(p) = self.programme.get_mut(&elder) {
            p.device = next;
        }
        self.queue_programme(&elder);
    }

    /// When the next elder on the programme is due to be looked at.
    pub(super) fn next_programme_deadline(&self) -> Option<Timestamp> {
        self.programme_due.peek().map(|Reverse((t, _))| *t)
    }
}
