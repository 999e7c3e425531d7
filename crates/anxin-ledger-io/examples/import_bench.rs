//! Importing a district's ledger: 150,000 elders and 30,000 devices, written as XLSX and as GBK
//! CSV by `export`, then read and checked (elders against a ledger of 20 stations, devices
//! against that ledger with the elders applied), each format in a child process of its own so
//! that its peak memory (VmHWM) is its own.
//!
//! `cargo run --release -p anxin-ledger-io --example import_bench` (`-- ELDERS DEVICES` for
//! other sizes). The files go to a temporary folder, removed at the end.

use anxin_core::geo::Coordinates;
use anxin_core::ids::{DeviceId, ElderId, StationId};
use anxin_core::registry::{Contact, Device, Elder, ElderProfile, Registry, Station};
use anxin_ledger_io::{check, check_character, export, read_table, Encoding, Entity, Format, Kind, Mapping};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// A small deterministic generator (SplitMix64): the same district every run.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴", "徐", "孙", "马", "朱", "胡", "郭", "何", "罗", "段",
    "普",
];
const GIVEN: &[&str] = &[
    "秀英", "桂兰", "玉珍", "建国", "德明", "福", "淑芬", "志强", "丽华", "文", "国华", "凤英", "永", "春花", "家顺",
    "琼", "金凤", "光荣",
];
const DISTRICTS: &[&str] = &["五华区", "盘龙区", "官渡区", "西山区", "呈贡区"];
const STREETS: &[&str] =
    &["华山南路", "翠湖南路", "北京路", "白塔路", "人民中路", "东风西路", "金碧路", "滇池路", "青年路", "环城南路"];
const RELATIONS: &[&str] = &["女儿", "儿子", "儿媳", "女婿", "孙子", "邻居", "侄女"];
const CONDITIONS: &[&str] = &["高血压", "糖尿病", "冠心病", "慢阻肺", "脑梗后遗症", "阿尔茨海默病"];

fn district(elders: usize, devices: usize) -> Registry {
    let mut draw = Draw(20_261_203);
    let stations: Vec<Station> = (0..20)
        .map(|i| Station {
            id: StationId::parse(format!("st-{i:02}")).unwrap(),
            name: format!("{}第{}社区养老服务站", DISTRICTS[i % DISTRICTS.len()], i + 1),
            position: Coordinates::new(24.95 + draw.unit() * 0.2, 102.62 + draw.unit() * 0.22).unwrap(),
            phone: Some(format!("0871-65{:06}", i)),
            service_circle_min: Some(15),
        })
        .collect();
    let elders = (0..elders)
        .map(|i| {
            let birth_year = 1925 + draw.below(40) as u16;
            let id_number = (i % 3 == 0).then(|| {
                let first17 =
                    format!("530102{birth_year}{:02}{:02}{:03}", 1 + draw.below(12), 1 + draw.below(28), i % 1000);
                let check = check_character(first17.as_bytes().try_into().unwrap());
                // One in five hundred has a wrong check digit, as typed ledgers do.
                let check = if i % 500 == 0 {
                    if check == '1' {
                        '2'
                    } else {
                        '1'
                    }
                } else {
                    check
                };
                format!("{first17}{check}")
            });
            let contacts = (0..1 + i % 4)
                .take(3)
                .map(|c| Contact {
                    name: format!("{}{}", draw.pick(SURNAMES), draw.pick(GIVEN)),
                    relation: draw.pick(RELATIONS).to_string(),
                    phone: format!("139{:08}", i * 3 + c),
                    ..Contact::default()
                })
                .collect();
            let conditions = (0..draw.below(3)).map(|_| draw.pick(CONDITIONS).to_string()).collect();
            Elder {
                id: ElderId::parse(format!("km-{i:06}")).unwrap(),
                name: format!("{}{}", draw.pick(SURNAMES), draw.pick(GIVEN)),
                address: format!(
                    "{}{}{}号{}栋{}单元{}",
                    draw.pick(DISTRICTS),
                    draw.pick(STREETS),
                    1 + draw.below(300),
                    1 + draw.below(20),
                    1 + draw.below(6),
                    101 + draw.below(18) * 100 + draw.below(4)
                ),
                home: Coordinates::new(24.95 + draw.unit() * 0.2, 102.62 + draw.unit() * 0.22).unwrap(),
                phone: Some(format!("138{:08}", i)),
                notes: if i % 7 == 0 { "耳背，说话要大声".into() } else { String::new() },
                profile: ElderProfile {
                    birth_year: Some(birth_year),
                    lives_alone: Some(i % 3 == 1),
                    conditions,
                    medications: Vec::new(),
                    mobility: String::new(),
                    language: if i % 2 == 0 { "昆明话".into() } else { String::new() },
                    door_notes: String::new(),
                    contacts,
                    station_id: Some(stations[i % stations.len()].id.clone()),
                    id_number,
                },
            }
        })
        .collect::<Vec<_>>();
    let devices = (0..devices)
        .map(|i| Device {
            id: DeviceId::parse(format!("xs-{i:06}")).unwrap(),
            elder_id: elders[(i * 5) % elders.len()].id.clone(),
            model: None,
        })
        .collect();
    Registry { elders, devices, stations, responders: Vec::new(), staff: Vec::new() }
}

/// Peak resident memory of this process so far, in MiB (VmHWM).
fn peak_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn file_name(kind: Kind, format: Format) -> String {
    match format {
        Format::Xlsx => format!("{kind}.xlsx"),
        Format::Csv => format!("{kind}-gbk.csv"),
    }
}

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
        peak_mib(),
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
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{cpu}, {cores} cores; load average at start {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );

    let dir: PathBuf = std::env::temp_dir().join(format!("anxin-import-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let t = Instant::now();
    let ledger = district(elders, devices);
    println!("generated {elders} elders, {devices} devices, 20 stations in {:.2} s", t.elapsed().as_secs_f64());
    for format in [Format::Xlsx, Format::Csv] {
        for kind in [Kind::Elders, Kind::Devices] {
            let t = Instant::now();
            let bytes = export(&ledger, kind, format, Encoding::Gbk).unwrap();
            let took = t.elapsed().as_secs_f64();
            let name = file_name(kind, format);
            std::fs::write(dir.join(&name), &bytes).unwrap();
            println!("  export {name:<18} {:>7.1} MiB in {took:.2} s", bytes.len() as f64 / (1 << 20) as f64);
        }
    }
    drop(ledger);
    println!("read + check (each format in its own process; elders against 20 stations, then devices against them):");
    let me = std::env::current_exe().unwrap();
    for format in ["xlsx", "csv"] {
        let status = Command::new(&me).args(["measure", format]).arg(&dir).status().unwrap();
        assert!(status.success(), "the {format} child failed");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
