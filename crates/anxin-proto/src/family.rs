//! What an elder's family sees and sends on the family page (`/family`): the family-safe
//! view of the elder's incidents, the bodies of `/api/v1/family/*`, and the links a
//! dispatcher issues. The socket frames that carry these are in [`crate::ws`].
//!
//! A family member sees one elder and only what concerns them: what happened, when, where,
//! who is coming (a name and an ETA, never a phone number), the status, the emergency
//! number called, and what the elder's contacts answered. Never a dispatcher's name or id,
//! notes, the other responders offered the job, the elder's health record, or any other
//! elder.

use anxin_core::{
    ElderId, FamilyAnswer, IncidentId, IncidentKind, IncidentState, IncidentView, Policy, ResponderId, Timestamp,
    TravelMode,
};
use serde::{Deserialize, Serialize};

/// An incident of the family's elder, as their page shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyIncident {
    pub id: IncidentId,
    /// The engine's sequence number of the change shown: a page keeps the highest per id.
    pub seq: u64,
    pub kind: IncidentKind,
    /// Why a welfare check was opened (kind `welfare` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welfare: Option<anxin_core::WelfareReason>,
    pub state: IncidentState,
    pub pressed_at: Timestamp,
    pub updated_at: Timestamp,
    /// Where the incident is: the device's trusted fix, else the elder's home.
    pub place: FamilyPlace,
    /// Who took the job, while somebody has it (and who helped, once resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responder: Option<FamilyResponder>,
    /// The community station whose duty line was alerted, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<String>,
    /// The emergency number a dispatcher called (120, 110, 119), and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency_call: Option<FamilyCall>,
    /// The elder's contacts told or answering, in the order they came in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<FamilyContactView>,
    /// How it ended, as the responder or dispatcher put it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FamilyPlace {
    pub lat: f64,
    pub lon: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accuracy_m: Option<f64>,
    /// The elder's registered address.
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyResponder {
    pub name: String,
    /// Minutes they need to get there, reckoned when they took the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_min: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyCall {
    pub number: String,
    pub at: Timestamp,
}

/// One of the elder's contacts on an incident: when told, and what they answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyContactView {
    pub id: String,
    pub name: String,
    pub relation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub told_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<FamilyAnswer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<Timestamp>,
}

impl FamilyIncident {
    /// The family's view of a console's view. `mode` gives a responder's travel mode for the
    /// ETA (reckoned as the engine reckons the one it texts the family).
    pub fn from_view(view: &IncidentView, policy: &Policy, mode: impl Fn(&ResponderId) -> Option<TravelMode>) -> Self {
        let with_responder = matches!(
            view.state,
            IncidentState::Accepted
                | IncidentState::EnRoute
                | IncidentState::OnScene
                | IncidentState::Resolved
                | IncidentState::Closed
        );
        let responder = view.responder.as_ref().filter(|_| with_responder).map(|r| {
            let eta_min = ResponderId::parse(r.id.clone())
                .ok()
                .and_then(|id| mode(&id))
                .zip(r.distance_m)
                .map(|(m, d)| policy.travel_min(d, m).ceil().max(1.0) as u32);
            FamilyResponder { name: r.name.clone(), eta_min }
        });
        let station =
            view.station.as_ref().filter(|_| view.state == IncidentState::StationAlerted).map(|s| s.name.clone());
        let contacts = view
            .family
            .contacts
            .iter()
            .map(|f| {
                let known = view.elder.contacts.iter().find(|c| c.id == f.contact_id);
                FamilyContactView {
                    id: f.contact_id.clone(),
                    name: known.map(|c| c.name.clone()).unwrap_or_default(),
                    relation: known.map(|c| c.relation.clone()).unwrap_or_default(),
                    told_at: f.told_at,
                    answer: f.answer.clone(),
                    answered_at: f.answered_at,
                }
            })
            .collect();
        Self {
            id: view.id,
            seq: view.seq,
            kind: view.kind,
            welfare: view.welfare,
            state: view.state,
            pressed_at: view.pressed_at,
            updated_at: view.updated_at,
            place: FamilyPlace {
                lat: view.location.at.lat(),
                lon: view.location.at.lon(),
                accuracy_m: view.location.accuracy_m,
                address: view.elder.address.clone(),
            },
            responder,
            station,
            emergency_call: view.emergency_call.as_ref().map(|c| FamilyCall { number: c.number.clone(), at: c.at }),
            contacts,
            outcome: view.outcome.clone().filter(|o| !o.is_empty()),
        }
    }
}

/// One of the elder's past incidents, as the family's history lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyPastIncident {
    pub id: IncidentId,
    pub kind: IncidentKind,
    /// Why a welfare check was opened (kind `welfare` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welfare: Option<anxin_core::WelfareReason>,
    pub state: IncidentState,
    pub pressed_at: Timestamp,
    /// When it last changed (for an ended incident: when it ended).
    pub updated_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

impl From<&anxin_core::Incident> for FamilyPastIncident {
    fn from(i: &anxin_core::Incident) -> Self {
        Self {
            id: i.id,
            kind: i.kind,
            welfare: i.welfare,
            state: i.state,
            pressed_at: i.pressed_at,
            updated_at: i.updated_at,
            outcome: i.outcome.clone().filter(|o| !o.is_empty()),
        }
    }
}

/// Who is signed in on a family page: the contact, and the one elder they see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyMember {
    /// The elder's id, for the page to name them when it orders a home-care service.
    pub elder_id: ElderId,
    /// The elder's name, as the page greets them.
    pub elder_name: String,
    pub contact_id: String,
    pub contact_name: String,
    pub relation: String,
}

/// `POST /api/v1/family/session`: the token from the link.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FamilySignIn {
    pub token: String,
}

impl std::fmt::Debug for FamilySignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FamilySignIn").finish_non_exhaustive()
    }
}

/// The answer to signing in on the family page and to `GET /api/v1/family/session`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilySession {
    pub member: FamilyMember,
}

/// A refusal on `/api/v1/family/*`, with a code the page translates: `token_unknown`,
/// `token_revoked`, `signed_out`, `too_many_tries`, `bad_request`, `store_unavailable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyError {
    pub code: String,
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

impl FamilyError {
    pub fn new(code: &str, error: impl Into<String>) -> Self {
        Self { code: code.to_string(), error: error.into(), retry_after_s: None }
    }
}

/// `GET /api/v1/family/push-key`: the VAPID public key (uncompressed P-256 point,
/// base64url), for `PushManager.subscribe`; empty when push is not configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushKey {
    pub public_key: String,
}

/// `POST /api/v1/family/push-subscription`: a browser's `PushSubscription.toJSON()`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PushSubscriptionBody {
    pub endpoint: String,
    /// When the push service drops it, if it says (milliseconds); not kept.
    #[serde(default, rename = "expirationTime")]
    pub expiration_time: Option<f64>,
    pub keys: PushKeys,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushKeys {
    pub p256dh: String,
    pub auth: String,
}

/// `DELETE /api/v1/family/push-subscription`: the endpoint to forget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushUnsubscribe {
    pub endpoint: String,
}

/// What a dispatcher does with a contact's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkAction {
    /// A new link (the earlier one, if any, stops working).
    Issue,
    /// The contact's link stops working; their open pages are signed out.
    Revoke,
}

/// A contact's live link, as the console lists it (never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FamilyLinkInfo {
    pub contact_id: String,
    pub issued_at: Timestamp,
    /// The staff id who issued it (or `demo`).
    pub issued_by: String,
}

/// A link just issued: the token, shown once to the dispatcher who asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedLink {
    pub contact_id: String,
    /// The path with the token, to put after the server's address: `/family#t=...`.
    pub path: String,
    pub issued_at: Timestamp,
}
