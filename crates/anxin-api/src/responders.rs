//! Responders' phones: who is signed in by which token, and the latest view of each
//! responder's offer or job, pushed to their sockets as it changes.

use anxin_core::{JobEnded, JobView, ResponderId, Timestamp};
use anxin_proto::ws::{PhoneOwner, ServerFrame};
use axum::extract::ws::Utf8Bytes;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::broadcast;

#[derive(Debug)]
struct Entry {
    /// The latest `hello` (who, on duty or not); `None` until the engine describes them.
    hello: Option<PhoneOwner>,
    /// The latest `job` (`Some(None)`: nothing offered or held).
    job: Option<Option<JobView>>,
    /// Why the job before went away, as the latest `job` frame said; kept so that a phone
    /// that was offline when it happened is told on connecting.
    ended: Option<JobEnded>,
    tx: broadcast::Sender<Utf8Bytes>,
}

impl Default for Entry {
    fn default() -> Self {
        Self { hello: None, job: None, ended: None, tx: broadcast::channel(16).0 }
    }
}

/// The phones' side of the engine's output. The lock is held only to copy or replace views.
#[derive(Debug, Default)]
pub struct ResponderHub {
    /// Token hash → responder. Built at start from the registry, kept up to date by the
    /// ledger's changes ([`ResponderHub::set_token`]).
    tokens: std::sync::RwLock<HashMap<String, ResponderId>>,
    entries: Mutex<HashMap<ResponderId, Entry>>,
}

impl ResponderHub {
    pub fn new(tokens: HashMap<String, ResponderId>) -> Self {
        Self { tokens: std::sync::RwLock::new(tokens), entries: Mutex::default() }
    }

    /// A responder's sign-in token from now on (its SHA-256 hex), or none: the old one stops
    /// working at once, and so does every token of a retired responder.
    pub fn set_token(&self, responder: &ResponderId, token_sha256: Option<&str>) {
        let mut tokens = self.tokens.write().expect("tokens lock");
        tokens.retain(|_, r| r != responder);
        if let Some(hash) = token_sha256 {
            tokens.insert(hash.to_ascii_lowercase(), responder.clone());
        }
    }

    /// The responder a sign-in token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<ResponderId> {
        if token.is_empty() || token.len() > 256 {
            return None;
        }
        self.tokens.read().expect("tokens lock").get(&crate::commands::token_sha256(token)).cloned()
    }

    /// Replaces a responder's views and pushes those that changed to their open sockets;
    /// `ended` goes with a changed job (why the one before went away).
    pub fn publish(&self, responder: &ResponderId, hello: PhoneOwner, job: Option<JobView>, ended: Option<JobEnded>) {
        let mut entries = self.entries.lock().expect("responder hub lock");
        let entry = entries.entry(responder.clone()).or_default();
        // Written only for a phone that is connected: one connecting later is sent the views
        // kept here, under the same lock ([`ResponderHub::subscribe`]). Most responders'
        // phones are not connected when an offer is made to them or taken away.
        let connected = entry.tx.receiver_count() > 0;
        if entry.hello.as_ref() != Some(&hello) {
            if connected {
                let _ = entry.tx.send(ServerFrame::Hello { responder: hello.clone() }.to_json().into());
            }
            entry.hello = Some(hello);
        }
        if entry.job.as_ref() != Some(&job) {
            if connected {
                let _ = entry.tx.send(ServerFrame::Job { job: job.clone(), ended: ended.clone() }.to_json().into());
            }
            entry.job = Some(job);
            entry.ended = ended;
        }
    }

    /// The frames a phone gets on connecting (its job stamped with the server's time `now`),
    /// and its live feed.
    pub fn subscribe(
        &self,
        responder: &ResponderId,
        now: Timestamp,
    ) -> (Vec<Utf8Bytes>, broadcast::Receiver<Utf8Bytes>) {
        let mut entries = self.entries.lock().expect("responder hub lock");
        let entry = entries.entry(responder.clone()).or_default();
        let hello = entry.hello.clone().map(|responder| ServerFrame::Hello { responder });
        let ended = entry.ended.clone();
        let job = entry.job.clone().map(|job| ServerFrame::Job { job: restamp(job, now), ended });
        let initial = hello.into_iter().chain(job).map(|f| f.to_json().into()).collect();
        (initial, entry.tx.subscribe())
    }

    /// The latest job of a responder, stamped with the server's time `now`, for the REST
    /// fallback; `None` when they hold nothing or are not described yet.
    pub fn job(&self, responder: &ResponderId, now: Timestamp) -> Option<JobView> {
        let entries = self.entries.lock().expect("responder hub lock");
        restamp(entries.get(responder)?.job.clone()?, now)
    }

    /// Who a responder is and whether they are on duty, for the REST fallback; `None` until
    /// the engine has described them.
    pub fn hello(&self, responder: &ResponderId) -> Option<PhoneOwner> {
        self.entries.lock().expect("responder hub lock").get(responder)?.hello.clone()
    }
}

/// A stored job may be old by the time a phone asks: give it the server's time now, so the
/// phone's countdown to the offer's deadline is right.
fn restamp(job: Option<JobView>, now: Timestamp) -> Option<JobView> {
    job.map(|job| JobView { server_time: now, ..job })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anxin_core::StationId;

    fn owner(on_duty: bool) -> PhoneOwner {
        PhoneOwner {
            id: ResponderId::parse("r1").unwrap(),
            name: "Li".into(),
            station_id: StationId::parse("s1").unwrap(),
            station_name: "East".into(),
            on_duty,
            carer: None,
            worker: None,
        }
    }

    fn frame(text: &Utf8Bytes) -> serde_json::Value {
        serde_json::from_str(text.as_str()).unwrap()
    }

    /// What changed while no phone was connected is what a phone connecting later is sent;
    /// what changes while one is connected is pushed to it.
    #[test]
    fn a_phone_gets_the_latest_views_whether_it_was_connected_or_not() {
        let hub = ResponderHub::default();
        let r = ResponderId::parse("r1").unwrap();
        let now = Timestamp(1_000);
        hub.publish(&r, owner(true), None, None);
        hub.publish(&r, owner(false), None, None);
        let (initial, mut rx) = hub.subscribe(&r, now);
        let initial: Vec<_> = initial.iter().map(frame).collect();
        assert_eq!(initial.len(), 2, "{initial:?}");
        assert_eq!(initial[0]["type"], "hello");
        assert_eq!(initial[0]["responder"]["on_duty"], false, "the latest, not the first");
        assert_eq!(initial[1], serde_json::json!({"type": "job", "job": null}));

        hub.publish(&r, owner(true), None, None);
        let pushed = frame(&rx.try_recv().expect("pushed to the connected phone"));
        assert_eq!(pushed["responder"]["on_duty"], true);
        assert!(rx.try_recv().is_err(), "the job did not change, so it is not sent again");

        drop(rx);
        hub.publish(&r, owner(false), None, None);
        let (initial, _rx) = hub.subscribe(&r, now);
        assert_eq!(frame(&initial[0])["responder"]["on_duty"], false);
    }
}
