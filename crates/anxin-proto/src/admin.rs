//! The administration API's bodies: what a ledger page asks for and is given, shared by the
//! HTTP side (which serves them as JSON) and the store (which reads them).

use anxin_core::{Entry, LedgerAction, LedgerKind, Timestamp};
use serde::{Deserialize, Serialize};

/// What a ledger page asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerQuery {
    pub kind: LedgerKind,
    /// Matched anywhere in the id, name, phone, (elders) address or (devices) elder id and SIM
    /// number, ignoring ASCII case.
    pub search: Option<String>,
    /// Elders enrolled with, or responders belonging to, this station.
    pub station: Option<String>,
    /// Devices of this elder.
    pub elder: Option<String>,
    /// `false`: live entries only (the default); `true`: retired ones only.
    pub retired: bool,
    pub offset: u32,
    pub limit: u32,
}

impl LedgerQuery {
    pub fn new(kind: LedgerKind) -> Self {
        Self { kind, search: None, station: None, elder: None, retired: false, offset: 0, limit: 50 }
    }
}

/// One entry as stored, with its tag and, once retired, when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerItem {
    pub entry: Entry,
    pub etag: String,
    pub retired_at: Option<Timestamp>,
}

/// One page of entries, and how many match in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerPage {
    pub items: Vec<LedgerItem>,
    pub total: u64,
}

/// One line of an entry's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LedgerEvent {
    pub seq: u64,
    pub at: Timestamp,
    pub actor: String,
    pub action: LedgerAction,
    /// The entry as it became (as it was, for a retirement), as JSON.
    pub body: serde_json::Value,
}

/// A device's broker account as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAccountRow {
    pub id: String,
    /// Mosquitto's `$7$` hash, when the password was set through the ledger.
    pub password_hash: Option<String>,
    pub retired: bool,
}

/// An incident as an entry's history lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentBrief {
    pub id: u64,
    pub device_id: String,
    pub elder_id: String,
    pub kind: String,
    pub state: String,
    pub pressed_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<&anxin_core::Incident> for IncidentBrief {
    fn from(i: &anxin_core::Incident) -> Self {
        Self {
            id: i.id.0,
            device_id: i.device_id.to_string(),
            elder_id: i.elder_id.to_string(),
            kind: i.kind.as_str().to_string(),
            state: i.state.as_str().to_string(),
            pressed_at: i.pressed_at,
            updated_at: i.updated_at,
        }
    }
}

/// `GET /api/v1/admin/{kind}/{id}/history`: the entry's changes and, for an elder or a
/// device, its incidents, the latest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntryHistory {
    pub changes: Vec<LedgerEvent>,
    #[serde(default)]
    pub incidents: Vec<IncidentBrief>,
}

/// `POST /api/v1/admin/imports`: what file it is and how to read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRequest {
    /// `elders`, `devices`, `stations` or `responders`.
    pub kind: String,
    /// `csv` or `xlsx`.
    pub format: String,
    /// `auto` (the default), `utf-8` or `gbk`; CSV only.
    #[serde(default)]
    pub encoding: Option<String>,
    /// A saved mapping's name; none: the default columns (those an export writes).
    #[serde(default)]
    pub mapping: Option<String>,
    /// An XLSX sheet's name; none: the first.
    #[serde(default)]
    pub sheet: Option<String>,
}

/// A file read and checked against the ledger: the dry run's report (every bad row and why,
/// and how many rows are new, changed or unchanged), and the entries to apply (new and
/// changed rows only, so a second import of the same file applies nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct ImportChecked {
    pub report: serde_json::Value,
    pub entries: Vec<Entry>,
}

/// An error body: a stable `code`, the message, and each field's problem for a form.
#[derive(Debug, Serialize, Deserialize)]
pub struct AdminError {
    pub code: String,
    pub error: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<anxin_core::FieldError>,
}

/// What a change answers: the entry's tag, and a device's password when it was made up
/// (shown this once).
#[derive(Debug, Serialize, Deserialize)]
pub struct Changed {
    pub kind: LedgerKind,
    pub id: String,
    /// `created`, `updated` or `retired`; absent when nothing changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<anxin_core::LedgerAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// An import as the page sees it while it runs and after.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportJob {
    pub id: String,
    /// `checking`, `applying`, `done` or `failed`.
    pub state: String,
    /// Whether this job applies its rows (otherwise a dry run).
    pub apply: bool,
    /// Rows checked (while checking) or applied (while applying), of `total`.
    pub done: usize,
    pub total: usize,
    /// The dry run's report, once checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<serde_json::Value>,
    /// Rows the engine took, and those it refused with why (a row that changed since the
    /// check, say).
    pub applied: usize,
    pub refused: Vec<RefusedRow>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefusedRow {
    pub id: String,
    pub code: String,
    pub error: String,
}
