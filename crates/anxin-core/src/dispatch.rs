//! What responders and dispatchers can ask of the engine, and why it may refuse: the
//! commands' vocabulary. The engine carries them out in `engine::commands`; the ladder that
//! offers, escalates and reminds is `engine::ladder`.

use crate::ids::{IncidentId, ResponderId};
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

/// What a responder can do with an incident offered to or held by them. (Serialised only
/// between the nodes of a cluster, forwarding a phone's answer to the node running its zone;
/// phones send the flat `respond` frame.)
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponderAction {
    Accept,
    /// Turn an offer down, saying why when they will (`too_far`, `busy`, `unwell`,
    /// `no_transport`, `other`, or their own words).
    Decline {
        reason: Option<String>,
    },
    /// Give up a job they hold (accepted or assigned) because they cannot go after all: nobody
    /// is going any more, and a dispatcher is called in at once.
    Withdraw {
        reason: String,
    },
    EnRoute,
    OnScene,
    Resolve {
        outcome: String,
    },
}

/// What a dispatcher can do with an incident. (Serialised only between the nodes of a
/// cluster, forwarding a console's command to the node running its zone; consoles send the
/// flat `command` frame.)
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatcherAction {
    /// Put this responder on the job (the dispatcher has spoken to them), replacing any other.
    Assign {
        responder: ResponderId,
    },
    /// Stop the ladder: the dispatcher handles it by hand.
    TakeOffLadder,
    /// Seen: silence the alarm that is up and stop the reminders (the incident stays where it
    /// is). `alarm` names the alarm the dispatcher saw (its `raised_seq`); if another has been
    /// raised since, the acknowledgement is refused so that it cannot silence what nobody saw.
    Acknowledge {
        alarm: Option<u64>,
    },
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
    #[error("incident {incident} raised a new alarm since: look again before acknowledging it")]
    AlarmChanged { incident: IncidentId },
    #[error("{what} must be from {min} to {max}")]
    OutOfRange { what: &'static str, min: i64, max: i64 },
    /// A neighbouring zone's responder: only the ladder asks their zone to hold them.
    #[error("responder {responder} is zone {zone}'s: their zone sends them")]
    OtherZone { responder: ResponderId, zone: u16 },
}

impl CommandError {
    /// A stable code for the refusal, so pages can say it in the user's language.
    pub fn code(&self) -> &'static str {
        match self {
            CommandError::UnknownIncident(_) => "incident_not_open",
            CommandError::UnknownResponder(_) => "unknown_responder",
            CommandError::NotYours { .. } => "not_yours",
            CommandError::IllegalTransition { .. } => "illegal_transition",
            CommandError::OffDuty(_) => "off_duty",
            CommandError::Busy { .. } => "responder_busy",
            CommandError::MissingReason => "reason_required",
            CommandError::ClaimedBy { .. } => "claimed_by_other",
            CommandError::Missing(_) => "field_required",
            CommandError::AlarmChanged { .. } => "alarm_changed",
            CommandError::OutOfRange { .. } => "out_of_range",
            CommandError::OtherZone { .. } => "responder_other_zone",
        }
    }

    /// The values a page needs to say the refusal in its own words.
    pub fn args(&self) -> Vec<(&'static str, String)> {
        match self {
            CommandError::UnknownIncident(id) | CommandError::AlarmChanged { incident: id } => {
                vec![("incident", id.to_string())]
            }
            CommandError::UnknownResponder(r) | CommandError::OffDuty(r) => vec![("responder", r.to_string())],
            CommandError::NotYours { incident, responder } => {
                vec![("incident", incident.to_string()), ("responder", responder.to_string())]
            }
            CommandError::IllegalTransition { from, to } => vec![("from", from.to_string()), ("to", to.to_string())],
            CommandError::Busy { responder, incident } => {
                vec![("responder", responder.to_string()), ("incident", incident.to_string())]
            }
            CommandError::MissingReason => vec![],
            CommandError::ClaimedBy { incident, by } => vec![("incident", incident.to_string()), ("by", by.clone())],
            CommandError::Missing(what) => vec![("what", what.to_string())],
            CommandError::OutOfRange { what, min, max } => {
                vec![("what", what.to_string()), ("min", min.to_string()), ("max", max.to_string())]
            }
            CommandError::OtherZone { responder, zone } => {
                vec![("responder", responder.to_string()), ("zone", zone.to_string())]
            }
        }
    }
}
