//! The dispatch loop: offers with deadlines, the escalation ladder, responders' answers and
//! duty, dispatchers' commands, and the clock.
//!
//! Every offer has a deadline and every deadline an escalation: responders near the elder,
//! nearest first, up to `Policy::max_responder_offers`; then the nearest station's duty line;
//! then a dispatcher, reminded until a person acts. Time comes in as an argument; the shell
//! calls [`Engine::tick`] when [`Engine::next_deadline`] comes.

use crate::engine::{Engine, Outbox};
use crate::geo::Coordinates;
use crate::ids::{IncidentId, ResponderId, Timestamp};
use crate::incident::*;
use thiserror::Error;

/// Why nobody could be offered an incident: of the available responders the search looked at,
/// how many were ruled out for each reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Search {
    pub in_range: u32,
    pub already_tried: u32,
    pub lacking_skill: u32,
    pub outside_circle: u32,
}

/// What a responder can do with an incident offered to or held by them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponderAction {
    Accept,
    Decline,
    EnRoute,
    OnScene,
    Resolve { outcome: String },
}

/// What a dispatcher can do with an incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatcherAction {
    /// Put this responder on the job (the dispatcher has spoken to them), replacing any other.
    Assign {
        responder: ResponderId,
    },
    /// Stop the ladder: the dispatcher handles it by hand.
    TakeOffLadder,
    /// Seen: stop the reminders (the incident stays where it is).
    Acknowledge,
    Resolve {
        outcome: String,
    },
    Close {
        outcome: String,
    },
    Cancel {
        reason: String,
    },
    FalseAlarm {
        reason: String,
    },
    /// Take ownership: the other dispatchers see who handles it.
    Claim,
    /// Give ownership up.
    Release,
    Note {
        text: String,
    },
    /// Record a phone call made or taken about the incident.
    LogCall {
        who: String,
        number: Option<String>,
        outcome: String,
    },
    /// Record a call to the emergency services (which number, their reference).
    Escalate {
        number: String,
        reference: Option<String>,
    },
}

/// Who gives a dispatcher command: their staff id, and whether they may take over another
/// dispatcher's claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatcherRef<'a> {
    pub id: &'a str,
    pub supervisor: bool,
}

/// Why a command was refused. Nothing changes when one is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CommandError {
    #[error("incident {0} is not open")]
    UnknownIncident(IncidentId),
    #[error("responder {0} is not in the registry")]
    UnknownResponder(ResponderId),
    #[error("incident {incident} is not offered to or held by responder {responder}")]
    NotYours { incident: IncidentId, responder: ResponderId },
    #[error("an incident that is {from} cannot become {to}")]
    IllegalTransition { from: &'static str, to: &'static str },
    #[error("responder {0} is off duty")]
    OffDuty(ResponderId),
    #[error("responder {responder} is busy with incident {incident}")]
    Busy { responder: ResponderId, incident: IncidentId },
    #[error("a reason or outcome is required")]
    MissingReason,
    #[error("incident {incident} is claimed by {by}")]
    ClaimedBy { incident: IncidentId, by: String },
    #[error("{0} is required")]
    Missing(&'static str),
}

impl Engine {
    /// The earliest moment something is due; the shell calls [`Engine::tick`] then.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let incidents = self.timers.first().map(|(t, _)| *t);
        let fixes = self.fixes.first().map(|(t, _)| t.plus_millis(self.policy.max_fix_age_ms));
        incidents.into_iter().chain(fixes).min()
    }

    /// Does everything due at or before `now`: lapsed offers, lapsed station alerts,
    /// reminders, overdue arrivals.
    pub fn tick(&mut self, now: Timestamp, out: &mut Outbox) {
        self.expire_fixes(now, out);
        while let Some(&(due, id)) = self.timers.first() {
            if due > now {
                break;
            }
            self.timers.pop_first();
            self.deadlines.remove(&id);
            self.fire(id, now, out);
            self.reschedule(id);
        }
    }

    fn fire(&mut self, id: IncidentId, now: Timestamp, out: &mut Outbox) {
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
            self.open.get_mut(&id).expect("open").ladder.station_deadline = None;
            self.call_in_dispatcher(id, DispatcherNeeded::NobodyGoing, now, out);
            changed = true;
        }
        let incident = &self.open[&id];
        if due(incident.ladder.on_scene_by) && incident.state.has_responder_on_job() {
            let responder = incident.responder.as_ref().expect("a job has a responder").id.clone();
            let seq = self.log(id, now, Actor::Engine, Change::OnSceneOverdue { responder_id: responder }, out);
            let remind_at = now.plus_millis(self.policy.reminder_interval_ms);
            let incident = self.open.get_mut(&id).expect("open");
            incident.ladder.on_scene_by = None;
            incident.ladder.remind_at = Some(remind_at);
            incident.dispatcher_needed = Some(DispatcherNeeded::OnSceneOverdue);
            incident.last_seq = seq;
            incident.updated_at = now;
            changed = true;
        }
        let incident = &self.open[&id];
        if due(incident.ladder.remind_at) && incident.dispatcher_needed.is_some() {
            let count = incident.ladder.reminders + 1;
            let seq = self.log(id, now, Actor::Engine, Change::Reminder { count }, out);
            let remind_at = now.plus_millis(self.policy.reminder_interval_ms);
            let incident = self.open.get_mut(&id).expect("open");
            incident.ladder.reminders = count;
            incident.ladder.remind_at = Some(remind_at);
            incident.last_seq = seq;
            incident.updated_at = now;
            changed = true;
        } else if due(self.open[&id].ladder.remind_at) {
            self.open.get_mut(&id).expect("open").ladder.remind_at = None;
        }
        if changed {
            self.emit(id, out);
        }
    }

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
            let own_station = self.policy.matching == crate::engine::Matching::OwnStation;
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
    fn call_in_dispatcher(&mut self, id: IncidentId, why: DispatcherNeeded, now: Timestamp, out: &mut Outbox) {
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
    /// travel mode). Returns the responder and their great-circle distance, or, when nobody
    /// qualifies, why not.
    pub fn best_candidate(&self, id: IncidentId) -> Result<(ResponderId, f64), Search> {
        let Some(incident) = self.open.get(&id) else { return Err(Search::default()) };
        let tried = &incident.ladder.tried;
        let skill = self.policy.required_skill(incident.kind);
        let own_station = match self.policy.matching {
            crate::engine::Matching::Nearest => None,
            crate::engine::Matching::OwnStation => Some(self.home_station(&incident.elder_id)),
        };
        if let Some(station) = own_station {
            return self.best_of_station(id, station.as_ref(), incident.location.at);
        }
        let fastest = self.policy.foot_mps.max(self.policy.ebike_mps).max(self.policy.car_mps);
        let mut best: Option<(ResponderId, f64, f64)> = None;
        let mut search = Search::default();
        for n in self.matcher.responders_within(incident.location.at, self.policy.max_offer_distance_m) {
            // Candidates come nearest first: once even the fastest mode from here is slower
            // than the best found, nobody further can beat it.
            let floor_min = n.distance_m * self.policy.detour_factor / fastest / 60.0;
            if best.as_ref().is_some_and(|b| floor_min >= b.2) {
                break;
            }
            let Some(r) = self.responders.get(&n.id) else { continue };
            search.in_range += 1;
            if tried.contains(&n.id) {
                search.already_tried += 1;
                continue;
            }
            if skill.is_some_and(|s| !r.skills.iter().any(|k| k == s)) {
                search.lacking_skill += 1;
                continue;
            }
            let minutes = self.policy.travel_min(n.distance_m, r.mode);
            let circle = self
                .stations
                .get(&r.station_id)
                .and_then(|s| s.service_circle_min)
                .unwrap_or(self.policy.default_service_circle_min);
            if minutes > f64::from(circle) {
                search.outside_circle += 1;
                continue;
            }
            if best.as_ref().is_none_or(|b| minutes < b.2) {
                best = Some((n.id, n.distance_m, minutes));
            }
        }
        best.map(|(id, d, _)| (id, d)).ok_or(search)
    }

    /// [`Matching::OwnStation`](crate::engine::Matching::OwnStation): the available responder
    /// of `station` who gets to `at` soonest, however far.
    fn best_of_station(
        &self,
        id: IncidentId,
        station: Option<&crate::ids::StationId>,
        at: Coordinates,
    ) -> Result<(ResponderId, f64), Search> {
        let incident = &self.open[&id];
        let skill = self.policy.required_skill(incident.kind);
        let mut search = Search::default();
        let mut best: Option<(ResponderId, f64, f64)> = None;
        let members = station.and_then(|s| self.by_station.get(s)).map(Vec::as_slice).unwrap_or_default();
        for rid in members {
            let Some(r) = self.responders.get(rid) else { continue };
            if !r.on_duty || self.busy.contains_key(rid) {
                continue;
            }
            search.in_range += 1;
            if incident.ladder.tried.contains(rid) {
                search.already_tried += 1;
                continue;
            }
            if skill.is_some_and(|s| !r.skills.iter().any(|k| k == s)) {
                search.lacking_skill += 1;
                continue;
            }
            let distance_m = r.position.distance_m(at);
            let minutes = self.policy.travel_min(distance_m, r.mode);
            if best.as_ref().is_none_or(|b| minutes < b.2) {
                best = Some((rid.clone(), distance_m, minutes));
            }
        }
        best.map(|(id, d, _)| (id, d)).ok_or(search)
    }

    fn offer(&mut self, id: IncidentId, responder: ResponderId, distance_m: f64, now: Timestamp, out: &mut Outbox) {
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
    fn end_offer(
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
    fn withdraw_offers(
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
    fn take(&mut self, responder: &ResponderId, id: IncidentId, out: &mut Outbox) {
        out.responders.push(responder.clone());
        self.matcher.set_unavailable(responder);
        self.busy.insert(responder.clone(), id);
    }

    /// Frees a responder from incident `id`: available again if on duty. A responder who has
    /// since moved on to another incident is left alone.
    fn release(&mut self, responder: &ResponderId, id: IncidentId, out: &mut Outbox) {
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

    /// A responder's answer or report on an incident.
    pub fn responder_acts(
        &mut self,
        responder: &ResponderId,
        id: IncidentId,
        action: ResponderAction,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Result<(), CommandError> {
        if !self.responders.contains_key(responder) {
            return Err(CommandError::UnknownResponder(responder.clone()));
        }
        let incident = self.open.get(&id).ok_or(CommandError::UnknownIncident(id))?;
        let holds_offer = incident.ladder.offers.iter().any(|o| &o.responder_id == responder);
        let holds_job = incident.responder.as_ref().map(|r| &r.id) == Some(responder);
        if !(holds_offer || holds_job) {
            return Err(CommandError::NotYours { incident: id, responder: responder.clone() });
        }
        let from = incident.state;
        let actor = Actor::Responder(responder.clone());
        let to = match &action {
            ResponderAction::Accept => IncidentState::Accepted,
            ResponderAction::Decline => IncidentState::Offered, // checked below
            ResponderAction::EnRoute => IncidentState::EnRoute,
            ResponderAction::OnScene => IncidentState::OnScene,
            ResponderAction::Resolve { .. } => IncidentState::Resolved,
        };
        let legal = match action {
            ResponderAction::Accept | ResponderAction::Decline => from == IncidentState::Offered && holds_offer,
            _ => from.can_become(to) && from.has_responder_on_job() && holds_job,
        };
        if !legal {
            let to = if action == ResponderAction::Decline { "declined" } else { to.as_str() };
            return Err(CommandError::IllegalTransition { from: from.as_str(), to });
        }
        match action {
            ResponderAction::Decline => {
                let change = Change::OfferDeclined { responder_id: responder.clone() };
                self.end_offer(id, responder, change, actor, now, out);
                self.climb(id, now, out);
            }
            ResponderAction::Accept => {
                // First to accept wins: the other offers out in parallel are withdrawn.
                self.withdraw_offers(id, Some(responder), &Actor::Engine, now, out);
                let seq = self.log(id, now, actor, Change::Accepted { responder_id: responder.clone() }, out);
                let incident = self.open.get_mut(&id).expect("open");
                let offer = incident.ladder.offers.pop().expect("the accepted offer is live");
                incident.responder = Some(Assigned { id: offer.responder_id, distance_m: offer.distance_m });
                self.start_job(id, seq, now);
            }
            ResponderAction::EnRoute => {
                let seq = self.log(id, now, actor, Change::EnRoute, out);
                self.set_state(id, IncidentState::EnRoute, seq, now);
            }
            ResponderAction::OnScene => {
                let seq = self.log(id, now, actor, Change::OnScene, out);
                self.set_state(id, IncidentState::OnScene, seq, now);
                let incident = self.open.get_mut(&id).expect("open");
                incident.ladder.on_scene_by = None;
                if incident.dispatcher_needed == Some(DispatcherNeeded::OnSceneOverdue) {
                    incident.dispatcher_needed = None;
                    incident.ladder.remind_at = None;
                }
            }
            ResponderAction::Resolve { outcome } => {
                if outcome.trim().is_empty() {
                    return Err(CommandError::MissingReason);
                }
                self.resolve(id, outcome, actor, now, out);
            }
        }
        self.after_change(id, out);
        Ok(())
    }

    /// A responder goes on or off duty. Off duty with an offer declines it; off duty with
    /// a job is refused (hand the job over first).
    pub fn set_duty(
        &mut self,
        responder: &ResponderId,
        on: bool,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Result<(), CommandError> {
        let r = self.responders.get(responder).ok_or_else(|| CommandError::UnknownResponder(responder.clone()))?;
        if r.on_duty == on {
            return Ok(());
        }
        if !on {
            if let Some(&id) = self.busy.get(responder) {
                if !self.open[&id].ladder.offers.iter().any(|o| &o.responder_id == responder) {
                    return Err(CommandError::Busy { responder: responder.clone(), incident: id });
                }
                let change = Change::OfferDeclined { responder_id: responder.clone() };
                self.end_offer(id, responder, change, Actor::Responder(responder.clone()), now, out);
                self.climb(id, now, out);
                self.after_change(id, out);
            }
        }
        out.responders.push(responder.clone());
        let r = self.responders.get_mut(responder).expect("checked");
        r.on_duty = on;
        out.roster.push(r.clone());
        let position = r.position;
        if on && !self.busy.contains_key(responder) {
            self.matcher.set_available(responder.clone(), position);
        } else if !on {
            self.matcher.set_unavailable(responder);
        }
        Ok(())
    }

    /// A responder's phone reports where they are, at `now`. The fix counts for
    /// `Policy::max_fix_age_ms`; after that the responder is placed at their station again.
    pub fn responder_moved(
        &mut self,
        responder: &ResponderId,
        at: Coordinates,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Result<(), CommandError> {
        let r = self.responders.get_mut(responder).ok_or_else(|| CommandError::UnknownResponder(responder.clone()))?;
        r.position = at;
        r.position_at = Some(now);
        out.roster.push(r.clone());
        self.matcher.move_responder(responder, at);
        if let Some(old) = self.fix_at.insert(responder.clone(), now) {
            self.fixes.remove(&(old, responder.clone()));
        }
        self.fixes.insert((now, responder.clone()));
        Ok(())
    }

    /// Phone fixes older than the policy allows stop counting: a responder whose phone has
    /// gone quiet is taken to be at their station, not where they were last seen.
    fn expire_fixes(&mut self, now: Timestamp, out: &mut Outbox) {
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
            self.matcher.move_responder(&id, base);
        }
    }

    /// A dispatcher's command on an incident (a dispatcher who is not a supervisor).
    pub fn dispatcher_acts(
        &mut self,
        dispatcher: &str,
        id: IncidentId,
        action: DispatcherAction,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Result<(), CommandError> {
        self.dispatcher_acts_as(DispatcherRef { id: dispatcher, supervisor: false }, id, action, now, out)
    }

    /// A dispatcher's command on an incident. On an incident another dispatcher has claimed,
    /// only notes are taken, and a supervisor's claim (which takes it over).
    pub fn dispatcher_acts_as(
        &mut self,
        who: DispatcherRef<'_>,
        id: IncidentId,
        action: DispatcherAction,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Result<(), CommandError> {
        let dispatcher = who.id;
        let incident = self.open.get(&id).ok_or(CommandError::UnknownIncident(id))?;
        let from = incident.state;
        let actor = Actor::Dispatcher(dispatcher.to_string());
        if let Some(owner) = incident.claimed_by.as_deref().filter(|o| *o != dispatcher) {
            let allowed = matches!(action, DispatcherAction::Note { .. })
                || (who.supervisor && matches!(action, DispatcherAction::Claim | DispatcherAction::Release));
            if !allowed {
                let by = match self.staff_name(owner) {
                    Some(name) if name != owner => format!("{name} ({owner})"),
                    _ => owner.to_string(),
                };
                return Err(CommandError::ClaimedBy { incident: id, by });
            }
        }
        let required = |text: &str, what: &'static str| {
            if text.trim().is_empty() {
                Err(CommandError::Missing(what))
            } else {
                Ok(())
            }
        };
        let refuse = |to: IncidentState| CommandError::IllegalTransition { from: from.as_str(), to: to.as_str() };
        match action {
            DispatcherAction::Assign { responder } => {
                if !from.can_become(IncidentState::Accepted) {
                    return Err(refuse(IncidentState::Accepted));
                }
                let r =
                    self.responders.get(&responder).ok_or_else(|| CommandError::UnknownResponder(responder.clone()))?;
                if !r.on_duty {
                    return Err(CommandError::OffDuty(responder));
                }
                if let Some(&other) = self.busy.get(&responder).filter(|other| **other != id) {
                    return Err(CommandError::Busy { responder, incident: other });
                }
                let distance_m = r.position.distance_m(incident.location.at);
                if incident.responder.as_ref().is_some_and(|a| a.id == responder) {
                    return Ok(()); // it is their job already: nothing to change
                }
                // Whoever had the job or an offer lets go; an offer to this very responder
                // becomes their job.
                self.withdraw_offers(id, Some(&responder), &actor, now, out);
                self.let_go_of_job(id, out);
                self.open.get_mut(&id).expect("open").ladder.offers.clear();
                self.take(&responder, id, out);
                let seq = self.log(id, now, actor, Change::Assigned { responder_id: responder.clone() }, out);
                self.open.get_mut(&id).expect("open").responder = Some(Assigned { id: responder, distance_m });
                self.start_job(id, seq, now);
            }
            DispatcherAction::TakeOffLadder => {
                if from.is_terminal() || from == IncidentState::Resolved {
                    return Err(refuse(IncidentState::AwaitingDispatcher));
                }
                self.withdraw_offers(id, None, &actor, now, out);
                let seq = self.log(id, now, actor, Change::TakenOffLadder, out);
                let incident = self.open.get_mut(&id).expect("open");
                incident.ladder.off_ladder = true;
                incident.ladder.station_deadline = None;
                incident.ladder.remind_at = None;
                if matches!(from, IncidentState::Offered | IncidentState::StationAlerted) {
                    incident.state = IncidentState::AwaitingDispatcher;
                }
                if !incident.state.has_responder_on_job() {
                    incident.dispatcher_needed = Some(DispatcherNeeded::HandledByDispatcher);
                }
                incident.last_seq = seq;
                incident.updated_at = now;
            }
            DispatcherAction::Acknowledge => {
                if from.is_terminal() {
                    return Err(CommandError::UnknownIncident(id));
                }
                let seq = self.log(id, now, actor, Change::Acknowledged, out);
                let incident = self.open.get_mut(&id).expect("open");
                incident.ladder.remind_at = None;
                incident.acknowledged_at.get_or_insert(now);
                incident.last_seq = seq;
                incident.updated_at = now;
            }
            DispatcherAction::Resolve { outcome } => {
                if !from.can_become(IncidentState::Resolved) {
                    return Err(refuse(IncidentState::Resolved));
                }
                if outcome.trim().is_empty() {
                    return Err(CommandError::MissingReason);
                }
                self.withdraw_offers(id, None, &actor, now, out);
                self.resolve(id, outcome, actor, now, out);
            }
            DispatcherAction::Close { outcome } => {
                if !from.can_become(IncidentState::Closed) {
                    return Err(refuse(IncidentState::Closed));
                }
                if outcome.trim().is_empty() {
                    return Err(CommandError::MissingReason);
                }
                let seq = self.log(id, now, actor, Change::Closed { outcome: outcome.clone() }, out);
                self.finish(id, IncidentState::Closed, outcome, seq, now);
            }
            DispatcherAction::Cancel { reason } | DispatcherAction::FalseAlarm { reason }
                if reason.trim().is_empty() =>
            {
                return Err(CommandError::MissingReason);
            }
            DispatcherAction::Cancel { reason } => {
                self.let_go_of_responder(id, &actor, now, out);
                let seq = self.log(id, now, actor, Change::Cancelled { reason: reason.clone() }, out);
                self.finish(id, IncidentState::Cancelled, reason, seq, now);
            }
            DispatcherAction::FalseAlarm { reason } => {
                self.let_go_of_responder(id, &actor, now, out);
                let seq = self.log(id, now, actor, Change::FalseAlarm { reason: reason.clone() }, out);
                self.finish(id, IncidentState::FalseAlarm, reason, seq, now);
            }
            DispatcherAction::Claim => {
                let previous = incident.claimed_by.clone();
                if previous.as_deref() == Some(dispatcher) {
                    return Ok(()); // theirs already
                }
                let change = Change::Claimed { by: dispatcher.to_string(), from: previous };
                let seq = self.log(id, now, actor, change, out);
                let incident = self.touch(id, seq, now);
                incident.claimed_by = Some(dispatcher.to_string());
                incident.acknowledged_at.get_or_insert(now); // claiming it is seeing it
            }
            DispatcherAction::Release => {
                if incident.claimed_by.is_none() {
                    return Ok(()); // nobody's: nothing to give up
                }
                let seq = self.log(id, now, actor, Change::Released { by: dispatcher.to_string() }, out);
                self.touch(id, seq, now).claimed_by = None;
            }
            DispatcherAction::Note { text } => {
                required(&text, "the note's text")?;
                let seq = self.log(id, now, actor, Change::Note { text }, out);
                self.touch(id, seq, now);
            }
            DispatcherAction::LogCall { who, number, outcome } => {
                required(&who, "whom the call was with")?;
                required(&outcome, "the call's outcome")?;
                let number = number.filter(|n| !n.trim().is_empty());
                let seq = self.log(id, now, actor, Change::CallLogged { who, number, outcome }, out);
                self.touch(id, seq, now);
            }
            DispatcherAction::Escalate { number, reference } => {
                required(&number, "the number called")?;
                let reference = reference.filter(|r| !r.trim().is_empty());
                let seq = self.log(id, now, actor, Change::EmergencyCalled { number, reference }, out);
                // A person has acted: the reminders stop, as with an acknowledgement.
                self.touch(id, seq, now).ladder.remind_at = None;
            }
        }
        self.after_change(id, out);
        Ok(())
    }

    /// Withdraws every live offer and takes the job from its responder: all are free again.
    fn let_go_of_responder(&mut self, id: IncidentId, actor: &Actor, now: Timestamp, out: &mut Outbox) {
        self.withdraw_offers(id, None, actor, now, out);
        self.let_go_of_job(id, out);
    }

    /// Takes the job from the responder who holds it, who is free again.
    fn let_go_of_job(&mut self, id: IncidentId, out: &mut Outbox) {
        let incident = &self.open[&id];
        if !incident.state.has_responder_on_job() {
            return; // a resolved incident keeps the name of who helped
        }
        let Some(responder) = incident.responder.as_ref().map(|r| r.id.clone()) else { return };
        self.release(&responder, id, out);
        let incident = self.open.get_mut(&id).expect("open");
        incident.responder = None;
        incident.ladder.on_scene_by = None;
    }

    fn start_job(&mut self, id: IncidentId, seq: u64, now: Timestamp) {
        let on_scene_by = now.plus_millis(self.policy.on_scene_within_ms);
        let number = self.standing_number(self.open[&id].kind);
        let incident = self.open.get_mut(&id).expect("open");
        debug_assert!(incident.ladder.offers.is_empty(), "a job starts once every offer has ended");
        incident.state = IncidentState::Accepted;
        incident.ladder.offer_deadline = None;
        incident.ladder.station_deadline = None;
        incident.ladder.remind_at = None;
        incident.ladder.on_scene_by = Some(on_scene_by);
        incident.ladder.emergency_number = number;
        incident.dispatcher_needed = None;
        incident.last_seq = seq;
        incident.updated_at = now;
    }

    fn resolve(&mut self, id: IncidentId, outcome: String, actor: Actor, now: Timestamp, out: &mut Outbox) {
        let seq = self.log(id, now, actor, Change::Resolved { outcome: outcome.clone() }, out);
        if let Some(r) = self.open[&id].responder.as_ref().map(|r| r.id.clone()) {
            self.release(&r, id, out);
        }
        let incident = self.open.get_mut(&id).expect("open");
        incident.state = IncidentState::Resolved;
        incident.outcome = Some(outcome);
        incident.ladder = Ladder { off_ladder: incident.ladder.off_ladder, ..Ladder::default() };
        incident.ladder.rung = Rung::Dispatcher;
        incident.dispatcher_needed = None;
        incident.last_seq = seq;
        incident.updated_at = now;
    }

    fn finish(&mut self, id: IncidentId, state: IncidentState, outcome: String, seq: u64, now: Timestamp) {
        let incident = self.open.get_mut(&id).expect("open");
        incident.state = state;
        incident.outcome = Some(outcome);
        incident.ladder.offer_deadline = None;
        incident.ladder.station_deadline = None;
        incident.ladder.remind_at = None;
        incident.ladder.on_scene_by = None;
        incident.dispatcher_needed = None;
        incident.last_seq = seq;
        incident.updated_at = now;
    }

    /// Records that event `seq` changed the incident, and hands it over for more changes.
    fn touch(&mut self, id: IncidentId, seq: u64, now: Timestamp) -> &mut Incident {
        let incident = self.open.get_mut(&id).expect("open");
        incident.last_seq = seq;
        incident.updated_at = now;
        incident
    }

    fn set_state(&mut self, id: IncidentId, state: IncidentState, seq: u64, now: Timestamp) {
        let incident = self.open.get_mut(&id).expect("open");
        incident.state = state;
        incident.last_seq = seq;
        incident.updated_at = now;
    }

    /// Emits the incident, reschedules its timers, and forgets it once its life is over.
    pub(crate) fn after_change(&mut self, id: IncidentId, out: &mut Outbox) {
        self.emit(id, out);
        self.reschedule(id);
        if self.open[&id].state.is_terminal() {
            let incident = self.open.remove(&id).expect("open");
            if let Some(device) = self.devices.get_mut(&incident.device_id).filter(|d| d.open == Some(id)) {
                device.open = None;
                device.last_press = None;
            }
            self.unschedule(id);
        }
    }

    /// Puts the incident's earliest deadline in the timer index.
    pub(crate) fn reschedule(&mut self, id: IncidentId) {
        self.unschedule(id);
        if let Some(due) = self.open.get(&id).and_then(|i| i.ladder.next_deadline()) {
            self.timers.insert((due, id));
            self.deadlines.insert(id, due);
        }
    }

    fn unschedule(&mut self, id: IncidentId) {
        if let Some(due) = self.deadlines.remove(&id) {
            self.timers.remove(&(due, id));
        }
    }
}
