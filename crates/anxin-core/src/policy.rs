//! The dispatch policy: the knobs a district sets (distances, timeouts, ladders per kind,
//! speeds, emergency numbers), with defaults it can start from.

use crate::incident::IncidentKind;
use crate::registry::TravelMode;
use std::collections::BTreeMap;

/// The knobs of dispatch, all with defaults a district can start from.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// A responder further than this (great circle) is not offered the job.
    pub max_offer_distance_m: f64,
    /// A device fix less accurate than this is not trusted over the home address.
    pub max_fix_accuracy_m: f64,
    /// A device fix further than this from home is taken for a broken fix.
    pub max_fix_distance_from_home_m: f64,
    /// A device clock further ahead of ours than this is not trusted.
    pub max_clock_ahead_ms: i64,
    /// A device clock further behind ours than this is not trusted.
    pub max_clock_behind_ms: i64,
    /// How long a message id is remembered in memory for deduplication.
    pub dedup_window_ms: i64,
    /// A repeat press this soon after the last one counted on the same open incident is
    /// stored but changes nothing (a stuck button, a panicking thumb): no event, no delta.
    pub repeat_press_interval_ms: i64,
    /// How long a responder has to accept an offer.
    pub offer_timeout_ms: i64,
    /// The escalation ladder of each emergency kind; a kind not listed uses
    /// [`LadderPolicy::default`].
    pub ladders: BTreeMap<IncidentKind, LadderPolicy>,
    /// Whom the first rung offers: the nearest responders, or only the elder's own station's.
    pub matching: Matching,
    /// An emergency that finds nobody free to offer takes a responder from another
    /// incident's extra parallel offers (one of two or more out there at once), so that
    /// offering the soonest few at once never leaves another emergency with no offer at all
    /// when responders are scarce (a surge).
    pub yield_extra_offers: bool,
    /// Offers cross zone borders: a press near a border may be offered a neighbouring zone's
    /// responder when they get there soonest. A responder of a zone this engine runs is
    /// offered at once (and held for the other zone in their row, so that the zone's next
    /// owner knows); one of a zone run elsewhere only once that zone's owner has held them
    /// for the incident ([`crate::border`]). `false`: offers stay within the incident's zone.
    pub border_offers: bool,
    /// How long a neighbouring zone's owner has to answer a request to hold one of its
    /// responders; unanswered, the ladder goes on without them.
    pub border_answer_ms: i64,
    /// How long a neighbouring zone's responder it could not spare is not asked for again.
    pub border_refused_ms: i64,
    /// How long the station's duty line has before a dispatcher is called in.
    pub station_timeout_ms: i64,
    /// How often a dispatcher is reminded of an incident waiting for them.
    pub reminder_interval_ms: i64,
    /// How long a responder who accepted has to report on scene (telecare services use 30 min).
    pub on_scene_within_ms: i64,
    /// Speeds by travel mode, metres per second, over the road distance.
    pub foot_mps: f64,
    pub ebike_mps: f64,
    pub car_mps: f64,
    /// Road distance over great-circle distance, for travel-time estimates in a city.
    pub detour_factor: f64,
    /// The service circle of a station that does not set its own, in minutes.
    pub default_service_circle_min: u32,
    /// How long a responder's phone fix counts; then they are placed at their station.
    pub max_fix_age_ms: i64,
    /// How long a dispatcher may have no console connected before their claims end (and
    /// whatever still needs a person alarms again); signing out ends them at once.
    pub claim_offline_release_ms: i64,
    /// How long the contacts told of an emergency have to answer before the next contact in
    /// the elder's list is told.
    pub family_escalate_after_ms: i64,
    /// The centre's offset from UTC in minutes (480 for China), for contacts' quiet hours.
    pub utc_offset_min: i32,
    /// The number for an ambulance (falls, SOS presses and unreadable messages are taken as
    /// medical until a person knows better).
    pub medical_number: String,
    /// The number for the fire service (smoke, heat or gas alarms).
    pub fire_number: String,
    /// The number for the police (break-ins).
    pub police_number: String,
    /// When a device counts as silent or flat (see [`crate::health`]).
    pub health: crate::health::HealthPolicy,
    /// When an elder living alone counts as abnormally quiet (see [`crate::activity`]).
    pub activity: crate::activity::ActivityPolicy,
    /// The scheduled welfare programme's retries and overdue time (see [`crate::programme`]).
    pub programme: crate::programme::ProgrammePolicy,
    /// Carers' visits: the check-in radius and the lone-worker timer (see [`crate::carer`]).
    pub carers: crate::carer::CarerPolicy,
    /// The service lane's categories, offers and allowances (see [`crate::service`]).
    pub services: crate::service::ServicePolicy,
    /// The number a hotline call nobody answers goes to after the station's duty line (a
    /// supervisor's phone, a partner centre); none: the caller is told nobody answered, and
    /// a dispatcher calls back (see [`crate::telephony`]).
    pub call_fallback_number: Option<String>,
}

/// How an emergency kind climbs the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LadderPolicy {
    /// Responders offered the incident in all before the next rung (0: skip the responders).
    pub offers: u32,
    /// Offers out at once: 1 offers one responder at a time; more offers the nearest few
    /// together, the first to accept wins and the others are withdrawn.
    pub parallel: u32,
    /// Whether the station's duty line is a rung between the responders and a dispatcher.
    pub station: bool,
}

/// Three offers, all at once: in the simulated Xishan day one responder at a time had 93%
/// of emergencies accepted within 60 s and three at once 99% (README, "The care outcome").
impl Default for LadderPolicy {
    fn default() -> Self {
        Self { offers: 3, parallel: 3, station: true }
    }
}

/// Whom the ladder's first rung offers an incident to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Matching {
    /// Available responders of any station, soonest to arrive first, inside their station's
    /// service circle.
    #[default]
    Nearest,
    /// Only responders of the elder's own station (the one nearest their home), soonest to
    /// arrive first, however far: how many services work without a matcher. Kept to compare.
    OwnStation,
}

impl Matching {
    pub fn as_str(self) -> &'static str {
        match self {
            Matching::Nearest => "nearest",
            Matching::OwnStation => "own_station",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Matching::Nearest, Matching::OwnStation].into_iter().find(|m| m.as_str() == s)
    }
}

impl Policy {
    /// Estimated minutes to travel `distance_m` (great circle) by `mode`.
    pub fn travel_min(&self, distance_m: f64, mode: TravelMode) -> f64 {
        let speed = match mode {
            TravelMode::Foot => self.foot_mps,
            TravelMode::Ebike => self.ebike_mps,
            TravelMode::Car => self.car_mps,
        };
        distance_m * self.detour_factor / speed / 60.0
    }

    /// The skill a responder must have to be offered an incident of this kind.
    pub fn required_skill(&self, kind: IncidentKind) -> Option<&'static str> {
        match kind {
            IncidentKind::Fall => Some("first_aid"),
            _ => None,
        }
    }

    /// The emergency number that fits an incident of this kind, when one does.
    pub fn emergency_number(&self, kind: IncidentKind) -> Option<String> {
        match kind {
            IncidentKind::Fall | IncidentKind::Sos | IncidentKind::Unreadable => Some(self.medical_number.clone()),
            IncidentKind::Fire => Some(self.fire_number.clone()),
            IncidentKind::Intrusion => Some(self.police_number.clone()),
            // A call is what the dispatcher hears it is: no number until they know.
            IncidentKind::Service | IncidentKind::Welfare | IncidentKind::LoneWorker | IncidentKind::Call => None,
        }
    }

    /// The emergency number shown from the start for kinds whose service is called whoever
    /// goes (fire, police); `None` for the others, whose number shows when nobody is going.
    pub fn standing_number(&self, kind: IncidentKind) -> Option<String> {
        match kind {
            IncidentKind::Fire | IncidentKind::Intrusion => self.emergency_number(kind),
            _ => None,
        }
    }

    /// The ladder incidents of this kind climb.
    pub fn ladder(&self, kind: IncidentKind) -> LadderPolicy {
        self.ladders.get(&kind).copied().unwrap_or_default()
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_offer_distance_m: 5_000.0,
            max_fix_accuracy_m: 500.0,
            max_fix_distance_from_home_m: 100_000.0,
            max_clock_ahead_ms: 5 * 60 * 1000,
            max_clock_behind_ms: 24 * 60 * 60 * 1000,
            dedup_window_ms: 7 * 24 * 60 * 60 * 1000,
            repeat_press_interval_ms: 2_000,
            offer_timeout_ms: 60_000,
            ladders: IncidentKind::EMERGENCIES.into_iter().map(|k| (k, LadderPolicy::default())).collect(),
            matching: Matching::Nearest,
            yield_extra_offers: true,
            border_offers: true,
            border_answer_ms: 3_000,
            border_refused_ms: 30_000,
            station_timeout_ms: 120_000,
            reminder_interval_ms: 60_000,
            on_scene_within_ms: 30 * 60_000,
            medical_number: "120".to_string(),
            fire_number: "119".to_string(),
            police_number: "110".to_string(),
            max_fix_age_ms: 10 * 60_000,
            claim_offline_release_ms: 2 * 60_000,
            family_escalate_after_ms: 5 * 60_000,
            utc_offset_min: 480,
            foot_mps: 1.2,
            ebike_mps: 4.0,
            car_mps: 6.0,
            detour_factor: 1.3,
            default_service_circle_min: 15,
            health: crate::health::HealthPolicy::default(),
            activity: crate::activity::ActivityPolicy::default(),
            programme: crate::programme::ProgrammePolicy::default(),
            carers: crate::carer::CarerPolicy::default(),
            services: crate::service::ServicePolicy::default(),
            call_fallback_number: None,
        }
    }
}
