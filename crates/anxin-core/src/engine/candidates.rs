//! Who could go: the one filter behind the ladder's offers, matching by the elder's own
//! station, and the suggestions a dispatcher is shown.
//!
//! A candidate is an available responder (on duty, holding no offer or job: the matcher's
//! notion of available) weighed for one incident: how far, how many minutes by their travel
//! mode, and whether they were tried already, have the skill the kind needs, and get there
//! inside their station's service circle. The ladder offers the qualifying candidate who
//! gets there soonest; a dispatcher is shown every candidate, soonest first, with the same
//! marks, so the ladder's next offer is always the first suggestion that qualifies.

use super::Engine;
use crate::dispatch::Search;
use crate::ids::{IncidentId, ResponderId, StationId};
use crate::incident::Incident;
use crate::matcher::Nearest;
use crate::policy::Matching;
use crate::registry::Responder;

/// One available responder weighed for an incident.
#[derive(Debug, Clone)]
pub(crate) struct Candidate<'e> {
    pub(crate) responder: &'e Responder,
    /// Great-circle distance to the incident.
    pub(crate) distance_m: f64,
    /// Estimated minutes to get there by their travel mode.
    pub(crate) minutes: f64,
    /// They declined this incident, let its offer lapse or lost it to another.
    pub(crate) tried: bool,
    /// They have the skill the incident's kind needs (or it needs none).
    pub(crate) has_skill: bool,
    /// They get there inside their station's service circle.
    pub(crate) within_circle: bool,
}

/// Why the ladder passes a candidate over: the first reason that applies, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuledOut {
    Tried,
    LackingSkill,
    OutsideCircle,
}

impl Candidate<'_> {
    /// Why the ladder may not offer them the job; `circle` says whether the service circle
    /// bounds this pool (matching by the elder's own station sends its responders however far).
    fn ruled_out(&self, circle: bool) -> Option<RuledOut> {
        if self.tried {
            Some(RuledOut::Tried)
        } else if !self.has_skill {
            Some(RuledOut::LackingSkill)
        } else if circle && !self.within_circle {
            Some(RuledOut::OutsideCircle)
        } else {
            None
        }
    }
}

impl Search {
    fn rule_out(&mut self, why: RuledOut) {
        match why {
            RuledOut::Tried => self.already_tried += 1,
            RuledOut::LackingSkill => self.lacking_skill += 1,
            RuledOut::OutsideCircle => self.outside_circle += 1,
        }
    }
}

/// Two lists of responders, each nearest first, as one.
fn nearest_first<'a>(
    a: impl Iterator<Item = Nearest<&'a ResponderId>> + 'a,
    b: impl Iterator<Item = Nearest<&'a ResponderId>> + 'a,
) -> impl Iterator<Item = Nearest<&'a ResponderId>> + 'a {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek(), b.peek()) {
        (Some(x), Some(y)) if y.distance_m < x.distance_m => b.next(),
        (Some(_), _) => a.next(),
        (None, _) => b.next(),
    })
}

/// The candidates for one incident.
#[derive(Debug)]
pub(crate) struct Candidates<'e> {
    engine: &'e Engine,
    incident: &'e Incident,
    skill: Option<&'static str>,
}

impl<'e> Candidates<'e> {
    pub(crate) fn new(engine: &'e Engine, incident: &'e Incident) -> Self {
        Self { engine, incident, skill: engine.policy.required_skill(incident.kind) }
    }

    /// How `responder`, `distance_m` away, stands for this incident: time, skill, circle.
    pub(crate) fn weigh(&self, responder: &'e Responder, distance_m: f64) -> Candidate<'e> {
        let policy = &self.engine.policy;
        let minutes = policy.travel_min(distance_m, responder.mode);
        let circle = self.engine.circle_of(responder);
        Candidate {
            responder,
            distance_m,
            minutes,
            tried: self.incident.ladder.tried.contains(&responder.id),
            has_skill: self.skill.is_none_or(|s| responder.skills.iter().any(|k| k == s)),
            within_circle: minutes <= f64::from(circle),
        }
    }

    /// Available responders within the offer distance, nearest first, lazily: this engine's
    /// (any zone it runs), and neighbouring zones' taken for free, to be asked for across the
    /// border ([`crate::border`]). Without [`Policy::border_offers`] only the incident's zone's:
    /// offers stay within the zone (docs/architecture.md, "Zones").
    ///
    /// [`Policy::border_offers`]: crate::policy::Policy::border_offers
    pub(crate) fn nearby(&self) -> impl Iterator<Item = Candidate<'e>> + '_ {
        let engine = self.engine;
        let zone = crate::zone::Zone::of(self.incident.id.0);
        let across = engine.policy.border_offers;
        let (at, max) = (self.incident.location.at, engine.policy.max_offer_distance_m);
        let own = engine.matcher.responders_within(at, max);
        let neighbours = (across && engine.neighbours.any())
            .then(|| engine.neighbours.free.responders_within(at, max))
            .into_iter()
            .flatten();
        nearest_first(own, neighbours)
            .filter_map(move |n| engine.responders.get(n.id).map(|r| (r, n.distance_m)))
            .filter(move |(r, _)| across || engine.zone_of_station(&r.station_id) == zone)
            .map(move |(r, distance_m)| self.weigh(r, distance_m))
    }

    /// The available responders of `station`, however far, in roster order.
    pub(crate) fn of_station(&self, station: Option<&StationId>) -> impl Iterator<Item = Candidate<'e>> + '_ {
        let engine = self.engine;
        let at = self.incident.location.at;
        let members = station.and_then(|s| engine.by_station.get(s)).map(Vec::as_slice).unwrap_or_default();
        members
            .iter()
            .filter(|id| engine.matcher.is_available(id))
            .filter_map(move |id| engine.responders.get(id))
            .map(move |r| self.weigh(r, r.position.distance_m(at)))
    }

    /// The ladder's choice under the policy's matching: the qualifying candidate who gets
    /// there soonest (of equals, the one met first: the nearest), or, when nobody
    /// qualifies, how many were ruled out for each reason.
    pub(crate) fn best(&self) -> Result<Candidate<'e>, Search> {
        self.best_few(1).map(|mut found| found.swap_remove(0))
    }

    /// The ladder's next `k` choices at once, soonest first: what [`Candidates::best`] would
    /// answer `k` times over with each choice taken in turn (offering to one responder changes
    /// nobody else's standing), from one search. Fewer when fewer qualify; when nobody
    /// does, how many were ruled out for each reason.
    pub(crate) fn best_few(&self, k: usize) -> Result<Vec<Candidate<'e>>, Search> {
        match self.engine.policy.matching {
            Matching::Nearest => self.soonest(self.nearby(), true, k),
            Matching::OwnStation => {
                let station = self.engine.home_station(&self.incident.elder_id);
                self.soonest(self.of_station(station.as_ref()), false, k)
            }
        }
    }

    /// A responder holding an extra parallel offer on another incident (one of two or more
    /// live offers there) who qualifies for this one as the ladder's choice would (the same
    /// matching, offer distance, skill and service circle), the soonest to arrive; with the
    /// incident they would be taken from. Of equals, the one met first (incidents in id order,
    /// offers in the order made), so a replay chooses alike.
    ///
    /// The holders come nearest first from [`Engine::extras`](crate::engine::Engine), and the
    /// search stops once nobody further out could arrive sooner than the best found, even at
    /// the fastest travel mode (or, matching by distance, lies beyond the offer distance).
    pub(crate) fn best_extra_offer(&self) -> Option<(Candidate<'e>, IncidentId)> {
        let engine = self.engine;
        let policy = &engine.policy;
        let at = self.incident.location.at;
        let own_station = match policy.matching {
            Matching::Nearest => None,
            Matching::OwnStation => Some(engine.home_station(&self.incident.elder_id)),
        };
        let fastest = policy.foot_mps.max(policy.ebike_mps).max(policy.car_mps);
        // The best so far, and where its offer stands among all: (incident, offer's place).
        let mut best: Option<(Candidate<'e>, (IncidentId, usize))> = None;
        for (id, from, tree_m) in engine.extras.nearest(at) {
            // The tree's distance, less a metre for its rounding: no one further on is nearer.
            let floor_m = tree_m - 1.0;
            if own_station.is_none() && floor_m > policy.max_offer_distance_m {
                break;
            }
            if best.as_ref().is_some_and(|(b, _)| floor_m * policy.detour_factor / fastest / 60.0 > b.minutes) {
                break;
            }
            let Some(place) = self.extra_offer(id, from) else { continue };
            let Some(c) = self.qualifying_extra(id, own_station.as_ref()) else { continue };
            let key = (from, place);
            if best.as_ref().is_none_or(|(b, k)| c.minutes < b.minutes || (c.minutes == b.minutes && key < *k)) {
                best = Some((c, key));
            }
        }
        best.map(|(c, (from, _))| (c, from))
    }

    /// The same choice found by reading every extra offer of every incident holding two or
    /// more, as the engine did before [`Engine::extras`](crate::engine::Engine): the
    /// simulation's reference for the index.
    pub(crate) fn best_extra_offer_by_reading_all(&self) -> Option<(Candidate<'e>, IncidentId)> {
        let engine = self.engine;
        let own_station = match engine.policy.matching {
            Matching::Nearest => None,
            Matching::OwnStation => Some(engine.home_station(&self.incident.elder_id)),
        };
        let mut best: Option<(Candidate<'e>, IncidentId)> = None;
        for other in engine.open.values().filter(|o| o.ladder.offers.len() >= 2) {
            for offer in &other.ladder.offers {
                if self.extra_offer(&offer.responder_id, other.id).is_none() {
                    continue;
                }
                let Some(c) = self.qualifying_extra(&offer.responder_id, own_station.as_ref()) else { continue };
                if best.as_ref().is_none_or(|(b, _)| c.minutes < b.minutes) {
                    best = Some((c, other.id));
                }
            }
        }
        best
    }

    /// Where `responder`'s offer stands among incident `from`'s, when it is an extra offer
    /// this incident may take: another incident of the zone (unless offers cross borders)
    /// holding two or more, and not a neighbour's (their zone's to hold, not passed on).
    fn extra_offer(&self, responder: &ResponderId, from: IncidentId) -> Option<usize> {
        let engine = self.engine;
        let zone = crate::zone::Zone::of(self.incident.id.0);
        if from == self.incident.id || !(engine.policy.border_offers || crate::zone::Zone::of(from.0) == zone) {
            return None;
        }
        let other = engine.open.get(&from).filter(|o| o.ladder.offers.len() >= 2)?;
        if engine.neighbours.contains(responder) {
            return None;
        }
        other.ladder.offers.iter().position(|o| &o.responder_id == responder)
    }

    /// `responder` weighed for this incident, when they qualify as the ladder's choice
    /// would: of the elder's own station under that matching, else within the offer
    /// distance; with the skill, within their circle.
    fn qualifying_extra(
        &self,
        responder: &ResponderId,
        own_station: Option<&Option<StationId>>,
    ) -> Option<Candidate<'e>> {
        let engine = self.engine;
        let at = self.incident.location.at;
        let r = engine.responders.get(responder)?;
        if own_station.is_some_and(|s| s.as_ref() != Some(&r.station_id)) {
            return None;
        }
        let distance_m = r.position.distance_m(at);
        if own_station.is_none() && distance_m > engine.policy.max_offer_distance_m {
            return None;
        }
        let c = self.weigh(r, distance_m);
        c.ruled_out(own_station.is_none()).is_none().then_some(c)
    }

    /// The `k` soonest qualifying candidates of `pool`, soonest first (of equals, the one met
    /// first). A pool bounded by the service circle comes nearest first, and the search stops
    /// once even the fastest travel mode from further out could not beat the `k`th found.
    fn soonest(
        &self,
        pool: impl Iterator<Item = Candidate<'e>>,
        circle: bool,
        k: usize,
    ) -> Result<Vec<Candidate<'e>>, Search> {
        let policy = &self.engine.policy;
        let fastest = policy.foot_mps.max(policy.ebike_mps).max(policy.car_mps);
        let mut best: Vec<Candidate<'e>> = Vec::with_capacity(k);
        let mut search = Search::default();
        for c in pool {
            let floor_min = c.distance_m * policy.detour_factor / fastest / 60.0;
            if circle && best.len() == k && best.last().is_some_and(|b| floor_min >= b.minutes) {
                break;
            }
            search.in_range += 1;
            match c.ruled_out(circle) {
                Some(why) => search.rule_out(why),
                None => {
                    // After every one as soon or sooner: of equals, the one met first stays first.
                    let at = best.partition_point(|b| b.minutes <= c.minutes);
                    if at < k {
                        best.insert(at, c);
                        best.truncate(k);
                    }
                }
            }
        }
        if best.is_empty() {
            Err(search)
        } else {
            Ok(best)
        }
    }
}
