//! A node's zones' commits, gathered (issue 25; docs/architecture.md, "Zones over nodes"). Each
//! zone runs in an engine of its own (`crate::node`), which commits its batches in its own
//! order; on PostgreSQL most of a commit's cost is its wait for the disk (a WAL flush), the
//! same for one batch as for ten. So a node's engines hand their batches to one committer,
//! which runs at most `in_flight` transactions at once and puts every batch that waited for one
//! into the next, fenced by all the leases they were made under
//! (`PostgresStore::commit_fenced_many`). While the store keeps up nothing waits and each
//! batch goes alone, as before; once it falls behind, a node makes one flush where it made one
//! a zone.
//!
//! The node's ingest sessions file their messages in the inbox through the same committer
//! ([`GatheredInbox`]): a filing needs no lease, and goes in the next transaction with whatever
//! batches wait, filed first (in key order, as every writer of the inbox takes its rows). A
//! press then costs a node one wait for the disk on its way in and shares the one on its way
//! out, rather than one of its own each.
//!
//! A lease that moved fails only its own batches: the transaction is refused whole (nothing of
//! it written), those batches are answered *fenced*, and the rest go again at once without
//! them. A store failure fails every batch of the transaction, and each engine tries again as
//! it always does. An engine's batches that write the same rows are never handed over
//! together (the runtime waits for the first's outcome), so putting batches side by side in
//! one transaction keeps each engine's order.

use anxin_core::{Outbox, Zone};
use anxin_runtime::CommitError;
use anxin_store::inbox::{InboxEntry, InboxKey, InboxStore};
use anxin_store::lease::{FenceError, Lease};
use anxin_store::{Batch, PostgresStore, StoreError};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Hands batches to the node's committer; cloned for each zone's engine. The committer stops
/// once every handle is dropped and what was handed over is done.
#[derive(Debug, Clone)]
pub struct NodeCommits {
    jobs: mpsc::UnboundedSender<Job>,
}

/// What the committer is handed.
#[derive(Debug)]
enum Job {
    /// One engine's batch (the engine's outbox is borrowed for the commit, so what it stores
    /// is copied out).
    Batch { lease: Lease, rows: Box<Owned>, done: oneshot::Sender<Result<(), CommitError>> },
    /// An ingest session's messages, for the inbox.
    Filing { entries: Vec<InboxEntry>, done: oneshot::Sender<Result<Vec<Zone>, StoreError>> },
}

/// What a [`Batch`] borrows, owned.
#[derive(Debug, Default)]
struct Owned {
    messages: Vec<anxin_core::MessageRecord>,
    events: Vec<anxin_core::IncidentEvent>,
    incidents: Vec<anxin_core::Incident>,
    roster: Vec<anxin_core::Responder>,
    notifications: Vec<anxin_core::Notification>,
    ledger: Vec<anxin_core::LedgerRecord>,
    visits: Vec<anxin_core::Visit>,
    orders: Vec<anxin_core::ServiceOrder>,
    order_events: Vec<anxin_core::OrderEvent>,
    requests: Vec<anxin_core::AppliedRequest>,
    inbox: Vec<InboxKey>,
}

impl Owned {
    fn of(out: &Outbox, taken: &[InboxKey]) -> Self {
        Owned {
            messages: out.messages.clone(),
            events: out.events.clone(),
            incidents: out.incidents.clone(),
            roster: out.roster.clone(),
            notifications: out.notifications.clone(),
            ledger: out.ledger.clone(),
            visits: out.visits.clone(),
            orders: out.orders.clone(),
            order_events: out.order_events.clone(),
            requests: out.requests.clone(),
            inbox: taken.to_vec(),
        }
    }

    fn batch(&self) -> Batch<'_> {
        Batch {
            messages: &self.messages,
            events: &self.events,
            incidents: &self.incidents,
            roster: &self.roster,
            notifications: &self.notifications,
            ledger: &self.ledger,
            visits: &self.visits,
            orders: &self.orders,
            order_events: &self.order_events,
            requests: &self.requests,
            inbox: &self.inbox,
        }
    }
}

impl NodeCommits {
    /// Starts the node's committer on `store`, with at most `in_flight` transactions at once
    /// (at least one). `gathered` is told how many batches each transaction stored.
    pub fn start(store: Arc<PostgresStore>, in_flight: usize, gathered: prometheus::Histogram) -> Self {
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(run(store, in_flight.max(1), queue, gathered));
        NodeCommits { jobs }
    }

    /// Stores `out` under `lease`, taking `taken` out of the inbox with it, in a transaction
    /// with whatever other batches of the node are waiting for one.
    pub async fn commit(&self, lease: &Lease, out: &Outbox, taken: &[InboxKey]) -> Result<(), CommitError> {
        let (done, answer) = oneshot::channel();
        let job = Job::Batch { lease: lease.clone(), rows: Box::new(Owned::of(out, taken)), done };
        if self.jobs.send(job).is_err() {
            return Err(CommitError::Failed("the node's committer has stopped".into()));
        }
        answer.await.unwrap_or_else(|_| Err(CommitError::Failed("the node's committer dropped the batch".into())))
    }

    /// Files `entries` in the inbox, as [`InboxStore::inbox_put`] does, in a transaction with
    /// whatever else of the node is waiting for one.
    pub async fn file(&self, entries: &[InboxEntry]) -> Result<Vec<Zone>, StoreError> {
        let (done, answer) = oneshot::channel();
        if self.jobs.send(Job::Filing { entries: entries.to_vec(), done }).is_err() {
            return Err(StoreError::Shared("the node's committer has stopped".into()));
        }
        answer.await.unwrap_or_else(|_| Err(StoreError::Shared("the node's committer dropped the filing".into())))
    }
}

/// The inbox as a node's ingest sessions file in it: through the node's committer.
#[derive(Debug, Clone)]
pub struct GatheredInbox {
    pub commits: NodeCommits,
    pub store: Arc<PostgresStore>,
}

#[async_trait::async_trait]
impl InboxStore for GatheredInbox {
    async fn inbox_put(&self, entries: &[InboxEntry]) -> Result<Vec<Zone>, StoreError> {
        self.commits.file(entries).await
    }

    async fn inbox_take(&self, zones: &[Zone], limit: u32) -> Result<Vec<InboxEntry>, StoreError> {
        self.store.inbox_take(zones, limit).await
    }
}

async fn run(
    store: Arc<PostgresStore>,
    in_flight: usize,
    mut queue: mpsc::UnboundedReceiver<Job>,
    gathered: prometheus::Histogram,
) {
    let mut running = tokio::task::JoinSet::new();
    let mut waiting: Vec<Job> = Vec::new();
    let mut open = true;
    loop {
        tokio::select! {
            job = queue.recv(), if open => match job {
                Some(job) => waiting.push(job),
                None => open = false,
            },
            Some(_) = running.join_next(), if !running.is_empty() => {}
            else => {}
        }
        while let Ok(job) = queue.try_recv() {
            waiting.push(job);
        }
        if !waiting.is_empty() && running.len() < in_flight {
            let jobs = std::mem::take(&mut waiting);
            gathered.observe(jobs.len() as f64);
            running.spawn(commit_together(store.clone(), jobs));
        }
        if !open && waiting.is_empty() && running.is_empty() {
            return;
        }
    }
}

/// Stores `jobs` in one transaction fenced by all their batches' leases; a lease that moved
/// fails its own batches, and the rest go again without them.
async fn commit_together(store: Arc<PostgresStore>, jobs: Vec<Job>) {
    let mut batches = Vec::new();
    let mut filings = Vec::new();
    for job in jobs {
        match job {
            Job::Batch { lease, rows, done } => batches.push((lease, rows, done)),
            Job::Filing { entries, done } => filings.push((entries, done)),
        }
    }
    loop {
        let rows: Vec<Batch<'_>> = batches.iter().map(|(_, rows, _)| rows.batch()).collect();
        let entries: Vec<&InboxEntry> = filings.iter().flat_map(|(entries, _)| entries.iter()).collect();
        let mut leases: Vec<Lease> = batches.iter().map(|(lease, _, _)| lease.clone()).collect();
        leases.sort_unstable_by(|a, b| (&a.key, a.epoch).cmp(&(&b.key, b.epoch)));
        leases.dedup_by(|a, b| a.key == b.key && a.epoch == b.epoch);
        let result = store.commit_gathered(&entries, &rows, &leases).await;
        drop((rows, entries));
        match result {
            Ok(zones) => {
                for (_, _, done) in batches {
                    let _ = done.send(Ok(()));
                }
                for (_, done) in filings {
                    let _ = done.send(Ok(zones.clone()));
                }
                return;
            }
            Err(FenceError::Fenced { key, held, now }) => {
                let moved = FenceError::Fenced { key: key.clone(), held, now }.to_string();
                let (fenced, rest): (Vec<_>, Vec<_>) =
                    batches.into_iter().partition(|(lease, _, _)| lease.key == key && lease.epoch == held);
                if fenced.is_empty() {
                    // Not a lease of these batches: never so, but going again would loop.
                    for (_, _, done) in rest {
                        let _ = done.send(Err(CommitError::Failed(moved.clone())));
                    }
                    for (_, done) in filings {
                        let _ = done.send(Err(StoreError::Shared(moved.clone())));
                    }
                    return;
                }
                for (_, _, done) in fenced {
                    let _ = done.send(Err(CommitError::Fenced(moved.clone())));
                }
                batches = rest;
                if batches.is_empty() && filings.is_empty() {
                    return;
                }
            }
            Err(FenceError::Store(e)) => {
                let e = e.to_string();
                for (_, _, done) in batches {
                    let _ = done.send(Err(CommitError::Failed(e.clone())));
                }
                for (_, done) in filings {
                    let _ = done.send(Err(StoreError::Shared(e.clone())));
                }
                return;
            }
        }
    }
}
