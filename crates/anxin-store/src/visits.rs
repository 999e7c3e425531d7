//! The carers' visit log (`carer_visits`): written in the engine's commits, read back at
//! start (the open visits) and by whoever asks for the log. The statements are the same for
//! both databases; the macros instantiate them for each.

use crate::StoreError;
use anxin_core::{Coordinates, ElderId, IncidentId, ResponderId, Timestamp, Visit};
use async_trait::async_trait;
use sqlx::Row;

/// The visit log, as the HTTP side and the tests read it.
#[async_trait]
pub trait VisitStore: Send + Sync {
    /// Visits checked in at or after `since`, the latest first, at most `limit`; only
    /// `carer`'s when one is named.
    async fn carer_visits(
        &self,
        carer: Option<&ResponderId>,
        since: Timestamp,
        limit: u32,
    ) -> Result<Vec<Visit>, StoreError>;
}

pub(crate) const VISIT_COLUMNS: &str = "id, carer_id, elder_id, checked_in_at, checkin_lat, checkin_lon, distance_m, \
     last_seen_at, due_at, checked_out_at, checkout_lat, checkout_lon, alert_incident_id, overdue, is_open, updated_at";

/// Upserts by id, never replacing a row with an older one (batches may commit out of order).
pub(crate) const VISITS_CONFLICT: &str = " ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at, \
     due_at = excluded.due_at, checked_out_at = excluded.checked_out_at, checkout_lat = excluded.checkout_lat, \
     checkout_lon = excluded.checkout_lon, alert_incident_id = excluded.alert_incident_id, \
     overdue = excluded.overdue, is_open = excluded.is_open, updated_at = excluded.updated_at \
     WHERE carer_visits.updated_at <= excluded.updated_at";

/// The last row per visit of a batch, in order.
pub(crate) fn latest(visits: &[Visit]) -> Vec<&Visit> {
    let mut last = std::collections::HashMap::new();
    for (i, v) in visits.iter().enumerate() {
        last.insert(v.id, i);
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    keep.into_iter().map(|i| &visits[i]).collect()
}

/// A stored row read back.
pub(crate) fn visit_of<R: Row>(row: &R) -> Result<Visit, StoreError>
where
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<f64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
{
    let corrupt = |what: &str| StoreError::Corrupt(format!("carer visit: {what}"));
    let at = |lat: f64, lon: f64| Coordinates::new(lat, lon).map_err(|_| corrupt("position"));
    let checkout =
        match (row.try_get::<Option<f64>, _>("checkout_lat")?, row.try_get::<Option<f64>, _>("checkout_lon")?) {
            (Some(lat), Some(lon)) => Some(at(lat, lon)?),
            _ => None,
        };
    Ok(Visit {
        id: row.try_get::<i64, _>("id")? as u64,
        carer_id: ResponderId::parse(row.try_get::<String, _>("carer_id")?).map_err(|_| corrupt("carer id"))?,
        elder_id: ElderId::parse(row.try_get::<String, _>("elder_id")?).map_err(|_| corrupt("elder id"))?,
        checked_in_at: Timestamp(row.try_get("checked_in_at")?),
        checkin_at: at(row.try_get("checkin_lat")?, row.try_get("checkin_lon")?)?,
        distance_m: row.try_get("distance_m")?,
        last_seen_at: Timestamp(row.try_get("last_seen_at")?),
        due_at: Timestamp(row.try_get("due_at")?),
        checked_out_at: row.try_get::<Option<i64>, _>("checked_out_at")?.map(Timestamp),
        checkout_at: checkout,
        alert: row.try_get::<Option<i64>, _>("alert_incident_id")?.map(|i| IncidentId(i as u64)),
        overdue: row.try_get("overdue")?,
        updated_at: Timestamp(row.try_get("updated_at")?),
    })
}

/// `write_visits` (inside a batch's transaction) and `open_visits` for one database.
macro_rules! visit_rows {
    ($db:ty) => {
        pub(crate) async fn write_visits(
            tx: &mut sqlx::Transaction<'_, $db>,
            visits: &[anxin_core::Visit],
        ) -> Result<(), sqlx::Error> {
            use crate::visits::{latest, VISITS_CONFLICT, VISIT_COLUMNS};
            if visits.is_empty() {
                return Ok(());
            }
            for chunk in latest(visits).chunks(crate::sql::CHUNK / 2) {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!("INSERT INTO carer_visits ({VISIT_COLUMNS}) "));
                q.push_values(chunk, |mut b, v| {
                    b.push_bind(v.id as i64)
                        .push_bind(v.carer_id.as_str())
                        .push_bind(v.elder_id.as_str())
                        .push_bind(v.checked_in_at.millis())
                        .push_bind(v.checkin_at.lat())
                        .push_bind(v.checkin_at.lon())
                        .push_bind(v.distance_m)
                        .push_bind(v.last_seen_at.millis())
                        .push_bind(v.due_at.millis())
                        .push_bind(v.checked_out_at.map(|t| t.millis()))
                        .push_bind(v.checkout_at.map(|c| c.lat()))
                        .push_bind(v.checkout_at.map(|c| c.lon()))
                        .push_bind(v.alert.map(|i| i.0 as i64))
                        .push_bind(v.overdue)
                        .push_bind(v.is_open())
                        .push_bind(v.updated_at.millis());
                });
                q.push(VISITS_CONFLICT);
                q.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// The visits not checked out, and the highest visit id stored.
        /// `zone`'s visits not yet checked out, and its highest visit id.
        pub(crate) async fn open_visits(
            &self,
            zone: anxin_core::Zone,
        ) -> Result<(Vec<anxin_core::Visit>, u64), crate::StoreError> {
            use crate::visits::{visit_of, VISIT_COLUMNS};
            let (lo, hi) = (zone.base() as i64, zone.end() as i64);
            let rows = sqlx::query(&format!(
                "SELECT {VISIT_COLUMNS} FROM carer_visits WHERE is_open = $1 AND id > $2 AND id < $3 ORDER BY id"
            ))
            .bind(true)
            .bind(lo)
            .bind(hi)
            .fetch_all(&self.pool)
            .await?;
            let visits = rows.iter().map(visit_of).collect::<Result<Vec<_>, _>>()?;
            let last: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM carer_visits WHERE id > $1 AND id < $2")
                    .bind(lo)
                    .bind(hi)
                    .fetch_one(&self.pool)
                    .await?;
            Ok((visits, last as u64))
        }
    };
}
pub(crate) use visit_rows;

macro_rules! visit_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::visits::VisitStore for $store {
            async fn carer_visits(
                &self,
                carer: Option<&anxin_core::ResponderId>,
                since: anxin_core::Timestamp,
                limit: u32,
            ) -> Result<Vec<anxin_core::Visit>, crate::StoreError> {
                use crate::visits::{visit_of, VISIT_COLUMNS};
                let rows = sqlx::query(&format!(
                    "SELECT {VISIT_COLUMNS} FROM carer_visits WHERE checked_in_at >= $1 AND ($2 IS NULL OR carer_id = $2) \
                     ORDER BY checked_in_at DESC, id DESC LIMIT $3"
                ))
                .bind(since.millis())
                .bind(carer.map(|c| c.as_str()))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
                rows.iter().map(visit_of).collect()
            }
        }
    };
}
pub(crate) use visit_store;
