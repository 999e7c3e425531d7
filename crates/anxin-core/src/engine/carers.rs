//! Carers' visits and their safety (see [`crate::carer`]): check-in verified against the
//! elder's home, "still here", check-out, the lone-worker timer, and the carer's own help
//! button.
//!
//! A carer's incidents (help, overdue) are ordinary incidents marked with the carer
//! ([`Change::ForCarer`]), so the ladder, the alarm, the consoles and the audit trail treat
//! them like any other; they carry the device id `carer:<responder id>`, which no device in
//! the ledger may have, and the visited elder (or, away from a visit, that same id as the
//! elder, which names nobody in the ledger).

use super::{Engine, Outbox};
use crate::carer::{is_carer, CarerState, CarerView, Visit, VisitAction, VisitError, VisitView, CARER_DEVICE_PREFIX};
use crate::geo::Coordinates;
use crate::ids::{DeviceId, ElderId, IncidentId, MessageId, ResponderId, Timestamp};
use crate::incident::*;
use std::collections::{BTreeSet, HashMap};

/// The engine's side of carers.
#[derive(Debug, Default)]
pub(crate) struct Carers {
    pub(crate) by_carer: HashMap<ResponderId, CarerState>,
    /// Open visits with no lone-worker alert up, by when they fall due.
    pub(crate) due: BTreeSet<(Timestamp, ResponderId)>,
}

impl Engine {
    /// The visit a carer is on, if any.
    pub fn visit_of(&self, carer: &ResponderId) -> Option<&Visit> {
        self.carers.by_carer.get(carer).and_then(|c| c.visit.as_ref())
    }

    /// Every visit not yet checked out.
    pub fn open_visits(&self) -> impl Iterator<Item = &Visit> {
        self.carers.by_carer.values().filter_map(|c| c.visit.as_ref())
    }

    /// The carer's own help incident, while it is open.
    pub fn carer_help_of(&self, carer: &ResponderId) -> Option<&Incident> {
        self.carers.by_carer.get(carer).and_then(|c| c.help).and_then(|id| self.open.get(&id))
    }

    /// What a carer's phone shows: their visit and their help; `None` for a responder who is
    /// no carer.
    pub fn carer_view(&self, carer: &ResponderId) -> Option<CarerView> {
        let r = self.responders.get(carer).filter(|r| is_carer(&r.skills))?;
        let visit = self.visit_of(&r.id).map(|v| {
            let elder = self.elders.get(&v.elder_id);
            VisitView {
                id: v.id,
                elder_id: v.elder_id.clone(),
                elder_name: elder.map(|e| e.name.clone()).unwrap_or_default(),
                address: elder.map(|e| e.address.clone()).unwrap_or_default(),
                checked_in_at: v.checked_in_at,
                due_at: v.due_at,
                overdue: v.alert.is_some(),
            }
        });
        let help = self.carer_help_of(carer).map(|i| i.id);
        Some(CarerView { visit, help, checkin_radius_m: self.policy.carers.checkin_radius_m.round() as u32 })
    }

    /// Takes back the open visits and the carers' open incidents, at start.
    pub(super) fn restore_carers(&mut self, visits: Vec<Visit>) {
        // A visit resumed numbered past its zone's counter moves the counter on.
        for v in &visits {
            let zone = crate::zone::Zone::of(v.id);
            let c = self.counters_of(zone);
            c.visit = c.visit.max(v.id);
        }
        for mut v in visits.into_iter().filter(Visit::is_open) {
            if v.alert.is_some_and(|id| !self.open.contains_key(&id)) {
                v.alert = None; // ended while the visit went on: the timer runs again
            }
            if v.alert.is_none() {
                self.carers.due.insert((v.due_at, v.carer_id.clone()));
            }
            let carer = v.carer_id.clone();
            self.carers.by_carer.entry(carer).or_default().visit = Some(v);
        }
        let helps: Vec<_> = self
            .open
            .values()
            .filter(|i| i.kind != IncidentKind::LoneWorker)
            .filter_map(|i| i.carer.clone().map(|c| (c, i.id)))
            .collect();
        for (carer, id) in helps {
            self.carers.by_carer.entry(carer).or_default().help = Some(id);
        }
    }

    /// A carer's action from their phone. Refused, changing nothing, when the responder is no
    /// carer, the check-in is too far from the elder's home, or there is no visit to go on
    /// with.
    pub fn carer_acts(
        &mut self,
        carer: &ResponderId,
        action: VisitAction,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Result<(), VisitError> {
        let r = self.responders.get(carer).ok_or_else(|| VisitError::UnknownResponder(carer.clone()))?;
        if !is_carer(&r.skills) {
            return Err(VisitError::NotACarer(carer.clone()));
        }
        let visit = self.visit_of(carer).cloned();
        match action {
            VisitAction::CheckIn { elder_id, at } => {
                let home = self.elders.get(&elder_id).ok_or_else(|| VisitError::UnknownElder(elder_id.clone()))?.home;
                let distance_m = at.distance_m(home);
                let radius_m = self.policy.carers.checkin_radius_m;
                if distance_m > radius_m {
                    return Err(VisitError::OutOfRadius {
                        distance_m: distance_m.round() as u32,
                        radius_m: radius_m.round() as u32,
                    });
                }
                match visit {
                    // Checking in again where they are is saying they are still there.
                    Some(v) if v.elder_id == elder_id => self.still_here(carer, now, out),
                    Some(v) => return Err(VisitError::OnVisit(v.elder_id)),
                    None => self.check_in(carer, elder_id, at, distance_m, now, out),
                }
            }
            VisitAction::StillHere { .. } => {
                visit.ok_or(VisitError::NoVisit)?;
                self.still_here(carer, now, out);
            }
            VisitAction::CheckOut { at } => {
                let mut v = visit.ok_or(VisitError::NoVisit)?;
                self.carers.due.remove(&(v.due_at, carer.clone()));
                v.checked_out_at = Some(now);
                v.updated_at = now;
                v.checkout_at = Some(at);
                let alert = v.alert.take();
                out.visits.push(v);
                self.carers.by_carer.get_mut(carer).expect("on a visit").visit = None;
                if let Some(id) = alert {
                    self.end_carer_alert(id, "the carer checked out", now, out);
                }
            }
            VisitAction::Help { at } => {
                if self.carer_help_of(carer).is_none() {
                    self.carer_help(carer, visit.as_ref(), at, now, out);
                }
            }
        }
        // The carer's phone is shown their visit afresh.
        out.responders.push(carer.clone());
        Ok(())
    }

    fn check_in(
        &mut self,
        carer: &ResponderId,
        elder_id: ElderId,
        at: Coordinates,
        distance_m: f64,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        let zone = self.zone_of_elder(&elder_id);
        let id = {
            let c = self.counters_of(zone);
            c.visit += 1;
            c.visit
        };
        let due_at = now.plus_millis(self.policy.carers.visit_max_ms);
        let v = Visit {
            id,
            carer_id: carer.clone(),
            elder_id,
            checked_in_at: now,
            checkin_at: at,
            distance_m,
            last_seen_at: now,
            due_at,
            checked_out_at: None,
            checkout_at: None,
            alert: None,
            overdue: false,
            updated_at: now,
        };
        self.carers.due.insert((due_at, carer.clone()));
        out.visits.push(v.clone());
        self.carers.by_carer.entry(carer.clone()).or_default().visit = Some(v);
    }

    /// The carer is heard on their visit: the timer starts again, and an alert up ends.
    fn still_here(&mut self, carer: &ResponderId, now: Timestamp, out: &mut Outbox) {
        let max = self.policy.carers.visit_max_ms;
        let v = self.carers.by_carer.get_mut(carer).and_then(|c| c.visit.as_mut()).expect("on a visit");
        self.carers.due.remove(&(v.due_at, carer.clone()));
        v.last_seen_at = now;
        v.updated_at = now;
        v.due_at = now.plus_millis(max);
        let alert = v.alert.take();
        self.carers.due.insert((v.due_at, carer.clone()));
        out.visits.push(v.clone());
        if let Some(id) = alert {
            self.end_carer_alert(id, "the carer said they are still there", now, out);
        }
    }

    /// The carer's help button: an SOS for the carer, at the elder's home while on a visit,
    /// else where their phone says they are. It climbs the ladder like any SOS (the carer
    /// is never offered it).
    fn carer_help(
        &mut self,
        carer: &ResponderId,
        visit: Option<&Visit>,
        at: Coordinates,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        let home = visit.and_then(|v| self.elders.get(&v.elder_id)).map(|e| e.home);
        let location = match home {
            Some(home) => Location { at: home, source: LocationSource::Home, accuracy_m: None, fix_rejected: None },
            None => Location { at, source: LocationSource::Device, accuracy_m: None, fix_rejected: None },
        };
        let elder = visit.map(|v| v.elder_id.clone());
        let id = self.open_carer_incident(carer, IncidentKind::Sos, location, elder, None, now, out);
        self.carers.by_carer.entry(carer.clone()).or_default().help = Some(id);
    }

    /// Opens an incident for `carer` (logged `opened` then `for_carer`), starts its ladder
    /// when it is an emergency, and emits it.
    #[allow(clippy::too_many_arguments)]
    fn open_carer_incident(
        &mut self,
        carer: &ResponderId,
        kind: IncidentKind,
        location: Location,
        elder: Option<ElderId>,
        note: Option<String>,
        now: Timestamp,
        out: &mut Outbox,
    ) -> IncidentId {
        // A responder id of up to 58 characters fits after the prefix; a longer one gives the
        // bare prefix (the incident's `carer` names them all the same).
        let device = DeviceId::parse(format!("{CARER_DEVICE_PREFIX}{carer}"))
            .unwrap_or_else(|_| DeviceId::parse(CARER_DEVICE_PREFIX).expect("a valid id"));
        let elder = elder.unwrap_or_else(|| ElderId::parse(device.as_str()).expect("a valid id"));
        // The elder's zone, or for a carer alone (no elder) the carer's station's.
        let zone = match self.elders.contains_key(&elder) {
            true => self.zone_of_elder(&elder),
            false => {
                self.responders.get(carer).map_or(crate::zone::Zone::FIRST, |r| self.zone_of_station(&r.station_id))
            }
        };
        let id = self.next_incident_id(zone);
        let actor = if kind == IncidentKind::LoneWorker { Actor::Engine } else { Actor::Responder(carer.clone()) };
        let opened = IncidentEvent {
            seq: self.next_seq(zone),
            incident_id: id,
            at: now,
            actor: actor.clone(),
            change: Change::Opened {
                kind,
                msg_id: MessageId::parse(format!("carer-{}", id.0)).expect("a valid id"),
                location,
                pressed_at: now,
                welfare: None,
            },
        };
        let incident = Incident::open(&opened, device, elder, None, &self.policy).expect("it opens");
        self.open.insert(id, incident);
        // Unlike a device's, its opening tells no family: the elder is not the one in need,
        // and with nobody told, none of its later changes reach a contact either.
        out.events.push(opened);
        self.record(id, Change::ForCarer { carer_id: carer.clone() }, actor, now, out);
        if let Some(text) = note {
            self.record(id, Change::Note { text }, Actor::Engine, now, out);
        }
        if let Some(s) = self.matcher.nearest_station(location.at) {
            let change = Change::NearestStation { station_id: s.id, distance_m: s.distance_m };
            self.record(id, change, Actor::Engine, now, out);
        }
        if kind.is_emergency() {
            self.climb(id, now, out);
        }
        self.after_change(id, out);
        id
    }

    /// Carers overdue on their visits get a lone-worker incident.
    pub(super) fn expire_visits(&mut self, now: Timestamp, out: &mut Outbox) {
        while let Some((due, carer)) = self.carers.due.first().cloned() {
            if due > now {
                break;
            }
            self.carers.due.pop_first();
            let Some(v) = self.visit_of(&carer).filter(|v| v.alert.is_none() && v.due_at == due).cloned() else {
                continue;
            };
            let Some(home) = self.elders.get(&v.elder_id).map(|e| e.home) else { continue };
            let name = self.responders.get(&carer).map(|r| r.name.clone()).unwrap_or_default();
            let local = v.last_seen_at.millis() + i64::from(self.policy.utc_offset_min) * 60_000;
            let note = format!(
                "Carer {name} ({carer}) was last heard on the visit to elder {} at {:02}:{:02} and has not checked out \
                 or said they are still there within {}: phone them.",
                v.elder_id,
                local.rem_euclid(86_400_000) / 3_600_000,
                local.rem_euclid(3_600_000) / 60_000,
                within(self.policy.carers.visit_max_ms),
            );
            let location = Location { at: home, source: LocationSource::Home, accuracy_m: None, fix_rejected: None };
            let elder = Some(v.elder_id.clone());
            let id = self.open_carer_incident(&carer, IncidentKind::LoneWorker, location, elder, Some(note), now, out);
            let v = self.carers.by_carer.get_mut(&carer).and_then(|c| c.visit.as_mut()).expect("on a visit");
            v.alert = Some(id);
            v.overdue = true;
            v.updated_at = now;
            out.visits.push(v.clone());
            out.responders.push(carer);
        }
    }

    /// The engine ends a lone-worker alert the carer answered by their own action.
    fn end_carer_alert(&mut self, id: IncidentId, outcome: &str, now: Timestamp, out: &mut Outbox) {
        if !self.open.contains_key(&id) {
            return;
        }
        self.resolve(id, outcome.to_string(), Actor::Engine, now, out);
        self.emit(id, out);
        self.record(id, Change::Closed { outcome: outcome.to_string() }, Actor::Engine, now, out);
        self.after_change(id, out);
    }

    /// A carer's incident ended (by a dispatcher, or the engine). Their help may be pressed
    /// again; a lone-worker alert a dispatcher closed while the visit goes on starts the
    /// timer again from its end, so a carer who is still not heard from alarms again.
    pub(super) fn carer_incident_ended(&mut self, incident: &Incident, out: &mut Outbox) {
        let Some(carer) = &incident.carer else { return };
        let max = self.policy.carers.visit_max_ms;
        let Some(state) = self.carers.by_carer.get_mut(carer) else { return };
        if state.help == Some(incident.id) {
            state.help = None;
        }
        if let Some(v) = state.visit.as_mut().filter(|v| v.alert == Some(incident.id)) {
            v.alert = None;
            v.updated_at = incident.updated_at;
            v.due_at = incident.updated_at.plus_millis(max);
            self.carers.due.insert((v.due_at, carer.clone()));
            out.visits.push(v.clone());
        }
        out.responders.push(carer.clone());
    }

    /// When the next visit falls due.
    pub(super) fn next_visit_deadline(&self) -> Option<Timestamp> {
        self.carers.due.first().map(|(t, _)| *t)
    }
}

/// The lone-worker timer in words: whole minutes, or seconds for a compressed run's timer.
fn within(ms: i64) -> String {
    if ms % 60_000 == 0 {
        format!("{} minutes", ms / 60_000)
    } else {
        format!("{} seconds", (ms + 500) / 1000)
    }
}
