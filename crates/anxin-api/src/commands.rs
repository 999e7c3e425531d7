//! Commands from people (responders' phones, dispatchers' consoles) to the engine, and the
//! frames that carry them. The engine task owns the engine; these travel to it on a bounded
//! channel with a reply, and the reply is sent only after what they caused is stored.

use anxin_core::{Coordinates, DispatcherAction, IncidentId, ResponderAction, ResponderId};
pub use anxin_proto::{Answer, Caller, Command, CommandSender, Reply, Request};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// SHA-256 of a sign-in token, lowercase hex: what the registry keeps instead of the token.
pub fn token_sha256(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A frame from a phone or a console, as JSON: `{"type": ..., ...}`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Accept {
        incident_id: u64,
        request_id: Option<String>,
    },
    Decline {
        incident_id: u64,
        request_id: Option<String>,
    },
    EnRoute {
        incident_id: u64,
        request_id: Option<String>,
    },
    OnScene {
        incident_id: u64,
        request_id: Option<String>,
    },
    Resolve {
        incident_id: u64,
        outcome: String,
        request_id: Option<String>,
    },
    Duty {
        on: bool,
        request_id: Option<String>,
    },
    Location {
        lat: f64,
        lon: f64,
        accuracy_m: Option<f64>,
        request_id: Option<String>,
    },
    /// A dispatcher's command on an incident.
    Command {
        incident_id: u64,
        action: DispatcherVerb,
        responder_id: Option<String>,
        reason: Option<String>,
        outcome: Option<String>,
        /// A note's text.
        text: Option<String>,
        /// Whom a logged call was with.
        who: Option<String>,
        /// The number called (a logged call, an escalation).
        number: Option<String>,
        /// The emergency service's reference for an escalation.
        reference: Option<String>,
        request_id: Option<String>,
    },
    /// A dispatcher asks whom they could assign.
    Suggest {
        incident_id: u64,
        request_id: Option<String>,
    },
    /// A dispatcher asks for an incident's audit trail.
    Timeline {
        incident_id: u64,
        request_id: Option<String>,
    },
}

/// The dispatcher actions, by name.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatcherVerb {
    Assign,
    TakeOffLadder,
    Acknowledge,
    Resolve,
    Close,
    Cancel,
    FalseAlarm,
    Claim,
    Release,
    Note,
    Call,
    Escalate,
}

/// Why a frame could not become a request. The names label `anxin_ws_frames_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("not a frame this endpoint understands")]
    Malformed,
    #[error("this frame is for responders")]
    NotAResponder,
    #[error("this frame is for dispatchers")]
    NotADispatcher,
    #[error("coordinates are out of range")]
    BadLocation,
    #[error("a responder_id is required to assign")]
    MissingResponder,
}

impl FrameError {
    pub fn as_label(self) -> &'static str {
        match self {
            FrameError::Malformed => "malformed",
            FrameError::NotAResponder => "not_a_responder",
            FrameError::NotADispatcher => "not_a_dispatcher",
            FrameError::BadLocation => "bad_location",
            FrameError::MissingResponder => "missing_responder",
        }
    }
}

impl ClientFrame {
    /// Reads a frame from its JSON text. Only an object is a frame: serde would otherwise take
    /// an array's items as the fields in order (`["accept", 7, null]`).
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        if !text.trim_ascii_start().starts_with('{') {
            return Err(serde::de::Error::custom("a frame is a JSON object"));
        }
        serde_json::from_str(text)
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            ClientFrame::Accept { request_id, .. }
            | ClientFrame::Decline { request_id, .. }
            | ClientFrame::EnRoute { request_id, .. }
            | ClientFrame::OnScene { request_id, .. }
            | ClientFrame::Resolve { request_id, .. }
            | ClientFrame::Duty { request_id, .. }
            | ClientFrame::Location { request_id, .. }
            | ClientFrame::Command { request_id, .. }
            | ClientFrame::Suggest { request_id, .. }
            | ClientFrame::Timeline { request_id, .. } => request_id.as_deref(),
        }
    }

    /// The request this frame makes, for a caller of this kind.
    pub fn into_request(self, caller: &Caller) -> Result<Request, FrameError> {
        let responder = matches!(caller, Caller::Responder(_));
        let respond = |incident_id: u64, action| {
            if responder {
                Ok(Request::Respond { incident: IncidentId(incident_id), action })
            } else {
                Err(FrameError::NotAResponder)
            }
        };
        match self {
            ClientFrame::Accept { incident_id, .. } => respond(incident_id, ResponderAction::Accept),
            ClientFrame::Decline { incident_id, .. } => respond(incident_id, ResponderAction::Decline),
            ClientFrame::EnRoute { incident_id, .. } => respond(incident_id, ResponderAction::EnRoute),
            ClientFrame::OnScene { incident_id, .. } => respond(incident_id, ResponderAction::OnScene),
            ClientFrame::Resolve { incident_id, outcome, .. } => {
                respond(incident_id, ResponderAction::Resolve { outcome })
            }
            ClientFrame::Duty { on, .. } if responder => Ok(Request::Duty { on }),
            ClientFrame::Location { lat, lon, .. } if responder => {
                Coordinates::new(lat, lon).map(|at| Request::Location { at }).map_err(|_| FrameError::BadLocation)
            }
            ClientFrame::Duty { .. } | ClientFrame::Location { .. } => Err(FrameError::NotAResponder),
            ClientFrame::Command { .. } | ClientFrame::Suggest { .. } | ClientFrame::Timeline { .. } if responder => {
                Err(FrameError::NotADispatcher)
            }
            ClientFrame::Suggest { incident_id, .. } => Ok(Request::Suggest { incident: IncidentId(incident_id) }),
            ClientFrame::Timeline { incident_id, .. } => Ok(Request::Timeline { incident: IncidentId(incident_id) }),
            ClientFrame::Command {
                incident_id,
                action,
                responder_id,
                reason,
                outcome,
                text,
                who,
                number,
                reference,
                ..
            } => {
                let note = text;
                let text = |t: Option<String>| t.unwrap_or_default();
                let action = match action {
                    DispatcherVerb::Assign => {
                        let id = responder_id.ok_or(FrameError::MissingResponder)?;
                        DispatcherAction::Assign {
                            responder: ResponderId::parse(id).map_err(|_| FrameError::MissingResponder)?,
                        }
                    }
                    DispatcherVerb::TakeOffLadder => DispatcherAction::TakeOffLadder,
                    DispatcherVerb::Acknowledge => DispatcherAction::Acknowledge,
                    DispatcherVerb::Resolve => DispatcherAction::Resolve { outcome: text(outcome) },
                    DispatcherVerb::Close => DispatcherAction::Close { outcome: text(outcome) },
                    DispatcherVerb::Cancel => DispatcherAction::Cancel { reason: text(reason) },
                    DispatcherVerb::FalseAlarm => DispatcherAction::FalseAlarm { reason: text(reason) },
                    DispatcherVerb::Claim => DispatcherAction::Claim,
                    DispatcherVerb::Release => DispatcherAction::Release,
                    DispatcherVerb::Note => DispatcherAction::Note { text: text(note) },
                    DispatcherVerb::Call => {
                        DispatcherAction::LogCall { who: text(who), number, outcome: text(outcome) }
                    }
                    DispatcherVerb::Escalate => DispatcherAction::Escalate { number: text(number), reference },
                };
                Ok(Request::Dispatch { incident: IncidentId(incident_id), action })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<ClientFrame, serde_json::Error> {
        serde_json::from_str(s)
    }

    #[test]
    fn tokens_hash_to_known_values() {
        assert_eq!(token_sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn frames_become_requests_only_for_the_right_caller() {
        let r = Caller::Responder(ResponderId::parse("r1").unwrap());
        let d = Caller::Dispatcher { id: "王".into(), supervisor: false };
        let accept = parse(r#"{"type":"accept","incident_id":7,"request_id":"a"}"#).unwrap();
        assert_eq!(accept.request_id(), Some("a"));
        assert_eq!(
            accept.into_request(&r),
            Ok(Request::Respond { incident: IncidentId(7), action: ResponderAction::Accept })
        );
        let accept = parse(r#"{"type":"accept","incident_id":7}"#).unwrap();
        assert_eq!(accept.into_request(&d), Err(FrameError::NotAResponder));
        let cmd = parse(r#"{"type":"command","incident_id":7,"action":"assign","responder_id":"r2"}"#).unwrap();
        assert_eq!(cmd.into_request(&r), Err(FrameError::NotADispatcher));
        let cmd = parse(r#"{"type":"command","incident_id":7,"action":"assign"}"#).unwrap();
        assert_eq!(cmd.into_request(&d), Err(FrameError::MissingResponder));
        let bad = parse(r#"{"type":"location","lat":91,"lon":0}"#).unwrap();
        assert_eq!(bad.into_request(&r), Err(FrameError::BadLocation));
        assert!(parse(r#"{"type":"accept"}"#).is_err(), "incident_id is required");
        assert!(parse(r#"{"type":"accept","incident_id":1,"extra":1}"#).is_err(), "unknown fields are refused");
        assert!(parse(r#"{"type":"dance"}"#).is_err());
        let note = parse(r#"{"type":"command","incident_id":7,"action":"note","text":"女儿已出发"}"#).unwrap();
        let want = DispatcherAction::Note { text: "女儿已出发".into() };
        assert_eq!(note.into_request(&d), Ok(Request::Dispatch { incident: IncidentId(7), action: want }));
        let call =
            r#"{"type":"command","incident_id":7,"action":"call","who":"女儿","number":"137","outcome":"going"}"#;
        let want =
            DispatcherAction::LogCall { who: "女儿".into(), number: Some("137".into()), outcome: "going".into() };
        assert_eq!(
            parse(call).unwrap().into_request(&d),
            Ok(Request::Dispatch { incident: IncidentId(7), action: want })
        );
        let suggest = parse(r#"{"type":"suggest","incident_id":7}"#).unwrap();
        assert_eq!(suggest.into_request(&r), Err(FrameError::NotADispatcher));
    }
}
