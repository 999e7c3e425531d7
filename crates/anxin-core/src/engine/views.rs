//! Views: read-only pictures of the engine's state for consoles, phones and the map. Nothing
//! here changes anything.

use super::candidates::{Candidate, Candidates};
use super::Engine;
use crate::ids::{ElderId, IncidentId, ResponderId, StationId, Timestamp};
use crate::incident::*;
use crate::registry::Responder;

/// How many nearby service workers a dispatcher's suggestions list after the responders.
const WORKERS_SUGGESTED: usize = 3;

impl Engine {
    /// Views of every open incident, most urgent first, then oldest first.
    pub fn snapshot(&self) -> Vec<IncidentView> {
        let mut views: Vec<_> = self.open.values().map(|i| self.view(i)).collect();
        views.sort_by_key(IncidentView::order);
        views
    }

    /// The station an elder belongs to: the one nearest their home.
    pub fn home_station(&self, elder: &ElderId) -> Option<StationId> {
        let home = self.elders.get(elder)?.home;
        self.matcher.nearest_station(home).map(|s| s.id)
    }

    /// What a responder's phone shows: their live offer or job, if any.
    pub fn job_view(&self, responder: &ResponderId, now: Timestamp) -> Option<JobView> {
        let id = self.busy.get(responder)?;
        let incident = self.open.get(id)?;
        let offer = incident.ladder.offers.iter().find(|o| &o.responder_id == responder);
        // Asked for across the border and not yet held: nothing to show them yet.
        if offer.is_some_and(|o| o.asking.is_some()) {
            return None;
        }
        let (distance_m, offer_deadline) = match offer {
            Some(o) => (o.distance_m, Some(o.deadline)),
            None => (incident.responder.as_ref().map_or(0.0, |r| r.distance_m), None),
        };
        Some(JobView {
            incident_id: incident.id,
            state: if offer.is_some() { IncidentState::Offered } else { incident.state },
            offer_deadline,
            kind: incident.kind,
            elder: self.elder_view(&incident.elder_id, incident.pressed_at),
            location: incident.location,
            distance_m,
            eta_min: self.eta_min(responder, distance_m),
            pressed_at: incident.pressed_at,
            server_time: now,
        })
    }

    /// A station's name, for the phone of a responder who belongs to it.
    pub fn station_name(&self, id: &StationId) -> Option<&str> {
        self.stations.get(id).map(|s| s.name.as_str())
    }

    /// Whole minutes, at least one, for this responder to cover `distance_m`.
    pub(super) fn eta_min(&self, responder: &ResponderId, distance_m: f64) -> u32 {
        let mode = self.responders.get(responder).map(|r| r.mode).unwrap_or_default();
        self.policy.travel_min(distance_m, mode).ceil().max(1.0) as u32
    }

    /// The responder whose sign-in token has this SHA-256 (lowercase hex).
    pub fn responder_by_token_sha256(&self, hash: &str) -> Option<&Responder> {
        self.responders.values().find(|r| r.token_sha256.as_deref() == Some(hash))
    }

    /// The elder as consoles and phones show them, their age as of `at`.
    pub(crate) fn elder_view(&self, id: &ElderId, at: Timestamp) -> ElderView {
        let Some(elder) = self.elders.get(id) else {
            return ElderView {
                id: id.clone(),
                name: String::new(),
                address: String::new(),
                phone: None,
                notes: String::new(),
                age: None,
                lives_alone: None,
                conditions: Vec::new(),
                medications: Vec::new(),
                mobility: String::new(),
                language: String::new(),
                door_notes: String::new(),
                contacts: Vec::new(),
            };
        };
        let p = &elder.profile;
        ElderView {
            id: id.clone(),
            name: elder.name.clone(),
            address: elder.address.clone(),
            phone: elder.phone.clone(),
            notes: elder.notes.clone(),
            age: p.birth_year.and_then(|y| u32::try_from(at.year() - i64::from(y)).ok()),
            lives_alone: p.lives_alone,
            conditions: p.conditions.clone(),
            medications: p.medications.clone(),
            mobility: p.mobility.clone(),
            language: p.language.clone(),
            door_notes: p.door_notes.clone(),
            contacts: p.contacts.clone(),
        }
    }

    /// A responder as consoles' maps show them. A neighbouring zone's responder has none
    /// here: their zone's engine shows them.
    pub fn responder_view(&self, id: &ResponderId) -> Option<ResponderView> {
        if self.neighbours.contains(id) {
            return None;
        }
        let r = self.responders.get(id)?;
        let incident_id = self.busy.get(id).copied();
        let offered = incident_id
            .and_then(|i| self.open.get(&i))
            .is_some_and(|i| i.ladder.offers.iter().any(|o| &o.responder_id == id));
        let status = match (r.on_duty, incident_id, offered) {
            (_, Some(_), true) => ResponderStatus::Offered,
            (_, Some(_), false) => ResponderStatus::Busy,
            (true, None, _) => ResponderStatus::Available,
            (false, None, _) => ResponderStatus::OffDuty,
        };
        Some(ResponderView {
            id: r.id.clone(),
            name: r.name.clone(),
            station_id: r.station_id.clone(),
            phone: r.phone.clone(),
            mode: r.mode,
            skills: r.skills.clone(),
            on_duty: r.on_duty,
            status,
            incident_id,
            position: r.position,
            position_at: r.position_at,
            provider_id: r.provider_id.clone(),
        })
    }

    /// Every responder, by id.
    pub fn roster_view(&self) -> Vec<ResponderView> {
        let mut ids: Vec<&ResponderId> = self.responders.keys().collect();
        ids.sort();
        ids.into_iter().filter_map(|id| self.responder_view(id)).collect()
    }

    /// Every station, by id, with its service circle.
    pub fn stations_view(&self) -> Vec<StationView> {
        let mut all: Vec<StationView> = self
            .stations
            .values()
            .map(|s| StationView {
                id: s.id.clone(),
                name: s.name.clone(),
                phone: s.phone.clone(),
                position: s.position,
                service_circle_min: s.service_circle_min.unwrap_or(self.policy.default_service_circle_min),
            })
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Whom a dispatcher could put on incident `id`: available responders within the offer
    /// distance, soonest to arrive first, at most `limit`, each marked with whether they are
    /// inside their service circle and have the skill the kind needs. Ones the ladder tried
    /// are included: a dispatcher may have spoken to them. The first that is untried, within
    /// the circle and has the skill is whom the ladder offers next under the default matching
    /// ([`Engine::best_candidate`]). After them come the nearest service workers not on an
    /// emergency (at most three, marked `worker`, with the order they would leave).
    pub fn suggestions(&self, id: IncidentId, limit: usize) -> Option<Vec<Suggestion>> {
        let incident = self.open.get(&id)?;
        let candidates = Candidates::new(self, incident);
        // The nearest 200 hold the soonest few.
        let mut all: Vec<Candidate<'_>> = candidates.nearby().take(200).collect();
        all.sort_by(|a, b| a.minutes.total_cmp(&b.minutes));
        let suggestion = |c: Candidate<'_>| {
            let r = c.responder;
            Suggestion {
                responder: PartyView {
                    id: r.id.to_string(),
                    name: r.name.clone(),
                    phone: r.phone.clone(),
                    distance_m: Some(c.distance_m),
                },
                mode: r.mode,
                station_id: r.station_id.clone(),
                distance_m: c.distance_m,
                eta_min: self.eta_min(&r.id, c.distance_m),
                within_circle: c.within_circle,
                has_skill: c.has_skill,
                worker: None,
            }
        };
        let mut list: Vec<Suggestion> = all.into_iter().take(limit).map(suggestion).collect();
        list.extend(self.workers_nearby(incident));
        Some(list)
    }

    /// The on-duty service workers within the offer distance of `incident` and not on another
    /// emergency, nearest first, at most [`WORKERS_SUGGESTED`]: listed after the responders,
    /// for a dispatcher to send from a home next door if nobody else is near.
    fn workers_nearby(&self, incident: &Incident) -> Vec<Suggestion> {
        let at = incident.location.at;
        let candidates = Candidates::new(self, incident);
        let mut near: Vec<Candidate<'_>> = self
            .services
            .workers
            .values()
            .flatten()
            .filter_map(|id| self.responders.get(id))
            .filter(|r| r.on_duty && !self.busy.contains_key(&r.id))
            .map(|r| candidates.weigh(r, r.position.distance_m(at)))
            .filter(|c| c.distance_m <= self.policy.max_offer_distance_m)
            .collect();
        near.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m).then_with(|| a.responder.id.cmp(&b.responder.id)));
        near.into_iter()
            .take(WORKERS_SUGGESTED)
            .filter_map(|c| {
                let r = c.responder;
                let provider = self.services.providers.get(r.provider_id.as_ref()?)?;
                let order =
                    self.services.out_on.get(&r.id).and_then(|id| self.services.open.get(id)).map(|o| WorkerOnOrder {
                        id: o.id,
                        category: o.category.clone(),
                        state: o.state,
                        elder_name: self.elders.get(&o.elder_id).map(|e| e.name.clone()).unwrap_or_default(),
                    });
                Some(Suggestion {
                    responder: self.responder_party(&r.id, c.distance_m),
                    mode: r.mode,
                    station_id: r.station_id.clone(),
                    distance_m: c.distance_m,
                    eta_min: self.eta_min(&r.id, c.distance_m),
                    within_circle: c.within_circle,
                    has_skill: c.has_skill,
                    worker: Some(SuggestedWorker {
                        provider_id: provider.id.clone(),
                        provider_name: provider.name.clone(),
                        order,
                    }),
                })
            })
            .collect()
    }

    /// A member of staff's name, by sign-in id.
    pub(crate) fn staff_name(&self, id: &str) -> Option<&str> {
        self.staff.get(id).map(|s| s.name.as_str())
    }

    /// A member of staff as consoles show them.
    pub(super) fn staff_view(&self, id: &str) -> PartyView {
        let name = self.staff.get(id).map(|s| s.name.clone()).unwrap_or_else(|| id.to_string());
        PartyView { id: id.to_string(), name, phone: None, distance_m: None }
    }

    /// A responder on an incident as consoles show them, `distance_m` away from it.
    fn responder_party(&self, id: &ResponderId, distance_m: f64) -> PartyView {
        let r = self.responders.get(id);
        PartyView {
            id: id.to_string(),
            name: r.map(|r| r.name.clone()).unwrap_or_default(),
            phone: r.and_then(|r| r.phone.clone()),
            distance_m: Some(distance_m),
        }
    }

    /// The console's view of an incident, with names looked up in the ledger.
    pub fn view(&self, incident: &Incident) -> IncidentView {
        IncidentView {
            welfare: incident.welfare,
            id: incident.id,
            seq: incident.last_seq,
            kind: incident.kind,
            priority: incident.kind.priority(),
            state: incident.state,
            device_id: incident.device_id.clone(),
            device_sim: self.sim_of(&incident.device_id),
            elder: self.elder_view(&incident.elder_id, incident.pressed_at),
            location: incident.location,
            responder: incident.responder.as_ref().map(|a| self.responder_party(&a.id, a.distance_m)),
            station: incident.station.as_ref().map(|a| {
                let s = self.stations.get(&a.id);
                PartyView {
                    id: a.id.to_string(),
                    name: s.map(|s| s.name.clone()).unwrap_or_default(),
                    phone: s.and_then(|s| s.phone.clone()),
                    distance_m: Some(a.distance_m),
                }
            }),
            offers: incident
                .ladder
                .offers
                .iter()
                .map(|o| OfferView {
                    responder: self.responder_party(&o.responder_id, o.distance_m),
                    deadline: o.deadline,
                    asking: o.asking,
                })
                .collect(),
            press_count: incident.press_count,
            cancel_requested: incident.cancel_requested,
            dispatcher_needed: incident.dispatcher_needed,
            problem: incident.problem.clone(),
            ladder: incident.ladder.clone(),
            outcome: incident.outcome.clone(),
            pressed_at: incident.pressed_at,
            opened_at: incident.opened_at,
            updated_at: incident.updated_at,
            claimed_by: incident.claimed_by.as_deref().map(|d| self.staff_view(d)),
            acknowledged_at: incident.acknowledged_at,
            alarm: incident.alarm,
            offers_planned: if incident.kind.is_emergency() { self.policy.ladder(incident.kind).offers } else { 0 },
            emergency_call: incident.emergency_call.clone(),
            no_offer: incident.no_offer.clone(),
            family: incident.family.clone(),
            carer: incident.carer.as_ref().map(|c| self.responder_party(c, 0.0)),
            calls: incident.calls.clone(),
        }
    }
}
