//! The frames on the `/ws` socket, both ways, as typed Rust: what the server sends consoles
//! and phones ([`ServerFrame`]) and what they send it ([`ClientFrame`]), with the answer to
//! each of theirs ([`ResultFrame`]). The JSON is the wire format documented in
//! `docs/asyncapi.yaml`; `tests/docs.rs` reads every example there through these types.
//!
//! A server frame may borrow what it carries ([`Cow`], [`Views`]), so the hub writes a
//! snapshot of thousands of incidents without copying them; a client reads owned ones.

use crate::command::{Answer, Caller, Refused, Reply, Request};
use crate::family::{FamilyIncident, FamilyLinkInfo, FamilyMember, FamilyPastIncident, IssuedLink, LinkAction};
use crate::rest::User;
use anxin_core::{
    Coordinates, DeviceId, DispatcherAction, ElderId, EmergencyCall, FamilyAnswer, Incident, IncidentEvent, IncidentId,
    IncidentKind, IncidentState, IncidentView, JobEnded, JobView, ResponderAction, ResponderId, ResponderView,
    StationId, StationView, Suggestion, Timestamp, VisitAction,
};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// A frame from the server to a console or a phone, as JSON: `{"type": ..., ...}`.
// A frame lives from being built to being written (or from being read to being looked at),
// never in bulk: an owned incident inline costs nothing, where a box would cost the hub an
// allocation per delta.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame<'a> {
    /// First on a console's socket: who is signed in, the staff, the console's settings.
    Welcome(Welcome),
    /// Every open incident as of `seq`; replaces all the console holds.
    Snapshot {
        /// The highest of `seqs` (a one-zone district's only one).
        seq: u64,
        /// The feed's place in each zone's numbering, one number a zone (a number says its
        /// zone: `zone · 2⁴⁰ + n`); a console reconnects with them as its `since`.
        #[serde(default)]
        seqs: Vec<u64>,
        /// The store's history id: sequence numbers from another history mean nothing.
        history: Cow<'a, str>,
        server_time: Timestamp,
        incidents: Views<'a, IncidentView>,
    },
    /// One incident after a change, numbered in the console feed.
    Incident { seq: u64, incident: Cow<'a, IncidentView> },
    /// Every responder and station as they are now (outside the numbered feed).
    Roster { responders: Views<'a, ResponderView>, stations: Views<'a, StationView> },
    /// One responder's new view (outside the numbered feed).
    Responder { responder: Cow<'a, ResponderView> },
    /// A service order after a change, as the services board shows it (outside the numbered
    /// feed: a console reads the board over REST when it connects, then follows these).
    Order { order: Box<anxin_core::engine::OrderView> },
    /// A responder retired from the ledger: off the map and the roster (outside the numbered
    /// feed). Coming back (enrolled again), they arrive as a `responder` frame.
    ResponderRetired { id: ResponderId },
    /// The answer to one [`ClientFrame`].
    Result(ResultFrame),
    /// Who a phone is signed in as, and whether they are on duty.
    Hello { responder: PhoneOwner },
    /// The offer or job the phone's responder holds now; `null` for none. `ended` says why
    /// the one they held went away, when someone else ended it or gave it to another.
    Job {
        job: Option<JobView>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ended: Option<JobEnded>,
    },
    /// Which members of staff have a console connected now, sorted (outside the numbered feed).
    Presence { online: Vec<String> },
    /// Every few seconds on every socket, whatever else is sent: a page that hears nothing for
    /// longer knows its connection has stalled. `seq` is the console feed's latest number, so
    /// a console also sees when it has fallen behind.
    Heartbeat {
        /// The highest of `seqs`.
        seq: u64,
        /// Each zone's last sequence number published.
        #[serde(default)]
        seqs: Vec<u64>,
        server_time: Timestamp,
    },
    /// First on a family page's socket: who is signed in, for which elder, and that elder's
    /// open incidents (the family's view). Replaces all the page holds.
    FamilyWelcome {
        member: FamilyMember,
        server_time: Timestamp,
        incidents: Vec<FamilyIncident>,
        /// The map's base tiles, as consoles have them.
        map: MapSettings,
    },
    /// One of the family's elder's incidents after a change (a terminal state is its last).
    FamilyIncident { incident: FamilyIncident },
    /// The day so far against the standards, and each dispatcher's day: to supervisors'
    /// consoles only, at connection and whenever a figure changes (outside the numbered feed).
    Wallboard(anxin_core::DayFigures),
}

impl ServerFrame<'_> {
    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        // An incident's frame is about 1.5 kB: written into room made once, not doubled up
        // to it (growing the text was a tenth of the engine's allocations).
        let mut text = Vec::with_capacity(2048);
        serde_json::to_writer(&mut text, self).expect("server frames serialise");
        String::from_utf8(text).expect("serde_json writes UTF-8")
    }

    /// Reads a frame a server sent.
    pub fn from_json(text: &str) -> Result<ServerFrame<'static>, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// The numbered feed's frames as a hub writes them from what it keeps: each incident either a
/// view or a view already written as JSON ([`crate::cluster::WrittenView`], one followed from
/// another node), written as it is. The text is a [`ServerFrame`]'s `snapshot` or `incident`,
/// byte for byte (a client reads it as one).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FeedFrame<'a> {
    Snapshot { seq: u64, seqs: Vec<u64>, history: &'a str, server_time: Timestamp, incidents: Vec<FeedView<'a>> },
    Incident { seq: u64, incident: FeedView<'a> },
}

/// One incident in a [`FeedFrame`].
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub enum FeedView<'a> {
    View(&'a IncidentView),
    Written(&'a serde_json::value::RawValue),
}

impl FeedFrame<'_> {
    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        // About 1.5 kB an incident, written into room made once (see `ServerFrame::to_json`).
        let room = match self {
            FeedFrame::Snapshot { incidents, .. } => 256 + 1800 * incidents.len(),
            FeedFrame::Incident { .. } => 2048,
        };
        let mut text = Vec::with_capacity(room);
        serde_json::to_writer(&mut text, self).expect("server frames serialise");
        String::from_utf8(text).expect("serde_json writes UTF-8")
    }
}

/// The `welcome` frame's body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// The member of staff the session belongs to: the actor of every command on the socket.
    pub user: User,
    /// Everybody who may sign in, sorted by id.
    pub staff: Vec<User>,
    pub server_time: Timestamp,
    pub console: ConsoleSettings,
}

/// The console's settings (`[consoles]` in the configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleSettings {
    /// The console's language, e.g. `zh-CN`.
    pub language: String,
    /// Seconds within which an offer should be accepted (the console colours the clock).
    pub accept_target_s: u64,
    /// Minutes within which somebody should be on scene.
    pub on_scene_target_min: u64,
    /// Hours past falling due after which a scheduled welfare call or visit still open is
    /// overdue (`programme.overdue_after_h`): the welfare list marks and counts those.
    pub programme_overdue_after_h: u64,
    /// The map's base tiles (`[consoles.map]`).
    pub map: MapSettings,
}

/// Where the console's map tiles come from: `[consoles.map]` with its provider worked out
/// into URL templates, so the console only draws what it is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapSettings {
    pub provider: MapProvider,
    /// Tile URL templates with `{z}`, `{x}`, `{y}` and perhaps `{s}`, drawn bottom first
    /// (Tianditu's streets, then its labels); empty for the plain grid, which fetches nothing.
    pub tiles: Vec<String>,
    /// The characters `{s}` takes in turn, one a tile server (`"01234567"`); empty if unused.
    pub subdomains: String,
    /// The datum the tiles are drawn in. Positions are WGS-84; on GCJ-02 tiles the console
    /// shifts what it draws and shifts back what is read off the map.
    pub crs: MapCrs,
    /// Who the tiles are from, shown in the map's corner (empty with no tiles).
    pub attribution: String,
    /// The deepest zoom level the tiles go to.
    pub max_zoom: u8,
}

impl MapSettings {
    /// No tiles: the grid, offline.
    pub fn none() -> Self {
        MapSettings {
            provider: MapProvider::None,
            tiles: Vec::new(),
            subdomains: String::new(),
            crs: MapCrs::Wgs84,
            attribution: String::new(),
            max_zoom: 19,
        }
    }
}

/// Whose tiles the map shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MapProvider {
    /// A plain grid, nothing fetched.
    #[default]
    None,
    /// 天地图, the national platform: CGCS2000, which is WGS-84 to within centimetres.
    Tianditu,
    /// 高德 (AutoNavi): GCJ-02.
    Amap,
    /// A URL template of the operator's choosing.
    Custom,
}

/// A map's datum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MapCrs {
    /// WGS-84 (and CGCS2000): what Anxin stores.
    #[default]
    Wgs84,
    /// GCJ-02, the offset datum of maps published in mainland China.
    Gcj02,
}

/// Who a phone belongs to, as its `hello` frame says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhoneOwner {
    pub id: ResponderId,
    pub name: String,
    pub station_id: StationId,
    /// The station's name, to show instead of its id.
    #[serde(default)]
    pub station_name: String,
    pub on_duty: bool,
    /// For a carer (a responder with the skill `carer`): their visit and their help.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carer: Option<anxin_core::CarerView>,
    /// For a service worker (a responder who works for a provider): the offers to their
    /// provider and the orders they hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<anxin_core::WorkerView>,
}

/// The `result` frame: `ok` with a query's data beside it, or not `ok` with an `error`.
/// `request_id` is always written (null when the frame had none or could not be read).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultFrame {
    pub request_id: Option<String>,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The refusal's stable code (see the AsyncAPI description), for pages to translate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Values the refusal's words name (an incident, who holds a claim...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    /// The answer to `suggest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestions: Option<Vec<Suggestion>>,
    /// The answer to `timeline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<IncidentEvent>>,
    /// The answer to `history`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incidents: Option<Vec<ElderIncident>>,
    /// The answer to `family_links`: the elder's contacts' live links (never the tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<FamilyLinkInfo>>,
    /// The answer to `family_link` with `issue`: the new link, shown once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<IssuedLink>,
    /// The answer to `family_history`: the family's elder's incidents of the last 30 days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub past: Option<Vec<FamilyPastIncident>>,
}

/// One of an elder's incidents, as `history` answers it: what it was, how it went and ended,
/// and who handled it (ids; the console has the names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElderIncident {
    pub id: IncidentId,
    pub kind: IncidentKind,
    pub state: IncidentState,
    pub device_id: DeviceId,
    pub pressed_at: Timestamp,
    pub opened_at: Timestamp,
    /// When it last changed (for an ended incident: when it ended).
    pub updated_at: Timestamp,
    pub press_count: u32,
    /// How it ended (or was resolved), as the dispatcher or responder put it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The responder who held the job (a resolved or closed incident keeps who helped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responder_id: Option<ResponderId>,
    /// The dispatcher who held the claim when it last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_by: Option<String>,
    /// The last call to the emergency services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emergency_call: Option<EmergencyCall>,
}

impl From<&Incident> for ElderIncident {
    fn from(i: &Incident) -> Self {
        Self {
            id: i.id,
            kind: i.kind,
            state: i.state,
            device_id: i.device_id.clone(),
            pressed_at: i.pressed_at,
            opened_at: i.opened_at,
            updated_at: i.updated_at,
            press_count: i.press_count,
            outcome: i.outcome.clone(),
            responder_id: i.responder.as_ref().map(|r| r.id.clone()),
            claimed_by: i.claimed_by.clone(),
            emergency_call: i.emergency_call.clone(),
        }
    }
}

impl ResultFrame {
    /// The frame that carries `answer` back to the frame with `request_id`.
    pub fn new(request_id: Option<String>, answer: Answer) -> Self {
        let mut frame = Self {
            request_id,
            ok: answer.is_ok(),
            error: None,
            code: None,
            args: BTreeMap::new(),
            suggestions: None,
            events: None,
            incidents: None,
            links: None,
            link: None,
            past: None,
        };
        match answer {
            Ok(Reply::Done) => {}
            Ok(Reply::Suggestions(s)) => frame.suggestions = Some(s),
            Ok(Reply::Events(e)) => frame.events = Some(e),
            Ok(Reply::Incidents(i)) => frame.incidents = Some(i),
            Ok(Reply::FamilyLinks(l)) => frame.links = Some(l),
            Ok(Reply::IssuedLink(l)) => frame.link = Some(l),
            Ok(Reply::FamilyHistory(p)) => frame.past = Some(p),
            // Ledger changes (`/api/v1/admin`) and calls (`/api/v1/telephony/calls`) are
            // answered over REST, never on a socket.
            Ok(Reply::Amended(_) | Reply::AmendedMany(_) | Reply::Call(_)) => {}
            // Service orders are placed and listed over REST (`/api/v1/services`).
            Ok(Reply::Order(_) | Reply::Quote(_) | Reply::Orders(_) | Reply::Catalogue(_)) => {}
            Err(e) => {
                frame.error = Some(e.message);
                frame.code = Some(e.code);
                frame.args = e.args;
            }
        }
        frame
    }

    /// The answer this frame carries.
    pub fn into_answer(self) -> Answer {
        match self {
            Self { ok: false, error, code, args, .. } => Err(Refused {
                code: code.unwrap_or_default(),
                message: error.unwrap_or_default(),
                args,
                fields: Vec::new(),
            }),
            Self { suggestions: Some(s), .. } => Ok(Reply::Suggestions(s)),
            Self { events: Some(e), .. } => Ok(Reply::Events(e)),
            Self { incidents: Some(i), .. } => Ok(Reply::Incidents(i)),
            Self { links: Some(l), .. } => Ok(Reply::FamilyLinks(l)),
            Self { link: Some(l), .. } => Ok(Reply::IssuedLink(l)),
            Self { past: Some(p), .. } => Ok(Reply::FamilyHistory(p)),
            Self { .. } => Ok(Reply::Done),
        }
    }

    /// As a frame for the socket.
    pub fn into_frame(self) -> ServerFrame<'static> {
        ServerFrame::Result(self)
    }
}

/// A list a frame carries: borrowed where the server writes it, owned where a client read it.
#[derive(Debug, Clone)]
pub enum Views<'a, T> {
    Borrowed(Vec<&'a T>),
    Owned(Vec<T>),
}

impl<T> Views<'_, T> {
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        let (borrowed, owned) = match self {
            Views::Borrowed(v) => (Some(v.iter().copied()), None),
            Views::Owned(v) => (None, Some(v.iter())),
        };
        borrowed.into_iter().flatten().chain(owned.into_iter().flatten())
    }

    pub fn len(&self) -> usize {
        match self {
            Views::Borrowed(v) => v.len(),
            Views::Owned(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn into_owned(self) -> Vec<T>
    where
        T: Clone,
    {
        match self {
            Views::Borrowed(v) => v.into_iter().cloned().collect(),
            Views::Owned(v) => v,
        }
    }
}

impl<T> From<Vec<T>> for Views<'_, T> {
    fn from(v: Vec<T>) -> Self {
        Views::Owned(v)
    }
}

impl<T: Serialize> Serialize for Views<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Views<'_, T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(Views::Owned)
    }
}

/// A frame from a phone or a console, as JSON: `{"type": ..., ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    Accept {
        incident_id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    Decline {
        incident_id: u64,
        /// Why, when the responder says (`too_far`, `busy`, `unwell`, `no_transport`, `other`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// The responder gives up a job they hold (accepted or assigned) and says why.
    Withdraw {
        incident_id: u64,
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    EnRoute {
        incident_id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    OnScene {
        incident_id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    Resolve {
        incident_id: u64,
        outcome: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    Duty {
        on: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    Location {
        lat: f64,
        lon: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        accuracy_m: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// A carer checks in at an elder's home (`elder_id` required), says they are still
    /// there, checks out, or asks for help, with where their phone says they are.
    Visit {
        action: VisitVerb,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        elder_id: Option<String>,
        lat: f64,
        lon: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        accuracy_m: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// A service worker's step on an order: `accept` (with `appointment_at`), `refuse` (with
    /// `reason`), `en_route`, `check_in` (with `at`: where the phone says they are),
    /// `check_out` (with `done`).
    Order {
        order_id: u64,
        action: WorkerVerb,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        appointment_at: Option<Timestamp>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<FrameFix>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        done: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// A dispatcher's command on an incident.
    Command {
        incident_id: u64,
        action: DispatcherVerb,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        responder_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<String>,
        /// A note's text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// Whom a logged call was with.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        who: Option<String>,
        /// The number called (a logged call, an escalation).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        number: Option<String>,
        /// The emergency service's reference for an escalation.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
        /// The alarm acknowledged (its `raised_seq`), so that a newer one is not silenced.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alarm: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// A dispatcher asks whom they could assign.
    Suggest {
        incident_id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// A dispatcher asks for an incident's audit trail.
    Timeline {
        incident_id: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// A dispatcher asks for an elder's incidents of the last 30 days.
    History {
        elder_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// A dispatcher issues (or re-issues) or revokes a contact's family-page link.
    FamilyLink {
        elder_id: String,
        contact_id: String,
        action: LinkAction,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// A dispatcher asks which of an elder's contacts have a live link.
    FamilyLinks {
        elder_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// A family member answers about their elder's incident.
    FamilyAnswer {
        incident_id: u64,
        answer: AnswerVerb,
        /// Minutes to get there, with `going`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        eta_min: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
    /// A family member asks for their elder's incidents of the last 30 days.
    FamilyHistory {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
    },
}

/// A service worker's steps on an order, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerVerb {
    Accept,
    Refuse,
    EnRoute,
    CheckIn,
    CheckOut,
}

/// Where a phone says it is, in an `order` frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrameFix {
    pub lat: f64,
    pub lon: f64,
}

/// A carer's actions, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitVerb {
    CheckIn,
    StillHere,
    CheckOut,
    Help,
}

/// A family member's answers, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerVerb {
    Seen,
    Going,
    Fine,
    CannotHelp,
}

/// The dispatcher actions, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
    #[error("elder_id is not a valid identifier")]
    BadElderId,
    #[error("this frame is for an elder's family")]
    NotFamily,
    #[error("an order's accept needs appointment_at")]
    MissingAppointment,
}

impl FrameError {
    pub fn as_label(self) -> &'static str {
        match self {
            FrameError::Malformed => "malformed",
            FrameError::NotAResponder => "not_a_responder",
            FrameError::NotADispatcher => "not_a_dispatcher",
            FrameError::BadLocation => "bad_location",
            FrameError::MissingResponder => "missing_responder",
            FrameError::BadElderId => "bad_elder_id",
            FrameError::NotFamily => "not_family",
            FrameError::MissingAppointment => "missing_appointment",
        }
    }
}

/// The `request_id` field of a frame, whichever it is (borrowed as the frame is).
macro_rules! request_id_of {
    ($frame:expr) => {
        match $frame {
            ClientFrame::Accept { request_id, .. }
            | ClientFrame::Decline { request_id, .. }
            | ClientFrame::Withdraw { request_id, .. }
            | ClientFrame::EnRoute { request_id, .. }
            | ClientFrame::OnScene { request_id, .. }
            | ClientFrame::Resolve { request_id, .. }
            | ClientFrame::Duty { request_id, .. }
            | ClientFrame::Location { request_id, .. }
            | ClientFrame::Visit { request_id, .. }
            | ClientFrame::Order { request_id, .. }
            | ClientFrame::Command { request_id, .. }
            | ClientFrame::Suggest { request_id, .. }
            | ClientFrame::Timeline { request_id, .. }
            | ClientFrame::History { request_id, .. }
            | ClientFrame::FamilyLink { request_id, .. }
            | ClientFrame::FamilyLinks { request_id, .. }
            | ClientFrame::FamilyAnswer { request_id, .. }
            | ClientFrame::FamilyHistory { request_id, .. } => request_id,
        }
    };
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

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("client frames serialise")
    }

    pub fn request_id(&self) -> Option<&str> {
        request_id_of!(self).as_deref()
    }

    /// A dispatcher's `command` frame with its one detail where the action reads it: the
    /// responder to assign, the outcome to resolve or close with, the reason to cancel or
    /// call a false alarm, a note's text, whom a call was with, an escalation's number.
    pub fn command(
        incident_id: u64,
        action: DispatcherVerb,
        detail: Option<String>,
        request_id: Option<String>,
    ) -> Self {
        let mut frame = ClientFrame::Command {
            incident_id,
            action,
            responder_id: None,
            reason: None,
            outcome: None,
            text: None,
            who: None,
            number: None,
            reference: None,
            alarm: None,
            request_id,
        };
        if let ClientFrame::Command { responder_id, reason, outcome, text, who, number, .. } = &mut frame {
            let slot = match action {
                DispatcherVerb::Assign => responder_id,
                DispatcherVerb::Resolve | DispatcherVerb::Close => outcome,
                DispatcherVerb::Cancel | DispatcherVerb::FalseAlarm => reason,
                DispatcherVerb::Note => text,
                DispatcherVerb::Call => who,
                DispatcherVerb::Escalate => number,
                DispatcherVerb::TakeOffLadder
                | DispatcherVerb::Acknowledge
                | DispatcherVerb::Claim
                | DispatcherVerb::Release => return frame,
            };
            *slot = detail;
        }
        frame
    }

    /// Gives the frame the id its `result` will echo.
    pub fn set_request_id(&mut self, id: Option<String>) {
        *request_id_of!(self) = id;
    }

    /// The request this frame makes, for a caller of this kind.
    pub fn into_request(self, caller: &Caller) -> Result<Request, FrameError> {
        // A family member may answer and read their elder's history, and nothing else.
        match (caller, self) {
            (Caller::Family { .. }, ClientFrame::FamilyAnswer { incident_id, answer, eta_min, .. }) => {
                let answer = match answer {
                    AnswerVerb::Seen => FamilyAnswer::Seen,
                    // No ETA is refused by the engine as out of range, like a zero.
                    AnswerVerb::Going => FamilyAnswer::Going { eta_min: eta_min.unwrap_or(0) },
                    AnswerVerb::Fine => FamilyAnswer::Fine,
                    AnswerVerb::CannotHelp => FamilyAnswer::CannotHelp,
                };
                Ok(Request::FamilyAnswer { incident: IncidentId(incident_id), answer })
            }
            (Caller::Family { .. }, ClientFrame::FamilyHistory { .. }) => Ok(Request::FamilyHistory),
            (Caller::Family { .. }, _) => Err(FrameError::NotADispatcher),
            // An administrator keeps the ledger (over REST) and works no incidents.
            (Caller::Admin { .. }, _) => Err(FrameError::NotADispatcher),
            (_, ClientFrame::FamilyAnswer { .. } | ClientFrame::FamilyHistory { .. }) => Err(FrameError::NotFamily),
            (Caller::Responder(_), ClientFrame::FamilyLink { .. } | ClientFrame::FamilyLinks { .. }) => {
                Err(FrameError::NotADispatcher)
            }
            (_, ClientFrame::FamilyLink { elder_id, contact_id, action, .. }) => {
                let elder = ElderId::parse(elder_id).map_err(|_| FrameError::BadElderId)?;
                Ok(Request::FamilyLink { elder, contact: contact_id, action })
            }
            (_, ClientFrame::FamilyLinks { elder_id, .. }) => {
                ElderId::parse(elder_id).map(|elder| Request::FamilyLinks { elder }).map_err(|_| FrameError::BadElderId)
            }
            (_, frame) => frame.into_staff_request(caller),
        }
    }

    /// The request a responder's or a dispatcher's frame makes.
    fn into_staff_request(self, caller: &Caller) -> Result<Request, FrameError> {
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
            ClientFrame::Decline { incident_id, reason, .. } => {
                respond(incident_id, ResponderAction::Decline { reason })
            }
            ClientFrame::Withdraw { incident_id, reason, .. } => {
                respond(incident_id, ResponderAction::Withdraw { reason })
            }
            ClientFrame::EnRoute { incident_id, .. } => respond(incident_id, ResponderAction::EnRoute),
            ClientFrame::OnScene { incident_id, .. } => respond(incident_id, ResponderAction::OnScene),
            ClientFrame::Resolve { incident_id, outcome, .. } => {
                respond(incident_id, ResponderAction::Resolve { outcome })
            }
            ClientFrame::Duty { on, .. } if responder => Ok(Request::Duty { on }),
            ClientFrame::Location { lat, lon, .. } if responder => {
                Coordinates::new(lat, lon).map(|at| Request::Location { at }).map_err(|_| FrameError::BadLocation)
            }
            ClientFrame::Visit { action, elder_id, lat, lon, .. } if responder => {
                let at = Coordinates::new(lat, lon).map_err(|_| FrameError::BadLocation)?;
                let action = match action {
                    VisitVerb::CheckIn => {
                        let elder = elder_id.ok_or(FrameError::BadElderId)?;
                        VisitAction::CheckIn {
                            elder_id: ElderId::parse(elder).map_err(|_| FrameError::BadElderId)?,
                            at,
                        }
                    }
                    VisitVerb::StillHere => VisitAction::StillHere { at },
                    VisitVerb::CheckOut => VisitAction::CheckOut { at },
                    VisitVerb::Help => VisitAction::Help { at },
                };
                Ok(Request::Visit(action))
            }
            ClientFrame::Order { order_id, action, appointment_at, reason, at, done, .. } if responder => {
                use anxin_core::WorkerAction as W;
                let action = match action {
                    WorkerVerb::Accept => {
                        W::Accept { appointment_at: appointment_at.ok_or(FrameError::MissingAppointment)? }
                    }
                    WorkerVerb::Refuse => W::Refuse { reason: reason.unwrap_or_default() },
                    WorkerVerb::EnRoute => W::EnRoute,
                    WorkerVerb::CheckIn => {
                        let at = at.ok_or(FrameError::BadLocation)?;
                        W::CheckIn { at: Coordinates::new(at.lat, at.lon).map_err(|_| FrameError::BadLocation)? }
                    }
                    WorkerVerb::CheckOut => W::CheckOut { done: done.unwrap_or_default() },
                };
                Ok(Request::WorkerAct { order: anxin_core::OrderId(order_id), action })
            }
            ClientFrame::Duty { .. }
            | ClientFrame::Location { .. }
            | ClientFrame::Visit { .. }
            | ClientFrame::Order { .. } => Err(FrameError::NotAResponder),
            ClientFrame::Command { .. }
            | ClientFrame::Suggest { .. }
            | ClientFrame::Timeline { .. }
            | ClientFrame::History { .. }
                if responder =>
            {
                Err(FrameError::NotADispatcher)
            }
            ClientFrame::Suggest { incident_id, .. } => Ok(Request::Suggest { incident: IncidentId(incident_id) }),
            ClientFrame::Timeline { incident_id, .. } => Ok(Request::Timeline { incident: IncidentId(incident_id) }),
            ClientFrame::History { elder_id, .. } => {
                ElderId::parse(elder_id).map(|elder| Request::History { elder }).map_err(|_| FrameError::BadElderId)
            }
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
                alarm,
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
                    DispatcherVerb::Acknowledge => DispatcherAction::Acknowledge { alarm },
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
            ClientFrame::FamilyLink { .. }
            | ClientFrame::FamilyLinks { .. }
            | ClientFrame::FamilyAnswer { .. }
            | ClientFrame::FamilyHistory { .. } => unreachable!("read by into_request"),
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
        let history = parse(r#"{"type":"history","elder_id":"e-4","request_id":"q"}"#).unwrap();
        assert_eq!(history.request_id(), Some("q"));
        assert_eq!(history.clone().into_request(&r), Err(FrameError::NotADispatcher));
        assert_eq!(
            history.into_request(&d),
            Ok(Request::History { elder: anxin_core::ElderId::parse("e-4").unwrap() })
        );
        let bad = parse(r#"{"type":"history","elder_id":""}"#).unwrap();
        assert_eq!(bad.into_request(&d), Err(FrameError::BadElderId), "not an elder id");
    }

    #[test]
    fn a_built_command_carries_its_detail_where_its_action_reads_it() {
        let d = Caller::Dispatcher { id: "王".into(), supervisor: false };
        let request = |action, detail: &str| {
            let mut frame = ClientFrame::command(7, action, Some(detail.into()), None);
            frame.set_request_id(Some("c-1".into()));
            assert_eq!(frame.request_id(), Some("c-1"));
            let wire = ClientFrame::from_json(&frame.to_json()).expect("it reads back");
            assert_eq!(wire, frame);
            match frame.into_request(&d) {
                Ok(Request::Dispatch { action, .. }) => action,
                other => panic!("{other:?}"),
            }
        };
        let r2 = ResponderId::parse("r2").unwrap();
        assert_eq!(request(DispatcherVerb::Assign, "r2"), DispatcherAction::Assign { responder: r2 });
        assert_eq!(
            request(DispatcherVerb::Cancel, "by mistake"),
            DispatcherAction::Cancel { reason: "by mistake".into() }
        );
        assert_eq!(request(DispatcherVerb::Close, "fine"), DispatcherAction::Close { outcome: "fine".into() });
        assert_eq!(
            request(DispatcherVerb::Escalate, "120"),
            DispatcherAction::Escalate { number: "120".into(), reference: None }
        );
        assert_eq!(request(DispatcherVerb::Claim, "ignored"), DispatcherAction::Claim);
    }
}
