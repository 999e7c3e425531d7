//! The runtime's ports, built on the real parts: the store (SQLite or PostgreSQL), the MQTT
//! link, the console and phone hubs, the clock, and Prometheus.

use crate::clock::Clock;
use crate::telemetry::Metrics;
use anxin_api::{Hub, ResponderHub};
use anxin_core::{DeviceCommand, DeviceId, IncidentKind, IncidentView, Outbox, ResponderView, StationAlert, Timestamp};
use anxin_mqtt::{Defect, DeviceLink, Inbound};
use anxin_proto::ws::PhoneOwner;
use anxin_runtime::ports::BoxFuture;
use anxin_runtime::PhoneView;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Commits a batch to the store in one transaction: fenced by the lease when the engine runs
/// under one (`[cluster]`). An engine reading the inbox takes its batch's messages out of it
/// in the same transaction.
#[derive(Debug)]
pub struct StorePort(pub Arc<dyn anxin_store::Store>, pub Option<crate::cluster::FencedStore>);

impl StorePort {
    fn commit_taking<'a>(
        &'a self,
        out: &'a Outbox,
        taken: Vec<anxin_store::inbox::InboxKey>,
    ) -> BoxFuture<'a, Result<(), anxin_runtime::CommitError>> {
        Box::pin(async move {
            if let Some(fenced) = &self.1 {
                return fenced.commit(out, &taken).await;
            }
            let batch = anxin_store::Batch::of(out).taking(&taken);
            self.0.commit(batch).await.map_err(|e| anxin_runtime::CommitError::Failed(e.to_string()))
        })
    }

    fn save_health<'a>(
        &'a self,
        snapshot: &'a anxin_core::HealthSnapshot,
        at: anxin_core::Timestamp,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { self.0.save_health(snapshot, at).await.map_err(|e| e.to_string()) })
    }
}

/// Messages from the broker: acknowledged to it after the commit ([`LinkPort`]).
impl anxin_runtime::Store<Inbound> for StorePort {
    fn commit<'a>(
        &'a self,
        out: &'a Outbox,
        _: &'a [Inbound],
    ) -> BoxFuture<'a, Result<(), anxin_runtime::CommitError>> {
        self.commit_taking(out, Vec::new())
    }

    fn save_health<'a>(
        &'a self,
        snapshot: &'a anxin_core::HealthSnapshot,
        at: anxin_core::Timestamp,
    ) -> BoxFuture<'a, Result<(), String>> {
        StorePort::save_health(self, snapshot, at)
    }
}

/// Messages from the inbox: taken out by the commit that handled them.
impl anxin_runtime::Store<crate::inbox::InboxMessage> for StorePort {
    fn commit<'a>(
        &'a self,
        out: &'a Outbox,
        messages: &'a [crate::inbox::InboxMessage],
    ) -> BoxFuture<'a, Result<(), anxin_runtime::CommitError>> {
        self.commit_taking(out, messages.iter().map(|m| m.entry.key()).collect())
    }

    fn takes_messages(&self) -> bool {
        true
    }

    fn save_health<'a>(
        &'a self,
        snapshot: &'a anxin_core::HealthSnapshot,
        at: anxin_core::Timestamp,
    ) -> BoxFuture<'a, Result<(), String>> {
        StorePort::save_health(self, snapshot, at)
    }
}

/// Acknowledgements, commands and station alerts, queued on the MQTT link.
#[derive(Debug)]
pub struct LinkPort {
    pub link: DeviceLink,
    pub metrics: Metrics,
}

impl anxin_runtime::Devices<Inbound> for LinkPort {
    fn connected(&self) -> bool {
        self.link.is_connected()
    }

    fn ack(&self, message: Inbound) {
        if let Err(e) = self.link.ack(message) {
            tracing::warn!(error = %e, "could not acknowledge a stored message; the broker will redeliver it");
        }
    }

    fn send(&self, device: &DeviceId, command: &DeviceCommand) {
        if let Err(e) = self.link.send(device, command) {
            self.metrics.commands_unsent.with_label_values(&[e.as_label()]).inc();
            tracing::warn!(device = %device, error = %e, "could not send a command to a device");
        }
    }

    fn alert(&self, alert: &StationAlert) {
        if let Err(e) = self.link.alert_station(alert) {
            self.metrics.commands_unsent.with_label_values(&[e.as_label()]).inc();
            tracing::warn!(station = %alert.station_id, error = %e, "could not alert a station's duty line");
        }
    }
}

/// An engine fed by the inbox (zones spread over nodes): its messages are taken out of the
/// inbox by the commit that handled them ([`StorePort`]), so acknowledging one only lets the
/// inbox's reader hand it over again should it be filed again; commands and alerts go out on
/// the MQTT link, which only publishes.
#[derive(Debug)]
pub struct InboxPort {
    pub link: LinkPort,
    pub in_flight: Arc<crate::inbox::InFlight>,
}

impl anxin_runtime::Devices<crate::inbox::InboxMessage> for InboxPort {
    fn connected(&self) -> bool {
        self.link.link.is_connected()
    }

    fn ack(&self, message: crate::inbox::InboxMessage) {
        self.in_flight.done(&message);
    }

    fn send(&self, device: &DeviceId, command: &DeviceCommand) {
        anxin_runtime::Devices::<Inbound>::send(&self.link, device, command);
    }

    fn alert(&self, alert: &StationAlert) {
        anxin_runtime::Devices::<Inbound>::alert(&self.link, alert);
    }
}

/// The consoles' hub, the phones' hub and the families' hub.
#[derive(Debug)]
pub struct FeedPort {
    pub hub: Arc<Hub>,
    pub phones: Arc<ResponderHub>,
    pub family: Arc<anxin_api::FamilyHub>,
    /// The supervisors' day so far, kept from the stored events: `None` where the wallboard
    /// reads every zone's events from the store instead (zones spread over nodes,
    /// [`crate::day`]).
    pub wallboard: Option<Arc<anxin_api::Wallboard>>,
    /// Who may sign in to the console: kept up to date by the ledger's changes.
    pub sessions: Arc<anxin_api::Sessions>,
    /// Devices' broker accounts: kept up to date by the ledger's changes.
    pub broker: crate::ledger::BrokerAccounts,
    /// The one zone the engine runs, beside other zones' engines on this node (`crate::node`);
    /// `None`: the engine runs every zone the node shows.
    pub zone: Option<anxin_core::Zone>,
    /// With the zones spread over nodes: what the zone's engine commits, for the other nodes'
    /// consoles.
    pub peers: Option<ZonePublisher>,
}

/// Publishes what a zone's engine commits on the zone's views topic, for the other nodes
/// (`crate::follow`), each frame naming the zone's last sequence number before it. The frames
/// are written out and handed to the link by a task of their own, in order, their encoding
/// off the node's runtime threads: the engine only queues them.
#[derive(Debug, Clone)]
pub struct ZonePublisher {
    frames: tokio::sync::mpsc::UnboundedSender<PeerFrame>,
    /// The zone's devices offline as its engine last counted them (-1 before it has): every
    /// frame carries it.
    offline: Arc<std::sync::atomic::AtomicI64>,
}

/// What one frame for the other nodes carries.
#[derive(Debug, Default)]
struct PeerFrame {
    /// Written once, for the consoles here and the other nodes both.
    views: Vec<anxin_proto::cluster::WrittenView>,
    responders: Vec<ResponderView>,
    sign_ins: Vec<anxin_proto::cluster::SignInChanged>,
    orders: Vec<anxin_core::engine::OrderView>,
    phones: Vec<anxin_proto::cluster::PeerPhone>,
}

impl ZonePublisher {
    /// Starts publishing `zone`'s frames on `link`, the first after `last`; it stops when the
    /// publisher is dropped (with the engine's ports).
    pub fn start(link: anxin_mqtt::DeviceLink, zone: anxin_core::Zone, last: u64, metrics: Metrics) -> Self {
        let (frames, mut queued) = tokio::sync::mpsc::unbounded_channel::<PeerFrame>();
        let offline = Arc::new(std::sync::atomic::AtomicI64::new(-1));
        let counted = offline.clone();
        tokio::spawn(async move {
            let mut last = last;
            while let Some(PeerFrame { views, responders, sign_ins, orders, phones }) = queued.recv().await {
                let frame = anxin_proto::cluster::ZoneViews {
                    zone: zone.number(),
                    prev: last,
                    views,
                    responders,
                    sign_ins,
                    orders,
                    phones,
                    offline: u32::try_from(counted.load(Ordering::Relaxed)).ok(),
                };
                // Whether it goes or not: a node that misses it reads the zone back from the store.
                last = frame.last();
                // Encoded here (optimised in anxin-mqtt): a blocking thread for it cost two
                // thread wake-ups a frame, more than the encoding.
                if let Err(e) = link.publish_zone_views(&frame) {
                    metrics.commands_unsent.with_label_values(&[e.as_label()]).inc();
                    tracing::warn!(zone = zone.number(), error = %e, "could not tell the other nodes of a zone's views");
                }
            }
        });
        ZonePublisher { frames, offline }
    }

    fn publish(&self, frame: PeerFrame) {
        let _ = self.frames.send(frame);
    }

    /// The zone's devices offline, counted anew: carried by every frame from now on, and told
    /// at once in a frame of its own if it changed.
    pub fn devices_offline(&self, offline: usize) {
        if self.offline.swap(offline as i64, Ordering::Relaxed) != offline as i64 {
            self.publish(PeerFrame::default());
        }
    }
}

impl anxin_runtime::Feeds for FeedPort {
    fn incidents(&self, deltas: Vec<IncidentView>) {
        // The consoles' hub and the families' keep the same committed views.
        let deltas: Vec<Arc<IncidentView>> = deltas.into_iter().map(Arc::new).collect();
        self.family.publish(&deltas);
        match &self.peers {
            // Written once for the consoles here and the other nodes' both.
            Some(peers) => {
                let written: Vec<_> = deltas.iter().map(|v| anxin_proto::cluster::WrittenView::of(v)).collect();
                self.hub.publish_as_written(deltas.into_iter().zip(&written));
                peers.publish(PeerFrame { views: written, ..PeerFrame::default() });
            }
            None => self.hub.publish(deltas),
        }
    }

    fn events(&self, events: &[anxin_core::IncidentEvent]) {
        if let Some(wallboard) = &self.wallboard {
            wallboard.observe(events);
        }
    }

    fn phones(&self, phones: Vec<PhoneView>) {
        for phone in &phones {
            publish_phone(&self.phones, phone);
        }
        // A phone may be signed in on any node.
        if let Some(peers) = &self.peers {
            let phones: Vec<_> = phones.iter().map(peer_phone).collect();
            peers.publish(PeerFrame { phones, ..PeerFrame::default() });
        }
    }

    fn responders(&self, views: Vec<ResponderView>) {
        if let Some(peers) = &self.peers {
            peers.publish(PeerFrame { responders: views.clone(), ..PeerFrame::default() });
        }
        self.hub.publish_responders(views);
    }

    fn ledger(&self, records: &[anxin_core::LedgerRecord]) {
        crate::ledger::apply_to_sign_ins(records, &self.phones, &self.sessions);
        if let Some(peers) = &self.peers {
            let sign_ins: Vec<_> = records
                .iter()
                .filter_map(|r| match &r.entry {
                    anxin_core::Entry::Staff(s) => Some((anxin_core::LedgerKind::Staff, s.id.clone())),
                    anxin_core::Entry::Responder(x) => Some((anxin_core::LedgerKind::Responder, x.id.to_string())),
                    _ => None,
                })
                .map(|(kind, id)| anxin_proto::cluster::SignInChanged { kind, id })
                .collect();
            if !sign_ins.is_empty() {
                peers.publish(PeerFrame { sign_ins, ..PeerFrame::default() });
            }
        }
        self.broker.tell(records);
        // A responder retired has no view left to send: the consoles are told to drop them
        // (before this batch's views, so one enrolled again in the same batch comes back).
        let retired =
            records.iter().filter(|r| r.action == anxin_core::LedgerAction::Retired).filter_map(|r| match &r.entry {
                anxin_core::Entry::Responder(responder) => Some(&responder.id),
                _ => None,
            });
        self.hub.retire_responders(retired);
    }

    fn stations(&self, stations: Vec<anxin_core::StationView>) {
        match self.zone {
            Some(zone) => self.hub.set_zone_stations(zone, stations),
            None => self.hub.set_stations(stations),
        }
    }

    fn orders(&self, orders: Vec<anxin_core::engine::OrderView>) {
        if let Some(peers) = &self.peers {
            peers.publish(PeerFrame { orders: orders.clone(), ..PeerFrame::default() });
        }
        self.hub.publish_orders(orders);
    }
}

/// A phone as its `hello` names its owner.
fn phone_owner(phone: &PhoneView) -> PhoneOwner {
    let r = &phone.responder;
    PhoneOwner {
        id: r.id.clone(),
        name: r.name.clone(),
        station_id: r.station_id.clone(),
        station_name: phone.station_name.clone(),
        on_duty: r.on_duty,
        carer: phone.carer.clone(),
        worker: phone.worker.clone(),
    }
}

/// Replaces a responder's `hello` and `job` frames on the phones' hub.
pub fn publish_phone(phones: &ResponderHub, phone: &PhoneView) {
    phones.publish(&phone.responder.id, phone_owner(phone), phone.job.clone(), phone.ended.clone());
}

/// A phone as the other nodes' hubs are told of it (no sign-in hash crosses the broker).
fn peer_phone(phone: &PhoneView) -> anxin_proto::cluster::PeerPhone {
    anxin_proto::cluster::PeerPhone { owner: phone_owner(phone), job: phone.job.clone(), ended: phone.ended.clone() }
}

impl anxin_runtime::Clock for Clock {
    fn now(&self) -> Timestamp {
        Clock::now(self)
    }

    fn sleep_until(&self, t: Timestamp) -> BoxFuture<'static, ()> {
        let clock = self.clone();
        Box::pin(async move { clock.sleep_until(Some(t)).await })
    }

    fn instant(&self) -> Instant {
        Instant::now()
    }
}

/// The runtime's doings, on Prometheus and in the log; and whether the store answers, for
/// `/readyz`.
#[derive(Debug)]
pub struct MetricsPort {
    pub metrics: Metrics,
    pub store_ok: Arc<AtomicBool>,
    /// Messages taken from the queue and not yet acknowledged (the batch in the engine's
    /// hands, the one being stored and the one being made known), for
    /// `anxin_ingest_backlog_messages`.
    pub in_batch: Arc<AtomicUsize>,
    /// The wallboard shows the devices offline too.
    pub wallboard: Arc<anxin_api::Wallboard>,
    /// The engine's zone and the node's totals, when each zone runs in an engine of its own
    /// (`crate::node`): the gauges and the wallboard show the sums over the node's zones.
    pub totals: Option<(anxin_core::Zone, Arc<ZoneTotals>)>,
    /// The zone's frames to the other nodes, which carry its devices offline to their
    /// wallboards (zones spread over nodes).
    pub peers: Option<ZonePublisher>,
}

/// Each zone's open incidents and devices offline, on a node whose zones run in engines of
/// their own: the gauges show their sums.
#[derive(Debug, Default)]
pub struct ZoneTotals(std::sync::Mutex<std::collections::BTreeMap<anxin_core::Zone, (usize, usize)>>);

impl ZoneTotals {
    /// Sets one of `zone`'s figures and returns the sum of that figure over every zone.
    fn set(&self, zone: anxin_core::Zone, figure: impl Fn(&mut (usize, usize)) -> &mut usize, value: usize) -> usize {
        let mut zones = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *figure(zones.entry(zone).or_default()) = value;
        zones.values_mut().map(|f| *figure(f)).sum()
    }

    /// Forgets `zone` (its engine stopped here); the sums of open incidents and devices
    /// offline over the zones left.
    pub fn remove(&self, zone: anxin_core::Zone) -> (usize, usize) {
        let mut zones = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        zones.remove(&zone);
        zones.values().fold((0, 0), |(o, d), (zo, zd)| (o + zo, d + zd))
    }
}

impl MetricsPort {
    /// `open` for this engine's zone: the node's total, when zones run apart.
    fn open_total(&self, open: usize) -> usize {
        match &self.totals {
            Some((zone, totals)) => totals.set(*zone, |f| &mut f.0, open),
            None => open,
        }
    }

    fn offline_total(&self, offline: usize) -> usize {
        match &self.totals {
            Some((zone, totals)) => totals.set(*zone, |f| &mut f.1, offline),
            None => offline,
        }
    }
}

impl anxin_runtime::Telemetry for MetricsPort {
    fn received(&self, event: &str) {
        self.metrics.messages_received.with_label_values(&[event]).inc();
    }

    fn rejected(&self, defect: Defect, device: &str, what_happens: &str) {
        self.metrics.payloads_rejected.with_label_values(&[defect.as_label()]).inc();
        tracing::warn!(device, reason = defect.as_label(), "{defect}; {what_happens}");
    }

    fn opened(&self, kind: IncidentKind) {
        self.metrics.incidents_opened.with_label_values(&[kind.as_str()]).inc();
    }

    fn joined(&self) {
        self.metrics.presses_joined.inc();
    }

    fn duplicate(&self) {
        self.metrics.duplicates.inc();
    }

    fn border(&self, kind: &str, outcome: &str) {
        self.metrics.border_messages.with_label_values(&[kind, outcome]).inc();
    }

    fn throttled(&self) {
        self.metrics.presses_throttled.inc();
    }

    fn in_hand(&self, change: isize) {
        if change >= 0 {
            self.in_batch.fetch_add(change as usize, Ordering::Relaxed);
        } else {
            self.in_batch.fetch_sub(change.unsigned_abs(), Ordering::Relaxed);
        }
    }

    fn stepped(&self, messages: usize, took: Duration) {
        if messages > 0 {
            self.metrics.batch_size.observe(messages as f64);
        }
        self.metrics.step_seconds.observe(took.as_secs_f64());
    }

    fn committed(&self, took: Duration) {
        self.metrics.commit_seconds.observe(took.as_secs_f64());
        self.store_ok.store(true, Ordering::Relaxed);
    }

    fn commit_failed(&self, error: &str, retry_in: Duration) {
        self.metrics.commit_failures.inc();
        self.store_ok.store(false, Ordering::Relaxed);
        tracing::error!(
            error,
            retry_in_ms = retry_in.as_millis() as u64,
            "cannot store presses; not acknowledging them, the broker holds them"
        );
    }

    fn store_recovered(&self) {
        tracing::info!("store reachable again; resuming");
    }

    fn fenced(&self, error: &str) {
        self.metrics.fenced.inc();
        tracing::error!(error, "a commit was fenced: another engine holds the lease");
    }

    fn message_stored(&self, since: Duration) {
        self.metrics.press_commit_seconds.observe(since.as_secs_f64());
    }

    fn shown_to_consoles(&self, since: Duration) {
        self.metrics.press_console_seconds.observe(since.as_secs_f64());
    }

    fn open_incidents(&self, open: usize) {
        self.metrics.open_incidents.set(self.open_total(open) as i64);
    }

    fn programme_tasks(&self, open: usize, overdue: usize) {
        self.metrics.programme_tasks_open.set(open as i64);
        self.metrics.programme_tasks_overdue.set(overdue as i64);
    }

    fn devices_offline(&self, offline: usize) {
        let total = self.offline_total(offline);
        self.metrics.devices_offline.set(total as i64);
        match &self.totals {
            // Every zone's count, here or followed from its owner, makes the board's figure.
            Some((zone, _)) => self.wallboard.set_zone_devices_offline(zone.number(), offline),
            None => self.wallboard.set_devices_offline(total),
        }
        if let Some(peers) = &self.peers {
            peers.devices_offline(offline);
        }
    }

    fn offer(&self, step: &'static str) {
        self.metrics.offers.with_label_values(&[step]).inc();
    }
}
