//! `anxin-sim`: plays a scenario against a real anxind started as a child process.

use anxin_sim::engine::{sibling_anxind, ChildEngine, EngineOptions, Matching};
use anxin_sim::report::{comparison, Summary};
use anxin_sim::scenario::{check_speedup, Scenario};
use anxin_sim::sim::RunOptions;
use anxin_sim::{plot, Prepared};
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
    /// At most this many devices (devices.limit).
    #[arg(long)]
    max_devices: Option<u32>,
    /// Responders offered an incident at once (anxind's dispatch.parallel_offers; 1: one
    /// after another, anxind's default).
    #[arg(long, default_value_t = 1)]
    parallel_offers: u32,
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
        if self.no_surge || s.surge.as_ref().is_some_and(|x| x.at_hour >= s.run.hours) {
            s.surge = None;
        }
        if !(1..=20).contains(&self.parallel_offers) {
            bail!("--parallel-offers must lie in 1..=20, not {}", self.parallel_offers);
        }
        if !(self.drain_min.is_finite() && self.drain_min >= 0.0) {
            bail!("--drain-min must be a number >= 0, not {}", self.drain_min);
        }
        let name = s.district.name.clone();
        Ok(Prepared::new(&name, s))
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
            parallel_offers: self.parallel_offers,
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
        prepared.district.responders.iter().filter(|r| !r.carer).count(),
        prepared.district.responders.iter().filter(|r| r.carer).count(),
        prepared.district.elders.iter().filter(|e| e.schedule.is_some()).count(),
        prepared.events.len(),
        prepared.lives.devices.iter().filter(|l| l.fault.is_some()).count(),
        opts.anxind.display()
    );
    let engine = ChildEngine::start(&opts, &prepared.registry).await?;
    let label = match common.parallel_offers {
        1 => matching.as_str().to_string(),
        n => format!("{} ({n} offers at once)", matching.as_str()),
    };
    let result = prepared.play(&engine.target, &common.run_options(&label), &label).await;
    let tail = engine.log_tail();
    let stopped = engine.stop().await;
    let summary = result.with_context(|| format!("the run failed; anxind's last log lines:\n{tail}"))?;
    stopped?;
    Ok(summary)
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
