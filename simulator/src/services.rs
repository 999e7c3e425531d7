//! The service lane played (issue 23): the dispatchers place home-care orders for elders over
//! REST (a quote first; an elder told of a self-paid part may say no), the providers' workers
//! answer offers on their phones' sockets, go to the door (some first check in from a street
//! away, which the engine must refuse) and check out, and the dispatchers confirm each done
//! order with the elder's rating, or take a dispute and settle it, and cancel the orders no
//! provider took. Everything the run saw is written in the [`OrderLog`]; the report's
//! *services* lines are made from it ([`ServicesSummary`]).

use crate::district::{District, Point};
use crate::plan::uniform;
use crate::report::Percentiles;
use crate::scenario::{Scenario, Services};
use crate::sim::{Clock, Ledger, Socket};
use anxin_core::engine::OrderView;
use anxin_core::{OrderState, WorkerView};
use anxin_proto::ws::{ClientFrame, FrameFix, ServerFrame, WorkerVerb};
use futures_util::{SinkExt, StreamExt};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BinaryHeap, HashMap, HashSet};
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::time::sleep_until;
use tokio_tungstenite::tungstenite::Message;

/// An e-bike's speed (the engine's, for `eta_min`), metres a second: the workers ride one.
const WORKER_SPEED_M_S: f64 = 4.0;

/// One order the dispatchers will take, decided before the run from the seed.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedOrder {
    /// Scenario seconds from the start: when the elder (or family) calls.
    pub at_s: f64,
    pub elder: usize,
    pub category: String,
    /// The wanted window, scenario seconds from the start.
    pub from_s: f64,
    pub to_s: f64,
}

/// The orders of the run, in time order: Poisson calls at each elder's rate (by age band,
/// more often with an allowance), shaped by the hour of the day, each for a category drawn
/// by its share, wanted `lead_min` later for `window_min`, inside the providers' hours.
pub fn plan(s: &Scenario, d: &District) -> Vec<PlannedOrder> {
    let Some(sv) = &s.services else { return Vec::new() };
    let Some((open, close)) = sv.open_hours() else { return Vec::new() };
    let mut rng = SmallRng::seed_from_u64(s.run.seed ^ 0x0bde_5e55);
    let weights = &sv.hourly_weights;
    let mean_w = weights.iter().sum::<f64>() / 24.0;
    let max_w = weights.iter().copied().fold(0.0, f64::max);
    // Each elder's calls a scenario second at weight 1.
    let rates: Vec<f64> = d
        .elders
        .iter()
        .map(|e| {
            let factor = if e.need_level.is_some() { sv.with_allowance_factor } else { 1.0 };
            sv.orders_per_1000_per_day.of(e.age_band) / 1000.0 * factor / 86_400.0 / mean_w
        })
        .collect();
    let by_elder = crate::district::cumulative(rates.iter().copied());
    let total = by_elder.last().copied().unwrap_or(0.0);
    let by_category = crate::district::cumulative(sv.categories.iter().map(|c| c.share));
    let duration_s = s.run.hours * 3600.0;
    let peak = total * max_w;
    let mut orders = Vec::new();
    if peak <= 0.0 {
        return orders;
    }
    let hour_of = |t: f64| (s.run.start_hour + t / 3600.0).rem_euclid(24.0);
    let is_open = |h: f64| {
        if open == close {
            true
        } else if open < close {
            (open..close).contains(&h)
        } else {
            h >= open || h < close
        }
    };
    let mut t = 0.0;
    loop {
        t += -(1.0 - rng.random::<f64>()).ln() / peak;
        if t >= duration_s {
            break;
        }
        if rng.random::<f64>() * max_w >= weights[hour_of(t).floor() as usize % 24] {
            continue;
        }
        let elder = crate::district::weighted(&mut rng, &by_elder);
        let category = sv.categories[crate::district::weighted(&mut rng, &by_category)].id.clone();
        let mut from_s = t + uniform(&mut rng, sv.lead_min) * 60.0;
        // A window that would start while the providers are closed starts at the next opening.
        if !is_open(hour_of(from_s)) {
            from_s += (open - hour_of(from_s)).rem_euclid(24.0) * 3600.0;
        }
        let mut to_s = from_s + uniform(&mut rng, sv.window_min) * 60.0;
        // ...and ends by closing time, when that leaves room for a visit.
        if open != close {
            let closing = from_s + (close - hour_of(from_s)).rem_euclid(24.0) * 3600.0;
            if closing < to_s && closing - from_s >= sv.window_min[0] * 60.0 {
                to_s = closing;
            }
        }
        orders.push(PlannedOrder { at_s: t, elder, category, from_s, to_s });
    }
    orders
}

/// An order as the console's `order` frames showed it; times are the engine's, wall-clock
/// milliseconds.
#[derive(Debug, Clone, Default)]
pub struct OrderSeen {
    pub elder_id: String,
    pub category: String,
    pub state: String,
    pub placed_at_ms: i64,
    pub from_ms: i64,
    pub to_ms: i64,
    pub accepted_at_ms: Option<i64>,
    pub checked_out_at_ms: Option<i64>,
    pub price_fen: u32,
    pub subsidy_fen: u32,
    pub self_paid_fen: u32,
    pub rating: Option<u8>,
    /// It was ever left to a dispatcher because no provider took it.
    pub unmatched: bool,
    pub disputed: bool,
    /// Its life is over (confirmed, settled, cancelled).
    pub ended: bool,
}

/// What the console's reader hands the services desk: an order now in a state it acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderNews {
    pub id: u64,
    pub state: OrderState,
}

/// Everything the run saw of the service lane.
#[derive(Debug, Default)]
pub struct OrderLog {
    /// Orders the dispatchers took calls for; quotes answered; orders the elder declined
    /// over a self-paid part; orders placed (id, planned index); refused when placed or
    /// quoted (with samples).
    pub calls: usize,
    pub quoted: usize,
    pub self_paid_shown: usize,
    pub declined_self_paid: usize,
    pub placed: Vec<(u64, usize)>,
    pub refused: usize,
    /// The console's view of each order, by id.
    pub seen: HashMap<u64, OrderSeen>,
    /// The categories' targets to accept, minutes (the catalogue's `accept_within_min`),
    /// and the providers the catalogue lists.
    pub targets: HashMap<String, u32>,
    pub catalogue_providers: usize,
    /// The workers' answers to offers: accepts sent (and taken), refusals, offers let lapse.
    pub accepts_sent: usize,
    pub accepts_taken: usize,
    pub refusals_sent: usize,
    pub lapses_let: usize,
    /// Check-ins first sent from too far, refused `out_of_radius`, and taken (a failure).
    pub far_sent: usize,
    pub far_refused: usize,
    pub far_taken: Vec<String>,
    /// Check-ins from the door taken, check-outs taken.
    pub checked_in: usize,
    pub checked_out: usize,
    /// Emergency jobs a worker's phone was offered (a failure: the ladder must never), and
    /// put on by a dispatcher (allowed).
    pub emergency_offers: Vec<String>,
    pub emergency_assigned: usize,
    /// The dispatchers' steps taken: confirmations, disputes, settlements, cancellations of
    /// orders nobody took.
    pub confirmed_sent: usize,
    pub disputed_sent: usize,
    pub settled_sent: usize,
    pub cancelled_sent: usize,
    /// Frames and requests refused that should not have been, a few described.
    pub surprises: usize,
    pub samples: Vec<String>,
    /// The orders `GET /api/v1/services/orders` listed at the end (open ones), if it answered.
    pub open_at_end: Option<HashSet<u64>>,
}

impl OrderLog {
    fn surprise(&mut self, what: String) {
        self.surprises += 1;
        if self.samples.len() < 10 {
            self.samples.push(what);
        }
    }

    /// Takes in an order frame; returns news for the desk when the order reached a state
    /// the dispatchers act on (done, disputed, unmatched).
    pub(crate) fn order_view(&mut self, v: &OrderView) -> Option<OrderNews> {
        let o = &v.order;
        let seen = self.seen.entry(o.id.0).or_default();
        let before = seen.state.clone();
        seen.elder_id = o.elder_id.to_string();
        seen.category.clone_from(&o.category);
        seen.state = o.state.as_str().to_string();
        seen.placed_at_ms = o.placed_at.millis();
        seen.from_ms = o.from.millis();
        seen.to_ms = o.to.millis();
        seen.accepted_at_ms = o.accepted_at.map(|t| t.millis());
        seen.checked_out_at_ms = o.checked_out_at.map(|t| t.millis());
        (seen.price_fen, seen.subsidy_fen, seen.self_paid_fen) = (o.price_fen, o.subsidy_fen, o.self_paid_fen);
        seen.rating = o.rating;
        seen.unmatched |= o.state == OrderState::Unmatched;
        seen.disputed |= o.state == OrderState::Disputed;
        seen.ended |= o.state.is_terminal();
        let acts = matches!(o.state, OrderState::Done | OrderState::Disputed | OrderState::Unmatched);
        (acts && before != seen.state).then_some(OrderNews { id: o.id.0, state: o.state })
    }
}

/// A minimal HTTP/1.1 exchange on loopback: the status and the body.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookie: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(15), s.read_to_string(&mut answer)).await??;
    let status: u16 = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

/// The desk's steps, due at a wall-clock moment.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    /// Take the call for planned order `i`: quote, ask the elder, place.
    Call(usize),
    Confirm(u64, u8),
    Dispute(u64),
    Settle(u64),
    Cancel(u64),
}

#[derive(Debug, PartialEq, Eq)]
struct Due(Instant, u64, Step);

impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: the heap gives the earliest first.
        other.0.cmp(&self.0).then(other.1.cmp(&self.1))
    }
}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Where the desk and the phones meet the engine, and the run's clock.
#[derive(Debug, Clone)]
pub struct Wire {
    pub http: SocketAddr,
    pub cookie: String,
    pub clock: Clock,
    /// The scenario clock's start, wall-clock milliseconds (the engine's timestamps).
    pub start_ms: i64,
}

impl Wire {
    /// A scenario time as the engine's timestamp.
    fn ms(&self, scenario_s: f64) -> i64 {
        self.start_ms + (scenario_s / self.clock.speedup * 1000.0).round() as i64
    }
}

/// The dispatchers' service desk: takes the planned calls, and acts on the orders as the
/// console shows them. Ends when the run stops, after asking which orders are open.
#[allow(clippy::too_many_arguments)]
pub async fn desk(
    wire: Wire,
    orders: Arc<Vec<PlannedOrder>>,
    district: Arc<District>,
    sv: Services,
    mut news: mpsc::Receiver<OrderNews>,
    ledger: Arc<Mutex<Ledger>>,
    seed: u64,
    mut stop: watch::Receiver<bool>,
) {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xde5c_0de5);
    match http(wire.http, "GET", "/api/v1/services/catalogue", &wire.cookie, None).await {
        Ok((200, body)) => {
            let c: Value = serde_json::from_str(&body).unwrap_or_default();
            let mut l = ledger.lock().unwrap();
            for cat in c["categories"].as_array().into_iter().flatten() {
                if let (Some(id), Some(min)) = (cat["id"].as_str(), cat["accept_within_min"].as_u64()) {
                    l.orders.targets.insert(id.to_string(), min as u32);
                }
            }
            l.orders.catalogue_providers = c["providers"].as_array().map_or(0, Vec::len);
        }
        other => ledger.lock().unwrap().orders.surprise(format!("GET /api/v1/services/catalogue: {other:?}")),
    }
    let mut due = BinaryHeap::new();
    let mut order = 0u64;
    for (i, o) in orders.iter().enumerate() {
        order += 1;
        due.push(Due(wire.clock.at(o.at_s), order, Step::Call(i)));
    }
    let ratings = crate::district::cumulative(sv.ratings.iter().copied());
    let mut planned: HashSet<(u64, &'static str)> = HashSet::new();
    loop {
        let wake = due.peek().map(|d: &Due| d.0);
        tokio::select! {
            _ = stop.changed() => break,
            n = news.recv() => {
                let Some(n) = n else { break };
                let now = Instant::now();
                let after = |rng: &mut SmallRng, r| now + wire.clock.wall(uniform(rng, r) * 60.0);
                let step = match n.state {
                    OrderState::Done if planned.insert((n.id, "done")) => {
                        let at = after(&mut rng, sv.confirm_after_min);
                        if rng.random::<f64>() < sv.dispute_share {
                            Some((at, Step::Dispute(n.id)))
                        } else {
                            Some((at, Step::Confirm(n.id, crate::district::weighted(&mut rng, &ratings) as u8 + 1)))
                        }
                    }
                    OrderState::Disputed if planned.insert((n.id, "disputed")) => {
                        Some((after(&mut rng, sv.settle_after_min), Step::Settle(n.id)))
                    }
                    OrderState::Unmatched if planned.insert((n.id, "unmatched")) => {
                        Some((after(&mut rng, sv.unmatched_cancel_after_min), Step::Cancel(n.id)))
                    }
                    _ => None,
                };
                if let Some((at, step)) = step {
                    order += 1;
                    due.push(Due(at, order, step));
                }
            }
            _ = async { match wake { Some(t) => sleep_until(t.into()).await, None => std::future::pending().await } } => {
                let Due(_, _, step) = due.pop().expect("peeked");
                match step {
                    Step::Call(i) => call(&wire, &orders[i], i, &district, &sv, &ledger, &mut rng).await,
                    Step::Cancel(id) => {
                        let still = ledger.lock().unwrap().orders.seen.get(&id).is_some_and(|o| o.state == "unmatched");
                        if still {
                            let body = json!({"action": "cancel", "reason": "no provider free: the elder was told (simulated)"});
                            act(&wire, id, &body, &ledger, |l| l.cancelled_sent += 1).await;
                        }
                    }
                    Step::Confirm(id, rating) => {
                        let body = json!({"action": "confirm", "rating": rating, "comment": "(simulated)"});
                        act(&wire, id, &body, &ledger, |l| l.confirmed_sent += 1).await;
                    }
                    Step::Dispute(id) => {
                        let body = json!({"action": "dispute", "reason": "not done as agreed (simulated)"});
                        act(&wire, id, &body, &ledger, |l| l.disputed_sent += 1).await;
                    }
                    Step::Settle(id) => {
                        let body = json!({"action": "settle", "outcome": "provider called; half refunded (simulated)"});
                        act(&wire, id, &body, &ledger, |l| l.settled_sent += 1).await;
                    }
                }
            }
        }
    }
    // Which orders are open now: a placed order neither ended nor listed here is lost.
    let open = match http(wire.http, "GET", "/api/v1/services/orders", &wire.cookie, None).await {
        Ok((200, body)) => serde_json::from_str::<Value>(&body).ok().map(|v| {
            v["orders"].as_array().into_iter().flatten().filter_map(|o| o["id"].as_u64()).collect::<HashSet<u64>>()
        }),
        _ => None,
    };
    ledger.lock().unwrap().orders.open_at_end = open;
}

/// One call: the quote, the elder's word on a self-paid part, the order placed.
async fn call(
    wire: &Wire,
    o: &PlannedOrder,
    index: usize,
    district: &District,
    sv: &Services,
    ledger: &Mutex<Ledger>,
    rng: &mut SmallRng,
) {
    let elder = &district.elders[o.elder];
    let mut request = json!({
        "elder_id": elder.id, "category": o.category, "from": wire.ms(o.from_s), "to": wire.ms(o.to_s),
        "notes": "(simulated)", "source": {"from": "dispatcher"},
    });
    ledger.lock().unwrap().orders.calls += 1;
    let quote = match http(wire.http, "POST", "/api/v1/services/quote", &wire.cookie, Some(&request)).await {
        Ok((200, body)) => serde_json::from_str::<Value>(&body).unwrap_or_default(),
        other => {
            let mut l = ledger.lock().unwrap();
            l.orders.refused += 1;
            l.orders.surprise(format!("quote for {}: {other:?}", elder.id));
            return;
        }
    };
    let self_paid = quote["self_paid_fen"].as_u64().unwrap_or(0);
    {
        let mut l = ledger.lock().unwrap();
        l.orders.quoted += 1;
        if self_paid > 0 {
            l.orders.self_paid_shown += 1;
            if rng.random::<f64>() < sv.decline_self_paid {
                l.orders.declined_self_paid += 1;
                return;
            }
        }
    }
    request["self_paid_agreed"] = json!(self_paid > 0);
    match http(wire.http, "POST", "/api/v1/services/orders", &wire.cookie, Some(&request)).await {
        Ok((201, body)) => {
            let id = serde_json::from_str::<Value>(&body).ok().and_then(|v| v["id"].as_u64());
            let mut l = ledger.lock().unwrap();
            match id {
                Some(id) => l.orders.placed.push((id, index)),
                None => l.orders.surprise(format!("an order placed with no id: {body}")),
            }
        }
        // The allowance was spent meanwhile (another order of the elder's accepted): the
        // elder is asked again, as a dispatcher would.
        Ok((409, body)) if body.contains("self_paid_not_agreed") => {
            request["self_paid_agreed"] = json!(true);
            let again = http(wire.http, "POST", "/api/v1/services/orders", &wire.cookie, Some(&request)).await;
            let mut l = ledger.lock().unwrap();
            match again {
                Ok((201, body)) => {
                    if let Some(id) = serde_json::from_str::<Value>(&body).ok().and_then(|v| v["id"].as_u64()) {
                        l.orders.placed.push((id, index));
                    }
                }
                other => {
                    l.orders.refused += 1;
                    l.orders.surprise(format!("order for {}: {other:?}", elder.id));
                }
            }
        }
        other => {
            let mut l = ledger.lock().unwrap();
            l.orders.refused += 1;
            l.orders.surprise(format!("order for {}: {other:?}", elder.id));
        }
    }
}

/// A dispatcher's action on an order; `count` notes it when the engine took it.
async fn act(wire: &Wire, id: u64, body: &Value, ledger: &Mutex<Ledger>, count: impl FnOnce(&mut OrderLog)) {
    let path = format!("/api/v1/services/orders/{id}");
    let answer = http(wire.http, "POST", &path, &wire.cookie, Some(body)).await;
    let mut l = ledger.lock().unwrap();
    match answer {
        Ok((204, _)) => count(&mut l.orders),
        other => l.orders.surprise(format!("{} on order {id}: {other:?}", body["action"])),
    }
}

/// An order a worker took, waiting for its turn.
#[derive(Debug, Clone)]
struct Booked {
    id: u64,
    appointment_s: f64,
    home: Point,
}

/// What a worker's phone sends next, and why.
#[derive(Debug, Clone, PartialEq)]
enum Move {
    Accept {
        id: u64,
        appointment_s: f64,
        home: Point,
    },
    Refuse(u64),
    EnRoute(u64),
    /// A check-in from `at`; `far` when sent from a street away on purpose.
    CheckIn {
        id: u64,
        at: Point,
        far: bool,
    },
    CheckOut(u64),
}

/// A provider's workers as its desk sees them: when each is free of their bookings, where
/// they will be, and how to reach them. The worker an offer names hands it to the colleague
/// who can be there soonest, as a provider's desk does (the engine names the nearest worker
/// not out on a job, and lets any of the provider's workers take it).
#[derive(Debug, Default)]
pub struct Roster {
    /// Worker id → (scenario second free of their bookings, where they are then).
    pub free: BTreeMap<String, (f64, Point)>,
    pub inboxes: HashMap<String, mpsc::UnboundedSender<Handover>>,
}

/// An offer handed to a colleague to accept, with the appointment agreed.
#[derive(Debug, Clone, PartialEq)]
pub struct Handover {
    pub id: u64,
    pub appointment_s: f64,
    pub home: Point,
}

/// What is done about one offer.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Lapse,
    Refuse(u64),
    /// Accept it oneself, or hand it to colleague `to`.
    Accept(Handover),
    Handover(String, Handover),
}

/// One service worker and their phone.
#[derive(Debug)]
pub struct Worker {
    pub id: String,
    pub provider: String,
    /// Takes the provider's offers that name no worker (all were busy when it was offered).
    pub desk: bool,
    pub position: Point,
    pub sv: Services,
    pub wire: Wire,
    pub ledger: Arc<Mutex<Ledger>>,
    pub rng: SmallRng,
    pub roster: Arc<Mutex<Roster>>,
    pub inbox: mpsc::UnboundedReceiver<Handover>,
}

impl Worker {
    pub async fn run(mut self, socket: Socket, mut stop: watch::Receiver<bool>) {
        let (mut sink, mut stream) = socket.split();
        let clock = self.wire.clock;
        let mut decided: HashSet<u64> = HashSet::new();
        let mut queue: Vec<Booked> = Vec::new();
        // Out on an order now; the scenario second the worker is free for the next booking.
        let mut current: Option<u64> = None;
        let mut agenda: BinaryHeap<(std::cmp::Reverse<Instant>, u64)> = BinaryHeap::new();
        let mut moves: HashMap<u64, Move> = HashMap::new();
        let mut asked: HashMap<String, Move> = HashMap::new();
        let mut n = 0u64;
        let mut plan = |agenda: &mut BinaryHeap<_>, moves: &mut HashMap<u64, Move>, at: Instant, m: Move| {
            n += 1;
            agenda.push((std::cmp::Reverse(at), n));
            moves.insert(n, m);
        };
        let radius = self.sv.checkin_radius_m;
        loop {
            let wake = agenda.peek().map(|(t, _)| t.0);
            let frame = tokio::select! {
                _ = stop.changed() => break,
                _ = async { match wake { Some(t) => sleep_until(t.into()).await, None => std::future::pending().await } } => {
                    let (_, k) = agenda.pop().expect("peeked");
                    let Some(m) = moves.remove(&k) else { continue };
                    let request_id = format!("w{k}");
                    let frame = match &m {
                        Move::Accept { id, appointment_s, .. } => order_frame(*id, WorkerVerb::Accept, |f| {
                            if let ClientFrame::Order { appointment_at, .. } = f {
                                *appointment_at = Some(anxin_core::Timestamp(self.wire.ms(*appointment_s)));
                            }
                        }),
                        Move::Refuse(id) => order_frame(*id, WorkerVerb::Refuse, |f| {
                            if let ClientFrame::Order { reason, .. } = f {
                                *reason = Some("fully booked in that window (simulated)".into());
                            }
                        }),
                        Move::EnRoute(id) => order_frame(*id, WorkerVerb::EnRoute, |_| {}),
                        Move::CheckIn { id, at, .. } => order_frame(*id, WorkerVerb::CheckIn, |f| {
                            if let ClientFrame::Order { at: fix, .. } = f {
                                *fix = Some(FrameFix { lat: at.lat, lon: at.lon });
                            }
                        }),
                        Move::CheckOut(id) => order_frame(*id, WorkerVerb::CheckOut, |f| {
                            if let ClientFrame::Order { done, .. } = f {
                                *done = Some("done as ordered (simulated)".into());
                            }
                        }),
                    };
                    let mut frame = frame;
                    frame.set_request_id(Some(request_id.clone()));
                    asked.insert(request_id, m);
                    if sink.send(Message::Text(frame.to_json().into())).await.is_err() {
                        break;
                    }
                    continue;
                }
                h = self.inbox.recv() => {
                    // A colleague handed us an offer: accept it after a word on the phone.
                    let Some(h) = h else { continue };
                    let delay = clock.wall(uniform(&mut self.rng, self.sv.answer_after_min) * 60.0);
                    plan(&mut agenda, &mut moves, Instant::now() + delay, Move::Accept { id: h.id, appointment_s: h.appointment_s, home: h.home });
                    continue;
                }
                m = stream.next() => m,
            };
            let Some(Ok(msg)) = frame else { break };
            let Message::Text(text) = msg else { continue };
            let Ok(frame) = ServerFrame::from_json(text.as_str()) else { continue };
            let now = Instant::now();
            let now_s = clock.scenario_s(now);
            match frame {
                ServerFrame::Job { job: Some(job), .. } => {
                    let mut l = self.ledger.lock().unwrap();
                    if job.state.as_str() == "offered" {
                        l.orders.emergency_offers.push(format!(
                            "worker {} was offered emergency {} by the ladder",
                            self.id, job.incident_id.0
                        ));
                    } else {
                        l.orders.emergency_assigned += 1;
                    }
                }
                ServerFrame::Hello { responder } => {
                    let Some(view) = responder.worker else { continue };
                    for answer in self.offers(&view, &mut decided, now_s) {
                        let delay = clock.wall(uniform(&mut self.rng, self.sv.answer_after_min) * 60.0);
                        let m = match answer {
                            Answer::Accept(h) => {
                                Move::Accept { id: h.id, appointment_s: h.appointment_s, home: h.home }
                            }
                            Answer::Refuse(id) => Move::Refuse(id),
                            Answer::Handover(to, h) => {
                                let inbox = self.roster.lock().unwrap().inboxes.get(&to).cloned();
                                if let Some(inbox) = inbox {
                                    let _ = inbox.send(h);
                                }
                                continue;
                            }
                            Answer::Lapse => continue,
                        };
                        plan(&mut agenda, &mut moves, now + delay, m);
                    }
                }
                ServerFrame::Result(r) => {
                    let Some(m) = r.request_id.as_deref().and_then(|id| asked.remove(id)) else { continue };
                    let code = r.code.clone().or(r.error.clone()).unwrap_or_default();
                    let mut next_job = false;
                    {
                        let mut l = self.ledger.lock().unwrap();
                        let o = &mut l.orders;
                        match (&m, r.ok) {
                            (Move::Accept { id, appointment_s, home }, true) => {
                                o.accepts_taken += 1;
                                queue.push(Booked { id: *id, appointment_s: *appointment_s, home: *home });
                                next_job = current.is_none();
                            }
                            (Move::Accept { id, .. }, false) => {
                                o.surprise(format!("{}: accepting order {id} was refused: {code}", self.id))
                            }
                            (Move::Refuse(_), true) => {}
                            (Move::Refuse(id), false) => {
                                o.surprise(format!("{}: refusing order {id} was refused: {code}", self.id))
                            }
                            (Move::EnRoute(id), true) => {
                                let home = queue_home(&queue, *id).unwrap_or(self.position);
                                let travel_s = self.position.distance_m(home) * 1.3 / WORKER_SPEED_M_S;
                                let far = self.rng.random::<f64>() < self.sv.far_share;
                                let at = if far {
                                    let off = radius + 150.0 + self.rng.random::<f64>() * 450.0;
                                    let angle = self.rng.random::<f64>() * std::f64::consts::TAU;
                                    home.offset(off * angle.cos(), off * angle.sin())
                                } else {
                                    door(home, &mut self.rng)
                                };
                                drop(l);
                                plan(
                                    &mut agenda,
                                    &mut moves,
                                    now + clock.wall(travel_s),
                                    Move::CheckIn { id: *id, at, far },
                                );
                                continue;
                            }
                            (Move::CheckIn { id, far: true, at }, ok) => {
                                o.far_sent += 1;
                                let home = queue_home(&queue, *id).unwrap_or(*at);
                                if ok {
                                    o.far_taken.push(format!(
                                        "{}: a check-in {:.0} m from the home of order {id}'s elder was taken (radius {radius} m)",
                                        self.id,
                                        at.distance_m(home)
                                    ));
                                    o.checked_in += 1;
                                    let stay = uniform(&mut self.rng, self.sv.service_min) * 60.0;
                                    drop(l);
                                    plan(&mut agenda, &mut moves, now + clock.wall(stay), Move::CheckOut(*id));
                                    continue;
                                }
                                if code == "out_of_radius" {
                                    o.far_refused += 1;
                                } else {
                                    o.surprise(format!(
                                        "{}: a far check-in was refused {code}, not out_of_radius",
                                        self.id
                                    ));
                                }
                                // They walk to the door.
                                let walk = 30.0 + self.rng.random::<f64>() * 90.0;
                                let at = door(home, &mut self.rng);
                                drop(l);
                                plan(
                                    &mut agenda,
                                    &mut moves,
                                    now + clock.wall(walk),
                                    Move::CheckIn { id: *id, at, far: false },
                                );
                                continue;
                            }
                            (Move::CheckIn { id, .. }, true) => {
                                o.checked_in += 1;
                                let stay = uniform(&mut self.rng, self.sv.service_min) * 60.0;
                                drop(l);
                                plan(&mut agenda, &mut moves, now + clock.wall(stay), Move::CheckOut(*id));
                                continue;
                            }
                            (Move::CheckOut(id), true) => {
                                o.checked_out += 1;
                                if let Some(home) = queue_home(&queue, *id) {
                                    self.position = home;
                                }
                                // Free from now if the bookings said later, from where they are.
                                if queue.len() <= 1 {
                                    self.roster.lock().unwrap().free.insert(self.id.clone(), (now_s, self.position));
                                }
                                queue.retain(|b| b.id != *id);
                                current = None;
                                next_job = true;
                            }
                            (m, false) => {
                                o.surprise(format!("{}: {m:?} was refused: {code}", self.id));
                                if let Move::EnRoute(id) | Move::CheckIn { id, .. } | Move::CheckOut(id) = m {
                                    queue.retain(|b| b.id != *id);
                                }
                                current = None;
                                next_job = true;
                            }
                        }
                    }
                    if next_job && current.is_none() {
                        // The next booking, soonest appointment first: set off in time for it.
                        queue.sort_by(|a, b| a.appointment_s.total_cmp(&b.appointment_s));
                        if let Some(b) = queue.first() {
                            let travel_s = self.position.distance_m(b.home) * 1.3 / WORKER_SPEED_M_S;
                            let leave_s = (b.appointment_s - travel_s).max(now_s);
                            current = Some(b.id);
                            plan(&mut agenda, &mut moves, clock.at(leave_s), Move::EnRoute(b.id));
                        }
                    }
                }
                _ => {}
            }
        }
    }

    /// The offers on the phone this worker answers and has not yet: each accepted by the
    /// provider's worker who can be there soonest after their bookings, leaving a visit inside
    /// the window (themselves, or a colleague it is handed to), refused when nobody can, or
    /// let lapse.
    fn offers(&mut self, view: &WorkerView, decided: &mut HashSet<u64>, now_s: f64) -> Vec<Answer> {
        let mut out = Vec::new();
        for wo in &view.orders {
            let o = &wo.order;
            let Some(offer) = &o.offer else { continue };
            let mine = match &offer.worker_id {
                Some(w) => w.as_str() == self.id,
                None => self.desk,
            };
            if o.state != OrderState::Offered || !mine || !decided.insert(o.id.0) {
                continue;
            }
            let home = Point { lat: wo.home.lat(), lon: wo.home.lon() };
            let to_s = |ms: i64| (ms - self.wire.start_ms) as f64 / 1000.0 * self.wire.clock.speedup;
            let (from_s, until_s) = (to_s(o.from.millis()), to_s(o.to.millis()));
            let r: f64 = self.rng.random();
            if r >= self.sv.accept_probability + self.sv.refuse_probability {
                self.ledger.lock().unwrap().orders.lapses_let += 1;
                out.push(Answer::Lapse);
                continue;
            }
            let service_s = self.sv.service_min[1] * 60.0;
            // Who can start soonest: after answering, riding over, and after their bookings.
            let mut roster = self.roster.lock().unwrap();
            let soonest = roster
                .free
                .iter()
                .map(|(w, (free, at))| {
                    let travel_s = at.distance_m(home) * 1.3 / WORKER_SPEED_M_S;
                    let start = (now_s + self.sv.answer_after_min[1] * 60.0).max(*free) + travel_s;
                    (w.clone(), from_s.max(start))
                })
                .min_by(|a, b| a.1.total_cmp(&b.1));
            let fits = soonest.filter(|(_, start)| start + service_s <= until_s);
            let mut l = self.ledger.lock().unwrap();
            match fits {
                Some((worker, start_s)) if r < self.sv.accept_probability => {
                    // Somewhat later than the soonest, as people book: up to half the room the
                    // window leaves, at most half an hour.
                    let room = (until_s - service_s - start_s).max(0.0);
                    let appointment_s = start_s + self.rng.random::<f64>() * (room / 2.0).min(1800.0);
                    roster.free.insert(worker.clone(), (appointment_s + service_s, home));
                    l.orders.accepts_sent += 1;
                    let h = Handover { id: o.id.0, appointment_s, home };
                    out.push(if worker == self.id { Answer::Accept(h) } else { Answer::Handover(worker, h) });
                }
                _ => {
                    l.orders.refusals_sent += 1;
                    out.push(Answer::Refuse(o.id.0));
                }
            }
        }
        out
    }
}

fn queue_home(queue: &[Booked], id: u64) -> Option<Point> {
    queue.iter().find(|b| b.id == id).map(|b| b.home)
}

/// A few metres from the home's registered position.
fn door(home: Point, rng: &mut SmallRng) -> Point {
    home.offset(rng.random::<f64>() * 20.0 - 10.0, rng.random::<f64>() * 20.0 - 10.0)
}

fn order_frame(order_id: u64, action: WorkerVerb, fill: impl FnOnce(&mut ClientFrame)) -> ClientFrame {
    let mut f = ClientFrame::Order {
        order_id,
        action,
        appointment_at: None,
        reason: None,
        at: None,
        done: None,
        request_id: None,
    };
    fill(&mut f);
    f
}

/// What the service lane came to, for the report.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ServicesSummary {
    pub providers: usize,
    pub workers: usize,
    /// Elders with an allowance (a level of need), and the allowances a month they hold, yuan.
    pub elders_with_allowance: usize,
    /// Calls taken (orders planned in the run), quoted, with a self-paid part shown, declined
    /// by the elder over it, placed, refused by the engine.
    pub calls: usize,
    pub quoted: usize,
    pub self_paid_shown: usize,
    pub declined_self_paid: usize,
    pub placed: usize,
    pub refused: usize,
    /// By category: (placed, accepted within the target).
    pub by_category: BTreeMap<String, (usize, usize)>,
    /// Accepted by a provider; within the category's `accept_within_min`; placed → accepted,
    /// scenario minutes.
    pub accepted: usize,
    pub accepted_within_target: usize,
    pub placed_to_accepted_min: Percentiles,
    /// Checked out (done), and before the wanted window ended.
    pub done: usize,
    pub done_on_time: usize,
    /// Confirmed with a rating (mean), disputed, settled.
    pub confirmed: usize,
    pub mean_rating: Option<f64>,
    pub disputed: usize,
    pub settled: usize,
    /// Left to a dispatcher by every provider (none fit, refused or lapsed); cancelled.
    pub unmatched: usize,
    pub cancelled: usize,
    /// Still open at the end (as `GET /api/v1/services/orders` listed them).
    pub open_at_end: usize,
    /// The workers: offers accepted, refused, let lapse; check-ins from the door, check-outs.
    pub offers_accepted: usize,
    pub offers_refused: usize,
    pub offers_let_lapse: usize,
    pub checked_in: usize,
    pub checked_out: usize,
    pub far_sent: usize,
    pub far_refused: usize,
    /// Money, yuan: what the allowance paid, what the elders paid themselves, and the
    /// allowance the elders who ordered held for the month.
    pub subsidy_yuan: f64,
    pub self_paid_yuan: f64,
    pub allowance_of_those_served_yuan: f64,
    /// Failures: a far check-in taken; a placed order never seen ended nor open; a worker
    /// offered an emergency by the ladder; the allowance charged more than was left.
    pub far_taken: usize,
    pub lost: usize,
    pub emergency_offers_to_workers: usize,
    pub over_allowance: usize,
    /// Emergencies a dispatcher put a worker on (allowed), and requests refused unexpectedly.
    pub emergency_assigned_to_workers: usize,
    pub surprises: usize,
    pub failures: Vec<String>,
    pub samples: Vec<String>,
}

impl ServicesSummary {
    pub fn new(log: &OrderLog, district: &District, sv: &Services, speedup: f64) -> Self {
        let allowance_fen = |level: Option<u8>| {
            level.and_then(|l| sv.monthly_allowance_yuan.get(usize::from(l) - 1)).map_or(0, |y| y * 100)
        };
        let mut s = ServicesSummary {
            providers: log.catalogue_providers,
            workers: district.responders.iter().filter(|r| r.provider.is_some()).count(),
            elders_with_allowance: district.elders.iter().filter(|e| e.need_level.is_some()).count(),
            calls: log.calls,
            quoted: log.quoted,
            self_paid_shown: log.self_paid_shown,
            declined_self_paid: log.declined_self_paid,
            placed: log.placed.len(),
            refused: log.refused,
            offers_accepted: log.accepts_taken,
            offers_refused: log.refusals_sent,
            offers_let_lapse: log.lapses_let,
            checked_in: log.checked_in,
            checked_out: log.checked_out,
            far_sent: log.far_sent,
            far_refused: log.far_refused,
            far_taken: log.far_taken.len(),
            emergency_offers_to_workers: log.emergency_offers.len(),
            emergency_assigned_to_workers: log.emergency_assigned,
            surprises: log.surprises,
            samples: log.samples.clone(),
            ..Self::default()
        };
        s.failures.extend(log.far_taken.iter().take(5).cloned());
        s.failures.extend(log.emergency_offers.iter().take(5).cloned());
        let minutes = |ms: i64| ms as f64 / 1000.0 * speedup / 60.0;
        let mut to_accept = Vec::new();
        let mut ratings = Vec::new();
        let elders: HashMap<&str, &crate::district::Elder> =
            district.elders.iter().map(|e| (e.id.as_str(), e)).collect();
        // The allowance each elder's accepted orders drew on, in the order they were accepted.
        let mut charged: HashMap<&str, Vec<(i64, u64, u32)>> = HashMap::new();
        let mut served: HashSet<&str> = HashSet::new();
        for &(id, _) in &log.placed {
            let Some(o) = log.seen.get(&id) else {
                match &log.open_at_end {
                    Some(open) if open.contains(&id) => s.open_at_end += 1,
                    _ => {
                        s.lost += 1;
                        if s.failures.len() < 10 {
                            s.failures
                                .push(format!("order {id} was placed and never shown on the console nor listed open"));
                        }
                    }
                }
                continue;
            };
            let entry = s.by_category.entry(o.category.clone()).or_default();
            entry.0 += 1;
            if let Some(a) = o.accepted_at_ms {
                s.accepted += 1;
                let m = minutes(a - o.placed_at_ms);
                to_accept.push(m);
                let target = log.targets.get(&o.category).copied().unwrap_or(u32::MAX);
                if m <= f64::from(target) {
                    s.accepted_within_target += 1;
                    entry.1 += 1;
                }
                s.subsidy_yuan += f64::from(o.subsidy_fen) / 100.0;
                s.self_paid_yuan += f64::from(o.self_paid_fen) / 100.0;
                if o.state != "cancelled" {
                    charged.entry(o.elder_id.as_str()).or_default().push((a, id, o.subsidy_fen));
                }
                served.insert(o.elder_id.as_str());
                if o.subsidy_fen + o.self_paid_fen != o.price_fen {
                    s.over_allowance += 1;
                    s.failures.push(format!(
                        "order {id}: subsidy {} + self-paid {} is not the price {} (fen)",
                        o.subsidy_fen, o.self_paid_fen, o.price_fen
                    ));
                }
            }
            if let Some(out) = o.checked_out_at_ms {
                s.done += 1;
                if out <= o.to_ms {
                    s.done_on_time += 1;
                }
            }
            match o.state.as_str() {
                "confirmed" => {
                    s.confirmed += 1;
                    ratings.extend(o.rating.map(f64::from));
                }
                "settled" => s.settled += 1,
                "cancelled" => s.cancelled += 1,
                _ => {}
            }
            s.disputed += usize::from(o.disputed);
            s.unmatched += usize::from(o.unmatched);
            if !o.ended {
                match &log.open_at_end {
                    Some(open) if !open.contains(&id) => {
                        s.lost += 1;
                        if s.failures.len() < 10 {
                            s.failures.push(format!(
                                "order {id} was last shown {} and is not listed open at the end",
                                o.state
                            ));
                        }
                    }
                    _ => s.open_at_end += 1,
                }
            }
        }
        // The allowance never pays more than was left of it: each elder's subsidies, in the
        // order their orders were accepted, within their month's allowance.
        for (elder, mut list) in charged {
            let level = elders.get(elder).and_then(|e| e.need_level);
            let allowance = allowance_fen(level);
            list.sort();
            let mut spent = 0u32;
            for (_, id, subsidy) in list {
                if subsidy > allowance.saturating_sub(spent) {
                    s.over_allowance += 1;
                    if s.failures.len() < 10 {
                        s.failures.push(format!(
                            "order {id}: the allowance paid {subsidy} fen with {} of elder {elder}'s {allowance} left",
                            allowance.saturating_sub(spent)
                        ));
                    }
                }
                spent += subsidy;
            }
        }
        s.allowance_of_those_served_yuan =
            served.iter().map(|e| f64::from(allowance_fen(elders.get(e).and_then(|x| x.need_level))) / 100.0).sum();
        s.placed_to_accepted_min = Percentiles::of(to_accept);
        s.mean_rating = (!ratings.is_empty()).then(|| ratings.iter().sum::<f64>() / ratings.len() as f64);
        s
    }

    /// A far check-in taken, an order lost, a worker offered an emergency, the allowance
    /// overdrawn.
    pub fn failed(&self) -> bool {
        self.far_taken + self.lost + self.emergency_offers_to_workers + self.over_allowance > 0
    }

    pub fn text(&self) -> String {
        let mut t = String::new();
        let pct =
            |a: usize, b: usize| if b == 0 { "-".to_string() } else { format!("{:.1}%", 100.0 * a as f64 / b as f64) };
        let f = |v: Option<f64>| v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            t,
            "services: {} providers, {} workers, {} elders with an allowance; calls {}, quoted {}, self-paid part shown {}, declined over it {}, placed {}, refused {}",
            self.providers, self.workers, self.elders_with_allowance, self.calls, self.quoted, self.self_paid_shown,
            self.declined_self_paid, self.placed, self.refused
        );
        let _ = writeln!(
            t,
            "  accepted {} ({} of placed), within the category's target {} ({} of placed); placed → accepted (scen. min) p50 {} p90 {} max {}",
            self.accepted,
            pct(self.accepted, self.placed),
            self.accepted_within_target,
            pct(self.accepted_within_target, self.placed),
            f(self.placed_to_accepted_min.p50),
            f(self.placed_to_accepted_min.p90),
            f(self.placed_to_accepted_min.max)
        );
        let _ = writeln!(
            t,
            "  done {}, on time {} ({}); confirmed {} (mean rating {}), disputed {}, settled {}; unmatched {}, cancelled {}, open at the end {}",
            self.done,
            self.done_on_time,
            pct(self.done_on_time, self.done),
            self.confirmed,
            self.mean_rating.map_or("-".into(), |r| format!("{r:.2}")),
            self.disputed,
            self.settled,
            self.unmatched,
            self.cancelled,
            self.open_at_end
        );
        let cats: Vec<String> = self.by_category.iter().map(|(c, (n, k))| format!("{c} {k}/{n}")).collect();
        let _ = writeln!(t, "  accepted within target by category: {}", cats.join(", "));
        let _ = writeln!(
            t,
            "  workers: offers accepted {}, refused {}, let lapse {}; checked in {}, out {}; far check-ins {}, refused out of radius {}",
            self.offers_accepted, self.offers_refused, self.offers_let_lapse, self.checked_in, self.checked_out,
            self.far_sent, self.far_refused
        );
        let _ = writeln!(
            t,
            "  money: allowance paid {:.0} yuan of the {:.0} a month the elders served hold; self-paid {:.0} yuan",
            self.subsidy_yuan, self.allowance_of_those_served_yuan, self.self_paid_yuan
        );
        let _ = writeln!(
            t,
            "  far check-ins taken {}   orders lost {}   emergencies offered to workers {}   allowance overdrawn {}   (workers put on an emergency by a dispatcher {}, unexpected refusals {})",
            self.far_taken, self.lost, self.emergency_offers_to_workers, self.over_allowance,
            self.emergency_assigned_to_workers, self.surprises
        );
        for why in self.failures.iter().chain(self.samples.iter().take(5)) {
            let _ = writeln!(t, "    {why}");
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smoke() -> Scenario {
        Scenario::parse(include_str!("../scenarios/smoke.toml"), "smoke").unwrap()
    }

    #[test]
    fn orders_follow_age_and_stay_inside_the_hours() {
        let x = Scenario::parse(include_str!("../scenarios/xishan.toml"), "x").unwrap();
        let d = District::generate(&x);
        let orders = plan(&x, &d);
        assert_eq!(orders, plan(&x, &d), "the same seed, the same orders");
        let sv = x.services.as_ref().unwrap();
        let (open, close) = sv.open_hours().unwrap();
        assert!(!orders.is_empty());
        for o in &orders {
            let h = (x.run.start_hour + o.from_s / 3600.0).rem_euclid(24.0);
            assert!(h >= open && h < close, "{o:?} starts at {h}");
            assert!(o.to_s > o.from_s && o.from_s >= o.at_s, "{o:?}");
            assert!(sv.categories.iter().any(|c| c.id == o.category));
        }
        // Per elder, the 80+ order more often than the 70s (their rate is higher).
        let per = |band: u8| {
            let n = d.elders.iter().filter(|e| e.age_band == band).count() as f64;
            orders.iter().filter(|o| d.elders[o.elder].age_band == band).count() as f64 / n
        };
        assert!(per(80) > per(70), "80+: {} a head, 70s: {}", per(80), per(70));
    }

    #[test]
    fn services_change_no_elder_press_or_responder_of_the_emergencies() {
        let s = smoke();
        let mut without = s.clone();
        without.services = None;
        let (a, b) = (District::generate(&s), District::generate(&without));
        assert_eq!(crate::plan::plan(&s, &a), crate::plan::plan(&without, &b));
        let homes = |d: &District| d.elders.iter().map(|e| (e.id.clone(), e.home)).collect::<Vec<_>>();
        assert_eq!(homes(&a), homes(&b));
        let duty = |d: &District| {
            d.responders.iter().filter(|r| r.emergency_duty()).map(|r| r.token.clone()).collect::<Vec<_>>()
        };
        assert_eq!(duty(&a), duty(&b));
        assert!(
            a.responders.iter().any(|r| r.provider.is_some()) && !b.responders.iter().any(|r| r.provider.is_some())
        );
        let reg = a.registry_json(&s);
        let providers = reg["providers"].as_array().unwrap();
        assert_eq!(providers.len(), s.services.as_ref().unwrap().providers as usize);
        assert!(reg["responders"].as_array().unwrap().iter().any(|r| r["provider_id"].is_string()));
        let registry: anxin_core::Registry = serde_json::from_value(reg).expect("anxind reads it");
        assert!(registry.elders.iter().any(|e| e.profile.need_level.is_some()));
    }

    fn view(id: u64, state: &str, extra: Value) -> OrderView {
        let mut o = json!({"id": id, "elder_id": "e-1", "category": "cleaning", "from": 1000, "to": 2000, "notes": "",
            "source": {"from": "dispatcher"}, "state": state, "placed_at": 500, "placed_by": {"type": "engine"},
            "self_paid_agreed": false, "updated_at": 500, "elder_name": "", "address": ""});
        for (k, v) in extra.as_object().unwrap() {
            o[k] = v.clone();
        }
        serde_json::from_value(o).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_desk_hears_of_each_state_it_acts_on_once() {
        let mut log = OrderLog::default();
        assert_eq!(log.order_view(&view(1, "offered", json!({}))), None);
        assert_eq!(log.order_view(&view(1, "done", json!({}))), Some(OrderNews { id: 1, state: OrderState::Done }));
        assert_eq!(log.order_view(&view(1, "done", json!({}))), None, "a repeat is not news");
        log.order_view(&view(1, "confirmed", json!({"rating": 4})));
        let o = &log.seen[&1];
        assert!(o.ended && o.rating == Some(4) && !o.unmatched);
    }

    #[test]
    fn lost_orders_and_an_overdrawn_allowance_fail_the_run() {
        let s = smoke();
        let d = District::generate(&s);
        let sv = s.services.as_ref().unwrap();
        let elder = d.elders.iter().find(|e| e.need_level == Some(3)).expect("a level-3 elder (100 yuan)");
        let mut log = OrderLog { open_at_end: Some([3].into()), ..Default::default() };
        log.placed = vec![(1, 0), (2, 0), (3, 0), (4, 0)];
        let accepted = |at: i64, subsidy: u32| json!({"elder_id": elder.id, "accepted_at": at, "price_fen": subsidy, "subsidy_fen": subsidy});
        log.order_view(&view(1, "confirmed", accepted(600, 8_000)));
        log.order_view(&view(2, "confirmed", accepted(700, 8_000)));
        log.order_view(&view(3, "offered", json!({})));
        // Order 4 was placed and never shown: lost.
        let summary = ServicesSummary::new(&log, &d, sv, 60.0);
        assert_eq!((summary.lost, summary.open_at_end, summary.over_allowance), (1, 1, 1), "{}", summary.text());
        assert!(summary.failed());
        log.placed.pop();
        log.order_view(&view(2, "confirmed", accepted(700, 2_000)));
        let fine = ServicesSummary::new(&log, &d, sv, 60.0);
        assert!(!fine.failed(), "{}", fine.text());
        assert_eq!(fine.subsidy_yuan, 100.0);
    }
}
