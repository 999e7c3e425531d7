//! How quick the supervisors' reports are over a year of a province: `--incidents N`
//! incidents (default 5,000,000) spread over a year are generated into a fresh SQLite file and
//! a fresh PostgreSQL database, then each report is read `--runs` times on each store, the
//! way `GET /api/v1/reports` reads it (`ReportStore::report`: the SQL and the fold).
//!
//! ```sh
//! cargo run --release -p anxin-store --example report_load -- \
//!     --postgres postgres://postgres@127.0.0.1:5432/test --incidents 5000000 --runs 5
//! ```
//!
//! The incidents are the engine's own: each sort of incident (an SOS met, a fall nobody went
//! to and 120 took, a false alarm, a call to the hotline...) is driven once through the real
//! engine and committed to a scratch store, and its rows as the store wrote them are the
//! template every incident of that sort is copied from, with its own id, elder, time and
//! call id, and its steps' times stretched or shrunk by a random factor. See USAGE.

use anxin_core::testkit::{d1, one_of_each, r1};
use anxin_core::*;
use anxin_store::Batch;
use sqlx::{Connection, Row};
use std::io::Write;
use std::time::Instant;

const USAGE: &str = "\
usage: report_load [--incidents 5000000] [--stores sqlite,postgres] [--postgres URL] [--runs 5]
                   [--dir DIR] [--stations 300] [--elders 500000] [--seed 1] [--explain] [--keep] [--compare]
                   [--reports shift,day,week,month,station,year] [--record FILE.jsonl] [--label NAME]
       report_load --plot OUT.svg --from FILE.jsonl --labels 5M:sqlite,5M-pg

  --incidents  incidents generated over the year 2025 (UTC+8), each with the events the
               engine logs for its sort (default 5000000)
  --stores     which stores to load and time, in order (default sqlite,postgres)
  --postgres   PostgreSQL server URL; a database of the bench's own is created on it and
               dropped at the end (default postgres://postgres@127.0.0.1:5432/test)
  --dir        where the SQLite file goes, deleted at the end (default: a temp dir)
  --runs       times each report is read on each store (default 5); the table gives the
               median, the fastest and the slowest
  --stations   stations in the province (default 300)
  --elders     elders enrolled with them, round robin (default 500000)
  --seed       the generator's seed (default 1)
  --explain    print each store's plan for the reports' two queries (one month)
  --compare    also time the reports' SQL alone (every row fetched, none folded): the
               incidents' query as it was before migration 0022 (each incident's milestones
               folded from its events) and as it is (read from incident_milestones), and
               the calls' query before migration 0024 (read from the calls' events) and as
               it is (from call_milestones), taking turns run by run on the same data
  --keep       keep the SQLite file and the PostgreSQL database, and print where they are
               (drop the database by hand after: DROP DATABASE name)
  --reports    which reports to time, in order (default all of them; none: load only)
  --record     append one JSON line per store and report to FILE, named by --label
  --plot       run nothing: draw each report's median time (and its fastest and slowest)
               against the incidents in it, a line per label and store, from the lines of
               --from whose label is one of --labels (LABEL, or LABEL:STORE for one store's)

Reports timed (each a ReportQuery read through ReportStore::report):
  shift    the last day of the year, by shift (08:00 and 20:00)
  day      the last day of the year, by day
  week     its last full week, by day
  month    December, by day
  station  December, by station
  year     the whole year, by month
The incidents and calls are written without their milestones, as a store logged before
migration 0022 holds them, and migrations 0023, 0024 and 0025 then fill them in (timed). Loading
takes minutes (progress is shown); 5,000,000 incidents take 15-20 GB per store.
";

fn usage_error(what: &str) -> ! {
    eprint!("report_load: {what}\n\n{USAGE}");
    std::process::exit(2)
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> T {
    text.parse().unwrap_or_else(|_| usage_error(&format!("{flag} takes a whole number, not {text:?}")))
}

struct Args {
    incidents: u64,
    stores: Vec<String>,
    postgres: String,
    dir: Option<std::path::PathBuf>,
    runs: usize,
    stations: usize,
    elders: usize,
    seed: u64,
    explain: bool,
    keep: bool,
    compare: bool,
    reports: Vec<String>,
    record: Option<std::path::PathBuf>,
    label: Option<String>,
    plot: Option<std::path::PathBuf>,
    from: Option<std::path::PathBuf>,
    labels: Vec<String>,
}

fn parse_args() -> Args {
    let mut a = Args {
        incidents: 5_000_000,
        stores: vec!["sqlite".into(), "postgres".into()],
        postgres: "postgres://postgres@127.0.0.1:5432/test".into(),
        dir: None,
        runs: 5,
        stations: 300,
        elders: 500_000,
        seed: 1,
        explain: false,
        keep: false,
        compare: false,
        reports: ASKED.iter().map(|a| a.name.to_string()).collect(),
        record: None,
        label: None,
        plot: None,
        from: None,
        labels: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| usage_error(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--incidents" => a.incidents = number(&flag, &value()),
            "--stores" => {
                a.stores = value().split(',').map(|s| s.trim().to_string()).collect();
                if let Some(s) = a.stores.iter().find(|s| !matches!(s.as_str(), "sqlite" | "postgres")) {
                    usage_error(&format!("--stores takes sqlite and postgres, not {s:?}"));
                }
            }
            "--postgres" => a.postgres = value(),
            "--dir" => a.dir = Some(value().into()),
            "--runs" => a.runs = number(&flag, &value()),
            "--stations" => a.stations = number(&flag, &value()),
            "--elders" => a.elders = number(&flag, &value()),
            "--seed" => a.seed = number(&flag, &value()),
            "--explain" => a.explain = true,
            "--keep" => a.keep = true,
            "--compare" => a.compare = true,
            "--reports" => {
                let v = value();
                a.reports = v.split(',').filter(|r| *r != "none").map(|r| r.trim().to_string()).collect();
                if let Some(r) = a.reports.iter().find(|r| !ASKED.iter().any(|a| a.name == r.as_str())) {
                    usage_error(&format!("--reports takes shift, day, week, month, station, year or none, not {r:?}"));
                }
            }
            "--record" => a.record = Some(value().into()),
            "--label" => a.label = Some(value()),
            "--plot" => a.plot = Some(value().into()),
            "--from" => a.from = Some(value().into()),
            "--labels" => a.labels = value().split(',').map(|l| l.trim().to_string()).collect(),
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => usage_error(&format!("unknown flag {other}")),
        }
    }
    if a.runs == 0 || a.stations == 0 || a.elders == 0 {
        usage_error("--runs, --stations and --elders take at least 1");
    }
    a
}

/// A small, seeded generator (SplitMix64): the same seed gives the same province.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const UTC8: i32 = 480;
const S: i64 = 1000;
const MIN: i64 = 60 * S;
/// The call id every template's call has; each copy gets its own.
const TEMPLATE_CALL: &str = "tmpl-call-0";

/// One event row as the store wrote it, its time as an offset from the press.
#[derive(Clone)]
struct EventRow {
    offset_ms: i64,
    actor: String,
    change: String,
    body: String,
}

/// A sort of incident, as the engine logged it once.
struct Template {
    name: &'static str,
    /// How many of every 1000 incidents are of this sort.
    per_mille: u64,
    kind: String,
    state: String,
    is_open: bool,
    body: String,
    /// `opened_at` after the press.
    opened_ms: i64,
    events: Vec<EventRow>,
}

/// Drives the engine through one incident of a sort and keeps what it logged.
struct Story {
    e: Engine,
    now: Timestamp,
    t0: Timestamp,
    events: Vec<IncidentEvent>,
    incidents: Vec<Incident>,
    msgs: u32,
}

impl Story {
    fn new() -> Self {
        let mut registry = one_of_each();
        registry.elders[0].profile.station_id = Some(StationId::parse("s-1").unwrap());
        // Most elders have family on file: what they are told is logged with the rest.
        registry.elders[0].profile.contacts = vec![
            Contact {
                id: "c1".into(),
                name: "王女士".into(),
                relation: "女儿".into(),
                phone: "13800000001".into(),
                ..Contact::default()
            },
            Contact {
                id: "c2".into(),
                name: "刘先生".into(),
                relation: "邻居".into(),
                phone: "13800000002".into(),
                ..Contact::default()
            },
        ];
        registry.staff.push(Staff {
            id: "dispatcher".into(),
            name: "值班调度员".into(),
            role: StaffRole::Dispatcher,
            password_hash: String::new(),
        });
        let policy = Policy { utc_offset_min: UTC8, offer_timeout_ms: 90_000, ..Policy::default() };
        let t0 = Timestamp(1_735_700_000_000);
        Story {
            e: Engine::new(policy, registry, Resume::default()),
            now: t0,
            t0,
            events: vec![],
            incidents: vec![],
            msgs: 0,
        }
    }

    fn take(&mut self, out: Outbox) {
        self.events.extend(out.events);
        self.incidents.extend(out.incidents);
    }

    fn at(&mut self, after_ms: i64) -> &mut Self {
        self.now = self.t0.plus_millis(after_ms);
        let mut out = Outbox::default();
        self.e.tick(self.now, &mut out);
        self.take(out);
        self
    }

    fn press(&mut self, kind: EventType) -> IncidentId {
        self.msgs += 1;
        let event = DeviceEvent {
            msg_id: MessageId::parse(format!("m{}", self.msgs)).unwrap(),
            event: kind,
            device_ts: self.now,
            fix: FixReport::Absent,
            health: Default::default(),
        };
        let mut out = Outbox::default();
        let outcome = self.e.handle_device_event(&d1(), event, self.now, &mut out).expect("the press is taken");
        self.take(out);
        match outcome {
            Outcome::Opened(id) | Outcome::Joined(id) => id,
            _ => IncidentId(0),
        }
    }

    fn responder(&mut self, id: IncidentId, action: ResponderAction) -> &mut Self {
        let mut out = Outbox::default();
        self.e.responder_acts(&r1(), id, action, self.now, &mut out).expect("the responder acts");
        self.take(out);
        self
    }

    fn dispatcher(&mut self, id: IncidentId, action: DispatcherAction) -> &mut Self {
        let mut out = Outbox::default();
        self.e.dispatcher_acts("dispatcher", id, action, self.now, &mut out).expect("the dispatcher acts");
        self.take(out);
        self
    }

    fn duty(&mut self, on: bool) {
        let mut out = Outbox::default();
        self.e.set_duty(&r1(), on, self.now, &mut out).expect("duty");
        self.take(out);
    }

    fn call(&mut self, event: CallEvent) -> Option<IncidentId> {
        let mut out = Outbox::default();
        let outcome = self.e.handle_call(event, self.now, &mut out);
        self.take(out);
        outcome.incident()
    }
}

/// The sorts of incident and their shares: mostly alarms met by the nearest responder, a
/// sixth false alarms (pressed by mistake), some cancelled from the device, service requests,
/// calls to the hotline, a few with nobody free that a dispatcher hands to 120, and the odd
/// fire and break-in.
fn stories() -> Vec<(&'static str, u64, Story)> {
    let ring = || CallEvent::Ringing { call_id: TEMPLATE_CALL.into(), from: "13900000001".into(), to: "96110".into() };
    let mut all = vec![];

    let mut s = Story::new();
    let id = s.press(EventType::Sos);
    s.at(25 * S).responder(id, ResponderAction::Accept);
    s.at(60 * S).responder(id, ResponderAction::EnRoute);
    s.at(9 * MIN).responder(id, ResponderAction::OnScene);
    s.at(30 * MIN).responder(id, ResponderAction::Resolve { outcome: "helped up, family told".into() });
    all.push(("sos_met", 380, s));

    let mut s = Story::new();
    let id = s.press(EventType::Fall);
    s.at(40 * S).responder(id, ResponderAction::Accept);
    s.at(70 * S).responder(id, ResponderAction::EnRoute);
    s.at(12 * MIN).responder(id, ResponderAction::OnScene);
    s.at(45 * MIN).responder(id, ResponderAction::Resolve { outcome: "helped up, no injury".into() });
    all.push(("fall_met", 160, s));

    // The responder takes it just before the offer lapses: TSA's 60 s missed.
    let mut s = Story::new();
    let id = s.press(EventType::Sos);
    s.at(MIN);
    s.at(85 * S).responder(id, ResponderAction::Accept);
    s.at(16 * MIN).responder(id, ResponderAction::OnScene);
    s.at(40 * MIN).responder(id, ResponderAction::Resolve { outcome: "helped".into() });
    all.push(("sos_late", 40, s));

    let mut s = Story::new();
    s.duty(false);
    let id = s.press(EventType::Fall);
    for m in 1..=10 {
        s.at(m * MIN);
    }
    s.dispatcher(id, DispatcherAction::Claim);
    s.dispatcher(id, DispatcherAction::Escalate { number: "120".into(), reference: Some("KM-7".into()) });
    s.at(31 * MIN).dispatcher(id, DispatcherAction::Resolve { outcome: "taken to hospital by 120".into() });
    all.push(("nobody_going_120", 30, s));

    let mut s = Story::new();
    let id = s.press(EventType::Sos);
    s.at(20 * S).dispatcher(id, DispatcherAction::FalseAlarm { reason: "pressed by mistake".into() });
    all.push(("false_alarm", 170, s));

    let mut s = Story::new();
    let id = s.press(EventType::Sos);
    s.at(8 * S).press(EventType::Cancel);
    s.at(30 * S).dispatcher(id, DispatcherAction::Cancel { reason: "the elder cancelled".into() });
    all.push(("cancelled", 60, s));

    let mut s = Story::new();
    let id = s.press(EventType::Service);
    s.at(2 * MIN).dispatcher(id, DispatcherAction::Claim);
    s.dispatcher(
        id,
        DispatcherAction::LogCall {
            who: "elder".into(),
            number: Some("13800000000".into()),
            outcome: "wants a meal delivered".into(),
        },
    );
    s.at(6 * MIN).dispatcher(id, DispatcherAction::Resolve { outcome: "meal ordered".into() });
    all.push(("service", 100, s));

    let mut s = Story::new();
    let id = s.call(ring()).unwrap_or(IncidentId(0));
    s.at(9 * S).call(CallEvent::Answered { call_id: TEMPLATE_CALL.into(), by: "dispatcher".into() });
    s.at(3 * MIN).call(CallEvent::Ended { call_id: TEMPLATE_CALL.into(), reason: telephony::CallEnd::Bye });
    s.dispatcher(id, DispatcherAction::Resolve { outcome: "asked about the service".into() });
    all.push(("call_in", 50, s));

    let mut s = Story::new();
    let id = s.press(EventType::Smoke);
    s.at(30 * S).dispatcher(id, DispatcherAction::Claim);
    s.dispatcher(id, DispatcherAction::Escalate { number: "119".into(), reference: None });
    s.at(45 * S).responder(id, ResponderAction::Accept);
    s.at(8 * MIN).responder(id, ResponderAction::OnScene);
    s.at(50 * MIN).responder(id, ResponderAction::Resolve { outcome: "pan on the stove, aired".into() });
    all.push(("fire_119", 5, s));

    let mut s = Story::new();
    let id = s.press(EventType::Intrusion);
    s.at(20 * S).dispatcher(id, DispatcherAction::Claim);
    s.dispatcher(id, DispatcherAction::Escalate { number: "110".into(), reference: None });
    s.at(35 * S).responder(id, ResponderAction::Accept);
    s.at(11 * MIN).responder(id, ResponderAction::OnScene);
    s.at(60 * MIN).responder(id, ResponderAction::Resolve { outcome: "police came".into() });
    all.push(("intrusion_110", 5, s));
    all
}

/// Commits each story to a scratch SQLite store and reads its rows back as the store wrote
/// them: the templates.
async fn templates(dir: &std::path::Path) -> Result<Vec<Template>, Box<dyn std::error::Error>> {
    let mut out = vec![];
    for (n, (name, per_mille, story)) in stories().into_iter().enumerate() {
        let url = format!("sqlite://{}", dir.join(format!("template-{n}.db")).display());
        let store = anxin_store::open(&url).await?;
        let outbox = Outbox { events: story.events.clone(), incidents: story.incidents.clone(), ..Outbox::default() };
        store.commit(Batch::of(&outbox)).await?;
        drop(store);
        let mut db = sqlx::SqliteConnection::connect(&url).await?;
        let i = sqlx::query("SELECT id, kind, state, is_open, pressed_at, opened_at, body FROM incidents ORDER BY id")
            .fetch_one(&mut db)
            .await?;
        let (id, pressed): (i64, i64) = (i.get("id"), i.get("pressed_at"));
        let events =
            sqlx::query("SELECT at, actor, change, body FROM incident_events WHERE incident_id = ? ORDER BY seq")
                .bind(id)
                .fetch_all(&mut db)
                .await?
                .into_iter()
                .map(|r| EventRow {
                    offset_ms: r.get::<i64, _>("at") - pressed,
                    actor: r.get("actor"),
                    change: r.get("change"),
                    body: r.get("body"),
                })
                .collect();
        out.push(Template {
            name,
            per_mille,
            kind: i.get("kind"),
            state: i.get("state"),
            is_open: i.get("is_open"),
            body: i.get("body"),
            opened_ms: i.get::<i64, _>("opened_at") - pressed,
            events,
        });
    }
    assert_eq!(out.iter().map(|t| t.per_mille).sum::<u64>(), 1000, "the shares add up");
    Ok(out)
}

/// 2025-01-01 00:00 at the centre (UTC+8).
fn year_start() -> Timestamp {
    anxin_core::report::parse_day("2025-01-01", UTC8).unwrap()
}

const YEAR_MS: i64 = 365 * 86_400_000;

/// One generated incident's rows.
struct Generated {
    id: i64,
    elder: String,
    template: usize,
    pressed_at: i64,
    /// The factor the template's steps are stretched by.
    stretch: f64,
}

struct Generator<'a> {
    templates: &'a [Template],
    /// Template index per share of 1000.
    pick: Vec<usize>,
    rng: Rng,
    n: u64,
    elders: u64,
    next: u64,
}

impl<'a> Generator<'a> {
    fn new(templates: &'a [Template], n: u64, elders: u64, seed: u64) -> Self {
        let pick =
            templates.iter().enumerate().flat_map(|(i, t)| std::iter::repeat_n(i, t.per_mille as usize)).collect();
        Generator { templates, pick, rng: Rng(seed), n, elders, next: 0 }
    }

    /// The next incident, in the order they opened: each in its own slot of the year, at a
    /// random time within it.
    fn next(&mut self) -> Option<Generated> {
        if self.next == self.n {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let slot = YEAR_MS as f64 / self.n as f64;
        let pressed_at = year_start().millis() + (slot * (i as f64 + self.rng.unit() * 0.99)) as i64;
        Some(Generated {
            id: i as i64 + 1,
            elder: format!("e{:07}", self.rng.below(self.elders)),
            template: self.pick[self.rng.below(1000) as usize],
            pressed_at,
            stretch: 0.4 + 2.1 * self.rng.unit(),
        })
    }

    /// The incident's row and its events' rows, seq from `seq` on.
    fn rows(&self, g: &Generated, seq: &mut i64) -> (IncidentRow, Vec<EventOut>) {
        let t = &self.templates[g.template];
        let call = format!("c{}", g.id);
        let at = |offset: i64| g.pressed_at + if offset <= 0 { offset } else { (offset as f64 * g.stretch) as i64 };
        let events: Vec<_> = t
            .events
            .iter()
            .map(|e| {
                *seq += 1;
                let body =
                    if e.body.contains(TEMPLATE_CALL) { e.body.replace(TEMPLATE_CALL, &call) } else { e.body.clone() };
                EventOut { seq: *seq, at: at(e.offset_ms), actor: e.actor.clone(), change: e.change.clone(), body }
            })
            .collect();
        let last = events.last().map_or(g.pressed_at, |e| e.at);
        let row = IncidentRow {
            id: g.id,
            device_id: format!("d{}", &g.elder[1..]),
            elder_id: g.elder.clone(),
            kind: t.kind.clone(),
            state: t.state.clone(),
            is_open: t.is_open,
            pressed_at: g.pressed_at,
            opened_at: at(t.opened_ms).max(g.pressed_at),
            updated_at: last,
            last_seq: *seq,
            body: t.body.clone(),
        };
        (row, events)
    }
}

/// An event's row, but for its incident's id.
struct EventOut {
    seq: i64,
    at: i64,
    actor: String,
    change: String,
    body: String,
}

struct IncidentRow {
    id: i64,
    device_id: String,
    elder_id: String,
    kind: String,
    state: String,
    is_open: bool,
    pressed_at: i64,
    opened_at: i64,
    updated_at: i64,
    last_seq: i64,
    body: String,
}

/// The province's ledger: stations, and elders enrolled with them round robin, each with a
/// device.
fn province(stations: usize, elders: usize) -> Registry {
    let mut r = Registry::default();
    for s in 0..stations {
        r.stations.push(Station {
            id: StationId::parse(format!("st-{s:03}")).unwrap(),
            name: format!("站点 {s}"),
            position: Coordinates::new(24.0 + (s % 30) as f64 * 0.05, 102.0 + (s / 30) as f64 * 0.05).unwrap(),
            phone: None,
            service_circle_min: None,
            zone: Default::default(),
        });
    }
    for i in 0..elders {
        let profile = ElderProfile {
            station_id: Some(StationId::parse(format!("st-{:03}", i % stations)).unwrap()),
            ..ElderProfile::default()
        };
        r.elders.push(Elder {
            id: ElderId::parse(format!("e{i:07}")).unwrap(),
            name: format!("长者{i}"),
            address: format!("{} 号", i),
            home: Coordinates::new(24.0 + (i % 1000) as f64 * 0.001, 102.0 + (i / 1000 % 1000) as f64 * 0.001).unwrap(),
            phone: None,
            notes: String::new(),
            profile,
        });
        r.devices.push(Device {
            id: DeviceId::parse(format!("d{i:07}")).unwrap(),
            elder_id: ElderId::parse(format!("e{i:07}")).unwrap(),
            model: None,
            sim: None,
        });
    }
    r
}

/// Incidents a transaction holds while loading.
const TX_INCIDENTS: u64 = 50_000;

struct Progress {
    started: Instant,
    last: Instant,
    total: u64,
    what: String,
}

impl Progress {
    fn new(total: u64, what: &str) -> Self {
        Progress { started: Instant::now(), last: Instant::now(), total, what: what.into() }
    }

    fn show(&mut self, done: u64, events: u64) {
        if self.last.elapsed().as_secs() < 5 && done < self.total {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64();
        let rate = done as f64 / secs.max(1e-3);
        eprintln!(
            "  {}: {done}/{} incidents ({:.0}%), {events} events, {:.0} s, {:.0} incidents/s, ~{:.0} s to go",
            self.what,
            self.total,
            100.0 * done as f64 / self.total as f64,
            secs,
            rate,
            (self.total - done) as f64 / rate.max(1.0)
        );
    }
}

/// SQLite: multi-row INSERTs, a transaction per `TX_INCIDENTS` incidents, on a connection of
/// the loader's own with the journal relaxed (the store's own connections are `FULL`).
async fn load_sqlite(url: &str, gen: &mut Generator<'_>) -> Result<u64, Box<dyn std::error::Error>> {
    use sqlx::sqlite::{SqliteConnectOptions, SqliteSynchronous};
    use std::str::FromStr;
    let options = SqliteConnectOptions::from_str(url)?.synchronous(SqliteSynchronous::Off);
    let mut db = sqlx::SqliteConnection::connect_with(&options).await?;
    let mut progress = Progress::new(gen.n, "sqlite");
    let (mut seq, mut done, mut events_n) = (0i64, 0u64, 0u64);
    loop {
        let mut incidents = Vec::new();
        let mut events = Vec::new();
        while let Some(g) = (incidents.len() < TX_INCIDENTS as usize).then(|| gen.next()).flatten() {
            let (row, ev) = gen.rows(&g, &mut seq);
            events.extend(ev.into_iter().map(|e| (row.id, e)));
            incidents.push(row);
        }
        if incidents.is_empty() {
            break;
        }
        let mut tx = db.begin().await?;
        for chunk in events.chunks(5000) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO incident_events (seq, incident_id, at, actor, change, body) ",
            );
            q.push_values(chunk, |mut b, (incident, e)| {
                b.push_bind(e.seq)
                    .push_bind(*incident)
                    .push_bind(e.at)
                    .push_bind(e.actor.as_str())
                    .push_bind(e.change.as_str())
                    .push_bind(e.body.as_str());
            });
            q.build().execute(&mut *tx).await?;
        }
        for chunk in incidents.chunks(2500) {
            let mut q = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT INTO incidents (id, device_id, elder_id, kind, state, is_open, pressed_at, opened_at, \
                 updated_at, last_seq, body) ",
            );
            q.push_values(chunk, |mut b, i| {
                b.push_bind(i.id)
                    .push_bind(i.device_id.as_str())
                    .push_bind(i.elder_id.as_str())
                    .push_bind(i.kind.as_str())
                    .push_bind(i.state.as_str())
                    .push_bind(i.is_open)
                    .push_bind(i.pressed_at)
                    .push_bind(i.opened_at)
                    .push_bind(i.updated_at)
                    .push_bind(i.last_seq)
                    .push_bind(i.body.as_str());
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        done += incidents.len() as u64;
        events_n += events.len() as u64;
        progress.show(done, events_n);
    }
    Ok(events_n)
}

/// A value for PostgreSQL's `COPY ... FROM STDIN` text format.
fn copy_text(out: &mut Vec<u8>, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

/// PostgreSQL: `COPY ... FROM STDIN`, one per `TX_INCIDENTS` incidents and table.
async fn load_postgres(url: &str, gen: &mut Generator<'_>) -> Result<u64, Box<dyn std::error::Error>> {
    let mut db = sqlx::PgConnection::connect(url).await?;
    let mut progress = Progress::new(gen.n, "postgres");
    let (mut seq, mut done, mut events_n) = (0i64, 0u64, 0u64);
    loop {
        let (mut ev_text, mut inc_text) = (Vec::with_capacity(32 << 20), Vec::with_capacity(32 << 20));
        let mut n = 0u64;
        while let Some(g) = (n < TX_INCIDENTS).then(|| gen.next()).flatten() {
            let (row, ev) = gen.rows(&g, &mut seq);
            for e in &ev {
                write!(ev_text, "{}\t{}\t{}\t", e.seq, row.id, e.at)?;
                copy_text(&mut ev_text, &e.actor);
                ev_text.push(b'\t');
                copy_text(&mut ev_text, &e.change);
                ev_text.push(b'\t');
                copy_text(&mut ev_text, &e.body);
                ev_text.push(b'\n');
            }
            write!(
                inc_text,
                "{}\t{}\t{}\t{}\t{}\t{}\t",
                row.id, row.device_id, row.elder_id, row.kind, row.state, row.is_open
            )?;
            write!(inc_text, "{}\t{}\t{}\t{}\t", row.pressed_at, row.opened_at, row.updated_at, row.last_seq)?;
            copy_text(&mut inc_text, &row.body);
            inc_text.push(b'\n');
            events_n += ev.len() as u64;
            n += 1;
        }
        if n == 0 {
            break;
        }
        let mut tx = db.begin().await?;
        let mut copy =
            tx.copy_in_raw("COPY incident_events (seq, incident_id, at, actor, change, body) FROM STDIN").await?;
        copy.send(ev_text).await?;
        copy.finish().await?;
        let mut copy = tx
            .copy_in_raw(
                "COPY incidents (id, device_id, elder_id, kind, state, is_open, pressed_at, opened_at, updated_at, \
                 last_seq, body) FROM STDIN",
            )
            .await?;
        copy.send(inc_text).await?;
        copy.finish().await?;
        tx.commit().await?;
        done += n;
        progress.show(done, events_n);
    }
    Ok(events_n)
}

/// A report the bench times.
struct Asked {
    name: &'static str,
    from: &'static str,
    to: &'static str,
    by: Grouping,
}

const ASKED: &[Asked] = &[
    Asked { name: "shift", from: "2025-12-31", to: "2026-01-01", by: Grouping::Shift },
    Asked { name: "day", from: "2025-12-31", to: "2026-01-01", by: Grouping::Day },
    Asked { name: "week", from: "2025-12-22", to: "2025-12-29", by: Grouping::Day },
    Asked { name: "month", from: "2025-12-01", to: "2026-01-01", by: Grouping::Day },
    Asked { name: "station", from: "2025-12-01", to: "2026-01-01", by: Grouping::Station },
    Asked { name: "year", from: "2025-01-01", to: "2026-01-01", by: Grouping::Month },
];

fn query(a: &Asked) -> ReportQuery {
    ReportQuery {
        from: report::parse_day(a.from, UTC8).unwrap(),
        to: report::parse_day(a.to, UTC8).unwrap(),
        by: a.by,
        utc_offset_min: UTC8,
        limits: StandardLimits::default(),
        now: report::parse_day("2026-01-02", UTC8).unwrap(),
        shifts: Shifts::default(),
        programme_overdue_ms: anxin_core::ProgrammePolicy::default().overdue_after_ms,
    }
}

/// One report's timings on one store.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    label: String,
    store: String,
    report: String,
    incidents_in_db: u64,
    events_in_db: u64,
    incidents_in_report: u64,
    rows: usize,
    runs: usize,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    cpu_model: String,
    nproc: usize,
    /// How long migration 0023 took to fill in the milestones of all the store's incidents
    /// (none in lines recorded before it).
    #[serde(default)]
    fill_s: Option<f64>,
    /// How long migration 0024 took to fill in every call's (none in lines recorded before it).
    #[serde(default)]
    calls_fill_s: Option<f64>,
    /// How long migration 0025 took (none in lines recorded before it).
    #[serde(default)]
    tasks_fill_s: Option<f64>,
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_default()
}

/// Migration 0023 as each store runs it: every incident's milestones from its events. The
/// loaders write the rows without them, as a store logged before 0022 holds them, and this
/// fills them in, timed: what an upgrade costs.
const FILL_0023: [(&str, &str); 2] = [
    ("sqlite", include_str!("../../../migrations/sqlite/0023_incident_milestones_filled.sql")),
    ("postgres", include_str!("../../../migrations/postgres/0023_incident_milestones_filled.sql")),
];

/// Migration 0025 as each store runs it: the programme's task and outcome columns, filled in
/// from the events. Run again, timed, after the columns are dropped, as 0023 is.
const TASKS_0025: [(&str, &str); 2] = [
    ("sqlite", include_str!("../../../migrations/sqlite/0025_programme_milestones.sql")),
    ("postgres", include_str!("../../../migrations/postgres/0025_programme_milestones.sql")),
];

/// Migration 0024 as each store runs it: the calls' table, and every call's milestones from its
/// events. Run again, timed, on a table dropped after the load, as 0023 is.
const CALLS_0024: [(&str, &str); 2] = [
    ("sqlite", include_str!("../../../migrations/sqlite/0024_call_milestones.sql")),
    ("postgres", include_str!("../../../migrations/postgres/0024_call_milestones.sql")),
];

/// Runs `sql` on the store at `url`, on a connection of its own.
async fn run_sql(store: &str, url: &str, sql: &str) -> Result<(), sqlx::Error> {
    if store == "sqlite" {
        sqlx::raw_sql(sql).execute(&mut sqlx::SqliteConnection::connect(url).await?).await.map(drop)
    } else {
        sqlx::raw_sql(sql).execute(&mut sqlx::PgConnection::connect(url).await?).await.map(drop)
    }
}

/// Times once one query of report `a` alone, every row fetched.
async fn time_sql(store: &str, url: &str, a: &Asked, sql: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let q = query(a);
    let (from, to) = (q.from.millis(), q.to.millis());
    let (mut sqlite, mut pg) = if store == "sqlite" {
        (Some(sqlx::SqliteConnection::connect(url).await?), None)
    } else {
        (None, Some(sqlx::PgConnection::connect(url).await?))
    };
    // Every row fetched and dropped as it comes, as a report streams them: the year's 5,000,000
    // rows held at once took more than this machine's 24 GB on SQLite.
    use futures_util::TryStreamExt;
    let t = Instant::now();
    let mut rows = 0u64;
    if let Some(db) = sqlite.as_mut() {
        let mut s = sqlx::query(sql).bind(from).bind(to).fetch(db);
        while s.try_next().await?.is_some() {
            rows += 1;
        }
    } else if let Some(db) = pg.as_mut() {
        let mut s = sqlx::query(sql).bind(from).bind(to).fetch(db);
        while s.try_next().await?.is_some() {
            rows += 1;
        }
    }
    std::hint::black_box(rows);
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}

/// The incidents' query before and after migration 0022, and the calls' before and after 0024,
/// report by report, on the same data, the four taking turns run by run: the milestones folded
/// from the events (before) and read from `incident_milestones` and `call_milestones` (after).
async fn compare(store: &str, url: &str, args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    use anxin_store::report::{CALL_EVENTS, CALL_FACTS, INCIDENT_FACTS, INCIDENT_FACTS_FROM_EVENTS};
    for a in ASKED.iter().filter(|a| args.reports.iter().any(|r| r == a.name)) {
        let (mut old, mut new, mut calls_old, mut calls) = (vec![], vec![], vec![], vec![]);
        for _ in 0..args.runs {
            old.push(time_sql(store, url, a, INCIDENT_FACTS_FROM_EVENTS).await?);
            new.push(time_sql(store, url, a, INCIDENT_FACTS).await?);
            calls_old.push(time_sql(store, url, a, CALL_EVENTS).await?);
            calls.push(time_sql(store, url, a, CALL_FACTS).await?);
        }
        for v in [&mut old, &mut new, &mut calls_old, &mut calls] {
            v.sort_by(f64::total_cmp);
        }
        let m = |v: &[f64]| v[v.len() / 2];
        let spread = |v: &[f64]| format!("{:.1} ms ({:.1}–{:.1})", m(v), v[0], v[v.len() - 1]);
        println!(
            "{store:<8} {:<8} incidents' query alone: from the events (before 0022) {}  from incident_milestones \
             {}  {:.1}x;  calls' query: from the events (before 0024) {}  from call_milestones {}  {:.1}x",
            a.name,
            spread(&old),
            spread(&new),
            m(&old) / m(&new),
            spread(&calls_old),
            spread(&calls),
            m(&calls_old) / m(&calls)
        );
    }
    Ok(())
}

/// Prints the plans of the reports' two queries over December.
async fn explain(store: &str, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    let q = query(&ASKED[3]);
    let (from, to) = (q.from.millis(), q.to.millis());
    for (name, sql) in [("incidents", anxin_store::report::INCIDENT_FACTS), ("calls", anxin_store::report::CALL_FACTS)]
    {
        println!("plan of the {name} query on {store} (December):");
        if store == "sqlite" {
            let mut db = sqlx::SqliteConnection::connect(url).await?;
            let sql = sql.replace("$1", &from.to_string()).replace("$2", &to.to_string());
            for r in sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}")).fetch_all(&mut db).await? {
                println!("  {}", r.get::<String, _>("detail"));
            }
        } else {
            let mut db = sqlx::PgConnection::connect(url).await?;
            let sql = sql.replace("$1", &from.to_string()).replace("$2", &to.to_string());
            for r in sqlx::query(&format!("EXPLAIN {sql}")).fetch_all(&mut db).await? {
                println!("  {}", r.get::<String, _>(0));
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args();
    if let Some(out) = &args.plot {
        let from = args.from.as_ref().unwrap_or_else(|| usage_error("--plot needs --from FILE.jsonl"));
        let records: Vec<Record> = std::fs::read_to_string(from)?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?;
        // `LABEL` takes the label's lines of every store, `LABEL:STORE` of one.
        let picked = |r: &Record| {
            args.labels.iter().any(|l| match l.split_once(':') {
                Some((label, store)) => r.label == label && r.store == store,
                None => r.label == *l,
            })
        };
        let records: Vec<Record> = records.into_iter().filter(picked).collect();
        if records.is_empty() {
            usage_error("no line of --from has a label of --labels");
        }
        plot(&records, out)?;
        println!("drew {} reports' timings into {}", records.len(), out.display());
        return Ok(());
    }
    let mut temp = tempfile::tempdir_in(args.dir.clone().unwrap_or_else(std::env::temp_dir))?;
    temp.disable_cleanup(args.keep);
    let templates = templates(temp.path()).await?;
    eprintln!("templates (sort, per mille, events):");
    for t in &templates {
        eprintln!("  {:<18} {:>4} {:>3}  {}", t.name, t.per_mille, t.events.len(), t.kind);
    }
    let registry = province(args.stations, args.elders);
    let (cpu, nproc) = (cpu_model(), std::thread::available_parallelism()?.get());
    println!(
        "machine: {cpu}, {nproc} cores; {} incidents over 2025, {} stations, {} elders",
        args.incidents, args.stations, args.elders
    );
    let mut table = vec![];
    for which in &args.stores {
        let url = if which == "sqlite" {
            format!("sqlite://{}", temp.path().join("report-load.db").display())
        } else {
            anxin_store::testkit::fresh_postgres_database(&args.postgres).await
        };
        let store = anxin_store::open(&url).await?;
        let t = Instant::now();
        store.save_registry(&registry).await?;
        eprintln!("{which}: ledger stored in {:.1} s", t.elapsed().as_secs_f64());
        let mut gen = Generator::new(&templates, args.incidents, args.elders as u64, args.seed);
        let t = Instant::now();
        let events =
            if which == "sqlite" { load_sqlite(&url, &mut gen).await? } else { load_postgres(&url, &mut gen).await? };
        let load_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        run_sql(which, &url, FILL_0023.iter().find(|(s, _)| s == which).expect("listed").1).await?;
        let fill_s = t.elapsed().as_secs_f64();
        println!("{which}: migration 0023 filled in every incident's milestones in {fill_s:.1} s");
        run_sql(
            which,
            &url,
            "ALTER TABLE incident_milestones DROP COLUMN welfare; ALTER TABLE incident_milestones DROP COLUMN outcome",
        )
        .await?;
        let t = Instant::now();
        run_sql(which, &url, TASKS_0025.iter().find(|(s, _)| s == which).expect("listed").1).await?;
        let tasks_fill_s = t.elapsed().as_secs_f64();
        println!("{which}: migration 0025 filled in the programme's tasks in {tasks_fill_s:.1} s");
        run_sql(which, &url, "DROP TABLE call_milestones").await?;
        let t = Instant::now();
        run_sql(which, &url, CALLS_0024.iter().find(|(s, _)| s == which).expect("listed").1).await?;
        let calls_fill_s = t.elapsed().as_secs_f64();
        println!("{which}: migration 0024 filled in every call's milestones in {calls_fill_s:.1} s");
        // What a fold behind the engine costs: the last day's events folded again, as a
        // report a day after the last fold would (the generator numbers every event in zone 0).
        let day = report::parse_day("2025-12-31", UTC8).unwrap().millis();
        run_sql(
            which,
            &url,
            &format!(
                "UPDATE milestones_folded SET seq = (SELECT MAX(seq) FROM incident_events WHERE at < {day}); \
                 DELETE FROM incident_milestones WHERE opened_at >= {day}; \
                 DELETE FROM call_milestones WHERE rang_at >= {day}"
            ),
        )
        .await?;
        let t = Instant::now();
        let refolded = store.fold_milestones().await?;
        let fold_s = t.elapsed().as_secs_f64();
        println!(
            "{which}: a day's {refolded} events folded in {:.0} ms ({:.1} µs an event)",
            fold_s * 1000.0,
            fold_s * 1e6 / refolded.max(1) as f64
        );
        if which == "postgres" {
            // What autovacuum would have done by the time a year had been logged.
            let mut db = sqlx::PgConnection::connect(&url).await?;
            sqlx::query("VACUUM ANALYZE incidents").execute(&mut db).await?;
            sqlx::query("VACUUM ANALYZE incident_events").execute(&mut db).await?;
            sqlx::query("VACUUM ANALYZE elders").execute(&mut db).await?;
            sqlx::query("VACUUM ANALYZE incident_milestones").execute(&mut db).await?;
            sqlx::query("VACUUM ANALYZE call_milestones").execute(&mut db).await?;
        }
        let size = if which == "sqlite" {
            std::fs::metadata(temp.path().join("report-load.db")).map(|m| m.len()).unwrap_or(0)
        } else {
            let mut db = sqlx::PgConnection::connect(&url).await?;
            sqlx::query_scalar::<_, i64>("SELECT pg_database_size(current_database())").fetch_one(&mut db).await? as u64
        };
        println!(
            "{which}: loaded {} incidents, {events} events in {load_s:.0} s ({:.0} incidents/s), {:.1} GB",
            args.incidents,
            args.incidents as f64 / load_s,
            size as f64 / 1e9
        );
        if args.explain {
            explain(which, &url).await?;
        }
        if args.compare {
            compare(which, &url, &args).await?;
        }
        for a in ASKED.iter().filter(|a| args.reports.iter().any(|r| r == a.name)) {
            let q = query(a);
            let mut ms = vec![];
            let mut report = None;
            for _ in 0..args.runs {
                let t = Instant::now();
                report = Some(store.report(&q).await?);
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            ms.sort_by(f64::total_cmp);
            let report = report.expect("runs >= 1");
            if a.name == "year" {
                // The same on every store: what the figures say, as a check that both read
                // the log alike.
                let t = &report.total;
                let share = |s: Standard| {
                    t.standards.iter().find(|f| f.standard == s).and_then(|f| f.share_pct).unwrap_or(f64::NAN)
                };
                println!(
                    "{which}: the year: {} alarms, {} calls in, {} nobody going, {} to 120, {} false alarms, {} \
                     cancelled; TSA 60 s {:.1}%, NFPA {:.1}%, closed loop {:.1}%, NENA {:.1}%; median press to \
                     accepted {:?} s",
                    t.alarms,
                    t.calls_in,
                    t.nobody_going,
                    t.handed_to_120,
                    t.false_alarms,
                    t.cancelled,
                    share(Standard::Tsa60),
                    share(Standard::Nfpa1225),
                    share(Standard::ClosedLoop),
                    share(Standard::Nena),
                    t.press_to_accepted.median_s
                );
            }
            let r = Record {
                label: args.label.clone().unwrap_or_else(|| "report_load".into()),
                store: which.clone(),
                report: a.name.to_string(),
                incidents_in_db: args.incidents,
                events_in_db: events,
                incidents_in_report: report.total.incidents,
                rows: report.rows.len(),
                runs: args.runs,
                median_ms: ms[ms.len() / 2],
                min_ms: ms[0],
                max_ms: ms[ms.len() - 1],
                cpu_model: cpu.clone(),
                nproc,
                fill_s: Some(fill_s),
                calls_fill_s: Some(calls_fill_s),
                tasks_fill_s: Some(tasks_fill_s),
            };
            println!(
                "{which:<8} {:<8} {:>9} incidents {:>4} rows  median {:>9.1} ms  min {:>9.1}  max {:>9.1}",
                a.name, r.incidents_in_report, r.rows, r.median_ms, r.min_ms, r.max_ms
            );
            if let Some(path) = &args.record {
                let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
                writeln!(f, "{}", serde_json::to_string(&r)?)?;
            }
            table.push(r);
        }
        drop(store);
        if args.keep {
            println!("{which}: kept at {url}");
        } else if which == "postgres" {
            anxin_store::testkit::drop_postgres_database(&args.postgres, &url).await;
        } else {
            let _ = std::fs::remove_file(temp.path().join("report-load.db"));
        }
    }
    println!("\n| report | store | incidents in it | median ms | min–max ms |");
    println!("|---|---|---:|---:|---:|");
    for r in &table {
        println!(
            "| {} | {} | {} | {:.0} | {:.0}–{:.0} |",
            r.report, r.store, r.incidents_in_report, r.median_ms, r.min_ms, r.max_ms
        );
    }
    Ok(())
}

/// Each report's median time against the incidents in it, on log scales, a line per label
/// and store, with a bar from its fastest to its slowest run.
fn plot(records: &[Record], out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    let mut series: Vec<(String, String)> = Vec::new();
    for r in records {
        let key = (r.label.clone(), r.store.clone());
        if !series.contains(&key) {
            series.push(key);
        }
    }
    let x_max = records.iter().map(|r| r.incidents_in_report).max().unwrap_or(1) as f64 * 2.0;
    let x_min = records.iter().map(|r| r.incidents_in_report).min().unwrap_or(1) as f64 / 2.0;
    let y_max = records.iter().map(|r| r.max_ms).fold(1.0f64, f64::max) * 2.0;
    let y_min = records.iter().map(|r| r.min_ms).fold(f64::INFINITY, f64::min).max(1.0) / 2.0;
    let root = SVGBackend::new(out, (900, 520)).into_drawing_area();
    root.fill(&WHITE)?;
    // One size of store in every line, or each line says its own.
    let sizes: std::collections::BTreeSet<u64> = records.iter().map(|r| r.incidents_in_db).collect();
    let caption = match sizes.iter().next() {
        Some(n) if sizes.len() == 1 => {
            format!("supervisors' reports over a year of {n} incidents: time against the incidents in the report")
        }
        _ => "supervisors' reports over a year: time against the incidents in the report".to_string(),
    };
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .margin_right(48)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((x_min..x_max).log_scale(), (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("incidents in the report (log scale): shift/day, week, month (by day or station), the year")
        .y_desc("milliseconds (log scale)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    let colours = [RGBColor(30, 100, 200), RGBColor(220, 90, 40), RGBColor(60, 150, 60), RGBColor(130, 60, 160)];
    for (i, (label, store)) in series.iter().enumerate() {
        let colour = colours[i % colours.len()];
        let mut mine: Vec<&Record> = records.iter().filter(|r| r.label == *label && r.store == *store).collect();
        mine.sort_by(|a, b| {
            a.incidents_in_report.cmp(&b.incidents_in_report).then(a.median_ms.total_cmp(&b.median_ms))
        });
        let line: Vec<(f64, f64)> = mine.iter().map(|r| (r.incidents_in_report as f64, r.median_ms)).collect();
        chart
            .draw_series(LineSeries::new(line, colour.stroke_width(2)))?
            .label(match mine.first() {
                Some(r) if sizes.len() > 1 => format!("{store} ({label}, {} incidents in all)", r.incidents_in_db),
                _ => format!("{store} ({label})"),
            })
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart.draw_series(mine.iter().map(|r| {
            let x = r.incidents_in_report as f64;
            PathElement::new(vec![(x, r.min_ms), (x, r.max_ms)], colour.stroke_width(1))
        }))?;
        chart.draw_series(
            mine.iter().map(|r| Circle::new((r.incidents_in_report as f64, r.median_ms), 3, colour.filled())),
        )?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
