//! The nearest available responder, found three ways in the same city: Anxin's in-process
//! R-tree, a PostGIS KNN query and a Redis `GEOSEARCH`, one after another in one run, each
//! next to the bare round trip to its server, and each answer checked against Anxin's.
//!
//! Run by hand, not in CI, with PostgreSQL (and PostGIS) on 127.0.0.1:5432 and Redis on
//! 127.0.0.1:6379:
//!
//! ```sh
//! cargo run --release -p anxin-benches --bin knn_compare -- --responders 100000 --queries 10000
//! ```
//!
//! It works in a PostgreSQL database of its own (`anxin_bench_knn`, created if missing) and
//! one Redis key of its own; it drops the table and deletes the key when done. A server that
//! cannot be reached is reported and skipped. Method and results: `docs/benchmarks.md`.

use anxin_benches::{brute_force_nearest, Summary, KUNMING_LAT, KUNMING_LON};
use anxin_core::geo::Coordinates;
use anxin_core::matcher::Matcher;
use anxin_core::ResponderId;
use anyhow::{bail, Context};
use clap::Parser;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

/// The Redis key holding the available responders' positions.
const REDIS_KEY: &str = "anxin_bench_knn:available";
/// Queries checked against a brute-force scan, so that the reference itself is known good.
const BRUTE_FORCE_CHECKS: usize = 500;
/// Disagreements printed in full; the rest are only counted.
const SHOWN_DISAGREEMENTS: usize = 5;

#[derive(Debug, Parser)]
#[command(about = "Nearest available responder: Anxin's R-tree vs PostGIS KNN vs Redis GEOSEARCH")]
struct Args {
    /// Responders in the city, available or not.
    #[arg(long, default_value_t = 100_000)]
    responders: usize,
    /// Timed queries per approach.
    #[arg(long, default_value_t = 10_000)]
    queries: usize,
    /// Share of responders who are unavailable (off duty or holding a job).
    #[arg(long, default_value_t = 0.3)]
    unavailable: f64,
    /// Seed of the generator that places responders and queries.
    #[arg(long, default_value_t = 0x616e_7869_6e00)]
    seed: u64,
    /// How far a responder may be, as the engine's `dispatch.max_offer_distance_m`.
    #[arg(long, default_value_t = 5_000.0)]
    radius_m: f64,
    /// Redis's second strategy searches this radius first, and the full one only if it finds nobody.
    #[arg(long, default_value_t = 500.0)]
    redis_first_radius_m: f64,
    /// Untimed queries each approach answers before its timed run.
    #[arg(long, default_value_t = 1_000)]
    warmup: usize,
    /// PostgreSQL connection, without the database (libpq key=value form).
    #[arg(long, default_value = "host=127.0.0.1 port=5432 user=postgres")]
    postgres: String,
    /// The scratch database the comparison creates and uses; no other is touched.
    #[arg(long, default_value = "anxin_bench_knn")]
    database: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379/")]
    redis: String,
}

/// Everyone the city has, and where SOS presses come from.
struct City {
    /// Responder `i` is called `r{i}`; its index is how answers are compared.
    responders: Vec<(Coordinates, bool)>,
    queries: Vec<Coordinates>,
}

impl City {
    fn new(args: &Args) -> Self {
        let mut rng = SmallRng::seed_from_u64(args.seed);
        let place = |rng: &mut SmallRng| {
            Coordinates::new(rng.random_range(KUNMING_LAT), rng.random_range(KUNMING_LON)).expect("inside the box")
        };
        let responders = (0..args.responders)
            .map(|_| {
                let at = place(&mut rng);
                (at, !rng.random_bool(args.unavailable))
            })
            .collect();
        let queries = (0..args.queries).map(|_| place(&mut rng)).collect();
        Self { responders, queries }
    }

    fn available(&self) -> impl Iterator<Item = (usize, Coordinates)> + '_ {
        self.responders.iter().enumerate().filter(|(_, (_, available))| *available).map(|(i, (at, _))| (i, *at))
    }
}

/// One answer: which responder (by index) and how far, as the approach itself measured it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Found {
    index: usize,
    distance_m: f64,
}

/// What one approach did.
struct Run {
    name: String,
    setup: Option<Duration>,
    /// How the setup time was spent, for the notes under the table.
    setup_detail: String,
    summary: Summary,
    /// One per query; `None` for the round-trip floors, which answer nothing.
    answers: Option<Vec<Option<Found>>>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !(0.0..1.0).contains(&args.unavailable) || args.responders == 0 || args.queries == 0 {
        bail!("need responders > 0, queries > 0 and 0 <= unavailable < 1");
    }
    let city = City::new(&args);
    let available = city.available().count();
    println!(
        "{} responders ({} available, {:.0}% not), {} queries, radius {} m, seed {:#x}, {} cores",
        args.responders,
        available,
        args.unavailable * 100.0,
        args.queries,
        args.radius_m,
        args.seed,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );

    let mut runs = Vec::new();
    let anxin = anxin(&args, &city);
    check_against_brute_force(&args, &city, anxin.answers.as_ref().expect("Anxin answers"));
    runs.push(anxin);
    match postgis(&args, &city) {
        Ok(mut r) => runs.append(&mut r),
        Err(e) => println!("PostGIS: skipped: {e:#}"),
    }
    match redis(&args, &city) {
        Ok(mut r) => runs.append(&mut r),
        Err(e) => println!("Redis: skipped: {e:#}"),
    }
    print!("{}", table(&runs));
    print!("{}", agreement(&city, &runs));
    Ok(())
}

/// Runs `warmup` untimed queries, then every query once, timing each call on its own.
fn measure<F>(queries: &[Coordinates], warmup: usize, mut query: F) -> anyhow::Result<(Summary, Vec<Option<Found>>)>
where
    F: FnMut(Coordinates) -> anyhow::Result<Option<Found>>,
{
    for &at in queries.iter().cycle().take(warmup) {
        std::hint::black_box(query(at)?);
    }
    let mut latencies = Vec::with_capacity(queries.len());
    let mut answers = Vec::with_capacity(queries.len());
    let started = Instant::now();
    for &at in queries {
        let t = Instant::now();
        let answer = query(at)?;
        latencies.push(t.elapsed());
        answers.push(answer);
    }
    let summary = Summary::new(latencies, started.elapsed()).expect("at least one query");
    Ok((summary, answers))
}

fn anxin(args: &Args, city: &City) -> Run {
    let started = Instant::now();
    let matcher = Matcher::new(city.available().map(|(i, at)| (responder_id(i), at)), []);
    let setup = started.elapsed();
    let (summary, answers) = measure(&city.queries, args.warmup, |at| {
        Ok(matcher.nearest_responder(at, args.radius_m).map(|n| Found {
            index: index_of(n.id.as_str()).expect("the matcher returns ids we gave it"),
            distance_m: n.distance_m,
        }))
    })
    .expect("the matcher cannot fail");
    Run {
        name: "Anxin R-tree, in process".into(),
        setup: Some(setup),
        setup_detail: format!("Anxin: bulk-loading {} available responders into the R-tree", matcher.available_count()),
        summary,
        answers: Some(answers),
    }
}

/// The reference must be right before others are judged by it.
fn check_against_brute_force(args: &Args, city: &City, answers: &[Option<Found>]) {
    let points: Vec<_> = city.available().collect();
    let checked = city.queries.len().min(BRUTE_FORCE_CHECKS);
    for (at, answer) in city.queries.iter().zip(answers).take(checked) {
        let scan = brute_force_nearest(&points, *at, args.radius_m).map(|n| n.distance_m);
        match (answer, scan) {
            (Some(a), Some(s)) if (a.distance_m - s).abs() < 1e-3 => {}
            (None, None) => {}
            _ => panic!("Anxin's matcher disagrees with a brute-force scan at {at:?}: {answer:?} vs {scan:?}"),
        }
    }
    println!("Anxin's answers agree with a brute-force haversine scan on the first {checked} queries.");
}

fn postgis(args: &Args, city: &City) -> anyhow::Result<Vec<Run>> {
    use postgres::{Client, NoTls};
    if !args.database.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        bail!("--database must be lower-case letters, digits and underscores");
    }
    let server = format!("{} connect_timeout=3", args.postgres);
    let mut admin = Client::connect(&format!("{server} dbname=postgres"), NoTls)
        .with_context(|| format!("cannot connect to PostgreSQL at `{}`", args.postgres))?;
    if admin.query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&args.database])?.is_none() {
        admin.batch_execute(&format!("CREATE DATABASE {}", args.database))?;
    }
    drop(admin);
    let mut db = Client::connect(&format!("{server} dbname={}", args.database), NoTls)?;
    db.batch_execute("CREATE EXTENSION IF NOT EXISTS postgis")
        .context("PostGIS is not installed on this server (Debian: apt-get install -y postgresql-15-postgis-3)")?;
    let versions = db.query_one("SELECT version(), postgis_lib_version()", &[])?;
    let (pg_version, postgis_version): (String, String) = (versions.get(0), versions.get(1));
    println!("PostGIS {postgis_version} on {}", pg_version.split(" on ").next().unwrap_or(&pg_version));

    let started = Instant::now();
    db.batch_execute(
        "DROP TABLE IF EXISTS responders;
         CREATE TABLE responders (
             id text PRIMARY KEY,
             available boolean NOT NULL,
             geog geography(Point, 4326) NOT NULL
         );",
    )?;
    // Shortest round-trip decimals: PostGIS parses back exactly the doubles Anxin holds.
    let mut rows = String::with_capacity(city.responders.len() * 48);
    for (i, (at, available)) in city.responders.iter().enumerate() {
        let flag = if *available { 't' } else { 'f' };
        writeln!(rows, "r{i}\t{flag}\tSRID=4326;POINT({} {})", at.lon(), at.lat()).expect("writing to a String");
    }
    let mut copy = db.copy_in("COPY responders (id, available, geog) FROM STDIN")?;
    copy.write_all(rows.as_bytes())?;
    copy.finish()?;
    let loaded = started.elapsed();
    // Only available responders are in the index, so the KNN scan never steps over the others.
    db.batch_execute(
        "CREATE INDEX responders_available_knn ON responders USING gist (geog) WHERE available;
         ANALYZE responders;",
    )?;
    let setup = started.elapsed();

    let point = "ST_SetSRID(ST_MakePoint($1, $2), 4326)::geography";
    let sql = format!(
        "SELECT id, ST_Distance(geog, {point}, false) FROM responders
         WHERE available ORDER BY geog <-> {point} LIMIT 1"
    );
    let first = city.queries[0];
    let plan: Vec<String> = db
        .query(&format!("EXPLAIN (COSTS OFF) {sql}"), &[&first.lon(), &first.lat()])?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    if !plan.iter().any(|line| line.contains("Index Scan using responders_available_knn")) {
        println!("PostGIS: warning: the planner does not use the KNN index:\n  {}", plan.join("\n  "));
    }
    let knn = db.prepare(&sql)?;
    let radius_m = args.radius_m;
    let (summary, answers) = measure(&city.queries, args.warmup, |at| {
        let Some(row) = db.query_opt(&knn, &[&at.lon(), &at.lat()])? else { return Ok(None) };
        let (id, distance_m): (String, f64) = (row.get(0), row.get(1));
        // The radius is checked here: in SQL (ST_DWithin) it can turn the plan from a KNN
        // walk into collecting everyone in range and sorting them.
        Ok((distance_m <= radius_m).then_some(Found { index: index_of(&id)?, distance_m }))
    })?;
    let knn_run = Run {
        name: "PostGIS KNN, partial GiST index".into(),
        setup: Some(setup),
        setup_detail: format!(
            "PostGIS: COPY of {} rows {}, then the partial GiST index and ANALYZE {}",
            city.responders.len(),
            duration(loaded),
            duration(setup - loaded)
        ),
        summary,
        answers: Some(answers),
    };

    let select_1 = db.prepare("SELECT 1")?;
    let (floor, _) = measure(&city.queries, args.warmup, |_| {
        db.query_one(&select_1, &[])?;
        Ok(None)
    })?;
    db.batch_execute("DROP TABLE responders")?;
    let floor_run = Run {
        name: "PostgreSQL `SELECT 1` (round-trip floor)".into(),
        setup: None,
        setup_detail: String::new(),
        summary: floor,
        answers: None,
    };
    Ok(vec![knn_run, floor_run])
}

fn redis(args: &Args, city: &City) -> anyhow::Result<Vec<Run>> {
    let client = redis::Client::open(args.redis.as_str())?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(3))
        .with_context(|| format!("cannot connect to Redis at {}", args.redis))?;
    let info: String = redis::cmd("INFO").arg("server").query(&mut con)?;
    let version = info.lines().find_map(|l| l.strip_prefix("redis_version:")).unwrap_or("?").trim().to_owned();
    println!("Redis {version}");

    // Only available responders are in the set: taking a job removes them, as in the matcher.
    let started = Instant::now();
    redis::cmd("DEL").arg(REDIS_KEY).query::<()>(&mut con)?;
    let available: Vec<_> = city.available().collect();
    for batch in available.chunks(1_000) {
        let mut add = redis::cmd("GEOADD");
        add.arg(REDIS_KEY);
        for (i, at) in batch {
            add.arg(at.lon()).arg(at.lat()).arg(format!("r{i}"));
        }
        add.query::<()>(&mut con)?;
    }
    let setup = started.elapsed();

    let mut search = |at: Coordinates, radius_m: f64| -> anyhow::Result<Option<Found>> {
        let found: Vec<(String, f64)> = redis::cmd("GEOSEARCH")
            .arg(REDIS_KEY)
            .arg("FROMLONLAT")
            .arg(at.lon())
            .arg(at.lat())
            .arg("BYRADIUS")
            .arg(radius_m)
            .arg("m")
            .arg("ASC")
            .arg("COUNT")
            .arg(1)
            .arg("WITHDIST")
            .query(&mut con)
            .context("GEOSEARCH (Redis 6.2 or later)")?;
        found.first().map(|(id, d)| Ok(Found { index: index_of(id)?, distance_m: *d })).transpose()
    };
    let full = args.radius_m;
    let (summary, answers) = measure(&city.queries, args.warmup, |at| search(at, full))?;
    let whole_radius = Run {
        name: format!("Redis GEOSEARCH {} ASC COUNT 1", metres(full)),
        setup: Some(setup),
        setup_detail: format!("Redis: GEOADD of {} available responders, 1,000 per command", available.len()),
        summary,
        answers: Some(answers),
    };
    let first = args.redis_first_radius_m.min(full);
    let (summary, answers) = measure(&city.queries, args.warmup, |at| match search(at, first)? {
        Some(found) => Ok(Some(found)),
        None => search(at, full),
    })?;
    let widened = answers.iter().filter(|a| a.is_none_or(|f| f.distance_m > first)).count();
    let widening = Run {
        name: format!("Redis GEOSEARCH {}, then {} if nobody", metres(first), metres(full)),
        setup: Some(setup),
        setup_detail: format!(
            "Redis: {widened} of {} queries found nobody within {} and searched again",
            city.queries.len(),
            metres(first)
        ),
        summary,
        answers: Some(answers),
    };
    let (floor, _) = measure(&city.queries, args.warmup, |_| {
        redis::cmd("PING").query::<String>(&mut con)?;
        Ok(None)
    })?;
    redis::cmd("DEL").arg(REDIS_KEY).query::<()>(&mut con)?;
    let floor_run = Run {
        name: "Redis `PING` (round-trip floor)".into(),
        setup: None,
        setup_detail: String::new(),
        summary: floor,
        answers: None,
    };
    Ok(vec![whole_radius, widening, floor_run])
}

fn responder_id(index: usize) -> ResponderId {
    ResponderId::parse(format!("r{index}")).expect("a valid id")
}

fn index_of(id: &str) -> anyhow::Result<usize> {
    id.strip_prefix('r').and_then(|n| n.parse().ok()).with_context(|| format!("unexpected responder id {id:?}"))
}

/// The latency and throughput table, in Markdown, with how setup time was spent beneath it.
fn table(runs: &[Run]) -> String {
    let mut out = String::from(
        "\n| approach | p50 | p99 | max | mean | queries/s | setup |\n|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in runs {
        let s = &r.summary;
        let setup = r.setup.map_or(String::new(), duration);
        writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {setup} |",
            r.name,
            duration(s.p50),
            duration(s.p99),
            duration(s.max),
            duration(s.mean),
            thousands(s.per_second.round() as u64),
        )
        .expect("writing to a String");
    }
    out.push('\n');
    for r in runs.iter().filter(|r| !r.setup_detail.is_empty()) {
        writeln!(out, "{}", r.setup_detail).expect("writing to a String");
    }
    out
}

/// How often each approach named the same responder as Anxin, and why not when it did not.
fn agreement(city: &City, runs: &[Run]) -> String {
    let Some(reference) = runs.first().and_then(|r| r.answers.as_ref()) else { return String::new() };
    let mut out = String::from(
        "\n| vs Anxin | same responder | tie (< 1 cm) | near-tie (< 1 m) | different |\n|---|---:|---:|---:|---:|\n",
    );
    let mut shown = Vec::new();
    for r in runs.iter().skip(1) {
        let Some(answers) = &r.answers else { continue };
        let mut counts = [0usize; 4];
        for (q, (want, got)) in reference.iter().zip(answers).enumerate() {
            let at = city.queries[q];
            let class = match (want, got) {
                (None, None) => 0,
                (Some(w), Some(g)) if w.index == g.index => 0,
                (Some(w), Some(g)) => {
                    // Both judged by the same ruler: our haversine to the positions we generated.
                    let gap = city.responders[g.index].0.distance_m(at) - city.responders[w.index].0.distance_m(at);
                    match gap.abs() {
                        d if d < 0.01 => 1,
                        d if d < 1.0 => 2,
                        _ => 3,
                    }
                }
                _ => 3,
            };
            counts[class] += 1;
            if class == 3 && shown.len() < SHOWN_DISAGREEMENTS {
                shown.push(format!("{}: query {q} at {at:?}: Anxin {want:?}, got {got:?}", r.name));
            }
        }
        let [same, tie, near, different] = counts.map(thousands_usize);
        writeln!(out, "| {} | {same} | {tie} | {near} | {different} |", r.name).expect("writing to a String");
    }
    for line in shown {
        writeln!(out, "disagreement: {line}").expect("writing to a String");
    }
    out
}

fn duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    match us {
        _ if us < 10.0 => format!("{us:.2} µs"),
        _ if us < 1_000.0 => format!("{us:.1} µs"),
        _ if us < 1_000_000.0 => format!("{:.1} ms", us / 1e3),
        _ => format!("{:.2} s", us / 1e6),
    }
}

fn metres(m: f64) -> String {
    if m >= 1_000.0 {
        format!("{} km", m / 1_000.0)
    } else {
        format!("{m} m")
    }
}

fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn thousands_usize(n: usize) -> String {
    thousands(n as u64)
}
