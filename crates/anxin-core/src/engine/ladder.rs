//! The ladder: offers with deadlines, and the escalation from responders to the station's
//! duty line to a dispatcher. Whom to offer next is [`super::candidates`]' answer.

use super::candidates::Candidates;
use super::{Engine, Outbox};
use crate::dispatch::Search;
use crate::ids::{IncidentId, ResponderId, Timestamp};
use crate::incident::*;
use crate::policy::Matching;

impl Engine {
    /// Moves the incident up the ladder from where it is: more offers while the kind's ladder
    /// allows them (up to its number in parallel), else the station, else a dispatcher.
    pub(crate) fn climb(&mut self, id: IncidentId, now: Timestamp, out: &mut Outbox) {
        let incident = &self.open[&id];
        if incident.ladder.off_ladder || incident.state.is_terminal() {
            return;
        }
        if incident.ladder.rung != Rung::Responders {
            self.call_in_dispatcher(id, DispatcherNeeded::NobodyGoing, now, out);
            return;
        }
        let ladder = self.policy.ladder(incident.kind);
        let mut search = Search::default();
        loop {
            let incident = &self.open[&id];
            let live = incident.ladder.offers.len() as u32;
            if live >= ladder.parallel.max(1) || incident.ladder.offers_made >= ladder.offers {
                break;
            }
            match self.best_candidate(id) {
                Ok((responder, distance_m)) => self.offer(id, responder, distance_m, now, out),
                Err(why) => {
                    search = why;
                    break;
                }
            }
        }
        let incident = &self.open[&id];
        if !incident.ladder.offers.is_empty() {
            return;
        }
        if incident.ladder.offers_made == 0 && ladder.offers > 0 {
            let own_station = self.policy.matching == Matching::OwnStation;
            let change = if own_station && search.in_range == 0 {
                Change::NobodyFreeAtStation { station_id: self.home_station(&incident.elder_id) }
            } else if search.in_range == 0 {
                Change::NobodyInRange { max_distance_m: self.policy.max_offer_distance_m }
            } else {
                Change::NobodyQualified {
                    in_range: search.in_range,
                    already_tried: search.already_tried,
                    lacking_skill: search.lacking_skill,
                    outside_circle: search.outside_circle,
                }
            };
            self.log(id, now, Actor::Engine, change, out);
        }
        let station = self.open[&id].station.clone().filter(|_| ladder.station);
        if let Some(station) = station {
            let deadline = now.plus_millis(self.policy.station_timeout_ms);
            let change = Change::StationAlerted { station_id: station.id.clone(), deadline };
            let seq = self.log(id, now, Actor::Engine, change, out);
            let number = self.standing_number(self.open[&id].kind);
            let incident = self.open.get_mut(&id).expect("open");
            incident.ladder.rung = Rung::Station;
            incident.ladder.station_deadline = Some(deadline);
            incident.ladder.emergency_number = number;
            incident.state = IncidentState::StationAlerted;
            incident.responder = None;
            incident.dispatcher_needed = None;
            incident.last_seq = seq;
            incident.updated_at = now;
            let incident = &self.open[&id];
            out.alerts.push(StationAlert {
                station_id: station.id,
                incident_id: id,
                kind: incident.kind,
                elder: self.elder_view(&incident.elder_id, incident.pressed_at),
                location: incident.location,
                distance_m: station.distance_m,
                offers_made: incident.ladder.offers_made,
                deadline,
                pressed_at: incident.pressed_at,
                server_time: now,
            });
            return;
        }
        self.call_in_dispatcher(id, DispatcherNeeded::NobodyGoing, now, out);
    }

    /// The last rung: a dispatcher must act, with the emergency number to call.
    pub(super) fn call_in_dispatcher(
        &mut self,
        id: IncidentId,
        why: DispatcherNeeded,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        let kind = self.open[&id].kind;
        let emergency_number = self.policy.emergency_number(kind);
        let seq =
            self.log(id, now, Actor::Engine, Change::NobodyGoing { emergency_number: emergency_number.clone() }, out);
        let remind_at = now.plus_millis(self.policy.reminder_interval_ms);
        let incident = self.open.get_mut(&id).expect("open");
        incident.ladder.rung = Rung::Dispatcher;
        incident.ladder.emergency_number = emergency_number;
        incident.ladder.remind_at = Some(remind_at);
        incident.state = IncidentState::AwaitingDispatcher;
        incident.responder = None;
        incident.dispatcher_needed = Some(why);
        incident.last_seq = seq;
        incident.updated_at = now;
    }

    /// Who the ladder would offer incident `id` to next: among available responders within
    /// the offer distance who have not been tried, have the skill the kind needs, and can get
    /// there inside their station's service circle, the one who gets there soonest (by their
    /// travel mode); under [`Matching::OwnStation`](crate::Matching::OwnStation), the soonest
    /// untried responder with the skill of the elder's own station, however far. Returns the
    /// responder and their great-circle distance, or, when nobody qualifies, why not.
    ///
    /// Under the default matching this is the first of [`Engine::suggestions`] that is
    /// untried, has the skill and is within the circle: both come from one filter.
    pub fn best_candidate(&self, id: IncidentId) -> Result<(ResponderId, f64), Search> {
        let Some(incident) = self.open.get(&id) else { return Err(Search::default()) };
        Candidates::new(self, incident).best().map(|c| (c.responder.id.clone(), c.distance_m))
    }

    pub(super) fn offer(
        &mut self,
        id: IncidentId,
        responder: ResponderId,
        distance_m: f64,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        let deadline = now.plus_millis(self.policy.offer_timeout_ms);
        self.take(&responder, id, out);
        let change = Change::Offered { responder_id: responder.clone(), distance_m, deadline };
        let seq = self.log(id, now, Actor::Engine, change, out);
        let number = self.standing_number(self.open[&id].kind);
        let incident = self.open.get_mut(&id).expect("open");
        incident.state = IncidentState::Offered;
        incident.responder = None;
        incident.dispatcher_needed = None;
        incident.ladder.emergency_number = number;
        incident.ladder.offers_made += 1;
        incident.ladder.offers.push(LiveOffer { responder_id: responder, distance_m, deadline });
        incident.ladder.offer_deadline = incident.ladder.offers.iter().map(|o| o.deadline).min();
        incident.last_seq = seq;
        incident.updated_at = now;
    }

    /// Ends the live offer to `responder` (declined, lapsed or withdrawn) and frees them.
    pub(super) fn end_offer(
        &mut self,
        id: IncidentId,
        responder: &ResponderId,
        change: Change,
        actor: Actor,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        let seq = self.log(id, now, actor, change, out);
        self.release(responder, id, out);
        let incident = self.open.get_mut(&id).expect("open");
        incident.ladder.offers.retain(|o| &o.responder_id != responder);
        incident.ladder.offer_deadline = incident.ladder.offers.iter().map(|o| o.deadline).min();
        if !incident.ladder.tried.contains(responder) {
            incident.ladder.tried.push(responder.clone());
        }
        incident.last_seq = seq;
        incident.updated_at = now;
    }

    /// Withdraws every live offer on `id` except `keep`'s.
    pub(super) fn withdraw_offers(
        &mut self,
        id: IncidentId,
        keep: Option<&ResponderId>,
        actor: &Actor,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        let others: Vec<ResponderId> =
            self.open[&id].ladder.offers.iter().map(|o| o.responder_id.clone()).filter(|r| Some(r) != keep).collect();
        for responder in others {
            let change = Change::OfferWithdrawn { responder_id: responder.clone() };
            self.end_offer(id, &responder, change, actor.clone(), now, out);
        }
    }

    /// The emergency number shown from the start for kinds whose service is called whoever
    /// goes (fire, police); `None` for the others, whose number shows when nobody is going.
    pub(crate) fn standing_number(&self, kind: IncidentKind) -> Option<String> {
        match kind {
            IncidentKind::Fire | IncidentKind::Intrusion => self.policy.emergency_number(kind),
            _ => None,
        }
    }

    /// Marks a responder as holding an offer or job on `id`.
    pub(super) fn take(&mut self, responder: &ResponderId, id: IncidentId, out: &mut Outbox) {
        out.responders.push(responder.clone());
        self.matcher.set_unavailable(responder);
        self.busy.insert(responder.clone(), id);
    }

    /// Frees a responder from incident `id`: available again if on duty. A responder who has
    /// since moved on to another incident is left alone.
    pub(super) fn release(&mut self, responder: &ResponderId, id: IncidentId, out: &mut Outbox) {
        if self.busy.get(responder) != Some(&id) {
            return;
        }
        out.responders.push(responder.clone());
        self.busy.remove(responder);
        if let Some(r) = self.responders.get(responder) {
            if r.on_duty {
                self.matcher.set_available(responder.clone(), r.position);
            }
        }
    }
}
