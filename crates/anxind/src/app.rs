//! Wiring: the store, the engine task, the MQTT link, the HTTP server; start-up and a
//! shutdown with a deadline.

use crate::clock::Clock;
use crate::config::{broker_address, Config};
use crate::telemetry::Metrics;
use anxin_api::ws::ConsoleSettings;
use anxin_api::{ApiState, Hub, ResponderHub};
use anxin_core::{Engine, Policy, Registry};
use anxin_mqtt::{EmbeddedBroker, LinkOptions};
use anxin_store::Store;
use anyhow::Context;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
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
    /// Families' tokens (from the store) and feeds.
    families: Arc<crate::family::StoreFamilies>,
    family_hub: Arc<anxin_api::FamilyHub>,
    /// The supervisors' day so far, rebuilt from the day's stored events.
    wallboard: Arc<anxin_api::Wallboard>,
    metrics: Metrics,
    clock: Clock,
    /// The embedded broker, if used: where the engine connects and with which login. It
    /// lives as long as the process.
    broker: Option<EmbeddedBroker>,
    /// The district's lease, when the engine runs under one (`[cluster]`).
    lease: Option<crate::cluster::Held>,
}

impl App {
    /// Opens the store, adds `registry` to its ledger (the demo district, a test's fixtures),
    /// resumes the engine from what is stored, and binds the ports.
    pub async fn build(config: Config, registry: Option<Registry>) -> anyhow::Result<Self> {
        Self::build_with_clock(config, registry, Clock::System).await
    }

    /// [`App::build`] with the clock the engine reads (tests move a manual one by hand).
    pub async fn build_with_clock(config: Config, registry: Option<Registry>, clock: Clock) -> anyhow::Result<Self> {
        Self::build_with(config, registry, clock, None).await
    }

    /// [`App::build_with_clock`] for an engine that holds `lease` (`[cluster]`): it resumes
    /// from the store the lease was granted by, and every commit is fenced by it.
    pub async fn build_with(
        config: Config,
        registry: Option<Registry>,
        clock: Clock,
        lease: Option<crate::cluster::Held>,
    ) -> anyhow::Result<Self> {
        let store: Arc<dyn Store> = match &lease {
            Some(held) => held.store.clone(),
            None => anxin_store::open(config.store.url.expose()).await.context("cannot open the store")?,
        };
        if let Some(registry) = registry {
            let stored = store.load_registry().await.context("cannot load the registry")?;
            registry.check_against(&stored).context("the registry is inconsistent")?;
            store.save_registry(&registry).await.context("cannot save the registry")?;
        }
        let policy = policy_of(&config);
        let now = clock.now();
        // What the engine resumes from, read at once on the pool's connections: nothing else
        // writes it meanwhile (no engine runs yet, and under `[cluster]` this one holds the
        // lease). A takeover waits for these reads.
        let reading = std::time::Instant::now();
        // The engine runs every zone the ledger has stations in (`anxin_core::zone`; zones
        // spread over nodes run in engines of their own, `crate::node`).
        let zones = store.ledger_zones().await.context("cannot read the ledger's zones")?;
        let ((resume, resume_ms), (registry, ledger_ms), (history, _)) = tokio::join!(
            timed(store.resume(&zones, now.plus_millis(-policy.dedup_window_ms))),
            timed(store.load_registry()),
            timed(store.history_id()),
        );
        let resume = resume.context("cannot read open incidents")?;
        let registry = registry.context("cannot load the registry")?;
        let history = history.context("cannot read the store's history id")?;
        let read_ms = reading.elapsed().as_millis() as u64;
        tracing::info!(
            elders = registry.elders.len(),
            devices = registry.devices.len(),
            responders = registry.responders.len(),
            stations = registry.stations.len(),
            open_incidents = resume.open.len(),
            zones = ?zones.iter().map(|z| z.number()).collect::<Vec<_>>(),
            read_ms,
            resume_ms,
            ledger_ms,
            "resuming"
        );
        // What the shell keeps of the ledger is taken first, and the ledger itself goes to
        // the engine whole: a million devices are not held twice.
        let tokens = registry
            .responders
            .iter()
            .filter_map(|r| r.token_sha256.as_ref().map(|h| (h.to_ascii_lowercase(), r.id.clone())))
            .collect();
        let responder_ids: Vec<_> = registry.responders.iter().map(|r| r.id.clone()).collect();
        let sessions = crate::sessions::kept(registry.staff.clone(), store.clone());
        let families = Arc::new(crate::family::StoreFamilies::new(store.clone(), &registry));
        let modes = registry.responders.iter().map(|r| (r.id.clone(), r.mode)).collect();
        let engine = Engine::new(policy, registry, resume);
        let at = anxin_api::Cursor::of(engine.last_seqs());
        let hub = Arc::new(Hub::new(history, at.clone(), engine.snapshot(), config.consoles.replay));
        let metrics = Metrics::new();
        metrics.open_incidents.set(engine.open_count() as i64);
        if let Some(held) = &lease {
            metrics.lease_epoch.set(held.epoch());
        }
        let phones = Arc::new(ResponderHub::new(tokens));
        for id in &responder_ids {
            if let Some(phone) = anxin_runtime::phone_view(&engine, id, now) {
                crate::ports::publish_phone(&phones, &phone);
            }
        }
        hub.set_stations(engine.stations_view());
        hub.publish_responders(engine.roster_view());
        let family_hub = Arc::new(anxin_api::FamilyHub::new(engine.policy().clone(), modes, engine.snapshot()));
        // The wallboard's day is a function of the day's events: read back once the engine
        // runs (`App::run`), it is what it was before a restart.
        let tally = anxin_core::DayTally::new(config.wallboard.limits(), config.dispatch.utc_offset_min, now);
        let clock_fn: anxin_api::WallClock = {
            let clock = clock.clone();
            Arc::new(move || clock.now())
        };
        let wallboard = Arc::new(anxin_api::Wallboard::loading(tally, engine.offline_count(), clock_fn, at));
        tracing::info!(built_ms = reading.elapsed().as_millis() as u64 - read_ms, "the engine is built");

        let (broker, broker_host, broker_port) = if config.mqtt.broker == "embedded" {
            let accounts = match &config.mqtt.embedded_accounts {
                Some(path) => {
                    let text = std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read mqtt.embedded_accounts {}", path.display()))?;
                    let passwd = anxin_mqtt::PasswordFile::parse(&text)
                        .with_context(|| format!("mqtt.embedded_accounts {} is not a password file", path.display()))?;
                    let topics = anxin_mqtt::Topics::new(&config.mqtt.topic_root).map_err(anyhow::Error::msg)?;
                    Some(anxin_mqtt::broker::Accounts { passwd, topics })
                }
                None => None,
            };
            let refused = metrics.mqtt_refused.clone();
            let on_refused: anxin_mqtt::broker::OnRefused =
                Arc::new(move |why| refused.with_label_values(&[why.as_label()]).inc());
            let broker = EmbeddedBroker::start(
                config.mqtt.embedded_listen,
                config.mqtt.max_payload_bytes,
                accounts,
                on_refused,
            )?;
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
            families,
            family_hub,
            wallboard,
            metrics,
            broker,
            lease,
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

    /// The embedded broker, when anxind runs one: where rumqttd listens behind the guard,
    /// and the internal login (the `help_coming` bench reaches rumqttd directly with them).
    pub fn embedded_broker(&self) -> Option<&EmbeddedBroker> {
        self.broker.as_ref()
    }

    /// The embedded broker's accounts, to add and retire devices while it runs (the handle
    /// [`crate::provision::provisioner`] makes for `mqtt.provisioning = "embedded"`).
    pub fn broker_accounts(&self) -> Option<anxin_mqtt::broker::GuardAccounts> {
        self.broker.as_ref().map(EmbeddedBroker::accounts)
    }

    pub fn store(&self) -> Arc<dyn Store> {
        self.store.clone()
    }

    /// Families' links, kept in the store (the demo issues some at start).
    pub fn families(&self) -> Arc<crate::family::StoreFamilies> {
        self.families.clone()
    }

    /// Where the engine's MQTT link connects, and as whom. With the embedded broker behind its
    /// guard, rumqttd directly, with the broker's own login; otherwise the configured broker
    /// and account.
    fn engine_link(&self) -> (String, u16, Option<String>, Option<String>) {
        match self.broker.as_ref().map(|b| (b.engine_addr(), b.engine_login().clone())) {
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
        // The broker learns devices' accounts as the ledger changes, and agrees with the
        // ledger from the start.
        let provisioner = crate::provision::provisioner(&self.config, self.broker.as_ref()).await?;
        crate::ledger::reconcile_broker(&*self.store, &*provisioner).await?;
        // The ledger is loaded and the broker agrees with it: what start-up freed goes back.
        crate::memory::release_free_memory();
        let wallboard = self.wallboard.clone();
        let App {
            config, http, store, engine, hub, phones, sessions, families, family_hub, metrics, clock, lease, ..
        } = self;
        let day_store = store.clone();

        let topics = anxin_mqtt::Topics::new(&config.mqtt.topic_root).map_err(anyhow::Error::msg)?;
        let (tx, rx) = mpsc::channel(config.ingest.queue);
        let in_batch = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        // Messages in the engine's hands not yet answered: queued, or in a batch.
        let backlog = {
            let (queue, in_batch) = (tx.downgrade(), in_batch.clone());
            move || queue.upgrade().map_or(0, |tx| tx.max_capacity() - tx.capacity()) + in_batch.load(Ordering::Relaxed)
        };
        crate::telemetry::IngestBacklog::register(
            &metrics.registry,
            &tx,
            in_batch.clone(),
            config.ingest.batch_max,
            config.store.commits_in_flight(),
        )
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
                share_group: None,
                subscribe: true,
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
        // People's commands wait here for the engine; when full, their requests wait.
        let (command_tx, command_rx) = mpsc::channel(1024);
        let People { routes, notify_task, notify_stop, notify_wake, notify_metrics, http_stop, .. } =
            people(PeopleParts {
                config: &config,
                store: store.clone(),
                hub: hub.clone(),
                phones: phones.clone(),
                sessions: sessions.clone(),
                families,
                family_hub: family_hub.clone(),
                wallboard: wallboard.clone(),
                metrics: &metrics,
                clock: &clock,
                readiness,
                commands: command_tx,
                notify_zones: None,
            })?;
        let store = crate::notify::WakingStorePort {
            inner: crate::ports::StorePort(store, lease.clone().map(crate::cluster::FencedStore)),
            wake: notify_wake,
            metrics: notify_metrics,
        };
        let wallboard_stop = CancellationToken::new();
        // The presses waiting for this engine (a takeover's, a restart's) are answered before
        // the wallboard reads its day.
        let answered: Box<dyn Fn() -> bool + Send + Sync> = {
            let link = link.clone();
            Box::new(move || link.is_connected() && backlog() == 0)
        };
        let wallboard_task = spawn_wallboard(
            day_store,
            wallboard.clone(),
            Some((answered, DAY_READ_WAITS_AT_MOST)),
            wallboard_stop.clone(),
        );
        let http_task = tokio::spawn(anxin_api::serve(http, routes, http_stop.clone()));

        let store = Arc::new(store);
        let feeds = Arc::new(crate::ports::FeedPort {
            hub,
            phones,
            family: family_hub,
            wallboard: Some(wallboard.clone()),
            sessions,
            broker: crate::ledger::BrokerAccounts::spawn(provisioner),
            zone: None,
            peers: None,
        });
        let clock = Arc::new(clock);
        let link_port = crate::ports::LinkPort { link: link.clone(), metrics: metrics.clone() };
        let telemetry =
            Arc::new(crate::ports::MetricsPort { metrics, store_ok, in_batch, wallboard, totals: None, peers: None });
        let options = anxin_runtime::Options {
            batch_max: config.ingest.batch_max,
            commits_in_flight: config.store.commits_in_flight(),
            intake: anxin_runtime::Intake { topics, max_payload_bytes: config.mqtt.max_payload_bytes },
            health_snapshot: std::time::Duration::from_secs(config.health.snapshot_s),
            fault: anxin_runtime::Fault::None,
        };
        let ports = anxin_runtime::Ports { store, devices: Arc::new(link_port), feeds, clock, telemetry };
        let runtime = anxin_runtime::Runtime::new(engine, ports, options);
        let mut engine_task = tokio::spawn(runtime.run(rx, command_rx, shutdown.clone()));
        // Under a lease (renewed since it was granted): if it is lost, the engine stops.
        let lease_lost = lease.as_ref().map(crate::cluster::Held::lost).unwrap_or_default();

        if let Err(why) = engine_or_shutdown(&mut engine_task, &shutdown, &lease_lost).await {
            // A bug stopped the engine. Nothing it had not stored was acknowledged, so the
            // broker keeps those presses for the next start; a process that stayed up would
            // hold them unseen. Stop at once and say so: the supervisor restarts anxind.
            engine_running.store(false, Ordering::Relaxed);
            tracing::error!(error = %why, "the engine stopped; anxind exits so that it can be restarted");
            link_stop.cancel();
            http_stop.cancel();
            notify_stop.cancel();
            wallboard_stop.cancel();
            // Nothing the engine still has in hand may be acknowledged now.
            engine_task.abort();
            if let Some(held) = &lease {
                held.stop_renewing().await;
            }
            let _ = tokio::time::timeout(deadline, async {
                let _ = link_task.await;
                let _ = http_task.await;
                let _ = notify_task.await;
            })
            .await;
            anyhow::bail!("the engine stopped: {why}");
        }
        tracing::info!(deadline_s = deadline.as_secs(), "shutting down");
        let stragglers = [
            ("engine", engine_task.abort_handle()),
            ("mqtt", link_task.abort_handle()),
            ("http", http_task.abort_handle()),
            ("notify", notify_task.abort_handle()),
            ("wallboard", wallboard_task.abort_handle()),
        ];
        let until = tokio::time::Instant::now() + deadline;
        let stopped = tokio::time::timeout_at(until, async {
            // The engine finishes the batch in hand (commit, then ack), then stops reading.
            if let Err(e) = engine_task.await {
                tracing::error!(error = %e, "engine task failed");
            }
            engine_running.store(false, Ordering::Relaxed);
            link.disconnect().await;
            link_stop.cancel();
            let _ = link_task.await;
        })
        .await;
        if let Some(held) = &lease {
            if stopped.is_ok() {
                // Every batch in hand is stored, acknowledged and sent, and the engine's MQTT
                // session is closed: the next engine may start at once, while this one's
                // consoles and notifications wind down (a notification this one sent and had
                // not yet recorded is sent again by the next, under the same key).
                held.hand_over().await;
            } else {
                held.stop_renewing().await;
            }
        }
        let drained = tokio::time::timeout_at(until, async {
            stopped?;
            http_stop.cancel();
            let _ = http_task.await;
            // The sends in flight finish (each within notify.request_timeout_ms); what is
            // not yet recorded is sent again at the next start, under the same key.
            notify_stop.cancel();
            let _ = notify_task.await;
            wallboard_stop.cancel();
            let _ = wallboard_task.await;
            Ok::<(), tokio::time::error::Elapsed>(())
        })
        .await
        .and_then(|r| r);
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

/// What [`people`] is built from: the parts a node keeps however many engines it runs.
pub(crate) struct PeopleParts<'a> {
    pub config: &'a Config,
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    pub phones: Arc<ResponderHub>,
    pub sessions: Arc<anxin_api::Sessions>,
    pub families: Arc<crate::family::StoreFamilies>,
    pub family_hub: Arc<anxin_api::FamilyHub>,
    pub wallboard: Arc<anxin_api::Wallboard>,
    pub metrics: &'a Metrics,
    pub clock: &'a Clock,
    pub readiness: anxin_api::ReadinessCheck,
    /// Where people's commands go: the engine, or the router to a node's engines.
    pub commands: anxin_proto::CommandSender,
    /// With zones spread over nodes, the zones whose notifications this node sends.
    pub notify_zones: Option<crate::notify::RunningZones>,
}

/// The people's side, ready to serve: the HTTP routes (consoles, phones, families, the
/// ledger, reports, the gateways' callbacks), and the notification worker, running.
pub(crate) struct People {
    pub routes: axum::Router,
    pub notify_task: tokio::task::JoinHandle<()>,
    pub notify_stop: CancellationToken,
    /// Woken by commits that store notifications.
    pub notify_wake: Arc<tokio::sync::Notify>,
    pub notify_metrics: crate::notify::NotifyMetrics,
    /// Stops the HTTP server (and tells consoles' sockets to close).
    pub http_stop: CancellationToken,
}

pub(crate) fn people(parts: PeopleParts<'_>) -> anyhow::Result<People> {
    let PeopleParts {
        config,
        store,
        hub,
        phones,
        sessions,
        families,
        family_hub,
        wallboard,
        metrics,
        clock,
        readiness,
        commands,
        notify_zones,
    } = parts;
    let http_stop = CancellationToken::new();
    let api = ApiState::new(
        hub,
        phones,
        commands,
        metrics.registry.clone(),
        readiness,
        http_stop.clone(),
        sessions,
        Arc::new(crate::timeline::StoreTimeline(store.clone())),
        ConsoleSettings {
            language: config.consoles.language.clone(),
            accept_target_s: config.consoles.accept_target_s,
            on_scene_target_min: config.consoles.on_scene_target_min,
            programme_overdue_after_h: config.programme.overdue_after_h.into(),
            map: config.consoles.map.settings(),
        },
        {
            let clock = clock.clone();
            Arc::new(move || clock.now())
        },
    );
    // Families' notifications: the delivery worker, woken by commits that store some,
    // and the gateway's signed callback.
    let notify_metrics = crate::notify::NotifyMetrics::new(&metrics.registry);
    let notify_wake = Arc::new(tokio::sync::Notify::new());
    let notify_stop = CancellationToken::new();
    let receipts = crate::notify::StoreReceipts {
        store: store.clone(),
        secret: config.notify.callback_key().map(|s| s.expose().as_bytes().to_vec()),
        tolerance_ms: config.notify.callback_tolerance_s as i64 * 1000,
        clock: clock.clone(),
        metrics: notify_metrics.clone(),
    };
    let callbacks = anxin_api::notify::callback_router(Arc::new(receipts), api.commands.clone(), &metrics.registry);
    let worker = crate::notify::worker(
        &config.notify,
        store.clone(),
        api.commands.clone(),
        notify_metrics.clone(),
        clock.clone(),
        notify_wake.clone(),
        notify_zones,
    )?;
    let notify_task = crate::notify::spawn(worker, notify_stop.clone());
    spawn_milestones(store.clone(), notify_stop.clone());
    crate::telemetry::UnreadableEvents::register(&metrics.registry, store.clone())?;
    // The family page asks for Web Push's public key: the one [notify] signs with.
    let push_key = config.notify.vapid()?.map(|v| v.public_key());
    let api = api.with_family(anxin_api::FamilySide::new(families, family_hub, push_key)).with_ledger(Arc::new(
        crate::ledger::StoreLedger(
            store.clone(),
            crate::ledger::ProgrammeExport {
                overdue_after_ms: i64::from(config.programme.overdue_after_h) * 3_600_000,
                days: i64::from(config.programme.export_days),
            },
        ),
    ));
    let api = api.with_wallboard(wallboard).with_reports(Arc::new(crate::ledger::StoreReports {
        store: store.clone(),
        utc_offset_min: config.dispatch.utc_offset_min,
        limits: config.wallboard.limits(),
        shifts: config.reports.shifts(),
        programme_overdue_ms: config.programme.policy().overdue_after_ms,
    }));
    let api = api.with_services(Arc::new(crate::ledger::StoreServices {
        store: store.clone(),
        utc_offset_min: config.dispatch.utc_offset_min,
    }));
    // The SIP server's news of calls, only when it has a token to send.
    let mut routes = anxin_api::router(api.clone()).merge(callbacks);
    if let Some(token) = &config.telephony.token {
        let calls = anxin_api::telephony::calls_router(token.expose().trim(), api.commands.clone(), &metrics.registry);
        routes = routes.merge(calls);
        // The consoles' softphone, only where there is a SIP server's WebSocket to name.
        if let Some(ws_url) = &config.telephony.ws_url {
            let softphone = anxin_api::telephony::Softphone {
                ws_url: ws_url.clone(),
                turn_urls: config.telephony.turn_urls.clone(),
                relay_only: config.telephony.ice_relay_only,
            };
            let credentials = anxin_api::telephony::credentials_router(api.clone(), token.expose().trim(), softphone);
            routes = routes.merge(credentials);
        }
    }
    Ok(People { routes, notify_task, notify_stop, notify_wake, notify_metrics, http_stop })
}

/// Folds the events stored since the last fold into the reports' rows of milestones
/// (`anxin_store::milestones`) every `FOLD_EVERY`, off the engine's path, until `stop`. A report
/// folds what is left itself, so this only keeps that little; a fold cut short by the stop
/// leaves its marks where they were, and the next folds those events again, to the same rows.
fn spawn_milestones(store: Arc<dyn Store>, stop: CancellationToken) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(anxin_store::milestones::FOLD_EVERY) => {}
            }
            // Off the engine's threads: a fold decodes every event stored since the last.
            let (handle, store) = (tokio::runtime::Handle::current(), store.clone());
            let fold = tokio::task::spawn_blocking(move || handle.block_on(store.fold_milestones()));
            match fold.await.map_err(anyhow::Error::from).and_then(|r| r.map_err(anyhow::Error::from)) {
                Ok(events) => tracing::debug!(events, "folded the events stored since into the reports' milestones"),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot fold the events into the reports' milestones; trying again")
                }
            }
        }
    });
}

/// How long the wallboard's read of the day waits at most for the presses waiting for a new
/// engine to be answered ([`spawn_wallboard`]).
pub(crate) const DAY_READ_WAITS_AT_MOST: Duration = Duration::from_secs(5);

/// How long the engine's intake must stay empty (connected, nothing queued or in a batch)
/// before the wallboard reads its day: a broker hands a resumed session's queued messages over
/// in a burst at once, so an intake still empty this long after connecting has none waiting.
const QUIET_FOR: Duration = Duration::from_millis(200);

/// The supervisors' wallboard's task: reads the day's events once an engine runs (a takeover
/// does not wait for a read that grows with the day; until then the wallboard shows
/// nothing), then keeps the figures fresh until `stop`.
///
/// With `after`, the read waits first until the check has held for [`QUIET_FOR`], or for the
/// time given at most: the presses that waited for this engine are answered before it. The
/// day's read decodes every event of the day (a second at 170,000 on two cores), and on a
/// takeover it had the first press answered 1.9 s after a SIGTERM, a second after the engine
/// was ready (the cluster soak, docs/reliability.md).
pub(crate) fn spawn_wallboard(
    store: Arc<dyn Store>,
    wallboard: Arc<anxin_api::Wallboard>,
    after: Option<(Box<dyn Fn() -> bool + Send + Sync>, Duration)>,
    stop: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Some((quiet, at_most)) = after {
            let (began, mut quiet_since) = (std::time::Instant::now(), None);
            while began.elapsed() < at_most {
                if !quiet() {
                    quiet_since = None;
                } else if quiet_since.get_or_insert_with(std::time::Instant::now).elapsed() >= QUIET_FOR {
                    break;
                }
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                }
            }
        }
        while wallboard.is_loading() {
            // Read and counted off the engine's threads: a day's events are tens of
            // thousands to read back and count, and the engine's batches must not
            // wait behind them (they did, for most of a second, at every start).
            let (handle, store, board) = (tokio::runtime::Handle::current(), store.clone(), wallboard.clone());
            let read = tokio::task::spawn_blocking(move || {
                handle.block_on(async {
                    let (day, day_ms) = timed(store.events_since(board.day_start())).await;
                    day.map(|day| {
                        board.load_day(&day);
                        (day.len(), day_ms)
                    })
                })
            });
            match read.await {
                Ok(Ok((events_today, day_ms))) => {
                    tracing::info!(events_today, day_ms, "the wallboard's day is read");
                    continue;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "cannot read the day's events for the wallboard; trying again")
                }
                Err(e) => tracing::warn!(error = %e, "the wallboard's read of the day failed; trying again"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        wallboard.run(stop).await
    })
}

/// The dispatch policy `config` sets.
pub(crate) fn policy_of(config: &Config) -> Policy {
    Policy {
        max_offer_distance_m: config.dispatch.max_offer_distance_m,
        max_fix_accuracy_m: config.dispatch.max_fix_accuracy_m,
        max_fix_distance_from_home_m: config.dispatch.max_fix_distance_from_home_m,
        offer_timeout_ms: config.dispatch.offer_timeout_s as i64 * 1000,
        ladders: config.dispatch.ladders(),
        matching: config.dispatch.matching(),
        yield_extra_offers: config.dispatch.yield_extra_offers,
        border_offers: config.dispatch.border_offers,
        border_answer_ms: config.dispatch.border_answer_ms as i64,
        border_refused_ms: config.dispatch.border_refused_s as i64 * 1000,
        station_timeout_ms: config.dispatch.station_timeout_s as i64 * 1000,
        reminder_interval_ms: config.dispatch.reminder_interval_s as i64 * 1000,
        claim_offline_release_ms: config.dispatch.claim_offline_release_s as i64 * 1000,
        family_escalate_after_ms: config.dispatch.family_escalate_after_s as i64 * 1000,
        utc_offset_min: config.dispatch.utc_offset_min,
        on_scene_within_ms: config.dispatch.on_scene_within_min as i64 * 60_000,
        medical_number: config.dispatch.medical_number.clone(),
        fire_number: config.dispatch.fire_number.clone(),
        police_number: config.dispatch.police_number.clone(),
        max_fix_age_ms: config.dispatch.max_fix_age_min as i64 * 60_000,
        repeat_press_interval_ms: config.dispatch.repeat_press_interval_ms as i64,
        health: config.health.policy(),
        activity: config.activity.policy(),
        programme: config.programme.policy(),
        carers: config.carers.policy(),
        services: config.services.policy(),
        call_fallback_number: config.telephony.fallback_number.clone(),
        ..Policy::default()
    }
}

/// `future`'s output, and how many milliseconds it took.
async fn timed<T>(future: impl std::future::Future<Output = T>) -> (T, u64) {
    let started = std::time::Instant::now();
    let out = future.await;
    (out, started.elapsed().as_millis() as u64)
}

/// Waits until `shutdown` fires (Ok) or the engine's task ends first, which only a bug does: a
/// panic, or the task returning while nobody asked it to stop (Err, saying which).
async fn engine_or_shutdown(
    engine: &mut tokio::task::JoinHandle<anxin_runtime::Ended>,
    shutdown: &CancellationToken,
    lease_lost: &CancellationToken,
) -> Result<(), String> {
    tokio::select! {
        biased;
        _ = shutdown.cancelled() => Ok(()),
        _ = lease_lost.cancelled() => Err("a lease was lost to another engine".to_string()),
        ended = &mut *engine => Err(match ended {
            Ok(anxin_runtime::Ended::Fenced) => {
                "a commit was fenced: another engine holds the lease on what this one wrote".to_string()
            }
            Ok(_) => "its task returned without being asked to stop".to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A wallboard loading its day from a fresh SQLite store, its read waiting on `after`.
    async fn wallboard_after(
        after: Option<(Box<dyn Fn() -> bool + Send + Sync>, Duration)>,
    ) -> (Arc<anxin_api::Wallboard>, CancellationToken, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            anxin_store::SqliteStore::open(&format!("sqlite://{}", dir.path().join("a.db").display())).await.unwrap();
        let now = anxin_core::Timestamp(1_763_000_000_000);
        let tally = anxin_core::DayTally::new(anxin_core::StandardLimits::default(), 480, now);
        let wallboard =
            Arc::new(anxin_api::Wallboard::loading(tally, 0, Arc::new(move || now), anxin_api::hub::Cursor::default()));
        let stop = CancellationToken::new();
        spawn_wallboard(Arc::new(store), wallboard.clone(), after, stop.clone());
        (wallboard, stop, dir)
    }

    async fn loaded_within(wallboard: &anxin_api::Wallboard, within: Duration) -> bool {
        let began = std::time::Instant::now();
        while wallboard.is_loading() && began.elapsed() < within {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        !wallboard.is_loading()
    }

    /// The wallboard reads its day only once the presses waiting for a new engine are
    /// answered (the intake empty for a while), or after the most it waits; without a check it
    /// reads at once.
    #[tokio::test]
    async fn the_wallboards_day_waits_for_the_presses_waiting_to_be_answered() {
        let busy = Arc::new(AtomicBool::new(true));
        let check = busy.clone();
        let (wallboard, stop, _dir) =
            wallboard_after(Some((Box::new(move || !check.load(Ordering::Relaxed)), Duration::from_secs(60)))).await;
        assert!(!loaded_within(&wallboard, Duration::from_millis(600)).await, "read while presses waited");
        busy.store(false, Ordering::Relaxed);
        assert!(loaded_within(&wallboard, Duration::from_secs(5)).await, "not read once they were answered");
        stop.cancel();

        let (wallboard, stop, _dir) = wallboard_after(Some((Box::new(|| false), Duration::from_millis(300)))).await;
        assert!(loaded_within(&wallboard, Duration::from_secs(5)).await, "a backlog that never empties held the day");
        stop.cancel();

        let (wallboard, stop, _dir) = wallboard_after(None).await;
        assert!(loaded_within(&wallboard, Duration::from_secs(5)).await);
        stop.cancel();
    }

    #[tokio::test]
    async fn an_engine_that_panics_is_an_error_and_a_shutdown_is_not() {
        let shutdown = CancellationToken::new();
        let mut engine = tokio::spawn(async { panic!("This is a bug in rstar.") });
        let why = engine_or_shutdown(&mut engine, &shutdown, &CancellationToken::new()).await.unwrap_err();
        assert_eq!(why, "it panicked: This is a bug in rstar.");

        let stop = shutdown.clone();
        let mut engine = tokio::spawn(async move {
            stop.cancelled().await;
            anxin_runtime::Ended::Shutdown
        });
        shutdown.cancel();
        assert_eq!(engine_or_shutdown(&mut engine, &shutdown, &CancellationToken::new()).await, Ok(()));

        let mut engine = tokio::spawn(async { anxin_runtime::Ended::Unfinished });
        let why =
            engine_or_shutdown(&mut engine, &CancellationToken::new(), &CancellationToken::new()).await.unwrap_err();
        assert!(why.contains("without being asked"), "{why}");

        let mut engine = tokio::spawn(async { anxin_runtime::Ended::Fenced });
        let why =
            engine_or_shutdown(&mut engine, &CancellationToken::new(), &CancellationToken::new()).await.unwrap_err();
        assert!(why.contains("fenced"), "{why}");
    }
}
