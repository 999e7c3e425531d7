//! Incidents: what a press becomes, the events that make up its history, and the view a
//! console shows.

use crate::geo::Coordinates;
use crate::ids::{DeviceId, ElderId, IncidentId, MessageId, ResponderId, StationId, Timestamp};
use serde::{Deserialize, Serialize};

/// What the device told us happened. Unknown names are refused at the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    /// The one-key SOS button.
    Sos,
    /// The device's fall detector fired.
    Fall,
    /// The elder asked to cancel (long press); a dispatcher verifies before closing.
    Cancel,
    /// The device is alive; carries no request.
    Heartbeat,
    /// A position report with no request.
    Location,
    /// The non-emergency service button (meals, housework, a visit).
    Service,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Sos => "sos",
            EventType::Fall => "fall",
            EventType::Cancel => "cancel",
            EventType::Heartbeat => "heartbeat",
            EventType::Location => "location",
            EventType::Service => "service",
        }
    }

    pub const ALL: [EventType; 6] = [
        EventType::Sos,
        EventType::Fall,
        EventType::Cancel,
        EventType::Heartbeat,
        EventType::Location,
        EventType::Service,
    ];
}

/// A position fix reported by a device.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    pub at: Coordinates,
    /// Radius of the 68% confidence circle in metres, when the device knows it.
    pub accuracy_m: Option<f64>,
}

/// One decoded device message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceEvent {
    pub msg_id: MessageId,
    pub event: EventType,
    /// The device's own clock; trusted only when close to ours.
    pub device_ts: Timestamp,
    pub fix: FixReport,
}

/// What a message said about position.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixReport {
    /// No fix was sent.
    Absent,
    Valid(Fix),
    /// A fix was sent but could not be read (out of range, not a number, wrong shape).
    Malformed,
}

/// What kind of incident this is, which also fixes its priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    Fall,
    Sos,
    /// A known device sent a message we could not read; it may have been a press.
    Unreadable,
    /// A non-emergency service request.
    Service,
}

impl IncidentKind {
    /// Whether a responder is offered the job straight away.
    pub fn is_emergency(self) -> bool {
        matches!(self, IncidentKind::Fall | IncidentKind::Sos)
    }

    /// Lower is more urgent.
    pub fn priority(self) -> u8 {
        match self {
            IncidentKind::Fall => 1,
            IncidentKind::Sos => 1,
            IncidentKind::Unreadable => 2,
            IncidentKind::Service => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::Fall => "fall",
            IncidentKind::Sos => "sos",
            IncidentKind::Unreadable => "unreadable",
            IncidentKind::Service => "service",
        }
    }
}

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    /// A responder has been offered the job.
    Offered,
    /// Nobody was offered the job: a dispatcher must act (see [`DispatcherNeeded`]).
    AwaitingDispatcher,
}

/// Why an incident waits for a dispatcher rather than a responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatcherNeeded {
    /// An emergency with no available responder within the offer distance.
    NobodyInRange,
    /// The device sent something unreadable: call the elder back first.
    UnreadableMessage,
    /// A non-emergency request: a dispatcher arranges the service.
    ServiceRequest,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Offered => "offered",
            IncidentState::AwaitingDispatcher => "awaiting_dispatcher",
        }
    }
}

/// Where the position of an incident came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationSource {
    /// The device's own fix, sent with the press.
    Device,
    /// The elder's registered home address.
    Home,
}

/// Why a device's fix was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixRejection {
    /// The device sent a location we could not read.
    Malformed,
    NullIsland,
    TooInaccurate,
    TooFarFromHome,
}

/// Where we go, and how sure we are of it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub at: Coordinates,
    pub accuracy_m: Option<f64>,
    pub source: LocationSource,
    /// Set when the device sent a fix that we did not trust.
    pub fix_rejected: Option<FixRejection>,
}

/// Somebody (a responder or a station) and how far they are from the incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assigned<T> {
    pub id: T,
    pub distance_m: f64,
}

/// The current state of an incident: the row the store keeps beside the event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub device_id: DeviceId,
    pub elder_id: ElderId,
    pub kind: IncidentKind,
    pub state: IncidentState,
    /// When the elder pressed, by the device's clock when plausible, else by ours.
    pub pressed_at: Timestamp,
    /// When the engine received the first message of the incident.
    pub opened_at: Timestamp,
    pub updated_at: Timestamp,
    pub location: Location,
    pub responder: Option<Assigned<ResponderId>>,
    pub station: Option<Assigned<StationId>>,
    /// How many presses this incident has seen, the first included.
    pub press_count: u32,
    pub cancel_requested: bool,
    /// Set while the incident waits for a dispatcher, saying why.
    pub dispatcher_needed: Option<DispatcherNeeded>,
    /// Why a dispatcher should look twice (an unreadable message, a rejected fix...).
    pub problem: Option<String>,
    /// Sequence number of the last event applied.
    pub last_seq: u64,
}

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Actor {
    Device(DeviceId),
    Engine,
}

/// One entry in an incident's audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    Opened {
        kind: IncidentKind,
        msg_id: MessageId,
        location: Location,
        pressed_at: Timestamp,
    },
    PressJoined {
        msg_id: MessageId,
        event: Option<EventType>,
        press_count: u32,
    },
    /// A more urgent press joined a less urgent incident (an SOS during a service request).
    KindChanged {
        from: IncidentKind,
        to: IncidentKind,
    },
    Offered {
        responder_id: ResponderId,
        distance_m: f64,
    },
    NobodyInRange {
        max_distance_m: f64,
    },
    NearestStation {
        station_id: StationId,
        distance_m: f64,
    },
    CancelRequested {
        msg_id: MessageId,
    },
}

/// An event in the log: numbered globally, in the order the engine decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentEvent {
    pub seq: u64,
    pub incident_id: IncidentId,
    pub at: Timestamp,
    pub actor: Actor,
    pub change: Change,
}

/// A device message the engine has taken in, kept so that a redelivery changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageRecord {
    pub device_id: DeviceId,
    pub msg_id: MessageId,
    /// The event type, or `None` when the message could not be read.
    pub event: Option<EventType>,
    pub received_at: Timestamp,
    pub incident_id: Option<IncidentId>,
}

/// A command to a device, on its command topic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DeviceCommand {
    /// The call centre has the press: tell the elder help is coming (LED, voice).
    HelpComing {
        incident_id: IncidentId,
        /// Whether a named responder has been offered the job (else a dispatcher is calling).
        responder_assigned: bool,
        /// Rough minutes until somebody arrives, when a responder is on offer.
        eta_min: Option<u32>,
    },
}

/// A person as a console shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartyView {
    pub id: String,
    pub name: String,
    pub phone: Option<String>,
    pub distance_m: Option<f64>,
}

/// The elder as a console shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElderView {
    pub id: ElderId,
    pub name: String,
    pub address: String,
    pub phone: Option<String>,
    pub notes: String,
}

/// Everything a console needs to draw one incident row, after an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentView {
    pub id: IncidentId,
    /// Sequence number of the last event this view reflects.
    pub seq: u64,
    pub kind: IncidentKind,
    pub priority: u8,
    pub state: IncidentState,
    pub device_id: DeviceId,
    pub elder: ElderView,
    pub location: Location,
    pub responder: Option<PartyView>,
    pub station: Option<PartyView>,
    pub press_count: u32,
    pub cancel_requested: bool,
    pub dispatcher_needed: Option<DispatcherNeeded>,
    pub problem: Option<String>,
    pub pressed_at: Timestamp,
    pub opened_at: Timestamp,
    pub updated_at: Timestamp,
}
