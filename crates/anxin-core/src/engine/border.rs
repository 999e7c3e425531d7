//! The engine's side of offers across a zone border ([`crate::border`]): neighbouring zones'
//! responders asked for and offered once held, and this engine's own responders held for
//! another zone's incidents.

use super::{Engine, HashMap, Outbox};
use crate::border::{Across, BorderMessage, BorderOutcome, Neighbour};
use crate::ids::{IncidentId, ResponderId, Timestamp};
use crate::incident::{Actor, Change};
use crate::matcher::Matcher;
use crate::registry::Responder;
use crate::zone::Zone;
use std::collections::BTreeSet;

/// Neighbouring zones' responders as this engine knows them.
#[derive(Debug, Default)]
pub(crate) struct Neighbours {
    /// Each one's zone and station's service circle.
    of: HashMap<ResponderId, (Zone, Option<u32>)>,
    /// Those taken for free: on duty as the ledger last said, not asked for or held by an
    /// incident here, not refused lately. Their zone's owner has the last word.
    pub(crate) free: Matcher,
    /// Refused lately: not asked for again until then.
    refused: BTreeSet<(Timestamp, ResponderId)>,
}

impl Neighbours {
    pub(crate) fn zone_of(&self, id: &ResponderId) -> Option<Zone> {
        self.of.get(id).map(|(z, _)| *z)
    }

    pub(crate) fn circle_of(&self, id: &ResponderId) -> Option<Option<u32>> {
        self.of.get(id).map(|(_, c)| *c)
    }

    pub(crate) fn contains(&self, id: &ResponderId) -> bool {
        // Asked for every offer the ladder weighs, mostly of an engine with no neighbours:
        // an empty map answers without hashing the id.
        !self.of.is_empty() && self.of.contains_key(id)
    }

    /// Whether there are any (none in an engine running every zone of its ledger).
    pub(crate) fn any(&self) -> bool {
        !self.of.is_empty()
    }

    fn is_refused(&self, id: &ResponderId) -> bool {
        self.refused.iter().any(|(_, r)| r == id)
    }
}

impl Engine {
    /// Adds neighbouring zones' responders ([`crate::Registry::neighbours_of`]) for the ladder
    /// to ask for across the border (under [`crate::Policy::border_offers`]). One of a zone this
    /// engine runs is passed over: they are its own.
    pub fn with_neighbours(mut self, neighbours: Vec<Neighbour>) -> Self {
        for n in neighbours {
            let id = n.responder.id.clone();
            if self.counters.contains_key(&n.zone) || self.responders.contains_key(&id) {
                continue;
            }
            if n.responder.on_duty && !self.busy.contains_key(&id) {
                self.neighbours.free.set_available(id.clone(), n.responder.position);
            }
            self.neighbours.of.insert(id.clone(), (n.zone, n.service_circle_min));
            self.responders.insert(id, n.responder);
        }
        self
    }

    /// Whether `id` is a neighbouring zone's responder (read-only here).
    pub fn is_neighbour(&self, id: &ResponderId) -> bool {
        self.neighbours.contains(id)
    }

    /// The neighbouring zones' responders this engine's incidents have asked for or hold, by
    /// id: their phones are this engine's to show.
    pub fn neighbours_engaged(&self) -> Vec<ResponderId> {
        let mut ids: Vec<ResponderId> = self.busy.keys().filter(|r| self.neighbours.contains(r)).cloned().collect();
        ids.sort();
        ids
    }

    /// Whether this engine's responder `id` is held for another zone's incident: that zone's
    /// owner shows their phone the offer or job.
    pub fn held_elsewhere(&self, id: &ResponderId) -> bool {
        !self.neighbours.contains(id) && self.busy.get(id).is_some_and(|i| !self.counters.contains_key(&Zone::of(i.0)))
    }

    /// A responder's station's service circle, minutes.
    pub(crate) fn circle_of(&self, r: &Responder) -> u32 {
        let own = || self.stations.get(&r.station_id).and_then(|s| s.service_circle_min);
        let circle = self.neighbours.circle_of(&r.id).unwrap_or_else(own);
        circle.unwrap_or(self.policy.default_service_circle_min)
    }

    /// Asks neighbour `responder`'s zone to hold them for incident `id`: shown as an offer out,
    /// their phone told nothing until they are held.
    pub(super) fn ask(
        &mut self,
        id: IncidentId,
        responder: ResponderId,
        distance_m: f64,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        let zone = self.neighbours.zone_of(&responder).expect("a neighbour");
        let deadline = now.plus_millis(self.policy.border_answer_ms);
        self.take(&responder, id, out);
        let change = Change::AskedAcross { responder_id: responder.clone(), zone, distance_m, deadline };
        self.record(id, change, Actor::Engine, now, out);
        out.across.push(Across { to: zone, message: BorderMessage::Hold { incident_id: id, responder_id: responder } });
    }

    /// Lets go of neighbour `responder`, whom incident `id` asked for or held: their zone is
    /// told, and they are taken for free again (unless refused lately or off duty as last known).
    pub(super) fn let_go_of_neighbour(&mut self, responder: &ResponderId, id: IncidentId, out: &mut Outbox) {
        let Some(zone) = self.neighbours.zone_of(responder) else { return };
        out.across.push(Across {
            to: zone,
            message: BorderMessage::Release { incident_id: id, responder_id: responder.clone() },
        });
        self.neighbour_free_again(responder);
    }

    fn neighbour_free_again(&mut self, responder: &ResponderId) {
        if self.neighbours.is_refused(responder) {
            return;
        }
        if let Some(r) = self.responders.get(responder).filter(|r| r.on_duty) {
            self.neighbours.free.set_available(responder.clone(), r.position);
        }
    }

    /// A message from another zone's owner ([`crate::border`]). Each may come twice, late, or
    /// after a later one: nothing is done twice, and a hold no longer wanted is let go of.
    pub fn handle_border(&mut self, message: BorderMessage, now: Timestamp, out: &mut Outbox) -> BorderOutcome {
        match message {
            BorderMessage::Hold { incident_id, responder_id } => self.hold_for(incident_id, responder_id, out),
            BorderMessage::Release { incident_id, responder_id } => {
                let ours = !self.neighbours.contains(&responder_id) && self.responders.contains_key(&responder_id);
                if ours && !self.open.contains_key(&incident_id) && self.busy.get(&responder_id) == Some(&incident_id) {
                    self.release(&responder_id, incident_id, out);
                    BorderOutcome::Acted
                } else {
                    BorderOutcome::Passed
                }
            }
            BorderMessage::Held { incident_id, responder_id, position } => {
                self.held(incident_id, responder_id, position, now, out)
            }
            BorderMessage::Refused { incident_id, responder_id } => self.refused(incident_id, responder_id, now, out),
            BorderMessage::OffDuty { incident_id, responder_id } => {
                self.went_off_duty(incident_id, responder_id, now, out)
            }
        }
    }

    /// A neighbour this engine's incident holds went off duty with their zone: an offer made
    /// to them is declined as they would have (`off_duty`), one asked for and not yet held
    /// ends as refused (their zone is told to let go: it holds them); a job stays theirs.
    fn went_off_duty(
        &mut self,
        id: IncidentId,
        responder: ResponderId,
        now: Timestamp,
        out: &mut Outbox,
    ) -> BorderOutcome {
        if let Some(r) = self.responders.get_mut(&responder).filter(|_| self.neighbours.contains(&responder)) {
            r.on_duty = false;
        }
        let asking = self.offer_of(id, &responder);
        match asking {
            Some(None) => {
                let change = Change::OfferDeclined { responder_id: responder.clone(), reason: Some("off_duty".into()) };
                self.end_offer(id, &responder, change, Actor::Responder(responder.clone()), now, out);
            }
            Some(Some(zone)) => {
                self.record(
                    id,
                    Change::RefusedAcross { responder_id: responder.clone(), zone },
                    Actor::Engine,
                    now,
                    out,
                );
                // Their zone holds them: told to let go, as after a lapse.
                self.release(&responder, id, out);
            }
            None => return BorderOutcome::Passed,
        }
        self.climb(id, now, out);
        self.after_change(id, out);
        BorderOutcome::Acted
    }

    /// Another zone asks for one of this engine's responders: held for its incident if free
    /// (their row says so, in this batch), else refused.
    fn hold_for(&mut self, incident_id: IncidentId, responder_id: ResponderId, out: &mut Outbox) -> BorderOutcome {
        let from = Zone::of(incident_id.0);
        if self.counters.contains_key(&from) {
            // An incident of a zone run here offers this engine's responders itself.
            return BorderOutcome::Passed;
        }
        let ours = !self.neighbours.contains(&responder_id) && self.responders.contains_key(&responder_id);
        let held = match self.busy.get(&responder_id) {
            Some(i) => *i == incident_id,
            None if ours && self.matcher.is_available(&responder_id) => {
                self.take(&responder_id, incident_id, out);
                true
            }
            None => false,
        };
        let message = match self.responders.get(&responder_id).filter(|_| ours && held) {
            Some(r) => BorderMessage::Held { incident_id, responder_id, position: r.position },
            None => BorderMessage::Refused { incident_id, responder_id },
        };
        out.across.push(Across { to: from, message });
        BorderOutcome::Acted
    }

    /// A neighbour asked for is held: the offer is made. Held for an incident that no longer
    /// asks for them: let go of at once.
    fn held(
        &mut self,
        id: IncidentId,
        responder: ResponderId,
        position: crate::geo::Coordinates,
        now: Timestamp,
        out: &mut Outbox,
    ) -> BorderOutcome {
        let asking = self.offer_of(id, &responder);
        match asking {
            Some(Some(zone)) => {
                let at = self.open[&id].location.at;
                if let Some(r) = self.responders.get_mut(&responder) {
                    r.position = position;
                }
                self.extras.moved(&responder, position);
                let distance_m = position.distance_m(at);
                let deadline = now.plus_millis(self.policy.offer_timeout_ms);
                let change = Change::HeldAcross { responder_id: responder, zone, distance_m, deadline };
                self.record(id, change, Actor::Engine, now, out);
                self.after_change(id, out);
                BorderOutcome::Acted
            }
            // Held already (an offer made, or, once accepted, their job): this came twice.
            Some(None) => BorderOutcome::Passed,
            None if self.busy.get(&responder) == Some(&id) => BorderOutcome::Passed,
            None => {
                if let Some(zone) = self.neighbours.zone_of(&responder) {
                    let message = BorderMessage::Release { incident_id: id, responder_id: responder };
                    out.across.push(Across { to: zone, message });
                }
                BorderOutcome::Passed
            }
        }
    }

    /// A neighbour asked for cannot be spared: not asked for again for a while, and the
    /// ladder goes on.
    fn refused(&mut self, id: IncidentId, responder: ResponderId, now: Timestamp, out: &mut Outbox) -> BorderOutcome {
        let asking = self.offer_of(id, &responder).flatten();
        let Some(zone) = asking else { return BorderOutcome::Passed };
        self.record(id, Change::RefusedAcross { responder_id: responder.clone(), zone }, Actor::Engine, now, out);
        if self.busy.get(&responder) == Some(&id) {
            self.busy.remove(&responder);
            out.responders.push(responder.clone());
        }
        self.neighbours.free.set_unavailable(&responder);
        self.neighbours.refused.retain(|(_, r)| r != &responder);
        self.neighbours.refused.insert((now.plus_millis(self.policy.border_refused_ms), responder));
        self.climb(id, now, out);
        self.after_change(id, out);
        BorderOutcome::Acted
    }

    /// Incident `id`'s live offer to `responder`, if any: `Some(Some(zone))` asked of `zone`
    /// and not yet held, `Some(None)` made.
    fn offer_of(&self, id: IncidentId, responder: &ResponderId) -> Option<Option<Zone>> {
        let incident = self.open.get(&id)?;
        incident.ladder.offers.iter().find(|o| &o.responder_id == responder).map(|o| o.asking)
    }

    /// When the first neighbour refused lately may be asked for again.
    pub(super) fn next_refusal_end(&self) -> Option<Timestamp> {
        self.neighbours.refused.first().map(|(t, _)| *t)
    }

    /// Neighbours refused long enough ago are taken for free again.
    pub(super) fn expire_refusals(&mut self, now: Timestamp) {
        while let Some((t, _)) = self.neighbours.refused.first() {
            if *t > now {
                break;
            }
            let (_, r) = self.neighbours.refused.pop_first().expect("first exists");
            if !self.busy.contains_key(&r) {
                self.neighbour_free_again(&r);
            }
        }
    }
}
