//! The district a scenario describes, made concrete from its seed: community centres around
//! the neighbourhoods, elders with devices clustered around the centres, responders at the
//! centres; and the registry file anxind reads (`--registry`).

use crate::scenario::Scenario;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// A WGS-84 position in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
}

impl Point {
    /// The point `north_m` metres north and `east_m` metres east of this one.
    pub fn offset(self, north_m: f64, east_m: f64) -> Point {
        let lat = self.lat + north_m / 111_320.0;
        let lon = self.lon + east_m / (111_320.0 * self.lat.to_radians().cos());
        Point { lat, lon }
    }

    /// Great-circle distance in metres.
    pub fn distance_m(self, other: Point) -> f64 {
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let (dp, dl) = (p2 - p1, (other.lon - self.lon).to_radians());
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * 6_371_008.8 * a.sqrt().asin()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Foot,
    Ebike,
    Car,
}

impl Mode {
    /// The speeds the engine ranks by (docs/asyncapi.yaml, `eta_min`), metres per second.
    pub fn speed_m_s(self) -> f64 {
        match self {
            Mode::Foot => 1.2,
            Mode::Ebike => 4.0,
            Mode::Car => 6.0,
        }
    }
}

/// A community home-care centre: a station in the engine's registry.
#[derive(Debug, Clone)]
pub struct Centre {
    pub id: String,
    pub name: String,
    pub position: Point,
    pub neighbourhood: usize,
}

/// An elder with a device.
#[derive(Debug, Clone)]
pub struct Elder {
    pub id: String,
    pub device_id: String,
    pub home: Point,
    /// Index into [`District::centres`]: the centre whose neighbourhood the home was drawn around.
    pub centre: usize,
    /// The centre nearest the home: the elder's own station, as anxind's `own_station`
    /// matching takes it.
    pub own_centre: usize,
    pub age_band: u8,
    pub alone: bool,
    /// Whom the engine tells of the elder's emergencies, in order (`profile.contacts`).
    pub contacts: Vec<crate::family::Contact>,
    /// On the welfare programme: a call every so many days, and a visit every so many.
    pub schedule: Option<Schedule>,
    /// The level of need the district's allowance is paid by (1 = most; `profile.need_level`).
    pub need_level: Option<u8>,
}

/// An elder's welfare programme, and where in the run the engine will put their first call
/// and visit (wall-clock milliseconds after it started; anxin-core's own rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub call_every_days: u16,
    pub visit_every_days: Option<u16>,
    pub first_call_ms: i64,
    pub first_visit_ms: Option<i64>,
}

impl Schedule {
    pub fn new(elder_id: &str, call_every_days: u16, visit_every_days: Option<u16>) -> Self {
        use anxin_core::{ElderId, ElderProgramme, Timestamp};
        let id = ElderId::parse(elder_id).expect("the district's ids are valid");
        let fresh = ElderProgramme::default();
        let first = |t: Option<Timestamp>| t.map(Timestamp::millis);
        Schedule {
            call_every_days,
            visit_every_days,
            first_call_ms: first(fresh.call_due(&id, Some(call_every_days), Timestamp(0))).expect("a call schedule"),
            first_visit_ms: first(fresh.visit_due(&id, visit_every_days, Timestamp(0))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Responder {
    pub id: String,
    pub centre: usize,
    pub mode: Mode,
    pub first_aid: bool,
    /// What the responder types on their phone; the registry keeps only its SHA-256.
    pub token: String,
    /// A carer (the skill `carer`) who visits elders; off duty for emergencies.
    pub carer: bool,
    /// A service worker: index into [`District::providers`] (the ledger's `provider_id`).
    pub provider: Option<usize>,
}

impl Responder {
    /// On duty for emergencies: neither a carer nor a service worker.
    pub fn emergency_duty(&self) -> bool {
        !self.carer && self.provider.is_none()
    }
}

/// A contracted home-care provider.
#[derive(Debug, Clone)]
pub struct Provider {
    pub id: String,
    pub name: String,
    /// (category, price in fen, daily capacity).
    pub offers: Vec<(String, u32, u32)>,
    /// The centres whose circles it serves (indices into [`District::centres`]).
    pub centres: Vec<usize>,
}

/// The district, ready to be written as a registry and played.
#[derive(Debug, Clone)]
pub struct District {
    pub centres: Vec<Centre>,
    pub elders: Vec<Elder>,
    pub responders: Vec<Responder>,
    pub providers: Vec<Provider>,
}

/// A normally distributed number (Box–Muller), mean 0 and standard deviation 1.
pub fn gaussian(rng: &mut SmallRng) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Index drawn with probability proportional to `weights[i]`.
pub fn weighted(rng: &mut SmallRng, cumulative: &[f64]) -> usize {
    let x = rng.random::<f64>() * cumulative.last().copied().unwrap_or(0.0);
    cumulative.partition_point(|c| *c <= x).min(cumulative.len() - 1)
}

/// Running totals of `weights`, for [`weighted`].
pub fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    weights
        .scan(0.0, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect()
}

impl District {
    /// Builds the district from the scenario's seed; the same scenario gives the same district.
    pub fn generate(s: &Scenario) -> Self {
        let mut rng = SmallRng::seed_from_u64(s.run.seed);
        let prefix = &s.district.id_prefix;
        let mut centres = Vec::new();
        let mut centre_weights = Vec::new();
        for (n, hood) in s.neighbourhoods.iter().enumerate() {
            let base = Point { lat: hood.lat, lon: hood.lon };
            for k in 0..hood.centres {
                let position = base.offset(gaussian(&mut rng) * hood.spread_m, gaussian(&mut rng) * hood.spread_m);
                let short = hood.name.split_whitespace().next().unwrap_or(&hood.name);
                centres.push(Centre {
                    id: format!("{prefix}-c{:02}", centres.len() + 1),
                    name: format!("{short}社区居家养老服务中心 {}", k + 1),
                    position,
                    neighbourhood: n,
                });
                centre_weights.push(hood.weight / f64::from(hood.centres));
            }
        }
        let by_centre = cumulative(centre_weights.into_iter());
        let devices = s.device_count();
        let (a70, a80, alone_share) =
            (s.devices.share_aged_70_plus, s.devices.share_aged_80_plus, s.devices.share_living_alone);
        let mut elders = Vec::with_capacity(devices as usize);
        // Families come from a stream of their own, so adding them changed no home or press.
        let mut family_rng = SmallRng::seed_from_u64(s.run.seed ^ 0xfa31_1e55);
        for i in 0..devices {
            let centre = weighted(&mut rng, &by_centre);
            let spread = s.devices.cluster_spread_m;
            let home = centres[centre].position.offset(gaussian(&mut rng) * spread, gaussian(&mut rng) * spread);
            // Draw age band and living situation until the elder is one who gets a device.
            let (age_band, alone) = loop {
                let u: f64 = rng.random();
                let band = if u < a80 {
                    80
                } else if u < a70 {
                    70
                } else {
                    60
                };
                let alone = rng.random::<f64>() < alone_share;
                if s.is_eligible(band, alone) {
                    break (band, alone);
                }
            };
            let own_centre = (0..centres.len())
                .min_by(|&a, &b| home.distance_m(centres[a].position).total_cmp(&home.distance_m(centres[b].position)))
                .unwrap_or(centre);
            elders.push(Elder {
                own_centre,
                id: format!("{prefix}-e{:06}", i + 1),
                device_id: format!("{prefix}-d{:06}", i + 1),
                home,
                centre,
                age_band,
                alone,
                contacts: crate::family::contacts(&s.families, &mut family_rng, i + 1),
                schedule: None,
                need_level: None,
            });
        }
        if let Some(p) = &s.programme {
            enrol(&mut elders, p, s.run.speedup, s.run.seed);
        }
        let modes = cumulative([s.responders.modes.foot, s.responders.modes.ebike, s.responders.modes.car].into_iter());
        let mut responders = Vec::new();
        for (c, _) in centres.iter().enumerate() {
            for _ in 0..s.responders.per_centre {
                let id = format!("{prefix}-r{:04}", responders.len() + 1);
                responders.push(Responder {
                    token: format!("sim-{id}-{:08x}", rng.random::<u32>()),
                    id,
                    centre: c,
                    mode: [Mode::Foot, Mode::Ebike, Mode::Car][weighted(&mut rng, &modes)],
                    first_aid: rng.random::<f64>() < s.responders.first_aid_share,
                    carer: false,
                    provider: None,
                });
            }
        }
        // Carers come after, from a stream of their own, so that adding them changed nobody else.
        let mut carer_rng = SmallRng::seed_from_u64(s.run.seed ^ 0xca7e_5000);
        for (c, _) in centres.iter().enumerate() {
            for _ in 0..s.carers.as_ref().map_or(0, |k| k.per_centre) {
                let id = format!("{prefix}-k{:04}", responders.len() + 1);
                responders.push(Responder {
                    token: format!("sim-{id}-{:08x}", carer_rng.random::<u32>()),
                    id,
                    centre: c,
                    mode: Mode::Foot,
                    first_aid: false,
                    carer: true,
                    provider: None,
                });
            }
        }
        let mut district = District { centres, elders, responders, providers: Vec::new() };
        if let Some(sv) = &s.services {
            district.add_services(sv, prefix, s.run.seed);
        }
        district
    }

    /// Providers, their workers and the elders' levels of need, from a stream of their own,
    /// so that adding services changed nobody and nothing else (the same seed plays the same
    /// presses with and without them).
    fn add_services(&mut self, sv: &crate::scenario::Services, prefix: &str, seed: u64) {
        let mut rng = SmallRng::seed_from_u64(seed ^ 0x5e41_1ce5);
        for e in &mut self.elders {
            let shares = sv.need_levels.of(e.age_band);
            let u: f64 = rng.random();
            let mut acc = 0.0;
            e.need_level = shares.iter().enumerate().find_map(|(i, p)| {
                acc += p;
                (u < acc).then_some(i as u8 + 1)
            });
        }
        let n = sv.providers as usize;
        let names = ["颐康", "安心家政", "福寿", "邻里帮", "乐龄", "康乐", "孝亲", "春晖", "金色晚年", "暖阳"];
        for k in 0..n {
            // Each centre is some provider's first in turn; a provider serves the nearest
            // `centres_each` centres to its first.
            let first = (k * self.centres.len() / n).min(self.centres.len() - 1);
            let at = self.centres[first].position;
            let mut by_distance: Vec<usize> = (0..self.centres.len()).collect();
            by_distance.sort_by(|&a, &b| {
                at.distance_m(self.centres[a].position).total_cmp(&at.distance_m(self.centres[b].position))
            });
            by_distance.truncate(sv.centres_each as usize);
            let mut offers = Vec::new();
            for (c, cat) in sv.categories.iter().enumerate() {
                // Every category has at least one provider: provider c mod n always offers it.
                if c % n == k || rng.random::<f64>() < cat.offered_by {
                    let price = crate::plan::uniform(&mut rng, cat.price_yuan);
                    let capacity = crate::plan::uniform(&mut rng, cat.daily_capacity).round().max(1.0);
                    offers.push((cat.id.clone(), (price * 100.0).round() as u32, capacity as u32));
                }
            }
            self.providers.push(Provider {
                id: format!("{prefix}-p{:02}", k + 1),
                name: format!("{}居家养老服务 {}", names[k % names.len()], k + 1),
                offers,
                centres: by_distance,
            });
            for _ in 0..sv.workers_each {
                let id = format!("{prefix}-w{:04}", self.responders.len() + 1);
                self.responders.push(Responder {
                    token: format!("sim-{id}-{:08x}", rng.random::<u32>()),
                    id,
                    centre: first,
                    mode: Mode::Ebike,
                    first_aid: false,
                    carer: false,
                    provider: Some(k),
                });
            }
        }
    }

    /// The registry file anxind reads with `--registry` (see docs/configuration.md).
    pub fn registry_json(&self, s: &Scenario) -> serde_json::Value {
        use serde_json::json;
        let hoods = &s.neighbourhoods;
        let elders: Vec<_> = self
            .elders
            .iter()
            .map(|e| {
                let hood = hoods[self.centres[e.centre].neighbourhood].name.split_whitespace().next().unwrap_or("");
                let age = match e.age_band {
                    80 => "80 岁以上",
                    70 => "70 多岁",
                    _ => "60 多岁",
                };
                json!({
                    "id": e.id,
                    "name": format!("长者 {}", &e.device_id[e.device_id.len() - 6..]),
                    "address": format!("{} {}街道", s.district.name.split_whitespace().last().unwrap_or(""), hood),
                    "home": e.home,
                    "phone": null,
                    "notes": if e.alone { format!("{age}，独居") } else { age.to_string() },
                    "profile": {
                        "contacts": e.contacts.iter().map(|c| json!({
                            "id": c.id, "name": c.name, "relation": c.relation, "phone": c.phone, "channel": c.channel,
                        })).collect::<Vec<_>>(),
                        "schedule": e.schedule.map_or(json!({}), |p| json!({
                            "call_every_days": p.call_every_days, "visit_every_days": p.visit_every_days,
                        })),
                        "need_level": e.need_level,
                    },
                })
            })
            .collect();
        let devices: Vec<_> = self.elders.iter().map(|e| json!({"id": e.device_id, "elder_id": e.id})).collect();
        let stations: Vec<_> = self
            .centres
            .iter()
            .enumerate()
            .map(|(i, c)| {
                json!({
                    "id": c.id,
                    "name": c.name,
                    "position": c.position,
                    "phone": format!("0871-6800{:04}", i + 1),
                    "service_circle_min": 15,
                })
            })
            .collect();
        let responders: Vec<_> = self
            .responders
            .iter()
            .map(|r| {
                let mut entry = json!({
                    "id": r.id,
                    "name": format!("护理员 {}", &r.id[r.id.len() - 4..]),
                    "station_id": self.centres[r.centre].id,
                    "phone": null,
                    "position": self.centres[r.centre].position,
                    "on_duty": !r.carer,
                    "mode": r.mode,
                    "skills": if r.carer { vec!["carer"] } else if r.first_aid { vec!["first_aid"] } else { vec![] },
                    "token_sha256": token_sha256(&r.token),
                });
                if let Some(p) = r.provider {
                    entry["provider_id"] = json!(self.providers[p].id);
                    entry["name"] = json!(format!("服务员 {}", &r.id[r.id.len() - 4..]));
                }
                entry
            })
            .collect();
        let mut registry =
            json!({"elders": elders, "devices": devices, "stations": stations, "responders": responders});
        if !self.providers.is_empty() {
            // All day: the engine reads hours on its wall clock, which the speed-up does not
            // reach; the dispatchers keep to the scenario's hours instead.
            registry["providers"] = self
                .providers
                .iter()
                .map(|p| {
                    json!({
                        "id": p.id,
                        "name": p.name,
                        "phone": null,
                        "offers": p.offers.iter().map(|(c, price, cap)| json!({
                            "category": c, "price_fen": price, "daily_capacity": cap,
                        })).collect::<Vec<_>>(),
                        "area": {"type": "Stations", "stations": p.centres.iter().map(|c| &self.centres[*c].id).collect::<Vec<_>>()},
                        "hours": {"from_min": 0, "to_min": 0},
                    })
                })
                .collect();
        }
        registry
    }
}

/// Puts a share of the elders living alone on the programme; `due_in_run` of them get an id
/// (their own with a suffix) whose first call, or every other one first visit, anxin-core
/// puts within `due_within_min` of the engine's start.
fn enrol(elders: &mut [Elder], p: &crate::scenario::Programme, speedup: f64, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x9e0_9a11e);
    let window_ms = (p.due_within_min * 60.0 / speedup * 1000.0) as i64;
    let mut placed = 0u32;
    for e in elders.iter_mut().filter(|e| e.alone) {
        if rng.random::<f64>() >= p.share {
            continue;
        }
        if placed < p.due_in_run {
            let visit = placed % 2 == 1 && p.visit_every_days.is_some();
            placed += 1;
            let base = e.id.clone();
            for n in 1u32.. {
                let id = format!("{base}-p{n}");
                let s = Schedule::new(&id, p.call_every_days, p.visit_every_days);
                let first = if visit { s.first_visit_ms.expect("visits") } else { s.first_call_ms };
                if first < window_ms {
                    e.id = id;
                    break;
                }
            }
        }
        e.schedule = Some(Schedule::new(&e.id, p.call_every_days, p.visit_every_days));
    }
}

/// Lowercase hex SHA-256 of a sign-in token, as the registry keeps it.
pub fn token_sha256(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn smoke() -> Scenario {
        Scenario::parse(include_str!("../scenarios/smoke.toml"), "smoke").unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_district() {
        let s = smoke();
        let (a, b) = (District::generate(&s), District::generate(&s));
        assert_eq!(a.registry_json(&s), b.registry_json(&s));
        assert_eq!(a.centres.len(), 3);
        assert_eq!(a.responders.iter().filter(|r| r.emergency_duty()).count(), 18);
        assert_eq!(a.responders.iter().filter(|r| r.carer).count(), 6, "two carers a centre");
        assert_eq!(a.responders.iter().filter(|r| r.provider.is_some()).count(), 9, "three workers a provider");
        // The programme: the elders living alone, some with an id whose first task falls in
        // the run (anxin-core's own rule says where).
        let on: Vec<_> = a.elders.iter().filter_map(|e| e.schedule.map(|p| (e, p))).collect();
        assert!(on.iter().all(|(e, _)| e.alone) && on.len() == a.elders.iter().filter(|e| e.alone).count());
        let window = 10 * 60 * 1000 / 60;
        let early = on.iter().filter(|(_, p)| p.first_call_ms < window || p.first_visit_ms.unwrap() < window).count();
        assert!(early >= 8, "{early} elders due in the first ten scenario minutes");
        assert_eq!(a.elders.len() as u32, s.device_count());
    }

    #[test]
    fn elders_cluster_around_their_centre() {
        let s = smoke();
        let d = District::generate(&s);
        let near = d.elders.iter().filter(|e| e.home.distance_m(d.centres[e.centre].position) < 2_000.0).count();
        assert!(near as f64 > 0.95 * d.elders.len() as f64, "{near} of {} within 2 km", d.elders.len());
        assert!(d.elders.iter().all(|e| s.is_eligible(e.age_band, e.alone)));
    }

    #[test]
    fn tokens_hash_like_anxind() {
        // `anxind hash-token abc`
        assert_eq!(token_sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn distances_are_great_circle() {
        let a = Point { lat: 25.0, lon: 102.7 };
        let b = a.offset(1000.0, 0.0);
        assert!((a.distance_m(b) - 1000.0).abs() < 2.0);
    }
}
