//! Responders' phones: who is signed in by which token, and the latest view of each
//! responder's offer or job, pushed to their sockets as it changes.

use anxin_core::ResponderId;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

#[derive(Debug)]
struct Entry {
    /// The latest `hello` (who, on duty or not) and `job` frames.
    hello: Arc<str>,
    job: Arc<str>,
    tx: broadcast::Sender<Arc<str>>,
}

/// The phones' side of the engine's output. The lock is held only to copy or replace frames.
#[derive(Debug, Default)]
pub struct ResponderHub {
    /// Token hash → responder. Built at start from the registry.
    tokens: HashMap<String, ResponderId>,
    entries: Mutex<HashMap<ResponderId, Entry>>,
}

impl ResponderHub {
    pub fn new(tokens: HashMap<String, ResponderId>) -> Self {
        Self { tokens, entries: Mutex::default() }
    }

    /// The responder a sign-in token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<ResponderId> {
        if token.is_empty() || token.len() > 256 {
            return None;
        }
        self.tokens.get(&crate::commands::token_sha256(token)).cloned()
    }

    /// Replaces a responder's frames and pushes them to their open sockets.
    pub fn publish(&self, responder: &ResponderId, hello: String, job: String) {
        let mut entries = self.entries.lock().expect("responder hub lock");
        let entry = entries.entry(responder.clone()).or_insert_with(|| Entry {
            hello: Arc::from(""),
            job: Arc::from(""),
            tx: broadcast::channel(16).0,
        });
        let (hello, job): (Arc<str>, Arc<str>) = (hello.into(), job.into());
        if entry.hello != hello {
            entry.hello = hello.clone();
            let _ = entry.tx.send(hello);
        }
        if entry.job != job {
            entry.job = job.clone();
            let _ = entry.tx.send(job);
        }
    }

    /// The frames a phone gets on connecting, and its live feed.
    pub fn subscribe(&self, responder: &ResponderId) -> (Vec<Arc<str>>, broadcast::Receiver<Arc<str>>) {
        let mut entries = self.entries.lock().expect("responder hub lock");
        let entry = entries.entry(responder.clone()).or_insert_with(|| Entry {
            hello: Arc::from(""),
            job: Arc::from(""),
            tx: broadcast::channel(16).0,
        });
        let initial = [entry.hello.clone(), entry.job.clone()].into_iter().filter(|f| !f.is_empty()).collect();
        (initial, entry.tx.subscribe())
    }

    /// The latest job frame of a responder, for the REST fallback.
    pub fn job_frame(&self, responder: &ResponderId) -> Option<Arc<str>> {
        self.entries.lock().expect("responder hub lock").get(responder).map(|e| e.job.clone()).filter(|f| !f.is_empty())
    }

    /// The latest hello frame of a responder (who they are, on duty or not), for the REST
    /// fallback.
    pub fn hello_frame(&self, responder: &ResponderId) -> Option<Arc<str>> {
        self.entries
            .lock()
            .expect("responder hub lock")
            .get(responder)
            .map(|e| e.hello.clone())
            .filter(|f| !f.is_empty())
    }
}
