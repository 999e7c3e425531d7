//! Device health (see [`crate::health`]): every message a device sends says it is alive;
//! heartbeats add its battery and signal. A device not heard within its window goes offline
//! and a welfare check opens, which closes by itself when the device is heard again. A low
//! battery opens one too, closed when the device is charged.
//!
//! Welfare checks are incidents of kind `welfare`, in a slot of the device's own (an
//! emergency from the same device opens beside it, never inside it). They never go up the
//! ladder and are never reminded over the emergencies. The deadlines are a queue of their
//! own, worked through at most `max_overdue_per_tick` at a time.

use super::{Engine, Outbox};
use crate::health::{DeviceHealth, HealthRow};
use crate::ids::{DeviceId, IncidentId, MessageId, Timestamp};
use crate::incident::*;
use std::cmp::Reverse;

impl Engine {
    /// Starts watching for silent devices at `now`: every device has a full window from now
    /// (what was heard before a restart counts only where it is later). Call once, when the
    /// engine starts taking messages.
    pub fn start_health(&mut self, now: Timestamp) {
        self.health_floor = now;
        self.start_activity();
        self.start_programme();
        if !self.policy.health.enabled {
            return;
        }
        // Every device's true deadline, heaped in one go (linear): a million devices take a
        // fraction of a second here, where pushing them due at once cost the first tick a
        // million pops and pushes, seconds that the first presses waited behind.
        let (policy, names) = (&self.policy.health, &self.model_names);
        let mut due = Vec::with_capacity(self.devices.len());
        for (id, d) in self.devices.iter_mut() {
            if d.health.offline {
                continue;
            }
            d.health.queued = true;
            let from = d.health.last_seen.max(now.millis());
            let window = policy.model(Self::model_name(names, d.model)).window_ms(d.health.interval_s);
            due.push(Reverse((Timestamp(from).plus_millis(window), id.clone())));
        }
        self.health_due = due.into();
    }

    /// The engine cannot hear any device now (its broker link is down): silence up to now
    /// is the centre's, not the devices'.
    pub fn devices_unheard(&mut self, now: Timestamp) {
        self.health_floor = self.health_floor.max(now);
    }

    /// A device's health, as the engine knows it now.
    pub fn device_health(&self, device: &DeviceId) -> Option<&DeviceHealth> {
        self.devices.get(device).map(|d| &d.health)
    }

    /// The welfare check open for a device, if any.
    pub fn welfare_of(&self, device: &DeviceId) -> Option<&Incident> {
        self.incidents_of(device).welfare.and_then(|id| self.open.get(&id))
    }

    /// Devices offline now.
    pub fn offline_count(&self) -> usize {
        self.devices.values().filter(|d| d.health.offline).count()
    }

    /// What changed since the last call, to be stored: the snapshot of every device heard
    /// (or gone offline) since.
    pub fn take_health_changes(&mut self) -> Vec<HealthRow> {
        let dirty = std::mem::take(&mut self.health_dirty);
        let mut rows = Vec::with_capacity(dirty.len());
        for id in dirty {
            let Some(d) = self.devices.get_mut(&id) else { continue };
            if d.health.dirty {
                d.health.dirty = false;
                rows.push(d.health.row(id));
            }
        }
        rows
    }

    /// Everything a health snapshot writes: [`Engine::take_health_changes`] and
    /// [`Engine::take_activity_changes`].
    pub fn take_snapshot(&mut self) -> crate::health::HealthSnapshot {
        crate::health::HealthSnapshot {
            devices: self.take_health_changes(),
            elders: self.take_activity_changes(),
            programme: self.take_programme_changes(),
        }
    }

    /// Takes back what a snapshot stored, at start.
    pub fn restore_health(&mut self, rows: &[HealthRow]) {
        for row in rows {
            if let Some(d) = self.devices.get_mut(&row.device_id) {
                d.health = DeviceHealth::from_row(row);
            }
        }
    }

    fn mark_dirty(&mut self, device: &DeviceId) {
        if let Some(d) = self.devices.get_mut(device) {
            if !d.health.dirty {
                d.health.dirty = true;
                self.health_dirty.push(device.clone());
            }
        }
    }

    /// When the device's silence makes it offline, from what is known now.
    fn offline_at(&self, device: &DeviceId) -> Option<Timestamp> {
        let d = self.devices.get(device)?;
        let model = self.policy.health.model(Self::model_name(&self.model_names, d.model));
        let from = d.health.last_seen.max(self.health_floor.millis());
        Some(Timestamp(from).plus_millis(model.window_ms(d.health.interval_s)))
    }

    /// Every message from a device: it is alive, and what it says of itself is kept. A
    /// device heard again ends a check for its silence; its battery opens or ends one.
    pub(super) fn device_heard(
        &mut self,
        device: &DeviceId,
        event: Option<EventType>,
        report: HealthReport,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        let (min_s, max_s) = crate::health::HealthPolicy::INTERVAL_RANGE_S;
        let low_pct = self.policy.health.low_battery_pct;
        let charged_pct = self.policy.health.charged_pct;
        let enabled = self.policy.health.enabled;
        // Deadlines are kept only once the engine watches for silence (`start_health`).
        let watching = enabled && self.health_floor != Timestamp(0);
        let Some(d) = self.devices.get_mut(device) else { return };
        let h = &mut d.health;
        h.last_seen = h.last_seen.max(now.millis());
        if let Some(pct) = report.battery_pct {
            h.battery_pct = Some(pct.min(100));
        }
        if report.rssi.is_some() {
            h.rssi = report.rssi;
        }
        if report.charging.is_some() {
            h.charging = report.charging;
        }
        if let Some(s) = report.interval_s {
            h.interval_s = s.clamp(min_s, max_s);
        }
        match event {
            Some(EventType::Worn) => h.worn = Some(true),
            Some(EventType::NotWorn) => h.worn = Some(false),
            _ => {}
        }
        let switched_off = event == Some(EventType::PowerOff);
        h.offline = switched_off;
        let requeue = !switched_off && !h.queued && watching;
        if requeue {
            h.queued = true;
        }
        let low = event == Some(EventType::LowBattery)
            || (h.battery_pct.is_some_and(|p| p <= low_pct) && h.charging != Some(true));
        let charged = h.charging == Some(true) || h.battery_pct.is_some_and(|p| p >= charged_pct);
        let welfare = self
            .device_incidents
            .get(device)
            .and_then(|d| d.welfare)
            .and_then(|id| self.open.get(&id))
            .and_then(|i| i.welfare.map(|r| (i.id, r)));
        if requeue {
            let at = self.offline_at(device).expect("known");
            self.health_due.push(Reverse((at, device.clone())));
        }
        self.mark_dirty(device);
        self.elder_heard(device, event, &report, now, out);
        if !enabled {
            return;
        }
        // What was open for the device and no longer holds ends first.
        if let Some((id, reason)) = welfare {
            let over = match reason {
                WelfareReason::DeviceOffline | WelfareReason::PowerOff => !switched_off,
                WelfareReason::LowBattery => charged || switched_off,
                // Kept by the elder's watch or programme, not here.
                WelfareReason::Inactive | WelfareReason::ScheduledCall | WelfareReason::ScheduledVisit => false,
            };
            if over {
                let outcome = match (reason, switched_off) {
                    (WelfareReason::LowBattery, true) => "superseded: the device was switched off",
                    (WelfareReason::LowBattery, false) => "the device was charged",
                    _ => "the device was heard again",
                };
                self.end_welfare(id, outcome, !(reason == WelfareReason::LowBattery && switched_off), now, out);
            }
        }
        let open = self.incidents_of(device).welfare.is_some();
        if switched_off && !open {
            self.open_welfare(device, WelfareReason::PowerOff, now, out);
        } else if low && !charged && !open {
            self.open_welfare(device, WelfareReason::LowBattery, now, out);
        }
    }

    /// Devices whose window has passed go offline, at most `max_overdue_per_tick` of them
    /// (and at most 16 times as many entries looked at) a tick.
    pub(super) fn expire_devices(&mut self, now: Timestamp, out: &mut Outbox) {
        let mut opened = 0;
        // Entries looked at, put back or not: bounded too, so that no tick is long.
        let mut looked = 0;
        let max = self.policy.health.max_overdue_per_tick;
        while opened < max && looked < 16 * max {
            looked += 1;
            let Some(Reverse((due, _))) = self.health_due.peek() else { break };
            if *due > now {
                break;
            }
            let Reverse((_, device)) = self.health_due.pop().expect("peeked");
            let Some(d) = self.devices.get_mut(&device) else { continue }; // retired since
            d.health.queued = false;
            if d.health.offline || !self.policy.health.enabled {
                continue;
            }
            let at = self.offline_at(&device).expect("known");
            if at > now {
                self.devices.get_mut(&device).expect("known").health.queued = true;
                self.health_due.push(Reverse((at, device)));
                continue;
            }
            self.devices.get_mut(&device).expect("known").health.offline = true;
            self.mark_dirty(&device);
            let welfare = self.welfare_of(&device).and_then(|i| i.welfare.map(|r| (i.id, r)));
            match welfare {
                Some((_, reason)) if reason.is_silence() => {}
                Some((id, _)) => {
                    // A low battery that went silent: the device is flat now.
                    self.end_welfare(id, "superseded: the device went silent", false, now, out);
                    self.open_welfare(&device, WelfareReason::DeviceOffline, now, out);
                }
                None => {
                    self.open_welfare(&device, WelfareReason::DeviceOffline, now, out);
                }
            }
            opened += 1;
        }
    }

    /// A device enrolled while the engine runs is watched from now.
    pub(super) fn watch_new_device(&mut self, device: &DeviceId) {
        if self.health_floor == Timestamp(0) || !self.policy.health.enabled {
            return; // not started yet: `start_health` queues every device
        }
        let Some(d) = self.devices.get_mut(device) else { return };
        d.health.queued = true;
        d.health.last_seen = d.health.last_seen.max(self.health_floor.millis());
        let at = self.offline_at(device).expect("known");
        self.health_due.push(Reverse((at, device.clone())));
    }

    /// A device retired: its welfare check ends (nobody need phone about a device that is
    /// gone); its queue entry is dropped when it comes up.
    pub(super) fn forget_device_health(&mut self, device: &DeviceId, now: Timestamp, out: &mut Outbox) {
        if let Some(id) = self.incidents_of(device).welfare {
            self.end_welfare(id, "the device was retired", false, now, out);
        }
        self.device_retired_from_activity(device, now, out);
        self.programme_device_retired(device, now, out);
    }

    /// When the next device is due to be checked.
    pub(super) fn next_health_deadline(&self) -> Option<Timestamp> {
        self.health_due.peek().map(|Reverse((t, _))| *t)
    }

    /// Opens a welfare check for `device`, logged as the engine's, and tells the family
    /// (the first contact who takes device news).
    /// A check for the elder's inactivity is kept by the elder's watch, not in the device's
    /// slot (the device may go silent or run flat beside it).
    pub(super) fn open_welfare(
        &mut self,
        device: &DeviceId,
        reason: WelfareReason,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Option<IncidentId> {
        self.open_welfare_since(device, reason, now, now, out)
    }

    /// As [`Engine::open_welfare`], for a need that arose at `since` (a scheduled call that
    /// fell due while the centre was down): the check's `pressed_at`.
    pub(super) fn open_welfare_since(
        &mut self,
        device: &DeviceId,
        reason: WelfareReason,
        since: Timestamp,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Option<IncidentId> {
        let d = self.devices.get(device)?;
        let elder = self.elders.get(&d.elder_id)?;
        let elder_id = elder.id.clone();
        let location = Location { at: elder.home, source: LocationSource::Home, accuracy_m: None, fix_rejected: None };
        let zone = self.zone_of_elder(&elder_id);
        let id = self.next_incident_id(zone);
        let msg_id = MessageId::parse(format!("welfare-{}", id.0)).expect("a valid id");
        let opened = IncidentEvent {
            seq: self.next_seq(zone),
            incident_id: id,
            at: now,
            actor: Actor::Engine,
            change: Change::Opened {
                kind: IncidentKind::Welfare,
                msg_id,
                location,
                pressed_at: since.min(now),
                welfare: Some(reason),
            },
        };
        let incident = Incident::open(&opened, device.clone(), elder_id, None, &self.policy).expect("it opens");
        self.open.insert(id, incident);
        let notice = self.notice_for(id, &opened.change);
        out.events.push(opened);
        if reason.is_device() && self.devices.contains_key(device) {
            self.device_incidents.entry(device.clone()).or_default().welfare = Some(id);
        }
        if let Some(notice) = notice {
            self.tell_family(id, notice, now, out);
        }
        if let Some(s) = self.matcher.nearest_station(location.at) {
            let change = Change::NearestStation { station_id: s.id, distance_m: s.distance_m };
            self.record(id, change, Actor::Engine, now, out);
        }
        self.after_change(id, out);
        Some(id)
    }

    /// The engine ends a welfare check that no longer holds, saying why; the contacts told of
    /// it hear that the device is back when `tell` (not when the check only gives way to a
    /// worse one).
    pub(super) fn end_welfare(&mut self, id: IncidentId, outcome: &str, tell: bool, now: Timestamp, out: &mut Outbox) {
        let reason = self.open[&id].welfare.unwrap_or(WelfareReason::DeviceOffline);
        if tell {
            self.tell_family(id, crate::family::Notice::DeviceBack { reason }, now, out);
        }
        // Whoever a dispatcher sent round is free again.
        self.resolve(id, outcome.to_string(), Actor::Engine, now, out);
        // Shown resolved, then closed: the states a console and the record go through.
        self.emit(id, out);
        self.record(id, Change::Closed { outcome: outcome.to_string() }, Actor::Engine, now, out);
        self.after_change(id, out);
    }
}
