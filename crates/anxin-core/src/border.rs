//! Offers across a zone border (issue 25; `SCALE-OUT.md`, "Zone borders").
//!
//! A press near a border may be reached soonest by a neighbouring zone's responder. Who may
//! offer them a job is the question: each zone's responders are booked by that zone's engine,
//! and two engines booking one person at the same moment is the double booking the fence
//! exists to prevent. So:
//!
//! - **A zone this engine runs too** (one engine running several zones): its responders are
//!   in the engine's own matcher, their availability known exactly. They are offered at once,
//!   and their row says which other zone's incident holds them ([`Hold`]), so that whoever
//!   runs their zone next knows.
//! - **A zone run elsewhere:** the engine keeps a read-only copy of its responders
//!   ([`Neighbour`], from the ledger), taken for free until their zone says otherwise. When
//!   one is the ladder's choice, the engine asks their zone's owner to hold them
//!   ([`BorderMessage::Hold`], the offer shown as asked and nobody's phone told); that owner
//!   holds them in a commit of its own if they are free ([`BorderMessage::Held`]) or says it
//!   cannot spare them ([`BorderMessage::Refused`]). Only once held is the offer made. The
//!   offer's decline, lapse or withdrawal, or the job's end, frees them
//!   ([`BorderMessage::Release`]). An answer that does not come within
//!   [`Policy::border_answer_ms`](crate::Policy::border_answer_ms) is an offer lapsed; the ladder goes on, and a hold
//!   that comes late is released at once.
//!
//! Messages go between zones' owners with the batches that cause them, in the receiving
//! zone's inbox (`anxind`), and every one may come twice or after a later one: a hold asked
//! again for the incident that has it is held again, a release of a hold that is not there
//! changes nothing, and a hold for an incident that no longer asks is released.

use crate::geo::Coordinates;
use crate::ids::{IncidentId, ResponderId};
use crate::registry::Responder;
use crate::zone::Zone;
use serde::{Deserialize, Serialize};

/// The topic a message between zones' owners is filed under in the receiving zone's inbox. No
/// device can publish on it (`$` topics are the broker's own), so the zone's owner tells it
/// apart from a device's message.
pub const INBOX_TOPIC: &str = "$anxin/border";
/// The inbox's "device" of a message between zones' owners.
pub const INBOX_SENDER: &str = "$border";

/// What one zone's owner tells another about a responder and an incident. The incident's
/// zone is the asking side's; the responder's, the holding side's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BorderMessage {
    /// To the responder's zone: hold them for the incident, so that it may offer them the job.
    Hold { incident_id: IncidentId, responder_id: ResponderId },
    /// To the incident's zone: held for it; where they are now.
    Held { incident_id: IncidentId, responder_id: ResponderId, position: Coordinates },
    /// To the incident's zone: they cannot be spared (holding an offer or a job, off duty,
    /// or not in the zone's ledger).
    Refused { incident_id: IncidentId, responder_id: ResponderId },
    /// To the responder's zone: the incident no longer needs them.
    Release { incident_id: IncidentId, responder_id: ResponderId },
    /// To the incident's zone: the responder it holds went off duty with their zone. An offer
    /// made to them is declined (`off_duty`) and one only asked for is refused; a job stays
    /// theirs (their zone cannot tell an offer from a job, so it does not refuse the change).
    OffDuty { incident_id: IncidentId, responder_id: ResponderId },
}

impl BorderMessage {
    pub fn incident_id(&self) -> IncidentId {
        match self {
            BorderMessage::Hold { incident_id, .. }
            | BorderMessage::Held { incident_id, .. }
            | BorderMessage::Refused { incident_id, .. }
            | BorderMessage::Release { incident_id, .. }
            | BorderMessage::OffDuty { incident_id, .. } => *incident_id,
        }
    }

    pub fn responder_id(&self) -> &ResponderId {
        match self {
            BorderMessage::Hold { responder_id, .. }
            | BorderMessage::Held { responder_id, .. }
            | BorderMessage::Refused { responder_id, .. }
            | BorderMessage::Release { responder_id, .. }
            | BorderMessage::OffDuty { responder_id, .. } => responder_id,
        }
    }

    /// Its key in the inbox: its kind, incident and responder. Two messages alike are
    /// interchangeable (whatever comes twice is acted on once), so one filed while its twin
    /// waits is left out.
    pub fn inbox_key(&self) -> String {
        format!("{}:{}:{}", self.kind(), self.incident_id().0, self.responder_id())
    }

    /// What it is, as metrics and logs name it.
    pub fn kind(&self) -> &'static str {
        match self {
            BorderMessage::Hold { .. } => "hold",
            BorderMessage::Held { .. } => "held",
            BorderMessage::Refused { .. } => "refused",
            BorderMessage::Release { .. } => "release",
            BorderMessage::OffDuty { .. } => "off_duty",
        }
    }
}

/// A message for another zone's owner, stored with the batch that caused it.
#[derive(Debug, Clone, PartialEq)]
pub struct Across {
    pub to: Zone,
    pub message: BorderMessage,
}

/// A responder held for another zone's incident, or let go of (`incident_id: None`): their
/// row in the store says so, so that whoever runs their zone next does not offer them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub responder_id: ResponderId,
    pub incident_id: Option<IncidentId>,
}

/// A neighbouring zone's responder as the ledger has them: who they are, where their base
/// is, and the service circle of their station. Read-only: their duty and whereabouts are
/// their zone's to know, and their zone's owner decides whether they can be spared.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbour {
    pub responder: Responder,
    pub zone: Zone,
    /// Their station's service circle, minutes (`None`: the policy's default).
    pub service_circle_min: Option<u32>,
}

/// What [`Engine::handle_border`](crate::Engine::handle_border) made of a message, for the
/// shell's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BorderOutcome {
    /// It changed something (a hold taken or let go of, an offer made, the ladder moved on),
    /// or was answered.
    Acted,
    /// It came twice or too late, or is not this engine's to act on: nothing changed (a late
    /// hold is released).
    Passed,
}
