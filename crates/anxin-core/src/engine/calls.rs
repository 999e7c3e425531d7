//! Calls to the hotline (see [`crate::telephony`]): who is calling, the incident a call rings
//! on, and its answer and end on that incident's timeline.

use super::{Engine, Outbox};
use crate::ids::{DeviceId, ElderId, IncidentId, MessageId, Timestamp};
use crate::incident::*;
use crate::telephony::{number_key, CallEvent, CallOutcome, Caller, CallerMatch, CALLER_DEVICE_PREFIX, WITHHELD};
use std::collections::HashMap;

/// The engine's side of the telephones.
#[derive(Debug, Default)]
pub(crate) struct Telephony {
    /// The ledger's numbers ([`number_key`]): devices' SIMs, and elders' own phones.
    pub(crate) numbers: HashMap<Box<str>, Caller>,
    /// Each device's SIM number as the ledger wrote it (devices with one only).
    pub(crate) sims: HashMap<DeviceId, Box<str>>,
    /// Calls not heard to end, by call id, and the incident each rings on.
    pub(crate) live: HashMap<String, IncidentId>,
    /// The open incident of each caller with no device in the ledger (`call:<number>`).
    pub(crate) by_caller: HashMap<DeviceId, IncidentId>,
}

impl Engine {
    /// Takes in one event of a call to the hotline.
    pub fn handle_call(&mut self, event: CallEvent, now: Timestamp, out: &mut Outbox) -> CallOutcome {
        match event {
            CallEvent::Ringing { call_id, from, to } => self.call_rings(call_id, from, to, now, out),
            CallEvent::Answered { call_id, by } => {
                let Some(id) = self.live_call(&call_id) else { return CallOutcome::UnknownCall };
                let incident = &self.open[&id];
                let Some(call) = incident.calls.iter().find(|c| c.call_id == call_id) else {
                    return CallOutcome::UnknownCall;
                };
                if call.answered_at.is_some() {
                    return CallOutcome::Duplicate(id);
                }
                // A dispatcher picking up a call in; whoever picks up a call out is who was
                // called, and takes nothing.
                let staff = !call.is_outbound() && self.staff.contains_key(&by);
                let actor = if staff { Actor::Dispatcher(by.clone()) } else { Actor::Engine };
                self.record(id, Change::CallAnswered { call_id, by: by.clone() }, actor, now, out);
                // The dispatcher who picks up an incident nobody holds takes it.
                if staff && self.open[&id].claimed_by.is_none() {
                    let change = Change::Claimed { by: by.clone(), from: None };
                    self.record(id, change, Actor::Dispatcher(by), now, out);
                }
                self.after_change(id, out);
                CallOutcome::Recorded(id)
            }
            CallEvent::Dialled { call_id, by, to, incident_id } => {
                if let Some(id) = self.live_call(&call_id) {
                    return CallOutcome::Duplicate(id);
                }
                let Some(id) = incident_id.map(IncidentId).filter(|id| self.open.contains_key(id)) else {
                    return CallOutcome::NoIncident;
                };
                self.record(id, Change::CallDialled { call_id: call_id.clone(), to }, Actor::Dispatcher(by), now, out);
                self.after_change(id, out);
                self.telephony.live.insert(call_id, id);
                CallOutcome::Recorded(id)
            }
            CallEvent::Transferred { call_id, by, to } => {
                let Some(id) = self.live_call(&call_id) else { return CallOutcome::UnknownCall };
                let Some(call) = self.open[&id].calls.iter().find(|c| c.call_id == call_id) else {
                    return CallOutcome::UnknownCall;
                };
                if call.transferred_to.is_some() {
                    return CallOutcome::Duplicate(id);
                }
                let actor = if self.staff.contains_key(&by) { Actor::Dispatcher(by) } else { Actor::Engine };
                self.record(id, Change::CallTransferred { call_id, to }, actor, now, out);
                self.after_change(id, out);
                CallOutcome::Recorded(id)
            }
            CallEvent::Unanswered { call_id } => {
                let Some(id) = self.live_call(&call_id) else { return CallOutcome::UnknownCall };
                // A call out climbs no ladder: the dispatcher who placed it tries again.
                if self.open[&id].calls.iter().any(|c| c.call_id == call_id && c.is_outbound()) {
                    return CallOutcome::Exhausted(id);
                }
                let Some((rung, number)) = self.next_forward(id, &call_id) else {
                    return CallOutcome::Exhausted(id);
                };
                let change = Change::CallForwarded { call_id, rung, number: number.clone() };
                self.record(id, change, Actor::Engine, now, out);
                self.after_change(id, out);
                CallOutcome::Forwarded { incident: id, number }
            }
            CallEvent::Ended { call_id, reason } => {
                let Some(id) = self.telephony.live.remove(&call_id).filter(|id| self.open.contains_key(id)) else {
                    return CallOutcome::UnknownCall;
                };
                let talk_s = self.open[&id].calls.iter().find(|c| c.call_id == call_id).and_then(|c| {
                    let answered = c.answered_at?;
                    Some(((now.millis() - answered.millis()).max(0) / 1000) as u32)
                });
                self.record(id, Change::CallEnded { call_id, reason, talk_s }, Actor::Engine, now, out);
                self.after_change(id, out);
                CallOutcome::Recorded(id)
            }
        }
    }

    /// Where a call nobody answered goes next: the duty line of the incident's station, then
    /// the fallback number, each once and only if it has a number; `None` when none is left.
    fn next_forward(&self, id: IncidentId, call_id: &str) -> Option<(ForwardRung, String)> {
        let incident = &self.open[&id];
        let tried = incident.calls.iter().find(|c| c.call_id == call_id).map(|c| &c.forwarded[..]).unwrap_or(&[]);
        let station = incident.station.as_ref().and_then(|s| self.stations.get(&s.id)).and_then(|s| s.phone.clone());
        let rungs =
            [(ForwardRung::Station, station), (ForwardRung::Fallback, self.policy.call_fallback_number.clone())];
        rungs
            .into_iter()
            .filter_map(|(rung, number)| number.filter(|n| !n.trim().is_empty()).map(|n| (rung, n)))
            .find(|(rung, _)| !tried.iter().any(|f| f.rung == *rung))
    }

    fn live_call(&self, call_id: &str) -> Option<IncidentId> {
        self.telephony.live.get(call_id).copied().filter(|id| self.open.contains_key(id))
    }

    fn call_rings(
        &mut self,
        call_id: String,
        from: String,
        to: String,
        now: Timestamp,
        out: &mut Outbox,
    ) -> CallOutcome {
        if let Some(id) = self.live_call(&call_id) {
            return CallOutcome::Duplicate(id);
        }
        let key = number_key(&from);
        let caller = key.as_deref().and_then(|k| self.telephony.numbers.get(k)).cloned();
        let by = match (&caller, &key) {
            (Some(c), _) => c.by,
            (None, Some(_)) => CallerMatch::Unknown,
            (None, None) => CallerMatch::Withheld,
        };
        // The call goes on the caller's device when the ledger has one; else on a stand-in
        // that only calls from the same number share.
        let device = match caller.as_ref().and_then(|c| c.device.clone()).filter(|d| self.devices.contains_key(d)) {
            Some(d) => d,
            None => stand_in(key.as_deref()),
        };
        let elder = caller.as_ref().map(|c| c.elder.clone()).filter(|e| self.elders.contains_key(e));
        let on_device = self.devices.contains_key(&device);
        if on_device {
            self.close_if_resolved(&device, now, out);
        } else if let Some(id) = self.telephony.by_caller.get(&device).copied() {
            if self.open.get(&id).is_some_and(|i| i.state == IncidentState::Resolved) {
                let outcome = "closed by the engine: the caller rang again after help was given".to_string();
                self.record(id, Change::Closed { outcome }, Actor::Engine, now, out);
                self.after_change(id, out);
            }
        }
        let open = match on_device {
            true => self.open_of(&device),
            false => self.telephony.by_caller.get(&device).copied().filter(|id| self.open.contains_key(id)),
        };
        let rang = Change::CallRang { call_id: call_id.clone(), from, to, caller: by };
        let outcome = match open {
            Some(id) => {
                self.record(id, rang, Actor::Device(device), now, out);
                self.after_change(id, out);
                CallOutcome::Joined(id)
            }
            None => {
                let location = match elder.as_ref().and_then(|e| self.elders.get(e)) {
                    Some(e) => super::locate(&self.policy, e.home, FixReport::Absent),
                    None => Location {
                        at: crate::geo::Coordinates::new(0.0, 0.0).expect("in range"),
                        accuracy_m: None,
                        source: LocationSource::Unknown,
                        fix_rejected: None,
                    },
                };
                // Nobody's elder: the stand-in names them, as it names nobody in the ledger.
                let elder = elder.unwrap_or_else(|| ElderId::parse(device.as_str()).expect("a stand-in is an id"));
                let msg = message_id(&call_id);
                let id = self.open_incident(
                    &device,
                    elder,
                    IncidentKind::Call,
                    &msg,
                    location,
                    now,
                    None,
                    Some(rang),
                    now,
                    out,
                );
                if !on_device && key.is_some() {
                    self.telephony.by_caller.insert(device, id);
                }
                CallOutcome::Opened(id)
            }
        };
        if let Some(id) = outcome.incident() {
            self.telephony.live.insert(call_id, id);
        }
        outcome
    }

    /// A call incident has ended: its calls are no longer live, and its caller's next call
    /// opens a new one.
    pub(super) fn calls_ended_with(&mut self, incident: &Incident) {
        for call in incident.calls.iter().filter(|c| c.is_live()) {
            self.telephony.live.remove(&call.call_id);
        }
        if self.telephony.by_caller.get(&incident.device_id) == Some(&incident.id) {
            self.telephony.by_caller.remove(&incident.device_id);
        }
    }

    /// Takes back the live calls and the stand-in callers' incidents, at start.
    pub(super) fn restore_calls(&mut self) {
        for incident in self.open.values() {
            for call in incident.calls.iter().filter(|c| c.is_live()) {
                self.telephony.live.insert(call.call_id.clone(), incident.id);
            }
            let d = incident.device_id.as_str();
            if d.starts_with(CALLER_DEVICE_PREFIX)
                && !d.ends_with(WITHHELD)
                && !self.devices.contains_key(&incident.device_id)
            {
                self.telephony.by_caller.insert(incident.device_id.clone(), incident.id);
            }
        }
    }

    /// Indexes the ledger's numbers at start: elders' phones, then devices' SIMs (a SIM wins
    /// a number both have). An elder's phone rings on one of their devices.
    pub(super) fn index_numbers(&mut self, sims: Vec<(DeviceId, String)>) {
        let t = &mut self.telephony;
        for e in self.elders.values() {
            if let Some(key) = e.phone.as_deref().and_then(number_key) {
                t.numbers.insert(key.into(), Caller { elder: e.id.clone(), device: None, by: CallerMatch::ElderPhone });
            }
        }
        for (device, sim) in sims {
            if let Some(key) = number_key(&sim) {
                let elder = self.devices[&device].elder_id.clone();
                t.numbers.insert(key.into(), Caller { elder, device: Some(device.clone()), by: CallerMatch::Sim });
            }
            t.sims.insert(device, sim.into());
        }
        for (id, d) in &self.devices {
            let Some(phone) = self.elders.get(&d.elder_id).and_then(|e| e.phone.as_deref()).and_then(number_key) else {
                continue;
            };
            if let Some(c) = t.numbers.get_mut(phone.as_str()) {
                if c.by == CallerMatch::ElderPhone && c.device.is_none() {
                    c.device = Some(id.clone());
                }
            }
        }
    }

    /// Whom a number rings as, if the ledger has it (for the ledger's own checks).
    pub(crate) fn caller_of(&self, number: &str) -> Option<&Caller> {
        number_key(number).and_then(|k| self.telephony.numbers.get(k.as_str()))
    }

    /// A device was put in the ledger with `sim` (or none), for its elder, who was `was`'s
    /// before: its number now rings on it, and the elder it left no longer rings on it.
    pub(super) fn device_number_changed(&mut self, device: &DeviceId, sim: Option<String>, was: Option<&ElderId>) {
        let elder = self.devices[device].elder_id.clone();
        if let Some(was) = was.filter(|w| **w != elder) {
            self.unlink_elder_phone(was, device);
        }
        self.forget_sim(device);
        let t = &mut self.telephony;
        if let Some(sim) = sim {
            if let Some(key) = number_key(&sim) {
                let caller = Caller { elder: elder.clone(), device: Some(device.clone()), by: CallerMatch::Sim };
                t.numbers.insert(key.into(), caller);
            }
            t.sims.insert(device.clone(), sim.into());
        }
        // The elder's own phone rings on this device if it rang on none.
        if let Some(c) = self.elder_phone_entry(&elder) {
            c.device.get_or_insert_with(|| device.clone());
        }
    }

    /// A device left the ledger: neither its SIM nor its elder's phone rings on it.
    pub(super) fn device_number_gone(&mut self, device: &DeviceId) {
        self.forget_sim(device);
        if let Some(elder) = self.devices.get(device).map(|d| d.elder_id.clone()) {
            self.unlink_elder_phone(&elder, device);
        }
    }

    fn forget_sim(&mut self, device: &DeviceId) {
        let t = &mut self.telephony;
        if let Some(key) = t.sims.remove(device).and_then(|old| number_key(&old)) {
            if t.numbers.get(key.as_str()).is_some_and(|c| c.device.as_ref() == Some(device)) {
                t.numbers.remove(key.as_str());
            }
        }
    }

    /// The elder's own phone rings on none of their devices if it rang on `device`.
    fn unlink_elder_phone(&mut self, elder: &ElderId, device: &DeviceId) {
        if let Some(c) = self.elder_phone_entry(elder) {
            if c.device.as_ref() == Some(device) {
                c.device = None;
            }
        }
    }

    /// The number entry of an elder's own phone, while it rings as them.
    fn elder_phone_entry(&mut self, elder: &ElderId) -> Option<&mut Caller> {
        let key = self.elders.get(elder).and_then(|e| e.phone.as_deref()).and_then(number_key)?;
        self.telephony.numbers.get_mut(key.as_str()).filter(|c| c.by == CallerMatch::ElderPhone && &c.elder == elder)
    }

    /// An elder's phone changed from `was` (or the elder left the ledger, `now` `None`): the
    /// old number rings as nobody, the new one as them, on the device the old one rang on.
    pub(super) fn elder_number_changed(&mut self, elder: &ElderId, was: Option<&str>, now: Option<&str>) {
        let t = &mut self.telephony;
        let mut device = None;
        if let Some(key) = was.and_then(number_key) {
            if t.numbers.get(key.as_str()).is_some_and(|c| c.by == CallerMatch::ElderPhone && &c.elder == elder) {
                device = t.numbers.remove(key.as_str()).and_then(|c| c.device);
            }
        }
        if let Some(key) = now.and_then(number_key) {
            // A device's SIM keeps its number.
            if !t.numbers.get(key.as_str()).is_some_and(|c| c.by == CallerMatch::Sim) {
                t.numbers.insert(key.into(), Caller { elder: elder.clone(), device, by: CallerMatch::ElderPhone });
            }
        }
    }

    /// A device's SIM number as the ledger has it.
    pub(crate) fn sim_of(&self, device: &DeviceId) -> Option<String> {
        self.telephony.sims.get(device).map(|s| s.to_string())
    }
}

/// The stand-in device id of a caller nobody's device is: `call:<number>`, or `call:withheld`.
fn stand_in(key: Option<&str>) -> DeviceId {
    let id = format!("{CALLER_DEVICE_PREFIX}{}", key.unwrap_or(WITHHELD));
    DeviceId::parse(id).expect("digits make an id")
}

/// A message id for the call that opened an incident: its Call-ID, with what an id may not
/// hold replaced, cut to an id's length.
fn message_id(call_id: &str) -> MessageId {
    let mut id: String = format!("call:{call_id}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':') { c } else { '_' })
        .collect();
    id.truncate(crate::ids::MAX_ID_LEN);
    MessageId::parse(id).expect("only id characters are left")
}
