//! What the nodes of a cluster with its zones spread over them tell each other
//! (`[cluster] spread_zones`; docs/architecture.md, "Zones over nodes").

use crate::command::{Answer, Caller, Refused, Reply, Request};
use crate::ws::ElderIncident;
use anxin_core::service::Quote;
use anxin_core::{
    Coordinates, Delivery, DispatcherAction, ElderId, FamilyAnswer, IncidentEvent, IncidentId, IncidentState,
    IncidentView, OrderAction, OrderId, OrderRequest, ResponderAction, ResponderId, ResponderView, Suggestion,
    Timestamp, WorkerAction,
};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// What the node running a zone has just committed in it, as consoles see it: published on
/// the zone's views topic ([`crate::Topics::zone_views`]) after the commit, for the other
/// nodes' consoles. `prev` is the zone's last sequence number before these views (a frame
/// with responders only has none after it): a node that has not seen `prev` has missed a
/// frame, and reads the zone back from the store.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ZoneViews {
    pub zone: u16,
    pub prev: u64,
    /// The incidents' views as the owner wrote them: a following node reads only what its hub
    /// numbers and orders them by, and passes the rest on to its consoles as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<WrittenView>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responders: Vec<ResponderView>,
    /// Members of staff and responders the commit added, changed or retired in the ledger:
    /// every node reads them from the store, for its sign-in (a password, a role, a phone's
    /// token). Named only, so that no hash crosses the broker.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sign_ins: Vec<SignInChanged>,
    /// Service orders the commit placed or changed, as the board shows them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub orders: Vec<anxin_core::engine::OrderView>,
    /// Responders' phones the commit changed (an offer, a job, its end), for a phone signed in
    /// on any node: its owner as its `hello` says, and its offer or job. A responder of
    /// another zone holding this zone's offer across a border is shown it by this zone's
    /// owner alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<PeerPhone>,
    /// The zone's devices that cannot call now, as its engine last counted them, for every
    /// node's wallboard (absent until the engine has counted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offline: Option<u32>,
}

/// An incident's view written as JSON once, with the fields a console hub numbers, keeps and
/// orders it by read out: a following node's hub sends the text on as it came (reading every
/// view of every other zone in full and writing it out again was a sixth of a following node's
/// CPU in the cluster test). Only those fields are checked when it is read; the rest is the
/// owner's writing of an [`IncidentView`], passed on unread.
#[derive(Debug, Clone)]
pub struct WrittenView {
    pub id: IncidentId,
    pub seq: u64,
    pub state: IncidentState,
    pub priority: u8,
    pub pressed_at: Timestamp,
    pub json: Box<RawValue>,
}

impl WrittenView {
    /// `view`, written.
    pub fn of(view: &IncidentView) -> WrittenView {
        WrittenView {
            id: view.id,
            seq: view.seq,
            state: view.state,
            priority: view.priority,
            pressed_at: view.pressed_at,
            json: serde_json::value::to_raw_value(view).expect("incident views serialise"),
        }
    }

    /// Where consoles list it, as [`IncidentView::order`].
    pub fn order(&self) -> (u8, Timestamp, IncidentId) {
        (self.priority, self.pressed_at, self.id)
    }
}

impl PartialEq for WrittenView {
    fn eq(&self, other: &Self) -> bool {
        self.json.get() == other.json.get()
    }
}

impl Serialize for WrittenView {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for WrittenView {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The fields read; the others are skipped without being built.
        #[derive(Deserialize)]
        struct Head {
            id: IncidentId,
            seq: u64,
            state: IncidentState,
            priority: u8,
            pressed_at: Timestamp,
        }
        let json = Box::<RawValue>::deserialize(deserializer)?;
        let head: Head = serde_json::from_str(json.get())
            .map_err(|e| serde::de::Error::custom(format_args!("an incident's view: {e}")))?;
        let Head { id, seq, state, priority, pressed_at } = head;
        Ok(WrittenView { id, seq, state, priority, pressed_at, json })
    }
}

/// A ledger entry that signs in, changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInChanged {
    /// `staff` or `responder`.
    pub kind: anxin_core::LedgerKind,
    pub id: String,
}

/// A responder's phone as the engine that changed it shows it: what the phones' hub of every
/// node sends a phone signed in there (its `hello` and `job` frames).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerPhone {
    pub owner: crate::ws::PhoneOwner,
    pub job: Option<anxin_core::JobView>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<anxin_core::JobEnded>,
}

impl ZoneViews {
    /// Reads a frame from its JSON. Here rather than where it is called: serde's code for it
    /// is made in the crate that names the type to decode, and anxind's debug build is not
    /// optimised (Cargo.toml), where decoding the other zones' frames was a tenth of a
    /// following node's CPU in the cluster test.
    #[inline(never)]
    pub fn from_json(bytes: &[u8]) -> Result<ZoneViews, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The zone's last sequence number after these views.
    pub fn last(&self) -> u64 {
        self.views.iter().map(|v| v.seq).max().unwrap_or(self.prev).max(self.prev)
    }
}

/// A person's request about an incident, elder or responder whose zone runs on another node,
/// forwarded to that node (on its commands topic, [`crate::Topics::node_commands`]) and
/// answered on the asking node's answers topic: a dispatcher's about an incident or an elder,
/// a responder's from their phone, a contact's answer from the family page, and what a
/// gateway's receipt says became of a notification. The rest is refused as `zone_elsewhere`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forwarded {
    /// The asking node's number for it, repeated in the answer.
    pub id: u64,
    /// The asking node's name: the answer goes to its answers topic.
    pub from: String,
    /// The zone the asking node found the request to concern.
    pub zone: u16,
    /// Who asks, as the asking node signed them in.
    pub caller: ForwardedCaller,
    pub request: Forwardable,
    /// The asking node's id for the request, the same each time it is sent again: the node
    /// running the zone acts on an id once and answers it again as it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Who asks a [`Forwarded`] request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ForwardedCaller {
    /// A signed-in dispatcher, by staff id.
    Dispatcher { id: String, supervisor: bool },
    /// A responder, by the id their phone's token is for.
    Responder { id: ResponderId },
    /// One of an elder's contacts, signed in to the family page or replying to a text.
    Family { elder: ElderId, contact: String },
    /// A gateway's receipt, taken by the asking node's callback.
    Notifier,
}

/// What may be forwarded, and by whom (see [`Forwardable::of`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Forwardable {
    Dispatch {
        incident: IncidentId,
        action: DispatcherAction,
    },
    Suggest {
        incident: IncidentId,
    },
    Timeline {
        incident: IncidentId,
    },
    History {
        elder: ElderId,
    },
    Respond {
        incident: IncidentId,
        action: ResponderAction,
    },
    Duty {
        on: bool,
    },
    Location {
        at: Coordinates,
    },
    FamilyAnswer {
        incident: IncidentId,
        answer: FamilyAnswer,
    },
    NotificationOutcome {
        incident: IncidentId,
        contact: String,
        key: String,
        delivery: Delivery,
    },
    PlaceOrder {
        order: OrderRequest,
    },
    Quote {
        order: OrderRequest,
    },
    OrderAct {
        order: OrderId,
        action: OrderAction,
    },
    /// The zone's open orders (a contact's: their elder's).
    Orders,
    /// A service worker's step on an order of the zone, from their phone.
    WorkerAct {
        order: OrderId,
        action: WorkerAction,
    },
}

impl Forwardable {
    /// What of `request` from `caller` may be forwarded: a dispatcher's about an incident or
    /// an elder, a responder's answer, duty or position, a contact's answer, a notification's
    /// outcome, a dispatcher's or contact's service order (placed, quoted, acted on), and a
    /// service worker's step on an order.
    pub fn of(caller: &Caller, request: &Request) -> Option<(ForwardedCaller, Forwardable)> {
        let forwardable = match (caller, request) {
            (Caller::Dispatcher { .. }, Request::Dispatch { incident, action }) => {
                Forwardable::Dispatch { incident: *incident, action: action.clone() }
            }
            (Caller::Dispatcher { .. }, Request::Suggest { incident }) => Forwardable::Suggest { incident: *incident },
            (Caller::Dispatcher { .. }, Request::Timeline { incident }) => {
                Forwardable::Timeline { incident: *incident }
            }
            (Caller::Dispatcher { .. }, Request::History { elder }) => Forwardable::History { elder: elder.clone() },
            (Caller::Responder(_), Request::Respond { incident, action }) => {
                Forwardable::Respond { incident: *incident, action: action.clone() }
            }
            (Caller::Responder(_), Request::Duty { on }) => Forwardable::Duty { on: *on },
            (Caller::Responder(_), Request::Location { at }) => Forwardable::Location { at: *at },
            (Caller::Family { .. }, Request::FamilyAnswer { incident, answer }) => {
                Forwardable::FamilyAnswer { incident: *incident, answer: answer.clone() }
            }
            (Caller::Notifier, Request::NotificationOutcome { incident, contact, key, delivery }) => {
                Forwardable::NotificationOutcome {
                    incident: *incident,
                    contact: contact.clone(),
                    key: key.clone(),
                    delivery: *delivery,
                }
            }
            (Caller::Dispatcher { .. } | Caller::Family { .. }, Request::PlaceOrder(order)) => {
                Forwardable::PlaceOrder { order: order.clone() }
            }
            (Caller::Dispatcher { .. } | Caller::Family { .. }, Request::Quote(order)) => {
                Forwardable::Quote { order: order.clone() }
            }
            (Caller::Dispatcher { .. } | Caller::Family { .. }, Request::OrderAct { order, action }) => {
                Forwardable::OrderAct { order: *order, action: action.clone() }
            }
            (Caller::Dispatcher { .. } | Caller::Family { .. }, Request::Orders) => Forwardable::Orders,
            (Caller::Responder(_), Request::WorkerAct { order, action }) => {
                Forwardable::WorkerAct { order: *order, action: action.clone() }
            }
            _ => return None,
        };
        let caller = match caller {
            Caller::Dispatcher { id, supervisor } => {
                ForwardedCaller::Dispatcher { id: id.clone(), supervisor: *supervisor }
            }
            Caller::Responder(id) => ForwardedCaller::Responder { id: id.clone() },
            Caller::Family { elder, contact } => {
                ForwardedCaller::Family { elder: elder.clone(), contact: contact.clone() }
            }
            Caller::Notifier => ForwardedCaller::Notifier,
            Caller::Admin { .. } | Caller::Telephony => return None,
        };
        Some((caller, forwardable))
    }

    /// Whether acting on it changes something (then it is acted on once under its request
    /// id: an order placed twice would be two orders); queries and a responder's position
    /// (sent again soon enough) do not count.
    pub fn acts(&self) -> bool {
        !matches!(
            self,
            Forwardable::Suggest { .. }
                | Forwardable::Timeline { .. }
                | Forwardable::History { .. }
                | Forwardable::Location { .. }
                | Forwardable::Quote { .. }
                | Forwardable::Orders
        )
    }

    /// The caller and request again, on the node running the zone; `None` for a pair the
    /// caller may not make (what [`Forwardable::of`] would not have forwarded).
    pub fn into_command(self, caller: ForwardedCaller) -> Option<(Caller, Request)> {
        let request = match self {
            Forwardable::Dispatch { incident, action } => Request::Dispatch { incident, action },
            Forwardable::Suggest { incident } => Request::Suggest { incident },
            Forwardable::Timeline { incident } => Request::Timeline { incident },
            Forwardable::History { elder } => Request::History { elder },
            Forwardable::Respond { incident, action } => Request::Respond { incident, action },
            Forwardable::Duty { on } => Request::Duty { on },
            Forwardable::Location { at } => Request::Location { at },
            Forwardable::FamilyAnswer { incident, answer } => Request::FamilyAnswer { incident, answer },
            Forwardable::NotificationOutcome { incident, contact, key, delivery } => {
                Request::NotificationOutcome { incident, contact, key, delivery }
            }
            Forwardable::PlaceOrder { order } => Request::PlaceOrder(order),
            Forwardable::Quote { order } => Request::Quote(order),
            Forwardable::OrderAct { order, action } => Request::OrderAct { order, action },
            Forwardable::Orders => Request::Orders,
            Forwardable::WorkerAct { order, action } => Request::WorkerAct { order, action },
        };
        let caller = match caller {
            ForwardedCaller::Dispatcher { id, supervisor } => Caller::Dispatcher { id, supervisor },
            ForwardedCaller::Responder { id } => Caller::Responder(id),
            ForwardedCaller::Family { elder, contact } => Caller::Family { elder, contact },
            ForwardedCaller::Notifier => Caller::Notifier,
        };
        // One table of who may ask what: `of`'s.
        Forwardable::of(&caller, &request)?;
        Some((caller, request))
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
    Suggestions {
        suggestions: Vec<Suggestion>,
    },
    Events {
        events: Vec<IncidentEvent>,
    },
    Incidents {
        incidents: Vec<ElderIncident>,
    },
    /// A service order placed, under this number.
    Order {
        order: OrderId,
    },
    /// What an order would cost.
    Quote {
        quote: Quote,
    },
    /// A zone's open orders.
    Orders {
        orders: Vec<anxin_core::engine::OrderView>,
    },
    Refused {
        code: String,
        message: String,
        args: BTreeMap<String, String>,
    },
}

impl ForwardedReply {
    pub fn of(answer: Answer) -> Self {
        match answer {
            Ok(Reply::Suggestions(suggestions)) => ForwardedReply::Suggestions { suggestions },
            Ok(Reply::Events(events)) => ForwardedReply::Events { events },
            Ok(Reply::Incidents(incidents)) => ForwardedReply::Incidents { incidents },
            Ok(Reply::Order(order)) => ForwardedReply::Order { order },
            Ok(Reply::Quote(quote)) => ForwardedReply::Quote { quote },
            Ok(Reply::Orders(board)) => ForwardedReply::Orders { orders: board.orders },
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
            ForwardedReply::Order { order } => Ok(Reply::Order(order)),
            ForwardedReply::Quote { quote } => Ok(Reply::Quote(quote)),
            ForwardedReply::Orders { orders } => Ok(Reply::Orders(crate::OrderBoard::of(orders))),
            ForwardedReply::Refused { code, message, args } => Err(Refused { code, message, args, fields: Vec::new() }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anxin_core::{DispatcherAction, ResponderAction, ResponderId};

    /// Each kind of caller forwards what it may ask and no more; what comes back on the other
    /// node is the same caller and request; actions are stored once, queries and positions not.
    #[test]
    fn each_caller_forwards_its_own_requests_and_they_come_back_the_same() {
        let incident = IncidentId(5);
        let responder = Caller::Responder(ResponderId::parse("r-7").unwrap());
        let dispatcher = Caller::Dispatcher { id: "wang".into(), supervisor: true };
        let family = Caller::Family { elder: ElderId::parse("e-1").unwrap(), contact: "c-1".into() };
        let asks = [
            (responder.clone(), Request::Respond { incident, action: ResponderAction::Accept }, true),
            (responder.clone(), Request::Duty { on: false }, true),
            (responder.clone(), Request::Location { at: Coordinates::new(25.0, 102.7).unwrap() }, false),
            (dispatcher.clone(), Request::Dispatch { incident, action: DispatcherAction::Claim }, true),
            (dispatcher.clone(), Request::Suggest { incident }, false),
            (family.clone(), Request::FamilyAnswer { incident, answer: anxin_core::FamilyAnswer::Seen }, true),
            (
                Caller::Notifier,
                Request::NotificationOutcome {
                    incident,
                    contact: "c-1".into(),
                    key: "n3".into(),
                    delivery: Delivery::Delivered,
                },
                true,
            ),
        ];
        let order = anxin_core::OrderRequest {
            elder_id: ElderId::parse("e-1").unwrap(),
            category: "bath".into(),
            from: anxin_core::Timestamp(1_763_000_000_000),
            to: anxin_core::Timestamp(1_763_003_600_000),
            notes: String::new(),
            source: anxin_core::OrderSource::Family { contact: "c-1".into() },
            self_paid_agreed: false,
        };
        let services = [
            (dispatcher.clone(), Request::PlaceOrder(order.clone()), true),
            (family.clone(), Request::Quote(order.clone()), false),
            (dispatcher.clone(), Request::Orders, false),
            (family.clone(), Request::Orders, false),
            (
                family.clone(),
                Request::OrderAct {
                    order: anxin_core::OrderId(9),
                    action: anxin_core::OrderAction::Cancel { reason: "住院".into() },
                },
                true,
            ),
            (
                Caller::Responder(ResponderId::parse("w-1").unwrap()),
                Request::WorkerAct { order: anxin_core::OrderId(9), action: anxin_core::WorkerAction::EnRoute },
                true,
            ),
        ];
        for (caller, request, acts) in asks.into_iter().chain(services) {
            let (who, what) = Forwardable::of(&caller, &request).unwrap_or_else(|| panic!("{request:?} forwarded"));
            assert_eq!(what.acts(), acts, "{request:?}");
            // Over the wire and back.
            let (who, what): (ForwardedCaller, Forwardable) = serde_json::from_value(serde_json::json!([
                serde_json::to_value(&who).unwrap(),
                serde_json::to_value(&what).unwrap()
            ]))
            .unwrap();
            assert_eq!(what.into_command(who), Some((caller, request)));
        }
        // Not theirs to ask.
        assert!(Forwardable::of(&dispatcher, &Request::Respond { incident, action: ResponderAction::Accept }).is_none());
        assert!(Forwardable::of(&responder, &Request::Suggest { incident }).is_none());
        assert!(Forwardable::of(&responder, &Request::PlaceOrder(order)).is_none());
        assert!(Forwardable::of(&Caller::Admin { id: "root".into() }, &Request::Suggest { incident }).is_none());
        let forged = Forwardable::Dispatch { incident, action: DispatcherAction::Claim };
        assert_eq!(forged.into_command(ForwardedCaller::Responder { id: ResponderId::parse("r-7").unwrap() }), None);
    }
}
