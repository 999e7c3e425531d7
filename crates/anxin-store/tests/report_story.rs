//! Supervisors' reports read from the stored event log, on SQLite and PostgreSQL: a day
//! driven through the real engine, every batch committed to the store and fed to the
//! wallboard's tally, then the day's report read back and held against the tally, and
//! against what a supervisor would count by hand.

#[macro_use]
mod both;

use anxin_core::testkit::{d1, one_of_each, r1};
use anxin_core::*;
use anxin_store::{Batch, Store};
use std::collections::BTreeMap;
use std::sync::Arc;

const UTC8: i32 = 480;
const S: i64 = 1000;

/// 09:00 at the centre (UTC+8) on 2025-11-13.
fn nine_am() -> Timestamp {
    standards::local_midnight(Timestamp(1_763_000_000_000), UTC8).plus_millis(9 * 3_600_000)
}

struct Centre {
    e: Engine,
    tally: DayTally,
    now: Timestamp,
    store: Arc<dyn Store>,
    presses: u32,
    /// Every event committed, in order.
    log: Vec<IncidentEvent>,
    /// Commit every batch twice, as after a commit whose outcome was unclear.
    twice: bool,
    /// Fold the reports' milestones after every commit.
    fold_each: bool,
}

impl Centre {
    async fn new(store: Arc<dyn Store>) -> Self {
        Centre::in_district(store, district()).await
    }

    async fn in_district(store: Arc<dyn Store>, mut registry: Registry) -> Self {
        registry.staff.push(Staff {
            id: "dispatcher".into(),
            name: "值班调度员".into(),
            role: StaffRole::Dispatcher,
            password_hash: String::new(),
        });
        store.save_registry(&registry).await.expect("the ledger is stored");
        let policy = Policy { utc_offset_min: UTC8, offer_timeout_ms: 90_000, ..Policy::default() };
        let now = nine_am();
        Centre {
            e: Engine::new(policy, registry, Resume::default()),
            tally: DayTally::new(StandardLimits::default(), UTC8, now),
            now,
            store,
            presses: 0,
            log: Vec::new(),
            twice: false,
            fold_each: false,
        }
    }

    async fn take(&mut self, out: Outbox) {
        for e in &out.events {
            self.tally.observe(e);
        }
        self.store.commit(Batch::of(&out)).await.expect("commit");
        if self.twice {
            self.store.commit(Batch::of(&out)).await.expect("the same batch again");
        }
        if self.fold_each {
            self.store.fold_milestones().await.expect("a fold");
        }
        self.log.extend(out.events);
    }

    async fn at(&mut self, t: Timestamp) {
        assert!(t >= self.now);
        self.now = t;
        let mut out = Outbox::default();
        self.e.tick(t, &mut out);
        self.take(out).await;
    }

    async fn press(&mut self, kind: EventType) -> IncidentId {
        self.press_on(&d1(), kind).await
    }

    async fn press_on(&mut self, device: &DeviceId, kind: EventType) -> IncidentId {
        self.presses += 1;
        let event = DeviceEvent {
            msg_id: MessageId::parse(format!("m{}", self.presses)).unwrap(),
            event: kind,
            device_ts: self.now,
            fix: FixReport::Absent,
            health: Default::default(),
        };
        let mut out = Outbox::default();
        let outcome = self.e.handle_device_event(device, event, self.now, &mut out).unwrap();
        self.take(out).await;
        match outcome {
            Outcome::Opened(id) | Outcome::Joined(id) => id,
            other => panic!("a press opened nothing: {other:?}"),
        }
    }

    async fn responder(&mut self, id: IncidentId, action: ResponderAction) {
        let mut out = Outbox::default();
        self.e.responder_acts(&r1(), id, action, self.now, &mut out).unwrap();
        self.take(out).await;
    }

    async fn dispatcher(&mut self, id: IncidentId, action: DispatcherAction) {
        let mut out = Outbox::default();
        self.e.dispatcher_acts("dispatcher", id, action, self.now, &mut out).unwrap();
        self.take(out).await;
    }

    async fn duty(&mut self, on: bool) {
        let mut out = Outbox::default();
        self.e.set_duty(&r1(), on, self.now, &mut out).unwrap();
        self.take(out).await;
    }

    async fn call(&mut self, event: CallEvent) -> Option<IncidentId> {
        let mut out = Outbox::default();
        let outcome = self.e.handle_call(event, self.now, &mut out);
        self.take(out).await;
        outcome.incident()
    }

    async fn report(&self, by: Grouping) -> Report {
        self.report_in_shifts(by, Shifts::default()).await
    }

    async fn report_in_shifts(&self, by: Grouping, shifts: Shifts) -> Report {
        let from = self.tally.day_start();
        let q = ReportQuery {
            from,
            to: self.tally.day_end(),
            by,
            utc_offset_min: UTC8,
            limits: StandardLimits::default(),
            now: self.now,
            shifts,
            programme_overdue_ms: ProgrammePolicy::default().overdue_after_ms,
        };
        self.store.report(&q).await.expect("report")
    }
}

/// `one_of_each`, its elder enrolled with s-1, the station a report by station counts them
/// under.
fn district() -> Registry {
    let mut registry = one_of_each();
    registry.elders[0].profile.station_id = Some(StationId::parse("s-1").unwrap());
    registry
}

/// [`district`] and a second zone: station s-2 in zone 1, with elders e-2 and e-3 enrolled
/// there (devices d-2 and d-3) and no responder of its own.
fn district_in_two_zones() -> Registry {
    let mut registry = district();
    let mut s2 = registry.stations[0].clone();
    s2.id = StationId::parse("s-2").unwrap();
    s2.name = "碧鸡街道服务中心".into();
    s2.zone = Zone::new(1).unwrap();
    for n in [2, 3] {
        let mut elder = registry.elders[0].clone();
        elder.id = ElderId::parse(format!("e-{n}")).unwrap();
        elder.profile.station_id = Some(s2.id.clone());
        registry.devices.push(Device {
            id: DeviceId::parse(format!("d-{n}")).unwrap(),
            elder_id: elder.id.clone(),
            model: None,
            sim: None,
        });
        registry.elders.push(elder);
    }
    registry.stations.push(s2);
    registry
}

fn later(t: Timestamp, ms: i64) -> Timestamp {
    t.plus_millis(ms)
}

/// The incidents of [`morning`] a supervisor names.
struct Morning {
    /// Handed to 120 by a dispatcher, with nobody going and nobody on scene in 30 minutes.
    handed: IncidentId,
    /// A call picked up after 40 s.
    late_call: IncidentId,
}

/// A morning at the centre: alarms met and missed, a hand-over to 120, a false alarm, calls
/// in answered in time and late.
async fn morning(c: &mut Centre) -> Morning {
    let t0 = c.now;

    // 1. Accepted in 30 s, on scene 10 minutes later, resolved.
    let met = c.press(EventType::Sos).await;
    c.at(later(t0, 30 * S)).await;
    c.responder(met, ResponderAction::Accept).await;
    c.at(later(t0, 10 * 60 * S)).await;
    c.responder(met, ResponderAction::OnScene).await;
    c.responder(met, ResponderAction::Resolve { outcome: "well: helped up".into() }).await;

    // 2. Nobody free: the alarm climbs to the station and a dispatcher, who claims it late
    //    and hands it to 120; nobody arrives within 30 minutes.
    let t1 = later(t0, 20 * 60 * S);
    c.at(t1).await;
    c.duty(false).await;
    let handed = c.press(EventType::Fall).await;
    for m in 1..=10 {
        c.at(later(t1, m * 60 * S)).await;
    }
    c.dispatcher(handed, DispatcherAction::Claim).await;
    c.dispatcher(handed, DispatcherAction::Escalate { number: "120".into(), reference: Some("KM-7".into()) }).await;

    // Closed after 31 minutes with nobody on scene: the closed loop missed.
    c.at(later(t1, 31 * 60 * S)).await;
    c.dispatcher(handed, DispatcherAction::Resolve { outcome: "taken to hospital by 120".into() }).await;

    // 3. A false alarm, ended by a dispatcher within 20 s.
    let t2 = later(t1, 32 * 60 * S);
    c.at(t2).await;
    let false_alarm = c.press(EventType::Sos).await;
    c.at(later(t2, 20 * S)).await;
    c.dispatcher(false_alarm, DispatcherAction::FalseAlarm { reason: "pressed by mistake".into() }).await;

    // 4. Calls in: one picked up in 10 s, one after 40 s.
    let t3 = later(t2, 60 * S);
    c.at(t3).await;
    let ring = |id: &str| CallEvent::Ringing { call_id: id.into(), from: "13900000001".into(), to: "96110".into() };
    c.call(ring("c1")).await;
    c.at(later(t3, 10 * S)).await;
    c.call(CallEvent::Answered { call_id: "c1".into(), by: "dispatcher".into() }).await;
    c.call(CallEvent::Ended { call_id: "c1".into(), reason: telephony::CallEnd::Bye }).await;
    let t4 = later(t3, 60 * S);
    c.at(t4).await;
    let late_call = c.call(ring("c2")).await.expect("the call rings on an incident");
    c.at(later(t4, 40 * S)).await;
    c.call(CallEvent::Answered { call_id: "c2".into(), by: "dispatcher".into() }).await;

    // An hour on, everything has run its course (the 120 hand-over still has nobody on scene).
    c.at(later(t0, 2 * 3_600 * S)).await;
    Morning { handed, late_call }
}

/// [`morning`]'s report agrees with the wallboard's day and with what a supervisor counts by
/// hand.
async fn a_days_report_agrees_with_the_wallboards_day(store: Arc<dyn Store>) {
    let mut c = Centre::new(store).await;
    let Morning { handed, late_call } = morning(&mut c).await;
    let wall = c.tally.figures(c.now, 0);

    let report = c.report(Grouping::None).await;
    assert_eq!(report.rows.len(), 1);
    let day = &report.total;
    assert_eq!(report.rows[0], *day, "one group: the whole day");
    for w in &wall.standards {
        let r = day.standards.iter().find(|s| s.standard == w.standard).unwrap();
        assert_eq!((r.met, r.missed, r.pending), (w.met, w.missed, w.pending), "{:?}", w.standard);
        let mut listed = r.missed_ids.clone();
        let mut on_wall = w.missed_ids.clone();
        listed.sort();
        on_wall.sort();
        assert_eq!(listed, on_wall, "{:?}: the same incidents missed", w.standard);
        assert_eq!(r.rating, w.rating, "{:?}", w.standard);
    }

    // What a supervisor counts by hand.
    let tsa60 = day.standards.iter().find(|s| s.standard == Standard::Tsa60).unwrap();
    assert_eq!((tsa60.met, tsa60.missed, tsa60.missed_ids.clone()), (2, 1, vec![handed]));
    let nena = day.standards.iter().find(|s| s.standard == Standard::Nena).unwrap();
    assert_eq!((nena.met, nena.missed, nena.missed_ids.clone()), (1, 1, vec![late_call]));
    let closed = day.standards.iter().find(|s| s.standard == Standard::ClosedLoop).unwrap();
    assert_eq!((closed.met, closed.missed), (1, 1), "the false alarm ended before it needed anybody");
    assert_eq!(day.closed_loop_failures, 1);
    assert_eq!(day.handed_to_120, 1);
    assert_eq!((day.handed_to_110, day.handed_to_119), (0, 0));
    assert_eq!(day.nobody_going, 1);
    assert_eq!(day.false_alarms, 1);
    assert_eq!(day.calls_in, 2);
    assert_eq!(day.alarms, 3);
    assert!(day.incidents >= 4, "three alarms and the calls' incidents: {}", day.incidents);
    assert_eq!(day.press_to_accepted.count, 1);
    assert_eq!(day.press_to_accepted.median_s, Some(30));
    assert_eq!(day.press_to_on_scene.median_s, Some(600));
    assert_eq!(day.press_to_console.median_s, Some(0), "the engine opened each the moment it was pressed");

    // By station: the elder is s-1's; by day: the one day.
    let by_station = c.report(Grouping::Station).await;
    // The calls came from a number in no elder's file: their incident has no station.
    assert_eq!(by_station.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["(none)", "s-1"]);
    let (nobody_s, s1) = (&by_station.rows[0], &by_station.rows[1]);
    assert_eq!((s1.alarms, s1.calls_in, nobody_s.alarms, nobody_s.calls_in), (3, 0, 0, 2));
    assert_eq!(s1.standards[..3], day.standards[..3], "TSA and NFPA are the elder's station's alone");
    assert_eq!(by_station.total, *day);
    let by_day = c.report(Grouping::Day).await;
    assert_eq!(by_day.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["2025-11-13"]);

    // By shift: with the default day and night shifts the morning is the day shift's; with a
    // shift change at 09:30 the first two alarms (09:00, 09:20) fall before it and the false
    // alarm and the calls (09:52 on) after.
    let by_shift = c.report(Grouping::Shift).await;
    assert_eq!(by_shift.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["2025-11-13 08:00"]);
    let mut day_shift = by_day.rows[0].clone();
    day_shift.key = "2025-11-13 08:00".into();
    assert_eq!(by_shift.rows[0], day_shift, "the day's figures, under the shift's key");
    let three = Shifts::parse(&["07:00", "09:30", "19:00"]).unwrap();
    let by_shift = c.report_in_shifts(Grouping::Shift, three).await;
    assert_eq!(
        by_shift.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ["2025-11-13 07:00", "2025-11-13 09:30"]
    );
    let (early, late) = (&by_shift.rows[0], &by_shift.rows[1]);
    assert_eq!((early.alarms, early.handed_to_120, early.false_alarms, early.calls_in), (2, 1, 0, 0));
    assert_eq!((late.alarms, late.handed_to_120, late.false_alarms, late.calls_in), (1, 0, 1, 2));
    assert_eq!(early.incidents + late.incidents, day.incidents, "every incident in one shift");
    let tsa_early = early.standards.iter().find(|s| s.standard == Standard::Tsa60).unwrap();
    assert_eq!((tsa_early.met, tsa_early.missed, tsa_early.missed_ids.clone()), (1, 1, vec![handed]));
    assert_eq!(by_shift.total, *day, "the whole day, however it is cut");

    // The next day has none of it.
    let q = ReportQuery {
        from: c.tally.day_end(),
        to: c.tally.day_end().plus_millis(86_400_000),
        by: Grouping::Day,
        utc_offset_min: UTC8,
        limits: StandardLimits::default(),
        now: c.now,
        shifts: Shifts::default(),
        programme_overdue_ms: ProgrammePolicy::default().overdue_after_ms,
    };
    let next = c.store.report(&q).await.unwrap();
    assert!(next.rows.is_empty());
    assert_eq!(next.total.incidents, 0);
}

/// A province's districts are zones: a report by zone has a row per zone, each counting the
/// incidents whose numbers carry it, zone 0's elder answered in time and zone 1's two alarms
/// with nobody of their own to go.
async fn a_report_by_zone_counts_each_zones_incidents(store: Arc<dyn Store>) {
    let mut c = Centre::in_district(store, district_in_two_zones()).await;
    let t0 = c.now;
    let town = c.press(EventType::Sos).await;
    c.at(later(t0, 30 * S)).await;
    c.responder(town, ResponderAction::Accept).await;
    c.at(later(t0, 60 * S)).await;
    let hills = [
        c.press_on(&DeviceId::parse("d-2").unwrap(), EventType::Sos).await,
        c.press_on(&DeviceId::parse("d-3").unwrap(), EventType::Fall).await,
    ];
    assert_eq!(Zone::of(town.0), Zone::FIRST);
    assert!(hills.iter().all(|id| Zone::of(id.0) == Zone::new(1).unwrap()), "zone 1's numbers: {hills:?}");
    c.at(later(t0, 5 * 60 * S)).await;

    let by_zone = c.report(Grouping::Zone).await;
    assert_eq!(by_zone.by, Grouping::Zone);
    assert_eq!(by_zone.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["0", "1"]);
    let (zone0, zone1) = (&by_zone.rows[0], &by_zone.rows[1]);
    assert_eq!((zone0.incidents, zone0.alarms, zone0.press_to_accepted.count), (1, 1, 1));
    assert_eq!((zone1.incidents, zone1.alarms, zone1.press_to_accepted.count), (2, 2, 0));
    let tsa = |row: &ReportRow| {
        let s = row.standards.iter().find(|s| s.standard == Standard::Tsa60).unwrap();
        (s.met, s.missed, s.pending, s.missed_ids.clone())
    };
    assert_eq!(tsa(zone0), (1, 0, 0, vec![]), "zone 0's alarm was accepted in 30 s");
    let (met, missed, pending, mut late) = tsa(zone1);
    late.sort();
    assert_eq!((met, missed, pending, late), (0, 2, 0, hills.to_vec()), "nobody took zone 1's on in 60 s");
    assert_eq!(by_zone.total, c.report(Grouping::None).await.total, "the whole day, however it is cut");
    assert_eq!(by_zone.total.incidents, 3);
}

/// e-1 on a daily call: the first round falls somewhere in the first day (spread by the
/// elder's id) and is found well at once; the next falls due a day later and is left open for
/// two days, overdue. Returns the centre and when it started.
async fn daily_calls(store: Arc<dyn Store>) -> (Centre, Timestamp) {
    let mut registry = district();
    registry.elders[0].profile.schedule = WelfareSchedule { call_every_days: Some(1), visit_every_days: None };
    let mut c = Centre::in_district(store, registry).await;
    let start = c.now;
    c.e.start_health(start);
    let calls = |c: &Centre| -> Vec<IncidentId> {
        c.log
            .iter()
            .filter(|e| matches!(e.change, Change::Opened { welfare: Some(WelfareReason::ScheduledCall), .. }))
            .map(|e| e.incident_id)
            .collect()
    };
    // The first round falls somewhere in the first day (spread by the elder's id): hour by hour
    // until it opens, then found well at once.
    let mut hour = 0;
    while calls(&c).is_empty() {
        hour += 1;
        assert!(hour <= 25, "the first call falls due within a day");
        c.at(later(start, hour * 3_600 * S)).await;
    }
    let first = calls(&c)[0];
    for action in [
        DispatcherAction::Resolve { outcome: "well: she is fine".into() },
        DispatcherAction::Close { outcome: "well: she is fine".into() },
    ] {
        c.dispatcher(first, action).await;
    }
    // The next falls due a day later and is left open for two days: overdue.
    let done = c.now;
    for h in 1..=72 {
        c.at(later(done, h * 3_600 * S)).await;
    }
    let open: Vec<IncidentId> = calls(&c).into_iter().filter(|id| *id != first).collect();
    assert_eq!(open.len(), 1, "one call at a time: the second stays open");

    (c, start)
}

/// The programme's columns: each row's task and outcome are its events', the report's query of
/// before reads the same, and migration 0025 on a store without them fills in the same.
async fn the_programmes_columns_are_its_events_and_0025_fills_them_in(store: Arc<dyn Store>, db: Db) {
    use anxin_store::report::{INCIDENT_FACTS, INCIDENT_FACTS_FROM_EVENTS};
    let (c, _) = daily_calls(store).await;
    c.store.fold_milestones().await.unwrap();
    let rows = db.facts(INCIDENT_FACTS).await;
    let kept: BTreeMap<IncidentId, Milestones> = rows.iter().map(|(id, f)| (*id, f.milestones.clone())).collect();
    assert_eq!(kept, said_by(&c.log).0);
    let tasks: Vec<(Option<WelfareReason>, TaskOutcome, bool)> = rows
        .values()
        .filter(|f| f.milestones.welfare.is_some_and(|r| r.is_programme()))
        .map(|f| (f.milestones.welfare, f.milestones.outcome, f.milestones.ended_at.is_some()))
        .collect();
    assert_eq!(
        tasks,
        [
            (Some(WelfareReason::ScheduledCall), TaskOutcome::Well, true),
            (Some(WelfareReason::ScheduledCall), TaskOutcome::Other, false)
        ]
    );
    assert_eq!(db.facts(INCIDENT_FACTS_FROM_EVENTS).await, rows, "the fold of the events agrees");
    db.run("ALTER TABLE incident_milestones DROP COLUMN welfare; ALTER TABLE incident_milestones DROP COLUMN outcome")
        .await;
    db.run(db.tasks_0025()).await;
    assert_eq!(db.facts(INCIDENT_FACTS).await, rows, "migration 0025 fills in the same");
}

/// The welfare programme's tasks and the service lane's orders in a report, through the real
/// engine and store: e-1's daily call falls due and is found well, then falls due again and
/// is left open past its overdue time; an order nobody can take (the district has no
/// provider) is left to a dispatcher. The report by station counts them at s-1.
async fn a_report_counts_the_programmes_tasks_and_the_service_lanes_orders(store: Arc<dyn Store>) {
    let (mut c, start) = daily_calls(store).await;
    let order = OrderRequest {
        elder_id: ElderId::parse("e-1").unwrap(),
        category: "cleaning".into(),
        from: later(c.now, 3_600 * S),
        to: later(c.now, 3 * 3_600 * S),
        notes: String::new(),
        source: OrderSource::Dispatcher,
        self_paid_agreed: true,
    };
    let mut out = Outbox::default();
    let placed = c.e.place_order(order, Actor::Dispatcher("dispatcher".into()), c.now, &mut out).unwrap();
    c.take(out).await;
    assert_eq!(c.e.order(placed).map(|o| o.state), Some(OrderState::Unmatched), "no provider in the district");

    let q = ReportQuery {
        from: start,
        to: later(c.now, 2 * 86_400 * S),
        by: Grouping::Station,
        utc_offset_min: UTC8,
        limits: StandardLimits::default(),
        now: c.now,
        shifts: Shifts::default(),
        programme_overdue_ms: ProgrammePolicy::default().overdue_after_ms,
    };
    let report = c.store.report(&q).await.expect("report");
    let s1 = report.rows.iter().find(|r| r.key == "s-1").expect("s-1's row");
    assert_eq!(
        s1.programme,
        ProgrammeFigures {
            calls_due: 2,
            done_on_time: 1,
            open: 1,
            open_overdue: 1,
            well: 1,
            ..ProgrammeFigures::default()
        }
    );
    assert_eq!(s1.services, ServiceFigures { orders: 1, unmatched: 1, ..ServiceFigures::default() });
    assert_eq!((report.total.programme.calls_due, report.total.services.orders), (2, 1));
}

both!(
    a_days_report_agrees_with_the_wallboards_day,
    a_report_by_zone_counts_each_zones_incidents,
    a_report_counts_the_programmes_tasks_and_the_service_lanes_orders
);

/// A store reached by SQL, for what the `Store` trait does not show: the incidents' rows.
enum Db {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl Db {
    /// Each row of `sql` over all time (its `$1` and `$2` bound to the first and last instants),
    /// read by `lite` or `pg`.
    async fn all<T>(
        &self,
        sql: &str,
        lite: fn(&sqlx::sqlite::SqliteRow) -> T,
        pg: fn(&sqlx::postgres::PgRow) -> T,
    ) -> Vec<T> {
        let (from, to) = (0i64, i64::MAX);
        match self {
            Db::Sqlite(pool) => {
                sqlx::query(sql).bind(from).bind(to).fetch_all(pool).await.unwrap().iter().map(lite).collect()
            }
            Db::Postgres(pool) => {
                sqlx::query(sql).bind(from).bind(to).fetch_all(pool).await.unwrap().iter().map(pg).collect()
            }
        }
    }

    /// The rows of `sql` (one of the report's incidents' queries) over all time, by incident.
    async fn facts(&self, sql: &str) -> BTreeMap<IncidentId, IncidentFacts> {
        use anxin_store::report::facts;
        let rows = self.all(sql, |r| facts(r).unwrap(), |r| facts(r).unwrap()).await;
        rows.into_iter().map(|f| (f.id, f)).collect()
    }

    /// The rows of [`anxin_store::report::CALL_FACTS`] over all time, by incident and call.
    async fn calls(&self) -> BTreeMap<(IncidentId, String), CallFacts> {
        use anxin_store::report::{call_facts, CALL_FACTS};
        let rows = self.all(CALL_FACTS, |r| call_facts(r).unwrap(), |r| call_facts(r).unwrap()).await;
        rows.into_iter().map(|c| ((c.incident, c.call_id.clone()), c)).collect()
    }

    async fn run(&self, sql: &str) {
        match self {
            Db::Sqlite(pool) => drop(sqlx::raw_sql(sql).execute(pool).await.unwrap()),
            Db::Postgres(pool) => drop(sqlx::raw_sql(sql).execute(pool).await.unwrap()),
        }
    }

    /// Migration 0023 as this store runs it.
    fn fill_0023(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => include_str!("../../../migrations/sqlite/0023_incident_milestones_filled.sql"),
            Db::Postgres(_) => include_str!("../../../migrations/postgres/0023_incident_milestones_filled.sql"),
        }
    }

    /// Migration 0025 as this store runs it.
    fn tasks_0025(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => include_str!("../../../migrations/sqlite/0025_programme_milestones.sql"),
            Db::Postgres(_) => include_str!("../../../migrations/postgres/0025_programme_milestones.sql"),
        }
    }

    /// Migration 0024 as this store runs it.
    fn calls_0024(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => include_str!("../../../migrations/sqlite/0024_call_milestones.sql"),
            Db::Postgres(_) => include_str!("../../../migrations/postgres/0024_call_milestones.sql"),
        }
    }
}

/// Once folded, every incident's row holds the milestones its events say (`Milestones::of`
/// them), however the events were cut into commits and with every batch committed twice; a
/// fold finds nothing more to do; the report's SQL of before, which folded them from the
/// events, reads the same; and migration 0023, run on a table emptied of them, fills in the
/// same again and sets the marks so that a fold after it finds nothing to do either.
/// [`morning`], and in zone 1 a service request raised to an SOS, handed to 110 and 119, then
/// cancelled: every sort of milestone. Returns the raised request.
async fn morning_in_two_zones(c: &mut Centre) -> IncidentId {
    morning(c).await;
    // And in zone 1, with nobody of its own: a service request raised to an SOS, handed to
    // 110 and 119, then cancelled.
    let d2 = DeviceId::parse("d-2").unwrap();
    let t = later(c.now, 60 * S);
    c.at(t).await;
    let raised = c.press_on(&d2, EventType::Service).await;
    c.at(later(t, 5 * S)).await;
    assert_eq!(c.press_on(&d2, EventType::Sos).await, raised, "the SOS joins the request");
    for number in ["110", "119"] {
        c.dispatcher(raised, DispatcherAction::Escalate { number: number.into(), reference: None }).await;
    }
    c.at(later(t, 60 * S)).await;
    c.dispatcher(raised, DispatcherAction::Cancel { reason: "their son came".into() }).await;
    raised
}

/// The rows of milestones each incident and call has, by [`Db::facts`] and [`Db::calls`].
async fn rows_of(db: &Db) -> (BTreeMap<IncidentId, Milestones>, BTreeMap<(IncidentId, String), CallMilestones>) {
    let incidents = db.facts(anxin_store::report::INCIDENT_FACTS).await;
    let calls = db.calls().await;
    (
        incidents.into_iter().map(|(id, f)| (id, f.milestones)).collect(),
        calls.into_iter().map(|(k, c)| (k, c.milestones)).collect(),
    )
}

/// The milestones `log` says each incident and each call that rang has.
fn said_by(
    log: &[IncidentEvent],
) -> (BTreeMap<IncidentId, Milestones>, BTreeMap<(IncidentId, String), CallMilestones>) {
    let mut incidents: BTreeMap<IncidentId, Milestones> = BTreeMap::new();
    for e in log {
        incidents.entry(e.incident_id).or_default().absorb(e);
    }
    (incidents, CallMilestones::of(log).into_iter().filter(|(_, m)| m.rang_at.is_some()).collect())
}

/// With a fold after every commit, each row is made by one fold and merged with each later
/// one, and holds the same as one fold of everything: every column takes in the next.
async fn a_row_takes_in_each_fold(store: Arc<dyn Store>, db: Db) {
    let mut c = Centre::in_district(store, district_in_two_zones()).await;
    c.fold_each = true;
    morning_in_two_zones(&mut c).await;
    let (incidents, calls) = said_by(&c.log);
    assert_eq!(rows_of(&db).await, (incidents, calls));
}

async fn each_incidents_row_holds_the_milestones_its_events_say(store: Arc<dyn Store>, db: Db) {
    let mut c = Centre::in_district(store, district_in_two_zones()).await;
    c.twice = true;
    let raised = morning_in_two_zones(&mut c).await;

    let (said, said_calls) = said_by(&c.log);
    assert!(db.facts(anxin_store::report::INCIDENT_FACTS).await.is_empty(), "nothing folded before a fold");
    let events = c.store.fold_milestones().await.unwrap();
    assert_eq!(events, c.log.len() as u64, "every event folded once");
    assert_eq!(c.store.fold_milestones().await.unwrap(), 0, "and nothing more");
    let rows = db.facts(anxin_store::report::INCIDENT_FACTS).await;
    let kept: BTreeMap<IncidentId, Milestones> = rows.iter().map(|(id, f)| (*id, f.milestones.clone())).collect();
    assert_eq!(kept, said, "each row's milestones are its events'");
    // Every sort of milestone is in the story, so a column a commit left out would show.
    let some = |pick: fn(&Milestones) -> bool| said.values().any(pick);
    assert!(some(|m| m.emergency_at.is_some()) && some(|m| m.answered_at.is_some()));
    assert!(some(|m| m.dispatched_at.is_some()) && some(|m| m.first_offer_at.is_some()));
    assert!(some(|m| m.accepted_at.is_some()) && some(|m| m.on_scene_at.is_some()));
    assert!(some(|m| m.ended_at.is_some()) && some(|m| m.nobody_going) && some(|m| m.called_120));
    assert!(some(|m| m.called_110) && some(|m| m.called_119) && some(|m| m.false_alarm) && some(|m| m.cancelled));
    assert!(some(|m| m.outcome == TaskOutcome::Well), "an outcome with a programme's code");
    let raised_at = |m: &Milestones| m.emergency_at;
    assert!(
        raised_at(&said[&raised]) > Some(rows[&raised].opened_at),
        "an emergency from when the SOS raised the request, not from its opening"
    );

    assert_eq!(db.facts(anxin_store::report::INCIDENT_FACTS_FROM_EVENTS).await, rows, "the fold of the events agrees");

    // Each call that rang has its row: its events' milestones, under its incident's station.
    let calls = db.calls().await;
    assert_eq!(rows_of(&db).await.1, said_calls, "each call's row holds its events' milestones");
    assert!(said_calls.values().any(|m| m.answered_at.is_some()) && said_calls.values().any(|m| m.ended_at.is_some()));
    for ((id, call), row) in &calls {
        assert_eq!(row.station, rows[id].station, "call {call} is counted with its incident's station");
    }
    // Migration 0024 on a store that had none fills in the same.
    db.run("DROP TABLE call_milestones").await;
    db.run(db.calls_0024()).await;
    assert_eq!(db.calls().await, calls, "migration 0024 fills in the same");

    db.run("DELETE FROM incident_milestones; DELETE FROM milestones_folded").await;
    assert!(db.facts(anxin_store::report::INCIDENT_FACTS).await.is_empty());
    db.run(db.fill_0023()).await;
    // And 0025 after it, on an upgrade: the programme's columns.
    db.run("ALTER TABLE incident_milestones DROP COLUMN welfare; ALTER TABLE incident_milestones DROP COLUMN outcome")
        .await;
    db.run(db.tasks_0025()).await;
    assert_eq!(db.facts(anxin_store::report::INCIDENT_FACTS).await, rows, "migrations 0023 and 0025 fill in the same");
    assert_eq!(c.store.fold_milestones().await.unwrap(), 0, "0023 marked all it folded");

    // Events stored after are folded by the next report, which counts them.
    let before = c.report(Grouping::None).await.total;
    c.at(later(c.now, 60 * S)).await;
    let late = c.press(EventType::Fall).await;
    let after = c.report(Grouping::None).await.total;
    assert_eq!((after.incidents, after.alarms), (before.incidents + 1, before.alarms + 1), "{late:?} is in it");
    assert!(db.facts(anxin_store::report::INCIDENT_FACTS).await.contains_key(&late));

    // The elder is enrolled elsewhere after: the morning's alarms stay with the station she
    // was enrolled with when they came in.
    let s1_before = c.report(Grouping::Station).await.rows.into_iter().find(|r| r.key == "s-1").expect("s-1's row");
    db.run("UPDATE elders SET station_id = 's-2' WHERE id = 'e-1'").await;
    let s1_after = c.report(Grouping::Station).await.rows.into_iter().find(|r| r.key == "s-1").expect("s-1's row");
    assert_eq!(s1_after, s1_before);
    assert!(s1_after.alarms >= 4, "the morning's three alarms and the fall: {}", s1_after.alarms);

    // An event this build cannot read (a newer engine's in another zone, say) is passed over
    // and the press after it counted: one bad row does not stop the reports.
    let elsewhere = Zone::new(5).unwrap().base() + 1;
    assert_eq!(c.store.unreadable_events(), 0);
    db.run(&format!(
        "INSERT INTO incident_events (seq, incident_id, at, actor, change, body) VALUES \
         ({elsewhere}, {elsewhere}, {}, 'engine', 'from_a_newer_engine', '{{\"type\":\"from_a_newer_engine\"}}')",
        c.now.millis()
    ))
    .await;
    c.at(later(c.now, 60 * S)).await;
    let after_bad = c.press_on(&DeviceId::parse("d-3").unwrap(), EventType::Sos).await;
    let total = c.report(Grouping::None).await.total;
    assert_eq!(total.alarms, after.alarms + 1, "{after_bad:?} is counted past the unreadable event");
    assert_eq!(c.store.fold_milestones().await.unwrap(), 0, "and the unreadable one is not read again");
    assert_eq!(c.store.unreadable_events(), 1, "and it is counted, once");

    // A call's ringing and its answer folded in two folds make one row, and the report after
    // counts it answered in 5 s.
    c.at(later(c.now, 60 * S)).await;
    let ring = CallEvent::Ringing { call_id: "c3".into(), from: "13900000001".into(), to: "96110".into() };
    let rung = c.call(ring).await.expect("the call rings on an incident");
    assert!(c.store.fold_milestones().await.unwrap() > 0);
    let answered = later(c.now, 5 * S);
    c.at(answered).await;
    c.call(CallEvent::Answered { call_id: "c3".into(), by: "dispatcher".into() }).await;
    let with_c3 = c.report(Grouping::None).await.total;
    assert_eq!(
        (with_c3.calls_in, nena_met(&with_c3)),
        (total.calls_in + 1, nena_met(&total) + 1),
        "c3 is in, answered in time"
    );
    assert_eq!(db.calls().await[&(rung, "c3".to_string())].milestones.answered_at, Some(answered));
}

fn nena_met(row: &ReportRow) -> u32 {
    row.standards.iter().find(|s| s.standard == Standard::Nena).unwrap().met
}

mod milestones {
    use super::*;

    async fn sqlite() -> (Arc<dyn Store>, Db, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("anxin.db").display());
        let store = anxin_store::open(&url).await.unwrap();
        // One connection: a statement sqlx keeps on another can hold a read of the schema from
        // before a test's ALTER TABLE (SQLite then says a dropped column is still there).
        let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).connect(&url).await.unwrap();
        (store, Db::Sqlite(pool), dir)
    }

    async fn postgres() -> Option<(Arc<dyn Store>, Db)> {
        let Some(server) = anxin_store::testkit::postgres_server() else {
            eprintln!("skipped: {} is not set", anxin_store::testkit::POSTGRES_URL_VAR);
            return None;
        };
        let url = anxin_store::testkit::fresh_postgres_database(&server).await;
        let store = anxin_store::open(&url).await.unwrap();
        Some((store, Db::Postgres(sqlx::PgPool::connect(&url).await.unwrap())))
    }

    #[tokio::test]
    async fn on_sqlite() {
        let (store, db, _dir) = sqlite().await;
        each_incidents_row_holds_the_milestones_its_events_say(store, db).await;
    }

    #[tokio::test]
    async fn on_postgres() {
        if let Some((store, db)) = postgres().await {
            each_incidents_row_holds_the_milestones_its_events_say(store, db).await;
        }
    }

    #[tokio::test]
    async fn programme_on_sqlite() {
        let (store, db, _dir) = sqlite().await;
        the_programmes_columns_are_its_events_and_0025_fills_them_in(store, db).await;
    }

    #[tokio::test]
    async fn programme_on_postgres() {
        if let Some((store, db)) = postgres().await {
            the_programmes_columns_are_its_events_and_0025_fills_them_in(store, db).await;
        }
    }

    #[tokio::test]
    async fn folded_commit_by_commit_on_sqlite() {
        let (store, db, _dir) = sqlite().await;
        a_row_takes_in_each_fold(store, db).await;
    }

    #[tokio::test]
    async fn folded_commit_by_commit_on_postgres() {
        if let Some((store, db)) = postgres().await {
            a_row_takes_in_each_fold(store, db).await;
        }
    }
}
