//! The engine under test: a real `anxind` started as a child process on free loopback ports,
//! with the generated registry, the engine's timers compressed by the speed-up, and a fresh
//! SQLite file in a temporary folder (or the broker and store named on the command line).

use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Where the simulator meets the engine: the HTTP listener (`/ws`) and the MQTT broker.
#[derive(Debug, Clone)]
pub struct Target {
    pub http: SocketAddr,
    pub mqtt_host: String,
    pub mqtt_port: u16,
    pub topic_root: String,
    /// The console's sign-in: a supervisor the simulator added to the registry.
    pub console: Credentials,
}

/// A member of staff's sign-in name and password.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl Credentials {
    /// A supervisor with a fresh random password, for one run.
    pub fn for_run() -> Self {
        use rand::{Rng, SeedableRng};
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let mut rng = rand::rngs::SmallRng::seed_from_u64(nanos as u64 ^ u64::from(std::process::id()) << 32);
        let password = format!("sim-{}-{:016x}", run_tag(), rng.random::<u64>());
        Credentials { user: "sim-dispatcher".into(), password }
    }

    /// The registry's `staff` entry for this user, given the password's Argon2id hash
    /// (`anxind hash-password`).
    pub fn staff_entry(&self, password_hash: &str) -> serde_json::Value {
        serde_json::json!({"id": self.user, "name": "模拟调度员 (simulator)", "role": "supervisor",
                           "password_hash": password_hash})
    }
}

/// Asks `anxind hash-password` for the Argon2id hash of a password.
pub async fn hash_password(anxind: &Path, password: &str) -> anyhow::Result<String> {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(anxind)
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", anxind.display()))?;
    let mut stdin = child.stdin.take().expect("piped");
    stdin.write_all(format!("{password}\n").as_bytes()).await?;
    drop(stdin);
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        bail!("anxind hash-password failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?.trim().to_string())
}

/// Which responders the engine offers an incident to (anxind's `dispatch.matching`): the
/// engine's own type, so the names cannot drift apart.
pub use anxin_core::Matching;

/// The engine's timers in wall-clock units, scaled from their real values by the speed-up.
/// anxind takes whole seconds (and whole minutes for two keys), at least 1, so a timer
/// that does not divide evenly is rounded; [`Timers::describe`] says what it became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    pub offer_timeout_s: u64,
    pub station_timeout_s: u64,
    pub reminder_interval_s: u64,
    pub on_scene_within_min: u64,
    pub max_fix_age_min: u64,
    /// A stuck-button guard, not a human delay, but a panicking elder's repeat presses come
    /// compressed too: scaled so they are not taken for a stuck button.
    pub repeat_press_interval_ms: u64,
    /// Nobody in the family answered: the next contact is told (anxind's 300 s).
    pub family_escalate_after_s: u64,
}

impl Timers {
    /// anxind's defaults (60 s, 120 s, 60 s, 30 min, 10 min, 300 s) compressed by `speedup`.
    pub fn compressed(speedup: f64) -> Self {
        let whole = |real: f64| ((real / speedup).round() as u64).max(1);
        Timers {
            offer_timeout_s: whole(60.0),
            station_timeout_s: whole(120.0),
            reminder_interval_s: whole(60.0),
            on_scene_within_min: whole(30.0),
            max_fix_age_min: whole(10.0),
            repeat_press_interval_ms: (2000.0 / speedup).round() as u64,
            family_escalate_after_s: whole(300.0),
        }
    }

    /// The same with the offer deadline set to `scenario_s` (scenario seconds) instead of
    /// anxind's 60 s: refused unless it compresses to a whole number of wall-clock seconds
    /// (anxind's unit), so the engine runs exactly the deadline the report names.
    pub fn with_offer_timeout(mut self, scenario_s: f64, speedup: f64) -> Result<Self, String> {
        let wall = scenario_s / speedup;
        if !(wall.is_finite() && wall >= 1.0 && (wall - wall.round()).abs() < 1e-9) {
            return Err(format!(
                "an offer deadline of {scenario_s} s is {wall} wall-clock seconds at {speedup}x; anxind takes whole seconds, at least 1 (try --speedup {scenario_s})"
            ));
        }
        self.offer_timeout_s = wall.round() as u64;
        Ok(self)
    }

    /// What each timer means in scenario time.
    pub fn describe(&self, speedup: f64) -> String {
        let s = |wall: u64| wall as f64 * speedup;
        format!(
            "offer {:.0} s, station {:.0} s, reminders {:.0} s, on scene within {:.0} min, phone fix counts {:.0} min, \
             repeat presses count {:.1} s apart, next family contact after {:.0} s",
            s(self.offer_timeout_s),
            s(self.station_timeout_s),
            s(self.reminder_interval_s),
            s(self.on_scene_within_min),
            s(self.max_fix_age_min),
            self.repeat_press_interval_ms as f64 * speedup / 1000.0,
            s(self.family_escalate_after_s),
        )
    }
}

/// The engine's `[health]` in wall-clock units: the scenario's heartbeat intervals and grace
/// compressed by the speed-up to whole seconds (anxind's unit; at least 10 s for an interval).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthTimers {
    /// The watched devices' interval (`health.heartbeat_s`), the quiet devices'
    /// (`[health.models.sim-quiet]`), and the grace.
    pub heartbeat_s: u64,
    pub quiet_heartbeat_s: u64,
    pub factor: f64,
    pub grace_s: u64,
}

impl HealthTimers {
    pub fn compressed(h: &crate::scenario::Health, speedup: f64) -> Self {
        let (lo, hi) = crate::scenario::Health::WALL_INTERVAL_S;
        let interval = |s: f64| (s / speedup).round().clamp(lo, hi) as u64;
        HealthTimers {
            heartbeat_s: interval(h.heartbeat_s),
            quiet_heartbeat_s: interval(h.quiet_heartbeat_s),
            factor: h.factor,
            grace_s: (h.grace_s / speedup).round() as u64,
        }
    }

    /// The interval a device keeps, in wall-clock seconds (its `interval_s`).
    pub fn interval_wall_s(&self, watched: bool) -> u64 {
        if watched {
            self.heartbeat_s
        } else {
            self.quiet_heartbeat_s
        }
    }

    /// The same in scenario seconds: what the devices keep to, so that they heartbeat as
    /// often as they tell the engine they do.
    pub fn interval_s(&self, watched: bool, speedup: f64) -> f64 {
        self.interval_wall_s(watched) as f64 * speedup
    }

    /// The silence after which the engine takes a watched device for offline (interval ×
    /// factor + grace), wall-clock seconds; as anxind computes it (whole milliseconds).
    pub fn window_wall_s(&self) -> f64 {
        ((self.heartbeat_s as f64 * self.factor * 1000.0) as i64 + self.grace_s as i64 * 1000) as f64 / 1000.0
    }

    /// What the window means in scenario time.
    pub fn describe(&self, speedup: f64) -> String {
        format!(
            "{:.1} min (a heartbeat every {:.1} min × {} + {:.1} min grace)",
            self.window_wall_s() * speedup / 60.0,
            self.heartbeat_s as f64 * speedup / 60.0,
            self.factor,
            self.grace_s as f64 * speedup / 60.0
        )
    }

    /// The child's `[health]` section.
    fn toml(&self) -> String {
        format!(
            "\n[health]\nheartbeat_s = {}\nfactor = {:?}\ngrace_s = {}\n\n[health.models.{}]\nheartbeat_s = {}\n",
            self.heartbeat_s,
            self.factor,
            self.grace_s,
            crate::health::QUIET_MODEL,
            self.quiet_heartbeat_s
        )
    }
}

/// The engine's `[programme]` and `[carers]` in wall-clock units: the scenario's retry,
/// overdue time and lone-worker timer compressed by the speed-up (the retry in whole minutes
/// and the overdue time in whole hours, anxind's units; the lone-worker timer in minutes,
/// a fraction allowed). Absent sections leave anxind's defaults.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CareTimers {
    /// `max_tries`, `retry_after_min`, `overdue_after_h`.
    pub programme: Option<(u8, u64, u64)>,
    /// `checkin_radius_m`, `visit_max_min`.
    pub carers: Option<(f64, f64)>,
    /// The service lane: `offer_timeout_min` (whole wall-clock minutes), `checkin_radius_m`,
    /// `monthly_allowance_yuan`.
    pub services: Option<(u64, f64, Vec<u32>)>,
}

impl CareTimers {
    pub fn compressed(s: &crate::scenario::Scenario) -> Self {
        let speedup = s.run.speedup;
        CareTimers {
            programme: s.programme.as_ref().map(|p| {
                let whole = |v: f64| ((v / speedup).round() as u64).max(1);
                (p.max_tries, whole(p.retry_after_min), whole(p.overdue_after_h))
            }),
            carers: s.carers.as_ref().map(|c| (c.checkin_radius_m, c.visit_max_min / speedup)),
            services: s.services.as_ref().map(|v| {
                ((v.offer_timeout_min / speedup).round() as u64, v.checkin_radius_m, v.monthly_allowance_yuan.clone())
            }),
        }
    }

    /// The service offer deadline, wall-clock milliseconds.
    pub fn order_offer_ms(&self) -> Option<i64> {
        self.services.as_ref().map(|(m, _, _)| *m as i64 * 60_000)
    }

    /// Wall-clock milliseconds: the retry, the overdue time, the lone-worker timer.
    pub fn retry_ms(&self) -> Option<i64> {
        self.programme.map(|(_, m, _)| m as i64 * 60_000)
    }
    pub fn overdue_ms(&self) -> Option<i64> {
        self.programme.map(|(_, _, h)| h as i64 * 3_600_000)
    }
    pub fn visit_max_ms(&self) -> Option<i64> {
        self.carers.map(|(_, m)| (m * 60_000.0).round() as i64)
    }

    /// The child's `[programme]` and `[carers]` sections.
    fn toml(&self) -> String {
        let mut t = String::new();
        if let Some((tries, retry, overdue)) = self.programme {
            t.push_str(&format!(
                "\n[programme]\nmax_tries = {tries}\nretry_after_min = {retry}\noverdue_after_h = {overdue}\n"
            ));
        }
        if let Some((radius, max)) = self.carers {
            t.push_str(&format!("\n[carers]\ncheckin_radius_m = {radius:?}\nvisit_max_min = {max:?}\n"));
        }
        if let Some((offer, radius, allowance)) = &self.services {
            t.push_str(&format!(
                "\n[services]\noffer_timeout_min = {offer}\ncheckin_radius_m = {radius:?}\nmonthly_allowance_yuan = {allowance:?}\n"
            ));
        }
        t
    }
}

/// How to start the child.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub anxind: PathBuf,
    /// `mqtt://HOST:PORT` of an external broker; the embedded one when `None`.
    pub broker: Option<String>,
    /// A store URL (a throwaway PostgreSQL database); a fresh SQLite file when `None`.
    pub store: Option<String>,
    pub matching: Matching,
    /// The ladder's knobs the run sets; anxind's defaults for those left out.
    pub ladder: LadderKnobs,
    pub timers: Timers,
    pub health: HealthTimers,
    pub care: CareTimers,
    /// Copy anxind's log lines to our stderr.
    pub verbose: bool,
}

/// The anxind sitting next to this executable (`target/<profile>/anxind`).
pub fn sibling_anxind() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let path = exe.parent()?.join(format!("anxind{}", std::env::consts::EXE_SUFFIX));
    path.exists().then_some(path)
}

/// A unique enough tag for ids on shared brokers: the process id and the time.
pub fn run_tag() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{:x}{:x}", std::process::id(), nanos % 0xffff_ffff)
}

/// The escalation ladder's knobs a run may set (anxind's `dispatch.parallel_offers` and
/// `dispatch.max_responder_offers`); `None` leaves anxind's default, so a run that names
/// none plays the engine as it ships.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LadderKnobs {
    /// Responders offered an incident at once (1: one after another).
    pub parallel_offers: Option<u32>,
    /// Responders offered an incident in all before the station's duty line.
    pub max_offers: Option<u32>,
    /// Whether an emergency with nobody free takes a responder from another's extra
    /// parallel offers (anxind's `dispatch.yield_extra_offers`).
    pub yield_extra_offers: Option<bool>,
}

/// The configuration file the engine runs with.
pub fn config_toml(
    timers: &Timers,
    health: &HealthTimers,
    care: &CareTimers,
    matching: Matching,
    ladder: LadderKnobs,
    topic_root: &str,
    client_id: &str,
) -> String {
    let mut text = format!(
        "# Written by anxin-sim: timers compressed by the run's speed-up.\n\
         [mqtt]\ntopic_root = {topic_root:?}\nclient_id = {client_id:?}\n\n\
         [dispatch]\noffer_timeout_s = {}\nstation_timeout_s = {}\nreminder_interval_s = {}\n\
         on_scene_within_min = {}\nmax_fix_age_min = {}\nrepeat_press_interval_ms = {}\n\
         family_escalate_after_s = {}\n",
        timers.offer_timeout_s,
        timers.station_timeout_s,
        timers.reminder_interval_s,
        timers.on_scene_within_min,
        timers.max_fix_age_min,
        timers.repeat_press_interval_ms,
        timers.family_escalate_after_s,
    );
    // Only when asked, so the defaults stay anxind's own.
    if matching != Matching::Nearest {
        text.push_str(&format!("matching = {:?}\n", matching.as_str()));
    }
    if let Some(n) = ladder.parallel_offers {
        text.push_str(&format!("parallel_offers = {n}\n"));
    }
    if let Some(n) = ladder.max_offers {
        text.push_str(&format!("max_responder_offers = {n}\n"));
    }
    if let Some(y) = ladder.yield_extra_offers {
        text.push_str(&format!("yield_extra_offers = {y}\n"));
    }
    text.push_str(&health.toml());
    text.push_str(&care.toml());
    text.push_str("\n[shutdown]\ndeadline_s = 5\n");
    text
}

/// A running child anxind; stopped with SIGTERM by [`ChildEngine::stop`], killed if dropped.
#[derive(Debug)]
pub struct ChildEngine {
    child: Child,
    pub target: Target,
    log: PathBuf,
    /// Holds the registry, the configuration, the log and the SQLite file until the end.
    _dir: tempfile::TempDir,
}

impl ChildEngine {
    pub async fn start(opts: &EngineOptions, registry: &serde_json::Value) -> anyhow::Result<Self> {
        if !opts.anxind.exists() {
            bail!(
                "no anxind at {}: build it with `cargo build -p anxind` (same profile) or name it with --anxind PATH",
                opts.anxind.display()
            );
        }
        let dir = tempfile::Builder::new().prefix("anxin-sim-").tempdir().context("cannot make a temporary folder")?;
        let tag = run_tag();
        let topic_root = format!("sim-{tag}/anxin");
        let client_id = format!("anxind-sim-{tag}");
        let console = Credentials::for_run();
        let mut registry = registry.clone();
        let hash = hash_password(&opts.anxind, &console.password).await?;
        registry["staff"] = serde_json::json!([console.staff_entry(&hash)]);
        let registry_path = dir.path().join("registry.json");
        std::fs::write(&registry_path, serde_json::to_vec(&registry)?).context("cannot write the registry")?;
        let config_path = dir.path().join("anxind.toml");
        std::fs::write(
            &config_path,
            config_toml(&opts.timers, &opts.health, &opts.care, opts.matching, opts.ladder, &topic_root, &client_id),
        )?;
        let log = dir.path().join("anxind.log");
        let store = match &opts.store {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", dir.path().join("anxin.db").display()),
        };
        let mut cmd = Command::new(&opts.anxind);
        cmd.arg("--config")
            .arg(&config_path)
            .arg("--registry")
            .arg(&registry_path)
            .args(["--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0", "--store-url", &store])
            .args(opts.broker.as_ref().map(|b| vec!["--mqtt-broker", b.as_str()]).unwrap_or_default())
            .arg("run")
            .env("ANXIN_LOG", "warn,anxind=info,rumqttd=off,rumqttc=error,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if opts.verbose {
            cmd.stderr(Stdio::inherit());
        } else {
            cmd.stderr(std::fs::File::create(&log)?);
        }
        let mut child = cmd.spawn().with_context(|| format!("cannot start {}", opts.anxind.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let mut lines = BufReader::new(stdout).lines();
        // Saving a large registry into a fresh store takes a while on a small machine.
        let ready = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await? {
                if line.starts_with("anxind ready ") {
                    return Ok::<_, std::io::Error>(Some(line));
                }
            }
            Ok(None)
        })
        .await;
        let line = match ready {
            Ok(Ok(Some(line))) => line,
            Ok(_) => {
                let _ = child.wait().await;
                bail!("anxind stopped before it was ready:\n{}", tail(&log));
            }
            Err(_) => bail!("anxind was not ready within 120 s:\n{}", tail(&log)),
        };
        // Keep reading stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (http, mqtt_host, mqtt_port) =
            parse_ready(&line).with_context(|| format!("unexpected ready line {line:?}"))?;
        Ok(Self { child, target: Target { http, mqtt_host, mqtt_port, topic_root, console }, log, _dir: dir })
    }

    /// Asks anxind to stop (SIGTERM) and waits for it; kills it if it takes too long.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        }
        match tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await {
            Ok(status) => {
                let status = status?;
                if !status.success() {
                    bail!("anxind exited with {status}:\n{}", tail(&self.log));
                }
            }
            Err(_) => {
                self.child.kill().await?;
                bail!("anxind did not stop within 15 s of SIGTERM; killed");
            }
        }
        Ok(())
    }

    /// The last lines anxind logged, for error messages.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<_> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// `anxind ready console=http://127.0.0.1:8080/console mqtt=mqtt://127.0.0.1:11883`
fn parse_ready(line: &str) -> Option<(SocketAddr, String, u16)> {
    let mut http = None;
    let mut mqtt = None;
    for word in line.split_whitespace() {
        if let Some(url) = word.strip_prefix("console=http://") {
            http = url.strip_suffix("/console")?.parse().ok();
        } else if let Some(url) = word.strip_prefix("mqtt=mqtt://") {
            let (host, port) = url.rsplit_once(':')?;
            mqtt = Some((host.trim_start_matches('[').trim_end_matches(']').to_string(), port.parse().ok()?));
        }
    }
    let (host, port) = mqtt?;
    Some((http?, host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_scale_to_whole_seconds() {
        let t = Timers::compressed(60.0);
        assert_eq!((t.offer_timeout_s, t.station_timeout_s, t.reminder_interval_s), (1, 2, 1));
        assert_eq!((t.on_scene_within_min, t.max_fix_age_min, t.repeat_press_interval_ms), (1, 1, 33));
        assert_eq!(t.family_escalate_after_s, 5);
        assert!(t.describe(60.0).ends_with("next family contact after 300 s"));
        let h = HealthTimers::compressed(&crate::scenario::Health::default(), 60.0);
        assert!(config_toml(&t, &h, &CareTimers::default(), Matching::Nearest, LadderKnobs::default(), "r", "c")
            .contains("family_escalate_after_s = 5\n"));
        assert!(t.describe(60.0).starts_with("offer 60 s, station 120 s"));
        let real = Timers::compressed(1.0);
        assert_eq!((real.offer_timeout_s, real.on_scene_within_min), (60, 30));
        let short = Timers::compressed(30.0).with_offer_timeout(30.0, 30.0).unwrap();
        assert_eq!((short.offer_timeout_s, short.station_timeout_s), (1, 4));
        assert!(short.describe(30.0).starts_with("offer 30 s, station 120 s"));
        let err = Timers::compressed(60.0).with_offer_timeout(30.0, 60.0).unwrap_err();
        assert!(err.contains("0.5 wall-clock seconds"), "{err}");
    }

    #[test]
    fn the_ready_line_is_read() {
        let (http, host, port) =
            parse_ready("anxind ready console=http://127.0.0.1:40123/console mqtt=mqtt://127.0.0.1:40999").unwrap();
        assert_eq!((http.port(), host.as_str(), port), (40123, "127.0.0.1", 40999));
        assert!(parse_ready("anxind ready").is_none());
    }

    #[test]
    fn the_matching_key_is_written_only_when_needed() {
        let t = Timers::compressed(60.0);
        let h = HealthTimers::compressed(&crate::scenario::Health::default(), 60.0);
        assert!(!config_toml(&t, &h, &CareTimers::default(), Matching::Nearest, LadderKnobs::default(), "r", "c")
            .contains("matching"));
        let knobs = LadderKnobs { parallel_offers: Some(2), max_offers: Some(4), yield_extra_offers: Some(false) };
        let own = config_toml(&t, &h, &CareTimers::default(), Matching::OwnStation, knobs, "r", "c");
        assert!(own.contains("matching = \"own_station\"") && own.contains("parallel_offers = 2"), "{own}");
        assert!(own.contains("max_responder_offers = 4") && own.contains("yield_extra_offers = false"), "{own}");
        assert!(own.parse::<toml::Table>().is_ok());
    }

    #[test]
    fn the_health_section_is_the_scenario_compressed() {
        let scenario =
            crate::scenario::Health { heartbeat_s: 600.0, factor: 1.5, grace_s: 300.0, ..Default::default() };
        let h = HealthTimers::compressed(&scenario, 60.0);
        assert_eq!((h.heartbeat_s, h.quiet_heartbeat_s, h.grace_s), (10, 120, 5));
        assert_eq!(h.window_wall_s(), 20.0);
        assert_eq!(h.describe(60.0), "20.0 min (a heartbeat every 10.0 min × 1.5 + 5.0 min grace)");
        let text = config_toml(
            &Timers::compressed(60.0),
            &h,
            &CareTimers::default(),
            Matching::Nearest,
            LadderKnobs::default(),
            "r",
            "c",
        );
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(table["health"]["heartbeat_s"].as_integer(), Some(10));
        assert_eq!(table["health"]["factor"].as_float(), Some(1.5));
        assert_eq!(table["health"]["models"]["sim-quiet"]["heartbeat_s"].as_integer(), Some(120));
    }
}
