//! Incidents: what a press becomes, the events that make up its history, and the view a
//! console shows.

use crate::family::{Channel, Delivery, FamilyAnswer, Notice, NoticePriority};
use crate::geo::Coordinates;
use crate::ids::{DeviceId, ElderId, IncidentId, MessageId, ResponderId, StationId, Timestamp};
use crate::policy::Policy;
pub use crate::telephony::{CallEnd, CallRecord, CallerMatch, Forward, ForwardRung};
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
    /// A smoke or heat detector linked to the device went off.
    Smoke,
    /// A gas detector linked to the device went off.
    Gas,
    /// A door or window sensor linked to the device saw a break-in.
    Intrusion,
    /// The device says its battery is low; carries no request.
    LowBattery,
    /// The device says it is being switched off: it cannot call until it is back.
    PowerOff,
    /// A wearable says it is being worn.
    Worn,
    /// A wearable says it was taken off (or put in its charger).
    NotWorn,
    /// A motion sensor or a wearable saw the elder moving; carries no request. It starts the
    /// watch for inactivity of an elder living alone (see [`crate::activity`]).
    Motion,
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
            EventType::Smoke => "smoke",
            EventType::Gas => "gas",
            EventType::Intrusion => "intrusion",
            EventType::LowBattery => "low_battery",
            EventType::PowerOff => "power_off",
            EventType::Worn => "worn",
            EventType::NotWorn => "not_worn",
            EventType::Motion => "motion",
        }
    }

    /// What the device says of itself, carrying no request: its health, not an incident.
    pub fn is_health(self) -> bool {
        matches!(
            self,
            EventType::Heartbeat
                | EventType::Location
                | EventType::LowBattery
                | EventType::PowerOff
                | EventType::Worn
                | EventType::NotWorn
                | EventType::Motion
        )
    }

    /// Whether it shows somebody at home doing something: a press of any kind, a cancel,
    /// movement, a wearable put on. Heartbeats (the device's, not the elder's), positions and
    /// alarms from linked detectors do not.
    pub fn is_activity(self) -> bool {
        matches!(
            self,
            EventType::Sos
                | EventType::Fall
                | EventType::Cancel
                | EventType::Service
                | EventType::Worn
                | EventType::Motion
        )
    }

    pub const ALL: [EventType; 14] = [
        EventType::Sos,
        EventType::Fall,
        EventType::Cancel,
        EventType::Heartbeat,
        EventType::Location,
        EventType::Service,
        EventType::Smoke,
        EventType::Gas,
        EventType::Intrusion,
        EventType::LowBattery,
        EventType::PowerOff,
        EventType::Worn,
        EventType::NotWorn,
        EventType::Motion,
    ];

    /// The kind of incident this event opens, or raises an open one to; `None` for events
    /// that carry no request (heartbeat, location, cancel).
    pub fn incident_kind(self) -> Option<IncidentKind> {
        match self {
            EventType::Sos => Some(IncidentKind::Sos),
            EventType::Fall => Some(IncidentKind::Fall),
            EventType::Service => Some(IncidentKind::Service),
            EventType::Smoke | EventType::Gas => Some(IncidentKind::Fire),
            EventType::Intrusion => Some(IncidentKind::Intrusion),
            EventType::Cancel
            | EventType::Heartbeat
            | EventType::Location
            | EventType::LowBattery
            | EventType::PowerOff
            | EventType::Worn
            | EventType::NotWorn
            | EventType::Motion => None,
        }
    }
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
    /// What the device said of its battery and signal, if anything (heartbeats carry it).
    #[serde(default)]
    pub health: HealthReport,
}

/// A device's battery and signal as it reported them, with the heartbeat interval it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HealthReport {
    /// Battery charge, 0-100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_pct: Option<u8>,
    /// Received signal strength in dBm (negative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rssi: Option<i16>,
    /// Whether it is on its charger, where it says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging: Option<bool>,
    /// The heartbeat interval the device keeps, in seconds, where it says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_s: Option<u32>,
    /// Whether the device saw the elder moving since its last report, where it can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    Fall,
    Sos,
    /// Smoke, heat or gas at the elder's home: the fire service (119) is called as well.
    Fire,
    /// A break-in at the elder's home: the police (110) are called as well.
    Intrusion,
    /// A known device sent a message we could not read; it may have been a press.
    Unreadable,
    /// A non-emergency service request.
    Service,
    /// A welfare check: somebody should phone the elder or the family (the device went
    /// silent or is running flat). Low priority, in a queue of its own; never on the ladder.
    Welfare,
    /// A carer on a visit was not heard from in time (the lone-worker timer): a dispatcher
    /// phones them, and sends somebody if they do not answer. Never on the ladder by itself.
    LoneWorker,
    /// A call to the hotline (see [`crate::telephony`]): a dispatcher answers it, or calls
    /// back. It may be an emergency, so it rings at once; a press that joins it makes it one.
    Call,
}

/// Why a welfare check was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WelfareReason {
    /// Its heartbeat is overdue: the device cannot call (flat, broken, out of coverage).
    DeviceOffline,
    /// The device said it was being switched off.
    PowerOff,
    /// Its battery is low: somebody should see it charged.
    LowBattery,
    /// An elder living alone has been quiet for too many of their waking hours (see
    /// [`crate::activity`]).
    Inactive,
    /// The elder's scheduled welfare call is due (see [`crate::programme`]).
    ScheduledCall,
    /// The elder's scheduled home visit is due, or the calls went unanswered.
    ScheduledVisit,
}

impl WelfareReason {
    pub const ALL: [WelfareReason; 6] = [
        WelfareReason::DeviceOffline,
        WelfareReason::PowerOff,
        WelfareReason::LowBattery,
        WelfareReason::Inactive,
        WelfareReason::ScheduledCall,
        WelfareReason::ScheduledVisit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WelfareReason::DeviceOffline => "device_offline",
            WelfareReason::PowerOff => "power_off",
            WelfareReason::LowBattery => "low_battery",
            WelfareReason::Inactive => "inactive",
            WelfareReason::ScheduledCall => "scheduled_call",
            WelfareReason::ScheduledVisit => "scheduled_visit",
        }
    }

    /// Whether it is about the device (kept in the device's own welfare slot).
    pub fn is_device(self) -> bool {
        matches!(self, WelfareReason::DeviceOffline | WelfareReason::PowerOff | WelfareReason::LowBattery)
    }

    /// Whether it is a task of the elder's scheduled welfare programme.
    pub fn is_programme(self) -> bool {
        matches!(self, WelfareReason::ScheduledCall | WelfareReason::ScheduledVisit)
    }

    /// Whether the device cannot call while this lasts (so hearing from it ends the check).
    pub fn is_silence(self) -> bool {
        matches!(self, WelfareReason::DeviceOffline | WelfareReason::PowerOff)
    }
}

impl IncidentKind {
    /// Whether a responder is offered the job straight away.
    pub fn is_emergency(self) -> bool {
        matches!(self, IncidentKind::Fall | IncidentKind::Sos | IncidentKind::Fire | IncidentKind::Intrusion)
    }

    /// Whether an event of kind `to` joining an open incident of this kind changes its kind:
    /// an emergency raises a request that was not one; a smoke or break-in alarm raises an
    /// SOS or a fall to a fire or a break-in, since the fire service or the police must be
    /// called whoever goes.
    pub fn is_raised_by(self, to: IncidentKind) -> bool {
        let calls_services = |k: IncidentKind| matches!(k, IncidentKind::Fire | IncidentKind::Intrusion);
        to.is_emergency() && (!self.is_emergency() || (calls_services(to) && !calls_services(self)))
    }

    /// The kinds that go up the escalation ladder, each with its own [`crate::LadderPolicy`].
    pub const EMERGENCIES: [IncidentKind; 4] =
        [IncidentKind::Sos, IncidentKind::Fall, IncidentKind::Fire, IncidentKind::Intrusion];

    /// Lower is more urgent.
    pub fn priority(self) -> u8 {
        match self {
            IncidentKind::Fall | IncidentKind::Sos | IncidentKind::Fire | IncidentKind::Intrusion => 1,
            IncidentKind::Unreadable => 2,
            IncidentKind::Service => 3,
            IncidentKind::Welfare => 4,
            IncidentKind::LoneWorker => 2,
            IncidentKind::Call => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentKind::Fall => "fall",
            IncidentKind::Sos => "sos",
            IncidentKind::Fire => "fire",
            IncidentKind::Intrusion => "intrusion",
            IncidentKind::Unreadable => "unreadable",
            IncidentKind::Service => "service",
            IncidentKind::Welfare => "welfare",
            IncidentKind::LoneWorker => "lone_worker",
            IncidentKind::Call => "call",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            IncidentKind::Fall,
            IncidentKind::Sos,
            IncidentKind::Fire,
            IncidentKind::Intrusion,
            IncidentKind::Unreadable,
            IncidentKind::Service,
            IncidentKind::Welfare,
            IncidentKind::LoneWorker,
            IncidentKind::Call,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Where an incident is in its life.
///
/// ```text
///            ┌──────────── decline / timeout: next responder ───┐
///            ▼                                                  │
/// (opened) → offered ──accept──► accepted → en_route → on_scene → resolved → closed
///    │           │ ladder exhausted                               ▲
///    │           ▼                                                │ (dispatcher)
///    └──► station_alerted ──timeout──► awaiting_dispatcher ───────┘
///  any state before closed ──(dispatcher)──► cancelled | false_alarm
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    /// A responder has been offered the job and has until the offer's deadline to accept.
    Offered,
    /// No responder took it: the station's duty line has been alerted, with a deadline.
    StationAlerted,
    /// A dispatcher must act (see [`DispatcherNeeded`]); reminders repeat until one does.
    AwaitingDispatcher,
    /// A responder has taken the job.
    Accepted,
    EnRoute,
    OnScene,
    /// Help was given; a dispatcher closes it with an outcome.
    Resolved,
    Closed,
    Cancelled,
    FalseAlarm,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Offered => "offered",
            IncidentState::StationAlerted => "station_alerted",
            IncidentState::AwaitingDispatcher => "awaiting_dispatcher",
            IncidentState::Accepted => "accepted",
            IncidentState::EnRoute => "en_route",
            IncidentState::OnScene => "on_scene",
            IncidentState::Resolved => "resolved",
            IncidentState::Closed => "closed",
            IncidentState::Cancelled => "cancelled",
            IncidentState::FalseAlarm => "false_alarm",
        }
    }

    /// Whether the incident's life is over.
    pub fn is_terminal(self) -> bool {
        matches!(self, IncidentState::Closed | IncidentState::Cancelled | IncidentState::FalseAlarm)
    }

    /// Whether a responder holds the job (not just an offer).
    pub fn has_responder_on_job(self) -> bool {
        matches!(self, IncidentState::Accepted | IncidentState::EnRoute | IncidentState::OnScene)
    }

    /// Whether the incident may move from this state to `next`.
    pub fn can_become(self, next: IncidentState) -> bool {
        use IncidentState::*;
        if self.is_terminal() {
            return false;
        }
        match next {
            Cancelled | FalseAlarm => true,
            // The next responder; or an upgraded incident (an SOS after a service request).
            Offered => matches!(self, Offered | AwaitingDispatcher),
            StationAlerted => matches!(self, Offered | AwaitingDispatcher),
            // ...or the responder on the job gave it up.
            AwaitingDispatcher => matches!(self, Offered | StationAlerted | Accepted | EnRoute),
            // Accepted by the responder offered, or assigned (and reassigned) by a dispatcher.
            Accepted => matches!(self, Offered | StationAlerted | AwaitingDispatcher | Accepted | EnRoute),
            EnRoute => matches!(self, Accepted),
            OnScene => matches!(self, Accepted | EnRoute),
            Resolved => !matches!(self, Resolved),
            Closed => matches!(self, Resolved),
        }
    }
}

/// The rungs of the escalation ladder, climbed in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Rung {
    /// Responders near the elder, nearest first, up to the policy's number of offers.
    #[default]
    Responders,
    /// The nearest station's duty line.
    Station,
    /// A dispatcher, with the emergency number that fits the event.
    Dispatcher,
}

/// Why an incident waits for a dispatcher rather than a responder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DispatcherNeeded {
    /// The device sent something unreadable: call the elder back first.
    UnreadableMessage,
    /// A non-emergency request: a dispatcher arranges the service.
    ServiceRequest,
    /// Every rung of the ladder was tried and nobody is going.
    NobodyGoing,
    /// The responder who accepted has not reported on scene in time.
    OnSceneOverdue,
    /// A dispatcher took the incident off the ladder to handle it by hand.
    HandledByDispatcher,
    /// A welfare check: phone the elder or the family.
    WelfareCheck,
    /// A carer on a visit is overdue: phone them.
    CarerOverdue,
    /// A call to the hotline waits: answer it, or call back.
    Call,
}

/// What needs a person now. The engine derives it from the incident's changes, so every
/// console shows the same alarm whenever it connected; acknowledging one need silences that
/// need only, and the next one sounds again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Need {
    /// A new emergency (or a request that became one) no dispatcher has seen yet; the ladder
    /// is working on it.
    NewEmergency,
    /// The device sent something unreadable: it may have been a press; call the elder back.
    Unreadable,
    /// A non-emergency request waits for a dispatcher.
    ServiceRequest,
    /// Every rung was tried and nobody is going: call the emergency number.
    NobodyGoing,
    /// The responder has not reported on scene in time: the closed loop is missed.
    OnSceneOverdue,
    /// The elder asked to cancel: a dispatcher verifies before closing.
    CancelRequested,
    /// The dispatcher who held it signed out or went offline while it still needs a person.
    ClaimantGone,
    /// A family member called the elder and says all is well: check, and stand down if so.
    FamilySaysFine,
    /// No family member could be told (every try failed), or every contact was told and
    /// nobody answered: phone them.
    FamilyUnreached,
    /// A welfare check waits: phone the elder or the family (the device went silent or is
    /// running flat). Shown in the welfare queue, never sounded over an emergency.
    WelfareCheck,
    /// A carer on a visit did not check out or say they were still there in time.
    CarerOverdue,
    /// A call to the hotline rings: pick it up.
    IncomingCall,
    /// A call to the hotline ended before anybody answered it: call back.
    MissedCall,
}

/// How loud an alarm is: consoles sound each level differently, the most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmLevel {
    /// Somebody must act now or nobody helps the elder (nobody going, not on scene in time).
    Critical,
    /// A person must look now (a new emergency, an unreadable press, an unowned incident).
    Urgent,
    /// A person should look soon (a service request, a request to cancel).
    Routine,
    /// A person should look when the emergencies allow (a welfare check).
    Welfare,
}

impl Alarm {
    fn raised(need: Need, event: &IncidentEvent) -> Self {
        Alarm { need, level: need.level(), raised_seq: event.seq, raised_at: event.at, reminders: 0 }
    }
}

impl Need {
    pub fn level(self) -> AlarmLevel {
        match self {
            Need::NobodyGoing | Need::OnSceneOverdue => AlarmLevel::Critical,
            Need::NewEmergency | Need::Unreadable | Need::ClaimantGone | Need::CarerOverdue => AlarmLevel::Urgent,
            Need::IncomingCall | Need::MissedCall => AlarmLevel::Urgent,
            Need::FamilySaysFine => AlarmLevel::Urgent,
            Need::ServiceRequest | Need::CancelRequested | Need::FamilyUnreached => AlarmLevel::Routine,
            Need::WelfareCheck => AlarmLevel::Welfare,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Need::NewEmergency => "new_emergency",
            Need::Unreadable => "unreadable",
            Need::ServiceRequest => "service_request",
            Need::NobodyGoing => "nobody_going",
            Need::OnSceneOverdue => "on_scene_overdue",
            Need::CancelRequested => "cancel_requested",
            Need::ClaimantGone => "claimant_gone",
            Need::FamilySaysFine => "family_says_fine",
            Need::FamilyUnreached => "family_unreached",
            Need::WelfareCheck => "welfare_check",
            Need::CarerOverdue => "carer_overdue",
            Need::IncomingCall => "incoming_call",
            Need::MissedCall => "missed_call",
        }
    }

    /// The need behind a dispatcher being wanted, when a reminder or a lost claim raises it
    /// again. A dispatcher handling it by hand needs no alarm for that.
    fn of(needed: DispatcherNeeded) -> Option<Need> {
        match needed {
            DispatcherNeeded::UnreadableMessage => Some(Need::Unreadable),
            DispatcherNeeded::ServiceRequest => Some(Need::ServiceRequest),
            DispatcherNeeded::NobodyGoing => Some(Need::NobodyGoing),
            DispatcherNeeded::OnSceneOverdue => Some(Need::OnSceneOverdue),
            DispatcherNeeded::HandledByDispatcher => None,
            DispatcherNeeded::WelfareCheck => Some(Need::WelfareCheck),
            DispatcherNeeded::CarerOverdue => Some(Need::CarerOverdue),
            DispatcherNeeded::Call => Some(Need::MissedCall),
        }
    }
}

/// An alarm up on an incident: what needs a person, since when, and which event raised it
/// (what a dispatcher acknowledges, so an acknowledgement of an older alarm cannot silence a
/// newer one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    pub need: Need,
    pub level: AlarmLevel,
    /// The sequence number of the event that raised it: its id.
    pub raised_seq: u64,
    pub raised_at: Timestamp,
    /// Reminders the engine has given since it was raised.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reminders: u32,
}

/// Where the position of an incident came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LocationSource {
    /// The device's own fix, sent with the press.
    Device,
    /// The elder's registered home address.
    Home,
    /// Nobody knows where: a call from a number the ledger does not have. `at` means
    /// nothing, and no station or responder is matched to it.
    Unknown,
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

/// The current state of an incident: the row the store keeps beside the event log. Its
/// JSON leaves out what is empty (no responder, no timers, nothing tried), since the store
/// writes it again on every change; what is left out reads back as empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub device_id: DeviceId,
    pub elder_id: ElderId,
    pub kind: IncidentKind,
    pub state: IncidentState,
    /// When the elder pressed, by the device's clock when plausible, else by ours. For a
    /// welfare check, when the need for it arose: a scheduled task's is when it fell due,
    /// which is earlier than `opened_at` if it fell due while the centre was down.
    pub pressed_at: Timestamp,
    /// When the engine received the first message of the incident.
    pub opened_at: Timestamp,
    pub updated_at: Timestamp,
    pub location: Location,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responder: Option<Assigned<ResponderId>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<Assigned<StationId>>,
    /// How many presses this incident has seen, the first included.
    pub press_count: u32,
    #[serde(default, skip_serializing_if = "is_false")]
    pub cancel_requested: bool,
    /// Set while the incident waits for a dispatcher, saying why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatcher_needed: Option<DispatcherNeeded>,
    /// Why a dispatcher should look twice (an unreadable message, a rejected fix...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Sequence number of the last event applied.
    pub last_seq: u64,
    /// The ladder's progress and the timers that drive it.
    #[serde(default)]
    pub ladder: Ladder,
    /// How a resolved, closed, cancelled or false-alarm incident ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The dispatcher who owns the incident (staff id); the others see who.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// When a dispatcher first acknowledged (or claimed) it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Timestamp>,
    /// What needs a person now, until a person acts on it; every console sounds for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm: Option<Alarm>,
    /// The last call a dispatcher made to the emergency services about it, with their
    /// reference; absent in incidents stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency_call: Option<EmergencyCall>,
    /// Why the ladder made no offer at all (`nobody_in_range`, `nobody_qualified` or
    /// `nobody_free_at_station`, as logged), so a console says what happened; absent when
    /// offers were made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_offer: Option<Change>,
    /// The family's side: who was told, how it went, what they answered.
    #[serde(default, skip_serializing_if = "Family::is_empty")]
    pub family: Family,
    /// Why a welfare check was opened (kind `welfare` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welfare: Option<WelfareReason>,
    /// The carer this incident is for (their help button, or the lone-worker timer): somebody
    /// goes to the carer, not to the elder, and the elder's family is not told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carer: Option<ResponderId>,
    /// The calls to the hotline about it, in the order they rang.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<CallRecord>,
}

/// The family's side of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Family {
    /// The contacts told or answering, in the order they came in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<FamilyContact>,
    /// When the next contact is told if nobody has answered by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<Timestamp>,
    /// Whether a contact has answered (anything but "cannot help"): no more are brought in.
    #[serde(default, skip_serializing_if = "is_false")]
    pub answered: bool,
    /// Every contact was told and none answered.
    #[serde(default, skip_serializing_if = "is_false")]
    pub exhausted: bool,
}

impl Family {
    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty() && self.next_at.is_none() && !self.answered && !self.exhausted
    }

    pub fn contact(&self, id: &str) -> Option<&FamilyContact> {
        self.contacts.iter().find(|c| c.contact_id == id)
    }

    fn entry(&mut self, id: &str) -> &mut FamilyContact {
        match self.contacts.iter().position(|c| c.contact_id == id) {
            Some(i) => &mut self.contacts[i],
            None => {
                self.contacts.push(FamilyContact { contact_id: id.to_string(), ..FamilyContact::default() });
                self.contacts.last_mut().expect("pushed")
            }
        }
    }
}

/// One contact on an incident: told when and how, what became of the last notification, and
/// their answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FamilyContact {
    pub contact_id: String,
    /// The channel of the last notification.
    #[serde(default)]
    pub channel: Channel,
    /// When they were first told; absent for a contact who answered untold (from the page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub told_at: Option<Timestamp>,
    /// How many notifications they have been sent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub told: u32,
    /// The last notification's key (`n{seq}`) and what became of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<FamilyAnswer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<Timestamp>,
}

/// A dispatcher's call to the emergency services (an `emergency_called` change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyCall {
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    pub at: Timestamp,
}

impl Incident {
    /// The incident an [`Change::Opened`] event starts, for `device`'s elder; `problem` says
    /// why a dispatcher should look twice. `None` when the event opens nothing.
    ///
    /// Emergencies start on the responders' rung; anything doubtful (an unreadable message,
    /// a service request) goes to a dispatcher first, reminded until they act.
    pub fn open(
        event: &IncidentEvent,
        device_id: DeviceId,
        elder_id: ElderId,
        problem: Option<String>,
        policy: &Policy,
    ) -> Option<Self> {
        let Change::Opened { kind, location, pressed_at, welfare, .. } = &event.change else { return None };
        let kind = *kind;
        let dispatcher_needed = match kind {
            IncidentKind::Unreadable => Some(DispatcherNeeded::UnreadableMessage),
            IncidentKind::Service => Some(DispatcherNeeded::ServiceRequest),
            IncidentKind::Welfare => Some(DispatcherNeeded::WelfareCheck),
            IncidentKind::LoneWorker => Some(DispatcherNeeded::CarerOverdue),
            IncidentKind::Call => Some(DispatcherNeeded::Call),
            IncidentKind::Sos | IncidentKind::Fall | IncidentKind::Fire | IncidentKind::Intrusion => None,
        };
        let need = match kind {
            IncidentKind::Unreadable => Need::Unreadable,
            IncidentKind::Service => Need::ServiceRequest,
            IncidentKind::Welfare => Need::WelfareCheck,
            IncidentKind::LoneWorker => Need::CarerOverdue,
            IncidentKind::Call => Need::IncomingCall,
            IncidentKind::Sos | IncidentKind::Fall | IncidentKind::Fire | IncidentKind::Intrusion => Need::NewEmergency,
        };
        let mut ladder = Ladder::default();
        if !kind.is_emergency() {
            ladder.rung = Rung::Dispatcher;
            // A welfare check has its own pace: it waits in its queue, not reminded over the
            // emergencies.
            if kind != IncidentKind::Welfare {
                ladder.remind_at = Some(event.at.plus_millis(policy.reminder_interval_ms));
            }
            ladder.emergency_number = policy.emergency_number(kind);
        }
        Some(Incident {
            id: event.incident_id,
            device_id,
            elder_id,
            kind,
            state: IncidentState::AwaitingDispatcher,
            pressed_at: *pressed_at,
            opened_at: event.at,
            updated_at: event.at,
            location: *location,
            responder: None,
            station: None,
            press_count: 1,
            cancel_requested: false,
            dispatcher_needed,
            problem,
            last_seq: event.seq,
            ladder,
            outcome: None,
            claimed_by: None,
            acknowledged_at: None,
            alarm: Some(Alarm::raised(need, event)),
            emergency_call: None,
            no_offer: None,
            family: Family::default(),
            welfare: *welfare,
            carer: None,
            calls: Vec::new(),
        })
    }

    /// Applies one logged change: the only way an open incident changes. What a change
    /// leaves implicit follows from the policy (how long until the next reminder, how long to
    /// get on scene, which emergency number shows), so replaying an incident's events from
    /// [`Incident::open`] under the same policy gives back its state.
    pub fn apply(&mut self, event: &IncidentEvent, policy: &Policy) {
        debug_assert_eq!(event.incident_id, self.id, "an event of another incident");
        let at = event.at;
        let remind_from_now = || Some(at.plus_millis(policy.reminder_interval_ms));
        self.last_seq = event.seq;
        self.updated_at = at;
        match &event.change {
            // An incident is opened by `Incident::open`; these only add to the audit trail.
            Change::Opened { .. } | Change::Note { .. } | Change::CallLogged { .. } => {}
            // Kept so a console can say why nobody was offered the job.
            Change::NobodyInRange { .. } | Change::NobodyQualified { .. } | Change::NobodyFreeAtStation { .. } => {
                self.no_offer = Some(event.change.clone());
            }
            Change::NearestStation { station_id, distance_m } => {
                self.station = Some(Assigned { id: station_id.clone(), distance_m: *distance_m });
            }
            Change::PressJoined { press_count, .. } => self.press_count = *press_count,
            // The carer is the one in need: never offered their own incident.
            Change::ForCarer { carer_id } => {
                self.carer = Some(carer_id.clone());
                if !self.ladder.tried.contains(carer_id) {
                    self.ladder.tried.push(carer_id.clone());
                }
            }
            Change::KindChanged { from, to } => {
                self.kind = *to;
                self.raise(Need::NewEmergency, event);
                let number = policy.standing_number(*to);
                if number.is_some() && self.state != IncidentState::Resolved {
                    self.ladder.emergency_number = number;
                }
                // Only a request that was not an emergency and still waits for a dispatcher
                // goes up the ladder; one a person already handles stays with them (the kind
                // alone raises its priority), and an emergency keeps its place.
                if !from.is_emergency() && self.state == IncidentState::AwaitingDispatcher && !self.ladder.off_ladder {
                    self.ladder.rung = Rung::Responders;
                    self.ladder.remind_at = None;
                }
            }
            Change::Offered { responder_id, distance_m, deadline } => {
                self.state = IncidentState::Offered;
                self.responder = None;
                self.nobody_needed();
                self.ladder.emergency_number = policy.standing_number(self.kind);
                self.ladder.offers_made += 1;
                self.no_offer = None;
                let offer = LiveOffer {
                    responder_id: responder_id.clone(),
                    distance_m: *distance_m,
                    deadline: *deadline,
                    asking: None,
                };
                self.ladder.offers.push(offer);
                self.ladder.offer_deadline = self.ladder.offers.iter().map(|o| o.deadline).min();
            }
            // Shown as an offer out (the console's "offered", the station not yet alerted), not
            // yet counted as one made: it becomes one when held.
            Change::AskedAcross { responder_id, zone, distance_m, deadline } => {
                self.state = IncidentState::Offered;
                self.responder = None;
                self.nobody_needed();
                self.ladder.emergency_number = policy.standing_number(self.kind);
                self.no_offer = None;
                let offer = LiveOffer {
                    responder_id: responder_id.clone(),
                    distance_m: *distance_m,
                    deadline: *deadline,
                    asking: Some(*zone),
                };
                self.ladder.offers.push(offer);
                self.ladder.offer_deadline = self.ladder.offers.iter().map(|o| o.deadline).min();
            }
            Change::HeldAcross { responder_id, distance_m, deadline, .. } => {
                if let Some(o) = self.ladder.offers.iter_mut().find(|o| &o.responder_id == responder_id) {
                    o.asking = None;
                    o.distance_m = *distance_m;
                    o.deadline = *deadline;
                    self.ladder.offers_made += 1;
                }
                self.ladder.offer_deadline = self.ladder.offers.iter().map(|o| o.deadline).min();
            }
            Change::OfferDeclined { responder_id, .. }
            | Change::OfferTimedOut { responder_id }
            | Change::OfferWithdrawn { responder_id }
            | Change::RefusedAcross { responder_id, .. } => {
                let ladder = &mut self.ladder;
                ladder.offers.retain(|o| &o.responder_id != responder_id);
                ladder.offer_deadline = ladder.offers.iter().map(|o| o.deadline).min();
                if !ladder.tried.contains(responder_id) {
                    ladder.tried.push(responder_id.clone());
                }
            }
            Change::StationAlerted { deadline, .. } => {
                self.state = IncidentState::StationAlerted;
                self.responder = None;
                self.nobody_needed();
                self.ladder.rung = Rung::Station;
                self.ladder.station_deadline = Some(*deadline);
                self.ladder.emergency_number = policy.standing_number(self.kind);
            }
            Change::NobodyGoing { emergency_number } => {
                self.state = IncidentState::AwaitingDispatcher;
                self.responder = None;
                self.dispatcher_needed = Some(DispatcherNeeded::NobodyGoing);
                self.ladder.rung = Rung::Dispatcher;
                self.ladder.emergency_number = emergency_number.clone();
                self.ladder.station_deadline = None;
                self.ladder.remind_at = remind_from_now();
                self.raise(Need::NobodyGoing, event);
            }
            Change::Reminder { count } => {
                self.ladder.reminders = *count;
                self.ladder.remind_at = remind_from_now();
                // A reminder due is a need again, whoever saw the last one.
                match (&mut self.alarm, self.dispatcher_needed.and_then(Need::of)) {
                    (Some(alarm), _) => alarm.reminders += 1,
                    (None, Some(need)) => self.raise(need, event),
                    (None, None) => {}
                }
            }
            Change::Accepted { responder_id } => {
                let taken = self.ladder.offers.iter().position(|o| &o.responder_id == responder_id);
                let offer = self.ladder.offers.remove(taken.expect("the accepted offer is live"));
                self.start_job(Assigned { id: offer.responder_id, distance_m: offer.distance_m }, at, policy);
                // Somebody is going: that need is met. One nobody has seen (a new emergency, a
                // request to cancel) still needs a dispatcher's eyes.
                self.silence(&[Need::NobodyGoing, Need::OnSceneOverdue, Need::ClaimantGone]);
            }
            Change::Assigned { responder_id, distance_m } => {
                // An offer to this very responder becomes their job.
                self.ladder.offers.clear();
                self.start_job(Assigned { id: responder_id.clone(), distance_m: *distance_m }, at, policy);
                self.alarm = None; // a dispatcher acted
            }
            Change::Withdrew { responder_id, .. } => {
                self.state = IncidentState::AwaitingDispatcher;
                self.responder = None;
                self.dispatcher_needed = Some(DispatcherNeeded::NobodyGoing);
                let l = &mut self.ladder;
                if !l.tried.contains(responder_id) {
                    l.tried.push(responder_id.clone());
                }
                l.rung = Rung::Dispatcher;
                l.on_scene_by = None;
                l.emergency_number = policy.emergency_number(self.kind);
                l.remind_at = remind_from_now();
                self.raise(Need::NobodyGoing, event);
            }
            Change::EnRoute => self.state = IncidentState::EnRoute,
            Change::OnScene => {
                self.state = IncidentState::OnScene;
                self.ladder.on_scene_by = None;
                if self.dispatcher_needed == Some(DispatcherNeeded::OnSceneOverdue) {
                    self.nobody_needed();
                }
                self.silence(&[Need::OnSceneOverdue]);
            }
            Change::OnSceneOverdue { .. } => {
                self.dispatcher_needed = Some(DispatcherNeeded::OnSceneOverdue);
                self.ladder.on_scene_by = None;
                self.ladder.remind_at = remind_from_now();
                self.raise(Need::OnSceneOverdue, event);
            }
            Change::TakenOffLadder => {
                self.ladder.off_ladder = true;
                self.ladder.station_deadline = None;
                self.ladder.remind_at = None;
                if matches!(self.state, IncidentState::Offered | IncidentState::StationAlerted) {
                    self.state = IncidentState::AwaitingDispatcher;
                }
                if !self.state.has_responder_on_job() {
                    self.dispatcher_needed = Some(DispatcherNeeded::HandledByDispatcher);
                }
                self.alarm = None; // a dispatcher acted
            }
            // Seen: the alarm that was up and the reminders stop; the next need sounds again.
            Change::Acknowledged { .. } => {
                self.ladder.remind_at = None;
                self.acknowledged_at.get_or_insert(at);
                self.alarm = None;
            }
            // A person has acted: the reminders and the alarm stop, as with an acknowledgement.
            Change::EmergencyCalled { number, reference } => {
                self.emergency_call = Some(EmergencyCall { number: number.clone(), reference: reference.clone(), at });
                self.ladder.remind_at = None;
                self.alarm = None;
            }
            Change::Resolved { outcome } => {
                self.state = IncidentState::Resolved;
                self.outcome = Some(outcome.clone());
                self.dispatcher_needed = None;
                // The responder's name stays: who helped.
                self.ladder =
                    Ladder { rung: Rung::Dispatcher, off_ladder: self.ladder.off_ladder, ..Ladder::default() };
                self.family.next_at = None;
                self.alarm = None; // resolved rows stop alarming
            }
            Change::Closed { outcome } => self.end(IncidentState::Closed, outcome),
            Change::Cancelled { reason } => self.end(IncidentState::Cancelled, reason),
            Change::FalseAlarm { reason } => self.end(IncidentState::FalseAlarm, reason),
            Change::CancelRequested { .. } => {
                self.cancel_requested = true;
                if self.state != IncidentState::Resolved {
                    self.raise(Need::CancelRequested, event);
                }
            }
            Change::Claimed { by, .. } => {
                self.claimed_by = Some(by.clone());
                self.acknowledged_at.get_or_insert(at); // claiming it is seeing it
                self.alarm = None;
            }
            Change::FamilyTold { contact_id, channel, notice } => {
                let open = !matches!(self.state, IncidentState::Resolved) && !self.state.is_terminal();
                let waiting = !self.family.answered && !self.family.exhausted && self.family.next_at.is_none();
                let contact = self.family.entry(contact_id);
                let first = contact.told_at.is_none();
                contact.told_at.get_or_insert(at);
                contact.told += 1;
                contact.channel = *channel;
                contact.last_key = Some(format!("n{}", event.seq));
                contact.delivery = None;
                contact.delivery_at = None;
                // A contact brought in on an emergency (or told of one while nobody else is
                // waited on) has a while to answer before the next is told.
                let waiting = waiting || (first && !self.family.answered);
                if open && waiting && notice.priority() == NoticePriority::Emergency {
                    self.family.next_at = Some(at.plus_millis(policy.family_escalate_after_ms));
                }
            }
            Change::FamilyAnswered { contact_id, answer } => {
                let contact = self.family.entry(contact_id);
                contact.answer = Some(answer.clone());
                contact.answered_at = Some(at);
                match answer {
                    // The next contact is told at once, unless somebody else has answered.
                    FamilyAnswer::CannotHelp if !self.family.answered => self.family.next_at = Some(at),
                    FamilyAnswer::CannotHelp => {}
                    _ => {
                        self.family.answered = true;
                        self.family.next_at = None;
                        self.silence(&[Need::FamilyUnreached]);
                    }
                }
                if *answer == FamilyAnswer::Fine && !matches!(self.state, IncidentState::Resolved) {
                    self.raise(Need::FamilySaysFine, event);
                }
            }
            Change::FamilyDelivery { contact_id, key, delivery } => {
                let contact = self.family.entry(contact_id);
                // Only the last notification's fate shows; an older one's is in the log.
                if contact.last_key.as_deref() == Some(key.as_str()) {
                    contact.delivery = Some(*delivery);
                    contact.delivery_at = Some(at);
                }
                if *delivery == Delivery::Dead && !self.family.answered && self.state != IncidentState::Resolved {
                    // This contact will not hear: the next is told now, and a person looks.
                    if self.family.next_at.is_some() {
                        self.family.next_at = Some(at);
                    }
                    self.raise(Need::FamilyUnreached, event);
                }
            }
            Change::FamilyExhausted => {
                self.family.exhausted = true;
                self.family.next_at = None;
                if self.state != IncidentState::Resolved {
                    self.raise(Need::FamilyUnreached, event);
                }
            }
            Change::CallRang { call_id, from, to, caller } => {
                if !self.calls.iter().any(|c| &c.call_id == call_id) {
                    self.calls.push(CallRecord::new(call_id, from, to, *caller, at));
                }
                // Somebody must pick up, whatever was seen before; an urgent alarm up (an
                // emergency nobody has seen) stays, and the row shows the call ringing.
                let louder = self.alarm.is_some_and(|up| up.level <= AlarmLevel::Urgent);
                if self.state != IncidentState::Resolved && !louder {
                    self.raise(Need::IncomingCall, event);
                }
            }
            Change::CallAnswered { call_id, by } => {
                if let Some(call) = self.calls.iter_mut().find(|c| &c.call_id == call_id) {
                    call.answered_at.get_or_insert(at);
                    call.answered_by.get_or_insert_with(|| by.clone());
                }
                // A dispatcher is talking to the caller: the call is seen, and handled. One
                // answered elsewhere (the station's duty line) still needs a dispatcher to
                // look: the alarm stays, and the call says who answered.
                if matches!(event.actor, Actor::Dispatcher(_)) {
                    self.acknowledged_at.get_or_insert(at);
                    self.silence(&[Need::IncomingCall, Need::MissedCall]);
                    if self.dispatcher_needed == Some(DispatcherNeeded::Call) {
                        self.dispatcher_needed = Some(DispatcherNeeded::HandledByDispatcher);
                        self.ladder.remind_at = None;
                    }
                }
            }
            Change::CallDialled { call_id, to } => {
                if !self.calls.iter().any(|c| &c.call_id == call_id) {
                    let by = match &event.actor {
                        Actor::Dispatcher(by) => by.clone(),
                        _ => String::new(),
                    };
                    self.calls.push(CallRecord::new(call_id, &by, to, CallerMatch::Dispatcher, at));
                }
            }
            Change::CallTransferred { call_id, to } => {
                if let Some(call) = self.calls.iter_mut().find(|c| &c.call_id == call_id) {
                    call.transferred_to.get_or_insert_with(|| to.clone());
                }
            }
            Change::CallForwarded { call_id, rung, number } => {
                if let Some(call) = self.calls.iter_mut().find(|c| &c.call_id == call_id) {
                    call.forwarded.push(Forward { rung: *rung, number: number.clone(), at });
                }
            }
            Change::CallEnded { call_id, reason, .. } => {
                let call = self.calls.iter_mut().find(|c| &c.call_id == call_id);
                let answered = call.as_ref().is_some_and(|c| c.answered_at.is_some());
                if let Some(call) = call {
                    call.ended_at.get_or_insert(at);
                    call.end.get_or_insert(*reason);
                }
                // Nobody picked up a call in: the caller must be called back (the ringing's
                // alarm gives way; another urgent one up stays, as when the call rang). A call
                // out nobody answered is the dispatcher's own to try again.
                let inbound = self.calls.iter().any(|c| &c.call_id == call_id && !c.is_outbound());
                let louder =
                    self.alarm.is_some_and(|up| up.level <= AlarmLevel::Urgent && up.need != Need::IncomingCall);
                if inbound && !answered && !louder && self.state != IncidentState::Resolved && !self.state.is_terminal()
                {
                    self.raise(Need::MissedCall, event);
                }
            }
            Change::Released { why, .. } => {
                self.claimed_by = None;
                // The claimant left without handing it over: whatever still needs a person
                // needs somebody else now.
                if why.is_some() && self.dispatcher_needed.is_some() {
                    self.raise(Need::ClaimantGone, event);
                }
            }
        }
    }

    /// The incident's earliest deadline. A reminder counts only while a dispatcher is needed.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let l = &self.ladder;
        let remind_at = l.remind_at.filter(|_| self.dispatcher_needed.is_some());
        [l.offer_deadline, l.station_deadline, remind_at, l.on_scene_by, self.family.next_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Raises an alarm for `need`, unless a more urgent one is up (that one stays: it still
    /// needs a person, and the row says the rest).
    fn raise(&mut self, need: Need, event: &IncidentEvent) {
        if self.alarm.is_some_and(|up| up.level < need.level()) {
            return;
        }
        self.alarm = Some(Alarm::raised(need, event));
    }

    /// Silences the alarm up if it is for one of `needs`.
    fn silence(&mut self, needs: &[Need]) {
        if self.alarm.is_some_and(|a| needs.contains(&a.need)) {
            self.alarm = None;
        }
    }

    /// Nobody needs a dispatcher any more, so nobody is reminded.
    fn nobody_needed(&mut self) {
        self.dispatcher_needed = None;
        self.ladder.remind_at = None;
    }

    /// A responder takes the job (accepted or assigned): the other timers stop, and the one
    /// for getting on scene starts.
    fn start_job(&mut self, responder: Assigned<ResponderId>, at: Timestamp, policy: &Policy) {
        debug_assert!(self.ladder.offers.is_empty(), "a job starts once every offer has ended");
        self.state = IncidentState::Accepted;
        self.responder = Some(responder);
        self.nobody_needed();
        self.ladder.offer_deadline = None;
        self.ladder.station_deadline = None;
        self.ladder.on_scene_by = Some(at.plus_millis(policy.on_scene_within_ms));
        self.ladder.emergency_number = policy.standing_number(self.kind);
    }

    /// The incident's life is over: `outcome` says how. Whoever held the job lets go (a
    /// resolved incident keeps the name of who helped), and every timer stops.
    fn end(&mut self, state: IncidentState, outcome: &str) {
        if self.state.has_responder_on_job() {
            self.responder = None;
        }
        self.state = state;
        self.outcome = Some(outcome.to_string());
        self.nobody_needed();
        self.alarm = None;
        let l = &mut self.ladder;
        (l.offer_deadline, l.station_deadline, l.on_scene_by) = (None, None, None);
        self.family.next_at = None;
    }
}

/// An offer a responder has not yet answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveOffer {
    pub responder_id: ResponderId,
    pub distance_m: f64,
    pub deadline: Timestamp,
    /// A neighbouring zone's responder asked for and not yet held: the zone asked, whose owner
    /// has until `deadline` to hold them ([`crate::border`]). Their phone is told only once
    /// held; meanwhile the offer cannot be accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asking: Option<crate::zone::Zone>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where an incident is on the escalation ladder, and its timers. All times are absolute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Ladder {
    pub rung: Rung,
    /// Offers made to responders on this incident so far (the ladder's first rung).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offers_made: u32,
    /// Responders who declined, let an offer lapse or lost it to another: never offered this
    /// incident again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tried: Vec<ResponderId>,
    /// The offers out now, in the order they were made (each the soonest to arrive of those
    /// left): one, or several when the incident's kind is set for parallel offers (the first
    /// to accept wins; the others are withdrawn).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offers: Vec<LiveOffer>,
    /// When the earliest live offer lapses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_deadline: Option<Timestamp>,
    /// When the station's duty line has had long enough.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station_deadline: Option<Timestamp>,
    /// When the dispatcher is reminded next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reminders: u32,
    /// By when the responder who accepted must report on scene.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_scene_by: Option<Timestamp>,
    /// The emergency number a dispatcher should call when nobody is going.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency_number: Option<String>,
    /// A dispatcher took the incident off the ladder.
    #[serde(default, skip_serializing_if = "is_false")]
    pub off_ladder: bool,
}

impl Ladder {
    /// The earliest timer, if any.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        [self.offer_deadline, self.station_deadline, self.remind_at, self.on_scene_by].into_iter().flatten().min()
    }
}

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "id", rename_all = "snake_case")]
pub enum Actor {
    Device(DeviceId),
    Engine,
    Responder(ResponderId),
    /// A dispatcher, by their sign-in name.
    Dispatcher(String),
    /// One of the elder's contacts, by contact id.
    Family(String),
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
        /// Why, for a welfare check.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        welfare: Option<WelfareReason>,
    },
    /// The incident is for a carer (logged right after `opened`): see [`Incident::carer`].
    ForCarer {
        carer_id: ResponderId,
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
        deadline: Timestamp,
    },
    OfferDeclined {
        responder_id: ResponderId,
        /// Why, when the responder said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The responder who held the job gave it up: nobody is going, a dispatcher must act.
    Withdrew {
        responder_id: ResponderId,
        reason: String,
    },
    OfferTimedOut {
        responder_id: ResponderId,
    },
    OfferWithdrawn {
        responder_id: ResponderId,
    },
    /// A neighbouring zone's responder gets there soonest: their zone's owner is asked to hold
    /// them, by `deadline` ([`crate::border`]). The offer is made when they are held.
    AskedAcross {
        responder_id: ResponderId,
        zone: crate::zone::Zone,
        distance_m: f64,
        deadline: Timestamp,
    },
    /// Their zone holds them for this incident: the offer is made, until `deadline`.
    HeldAcross {
        responder_id: ResponderId,
        zone: crate::zone::Zone,
        distance_m: f64,
        deadline: Timestamp,
    },
    /// Their zone cannot spare them (an offer or a job of its own, off duty): the ladder goes on.
    RefusedAcross {
        responder_id: ResponderId,
        zone: crate::zone::Zone,
    },
    /// The responders' rung is used up: the station's duty line is alerted.
    StationAlerted {
        station_id: StationId,
        deadline: Timestamp,
    },
    /// The last rung: nobody is going, a dispatcher must act.
    NobodyGoing {
        emergency_number: Option<String>,
    },
    Reminder {
        count: u32,
    },
    Accepted {
        responder_id: ResponderId,
    },
    EnRoute,
    OnScene,
    OnSceneOverdue {
        responder_id: ResponderId,
    },
    /// A dispatcher put a responder on the job by hand.
    Assigned {
        responder_id: ResponderId,
        /// How far they were (great circle) when assigned; read back as 0 from events
        /// logged before it was written.
        #[serde(default)]
        distance_m: f64,
    },
    TakenOffLadder,
    /// A dispatcher saw the alarm that was up (`need`; absent in events logged before it was
    /// written, or when none was up).
    Acknowledged {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        need: Option<Need>,
    },
    Resolved {
        outcome: String,
    },
    Closed {
        outcome: String,
    },
    Cancelled {
        reason: String,
    },
    FalseAlarm {
        reason: String,
    },
    /// No available responder was within the offer distance.
    NobodyInRange {
        max_distance_m: f64,
    },
    /// Responders were within the offer distance but none could be offered the job; the
    /// counts say why (each responder counted once, for the first reason that ruled them out).
    NobodyQualified {
        in_range: u32,
        already_tried: u32,
        lacking_skill: u32,
        outside_circle: u32,
    },
    NearestStation {
        station_id: StationId,
        distance_m: f64,
    },
    CancelRequested {
        msg_id: MessageId,
    },
    /// A dispatcher took ownership; `from` is whose claim a supervisor took over.
    Claimed {
        by: String,
        from: Option<String>,
    },
    /// The claim ended: given up by `by`, or (with `why`) ended by the engine because its
    /// holder signed out or stayed offline.
    Released {
        by: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        why: Option<ClaimEnd>,
    },
    Note {
        text: String,
    },
    /// A phone call a dispatcher made or took about the incident.
    CallLogged {
        /// Whom: the elder, a family member, the station...
        who: String,
        number: Option<String>,
        outcome: String,
    },
    /// A dispatcher called the emergency services.
    EmergencyCalled {
        number: String,
        /// Their reference for the call, when they gave one.
        reference: Option<String>,
    },
    /// No responder of the elder's own station was free (`own_station` matching).
    NobodyFreeAtStation {
        station_id: Option<StationId>,
    },
    /// A contact of the elder is sent `notice` on `channel`; the notification's key is
    /// `n{seq}` of this event.
    FamilyTold {
        contact_id: String,
        channel: Channel,
        notice: Notice,
    },
    /// A contact answered (from the family page, or by replying to a text).
    FamilyAnswered {
        contact_id: String,
        answer: FamilyAnswer,
    },
    /// What became of the notification `key` to a contact.
    FamilyDelivery {
        contact_id: String,
        key: String,
        delivery: Delivery,
    },
    /// Every contact has been told and none has answered.
    FamilyExhausted,
    /// A call to the hotline rang the consoles about this incident.
    CallRang {
        call_id: String,
        /// The caller's number as the network gave it.
        from: String,
        /// The number dialled.
        to: String,
        /// How the caller was recognised.
        caller: CallerMatch,
    },
    /// Somebody picked the call up (`by`: their SIP user, a staff id for a console).
    CallAnswered {
        call_id: String,
        by: String,
    },
    /// A dispatcher (the event's actor) called `to` from the console about this incident.
    CallDialled {
        call_id: String,
        to: String,
    },
    /// A dispatcher (the event's actor) transferred the call to `to`.
    CallTransferred {
        call_id: String,
        to: String,
    },
    /// Nobody answered in time: the call is put through to `number`, the ladder's `rung`.
    CallForwarded {
        call_id: String,
        rung: ForwardRung,
        number: String,
    },
    /// The call is over; `talk_s` is how long it was talked, for an answered call.
    CallEnded {
        call_id: String,
        reason: CallEnd,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        talk_s: Option<u32>,
    },
}

impl Change {
    /// Whether this is the family's side of the incident (told, answered, delivered), which
    /// follows the incident's own changes and moves no responder or dispatcher.
    pub fn is_family(&self) -> bool {
        matches!(
            self,
            Change::FamilyTold { .. }
                | Change::FamilyAnswered { .. }
                | Change::FamilyDelivery { .. }
                | Change::FamilyExhausted
        )
    }
}

/// Why the engine ended a claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimEnd {
    /// Its holder signed out.
    SignedOut,
    /// Its holder had no console connected for longer than the policy allows.
    Offline,
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
        /// The message this answers: the event that opened or joined the incident, or the
        /// resent one answered again. A device stops resending a message once `help_coming`
        /// names it (an answer to an older message, arriving late, says nothing of a newer
        /// one).
        msg_id: MessageId,
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
    /// Age at the press, from the registered birth year.
    pub age: Option<u32>,
    pub lives_alone: Option<bool>,
    pub conditions: Vec<String>,
    pub medications: Vec<String>,
    pub mobility: String,
    pub language: String,
    pub door_notes: String,
    pub contacts: Vec<crate::registry::Contact>,
}

/// A responder as a console's map and roster show them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponderView {
    pub id: ResponderId,
    pub name: String,
    pub station_id: StationId,
    pub phone: Option<String>,
    pub mode: crate::registry::TravelMode,
    pub skills: Vec<String>,
    pub on_duty: bool,
    pub status: ResponderStatus,
    /// The incident they hold an offer or a job on.
    pub incident_id: Option<IncidentId>,
    pub position: Coordinates,
    /// When the position came from their phone; `None`: their registered base.
    pub position_at: Option<Timestamp>,
    /// For a home-care service worker: the provider they work for. Workers are never offered
    /// an emergency by the ladder, so maps draw them apart and stations' counts leave them out.
    #[serde(default)]
    pub provider_id: Option<crate::ids::ProviderId>,
}

/// Where a responder stands, for colouring the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponderStatus {
    Available,
    Offered,
    Busy,
    OffDuty,
}

/// A station as a console's map shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationView {
    pub id: StationId,
    pub name: String,
    pub phone: Option<String>,
    pub position: Coordinates,
    /// The station's own circle, else the policy's default.
    pub service_circle_min: u32,
}

/// Somebody a dispatcher could put on the job, best first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    pub responder: PartyView,
    pub mode: crate::registry::TravelMode,
    pub station_id: StationId,
    pub distance_m: f64,
    pub eta_min: u32,
    /// Whether they can get there inside their station's service circle.
    pub within_circle: bool,
    /// Whether they have the skill the incident's kind needs.
    pub has_skill: bool,
    /// Set for a home-care service worker nearby: the ladder never offers them an emergency,
    /// but a dispatcher may send them, which takes them off the order they are on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<SuggestedWorker>,
}

/// A service worker in a dispatcher's suggestions: whom they work for and what they are doing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuggestedWorker {
    pub provider_id: crate::ids::ProviderId,
    pub provider_name: String,
    /// The order they are out on (on the way or at the door), which sending them leaves
    /// waiting for another worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<WorkerOnOrder>,
}

/// The order a suggested worker is out on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerOnOrder {
    pub id: crate::service::OrderId,
    pub category: String,
    pub state: crate::service::OrderState,
    /// The elder whose home they are at or going to.
    pub elder_name: String,
}

/// A live offer as a console shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OfferView {
    pub responder: PartyView,
    pub deadline: Timestamp,
    /// A neighbouring zone's responder, asked for and not yet held: the zone asked, which has
    /// until `deadline` to answer ([`crate::border`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asking: Option<crate::zone::Zone>,
}

/// What a station's duty line is sent when the responders' rung is used up: enough to send
/// somebody or call back without looking anything up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationAlert {
    pub station_id: StationId,
    pub incident_id: IncidentId,
    pub kind: IncidentKind,
    pub elder: ElderView,
    pub location: Location,
    /// Great-circle distance from the station.
    pub distance_m: f64,
    /// Responders offered the job before the station, who did not take it.
    pub offers_made: u32,
    /// When a dispatcher is called in if the station has not sent anybody.
    pub deadline: Timestamp,
    pub pressed_at: Timestamp,
    pub server_time: Timestamp,
}

/// What a responder's phone shows of the offer or job they hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    pub incident_id: IncidentId,
    /// `offered`, `accepted`, `en_route` or `on_scene`.
    pub state: IncidentState,
    pub offer_deadline: Option<Timestamp>,
    pub kind: IncidentKind,
    pub elder: ElderView,
    pub location: Location,
    pub distance_m: f64,
    pub eta_min: u32,
    pub pressed_at: Timestamp,
    /// The engine's clock when this view was made, so a phone can correct its own.
    pub server_time: Timestamp,
}

/// Why a responder's offer or job went away by someone else's hand (a dispatcher, the
/// elder's device, the engine's clock), so the phone can say so instead of going quiet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobEnded {
    pub incident_id: IncidentId,
    /// The incident's state now: `false_alarm`, `cancelled`, `closed` or `resolved` when it
    /// ended; an open state when it went on without this responder.
    pub state: IncidentState,
    /// Whose act it was: `dispatcher`, `device` or `engine` (an offer that lapsed).
    pub by: String,
    /// The reason or outcome as written, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The responder who holds the job now, by name, when it went to somebody else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassigned_to: Option<String>,
}

/// Everything a console needs to draw one incident row, after an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentView {
    pub id: IncidentId,
    /// Sequence number of the last event this view reflects.
    pub seq: u64,
    pub kind: IncidentKind,
    /// Why a welfare check was opened (kind `welfare` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub welfare: Option<WelfareReason>,
    pub priority: u8,
    pub state: IncidentState,
    pub device_id: DeviceId,
    /// The device's SIM number as the ledger has it, for a dispatcher to call the device
    /// (talk-back on a device that answers calls); `None` (absent) without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_sim: Option<String>,
    pub elder: ElderView,
    pub location: Location,
    pub responder: Option<PartyView>,
    pub station: Option<PartyView>,
    pub press_count: u32,
    pub cancel_requested: bool,
    pub dispatcher_needed: Option<DispatcherNeeded>,
    pub problem: Option<String>,
    /// The live offers, with the responders' names, in the order they were made.
    pub offers: Vec<OfferView>,
    /// The ladder: rung, deadlines, the emergency number when nobody is going.
    pub ladder: Ladder,
    pub outcome: Option<String>,
    pub pressed_at: Timestamp,
    pub opened_at: Timestamp,
    pub updated_at: Timestamp,
    /// The dispatcher who owns it.
    pub claimed_by: Option<PartyView>,
    /// When a dispatcher first acknowledged or claimed it.
    pub acknowledged_at: Option<Timestamp>,
    /// What needs a person now: every console flags and sounds it until a person acts.
    pub alarm: Option<Alarm>,
    /// How many responders the ladder offers it to before the next rung (`ladder.offers_made`
    /// of these are made); 0 for a kind that goes to a dispatcher first.
    #[serde(default)]
    pub offers_planned: u32,
    /// The last call a dispatcher made to the emergency services (number, reference, when).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency_call: Option<EmergencyCall>,
    /// Why the ladder offered the job to nobody: the `nobody_in_range`, `nobody_qualified` or
    /// `nobody_free_at_station` change it logged. Absent when offers were made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_offer: Option<Change>,
    /// The family's side: each contact told (by id, matching `elder.contacts`), how the last
    /// notification went, their answer; when the next is told. Absent when nobody was told.
    #[serde(default, skip_serializing_if = "Family::is_empty")]
    pub family: Family,
    /// The carer the incident is for (their help button, or overdue on a visit), with their
    /// phone; `elder` is then the elder they were visiting, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carer: Option<PartyView>,
    /// The calls to the hotline about it, in the order they rang; one with neither an answer
    /// nor an end rings now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<CallRecord>,
}

impl IncidentView {
    /// Where consoles list it: most urgent first, then oldest pressed, then by id.
    pub fn order(&self) -> (u8, Timestamp, IncidentId) {
        (self.priority, self.pressed_at, self.id)
    }
}
