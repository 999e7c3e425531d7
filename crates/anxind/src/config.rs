//! Layered configuration: built-in defaults, an optional TOML file, `ANXIN_` environment
//! variables, then command-line flags.

use anxin_api::ws::{MapCrs, MapProvider, MapSettings};
use anxin_core::{IncidentKind, LadderPolicy, Matching};
use figment::providers::{Format, Serialized, Toml};
use figment::value::Value;
use figment::Figment;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

/// The built-in defaults, the same file as `config/default.toml`.
pub const DEFAULTS: &str = include_str!("../../../config/default.toml");

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub http: Http,
    pub mqtt: Mqtt,
    pub store: StoreConfig,
    pub dispatch: Dispatch,
    pub ingest: Ingest,
    pub consoles: Consoles,
    pub shutdown: Shutdown,
    pub demo: Demo,
    #[serde(default)]
    pub runtime: RuntimeConfig,
    pub notify: NotifyConfig,
    pub health: HealthConfig,
    pub activity: ActivityConfig,
    pub programme: ProgrammeConfig,
    pub carers: CarersConfig,
    pub services: ServicesConfig,
    #[serde(default)]
    pub telephony: TelephonyConfig,
    pub wallboard: WallboardConfig,
    pub reports: ReportsConfig,
    pub cluster: ClusterConfig,
}

/// `[cluster]`: engines on several machines sharing one PostgreSQL and one external broker,
/// one of them running and the others standing by on a lease (issue 25; docs/configuration.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    pub enabled: bool,
    /// This node's name in the lease table; unset: the host's name and the process id.
    #[serde(default)]
    pub node: Option<String>,
    /// Where other nodes and operators reach this one (`host:port`), kept in the lease while
    /// it runs; unset: the address `http.listen` is bound to.
    #[serde(default)]
    pub advertise: Option<String>,
    pub lease_ttl_ms: u64,
    pub renew_ms: u64,
    pub standby_poll_ms: u64,
    /// Each zone leased on its own and the zones shared out over the nodes, presses coming in
    /// through the inbox (`crate::spread`); false: one lease, one engine, hot standbys.
    pub spread_zones: bool,
    /// With `spread_zones`: how many ingest sessions share the devices' events.
    pub ingest_sessions: u16,
}

impl ClusterConfig {
    fn check(&self, store_url: &str, broker: &str) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if !store_url.starts_with("postgres://") && !store_url.starts_with("postgresql://") {
            return Err(ConfigError::Check(
                "cluster.enabled needs a PostgreSQL store (store.url = \"postgres://...\"): the lease lives there"
                    .into(),
            ));
        }
        if broker == "embedded" {
            return Err(ConfigError::Check(
                "cluster.enabled needs an external broker (mqtt.broker = \"mqtt://HOST:PORT\") that every node reaches"
                    .into(),
            ));
        }
        if !(1_000..=60_000).contains(&self.lease_ttl_ms) {
            return Err(ConfigError::Check(format!(
                "cluster.lease_ttl_ms must lie in 1000..=60000, not {}",
                self.lease_ttl_ms
            )));
        }
        if self.renew_ms == 0 || self.renew_ms * 2 > self.lease_ttl_ms {
            return Err(ConfigError::Check(format!(
                "cluster.renew_ms must lie in 1..=lease_ttl_ms/2 ({}), not {}",
                self.lease_ttl_ms / 2,
                self.renew_ms
            )));
        }
        if !(10..=self.lease_ttl_ms).contains(&self.standby_poll_ms) {
            return Err(ConfigError::Check(format!(
                "cluster.standby_poll_ms must lie in 10..=lease_ttl_ms ({}), not {}",
                self.lease_ttl_ms, self.standby_poll_ms
            )));
        }
        if self.spread_zones && !(1..=64).contains(&self.ingest_sessions) {
            return Err(ConfigError::Check(format!(
                "cluster.ingest_sessions must lie in 1..=64 with spread_zones, not {}",
                self.ingest_sessions
            )));
        }
        // A node's name is a level of the MQTT topics nodes ask each other on.
        if self
            .node
            .as_deref()
            .is_some_and(|n| n.trim().is_empty() || n.len() > 200 || n.contains([',', '/', '+', '#']))
        {
            return Err(ConfigError::Check(
                "cluster.node must be 1 to 200 characters, and no comma, slash, + or #, when set".into(),
            ));
        }
        if let Some(addr) = &self.advertise {
            let port = addr.rsplit_once(':').and_then(|(host, port)| (!host.is_empty()).then_some(port));
            if addr.len() > 200
                || addr.contains(char::is_whitespace)
                || port.and_then(|p| p.parse::<u16>().ok()).is_none()
            {
                return Err(ConfigError::Check(format!(
                    "cluster.advertise must be HOST:PORT where other nodes reach this one, not {addr:?}"
                )));
            }
        }
        Ok(())
    }

    /// Where this node says it is reached: `advertise`, else `bound`, the address its HTTP
    /// server is bound to.
    pub fn advertised(&self, bound: std::net::SocketAddr) -> String {
        self.advertise.clone().unwrap_or_else(|| bound.to_string())
    }

    /// This node's name: `node`, else the host's name and the process id.
    pub fn node_name(&self) -> String {
        self.node.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "anxind".into());
            format!("{host}-{}", std::process::id())
        })
    }
}

/// `[reports]`: the supervisors' reports (docs/configuration.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportsConfig {
    /// Local times the shifts start at, `"HH:MM"`, in order through the day: a report by
    /// shift has a row per shift, keyed by its start.
    pub shifts: Vec<String>,
}

impl ReportsConfig {
    /// The shifts (call after [`Config::load`] has checked them).
    pub fn shifts(&self) -> anxin_core::Shifts {
        anxin_core::Shifts::parse(&self.shifts).expect("checked at load")
    }

    fn check(&self) -> Result<(), ConfigError> {
        anxin_core::Shifts::parse(&self.shifts)
            .map(drop)
            .map_err(|e| ConfigError::Check(format!("reports.shifts: {e}")))
    }
}

/// `[wallboard]`: the time each standard on the supervisors' wallboard allows
/// (docs/configuration.md). The defaults are the standards' own.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WallboardConfig {
    pub tsa_answer_s: u32,
    pub tsa_answer_long_s: u32,
    pub nfpa_dispatch_s: u32,
    pub nena_answer_s: u32,
    pub on_scene_min: u32,
}

impl WallboardConfig {
    /// The tally's limits (call after [`Config::load`] has checked them).
    pub fn limits(&self) -> anxin_core::StandardLimits {
        anxin_core::StandardLimits {
            tsa_answer_s: self.tsa_answer_s,
            tsa_answer_long_s: self.tsa_answer_long_s,
            nfpa_dispatch_s: self.nfpa_dispatch_s,
            nena_answer_s: self.nena_answer_s,
            on_scene_s: self.on_scene_min * 60,
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        for (name, v) in [
            ("tsa_answer_s", self.tsa_answer_s),
            ("tsa_answer_long_s", self.tsa_answer_long_s),
            ("nfpa_dispatch_s", self.nfpa_dispatch_s),
            ("nena_answer_s", self.nena_answer_s),
        ] {
            if !(1..=3600).contains(&v) {
                return Err(ConfigError::Check(format!("wallboard.{name} must lie in 1..=3600, not {v}")));
            }
        }
        if !(1..=1440).contains(&self.on_scene_min) {
            return Err(ConfigError::Check(format!(
                "wallboard.on_scene_min must lie in 1..=1440, not {}",
                self.on_scene_min
            )));
        }
        Ok(())
    }
}

/// `[telephony]`: the SIP server's way in (docs/configuration.md, deploy/sip/README.md).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelephonyConfig {
    /// The bearer token the SIP server sends with each call's events; unset: telephony is
    /// off and `POST /api/v1/telephony/calls` is not found.
    #[serde(default)]
    pub token: Option<Secret>,
    /// Where a call nobody answers goes after the station's duty line; unset: nowhere.
    #[serde(default)]
    pub fallback_number: Option<String>,
    /// The SIP server's WebSocket for the consoles' softphone (`ws://` or `wss://`), handed
    /// to each signed-in dispatcher with their SIP credentials; unset: no softphone, and
    /// `GET /api/v1/telephony/credentials` is not found.
    #[serde(default)]
    pub ws_url: Option<String>,
    /// TURN servers (`turn:host:port` or `turns:host:port`, coturn with `use-auth-secret`
    /// and the telephony token as its secret) for the consoles' media where a browser cannot
    /// reach the media relay directly; empty: none.
    #[serde(default)]
    pub turn_urls: Vec<String>,
    /// The consoles send media only through the TURN servers (needs `turn_urls`).
    #[serde(default)]
    pub ice_relay_only: bool,
}

impl TelephonyConfig {
    fn check(&self) -> Result<(), ConfigError> {
        if self.token.as_ref().is_some_and(|t| t.expose().trim().len() < 16) {
            return Err(ConfigError::Check("telephony.token must be 16 characters or more".into()));
        }
        if let Some(n) = &self.fallback_number {
            if anxin_core::telephony::number_key(n).is_none() {
                return Err(ConfigError::Check(format!("telephony.fallback_number is not a telephone number: {n:?}")));
            }
        }
        if let Some(url) = &self.ws_url {
            let scheme_ok = url.starts_with("ws://") || url.starts_with("wss://");
            let host = url.split_once("://").map_or("", |(_, rest)| rest);
            if !scheme_ok || host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigError::Check(format!("telephony.ws_url must be a ws:// or wss:// URL: {url:?}")));
            }
            if self.token.is_none() {
                return Err(ConfigError::Check(
                    "telephony.ws_url needs telephony.token: the consoles' SIP credentials are signed with it".into(),
                ));
            }
        }
        for url in &self.turn_urls {
            let host = url.strip_prefix("turn:").or_else(|| url.strip_prefix("turns:")).unwrap_or("");
            if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(ConfigError::Check(format!(
                    "telephony.turn_urls holds turn:host:port or turns:host:port URLs: {url:?}"
                )));
            }
        }
        if !self.turn_urls.is_empty() && self.ws_url.is_none() {
            return Err(ConfigError::Check(
                "telephony.turn_urls is for the softphone: it needs telephony.ws_url".into(),
            ));
        }
        if self.ice_relay_only && self.turn_urls.is_empty() {
            return Err(ConfigError::Check("telephony.ice_relay_only needs telephony.turn_urls".into()));
        }
        Ok(())
    }
}

/// `[programme]`: the scheduled welfare programme's retries and overdue time
/// (docs/configuration.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgrammeConfig {
    pub enabled: bool,
    pub max_tries: u8,
    pub retry_after_min: u32,
    pub overdue_after_h: u32,
    pub export_days: u32,
}

impl ProgrammeConfig {
    pub fn policy(&self) -> anxin_core::ProgrammePolicy {
        anxin_core::ProgrammePolicy {
            enabled: self.enabled,
            max_tries: self.max_tries,
            retry_after_ms: i64::from(self.retry_after_min) * 60_000,
            overdue_after_ms: i64::from(self.overdue_after_h) * 3_600_000,
            ..anxin_core::ProgrammePolicy::default()
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        let range = |key: &str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(ConfigError::Check(format!("programme.{key} must lie in {lo}..={hi}, not {v}")))
            }
        };
        range("max_tries", u32::from(self.max_tries), 1, 20)?;
        range("retry_after_min", self.retry_after_min, 1, 10_080)?;
        range("overdue_after_h", self.overdue_after_h, 1, 8_760)?;
        range("export_days", self.export_days, 1, 3_660)
    }
}

/// `[carers]`: carers' visits, the check-in radius and the lone-worker timer
/// (docs/configuration.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarersConfig {
    pub checkin_radius_m: f64,
    /// Minutes; a fraction is allowed (a compressed run's timer, e.g. the simulator's).
    pub visit_max_min: f64,
}

impl CarersConfig {
    /// The engine's rule (call after [`Config::load`] has checked it).
    pub fn policy(&self) -> anxin_core::CarerPolicy {
        anxin_core::CarerPolicy {
            checkin_radius_m: self.checkin_radius_m,
            visit_max_ms: (self.visit_max_min * 60_000.0).round() as i64,
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        if !(self.checkin_radius_m >= 10.0 && self.checkin_radius_m <= 5_000.0) {
            return Err(ConfigError::Check(format!(
                "carers.checkin_radius_m must lie in 10..=5000, not {}",
                self.checkin_radius_m
            )));
        }
        // Above zero, so that a visit does not alarm the moment it starts; a fraction of a minute
        // is for compressed runs (the simulator divides every engine timer by its speed-up).
        if !(self.visit_max_min >= 0.1 && self.visit_max_min <= 1440.0) {
            return Err(ConfigError::Check(format!(
                "carers.visit_max_min must lie in 0.1..=1440, not {}",
                self.visit_max_min
            )));
        }
        Ok(())
    }
}

/// `[services]`: the service lane's categories, offer timer, check-in radius and the
/// monthly allowances (docs/configuration.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServicesConfig {
    /// Left out of `config/default.toml` so that the list lives in one place, the core's
    /// [`anxin_core::service::DEFAULT_CATEGORIES`]; a file that sets it replaces it whole.
    #[serde(default = "ServicesConfig::default_categories")]
    pub categories: Vec<ServiceCategoryConfig>,
    pub offer_timeout_min: u32,
    pub checkin_radius_m: f64,
    /// Yuan a month by level of need, the first for level 1 (the most need).
    pub monthly_allowance_yuan: Vec<u32>,
}

/// One `[[services.categories]]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceCategoryConfig {
    pub id: String,
    pub accept_within_min: u32,
}

impl ServicesConfig {
    fn default_categories() -> Vec<ServiceCategoryConfig> {
        anxin_core::service::DEFAULT_CATEGORIES
            .iter()
            .map(|(id, min)| ServiceCategoryConfig { id: (*id).to_string(), accept_within_min: *min })
            .collect()
    }

    /// The engine's rule (call after [`Config::load`] has checked it).
    pub fn policy(&self) -> anxin_core::service::ServicePolicy {
        anxin_core::service::ServicePolicy {
            categories: self
                .categories
                .iter()
                .map(|c| anxin_core::service::Category { id: c.id.clone(), accept_within_min: c.accept_within_min })
                .collect(),
            offer_timeout_ms: i64::from(self.offer_timeout_min) * 60_000,
            checkin_radius_m: self.checkin_radius_m,
            monthly_allowance_fen: self.monthly_allowance_yuan.iter().map(|y| y * 100).collect(),
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        let err = |m: String| Err(ConfigError::Check(m));
        if self.categories.is_empty() {
            return err("services.categories must name at least one category".into());
        }
        let mut seen = std::collections::HashSet::new();
        for c in &self.categories {
            let id = &c.id;
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
                return err(format!(
                    "services.categories: an id is lower-case letters, digits and _ (orders and prices name it), \
                     not {id:?}"
                ));
            }
            if !seen.insert(id.as_str()) {
                return err(format!("services.categories: {id:?} is listed twice"));
            }
            if !(1..=10_080).contains(&c.accept_within_min) {
                return err(format!(
                    "services.categories: {id}'s accept_within_min must lie in 1..=10080, not {}",
                    c.accept_within_min
                ));
            }
        }
        if !(1..=1440).contains(&self.offer_timeout_min) {
            return err(format!("services.offer_timeout_min must lie in 1..=1440, not {}", self.offer_timeout_min));
        }
        if !(self.checkin_radius_m >= 10.0 && self.checkin_radius_m <= 5_000.0) {
            return err(format!("services.checkin_radius_m must lie in 10..=5000, not {}", self.checkin_radius_m));
        }
        if self.monthly_allowance_yuan.len() > 9 {
            return err(format!(
                "services.monthly_allowance_yuan has one amount per level of need, 1 to 9: {} is too many",
                self.monthly_allowance_yuan.len()
            ));
        }
        if let Some(y) = self.monthly_allowance_yuan.iter().find(|y| **y > 100_000) {
            return err(format!("services.monthly_allowance_yuan: each amount must lie in 0..=100000, not {y}"));
        }
        Ok(())
    }
}

/// `[activity]`: when an elder living alone counts as abnormally quiet (docs/configuration.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityConfig {
    pub enabled: bool,
    pub quiet_hours: u32,
    /// `"HH:MM"` on the hour: the fixed waking hours, local time.
    pub day_start: String,
    pub day_end: String,
    pub learn_days: u32,
    pub usual_share: f64,
}

impl ActivityConfig {
    /// The engine's rule (call after [`Config::load`] has checked it).
    pub fn policy(&self) -> anxin_core::ActivityPolicy {
        anxin_core::ActivityPolicy {
            enabled: self.enabled,
            quiet_hours: self.quiet_hours,
            day_start_h: Self::hour(&self.day_start).unwrap_or(7),
            day_end_h: Self::hour(&self.day_end).unwrap_or(21),
            learn_days: self.learn_days,
            usual_share: self.usual_share,
        }
    }

    /// `"07:00"` is 7; `"24:00"` is 24; anything not on the hour is refused.
    fn hour(text: &str) -> Option<u8> {
        let (h, m) = text.split_once(':')?;
        let h: u8 = h.parse().ok()?;
        (m == "00" && h <= 24 && text.len() == 5).then_some(h)
    }

    fn check(&self) -> Result<(), ConfigError> {
        let err = |m: String| Err(ConfigError::Check(m));
        if !(1..=72).contains(&self.quiet_hours) {
            return err(format!("activity.quiet_hours must lie in 1..=72, not {}", self.quiet_hours));
        }
        let (Some(start), Some(end)) = (Self::hour(&self.day_start), Self::hour(&self.day_end)) else {
            return err(format!(
                "activity.day_start and activity.day_end must be hours as \"HH:00\" (00:00-24:00), not {:?} and {:?}",
                self.day_start, self.day_end
            ));
        };
        if start >= end {
            return err(format!(
                "activity.day_start ({}) must be before activity.day_end ({})",
                self.day_start, self.day_end
            ));
        }
        if !(1..=anxin_core::activity::DAYS as u32).contains(&self.learn_days) {
            return err(format!("activity.learn_days must lie in 1..=28, not {}", self.learn_days));
        }
        if !(self.usual_share > 0.0 && self.usual_share <= 1.0) {
            return err(format!("activity.usual_share must lie in (0, 1], not {}", self.usual_share));
        }
        Ok(())
    }
}

/// `[health]`: when a device counts as silent or flat (docs/configuration.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    pub enabled: bool,
    pub heartbeat_s: u32,
    pub factor: f64,
    pub grace_s: u32,
    pub low_battery_pct: u8,
    pub charged_pct: u8,
    pub snapshot_s: u64,
    #[serde(default)]
    pub models: std::collections::BTreeMap<String, HealthModelConfig>,
}

/// `[health.models.NAME]`: a device model's own heartbeat; what it leaves out is `[health]`'s.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthModelConfig {
    #[serde(default)]
    pub heartbeat_s: Option<u32>,
    #[serde(default)]
    pub factor: Option<f64>,
    #[serde(default)]
    pub grace_s: Option<u32>,
}

impl HealthConfig {
    /// The engine's rules.
    pub fn policy(&self) -> anxin_core::HealthPolicy {
        let default =
            anxin_core::HealthModel { heartbeat_s: self.heartbeat_s, factor: self.factor, grace_s: self.grace_s };
        let models = self
            .models
            .iter()
            .map(|(name, m)| {
                let model = anxin_core::HealthModel {
                    heartbeat_s: m.heartbeat_s.unwrap_or(default.heartbeat_s),
                    factor: m.factor.unwrap_or(default.factor),
                    grace_s: m.grace_s.unwrap_or(default.grace_s),
                };
                (name.clone(), model)
            })
            .collect();
        anxin_core::HealthPolicy {
            enabled: self.enabled,
            default,
            models,
            low_battery_pct: self.low_battery_pct,
            charged_pct: self.charged_pct,
            ..anxin_core::HealthPolicy::default()
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        let (min_s, max_s) = anxin_core::HealthPolicy::INTERVAL_RANGE_S;
        let interval = |what: &str, s: u32| {
            if (min_s..=max_s).contains(&s) {
                Ok(())
            } else {
                Err(ConfigError::Check(format!("{what} must lie in {min_s}..={max_s} seconds, not {s}")))
            }
        };
        let factor = |what: &str, f: f64| {
            if f.is_finite() && (1.0..=100.0).contains(&f) {
                Ok(())
            } else {
                Err(ConfigError::Check(format!("{what} must lie in 1.0..=100.0, not {f}")))
            }
        };
        interval("health.heartbeat_s", self.heartbeat_s)?;
        factor("health.factor", self.factor)?;
        for (name, m) in &self.models {
            if let Some(s) = m.heartbeat_s {
                interval(&format!("health.models.{name}.heartbeat_s"), s)?;
            }
            if let Some(f) = m.factor {
                factor(&format!("health.models.{name}.factor"), f)?;
            }
        }
        if self.low_battery_pct >= self.charged_pct || self.charged_pct > 100 {
            return Err(ConfigError::Check(format!(
                "health.low_battery_pct ({}) must be under health.charged_pct ({}), which is at most 100",
                self.low_battery_pct, self.charged_pct
            )));
        }
        if !(1..=86_400).contains(&self.snapshot_s) {
            return Err(ConfigError::Check(format!(
                "health.snapshot_s must lie in 1..=86400, not {}",
                self.snapshot_s
            )));
        }
        Ok(())
    }
}

/// `[notify]`: how families' notifications leave (docs/configuration.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// The operator's SMS and voice gateway (http:// or https://); unset: texts go to the log.
    #[serde(default)]
    pub gateway_url: Option<String>,
    /// The HMAC-SHA256 key every webhook is signed with.
    #[serde(default)]
    pub gateway_secret: Option<Secret>,
    /// The key the gateway's callbacks are signed with; unset: `gateway_secret`.
    #[serde(default)]
    pub callback_secret: Option<Secret>,
    /// Seconds a callback's timestamp may be off our clock (replays outside are refused).
    pub callback_tolerance_s: u64,
    /// A notification still not sent this long after it was due is `dead`.
    pub give_up_after_s: u64,
    pub retry_base_ms: u64,
    pub retry_cap_s: u64,
    pub concurrency: usize,
    pub poll_interval_ms: u64,
    pub request_timeout_ms: u64,
    /// Web Push's VAPID private key (base64url, 32 bytes), or `vapid_private_key_file`.
    #[serde(default)]
    pub vapid_private_key: Option<Secret>,
    #[serde(default)]
    pub vapid_private_key_file: Option<std::path::PathBuf>,
    /// `mailto:` or `https:`: how a push service reaches the operator.
    #[serde(default)]
    pub vapid_subject: Option<String>,
}

impl NotifyConfig {
    /// The callbacks' key: `callback_secret`, else `gateway_secret`.
    pub fn callback_key(&self) -> Option<&Secret> {
        self.callback_secret.as_ref().or(self.gateway_secret.as_ref())
    }

    /// The VAPID identity, read from the key or its file; `None` when Web Push is off.
    pub fn vapid(&self) -> Result<Option<anxin_notify::Vapid>, ConfigError> {
        let key = match (&self.vapid_private_key, &self.vapid_private_key_file) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                return Err(ConfigError::Check(
                    "notify.vapid_private_key and notify.vapid_private_key_file: set one, not both".into(),
                ))
            }
            (Some(key), None) => key.expose().to_string(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| ConfigError::Check(format!("notify.vapid_private_key_file {}: {e}", path.display())))?,
        };
        let subject = self.vapid_subject.as_deref().unwrap_or("");
        if !(subject.starts_with("mailto:") || subject.starts_with("https://")) {
            return Err(ConfigError::Check(
                "notify.vapid_subject must be a mailto: or https: URL when a VAPID key is set (push services \
                 use it to reach the operator)"
                    .into(),
            ));
        }
        anxin_notify::Vapid::new(key.trim(), subject).map(Some).map_err(|_| {
            ConfigError::Check(
                "notify.vapid_private_key is not a base64url P-256 private key (32 bytes); \
                 `anxind vapid-keys` prints a fresh pair"
                    .into(),
            )
        })
    }

    fn check(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.gateway_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Check(format!(
                    "notify.gateway_url must be an http:// or https:// URL, not {url:?}"
                )));
            }
            if self.gateway_secret.as_ref().is_none_or(|s| s.expose().len() < 16) {
                return Err(ConfigError::Check(
                    "notify.gateway_secret (16 characters or more) must be set with notify.gateway_url: every \
                     webhook is signed with it, and the gateway checks the signature"
                        .into(),
                ));
            }
        }
        if self.callback_secret.as_ref().is_some_and(|s| s.expose().len() < 16) {
            return Err(ConfigError::Check("notify.callback_secret must be 16 characters or more".into()));
        }
        for (v, min, max, name) in [
            (self.give_up_after_s, 1, 7 * 86_400, "notify.give_up_after_s"),
            (self.retry_base_ms, 1, 3_600_000, "notify.retry_base_ms"),
            (self.retry_cap_s, 1, 86_400, "notify.retry_cap_s"),
            (self.concurrency as u64, 1, 1024, "notify.concurrency"),
            (self.poll_interval_ms, 10, 60_000, "notify.poll_interval_ms"),
            (self.request_timeout_ms, 100, 120_000, "notify.request_timeout_ms"),
            (self.callback_tolerance_s, 1, 3600, "notify.callback_tolerance_s"),
        ] {
            if !(min..=max).contains(&v) {
                return Err(ConfigError::Check(format!("{name} must lie in {min}..={max}")));
            }
        }
        if self.retry_cap_s * 1000 < self.retry_base_ms {
            return Err(ConfigError::Check("notify.retry_cap_s must not be shorter than notify.retry_base_ms".into()));
        }
        self.vapid().map(drop)
    }
}

/// The process's threads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Threads running anxind's tasks (1 to 64); unset: see [`Config::worker_threads`].
    #[serde(default)]
    pub worker_threads: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http {
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mqtt {
    pub broker: String,
    pub embedded_listen: SocketAddr,
    /// A password file from `anxind broker-files`: the embedded broker then lets in only
    /// those accounts, each to its own topics. Without it, anyone may connect.
    #[serde(default)]
    pub embedded_accounts: Option<std::path::PathBuf>,
    pub topic_root: String,
    pub client_id: String,
    pub keep_alive_s: u64,
    pub max_payload_bytes: usize,
    /// TCP_QUICKACK on the engine's connection to an external broker (always on with the
    /// embedded one, which leaves Nagle's algorithm on).
    pub quick_ack: bool,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// How devices added and retired reach the broker's accounts; unset: see
    /// [`Mqtt::provisioning`].
    #[serde(default)]
    pub provisioning: Option<Provisioning>,
    /// The dynamic-security plugin's admin login (`provisioning = "dynsec"` only).
    #[serde(default)]
    pub dynsec_username: Option<String>,
    #[serde(default)]
    pub dynsec_password: Option<Secret>,
}

/// `mqtt.provisioning`: how the broker learns of devices added and retired while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provisioning {
    /// The embedded broker's guard changes its accounts in memory.
    Embedded,
    /// Mosquitto's dynamic-security plugin, told over MQTT.
    Dynsec,
    /// Files from `anxind broker-files`: the broker learns nothing until they are written
    /// again and it is reloaded.
    Files,
}

impl Provisioning {
    pub fn as_str(self) -> &'static str {
        match self {
            Provisioning::Embedded => "embedded",
            Provisioning::Dynsec => "dynsec",
            Provisioning::Files => "files",
        }
    }
}

impl Mqtt {
    /// `provisioning`, else `embedded` with the embedded broker and `files` with another.
    pub fn provisioning(&self) -> Provisioning {
        self.provisioning.unwrap_or(if self.broker == "embedded" {
            Provisioning::Embedded
        } else {
            Provisioning::Files
        })
    }

    fn check_provisioning(&self) -> Result<(), ConfigError> {
        let embedded = self.broker == "embedded";
        let dynsec_login = self.dynsec_username.is_some() || self.dynsec_password.is_some();
        match self.provisioning() {
            Provisioning::Embedded if !embedded => Err(ConfigError::Check(format!(
                "mqtt.provisioning = \"embedded\" is for mqtt.broker = \"embedded\", not {:?}: with Mosquitto use \
                 \"dynsec\" (its dynamic-security plugin) or \"files\" (anxind broker-files)",
                self.broker
            ))),
            Provisioning::Dynsec if embedded => Err(ConfigError::Check(
                "mqtt.provisioning = \"dynsec\" needs Mosquitto with its dynamic-security plugin \
                 (mqtt.broker = \"mqtt://HOST:PORT\"), not the embedded broker, which is told directly \
                 (\"embedded\")"
                    .into(),
            )),
            Provisioning::Dynsec
                if self.dynsec_username.as_deref().is_none_or(|u| u.trim().is_empty())
                    || self.dynsec_password.as_ref().is_none_or(|p| p.expose().is_empty()) =>
            {
                Err(ConfigError::Check(
                    "mqtt.dynsec_username and mqtt.dynsec_password must be set for mqtt.provisioning = \
                     \"dynsec\": the plugin's admin login (`mosquitto_ctrl dynsec init`, see \
                     deploy/mosquitto/dynsec.conf)"
                        .into(),
                ))
            }
            Provisioning::Embedded | Provisioning::Files if dynsec_login => Err(ConfigError::Check(format!(
                "mqtt.dynsec_username and mqtt.dynsec_password are only for mqtt.provisioning = \"dynsec\", \
                 not {:?}",
                self.provisioning().as_str()
            ))),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub url: Secret,
    /// Batches being committed at once, each on its own connection; unset: 1 for SQLite
    /// (one writer), 2 for PostgreSQL. See [`StoreConfig::commits_in_flight`].
    #[serde(default)]
    pub commits_in_flight: Option<usize>,
}

impl StoreConfig {
    /// How many batches may be committing at once: the configured number, else 1 for
    /// SQLite (it has one writer) and 2 for PostgreSQL: at 10,000 presses/s two
    /// gave the latency four did, with larger batches and less of the database's CPU.
    pub fn commits_in_flight(&self) -> usize {
        self.commits_in_flight.unwrap_or(if self.url.expose().starts_with("sqlite:") { 1 } else { 2 })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dispatch {
    pub max_offer_distance_m: f64,
    pub max_fix_accuracy_m: f64,
    pub max_fix_distance_from_home_m: f64,
    pub offer_timeout_s: u64,
    pub max_responder_offers: u32,
    pub parallel_offers: u32,
    /// An emergency with nobody free to offer takes a responder from another's extra
    /// parallel offers (`Policy::yield_extra_offers`).
    pub yield_extra_offers: bool,
    /// Offers cross zone borders (`Policy::border_offers`).
    pub border_offers: bool,
    /// Milliseconds a neighbouring zone's owner has to hold one of its responders.
    pub border_answer_ms: u64,
    /// Seconds a neighbour their zone could not spare is not asked for again.
    pub border_refused_s: u64,
    pub matching: String,
    pub station_timeout_s: u64,
    pub reminder_interval_s: u64,
    pub claim_offline_release_s: u64,
    /// Seconds the contacts told of an emergency have to answer before the next is told.
    pub family_escalate_after_s: u64,
    /// The centre's offset from UTC in minutes, for contacts' quiet hours.
    pub utc_offset_min: i32,
    pub on_scene_within_min: u64,
    pub max_fix_age_min: u64,
    pub repeat_press_interval_ms: u64,
    pub medical_number: String,
    pub fire_number: String,
    pub police_number: String,
    /// Per emergency kind (`sos`, `fall`, `fire`, `intrusion`): its own ladder.
    #[serde(default)]
    pub ladders: BTreeMap<String, LadderConfig>,
}

/// One kind's ladder; a key left out takes the `[dispatch]` default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LadderConfig {
    pub offers: Option<u32>,
    pub parallel: Option<u32>,
    pub station: Option<bool>,
}

impl Dispatch {
    /// The engine's ladders, one per emergency kind, defaults filled in.
    pub fn ladders(&self) -> BTreeMap<IncidentKind, LadderPolicy> {
        IncidentKind::EMERGENCIES
            .into_iter()
            .map(|kind| {
                let own = self.ladders.get(kind.as_str()).cloned().unwrap_or_default();
                let ladder = LadderPolicy {
                    offers: own.offers.unwrap_or(self.max_responder_offers),
                    parallel: own.parallel.unwrap_or(self.parallel_offers),
                    station: own.station.unwrap_or(true),
                };
                (kind, ladder)
            })
            .collect()
    }

    pub fn matching(&self) -> Matching {
        Matching::parse(&self.matching).expect("checked when loaded")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ingest {
    pub queue: usize,
    pub batch_max: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Consoles {
    pub replay: usize,
    pub language: String,
    pub accept_target_s: u64,
    pub on_scene_target_min: u64,
    /// The map's base tiles.
    pub map: ConsoleMap,
    /// Replaced by `[consoles.map]`; read only to say so.
    #[serde(default, skip_serializing)]
    pub tile_url: Option<String>,
}

/// `[consoles.map]`: whose tiles the console's map shows. Which keys a provider takes is
/// checked in `Config::check`; [`ConsoleMap::settings`] works out what consoles are sent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleMap {
    pub provider: MapProvider,
    /// Tianditu's `tk`. It reaches every console (it is in each tile's URL), so it is a
    /// browser key: restrict it to the consoles' addresses on Tianditu's site.
    #[serde(default)]
    pub key: Option<Secret>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub crs: Option<MapCrs>,
    #[serde(default)]
    pub attribution: Option<String>,
    #[serde(default)]
    pub subdomains: Option<String>,
    #[serde(default)]
    pub max_zoom: Option<u8>,
}

/// Tianditu's WMTS tiles in Web Mercator (`_w`): the streets, then their labels in Chinese.
const TIANDITU_LAYERS: [(&str, &str); 2] = [("vec_w", "vec"), ("cva_w", "cva")];
const AMAP_TILES: &str =
    "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}";
const DEFAULT_MAX_ZOOM: u8 = 18;

impl ConsoleMap {
    /// What consoles are told in their `welcome`.
    pub fn settings(&self) -> MapSettings {
        let attribution = |default: &str| self.attribution.clone().unwrap_or_else(|| default.to_string());
        let max_zoom = self.max_zoom.unwrap_or(DEFAULT_MAX_ZOOM);
        match self.provider {
            MapProvider::None => MapSettings::none(),
            MapProvider::Tianditu => {
                let key = self.key.as_ref().map_or("", Secret::expose);
                MapSettings {
                    provider: MapProvider::Tianditu,
                    tiles: TIANDITU_LAYERS
                        .iter()
                        .map(|(path, layer)| {
                            format!(
                                "https://t{{s}}.tianditu.gov.cn/{path}/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0\
                                 &LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles\
                                 &TILEMATRIX={{z}}&TILEROW={{y}}&TILECOL={{x}}&tk={key}"
                            )
                        })
                        .collect(),
                    subdomains: "01234567".into(),
                    crs: MapCrs::Wgs84,
                    attribution: attribution("© 天地图 tianditu.gov.cn"),
                    max_zoom,
                }
            }
            MapProvider::Amap => MapSettings {
                provider: MapProvider::Amap,
                tiles: vec![AMAP_TILES.into()],
                subdomains: "1234".into(),
                crs: MapCrs::Gcj02,
                attribution: attribution("© 高德地图 AutoNavi"),
                max_zoom,
            },
            MapProvider::Custom => MapSettings {
                provider: MapProvider::Custom,
                tiles: self.url.iter().cloned().collect(),
                subdomains: self.subdomains.clone().unwrap_or_default(),
                crs: self.crs.unwrap_or_default(),
                attribution: attribution(""),
                max_zoom,
            },
        }
    }

    /// The keys that make sense for the provider, and their values.
    fn check(&self) -> Result<(), ConfigError> {
        let provider = serde_json::to_value(self.provider).expect("an enum serialises");
        let provider = provider.as_str().expect("a unit variant is a string");
        let only = |set: bool, key: &str, which: &str| {
            if set {
                Err(ConfigError::Check(format!(
                    "consoles.map.{key} is only for provider = {which}, not provider = {provider:?}"
                )))
            } else {
                Ok(())
            }
        };
        let tianditu = self.provider == MapProvider::Tianditu;
        let custom = self.provider == MapProvider::Custom;
        only(!tianditu && self.key.is_some(), "key", "\"tianditu\"")?;
        only(!custom && self.url.is_some(), "url", "\"custom\" (the others know their own)")?;
        only(!custom && self.crs.is_some(), "crs", "\"custom\" (tianditu is wgs84, amap gcj02)")?;
        only(!custom && self.subdomains.is_some(), "subdomains", "\"custom\"")?;
        let none = self.provider == MapProvider::None;
        only(none && self.attribution.is_some(), "attribution", "a provider with tiles")?;
        only(none && self.max_zoom.is_some(), "max_zoom", "a provider with tiles")?;
        if let Some(z) = self.max_zoom {
            if !(3..=22).contains(&z) {
                return Err(ConfigError::Check(format!("consoles.map.max_zoom must lie in 3..=22, not {z}")));
            }
        }
        if tianditu {
            let key = self.key.as_ref().map_or("", Secret::expose);
            if key.is_empty() {
                return Err(ConfigError::Check(
                    "consoles.map.key must be set for provider = \"tianditu\": Tianditu's tiles need a `tk` \
                     (a browser key from https://console.tianditu.gov.cn)"
                        .into(),
                ));
            }
            if !key.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(ConfigError::Check(
                    "consoles.map.key must be letters and digits only (Tianditu's keys are 32 hex digits)".into(),
                ));
            }
        }
        if custom {
            let Some(url) = &self.url else {
                return Err(ConfigError::Check(
                    "consoles.map.url must be set for provider = \"custom\": a tile URL template such as \
                     \"https://tiles.example.org/{z}/{x}/{y}.png\""
                        .into(),
                ));
            };
            if !((url.starts_with("https://") || url.starts_with("http://"))
                && ["{z}", "{x}", "{y}"].iter().all(|p| url.contains(p)))
            {
                return Err(ConfigError::Check(format!(
                    "consoles.map.url must be an http(s) URL with {{z}}, {{x}} and {{y}}, not {url:?}"
                )));
            }
            let subdomains = self.subdomains.as_deref().unwrap_or("");
            if url.contains("{s}") == subdomains.is_empty() {
                return Err(ConfigError::Check(
                    "consoles.map.subdomains and {s} in consoles.map.url go together: {s} takes each of \
                     subdomains' characters in turn (\"abc\", \"1234\")"
                        .into(),
                ));
            }
            if self.attribution.as_deref().is_none_or(|a| a.trim().is_empty()) {
                return Err(ConfigError::Check(
                    "consoles.map.attribution must say whose tiles they are for provider = \"custom\" \
                     (their licence almost always asks for it), e.g. \"© OpenStreetMap contributors\""
                        .into(),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shutdown {
    pub deadline_s: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Demo {
    pub devices: usize,
    pub press_interval_s: f64,
    /// Mean seconds between simulated calls to the hotline; 0: none.
    #[serde(default)]
    pub call_interval_s: f64,
    pub seed: u64,
}

/// A value that must not appear in logs (a password, a database URL with credentials).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not a source: figment's message already says everything, and once is enough.
    #[error("configuration: {0}")]
    Invalid(Box<figment::Error>),
    #[error("configuration: {0}")]
    Check(String),
}

impl Config {
    /// Defaults, then `file`, then `ANXIN_*` variables, then `overrides` (from flags).
    pub fn load(file: Option<&Path>, overrides: &serde_json::Value) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULTS));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Check(format!("file {} does not exist", file.display())));
            }
            figment = figment.merge(Toml::file(file));
        }
        Self::layered(figment, std::env::vars(), overrides)
    }

    /// What [`Config::load`] does with a file's text instead of its path and the given
    /// variables instead of the process's: the fuzzer's way in (`fuzz/fuzz_targets/config.rs`).
    #[doc(hidden)]
    pub fn from_toml_str(
        toml: &str,
        vars: impl Iterator<Item = (String, String)>,
        overrides: &serde_json::Value,
    ) -> Result<Self, ConfigError> {
        Self::layered(Figment::from(Toml::string(DEFAULTS)).merge(Toml::string(toml)), vars, overrides)
    }

    /// `figment` (defaults and file), then `ANXIN_*` variables from `vars`, then `overrides`;
    /// extracted and checked.
    fn layered(
        figment: Figment,
        vars: impl Iterator<Item = (String, String)>,
        overrides: &serde_json::Value,
    ) -> Result<Self, ConfigError> {
        let figment = figment
            .merge(Named("ANXIN_ environment variables", env_overrides(vars)?))
            .merge(Named("command-line flags", overrides.clone()));
        let config: Config = figment.extract().map_err(|e| ConfigError::Invalid(Box::new(e)))?;
        config.check()?;
        Ok(config)
    }

    /// The defaults alone, for tests.
    pub fn defaults() -> Self {
        Figment::from(Toml::string(DEFAULTS)).extract().expect("built-in defaults are valid")
    }

    /// Threads running anxind's tasks: `runtime.worker_threads`, else 1 with an external
    /// broker and 2 with the embedded one, whose connections' proxy shares the runtime (see
    /// [`crate::tokio_runtime`]).
    pub fn worker_threads(&self) -> usize {
        self.runtime.worker_threads.unwrap_or(if self.mqtt.broker == "embedded" { 2 } else { 1 })
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.health.check()?;
        self.activity.check()?;
        self.programme.check()?;
        self.carers.check()?;
        self.services.check()?;
        self.telephony.check()?;
        self.wallboard.check()?;
        self.reports.check()?;
        self.cluster.check(self.store.url.expose(), &self.mqtt.broker)?;
        if self.mqtt.client_id.trim().is_empty() {
            return Err(ConfigError::Check("mqtt.client_id must not be empty".into()));
        }
        if self.mqtt.username.is_some() != self.mqtt.password.is_some() {
            return Err(ConfigError::Check("mqtt.username and mqtt.password must be set together".into()));
        }
        if self.mqtt.keep_alive_s == 0 || self.mqtt.keep_alive_s > u64::from(u16::MAX) {
            return Err(ConfigError::Check("mqtt.keep_alive_s must lie in 1..=65535".into()));
        }
        let positive = |v: f64, name: &str| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(ConfigError::Check(format!("{name} must be a positive number, not {v}")))
            }
        };
        positive(self.dispatch.max_offer_distance_m, "dispatch.max_offer_distance_m")?;
        positive(self.dispatch.max_fix_accuracy_m, "dispatch.max_fix_accuracy_m")?;
        positive(self.dispatch.max_fix_distance_from_home_m, "dispatch.max_fix_distance_from_home_m")?;
        positive(self.demo.press_interval_s, "demo.press_interval_s")?;
        if !(self.demo.call_interval_s.is_finite() && self.demo.call_interval_s >= 0.0) {
            return Err(ConfigError::Check(format!(
                "demo.call_interval_s must be 0 (no calls) or a positive number, not {}",
                self.demo.call_interval_s
            )));
        }
        let d = &self.dispatch;
        for (v, name) in [
            (d.offer_timeout_s, "dispatch.offer_timeout_s"),
            (d.station_timeout_s, "dispatch.station_timeout_s"),
            (d.reminder_interval_s, "dispatch.reminder_interval_s"),
            (d.claim_offline_release_s, "dispatch.claim_offline_release_s"),
            (d.family_escalate_after_s, "dispatch.family_escalate_after_s"),
            (d.on_scene_within_min, "dispatch.on_scene_within_min"),
            (d.max_fix_age_min, "dispatch.max_fix_age_min"),
            (d.border_refused_s, "dispatch.border_refused_s"),
        ] {
            if v == 0 || v > 86_400 {
                return Err(ConfigError::Check(format!("{name} must lie in 1..=86400")));
            }
        }
        if !(100..=60_000).contains(&d.border_answer_ms) {
            return Err(ConfigError::Check("dispatch.border_answer_ms must lie in 100..=60000".into()));
        }
        if !(-12 * 60..=14 * 60).contains(&d.utc_offset_min) {
            return Err(ConfigError::Check("dispatch.utc_offset_min must lie in -720..=840".into()));
        }
        for (number, name) in [
            (&d.medical_number, "dispatch.medical_number"),
            (&d.fire_number, "dispatch.fire_number"),
            (&d.police_number, "dispatch.police_number"),
        ] {
            if number.trim().is_empty() {
                return Err(ConfigError::Check(format!("{name} must not be empty")));
            }
        }
        if d.repeat_press_interval_ms > 60_000 {
            return Err(ConfigError::Check("dispatch.repeat_press_interval_ms must lie in 0..=60000".into()));
        }
        if Matching::parse(&d.matching).is_none() {
            return Err(ConfigError::Check(format!(
                "dispatch.matching must be \"nearest\" or \"own_station\", not {:?}",
                d.matching
            )));
        }
        let kinds: Vec<&str> = IncidentKind::EMERGENCIES.iter().map(|k| k.as_str()).collect();
        if let Some(kind) = d.ladders.keys().find(|k| !kinds.contains(&k.as_str())) {
            return Err(ConfigError::Check(format!(
                "dispatch.ladders.{kind}: no such emergency kind (one of {})",
                kinds.join(", ")
            )));
        }
        if d.max_responder_offers > 100 {
            return Err(ConfigError::Check("dispatch.max_responder_offers must lie in 0..=100".into()));
        }
        if !(1..=20).contains(&d.parallel_offers) {
            return Err(ConfigError::Check("dispatch.parallel_offers must lie in 1..=20".into()));
        }
        for (kind, l) in &d.ladders {
            if l.offers.is_some_and(|n| n > 100) {
                return Err(ConfigError::Check(format!("dispatch.ladders.{kind}.offers must lie in 0..=100")));
            }
            if l.parallel.is_some_and(|n| !(1..=20).contains(&n)) {
                return Err(ConfigError::Check(format!("dispatch.ladders.{kind}.parallel must lie in 1..=20")));
            }
        }
        if self.ingest.queue == 0 || self.ingest.batch_max == 0 || self.consoles.replay == 0 {
            return Err(ConfigError::Check(
                "ingest.queue, ingest.batch_max and consoles.replay must be at least 1".into(),
            ));
        }
        // anxind builds its queues and buffers with these sizes at start: far past the defaults
        // they would only panic there (a capacity overflow) or take the machine's memory.
        for (v, max, name) in [
            (self.ingest.queue, 100_000, "ingest.queue"),
            (self.ingest.batch_max, 10_000, "ingest.batch_max"),
            (self.consoles.replay, 100_000, "consoles.replay"),
        ] {
            if v > max {
                return Err(ConfigError::Check(format!("{name} must lie in 1..={max}")));
            }
        }
        if self.runtime.worker_threads.is_some_and(|n| !(1..=64).contains(&n)) {
            return Err(ConfigError::Check("runtime.worker_threads must lie in 1..=64".into()));
        }
        if self.store.commits_in_flight.is_some_and(|n| !(1..=16).contains(&n)) {
            return Err(ConfigError::Check("store.commits_in_flight must lie in 1..=16".into()));
        }
        let c = &self.consoles;
        if !["zh-CN", "en"].contains(&c.language.as_str()) {
            return Err(ConfigError::Check(format!(
                "consoles.language must be \"zh-CN\" or \"en\", not {:?}",
                c.language
            )));
        }
        if c.accept_target_s == 0 || c.on_scene_target_min == 0 {
            return Err(ConfigError::Check(
                "consoles.accept_target_s and on_scene_target_min must be at least 1".into(),
            ));
        }
        if let Some(url) = &c.tile_url {
            return Err(ConfigError::Check(format!(
                "consoles.tile_url is replaced by [consoles.map]: provider = \"custom\", url = {url:?}, \
                 attribution = \"…\" (see docs/configuration.md)"
            )));
        }
        c.map.check()?;
        if self.mqtt.max_payload_bytes < 256 {
            return Err(ConfigError::Check("mqtt.max_payload_bytes must be at least 256".into()));
        }
        anxin_mqtt::Topics::new(&self.mqtt.topic_root)
            .map_err(|e| ConfigError::Check(format!("mqtt.topic_root: {e}")))?;
        if self.mqtt.broker != "embedded" {
            broker_address(&self.mqtt.broker)?;
        }
        self.mqtt.check_provisioning()?;
        self.notify.check()?;
        Ok(())
    }
}

/// Values from a source with a name a person recognises in an error message.
struct Named(&'static str, serde_json::Value);

impl figment::Provider for Named {
    fn metadata(&self) -> figment::Metadata {
        figment::Metadata::named(self.0)
    }

    fn data(&self) -> Result<figment::value::Map<figment::Profile, figment::value::Dict>, figment::Error> {
        Serialized::defaults(&self.1).data()
    }
}

/// Keys whose values are text even when they look like numbers (a password `1234`, a
/// client id `007`); every other value is parsed as TOML would (numbers, booleans).
const TEXT_KEYS: &[&str] = &[
    "http.listen",
    "mqtt.broker",
    "mqtt.embedded_listen",
    "mqtt.topic_root",
    "mqtt.client_id",
    "mqtt.username",
    "mqtt.password",
    "mqtt.provisioning",
    "mqtt.dynsec_username",
    "mqtt.dynsec_password",
    "store.url",
    "dispatch.medical_number",
    "dispatch.fire_number",
    "dispatch.police_number",
    "dispatch.matching",
    "consoles.language",
    "consoles.tile_url",
    "consoles.map.key",
    "consoles.map.url",
    "consoles.map.attribution",
    "consoles.map.subdomains",
    "notify.gateway_url",
    "notify.gateway_secret",
    "notify.callback_secret",
    "notify.vapid_private_key",
    "notify.vapid_private_key_file",
    "notify.vapid_subject",
];

/// `ANXIN_SECTION__KEY=value` variables as overrides. Variables without a section (such as
/// `ANXIN_LOG`) are not configuration keys and are left alone.
fn env_overrides(vars: impl Iterator<Item = (String, String)>) -> Result<serde_json::Value, ConfigError> {
    let mut out = serde_json::Map::new();
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix("ANXIN_") else { continue };
        // SECTION__KEY, or deeper: DISPATCH__LADDERS__FALL__PARALLEL.
        let segments: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        if segments.len() < 2 || segments.iter().any(String::is_empty) {
            continue;
        }
        let path = segments.join(".");
        let value = if TEXT_KEYS.contains(&path.as_str()) {
            serde_json::Value::String(raw)
        } else {
            let parsed: Value = raw.parse().expect("parsing a figment value is infallible");
            serde_json::to_value(parsed).map_err(|e| ConfigError::Check(format!("{name}: {e}")))?
        };
        let (key, sections) = segments.split_last().expect("two segments or more");
        let mut map = &mut out;
        for section in sections {
            let entry = map.entry(section.clone()).or_insert_with(|| serde_json::Value::Object(Default::default()));
            map = match entry {
                serde_json::Value::Object(inner) => inner,
                _ => return Err(ConfigError::Check(format!("{name}: {path} is not a section key"))),
            };
        }
        if map.insert(key.clone(), value).is_some_and(|v| v.is_object()) {
            return Err(ConfigError::Check(format!("{name}: {path} is a section, not a key")));
        }
    }
    Ok(serde_json::Value::Object(out))
}

/// Host and port of an `mqtt://host:port` URL (port 1883 when left out).
pub fn broker_address(url: &str) -> Result<(String, u16), ConfigError> {
    let rest = url.strip_prefix("mqtt://").or_else(|| url.strip_prefix("tcp://")).ok_or_else(|| {
        ConfigError::Check(format!("mqtt.broker must be \"embedded\" or mqtt://HOST:PORT, not {url:?}"))
    })?;
    let rest = rest.trim_end_matches('/');
    match rest.rsplit_once(':') {
        Some((host, port)) => {
            let port = port.parse().map_err(|_| ConfigError::Check(format!("bad port in mqtt.broker {url:?}")))?;
            Ok((host.trim_matches(['[', ']']).to_string(), port))
        }
        None if !rest.is_empty() => Ok((rest.to_string(), 1883)),
        None => Err(ConfigError::Check(format!("no host in mqtt.broker {url:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_do_not_take_the_system_broker_port() {
        let c = Config::defaults();
        assert_eq!(c.mqtt.broker, "embedded");
        assert_ne!(c.mqtt.embedded_listen.port(), 1883);
        assert!(c.store.url.expose().starts_with("sqlite://"));
    }

    #[test]
    fn flags_override_file_and_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("anxin.toml");
        std::fs::write(&file, "[store]\nurl = \"postgres://file@h/db\"\n[dispatch]\nmax_offer_distance_m = 3000.0\n")
            .unwrap();
        let flags = serde_json::json!({ "store": { "url": "sqlite://flag.db" } });
        let c = Config::load(Some(&file), &flags).unwrap();
        assert_eq!(c.store.url.expose(), "sqlite://flag.db");
        assert_eq!(c.dispatch.max_offer_distance_m, 3000.0);
        assert_eq!(c.http.listen.port(), 8080, "untouched keys keep their defaults");
    }

    #[test]
    fn bad_values_get_clear_errors() {
        let bad = serde_json::json!({ "dispatch": { "max_offer_distance_m": -1.0 } });
        let e = Config::load(None, &bad).unwrap_err().to_string();
        assert!(e.contains("dispatch.max_offer_distance_m"), "{e}");
        let bad = serde_json::json!({ "mqtt": { "broker": "amqp://x" } });
        assert!(Config::load(None, &bad).unwrap_err().to_string().contains("mqtt.broker"));
        let bad = serde_json::json!({ "dispatch": { "family_escalate_after_s": 0 } });
        assert!(Config::load(None, &bad).unwrap_err().to_string().contains("dispatch.family_escalate_after_s"));
        let bad = serde_json::json!({ "dispatch": { "utc_offset_min": 900 } });
        assert!(Config::load(None, &bad).unwrap_err().to_string().contains("dispatch.utc_offset_min"));
        let missing = Config::load(Some(Path::new("/nonexistent/anxin.toml")), &serde_json::json!({}));
        assert!(missing.unwrap_err().to_string().contains("does not exist"));
    }

    #[test]
    fn turn_servers_are_turn_urls_for_a_softphone() {
        let token = "a-telephony-token-16+";
        let phone = |extra: serde_json::Value| {
            let mut t = serde_json::json!({ "token": token, "ws_url": "ws://127.0.0.1:5066" });
            t.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            serde_json::json!({ "telephony": t })
        };
        let ok = phone(
            serde_json::json!({ "turn_urls": ["turn:127.0.0.1:3478", "turns:turn.centre.example:5349"], "ice_relay_only": true }),
        );
        let c = Config::load(None, &ok).unwrap();
        assert_eq!(c.telephony.turn_urls.len(), 2);
        assert!(c.telephony.ice_relay_only);
        for bad in ["stun:127.0.0.1:3478", "turn:", "127.0.0.1:3478", "turn:a b"] {
            let e = Config::load(None, &phone(serde_json::json!({ "turn_urls": [bad] }))).unwrap_err().to_string();
            assert!(e.contains("telephony.turn_urls holds"), "{bad}: {e}");
        }
        let e = Config::load(None, &phone(serde_json::json!({ "ice_relay_only": true }))).unwrap_err().to_string();
        assert!(e.contains("ice_relay_only needs telephony.turn_urls"), "{e}");
        let no_phone = serde_json::json!({ "telephony": { "token": token, "turn_urls": ["turn:127.0.0.1:3478"] } });
        let e = Config::load(None, &no_phone).unwrap_err().to_string();
        assert!(e.contains("it needs telephony.ws_url"), "{e}");
    }

    #[test]
    fn the_softphones_websocket_is_a_ws_url_and_needs_the_token() {
        let token = "a-telephony-token-16+";
        let ok = serde_json::json!({ "telephony": { "token": token, "ws_url": "wss://sip.centre.example/ws" } });
        assert_eq!(Config::load(None, &ok).unwrap().telephony.ws_url.as_deref(), Some("wss://sip.centre.example/ws"));
        for bad in ["http://127.0.0.1:5066", "ws://", "127.0.0.1:5066", "ws://a b"] {
            let bad = serde_json::json!({ "telephony": { "token": token, "ws_url": bad } });
            let e = Config::load(None, &bad).unwrap_err().to_string();
            assert!(e.contains("telephony.ws_url must be"), "{e}");
        }
        let no_token = serde_json::json!({ "telephony": { "ws_url": "ws://127.0.0.1:5066" } });
        let e = Config::load(None, &no_token).unwrap_err().to_string();
        assert!(e.contains("needs telephony.token"), "{e}");
    }

    #[test]
    fn commits_in_flight_and_threads_default_by_store_and_broker_and_are_checked() {
        let c = Config::defaults();
        assert_eq!(c.store.commits_in_flight(), 1, "SQLite has one writer");
        assert_eq!(c.worker_threads(), 2, "the embedded broker's proxy shares the runtime");
        let pg = serde_json::json!({
            "store": { "url": "postgres://postgres@127.0.0.1/test" },
            "mqtt": { "broker": "mqtt://127.0.0.1:1883" },
        });
        let c = Config::load(None, &pg).unwrap();
        assert_eq!(c.store.commits_in_flight(), 2);
        assert_eq!(c.worker_threads(), 1);
        let set = serde_json::json!({ "store": { "commits_in_flight": 2 }, "runtime": { "worker_threads": 3 } });
        let c = Config::load(None, &set).unwrap();
        assert_eq!((c.store.commits_in_flight(), c.worker_threads()), (2, 3));
        for (bad, key) in [
            (serde_json::json!({ "store": { "commits_in_flight": 0 } }), "store.commits_in_flight must lie in 1..=16"),
            (serde_json::json!({ "store": { "commits_in_flight": 17 } }), "store.commits_in_flight must lie in 1..=16"),
            (serde_json::json!({ "runtime": { "worker_threads": 0 } }), "runtime.worker_threads must lie in 1..=64"),
        ] {
            let e = Config::load(None, &bad).unwrap_err().to_string();
            assert!(e.contains(key), "{e}");
        }
    }

    #[test]
    fn environment_values_that_look_like_numbers_stay_text_where_text_is_meant() {
        let vars = [
            ("ANXIN_MQTT__PASSWORD", "1234"),
            ("ANXIN_MQTT__USERNAME", "007"),
            ("ANXIN_MQTT__CLIENT_ID", "007"),
            ("ANXIN_DISPATCH__MAX_OFFER_DISTANCE_M", "3000"),
            ("ANXIN_LOG", "debug"),
            ("PATH", "/bin"),
        ];
        let env = env_overrides(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        let c = Config::load(None, &serde_json::json!({})).unwrap();
        let c: Config = Figment::from(Serialized::defaults(&c)).merge(Serialized::defaults(env)).extract().unwrap();
        assert_eq!(c.mqtt.password.unwrap().expose(), "1234");
        assert_eq!(c.mqtt.username.as_deref(), Some("007"));
        assert_eq!(c.mqtt.client_id, "007");
        assert_eq!(c.dispatch.max_offer_distance_m, 3000.0);
    }

    #[test]
    fn a_misspelt_key_is_an_error_not_silence() {
        let e =
            Config::load(None, &serde_json::json!({ "store": { "ulr": "sqlite://x.db" } })).unwrap_err().to_string();
        assert!(e.contains("ulr"), "{e}");
        let e = Config::load(None, &serde_json::json!({ "mqtt": { "username": "anxind" } })).unwrap_err().to_string();
        assert!(e.contains("set together"), "{e}");
    }

    #[test]
    fn provisioning_follows_the_broker_and_a_dynsec_admin_login_is_required() {
        let c = Config::defaults();
        assert_eq!(c.mqtt.provisioning(), Provisioning::Embedded);
        let external = serde_json::json!({ "mqtt": { "broker": "mqtt://127.0.0.1:1883" } });
        assert_eq!(Config::load(None, &external).unwrap().mqtt.provisioning(), Provisioning::Files);
        let vars = [
            ("ANXIN_MQTT__BROKER", "mqtt://127.0.0.1:1883"),
            ("ANXIN_MQTT__PROVISIONING", "dynsec"),
            ("ANXIN_MQTT__DYNSEC_USERNAME", "007"),
            ("ANXIN_MQTT__DYNSEC_PASSWORD", "1234"),
        ];
        let env = env_overrides(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        let c = Config::load(None, &env).unwrap();
        assert_eq!(c.mqtt.provisioning(), Provisioning::Dynsec);
        assert_eq!(
            (c.mqtt.dynsec_username.as_deref(), c.mqtt.dynsec_password.as_ref().map(Secret::expose)),
            (Some("007"), Some("1234"))
        );
        assert!(!format!("{c:?}").contains("1234"), "the admin's password is kept out of logs");

        let broker = "mqtt://127.0.0.1:1883";
        for (bad, says) in [
            (serde_json::json!({ "provisioning": "dynsec" }), "needs Mosquitto with its dynamic-security plugin"),
            (serde_json::json!({ "broker": broker, "provisioning": "embedded" }), "is for mqtt.broker = \"embedded\""),
            (
                serde_json::json!({ "broker": broker, "provisioning": "dynsec" }),
                "mqtt.dynsec_username and mqtt.dynsec_password must be set",
            ),
            (
                serde_json::json!({ "broker": broker, "provisioning": "dynsec", "dynsec_username": "admin" }),
                "mqtt.dynsec_username and mqtt.dynsec_password must be set",
            ),
            (
                serde_json::json!({ "broker": broker, "dynsec_username": "a", "dynsec_password": "b" }),
                "only for mqtt.provisioning = \"dynsec\", not \"files\"",
            ),
            (serde_json::json!({ "provisioning": "mosquitto" }), "found `mosquitto`"),
        ] {
            let e = Config::load(None, &serde_json::json!({ "mqtt": bad })).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("postgres://u:hunter2@h/db");
        assert!(!format!("{s:?}").contains("hunter2"));
    }

    #[test]
    fn broker_urls_parse() {
        assert_eq!(broker_address("mqtt://127.0.0.1:1883").unwrap(), ("127.0.0.1".into(), 1883));
        assert_eq!(broker_address("mqtt://broker").unwrap(), ("broker".into(), 1883));
        assert!(broker_address("mqtt://h:x").is_err());
    }

    #[test]
    fn each_emergency_kind_may_have_its_own_ladder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("anxin.toml");
        let toml = "[dispatch]\nmax_responder_offers = 4\n[dispatch.ladders.fall]\nparallel = 2\nstation = false\n";
        std::fs::write(&file, toml).unwrap();
        let c = Config::load(Some(&file), &serde_json::json!({})).unwrap();
        let ladders = c.dispatch.ladders();
        assert_eq!(ladders[&IncidentKind::Fall], LadderPolicy { offers: 4, parallel: 2, station: false });
        assert_eq!(ladders[&IncidentKind::Sos], LadderPolicy { offers: 4, parallel: 3, station: true }, "defaults");
        assert_eq!(ladders[&IncidentKind::Fire].offers, 4);
        assert_eq!(c.dispatch.matching(), Matching::Nearest);

        let vars = [("ANXIN_DISPATCH__LADDERS__SOS__PARALLEL", "3"), ("ANXIN_DISPATCH__MATCHING", "own_station")];
        let env = env_overrides(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        let c = Config::load(None, &env).unwrap();
        assert_eq!(c.dispatch.ladders()[&IncidentKind::Sos].parallel, 3, "nested keys work from the environment");
        assert_eq!(c.dispatch.matching(), Matching::OwnStation);
        let policy = crate::app::policy_of(&Config::load(None, &serde_json::json!({})).unwrap());
        assert!(policy.border_offers, "offers cross borders by default");
        assert_eq!((policy.border_answer_ms, policy.border_refused_ms), (3_000, 30_000));
        let within = serde_json::json!({"dispatch": {"border_offers": false}});
        assert!(!crate::app::policy_of(&Config::load(None, &within).unwrap()).border_offers);
        let en = serde_json::json!({"consoles": {"language": "en"}});
        assert_eq!(Config::load(None, &en).unwrap().consoles.language, "en");

        for (bad, says) in [
            (serde_json::json!({"dispatch": {"ladders": {"flood": {"parallel": 2}}}}), "no such emergency kind"),
            (serde_json::json!({"dispatch": {"ladders": {"fall": {"parallel": 0}}}}), "parallel must lie in 1..=20"),
            (serde_json::json!({"dispatch": {"ladders": {"fall": {"paralel": 2}}}}), "paralel"),
            (serde_json::json!({"dispatch": {"matching": "closest"}}), "dispatch.matching must be"),
            (serde_json::json!({"dispatch": {"fire_number": " "}}), "dispatch.fire_number must not be empty"),
            (
                serde_json::json!({"dispatch": {"repeat_press_interval_ms": 60_001}}),
                "repeat_press_interval_ms must lie",
            ),
            (serde_json::json!({"consoles": {"language": "fr"}}), "consoles.language must be"),
            (serde_json::json!({"consoles": {"accept_target_s": 0}}), "must be at least 1"),
            (
                serde_json::json!({"dispatch": {"border_answer_ms": 0}}),
                "dispatch.border_answer_ms must lie in 100..=60000",
            ),
            (
                serde_json::json!({"dispatch": {"border_refused_s": 0}}),
                "dispatch.border_refused_s must lie in 1..=86400",
            ),
        ] {
            let e = Config::load(None, &bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn health_values_out_of_range_get_clear_errors() {
        let health = |table: serde_json::Value| Config::load(None, &serde_json::json!({ "health": table }));
        for (bad, says) in [
            (serde_json::json!({"heartbeat_s": 9}), "health.heartbeat_s must lie in 10..=86400 seconds, not 9"),
            (
                serde_json::json!({"heartbeat_s": 86_401}),
                "health.heartbeat_s must lie in 10..=86400 seconds, not 86401",
            ),
            (serde_json::json!({"factor": 0.5}), "health.factor must lie in 1.0..=100.0, not 0.5"),
            (serde_json::json!({"factor": 100.5}), "health.factor must lie in 1.0..=100.0, not 100.5"),
            (serde_json::json!({"grace_s": -1}), "for key \"default.health.grace_s\""),
            (serde_json::json!({"grace_s": "2m"}), "for key \"default.health.grace_s\""),
            (
                serde_json::json!({"low_battery_pct": 30}),
                "health.low_battery_pct (30) must be under health.charged_pct (30), which is at most 100",
            ),
            (
                serde_json::json!({"low_battery_pct": 40, "charged_pct": 35}),
                "health.low_battery_pct (40) must be under health.charged_pct (35), which is at most 100",
            ),
            (
                serde_json::json!({"charged_pct": 101}),
                "health.low_battery_pct (20) must be under health.charged_pct (101), which is at most 100",
            ),
            (serde_json::json!({"low_battery_pct": 256}), "for key \"default.health.low_battery_pct\""),
            (serde_json::json!({"snapshot_s": 0}), "health.snapshot_s must lie in 1..=86400, not 0"),
            (serde_json::json!({"snapshot_s": 86_401}), "health.snapshot_s must lie in 1..=86400, not 86401"),
            (
                serde_json::json!({"models": {"watch-4g": {"heartbeat_s": 5}}}),
                "health.models.watch-4g.heartbeat_s must lie in 10..=86400 seconds, not 5",
            ),
            (
                serde_json::json!({"models": {"watch-4g": {"factor": 0.0}}}),
                "health.models.watch-4g.factor must lie in 1.0..=100.0, not 0",
            ),
            (serde_json::json!({"models": {"watch-4g": {"grace_s": -5}}}), "health.models.watch-4g.grace_s"),
            (serde_json::json!({"models": {"watch-4g": {"grace": 5}}}), "unknown field: found `grace`"),
            (serde_json::json!({"heartbeat": 300}), "unknown field: found `heartbeat`"),
        ] {
            let e = health(bad.clone()).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        // NaN and infinity come only from a file (JSON has neither).
        for (toml, says) in [
            ("[health]\nfactor = nan\n", "health.factor must lie in 1.0..=100.0, not NaN"),
            (
                "[health.models.pendant]\nfactor = inf\n",
                "health.models.pendant.factor must lie in 1.0..=100.0, not inf",
            ),
        ] {
            let e = Config::from_toml_str(toml, std::iter::empty(), &serde_json::json!({})).unwrap_err().to_string();
            assert!(e.contains(says), "{toml}: {e}");
        }

        // The ends of each range are taken, and a model takes what it leaves out from [health].
        let edges = serde_json::json!({
            "heartbeat_s": 10, "factor": 100.0, "grace_s": 0, "low_battery_pct": 99, "charged_pct": 100,
            "snapshot_s": 86_400,
            "models": {"watch-4g": {"heartbeat_s": 86_400, "factor": 1.0}, "pendant": {"grace_s": 600}},
        });
        let policy = health(edges).unwrap().health.policy();
        assert_eq!(policy.default, anxin_core::HealthModel { heartbeat_s: 10, factor: 100.0, grace_s: 0 });
        assert_eq!(
            policy.model(Some("watch-4g")),
            &anxin_core::HealthModel { heartbeat_s: 86_400, factor: 1.0, grace_s: 0 }
        );
        assert_eq!(
            policy.model(Some("pendant")),
            &anxin_core::HealthModel { heartbeat_s: 10, factor: 100.0, grace_s: 600 }
        );
        assert_eq!((policy.low_battery_pct, policy.charged_pct), (99, 100));
        assert!(health(serde_json::json!({"snapshot_s": 1, "low_battery_pct": 0, "charged_pct": 1})).is_ok());
    }

    /// Each `[section]` table of docs/configuration.md, as key → its default cell.
    fn documented_defaults() -> BTreeMap<String, BTreeMap<String, String>> {
        let doc = include_str!("../../../docs/configuration.md");
        let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut section = None;
        for line in doc.lines() {
            if line.starts_with('#') {
                section = line.strip_prefix("### `[").and_then(|h| h.strip_suffix("]`")).map(str::to_string);
                continue;
            }
            let Some(section) = &section else { continue };
            // | `key` | type | default | ...
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if let [_, key, _, default, ..] = cells[..] {
                if let Some(key) = key.strip_prefix('`').and_then(|k| k.strip_suffix('`')) {
                    sections.entry(section.clone()).or_default().insert(key.to_string(), default.to_string());
                }
            }
        }
        sections
    }

    #[test]
    fn a_cluster_needs_postgresql_an_external_broker_and_a_lease_that_can_be_renewed() {
        let pg = serde_json::json!({"store": {"url": "postgres://db/anxin"}, "mqtt": {"broker": "mqtt://b:1883"}});
        let with = |cluster: serde_json::Value| {
            let mut o = pg.clone();
            o["cluster"] = cluster;
            Config::load(None, &o)
        };
        let c = with(serde_json::json!({"enabled": true, "node": "a"})).unwrap();
        assert_eq!((c.cluster.node_name(), c.cluster.lease_ttl_ms, c.cluster.renew_ms), ("a".to_string(), 5000, 1000));
        assert!(Config::defaults().cluster.node_name().ends_with(&format!("-{}", std::process::id())));
        for (bad, why) in [
            (
                serde_json::json!({"enabled": true, "lease_ttl_ms": 500}),
                "cluster.lease_ttl_ms must lie in 1000..=60000, not 500",
            ),
            (
                serde_json::json!({"enabled": true, "renew_ms": 3000}),
                "cluster.renew_ms must lie in 1..=lease_ttl_ms/2 (2500), not 3000",
            ),
            (
                serde_json::json!({"enabled": true, "standby_poll_ms": 5}),
                "cluster.standby_poll_ms must lie in 10..=lease_ttl_ms (5000), not 5",
            ),
            (serde_json::json!({"enabled": true, "node": " "}), "cluster.node must be 1 to 200 characters"),
            (serde_json::json!({"enabled": true, "node": "a,b"}), "and no comma"),
            (serde_json::json!({"enabled": true, "node": "a/b"}), "and no comma, slash, + or #"),
            (
                serde_json::json!({"enabled": true, "spread_zones": true, "ingest_sessions": 0}),
                "cluster.ingest_sessions must lie in 1..=64 with spread_zones, not 0",
            ),
            (
                serde_json::json!({"enabled": true, "advertise": "10.0.0.11"}),
                "cluster.advertise must be HOST:PORT where other nodes reach this one, not \"10.0.0.11\"",
            ),
            (serde_json::json!({"enabled": true, "advertise": ":8080"}), "cluster.advertise must be HOST:PORT"),
        ] {
            let e = with(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        let on = serde_json::json!({"cluster": {"enabled": true}});
        let e = Config::load(None, &on).unwrap_err().to_string();
        assert!(e.contains("cluster.enabled needs a PostgreSQL store"), "{e}");
        let on = serde_json::json!({"cluster": {"enabled": true}, "store": {"url": "postgres://db/anxin"}});
        let e = Config::load(None, &on).unwrap_err().to_string();
        assert!(e.contains("cluster.enabled needs an external broker"), "{e}");
        assert!(
            Config::load(None, &serde_json::json!({"cluster": {"lease_ttl_ms": 1}})).is_ok(),
            "checked only when on"
        );
    }

    #[test]
    fn the_carers_rule_reads_and_refuses_what_cannot_work() {
        let c = Config::defaults();
        assert_eq!(c.carers.policy(), anxin_core::CarerPolicy::default(), "the defaults are the engine's");
        let wide = serde_json::json!({"carers": {"checkin_radius_m": 350.0, "visit_max_min": 120}});
        let p = Config::load(None, &wide).unwrap().carers.policy();
        assert_eq!((p.checkin_radius_m, p.visit_max_ms), (350.0, 120 * 60_000));
        for (bad, why) in [
            (serde_json::json!({"checkin_radius_m": 5.0}), "carers.checkin_radius_m must lie in 10..=5000, not 5"),
            (serde_json::json!({"visit_max_min": 0}), "carers.visit_max_min must lie in 0.1..=1440, not 0"),
            (serde_json::json!({"visit_max_min": 0.05}), "carers.visit_max_min must lie in 0.1..=1440, not 0.05"),
        ] {
            let e = Config::load(None, &serde_json::json!({ "carers": bad })).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn the_services_rule_reads_and_refuses_what_cannot_work() {
        let c = Config::defaults();
        assert_eq!(c.services.policy(), anxin_core::service::ServicePolicy::default(), "the defaults are the engine's");
        let own = serde_json::json!({"services": {
            "categories": [{"id": "meals", "accept_within_min": 45}, {"id": "repair_2", "accept_within_min": 90}],
            "offer_timeout_min": 5, "checkin_radius_m": 350.0, "monthly_allowance_yuan": [500, 0],
        }});
        let p = Config::load(None, &own).unwrap().services.policy();
        let categories: Vec<(&str, u32)> = p.categories.iter().map(|c| (c.id.as_str(), c.accept_within_min)).collect();
        assert_eq!(categories, [("meals", 45), ("repair_2", 90)], "a list replaces the built-in one whole");
        assert_eq!((p.offer_timeout_ms, p.checkin_radius_m), (5 * 60_000, 350.0));
        assert_eq!(p.monthly_allowance_fen, [50_000, 0], "yuan become fen");
        assert_eq!((p.allowance_fen(Some(1)), p.allowance_fen(Some(2)), p.allowance_fen(Some(3))), (50_000, 0, 0));
        // A file's array of tables reads the same, and the ends of each range are taken.
        let toml = "[services]\noffer_timeout_min = 1440\ncheckin_radius_m = 10\nmonthly_allowance_yuan = []\n\
                    [[services.categories]]\nid = \"meals\"\naccept_within_min = 1\n";
        let p = Config::from_toml_str(toml, std::iter::empty(), &serde_json::json!({})).unwrap().services.policy();
        assert_eq!((p.categories.len(), p.offer_timeout_ms, p.checkin_radius_m), (1, 1440 * 60_000, 10.0));
        assert_eq!(p.allowance_fen(Some(1)), 0, "no allowances: everything is self-paid");
        let cat = |id: &str| serde_json::json!({"id": id, "accept_within_min": 60});
        for (bad, why) in [
            (serde_json::json!({"categories": []}), "services.categories must name at least one category"),
            (serde_json::json!({"categories": [cat("")]}), "an id is lower-case letters, digits and _"),
            (serde_json::json!({"categories": [cat("Meals")]}), "not \"Meals\""),
            (serde_json::json!({"categories": [cat("meal delivery")]}), "not \"meal delivery\""),
            (serde_json::json!({"categories": [cat("meals"), cat("meals")]}), "\"meals\" is listed twice"),
            (
                serde_json::json!({"categories": [{"id": "meals", "accept_within_min": 0}]}),
                "services.categories: meals's accept_within_min must lie in 1..=10080, not 0",
            ),
            (serde_json::json!({"categories": [{"id": "meals"}]}), "missing field `accept_within_min`"),
            (serde_json::json!({"offer_timeout_min": 0}), "services.offer_timeout_min must lie in 1..=1440, not 0"),
            (
                serde_json::json!({"offer_timeout_min": 1441}),
                "services.offer_timeout_min must lie in 1..=1440, not 1441",
            ),
            (serde_json::json!({"checkin_radius_m": 5.0}), "services.checkin_radius_m must lie in 10..=5000, not 5"),
            (
                serde_json::json!({"checkin_radius_m": 5001.0}),
                "services.checkin_radius_m must lie in 10..=5000, not 5001",
            ),
            (
                serde_json::json!({"monthly_allowance_yuan": [300, 100_001]}),
                "services.monthly_allowance_yuan: each amount must lie in 0..=100000, not 100001",
            ),
            (serde_json::json!({"monthly_allowance_yuan": [-1]}), "services.monthly_allowance_yuan"),
            (
                serde_json::json!({"monthly_allowance_yuan": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}),
                "one amount per level of need, 1 to 9: 10 is too many",
            ),
            (serde_json::json!({"offer_timeout_s": 60}), "unknown field: found `offer_timeout_s`"),
        ] {
            let e = Config::load(None, &serde_json::json!({ "services": bad })).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        // From the environment, as any key.
        let vars = [("ANXIN_SERVICES__OFFER_TIMEOUT_MIN", "30"), ("ANXIN_SERVICES__MONTHLY_ALLOWANCE_YUAN", "[400]")];
        let env = env_overrides(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        let p = Config::load(None, &env).unwrap().services.policy();
        assert_eq!((p.offer_timeout_ms, p.monthly_allowance_fen), (30 * 60_000, vec![40_000]));
    }

    #[test]
    fn report_shifts_read_from_file_or_environment_and_refuse_what_is_no_shift() {
        assert_eq!(
            Config::defaults().reports.shifts(),
            anxin_core::Shifts::default(),
            "day and night, 08:00 and 20:00"
        );
        let three = Config::from_toml_str(
            "",
            [("ANXIN_REPORTS__SHIFTS".to_string(), r#"["07:00", "15:00", "23:00"]"#.to_string())].into_iter(),
            &serde_json::json!({}),
        )
        .unwrap();
        assert_eq!(three.reports.shifts(), anxin_core::Shifts::parse(&["07:00", "15:00", "23:00"]).unwrap());
        for (bad, why) in [
            (serde_json::json!([]), "reports.shifts: no shift starts"),
            (serde_json::json!(["8am"]), "reports.shifts: shift start \"8am\" is not a local time"),
            (serde_json::json!(["20:00", "08:00"]), "reports.shifts: shift starts must be in order"),
        ] {
            let e = Config::load(None, &serde_json::json!({ "reports": { "shifts": bad } })).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn the_configuration_doc_gives_the_defaults_the_code_has() {
        let doc = documented_defaults();
        let defaults = serde_json::to_value(Config::defaults()).unwrap();
        // Every [health] key but the models' tables has a row.
        let health = defaults["health"].as_object().unwrap();
        let rows: Vec<&String> = doc["health"].keys().collect();
        let keys: Vec<&String> = health.keys().filter(|k| *k != "models").collect();
        assert_eq!(rows, keys, "docs/configuration.md's [health] rows");
        let mut checked = 0;
        for (section, rows) in &doc {
            if section.contains("KIND") {
                continue; // a ladder's defaults are [dispatch]'s, named
            }
            let table = section.split('.').fold(&defaults, |v, part| &v[part]);
            assert!(table.is_object(), "[{section}] is documented but not in Config");
            for (key, cell) in rows {
                let value = &table[key.as_str()];
                let unset = cell == "none" || cell.starts_with("unset");
                let Some(shown) = cell.strip_prefix('`').and_then(|c| c.strip_suffix('`')).filter(|c| !c.contains('`'))
                else {
                    assert!(!unset || value.is_null(), "[{section}] {key}: documented {cell}, the code has {value}");
                    continue;
                };
                // Left unset in the file, these two are given by the provider (`ConsoleMap::settings`).
                if value.is_null() && section == "consoles.map" && ["crs", "max_zoom"].contains(&key.as_str()) {
                    continue;
                }
                assert_eq!(shown, value.to_string(), "[{section}] {key}: documented as {cell}");
                checked += 1;
            }
        }
        assert!(checked > 40, "{checked} defaults compared");
    }

    fn map(table: serde_json::Value) -> Result<MapSettings, String> {
        let c = Config::load(None, &serde_json::json!({"consoles": {"map": table}})).map_err(|e| e.to_string())?;
        Ok(c.consoles.map.settings())
    }

    #[test]
    fn the_map_shows_a_grid_unless_a_provider_is_configured() {
        assert_eq!(Config::defaults().consoles.map.settings(), MapSettings::none(), "offline by default");

        let t = map(serde_json::json!({"provider": "tianditu", "key": "0123456789abcdef0123456789abcdef"})).unwrap();
        assert_eq!((t.crs, t.subdomains.as_str(), t.max_zoom), (MapCrs::Wgs84, "01234567", 18));
        assert_eq!(t.tiles.len(), 2, "streets, then labels");
        assert!(t.tiles[0].starts_with("https://t{s}.tianditu.gov.cn/vec_w/wmts?"), "{}", t.tiles[0]);
        assert!(t.tiles[1].contains("/cva_w/wmts?") && t.tiles[1].contains("LAYER=cva"), "{}", t.tiles[1]);
        for tile in &t.tiles {
            assert!(tile.contains("TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk=0123456789abcdef0123456789abcdef"));
            assert!(!tile.contains(' '), "{tile}");
        }
        assert!(t.attribution.contains("天地图"));

        let a = map(serde_json::json!({"provider": "amap", "max_zoom": 17})).unwrap();
        assert_eq!((a.crs, a.subdomains.as_str(), a.max_zoom), (MapCrs::Gcj02, "1234", 17));
        assert!(a.tiles[0].contains("{x}") && a.tiles[0].contains("{s}"));

        let c = map(serde_json::json!({
            "provider": "custom", "url": "http://127.0.0.1:8080/{z}/{x}/{y}.png", "crs": "gcj02",
            "attribution": "© Local tiles",
        }))
        .unwrap();
        assert_eq!(c.tiles, ["http://127.0.0.1:8080/{z}/{x}/{y}.png"]);
        assert_eq!((c.crs, c.subdomains.as_str(), c.attribution.as_str()), (MapCrs::Gcj02, "", "© Local tiles"));

        // From the environment, a key of digits alone stays text.
        let vars = [("ANXIN_CONSOLES__MAP__PROVIDER", "tianditu"), ("ANXIN_CONSOLES__MAP__KEY", "0123456789")];
        let env = env_overrides(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap();
        let c = Config::load(None, &env).unwrap();
        assert!(c.consoles.map.settings().tiles[0].ends_with("&tk=0123456789"));
        assert!(!format!("{c:?}").contains("0123456789"), "the key is kept out of logs");
    }

    #[test]
    fn a_map_misconfigured_says_what_to_change() {
        let osm = "https://{s}.tile.example.org/{z}/{x}/{y}.png";
        for (bad, says) in [
            (serde_json::json!({"provider": "tianditu"}), "consoles.map.key must be set for provider = \"tianditu\""),
            (serde_json::json!({"provider": "tianditu", "key": "ab&cd"}), "letters and digits only"),
            (
                serde_json::json!({"provider": "google"}),
                "found `google`, expected `one of `none`, `tianditu`, `amap`, `custom``",
            ),
            (
                serde_json::json!({"provider": "amap", "key": "abc"}),
                "consoles.map.key is only for provider = \"tianditu\"",
            ),
            (
                serde_json::json!({"provider": "amap", "crs": "wgs84"}),
                "consoles.map.crs is only for provider = \"custom\"",
            ),
            (serde_json::json!({"provider": "tianditu", "key": "abc", "url": osm}), "consoles.map.url is only for"),
            (serde_json::json!({"attribution": "x"}), "consoles.map.attribution is only for"),
            (serde_json::json!({"provider": "custom"}), "consoles.map.url must be set"),
            (
                serde_json::json!({"provider": "custom", "url": "ftp://t/{z}/{x}/{y}", "attribution": "x"}),
                "http(s) URL",
            ),
            (
                serde_json::json!({"provider": "custom", "url": "https://t/{z}/{x}.png", "attribution": "x"}),
                "http(s) URL",
            ),
            (serde_json::json!({"provider": "custom", "url": osm, "attribution": "x"}), "subdomains and {s}"),
            (serde_json::json!({"provider": "custom", "url": osm, "subdomains": "abc"}), "attribution must say"),
            (
                serde_json::json!({"provider": "custom", "url": osm, "subdomains": "abc", "attribution": "x", "crs": "bd09"}),
                "found `bd09`",
            ),
            (serde_json::json!({"provider": "amap", "max_zoom": 30}), "max_zoom must lie in 3..=22"),
            (serde_json::json!({"provider": "amap", "zoom": 3}), "zoom"),
        ] {
            let e = map(bad.clone()).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let old = serde_json::json!({"consoles": {"tile_url": "https://t.example/{z}/{x}/{y}.png"}});
        let e = Config::load(None, &old).unwrap_err().to_string();
        assert!(e.contains("consoles.tile_url is replaced by [consoles.map]"), "{e}");
    }

    #[test]
    fn the_inactivity_rule_reads_and_refuses_what_cannot_work() {
        let c = Config::load(None, &serde_json::json!({})).unwrap();
        assert_eq!(c.activity.policy(), anxin_core::ActivityPolicy::default(), "the defaults are the engine's");
        let late = serde_json::json!({"activity": {"day_start": "09:00", "day_end": "24:00", "quiet_hours": 6}});
        let p = Config::load(None, &late).unwrap().activity.policy();
        assert_eq!((p.day_start_h, p.day_end_h, p.quiet_hours), (9, 24, 6));
        for (bad, says) in [
            (serde_json::json!({"quiet_hours": 0}), "activity.quiet_hours must lie in 1..=72, not 0"),
            (serde_json::json!({"day_start": "7:00"}), "must be hours as \"HH:00\""),
            (serde_json::json!({"day_end": "21:30"}), "must be hours as \"HH:00\""),
            (serde_json::json!({"day_end": "25:00"}), "must be hours as \"HH:00\""),
            (
                serde_json::json!({"day_start": "22:00"}),
                "activity.day_start (22:00) must be before activity.day_end (21:00)",
            ),
            (serde_json::json!({"learn_days": 0}), "activity.learn_days must lie in 1..=28, not 0"),
            (serde_json::json!({"learn_days": 29}), "activity.learn_days must lie in 1..=28, not 29"),
            (serde_json::json!({"usual_share": 0.0}), "activity.usual_share must lie in (0, 1], not 0"),
            (serde_json::json!({"usual_share": 1.5}), "activity.usual_share must lie in (0, 1], not 1.5"),
        ] {
            let e = Config::load(None, &serde_json::json!({ "activity": bad })).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn the_programme_reads_and_refuses_what_cannot_work() {
        let c = Config::load(None, &serde_json::json!({})).unwrap();
        assert_eq!(c.programme.policy(), anxin_core::ProgrammePolicy::default(), "the defaults are the engine's");
        for (bad, says) in [
            (serde_json::json!({"max_tries": 0}), "programme.max_tries must lie in 1..=20, not 0"),
            (serde_json::json!({"retry_after_min": 0}), "programme.retry_after_min must lie in 1..=10080, not 0"),
            (serde_json::json!({"overdue_after_h": 9000}), "programme.overdue_after_h must lie in 1..=8760, not 9000"),
            (serde_json::json!({"export_days": 0}), "programme.export_days must lie in 1..=3660, not 0"),
        ] {
            let e = Config::load(None, &serde_json::json!({ "programme": bad })).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
