//! Carers' visits to elders' homes, and the carers' own safety.
//!
//! A carer is a responder whose ledger entry lists the skill [`CARER_SKILL`]: they sign in on
//! the same phone page with the same token. From it they check in at an elder's home (the
//! position they send must lie within [`CarerPolicy::checkin_radius_m`] of the registered
//! home, or the check-in is refused), say they are still there, and check out; each visit is
//! a [`Visit`], stored as a row of the visit log. A carer who checked in and is not heard
//! again within [`CarerPolicy::visit_max_ms`] is overdue: the engine opens a *lone-worker*
//! incident for a dispatcher to phone them. A carer's own help button opens an SOS for the
//! carer (see `docs/architecture.md`, "Carers").

use crate::geo::Coordinates;
use crate::ids::{ElderId, IncidentId, ResponderId, Timestamp};
use serde::{Deserialize, Serialize};

/// The skill in a responder's ledger entry that makes them a carer.
pub const CARER_SKILL: &str = "carer";

/// The prefix of the device id a carer's incidents carry (`carer:<responder id>`). No device
/// in the ledger may have it (the ledger refuses it), so it names the carer's phone and
/// never a device: nothing is added to the devices, their health or the broker's accounts.
pub const CARER_DEVICE_PREFIX: &str = "carer:";

/// Whether a responder's skills make them a carer.
pub fn is_carer(skills: &[String]) -> bool {
    skills.iter().any(|s| s == CARER_SKILL)
}

/// The knobs of carers' visits (`[carers]` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CarerPolicy {
    /// How far from the elder's registered home a check-in may be made.
    pub checkin_radius_m: f64,
    /// How long a carer may stay on a visit without checking out or saying they are still
    /// there before a dispatcher is alerted.
    pub visit_max_ms: i64,
}

impl Default for CarerPolicy {
    fn default() -> Self {
        Self { checkin_radius_m: 200.0, visit_max_ms: 90 * 60_000 }
    }
}

/// What a carer does from their phone page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum VisitAction {
    /// Arrived at the elder's home.
    CheckIn { elder_id: ElderId, at: Coordinates },
    /// Still at the visit: the lone-worker timer starts again.
    StillHere { at: Coordinates },
    /// Leaving the elder's home.
    CheckOut { at: Coordinates },
    /// The carer needs help (at `at`, or at the elder's home while on a visit).
    Help { at: Coordinates },
}

/// One visit: a line of the visit log, open until the carer checks out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    pub id: u64,
    pub carer_id: ResponderId,
    pub elder_id: ElderId,
    pub checked_in_at: Timestamp,
    /// Where the phone said the carer was at the check-in.
    pub checkin_at: Coordinates,
    /// From there to the elder's registered home, great circle.
    pub distance_m: f64,
    /// The check-in or the last "still here".
    pub last_seen_at: Timestamp,
    /// When the carer is overdue unless heard from again.
    pub due_at: Timestamp,
    /// Set once the carer checked out: the visit is over.
    pub checked_out_at: Option<Timestamp>,
    pub checkout_at: Option<Coordinates>,
    /// The lone-worker incident the engine opened when the carer was overdue, while it is
    /// open (and kept in the log afterwards).
    pub alert: Option<IncidentId>,
    /// Whether a lone-worker alert was ever raised on this visit.
    #[serde(default)]
    pub overdue: bool,
    /// When the row last changed: the store never replaces a row with an older one.
    pub updated_at: Timestamp,
}

impl Visit {
    pub fn is_open(&self) -> bool {
        self.checked_out_at.is_none()
    }
}

/// What a carer's phone shows of their visit and their help (in its `hello`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarerView {
    /// The visit they are on, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visit: Option<VisitView>,
    /// Their own help incident, while it is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<IncidentId>,
    /// How far from the home a check-in may be made, for the page to say.
    pub checkin_radius_m: u32,
}

/// An open visit as the carer's phone shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitView {
    pub id: u64,
    pub elder_id: ElderId,
    pub elder_name: String,
    pub address: String,
    pub checked_in_at: Timestamp,
    /// When a dispatcher is alerted unless the carer checks out or says they are still there.
    pub due_at: Timestamp,
    /// Whether a dispatcher has been alerted (the carer was overdue).
    pub overdue: bool,
}

/// Why a carer's action was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VisitError {
    #[error("responder {0} is not in the registry")]
    UnknownResponder(ResponderId),
    #[error("responder {0} is not a carer")]
    NotACarer(ResponderId),
    #[error("elder {0} is not in the registry")]
    UnknownElder(ElderId),
    #[error("you are {distance_m} m from the elder's home; a check-in must be within {radius_m} m")]
    OutOfRadius { distance_m: u32, radius_m: u32 },
    #[error("already on a visit to elder {0}: check out first")]
    OnVisit(ElderId),
    #[error("not on a visit")]
    NoVisit,
}

impl VisitError {
    /// A stable code a page translates.
    pub fn code(&self) -> &'static str {
        match self {
            VisitError::UnknownResponder(_) => "unknown_responder",
            VisitError::NotACarer(_) => "not_a_carer",
            VisitError::UnknownElder(_) => "unknown_elder",
            VisitError::OutOfRadius { .. } => "out_of_radius",
            VisitError::OnVisit(_) => "on_visit",
            VisitError::NoVisit => "no_visit",
        }
    }

    /// The values a page fills into its words.
    pub fn args(&self) -> Vec<(&'static str, String)> {
        match self {
            VisitError::UnknownResponder(r) | VisitError::NotACarer(r) => vec![("responder", r.to_string())],
            VisitError::UnknownElder(e) | VisitError::OnVisit(e) => vec![("elder", e.to_string())],
            VisitError::OutOfRadius { distance_m, radius_m } => {
                vec![("distance_m", distance_m.to_string()), ("radius_m", radius_m.to_string())]
            }
            VisitError::NoVisit => vec![],
        }
    }
}

/// What the engine keeps of one carer between their actions.
#[derive(Debug, Clone, Default)]
pub(crate) struct CarerState {
    /// The visit they are on.
    pub(crate) visit: Option<Visit>,
    /// Their own help incident, while it is open.
    pub(crate) help: Option<IncidentId>,
}
