//! What the nodes of a cluster with its zones spread over them tell each other
//! (`[cluster] spread_zones`; docs/architecture.md, "Zones over nodes").

use anxin_core::{IncidentView, ResponderView};
use serde::{Deserialize, Serialize};

/// What the node running a zone has just committed in it, as consoles see it: published on
/// the zone's views topic ([`crate::Topics::zone_views`]) after the commit, for the other
/// nodes' consoles. `prev` is the zone's last sequence number before these views (a frame
/// with responders only has none after it): a node that has not seen `prev` has missed a
/// frame, and reads the zone back from the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ZoneViews {
    pub zone: u16,
    pub prev: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<IncidentView>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responders: Vec<ResponderView>,
}

impl ZoneViews {
    /// The zone's last sequence number after these views.
    pub fn last(&self) -> u64 {
        self.views.iter().map(|v| v.seq).max().unwrap_or(self.prev).max(self.prev)
    }
}
