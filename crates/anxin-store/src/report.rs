//! Supervisors' reports: the SQL both stores run, and the rows it feeds to
//! `anxin_core::report::ReportBuilder`.
//!
//! The incidents' query reads the period's rows of `incident_milestones` (one small row an
//! incident, keyed by when it opened: `anxin_core::Milestones`, folded from the events behind
//! the engine's commits, [`crate::milestones`], and filled in for the incidents stored before
//! migration 0022 by 0023) and nothing else; a report folds what is left first. The calls' query
//! likewise reads the period's rows of `call_milestones` (a row a call, by when it rang:
//! `anxin_core::CallMilestones`, folded with the incidents', and filled in by migration 0024).
//! `examples/report_load.rs` times both over a year of generated incidents
//! (docs/benchmarks.md), and, with `--compare`, [`INCIDENT_FACTS_FROM_EVENTS`] and
//! [`CALL_EVENTS`], the queries before 0022 and 0024, which read the events.

use crate::StoreError;
use anxin_core::{
    CallFacts, CallMilestones, IncidentFacts, Milestones, Report, ReportQuery, TaskOutcome, WelfareReason,
};
use async_trait::async_trait;

/// Reads a report.
#[async_trait]
pub trait ReportStore {
    /// The report `q` asks for, from the stored events: their milestones folded in first
    /// ([`ReportStore::fold_milestones`]), so that it holds every event stored before it.
    async fn report(&self, q: &ReportQuery) -> Result<Report, StoreError>;

    /// Folds the events stored since the last fold into `incident_milestones` and `call_milestones`
    /// ([`crate::milestones`]). Returns how many.
    async fn fold_milestones(&self) -> Result<u64, StoreError>;

    /// How many events the folds have passed over because this build cannot read them (a
    /// newer engine's, in a rolling upgrade), since the store was opened: each is missing from
    /// the reports' figures.
    fn unreadable_events(&self) -> u64;
}

/// One row per incident opened in `[$1, $2)`, with its milestones and the station its elder was
/// enrolled with then: one range of `incident_milestones`' key, a period's rows together, and
/// nothing joined.
pub const INCIDENT_FACTS: &str = "\
SELECT m.id, m.pressed_at, m.opened_at, m.station_id, m.emergency_at, m.answered_at, m.dispatched_at, \
  m.first_offer_at, m.accepted_at, m.on_scene_at, m.ended_at, m.nobody_going, m.called_120, m.called_110, \
  m.called_119, m.false_alarm, m.cancelled, m.welfare, m.outcome \
FROM incident_milestones m \
WHERE m.opened_at >= $1 AND m.opened_at < $2";

/// The same rows as [`INCIDENT_FACTS`] folded from each incident's events, as reports read
/// them before migration 0022: each milestone the first event of its sort (a conditional
/// `MIN` per milestone, grouped by incident), a kind or a number read from the event's
/// compact JSON body by `LIKE` (serde writes `"kind":"sos"` with no spaces, and a quote
/// inside a string value is escaped, so a pattern cannot match inside free text). Migration
/// 0023 fills the rows in with this fold; `report_load --compare` times the two.
pub const INCIDENT_FACTS_FROM_EVENTS: &str = "\
SELECT i.id, i.pressed_at, i.opened_at, el.station_id, f.* FROM (SELECT e.incident_id, \
  MIN(CASE WHEN (e.change = 'opened' AND (e.body LIKE '%\"kind\":\"sos\"%' OR e.body LIKE '%\"kind\":\"fall\"%' \
      OR e.body LIKE '%\"kind\":\"fire\"%' OR e.body LIKE '%\"kind\":\"intrusion\"%')) \
    OR (e.change = 'kind_changed' AND (e.body LIKE '%\"to\":\"sos\"%' OR e.body LIKE '%\"to\":\"fall\"%' \
      OR e.body LIKE '%\"to\":\"fire\"%' OR e.body LIKE '%\"to\":\"intrusion\"%')) THEN e.at END) AS emergency_at, \
  MIN(CASE WHEN e.actor LIKE 'dispatcher:%' OR e.change = 'accepted' THEN e.at END) AS answered_at, \
  MIN(CASE WHEN e.change IN ('offered', 'assigned') THEN e.at END) AS dispatched_at, \
  MIN(CASE WHEN e.change = 'offered' THEN e.at END) AS first_offer_at, \
  MIN(CASE WHEN e.change = 'accepted' THEN e.at END) AS accepted_at, \
  MIN(CASE WHEN e.change = 'on_scene' OR (e.change = 'resolved' AND e.actor LIKE 'responder:%') THEN e.at END) AS on_scene_at, \
  MIN(CASE WHEN e.change IN ('resolved', 'closed', 'cancelled', 'false_alarm') THEN e.at END) AS ended_at, \
  SUM(CASE WHEN e.change = 'nobody_going' THEN 1 ELSE 0 END) > 0 AS nobody_going, \
  SUM(CASE WHEN e.change = 'emergency_called' AND e.body LIKE '%\"number\":\"120\"%' THEN 1 ELSE 0 END) > 0 AS called_120, \
  SUM(CASE WHEN e.change = 'emergency_called' AND e.body LIKE '%\"number\":\"110\"%' THEN 1 ELSE 0 END) > 0 AS called_110, \
  SUM(CASE WHEN e.change = 'emergency_called' AND e.body LIKE '%\"number\":\"119\"%' THEN 1 ELSE 0 END) > 0 AS called_119, \
  SUM(CASE WHEN e.change = 'false_alarm' THEN 1 ELSE 0 END) > 0 AS false_alarm, \
  SUM(CASE WHEN e.change = 'cancelled' THEN 1 ELSE 0 END) > 0 AS cancelled, \
  MAX(CASE WHEN e.change = 'opened' AND e.body LIKE '%\"welfare\":\"device_offline\"%' THEN 'device_offline' WHEN e.change = 'opened' AND e.body LIKE '%\"welfare\":\"power_off\"%' THEN 'power_off' WHEN e.change = 'opened' AND e.body LIKE '%\"welfare\":\"low_battery\"%' THEN 'low_battery' WHEN e.change = 'opened' AND e.body LIKE '%\"welfare\":\"inactive\"%' THEN 'inactive' WHEN e.change = 'opened' AND e.body LIKE '%\"welfare\":\"scheduled_call\"%' THEN 'scheduled_call' WHEN e.change = 'opened' AND e.body LIKE '%\"welfare\":\"scheduled_visit\"%' THEN 'scheduled_visit' END) AS welfare, \
  CASE MIN(CASE WHEN e.change IN ('resolved', 'closed') THEN e.at * 8 + CASE WHEN e.body LIKE '%\"outcome\":\"well\"%' OR e.body LIKE '%\"outcome\":\"well:%' OR e.body LIKE '%\"outcome\":\"well %' THEN 1 WHEN e.body LIKE '%\"outcome\":\"needs_service\"%' OR e.body LIKE '%\"outcome\":\"needs_service:%' OR e.body LIKE '%\"outcome\":\"needs_service %' THEN 2 WHEN e.body LIKE '%\"outcome\":\"needs_help\"%' OR e.body LIKE '%\"outcome\":\"needs_help:%' OR e.body LIKE '%\"outcome\":\"needs_help %' THEN 3 WHEN e.body LIKE '%\"outcome\":\"no_answer\"%' OR e.body LIKE '%\"outcome\":\"no_answer:%' OR e.body LIKE '%\"outcome\":\"no_answer %' THEN 4 ELSE 0 END WHEN e.change IN ('cancelled', 'false_alarm') THEN e.at * 8 END) % 8 WHEN 1 THEN 'well' WHEN 2 THEN 'needs_service' WHEN 3 THEN 'needs_help' WHEN 4 THEN 'no_answer' END AS outcome \
FROM incident_events e \
WHERE e.incident_id IN (SELECT s.id FROM incidents s WHERE s.opened_at >= $1 AND s.opened_at < $2) \
GROUP BY e.incident_id) f \
JOIN incidents i ON i.id = f.incident_id \
LEFT JOIN elders el ON el.id = i.elder_id";

/// One row per call that rang in `[$1, $2)`, with its milestones and the station its elder was
/// enrolled with then: a range of `call_milestones_rang` (migration 0024).
pub const CALL_FACTS: &str = "\
SELECT c.incident_id, c.call_id, c.station_id, c.rang_at, c.answered_at, c.ended_at \
FROM call_milestones c \
WHERE c.rang_at >= $1 AND c.rang_at < $2";

/// Every service order whose wanted window opened in `[$1, $2)`, as it stands, with the station
/// its elder is enrolled with now (an order keeps no station of its own): by the index
/// `service_orders_window`.
pub const SERVICE_ORDERS: &str = "\
SELECT o.body, el.station_id \
FROM service_orders o \
LEFT JOIN elders el ON el.id = o.elder_id \
WHERE o.window_from >= $1 AND o.window_from < $2";

/// The events of every call that rang in `[$1, $2)`, in the log's order, with the station of
/// its incident (as its row of milestones has it), as reports read them before migration 0024
/// and folded them into [`anxin_core::CallMilestones`] in Rust; `report_load --compare` times
/// it against [`CALL_FACTS`].
pub const CALL_EVENTS: &str = "\
SELECT e.seq, e.incident_id, e.at, e.actor, e.body, m.station_id \
FROM incident_events e \
JOIN incidents i ON i.id = e.incident_id \
LEFT JOIN incident_milestones m ON m.opened_at = i.opened_at AND m.id = i.id \
WHERE e.change IN ('call_rang', 'call_answered', 'call_ended') \
  AND e.incident_id IN (SELECT r.incident_id FROM incident_events r \
    WHERE r.change = 'call_rang' AND r.at >= $1 AND r.at < $2) \
ORDER BY e.seq";

/// An incident's row of [`INCIDENT_FACTS`] (or of [`INCIDENT_FACTS_FROM_EVENTS`]).
pub fn facts<R: sqlx::Row>(row: &R) -> Result<IncidentFacts, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    bool: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    use anxin_core::{IncidentId, Timestamp};
    let at = |name: &str| -> Result<Option<Timestamp>, StoreError> {
        Ok(row.try_get::<Option<i64>, _>(name)?.map(Timestamp))
    };
    let yes = |name: &str| -> Result<bool, StoreError> { Ok(row.try_get::<bool, _>(name)?) };
    Ok(IncidentFacts {
        id: IncidentId(row.try_get::<i64, _>("id")? as u64),
        station: row.try_get::<Option<String>, _>("station_id")?,
        pressed_at: Timestamp(row.try_get::<i64, _>("pressed_at")?),
        opened_at: Timestamp(row.try_get::<i64, _>("opened_at")?),
        milestones: Milestones {
            emergency_at: at("emergency_at")?,
            answered_at: at("answered_at")?,
            dispatched_at: at("dispatched_at")?,
            first_offer_at: at("first_offer_at")?,
            accepted_at: at("accepted_at")?,
            on_scene_at: at("on_scene_at")?,
            ended_at: at("ended_at")?,
            nobody_going: yes("nobody_going")?,
            called_120: yes("called_120")?,
            called_110: yes("called_110")?,
            called_119: yes("called_119")?,
            false_alarm: yes("false_alarm")?,
            cancelled: yes("cancelled")?,
            welfare: match row.try_get::<Option<String>, _>("welfare")?.as_deref() {
                None => None,
                Some(reason) => Some(
                    WelfareReason::ALL
                        .into_iter()
                        .find(|r| r.as_str() == reason)
                        .ok_or_else(|| StoreError::Corrupt(format!("incident_milestones.welfare {reason:?}")))?,
                ),
            },
            outcome: TaskOutcome::of_code(row.try_get::<Option<String>, _>("outcome")?.as_deref()),
        },
    })
}

/// A call's row of [`CALL_FACTS`].
pub fn call_facts<R: sqlx::Row>(row: &R) -> Result<CallFacts, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    String: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    Option<String>: for<'a> sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    use anxin_core::{IncidentId, Timestamp};
    let at = |name: &str| -> Result<Option<Timestamp>, StoreError> {
        Ok(row.try_get::<Option<i64>, _>(name)?.map(Timestamp))
    };
    Ok(CallFacts {
        incident: IncidentId(row.try_get::<i64, _>("incident_id")? as u64),
        call_id: row.try_get("call_id")?,
        station: row.try_get("station_id")?,
        milestones: CallMilestones {
            rang_at: at("rang_at")?,
            answered_at: at("answered_at")?,
            ended_at: at("ended_at")?,
        },
    })
}

macro_rules! report_store {
    ($store:ty) => {
        #[async_trait::async_trait]
        impl crate::report::ReportStore for $store {
            async fn report(&self, q: &anxin_core::ReportQuery) -> Result<anxin_core::Report, crate::StoreError> {
                use futures_util::TryStreamExt;
                self.fold_milestones().await?;
                let mut builder = anxin_core::ReportBuilder::new(q.clone());
                let mut rows = sqlx::query(crate::report::INCIDENT_FACTS)
                    .bind(q.from.millis())
                    .bind(q.to.millis())
                    .fetch(&self.pool);
                while let Some(row) = rows.try_next().await? {
                    builder.incident(&crate::report::facts(&row)?);
                }
                drop(rows);
                let mut calls =
                    sqlx::query(crate::report::CALL_FACTS).bind(q.from.millis()).bind(q.to.millis()).fetch(&self.pool);
                while let Some(row) = calls.try_next().await? {
                    builder.call(&crate::report::call_facts(&row)?);
                }
                drop(calls);
                let mut orders = sqlx::query(crate::report::SERVICE_ORDERS)
                    .bind(q.from.millis())
                    .bind(q.to.millis())
                    .fetch(&self.pool);
                while let Some(row) = orders.try_next().await? {
                    use sqlx::Row;
                    let order = crate::services::order_of(&row.try_get::<String, _>("body")?)?;
                    builder.order(&order, row.try_get::<Option<String>, _>("station_id")?.as_deref());
                }
                Ok(builder.finish())
            }

            fn unreadable_events(&self) -> u64 {
                self.unreadable.load(std::sync::atomic::Ordering::Relaxed)
            }

            async fn fold_milestones(&self) -> Result<u64, crate::StoreError> {
                // Pass after pass while one took a full chunk from some zone.
                let mut total = 0;
                loop {
                    let (folded, full) = self.fold_milestones_once().await?;
                    total += folded;
                    if !full {
                        return Ok(total);
                    }
                }
            }
        }
    };
}
pub(crate) use report_store;
