//! The dry run: every row of a file turned into a ledger entry or a list of what is wrong with
//! it, and each good entry compared with the ledger (new, changed or unchanged).

use crate::id_number::{parse_id_number, IdNumberError};
use crate::mapping::{Columns, ContactPart, Field, Kind, Mapping, MappingError};
use crate::table::{Row, Table};
use anxin_core::family::Channel;
use anxin_core::geo::{Coordinates, CoordinatesError};
use anxin_core::ids::{DeviceId, ElderId, IdError, ProviderId, ResponderId, StationId};
use anxin_core::registry::{Contact, Device, Elder, ElderProfile, Registry, Responder, Station, TravelMode};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;

/// The problems a row can have, by their machine codes.
pub mod code {
    /// An elder's home position is empty, or not mapped for a new elder.
    pub const MISSING_HOME: &str = "missing_home";
    /// A station's or responder's position is empty, or not mapped for a new one.
    pub const MISSING_POSITION: &str = "missing_position";
    /// A latitude or longitude out of range, or the position 0, 0.
    pub const BAD_COORDINATES: &str = "bad_coordinates";
    /// An elder's or responder's station is not in the ledger.
    pub const UNKNOWN_STATION: &str = "unknown_station";
    /// An elder's phone that another elder already has, in the ledger or earlier in the file.
    pub const DUPLICATE_PHONE: &str = "duplicate_phone";
    /// An ID number that is not a valid GB 11643 number.
    pub const BAD_ID_NUMBER: &str = "bad_id_number";
    /// The same id on an earlier row of the file.
    pub const DUPLICATE_ID: &str = "duplicate_id";
    /// A device's elder is not in the ledger.
    pub const UNKNOWN_ELDER: &str = "unknown_elder";
    /// An id (the row's own, a device's elder, a station) that the ledger's rules refuse.
    pub const BAD_ID: &str = "bad_id";
    /// A cell that should hold a number and does not (or one out of its range).
    pub const BAD_NUMBER: &str = "bad_number";
    /// A cell that should hold one of a few words (yes/no, a channel, a travel mode) and does
    /// not.
    pub const BAD_VALUE: &str = "bad_value";
    /// A field the entry needs is empty, or not mapped for a new entry.
    pub const MISSING_FIELD: &str = "missing_field";
    /// A device's SIM number that is not 5 to 20 digits (with a leading + and spaces or
    /// dashes allowed).
    pub const BAD_SIM: &str = "bad_sim";
    /// A device's SIM number that another device already has, in the ledger or earlier in
    /// the file.
    pub const DUPLICATE_SIM: &str = "duplicate_sim";
    /// A responder's provider is not in the ledger (providers are entered through the admin
    /// API, not imported).
    pub const UNKNOWN_PROVIDER: &str = "unknown_provider";

    /// Every code, for documentation and tests.
    pub const ALL: [&str; 15] = [
        MISSING_HOME,
        MISSING_POSITION,
        BAD_COORDINATES,
        UNKNOWN_STATION,
        DUPLICATE_PHONE,
        BAD_ID_NUMBER,
        DUPLICATE_ID,
        UNKNOWN_ELDER,
        BAD_ID,
        BAD_NUMBER,
        BAD_VALUE,
        MISSING_FIELD,
        BAD_SIM,
        DUPLICATE_SIM,
        UNKNOWN_PROVIDER,
    ];
}

/// One entry of the ledger, as a row of a file gives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "entry", rename_all = "snake_case")]
pub enum Entity {
    Elder(Elder),
    Device(Device),
    Station(Station),
    Responder(Responder),
}

impl Entity {
    pub fn id(&self) -> &str {
        match self {
            Entity::Elder(e) => e.id.as_str(),
            Entity::Device(d) => d.id.as_str(),
            Entity::Station(s) => s.id.as_str(),
            Entity::Responder(r) => r.id.as_str(),
        }
    }
}

/// How a good row compares with the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No entry with this id in the ledger.
    New,
    /// The ledger has the id, and the row (merged with it) differs.
    Changed,
    /// The ledger already holds exactly this: applying the row would change nothing.
    Unchanged,
}

/// A row that passed every check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckedRow {
    /// The spreadsheet's row number.
    pub row: usize,
    pub status: Status,
    /// The entry as it would stand in the ledger after applying the row.
    pub entity: Entity,
}

/// One thing wrong with one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowProblem {
    /// The spreadsheet's row number (the header is row 1 in a file that starts with it).
    pub row: usize,
    /// The header of the column at fault, when one column is.
    pub column: Option<String>,
    /// One of [`code`]'s codes.
    pub code: &'static str,
    pub message: String,
    pub message_zh: String,
}

/// What a file would do to the ledger, and every problem in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub kind: Kind,
    /// Data rows read (rows with every cell empty are not counted).
    pub total: usize,
    /// The rows without problems, in file order.
    pub rows: Vec<CheckedRow>,
    pub new: usize,
    pub changed: usize,
    pub unchanged: usize,
    /// Every problem of every bad row, in file order (a row may have several).
    pub problems: Vec<RowProblem>,
}

impl Report {
    /// How many rows have at least one problem.
    pub fn bad_rows(&self) -> usize {
        let mut rows: Vec<usize> = self.problems.iter().map(|p| p.row).collect();
        rows.dedup();
        rows.len()
    }

    /// The entries that applying the file would write: the new and the changed.
    pub fn to_apply(&self) -> impl Iterator<Item = &Entity> + '_ {
        self.rows.iter().filter(|r| r.status != Status::Unchanged).map(|r| &r.entity)
    }

    /// Writes the new and changed entries into `ledger` (replacing entries with the same id),
    /// as applying the file would. The engine applies through its own command path; this is
    /// for a dry run over several files (stations, then elders, then devices and responders,
    /// each checked against the ledger with the files before it applied) and for tests.
    pub fn apply_to(&self, ledger: &mut Registry) {
        fn upsert<T>(list: &mut Vec<T>, items: Vec<T>, id: impl Fn(&T) -> &str) {
            let mut at: HashMap<String, usize> = list.iter().enumerate().map(|(i, t)| (id(t).to_string(), i)).collect();
            for item in items {
                match at.get(id(&item)) {
                    Some(&i) => list[i] = item,
                    None => {
                        at.insert(id(&item).to_string(), list.len());
                        list.push(item);
                    }
                }
            }
        }
        let (mut elders, mut devices, mut stations, mut responders) = (vec![], vec![], vec![], vec![]);
        for entity in self.to_apply().cloned() {
            match entity {
                Entity::Elder(e) => elders.push(e),
                Entity::Device(d) => devices.push(d),
                Entity::Station(s) => stations.push(s),
                Entity::Responder(r) => responders.push(r),
            }
        }
        upsert(&mut ledger.elders, elders, |e| e.id.as_str());
        upsert(&mut ledger.devices, devices, |d| d.id.as_str());
        upsert(&mut ledger.stations, stations, |s| s.id.as_str());
        upsert(&mut ledger.responders, responders, |r| r.id.as_str());
    }
}

/// How often, in rows, `check` reports progress.
const PROGRESS_EVERY: usize = 1_000;

/// Checks every row of `table`, read through `mapping`, against `ledger` without changing
/// anything. `progress(done, total)` is called every thousand rows and once at the end with
/// `done == total`. Fails only when the mapping does not fit the file.
pub fn check(
    table: &Table,
    mapping: &Mapping,
    ledger: &Registry,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Report, MappingError> {
    mapping.check(table)?;
    let columns = mapping.resolve(table);
    let total = table.rows.len();
    let mut report =
        Report { kind: mapping.kind, total, rows: Vec::new(), new: 0, changed: 0, unchanged: 0, problems: Vec::new() };
    let mut checker = Checker::new(mapping.kind, table, &columns, ledger);
    progress(0, total);
    for (done, row) in table.rows.iter().enumerate() {
        let mut cells = Cells { row, columns: &columns, problems: Vec::new() };
        let entity = checker.row(&mut cells);
        match entity {
            Some((entity, status)) if cells.problems.is_empty() => {
                match status {
                    Status::New => report.new += 1,
                    Status::Changed => report.changed += 1,
                    Status::Unchanged => report.unchanged += 1,
                }
                report.rows.push(CheckedRow { row: row.number(), status, entity });
            }
            _ => report.problems.append(&mut cells.problems),
        }
        if (done + 1) % PROGRESS_EVERY == 0 && done + 1 < total {
            progress(done + 1, total);
        }
    }
    progress(total, total);
    Ok(report)
}

/// One row's cells, read through the mapping, and the problems found in them so far.
struct Cells<'a> {
    row: &'a Row,
    columns: &'a Columns,
    problems: Vec<RowProblem>,
}

impl<'a> Cells<'a> {
    /// The field's cell (trimmed), or `None` when the mapping leaves the field out.
    fn text(&self, field: Field) -> Option<&'a str> {
        self.columns.index(field).map(|i| self.row.get(i))
    }

    fn mapped(&self, field: Field) -> bool {
        self.columns.is_mapped(field)
    }

    fn problem(&mut self, field: Option<Field>, code: &'static str, message: String, message_zh: String) {
        let column = field.and_then(|f| self.columns.header(f));
        self.problems.push(RowProblem { row: self.row.number(), column, code, message, message_zh });
    }

    /// The cell is empty where it must not be; `field` names it, or is unmapped for a new entry.
    fn missing(&mut self, field: Field) {
        if self.mapped(field) {
            let header = self.columns.header(field).unwrap_or_default();
            self.problem(
                Some(field),
                code::MISSING_FIELD,
                format!("{field} is empty (column {header:?})"),
                format!("“{header}”为空"),
            );
        } else {
            self.problem(
                None,
                code::MISSING_FIELD,
                format!("a new entry needs {field}, which the mapping does not map"),
                format!("新记录需要字段 {field}，但映射中没有该列"),
            );
        }
    }

    /// A required text field: `Some(text)` mapped and given, `None` unmapped; an empty cell
    /// is a problem (and `None`).
    fn required_text(&mut self, field: Field) -> Option<&'a str> {
        let text = self.text(field)?;
        if text.is_empty() {
            self.missing(field);
            return None;
        }
        Some(text)
    }

    /// An id: the row's own or a reference. `None` when unmapped, empty (a problem if
    /// `required`) or refused (a problem).
    fn id<T>(&mut self, field: Field, required: bool, parse: impl Fn(String) -> Result<T, IdError>) -> Option<T> {
        let text = self.text(field)?;
        if text.is_empty() {
            if required {
                self.missing(field);
            }
            return None;
        }
        match parse(text.to_string()) {
            Ok(id) => Some(id),
            Err(e) => {
                self.problem(
                    Some(field),
                    code::BAD_ID,
                    format!("{field} {text:?} is not a usable id: {e}"),
                    format!("{field}“{text}”不是有效的编号（只能用 1 到 64 个英文字母、数字及 - _ . :）"),
                );
                None
            }
        }
    }

    /// A number: outer `None` unmapped, inner `None` empty or bad (bad is a problem).
    fn number<T>(&mut self, field: Field, range: Option<(T, T)>) -> Option<Option<T>>
    where
        T: FromStr + PartialOrd + std::fmt::Display + Copy,
    {
        let text = self.text(field)?;
        if text.is_empty() {
            return Some(None);
        }
        let parsed = text.parse::<T>().ok().or_else(|| {
            // Excel may hand a whole number over as `1950.0`.
            let f: f64 = text.parse().ok()?;
            if f.fract() == 0.0 {
                format!("{f:.0}").parse().ok()
            } else {
                None
            }
        });
        match (parsed, range) {
            (Some(n), Some((lo, hi))) if n < lo || n > hi => {
                self.problem(
                    Some(field),
                    code::BAD_NUMBER,
                    format!("{field} {text:?} is outside {lo} to {hi}"),
                    format!("{field}“{text}”超出范围 {lo} 至 {hi}"),
                );
                Some(None)
            }
            (Some(n), _) => Some(Some(n)),
            (None, _) => {
                self.problem(
                    Some(field),
                    code::BAD_NUMBER,
                    format!("{field} {text:?} is not a number"),
                    format!("{field}“{text}”不是数字"),
                );
                Some(None)
            }
        }
    }

    /// A yes/no: outer `None` unmapped, inner `None` empty or bad (bad is a problem).
    fn flag(&mut self, field: Field) -> Option<Option<bool>> {
        let text = self.text(field)?;
        if text.is_empty() {
            return Some(None);
        }
        match parse_flag(text) {
            Some(b) => Some(Some(b)),
            None => {
                self.problem(
                    Some(field),
                    code::BAD_VALUE,
                    format!("{field} {text:?} is not yes or no (true/false, yes/no, 1/0, 是/否)"),
                    format!("{field}“{text}”应为 是 或 否"),
                );
                Some(None)
            }
        }
    }

    /// A position from two columns. Outer `None`: neither is mapped. Inner `None`: a problem
    /// was recorded (`missing` is the code for an empty cell).
    fn position(&mut self, lat: Field, lon: Field, missing: &'static str) -> Option<Option<Coordinates>> {
        if !self.mapped(lat) && !self.mapped(lon) {
            return None;
        }
        let (lat_text, lon_text) = (self.text(lat).unwrap_or(""), self.text(lon).unwrap_or(""));
        if lat_text.is_empty() || lon_text.is_empty() {
            let field = if lat_text.is_empty() { lat } else { lon };
            let (what, what_zh) =
                if missing == code::MISSING_HOME { ("home position", "住址坐标") } else { ("position", "坐标") };
            self.problem(
                Some(field),
                missing,
                format!("the {what} is missing ({field} is empty)"),
                format!("缺少{what_zh}（{field} 为空）"),
            );
            return Some(None);
        }
        let (Some(Some(la)), Some(Some(lo))) = (self.number::<f64>(lat, None), self.number::<f64>(lon, None)) else {
            return Some(None);
        };
        let refused = |cells: &mut Self, field: Field, en: String, zh: String| {
            cells.problem(Some(field), code::BAD_COORDINATES, en, zh);
            Some(None)
        };
        match Coordinates::new(la, lo) {
            Ok(c) if c.is_null_island() => refused(
                self,
                lat,
                format!("the position {la}, {lo} is 0, 0: a blank position, not a place"),
                format!("坐标 {la}, {lo} 为 0, 0，不是有效位置"),
            ),
            Ok(c) => Some(Some(c)),
            Err(CoordinatesError::NotFinite) => {
                self.problem(
                    Some(lat),
                    code::BAD_NUMBER,
                    format!("the position {la}, {lo} is not a pair of finite numbers"),
                    format!("坐标 {la}, {lo} 不是有效数字"),
                );
                Some(None)
            }
            Err(CoordinatesError::LongitudeOutOfRange) => refused(
                self,
                lon,
                format!("longitude {lo} is outside -180 to 180"),
                format!("经度 {lo} 超出 -180 至 180"),
            ),
            Err(_) => refused(
                self,
                lat,
                format!("latitude {la} is outside -90 to 90 (latitude and longitude swapped?)"),
                format!("纬度 {la} 超出 -90 至 90（经纬度是否填反？）"),
            ),
        }
    }
}

/// Yes or no, as ledgers write it.
fn parse_flag(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "是" | "√" => Some(true),
        "false" | "no" | "n" | "0" | "否" => Some(false),
        _ => None,
    }
}

/// A channel by its name or the Chinese word for it.
fn parse_channel(text: &str) -> Option<Channel> {
    Channel::parse(&text.to_ascii_lowercase()).or(match text {
        "短信" => Some(Channel::Sms),
        "电话" | "语音" => Some(Channel::Voice),
        "推送" => Some(Channel::Push),
        _ => None,
    })
}

/// A travel mode by its name or the Chinese word for it.
fn parse_mode(text: &str) -> Option<TravelMode> {
    TravelMode::parse(&text.to_ascii_lowercase()).or(match text {
        "步行" => Some(TravelMode::Foot),
        "电动车" | "电瓶车" => Some(TravelMode::Ebike),
        "汽车" | "开车" => Some(TravelMode::Car),
        _ => None,
    })
}

/// A list cell: items separated by any of 、 , ， ; ； |, trimmed, empty items dropped.
pub(crate) fn split_list(text: &str) -> Vec<String> {
    text.split(['、', ',', '，', ';', '；', '|']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// A phone number as compared for duplicates: its digits, without a leading +86 or 0086.
fn phone_key(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let plus = phone.trim_start().starts_with('+');
    let stripped = if plus { digits.strip_prefix("86") } else { digits.strip_prefix("0086") };
    stripped.map(str::to_string).unwrap_or(digits)
}

/// The shortest and longest SIM number, in digits.
const SIM_DIGITS: (usize, usize) = (5, 20);

/// Whether `text` reads as a SIM card's number: nothing but digits once a leading + and any
/// spaces and dashes are taken out, and [`SIM_DIGITS`] of them.
fn plausible_sim(text: &str) -> bool {
    let rest = text.strip_prefix('+').unwrap_or(text);
    let mut digits = 0;
    for c in rest.chars().filter(|c| !matches!(c, ' ' | '-')) {
        if !c.is_ascii_digit() {
            return false;
        }
        digits += 1;
    }
    (SIM_DIGITS.0..=SIM_DIGITS.1).contains(&digits)
}

/// Numbers that must not be two entries' (elders' phones, devices' SIM cards), by
/// [`phone_key`]: whose each is, and the row that gave it (none: the ledger).
#[derive(Default)]
struct Numbers(HashMap<String, (String, Option<usize>)>);

impl Numbers {
    /// The ledger's numbers, each entry's `(id, number)`, except those of entries whose row
    /// in the file gives their number (`in_file`): theirs is the file's now, so a file may
    /// move a number from one entry to another.
    fn of_ledger<'a>(entries: impl Iterator<Item = (&'a str, Option<&'a str>)>, in_file: &HashSet<&str>) -> Self {
        let mut numbers = Numbers::default();
        for (id, number) in entries {
            if let Some(number) = number.filter(|n| !n.trim().is_empty()) {
                if !in_file.contains(id) {
                    numbers.0.insert(phone_key(number), (id.to_string(), None));
                }
            }
        }
        numbers
    }

    /// Gives `number` to `id` on `row`, unless another entry has it: then that entry's id
    /// and where it has it from, in English and Chinese (`row 4`, `the ledger`).
    fn claim(&mut self, number: &str, id: &str, row: usize) -> Option<(String, String, String)> {
        match self.0.get(&phone_key(number)) {
            Some((owner, _)) if owner == id => None,
            Some((owner, at)) => {
                let (at, at_zh) = match at {
                    Some(row) => (format!("row {row}"), format!("第 {row} 行")),
                    None => ("the ledger".to_string(), "台账".to_string()),
                };
                Some((owner.clone(), at, at_zh))
            }
            None => {
                self.0.insert(phone_key(number), (id.to_string(), Some(row)));
                None
            }
        }
    }
}

/// The ids of the file's rows when the mapping maps both the id and `field`; empty otherwise.
fn ids_giving<'t>(table: &'t Table, columns: &Columns, field: Field) -> HashSet<&'t str> {
    match (columns.index(Field::Id), columns.is_mapped(field)) {
        (Some(id), true) => table.rows.iter().map(|r| r.get(id)).collect(),
        _ => HashSet::new(),
    }
}

/// What the checks remember from row to row: the ledger's indexes and what earlier rows used.
struct Checker<'l> {
    kind: Kind,
    elders: HashMap<&'l str, &'l Elder>,
    devices: HashMap<&'l str, &'l Device>,
    stations: HashMap<&'l str, &'l Station>,
    responders: HashMap<&'l str, &'l Responder>,
    /// The live providers' ids, for responders' `provider_id`.
    providers: HashSet<&'l str>,
    /// Ids seen earlier in the file, with their rows.
    seen: HashMap<String, usize>,
    /// Elders' phones when checking elders, devices' SIM numbers when checking devices.
    numbers: Numbers,
}

impl<'l> Checker<'l> {
    fn new(kind: Kind, table: &Table, columns: &Columns, ledger: &'l Registry) -> Self {
        let numbers = match kind {
            Kind::Elders => Numbers::of_ledger(
                ledger.elders.iter().map(|e| (e.id.as_str(), e.phone.as_deref())),
                &ids_giving(table, columns, Field::Phone),
            ),
            Kind::Devices => Numbers::of_ledger(
                ledger.devices.iter().map(|d| (d.id.as_str(), d.sim.as_deref())),
                &ids_giving(table, columns, Field::Sim),
            ),
            Kind::Stations | Kind::Responders => Numbers::default(),
        };
        Checker {
            kind,
            elders: ledger.elders.iter().map(|e| (e.id.as_str(), e)).collect(),
            devices: ledger.devices.iter().map(|d| (d.id.as_str(), d)).collect(),
            stations: ledger.stations.iter().map(|s| (s.id.as_str(), s)).collect(),
            responders: ledger.responders.iter().map(|r| (r.id.as_str(), r)).collect(),
            providers: ledger.providers.iter().map(|p| p.id.as_str()).collect(),
            seen: HashMap::new(),
            numbers,
        }
    }

    fn row(&mut self, cells: &mut Cells<'_>) -> Option<(Entity, Status)> {
        match self.kind {
            Kind::Elders => self.elder(cells),
            Kind::Devices => self.device(cells),
            Kind::Stations => self.station(cells),
            Kind::Responders => self.responder(cells),
        }
    }

    /// Whether `id` was seen on an earlier row (a problem), remembering it otherwise.
    fn repeated(&mut self, cells: &mut Cells<'_>, id: &str) -> bool {
        let row = cells.row.number();
        match self.seen.get(id) {
            Some(&first) => {
                cells.problem(
                    Some(Field::Id),
                    code::DUPLICATE_ID,
                    format!("id {id:?} is also on row {first}"),
                    format!("编号“{id}”与第 {first} 行重复"),
                );
                true
            }
            None => {
                self.seen.insert(id.to_string(), row);
                false
            }
        }
    }

    /// A station reference, checked against the ledger's stations.
    fn station_ref(&mut self, cells: &mut Cells<'_>, required: bool) -> Option<Option<StationId>> {
        if !cells.mapped(Field::StationId) {
            return None;
        }
        let id = cells.id(Field::StationId, required, StationId::parse)?;
        if !self.stations.contains_key(id.as_str()) {
            cells.problem(
                Some(Field::StationId),
                code::UNKNOWN_STATION,
                format!("station {id:?} is not in the ledger", id = id.as_str()),
                format!("站点“{id}”不在台账中"),
            );
            return Some(None);
        }
        Some(Some(id))
    }

    /// A responder's provider, checked against the ledger's providers. Outer `None`: not
    /// mapped; inner `None`: empty (no provider) or a problem.
    fn provider_ref(&mut self, cells: &mut Cells<'_>) -> Option<Option<ProviderId>> {
        if !cells.mapped(Field::ProviderId) {
            return None;
        }
        let id = cells.id(Field::ProviderId, false, ProviderId::parse);
        if let Some(id) = id.as_ref().filter(|id| !self.providers.contains(id.as_str())) {
            cells.problem(
                Some(Field::ProviderId),
                code::UNKNOWN_PROVIDER,
                format!("provider {id:?} is not in the ledger", id = id.as_str()),
                format!("服务商“{id}”不在台账中"),
            );
            return Some(None);
        }
        Some(id)
    }

    fn elder(&mut self, cells: &mut Cells<'_>) -> Option<(Entity, Status)> {
        let id = cells.id(Field::Id, true, ElderId::parse);
        if let Some(id) = &id {
            self.repeated(cells, id.as_str());
        }
        let current = id.as_ref().and_then(|id| self.elders.get(id.as_str()).copied());
        let is_new = current.is_none();
        let name = cells.required_text(Field::Name);
        let address = cells.required_text(Field::Address);
        if is_new {
            for (field, given) in [(Field::Name, name), (Field::Address, address)] {
                if given.is_none() && !cells.mapped(field) {
                    cells.missing(field);
                }
            }
        }
        let home = match cells.position(Field::HomeLat, Field::HomeLon, code::MISSING_HOME) {
            Some(home) => home,
            None if is_new => {
                cells.problem(
                    None,
                    code::MISSING_HOME,
                    "a new elder needs a home position, and the mapping has no home_lat and home_lon".into(),
                    "新增老人需要住址坐标，但映射中没有经纬度列".into(),
                );
                None
            }
            None => current.map(|e| e.home),
        };
        let phone = cells.text(Field::Phone).map(|p| (!p.is_empty()).then(|| p.to_string()));
        if let (Some(Some(phone)), Some(id)) = (&phone, &id) {
            if let Some((owner, at, at_zh)) = self.numbers.claim(phone, id.as_str(), cells.row.number()) {
                cells.problem(
                    Some(Field::Phone),
                    code::DUPLICATE_PHONE,
                    format!("phone {phone} is already elder {owner}'s ({at})"),
                    format!("电话 {phone} 已属于老人 {owner}（{at_zh}）"),
                );
            }
        }
        let station = self.station_ref(cells, false);
        let id_number = cells.text(Field::IdNumber).map(|text| {
            if text.is_empty() {
                return None;
            }
            match parse_id_number(text) {
                Ok(n) => Some(n),
                Err(e) => {
                    let (en, zh) = id_number_problem(text, e);
                    cells.problem(Some(Field::IdNumber), code::BAD_ID_NUMBER, en, zh);
                    None
                }
            }
        });
        let birth_year = cells.number::<u16>(Field::BirthYear, Some((1900, 2099)));
        let lives_alone = cells.flag(Field::LivesAlone);
        let (lo, hi) = anxin_core::WelfareSchedule::DAYS;
        let call_every = cells.number::<u16>(Field::CallEveryDays, Some((lo, hi)));
        let visit_every = cells.number::<u16>(Field::VisitEveryDays, Some((lo, hi)));
        // Read wider than a level can be, so that `12` is out of range rather than not a number.
        let need_level = cells.number::<u16>(Field::NeedLevel, Some((1, 9)));
        let contacts = self.contacts(cells, current);
        let (id, home) = (id?, home?);
        if !cells.problems.is_empty() {
            return None;
        }
        let mut elder = current.cloned().unwrap_or_else(|| Elder {
            id: id.clone(),
            name: String::new(),
            address: String::new(),
            home,
            phone: None,
            notes: String::new(),
            profile: ElderProfile::default(),
        });
        elder.home = home;
        if let Some(name) = name {
            elder.name = name.to_string();
        }
        if let Some(address) = address {
            elder.address = address.to_string();
        }
        if let Some(phone) = phone {
            elder.phone = phone;
        }
        let text = |field: Field, into: &mut String| {
            if let Some(t) = cells.text(field) {
                *into = t.to_string();
            }
        };
        text(Field::Notes, &mut elder.notes);
        let p = &mut elder.profile;
        text(Field::Mobility, &mut p.mobility);
        text(Field::Language, &mut p.language);
        text(Field::DoorNotes, &mut p.door_notes);
        if let Some(list) = cells.text(Field::Conditions) {
            p.conditions = split_list(list);
        }
        if let Some(list) = cells.text(Field::Medications) {
            p.medications = split_list(list);
        }
        if let Some(station) = station {
            p.station_id = station;
        }
        if let Some(n) = id_number {
            p.id_number = n;
        }
        if let Some(year) = birth_year {
            p.birth_year = year;
        }
        if let Some(alone) = lives_alone {
            p.lives_alone = alone;
        }
        // Mapped and empty: off the programme; unmapped: as the ledger has it.
        if let Some(days) = call_every {
            p.schedule.call_every_days = days;
        }
        if let Some(days) = visit_every {
            p.schedule.visit_every_days = days;
        }
        // Mapped and empty: no level, so no allowance; unmapped: as the ledger has it.
        if let Some(level) = need_level {
            p.need_level = level.map(|l| l as u8);
        }
        p.contacts = contacts?;
        let status = status(current, &elder);
        Some((Entity::Elder(elder), status))
    }

    /// The elder's contacts: the file's contacts 1 to 3 where it maps any of their columns,
    /// the ledger's otherwise (and the ledger's beyond the third). A mapped contact keeps the
    /// ledger's settings the file has no columns for (id, quiet hours, news, language).
    /// `None` when a contact has a problem.
    fn contacts(&self, cells: &mut Cells<'_>, current: Option<&Elder>) -> Option<Vec<Contact>> {
        let before: &[Contact] = current.map_or(&[], |e| &e.profile.contacts);
        let mut out = Vec::new();
        let mut ok = true;
        for i in 0..3 {
            let field = |part| Field::contact(i, part);
            let parts = [ContactPart::Name, ContactPart::Relation, ContactPart::Phone, ContactPart::Channel];
            if !parts.iter().any(|p| cells.mapped(field(*p))) {
                out.extend(before.get(i).cloned());
                continue;
            }
            let mut contact = before.get(i).cloned().unwrap_or_default();
            let name = cells.text(field(ContactPart::Name));
            let relation = cells.text(field(ContactPart::Relation));
            let phone = cells.text(field(ContactPart::Phone));
            let channel = cells.text(field(ContactPart::Channel));
            let given = |t: Option<&str>| t.is_some_and(|t| !t.is_empty());
            if !given(name) && !given(phone) && !given(relation) {
                // The file says there is no such contact (a channel alone says nothing).
                continue;
            }
            if let Some(name) = name {
                contact.name = name.to_string();
            }
            if let Some(relation) = relation {
                contact.relation = relation.to_string();
            }
            if let Some(phone) = phone {
                contact.phone = phone.to_string();
            }
            if contact.phone.is_empty() {
                cells.missing(field(ContactPart::Phone));
                ok = false;
            }
            match channel.filter(|c| !c.is_empty()) {
                Some(text) => match parse_channel(text) {
                    Some(c) => contact.channel = c,
                    None => {
                        let f = field(ContactPart::Channel);
                        cells.problem(
                            Some(f),
                            code::BAD_VALUE,
                            format!("{f} {text:?} is not sms, voice or push"),
                            format!("{f}“{text}”应为 短信、电话 或 推送"),
                        );
                        ok = false;
                    }
                },
                None if channel.is_some() => contact.channel = Channel::default(),
                None => {}
            }
            out.push(contact);
        }
        out.extend(before.iter().skip(3).cloned());
        ok.then_some(out)
    }

    fn device(&mut self, cells: &mut Cells<'_>) -> Option<(Entity, Status)> {
        let id = cells.id(Field::Id, true, DeviceId::parse);
        if let Some(id) = &id {
            self.repeated(cells, id.as_str());
        }
        let elder_id = cells.id(Field::ElderId, true, ElderId::parse);
        if let Some(elder) = &elder_id {
            if !self.elders.contains_key(elder.as_str()) {
                cells.problem(
                    Some(Field::ElderId),
                    code::UNKNOWN_ELDER,
                    format!("elder {elder} is not in the ledger"),
                    format!("老人“{elder}”不在台账中"),
                );
            }
        }
        let sim = cells.text(Field::Sim).filter(|text| !text.is_empty());
        if let Some(sim) = sim {
            if !plausible_sim(sim) {
                let (lo, hi) = SIM_DIGITS;
                cells.problem(
                    Some(Field::Sim),
                    code::BAD_SIM,
                    format!("sim {sim:?} is not a phone number: {lo} to {hi} digits, with a leading + and spaces or dashes allowed"),
                    format!("SIM 卡号“{sim}”不是电话号码：应为 {lo} 至 {hi} 位数字，可带开头的 + 及空格或短横线"),
                );
            } else if let Some(id) = &id {
                if let Some((owner, at, at_zh)) = self.numbers.claim(sim, id.as_str(), cells.row.number()) {
                    cells.problem(
                        Some(Field::Sim),
                        code::DUPLICATE_SIM,
                        format!("sim {sim} is already device {owner}'s ({at})"),
                        format!("SIM 卡号 {sim} 已属于设备 {owner}（{at_zh}）"),
                    );
                }
            }
        }
        let (id, elder_id) = (id?, elder_id?);
        if !cells.problems.is_empty() {
            return None;
        }
        let current = self.devices.get(id.as_str()).copied();
        // Mapped and empty: the default model, and no SIM; unmapped: as the ledger has it.
        let model = match cells.text(Field::Model) {
            Some(text) => (!text.is_empty()).then(|| text.to_string()),
            None => current.and_then(|d| d.model.clone()),
        };
        let sim = match cells.text(Field::Sim) {
            Some(_) => sim.map(str::to_string),
            None => current.and_then(|d| d.sim.clone()),
        };
        let device = Device { id, elder_id, model, sim };
        let status = status(current, &device);
        Some((Entity::Device(device), status))
    }

    fn station(&mut self, cells: &mut Cells<'_>) -> Option<(Entity, Status)> {
        let id = cells.id(Field::Id, true, StationId::parse);
        if let Some(id) = &id {
            self.repeated(cells, id.as_str());
        }
        let current = id.as_ref().and_then(|id| self.stations.get(id.as_str()).copied());
        let name = cells.required_text(Field::Name);
        if current.is_none() && !cells.mapped(Field::Name) {
            cells.missing(Field::Name);
        }
        let position = self.position(cells, current.map(|s| s.position));
        let phone = cells.text(Field::Phone).map(|p| (!p.is_empty()).then(|| p.to_string()));
        let circle = cells.number::<u32>(Field::ServiceCircleMin, Some((1, 24 * 60)));
        let zone = cells.number::<u32>(Field::Zone, Some((0, anxin_core::Zone::LIMIT - 1)));
        let (id, position) = (id?, position?);
        if !cells.problems.is_empty() {
            return None;
        }
        let mut station = current.cloned().unwrap_or_else(|| Station {
            id,
            name: String::new(),
            position,
            phone: None,
            service_circle_min: None,
            zone: Default::default(),
        });
        station.position = position;
        if let Some(name) = name {
            station.name = name.to_string();
        }
        if let Some(phone) = phone {
            station.phone = phone;
        }
        if let Some(circle) = circle {
            station.service_circle_min = circle;
        }
        // In range (checked above); an empty cell keeps the ledger's zone (0 for a new one).
        if let Some(Some(zone)) = zone.map(|z| z.and_then(|z| anxin_core::Zone::try_from(z).ok())) {
            station.zone = zone;
        }
        let status = status(current, &station);
        Some((Entity::Station(station), status))
    }

    /// A station's or responder's position: the file's if mapped, else `current`; a problem
    /// (and `None`) when neither.
    fn position(&self, cells: &mut Cells<'_>, current: Option<Coordinates>) -> Option<Coordinates> {
        match cells.position(Field::Lat, Field::Lon, code::MISSING_POSITION) {
            Some(position) => position,
            None if current.is_some() => current,
            None => {
                cells.problem(
                    None,
                    code::MISSING_POSITION,
                    "a new entry needs a position, and the mapping has no lat and lon".into(),
                    "新记录需要坐标，但映射中没有经纬度列".into(),
                );
                None
            }
        }
    }

    fn responder(&mut self, cells: &mut Cells<'_>) -> Option<(Entity, Status)> {
        let id = cells.id(Field::Id, true, ResponderId::parse);
        if let Some(id) = &id {
            self.repeated(cells, id.as_str());
        }
        let current = id.as_ref().and_then(|id| self.responders.get(id.as_str()).copied());
        let name = cells.required_text(Field::Name);
        let station = self.station_ref(cells, true);
        if current.is_none() {
            for field in [Field::Name, Field::StationId] {
                if !cells.mapped(field) {
                    cells.missing(field);
                }
            }
        }
        let position = self.position(cells, current.map(|r| r.position));
        let phone = cells.text(Field::Phone).map(|p| (!p.is_empty()).then(|| p.to_string()));
        let mode = cells.text(Field::Mode).map(|text| {
            if text.is_empty() {
                return Some(TravelMode::default());
            }
            let mode = parse_mode(text);
            if mode.is_none() {
                cells.problem(
                    Some(Field::Mode),
                    code::BAD_VALUE,
                    format!("mode {text:?} is not foot, ebike or car"),
                    format!("出行方式“{text}”应为 步行、电动车 或 汽车"),
                );
            }
            mode
        });
        let on_duty = cells.flag(Field::OnDuty);
        let provider = self.provider_ref(cells);
        let (id, position) = (id?, position?);
        let station = match (station, current) {
            (Some(Some(station)), _) => station,
            (None, Some(r)) => r.station_id.clone(),
            _ => return None,
        };
        if !cells.problems.is_empty() {
            return None;
        }
        let mut responder = current.cloned().unwrap_or_else(|| Responder {
            id,
            name: String::new(),
            station_id: station.clone(),
            phone: None,
            position,
            on_duty: false,
            mode: TravelMode::default(),
            skills: Vec::new(),
            position_at: None,
            token_sha256: None,
            provider_id: None,
        });
        responder.station_id = station;
        if responder.position != position {
            // The file's position is a registered base, not a phone's fix.
            responder.position = position;
            responder.position_at = None;
        }
        if let Some(name) = name {
            responder.name = name.to_string();
        }
        if let Some(phone) = phone {
            responder.phone = phone;
        }
        if let Some(Some(mode)) = mode {
            responder.mode = mode;
        }
        if let Some(skills) = cells.text(Field::Skills) {
            responder.skills = split_list(skills);
        }
        if let Some(Some(on_duty)) = on_duty {
            responder.on_duty = on_duty;
        }
        // Mapped and empty: no provider (not a service worker); unmapped: as the ledger has it.
        if let Some(provider) = provider {
            responder.provider_id = provider;
        }
        let status = status(current, &responder);
        Some((Entity::Responder(responder), status))
    }
}

/// New, changed or unchanged, against the ledger's current entry.
fn status<T: PartialEq>(current: Option<&T>, merged: &T) -> Status {
    match current {
        None => Status::New,
        Some(c) if c == merged => Status::Unchanged,
        Some(_) => Status::Changed,
    }
}

/// An ID number's problem in English and Chinese.
fn id_number_problem(text: &str, error: IdNumberError) -> (String, String) {
    match error {
        IdNumberError::Length { len } => (
            format!(
                "ID number {text:?} has {len} characters, not 18 (a number Excel stored as a number loses its last digits: format the column as text)"
            ),
            format!("身份证号“{text}”为 {len} 位，应为 18 位（Excel 按数字保存会丢失末几位，请把该列设为文本）"),
        ),
        IdNumberError::Characters => (
            format!("ID number {text:?} must be 17 digits and a digit or X"),
            format!("身份证号“{text}”应为 17 位数字加 1 位数字或 X"),
        ),
        IdNumberError::BirthDate => (
            format!("ID number {text:?} does not hold a real birth date (characters 7 to 14)"),
            format!("身份证号“{text}”中的出生日期（第 7 至 14 位）无效"),
        ),
        IdNumberError::CheckDigit { expected } => (
            format!("ID number {text:?} fails its check digit (the first 17 digits give {expected})"),
            format!("身份证号“{text}”校验位错误（按前 17 位应为 {expected}）"),
        ),
    }
}
