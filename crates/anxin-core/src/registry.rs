//! The ledger the engine dispatches against: elders, their devices, stations, responders.

use crate::geo::Coordinates;
use crate::ids::{DeviceId, ElderId, ResponderId, StationId};
use serde::{Deserialize, Serialize};

/// An elder in the ledger, with what a dispatcher needs to know before calling back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Elder {
    pub id: ElderId,
    pub name: String,
    pub address: String,
    /// Registered home position: where we go when a press carries no usable fix.
    pub home: Coordinates,
    pub phone: Option<String>,
    /// Free text for the dispatcher: conditions, door code, lives alone.
    pub notes: String,
}

/// A device and the elder who wears or keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub elder_id: ElderId,
}

/// A community care station: where responders are based and where a duty line answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Station {
    pub id: StationId,
    pub name: String,
    pub position: Coordinates,
    pub phone: Option<String>,
}

/// A responder and their last known position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Responder {
    pub id: ResponderId,
    pub name: String,
    pub station_id: StationId,
    pub phone: Option<String>,
    pub position: Coordinates,
    pub on_duty: bool,
}

/// Everything the engine loads at start.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    pub elders: Vec<Elder>,
    pub devices: Vec<Device>,
    pub stations: Vec<Station>,
    pub responders: Vec<Responder>,
}
