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
