//! Telephones: calls to the centre's hotline, as the SIP server reports them.
//!
//! Many one-key devices dial rather than publish, and elders ring the hotline from their own
//! phones. Each call rings the consoles as an incident of kind `call`: the caller's number is
//! looked up among the devices' SIM numbers, then the elders' own phones, so a known caller's
//! call opens on their device (joining the incident it already has, as a repeated press
//! does) with their profile. A caller nobody knows, or who withholds the number, still opens
//! an incident for a dispatcher: it carries the device id `call:<number>` (or
//! `call:withheld`), which no device in the ledger may have, that same id as its elder, which
//! names nobody, and no position.
//!
//! The SIP server reports three events a call ([`CallEvent`]); any of them may be lost (see
//! `deploy/sip/README.md`), so an answer or an end for a call never heard ringing changes
//! nothing, and a call whose end is never heard stays open on its incident until the
//! incident ends.

use crate::ids::{ElderId, IncidentId, Timestamp};
use serde::{Deserialize, Serialize};

/// The device id prefix of an incident opened by a call from nobody's device.
pub const CALLER_DEVICE_PREFIX: &str = "call:";

/// The caller's part of such a device id when the number was withheld.
pub const WITHHELD: &str = "withheld";

/// One thing that happened to a call, as the SIP server reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum CallEvent {
    /// A call to the hotline arrived and rings the consoles.
    Ringing {
        call_id: String,
        /// The caller's number as the network gave it (`anonymous` or empty when withheld).
        from: String,
        /// The number dialled.
        to: String,
    },
    /// Somebody picked up: `by` is their SIP user (a dispatcher's staff id when a console
    /// answered).
    Answered { call_id: String, by: String },
    /// The call is over.
    Ended { call_id: String, reason: CallEnd },
    /// Nobody the call was put through to answered it in time (the consoles, or the last
    /// number it was forwarded to): the SIP server asks where it goes next.
    Unanswered { call_id: String },
    /// A dispatcher's console placed a call to `to` (click-to-call), about `incident_id`
    /// when it was placed from one; its answer and end follow as for a call in.
    Dialled {
        call_id: String,
        /// The dispatcher, by staff id (their console's SIP user).
        by: String,
        to: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident_id: Option<u64>,
    },
    /// A dispatcher handed the call on to `to` (a blind transfer: the station's duty line,
    /// 120): the other party was asked to call that number instead, and the console leaves
    /// the call. Its end follows.
    Transferred {
        call_id: String,
        /// The dispatcher, by staff id (their console's SIP user).
        by: String,
        to: String,
    },
}

impl CallEvent {
    pub fn call_id(&self) -> &str {
        match self {
            CallEvent::Ringing { call_id, .. }
            | CallEvent::Answered { call_id, .. }
            | CallEvent::Ended { call_id, .. }
            | CallEvent::Unanswered { call_id }
            | CallEvent::Dialled { call_id, .. }
            | CallEvent::Transferred { call_id, .. } => call_id,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            CallEvent::Ringing { .. } => "ringing",
            CallEvent::Answered { .. } => "answered",
            CallEvent::Ended { .. } => "ended",
            CallEvent::Unanswered { .. } => "unanswered",
            CallEvent::Dialled { .. } => "dialled",
            CallEvent::Transferred { .. } => "transferred",
        }
    }
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallEnd {
    /// Hung up after it was answered (by either side).
    Bye,
    /// The caller hung up while it rang.
    Cancel,
    /// Every line was busy.
    Busy,
    /// Nobody answered in time.
    NoAnswer,
    /// Anything else went wrong.
    Failed,
}

impl CallEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            CallEnd::Bye => "bye",
            CallEnd::Cancel => "cancel",
            CallEnd::Busy => "busy",
            CallEnd::NoAnswer => "no_answer",
            CallEnd::Failed => "failed",
        }
    }
}

/// How the caller was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallerMatch {
    /// The number is a device's SIM in the ledger.
    Sim,
    /// The number is an elder's own phone in the ledger.
    ElderPhone,
    /// A number the ledger does not have.
    Unknown,
    /// The caller withheld their number.
    Withheld,
    /// A call out: a dispatcher (`from`, their staff id) placed it from the console.
    Dispatcher,
}

/// A call on an incident: who rang, when, who answered, how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallRecord {
    pub call_id: String,
    /// The caller's number as the network gave it.
    pub from: String,
    pub to: String,
    pub caller: CallerMatch,
    pub rang_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<Timestamp>,
    /// Who picked up (their SIP user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<CallEnd>,
    /// The numbers it was forwarded to when nobody answered, in order (see
    /// [`ForwardRung`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forwarded: Vec<Forward>,
    /// The number a dispatcher transferred the call to, if they did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transferred_to: Option<String>,
}

/// Where an unanswered call was put through next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    pub rung: ForwardRung,
    pub number: String,
    pub at: Timestamp,
}

/// The ladder of an unanswered call: the consoles first, then these, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardRung {
    /// The duty line of the station nearest the elder's home.
    Station,
    /// The centre's fallback number (`[telephony] fallback_number`).
    Fallback,
}

impl CallRecord {
    /// A call that has just rung (or been dialled): not answered, not ended.
    pub fn new(call_id: &str, from: &str, to: &str, caller: CallerMatch, at: Timestamp) -> Self {
        Self {
            call_id: call_id.to_string(),
            from: from.to_string(),
            to: to.to_string(),
            caller,
            rang_at: at,
            answered_at: None,
            answered_by: None,
            ended_at: None,
            end: None,
            forwarded: Vec::new(),
            transferred_to: None,
        }
    }

    /// Whether a dispatcher placed it (a call out), rather than somebody calling the hotline.
    pub fn is_outbound(&self) -> bool {
        self.caller == CallerMatch::Dispatcher
    }

    /// Whether it has not been heard to end.
    pub fn is_live(&self) -> bool {
        self.ended_at.is_none()
    }

    /// Whether it is ringing now: not answered, not ended.
    pub fn is_ringing(&self) -> bool {
        self.answered_at.is_none() && self.ended_at.is_none()
    }

    /// How long the caller was talked to, once the call has ended: from the answer to the
    /// end, in whole seconds; `None` for a call not answered or not ended.
    pub fn talk_s(&self) -> Option<u32> {
        let (answered, ended) = (self.answered_at?, self.ended_at?);
        Some(((ended.millis() - answered.millis()).max(0) / 1000) as u32)
    }
}

/// What the engine made of a call event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// The call opened a new incident.
    Opened(IncidentId),
    /// The call joined the caller's open incident.
    Joined(IncidentId),
    /// The answer or the end was recorded on the call's incident.
    Recorded(IncidentId),
    /// The same call was reported ringing again, or answered again: nothing changes.
    Duplicate(IncidentId),
    /// An answer or an end for a call never heard ringing (its `ringing` was lost, or its
    /// incident has ended since): nothing changes.
    UnknownCall,
    /// Nobody answered: put it through to `number` next.
    Forwarded { incident: IncidentId, number: String },
    /// Nobody answered, and every rung has been tried: the caller is to be told so, and a
    /// dispatcher calls back.
    Exhausted(IncidentId),
    /// A call out about no open incident (none named, or it has ended): it goes ahead, and
    /// nothing records it.
    NoIncident,
}

impl CallOutcome {
    pub fn incident(&self) -> Option<IncidentId> {
        match self {
            CallOutcome::Opened(id)
            | CallOutcome::Joined(id)
            | CallOutcome::Recorded(id)
            | CallOutcome::Duplicate(id)
            | CallOutcome::Exhausted(id) => Some(*id),
            CallOutcome::Forwarded { incident, .. } => Some(*incident),
            CallOutcome::UnknownCall | CallOutcome::NoIncident => None,
        }
    }

    /// The number to put the call through to next, for [`CallOutcome::Forwarded`].
    pub fn forward_to(&self) -> Option<&str> {
        match self {
            CallOutcome::Forwarded { number, .. } => Some(number),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            CallOutcome::Opened(_) => "opened",
            CallOutcome::Joined(_) => "joined",
            CallOutcome::Recorded(_) => "recorded",
            CallOutcome::Duplicate(_) => "duplicate",
            CallOutcome::UnknownCall => "unknown_call",
            CallOutcome::Forwarded { .. } => "forwarded",
            CallOutcome::Exhausted(_) => "exhausted",
            CallOutcome::NoIncident => "no_incident",
        }
    }
}

/// A telephone number reduced to the form the ledger's numbers are compared in: its digits,
/// with China's country code (`+86`, `0086`) taken off, and a landline's trunk `0` put back
/// where the country code took it (`+86 871 6543 2100` is `087165432100`); another country's
/// code is kept as `00` and its digits. Spaces, dashes, dots and brackets are ignored, and a
/// `sip:` or `tel:` scheme with anything after an `@` or `;`. `None` for what is no number
/// (`anonymous`, empty, letters) or has fewer than 3 or more than 20 digits.
pub fn number_key(raw: &str) -> Option<String> {
    let s = raw.trim();
    let s = s.strip_prefix("sip:").or_else(|| s.strip_prefix("tel:")).unwrap_or(s);
    let s = s.split(['@', ';']).next().unwrap_or_default();
    let (plus, rest) = match s.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    let international = if plus { Some(digits.as_str()) } else { digits.strip_prefix("00") };
    let key = match international {
        Some(rest) => match rest.strip_prefix("86") {
            Some(national) if national.starts_with('1') || national.starts_with('0') => national.to_string(),
            Some(national) => format!("0{national}"),
            None => format!("00{rest}"),
        },
        None => digits,
    };
    (3..=20).contains(&key.len()).then_some(key)
}

/// Who a number belongs to in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Caller {
    pub(crate) elder: ElderId,
    /// The device a call from it is put on: the SIM's own device, or the elder's device.
    pub(crate) device: Option<crate::ids::DeviceId>,
    pub(crate) by: CallerMatch,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_compared_by_their_digits_without_chinas_country_code() {
        assert_eq!(number_key("13812345678").as_deref(), Some("13812345678"));
        assert_eq!(number_key("+86 138-1234-5678").as_deref(), Some("13812345678"));
        assert_eq!(number_key("008613812345678").as_deref(), Some("13812345678"));
        assert_eq!(number_key("sip:+8613812345678@10.0.0.1;user=phone").as_deref(), Some("13812345678"));
        // A landline: the trunk 0 comes back where the country code took it.
        assert_eq!(number_key("+86 871 6543 2100").as_deref(), Some("087165432100"));
        assert_eq!(number_key("(0871) 6543-2100").as_deref(), Some("087165432100"));
        // Another country's number keeps its code.
        assert_eq!(number_key("+44 20 7946 0000").as_deref(), Some("00442079460000"));
        assert_eq!(number_key("0044 20 7946 0000").as_deref(), Some("00442079460000"));
        for not_a_number in ["anonymous", "", "  ", "+", "12", "138x1234", &"1".repeat(21)] {
            assert_eq!(number_key(not_a_number), None, "{not_a_number:?}");
        }
    }

    #[test]
    fn talk_time_runs_from_the_answer_to_the_end() {
        let mut call = CallRecord::new("c1", "13812345678", "96110", CallerMatch::Sim, Timestamp(1_000));
        assert!(call.is_ringing() && call.is_live());
        assert_eq!(call.talk_s(), None);
        call.answered_at = Some(Timestamp(5_000));
        assert!(!call.is_ringing() && call.is_live());
        assert_eq!(call.talk_s(), None, "not ended yet");
        call.ended_at = Some(Timestamp(95_900));
        assert_eq!(call.talk_s(), Some(90));
        assert!(!call.is_live());
    }
}
