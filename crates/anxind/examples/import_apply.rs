//! A district's whole ledger imported through a running anxind, applied: 150,000 elders and
//! 30,000 devices from XLSX or from GBK CSV, uploaded to `/api/v1/admin/imports` as an admin,
//! checked and applied by the engine, and how long that took, how fast, and anxind's peak
//! memory.
//!
//! ```text
//! cargo run --release -p anxind --example import_apply -- [--store postgres://postgres@127.0.0.1:5432/test]
//!     [--formats xlsx,csv] [--runs 1] [--elders 150000] [--devices 30000] [--files DIR]
//! ```
//!
//! The district is `anxin-ledger-io`'s `import_bench` district (`support/district.rs` there,
//! the same fixed seed), written once into `--files` (by default a folder in the temp dir
//! named after the sizes) and reused by later runs. For each run and format, a fresh anxind
//! (this program again with `--serve-engine`: anxind's `App` in a process of its own, on the
//! embedded broker, loopback only) starts on a fresh store (SQLite in a temporary folder, or a
//! fresh database on the PostgreSQL server `--store` names, dropped afterwards) whose ledger
//! holds the district's 20 stations and an admin. The bench signs in as that admin and
//! imports the elders' file, then the devices' file, each as one job with `apply=true` and
//! the default mapping, polling the job every 50 ms (`GET /api/v1/admin/imports/{id}`) until
//! it is `done`. It reports:
//!
//! - total: from the first upload to the devices' job done (uploads included);
//! - check: the jobs' time in `checking` (upload, the ledger read, the file read and checked),
//!   and apply: their time in `applying` (the rows sent to the engine in chunks, each chunk
//!   one command and one commit), both to the 50 ms of the polling;
//! - rows a second: the files' rows (elders + devices) over the total;
//! - peak memory: anxind's, the child's VmHWM from `/proc/PID/status` once both are applied;
//! - then, through the API, that the ledger holds every row the report found good.

use anxin_ledger_io::{Format, Kind};
use anxind::{App, Config};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

#[path = "../../anxin-ledger-io/examples/support/district.rs"]
mod district;
use district::{district, file_name, load_average, machine, peak_mib, write_files};

/// The bench's admin, in the child's ledger only.
const ADMIN: (&str, &str) = ("bench-admin", "import-apply-bench");
/// How long one job may take before the bench gives up.
const JOB_WITHIN: Duration = Duration::from_secs(1800);
const POLL: Duration = Duration::from_millis(50);

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_string())
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Xlsx => "xlsx",
        Format::Csv => "gbk csv",
    }
}

/// The child (`--serve-engine --store URL`): anxind's `App` with the district's stations and
/// the bench's admin, `READY http=ADDR` on stdout, served until stdin closes.
fn serve_engine(store: String) {
    let mut config = Config::defaults();
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.embedded_listen = "127.0.0.1:0".parse().unwrap();
    let tag = format!("import-apply-{}", std::process::id());
    config.mqtt.client_id = tag.clone();
    config.mqtt.topic_root = tag;
    config.store.url = anxind::config::Secret::new(store);
    let mut registry = district(0, 0);
    registry.staff.push(anxin_core::Staff {
        id: ADMIN.0.into(),
        name: "导入测试管理员".into(),
        role: anxin_core::StaffRole::Admin,
        password_hash: anxin_api::hash_password(ADMIN.1),
    });
    let runtime = anxind::tokio_runtime(config.worker_threads()).expect("the engine's runtime");
    runtime.block_on(async move {
        let app = App::build(config, Some(registry)).await.expect("anxind builds");
        println!("READY http={}", app.http_addr());
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        std::thread::spawn(move || {
            for _ in std::io::stdin().lines().map_while(Result::ok) {}
            stop.cancel();
        });
        app.run(shutdown).await.expect("anxind runs and stops");
    });
}

/// One HTTP/1.1 exchange on a connection of its own: status, head, body.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("anxind listens");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n");
    head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await.unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer");
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head.get(9..12).and_then(|s| s.parse().ok()).expect("a status");
    (status, head, answer[split + 4..].to_vec())
}

async fn json(addr: SocketAddr, method: &str, path: &str, cookie: &str, body: &[u8]) -> (u16, Value) {
    let (status, _, body) = http(addr, method, path, &[("Cookie", cookie)], body).await;
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// What one file's job took, and what it found.
struct Job {
    checking: Duration,
    applying: Duration,
    rows: u64,
    problems: usize,
    applied: u64,
    refused: usize,
}

/// Uploads `bytes` as `kind` in `format` with `apply=true` and polls the job until it is done.
async fn import(addr: SocketAddr, cookie: &str, kind: Kind, format: Format, bytes: &[u8]) -> Job {
    let format = if format == Format::Xlsx { "xlsx" } else { "csv" };
    let path = format!("/api/v1/admin/imports?kind={kind}&format={format}&apply=true");
    let started = Instant::now();
    let (status, mut job) = json(addr, "POST", &path, cookie, bytes).await;
    assert_eq!(status, 202, "the import is taken: {job}");
    let id = job["id"].as_str().expect("a job id").to_string();
    let mut applying_from = None;
    loop {
        match job["state"].as_str() {
            Some("checking") => {}
            Some("applying") => {
                applying_from.get_or_insert_with(Instant::now);
            }
            Some("done") => break,
            _ => panic!("the {kind} import failed: {job}"),
        }
        assert!(started.elapsed() < JOB_WITHIN, "the {kind} import is not done within {JOB_WITHIN:?}: {job}");
        tokio::time::sleep(POLL).await;
        let (status, now) = json(addr, "GET", &format!("/api/v1/admin/imports/{id}"), cookie, &[]).await;
        assert_eq!(status, 200, "{now}");
        job = now;
    }
    let done = Instant::now();
    let applying_from = applying_from.unwrap_or(done);
    let report = &job["report"];
    Job {
        checking: applying_from - started,
        applying: done - applying_from,
        rows: report["total"].as_u64().unwrap_or(0),
        problems: report["problems"].as_array().map_or(0, Vec::len),
        applied: job["applied"].as_u64().unwrap_or(0),
        refused: job["refused"].as_array().map_or(0, Vec::len),
    }
}

/// One run: a fresh anxind on `store_url`, both files of `format` imported and applied.
/// Returns the line to print and the total time.
async fn run(store_url: &str, files: &Path, format: Format) -> (String, f64) {
    let exe = std::env::current_exe().expect("the bench knows its own executable");
    let mut child = tokio::process::Command::new(exe)
        .args(["--serve-engine", "--store", store_url])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("anxind's process starts");
    let pid = child.id().expect("anxind's process has an id");
    let stdin = child.stdin.take();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(120), stdout.next_line())
        .await
        .expect("anxind starts within 2 minutes")
        .unwrap()
        .expect("anxind says READY");
    let addr: SocketAddr = line.strip_prefix("READY http=").expect("READY http=ADDR").parse().unwrap();
    let sign_in = serde_json::json!({"user": ADMIN.0, "password": ADMIN.1}).to_string();
    let (status, head, _) = http(addr, "POST", "/api/v1/session", &[], sign_in.as_bytes()).await;
    assert_eq!(status, 200, "the admin signs in");
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: ").or_else(|| l.strip_prefix("Set-Cookie: ")))
        .and_then(|c| c.split(';').next())
        .expect("a session cookie")
        .to_string();

    let elders_file = std::fs::read(files.join(file_name(Kind::Elders, format))).unwrap();
    let devices_file = std::fs::read(files.join(file_name(Kind::Devices, format))).unwrap();
    let load = load_average();
    let started = Instant::now();
    let elders = import(addr, &cookie, Kind::Elders, format, &elders_file).await;
    let devices = import(addr, &cookie, Kind::Devices, format, &devices_file).await;
    let total = started.elapsed().as_secs_f64();
    let peak = peak_mib(&pid.to_string());

    // The ledger holds what was applied: every good row, nothing refused.
    for (kind, job) in [("elders", &elders), ("devices", &devices)] {
        assert_eq!(job.refused, 0, "the engine refused {} {kind}", job.refused);
        let (status, page) = json(addr, "GET", &format!("/api/v1/admin/{kind}?limit=1"), &cookie, &[]).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"].as_u64(), Some(job.applied), "{kind} in the ledger: {page}");
    }
    drop(stdin);
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;

    let rows = elders.rows + devices.rows;
    let secs = |d: Duration| d.as_secs_f64();
    let line = format!(
        "{:<8} total {total:>6.2} s  {:>6.0} rows/s  check {:>5.2} s + apply {:>5.2} s  anxind peak {:>5.0} MiB  \
         (elders: check {:.2} s, apply {:.2} s, {} applied; devices: check {:.2} s, apply {:.2} s, {} applied; \
         {rows} rows, {} problems; load before {load})",
        format_name(format),
        rows as f64 / total,
        secs(elders.checking + devices.checking),
        secs(elders.applying + devices.applying),
        peak,
        secs(elders.checking),
        secs(elders.applying),
        elders.applied,
        secs(devices.checking),
        secs(devices.applying),
        devices.applied,
        elders.problems + devices.problems,
    );
    (line, total)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve-engine") {
        return serve_engine(arg("--store", ""));
    }
    let server = arg("--store", "");
    let runs: usize = arg("--runs", "1").parse().expect("--runs N");
    let elders: usize = arg("--elders", "150000").parse().expect("--elders N");
    let devices: usize = arg("--devices", "30000").parse().expect("--devices N");
    let formats: Vec<Format> = arg("--formats", "xlsx,csv")
        .split(',')
        .map(|f| match f {
            "xlsx" => Format::Xlsx,
            "csv" => Format::Csv,
            other => panic!("--formats: {other:?} is neither xlsx nor csv"),
        })
        .collect();
    let files = PathBuf::from(arg(
        "--files",
        &std::env::temp_dir().join(format!("anxin-import-apply-{elders}-{devices}")).display().to_string(),
    ));
    let store_kind = if server.is_empty() { "SQLite" } else { "PostgreSQL" };
    println!("{}; load average {}; store {store_kind}", machine(), load_average());

    let all = [Kind::Elders, Kind::Devices]
        .iter()
        .all(|&k| [Format::Xlsx, Format::Csv].iter().all(|&f| files.join(file_name(k, f)).exists()));
    if all {
        println!("reusing the files in {}", files.display());
    } else {
        let t = Instant::now();
        let ledger = district(elders, devices);
        println!("generated {elders} elders, {devices} devices, 20 stations in {:.2} s", t.elapsed().as_secs_f64());
        write_files(&ledger, &files);
    }

    let runtime = anxind::tokio_runtime(1).expect("the bench's runtime");
    let mut totals: Vec<(Format, f64)> = Vec::new();
    for n in 1..=runs {
        for &format in &formats {
            let dir = tempfile::tempdir().unwrap();
            let (line, total) = runtime.block_on(async {
                let store_url = if server.is_empty() {
                    format!("sqlite://{}", dir.path().join("anxin.db").display())
                } else {
                    anxin_store::testkit::fresh_postgres_database(&server).await
                };
                let measured = run(&store_url, &files, format).await;
                if !server.is_empty() {
                    anxin_store::testkit::drop_postgres_database(&server, &store_url).await;
                }
                measured
            });
            println!("run {n} {line}");
            totals.push((format, total));
        }
    }
    for &format in &formats {
        let t: Vec<f64> = totals.iter().filter(|(f, _)| *f == format).map(|(_, t)| *t).collect();
        let (lo, hi) = t.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &x| (lo.min(x), hi.max(x)));
        println!("{:<8} {} runs on {store_kind}: total {lo:.2}–{hi:.2} s", format_name(format), t.len());
    }
}
