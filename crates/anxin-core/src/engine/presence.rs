//! Presence: which dispatchers have a console connected, and the end of the claims of those
//! who signed out or stayed away. A claim says "I have this one"; it must not outlive the
//! person, or an incident that needs somebody sits behind the name of somebody gone.

use super::{Engine, Outbox};
use crate::ids::{IncidentId, Timestamp};
use crate::incident::*;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Who is connected, and when each absent claimant's claims end.
#[derive(Debug, Default)]
pub(crate) struct Presence {
    online: HashSet<String>,
    /// When each absent dispatcher's claims end, in time order and by dispatcher.
    releases: BTreeSet<(Timestamp, String)>,
    release_at: HashMap<String, Timestamp>,
    /// Whether absences have been counted from a known moment (see [`Engine::start_presence`]).
    started: bool,
}

impl Presence {
    pub(crate) fn next_release(&self) -> Option<Timestamp> {
        self.releases.first().map(|(t, _)| *t)
    }

    fn schedule(&mut self, staff: &str, at: Timestamp) {
        self.unschedule(staff);
        self.releases.insert((at, staff.to_string()));
        self.release_at.insert(staff.to_string(), at);
    }

    fn unschedule(&mut self, staff: &str) {
        if let Some(at) = self.release_at.remove(staff) {
            self.releases.remove(&(at, staff.to_string()));
        }
    }
}

impl Engine {
    /// Counts absences from `now`: a dispatcher who holds claims but has no console connected
    /// (after a restart, nobody has yet) loses them if still away after
    /// `Policy::claim_offline_release_ms`. The shell calls this once, when it starts.
    pub fn start_presence(&mut self, now: Timestamp) {
        if self.presence.started {
            return;
        }
        self.presence.started = true;
        let claimants: BTreeSet<String> = self.open.values().filter_map(|i| i.claimed_by.clone()).collect();
        for staff in claimants {
            if !self.presence.online.contains(&staff) {
                self.presence.schedule(&staff, now.plus_millis(self.policy.claim_offline_release_ms));
            }
        }
    }

    /// A dispatcher's first console connected (`online`) or their last one closed.
    pub fn staff_presence(&mut self, staff: &str, online: bool, now: Timestamp) {
        if online {
            self.presence.online.insert(staff.to_string());
            self.presence.unschedule(staff);
        } else {
            self.presence.online.remove(staff);
            self.presence.schedule(staff, now.plus_millis(self.policy.claim_offline_release_ms));
        }
    }

    /// Whether a dispatcher has a console connected.
    pub fn is_online(&self, staff: &str) -> bool {
        self.presence.online.contains(staff)
    }

    /// A dispatcher signed out: their claims end now.
    pub fn staff_signed_out(&mut self, staff: &str, now: Timestamp, out: &mut Outbox) {
        self.presence.online.remove(staff);
        self.presence.unschedule(staff);
        self.end_claims(staff, ClaimEnd::SignedOut, now, out);
    }

    /// Ends the claims of dispatchers away for longer than the policy allows.
    pub(super) fn release_absent_claims(&mut self, now: Timestamp, out: &mut Outbox) {
        while let Some((at, staff)) = self.presence.releases.first().cloned() {
            if at > now {
                break;
            }
            self.presence.unschedule(&staff);
            self.end_claims(&staff, ClaimEnd::Offline, now, out);
        }
    }

    fn end_claims(&mut self, staff: &str, why: ClaimEnd, now: Timestamp, out: &mut Outbox) {
        let held: Vec<IncidentId> =
            self.open.values().filter(|i| i.claimed_by.as_deref() == Some(staff)).map(|i| i.id).collect();
        for id in held {
            let change = Change::Released { by: staff.to_string(), why: Some(why) };
            self.record(id, change, Actor::Engine, now, out);
            self.after_change(id, out);
        }
    }
}
