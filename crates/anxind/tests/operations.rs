//! The operations kit in `deploy/` against a real Prometheus (Debian's `prometheus`): it
//! scrapes a running anxind, loads the alert rules and evaluates them without error, and
//! answers every query of the Grafana dashboard. Without the binary the test is skipped,
//! except under `CI=true`, where `.ci/run` installs it and a missing one fails.

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

    // Scraped: up is 1, and anxind's own series are there.
    let started = Instant::now();
    loop {
        let scraped = match tokio::net::TcpStream::connect(port).await {
            Ok(_) => {
                query(port, "up{job=\"anxind\"} == 1").await["data"]["result"].as_array().is_some_and(|r| !r.is_empty())
            }
            Err(_) => false,
        };
        if scraped {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "prometheus did not scrape anxind within a minute");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await; // a few samples, for the rates

    // The alert rules load and evaluate against real series with no error.
    let (_, rules) = get(port, "/api/v1/rules").await;
    let rules: Value = serde_json::from_str(&rules).unwrap();
    let loaded: Vec<&Value> =
        rules["data"]["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()).collect();
    assert_eq!(loaded.len(), 9, "{rules}");
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

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join(name)).find(|p| p.is_file()))
        .ok_or(())
}
