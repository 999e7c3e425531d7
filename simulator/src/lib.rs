//! anxin-sim: a city in a box. A scenario file becomes a district (elders with devices
//! clustered around community centres, responders at the centres), a registry for anxind,
//! and a plan of presses; the run plays the plan against a real engine through its public
//! interfaces only (MQTT as devices, WebSocket as phones, consoles and family pages) and
//! reports what the people would have seen.

pub mod district;
pub mod engine;
pub mod family;
pub mod plan;
pub mod plot;
pub mod report;
pub mod scenario;
pub mod sim;

use district::District;
use engine::{Target, Timers};
use plan::Event;
use report::Summary;
use scenario::Scenario;
use sim::RunOptions;

/// A scenario made concrete: the district, its registry and the device events to play.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub name: String,
    pub scenario: Scenario,
    pub district: District,
    pub events: Vec<Event>,
    pub registry: serde_json::Value,
}

impl Prepared {
    pub fn new(name: &str, scenario: Scenario) -> Self {
        let district = District::generate(&scenario);
        let events = plan::plan(&scenario, &district);
        let registry = district.registry_json(&scenario);
        Self { name: name.to_string(), scenario, district, events, registry }
    }

    /// The engine's timers for this scenario's speed-up.
    pub fn timers(&self) -> Timers {
        Timers::compressed(self.scenario.run.speedup)
    }

    /// Plays the scenario against a running engine and sums it up.
    /// `label` names the engine's matching policy in the report.
    pub async fn play(&self, target: &Target, opts: &RunOptions, label: &str) -> anyhow::Result<Summary> {
        let played = sim::play(target, &self.scenario, &self.district, &self.events, opts).await?;
        let timers = self.timers().describe(self.scenario.run.speedup);
        Ok(Summary::new(&played, &self.district, &self.name, label, timers))
    }
}
