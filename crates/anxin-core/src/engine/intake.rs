//! Intake: device messages in. Deduplication, repeat presses, opening an incident or
//! joining the device's open one, cancels, and telling the device that help is coming.

use super::{Engine, Outbox, Outcome, Refusal};
use crate::geo::Coordinates;
use crate::ids::{DeviceId, ElderId, IncidentId, MessageId, Timestamp};
use crate::incident::*;
use crate::policy::Policy;

impl Engine {
    /// Takes in one decoded device message.
    pub fn handle_device_event(
        &mut self,
        device: &DeviceId,
        event: DeviceEvent,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Result<Outcome, Refusal> {
        let elder_id = self.elder_of(device)?;
        self.device_heard(device, Some(event.event), event.health, now, out);
        if event.event.is_health() {
            return Ok(Outcome::Noted);
        }
        if self.seen.contains(device, &event.msg_id) {
            if event.event != EventType::Cancel {
                self.reassure(device, &event.msg_id, out);
            }
            return Ok(Outcome::Duplicate);
        }
        self.remember(now, device.clone(), event.msg_id.clone());
        if event.event != EventType::Cancel {
            self.close_if_resolved(device, now, out);
        }
        // By the device's clock when it is plausible: presses a device kept while offline and
        // sends together are as far apart as they were made, not a stuck button.
        let pressed = self.plausible_press_time(event.device_ts, now);
        let outcome = match (event.event, self.open_of(device)) {
            (EventType::Cancel, Some(id)) => {
                self.request_cancel(id, device, &event.msg_id, now, out);
                Outcome::Joined(id)
            }
            (EventType::Cancel, None) => Outcome::Noted,
            (_, Some(id)) if self.is_stuck_repeat(id, device, event.event, pressed) => {
                // Stored all the same, so answered by name: a device resends a press until
                // it hears it was delivered.
                self.tell_device_help_is_coming(id, &event.msg_id, out);
                Outcome::Throttled(id)
            }
            (_, Some(id)) => {
                self.set_last_press(device, pressed);
                self.join(id, device, &event.msg_id, Some(event.event), now, out);
                Outcome::Joined(id)
            }
            (kind, None) => {
                let kind = kind.incident_kind().unwrap_or(IncidentKind::Sos);
                let pressed_at = pressed;
                let elder = &self.elders[&elder_id];
                let location = locate(&self.policy, elder.home, event.fix);
                let id = self.open_incident(
                    device,
                    elder_id,
                    kind,
                    &event.msg_id,
                    location,
                    pressed_at,
                    None,
                    None,
                    now,
                    out,
                );
                Outcome::Opened(id)
            }
        };
        if let Outcome::Opened(_) = outcome {
            self.set_last_press(device, pressed);
        }
        let incident_id = match &outcome {
            Outcome::Opened(id) | Outcome::Joined(id) | Outcome::Throttled(id) => Some(*id),
            _ => None,
        };
        out.messages.push(MessageRecord {
            device_id: device.clone(),
            msg_id: event.msg_id,
            event: Some(event.event),
            received_at: now,
            incident_id,
        });
        Ok(outcome)
    }

    /// Takes in a message from a known device that could not be read. It may have been a
    /// press, so it raises (or joins) an incident for a dispatcher to call back.
    /// `fingerprint` stands in for the message id, so a redelivery is still recognised.
    pub fn handle_unreadable(
        &mut self,
        device: &DeviceId,
        reason: &str,
        fingerprint: MessageId,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Result<Outcome, Refusal> {
        let elder_id = self.elder_of(device)?;
        self.device_heard(device, None, HealthReport::default(), now, out);
        if self.seen.contains(device, &fingerprint) {
            self.reassure(device, &fingerprint, out);
            return Ok(Outcome::Duplicate);
        }
        self.remember(now, device.clone(), fingerprint.clone());
        self.close_if_resolved(device, now, out);
        let outcome = match self.open_of(device) {
            Some(id) => {
                self.join(id, device, &fingerprint, None, now, out);
                Outcome::Joined(id)
            }
            None => {
                let home = self.elders[&elder_id].home;
                let location = locate(&self.policy, home, FixReport::Absent);
                let problem = format!("unreadable message from the device: {reason}");
                let id = self.open_incident(
                    device,
                    elder_id,
                    IncidentKind::Unreadable,
                    &fingerprint,
                    location,
                    now,
                    Some(problem),
                    None,
                    now,
                    out,
                );
                Outcome::Opened(id)
            }
        };
        let incident_id = match &outcome {
            Outcome::Opened(id) | Outcome::Joined(id) => Some(*id),
            _ => None,
        };
        out.messages.push(MessageRecord {
            device_id: device.clone(),
            msg_id: fingerprint,
            event: None,
            received_at: now,
            incident_id,
        });
        Ok(outcome)
    }

    /// Help was given and the incident only waits to be closed: a new press is a new
    /// emergency, so the old incident is closed (by the engine, saying why) to make room.
    pub(super) fn close_if_resolved(&mut self, device: &DeviceId, now: Timestamp, out: &mut Outbox) {
        let Some(id) = self.open_of(device) else { return };
        if self.open[&id].state != IncidentState::Resolved {
            return;
        }
        let outcome = "closed by the engine: the device pressed again after help was given".to_string();
        self.record(id, Change::Closed { outcome }, Actor::Engine, now, out);
        self.after_change(id, out);
    }

    /// Whether a press made at `pressed` on open incident `id` repeats the last counted one
    /// too soon to mean anything new. A press that would change the incident's kind always
    /// counts.
    pub(super) fn is_stuck_repeat(
        &self,
        id: IncidentId,
        device: &DeviceId,
        event: EventType,
        pressed: Timestamp,
    ) -> bool {
        let Some(last) = self.incidents_of(device).last_press else { return false };
        if (pressed.millis() - last.millis()).abs() >= self.policy.repeat_press_interval_ms {
            return false;
        }
        let from = self.open[&id].kind;
        !event.incident_kind().is_some_and(|to| from.is_raised_by(to))
    }

    /// A device that resends a message it already sent did not hear "help is coming" (a
    /// device should resend until it does): tell it again while its incident is open.
    pub(super) fn reassure(&self, device: &DeviceId, msg_id: &MessageId, out: &mut Outbox) {
        if let Some(id) = self.open_of(device) {
            self.tell_device_help_is_coming(id, msg_id, out);
        }
    }

    pub(super) fn remember(&mut self, at: Timestamp, device: DeviceId, msg: MessageId) {
        if self.seen.insert(device.clone(), msg.clone()) {
            self.seen_order.push_back((at, device, msg));
        }
    }

    pub(super) fn set_last_press(&mut self, device: &DeviceId, pressed: Timestamp) {
        // Only while the device has an incident open (it is forgotten with it).
        if let Some(d) = self.device_incidents.get_mut(device) {
            d.last_press = Some(pressed);
        }
    }

    pub(super) fn plausible_press_time(&self, device_ts: Timestamp, now: Timestamp) -> Timestamp {
        let delta = device_ts.millis() - now.millis();
        if delta <= self.policy.max_clock_ahead_ms && -delta <= self.policy.max_clock_behind_ms {
            device_ts
        } else {
            now
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn open_incident(
        &mut self,
        device: &DeviceId,
        elder_id: ElderId,
        kind: IncidentKind,
        msg_id: &MessageId,
        location: Location,
        pressed_at: Timestamp,
        problem: Option<String>,
        first: Option<Change>,
        now: Timestamp,
        out: &mut Outbox,
    ) -> IncidentId {
        let zone = self.zone_of_elder(&elder_id);
        let id = self.next_incident_id(zone);
        let opened = IncidentEvent {
            seq: self.next_seq(zone),
            incident_id: id,
            at: now,
            actor: Actor::Device(device.clone()),
            change: Change::Opened { kind, msg_id: msg_id.clone(), location, pressed_at, welfare: None },
        };
        let incident = Incident::open(&opened, device.clone(), elder_id, problem, &self.policy).expect("it opens");
        self.open.insert(id, incident);
        let notice = self.notice_for(id, &opened.change);
        out.events.push(opened);
        if self.devices.contains_key(device) {
            self.device_incidents.entry(device.clone()).or_default().open = Some(id);
        }
        // What opened it, logged in the same step (the call that rang), so the incident is
        // never shown without it.
        if let Some(change) = first {
            self.record(id, change, Actor::Device(device.clone()), now, out);
        }
        // The family first: the first contact hears at once, before the ladder starts.
        if let Some(notice) = notice {
            self.tell_family(id, notice, now, out);
        }
        // Nowhere known (a caller nobody knows) is near no station.
        let nearest = match location.source {
            LocationSource::Unknown => None,
            _ => self.matcher.nearest_station(location.at),
        };
        if let Some(s) = nearest {
            let change = Change::NearestStation { station_id: s.id, distance_m: s.distance_m };
            self.record(id, change, Actor::Engine, now, out);
        }
        // Only emergencies go up the ladder straight away; anything doubtful goes to a person
        // first, who is reminded until they act.
        if kind.is_emergency() {
            self.climb(id, now, out);
        }
        // A device that dialled is on the phone to us: nothing is decided to tell it yet.
        if kind != IncidentKind::Call {
            self.tell_device_help_is_coming(id, msg_id, out);
        }
        self.after_change(id, out);
        id
    }

    pub(super) fn join(
        &mut self,
        id: IncidentId,
        device: &DeviceId,
        msg_id: &MessageId,
        event: Option<EventType>,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        let press_count = self.open[&id].press_count + 1;
        let change = Change::PressJoined { msg_id: msg_id.clone(), event, press_count };
        self.record(id, change, Actor::Device(device.clone()), now, out);
        // An SOS or a fall during a service request or after an unreadable message makes the
        // incident an emergency: it takes the more urgent kind and is offered at once.
        let from = self.open[&id].kind;
        let upgrade = event.and_then(EventType::incident_kind).filter(|to| from.is_raised_by(*to));
        if let Some(to) = upgrade {
            self.record(id, Change::KindChanged { from, to }, Actor::Device(device.clone()), now, out);
            // A request that was not an emergency is put on the responders' rung only while it
            // still waits for a dispatcher (see `Incident::apply`); then it climbs.
            if !from.is_emergency() && self.open[&id].ladder.rung == Rung::Responders {
                self.climb(id, now, out);
            }
        }
        self.tell_device_help_is_coming(id, msg_id, out);
        self.after_change(id, out);
    }

    pub(super) fn request_cancel(
        &mut self,
        id: IncidentId,
        device: &DeviceId,
        msg_id: &MessageId,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        let change = Change::CancelRequested { msg_id: msg_id.clone() };
        self.record(id, change, Actor::Device(device.clone()), now, out);
        self.after_change(id, out);
    }

    pub(super) fn tell_device_help_is_coming(&self, id: IncidentId, msg_id: &MessageId, out: &mut Outbox) {
        let incident = &self.open[&id];
        let holder = incident.responder.as_ref().filter(|_| incident.state.has_responder_on_job());
        let eta_min = match holder {
            Some(r) => Some(self.eta_min(&r.id, r.distance_m)),
            None => incident.ladder.offers.iter().map(|o| self.eta_min(&o.responder_id, o.distance_m)).min(),
        };
        out.commands.push((
            incident.device_id.clone(),
            DeviceCommand::HelpComing {
                incident_id: id,
                msg_id: msg_id.clone(),
                responder_assigned: eta_min.is_some(),
                eta_min,
            },
        ));
    }

    /// The elder a device in the ledger belongs to.
    pub(super) fn elder_of(&self, device: &DeviceId) -> Result<ElderId, Refusal> {
        self.devices.get(device).map(|d| d.elder_id.clone()).ok_or_else(|| Refusal::UnknownDevice(device.clone()))
    }
}

/// Picks the incident's position: the device's fix when it is plausible, else home.
pub fn locate(policy: &Policy, home: Coordinates, fix: FixReport) -> Location {
    let home_location =
        |fix_rejected| Location { at: home, accuracy_m: None, source: LocationSource::Home, fix_rejected };
    let fix = match fix {
        FixReport::Absent => return home_location(None),
        FixReport::Malformed => return home_location(Some(FixRejection::Malformed)),
        FixReport::Valid(fix) => fix,
    };
    let rejection = if fix.at.is_null_island() {
        Some(FixRejection::NullIsland)
    } else if fix.accuracy_m.is_some_and(|a| !(a.is_finite() && a >= 0.0 && a <= policy.max_fix_accuracy_m)) {
        Some(FixRejection::TooInaccurate)
    } else if fix.at.distance_m(home) > policy.max_fix_distance_from_home_m {
        Some(FixRejection::TooFarFromHome)
    } else {
        None
    };
    match rejection {
        None => Location { at: fix.at, accuracy_m: fix.accuracy_m, source: LocationSource::Device, fix_rejected: None },
        Some(r) => home_location(Some(r)),
    }
}
