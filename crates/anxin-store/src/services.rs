//! Service orders (`service_orders`, `service_order_events`): written in the engine's commits,
//! read back at start (open orders, and this and last month's for capacity and allowances),
//! and read by the services board, an order's history and the monthly statements. The
//! statements are the same for both databases; the macros instantiate them for each.

use crate::StoreError;
use anxin_core::{ElderId, OrderEvent, OrderId, ServiceOrder, Timestamp};
use async_trait::async_trait;
use std::collections::HashMap;

/// Which orders to read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderQuery {
    /// Only orders whose wanted window starts at or after this…
    pub from: Option<Timestamp>,
    /// …and before this.
    pub to: Option<Timestamp>,
    pub elder: Option<String>,
    pub provider: Option<String>,
    /// Only orders in one of these states (their names); all when empty.
    pub states: Vec<String>,
    pub limit: u32,
}

/// The orders, as the board, the statements and the tests read them.
#[async_trait]
pub trait ServiceStore: Send + Sync {
    /// Orders matching `q`, by their window's start then id.
    async fn orders(&self, q: &OrderQuery) -> Result<Vec<ServiceOrder>, StoreError>;
    /// One order as it is now, open or over; `None` for a number never given.
    async fn order(&self, id: OrderId) -> Result<Option<ServiceOrder>, StoreError>;
    /// One order's log, in order.
    async fn order_events(&self, id: OrderId) -> Result<Vec<OrderEvent>, StoreError>;
    /// The names of these elders (retired ones too) and of every provider and worker, for
    /// statements and histories.
    async fn names(&self, elders: &[ElderId]) -> Result<Names, StoreError>;
}

/// Elders' and providers' names by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Names {
    pub elders: HashMap<String, String>,
    pub providers: HashMap<String, String>,
    /// Every service worker's (a responder with a provider), retired ones too.
    pub workers: HashMap<String, String>,
}

pub(crate) const ORDER_COLUMNS: &str =
    "id, elder_id, category, state, provider_id, window_from, window_to, placed_at, updated_at, body";

/// Upserts by id, never replacing a row with an older one (batches may commit out of order).
pub(crate) const ORDERS_CONFLICT: &str = " ON CONFLICT (id) DO UPDATE SET state = excluded.state, \
     provider_id = excluded.provider_id, window_from = excluded.window_from, window_to = excluded.window_to, \
     updated_at = excluded.updated_at, body = excluded.body WHERE service_orders.updated_at <= excluded.updated_at";

/// The states whose life is over: an order in one is read back at start only if recent.
pub(crate) const TERMINAL: &str = "('confirmed', 'settled', 'cancelled')";

/// The last row per order of a batch, in order.
pub(crate) fn latest(orders: &[ServiceOrder]) -> Vec<&ServiceOrder> {
    let mut last = std::collections::HashMap::new();
    for (i, o) in orders.iter().enumerate() {
        last.insert(o.id, i);
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    keep.into_iter().map(|i| &orders[i]).collect()
}

pub(crate) fn order_body(o: &ServiceOrder) -> String {
    serde_json::to_string(o).expect("an order serialises")
}

pub(crate) fn order_of(body: &str) -> Result<ServiceOrder, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("service order: {e}")))
}

/// `write_orders` (inside a batch's transaction) and `resume_orders` for one database.
macro_rules! order_rows {
    ($db:ty) => {
        pub(crate) async fn write_orders(
            tx: &mut sqlx::Transaction<'_, $db>,
            orders: &[anxin_core::ServiceOrder],
            events: &[anxin_core::OrderEvent],
        ) -> Result<(), sqlx::Error> {
            use crate::services::{latest, order_body, ORDERS_CONFLICT, ORDER_COLUMNS};
            for chunk in latest(orders).chunks(crate::sql::CHUNK / 2) {
                let mut q = sqlx::QueryBuilder::<$db>::new(format!("INSERT INTO service_orders ({ORDER_COLUMNS}) "));
                q.push_values(chunk, |mut b, o| {
                    b.push_bind(o.id.0 as i64)
                        .push_bind(o.elder_id.as_str())
                        .push_bind(o.category.as_str())
                        .push_bind(o.state.as_str())
                        .push_bind(o.provider_id.as_ref().map(|p| p.as_str()))
                        .push_bind(o.from.millis())
                        .push_bind(o.to.millis())
                        .push_bind(o.placed_at.millis())
                        .push_bind(o.updated_at.millis())
                        .push_bind(order_body(o));
                });
                q.push(ORDERS_CONFLICT);
                q.build().execute(&mut **tx).await?;
            }
            for chunk in events.chunks(crate::sql::CHUNK / 2) {
                let mut q = sqlx::QueryBuilder::<$db>::new(
                    "INSERT INTO service_order_events (seq, order_id, at, actor, change, body) ",
                );
                q.push_values(chunk, |mut b, e| {
                    b.push_bind(e.seq as i64)
                        .push_bind(e.order_id.0 as i64)
                        .push_bind(e.at.millis())
                        .push_bind(crate::sql::actor_column(&e.actor))
                        .push_bind(e.change.name())
                        .push_bind(serde_json::to_string(&e.change).expect("a change serialises"));
                });
                q.push(" ON CONFLICT (seq) DO NOTHING");
                q.build().execute(&mut **tx).await?;
            }
            Ok(())
        }

        /// `zone`'s orders still open and those wanted since `since`, its highest order id
        /// and its highest order event's sequence number.
        pub(crate) async fn resume_orders(
            &self,
            zone: anxin_core::Zone,
            since: anxin_core::Timestamp,
        ) -> Result<(Vec<anxin_core::ServiceOrder>, u64, u64), crate::StoreError> {
            use sqlx::Row;
            let (lo, hi) = (zone.base() as i64, zone.end() as i64);
            let rows = sqlx::query(&format!(
                "SELECT body FROM service_orders WHERE (state NOT IN {} OR window_from >= $1) AND id > $2 AND id < $3 \
                 ORDER BY id",
                crate::services::TERMINAL
            ))
            .bind(since.millis())
            .bind(lo)
            .bind(hi)
            .fetch_all(&self.pool)
            .await?;
            let orders = rows
                .iter()
                .map(|r| crate::services::order_of(&r.try_get::<String, _>("body")?))
                .collect::<Result<Vec<_>, _>>()?;
            let last_id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) FROM service_orders WHERE id > $1 AND id < $2")
                .bind(lo)
                .bind(hi)
                .fetch_one(&self.pool)
                .await?;
            let last_seq: i64 =
                sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM service_order_events WHERE seq > $1 AND seq < $2")
                    .bind(lo)
                    .bind(hi)
                    .fetch_one(&self.pool)
                    .await?;
            Ok((orders, last_id as u64, last_seq as u64))
        }
    };
}
pub(crate) use order_rows;

macro_rules! service_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::services::ServiceStore for $store {
            async fn orders(
                &self,
                q: &crate::services::OrderQuery,
            ) -> Result<Vec<anxin_core::ServiceOrder>, crate::StoreError> {
                use sqlx::Row;
                let mut sql =
                    String::from("SELECT body FROM service_orders WHERE window_from >= $1 AND window_from < $2");
                sql.push_str(" AND ($3 IS NULL OR elder_id = $3) AND ($4 IS NULL OR provider_id = $4)");
                if !q.states.is_empty() {
                    // Names checked against the states the core knows: never text from outside.
                    let names: Vec<String> = q
                        .states
                        .iter()
                        .filter_map(|s| anxin_core::OrderState::parse(s))
                        .map(|s| format!("'{}'", s.as_str()))
                        .collect();
                    if names.is_empty() {
                        return Ok(Vec::new());
                    }
                    sql.push_str(&format!(" AND state IN ({})", names.join(", ")));
                }
                sql.push_str(" ORDER BY window_from, id LIMIT $5");
                let rows = sqlx::query(&sql)
                    .bind(q.from.map_or(i64::MIN, |t| t.millis()))
                    .bind(q.to.map_or(i64::MAX, |t| t.millis()))
                    .bind(q.elder.as_deref())
                    .bind(q.provider.as_deref())
                    .bind(i64::from(q.limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.iter().map(|r| crate::services::order_of(&r.try_get::<String, _>("body")?)).collect()
            }

            async fn order(
                &self,
                id: anxin_core::OrderId,
            ) -> Result<Option<anxin_core::ServiceOrder>, crate::StoreError> {
                use sqlx::Row;
                let row = sqlx::query("SELECT body FROM service_orders WHERE id = $1")
                    .bind(id.0 as i64)
                    .fetch_optional(&self.pool)
                    .await?;
                row.map(|r| crate::services::order_of(&r.try_get::<String, _>("body")?)).transpose()
            }

            async fn order_events(
                &self,
                id: anxin_core::OrderId,
            ) -> Result<Vec<anxin_core::OrderEvent>, crate::StoreError> {
                use sqlx::Row;
                let rows = sqlx::query(
                    "SELECT seq, order_id, at, actor, body FROM service_order_events WHERE order_id = $1 ORDER BY seq",
                )
                .bind(id.0 as i64)
                .fetch_all(&self.pool)
                .await?;
                rows.iter()
                    .map(|r| {
                        Ok(anxin_core::OrderEvent {
                            seq: r.try_get::<i64, _>("seq")? as u64,
                            order_id: anxin_core::OrderId(r.try_get::<i64, _>("order_id")? as u64),
                            at: anxin_core::Timestamp(r.try_get("at")?),
                            actor: crate::sql::parse_actor(&r.try_get::<String, _>("actor")?)?,
                            change: serde_json::from_str(&r.try_get::<String, _>("body")?)
                                .map_err(|e| crate::StoreError::Corrupt(format!("order event: {e}")))?,
                        })
                    })
                    .collect()
            }

            async fn names(&self, elders: &[anxin_core::ElderId]) -> Result<crate::services::Names, crate::StoreError> {
                use sqlx::Row;
                let mut names = crate::services::Names::default();
                for r in sqlx::query("SELECT id, name FROM providers").fetch_all(&self.pool).await? {
                    names.providers.insert(r.try_get("id")?, r.try_get("name")?);
                }
                let workers = sqlx::query("SELECT id, name FROM responders WHERE provider_id IS NOT NULL");
                for r in workers.fetch_all(&self.pool).await? {
                    names.workers.insert(r.try_get("id")?, r.try_get("name")?);
                }
                for chunk in elders.chunks(crate::sql::CHUNK) {
                    let mut q = sqlx::QueryBuilder::new("SELECT id, name FROM elders WHERE id IN (");
                    let mut ids = q.separated(", ");
                    for e in chunk {
                        ids.push_bind(e.as_str());
                    }
                    q.push(")");
                    for r in q.build().fetch_all(&self.pool).await? {
                        names.elders.insert(r.try_get("id")?, r.try_get("name")?);
                    }
                }
                Ok(names)
            }
        }
    };
}
pub(crate) use service_store;
