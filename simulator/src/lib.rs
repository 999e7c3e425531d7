//! anxin-sim: a city in a box. A scenario file becomes a district (elders with devices
//! clustered around community centres, responders at the centres), a registry for anxind,
//! and a plan of presses; the run plays the plan against a real engine through its public
//! interfaces only (MQTT as devices, WebSocket as phones, consoles and family pages) and
//! reports what the people would have seen.

pub mod carers;
pub mod district;
pub mod engine;
pub mod family;
pub mod health;
pub mod plan;
pub mod plot;
pub mod report;
pub mod rounds;
pub mod scenario;
pub mod services;
pub mod sim;

use district::District;
use engine::{CareTimers, HealthTimers, Target, Timers};
use health::Lives;
use plan::Event;
use report::Summary;
use scenario::Scenario;
use sim::RunOptions;

/// A scenario made concrete: the district, its registry, the device events to play and
/// the devices' lives (heartbeats and faults).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub name: String,
    pub scenario: Scenario,
    pub district: District,
    pub events: Vec<Event>,
    pub lives: Lives,
    /// Planned presses and cancels left out because the device was flat, switched off or
    /// not worn at the time: calls that could not be made.
    pub unmade: usize,
    pub registry: serde_json::Value,
    /// The engine's offer deadline in scenario seconds, when the run sets one (anxind's 60 s
    /// otherwise); checked by [`Timers::with_offer_timeout`] before the run.
    pub offer_timeout_s: Option<f64>,
}

impl Prepared {
    pub fn new(name: &str, scenario: Scenario) -> Self {
        let district = District::generate(&scenario);
        let lives = health::plan(&scenario, &district);
        let mut events = plan::plan(&scenario, &district);
        let planned = events.len();
        events.retain(|e| !lives.devices[e.device].cannot_call(e.at_s));
        let unmade = planned - events.len();
        let mut registry = district.registry_json(&scenario);
        // The devices outside the watched sample are a model of their own, so that the engine
        // expects their first heartbeat as seldom as the later ones.
        if let Some(devices) = registry["devices"].as_array_mut() {
            for (entry, life) in devices.iter_mut().zip(&lives.devices) {
                if !life.watched {
                    entry["model"] = serde_json::json!(health::QUIET_MODEL);
                }
            }
        }
        Self { name: name.to_string(), scenario, district, events, lives, unmade, registry, offer_timeout_s: None }
    }

    /// The engine's timers for this scenario's speed-up.
    pub fn timers(&self) -> Timers {
        let speedup = self.scenario.run.speedup;
        let timers = Timers::compressed(speedup);
        match self.offer_timeout_s {
            Some(s) => timers.with_offer_timeout(s, speedup).unwrap_or(timers),
            None => timers,
        }
    }

    /// The engine's device-health timers for this scenario's heartbeats and speed-up.
    pub fn health_timers(&self) -> HealthTimers {
        self.lives.timers
    }

    /// The engine's programme and carers' timers for this scenario's speed-up.
    pub fn care_timers(&self) -> CareTimers {
        CareTimers::compressed(&self.scenario)
    }

    /// Plays the scenario against a running engine and sums it up.
    /// `label` names the engine's matching policy in the report.
    pub async fn play(&self, target: &Target, opts: &RunOptions, label: &str) -> anyhow::Result<Summary> {
        let care = self.care_timers();
        let played = sim::play(target, &self.scenario, &self.district, &self.events, &self.lives, opts).await?;
        let timers = self.timers().describe(self.scenario.run.speedup);
        let mut summary = Summary::new(&played, &self.district, &self.lives, self.unmade, &self.name, label, timers);
        summary.programme =
            self.scenario.programme.as_ref().map(|p| report::ProgrammeSummary::new(&played, &self.district, p, &care));
        summary.carers = self.scenario.carers.as_ref().map(|c| report::CarersSummary::new(&played, c, &care));
        summary.services =
            self.scenario.services.as_ref().map(|sv| {
                services::ServicesSummary::new(&played.ledger.orders, &self.district, sv, played.clock.speedup)
            });
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_or_unworn_device_makes_no_press_and_quiet_devices_are_their_own_model() {
        let s = Scenario::parse(include_str!("../scenarios/smoke.toml"), "smoke").unwrap();
        let p = Prepared::new("smoke", s.clone());
        assert!(p.unmade > 0, "the smoke run's faults cost some presses");
        assert!(p.events.iter().all(|e| !p.lives.devices[e.device].cannot_call(e.at_s)));
        assert_eq!(p.events.len() + p.unmade, plan::plan(&s, &p.district).len());
        let x = Scenario::parse(include_str!("../scenarios/xishan.toml"), "x").unwrap();
        let p = Prepared::new("x", x);
        let devices = p.registry["devices"].as_array().unwrap();
        let quiet = devices.iter().filter(|d| d["model"] == health::QUIET_MODEL).count();
        assert_eq!(quiet, p.lives.devices.len() - p.lives.watched());
        assert!(quiet > 0 && p.lives.watched() > 0);
    }
}
