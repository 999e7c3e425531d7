//! The demo: a district around Kunming's Xishan (西山区) and a few simulated devices that
//! press now and then, so a newcomer sees incidents arrive on the console.
//!
//! Street (街道) centres are approximate; the people are invented, deterministically from a
//! seed, and cluster around the centres as elders do around neighbourhoods.

use anxin_core::{
    Contact, Coordinates, Device, DeviceId, Elder, ElderId, ElderProfile, ProviderId, Registry, Responder, ResponderId,
    Staff, StaffRole, Station, StationId, TravelMode,
};
use anxin_mqtt::rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Street centres of Xishan district: (name, latitude, longitude), approximate.
const STREETS: [(&str, f64, f64); 8] = [
    ("金碧", 25.0335, 102.7005),
    ("永昌", 25.0225, 102.6900),
    ("前卫", 25.0050, 102.6905),
    ("福海", 24.9900, 102.6700),
    ("棕树营", 25.0480, 102.6800),
    ("西苑", 25.0400, 102.6650),
    ("马街", 25.0300, 102.6400),
    ("碧鸡", 24.9600, 102.6300),
];

const SURNAMES: [&str; 16] =
    ["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭"];
const GIVEN: [&str; 16] = [
    "秀英", "桂英", "玉兰", "建国", "志强", "淑珍", "凤英", "国华", "德明", "兰芳", "文华", "丽华", "永福", "金花",
    "明亮", "素芬",
];
const NOTES: [&str; 8] = [
    "独居",
    "高血压",
    "糖尿病",
    "行动不便，使用助行器",
    "轻度认知障碍",
    "心脏病史",
    "听力较弱，请大声说话",
    "钥匙在邻居 3 楼",
];

pub const ELDERS_PER_STREET: usize = 40;
pub const RESPONDERS_PER_STREET: usize = 5;

/// How many demo elders' first contacts get a family-page link at start.
pub const FAMILY_LINKS: usize = 3;

/// A family link the demo issued: whose, and the token for `/family#t=`.
#[derive(Debug, Clone)]
pub struct FamilyLink {
    pub elder_name: String,
    pub device_id: String,
    pub contact: String,
    pub token: String,
}

/// Issues family-page links for the first contacts of the first [`FAMILY_LINKS`] demo
/// elders (as `demo`; a restart issues new ones, which revokes the old), so a newcomer can
/// open the family page and press that elder's device.
pub async fn issue_family_links(
    families: &crate::family::StoreFamilies,
    registry: &Registry,
    now: anxin_core::Timestamp,
) -> Vec<FamilyLink> {
    let mut links = Vec::new();
    for elder in registry.elders.iter().filter(|e| !e.profile.contacts.is_empty()).take(FAMILY_LINKS) {
        let first = elder.profile.contact_ids().next().expect("has contacts");
        let contact = &elder.profile.contacts[0];
        let Some(device) = registry.devices.iter().find(|d| d.elder_id == elder.id) else { continue };
        match families.issue_token(&elder.id, &first, "demo", now).await {
            Ok(token) => links.push(FamilyLink {
                elder_name: elder.name.clone(),
                device_id: device.id.to_string(),
                contact: format!("{} ({})", contact.name, contact.relation),
                token,
            }),
            Err(e) => tracing::warn!(elder = %elder.id, ?e, "cannot issue the demo's family link"),
        }
    }
    links
}

/// Device ids of the demo district: `xs-d0001` onwards, one per elder.
pub fn device_id(n: usize) -> DeviceId {
    DeviceId::parse(format!("xs-d{n:04}")).expect("valid id")
}

/// A point about `sigma_m` metres (roughly normal) around `(lat, lon)`.
fn around(rng: &mut SmallRng, lat: f64, lon: f64, sigma_m: f64) -> Coordinates {
    // The sum of three uniforms is close enough to a normal for placing people.
    let mut normal = || (rng.random::<f64>() + rng.random::<f64>() + rng.random::<f64>() - 1.5) * 2.0;
    let dlat = normal() * sigma_m / 111_320.0;
    let dlon = normal() * sigma_m / (111_320.0 * lat.to_radians().cos());
    Coordinates::new(lat + dlat, lon + dlon).expect("near Kunming")
}

/// The demo district, the same for the same seed.
pub fn district(seed: u64) -> Registry {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut r = Registry::default();
    let mut elder_no = 0;
    for (s, (street, lat, lon)) in STREETS.iter().enumerate() {
        let station = StationId::parse(format!("xs-s{:02}", s + 1)).expect("valid id");
        r.stations.push(Station {
            id: station.clone(),
            name: format!("{street}街道社区居家养老服务中心"),
            position: Coordinates::new(*lat, *lon).expect("valid"),
            phone: Some(format!("0871-6800{:04}", s + 1)),
            service_circle_min: None,
            zone: Default::default(),
        });
        for k in 0..RESPONDERS_PER_STREET {
            let id = ResponderId::parse(format!("xs-r{:02}{}", s + 1, k + 1)).expect("valid id");
            r.responders.push(Responder {
                // A demo responder signs in on /responder with the token `demo-<id>`.
                position_at: None,
                token_sha256: Some(anxin_api::token_sha256(&format!("demo-{id}"))),
                provider_id: None,
                id,
                name: format!(
                    "{}{}",
                    SURNAMES[rng.random_range(0..SURNAMES.len())],
                    ["伟", "敏", "静", "磊", "洋", "艳"][k % 6]
                ),
                station_id: station.clone(),
                phone: Some(format!("1390000{:04}", s * 10 + k + 1)),
                position: around(&mut rng, *lat, *lon, 700.0),
                on_duty: true,
                // Two in five go on foot; the rest ride e-bikes. Most carers have first aid.
                mode: if k % 5 < 2 { TravelMode::Foot } else { TravelMode::Ebike },
                // The fifth of each station (xs-r015, xs-r025, ...) is also a home carer, who
                // checks in and out of visits on the phone page.
                skills: match k {
                    3 => vec![],
                    4 => vec!["first_aid".to_string(), anxin_core::carer::CARER_SKILL.to_string()],
                    _ => vec!["first_aid".to_string()],
                },
            });
        }
        for _ in 0..ELDERS_PER_STREET {
            elder_no += 1;
            let home = around(&mut rng, *lat, *lon, 900.0);
            let elder = ElderId::parse(format!("xs-e{elder_no:04}")).expect("valid id");
            let mut notes: Vec<&str> = Vec::new();
            for note in NOTES {
                if rng.random_bool(0.2) {
                    notes.push(note);
                }
            }
            r.elders.push(Elder {
                id: elder.clone(),
                name: format!(
                    "{}{}",
                    SURNAMES[rng.random_range(0..SURNAMES.len())],
                    GIVEN[rng.random_range(0..GIVEN.len())]
                ),
                address: format!(
                    "昆明市西山区{street}街道 {} 号 {} 单元 {} 室",
                    rng.random_range(1..200),
                    rng.random_range(1..6),
                    rng.random_range(101..702)
                ),
                home,
                phone: Some(format!("1380000{:04}", elder_no)),
                profile: profile(seed, elder_no, &notes),
                notes: notes.join("；"),
            });
            // Each device can dial, from a number no person in the district has, so a call
            // from it is the device's.
            let sim = Some(format!("1350000{elder_no:04}"));
            r.devices.push(Device { id: device_id(elder_no), elder_id: elder, model: None, sim });
        }
    }
    demo_providers(&mut r);
    r.staff = demo_staff();
    r
}

/// The demo's home-care providers, each serving some streets' stations with a worker who
/// signs in on /responder with the token `demo-<id>` (xs-w1, xs-w2, xs-w3).
fn demo_providers(r: &mut Registry) {
    use anxin_core::service::{Hours, ProviderOffer};
    let offer = |category: &str, yuan: u32, daily_capacity| ProviderOffer {
        category: category.into(),
        price_fen: yuan * 100,
        daily_capacity,
    };
    let providers = [
        (
            "xs-p1",
            "好邻居家政",
            vec![offer("cleaning", 60, 6), offer("bathing", 80, 3), offer("housekeeping", 50, 6)],
            0..4,
            "08:00-20:00",
        ),
        ("xs-p2", "暖心长者食堂", vec![offer("meals", 15, 40), offer("meal_delivery", 20, 30)], 0..8, "07:00-19:00"),
        (
            "xs-p3",
            "安居维修",
            vec![offer("repair", 80, 5), offer("drain_clearing", 60, 5), offer("cleaning", 70, 4)],
            4..8,
            "00:00-24:00",
        ),
    ];
    for (n, (id, name, offers, streets, hours)) in providers.into_iter().enumerate() {
        let provider = ProviderId::parse(id).expect("valid id");
        let stations: Vec<StationId> = r.stations[streets].iter().map(|s| s.id.clone()).collect();
        let base = r.stations.iter().find(|s| s.id == stations[0]).expect("a station").clone();
        let worker = ResponderId::parse(format!("xs-w{}", n + 1)).expect("valid id");
        r.responders.push(Responder {
            token_sha256: Some(anxin_api::token_sha256(&format!("demo-{worker}"))),
            id: worker,
            name: ["刘阿姨", "陈师傅", "赵师傅"][n].into(),
            station_id: base.id.clone(),
            phone: Some(format!("1350001{:04}", n + 1)),
            position: base.position,
            on_duty: true,
            mode: TravelMode::Ebike,
            skills: vec![],
            position_at: None,
            provider_id: Some(provider.clone()),
        });
        r.providers.push(anxin_core::Provider {
            id: provider,
            name: name.into(),
            phone: Some(format!("0871-6900{:04}", n + 1)),
            offers,
            area: anxin_core::ServiceArea::Stations { stations },
            hours: Hours::parse(hours).expect("valid hours"),
        });
    }
}

/// The demo's console accounts, all with the password `anxin-demo` (printed at start).
pub const DEMO_PASSWORD: &str = "anxin-demo";

/// Argon2id hashes of `anxin-demo` (made with `anxind hash-password`), so the demo starts
/// without hashing.
const DEMO_HASHES: [&str; 4] = [
    "$argon2id$v=19$m=19456,t=2,p=1$H6hj+piRDAkCkpmuGZwBjg$SNb26blK1jrHczMSe8uhAwXTvROkHPoDGTOaHqRq7uk",
    "$argon2id$v=19$m=19456,t=2,p=1$Dw43rynhqRfOLCwsV1keWw$TaafswzvPJ+E1JLfr6WykMQEmAyUfR5lfJgLz2VJt4Y",
    "$argon2id$v=19$m=19456,t=2,p=1$s4cEgXxqTHpXAnYlLruvKA$9F/NaxuN5swQ79iJd7u4axUafrGcM4tygHo9sufR+dk",
    "$argon2id$v=19$m=19456,t=2,p=1$YM9ATGz9faVIgLEMsHvAAg$B8iElb1oiwXaOTC7YzybWn9VzZPykjWAkuqV5KBl51c",
];

fn demo_staff() -> Vec<Staff> {
    let staff = |id: &str, name: &str, role, hash: &str| Staff {
        id: id.into(),
        name: name.into(),
        role,
        password_hash: hash.into(),
    };
    vec![
        staff("dispatcher", "值班调度员 王芳", StaffRole::Dispatcher, DEMO_HASHES[0]),
        staff("dispatcher2", "值班调度员 李强", StaffRole::Dispatcher, DEMO_HASHES[1]),
        staff("supervisor", "值班主任 赵敏", StaffRole::Supervisor, DEMO_HASHES[2]),
        // Keeps the ledger (the console sends an admin to /ledger); works no incidents.
        staff("admin", "台账管理员 孙丽", StaffRole::Admin, DEMO_HASHES[3]),
    ]
}

/// An elder's profile, consistent with their notes. Drawn from its own generator, so the
/// district (positions, names) stays the same for a seed whatever the profile holds.
fn profile(seed: u64, elder_no: usize, notes: &[&str]) -> ElderProfile {
    let mut rng = SmallRng::seed_from_u64(seed.rotate_left(17) ^ elder_no as u64);
    let has = |n: &str| notes.contains(&n);
    let mut conditions = Vec::new();
    let mut medications = Vec::new();
    for (note, condition, medicine) in [
        ("高血压", "高血压", "氨氯地平 5mg 每日一次"),
        ("糖尿病", "2型糖尿病", "二甲双胍 0.5g 每日两次"),
        ("心脏病史", "冠心病", "硝酸甘油（急救时舌下含服）"),
        ("轻度认知障碍", "轻度认知障碍", "多奈哌齐 5mg 每晚"),
    ] {
        if has(note) {
            conditions.push(condition.to_string());
            medications.push(medicine.to_string());
        }
    }
    let mobility = if has("行动不便，使用助行器") {
        "使用助行器，起身困难"
    } else {
        ["可独立行走", "可独立行走", "需拐杖"][rng.random_range(0..3)]
    };
    let family = SURNAMES[rng.random_range(0..SURNAMES.len())];
    let mut contacts = vec![Contact {
        name: format!("{family}{}", ["丽", "军", "红", "斌"][rng.random_range(0..4)]),
        relation: ["女儿", "儿子", "儿媳", "侄女"][rng.random_range(0..4)].into(),
        phone: format!("1370000{:04}", elder_no),
        ..Contact::default()
    }];
    if rng.random_bool(0.5) {
        contacts.push(Contact {
            name: format!("{}阿姨", SURNAMES[rng.random_range(0..SURNAMES.len())]),
            relation: "邻居".into(),
            phone: format!("1360000{:04}", elder_no),
            // A neighbour takes no service news at night.
            quiet_hours: Some(anxin_core::QuietHours { from: 22 * 60, to: 7 * 60 }),
            ..Contact::default()
        });
    }
    ElderProfile {
        birth_year: Some(rng.random_range(1930..1956)),
        lives_alone: Some(has("独居") || rng.random_bool(0.2)),
        conditions,
        medications,
        mobility: mobility.into(),
        language: if has("听力较弱，请大声说话") {
            "昆明话，听力较弱，请大声说话".into()
        } else {
            ["昆明话", "昆明话", "普通话"][rng.random_range(0..3)].into()
        },
        door_notes: if has("钥匙在邻居 3 楼") {
            "备用钥匙在 3 楼邻居家".into()
        } else {
            format!("单元门禁 {:04}#", rng.random_range(0..10_000))
        },
        contacts,
        schedule: programme_schedule(elder_no),
        // Three levels of need, the district's allowance for each (300, 200, 100 yuan), and
        // one elder in four with none.
        need_level: [None, Some(1), Some(2), Some(3)][elder_no % 4],
        ..ElderProfile::default()
    }
}

/// The demo's welfare programme: the third elder of each street (xs-e0003, xs-e0043, ...) is
/// phoned weekly and visited monthly, so the welfare list shows scheduled calls and visits
/// (their first round spread over the period from the demo's first start).
pub fn programme_schedule(elder_no: usize) -> anxin_core::WelfareSchedule {
    if elder_no % ELDERS_PER_STREET == 3 {
        anxin_core::WelfareSchedule { call_every_days: Some(7), visit_every_days: Some(30) }
    } else {
        anxin_core::WelfareSchedule::default()
    }
}

/// One MQTT connection for a crowd of simulated devices, its event loop polled in the
/// background until `stop`. Commands the broker sends them are only logged.
struct DemoLink {
    client: AsyncClient,
    poller: tokio::task::JoinHandle<()>,
}

impl DemoLink {
    /// Connects as `client_id`, with room for `capacity` requests not yet sent.
    fn connect(broker: (String, u16), client_id: String, capacity: usize, stop: &CancellationToken) -> Self {
        let mut opts = MqttOptions::new(client_id, broker.0, broker.1);
        opts.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(opts, capacity);
        let stop = stop.clone();
        let poller = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    ev = eventloop.poll() => match ev {
                        Ok(Event::Incoming(Packet::Publish(p))) => tracing::debug!(topic = %p.topic, "demo device got a command"),
                        Ok(_) => {}
                        // `poll` returns its error at once: back off before trying again.
                        Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
                    },
                }
            }
        });
        Self { client, poller }
    }

    async fn close(self) {
        let _ = self.client.disconnect().await;
        self.poller.abort();
    }
}

/// Waits an exponential gap of the given mean (so that what follows is a Poisson process),
/// at most an hour; `false` when `stop` came first.
async fn poisson_wait(rng: &mut SmallRng, mean: Duration, stop: &CancellationToken) -> bool {
    let gap = -mean.as_secs_f64() * (1.0 - rng.random::<f64>()).ln();
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(Duration::from_secs_f64(gap.min(3600.0))) => true,
    }
}

/// Simulated devices: presses at random (a Poisson process with the given mean interval),
/// most with a fix near home, some without, until `stop`.
pub async fn press_now_and_then(
    broker: (String, u16),
    topics: anxin_mqtt::Topics,
    registry: Registry,
    devices: usize,
    mean_interval: Duration,
    seed: u64,
    stop: CancellationToken,
) {
    if devices == 0 || registry.devices.is_empty() {
        return;
    }
    let link = DemoLink::connect(broker, format!("anxin-demo-devices-{seed}"), 64, &stop);
    let client = &link.client;
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5eed);
    let pressing: Vec<_> = registry.devices.iter().take(devices.max(1).min(registry.devices.len())).cloned().collect();
    for d in &pressing {
        let _ = client.subscribe(topics.commands(&d.id), QoS::AtLeastOnce).await;
    }
    let homes: std::collections::HashMap<_, _> = registry.elders.iter().map(|e| (e.id.clone(), e.home)).collect();
    let mut n: u64 = 0;
    loop {
        if !poisson_wait(&mut rng, mean_interval, &stop).await {
            break;
        }
        let device = &pressing[rng.random_range(0..pressing.len())];
        n += 1;
        let mut payload = serde_json::json!({
            "msg_id": format!("demo-{seed}-{n}-{}", rng.random::<u32>()),
            "type": if rng.random_bool(0.15) { "fall" } else { "sos" },
            "ts": anxin_proto::wall_clock_now().millis(),
        });
        if let Some(home) = homes.get(&device.elder_id) {
            if rng.random_bool(0.7) {
                let fix = around(&mut rng, home.lat(), home.lon(), 30.0);
                payload["location"] =
                    serde_json::json!({"lat": fix.lat(), "lon": fix.lon(), "accuracy_m": rng.random_range(5..60)});
            }
        }
        let topic = topics.events(&device.id);
        if let Err(e) = client.publish(topic, QoS::AtLeastOnce, false, payload.to_string()).await {
            tracing::warn!(error = %e, "demo device could not press");
        } else {
            tracing::info!(device = %device.id, "demo device pressed");
        }
    }
    link.close().await;
}

/// Simulated calls to the hotline, posted to anxind's own telephony endpoint as a SIP server
/// would post them: now and then a demo elder's device dials from its SIM (one call in five
/// from a number nobody knows), rings, and hangs up unanswered after 20 to 45 s (a console
/// with a softphone may answer it first: the hang-up is then for a call already ended, and
/// changes nothing). A Poisson process with the given mean interval, until `stop`.
pub async fn call_now_and_then(
    http: std::net::SocketAddr,
    token: String,
    registry: Registry,
    mean_interval: Duration,
    seed: u64,
    stop: CancellationToken,
) {
    let sims: Vec<String> = registry.devices.iter().filter_map(|d| d.sim.clone()).collect();
    if mean_interval.is_zero() || sims.is_empty() {
        return;
    }
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xca11);
    let mut n: u64 = 0;
    loop {
        if !poisson_wait(&mut rng, mean_interval, &stop).await {
            break;
        }
        n += 1;
        let call_id = format!("demo-{seed}-{n}-{}@anxin-demo", rng.random::<u32>());
        let from = if rng.random_bool(0.8) {
            sims[rng.random_range(0..sims.len())].clone()
        } else {
            format!("137{:08}", rng.random_range(0..100_000_000u32))
        };
        let ringing = serde_json::json!({"event": "ringing", "call_id": call_id, "from": from, "to": "96110"});
        match post_call(http, &token, &ringing).await {
            Ok(()) => tracing::info!(%from, "demo call rings"),
            Err(e) => tracing::warn!(error = %e, "demo call could not ring"),
        }
        let rings_for = Duration::from_secs(rng.random_range(20..=45));
        let (token, stop) = (token.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::time::sleep(rings_for) => {
                    let ended = serde_json::json!({"event": "ended", "call_id": call_id, "reason": "cancel"});
                    if let Err(e) = post_call(http, &token, &ended).await {
                        tracing::warn!(error = %e, "demo call could not hang up");
                    }
                }
            }
        });
    }
}

/// One `POST /api/v1/telephony/calls` to anxind on loopback: HTTP/1.1, closed after.
async fn post_call(http: std::net::SocketAddr, token: &str, body: &serde_json::Value) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = body.to_string();
    let mut s = tokio::net::TcpStream::connect(http).await?;
    let request = format!(
        "POST /api/v1/telephony/calls HTTP/1.1\r\nHost: {http}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await?;
    let status = String::from_utf8_lossy(answer.get(9..12).unwrap_or_default()).to_string();
    match status.as_str() {
        "200" => Ok(()),
        other => Err(std::io::Error::other(format!("HTTP {other}"))),
    }
}

/// How the demo's devices are, by position in the ledger: most heartbeat on time with a
/// healthy battery; a few show what a welfare check is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoHealth {
    Healthy,
    /// Low on battery from the start (a welfare check opens at once; the family is told).
    Flat,
    /// Switched off at the start.
    SwitchedOff,
    /// Never heard: offline once its window has passed.
    Silent,
}

/// Every 50th device from the 7th is low on battery, every 50th from the 19th switched off,
/// every 50th from the 31st silent; the rest are healthy. (320 demo devices: 7 of each.)
pub fn demo_health(index: usize) -> DemoHealth {
    match index % 50 {
        7 => DemoHealth::Flat,
        19 => DemoHealth::SwitchedOff,
        31 => DemoHealth::Silent,
        _ => DemoHealth::Healthy,
    }
}

/// Simulated devices' heartbeats: each device every `interval`, spread evenly, with a battery
/// that drains slowly and a signal (see [`demo_health`] for the few that are not well), until
/// `stop`.
pub async fn heartbeat_now_and_then(
    broker: (String, u16),
    topics: anxin_mqtt::Topics,
    registry: Registry,
    interval: Duration,
    seed: u64,
    stop: CancellationToken,
) {
    if registry.devices.is_empty() {
        return;
    }
    let link = DemoLink::connect(broker, format!("anxin-demo-heartbeats-{seed}"), 256, &stop);
    let client = &link.client;
    let mut rng = SmallRng::seed_from_u64(seed ^ 0xbea7);
    let gap = interval.div_f64(registry.devices.len() as f64);
    let mut round: u64 = 0;
    'rounds: loop {
        for (i, device) in registry.devices.iter().enumerate() {
            let health = demo_health(i);
            let body = match health {
                DemoHealth::Silent => None,
                DemoHealth::SwitchedOff if round == 0 => Some(serde_json::json!({"type": "power_off"})),
                DemoHealth::SwitchedOff => None,
                DemoHealth::Flat => {
                    Some(serde_json::json!({"type": "heartbeat", "battery_pct": 12, "charging": false}))
                }
                DemoHealth::Healthy => Some(serde_json::json!({
                    "type": "heartbeat",
                    "battery_pct": 95u64.saturating_sub(round % 60),
                    "rssi": -rng.random_range(55..95),
                })),
            };
            if let Some(mut body) = body {
                body["msg_id"] = format!("hb-{seed}-{round}-{i}").into();
                body["ts"] = anxin_proto::wall_clock_now().millis().into();
                let topic = topics.events(&device.id);
                if let Err(e) = client.publish(topic, QoS::AtLeastOnce, false, body.to_string()).await {
                    tracing::warn!(error = %e, "demo device could not send its heartbeat");
                }
            }
            tokio::select! {
                _ = stop.cancelled() => break 'rounds,
                _ = tokio::time::sleep(gap) => {}
            }
        }
        round += 1;
    }
    link.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_district_is_the_same_for_the_same_seed_and_consistent() {
        let a = district(7);
        assert_eq!(a, district(7));
        assert_ne!(a, district(8));
        assert_eq!(a.elders.len(), STREETS.len() * ELDERS_PER_STREET);
        assert_eq!(a.devices.len(), a.elders.len());
        assert_eq!(a.responders.len(), STREETS.len() * RESPONDERS_PER_STREET + a.providers.len());
        assert_eq!(a.providers.len(), 3);
        assert_eq!(a.check(), Ok(()), "every provider's stations and every worker's provider are in it");
        assert_eq!(a.devices[0].id.as_str(), "xs-d0001");
        // Everyone lives within a few km of their street centre, inside Kunming.
        for e in &a.elders {
            assert!((24.9..25.1).contains(&e.home.lat()) && (102.55..102.75).contains(&e.home.lon()), "{e:?}");
            assert!(!e.profile.contacts.is_empty(), "somebody to call for every elder");
            let n: usize = e.id.as_str()[4..].parse().unwrap();
            assert_eq!(e.profile.schedule.is_empty(), n % ELDERS_PER_STREET != 3, "{e:?}");
            if e.notes.contains("独居") {
                assert_eq!(e.profile.lives_alone, Some(true), "the profile agrees with the notes: {e:?}");
            }
        }
    }

    #[test]
    fn every_demo_device_has_a_sim_number_of_its_own_that_the_ledger_import_takes() {
        let a = district(7);
        let mut people: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for e in &a.elders {
            people.extend(e.phone.as_deref());
            people.extend(e.profile.contacts.iter().map(|c| c.phone.as_str()));
        }
        people.extend(a.responders.iter().filter_map(|r| r.phone.as_deref()));
        let mut sims = std::collections::HashSet::new();
        for d in &a.devices {
            let sim = d.sim.as_deref().expect("every demo device can dial");
            assert!(sim.len() == 11 && sim.starts_with('1') && sim.bytes().all(|b| b.is_ascii_digit()), "{sim}");
            assert!(sims.insert(sim), "{sim} is one device's");
            assert!(!people.contains(sim), "{sim} is nobody's phone");
        }
        // Exported and checked as an office's file would be: every number is plausible and
        // no other device's.
        use anxin_ledger_io as io;
        let file = io::export(&a, io::Kind::Devices, io::Format::Csv, io::Encoding::Utf8).unwrap();
        let table = io::read_table(&file, io::Format::Csv, io::Encoding::Auto, None).unwrap();
        let report = io::check(&table, &io::Mapping::default_for(io::Kind::Devices), &a, &mut |_, _| {}).unwrap();
        assert_eq!((report.problems.len(), report.unchanged), (0, a.devices.len()), "{:?}", report.problems);
    }

    #[test]
    fn the_demo_accounts_sign_in_with_the_printed_password() {
        let sessions = anxin_api::Sessions::new(demo_staff());
        for s in demo_staff() {
            let user = sessions.check(&s.id, DEMO_PASSWORD).expect("signs in");
            assert_eq!(user.role, s.role);
        }
        assert!(sessions.check("dispatcher", "wrong").is_none());
    }
}
