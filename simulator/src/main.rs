//! `anxin-sim`: plays a scenario against a real anxind started as a child process.

use anxin_sim::engine::{sibling_anxind, ChildEngine, EngineOptions, LadderKnobs, Matching, Timers};
use anxin_sim::report::{comparison, CareRecord, Summary};
use anxin_sim::scenario::{check_speedup, Scenario};
use anxin_sim::sim::RunOptions;
use anxin_sim::{plot, report, Prepared};
use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "anxin-sim", version, about = "A city in a box: plays a district against a real anxind")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Play a scenario once and report.
    Run {
        #[command(flatten)]
        common: Common,
        /// Which responders the engine offers an incident to (anxind's dispatch.matching).
        #[arg(long, value_enum, default_value = "nearest")]
        matching: Policy,
    },
    /// Play the same scenario and seed under both matching policies and compare the care outcomes.
    Compare {
        #[command(flatten)]
        common: Common,
    },
    /// Print the registry file the scenario makes (the format of anxind --registry).
    Registry {
        /// The scenario file (TOML), e.g. simulator/scenarios/xishan.toml.
        scenario: PathBuf,
    },
    /// Draw the care outcomes of recorded runs (`run --record`) as an SVG: per policy, or
    /// (with --sweep) the surge's nobody-going share against the responders on duty.
    PlotCare {
        /// The record file (one JSON object a line, as `run --record` appends them).
        #[arg(long)]
        from: PathBuf,
        /// The SVG to write.
        #[arg(long)]
        out: PathBuf,
        /// Draw the surge sweep instead of the normal day's policies.
        #[arg(long)]
        sweep: bool,
    },
    /// Print the care outcomes of recorded runs as a Markdown table, pooled per policy (and
    /// per responder count with --sweep), with each run's figure beside the pooled one.
    CareTable {
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        sweep: bool,
    },
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Policy {
    /// The available responder who can arrive soonest (Anxin's default).
    Nearest,
    /// Only responders of the elder's own centre.
    OwnStation,
}

impl From<Policy> for Matching {
    fn from(p: Policy) -> Self {
        match p {
            Policy::Nearest => Matching::Nearest,
            Policy::OwnStation => Matching::OwnStation,
        }
    }
}

#[derive(Args, Debug)]
struct Common {
    /// The scenario file (TOML), e.g. simulator/scenarios/xishan.toml.
    scenario: PathBuf,
    /// The anxind to start; by default the one next to this executable.
    #[arg(long)]
    anxind: Option<PathBuf>,
    /// An external MQTT broker for the engine and the devices (mqtt://HOST:PORT); the
    /// engine's embedded broker by default.
    #[arg(long)]
    broker: Option<String>,
    /// A store URL for the engine (a throwaway PostgreSQL database with no open incidents);
    /// a fresh SQLite file in a temporary folder by default.
    #[arg(long)]
    store: Option<String>,
    /// Scenario seconds per wall-clock second (run.speedup), 1 to 60.
    #[arg(long)]
    speedup: Option<f64>,
    /// Scenario hours to play (run.hours).
    #[arg(long)]
    hours: Option<f64>,
    /// Scenario minutes played after the last press so that incidents can finish.
    #[arg(long, default_value_t = 20.0)]
    drain_min: f64,
    /// Seed for the district, the presses and the people (run.seed).
    #[arg(long)]
    seed: Option<u64>,
    /// Leave out the scenario's surge.
    #[arg(long)]
    no_surge: bool,
    /// Leave out the scenario's service lane (providers, workers, orders): the same district,
    /// presses and people otherwise, to compare emergencies with and without it.
    #[arg(long)]
    no_services: bool,
    /// At most this many devices (devices.limit).
    #[arg(long)]
    max_devices: Option<u32>,
    /// Responders offered an incident at once (anxind's dispatch.parallel_offers; 1: one
    /// after another); anxind's default when left out.
    #[arg(long)]
    parallel_offers: Option<u32>,
    /// Responders offered an incident in all before the station's duty line (anxind's
    /// dispatch.max_responder_offers); anxind's default when left out.
    #[arg(long)]
    max_offers: Option<u32>,
    /// The offer deadline in scenario seconds (anxind's dispatch.offer_timeout_s, 60 s by
    /// default); it must come to whole wall-clock seconds at the speed-up.
    #[arg(long)]
    offer_timeout_s: Option<f64>,
    /// Whether an emergency with nobody free takes a responder from another's extra parallel
    /// offers (anxind's dispatch.yield_extra_offers); anxind's default when left out.
    #[arg(long)]
    yield_extra_offers: Option<bool>,
    /// Responders at each community centre (responders.per_centre).
    #[arg(long)]
    responders_per_centre: Option<u32>,
    /// Scenario hours from the start to the surge (surge.at_hour).
    #[arg(long)]
    surge_at_hour: Option<f64>,
    /// Append this run's policy and care outcomes to this file, one JSON line (for
    /// plot-care and care-table).
    #[arg(long)]
    record: Option<PathBuf>,
    /// The policy's name in the record (made from the knobs when left out).
    #[arg(long)]
    label: Option<String>,
    /// MQTT connections the devices' messages are spread over.
    #[arg(long, default_value_t = 4)]
    publishers: usize,
    /// Print the summary as JSON on stdout (the table then goes to stderr).
    #[arg(long)]
    json: bool,
    /// Write SVG plots of press → console latency into this folder.
    #[arg(long)]
    plots: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Show anxind's log.
    #[arg(long)]
    verbose: bool,
}

impl Common {
    fn prepare(&self) -> anyhow::Result<Prepared> {
        let mut s = Scenario::load(&self.scenario)?;
        if let Some(v) = self.speedup {
            check_speedup("--speedup", v).map_err(|(k, p)| anyhow::anyhow!("{k} {p}"))?;
            s.health.check_speed(v).map_err(|(k, p)| anyhow::anyhow!("at --speedup {v}, {k} {p}"))?;
            s.run.speedup = v;
        }
        if let Some(h) = self.hours {
            if !(h.is_finite() && h > 0.0) {
                bail!("--hours must be a positive number, not {h}");
            }
            s.run.hours = h;
        }
        if let Some(seed) = self.seed {
            s.run.seed = seed;
        }
        if let Some(n) = self.max_devices {
            s.devices.limit = n;
        }
        if let Some(n) = self.responders_per_centre {
            if !(1..=200).contains(&n) {
                bail!("--responders-per-centre must lie in 1..=200, not {n}");
            }
            s.responders.per_centre = n;
        }
        if let Some(h) = self.surge_at_hour {
            let Some(surge) = s.surge.as_mut() else { bail!("--surge-at-hour: the scenario has no [surge]") };
            if !(h.is_finite() && h >= 0.0) {
                bail!("--surge-at-hour must be a number >= 0, not {h}");
            }
            surge.at_hour = h;
        }
        if self.no_services {
            s.services = None;
        }
        if self.no_surge || s.surge.as_ref().is_some_and(|x| x.at_hour >= s.run.hours) {
            s.surge = None;
        }
        if let Some(n) = self.parallel_offers.filter(|n| !(1..=20).contains(n)) {
            bail!("--parallel-offers must lie in 1..=20, not {n}");
        }
        if let Some(n) = self.max_offers.filter(|n| *n > 100) {
            bail!("--max-offers must lie in 0..=100, not {n}");
        }
        if let Some(t) = self.offer_timeout_s {
            Timers::compressed(s.run.speedup)
                .with_offer_timeout(t, s.run.speedup)
                .map_err(|e| anyhow::anyhow!("--offer-timeout-s: {e}"))?;
        }
        if !(self.drain_min.is_finite() && self.drain_min >= 0.0) {
            bail!("--drain-min must be a number >= 0, not {}", self.drain_min);
        }
        let name = s.district.name.clone();
        let mut prepared = Prepared::new(&name, s);
        prepared.offer_timeout_s = self.offer_timeout_s;
        Ok(prepared)
    }

    fn ladder(&self) -> LadderKnobs {
        LadderKnobs {
            parallel_offers: self.parallel_offers,
            max_offers: self.max_offers,
            yield_extra_offers: self.yield_extra_offers,
        }
    }

    /// The policy's name: `--label`, else its knobs.
    fn label(&self, matching: Matching) -> String {
        if let Some(l) = &self.label {
            return l.clone();
        }
        let mut label = matching.as_str().to_string();
        if let Some(n) = self.parallel_offers {
            label.push_str(&format!(", {n} at once"));
        }
        if let Some(n) = self.max_offers {
            label.push_str(&format!(", {n} offers"));
        }
        if let Some(t) = self.offer_timeout_s {
            label.push_str(&format!(", offer {t} s"));
        }
        if let Some(y) = self.yield_extra_offers {
            label.push_str(if y { ", extra offers yield" } else { ", first come first served" });
        }
        label
    }

    fn engine(&self, prepared: &Prepared, matching: Matching) -> anyhow::Result<EngineOptions> {
        let anxind = match &self.anxind {
            Some(p) => p.clone(),
            None => sibling_anxind().context(
                "no anxind next to anxin-sim: build it with `cargo build -p anxind` (same profile) or pass --anxind PATH",
            )?,
        };
        Ok(EngineOptions {
            anxind,
            broker: self.broker.clone(),
            store: self.store.clone(),
            matching,
            ladder: self.ladder(),
            timers: prepared.timers(),
            health: prepared.health_timers(),
            care: prepared.care_timers(),
            verbose: self.verbose,
        })
    }

    fn run_options(&self, label: &str) -> RunOptions {
        RunOptions {
            drain_min: self.drain_min,
            resend_after_s: 5.0,
            publishers: self.publishers,
            progress: !self.quiet,
            label: label.to_string(),
        }
    }
}

async fn run_once(common: &Common, prepared: &Prepared, matching: Matching) -> anyhow::Result<Summary> {
    let opts = common.engine(prepared, matching)?;
    eprintln!(
        "anxin-sim: {}: {} devices, {} responders, {} carers, {} elders on the welfare programme, {} planned events, {} device faults; starting {}",
        prepared.name,
        prepared.district.elders.len(),
        prepared.district.responders.iter().filter(|r| r.emergency_duty()).count(),
        prepared.district.responders.iter().filter(|r| r.carer).count(),
        prepared.district.elders.iter().filter(|e| e.schedule.is_some()).count(),
        prepared.events.len(),
        prepared.lives.devices.iter().filter(|l| l.fault.is_some()).count(),
        opts.anxind.display()
    );
    let started = std::time::Instant::now();
    let engine = ChildEngine::start(&opts, &prepared.registry).await?;
    let label = common.label(matching);
    let result = prepared.play(&engine.target, &common.run_options(&label), &label).await;
    let tail = engine.log_tail();
    let stopped = engine.stop().await;
    let summary = result.with_context(|| format!("the run failed; anxind's last log lines:\n{tail}"))?;
    stopped?;
    if let Some(path) = &common.record {
        let s = &prepared.scenario;
        let record = CareRecord {
            label,
            scenario: common.scenario.file_stem().and_then(|s| s.to_str()).unwrap_or("run").to_string(),
            seed: s.run.seed,
            hours: s.run.hours,
            speedup: s.run.speedup,
            responders_per_centre: s.responders.per_centre,
            responders: summary.responders,
            matching: matching.as_str().to_string(),
            parallel_offers: common.parallel_offers,
            max_offers: common.max_offers,
            yield_extra_offers: common.yield_extra_offers,
            offer_timeout_s: common.offer_timeout_s.unwrap_or(60.0),
            normal: summary.outside_surge.clone().unwrap_or_else(|| summary.care.clone()),
            surge: summary.surge.clone(),
            offers_accepted: summary.offers_accepted,
            offers_declined: summary.offers_declined,
            offers_unanswered: summary.offers_unanswered,
            lost: summary.lost,
            duplicated: summary.duplicated,
            wall_s: started.elapsed().as_secs_f64(),
        };
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        writeln!(file, "{}", serde_json::to_string(&record)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(summary)
}

fn read_records(path: &std::path::Path) -> anyhow::Result<Vec<CareRecord>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let records = CareRecord::read_all(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if records.is_empty() {
        bail!("{}: no runs recorded", path.display());
    }
    Ok(records)
}

fn write_plots(common: &Common, summary: &Summary) -> anyhow::Result<()> {
    if let Some(dir) = &common.plots {
        let stem = format!(
            "sim-{}-{}",
            common.scenario.file_stem().and_then(|s| s.to_str()).unwrap_or("run"),
            summary.matching.split_whitespace().next().unwrap_or("run").replace('_', "-")
        );
        for path in plot::write(summary, dir, &stem)? {
            eprintln!("anxin-sim: wrote {}", path.display());
        }
    }
    Ok(())
}

/// Lost or doubled presses break Anxin's first promise, and a dead device nobody noticed
/// (or a live one taken for dead) its second, and a scheduled task never shown, a far
/// check-in taken or a lone-worker alarm not raised the welfare rounds': say so in the exit status.
fn verdict(summaries: &[&Summary]) -> anyhow::Result<()> {
    for s in summaries {
        if s.lost > 0 || s.duplicated > 0 {
            bail!("{} matching: {} presses lost, {} duplicated (both must be 0)", s.matching, s.lost, s.duplicated);
        }
        let h = &s.health;
        if h.failed() {
            bail!(
                "{} matching: {} silent devices not noticed within their window, {} false alarms, {} devices with two welfare checks at once (all must be 0): {}",
                s.matching,
                h.not_noticed,
                h.false_alarms,
                h.concurrent,
                h.failures.join("; ")
            );
        }
        if let Some(p) = s.programme.as_ref().filter(|p| p.failed()) {
            bail!(
                "{} matching: the welfare programme: {} tasks due and never shown, {} too early: {}",
                s.matching,
                p.not_shown,
                p.early,
                p.failures.join("; ")
            );
        }
        if let Some(c) = s.carers.as_ref().filter(|c| c.failed()) {
            bail!(
                "{} matching: carers: lone-worker alarms expected {}, seen {}, for nobody overdue {}; far check-ins {}, refused {}: {}",
                s.matching,
                c.lone_worker_expected,
                c.lone_worker_seen,
                c.lone_worker_unexpected,
                c.far_sent,
                c.far_refused,
                c.failures.join("; ")
            );
        }
        if let Some(v) = s.services.as_ref().filter(|v| v.failed()) {
            bail!(
                "{} matching: services: far check-ins taken {}, orders lost {}, emergencies offered to workers {}, allowance overdrawn {}: {}",
                s.matching,
                v.far_taken,
                v.lost,
                v.emergency_offers_to_workers,
                v.over_allowance,
                v.failures.join("; ")
            );
        }
        if s.presses_sent > 0 && s.incidents_seen == 0 {
            bail!("{} matching: {} presses but no incident on the console", s.matching, s.presses_sent);
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Registry { scenario } => {
            let s = Scenario::load(&scenario)?;
            let prepared = Prepared::new(&s.district.name.clone(), s);
            println!("{}", serde_json::to_string_pretty(&prepared.registry)?);
        }
        Command::PlotCare { from, out, sweep } => {
            let records = read_records(&from)?;
            if sweep {
                plot::surge_sweep(&records, &out)?;
            } else {
                plot::policies(&records, &out)?;
            }
            eprintln!("anxin-sim: wrote {}", out.display());
        }
        Command::CareTable { from, sweep } => {
            let records = read_records(&from)?;
            print!("{}", if sweep { report::sweep_table(&records) } else { report::policy_table(&records) });
        }
        Command::Run { common, matching } => {
            let prepared = common.prepare()?;
            let summary = run_once(&common, &prepared, matching.into()).await?;
            if common.json {
                eprint!("{}", summary.table());
                println!("{}", serde_json::to_string_pretty(&summary.to_json())?);
            } else {
                print!("{}", summary.table());
            }
            write_plots(&common, &summary)?;
            verdict(&[&summary])?;
        }
        Command::Compare { common } => {
            let prepared = common.prepare()?;
            let nearest = run_once(&common, &prepared, Matching::Nearest).await?;
            let own = run_once(&common, &prepared, Matching::OwnStation).await.context(
                "the own_station run failed (an anxind without dispatch.matching refuses the key: update anxind)",
            )?;
            let table = comparison(&nearest, &own);
            if common.json {
                eprint!("{}\n{}\n{table}", nearest.table(), own.table());
                let out = serde_json::json!({"nearest": nearest.to_json(), "own_station": own.to_json()});
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                print!("{}\n{}\n{table}", nearest.table(), own.table());
            }
            write_plots(&common, &nearest)?;
            write_plots(&common, &own)?;
            verdict(&[&nearest, &own])?;
        }
    }
    Ok(())
}
