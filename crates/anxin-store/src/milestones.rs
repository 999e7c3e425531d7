//! Each incident's milestones (`anxin_core::Milestones`) and each call's
//! (`anxin_core::CallMilestones`), folded from the event log into `incident_milestones` and
//! `call_milestones` behind the engine's commits, so that a supervisors' report reads one small
//! row an incident or a call instead of their trails (migrations 0022 and 0024).
//!
//! The fold is not part of the commit a press waits on: keeping the rows in the same commit
//! cost 9-15% more per batch of presses on PostgreSQL (`cargo bench -p anxin-benches --bench
//! store`, docs/benchmarks.md), for rows only a report reads. Instead each zone's events are
//! folded in `seq` order after they are stored, and `milestones_folded` holds, per zone, the
//! last `seq` folded in. A report folds whatever is left first ([`crate::ReportStore::report`]),
//! so it is as exact as one that read the events itself; anxind also folds every
//! [`FOLD_EVERY`] so that a report seldom has much to do.
//!
//! Why `seq` order is enough: a zone's events are numbered one after another by the one engine
//! running the zone, and committed a batch at a time, each after the last (a stale owner's
//! commit is fenced, and a new owner numbers on from what is stored). So when a fold sees
//! `seq` n, every event of the zone numbered below n is stored. A missing number is passed over
//! only once the event after it is [`GAP_GRACE`] old (no commit is in flight that long): a gap
//! can then never stop the fold, and the wait covers a commit that lands late should commits
//! ever overlap.
//!
//! An event this build cannot read (a newer engine's, in a rolling upgrade) is passed over
//! with a warning, and counted ([`crate::ReportStore::unreadable_events`]; anxind's
//! `anxin_reports_unreadable_events_total`): one row must not stop every report.
//!
//! Folding is idempotent and order-free (the earliest time, a flag once set stays set; the mark
//! only moves forward), so two folds at once (two reports, or two nodes of a cluster) do the
//! same work twice and leave the same rows. Migration 0023 made the rows of the incidents
//! stored before 0022, with the same definitions in SQL, and set the marks; 0024 made the calls'
//! rows of every call stored before it (the marks already past them).

use std::time::Duration;

/// How often anxind folds the events stored since the last fold.
pub const FOLD_EVERY: Duration = Duration::from_secs(30);

/// How old the event after a missing `seq` must be before the fold passes over the gap.
pub const GAP_GRACE: Duration = Duration::from_secs(60);

/// Most events one pass of a fold reads from a zone.
pub(crate) const FOLD_CHUNK: i64 = 20_000;

/// `column = ` the earlier of table `$t`'s row's and the new one's, for each column listed,
/// either of which may be `NULL` (as portable SQL: SQLite's two-argument `MIN` is `NULL` if
/// either is, PostgreSQL's `LEAST` passes over a `NULL`).
macro_rules! earliest {
    (@one $t:literal, $c:literal) => {
        concat!($c, " = CASE WHEN ", $t, ".", $c, " IS NULL OR excluded.", $c, " < ", $t, ".", $c,
            " THEN excluded.", $c, " ELSE ", $t, ".", $c, " END")
    };
    ($t:literal: $first:literal $(, $c:literal)*) => {
        concat!(earliest!(@one $t, $first) $(, ", ", earliest!(@one $t, $c))*)
    };
}

/// `column = ` the row's flag or the new one's, for each column listed.
macro_rules! either {
    ($t:literal: $first:literal $(, $c:literal)*) => {
        concat!($first, " = ", $t, ".", $first, " OR excluded.", $first
            $(, ", ", $c, " = ", $t, ".", $c, " OR excluded.", $c)*)
    };
}

pub(crate) const INSERT_MILESTONES: &str = "INSERT INTO incident_milestones (opened_at, id, pressed_at, station_id, \
     emergency_at, answered_at, dispatched_at, first_offer_at, accepted_at, on_scene_at, ended_at, nobody_going, \
     called_120, called_110, called_119, false_alarm, cancelled, welfare, outcome) ";

/// A row stored already takes in the new one as [`anxin_core::Milestones::merge`] does, and
/// keeps its station. (Every `SET` reads the row as it was: the outcome goes with the earlier
/// end before `ended_at` itself moves.)
pub(crate) const MILESTONES_CONFLICT: &str = concat!(
    " ON CONFLICT (opened_at, id) DO UPDATE SET ",
    "outcome = CASE WHEN excluded.ended_at IS NOT NULL AND (incident_milestones.ended_at IS NULL \
     OR excluded.ended_at < incident_milestones.ended_at) THEN excluded.outcome ELSE incident_milestones.outcome END, ",
    "welfare = COALESCE(incident_milestones.welfare, excluded.welfare), ",
    earliest!("incident_milestones": "emergency_at", "answered_at", "dispatched_at", "first_offer_at",
        "accepted_at", "on_scene_at", "ended_at"),
    ", ",
    either!("incident_milestones": "nobody_going", "called_120", "called_110", "called_119", "false_alarm",
        "cancelled"),
);

pub(crate) const INSERT_CALLS: &str =
    "INSERT INTO call_milestones (incident_id, call_id, station_id, rang_at, answered_at, ended_at) ";

/// A call's row stored already takes in the new one as [`anxin_core::CallMilestones::merge`]
/// does, and keeps its station.
pub(crate) const CALLS_CONFLICT: &str = concat!(
    " ON CONFLICT (incident_id, call_id) DO UPDATE SET ",
    earliest!("call_milestones": "rang_at", "answered_at", "ended_at"),
);

/// A zone's mark moves forward only.
pub(crate) const MARK: &str = "INSERT INTO milestones_folded (zone, seq) VALUES ($1, $2) \
     ON CONFLICT (zone) DO UPDATE SET seq = CASE WHEN excluded.seq > milestones_folded.seq \
     THEN excluded.seq ELSE milestones_folded.seq END";

/// How many of one zone's events (each its `seq` and `at`, in order) a fold takes: from
/// `mark + 1` on, up to a missing number whose next event is younger than [`GAP_GRACE`] (`now`
/// by the wall clock).
pub(crate) fn contiguous(events: &[(u64, i64)], mark: u64, now: anxin_core::Timestamp) -> usize {
    let grace = GAP_GRACE.as_millis() as i64;
    let mut expected = mark + 1;
    for (n, (seq, at)) in events.iter().enumerate() {
        if *seq != expected && *at > now.millis() - grace {
            return n;
        }
        expected = seq + 1;
    }
    events.len()
}

/// Implements [`crate::ReportStore::fold_milestones`] for a store (expanded in `sql.rs`,
/// beside the store's own readers).
macro_rules! fold_milestones {
    ($store:ty, $db:ty) => {
        impl $store {
            /// One pass: each zone's events after its mark, up to `FOLD_CHUNK` a zone, folded and
            /// stored, then the marks moved. Returns the events folded, and whether some zone had
            /// a full chunk (so more may be waiting).
            pub(crate) async fn fold_milestones_once(&self) -> Result<(u64, bool), StoreError> {
                use crate::milestones::{
                    contiguous, CALLS_CONFLICT, FOLD_CHUNK, INSERT_CALLS, INSERT_MILESTONES, MARK, MILESTONES_CONFLICT,
                };
                use anxin_core::{CallMilestones, Milestones, Zone};
                let marks: HashMap<u16, u64> = sqlx::query("SELECT zone, seq FROM milestones_folded")
                    .fetch_all(&self.pool)
                    .await?
                    .iter()
                    .map(|r| Ok((r.try_get::<i64, _>("zone")? as u16, r.try_get::<i64, _>("seq")? as u64)))
                    .collect::<Result<_, StoreError>>()?;
                // The zones with events: each the zone of the lowest number above the last one's
                // range (an index probe a zone).
                let mut zones = Vec::new();
                let mut from = 0u64;
                while let Some(seq) =
                    sqlx::query_scalar::<_, Option<i64>>("SELECT MIN(seq) FROM incident_events WHERE seq > $1")
                        .bind(from as i64)
                        .fetch_one(&self.pool)
                        .await?
                {
                    let zone = Zone::of(seq as u64);
                    zones.push(zone);
                    from = zone.end() - 1;
                }
                let now = anxin_proto::wall_clock_now();
                let mut folded: HashMap<IncidentId, Milestones> = HashMap::new();
                let mut calls: HashMap<(IncidentId, String), CallMilestones> = HashMap::new();
                let mut moved = Vec::new();
                let (mut count, mut full) = (0u64, false);
                for zone in zones {
                    let mark = marks.get(&zone.number()).copied().unwrap_or(zone.base()).max(zone.base());
                    let rows = sqlx::query(
                        "SELECT seq, incident_id, at, actor, body FROM incident_events \
                         WHERE seq > $1 AND seq < $2 ORDER BY seq LIMIT $3",
                    )
                    .bind(mark as i64)
                    .bind(zone.end() as i64)
                    .bind(FOLD_CHUNK)
                    .fetch_all(&self.pool)
                    .await?;
                    let numbers = rows
                        .iter()
                        .map(|r| Ok((r.try_get::<i64, _>("seq")? as u64, r.try_get::<i64, _>("at")?)))
                        .collect::<Result<Vec<_>, StoreError>>()?;
                    let taken = contiguous(&numbers, mark, now);
                    // More may wait only behind a chunk taken whole: a chunk stopped at a fresh gap
                    // would be read again, and stopped again, for as long as another zone had
                    // new events each pass.
                    full |= taken as i64 == FOLD_CHUNK;
                    for row in &rows[..taken] {
                        match Self::event_of(row) {
                            Ok(e) => {
                                folded.entry(e.incident_id).or_default().absorb(&e);
                                if let Some((call, m)) = CallMilestones::of_event(&e) {
                                    calls.entry((e.incident_id, call.to_string())).or_default().merge(&m);
                                }
                            }
                            // One event this build cannot read (a newer engine's, say) must not
                            // stop every report: it is passed over, and said.
                            Err(error) => {
                                self.unreadable.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                tracing::warn!(
                                    seq = row.try_get::<i64, _>("seq").unwrap_or_default(),
                                    %error,
                                    "an event that cannot be read is left out of the reports' milestones"
                                )
                            }
                        }
                    }
                    if taken > 0 {
                        moved.push((zone, numbers[taken - 1].0));
                        count += taken as u64;
                    }
                }
                if count == 0 {
                    return Ok((0, false));
                }
                let mut folded: Vec<(IncidentId, Milestones)> = folded.into_iter().collect();
                folded.sort_by_key(|(id, _)| *id);
                // Each incident's key and times, from its row, and its elder's station now (a row
                // made once: the station when it happened, within a fold of it); its calls' rows
                // take the same station.
                let mut of: HashMap<i64, (i64, i64, Option<String>)> = HashMap::new();
                // The rows in statements of `CHUNK` each, on their own: on SQLite a long write
                // would hold the engine's commits up. One cut short leaves rows that the next
                // fold merges again, to the same, since the marks move only after them all.
                for chunk in folded.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new(
                        "SELECT i.id, i.opened_at, i.pressed_at, el.station_id FROM incidents i \
                         LEFT JOIN elders el ON el.id = i.elder_id WHERE i.id IN (",
                    );
                    let mut ids = q.separated(", ");
                    for (id, _) in chunk {
                        ids.push_bind(id.0 as i64);
                    }
                    ids.push_unseparated(")");
                    for row in q.build().fetch_all(&self.pool).await? {
                        of.insert(
                            row.try_get("id")?,
                            (row.try_get("opened_at")?, row.try_get("pressed_at")?, row.try_get("station_id")?),
                        );
                    }
                    let rows: Vec<_> =
                        chunk.iter().filter_map(|(id, m)| of.get(&(id.0 as i64)).map(|i| (id, i, m))).collect();
                    if rows.len() < chunk.len() {
                        tracing::warn!(
                            missing = chunk.len() - rows.len(),
                            "events of incidents with no row: their milestones are not kept"
                        );
                    }
                    if rows.is_empty() {
                        continue;
                    }
                    let mut q = QueryBuilder::<$db>::new(INSERT_MILESTONES);
                    q.push_values(rows, |mut b, (id, (opened_at, pressed_at, station_id), m)| {
                        b.push_bind(*opened_at)
                            .push_bind(id.0 as i64)
                            .push_bind(*pressed_at)
                            .push_bind(station_id.clone());
                        for at in [
                            m.emergency_at,
                            m.answered_at,
                            m.dispatched_at,
                            m.first_offer_at,
                            m.accepted_at,
                            m.on_scene_at,
                            m.ended_at,
                        ] {
                            b.push_bind(at.map(|t| t.millis()));
                        }
                        for flag in
                            [m.nobody_going, m.called_120, m.called_110, m.called_119, m.false_alarm, m.cancelled]
                        {
                            b.push_bind(flag);
                        }
                        b.push_bind(m.welfare.map(|t| t.as_str())).push_bind(m.outcome.code());
                    });
                    q.push(MILESTONES_CONFLICT);
                    q.build().execute(&self.pool).await?;
                }
                // Each call's row, under its incident's station (a call on an incident with no row
                // was warned of above).
                let mut calls: Vec<_> = calls
                    .into_iter()
                    .filter_map(|((id, call), m)| of.get(&(id.0 as i64)).map(|(_, _, s)| (id, call, s.clone(), m)))
                    .collect();
                calls.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
                for chunk in calls.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new(INSERT_CALLS);
                    q.push_values(chunk, |mut b, (id, call, station, m)| {
                        b.push_bind(id.0 as i64).push_bind(call.clone()).push_bind(station.clone());
                        for at in [m.rang_at, m.answered_at, m.ended_at] {
                            b.push_bind(at.map(|t| t.millis()));
                        }
                    });
                    q.push(CALLS_CONFLICT);
                    q.build().execute(&self.pool).await?;
                }
                let mut tx = self.pool.begin().await?;
                for (zone, seq) in moved {
                    sqlx::query(MARK).bind(i64::from(zone.number())).bind(seq as i64).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok((count, full))
            }
        }
    };
}
pub(crate) use fold_milestones;

#[cfg(test)]
mod tests {
    use super::*;
    use anxin_core::Timestamp;

    fn at(seq: u64, ms: i64) -> (u64, i64) {
        (seq, ms)
    }

    #[test]
    fn a_fold_stops_at_a_fresh_gap_and_passes_an_old_one() {
        let now = Timestamp(1_000_000);
        let fresh = now.millis() - 1_000;
        let old = now.millis() - GAP_GRACE.as_millis() as i64 - 1;
        assert_eq!(contiguous(&[at(11, fresh), at(12, fresh), at(13, fresh)], 10, now), 3, "no gap");
        assert_eq!(contiguous(&[at(11, fresh), at(13, fresh)], 10, now), 1, "12 may be in flight");
        assert_eq!(contiguous(&[at(12, fresh)], 10, now), 0, "11 may be in flight");
        assert_eq!(contiguous(&[at(11, old), at(13, old), at(14, fresh)], 10, now), 3, "12 is long gone");
        assert_eq!(contiguous(&[], 10, now), 0);
    }
}
