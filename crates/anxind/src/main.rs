//! `anxind`: runs the Anxin engine, or the demo district.

use anxind::{demo, App, Config};
use anyhow::Context;
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Parser, Debug)]
#[command(name = "anxind", version, about = "Anxin: emergency dispatch for elders living at home")]
struct Cli {
    /// A TOML file overriding the built-in defaults (see docs/configuration.md).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Address for the console, WebSocket, metrics and health endpoints (http.listen).
    #[arg(long, global = true)]
    http_listen: Option<String>,
    /// "embedded" or mqtt://HOST:PORT (mqtt.broker).
    #[arg(long, global = true)]
    mqtt_broker: Option<String>,
    /// Where the embedded broker listens (mqtt.embedded_listen).
    #[arg(long, global = true)]
    mqtt_listen: Option<String>,
    /// sqlite://PATH or postgres://... (store.url).
    #[arg(long, global = true)]
    store_url: Option<String>,
    /// A JSON file of elders, devices, stations, responders and staff to add to (or update in) the
    /// store at start; `anxind registry-example` prints one.
    #[arg(long, global = true)]
    registry: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the engine (the default).
    Run,
    /// Print the demo district as a registry JSON file (the format --registry reads).
    RegistryExample,
    /// Print the SHA-256 of a responder's sign-in token, for `token_sha256` in a registry file.
    HashToken {
        /// The token the responder will type on their phone.
        token: String,
    },
    /// Print the Argon2id hash of a dispatcher's password, for a registry file's `staff`
    /// (`password_hash`). Reads the password from standard input (one line), so it stays
    /// out of the shell's history.
    HashPassword,
    /// Write the broker's password file (`passwd`, Mosquitto's format) and ACL file (`acl`)
    /// for the registry's devices and stations and the engine, in `--out`. Passwords already
    /// there are kept; new ones are added to `new-passwords.csv` for the installers.
    BrokerFiles {
        /// The folder to write to (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a fresh VAPID key pair for Web Push: the private key for
    /// notify.vapid_private_key, the public key the family page subscribes with.
    VapidKeys,
    /// Run the engine with a demo district around Kunming's Xishan and simulated presses.
    Demo {
        /// How many simulated devices press now and then (demo.devices).
        #[arg(long)]
        demo_devices: Option<usize>,
        /// Mean seconds between simulated presses (demo.press_interval_s).
        #[arg(long)]
        demo_press_interval: Option<f64>,
    },
}

impl Cli {
    fn overrides(&self) -> serde_json::Value {
        let mut o = serde_json::json!({});
        let mut set = |section: &str, key: &str, value: serde_json::Value| {
            o.as_object_mut().unwrap().entry(section).or_insert_with(|| serde_json::json!({}))[key] = value;
        };
        if let Some(v) = &self.http_listen {
            set("http", "listen", v.clone().into());
        }
        if let Some(v) = &self.mqtt_broker {
            set("mqtt", "broker", v.clone().into());
        }
        if let Some(v) = &self.mqtt_listen {
            set("mqtt", "embedded_listen", v.clone().into());
        }
        if let Some(v) = &self.store_url {
            set("store", "url", v.clone().into());
        }
        if let Some(Command::Demo { demo_devices, demo_press_interval }) = &self.command {
            if let Some(v) = demo_devices {
                set("demo", "devices", (*v).into());
            }
            if let Some(v) = demo_press_interval {
                set("demo", "press_interval_s", (*v).into());
            }
        }
        o
    }
}

fn main() -> anyhow::Result<()> {
    // rumqttd logs ordinary device disconnects at ERROR, which is reserved here for lost data
    // or an operator having to act, so the embedded broker is quiet unless ANXIN_LOG asks.
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_env("ANXIN_LOG").unwrap_or_else(|_| "info,rumqttd=off,sqlx=warn".into())
    };
    // ANXIN_LOG_FORMAT=json: one JSON object a line, for a log collector.
    match std::env::var("ANXIN_LOG_FORMAT").as_deref() {
        Ok("json") => tracing_subscriber::fmt()
            .json()
            .with_current_span(false)
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .init(),
        Ok("text") | Err(std::env::VarError::NotPresent) => tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        Ok(other) => anyhow::bail!("ANXIN_LOG_FORMAT must be text or json, not {other:?}"),
        Err(e) => anyhow::bail!("ANXIN_LOG_FORMAT: {e}"),
    }
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref(), &cli.overrides())?;
    anxind::tokio_runtime(config.worker_threads())?.block_on(run(cli, config))
}

async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    if let Some(Command::HashToken { token }) = &cli.command {
        println!("{}", anxin_api::token_sha256(token));
        return Ok(());
    }
    if matches!(cli.command, Some(Command::VapidKeys)) {
        let (private, public) = anxin_notify::Vapid::generate();
        println!("vapid_private_key = \"{private}\"\n# public key (applicationServerKey): {public}");
        return Ok(());
    }
    if matches!(cli.command, Some(Command::HashPassword)) {
        let mut password = String::new();
        std::io::stdin().read_line(&mut password)?;
        let password = password.trim_end_matches(['\n', '\r']);
        if password.is_empty() {
            anyhow::bail!("no password on standard input");
        }
        println!("{}", anxin_api::hash_password(password));
        return Ok(());
    }
    if let Some(Command::BrokerFiles { out }) = &cli.command {
        let Some(path) = &cli.registry else {
            anyhow::bail!("broker-files needs the registry: anxind --registry FILE broker-files --out DIR");
        };
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let registry: anxin_core::Registry =
            serde_json::from_str(&text).with_context(|| format!("{} is not a valid registry", path.display()))?;
        registry.check().with_context(|| format!("{} is not a valid registry", path.display()))?;
        let topics = anxin_mqtt::Topics::new(&config.mqtt.topic_root).map_err(anyhow::Error::msg)?;
        let engine = config.mqtt.username.as_deref().unwrap_or(anxind::broker_files::ENGINE_USER);
        let written = anxind::broker_files::write(&registry, &topics, engine, out)?;
        eprintln!(
            "wrote {}/passwd and {}/acl: {} accounts, {} new{}",
            out.display(),
            out.display(),
            written.accounts,
            written.new_passwords,
            if written.new_passwords > 0 {
                " (their passwords are in new-passwords.csv: hand them out, then delete it)"
            } else {
                ""
            },
        );
        return Ok(());
    }
    if matches!(cli.command, Some(Command::RegistryExample)) {
        let text = serde_json::to_string_pretty(&demo::district(config.demo.seed))?;
        // A reader that stops early (`| head`) is not an error.
        return match writeln!(std::io::stdout(), "{text}") {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(()),
        };
    }
    let is_demo = matches!(cli.command, Some(Command::Demo { .. }));
    let demo_registry = is_demo.then(|| demo::district(config.demo.seed));
    let registry = match &cli.registry {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
            let mut registry: anxin_core::Registry =
                serde_json::from_str(&text).with_context(|| format!("{} is not a valid registry", path.display()))?;
            if let Some(demo) = &demo_registry {
                registry.elders.extend(demo.elders.iter().cloned());
                registry.devices.extend(demo.devices.iter().cloned());
                registry.stations.extend(demo.stations.iter().cloned());
                registry.responders.extend(demo.responders.iter().cloned());
                registry.staff.extend(demo.staff.iter().cloned());
                registry.providers.extend(demo.providers.iter().cloned());
            }
            Some(registry)
        }
        None => demo_registry.clone(),
    };

    // The demo's hotline rings on the engine's own telephony endpoint: it needs a token.
    let mut config = config;
    if is_demo && config.telephony.token.is_none() && config.demo.call_interval_s > 0.0 {
        let mut bytes = [0u8; 18];
        getrandom::fill(&mut bytes).context("no randomness for the demo's telephony token")?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        config.telephony.token = Some(anxind::config::Secret::new(token));
    }
    // Before the ready line (a supervisor may send SIGTERM the moment it sees it), and before
    // standing by for the lease, which SIGTERM also ends.
    let stop_signals = StopSignals::install()?;
    let shutdown = CancellationToken::new();
    tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            stop_signals.wait().await;
            shutdown.cancel();
        }
    });
    if config.cluster.enabled && config.cluster.spread_zones {
        if is_demo {
            anyhow::bail!("the demo runs on one node: leave cluster.spread_zones off");
        }
        anxind::node::serve(config, registry, shutdown).await?;
        tracing::info!("stopped");
        return Ok(());
    }
    let lease = if config.cluster.enabled {
        let node = config.cluster.node_name();
        // Standing by, it answers /healthz, and /readyz with 503, on the port it will serve on.
        let listener = tokio::net::TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.http.listen))?;
        let http = listener.local_addr()?;
        let standby_stop = CancellationToken::new();
        let standby = tokio::spawn(anxin_api::serve(listener, anxin_api::standby_router(), standby_stop.clone()));
        let waited = anxind::cluster::wait_for_lease(
            &config.cluster,
            config.store.url.expose(),
            &config.cluster.advertised(http),
            &shutdown,
            |holder| println!("anxind standby node={node} holder={holder} http={http}"),
        )
        .await;
        // The port is free again for the engine's own server.
        standby_stop.cancel();
        let standby_abort = standby.abort_handle();
        if tokio::time::timeout(Duration::from_secs(1), standby).await.is_err() {
            // A client that keeps its connection open does not keep the port.
            standby_abort.abort();
        }
        // The engine serves on the port the standby answered on, which the lease names
        // (`http.listen` with port 0 would otherwise pick another).
        config.http.listen = http;
        match waited? {
            Some(held) => Some(held),
            None => return Ok(()), // stopped while standing by
        }
    } else {
        None
    };
    let app = App::build_with(config.clone(), registry, anxind::clock::Clock::System, lease).await?;
    let family_links = match &demo_registry {
        Some(demo) => demo::issue_family_links(&app.families(), demo, anxin_proto::wall_clock_now()).await,
        None => Vec::new(),
    };
    let console = format!("http://{}/console", app.http_addr());
    let mqtt = app.mqtt_url();
    // One line on stdout for scripts and tests; everything else is logged to stderr.
    println!("anxind ready console={console} mqtt={mqtt}");
    // For a person at a terminal; a log collector (ANXIN_LOG_FORMAT=json) gets it as a line.
    let for_people = std::env::var("ANXIN_LOG_FORMAT").as_deref() != Ok("json");
    if for_people {
        eprintln!("\n  Anxin is running. Open the console: {console}\n  Devices publish to {mqtt}. Ctrl-C stops.\n");
    } else {
        tracing::info!(%console, %mqtt, "anxind ready");
    }
    if is_demo {
        if for_people {
            eprintln!(
                "  Demo sign-in: dispatcher, dispatcher2 or supervisor (the console), admin (the ledger), password {}\n  Responder phones: {}/responder, token demo-<responder id>, e.g. demo-xs-r011\n",
                demo::DEMO_PASSWORD,
                console.trim_end_matches("/console"),
            );
        }
        for link in &family_links {
            let url = format!("{}/family#t={}", console.trim_end_matches("/console"), link.token);
            if for_people {
                eprintln!(
                    "  Family page of {} for {}: {url}\n    (press device {} to see it live)",
                    link.elder_name, link.contact, link.device_id
                );
            }
            tracing::info!(elder = %link.elder_name, device = %link.device_id, %url, "demo family link");
        }
        if for_people && !family_links.is_empty() {
            eprintln!();
        }
    }

    let demo_task = demo_registry.map(|registry| {
        let (host, port) = mqtt
            .trim_start_matches("mqtt://")
            .rsplit_once(':')
            .map(|(h, p)| (h.to_string(), p.parse().unwrap_or(1883)))
            .unwrap();
        let topics = anxin_mqtt::Topics::new(&config.mqtt.topic_root).expect("checked when loaded");
        let heartbeats = tokio::spawn(demo::heartbeat_now_and_then(
            (host.clone(), port),
            topics.clone(),
            registry.clone(),
            Duration::from_secs(u64::from(config.health.heartbeat_s)),
            config.demo.seed,
            shutdown.clone(),
        ));
        let calls = tokio::spawn(demo::call_now_and_then(
            app.http_addr(),
            config.telephony.token.as_ref().map(|t| t.expose().trim().to_string()).unwrap_or_default(),
            registry.clone(),
            Duration::from_secs_f64(config.demo.call_interval_s),
            config.demo.seed,
            shutdown.clone(),
        ));
        let presses = tokio::spawn(demo::press_now_and_then(
            (host, port),
            topics,
            registry,
            config.demo.devices,
            Duration::from_secs_f64(config.demo.press_interval_s),
            config.demo.seed,
            shutdown.clone(),
        ));
        async move {
            let _ = tokio::join!(heartbeats, presses, calls);
        }
    });
    let demo_task = demo_task.map(tokio::spawn);
    app.run(shutdown).await?;
    if let Some(t) = demo_task {
        let _ = tokio::time::timeout(Duration::from_secs(2), t).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C and SIGTERM, registered at once so neither can arrive before there is a handler.
struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Self { term: signal(SignalKind::terminate())?, interrupt: signal(SignalKind::interrupt())? })
        }
        #[cfg(not(unix))]
        Ok(Self {})
    }

    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.interrupt.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
