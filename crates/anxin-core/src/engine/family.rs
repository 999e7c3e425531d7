//! Families: who of the elder's contacts is told what, driven by the incident's changes.
//!
//! - **What.** An emergency opening (or a request becoming one), a responder taking the job
//!   (name and ETA), the responder on scene, nobody going, a dispatcher calling 120/110/119,
//!   and the end. A service request is low-priority news, for contacts who take it.
//! - **Whom.** The first contact in the elder's list is told at once. Each later change goes
//!   to every contact told so far. If nobody has answered an emergency within the policy's
//!   `family_escalate_after_ms`, the next contact is told what is happening now; "cannot help"
//!   or a notification that could not be delivered brings the next one in at once. When the
//!   list is used up with no answer, the incident alarms for a dispatcher to phone them.
//! - **When.** Emergencies go at once, whatever the hour. Low-priority news waits out the
//!   contact's quiet hours.
//!
//! Every notification is logged as a `family_told` change and leaves in the outbox with the
//! same commit; its key (`n{seq}`) is what a gateway deduplicates on.

use super::{Engine, Outbox};
use crate::dispatch::CommandError;
use crate::family::{Delivery, FamilyAnswer, Notice, NoticePriority, Notification};
use crate::ids::{ElderId, IncidentId, Timestamp};
use crate::incident::*;
use crate::registry::Contact;

/// The longest a family member may say they need to get there.
pub const MAX_FAMILY_ETA_MIN: u32 = 24 * 60;

impl Engine {
    /// What the family hears of a change just applied to incident `id`, if anything.
    pub(super) fn notice_for(&self, id: IncidentId, change: &Change) -> Option<Notice> {
        let incident = &self.open[&id];
        match change {
            // The programme's own calls and visits are routine: nobody is told of them.
            Change::Opened { welfare: Some(reason), .. } if reason.is_programme() => None,
            Change::Opened { welfare: Some(reason), .. } => Some(Notice::DeviceNews { reason: *reason }),
            // A welfare check's end is told by the engine when the device is back (a
            // dispatcher closing one does not mean it is).
            _ if incident.kind == IncidentKind::Welfare => None,
            Change::Opened { kind, .. } if kind.is_emergency() => Some(Notice::Emergency { kind: *kind }),
            Change::Opened { kind: IncidentKind::Service, .. } => Some(Notice::ServiceRequest),
            Change::KindChanged { from, to } if !from.is_emergency() && to.is_emergency() => {
                Some(Notice::Emergency { kind: *to })
            }
            Change::Accepted { .. } | Change::Assigned { .. } => self.responder_coming(incident),
            Change::OnScene => Some(Notice::OnScene { responder: self.responder_name(incident) }),
            Change::NobodyGoing { emergency_number } => Some(Notice::NobodyGoing { number: emergency_number.clone() }),
            Change::Withdrew { .. } => Some(Notice::NobodyGoing { number: incident.ladder.emergency_number.clone() }),
            Change::EmergencyCalled { number, .. } => Some(Notice::EmergencyCalled { number: number.clone() }),
            Change::Resolved { outcome } => Some(ended(IncidentState::Resolved, outcome)),
            Change::Cancelled { reason } => Some(ended(IncidentState::Cancelled, reason)),
            Change::FalseAlarm { reason } => Some(ended(IncidentState::FalseAlarm, reason)),
            _ => None,
        }
    }

    fn responder_name(&self, incident: &Incident) -> String {
        incident.responder.as_ref().and_then(|a| self.responders.get(&a.id)).map(|r| r.name.clone()).unwrap_or_default()
    }

    fn responder_coming(&self, incident: &Incident) -> Option<Notice> {
        let job = incident.responder.as_ref()?;
        let r = self.responders.get(&job.id)?;
        let eta_min = self.policy.travel_min(job.distance_m, r.mode).ceil().max(1.0) as u32;
        Some(Notice::ResponderComing { responder: r.name.clone(), eta_min })
    }

    /// What a contact brought in late is told: where things stand now.
    fn catch_up(&self, incident: &Incident) -> Notice {
        match incident.state {
            IncidentState::Accepted | IncidentState::EnRoute => {
                self.responder_coming(incident).unwrap_or(Notice::Emergency { kind: incident.kind })
            }
            IncidentState::OnScene => Notice::OnScene { responder: self.responder_name(incident) },
            IncidentState::AwaitingDispatcher if incident.dispatcher_needed == Some(DispatcherNeeded::NobodyGoing) => {
                Notice::NobodyGoing { number: incident.ladder.emergency_number.clone() }
            }
            _ => Notice::Emergency { kind: incident.kind },
        }
    }

    /// Tells the contacts `notice` concerns: the first contact of a new emergency or
    /// request, else everybody told so far.
    pub(super) fn tell_family(&mut self, id: IncidentId, notice: Notice, now: Timestamp, out: &mut Outbox) {
        let incident = &self.open[&id];
        let Some(elder) = self.elders.get(&incident.elder_id) else { return };
        let contacts = &elder.profile.contacts;
        let told: Vec<&Contact> = incident
            .family
            .contacts
            .iter()
            .filter(|f| f.told_at.is_some())
            .filter_map(|f| contacts.iter().find(|c| c.id == f.contact_id))
            .collect();
        let to: Vec<Contact> = match &notice {
            Notice::Emergency { .. } if told.is_empty() => contacts.first().cloned().into_iter().collect(),
            Notice::ServiceRequest if told.is_empty() => {
                contacts.iter().find(|c| c.service_news).cloned().into_iter().collect()
            }
            Notice::ServiceRequest => vec![],
            Notice::DeviceNews { .. } if told.is_empty() => {
                contacts.iter().find(|c| c.device_news).cloned().into_iter().collect()
            }
            Notice::DeviceNews { .. } => vec![],
            _ => told.into_iter().cloned().collect(),
        };
        for contact in to {
            self.tell_contact(id, &contact, notice.clone(), now, out);
        }
    }

    /// Logs one notification to one contact and puts it in the outbox under the event's key.
    fn tell_contact(&mut self, id: IncidentId, contact: &Contact, notice: Notice, now: Timestamp, out: &mut Outbox) {
        let change =
            Change::FamilyTold { contact_id: contact.id.clone(), channel: contact.channel, notice: notice.clone() };
        self.record(id, change, Actor::Engine, now, out);
        let seq = out.events.last().map_or(0, |e| e.seq);
        let incident = &self.open[&id];
        let elder_name = self.elders.get(&incident.elder_id).map(|e| e.name.as_str()).unwrap_or_default();
        let not_before = match (notice.priority(), contact.quiet_hours) {
            (NoticePriority::Low, Some(quiet)) => quiet.release(now, self.policy.utc_offset_min),
            _ => now,
        };
        let language = if contact.language.is_empty() { "zh-CN".to_string() } else { contact.language.clone() };
        out.notifications.push(Notification {
            key: format!("n{seq}"),
            incident_id: id,
            elder_id: incident.elder_id.clone(),
            contact_id: contact.id.clone(),
            contact_name: format!("{} ({})", contact.name, contact.relation),
            to: contact.phone.clone(),
            channel: contact.channel,
            priority: notice.priority(),
            text: notice.text(elder_name, &language),
            language,
            notice,
            created_at: now,
            not_before,
        });
    }

    /// Nobody answered in time (or the last one cannot help, or could not be reached): the
    /// next contact in the elder's list is told where things stand, or, with nobody left, a
    /// dispatcher is asked to phone them.
    pub(super) fn escalate_family(&mut self, id: IncidentId, now: Timestamp, out: &mut Outbox) {
        let incident = &self.open[&id];
        let Some(elder) = self.elders.get(&incident.elder_id) else { return };
        // A welfare check goes on to the next contact who takes device news, with that news.
        let welfare = incident.welfare.filter(|_| incident.kind == IncidentKind::Welfare);
        let next = elder
            .profile
            .contacts
            .iter()
            .filter(|c| welfare.is_none() || c.device_news)
            .find(|c| incident.family.contact(&c.id).is_none())
            .cloned();
        match next {
            Some(contact) => {
                let notice = match welfare {
                    Some(reason) => Notice::DeviceNews { reason },
                    None => self.catch_up(incident),
                };
                self.tell_contact(id, &contact, notice, now, out);
            }
            None => self.record(id, Change::FamilyExhausted, Actor::Engine, now, out),
        }
    }

    /// A contact's answer about their elder's incident. A contact answers only for their
    /// own elder: any other incident is refused as not open, so a token cannot learn which
    /// incidents exist.
    pub fn family_answers(
        &mut self,
        elder: &ElderId,
        contact_id: &str,
        id: IncidentId,
        answer: FamilyAnswer,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Result<(), CommandError> {
        let incident = self.open.get(&id).filter(|i| &i.elder_id == elder).ok_or(CommandError::UnknownIncident(id))?;
        let known = self.elders.get(elder).is_some_and(|e| e.profile.contacts.iter().any(|c| c.id == contact_id));
        if !known {
            return Err(CommandError::UnknownIncident(id));
        }
        if let FamilyAnswer::Going { eta_min } = answer {
            if eta_min == 0 || eta_min > MAX_FAMILY_ETA_MIN {
                return Err(CommandError::OutOfRange { what: "eta_min", min: 1, max: i64::from(MAX_FAMILY_ETA_MIN) });
            }
        }
        if incident.family.contact(contact_id).and_then(|c| c.answer.as_ref()) == Some(&answer) {
            return Ok(()); // said already: a second tap changes nothing
        }
        let change = Change::FamilyAnswered { contact_id: contact_id.to_string(), answer };
        self.record(id, change, Actor::Family(contact_id.to_string()), now, out);
        self.after_change(id, out);
        Ok(())
    }

    /// What became of notification `key` to a contact, as the delivery worker found. Only
    /// the contact's latest notification shows; an incident that has ended keeps its record
    /// in the notifications table alone.
    pub fn family_delivery(
        &mut self,
        id: IncidentId,
        contact_id: &str,
        key: &str,
        delivery: Delivery,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Result<(), CommandError> {
        let Some(incident) = self.open.get(&id) else { return Ok(()) };
        let Some(contact) = incident.family.contact(contact_id) else { return Ok(()) };
        let newer = matches!(
            (contact.delivery, delivery),
            (None, _) | (Some(Delivery::Sent), Delivery::Delivered | Delivery::Dead)
        );
        if contact.last_key.as_deref() != Some(key) || !newer {
            return Ok(());
        }
        let change = Change::FamilyDelivery { contact_id: contact_id.to_string(), key: key.to_string(), delivery };
        self.record(id, change, Actor::Engine, now, out);
        self.after_change(id, out);
        Ok(())
    }

    /// One of an elder's contacts, by id.
    pub fn family_contact(&self, elder: &ElderId, contact_id: &str) -> Option<&Contact> {
        self.elders.get(elder)?.profile.contacts.iter().find(|c| c.id == contact_id)
    }
}

fn ended(state: IncidentState, outcome: &str) -> Notice {
    Notice::Ended { state, outcome: Some(outcome.to_string()).filter(|o| !o.trim().is_empty()) }
}
