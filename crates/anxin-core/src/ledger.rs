//! Changing the ledger while the engine runs: what an administrator (or an import) asks
//! ([`Amend`]), the checks every entry must pass before the engine takes it ([`check`]), what
//! the engine logs when it takes it ([`LedgerRecord`]), and the entity tags that catch two
//! people editing the same entry ([`etag`]).
//!
//! A change goes through the engine's own command path, so the engine stays the one writer:
//! it checks the change against the live state (a device with an open incident is not
//! retired, a responder on a job is not deleted), applies it, and appends a [`LedgerRecord`]
//! to the outbox. The record is stored in the same commit as the row it changes, and is the
//! audit trail (`ledger_events`, with its actor). See `docs/architecture.md`, "The live ledger".

use crate::ids::Timestamp;
use crate::registry::{Device, Elder, Responder, Staff, Station};
use crate::service::Provider;
use serde::{Deserialize, Serialize};

/// The kinds of entry in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    Elder,
    Device,
    Station,
    Responder,
    Staff,
    /// A contracted home-care provider (see [`crate::service`]).
    Provider,
}

impl LedgerKind {
    pub const ALL: [LedgerKind; 6] = [
        LedgerKind::Elder,
        LedgerKind::Device,
        LedgerKind::Station,
        LedgerKind::Responder,
        LedgerKind::Staff,
        LedgerKind::Provider,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LedgerKind::Elder => "elder",
            LedgerKind::Device => "device",
            LedgerKind::Station => "station",
            LedgerKind::Responder => "responder",
            LedgerKind::Staff => "staff",
            LedgerKind::Provider => "provider",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for LedgerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the ledger, whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    Elder(Elder),
    Device(Device),
    Station(Station),
    Responder(Responder),
    Staff(Staff),
    Provider(Provider),
}

impl Entry {
    pub fn kind(&self) -> LedgerKind {
        match self {
            Entry::Elder(_) => LedgerKind::Elder,
            Entry::Device(_) => LedgerKind::Device,
            Entry::Station(_) => LedgerKind::Station,
            Entry::Responder(_) => LedgerKind::Responder,
            Entry::Staff(_) => LedgerKind::Staff,
            Entry::Provider(_) => LedgerKind::Provider,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Entry::Elder(e) => e.id.as_str(),
            Entry::Device(d) => d.id.as_str(),
            Entry::Station(s) => s.id.as_str(),
            Entry::Responder(r) => r.id.as_str(),
            Entry::Staff(s) => s.id.as_str(),
            Entry::Provider(p) => p.id.as_str(),
        }
    }
}

/// What is asked of an entry.
#[derive(Debug, Clone, PartialEq)]
pub enum Amendment {
    /// A new entry: refused if the id is live already.
    Create(Entry),
    /// A change to a live entry: refused if there is none.
    Update(Entry),
    /// Either (an import): an entry equal to the live one changes nothing.
    Upsert(Entry),
    /// The entry leaves the live ledger; its row and history stay.
    Retire(LedgerKind, String),
}

impl Amendment {
    pub fn kind(&self) -> LedgerKind {
        match self {
            Amendment::Create(e) | Amendment::Update(e) | Amendment::Upsert(e) => e.kind(),
            Amendment::Retire(k, _) => *k,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Amendment::Create(e) | Amendment::Update(e) | Amendment::Upsert(e) => e.id(),
            Amendment::Retire(_, id) => id,
        }
    }
}

/// A change to the ledger, as the engine takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Amend {
    pub amendment: Amendment,
    /// The entity tag the editor saw ([`etag`]); the change is refused as stale if the entry
    /// has changed since. `None`: no check (creation, an import).
    pub if_match: Option<String>,
    /// A device's broker password, new or reset: passed to the broker after the commit,
    /// never stored (the store keeps `secret.hash`) and never logged.
    pub secret: Option<DeviceSecret>,
}

impl Amend {
    pub fn new(amendment: Amendment) -> Self {
        Self { amendment, if_match: None, secret: None }
    }
}

/// A device's broker password: the plaintext for a broker that hashes it itself (Mosquitto's
/// dynamic security), and Mosquitto's `$7$` hash for the store and the embedded broker.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceSecret {
    pub password: String,
    pub hash: String,
}

impl std::fmt::Debug for DeviceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceSecret(..)")
    }
}

/// What became of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerAction {
    Created,
    Updated,
    Retired,
}

impl LedgerAction {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerAction::Created => "created",
            LedgerAction::Updated => "updated",
            LedgerAction::Retired => "retired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [LedgerAction::Created, LedgerAction::Updated, LedgerAction::Retired].into_iter().find(|a| a.as_str() == s)
    }
}

/// One change the engine took, as it is stored (the row, and a `ledger_events` line) and then
/// passed on (to the broker's accounts, the sign-in tables, the consoles' maps).
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerRecord {
    /// The ledger's own sequence, one per change, in the engine's order.
    pub seq: u64,
    pub at: Timestamp,
    /// Who changed it: `staff:<id>`, or `import:<name>` for a file.
    pub actor: String,
    pub kind: LedgerKind,
    pub id: String,
    pub action: LedgerAction,
    /// The entry as it now is (for a retirement: as it was).
    pub entry: Entry,
    /// A device's new broker password, if the change set one.
    pub secret: Option<DeviceSecret>,
}

/// What the engine answers to a change it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amended {
    pub kind: LedgerKind,
    pub id: String,
    /// `None`: the entry was already so (an import's unchanged row).
    pub action: Option<LedgerAction>,
    /// The entry's tag now; `None` once retired.
    pub etag: Option<String>,
    pub seq: Option<u64>,
}

/// A field an entry cannot have, for the form to show beside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's path in the entry, e.g. `home`, `profile.contacts[1].phone`.
    pub field: String,
    /// A stable code a page translates: `required`, `too_long`, `unknown_station`...
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self { field: field.into(), code: code.to_string(), message: message.into() }
    }
}

/// Why a change to the ledger was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("there is no live {kind} {id}")]
    NotFound { kind: LedgerKind, id: String },
    #[error("{kind} {id} exists already")]
    Exists { kind: LedgerKind, id: String },
    #[error("{kind} {id} has changed since it was read: read it again")]
    Stale { kind: LedgerKind, id: String },
    #[error("{kind} {id} is not valid: {}", .fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; "))]
    Invalid { kind: LedgerKind, id: String, fields: Vec<FieldError> },
    /// Something live still needs it: an open incident, a job, devices, responders.
    #[error("{kind} {id} cannot be retired: {why}")]
    InUse { kind: LedgerKind, id: String, code: &'static str, why: String },
}

impl LedgerError {
    /// A stable code a page translates.
    pub fn code(&self) -> &'static str {
        match self {
            LedgerError::NotFound { .. } => "not_found",
            LedgerError::Exists { .. } => "exists",
            LedgerError::Stale { .. } => "stale",
            LedgerError::Invalid { .. } => "invalid",
            LedgerError::InUse { code, .. } => code,
        }
    }

    pub fn fields(&self) -> &[FieldError] {
        match self {
            LedgerError::Invalid { fields, .. } => fields,
            _ => &[],
        }
    }
}

/// The longest id, name or phone the ledger takes.
pub const MAX_ID: usize = 64;
const MAX_TEXT: usize = 200;
const MAX_NOTES: usize = 4000;

/// Checks what an entry says by itself (not what it refers to: the engine checks that
/// against the live ledger). Every problem is listed, not just the first.
pub fn check(entry: &Entry) -> Vec<FieldError> {
    let mut out = Vec::new();
    let text = |out: &mut Vec<FieldError>, field: &str, value: &str, required: bool, max: usize| {
        if required && value.trim().is_empty() {
            out.push(FieldError::new(field, "required", format!("{field} is required")));
        } else if value.chars().count() > max {
            out.push(FieldError::new(field, "too_long", format!("{field} is longer than {max} characters")));
        }
    };
    let phone = |out: &mut Vec<FieldError>, field: &str, value: &str| {
        let ok = value.chars().all(|c| c.is_ascii_digit() || "+-() ".contains(c))
            && value.chars().filter(char::is_ascii_digit).count() >= 3;
        if !ok {
            out.push(FieldError::new(field, "bad_phone", format!("{field} {value:?} is not a phone number")));
        }
    };
    match entry {
        Entry::Elder(e) => {
            text(&mut out, "name", &e.name, true, MAX_TEXT);
            text(&mut out, "address", &e.address, true, MAX_TEXT);
            text(&mut out, "notes", &e.notes, false, MAX_NOTES);
            if e.home.lat() == 0.0 && e.home.lon() == 0.0 {
                out.push(FieldError::new("home", "missing_home", "home position is 0, 0: the position is missing"));
            }
            if let Some(p) = &e.phone {
                phone(&mut out, "phone", p);
            }
            if let Some(n) = &e.profile.id_number {
                if !id_number_ok(n) {
                    out.push(FieldError::new(
                        "profile.id_number",
                        "bad_id_number",
                        "the resident ID number's check digit or birth date is wrong",
                    ));
                }
            }
            for (field, every) in [
                ("profile.schedule.call_every_days", e.profile.schedule.call_every_days),
                ("profile.schedule.visit_every_days", e.profile.schedule.visit_every_days),
            ] {
                let (lo, hi) = crate::registry::WelfareSchedule::DAYS;
                if every.is_some_and(|d| !(lo..=hi).contains(&d)) {
                    out.push(FieldError::new(field, "bad_schedule", "every 1 to 366 days"));
                }
            }
            let mut ids = std::collections::HashSet::new();
            for (i, (c, id)) in e.profile.contacts.iter().zip(e.profile.contact_ids()).enumerate() {
                let at = format!("profile.contacts[{i}]");
                text(&mut out, &format!("{at}.name"), &c.name, true, MAX_TEXT);
                phone(&mut out, &format!("{at}.phone"), &c.phone);
                if !ids.insert(id.clone()) {
                    out.push(FieldError::new(
                        format!("{at}.id"),
                        "duplicate",
                        format!("contact id {id} appears twice"),
                    ));
                }
                if !matches!(c.language.as_str(), "" | "zh-CN" | "en") {
                    out.push(FieldError::new(format!("{at}.language"), "bad_language", "language is zh-CN or en"));
                }
            }
        }
        Entry::Device(d) => {
            // Carers' incidents carry `carer:<responder id>`: no device may look like one.
            if d.id.as_str().starts_with(crate::carer::CARER_DEVICE_PREFIX) {
                out.push(FieldError::new("id", "reserved_id", "device ids starting with carer: are reserved"));
            }
        }
        Entry::Station(s) => {
            text(&mut out, "name", &s.name, true, MAX_TEXT);
            if let Some(p) = &s.phone {
                phone(&mut out, "phone", p);
            }
            if s.service_circle_min.is_some_and(|m| m == 0 || m > 240) {
                out.push(FieldError::new("service_circle_min", "out_of_range", "service circle is 1 to 240 minutes"));
            }
        }
        Entry::Responder(r) => {
            text(&mut out, "name", &r.name, true, MAX_TEXT);
            if let Some(p) = &r.phone {
                phone(&mut out, "phone", p);
            }
            if r.skills.iter().any(|s| s.is_empty() || s.contains(',')) {
                out.push(FieldError::new("skills", "bad_skill", "a skill is a non-empty word without commas"));
            }
            if r.token_sha256.as_ref().is_some_and(|t| t.len() != 64 || !t.chars().all(|c| c.is_ascii_hexdigit())) {
                out.push(FieldError::new("token_sha256", "bad_token_hash", "token_sha256 is 64 hex digits"));
            }
        }
        Entry::Staff(s) => {
            if s.id.trim().is_empty() || s.id.len() > MAX_ID || s.id.chars().any(char::is_whitespace) {
                out.push(FieldError::new("id", "bad_id", "a sign-in name is 1 to 64 characters without spaces"));
            }
            text(&mut out, "name", &s.name, true, MAX_TEXT);
            if !s.password_hash.starts_with("$argon2") {
                out.push(FieldError::new("password", "required", "a password is required"));
            }
        }
        Entry::Provider(p) => {
            text(&mut out, "name", &p.name, true, MAX_TEXT);
            if let Some(phone_no) = &p.phone {
                phone(&mut out, "phone", phone_no);
            }
            if let Err(why) = p.area.check() {
                out.push(FieldError::new("area", "bad_area", why));
            }
            let mut seen = std::collections::HashSet::new();
            for (i, o) in p.offers.iter().enumerate() {
                if o.category.trim().is_empty() || !seen.insert(o.category.as_str()) {
                    let why = "each offer names a category, once";
                    out.push(FieldError::new(format!("offers[{i}].category"), "bad_category", why));
                }
                if o.daily_capacity == 0 {
                    let why = "a daily capacity of at least 1";
                    out.push(FieldError::new(format!("offers[{i}].daily_capacity"), "out_of_range", why));
                }
            }
        }
    }
    out
}

/// Whether an 18-character resident ID number (GB 11643) has a right check digit and a real
/// birth date.
pub fn id_number_ok(n: &str) -> bool {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = n.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let sum: u32 = b[..17].iter().zip(WEIGHTS).map(|(d, w)| (d - b'0') as u32 * w).sum();
    if b[17].to_ascii_uppercase() != CHECK[(sum % 11) as usize] {
        return false;
    }
    let num = |r: std::ops::Range<usize>| n[r].parse::<u32>().unwrap_or(0);
    let (y, m, d) = (num(6..10), num(10..12), num(12..14));
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    (1880..=2100).contains(&y) && (1..=12).contains(&m) && d >= 1 && d <= days[(m - 1) as usize]
}

/// The entry's tag: equal for entries a person would call the same. It leaves out what
/// phones change by themselves (a responder's duty and position), so those never make an
/// administrator's edit stale, and it gives contacts their positional ids first.
pub fn etag(entry: &Entry) -> String {
    let text = match entry {
        Entry::Elder(e) => {
            let mut e = e.clone();
            e.profile.name_contacts();
            serde_json::to_vec(&e)
        }
        Entry::Responder(r) => {
            let mut r = r.clone();
            r.on_duty = false;
            r.position_at = None;
            r.position = crate::geo::Coordinates::new(0.0, 0.0).expect("0, 0 is a position");
            serde_json::to_vec(&r)
        }
        other => serde_json::to_vec(other),
    }
    .expect("ledger entries serialise");
    // FNV-1a, 64 bits: stable across processes and versions, which a std hasher is not.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in entry.kind().as_str().bytes().chain(text) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_numbers_are_checked_by_their_check_digit_and_date() {
        // A well-known sample number from GB 11643's explanations.
        assert!(id_number_ok("11010519491231002X"));
        assert!(id_number_ok("11010519491231002x"));
        assert!(!id_number_ok("110105194912310021"));
        assert!(!id_number_ok("11010519491331002X"), "month 13");
        assert!(!id_number_ok("1101051949123100"));
    }
}
