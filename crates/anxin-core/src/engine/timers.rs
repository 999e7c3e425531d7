//! Timers: what the clock brings. Lapsed offers, station alerts with nobody sent, reminders,
//! overdue arrivals, stale phone fixes and forgotten message ids.

use super::{Engine, Outbox};
use crate::ids::{IncidentId, ResponderId, Timestamp};
use crate::incident::*;

impl Engine {
    /// The earliest moment something is due; the shell calls [`Engine::tick`] then.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let incidents = self.timers.first().map(|(t, _)| *t);
        let fixes = self.fixes.first().map(|(t, _)| t.plus_millis(self.policy.max_fix_age_ms));
        let claims = self.presence.next_release();
        let devices = self.next_health_deadline();
        let elders = self.next_activity_deadline();
        let programme = self.next_programme_deadline();
        let visits = self.next_visit_deadline();
        let orders = self.next_order_deadline();
        let refusals = self.next_refusal_end();
        incidents
            .into_iter()
            .chain(fixes)
            .chain(claims)
            .chain(devices)
            .chain(elders)
            .chain(programme)
            .chain(visits)
            .chain(orders)
            .chain(refusals)
            .min()
    }

    /// Does everything due at or before `now`: lapsed offers, lapsed station alerts,
    /// reminders, overdue arrivals, claims of dispatchers gone too long.
    pub fn tick(&mut self, now: Timestamp, out: &mut Outbox) {
        self.expire_fixes(now, out);
        self.expire_devices(now, out);
        self.expire_inactive(now, out);
        self.expire_programme(now, out);
        self.expire_visits(now, out);
        self.release_absent_claims(now, out);
        self.expire_refusals(now);
        while let Some(&(due, id)) = self.timers.first() {
            if due > now {
                break;
            }
            self.timers.pop_first();
            self.deadlines.remove(&id);
            self.fire(id, now, out);
            self.reschedule(id);
        }
        // Emergencies first: orders' offers lapse after every incident's timers.
        self.expire_order_offers(now, out);
    }

    pub(super) fn fire(&mut self, id: IncidentId, now: Timestamp, out: &mut Outbox) {
        let Some(incident) = self.open.get(&id) else { return };
        let lapsed: Vec<ResponderId> =
            incident.ladder.offers.iter().filter(|o| o.deadline <= now).map(|o| o.responder_id.clone()).collect();
        let due = |t: Option<Timestamp>| t.is_some_and(|t| t <= now);
        let mut changed = false;
        if !lapsed.is_empty() && incident.state == IncidentState::Offered {
            for responder in lapsed {
                let change = Change::OfferTimedOut { responder_id: responder.clone() };
                self.end_offer(id, &responder, change, Actor::Engine, now, out);
            }
            self.climb(id, now, out);
            changed = true;
        }
        let incident = &self.open[&id];
        if due(incident.ladder.station_deadline) && incident.state == IncidentState::StationAlerted {
            self.call_in_dispatcher(id, now, out);
            changed = true;
        }
        let incident = &self.open[&id];
        if due(incident.ladder.on_scene_by) && incident.state.has_responder_on_job() {
            let responder = incident.responder.as_ref().expect("a job has a responder").id.clone();
            self.record(id, Change::OnSceneOverdue { responder_id: responder }, Actor::Engine, now, out);
            changed = true;
        }
        if due(self.open[&id].family.next_at) {
            self.escalate_family(id, now, out);
            changed = true;
        }
        let incident = &self.open[&id];
        if due(incident.ladder.remind_at) && incident.dispatcher_needed.is_some() {
            let count = incident.ladder.reminders + 1;
            self.record(id, Change::Reminder { count }, Actor::Engine, now, out);
            changed = true;
        }
        if changed {
            self.emit(id, out);
        }
    }

    /// Forgets message ids older than the dedup window. A message id reused after that is a
    /// new message (the store keeps the first row for it, and records nothing for the second).
    pub fn expire(&mut self, now: Timestamp) {
        let horizon = now.plus_millis(-self.policy.dedup_window_ms);
        while let Some((at, _, _)) = self.seen_order.front() {
            if *at >= horizon {
                break;
            }
            let (_, d, m) = self.seen_order.pop_front().expect("front exists");
            self.seen.remove(&d, &m);
        }
    }

    /// Phone fixes older than the policy allows stop counting: a responder whose phone has
    /// gone quiet is taken to be at their station, not where they were last seen.
    pub(super) fn expire_fixes(&mut self, now: Timestamp, out: &mut Outbox) {
        let horizon = now.plus_millis(-self.policy.max_fix_age_ms);
        while let Some((at, _)) = self.fixes.first() {
            if *at > horizon {
                break;
            }
            let (_, id) = self.fixes.pop_first().expect("first exists");
            self.fix_at.remove(&id);
            let Some(station) = self.responders.get(&id).and_then(|r| self.stations.get(&r.station_id)) else {
                continue;
            };
            let base = station.position;
            let r = self.responders.get_mut(&id).expect("checked");
            r.position = base;
            r.position_at = None;
            out.roster.push(r.clone());
            self.responder_placed(&id, base);
        }
    }

    /// Puts the incident's earliest deadline in the timer index.
    pub(crate) fn reschedule(&mut self, id: IncidentId) {
        self.unschedule(id);
        if let Some(due) = self.open.get(&id).and_then(Incident::next_deadline) {
            self.timers.insert((due, id));
            self.deadlines.insert(id, due);
        }
    }

    pub(super) fn unschedule(&mut self, id: IncidentId) {
        if let Some(due) = self.deadlines.remove(&id) {
            self.timers.remove(&(due, id));
        }
    }
}
