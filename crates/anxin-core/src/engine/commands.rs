//! Commands: what responders (accept, decline, report, duty, position) and dispatchers
//! (assign, take off the ladder, acknowledge, claim, note, close...) do to incidents.

use super::{Engine, Outbox};
use crate::dispatch::{CommandError, DispatcherAction, DispatcherRef, ResponderAction};
use crate::geo::Coordinates;
use crate::ids::{IncidentId, ResponderId, Timestamp};
use crate::incident::*;

impl Engine {
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
        // An offer asked across the border and not yet held is not theirs to take.
        let holds_offer = incident.ladder.offers.iter().any(|o| &o.responder_id == responder && o.asking.is_none());
        let holds_job = incident.responder.as_ref().map(|r| &r.id) == Some(responder);
        if !(holds_offer || holds_job) {
            return Err(CommandError::NotYours { incident: id, responder: responder.clone() });
        }
        let from = incident.state;
        let actor = Actor::Responder(responder.clone());
        let to = match &action {
            ResponderAction::Accept => IncidentState::Accepted,
            ResponderAction::Decline { .. } => IncidentState::Offered, // checked below
            ResponderAction::Withdraw { .. } => IncidentState::AwaitingDispatcher,
            ResponderAction::EnRoute => IncidentState::EnRoute,
            ResponderAction::OnScene => IncidentState::OnScene,
            ResponderAction::Resolve { .. } => IncidentState::Resolved,
        };
        let legal = match action {
            ResponderAction::Accept | ResponderAction::Decline { .. } => from == IncidentState::Offered && holds_offer,
            _ => from.can_become(to) && from.has_responder_on_job() && holds_job,
        };
        if !legal {
            let to = if matches!(action, ResponderAction::Decline { .. }) { "declined" } else { to.as_str() };
            return Err(CommandError::IllegalTransition { from: from.as_str(), to });
        }
        match action {
            ResponderAction::Decline { reason } => {
                let reason = reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
                let change = Change::OfferDeclined { responder_id: responder.clone(), reason };
                self.end_offer(id, responder, change, actor, now, out);
                self.climb(id, now, out);
            }
            ResponderAction::Withdraw { reason } => {
                if reason.trim().is_empty() {
                    return Err(CommandError::MissingReason);
                }
                self.let_go_of_job(id, out);
                let change = Change::Withdrew { responder_id: responder.clone(), reason: reason.trim().to_string() };
                self.record(id, change, actor, now, out);
            }
            ResponderAction::Accept => {
                // First to accept wins: the other offers out in parallel are withdrawn.
                self.withdraw_offers(id, Some(responder), &Actor::Engine, now, out);
                self.record(id, Change::Accepted { responder_id: responder.clone() }, actor, now, out);
            }
            ResponderAction::EnRoute => {
                self.record(id, Change::EnRoute, actor, now, out);
            }
            ResponderAction::OnScene => {
                self.record(id, Change::OnScene, actor, now, out);
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

    /// Refuses what only a neighbouring zone's own engine may do with its responder (their
    /// duty, whereabouts, a dispatcher's assignment): the ladder alone asks for them.
    fn not_a_neighbour(&self, responder: &ResponderId) -> Result<(), CommandError> {
        match self.neighbours.zone_of(responder) {
            Some(zone) => Err(CommandError::OtherZone { responder: responder.clone(), zone: zone.number() }),
            None => Ok(()),
        }
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
        self.not_a_neighbour(responder)?;
        if r.on_duty == on {
            return Ok(());
        }
        if !on {
            if let Some(&id) = self.busy.get(responder) {
                match self.open.get(&id).map(|i| i.ladder.offers.iter().any(|o| &o.responder_id == responder)) {
                    Some(true) => {
                        let reason = Some("off_duty".to_string());
                        let change = Change::OfferDeclined { responder_id: responder.clone(), reason };
                        self.end_offer(id, responder, change, Actor::Responder(responder.clone()), now, out);
                        self.climb(id, now, out);
                        self.after_change(id, out);
                    }
                    Some(false) => return Err(CommandError::Busy { responder: responder.clone(), incident: id }),
                    // Held for another zone's incident, an offer or a job there: that zone is
                    // told, and declines an offer; they stay held until it lets go.
                    None => out.across.push(crate::border::Across {
                        to: crate::zone::Zone::of(id.0),
                        message: crate::border::BorderMessage::OffDuty {
                            incident_id: id,
                            responder_id: responder.clone(),
                        },
                    }),
                }
            }
        }
        out.responders.push(responder.clone());
        let r = self.responders.get_mut(responder).expect("checked");
        r.on_duty = on;
        out.roster.push(r.clone());
        let position = r.position;
        // A service worker is never in the matcher: the ladder does not offer them emergencies.
        if on && !self.busy.contains_key(responder) && r.provider_id.is_none() {
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
        self.not_a_neighbour(responder)?;
        let r = self.responders.get_mut(responder).ok_or_else(|| CommandError::UnknownResponder(responder.clone()))?;
        r.position = at;
        r.position_at = Some(now);
        out.roster.push(r.clone());
        self.responder_placed(responder, at);
        if let Some(old) = self.fix_at.insert(responder.clone(), now) {
            self.fixes.remove(&(old, responder.clone()));
        }
        self.fixes.insert((now, responder.clone()));
        Ok(())
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
        // A task of the welfare programme: what the dispatcher found decides what follows.
        let task = incident
            .welfare
            .filter(|r| r.is_programme())
            .map(|r| (incident.elder_id.clone(), incident.device_id.clone(), r));
        match action {
            DispatcherAction::Assign { responder } => {
                if !from.can_become(IncidentState::Accepted) {
                    return Err(refuse(IncidentState::Accepted));
                }
                let r =
                    self.responders.get(&responder).ok_or_else(|| CommandError::UnknownResponder(responder.clone()))?;
                self.not_a_neighbour(&responder)?;
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
                self.take(&responder, id, out);
                self.redirect_worker(&responder, id, &actor, now, out);
                self.record(id, Change::Assigned { responder_id: responder, distance_m }, actor, now, out);
            }
            DispatcherAction::TakeOffLadder => {
                if from.is_terminal() || from == IncidentState::Resolved {
                    return Err(refuse(IncidentState::AwaitingDispatcher));
                }
                self.withdraw_offers(id, None, &actor, now, out);
                self.record(id, Change::TakenOffLadder, actor, now, out);
            }
            DispatcherAction::Acknowledge { alarm } => {
                if from.is_terminal() {
                    return Err(CommandError::UnknownIncident(id));
                }
                let up = incident.alarm;
                match (alarm, up) {
                    // Somebody silenced it already: nothing is left to acknowledge.
                    (Some(_), None) => return Ok(()),
                    (Some(seen), Some(up)) if up.raised_seq != seen => {
                        return Err(CommandError::AlarmChanged { incident: id });
                    }
                    _ => {}
                }
                self.record(id, Change::Acknowledged { need: up.map(|a| a.need) }, actor, now, out);
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
                self.record(id, Change::Closed { outcome }, actor, now, out);
            }
            DispatcherAction::Cancel { reason } | DispatcherAction::FalseAlarm { reason }
                if reason.trim().is_empty() =>
            {
                return Err(CommandError::MissingReason);
            }
            DispatcherAction::Cancel { reason } => {
                self.let_go_of_responder(id, &actor, now, out);
                self.record(id, Change::Cancelled { reason }, actor, now, out);
            }
            DispatcherAction::FalseAlarm { reason } => {
                self.let_go_of_responder(id, &actor, now, out);
                self.record(id, Change::FalseAlarm { reason }, actor, now, out);
            }
            DispatcherAction::Claim => {
                let previous = incident.claimed_by.clone();
                if previous.as_deref() == Some(dispatcher) {
                    return Ok(()); // theirs already
                }
                let change = Change::Claimed { by: dispatcher.to_string(), from: previous };
                self.record(id, change, actor, now, out);
            }
            DispatcherAction::Release => {
                if incident.claimed_by.is_none() {
                    return Ok(()); // nobody's: nothing to give up
                }
                self.record(id, Change::Released { by: dispatcher.to_string(), why: None }, actor, now, out);
            }
            DispatcherAction::Note { text } => {
                required(&text, "the note's text")?;
                self.record(id, Change::Note { text }, actor, now, out);
            }
            DispatcherAction::LogCall { who, number, outcome } => {
                required(&who, "whom the call was with")?;
                required(&outcome, "the call's outcome")?;
                let number = number.filter(|n| !n.trim().is_empty());
                self.record(id, Change::CallLogged { who, number, outcome }, actor, now, out);
            }
            DispatcherAction::Escalate { number, reference } => {
                required(&number, "the number called")?;
                let reference = reference.filter(|r| !r.trim().is_empty());
                self.record(id, Change::EmergencyCalled { number, reference }, actor, now, out);
            }
        }
        let ended = self.open[&id].state.is_terminal();
        let outcome = self.open[&id].outcome.clone().unwrap_or_default();
        self.after_change(id, out);
        if let (true, Some((elder, device, reason))) = (ended, task) {
            self.programme_task_done(&elder, &device, reason, &outcome, now, out);
        }
        Ok(())
    }

    /// Withdraws every live offer and takes the job from its responder: all are free again.
    pub(super) fn let_go_of_responder(&mut self, id: IncidentId, actor: &Actor, now: Timestamp, out: &mut Outbox) {
        self.withdraw_offers(id, None, actor, now, out);
        self.let_go_of_job(id, out);
    }

    /// Frees the responder who holds the job (the incident lets go of them as the change
    /// that ends their job is applied). A resolved incident's responder was freed already.
    pub(super) fn let_go_of_job(&mut self, id: IncidentId, out: &mut Outbox) {
        let incident = &self.open[&id];
        if !incident.state.has_responder_on_job() {
            return;
        }
        let Some(responder) = incident.responder.as_ref().map(|r| r.id.clone()) else { return };
        self.release(&responder, id, out);
    }

    pub(super) fn resolve(&mut self, id: IncidentId, outcome: String, actor: Actor, now: Timestamp, out: &mut Outbox) {
        self.record(id, Change::Resolved { outcome }, actor, now, out);
        if let Some(r) = self.open[&id].responder.as_ref().map(|r| r.id.clone()) {
            self.release(&r, id, out);
        }
    }
}
