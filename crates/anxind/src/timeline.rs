//! Consoles' `timeline` and `history` questions, answered from the store: the API asks through its own
//! small trait and never sees the store.

use anxin_api::{Timeline, TimelineUnavailable};
use anxin_core::{ElderId, Incident, IncidentEvent, IncidentId, Timestamp};
use anxin_store::Store;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The store, as the API's [`Timeline`].
#[derive(Debug)]
pub struct StoreTimeline(pub Arc<dyn Store>);

impl Timeline for StoreTimeline {
    fn incident_events(
        &self,
        incident: IncidentId,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<IncidentEvent>, TimelineUnavailable>> + Send + '_>> {
        Box::pin(async move {
            self.0.incident_events(incident).await.map_err(|e| {
                tracing::warn!(error = %e, "cannot read an incident's events");
                TimelineUnavailable
            })
        })
    }

    fn elder_incidents(
        &self,
        elder: ElderId,
        since: Timestamp,
        limit: u32,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Incident>, TimelineUnavailable>> + Send + '_>> {
        Box::pin(async move {
            self.0.elder_incidents(&elder, since, limit).await.map_err(|e| {
                tracing::warn!(error = %e, "cannot read an elder's incidents");
                TimelineUnavailable
            })
        })
    }
}
