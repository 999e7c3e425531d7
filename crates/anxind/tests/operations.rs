//! The operations kit in `deploy/`. Against a real Prometheus (Debian's `prometheus`): it
//! scrapes a running anxind, loads the alert rules and evaluates them without error, and
//! answers every query of the Grafana dashboard, the press → console panel with a line once
//! a press has reached a console. Without the binary that test is skipped, except under
//! `CI=true`, where `.ci/run` installs it and a missing one fails.
//!
//! Grafana is not in Debian's archive, so no Grafana loads the dashboard here. The
//! provisioning test reads the files as Grafana and Docker Compose would: the compose file
//! mounts the provisioning folder where Grafana looks for it and the dashboards where the
//! provider reads them; every panel and variable uses a provisioned data source, by uid and
//! type; panels have unique ids and do not overlap on Grafana's 24-column grid; and every
//! metric a panel names is one a running anxind exports.

#[macro_use]
#[allow(unused_macros)]
mod story;

use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use story::*;

const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy");

/// GET over HTTP/1.0, so that the answer is plain, not chunked.
async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: test\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text[9..12].parse().unwrap();
    (status, text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn query(prometheus: SocketAddr, q: &str) -> Value {
    let (status, body) = get(prometheus, &format!("/api/v1/query?query={}", encode(q))).await;
    let answer: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{q}: {status} {e}: {body}"));
    assert_eq!(answer["status"], "success", "{q}: {answer}");
    answer
}

struct Prometheus(std::process::Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_anxind_evaluates_the_alerts_and_answers_the_dashboard() {
    let Ok(binary) = which("prometheus") else {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "prometheus must be installed when CI=true");
        eprintln!("skipped: no prometheus binary (Debian's `prometheus` package)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(&Backend::embedded(dir.path()), &unique("anxind", "operations")).await;
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             rule_files: ['{DEPLOY}/prometheus/anxin-alerts.yml']\n\
             scrape_configs:\n  - job_name: anxind\n    static_configs: [{{targets: ['{}']}}]\n",
            app.http
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let _prometheus = Prometheus(
        std::process::Command::new(binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
            .arg(format!("--web.listen-address={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );

    // Scraped: up is 1, and anxind's own series are there. Prometheus listens before it is
    // ready (its storage opens after), and answers queries 503 until then: wait for /-/ready.
    let started = Instant::now();
    loop {
        let scraped = match tokio::net::TcpStream::connect(port).await {
            Ok(_) if get(port, "/-/ready").await.0 == 200 => {
                query(port, "up{job=\"anxind\"} == 1").await["data"]["result"].as_array().is_some_and(|r| !r.is_empty())
            }
            _ => false,
        };
        if scraped {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "prometheus did not scrape anxind within a minute");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // a few samples, for the rates

    // One press, seen on a console: the press → console histogram has it, and the
    // dashboard's latency panel draws a line from it once Prometheus has scraped it.
    let mut console = TestConsole::connect(app.http, None).await;
    console.next().await;
    let device = TestDevice::connect(&app, "d-2").await;
    device.press("ops-1", None).await;
    console.incident_for("d-2").await;
    let p99 = "histogram_quantile(0.99, sum by (le) (rate(anxin_press_console_seconds_bucket[1m])))";
    let started = Instant::now();
    loop {
        let answer = query(port, p99).await;
        // NaN until a scrape has seen the press (no rate in any bucket).
        let value = answer["data"]["result"][0]["value"][1].as_str().and_then(|v| v.parse::<f64>().ok());
        if let Some(value) = value.filter(|v| !v.is_nan()) {
            // A quantile between buckets is interpolated; what matters is that there is one.
            assert!(value > 0.0 && value <= 5.0, "press → console p99 {value} s");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no press → console figure within a minute: {answer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.metric("anxin_press_console_seconds_count").await, 1.0, "the one press, shown once");

    // The alert rules load and evaluate against real series with no error.
    let (_, rules) = get(port, "/api/v1/rules").await;
    let rules: Value = serde_json::from_str(&rules).unwrap();
    let loaded: Vec<&Value> =
        rules["data"]["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()).collect();
    assert_eq!(loaded.len(), 10, "{rules}");
    for rule in &loaded {
        assert_eq!(rule["health"], "ok", "{rule}");
    }
    // Nothing is wrong with a healthy engine: nothing fires, but no console is connected,
    // which is pending for its five minutes.
    let alerts = query(port, "ALERTS").await;
    let firing: Vec<&Value> =
        alerts["data"]["result"].as_array().unwrap().iter().filter(|a| a["metric"]["alertstate"] == "firing").collect();
    assert!(firing.is_empty(), "{alerts}");

    // Every query of the dashboard is valid PromQL on these series; the ones that read a
    // gauge as it is (no rate) have a value already.
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(format!("{DEPLOY}/grafana/dashboards/anxin.json")).unwrap())
            .unwrap();
    let mut asked = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap().replace("$instance", ".*").replace("$__rate_interval", "1m");
            let answer = query(port, &expr).await;
            asked += 1;
            let over_time = ["rate(", "increase(", "histogram_quantile("].iter().any(|f| expr.contains(f));
            if !over_time {
                let result = answer["data"]["result"].as_array().unwrap();
                assert!(!result.is_empty(), "{}: {expr} has no value", panel["title"]);
            }
        }
    }
    assert!(asked >= 20, "{asked} queries");
    app.stop().await;
}

/// Reads a YAML file of `deploy/` (one document).
fn yaml(path: &str) -> yaml_rust2::Yaml {
    let text = std::fs::read_to_string(format!("{DEPLOY}/{path}")).expect(path);
    let mut docs = yaml_rust2::YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(docs.len(), 1, "{path} is one YAML document");
    docs.remove(0)
}

/// A compose service's volumes as (host path under deploy/, path in the container).
fn mounts(service: &yaml_rust2::Yaml) -> Vec<(String, String)> {
    service["volumes"]
        .as_vec()
        .expect("volumes")
        .iter()
        .map(|v| {
            let v = v.as_str().expect("a short-form volume");
            let mut parts = v.split(':');
            let host = parts.next().unwrap().strip_prefix("./").unwrap_or_else(|| panic!("{v}: relative to deploy/"));
            (host.to_string(), parts.next().unwrap_or_else(|| panic!("{v}: no container path")).to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_is_provisioned_with_the_dashboard_and_its_data_source() {
    // Compose: Prometheus reads deploy/prometheus (its config and the rules beside it);
    // Grafana reads the provisioning folder at its default path and the dashboards folder.
    let compose = yaml("compose.yaml");
    let services = &compose["services"];
    let prometheus = &services["prometheus"];
    let grafana = &services["grafana"];
    assert!(prometheus["image"].as_str().is_some_and(|i| i.starts_with("prom/prometheus:")), "{prometheus:?}");
    assert!(grafana["image"].as_str().is_some_and(|i| i.starts_with("grafana/grafana:")), "{grafana:?}");
    for (host, _) in mounts(prometheus).iter().chain(mounts(grafana).iter()) {
        assert!(std::path::Path::new(&format!("{DEPLOY}/{host}")).is_dir(), "compose mounts deploy/{host}, a folder");
    }
    let prometheus_mounts = mounts(prometheus);
    let (_, prometheus_dir) =
        prometheus_mounts.iter().find(|(h, _)| h == "prometheus").expect("deploy/prometheus mounted");
    let config_flag = prometheus["command"]
        .as_vec()
        .expect("prometheus's command")
        .iter()
        .find_map(|a| a.as_str().and_then(|a| a.strip_prefix("--config.file=")))
        .expect("--config.file")
        .to_string();
    let config_file =
        config_flag.strip_prefix(&format!("{prometheus_dir}/")).expect("the config is in the mounted folder");
    let config = yaml(&format!("prometheus/{config_file}"));
    for rules in config["rule_files"].as_vec().expect("rule_files") {
        let rules = rules.as_str().unwrap();
        assert!(std::path::Path::new(&format!("{DEPLOY}/prometheus/{rules}")).is_file(), "rule file {rules}");
    }
    let grafana_mounts = mounts(grafana);
    let container_path = |host: &str| {
        grafana_mounts
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| panic!("{host} mounted"))
    };
    assert_eq!(container_path("grafana/provisioning"), "/etc/grafana/provisioning", "Grafana's provisioning path");
    let dashboards_in_container = container_path("grafana/dashboards");

    // The data source: Prometheus at the compose service's name and port.
    let sources = yaml("grafana/provisioning/datasources/prometheus.yml");
    assert_eq!(sources["apiVersion"].as_i64(), Some(1));
    let mut provisioned = std::collections::BTreeMap::new();
    for source in sources["datasources"].as_vec().expect("datasources") {
        let (uid, kind) = (source["uid"].as_str().expect("a uid"), source["type"].as_str().expect("a type"));
        assert!(source["name"].as_str().is_some_and(|n| !n.is_empty()), "{source:?}");
        provisioned.insert(uid.to_string(), kind.to_string());
        if kind == "prometheus" {
            let port = prometheus["ports"].as_vec().expect("ports")[0].as_str().unwrap().rsplit(':').next().unwrap();
            assert_eq!(source["url"].as_str(), Some(format!("http://prometheus:{port}").as_str()), "{source:?}");
        }
    }

    // The dashboard provider reads files where compose puts them.
    let provider = yaml("grafana/provisioning/dashboards/anxin.yml");
    assert_eq!(provider["apiVersion"].as_i64(), Some(1));
    let providers = provider["providers"].as_vec().expect("providers");
    assert!(providers.iter().all(|p| p["type"].as_str() == Some("file")), "{providers:?}");
    assert!(
        providers.iter().any(|p| p["options"]["path"].as_str() == Some(dashboards_in_container.as_str())),
        "a provider reads {dashboards_in_container}: {providers:?}"
    );

    // What anxind exports, for the metrics the panels name.
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app(&Backend::embedded(dir.path()), &unique("anxind", "grafana")).await;
    let exported = app.exported_metrics().await;
    app.stop().await;

    let folder = format!("{DEPLOY}/grafana/dashboards");
    let mut files: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    assert!(!files.is_empty(), "dashboards in {folder}");
    let uses_provisioned = |where_: &str, source: &Value| {
        let uid = source["uid"].as_str().unwrap_or_else(|| panic!("{where_}: a data source by uid: {source}"));
        assert_eq!(
            provisioned.get(uid).map(String::as_str),
            source["type"].as_str(),
            "{where_}: data source {source} is not a provisioned one: {provisioned:?}"
        );
    };
    for file in files {
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        assert!(dashboard["uid"].as_str().is_some_and(|u| !u.is_empty() && u.len() <= 40), "{name}: a uid");
        assert!(dashboard["title"].as_str().is_some_and(|t| !t.is_empty()), "{name}: a title");
        for variable in dashboard["templating"]["list"].as_array().into_iter().flatten() {
            if variable["type"] == "query" {
                uses_provisioned(&format!("{name} ${}", variable["name"]), &variable["datasource"]);
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        let mut cells = std::collections::BTreeMap::new();
        let mut watched = std::collections::BTreeSet::new();
        for panel in dashboard["panels"].as_array().expect("panels") {
            let title = format!("{name}: {}", panel["title"]);
            assert!(ids.insert(panel["id"].as_u64().expect("an id")), "{title}: its id is taken");
            let grid = |k: &str| panel["gridPos"][k].as_u64().unwrap_or_else(|| panic!("{title}: gridPos.{k}"));
            let (x, y, w, h) = (grid("x"), grid("y"), grid("w"), grid("h"));
            assert!(w > 0 && h > 0 && x + w <= 24, "{title}: outside the 24-column grid");
            for cell in (x..x + w).flat_map(|cx| (y..y + h).map(move |cy| (cx, cy))) {
                if let Some(other) = cells.insert(cell, title.clone()) {
                    panic!("{title} overlaps {other}");
                }
            }
            uses_provisioned(&title, &panel["datasource"]);
            let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{title}: targets"));
            let mut refs = std::collections::BTreeSet::new();
            for target in targets {
                assert!(refs.insert(target["refId"].as_str().expect("a refId")), "{title}: refIds repeat");
                if !target["datasource"].is_null() {
                    uses_provisioned(&title, &target["datasource"]);
                }
                let expr = target["expr"].as_str().unwrap_or_else(|| panic!("{title}: a PromQL expr"));
                let names = metric_names(expr);
                assert!(!names.is_empty(), "{title}: {expr} reads no anxin_ metric");
                for metric in names {
                    assert!(exported.contains(&metric), "{title} reads {metric}, which anxind does not export");
                    watched.insert(metric);
                }
            }
        }
        // The list: intake, latency, backlog, commits, broker link, offers, consoles,
        // notifications.
        for metric in [
            "anxin_mqtt_messages_received_total",
            "anxin_press_console_seconds",
            "anxin_ingest_backlog_messages",
            "anxin_store_commit_failures_total",
            "anxin_mqtt_connections_lost_total",
            "anxin_offers_total",
            "anxin_ws_consoles",
            "anxin_notifications_pending",
        ] {
            assert!(watched.contains(metric), "{name} shows {metric}");
        }
    }
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()))
        .ok_or(())
}
