//! The live ledger in the store: the rows a [`LedgerRecord`] writes (in the engine's commit),
//! and what the administration pages read: pages of entries with search and filters, one
//! entry with its tag, its history, devices' broker accounts and saved import mappings.

use crate::StoreError;
use anxin_core::{
    Coordinates, Device, DeviceId, Elder, Entry, Incident, LedgerKind, LedgerRecord, Responder, Staff, Station,
    Timestamp,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

pub use anxin_proto::admin::{DeviceAccountRow, LedgerEvent, LedgerItem, LedgerPage, LedgerQuery};

/// An import mapping saved by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedMapping {
    pub name: String,
    pub kind: String,
    pub body: String,
    pub saved_at: Timestamp,
    pub saved_by: String,
}

/// What the administration side reads. Writes go through the engine's commit
/// ([`crate::Batch::ledger`]), never through here, except import mappings (settings, not
/// ledger entries).
#[async_trait]
pub trait LedgerStore: Send + Sync {
    async fn ledger_page(&self, query: &LedgerQuery) -> Result<LedgerPage, StoreError>;
    /// One entry, live or retired.
    async fn ledger_item(&self, kind: LedgerKind, id: &str) -> Result<Option<LedgerItem>, StoreError>;
    /// An entry's changes, the latest first.
    async fn ledger_history(&self, kind: LedgerKind, id: &str, limit: u32) -> Result<Vec<LedgerEvent>, StoreError>;
    /// A device's incidents, the latest first.
    async fn device_incidents(&self, device: &DeviceId, limit: u32) -> Result<Vec<Incident>, StoreError>;
    /// Every device's broker account, live and retired.
    async fn device_accounts(&self) -> Result<Vec<DeviceAccountRow>, StoreError>;
    async fn save_mapping(&self, mapping: &SavedMapping) -> Result<(), StoreError>;
    async fn mappings(&self) -> Result<Vec<SavedMapping>, StoreError>;
}

/// The entry's JSON for the log: a staff member's password hash left out.
pub(crate) fn log_body(entry: &Entry) -> String {
    let text = match entry {
        Entry::Staff(s) => serde_json::to_string(&Entry::Staff(Staff { password_hash: String::new(), ..s.clone() })),
        other => serde_json::to_string(other),
    };
    text.expect("ledger entries serialise")
}

/// The records to write as rows: the last per entry, in order.
pub(crate) fn latest(records: &[LedgerRecord]) -> Vec<&LedgerRecord> {
    let mut last = std::collections::HashMap::new();
    for (i, r) in records.iter().enumerate() {
        last.insert((r.kind, r.id.as_str()), i);
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    keep.into_iter().map(|i| &records[i]).collect()
}

pub(crate) fn table(kind: LedgerKind) -> &'static str {
    match kind {
        LedgerKind::Elder => "elders",
        LedgerKind::Device => "devices",
        LedgerKind::Station => "stations",
        LedgerKind::Responder => "responders",
        LedgerKind::Staff => "staff",
        LedgerKind::Provider => "providers",
    }
}

/// What a provider's row keeps as JSON: its offers, area and hours.
pub(crate) fn provider_body(p: &anxin_core::Provider) -> String {
    serde_json::json!({ "offers": p.offers, "area": p.area, "hours": p.hours }).to_string()
}

/// The columns an entry of `kind` is read from.
pub(crate) fn columns(kind: LedgerKind) -> &'static str {
    match kind {
        LedgerKind::Elder => "id, name, address, home_lat, home_lon, phone, notes, profile, retired_at",
        LedgerKind::Device => "id, elder_id, model, sim, retired_at",
        LedgerKind::Station => "id, name, lat, lon, phone, service_circle_min, zone, retired_at",
        LedgerKind::Responder => {
            "id, name, station_id, phone, token_sha256, mode, skills, lat, lon, position_at, on_duty, provider_id, retired_at"
        }
        LedgerKind::Staff => "id, name, role, password_hash, retired_at",
        LedgerKind::Provider => "id, name, phone, body, retired_at",
    }
}

/// The columns a search looks in.
fn searched(kind: LedgerKind) -> &'static [&'static str] {
    match kind {
        LedgerKind::Elder => &["id", "name", "phone", "address"],
        LedgerKind::Device => &["id", "elder_id", "sim"],
        LedgerKind::Station | LedgerKind::Responder | LedgerKind::Provider => &["id", "name", "phone"],
        LedgerKind::Staff => &["id", "name"],
    }
}

/// `LIKE` text for `s` anywhere, with `%`, `_` and `\` taken literally.
fn like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// The `WHERE` clause of a page and its text parameters, in order from `$1`.
pub(crate) fn page_filter(q: &LedgerQuery) -> (String, Vec<String>) {
    let mut clauses = vec![if q.retired { "retired_at IS NOT NULL" } else { "retired_at IS NULL" }.to_string()];
    let mut params = Vec::new();
    if let Some(s) = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        params.push(like(s));
        let n = params.len();
        let any: Vec<String> =
            searched(q.kind).iter().map(|c| format!("LOWER(COALESCE({c}, '')) LIKE ${n} ESCAPE '\\'")).collect();
        clauses.push(format!("({})", any.join(" OR ")));
    }
    if let Some(s) = q.station.as_deref().filter(|_| matches!(q.kind, LedgerKind::Elder | LedgerKind::Responder)) {
        params.push(s.to_string());
        clauses.push(format!("station_id = ${}", params.len()));
    }
    if let Some(e) = q.elder.as_deref().filter(|_| q.kind == LedgerKind::Device) {
        params.push(e.to_string());
        clauses.push(format!("elder_id = ${}", params.len()));
    }
    (clauses.join(" AND "), params)
}

pub(crate) fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

pub(crate) fn coords(lat: f64, lon: f64) -> Result<Coordinates, StoreError> {
    Coordinates::new(lat, lon).map_err(|e| corrupt(&format!("position ({lat}, {lon})"), e))
}

/// Reads ledger rows of either database into entries.
macro_rules! ledger_rows {
    ($row:ty) => {
        pub(crate) fn entry_row(
            kind: anxin_core::LedgerKind,
            row: &$row,
        ) -> Result<crate::ledger::LedgerItemRow, crate::StoreError> {
            use crate::ledger::{coords, corrupt};
            use sqlx::Row;
            let retired_at = row.try_get::<Option<i64>, _>("retired_at")?.map(anxin_core::Timestamp);
            let entry = match kind {
                anxin_core::LedgerKind::Elder => anxin_core::Entry::Elder(anxin_core::Elder {
                    id: anxin_core::ElderId::parse(row.try_get::<String, _>("id")?)
                        .map_err(|e| corrupt("elder id", e))?,
                    name: row.try_get("name")?,
                    address: row.try_get("address")?,
                    home: coords(row.try_get("home_lat")?, row.try_get("home_lon")?)?,
                    phone: row.try_get("phone")?,
                    notes: row.try_get("notes")?,
                    profile: serde_json::from_str(&row.try_get::<String, _>("profile")?)
                        .map_err(|e| corrupt("elder profile", e))?,
                }),
                anxin_core::LedgerKind::Device => anxin_core::Entry::Device(anxin_core::Device {
                    id: anxin_core::DeviceId::parse(row.try_get::<String, _>("id")?)
                        .map_err(|e| corrupt("device id", e))?,
                    elder_id: anxin_core::ElderId::parse(row.try_get::<String, _>("elder_id")?)
                        .map_err(|e| corrupt("elder id", e))?,
                    model: row.try_get("model")?,
                    sim: row.try_get("sim")?,
                }),
                anxin_core::LedgerKind::Station => anxin_core::Entry::Station(anxin_core::Station {
                    id: anxin_core::StationId::parse(row.try_get::<String, _>("id")?)
                        .map_err(|e| corrupt("station id", e))?,
                    name: row.try_get("name")?,
                    position: coords(row.try_get("lat")?, row.try_get("lon")?)?,
                    phone: row.try_get("phone")?,
                    service_circle_min: row.try_get::<Option<i32>, _>("service_circle_min")?.map(|m| m.max(0) as u32),
                    zone: anxin_core::Zone::new(row.try_get::<i32, _>("zone")?.into())
                        .map_err(|e| corrupt("station zone", e))?,
                }),
                anxin_core::LedgerKind::Responder => anxin_core::Entry::Responder(anxin_core::Responder {
                    id: anxin_core::ResponderId::parse(row.try_get::<String, _>("id")?)
                        .map_err(|e| corrupt("responder id", e))?,
                    name: row.try_get("name")?,
                    station_id: anxin_core::StationId::parse(row.try_get::<String, _>("station_id")?)
                        .map_err(|e| corrupt("station id", e))?,
                    phone: row.try_get("phone")?,
                    position: coords(row.try_get("lat")?, row.try_get("lon")?)?,
                    on_duty: row.try_get("on_duty")?,
                    token_sha256: row.try_get("token_sha256")?,
                    provider_id: row
                        .try_get::<Option<String>, _>("provider_id")?
                        .map(anxin_core::ProviderId::parse)
                        .transpose()
                        .map_err(|e| corrupt("provider id", e))?,
                    position_at: row.try_get::<Option<i64>, _>("position_at")?.map(anxin_core::Timestamp),
                    mode: {
                        let m: String = row.try_get("mode")?;
                        anxin_core::TravelMode::parse(&m).ok_or_else(|| corrupt("travel mode", m))?
                    },
                    skills: row
                        .try_get::<String, _>("skills")?
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                }),
                anxin_core::LedgerKind::Staff => anxin_core::Entry::Staff(anxin_core::Staff {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    role: {
                        let r: String = row.try_get("role")?;
                        anxin_core::StaffRole::parse(&r).ok_or_else(|| corrupt("staff role", r))?
                    },
                    password_hash: row.try_get("password_hash")?,
                }),
                anxin_core::LedgerKind::Provider => {
                    #[derive(serde::Deserialize)]
                    struct Body {
                        offers: Vec<anxin_core::service::ProviderOffer>,
                        area: anxin_core::ServiceArea,
                        #[serde(default)]
                        hours: anxin_core::service::Hours,
                    }
                    let body: Body =
                        serde_json::from_str(&row.try_get::<String, _>("body")?).map_err(|e| corrupt("provider", e))?;
                    anxin_core::Entry::Provider(anxin_core::Provider {
                        id: anxin_core::ProviderId::parse(row.try_get::<String, _>("id")?)
                            .map_err(|e| corrupt("provider id", e))?,
                        name: row.try_get("name")?,
                        phone: row.try_get("phone")?,
                        offers: body.offers,
                        area: body.area,
                        hours: body.hours,
                    })
                }
            };
            Ok((entry, retired_at))
        }
    };
}
pub(crate) use ledger_rows;

pub(crate) type LedgerItemRow = (Entry, Option<Timestamp>);

pub(crate) fn item((entry, retired_at): LedgerItemRow) -> LedgerItem {
    LedgerItem { etag: anxin_core::ledger::etag(&entry), entry, retired_at }
}

/// Splits an entry into the typed rows the writers bind.
pub(crate) enum Put<'a> {
    Elder(&'a Elder),
    Device(&'a Device, Option<&'a str>),
    Station(&'a Station),
    Responder(&'a Responder),
    Staff(&'a Staff),
    Provider(&'a anxin_core::Provider),
}

impl<'a> Put<'a> {
    pub(crate) fn of(r: &'a LedgerRecord) -> Self {
        match &r.entry {
            Entry::Elder(e) => Put::Elder(e),
            Entry::Device(d) => Put::Device(d, r.secret.as_ref().map(|s| s.hash.as_str())),
            Entry::Station(s) => Put::Station(s),
            Entry::Responder(x) => Put::Responder(x),
            Entry::Staff(s) => Put::Staff(s),
            Entry::Provider(p) => Put::Provider(p),
        }
    }
}

/// The statements that write one kind's rows: an upsert that never goes back past a later
/// change (`ledger_seq`), and the retirement.
pub(crate) fn upsert_sql(kind: LedgerKind) -> (&'static str, &'static str) {
    match kind {
        LedgerKind::Elder => (
            "INSERT INTO elders (id, name, address, home_lat, home_lon, phone, notes, profile, station_id, ledger_seq, retired_at) ",
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, address = excluded.address, home_lat = excluded.home_lat, \
             home_lon = excluded.home_lon, phone = excluded.phone, notes = excluded.notes, profile = excluded.profile, \
             station_id = excluded.station_id, ledger_seq = excluded.ledger_seq, retired_at = NULL \
             WHERE elders.ledger_seq < excluded.ledger_seq",
        ),
        LedgerKind::Device => (
            "INSERT INTO devices (id, elder_id, model, sim, mqtt_password_hash, ledger_seq, retired_at) ",
            " ON CONFLICT (id) DO UPDATE SET elder_id = excluded.elder_id, model = excluded.model, sim = excluded.sim, \
             mqtt_password_hash = COALESCE(excluded.mqtt_password_hash, devices.mqtt_password_hash), \
             ledger_seq = excluded.ledger_seq, retired_at = NULL WHERE devices.ledger_seq < excluded.ledger_seq",
        ),
        LedgerKind::Station => (
            "INSERT INTO stations (id, name, lat, lon, phone, service_circle_min, zone, ledger_seq, retired_at) ",
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, lat = excluded.lat, lon = excluded.lon, \
             phone = excluded.phone, service_circle_min = excluded.service_circle_min, zone = excluded.zone, \
             ledger_seq = excluded.ledger_seq, retired_at = NULL WHERE stations.ledger_seq < excluded.ledger_seq",
        ),
        LedgerKind::Responder => (
            "INSERT INTO responders (id, name, station_id, phone, token_sha256, mode, skills, lat, lon, position_at, on_duty, provider_id, ledger_seq, retired_at) ",
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, station_id = excluded.station_id, phone = excluded.phone, \
             token_sha256 = excluded.token_sha256, mode = excluded.mode, skills = excluded.skills, lat = excluded.lat, \
             lon = excluded.lon, position_at = excluded.position_at, on_duty = excluded.on_duty, \
             provider_id = excluded.provider_id, ledger_seq = excluded.ledger_seq, retired_at = NULL WHERE responders.ledger_seq < excluded.ledger_seq",
        ),
        LedgerKind::Staff => (
            "INSERT INTO staff (id, name, role, password_hash, ledger_seq, retired_at) ",
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role, password_hash = excluded.password_hash, \
             ledger_seq = excluded.ledger_seq, retired_at = NULL WHERE staff.ledger_seq < excluded.ledger_seq",
        ),
        LedgerKind::Provider => (
            "INSERT INTO providers (id, name, phone, body, ledger_seq, retired_at) ",
            " ON CONFLICT (id) DO UPDATE SET name = excluded.name, phone = excluded.phone, body = excluded.body, \
             ledger_seq = excluded.ledger_seq, retired_at = NULL WHERE providers.ledger_seq < excluded.ledger_seq",
        ),
    }
}

/// Writes a batch's ledger records inside its transaction: each entry's last row, then the
/// log. Shared by both databases (the statements are the same).
macro_rules! write_ledger {
    ($db:ty) => {
        pub(crate) async fn write_ledger(
            tx: &mut sqlx::Transaction<'_, $db>,
            records: &[anxin_core::LedgerRecord],
        ) -> Result<(), sqlx::Error> {
            use crate::ledger::{latest, log_body, table, upsert_sql, Put};
            use anxin_core::{LedgerAction, LedgerKind};
            use sqlx::QueryBuilder;
            if records.is_empty() {
                return Ok(());
            }
            let rows = latest(records);
            for kind in LedgerKind::ALL {
                let puts: Vec<_> =
                    rows.iter().filter(|r| r.kind == kind && r.action != LedgerAction::Retired).collect();
                let (insert, conflict) = upsert_sql(kind);
                for chunk in puts.chunks(crate::sql::CHUNK / 2) {
                    let mut q = QueryBuilder::<$db>::new(insert);
                    q.push_values(chunk, |mut b, r| {
                        let seq = r.seq as i64;
                        match Put::of(r) {
                            Put::Elder(e) => {
                                b.push_bind(e.id.as_str())
                                    .push_bind(e.name.as_str())
                                    .push_bind(e.address.as_str())
                                    .push_bind(e.home.lat())
                                    .push_bind(e.home.lon())
                                    .push_bind(e.phone.as_deref())
                                    .push_bind(e.notes.as_str())
                                    .push_bind(serde_json::to_string(&e.profile).expect("a profile serialises"))
                                    .push_bind(e.profile.station_id.as_ref().map(|s| s.as_str()));
                            }
                            Put::Device(d, hash) => {
                                b.push_bind(d.id.as_str())
                                    .push_bind(d.elder_id.as_str())
                                    .push_bind(d.model.as_deref())
                                    .push_bind(d.sim.as_deref())
                                    .push_bind(hash);
                            }
                            Put::Station(s) => {
                                b.push_bind(s.id.as_str())
                                    .push_bind(s.name.as_str())
                                    .push_bind(s.position.lat())
                                    .push_bind(s.position.lon())
                                    .push_bind(s.phone.as_deref())
                                    .push_bind(s.service_circle_min.map(|m| m.min(i32::MAX as u32) as i32))
                                    .push_bind(i32::from(s.zone.number()));
                            }
                            Put::Responder(x) => {
                                b.push_bind(x.id.as_str())
                                    .push_bind(x.name.as_str())
                                    .push_bind(x.station_id.as_str())
                                    .push_bind(x.phone.as_deref())
                                    .push_bind(x.token_sha256.as_deref())
                                    .push_bind(x.mode.as_str())
                                    .push_bind(x.skills.join(","))
                                    .push_bind(x.position.lat())
                                    .push_bind(x.position.lon())
                                    .push_bind(x.position_at.map(|t| t.millis()))
                                    .push_bind(x.on_duty)
                                    .push_bind(x.provider_id.as_ref().map(|p| p.as_str()));
                            }
                            Put::Staff(s) => {
                                b.push_bind(s.id.as_str())
                                    .push_bind(s.name.as_str())
                                    .push_bind(s.role.as_str())
                                    .push_bind(s.password_hash.as_str());
                            }
                            Put::Provider(p) => {
                                b.push_bind(p.id.as_str())
                                    .push_bind(p.name.as_str())
                                    .push_bind(p.phone.as_deref())
                                    .push_bind(crate::ledger::provider_body(p));
                            }
                        }
                        b.push_bind(seq).push_bind(None::<i64>);
                    });
                    q.push(conflict);
                    q.build().execute(&mut **tx).await?;
                }
                for r in rows.iter().filter(|r| r.kind == kind && r.action == LedgerAction::Retired) {
                    let sql = format!(
                        "UPDATE {} SET retired_at = $1, ledger_seq = $2 WHERE id = $3 AND ledger_seq < $2",
                        table(kind)
                    );
                    sqlx::query(&sql)
                        .bind(r.at.millis())
                        .bind(r.seq as i64)
                        .bind(r.id.as_str())
                        .execute(&mut **tx)
                        .await?;
                }
            }
            for chunk in records.chunks(crate::sql::CHUNK) {
                let mut q = QueryBuilder::<$db>::new(
                    "INSERT INTO ledger_events (seq, at, actor, kind, entity_id, action, body) ",
                );
                q.push_values(chunk, |mut b, r| {
                    b.push_bind(r.seq as i64)
                        .push_bind(r.at.millis())
                        .push_bind(r.actor.as_str())
                        .push_bind(r.kind.as_str())
                        .push_bind(r.id.as_str())
                        .push_bind(r.action.as_str())
                        .push_bind(log_body(&r.entry));
                });
                q.push(" ON CONFLICT (seq) DO NOTHING");
                q.build().execute(&mut **tx).await?;
            }
            Ok(())
        }
    };
}
pub(crate) use write_ledger;

/// The [`LedgerStore`] of either database.
macro_rules! ledger_store {
    ($store:ty, $db:ty) => {
        #[async_trait::async_trait]
        impl crate::ledger::LedgerStore for $store {
            async fn ledger_page(
                &self,
                query: &crate::ledger::LedgerQuery,
            ) -> Result<crate::ledger::LedgerPage, crate::StoreError> {
                use crate::ledger::{columns, item, page_filter, table};
                let (filter, params) = page_filter(query);
                let t = table(query.kind);
                let count_sql = format!("SELECT COUNT(*) FROM {t} WHERE {filter}");
                let mut count = sqlx::query_scalar::<_, i64>(&count_sql);
                for p in &params {
                    count = count.bind(p.as_str());
                }
                let total = count.fetch_one(&self.pool).await?;
                let n = params.len();
                let sql = format!(
                    "SELECT {} FROM {t} WHERE {filter} ORDER BY id LIMIT ${} OFFSET ${}",
                    columns(query.kind),
                    n + 1,
                    n + 2
                );
                let mut q = sqlx::query(&sql);
                for p in &params {
                    q = q.bind(p.as_str());
                }
                let rows = q
                    .bind(i64::from(query.limit.min(1000)))
                    .bind(i64::from(query.offset))
                    .fetch_all(&self.pool)
                    .await?;
                let items = rows.iter().map(|r| Self::entry_row(query.kind, r).map(item)).collect::<Result<_, _>>()?;
                Ok(crate::ledger::LedgerPage { items, total: total as u64 })
            }

            async fn ledger_item(
                &self,
                kind: anxin_core::LedgerKind,
                id: &str,
            ) -> Result<Option<crate::ledger::LedgerItem>, crate::StoreError> {
                use crate::ledger::{columns, item, table};
                let sql = format!("SELECT {} FROM {} WHERE id = $1", columns(kind), table(kind));
                let row = sqlx::query(&sql).bind(id).fetch_optional(&self.pool).await?;
                row.map(|r| Self::entry_row(kind, &r).map(item)).transpose()
            }

            async fn ledger_history(
                &self,
                kind: anxin_core::LedgerKind,
                id: &str,
                limit: u32,
            ) -> Result<Vec<crate::ledger::LedgerEvent>, crate::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query(
                    "SELECT seq, at, actor, action, body FROM ledger_events WHERE kind = $1 AND entity_id = $2 \
                     ORDER BY seq DESC LIMIT $3",
                )
                .bind(kind.as_str())
                .bind(id)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        let action: String = r.try_get("action")?;
                        Ok(crate::ledger::LedgerEvent {
                            seq: r.try_get::<i64, _>("seq")? as u64,
                            at: anxin_core::Timestamp(r.try_get("at")?),
                            actor: r.try_get("actor")?,
                            action: anxin_core::LedgerAction::parse(&action)
                                .ok_or_else(|| crate::ledger::corrupt("ledger action", &action))?,
                            body: serde_json::from_str(&r.try_get::<String, _>("body")?)
                                .map_err(|e| crate::ledger::corrupt("ledger event body", e))?,
                        })
                    })
                    .collect()
            }

            async fn device_incidents(
                &self,
                device: &anxin_core::DeviceId,
                limit: u32,
            ) -> Result<Vec<anxin_core::Incident>, crate::StoreError> {
                use sqlx::Row;
                sqlx::query("SELECT body FROM incidents WHERE device_id = $1 ORDER BY id DESC LIMIT $2")
                    .bind(device.as_str())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|r| {
                        serde_json::from_str(&r.try_get::<String, _>("body")?)
                            .map_err(|e| crate::ledger::corrupt("incident", e))
                    })
                    .collect()
            }

            async fn device_accounts(&self) -> Result<Vec<crate::ledger::DeviceAccountRow>, crate::StoreError> {
                use sqlx::Row;
                // Row by row, and only devices with an account to give or take away: the
                // broker knows nothing of a device without a password.
                let mut rows = sqlx::query(
                    "SELECT id, mqtt_password_hash, retired_at FROM devices \
                     WHERE mqtt_password_hash IS NOT NULL OR retired_at IS NOT NULL ORDER BY id",
                )
                .fetch(&self.pool);
                let mut accounts = Vec::new();
                while let Some(r) = futures_util::TryStreamExt::try_next(&mut rows).await? {
                    accounts.push(crate::ledger::DeviceAccountRow {
                        id: r.try_get("id")?,
                        password_hash: r.try_get("mqtt_password_hash")?,
                        retired: r.try_get::<Option<i64>, _>("retired_at")?.is_some(),
                    });
                }
                Ok(accounts)
            }

            async fn save_mapping(&self, m: &crate::ledger::SavedMapping) -> Result<(), crate::StoreError> {
                sqlx::query(
                    "INSERT INTO import_mappings (name, kind, body, saved_at, saved_by) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, body = excluded.body, \
                     saved_at = excluded.saved_at, saved_by = excluded.saved_by",
                )
                .bind(m.name.as_str())
                .bind(m.kind.as_str())
                .bind(m.body.as_str())
                .bind(m.saved_at.millis())
                .bind(m.saved_by.as_str())
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn mappings(&self) -> Result<Vec<crate::ledger::SavedMapping>, crate::StoreError> {
                use sqlx::Row;
                sqlx::query("SELECT name, kind, body, saved_at, saved_by FROM import_mappings ORDER BY name")
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|r| {
                        Ok(crate::ledger::SavedMapping {
                            name: r.try_get("name")?,
                            kind: r.try_get("kind")?,
                            body: r.try_get("body")?,
                            saved_at: anxin_core::Timestamp(r.try_get("saved_at")?),
                            saved_by: r.try_get("saved_by")?,
                        })
                    })
                    .collect()
            }
        }
    };
}
pub(crate) use ledger_store;
