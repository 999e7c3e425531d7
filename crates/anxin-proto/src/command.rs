//! What people ask of the engine: who asks ([`Caller`]), what ([`Request`]), and the
//! [`Command`] that carries both to the engine's task with a channel for the [`Answer`]. The
//! frames that carry them over a socket are read in `anxin-api`; the engine's task applies them
//! in its next batch and answers only after what they caused is stored.

use crate::ws::ElderIncident;
use anxin_core::{
    CommandError, Coordinates, Delivery as NotificationDelivery, DispatcherAction, ElderId, FamilyAnswer,
    IncidentEvent, IncidentId, ResponderAction, ResponderId, Suggestion,
};
use std::collections::BTreeMap;
use tokio::sync::{mpsc, oneshot};

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Responder(ResponderId),
    /// A signed-in dispatcher, by staff id; supervisors may take over others' claims.
    Dispatcher {
        id: String,
        supervisor: bool,
    },
    /// One of an elder's contacts, signed in to the family page (or replying to a text):
    /// they see and answer for that elder only.
    Family {
        elder: ElderId,
        contact: String,
    },
    /// A signed-in administrator, by staff id: changes the ledger, works no incidents.
    Admin {
        id: String,
    },
    /// The notification delivery worker, inside anxind, reporting what became of a
    /// notification. Never read from a frame.
    Notifier,
    /// The SIP server, reporting a call to the hotline over its bearer-token endpoint. Never
    /// read from a frame.
    Telephony,
}

/// What they ask.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
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
    Dispatch {
        incident: IncidentId,
        action: DispatcherAction,
    },
    /// Whom a dispatcher could put on the incident, best first.
    Suggest {
        incident: IncidentId,
    },
    /// The incident's audit trail (answered from the store, not the engine).
    Timeline {
        incident: IncidentId,
    },
    /// An elder's incidents of the last days (answered from the store, not the engine).
    History {
        elder: ElderId,
    },
    /// A dispatcher's first console connected (`online`), or their last one closed. Sent by
    /// the HTTP side, never read from a frame.
    Presence {
        online: bool,
    },
    /// A dispatcher signed out: their claims end. Sent by the HTTP side.
    SignedOut,
    /// A contact's answer about their elder's incident.
    FamilyAnswer {
        incident: IncidentId,
        answer: FamilyAnswer,
    },
    /// A dispatcher issues or revokes a contact's family-page link. Answered by the HTTP
    /// side from the store; it never reaches the engine.
    FamilyLink {
        elder: ElderId,
        contact: String,
        action: crate::family::LinkAction,
    },
    /// A dispatcher asks which of an elder's contacts have a live link (the HTTP side).
    FamilyLinks {
        elder: ElderId,
    },
    /// A family member asks for their elder's recent incidents (the HTTP side, from the store).
    FamilyHistory,
    /// A carer's check-in, "still here", check-out or help (see [`anxin_core::carer`]).
    Visit(anxin_core::VisitAction),
    /// Places a service order (a dispatcher, or a family member for their own elder).
    PlaceOrder(anxin_core::OrderRequest),
    /// What an order would cost and who could take it, before it is placed.
    Quote(anxin_core::OrderRequest),
    /// The service orders whose life is not over (a dispatcher's board).
    Orders,
    /// The categories, providers and allowances (the order form).
    Catalogue,
    /// A dispatcher's or family member's action on a service order.
    OrderAct {
        order: anxin_core::OrderId,
        action: anxin_core::OrderAction,
    },
    /// A service worker's step on an order, from their phone.
    WorkerAct {
        order: anxin_core::OrderId,
        action: anxin_core::WorkerAction,
    },
    /// A change to the ledger (an administrator, or an import on their behalf).
    Amend(Box<anxin_core::Amend>),
    /// Many changes at once (an import's chunk), each taken or refused on its own, in one
    /// commit.
    AmendMany(Vec<anxin_core::Amend>),
    /// Something happened to a call to the hotline (see [`anxin_core::telephony`]).
    Call(anxin_core::CallEvent),
    /// What became of a notification (from the delivery worker or a gateway's receipt).
    NotificationOutcome {
        incident: IncidentId,
        contact: String,
        key: String,
        delivery: NotificationDelivery,
    },
}

/// What a request gets back: `Ok` once what it caused is stored, with data for a query;
/// `Err` with why not.
pub type Answer = Result<Reply, Refused>;

/// Why a request was refused: a stable `code` a page translates (with `args` to fill in), and
/// the same in English for logs and for clients that know no codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: String,
    pub message: String,
    pub args: BTreeMap<String, String>,
    /// For a ledger entry that is not valid: each field's problem, for the form.
    pub fields: Vec<anxin_core::FieldError>,
}

impl Refused {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.to_string(), message: message.into(), args: BTreeMap::new(), fields: Vec::new() }
    }

    /// The code of [`Refused::fenced`].
    pub const FENCED: &'static str = "fenced";

    /// A request the engine acted on in a batch whose commit was fenced: the node's lease on
    /// the zone had moved to another, so nothing of it was stored, and it may be asked again
    /// of the zone's new owner (with zones spread over nodes, the node asked does so itself).
    pub fn fenced() -> Self {
        Self::new(
            Self::FENCED,
            "not done: this node's lease on the zone passed to another node before it could be stored; ask again",
        )
    }

    /// The code of [`Refused::not_acted`].
    pub const STOPPING: &'static str = "stopping";

    /// A request the engine stopped before acting on (a zone handed over, the node stopping):
    /// nothing of it was stored, and it may be asked again (of the zone's new owner; with zones
    /// spread over nodes, the node asked does so itself). An engine that stops without
    /// answering at all is also told as `stopping`, but then what it did may have been stored.
    pub fn not_acted() -> Self {
        Self::new(Self::STOPPING, "the engine stopped before acting on it; ask again").with("acted", "no")
    }

    /// Whether nothing of the request refused so was stored: [`Refused::fenced`] and
    /// [`Refused::not_acted`] (a `stopping` without `acted: no` is not).
    pub fn not_stored(&self) -> bool {
        self.code == Self::FENCED || (self.code == Self::STOPPING && self.args.get("acted").is_some_and(|a| a == "no"))
    }

    /// The same, with a value a page fills into its words.
    pub fn with(mut self, name: &str, value: impl ToString) -> Self {
        self.args.insert(name.to_string(), value.to_string());
        self
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<CommandError> for Refused {
    fn from(e: CommandError) -> Self {
        let mut refused = Refused::new(e.code(), e.to_string());
        for (name, value) in e.args() {
            refused.args.insert(name.to_string(), value);
        }
        refused
    }
}

impl From<anxin_core::VisitError> for Refused {
    fn from(e: anxin_core::VisitError) -> Self {
        let mut refused = Refused::new(e.code(), e.to_string());
        for (name, value) in e.args() {
            refused.args.insert(name.to_string(), value);
        }
        refused
    }
}

impl From<anxin_core::OrderError> for Refused {
    fn from(e: anxin_core::OrderError) -> Self {
        use anxin_core::OrderError as E;
        let refused = Refused::new(e.code(), e.to_string());
        match e {
            E::SelfPaidNotAgreed { self_paid_fen } => refused.with("self_paid_fen", self_paid_fen),
            E::OutOfRadius { distance_m, radius_m } => {
                refused.with("distance_m", distance_m).with("radius_m", radius_m)
            }
            E::WrongState { state } => refused.with("state", state),
            _ => refused,
        }
    }
}

impl From<anxin_core::LedgerError> for Refused {
    fn from(e: anxin_core::LedgerError) -> Self {
        let mut refused = Refused::new(e.code(), e.to_string());
        refused.fields = e.fields().to_vec();
        refused
    }
}

/// What a request that succeeded gives back.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A command, applied and stored.
    Done,
    /// Whom a dispatcher could put on the incident, best first.
    Suggestions(Vec<Suggestion>),
    /// An incident's audit trail, oldest first.
    Events(Vec<IncidentEvent>),
    /// An elder's recent incidents, the latest first.
    Incidents(Vec<ElderIncident>),
    /// An elder's contacts' live family-page links.
    FamilyLinks(Vec<crate::family::FamilyLinkInfo>),
    /// A family-page link just issued (shown once).
    IssuedLink(crate::family::IssuedLink),
    /// The family's elder's recent incidents, as the family sees them, the latest first.
    FamilyHistory(Vec<crate::family::FamilyPastIncident>),
    /// A change to the ledger, taken (and stored) or found already made.
    Amended(anxin_core::Amended),
    /// Each of many changes' outcome, in order.
    AmendedMany(Vec<Result<anxin_core::Amended, Refused>>),
    /// What the engine made of a call's event.
    Call(anxin_core::CallOutcome),
    /// A service order placed, under this number.
    Order(anxin_core::OrderId),
    /// What an order would cost.
    Quote(anxin_core::service::Quote),
    /// The categories, providers and allowances.
    Catalogue(Box<anxin_core::service::Catalogue>),
    /// The orders open, with names.
    Orders(OrderBoard),
}

/// The orders open, with names, as the board shows them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrderBoard {
    pub orders: Vec<anxin_core::engine::OrderView>,
    /// With the zones spread over nodes, those whose orders could not be had (their owner did
    /// not answer in time, or none runs them now): the board lacks their orders.
    pub zones_unanswered: Vec<u16>,
}

impl OrderBoard {
    /// All the orders there are.
    pub fn of(orders: Vec<anxin_core::engine::OrderView>) -> Self {
        OrderBoard { orders, zones_unanswered: Vec::new() }
    }
}

/// A request on its way to the engine, with where to send the answer.
#[derive(Debug)]
pub struct Command {
    pub caller: Caller,
    pub request: Request,
    pub reply: Option<oneshot::Sender<Answer>>,
    /// Another node's id for a request it forwarded here (issue 25): an action (not a query)
    /// acted on under an id is stored with it, in the same commit, so that the id asked again
    /// of whichever node runs the zone next is answered and not acted on twice.
    pub request_id: Option<String>,
}

impl Command {
    /// A request from this node's own people: no forwarding id.
    pub fn new(caller: Caller, request: Request, reply: Option<oneshot::Sender<Answer>>) -> Self {
        Self { caller, request, reply, request_id: None }
    }
}

/// The sending end the HTTP side holds.
pub type CommandSender = mpsc::Sender<Command>;
