//! The ladder: offers with deadlines, and the escalation from responders to the station's
//! duty line to a dispatcher.
//!
//! Every offer has a deadline and every deadline an escalation: the responders who get there
//! soonest, as many as the kind's ladder allows (some at once when it offers in parallel);
//! then the nearest station's duty line; then a dispatcher, reminded until a person acts.
//! Whom to offer next is `super::candidates`' answer; the deadlines are kept in
//! `super::timers`.

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
            self.call_in_dispatcher(id, now, out);
            return;
        }
        let ladder = self.policy.ladder(incident.kind);
        let mut search = Search::default();
        loop {
            let incident = &self.open[&id];
            let live = incident.ladder.offers.len() as u32;
            let room = (ladder.parallel.max(1).saturating_sub(live))
                .min(ladder.offers.saturating_sub(incident.ladder.offers_made));
            if room == 0 {
                break;
            }
            // The next `room` choices from one search, offered in turn, as `room` searches
            // would have found them; searched again while room is left (an offer across a
            // border is asked for, not made; fewer qualified), and to say why when none did.
            match self.best_candidates(id, room as usize) {
                Ok(found) => {
                    for (responder, distance_m) in found {
                        self.offer(id, responder, distance_m, now, out);
                    }
                }
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
        if self.policy.yield_extra_offers && incident.ladder.offers_made < ladder.offers {
            if let Some((responder, distance_m, from)) = self.best_extra_offer(id) {
                // The other incident keeps at least one offer; this one gets its first.
                let change = Change::OfferWithdrawn { responder_id: responder.clone() };
                self.end_offer(from, &responder, change, Actor::Engine, now, out);
                // The other incident changed too: stored and shown as it now is, with its
                // timers set again (its earliest offer may have been this one).
                self.after_change(from, out);
                self.offer(id, responder, distance_m, now, out);
                return;
            }
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
            self.record(id, change, Actor::Engine, now, out);
        }
        let station = self.open[&id].station.clone().filter(|_| ladder.station);
        if let Some(station) = station {
            let deadline = now.plus_millis(self.policy.station_timeout_ms);
            let change = Change::StationAlerted { station_id: station.id.clone(), deadline };
            self.record(id, change, Actor::Engine, now, out);
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
        self.call_in_dispatcher(id, now, out);
    }

    /// The last rung: a dispatcher must act, with the emergency number to call.
    pub(super) fn call_in_dispatcher(&mut self, id: IncidentId, now: Timestamp, out: &mut Outbox) {
        let emergency_number = self.policy.emergency_number(self.open[&id].kind);
        self.record(id, Change::NobodyGoing { emergency_number }, Actor::Engine, now, out);
    }

    /// Who the ladder would offer incident `id` to next: among available responders within
    /// the offer distance who have not been tried, have the skill the kind needs, and can get
    /// there inside their station's service circle, the one who gets there soonest (by their
    /// travel mode); under [`Matching::OwnStation`], the soonest
    /// untried responder with the skill of the elder's own station, however far. Returns the
    /// responder and their great-circle distance, or, when nobody qualifies, why not.
    ///
    /// Under the default matching this is the first of [`Engine::suggestions`] that is
    /// untried, has the skill and is within the circle: both come from one filter.
    pub fn best_candidate(&self, id: IncidentId) -> Result<(ResponderId, f64), Search> {
        let Some(incident) = self.open.get(&id) else { return Err(Search::default()) };
        Candidates::new(self, incident).best().map(|c| (c.responder.id.clone(), c.distance_m))
    }

    /// [`Engine::best_candidate`]'s next `k` answers, each as if the ones before had been
    /// offered the job: soonest first, fewer when fewer qualify.
    fn best_candidates(&self, id: IncidentId, k: usize) -> Result<Vec<(ResponderId, f64)>, Search> {
        let Some(incident) = self.open.get(&id) else { return Err(Search::default()) };
        let found = Candidates::new(self, incident).best_few(k)?;
        Ok(found.into_iter().map(|c| (c.responder.id.clone(), c.distance_m)).collect())
    }

    /// A responder the ladder could take from another incident's extra parallel offers for
    /// incident `id` when nobody free qualifies (see [`Policy::yield_extra_offers`]): the
    /// responder, their great-circle distance, and the incident whose offer they hold.
    ///
    /// [`Policy::yield_extra_offers`]: crate::policy::Policy::yield_extra_offers
    pub fn best_extra_offer(&self, id: IncidentId) -> Option<(ResponderId, f64, IncidentId)> {
        let incident = self.open.get(&id)?;
        Candidates::new(self, incident).best_extra_offer().map(|(c, from)| (c.responder.id.clone(), c.distance_m, from))
    }

    /// [`Engine::best_extra_offer`] found by reading every extra offer out, without the index
    /// of their holders: the simulation's reference.
    #[doc(hidden)]
    pub fn best_extra_offer_by_reading_all(&self, id: IncidentId) -> Option<(ResponderId, f64, IncidentId)> {
        let incident = self.open.get(&id)?;
        Candidates::new(self, incident)
            .best_extra_offer_by_reading_all()
            .map(|(c, from)| (c.responder.id.clone(), c.distance_m, from))
    }

    pub(super) fn offer(
        &mut self,
        id: IncidentId,
        responder: ResponderId,
        distance_m: f64,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        if self.neighbours.any() && self.neighbours.contains(&responder) {
            self.ask(id, responder, distance_m, now, out);
            return;
        }
        let deadline = now.plus_millis(self.policy.offer_timeout_ms);
        self.take(&responder, id, out);
        let change = Change::Offered { responder_id: responder.clone(), distance_m, deadline };
        self.record(id, change, Actor::Engine, now, out);
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
        self.record(id, change, actor, now, out);
        self.release(responder, id, out);
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

    /// Marks a responder as holding an offer or job on `id` (a neighbour: asked for or held).
    /// One of this engine's responders taken for another zone's incident has their row say so
    /// ([`crate::border::Hold`]), for whoever runs their zone next.
    pub(super) fn take(&mut self, responder: &ResponderId, id: IncidentId, out: &mut Outbox) {
        out.responders.push(responder.clone());
        self.matcher.set_unavailable(responder);
        if self.neighbours.any() {
            self.neighbours.free.set_unavailable(responder);
        }
        self.busy.insert(responder.clone(), id);
        if self.holds_across(responder, id) {
            out.holds.push(crate::border::Hold { responder_id: responder.clone(), incident_id: Some(id) });
        }
    }

    /// Whether `responder` is this engine's and of another zone than incident `id`'s. In an
    /// engine running one zone its own responders are all of it: whether the incident is
    /// another zone's (held for it across a border), without looking them up.
    fn holds_across(&self, responder: &ResponderId, id: IncidentId) -> bool {
        let zone = crate::zone::Zone::of(id.0);
        if self.counters.len() == 1 {
            return !self.counters.contains_key(&zone) && !self.neighbours.contains(responder);
        }
        !self.neighbours.contains(responder)
            && self.responders.get(responder).is_some_and(|r| self.zone_of_station(&r.station_id) != zone)
    }

    /// Frees a responder from incident `id`: available again if on duty (a neighbour: their
    /// zone is told). A responder who has since moved on to another incident is left alone.
    pub(super) fn release(&mut self, responder: &ResponderId, id: IncidentId, out: &mut Outbox) {
        if self.busy.get(responder) != Some(&id) {
            return;
        }
        out.responders.push(responder.clone());
        self.busy.remove(responder);
        if self.neighbours.any() && self.neighbours.contains(responder) {
            self.let_go_of_neighbour(responder, id, out);
            return;
        }
        if self.holds_across(responder, id) {
            out.holds.push(crate::border::Hold { responder_id: responder.clone(), incident_id: None });
        }
        if let Some(r) = self.responders.get(responder) {
            if r.on_duty && r.provider_id.is_none() {
                self.matcher.set_available(responder.clone(), r.position);
            }
        }
    }
}
