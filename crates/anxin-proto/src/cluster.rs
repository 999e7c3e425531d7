//! What the nodes of a cluster with its zones spread over them tell each other
//! (`[cluster] spread_zones`; docs/architecture.md, "Zones over nodes").

use crate::command::{Answer, Caller, Refused, Reply, Request};
use crate::ws::ElderIncident;
use anxin_core::{DispatcherAction, ElderId, IncidentEvent, IncidentId, IncidentView, ResponderView, Suggestion};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the node running a zone has just committed in it, as consoles see it: published on
/// the zone's views topic ([`crate::Topics::zone_views`]) after the commit, for the other
/// nodes' consoles. `prev` is the zone's last sequence number before these views (a frame
/// with responders only has none after it): a node that has not seen `prev` has missed a
/// frame, and reads the zone back from the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneViews {
    pub zone: u16,
    pub prev: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<IncidentView>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responders: Vec<ResponderView>,
    /// Members of staff and responders the commit added, changed or retired in the ledger:
    /// every node reads them from the store, for its sign-in (a password, a role, a phone's
    /// token). Named only, so that no hash crosses the broker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sign_ins: Vec<SignInChanged>,
}

/// A ledger entry that signs in, changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInChanged {
    /// `staff` or `responder`.
    pub kind: anxin_core::LedgerKind,
    pub id: String,
}

impl ZoneViews {
    /// The zone's last sequence number after these views.
    pub fn last(&self) -> u64 {
        self.views.iter().map(|v| v.seq).max().unwrap_or(self.prev).max(self.prev)
    }
}

/// A dispatcher's request about an incident or elder whose zone runs on another node,
/// forwarded to that node (on its commands topic, [`crate::Topics::node_commands`]) and
/// answered on the asking node's answers topic. Only what a console asks of an incident or an
/// elder goes: the rest is refused as `zone_elsewhere`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forwarded {
    /// The asking node's number for it, repeated in the answer.
    pub id: u64,
    /// The asking node's name: the answer goes to its answers topic.
    pub from: String,
    /// The dispatcher asking, by staff id, and whether a supervisor.
    pub dispatcher: String,
    pub supervisor: bool,
    pub request: Forwardable,
    /// The asking node's id for the request, the same each time it is sent again: the node
    /// running the zone acts on an id once and answers it again as it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// What may be forwarded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Forwardable {
    Dispatch { incident: IncidentId, action: DispatcherAction },
    Suggest { incident: IncidentId },
    Timeline { incident: IncidentId },
    History { elder: ElderId },
}

impl Forwardable {
    /// What of `request` from `caller` may be forwarded: a dispatcher's, about an incident or
    /// an elder.
    pub fn of(caller: &Caller, request: &Request) -> Option<(String, bool, Forwardable)> {
        let Caller::Dispatcher { id, supervisor } = caller else { return None };
        let forwardable = match request {
            Request::Dispatch { incident, action } => {
                Forwardable::Dispatch { incident: *incident, action: action.clone() }
            }
            Request::Suggest { incident } => Forwardable::Suggest { incident: *incident },
            Request::Timeline { incident } => Forwardable::Timeline { incident: *incident },
            Request::History { elder } => Forwardable::History { elder: elder.clone() },
            _ => return None,
        };
        Some((id.clone(), *supervisor, forwardable))
    }

    /// The caller and request again, on the node running the zone.
    pub fn into_command(self, dispatcher: String, supervisor: bool) -> (Caller, Request) {
        let request = match self {
            Forwardable::Dispatch { incident, action } => Request::Dispatch { incident, action },
            Forwardable::Suggest { incident } => Request::Suggest { incident },
            Forwardable::Timeline { incident } => Request::Timeline { incident },
            Forwardable::History { elder } => Request::History { elder },
        };
        (Caller::Dispatcher { id: dispatcher, supervisor }, request)
    }
}

/// The answer to a [`Forwarded`] request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForwardedAnswer {
    pub id: u64,
    pub answer: ForwardedReply,
}

/// An [`Answer`] to a forwardable request, as it crosses between nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ForwardedReply {
    Done,
    Suggestions { suggestions: Vec<Suggestion> },
    Events { events: Vec<IncidentEvent> },
    Incidents { incidents: Vec<ElderIncident> },
    Refused { code: String, message: String, args: BTreeMap<String, String> },
}

impl ForwardedReply {
    pub fn of(answer: Answer) -> Self {
        match answer {
            Ok(Reply::Suggestions(suggestions)) => ForwardedReply::Suggestions { suggestions },
            Ok(Reply::Events(events)) => ForwardedReply::Events { events },
            Ok(Reply::Incidents(incidents)) => ForwardedReply::Incidents { incidents },
            Ok(_) => ForwardedReply::Done,
            Err(r) => ForwardedReply::Refused { code: r.code, message: r.message, args: r.args },
        }
    }

    pub fn into_answer(self) -> Answer {
        match self {
            ForwardedReply::Done => Ok(Reply::Done),
            ForwardedReply::Suggestions { suggestions } => Ok(Reply::Suggestions(suggestions)),
            ForwardedReply::Events { events } => Ok(Reply::Events(events)),
            ForwardedReply::Incidents { incidents } => Ok(Reply::Incidents(incidents)),
            ForwardedReply::Refused { code, message, args } => Err(Refused { code, message, args, fields: Vec::new() }),
        }
    }
}
