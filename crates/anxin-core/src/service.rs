//! The service lane: home-care services (meals, cleaning, repairs, escort…) ordered for an
//! elder, matched to a contracted provider, tracked to the door and paid within the elder's
//! monthly allowance.
//!
//! It is kept apart from emergencies on purpose. An order is a [`ServiceOrder`], not an
//! incident: it has its own numbering, its own log ([`OrderEvent`]), its own timers and its
//! own workers (responders whose ledger entry names a provider, see
//! [`crate::registry::Responder::provider_id`]). The emergency ladder never offers a job to a
//! service worker; only a dispatcher can send one to an emergency next door, and that takes
//! the worker off their order ([`OrderChange::WorkerRedirected`]).
//!
//! Like incidents, an order changes in one way only: the engine builds an [`OrderChange`] and
//! [`ServiceOrder::apply`] applies it, so the log and the row never tell different stories.
//! Money is in fen (1/100 yuan), whole numbers, so that sums are exact.

use crate::geo::Coordinates;
use crate::ids::{ElderId, IncidentId, ProviderId, ResponderId, StationId, Timestamp};
use crate::incident::Actor;
use serde::{Deserialize, Serialize};

/// An order, numbered by the engine in the order orders are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderId(pub u64);

impl std::fmt::Display for OrderId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The service categories the district buys (`[services] categories` replaces the list).
/// Ids are what orders, prices and reports name; the pages translate them.
pub const DEFAULT_CATEGORIES: [(&str, u32); 16] = [
    ("meals", 60),
    ("meal_delivery", 30),
    ("cleaning", 120),
    ("bathing", 120),
    ("haircut", 240),
    ("shopping", 120),
    ("goods_delivery", 120),
    ("escort", 60),
    ("medical_help", 30),
    ("rehabilitation", 240),
    ("health_advice", 240),
    ("housekeeping", 240),
    ("repair", 60),
    ("drain_clearing", 60),
    ("counselling", 240),
    ("legal_advice", 1440),
];

/// One category the centre takes orders for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    pub id: String,
    /// The target for a provider to accept an order of this category, in minutes from when
    /// it was placed (the report counts orders accepted within it).
    pub accept_within_min: u32,
}

/// The knobs of the service lane (`[services]` in the configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePolicy {
    pub categories: Vec<Category>,
    /// How long a provider has to accept an offered order before it goes to the next.
    pub offer_timeout_ms: i64,
    /// How far from the elder's registered home a worker may check in.
    pub checkin_radius_m: f64,
    /// The monthly allowance by the elder's level of need (1 = most), in fen: Guandu's
    /// 300, 200 and 100 yuan.
    pub monthly_allowance_fen: Vec<u32>,
}

impl Default for ServicePolicy {
    fn default() -> Self {
        Self {
            categories: DEFAULT_CATEGORIES
                .iter()
                .map(|(id, min)| Category { id: (*id).to_string(), accept_within_min: *min })
                .collect(),
            offer_timeout_ms: 15 * 60_000,
            checkin_radius_m: 200.0,
            monthly_allowance_fen: vec![30_000, 20_000, 10_000],
        }
    }
}

impl ServicePolicy {
    pub fn category(&self, id: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.id == id)
    }

    /// An elder's monthly allowance in fen: none without a level, or with one the district
    /// does not fund.
    pub fn allowance_fen(&self, level: Option<u8>) -> u32 {
        level
            .and_then(|l| usize::from(l).checked_sub(1))
            .and_then(|i| self.monthly_allowance_fen.get(i))
            .copied()
            .unwrap_or(0)
    }
}

/// What a provider offers in one category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderOffer {
    pub category: String,
    /// What the district pays the provider for one order, in fen.
    pub price_fen: u32,
    /// How many orders of this category the provider takes on one local day.
    pub daily_capacity: u32,
}

/// Where a provider serves: the circles of some stations (each station's service circle,
/// travelled by e-bike), or GeoJSON polygons drawn on a map (longitude first, as GeoJSON has
/// it; holes allowed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ServiceArea {
    Stations { stations: Vec<StationId> },
    Polygon { coordinates: Vec<Vec<[f64; 2]>> },
    MultiPolygon { coordinates: Vec<Vec<Vec<[f64; 2]>>> },
}

impl ServiceArea {
    /// Whether a point lies in a drawn area (`None` for stations' circles, which need the
    /// stations: see `Engine`).
    pub fn polygon_contains(&self, at: Coordinates) -> Option<bool> {
        use geo::Contains;
        let ring = |r: &Vec<[f64; 2]>| geo::LineString::from(r.iter().map(|p| (p[0], p[1])).collect::<Vec<_>>());
        let polygon = |rings: &Vec<Vec<[f64; 2]>>| {
            let mut rings = rings.iter();
            let outer = rings.next().map(ring).unwrap_or_else(|| geo::LineString::new(vec![]));
            geo::Polygon::new(outer, rings.map(ring).collect())
        };
        let point = geo::Point::new(at.lon(), at.lat());
        match self {
            ServiceArea::Stations { .. } => None,
            ServiceArea::Polygon { coordinates } => Some(polygon(coordinates).contains(&point)),
            ServiceArea::MultiPolygon { coordinates } => Some(coordinates.iter().any(|p| polygon(p).contains(&point))),
        }
    }

    /// What is wrong with a drawn area, if anything: a ring needs 4 or more positions, the
    /// last the first, each a real longitude and latitude.
    pub fn check(&self) -> Result<(), String> {
        let ring = |r: &Vec<[f64; 2]>| -> Result<(), String> {
            if r.len() < 4 || r.first() != r.last() {
                return Err("each ring needs at least 4 positions, the last the same as the first".into());
            }
            match r.iter().find(|p| !(-180.0..=180.0).contains(&p[0]) || !(-90.0..=90.0).contains(&p[1])) {
                Some(p) => Err(format!("[{}, {}] is not a [longitude, latitude]", p[0], p[1])),
                None => Ok(()),
            }
        };
        match self {
            ServiceArea::Stations { stations } if stations.is_empty() => Err("name at least one station".into()),
            ServiceArea::Stations { .. } => Ok(()),
            ServiceArea::Polygon { coordinates } if coordinates.is_empty() => Err("a polygon needs a ring".into()),
            ServiceArea::Polygon { coordinates } => coordinates.iter().try_for_each(ring),
            ServiceArea::MultiPolygon { coordinates }
                if coordinates.iter().any(Vec::is_empty) || coordinates.is_empty() =>
            {
                Err("each polygon needs a ring".into())
            }
            ServiceArea::MultiPolygon { coordinates } => coordinates.iter().flatten().try_for_each(ring),
        }
    }
}

/// A provider's opening hours, local time, minutes after midnight: `from == to` is all day
/// (the default); `to < from` runs past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Hours {
    pub from_min: u16,
    pub to_min: u16,
}

impl Hours {
    /// Whether the local minute of the day `m` is inside the hours.
    pub fn open_at(self, m: u16) -> bool {
        let (f, t) = (self.from_min, self.to_min);
        f == t || (f < t && (f..t).contains(&m)) || (t < f && (m >= f || m < t))
    }

    pub fn parse(s: &str) -> Option<Hours> {
        let minute = |s: &str| -> Option<u16> {
            let (h, m) = s.trim().split_once(':')?;
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (h <= 24 && m < 60 && h * 60 + m <= 1440).then_some((h * 60 + m) % 1440)
        };
        let (f, t) = s.split_once('-')?;
        Some(Hours { from_min: minute(f)?, to_min: minute(t)? })
    }
}

impl std::fmt::Display for Hours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{}", hm(self.from_min), hm(self.to_min))
    }
}

/// A contracted provider, as the ledger holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provider {
    pub id: ProviderId,
    pub name: String,
    /// The provider's desk, for the dispatcher to phone.
    pub phone: Option<String>,
    pub offers: Vec<ProviderOffer>,
    pub area: ServiceArea,
    #[serde(default)]
    pub hours: Hours,
}

impl Provider {
    /// What is wrong with the entry, if anything; `station_known` says whether a station its
    /// area names is in the ledger.
    pub fn check(&self, station_known: impl Fn(&StationId) -> bool) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("a provider needs a name".into());
        }
        self.area.check()?;
        if let ServiceArea::Stations { stations } = &self.area {
            if let Some(s) = stations.iter().find(|s| !station_known(s)) {
                return Err(format!("station {s} is not in the ledger"));
            }
        }
        let mut seen = std::collections::HashSet::new();
        match self.offers.iter().find(|o| !seen.insert(o.category.as_str())) {
            Some(o) => Err(format!("category {} is offered twice", o.category)),
            None => Ok(()),
        }
    }

    pub fn offer(&self, category: &str) -> Option<&ProviderOffer> {
        self.offers.iter().find(|o| o.category == category)
    }
}

/// Who asked for an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum OrderSource {
    /// A dispatcher, on their own (a phone call, say).
    Dispatcher,
    /// A dispatcher calling back after the elder's green `service` key.
    ServicePress { incident: IncidentId },
    /// A welfare call's outcome.
    WelfareCall { incident: IncidentId },
    /// One of the elder's contacts, on the family page.
    Family { contact: String },
}

/// What is asked for: by a dispatcher, a family member or a welfare call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    pub elder_id: ElderId,
    pub category: String,
    /// The wanted window: not before `from`, done by `to`.
    pub from: Timestamp,
    pub to: Timestamp,
    #[serde(default)]
    pub notes: String,
    pub source: OrderSource,
    /// The part over the allowance was shown and the elder agreed to pay it: an order that
    /// would cost the elder money is not placed without it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub self_paid_agreed: bool,
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Offered to a provider, waiting for it to accept.
    Offered,
    /// No provider took it (none fits, or every one refused or let it lapse): a dispatcher's.
    Unmatched,
    /// A provider accepted it with an appointment.
    Accepted,
    /// The worker is on the way.
    EnRoute,
    /// The worker checked in at the door.
    OnSite,
    /// The worker checked out with what was done: waiting for the elder or family.
    Done,
    /// Confirmed by the elder or family, with a rating.
    Confirmed,
    /// The elder or family says it was not done as it should have been: a dispatcher's.
    Disputed,
    /// A dispatcher settled a dispute.
    Settled,
    Cancelled,
}

impl OrderState {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Offered => "offered",
            OrderState::Unmatched => "unmatched",
            OrderState::Accepted => "accepted",
            OrderState::EnRoute => "en_route",
            OrderState::OnSite => "on_site",
            OrderState::Done => "done",
            OrderState::Confirmed => "confirmed",
            OrderState::Disputed => "disputed",
            OrderState::Settled => "settled",
            OrderState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<OrderState> {
        use OrderState::*;
        [Offered, Unmatched, Accepted, EnRoute, OnSite, Done, Confirmed, Disputed, Settled, Cancelled]
            .into_iter()
            .find(|x| x.as_str() == s)
    }

    /// Its life is over: nothing more happens to it.
    pub fn is_terminal(self) -> bool {
        matches!(self, OrderState::Confirmed | OrderState::Settled | OrderState::Cancelled)
    }

    /// A provider holds it (the capacity it takes and the money it will cost count).
    pub fn is_held(self) -> bool {
        matches!(
            self,
            OrderState::Accepted
                | OrderState::EnRoute
                | OrderState::OnSite
                | OrderState::Done
                | OrderState::Confirmed
                | OrderState::Disputed
                | OrderState::Settled
        )
    }

    /// A worker is out on it, and not free for another.
    pub fn worker_busy(self) -> bool {
        matches!(self, OrderState::EnRoute | OrderState::OnSite)
    }
}

/// The offer a provider holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderOffer {
    pub provider_id: ProviderId,
    /// The provider's nearest free worker when it was offered, whose phone shows it; any of
    /// the provider's workers may take it.
    pub worker_id: Option<ResponderId>,
    pub deadline: Timestamp,
}

/// One change to an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OrderChange {
    Placed {
        request: OrderRequest,
    },
    Offered {
        provider_id: ProviderId,
        worker_id: Option<ResponderId>,
        deadline: Timestamp,
    },
    /// The provider refused (`reason`) or let the offer lapse (`reason: None`, by the engine).
    Declined {
        provider_id: ProviderId,
        reason: Option<String>,
    },
    /// No provider (left) fits: `why` says what ruled them out.
    Unmatched {
        why: String,
    },
    Accepted {
        provider_id: ProviderId,
        worker_id: ResponderId,
        appointment_at: Timestamp,
        price_fen: u32,
        subsidy_fen: u32,
        self_paid_fen: u32,
    },
    EnRoute {
        worker_id: ResponderId,
    },
    CheckedIn {
        worker_id: ResponderId,
        at: Coordinates,
        distance_m: f64,
    },
    CheckedOut {
        worker_id: ResponderId,
        done: String,
    },
    Confirmed {
        rating: u8,
        comment: String,
    },
    Disputed {
        reason: String,
    },
    Settled {
        outcome: String,
    },
    Rescheduled {
        from: Timestamp,
        to: Timestamp,
        appointment_at: Option<Timestamp>,
    },
    Cancelled {
        reason: String,
    },
    /// A dispatcher sent the worker to an emergency: the order waits for another worker.
    WorkerRedirected {
        worker_id: ResponderId,
        incident: IncidentId,
    },
    /// Another of the provider's workers takes the order over.
    WorkerChanged {
        worker_id: ResponderId,
    },
    Note {
        text: String,
    },
}

impl OrderChange {
    /// The name stored in the log's `change` column.
    pub fn name(&self) -> &'static str {
        match self {
            OrderChange::Placed { .. } => "placed",
            OrderChange::Offered { .. } => "offered",
            OrderChange::Declined { .. } => "declined",
            OrderChange::Unmatched { .. } => "unmatched",
            OrderChange::Accepted { .. } => "accepted",
            OrderChange::EnRoute { .. } => "en_route",
            OrderChange::CheckedIn { .. } => "checked_in",
            OrderChange::CheckedOut { .. } => "checked_out",
            OrderChange::Confirmed { .. } => "confirmed",
            OrderChange::Disputed { .. } => "disputed",
            OrderChange::Settled { .. } => "settled",
            OrderChange::Rescheduled { .. } => "rescheduled",
            OrderChange::Cancelled { .. } => "cancelled",
            OrderChange::WorkerRedirected { .. } => "worker_redirected",
            OrderChange::WorkerChanged { .. } => "worker_changed",
            OrderChange::Note { .. } => "note",
        }
    }
}

/// One entry in an order's log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub seq: u64,
    pub order_id: OrderId,
    pub at: Timestamp,
    pub actor: Actor,
    pub change: OrderChange,
}

/// An order as it is now: its row in the store and what the pages show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceOrder {
    pub id: OrderId,
    pub elder_id: ElderId,
    pub category: String,
    pub from: Timestamp,
    pub to: Timestamp,
    pub notes: String,
    pub source: OrderSource,
    pub state: OrderState,
    pub placed_at: Timestamp,
    pub placed_by: Actor,
    /// The offer out now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<OrderOffer>,
    /// Providers offered it so far, in order.
    #[serde(default)]
    pub tried: Vec<ProviderId>,
    /// Why it is a dispatcher's, while unmatched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched_why: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_id: Option<ProviderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<ResponderId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appointment_at: Option<Timestamp>,
    /// Set once accepted: the provider's price, split into what the allowance pays and what
    /// the elder pays.
    #[serde(default)]
    pub price_fen: u32,
    #[serde(default)]
    pub subsidy_fen: u32,
    #[serde(default)]
    pub self_paid_fen: u32,
    pub self_paid_agreed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_in_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_out_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub done: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// The emergency its worker was sent to, the last time that happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirected_to: Option<IncidentId>,
    pub updated_at: Timestamp,
}

impl ServiceOrder {
    /// A new order from its `placed` event.
    pub fn placed(id: OrderId, request: &OrderRequest, actor: &Actor, at: Timestamp) -> Self {
        Self {
            id,
            elder_id: request.elder_id.clone(),
            category: request.category.clone(),
            from: request.from,
            to: request.to,
            notes: request.notes.clone(),
            source: request.source.clone(),
            state: OrderState::Unmatched,
            placed_at: at,
            placed_by: actor.clone(),
            offer: None,
            tried: Vec::new(),
            unmatched_why: None,
            provider_id: None,
            worker_id: None,
            accepted_at: None,
            appointment_at: None,
            price_fen: 0,
            subsidy_fen: 0,
            self_paid_fen: 0,
            self_paid_agreed: request.self_paid_agreed,
            checked_in_at: None,
            checked_out_at: None,
            done: String::new(),
            rating: None,
            dispute: None,
            outcome: None,
            redirected_to: None,
            updated_at: at,
        }
    }

    /// Applies one logged change. The engine checks that a change is allowed before it logs
    /// it; this only folds it in, so a replay of the log gives the row.
    pub fn apply(&mut self, e: &OrderEvent) {
        self.updated_at = e.at;
        match &e.change {
            OrderChange::Placed { .. } | OrderChange::Note { .. } => {}
            OrderChange::Offered { provider_id, worker_id, deadline } => {
                self.state = OrderState::Offered;
                self.tried.push(provider_id.clone());
                self.unmatched_why = None;
                self.offer = Some(OrderOffer {
                    provider_id: provider_id.clone(),
                    worker_id: worker_id.clone(),
                    deadline: *deadline,
                });
            }
            OrderChange::Declined { .. } => {
                self.offer = None;
                self.state = OrderState::Unmatched;
            }
            OrderChange::Unmatched { why } => {
                self.offer = None;
                self.state = OrderState::Unmatched;
                self.unmatched_why = Some(why.clone());
            }
            OrderChange::Accepted { provider_id, worker_id, appointment_at, price_fen, subsidy_fen, self_paid_fen } => {
                self.offer = None;
                self.state = OrderState::Accepted;
                self.provider_id = Some(provider_id.clone());
                self.worker_id = Some(worker_id.clone());
                self.accepted_at = Some(e.at);
                self.appointment_at = Some(*appointment_at);
                (self.price_fen, self.subsidy_fen, self.self_paid_fen) = (*price_fen, *subsidy_fen, *self_paid_fen);
            }
            OrderChange::EnRoute { worker_id } => {
                self.state = OrderState::EnRoute;
                self.worker_id = Some(worker_id.clone());
            }
            OrderChange::CheckedIn { .. } => {
                self.state = OrderState::OnSite;
                self.checked_in_at = Some(e.at);
            }
            OrderChange::CheckedOut { done, .. } => {
                self.state = OrderState::Done;
                self.checked_out_at = Some(e.at);
                self.done = done.clone();
            }
            OrderChange::Confirmed { rating, .. } => {
                self.state = OrderState::Confirmed;
                self.rating = Some(*rating);
            }
            OrderChange::Disputed { reason } => {
                self.state = OrderState::Disputed;
                self.dispute = Some(reason.clone());
            }
            OrderChange::Settled { outcome } => {
                self.state = OrderState::Settled;
                self.outcome = Some(outcome.clone());
            }
            OrderChange::Rescheduled { from, to, appointment_at } => {
                (self.from, self.to) = (*from, *to);
                if appointment_at.is_some() {
                    self.appointment_at = *appointment_at;
                }
            }
            OrderChange::Cancelled { reason } => {
                self.state = OrderState::Cancelled;
                self.offer = None;
                self.outcome = Some(reason.clone());
            }
            OrderChange::WorkerRedirected { incident, .. } => {
                self.state = OrderState::Accepted;
                self.worker_id = None;
                self.checked_in_at = None;
                self.redirected_to = Some(*incident);
            }
            OrderChange::WorkerChanged { worker_id } => self.worker_id = Some(worker_id.clone()),
        }
    }

    /// The local day (days since the epoch, local time) the order is wanted on: the day its
    /// capacity is counted against and the month its money is counted in.
    pub fn day(&self, utc_offset_min: i32) -> i64 {
        local_day(self.appointment_at.unwrap_or(self.from), utc_offset_min)
    }
}

/// Days since the epoch, in local time.
pub fn local_day(t: Timestamp, utc_offset_min: i32) -> i64 {
    (t.0 + i64::from(utc_offset_min) * 60_000).div_euclid(86_400_000)
}

/// A local month as `year * 12 + month - 1`, comparable and easy to step.
pub fn local_month(t: Timestamp, utc_offset_min: i32) -> i64 {
    let (y, m, _) = civil_from_days(local_day(t, utc_offset_min));
    y * 12 + i64::from(m) - 1
}

/// The minute of the local day.
pub fn local_minute(t: Timestamp, utc_offset_min: i32) -> u16 {
    ((t.0 + i64::from(utc_offset_min) * 60_000).rem_euclid(86_400_000) / 60_000) as u16
}

/// Year, month (1–12) and day of a count of days since the epoch (Howard Hinnant's civil
/// calendar algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// How a price splits between the allowance and the elder: the allowance pays what it has
/// left this month, the elder the rest.
pub fn split_price(price_fen: u32, allowance_fen: u32, spent_fen: u32) -> (u32, u32) {
    let left = allowance_fen.saturating_sub(spent_fen);
    let subsidy = price_fen.min(left);
    (subsidy, price_fen - subsidy)
}

/// What an order would cost before it is placed: the dearest provider that could take it
/// (so the self-paid part shown is the most it can be), split against the allowance left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub category: String,
    /// Providers that could take it now, best first.
    pub providers: Vec<ProviderId>,
    /// Why none could, when none could.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub none_because: Option<String>,
    pub price_fen: u32,
    pub allowance_fen: u32,
    pub spent_fen: u32,
    pub subsidy_fen: u32,
    pub self_paid_fen: u32,
}

/// Why providers were passed over for an order, counted, so a dispatcher is told what to
/// change (another time, another category) rather than only "nobody".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PassedOver {
    pub category: u32,
    pub area: u32,
    pub hours: u32,
    pub full: u32,
    pub tried: u32,
}

impl PassedOver {
    pub fn explain(&self) -> String {
        let parts: Vec<String> = [
            (self.category, "do not offer the category"),
            (self.area, "do not serve the elder's home"),
            (self.hours, "are closed at the wanted time"),
            (self.full, "are full that day"),
            (self.tried, "were offered it already"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, why)| format!("{n} {why}"))
        .collect();
        if parts.is_empty() {
            "no provider in the ledger".to_string()
        } else {
            format!("no provider fits: {}", parts.join(", "))
        }
    }
}

/// A provider's record of offers, for ranking by past acceptance.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Acceptance {
    pub offered: u32,
    pub accepted: u32,
}

impl Acceptance {
    /// The share accepted, with one accepted and one not assumed beforehand, so that a new
    /// provider is neither first nor last for want of a record.
    pub fn rate(self) -> f64 {
        (f64::from(self.accepted) + 1.0) / (f64::from(self.offered) + 2.0)
    }
}

/// What the centre takes orders for, and who provides it: for the order form and the board.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalogue {
    pub categories: Vec<Category>,
    pub providers: Vec<Provider>,
    /// The allowance by level of need, in fen (level 1 first).
    pub monthly_allowance_fen: Vec<u32>,
}

/// What a worker's phone shows of their orders (in its `hello`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerView {
    pub provider_id: ProviderId,
    pub provider_name: String,
    /// Offers out to the worker's provider and the orders the worker holds, soonest first.
    pub orders: Vec<WorkerOrder>,
    pub checkin_radius_m: u32,
}

/// One order on a worker's phone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerOrder {
    pub order: ServiceOrder,
    pub elder_name: String,
    pub address: String,
    pub home: Coordinates,
    pub phone: Option<String>,
}

/// Why a request about an order was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrderError {
    #[error("order {0} does not exist or is over")]
    UnknownOrder(OrderId),
    #[error("elder {0} is not in the registry")]
    UnknownElder(ElderId),
    #[error("category {0:?} is not one the centre takes orders for")]
    UnknownCategory(String),
    #[error("the wanted window must end after it starts")]
    BadWindow,
    #[error("{0} is not a service worker")]
    NotAWorker(ResponderId),
    #[error("the order is not offered to your provider")]
    NotOffered,
    #[error("the order is not your provider's")]
    NotYours,
    #[error("the order is {state}; that cannot be done now")]
    WrongState { state: &'static str },
    #[error("{missing} is required")]
    Missing { missing: &'static str },
    #[error("the appointment must fall inside the wanted window")]
    AppointmentOutsideWindow,
    #[error(
        "this order costs {self_paid_fen} fen over the elder's allowance: show it and ask again with self_paid_agreed"
    )]
    SelfPaidNotAgreed { self_paid_fen: u32 },
    #[error("you are {distance_m} m from the elder's home; a check-in must be within {radius_m} m")]
    OutOfRadius { distance_m: u32, radius_m: u32 },
    #[error("a rating is 1 to 5")]
    BadRating,
    #[error("worker {0} is out on another order")]
    WorkerBusy(ResponderId),
    #[error("the provider is full that day: choose another day, or rematch")]
    ProviderFull,
    #[error("an accepted order stays in the month its allowance was counted in: cancel it and place a new one")]
    OtherMonth,
}

impl OrderError {
    /// A stable code the pages translate.
    pub fn code(&self) -> &'static str {
        match self {
            OrderError::UnknownOrder(_) => "unknown_order",
            OrderError::UnknownElder(_) => "unknown_elder",
            OrderError::UnknownCategory(_) => "unknown_category",
            OrderError::BadWindow => "bad_window",
            OrderError::NotAWorker(_) => "not_a_worker",
            OrderError::NotOffered => "not_offered",
            OrderError::NotYours => "not_yours",
            OrderError::WrongState { .. } => "wrong_state",
            OrderError::Missing { .. } => "missing",
            OrderError::AppointmentOutsideWindow => "appointment_outside_window",
            OrderError::SelfPaidNotAgreed { .. } => "self_paid_not_agreed",
            OrderError::OutOfRadius { .. } => "out_of_radius",
            OrderError::BadRating => "bad_rating",
            OrderError::WorkerBusy(_) => "worker_busy",
            OrderError::ProviderFull => "provider_full",
            OrderError::OtherMonth => "other_month",
        }
    }
}

/// What a worker does from their phone, or a provider's desk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum WorkerAction {
    Accept { appointment_at: Timestamp },
    Refuse { reason: String },
    EnRoute,
    CheckIn { at: Coordinates },
    CheckOut { done: String },
}

/// What a dispatcher or family member does to an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum OrderAction {
    Cancel {
        reason: String,
    },
    Reschedule {
        from: Timestamp,
        to: Timestamp,
    },
    /// Offer it again to the best provider not yet tried (after an `unmatched`).
    Rematch,
    /// Offer it to this provider, whatever the matching says (a dispatcher's choice).
    OfferTo {
        provider_id: ProviderId,
    },
    Confirm {
        rating: u8,
        #[serde(default)]
        comment: String,
    },
    Dispute {
        reason: String,
    },
    Settle {
        outcome: String,
    },
    Note {
        text: String,
    },
}

/// How a monthly statement is grouped: one part per elder (what each elder's allowance paid
/// and what they paid themselves) or per provider (what the district owes each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatementBy {
    Elder,
    Provider,
}

/// One order on a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementLine {
    pub order_id: OrderId,
    pub elder_id: ElderId,
    pub elder_name: String,
    pub provider_id: ProviderId,
    pub provider_name: String,
    pub category: String,
    /// When it was (to be) done: the appointment.
    pub at: Timestamp,
    pub state: OrderState,
    pub price_fen: u32,
    pub subsidy_fen: u32,
    pub self_paid_fen: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
}

/// Sums over some lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementSums {
    pub orders: u32,
    pub price_fen: u64,
    pub subsidy_fen: u64,
    pub self_paid_fen: u64,
    pub confirmed: u32,
    pub disputed: u32,
}

impl StatementSums {
    fn add(&mut self, l: &StatementLine) {
        self.orders += 1;
        self.price_fen += u64::from(l.price_fen);
        self.subsidy_fen += u64::from(l.subsidy_fen);
        self.self_paid_fen += u64::from(l.self_paid_fen);
        self.confirmed += u32::from(l.state == OrderState::Confirmed);
        self.disputed += u32::from(matches!(l.state, OrderState::Disputed | OrderState::Settled));
    }
}

/// One elder's or provider's part of a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementGroup {
    pub id: String,
    pub name: String,
    pub lines: Vec<StatementLine>,
    pub sums: StatementSums,
}

/// A month's statement: the orders a provider took on (accepted, whatever came of them after
/// but a cancellation) whose appointment fell in the month, for the district's supervision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// `2026-12`.
    pub month: String,
    pub by: StatementBy,
    /// The centre's offset from UTC, for showing times.
    pub utc_offset_min: i32,
    pub groups: Vec<StatementGroup>,
    pub total: StatementSums,
}

/// A local month from `2026-12`: its number (as [`local_month`] gives) and its first and last
/// instants, `[from, to)`.
pub fn parse_month(s: &str, utc_offset_min: i32) -> Option<(i64, Timestamp, Timestamp)> {
    let (y, m) = s.split_once('-')?;
    let (y, m): (i64, u32) = (y.parse().ok()?, m.parse().ok()?);
    if !(1..=12).contains(&m) || !(1970..=9999).contains(&y) || s.len() != 7 {
        return None;
    }
    let start = |y: i64, m: u32| {
        let days = days_from_civil(y, m, 1);
        Timestamp(days * 86_400_000 - i64::from(utc_offset_min) * 60_000)
    };
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    Some((y * 12 + i64::from(m) - 1, start(y, m), start(ny, nm)))
}

/// A local time as `2026-12-05 09:30`.
pub fn local_text(t: Timestamp, utc_offset_min: i32) -> String {
    let (y, m, d) = civil_from_days(local_day(t, utc_offset_min));
    let min = local_minute(t, utc_offset_min);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", min / 60, min % 60)
}

/// Days since the epoch of a civil date (the inverse of [`civil_from_days`]).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Folds orders into the statement of local month `month` (`2026-12`): only orders a provider
/// took on and that were not cancelled, whose appointment fell in the month. `name` gives an
/// elder's or provider's name from its id (`""` when unknown).
pub fn statement(
    month: &str,
    orders: &[ServiceOrder],
    by: StatementBy,
    utc_offset_min: i32,
    elder_name: impl Fn(&ElderId) -> String,
    provider_name: impl Fn(&ProviderId) -> String,
) -> Option<Statement> {
    let (number, _, _) = parse_month(month, utc_offset_min)?;
    let mut groups: std::collections::BTreeMap<String, StatementGroup> = std::collections::BTreeMap::new();
    let mut total = StatementSums::default();
    for o in orders {
        let (Some(provider), true) = (&o.provider_id, o.state.is_held()) else { continue };
        let at = o.appointment_at.unwrap_or(o.from);
        if local_month(at, utc_offset_min) != number {
            continue;
        }
        let line = StatementLine {
            order_id: o.id,
            elder_id: o.elder_id.clone(),
            elder_name: elder_name(&o.elder_id),
            provider_id: provider.clone(),
            provider_name: provider_name(provider),
            category: o.category.clone(),
            at,
            state: o.state,
            price_fen: o.price_fen,
            subsidy_fen: o.subsidy_fen,
            self_paid_fen: o.self_paid_fen,
            rating: o.rating,
        };
        let (id, name) = match by {
            StatementBy::Elder => (line.elder_id.to_string(), line.elder_name.clone()),
            StatementBy::Provider => (line.provider_id.to_string(), line.provider_name.clone()),
        };
        total.add(&line);
        let g = groups.entry(id.clone()).or_insert_with(|| StatementGroup {
            id,
            name,
            lines: Vec::new(),
            sums: StatementSums::default(),
        });
        g.sums.add(&line);
        g.lines.push(line);
    }
    let mut groups: Vec<StatementGroup> = groups.into_values().collect();
    for g in &mut groups {
        g.lines.sort_by_key(|l| (l.at, l.order_id));
    }
    Some(Statement { month: month.to_string(), by, utc_offset_min, groups, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_open_by_day_overnight_and_all_day() {
        let day = Hours::parse("08:00-20:00").unwrap();
        assert!(day.open_at(8 * 60) && day.open_at(19 * 60 + 59) && !day.open_at(20 * 60) && !day.open_at(7 * 60));
        let night = Hours::parse("22:00-06:00").unwrap();
        assert!(night.open_at(23 * 60) && night.open_at(60) && !night.open_at(12 * 60));
        let all = Hours::parse("00:00-24:00").unwrap();
        assert!(all.open_at(0) && all.open_at(1439));
        assert_eq!(Hours::parse("8-20"), None);
        assert_eq!(Hours::parse("08:00-25:00"), None);
        assert_eq!(day.to_string(), "08:00-20:00");
    }

    #[test]
    fn a_price_over_the_allowance_left_is_partly_self_paid() {
        assert_eq!(split_price(5_000, 30_000, 0), (5_000, 0));
        assert_eq!(split_price(5_000, 30_000, 27_000), (3_000, 2_000));
        assert_eq!(split_price(5_000, 30_000, 31_000), (0, 5_000));
        assert_eq!(split_price(5_000, 0, 0), (0, 5_000));
    }

    #[test]
    fn allowance_by_level_of_need() {
        let p = ServicePolicy::default();
        assert_eq!((p.allowance_fen(Some(1)), p.allowance_fen(Some(3))), (30_000, 10_000));
        assert_eq!((p.allowance_fen(Some(4)), p.allowance_fen(Some(0)), p.allowance_fen(None)), (0, 0, 0));
    }

    #[test]
    fn polygons_contain_points_inside_and_not_in_holes() {
        let square = |x0: f64, y0: f64, d: f64| vec![[x0, y0], [x0 + d, y0], [x0 + d, y0 + d], [x0, y0 + d], [x0, y0]];
        let area = ServiceArea::Polygon { coordinates: vec![square(102.0, 25.0, 1.0), square(102.4, 25.4, 0.2)] };
        assert_eq!(area.check(), Ok(()));
        let at = |lat, lon| Coordinates::new(lat, lon).unwrap();
        assert_eq!(area.polygon_contains(at(25.1, 102.1)), Some(true));
        assert_eq!(area.polygon_contains(at(25.5, 102.5)), Some(false), "in the hole");
        assert_eq!(area.polygon_contains(at(26.5, 102.5)), Some(false));
        let open = ServiceArea::Polygon { coordinates: vec![vec![[102.0, 25.0], [103.0, 25.0], [103.0, 26.0]]] };
        assert!(open.check().is_err());
        let swapped = ServiceArea::Polygon { coordinates: vec![square(25.0, 102.0, 1.0)] };
        assert!(swapped.check().unwrap_err().contains("longitude"));
    }

    #[test]
    fn months_parse_to_their_local_bounds() {
        let (n, from, to) = parse_month("2026-12", 480).unwrap();
        assert_eq!(n, 2026 * 12 + 11);
        assert_eq!(civil_from_days(local_day(from, 480)), (2026, 12, 1));
        assert_eq!(local_minute(from, 480), 0);
        assert_eq!(civil_from_days(local_day(to, 480)), (2027, 1, 1));
        assert_eq!(local_month(Timestamp(to.0 - 1), 480), n);
        for bad in ["2026-13", "2026-1", "26-12", "2026/12", "", "2026-00"] {
            assert_eq!(parse_month(bad, 480), None, "{bad}");
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn local_months_and_days() {
        // 2026-12-31T16:30Z is 2027-01-01 00:30 in China.
        let t = Timestamp(1_798_734_600_000);
        assert_eq!(civil_from_days(local_day(t, 480)), (2027, 1, 1));
        assert_eq!(local_month(t, 480), 2027 * 12);
        assert_eq!(local_month(t, 0), 2026 * 12 + 11);
        assert_eq!(local_minute(t, 480), 30);
    }
}
