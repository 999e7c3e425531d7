//! Wiring: the store, the engine task, the MQTT link, the HTTP server; start-up and a
//! shutdown with a deadline.

use crate::clock::Clock;
use crate::config::{broker_address, Config};
use crate::telemetry::Metrics;
use anxin_api::ws::{ConsoleSettings, PhoneOwner};
use anxin_api::{ApiState, Caller, Command, Hub, Request, ResponderHub};
use anxin_core::{Engine, JobView, Outbox, Outcome, Policy, Refusal, Registry, ResponderId, Timestamp};
use anxin_mqtt::{DeviceLink, EmbeddedBroker, Inbound, LinkOptions};
use anxin_store::{Batch, Store};
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A built, not yet running, engine: ports are bound, the store is open and migrated.
#[derive(Debug)]
pub struct App {
    config: Config,
    http: TcpListener,
    http_addr: SocketAddr,
    broker_host: String,
    broker_port: u16,
    store: Arc<dyn Store>,
    engine: Engine,
    hub: Arc<Hub>,
    phones: Arc<ResponderHub>,
    sessions: Arc<anxin_api::Sessions>,
    metrics: Metrics,
    clock: Clock,
    /// The embedded broker, if used: where the engine connects and with which login. It
    /// lives as long as the process.
    broker: Option<EmbeddedBroker>,
}

impl App {
    /// Opens the store, adds `registry` to its ledger (the demo district, a test's fixtures),
    /// resumes the engine from what is stored, and binds the ports.
    pub async fn build(config: Config, registry: Option<Registry>) -> anyhow::Result<Self> {
        Self::build_with_clock(config, registry, Clock::System).await
    }

    /// [`App::build`] with the clock the engine reads (tests move a manual one by hand).
    pub async fn build_with_clock(config: Config, registry: Option<Registry>, clock: Clock) -> anyhow::Result<Self> {
        let store = anxin_store::open(config.store.url.expose()).await.context("cannot open the store")?;
        if let Some(registry) = registry {
            let stored = store.load_registry().await.context("cannot load the registry")?;
            registry.check_against(&stored).context("the registry is inconsistent")?;
            store.save_registry(&registry).await.context("cannot save the registry")?;
        }
        let policy = Policy {
            max_offer_distance_m: config.dispatch.max_offer_distance_m,
            max_fix_accuracy_m: config.dispatch.max_fix_accuracy_m,
            max_fix_distance_from_home_m: config.dispatch.max_fix_distance_from_home_m,
            offer_timeout_ms: config.dispatch.offer_timeout_s as i64 * 1000,
            ladders: config.dispatch.ladders(),
            matching: config.dispatch.matching(),
            station_timeout_ms: config.dispatch.station_timeout_s as i64 * 1000,
            reminder_interval_ms: config.dispatch.reminder_interval_s as i64 * 1000,
            on_scene_within_ms: config.dispatch.on_scene_within_min as i64 * 60_000,
            medical_number: config.dispatch.medical_number.clone(),
            fire_number: config.dispatch.fire_number.clone(),
            police_number: config.dispatch.police_number.clone(),
            max_fix_age_ms: config.dispatch.max_fix_age_min as i64 * 60_000,
            repeat_press_interval_ms: config.dispatch.repeat_press_interval_ms as i64,
            ..Policy::default()
        };
        let now = clock.now();
        let resume =
            store.resume(now.plus_millis(-policy.dedup_window_ms)).await.context("cannot read open incidents")?;
        let registry = store.load_registry().await.context("cannot load the registry")?;
        tracing::info!(
            elders = registry.elders.len(),
            devices = registry.devices.len(),
            responders = registry.responders.len(),
            stations = registry.stations.len(),
            open_incidents = resume.open.len(),
            "resuming"
        );
        let engine = Engine::new(policy, registry.clone(), resume);
        let history = store.history_id().await.context("cannot read the store's history id")?;
        let hub = Arc::new(Hub::new(history, engine.last_seq(), engine.snapshot(), config.consoles.replay));
        let metrics = Metrics::new();
        metrics.open_incidents.set(engine.open_count() as i64);
        let tokens = registry
            .responders
            .iter()
            .filter_map(|r| r.token_sha256.as_ref().map(|h| (h.to_ascii_lowercase(), r.id.clone())))
            .collect();
        let phones = Arc::new(ResponderHub::new(tokens));
        for r in &registry.responders {
            if let Some((id, hello, job)) = phone_frames(&engine, &r.id, now) {
                phones.publish(&id, hello, job);
            }
        }
        hub.set_stations(engine.stations_view());
        hub.publish_responders(engine.roster_view());
        let sessions = Arc::new(anxin_api::Sessions::new(registry.staff.clone()));

        let (broker, broker_host, broker_port) = if config.mqtt.broker == "embedded" {
            let accounts = match &config.mqtt.embedded_accounts {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read mqtt.embedded_accounts {}", path.display()))?;
                    let passwd = anxin_mqtt::PasswordFile::parse(&text)
                        .with_context(|| format!("mqtt.embedded_accounts {} is not a password file", path.display()))?;
                    let topics = anxin_mqtt::Topics::new(&config.mqtt.topic_root).map_err(anyhow::Error::msg)?;
                    let refused = metrics.mqtt_refused.clone();
                    let on_refused: anxin_mqtt::broker::OnRefused =
                        Arc::new(move |why| refused.with_label_values(&[why.as_label()]).inc());
                    Some((anxin_mqtt::broker::Accounts { passwd, topics }, on_refused))
                }
                None => None,
            };
            let broker = EmbeddedBroker::start(config.mqtt.embedded_listen, config.mqtt.max_payload_bytes, accounts)?;
            let addr = broker.addr();
            (Some(broker), addr.ip().to_string(), addr.port())
        } else {
            let (host, port) = broker_address(&config.mqtt.broker)?;
            (None, host, port)
        };
        let http = TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.http.listen))?;
        let http_addr = http.local_addr()?;
        Ok(Self {
            clock,
            config,
            http,
            http_addr,
            broker_host,
            broker_port,
            store,
            engine,
            hub,
            phones,
            sessions,
            metrics,
            broker,
        })
    }

    /// Where the console and the API are served.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The broker devices publish to, as `mqtt://host:port`.
    pub fn mqtt_url(&self) -> String {
        if self.broker_host.contains(':') {
            format!("mqtt://[{}]:{}", self.broker_host, self.broker_port)
        } else {
            format!("mqtt://{}:{}", self.broker_host, self.broker_port)
        }
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Where the engine's MQTT link connects, and as whom. With the embedded broker behind its
    /// guard, rumqttd directly, with the broker's own login; otherwise the configured broker
    /// and account.
    fn engine_link(&self) -> (String, u16, Option<String>, Option<String>) {
        match self.broker.as_ref().and_then(|b| b.engine_login().map(|login| (b.engine_addr(), login.clone()))) {
            Some((addr, (user, password))) => (addr.ip().to_string(), addr.port(), Some(user), Some(password)),
            None => (
                self.broker_host.clone(),
                self.broker_port,
                self.config.mqtt.username.clone(),
                self.config.mqtt.password.as_ref().map(|p| p.expose().to_string()),
            ),
        }
    }

    /// Runs until `shutdown` fires, then drains within the configured deadline.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let deadline = Duration::from_secs(self.config.shutdown.deadline_s);
        let (broker_host, broker_port, username, password) = self.engine_link();
        let App { config, http, store, engine, hub, phones, sessions, metrics, clock, .. } = self;

        let topics = anxin_mqtt::Topics::new(&config.mqtt.topic_root).map_err(anyhow::Error::msg)?;
        let (tx, rx) = mpsc::channel(config.ingest.queue);
        let in_batch = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        crate::telemetry::IngestBacklog::register(&metrics.registry, &tx, in_batch.clone(), config.ingest.batch_max)
            .map_err(|e| anyhow::anyhow!("cannot register the ingest backlog gauges: {e}"))?;
        let link_stop = CancellationToken::new();
        let (link, link_task) = anxin_mqtt::connect(
            LinkOptions {
                host: broker_host,
                port: broker_port,
                client_id: config.mqtt.client_id.clone(),
                keep_alive: Duration::from_secs(config.mqtt.keep_alive_s),
                max_outgoing_bytes: 64 * 1024,
                // rumqttd leaves Nagle's algorithm on and has no setting for it.
                quick_ack: config.mqtt.broker == "embedded" || config.mqtt.quick_ack,
                username,
                password,
                topics: topics.clone(),
            },
            tx,
            link_stop.clone(),
        );
        crate::telemetry::LinkWaiting::register(&metrics.registry, link.clone())
            .map_err(|e| anyhow::anyhow!("cannot register the MQTT request gauge: {e}"))?;

        let store_ok = Arc::new(AtomicBool::new(true));
        let engine_running = Arc::new(AtomicBool::new(true));
        let readiness: anxin_api::ReadinessCheck = {
            let (link, store_ok, engine_running) = (link.clone(), store_ok.clone(), engine_running.clone());
            Arc::new(move || {
                vec![
                    ("mqtt", link.is_connected()),
                    ("store", store_ok.load(Ordering::Relaxed)),
                    ("engine", engine_running.load(Ordering::Relaxed)),
                ]
            })
        };
        let http_stop = CancellationToken::new();
        // People's commands wait here for the engine; when full, their requests wait.
        let (command_tx, command_rx) = mpsc::channel(1024);
        let api = ApiState::new(
            hub.clone(),
            phones.clone(),
            command_tx,
            metrics.registry.clone(),
            readiness,
            http_stop.clone(),
            sessions,
            Arc::new(crate::timeline::StoreTimeline(store.clone())),
            ConsoleSettings {
                language: config.consoles.language.clone(),
                accept_target_s: config.consoles.accept_target_s,
                on_scene_target_min: config.consoles.on_scene_target_min,
                tile_url: config.consoles.tile_url.clone(),
            },
            {
                let clock = clock.clone();
                Arc::new(move || clock.now())
            },
        );
        let http_task = tokio::spawn(anxin_api::serve(http, anxin_api::router(api), http_stop.clone()));

        let dispatcher = Dispatcher {
            engine,
            shell: Arc::new(Shell { store, link: link.clone(), hub, phones, metrics, store_ok, in_batch }),
            clock,
            batch_max: config.ingest.batch_max,
            max_payload_bytes: config.mqtt.max_payload_bytes,
            topics,
        };
        let mut engine_task = tokio::spawn(dispatcher.run(rx, command_rx, shutdown.clone()));

        if let Err(why) = engine_or_shutdown(&mut engine_task, &shutdown).await {
            // A bug stopped the engine. Nothing it had not stored was acknowledged, so the
            // broker keeps those presses for the next start; a process that stayed up would
            // hold them unseen. Stop at once and say so: the supervisor restarts anxind.
            engine_running.store(false, Ordering::Relaxed);
            tracing::error!(error = %why, "the engine stopped; anxind exits so that it can be restarted");
            link_stop.cancel();
            http_stop.cancel();
            let _ = tokio::time::timeout(deadline, async {
                let _ = link_task.await;
                let _ = http_task.await;
            })
            .await;
            anyhow::bail!("the engine stopped: {why}");
        }
        tracing::info!(deadline_s = deadline.as_secs(), "shutting down");
        let stragglers = [
            ("engine", engine_task.abort_handle()),
            ("mqtt", link_task.abort_handle()),
            ("http", http_task.abort_handle()),
        ];
        let drained = tokio::time::timeout(deadline, async {
            // The engine finishes the batch in hand (commit, then ack), then stops reading.
            if let Err(e) = engine_task.await {
                tracing::error!(error = %e, "engine task failed");
            }
            engine_running.store(false, Ordering::Relaxed);
            link.disconnect().await;
            link_stop.cancel();
            let _ = link_task.await;
            http_stop.cancel();
            let _ = http_task.await;
        })
        .await;
        if drained.is_err() {
            // Whatever is still running stops here, so nothing is acknowledged after we said
            // we stopped: the broker redelivers what was not stored to the next engine.
            let late: Vec<_> = stragglers.iter().filter(|(_, h)| !h.is_finished()).map(|(name, _)| *name).collect();
            tracing::warn!(
                ?late,
                "shutdown deadline passed; stopping with work unfinished (unstored presses stay at the broker)"
            );
            for (_, handle) in &stragglers {
                handle.abort();
            }
        }
        Ok(())
    }
}

/// The one owner of the engine: reads device messages in batches, stores what each batch
/// caused in one commit, and only then acknowledges its messages, tells the devices and
/// updates the consoles and phones.
///
/// Batches go through three stages at once: while batch N is acknowledged and shown, batch
/// N+1 is being stored and the engine works out batch N+2. Each stage takes one batch at a
/// time and in order: N+1's commit starts once N is stored, and N+1 is made known once it is
/// stored and N has been made known. So nothing is acknowledged or shown before it is stored,
/// and commits, acknowledgements and deltas keep the engine's order. A commit is mostly a
/// wait on the store; this is what lets the engine and the connections use that time.
struct Dispatcher {
    engine: Engine,
    shell: Arc<Shell>,
    clock: Clock,
    batch_max: usize,
    max_payload_bytes: usize,
    topics: anxin_mqtt::Topics,
}

/// A batch being stored and made known, in a task of its own that goes when this handle
/// does: the engine's task, aborted at the shutdown deadline, takes its commits with it, so
/// nothing is acknowledged after anxind said it stopped.
struct InFlight(tokio::task::JoinHandle<bool>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What a batch needs once the engine is done with it: the store, and everyone to tell.
struct Shell {
    store: Arc<dyn Store>,
    link: DeviceLink,
    hub: Arc<Hub>,
    phones: Arc<ResponderHub>,
    metrics: Metrics,
    store_ok: Arc<AtomicBool>,
    /// Messages taken from the queue and not yet acknowledged (the batch in the engine's
    /// hands, the one being stored and the one being made known), for
    /// `anxin_ingest_backlog_messages`.
    in_batch: Arc<std::sync::atomic::AtomicUsize>,
}

/// Where a batch's task stands with the batches around it.
struct Stages {
    /// Told whether this batch was stored: the next batch's commit waits for it.
    stored: tokio::sync::oneshot::Sender<bool>,
    /// Fires when the batch before has been made known (none: there was none).
    after: Option<tokio::sync::oneshot::Receiver<()>>,
    /// Fired when this batch has been made known.
    shown: tokio::sync::oneshot::Sender<()>,
}

/// One batch, worked out by the engine: to store, then to make known, in this order.
struct Step {
    messages: Vec<Inbound>,
    out: Outbox,
    /// Phones' `hello` and `job` frames as of this batch.
    phones: Vec<(ResponderId, PhoneOwner, Option<JobView>)>,
    /// Consoles' map entries as of this batch.
    responders: Vec<anxin_core::ResponderView>,
    replies: Vec<(Option<tokio::sync::oneshot::Sender<anxin_api::Answer>>, anxin_api::Answer)>,
    open_incidents: usize,
}

impl Dispatcher {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<Inbound>,
        mut commands: mpsc::Receiver<Command>,
        shutdown: CancellationToken,
    ) {
        let mut batch = Vec::with_capacity(self.batch_max);
        let mut asked = Vec::new();
        let mut commands_open = true;
        // The batches being stored or made known, oldest first. Each task ends true once its
        // batch is made known, false if it was not stored before shutdown or the batch before
        // it was not made known; then nothing after it may be either.
        let mut in_flight: std::collections::VecDeque<InFlight> = std::collections::VecDeque::new();
        // Fires when the last batch handed over is stored (true), or could not be (false).
        let mut last_stored: Option<tokio::sync::oneshot::Receiver<bool>> = None;
        // Fires when the last batch handed over has been made known.
        let mut last_shown: Option<tokio::sync::oneshot::Receiver<()>> = None;
        loop {
            // Sleep until a message arrives or the engine's next deadline (an offer lapsing,
            // a reminder), whichever comes first.
            let wake = self.engine.next_deadline();
            let clock = self.clock.clone();
            let first = tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                msg = rx.recv() => match msg {
                    Some(m) => Some(m),
                    None => break,
                },
                command = commands.recv(), if commands_open => {
                    match command {
                        Some(c) => asked.push(c),
                        None => commands_open = false, // the HTTP side is gone
                    }
                    None
                }
                _ = clock.sleep_until(wake) => None,
            };
            if let Some(first) = first {
                batch.push(first);
            }
            while batch.len() < self.batch_max {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            self.shell.in_batch.fetch_add(batch.len(), Ordering::Relaxed);
            while asked.len() < self.batch_max {
                match commands.try_recv() {
                    Ok(c) => asked.push(c),
                    Err(_) => break,
                }
            }
            let started = Instant::now();
            let worked = !batch.is_empty() || !asked.is_empty();
            let step = self.step(&mut batch, &mut asked);
            if worked {
                // A wake-up for a deadline alone is not a batch: it would only dilute the figure.
                self.shell.metrics.step_seconds.observe(started.elapsed().as_secs_f64());
            }
            // Commits go one at a time and in order: this one starts when the last is stored.
            if let Some(stored) = last_stored.take() {
                if stored.await != Ok(true) {
                    break;
                }
            }
            if !self.forget_finished(&mut in_flight).await {
                break;
            }
            let (stored_tx, stored_rx) = tokio::sync::oneshot::channel();
            let (shown_tx, shown_rx) = tokio::sync::oneshot::channel();
            let after = last_shown.replace(shown_rx);
            let stages = Stages { stored: stored_tx, after, shown: shown_tx };
            in_flight.push_back(InFlight(tokio::spawn(self.shell.clone().finish(step, stages, shutdown.clone()))));
            last_stored = Some(stored_rx);
        }
        // The batches in hand are finished (commit, then ack), in order; nothing more is read.
        while let Some(mut oldest) = in_flight.pop_front() {
            let _ = (&mut oldest.0).await;
        }
    }

    /// Drops the tasks that are done; false if one of them failed (a panic, or a batch not
    /// stored or not made known), which stops the engine.
    async fn forget_finished(&self, in_flight: &mut std::collections::VecDeque<InFlight>) -> bool {
        while in_flight.front().is_some_and(|t| t.0.is_finished()) {
            let Some(mut done) = in_flight.pop_front() else { break };
            if !(&mut done.0).await.unwrap_or(false) {
                return false;
            }
        }
        true
    }

    /// Lets the engine act on a batch of device messages and people's commands: what fell
    /// due first, then the messages, then the commands.
    fn step(&mut self, batch: &mut Vec<Inbound>, asked: &mut Vec<Command>) -> Step {
        let now = self.clock.now();
        self.engine.expire(now);
        let mut out = Outbox::default();
        // What fell due first (lapsed offers free responders for the presses below).
        self.engine.tick(now, &mut out);
        for msg in batch.iter() {
            self.take_in(msg, now, &mut out);
        }
        let mut replies = Vec::with_capacity(asked.len());
        for command in asked.drain(..) {
            // Whoever asked has given up waiting (and was told so): do not act behind their back.
            if command.reply.as_ref().is_some_and(|r| r.is_closed()) {
                tracing::info!(caller = ?command.caller, "command dropped: the caller stopped waiting");
                continue;
            }
            let result = self.obey(&command.caller, command.request, now, &mut out);
            if let Err(e) = &result {
                tracing::info!(caller = ?command.caller, error = %e, "command refused");
            }
            replies.push((command.reply, result));
        }
        if !batch.is_empty() {
            self.shell.metrics.batch_size.observe(batch.len() as f64);
        }
        let mut touched = std::mem::take(&mut out.responders);
        touched.sort();
        touched.dedup();
        let phones = touched.iter().filter_map(|r| phone_frames(&self.engine, r, now)).collect();
        // Consoles' maps: whoever changed status, duty or position.
        touched.extend(out.roster.iter().map(|r| r.id.clone()));
        touched.sort();
        touched.dedup();
        let responders = touched.iter().filter_map(|r| self.engine.responder_view(r)).collect();
        Step {
            messages: std::mem::take(batch),
            out,
            phones,
            responders,
            replies,
            open_incidents: self.engine.open_count(),
        }
    }
    fn take_in(&mut self, msg: &Inbound, now: Timestamp, out: &mut Outbox) {
        let payload = &msg.publish.payload;
        let device = match self.topics.device_of_events(&msg.publish.topic) {
            Ok(d) => d,
            Err(defect) => {
                self.reject(defect, "?", "ignored");
                return;
            }
        };
        if !self.engine.is_known_device(&device) {
            self.reject(anxin_mqtt::Defect::UnknownDevice, device.as_str(), "ignored");
            return;
        }
        let result = match anxin_mqtt::decode(payload, self.max_payload_bytes, now) {
            Ok(decoded) => {
                self.shell.metrics.messages_received.with_label_values(&[decoded.event.event.as_str()]).inc();
                for defect in decoded.partial {
                    self.reject(defect, device.as_str(), "the rest of the message is used");
                }
                self.engine.handle_device_event(&device, decoded.event, now, out)
            }
            Err(anxin_mqtt::Defect::UnknownType) => {
                // The device said plainly what it sent, and it is nothing we know: newer
                // firmware, most likely. Counted and logged, not raised as an incident.
                self.shell.metrics.messages_received.with_label_values(&["unreadable"]).inc();
                self.reject(anxin_mqtt::Defect::UnknownType, device.as_str(), "ignored");
                return;
            }
            Err(defect) => {
                self.shell.metrics.messages_received.with_label_values(&["unreadable"]).inc();
                self.reject(defect, device.as_str(), "the device may have pressed: an `unreadable` incident is raised");
                let reason = defect.to_string();
                self.engine.handle_unreadable(&device, &reason, anxin_mqtt::fingerprint(payload), now, out)
            }
        };
        match result {
            Ok(Outcome::Opened(id)) => {
                let kind = self.engine.incident(id).map_or("?", |i| i.kind.as_str());
                self.shell.metrics.incidents_opened.with_label_values(&[kind]).inc();
                tracing::info!(incident = %id, device = %device, kind, "incident opened");
            }
            Ok(Outcome::Joined(_)) => self.shell.metrics.presses_joined.inc(),
            Ok(Outcome::Duplicate) => self.shell.metrics.duplicates.inc(),
            Ok(Outcome::Throttled(_)) => self.shell.metrics.presses_throttled.inc(),
            Ok(Outcome::Noted) => {}
            Err(Refusal::UnknownDevice(_)) => {
                self.reject(anxin_mqtt::Defect::UnknownDevice, device.as_str(), "ignored")
            }
        }
    }

    /// Applies one person's request to the engine.
    fn obey(&mut self, caller: &Caller, request: Request, now: Timestamp, out: &mut Outbox) -> anxin_api::Answer {
        let result = match (caller, request) {
            (Caller::Responder(r), Request::Respond { incident, action }) => {
                self.engine.responder_acts(r, incident, action, now, out)
            }
            (Caller::Responder(r), Request::Duty { on }) => self.engine.set_duty(r, on, now, out),
            (Caller::Responder(r), Request::Location { at }) => self.engine.responder_moved(r, at, now, out),
            (Caller::Dispatcher { id, supervisor }, Request::Dispatch { incident, action }) => {
                let who = anxin_core::DispatcherRef { id, supervisor: *supervisor };
                self.engine.dispatcher_acts_as(who, incident, action, now, out)
            }
            (Caller::Dispatcher { .. }, Request::Suggest { incident }) => {
                return match self.engine.suggestions(incident, 8) {
                    Some(suggestions) => Ok(anxin_api::Reply::Suggestions(suggestions)),
                    None => Err(format!("incident {incident} is not open")),
                };
            }
            _ => return Err("not allowed for this caller".into()),
        };
        result.map(|()| anxin_api::Reply::Done).map_err(|e| e.to_string())
    }

    fn reject(&self, defect: anxin_mqtt::Defect, device: &str, what_happens: &str) {
        self.shell.metrics.payloads_rejected.with_label_values(&[defect.as_label()]).inc();
        tracing::warn!(device, reason = defect.as_label(), "{defect}; {what_happens}");
    }
}

impl Shell {
    /// Stores what a batch caused, then (once the batch before has been made known)
    /// acknowledges its messages and makes it known. Returns false, having acknowledged
    /// nothing, if shutdown came while the store was unreachable, or if the batch before was
    /// not made known.
    async fn finish(self: Arc<Self>, step: Step, stages: Stages, shutdown: CancellationToken) -> bool {
        let Step { messages, out, phones, responders, replies, open_incidents } = step;
        let Stages { stored, after, shown } = stages;
        let to_store =
            !out.messages.is_empty() || !out.events.is_empty() || !out.incidents.is_empty() || !out.roster.is_empty();
        if to_store && !self.commit(&out, &shutdown).await {
            // Not stored, so not acknowledged: the broker redelivers after restart.
            let _ = stored.send(false);
            return false;
        }
        let _ = stored.send(true);
        if let Some(before) = after {
            if before.await.is_err() {
                // The batch before was not made known: neither is this one (the broker
                // redelivers both, and they are found already stored).
                return false;
            }
        }
        for msg in &messages {
            self.metrics.press_commit_seconds.observe(msg.received.elapsed().as_secs_f64());
        }
        let taken = messages.len();
        for msg in messages {
            // Acknowledged only now that what it caused is stored (or it caused nothing).
            if let Err(e) = self.link.ack(msg) {
                tracing::warn!(error = %e, "could not acknowledge a stored message; the broker will redeliver it");
            }
        }
        self.in_batch.fetch_sub(taken, Ordering::Relaxed);
        for (device, command) in &out.commands {
            if let Err(e) = self.link.send(device, command) {
                self.metrics.commands_unsent.with_label_values(&[e.as_label()]).inc();
                tracing::warn!(device = %device, error = %e, "could not send a command to a device");
            }
        }
        for alert in &out.alerts {
            if let Err(e) = self.link.alert_station(alert) {
                self.metrics.commands_unsent.with_label_values(&[e.as_label()]).inc();
                // The incident still climbs to a dispatcher at the station's deadline.
                tracing::warn!(station = %alert.station_id, error = %e, "could not alert a station's duty line");
            }
        }
        self.metrics.open_incidents.set(open_incidents as i64);
        self.hub.publish(out.deltas);
        for (responder, hello, job) in phones {
            self.phones.publish(&responder, hello, job);
        }
        self.hub.publish_responders(responders);
        // Answered only now that what they caused is stored and shown.
        for (reply, result) in replies {
            if let Some(reply) = reply {
                let _ = reply.send(result);
            }
        }
        let _ = shown.send(());
        true
    }

    /// Commits, retrying while the store is down. Returns false if shutdown came first.
    async fn commit(&self, out: &Outbox, shutdown: &CancellationToken) -> bool {
        let batch =
            Batch { messages: &out.messages, events: &out.events, incidents: &out.incidents, roster: &out.roster };
        let mut backoff = Duration::from_millis(50);
        loop {
            let started = Instant::now();
            match self.store.commit(batch).await {
                Ok(()) => {
                    self.metrics.commit_seconds.observe(started.elapsed().as_secs_f64());
                    if !self.store_ok.swap(true, Ordering::Relaxed) {
                        tracing::info!("store reachable again; resuming");
                    }
                    return true;
                }
                Err(e) => {
                    self.metrics.commit_failures.inc();
                    self.store_ok.store(false, Ordering::Relaxed);
                    tracing::error!(error = %e, retry_in_ms = backoff.as_millis() as u64,
                        "cannot store presses; not acknowledging them, the broker holds them");
                    tokio::select! {
                        _ = shutdown.cancelled() => return false,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// Waits until `shutdown` fires (Ok) or the engine's task ends first, which only a bug does: a
/// panic, or the task returning while nobody asked it to stop (Err, saying which).
async fn engine_or_shutdown(
    engine: &mut tokio::task::JoinHandle<()>,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    tokio::select! {
        biased;
        _ = shutdown.cancelled() => Ok(()),
        ended = &mut *engine => Err(match ended {
            Ok(()) => "its task returned without being asked to stop".to_string(),
            Err(e) if e.is_panic() => {
                let panic = e.into_panic();
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".to_string());
                format!("it panicked: {message}")
            }
            Err(e) => e.to_string(),
        }),
    }
}

/// What a responder's phone shows now: who they are (its `hello`) and their `job`.
fn phone_frames(
    engine: &Engine,
    responder: &ResponderId,
    now: Timestamp,
) -> Option<(ResponderId, PhoneOwner, Option<JobView>)> {
    let r = engine.responder(responder)?;
    let hello =
        PhoneOwner { id: r.id.clone(), name: r.name.clone(), station_id: r.station_id.clone(), on_duty: r.on_duty };
    Some((responder.clone(), hello, engine.job_view(responder, now)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_engine_that_panics_is_an_error_and_a_shutdown_is_not() {
        let shutdown = CancellationToken::new();
        let mut engine = tokio::spawn(async { panic!("This is a bug in rstar.") });
        let why = engine_or_shutdown(&mut engine, &shutdown).await.unwrap_err();
        assert_eq!(why, "it panicked: This is a bug in rstar.");

        let stop = shutdown.clone();
        let mut engine = tokio::spawn(async move { stop.cancelled().await });
        shutdown.cancel();
        assert_eq!(engine_or_shutdown(&mut engine, &shutdown).await, Ok(()));

        let mut engine = tokio::spawn(async {});
        let why = engine_or_shutdown(&mut engine, &CancellationToken::new()).await.unwrap_err();
        assert!(why.contains("without being asked"), "{why}");
    }
}
