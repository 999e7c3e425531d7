//! The smallest district a test needs: one elder with one device, one station, and one
//! responder next door on an e-bike. Shared by the engine's tests and the runtime's, so they
//! describe the same place; nothing in the engine uses it.

use crate::engine::{Engine, Policy, Resume};
use crate::geo::Coordinates;
use crate::ids::{DeviceId, ElderId, ResponderId, StationId};
use crate::registry::{Device, Elder, Registry, Responder, Staff, StaffRole, Station, TravelMode};

/// The one responder's id, `r-1`.
pub fn r1() -> ResponderId {
    ResponderId::parse("r-1").unwrap()
}

/// The one device's id, `d-1`.
pub fn d1() -> DeviceId {
    DeviceId::parse("d-1").unwrap()
}

fn at(lat: f64, lon: f64) -> Coordinates {
    Coordinates::new(lat, lon).unwrap()
}

/// `one_of_each` with a dispatcher on shift, `dispatcher` (值班调度员), who may claim, note and
/// close incidents.
pub fn with_dispatcher() -> Registry {
    let mut registry = one_of_each();
    registry.staff.push(Staff {
        id: "dispatcher".into(),
        name: "值班调度员".into(),
        role: StaffRole::Dispatcher,
        password_hash: String::new(),
    });
    registry
}

/// The district: elder `e-1` (张阿姨) at home, device `d-1`, station `s-1` 1 km away, and
/// responder `r-1` (李师傅) on duty 110 m from the home.
pub fn one_of_each() -> Registry {
    let station = StationId::parse("s-1").unwrap();
    let elder = ElderId::parse("e-1").unwrap();
    Registry {
        elders: vec![Elder {
            id: elder.clone(),
            name: "张阿姨".into(),
            address: "西山区".into(),
            home: at(25.0, 102.68),
            phone: None,
            notes: String::new(),
            profile: Default::default(),
        }],
        devices: vec![Device { id: d1(), elder_id: elder, model: None, sim: None }],
        stations: vec![Station {
            id: station.clone(),
            name: "金碧街道服务中心".into(),
            position: at(25.0, 102.69),
            phone: None,
            service_circle_min: None,
            zone: Default::default(),
        }],
        responders: vec![Responder {
            id: r1(),
            name: "李师傅".into(),
            station_id: station,
            phone: None,
            position: at(25.001, 102.68),
            on_duty: true,
            mode: TravelMode::Ebike,
            skills: vec!["first_aid".into()],
            position_at: None,
            token_sha256: None,
            provider_id: None,
        }],
        staff: vec![],
        providers: vec![],
    }
}

/// A fresh engine over [`one_of_each`] under the default policy.
pub fn engine() -> Engine {
    Engine::new(Policy::default(), one_of_each(), Resume::default())
}
