//! What people ask of the engine: who asks ([`Caller`]), what ([`Request`]), and the
//! [`Command`] that carries both to the engine's task with a channel for the [`Answer`]. The
//! frames that carry them over a socket are read in `anxin-api`; the engine's task applies them
//! in its next batch and answers only after what they caused is stored.

use anxin_core::{Coordinates, DispatcherAction, IncidentEvent, IncidentId, ResponderAction, ResponderId, Suggestion};
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
}

/// What a request gets back: `Ok` once what it caused is stored, with data for a query;
/// `Err` with a reason a person can read.
pub type Answer = Result<Reply, String>;

/// What a request that succeeded gives back.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A command, applied and stored.
    Done,
    /// Whom a dispatcher could put on the incident, best first.
    Suggestions(Vec<Suggestion>),
    /// An incident's audit trail, oldest first.
    Events(Vec<IncidentEvent>),
}

/// A request on its way to the engine, with where to send the answer.
#[derive(Debug)]
pub struct Command {
    pub caller: Caller,
    pub request: Request,
    pub reply: Option<oneshot::Sender<Answer>>,
}

/// The sending end the HTTP side holds.
pub type CommandSender = mpsc::Sender<Command>;
