//! Anxin's metrics. Names are `anxin_<thing>_<unit>`; counters end in `_total`; labels come
//! from small fixed sets, never from ids.

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Device messages read from the broker, by event type (`unreadable` when undecodable).
    pub messages_received: IntCounterVec,
    /// Incidents opened, by kind.
    pub incidents_opened: IntCounterVec,
    /// Presses that joined an already open incident.
    pub presses_joined: IntCounter,
    /// Redelivered messages recognised and ignored.
    pub duplicates: IntCounter,
    /// Repeat presses too soon after the last counted one (a stuck button): stored, no change.
    pub presses_throttled: IntCounter,
    /// Payloads refused in whole or in part, by reason.
    pub payloads_rejected: IntCounterVec,
    /// Clients the embedded broker turned away (disconnected), by reason.
    pub mqtt_refused: IntCounterVec,
    /// Commands and station alerts the engine could not hand to its broker connection, by
    /// reason (`oversized`, `encode`, `stopped`).
    pub commands_unsent: IntCounterVec,
    /// What another node sent that is not what it should be (zones spread over nodes), by
    /// kind (`views`, `request`, `answer`): passed over.
    pub peer_frames_rejected: IntCounterVec,
    /// Messages from other zones' owners (offers across a border), by kind and what came of
    /// them.
    pub border_messages: IntCounterVec,
    /// From reading a message off the connection to its commit.
    pub press_commit_seconds: Histogram,
    /// With the zones spread over nodes: from an ingest session's reading a device message to
    /// its zone's engine reading it from the inbox (filing commit, announcement, read).
    pub inbox_wait_seconds: Histogram,
    /// From reading a message that opened or joined an incident to handing that incident to
    /// the consoles' feed (press → console, less the last hop over each WebSocket).
    pub press_console_seconds: Histogram,
    pub commit_seconds: Histogram,
    pub commit_failures: IntCounter,
    /// Commits refused because another engine took the lease (issue 25).
    pub fenced: IntCounter,
    /// The epoch of the district's lease the engine runs under (`[cluster]`; 0 without).
    pub lease_epoch: IntGauge,
    pub batch_size: Histogram,
    /// The engine's own work on one batch, before its commit.
    pub step_seconds: Histogram,
    pub open_incidents: IntGauge,
    /// The welfare programme's scheduled calls and visits open now, and of them those open
    /// `programme.overdue_after_h` past falling due; counted with every health snapshot.
    pub programme_tasks_open: IntGauge,
    pub programme_tasks_overdue: IntGauge,
    /// Devices offline now, counted with every health snapshot.
    pub devices_offline: IntGauge,
    /// Offers to responders made and ended, by step.
    pub offers: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let m = Self {
            messages_received: IntCounterVec::new(
                Opts::new("anxin_mqtt_messages_received_total", "Device messages read from the broker, by event type"),
                &["type"],
            )
            .expect("metric"),
            incidents_opened: IntCounterVec::new(
                Opts::new("anxin_incidents_opened_total", "Incidents opened, by kind"),
                &["kind"],
            )
            .expect("metric"),
            presses_joined: IntCounter::new("anxin_presses_joined_total", "Presses that joined an open incident")
                .expect("metric"),
            duplicates: IntCounter::new(
                "anxin_mqtt_duplicates_total",
                "Redelivered device messages recognised and ignored",
            )
            .expect("metric"),
            presses_throttled: IntCounter::new(
                "anxin_presses_throttled_total",
                "Repeat presses within dispatch.repeat_press_interval_ms of the last one counted (a stuck button): stored, no change",
            )
            .expect("metric"),
            payloads_rejected: IntCounterVec::new(
                Opts::new(
                    "anxin_mqtt_payloads_rejected_total",
                    "Device payloads refused in whole or in part, by reason",
                ),
                &["reason"],
            )
            .expect("metric"),
            mqtt_refused: IntCounterVec::new(
                Opts::new(
                    "anxin_mqtt_refused_total",
                    "Clients the embedded broker disconnected: no or wrong account, a topic not their own, an oversized or malformed packet, a topic not UTF-8, or closed by rumqttd itself",
                ),
                &["reason"],
            )
            .expect("metric"),
            peer_frames_rejected: IntCounterVec::new(
                Opts::new(
                    "anxin_cluster_frames_rejected_total",
                    "Frames from other nodes (zones' views, forwarded requests and answers) that could not be read, by kind",
                ),
                &["kind"],
            )
            .expect("metric"),
            commands_unsent: IntCounterVec::new(
                Opts::new(
                    "anxin_mqtt_commands_unsent_total",
                    "Device commands and station alerts not sent: over the 64 KiB a broker takes, not encodable, or the link stopped",
                ),
                &["reason"],
            )
            .expect("metric"),
            press_commit_seconds: Histogram::with_opts(
                HistogramOpts::new("anxin_press_commit_seconds", "From reading a device message to its durable commit")
                    .buckets(vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]),
            )
            .expect("metric"),
            inbox_wait_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "anxin_inbox_wait_seconds",
                    "With the zones spread over nodes: from an ingest session reading a device message to its zone's engine reading it from the inbox (millisecond clock)",
                )
                .buckets(vec![0.001, 0.002, 0.003, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]),
            )
            .expect("metric"),
            press_console_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "anxin_press_console_seconds",
                    "From reading a device message that opened or joined an incident to handing the incident to the consoles' feed",
                )
                .buckets(vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0]),
            )
            .expect("metric"),
            commit_seconds: Histogram::with_opts(
                HistogramOpts::new("anxin_store_commit_seconds", "Duration of one store commit")
                    .buckets(vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]),
            )
            .expect("metric"),
            commit_failures: IntCounter::new(
                "anxin_store_commit_failures_total",
                "Store commits that failed and were retried",
            )
            .expect("metric"),
            fenced: IntCounter::new(
                "anxin_store_fenced_total",
                "Store commits refused as fenced: another engine holds the lease, and this one stopped",
            )
            .expect("metric"),
            lease_epoch: IntGauge::new(
                "anxin_lease_epoch",
                "The epoch of the district's lease this engine runs under ([cluster]; 0 without): one more at every takeover",
            )
            .expect("metric"),
            batch_size: Histogram::with_opts(
                HistogramOpts::new("anxin_ingest_batch_messages", "Device messages handled per commit")
                    .buckets(vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0]),
            )
            .expect("metric"),
            step_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "anxin_engine_step_seconds",
                    "The engine's work on one batch of messages and commands, before its commit",
                )
                .buckets(vec![0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5]),
            )
            .expect("metric"),
            open_incidents: IntGauge::new("anxin_incidents_open", "Incidents open now").expect("metric"),
            programme_tasks_open: IntGauge::new(
                "anxin_programme_tasks_open",
                "Scheduled welfare calls and visits open, as of the last health snapshot",
            )
            .expect("metric"),
            programme_tasks_overdue: IntGauge::new(
                "anxin_programme_tasks_overdue",
                "Scheduled welfare calls and visits open programme.overdue_after_h or longer past falling due, as of the last health snapshot",
            )
            .expect("metric"),
            devices_offline: IntGauge::new(
                "anxin_devices_offline",
                "Devices offline (silent past their window, or switched off), as of the last health snapshot",
            )
            .expect("metric"),
            offers: IntCounterVec::new(
                Opts::new("anxin_offers_total", "Offers to responders: made, accepted, declined, lapsed, withdrawn"),
                &["step"],
            )
            .expect("metric"),
            border_messages: IntCounterVec::new(
                Opts::new(
                    "anxin_border_messages_total",
                    "Messages from other zones' owners (offers across a border), by kind and what came of them",
                ),
                &["kind", "outcome"],
            )
            .expect("metric"),
            registry,
        };
        m.registry.register(Box::new(m.messages_received.clone())).expect("register");
        m.registry.register(Box::new(m.border_messages.clone())).expect("register");
        m.registry.register(Box::new(m.incidents_opened.clone())).expect("register");
        m.registry.register(Box::new(m.presses_joined.clone())).expect("register");
        m.registry.register(Box::new(m.duplicates.clone())).expect("register");
        m.registry.register(Box::new(m.presses_throttled.clone())).expect("register");
        m.registry.register(Box::new(m.payloads_rejected.clone())).expect("register");
        m.registry.register(Box::new(m.mqtt_refused.clone())).expect("register");
        m.registry.register(Box::new(m.commands_unsent.clone())).expect("register");
        m.registry.register(Box::new(m.peer_frames_rejected.clone())).expect("register");
        m.registry.register(Box::new(m.press_commit_seconds.clone())).expect("register");
        m.registry.register(Box::new(m.press_console_seconds.clone())).expect("register");
        m.registry.register(Box::new(m.inbox_wait_seconds.clone())).expect("register");
        m.registry.register(Box::new(m.commit_seconds.clone())).expect("register");
        m.registry.register(Box::new(m.commit_failures.clone())).expect("register");
        m.registry.register(Box::new(m.fenced.clone())).expect("register");
        m.registry.register(Box::new(m.lease_epoch.clone())).expect("register");
        m.registry.register(Box::new(m.batch_size.clone())).expect("register");
        m.registry.register(Box::new(m.step_seconds.clone())).expect("register");
        m.registry.register(Box::new(m.open_incidents.clone())).expect("register");
        m.registry.register(Box::new(m.programme_tasks_open.clone())).expect("register");
        m.registry.register(Box::new(m.programme_tasks_overdue.clone())).expect("register");
        m.registry.register(Box::new(m.devices_offline.clone())).expect("register");
        m.registry.register(Box::new(m.offers.clone())).expect("register");
        for step in ["made", "accepted", "declined", "lapsed", "withdrawn"] {
            m.offers.with_label_values(&[step]);
        }
        // Every label value exists from the start, so a dashboard shows zeros, not gaps.
        for t in anxin_core::EventType::ALL {
            m.messages_received.with_label_values(&[t.as_str()]);
        }
        m.messages_received.with_label_values(&["unreadable"]);
        for d in anxin_mqtt::Defect::ALL {
            m.payloads_rejected.with_label_values(&[d.as_label()]);
        }
        for r in anxin_mqtt::broker::Refusal::ALL {
            m.mqtt_refused.with_label_values(&[r.as_label()]);
        }
        for reason in anxin_mqtt::link::LinkError::LABELS {
            m.commands_unsent.with_label_values(&[reason]);
        }
        for kind in ["views", "request", "answer"] {
            m.peer_frames_rejected.with_label_values(&[kind]);
        }
        for k in ["sos", "fall", "unreadable", "service"] {
            m.incidents_opened.with_label_values(&[k]);
        }
        m
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `anxin_ingest_backlog_messages`: device messages read from the broker and not yet
/// acknowledged, whether queued for the engine, in the batch it is working out, in the batch being stored, or in the one being acknowledged and shown. It is worked out
/// when scraped, from the queue itself, so it is never stale. It cannot exceed
/// `anxin_ingest_backlog_limit_messages` (`ingest.queue` + (`store.commits_in_flight` + 2) ×
/// `ingest.batch_max`): when the
/// queue is full the MQTT link stops reading, and the broker holds the rest.
pub struct IngestBacklog {
    /// How many messages wait in the engine's queue (from the broker, or the inbox).
    queued: Box<dyn Fn() -> usize + Send + Sync>,
    in_batch: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    backlog: IntGauge,
    limit: IntGauge,
}

impl std::fmt::Debug for IngestBacklog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestBacklog").field("queued", &(self.queued)()).finish_non_exhaustive()
    }
}

impl IngestBacklog {
    /// Registers the pair of gauges for `queue` (held weakly, so the engine still sees the
    /// queue close) and the count of messages taken from it and not yet acknowledged.
    pub fn register<M: Send + 'static>(
        registry: &Registry,
        queue: &tokio::sync::mpsc::Sender<M>,
        in_batch: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        batch_max: usize,
        commits_in_flight: usize,
    ) -> prometheus::Result<()> {
        let limit = queue.max_capacity() + (commits_in_flight + 2) * batch_max;
        let queue = queue.downgrade();
        let queued = Box::new(move || queue.upgrade().map_or(0, |tx| tx.max_capacity() - tx.capacity()));
        Self::register_counted(registry, queued, in_batch, limit)
    }

    /// [`IngestBacklog::register`] for queues `queued` counts (a node's zones' engines each
    /// have one), holding at most `limit` messages with those in hand.
    pub fn register_counted(
        registry: &Registry,
        queued: Box<dyn Fn() -> usize + Send + Sync>,
        in_batch: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        limit: usize,
    ) -> prometheus::Result<()> {
        let limit_gauge = IntGauge::new(
            "anxin_ingest_backlog_limit_messages",
            "Most device messages anxind holds unacknowledged: ingest.queue + (store.commits_in_flight + 2) \
             x ingest.batch_max (the queue, a batch being worked out, those being stored, and one being \
             acknowledged and shown)",
        )?;
        limit_gauge.set(limit as i64);
        let backlog = IntGauge::new(
            "anxin_ingest_backlog_messages",
            "Device messages read from the broker and not yet acknowledged (queued or being stored)",
        )?;
        registry.register(Box::new(Self { queued, in_batch, backlog, limit: limit_gauge }))
    }
}

impl prometheus::core::Collector for IngestBacklog {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        let mut d = self.backlog.desc();
        d.extend(self.limit.desc());
        d
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let queued = (self.queued)();
        let in_batch = self.in_batch.load(std::sync::atomic::Ordering::Relaxed);
        self.backlog.set((queued + in_batch) as i64);
        let mut families = self.backlog.collect();
        families.extend(self.limit.collect());
        families
    }
}

/// `anxin_mqtt_requests_waiting`: acknowledgements and device commands the engine has asked
/// for and the MQTT connection has not yet written. The engine never waits for them (it could
/// wait on itself, see `anxin_mqtt::DeviceLink`); this shows the queue stays short.
#[derive(Debug)]
pub struct LinkWaiting {
    link: anxin_mqtt::DeviceLink,
    gauge: IntGauge,
    /// `anxin_mqtt_connections_lost_total`, read off the link.
    lost: IntCounter,
}

impl LinkWaiting {
    pub fn register(registry: &Registry, link: anxin_mqtt::DeviceLink) -> prometheus::Result<()> {
        let gauge = IntGauge::new(
            "anxin_mqtt_requests_waiting",
            "Acknowledgements and device commands asked for and not yet written to the MQTT connection",
        )?;
        let lost = IntCounter::new(
            "anxin_mqtt_connections_lost_total",
            "Connections to the MQTT broker that failed or dropped (refused, unreachable, closed, silent, not MQTT)",
        )?;
        registry.register(Box::new(Self { link, gauge, lost }))
    }
}

/// `anxin_reports_unreadable_events_total`: events the reports' fold passed over because this
/// build cannot read them (`anxin_store::ReportStore::unreadable_events`), read off the store at
/// each scrape. Each is missing from the reports' figures; it should stay 0 but in a rolling
/// upgrade, while an older node folds a newer one's events.
pub struct UnreadableEvents {
    store: std::sync::Arc<dyn anxin_store::Store>,
    counter: IntCounter,
}

impl std::fmt::Debug for UnreadableEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnreadableEvents").field("counter", &self.counter.get()).finish()
    }
}

impl UnreadableEvents {
    pub fn register(registry: &Registry, store: std::sync::Arc<dyn anxin_store::Store>) -> prometheus::Result<()> {
        let counter = IntCounter::new(
            "anxin_reports_unreadable_events_total",
            "Stored events the reports' fold passed over because this build cannot read them (a newer engine's): missing from the reports",
        )?;
        registry.register(Box::new(Self { store, counter }))
    }
}

impl prometheus::core::Collector for UnreadableEvents {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.counter.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.counter.inc_by(self.store.unreadable_events().saturating_sub(self.counter.get()));
        self.counter.collect()
    }
}

impl prometheus::core::Collector for LinkWaiting {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.gauge.desc().into_iter().chain(self.lost.desc()).collect()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.gauge.set(self.link.waiting() as i64);
        // The link counts; the counter catches up with it (it only ever grows).
        self.lost.inc_by(self.link.connections_lost().saturating_sub(self.lost.get()));
        self.gauge.collect().into_iter().chain(self.lost.collect()).collect()
    }
}
