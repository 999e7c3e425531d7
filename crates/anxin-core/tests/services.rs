//! The service lane's rules, one test each: matching by category, area, hours, capacity and
//! past acceptance; a lapse or a refusal goes to the next provider, then to a dispatcher;
//! capacity full; the allowance exceeded (shown before placing, split on acceptance); a
//! check-in away from the door; confirmation and dispute; cancellation and rescheduling; and
//! a worker redirected to an emergency only by a dispatcher, never by the ladder.

use anxin_core::service::{self, Hours, ProviderOffer, Quote};
use anxin_core::testkit::{d1, one_of_each};
use anxin_core::*;

/// 10:13 in Kunming (UTC+8), 2025-11-13.
const T0: Timestamp = Timestamp(1_763_000_000_000);
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

fn at(lat: f64, lon: f64) -> Coordinates {
    Coordinates::new(lat, lon).unwrap()
}

fn pid(s: &str) -> ProviderId {
    ProviderId::parse(s).unwrap()
}

fn rid(s: &str) -> ResponderId {
    ResponderId::parse(s).unwrap()
}

fn elder() -> ElderId {
    ElderId::parse("e-1").unwrap()
}

fn provider(id: &str, price_fen: u32, capacity: u32, area: ServiceArea) -> Provider {
    Provider {
        id: pid(id),
        name: format!("{id} 家政"),
        phone: Some("087100000001".into()),
        offers: vec![
            ProviderOffer { category: "cleaning".into(), price_fen, daily_capacity: capacity },
            ProviderOffer { category: "repair".into(), price_fen: 8_000, daily_capacity: 5 },
        ],
        area,
        hours: Hours::parse("08:00-20:00").unwrap(),
    }
}

/// A square around the elder's home (25.0, 102.68), longitude first as GeoJSON has it.
fn square_around_home() -> ServiceArea {
    let (x, y, d) = (102.67, 24.99, 0.02);
    ServiceArea::Polygon { coordinates: vec![vec![[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]] }
}

/// The testkit's district (elder e-1 at home, station s-1 1 km away, responder r-1), with
/// providers: `p-a` (the station's circle, 50 yuan a cleaning, 2 a day), `p-b` (a drawn
/// square, 40 yuan, 1 a day), `p-far` (a square elsewhere), and workers `w-a1`, `w-a2`
/// (p-a) and `w-b1` (p-b). The elder's need level is 3: 100 yuan a month.
fn registry() -> Registry {
    let mut r = one_of_each();
    let s1 = r.stations[0].id.clone();
    r.providers = vec![
        provider("p-a", 5_000, 2, ServiceArea::Stations { stations: vec![s1] }),
        provider("p-b", 4_000, 1, square_around_home()),
        provider(
            "p-far",
            1_000,
            9,
            ServiceArea::Polygon {
                coordinates: vec![vec![[103.0, 26.0], [103.1, 26.0], [103.1, 26.1], [103.0, 26.1], [103.0, 26.0]]],
            },
        ),
    ];
    for (id, p, lat) in [("w-a1", "p-a", 25.005), ("w-a2", "p-a", 25.02), ("w-b1", "p-b", 25.01)] {
        let mut w = r.responders[0].clone();
        w.id = rid(id);
        w.name = format!("{id} 师傅");
        w.skills = vec![];
        w.position = at(lat, 102.68);
        w.provider_id = Some(pid(p));
        r.responders.push(w);
    }
    r.elders[0].profile.need_level = Some(3);
    r
}

fn engine() -> Engine {
    Engine::new(Policy::default(), registry(), Resume::default())
}

fn cleaning(from: Timestamp) -> OrderRequest {
    OrderRequest {
        elder_id: elder(),
        category: "cleaning".into(),
        from,
        to: from.plus_millis(4 * HOUR),
        notes: "厨房".into(),
        source: OrderSource::Dispatcher,
        self_paid_agreed: false,
    }
}

fn dispatcher() -> Actor {
    Actor::Dispatcher("d1".into())
}

fn place(e: &mut Engine, req: OrderRequest) -> (OrderId, Outbox) {
    let mut out = Outbox::default();
    let id = e.place_order(req, dispatcher(), T0, &mut out).expect("placed");
    (id, out)
}

fn work(e: &mut Engine, who: &str, id: OrderId, action: WorkerAction, now: Timestamp) -> Result<Outbox, OrderError> {
    let mut out = Outbox::default();
    e.worker_acts(&rid(who), id, action, now, &mut out).map(|_| out)
}

fn act(e: &mut Engine, actor: Actor, id: OrderId, action: OrderAction, now: Timestamp) -> Result<Outbox, OrderError> {
    let mut out = Outbox::default();
    e.order_acts(actor, id, action, now, &mut out).map(|_| out)
}

fn offered_to(e: &Engine, id: OrderId) -> Option<String> {
    e.order(id).and_then(|o| o.offer.as_ref()).map(|x| x.provider_id.to_string())
}

fn tomorrow_9() -> Timestamp {
    // 2025-11-14 09:00 in Kunming is 01:00 UTC.
    Timestamp(1_763_082_000_000)
}

#[test]
fn an_order_goes_to_the_best_fitting_provider_and_its_nearest_free_worker() {
    let mut e = engine();
    let (id, out) = place(&mut e, cleaning(tomorrow_9()));
    // p-a and p-b both serve the home, are open and have room; with no record either way the
    // cheaper (p-b) comes first. p-far's area is elsewhere.
    let o = e.order(id).unwrap();
    assert_eq!(o.state, OrderState::Offered);
    assert_eq!(offered_to(&e, id).as_deref(), Some("p-b"));
    assert_eq!(o.offer.as_ref().unwrap().worker_id, Some(rid("w-b1")));
    assert_eq!(o.offer.as_ref().unwrap().deadline, T0.plus_millis(15 * MIN));
    let names: Vec<&str> = out.order_events.iter().map(|e| e.change.name()).collect();
    assert_eq!(names, ["placed", "offered"]);
    assert_eq!(out.orders.last().unwrap().state, OrderState::Offered);
    assert!(out.responders.contains(&rid("w-b1")), "the worker's phone is refreshed");
    assert!(e.worker_view(&rid("w-b1")).unwrap().orders.iter().any(|w| w.order.id == id));
    assert!(e.worker_view(&rid("w-a1")).unwrap().orders.is_empty(), "not offered to p-a");
    assert!(e.worker_view(&rid("r-1")).is_none(), "an emergency responder has no service view");
}

#[test]
fn matching_leaves_out_providers_closed_at_the_wanted_time_or_without_the_category() {
    let mut e = engine();
    // 22:00 to 23:00 local: everybody is closed.
    let night = Timestamp(tomorrow_9().0 + 13 * HOUR);
    let mut req = cleaning(night);
    req.to = night.plus_millis(HOUR);
    let quote = e.quote(&req).unwrap();
    assert!(quote.providers.is_empty());
    assert!(quote.none_because.as_deref().unwrap().contains("2 are closed at the wanted time"), "{quote:?}");
    assert!(quote.none_because.as_deref().unwrap().contains("1 do not serve the elder's home"));
    let mut out = Outbox::default();
    let id = e.place_order(req, dispatcher(), T0, &mut out).unwrap();
    assert_eq!(e.order(id).unwrap().state, OrderState::Unmatched);
    assert!(e.order(id).unwrap().unmatched_why.as_deref().unwrap().contains("closed"));
    // A window that reaches into opening hours is met.
    let mut req = cleaning(Timestamp(tomorrow_9().0 - 2 * HOUR)); // 07:00 to 11:00
    req.to = req.from.plus_millis(90 * MIN); // 07:00 to 08:30
    assert_eq!(e.quote(&req).unwrap().providers.len(), 2);
    // An unknown category is refused, not placed.
    let mut req = cleaning(tomorrow_9());
    req.category = "juggling".into();
    assert_eq!(e.quote(&req), Err(OrderError::UnknownCategory("juggling".into())));
    let mut req = cleaning(tomorrow_9());
    req.to = req.from;
    assert_eq!(e.place_order(req, dispatcher(), T0, &mut out), Err(OrderError::BadWindow));
}

#[test]
fn a_lapsed_offer_goes_to_the_next_provider_then_to_a_dispatcher() {
    let mut e = engine();
    let (id, _) = place(&mut e, cleaning(tomorrow_9()));
    assert_eq!(offered_to(&e, id).as_deref(), Some("p-b"));
    assert_eq!(e.next_deadline(), Some(T0.plus_millis(15 * MIN)));
    let mut out = Outbox::default();
    e.tick(T0.plus_millis(15 * MIN), &mut out);
    let names: Vec<&str> = out.order_events.iter().map(|e| e.change.name()).collect();
    assert_eq!(names, ["declined", "offered"]);
    assert!(matches!(&out.order_events[0].change, OrderChange::Declined { reason: None, .. }));
    assert_eq!(out.order_events[0].actor, Actor::Engine);
    assert_eq!(offered_to(&e, id).as_deref(), Some("p-a"));
    assert_eq!(e.order(id).unwrap().offer.as_ref().unwrap().worker_id, Some(rid("w-a1")), "the nearer of p-a's two");
    // p-a refuses: nobody is left, and the order is a dispatcher's.
    let out = work(&mut e, "w-a2", id, WorkerAction::Refuse { reason: "人手不够".into() }, T0.plus_millis(20 * MIN));
    let out = out.unwrap();
    assert!(
        matches!(&out.order_events[1].change, OrderChange::Unmatched { why } if why.contains("offered it already"))
    );
    let o = e.order(id).unwrap();
    assert_eq!((o.state, o.tried.len()), (OrderState::Unmatched, 2));
    assert_eq!(e.next_deadline(), None, "no offer out, no timer");
    // A refusal needs a reason, and only the provider offered it may refuse or accept.
    let (id2, _) = place(&mut e, cleaning(tomorrow_9()));
    assert_eq!(
        work(&mut e, "w-b1", id2, WorkerAction::Refuse { reason: " ".into() }, T0).unwrap_err(),
        OrderError::Missing { missing: "the reason" }
    );
    let accept = WorkerAction::Accept { appointment_at: tomorrow_9() };
    assert_eq!(work(&mut e, "w-a1", id2, accept, T0).unwrap_err(), OrderError::NotOffered);
    assert_eq!(work(&mut e, "r-1", id2, WorkerAction::EnRoute, T0).unwrap_err(), OrderError::NotAWorker(rid("r-1")));
    // The dispatcher offers the first order again, by hand, to p-a.
    act(&mut e, dispatcher(), id, OrderAction::OfferTo { provider_id: pid("p-a") }, T0.plus_millis(30 * MIN)).unwrap();
    assert_eq!(offered_to(&e, id).as_deref(), Some("p-a"));
}

#[test]
fn a_provider_full_for_the_day_is_passed_over_until_an_order_is_cancelled() {
    let mut e = engine();
    // p-b takes one cleaning a day: the first order holds it (offered, then accepted).
    let (first, _) = place(&mut e, cleaning(tomorrow_9()));
    work(&mut e, "w-b1", first, WorkerAction::Accept { appointment_at: tomorrow_9() }, T0).unwrap();
    let (second, _) = place(&mut e, cleaning(tomorrow_9()));
    assert_eq!(offered_to(&e, second).as_deref(), Some("p-a"), "p-b is full that day");
    // p-a takes two: the third fills it, the fourth finds everybody full.
    let (third, _) = place(&mut e, cleaning(tomorrow_9()));
    assert_eq!(offered_to(&e, third).as_deref(), Some("p-a"));
    let (fourth, _) = place(&mut e, cleaning(tomorrow_9()));
    let o = e.order(fourth).unwrap();
    assert_eq!(o.state, OrderState::Unmatched);
    assert!(o.unmatched_why.as_deref().unwrap().contains("2 are full that day"), "{:?}", o.unmatched_why);
    // Another day has room.
    let (other_day, _) = place(&mut e, cleaning(tomorrow_9().plus_millis(24 * HOUR)));
    assert_eq!(offered_to(&e, other_day).as_deref(), Some("p-b"));
    // Cancelling the first frees p-b's place that day.
    act(&mut e, dispatcher(), first, OrderAction::Cancel { reason: "老人住院".into() }, T0).unwrap();
    assert!(e.order(first).is_none(), "a cancelled order's life is over");
    act(&mut e, dispatcher(), fourth, OrderAction::Rematch, T0).unwrap();
    assert_eq!(offered_to(&e, fourth).as_deref(), Some("p-b"));
}

#[test]
fn past_acceptance_ranks_providers() {
    let mut e = engine();
    // With no record either way the cheaper p-b comes first; it lets the offer lapse and p-a
    // accepts it. From then on p-a (accepted 1 of 1) comes before p-b (0 of 1), dearer or not.
    let (id, _) = place(&mut e, cleaning(tomorrow_9()));
    assert_eq!(offered_to(&e, id).as_deref(), Some("p-b"));
    let deadline = e.order(id).unwrap().offer.as_ref().unwrap().deadline;
    e.tick(deadline, &mut Outbox::default());
    assert_eq!(offered_to(&e, id).as_deref(), Some("p-a"));
    work(&mut e, "w-a1", id, WorkerAction::Accept { appointment_at: tomorrow_9() }, deadline).unwrap();
    let (next, _) = place(&mut e, cleaning(tomorrow_9().plus_millis(24 * HOUR)));
    assert_eq!(offered_to(&e, next).as_deref(), Some("p-a"));
    // p-a refuses that one and p-b accepts it: 1 of 2 each, and the price decides again.
    work(&mut e, "w-a1", next, WorkerAction::Refuse { reason: "排满".into() }, deadline).unwrap();
    work(&mut e, "w-b1", next, WorkerAction::Accept { appointment_at: tomorrow_9().plus_millis(24 * HOUR) }, deadline)
        .unwrap();
    // (90 of the 100 yuan are spent: the elder agrees to pay what is over.)
    let (third, _) =
        place(&mut e, OrderRequest { self_paid_agreed: true, ..cleaning(tomorrow_9().plus_millis(48 * HOUR)) });
    assert_eq!(offered_to(&e, third).as_deref(), Some("p-b"));
}

#[test]
fn an_order_over_the_allowance_is_shown_as_self_paid_before_it_is_placed() {
    let mut e = engine();
    // 100 yuan a month (level 3). Two cleanings by p-b (40) and p-a (50) spend 90.
    let (a, _) = place(&mut e, cleaning(tomorrow_9()));
    work(&mut e, "w-b1", a, WorkerAction::Accept { appointment_at: tomorrow_9() }, T0).unwrap();
    let (b, _) = place(&mut e, cleaning(tomorrow_9()));
    work(&mut e, "w-a1", b, WorkerAction::Accept { appointment_at: tomorrow_9() }, T0).unwrap();
    let o = e.order(b).unwrap();
    assert_eq!((o.price_fen, o.subsidy_fen, o.self_paid_fen), (5_000, 5_000, 0));
    assert_eq!(e.allowance_spent(&elder(), tomorrow_9()), 9_000);
    // A repair (80 yuan, only p-a and p-b) would leave 70 to pay: shown, and refused unasked.
    let mut repair = cleaning(tomorrow_9());
    repair.category = "repair".into();
    let quote: Quote = e.quote(&repair).unwrap();
    assert_eq!(
        (quote.price_fen, quote.allowance_fen, quote.spent_fen, quote.subsidy_fen, quote.self_paid_fen),
        (8_000, 10_000, 9_000, 1_000, 7_000)
    );
    let mut out = Outbox::default();
    assert_eq!(
        e.place_order(repair.clone(), dispatcher(), T0, &mut out),
        Err(OrderError::SelfPaidNotAgreed { self_paid_fen: 7_000 })
    );
    assert!(out.order_events.is_empty(), "nothing placed");
    repair.self_paid_agreed = true;
    let id = e.place_order(repair, dispatcher(), T0, &mut out).unwrap();
    let worker = if offered_to(&e, id).as_deref() == Some("p-a") { "w-a1" } else { "w-b1" };
    work(&mut e, worker, id, WorkerAction::Accept { appointment_at: tomorrow_9() }, T0).unwrap();
    let o = e.order(id).unwrap();
    assert_eq!((o.subsidy_fen, o.self_paid_fen, o.self_paid_agreed), (1_000, 7_000, true));
    assert_eq!(e.allowance_spent(&elder(), tomorrow_9()), 10_000);
    // The month's statement holds the three a provider took on, with the money split.
    let orders: Vec<ServiceOrder> = e.open_orders().cloned().collect();
    let name = |_: &ElderId| "张阿姨".to_string();
    let provider = |p: &ProviderId| p.to_string();
    let st = service::statement("2025-11", &orders, service::StatementBy::Provider, 480, name, provider).unwrap();
    assert_eq!(st.groups.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(), ["p-a", "p-b"]);
    assert_eq!((st.total.orders, st.total.subsidy_fen, st.total.self_paid_fen), (3, 10_000, 7_000));
    assert_eq!(st.total.price_fen, 5_000 + 4_000 + 8_000);
    let by_elder = service::statement("2025-11", &orders, service::StatementBy::Elder, 480, name, provider).unwrap();
    assert_eq!((by_elder.groups.len(), by_elder.groups[0].name.as_str()), (1, "张阿姨"));
    assert!(service::statement("2025-12", &orders, service::StatementBy::Elder, 480, name, provider)
        .unwrap()
        .groups
        .is_empty());
    // Cancelling gives the allowance back, and the order leaves the statement; next month
    // starts afresh.
    let out = act(&mut e, dispatcher(), b, OrderAction::Cancel { reason: "改期".into() }, T0).unwrap();
    let mut rows: Vec<ServiceOrder> = e.open_orders().cloned().collect();
    rows.extend(out.orders);
    let st = service::statement("2025-11", &rows, service::StatementBy::Provider, 480, name, provider).unwrap();
    assert_eq!((st.total.orders, st.total.subsidy_fen), (2, 5_000), "the cancelled order is not on it");
    assert_eq!(e.allowance_spent(&elder(), tomorrow_9()), 5_000);
    assert_eq!(e.allowance_spent(&elder(), tomorrow_9().plus_millis(20 * 24 * HOUR)), 0);
}

#[test]
fn the_order_to_the_door_and_back_with_a_check_in_away_from_the_door_refused() {
    let mut e = engine();
    let (id, _) = place(&mut e, cleaning(tomorrow_9()));
    let appointment = tomorrow_9().plus_millis(HOUR);
    assert_eq!(
        work(&mut e, "w-b1", id, WorkerAction::Accept { appointment_at: tomorrow_9().plus_millis(5 * HOUR) }, T0)
            .unwrap_err(),
        OrderError::AppointmentOutsideWindow
    );
    work(&mut e, "w-b1", id, WorkerAction::Accept { appointment_at: appointment }, T0).unwrap();
    assert_eq!(e.order(id).unwrap().appointment_at, Some(appointment));
    let checkin = |lat| WorkerAction::CheckIn { at: at(lat, 102.68) };
    assert_eq!(
        work(&mut e, "w-b1", id, checkin(25.0), appointment).unwrap_err(),
        OrderError::WrongState { state: "accepted" },
        "on the way first"
    );
    work(&mut e, "w-b1", id, WorkerAction::EnRoute, appointment).unwrap();
    // 0.005° north is 556 m from the door: refused, and the order is still on the way.
    let err = work(&mut e, "w-b1", id, checkin(25.005), appointment).unwrap_err();
    assert!(matches!(err, OrderError::OutOfRadius { distance_m: 556, radius_m: 200 }), "{err:?}");
    assert_eq!(e.order(id).unwrap().state, OrderState::EnRoute);
    let out = work(&mut e, "w-b1", id, checkin(25.001), appointment.plus_millis(10 * MIN)).unwrap();
    assert!(matches!(&out.order_events[0].change, OrderChange::CheckedIn { distance_m, .. } if *distance_m < 120.0));
    assert_eq!(
        work(&mut e, "w-b1", id, WorkerAction::CheckOut { done: "".into() }, appointment).unwrap_err(),
        OrderError::Missing { missing: "what was done" }
    );
    work(&mut e, "w-b1", id, WorkerAction::CheckOut { done: "打扫厨房和卫生间".into() }, appointment.plus_millis(HOUR))
        .unwrap();
    let o = e.order(id).unwrap();
    assert_eq!((o.state, o.done.as_str()), (OrderState::Done, "打扫厨房和卫生间"));
    // The family confirms with a rating; a rating is 1 to 5.
    let family = Actor::Family("c1".into());
    assert_eq!(
        act(&mut e, family.clone(), id, OrderAction::Confirm { rating: 6, comment: String::new() }, appointment)
            .unwrap_err(),
        OrderError::BadRating
    );
    let out =
        act(&mut e, family, id, OrderAction::Confirm { rating: 5, comment: "很干净".into() }, appointment).unwrap();
    assert_eq!(out.orders.last().unwrap().state, OrderState::Confirmed);
    assert_eq!(out.orders.last().unwrap().rating, Some(5));
    assert!(e.order(id).is_none(), "confirmed: its life is over");
}

#[test]
fn a_dispute_is_a_dispatchers_to_settle_and_family_may_do_only_their_part() {
    let mut e = engine();
    let (id, _) = place(&mut e, cleaning(tomorrow_9()));
    let t = tomorrow_9();
    work(&mut e, "w-b1", id, WorkerAction::Accept { appointment_at: t }, T0).unwrap();
    let family = Actor::Family("c1".into());
    assert_eq!(
        act(&mut e, family.clone(), id, OrderAction::Note { text: "x".into() }, t).unwrap_err(),
        OrderError::WrongState { state: "accepted" },
        "notes and the rest are a dispatcher's"
    );
    work(&mut e, "w-b1", id, WorkerAction::EnRoute, t).unwrap();
    work(&mut e, "w-b1", id, WorkerAction::CheckIn { at: at(25.0, 102.68) }, t).unwrap();
    assert_eq!(
        act(&mut e, family.clone(), id, OrderAction::Cancel { reason: "不要了".into() }, t).unwrap_err(),
        OrderError::WrongState { state: "on_site" },
        "too late to cancel once at the door"
    );
    work(&mut e, "w-b1", id, WorkerAction::CheckOut { done: "打扫".into() }, t).unwrap();
    act(&mut e, family.clone(), id, OrderAction::Dispute { reason: "只扫了一半".into() }, t).unwrap();
    let o = e.order(id).unwrap();
    assert_eq!((o.state, o.dispute.as_deref()), (OrderState::Disputed, Some("只扫了一半")));
    assert!(act(&mut e, family, id, OrderAction::Settle { outcome: "x".into() }, t).is_err());
    let out = act(&mut e, dispatcher(), id, OrderAction::Settle { outcome: "服务商返工".into() }, t).unwrap();
    assert_eq!(out.orders.last().unwrap().state, OrderState::Settled);
    assert!(e.order(id).is_none());
}

#[test]
fn rescheduling_moves_the_window_and_the_appointment_and_capacity_with_it() {
    let mut e = engine();
    let (id, _) = place(&mut e, cleaning(tomorrow_9()));
    work(&mut e, "w-b1", id, WorkerAction::Accept { appointment_at: tomorrow_9() }, T0).unwrap();
    let next_day = tomorrow_9().plus_millis(24 * HOUR);
    let bad = OrderAction::Reschedule { from: next_day, to: next_day };
    assert_eq!(act(&mut e, dispatcher(), id, bad, T0).unwrap_err(), OrderError::BadWindow);
    act(&mut e, dispatcher(), id, OrderAction::Reschedule { from: next_day, to: next_day.plus_millis(HOUR) }, T0)
        .unwrap();
    let o = e.order(id).unwrap();
    assert_eq!((o.from, o.appointment_at, o.state), (next_day, Some(next_day), OrderState::Accepted));
    // p-b's place tomorrow is free again; the next day's is taken.
    let (tomorrow, _) = place(&mut e, cleaning(tomorrow_9()));
    assert_eq!(offered_to(&e, tomorrow).as_deref(), Some("p-b"));
    let (that_day, _) = place(&mut e, cleaning(next_day));
    assert_eq!(offered_to(&e, that_day).as_deref(), Some("p-a"));
    // p-b takes one a day: the order cannot move back to tomorrow, where p-b now holds
    // another's offer; nor to next month, whose allowance it was not counted in.
    let back = OrderAction::Reschedule { from: tomorrow_9(), to: tomorrow_9().plus_millis(HOUR) };
    assert_eq!(act(&mut e, dispatcher(), id, back, T0).unwrap_err(), OrderError::ProviderFull);
    let december = tomorrow_9().plus_millis(20 * 24 * HOUR);
    let later = OrderAction::Reschedule { from: december, to: december.plus_millis(HOUR) };
    assert_eq!(act(&mut e, dispatcher(), id, later, T0).unwrap_err(), OrderError::OtherMonth);
    assert_eq!(e.order(id).unwrap().from, next_day, "unchanged");
}

#[test]
fn the_ladder_never_offers_a_service_worker_an_emergency_but_a_dispatcher_may_send_one() {
    let mut reg = registry();
    // The only emergency responder is off duty: the workers are the only people about.
    reg.responders[0].on_duty = false;
    let mut e = Engine::new(Policy::default(), reg, Resume::default());
    let (id, _) = place(&mut e, cleaning(tomorrow_9()));
    work(&mut e, "w-b1", id, WorkerAction::Accept { appointment_at: tomorrow_9() }, T0).unwrap();
    work(&mut e, "w-b1", id, WorkerAction::EnRoute, T0).unwrap();
    work(&mut e, "w-b1", id, WorkerAction::CheckIn { at: at(25.0, 102.68) }, T0).unwrap();
    // An SOS next door: nobody is offered it, whoever is near.
    let mut out = Outbox::default();
    let press = sos(T0);
    let Ok(Outcome::Opened(incident)) = e.handle_device_event(&d1(), press, T0, &mut out) else { panic!("opened") };
    assert!(e.incident(incident).unwrap().ladder.offers.is_empty(), "no worker offered an emergency");
    assert!(!e.matcher().is_available(&rid("w-a1")));
    // The dispatcher's suggestions list the workers about, after the responders, each with
    // the order sending them would leave; nearest first.
    let suggested = e.suggestions(incident, 5).unwrap();
    let workers: Vec<&Suggestion> = suggested.iter().filter(|s| s.worker.is_some()).collect();
    let ids: Vec<&str> = workers.iter().map(|s| s.responder.id.as_str()).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    assert!(workers.windows(2).all(|w| w[0].distance_m <= w[1].distance_m), "nearest first: {ids:?}");
    let first_worker = suggested.iter().position(|s| s.worker.is_some()).unwrap();
    assert!(suggested[first_worker..].iter().all(|s| s.worker.is_some()), "workers come after the responders");
    let b1 = workers.iter().find(|s| s.responder.id == "w-b1").unwrap().worker.clone().unwrap();
    assert_eq!(b1.provider_id, pid("p-b"));
    let on = b1.order.expect("w-b1 is at the door of an order");
    assert_eq!((on.id, on.state, on.category.as_str()), (id, OrderState::OnSite, "cleaning"));
    assert_eq!(on.elder_name, e.order_view(e.order(id).unwrap()).elder_name);
    let a1 = workers.iter().find(|s| s.responder.id == "w-a1").unwrap().worker.clone().unwrap();
    assert_eq!(a1.order, None, "w-a1 is on no order");
    // A dispatcher sends w-b1 from the cleaning next door: the order loses its worker.
    let mut out = Outbox::default();
    e.dispatcher_acts("d1", incident, DispatcherAction::Assign { responder: rid("w-b1") }, T0, &mut out).unwrap();
    assert_eq!(e.incident(incident).unwrap().responder.as_ref().map(|r| r.id.clone()), Some(rid("w-b1")));
    let o = e.order(id).unwrap();
    assert_eq!((o.state, o.worker_id.clone(), o.redirected_to), (OrderState::Accepted, None, Some(incident)));
    assert!(out.order_events.iter().any(|e| matches!(e.change, OrderChange::WorkerRedirected { .. })));
    // w-b1 is on the emergency now: they cannot set off on an order until it is over.
    assert_eq!(work(&mut e, "w-b1", id, WorkerAction::EnRoute, T0).unwrap_err(), OrderError::WorkerBusy(rid("w-b1")));
    // While an order's timers run, the emergency's do too, first.
    let (other, _) = place(&mut e, cleaning(tomorrow_9().plus_millis(24 * HOUR)));
    assert!(e.order(other).is_some());
}

/// An SOS press with no fix, as the intake takes it.
fn sos(now: Timestamp) -> DeviceEvent {
    DeviceEvent {
        msg_id: MessageId::parse("m-1").unwrap(),
        event: EventType::Sos,
        device_ts: now,
        fix: FixReport::Absent,
        health: Default::default(),
    }
}

#[test]
fn a_restart_keeps_open_orders_their_timers_capacity_and_money() {
    let mut e = engine();
    let mut rows = std::collections::BTreeMap::new();
    let (a, out) = place(&mut e, cleaning(tomorrow_9()));
    rows.extend(out.orders.into_iter().map(|o| (o.id, o)));
    let out = work(&mut e, "w-b1", a, WorkerAction::Accept { appointment_at: tomorrow_9() }, T0).unwrap();
    rows.extend(out.orders.into_iter().map(|o| (o.id, o)));
    let (b, out) = place(&mut e, cleaning(tomorrow_9()));
    rows.extend(out.orders.into_iter().map(|o| (o.id, o)));
    let last = e.counters()[&Zone::FIRST];
    let resume = Resume { orders: rows.into_values().collect(), counters: e.counters(), ..Resume::default() };
    let mut e = Engine::new(Policy::default(), registry(), resume);
    assert_eq!(e.order(b).unwrap().state, OrderState::Offered);
    assert_eq!(e.next_deadline(), Some(T0.plus_millis(15 * MIN)), "the offer's timer runs on");
    assert_eq!(e.allowance_spent(&elder(), tomorrow_9()), 4_000);
    let (c, out) = place(&mut e, cleaning(tomorrow_9()));
    assert_eq!(c, OrderId(last.order + 1));
    assert_eq!(out.order_events[0].seq, last.order_seq + 1);
    // p-b is full with a; p-a holds b's offer and has one place left, for c.
    assert_eq!(offered_to(&e, c).as_deref(), Some("p-a"));
}
