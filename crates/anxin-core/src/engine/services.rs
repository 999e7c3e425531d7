//! The service lane in the engine (see [`crate::service`]): placing orders, matching them to
//! providers, the offer timers, the workers' steps to the door and back, and the money.
//!
//! Emergencies come first by construction: orders have their own timers, looked at after
//! every incident's in a tick; their workers are never in the matcher, so the ladder never
//! offers them a job; and a dispatcher who assigns one to an emergency takes them off their
//! order ([`OrderChange::WorkerRedirected`]), which waits for another worker.

use super::{Engine, Outbox};
use crate::geo::Coordinates;
use crate::ids::{ElderId, IncidentId, ProviderId, ResponderId, Timestamp};
use crate::incident::Actor;
use crate::registry::TravelMode;
use crate::service::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The engine's side of the service lane.
#[derive(Debug, Default)]
pub(crate) struct Services {
    /// By id, in order, so matching breaks ties the same way every time.
    pub(crate) providers: BTreeMap<ProviderId, Provider>,
    /// Each provider's workers, in roster order.
    pub(crate) workers: HashMap<ProviderId, Vec<ResponderId>>,
    /// Orders whose life is not over.
    pub(crate) open: BTreeMap<OrderId, ServiceOrder>,
    /// Offers out, by when they lapse.
    pub(crate) due: BTreeSet<(Timestamp, OrderId)>,
    /// Orders held (or offered) per provider, category and local day: against capacity.
    pub(crate) load: HashMap<(ProviderId, String, i64), u32>,
    /// What the allowance paid per elder and local month.
    pub(crate) spent: HashMap<(ElderId, i64), u32>,
    pub(crate) acceptance: HashMap<ProviderId, Acceptance>,
    /// Workers out on an order (on the way or at the door).
    pub(crate) out_on: HashMap<ResponderId, OrderId>,
}

/// An order with the names the pages show beside it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct OrderView {
    #[serde(flatten)]
    pub order: ServiceOrder,
    pub elder_name: String,
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_name: Option<String>,
    /// The provider offered it now, for the board.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offered_to: Option<String>,
}

impl Engine {
    /// Takes the providers and their workers from the ledger, and the orders the store kept
    /// (those still open and this and last month's, for capacity, money and acceptance).
    pub(super) fn restore_services(&mut self, providers: Vec<Provider>, orders: Vec<ServiceOrder>) {
        self.services.providers = providers.into_iter().map(|p| (p.id.clone(), p)).collect();
        let mut workers: Vec<(ProviderId, ResponderId)> =
            self.responders.values().filter_map(|r| Some((r.provider_id.clone()?, r.id.clone()))).collect();
        workers.sort();
        for (p, r) in workers {
            self.services.workers.entry(p).or_default().push(r);
        }
        // An order resumed numbered past its zone's counter moves the counter on.
        for o in &orders {
            let c = self.counters_of(crate::zone::Zone::of(o.id.0));
            c.order = c.order.max(o.id.0);
        }
        for o in orders {
            // Past acceptance as far as the kept orders tell it: each provider that took one
            // was offered it (the refusals before it are in the log, not counted here).
            if let Some(p) = &o.provider_id {
                let a = self.services.acceptance.entry(p.clone()).or_default();
                a.offered += 1;
                a.accepted += 1;
            }
            self.hold(&o, true);
            let s = &mut self.services;
            if o.state.worker_busy() {
                if let Some(w) = &o.worker_id {
                    s.out_on.insert(w.clone(), o.id);
                }
            }
            if let Some(offer) = &o.offer {
                s.due.insert((offer.deadline, o.id));
            }
            if !o.state.is_terminal() {
                s.open.insert(o.id, o);
            }
        }
    }

    /// A responder's entry changed: they join (or leave) their provider's workers.
    pub(super) fn services_roster_changed(&mut self, r: &crate::registry::Responder) {
        self.services_roster_changed_away(&r.id);
        if let Some(p) = &r.provider_id {
            self.services.workers.entry(p.clone()).or_default().push(r.id.clone());
        }
    }

    /// A responder left the roster, or their provider.
    pub(super) fn services_roster_changed_away(&mut self, id: &ResponderId) {
        self.services.workers.retain(|_, list| {
            list.retain(|w| w != id);
            !list.is_empty()
        });
    }

    /// An order whose life is not over.
    pub fn order(&self, id: OrderId) -> Option<&ServiceOrder> {
        self.services.open.get(&id)
    }

    /// Every order whose life is not over, oldest first.
    pub fn open_orders(&self) -> impl Iterator<Item = &ServiceOrder> {
        self.services.open.values()
    }

    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.services.providers.values()
    }

    pub fn provider(&self, id: &ProviderId) -> Option<&Provider> {
        self.services.providers.get(id)
    }

    /// The categories, the providers and the allowances, for the order form.
    pub fn catalogue(&self) -> Catalogue {
        Catalogue {
            categories: self.policy.services.categories.clone(),
            providers: self.services.providers.values().cloned().collect(),
            monthly_allowance_fen: self.policy.services.monthly_allowance_fen.clone(),
        }
    }

    /// What the allowance has paid for an elder in the local month of `at`.
    pub fn allowance_spent(&self, elder: &ElderId, at: Timestamp) -> u32 {
        let month = local_month(at, self.policy.utc_offset_min);
        self.services.spent.get(&(elder.clone(), month)).copied().unwrap_or(0)
    }

    /// An order as the pages show it.
    pub fn order_view(&self, o: &ServiceOrder) -> OrderView {
        let elder = self.elders.get(&o.elder_id);
        let provider_name = |p: &ProviderId| self.services.providers.get(p).map(|p| p.name.clone());
        OrderView {
            order: o.clone(),
            elder_name: elder.map(|e| e.name.clone()).unwrap_or_default(),
            address: elder.map(|e| e.address.clone()).unwrap_or_default(),
            provider_name: o.provider_id.as_ref().and_then(provider_name),
            worker_name: o.worker_id.as_ref().and_then(|w| self.responders.get(w)).map(|r| r.name.clone()),
            offered_to: o.offer.as_ref().and_then(|x| provider_name(&x.provider_id)),
        }
    }

    /// What a worker's phone shows: offers to their provider and the orders they hold;
    /// `None` for a responder who works for no provider.
    pub fn worker_view(&self, worker: &ResponderId) -> Option<WorkerView> {
        let r = self.responders.get(worker)?;
        let provider = self.services.providers.get(r.provider_id.as_ref()?)?;
        let mut orders: Vec<WorkerOrder> = self
            .services
            .open
            .values()
            .filter(|o| {
                o.offer.as_ref().is_some_and(|x| x.provider_id == provider.id)
                    || (o.provider_id.as_ref() == Some(&provider.id)
                        && (o.worker_id.is_none() || o.worker_id.as_ref() == Some(worker))
                        && matches!(o.state, OrderState::Accepted | OrderState::EnRoute | OrderState::OnSite))
            })
            .map(|o| {
                let elder = self.elders.get(&o.elder_id);
                WorkerOrder {
                    order: o.clone(),
                    elder_name: elder.map(|e| e.name.clone()).unwrap_or_default(),
                    address: elder.map(|e| e.address.clone()).unwrap_or_default(),
                    home: elder.map(|e| e.home).unwrap_or(r.position),
                    phone: elder.and_then(|e| e.phone.clone()),
                }
            })
            .collect();
        orders.sort_by_key(|o| (o.order.appointment_at.unwrap_or(o.order.from), o.order.id));
        Some(WorkerView {
            provider_id: provider.id.clone(),
            provider_name: provider.name.clone(),
            orders,
            checkin_radius_m: self.policy.services.checkin_radius_m.round() as u32,
        })
    }

    /// What an order would cost and who could take it, before it is placed.
    pub fn quote(&self, req: &OrderRequest) -> Result<Quote, OrderError> {
        let elder = self.elders.get(&req.elder_id).ok_or_else(|| OrderError::UnknownElder(req.elder_id.clone()))?;
        if self.policy.services.category(&req.category).is_none() {
            return Err(OrderError::UnknownCategory(req.category.clone()));
        }
        if req.to <= req.from {
            return Err(OrderError::BadWindow);
        }
        let (providers, passed) = self.rank(&req.category, elder.home, req.from, req.to, &[]);
        let price_fen = providers
            .iter()
            .filter_map(|p| self.services.providers[p].offer(&req.category))
            .map(|o| o.price_fen)
            .max()
            .unwrap_or(0);
        let allowance_fen = self.policy.services.allowance_fen(elder.profile.need_level);
        let spent_fen = self.allowance_spent(&req.elder_id, req.from);
        let (subsidy_fen, self_paid_fen) = split_price(price_fen, allowance_fen, spent_fen);
        Ok(Quote {
            category: req.category.clone(),
            none_because: providers.is_empty().then(|| passed.explain()),
            providers,
            price_fen,
            allowance_fen,
            spent_fen,
            subsidy_fen,
            self_paid_fen,
        })
    }

    /// Places an order and offers it to the best provider (or, if none fits, leaves it to a
    /// dispatcher). An order that would cost the elder money is refused unless the request
    /// says they agreed to it.
    pub fn place_order(
        &mut self,
        req: OrderRequest,
        actor: Actor,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Result<OrderId, OrderError> {
        let quote = self.quote(&req)?;
        if quote.self_paid_fen > 0 && !req.self_paid_agreed {
            return Err(OrderError::SelfPaidNotAgreed { self_paid_fen: quote.self_paid_fen });
        }
        let id = {
            let c = self.counters_of(self.zone_of_elder(&req.elder_id));
            c.order += 1;
            OrderId(c.order)
        };
        let order = ServiceOrder::placed(id, &req, &actor, now);
        self.services.open.insert(id, order);
        self.record_order(id, OrderChange::Placed { request: req }, actor, now, out);
        self.offer_next(id, now, out);
        self.order_changed(id, out);
        Ok(id)
    }

    /// A worker's step, from their phone.
    pub fn worker_acts(
        &mut self,
        worker: &ResponderId,
        id: OrderId,
        action: WorkerAction,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Result<(), OrderError> {
        let r = self.responders.get(worker).ok_or_else(|| OrderError::NotAWorker(worker.clone()))?;
        let provider = r.provider_id.clone().ok_or_else(|| OrderError::NotAWorker(worker.clone()))?;
        let o = self.services.open.get(&id).ok_or(OrderError::UnknownOrder(id))?.clone();
        let state = o.state;
        let wrong = || OrderError::WrongState { state: state.as_str() };
        let offered_here = o.offer.as_ref().is_some_and(|x| x.provider_id == provider);
        let ours = o.provider_id.as_ref() == Some(&provider);
        let actor = Actor::Responder(worker.clone());
        match action {
            WorkerAction::Accept { appointment_at } => {
                if !offered_here {
                    return Err(OrderError::NotOffered);
                }
                if appointment_at < o.from || appointment_at > o.to {
                    return Err(OrderError::AppointmentOutsideWindow);
                }
                let elder = o.elder_id.clone();
                let price_fen = self.services.providers[&provider].offer(&o.category).map_or(0, |x| x.price_fen);
                let level = self.elders.get(&elder).and_then(|e| e.profile.need_level);
                let allowance = self.policy.services.allowance_fen(level);
                let (subsidy_fen, self_paid_fen) =
                    split_price(price_fen, allowance, self.allowance_spent(&elder, appointment_at));
                self.services.due.remove(&(o.offer.as_ref().expect("offered").deadline, id));
                self.services.acceptance.entry(provider.clone()).or_default().accepted += 1;
                let change = OrderChange::Accepted {
                    provider_id: provider,
                    worker_id: worker.clone(),
                    appointment_at,
                    price_fen,
                    subsidy_fen,
                    self_paid_fen,
                };
                self.record_order(id, change, actor, now, out);
            }
            WorkerAction::Refuse { reason } => {
                if !offered_here {
                    return Err(OrderError::NotOffered);
                }
                if reason.trim().is_empty() {
                    return Err(OrderError::Missing { missing: "the reason" });
                }
                self.services.due.remove(&(o.offer.as_ref().expect("offered").deadline, id));
                self.record_order(
                    id,
                    OrderChange::Declined { provider_id: provider, reason: Some(reason) },
                    actor,
                    now,
                    out,
                );
                self.offer_next(id, now, out);
            }
            WorkerAction::EnRoute => {
                if !ours {
                    return Err(OrderError::NotYours);
                }
                if state != OrderState::Accepted {
                    return Err(wrong());
                }
                if self.services.out_on.get(worker).is_some_and(|o| *o != id) || self.busy.contains_key(worker) {
                    return Err(OrderError::WorkerBusy(worker.clone()));
                }
                if o.worker_id.as_ref().is_some_and(|w| w != worker) {
                    self.record_order(
                        id,
                        OrderChange::WorkerChanged { worker_id: worker.clone() },
                        actor.clone(),
                        now,
                        out,
                    );
                }
                self.services.out_on.insert(worker.clone(), id);
                self.record_order(id, OrderChange::EnRoute { worker_id: worker.clone() }, actor, now, out);
            }
            WorkerAction::CheckIn { at } => {
                if !ours || o.worker_id.as_ref() != Some(worker) {
                    return Err(OrderError::NotYours);
                }
                if state != OrderState::EnRoute {
                    return Err(wrong());
                }
                let home = self.elders.get(&o.elder_id).map_or(at, |e| e.home);
                let distance_m = at.distance_m(home);
                let radius = self.policy.services.checkin_radius_m;
                if distance_m > radius {
                    return Err(OrderError::OutOfRadius {
                        distance_m: distance_m.round() as u32,
                        radius_m: radius.round() as u32,
                    });
                }
                self.record_order(
                    id,
                    OrderChange::CheckedIn { worker_id: worker.clone(), at, distance_m },
                    actor,
                    now,
                    out,
                );
            }
            WorkerAction::CheckOut { done } => {
                if !ours || o.worker_id.as_ref() != Some(worker) {
                    return Err(OrderError::NotYours);
                }
                if state != OrderState::OnSite {
                    return Err(wrong());
                }
                if done.trim().is_empty() {
                    return Err(OrderError::Missing { missing: "what was done" });
                }
                self.services.out_on.remove(worker);
                self.record_order(id, OrderChange::CheckedOut { worker_id: worker.clone(), done }, actor, now, out);
            }
        }
        self.order_changed(id, out);
        Ok(())
    }

    /// A dispatcher's or a family member's action on an order. A family member may confirm,
    /// dispute or cancel (before the worker is at the door); the rest is a dispatcher's.
    pub fn order_acts(
        &mut self,
        actor: Actor,
        id: OrderId,
        action: OrderAction,
        now: Timestamp,
        out: &mut Outbox,
    ) -> Result<(), OrderError> {
        let o = self.services.open.get(&id).ok_or(OrderError::UnknownOrder(id))?.clone();
        let state = o.state;
        let wrong = || OrderError::WrongState { state: state.as_str() };
        let family = matches!(actor, Actor::Family(_));
        let required = |text: &str, missing: &'static str| {
            if text.trim().is_empty() {
                Err(OrderError::Missing { missing })
            } else {
                Ok(())
            }
        };
        if family
            && !matches!(action, OrderAction::Confirm { .. } | OrderAction::Dispute { .. } | OrderAction::Cancel { .. })
        {
            return Err(wrong());
        }
        match action {
            OrderAction::Cancel { reason } => {
                required(&reason, "the reason")?;
                if matches!(state, OrderState::OnSite | OrderState::Done | OrderState::Disputed) {
                    return Err(wrong());
                }
                if let Some(offer) = &o.offer {
                    self.services.due.remove(&(offer.deadline, id));
                }
                if let Some(w) = o.worker_id.clone().filter(|_| state.worker_busy()) {
                    self.services.out_on.remove(&w);
                }
                self.record_order(id, OrderChange::Cancelled { reason }, actor, now, out);
            }
            OrderAction::Reschedule { from, to } => {
                if to <= from {
                    return Err(OrderError::BadWindow);
                }
                if !matches!(state, OrderState::Offered | OrderState::Unmatched | OrderState::Accepted) {
                    return Err(wrong());
                }
                let appointment_at = (state == OrderState::Accepted)
                    .then(|| o.appointment_at.filter(|a| (from..=to).contains(a)).unwrap_or(from));
                // What the order holds moves with it: a place in a provider's day, and (once
                // accepted) money from the allowance of its month.
                let offset = self.policy.utc_offset_min;
                let (was_day, day) = (o.day(offset), local_day(appointment_at.unwrap_or(from), offset));
                let holder = o.provider_id.clone().or_else(|| o.offer.as_ref().map(|x| x.provider_id.clone()));
                if let Some(p) = holder.filter(|_| day != was_day) {
                    let capacity = self.services.providers.get(&p).and_then(|x| x.offer(&o.category));
                    let load = self.services.load.get(&(p.clone(), o.category.clone(), day)).copied().unwrap_or(0);
                    if capacity.is_some_and(|c| load >= c.daily_capacity) {
                        return Err(OrderError::ProviderFull);
                    }
                }
                let was_month = local_month(o.appointment_at.unwrap_or(o.from), offset);
                if state == OrderState::Accepted && local_month(appointment_at.unwrap_or(from), offset) != was_month {
                    return Err(OrderError::OtherMonth);
                }
                self.record_order(id, OrderChange::Rescheduled { from, to, appointment_at }, actor, now, out);
            }
            OrderAction::Rematch => {
                if state != OrderState::Unmatched {
                    return Err(wrong());
                }
                self.offer_next(id, now, out);
            }
            OrderAction::OfferTo { provider_id } => {
                if !matches!(state, OrderState::Unmatched | OrderState::Offered) {
                    return Err(wrong());
                }
                let serves = self.services.providers.get(&provider_id).is_some_and(|p| p.offer(&o.category).is_some());
                if !serves {
                    return Err(OrderError::UnknownCategory(o.category.clone()));
                }
                if let Some(offer) = o.offer.clone() {
                    self.services.due.remove(&(offer.deadline, id));
                    let withdrawn = OrderChange::Declined {
                        provider_id: offer.provider_id,
                        reason: Some("withdrawn by a dispatcher".into()),
                    };
                    self.record_order(id, withdrawn, actor.clone(), now, out);
                }
                self.offer_to(id, provider_id, actor, now, out);
            }
            OrderAction::Confirm { rating, comment } => {
                if state != OrderState::Done {
                    return Err(wrong());
                }
                if !(1..=5).contains(&rating) {
                    return Err(OrderError::BadRating);
                }
                self.record_order(id, OrderChange::Confirmed { rating, comment }, actor, now, out);
            }
            OrderAction::Dispute { reason } => {
                required(&reason, "the reason")?;
                if state != OrderState::Done {
                    return Err(wrong());
                }
                self.record_order(id, OrderChange::Disputed { reason }, actor, now, out);
            }
            OrderAction::Settle { outcome } => {
                required(&outcome, "the outcome")?;
                if state != OrderState::Disputed {
                    return Err(wrong());
                }
                self.record_order(id, OrderChange::Settled { outcome }, actor, now, out);
            }
            OrderAction::Note { text } => {
                required(&text, "the note's text")?;
                self.record_order(id, OrderChange::Note { text }, actor, now, out);
            }
        }
        self.order_changed(id, out);
        Ok(())
    }

    /// A dispatcher sent `worker` to emergency `incident`: their order, if they are out on
    /// one, waits for another worker.
    pub(super) fn redirect_worker(
        &mut self,
        worker: &ResponderId,
        incident: IncidentId,
        actor: &Actor,
        now: Timestamp,
        out: &mut Outbox,
    ) {
        let Some(id) = self.services.out_on.remove(worker) else { return };
        let change = OrderChange::WorkerRedirected { worker_id: worker.clone(), incident };
        self.record_order(id, change, actor.clone(), now, out);
        self.order_changed(id, out);
    }

    /// Lapses the offers due: each goes to the next provider. Called after the incidents'
    /// timers in a tick.
    pub(super) fn expire_order_offers(&mut self, now: Timestamp, out: &mut Outbox) {
        while let Some(&(due, id)) = self.services.due.first() {
            if due > now {
                break;
            }
            self.services.due.pop_first();
            let Some(offer) = self.services.open.get(&id).and_then(|o| o.offer.clone()) else { continue };
            self.record_order(
                id,
                OrderChange::Declined { provider_id: offer.provider_id, reason: None },
                Actor::Engine,
                now,
                out,
            );
            self.offer_next(id, now, out);
            self.order_changed(id, out);
        }
    }

    pub(super) fn next_order_deadline(&self) -> Option<Timestamp> {
        self.services.due.first().map(|(t, _)| *t)
    }

    /// Offers the order to the best provider not yet tried, or leaves it to a dispatcher.
    fn offer_next(&mut self, id: OrderId, now: Timestamp, out: &mut Outbox) {
        let o = &self.services.open[&id];
        let home = self.elders.get(&o.elder_id).map(|e| e.home);
        let Some(home) = home else {
            let change = OrderChange::Unmatched { why: "the elder has left the ledger".into() };
            return self.record_order(id, change, Actor::Engine, now, out);
        };
        let (ranked, passed) = self.rank(&o.category, home, o.from, o.to, &o.tried);
        match ranked.into_iter().next() {
            Some(p) => self.offer_to(id, p, Actor::Engine, now, out),
            None => self.record_order(id, OrderChange::Unmatched { why: passed.explain() }, Actor::Engine, now, out),
        }
    }

    fn offer_to(&mut self, id: OrderId, provider: ProviderId, actor: Actor, now: Timestamp, out: &mut Outbox) {
        let home = self.elders.get(&self.services.open[&id].elder_id).map(|e| e.home);
        let worker = self.nearest_free_worker(&provider, home);
        let deadline = now.plus_millis(self.policy.services.offer_timeout_ms);
        self.services.acceptance.entry(provider.clone()).or_default().offered += 1;
        self.services.due.insert((deadline, id));
        self.record_order(
            id,
            OrderChange::Offered { provider_id: provider, worker_id: worker, deadline },
            actor,
            now,
            out,
        );
    }

    /// The provider's on-duty worker nearest the elder's home who is not out on an order or
    /// an emergency.
    fn nearest_free_worker(&self, provider: &ProviderId, home: Option<Coordinates>) -> Option<ResponderId> {
        let workers = self.services.workers.get(provider)?;
        workers
            .iter()
            .filter_map(|w| self.responders.get(w))
            .filter(|r| r.on_duty && !self.services.out_on.contains_key(&r.id) && !self.busy.contains_key(&r.id))
            .min_by(|a, b| {
                let d = |r: &crate::registry::Responder| home.map_or(0.0, |h| r.position.distance_m(h));
                d(a).total_cmp(&d(b))
            })
            .map(|r| r.id.clone())
    }

    /// The providers that could take an order, best first (past acceptance, then price), and
    /// why the others could not.
    fn rank(
        &self,
        category: &str,
        home: Coordinates,
        from: Timestamp,
        to: Timestamp,
        tried: &[ProviderId],
    ) -> (Vec<ProviderId>, PassedOver) {
        let offset = self.policy.utc_offset_min;
        let day = local_day(from, offset);
        let mut passed = PassedOver::default();
        let mut fit: Vec<(&Provider, u32)> = Vec::new();
        for p in self.services.providers.values() {
            let Some(offer) = p.offer(category) else {
                passed.category += 1;
                continue;
            };
            if !self.area_contains(&p.area, home) {
                passed.area += 1;
            } else if !open_during(p.hours, from, to, offset) {
                passed.hours += 1;
            } else if self.services.load.get(&(p.id.clone(), category.to_string(), day)).copied().unwrap_or(0)
                >= offer.daily_capacity
            {
                passed.full += 1;
            } else if tried.contains(&p.id) {
                passed.tried += 1;
            } else {
                fit.push((p, offer.price_fen));
            }
        }
        let rate = |p: &ProviderId| self.services.acceptance.get(p).copied().unwrap_or_default().rate();
        fit.sort_by(|(a, pa), (b, pb)| rate(&b.id).total_cmp(&rate(&a.id)).then(pa.cmp(pb)).then(a.id.cmp(&b.id)));
        (fit.into_iter().map(|(p, _)| p.id.clone()).collect(), passed)
    }

    fn area_contains(&self, area: &ServiceArea, at: Coordinates) -> bool {
        match area {
            ServiceArea::Stations { stations } => stations.iter().filter_map(|s| self.stations.get(s)).any(|s| {
                let circle = s.service_circle_min.unwrap_or(self.policy.default_service_circle_min);
                self.policy.travel_min(s.position.distance_m(at), TravelMode::Ebike) <= f64::from(circle)
            }),
            drawn => drawn.polygon_contains(at).unwrap_or(false),
        }
    }

    /// Changes order `id` the only way an order changes: logs `change` under the next
    /// sequence number and applies it, keeping capacity and money in step.
    fn record_order(&mut self, id: OrderId, change: OrderChange, actor: Actor, now: Timestamp, out: &mut Outbox) {
        let seq = {
            let c = self.counters_of(crate::zone::Zone::of(id.0));
            c.order_seq += 1;
            c.order_seq
        };
        let event = OrderEvent { seq, order_id: id, at: now, actor, change };
        let mut order = self.services.open.remove(&id).expect("an open order");
        self.hold(&order, false);
        order.apply(&event);
        self.hold(&order, true);
        self.services.open.insert(id, order);
        out.order_events.push(event);
    }

    /// Counts (`add`) or uncounts an order against its provider's capacity and its elder's
    /// allowance.
    fn hold(&mut self, o: &ServiceOrder, add: bool) {
        let offset = self.policy.utc_offset_min;
        let provider = if o.state.is_held() {
            o.provider_id.clone()
        } else if o.state == OrderState::Offered {
            o.offer.as_ref().map(|x| x.provider_id.clone())
        } else {
            None
        };
        let step = |n: &mut u32, by: u32| *n = if add { n.saturating_add(by) } else { n.saturating_sub(by) };
        if let Some(p) = provider {
            step(self.services.load.entry((p, o.category.clone(), o.day(offset))).or_default(), 1);
        }
        if o.state.is_held() && o.subsidy_fen > 0 {
            let month = local_month(o.appointment_at.unwrap_or(o.from), offset);
            step(self.services.spent.entry((o.elder_id.clone(), month)).or_default(), o.subsidy_fen);
        }
    }

    /// Emits the order's row and view, refreshes its provider's workers' phones, and forgets
    /// it once its life is over.
    fn order_changed(&mut self, id: OrderId, out: &mut Outbox) {
        let o = &self.services.open[&id];
        out.orders.push(o.clone());
        for p in o.offer.iter().map(|x| &x.provider_id).chain(o.provider_id.as_ref()) {
            out.responders.extend(self.services.workers.get(p).into_iter().flatten().cloned());
        }
        if o.state.is_terminal() {
            self.services.open.remove(&id);
        }
    }
}

/// Whether a provider is open at some moment of the window `[from, to)`, exactly: open at its
/// start, or opening (at the hours' `from`, the only moment closed turns open) before its end.
/// A window of a day or more always meets the hours.
fn open_during(hours: Hours, from: Timestamp, to: Timestamp, offset: i32) -> bool {
    const DAY: i64 = 86_400_000;
    if to.0 <= from.0 {
        return false;
    }
    if to.0 - from.0 >= DAY || hours.open_at(local_minute(from, offset)) {
        return true;
    }
    if hours.from_min == hours.to_min {
        return false; // open all day: answered above
    }
    let local_ms = (from.0 + i64::from(offset) * 60_000).rem_euclid(DAY);
    let until_opening = (i64::from(hours.from_min) * 60_000 - local_ms).rem_euclid(DAY);
    from.0 + until_opening < to.0
}

#[cfg(test)]
mod tests {
    use super::open_during;
    use crate::service::Hours;
    use crate::Timestamp;

    /// 2026-12-04 00:00 in Kunming (UTC+8), in ms, plus `h` hours and `m` minutes.
    fn at(h: i64, m: i64) -> Timestamp {
        Timestamp(1_796_313_600_000 + (h * 60 + m) * 60_000)
    }

    #[test]
    fn a_window_meets_the_hours_when_they_open_inside_it_however_short() {
        let day = Hours::parse("10:15-18:00").unwrap();
        let open = |f: Timestamp, t: Timestamp| open_during(day, f, t, 480);
        assert!(open(at(10, 10), at(10, 20)), "opens at 10:15, inside a ten-minute window");
        assert!(!open(at(10, 0), at(10, 15)), "the window ends as they open");
        assert!(open(at(17, 59), at(18, 30)), "open at the start");
        assert!(!open(at(18, 0), at(23, 59)), "closed from 18:00");
        assert!(open(at(18, 0), at(34, 16)), "the next morning, 10:15");
        assert!(!open(at(11, 0), at(11, 0)), "an empty window");
        let night = Hours::parse("22:00-06:00").unwrap();
        assert!(open_during(night, at(5, 0), at(5, 1), 480));
        assert!(!open_during(night, at(6, 0), at(21, 59), 480));
        assert!(open_during(night, at(21, 59), at(22, 0).plus_millis(1), 480));
        assert!(open_during(Hours::parse("00:00-24:00").unwrap(), at(3, 0), at(3, 5), 480));
    }
}
