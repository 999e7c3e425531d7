//! A scenario file: the district (people, centres, responders), how people behave, and how
//! long and how fast to play it. Read from TOML, checked, with errors that name the key.

use serde::Deserialize;
use std::path::Path;

/// Everything a run needs to know about the district and its people.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub district: District,
    pub devices: Devices,
    pub presses: Presses,
    pub responders: Responders,
    #[serde(default)]
    pub dispatchers: Dispatchers,
    /// The elders' contacts and how they answer; the defaults when absent.
    #[serde(default)]
    pub families: Families,
    pub run: Run,
    /// Many presses at once (an earthquake, a power cut at night); none when absent.
    #[serde(default)]
    pub surge: Option<Surge>,
    /// The devices' heartbeats and what goes wrong with them (flat, switched off, not worn,
    /// low); every device heartbeats, with no faults, when absent.
    #[serde(default)]
    pub health: Health,
    /// The welfare programme's scheduled calls and visits; none when absent.
    #[serde(default)]
    pub programme: Option<Programme>,
    /// Carers who visit elders at home (responders with the skill `carer`); none when absent.
    #[serde(default)]
    pub carers: Option<Carers>,
    /// The service lane: providers, their workers, the elders' allowances and their orders;
    /// none when absent.
    #[serde(default)]
    pub services: Option<Services>,
    #[serde(rename = "neighbourhood")]
    pub neighbourhoods: Vec<Neighbourhood>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct District {
    pub name: String,
    /// Prefix of every id in the generated registry (`xs` gives `xs-e00001`).
    pub id_prefix: String,
    /// Residents aged 60 and over (the seeds' figure).
    pub aged_60_plus: u64,
    /// Care institutions in the seeds; reported, not simulated (they send no one to homes).
    #[serde(default)]
    pub care_institutions: u32,
    /// Community home-care centres: the stations responders belong to. Must equal the
    /// neighbourhoods' `centres` added up.
    pub community_centres: u32,
}

/// Who gets a device, and what a press carries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Devices {
    /// Share of the 60+ who are 70 or older.
    pub share_aged_70_plus: f64,
    /// Share of the 60+ who are 80 or older (part of the 70+).
    pub share_aged_80_plus: f64,
    /// Share of elders who live alone, at any age.
    pub share_living_alone: f64,
    /// Groups given a device: `aged_60_plus`, `aged_70_plus`, `aged_80_plus`,
    /// `living_alone`, `aged_70_plus_living_alone`. An elder in any of them is eligible.
    pub eligible: Vec<String>,
    /// Share of eligible elders who have a device installed.
    pub uptake: f64,
    /// At most this many devices (0: no cap), for short runs on a small machine.
    #[serde(default)]
    pub limit: u32,
    /// How far homes scatter around their community centre (standard deviation, metres).
    pub cluster_spread_m: f64,
    /// Share of presses that carry a GNSS fix (the rest are located at the registered home).
    pub fix_share: f64,
}

/// How often and how elders press.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Presses {
    /// Mean emergency presses (SOS or fall) per device per day, over a whole day.
    pub per_device_per_day: f64,
    /// Share of those that are a detected fall rather than an SOS button press.
    pub fall_share: f64,
    /// Chance that an elder presses again (panic) while waiting for help.
    pub repeat_probability: f64,
    /// The most extra presses a panicking elder makes.
    pub repeat_max: u32,
    /// Scenario seconds between panic presses, [min, max].
    pub repeat_gap_s: [f64; 2],
    /// Chance that the elder asks to cancel (a long press) soon after pressing.
    pub cancel_probability: f64,
    /// Scenario seconds from the press to the cancel, [min, max].
    pub cancel_after_s: [f64; 2],
    /// Relative press rate for each hour of the day, 0h to 23h (24 numbers, day and night).
    pub hourly_weights: Vec<f64>,
}

/// The people at the community centres who go to the door.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Responders {
    /// Responders attached to each community centre.
    pub per_centre: u32,
    /// Shares of travel modes; need not add up to 1.
    pub modes: Modes,
    /// Share trained in first aid (only they are offered falls).
    pub first_aid_share: f64,
    /// Chance that an offer is accepted (else declined or left to lapse).
    pub accept_probability: f64,
    /// Chance that an offer is neither accepted nor declined: the phone stays silent.
    pub no_answer_probability: f64,
    /// Scenario seconds to answer an offer, [min, max].
    pub answer_delay_s: [f64; 2],
    /// Scenario seconds from accepting to setting off (en route), [min, max].
    pub prepare_s: [f64; 2],
    /// Scenario minutes spent with the elder before resolving, [min, max].
    pub on_scene_min: [f64; 2],
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Modes {
    pub foot: f64,
    pub ebike: f64,
    pub car: f64,
}

/// What the call centre does, as far as the simulation needs it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dispatchers {
    /// Scenario seconds before a dispatcher closes a resolved incident, [min, max].
    pub close_after_s: [f64; 2],
    /// Scenario seconds to call an elder back who asked to cancel, then cancel, [min, max].
    pub callback_after_s: [f64; 2],
    /// Scenario seconds before a dispatcher, seeing an incident nobody is going to, asks the
    /// engine whom they could put on it (`suggest`), [min, max].
    #[serde(default = "Dispatchers::default_suggest_after_s")]
    pub suggest_after_s: [f64; 2],
    /// The dispatcher rings the best suggested responder (with the skill) who can be there
    /// within this many minutes, and assigns them if they agree; nobody that close: 120.
    #[serde(default = "Dispatchers::default_assign_within_eta_min")]
    pub assign_within_eta_min: f64,
    /// Responders a dispatcher tries for one incident (a refusal on the phone, an assignment
    /// the engine refuses, the incident coming back to "nobody going") before handing it to
    /// 120; 0 hands every one to 120 straight away.
    #[serde(default = "Dispatchers::default_assign_attempts")]
    pub assign_attempts: u32,
    /// Scenario seconds from finding nobody to assign to handing the incident over to the
    /// ambulance (120) and resolving it: the call to 120, [min, max].
    pub handover_after_s: [f64; 2],
}

impl Dispatchers {
    fn default_suggest_after_s() -> [f64; 2] {
        [60.0, 180.0]
    }
    fn default_assign_within_eta_min() -> f64 {
        30.0
    }
    fn default_assign_attempts() -> u32 {
        2
    }
}

impl Default for Dispatchers {
    fn default() -> Self {
        Self {
            close_after_s: [60.0, 300.0],
            callback_after_s: [30.0, 120.0],
            suggest_after_s: Self::default_suggest_after_s(),
            assign_within_eta_min: Self::default_assign_within_eta_min(),
            assign_attempts: Self::default_assign_attempts(),
            handover_after_s: [30.0, 90.0],
        }
    }
}

/// The elders' family contacts, and how they answer when the engine tells them of an
/// emergency (a text, a call or a push on a phone that is usually in a pocket).
///
/// The delay from being told to answering is log-normal: `answer_median_s` is its median and
/// `answer_spread` the standard deviation of its natural logarithm (1.0: a quarter of answers
/// come within half the median, a quarter after twice it), clipped to `answer_clip_s`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Families {
    /// Shares of elders with 0, 1, 2 and 3 contacts; need not add up to 1.
    pub contacts_shares: [f64; 4],
    /// Shares of contacts told by text (`sms`), phone call (`voice`) and Web Push (`push`).
    pub channels: Channels,
    /// Chance that a contact who is told answers at all (else the phone stays unanswered).
    pub answer_share: f64,
    /// Median scenario seconds from being told to answering.
    pub answer_median_s: f64,
    /// Standard deviation of the natural logarithm of that delay.
    pub answer_spread: f64,
    /// The delay is clipped to [min, max] scenario seconds.
    pub answer_clip_s: [f64; 2],
    /// Relative shares of the answers; need not add up to 1.
    pub answers: Answers,
    /// Minutes a contact who is going says they need, [min, max].
    pub going_eta_min: [f64; 2],
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Channels {
    pub sms: f64,
    pub voice: f64,
    pub push: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answers {
    /// "Seen": they read it.
    pub seen: f64,
    /// "I am going", with an ETA from `going_eta_min`.
    pub going: f64,
    /// "I called, she is fine".
    pub fine: f64,
    /// "I cannot help": the engine tells the next contact at once.
    pub cannot_help: f64,
}

impl Default for Families {
    /// Assumptions, not survey figures: most elders have one or two contacts (a child in
    /// the city, a neighbour), some none; a phone in a pocket is answered within a few
    /// minutes most of the time (median 2 minutes, four in five within the engine's 5-minute
    /// escalation among those who answer) and one told contact in five never answers.
    fn default() -> Self {
        Self {
            contacts_shares: [0.15, 0.35, 0.35, 0.15],
            channels: Channels { sms: 0.6, voice: 0.1, push: 0.3 },
            answer_share: 0.8,
            answer_median_s: 120.0,
            answer_spread: 1.0,
            answer_clip_s: [5.0, 3600.0],
            answers: Answers { seen: 0.35, going: 0.35, fine: 0.2, cannot_help: 0.1 },
            going_eta_min: [10.0, 60.0],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// Scenario hours to play.
    pub hours: f64,
    /// Hour of the day the run starts at (0 to 24), for the day/night pattern.
    pub start_hour: f64,
    /// Scenario seconds per wall-clock second. At most 60, so the engine's 60 s offer
    /// timeout is still a whole second of wall-clock time.
    pub speedup: f64,
    pub seed: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Surge {
    /// Scenario hours from the run's start to the surge.
    pub at_hour: f64,
    /// Share of devices that press.
    pub share: f64,
    /// Scenario minutes over which they press.
    pub within_min: f64,
}

/// The devices' own life: heartbeats, batteries and faults. Times are scenario time; the
/// engine's `[health]` gets them compressed by the speed-up, like its other timers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Health {
    /// Scenario seconds between a device's heartbeats (`interval_s` on the wire, and the
    /// engine's `health.heartbeat_s`). At least 10 × `run.speedup`: anxind's shortest is 10 s.
    pub heartbeat_s: f64,
    /// How many intervals may pass with nothing heard (anxind's `health.factor`, 1 to 100).
    pub factor: f64,
    /// Scenario seconds of slack on top (anxind's `health.grace_s`).
    pub grace_s: f64,
    /// Share of devices that heartbeat every `heartbeat_s` and may fail; the others are the
    /// model `sim-quiet`, heartbeating every `quiet_heartbeat_s`, so that a large district
    /// does not flood the machine it runs on. 1: every device.
    pub watched_share: f64,
    /// Scenario seconds between the other devices' heartbeats.
    pub quiet_heartbeat_s: f64,
    /// Percent of charge a device loses a day, [min, max] (drawn per device).
    pub drain_pct_per_day: [f64; 2],
    /// A device's signal strength in dBm, [min, max] (drawn per device; each heartbeat
    /// varies it by a few dB).
    pub rssi_dbm: [f64; 2],
    pub faults: Faults,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            heartbeat_s: 600.0,
            factor: 3.0,
            grace_s: 120.0,
            watched_share: 1.0,
            quiet_heartbeat_s: 7_200.0,
            drain_pct_per_day: [5.0, 15.0],
            rssi_dbm: [-100.0, -60.0],
            faults: Faults::default(),
        }
    }
}

/// What goes wrong, as shares of the watched devices. Each fault starts at a moment drawn
/// within `within_hours` (after the device's first heartbeat); a device has at most one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Faults {
    /// The battery runs flat: a `low_battery` event, then silence.
    pub flat_share: f64,
    /// Switched off: a `power_off` event, then silence.
    pub off_share: f64,
    /// Taken off: `not_worn`, later `worn`; it keeps heartbeating (and cannot be pressed).
    pub not_worn_share: f64,
    /// Runs low: a heartbeat with the charge under the engine's 20%, later put on its
    /// charger (`charging: true`).
    pub low_share: f64,
    /// Of the flat, switched-off and low devices, the share that come back (charged,
    /// switched on); a device taken off is always put on again.
    pub back_share: f64,
    /// Scenario minutes from the fault to coming back, [min, max].
    pub back_after_min: [f64; 2],
    /// Scenario hours since the start within which faults begin, [from, to]; the whole run
    /// when absent.
    pub within_hours: Option<[f64; 2]>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            flat_share: 0.0,
            off_share: 0.0,
            not_worn_share: 0.0,
            low_share: 0.0,
            back_share: 0.0,
            back_after_min: [30.0, 240.0],
            within_hours: None,
        }
    }
}

impl Health {
    /// anxind's heartbeat bounds, in wall-clock seconds.
    pub const WALL_INTERVAL_S: (f64, f64) = (10.0, 86_400.0);

    /// Checks the heartbeats against the speed-up: the intervals must be whole seconds of
    /// wall-clock time that anxind accepts.
    pub fn check_speed(&self, speedup: f64) -> Result<(), (String, String)> {
        let (lo, hi) = Self::WALL_INTERVAL_S;
        for (key, v) in [("health.heartbeat_s", self.heartbeat_s), ("health.quiet_heartbeat_s", self.quiet_heartbeat_s)]
        {
            let wall = (v / speedup).round();
            if !(v.is_finite() && (lo..=hi).contains(&wall)) {
                return Err((
                    key.into(),
                    format!(
                        "must be {lo} to {hi} s of wall-clock time at {speedup}x (anxind's limits), \
                         so {} to {} scenario s, not {v}",
                        lo * speedup,
                        hi * speedup
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// A real neighbourhood (a sub-district, 街道) and its community centres.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Neighbourhood {
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    /// Relative share of the district's elders living here.
    pub weight: f64,
    /// How far its centres scatter around (lat, lon) (standard deviation, metres).
    pub spread_m: f64,
    /// Community home-care centres here.
    pub centres: u32,
}

/// The welfare programme (anxind's `[programme]` and the ledger's `schedule`): who is on it,
/// and how the dispatchers close its calls and visits.
///
/// The engine counts a schedule's days in days (a schedule is a ledger field, not a timer it
/// can be given compressed), and spreads an elder's first call and first visit over the
/// period by a hash of the elder's id. A run of minutes would see almost none fall due, so
/// `due_in_run` of the elders on the programme get an id (the district's, with a suffix)
/// whose first call or visit falls due within `due_within_min` of the start: the simulator
/// asks anxin-core where each falls, as it asks it nothing else.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Programme {
    /// Share of the elders living alone who are on the programme.
    pub share: f64,
    /// A call every this many days, a visit every this many (1 to 366; no visits when absent).
    pub call_every_days: u16,
    #[serde(default)]
    pub visit_every_days: Option<u16>,
    /// Elders on the programme whose first call (or, every other one, first visit when they
    /// have visits) is made to fall due within the run.
    pub due_in_run: u32,
    /// ...within this many scenario minutes of the start.
    pub due_within_min: f64,
    /// anxind's `programme.max_tries`: unanswered calls before a visit is sent instead.
    pub max_tries: u8,
    /// Scenario minutes before an unanswered call is tried again; compressed, whole wall-clock
    /// minutes (anxind's unit), at least 1.
    pub retry_after_min: f64,
    /// Scenario hours a task may stay open before it is overdue; compressed, whole wall-clock
    /// hours, at least 1.
    pub overdue_after_h: f64,
    /// Relative shares of what the dispatcher finds; need not add up to 1.
    pub outcomes: TaskOutcomes,
    /// Scenario seconds from a task showing on the console to the dispatcher closing it, [min, max].
    pub handle_after_s: [f64; 2],
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskOutcomes {
    pub well: f64,
    pub needs_service: f64,
    pub needs_help: f64,
    pub no_answer: f64,
}

/// Carers (anxind's `[carers]`): responders with the skill `carer` who visit elders near
/// their centre, check in at the door, and check out; some slip.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Carers {
    /// Carers at each community centre (besides its responders); off duty for emergencies.
    pub per_centre: u32,
    /// Visits each carer makes, one after another from the start.
    pub visits_each: u32,
    /// Scenario minutes on a visit, [min, max]; below 80% of `visit_max_min`.
    pub visit_min: [f64; 2],
    /// Scenario minutes from one visit's end to the next check-in, [min, max].
    pub between_min: [f64; 2],
    /// anxind's `carers.checkin_radius_m`.
    pub checkin_radius_m: f64,
    /// anxind's `carers.visit_max_min` in scenario minutes (compressed, it may be a fraction
    /// of a wall-clock minute).
    pub visit_max_min: f64,
    /// Share of check-ins first sent from too far (a street away): refused, then sent again
    /// from the door.
    pub far_share: f64,
    /// Share of visits with a "still here" half-way.
    pub still_here_share: f64,
    /// Share of visits the carer forgets to check out of: the lone-worker alarm must come;
    /// the carer checks out `late_min` scenario minutes after it is due.
    pub forget_share: f64,
    pub late_min: f64,
    /// Share of visits on which the carer presses help half-way.
    pub help_share: f64,
}

/// The service lane (anxind's `[services]`, the ledger's providers and workers, and the
/// elders' `need_level`): contracted providers serving some centres' circles, their workers
/// on phones, and the orders the dispatchers place for elders over REST. Times are scenario
/// time; the engine's offer deadline is compressed like its other timers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Services {
    /// Contracted providers in the district, and workers each.
    pub providers: u32,
    pub workers_each: u32,
    /// Community centres whose circles a provider serves: the nearest this many to a centre
    /// drawn for it (each centre is some provider's first, in turn).
    pub centres_each: u32,
    /// Opening hours, local scenario time (`"07:00-21:00"`). The engine reads a provider's
    /// hours on its own wall clock, which the speed-up does not reach, so the registry
    /// gives providers all day and the dispatchers ask only for windows within these hours.
    pub hours: String,
    /// anxind's `services.offer_timeout_min` in scenario minutes; compressed, whole
    /// wall-clock minutes (anxind's unit), at least 1.
    pub offer_timeout_min: f64,
    /// anxind's `services.checkin_radius_m`.
    pub checkin_radius_m: f64,
    /// anxind's `services.monthly_allowance_yuan`, by level of need (1 first).
    pub monthly_allowance_yuan: Vec<u32>,
    /// Shares of elders with need level 1, 2, 3 … (the rest have none), by age band; each
    /// list as long as `monthly_allowance_yuan`.
    pub need_levels: NeedLevels,
    /// Orders per 1,000 elders a day, by age band (over a whole day; shaped by the hour).
    pub orders_per_1000_per_day: AgeRates,
    /// How much more often an elder with an allowance orders than one without.
    pub with_allowance_factor: f64,
    /// Relative order rate for each hour of the day, 0h to 23h.
    pub hourly_weights: Vec<f64>,
    /// The categories ordered, with their shares and what providers charge.
    #[serde(rename = "category")]
    pub categories: Vec<ServiceCategory>,
    /// Scenario minutes from the call to the start of the wanted window, and the window's
    /// length, [min, max].
    pub lead_min: [f64; 2],
    pub window_min: [f64; 2],
    /// Chance that an elder told of a self-paid part declines (the order is not placed).
    pub decline_self_paid: f64,
    /// The worker holding an offer: accepts, refuses (the rest let it lapse), after
    /// `answer_after_min` scenario minutes.
    pub accept_probability: f64,
    pub refuse_probability: f64,
    pub answer_after_min: [f64; 2],
    /// Scenario minutes at the door, [min, max].
    pub service_min: [f64; 2],
    /// Share of check-ins first sent from a street away (beyond the radius): refused, then
    /// sent again from the door.
    pub far_share: f64,
    /// Scenario minutes from check-out to the dispatcher (or family) confirming or disputing,
    /// the share disputed, and from a dispute to the dispatcher settling it.
    pub confirm_after_min: [f64; 2],
    pub dispute_share: f64,
    pub settle_after_min: [f64; 2],
    /// Ratings 1 to 5, relative shares.
    pub ratings: [f64; 5],
    /// Scenario minutes before a dispatcher cancels an order nobody took (telling the elder).
    pub unmatched_cancel_after_min: [f64; 2],
}

/// One value per age band.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgeRates {
    pub aged_60: f64,
    pub aged_70: f64,
    pub aged_80: f64,
}

impl AgeRates {
    pub fn of(&self, band: u8) -> f64 {
        match band {
            80.. => self.aged_80,
            70.. => self.aged_70,
            _ => self.aged_60,
        }
    }
}

/// Shares of need levels 1, 2, 3 … by age band.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeedLevels {
    pub aged_60: Vec<f64>,
    pub aged_70: Vec<f64>,
    pub aged_80: Vec<f64>,
}

impl NeedLevels {
    pub fn of(&self, band: u8) -> &[f64] {
        match band {
            80.. => &self.aged_80,
            70.. => &self.aged_70,
            _ => &self.aged_60,
        }
    }
}

/// A category the dispatchers order, one of anxind's built-in ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceCategory {
    pub id: String,
    /// Relative share of orders.
    pub share: f64,
    /// Share of providers that offer it (at least one always does).
    pub offered_by: f64,
    /// A provider's price in yuan, and its daily capacity, [min, max] (drawn per provider).
    pub price_yuan: [f64; 2],
    pub daily_capacity: [f64; 2],
}

impl Services {
    /// Opening hours as (from, to) scenario hours of the day; `to < from` runs past midnight.
    pub fn open_hours(&self) -> Option<(f64, f64)> {
        let h = anxin_core::service::Hours::parse(&self.hours)?;
        Some((f64::from(h.from_min) / 60.0, f64::from(h.to_min) / 60.0))
    }

    fn check(&self, speedup: f64, hours: f64) -> Result<(), (String, String)> {
        let err = |k: &str, p: String| Err((format!("services.{k}"), p));
        let share_ok = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
        let range_ok = |r: [f64; 2]| r.iter().all(|v| v.is_finite() && *v >= 0.0) && r[0] <= r[1];
        if self.providers == 0 || self.workers_each == 0 || self.centres_each == 0 {
            return err("providers", "providers, workers_each and centres_each must be at least 1".into());
        }
        if self.open_hours().is_none() {
            return err("hours", format!("must be \"HH:MM-HH:MM\", not {:?}", self.hours));
        }
        let wall = self.offer_timeout_min / speedup;
        if !(wall.is_finite() && wall >= 1.0 && (wall - wall.round()).abs() < 1e-9 && wall <= 1440.0) {
            return err(
                "offer_timeout_min",
                format!(
                    "must compress to whole wall-clock minutes, 1 to 1440 (anxind's unit and limits): a multiple of {speedup}, not {}",
                    self.offer_timeout_min
                ),
            );
        }
        if !(10.0..=5000.0).contains(&self.checkin_radius_m) {
            return err("checkin_radius_m", format!("must lie in 10..=5000, not {}", self.checkin_radius_m));
        }
        let levels = self.monthly_allowance_yuan.len();
        if !(1..=9).contains(&levels) || self.monthly_allowance_yuan.iter().any(|y| *y > 100_000) {
            return err("monthly_allowance_yuan", "must list 1 to 9 amounts of 0 to 100000 yuan".into());
        }
        for (band, v) in [
            ("aged_60", &self.need_levels.aged_60),
            ("aged_70", &self.need_levels.aged_70),
            ("aged_80", &self.need_levels.aged_80),
        ] {
            if v.len() != levels || !v.iter().all(|s| share_ok(*s)) || v.iter().sum::<f64>() > 1.0 + 1e-9 {
                return err(
                    &format!("need_levels.{band}"),
                    format!("must give {levels} shares (one a level) adding up to 1 at most, not {v:?}"),
                );
            }
        }
        let r = &self.orders_per_1000_per_day;
        if ![r.aged_60, r.aged_70, r.aged_80].iter().all(|v| v.is_finite() && *v >= 0.0) {
            return err("orders_per_1000_per_day", "must be numbers >= 0".into());
        }
        if !(self.with_allowance_factor.is_finite() && self.with_allowance_factor >= 0.0) {
            return err("with_allowance_factor", "must be a number >= 0".into());
        }
        if self.hourly_weights.len() != 24
            || self.hourly_weights.iter().any(|w| !w.is_finite() || *w < 0.0)
            || self.hourly_weights.iter().all(|w| *w == 0.0)
        {
            return err("hourly_weights", "must be 24 numbers >= 0, not all 0".into());
        }
        if self.categories.is_empty() {
            return err("category", "must list at least one [[services.category]]".into());
        }
        let known: Vec<&str> = anxin_core::service::DEFAULT_CATEGORIES.iter().map(|(id, _)| *id).collect();
        for (i, c) in self.categories.iter().enumerate() {
            let key = |k: &str| format!("category[{i}].{k} ({})", c.id);
            if !known.contains(&c.id.as_str()) {
                return err(&key("id"), format!("must be one of anxind's categories {known:?}"));
            }
            if !(c.share.is_finite() && c.share >= 0.0 && share_ok(c.offered_by)) {
                return err(&key("share"), "share must be >= 0 and offered_by in 0..=1".into());
            }
            if !range_ok(c.price_yuan) || !range_ok(c.daily_capacity) || c.daily_capacity[1] < 1.0 {
                return err(
                    &key("price_yuan"),
                    "price_yuan and daily_capacity must be [min, max], capacity at least 1".into(),
                );
            }
        }
        if self.categories.iter().map(|c| c.share).sum::<f64>() <= 0.0 {
            return err("category", "must give at least one category a share above 0".into());
        }
        for (k, r) in [
            ("lead_min", self.lead_min),
            ("window_min", self.window_min),
            ("answer_after_min", self.answer_after_min),
            ("service_min", self.service_min),
            ("confirm_after_min", self.confirm_after_min),
            ("settle_after_min", self.settle_after_min),
            ("unmatched_cancel_after_min", self.unmatched_cancel_after_min),
        ] {
            if !range_ok(r) {
                return err(k, format!("must be [min, max] with 0 <= min <= max, not {r:?}"));
            }
        }
        if self.window_min[0] < self.service_min[1] + 1.0 {
            return err("window_min", "must begin above service_min's max (a visit fits in its window)".into());
        }
        if self.lead_min[0] > hours * 60.0 {
            return err("lead_min", "must begin within the run (run.hours)".into());
        }
        for (k, v) in [
            ("decline_self_paid", self.decline_self_paid),
            ("accept_probability", self.accept_probability),
            ("refuse_probability", self.refuse_probability),
            ("far_share", self.far_share),
            ("dispute_share", self.dispute_share),
        ] {
            if !share_ok(v) {
                return err(k, format!("must lie in 0..=1, not {v}"));
            }
        }
        if self.accept_probability + self.refuse_probability > 1.0 {
            return err("refuse_probability", "plus accept_probability must not exceed 1".into());
        }
        if !self.ratings.iter().all(|v| v.is_finite() && *v >= 0.0) || self.ratings.iter().sum::<f64>() <= 0.0 {
            return err("ratings", "must be 5 numbers >= 0, not all 0".into());
        }
        Ok(())
    }
}

/// A scenario that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a valid scenario: {message}")]
    Parse { path: String, message: String },
    #[error("{path}: {key} {problem}")]
    Invalid { path: String, key: String, problem: String },
}

pub const GROUPS: [&str; 5] =
    ["aged_60_plus", "aged_70_plus", "aged_80_plus", "living_alone", "aged_70_plus_living_alone"];

impl Scenario {
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let name = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: name.clone(), source })?;
        Self::parse(&text, &name)
    }

    /// Parses and checks a scenario; `name` is used in messages.
    pub fn parse(text: &str, name: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario =
            toml::from_str(text).map_err(|e| ScenarioError::Parse { path: name.into(), message: e.to_string() })?;
        scenario.check().map_err(|(key, problem)| ScenarioError::Invalid { path: name.into(), key, problem })?;
        Ok(scenario)
    }

    fn check(&self) -> Result<(), (String, String)> {
        fn share(key: &str, v: f64) -> Result<(), (String, String)> {
            if v.is_finite() && (0.0..=1.0).contains(&v) {
                Ok(())
            } else {
                Err((key.into(), format!("must lie in 0..=1, not {v}")))
            }
        }
        fn positive(key: &str, v: f64) -> Result<(), (String, String)> {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err((key.into(), format!("must be a positive number, not {v}")))
            }
        }
        fn range(key: &str, r: [f64; 2]) -> Result<(), (String, String)> {
            if r.iter().all(|v| v.is_finite() && *v >= 0.0) && r[0] <= r[1] {
                Ok(())
            } else {
                Err((key.into(), format!("must be [min, max] with 0 <= min <= max, not {r:?}")))
            }
        }
        let d = &self.district;
        let id_ok = !d.id_prefix.is_empty()
            && d.id_prefix.len() <= 16
            && d.id_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !id_ok {
            return Err((
                "district.id_prefix".into(),
                format!("must be 1 to 16 ASCII letters, digits, - or _, not {:?}", d.id_prefix),
            ));
        }
        if d.aged_60_plus == 0 {
            return Err(("district.aged_60_plus".into(), "must be at least 1".into()));
        }
        let v = &self.devices;
        share("devices.share_aged_70_plus", v.share_aged_70_plus)?;
        share("devices.share_aged_80_plus", v.share_aged_80_plus)?;
        if v.share_aged_80_plus > v.share_aged_70_plus {
            return Err(("devices.share_aged_80_plus".into(), "must not exceed devices.share_aged_70_plus".into()));
        }
        share("devices.share_living_alone", v.share_living_alone)?;
        share("devices.uptake", v.uptake)?;
        share("devices.fix_share", v.fix_share)?;
        positive("devices.cluster_spread_m", v.cluster_spread_m)?;
        if v.eligible.is_empty() {
            return Err(("devices.eligible".into(), format!("must name at least one of {GROUPS:?}")));
        }
        if let Some(g) = v.eligible.iter().find(|g| !GROUPS.contains(&g.as_str())) {
            return Err(("devices.eligible".into(), format!("has {g:?}, not one of {GROUPS:?}")));
        }
        let p = &self.presses;
        positive("presses.per_device_per_day", p.per_device_per_day)?;
        share("presses.fall_share", p.fall_share)?;
        share("presses.repeat_probability", p.repeat_probability)?;
        share("presses.cancel_probability", p.cancel_probability)?;
        range("presses.repeat_gap_s", p.repeat_gap_s)?;
        range("presses.cancel_after_s", p.cancel_after_s)?;
        if p.hourly_weights.len() != 24
            || p.hourly_weights.iter().any(|w| !w.is_finite() || *w < 0.0)
            || p.hourly_weights.iter().all(|w| *w == 0.0)
        {
            return Err((
                "presses.hourly_weights".into(),
                format!("must be 24 numbers >= 0, not all 0 (has {})", p.hourly_weights.len()),
            ));
        }
        let r = &self.responders;
        if r.per_centre == 0 {
            return Err(("responders.per_centre".into(), "must be at least 1".into()));
        }
        let m = &r.modes;
        for (key, v) in [("foot", m.foot), ("ebike", m.ebike), ("car", m.car)] {
            if !v.is_finite() || v < 0.0 {
                return Err((format!("responders.modes.{key}"), format!("must be a number >= 0, not {v}")));
            }
        }
        if m.foot + m.ebike + m.car <= 0.0 {
            return Err(("responders.modes".into(), "must give at least one mode a share above 0".into()));
        }
        share("responders.first_aid_share", r.first_aid_share)?;
        share("responders.accept_probability", r.accept_probability)?;
        share("responders.no_answer_probability", r.no_answer_probability)?;
        if r.accept_probability + r.no_answer_probability > 1.0 {
            return Err((
                "responders.no_answer_probability".into(),
                "plus responders.accept_probability must not exceed 1".into(),
            ));
        }
        range("responders.answer_delay_s", r.answer_delay_s)?;
        range("responders.prepare_s", r.prepare_s)?;
        range("responders.on_scene_min", r.on_scene_min)?;
        let x = &self.dispatchers;
        range("dispatchers.close_after_s", x.close_after_s)?;
        range("dispatchers.callback_after_s", x.callback_after_s)?;
        range("dispatchers.suggest_after_s", x.suggest_after_s)?;
        positive("dispatchers.assign_within_eta_min", x.assign_within_eta_min)?;
        range("dispatchers.handover_after_s", x.handover_after_s)?;
        let f = &self.families;
        for (i, v) in f.contacts_shares.iter().enumerate() {
            if !v.is_finite() || *v < 0.0 {
                return Err((format!("families.contacts_shares[{i}]"), format!("must be a number >= 0, not {v}")));
            }
        }
        if f.contacts_shares.iter().sum::<f64>() <= 0.0 {
            return Err(("families.contacts_shares".into(), "must give at least one count a share above 0".into()));
        }
        let c = &f.channels;
        let a = &f.answers;
        for (key, v) in [
            ("channels.sms", c.sms),
            ("channels.voice", c.voice),
            ("channels.push", c.push),
            ("answers.seen", a.seen),
            ("answers.going", a.going),
            ("answers.fine", a.fine),
            ("answers.cannot_help", a.cannot_help),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err((format!("families.{key}"), format!("must be a number >= 0, not {v}")));
            }
        }
        if c.sms + c.voice + c.push <= 0.0 {
            return Err(("families.channels".into(), "must give at least one channel a share above 0".into()));
        }
        if a.seen + a.going + a.fine + a.cannot_help <= 0.0 {
            return Err(("families.answers".into(), "must give at least one answer a share above 0".into()));
        }
        share("families.answer_share", f.answer_share)?;
        positive("families.answer_median_s", f.answer_median_s)?;
        if !f.answer_spread.is_finite() || f.answer_spread < 0.0 {
            return Err(("families.answer_spread".into(), format!("must be a number >= 0, not {}", f.answer_spread)));
        }
        range("families.answer_clip_s", f.answer_clip_s)?;
        range("families.going_eta_min", f.going_eta_min)?;
        if f.going_eta_min[0] < 1.0 || f.going_eta_min[1] > 24.0 * 60.0 {
            return Err((
                "families.going_eta_min".into(),
                format!("must lie within [1, 1440] (the engine's limits), not {:?}", f.going_eta_min),
            ));
        }
        positive("run.hours", self.run.hours)?;
        if !(0.0..24.0).contains(&self.run.start_hour) {
            return Err(("run.start_hour".into(), format!("must lie in 0..24, not {}", self.run.start_hour)));
        }
        check_speedup("run.speedup", self.run.speedup)?;
        let h = &self.health;
        h.check_speed(self.run.speedup)?;
        if h.quiet_heartbeat_s < h.heartbeat_s {
            return Err(("health.quiet_heartbeat_s".into(), "must be at least health.heartbeat_s".into()));
        }
        if !(h.factor.is_finite() && (1.0..=100.0).contains(&h.factor)) {
            return Err(("health.factor".into(), format!("must lie in 1..=100 (anxind's limits), not {}", h.factor)));
        }
        if !(h.grace_s.is_finite() && h.grace_s >= 0.0) {
            return Err(("health.grace_s".into(), format!("must be a number >= 0, not {}", h.grace_s)));
        }
        share("health.watched_share", h.watched_share)?;
        range("health.drain_pct_per_day", h.drain_pct_per_day)?;
        if !(h.rssi_dbm.iter().all(|v| (-150.0..=0.0).contains(v)) && h.rssi_dbm[0] <= h.rssi_dbm[1]) {
            return Err((
                "health.rssi_dbm".into(),
                format!("must be [min, max] within -150..=0 dBm, not {:?}", h.rssi_dbm),
            ));
        }
        let f = &h.faults;
        for (key, v) in [
            ("flat_share", f.flat_share),
            ("off_share", f.off_share),
            ("not_worn_share", f.not_worn_share),
            ("low_share", f.low_share),
            ("back_share", f.back_share),
        ] {
            share(&format!("health.faults.{key}"), v)?;
        }
        if f.flat_share + f.off_share + f.not_worn_share + f.low_share > 1.0 {
            return Err((
                "health.faults".into(),
                "shares add up to more than 1 (a device has one fault at most)".into(),
            ));
        }
        range("health.faults.back_after_min", f.back_after_min)?;
        if let Some(w) = f.within_hours {
            range("health.faults.within_hours", w)?;
            if w[0] >= self.run.hours {
                return Err((
                    "health.faults.within_hours".into(),
                    format!("must begin before run.hours ({}), not at {}", self.run.hours, w[0]),
                ));
            }
        }
        if let Some(s) = &self.surge {
            if !s.at_hour.is_finite() || s.at_hour < 0.0 || s.at_hour >= self.run.hours {
                return Err(("surge.at_hour".into(), format!("must lie in 0..run.hours, not {}", s.at_hour)));
            }
            share("surge.share", s.share)?;
            positive("surge.within_min", s.within_min)?;
        }
        if let Some(p) = &self.programme {
            share("programme.share", p.share)?;
            for (key, days) in [("call_every_days", Some(p.call_every_days)), ("visit_every_days", p.visit_every_days)]
            {
                if days.is_some_and(|d| !(1..=366).contains(&d)) {
                    return Err((format!("programme.{key}"), format!("must lie in 1..=366, not {days:?}")));
                }
            }
            positive("programme.due_within_min", p.due_within_min)?;
            if p.due_within_min > self.run.hours * 60.0 {
                return Err(("programme.due_within_min".into(), "must lie within the run (run.hours)".into()));
            }
            if !(1..=20).contains(&p.max_tries) {
                return Err(("programme.max_tries".into(), format!("must lie in 1..=20, not {}", p.max_tries)));
            }
            let speedup = self.run.speedup;
            if !(p.retry_after_min.is_finite() && p.retry_after_min / speedup >= 1.0) {
                return Err((
                    "programme.retry_after_min".into(),
                    format!("must be at least {speedup} (anxind's 1 minute at {speedup}x), not {}", p.retry_after_min),
                ));
            }
            if !(p.overdue_after_h.is_finite() && p.overdue_after_h / speedup >= 1.0) {
                return Err((
                    "programme.overdue_after_h".into(),
                    format!("must be at least {speedup} (anxind's 1 hour at {speedup}x), not {}", p.overdue_after_h),
                ));
            }
            let o = &p.outcomes;
            for (key, v) in [
                ("well", o.well),
                ("needs_service", o.needs_service),
                ("needs_help", o.needs_help),
                ("no_answer", o.no_answer),
            ] {
                if !v.is_finite() || v < 0.0 {
                    return Err((format!("programme.outcomes.{key}"), format!("must be a number >= 0, not {v}")));
                }
            }
            if o.well + o.needs_service + o.needs_help + o.no_answer <= 0.0 {
                return Err(("programme.outcomes".into(), "must give at least one outcome a share above 0".into()));
            }
            range("programme.handle_after_s", p.handle_after_s)?;
        }
        if let Some(c) = &self.carers {
            range("carers.visit_min", c.visit_min)?;
            range("carers.between_min", c.between_min)?;
            if !(10.0..=5000.0).contains(&c.checkin_radius_m) {
                return Err((
                    "carers.checkin_radius_m".into(),
                    format!("must lie in 10..=5000 (anxind's limits), not {}", c.checkin_radius_m),
                ));
            }
            let wall_min = c.visit_max_min / self.run.speedup;
            if !(wall_min.is_finite() && (0.1..=1440.0).contains(&wall_min)) {
                return Err((
                    "carers.visit_max_min".into(),
                    format!("compressed by run.speedup must lie in 0.1..=1440 wall-clock minutes (anxind's limits), not {wall_min}"),
                ));
            }
            if c.visit_min[1] > 0.8 * c.visit_max_min {
                return Err((
                    "carers.visit_min".into(),
                    "must end below 80% of carers.visit_max_min (an ordinary visit never alarms)".into(),
                ));
            }
            for (key, v) in [
                ("far_share", c.far_share),
                ("still_here_share", c.still_here_share),
                ("forget_share", c.forget_share),
                ("help_share", c.help_share),
            ] {
                share(&format!("carers.{key}"), v)?;
            }
            positive("carers.late_min", c.late_min)?;
        }
        if let Some(sv) = &self.services {
            sv.check(self.run.speedup, self.run.hours)?;
        }
        if self.neighbourhoods.is_empty() {
            return Err(("neighbourhood".into(), "must list at least one [[neighbourhood]]".into()));
        }
        for (i, n) in self.neighbourhoods.iter().enumerate() {
            let key = |k: &str| format!("neighbourhood[{i}].{k} ({})", n.name);
            if !(-90.0..=90.0).contains(&n.lat) || !(-180.0..=180.0).contains(&n.lon) {
                return Err((key("lat/lon"), format!("is not a WGS-84 position: ({}, {})", n.lat, n.lon)));
            }
            positive(&key("weight"), n.weight)?;
            positive(&key("spread_m"), n.spread_m)?;
        }
        let centres: u32 = self.neighbourhoods.iter().map(|n| n.centres).sum();
        if centres != d.community_centres {
            return Err((
                "district.community_centres".into(),
                format!("is {} but the neighbourhoods' centres add up to {centres}", d.community_centres),
            ));
        }
        Ok(())
    }

    /// Share of the 60+ population that is eligible for a device, from the groups named.
    pub fn eligible_share(&self) -> f64 {
        let v = &self.devices;
        let alone = v.share_living_alone;
        let (a70, a80) = (v.share_aged_70_plus, v.share_aged_80_plus);
        // Age and living alone are taken as independent: P(any of the groups) by inclusion
        // over the three age bands.
        let bands = [(1.0 - a70, 60u8), (a70 - a80, 70), (a80, 80)];
        bands
            .iter()
            .map(|&(p, age)| {
                let in_group = |alone_flag: bool| self.is_eligible(age, alone_flag);
                p * (alone * f64::from(u8::from(in_group(true))) + (1.0 - alone) * f64::from(u8::from(in_group(false))))
            })
            .sum()
    }

    /// Whether an elder of this age band (60, 70 or 80) and living situation gets a device.
    pub fn is_eligible(&self, age_band: u8, alone: bool) -> bool {
        self.devices.eligible.iter().any(|g| match g.as_str() {
            "aged_60_plus" => true,
            "aged_70_plus" => age_band >= 70,
            "aged_80_plus" => age_band >= 80,
            "living_alone" => alone,
            "aged_70_plus_living_alone" => age_band >= 70 && alone,
            _ => false,
        })
    }

    /// Devices in the district: eligible elders times uptake, capped by `devices.limit`.
    pub fn device_count(&self) -> u32 {
        let n = (self.district.aged_60_plus as f64 * self.eligible_share() * self.devices.uptake).round() as u32;
        let n = n.max(1);
        if self.devices.limit > 0 {
            n.min(self.devices.limit)
        } else {
            n
        }
    }
}

/// The speed-up must keep the engine's timers whole seconds of wall-clock time.
pub fn check_speedup(key: &str, v: f64) -> Result<(), (String, String)> {
    if v.is_finite() && (1.0..=60.0).contains(&v) {
        Ok(())
    } else {
        Err((key.into(), format!("must lie in 1..=60 (the 60 s offer timeout becomes 60/speedup s), not {v}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOKE: &str = include_str!("../scenarios/smoke.toml");

    #[test]
    fn shipped_scenarios_parse() {
        for (name, text) in [
            ("smoke", SMOKE),
            ("xishan", include_str!("../scenarios/xishan.toml")),
            ("guandu", include_str!("../scenarios/guandu.toml")),
        ] {
            let s = Scenario::parse(text, name).unwrap_or_else(|e| panic!("{e}"));
            assert!(s.device_count() > 0, "{name}");
        }
    }

    #[test]
    fn a_scenario_without_families_takes_the_defaults() {
        let start = SMOKE.find("[families]").unwrap();
        let end = SMOKE.find("[run]").unwrap();
        let old = format!("{}{}", &SMOKE[..start], &SMOKE[end..]);
        let s = Scenario::parse(&old, "old.toml").unwrap_or_else(|e| panic!("{e}"));
        let d = Families::default();
        assert_eq!((s.families.answer_median_s, s.families.contacts_shares), (d.answer_median_s, d.contacts_shares));
        let xishan = Scenario::parse(include_str!("../scenarios/xishan.toml"), "x").unwrap();
        assert_eq!(xishan.families.answer_median_s, d.answer_median_s, "xishan spells out the defaults");
    }

    #[test]
    fn the_welfare_rounds_are_optional_and_their_timers_must_compress_to_anxinds() {
        let guandu = Scenario::parse(include_str!("../scenarios/guandu.toml"), "g").unwrap();
        assert!(guandu.programme.is_none() && guandu.carers.is_none(), "none when absent");
        let smoke = Scenario::parse(SMOKE, "s").unwrap();
        assert!(smoke.programme.is_some() && smoke.carers.is_some());
        // anxind's retry is whole minutes: 30 scenario minutes is half a minute at 60x.
        let quick = SMOKE.replace("retry_after_min = 60", "retry_after_min = 30");
        let e = Scenario::parse(&quick, "s.toml").unwrap_err().to_string();
        assert!(e.contains("programme.retry_after_min"), "{e}");
        // The lone-worker timer takes a tenth of a wall-clock minute at the least.
        let short = SMOKE.replace("visit_max_min = 12", "visit_max_min = 5");
        let e = Scenario::parse(&short, "s.toml").unwrap_err().to_string();
        assert!(e.contains("carers.visit_max_min"), "{e}");
        // An ordinary visit must end well before the timer.
        let long = SMOKE.replace("visit_min = [3, 8]", "visit_min = [3, 11]");
        let e = Scenario::parse(&long, "s.toml").unwrap_err().to_string();
        assert!(e.contains("carers.visit_min"), "{e}");
    }

    #[test]
    fn the_seed_figures_give_plausible_device_counts() {
        let s = Scenario::parse(include_str!("../scenarios/xishan.toml"), "x").unwrap();
        let n = s.device_count();
        assert!((5_000..40_000).contains(&n), "xishan devices {n}");
    }

    #[test]
    fn errors_name_the_key() {
        let bad = SMOKE.replace("fall_share = 0.15", "fall_share = 1.5");
        let e = Scenario::parse(&bad, "s.toml").unwrap_err().to_string();
        assert!(e.contains("presses.fall_share") && e.contains("1.5"), "{e}");
        let typo = SMOKE.replace("fall_share", "fal_share");
        let e = Scenario::parse(&typo, "s.toml").unwrap_err().to_string();
        assert!(e.contains("fal_share"), "{e}");
        let fast = SMOKE.replace("speedup = 60", "speedup = 120");
        let e = Scenario::parse(&fast, "s.toml").unwrap_err().to_string();
        assert!(e.contains("run.speedup"), "{e}");
        let never = SMOKE.replace("answer_share = 0.9", "answer_share = 1.9");
        let e = Scenario::parse(&never, "s.toml").unwrap_err().to_string();
        assert!(e.contains("families.answer_share"), "{e}");
        let fast_beat = SMOKE.replace("heartbeat_s = 600", "heartbeat_s = 300");
        let e = Scenario::parse(&fast_beat, "s.toml").unwrap_err().to_string();
        assert!(e.contains("health.heartbeat_s") && e.contains("600 to"), "anxind's 10 s at 60x: {e}");
        let faults = SMOKE.replace("not_worn_share = 0.03", "not_worn_share = 0.95");
        let e = Scenario::parse(&faults, "s.toml").unwrap_err().to_string();
        assert!(e.contains("health.faults"), "{e}");
        let centres = SMOKE.replace("community_centres = 3", "community_centres = 4");
        let e = Scenario::parse(&centres, "s.toml").unwrap_err().to_string();
        assert!(e.contains("district.community_centres"), "{e}");
    }
}
