//! Layered configuration: built-in defaults, an optional TOML file, `ANXIN_` environment
//! variables, then command-line flags.

use figment::providers::{Format, Serialized, Toml};
use figment::value::Value;
use figment::Figment;
use serde::{Deserialize, Serialize};
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
    pub topic_root: String,
    pub client_id: String,
    pub keep_alive_s: u64,
    pub max_payload_bytes: usize,
    pub username: Option<String>,
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub url: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dispatch {
    pub max_offer_distance_m: f64,
    pub max_fix_accuracy_m: f64,
    pub max_fix_distance_from_home_m: f64,
    pub offer_timeout_s: u64,
    pub max_responder_offers: u32,
    pub station_timeout_s: u64,
    pub reminder_interval_s: u64,
    pub on_scene_within_min: u64,
    pub max_fix_age_min: u64,
    pub medical_number: String,
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
        figment = figment
            .merge(Named("ANXIN_ environment variables", env_overrides(std::env::vars())?))
            .merge(Named("command-line flags", overrides.clone()));
        let config: Config = figment.extract().map_err(|e| ConfigError::Invalid(Box::new(e)))?;
        config.check()?;
        Ok(config)
    }

    /// The defaults alone, for tests.
    pub fn defaults() -> Self {
        Figment::from(Toml::string(DEFAULTS)).extract().expect("built-in defaults are valid")
    }

    fn check(&self) -> Result<(), ConfigError> {
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
        let d = &self.dispatch;
        for (v, name) in [
            (d.offer_timeout_s, "dispatch.offer_timeout_s"),
            (d.station_timeout_s, "dispatch.station_timeout_s"),
            (d.reminder_interval_s, "dispatch.reminder_interval_s"),
            (d.on_scene_within_min, "dispatch.on_scene_within_min"),
            (d.max_fix_age_min, "dispatch.max_fix_age_min"),
            (u64::from(d.max_responder_offers), "dispatch.max_responder_offers"),
        ] {
            if v == 0 || v > 86_400 {
                return Err(ConfigError::Check(format!("{name} must lie in 1..=86400")));
            }
        }
        if d.medical_number.trim().is_empty() {
            return Err(ConfigError::Check("dispatch.medical_number must not be empty".into()));
        }
        if self.ingest.queue == 0 || self.ingest.batch_max == 0 || self.consoles.replay == 0 {
            return Err(ConfigError::Check(
                "ingest.queue, ingest.batch_max and consoles.replay must be at least 1".into(),
            ));
        }
        if self.mqtt.max_payload_bytes < 256 {
            return Err(ConfigError::Check("mqtt.max_payload_bytes must be at least 256".into()));
        }
        anxin_mqtt::Topics::new(&self.mqtt.topic_root)
            .map_err(|e| ConfigError::Check(format!("mqtt.topic_root: {e}")))?;
        if self.mqtt.broker != "embedded" {
            broker_address(&self.mqtt.broker)?;
        }
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
    "store.url",
    "dispatch.medical_number",
];

/// `ANXIN_SECTION__KEY=value` variables as overrides. Variables without a section (such as
/// `ANXIN_LOG`) are not configuration keys and are left alone.
fn env_overrides(vars: impl Iterator<Item = (String, String)>) -> Result<serde_json::Value, ConfigError> {
    let mut out = serde_json::Map::new();
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix("ANXIN_") else { continue };
        let Some((section, key)) = rest.split_once("__") else { continue };
        let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
        let path = format!("{section}.{key}");
        let value = if TEXT_KEYS.contains(&path.as_str()) {
            serde_json::Value::String(raw)
        } else {
            let parsed: Value = raw.parse().expect("parsing a figment value is infallible");
            serde_json::to_value(parsed).map_err(|e| ConfigError::Check(format!("{name}: {e}")))?
        };
        let entry = out.entry(section).or_insert_with(|| serde_json::Value::Object(Default::default()));
        match entry {
            serde_json::Value::Object(map) => {
                map.insert(key, value);
            }
            _ => return Err(ConfigError::Check(format!("{name}: {path} is not a section key"))),
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
        let missing = Config::load(Some(Path::new("/nonexistent/anxin.toml")), &serde_json::json!({}));
        assert!(missing.unwrap_err().to_string().contains("does not exist"));
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
}
