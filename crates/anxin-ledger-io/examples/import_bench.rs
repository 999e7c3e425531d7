//! Importing a district's ledger: 150,000 elders and 30,000 devices, written as XLSX and as GBK
//! CSV by `export`, then read and checked (elders against a ledger of 20 stations, devices
//! against that ledger with the elders applied), each format in a child process of its own so
//! that its peak memory (VmHWM) is its own.
//!
//! `cargo run --release -p anxin-ledger-io --example import_bench` (`-- ELDERS DEVICES` for
//! other sizes). The files go to a temporary folder, removed at the end. The district and its
//! files come from `support/district.rs`, which anxind's `import_apply` shares.

use anxin_ledger_io::{check, read_table, Encoding, Entity, Format, Kind, Mapping};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[path = "support/district.rs"]
mod district;
use district::{district, file_name, load_average, machine, peak_mib, write_files};

/// The child: read and check one format's two files, print one line. The time is
/// `read_table` + `check` alone; reading the file from disk and folding the elders into the
/// ledger for the devices' check are left out of it (but not out of the peak memory).
fn measure(dir: &Path, format: Format) {
    let mut ledger = district(0, 0);
    let mut phases = Vec::new();
    let mut timed = 0.0;
    let (mut rows, mut problems) = (0, 0);
    let mut encoding = None;
    for kind in [Kind::Elders, Kind::Devices] {
        let bytes = std::fs::read(dir.join(file_name(kind, format))).unwrap();
        let t = Instant::now();
        let table = read_table(&bytes, format, Encoding::Auto, None).unwrap();
        let read = t.elapsed().as_secs_f64();
        drop(bytes);
        encoding = encoding.or(table.encoding);
        let t = Instant::now();
        let mut last = (0, 0);
        let report = check(&table, &Mapping::default_for(kind), &ledger, &mut |d, n| last = (d, n)).unwrap();
        let checked = t.elapsed().as_secs_f64();
        assert_eq!(last.0, last.1, "progress reaches the total");
        timed += read + checked;
        rows += report.total;
        problems += report.problems.len();
        phases.push(format!("{kind} read {read:.2} s + check {checked:.2} s"));
        drop(table);
        // The good rows join the ledger (moved, not copied) for the next file's check.
        for row in report.rows {
            if let Entity::Elder(e) = row.entity {
                ledger.elders.push(e);
            }
        }
    }
    println!(
        "{:<8} {:>6.2} s  {:>8.0} rows/s  peak {:>6.0} MiB  ({}; {} rows, {} problems; encoding detected: {})",
        match format {
            Format::Xlsx => "xlsx",
            Format::Csv => "gbk csv",
        },
        timed,
        rows as f64 / timed,
        peak_mib("self"),
        phases.join(", "),
        rows,
        problems,
        encoding.map_or("none (xlsx)", |e| e.as_str()),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[1] == "measure" {
        let format = if args[2] == "xlsx" { Format::Xlsx } else { Format::Csv };
        measure(Path::new(&args[3]), format);
        return;
    }
    let elders: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(150_000);
    let devices: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(30_000);
    println!("{}; load average at start {}", machine(), load_average());

    let dir: PathBuf = std::env::temp_dir().join(format!("anxin-import-bench-{}", std::process::id()));
    let t = Instant::now();
    let ledger = district(elders, devices);
    println!("generated {elders} elders, {devices} devices, 20 stations in {:.2} s", t.elapsed().as_secs_f64());
    write_files(&ledger, &dir);
    drop(ledger);
    println!("read + check (each format in its own process; elders against 20 stations, then devices against them):");
    let me = std::env::current_exe().unwrap();
    for format in ["xlsx", "csv"] {
        let status = Command::new(&me).args(["measure", format]).arg(&dir).status().unwrap();
        assert!(status.success(), "the {format} child failed");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
