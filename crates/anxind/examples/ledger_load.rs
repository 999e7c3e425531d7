//! How long a large ledger takes to load at start: `--devices N` devices (and a fifth as many
//! elders, 20 stations) are stored once, then the store's `load_registry` and `Engine::new`
//! are timed, `--runs` times, as anxind does them at start. Peak memory (VmHWM) is printed.
//!
//! ```sh
//! cargo run --release -p anxind --example ledger_load -- \
//!     --store postgres://postgres@127.0.0.1:5432/test --devices 1000000 --runs 3
//! ```
//! The store named is filled (use a scratch database: `--store` is written to).

use anxin_core::*;
use std::time::Instant;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.to_string())
}

fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let url = arg("--store", "sqlite:///tmp/anxin-ledger-load.db");
    let devices: usize = arg("--devices", "1000000").parse()?;
    let runs: usize = arg("--runs", "3").parse()?;
    let store = anxin_store::open(&url).await?;
    let stored = store.load_registry().await?;
    if stored.devices.len() < devices {
        let elders = devices.div_ceil(5);
        eprintln!("filling the store: {elders} elders, {devices} devices");
        let t = Instant::now();
        let stations = (0..20)
            .map(|i| Station {
                id: StationId::parse(format!("st-{i:02}")).unwrap(),
                name: format!("站点 {i}"),
                position: Coordinates::new(25.0 + i as f64 * 0.01, 102.7).unwrap(),
                phone: None,
                service_circle_min: None,
                zone: Default::default(),
            })
            .collect();
        let mut r = Registry { stations, ..Registry::default() };
        for i in 0..elders {
            r.elders.push(Elder {
                id: ElderId::parse(format!("e{i:07}")).unwrap(),
                name: format!("长者{i}"),
                address: format!("西山区 {i} 号"),
                home: Coordinates::new(24.9 + (i % 1000) as f64 * 0.0002, 102.6 + (i / 1000 % 1000) as f64 * 0.0002)
                    .unwrap(),
                phone: Some(format!("138{i:08}")),
                notes: String::new(),
                profile: ElderProfile::default(),
            });
        }
        for i in 0..devices {
            r.devices.push(Device {
                id: DeviceId::parse(format!("d{i:07}")).unwrap(),
                elder_id: ElderId::parse(format!("e{:07}", i % elders)).unwrap(),
                model: None,
                sim: None,
            });
        }
        store.save_registry(&r).await?;
        eprintln!("filled in {:.1} s", t.elapsed().as_secs_f64());
    }
    let host = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_default();
    println!(
        "machine: {host}, {} cores; store {}",
        std::thread::available_parallelism()?,
        url.split(':').next().unwrap()
    );
    for run in 1..=runs {
        let t = Instant::now();
        let registry = store.load_registry().await?;
        let loaded = t.elapsed();
        let n = registry.devices.len();
        let engine = Engine::new(Policy::default(), registry, Resume::default());
        let total = t.elapsed();
        println!(
            "run {run}: {n} devices, load_registry {:.2} s, Engine::new {:.2} s, total {:.2} s, peak {:.0} MiB",
            loaded.as_secs_f64(),
            (total - loaded).as_secs_f64(),
            total.as_secs_f64(),
            peak_mib()
        );
        assert!(engine.is_known_device(&DeviceId::parse("d0000000").unwrap()));
        drop(engine);
    }
    Ok(())
}
