//! The two SQL stores. The statements are shared: both dialects accept `$n` placeholders,
//! `ON CONFLICT ... DO UPDATE` and multi-row `VALUES`, so one macro writes both impls and
//! the migrations carry the differences (types, booleans).

use crate::migrate::{Migration, CREATE_TABLE, POSTGRES, SQLITE};
use crate::{Batch, Store, StoreError};
use anxin_core::{
    Coordinates, Device, DeviceId, Elder, ElderId, EventType, Incident, IncidentEvent, IncidentId, MessageId,
    MessageRecord, Registry, Responder, ResponderId, Resume, Staff, StaffRole, Station, StationId, Timestamp,
    TravelMode,
};
use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions, Postgres};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite};
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

/// Rows per multi-row statement: well under both databases' bind-parameter limits.
const CHUNK: usize = 500;

/// SQLite: a single file, write-ahead log, `synchronous = FULL` so a commit survives power loss.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }
}

/// PostgreSQL: the production store.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new().max_connections(8).acquire_timeout(Duration::from_secs(5)).connect(url).await?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }
}

fn id<T>(parsed: Result<T, anxin_core::IdError>, what: &str) -> Result<T, StoreError> {
    parsed.map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn coords(lat: f64, lon: f64) -> Result<Coordinates, StoreError> {
    Coordinates::new(lat, lon).map_err(|e| StoreError::Corrupt(format!("position ({lat}, {lon}): {e}")))
}

fn json<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("JSON body: {e}")))
}

fn event_type(name: Option<String>) -> Result<Option<EventType>, StoreError> {
    name.map(|n| {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == n)
            .ok_or_else(|| StoreError::Corrupt(format!("event type {n}")))
    })
    .transpose()
}

/// The last row per incident, in the order they came.
fn latest_per_incident(rows: &[Incident]) -> Vec<&Incident> {
    let mut last: HashMap<IncidentId, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        last.insert(row.id, i);
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    keep.into_iter().map(|i| &rows[i]).collect()
}

macro_rules! sql_store {
    ($store:ty, $db:ty, $migrations:expr, $lock:expr) => {
        impl $store {
            async fn migrate(&self) -> Result<(), StoreError> {
                sqlx::query(CREATE_TABLE).execute(&self.pool).await?;
                for Migration { version, name, sql } in $migrations {
                    let mut tx = self.pool.begin().await?;
                    if let Some(lock) = $lock {
                        sqlx::query(lock).execute(&mut *tx).await?;
                    }
                    let done: Option<i64> = sqlx::query_scalar("SELECT version FROM anxin_migrations WHERE version = $1")
                        .bind(version)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if done.is_some() {
                        continue;
                    }
                    sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(|source| StoreError::Migration { version: *version, source })?;
                    sqlx::query("INSERT INTO anxin_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
                        .bind(version)
                        .bind(*name)
                        .bind(now_ms())
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    tracing::info!(version, name, "applied migration");
                }
                Ok(())
            }
        }

        #[async_trait]
        impl Store for $store {
            async fn commit(&self, batch: Batch<'_>) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                for chunk in batch.messages.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new(
                        "INSERT INTO device_messages (device_id, msg_id, event, received_at, incident_id) ",
                    );
                    q.push_values(chunk, |mut b, m| {
                        b.push_bind(m.device_id.as_str())
                            .push_bind(m.msg_id.as_str())
                            .push_bind(m.event.map(|e| e.as_str()))
                            .push_bind(m.received_at.millis())
                            .push_bind(m.incident_id.map(|i| i.0 as i64));
                    });
                    q.push(" ON CONFLICT (device_id, msg_id) DO NOTHING");
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in batch.events.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new("INSERT INTO incident_events (seq, incident_id, at, actor, change, body) ");
                    let mut bad = None;
                    q.push_values(chunk, |mut b, e| {
                        let body = serde_json::to_string(e).unwrap_or_else(|err| {
                            bad = Some(err.to_string());
                            String::new()
                        });
                        let change = serde_json::to_value(&e.change)
                            .ok()
                            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
                            .unwrap_or_default();
                        let actor = match &e.actor {
                            anxin_core::Actor::Device(d) => format!("device:{d}"),
                            anxin_core::Actor::Engine => "engine".to_string(),
                            anxin_core::Actor::Responder(r) => format!("responder:{r}"),
                            anxin_core::Actor::Dispatcher(d) => format!("dispatcher:{d}"),
                        };
                        b.push_bind(e.seq as i64)
                            .push_bind(e.incident_id.0 as i64)
                            .push_bind(e.at.millis())
                            .push_bind(actor)
                            .push_bind(change)
                            .push_bind(body);
                    });
                    if let Some(err) = bad {
                        return Err(StoreError::Corrupt(format!("cannot encode an event: {err}")));
                    }
                    q.push(" ON CONFLICT (seq) DO NOTHING");
                    q.build().execute(&mut *tx).await?;
                }
                let incidents = latest_per_incident(batch.incidents);
                for chunk in incidents.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new(
                        "INSERT INTO incidents (id, device_id, elder_id, kind, state, is_open, pressed_at, opened_at, updated_at, last_seq, body) ",
                    );
                    let mut bad = None;
                    q.push_values(chunk, |mut b, i| {
                        let body = serde_json::to_string(i).unwrap_or_else(|err| {
                            bad = Some(err.to_string());
                            String::new()
                        });
                        b.push_bind(i.id.0 as i64)
                            .push_bind(i.device_id.as_str())
                            .push_bind(i.elder_id.as_str())
                            .push_bind(i.kind.as_str())
                            .push_bind(i.state.as_str())
                            .push_bind(!i.state.is_terminal())
                            .push_bind(i.pressed_at.millis())
                            .push_bind(i.opened_at.millis())
                            .push_bind(i.updated_at.millis())
                            .push_bind(i.last_seq as i64)
                            .push_bind(body);
                    });
                    if let Some(err) = bad {
                        return Err(StoreError::Corrupt(format!("cannot encode an incident: {err}")));
                    }
                    q.push(
                        " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, state = excluded.state, is_open = excluded.is_open, \
                         updated_at = excluded.updated_at, last_seq = excluded.last_seq, body = excluded.body \
                         WHERE incidents.last_seq <= excluded.last_seq",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                // Duty and position, latest per responder; the ledger's other fields stay.
                let mut latest: HashMap<&str, &Responder> = HashMap::new();
                for r in batch.roster {
                    latest.insert(r.id.as_str(), r);
                }
                for r in latest.into_values() {
                    sqlx::query("UPDATE responders SET on_duty = $1, lat = $2, lon = $3, position_at = $5 WHERE id = $4")
                        .bind(r.on_duty)
                        .bind(r.position.lat())
                        .bind(r.position.lon())
                        .bind(r.id.as_str())
                        .bind(r.position_at.map(|t| t.millis()))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn load_registry(&self) -> Result<Registry, StoreError> {
                let mut registry = Registry::default();
                for row in sqlx::query("SELECT id, name, address, home_lat, home_lon, phone, notes, profile FROM elders ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?
                {
                    registry.elders.push(Elder {
                        id: id(ElderId::parse(row.try_get::<String, _>("id")?), "elder id")?,
                        name: row.try_get("name")?,
                        address: row.try_get("address")?,
                        home: coords(row.try_get("home_lat")?, row.try_get("home_lon")?)?,
                        phone: row.try_get("phone")?,
                        notes: row.try_get("notes")?,
                        profile: {
                            let json: String = row.try_get("profile")?;
                            serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("elder profile: {e}")))?
                        },
                    });
                }
                for row in sqlx::query("SELECT id, elder_id FROM devices ORDER BY id").fetch_all(&self.pool).await? {
                    registry.devices.push(Device {
                        id: id(DeviceId::parse(row.try_get::<String, _>("id")?), "device id")?,
                        elder_id: id(ElderId::parse(row.try_get::<String, _>("elder_id")?), "elder id")?,
                    });
                }
                for row in sqlx::query("SELECT id, name, lat, lon, phone, service_circle_min FROM stations ORDER BY id").fetch_all(&self.pool).await? {
                    registry.stations.push(Station {
                        id: id(StationId::parse(row.try_get::<String, _>("id")?), "station id")?,
                        name: row.try_get("name")?,
                        position: coords(row.try_get("lat")?, row.try_get("lon")?)?,
                        phone: row.try_get("phone")?,
                        service_circle_min: row.try_get::<Option<i32>, _>("service_circle_min")?.map(|m| m.max(0) as u32),
                    });
                }
                for row in sqlx::query("SELECT id, name, station_id, phone, token_sha256, mode, skills, lat, lon, position_at, on_duty FROM responders ORDER BY id")
                    .fetch_all(&self.pool)
                    .await?
                {
                    registry.responders.push(Responder {
                        id: id(ResponderId::parse(row.try_get::<String, _>("id")?), "responder id")?,
                        name: row.try_get("name")?,
                        station_id: id(StationId::parse(row.try_get::<String, _>("station_id")?), "station id")?,
                        phone: row.try_get("phone")?,
                        position: coords(row.try_get("lat")?, row.try_get("lon")?)?,
                        on_duty: row.try_get("on_duty")?,
                        token_sha256: row.try_get("token_sha256")?,
                        position_at: row.try_get::<Option<i64>, _>("position_at")?.map(Timestamp),
                        mode: {
                            let m: String = row.try_get("mode")?;
                            TravelMode::parse(&m).ok_or_else(|| StoreError::Corrupt(format!("travel mode {m}")))?
                        },
                        skills: row
                            .try_get::<String, _>("skills")?
                            .split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    });
                }
                for row in sqlx::query("SELECT id, name, role, password_hash FROM staff ORDER BY id").fetch_all(&self.pool).await? {
                    let role: String = row.try_get("role")?;
                    registry.staff.push(Staff {
                        id: row.try_get("id")?,
                        name: row.try_get("name")?,
                        role: StaffRole::parse(&role).ok_or_else(|| StoreError::Corrupt(format!("staff role {role}")))?,
                        password_hash: row.try_get("password_hash")?,
                    });
                }
                Ok(registry)
            }

            async fn save_registry(&self, registry: &Registry) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                for chunk in registry.elders.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new("INSERT INTO elders (id, name, address, home_lat, home_lon, phone, notes, profile) ");
                    q.push_values(chunk, |mut b, e| {
                        b.push_bind(e.id.as_str())
                            .push_bind(e.name.as_str())
                            .push_bind(e.address.as_str())
                            .push_bind(e.home.lat())
                            .push_bind(e.home.lon())
                            .push_bind(e.phone.as_deref())
                            .push_bind(e.notes.as_str())
                            .push_bind(serde_json::to_string(&e.profile).expect("a profile serialises"));
                    });
                    q.push(
                        " ON CONFLICT (id) DO UPDATE SET name = excluded.name, address = excluded.address, \
                         home_lat = excluded.home_lat, home_lon = excluded.home_lon, phone = excluded.phone, notes = excluded.notes, \
                         profile = excluded.profile",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in registry.stations.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new("INSERT INTO stations (id, name, lat, lon, phone, service_circle_min) ");
                    q.push_values(chunk, |mut b, s| {
                        b.push_bind(s.id.as_str())
                            .push_bind(s.name.as_str())
                            .push_bind(s.position.lat())
                            .push_bind(s.position.lon())
                            .push_bind(s.phone.as_deref())
                            .push_bind(s.service_circle_min.map(|m| m.min(i32::MAX as u32) as i32));
                    });
                    q.push(" ON CONFLICT (id) DO UPDATE SET name = excluded.name, lat = excluded.lat, lon = excluded.lon, phone = excluded.phone, service_circle_min = excluded.service_circle_min");
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in registry.devices.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new("INSERT INTO devices (id, elder_id) ");
                    q.push_values(chunk, |mut b, d| {
                        b.push_bind(d.id.as_str()).push_bind(d.elder_id.as_str());
                    });
                    q.push(" ON CONFLICT (id) DO UPDATE SET elder_id = excluded.elder_id");
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in registry.responders.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new("INSERT INTO responders (id, name, station_id, phone, token_sha256, mode, skills, lat, lon, on_duty) ");
                    q.push_values(chunk, |mut b, r| {
                        b.push_bind(r.id.as_str())
                            .push_bind(r.name.as_str())
                            .push_bind(r.station_id.as_str())
                            .push_bind(r.phone.as_deref())
                            .push_bind(r.token_sha256.as_deref())
                            .push_bind(r.mode.as_str())
                            .push_bind(r.skills.join(","))
                            .push_bind(r.position.lat())
                            .push_bind(r.position.lon())
                            .push_bind(r.on_duty);
                    });
                    q.push(
                        // Duty and position are live state (phones change them): a registry file
                        // sets them for new responders only, so a restart does not undo them.
                        " ON CONFLICT (id) DO UPDATE SET name = excluded.name, station_id = excluded.station_id, \
                         phone = excluded.phone, token_sha256 = excluded.token_sha256, mode = excluded.mode, \
                         skills = excluded.skills",
                    );
                    q.build().execute(&mut *tx).await?;
                }
                for chunk in registry.staff.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new("INSERT INTO staff (id, name, role, password_hash) ");
                    q.push_values(chunk, |mut b, s| {
                        b.push_bind(s.id.as_str())
                            .push_bind(s.name.as_str())
                            .push_bind(s.role.as_str())
                            .push_bind(s.password_hash.as_str());
                    });
                    q.push(" ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role, password_hash = excluded.password_hash");
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn resume(&self, messages_since: Timestamp) -> Result<Resume, StoreError> {
                let mut resume = Resume::default();
                for row in sqlx::query("SELECT body FROM incidents WHERE is_open = $1 ORDER BY id")
                    .bind(true)
                    .fetch_all(&self.pool)
                    .await?
                {
                    resume.open.push(json(&row.try_get::<String, _>("body")?)?);
                }
                for row in sqlx::query(
                    "SELECT device_id, msg_id, received_at FROM device_messages WHERE received_at >= $1 ORDER BY received_at",
                )
                .bind(messages_since.millis())
                .fetch_all(&self.pool)
                .await?
                {
                    resume.recent_messages.push((
                        Timestamp(row.try_get("received_at")?),
                        id(DeviceId::parse(row.try_get::<String, _>("device_id")?), "device id")?,
                        id(MessageId::parse(row.try_get::<String, _>("msg_id")?), "message id")?,
                    ));
                }
                let last_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM incidents").fetch_one(&self.pool).await?;
                let last_seq: i64 =
                    sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM incident_events").fetch_one(&self.pool).await?;
                resume.last_incident_id = last_id as u64;
                resume.last_seq = last_seq as u64;
                Ok(resume)
            }

            async fn incident(&self, incident: IncidentId) -> Result<Option<Incident>, StoreError> {
                let body: Option<String> = sqlx::query_scalar("SELECT body FROM incidents WHERE id = $1")
                    .bind(incident.0 as i64)
                    .fetch_optional(&self.pool)
                    .await?;
                body.map(|b| json(&b)).transpose()
            }

            async fn incident_events(&self, incident: IncidentId) -> Result<Vec<IncidentEvent>, StoreError> {
                let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM incident_events WHERE incident_id = $1 ORDER BY seq")
                    .bind(incident.0 as i64)
                    .fetch_all(&self.pool)
                    .await?;
                bodies.iter().map(|b| json(b)).collect()
            }

            async fn message(&self, device: &DeviceId, msg: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
                let row = sqlx::query(
                    "SELECT event, received_at, incident_id FROM device_messages WHERE device_id = $1 AND msg_id = $2",
                )
                .bind(device.as_str())
                .bind(msg.as_str())
                .fetch_optional(&self.pool)
                .await?;
                row.map(|row| {
                    Ok(MessageRecord {
                        device_id: device.clone(),
                        msg_id: msg.clone(),
                        event: event_type(row.try_get("event")?)?,
                        received_at: Timestamp(row.try_get("received_at")?),
                        incident_id: row.try_get::<Option<i64>, _>("incident_id")?.map(|i| IncidentId(i as u64)),
                    })
                })
                .transpose()
            }

            async fn incident_count(&self) -> Result<u64, StoreError> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM incidents").fetch_one(&self.pool).await?;
                Ok(n as u64)
            }

            async fn history_id(&self) -> Result<String, StoreError> {
                sqlx::query("INSERT INTO anxin_meta (key, value) VALUES ('history_id', $1) ON CONFLICT (key) DO NOTHING")
                    .bind(new_history_id())
                    .execute(&self.pool)
                    .await?;
                Ok(sqlx::query_scalar("SELECT value FROM anxin_meta WHERE key = 'history_id'").fetch_one(&self.pool).await?)
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }
        }
    };
}

sql_store!(SqliteStore, Sqlite, SQLITE, None::<&str>);
// Two engines starting at once must not both migrate: the lock lasts until the transaction ends.
sql_store!(PostgresStore, Postgres, POSTGRES, Some("SELECT pg_advisory_xact_lock(7253110)"));

/// A fresh identity for a database's history of events: the time in nanoseconds mixed with
/// the process id, unique enough for telling one database from its replacement.
fn new_history_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("h{:x}", nanos ^ (u128::from(std::process::id()) << 64))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}
