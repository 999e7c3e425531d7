//! Which column of a file holds which field of the ledger: a mapping, saved as JSON and
//! reused for every file an office hands over in the same layout.

use crate::table::Table;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use thiserror::Error;

/// What a file holds: one kind of the ledger's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Elders,
    Devices,
    Stations,
    Responders,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Elders, Kind::Devices, Kind::Stations, Kind::Responders];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Elders => "elders",
            Kind::Devices => "devices",
            Kind::Stations => "stations",
            Kind::Responders => "responders",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The fields a file of this kind may map, in the order export writes them.
    pub fn fields(self) -> &'static [Field] {
        use Field::*;
        match self {
            Kind::Elders => &[
                Id,
                Name,
                Address,
                HomeLat,
                HomeLon,
                Phone,
                Notes,
                StationId,
                IdNumber,
                BirthYear,
                LivesAlone,
                Conditions,
                Medications,
                Mobility,
                Language,
                DoorNotes,
                CallEveryDays,
                VisitEveryDays,
                NeedLevel,
                Contact1Name,
                Contact1Relation,
                Contact1Phone,
                Contact1Channel,
                Contact2Name,
                Contact2Relation,
                Contact2Phone,
                Contact2Channel,
                Contact3Name,
                Contact3Relation,
                Contact3Phone,
                Contact3Channel,
            ],
            Kind::Devices => &[Id, ElderId, Model, Sim],
            Kind::Stations => &[Id, Name, Lat, Lon, Phone, ServiceCircleMin, Zone],
            Kind::Responders => &[Id, Name, StationId, Phone, Lat, Lon, Mode, Skills, OnDuty, ProviderId],
        }
    }

    /// The fields a mapping of this kind must map: the source's id (what makes a re-import
    /// idempotent), and for devices the elder they belong to.
    pub fn required(self) -> &'static [Field] {
        match self {
            Kind::Devices => &[Field::Id, Field::ElderId],
            _ => &[Field::Id],
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field of the ledger that a column can hold. Its name (`as_str`, and its JSON form) is
/// also the header export writes for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The entry's id in the source; an elder's is kept as the ledger's id.
    Id,
    Name,
    Address,
    HomeLat,
    HomeLon,
    Phone,
    Notes,
    StationId,
    IdNumber,
    BirthYear,
    LivesAlone,
    Conditions,
    Medications,
    Mobility,
    Language,
    DoorNotes,
    /// The welfare programme's call every this many days (1 to 366).
    CallEveryDays,
    /// The welfare programme's home visit every this many days (1 to 366).
    VisitEveryDays,
    #[serde(rename = "contact1_name")]
    Contact1Name,
    #[serde(rename = "contact1_relation")]
    Contact1Relation,
    #[serde(rename = "contact1_phone")]
    Contact1Phone,
    #[serde(rename = "contact1_channel")]
    Contact1Channel,
    #[serde(rename = "contact2_name")]
    Contact2Name,
    #[serde(rename = "contact2_relation")]
    Contact2Relation,
    #[serde(rename = "contact2_phone")]
    Contact2Phone,
    #[serde(rename = "contact2_channel")]
    Contact2Channel,
    #[serde(rename = "contact3_name")]
    Contact3Name,
    #[serde(rename = "contact3_relation")]
    Contact3Relation,
    #[serde(rename = "contact3_phone")]
    Contact3Phone,
    #[serde(rename = "contact3_channel")]
    Contact3Channel,
    ElderId,
    /// A device's model, which sets how long it may be silent (`[health.models]`).
    Model,
    /// The number of a device's SIM card, so that a call from it is the device's: 5 to 20
    /// digits, with a leading + and spaces or dashes allowed. Kept as written.
    Sim,
    Lat,
    Lon,
    ServiceCircleMin,
    /// The zone a station (its responders and the elders enrolled with it) is run in, 0 to
    /// 8191 (`anxin_core::zone`).
    Zone,
    Mode,
    Skills,
    OnDuty,
    /// An elder's assessed level of need for home-care services (1 = most, to 9), which sets
    /// their monthly allowance (`[services] monthly_allowance_yuan`).
    NeedLevel,
    /// The provider a responder works for, which makes them a service worker: offered the
    /// provider's orders, never an emergency by the ladder. Must be in the ledger.
    ProviderId,
}

/// One of a contact's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContactPart {
    Name,
    Relation,
    Phone,
    Channel,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        use Field::*;
        match self {
            Id => "id",
            Name => "name",
            Address => "address",
            HomeLat => "home_lat",
            HomeLon => "home_lon",
            Phone => "phone",
            Notes => "notes",
            StationId => "station_id",
            IdNumber => "id_number",
            BirthYear => "birth_year",
            LivesAlone => "lives_alone",
            Conditions => "conditions",
            Medications => "medications",
            Mobility => "mobility",
            Language => "language",
            DoorNotes => "door_notes",
            CallEveryDays => "call_every_days",
            VisitEveryDays => "visit_every_days",
            Contact1Name => "contact1_name",
            Contact1Relation => "contact1_relation",
            Contact1Phone => "contact1_phone",
            Contact1Channel => "contact1_channel",
            Contact2Name => "contact2_name",
            Contact2Relation => "contact2_relation",
            Contact2Phone => "contact2_phone",
            Contact2Channel => "contact2_channel",
            Contact3Name => "contact3_name",
            Contact3Relation => "contact3_relation",
            Contact3Phone => "contact3_phone",
            Contact3Channel => "contact3_channel",
            ElderId => "elder_id",
            Model => "model",
            Sim => "sim",
            Lat => "lat",
            Lon => "lon",
            ServiceCircleMin => "service_circle_min",
            Zone => "zone",
            Mode => "mode",
            Skills => "skills",
            OnDuty => "on_duty",
            NeedLevel => "need_level",
            ProviderId => "provider_id",
        }
    }

    /// The contact column for contact `index` (0, 1 or 2) and `part`.
    pub(crate) fn contact(index: usize, part: ContactPart) -> Field {
        use Field::*;
        const TABLE: [[Field; 4]; 3] = [
            [Contact1Name, Contact1Relation, Contact1Phone, Contact1Channel],
            [Contact2Name, Contact2Relation, Contact2Phone, Contact2Channel],
            [Contact3Name, Contact3Relation, Contact3Phone, Contact3Channel],
        ];
        let part = match part {
            ContactPart::Name => 0,
            ContactPart::Relation => 1,
            ContactPart::Phone => 2,
            ContactPart::Channel => 3,
        };
        TABLE[index][part]
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which header holds each field, for one kind of file. Fields left out are not in the file:
/// an update keeps the ledger's value for them (see the crate's docs, "Merge rule").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mapping {
    pub kind: Kind,
    /// Field → the header of the column that holds it.
    pub columns: BTreeMap<Field, String>,
}

/// Why a mapping does not fit a file (every reason at once).
#[derive(Debug, Clone, PartialEq, Eq, Error, Default)]
#[error("{}", self.describe())]
pub struct MappingError {
    /// Mapped headers the file's header row does not have.
    pub missing_headers: Vec<String>,
    /// Headers that stand twice in the file, so which column is meant is unclear.
    pub ambiguous_headers: Vec<String>,
    /// Mapped fields that files of the mapping's kind do not have.
    pub unknown_fields: Vec<Field>,
    /// Fields the kind needs that the mapping leaves out (and the other half of a position
    /// mapped alone).
    pub unmapped_required: Vec<Field>,
}

impl MappingError {
    fn is_empty(&self) -> bool {
        self.missing_headers.is_empty()
            && self.ambiguous_headers.is_empty()
            && self.unknown_fields.is_empty()
            && self.unmapped_required.is_empty()
    }

    fn describe(&self) -> String {
        let quoted = |v: &[String]| v.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", ");
        let names = |v: &[Field]| v.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ");
        let mut parts = Vec::new();
        if !self.missing_headers.is_empty() {
            parts.push(format!("the file has no column {}", quoted(&self.missing_headers)));
        }
        if !self.ambiguous_headers.is_empty() {
            parts.push(format!("the file has more than one column {}", quoted(&self.ambiguous_headers)));
        }
        if !self.unknown_fields.is_empty() {
            parts.push(format!("not a field of this kind: {}", names(&self.unknown_fields)));
        }
        if !self.unmapped_required.is_empty() {
            parts.push(format!("the mapping must map {}", names(&self.unmapped_required)));
        }
        parts.join("; ")
    }
}

impl Mapping {
    /// Every field of `kind` under its own name: the headers export writes.
    pub fn default_for(kind: Kind) -> Mapping {
        Mapping { kind, columns: kind.fields().iter().map(|f| (*f, f.as_str().to_string())).collect() }
    }

    /// The mapping an import takes when none is named: each of the kind's fields whose own
    /// name (the header export writes) is a header of the file. A file written before a
    /// column was added, or with only some columns, imports; what it has no column for stays
    /// as the ledger has it. Finds the header row below a title as
    /// [`Mapping::locate_header`] does, by the kind's required columns.
    pub fn default_for_file(kind: Kind, table: &mut Table) -> Mapping {
        let required =
            Mapping { kind, columns: kind.required().iter().map(|f| (*f, f.as_str().to_string())).collect() };
        required.locate_header(table);
        let columns = kind
            .fields()
            .iter()
            .filter(|f| table.headers.iter().any(|h| h == f.as_str()))
            .map(|f| (*f, f.as_str().to_string()))
            .collect();
        Mapping { kind, columns }
    }

    /// Checks that the mapping fits `table`: every mapped header is in the file (once), every
    /// field belongs to the kind, and the kind's required fields are mapped.
    pub fn check(&self, table: &Table) -> Result<(), MappingError> {
        let mut error = MappingError::default();
        for (field, header) in &self.columns {
            if !self.kind.fields().contains(field) {
                error.unknown_fields.push(*field);
            }
            let header = header.trim();
            match table.headers.iter().filter(|h| *h == header).count() {
                0 => error.missing_headers.push(header.to_string()),
                1 => {}
                _ => error.ambiguous_headers.push(header.to_string()),
            }
        }
        error.missing_headers.dedup();
        error.ambiguous_headers.dedup();
        error.unmapped_required =
            self.kind.required().iter().filter(|f| !self.columns.contains_key(f)).copied().collect();
        // A position takes both its columns.
        for pair in [[Field::HomeLat, Field::HomeLon], [Field::Lat, Field::Lon]] {
            for (a, b) in [(pair[0], pair[1]), (pair[1], pair[0])] {
                if self.columns.contains_key(&a) && !self.columns.contains_key(&b) {
                    error.unmapped_required.push(b);
                }
            }
        }
        if error.is_empty() {
            Ok(())
        } else {
            Err(error)
        }
    }

    /// Finds the header row when the sheet has a title (or notes) above it: if the table's
    /// header row lacks a header the mapping names, the first of the next ten rows that has
    /// them all becomes the header row, and the rows above it are dropped. Returns whether the
    /// header row moved. Call before [`Mapping::check`] and `check`.
    pub fn locate_header(&self, table: &mut Table) -> bool {
        let fits = |cells: &[String]| self.columns.values().all(|h| cells.iter().any(|c| c == h.trim()));
        if fits(&table.headers) {
            return false;
        }
        for i in 0..table.rows.len().min(HEADER_SEARCH_ROWS) {
            let cells: Vec<String> = table.rows[i].cells().map(|c| c.trim().to_string()).collect();
            if fits(&cells) {
                table.header_row = table.rows[i].number();
                table.headers = cells;
                table.rows.drain(..=i);
                return true;
            }
        }
        false
    }

    /// Each mapped field's column in `table` (after [`Mapping::check`] has passed).
    pub(crate) fn resolve(&self, table: &Table) -> Columns {
        let mut at = [None; FIELD_COUNT];
        for (field, header) in &self.columns {
            at[*field as usize] = table.column(header);
        }
        Columns { at, headers: self.columns.clone() }
    }
}

/// How many rows below the first [`Mapping::locate_header`] looks through.
const HEADER_SEARCH_ROWS: usize = 10;

const FIELD_COUNT: usize = Field::ProviderId as usize + 1;

/// A mapping resolved against one file: each field's column index, if mapped.
#[derive(Debug)]
pub(crate) struct Columns {
    at: [Option<usize>; FIELD_COUNT],
    headers: BTreeMap<Field, String>,
}

impl Columns {
    pub(crate) fn index(&self, field: Field) -> Option<usize> {
        self.at[field as usize]
    }

    pub(crate) fn is_mapped(&self, field: Field) -> bool {
        self.index(field).is_some()
    }

    /// The header of `field`'s column, for problem reports.
    pub(crate) fn header(&self, field: Field) -> Option<String> {
        self.headers.get(&field).cloned()
    }
}
