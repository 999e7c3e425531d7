//! The `anxind` binary as an operator meets it: its ready line, a registry file, clear
//! errors for bad input, and a clean exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_anxind");

fn anxind(args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env("ANXIN_LOG", "warn").env_remove("ANXIN_STORE__URL").env_remove("ANXIN_MQTT__BROKER");
    c
}

#[test]
fn registry_example_prints_a_registry_that_run_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let out = anxind(&["registry-example"]).output().unwrap();
    assert!(out.status.success());
    let registry: anxin_core::Registry = serde_json::from_slice(&out.stdout).expect("valid registry JSON");
    assert_eq!(registry.devices.len(), 320);
    let file = dir.path().join("registry.json");
    std::fs::write(&file, &out.stdout).unwrap();

    let store = format!("sqlite://{}", dir.path().join("anxin.db").display());
    let mut child = anxind(&[
        "run",
        "--registry",
        file.to_str().unwrap(),
        "--http-listen",
        "127.0.0.1:0",
        "--mqtt-listen",
        "127.0.0.1:0",
        "--store-url",
        &store,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.starts_with("anxind ready console=http://127.0.0.1:"), "{line}");
    assert!(line.contains(" mqtt=mqtt://127.0.0.1:"), "{line}");

    // SIGTERM: a clean exit, within the deadline.
    let started = Instant::now();
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "anxind did not stop within its deadline");
        std::thread::sleep(Duration::from_millis(20));
    }

    let stored = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { anxin_store::open(&store).await.unwrap().load_registry().await.unwrap() });
    assert_eq!(stored.devices.len(), 320, "the registry file was stored");
}

/// `ANXIN_LOG_FORMAT=json`: every log line is one JSON object a collector can read, with a
/// timestamp, a level, a message and the part of anxind that said it; a format it does not
/// know stops it at once, saying which.
#[test]
fn logs_can_be_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("anxin.db").display());
    let mut child =
        anxind(&["run", "--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0", "--store-url", &store])
            .env("ANXIN_LOG", "info")
            .env("ANXIN_LOG_FORMAT", "json")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert!(ready.starts_with("anxind ready"), "{ready}");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 2, "anxind logged its start and its stop: {stderr}");
    for line in &lines {
        // What a collector indexes: when, how bad, what was said and by which part.
        assert!(line["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "a UTC timestamp: {line}");
        assert!(["ERROR", "WARN", "INFO"].contains(&line["level"].as_str().unwrap_or("")), "a level: {line}");
        assert!(line["fields"]["message"].as_str().is_some_and(|m| !m.is_empty()), "a message: {line}");
        assert!(line["target"].as_str().is_some_and(|t| !t.is_empty()), "a target: {line}");
    }
    let resuming = lines
        .iter()
        .find(|l| l["fields"]["message"] == "resuming")
        .unwrap_or_else(|| panic!("the start-up line is logged: {stderr}"));
    assert_eq!((resuming["level"].as_str(), resuming["target"].as_str()), (Some("INFO"), Some("anxind::app")));
    assert!(resuming["fields"]["devices"].is_number(), "{resuming}");

    let out = anxind(&["run"]).env("ANXIN_LOG_FORMAT", "xml").output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ANXIN_LOG_FORMAT must be text or json, not \"xml\""));
}

#[test]
fn hash_token_prints_what_the_registry_keeps() {
    let out = anxind(&["hash-token", "abc"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn bad_input_on_the_command_line_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(
        &broken,
        r#"{"elders":[],"devices":[{"id":"d1","elder_id":"nobody"}],"stations":[],"responders":[]}"#,
    )
    .unwrap();
    let store = format!("sqlite://{}", dir.path().join("anxin.db").display());
    // (arguments, environment, what the error must say)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: [Case; 4] = [
        (vec!["run", "--registry", broken.to_str().unwrap(), "--store-url", &store], vec![], "elder nobody"),
        (vec!["run", "--store-url", "mysql://root:secret@h/db"], vec![], "unsupported store URL scheme \"mysql\""),
        (vec!["run"], vec![("ANXIN_STORE__ULR", "sqlite://x.db")], "ulr"),
        (vec!["run", "--config", "/nonexistent.toml"], vec![], "does not exist"),
    ];
    for (args, env, expect) in cases {
        let mut cmd = anxind(&args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(stderr.contains(expect), "{args:?}: expected {expect:?} in {stderr}");
        assert!(!stderr.contains("secret"), "a password leaked: {stderr}");
    }
}

/// `anxind demo` rings its own hotline now and then: calls from the demo elders' devices
/// reach the engine as incidents, through the telephony endpoint it turns on for itself.
#[test]
fn the_demo_rings_its_hotline() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("anxin.db").display());
    let mut child =
        anxind(&["demo", "--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0", "--store-url", &store])
            .env("ANXIN_DEMO__DEVICES", "0")
            .env("ANXIN_DEMO__CALL_INTERVAL_S", "0.2")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    let http = ready.split("console=http://").nth(1).and_then(|r| r.split('/').next()).expect("the console's address");
    let sample = "anxin_telephony_events_total{event=\"ringing\",outcome=\"opened\"}";
    let opened = |page: &str| {
        page.lines().find_map(|l| l.strip_prefix(sample)).and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(0.0)
    };
    let started = Instant::now();
    let mut page = String::new();
    while opened(&page) < 1.0 {
        assert!(started.elapsed() < Duration::from_secs(20), "no demo call opened an incident:\n{page}");
        std::thread::sleep(Duration::from_millis(200));
        let mut s = std::net::TcpStream::connect(http).unwrap();
        s.write_all(b"GET /metrics HTTP/1.0\r\nHost: test\r\n\r\n").unwrap();
        page.clear();
        s.read_to_string(&mut page).unwrap();
    }
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(child.wait().unwrap().success());
}
